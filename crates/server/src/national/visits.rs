//! Visits: registration and admission (2201 / 2401), the outpatient visit's details and the admission's
//! changes (2203 / 2403), discharge (2402) and its cancellation (2405), cancelling a registration or an
//! admission (2202 / 2404), and the visit query (5201).

use baozhang_core::{Date, MedType};
use baozhang_store::ledger::Batch;
use baozhang_store::service::{self, Mdtrt};
use baozhang_store::{date_num, num_date, Tx};
use serde_json::{json, Map, Value};

use super::envelope::{code_field, date_field, flag_field, input_obj, refused, req_str, str_field, Envelope, Infno, NResult};
use crate::writer::ExecError;
use crate::{sha256_hex, AppState};

/// A diagnosis: ICD-10 code and name.
pub type Diagnosis = (String, Option<String>);

/// 2201 / 2401 as read from the message.
#[derive(Clone, Debug)]
pub struct Register {
    pub inpatient: bool,
    pub psn_no: String,
    pub cert_no: String,
    pub begn: Date,
    pub med_type: MedType,
    pub diagnosis: Option<Diagnosis>,
    pub referral_ok: bool,
    pub major_disease: bool,
    /// 住院号 / 门诊号 (`ipt_no`, `ipt_otp_no`).
    pub ipt_otp_no: String,
}

/// A visit named by a message (2202, 2404, 2405, 5204): its number and the person's.
#[derive(Clone, Debug)]
pub struct VisitRef {
    pub mdtrt_id: String,
    pub psn_no: String,
}

/// 2203 / 2403: what may change on an open visit (absent = unchanged).
#[derive(Clone, Debug)]
pub struct VisitChange {
    pub visit: VisitRef,
    pub begn: Option<Date>,
    pub med_type: Option<MedType>,
    pub referral_ok: Option<bool>,
    pub major_disease: Option<bool>,
    pub ipt_otp_no: Option<String>,
    pub diagnosis: Option<Diagnosis>,
}

/// 2402.
#[derive(Clone, Debug)]
pub struct Discharge {
    pub visit: VisitRef,
    pub end: Date,
    pub diagnosis: Option<Diagnosis>,
}

/// 5201.
#[derive(Clone, Debug)]
pub struct VisitQuery {
    pub psn_no: String,
    pub mdtrt_id: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
}

/// What the writer does to a visit after its registration.
#[derive(Debug)]
pub enum VisitOp {
    /// 2202 / 2404, and 2601 of a registration.
    Cancel(VisitRef),
    /// 2203 / 2403.
    Change(VisitChange),
    /// 2402.
    Discharge(Discharge),
    /// 2405.
    DischargeCancel(VisitRef),
}

/// The main diagnosis: `dise_codg` (2201/2203), `dscg_maindiag_code` / `adm_diag_code` (2401/2402), or
/// the `diseinfo[]` row with `maindiag_flag` 1; checked to look like ICD-10.
fn diagnosis_of(env: &Envelope, data: &Map<String, Value>, at: &str) -> NResult<Option<Diagnosis>> {
    for (code_key, name_key) in [
        ("dise_codg", "dise_name"),
        ("dscg_maindiag_code", "dscg_maindiag_name"),
        ("adm_diag_code", "adm_diag_name"),
        ("diag_code", "diag_name"),
    ] {
        if let Some(code) = str_field(data, code_key, at)?.map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()) {
            if !baozhang_core::programmes::valid_icd(&code) {
                return Err(refused(format!("字段 {at}.{code_key}：诊断编码“{code}”不是 ICD-10 编码")));
            }
            let name = str_field(data, name_key, at)?.map(|n| n.chars().take(100).collect::<String>()).filter(|n| !n.is_empty());
            return Ok(Some((code, name)));
        }
    }
    // diseinfo[]: the row marked main (2401/2402 maindiag_flag 1), else the first in order (2203 diag_srt_no 1).
    if let Some(Value::Array(rows)) = env.input.get("diseinfo") {
        let mut first: Option<(&Map<String, Value>, String)> = None;
        for (k, row) in rows.iter().enumerate().take(100) {
            let Value::Object(o) = row else { return Err(refused(format!("input.diseinfo[{k}] 应为 JSON 对象"))) };
            let at = format!("input.diseinfo[{k}]");
            if code_field(o, "maindiag_flag", &at)?.as_deref() == Some("1") {
                return diagnosis_of_row(o, &at);
            }
            if first.is_none() && matches!(code_field(o, "diag_srt_no", &at)?.as_deref(), Some("1") | None) {
                first = Some((o, at));
            }
        }
        if let Some((o, at)) = first {
            return diagnosis_of_row(o, &at);
        }
    }
    Ok(None)
}

