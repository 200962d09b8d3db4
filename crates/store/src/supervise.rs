//! Supervision data (POLICY §4): village facts for 挂牌督战 selection, the selected villages, zones and
//! inspections (R-SUP-1); report submissions (R-SUP-3); score sheets (R-SUP-4); what the exit check
//! needs of each household member (R-EXIT-1); hospital budgets and quarterly fallback statements
//! (R-FUND-1). The rules themselves are in `core::supervise`.

use std::collections::HashMap;

use baozhang_core::policy::Fund;
use baozhang_core::supervise::VillageFacts;

use crate::indicators::POOR_BITS;
use crate::reconcile::{dead_by, enrolled, identity_on};
use crate::{get_i64, get_opt_i64, get_opt_text, get_text, now_text, prefix_end, Result, Store};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    pub id: i64,
    pub name: String,
    pub region_code: String,
    pub city_leader: String,
    pub county_leader: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SupVillage {
    pub id: i64,
    pub village_code: String,
    pub year: i64,
    pub reasons: String,
    pub by_hand: bool,
    pub zone_id: Option<i64>,
    pub status: String,
    pub selected_by: String,
    pub selected_at: String,
    pub remove_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    pub id: i64,
    pub village_code: String,
    pub on_date: i64,
    pub mode: String,
    pub inspector: String,
    pub findings: String,
    pub rect_id: Option<i64>,
    pub created_by: String,
}

/// The inspection modes of R-SUP-1: (id, Chinese).
pub const INSPECTION_MODES: [(&str, &str); 3] = [("field", "实地督导"), ("remote", "远程视频"), ("phone", "电话抽查")];

