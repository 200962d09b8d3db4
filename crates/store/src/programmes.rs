//! Health programmes (POLICY §3): the chronic-disease registry and card register, the monthly card
//! audits, family-doctor teams, contracts, service records and per-person plans, and the major-disease
//! lists and cases. Storage only: the rules (fee split, schedules, the draw, list matching) are
//! `core::programmes`; the comparisons are `ingest::programmes`.
//!
//! Imported rows are versioned: a changed row supersedes the active one (`superseded_import`), an
//! unchanged one is left as it is, so the same file twice changes nothing.

use std::collections::{HashMap, HashSet};

use crate::registry::Import;
use crate::{get_i64, get_opt_i64, get_opt_text, get_text, insert_rows, now_text, prefix_end, Result, Store, Val};

/// An ID number as the audit log shows it: the first 6 and last 4 characters.
fn mask(id_no: &str) -> String {
    let n = id_no.chars().count();
    if n <= 10 {
        return "*".repeat(n);
    }
    id_no.chars().enumerate().map(|(i, c)| if i < 6 || i >= n - 4 { c } else { '*' }).collect()
}

// ───────────────────────────── rows ─────────────────────────────

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRow {
    pub id_no: String,
    pub disease: String,
    pub eligible: bool,
    pub diagnosed_date: Option<i64>,
    pub mgmt_org: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRow {
    pub card_no: String,
    pub id_no: String,
    pub disease: String,
    pub issue_date: i64,
    pub issuer: Option<String>,
    /// 有效 / 注销
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRow {
    pub team_code: String,
    pub name: String,
    /// 1 province/city, 2 county, 3 township, 4 village.
    pub level: i64,
    pub institution: String,
    pub region_code: String,
    pub leader: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractRow {
    pub id_no: String,
    pub year: i64,
    pub team_code: String,
    pub doctor: String,
    pub package: String,
    pub fee_fen: i64,
    pub signed_date: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub id_no: String,
    pub service_date: i64,
    /// 随访 / 送医上门 / 送人就医
    pub kind: String,
    pub disease: String,
    pub doctor: String,
    pub note: Option<String>,
}

/// Who a programme row is about, from the registry (empty when the person is not in it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Who {
    pub name: String,
    pub village_code: String,
    pub household_no: String,
}

/// A levels' name.
pub fn team_level_zh(level: i64) -> &'static str {
    match level {
        1 => "省市级",
        2 => "县级",
        3 => "乡级",
        4 => "村级",
        _ => "未知",
    }
}

pub fn parse_team_level(s: &str) -> Option<i64> {
    match s.trim() {
        "省市级" | "省级" | "市级" | "1" => Some(1),
        "县级" | "2" => Some(2),
        "乡级" | "乡镇级" | "3" => Some(3),
        "村级" | "4" => Some(4),
        _ => None,
    }
}

// ───────────────────────────── versioned merge ─────────────────────────────

/// Merges rows into a versioned table: a key not active is inserted; an active key with other values is
/// superseded and the new values inserted; an identical row is left alone. Returns the changes.
async fn merge_versioned(
    conn: &mut crate::bulk::Conn,
    import_id: i64,
    table: &str,
    key_cols: &[&str],
    val_cols: &[&str],
    rows: Vec<Vec<Val>>,
) -> Result<u64> {
    let text = |c: &str| format!("COALESCE(CAST({c} AS TEXT), '')");
    let sel: Vec<String> = key_cols.iter().chain(val_cols).map(|c| text(c)).collect();
    let nk = key_cols.len();
    let existing = conn
        .id_and_texts(&format!("SELECT id, {} FROM {table} WHERE superseded_import IS NULL", sel.join(", ")), nk + val_cols.len())
        .await?;
    let mut active: HashMap<Vec<String>, (i64, Vec<String>)> = HashMap::with_capacity(existing.len());
    for (id, vals) in existing {
        active.insert(vals[..nk].to_vec(), (id, vals[nk..].to_vec()));
    }
    let as_text = |v: &Val| match v {
        Val::I(i) => i.to_string(),
        Val::T(t) => t.clone(),
        Val::NullI | Val::NullT => String::new(),
    };
    let mut superseded = Vec::new();
    let mut inserts = Vec::new();
    for mut row in rows {
        let t: Vec<String> = row.iter().map(as_text).collect();
        match active.get(&t[..nk]) {
            Some((_, vals)) if vals[..] == t[nk..] => continue,
            Some((id, _)) => superseded.push(*id),
            None => {}
        }
        row.push(Val::I(import_id));
        inserts.push(row);
    }
    for id in &superseded {
        conn.exec(&format!("UPDATE {table} SET superseded_import = $1 WHERE id = $2"), &[Val::I(import_id), Val::I(*id)]).await?;
    }
    let mut cols: Vec<&str> = key_cols.iter().chain(val_cols).copied().collect();
    cols.push("import_id");
    conn.insert_rows(table, &cols, &inserts, "").await?;
    Ok(inserts.len() as u64)
}

impl Import {
    pub async fn merge_chronic_registry(&mut self, rows: &[RegistryRow]) -> Result<()> {
        let vals = rows
            .iter()
            .map(|r| {
                vec![
                    r.id_no.clone().into(),
                    r.disease.clone().into(),
                    i64::from(r.eligible).into(),
                    r.diagnosed_date.into(),
                    r.mgmt_org.clone().into(),
                ]
            })
            .collect();
        let id = self.id;
        self.changes +=
            merge_versioned(self.conn(), id, "chronic_registry", &["id_no", "disease"], &["eligible", "diagnosed_date", "mgmt_org"], vals)
                .await?;
        Ok(())
    }

    pub async fn merge_chronic_cards(&mut self, rows: &[CardRow]) -> Result<()> {
        let vals = rows
            .iter()
            .map(|r| {
                vec![
                    r.card_no.clone().into(),
                    r.id_no.clone().into(),
                    r.disease.clone().into(),
                    r.issue_date.into(),
                    r.issuer.clone().into(),
                    r.status.clone().into(),
                ]
            })
            .collect();
        let id = self.id;
        self.changes +=
            merge_versioned(self.conn(), id, "chronic_cards", &["card_no"], &["id_no", "disease", "issue_date", "issuer", "status"], vals)
                .await?;
        Ok(())
    }

    pub async fn merge_fdc_contracts(&mut self, rows: &[ContractRow]) -> Result<()> {
        let vals = rows
            .iter()
            .map(|r| {
                vec![
                    r.id_no.clone().into(),
                    r.year.into(),
                    r.team_code.clone().into(),
                    r.doctor.clone().into(),
                    r.package.clone().into(),
                    r.fee_fen.into(),
                    r.signed_date.into(),
                ]
            })
            .collect();
        let id = self.id;
        self.changes += merge_versioned(
            self.conn(),
            id,
            "fdc_contracts",
            &["id_no", "year"],
            &["team_code", "doctor", "package", "fee_fen", "signed_date"],
            vals,
        )
        .await?;
        Ok(())
    }

    /// Teams are reference data: a changed team is updated in place and the change audit-logged.
    pub async fn merge_fdc_teams(&mut self, rows: &[TeamRow]) -> Result<()> {
        let id = self.id;
        for t in rows {
            let vals = [
                t.team_code.clone().into(),
                t.name.clone().into(),
                t.level.into(),
                t.institution.clone().into(),
                t.region_code.clone().into(),
                t.leader.clone().into(),
                Val::I(id),
            ];
            let n = self.conn().exec(
                "INSERT INTO fdc_teams (team_code, name, level, institution, region_code, leader, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (team_code) DO UPDATE SET name = excluded.name, level = excluded.level, institution = excluded.institution, \
                 region_code = excluded.region_code, leader = excluded.leader, import_id = excluded.import_id \
                 WHERE fdc_teams.name IS DISTINCT FROM excluded.name OR fdc_teams.level IS DISTINCT FROM excluded.level \
                 OR fdc_teams.institution IS DISTINCT FROM excluded.institution OR fdc_teams.region_code IS DISTINCT FROM excluded.region_code \
                 OR fdc_teams.leader IS DISTINCT FROM excluded.leader",
                &vals,
            )
            .await?;
            self.changes += n;
        }
        Ok(())
    }

    /// Service records are facts: a record already there (same person, day, kind and disease) is kept.
    pub async fn merge_fdc_services(&mut self, rows: &[ServiceRow]) -> Result<()> {
        let id = self.id;
        let now = now_text();
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id_no.clone().into(),
                    r.service_date.into(),
                    r.kind.clone().into(),
                    r.disease.clone().into(),
                    r.doctor.clone().into(),
                    r.note.clone().into(),
                    id.into(),
                    now.clone().into(),
                ]
            })
            .collect();
        let n = self
            .conn()
            .insert_rows(
                "fdc_services",
                &["id_no", "service_date", "kind", "disease", "doctor", "note", "import_id", "entered_at"],
                &vals,
                "ON CONFLICT (id_no, service_date, kind, disease) DO NOTHING",
            )
            .await?;
        self.changes += n;
        Ok(())
    }
}

