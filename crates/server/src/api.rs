//! The JSON REST API for the rest of the product (documented in [`crate::openapi`]). Every query is
//! filtered by the caller's scope; names and ID numbers are masked unless the role may see them and the
//! caller asks (`?unmasked=true`), and every unmasked view is written to the access log.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baozhang_core::Fen;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::ledger::SettlementFilter;
use baozhang_store::service::{Institution, PersonRecord};
use baozhang_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{self, Principal, Role};
use crate::{clock, random_hex, AppState};

/// An API failure: HTTP status plus a Chinese message for people (the log gets the cause).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Bad(String),
    /// Too many attempts (login back-off).
    #[error("{0}")]
    TooMany(String),
    #[error("系统暂时无法处理，请稍后重试")]
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "storage failed");
        ApiError::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Bad(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        (status, Json(json!({"error": self.to_string(), "code": code}))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// `Query` whose rejection is a JSON error in Chinese (axum's own is plain English text).
pub struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| ApiError::Bad(format!("查询参数无效：{}", e.body_text())))
    }
}

/// `Path` whose rejection is a JSON error in Chinese.
pub struct P<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|e| ApiError::Bad(format!("路径参数无效：{}", e.body_text())))
    }
}

/// Unknown routes answer a JSON 404 like every other error.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("没有这个接口；接口文档见 /api/docs/".into())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/persons", get(list_persons))
        .route("/api/persons/lookup", post(lookup_person))
        .route("/api/persons/{key}", get(get_person))
        .route("/api/households/{household_no}", get(get_household))
        .route("/api/settlements", get(list_settlements))
        .route("/api/settlements/{setl_id}", get(get_settlement))
        .route("/api/reconcile/runs", get(list_runs))
        .route("/api/reconcile/runs/{run_id}/findings", get(run_findings))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/institutions", get(list_institutions).post(add_institution))
        .route("/api/audit-log", get(audit_log))
        .route("/api/access-log", get(access_log))
        .route("/api/ledger/verify", get(ledger_verify))
        .route("/api/resettle", get(crate::resettle::api_list).post(crate::resettle::api_start))
        .route("/api/resettle/{run_id}", get(crate::resettle::api_run))
}

