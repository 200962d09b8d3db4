//! The national interface (POLICY §6): `POST /fsi/api/<anything>` with the platform's envelope.
//!
//! Every answer is HTTP 200 with the national response envelope; failures are `infcode = -1` with a
//! Chinese `err_msg` (and an English line in the log, without names or ID numbers). Writes (9001, 2201,
//! 2401, 2301/2204, 2207/2304, 2208/2305) go through the [`crate::writer`]; their response is stored with
//! their effect, so a repeated `msgid` gets the original bytes back.
//!
//! Authentication: each request is signed by its institution — headers `x-tif-paasid` (the
//! `fixmedins_code`), `x-tif-timestamp` (unix seconds), `x-tif-nonce` and `x-tif-signature` =
//! hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body)). Every transaction except 9001 must
//! also carry a live `sign_no` of the same institution.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use baozhang_core::engine::{reverse, settle, within_bounds, Settlement};
use baozhang_core::money::div_round_half_away;
use baozhang_core::policy::Policy;
use baozhang_core::{Bill, Claim, Date, Fen, HospLevel, IdCardNo, Identity, IdentitySet, MedType};
use baozhang_ingest::output::{explanation_json, setldetail_json, setlinfo_json, SetlAmounts};
use baozhang_ingest::worklist::mask_id;
use baozhang_store::ledger::{self, Batch, SettlementHead, Totals};
use baozhang_store::service::{self, FeeLine, Institution, LoggedMsg, Mdtrt};
use baozhang_store::{date_num, num_date, Backend, StoreError, Tx};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};

use crate::clock;
use crate::writer::{ExecError, Job, WriteOp};
use crate::{sha256_hex, AppState, Policies};

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

fn refused(msg: impl Into<String>) -> NatError {
    NatError::Refused(msg.into())
}

type NResult<T> = Result<T, NatError>;

pub fn routes() -> Router<AppState> {
    Router::new().route("/fsi/api/{*path}", post(handle))
}

/// Transactions served, with their Chinese names (for errors and docs).
pub const TRANSACTIONS: [(&str, &str); 14] = [
    ("9001", "签到"),
    ("1101", "人员信息获取"),
    ("2201", "门诊挂号"),
    ("2401", "入院办理"),
    ("2204", "门诊费用明细上传"),
    ("2301", "住院费用明细上传"),
    ("2206", "门诊预结算"),
    ("2207", "门诊结算"),
    ("2208", "门诊结算撤销"),
    ("2303", "住院预结算"),
    ("2304", "住院结算"),
    ("2305", "住院结算撤销"),
    ("2202", "门诊挂号撤销（不支持）"),
    ("9002", "签退（不支持）"),
];

/// The parts of the request envelope the service uses.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub infno: String,
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
    format!(
        "{{\"infcode\":{code},\"inf_refmsgid\":{},\"refmsg_time\":{},\"respond_time\":{},\"err_msg\":{},\"output\":{output}}}",
        Value::String(refmsgid),
        Value::String(clock::compact(ctx.received_ms)),
        Value::String(clock::compact(now)),
        err
    )
}

/// A refusal before any envelope was read (limits of the edge): the national envelope, HTTP 200.
pub fn refusal_response(msg: &str) -> Response {
    let ctx = RespondCtx { received_ms: clock::unix_ms_now(), admdvs: String::new() };
    json_response(respond_text(&ctx, &Err(refused(msg.to_string()))))
}

fn json_response(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], text).into_response()
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let received_ms = clock::unix_ms_now();
    let mut ctx = RespondCtx { received_ms, admdvs: String::new() };
    let limit = state.config.max_body_bytes;
    let bytes = match crate::edge::read_bounded(body, limit, state.config.body_read_timeout).await {
        Ok(b) => b,
        Err(_) => {
            tracing::warn!(limit, "national request refused: body too large or unreadable");
            return json_response(respond_text(&ctx, &Err(refused(format!("报文过大或不完整（上限 {limit} 字节）")))));
        }
    };
    let env = match parse_envelope(&bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "national request refused: malformed envelope");
            return json_response(respond_text(&ctx, &Err(e)));
        }
    };
    ctx.admdvs = env.mdtrtarea_admvs.clone();
    let result = dispatch(&state, &headers, &bytes, &env, &ctx).await;
    match result {
        Outcome::Stored(text) => json_response(text),
        Outcome::Fresh(r) => {
            if let Err(e) = &r {
                tracing::info!(infno = %env.infno, msgid = %env.msgid, fixmedins = %env.fixmedins_code, error = %e, "national transaction refused");
            }
            json_response(respond_text(&ctx, &r))
        }
    }
}

enum Outcome {
    /// A complete stored or freshly committed response (writes).
    Stored(String),
    /// An output (or error) still to be wrapped (reads and refusals).
    Fresh(Result<String, NatError>),
}

async fn dispatch(state: &AppState, headers: &HeaderMap, body: &[u8], env: &Envelope, ctx: &RespondCtx) -> Outcome {
    let (inst, nonce) = match authenticate(state, headers, body, env).await {
        Ok(i) => i,
        Err(e) => return Outcome::Fresh(Err(e)),
    };
    run(state, env, &inst, ctx, Some(nonce)).await
}

/// A nonce to record durably with the request it signed (so that a replay is refused after a restart too).
#[derive(Clone, Debug)]
pub struct NonceUse {
    pub nonce: String,
    /// Until when it must be remembered (unix seconds: its timestamp's window end).
    pub until: i64,
}

/// The key of a message in `msg_log`: msgids are the institution's own numbering, so one institution's
/// msgid never answers (or blocks) another's.
pub fn msg_key(fixmedins_code: &str, msgid: &str) -> String {
    format!("{fixmedins_code}/{msgid}")
}

static INTERNAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A transaction on behalf of an institution's signed-in web user (the workbench's settlement window):
/// the same path as a signed national message after authentication — same checks, same writer, same
/// msg_log idempotency — with a fresh msgid. Returns the `output` object.
pub async fn internal(
    state: &AppState,
    inst: &Institution,
    infno: &str,
    opter: &str,
    insuplc_admdvs: &str,
    input: Map<String, Value>,
) -> NResult<Value> {
    // msgid ≤ 30: the institution code's last 10 characters + time to the millisecond (17) + a counter (3).
    let code: Vec<char> = inst.fixmedins_code.chars().filter(char::is_ascii_alphanumeric).collect();
    let code: String = code[code.len().saturating_sub(10)..].iter().collect();
    let now = clock::unix_ms_now();
    let seq = INTERNAL_SEQ.fetch_add(1, Ordering::Relaxed) % 1000;
    let env = Envelope {
        infno: infno.to_string(),
        msgid: format!("{code}{}{seq:03}", clock::compact(now)),
        fixmedins_code: inst.fixmedins_code.clone(),
        insuplc_admdvs: insuplc_admdvs.to_string(),
        mdtrtarea_admvs: inst.admdvs.clone(),
        sign_no: String::new(),
        opter: opter.to_string(),
        input,
    };
    let ctx = RespondCtx { received_ms: now, admdvs: inst.admdvs.clone() };
    let text = match run(state, &env, inst, &ctx, None).await {
        Outcome::Stored(t) => t,
        Outcome::Fresh(r) => respond_text(&ctx, &r),
    };
    let v: Value = serde_json::from_str(&text).map_err(|_| NatError::Internal("应答无法解析".into()))?;
    if v.get("infcode").and_then(Value::as_i64) == Some(0) {
        Ok(v.get("output").cloned().unwrap_or(Value::Null))
    } else {
        Err(refused(v.get("err_msg").and_then(Value::as_str).unwrap_or("交易失败").to_string()))
    }
}