pub fn mode_zh(mode: &str) -> &'static str {
    INSPECTION_MODES.iter().find(|(m, _)| *m == mode).map_or("其他", |(_, z)| z)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submission {
    pub kind: String,
    pub region_code: String,
    pub unit: String,
    pub period: i64,
    pub submitted_on: i64,
    pub submitted_by: String,
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScoreSheet {
    pub id: i64,
    pub form_id: String,
    pub region_code: String,
    pub year: i64,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScoreAnswer {
    pub item_no: String,
    pub answer: String,
    pub points: i64,
    pub veto: bool,
    pub evidence: String,
    pub source: String,
    pub answered_by: String,
    pub answered_at: String,
}

/// One member of a poor household as the exit check sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitRow {
    pub id_no: String,
    pub name: String,
    pub village_code: String,
    pub household_no: String,
    pub dead: bool,
    pub insured: bool,
    pub inpatient: i64,
    pub without_preferences: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub fixmedins_code: String,
    pub year: i64,
    pub budget_fen: i64,
    pub prepaid_on: Option<i64>,
    pub assessed_bp: Option<i64>,
    pub assessed_on: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FallbackStatement {
    pub id: i64,
    pub fixmedins_code: String,
    pub year: i64,
    pub quarter: i64,
    pub amount_fen: i64,
    pub claims: i64,
    pub submitted_on: Option<i64>,
    pub accepted_on: Option<i64>,
    pub paid_on: Option<i64>,
}

const INSPECTION_COLS: &str = "id, village_code, on_date, mode, inspector, findings, rect_id, created_by";
const SHEET_COLS: &str = "id, form_id, region_code, year, created_by, created_at";
const STATEMENT_COLS: &str = "id, fixmedins_code, year, quarter, amount_fen, claims, submitted_on, accepted_on, paid_on";

pub(crate) fn region_range(region: &str) -> (String, String) {
    (region.to_string(), prefix_end(region))
}

impl Store {
    // ── R-SUP-1 ──

    /// The registry's facts of every village under `region` on day `d` (yyyymmdd): living residents,
    /// remaining (not exited) poor, marginal people who are not poor.
    pub async fn village_facts(&self, region: &str, d: i64) -> Result<Vec<(String, VillageFacts)>> {
        let remaining = identity_on("'registered_poor'", d);
        let poor = identity_on("'registered_poor', 'exited_poor'", d);
        let marginal = identity_on("'marginal'", d);
        let dead = dead_by(d);
        let sql = format!(
            "SELECT p.village_code, CAST(COUNT(*) AS BIGINT), CAST(SUM(CASE WHEN {remaining} THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN {marginal} AND NOT {poor} THEN 1 ELSE 0 END) AS BIGINT) \
             FROM persons p WHERE p.village_code >= $1 AND p.village_code < $2 AND NOT {dead} GROUP BY p.village_code ORDER BY p.village_code"
        );
        let (a, b) = region_range(region);
        let rows = sqlx::query(&sql).bind(a).bind(b).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((get_text(r, 0)?, VillageFacts { population: get_i64(r, 1)?, remaining_poor: get_i64(r, 2)?, marginal: get_i64(r, 3)? }))
            })
            .collect()
    }

    /// Puts a village under supervision for a year. `Ok(false)`: it already is. A village removed
    /// earlier is selected again with the new reasons.
    pub async fn select_village(
        &self,
        village: &str,
        year: i64,
        reasons: &str,
        by_hand: bool,
        zone: Option<i64>,
        by: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query("SELECT status FROM sup_villages WHERE village_code = $1 AND year = $2")
            .bind(village.to_string())
            .bind(year)
            .fetch_optional(&mut *tx)
            .await?;
        let done = match existing.map(|r| get_text(&r, 0)).transpose()? {
            Some(s) if s == "active" => false,
            Some(_) => {
                sqlx::query(
                    "UPDATE sup_villages SET status = 'active', reasons = $1, by_hand = $2, zone_id = COALESCE($3, zone_id), selected_by = $4, selected_at = $5, \
                     removed_by = NULL, removed_at = NULL, remove_reason = NULL WHERE village_code = $6 AND year = $7",
                )
                .bind(reasons.to_string())
                .bind(i64::from(by_hand))
                .bind(zone)
                .bind(by.to_string())
                .bind(now_text())
                .bind(village.to_string())
                .bind(year)
                .execute(&mut *tx)
                .await?;
                true
            }
            None => {
                sqlx::query(
                    "INSERT INTO sup_villages (village_code, year, reasons, by_hand, zone_id, status, selected_by, selected_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)",
                )
                .bind(village.to_string())
                .bind(year)
                .bind(reasons.to_string())
                .bind(i64::from(by_hand))
                .bind(zone)
                .bind(by.to_string())
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                true
            }
        };
        tx.commit().await?;
        Ok(done)
    }

    /// Takes a village off the list (kept, with who and why). `Ok(false)`: it was not on it.
    pub async fn remove_village(&self, village: &str, year: i64, reason: &str, by: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE sup_villages SET status = 'removed', removed_by = $1, removed_at = $2, remove_reason = $3 WHERE village_code = $4 AND year = $5 AND status = 'active'",
        )
        .bind(by.to_string())
        .bind(now_text())
        .bind(reason.to_string())
        .bind(village.to_string())
        .bind(year)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn assign_zone(&self, village: &str, year: i64, zone: Option<i64>) -> Result<bool> {
        let n = sqlx::query("UPDATE sup_villages SET zone_id = $1 WHERE village_code = $2 AND year = $3")
            .bind(zone)
            .bind(village.to_string())
            .bind(year)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// The villages of a year under `region` (active and removed).
    pub async fn sup_villages(&self, region: &str, year: i64) -> Result<Vec<SupVillage>> {
        let (a, b) = region_range(region);
        let rows = sqlx::query(
            "SELECT id, village_code, year, reasons, by_hand, zone_id, status, selected_by, selected_at, remove_reason FROM sup_villages \
             WHERE year = $1 AND village_code >= $2 AND village_code < $3 ORDER BY status, village_code",
        )
        .bind(year)
        .bind(a)
        .bind(b)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SupVillage {
                    id: get_i64(r, 0)?,
                    village_code: get_text(r, 1)?,
                    year: get_i64(r, 2)?,
                    reasons: get_text(r, 3)?,
                    by_hand: get_i64(r, 4)? == 1,
                    zone_id: get_opt_i64(r, 5)?,
                    status: get_text(r, 6)?,
                    selected_by: get_text(r, 7)?,
                    selected_at: get_text(r, 8)?,
                    remove_reason: get_opt_text(r, 9)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn add_zone(&self, z: &Zone, by: &str) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO sup_zones (name, region_code, city_leader, county_leader, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(z.name.clone())
        .bind(z.region_code.clone())
        .bind(z.city_leader.clone())
        .bind(z.county_leader.clone())
        .bind(by.to_string())
        .bind(now_text())
        .fetch_one(self.pool())
        .await?;
        get_i64(&r, 0)
    }

    /// Zones that cover `region` or lie inside it.
    pub async fn zones(&self, region: &str) -> Result<Vec<Zone>> {
        let (a, b) = region_range(region);
        let rows = sqlx::query(
            "SELECT id, name, region_code, city_leader, county_leader FROM sup_zones \
             WHERE (region_code >= $1 AND region_code < $2) OR SUBSTR($3, 1, LENGTH(region_code)) = region_code ORDER BY id",
        )
        .bind(a)
        .bind(b)
        .bind(region.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Zone {
                    id: get_i64(r, 0)?,
                    name: get_text(r, 1)?,
                    region_code: get_text(r, 2)?,
                    city_leader: get_text(r, 3)?,
                    county_leader: get_text(r, 4)?,
                })
            })
            .collect()
    }

    pub async fn add_inspection(&self, i: &Inspection, by: &str) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO sup_inspections (village_code, on_date, mode, inspector, findings, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(i.village_code.clone())
        .bind(i.on_date)
        .bind(i.mode.clone())
        .bind(i.inspector.clone())
        .bind(i.findings.clone())
        .bind(by.to_string())
        .bind(now_text())
        .fetch_one(self.pool())
        .await?;
        get_i64(&r, 0)
    }

    pub async fn link_inspection(&self, id: i64, rect_id: i64) -> Result<()> {
        sqlx::query("UPDATE sup_inspections SET rect_id = $1 WHERE id = $2 AND rect_id IS NULL")
            .bind(rect_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Inspections under `region` between two days (yyyymmdd, inclusive), newest first.
    pub async fn inspections(&self, region: &str, from: i64, to: i64) -> Result<Vec<Inspection>> {
        let (a, b) = region_range(region);
        let rows = sqlx::query(&format!(
            "SELECT {INSPECTION_COLS} FROM sup_inspections \
             WHERE village_code >= $1 AND village_code < $2 AND on_date >= $3 AND on_date <= $4 ORDER BY on_date DESC, id DESC"
        ))
        .bind(a)
        .bind(b)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(inspection_row).collect()
    }

    pub async fn inspection(&self, id: i64) -> Result<Option<Inspection>> {
        let r = sqlx::query(&format!("SELECT {INSPECTION_COLS} FROM sup_inspections WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        r.as_ref().map(inspection_row).transpose()
    }

    // ── R-SUP-3 ──

    /// Records a submission of an R-SUP-3 monthly report (a periodic form since issue 19: a version in
    /// `form_submissions`; after a return for correction, the report submitted again). `Ok(false)`: that
    /// unit's report for the month is already submitted.
    pub async fn submit_report(&self, s: &Submission) -> Result<bool> {
        let last = self.form_history(&s.kind, &s.region_code, &s.unit, s.period).await?.pop();
        let seen_version = match last {
            None => 0,
            Some(l) if l.state == "returned" => l.version,
            Some(_) => return Ok(false),
        };
        let f = crate::forms::Filing {
            form_id: s.kind.clone(),
            county: s.region_code.clone(),
            unit: s.unit.clone(),
            period: s.period,
            seen_version,
            filed_on: s.submitted_on,
            values_json: "{}".into(),
            note: s.note.clone(),
            actor: s.submitted_by.clone(),
        };
        Ok(self.file_form(&f).await?.is_ok())
    }

    /// Submissions of the R-SUP-3 reports of a county for the months `from..=to` (yyyymm): each unit's
    /// report with the day it was first submitted.
    pub async fn report_submissions(&self, region: &str, from: i64, to: i64) -> Result<Vec<Submission>> {
        let mut out = Vec::new();
        for kind in ["county_progress", "info_exchange"] {
            for r in self.form_reports(region, Some(kind), from, to).await? {
                if r.latest.state != "submitted" {
                    continue;
                }
                out.push(Submission {
                    kind: r.latest.form_id,
                    region_code: r.latest.county,
                    unit: r.latest.unit,
                    period: r.latest.period,
                    submitted_on: r.first_filed_on,
                    submitted_by: r.latest.actor,
                    note: r.latest.note,
                });
            }
        }
        out.sort_by(|a, b| (a.period, &a.kind, &a.unit).cmp(&(b.period, &b.kind, &b.unit)));
        Ok(out)
    }

    /// Settlements of a period under `region`, net of cancellations: (month yyyymm, settlements,
    /// inpatient, medical fee, fund pay, personal part), each month of the year that has any.
    pub async fn monthly_settlements(&self, region: &str, year: i64) -> Result<Vec<[i64; 6]>> {
        let (a, b) = region_range(region);
        let rows = sqlx::query(
            "SELECT s.setl_date / 100, CAST(SUM(CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END) AS BIGINT), \
             CAST(SUM(CASE WHEN s.med_type = 21 THEN (CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END) ELSE 0 END) AS BIGINT), \
             CAST(SUM(s.medfee_sumamt) AS BIGINT), CAST(SUM(s.fund_pay_sumamt) AS BIGINT), CAST(SUM(s.psn_part_amt) AS BIGINT) \
             FROM ledger_settlements s WHERE s.year = $1 AND s.village_code >= $2 AND s.village_code < $3 GROUP BY s.setl_date / 100 ORDER BY 1",
        )
        .bind(year)
        .bind(a)
        .bind(b)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok([get_i64(r, 0)?, get_i64(r, 1)?, get_i64(r, 2)?, get_i64(r, 3)?, get_i64(r, 4)?, get_i64(r, 5)?])).collect()
    }

    // ── R-SUP-4 ──

    /// The sheet of a form for a unit and year, made on first use.
    pub async fn score_sheet(&self, form_id: &str, region: &str, year: i64, by: &str) -> Result<ScoreSheet> {
        sqlx::query(
            "INSERT INTO score_sheets (form_id, region_code, year, created_by, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (form_id, region_code, year) DO NOTHING",
        )
        .bind(form_id.to_string())
        .bind(region.to_string())
        .bind(year)
        .bind(by.to_string())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        let r = sqlx::query(&format!("SELECT {SHEET_COLS} FROM score_sheets WHERE form_id = $1 AND region_code = $2 AND year = $3"))
            .bind(form_id.to_string())
            .bind(region.to_string())
            .bind(year)
            .fetch_one(self.pool())
            .await?;
        sheet_row(&r)
    }

    pub async fn score_sheet_by_id(&self, id: i64) -> Result<Option<ScoreSheet>> {
        let r = sqlx::query(&format!("SELECT {SHEET_COLS} FROM score_sheets WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        r.as_ref().map(sheet_row).transpose()
    }

    /// Sheets of a year for units under `region`.
    pub async fn score_sheets(&self, region: &str, year: i64) -> Result<Vec<ScoreSheet>> {
        let (a, b) = region_range(region);
        let rows = sqlx::query(&format!("SELECT {SHEET_COLS} FROM score_sheets WHERE year = $1 AND region_code >= $2 AND region_code < $3 ORDER BY form_id, region_code"),
        )
        .bind(year)
        .bind(a)
        .bind(b)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(sheet_row).collect()
    }

    pub async fn add_score_answer(&self, sheet: i64, a: &ScoreAnswer) -> Result<()> {
        self.add_score_answers(sheet, std::slice::from_ref(a)).await
    }

    /// Appends several answers to a sheet in one transaction (自动评分: the sheet is filled in one step,
    /// or not at all).
    pub async fn add_score_answers(&self, sheet: i64, answers: &[ScoreAnswer]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let at = now_text();
        for a in answers {
            sqlx::query(
                "INSERT INTO score_answers (sheet_id, item_no, answer, points, veto, evidence, source, answered_by, answered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(sheet)
            .bind(a.item_no.clone())
            .bind(a.answer.clone())
            .bind(a.points)
            .bind(i64::from(a.veto))
            .bind(a.evidence.clone())
            .bind(a.source.clone())
            .bind(a.answered_by.clone())
            .bind(at.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every answer of a sheet, oldest first (the latest of an item is its answer).
    pub async fn score_answers(&self, sheet: i64) -> Result<Vec<ScoreAnswer>> {
        let rows = sqlx::query(
            "SELECT item_no, answer, points, veto, evidence, source, answered_by, answered_at FROM score_answers WHERE sheet_id = $1 ORDER BY id",
        )
        .bind(sheet)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScoreAnswer {
                    item_no: get_text(r, 0)?,
                    answer: get_text(r, 1)?,
                    points: get_i64(r, 2)?,
                    veto: get_i64(r, 3)? == 1,
                    evidence: get_text(r, 4)?,
                    source: get_text(r, 5)?,
                    answered_by: get_text(r, 6)?,
                    answered_at: get_text(r, 7)?,
                })
            })
            .collect()
    }

    // ── R-EXIT-1 ──

    /// The members (living or not) of every household under `region` with a poor member on day `d`,
    /// with the year's enrolment and inpatient settlements (net of cancellations; those computed
    /// without the poverty identity counted apart).
    pub async fn exit_rows(&self, region: &str, year: i64, d: i64) -> Result<Vec<ExitRow>> {
        let poor = identity_on("'registered_poor', 'exited_poor'", d);
        let dead = dead_by(d);
        let insured = enrolled(year, "e.insured = 1");
        let (a, b) = region_range(region);
        let sql = format!(
            "SELECT p.id_no, p.name, p.village_code, p.household_no, CASE WHEN {dead} THEN 1 ELSE 0 END, CASE WHEN {insured} THEN 1 ELSE 0 END \
             FROM persons p WHERE p.village_code >= $1 AND p.village_code < $2 AND p.household_no IN \
             (SELECT p.household_no FROM persons p WHERE p.village_code >= $1 AND p.village_code < $2 AND p.household_no IS NOT NULL AND {poor}) \
             ORDER BY p.village_code, p.household_no, p.id_no"
        );
        let rows = sqlx::query(&sql).bind(a.clone()).bind(b.clone()).fetch_all(self.pool()).await?;
        let mut out: Vec<ExitRow> = rows
            .iter()
            .map(|r| {
                Ok(ExitRow {
                    id_no: get_text(r, 0)?,
                    name: get_text(r, 1)?,
                    village_code: get_opt_text(r, 2)?.unwrap_or_default(),
                    household_no: get_opt_text(r, 3)?.unwrap_or_default(),
                    dead: get_i64(r, 4)? == 1,
                    insured: get_i64(r, 5)? == 1,
                    ..Default::default()
                })
            })
            .collect::<Result<_>>()?;
        let sql = format!(
            "SELECT s.id_no, CAST(SUM(CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END) AS BIGINT), \
             CAST(SUM(CASE WHEN (s.identities & {POOR_BITS}) = 0 THEN (CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END) ELSE 0 END) AS BIGINT) \
             FROM ledger_settlements s WHERE s.year = $1 AND s.med_type = 21 AND s.village_code >= $2 AND s.village_code < $3 GROUP BY s.id_no"
        );
        let stays: HashMap<String, (i64, i64)> = sqlx::query(&sql)
            .bind(year)
            .bind(a)
            .bind(b)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((get_text(r, 0)?, (get_i64(r, 1)?, get_i64(r, 2)?))))
            .collect::<Result<_>>()?;
        for m in &mut out {
            if let Some((n, w)) = stays.get(&m.id_no) {
                m.inpatient = *n;
                m.without_preferences = *w;
            }
        }
        Ok(out)
    }

    /// The village of a household.
    pub async fn household_village(&self, household_no: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT village_code FROM households WHERE household_no = $1")
            .bind(household_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        r.map(|r| get_text(&r, 0)).transpose()
    }

    // ── R-FUND-1 ──

    pub async fn set_budget(&self, code: &str, year: i64, budget_fen: i64, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO fund_budgets (fixmedins_code, year, budget_fen, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (fixmedins_code, year) DO UPDATE SET budget_fen = excluded.budget_fen, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(code.to_string())
        .bind(year)
        .bind(budget_fen)
        .bind(by.to_string())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the prepayment date or the assessment of a budget. `Ok(false)`: no such budget.
    pub async fn budget_step(
        &self,
        code: &str,
        year: i64,
        prepaid_on: Option<i64>,
        assessed: Option<(i64, i64)>,
        by: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE fund_budgets SET prepaid_on = COALESCE($1, prepaid_on), assessed_bp = COALESCE($2, assessed_bp), assessed_on = COALESCE($3, assessed_on), \
             updated_by = $4, updated_at = $5 WHERE fixmedins_code = $6 AND year = $7",
        )
        .bind(prepaid_on)
        .bind(assessed.map(|a| a.0))
        .bind(assessed.map(|a| a.1))
        .bind(by.to_string())
        .bind(now_text())
        .bind(code.to_string())
        .bind(year)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn budgets(&self, year: i64) -> Result<Vec<Budget>> {
        let rows = sqlx::query(
            "SELECT fixmedins_code, year, budget_fen, prepaid_on, assessed_bp, assessed_on FROM fund_budgets WHERE year = $1 ORDER BY fixmedins_code",
        )
        .bind(year)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Budget {
                    fixmedins_code: get_text(r, 0)?,
                    year: get_i64(r, 1)?,
                    budget_fen: get_i64(r, 2)?,
                    prepaid_on: get_opt_i64(r, 3)?,
                    assessed_bp: get_opt_i64(r, 4)?,
                    assessed_on: get_opt_i64(r, 5)?,
                })
            })
            .collect()
    }

    /// The fallback money each hospital advanced per quarter of a year, from the ledger (net of
    /// cancellations, with re-settlement adjustments in the quarter of the settlement they adjust):
    /// (fixmedins_code, quarter, amount, settlements). "Fallback" (兜底) is what the
    /// hospital pays out at the one-stop window on behalf of the two safety-net layers and recovers
    /// later: medical assistance (民政医疗救助兜底, seed 001) and the government fallback (政府兜底,
    /// seed 002).
    pub async fn fallback_by_quarter(&self, year: i64) -> Result<Vec<(String, i64, i64, i64)>> {
        let sql = format!(
            "SELECT s.fixmedins_code, ((s.setl_date / 100) % 100 + 2) / 3, CAST(SUM(f.amount) AS BIGINT), \
             CAST(SUM(CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END) AS BIGINT) \
             FROM (SELECT COALESCE(a.setl_id, e.setl_id) AS setl_id, SUM(e.amount_fen) AS amount FROM ledger_entries e \
             LEFT JOIN ledger_adjustments a ON a.adj_id = e.setl_id WHERE e.year = $1 AND e.layer >= 0 AND e.fund IN ('{}', '{}') \
             GROUP BY COALESCE(a.setl_id, e.setl_id)) f \
             JOIN ledger_settlements s ON s.setl_id = f.setl_id WHERE f.amount <> 0 GROUP BY s.fixmedins_code, ((s.setl_date / 100) % 100 + 2) / 3 ORDER BY 1, 2",
            Fund::Assistance.code(),
            Fund::Fallback.code()
        );
        let rows = sqlx::query(&sql).bind(year).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, get_i64(r, 1)?, get_i64(r, 2)?, get_i64(r, 3)?))).collect()
    }

    /// Draws up a quarter's statement (amount and count from the ledger). `Ok(None)`: it exists already
    /// (a statement is not redrawn once made).
    pub async fn draw_up_statement(
        &self,
        code: &str,
        year: i64,
        quarter: i64,
        amount_fen: i64,
        claims: i64,
        by: &str,
    ) -> Result<Option<i64>> {
        let r = sqlx::query(
            "INSERT INTO fallback_statements (fixmedins_code, year, quarter, amount_fen, claims, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (fixmedins_code, year, quarter) DO NOTHING RETURNING id",
        )
        .bind(code.to_string())
        .bind(year)
        .bind(quarter)
        .bind(amount_fen)
        .bind(claims)
        .bind(by.to_string())
        .bind(now_text())
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| get_i64(&r, 0)).transpose()
    }

    /// Dates a step of a statement, in order (submit, then accept, then pay), once.
    pub async fn statement_step(&self, id: i64, step: &str, on: i64, by: &str) -> Result<bool> {
        let (col, before) = match step {
            "submit" => ("submitted_on", "1 = 1"),
            "accept" => ("accepted_on", "submitted_on IS NOT NULL AND submitted_on <= $1"),
            "pay" => ("paid_on", "accepted_on IS NOT NULL AND accepted_on <= $1"),
            _ => return Ok(false),
        };
        let n = sqlx::query(&format!(
            "UPDATE fallback_statements SET {col} = $1, updated_by = $2, updated_at = $3 WHERE id = $4 AND {col} IS NULL AND {before}"
        ))
        .bind(on)
        .bind(by.to_string())
        .bind(now_text())
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn fallback_statements(&self, year: i64) -> Result<Vec<FallbackStatement>> {
        let rows =
            sqlx::query(&format!("SELECT {STATEMENT_COLS} FROM fallback_statements WHERE year = $1 ORDER BY quarter, fixmedins_code"))
                .bind(year)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(statement_row).collect()
    }

    pub async fn fallback_statement(&self, id: i64) -> Result<Option<FallbackStatement>> {
        let r = sqlx::query(&format!("SELECT {STATEMENT_COLS} FROM fallback_statements WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        r.as_ref().map(statement_row).transpose()
    }
}

fn inspection_row(r: &sqlx::any::AnyRow) -> Result<Inspection> {
    Ok(Inspection {
        id: get_i64(r, 0)?,
        village_code: get_text(r, 1)?,
        on_date: get_i64(r, 2)?,
        mode: get_text(r, 3)?,
        inspector: get_text(r, 4)?,
        findings: get_text(r, 5)?,
        rect_id: get_opt_i64(r, 6)?,
        created_by: get_text(r, 7)?,
    })
}

fn sheet_row(r: &sqlx::any::AnyRow) -> Result<ScoreSheet> {
    Ok(ScoreSheet {
        id: get_i64(r, 0)?,
        form_id: get_text(r, 1)?,
        region_code: get_text(r, 2)?,
        year: get_i64(r, 3)?,
        created_by: get_text(r, 4)?,
        created_at: get_text(r, 5)?,
    })
}

fn statement_row(r: &sqlx::any::AnyRow) -> Result<FallbackStatement> {
    Ok(FallbackStatement {
        id: get_i64(r, 0)?,
        fixmedins_code: get_text(r, 1)?,
        year: get_i64(r, 2)?,
        quarter: get_i64(r, 3)?,
        amount_fen: get_i64(r, 4)?,
        claims: get_i64(r, 5)?,
        submitted_on: get_opt_i64(r, 6)?,
        accepted_on: get_opt_i64(r, 7)?,
        paid_on: get_opt_i64(r, 8)?,
    })
}
