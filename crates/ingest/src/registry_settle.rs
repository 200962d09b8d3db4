//! Settles a year of claims against the registry: each claim's person is found by `psn_no`, their
//! identities are those in force on the settlement date (not what the claims file says), and each
//! settlement is appended to the **ledger** exactly as the online service records one (same `setl_id`
//! sequence, entries, outcome JSON and person-year accumulators), so `ledger verify` holds and an online
//! settlement of the same person-year continues from these accumulators. Used by `baozhang demo`.
//!
//! A claim is a visit: `mdtrt_id` = the claim id, `msgid` = `BATCH` + the claim id, `opter` = `batch`.
//! The claims file names no hospital, so `fixmedins_code` is [`batch_fixmedins_code`] of the claim's
//! hospital level and county. Claims are committed in chunks of [`CHUNK`] (one transaction each: the
//! chunk's person-years locked in one statement, rows inserted as multi-row INSERTs); a claim whose
//! visit is already in the ledger is skipped, so a second run (or a run after an interruption) settles
//! nothing twice.

use std::collections::HashMap;
use std::path::Path;

use baozhang_core::engine::{settle_in_place, Accumulators, Settlement};
use baozhang_core::policy::Policy;
use baozhang_core::{Claim, IdentitySet};
use baozhang_store::ledger::{self, Batch, Entry, SettlementHead, Totals};
use baozhang_store::registry::PersonFacts;
use baozhang_store::{date_num, Backend, Store, StoreError};

use crate::claims::{ClaimReader, ClaimRow};
use crate::output::explanation_json;

/// Claims per transaction. Each commit writes every page its inserts touched into SQLite's WAL, and a
/// chunk's random inserts into the ledger's person- and village-ordered indexes touch nearly all of
/// their pages: fewer, larger commits write far less (the demo county's claims, SQLite: see
/// docs/SCALE.md). A chunk holds the write lock for a few seconds; batch settlement is not run beside the
/// online service's writer.
pub const CHUNK: usize = 25_000;

/// The `opter` of batch settlements.
pub const BATCH_OPTER: &str = "batch";

#[derive(Debug, thiserror::Error)]
pub enum RegistrySettleError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Read(String),
}

#[derive(Clone, Debug, Default)]
pub struct RegistrySettleSummary {
    /// Valid claim rows read.
    pub claims: u64,
    pub unknown_persons: u64,
    pub rejected: u64,
    /// Settlements appended to the ledger by this run.
    pub stored: u64,
    /// Claims whose visit the ledger already held (an earlier run): not settled again.
    pub already_settled: u64,
    /// Claims of a person-year already settled under another policy (the service refuses these too).
    pub policy_conflicts: u64,
}

/// Identities of a person on a date (yyyymmdd): the same rule as a re-settlement's.
pub fn identities_on(facts: &PersonFacts, d: i64) -> IdentitySet {
    baozhang_store::resettle::identities_on(&facts.periods, d)
}

/// The institution code recorded for a batch claim, whose file names no hospital: one per hospital level,
/// in the insured county or outside it (`DEMO-LV2`, `DEMO-LV3-OUT`).
pub fn batch_fixmedins_code(claim: &Claim) -> String {
    let lv = claim.hosp_lv.get();
    if claim.in_county {
        format!("DEMO-LV{lv}")
    } else {
        format!("DEMO-LV{lv}-OUT")
    }
}

/// The `msgid` recorded for a batch claim (no message was received; the ledger column is required).
pub fn batch_msgid(claim_id: &str) -> String {
    format!("BATCH{claim_id}")
}

/// A claim read and settled ahead against the accumulators this run expects its person-year to have
/// (what its own earlier claims left): everything its ledger rows need except the settlement number.
struct Prepared {
    claim_id: String,
    /// The main diagnosis (ICD-10) when the claims file has one.
    dise_codg: String,
    psn_no: String,
    id_no: String,
    village_code: Option<String>,
    insured_area: String,
    claim: Claim,
    ids: IdentitySet,
    /// The accumulators the settlement was computed from; used only if the locked ones are the same.
    before: Accumulators,
    after: Accumulators,
    settlement: Settlement,
    outcome_json: String,
    entries: Vec<Entry>,
}

impl Prepared {
    /// Settles (again) from `before`.
    fn settle(&mut self, policy: &Policy, before: &Accumulators) {
        let mut after = *before;
        settle_in_place(policy, &self.claim, self.ids, &mut after, &mut self.settlement);
        self.before = *before;
        self.after = after;
        self.outcome_json = explanation_json(policy, &self.settlement);
        self.entries = ledger::entries_of(policy, &self.settlement);
    }
}

/// What the reading thread hands over: a chunk of prepared claims, and the counts of the file so far.
struct Chunk {
    claims: Vec<Prepared>,
    read: RegistrySettleSummary,
}

