//! Reconciliation (数据比对, R-ENR-2) as set-based SQL over the registry, so that it runs on ten million
//! persons in either backend. The classes look only at the persons some class can hold (a TEMP table of
//! candidates: an identity, a special state, a conflict, or a flagged or subsidised enrolment). The classes are those of docs/ROSTERS.md; each run is stored with its
//! findings and compared with the previous run (new / persists / resolved).
//!
//! This is the one place where rules live in the store: expressed as SQL they run where the data is.
//! The numbers bound into the SQL (dates, run ids) are integers computed here, never user text.

use baozhang_core::Date;
use sqlx::Row;

use crate::{date_num, get_i64, get_opt_i64, get_opt_text, get_text, now_text, Result, Store};

/// A reconciliation class: id, Chinese name, the action it calls for.
pub const CLASSES: [(&str, &str, &str); 12] = [
    ("poor_not_insured", "贫困人口未参保", "参保"),
    ("new_poor_not_insured", "新识别贫困人口/新生儿未参保", "参保（新增一人、标识一人、参保一人）"),
    ("poor_not_flagged", "已参保未标识贫困身份", "标识"),
    ("flagged_not_poor", "已标识但已不是贫困人口", "取消标识"),
    ("dead_still_counted", "已死亡仍在册或参保", "清理"),
    ("military_still_counted", "服兵役仍在册参保", "清理"),
    ("insured_elsewhere", "异地参保", "核实"),
    ("duplicate_person", "重复人员", "去重"),
    ("marginal_not_insured", "监测对象未参保", "参保"),
    ("marginal_not_flagged", "监测对象未标识", "标识"),
    ("subsidy_missing", "应资助未资助", "补资助"),
    ("subsidy_excess", "重复或超额资助", "追回"),
];

pub fn class_info(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    CLASSES.iter().find(|c| c.0 == id).copied()
}

/// The unit a finding of person `p` is counted in (`reconcile_findings.unit_code`): the village, or for a
/// person on no village roster the county of their enrolment (NULL when there is neither).
const UNIT_OF_PERSON: &str =
    "COALESCE(p.village_code, (SELECT MAX(e.insured_admdvs) FROM enrolments e WHERE e.id_no = p.id_no AND e.superseded_import IS NULL))";

/// Identity bits as `IdentitySet` stores them (enrolment flags).
const FLAG_POOR: i64 = 0b11;
const FLAG_MARGINAL: i64 = 0b100;

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

