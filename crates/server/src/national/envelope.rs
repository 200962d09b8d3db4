//! The envelope: the transaction codes, the request envelope read once at the edge, the response
//! envelope, refusals, and the field readers that name a bad field in Chinese.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use baozhang_core::{Date, Fen};
use baozhang_store::StoreError;
use serde_json::{Map, Value};

use crate::clock;

/// The transactions of the national interface that baozhang serves, matched exhaustively wherever a
/// transaction decides something (parsing, reads vs writes, docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Infno {
    SignIn,
    SignOut,
    PersonInfo,
    InstitutionInfo,
    CatalogueQuery,
    OutpatientRegister,
    OutpatientRegisterCancel,
    OutpatientVisitInfo,
    OutpatientFeeUpload,
    OutpatientFeeCancel,
    OutpatientPreSettle,
    OutpatientSettle,
    OutpatientSettleCancel,
    InpatientFeeUpload,
    InpatientFeeCancel,
    InpatientPreSettle,
    InpatientSettle,
    InpatientSettleCancel,
    Admission,
    Discharge,
    AdmissionChange,
    AdmissionCancel,
    DischargeCancel,
    ReferralFiling,
    ReferralFilingCancel,
    Reversal,
    TotalsStatement,
    DetailStatement,
    SettlementList,
    VisitQuery,
    SettlementQuery,
    FeeQuery,
    ChronicDrugQuery,
    FileUpload,
    FileDownload,
}

/// Where a transaction belongs (the module that serves it; docs/SERVICE.md's sections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Envelope,
    Person,
    Visits,
    Fees,
    Settlement,
    Reversal,
    Statements,
}

impl Infno {
    pub const ALL: [Infno; 35] = [
        Infno::SignIn,
        Infno::SignOut,
        Infno::PersonInfo,
        Infno::InstitutionInfo,
        Infno::CatalogueQuery,
        Infno::OutpatientRegister,
        Infno::OutpatientRegisterCancel,
        Infno::OutpatientVisitInfo,
        Infno::OutpatientFeeUpload,
        Infno::OutpatientFeeCancel,
        Infno::OutpatientPreSettle,
        Infno::OutpatientSettle,
        Infno::OutpatientSettleCancel,
        Infno::InpatientFeeUpload,
        Infno::InpatientFeeCancel,
        Infno::InpatientPreSettle,
        Infno::InpatientSettle,
        Infno::InpatientSettleCancel,
        Infno::Admission,
        Infno::Discharge,
        Infno::AdmissionChange,
        Infno::AdmissionCancel,
        Infno::DischargeCancel,
        Infno::ReferralFiling,
        Infno::ReferralFilingCancel,
        Infno::Reversal,
        Infno::TotalsStatement,
        Infno::DetailStatement,
        Infno::SettlementList,
        Infno::VisitQuery,
        Infno::SettlementQuery,
        Infno::FeeQuery,
        Infno::ChronicDrugQuery,
        Infno::FileUpload,
        Infno::FileDownload,
    ];

