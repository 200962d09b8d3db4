//! Reconciliation (数据比对, R-ENR-2): the registry read in one pass and one snapshot, each candidate's
//! records handed to the pure rules of `core::reconcile`, and the findings stored as a run compared
//! with the previous one (new / persists / resolved). The classes are those of docs/ROSTERS.md.
//!
//! The read is sequential scans of each roster's table (the order the rows lie on disk), joined in
//! memory by ID number: at ten million persons that is what both databases do fastest, where probing
//! each candidate's records through the indexes was random I/O (docs/SCALE.md). Only candidates are
//! kept (`core::reconcile::is_candidate`): a person with an identity period, a special state, an open
//! conflict, or a flagged or subsidised enrolment of the year.
//!
//! The enrolment indicators (R-ENR-3) come from the same read and the rules' `standing`. What stays SQL
//! here are the predicates of one village's or household's pages (`poor_on`, `dead_by`, `enrolled`):
//! look-ups by index of a few hundred persons.

use std::collections::BTreeMap;

use baozhang_core::reconcile::{
    classify, flag_delays, is_candidate, standing, unit_of, Enrolment, Person, Records, Rules, Span, StateKind, SubsidyRule,
};
use baozhang_core::{Date, Identity};
use rustc_hash::FxHashMap;
use sqlx::Row;

use crate::bulk::Cols;
use crate::{date_num, get_i64, get_opt_text, get_text, now_text, num_date, Result, Store, StoreError, Val};

pub use baozhang_core::reconcile::{class_info, CLASSES};

#[derive(Clone, Debug, Default)]
pub struct ReconcileParams {
    pub as_of: Option<Date>,
    /// Days within which a newly registered poor person counts as "new" (新增一人).
    pub new_window_days: i32,
    /// The fixed subsidy per person where the policy has one (Yunnan 2021: 180 yuan).
    pub subsidy_standard_fen: Option<i64>,
    /// The policy's premium subsidies of the year per class (`[[policy.subsidies]]`): identity id and
    /// amount in fen, `None` = the whole individual premium. When given, a person's expected subsidy is
    /// the largest of the classes they hold on the date, and it replaces `subsidy_standard_fen`.
    pub subsidy_by_class: Vec<(String, Option<i64>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: i64,
    pub as_of: i64,
    pub previous_run: Option<i64>,
    /// (class, findings, new, resolved since the previous run)
    pub by_class: Vec<(String, i64, i64, i64)>,
    pub findings: i64,
    pub new_findings: i64,
    pub resolved: i64,
    /// The enrolment indicators per village on the run's date (R-ENR-3), from the same read of the
    /// registry: as [`Store::enrolment_indicators`] would give them.
    pub indicators: Vec<VillageIndicators>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub class: String,
    pub id_no: String,
    pub name: String,
    pub village_code: Option<String>,
    pub household_no: Option<String>,
    pub detail: Option<String>,
    pub is_new: bool,
}

/// Enrolment indicators of one village (R-ENR-3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VillageIndicators {
    pub village_code: String,
    pub poor: i64,
    pub poor_insured: i64,
    pub marginal: i64,
    pub marginal_insured: i64,
    /// Σ days from the poverty roster change to the insurance flag, and how many were flagged.
    pub flag_delay_days_sum: i64,
    pub flagged: i64,
}

pub(crate) fn poor_on(d: i64) -> String {
    format!(
        "EXISTS (SELECT 1 FROM identity_periods i WHERE i.id_no = p.id_no AND i.identity IN ('registered_poor', 'exited_poor') \
         AND i.retracted_import IS NULL AND i.start_date <= {d} AND (i.end_date IS NULL OR i.end_date > {d}))"
    )
}
pub(crate) fn identity_on(identity_list: &str, d: i64) -> String {
    format!(
        "EXISTS (SELECT 1 FROM identity_periods i WHERE i.id_no = p.id_no AND i.identity IN ({identity_list}) \
         AND i.retracted_import IS NULL AND i.start_date <= {d} AND (i.end_date IS NULL OR i.end_date > {d}))"
    )
}
pub(crate) fn dead_by(d: i64) -> String {
    format!("EXISTS (SELECT 1 FROM special_states s WHERE s.id_no = p.id_no AND s.state = 'death' AND s.retracted_import IS NULL AND s.start_date <= {d})")
}
/// A current enrolment of year `y` matching `cond` (on alias e).
pub(crate) fn enrolled(y: i64, cond: &str) -> String {
    format!("EXISTS (SELECT 1 FROM enrolments e WHERE e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL AND {cond})")
}

