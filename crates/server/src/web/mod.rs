//! The web workbench (工作台): server-rendered pages in Simplified Chinese for county bureaus, hospital
//! windows, village cadres and auditors, served by `baozhang serve` itself (no CDN: htmx and ECharts are
//! vendored under `assets/web/vendor` with their licences and compiled into the binary).
//!
//! - Sessions: the same token as the REST API's bearer token, in an HttpOnly, SameSite=Strict cookie.
//! - Scope: every page checks the user's region (or institution) exactly as the REST API does; a region
//!   outside it looks the same as one that does not exist.
//! - Personal information is masked unless the role may see it and the user asks; every such view is in
//!   the access log.
//! - Every table sorts, filters and pages in the browser and exports to Excel (`?export=<table id>`, built
//!   on the server from the same rows).

pub mod actions;
pub mod audit;
pub mod cache;
pub mod catalogue;
pub mod chronic;
pub mod dashboard;
pub mod exit;
pub mod fdc;
pub mod funds;
pub mod health;
pub mod help;
pub mod import;
pub mod jobs;
pub mod mdt;
pub mod periodic;
pub mod person;
pub mod pid;
pub mod policy;
pub mod policy_compare;
pub mod rectify;
pub mod reports;
pub mod resettle;
pub mod risk;
pub mod scores;
pub mod supervise;
pub mod table;
pub mod window;
pub mod worklist;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::ApiError;
use crate::auth::{self, Principal, Role, SESSION_COOKIE};
use crate::{clock, AppState};
use table::Table;

/// What the workbench keeps between requests.
pub struct WebState {
    region_names: tokio::sync::OnceCell<Arc<HashMap<String, String>>>,
    pub dashboard: dashboard::Cache,
    slip: std::sync::OnceLock<Result<baozhang_slip::SlipRenderer, String>>,
    /// R-RISK-1: annual personal payment above which a person is flagged (default 5,000 yuan).
    pub warning_line_fen: i64,
    pid: tokio::sync::OnceCell<pid::PidKey>,
    /// The early-warning list per day assessed (R-RISK-1).
    pub risk: risk::RiskCache,
    /// Exit checks per region and year (R-EXIT-1).
    pub exit: exit::ExitCache,
    /// County pages built once and kept (`web::cache`).
    pub pages: Arc<cache::PageCache>,
    /// Long actions running in the background (`web::jobs`).
    pub jobs: Arc<jobs::Jobs>,
}

impl Default for WebState {
    fn default() -> WebState {
        WebState {
            region_names: tokio::sync::OnceCell::new(),
            dashboard: dashboard::Cache::default(),
            slip: std::sync::OnceLock::new(),
            warning_line_fen: 500_000,
            pid: tokio::sync::OnceCell::new(),
            risk: risk::RiskCache::default(),
            exit: exit::ExitCache::default(),
            pages: Arc::default(),
            jobs: Arc::default(),
        }
    }
}

impl WebState {
    /// The key of the person links (`app_secrets`, created by the first server on the database).
    pub async fn pid_key(&self, store: &baozhang_store::Store) -> Result<pid::PidKey, WebError> {
        self.pid
            .get_or_try_init(|| async {
                let hex = store.secret("web.person_link", &pid::PidKey::random_hex()).await?;
                pid::PidKey::from_hex(&hex).ok_or_else(|| WebError::internal("app_secrets web.person_link is not 32 bytes of hex"))
            })
            .await
            .cloned()
    }

    /// Region code → name (loaded once; the division tree changes with an import, i.e. a restart).
    pub async fn region_names(&self, store: &baozhang_store::Store) -> Result<Arc<HashMap<String, String>>, WebError> {
        self.region_names
            .get_or_try_init(|| async {
                let regions = store.regions_upto(5, None).await?;
                Ok::<_, baozhang_store::StoreError>(Arc::new(regions.into_iter().map(|r| (r.code, r.name)).collect()))
            })
            .await
            .map(Arc::clone)
            .map_err(WebError::from)
    }