fn diagnosis_of_row(o: &Map<String, Value>, at: &str) -> NResult<Option<Diagnosis>> {
    let Some(code) = str_field(o, "diag_code", at)?.map(|c| c.to_ascii_uppercase()).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if !baozhang_core::programmes::valid_icd(&code) {
        return Err(refused(format!("字段 {at}.diag_code：诊断编码“{code}”不是 ICD-10 编码")));
    }
    Ok(Some((code, str_field(o, "diag_name", at)?.map(|n| n.chars().take(100).collect()))))
}

fn med_type_of(data: &Map<String, Value>, at: &str) -> NResult<Option<MedType>> {
    match code_field(data, "med_type", at)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => MedType::parse(&s).map(Some).map_err(|e| refused(format!("字段 {at}.med_type：{e}"))),
    }
}

pub fn parse_register(infno: Infno, env: &Envelope) -> NResult<Register> {
    let inpatient = infno == Infno::Admission;
    let (data, at) = if inpatient { input_obj(env, &["mdtrtinfo", "data"])? } else { input_obj(env, &["data"])? };
    let psn_no = req_str(data, "psn_no", &at)?;
    let cert_no = req_str(data, "mdtrt_cert_no", &at)?;
    let begn = date_field(data, "begntime", &at)?.ok_or_else(|| refused(format!("缺少字段 {at}.begntime")))?;
    // 2201 carries no med_type in the national layout (it comes with 2203); outpatient care paid here
    // is 门诊慢特病 (14).
    let med_type = med_type_of(data, &at)?.unwrap_or(if inpatient { MedType::Inpatient } else { MedType::OutpatientChronic });
    if (med_type == MedType::Inpatient) != inpatient {
        return Err(refused(if inpatient {
            "入院办理（2401）的医疗类别应为 21 住院"
        } else {
            "门诊挂号（2201）的医疗类别应为 14 门诊慢特病"
        }));
    }
    let ipt_otp_no = str_field(data, "ipt_no", &at)?.or(str_field(data, "ipt_otp_no", &at)?).unwrap_or_default().chars().take(30).collect();
    Ok(Register {
        inpatient,
        psn_no,
        cert_no,
        begn,
        med_type,
        diagnosis: diagnosis_of(env, data, &at)?,
        referral_ok: flag_field(data, "refl_flag", &at, true)?,
        major_disease: flag_field(data, "major_dise_flag", &at, false)?,
        ipt_otp_no,
    })
}

pub fn parse_visit_ref(env: &Envelope) -> NResult<VisitRef> {
    let (data, at) = data_or_first(env)?;
    Ok(VisitRef { mdtrt_id: req_str(data, "mdtrt_id", &at)?, psn_no: req_str(data, "psn_no", &at)? })
}

/// `input.data` as an object, or the first row when it is an array (2302 sends an array).
pub fn data_or_first(env: &Envelope) -> NResult<(&Map<String, Value>, String)> {
    match env.input.get("data") {
        Some(Value::Array(a)) => match a.first() {
            Some(Value::Object(o)) => Ok((o, "input.data[0]".to_string())),
            _ => Err(refused("input.data 应为 JSON 对象或对象数组")),
        },
        _ => input_obj(env, &["data"]),
    }
}

