//! The edge of the service: what every connection and every request meets before a handler runs.
//!
//! - **Connections**: at most `max_connections` open at once (further ones wait in the kernel's backlog)
//!   and at most `max_connections_per_ip` from one address (further ones are closed at once); request
//!   headers must arrive within `header_read_timeout` (slowloris).
//! - **Requests**: the body is read *before* a processing slot is taken, within `body_read_timeout` and
//!   `max_body_bytes`, so slow uploads hold no slot; then one slot of the whole server
//!   (`max_in_flight`, one semaphore for every route) and one of the caller's party
//!   (`max_in_flight_per_party`: an institution by its `x-tif-paasid`, a signed-in user by session, else
//!   the address). A party over its share waits for its own slots, never for another party's.
//! - **Responses** carry the security headers (CSP, frame-ancestors, nosniff, Referrer-Policy; HSTS when
//!   the cookies are marked `Secure`, i.e. behind TLS).
//!
//! Every limit is in [`crate::Config`] and documented in docs/SECURITY.md.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;

/// The peer address of a request (inserted by [`serve_connections`]; absent in in-process tests).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Connections per address, counted while they are open.
#[derive(Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct IpSlot {
    ip: IpAddr,
    table: Arc<PerIp>,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut m = self.open.lock().expect("per-ip lock");
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot { ip, table: self.clone() })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.table.open.lock().expect("per-ip lock");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each (HTTP/1.1) until `shutdown` resolves; then
/// stops accepting and lets open connections finish their requests.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<crate::Config>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let conns = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_ip = Arc::new(PerIp::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = conns.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(ip_slot) = per_ip.take(peer.ip(), config.max_connections_per_ip.max(1)) else {
            tracing::warn!(peer = %peer.ip(), "connection refused: too many open connections from this address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = tower::ServiceExt::map_request(app.clone(), move |mut r: axum::http::Request<hyper::body::Incoming>| {
            r.extensions_mut().insert(Peer(peer));
            r
        });
        let hyper_svc = hyper_util::service::TowerToHyperService::new(svc);
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(stream), hyper_svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _held = (permit, ip_slot);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The slots of the whole server and of each party.
pub struct Admission {
    global: Arc<Semaphore>,
    parties: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_party: usize,
}

impl Admission {
    pub fn new(max_in_flight: usize, per_party: usize) -> Admission {
        Admission {
            global: Arc::new(Semaphore::new(max_in_flight.max(1))),
            parties: Mutex::new(HashMap::new()),
            per_party: per_party.max(1),
        }
    }

    fn party(&self, key: &str) -> Arc<Semaphore> {
        let mut m = self.parties.lock().expect("admission lock");
        if m.len() > 10_000 {
            // Forget idle parties (all their permits back).
            let per = self.per_party;
            m.retain(|_, s| s.available_permits() < per);
        }
        m.entry(key.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_party))).clone()
    }

    /// Waits for a slot of the party, then one of the server; `None` when `wait` passes first.
    async fn enter(&self, party: &str, wait: Duration) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let p = self.party(party);
        tokio::time::timeout(wait, async {
            let mine = p.acquire_owned().await.ok()?;
            let all = self.global.clone().acquire_owned().await.ok()?;
            Some((mine, all))
        })
        .await
        .ok()
        .flatten()
    }

    /// A slot of the party only (long uploads, which must not hold the server's slots).
    async fn enter_party(&self, party: &str, wait: Duration) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(wait, self.party(party).acquire_owned()).await.ok()?.ok()
    }

    /// Requests being processed now (for `/healthz`).
    pub fn in_flight(&self, max: usize) -> usize {
        max.saturating_sub(self.global.available_permits())
    }
}

/// Who is asking, for the per-party share: the institution of a national message together with its
/// address (the header is not yet authenticated here, so a forger elsewhere gets a party of its own and
/// cannot use up the institution's share), the session or bearer token of a user (hashed), else the
/// peer address.
fn party_of(req: &Request) -> String {
    let h = req.headers();
    let ip = match req.extensions().get::<Peer>() {
        Some(Peer(a)) => a.ip().to_string(),
        None => "local".to_string(),
    };
    if let Some(p) = h.get("x-tif-paasid").and_then(|v| v.to_str().ok()).filter(|p| !p.is_empty()) {
        return format!("inst:{}@{ip}", p.chars().take(64).collect::<String>());
    }
    let token = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .or_else(|| crate::auth::session_cookie(h));
    if let Some(t) = token {
        return format!("user:{}", &crate::sha256_hex(t.as_bytes())[..16]);
    }
    format!("ip:{ip}")
}

/// Routes whose bodies are not read here (they stream large uploads under their own limits).
fn streams_its_body(req: &Request) -> bool {
    req.method() == Method::POST && matches!(req.uri().path(), "/web/import" | "/web/catalogue/import")
}