async fn run(state: &AppState, env: &Envelope, inst: &Institution, ctx: &RespondCtx, nonce: Option<NonceUse>) -> Outcome {
    // infno + the canonical (key-sorted, compact) input: a retry with a new inf_time or sign_no is the same message.
    let input_text = serde_json::to_string(&env.input).expect("a JSON map serialises");
    let body_sha256 = sha256_hex(format!("{}\n{input_text}", env.infno).as_bytes());
    let is_write = matches!(env.infno.as_str(), "9001" | "2201" | "2401" | "2204" | "2301" | "2207" | "2304" | "2208" | "2305");
    // A read's nonce is committed before it is answered; a write's in the same transaction as its effect.
    let write_nonce = if is_write {
        nonce
    } else {
        if let Some(n) = nonce {
            if let Err(e) = record_nonce(state, env, ctx, n).await {
                return Outcome::Fresh(Err(e));
            }
        }
        None
    };
    let write = |op: WriteOp| write(state, env, ctx, &body_sha256, op, write_nonce.clone());
    let r = match env.infno.as_str() {
        "9001" => {
            let sign_no = crate::random_hex(16);
            let expires_at = clock::unix_now() + state.config.sign_in_ttl_secs;
            write(WriteOp::SignIn { sign_no, opter: env.opter.clone(), expires_at }).await
        }
        "1101" => Outcome::Fresh(person_info(state, env, inst).await),
        "2201" | "2401" => match prepare_register(state, env).await {
            Ok((m, dise)) => write(WriteOp::Register(Box::new(m), dise)).await,
            Err(e) => refused_unless_replay(state, env, &body_sha256, e).await,
        },
        "2204" | "2301" => match parse_fee_upload(env) {
            Ok((mdtrt_id, psn_no, lines)) => {
                write(WriteOp::FeeUpload { mdtrt_id, psn_no, lines, max_per_visit: state.config.max_fee_lines_per_visit }).await
            }
            Err(e) => refused_unless_replay(state, env, &body_sha256, e).await,
        },
        "2206" | "2303" => match prepare_settle(state, env, inst).await {
            Ok(p) => Outcome::Fresh(pre_settle(state, &p).await),
            Err(e) => Outcome::Fresh(Err(e)),
        },
        "2207" | "2304" => match prepare_settle(state, env, inst).await {
            Ok(p) => write(WriteOp::Settle(Box::new(p))).await,
            Err(e) => refused_unless_replay(state, env, &body_sha256, e).await,
        },
        "2208" | "2305" => match parse_cancel(env) {
            Ok((setl_id, mdtrt_id, psn_no)) => write(WriteOp::Cancel { setl_id, mdtrt_id, psn_no }).await,
            Err(e) => refused_unless_replay(state, env, &body_sha256, e).await,
        },
        other => {
            let known: Vec<&str> = TRANSACTIONS.iter().filter(|(_, n)| !n.contains("不支持")).map(|(c, _)| *c).collect();
            Outcome::Fresh(Err(refused(format!("不支持的交易编号 infno={other}；本系统支持 {}", known.join("、")))))
        }
    };
    r
}

/// A write refused while being prepared: if its msgid was answered before (the state has moved on since,
/// e.g. the visit it admitted is now settled), the stored answer is the answer; otherwise the refusal.
async fn refused_unless_replay(state: &AppState, env: &Envelope, body_sha256: &str, e: NatError) -> Outcome {
    match state.store.msg(&msg_key(&env.fixmedins_code, &env.msgid)).await {
        Ok(Some(m)) => Outcome::Fresh(replayed(&m, &env.fixmedins_code, &env.infno, &env.msgid, body_sha256)).into_stored(),
        Ok(None) => Outcome::Fresh(Err(e)),
        Err(se) => Outcome::Fresh(Err(se.into())),
    }
}

/// Submits a write and returns the committed (or stored) response text. A replayed msgid is answered
/// by the writer from `msg_log` (checked inside its transaction), so the common case of a new message
/// costs no extra look-up here.
async fn write(state: &AppState, env: &Envelope, ctx: &RespondCtx, body_sha256: &str, op: WriteOp, nonce: Option<NonceUse>) -> Outcome {
    // The institution's share of the writer's queue: a flood from one institution waits for its own
    // slots and delays others by at most its share.
    let Some(_slot) =
        state.cache.write_slot(&env.fixmedins_code, state.config.max_queued_writes_per_institution, state.config.queue_timeout).await
    else {
        return Outcome::Fresh(Err(refused("本机构同时提交的结算业务过多，请稍后重试")));
    };
    let job = Job {
        msgid: msg_key(&env.fixmedins_code, &env.msgid),
        nonce,
        fixmedins_code: env.fixmedins_code.clone(),
        infno: env.infno.clone(),
        opter: env.opter.clone(),
        body_sha256: body_sha256.to_string(),
        ctx: ctx.clone(),
        op,
    };
    match state.writer.submit(job).await {
        Ok(text) => Outcome::Stored(text),
        Err(e) => Outcome::Fresh(Err(e)),
    }
}

/// Commits a read's nonce through the writer (one row, grouped with the writes of the moment).
async fn record_nonce(state: &AppState, env: &Envelope, ctx: &RespondCtx, n: NonceUse) -> NResult<()> {
    let job = Job {
        msgid: String::new(),
        nonce: Some(n),
        fixmedins_code: env.fixmedins_code.clone(),
        infno: env.infno.clone(),
        opter: env.opter.clone(),
        body_sha256: String::new(),
        ctx: ctx.clone(),
        op: WriteOp::Nonce,
    };
    state.writer.submit(job).await.map(|_| ())
}

impl Outcome {
    /// A replay check gives either the stored text or a refusal.
    fn into_stored(self) -> Outcome {
        match self {
            Outcome::Fresh(Ok(text)) => Outcome::Stored(text),
            other => other,
        }
    }
}

/// The answer to a msgid seen before: the original bytes if it is the same message.
/// `fixmedins_code`, `infno`, `msgid` are the new message's.
pub fn replayed(m: &LoggedMsg, fixmedins_code: &str, infno: &str, msgid: &str, body_sha256: &str) -> Result<String, NatError> {
    if m.fixmedins_code != fixmedins_code || m.infno != infno || m.body_sha256 != body_sha256 {
        return Err(refused(format!("报文编号 msgid={msgid} 已被另一笔内容不同的报文使用，请使用新的报文编号")));
    }
    Ok(m.response.clone())
}

// ───────────────────────────── envelope and fields ─────────────────────────────

pub fn parse_envelope(bytes: &[u8]) -> NResult<Envelope> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| refused(format!("报文不是有效的 JSON：第 {} 行第 {} 列附近有误", e.line(), e.column())))?;
    let Value::Object(obj) = v else {
        return Err(refused("报文应为 JSON 对象"));
    };
    let infno = code_field(&obj, "infno", "")?.ok_or_else(|| refused("缺少交易编号 infno"))?;
    if infno.len() != 4 || !infno.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(format!("交易编号 infno=“{infno}”应为 4 位数字")));
    }
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

