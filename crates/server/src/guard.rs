//! Guards of the browser-facing boundary: CSRF (origin check plus a per-session token), login
//! throttling (back-off and lockout per account and per address, failures audited), and password
//! hashing off the async workers behind a small semaphore.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use tokio::sync::Semaphore;

use crate::edge::Peer;
use crate::{auth, AppState, Config};

/// What the guards keep between requests.
pub struct Guard {
    csrf_key: tokio::sync::OnceCell<Vec<u8>>,
    hashes: Semaphore,
    failures: Mutex<HashMap<String, Failures>>,
}

/// Recent login failures of one account or one address.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    first_at: i64,
    locked_until: i64,
}

/// Why a login was not even tried.
#[derive(Debug, PartialEq, Eq)]
pub struct Locked {
    pub until: i64,
    pub by_address: bool,
}

impl Guard {
    pub fn new(config: &Config) -> Guard {
        Guard {
            csrf_key: tokio::sync::OnceCell::new(),
            hashes: Semaphore::new(config.max_concurrent_hashes.max(1)),
            failures: Mutex::new(HashMap::new()),
        }
    }

    async fn key(&self, store: &baozhang_store::Store) -> Result<&[u8], baozhang_store::StoreError> {
        self.csrf_key
            .get_or_try_init(|| async {
                let hex = store.secret("web.csrf", &crate::random_hex(32)).await?;
                Ok(hex.into_bytes())
            })
            .await
            .map(Vec::as_slice)
    }

    /// The CSRF token of a session: HMAC of the session token's hash under a server secret (the same on
    /// every server process of the database), so it needs no storage and dies with the session.
    pub async fn csrf_token(&self, store: &baozhang_store::Store, session_token: &str) -> Result<String, baozhang_store::StoreError> {
        let key = self.key(store).await?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"csrf\n");
        mac.update(crate::sha256_hex(session_token.as_bytes()).as_bytes());
        Ok(crate::hex(&mac.finalize().into_bytes()[..20]))
    }

    /// Runs a password check or hash on the blocking pool, at most `max_concurrent_hashes` at once.
    pub async fn hash_work<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self.hashes.acquire().await.expect("the hash semaphore is never closed");
        tokio::task::spawn_blocking(f).await.expect("password hashing does not panic")
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> (String, Option<String>) {
        (format!("u:{}", username.to_lowercase()), ip.map(|i| format!("ip:{i}")))
    }

    /// Whether the account or the address is locked now.
    pub fn locked(&self, username: &str, ip: Option<IpAddr>, now: i64) -> Option<Locked> {
        let (uk, ik) = Guard::keys(username, ip);
        let m = self.failures.lock().expect("login lock");
        if let Some(f) = ik.as_ref().and_then(|k| m.get(k)).filter(|f| f.locked_until > now) {
            return Some(Locked { until: f.locked_until, by_address: true });
        }
        m.get(&uk).filter(|f| f.locked_until > now).map(|f| Locked { until: f.locked_until, by_address: false })
    }

    /// Counts a failure; returns the lock it caused, if any. The lock doubles with every failure past the
    /// limit (60 s, 120 s, … up to `login_max_lock_secs`).
    pub fn failed(&self, cfg: &Config, username: &str, ip: Option<IpAddr>, now: i64) -> Option<Locked> {
        let (uk, ik) = Guard::keys(username, ip);
        let mut m = self.failures.lock().expect("login lock");
        if m.len() > 100_000 {
            m.retain(|_, f| f.locked_until > now || now - f.first_at < cfg.login_window_secs);
        }
        let mut bump = |key: String, max: u32| -> Option<i64> {
            let f = m.entry(key).or_default();
            if now - f.first_at >= cfg.login_window_secs && f.locked_until <= now {
                *f = Failures { count: 0, first_at: now, locked_until: 0 };
            }
            f.count += 1;
            if f.count >= max {
                let over = (f.count - max).min(16);
                let secs = (60i64 << over).min(cfg.login_max_lock_secs.max(1));
                f.locked_until = now + secs;
                return Some(f.locked_until);
            }
            None
        };
        let by_ip = ik.and_then(|k| bump(k, cfg.login_max_failures_per_ip));
        let by_account = bump(uk, cfg.login_max_failures_per_account);
        match (by_ip, by_account) {
            (Some(u), _) => Some(Locked { until: u, by_address: true }),
            (None, Some(u)) => Some(Locked { until: u, by_address: false }),
            _ => None,
        }
    }

    /// A successful login clears the account's failures (not the address's: one right password does
    /// not license guessing others).
    pub fn succeeded(&self, username: &str) {
        let (uk, _) = Guard::keys(username, None);
        self.failures.lock().expect("login lock").remove(&uk);
    }
}

// ───────────────────────────── CSRF ─────────────────────────────

/// The form field and header that carry the token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// What a request without the right token is told.
pub const CSRF_REFUSAL: &str = "页面已过期或请求来源无法确认（缺少或错误的校验码），请刷新页面后重试";

/// Marks a multipart request whose token is checked by its handler (the token is a field of the body,
/// which the middleware does not read): the expected token.
#[derive(Clone, Debug)]
pub struct CsrfPending(pub String);

fn forbidden(path: &str, msg: &str) -> Response {
    if path.starts_with("/api/") {
        return (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": msg, "code": "csrf"}))).into_response();
    }
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.to_string()).into_response()
}

