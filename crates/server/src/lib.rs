//! The baozhang service (`baozhang serve`): the national medical-insurance interface for hospital
//! systems (`POST /fsi/api/…`, POLICY §6), the JSON REST API with its OpenAPI document and vendored
//! Swagger UI, and authentication and scoping.
//!
//! Architecture invariants:
//! - this crate computes no benefit itself: amounts come from `baozhang_core::engine`;
//! - it writes no ledger row itself: all money writes go through the single [`writer`] task, which calls
//!   `baozhang_store::ledger` inside one transaction per batch (group commit);
//! - logs carry no name and no ID number: persons are logged by `psn_no` at most.

pub mod api;
pub mod auth;
pub mod bench;
pub mod bench_web;
pub mod clock;
pub mod national;
pub mod openapi;
pub mod policies;
pub mod testkit;
pub mod web;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use baozhang_store::Store;

pub use policies::Policies;

/// Limits of the service; every one of them bounds memory or time a client can take.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    /// Largest request body accepted (national messages with hundreds of fee lines stay far below).
    pub max_body_bytes: usize,
    /// Requests handled at once; further connections wait in the kernel's backlog.
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    /// Most write transactions committed together (one fsync for the group).
    pub max_batch: usize,
    /// Accepted clock skew of signed national requests.
    pub signature_window_secs: i64,
    /// Lifetime of a 9001 sign-in and of a user session.
    pub sign_in_ttl_secs: i64,
    pub session_ttl_secs: i64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(30),
            max_batch: 256,
            signature_window_secs: 300,
            sign_in_ttl_secs: 24 * 3600,
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub policies: Arc<Policies>,
    pub writer: writer::WriterHandle,
    pub config: Arc<Config>,
    pub cache: Arc<AuthCache>,
    pub web: Arc<web::WebState>,
}

/// Institutions and sign-ins as recently read: every national request needs both, and they change
/// rarely (a sign-in never; an institution when an administrator disables it — seen within `TTL`).
#[derive(Default)]
pub struct AuthCache {
    institutions: std::sync::Mutex<std::collections::HashMap<String, (baozhang_store::service::Institution, std::time::Instant)>>,
    /// sign_no → (fixmedins_code, expires_at unix seconds)
    sign_ins: std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>,
    /// (institution, nonce) → until when it is remembered (its timestamp's window end): a signed request
    /// can not be replayed while its timestamp is still accepted.
    nonces: std::sync::Mutex<std::collections::HashMap<(String, String), i64>>,
}

impl AuthCache {
    const TTL: Duration = Duration::from_secs(30);
    /// Entries kept at most (a full cache is simply cleared: the database is the truth).
    const MAX: usize = 100_000;

    pub async fn institution(&self, store: &Store, code: &str) -> baozhang_store::Result<Option<baozhang_store::service::Institution>> {
        if let Some((i, at)) = self.institutions.lock().expect("cache lock").get(code) {
            if at.elapsed() < Self::TTL {
                return Ok(Some(i.clone()));
            }
        }
        let found = store.institution(code).await?;
        if let Some(i) = &found {
            let mut m = self.institutions.lock().expect("cache lock");
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(code.to_string(), (i.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }

    /// Records a nonce; false if the institution used it already within the signature window. (Held in
    /// memory: after a restart a replayed write still meets the msgid check; a replayed read only reads.)
    pub fn fresh_nonce(&self, fixmedins_code: &str, nonce: &str, remember_until: i64, now_unix: i64) -> bool {
        let mut m = self.nonces.lock().expect("cache lock");
        if m.len() >= Self::MAX {
            m.retain(|_, until| *until >= now_unix);
            if m.len() >= Self::MAX {
                // Still full of live nonces: a flood. Refuse rather than forget them.
                return false;
            }
        }
        let key = (fixmedins_code.to_string(), nonce.to_string());
        match m.get(&key) {
            Some(until) if *until >= now_unix => false,
            _ => {
                m.insert(key, remember_until);
                true
            }
        }
    }

    /// The institution of a live sign-in.
    pub async fn sign_in(&self, store: &Store, sign_no: &str, now_unix: i64) -> baozhang_store::Result<Option<String>> {
        if let Some((code, exp)) = self.sign_ins.lock().expect("cache lock").get(sign_no) {
            return Ok((*exp > now_unix).then(|| code.clone()));
        }
        let found = store.sign_in(sign_no).await?;
        if let Some((code, exp)) = &found {
            let mut m = self.sign_ins.lock().expect("cache lock");
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(sign_no.to_string(), (code.clone(), *exp));
        }
        Ok(found.filter(|(_, exp)| *exp > now_unix).map(|(c, _)| c))
    }
}

impl AppState {
    /// Starts the writer task on the current runtime.
    pub fn new(store: Store, policies: Policies, config: Config) -> AppState {
        let policies = Arc::new(policies);
        let writer = writer::spawn(store.clone(), policies.clone(), config.max_batch);
        tokio::spawn(checkpointer(store.clone()));
        AppState {
            store,
            policies,
            writer,
            config: Arc::new(config),
            cache: Arc::new(AuthCache::default()),
            web: Arc::new(web::WebState::default()),
        }
    }
}

/// Checkpoints SQLite's WAL beside the writer (see `OpenOptions::background_checkpoint`), four times a
/// second; stops when the store's pool is closed.
async fn checkpointer(store: Store) {
    if store.backend() != baozhang_store::Backend::Sqlite {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if store.pool().is_closed() {
            return;
        }
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

/// All routes of the service.
pub fn router(state: AppState) -> Router {
    let max_in_flight = state.config.max_in_flight;
    let timeout = state.config.request_timeout;
    Router::new()
        .merge(national::routes())
        .merge(api::routes())
        .merge(openapi::routes())
        .merge(web::routes())
        .fallback(api::not_found)
        .with_state(state)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(tower::limit::ConcurrencyLimitLayer::new(max_in_flight))
}

/// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish, and waits
/// for the writer to commit what it has been given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let writer = state.writer.clone();
    // The shipped major-disease lists, on a database that has none of them yet (edited lists are kept).
    if let Err(e) = state.store.ensure_mdt_lists(&baozhang_ingest::health::shipped_mdt_lists()).await {
        tracing::warn!(error = %e, "could not load the shipped major-disease lists");
    }
    let app = router(state);
    axum::serve(listener, app.into_make_service()).with_graceful_shutdown(shutdown).await?;
    writer.close().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[usize::from(b >> 4)] as char);
        s.push(H[usize::from(b & 15)] as char);
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// `n` random bytes as hex (tokens, sign numbers, secrets).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).expect("the operating system's random source works");
    hex(&b)
}
