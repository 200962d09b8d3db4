//! 2501 转院备案 (referral filing) and 2502 撤销转院备案: the declaring institution files that the person
//! may be treated at another institution (`reflin_medins_no`, in `mdtrtarea_admdvs`) for a period. A
//! settlement of care outside the insured prefecture is then a filed referral; without a live filing it is
//! unfiled (docs/SETTLEMENT.md R-POL-22) — the policy's adjustments price the two.

use serde_json::json;

use baozhang_core::Date;
use baozhang_store::date_num;
use baozhang_store::service::{self, ReferralFiling};

use baozhang_store::ledger::Batch;
use baozhang_store::Tx;

use super::envelope::{code_field, date_field, input_obj, refused, req_str, str_field, Envelope, NResult};
use crate::writer::ExecError;
use crate::AppState;

/// 2501 `input.refmedin`.
#[derive(Clone, Debug)]
pub struct FilingReq {
    pub psn_no: String,
    pub reflin_medins_no: String,
    pub reflin_medins_name: String,
    pub mdtrtarea_admdvs: String,
    pub refl_type: String,
    pub diag_code: String,
    pub refl_date: Date,
    pub begndate: Date,
    pub enddate: Option<Date>,
}

/// 2502 `input.data`.
#[derive(Clone, Debug)]
pub struct FilingCancel {
    pub trt_dcla_detl_sn: String,
    pub psn_no: String,
}

#[derive(Clone, Debug)]
pub enum FilingOp {
    Add(ReferralFiling),
    Cancel(FilingCancel),
}

fn bounded(s: String, max: usize, field: &str, at: &str) -> NResult<String> {
    if s.chars().count() > max {
        return Err(refused(format!("字段 {at}.{field} 超过 {max} 个字符")));
    }
    Ok(s)
}

pub fn parse_filing(env: &Envelope) -> NResult<FilingReq> {
    let (o, at) = input_obj(env, &["refmedin", "data"])?;
    let psn_no = bounded(req_str(o, "psn_no", &at)?, 30, "psn_no", &at)?;
    let reflin_medins_no = bounded(req_str(o, "reflin_medins_no", &at)?, 30, "reflin_medins_no", &at)?;
    let reflin_medins_name = bounded(str_field(o, "reflin_medins_name", &at)?.unwrap_or_default(), 200, "reflin_medins_name", &at)?;
    let mdtrtarea_admdvs = req_str(o, "mdtrtarea_admdvs", &at)?;
    if mdtrtarea_admdvs.len() != 6 || !mdtrtarea_admdvs.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(format!("字段 {at}.mdtrtarea_admdvs 应为 6 位就医地区划代码")));
    }
    let refl_type = bounded(
        code_field(o, "refl_type", &at)?.filter(|s| !s.is_empty()).ok_or_else(|| refused(format!("缺少字段 {at}.refl_type")))?,
        6,
        "refl_type",
        &at,
    )?;
    let diag_code = bounded(req_str(o, "diag_code", &at)?, 20, "diag_code", &at)?;
    let refl_date = date_field(o, "refl_date", &at)?.ok_or_else(|| refused(format!("缺少字段 {at}.refl_date")))?;
    let begndate = date_field(o, "begndate", &at)?.unwrap_or(refl_date);
    let enddate = date_field(o, "enddate", &at)?;
    if enddate.is_some_and(|e| e < begndate) {
        return Err(refused(format!("字段 {at}.enddate 早于开始日期 {begndate}")));
    }
    Ok(FilingReq { psn_no, reflin_medins_no, reflin_medins_name, mdtrtarea_admdvs, refl_type, diag_code, refl_date, begndate, enddate })
}

pub fn parse_cancel(env: &Envelope) -> NResult<FilingCancel> {
    let (o, at) = input_obj(env, &["data"])?;
    Ok(FilingCancel {
        trt_dcla_detl_sn: bounded(req_str(o, "trt_dcla_detl_sn", &at)?, 30, "trt_dcla_detl_sn", &at)?,
        psn_no: bounded(req_str(o, "psn_no", &at)?, 30, "psn_no", &at)?,
    })
}