fn place(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A text field (null or absent = None).
fn str_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(refused(format!("字段 {} 应为字符串", place(parent, key)))),
    }
}

/// A code field: a string, or an integer written as a number (`"med_type": 21`).
fn code_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(refused(format!("字段 {} 应为代码字符串", place(parent, key)))),
    }
}

fn req_str(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<String> {
    match str_field(obj, key, parent)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(refused(format!("缺少字段 {}", place(parent, key)))),
    }
}

/// An amount in yuan: a JSON number or a numeric string with at most two decimals, never negative.
/// Parsed from its decimal text (serde_json keeps it, `arbitrary_precision`), never through a float.
fn amount_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<Fen>> {
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

fn req_amount(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Fen> {
    amount_field(obj, key, parent)?.ok_or_else(|| refused(format!("缺少金额字段 {}", place(parent, key))))
}

/// `input.data` (or another named object of the input).
fn input_obj<'a>(env: &'a Envelope, names: &[&str]) -> NResult<(&'a Map<String, Value>, String)> {
    for n in names {
        match env.input.get(*n) {
            Some(Value::Object(m)) => return Ok((m, format!("input.{n}"))),
            Some(_) => return Err(refused(format!("字段 input.{n} 应为 JSON 对象"))),
            None => {}
        }
    }
    Err(refused(format!("缺少交易输入 input.{}", names[0])))
}

fn date_field(obj: &Map<String, Value>, key: &str, parent: &str) -> NResult<Option<Date>> {
    match str_field(obj, key, parent)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => clock::parse_date_prefix(&s)
            .map(Some)
            .ok_or_else(|| refused(format!("字段 {}=“{s}”不是有效日期（yyyy-MM-dd HH:mm:ss）", place(parent, key)))),
    }
}

/// A flag `"1"`/`"0"` (or 1/0), with a default.
fn flag_field(obj: &Map<String, Value>, key: &str, parent: &str, default: bool) -> NResult<bool> {
    match code_field(obj, key, parent)?.as_deref() {
        None | Some("") => Ok(default),
        Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(o) => Err(refused(format!("字段 {}=“{o}”应为 1 或 0", place(parent, key)))),
    }
}

// ───────────────────────────── authentication ─────────────────────────────

/// Whether a nonce has a sane shape: 6–64 letters, digits, `-` or `_` (the gateway's are 6–32 letters
/// and digits; a UUID with its dashes fits too). Bounded so that nonces cannot fill memory or the table.
fn nonce_ok(n: &str) -> bool {
    (6..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8], env: &Envelope) -> NResult<(Institution, NonceUse)> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let (paasid, ts, nonce, sig) = (h("x-tif-paasid"), h("x-tif-timestamp"), h("x-tif-nonce"), h("x-tif-signature"));
    if paasid.is_empty() || ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return Err(refused("缺少机构签名（x-tif-paasid、x-tif-timestamp、x-tif-nonce、x-tif-signature）"));
    }
    if paasid != env.fixmedins_code {
        return Err(refused("签名机构与报文中的 fixmedins_code 不一致"));
    }
    let inst = state
        .cache
        .institution(&state.store, paasid)
        .await?
        .filter(|i| !i.disabled)
        .ok_or_else(|| refused(format!("定点医药机构 {paasid} 未登记或已停用")))?;
    let t: i64 = ts.parse().map_err(|_| refused("x-tif-timestamp 应为 Unix 秒数"))?;
    if (t - clock::unix_now()).abs() > state.config.signature_window_secs {
        return Err(refused("请求时间戳超出允许范围（请校准机构服务器时间）"));
    }
    if !signature_ok(&inst.secret, ts, nonce, body, sig) {
        tracing::warn!(fixmedins = %paasid, "national request with a bad signature");
        return Err(refused("机构签名无效"));
    }
    if !nonce_ok(nonce) {
        return Err(refused("请求随机数 x-tif-nonce 应为 6–64 位字母、数字、- 或 _"));
    }
    let until = t + state.config.signature_window_secs;
    match state.cache.fresh_nonce(paasid, nonce, until, clock::unix_now(), state.config.max_nonces_per_institution) {
        crate::NonceCheck::Fresh => {}
        crate::NonceCheck::Reused => {
            tracing::warn!(fixmedins = %paasid, "national request with a reused nonce refused");
            return Err(refused(NONCE_REUSED));
        }
        crate::NonceCheck::Flood => {
            tracing::warn!(fixmedins = %paasid, "national request refused: the institution's nonce quota is full");
            return Err(refused("本机构请求过于频繁（签名随机数超过限额），请稍后重试"));
        }
    }
    if env.infno != "9001" {
        let signed = state.cache.sign_in(&state.store, &env.sign_no, clock::unix_now()).await?;
        if signed.as_deref() != Some(inst.fixmedins_code.as_str()) {
            return Err(refused("签到编号 sign_no 无效或已过期，请先签到（9001）"));
        }
    }
    Ok((inst, NonceUse { nonce: nonce.to_string(), until }))
}

pub const NONCE_REUSED: &str = "请求随机数 x-tif-nonce 已使用过（疑似重放）；每次请求请使用新的随机数";

/// HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body), not yet finalised.
fn request_mac(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac
}

/// The request signature: lower-hex HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body).
pub fn sign(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    crate::hex(&request_mac(secret, timestamp, nonce, body).finalize().into_bytes())
}

/// Checks a signature in constant time.
fn signature_ok(secret: &str, timestamp: &str, nonce: &str, body: &[u8], sig: &str) -> bool {
    let Some(raw) = unhex(sig) else { return false };
    request_mac(secret, timestamp, nonce, body).verify_slice(&raw).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

// ───────────────────────────── 1101 person info ─────────────────────────────

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
    }
}

fn ymd(n: i64) -> String {
    num_date(n).map_or_else(String::new, |d| d.to_string())
}

async fn person_info(state: &AppState, env: &Envelope, inst: &Institution) -> NResult<String> {
    let (data, at) = input_obj(env, &["data"])?;
    let cert_type = code_field(data, "mdtrt_cert_type", &at)?.unwrap_or_else(|| "02".to_string());
    if cert_type != "02" {
        return Err(refused(format!("就诊凭证类型 mdtrt_cert_type=“{cert_type}”暂不支持；请使用 02（居民身份证）")));
    }
    let cert_no = req_str(data, "mdtrt_cert_no", &at)?;
    let id = IdCardNo::parse(&cert_no).map_err(|e| refused(format!("字段 {at}.mdtrt_cert_no：{e}")))?;
    let person = state.store.person(id.as_str()).await?.ok_or_else(|| refused("未查询到该身份证号的参保人员"))?;
    let enrolments = state.store.enrolments_of(&person.id_no).await?;
    let periods = state.store.identity_periods(&person.id_no).await?;
    // The clerk sees the person who presented the certificate: unmasked, and logged (PIPL).
    state
        .store
        .log_access(&format!("{}/{}", inst.fixmedins_code, env.opter), "hospital", "1101", &mask_id(&person.id_no), "凭证查询参保人员信息")
        .await?;
    let birth = num_date(person.birth_date);
    let age = birth.map_or(0, |b| {
        let today = Date::from_days(((clock::unix_now() + 8 * 3600) / 86_400) as i32);
        i64::from(today.year()) - i64::from(b.year()) - i64::from((today.month(), today.day()) < (b.month(), b.day()))
    });
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
            "gend": if person.sex == "女" || person.sex == "2" { "2" } else { "1" },
            "naty": "",
            "brdy": birth.map(|b| b.to_string()),
            "age": age,
        },
        "insuinfo": insuinfo,
        "idetinfo": idetinfo,
    });
    Ok(out.to_string())
}