fn is_national(req_path: &str) -> bool {
    req_path.starts_with("/fsi/")
}

/// A refusal in the form the caller reads: the national envelope on `/fsi`, JSON on `/api`, text else.
fn refusal(path: &str, status: StatusCode, msg: &str) -> Response {
    if is_national(path) {
        return crate::national::refusal_response(msg);
    }
    if path.starts_with("/api/") || path == "/healthz" {
        return (status, axum::Json(serde_json::json!({"error": msg, "code": "limit"}))).into_response();
    }
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg.to_string()).into_response()
}

pub enum BodyError {
    TooLarge,
    Slow,
    Broken,
}

/// Reads a body of at most `limit` bytes within `time`. A larger one is refused, but up to 16 × `limit`
/// of it is read and dropped first: a server that answers and closes while the client is still sending
/// makes the client's write fail, and the hospital would never see the refusal.
pub async fn read_bounded(body: Body, limit: usize, time: Duration) -> Result<axum::body::Bytes, BodyError> {
    use axum::body::HttpBody;
    let read = async move {
        let mut body = std::pin::pin!(body);
        let drain_max = limit.saturating_mul(16);
        let mut buf: Vec<u8> = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else { continue };
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > drain_max {
                return Err(BodyError::TooLarge);
            } else if !buf.is_empty() {
                buf = Vec::new();
            }
        }
        if seen > limit {
            return Err(BodyError::TooLarge);
        }
        Ok(buf.into())
    };
    tokio::time::timeout(time, read).await.unwrap_or(Err(BodyError::Slow))
}

/// The admission middleware (applied once, to the whole router).
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let cfg = state.config.clone();
    let party = party_of(&req);
    if streams_its_body(&req) {
        // A large upload streams for a long time: only a live session may start one, and it holds only
        // its party's slot (the import itself runs one at a time), never one of the server's.
        let live = match crate::auth::session_cookie(req.headers()) {
            Some(t) => state.store.session_user(&crate::sha256_hex(t.as_bytes()), crate::clock::unix_now()).await.ok().flatten().is_some(),
            None => false,
        };
        if !live {
            return refusal(&path, StatusCode::UNAUTHORIZED, "请先登录");
        }
        let Some(_mine) = state.admission.enter_party(&party, cfg.queue_timeout).await else {
            return refusal(&path, StatusCode::SERVICE_UNAVAILABLE, "系统繁忙，请稍后重试");
        };
        return next.run(req).await;
    }
    let req = if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        req
    } else {
        let (parts, body) = req.into_parts();
        match read_bounded(body, cfg.max_body_bytes, cfg.body_read_timeout).await {
            Ok(bytes) => Request::from_parts(parts, Body::from(bytes)),
            Err(BodyError::TooLarge) => {
                tracing::warn!(limit = cfg.max_body_bytes, "request refused: body too large");
                return refusal(&path, StatusCode::PAYLOAD_TOO_LARGE, &format!("请求内容过大（上限 {} 字节）", cfg.max_body_bytes));
            }
            Err(BodyError::Slow) => {
                tracing::warn!(secs = cfg.body_read_timeout.as_secs(), "request refused: body not received in time");
                return refusal(
                    &path,
                    StatusCode::REQUEST_TIMEOUT,
                    &format!("请求内容未在 {} 秒内传完，请检查网络后重试", cfg.body_read_timeout.as_secs()),
                );
            }
            Err(BodyError::Broken) => return refusal(&path, StatusCode::BAD_REQUEST, "请求内容不完整"),
        }
    };
    let Some(_permits) = state.admission.enter(&party, cfg.queue_timeout).await else {
        tracing::warn!(party = %party.split(':').next().unwrap_or(""), "request refused: no processing slot in time");
        return refusal(&path, StatusCode::SERVICE_UNAVAILABLE, "系统繁忙（本机构或本账号同时提交的请求过多），请稍后重试");
    };
    next.run(req).await
}

/// Security headers on every response.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let swagger = req.uri().path().starts_with("/api/docs");
    let national = req.uri().path().starts_with("/fsi/");
    let mut r = next.run(req).await;
    // A hospital system reads the national envelope, also when its request ran out of time.
    if national && r.status() == axum::http::StatusCode::REQUEST_TIMEOUT {
        tracing::warn!("national request timed out");
        r = crate::national::refusal_response(
            "处理超时：写交易可能已经生效。请用原报文编号（msgid）重发以取得原应答，或按冲正流程（2601）处理",
        );
    }
    let h = r.headers_mut();
    // Swagger UI (vendored) runs an inline initialiser; every other page runs only our own files.
    let csp = if swagger {
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    } else {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Addresses never leave for other sites; same-origin requests keep their Origin (with `no-referrer` a
    // browser sends `Origin: null` on its own form posts).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if state.config.secure_cookies {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    r
}
