//! The national interface (POLICY §6): `POST /fsi/api/<anything>` with the platform's envelope, as a
//! hospital information system (HIS) sends it to the national medical-security platform.
//!
//! A request goes through four steps, each in its module:
//!
//! 1. [`envelope`]: the body is read (bounded), the envelope parsed, the transaction code ([`Infno`])
//!    recognised — or the request is refused with the national answer envelope (HTTP 200,
//!    `infcode = -1`, a Chinese `err_msg`; an English line in the log, without names or ID numbers).
//! 2. [`gateway`]: who is calling (the `x-tif-*` headers: gateway accounts or an institution's own
//!    HMAC), the nonce, the sign-in.
//! 3. [`request`]: the input parsed once into the transaction's typed request.
//! 4. Applied by the module of its area — [`person`] (1101, 1201), [`visits`] (2201–2203, 2401–2405,
//!    5201), [`fees`] (2204/2205, 2301/2302, 1312, 5204, 5205, the catalogue), [`settle`] (2206–2208,
//!    2303–2305, 5203), [`reversal`] (2601), [`stmt`] (3201, 3202, 9101, 9102, 4101A). Reads answer
//!    directly; writes are prepared outside and committed by the [`crate::writer`] with their answer
//!    (`msg_log`), so a repeated `msgid` gets the original bytes back.

pub mod envelope;
pub mod fees;
pub mod filing;
pub mod gateway;
pub mod person;
pub mod request;
pub mod reversal;
pub mod settle;
pub mod stmt;
pub mod visits;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use baozhang_store::ledger::Batch;
use baozhang_store::service::{self, Institution, LoggedMsg};
use baozhang_store::{Backend, StoreError, Tx};
use serde_json::{json, Map, Value};

use envelope::refused;
pub use envelope::{json_response, parse_envelope, refusal_response, respond_text, Envelope, Infno, NResult, NatError, RespondCtx};
pub use gateway::{gateway_sign, sign, NONCE_REUSED};
pub use person::idet_code;
pub use request::Request;
pub use settle::PreparedSettle;
pub use visits::mdtrt_id_of;

use crate::clock;
use crate::writer::{ExecError, Job, WriteOp};
use crate::{sha256_hex, AppState, Policies};

pub fn routes() -> Router<AppState> {
    Router::new().route("/fsi/api/{*path}", post(handle))
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let received_ms = clock::unix_ms_now();
    let mut ctx = RespondCtx { received_ms, admdvs: String::new(), warn: None };
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
        Outcome::File { name, bytes } => file_response(&name, bytes),
        Outcome::Fresh(r) => {
            if let Err(e) = &r {
                tracing::info!(infno = %env.infno, msgid = %env.msgid, fixmedins = %env.fixmedins_code, error = %e, "national transaction refused");
            }
            json_response(respond_text(&ctx, &r))
        }
    }
}

/// 9102's answer: the file itself, as the platform sends it.
fn file_response(name: &str, bytes: Vec<u8>) -> Response {
    let ascii: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{ascii}\"")),
        ],
        bytes,
    )
        .into_response()
}

pub enum Outcome {
    /// A complete stored or freshly committed response (writes).
    Stored(String),
    /// An output (or error) still to be wrapped (reads and refusals).
    Fresh(Result<String, NatError>),
    /// A file sent as it is (9102).
    File { name: String, bytes: Vec<u8> },
}

async fn dispatch(state: &AppState, headers: &HeaderMap, body: &[u8], env: &Envelope, ctx: &RespondCtx) -> Outcome {
    let caller = match gateway::authenticate(state, headers, body, env).await {
        Ok(c) => c,
        Err(e) => return Outcome::Fresh(Err(e)),
    };
    run(state, env, &caller.inst, ctx, Some(caller.nonce)).await
}

