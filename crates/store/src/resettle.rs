//! Re-settlement through the ledger (issue 17): a person-year's live settlements settled again, in their
//! original order, under the policy and the identities as they are known now; the differences become
//! adjustment entries (written by `ledger`, never by this module), and the accumulators follow in the
//! same transaction.
//!
//! Why re-settle: an identity recognised late with an earlier effective date, a cancellation of a
//! settlement that was not the person-year's last (the later ones were computed on accumulators that no
//! longer hold), an application for assistance after discharge, the year-end true-up.
//!
//! Idempotent by construction: the adjustment of a claim is "what the engine computes now − what the
//! settlement and its earlier adjustments paid", so a second run with nothing changed writes nothing, and
//! a run resumed after a crash redoes only what did not commit.

use std::collections::HashMap;

use baozhang_core::engine::{resettle_year, Accumulators, Settlement, MAX_ANNUAL_FEN};
use baozhang_core::policy::Policy;
use baozhang_core::{Bill, Claim, Date, Fen, HospLevel, Identity, IdentitySet, MedType};

use crate::ledger::{self, AdjustmentHead, Batch, Entry};
use crate::{get_i64, get_opt_i64, get_opt_text, get_text, now_text, num_date, Result, Store, StoreError, Tx};

/// Where re-settlement finds the policy of a claim: by insured area and date, as the online service does.
pub trait PolicySource: Sync {
    fn policy_for(&self, area: &str, date: Date) -> Option<&Policy>;
    /// A policy by its version (the hash recorded with every settlement and adjustment).
    fn by_version(&self, version: &str) -> Option<&Policy>;
}

/// Why a person-year is settled again (recorded with the run and every adjustment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 身份认定滞后：an identity recognised later with an earlier effective date.
    LateIdentity,
    /// 撤销非末笔结算：a cancelled settlement was not the person-year's last.
    Cancellation,
    /// 依申请救助：an approved application for assistance after discharge.
    Application,
    /// 年终清算：the year-end true-up of the annual layers.
    YearEnd,
}

pub const ALL_REASONS: [Reason; 4] = [Reason::LateIdentity, Reason::Cancellation, Reason::Application, Reason::YearEnd];

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::LateIdentity => "late_identity",
            Reason::Cancellation => "cancellation",
            Reason::Application => "application",
            Reason::YearEnd => "year_end",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Reason::LateIdentity => "身份认定滞后",
            Reason::Cancellation => "撤销非末笔结算",
            Reason::Application => "依申请救助",
            Reason::YearEnd => "年终清算",
        }
    }
    pub fn parse(s: &str) -> Option<Reason> {
        ALL_REASONS.into_iter().find(|r| r.code() == s.trim() || r.name_zh() == s.trim())
    }
}

/// Why a person-year cannot be re-settled (a refusal for a person to read; nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ResettleError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Refused(String),
}

/// One live settlement of a person-year, with what it is now (its entries and earlier adjustments).
#[derive(Clone, Debug)]
pub struct YearClaim {
    pub setl_id: String,
    pub seq: i64,
    pub mdtrt_id: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub fixmedins_code: String,
    pub insuplc_admdvs: String,
    pub setl_date: i64,
    pub claim: Claim,
    pub policy_id: String,
    /// Identities it is settled with now (the latest adjustment's, else the settlement's).
    pub identities: i64,
    /// The settlement's entries and its adjustments' together.
    pub entries: Vec<Entry>,
    pub act_pay_dedc: i64,
}

