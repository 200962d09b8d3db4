//! The ledger (POLICY §2.3, issue 4): the only module that writes `ledger_settlements`,
//! `ledger_entries` and `accumulators`.
//!
//! Architecture invariant: ledger rows are appended, never updated or deleted. A cancellation is a new
//! settlement row with `reverses` set and negated entries. The person-year accumulators are a cache of the
//! sum of that person-year's entries, written in the same transaction; [`verify`] recomputes them.
//!
//! Concurrency: [`lock_accumulators`] is the first write of a settlement transaction. On PostgreSQL it
//! takes the row lock (`FOR UPDATE`); on SQLite the first write takes the database write lock. Either way
//! no two transactions settle one person-year against the same accumulators.

use baozhang_core::engine::{Accumulators, LayerAcc, Settlement};
use baozhang_core::policy::{Fund, Policy, MAX_LAYERS};
use baozhang_core::MedType;

use crate::{get_i64, get_opt_text, get_text, now_text, Backend, Result, Store, StoreError, Tx, Val};

/// The personal part's pseudo fund code in `ledger_entries`.
pub const PERSONAL_FUND: &str = "PSN";

/// Accumulators as stored: stays per tier `s1,s2,s3` (three, or all eight when a policy's tiers beyond
/// the third have stays) then per layer `base,paid,outpatient,personal`, separated by `;`.
pub fn encode_acc(acc: &Accumulators, n_layers: usize) -> String {
    let n = if acc.inpatient_stays[3..].iter().all(|&x| x == 0) { 3 } else { acc.inpatient_stays.len() };
    let mut s = acc.inpatient_stays[..n].iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    for l in &acc.layers[..n_layers] {
        s.push_str(&format!(";{},{},{},{}", l.base_fen, l.paid_fen, l.outpatient_paid_fen, l.personal_fen));
    }
    s
}

pub fn decode_acc(s: &str) -> Option<Accumulators> {
    let mut acc = Accumulators::default();
    let mut parts = s.split(';');
    let stays: Vec<u16> = parts.next()?.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if stays.len() != 3 && stays.len() != acc.inpatient_stays.len() {
        return None;
    }
    acc.inpatient_stays[..stays.len()].copy_from_slice(&stays);
    for (i, p) in parts.enumerate() {
        if i >= MAX_LAYERS {
            return None;
        }
        let v: Vec<i64> = p.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
        let [base_fen, paid_fen, outpatient_paid_fen, personal_fen] = v[..] else { return None };
        acc.layers[i] = LayerAcc { base_fen, paid_fen, outpatient_paid_fen, personal_fen };
    }
    Some(acc)
}

/// The locked accumulators of a person-year.
#[derive(Clone, Debug, Default)]
pub struct LockedAcc {
    pub acc: Accumulators,
    /// The policy the person-year was first settled under ('' when new).
    pub policy_id: String,
    pub settlements: i64,
}

/// Creates the person-year's row if missing and locks it for the rest of the transaction, in one
/// statement: the no-op `DO UPDATE` takes the row lock on PostgreSQL (waiting for a concurrent
/// settlement of the same person-year and then reading its result); on SQLite the transaction already
/// holds the write lock (`BEGIN IMMEDIATE`).
pub async fn lock_accumulators(tx: &mut Tx<'_>, batch: &Batch, psn_no: &str, year: u16) -> Result<LockedAcc> {
    let key = (psn_no.to_string(), year);
    if let Some((l, _)) = batch.accs.get(&key) {
        // Settled earlier in this batch: the row is ours already, and this is its newest state.
        return Ok(l.clone());
    }
    if let Some(l) = batch.locked.get(&key) {
        // Locked by `lock_many` at the start of the batch and not changed since.
        return Ok(l.clone());
    }
    let row = sqlx::query(
        "INSERT INTO accumulators (psn_no, year, policy_id, state, settlements, updated_at) VALUES ($1, $2, '', '0,0,0', 0, $3) \
         ON CONFLICT (psn_no, year) DO UPDATE SET psn_no = excluded.psn_no RETURNING policy_id, state, settlements",
    )
    .bind(psn_no.to_string())
    .bind(i64::from(year))
    .bind(now_text())
    .fetch_one(&mut **tx)
    .await?;
    let state = get_text(&row, 1)?;
    let acc = decode_acc(&state).ok_or_else(|| StoreError::Corrupt(format!("accumulators of a person-year unreadable: {state}")))?;
    Ok(LockedAcc { acc, policy_id: get_text(&row, 0)?, settlements: get_i64(&row, 2)? })
}

/// Locks the person-years of a whole batch in one statement (sorted, so two processes locking
/// overlapping sets cannot deadlock) and keeps what they hold in `batch`.
pub async fn lock_many(tx: &mut Tx<'_>, batch: &mut Batch, keys: &[(String, u16)]) -> Result<()> {
    let mut keys: Vec<&(String, u16)> = keys.iter().filter(|k| !batch.locked.contains_key(*k) && !batch.accs.contains_key(*k)).collect();
    keys.sort();
    keys.dedup();
    let now = now_text();
    let positional = tx.backend_name() == "SQLite";
    for chunk in keys.chunks(500) {
        let mut sql = String::from("INSERT INTO accumulators (psn_no, year, policy_id, state, settlements, updated_at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            if positional {
                sql.push_str("(?, ?, '', '0,0,0', 0, ?)");
            } else {
                sql.push_str(&format!("(${}, ${}, '', '0,0,0', 0, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
            }
        }
        sql.push_str(
            " ON CONFLICT (psn_no, year) DO UPDATE SET psn_no = excluded.psn_no RETURNING psn_no, year, policy_id, state, settlements",
        );
        let mut q = sqlx::query(&sql);
        for (psn_no, year) in chunk {
            q = q.bind(psn_no.clone()).bind(i64::from(*year)).bind(now.clone());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let state = get_text(&row, 3)?;
            let acc =
                decode_acc(&state).ok_or_else(|| StoreError::Corrupt(format!("accumulators of a person-year unreadable: {state}")))?;
            let key = (get_text(&row, 0)?, get_i64(&row, 1)? as u16);
            batch.locked.insert(key, LockedAcc { acc, policy_id: get_text(&row, 2)?, settlements: get_i64(&row, 4)? });
        }
    }
    Ok(())
}

/// The accumulators of many person-years without locking (a dry run of a re-settlement); a person-year
/// without a row is absent.
pub async fn read_many(tx: &mut Tx<'_>, keys: &[(String, u16)]) -> Result<std::collections::HashMap<(String, u16), LockedAcc>> {
    let mut out = std::collections::HashMap::new();
    for chunk in keys.chunks(500) {
        let Some((_, year)) = chunk.first() else { continue };
        // One year per call (a re-settlement step): the year bound once after the person numbers.
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT psn_no, year, policy_id, state, settlements FROM accumulators WHERE psn_no IN ({}) AND year = ${}",
            marks.join(", "),
            chunk.len() + 1
        );
        let mut q = sqlx::query(&sql);
        for (p, _) in chunk {
            q = q.bind(p.clone());
        }
        for row in q.bind(i64::from(*year)).fetch_all(&mut **tx).await? {
            let state = get_text(&row, 3)?;
            let acc =
                decode_acc(&state).ok_or_else(|| StoreError::Corrupt(format!("accumulators of a person-year unreadable: {state}")))?;
            let key = (get_text(&row, 0)?, get_i64(&row, 1)? as u16);
            out.insert(key, LockedAcc { acc, policy_id: get_text(&row, 2)?, settlements: get_i64(&row, 4)? });
        }
    }
    Ok(out)
}