impl Store {
    /// Runs a reconciliation as of a date and stores it. Returns the summary with the comparison to
    /// the previous run.
    pub async fn reconcile(&self, params: &ReconcileParams) -> Result<RunSummary> {
        let as_of = params.as_of.unwrap_or_else(|| {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Date::from_days((secs / 86_400) as i32)
        });
        let d = date_num(as_of);
        let y = i64::from(as_of.year());
        let window = if params.new_window_days > 0 { params.new_window_days } else { 90 };

        // The rules are pure (`core::reconcile`); the registry is read once, in one snapshot that keeps
        // no writer waiting, and only the findings are written.
        let rules = Rules { as_of, new_window_days: window, subsidy: subsidy_rule(params) };
        let t = std::time::Instant::now();
        let registry = self.read_candidates(y).await?;
        let read_ms = t.elapsed().as_millis() as u64;
        let t = std::time::Instant::now();
        // (class, the candidate, their row and household, detail, unit) of every finding; the rows are made once the run has its id.
        let mut found: Vec<(&'static str, &Candidate, &Person, &Option<String>, String, Option<String>)> = Vec::new();
        for c in &registry.candidates {
            let Some((person, household)) = &c.person else { continue };
            let classes = classify(person, &c.records, &rules);
            if classes.is_empty() {
                continue;
            }
            let unit = unit_of(person, &c.records);
            found.extend(classes.into_iter().map(|f| (f.class.id(), c, person, household, f.detail, unit.clone())));
        }
        let indicators = indicators_of(&registry, as_of);
        tracing::info!(
            candidates = registry.candidates.len(),
            findings = found.len(),
            read_ms,
            classify_ms = t.elapsed().as_millis() as u64,
            "reconcile read and classified"
        );

        let mut tx = self.begin().await?;
        let prev: Option<i64> = sqlx::query("SELECT MAX(id) FROM reconcile_runs WHERE finished_at IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<Option<i64>, _>(0)?;
        let run: i64 = sqlx::query("INSERT INTO reconcile_runs (as_of, started_at, previous_run) VALUES ($1, $2, $3) RETURNING id")
            .bind(d)
            .bind(now_text())
            .bind(prev)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let rows: Vec<Vec<Val>> = found
            .into_iter()
            .map(|(class, c, person, household, detail, unit)| {
                vec![
                    Val::I(run),
                    Val::T(class.to_string()),
                    Val::T(c.id_no.to_string()),
                    person.village_code.clone().map_or(Val::NullT, Val::T),
                    household.clone().map_or(Val::NullT, Val::T),
                    Val::T(detail),
                    unit.map_or(Val::NullT, Val::T),
                    Val::I(1),
                ]
            })
            .collect();
        drop(registry);
        crate::upsert_rows(
            &mut tx,
            "reconcile_findings",
            &["run_id", "class", "id_no", "village_code", "household_no", "detail", "unit_code", "is_new"],
            &rows,
            "",
        )
        .await?;
        if let Some(prev) = prev {
            sqlx::query(&format!(
                "UPDATE reconcile_findings SET is_new = 0 WHERE run_id = {run} AND EXISTS \
                 (SELECT 1 FROM reconcile_findings f WHERE f.run_id = {prev} AND f.class = reconcile_findings.class AND f.id_no = reconcile_findings.id_no)"
            ))
            .execute(&mut *tx)
            .await?;
        }
        // Worklist marks made on earlier runs: confirmed if this run no longer finds them, reopened if it does.
        crate::indicators::resolve_marks(&mut tx, run).await?;
        // Per class: findings, new, resolved (in the previous run, not in this one).
        let mut summary = RunSummary { run_id: run, as_of: d, previous_run: prev, indicators, ..Default::default() };
        for (class, _, _) in CLASSES {
            let row = sqlx::query(&format!("SELECT COUNT(*), CAST(COALESCE(SUM(is_new), 0) AS BIGINT) FROM reconcile_findings WHERE run_id = {run} AND class = '{class}'")).fetch_one(&mut *tx).await?;
            let (n, new) = (get_i64(&row, 0)?, get_i64(&row, 1)?);
            let resolved = match prev {
                Some(prev) => get_i64(
                    &sqlx::query(&format!(
                        "SELECT COUNT(*) FROM reconcile_findings f WHERE f.run_id = {prev} AND f.class = '{class}' AND NOT EXISTS \
                         (SELECT 1 FROM reconcile_findings g WHERE g.run_id = {run} AND g.class = f.class AND g.id_no = f.id_no)"
                    ))
                    .fetch_one(&mut *tx)
                    .await?,
                    0,
                )?,
                None => 0,
            };
            summary.findings += n;
            summary.new_findings += new;
            summary.resolved += resolved;
            summary.by_class.push((class.to_string(), n, new, resolved));
        }
        sqlx::query("UPDATE reconcile_runs SET finished_at = $1, findings = $2, new_findings = $3, resolved_findings = $4 WHERE id = $5")
            .bind(now_text())
            .bind(summary.findings)
            .bind(summary.new_findings)
            .bind(summary.resolved)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// The findings of a run (all villages, or those under a region code prefix), ordered by village.
    pub async fn findings(&self, run_id: i64, region_prefix: Option<&str>) -> Result<Vec<Finding>> {
        let prefix = format!("{}%", region_prefix.unwrap_or(""));
        let rows = sqlx::query(
            "SELECT f.class, f.id_no, COALESCE(p.name, ''), f.village_code, f.household_no, f.detail, f.is_new FROM reconcile_findings f \
             LEFT JOIN persons p ON p.id_no = f.id_no WHERE f.run_id = $1 AND COALESCE(f.unit_code, '') LIKE $2 ORDER BY f.village_code, f.class, f.id_no",
        )
        .bind(run_id)
        .bind(prefix)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(finding_from_row).collect()
    }

    /// Findings of the previous run that this run no longer has (resolved).
    pub async fn resolved_findings(&self, run_id: i64) -> Result<Vec<Finding>> {
        let prev: Option<i64> =
            sqlx::query("SELECT previous_run FROM reconcile_runs WHERE id = $1").bind(run_id).fetch_one(self.pool()).await?.try_get(0)?;
        let Some(prev) = prev else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT f.class, f.id_no, COALESCE(p.name, ''), f.village_code, f.household_no, f.detail, CAST(0 AS BIGINT) FROM reconcile_findings f LEFT JOIN persons p ON p.id_no = f.id_no \
             WHERE f.run_id = $1 AND NOT EXISTS (SELECT 1 FROM reconcile_findings g WHERE g.run_id = $2 AND g.class = f.class AND g.id_no = f.id_no) ORDER BY f.village_code, f.class",
        )
        .bind(prev)
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(finding_from_row).collect()
    }

    pub async fn latest_run(&self) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT MAX(id) FROM reconcile_runs WHERE finished_at IS NOT NULL")
            .fetch_one(self.pool())
            .await?
            .try_get::<Option<i64>, _>(0)?)
    }