// ───────────────────────────── reads ─────────────────────────────

/// A registry / card / contract row with the person it is about.
#[derive(Clone, Debug)]
pub struct With<T> {
    pub row: T,
    pub who: Who,
}

/// `LEFT JOIN persons p` restricted to villages under `region` (all rows when `region` is empty,
/// including people the registry does not know). A township or village (9+ digits) is found through the
/// persons' village index; a county or wider compares a prefix, so the plan starts from the programme
/// table (thousands of rows) rather than from every person of the county.
fn region_clause(region: &str, first: usize) -> String {
    if region.is_empty() {
        String::new()
    } else if narrow(region) {
        format!(" AND p.village_code >= ${first} AND p.village_code < ${}", first + 1)
    } else {
        format!(" AND SUBSTR(p.village_code, 1, LENGTH(${first})) = ${first}")
    }
}

fn narrow(region: &str) -> bool {
    region.len() >= 9
}

fn who(r: &sqlx::any::AnyRow, from: usize) -> Result<Who> {
    Ok(Who {
        name: get_opt_text(r, from)?.unwrap_or_default(),
        village_code: get_opt_text(r, from + 1)?.unwrap_or_default(),
        household_no: get_opt_text(r, from + 2)?.unwrap_or_default(),
    })
}

macro_rules! bind_region {
    ($q:expr, $region:expr) => {
        if $region.is_empty() {
            $q
        } else if narrow($region) {
            $q.bind($region.to_string()).bind(prefix_end($region))
        } else {
            $q.bind($region.to_string())
        }
    };
}