/// A nonce to record durably with the request it signed (so that a replay is refused after a restart too).
#[derive(Clone, Debug)]
pub struct NonceUse {
    /// Whose nonces it is among: the gateway account (`paas:<paasid>`) or the institution signing itself.
    pub key: String,
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
    infno: Infno,
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
        infno,
        msgid: format!("{code}{}{seq:03}", clock::compact(now)),
        fixmedins_code: inst.fixmedins_code.clone(),
        insuplc_admdvs: insuplc_admdvs.to_string(),
        mdtrtarea_admvs: inst.admdvs.clone(),
        sign_no: String::new(),
        opter: opter.to_string(),
        input,
    };
    let ctx = RespondCtx { received_ms: now, admdvs: inst.admdvs.clone(), warn: None };
    let text = match run(state, &env, inst, &ctx, None).await {
        Outcome::Stored(t) => t,
        Outcome::Fresh(r) => respond_text(&ctx, &r),
        Outcome::File { .. } => return Err(refused("文件下载不能在工作台内调用")),
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
    // A read's nonce is committed before it is answered; a write's in the same transaction as its effect.
    let write_nonce = if env.infno.is_write() {
        nonce
    } else {
        if let Some(n) = nonce {
            if let Err(e) = record_nonce(state, env, ctx, n).await {
                return Outcome::Fresh(Err(e));
            }
        }
        None
    };
    let req = match Request::parse(env) {
        Ok(r) => r,
        Err(e) if env.infno.is_write() => return refused_unless_replay(state, env, &body_sha256, e).await,
        Err(e) => return Outcome::Fresh(Err(e)),
    };
    let write = |op: WriteOp, ctx: RespondCtx| {
        let (body_sha256, nonce) = (body_sha256.clone(), write_nonce.clone());
        async move { write(state, env, &ctx, &body_sha256, op, nonce).await }
    };
    let plain = || ctx.clone();
    // A write refused while being prepared is answered from msg_log when its msgid was answered before.
    macro_rules! prepared {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return refused_unless_replay(state, env, &body_sha256, e).await,
            }
        };
    }
    match req {
        Request::SignIn { opter_no } => {
            let sign_no = crate::random_hex(16);
            let expires_at = clock::unix_now() + state.config.sign_in_ttl_secs;
            write(WriteOp::SignIn { sign_no, opter: opter_no, expires_at }, plain()).await
        }
        Request::SignOut { sign_no } => {
            let out = write(WriteOp::SignOut { sign_no: sign_no.clone() }, plain()).await;
            state.cache.forget_sign_in(&sign_no);
            out
        }
        Request::PersonInfo(q) => Outcome::Fresh(person::person_info(state, env, inst, &q).await),
        Request::InstitutionInfo(q) => Outcome::Fresh(person::institution_info(state, &q).await),
        Request::CatalogueQuery(q) => Outcome::Fresh(fees::catalogue_query(state, &q).await),
        Request::Register(r) => {
            let (m, dise) = prepared!(visits::prepare_register(state, env, r).await);
            write(WriteOp::Register(Box::new(m), dise), plain()).await
        }
        Request::VisitCancel(v) => write(WriteOp::Visit(visits::VisitOp::Cancel(v)), plain()).await,
        Request::VisitChange(c) => write(WriteOp::Visit(visits::VisitOp::Change(c)), plain()).await,
        Request::Discharge(d) => write(WriteOp::Visit(visits::VisitOp::Discharge(d)), plain()).await,
        Request::DischargeCancel(v) => write(WriteOp::Visit(visits::VisitOp::DischargeCancel(v)), plain()).await,
        Request::VisitQuery(q) => Outcome::Fresh(visits::visit_query(state, env, &q).await),
        Request::FeeUpload(up) => {
            let key = msg_key(&env.fixmedins_code, &env.msgid);
            let (lines, warn) = prepared!(fees::classify_upload(state, env, &up, &key).await);
            let op = WriteOp::FeeUpload { visit: up.visit, lines, max_per_visit: state.config.max_fee_lines_per_visit };
            write(op, RespondCtx { warn, ..ctx.clone() }).await
        }
        Request::FeeCancel(c) => write(WriteOp::FeeCancel(c), plain()).await,
        Request::FeeQuery(v) => Outcome::Fresh(fees::fee_query(state, env, &v).await),
        Request::ChronicDrugQuery(q) => Outcome::Fresh(fees::chronic_query(state, env, &q).await),
        Request::PreSettle(r) => match settle::prepare_settle(state, env, inst, &r).await {
            Ok(p) => Outcome::Fresh(settle::pre_settle(state, &p).await),
            Err(e) => Outcome::Fresh(Err(e)),
        },
        Request::Settle(r) => {
            let p = prepared!(settle::prepare_settle(state, env, inst, &r).await);
            write(WriteOp::Settle(Box::new(p)), plain()).await
        }
        Request::SettleCancel(r) => write(WriteOp::Cancel(r), plain()).await,
        Request::SettlementQuery(r) => Outcome::Fresh(settle::settlement_query(state, env, &r).await),
        Request::Reversal(r) => match reversal::prepare(state, env, inst, &r).await {
            Ok(op) => write(WriteOp::Reverse(Box::new((r, op))), plain()).await,
            Err(answer) => answer,
        },
        Request::ReferralFiling(r) => {
            let op = prepared!(filing::prepare(state, env, r).await);
            write(WriteOp::Filing(op), plain()).await
        }
        Request::ReferralFilingCancel(c) => write(WriteOp::Filing(filing::FilingOp::Cancel(c)), plain()).await,
        Request::TotalsStatement(t) => Outcome::Fresh(stmt::totals_statement(state, env, &t).await),
        Request::DetailStatement(d) => {
            let op = prepared!(stmt::prepare_detail(state, env, &d).await);
            write(WriteOp::Statement(op), plain()).await
        }
        Request::SettlementList(l) => {
            prepared!(stmt::check_settlement_list(state, env, &l).await);
            write(WriteOp::Statement(stmt::StmtOp::SettlementList(l)), plain()).await
        }
        Request::FileUpload(f) => {
            let op = prepared!(stmt::prepare_upload(state, env, f));
            write(WriteOp::Statement(op), plain()).await
        }
        Request::FileDownload(f) => stmt::download(state, env, &f).await,
    }
}

