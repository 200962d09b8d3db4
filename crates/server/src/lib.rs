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
pub mod edge;
pub mod guard;
pub mod national;
pub mod openapi;
pub mod policies;
pub mod resettle;
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
    /// Requests processed at once by the whole server (one limit for every route).
    pub max_in_flight: usize,
    /// Requests processed at once for one party (an institution, a user session, an address); a party
    /// over its share waits for its own slots.
    pub max_in_flight_per_party: usize,
    /// How long a request may wait for its slots before it is refused as busy.
    pub queue_timeout: Duration,
    pub request_timeout: Duration,
    /// Open connections at once (further ones wait in the kernel's backlog) and per address (further
    /// ones are closed).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Time for a request's headers to arrive (slowloris) and for its body (slow uploads).
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// Fee lines one visit may hold (2301/2204 uploads add up to it).
    pub max_fee_lines_per_visit: usize,
    /// Writes one institution may have queued for the writer at once.
    pub max_queued_writes_per_institution: usize,
    /// Live nonces remembered per institution (a flood beyond it is refused for that institution only).
    pub max_nonces_per_institution: usize,
    /// Mark cookies `Secure` and send HSTS (set when the service is behind TLS).
    pub secure_cookies: bool,
    /// Origins besides the request's own `Host` from which state-changing browser requests are accepted
    /// (e.g. `https://ybj.example.gov.cn` behind a reverse proxy that rewrites `Host`).
    pub trusted_origins: Vec<String>,
    /// Login: failures of one account (or one address) within `login_window_secs` before it is locked
    /// for a back-off that doubles with each further failure, up to `login_max_lock_secs`.
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_ip: u32,
    pub login_window_secs: i64,
    pub login_max_lock_secs: i64,
    /// Password hashes computed at once (argon2 takes ~20 MB and ~50 ms each, off the async workers).
    pub max_concurrent_hashes: usize,
    /// Fault injection for the tests of the writer's panic recovery: a write job whose msgid ends with
    /// this text panics inside the writer. Never set in production.
    #[doc(hidden)]
    pub panic_on_msgid_suffix: Option<String>,
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
            max_in_flight_per_party: 32,
            queue_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 2048,
            max_connections_per_ip: 128,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(15),
            max_fee_lines_per_visit: 20_000,
            max_queued_writes_per_institution: 16,
            max_nonces_per_institution: 50_000,
            secure_cookies: false,
            trusted_origins: Vec::new(),
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 20,
            login_window_secs: 900,
            login_max_lock_secs: 900,
            max_concurrent_hashes: 2,
            panic_on_msgid_suffix: None,
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
    pub admission: Arc<edge::Admission>,
    pub guard: Arc<guard::Guard>,
}

/// Institutions and sign-ins as recently read: every national request needs both, and they change
/// rarely (a sign-in when 9002 ends it, an institution when an administrator disables it — both seen within `TTL`).
#[derive(Default)]
pub struct AuthCache {
    /// How many catalogue items are live (0: no catalogue loaded; fee lines are classified as sent).
    catalogue: std::sync::Mutex<Option<(i64, std::time::Instant)>>,
    /// Gateway accounts by paasid (None: no such account — remembered too, as most callers of the first
    /// deployments sign as their institution).
    accounts: std::sync::Mutex<std::collections::HashMap<String, (Option<baozhang_store::service::Account>, std::time::Instant)>>,
    institutions: std::sync::Mutex<std::collections::HashMap<String, (baozhang_store::service::Institution, std::time::Instant)>>,
    /// sign_no → (fixmedins_code, expires_at unix seconds)
    /// (read at: re-read after `TTL`, so a sign-out (9002) at another process takes effect here too)
    sign_ins: std::sync::Mutex<std::collections::HashMap<String, (String, i64, std::time::Instant)>>,
    /// institution → nonce → until when it is remembered (its timestamp's window end): a signed request
    /// can not be replayed while its timestamp is still accepted.
    nonces: std::sync::Mutex<std::collections::HashMap<String, std::collections::HashMap<String, i64>>>,
    /// institution → its share of the writer's queue.
    write_slots: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// What the in-memory nonce check says.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    Reused,
    /// The institution has its quota of live nonces: refused for that institution only.
    Flood,
}