/// A monthly audit draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub id: i64,
    pub region_code: String,
    pub month: i64,
    pub seed: i64,
    pub population: i64,
    pub drawn: i64,
    pub drawn_by: String,
    pub drawn_at: String,
    /// Items with a result.
    pub checked: i64,
    /// Items found to be 人情卡 or irregular.
    pub irregular: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditItem {
    pub card_no: String,
    pub draw_order: i64,
    pub result: String,
    pub note: String,
    pub checked_by: String,
    pub checked_at: String,
}

pub const AUDIT_RESULTS: [&str; 3] = ["合规", "人情卡", "流程不规范"];

/// A person's plan (一人一策).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub id_no: String,
    pub year: i64,
    pub category: String,
    pub doctors: String,
    pub referral: String,
    pub medication: String,
    pub schedule: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// A major-disease list and its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdtList {
    pub list_code: String,
    pub name: String,
    pub region_prefix: String,
    pub source: String,
    pub exact: bool,
    pub note: String,
    pub diseases: Vec<MdtDisease>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdtDisease {
    pub no: i64,
    pub name: String,
    pub icd10: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdtCase {
    pub id: i64,
    pub id_no: String,
    pub list_code: String,
    pub disease_no: i64,
    pub dise_codg: String,
    pub hospital: String,
    pub diagnosis_date: i64,
    pub status: String,
    pub treated_date: Option<i64>,
    pub referral: String,
    pub origin: String,
    pub setl_id: String,
    pub updated_at: String,
}

pub const MDT_STATUSES: [&str; 6] = ["待救治", "救治中", "已救治", "已转诊", "放弃治疗", "死亡"];

/// A settled (not cancelled) visit with a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledDiagnosis {
    pub setl_id: String,
    pub id_no: String,
    pub fixmedins_code: String,
    pub setl_date: i64,
    pub dise_codg: String,
    pub village_code: String,
}