    pub fn slip_renderer(&self) -> Result<&baozhang_slip::SlipRenderer, WebError> {
        self.slip
            .get_or_init(|| baozhang_slip::SlipRenderer::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| WebError::new(StatusCode::SERVICE_UNAVAILABLE, e.clone()))
    }
}

// ───────────────────────────── errors ─────────────────────────────

/// A page that could not be shown: status and a Chinese message (the log has the cause).
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError { status, message: message.into() }
    }
    pub fn bad(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn forbidden(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, message)
    }
    /// A fault of the server: logged in English, shown as a polite Chinese message.
    pub fn internal(log: &str) -> WebError {
        tracing::error!(error = log, "page failed");
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "系统暂时无法处理，请稍后重试")
    }
}

impl From<baozhang_store::StoreError> for WebError {
    fn from(e: baozhang_store::StoreError) -> WebError {
        tracing::error!(error = %e, "storage failed while rendering a page");
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "系统暂时无法处理，请稍后重试")
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        let status = match &e {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Bad(_) => StatusCode::BAD_REQUEST,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        WebError::new(status, e.to_string())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "无权访问",
            StatusCode::NOT_FOUND => "未找到",
            StatusCode::BAD_REQUEST => "输入有误",
            _ => "出错了",
        };
        let html = ErrorPage { title, message: &self.message }.render().unwrap_or_else(|_| esc(&self.message));
        (self.status, Html(html)).into_response()
    }
}

pub type WebResult = Result<Response, WebError>;

// ───────────────────────────── the signed-in user ─────────────────────────────

