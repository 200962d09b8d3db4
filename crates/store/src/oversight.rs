//! Oversight (POLICY §4). Fund-supervision audits (R-AUD-1/2): the year's settled claims as the rules
//! of `core::audit` see them, audit runs with their leads, and the trail of every action on a lead
//! (confirm, dismiss, a hospital's dispute, reopen). A lead's state changes only with an event row.

use baozhang_core::audit::{AuditClaim, Lead};
use baozhang_core::identity::POOR;
use baozhang_core::IdentitySet;

use crate::{get_i64, get_opt_i64, get_opt_text, get_text, insert_rows, now_text, num_date, prefix_end, Result, Store, Val};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRun {
    pub id: i64,
    pub year: i64,
    pub params: String,
    pub claims: i64,
    pub leads: i64,
    pub run_by: String,
    pub run_at: String,
    /// The region whose settlements it covered (`""` = all).
    pub region_code: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadRow {
    pub id: i64,
    pub run_id: i64,
    pub rule: String,
    pub subject: String,
    pub fixmedins_code: String,
    pub claims: Vec<String>,
    pub evidence: String,
    pub amount_fen: i64,
    pub state: String,
    pub updated_at: String,
    /// The insured area of the lead's first settlement: the region whose bureau judges it.
    pub admdvs: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadEvent {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub note: String,
}

/// What a lead's state becomes on an action, and who may take it: the bureau confirms, dismisses or
/// reopens; the hospital the lead is about disputes an open or confirmed lead. `None`: not allowed.
pub fn next_state(state: &str, action: &str, by_hospital: bool) -> Option<&'static str> {
    match (state, action, by_hospital) {
        ("open" | "disputed", "confirm", false) => Some("confirmed"),
        ("open" | "disputed", "dismiss", false) => Some("dismissed"),
        ("open" | "confirmed", "dispute", true) => Some("disputed"),
        ("confirmed" | "dismissed", "reopen", false) => Some("open"),
        _ => None,
    }
}

pub fn state_zh(state: &str) -> &'static str {
    match state {
        "open" => "待核查",
        "confirmed" => "已确认违规",
        "dismissed" => "已排除",
        "disputed" => "医院申诉中",
        _ => "未知",
    }
}

fn lead_row(r: &sqlx::any::AnyRow) -> Result<LeadRow> {
    Ok(LeadRow {
        id: get_i64(r, 0)?,
        run_id: get_i64(r, 1)?,
        rule: get_text(r, 2)?,
        subject: get_text(r, 3)?,
        fixmedins_code: get_text(r, 4)?,
        claims: get_text(r, 5)?.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
        evidence: get_text(r, 6)?,
        amount_fen: get_i64(r, 7)?,
        state: get_text(r, 8)?,
        updated_at: get_text(r, 9)?,
        admdvs: get_text(r, 10)?,
    })
}

const LEAD_COLS: &str = "id, run_id, rule, subject, fixmedins_code, claims, evidence, amount_fen, state, updated_at, admdvs";

/// Why an action on a lead was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    #[error("{0}")]
    Store(#[from] crate::StoreError),
    #[error("线索不存在")]
    NotFound,
    #[error("当前状态“{0}”下不能{1}")]
    NotAllowed(&'static str, &'static str),
}

fn action_zh(action: &str) -> &'static str {
    match action {
        "confirm" => "确认违规",
        "dismiss" => "排除",
        "dispute" => "申诉",
        "reopen" => "重新核查",
        _ => "执行该操作",
    }
}