/// The committed accumulators of a person-year, without locking (pre-settlement, reports).
pub async fn read_accumulators(store: &Store, psn_no: &str, year: u16) -> Result<LockedAcc> {
    let mut c = store.pool().acquire().await?;
    read_accumulators_on(&mut c, psn_no, year).await
}

async fn read_accumulators_on(c: &mut sqlx::AnyConnection, psn_no: &str, year: u16) -> Result<LockedAcc> {
    let row = sqlx::query("SELECT policy_id, state, settlements FROM accumulators WHERE psn_no = $1 AND year = $2")
        .bind(psn_no.to_string())
        .bind(i64::from(year))
        .fetch_optional(&mut *c)
        .await?;
    let Some(row) = row else {
        return Ok(LockedAcc { acc: Accumulators::default(), policy_id: String::new(), settlements: 0 });
    };
    let state = get_text(&row, 1)?;
    let acc = decode_acc(&state).ok_or_else(|| StoreError::Corrupt(format!("accumulators of a person-year unreadable: {state}")))?;
    Ok(LockedAcc { acc, policy_id: get_text(&row, 0)?, settlements: get_i64(&row, 2)? })
}

/// Rows of a write batch not yet inserted: they go in as multi-row INSERTs just before the commit
/// ([`Batch::flush`]), which is what makes a group commit cheap. Nothing in a batch reads them back
/// except a cancellation, which flushes first.
#[derive(Default)]
pub struct Batch {
    /// SQLite: the next `seq` (the transaction holds the database write lock, so MAX + 1 read once stays right).
    next_seq: Option<i64>,
    settlements: Vec<Vec<Val>>,
    entries: Vec<Vec<Val>>,
    msgs: Vec<(String, crate::service::LoggedMsg)>,
    /// Accumulators after this batch's settlements (the rows are locked by this transaction), with their
    /// stored form; upserted at flush.
    accs: std::collections::HashMap<(String, u16), (LockedAcc, String)>,
    /// Responses already committed for this batch's msgids (read in one query at the start).
    committed: Option<std::collections::HashMap<String, crate::service::LoggedMsg>>,
    /// Visit status changes (mdtrt_id, from, to, setl_id), applied at flush by one conditional UPDATE.
    statuses: Vec<(String, String, String, Option<String>)>,
    /// Person-years locked at the start of the batch ([`lock_many`]), as they were then.
    locked: std::collections::HashMap<(String, u16), LockedAcc>,
    /// Visits read at the start of the batch: status, settlement, fee lines.
    visits: std::collections::HashMap<String, crate::service::VisitState>,
    /// Nonces of signed requests already stored (institution, nonce), read at the start of the batch.
    nonces_seen: std::collections::HashSet<(String, String)>,
    /// Nonces used by this batch's jobs (institution, nonce, expiry), inserted at flush.
    nonces: Vec<(String, String, i64)>,
    /// Adjustment rows of re-settlements ([`append_adjustment`]), inserted at flush.
    adjustments: Vec<Vec<Val>>,
}

const SETTLEMENT_INSERT_COLS: [&str; 30] = [
    "setl_id",
    "seq",
    "reverses",
    "msgid",
    "mdtrt_id",
    "psn_no",
    "id_no",
    "village_code",
    "fixmedins_code",
    "insuplc_admdvs",
    "setl_date",
    "year",
    "med_type",
    "hosp_lv",
    "identities",
    "policy_id",
    "policy_version",
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "psn_part_amt",
    "outcome",
    "created_at",
    "opter",
    "claim_flags",
];

const ENTRY_COLS: [&str; 12] = [
    "setl_id",
    "psn_no",
    "year",
    "layer",
    "fund",
    "amount_fen",
    "outpatient_fen",
    "base_delta_fen",
    "personal_delta_fen",
    "stay_level",
    "stay_delta",
    "insuplc_admdvs",
];