/// Placeholders `$from..$from+n-1`.
fn marks(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A person-year's live settlements, or why it cannot be re-settled.
pub type Loaded = std::result::Result<Vec<YearClaim>, String>;

/// The live settlements of a person-year in commit order, each with its effective entries.
pub async fn load_person_year(tx: &mut Tx<'_>, psn_no: &str, year: u16) -> std::result::Result<Vec<YearClaim>, ResettleError> {
    let mut m = load_person_years(tx, &[psn_no.to_string()], year).await?;
    m.remove(psn_no).unwrap_or(Ok(Vec::new())).map_err(ResettleError::Refused)
}

/// [`load_person_year`] for many person-years of one year in three queries per 500 (settlements with their
/// visit and institution, earlier adjustments, entries).
pub async fn load_person_years(tx: &mut Tx<'_>, psns: &[String], year: u16) -> Result<HashMap<String, Loaded>> {
    let mut out: HashMap<String, Loaded> = HashMap::new();
    for chunk in psns.chunks(500) {
        load_chunk(tx, chunk, year, &mut out).await?;
    }
    Ok(out)
}

async fn load_chunk(tx: &mut Tx<'_>, psns: &[String], year: u16, out: &mut HashMap<String, Loaded>) -> Result<()> {
    let n = psns.len();
    let sql = format!(
        "SELECT s.setl_id, s.seq, s.mdtrt_id, s.id_no, s.village_code, s.fixmedins_code, s.insuplc_admdvs, s.setl_date, s.med_type, \
         s.hosp_lv, s.identities, s.policy_id, s.medfee_sumamt, s.fulamt_ownpay_amt, s.overlmt_selfpay, s.preselfpay_amt, \
         s.inscp_scp_amt, s.act_pay_dedc, s.claim_flags, m.referral_ok, m.major_disease, i.admdvs, s.psn_no \
         FROM ledger_settlements s LEFT JOIN mdtrts m ON m.mdtrt_id = s.mdtrt_id LEFT JOIN institutions i ON i.fixmedins_code = s.fixmedins_code \
         WHERE s.psn_no IN ({}) AND s.year = ${} AND s.reverses IS NULL \
         AND NOT EXISTS (SELECT 1 FROM ledger_settlements c WHERE c.reverses = s.setl_id) ORDER BY s.psn_no, s.seq",
        marks(1, n),
        n + 1
    );
    let mut q = sqlx::query(&sql);
    for p in psns {
        q = q.bind(p.clone());
    }
    let rows = q.bind(i64::from(year)).fetch_all(&mut **tx).await?;
    // (psn, index in its list) of each settlement.
    let mut index: HashMap<String, (String, usize)> = HashMap::new();
    for r in &rows {
        let psn = get_text(r, 22)?;
        let entry = out.entry(psn.clone()).or_insert_with(|| Ok(Vec::new()));
        let Ok(list) = entry else { continue };
        match claim_from_row(r)? {
            Ok(c) => {
                index.insert(c.setl_id.clone(), (psn, list.len()));
                list.push(c);
            }
            Err(why) => *entry = Err(why),
        }
    }
    let sql = format!(
        "SELECT adj_id, setl_id, identities, act_pay_dedc FROM ledger_adjustments WHERE psn_no IN ({}) AND year = ${} ORDER BY run_id",
        marks(1, n),
        n + 1
    );
    let mut q = sqlx::query(&sql);
    for p in psns {
        q = q.bind(p.clone());
    }
    let mut owner: HashMap<String, (String, usize)> = HashMap::new();
    for r in &q.bind(i64::from(year)).fetch_all(&mut **tx).await? {
        if let Some((psn, i)) = index.get(&get_text(r, 1)?).cloned() {
            if let Some(Ok(list)) = out.get_mut(&psn) {
                list[i].identities = get_i64(r, 2)?;
                list[i].act_pay_dedc += get_i64(r, 3)?;
            }
            owner.insert(get_text(r, 0)?, (psn, i));
        }
    }
    let sql = format!(
        "SELECT layer, fund, amount_fen, outpatient_fen, base_delta_fen, personal_delta_fen, stay_level, stay_delta, setl_id \
         FROM ledger_entries WHERE psn_no IN ({}) AND year = ${} ORDER BY id",
        marks(1, n),
        n + 1
    );
    let mut q = sqlx::query(&sql);
    for p in psns {
        q = q.bind(p.clone());
    }
    for r in &q.bind(i64::from(year)).fetch_all(&mut **tx).await? {
        let id = get_text(r, 8)?;
        let Some((psn, i)) = index.get(&id).or_else(|| owner.get(&id)) else { continue };
        if let Some(Ok(list)) = out.get_mut(psn) {
            list[*i].entries.push(ledger::entry_from_row(r)?);
        }
    }
    Ok(())
}

/// A live settlement row as a claim to settle again, or why it cannot be.
fn claim_from_row(r: &sqlx::any::AnyRow) -> Result<std::result::Result<YearClaim, String>> {
    let setl_id = get_text(r, 0)?;
    let bad = |what: &str| format!("结算 {setl_id} 的{what}数据有误，无法重算");
    let Some(setl_date) = num_date(get_i64(r, 7)?) else { return Ok(Err(bad("结算日期"))) };
    let Some(med_type) = MedType::from_code(get_i64(r, 8)? as u16) else { return Ok(Err(bad("医疗类别"))) };
    let Some(hosp_lv) = HospLevel::new(get_i64(r, 9)? as u8) else { return Ok(Err(bad("医院等级"))) };
    let fixmedins_code = get_text(r, 5)?;
    let insuplc_admdvs = get_text(r, 6)?;
    let (in_county, referral_ok, major_disease) = match get_opt_i64(r, 18)? {
        Some(f) => (f & 1 != 0, f & 2 != 0, f & 4 != 0),
        None => {
            // Written before claim conditions were stored: from the visit and the institution.
            let (Some(referral), Some(major)) = (get_opt_i64(r, 19)?, get_opt_i64(r, 20)?) else {
                return Ok(Err(format!("结算 {setl_id} 记账时未保存就诊条件（转诊、重大疾病），也没有对应的就诊登记，无法重算")));
            };
            let in_county = match get_opt_text(r, 21)? {
                Some(a) => a == insuplc_admdvs,
                None => !fixmedins_code.ends_with("-OUT"),
            };
            (in_county, referral != 0, major != 0)
        }
    };
    let bill = match Bill::new(Fen(get_i64(r, 12)?), Fen(get_i64(r, 13)?), Fen(get_i64(r, 14)?), Fen(get_i64(r, 15)?), Fen(get_i64(r, 16)?))
    {
        Ok(b) => b,
        Err(e) => return Ok(Err(format!("结算 {setl_id} 的费用数据有误，无法重算：{e}"))),
    };
    Ok(Ok(YearClaim {
        seq: get_i64(r, 1)?,
        mdtrt_id: get_text(r, 2)?,
        id_no: get_text(r, 3)?,
        village_code: get_opt_text(r, 4)?,
        fixmedins_code,
        insuplc_admdvs,
        setl_date: get_i64(r, 7)?,
        claim: Claim { site: Default::default(), setl_date, med_type, hosp_lv, in_county, referral_ok, major_disease, bill },
        policy_id: get_text(r, 11)?,
        identities: get_i64(r, 10)?,
        entries: Vec::new(),
        act_pay_dedc: get_i64(r, 17)?,
        setl_id,
    }))
}

/// Identity periods as the registry holds them now, by ID number: (identity, start, end exclusive).
pub async fn identity_periods_of(tx: &mut Tx<'_>, id_nos: &[String]) -> Result<HashMap<String, Vec<(String, i64, Option<i64>)>>> {
    let mut out: HashMap<String, Vec<(String, i64, Option<i64>)>> = HashMap::new();
    for chunk in id_nos.chunks(500) {
        let sql = format!(
            "SELECT id_no, identity, start_date, end_date FROM identity_periods WHERE id_no IN ({}) AND retracted_import IS NULL",
            marks(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in &q.fetch_all(&mut **tx).await? {
            out.entry(get_text(r, 0)?).or_default().push((get_text(r, 1)?, get_i64(r, 2)?, get_opt_i64(r, 3)?));
        }
    }
    Ok(out)
}

/// The identities in force on `d` (yyyymmdd) among `periods`.
pub fn identities_on(periods: &[(String, i64, Option<i64>)], d: i64) -> IdentitySet {
    let mut set = IdentitySet::EMPTY;
    for (id, start, end) in periods {
        if *start <= d && end.is_none_or(|e| e > d) {
            if let Some(i) = Identity::parse(id) {
                set = set.with(i);
            }
        }
    }
    set
}

/// One claim of a re-settlement plan: the settlement as it would be now and the entries that take the
/// stored one there.
#[derive(Clone, Debug)]
pub struct PlannedClaim {
    pub index: usize,
    pub identities: IdentitySet,
    pub new: Settlement,
    pub diff: Vec<Entry>,
    /// By `Fund::index()`.
    pub funds_fen: [i64; 6],
    pub fund_pay_fen: i64,
    pub hosp_fen: i64,
    pub psn_fen: i64,
    pub act_pay_dedc_fen: i64,
}

impl PlannedClaim {
    pub fn changed(&self) -> bool {
        !self.diff.is_empty() || self.act_pay_dedc_fen != 0
    }
}

/// The pure part of a re-settlement: every claim settled again in order from empty accumulators
/// (`engine::resettle_year`), and per claim the entries new − current. Returns the plan and the
/// accumulators after the year; `current` folded with every diff equals them (checked by the caller).
pub fn plan(policy: &Policy, claims: &[YearClaim], ids: &[IdentitySet]) -> std::result::Result<(Vec<PlannedClaim>, Accumulators), String> {
    // Every accumulator grows by at most a claim's total, so the year's total bounds them all.
    let mut total = 0i64;
    for c in claims {
        policy.accepts(&c.claim).map_err(|n| format!("结算 {} 不能按政策“{}”重算：{}", c.setl_id, policy.meta.id, n.reason))?;
        total = total
            .checked_add(c.claim.bill.total().0)
            .filter(|&t| t <= MAX_ANNUAL_FEN)
            .ok_or_else(|| format!("结算 {} 重算后本年度累计将超过系统上限（{} 元）", c.setl_id, Fen(MAX_ANNUAL_FEN).grouped()))?;
    }
    let input: Vec<(Claim, IdentitySet, Option<Settlement>)> = claims.iter().zip(ids).map(|(c, &i)| (c.claim, i, None)).collect();
    let (diffs, acc) = resettle_year(policy, &input);
    let mut out = Vec::with_capacity(diffs.len());
    for (d, c) in diffs.into_iter().zip(claims) {
        let new_entries = ledger::entries_of(policy, &d.new);
        let diff = ledger::entry_diff(&c.entries, &new_entries);
        let (funds_fen, fund_pay_fen, hosp_fen, psn_fen) = ledger::entry_money(&diff);
        out.push(PlannedClaim {
            index: d.index,
            identities: ids[d.index],
            act_pay_dedc_fen: d.new.act_pay_dedc.0 - c.act_pay_dedc,
            new: d.new,
            diff,
            funds_fen,
            fund_pay_fen,
            hosp_fen,
            psn_fen,
        });
    }
    Ok((out, acc))
}

/// Who runs a re-settlement and why.
#[derive(Clone, Debug)]
pub struct RunCtx {
    pub run_id: i64,
    pub reason: Reason,
    pub opter: String,
}

/// An adjusted claim, for the run's report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Adjusted {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub fixmedins_code: String,
    pub village_code: Option<String>,
    pub id_no: String,
    pub setl_date: i64,
    pub funds_fen: [i64; 6],
    pub fund_pay_fen: i64,
    pub hosp_fen: i64,
    pub psn_fen: i64,
}

/// What re-settling one person-year did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PersonYearResult {
    pub claims: usize,
    pub adjusted: Vec<Adjusted>,
}

/// Re-settles one person-year from what was loaded for it (its live settlements, the person's identity
/// periods now, its accumulators as locked): the plan, checked against the accumulators, and — with
/// `write` — its adjustments and accumulators appended to `batch` (the caller flushes and commits).
///
/// `policies` finds the policy by insured area and date (the one the online service would use);
/// `explain` renders a settlement's per-layer explanation (stored with the adjustment).
#[allow(clippy::too_many_arguments)]
pub fn resettle_loaded(
    batch: &mut Batch,
    run: &RunCtx,
    psn_no: &str,
    year: u16,
    claims: &[YearClaim],
    periods: &[(String, i64, Option<i64>)],
    locked: &ledger::LockedAcc,
    policies: &dyn PolicySource,
    explain: &(dyn Fn(&Policy, &Settlement) -> String + Sync),
    write: bool,
) -> std::result::Result<PersonYearResult, ResettleError> {
    let mut res = PersonYearResult { claims: claims.len(), adjusted: Vec::new() };
    let Some(first) = claims.first() else {
        return Ok(res);
    };
    let first_date = first.claim.setl_date;
    let policy = policies
        .policy_for(&first.insuplc_admdvs, first_date)
        .ok_or_else(|| ResettleError::Refused(format!("参保地 {} 在 {first_date} 没有生效的结算政策，无法重算", first.insuplc_admdvs)))?;
    if !locked.policy_id.is_empty() && locked.policy_id != policy.meta.id {
        return Err(ResettleError::Refused(format!(
            "人员年度已按政策 {} 结算，现行政策为 {}；不同政策之间的重算请先由医保局确认政策衔接",
            locked.policy_id, policy.meta.id
        )));
    }
    // What the ledger holds must be what its entries say before anything is added to it.
    let mut current = Accumulators::default();
    for c in claims {
        ledger::apply_entries(&mut current, &c.entries);
    }
    if current != locked.acc {
        return Err(ResettleError::Store(StoreError::Corrupt(format!(
            "person-year accumulators differ from its live entries before re-settlement (year {year})"
        ))));
    }
    let ids: Vec<IdentitySet> = claims.iter().map(|c| identities_on(periods, c.setl_date)).collect();
    let (planned, after) = plan(policy, claims, &ids).map_err(ResettleError::Refused)?;
    let mut check = locked.acc;
    for p in &planned {
        ledger::apply_entries(&mut check, &p.diff);
    }
    if check != after {
        return Err(ResettleError::Store(StoreError::Corrupt(format!(
            "re-settlement entries do not reproduce the engine's accumulators (year {year})"
        ))));
    }
    for p in planned.iter().filter(|p| p.changed()) {
        let c = &claims[p.index];
        res.adjusted.push(Adjusted {
            setl_id: c.setl_id.clone(),
            mdtrt_id: c.mdtrt_id.clone(),
            fixmedins_code: c.fixmedins_code.clone(),
            village_code: c.village_code.clone(),
            id_no: c.id_no.clone(),
            setl_date: c.setl_date,
            funds_fen: p.funds_fen,
            fund_pay_fen: p.fund_pay_fen,
            hosp_fen: p.hosp_fen,
            psn_fen: p.psn_fen,
        });
        if !write {
            continue;
        }
        let head = AdjustmentHead {
            adj_id: ledger::adj_id_of(run.run_id, &c.setl_id),
            run_id: run.run_id,
            setl_id: c.setl_id.clone(),
            psn_no: psn_no.to_string(),
            year,
            mdtrt_id: c.mdtrt_id.clone(),
            id_no: c.id_no.clone(),
            village_code: c.village_code.clone(),
            fixmedins_code: c.fixmedins_code.clone(),
            insuplc_admdvs: c.insuplc_admdvs.clone(),
            setl_date: c.setl_date,
            reason: run.reason.code().to_string(),
            identities: i64::from(p.identities.bits()),
            policy_id: policy.meta.id.clone(),
            policy_version: policy.version.clone(),
            funds_fen: p.funds_fen,
            act_pay_dedc: p.act_pay_dedc_fen,
            fund_pay_sumamt: p.fund_pay_fen,
            hosp_part_amt: p.hosp_fen,
            psn_part_amt: p.psn_fen,
            outcome_json: explain(policy, &p.new),
            opter: run.opter.clone(),
        };
        ledger::append_adjustment(batch, &head, &p.diff)?;
    }
    if write && !res.adjusted.is_empty() {
        ledger::set_accumulators(batch, psn_no, year, locked, &after, &policy.meta.id, policy.layers.len());
    }
    Ok(res)
}

/// A re-settlement run as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Run {
    pub id: i64,
    pub year: i64,
    pub region: String,
    pub psn_no: Option<String>,
    pub reason: String,
    pub note: String,
    pub opter: String,
    pub status: String,
    pub person_years: i64,
    pub done_person_years: i64,
    pub last_psn_no: Option<String>,
    pub claims_adjusted: i64,
    pub refused: i64,
    pub problems: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

const RUN_COLS: &str = "id, year, region, psn_no, reason, note, opter, status, person_years, done_person_years, last_psn_no, \
    claims_adjusted, refused, problems, started_at, finished_at";

fn run_from_row(r: &sqlx::any::AnyRow) -> Result<Run> {
    Ok(Run {
        id: get_i64(r, 0)?,
        year: get_i64(r, 1)?,
        region: get_text(r, 2)?,
        psn_no: get_opt_text(r, 3)?,
        reason: get_text(r, 4)?,
        note: get_text(r, 5)?,
        opter: get_text(r, 6)?,
        status: get_text(r, 7)?,
        person_years: get_i64(r, 8)?,
        done_person_years: get_i64(r, 9)?,
        last_psn_no: get_opt_text(r, 10)?,
        claims_adjusted: get_i64(r, 11)?,
        refused: get_i64(r, 12)?,
        problems: get_text(r, 13)?,
        started_at: get_text(r, 14)?,
        finished_at: get_opt_text(r, 15)?,
    })
}

/// Creates a run inside `tx` and returns its id.
#[allow(clippy::too_many_arguments)]
pub async fn create_run_in(
    tx: &mut Tx<'_>,
    year: u16,
    region: &str,
    psn_no: Option<&str>,
    reason: Reason,
    note: &str,
    opter: &str,
    person_years: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO resettle_runs (year, region, psn_no, reason, note, opter, status, person_years, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8) RETURNING id",
    )
    .bind(i64::from(year))
    .bind(region.to_string())
    .bind(psn_no.map(str::to_string))
    .bind(reason.code().to_string())
    .bind(note.to_string())
    .bind(opter.to_string())
    .bind(person_years)
    .bind(now_text())
    .fetch_one(&mut **tx)
    .await?;
    get_i64(&row, 0)
}