impl Store {
    /// The settled, not cancelled claims of a year: admission date from the visit when the service
    /// registered it (batch claims: the settlement date), diagnosis when known, poor from the identities
    /// the settlement was computed with.
    pub async fn audit_claims(&self, year: i64, region: &str) -> Result<Vec<AuditClaim>> {
        let rows = sqlx::query(
            "SELECT s.setl_id, s.psn_no, s.fixmedins_code, s.hosp_lv, s.med_type, m.begn_date, s.setl_date, d.dise_codg, s.identities, \
             s.medfee_sumamt, s.fulamt_ownpay_amt, s.overlmt_selfpay, s.psn_part_amt, s.hosp_part_amt, s.claim_flags \
             FROM ledger_settlements s LEFT JOIN mdtrts m ON m.mdtrt_id = s.mdtrt_id LEFT JOIN visit_diagnoses d ON d.mdtrt_id = s.mdtrt_id \
             WHERE s.year = $1 AND s.insuplc_admdvs LIKE $2 AND s.reverses IS NULL \
             AND NOT EXISTS (SELECT 1 FROM ledger_settlements r WHERE r.reverses = s.setl_id) \
             ORDER BY s.seq",
        )
        .bind(year)
        .bind(format!("{region}%"))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(end) = num_date(get_i64(r, 6)?) else { continue };
            let begin = get_opt_i64(r, 5)?.and_then(num_date).filter(|b| *b <= end).unwrap_or(end);
            out.push(AuditClaim {
                setl_id: get_text(r, 0)?,
                psn_no: get_text(r, 1)?,
                fixmedins_code: get_text(r, 2)?,
                hosp_lv: get_i64(r, 3)?,
                inpatient: get_i64(r, 4)? == 21,
                begin,
                end,
                dise_codg: get_opt_text(r, 7)?.unwrap_or_default(),
                // Bit 0 of the claim's flags (`ledger::claim_flags`); a settlement without them counts as
                // in the county, where the rule applies.
                in_county: get_opt_i64(r, 14)?.is_none_or(|f| f & 1 == 1),
                poor: IdentitySet::from_bits(get_i64(r, 8)? as u16).intersects(POOR),
                medfee_fen: get_i64(r, 9)?,
                out_of_scope_fen: get_i64(r, 10)? + get_i64(r, 11)?,
                psn_part_fen: get_i64(r, 12)?,
                hosp_part_fen: get_i64(r, 13)?,
            });
        }
        Ok(out)
    }

    /// Stores a run and its leads (all open) in one transaction; returns the run's id.
    pub async fn record_audit_run(&self, year: i64, region: &str, params: &str, claims: usize, leads: &[Lead], by: &str) -> Result<i64> {
        // Each lead's region: the insured area of its first settlement.
        let mut area: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let firsts: Vec<&str> = leads.iter().filter_map(|l| l.claims.first().map(String::as_str)).collect();
        for chunk in firsts.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT setl_id, insuplc_admdvs FROM ledger_settlements WHERE setl_id IN ({})", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c.to_string());
            }
            for r in q.fetch_all(self.pool()).await? {
                area.insert(get_text(&r, 0)?, get_text(&r, 1)?);
            }
        }
        let mut tx = self.begin().await?;
        let now = now_text();
        let id: i64 = get_i64(
            &sqlx::query(
                "INSERT INTO audit_runs (year, params, claims, leads, run_by, run_at, region_code) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(year)
            .bind(params.to_string())
            .bind(claims as i64)
            .bind(leads.len() as i64)
            .bind(by.to_string())
            .bind(now.clone())
            .bind(region.to_string())
            .fetch_one(&mut *tx)
            .await?,
            0,
        )?;
        let rows: Vec<Vec<Val>> = leads
            .iter()
            .map(|l| {
                vec![
                    id.into(),
                    l.rule.id().into(),
                    l.subject.clone().into(),
                    l.fixmedins_code.clone().into(),
                    l.claims.join(",").into(),
                    l.evidence.clone().into(),
                    l.amount_fen.into(),
                    "open".into(),
                    now.clone().into(),
                    l.claims.first().and_then(|c| area.get(c)).cloned().unwrap_or_else(|| region.to_string()).into(),
                ]
            })
            .collect();
        insert_rows(
            &mut tx,
            "audit_leads",
            &["run_id", "rule", "subject", "fixmedins_code", "claims", "evidence", "amount_fen", "state", "updated_at", "admdvs"],
            &rows,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Runs, newest first.
    pub async fn audit_runs(&self) -> Result<Vec<AuditRun>> {
        let rows = sqlx::query("SELECT id, year, params, claims, leads, run_by, run_at, region_code FROM audit_runs ORDER BY id DESC")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRun {
                    id: get_i64(r, 0)?,
                    year: get_i64(r, 1)?,
                    params: get_text(r, 2)?,
                    claims: get_i64(r, 3)?,
                    leads: get_i64(r, 4)?,
                    run_by: get_text(r, 5)?,
                    run_at: get_text(r, 6)?,
                    region_code: get_text(r, 7)?,
                })
            })
            .collect()
    }

    /// A run's leads in a region (`""` = all), optionally only those about one hospital.
    pub async fn audit_leads(&self, run_id: i64, region: &str, hospital: Option<&str>) -> Result<Vec<LeadRow>> {
        let all = format!("SELECT {LEAD_COLS} FROM audit_leads WHERE run_id = $1 AND admdvs LIKE $2 ORDER BY rule, id");
        let one =
            format!("SELECT {LEAD_COLS} FROM audit_leads WHERE run_id = $1 AND admdvs LIKE $2 AND fixmedins_code = $3 ORDER BY rule, id");
        let rows = match hospital {
            None => sqlx::query(&all).bind(run_id).bind(format!("{region}%")),
            Some(h) => sqlx::query(&one).bind(run_id).bind(format!("{region}%")).bind(h.to_string()),
        }
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(lead_row).collect()
    }

    pub async fn audit_lead(&self, id: i64) -> Result<Option<LeadRow>> {
        let r = sqlx::query(&format!("SELECT {LEAD_COLS} FROM audit_leads WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        r.as_ref().map(lead_row).transpose()
    }

    pub async fn audit_lead_events(&self, id: i64) -> Result<Vec<LeadEvent>> {
        let rows = sqlx::query(
            "SELECT at_time, actor, role, action, from_state, to_state, note FROM audit_lead_events WHERE lead_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeadEvent {
                    at: get_text(r, 0)?,
                    actor: get_text(r, 1)?,
                    role: get_text(r, 2)?,
                    action: get_text(r, 3)?,
                    from_state: get_text(r, 4)?,
                    to_state: get_text(r, 5)?,
                    note: get_text(r, 6)?,
                })
            })
            .collect()
    }

    /// Takes an action on a lead: checks the transition against the state it has *now* (the update is
    /// conditional on it, so two people acting at once cannot both move it) and records the event.
    pub async fn act_on_lead(
        &self,
        id: i64,
        action: &str,
        by_hospital: bool,
        actor: &str,
        role: &str,
        note: &str,
    ) -> std::result::Result<&'static str, LeadError> {
        let lead = self.audit_lead(id).await?.ok_or(LeadError::NotFound)?;
        let to = next_state(&lead.state, action, by_hospital).ok_or(LeadError::NotAllowed(state_zh(&lead.state), action_zh(action)))?;
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE audit_leads SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(to)
            .bind(now_text())
            .bind(id)
            .bind(lead.state.clone())
            .execute(&mut *tx)
            .await
            .map_err(crate::StoreError::from)?
            .rows_affected();
        if n != 1 {
            tx.rollback().await.map_err(crate::StoreError::from)?;
            return Err(LeadError::NotAllowed(state_zh(&lead.state), action_zh(action)));
        }
        sqlx::query(
            "INSERT INTO audit_lead_events (lead_id, at_time, actor, role, action, from_state, to_state, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(now_text())
        .bind(actor.to_string())
        .bind(role.to_string())
        .bind(action.to_string())
        .bind(lead.state.clone())
        .bind(to)
        .bind(note.to_string())
        .execute(&mut *tx)
        .await
        .map_err(crate::StoreError::from)?;
        tx.commit().await.map_err(crate::StoreError::from)?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_move_only_along_the_documented_paths() {
        assert_eq!(next_state("open", "confirm", false), Some("confirmed"));
        assert_eq!(next_state("open", "dismiss", false), Some("dismissed"));
        assert_eq!(next_state("open", "dispute", true), Some("disputed"));
        assert_eq!(next_state("confirmed", "dispute", true), Some("disputed"), "a hospital contests a deduction");
        assert_eq!(next_state("disputed", "confirm", false), Some("confirmed"));
        assert_eq!(next_state("disputed", "dismiss", false), Some("dismissed"));
        assert_eq!(next_state("dismissed", "reopen", false), Some("open"));
        assert_eq!(next_state("open", "confirm", true), None, "a hospital does not judge itself");
        assert_eq!(next_state("open", "dispute", false), None, "the bureau does not dispute");
        assert_eq!(next_state("dismissed", "dispute", true), None);
        assert_eq!(next_state("open", "reopen", false), None);
    }
}