// ───────────────────────────── 2201 / 2401 registration ─────────────────────────────

/// The main diagnosis of an admission: `dise_codg` (2201) or `dscg_maindiag_code` / `adm_diag_code`
/// (2401), with its name; checked to look like ICD-10.
fn diagnosis_of(data: &Map<String, Value>, at: &str) -> NResult<Option<(String, Option<String>)>> {
    for (code_key, name_key) in
        [("dise_codg", "dise_name"), ("dscg_maindiag_code", "dscg_maindiag_name"), ("adm_diag_code", "adm_diag_name")]
    {
        if let Some(code) = str_field(data, code_key, at)?.map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()) {
            if !baozhang_core::programmes::valid_icd(&code) {
                return Err(refused(format!("字段 {at}.{code_key}：诊断编码“{code}”不是 ICD-10 编码")));
            }
            let name = str_field(data, name_key, at)?.map(|n| n.chars().take(100).collect::<String>()).filter(|n| !n.is_empty());
            return Ok(Some((code, name)));
        }
    }
    Ok(None)
}

async fn prepare_register(state: &AppState, env: &Envelope) -> NResult<(Mdtrt, Option<(String, Option<String>)>)> {
    let inpatient = env.infno == "2401";
    let (data, at) = if inpatient { input_obj(env, &["mdtrtinfo", "data"])? } else { input_obj(env, &["data"])? };
    let psn_no = req_str(data, "psn_no", &at)?;
    let cert_no = req_str(data, "mdtrt_cert_no", &at)?;
    let begn = date_field(data, "begntime", &at)?.ok_or_else(|| refused(format!("缺少字段 {at}.begntime")))?;
    let default_type = if inpatient { "21" } else { "14" };
    let med_type = code_field(data, "med_type", &at)?.unwrap_or_else(|| default_type.to_string());
    let mt = MedType::parse(&med_type).map_err(|e| refused(format!("字段 {at}.med_type：{e}")))?;
    if (mt == MedType::Inpatient) != inpatient {
        return Err(refused(if inpatient {
            "入院办理（2401）的医疗类别应为 21 住院"
        } else {
            "门诊挂号（2201）的医疗类别应为 14 门诊慢特病"
        }));
    }
    let admdvs = insured_area(env)?;
    let person = state.store.person_by_psn(&psn_no).await?.ok_or_else(|| refused(format!("人员编号 {psn_no} 不存在")))?;
    if person.id_no != cert_no.to_ascii_uppercase() {
        return Err(refused("就诊凭证号码与人员编号不符：只能为出示证件的本人办理"));
    }
    let year = i64::from(begn.year());
    let insured = state.store.enrolments_of(&person.id_no).await?.iter().any(|e| e.year == year && e.insured);
    if !insured {
        return Err(refused(format!("该人员 {year} 年度未参保或已停保，不能按医保办理就诊")));
    }
    let diagnosis = diagnosis_of(data, &at)?;
    let m = Mdtrt {
        mdtrt_id: mdtrt_id_of(&env.fixmedins_code, &env.msgid),
        psn_no,
        id_no: person.id_no,
        fixmedins_code: env.fixmedins_code.clone(),
        med_type: i64::from(mt.code()),
        begn_date: date_num(begn),
        insuplc_admdvs: admdvs,
        referral_ok: flag_field(data, "refl_flag", &at, true)?,
        major_disease: flag_field(data, "major_dise_flag", &at, false)?,
        status: "open".to_string(),
        setl_id: None,
    };
    Ok((m, diagnosis))
}

/// The visit number a registration gets: "MD" + 6 hex of the institution + its msgid (msgids are each
/// institution's own numbering, so the institution part keeps two institutions' visits apart).
pub fn mdtrt_id_of(fixmedins_code: &str, msgid: &str) -> String {
    format!("MD{}{msgid}", &sha256_hex(fixmedins_code.as_bytes())[..6])
}

fn insured_area(env: &Envelope) -> NResult<String> {
    let a = env.insuplc_admdvs.trim();
    if a.len() != 6 || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused("参保地医保区划 insuplc_admdvs 应为 6 位区划代码"));
    }
    Ok(a.to_string())
}

// ───────────────────────────── 2301 / 2204 fee upload ─────────────────────────────

/// A self-pay proportion like `0.1` or `"0.15"` in basis points (at most 4 decimals, at most 1).
fn prop_bp(v: &Value) -> Option<i64> {
    let t = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let (i, f) = t.split_once('.').unwrap_or((&t, ""));
    if i.is_empty() || f.len() > 4 || !i.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bp = i.parse::<i64>().ok()? * 10_000 + format!("{f:0<4}").parse::<i64>().ok()?;
    (bp <= 10_000).then_some(bp)
}

pub const MAX_FEE_LINES: usize = 5_000;

fn parse_fee_upload(env: &Envelope) -> NResult<(String, String, Vec<FeeLine>)> {
    let lines = match env.input.get("feedetail") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(refused("字段 input.feedetail 应为数组")),
        None => return Err(refused("缺少费用明细 input.feedetail")),
    };
    if lines.is_empty() {
        return Err(refused("费用明细 input.feedetail 为空"));
    }
    if lines.len() > MAX_FEE_LINES {
        return Err(refused(format!("一次最多上传 {MAX_FEE_LINES} 条费用明细，请分批上传")));
    }
    let mut mdtrt_id = String::new();
    let mut psn_no = String::new();
    let mut out = Vec::with_capacity(lines.len());
    let mut seen = std::collections::HashSet::new();
    for (k, line) in lines.iter().enumerate() {
        let at = format!("input.feedetail[{k}]");
        let Value::Object(o) = line else { return Err(refused(format!("{at} 应为 JSON 对象"))) };
        let sn = req_str(o, "feedetl_sn", &at)?;
        if !seen.insert(sn.clone()) {
            return Err(refused(format!("{at}：明细流水号 {sn} 在本次上传中重复")));
        }
        let m = req_str(o, "mdtrt_id", &at)?;
        let p = req_str(o, "psn_no", &at)?;
        if k == 0 {
            mdtrt_id = m;
            psn_no = p;
        } else if m != mdtrt_id || p != psn_no {
            return Err(refused(format!("{at}：一次上传的明细应属于同一就诊（mdtrt_id、psn_no 相同）")));
        }
        let total = req_amount(o, "det_item_fee_sumamt", &at)?;
        let parts = ["fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"];
        let given: Vec<Option<Fen>> = parts.iter().map(|p| amount_field(o, p, &at)).collect::<NResult<_>>()?;
        let (ful, over, pre, inscp) = if given.iter().any(Option::is_some) {
            let v: Vec<Fen> = given.iter().map(|x| x.unwrap_or(Fen::ZERO)).collect();
            (v[0], v[1], v[2], v[3])
        } else {
            // "01", or 1 written as a number.
            let numeric = matches!(o.get("chrgitm_lv"), Some(Value::Number(_)));
            let lv = code_field(o, "chrgitm_lv", &at)?.map(|c| if numeric && c.len() == 1 { format!("0{c}") } else { c });
            match lv.as_deref() {
                Some("01") => (Fen::ZERO, Fen::ZERO, Fen::ZERO, total),
                Some("03") => (total, Fen::ZERO, Fen::ZERO, Fen::ZERO),
                Some("02") => {
                    let bp = o
                        .get("selfpay_prop")
                        .and_then(prop_bp)
                        .ok_or_else(|| refused(format!("{at}：乙类项目（chrgitm_lv=02）需要先行自付比例 selfpay_prop（0–1，最多 4 位小数）")))?;
                    let pre = Fen(div_round_half_away(total.0 * bp, 10_000));
                    (Fen::ZERO, Fen::ZERO, pre, total - pre)
                }
                Some(other) => return Err(refused(format!("{at}：收费项目等级 chrgitm_lv=“{other}”无效（01 甲类、02 乙类、03 丙类）"))),
                None => {
                    return Err(refused(format!(
                        "{at}：缺少费用分类——请提供 fulamt_ownpay_amt、overlmt_amt、preselfpay_amt、inscp_scp_amt 四项金额，或收费项目等级 chrgitm_lv"
                    )))
                }
            }
        };
        Bill::new(total, ful, over, pre, inscp).map_err(|e| refused(format!("{at}：{e}")))?;
        out.push(FeeLine {
            feedetl_sn: sn,
            det_item_fee_sumamt: total.0,
            fulamt_ownpay_amt: ful.0,
            overlmt_selfpay: over.0,
            preselfpay_amt: pre.0,
            inscp_scp_amt: inscp.0,
            med_list_codg: str_field(o, "med_list_codg", &at)?,
        });
    }
    Ok((mdtrt_id, psn_no, out))
}

