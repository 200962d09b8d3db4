//! Queries of the online service: institutions, users and sessions, sign-ins, visits and fee lines,
//! message idempotency, person look-ups, and the access and audit logs. Functions that take a
//! connection run inside the caller's transaction (`&mut **tx`) or on a pooled connection.

use sqlx::AnyConnection;

use crate::registry::EnrolmentRow;
use crate::{get_i64, get_opt_i64, get_opt_text, get_text, now_text, Result, Store};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Institution {
    pub fixmedins_code: String,
    pub name: String,
    pub hosp_lv: i64,
    pub admdvs: String,
    #[serde(skip)]
    pub secret: String,
    pub disabled: bool,
    /// National 医院等级 code 1–11 (0: not registered).
    pub hosp_grade: i64,
    /// 基层医疗机构 (乡镇卫生院、社区卫生服务中心).
    pub primary_care: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct User {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub scope: String,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Mdtrt {
    pub mdtrt_id: String,
    pub psn_no: String,
    pub id_no: String,
    pub fixmedins_code: String,
    pub med_type: i64,
    pub begn_date: i64,
    pub insuplc_admdvs: String,
    pub referral_ok: bool,
    pub major_disease: bool,
    pub status: String,
    pub setl_id: Option<String>,
    /// Discharge date (2402), yyyymmdd; None while in hospital or for an outpatient visit.
    pub end_date: Option<i64>,
    /// The hospital's own visit number (住院号 / 门诊号), as sent.
    pub ipt_otp_no: String,
}

/// A fee line split into the four parts of POLICY §2.1 (fen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeLine {
    pub feedetl_sn: String,
    pub det_item_fee_sumamt: i64,
    pub fulamt_ownpay_amt: i64,
    pub overlmt_selfpay: i64,
    pub preselfpay_amt: i64,
    pub inscp_scp_amt: i64,
    pub med_list_codg: Option<String>,
    /// What else the line said and how it was classified (returned by 2301 and 5204).
    pub detail: FeeDetail,
}

/// A fee line's catalogue side: the codes and quantities sent, and the classification applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeeDetail {
    pub medins_list_codg: Option<String>,
    /// Quantity and unit price as sent (decimal text).
    pub cnt: Option<String>,
    pub pric: Option<String>,
    /// 01 甲类 / 02 乙类 / 03 丙类.
    pub chrgitm_lv: Option<String>,
    pub selfpay_prop_bp: Option<i64>,
    pub pric_uplmt_fen: Option<i64>,
    /// `catalogue` (classified by the loaded catalogue), `stated` (the four parts as sent), `level`
    /// (by chrgitm_lv as sent; no catalogue loaded).
    pub basis: String,
    /// The message that uploaded it (msg_log key).
    pub msgid: Option<String>,
    /// The hospital's charge batch (收费批次号, 2204), which 2205 withdraws.
    pub chrg_bchno: Option<String>,
    /// From the catalogue item: 限制使用标志 and 医疗收费项目类别 (None when no catalogue classified it).
    pub lmt_used_flag: Option<bool>,
    pub med_chrgitm_type: Option<String>,
}

const FEE_COLS: &str =
    "feedetl_sn, det_item_fee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, med_list_codg, \
    medins_list_codg, cnt, pric, chrgitm_lv, selfpay_prop_bp, pric_uplmt_fen, basis, msgid, chrg_bchno, lmt_used_flag, med_chrgitm_type";

/// A fee line from `FEE_COLS` starting at column `k`; None when the line part is NULL (a LEFT JOIN).
fn fee_line_from_row(r: &sqlx::any::AnyRow, k: usize) -> Result<Option<FeeLine>> {
    let Some(feedetl_sn) = get_opt_text(r, k)? else { return Ok(None) };
    Ok(Some(FeeLine {
        feedetl_sn,
        det_item_fee_sumamt: get_i64(r, k + 1)?,
        fulamt_ownpay_amt: get_i64(r, k + 2)?,
        overlmt_selfpay: get_i64(r, k + 3)?,
        preselfpay_amt: get_i64(r, k + 4)?,
        inscp_scp_amt: get_i64(r, k + 5)?,
        med_list_codg: get_opt_text(r, k + 6)?,
        detail: FeeDetail {
            medins_list_codg: get_opt_text(r, k + 7)?,
            cnt: get_opt_text(r, k + 8)?,
            pric: get_opt_text(r, k + 9)?,
            chrgitm_lv: get_opt_text(r, k + 10)?,
            selfpay_prop_bp: get_opt_i64(r, k + 11)?,
            pric_uplmt_fen: get_opt_i64(r, k + 12)?,
            basis: get_opt_text(r, k + 13)?.unwrap_or_else(|| "stated".to_string()),
            msgid: get_opt_text(r, k + 14)?,
            chrg_bchno: get_opt_text(r, k + 15)?,
            lmt_used_flag: get_opt_i64(r, k + 16)?.map(|f| f != 0),
            med_chrgitm_type: get_opt_text(r, k + 17)?,
        },
    }))
}

/// A person as the registry knows them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PersonRecord {
    pub id_no: String,
    pub name: String,
    pub sex: String,
    pub birth_date: i64,
    pub household_no: Option<String>,
    pub relation: Option<String>,
    pub village_code: Option<String>,
    pub psn_no: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct IdentityPeriod {
    pub identity: String,
    pub start_date: i64,
    pub end_date: Option<i64>,
    pub source: String,
}

const PERSON_COLS: &str = "p.id_no, p.name, p.sex, p.birth_date, p.household_no, p.relation, p.village_code, \
    COALESCE(p.psn_no, (SELECT MAX(e.psn_no) FROM enrolments e WHERE e.id_no = p.id_no AND e.superseded_import IS NULL))";