/// Liveness: the database answers and the writer takes jobs (a stopped writer means no settlement can
/// commit: 503, so a load balancer or monitor sees it).
async fn healthz(State(state): State<AppState>) -> Response {
    let schema = match state.store.schema_version().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let w = state.writer.stats();
    let alive = state.writer.alive();
    let body = json!({
        "status": if alive { "ok" } else { "degraded" },
        "schema_version": schema,
        "policies": state.policies.all().len(),
        "writer": {
            "alive": alive,
            "queued": state.writer.queued(),
            "commits": w.commits.load(std::sync::atomic::Ordering::Relaxed),
            "panicked_jobs": w.panics.load(std::sync::atomic::Ordering::Relaxed),
        },
        "in_flight": state.admission.in_flight(state.config.max_in_flight),
    });
    let status = if alive { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::edge::Peer>>,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(b) = body.map_err(|_| ApiError::Bad("请求体应为 JSON：{\"username\": …, \"password\": …}".into()))?;
    let (token, expires_at, user) = auth::login(&state, &b.username, &b.password, peer.map(|p| p.0 .0.ip())).await?;
    Ok(Json(json!({
        "token": token,
        "expires_at": expires_at,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "scope": user.scope,
    })))
}

/// Ends the session that authenticated the call: the bearer token, or else the workbench's cookie (a
/// cookie session must not outlive a logout through the API).
async fn logout(State(state): State<AppState>, headers: axum::http::HeaderMap, _p: Principal) -> Response {
    let bearer =
        headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let token = bearer.map(str::to_string).or_else(|| auth::session_cookie(&headers));
    if let Some(t) = token {
        if let Err(e) = state.store.end_session(&crate::sha256_hex(t.as_bytes())).await {
            return ApiError::from(e).into_response();
        }
    }
    let mut r = Json(json!({"ok": true})).into_response();
    if bearer.is_none() {
        r.headers_mut().insert(
            axum::http::header::SET_COOKIE,
            axum::http::HeaderValue::from_static("bz_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
    }
    r
}

async fn me(p: Principal) -> ApiResult {
    Ok(Json(json!({"username": p.username, "role": p.role, "role_name": p.role.name_zh(), "scope": p.scope})))
}

#[derive(Deserialize, Default)]
struct Paging {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    unmasked: Option<bool>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    household_no: Option<String>,
}

/// Whether to show personal information in clear: asked for, and allowed.
fn unmask_wanted(p: &Principal, asked: Option<bool>) -> Result<bool, ApiError> {
    match asked {
        Some(true) if p.may_unmask() => Ok(true),
        Some(true) => Err(ApiError::Forbidden(format!("{}不能查看未脱敏的个人信息", p.role.name_zh()))),
        _ => Ok(false),
    }
}

fn person_json(r: &PersonRecord, unmasked: bool) -> Value {
    json!({
        "id_no": if unmasked { r.id_no.clone() } else { mask_id(&r.id_no) },
        "name": if unmasked { r.name.clone() } else { mask_name(&r.name) },
        "sex": r.sex,
        "birth_date": r.birth_date,
        "household_no": r.household_no,
        "relation": r.relation,
        "village_code": r.village_code,
        "psn_no": r.psn_no,
    })
}

async fn log_unmasked(state: &AppState, p: &Principal, action: &str, id_no: &str) -> Result<(), ApiError> {
    state.store.log_access(&p.username, p.role.as_str(), action, &mask_id(id_no), "查看未脱敏个人信息").await?;
    Ok(())
}

/// The region to list: the caller's own, or a narrower one inside it.
pub(crate) fn list_region(p: &Principal, asked: Option<&str>) -> Result<String, ApiError> {
    let Some(own) = p.region() else {
        return Err(ApiError::Forbidden("医院账号只能按出示的证件号码查询人员".into()));
    };
    match asked.map(str::trim).filter(|a| !a.is_empty()) {
        None => Ok(own.to_string()),
        Some(a) if a.starts_with(own) => Ok(a.to_string()),
        Some(a) => Err(ApiError::Forbidden(format!("区划 {a} 不在您的范围 {own} 内"))),
    }
}

async fn list_persons(State(state): State<AppState>, p: Principal, Q(q): Q<Paging>) -> ApiResult {
    let region = list_region(&p, q.region.as_deref())?;
    let unmasked = unmask_wanted(&p, q.unmasked)?;
    let rows = state.store.persons_in(&region, q.household_no.as_deref(), q.limit.unwrap_or(100), q.offset.unwrap_or(0)).await?;
    if unmasked {
        let subjects: Vec<String> = rows.iter().map(|r| mask_id(&r.id_no)).collect();
        state.store.log_access_many(&p.username, p.role.as_str(), "persons.list", &subjects, "查看未脱敏个人信息").await?;
    }
    let pid = pid_key(&state).await?;
    let persons: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = person_json(r, unmasked);
            v["key"] = Value::String(pid.encode(&r.id_no));
            v
        })
        .collect();
    Ok(Json(json!({"region": region, "persons": persons})))
}

async fn pid_key(state: &AppState) -> Result<crate::web::pid::PidKey, ApiError> {
    state.web.pid_key(&state.store).await.map_err(|e| {
        tracing::error!(error = %e.message, "no person-link key");
        ApiError::Internal
    })
}

/// `GET /api/persons/{key}`: a person by the opaque key that listings return (`key`) or by 人员编号 —
/// never by ID number, which must not appear in an address (proxies and access logs keep addresses); an
/// ID number is looked up with `POST /api/persons/lookup`.
async fn get_person(State(state): State<AppState>, p: Principal, P(key): P<String>, Q(q): Q<Paging>) -> ApiResult {
    let key = key.trim();
    if crate::web::looks_like_id_no(key) {
        return Err(ApiError::Bad(
            "证件号码不能放在地址中（代理和日志会记录地址）；请用 POST /api/persons/lookup，请求体 {\"id_no\": …}".into(),
        ));
    }
    if p.role == Role::Hospital {
        return Err(ApiError::Forbidden("医院账号只能按患者出示的证件号码查询（POST /api/persons/lookup）".into()));
    }
    let not_found = || ApiError::NotFound("未找到该人员，或不在您的查询范围内".into());
    let id_no = match pid_key(&state).await?.decode(key) {
        Some(id) => id,
        None => state.store.person_by_psn(key).await?.map(|r| r.id_no).ok_or_else(not_found)?,
    };
    person_view(&state, &p, &id_no, q.unmasked).await
}

#[derive(Deserialize)]
struct LookupBody {
    id_no: String,
    #[serde(default)]
    unmasked: Option<bool>,
}

/// `POST /api/persons/lookup {"id_no": …, "unmasked": …}`: a person by the full ID number (a hospital: the
/// certificate its patient presented; every such read is in the access log).
async fn lookup_person(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<LookupBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(b) = body.map_err(|_| ApiError::Bad("请求体应为 JSON：{\"id_no\": \"18 位证件号码\"}".into()))?;
    let id = baozhang_core::IdCardNo::parse(b.id_no.trim()).map_err(|e| ApiError::Bad(format!("字段 id_no：{e}")))?;
    person_view(&state, &p, id.as_str(), b.unmasked).await
}

async fn person_view(state: &AppState, p: &Principal, id_no: &str, unmasked: Option<bool>) -> ApiResult {
    let id_no = id_no.to_ascii_uppercase();
    let unmasked = unmask_wanted(p, unmasked)?;
    let state = state.clone();
    let p = p.clone();
    let not_found = || ApiError::NotFound("未找到该人员，或不在您的查询范围内".into());
    let person = state.store.person(&id_no).await?.ok_or_else(not_found)?;
    let enrolments = state.store.enrolments_of(&id_no).await?;
    // A hospital looks up the person whose certificate it holds (it typed the full number); everyone
    // else only inside their region — by village, or, for someone the registry has no village for, by the
    // county they are insured in. Out of scope looks the same as absent.
    if p.role != Role::Hospital && !p.covers_person(person.village_code.as_deref(), &enrolments) {
        return Err(not_found());
    }
    if unmasked {
        log_unmasked(&state, &p, "persons.get", &id_no).await?;
    } else if p.role == Role::Hospital {
        // A hospital reads a patient's identities: logged like the national 1101 look-up.
        state.store.log_access(&p.username, p.role.as_str(), "persons.get", &mask_id(&id_no), "医院按出示的证件查询参保人员").await?;
    }
    let periods = state.store.identity_periods(&id_no).await?;
    let states = state.store.special_states(&id_no).await?;
    Ok(Json(json!({
        "person": person_json(&person, unmasked),
        "identities": periods,
        "enrolments": enrolments.iter().map(|e| json!({
            "psn_no": e.psn_no, "year": e.year, "status": e.status, "insured": e.insured, "insured_admdvs": e.insured_admdvs,
            "flags": baozhang_core::IdentitySet::from_bits(e.flags as u16).names_zh(), "flag_date": e.flag_date,
            "premium": yuan(e.premium_fen), "subsidy": yuan(e.subsidy_fen), "subsidy_source": e.subsidy_source,
        })).collect::<Vec<_>>(),
        "special_states": states.iter().map(|(s, d)| json!({"state": s, "start_date": d})).collect::<Vec<_>>(),
    })))
}

async fn get_household(State(state): State<AppState>, p: Principal, P(household_no): P<String>, Q(q): Q<Paging>) -> ApiResult {
    let region = list_region(&p, None)?;
    let unmasked = unmask_wanted(&p, q.unmasked)?;
    let members = state.store.persons_in(&region, Some(household_no.trim()), 100, 0).await?;
    if members.is_empty() {
        return Err(ApiError::NotFound("未找到该户，或不在您的查询范围内".into()));
    }
    if unmasked {
        for m in &members {
            log_unmasked(&state, &p, "households.get", &m.id_no).await?;
        }
    }
    Ok(Json(json!({"household_no": household_no, "members": members.iter().map(|r| person_json(r, unmasked)).collect::<Vec<_>>()})))
}

#[derive(Deserialize, Default)]
struct SettlementQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    psn_no: Option<String>,
    #[serde(default)]
    mdtrt_id: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

fn date_param(s: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => clock::parse_date_prefix(t)
            .map(|d| Some(baozhang_store::date_num(d)))
            .ok_or_else(|| ApiError::Bad(format!("参数 {name}=“{t}”不是有效日期"))),
    }
}