fn fee_result_json(lines: &[FeeLine]) -> String {
    let mut o = String::from("{\"result\":[");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&format!(
            "{{\"feedetl_sn\":{},\"det_item_fee_sumamt\":{},\"fulamt_ownpay_amt\":{},\"overlmt_amt\":{},\"preselfpay_amt\":{},\"inscp_scp_amt\":{},\"chrgitm_lv\":{}}}",
            Value::String(l.feedetl_sn.clone()),
            Fen(l.det_item_fee_sumamt),
            Fen(l.fulamt_ownpay_amt),
            Fen(l.overlmt_selfpay),
            Fen(l.preselfpay_amt),
            Fen(l.inscp_scp_amt),
            Value::String(
                if l.inscp_scp_amt == l.det_item_fee_sumamt {
                    "01"
                } else if l.fulamt_ownpay_amt == l.det_item_fee_sumamt {
                    "03"
                } else {
                    "02"
                }
                .to_string()
            ),
        ));
    }
    o.push_str("]}");
    o
}

// ───────────────────────────── settlement ─────────────────────────────

/// Everything a settlement needs that does not change under it (read before it is queued).
#[derive(Clone, Debug)]
pub struct PreparedSettle {
    pub mdtrt: Mdtrt,
    pub psn_no: String,
    pub village_code: Option<String>,
    pub institution: Institution,
    pub setl_date: Date,
    pub identities: IdentitySet,
    pub policy_version: String,
    /// The four parts the message states (checked against the uploaded fee lines, or used when none).
    pub stated_total: Fen,
    pub stated_parts: Option<[Fen; 4]>,
}

async fn prepare_settle(state: &AppState, env: &Envelope, inst: &Institution) -> NResult<PreparedSettle> {
    let (data, at) = input_obj(env, &["data", "mdtrtinfo"])?;
    let mdtrt_id = req_str(data, "mdtrt_id", &at)?;
    let psn_no = req_str(data, "psn_no", &at)?;
    let (mdtrt, person) =
        state.store.mdtrt_with_person(&mdtrt_id).await?.ok_or_else(|| refused(format!("就诊 {mdtrt_id} 不存在，请先办理挂号或入院")))?;
    check_own_visit(&mdtrt, env, &psn_no)?;
    if let Some(cert) = str_field(data, "mdtrt_cert_no", &at)? {
        if !cert.is_empty() && cert.to_ascii_uppercase() != mdtrt.id_no {
            return Err(refused("就诊凭证号码与就诊人员不符"));
        }
    }
    let inpatient = matches!(env.infno.as_str(), "2303" | "2304");
    if (mdtrt.med_type == 21) != inpatient {
        return Err(refused(if inpatient {
            "该就诊为门诊，请使用门诊结算交易（2206/2207）"
        } else {
            "该就诊为住院，请使用住院结算交易（2303/2304）"
        }));
    }
    let stated_total = req_amount(data, "medfee_sumamt", &at)?;
    let parts = [
        amount_field(data, "fulamt_ownpay_amt", &at)?,
        amount_field(data, "overlmt_selfpay", &at)?,
        amount_field(data, "preselfpay_amt", &at)?,
        amount_field(data, "inscp_scp_amt", &at)?,
    ];
    let stated_parts = if parts.iter().any(Option::is_some) { Some(parts.map(|p| p.unwrap_or(Fen::ZERO))) } else { None };
    let begn = num_date(mdtrt.begn_date).ok_or_else(|| NatError::Internal("就诊日期数据有误".into()))?;
    let setl_date = match date_field(data, "dscg_time", &at)?.or(date_field(data, "setl_time", &at)?) {
        Some(d) if d < begn => return Err(refused("出院（结算）日期早于就诊开始日期")),
        Some(d) => d,
        None => begn,
    };
    if setl_date.year() != begn.year() && !inpatient {
        return Err(refused("门诊结算日期应与挂号在同一年度"));
    }
    let (village_code, periods) = person.ok_or_else(|| refused("就诊人员已不在人员库中"))?;
    let d = date_num(setl_date);
    let mut ids = IdentitySet::EMPTY;
    for p in &periods {
        if p.start_date <= d && p.end_date.is_none_or(|e| e > d) {
            if let Some(i) = Identity::parse(&p.identity) {
                ids = ids.with(i);
            }
        }
    }
    let policy = state
        .policies
        .for_area(&mdtrt.insuplc_admdvs, setl_date)
        .ok_or_else(|| refused(format!("参保地 {} 在 {setl_date} 没有生效的结算政策，请联系医保局配置", mdtrt.insuplc_admdvs)))?;
    Ok(PreparedSettle {
        psn_no: mdtrt.psn_no.clone(),
        village_code,
        mdtrt,
        institution: inst.clone(),
        setl_date,
        identities: ids,
        policy_version: policy.version.clone(),
        stated_total,
        stated_parts,
    })
}

fn check_own_visit(m: &Mdtrt, env: &Envelope, psn_no: &str) -> NResult<()> {
    if m.fixmedins_code != env.fixmedins_code {
        return Err(refused("该就诊不属于本机构，无权查看或结算"));
    }
    if m.psn_no != psn_no {
        return Err(refused("人员编号与就诊记录不符"));
    }
    Ok(())
}