/// Records progress inside the transaction that committed the person-years (so progress and
/// adjustments commit together). `problems` are the refusals of this step, one line each.
pub async fn record_progress(tx: &mut Tx<'_>, run_id: i64, last_psn_no: &str, step: &StepOutcome) -> Result<()> {
    let row = sqlx::query("SELECT problems FROM resettle_runs WHERE id = $1").bind(run_id).fetch_one(&mut **tx).await?;
    let mut problems = get_text(&row, 0)?;
    for p in &step.refused {
        if problems.lines().count() >= 200 {
            break;
        }
        problems.push_str(p);
        problems.push('\n');
    }
    sqlx::query(
        "UPDATE resettle_runs SET last_psn_no = $1, done_person_years = done_person_years + $2, claims_adjusted = claims_adjusted + $3, \
         refused = refused + $4, problems = $5 WHERE id = $6",
    )
    .bind(last_psn_no.to_string())
    .bind(step.person_years as i64)
    .bind(step.adjusted.len() as i64)
    .bind(step.refused.len() as i64)
    .bind(problems)
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What one step of a run (a few person-years, one transaction) did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StepOutcome {
    pub person_years: usize,
    pub claims: usize,
    pub adjusted: Vec<Adjusted>,
    /// "psn_no: why" of each person-year refused (nothing written for it).
    pub refused: Vec<String>,
}

impl StepOutcome {
    pub fn absorb(&mut self, other: StepOutcome) {
        self.person_years += other.person_years;
        self.claims += other.claims;
        self.adjusted.extend(other.adjusted);
        self.refused.extend(other.refused);
    }
}

/// Re-settles `psns` (one year) inside `tx`: their person-years locked (or, in a dry run, read) and
/// loaded in a few statements, then each as [`resettle_loaded`]; a refused person-year writes nothing and
/// is listed. With `write`, the run's progress is recorded in `tx` too.
#[allow(clippy::too_many_arguments)]
pub async fn resettle_step(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    run: &RunCtx,
    year: u16,
    psns: &[String],
    policies: &dyn PolicySource,
    explain: &(dyn Fn(&Policy, &Settlement) -> String + Sync),
    write: bool,
) -> Result<StepOutcome> {
    let mut out = StepOutcome::default();
    // PostgreSQL switches a statement executed often to a generic plan, and for `psn_no IN ($1 … $200)
    // AND year = $201` the generic plan reads the whole year's rows through the year index: measured,
    // a step's reads went from 65 ms to 270 ms after fifteen steps. Plan each execution for its values.
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut **tx).await?;
    }
    // Pending rows of this transaction first: they are part of what the person-years hold.
    batch.flush(tx).await?;
    let keys: Vec<(String, u16)> = psns.iter().map(|p| (p.clone(), year)).collect();
    let accs = if write {
        // Locked before they are read, as a settlement does (sorted, in one statement per 500).
        ledger::lock_many(tx, batch, &keys).await?;
        None
    } else {
        Some(ledger::read_many(tx, &keys).await?)
    };
    let t = std::time::Instant::now();
    let mut loaded = load_person_years(tx, psns, year).await?;
    let t_load = t.elapsed();
    let id_nos: Vec<String> = loaded.values().filter_map(|l| l.as_ref().ok()?.first().map(|c| c.id_no.clone())).collect();
    let periods = identity_periods_of(tx, &id_nos).await?;
    tracing::debug!(
        load_ms = t_load.as_millis() as u64,
        periods_ms = (t.elapsed() - t_load).as_millis() as u64,
        n = psns.len(),
        "re-settlement step read"
    );
    let none = Vec::new();
    for psn in psns {
        let result = match loaded.remove(psn) {
            None => Ok(PersonYearResult::default()),
            Some(Err(why)) => Err(ResettleError::Refused(why)),
            Some(Ok(claims)) => {
                let locked = match &accs {
                    Some(m) => m.get(&(psn.clone(), year)).cloned().unwrap_or_default(),
                    None => ledger::lock_accumulators(tx, batch, psn, year).await?,
                };
                let p = claims.first().and_then(|c| periods.get(&c.id_no)).unwrap_or(&none);
                resettle_loaded(batch, run, psn, year, &claims, p, &locked, policies, explain, write)
            }
        };
        match result {
            Ok(r) => {
                out.person_years += 1;
                out.claims += r.claims;
                out.adjusted.extend(r.adjusted);
            }
            Err(ResettleError::Refused(why)) => {
                tracing::warn!(run = run.run_id, "a person-year was refused by re-settlement");
                out.person_years += 1;
                out.refused.push(format!("{psn}：{why}"));
            }
            Err(ResettleError::Store(e)) => return Err(e),
        }
    }
    batch.flush(tx).await?;
    if write {
        if let Some(last) = psns.last() {
            record_progress(tx, run.run_id, last, &out).await?;
        }
    }
    Ok(out)
}

