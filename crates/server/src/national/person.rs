//! The person and the institution: 1101 人员信息获取 and 1201 医药机构信息获取.

use baozhang_core::{Date, IdCardNo, Identity};
use baozhang_ingest::worklist::mask_id;
use baozhang_store::num_date;
use baozhang_store::service::{Institution, PersonRecord};
use serde_json::{json, Value};

use super::envelope::{code_field, input_obj, refused, req_str, str_field, Envelope, NResult};
use crate::{clock, AppState};

/// 1101 as read: the certificate presented.
#[derive(Clone, Debug)]
pub struct PersonQuery {
    pub cert_no: IdCardNo,
}

/// 1201 as read.
#[derive(Clone, Debug)]
pub struct InstitutionQuery {
    pub code: Option<String>,
    pub name: Option<String>,
}

pub fn parse_person(env: &Envelope) -> NResult<PersonQuery> {
    let (data, at) = input_obj(env, &["data"])?;
    let cert_type = code_field(data, "mdtrt_cert_type", &at)?.unwrap_or_else(|| "02".to_string());
    if cert_type != "02" {
        return Err(refused(format!("就诊凭证类型 mdtrt_cert_type=“{cert_type}”暂不支持；请使用 02（居民身份证）")));
    }
    // The certificate number: mdtrt_cert_no, or certno (psn_cert_type 01) as some clients send it.
    let cert_no = match str_field(data, "mdtrt_cert_no", &at)?.filter(|s| !s.is_empty()) {
        Some(c) => c,
        None => req_str(data, "certno", &at).map_err(|_| refused(format!("缺少字段 {at}.mdtrt_cert_no")))?,
    };
    let cert_no = IdCardNo::parse(&cert_no).map_err(|e| refused(format!("字段 {at}.mdtrt_cert_no：{e}")))?;
    Ok(PersonQuery { cert_no })
}

pub fn parse_institution_query(env: &Envelope) -> NResult<InstitutionQuery> {
    let (data, at) = input_obj(env, &["medinsinfo", "data"])?;
    Ok(InstitutionQuery {
        code: str_field(data, "fixmedins_code", &at)?.filter(|s| !s.is_empty()),
        name: str_field(data, "fixmedins_name", &at)?.filter(|s| !s.is_empty()),
    })
}

/// 1201: institutions by code or name (public information), at most 100.
pub async fn institution_info(state: &AppState, q: &InstitutionQuery) -> NResult<String> {
    if q.code.is_none() && q.name.is_none() {
        return Err(refused("请提供定点医药机构编号 fixmedins_code 或名称 fixmedins_name"));
    }
    let found = state.store.find_institutions(q.code.as_deref(), q.name.as_deref(), 100).await?;
    let rows: Vec<Value> = found
        .iter()
        .map(|i| {
            json!({
                "fixmedins_code": i.fixmedins_code,
                "fixmedins_name": i.name,
                "uscc": "",
                "fixmedins_type": "1",
                "hosp_lv": hosp_lv_code(i.hosp_lv),
                "admdvs": i.admdvs,
                "vali_flag": if i.disabled { "0" } else { "1" },
            })
        })
        .collect();
    Ok(json!({ "medinsinfo": rows }).to_string())
}

/// The national 医院等级 code of baozhang's three levels (三级 01 / 二级 04 / 一级 07 as the 甲等 of each).
pub fn hosp_lv_code(lv: i64) -> &'static str {
    match lv {
        3 => "01",
        2 => "04",
        _ => "07",
    }
}

/// 性别 as the national code list has it: 1 男, 2 女.
pub fn gend(p: &PersonRecord) -> &'static str {
    if p.sex == "女" || p.sex == "2" {
        "2"
    } else {
        "1"
    }
}

/// Age in whole years on a date.
pub fn age_on(birth: Date, on: Date) -> i64 {
    i64::from(on.year()) - i64::from(birth.year()) - i64::from((on.month(), on.day()) < (birth.month(), birth.day()))
}

/// Local code list for `psn_idet_type` (人员身份类别): the national dictionary leaves these to the
/// provinces; the names are what a window clerk reads.
pub fn idet_code(i: Identity) -> &'static str {
    match i {
        Identity::RegisteredPoor => "2201",
        Identity::ExitedPoor => "2202",
        Identity::Marginal => "2203",
        Identity::Dibao => "2301",
        Identity::ExtremePoor => "2302",
        Identity::SafetyNet => "2303",
        Identity::Disabled => "2401",
        Identity::IllnessPoor => "2204",
        Identity::DibaoEdge => "2304",
        Identity::ReturnedPoor => "2205",
    }
}

pub fn ymd(n: i64) -> String {
    num_date(n).map_or_else(String::new, |d| d.to_string())
}

pub async fn person_info(state: &AppState, env: &Envelope, inst: &Institution, q: &PersonQuery) -> NResult<String> {
    let id = &q.cert_no;
    let person = state.store.person(id.as_str()).await?.ok_or_else(|| refused("未查询到该身份证号的参保人员"))?;
    let enrolments = state.store.enrolments_of(&person.id_no).await?;
    let periods = state.store.identity_periods(&person.id_no).await?;
    // The clerk sees the person who presented the certificate: unmasked, and logged (PIPL).
    state
        .store
        .log_access(&format!("{}/{}", inst.fixmedins_code, env.opter), "hospital", "1101", &mask_id(&person.id_no), "凭证查询参保人员信息")
        .await?;
    let birth = num_date(person.birth_date);
    let age = birth.map_or(0, |b| age_on(b, clock::today()));
    let psn_no = person.psn_no.clone().or_else(|| enrolments.last().map(|e| e.psn_no.clone())).unwrap_or_default();
    let insuinfo: Vec<Value> = enrolments
        .iter()
        .map(|e| {
            json!({
                "balc": 0,
                "insutype": "390",
                "psn_type": "1501",
                "psn_insu_stas": if e.insured { "1" } else { "2" },
                "psn_insu_date": format!("{}-01-01", e.year),
                "paus_insu_date": if e.insured { Value::Null } else { Value::String(format!("{}-01-01", e.year)) },
                "cvlserv_flag": "0",
                "insuplc_admdvs": e.insured_admdvs,
                "emp_name": "",
                "insu_year": e.year,
                "psn_insu_stas_name": e.status,
            })
        })
        .collect();
    let idetinfo: Vec<Value> = periods
        .iter()
        .filter_map(|p| {
            let i = Identity::parse(&p.identity)?;
            Some(json!({
                "psn_idet_type": idet_code(i),
                "psn_type_lv": "",
                "memo": i.name_zh(),
                "begntime": format!("{} 00:00:00", ymd(p.start_date)),
                "endtime": p.end_date.map(|e| format!("{} 00:00:00", ymd(e))),
            }))
        })
        .collect();
    let out = json!({
        "baseinfo": {
            "psn_no": psn_no,
            "psn_cert_type": "01",
            "certno": person.id_no,
            "psn_name": person.name,
            "gend": gend(&person),
            "naty": "",
            "brdy": birth.map(|b| b.to_string()),
            "age": age,
            "exp_content": "",
        },
        "insuinfo": insuinfo,
        "idetinfo": idetinfo,
    });
    Ok(out.to_string())
}