impl Store {
    /// Active registry rows of people under `region`, with who they are.
    pub async fn chronic_registry(&self, region: &str) -> Result<Vec<With<RegistryRow>>> {
        let sql = format!(
            "SELECT c.id_no, c.disease, c.eligible, c.diagnosed_date, c.mgmt_org, p.name, p.village_code, p.household_no \
             FROM chronic_registry c LEFT JOIN persons p ON p.id_no = c.id_no WHERE c.superseded_import IS NULL{} ORDER BY c.id_no, c.disease",
            region_clause(region, 1)
        );
        let rows = bind_region!(sqlx::query(&sql), region).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(With { row: registry_row(r)?, who: who(r, 5)? })).collect()
    }

    /// A person's active registry rows.
    pub async fn chronic_registry_of(&self, id_no: &str) -> Result<Vec<RegistryRow>> {
        let rows = sqlx::query(
            "SELECT id_no, disease, eligible, diagnosed_date, mgmt_org FROM chronic_registry WHERE id_no = $1 AND superseded_import IS NULL ORDER BY disease",
        )
        .bind(id_no.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(registry_row).collect()
    }

    /// Active cards of people under `region`.
    pub async fn chronic_cards(&self, region: &str) -> Result<Vec<With<CardRow>>> {
        let sql = format!(
            "SELECT c.card_no, c.id_no, c.disease, c.issue_date, c.issuer, c.status, p.name, p.village_code, p.household_no \
             FROM chronic_cards c LEFT JOIN persons p ON p.id_no = c.id_no WHERE c.superseded_import IS NULL{} ORDER BY c.card_no",
            region_clause(region, 1)
        );
        let rows = bind_region!(sqlx::query(&sql), region).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(With {
                    row: CardRow {
                        card_no: get_text(r, 0)?,
                        id_no: get_text(r, 1)?,
                        disease: get_text(r, 2)?,
                        issue_date: get_i64(r, 3)?,
                        issuer: get_opt_text(r, 4)?,
                        status: get_text(r, 5)?,
                    },
                    who: who(r, 6)?,
                })
            })
            .collect()
    }

    /// Registered poor people (建档立卡: not yet out of poverty or out of it) of the villages under
    /// `region` on `day`, alive on it, with who they are.
    pub async fn registered_poor(&self, region: &str, day: i64) -> Result<Vec<(String, Who)>> {
        const POOR: &str = "i.identity IN ('registered_poor', 'exited_poor') AND i.retracted_import IS NULL \
             AND i.start_date <= $1 AND (i.end_date IS NULL OR i.end_date > $1)";
        const ALIVE: &str =
            "NOT EXISTS (SELECT 1 FROM special_states s WHERE s.id_no = p.id_no AND s.state = 'death' AND s.retracted_import IS NULL AND s.start_date <= $1)";
        // A village: its persons by index, each checked; a county: the poverty periods, then their persons.
        let sql = if narrow(region) {
            format!(
                "SELECT p.id_no, p.name, p.village_code, p.household_no FROM persons p WHERE EXISTS (SELECT 1 FROM identity_periods i \
                 WHERE i.id_no = p.id_no AND {POOR}) AND {ALIVE}{} ORDER BY p.village_code, p.household_no, p.id_no",
                region_clause(region, 2)
            )
        } else {
            format!(
                "SELECT DISTINCT p.id_no, p.name, p.village_code, p.household_no FROM identity_periods i JOIN persons p ON p.id_no = i.id_no \
                 WHERE {POOR} AND {ALIVE}{} ORDER BY p.village_code, p.household_no, p.id_no",
                region_clause(region, 2)
            )
        };
        let rows = bind_region!(sqlx::query(&sql).bind(day), region).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, who(r, 1)?))).collect()
    }

    /// The contracted people of a year under `region` who were insured that year (their fee is split
    /// with the insurance fund).
    pub async fn fdc_insured(&self, region: &str, year: i64) -> Result<HashSet<String>> {
        let sql = format!(
            "SELECT c.id_no FROM fdc_contracts c LEFT JOIN persons p ON p.id_no = c.id_no WHERE c.year = $1 AND c.superseded_import IS NULL \
             AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id_no = c.id_no AND e.year = c.year AND e.insured = 1 AND e.superseded_import IS NULL){}",
            region_clause(region, 2)
        );
        let rows = bind_region!(sqlx::query(&sql).bind(year), region).fetch_all(self.pool()).await?;
        rows.iter().map(|r| get_text(r, 0)).collect()
    }

    // ── audits ──

    /// The month's draw of a county, if made.
    pub async fn chronic_audit(&self, region: &str, month: i64) -> Result<Option<Audit>> {
        Ok(self.chronic_audits(region).await?.into_iter().find(|a| a.month == month && a.region_code == region))
    }

    /// Draws of `region` (and of regions under it), newest month first, with their progress.
    pub async fn chronic_audits(&self, region: &str) -> Result<Vec<Audit>> {
        let rows = sqlx::query(
            "SELECT a.id, a.region_code, a.month, a.seed, a.population, a.drawn, a.drawn_by, a.drawn_at, \
             CAST(COALESCE(SUM(CASE WHEN i.result <> '' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN i.result IN ('人情卡', '流程不规范') THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM chronic_audits a LEFT JOIN chronic_audit_items i ON i.audit_id = a.id \
             WHERE a.region_code >= $1 AND a.region_code < $2 \
             GROUP BY a.id, a.region_code, a.month, a.seed, a.population, a.drawn, a.drawn_by, a.drawn_at ORDER BY a.month DESC, a.region_code",
        )
        .bind(region.to_string())
        .bind(prefix_end(region))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Audit {
                    id: get_i64(r, 0)?,
                    region_code: get_text(r, 1)?,
                    month: get_i64(r, 2)?,
                    seed: get_i64(r, 3)?,
                    population: get_i64(r, 4)?,
                    drawn: get_i64(r, 5)?,
                    drawn_by: get_text(r, 6)?,
                    drawn_at: get_text(r, 7)?,
                    checked: get_i64(r, 8)?,
                    irregular: get_i64(r, 9)?,
                })
            })
            .collect()
    }

    /// Records a month's draw (the cards in draw order). `Ok(None)` when the month was already drawn:
    /// a draw is made once, so it cannot be repeated until it suits.
    pub async fn record_chronic_audit(
        &self,
        region: &str,
        month: i64,
        seed: i64,
        population: i64,
        cards: &[String],
        by: &str,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let id = sqlx::query(
            "INSERT INTO chronic_audits (region_code, month, seed, population, drawn, drawn_by, drawn_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (region_code, month) DO NOTHING RETURNING id",
        )
        .bind(region.to_string())
        .bind(month)
        .bind(seed)
        .bind(population)
        .bind(cards.len() as i64)
        .bind(by.to_string())
        .bind(now_text())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(None);
        };
        let id = get_i64(&id, 0)?;
        let rows: Vec<Vec<Val>> =
            cards.iter().enumerate().map(|(k, c)| vec![id.into(), c.clone().into(), (k as i64 + 1).into(), "".into()]).collect();
        insert_rows(&mut tx, "chronic_audit_items", &["audit_id", "card_no", "draw_order", "result"], &rows).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn chronic_audit_items(&self, audit_id: i64) -> Result<Vec<AuditItem>> {
        let rows = sqlx::query(
            "SELECT card_no, draw_order, result, note, checked_by, checked_at FROM chronic_audit_items WHERE audit_id = $1 ORDER BY draw_order",
        )
        .bind(audit_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditItem {
                    card_no: get_text(r, 0)?,
                    draw_order: get_i64(r, 1)?,
                    result: get_text(r, 2)?,
                    note: get_opt_text(r, 3)?.unwrap_or_default(),
                    checked_by: get_opt_text(r, 4)?.unwrap_or_default(),
                    checked_at: get_opt_text(r, 5)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Records the finding of one drawn card; false when the card is not in the draw. The change is
    /// audit-logged with what it replaced.
    pub async fn set_audit_result(&self, audit_id: i64, card_no: &str, result: &str, note: &str, by: &str) -> Result<bool> {
        let before = sqlx::query("SELECT result, note FROM chronic_audit_items WHERE audit_id = $1 AND card_no = $2")
            .bind(audit_id)
            .bind(card_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(before) = before else { return Ok(false) };
        sqlx::query(
            "UPDATE chronic_audit_items SET result = $1, note = $2, checked_by = $3, checked_at = $4 WHERE audit_id = $5 AND card_no = $6",
        )
        .bind(result.to_string())
        .bind(note.to_string())
        .bind(by.to_string())
        .bind(now_text())
        .bind(audit_id)
        .bind(card_no.to_string())
        .execute(self.pool())
        .await?;
        self.audit(by, "chronic.audit_result", &format!("audit {audit_id} card {card_no}: '{}' -> '{result}'", get_text(&before, 0)?))
            .await?;
        Ok(true)
    }

    // ── family doctors ──

    pub async fn fdc_teams(&self) -> Result<Vec<TeamRow>> {
        let rows = sqlx::query("SELECT team_code, name, level, institution, region_code, leader FROM fdc_teams ORDER BY level, team_code")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TeamRow {
                    team_code: get_text(r, 0)?,
                    name: get_text(r, 1)?,
                    level: get_i64(r, 2)?,
                    institution: get_text(r, 3)?,
                    region_code: get_text(r, 4)?,
                    leader: get_opt_text(r, 5)?,
                })
            })
            .collect()
    }

    /// A year's active contracts of people under `region`.
    pub async fn fdc_contracts(&self, region: &str, year: i64) -> Result<Vec<With<ContractRow>>> {
        let sql = format!(
            "SELECT c.id_no, c.year, c.team_code, c.doctor, c.package, c.fee_fen, c.signed_date, p.name, p.village_code, p.household_no \
             FROM fdc_contracts c LEFT JOIN persons p ON p.id_no = c.id_no WHERE c.superseded_import IS NULL AND c.year = $1{} ORDER BY c.id_no",
            region_clause(region, 2)
        );
        let rows = bind_region!(sqlx::query(&sql).bind(year), region).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(With { row: contract_row(r)?, who: who(r, 7)? })).collect()
    }

    /// Service records of a year of people under `region`.
    pub async fn fdc_services(&self, region: &str, year: i64) -> Result<Vec<ServiceRow>> {
        let sql = format!(
            "SELECT s.id_no, s.service_date, s.kind, s.disease, s.doctor, s.note FROM fdc_services s LEFT JOIN persons p ON p.id_no = s.id_no \
             WHERE s.service_date >= $1 AND s.service_date <= $2{} ORDER BY s.id_no, s.service_date",
            region_clause(region, 3)
        );
        let rows =
            bind_region!(sqlx::query(&sql).bind(year * 10_000 + 101).bind(year * 10_000 + 1231), region).fetch_all(self.pool()).await?;
        rows.iter().map(service_row).collect()
    }

    /// One person's service records, newest first.
    pub async fn fdc_services_of(&self, id_no: &str) -> Result<Vec<ServiceRow>> {
        let rows = sqlx::query(
            "SELECT id_no, service_date, kind, disease, doctor, note FROM fdc_services WHERE id_no = $1 ORDER BY service_date DESC, kind",
        )
        .bind(id_no.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(service_row).collect()
    }

    /// Records one service entered in the workbench; false when the same record exists.
    pub async fn add_fdc_service(&self, s: &ServiceRow, by: &str) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO fdc_services (id_no, service_date, kind, disease, doctor, note, entered_by, entered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id_no, service_date, kind, disease) DO NOTHING",
        )
        .bind(s.id_no.clone())
        .bind(s.service_date)
        .bind(s.kind.clone())
        .bind(s.disease.clone())
        .bind(s.doctor.clone())
        .bind(s.note.clone())
        .bind(by.to_string())
        .bind(now_text())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The person's active contracts, newest year first.
    pub async fn fdc_contracts_of(&self, id_no: &str) -> Result<Vec<ContractRow>> {
        let rows = sqlx::query(
            "SELECT id_no, year, team_code, doctor, package, fee_fen, signed_date FROM fdc_contracts WHERE id_no = $1 AND superseded_import IS NULL ORDER BY year DESC",
        )
        .bind(id_no.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(contract_row).collect()
    }

    pub async fn fdc_plan(&self, id_no: &str, year: i64) -> Result<Option<Plan>> {
        let r = sqlx::query(
            "SELECT id_no, year, category, doctors, referral, medication, schedule, updated_by, updated_at FROM fdc_plans WHERE id_no = $1 AND year = $2",
        )
        .bind(id_no.to_string())
        .bind(year)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| {
            Ok(Plan {
                id_no: get_text(&r, 0)?,
                year: get_i64(&r, 1)?,
                category: get_text(&r, 2)?,
                doctors: get_text(&r, 3)?,
                referral: get_opt_text(&r, 4)?.unwrap_or_default(),
                medication: get_opt_text(&r, 5)?.unwrap_or_default(),
                schedule: get_opt_text(&r, 6)?.unwrap_or_default(),
                updated_by: get_text(&r, 7)?,
                updated_at: get_text(&r, 8)?,
            })
        })
        .transpose()
    }

    /// Saves a plan (insert or replace); the previous version goes to the audit log.
    pub async fn save_fdc_plan(&self, p: &Plan, by: &str) -> Result<()> {
        let before = self.fdc_plan(&p.id_no, p.year).await?;
        sqlx::query(
            "INSERT INTO fdc_plans (id_no, year, category, doctors, referral, medication, schedule, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id_no, year) DO UPDATE SET category = excluded.category, doctors = excluded.doctors, referral = excluded.referral, \
             medication = excluded.medication, schedule = excluded.schedule, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(p.id_no.clone())
        .bind(p.year)
        .bind(p.category.clone())
        .bind(p.doctors.clone())
        .bind(p.referral.clone())
        .bind(p.medication.clone())
        .bind(p.schedule.clone())
        .bind(by.to_string())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        let detail = match before {
            Some(b) => format!(
                "plan {} {}: before category={} doctors={} referral={} medication={} schedule={}",
                mask(&p.id_no),
                p.year,
                b.category,
                b.doctors,
                b.referral,
                b.medication,
                b.schedule
            ),
            None => format!("plan {} {}: new", mask(&p.id_no), p.year),
        };
        self.audit(by, "fdc.plan", &detail).await?;
        Ok(())
    }

    // ── major diseases ──

    /// Loads the shipped lists that are not in the store yet (a list edited in the workbench is kept).
    pub async fn ensure_mdt_lists(&self, lists: &[MdtList]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let mut added = 0;
        for l in lists {
            let n = sqlx::query(
                "INSERT INTO mdt_lists (list_code, name, region_prefix, source, exact, note, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (list_code) DO NOTHING",
            )
            .bind(l.list_code.clone())
            .bind(l.name.clone())
            .bind(l.region_prefix.clone())
            .bind(l.source.clone())
            .bind(i64::from(l.exact))
            .bind(l.note.clone())
            .bind("shipped".to_string())
            .bind(now_text())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                added += 1;
                let rows: Vec<Vec<Val>> = l
                    .diseases
                    .iter()
                    .map(|d| vec![l.list_code.clone().into(), d.no.into(), d.name.clone().into(), d.icd10.join(";").into()])
                    .collect();
                insert_rows(&mut tx, "mdt_diseases", &["list_code", "seq_no", "name", "icd10"], &rows).await?;
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn mdt_lists(&self) -> Result<Vec<MdtList>> {
        let lists = sqlx::query("SELECT list_code, name, region_prefix, source, exact, note FROM mdt_lists ORDER BY list_code")
            .fetch_all(self.pool())
            .await?;
        let ds = sqlx::query("SELECT list_code, seq_no, name, icd10 FROM mdt_diseases ORDER BY list_code, seq_no")
            .fetch_all(self.pool())
            .await?;
        let mut by: HashMap<String, Vec<MdtDisease>> = HashMap::new();
        for r in &ds {
            by.entry(get_text(r, 0)?).or_default().push(MdtDisease {
                no: get_i64(r, 1)?,
                name: get_text(r, 2)?,
                icd10: get_text(r, 3)?.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            });
        }
        lists
            .iter()
            .map(|r| {
                let code = get_text(r, 0)?;
                Ok(MdtList {
                    diseases: by.remove(&code).unwrap_or_default(),
                    list_code: code,
                    name: get_text(r, 1)?,
                    region_prefix: get_text(r, 2)?,
                    source: get_text(r, 3)?,
                    exact: get_i64(r, 4)? != 0,
                    note: get_text(r, 5)?,
                })
            })
            .collect()
    }

    /// Adds or changes one entry of a list (the old entry goes to the audit log).
    pub async fn save_mdt_disease(&self, list_code: &str, d: &MdtDisease, by: &str) -> Result<()> {
        let before = sqlx::query("SELECT name, icd10 FROM mdt_diseases WHERE list_code = $1 AND seq_no = $2")
            .bind(list_code.to_string())
            .bind(d.no)
            .fetch_optional(self.pool())
            .await?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO mdt_diseases (list_code, seq_no, name, icd10) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (list_code, seq_no) DO UPDATE SET name = excluded.name, icd10 = excluded.icd10",
        )
        .bind(list_code.to_string())
        .bind(d.no)
        .bind(d.name.clone())
        .bind(d.icd10.join(";"))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE mdt_lists SET updated_by = $1, updated_at = $2 WHERE list_code = $3")
            .bind(by.to_string())
            .bind(now_text())
            .bind(list_code.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let was = match before {
            Some(b) => format!("{} [{}]", get_text(&b, 0)?, get_text(&b, 1)?),
            None => "(new)".into(),
        };
        self.audit(by, "mdt.list", &format!("{list_code} #{}: {was} -> {} [{}]", d.no, d.name, d.icd10.join(";"))).await?;
        Ok(())
    }

    /// Settled, not cancelled visits with a diagnosis, of people under `region`, dated in `[from, to]`.
    pub async fn settled_diagnoses(&self, region: &str, from: i64, to: i64) -> Result<Vec<SettledDiagnosis>> {
        let sql = format!(
            "SELECT s.setl_id, s.id_no, s.fixmedins_code, s.setl_date, d.dise_codg, s.village_code FROM ledger_settlements s \
             JOIN visit_diagnoses d ON d.mdtrt_id = s.mdtrt_id \
             WHERE s.reverses IS NULL AND s.setl_date >= $1 AND s.setl_date <= $2 \
             AND NOT EXISTS (SELECT 1 FROM ledger_settlements r WHERE r.reverses = s.setl_id){} ORDER BY s.seq",
            if region.is_empty() { "" } else { " AND s.village_code >= $3 AND s.village_code < $4" }
        );
        // The ledger's (village_code, setl_date) index serves a range of any length.
        let q = sqlx::query(&sql).bind(from).bind(to);
        let q = if region.is_empty() { q } else { q.bind(region.to_string()).bind(prefix_end(region)) };
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(SettledDiagnosis {
                    setl_id: get_text(r, 0)?,
                    id_no: get_text(r, 1)?,
                    fixmedins_code: get_text(r, 2)?,
                    setl_date: get_i64(r, 3)?,
                    dise_codg: get_text(r, 4)?,
                    village_code: get_opt_text(r, 5)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Opens a case; false when the person already has a case of that disease (of that list).
    pub async fn add_mdt_case(&self, c: &MdtCase, by: &str) -> Result<bool> {
        let now = now_text();
        let n = sqlx::query(
            "INSERT INTO mdt_cases (id_no, list_code, disease_no, dise_codg, hospital, diagnosis_date, status, treated_date, referral, origin, setl_id, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id_no, list_code, disease_no) DO NOTHING",
        )
        .bind(c.id_no.clone())
        .bind(c.list_code.clone())
        .bind(c.disease_no)
        .bind(c.dise_codg.clone())
        .bind(c.hospital.clone())
        .bind(c.diagnosis_date)
        .bind(c.status.clone())
        .bind(c.treated_date)
        .bind(c.referral.clone())
        .bind(c.origin.clone())
        .bind(c.setl_id.clone())
        .bind(by.to_string())
        .bind(now.clone())
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Cases of people under `region`, with who they are.
    pub async fn mdt_cases(&self, region: &str) -> Result<Vec<With<MdtCase>>> {
        let sql = format!(
            "SELECT c.id, c.id_no, c.list_code, c.disease_no, c.dise_codg, c.hospital, c.diagnosis_date, c.status, c.treated_date, c.referral, c.origin, c.setl_id, c.updated_at, \
             p.name, p.village_code, p.household_no FROM mdt_cases c LEFT JOIN persons p ON p.id_no = c.id_no WHERE 1 = 1{} ORDER BY c.diagnosis_date, c.id",
            region_clause(region, 1)
        );
        let rows = bind_region!(sqlx::query(&sql), region).fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok(With { row: mdt_case(r)?, who: who(r, 13)? })).collect()
    }

    pub async fn mdt_case(&self, id: i64) -> Result<Option<With<MdtCase>>> {
        let r = sqlx::query(
            "SELECT c.id, c.id_no, c.list_code, c.disease_no, c.dise_codg, c.hospital, c.diagnosis_date, c.status, c.treated_date, c.referral, c.origin, c.setl_id, c.updated_at, \
             p.name, p.village_code, p.household_no FROM mdt_cases c LEFT JOIN persons p ON p.id_no = c.id_no WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| Ok(With { row: mdt_case(&r)?, who: who(&r, 13)? })).transpose()
    }

    /// A follow-up of a case: its new status (and referral), with a note; kept in `mdt_followups`.
    pub async fn mdt_follow_up(&self, case_id: i64, date: i64, status: &str, referral: Option<&str>, note: &str, by: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let treated = if status == "已救治" { Some(date) } else { None };
        sqlx::query(
            "UPDATE mdt_cases SET status = $1, treated_date = COALESCE($2, treated_date), referral = COALESCE($3, referral), updated_at = $4 WHERE id = $5",
        )
        .bind(status.to_string())
        .bind(treated)
        .bind(referral.map(String::from))
        .bind(now_text())
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO mdt_followups (case_id, fu_date, status, note, by_user, at_time) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(case_id)
            .bind(date)
            .bind(status.to_string())
            .bind(note.to_string())
            .bind(by.to_string())
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A case's follow-ups, oldest first: (date, status, note, by).
    pub async fn mdt_followups(&self, case_id: i64) -> Result<Vec<(i64, String, String, String)>> {
        let rows = sqlx::query("SELECT fu_date, status, note, by_user FROM mdt_followups WHERE case_id = $1 ORDER BY fu_date, id")
            .bind(case_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok((get_i64(r, 0)?, get_text(r, 1)?, get_text(r, 2)?, get_text(r, 3)?))).collect()
    }
}

/// A contract from its first seven columns (id_no, year, team_code, doctor, package, fee_fen, signed_date).
fn contract_row(r: &sqlx::any::AnyRow) -> Result<ContractRow> {
    Ok(ContractRow {
        id_no: get_text(r, 0)?,
        year: get_i64(r, 1)?,
        team_code: get_text(r, 2)?,
        doctor: get_text(r, 3)?,
        package: get_text(r, 4)?,
        fee_fen: get_i64(r, 5)?,
        signed_date: get_i64(r, 6)?,
    })
}

/// A registry row from its first five columns (id_no, disease, eligible, diagnosed_date, mgmt_org).
fn registry_row(r: &sqlx::any::AnyRow) -> Result<RegistryRow> {
    Ok(RegistryRow {
        id_no: get_text(r, 0)?,
        disease: get_text(r, 1)?,
        eligible: get_i64(r, 2)? != 0,
        diagnosed_date: get_opt_i64(r, 3)?,
        mgmt_org: get_opt_text(r, 4)?,
    })
}

fn service_row(r: &sqlx::any::AnyRow) -> Result<ServiceRow> {
    Ok(ServiceRow {
        id_no: get_text(r, 0)?,
        service_date: get_i64(r, 1)?,
        kind: get_text(r, 2)?,
        disease: get_text(r, 3)?,
        doctor: get_text(r, 4)?,
        note: get_opt_text(r, 5)?,
    })
}

fn mdt_case(r: &sqlx::any::AnyRow) -> Result<MdtCase> {
    Ok(MdtCase {
        id: get_i64(r, 0)?,
        id_no: get_text(r, 1)?,
        list_code: get_text(r, 2)?,
        disease_no: get_i64(r, 3)?,
        dise_codg: get_opt_text(r, 4)?.unwrap_or_default(),
        hospital: get_text(r, 5)?,
        diagnosis_date: get_i64(r, 6)?,
        status: get_text(r, 7)?,
        treated_date: get_opt_i64(r, 8)?,
        referral: get_opt_text(r, 9)?.unwrap_or_default(),
        origin: get_text(r, 10)?,
        setl_id: get_opt_text(r, 11)?.unwrap_or_default(),
        updated_at: get_text(r, 12)?,
    })
}

/// Stores a visit's diagnosis (inside the caller's transaction); a visit keeps its first diagnosis.
pub async fn insert_diagnosis(c: &mut sqlx::AnyConnection, mdtrt_id: &str, code: &str, name: Option<&str>, source: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO visit_diagnoses (mdtrt_id, dise_codg, dise_name, source) VALUES ($1, $2, $3, $4) ON CONFLICT (mdtrt_id) DO NOTHING",
    )
    .bind(mdtrt_id.to_string())
    .bind(code.to_string())
    .bind(name.map(String::from))
    .bind(source.to_string())
    .execute(c)
    .await?;
    Ok(())
}