/// Person-years per transaction of a run driven outside the server (the CLI's default).
pub const STEP: usize = 200;

/// Runs (or resumes) a re-settlement run directly against the store, `step` person-years per
/// transaction — for the CLI, when no server's writer is running. `progress(done, total)` after each step.
#[allow(clippy::too_many_arguments)]
pub async fn drive_run(
    store: &Store,
    run: &RunCtx,
    year: u16,
    psns: &[String],
    step: usize,
    policies: &dyn PolicySource,
    explain: &(dyn Fn(&Policy, &Settlement) -> String + Sync),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<StepOutcome> {
    let mut total = StepOutcome::default();
    for chunk in psns.chunks(step.max(1)) {
        let mut tx = store.begin_write().await?;
        let mut batch = Batch::default();
        let step = resettle_step(&mut tx, &mut batch, run, year, chunk, policies, explain, true).await?;
        tx.commit().await?;
        total.absorb(step);
        progress(total.person_years, psns.len());
    }
    let mut tx = store.begin_write().await?;
    finish_run_in(&mut tx, run.run_id).await?;
    tx.commit().await?;
    Ok(total)
}

/// What a run would do, without writing (the confirmation page, `--dry-run`): the same computation in a
/// transaction that is rolled back.
pub async fn preview(
    store: &Store,
    year: u16,
    psns: &[String],
    policies: &dyn PolicySource,
    explain: &(dyn Fn(&Policy, &Settlement) -> String + Sync),
) -> Result<StepOutcome> {
    let run = RunCtx { run_id: 0, reason: Reason::YearEnd, opter: String::new() };
    let mut total = StepOutcome::default();
    for chunk in psns.chunks(STEP) {
        let mut tx = store.pool().begin().await?;
        let mut batch = Batch::default();
        total.absorb(resettle_step(&mut tx, &mut batch, &run, year, chunk, policies, explain, false).await?);
        tx.rollback().await?;
    }
    Ok(total)
}

pub async fn finish_run_in(tx: &mut Tx<'_>, run_id: i64) -> Result<()> {
    sqlx::query("UPDATE resettle_runs SET status = 'done', finished_at = $1 WHERE id = $2")
        .bind(now_text())
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The live settlements' person numbers of a year in a scope (village prefix; a person with no village
/// by insured area), after `after` in order — the person-years a run goes through.
pub async fn person_years_in_scope(
    store: &Store,
    year: u16,
    region: &str,
    psn_no: Option<&str>,
    after: Option<&str>,
) -> Result<Vec<String>> {
    let mut sql = String::from(
        "SELECT DISTINCT s.psn_no FROM ledger_settlements s WHERE s.year = $1 AND s.reverses IS NULL \
         AND (s.village_code LIKE $2 OR (s.village_code IS NULL AND s.insuplc_admdvs LIKE $2)) AND s.psn_no > $3",
    );
    if psn_no.is_some() {
        sql.push_str(" AND s.psn_no = $4");
    }
    sql.push_str(" ORDER BY s.psn_no");
    let mut q = sqlx::query(&sql).bind(i64::from(year)).bind(format!("{region}%")).bind(after.unwrap_or("").to_string());
    if let Some(p) = psn_no {
        q = q.bind(p.to_string());
    }
    let rows = q.fetch_all(store.pool()).await?;
    rows.iter().map(|r| get_text(r, 0)).collect()
}

/// Where a person's settlements of a year are (for scope checks): (psn_no, village or insured area).
pub async fn person_of_id(store: &Store, id_no: &str, year: u16) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT psn_no, COALESCE(village_code, insuplc_admdvs) FROM ledger_settlements WHERE id_no = $1 AND year = $2 ORDER BY seq LIMIT 1",
    )
    .bind(id_no.to_string())
    .bind(i64::from(year))
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| Ok((get_text(&r, 0)?, get_text(&r, 1)?))).transpose()
}