impl Batch {
    /// A message answered earlier in this batch, or (when prefetched) committed before it.
    /// `None` from a prefetched batch means "not answered"; without a prefetch the caller must look.
    pub fn msg(&self, msgid: &str) -> Option<&crate::service::LoggedMsg> {
        self.msgs.iter().rev().find(|(id, _)| id == msgid).map(|(_, m)| m).or_else(|| self.committed.as_ref()?.get(msgid))
    }
    /// A visit as read at the start of the batch (None: not read, or changed since by this batch).
    pub fn visit(&self, mdtrt_id: &str) -> Option<&crate::service::VisitState> {
        self.visits.get(mdtrt_id)
    }
    /// Forgets what was read of a visit (this batch changed it directly: fee upload, cancellation).
    pub fn forget_visit(&mut self, mdtrt_id: &str) {
        self.visits.remove(mdtrt_id);
    }
    /// Reads the state of the batch's visits in one query.
    pub async fn prefetch_visits(&mut self, tx: &mut Tx<'_>, mdtrt_ids: &[&str]) -> Result<()> {
        for chunk in mdtrt_ids.chunks(500) {
            let found = crate::service::visit_states(tx, chunk).await?;
            self.visits.extend(found);
        }
        Ok(())
    }
    /// A visit's status as this batch has left it (None: unchanged in this batch).
    pub fn pending_status(&self, mdtrt_id: &str) -> Option<(&str, Option<&str>)> {
        self.statuses.iter().rev().find(|(id, ..)| id == mdtrt_id).map(|(_, _, to, setl)| (to.as_str(), setl.as_deref()))
    }
    /// Moves a visit from `from` to `to` at flush. If by then it is no longer in `from` (another process
    /// moved it), the flush fails and the batch is retried against the new state.
    pub fn set_status(&mut self, mdtrt_id: &str, from: &str, to: &str, setl_id: Option<&str>) {
        self.statuses.push((mdtrt_id.to_string(), from.to_string(), to.to_string(), setl_id.map(str::to_string)));
    }
    /// Whether `msg` answers for committed messages too.
    pub fn prefetched(&self) -> bool {
        self.committed.is_some()
    }
    /// Reads the committed responses of `msgids` in one query.
    pub async fn prefetch_msgs(&mut self, tx: &mut Tx<'_>, msgids: &[&str]) -> Result<()> {
        let mut found = std::collections::HashMap::new();
        for chunk in msgids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql =
                format!("SELECT msgid, fixmedins_code, infno, body_sha256, response FROM msg_log WHERE msgid IN ({})", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for r in q.fetch_all(&mut **tx).await? {
                let m = crate::service::LoggedMsg {
                    fixmedins_code: get_text(&r, 1)?,
                    infno: get_text(&r, 2)?,
                    body_sha256: get_text(&r, 3)?,
                    response: get_text(&r, 4)?,
                };
                found.insert(get_text(&r, 0)?, m);
            }
        }
        self.committed = Some(found);
        Ok(())
    }
    /// Reads which of the batch's nonces (institution, nonce) are stored already, in one query per 500.
    pub async fn prefetch_nonces(&mut self, tx: &mut Tx<'_>, nonces: &[(&str, &str)]) -> Result<()> {
        for chunk in nonces.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT fixmedins_code, nonce FROM national_nonces WHERE nonce IN ({})", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for (_, n) in chunk {
                q = q.bind(n.to_string());
            }
            for r in q.fetch_all(&mut **tx).await? {
                self.nonces_seen.insert((get_text(&r, 0)?, get_text(&r, 1)?));
            }
        }
        Ok(())
    }
    /// Uses a nonce: false if it is stored already or used earlier in this batch. (Two processes using the
    /// same nonce at once: the second flush violates the key, its batch is retried and then refuses.)
    pub fn use_nonce(&mut self, fixmedins_code: &str, nonce: &str, expires_at: i64) -> bool {
        let key = (fixmedins_code.to_string(), nonce.to_string());
        if self.nonces_seen.contains(&key) {
            return false;
        }
        self.nonces_seen.insert(key);
        self.nonces.push((fixmedins_code.to_string(), nonce.to_string(), expires_at));
        true
    }
    pub fn record_msg(&mut self, msgid: &str, m: crate::service::LoggedMsg) {
        self.msgs.push((msgid.to_string(), m));
    }
    /// Inserts what is pending (settlements, entries, message responses). Any error here fails the whole
    /// batch's transaction (its callers roll back and retry or refuse), so the inserts are
    /// [`crate::append_rows`]: no statement journal on SQLite.
    pub async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<()> {
        let nonces: Vec<Vec<Val>> = self.nonces.iter().map(|(c, n, e)| vec![Val::T(c.clone()), Val::T(n.clone()), Val::I(*e)]).collect();
        crate::append_rows(tx, "national_nonces", &["fixmedins_code", "nonce", "expires_at"], &nonces, "").await?;
        crate::append_rows(tx, "ledger_settlements", &SETTLEMENT_INSERT_COLS, &self.settlements, "").await?;
        crate::append_rows(tx, "ledger_adjustments", &ADJUSTMENT_COLS, &self.adjustments, "").await?;
        crate::append_rows(tx, "ledger_entries", &ENTRY_COLS, &self.entries, "").await?;
        let now = now_text();
        let msgs: Vec<Vec<Val>> = self
            .msgs
            .iter()
            .map(|(id, m)| {
                vec![
                    Val::T(id.clone()),
                    Val::T(m.fixmedins_code.clone()),
                    Val::T(m.infno.clone()),
                    Val::T(m.body_sha256.clone()),
                    Val::T(m.response.clone()),
                    Val::T(now.clone()),
                ]
            })
            .collect();
        crate::append_rows(tx, "msg_log", &["msgid", "fixmedins_code", "infno", "body_sha256", "response", "created_at"], &msgs, "")
            .await?;
        let accs: Vec<Vec<Val>> = self
            .accs
            .iter()
            .map(|((psn_no, year), (l, state))| {
                vec![
                    Val::T(psn_no.clone()),
                    Val::I(i64::from(*year)),
                    Val::T(l.policy_id.clone()),
                    Val::T(state.clone()),
                    Val::I(l.settlements),
                    Val::T(now.clone()),
                ]
            })
            .collect();
        crate::append_rows(
            tx,
            "accumulators",
            &["psn_no", "year", "policy_id", "state", "settlements", "updated_at"],
            &accs,
            "ON CONFLICT (psn_no, year) DO UPDATE SET policy_id = excluded.policy_id, state = excluded.state, \
             settlements = excluded.settlements, updated_at = excluded.updated_at",
        )
        .await?;
        for chunk in self.statuses.chunks(500) {
            let mut sql = String::from("WITH v (id, from_status, to_status, setl_id) AS (VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let b = i * 4;
                sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
            }
            sql.push_str(
                ") UPDATE mdtrts SET status = v.to_status, setl_id = v.setl_id FROM v WHERE mdtrts.mdtrt_id = v.id AND mdtrts.status = v.from_status",
            );
            let mut q = sqlx::query(&sql);
            for (id, from, to, setl) in chunk {
                q = q.bind(id.clone()).bind(from.clone()).bind(to.clone()).bind(setl.clone());
            }
            let n = q.execute(&mut **tx).await?.rows_affected();
            if n != chunk.len() as u64 {
                return Err(StoreError::Conflict(format!(
                    "{} of {} visits changed status under this batch",
                    chunk.len() as u64 - n,
                    chunk.len()
                )));
            }
        }
        self.statuses.clear();
        if let Some(c) = &mut self.committed {
            // What was pending is committed-to-be now; keep answering for it.
            for (id, m) in self.msgs.drain(..) {
                c.insert(id, m);
            }
        }
        for key in self.accs.keys() {
            self.locked.remove(key);
        }
        self.settlements.clear();
        self.adjustments.clear();
        self.entries.clear();
        self.msgs.clear();
        self.accs.clear();
        // Written: a flush in the middle of a batch (before a cancellation reads) must not insert them again.
        self.nonces.clear();
        Ok(())
    }
}

/// The next commit-order number. PostgreSQL: a sequence (for one person-year, the row lock orders the
/// numbers as the commits). SQLite: MAX + 1, read once per batch under the write lock.
pub async fn next_seq(tx: &mut Tx<'_>, backend: Backend, batch: &mut Batch) -> Result<i64> {
    if backend == Backend::Postgres {
        let row = sqlx::query("SELECT nextval('ledger_seq')").fetch_one(&mut **tx).await?;
        return get_i64(&row, 0);
    }
    let seq = match batch.next_seq {
        Some(s) => s,
        None => {
            // A bare `SELECT MAX(seq)` is answered from the index's last entry; wrapped in COALESCE(…) + 1
            // SQLite scanned the whole table.
            let row = sqlx::query("SELECT MAX(seq) FROM ledger_settlements").fetch_one(&mut **tx).await?;
            crate::get_opt_i64(&row, 0)?.unwrap_or(0) + 1
        }
    };
    batch.next_seq = Some(seq + 1);
    Ok(seq)
}

/// `count` commit-order numbers at once, ascending (a batch settlement numbers a whole chunk in one round
/// trip). PostgreSQL: from the sequence, like [`next_seq`] (call it after the chunk's person-years are
/// locked, so a concurrent settlement of one of them numbers after it). SQLite: as [`next_seq`].
pub async fn next_seqs(tx: &mut Tx<'_>, backend: Backend, batch: &mut Batch, count: usize) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(count);
    if backend == Backend::Postgres {
        if count > 0 {
            let rows =
                sqlx::query("SELECT nextval('ledger_seq') FROM generate_series(1, $1)").bind(count as i64).fetch_all(&mut **tx).await?;
            for r in &rows {
                out.push(get_i64(r, 0)?);
            }
            out.sort_unstable();
        }
        return Ok(out);
    }
    for _ in 0..count {
        out.push(next_seq(tx, backend, batch).await?);
    }
    Ok(out)
}

/// The settlement number of commit-order number `seq` (`BZ` and 16 digits), for the service and batch
/// settlement alike.
pub fn setl_id_of(seq: i64) -> String {
    format!("BZ{seq:016}")
}

/// Those of `mdtrt_ids` that have a settlement in the ledger (cancelled or not; cancellations themselves
/// are not counted). Batch settlement uses it to settle each claim once however often it is run.
pub async fn visits_settled(tx: &mut Tx<'_>, mdtrt_ids: &[&str]) -> Result<std::collections::HashSet<String>> {
    let mut found = std::collections::HashSet::new();
    let positional = tx.backend_name() == "SQLite";
    for chunk in mdtrt_ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| if positional { "?".to_string() } else { format!("${i}") }).collect();
        // `reverses IS NULL` is filtered here, not in SQL: with it in the WHERE clause SQLite (no statistics)
        // searched the `reverses` index, where nearly every row is NULL, instead of `mdtrt_id`'s — a scan of
        // the whole ledger per query.
        let sql = format!("SELECT mdtrt_id, reverses FROM ledger_settlements WHERE mdtrt_id IN ({})", marks.join(", "));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.to_string());
        }
        for r in q.fetch_all(&mut **tx).await? {
            if get_opt_text(&r, 1)?.is_none() {
                found.insert(get_text(&r, 0)?);
            }
        }
    }
    Ok(found)
}