/// The bill: the sum of the uploaded fee lines (checked against what the message states), or, when
/// nothing was uploaded, the four parts the message states.
fn bill_for(p: &PreparedSettle, lines: &[FeeLine]) -> NResult<Bill> {
    if lines.is_empty() {
        let Some([ful, over, pre, inscp]) = p.stated_parts else {
            return Err(refused("该就诊没有上传费用明细（2301/2204），结算报文也未给出费用四项金额"));
        };
        return Bill::new(p.stated_total, ful, over, pre, inscp).map_err(|e| refused(e.to_string()));
    }
    let sum = |f: fn(&FeeLine) -> i64| Fen(lines.iter().map(f).sum());
    let bill = Bill::new(
        sum(|l| l.det_item_fee_sumamt),
        sum(|l| l.fulamt_ownpay_amt),
        sum(|l| l.overlmt_selfpay),
        sum(|l| l.preselfpay_amt),
        sum(|l| l.inscp_scp_amt),
    )
    .map_err(|e| refused(e.to_string()))?;
    if bill.total() != p.stated_total {
        return Err(refused(format!(
            "结算报文的医疗费总额 {} 元与已上传的 {} 条费用明细合计 {} 元不符",
            p.stated_total,
            lines.len(),
            bill.total()
        )));
    }
    if let Some([ful, over, pre, inscp]) = p.stated_parts {
        if [ful, over, pre, inscp] != [bill.fulamt_ownpay(), bill.overlmt_selfpay(), bill.preselfpay(), bill.compliant()] {
            return Err(refused("结算报文的费用四项与已上传的费用明细合计不符"));
        }
    }
    Ok(bill)
}

fn claim_for(p: &PreparedSettle, bill: Bill) -> NResult<Claim> {
    let med_type = MedType::from_code(p.mdtrt.med_type as u16).ok_or_else(|| NatError::Internal("就诊医疗类别数据有误".into()))?;
    let hosp_lv = HospLevel::new(p.institution.hosp_lv as u8).ok_or_else(|| refused("本机构的医院等级未正确登记，请联系医保局"))?;
    Ok(Claim {
        setl_date: p.setl_date,
        med_type,
        hosp_lv,
        in_county: p.institution.admdvs == p.mdtrt.insuplc_admdvs,
        referral_ok: p.mdtrt.referral_ok,
        major_disease: p.mdtrt.major_disease,
        bill,
    })
}

fn policy_of<'a>(policies: &'a Policies, p: &PreparedSettle) -> NResult<&'a Policy> {
    policies.by_version(&p.policy_version).ok_or_else(|| NatError::Internal("结算政策已变更，请重试".into()))
}

fn settlement_output(mdtrt_id: &str, setl_id: &str, psn_no: &str, a: &SetlAmounts, explanation: Option<&str>) -> String {
    let mut o = format!("{{\"setlinfo\":{},\"setldetail\":{}", setlinfo_json(mdtrt_id, setl_id, psn_no, a), setldetail_json(a));
    if let Some(e) = explanation {
        o.push_str(",\"explanation\":");
        o.push_str(e);
    }
    o.push('}');
    o
}

async fn pre_settle(state: &AppState, p: &PreparedSettle) -> NResult<String> {
    if p.mdtrt.status != "open" {
        // Its own settlement is already in the accumulators: a computation now would be a second one.
        return Err(refused(format!(
            "就诊 {} 已结算（结算编号 {}），不能预结算；如需重新结算请先撤销",
            p.mdtrt.mdtrt_id,
            p.mdtrt.setl_id.as_deref().unwrap_or("-")
        )));
    }
    let mut c = state.store.pool().acquire().await.map_err(StoreError::from)?;
    let lines = service::fee_lines(&mut c, &p.mdtrt.mdtrt_id).await?;
    drop(c);
    let bill = bill_for(p, &lines)?;
    let claim = claim_for(p, bill)?;
    let policy = policy_of(&state.policies, p)?;
    let acc = ledger::read_accumulators(&state.store, &p.psn_no, claim.year()).await?;
    if !acc.policy_id.is_empty() && acc.policy_id != policy.meta.id {
        return Err(policy_mismatch(&acc.policy_id, policy));
    }
    if !within_bounds(&claim, &acc.acc) {
        return Err(beyond_bounds());
    }
    let (s, _) = settle(policy, &claim, p.identities, &acc.acc);
    let a = SetlAmounts::of(&s, &bill);
    Ok(settlement_output(&p.mdtrt.mdtrt_id, "", &p.psn_no, &a, Some(&explanation_json(policy, &s))))
}

fn beyond_bounds() -> NatError {
    refused(format!(
        "该人员本年度累计医疗费用将超过系统上限（{} 元），不能按一站式结算办理；请联系医保经办机构核查",
        Fen(baozhang_core::engine::MAX_ANNUAL_FEN).grouped()
    ))
}

fn policy_mismatch(had: &str, policy: &Policy) -> NatError {
    refused(format!("该人员本年度已按政策 {had} 结算，与本次适用的政策 {} 不同；请由医保局做年度重算", policy.meta.id))
}

// ───────────────────────────── writes (run by the writer, inside its transaction) ─────────────────────────────

/// A message answered before: earlier in this batch, or committed.
async fn msg_seen(tx: &mut Tx<'_>, batch: &Batch, msgid: &str) -> Result<Option<LoggedMsg>, StoreError> {
    if let Some(m) = batch.msg(msgid) {
        return Ok(Some(m.clone()));
    }
    if batch.prefetched() {
        return Ok(None);
    }
    service::msg_lookup(tx, msgid).await
}

/// [`msg_seen`] that always asks the database (another process may have committed it since the prefetch).
async fn msg_seen_now(tx: &mut Tx<'_>, batch: &Batch, msgid: &str) -> Result<Option<LoggedMsg>, StoreError> {
    if let Some(m) = batch.msg(msgid) {
        return Ok(Some(m.clone()));
    }
    service::msg_lookup(tx, msgid).await
}

/// Runs one write job inside `tx` and returns the full response text, which is stored with it.
pub async fn execute(tx: &mut Tx<'_>, batch: &mut Batch, backend: Backend, policies: &Policies, job: &Job) -> Result<String, ExecError> {
    // The nonce first: a request replayed with its captured signature is refused even after a restart.
    if let Some(n) = &job.nonce {
        if !batch.use_nonce(&job.fixmedins_code, &n.nonce, n.until) {
            tracing::warn!(fixmedins = %job.fixmedins_code, "national request with a reused nonce refused (stored)");
            return Err(ExecError::Refused(refused(NONCE_REUSED)));
        }
    }
    if matches!(job.op, WriteOp::Nonce) {
        return Ok(String::new());
    }
    if let Some(m) = msg_seen(tx, batch, &job.msgid).await? {
        return replayed(&m, &job.fixmedins_code, &job.infno, &job.msgid, &job.body_sha256).map_err(ExecError::Refused);
    }
    match execute_op(tx, batch, backend, policies, job).await {
        Err(ExecError::Refused(e)) => {
            // Another writer (a second process on the same PostgreSQL database) may have committed this very
            // message while we waited for a row lock: our earlier reads were then stale and the refusal is an
            // artefact of the race (e.g. "已被结算" for the message that settled it). Its stored response is the
            // answer: roll the batch back and retry it, and the retry replays that response.
            if msg_seen_now(tx, batch, &job.msgid).await?.is_some() {
                tracing::info!(msgid = %job.msgid, "message committed concurrently by another writer; retrying to replay it");
                let raced = std::io::Error::new(std::io::ErrorKind::Interrupted, "message committed concurrently by another writer");
                return Err(ExecError::Db(StoreError::Db(sqlx::Error::Io(raced))));
            }
            Err(ExecError::Refused(e))
        }
        other => other,
    }
}