impl Store {
    pub async fn resettle_run(&self, id: i64) -> Result<Option<Run>> {
        let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM resettle_runs WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Runs whose scope lies inside `region` (a prefix), newest first.
    pub async fn resettle_runs(&self, region: &str, limit: i64) -> Result<Vec<Run>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM resettle_runs WHERE region LIKE $1 ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(format!("{region}%"))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// An unfinished run with exactly this scope and reason (to resume after a crash).
    pub async fn unfinished_resettle_run(&self, year: u16, region: &str, psn_no: Option<&str>, reason: Reason) -> Result<Option<Run>> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM resettle_runs WHERE status = 'running' AND year = $1 AND region = $2 AND COALESCE(psn_no, '') = $3 \
             AND reason = $4 ORDER BY id DESC LIMIT 1"
        ))
        .bind(i64::from(year))
        .bind(region.to_string())
        .bind(psn_no.unwrap_or("").to_string())
        .bind(reason.code().to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The adjustments of a run (all of them when `run_id` is None), in order, inside `region`.
    pub async fn adjustments(&self, run_id: Option<i64>, region: &str, psn_no: Option<&str>) -> Result<Vec<AdjustmentRow>> {
        let mut sql = String::from(
            "SELECT a.adj_id, a.run_id, a.setl_id, a.psn_no, a.year, a.mdtrt_id, a.id_no, a.village_code, a.fixmedins_code, a.setl_date, \
             a.reason, a.fund_390100, a.fund_390200, a.fund_620100, a.fund_610100, a.fund_640100, a.fund_999996, a.fund_pay_sumamt, \
             a.hosp_part_amt, a.psn_part_amt, a.created_at, a.outcome, a.identities \
             FROM ledger_adjustments a WHERE (a.village_code LIKE $1 OR (a.village_code IS NULL AND a.insuplc_admdvs LIKE $1))",
        );
        let mut n = 1;
        if run_id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND a.run_id = ${n}"));
        }
        if psn_no.is_some() {
            n += 1;
            sql.push_str(&format!(" AND a.psn_no = ${n}"));
        }
        sql.push_str(" ORDER BY a.run_id, a.psn_no, a.setl_id");
        let mut q = sqlx::query(&sql).bind(format!("{region}%"));
        if let Some(r) = run_id {
            q = q.bind(r);
        }
        if let Some(p) = psn_no {
            q = q.bind(p.to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let mut funds_fen = [0i64; 6];
                for (k, f) in funds_fen.iter_mut().enumerate() {
                    *f = get_i64(r, 11 + k)?;
                }
                Ok(AdjustmentRow {
                    adj_id: get_text(r, 0)?,
                    run_id: get_i64(r, 1)?,
                    setl_id: get_text(r, 2)?,
                    psn_no: get_text(r, 3)?,
                    year: get_i64(r, 4)?,
                    mdtrt_id: get_text(r, 5)?,
                    id_no: get_text(r, 6)?,
                    village_code: get_opt_text(r, 7)?,
                    fixmedins_code: get_text(r, 8)?,
                    setl_date: get_i64(r, 9)?,
                    reason: get_text(r, 10)?,
                    funds_fen,
                    fund_pay_fen: get_i64(r, 17)?,
                    hosp_fen: get_i64(r, 18)?,
                    psn_fen: get_i64(r, 19)?,
                    created_at: get_text(r, 20)?,
                    outcome: get_text(r, 21)?,
                    identities: get_i64(r, 22)?,
                })
            })
            .collect()
    }
}