pub(crate) fn yuan(f: i64) -> Value {
    // Exact decimal text as a JSON number (serde_json keeps it with `arbitrary_precision`).
    serde_json::from_str(&Fen(f).to_string()).unwrap_or(Value::Null)
}

fn settlement_json(s: &baozhang_store::ledger::StoredSettlement) -> Value {
    json!({
        "setl_id": s.setl_id,
        "seq": s.seq,
        "reverses": s.reverses,
        "cancelled_by": s.cancelled_by,
        "mdtrt_id": s.mdtrt_id,
        "psn_no": s.psn_no,
        "id_no": mask_id(&s.id_no),
        "village_code": s.village_code,
        "fixmedins_code": s.fixmedins_code,
        "insuplc_admdvs": s.insuplc_admdvs,
        "setl_date": s.setl_date,
        "med_type": s.med_type,
        "hosp_lv": s.hosp_lv,
        "identities": baozhang_core::IdentitySet::from_bits(s.identities as u16).names_zh(),
        "policy_id": s.policy_id,
        "policy_version": s.policy_version,
        "medfee_sumamt": yuan(s.medfee_sumamt),
        "fulamt_ownpay_amt": yuan(s.fulamt_ownpay_amt),
        "overlmt_selfpay": yuan(s.overlmt_selfpay),
        "preselfpay_amt": yuan(s.preselfpay_amt),
        "inscp_scp_amt": yuan(s.inscp_scp_amt),
        "act_pay_dedc": yuan(s.act_pay_dedc),
        "fund_pay_sumamt": yuan(s.fund_pay_sumamt),
        "hosp_part_amt": yuan(s.hosp_part_amt),
        "psn_part_amt": yuan(s.psn_part_amt),
        "created_at": s.created_at,
    })
}