/// SQL for the subsidy a person of `p` enrolled as `e` should have had on day `d` under `classes`
/// (NULL when they hold none of them). Identity ids are checked against the known ones, amounts are
/// integers, so nothing from outside is spliced into the SQL.
fn expected_subsidy_sql(classes: &[(String, Option<i64>)], d: i64) -> String {
    let mut case = String::from("CASE i.identity");
    for (id, amount) in classes {
        if baozhang_core::Identity::parse(id).is_none_or(|i| i.id() != id) {
            continue;
        }
        match amount {
            Some(fen) => case.push_str(&format!(" WHEN '{id}' THEN {fen}")),
            None => case.push_str(&format!(" WHEN '{id}' THEN e.premium_fen")),
        }
    }
    case.push_str(" END");
    format!(
        "(SELECT MAX({case}) FROM identity_periods i WHERE i.id_no = p.id_no AND i.retracted_import IS NULL \
         AND i.start_date <= {d} AND (i.end_date IS NULL OR i.end_date > {d}))"
    )
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
fn serving_on(d: i64) -> String {
    format!(
        "EXISTS (SELECT 1 FROM special_states s WHERE s.id_no = p.id_no AND s.state = 'military' AND s.retracted_import IS NULL \
         AND s.start_date <= {d} AND (s.end_date IS NULL OR s.end_date > {d}))"
    )
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
        let recent = date_num(as_of.add_days(-window));
        let year_start = y * 10_000 + 101;

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

        let poor = poor_on(d);
        let dead = dead_by(d);
        let serving = serving_on(d);
        let marginal = identity_on("'marginal'", d);
        let class_list: Vec<String> = params
            .subsidy_by_class
            .iter()
            .filter(|(id, _)| baozhang_core::Identity::parse(id).is_some_and(|i| i.id() == id))
            .map(|(id, _)| format!("'{id}'"))
            .collect();
        let eligible_subsidy = if class_list.is_empty() {
            identity_on("'registered_poor', 'exited_poor', 'dibao', 'extreme_poor'", d)
        } else {
            identity_on(&class_list.join(", "), d)
        };
        let insured = enrolled(y, "e.insured = 1");
        let local = "e.insured_admdvs = SUBSTR(p.village_code, 1, 6)";
        let new_poor = format!(
            "(p.birth_date >= {year_start} OR EXISTS (SELECT 1 FROM identity_periods i WHERE i.id_no = p.id_no AND i.identity = 'registered_poor' \
             AND i.retracted_import IS NULL AND i.start_date > {recent} AND i.start_date <= {d}))"
        );
        let death_date =
            "(SELECT MIN(s.start_date) FROM special_states s WHERE s.id_no = p.id_no AND s.state = 'death' AND s.retracted_import IS NULL)";
        let (subsidy_low, subsidy_high) = match params.subsidy_standard_fen {
            _ if !class_list.is_empty() => {
                let expected = expected_subsidy_sql(&params.subsidy_by_class, d);
                (
                    format!("e.subsidy_fen < COALESCE({expected}, 0)"),
                    format!("(e.subsidy_fen > e.premium_fen OR e.subsidy_fen > COALESCE({expected}, e.premium_fen))"),
                )
            }
            Some(std) => (format!("e.subsidy_fen < {std}"), format!("(e.subsidy_fen > e.premium_fen OR e.subsidy_fen > {std})")),
            None => ("e.subsidy_fen = 0 AND e.premium_fen > 0".to_string(), "e.subsidy_fen > e.premium_fen".to_string()),
        };
        let rules: Vec<(&str, String, String)> = vec![
            ("dead_still_counted", format!("{dead} AND ({poor} OR {insured})"), format!("'死亡日期 ' || CAST({death_date} AS TEXT)")),
            ("military_still_counted", format!("{serving} AND NOT {dead} AND {insured}"), "'服役期间参加城乡居民医保'".into()),
            (
                "duplicate_person",
                // Open until a later import of the same kind holds the person once (`resolve_conflicts`).
                "EXISTS (SELECT 1 FROM roster_conflicts c WHERE c.id_no = p.id_no AND c.resolved_import IS NULL)".into(),
                "(SELECT MIN(c.detail) FROM roster_conflicts c WHERE c.id_no = p.id_no AND c.resolved_import IS NULL)".into(),
            ),
            ("new_poor_not_insured", format!("{poor} AND NOT {dead} AND NOT {serving} AND NOT {insured} AND {new_poor}"), "'新识别或新出生，尚未参保'".into()),
            ("poor_not_insured", format!("{poor} AND NOT {dead} AND NOT {serving} AND NOT {insured} AND NOT {new_poor}"), "'无当年有效参保记录'".into()),
            (
                "insured_elsewhere",
                format!("{poor} AND NOT {dead} AND p.village_code IS NOT NULL AND {}", enrolled(y, &format!("e.insured = 1 AND NOT ({local})"))),
                format!("'参保地 ' || (SELECT MIN(e.insured_admdvs) FROM enrolments e WHERE e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL)"),
            ),
            (
                "poor_not_flagged",
                format!("{poor} AND NOT {dead} AND NOT {serving} AND {}", enrolled(y, &format!("e.insured = 1 AND (e.flags & {FLAG_POOR}) = 0 AND ({local} OR p.village_code IS NULL)"))),
                "'医保系统未标识建档立卡身份'".into(),
            ),
            ("flagged_not_poor", format!("NOT {poor} AND NOT {dead} AND {}", enrolled(y, &format!("(e.flags & {FLAG_POOR}) <> 0"))), "'扶贫部门已不认定为贫困人口'".into()),
            ("marginal_not_insured", format!("{marginal} AND NOT {poor} AND NOT {dead} AND NOT {serving} AND NOT {insured}"), "'监测对象无当年有效参保记录'".into()),
            (
                "marginal_not_flagged",
                format!("{marginal} AND NOT {poor} AND NOT {dead} AND NOT {serving} AND {}", enrolled(y, &format!("e.insured = 1 AND (e.flags & {FLAG_MARGINAL}) = 0"))),
                "'医保系统未标识监测对象身份'".into(),
            ),
            (
                "subsidy_missing",
                format!("{eligible_subsidy} AND NOT {dead} AND {}", enrolled(y, &format!("e.insured = 1 AND ({local} OR p.village_code IS NULL) AND {subsidy_low}"))),
                format!("'资助 ' || CAST((SELECT MIN(e.subsidy_fen) FROM enrolments e WHERE e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL) AS TEXT) || ' 分'"),
            ),
            (
                "subsidy_excess",
                enrolled(y, &format!("e.insured = 1 AND {subsidy_high}")),
                format!(
                    "'资助 ' || CAST((SELECT MAX(e.subsidy_fen) FROM enrolments e WHERE e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL) AS TEXT) \
                     || ' 分，个人缴费 ' || CAST((SELECT MAX(e.premium_fen) FROM enrolments e WHERE e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL) AS TEXT) || ' 分'"
                ),
            ),
        ];
        // Every class needs an identity period, a special state, an open roster conflict, or an enrolment of
        // the year that is flagged or subsidised: the persons with none (most of a county) are not looked
        // at twelve times. The candidates are a TEMP table of this transaction, dropped before it commits.
        let t = std::time::Instant::now();
        sqlx::query(&format!(
            "CREATE TEMP TABLE reconcile_candidates AS SELECT DISTINCT id_no FROM ( \
               SELECT id_no FROM identity_periods WHERE retracted_import IS NULL \
               UNION ALL SELECT id_no FROM special_states WHERE retracted_import IS NULL \
               UNION ALL SELECT id_no FROM roster_conflicts WHERE resolved_import IS NULL \
               UNION ALL SELECT id_no FROM enrolments WHERE year = {y} AND superseded_import IS NULL AND (flags <> 0 OR subsidy_fen <> 0)) c"
        ))
        .execute(&mut *tx)
        .await?;
        if self.backend() == crate::Backend::Postgres {
            // A TEMP table has no statistics until it is analysed.
            sqlx::query("ANALYZE reconcile_candidates").execute(&mut *tx).await?;
        }
        tracing::info!(ms = t.elapsed().as_millis() as u64, "reconcile candidates");
        for (class, cond, detail) in &rules {
            let sql = format!(
                "INSERT INTO reconcile_findings (run_id, class, id_no, village_code, household_no, detail, is_new, unit_code) \
                 SELECT {run}, '{class}', p.id_no, p.village_code, p.household_no, {detail}, 1, {UNIT_OF_PERSON} \
                 FROM reconcile_candidates c JOIN persons p ON p.id_no = c.id_no WHERE {cond}"
            );
            let t = std::time::Instant::now();
            let n = sqlx::query(&sql).execute(&mut *tx).await?.rows_affected();
            tracing::info!(class, n, ms = t.elapsed().as_millis() as u64, "reconcile class");
        }
        sqlx::query("DROP TABLE reconcile_candidates").execute(&mut *tx).await?;
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
        let mut summary = RunSummary { run_id: run, as_of: d, previous_run: prev, ..Default::default() };
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

    /// Enrolment indicators per village as of a date (R-ENR-3).
    pub async fn enrolment_indicators(&self, as_of: Date) -> Result<Vec<VillageIndicators>> {
        let d = date_num(as_of);
        let y = i64::from(as_of.year());
        let poor = poor_on(d);
        let dead = dead_by(d);
        let marginal = identity_on("'marginal'", d);
        let insured = enrolled(y, "e.insured = 1");
        let sql = format!(
            "SELECT p.village_code, \
               CAST(SUM(CASE WHEN {poor} THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN {poor} AND {insured} THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN {marginal} AND NOT {poor} THEN 1 ELSE 0 END) AS BIGINT), \
               CAST(SUM(CASE WHEN {marginal} AND NOT {poor} AND {insured} THEN 1 ELSE 0 END) AS BIGINT) \
             FROM persons p WHERE p.village_code IS NOT NULL AND NOT {dead} GROUP BY p.village_code ORDER BY p.village_code"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        let mut out: Vec<VillageIndicators> = rows
            .iter()
            .map(|r| {
                Ok(VillageIndicators {
                    village_code: get_text(r, 0)?,
                    poor: get_i64(r, 1)?,
                    poor_insured: get_i64(r, 2)?,
                    marginal: get_i64(r, 3)?,
                    marginal_insured: get_i64(r, 4)?,
                    ..Default::default()
                })
            })
            .collect::<Result<_>>()?;
        // Flagging delay: days from the start of the poverty period in force to the flag date.
        let sql = format!(
            "SELECT p.village_code, i.start_date, e.flag_date FROM persons p \
             JOIN identity_periods i ON i.id_no = p.id_no AND i.identity = 'registered_poor' AND i.retracted_import IS NULL AND i.start_date <= {d} AND (i.end_date IS NULL OR i.end_date > {d}) \
             JOIN enrolments e ON e.id_no = p.id_no AND e.year = {y} AND e.superseded_import IS NULL AND e.flag_date IS NOT NULL AND (e.flags & {FLAG_POOR}) <> 0 \
             WHERE p.village_code IS NOT NULL"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        let mut idx: std::collections::HashMap<String, usize> = out.iter().enumerate().map(|(i, v)| (v.village_code.clone(), i)).collect();
        for r in &rows {
            let v = get_text(r, 0)?;
            let (Some(s), Some(f)) = (crate::num_date(get_i64(r, 1)?), get_opt_i64(r, 2)?.and_then(crate::num_date)) else {
                continue;
            };
            let days = i64::from((f.to_days() - s.to_days()).max(0));
            let i = *idx.entry(v.clone()).or_insert_with(|| {
                out.push(VillageIndicators { village_code: v, ..Default::default() });
                out.len() - 1
            });
            out[i].flag_delay_days_sum += days;
            out[i].flagged += 1;
        }
        Ok(out)
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