    /// Enrolment indicators per village as of a date (R-ENR-3), in village order: every village with a
    /// living person, from one read of the registry and the rules' [`standing`].
    pub async fn enrolment_indicators(&self, as_of: Date) -> Result<Vec<VillageIndicators>> {
        let y = i64::from(as_of.year());
        let registry = self.read_candidates(y).await?;
        Ok(indicators_of(&registry, as_of))
    }
}

/// The enrolment indicators of every village with a living person, in village order, from one read.
fn indicators_of(registry: &Registry, as_of: Date) -> Vec<VillageIndicators> {
    let mut by: BTreeMap<String, VillageIndicators> = BTreeMap::new();
    fn at<'a>(by: &'a mut BTreeMap<String, VillageIndicators>, v: &str) -> &'a mut VillageIndicators {
        if !by.contains_key(v) {
            by.insert(v.to_string(), VillageIndicators { village_code: v.to_string(), ..Default::default() });
        }
        by.get_mut(v).expect("just inserted")
    }
    for v in &registry.other_villages {
        at(&mut by, v);
    }
    for c in &registry.candidates {
        let Some(v) = c.person.as_ref().and_then(|(p, _)| p.village_code.as_deref()) else { continue };
        let s = standing(&c.records, as_of);
        if !s.dead {
            let row = at(&mut by, v);
            if s.poor {
                row.poor += 1;
                row.poor_insured += i64::from(s.insured);
            } else if s.marginal {
                row.marginal += 1;
                row.marginal_insured += i64::from(s.insured);
            }
        }
        // The flagging delay counts whoever was flagged, living or not.
        for days in flag_delays(&c.records, as_of) {
            let row = at(&mut by, v);
            row.flag_delay_days_sum += days;
            row.flagged += 1;
        }
    }
    by.into_values().collect()
}