/// Identification and context of a ledger settlement row.
#[derive(Clone, Debug)]
pub struct SettlementHead {
    pub setl_id: String,
    pub seq: i64,
    pub reverses: Option<String>,
    pub msgid: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub fixmedins_code: String,
    pub insuplc_admdvs: String,
    pub setl_date: i64,
    pub hosp_lv: i64,
    pub identities: i64,
    pub policy_id: String,
    pub policy_version: String,
    /// The bill's four parts (negated on a cancellation).
    pub fulamt_ownpay_amt: i64,
    pub overlmt_selfpay: i64,
    pub preselfpay_amt: i64,
    pub outcome_json: String,
    pub opter: String,
    /// [`claim_flags`] of the claim (None: not known, as on rows written before migration 10).
    pub claim_flags: Option<i64>,
}

/// The claim's conditions beyond its bill, as stored in `ledger_settlements.claim_flags`.
pub fn claim_flags(in_county: bool, referral_ok: bool, major_disease: bool) -> i64 {
    i64::from(in_county) | i64::from(referral_ok) << 1 | i64::from(major_disease) << 2
}

/// One ledger entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub layer: i64,
    pub fund: String,
    pub amount_fen: i64,
    pub outpatient_fen: i64,
    pub base_delta_fen: i64,
    pub personal_delta_fen: i64,
    pub stay_level: i64,
    pub stay_delta: i64,
}

/// The entries of a settlement: one per applied layer (with its fund), then the personal part.
pub fn entries_of(policy: &Policy, s: &Settlement) -> Vec<Entry> {
    let outpatient = s.med_type == MedType::OutpatientChronic;
    let mut out = Vec::with_capacity(usize::from(s.n_layers) + 1);
    for (i, (l, layer)) in s.layers().iter().zip(&policy.layers).enumerate() {
        // A layer that did not apply can still have nothing to record; skip it only when all is zero.
        if l.amount_fen == 0 && l.acc_base_delta_fen == 0 && l.acc_personal_delta_fen == 0 && !l.applied {
            continue;
        }
        let fund = layer.fund.map_or("-", Fund::code);
        out.push(Entry {
            layer: i as i64,
            fund: fund.to_string(),
            amount_fen: l.amount_fen,
            outpatient_fen: if outpatient { l.amount_fen } else { 0 },
            base_delta_fen: l.acc_base_delta_fen,
            personal_delta_fen: l.acc_personal_delta_fen,
            stay_level: -1,
            stay_delta: 0,
        });
    }
    let inpatient = s.med_type == MedType::Inpatient;
    out.push(Entry {
        layer: -1,
        fund: PERSONAL_FUND.to_string(),
        amount_fen: s.psn_part_amt.0,
        outpatient_fen: 0,
        base_delta_fen: 0,
        personal_delta_fen: 0,
        stay_level: if inpatient { i64::from(s.level_index) } else { -1 },
        stay_delta: i64::from(inpatient),
    });
    out
}

/// The entries that cancel `entries` (every amount and delta negated).
pub fn negated(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|e| Entry {
            amount_fen: -e.amount_fen,
            outpatient_fen: -e.outpatient_fen,
            base_delta_fen: -e.base_delta_fen,
            personal_delta_fen: -e.personal_delta_fen,
            stay_delta: -e.stay_delta,
            ..e.clone()
        })
        .collect()
}

/// Applies entries to accumulators (what `verify` does from scratch).
pub fn apply_entries(acc: &mut Accumulators, entries: &[Entry]) {
    for e in entries {
        if e.layer >= 0 {
            let a = &mut acc.layers[e.layer as usize];
            a.paid_fen += e.amount_fen;
            a.outpatient_paid_fen += e.outpatient_fen;
            a.base_fen += e.base_delta_fen;
            a.personal_fen += e.personal_delta_fen;
        }
        if e.stay_level >= 0 {
            let n = &mut acc.inpatient_stays[e.stay_level as usize];
            *n = (i64::from(*n) + e.stay_delta) as u16;
        }
    }
}

/// Totals of a settlement row, from its `Settlement` (or the negation for a cancellation).
#[derive(Clone, Copy, Debug)]
pub struct Totals {
    pub year: u16,
    pub med_type: i64,
    pub medfee_sumamt: i64,
    pub inscp_scp_amt: i64,
    pub act_pay_dedc: i64,
    pub fund_pay_sumamt: i64,
    pub hosp_part_amt: i64,
    pub psn_part_amt: i64,
}

impl Totals {
    /// The totals of a stored settlement row (negate them for its cancellation).
    pub fn of_stored(s: &StoredSettlement) -> Totals {
        Totals {
            year: s.year as u16,
            med_type: s.med_type,
            medfee_sumamt: s.medfee_sumamt,
            inscp_scp_amt: s.inscp_scp_amt,
            act_pay_dedc: s.act_pay_dedc,
            fund_pay_sumamt: s.fund_pay_sumamt,
            hosp_part_amt: s.hosp_part_amt,
            psn_part_amt: s.psn_part_amt,
        }
    }

    pub fn of(s: &Settlement) -> Totals {
        Totals {
            year: s.year,
            med_type: i64::from(s.med_type.code()),
            medfee_sumamt: s.medfee_sumamt.0,
            inscp_scp_amt: s.inscp_scp_amt.0,
            act_pay_dedc: s.act_pay_dedc.0,
            fund_pay_sumamt: s.fund_pay_sumamt.0,
            hosp_part_amt: s.hosp_part_amt.0,
            psn_part_amt: s.psn_part_amt.0,
        }
    }
    pub fn negated(&self) -> Totals {
        Totals {
            medfee_sumamt: -self.medfee_sumamt,
            inscp_scp_amt: -self.inscp_scp_amt,
            act_pay_dedc: -self.act_pay_dedc,
            fund_pay_sumamt: -self.fund_pay_sumamt,
            hosp_part_amt: -self.hosp_part_amt,
            psn_part_amt: -self.psn_part_amt,
            ..*self
        }
    }
}

/// Appends a settlement (or cancellation) with its entries to `batch` and stores the accumulators after it.
/// `acc_after` must equal the locked accumulators with `entries` applied; this is asserted, so a
/// mismatch aborts the transaction instead of storing a ledger that does not add up.
#[allow(clippy::too_many_arguments)]
pub fn append(
    batch: &mut Batch,
    head: &SettlementHead,
    totals: &Totals,
    entries: &[Entry],
    locked: &LockedAcc,
    acc_after: &Accumulators,
    policy_id: &str,
    n_layers: usize,
) -> Result<()> {
    let mut check = locked.acc;
    apply_entries(&mut check, entries);
    assert_eq!(&check, acc_after, "ledger entries do not reproduce the accumulators");
    let fund_sum: i64 = entries.iter().filter(|e| e.layer >= 0 && e.fund != "999996" && e.fund != "-").map(|e| e.amount_fen).sum();
    assert_eq!(fund_sum, totals.fund_pay_sumamt, "fund entries do not add up to fund_pay_sumamt");
    assert_eq!(totals.fund_pay_sumamt + totals.hosp_part_amt + totals.psn_part_amt, totals.medfee_sumamt, "settlement parts do not add up");
    let now = now_text();
    batch.settlements.push(vec![
        Val::T(head.setl_id.clone()),
        Val::I(head.seq),
        head.reverses.clone().into(),
        Val::T(head.msgid.clone()),
        Val::T(head.mdtrt_id.clone()),
        Val::T(head.psn_no.clone()),
        Val::T(head.id_no.clone()),
        head.village_code.clone().into(),
        Val::T(head.fixmedins_code.clone()),
        Val::T(head.insuplc_admdvs.clone()),
        Val::I(head.setl_date),
        Val::I(i64::from(totals.year)),
        Val::I(totals.med_type),
        Val::I(head.hosp_lv),
        Val::I(head.identities),
        Val::T(head.policy_id.clone()),
        Val::T(head.policy_version.clone()),
        Val::I(totals.medfee_sumamt),
        Val::I(head.fulamt_ownpay_amt),
        Val::I(head.overlmt_selfpay),
        Val::I(head.preselfpay_amt),
        Val::I(totals.inscp_scp_amt),
        Val::I(totals.act_pay_dedc),
        Val::I(totals.fund_pay_sumamt),
        Val::I(totals.hosp_part_amt),
        Val::I(totals.psn_part_amt),
        Val::T(head.outcome_json.clone()),
        Val::T(now.clone()),
        Val::T(head.opter.clone()),
        head.claim_flags.into(),
    ]);
    for e in entries {
        batch.entries.push(entry_row(&head.setl_id, &head.psn_no, totals.year, &head.insuplc_admdvs, e));
    }
    let delta = if head.reverses.is_some() { -1 } else { 1 };
    let after = LockedAcc { acc: *acc_after, policy_id: policy_id.to_string(), settlements: locked.settlements + delta };
    batch.accs.insert((head.psn_no.clone(), totals.year), (after, encode_acc(acc_after, n_layers)));
    Ok(())
}