/// A stored adjustment (for reports, the person page and the slip).
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdjustmentRow {
    pub adj_id: String,
    pub run_id: i64,
    pub setl_id: String,
    pub psn_no: String,
    pub year: i64,
    pub mdtrt_id: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub fixmedins_code: String,
    pub setl_date: i64,
    pub reason: String,
    pub funds_fen: [i64; 6],
    pub fund_pay_fen: i64,
    pub hosp_fen: i64,
    pub psn_fen: i64,
    pub created_at: String,
    pub outcome: String,
    pub identities: i64,
}

/// `ledger verify` for re-settled person-years: every person-year with adjustments, settled again by the
/// engine with the identities each claim was last settled with and the policy of its area and date, must
/// need no further adjustment (its settlements plus adjustments are what the engine computes). Returns
/// the person-years checked and the problems found (Chinese).
pub async fn verify_resettled(store: &Store, policies: &dyn PolicySource) -> std::result::Result<(i64, Vec<String>), ResettleError> {
    let mut problems = Vec::new();
    let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
    // Each re-settled person-year with the policy version of its newest adjustment.
    let rows = sqlx::query("SELECT psn_no, year, policy_version, run_id FROM ledger_adjustments ORDER BY year, psn_no, run_id")
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let mut latest: std::collections::BTreeMap<(u16, String), String> = Default::default();
    for r in &rows {
        latest.insert((get_i64(r, 1)? as u16, get_text(r, 0)?), get_text(r, 2)?);
    }
    let years: std::collections::BTreeSet<u16> = latest.keys().map(|(y, _)| *y).collect();
    for year in years {
        let psns: Vec<String> =
            latest.range((year, String::new())..).take_while(|((y, _), _)| *y == year).map(|((_, p), _)| p.clone()).collect();
        for chunk in psns.chunks(500) {
            let mut loaded = load_person_years(&mut tx, chunk, year).await?;
            for psn_no in chunk {
                let claims = match loaded.remove(psn_no) {
                    None => continue,
                    Some(Err(why)) => {
                        problems.push(format!("人员 {psn_no} 年度 {year}：{why}"));
                        continue;
                    }
                    Some(Ok(c)) => c,
                };
                let Some(first) = claims.first() else { continue };
                let version = &latest[&(year, psn_no.clone())];
                let Some(policy) = policies.by_version(version) else {
                    problems.push(format!(
                        "人员 {psn_no} 年度 {year}：重算所用政策版本 {version} 未加载，无法核对（参保地 {}；请用 --policy 加载该政策文件）",
                        first.insuplc_admdvs
                    ));
                    continue;
                };
                let ids: Vec<IdentitySet> = claims.iter().map(|c| IdentitySet::from_bits(c.identities as u16)).collect();
                match plan(policy, &claims, &ids) {
                    Ok((planned, _)) => {
                        for p in planned.iter().filter(|p| p.changed()) {
                            problems.push(format!(
                                "人员 {psn_no} 年度 {year}：结算 {} 的原结算加调整与按记录身份重算的结果相差（个人 {} 元）",
                                claims[p.index].setl_id,
                                Fen(p.psn_fen)
                            ));
                        }
                    }
                    Err(why) => problems.push(format!("人员 {psn_no} 年度 {year}：{why}")),
                }
            }
        }
    }
    tx.rollback().await.map_err(StoreError::from)?;
    Ok((latest.len() as i64, problems))
}