// ───────────────────────────── the rectification ledger (R-SUP-2) ─────────────────────────────

/// The sources of a ledger item.
pub const RECT_SOURCES: [&str; 8] = ["国家考核", "督查检查", "普查", "自查", "参保比对", "基金监管", "退出验收", "其他"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rectification {
    pub id: i64,
    pub problem: String,
    pub source: String,
    pub source_ref: Option<String>,
    pub region_code: String,
    pub subject: String,
    pub responsible_unit: String,
    pub responsible_person: String,
    /// yyyymmdd
    pub deadline: i64,
    pub measures: String,
    /// open / review (销号 requested, waiting for a second person) / closed
    pub status: String,
    pub evidence: String,
    pub reviewer: String,
    pub closed_by: String,
    pub closed_at: String,
    pub created_by: String,
    pub created_at: String,
}

impl Rectification {
    /// Not closed and past its deadline on `today` (yyyymmdd): an item waiting for review is still open.
    pub fn overdue(&self, today: i64) -> bool {
        self.status != "closed" && self.deadline < today
    }
    /// 销号 requested, waiting for another user's review.
    pub fn in_review(&self) -> bool {
        self.status == "review"
    }
}

const RECT_COLS: &str =
    "id, problem, source, source_ref, region_code, subject, responsible_unit, responsible_person, deadline, measures, status, \
                         evidence, reviewer, closed_by, closed_at, created_by, created_at";

fn rect_row(r: &sqlx::any::AnyRow) -> Result<Rectification> {
    Ok(Rectification {
        id: get_i64(r, 0)?,
        problem: get_text(r, 1)?,
        source: get_text(r, 2)?,
        source_ref: get_opt_text(r, 3)?,
        region_code: get_text(r, 4)?,
        subject: get_text(r, 5)?,
        responsible_unit: get_text(r, 6)?,
        responsible_person: get_text(r, 7)?,
        deadline: get_i64(r, 8)?,
        measures: get_text(r, 9)?,
        status: get_text(r, 10)?,
        evidence: get_opt_text(r, 11)?.unwrap_or_default(),
        reviewer: get_opt_text(r, 12)?.unwrap_or_default(),
        closed_by: get_opt_text(r, 13)?.unwrap_or_default(),
        closed_at: get_opt_text(r, 14)?.unwrap_or_default(),
        created_by: get_text(r, 15)?,
        created_at: get_text(r, 16)?,
    })
}

/// Why closing an item was refused.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("{0}")]
    Store(#[from] crate::StoreError),
    #[error("整改事项不存在")]
    NotFound,
    #[error("该事项已销号")]
    AlreadyClosed,
    #[error("销号须附整改佐证材料说明")]
    NoEvidence,
    #[error("销号须由另一人复核：复核人不能是销号人本人")]
    SelfReview,
    #[error("该事项已申请销号，正在等待复核")]
    InReview,
    #[error("该事项没有待复核的销号申请")]
    NotInReview,
    #[error("退回须说明原因")]
    NoReason,
}

impl Store {
    /// Adds an item (with its creation event). `Ok(None)` when an item was already made from the same
    /// source (`source_ref`): one lead or finding, one item.
    pub async fn add_rectification(&self, r: &Rectification, by: &str) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let now = now_text();
        let id = sqlx::query(
            "INSERT INTO rectifications (problem, source, source_ref, region_code, subject, responsible_unit, responsible_person, deadline, measures, status, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11) ON CONFLICT (source_ref) DO NOTHING RETURNING id",
        )
        .bind(r.problem.clone())
        .bind(r.source.clone())
        .bind(r.source_ref.clone())
        .bind(r.region_code.clone())
        .bind(r.subject.clone())
        .bind(r.responsible_unit.clone())
        .bind(r.responsible_person.clone())
        .bind(r.deadline)
        .bind(r.measures.clone())
        .bind(by.to_string())
        .bind(now.clone())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id = get_i64(&id, 0)?;
        sqlx::query("INSERT INTO rectification_events (item_id, at_time, actor, action, note) VALUES ($1, $2, $3, 'create', $4)")
            .bind(id)
            .bind(now)
            .bind(by.to_string())
            .bind(format!("来源：{}", r.source))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Items of the regions under `region`, oldest deadline first.
    pub async fn rectifications(&self, region: &str) -> Result<Vec<Rectification>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECT_COLS} FROM rectifications WHERE region_code >= $1 AND region_code < $2 ORDER BY status DESC, deadline, id"
        ))
        .bind(region.to_string())
        .bind(prefix_end(region))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rect_row).collect()
    }

    /// The item made from a lead or finding (`source_ref`), if any.
    pub async fn rectification_by_ref(&self, source_ref: &str) -> Result<Option<Rectification>> {
        let r = sqlx::query(&format!("SELECT {RECT_COLS} FROM rectifications WHERE source_ref = $1"))
            .bind(source_ref.to_string())
            .fetch_optional(self.pool())
            .await?;
        r.as_ref().map(rect_row).transpose()
    }

    pub async fn rectification(&self, id: i64) -> Result<Option<Rectification>> {
        let r = sqlx::query(&format!("SELECT {RECT_COLS} FROM rectifications WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        r.as_ref().map(rect_row).transpose()
    }

    /// The item's trail: (at, actor, action, note).
    pub async fn rectification_events(&self, id: i64) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query("SELECT at_time, actor, action, note FROM rectification_events WHERE item_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, get_text(r, 1)?, get_text(r, 2)?, get_text(r, 3)?))).collect()
    }

    /// Records progress on the measures (an event; the measures text is replaced, the old one is in the trail).
    pub async fn update_rectification(&self, id: i64, measures: &str, by: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE rectifications SET measures = $1 WHERE id = $2 AND status = 'open'")
            .bind(measures.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            sqlx::query("INSERT INTO rectification_events (item_id, at_time, actor, action, note) VALUES ($1, $2, $3, 'update', $4)")
                .bind(id)
                .bind(now_text())
                .bind(by.to_string())
                .bind(measures.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Requests 销号 of an open item with its evidence (first person). The item waits for another user
    /// to review it ([`Store::review_rectification`]); until then nobody can change its measures.
    pub async fn request_close(&self, id: i64, evidence: &str, by: &str) -> std::result::Result<(), CloseError> {
        let item = self.rectification(id).await?.ok_or(CloseError::NotFound)?;
        match item.status.as_str() {
            "open" => {}
            "review" => return Err(CloseError::InReview),
            _ => return Err(CloseError::AlreadyClosed),
        }
        if evidence.trim().is_empty() {
            return Err(CloseError::NoEvidence);
        }
        let n = self
            .rect_step(
                id,
                "UPDATE rectifications SET status = 'review', evidence = $1, closed_by = $2, reviewer = NULL WHERE id = $3 AND status = 'open'",
                &[evidence.trim(), by],
                by,
                "close_request",
                &format!("佐证：{}", evidence.trim()),
            )
            .await?;
        if n != 1 {
            return Err(CloseError::InReview);
        }
        Ok(())
    }

    /// The second person's review of a 销号 request: `approve` closes the item (reviewer = `by`, who
    /// must not be the requester); otherwise it goes back to 整改中 with the reason.
    pub async fn review_rectification(&self, id: i64, approve: bool, reason: &str, by: &str) -> std::result::Result<(), CloseError> {
        let item = self.rectification(id).await?.ok_or(CloseError::NotFound)?;
        if item.status != "review" {
            return Err(if item.status == "closed" { CloseError::AlreadyClosed } else { CloseError::NotInReview });
        }
        if item.closed_by == by {
            return Err(CloseError::SelfReview);
        }
        let n = if approve {
            let now = now_text();
            self.rect_step(
                id,
                "UPDATE rectifications SET status = 'closed', reviewer = $1, closed_at = $2 WHERE id = $3 AND status = 'review' AND closed_by <> $1",
                &[by, &now],
                by,
                "close",
                &format!("复核通过，销号（申请人 {}；佐证：{}）{}", item.closed_by, item.evidence, if reason.trim().is_empty() { String::new() } else { format!("；意见：{}", reason.trim()) }),
            )
            .await?
        } else {
            if reason.trim().is_empty() {
                return Err(CloseError::NoReason);
            }
            self.rect_step(
                id,
                "UPDATE rectifications SET status = 'open', closed_by = NULL, reviewer = $1 WHERE id = $2 AND status = 'review' AND closed_by <> $1",
                &[by],
                by,
                "close_return",
                &format!("复核退回：{}", reason.trim()),
            )
            .await?
        };
        if n != 1 {
            return Err(CloseError::NotInReview);
        }
        Ok(())
    }

    /// One conditional change of an item and its event, in one transaction. `sql` takes `binds` as
    /// $1…$k and the item id as the last placeholder (a review's UPDATE also requires the requester to
    /// differ from the reviewer, so a request made again meanwhile by the reviewer is not approved). Returns the rows changed (0: the state had moved on,
    /// nothing written).
    async fn rect_step(
        &self,
        id: i64,
        sql: &str,
        binds: &[&str],
        by: &str,
        action: &str,
        note: &str,
    ) -> std::result::Result<u64, CloseError> {
        let mut tx = self.begin().await.map_err(CloseError::from)?;
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b.to_string());
        }
        let n = q.bind(id).execute(&mut *tx).await.map_err(crate::StoreError::from)?.rows_affected();
        if n != 1 {
            tx.rollback().await.map_err(crate::StoreError::from)?;
            return Ok(0);
        }
        sqlx::query("INSERT INTO rectification_events (item_id, at_time, actor, action, note) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(now_text())
            .bind(by.to_string())
            .bind(action.to_string())
            .bind(note.to_string())
            .execute(&mut *tx)
            .await
            .map_err(crate::StoreError::from)?;
        tx.commit().await.map_err(crate::StoreError::from)?;
        Ok(n)
    }

    /// A reconciliation finding as a ledger item's raw material: (class, id_no, village_code, household_no, detail).
    pub async fn reconcile_finding(&self, id: i64) -> Result<Option<(String, String, String, String, String)>> {
        let r = sqlx::query(
            "SELECT class, id_no, COALESCE(village_code, unit_code), household_no, detail FROM reconcile_findings WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| {
            Ok((
                get_text(&r, 0)?,
                get_text(&r, 1)?,
                get_opt_text(&r, 2)?.unwrap_or_default(),
                get_opt_text(&r, 3)?.unwrap_or_default(),
                get_opt_text(&r, 4)?.unwrap_or_default(),
            ))
        })
        .transpose()
    }
}