impl AuthCache {
    const TTL: Duration = Duration::from_secs(30);
    /// Entries kept at most (a full cache is simply cleared: the database is the truth). For nonces:
    /// institutions with live nonces.
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

    pub async fn account(&self, store: &Store, paasid: &str) -> baozhang_store::Result<Option<baozhang_store::service::Account>> {
        if let Some((a, at)) = self.accounts.lock().expect("cache lock").get(paasid) {
            if at.elapsed() < Self::TTL {
                return Ok(a.clone());
            }
        }
        let found = store.account(paasid).await?;
        let mut m = self.accounts.lock().expect("cache lock");
        if m.len() >= Self::MAX {
            m.clear();
        }
        m.insert(paasid.to_string(), (found.clone(), std::time::Instant::now()));
        Ok(found)
    }

    /// The number of live catalogue items, read at most every `TTL`.
    pub async fn catalogue_size(&self, store: &Store) -> baozhang_store::Result<i64> {
        if let Some((n, at)) = *self.catalogue.lock().expect("cache lock") {
            if at.elapsed() < Self::TTL {
                return Ok(n);
            }
        }
        let n = store.catalogue_size().await?;
        *self.catalogue.lock().expect("cache lock") = Some((n, std::time::Instant::now()));
        Ok(n)
    }

    /// Forgets the catalogue size (an import just changed it).
    pub fn forget_catalogue(&self) {
        *self.catalogue.lock().expect("cache lock") = None;
    }

    /// Forgets a sign-in (9002 ended it).
    pub fn forget_sign_in(&self, sign_no: &str) {
        self.sign_ins.lock().expect("cache lock").remove(sign_no);
    }

    /// Forgets what is cached of an account (rotated, disabled or granted from this process).
    pub fn forget_account(&self, paasid: &str) {
        self.accounts.lock().expect("cache lock").remove(paasid);
    }

    /// Checks and remembers a nonce in memory (the first, cheap check; the durable one is the
    /// `national_nonces` row written with the request). Each institution has its own table and quota, so a
    /// flood of fresh nonces from one institution refuses that institution only.
    pub fn fresh_nonce(&self, fixmedins_code: &str, nonce: &str, remember_until: i64, now_unix: i64, quota: usize) -> NonceCheck {
        let mut all = self.nonces.lock().expect("cache lock");
        if all.len() >= Self::MAX && !all.contains_key(fixmedins_code) {
            all.retain(|_, m| {
                m.retain(|_, until| *until >= now_unix);
                !m.is_empty()
            });
        }
        let m = all.entry(fixmedins_code.to_string()).or_default();
        if let Some(until) = m.get(nonce) {
            if *until >= now_unix {
                return NonceCheck::Reused;
            }
        }
        if m.len() >= quota.max(1) {
            m.retain(|_, until| *until >= now_unix);
            if m.len() >= quota.max(1) {
                // Still full of live nonces: this institution is flooding. Refuse rather than forget them.
                return NonceCheck::Flood;
            }
        }
        m.insert(nonce.to_string(), remember_until);
        NonceCheck::Fresh
    }