fn settlement_filter(p: &Principal) -> SettlementFilter {
    match p.role {
        Role::Hospital => SettlementFilter { fixmedins_code: Some(p.scope.clone()), ..Default::default() },
        _ => SettlementFilter { region_prefix: p.region().filter(|r| !r.is_empty()).map(str::to_string), ..Default::default() },
    }
}

async fn list_settlements(State(state): State<AppState>, p: Principal, Q(q): Q<SettlementQuery>) -> ApiResult {
    let mut f = settlement_filter(&p);
    f.from_date = date_param(q.from.as_deref(), "from")?;
    f.to_date = date_param(q.to.as_deref(), "to")?;
    f.psn_no = q.psn_no.filter(|s| !s.is_empty());
    f.mdtrt_id = q.mdtrt_id.filter(|s| !s.is_empty());
    f.limit = q.limit.unwrap_or(100);
    f.offset = q.offset.unwrap_or(0);
    let rows = state.store.settlements(&f).await?;
    Ok(Json(json!({"settlements": rows.iter().map(settlement_json).collect::<Vec<_>>()})))
}

async fn get_settlement(State(state): State<AppState>, p: Principal, P(setl_id): P<String>) -> ApiResult {
    let not_found = || ApiError::NotFound("未找到该结算，或不在您的查询范围内".into());
    let s = state.store.settlement(&setl_id).await?.ok_or_else(not_found)?;
    let visible = match p.role {
        Role::Hospital => s.fixmedins_code == p.scope,
        // Without a village, the settlement is in the scope of the county the person is insured in.
        _ => p.covers(s.village_code.as_deref().or(Some(s.insuplc_admdvs.as_str()))),
    };
    if !visible {
        return Err(not_found());
    }
    let entries = state.store.settlement_entries(&setl_id).await?;
    let mut v = settlement_json(&s);
    v["explanation"] = serde_json::from_str(&s.outcome).unwrap_or(Value::Null);
    v["entries"] = entries
        .iter()
        .map(|e| json!({"layer": e.layer, "fund": e.fund, "amount": yuan(e.amount_fen), "base_delta": yuan(e.base_delta_fen), "personal_delta": yuan(e.personal_delta_fen)}))
        .collect();
    Ok(Json(v))
}

async fn list_runs(State(state): State<AppState>, p: Principal) -> ApiResult {
    if p.region().is_none() {
        return Err(ApiError::Forbidden("医院账号不能查看数据比对结果".into()));
    }
    let runs = state.store.reconcile_runs(100).await?;
    Ok(Json(json!({"runs": runs.iter().map(|(id, as_of, started, finished, n, new, resolved)| json!({
        "id": id, "as_of": as_of, "started_at": started, "finished_at": finished, "findings": n, "new_findings": new, "resolved_findings": resolved,
    })).collect::<Vec<_>>()})))
}

async fn run_findings(State(state): State<AppState>, p: Principal, P(run_id): P<i64>, Q(q): Q<Paging>) -> ApiResult {
    let region = list_region(&p, q.region.as_deref())?;
    let unmasked = unmask_wanted(&p, q.unmasked)?;
    let findings = state.store.findings(run_id, Some(&region)).await?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000) as usize;
    let offset = q.offset.unwrap_or(0).max(0) as usize;
    let page: Vec<_> = findings.iter().skip(offset).take(limit).collect();
    if unmasked {
        for f in &page {
            log_unmasked(&state, &p, "findings.list", &f.id_no).await?;
        }
    }
    Ok(Json(json!({
        "run_id": run_id,
        "region": region,
        "total": findings.len(),
        "findings": page.iter().map(|f| json!({
            "class": f.class,
            "id_no": if unmasked { f.id_no.clone() } else { mask_id(&f.id_no) },
            "name": if unmasked { f.name.clone() } else { mask_name(&f.name) },
            "village_code": f.village_code,
            "household_no": f.household_no,
            "detail": f.detail,
            "is_new": f.is_new,
        })).collect::<Vec<_>>(),
    })))
}