/// The signed-in user of a page; without a live session the browser is sent to the login page.
pub struct WebUser {
    pub p: Principal,
    pub path: String,
    /// The session's CSRF token (`guard::csrf`), put into every posted form of the user's pages.
    pub csrf: String,
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<WebUser, Response> {
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/web/".into());
        if auth::session_cookie(&parts.headers).is_none() {
            return Err(to_login(&path));
        }
        match Principal::from_request_parts(parts, state).await {
            Ok(p) => {
                let session = auth::session_cookie(&parts.headers).unwrap_or_default();
                let csrf = state.guard.csrf_token(&state.store, &session).await.map_err(|e| WebError::from(e).into_response())?;
                Ok(WebUser { p, path, csrf })
            }
            Err(ApiError::Unauthorized(_)) => Err(to_login(&path)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

fn to_login(next: &str) -> Response {
    Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
}

impl WebUser {
    /// The same user for a page built to be kept (`web::cache`): no session token, and the page's
    /// canonical address (its links are the same for every viewer).
    pub fn for_build(&self, path_and_query: String) -> WebUser {
        WebUser { p: self.p.clone(), path: path_and_query, csrf: String::new() }
    }
    pub fn clone_user(&self) -> WebUser {
        WebUser { p: self.p.clone(), path: self.path.clone(), csrf: self.csrf.clone() }
    }
    /// The county bureau, for building its pages at start (`cache::warm`).
    pub fn warming(county: &str) -> WebUser {
        WebUser {
            p: Principal { username: "（预先计算）".into(), role: Role::Bureau, scope: county.to_string() },
            path: String::new(),
            csrf: String::new(),
        }
    }
    /// The region the user may read; hospitals have none.
    pub fn region(&self) -> Result<&str, WebError> {
        self.p.region().ok_or_else(|| WebError::forbidden("定点医疗机构账号请使用一站式结算窗口"))
    }
    /// A region code the user asked for, if it lies inside their own.
    pub fn region_in_scope<'a>(&'a self, asked: Option<&'a str>) -> Result<&'a str, WebError> {
        let own = self.region()?;
        match asked.map(str::trim).filter(|a| !a.is_empty()) {
            None => Ok(own),
            Some(a) if a.starts_with(own) && a.bytes().all(|b| b.is_ascii_digit()) => Ok(a),
            Some(_) => Err(WebError::forbidden("该区划不在您的管辖范围内")),
        }
    }
    /// The user's region for pages kept per county (reports, budgets): a county or wider. A township or
    /// village account is refused — cutting its code to the county would widen its scope.
    pub fn county_scope(&self, what: &str) -> Result<&str, WebError> {
        let own = self.region()?;
        if own.len() > 6 {
            return Err(WebError::forbidden(format!("{what}按县（区）编制，需县级及以上范围的账号（您的范围是 {own}）")));
        }
        Ok(own)
    }
    /// Refuses an action the user's role may not take: "<role>不能<what>" (403).
    pub fn require(&self, allowed: bool, what: &str) -> Result<(), WebError> {
        if allowed {
            Ok(())
        } else {
            Err(WebError::forbidden(format!("{}不能{what}", self.p.role.name_zh())))
        }
    }
    pub fn may_unmask(&self, asked: bool) -> Result<bool, WebError> {
        match asked {
            true if self.p.may_unmask() => Ok(true),
            true => Err(WebError::forbidden(format!("{}不能查看未脱敏的个人信息", self.p.role.name_zh()))),
            false => Ok(false),
        }
    }
}

/// Whether text is shaped like an ID number (17 digits and a digit or X).
pub fn looks_like_id_no(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) && (b[17].is_ascii_digit() || b[17] | 0x20 == b'x')
}

/// The refusal of an address that carries an ID number: addresses are kept by browsers' histories,
/// proxies and access logs, so the workbench neither builds nor accepts them.
pub fn id_in_address() -> WebError {
    WebError::bad("证件号码不能放在网址中（浏览器历史、代理和日志会记录网址）：请在页面顶部或结算窗口的查找框中输入")
}

// ───────────────────────────── layout ─────────────────────────────

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

pub struct Chrome {
    pub user: String,
    pub role: &'static str,
    pub scope_label: String,
    pub nav: Vec<NavItem>,
    pub search: bool,
    /// The help page of the page's area (`web::help`), or the help index.
    pub help: String,
}

#[derive(Template)]
#[template(path = "base.html")]
struct PageTpl<'a> {
    title: &'a str,
    csrf: &'a str,
    chrome: &'a Chrome,
    crumbs: &'a [(String, String)],
    body: &'a str,
}

/// A page: title, breadcrumbs (label, href; the last without href) and the body's HTML.
pub struct Page {
    pub title: String,
    pub crumbs: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn new(title: impl Into<String>) -> Page {
        Page { title: title.into(), crumbs: Vec::new(), body: String::new() }
    }
    pub fn push(&mut self, html: &str) -> &mut Page {
        self.body.push_str(html);
        self
    }
    /// Appends a view model rendered by its template (auto-escaped).
    pub fn view(&mut self, t: &impl Template) -> Result<&mut Page, WebError> {
        let html = t.render().map_err(|e| WebError::internal(&format!("template: {e}")))?;
        self.body.push_str(&html);
        Ok(self)
    }
    /// Appends tables (sorting, filtering, paging and export in the browser); `u.path` is their page.
    pub fn tables(&mut self, u: &WebUser, tables: &[&Table]) -> &mut Page {
        for t in tables {
            self.body.push_str(&t.html(&u.path));
        }
        self
    }
    pub fn render(&self, u: &WebUser) -> Response {
        let chrome = chrome(u);
        let html = PageTpl { title: &self.title, csrf: &u.csrf, chrome: &chrome, crumbs: &self.crumbs, body: &self.body }
            .render()
            .unwrap_or_else(|e| {
                // The reason goes to the log (English), the page says only that it failed.
                tracing::error!(error = %e, "page template failed");
                "<p>页面渲染失败，请稍后重试</p>".to_string()
            });
        let html = crate::guard::add_token_to_forms(&html, &u.csrf);
        (
            [
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            ],
            html,
        )
            .into_response()
    }
}

fn chrome(u: &WebUser) -> Chrome {
    let path = u.path.split('?').next().unwrap_or("");
    let items: &[(&'static str, &'static str)] = match u.p.role {
        Role::Hospital => &[
            ("/web/window", "一站式结算窗口"),
            ("/web/audit", "基金监管线索"),
            ("/web/forms", "本院报表"),
            ("/web/policy", "政策与测算"),
            ("/web/catalogue", "医保目录"),
        ],
        Role::Cadre => &[
            ("/web/region", "本村概况"),
            ("/web/worklist", "比对工作清单"),
            ("/web/risk", "因病致贫预警"),
            ("/web/fdc", "家庭医生"),
            ("/web/rectify", "整改台账"),
            ("/web/policy", "政策与测算"),
            ("/web/catalogue", "医保目录"),
        ],
        Role::Auditor => &[
            ("/web/region", "驾驶舱"),
            ("/web/worklist", "比对结果"),
            ("/web/risk", "因病致贫预警"),
            ("/web/chronic", "慢病卡"),
            ("/web/fdc", "家庭医生"),
            ("/web/mdt", "大病救治"),
            ("/web/audit", "基金监管"),
            ("/web/supervise", "督战考核"),
            ("/web/forms", "定期报表"),
            ("/web/rectify", "整改台账"),
            ("/web/policy", "政策与测算"),
            ("/web/catalogue", "医保目录"),
        ],
        Role::Admin | Role::Bureau => &[
            ("/web/region", "驾驶舱"),
            ("/web/worklist", "比对结果"),
            ("/web/risk", "因病致贫预警"),
            ("/web/chronic", "慢病卡"),
            ("/web/fdc", "家庭医生"),
            ("/web/mdt", "大病救治"),
            ("/web/audit", "基金监管"),
            ("/web/supervise", "督战考核"),
            ("/web/forms", "定期报表"),
            ("/web/rectify", "整改台账"),
            ("/web/funds", "资金拨付"),
            ("/web/resettle", "重新结算"),
            ("/web/policy", "政策与测算"),
            ("/web/catalogue", "医保目录"),
            ("/web/import", "名单导入"),
        ],
    };
    Chrome {
        user: u.p.username.clone(),
        role: u.p.role.name_zh(),
        scope_label: if u.p.scope.is_empty() { "全部".into() } else { format!("范围 {}", u.p.scope) },
        nav: items.iter().map(|(href, label)| NavItem { href, label, active: path.starts_with(href) }).collect(),
        search: u.p.role != Role::Hospital,
        help: help::area_for(path).map_or_else(|| "/web/help".to_string(), |a| format!("/web/help/{}", a.id)),
    }
}

// ───────────────────────────── HTML helpers ─────────────────────────────

/// A small template rendered to a string (a fragment inside a page); a failure is logged and shown as
/// a line saying so.
pub fn render_fragment(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "fragment template failed");
        "<p>页面片段渲染失败</p>".to_string()
    })
}