const ADJUSTMENT_COLS: [&str; 28] = [
    "adj_id",
    "run_id",
    "setl_id",
    "psn_no",
    "year",
    "mdtrt_id",
    "id_no",
    "village_code",
    "fixmedins_code",
    "insuplc_admdvs",
    "setl_date",
    "reason",
    "identities",
    "policy_id",
    "policy_version",
    "fund_390100",
    "fund_390200",
    "fund_620100",
    "fund_610100",
    "fund_640100",
    "fund_999996",
    "act_pay_dedc",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "psn_part_amt",
    "outcome",
    "created_at",
    "opter",
];

/// One adjustment of a settlement by a re-settlement run: what the engine computes now minus what the
/// settlement (with its earlier adjustments) paid. Amounts are differences; its entries likewise.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdjustmentHead {
    pub adj_id: String,
    pub run_id: i64,
    pub setl_id: String,
    pub psn_no: String,
    pub year: u16,
    pub mdtrt_id: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub fixmedins_code: String,
    pub insuplc_admdvs: String,
    pub setl_date: i64,
    pub reason: String,
    pub identities: i64,
    pub policy_id: String,
    pub policy_version: String,
    /// By `Fund::index()`.
    pub funds_fen: [i64; 6],
    pub act_pay_dedc: i64,
    pub fund_pay_sumamt: i64,
    pub hosp_part_amt: i64,
    pub psn_part_amt: i64,
    pub outcome_json: String,
    pub opter: String,
}

/// The adjustment id of run `run_id` for settlement `setl_id` (one per run and settlement).
pub fn adj_id_of(run_id: i64, setl_id: &str) -> String {
    format!("AJ{run_id:08}-{setl_id}")
}

/// What `entries` amount to, per (layer, fund, stay level): a settlement's entries plus its adjustments'.
fn entry_sums(entries: &[Entry]) -> std::collections::BTreeMap<(i64, String, i64), Entry> {
    let mut m: std::collections::BTreeMap<(i64, String, i64), Entry> = Default::default();
    for e in entries {
        let k = (e.layer, e.fund.clone(), e.stay_level);
        let t = m.entry(k).or_insert_with(|| Entry {
            layer: e.layer,
            fund: e.fund.clone(),
            amount_fen: 0,
            outpatient_fen: 0,
            base_delta_fen: 0,
            personal_delta_fen: 0,
            stay_level: e.stay_level,
            stay_delta: 0,
        });
        t.amount_fen += e.amount_fen;
        t.outpatient_fen += e.outpatient_fen;
        t.base_delta_fen += e.base_delta_fen;
        t.personal_delta_fen += e.personal_delta_fen;
        t.stay_delta += e.stay_delta;
    }
    m
}

/// The entries that take a settlement from `current` (its entries and earlier adjustments) to `new`
/// (what it would be now): per layer, fund and stay level, new − current, leaving out what is zero.
/// Layers in order, the personal entry last. Empty when nothing changes.
pub fn entry_diff(current: &[Entry], new: &[Entry]) -> Vec<Entry> {
    let cur = entry_sums(current);
    let mut out = entry_sums(new);
    for (k, c) in cur {
        let t = out.entry(k).or_insert_with(|| Entry {
            amount_fen: 0,
            outpatient_fen: 0,
            base_delta_fen: 0,
            personal_delta_fen: 0,
            stay_delta: 0,
            ..c.clone()
        });
        t.amount_fen -= c.amount_fen;
        t.outpatient_fen -= c.outpatient_fen;
        t.base_delta_fen -= c.base_delta_fen;
        t.personal_delta_fen -= c.personal_delta_fen;
        t.stay_delta -= c.stay_delta;
    }
    let mut v: Vec<Entry> = out
        .into_values()
        .filter(|e| e.amount_fen != 0 || e.outpatient_fen != 0 || e.base_delta_fen != 0 || e.personal_delta_fen != 0 || e.stay_delta != 0)
        .collect();
    v.sort_by_key(|e| (e.layer < 0, e.layer));
    v
}

/// Money of entries by fund: (`Fund::index()` amounts, funds paid (all but the hospital's share),
/// the hospital's share, the personal part).
pub fn entry_money(entries: &[Entry]) -> ([i64; 6], i64, i64, i64) {
    let mut funds = [0i64; 6];
    let (mut fund_pay, mut hosp, mut psn) = (0i64, 0i64, 0i64);
    for e in entries {
        if e.fund == PERSONAL_FUND {
            psn += e.amount_fen;
        } else if e.layer >= 0 {
            if let Some(f) = Fund::from_code(&e.fund) {
                funds[f.index()] += e.amount_fen;
            }
            if e.fund == "999996" {
                hosp += e.amount_fen;
            } else if e.fund != "-" {
                fund_pay += e.amount_fen;
            }
        }
    }
    (funds, fund_pay, hosp, psn)
}

/// Appends a re-settlement's adjustment of one settlement and its entries to `batch`. The entries must
/// add up to the head's amounts (asserted, like [`append`]); the accumulators follow through
/// [`set_accumulators`] once per person-year.
pub fn append_adjustment(batch: &mut Batch, head: &AdjustmentHead, entries: &[Entry]) -> Result<()> {
    let (funds, fund_pay, hosp, psn) = entry_money(entries);
    assert_eq!(funds, head.funds_fen, "adjustment entries do not add up to its funds");
    assert_eq!((fund_pay, hosp, psn), (head.fund_pay_sumamt, head.hosp_part_amt, head.psn_part_amt), "adjustment entries do not add up");
    assert_eq!(fund_pay + hosp + psn, 0, "an adjustment moves money between parts of one bill; it must add up to zero");
    let now = now_text();
    let mut row = vec![
        Val::T(head.adj_id.clone()),
        Val::I(head.run_id),
        Val::T(head.setl_id.clone()),
        Val::T(head.psn_no.clone()),
        Val::I(i64::from(head.year)),
        Val::T(head.mdtrt_id.clone()),
        Val::T(head.id_no.clone()),
        head.village_code.clone().into(),
        Val::T(head.fixmedins_code.clone()),
        Val::T(head.insuplc_admdvs.clone()),
        Val::I(head.setl_date),
        Val::T(head.reason.clone()),
        Val::I(head.identities),
        Val::T(head.policy_id.clone()),
        Val::T(head.policy_version.clone()),
    ];
    row.extend(head.funds_fen.iter().map(|&f| Val::I(f)));
    row.extend([
        Val::I(head.act_pay_dedc),
        Val::I(head.fund_pay_sumamt),
        Val::I(head.hosp_part_amt),
        Val::I(head.psn_part_amt),
        Val::T(head.outcome_json.clone()),
        Val::T(now),
        Val::T(head.opter.clone()),
    ]);
    batch.adjustments.push(row);
    for e in entries {
        batch.entries.push(entry_row(&head.adj_id, &head.psn_no, head.year, &head.insuplc_admdvs, e));
    }
    Ok(())
}