// ───────────────────────────── applications (依申请救助) ─────────────────────────────

/// An application for assistance after discharge, as recorded by the bureau.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Application {
    pub id: i64,
    pub psn_no: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub year: i64,
    /// The identity it asks to be recognised (`Identity::id`).
    pub kind: String,
    pub effective_from: i64,
    pub documents: String,
    pub status: String,
    pub decision_note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub run_id: Option<i64>,
    pub created_by: String,
    pub created_at: String,
}

const APP_COLS: &str =
    "id, psn_no, id_no, village_code, year, kind, effective_from, documents, status, decision_note, decided_by, decided_at, \
    run_id, created_by, created_at";

fn app_from_row(r: &sqlx::any::AnyRow) -> Result<Application> {
    Ok(Application {
        id: get_i64(r, 0)?,
        psn_no: get_text(r, 1)?,
        id_no: get_text(r, 2)?,
        village_code: get_opt_text(r, 3)?,
        year: get_i64(r, 4)?,
        kind: get_text(r, 5)?,
        effective_from: get_i64(r, 6)?,
        documents: get_text(r, 7)?,
        status: get_text(r, 8)?,
        decision_note: get_opt_text(r, 9)?,
        decided_by: get_opt_text(r, 10)?,
        decided_at: get_opt_text(r, 11)?,
        run_id: get_opt_i64(r, 12)?,
        created_by: get_text(r, 13)?,
        created_at: get_text(r, 14)?,
    })
}