/// [`execute`] for a message not seen before.
async fn execute_op(tx: &mut Tx<'_>, batch: &mut Batch, backend: Backend, policies: &Policies, job: &Job) -> Result<String, ExecError> {
    let output = match &job.op {
        WriteOp::SignIn { sign_no, opter, expires_at } => {
            service::insert_sign_in(tx, sign_no, &job.fixmedins_code, opter, *expires_at).await?;
            json!({"signinoutb": {"sign_time": clock::readable(job.ctx.received_ms), "sign_no": sign_no}}).to_string()
        }
        WriteOp::Register(m, diagnosis) => {
            if !service::insert_mdtrt(tx, m).await? {
                return Err(ExecError::Refused(refused(format!("就诊编号 {} 已存在", m.mdtrt_id))));
            }
            if let Some((code, name)) = diagnosis {
                baozhang_store::programmes::insert_diagnosis(tx, &m.mdtrt_id, code, name.as_deref(), "national").await?;
            }
            json!({"data": {"mdtrt_id": m.mdtrt_id, "psn_no": m.psn_no, "ipt_otp_no": ""}}).to_string()
        }
        WriteOp::Nonce => return Ok(String::new()),
        WriteOp::FeeUpload { mdtrt_id, psn_no, lines, max_per_visit } => {
            let mut m =
                service::mdtrt(tx, mdtrt_id).await?.ok_or_else(|| refused(format!("就诊 {mdtrt_id} 不存在，请先办理挂号或入院")))?;
            if let Some((st, _)) = batch.pending_status(mdtrt_id) {
                m.status = st.to_string();
            }
            if m.fixmedins_code != job.fixmedins_code {
                return Err(refused("该就诊不属于本机构，不能上传费用").into());
            }
            if &m.psn_no != psn_no {
                return Err(refused("人员编号与就诊记录不符").into());
            }
            if m.status != "open" {
                return Err(refused(format!("就诊 {mdtrt_id} 已结算，不能再上传费用；如需更正请先撤销结算")).into());
            }
            let existing = service::fee_lines(tx, mdtrt_id).await?;
            let by_sn: std::collections::HashMap<&str, &FeeLine> = existing.iter().map(|e| (e.feedetl_sn.as_str(), e)).collect();
            let mut fresh = Vec::new();
            for l in lines {
                match by_sn.get(l.feedetl_sn.as_str()) {
                    Some(e)
                        if e.det_item_fee_sumamt == l.det_item_fee_sumamt
                            && e.inscp_scp_amt == l.inscp_scp_amt
                            && e.fulamt_ownpay_amt == l.fulamt_ownpay_amt
                            && e.preselfpay_amt == l.preselfpay_amt => {}
                    Some(_) => return Err(refused(format!("明细流水号 {} 已上传且金额不同；已上传的明细不能修改", l.feedetl_sn)).into()),
                    None => fresh.push(l.clone()),
                }
            }
            if existing.len() + fresh.len() > *max_per_visit {
                return Err(refused(format!(
                    "一次就诊最多 {max_per_visit} 条费用明细（已上传 {} 条，本次新增 {} 条）；请按项目汇总后上传",
                    existing.len(),
                    fresh.len()
                ))
                .into());
            }
            service::insert_fee_lines(tx, mdtrt_id, &fresh).await?;
            batch.forget_visit(mdtrt_id);
            fee_result_json(lines)
        }
        WriteOp::Settle(p) => settle_in_tx(tx, batch, backend, policies, job, p).await?,
        WriteOp::Cancel { setl_id, mdtrt_id, psn_no } => cancel_in_tx(tx, batch, backend, policies, job, setl_id, mdtrt_id, psn_no).await?,
        WriteOp::Resettle { run, year, psns } => crate::resettle::execute(tx, batch, policies, run, *year, psns).await?,
    };
    let response = respond_text(&job.ctx, &Ok(output));
    let logged =
        LoggedMsg { fixmedins_code: job.fixmedins_code.clone(), infno: job.infno.clone(), body_sha256: job.body_sha256.clone(), response };
    let response = logged.response.clone();
    batch.record_msg(&job.msgid, logged);
    Ok(response)
}

async fn settle_in_tx(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    backend: Backend,
    policies: &Policies,
    job: &Job,
    p: &PreparedSettle,
) -> Result<String, ExecError> {
    let mdtrt_id = &p.mdtrt.mdtrt_id;
    let visit = match batch.visit(mdtrt_id) {
        Some(v) => Some(v.clone()),
        None => service::mdtrt_status_and_lines(tx, mdtrt_id).await?,
    };
    let (mut status, mut current_setl, lines) = visit.ok_or_else(|| refused(format!("就诊 {mdtrt_id} 不存在")))?;
    if let Some((st, setl)) = batch.pending_status(mdtrt_id) {
        (status, current_setl) = (st.to_string(), setl.map(str::to_string));
    }
    if status != "open" {
        return Err(refused(format!(
            "就诊 {mdtrt_id} 已结算（结算编号 {}），不能重复结算；如需重新结算请先撤销",
            current_setl.as_deref().unwrap_or("-")
        ))
        .into());
    }
    let bill = bill_for(p, &lines)?;
    let claim = claim_for(p, bill)?;
    let policy = policy_of(policies, p)?;
    let locked = ledger::lock_accumulators(tx, batch, &p.psn_no, claim.year()).await?;
    if !locked.policy_id.is_empty() && locked.policy_id != policy.meta.id {
        return Err(policy_mismatch(&locked.policy_id, policy).into());
    }
    if !within_bounds(&claim, &locked.acc) {
        return Err(beyond_bounds().into());
    }
    let (s, after) = settle(policy, &claim, p.identities, &locked.acc);
    let seq = ledger::next_seq(tx, backend, batch).await?;
    let setl_id = setl_id_of(seq);
    let entries = ledger::entries_of(policy, &s);
    let head = SettlementHead {
        setl_id: setl_id.clone(),
        seq,
        reverses: None,
        msgid: job.msgid.clone(),
        mdtrt_id: mdtrt_id.clone(),
        psn_no: p.psn_no.clone(),
        id_no: p.mdtrt.id_no.clone(),
        village_code: p.village_code.clone(),
        fixmedins_code: job.fixmedins_code.clone(),
        insuplc_admdvs: p.mdtrt.insuplc_admdvs.clone(),
        setl_date: date_num(p.setl_date),
        hosp_lv: p.institution.hosp_lv,
        identities: i64::from(p.identities.bits()),
        policy_id: policy.meta.id.clone(),
        policy_version: policy.version.clone(),
        fulamt_ownpay_amt: bill.fulamt_ownpay().0,
        overlmt_selfpay: bill.overlmt_selfpay().0,
        preselfpay_amt: bill.preselfpay().0,
        outcome_json: explanation_json(policy, &s),
        opter: job.opter.clone(),
        claim_flags: Some(ledger::claim_flags(claim.in_county, claim.referral_ok, claim.major_disease)),
    };
    // The visit moves open → settled at flush, conditionally: if another process settled it since we read
    // it above, the flush fails and the batch is retried, and the retry sees it settled and refuses.
    batch.set_status(mdtrt_id, "open", "settled", Some(&setl_id));
    ledger::append(batch, &head, &Totals::of(&s), &entries, &locked, &after, &policy.meta.id, policy.layers.len())?;
    let a = SetlAmounts::of(&s, &bill);
    tracing::debug!(setl_id = %setl_id, psn_no = %p.psn_no, "settled");
    Ok(settlement_output(mdtrt_id, &setl_id, &p.psn_no, &a, None))
}