/// HTML-escapes text (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Whether free text carries what may be an ID number (15 or more digits in a row): such text is refused
/// where it would be stored or put into an address (reasons, export filters).
pub fn contains_id_like(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            run += 1;
            if run >= 15 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

pub fn urlencode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// Yuan with thousands separators, from fen (exact).
pub fn yuan(fen: i64) -> String {
    baozhang_core::Fen(fen).grouped()
}

/// Fen as 万元 with two decimals, rounded half away from zero, with thousands separators
/// ("1,234.57 万元"), as officials read large sums (dashboard cards, funds).
pub fn wan(fen: i64) -> String {
    // Hundredths of 万元: 10,000 fen each.
    let (q, r) = (fen / 10_000, fen % 10_000);
    let h = if r.abs() * 2 >= 10_000 { q + r.signum() } else { q };
    format!("{} 万元", baozhang_core::Fen(h).grouped())
}

/// A count with thousands separators ("115,014"), as officials read numbers.
pub fn count(n: i64) -> String {
    let g = baozhang_core::Fen(n.saturating_mul(100)).grouped();
    g.trim_end_matches(".00").to_string()
}

/// Basis points as a percentage with two decimals; "—" without a denominator.
pub fn pct(bp: Option<i64>) -> String {
    match bp {
        Some(b) => format!("{}{}.{:02}%", if b < 0 { "-" } else { "" }, b.abs() / 100, b.abs() % 100),
        None => "—".into(),
    }
}

/// n / d in basis points, rounded half away from zero (None without a denominator).
pub use baozhang_store::indicators::bp as ratio_bp;

/// yyyymmdd → yyyy-mm-dd.
pub fn date_text(d: i64) -> String {
    if d <= 0 {
        return String::new();
    }
    format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100)
}