fn person_from_row(r: &sqlx::any::AnyRow) -> Result<PersonRecord> {
    Ok(PersonRecord {
        id_no: get_text(r, 0)?,
        name: get_text(r, 1)?,
        sex: get_text(r, 2)?,
        birth_date: get_i64(r, 3)?,
        household_no: get_opt_text(r, 4)?,
        relation: get_opt_text(r, 5)?,
        village_code: get_opt_text(r, 6)?,
        psn_no: get_opt_text(r, 7)?,
    })
}

fn mdtrt_from_row(r: &sqlx::any::AnyRow) -> Result<Mdtrt> {
    Ok(Mdtrt {
        mdtrt_id: get_text(r, 0)?,
        psn_no: get_text(r, 1)?,
        id_no: get_text(r, 2)?,
        fixmedins_code: get_text(r, 3)?,
        med_type: get_i64(r, 4)?,
        begn_date: get_i64(r, 5)?,
        insuplc_admdvs: get_text(r, 6)?,
        referral_ok: get_i64(r, 7)? != 0,
        major_disease: get_i64(r, 8)? != 0,
        status: get_text(r, 9)?,
        setl_id: get_opt_text(r, 10)?,
        end_date: get_opt_i64(r, 11)?,
        ipt_otp_no: get_opt_text(r, 12)?.unwrap_or_default(),
    })
}

const MDTRT_COLS: &str =
    "mdtrt_id, psn_no, id_no, fixmedins_code, med_type, begn_date, insuplc_admdvs, referral_ok, major_disease, status, setl_id, end_date, ipt_otp_no";

/// A stored response to a national message.
#[derive(Clone, Debug)]
pub struct LoggedMsg {
    pub fixmedins_code: String,
    pub infno: String,
    pub body_sha256: String,
    pub response: String,
}

pub async fn msg_lookup(c: &mut AnyConnection, msgid: &str) -> Result<Option<LoggedMsg>> {
    let row = sqlx::query("SELECT fixmedins_code, infno, body_sha256, response FROM msg_log WHERE msgid = $1")
        .bind(msgid.to_string())
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| {
        Ok(LoggedMsg {
            fixmedins_code: get_text(&r, 0)?,
            infno: get_text(&r, 1)?,
            body_sha256: get_text(&r, 2)?,
            response: get_text(&r, 3)?,
        })
    })
    .transpose()
}