/// Reads the claims file and settles each claim in memory, in file order, against the accumulators its
/// person-year's earlier claims left (starting from none) — the CPU half of the work, on its own thread
/// while the previous chunk is written.
fn prepare_claims(
    policy: &Policy,
    path: &Path,
    facts: HashMap<String, PersonFacts>,
    areas: HashMap<(String, u16), String>,
    out: tokio::sync::mpsc::Sender<Result<Chunk, String>>,
) {
    let reader = std::fs::File::open(path)
        .map_err(|e| format!("无法打开 {}：{e}", path.display()))
        .and_then(|f| ClaimReader::new(std::io::BufReader::new(f)).map_err(|e| format!("{}：{e}", path.display())));
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => {
            let _ = out.blocking_send(Err(e));
            return;
        }
    };
    let mut accs: HashMap<(String, u16), Accumulators> = HashMap::new();
    let mut row = ClaimRow::default();
    let mut read = RegistrySettleSummary::default();
    let mut claims = Vec::with_capacity(CHUNK);
    loop {
        let more = match reader.next_row(&mut row) {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!(line = e.line, field = %e.field, "claim row rejected");
                read.rejected += 1;
                continue;
            }
        };
        if more {
            let claim = row.claim.expect("parsed");
            read.claims += 1;
            let Some(person) = facts.get(&row.psn_no) else {
                read.unknown_persons += 1;
                continue;
            };
            if let Err(n) = policy.accepts(&claim) {
                tracing::warn!(line = row.line, field = n.field, "claim refused by the policy");
                read.rejected += 1;
                continue;
            }
            let year = claim.year();
            let ids = identities_on(person, date_num(claim.setl_date));
            let acc = accs.entry((row.psn_no.clone(), year)).or_default();
            let mut p = Prepared {
                claim_id: row.claim_id.clone(),
                dise_codg: row.dise_codg.clone(),
                psn_no: row.psn_no.clone(),
                id_no: person.id_no.clone(),
                village_code: person.village_code.clone(),
                insured_area: areas.get(&(row.psn_no.clone(), year)).cloned().unwrap_or_else(|| policy.meta.region_code.clone()),
                claim,
                ids,
                before: *acc,
                after: *acc,
                settlement: Settlement::blank(),
                outcome_json: String::new(),
                entries: Vec::new(),
            };
            p.settle(policy, acc);
            *acc = p.after;
            claims.push(p);
        }
        if claims.len() >= CHUNK || (!more && !claims.is_empty()) {
            let chunk = Chunk { claims: std::mem::replace(&mut claims, Vec::with_capacity(CHUNK)), read: read.clone() };
            if out.blocking_send(Ok(chunk)).is_err() {
                return; // the writing side stopped (an error): nothing more to do
            }
        }
        if !more {
            break;
        }
    }
    // The counts of a tail with no settleable claim (e.g. only unknown persons).
    let _ = out.blocking_send(Ok(Chunk { claims: Vec::new(), read }));
}