/// The authority (`host[:port]`) of an origin like `https://host:port`.
fn authority(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://").map(|(_, r)| r)?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// Whether the browser says the request comes from this site. `Sec-Fetch-Site` (which no page script can
/// set) decides when present: same-origin or none. Otherwise an `Origin` whose authority is the `Host` (or
/// a trusted origin). Browsers too old to send either, or privacy settings that send `Origin: null`, are
/// covered by the token alone.
pub fn same_site(headers: &HeaderMap, trusted: &[String]) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|o| *o != "null") {
        if trusted.iter().any(|t| t.trim_end_matches('/') == origin) {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        return !host.is_empty() && authority(origin) == Some(host);
    }
    true
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn query_field(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Constant-time comparison of two tokens.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF middleware: every state-changing request made with the session cookie must come from this
/// site (origin check) and carry the session's token (form field `csrf` or header `X-CSRF-Token`; a
/// multipart upload's field is checked by its handler). The signed national interface and bearer-token
/// API calls carry no ambient credential and are not subject to it; the login form gets the origin check.
pub async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || req.uri().path().starts_with("/fsi/") {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let cookie = auth::session_cookie(req.headers());
    let bearer = req.headers().get(header::AUTHORIZATION).is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
    let cross_site = !same_site(req.headers(), &state.config.trusted_origins);
    if path == "/login" || path == "/api/login" {
        // Before a session exists: the origin check alone (login CSRF).
        if cross_site && path == "/login" {
            tracing::warn!(path = %path, "cross-site login refused");
            return forbidden(&path, "请求来源不是本系统页面，已拒绝（跨站请求）");
        }
        return next.run(req).await;
    }
    // A bearer token is not ambient (a forged cross-site request cannot carry it); without a cookie there
    // is nothing a forged request could borrow (it is refused as unauthenticated).
    let Some(session) = cookie.filter(|_| !bearer) else { return next.run(req).await };
    if cross_site {
        tracing::warn!(path = %path, "cross-site request refused");
        return forbidden(&path, "请求来源不是本系统页面，已拒绝（跨站请求）");
    }
    let expected = match state.guard.csrf_token(&state.store, &session).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "no CSRF key");
            return forbidden(&path, "系统暂时无法处理，请稍后重试");
        }
    };
    let multipart =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("multipart/form-data"));
    let mut given =
        req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string).or_else(|| query_field(&req, CSRF_FIELD));
    let (parts, body) = req.into_parts();
    let mut req = if given.is_none() && !multipart {
        // The body was read whole by the admission layer (it is in memory): look at the form field.
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        given = form_field(&bytes, CSRF_FIELD);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    match given {
        Some(g) if same_token(&g, &expected) => next.run(req).await,
        None if multipart => {
            req.extensions_mut().insert(CsrfPending(expected));
            next.run(req).await
        }
        _ => {
            tracing::warn!(path = %path, "request without a valid CSRF token refused");
            forbidden(&path, CSRF_REFUSAL)
        }
    }
}

/// Checks a multipart request's `csrf` field against what the middleware expected.
pub fn check_pending(pending: Option<&CsrfPending>, given: Option<&str>) -> bool {
    match pending {
        None => true,
        Some(CsrfPending(t)) => given.is_some_and(|g| same_token(g, t)),
    }
}

/// Inserts the token as a hidden field into every `<form … method="post" …>` of a page.
pub fn add_token_to_forms(html: &str, token: &str) -> String {
    let field = format!("<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{token}\">");
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(i) = rest.find("<form") {
        let Some(end) = rest[i..].find('>') else { break };
        let tag = &rest[i..i + end + 1];
        out.push_str(&rest[..i + end + 1]);
        if tag.to_ascii_lowercase().contains("method=\"post\"") {
            out.push_str(&field);
        }
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The peer address of a request, if the connection layer recorded one.
pub fn peer_ip(parts_ext: &axum::http::Extensions) -> Option<IpAddr> {
    parts_ext.get::<Peer>().map(|p| p.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forms_that_post_get_the_token_and_others_do_not() {
        let html =
            "<form method=\"get\" action=\"/x\"><input></form><form class=\"a\" method=\"post\" action=\"/y\"><button></button></form>";
        let out = add_token_to_forms(html, "t0k");
        assert_eq!(out.matches("name=\"csrf\" value=\"t0k\"").count(), 1);
        assert!(out.contains("action=\"/y\"><input type=\"hidden\" name=\"csrf\" value=\"t0k\"><button>"));
    }

    #[test]
    fn only_this_sites_origin_passes() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_site(&h, &[]), "no origin headers: old browser, token decides");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_site(&h, &[]));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_site(&h, &[]));
        assert!(same_site(&h, &["http://evil.example".into()]), "a trusted origin");
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_site(&h, &[]));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&h, &[]));
        h.remove("sec-fetch-site");
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_site(&h, &[]), "an opaque origin: the token decides");
    }

    #[test]
    fn failures_lock_an_account_then_back_off_longer() {
        let cfg = Config::default();
        let g = Guard::new(&cfg);
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        for i in 1..cfg.login_max_failures_per_account {
            assert_eq!(g.failed(&cfg, "wang", ip, 1000 + i64::from(i)), None);
        }
        let l = g.failed(&cfg, "Wang", ip, 1010).expect("locked at the limit");
        assert_eq!(l.until, 1070);
        assert!(!l.by_address);
        assert!(g.locked("wang", Some("10.9.9.9".parse().unwrap()), 1069).is_some(), "the account, from any address");
        assert!(g.locked("wang", ip, 1070).is_none(), "the lock ends");
        let l = g.failed(&cfg, "wang", ip, 1071).expect("still past the limit");
        assert_eq!(l.until, 1071 + 120, "doubles");
        assert!(g.locked("li", ip, 1072).is_none(), "another account from the same address is not locked yet");
    }
}