pub async fn msg_record(c: &mut AnyConnection, msgid: &str, m: &LoggedMsg) -> Result<()> {
    sqlx::query("INSERT INTO msg_log (msgid, fixmedins_code, infno, body_sha256, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(msgid.to_string())
        .bind(m.fixmedins_code.clone())
        .bind(m.infno.clone())
        .bind(m.body_sha256.clone())
        .bind(m.response.clone())
        .bind(now_text())
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn mdtrt(c: &mut AnyConnection, mdtrt_id: &str) -> Result<Option<Mdtrt>> {
    let row = sqlx::query(&format!("SELECT {MDTRT_COLS} FROM mdtrts WHERE mdtrt_id = $1"))
        .bind(mdtrt_id.to_string())
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(mdtrt_from_row).transpose()
}

/// Inserts a visit; false (and nothing written) when its id exists already. On PostgreSQL the visits are
/// partitioned by year and area, so no index holds the id alone: the id is checked here, under a
/// transaction-scoped advisory lock of the id so two sessions cannot both find it free (SQLite's writer
/// is one at a time anyway).
pub async fn insert_mdtrt(c: &mut AnyConnection, m: &Mdtrt) -> Result<bool> {
    if c.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) l")
            .bind(m.mdtrt_id.clone())
            .fetch_one(&mut *c)
            .await?;
    }
    let n = sqlx::query(&format!(
        "INSERT INTO mdtrts ({MDTRT_COLS}, created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
         WHERE NOT EXISTS (SELECT 1 FROM mdtrts WHERE mdtrt_id = $1)"
    ))
    .bind(m.mdtrt_id.clone())
    .bind(m.psn_no.clone())
    .bind(m.id_no.clone())
    .bind(m.fixmedins_code.clone())
    .bind(m.med_type)
    .bind(m.begn_date)
    .bind(m.insuplc_admdvs.clone())
    .bind(i64::from(m.referral_ok))
    .bind(i64::from(m.major_disease))
    .bind(m.status.clone())
    .bind(m.setl_id.clone())
    .bind(m.end_date)
    .bind(m.ipt_otp_no.clone())
    .bind(now_text())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Moves a visit from `from` to `to` status; false when it was not in `from` (someone else moved it).
pub async fn set_mdtrt_status(c: &mut AnyConnection, mdtrt_id: &str, from: &str, to: &str, setl_id: Option<&str>) -> Result<bool> {
    let n = sqlx::query("UPDATE mdtrts SET status = $1, setl_id = $2 WHERE mdtrt_id = $3 AND status = $4")
        .bind(to.to_string())
        .bind(setl_id.map(str::to_string))
        .bind(mdtrt_id.to_string())
        .bind(from.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn fee_lines(c: &mut AnyConnection, mdtrt_id: &str) -> Result<Vec<FeeLine>> {
    let rows = sqlx::query(&format!("SELECT {FEE_COLS} FROM fee_lines WHERE mdtrt_id = $1 ORDER BY feedetl_sn"))
        .bind(mdtrt_id.to_string())
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.extend(fee_line_from_row(r, 0)?);
    }
    Ok(out)
}

/// What a settlement needs to know of its visit: status, settlement, fee lines.
pub type VisitState = (String, Option<String>, Vec<FeeLine>);

/// The states of several visits in one query (absent ones are missing from the map).
pub async fn visit_states(c: &mut AnyConnection, mdtrt_ids: &[&str]) -> Result<std::collections::HashMap<String, VisitState>> {
    let mut out = std::collections::HashMap::new();
    if mdtrt_ids.is_empty() {
        return Ok(out);
    }
    let marks: Vec<String> = (1..=mdtrt_ids.len()).map(|i| format!("${i}")).collect();
    let fee_cols = FEE_COLS.split(", ").map(|c| format!("f.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT m.mdtrt_id, m.status, m.setl_id, {fee_cols} FROM mdtrts m LEFT JOIN fee_lines f ON f.mdtrt_id = m.mdtrt_id \
         WHERE m.mdtrt_id IN ({}) ORDER BY m.mdtrt_id, f.feedetl_sn",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in mdtrt_ids {
        q = q.bind(id.to_string());
    }
    for r in q.fetch_all(&mut *c).await? {
        let id = get_text(&r, 0)?;
        let entry = match out.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert((get_text(&r, 1)?, get_opt_text(&r, 2)?, Vec::new())),
        };
        entry.2.extend(fee_line_from_row(&r, 3)?);
    }
    Ok(out)
}

/// A visit's status, settlement and fee lines in one query (the settlement path); None if unknown.
pub async fn mdtrt_status_and_lines(c: &mut AnyConnection, mdtrt_id: &str) -> Result<Option<VisitState>> {
    Ok(visit_states(c, &[mdtrt_id]).await?.remove(mdtrt_id))
}

pub async fn insert_fee_lines(c: &mut AnyConnection, mdtrt_id: &str, lines: &[FeeLine]) -> Result<()> {
    const N: usize = 20;
    let now = now_text();
    for chunk in lines.chunks(200) {
        let mut sql = format!("INSERT INTO fee_lines (mdtrt_id, {FEE_COLS}, created_at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * N;
            let marks: Vec<String> = (1..=N).map(|k| format!("${}", b + k)).collect();
            sql.push_str(&format!("({})", marks.join(", ")));
        }
        let mut q = sqlx::query(&sql);
        for l in chunk {
            let d = &l.detail;
            q = q
                .bind(mdtrt_id.to_string())
                .bind(l.feedetl_sn.clone())
                .bind(l.det_item_fee_sumamt)
                .bind(l.fulamt_ownpay_amt)
                .bind(l.overlmt_selfpay)
                .bind(l.preselfpay_amt)
                .bind(l.inscp_scp_amt)
                .bind(l.med_list_codg.clone())
                .bind(d.medins_list_codg.clone())
                .bind(d.cnt.clone())
                .bind(d.pric.clone())
                .bind(d.chrgitm_lv.clone())
                .bind(d.selfpay_prop_bp)
                .bind(d.pric_uplmt_fen)
                .bind(d.basis.clone())
                .bind(d.msgid.clone())
                .bind(d.chrg_bchno.clone())
                .bind(d.lmt_used_flag.map(i64::from))
                .bind(d.med_chrgitm_type.clone())
                .bind(now.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// Withdraws fee lines of a visit (2205 / 2302: the given serial numbers, or all; 2601: those a message
/// uploaded): they move to `fee_lines_withdrawn`, nothing is lost. Returns how many were withdrawn.
pub async fn withdraw_fee_lines(c: &mut AnyConnection, mdtrt_id: &str, which: &Withdraw<'_>, withdrawn_msgid: &str) -> Result<u64> {
    // Placeholders ascend in order of first appearance (SQLite numbers them by appearance).
    let (cond, arg): (&str, Option<String>) = match which {
        Withdraw::All => ("", None),
        Withdraw::Serial(sn) => (" AND feedetl_sn = $4", Some(sn.to_string())),
        Withdraw::UploadedBy(msgid) => (" AND msgid = $4", Some(msgid.to_string())),
        Withdraw::Batch(b) => (" AND chrg_bchno = $4", Some(b.to_string())),
    };
    let copy = format!(
        "INSERT INTO fee_lines_withdrawn (mdtrt_id, feedetl_sn, det_item_fee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, \
         inscp_scp_amt, med_list_codg, uploaded_msgid, withdrawn_msgid, withdrawn_at) \
         SELECT mdtrt_id, feedetl_sn, det_item_fee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, \
         med_list_codg, msgid, $1, $2 FROM fee_lines WHERE mdtrt_id = $3{cond}"
    );
    let mut q = sqlx::query(&copy).bind(withdrawn_msgid.to_string()).bind(now_text()).bind(mdtrt_id.to_string());
    if let Some(a) = &arg {
        q = q.bind(a.clone());
    }
    q.execute(&mut *c).await?;
    let cond = cond.replace("$4", "$2");
    let delete = format!("DELETE FROM fee_lines WHERE mdtrt_id = $1{cond}");
    let mut q = sqlx::query(&delete).bind(mdtrt_id.to_string());
    if let Some(a) = arg {
        q = q.bind(a);
    }
    Ok(q.execute(&mut *c).await?.rows_affected())
}

/// Which fee lines [`withdraw_fee_lines`] takes.
#[derive(Clone, Debug)]
pub enum Withdraw<'a> {
    All,
    Serial(&'a str),
    UploadedBy(&'a str),
    Batch(&'a str),
}

/// Records a change to a visit after its registration, with the message that made it.
pub async fn insert_visit_event(c: &mut AnyConnection, mdtrt_id: &str, infno: &str, msgid: &str, detail: &str) -> Result<()> {
    sqlx::query("INSERT INTO visit_events (mdtrt_id, infno, msgid, detail, at) VALUES ($1, $2, $3, $4, $5)")
        .bind(mdtrt_id.to_string())
        .bind(infno.to_string())
        .bind(msgid.to_string())
        .bind(detail.to_string())
        .bind(now_text())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets or clears a visit's discharge date (2402 / 2405) unless the visit was cancelled; false then.
pub async fn set_mdtrt_end(c: &mut AnyConnection, mdtrt_id: &str, end_date: Option<i64>) -> Result<bool> {
    let n = sqlx::query("UPDATE mdtrts SET end_date = $1 WHERE mdtrt_id = $2 AND status <> 'cancelled'")
        .bind(end_date)
        .bind(mdtrt_id.to_string())
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Changes an open visit's admission facts (2403 / 2203); false when it is not open.
pub async fn update_mdtrt_admission(c: &mut AnyConnection, m: &Mdtrt) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE mdtrts SET begn_date = $1, med_type = $2, referral_ok = $3, major_disease = $4, ipt_otp_no = $5 \
         WHERE mdtrt_id = $6 AND status = 'open'",
    )
    .bind(m.begn_date)
    .bind(m.med_type)
    .bind(i64::from(m.referral_ok))
    .bind(i64::from(m.major_disease))
    .bind(m.ipt_otp_no.clone())
    .bind(m.mdtrt_id.clone())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Ends a sign-in (9002): its sign_no is refused from now on.
pub async fn end_sign_in(c: &mut AnyConnection, sign_no: &str, fixmedins_code: &str, now_unix: i64) -> Result<bool> {
    let n = sqlx::query("UPDATE sign_ins SET expires_at = $1 WHERE sign_no = $2 AND fixmedins_code = $3 AND expires_at > $4")
        .bind(now_unix)
        .bind(sign_no.to_string())
        .bind(fixmedins_code.to_string())
        .bind(now_unix)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

pub async fn insert_sign_in(c: &mut AnyConnection, sign_no: &str, fixmedins_code: &str, opter: &str, expires_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO sign_ins (sign_no, fixmedins_code, opter, signed_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(sign_no.to_string())
        .bind(fixmedins_code.to_string())
        .bind(opter.to_string())
        .bind(now_text())
        .bind(expires_at)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Writes an audit record (who, what, target, before / after) in the caller's transaction.
pub async fn audit_change(
    c: &mut AnyConnection,
    actor: &str,
    action: &str,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, detail, target, before_val, after_val) VALUES ($1, $2, $3, '', $4, $5, $6)")
        .bind(now_text())
        .bind(actor.to_string())
        .bind(action.to_string())
        .bind(target.to_string())
        .bind(before.map(str::to_string))
        .bind(after.map(str::to_string))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// One row of the audit log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditRecord {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub detail: String,
}

/// One row of the access log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AccessRecord {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

impl Store {
    pub async fn add_institution(&self, actor: &str, i: &Institution) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO institutions (fixmedins_code, name, hosp_lv, admdvs, secret, created_at, disabled, hosp_grade, primary_care) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(i.fixmedins_code.clone())
        .bind(i.name.clone())
        .bind(i.hosp_lv)
        .bind(i.admdvs.clone())
        .bind(i.secret.clone())
        .bind(now_text())
        .bind(i64::from(i.disabled))
        .bind(i.hosp_grade)
        .bind(i64::from(i.primary_care))
        .execute(&mut *tx)
        .await?;
        let after = format!("{{\"name\":{:?},\"hosp_lv\":{},\"admdvs\":{:?}}}", i.name, i.hosp_lv, i.admdvs);
        audit_change(&mut tx, actor, "institution.add", &i.fixmedins_code, None, Some(&after)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn institution(&self, code: &str) -> Result<Option<Institution>> {
        let row = sqlx::query(
            "SELECT fixmedins_code, name, hosp_lv, admdvs, secret, disabled, hosp_grade, primary_care FROM institutions WHERE fixmedins_code = $1",
        )
            .bind(code.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Institution {
                fixmedins_code: get_text(&r, 0)?,
                name: get_text(&r, 1)?,
                hosp_lv: get_i64(&r, 2)?,
                admdvs: get_text(&r, 3)?,
                secret: get_text(&r, 4)?,
                disabled: get_i64(&r, 5)? != 0,
                hosp_grade: get_i64(&r, 6)?,
                primary_care: get_i64(&r, 7)? != 0,
            })
        })
        .transpose()
    }

    /// Registers an institution's national grade and whether it is primary care (audited). The grade's
    /// level must be the institution's `hosp_lv` (checked by the caller, which knows the dictionary).
    pub async fn set_institution_site(&self, actor: &str, code: &str, hosp_grade: i64, primary_care: bool) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE institutions SET hosp_grade = $1, primary_care = $2 WHERE fixmedins_code = $3")
            .bind(hosp_grade)
            .bind(i64::from(primary_care))
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            let after = format!("{{\"hosp_grade\":{hosp_grade},\"primary_care\":{primary_care}}}");
            audit_change(&mut tx, actor, "institution.site", code, None, Some(&after)).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn institutions(&self) -> Result<Vec<Institution>> {
        let rows = sqlx::query("SELECT fixmedins_code FROM institutions ORDER BY fixmedins_code").fetch_all(self.pool()).await?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(i) = self.institution(&get_text(r, 0)?).await? {
                out.push(i);
            }
        }
        Ok(out)
    }

    pub async fn add_user(&self, actor: &str, u: &User) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO users (username, display_name, role, scope, password_hash, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(u.username.clone())
        .bind(u.display_name.clone())
        .bind(u.role.clone())
        .bind(u.scope.clone())
        .bind(u.password_hash.clone())
        .bind(now_text())
        .bind(i64::from(u.disabled))
        .execute(&mut *tx)
        .await?;
        let after = format!("{{\"role\":{:?},\"scope\":{:?}}}", u.role, u.scope);
        audit_change(&mut tx, actor, "user.add", &u.username, None, Some(&after)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT username, display_name, role, scope, password_hash, disabled FROM users WHERE username = $1")
            .bind(username.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(User {
                username: get_text(&r, 0)?,
                display_name: get_text(&r, 1)?,
                role: get_text(&r, 2)?,
                scope: get_text(&r, 3)?,
                password_hash: get_text(&r, 4)?,
                disabled: get_i64(&r, 5)? != 0,
            })
        })
        .transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT username FROM users ORDER BY username").fetch_all(self.pool()).await?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(u) = self.user(&get_text(r, 0)?).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    pub async fn add_session(&self, token_sha256: &str, username: &str, expires_at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO sessions (token_sha256, username, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_sha256.to_string())
            .bind(username.to_string())
            .bind(now_text())
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        audit_change(&mut tx, username, "session.login", username, None, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a live session.
    pub async fn session_user(&self, token_sha256: &str, now_unix: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT username FROM sessions WHERE token_sha256 = $1 AND expires_at > $2")
            .bind(token_sha256.to_string())
            .bind(now_unix)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| get_text(&r, 0)).transpose()
    }

    pub async fn end_session(&self, token_sha256: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET expires_at = 0 WHERE token_sha256 = $1")
            .bind(token_sha256.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A sign-in: (institution, expiry in unix seconds).
    pub async fn sign_in(&self, sign_no: &str) -> Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT fixmedins_code, expires_at FROM sign_ins WHERE sign_no = $1")
            .bind(sign_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((get_text(&r, 0)?, get_i64(&r, 1)?))).transpose()
    }

    /// The institution of a live sign-in.
    pub async fn sign_in_institution(&self, sign_no: &str, now_unix: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT fixmedins_code FROM sign_ins WHERE sign_no = $1 AND expires_at > $2")
            .bind(sign_no.to_string())
            .bind(now_unix)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| get_text(&r, 0)).transpose()
    }

    pub async fn person(&self, id_no: &str) -> Result<Option<PersonRecord>> {
        let row = sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.id_no = $1"))
            .bind(id_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    /// The person behind an insurance number (any of their enrolment records).
    pub async fn person_by_psn(&self, psn_no: &str) -> Result<Option<PersonRecord>> {
        // Two indexed look-ups: an `OR` across them made SQLite scan `persons`.
        let row = sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.psn_no = $1"))
            .bind(psn_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        if let Some(r) = row {
            return person_from_row(&r).map(Some);
        }
        let row =
            sqlx::query("SELECT MAX(id_no) FROM enrolments WHERE psn_no = $1").bind(psn_no.to_string()).fetch_one(self.pool()).await?;
        match get_opt_text(&row, 0)? {
            Some(id_no) => self.person(&id_no).await,
            None => Ok(None),
        }
    }

    /// Persons whose village code starts with `region_prefix`, by ID number, paged.
    pub async fn persons_in(&self, region_prefix: &str, household_no: Option<&str>, limit: i64, offset: i64) -> Result<Vec<PersonRecord>> {
        let mut sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.village_code LIKE $1");
        if household_no.is_some() {
            sql.push_str(" AND p.household_no = $2");
        }
        sql.push_str(&format!(" ORDER BY p.id_no LIMIT {} OFFSET {}", limit.clamp(1, 1000), offset.max(0)));
        let mut q = sqlx::query(&sql).bind(format!("{region_prefix}%"));
        if let Some(h) = household_no {
            q = q.bind(h.to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(person_from_row).collect()
    }

    pub async fn identity_periods(&self, id_no: &str) -> Result<Vec<IdentityPeriod>> {
        let rows = sqlx::query(
            "SELECT identity, start_date, end_date, source FROM identity_periods WHERE id_no = $1 AND retracted_import IS NULL ORDER BY start_date, identity",
        )
        .bind(id_no.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IdentityPeriod {
                    identity: get_text(r, 0)?,
                    start_date: get_i64(r, 1)?,
                    end_date: get_opt_i64(r, 2)?,
                    source: get_text(r, 3)?,
                })
            })
            .collect()
    }

    /// A visit with its person's village and live identity periods, in one query (the settlement path).
    pub async fn mdtrt_with_person(&self, mdtrt_id: &str) -> Result<Option<(Mdtrt, Option<(Option<String>, Vec<IdentityPeriod>)>)>> {
        let cols: String = MDTRT_COLS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols}, p.id_no, p.village_code, ip.identity, ip.start_date, ip.end_date, ip.source FROM mdtrts m \
             LEFT JOIN persons p ON p.id_no = m.id_no \
             LEFT JOIN identity_periods ip ON ip.id_no = m.id_no AND ip.retracted_import IS NULL WHERE m.mdtrt_id = $1"
        ))
        .bind(mdtrt_id.to_string())
        .fetch_all(self.pool())
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let m = mdtrt_from_row(first)?;
        if get_opt_text(first, 13)?.is_none() {
            return Ok(Some((m, None)));
        }
        let village = get_opt_text(first, 14)?;
        let mut periods = Vec::new();
        for r in &rows {
            if let Some(identity) = get_opt_text(r, 15)? {
                periods.push(IdentityPeriod {
                    identity,
                    start_date: get_i64(r, 16)?,
                    end_date: get_opt_i64(r, 17)?,
                    source: get_text(r, 18)?,
                });
            }
        }
        Ok(Some((m, Some((village, periods)))))
    }

    pub async fn enrolments_of(&self, id_no: &str) -> Result<Vec<EnrolmentRow>> {
        let rows = sqlx::query(
            "SELECT psn_no, year, status, insured, insured_admdvs, flags, flag_date, premium_fen, subsidy_fen, subsidy_source, id_no \
             FROM enrolments WHERE id_no = $1 AND superseded_import IS NULL ORDER BY year",
        )
        .bind(id_no.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EnrolmentRow {
                    id_no: get_text(r, 10)?,
                    psn_no: get_text(r, 0)?,
                    year: get_i64(r, 1)?,
                    status: get_text(r, 2)?,
                    insured: get_i64(r, 3)? != 0,
                    insured_admdvs: get_text(r, 4)?,
                    flags: get_i64(r, 5)?,
                    flag_date: get_opt_i64(r, 6)?,
                    premium_fen: get_i64(r, 7)?,
                    subsidy_fen: get_i64(r, 8)?,
                    subsidy_source: get_opt_text(r, 9)?,
                })
            })
            .collect()
    }

    /// Special states (death, military) in force, as (state, start yyyymmdd).
    pub async fn special_states(&self, id_no: &str) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, start_date FROM special_states WHERE id_no = $1 AND retracted_import IS NULL ORDER BY start_date")
                .bind(id_no.to_string())
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, get_i64(r, 1)?))).collect()
    }

    /// An institution's open visits of a person (newest first), with the sums of their uploaded fee
    /// lines: [total, fully self-paid, over-limit, pre-self-pay, compliant] and the line count.
    pub async fn open_visits(&self, fixmedins_code: &str, psn_no: &str) -> Result<Vec<(Mdtrt, [i64; 5], i64)>> {
        let cols = MDTRT_COLS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
        // PostgreSQL sums BIGINT as NUMERIC: cast back.
        let sums = ["det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]
            .map(|c| format!("CAST(COALESCE(SUM(f.{c}), 0) AS BIGINT)"))
            .join(", ");
        let sql = format!(
            "SELECT {cols}, {sums}, COUNT(f.feedetl_sn) \
             FROM mdtrts m LEFT JOIN fee_lines f ON f.mdtrt_id = m.mdtrt_id \
             WHERE m.fixmedins_code = $1 AND m.psn_no = $2 AND m.status = 'open' \
             GROUP BY {cols} ORDER BY m.begn_date DESC, m.mdtrt_id DESC LIMIT 50"
        );
        let rows = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(psn_no.to_string()).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let sums = [get_i64(r, 13)?, get_i64(r, 14)?, get_i64(r, 15)?, get_i64(r, 16)?, get_i64(r, 17)?];
                Ok((mdtrt_from_row(r)?, sums, get_i64(r, 18)?))
            })
            .collect()
    }

    /// Whether the institution has registered any visit of the person (open, settled or cancelled): the
    /// institution treats or treated them.
    pub async fn has_visit_at(&self, fixmedins_code: &str, psn_no: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM mdtrts WHERE fixmedins_code = $1 AND psn_no = $2 LIMIT 1")
            .bind(fixmedins_code.to_string())
            .bind(psn_no.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// The latest year any enrolment is recorded for (the workbench's default period).
    pub async fn latest_enrolment_year(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(year) FROM enrolments WHERE superseded_import IS NULL").fetch_one(self.pool()).await?;
        crate::get_opt_i64(&row, 0)
    }

    pub async fn mdtrt(&self, mdtrt_id: &str) -> Result<Option<Mdtrt>> {
        let mut c = self.pool().acquire().await?;
        mdtrt(&mut c, mdtrt_id).await
    }

    pub async fn msg(&self, msgid: &str) -> Result<Option<LoggedMsg>> {
        let mut c = self.pool().acquire().await?;
        msg_lookup(&mut c, msgid).await
    }

    /// A server secret by name: the stored one, or `candidate` stored now if there is none. Every server
    /// process on the database gets the same value (the first insert wins), and it survives restarts.
    pub async fn secret(&self, name: &str, candidate: &str) -> Result<String> {
        sqlx::query("INSERT INTO app_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name.to_string())
            .bind(candidate.to_string())
            .bind(now_text())
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT value FROM app_secrets WHERE name = $1").bind(name.to_string()).fetch_one(self.pool()).await?;
        get_text(&row, 0)
    }

    /// Keeps computed figures under `name` (replacing what was kept), with the time they were computed.
    pub async fn keep_figures(&self, name: &str, body: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO kept_figures (name, computed_at, body) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET computed_at = excluded.computed_at, body = excluded.body",
        )
        .bind(name.to_string())
        .bind(now_text())
        .bind(body.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The figures kept under `name`: when they were computed (UTC, RFC 3339) and what they were.
    pub async fn kept_figures(&self, name: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT computed_at, body FROM kept_figures WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((get_text(&r, 0)?, get_text(&r, 1)?))).transpose()
    }

    /// Records an unmasked view of personal information (PIPL).
    /// Forgets nonces whose window has passed (their timestamps are refused anyway).
    pub async fn prune_nonces(&self, now_unix: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM national_nonces WHERE expires_at < $1").bind(now_unix).execute(self.pool()).await?;
        Ok(r.rows_affected())
    }

    /// Whether the registry holds a person whose village lies outside the region `prefix`: two seeks
    /// on the village index (below the prefix, above its codes), cheap enough for every page view.
    pub async fn persons_outside(&self, prefix: &str) -> Result<bool> {
        if prefix.is_empty() {
            return Ok(false);
        }
        let p = sqlx::query("SELECT 1 FROM persons WHERE village_code < $1 OR village_code >= $2 LIMIT 1")
            .bind(prefix.to_string())
            .bind(crate::prefix_end(prefix))
            .fetch_optional(self.pool())
            .await?;
        Ok(p.is_some())
    }

    /// Whether the registry holds anyone outside `prefix` (by village, or by insured area for people
    /// without a village): a run over the whole database would then touch another region's people.
    pub async fn anyone_outside(&self, prefix: &str) -> Result<bool> {
        if prefix.is_empty() {
            return Ok(false);
        }
        if self.persons_outside(prefix).await? {
            return Ok(true);
        }
        let like = format!("{prefix}%");
        let e =
            sqlx::query("SELECT 1 FROM enrolments WHERE insured_admdvs NOT LIKE $1 LIMIT 1").bind(like).fetch_optional(self.pool()).await?;
        Ok(e.is_some())
    }

    /// Access-log rows, one per person shown (PIPL art. 51/55: every unmasked view or export is logged per
    /// person), in one transaction.
    pub async fn log_access_many(&self, actor: &str, role: &str, action: &str, subjects_masked: &[String], detail: &str) -> Result<()> {
        if subjects_masked.is_empty() {
            return Ok(());
        }
        let at = now_text();
        let mut tx = self.begin().await?;
        for chunk in subjects_masked.chunks(400) {
            let marks: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${}, ${}, ${}, ${})", i * 6 + 1, i * 6 + 2, i * 6 + 3, i * 6 + 4, i * 6 + 5, i * 6 + 6))
                .collect();
            let sql = format!("INSERT INTO access_log (at, actor, role, action, subject, detail) VALUES {}", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for sub in chunk {
                q = q
                    .bind(at.clone())
                    .bind(actor.to_string())
                    .bind(role.to_string())
                    .bind(action.to_string())
                    .bind(sub.clone())
                    .bind(detail.to_string());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn log_access(&self, actor: &str, role: &str, action: &str, subject_masked: &str, detail: &str) -> Result<()> {
        let mut c = self.pool().acquire().await?;
        log_access_in(&mut c, actor, role, action, subject_masked, detail).await
    }

    pub async fn access_log(&self, limit: i64) -> Result<Vec<AccessRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT at, actor, role, action, subject, detail FROM access_log ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccessRecord {
                    at: get_text(r, 0)?,
                    actor: get_text(r, 1)?,
                    role: get_text(r, 2)?,
                    action: get_text(r, 3)?,
                    subject: get_text(r, 4)?,
                    detail: get_text(r, 5)?,
                })
            })
            .collect()
    }

    pub async fn audit_records(&self, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT at, actor, action, target, before_val, after_val, detail FROM audit_log ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    at: get_text(r, 0)?,
                    actor: get_text(r, 1)?,
                    action: get_text(r, 2)?,
                    target: get_opt_text(r, 3)?,
                    before: get_opt_text(r, 4)?,
                    after: get_opt_text(r, 5)?,
                    detail: get_text(r, 6)?,
                })
            })
            .collect()
    }

    /// Reconciliation runs, newest first.
    pub async fn reconcile_runs(&self, limit: i64) -> Result<Vec<(i64, i64, String, Option<String>, i64, i64, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT id, as_of, started_at, finished_at, findings, new_findings, resolved_findings FROM reconcile_runs ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((get_i64(r, 0)?, get_i64(r, 1)?, get_text(r, 2)?, get_opt_text(r, 3)?, get_i64(r, 4)?, get_i64(r, 5)?, get_i64(r, 6)?))
            })
            .collect()
    }
}

