//! Periodic forms (issue 19): the versions of the units' reports, appended in one transaction each. The
//! rules (what a form holds, when it is due, who may file it) are the caller's (`core::forms`, the
//! server); this module keeps every version and answers the latest one per unit and period.

use crate::{get_i64, get_text, now_text, Result, Store, StoreError};

/// One version of a unit's report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormVersion {
    pub id: i64,
    pub form_id: String,
    pub county: String,
    pub unit: String,
    pub period: i64,
    pub version: i64,
    /// submit / correct / return
    pub action: String,
    /// submitted / returned
    pub state: String,
    /// yyyymmdd
    pub filed_on: i64,
    pub values_json: String,
    pub note: String,
    pub actor: String,
    pub created_at: String,
}

/// A unit's report as it stands: its latest version and the day of its first submission.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormReport {
    pub latest: FormVersion,
    pub first_filed_on: i64,
}

/// What a filing writes.
#[derive(Clone, Debug, Default)]
pub struct Filing {
    pub form_id: String,
    pub county: String,
    pub unit: String,
    pub period: i64,
    /// The version the filer saw (0: none yet). A report changed meanwhile is refused, not overwritten.
    pub seen_version: i64,
    pub filed_on: i64,
    pub values_json: String,
    pub note: String,
    pub actor: String,
}

/// Why a filing was not written.
#[derive(Debug, PartialEq, Eq)]
pub enum FilingRefusal {
    /// Someone filed another version after the one the filer saw.
    Stale { latest: i64 },
    /// A return needs a submitted report.
    NotSubmitted,
}

const COLS: &str = "id, form_id, county, unit, period, version, action, state, filed_on, values_json, note, actor, created_at";

fn version_of(r: &sqlx::any::AnyRow, at: usize) -> Result<FormVersion> {
    Ok(FormVersion {
        id: get_i64(r, at)?,
        form_id: get_text(r, at + 1)?,
        county: get_text(r, at + 2)?,
        unit: get_text(r, at + 3)?,
        period: get_i64(r, at + 4)?,
        version: get_i64(r, at + 5)?,
        action: get_text(r, at + 6)?,
        state: get_text(r, at + 7)?,
        filed_on: get_i64(r, at + 8)?,
        values_json: get_text(r, at + 9)?,
        note: get_text(r, at + 10)?,
        actor: get_text(r, at + 11)?,
        created_at: get_text(r, at + 12)?,
    })
}