async fn list_users(State(state): State<AppState>, p: Principal) -> ApiResult {
    p.require(&[Role::Admin])?;
    Ok(Json(json!({"users": state.store.users().await?})))
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    #[serde(default)]
    display_name: String,
    role: String,
    #[serde(default)]
    scope: String,
    password: String,
}

async fn add_user(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require(&[Role::Admin])?;
    let Json(u) = body.map_err(|e| ApiError::Bad(format!("请求体无效：{e}")))?;
    let role =
        Role::parse(&u.role).ok_or_else(|| ApiError::Bad(format!("角色“{}”无效（admin、bureau、hospital、cadre、auditor）", u.role)))?;
    auth::create_user(&state.store, &p.username, &u.username, &u.display_name, role, &u.scope, &u.password).await.map_err(ApiError::Bad)?;
    Ok((StatusCode::CREATED, Json(json!({"username": u.username, "role": role, "scope": u.scope}))))
}

async fn list_institutions(State(state): State<AppState>, p: Principal) -> ApiResult {
    p.require(&[Role::Admin, Role::Bureau, Role::Auditor])?;
    Ok(Json(json!({"institutions": state.store.institutions().await?})))
}

#[derive(Deserialize)]
struct NewInstitution {
    fixmedins_code: String,
    name: String,
    hosp_lv: i64,
    admdvs: String,
}

/// Registers an institution and returns its signing secret — the only time it is shown.
pub async fn register_institution(
    state_store: &baozhang_store::Store,
    actor: &str,
    code: &str,
    name: &str,
    hosp_lv: i64,
    admdvs: &str,
) -> Result<String, String> {
    if code.is_empty() || code.len() > 30 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("机构编号应为 1–30 位字母或数字".into());
    }
    if !(1..=3).contains(&hosp_lv) {
        return Err("医院等级应为 1（乡镇）、2（县级）或 3（市级及以上）".into());
    }
    if admdvs.len() != 6 || !admdvs.bytes().all(|b| b.is_ascii_digit()) {
        return Err("机构所在区划应为 6 位县级区划代码".into());
    }
    if state_store.institution(code).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("机构 {code} 已登记"));
    }
    let secret = random_hex(32);
    let i = Institution {
        fixmedins_code: code.into(),
        name: name.into(),
        hosp_lv,
        admdvs: admdvs.into(),
        secret: secret.clone(),
        disabled: false,
        hosp_grade: 0,
        primary_care: false,
    };
    state_store.add_institution(actor, &i).await.map_err(|e| e.to_string())?;
    Ok(secret)
}

async fn add_institution(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<NewInstitution>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require(&[Role::Admin])?;
    let Json(b) = body.map_err(|e| ApiError::Bad(format!("请求体无效：{e}")))?;
    let secret = register_institution(&state.store, &p.username, b.fixmedins_code.trim(), b.name.trim(), b.hosp_lv, b.admdvs.trim())
        .await
        .map_err(ApiError::Bad)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"fixmedins_code": b.fixmedins_code, "secret": secret, "note": "密钥只显示这一次，请妥善交给该机构"})),
    ))
}

async fn audit_log(State(state): State<AppState>, p: Principal, Q(q): Q<Paging>) -> ApiResult {
    p.require(&[Role::Admin, Role::Auditor])?;
    Ok(Json(json!({"records": state.store.audit_records(q.limit.unwrap_or(200)).await?})))
}

async fn access_log(State(state): State<AppState>, p: Principal, Q(q): Q<Paging>) -> ApiResult {
    p.require(&[Role::Admin, Role::Auditor])?;
    Ok(Json(json!({"records": state.store.access_log(q.limit.unwrap_or(200)).await?})))
}

async fn ledger_verify(State(state): State<AppState>, p: Principal) -> ApiResult {
    p.require(&[Role::Admin, Role::Auditor, Role::Bureau])?;
    let rep = crate::resettle::verify_ledger(&state.store, &state.policies).await?;
    Ok(Json(json!({"ok": rep.ok(), "report": rep})))
}