/// Checks the declaring institution, the person and the target, and gives the filing to store:
/// - a referral is filed by the institution that treats the person: it must hold a visit of theirs. The
///   refusal is the same whether or not the 人员编号 exists, so the sequential number cannot be walked
///   (docs/SECURITY.md: a hospital never finds a person by 人员编号); the filing is in the access log;
/// - the person is insured in the year the filing begins;
/// - the target is not the declaring institution; a target registered here must lie in
///   `mdtrtarea_admdvs`, and a target in an area this platform covers must be registered (a designated
///   institution). A target outside the covered areas (another province's) is taken as declared.
pub async fn prepare(state: &AppState, env: &Envelope, r: FilingReq) -> NResult<FilingOp> {
    let not_treated = || refused("本机构没有该人员的就诊记录，不能办理转院备案（转院备案由接诊的定点医疗机构办理）");
    if !state.store.has_visit_at(&env.fixmedins_code, &r.psn_no).await? {
        return Err(not_treated());
    }
    let person = state.store.person_by_psn(&r.psn_no).await?.ok_or_else(not_treated)?;
    let year = i64::from(r.begndate.year());
    if !state.store.enrolments_of(&person.id_no).await?.iter().any(|e| e.year == year && e.insured) {
        return Err(refused(format!("该人员 {year} 年度未参保或已停保，不能办理转院备案")));
    }
    if r.reflin_medins_no == env.fixmedins_code {
        return Err(refused("转往机构不能是本机构"));
    }
    match state.store.institution(&r.reflin_medins_no).await? {
        Some(t) if !t.admdvs.starts_with(&r.mdtrtarea_admdvs) && !r.mdtrtarea_admdvs.starts_with(&t.admdvs) => {
            return Err(refused(format!(
                "就医地区划 {} 与转往机构 {} 的所在地 {} 不符（input.refmedin.mdtrtarea_admdvs）",
                r.mdtrtarea_admdvs, r.reflin_medins_no, t.admdvs
            )));
        }
        Some(_) => {}
        None if state.store.region(&r.mdtrtarea_admdvs).await?.is_some() => {
            return Err(refused(format!("转往机构 {} 不是本地登记的定点医疗机构（input.refmedin.reflin_medins_no）", r.reflin_medins_no)));
        }
        None => {}
    }
    let masked = baozhang_ingest::worklist::mask_id(&person.id_no);
    state
        .store
        .log_access(&env.fixmedins_code, "hospital", "national.2501", &masked, &format!("转院备案至 {}", r.reflin_medins_no))
        .await?;
    Ok(FilingOp::Add(ReferralFiling {
        // "RF" + 24 hex of the institution and its msgid: unique per message, 26 characters (the field is 30).
        trt_dcla_detl_sn: format!("RF{}", &crate::sha256_hex(format!("{}:{}", env.fixmedins_code, env.msgid).as_bytes())[..24]),
        psn_no: r.psn_no,
        fixmedins_code: env.fixmedins_code.clone(),
        reflin_medins_no: r.reflin_medins_no,
        mdtrtarea_admdvs: r.mdtrtarea_admdvs,
        refl_type: r.refl_type,
        diag_code: r.diag_code,
        begn_date: date_num(r.begndate),
        end_date: r.enddate.map(date_num),
        msgid: env.msgid.clone(),
    }))
}

/// Stores or revokes the filing inside the writer's transaction; the answer `result.trt_dcla_detl_sn`.
pub async fn execute(tx: &mut Tx<'_>, _batch: &mut Batch, fixmedins_code: &str, op: &FilingOp) -> Result<String, ExecError> {
    match op {
        FilingOp::Add(f) => {
            service::insert_referral_filing(tx, f).await?;
            Ok(json!({"result": {"trt_dcla_detl_sn": f.trt_dcla_detl_sn}}).to_string())
        }
        FilingOp::Cancel(c) => {
            if !service::revoke_referral_filing(tx, &c.trt_dcla_detl_sn, fixmedins_code, &c.psn_no).await? {
                return Err(ExecError::Refused(refused(format!("本机构没有该人员有效的转院备案 {}", c.trt_dcla_detl_sn))));
            }
            Ok(json!({}).to_string())
        }
    }
}