pub async fn settle_claims_from_registry(
    store: &Store,
    policy: &Policy,
    claims: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<RegistrySettleSummary, RegistrySettleError> {
    let facts = store.person_facts_by_psn().await?;
    let areas = store.insured_areas_by_psn().await?;
    // Two stages: a thread reads and settles in memory; this task writes chunk after chunk, each in one
    // transaction, checking every claim against the locked accumulators (and settling it again from them
    // when they differ from what the reading thread assumed).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk, String>>(2);
    let reading_policy = policy.clone();
    let path = claims.to_path_buf();
    let reading = std::thread::Builder::new()
        .name("bz-claims".into())
        .spawn(move || prepare_claims(&reading_policy, &path, facts, areas, tx))
        .map_err(|e| RegistrySettleError::Read(format!("无法启动读取线程：{e}")))?;
    let mut sum = RegistrySettleSummary::default();
    // The ledger grows from (perhaps) nothing: on PostgreSQL its statistics are refreshed as it grows
    // fourfold, so each chunk's look-ups use the indexes (measured on the demo county: without it the
    // claims ran at ~450/s by the middle of the year, each chunk's look-up of settled visits a
    // sequential scan).
    let mut next_statistics = 5_000u64;
    let result = async {
        while let Some(chunk) = rx.recv().await {
            let mut chunk = chunk.map_err(RegistrySettleError::Read)?;
            settle_chunk(store, policy, &mut chunk.claims, &mut sum).await?;
            if sum.stored >= next_statistics {
                store.refresh_statistics(&["ledger_settlements", "ledger_entries", "accumulators", "visit_diagnoses"]).await?;
                next_statistics = next_statistics.saturating_mul(4);
            }
            (sum.claims, sum.rejected, sum.unknown_persons) = (chunk.read.claims, chunk.read.rejected, chunk.read.unknown_persons);
            progress(sum.claims);
        }
        Ok::<(), RegistrySettleError>(())
    }
    .await;
    drop(rx);
    reading.join().map_err(|_| RegistrySettleError::Read("读取理赔文件的线程异常退出".into()))?;
    result?;
    Ok(sum)
}

/// Writes one chunk of claims in one transaction, as the service's writer commits a batch: the chunk's
/// person-years locked up front in one statement, each settlement checked against (or settled again
/// from) the locked accumulators, settlements and entries appended to a [`Batch`] and inserted at the
/// end with the accumulators.
async fn settle_chunk(
    store: &Store,
    policy: &Policy,
    chunk: &mut [Prepared],
    sum: &mut RegistrySettleSummary,
) -> Result<(), RegistrySettleError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let backend = store.backend();
    let mut tx = store.begin_write().await?;
    // Claims already in the ledger (an earlier run). On SQLite the transaction holds the write lock, so
    // this is final; on PostgreSQL it is read again once the person-years are locked.
    let ids: Vec<&str> = chunk.iter().map(|p| p.claim_id.as_str()).collect();
    let mut done = ledger::visits_settled(&mut tx, &ids).await?;
    if chunk.iter().all(|p| done.contains(&p.claim_id)) {
        tx.rollback().await.map_err(StoreError::from)?;
        sum.already_settled += chunk.len() as u64;
        return Ok(());
    }
    let mut batch = Batch::default();
    let keys: Vec<(String, u16)> =
        chunk.iter().filter(|p| !done.contains(&p.claim_id)).map(|p| (p.psn_no.clone(), p.claim.year())).collect();
    ledger::lock_many(&mut tx, &mut batch, &keys).await?;
    if backend == Backend::Postgres {
        // Another process may have settled some of these while we waited for the locks.
        let ids: Vec<&str> = chunk.iter().filter(|p| !done.contains(&p.claim_id)).map(|p| p.claim_id.as_str()).collect();
        done.extend(ledger::visits_settled(&mut tx, &ids).await?);
    }
    let todo = chunk.iter().filter(|p| !done.contains(&p.claim_id)).count();
    // PostgreSQL: the chunk's numbers from the sequence in one round trip; SQLite: MAX + 1 read once.
    let prefetched = if backend == Backend::Postgres { ledger::next_seqs(&mut tx, backend, &mut batch, todo).await? } else { Vec::new() };
    let mut seqs = prefetched.into_iter();
    let mut diagnoses: Vec<Vec<baozhang_store::Val>> = Vec::new();
    for p in chunk.iter_mut() {
        if !done.insert(p.claim_id.clone()) {
            // In the ledger already, or the same claim twice in the file: one visit, one settlement.
            sum.already_settled += 1;
            continue;
        }
        let year = p.claim.year();
        let locked = ledger::lock_accumulators(&mut tx, &batch, &p.psn_no, year).await?;
        if !locked.policy_id.is_empty() && locked.policy_id != policy.meta.id {
            sum.policy_conflicts += 1;
            continue;
        }
        if locked.acc != p.before {
            // Not what the reading thread assumed (settled before this run, or a claim of the person-year
            // was skipped): settle from what the ledger holds.
            p.settle(policy, &locked.acc);
        }
        let seq = match seqs.next() {
            Some(seq) => seq,
            None => ledger::next_seq(&mut tx, backend, &mut batch).await?,
        };
        let st = &p.settlement;
        let head = SettlementHead {
            setl_id: ledger::setl_id_of(seq),
            seq,
            reverses: None,
            msgid: batch_msgid(&p.claim_id),
            mdtrt_id: p.claim_id.clone(),
            psn_no: p.psn_no.clone(),
            id_no: p.id_no.clone(),
            village_code: p.village_code.clone(),
            fixmedins_code: batch_fixmedins_code(&p.claim),
            insuplc_admdvs: p.insured_area.clone(),
            setl_date: date_num(p.claim.setl_date),
            hosp_lv: i64::from(p.claim.hosp_lv.get()),
            identities: i64::from(p.ids.bits()),
            policy_id: policy.meta.id.clone(),
            policy_version: policy.version.clone(),
            fulamt_ownpay_amt: p.claim.bill.fulamt_ownpay().0,
            overlmt_selfpay: p.claim.bill.overlmt_selfpay().0,
            preselfpay_amt: p.claim.bill.preselfpay().0,
            outcome_json: std::mem::take(&mut p.outcome_json),
            opter: BATCH_OPTER.to_string(),
            claim_flags: Some(ledger::claim_flags(p.claim.in_county, p.claim.referral_ok, p.claim.major_disease)),
        };
        ledger::append(&mut batch, &head, &Totals::of(st), &p.entries, &locked, &p.after, &policy.meta.id, policy.layers.len())?;
        if !p.dise_codg.is_empty() {
            diagnoses.push(vec![p.claim_id.clone().into(), p.dise_codg.clone().into(), "batch".into()]);
        }
        sum.stored += 1;
    }
    batch.flush(&mut tx).await?;
    baozhang_store::upsert_rows(
        &mut tx,
        "visit_diagnoses",
        &["mdtrt_id", "dise_codg", "source"],
        &diagnoses,
        "ON CONFLICT (mdtrt_id) DO NOTHING",
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