/// Stores a person-year's accumulators after a re-settlement (upserted at flush, with the batch). The
/// caller has checked that they equal the locked ones with the adjustments' entries applied.
pub fn set_accumulators(
    batch: &mut Batch,
    psn_no: &str,
    year: u16,
    locked: &LockedAcc,
    acc: &Accumulators,
    policy_id: &str,
    n_layers: usize,
) {
    let after = LockedAcc { acc: *acc, policy_id: policy_id.to_string(), settlements: locked.settlements };
    batch.accs.insert((psn_no.to_string(), year), (after, encode_acc(acc, n_layers)));
}

/// An entry as a row of `ledger_entries` (`ENTRY_COLS`), for the settlement or adjustment `owner`; the
/// insured area is the region key PostgreSQL partitions the entries by.
fn entry_row(owner: &str, psn_no: &str, year: u16, insuplc_admdvs: &str, e: &Entry) -> Vec<Val> {
    vec![
        Val::T(owner.to_string()),
        Val::T(psn_no.to_string()),
        Val::I(i64::from(year)),
        Val::I(e.layer),
        Val::T(e.fund.clone()),
        Val::I(e.amount_fen),
        Val::I(e.outpatient_fen),
        Val::I(e.base_delta_fen),
        Val::I(e.personal_delta_fen),
        Val::I(e.stay_level),
        Val::I(e.stay_delta),
        Val::T(insuplc_admdvs.to_string()),
    ]
}

/// The entries of one settlement, in layer order (the personal entry last).
pub async fn entries_of_settlement(c: &mut sqlx::AnyConnection, setl_id: &str) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT layer, fund, amount_fen, outpatient_fen, base_delta_fen, personal_delta_fen, stay_level, stay_delta \
         FROM ledger_entries WHERE setl_id = $1 ORDER BY id",
    )
    .bind(setl_id.to_string())
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(entry_from_row).collect()
}

/// What a settlement amounts to now: its entries and those of its adjustments, one per layer (and the
/// personal entry last) — what a cancellation negates.
pub async fn effective_entries(c: &mut sqlx::AnyConnection, setl_id: &str) -> Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT layer, fund, amount_fen, outpatient_fen, base_delta_fen, personal_delta_fen, stay_level, stay_delta \
         FROM ledger_entries WHERE setl_id = $1 OR setl_id IN (SELECT a.adj_id FROM ledger_adjustments a WHERE a.setl_id = $2) ORDER BY id",
    )
    .bind(setl_id.to_string())
    .bind(setl_id.to_string())
    .fetch_all(&mut *c)
    .await?;
    let entries: Vec<Entry> = rows.iter().map(entry_from_row).collect::<Result<_>>()?;
    let mut v: Vec<Entry> = entry_sums(&entries).into_values().collect();
    v.sort_by_key(|e| (e.layer < 0, e.layer));
    Ok(v)
}

/// Live settlements of a person-year committed after `seq` (a cancellation of one that is not the
/// last makes the year need re-settling).
pub async fn later_live_settlements(tx: &mut Tx<'_>, psn_no: &str, year: u16, seq: i64) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM ledger_settlements s WHERE s.psn_no = $1 AND s.year = $2 AND s.seq > $3 AND s.reverses IS NULL \
         AND NOT EXISTS (SELECT 1 FROM ledger_settlements c WHERE c.reverses = s.setl_id)",
    )
    .bind(psn_no.to_string())
    .bind(i64::from(year))
    .bind(seq)
    .fetch_one(&mut **tx)
    .await?;
    get_i64(&row, 0)
}

/// A stored settlement's totals with its adjustments added (what a cancellation negates).
pub async fn effective_totals(c: &mut sqlx::AnyConnection, s: &StoredSettlement) -> Result<Totals> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(act_pay_dedc), 0) AS BIGINT), CAST(COALESCE(SUM(fund_pay_sumamt), 0) AS BIGINT), \
         CAST(COALESCE(SUM(hosp_part_amt), 0) AS BIGINT), CAST(COALESCE(SUM(psn_part_amt), 0) AS BIGINT) FROM ledger_adjustments WHERE setl_id = $1",
    )
    .bind(s.setl_id.clone())
    .fetch_one(&mut *c)
    .await?;
    let mut t = Totals::of_stored(s);
    t.act_pay_dedc += get_i64(&row, 0)?;
    t.fund_pay_sumamt += get_i64(&row, 1)?;
    t.hosp_part_amt += get_i64(&row, 2)?;
    t.psn_part_amt += get_i64(&row, 3)?;
    Ok(t)
}

/// An entry from the first eight columns of a row (`layer, fund, amount_fen, outpatient_fen, base_delta_fen,
/// personal_delta_fen, stay_level, stay_delta`).
pub(crate) fn entry_from_row(r: &sqlx::any::AnyRow) -> Result<Entry> {
    Ok(Entry {
        layer: get_i64(r, 0)?,
        fund: get_text(r, 1)?,
        amount_fen: get_i64(r, 2)?,
        outpatient_fen: get_i64(r, 3)?,
        base_delta_fen: get_i64(r, 4)?,
        personal_delta_fen: get_i64(r, 5)?,
        stay_level: get_i64(r, 6)?,
        stay_delta: get_i64(r, 7)?,
    })
}

/// A stored settlement row (for cancellation, slips and the REST API).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredSettlement {
    pub setl_id: String,
    pub seq: i64,
    pub reverses: Option<String>,
    pub cancelled_by: Option<String>,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub fixmedins_code: String,
    pub insuplc_admdvs: String,
    pub setl_date: i64,
    pub year: i64,
    pub med_type: i64,
    pub hosp_lv: i64,
    pub identities: i64,
    pub policy_id: String,
    pub policy_version: String,
    pub medfee_sumamt: i64,
    pub fulamt_ownpay_amt: i64,
    pub overlmt_selfpay: i64,
    pub preselfpay_amt: i64,
    pub inscp_scp_amt: i64,
    pub act_pay_dedc: i64,
    pub fund_pay_sumamt: i64,
    pub hosp_part_amt: i64,
    pub psn_part_amt: i64,
    pub outcome: String,
    pub created_at: String,
    pub claim_flags: Option<i64>,
}

const SETTLEMENT_COLS: &str = "s.setl_id, s.seq, s.reverses, (SELECT c.setl_id FROM ledger_settlements c WHERE c.reverses = s.setl_id), \
    s.mdtrt_id, s.psn_no, s.id_no, s.village_code, s.fixmedins_code, s.insuplc_admdvs, s.setl_date, s.year, s.med_type, s.hosp_lv, \
    s.identities, s.policy_id, s.policy_version, s.medfee_sumamt, s.fulamt_ownpay_amt, s.overlmt_selfpay, s.preselfpay_amt, \
    s.inscp_scp_amt, s.act_pay_dedc, s.fund_pay_sumamt, s.hosp_part_amt, s.psn_part_amt, s.outcome, s.created_at, s.claim_flags";