    /// The code as the envelope's `infno` carries it.
    pub fn code(self) -> &'static str {
        match self {
            Infno::SignIn => "9001",
            Infno::SignOut => "9002",
            Infno::PersonInfo => "1101",
            Infno::InstitutionInfo => "1201",
            Infno::CatalogueQuery => "1312",
            Infno::OutpatientRegister => "2201",
            Infno::OutpatientRegisterCancel => "2202",
            Infno::OutpatientVisitInfo => "2203",
            Infno::OutpatientFeeUpload => "2204",
            Infno::OutpatientFeeCancel => "2205",
            Infno::OutpatientPreSettle => "2206",
            Infno::OutpatientSettle => "2207",
            Infno::OutpatientSettleCancel => "2208",
            Infno::InpatientFeeUpload => "2301",
            Infno::InpatientFeeCancel => "2302",
            Infno::InpatientPreSettle => "2303",
            Infno::InpatientSettle => "2304",
            Infno::InpatientSettleCancel => "2305",
            Infno::Admission => "2401",
            Infno::Discharge => "2402",
            Infno::AdmissionChange => "2403",
            Infno::AdmissionCancel => "2404",
            Infno::DischargeCancel => "2405",
            Infno::ReferralFiling => "2501",
            Infno::ReferralFilingCancel => "2502",
            Infno::Reversal => "2601",
            Infno::TotalsStatement => "3201",
            Infno::DetailStatement => "3202",
            Infno::SettlementList => "4101A",
            Infno::VisitQuery => "5201",
            Infno::SettlementQuery => "5203",
            Infno::FeeQuery => "5204",
            Infno::ChronicDrugQuery => "5205",
            Infno::FileUpload => "9101",
            Infno::FileDownload => "9102",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Infno::SignIn => "签到",
            Infno::SignOut => "签退",
            Infno::PersonInfo => "人员信息获取",
            Infno::InstitutionInfo => "医药机构信息获取",
            Infno::CatalogueQuery => "医保目录信息查询",
            Infno::OutpatientRegister => "门诊挂号",
            Infno::OutpatientRegisterCancel => "门诊挂号撤销",
            Infno::OutpatientVisitInfo => "门诊就诊信息上传",
            Infno::OutpatientFeeUpload => "门诊费用明细上传",
            Infno::OutpatientFeeCancel => "门诊费用明细撤销",
            Infno::OutpatientPreSettle => "门诊预结算",
            Infno::OutpatientSettle => "门诊结算",
            Infno::OutpatientSettleCancel => "门诊结算撤销",
            Infno::InpatientFeeUpload => "住院费用明细上传",
            Infno::InpatientFeeCancel => "住院费用明细撤销",
            Infno::InpatientPreSettle => "住院预结算",
            Infno::InpatientSettle => "住院结算",
            Infno::InpatientSettleCancel => "住院结算撤销",
            Infno::Admission => "入院办理",
            Infno::Discharge => "出院办理",
            Infno::AdmissionChange => "住院信息变更",
            Infno::AdmissionCancel => "入院办理撤销",
            Infno::DischargeCancel => "出院撤销",
            Infno::ReferralFiling => "转院备案",
            Infno::ReferralFilingCancel => "撤销转院备案",
            Infno::Reversal => "冲正交易",
            Infno::TotalsStatement => "医药机构费用结算对总账",
            Infno::DetailStatement => "医药机构费用结算对明细账",
            Infno::SettlementList => "医疗保障基金结算清单信息上传",
            Infno::VisitQuery => "就诊信息查询",
            Infno::SettlementQuery => "结算信息查询",
            Infno::FeeQuery => "费用明细查询",
            Infno::ChronicDrugQuery => "人员慢特病用药记录查询",
            Infno::FileUpload => "文件上传",
            Infno::FileDownload => "文件下载",
        }
    }

    pub fn parse(code: &str) -> Option<Infno> {
        Infno::ALL.into_iter().find(|i| i.code().eq_ignore_ascii_case(code))
    }

    /// Whether the transaction changes state: it goes through the writer, its nonce and its answer are
    /// committed with its effect, and a repeated msgid is answered from `msg_log`.
    pub fn is_write(self) -> bool {
        match self {
            Infno::SignIn
            | Infno::SignOut
            | Infno::OutpatientRegister
            | Infno::OutpatientRegisterCancel
            | Infno::OutpatientVisitInfo
            | Infno::OutpatientFeeUpload
            | Infno::OutpatientFeeCancel
            | Infno::OutpatientSettle
            | Infno::OutpatientSettleCancel
            | Infno::InpatientFeeUpload
            | Infno::InpatientFeeCancel
            | Infno::InpatientSettle
            | Infno::InpatientSettleCancel
            | Infno::Admission
            | Infno::Discharge
            | Infno::AdmissionChange
            | Infno::AdmissionCancel
            | Infno::DischargeCancel
            | Infno::ReferralFiling
            | Infno::ReferralFilingCancel
            | Infno::Reversal
            | Infno::DetailStatement
            | Infno::SettlementList
            | Infno::FileUpload => true,
            Infno::PersonInfo
            | Infno::InstitutionInfo
            | Infno::CatalogueQuery
            | Infno::OutpatientPreSettle
            | Infno::InpatientPreSettle
            | Infno::TotalsStatement
            | Infno::VisitQuery
            | Infno::SettlementQuery
            | Infno::FeeQuery
            | Infno::ChronicDrugQuery
            | Infno::FileDownload => false,
        }
    }

    /// Whether the transaction is a hospital stay's (住院) rather than an outpatient visit's.
    pub fn inpatient(self) -> bool {
        matches!(
            self,
            Infno::InpatientFeeUpload
                | Infno::InpatientFeeCancel
                | Infno::InpatientPreSettle
                | Infno::InpatientSettle
                | Infno::InpatientSettleCancel
                | Infno::Admission
                | Infno::Discharge
                | Infno::AdmissionChange
                | Infno::AdmissionCancel
                | Infno::DischargeCancel
        )
    }

    pub fn area(self) -> Area {
        match self {
            Infno::SignIn | Infno::SignOut => Area::Envelope,
            Infno::PersonInfo | Infno::InstitutionInfo => Area::Person,
            Infno::OutpatientRegister
            | Infno::OutpatientRegisterCancel
            | Infno::OutpatientVisitInfo
            | Infno::Admission
            | Infno::Discharge
            | Infno::AdmissionChange
            | Infno::AdmissionCancel
            | Infno::DischargeCancel
            | Infno::ReferralFiling
            | Infno::ReferralFilingCancel
            | Infno::VisitQuery => Area::Visits,
            Infno::CatalogueQuery
            | Infno::OutpatientFeeUpload
            | Infno::OutpatientFeeCancel
            | Infno::InpatientFeeUpload
            | Infno::InpatientFeeCancel
            | Infno::FeeQuery
            | Infno::ChronicDrugQuery => Area::Fees,
            Infno::OutpatientPreSettle
            | Infno::OutpatientSettle
            | Infno::OutpatientSettleCancel
            | Infno::InpatientPreSettle
            | Infno::InpatientSettle
            | Infno::InpatientSettleCancel
            | Infno::SettlementQuery => Area::Settlement,
            Infno::Reversal => Area::Reversal,
            Infno::TotalsStatement | Infno::DetailStatement | Infno::SettlementList | Infno::FileUpload | Infno::FileDownload => {
                Area::Statements
            }
        }
    }
}