impl Store {
    async fn append_version(
        &self,
        f: &Filing,
        action_first: &str,
        return_reason: Option<&str>,
    ) -> Result<std::result::Result<i64, FilingRefusal>> {
        let mut tx = self.begin_write().await?;
        let last = sqlx::query(&format!(
            "SELECT {COLS} FROM form_submissions WHERE form_id = $1 AND county = $2 AND unit = $3 AND period = $4 ORDER BY version DESC LIMIT 1"
        ))
        .bind(f.form_id.clone())
        .bind(f.county.clone())
        .bind(f.unit.clone())
        .bind(f.period)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| version_of(&r, 0))
        .transpose()?;
        let latest = last.as_ref().map_or(0, |l| l.version);
        if latest != f.seen_version {
            return Ok(Err(FilingRefusal::Stale { latest }));
        }
        let (action, state, values, note) = match return_reason {
            Some(reason) => {
                let Some(l) = last.filter(|l| l.state == "submitted") else { return Ok(Err(FilingRefusal::NotSubmitted)) };
                ("return", "returned", l.values_json, reason.to_string())
            }
            None => (if latest == 0 { action_first } else { "correct" }, "submitted", f.values_json.clone(), f.note.clone()),
        };
        let inserted = sqlx::query(
            "INSERT INTO form_submissions (form_id, county, unit, period, version, action, state, filed_on, values_json, note, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (form_id, county, unit, period, version) DO NOTHING RETURNING id",
        )
        .bind(f.form_id.clone())
        .bind(f.county.clone())
        .bind(f.unit.clone())
        .bind(f.period)
        .bind(latest + 1)
        .bind(action.to_string())
        .bind(state.to_string())
        .bind(f.filed_on)
        .bind(values)
        .bind(note)
        .bind(f.actor.clone())
        .bind(now_text())
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            // Another writer took the version number between our read and our insert (PostgreSQL).
            return Ok(Err(FilingRefusal::Stale { latest: latest + 1 }));
        }
        tx.commit().await?;
        Ok(Ok(latest + 1))
    }

    /// Files a version of a unit's report: the first submission, or a correction of what the filer saw.
    /// Returns the new version number.
    pub async fn file_form(&self, f: &Filing) -> Result<std::result::Result<i64, FilingRefusal>> {
        self.append_version(f, "submit", None).await
    }

    /// Returns a submitted report for correction with a reason (a version with the same values).
    pub async fn return_form(&self, f: &Filing, reason: &str) -> Result<std::result::Result<i64, FilingRefusal>> {
        if reason.trim().is_empty() {
            return Err(StoreError::Corrupt("a return needs its reason".into()));
        }
        self.append_version(f, "submit", Some(reason)).await
    }

    /// Every version of one unit's report for a period, oldest first.
    pub async fn form_history(&self, form_id: &str, county: &str, unit: &str, period: i64) -> Result<Vec<FormVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM form_submissions WHERE form_id = $1 AND county = $2 AND unit = $3 AND period = $4 ORDER BY version"
        ))
        .bind(form_id.to_string())
        .bind(county.to_string())
        .bind(unit.to_string())
        .bind(period)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| version_of(r, 0)).collect()
    }

    /// The reports of a county for periods `from..=to` (Period codes), each unit's latest version with the
    /// day of its first submission; `form` limits them to one form.
    pub async fn form_reports(&self, county: &str, form: Option<&str>, from: i64, to: i64) -> Result<Vec<FormReport>> {
        let filter = if form.is_some() { "AND l.form_id = $4" } else { "" };
        let sql = format!(
            "SELECT l.id, l.form_id, l.county, l.unit, l.period, l.version, l.action, l.state, l.filed_on, l.values_json, l.note, l.actor, l.created_at, \
             f.filed_on FROM form_submissions l JOIN form_submissions f ON f.form_id = l.form_id AND f.county = l.county AND f.unit = l.unit \
             AND f.period = l.period AND f.version = 1 \
             WHERE l.county = $1 AND l.period >= $2 AND l.period <= $3 {filter} AND l.version = (SELECT MAX(m.version) FROM form_submissions m \
             WHERE m.form_id = l.form_id AND m.county = l.county AND m.unit = l.unit AND m.period = l.period) ORDER BY l.form_id, l.period, l.unit"
        );
        let mut q = sqlx::query(&sql).bind(county.to_string()).bind(from).bind(to);
        if let Some(f) = form {
            q = q.bind(f.to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(FormReport { latest: version_of(r, 0)?, first_filed_on: get_i64(r, 13)? })).collect()
    }
}

impl Store {
    /// Visits settled in `year` by the people of `region`, per township (the first 9 digits of the
    /// village code): (township, visits, in-county visits), net of cancellations. In-county is the
    /// claim's own flag (`claim_flags` bit 0); rows written before the flag was kept count by the
    /// hospital code (the batch path's out-of-county hospitals end in `-OUT`).
    pub async fn in_county_visits(&self, region: &str, year: i64) -> Result<Vec<(String, i64, i64)>> {
        let (a, b) = crate::supervise::region_range(region);
        let rows = sqlx::query(
            "SELECT SUBSTR(village_code, 1, 9), CAST(SUM(CASE WHEN reverses IS NULL THEN 1 ELSE -1 END) AS BIGINT), \
             CAST(SUM(CASE WHEN (claim_flags IS NOT NULL AND claim_flags % 2 = 1) OR (claim_flags IS NULL AND fixmedins_code NOT LIKE '%-OUT') \
             THEN (CASE WHEN reverses IS NULL THEN 1 ELSE -1 END) ELSE 0 END) AS BIGINT) \
             FROM ledger_settlements WHERE year = $1 AND village_code >= $2 AND village_code < $3 GROUP BY SUBSTR(village_code, 1, 9) ORDER BY 1",
        )
        .bind(year)
        .bind(a)
        .bind(b)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, get_i64(r, 1)?, get_i64(r, 2)?))).collect()
    }
}