/// A gateway application account (x-tif-paasid) and the institutions it may act for.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Account {
    pub paasid: String,
    pub name: String,
    /// `gateway` (the national gateway's signature) or `hmac` (HMAC over the body).
    pub scheme: String,
    #[serde(skip)]
    pub token: String,
    #[serde(skip)]
    pub prev_token: Option<String>,
    /// Until when the previous token is still accepted (unix seconds).
    pub prev_until: Option<i64>,
    pub disabled: bool,
    pub institutions: Vec<String>,
}

impl Store {
    pub async fn account(&self, paasid: &str) -> Result<Option<Account>> {
        let row =
            sqlx::query("SELECT paasid, name, scheme, token, prev_token, prev_until, disabled FROM gateway_accounts WHERE paasid = $1")
                .bind(paasid.to_string())
                .fetch_optional(self.pool())
                .await?;
        let Some(r) = row else { return Ok(None) };
        let grants = sqlx::query("SELECT fixmedins_code FROM gateway_grants WHERE paasid = $1 ORDER BY fixmedins_code")
            .bind(paasid.to_string())
            .fetch_all(self.pool())
            .await?;
        Ok(Some(Account {
            paasid: get_text(&r, 0)?,
            name: get_text(&r, 1)?,
            scheme: get_text(&r, 2)?,
            token: get_text(&r, 3)?,
            prev_token: get_opt_text(&r, 4)?,
            prev_until: get_opt_i64(&r, 5)?,
            disabled: get_i64(&r, 6)? != 0,
            institutions: grants.iter().map(|g| get_text(g, 0)).collect::<Result<_>>()?,
        }))
    }

    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT paasid FROM gateway_accounts ORDER BY paasid").fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(self.account(&get_text(r, 0)?).await?);
        }
        Ok(out)
    }

    /// Adds an account with its grants (one transaction, audited; the token is not in the audit record).
    pub async fn add_account(&self, actor: &str, a: &Account) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO gateway_accounts (paasid, name, scheme, token, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(a.paasid.clone())
            .bind(a.name.clone())
            .bind(a.scheme.clone())
            .bind(a.token.clone())
            .bind(now_text())
            .bind(i64::from(a.disabled))
            .execute(&mut *tx)
            .await?;
        for code in &a.institutions {
            sqlx::query(
                "INSERT INTO gateway_grants (paasid, fixmedins_code) VALUES ($1, $2) ON CONFLICT (paasid, fixmedins_code) DO NOTHING",
            )
            .bind(a.paasid.clone())
            .bind(code.clone())
            .execute(&mut *tx)
            .await?;
        }
        let after = format!("{} {} → {}", a.name, a.scheme, a.institutions.join(","));
        audit_change(&mut tx, actor, "account.add", &a.paasid, None, Some(&after)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new token; the old one stays valid until `prev_until` (unix seconds) so clients can switch over.
    pub async fn rotate_account(&self, actor: &str, paasid: &str, new_token: &str, prev_until: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n =
            sqlx::query("UPDATE gateway_accounts SET prev_token = token, prev_until = $1, token = $2, rotated_at = $3 WHERE paasid = $4")
                .bind(prev_until)
                .bind(new_token.to_string())
                .bind(now_text())
                .bind(paasid.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        audit_change(&mut tx, actor, "account.rotate", paasid, None, Some(&format!("previous token valid until {prev_until}"))).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Lets an account act for one more institution (`grant`) or no longer (`!grant`).
    pub async fn grant_account(&self, actor: &str, paasid: &str, fixmedins_code: &str, grant: bool) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let sql = if grant {
            "INSERT INTO gateway_grants (paasid, fixmedins_code) VALUES ($1, $2) ON CONFLICT (paasid, fixmedins_code) DO NOTHING"
        } else {
            "DELETE FROM gateway_grants WHERE paasid = $1 AND fixmedins_code = $2"
        };
        sqlx::query(sql).bind(paasid.to_string()).bind(fixmedins_code.to_string()).execute(&mut *tx).await?;
        audit_change(&mut tx, actor, if grant { "account.grant" } else { "account.revoke" }, paasid, None, Some(fixmedins_code)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_account_disabled(&self, actor: &str, paasid: &str, disabled: bool) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE gateway_accounts SET disabled = $1 WHERE paasid = $2")
            .bind(i64::from(disabled))
            .bind(paasid.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        audit_change(&mut tx, actor, if disabled { "account.disable" } else { "account.enable" }, paasid, None, None).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// An institution's visits of a person (5201), newest first, optionally within service dates.
    pub async fn visits_of(
        &self,
        fixmedins_code: &str,
        psn_no: &str,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Mdtrt>> {
        let rows = sqlx::query(&format!(
            "SELECT {MDTRT_COLS} FROM mdtrts WHERE fixmedins_code = $1 AND psn_no = $2 AND begn_date >= $3 AND begn_date <= $4 \
             ORDER BY begn_date DESC, mdtrt_id DESC LIMIT $5"
        ))
        .bind(fixmedins_code.to_string())
        .bind(psn_no.to_string())
        .bind(from.unwrap_or(0))
        .bind(to.unwrap_or(99_991_231))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(mdtrt_from_row).collect()
    }

    pub async fn fee_lines_of(&self, mdtrt_id: &str) -> Result<Vec<FeeLine>> {
        let mut c = self.pool().acquire().await?;
        fee_lines(&mut c, mdtrt_id).await
    }

    /// Institutions by code or name (1201), at most `limit`.
    pub async fn find_institutions(&self, code: Option<&str>, name: Option<&str>, limit: i64) -> Result<Vec<Institution>> {
        let all = self.institutions().await?;
        Ok(all
            .into_iter()
            .filter(|i| code.is_none_or(|c| i.fixmedins_code == c))
            .filter(|i| name.is_none_or(|n| i.name.contains(n)))
            .take(limit.max(0) as usize)
            .collect())
    }
}

/// Records an unmasked view of a person inside the caller's transaction (the national answers that
/// carry a name and certificate number are logged with the write that produced them).
pub async fn log_access_in(c: &mut AnyConnection, actor: &str, role: &str, action: &str, subject_masked: &str, detail: &str) -> Result<()> {
    sqlx::query("INSERT INTO access_log (at, actor, role, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(now_text())
        .bind(actor.to_string())
        .bind(role.to_string())
        .bind(action.to_string())
        .bind(subject_masked.to_string())
        .bind(detail.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A referral filing (2501 转院备案) as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralFiling {
    pub trt_dcla_detl_sn: String,
    pub psn_no: String,
    pub fixmedins_code: String,
    pub reflin_medins_no: String,
    pub mdtrtarea_admdvs: String,
    pub refl_type: String,
    pub diag_code: String,
    pub begn_date: i64,
    pub end_date: Option<i64>,
    pub msgid: String,
}

pub async fn insert_referral_filing(c: &mut sqlx::AnyConnection, f: &ReferralFiling) -> Result<()> {
    sqlx::query(
        "INSERT INTO referral_filings (trt_dcla_detl_sn, psn_no, fixmedins_code, reflin_medins_no, mdtrtarea_admdvs, refl_type, diag_code, \
         begn_date, end_date, revoked, msgid, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
    )
    .bind(f.trt_dcla_detl_sn.clone())
    .bind(f.psn_no.clone())
    .bind(f.fixmedins_code.clone())
    .bind(f.reflin_medins_no.clone())
    .bind(f.mdtrtarea_admdvs.clone())
    .bind(f.refl_type.clone())
    .bind(f.diag_code.clone())
    .bind(f.begn_date)
    .bind(f.end_date)
    .bind(f.msgid.clone())
    .bind(now_text())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// 2502: revokes a filing the institution declared for the person. `false` when there is none live.
pub async fn revoke_referral_filing(c: &mut sqlx::AnyConnection, sn: &str, fixmedins_code: &str, psn_no: &str) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE referral_filings SET revoked = 1 WHERE trt_dcla_detl_sn = $1 AND fixmedins_code = $2 AND psn_no = $3 AND revoked = 0",
    )
    .bind(sn.to_string())
    .bind(fixmedins_code.to_string())
    .bind(psn_no.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

impl Store {
    /// Whether a live referral filing of the person covers day `on` (yyyymmdd) for care at institution
    /// `medins` (or, when the filing names no institution, anywhere in the division `admdvs`).
    pub async fn referral_filed(&self, psn_no: &str, on: i64, medins: &str, admdvs: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM referral_filings WHERE psn_no = $1 AND revoked = 0 AND begn_date <= $2 \
             AND (end_date IS NULL OR end_date >= $2) AND (reflin_medins_no = $3 OR (reflin_medins_no = '' AND mdtrtarea_admdvs = $4))",
        )
        .bind(psn_no.to_string())
        .bind(on)
        .bind(medins.to_string())
        .bind(admdvs.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(get_i64(&row, 0)? > 0)
    }
}