fn settlement_from_row(r: &sqlx::any::AnyRow) -> Result<StoredSettlement> {
    Ok(StoredSettlement {
        setl_id: get_text(r, 0)?,
        seq: get_i64(r, 1)?,
        reverses: get_opt_text(r, 2)?,
        cancelled_by: get_opt_text(r, 3)?,
        mdtrt_id: get_text(r, 4)?,
        psn_no: get_text(r, 5)?,
        id_no: get_text(r, 6)?,
        village_code: get_opt_text(r, 7)?,
        fixmedins_code: get_text(r, 8)?,
        insuplc_admdvs: get_text(r, 9)?,
        setl_date: get_i64(r, 10)?,
        year: get_i64(r, 11)?,
        med_type: get_i64(r, 12)?,
        hosp_lv: get_i64(r, 13)?,
        identities: get_i64(r, 14)?,
        policy_id: get_text(r, 15)?,
        policy_version: get_text(r, 16)?,
        medfee_sumamt: get_i64(r, 17)?,
        fulamt_ownpay_amt: get_i64(r, 18)?,
        overlmt_selfpay: get_i64(r, 19)?,
        preselfpay_amt: get_i64(r, 20)?,
        inscp_scp_amt: get_i64(r, 21)?,
        act_pay_dedc: get_i64(r, 22)?,
        fund_pay_sumamt: get_i64(r, 23)?,
        hosp_part_amt: get_i64(r, 24)?,
        psn_part_amt: get_i64(r, 25)?,
        outcome: get_text(r, 26)?,
        created_at: get_text(r, 27)?,
        claim_flags: crate::get_opt_i64(r, 28)?,
    })
}