/// A new application (status pending).
#[derive(Clone, Debug)]
pub struct NewApplication {
    pub psn_no: String,
    pub id_no: String,
    pub village_code: Option<String>,
    pub year: u16,
    pub kind: Identity,
    pub effective_from: i64,
    pub documents: String,
}

impl Store {
    /// The `n` largest inpatient settlements of a year of people who had no identity when settled
    /// (psn_no, id_no, village): the demo's applicants.
    pub async fn largest_plain_inpatients(&self, year: u16, n: i64) -> Result<Vec<(String, String, Option<String>)>> {
        let rows = sqlx::query(&format!(
            "SELECT s.psn_no, s.id_no, s.village_code FROM ledger_settlements s WHERE s.year = $1 AND s.med_type = 21 AND s.identities = 0 \
             AND s.reverses IS NULL AND s.village_code IS NOT NULL ORDER BY s.inscp_scp_amt DESC, s.seq LIMIT {}",
            n.clamp(1, 100) * 4
        ))
        .bind(i64::from(year))
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<(String, String, Option<String>)> = Vec::new();
        for r in &rows {
            let psn = get_text(r, 0)?;
            if out.iter().all(|(p, _, _)| *p != psn) && (out.len() as i64) < n {
                out.push((psn, get_text(r, 1)?, get_opt_text(r, 2)?));
            }
        }
        Ok(out)
    }

    pub async fn record_application(&self, a: &NewApplication, by: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO assistance_applications (psn_no, id_no, village_code, year, kind, effective_from, documents, status, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9) RETURNING id",
        )
        .bind(a.psn_no.clone())
        .bind(a.id_no.clone())
        .bind(a.village_code.clone())
        .bind(i64::from(a.year))
        .bind(a.kind.id().to_string())
        .bind(a.effective_from)
        .bind(a.documents.clone())
        .bind(by.to_string())
        .bind(now_text())
        .fetch_one(self.pool())
        .await?;
        get_i64(&row, 0)
    }

    /// Applications of people inside `region` (by village), newest first; one person's when `id_no` is given.
    pub async fn applications(&self, region: &str, id_no: Option<&str>, limit: i64) -> Result<Vec<Application>> {
        let mut sql = format!("SELECT {APP_COLS} FROM assistance_applications WHERE COALESCE(village_code, '') LIKE $1");
        if id_no.is_some() {
            sql.push_str(" AND id_no = $2");
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 1000)));
        let mut q = sqlx::query(&sql).bind(format!("{region}%"));
        if let Some(i) = id_no {
            q = q.bind(i.to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(app_from_row).collect()
    }

    pub async fn application(&self, id: i64) -> Result<Option<Application>> {
        let row = sqlx::query(&format!("SELECT {APP_COLS} FROM assistance_applications WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// Decides a pending application, once (`Ok(false)`: it was decided already). Approval gives the
    /// person the identity it recognises from its effective date — an identity period with source
    /// `application`, under an `imports` row of kind `application` like every identity period — in the
    /// same transaction. The caller then re-settles the person-year and links the run
    /// ([`Store::link_application_run`]).
    pub async fn decide_application(&self, id: i64, approve: bool, note: &str, by: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE assistance_applications SET status = $1, decision_note = $2, decided_by = $3, decided_at = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(note.to_string())
        .bind(by.to_string())
        .bind(now_text())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if approve {
            let row =
                sqlx::query(&format!("SELECT {APP_COLS} FROM assistance_applications WHERE id = $1")).bind(id).fetch_one(&mut *tx).await?;
            let a = app_from_row(&row)?;
            let import = sqlx::query(
                "INSERT INTO imports (kind, file_name, file_sha256, imported_at, rows_total, rows_accepted) VALUES ('application', $1, $2, $3, 1, 1) RETURNING id",
            )
            .bind(format!("依申请救助 #{id}"))
            .bind(format!("application-{id}"))
            .bind(now_text())
            .fetch_one(&mut *tx)
            .await?;
            let import_id = get_i64(&import, 0)?;
            sqlx::query(
                "INSERT INTO identity_periods (import_id, id_no, identity, start_date, end_date, source) VALUES ($1, $2, $3, $4, NULL, 'application') \
                 ON CONFLICT (id_no, identity, source, start_date) DO NOTHING",
            )
            .bind(import_id)
            .bind(a.id_no.clone())
            .bind(a.kind.clone())
            .bind(a.effective_from)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn link_application_run(&self, id: i64, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE assistance_applications SET run_id = $1 WHERE id = $2").bind(run_id).bind(id).execute(self.pool()).await?;
        Ok(())
    }
}

impl From<&AdjustmentRow> for Adjusted {
    fn from(a: &AdjustmentRow) -> Adjusted {
        Adjusted {
            setl_id: a.setl_id.clone(),
            mdtrt_id: a.mdtrt_id.clone(),
            fixmedins_code: a.fixmedins_code.clone(),
            village_code: a.village_code.clone(),
            id_no: a.id_no.clone(),
            setl_date: a.setl_date,
            funds_fen: a.funds_fen,
            fund_pay_fen: a.fund_pay_fen,
            hosp_fen: a.hosp_fen,
            psn_fen: a.psn_fen,
        }
    }
}