/// The subsidy rule of a run: the policy's classes (those with a known id, in order) if it names any,
/// else the fixed standard, else none.
fn subsidy_rule(params: &ReconcileParams) -> SubsidyRule {
    let classes: Vec<(Identity, Option<i64>)> =
        params.subsidy_by_class.iter().filter_map(|(id, amount)| known_identity(id).map(|i| (i, *amount))).collect();
    match params.subsidy_standard_fen {
        _ if !classes.is_empty() => SubsidyRule::ByClass(classes),
        Some(fen) => SubsidyRule::Standard(fen),
        None => SubsidyRule::Unknown,
    }
}

/// An identity by its stored id (not the Chinese names `Identity::parse` also accepts).
fn known_identity(id: &str) -> Option<Identity> {
    Identity::parse(id).filter(|i| i.id() == id)
}

/// One candidate: the ID number, the person's row (with the household) if on a roster, the records.
struct Candidate {
    id_no: Box<str>,
    person: Option<(Person, Option<String>)>,
    records: Records,
}

/// What one read of the registry gives: the candidates of the year, and the villages of everyone else
/// (the indicators list every village with living persons).
struct Registry {
    candidates: Vec<Candidate>,
    other_villages: Vec<String>,
}

/// The candidates of the registry, by ID number: an 18-character number by its [`id_key`] (held in the
/// table itself, so a look-up follows no pointer), anything else by its text.
#[derive(Default)]
struct Candidates {
    by_key: FxHashMap<u64, u32>,
    by_text: FxHashMap<Box<str>, u32>,
    all: Vec<Candidate>,
}

/// An ID number of 17 digits and a check character (a digit or `X`) as one number, 17 digits × 11 + the
/// check (below 2⁶³, one to one); `None` for any other text, which is then looked up as it is.
fn id_key(id_no: &str) -> Option<u64> {
    let b = id_no.as_bytes();
    if b.len() != 18 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &b[..17] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    let check = match b[17] {
        c @ b'0'..=b'9' => u64::from(c - b'0'),
        b'X' => 10,
        _ => return None,
    };
    Some(v * 11 + check)
}

impl Candidates {
    fn get(&mut self, id_no: &str) -> Option<&mut Candidate> {
        let k = match id_key(id_no) {
            Some(key) => *self.by_key.get(&key)?,
            None => *self.by_text.get(id_no)?,
        };
        self.all.get_mut(k as usize)
    }
    fn entry(&mut self, id_no: &str) -> &mut Candidate {
        let next = self.all.len() as u32;
        let k = match id_key(id_no) {
            Some(key) => *self.by_key.entry(key).or_insert(next),
            None => match self.by_text.get(id_no) {
                Some(k) => *k,
                None => *self.by_text.entry(id_no.into()).or_insert(next),
            },
        };
        if k == next {
            self.all.push(Candidate { id_no: id_no.into(), person: None, records: Records::default() });
        }
        &mut self.all[k as usize]
    }
}

/// A stored date (yyyymmdd), or an error naming the table: imports store only real dates.
fn stored_date(table: &str, n: i64) -> Result<Date> {
    num_date(n).ok_or_else(|| StoreError::Corrupt(format!("{table} 中的日期 {n} 不是有效日期")))
}

/// The reads of [`Store::read_candidates`], in order, and what each row adds.
const READS: [&str; 6] = [
    "SELECT id_no, identity, start_date, end_date FROM identity_periods WHERE retracted_import IS NULL",
    "SELECT id_no, state, start_date, end_date FROM special_states WHERE retracted_import IS NULL",
    "SELECT id_no, detail FROM roster_conflicts WHERE resolved_import IS NULL",
    // Those who are candidates only by an enrolment of the year ({y} is the year).
    "SELECT id_no FROM enrolments WHERE year = {y} AND superseded_import IS NULL AND (flags <> 0 OR subsidy_fen <> 0)",
    // Every current enrolment of every candidate: other years give the unit of one on no village roster.
    "SELECT id_no, year, insured, insured_admdvs, flags, premium_fen, subsidy_fen, flag_date FROM enrolments WHERE superseded_import IS NULL",
    "SELECT id_no, village_code, household_no, birth_date FROM persons",
];

/// A registry being read: the candidates so far and the villages of everyone else.
#[derive(Default)]
struct Reading {
    c: Candidates,
    villages: rustc_hash::FxHashSet<Box<str>>,
    /// The last village added to `villages`: persons come mostly village by village.
    last_village: Option<Box<str>>,
}