/// A number card of the dashboard.
// ───────────────────────────── routes ─────────────────────────────

const APP_CSS: &str = include_str!("../../assets/web/app.css");
const APP_JS: &str = include_str!("../../assets/web/app.js");
const HTMX_JS: &str = include_str!("../../assets/web/vendor/htmx.min.js");
const ECHARTS_JS: &str = include_str!("../../assets/web/vendor/echarts.min.js");
const FAVICON_SVG: &str = include_str!("../../assets/web/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/web/") }))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/static/app.js", get(|| async { asset("application/javascript; charset=utf-8", APP_JS) }))
        .route("/static/htmx.min.js", get(|| async { asset("application/javascript; charset=utf-8", HTMX_JS) }))
        .route("/static/echarts.min.js", get(|| async { asset("application/javascript; charset=utf-8", ECHARTS_JS) }))
        .route("/static/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON_SVG) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", FAVICON_SVG) }))
        .route("/web/help", get(help::index))
        .route("/web/help/{id}", get(help::area))
        .route("/web", get(home))
        .route("/web/", get(home))
        .route("/web/find", get(person::find).post(person::find_form))
        .route("/web/person/{id_no}", get(person::person_page))
        .route("/web/household/{household_no}", get(dashboard::household_page))
        .route("/web/region", get(dashboard::region_home))
        .route("/web/region/{code}", get(dashboard::region_page))
        .route("/web/worklist", get(worklist::worklist_page))
        .route("/web/worklist/mark", post(worklist::mark))
        .route("/web/worklist/undo", post(worklist::undo))
        .route("/web/worklist/reconcile", post(actions::reconcile))
        .route("/web/risk", get(risk::risk_page))
        .route("/web/risk/line", post(risk::set_line))
        .route("/web/audit", get(audit::audit_page))
        .route("/web/audit/run", post(actions::audit_run))
        .route("/web/audit/lead/{id}", get(audit::lead_page).post(audit::act))
        .route("/web/rectify", get(rectify::ledger_page).post(rectify::create))
        .route("/web/rectify/{id}", get(rectify::item_page))
        .route("/web/rectify/{id}/update", post(rectify::update))
        .route("/web/rectify/{id}/close", post(rectify::close))
        .route("/web/rectify/{id}/review", post(rectify::review))
        .route("/web/rectify/from-lead/{id}", post(rectify::from_lead))
        .route("/web/rectify/from-finding/{id}", post(rectify::from_finding))
        .route("/web/supervise", get(supervise::supervise_page))
        .route("/web/supervise/select", post(supervise::select))
        .route("/web/supervise/remove", post(supervise::remove))
        .route("/web/supervise/zone", post(supervise::add_zone))
        .route("/web/supervise/assign", post(supervise::assign))
        .route("/web/supervise/inspect", post(supervise::inspect))
        .route("/web/forms", get(periodic::index_page))
        .route("/web/jobs/{id}", get(jobs::job_page))
        .route("/web/jobs/{id}/status", get(jobs::job_status))
        .route("/web/forms/indicators", get(periodic::indicators_page))
        .route("/web/forms/{form}", get(periodic::grid_page))
        .route("/web/forms/{form}/entry", get(periodic::entry_page).post(periodic::entry_post))
        .route("/web/forms/{form}/return", post(periodic::return_post))
        .route("/web/forms/{form}/template", get(periodic::template_download))
        .route("/web/forms/{form}/upload", post(periodic::upload).layer(axum::extract::DefaultBodyLimit::max(periodic::MAX_UPLOAD_BYTES)))
        .route("/web/reports", get(reports::reports_page))
        .route("/web/reports/submit", post(reports::submit))
        .route("/web/scores", get(scores::scores_page))
        .route("/web/scores/open", post(scores::open))
        .route("/web/scores/{id}", get(scores::sheet_page))
        .route("/web/scores/{id}/answer", post(scores::answer))
        .route("/web/scores/{id}/auto", post(scores::auto))
        .route("/web/exit", get(exit::exit_page))
        .route("/web/exit/rectify", post(exit::to_rectify))
        .route("/web/funds", get(funds::funds_page))
        .route("/web/funds/budget", post(funds::set_budget))
        .route("/web/funds/prepay", post(funds::prepay))
        .route("/web/funds/assess", post(funds::assess))
        .route("/web/funds/statement", post(funds::draw_up))
        .route("/web/funds/step", post(funds::step))
        .route("/web/resettle", get(resettle::resettle_page))
        .route("/web/resettle/preview", post(resettle::preview_page))
        .route("/web/resettle/run", post(resettle::run))
        .route("/web/resettle/run/{id}", get(resettle::run_page))
        .route("/web/resettle/apply", post(resettle::apply))
        .route("/web/resettle/decide", post(resettle::decide))
        .route("/web/chronic", get(chronic::chronic_page))
        .route("/web/chronic/draw", post(chronic::draw))
        .route("/web/chronic/audit/{id}", get(chronic::audit_page))
        .route("/web/chronic/audit/{id}/result", post(chronic::set_result))
        .route("/web/fdc", get(fdc::fdc_page))
        .route("/web/fdc/person/{key}", get(fdc::person_page))
        .route("/web/fdc/person/{key}/plan", post(fdc::save_plan))
        .route("/web/fdc/person/{key}/service", post(fdc::add_service))
        .route("/web/mdt", get(mdt::mdt_page))
        .route("/web/mdt/scan", post(mdt::scan))
        .route("/web/mdt/case", post(mdt::add_case))
        .route("/web/mdt/case/{id}", get(mdt::case_page))
        .route("/web/mdt/case/{id}/follow", post(mdt::follow_up))
        .route("/web/mdt/lists", get(mdt::lists_page))
        .route("/web/mdt/lists/save", post(mdt::save_disease))
        .route("/web/catalogue", get(catalogue::catalogue_page))
        .route("/web/catalogue/import", post(catalogue::upload).layer(axum::extract::DefaultBodyLimit::max(catalogue::MAX_UPLOAD_BYTES)))
        .route("/web/policy", get(policy::policy_page))
        .route("/web/policy/calc", post(policy::calculate))
        .route(
            "/web/policy/compare",
            post(policy_compare::compare_page).layer(axum::extract::DefaultBodyLimit::max(policy_compare::MAX_BODY_BYTES)),
        )
        .route(
            "/web/policy/compare/xlsx",
            post(policy_compare::compare_xlsx).layer(axum::extract::DefaultBodyLimit::max(policy_compare::MAX_BODY_BYTES)),
        )
        .route(
            "/web/import",
            get(import::import_page).post(import::upload).layer(axum::extract::DefaultBodyLimit::max(import::MAX_UPLOAD_BYTES)),
        )
        .route("/web/import/template/{kind}", get(import::template))
        .route("/web/window", get(window::window_page))
        .route("/web/window/find", post(window::find))
        .route("/web/window/presettle", post(window::presettle))
        .route("/web/window/settle", post(window::settle))
        .route("/web/window/cancel", post(window::cancel))
        .route("/web/window/visit-cancel", post(window::visit_cancel))
        .route("/web/slip/{setl_id}", get(window::slip))
        .layer(axum::middleware::from_fn(server_timing))
}