pub async fn settlement_in_tx(tx: &mut Tx<'_>, setl_id: &str) -> Result<Option<StoredSettlement>> {
    let sql = format!("SELECT {SETTLEMENT_COLS} FROM ledger_settlements s WHERE s.setl_id = $1");
    let row = sqlx::query(&sql).bind(setl_id.to_string()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(settlement_from_row).transpose()
}

/// The settlement (or cancellation) a national message wrote, by its `msg_log` key (2601 冲正).
pub async fn settlement_by_msgid(tx: &mut Tx<'_>, msgid: &str) -> Result<Option<StoredSettlement>> {
    let sql = format!("SELECT {SETTLEMENT_COLS} FROM ledger_settlements s WHERE s.msgid = $1");
    let row = sqlx::query(&sql).bind(msgid.to_string()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(settlement_from_row).transpose()
}

/// Filter for listing settlements; every field narrows (scopes are applied by the caller through these).
#[derive(Clone, Debug, Default)]
pub struct SettlementFilter {
    pub fixmedins_code: Option<String>,
    /// Prefix of the insured person's village code (region scope).
    pub region_prefix: Option<String>,
    pub psn_no: Option<String>,
    pub mdtrt_id: Option<String>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    pub async fn settlement(&self, setl_id: &str) -> Result<Option<StoredSettlement>> {
        let sql = format!("SELECT {SETTLEMENT_COLS} FROM ledger_settlements s WHERE s.setl_id = $1");
        let row = sqlx::query(&sql).bind(setl_id.to_string()).fetch_optional(self.pool()).await?;
        row.as_ref().map(settlement_from_row).transpose()
    }

    /// Settlements matching `f`, in commit order; values are bound, never spliced.
    pub async fn settlements(&self, f: &SettlementFilter) -> Result<Vec<StoredSettlement>> {
        let mut sql = format!("SELECT {SETTLEMENT_COLS} FROM ledger_settlements s WHERE 1=1");
        let mut binds: Vec<Val> = Vec::new();
        let mut add = |cond: &str, v: Val, sql: &mut String| {
            binds.push(v);
            sql.push_str(&cond.replace('?', &format!("${}", binds.len())));
        };
        if let Some(v) = &f.fixmedins_code {
            add(" AND s.fixmedins_code = ?", Val::T(v.clone()), &mut sql);
        }
        if let Some(v) = &f.region_prefix {
            // A person the registry has no village for (insured, never on a village roster) is in the scope
            // of the county they are insured in.
            add(" AND (s.village_code LIKE ? OR (s.village_code IS NULL AND s.insuplc_admdvs LIKE ?))", Val::T(format!("{v}%")), &mut sql);
        }
        if let Some(v) = &f.psn_no {
            add(" AND s.psn_no = ?", Val::T(v.clone()), &mut sql);
        }
        if let Some(v) = &f.mdtrt_id {
            add(" AND s.mdtrt_id = ?", Val::T(v.clone()), &mut sql);
        }
        if let Some(v) = f.from_date {
            add(" AND s.setl_date >= ?", Val::I(v), &mut sql);
        }
        if let Some(v) = f.to_date {
            add(" AND s.setl_date <= ?", Val::I(v), &mut sql);
        }
        let limit = if f.limit <= 0 { 100 } else { f.limit.min(1000) };
        sql.push_str(&format!(" ORDER BY s.seq LIMIT {limit} OFFSET {}", f.offset.max(0)));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Val::I(i) => q.bind(i),
                Val::T(t) => q.bind(t),
                Val::NullI => q.bind(None::<i64>),
                Val::NullT => q.bind(None::<String>),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(settlement_from_row).collect()
    }

    /// The entries of a settlement, in layer order (the personal entry last).
    pub async fn settlement_entries(&self, setl_id: &str) -> Result<Vec<Entry>> {
        let mut c = self.pool().acquire().await?;
        entries_of_settlement(&mut c, setl_id).await
    }
}

/// What `baozhang ledger verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub settlements: i64,
    pub cancellations: i64,
    pub entries: i64,
    pub person_years: i64,
    /// Re-settlement adjustments, and the person-years they touch (checked against the engine by
    /// `resettle::verify_resettled`).
    pub adjustments: i64,
    pub resettled_years: i64,
    /// Human-readable problems (Chinese); empty when the ledger is consistent.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Rebuilds every person-year's accumulators from the entries and compares them with the stored ones;
/// checks that every settlement's entries add up to its totals, that every cancellation cancels exactly
/// one settlement, and that no visit has two live settlements.
pub async fn verify(store: &Store) -> Result<VerifyReport> {
    let mut rep = VerifyReport::default();
    let pool = store.pool();
    let mut tx = pool.begin().await?;
    // 1. Person-years.
    let mut rebuilt: std::collections::BTreeMap<(String, i64), Accumulators> = Default::default();
    let rows = sqlx::query(
        "SELECT psn_no, year, layer, fund, amount_fen, outpatient_fen, base_delta_fen, personal_delta_fen, stay_level, stay_delta FROM ledger_entries",
    )
    .fetch_all(&mut *tx)
    .await?;
    rep.entries = rows.len() as i64;
    for r in &rows {
        let key = (get_text(r, 0)?, get_i64(r, 1)?);
        let e = Entry {
            layer: get_i64(r, 2)?,
            fund: get_text(r, 3)?,
            amount_fen: get_i64(r, 4)?,
            outpatient_fen: get_i64(r, 5)?,
            base_delta_fen: get_i64(r, 6)?,
            personal_delta_fen: get_i64(r, 7)?,
            stay_level: get_i64(r, 8)?,
            stay_delta: get_i64(r, 9)?,
        };
        if e.layer >= MAX_LAYERS as i64 || e.stay_level >= 3 {
            rep.problems.push(format!("分录层号或住院等级越界：{} {}", key.0, key.1));
            continue;
        }
        apply_entries(rebuilt.entry(key).or_default(), std::slice::from_ref(&e));
    }
    let rows = sqlx::query("SELECT psn_no, year, state FROM accumulators").fetch_all(&mut *tx).await?;
    rep.person_years = rows.len() as i64;
    let mut stored: std::collections::BTreeMap<(String, i64), Accumulators> = Default::default();
    for r in &rows {
        let key = (get_text(r, 0)?, get_i64(r, 1)?);
        let state = get_text(r, 2)?;
        match decode_acc(&state) {
            Some(a) => {
                stored.insert(key, a);
            }
            None => rep.problems.push(format!("累计值无法读取：人员 {} 年度 {}", key.0, key.1)),
        }
    }
    for (key, acc) in &rebuilt {
        match stored.get(key) {
            Some(s) if s == acc => {}
            Some(_) => rep.problems.push(format!("人员 {} 年度 {} 的累计值与台账分录之和不一致", key.0, key.1)),
            None => rep.problems.push(format!("人员 {} 年度 {} 有台账分录但没有累计值", key.0, key.1)),
        }
    }
    for (key, acc) in &stored {
        if !rebuilt.contains_key(key) && *acc != Accumulators::default() {
            rep.problems.push(format!("人员 {} 年度 {} 有累计值但没有台账分录", key.0, key.1));
        }
    }
    // 2. Each settlement's entries add up to its totals; parts add up.
    let rows = sqlx::query(
        "SELECT s.setl_id, s.medfee_sumamt, s.fund_pay_sumamt, s.hosp_part_amt, s.psn_part_amt, \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = s.setl_id AND e.layer >= 0 AND e.fund NOT IN ('999996', '-')), 0) AS BIGINT), \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = s.setl_id AND e.fund = '999996'), 0) AS BIGINT), \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = s.setl_id AND e.fund = 'PSN'), 0) AS BIGINT), \
         s.reverses FROM ledger_settlements s",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let id = get_text(r, 0)?;
        let (total, funds, hosp, psn) = (get_i64(r, 1)?, get_i64(r, 2)?, get_i64(r, 3)?, get_i64(r, 4)?);
        let (e_funds, e_hosp, e_psn) = (get_i64(r, 5)?, get_i64(r, 6)?, get_i64(r, 7)?);
        if get_opt_text(r, 8)?.is_some() {
            rep.cancellations += 1;
        } else {
            rep.settlements += 1;
        }
        if funds + hosp + psn != total {
            rep.problems.push(format!("结算 {id}：基金 + 医院 + 个人 ≠ 医疗费总额"));
        }
        if (e_funds, e_hosp, e_psn) != (funds, hosp, psn) {
            rep.problems.push(format!("结算 {id}：分录之和与结算记录不一致"));
        }
    }
    // 2b. Each adjustment's entries add up to its amounts, which move money between the parts of one
    // bill (they sum to zero), and it adjusts a settlement, not a cancellation.
    let rows = sqlx::query(
        "SELECT a.adj_id, a.fund_pay_sumamt, a.hosp_part_amt, a.psn_part_amt, \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = a.adj_id AND e.layer >= 0 AND e.fund NOT IN ('999996', '-')), 0) AS BIGINT), \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = a.adj_id AND e.fund = '999996'), 0) AS BIGINT), \
         CAST(COALESCE((SELECT SUM(e.amount_fen) FROM ledger_entries e WHERE e.setl_id = a.adj_id AND e.fund = 'PSN'), 0) AS BIGINT), \
         (SELECT o.reverses FROM ledger_settlements o WHERE o.setl_id = a.setl_id), \
         (SELECT COUNT(*) FROM ledger_settlements o WHERE o.setl_id = a.setl_id) FROM ledger_adjustments a",
    )
    .fetch_all(&mut *tx)
    .await?;
    rep.adjustments = rows.len() as i64;
    for r in &rows {
        let id = get_text(r, 0)?;
        let (funds, hosp, psn) = (get_i64(r, 1)?, get_i64(r, 2)?, get_i64(r, 3)?);
        if funds + hosp + psn != 0 {
            rep.problems.push(format!("调整 {id}：基金 + 医院 + 个人的调整额之和不为零"));
        }
        if (get_i64(r, 4)?, get_i64(r, 5)?, get_i64(r, 6)?) != (funds, hosp, psn) {
            rep.problems.push(format!("调整 {id}：分录之和与调整记录不一致"));
        }
        if get_i64(r, 8)? == 0 {
            rep.problems.push(format!("调整 {id} 指向不存在的结算"));
        } else if get_opt_text(r, 7)?.is_some() {
            rep.problems.push(format!("调整 {id} 指向一笔撤销记录"));
        }
    }
    // 3. A cancellation cancels one live settlement exactly once, with opposite amounts (the settlement's
    // and its adjustments').
    let rows = sqlx::query(
        "SELECT c.setl_id, c.reverses, o.setl_id, o.medfee_sumamt + c.medfee_sumamt, \
         CAST(o.psn_part_amt + c.psn_part_amt + COALESCE((SELECT SUM(a.psn_part_amt) FROM ledger_adjustments a WHERE a.setl_id = o.setl_id), 0) AS BIGINT), \
         CAST(o.fund_pay_sumamt + c.fund_pay_sumamt + COALESCE((SELECT SUM(a.fund_pay_sumamt) FROM ledger_adjustments a WHERE a.setl_id = o.setl_id), 0) AS BIGINT) \
         FROM ledger_settlements c LEFT JOIN ledger_settlements o ON o.setl_id = c.reverses WHERE c.reverses IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        let id = get_text(r, 0)?;
        if get_opt_text(r, 2)?.is_none() {
            rep.problems.push(format!("冲销 {id} 指向不存在的结算"));
        } else if (get_i64(r, 3)?, get_i64(r, 4)?, get_i64(r, 5)?) != (0, 0, 0) {
            rep.problems.push(format!("冲销 {id} 的金额与原结算不相反"));
        }
    }
    let rows =
        sqlx::query("SELECT reverses, COUNT(*) FROM ledger_settlements WHERE reverses IS NOT NULL GROUP BY reverses HAVING COUNT(*) > 1")
            .fetch_all(&mut *tx)
            .await?;
    for r in &rows {
        rep.problems.push(format!("结算 {} 被冲销了 {} 次", get_text(r, 0)?, get_i64(r, 1)?));
    }
    let rows = sqlx::query(
        "SELECT s.mdtrt_id, COUNT(*) FROM ledger_settlements s WHERE s.reverses IS NULL \
         AND NOT EXISTS (SELECT 1 FROM ledger_settlements c WHERE c.reverses = s.setl_id) GROUP BY s.mdtrt_id HAVING COUNT(*) > 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in &rows {
        rep.problems.push(format!("就诊 {} 有 {} 笔有效结算（重复结算）", get_text(r, 0)?, get_i64(r, 1)?));
    }
    tx.rollback().await?;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulators_round_trip_through_text() {
        let mut acc = Accumulators { inpatient_stays: [1, 0, 2, 0, 0, 0, 0, 0], ..Default::default() };
        acc.layers[0] = LayerAcc { base_fen: 100, paid_fen: 50, outpatient_paid_fen: 7, personal_fen: 3 };
        acc.layers[4] = LayerAcc { base_fen: -1, paid_fen: 9, outpatient_paid_fen: 0, personal_fen: 12 };
        let s = encode_acc(&acc, 5);
        assert_eq!(decode_acc(&s), Some(acc));
        assert_eq!(decode_acc("0,0,0"), Some(Accumulators::default()));
        assert_eq!(decode_acc("0,0"), None);
        assert_eq!(decode_acc("0,0,0;1,2,3"), None);
        // A policy with more than three tiers keeps all eight.
        acc.inpatient_stays[5] = 4;
        let s = encode_acc(&acc, 5);
        assert!(s.starts_with("1,0,2,0,0,4,0,0;"), "{s}");
        assert_eq!(decode_acc(&s), Some(acc));
    }
}