/// A write refused while being prepared: if its msgid was answered before (the state has moved on since,
/// e.g. the visit it admitted is now settled), the stored answer is the answer; otherwise the refusal.
async fn refused_unless_replay(state: &AppState, env: &Envelope, body_sha256: &str, e: NatError) -> Outcome {
    match state.store.msg(&msg_key(&env.fixmedins_code, &env.msgid)).await {
        Ok(Some(m)) => Outcome::Fresh(replayed(&m, &env.fixmedins_code, env.infno.code(), &env.msgid, body_sha256)).into_stored(),
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
        infno: env.infno.code().to_string(),
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
        infno: env.infno.code().to_string(),
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
        if !batch.use_nonce(&n.key, &n.nonce, n.until) {
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
        WriteOp::SignOut { sign_no } => {
            if !service::end_sign_in(tx, sign_no, &job.fixmedins_code, clock::unix_now()).await? {
                return Err(refused(format!("签到编号 {sign_no} 不是本机构有效的签到")).into());
            }
            json!({"signoutoutb": {"sign_time": clock::readable(job.ctx.received_ms)}}).to_string()
        }
        WriteOp::Register(m, diagnosis) => {
            if !service::insert_mdtrt(tx, m).await? {
                return Err(ExecError::Refused(refused(format!("就诊编号 {} 已存在", m.mdtrt_id))));
            }
            if let Some((code, name)) = diagnosis {
                baozhang_store::programmes::insert_diagnosis(tx, &m.mdtrt_id, code, name.as_deref(), "national").await?;
            }
            let infno = Infno::parse(&job.infno).unwrap_or(Infno::OutpatientRegister);
            visits::register_output(infno, m)
        }
        WriteOp::Visit(op) => visits::execute(tx, batch, &job.fixmedins_code, &job.infno, &job.msgid, op).await?,
        WriteOp::Nonce => return Ok(String::new()),
        WriteOp::FeeUpload { visit, lines, max_per_visit } => {
            fees::execute_upload(tx, batch, &job.fixmedins_code, visit, lines, *max_per_visit).await?
        }
        WriteOp::FeeCancel(c) => fees::execute_cancel(tx, batch, &job.fixmedins_code, &job.msgid, c).await?,
        WriteOp::Settle(p) => settle::settle_in_tx(tx, batch, backend, policies, job, p).await?,
        WriteOp::Cancel(r) => settle::cancel_in_tx(tx, batch, backend, policies, job, &r.setl_id, &r.mdtrt_id, &r.psn_no).await?,
        WriteOp::Reverse(b) => {
            let (r, op) = b.as_ref();
            reversal::execute(tx, batch, backend, policies, job, r, op).await?
        }
        WriteOp::Statement(op) => stmt::execute(tx, batch, job, op).await?,
        WriteOp::Filing(op) => filing::execute(tx, batch, &job.fixmedins_code, op).await?,
        WriteOp::Resettle { run, year, psns } => crate::resettle::execute(tx, batch, policies, run, *year, psns).await?,
    };
    let response = respond_text(&job.ctx, &Ok(output));
    let logged =
        LoggedMsg { fixmedins_code: job.fixmedins_code.clone(), infno: job.infno.clone(), body_sha256: job.body_sha256.clone(), response };
    let response = logged.response.clone();
    batch.record_msg(&job.msgid, logged);
    Ok(response)
}

impl From<NatError> for ExecError {
    fn from(e: NatError) -> ExecError {
        ExecError::Refused(e)
    }
}