pub use baozhang_store::ledger::setl_id_of;

#[allow(clippy::too_many_arguments)]
async fn cancel_in_tx(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    backend: Backend,
    policies: &Policies,
    job: &Job,
    setl_id: &str,
    mdtrt_id: &str,
    psn_no: &str,
) -> Result<String, ExecError> {
    // The settlement may have been written earlier in this batch: put pending rows in first.
    batch.flush(tx).await?;
    let orig = ledger::settlement_in_tx(tx, setl_id).await?.ok_or_else(|| refused(format!("结算 {setl_id} 不存在")))?;
    if orig.fixmedins_code != job.fixmedins_code {
        return Err(refused("该结算不属于本机构，无权撤销").into());
    }
    if orig.reverses.is_some() {
        return Err(refused(format!("{setl_id} 本身是一笔撤销记录，不能再撤销")).into());
    }
    if orig.mdtrt_id != mdtrt_id || orig.psn_no != psn_no {
        return Err(refused("结算编号与就诊编号或人员编号不符").into());
    }
    if let Some(by) = &orig.cancelled_by {
        return Err(refused(format!("结算 {setl_id} 已于撤销记录 {by} 撤销")).into());
    }
    let policy = policies
        .by_version(&orig.policy_version)
        .ok_or_else(|| refused(format!("原结算所用政策版本 {} 未加载，无法撤销；请联系医保局", orig.policy_version)))?;
    let year = orig.year as u16;
    let locked = ledger::lock_accumulators(tx, batch, psn_no, year).await?;
    // Read again under the lock: another process may have cancelled it while we waited.
    if let Some(by) = ledger::settlement_in_tx(tx, setl_id).await?.and_then(|o| o.cancelled_by) {
        return Err(refused(format!("结算 {setl_id} 已于撤销记录 {by} 撤销")).into());
    }
    // What the settlement amounts to now: its entries and any re-settlement adjustments of it.
    let entries = ledger::effective_entries(tx, setl_id).await?;
    // Rebuild the original settlement's accumulator effect and let the engine reverse it.
    let mut s = Settlement::blank();
    s.policy_version = policy.version_id;
    s.year = year;
    s.med_type = MedType::from_code(orig.med_type as u16).ok_or_else(|| NatError::Internal("结算医疗类别数据有误".into()))?;
    s.level_index = (orig.hosp_lv - 1).clamp(0, 2) as u8;
    s.n_layers = policy.layers.len() as u8;
    for e in entries.iter().filter(|e| e.layer >= 0) {
        let l = &mut s.layers[e.layer as usize];
        l.amount_fen = e.amount_fen;
        l.acc_base_delta_fen = e.base_delta_fen;
        l.acc_personal_delta_fen = e.personal_delta_fen;
    }
    if let Some(pe) = entries.iter().find(|e| e.stay_level >= 0) {
        s.level_index = pe.stay_level as u8;
    }
    let after = reverse(policy, &s, &locked.acc).map_err(|e| refused(format!("撤销失败：{e}")))?;
    let seq = ledger::next_seq(tx, backend, batch).await?;
    let new_id = setl_id_of(seq);
    let totals = ledger::effective_totals(tx, &orig).await?.negated();
    let head = SettlementHead {
        setl_id: new_id.clone(),
        seq,
        reverses: Some(setl_id.to_string()),
        msgid: job.msgid.clone(),
        mdtrt_id: mdtrt_id.to_string(),
        psn_no: psn_no.to_string(),
        id_no: orig.id_no.clone(),
        village_code: orig.village_code.clone(),
        fixmedins_code: orig.fixmedins_code.clone(),
        insuplc_admdvs: orig.insuplc_admdvs.clone(),
        setl_date: orig.setl_date,
        hosp_lv: orig.hosp_lv,
        identities: orig.identities,
        policy_id: orig.policy_id.clone(),
        policy_version: orig.policy_version.clone(),
        fulamt_ownpay_amt: -orig.fulamt_ownpay_amt,
        overlmt_selfpay: -orig.overlmt_selfpay,
        preselfpay_amt: -orig.preselfpay_amt,
        outcome_json: "[]".to_string(),
        opter: job.opter.clone(),
        claim_flags: orig.claim_flags,
    };
    let neg = ledger::negated(&entries);
    // As in a settlement: the refusal before any write.
    batch.forget_visit(mdtrt_id);
    if !service::set_mdtrt_status(tx, mdtrt_id, "settled", "open", None).await? {
        return Err(refused(format!("就诊 {mdtrt_id} 当前不是已结算状态")).into());
    }
    ledger::append(batch, &head, &totals, &neg, &locked, &after, &orig.policy_id, policy.layers.len())?;
    // A settlement that was not the person-year's last: the later ones were computed on accumulators
    // that included it. Settle the year again in this transaction (adjustment entries, reason
    // 'cancellation'), so the ledger is right the moment the cancellation commits.
    if ledger::later_live_settlements(tx, psn_no, year, orig.seq).await? > 0 {
        batch.flush(tx).await?;
        let place = orig.village_code.clone().unwrap_or_else(|| orig.insuplc_admdvs.clone());
        crate::resettle::after_cancellation(tx, batch, policies, psn_no, &place, year, setl_id, &job.opter).await?;
    }
    let mut funds = [0i64; 6];
    for e in &neg {
        if let Some(f) = baozhang_core::policy::ALL_FUNDS.iter().find(|f| f.code() == e.fund) {
            funds[f.index()] += e.amount_fen;
        }
    }
    let a = SetlAmounts {
        medfee_sumamt: Fen(totals.medfee_sumamt),
        fulamt_ownpay_amt: Fen(head.fulamt_ownpay_amt),
        overlmt_selfpay: Fen(head.overlmt_selfpay),
        preselfpay_amt: Fen(head.preselfpay_amt),
        inscp_scp_amt: Fen(totals.inscp_scp_amt),
        act_pay_dedc: Fen(totals.act_pay_dedc),
        funds_fen: funds,
        fund_pay_sumamt: Fen(totals.fund_pay_sumamt),
        hosp_part_amt: Fen(totals.hosp_part_amt),
        psn_part_amt: Fen(totals.psn_part_amt),
        clr_type: orig.med_type as u16,
    };
    Ok(settlement_output(mdtrt_id, &new_id, psn_no, &a, None))
}

fn parse_cancel(env: &Envelope) -> NResult<(String, String, String)> {
    let (data, at) = input_obj(env, &["data"])?;
    Ok((req_str(data, "setl_id", &at)?, req_str(data, "mdtrt_id", &at)?, req_str(data, "psn_no", &at)?))
}

impl From<NatError> for ExecError {
    fn from(e: NatError) -> ExecError {
        ExecError::Refused(e)
    }
}