impl std::fmt::Display for Infno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal or failure, as the hospital sees it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NatError {
    /// The message is wrong or not allowed; `err_msg` says why.
    #[error("{0}")]
    Refused(String),
    /// Our fault (database down, …): the message may be retried with the same msgid.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for NatError {
    fn from(e: StoreError) -> NatError {
        tracing::error!(error = %e, "storage failed");
        NatError::Internal("系统暂时无法处理，请稍后用同一报文编号重试".to_string())
    }
}

pub fn refused(msg: impl Into<String>) -> NatError {
    NatError::Refused(msg.into())
}

pub type NResult<T> = Result<T, NatError>;

/// The parts of the request envelope the service uses.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub infno: Infno,
    pub msgid: String,
    pub fixmedins_code: String,
    pub insuplc_admdvs: String,
    pub mdtrtarea_admvs: String,
    pub sign_no: String,
    pub opter: String,
    pub input: Map<String, Value>,
}

/// What a response needs besides its output.
#[derive(Clone, Debug)]
pub struct RespondCtx {
    pub received_ms: i64,
    pub admdvs: String,
    /// A warning for the clerk carried by a successful answer (`warn_msg`).
    pub warn: Option<String>,
}

static REFMSG_SEQ: AtomicU64 = AtomicU64::new(0);

/// The national response envelope as text. `output` is JSON text.
pub fn respond_text(ctx: &RespondCtx, result: &Result<String, NatError>) -> String {
    let now = clock::unix_ms_now();
    let seq = REFMSG_SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    let area: String = ctx.admdvs.chars().filter(char::is_ascii_digit).take(6).collect();
    let refmsgid = format!("{area:0>6}{}{seq:06}", clock::compact(now));
    let (code, err, output) = match result {
        Ok(o) => (0, Value::Null, o.as_str()),
        Err(e) => (-1, Value::String(e.to_string()), "null"),
    };
    // warn_msg, cainfo and signtype are part of every national answer; clients read them (null when unused).
    let warn = match result {
        Ok(_) => ctx.warn.as_deref().map_or(Value::Null, |w| Value::String(w.to_string())),
        Err(_) => Value::Null,
    };
    format!(
        "{{\"infcode\":{code},\"inf_refmsgid\":{},\"refmsg_time\":{},\"respond_time\":{},\"err_msg\":{},\"warn_msg\":{warn},\"cainfo\":null,\"signtype\":null,\"output\":{output}}}",
        Value::String(refmsgid),
        Value::String(clock::compact(ctx.received_ms)),
        Value::String(clock::compact(now)),
        err
    )
}

/// A refusal before any envelope was read (limits of the edge): the national envelope, HTTP 200.
pub fn refusal_response(msg: &str) -> Response {
    let ctx = RespondCtx { received_ms: clock::unix_ms_now(), admdvs: String::new(), warn: None };
    json_response(respond_text(&ctx, &Err(refused(msg.to_string()))))
}

pub fn json_response(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], text).into_response()
}