fn span_of(table: &str, r: &dyn Cols) -> Result<Span> {
    Ok(Span { start: stored_date(table, r.int(2)?)?, end: r.opt_int(3)?.map(|e| stored_date(table, e)).transpose()? })
}

/// One row of read `k` of [`READS`].
fn read_row(g: &mut Reading, k: usize, r: &dyn Cols) -> Result<()> {
    match k {
        0 => {
            if let Some(identity) = known_identity(r.text(1)?) {
                let span = span_of("identity_periods", r)?;
                g.c.entry(r.text(0)?).records.identities.push((identity, span));
            }
        }
        1 => {
            if let Some(kind) = StateKind::parse(r.text(1)?) {
                let span = span_of("special_states", r)?;
                g.c.entry(r.text(0)?).records.states.push((kind, span));
            }
        }
        2 => g.c.entry(r.text(0)?).records.conflicts.push(r.text(1)?.to_string()),
        3 => {
            g.c.entry(r.text(0)?);
        }
        4 => {
            if let Some(cand) = g.c.get(r.text(0)?) {
                cand.records.enrolments.push(Enrolment {
                    year: r.int(1)?,
                    insured: r.int(2)? == 1,
                    insured_admdvs: r.text(3)?.to_string(),
                    flags: (r.int(4)? & 0xffff) as u16,
                    premium_fen: r.int(5)?,
                    subsidy_fen: r.int(6)?,
                    flag_date: r.opt_int(7)?.map(|f| stored_date("enrolments", f)).transpose()?,
                });
            }
        }
        _ => {
            if let Some(cand) = g.c.get(r.text(0)?) {
                let person = Person { village_code: r.opt_text(1)?.map(str::to_string), birth_date: stored_date("persons", r.int(3)?)? };
                cand.person = Some((person, r.opt_text(2)?.map(str::to_string)));
            } else if let Some(v) = r.opt_text(1)? {
                if g.last_village.as_deref() != Some(v) {
                    if !g.villages.contains(v) {
                        g.villages.insert(v.into());
                    }
                    g.last_village = Some(v.into());
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Every candidate of year `y` with all its records, read in one snapshot by sequential scans.
    async fn read_candidates(&self, y: i64) -> Result<Registry> {
        let t = std::time::Instant::now();
        let queries = READS.iter().map(|q| q.replace("{y}", &y.to_string())).collect();
        let g = self.native.read_snapshot(queries, Reading::default(), read_row).await?;
        let mut candidates = g.c.all;
        candidates.retain(|cand| is_candidate(&cand.records, y));
        tracing::debug!(candidates = candidates.len(), ms = t.elapsed().as_millis() as u64, "registry read");
        Ok(Registry { candidates, other_villages: g.villages.into_iter().map(String::from).collect() })
    }
}

/// A finding from a row of (class, id_no, name, village_code, household_no, detail, is_new).
fn finding_from_row(r: &sqlx::any::AnyRow) -> Result<Finding> {
    Ok(Finding {
        class: get_text(r, 0)?,
        id_no: get_text(r, 1)?,
        name: get_text(r, 2)?,
        village_code: get_opt_text(r, 3)?,
        household_no: get_opt_text(r, 4)?,
        detail: get_opt_text(r, 5)?,
        is_new: get_i64(r, 6)? == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_keys_are_one_to_one_and_leave_other_text_alone() {
        assert_eq!(id_key("000000000000000000"), Some(0));
        assert_eq!(id_key("00000000000000001X"), Some(11 + 10));
        assert_eq!(id_key("999999999999999999"), Some(99_999_999_999_999_999 * 11 + 9));
        assert!(id_key("99999999999999999X").unwrap() < 1 << 63);
        assert_ne!(id_key("620422198001011234"), id_key("620422198001011235"));
        for odd in ["P1", "62042219800101123x", "62042219800101123", "6204221980010112345", "６２０４２２１９８００１０１１２３４"]
        {
            assert_eq!(id_key(odd), None, "{odd}");
        }
        let mut c = Candidates::default();
        c.entry("620422198001011234").records.conflicts.push("a".into());
        c.entry("P1").records.conflicts.push("b".into());
        c.entry("620422198001011234").records.conflicts.push("c".into());
        assert_eq!(c.all.len(), 2);
        assert_eq!(c.get("620422198001011234").unwrap().records.conflicts, ["a", "c"]);
        assert_eq!(&*c.get("P1").unwrap().id_no, "P1");
        assert!(c.get("620422198001011235").is_none() && c.get("P2").is_none());
    }
}