/// `Server-Timing: app;dur=<ms>` on every page: the time the server spent on it (shown by the
/// browser's developer tools; read by `baozhang bench web`).
async fn server_timing(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let micros = started.elapsed().as_micros();
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={}.{:03}", micros / 1000, micros % 1000)) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

async fn home(u: WebUser) -> Redirect {
    Redirect::to(match u.p.role {
        Role::Hospital => "/web/window",
        _ => "/web/region",
    })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTpl<'a> {
    error: &'a str,
    username: &'a str,
    next: &'a str,
}

#[derive(Deserialize, Default)]
pub struct NextQ {
    #[serde(default)]
    next: String,
}

/// Only local paths: a login link must not send the user to another site. Browsers drop tabs and line
/// breaks inside a URL (so "/\t/evil.com" would be followed as "//evil.com") and read a backslash as a
/// slash; such a `next` is ignored. Anything outside visible ASCII (a Chinese query value) is
/// percent-encoded, since a `Location` header carries ASCII only.
fn safe_next(next: &str) -> String {
    let local = next.starts_with('/') && !next.starts_with("//");
    if !local || next.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return "/web/".to_string();
    }
    let mut o = String::with_capacity(next.len());
    for b in next.bytes() {
        if b.is_ascii_graphic() {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

async fn login_page(axum::extract::Query(q): axum::extract::Query<NextQ>) -> Html<String> {
    Html(LoginTpl { error: "", username: "", next: &safe_next(&q.next) }.render().unwrap_or_default())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_submit(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::edge::Peer>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(&f.next);
    match auth::login(&state, f.username.trim(), &f.password, peer.map(|p| p.0 .0.ip())).await {
        Ok((token, expires_at, _user)) => {
            let max_age = (expires_at - clock::unix_now()).max(0);
            let secure = if state.config.secure_cookies { "; Secure" } else { "" };
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let status = match e {
                ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let html = LoginTpl { error: &e.to_string(), username: f.username.trim(), next: &next }.render().unwrap_or_default();
            (status, Html(html)).into_response()
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(t) = auth::session_cookie(&headers) {
        if let Err(e) = state.store.end_session(&crate::sha256_hex(t.as_bytes())).await {
            tracing::warn!(error = %e, "could not end a session");
        }
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static("bz_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
    r
}

/// An htmx fragment (no layout).
pub fn fragment(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html).into_response()
}

/// A message box: `class` is "" (information), "ok" or "error".
#[derive(Template)]
#[template(path = "alert.html")]
pub struct Alert<'a> {
    pub class: &'a str,
    pub message: &'a str,
}

/// A fragment with an error message, still 200 so htmx swaps it in.
pub fn fragment_error(msg: &str) -> Response {
    fragment(render_fragment(&Alert { class: "error", message: msg }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("张三"), "张三");
    }

    #[test]
    fn large_sums_read_in_wan_yuan() {
        assert_eq!(wan(1_234_567_890), "1,234.57 万元");
        assert_eq!(wan(1_234_564_999), "1,234.56 万元");
        assert_eq!(wan(5_000), "0.01 万元", "half a hundredth rounds up");
        assert_eq!(wan(4_999), "0.00 万元");
        assert_eq!(wan(-15_000), "-0.02 万元");
        assert_eq!(wan(0), "0.00 万元");
    }

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(count(115_014), "115,014");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(-1_234_567), "-1,234,567");
    }

    #[test]
    fn percentages_from_basis_points() {
        assert_eq!(pct(Some(9_943)), "99.43%");
        assert_eq!(pct(Some(10_000)), "100.00%");
        assert_eq!(pct(Some(5)), "0.05%");
        assert_eq!(pct(Some(-250)), "-2.50%");
        assert_eq!(pct(None), "—");
        assert_eq!(ratio_bp(4155, 4179), Some(9943));
        assert_eq!(ratio_bp(1, 0), None);
    }

    #[test]
    fn login_redirects_stay_on_this_site() {
        assert_eq!(safe_next("/web/region/620422?year=2018"), "/web/region/620422?year=2018");
        assert_eq!(safe_next("//evil.example/"), "/web/");
        assert_eq!(safe_next("https://evil.example/"), "/web/");
        assert_eq!(safe_next("/\\evil.example"), "/web/");
        assert_eq!(safe_next(""), "/web/");
        assert_eq!(safe_next("/\t/evil.example"), "/web/");
        assert_eq!(safe_next("/web/\r\nSet-Cookie: x=1"), "/web/");
        assert_eq!(safe_next("/web/find?q=张"), "/web/find?q=%E5%BC%A0");
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(urlencode("/web/x?a=1&b=会宁"), "/web/x%3Fa%3D1%26b%3D%E4%BC%9A%E5%AE%81");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; bz_session=abc123; b=2"));
        assert_eq!(auth::session_cookie(&h).as_deref(), Some("abc123"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("bz_session=; x=1"));
        assert_eq!(auth::session_cookie(&h), None);
    }

    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(date_text(20181220), "2018-12-20");
        assert_eq!(date_text(0), "");
    }
}