pub fn parse_change(infno: Infno, env: &Envelope) -> NResult<VisitChange> {
    let (data, at) =
        if infno == Infno::AdmissionChange { input_obj(env, &["adminfo", "data"])? } else { input_obj(env, &["mdtrtinfo", "data"])? };
    let flag = |k: &str| -> NResult<Option<bool>> {
        match code_field(data, k, &at)?.as_deref() {
            None | Some("") => Ok(None),
            Some(_) => flag_field(data, k, &at, false).map(Some),
        }
    };
    let med_type = med_type_of(data, &at)?;
    if let Some(mt) = med_type {
        if (mt == MedType::Inpatient) != (infno == Infno::AdmissionChange) {
            return Err(refused(format!("字段 {at}.med_type：{} 不能改为医疗类别 {}", infno.name_zh(), mt.code())));
        }
    }
    Ok(VisitChange {
        visit: VisitRef { mdtrt_id: req_str(data, "mdtrt_id", &at)?, psn_no: req_str(data, "psn_no", &at)? },
        begn: date_field(data, "begntime", &at)?,
        med_type,
        referral_ok: flag("refl_flag")?,
        major_disease: flag("major_dise_flag")?,
        ipt_otp_no: str_field(data, "ipt_no", &at)?.or(str_field(data, "ipt_otp_no", &at)?).map(|s| s.chars().take(30).collect()),
        diagnosis: diagnosis_of(env, data, &at)?,
    })
}

pub fn parse_discharge(env: &Envelope) -> NResult<Discharge> {
    let (data, at) = input_obj(env, &["dscginfo", "data"])?;
    let end = date_field(data, "endtime", &at)?
        .or(date_field(data, "dscg_time", &at)?)
        .ok_or_else(|| refused(format!("缺少出院时间 {at}.endtime")))?;
    Ok(Discharge {
        visit: VisitRef { mdtrt_id: req_str(data, "mdtrt_id", &at)?, psn_no: req_str(data, "psn_no", &at)? },
        end,
        diagnosis: diagnosis_of(env, data, &at)?,
    })
}

pub fn parse_visit_query(env: &Envelope) -> NResult<VisitQuery> {
    let (data, at) = input_obj(env, &["data"])?;
    Ok(VisitQuery {
        psn_no: req_str(data, "psn_no", &at)?,
        mdtrt_id: str_field(data, "mdtrt_id", &at)?.filter(|s| !s.is_empty()),
        from: date_field(data, "begntime", &at)?,
        to: date_field(data, "endtime", &at)?,
    })
}

/// Checks against the registry what a registration needs (the person presented, insured that year)
/// and builds the visit.
pub async fn prepare_register(state: &AppState, env: &Envelope, r: Register) -> NResult<(Mdtrt, Option<Diagnosis>)> {
    let admdvs = insured_area(env)?;
    let person = state.store.person_by_psn(&r.psn_no).await?.ok_or_else(|| refused(format!("人员编号 {} 不存在", r.psn_no)))?;
    if person.id_no != r.cert_no.to_ascii_uppercase() {
        return Err(refused("就诊凭证号码与人员编号不符：只能为出示证件的本人办理"));
    }
    let year = i64::from(r.begn.year());
    let insured = state.store.enrolments_of(&person.id_no).await?.iter().any(|e| e.year == year && e.insured);
    if !insured {
        return Err(refused(format!("该人员 {year} 年度未参保或已停保，不能按医保办理就诊")));
    }
    let m = Mdtrt {
        mdtrt_id: mdtrt_id_of(&env.fixmedins_code, &env.msgid),
        psn_no: r.psn_no,
        id_no: person.id_no,
        fixmedins_code: env.fixmedins_code.clone(),
        med_type: i64::from(r.med_type.code()),
        begn_date: date_num(r.begn),
        insuplc_admdvs: admdvs,
        referral_ok: r.referral_ok,
        major_disease: r.major_disease,
        status: "open".to_string(),
        setl_id: None,
        end_date: None,
        ipt_otp_no: r.ipt_otp_no,
    };
    Ok((m, r.diagnosis))
}

/// The visit number a registration gets: "MD" + 6 hex of the institution + its msgid (msgids are each
/// institution's own numbering, so the institution part keeps two institutions' visits apart).
pub fn mdtrt_id_of(fixmedins_code: &str, msgid: &str) -> String {
    format!("MD{}{msgid}", &sha256_hex(fixmedins_code.as_bytes())[..6])
}