    /// A slot of the institution's share of the writer's queue, waiting at most `wait`.
    pub async fn write_slot(&self, fixmedins_code: &str, share: usize, wait: Duration) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let sem = {
            let mut m = self.write_slots.lock().expect("cache lock");
            if m.len() > 10_000 {
                m.retain(|_, s| s.available_permits() < share.max(1));
            }
            m.entry(fixmedins_code.to_string()).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(share.max(1)))).clone()
        };
        tokio::time::timeout(wait, sem.acquire_owned()).await.ok()?.ok()
    }

    /// The institution of a live sign-in.
    pub async fn sign_in(&self, store: &Store, sign_no: &str, now_unix: i64) -> baozhang_store::Result<Option<String>> {
        if let Some((code, exp, at)) = self.sign_ins.lock().expect("cache lock").get(sign_no) {
            if at.elapsed() < Self::TTL {
                return Ok((*exp > now_unix).then(|| code.clone()));
            }
        }
        let found = store.sign_in(sign_no).await?;
        if let Some((code, exp)) = &found {
            let mut m = self.sign_ins.lock().expect("cache lock");
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(sign_no.to_string(), (code.clone(), *exp, std::time::Instant::now()));
        }
        Ok(found.filter(|(_, exp)| *exp > now_unix).map(|(c, _)| c))
    }
}

impl AppState {
    /// Starts the writer task on the current runtime.
    pub fn new(store: Store, policies: Policies, config: Config) -> AppState {
        let policies = Arc::new(policies);
        let writer = writer::spawn(store.clone(), policies.clone(), config.max_batch, config.panic_on_msgid_suffix.clone());
        tokio::spawn(checkpointer(store.clone()));
        tokio::spawn(nonce_pruner(store.clone()));
        tokio::spawn(statistician(store.clone()));
        AppState {
            store,
            policies,
            writer,
            admission: Arc::new(edge::Admission::new(config.max_in_flight, config.max_in_flight_per_party)),
            guard: Arc::new(guard::Guard::new(&config)),
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

/// PostgreSQL: refreshes the planner's statistics of the tables that changed (`Store::analyze_changed`)
/// every ten seconds, and once a minute makes the partitions that should exist (`Store::maintain_partitions`:
/// a new year, a new prefecture, rows waiting in a default partition), outside any request; stops when the
/// store's pool is closed.
async fn statistician(store: Store) {
    if store.backend() != baozhang_store::Backend::Postgres {
        return;
    }
    for round in 1u64.. {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if store.pool().is_closed() {
            return;
        }
        if round % 6 == 0 {
            if let Err(e) = store.maintain_partitions().await {
                tracing::warn!(error = %e, "maintaining partitions failed; rows wait in the default partitions, will retry");
            }
        }
        if let Err(e) = store.analyze_changed(500).await {
            tracing::warn!(error = %e, "refreshing planner statistics failed; will retry");
        }
    }
}

/// Deletes expired nonces once a minute; stops when the store's pool is closed.
async fn nonce_pruner(store: Store) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        if store.pool().is_closed() {
            return;
        }
        if let Err(e) = store.prune_nonces(clock::unix_now()).await {
            tracing::warn!(error = %e, "pruning nonces failed; will retry");
        }
        // Files exchanged with hospitals (9101/9102) past their download period.
        if let Err(e) = store.prune_files(clock::unix_now()).await {
            tracing::warn!(error = %e, "pruning exchange files failed; will retry");
        }
    }
}

/// All routes of the service. The layers are applied to the router as a whole (one admission limit and
/// one CSRF check for every route; `Router::layer` wraps each route in its own copy of a layer, which for a
/// concurrency limit would mean one limit per route).
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let routes = Router::new()
        .merge(national::routes())
        .merge(api::routes())
        .merge(openapi::routes())
        .merge(web::routes())
        .fallback(api::not_found)
        .with_state(state.clone());
    let stack = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::security_headers))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::admit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::csrf))
        .layer(axum::middleware::from_fn_with_state(state, web::cache::forget_on_write));
    Router::new().fallback_service(stack.service(routes))
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
    // Re-settlement runs a previous process left unfinished go on from their last committed person-year.
    match resettle::resume_unfinished(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "resuming unfinished re-settlement runs"),
        Err(e) => tracing::warn!(error = %e, "could not look for unfinished re-settlement runs"),
    }
    let config = state.config.clone();
    let app = router(state);
    edge::serve_connections(listener, app, config, shutdown).await?;
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