pub fn parse_envelope(bytes: &[u8]) -> NResult<Envelope> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| refused(format!("报文不是有效的 JSON：第 {} 行第 {} 列附近有误", e.line(), e.column())))?;
    let Value::Object(obj) = v else {
        return Err(refused("报文应为 JSON 对象"));
    };
    let infno = code_field(&obj, "infno", "")?.ok_or_else(|| refused("缺少交易编号 infno"))?;
    if infno.is_empty() || infno.len() > 6 || !infno.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(refused(format!("交易编号 infno=“{}”应为交易编号（如 2304、4101A）", infno.chars().take(12).collect::<String>())));
    }
    let infno = Infno::parse(&infno).ok_or_else(|| {
        let known: Vec<&str> = Infno::ALL.iter().map(|i| i.code()).collect();
        refused(format!("不支持的交易编号 infno={infno}；本系统支持 {}", known.join("、")))
    })?;
    let msgid = str_field(&obj, "msgid", "")?.ok_or_else(|| refused("缺少报文编号 msgid"))?;
    if msgid.is_empty() || msgid.chars().count() > 30 || !msgid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(refused("报文编号 msgid 应为 1–30 位字母或数字（机构编号 + 时间 + 流水号）"));
    }
    let fixmedins_code = str_field(&obj, "fixmedins_code", "")?.ok_or_else(|| refused("缺少定点医药机构编号 fixmedins_code"))?;
    let input = match obj.get("input") {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(refused("字段 input 应为 JSON 对象")),
        None => return Err(refused("缺少交易输入 input")),
    };
    Ok(Envelope {
        infno,
        msgid,
        fixmedins_code,
        insuplc_admdvs: str_field(&obj, "insuplc_admdvs", "")?.unwrap_or_default(),
        mdtrtarea_admvs: str_field(&obj, "mdtrtarea_admvs", "")?.unwrap_or_default(),
        sign_no: str_field(&obj, "sign_no", "")?.unwrap_or_default(),
        opter: str_field(&obj, "opter", "")?.unwrap_or_default(),
        input,
    })
}

pub fn place(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A text field (null or absent = None).
pub fn str_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(refused(format!("字段 {} 应为字符串", place(parent, key)))),
    }
}

/// A code field: a string, or an integer written as a number (`"med_type": 21`).
pub fn code_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(refused(format!("字段 {} 应为代码字符串", place(parent, key)))),
    }
}

pub fn req_str(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<String> {
    match str_field(obj, key, parent)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(refused(format!("缺少字段 {}", place(parent, key)))),
    }
}

/// An amount in yuan: a JSON number or a numeric string with at most two decimals, never negative.
/// Parsed from its decimal text (serde_json keeps it, `arbitrary_precision`), never through a float.
pub fn amount_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<Fen>> {
    let text = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) => return Ok(None),
        Some(_) => return Err(refused(format!("字段 {} 应为金额（元）", place(parent, key)))),
    };
    let f = Fen::parse_yuan(&text).map_err(|e| refused(format!("字段 {}：{e}", place(parent, key))))?;
    if f.0 < 0 {
        return Err(refused(format!("字段 {} 为负数", place(parent, key))));
    }
    Ok(Some(f))
}

pub fn req_amount(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Fen> {
    amount_field(obj, key, parent)?.ok_or_else(|| refused(format!("缺少金额字段 {}", place(parent, key))))
}

/// `input.data` (or another named object of the input).
pub fn input_obj<'a>(env: &'a Envelope, names: &[&str]) -> NResult<(&'a Map<String, Value>, String)> {
    for n in names {
        match env.input.get(*n) {
            Some(Value::Object(m)) => return Ok((m, format!("input.{n}"))),
            Some(_) => return Err(refused(format!("字段 input.{n} 应为 JSON 对象"))),
            None => {}
        }
    }
    Err(refused(format!("缺少交易输入 input.{}", names[0])))
}

pub fn date_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<Date>> {
    match str_field(obj, key, parent)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => clock::parse_date_prefix(&s)
            .map(Some)
            .ok_or_else(|| refused(format!("字段 {}=“{s}”不是有效日期（yyyy-MM-dd HH:mm:ss）", place(parent, key)))),
    }
}

/// A flag `"1"`/`"0"` (or 1/0), with a default.
pub fn flag_field(obj: &Map<String, Value>, key: &str, parent: &str, default: bool) -> NResult<bool> {
    match code_field(obj, key, parent)?.as_deref() {
        None | Some("") => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(o) => Err(refused(format!("字段 {}=“{o}”应为 1 或 0", place(parent, key)))),
    }
}