pub fn insured_area(env: &Envelope) -> NResult<String> {
    let a = env.insuplc_admdvs.trim();
    if a.len() != 6 || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused("参保地医保区划 insuplc_admdvs 应为 6 位区划代码"));
    }
    Ok(a.to_string())
}

/// The answer to a registration: 2201 `data`, 2401 `result` (as the national layout names them).
pub fn register_output(infno: Infno, m: &Mdtrt) -> String {
    let inner = json!({"mdtrt_id": m.mdtrt_id, "psn_no": m.psn_no, "ipt_otp_no": m.ipt_otp_no, "exp_content": ""});
    if infno == Infno::Admission {
        json!({ "result": inner }).to_string()
    } else {
        json!({ "data": inner }).to_string()
    }
}

fn ymd_time(n: Option<i64>) -> Value {
    n.and_then(num_date).map_or(Value::Null, |d| Value::String(format!("{d} 00:00:00")))
}

/// A visit as 5201 lists it.
pub fn visit_json(m: &Mdtrt) -> Value {
    json!({
        "mdtrt_id": m.mdtrt_id,
        "psn_no": m.psn_no,
        "fixmedins_code": m.fixmedins_code,
        "med_type": m.med_type.to_string(),
        "begntime": ymd_time(Some(m.begn_date)),
        "endtime": ymd_time(m.end_date),
        "insuplc_admdvs": m.insuplc_admdvs,
        "ipt_otp_no": m.ipt_otp_no,
        "refl_flag": if m.referral_ok { "1" } else { "0" },
        "vali_flag": if m.status == "cancelled" { "0" } else { "1" },
        "setl_flag": if m.status == "settled" { "1" } else { "0" },
        "setl_id": m.setl_id,
    })
}

pub async fn visit_query(state: &AppState, env: &Envelope, q: &VisitQuery) -> NResult<String> {
    let visits = match &q.mdtrt_id {
        Some(id) => {
            state.store.mdtrt(id).await?.into_iter().filter(|m| m.fixmedins_code == env.fixmedins_code && m.psn_no == q.psn_no).collect()
        }
        None => state.store.visits_of(&env.fixmedins_code, &q.psn_no, q.from.map(date_num), q.to.map(date_num), 200).await?,
    };
    Ok(json!({ "mdtrtinfo": visits.iter().map(visit_json).collect::<Vec<_>>() }).to_string())
}

/// The visit a write names, read under the writer's transaction: it must be this institution's and
/// this person's.
pub async fn own_visit(tx: &mut Tx<'_>, batch: &mut Batch, fixmedins_code: &str, v: &VisitRef) -> Result<Mdtrt, ExecError> {
    batch.flush(tx).await?;
    batch.forget_visit(&v.mdtrt_id);
    let m = service::mdtrt(tx, &v.mdtrt_id).await?.ok_or_else(|| refused(format!("就诊 {} 不存在", v.mdtrt_id)))?;
    if m.fixmedins_code != fixmedins_code {
        return Err(refused("该就诊不属于本机构，无权办理").into());
    }
    if m.psn_no != v.psn_no {
        return Err(refused("人员编号与就诊记录不符").into());
    }
    Ok(m)
}

fn not_open(m: &Mdtrt) -> ExecError {
    match m.status.as_str() {
        "settled" => {
            refused(format!("就诊 {} 已结算（结算编号 {}），请先撤销结算", m.mdtrt_id, m.setl_id.as_deref().unwrap_or("-"))).into()
        }
        "cancelled" => refused(format!("就诊 {} 已撤销", m.mdtrt_id)).into(),
        _ => refused(format!("就诊 {} 当前状态不能办理", m.mdtrt_id)).into(),
    }
}

/// Runs a visit change inside the writer's transaction and returns the `output` text.
pub async fn execute(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    fixmedins_code: &str,
    infno: &str,
    msgid: &str,
    op: &VisitOp,
) -> Result<String, ExecError> {
    match op {
        VisitOp::Cancel(v) => {
            let m = own_visit(tx, batch, fixmedins_code, v).await?;
            if m.status != "open" {
                return Err(not_open(&m));
            }
            let lines = service::fee_lines(tx, &m.mdtrt_id).await?;
            if !lines.is_empty() {
                return Err(refused(format!(
                    "就诊 {} 还有 {} 条费用明细，请先撤销费用明细（{}）",
                    m.mdtrt_id,
                    lines.len(),
                    if m.med_type == 21 { "2302" } else { "2205" }
                ))
                .into());
            }
            if !service::set_mdtrt_status(tx, &m.mdtrt_id, "open", "cancelled", None).await? {
                return Err(not_open(&m));
            }
            service::insert_visit_event(tx, &m.mdtrt_id, infno, msgid, "cancelled").await?;
            Ok("{}".to_string())
        }
        VisitOp::Change(c) => {
            let mut m = own_visit(tx, batch, fixmedins_code, &c.visit).await?;
            if m.status != "open" {
                return Err(not_open(&m));
            }
            let before = visit_json(&m).to_string();
            if let Some(b) = c.begn {
                if b.year() != num_date(m.begn_date).map_or(b.year(), |d| d.year()) {
                    return Err(refused("就诊开始日期不能改到另一个年度；请撤销后重新办理").into());
                }
                m.begn_date = date_num(b);
            }
            if let Some(mt) = c.med_type {
                m.med_type = i64::from(mt.code());
            }
            if let Some(r) = c.referral_ok {
                m.referral_ok = r;
            }
            if let Some(d) = c.major_disease {
                m.major_disease = d;
            }
            if let Some(n) = &c.ipt_otp_no {
                m.ipt_otp_no = n.clone();
            }
            if let Some(end) = m.end_date {
                if end < m.begn_date {
                    return Err(refused("入院日期晚于已办理的出院日期").into());
                }
            }
            if !service::update_mdtrt_admission(tx, &m).await? {
                return Err(not_open(&m));
            }
            if let Some((code, name)) = &c.diagnosis {
                baozhang_store::programmes::insert_diagnosis(tx, &m.mdtrt_id, code, name.as_deref(), "national").await?;
            }
            service::insert_visit_event(tx, &m.mdtrt_id, infno, msgid, &format!("before {before}")).await?;
            Ok("{}".to_string())
        }
        VisitOp::Discharge(d) => {
            // Discharge may come before the settlement or after it (regions differ); never on a cancelled visit.
            let m = own_visit(tx, batch, fixmedins_code, &d.visit).await?;
            if m.status == "cancelled" {
                return Err(not_open(&m));
            }
            if m.med_type != 21 {
                return Err(refused("门诊就诊不办理出院").into());
            }
            if date_num(d.end) < m.begn_date {
                return Err(refused("出院时间早于入院时间").into());
            }
            if m.end_date.is_some() {
                return Err(refused(format!("就诊 {} 已办理出院；如需更改请先出院撤销（2405）", m.mdtrt_id)).into());
            }
            if !service::set_mdtrt_end(tx, &m.mdtrt_id, Some(date_num(d.end))).await? {
                return Err(not_open(&m));
            }
            if let Some((code, name)) = &d.diagnosis {
                baozhang_store::programmes::insert_diagnosis(tx, &m.mdtrt_id, code, name.as_deref(), "national").await?;
            }
            service::insert_visit_event(tx, &m.mdtrt_id, infno, msgid, &format!("discharged {}", d.end)).await?;
            Ok("{}".to_string())
        }
        VisitOp::DischargeCancel(v) => {
            let m = own_visit(tx, batch, fixmedins_code, v).await?;
            if m.status == "cancelled" {
                return Err(not_open(&m));
            }
            if m.end_date.is_none() {
                return Err(refused(format!("就诊 {} 尚未办理出院", m.mdtrt_id)).into());
            }
            service::set_mdtrt_end(tx, &m.mdtrt_id, None).await?;
            service::insert_visit_event(tx, &m.mdtrt_id, infno, msgid, "discharge cancelled").await?;
            Ok("{}".to_string())
        }
    }
}
