//! `spawn_app()`: a service on port 0 with a fresh database (SQLite file, or a fresh PostgreSQL
//! database when asked), migrations applied, people seeded, one hospital signed in.
#![allow(dead_code)]

use baozhang_server::testkit::{add_hospital, seed_people, NatClient, SeedPerson};
use baozhang_server::{AppState, Config, Policies};
use baozhang_store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Db; 2] = [Db::Sqlite, Db::Postgres];

pub struct App {
    pub base: String,
    pub store: Store,
    pub people: Vec<SeedPerson>,
    pub hospital: NatClient,
    pub url: String,
    pub _dir: tempfile::TempDir,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
}

fn pg_admin_url() -> String {
    std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh, empty database URL of the given kind.
pub async fn fresh_db(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("t.db").display()),
        Db::Postgres => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let admin = pg_admin_url();
            let name = format!("bz_srv_{}", baozhang_server::random_hex(6));
            let mut c = sqlx::AnyConnection::connect(&admin).await.expect("PostgreSQL reachable (BAOZHANG_TEST_PG)");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await.expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

pub async fn spawn_app(db: Db, people: usize) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_db(db, dir.path()).await;
    let store = Store::open(&url).await.unwrap();
    let people = seed_people(&store, people, dir.path()).await.unwrap();
    let secret = add_hospital(&store, "H62042200001", 2).await.unwrap();
    let (base, shutdown, task) = start(store.clone()).await;
    let mut hospital = NatClient::new(&base, "H62042200001", &secret);
    hospital.sign_in().await.unwrap();
    App { base, store, people, hospital, url, _dir: dir, shutdown: Some(shutdown), task: Some(task) }
}

/// Starts a server over `store` on 127.0.0.1:0.
pub async fn start(store: Store) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store, Policies::reference(), Config::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        baozhang_server::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (base, tx, task)
}

impl App {
    /// A second signed-in hospital (for access-control tests).
    pub async fn other_hospital(&self, code: &str) -> NatClient {
        let secret = add_hospital(&self.store, code, 1).await.unwrap();
        let mut c = NatClient::new(&self.base, code, &secret);
        c.sign_in().await.unwrap();
        c
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

// ───────────────────────────── helpers shared by the integration tests ─────────────────────────────

/// Whether `s` has at least one CJK ideograph (every message to people is in Chinese).
pub fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c))
}

/// Posts `body` to the national endpoint with the given headers (`None` = the header is left out);
/// returns the HTTP status and the body text.
pub async fn post_with_headers(c: &NatClient, body: Vec<u8>, headers: &[(&str, Option<String>)]) -> (u16, String) {
    let mut rb = c.http.post(format!("{}/fsi/api/fsiIntegratedService", c.base)).header("content-type", "application/json");
    for (k, v) in headers {
        if let Some(v) = v {
            rb = rb.header(*k, v);
        }
    }
    let r = rb.body(body).send().await.expect("the server answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("a body"))
}

/// Posts `body` signed like [`NatClient::post_raw`], but also returns the HTTP status.
pub async fn post_signed(c: &NatClient, body: Vec<u8>) -> (u16, String) {
    let ts = baozhang_server::clock::unix_now().to_string();
    let nonce = baozhang_server::random_hex(8);
    let sig = baozhang_server::national::sign(&c.secret, &ts, &nonce, &body);
    post_with_headers(
        c,
        body,
        &[
            ("x-tif-paasid", Some(c.fixmedins_code.clone())),
            ("x-tif-timestamp", Some(ts)),
            ("x-tif-nonce", Some(nonce)),
            ("x-tif-signature", Some(sig)),
        ],
    )
    .await
}

/// Parses a national response; panics with the text when it is not the envelope.
pub fn parse_resp(text: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
    assert!(v.get("infcode").is_some(), "no infcode: {text}");
    v
}

/// Asserts a refusal: infcode -1 and a Chinese err_msg; returns the err_msg.
pub fn refused(v: &serde_json::Value) -> String {
    assert_eq!(v["infcode"], -1, "expected a refusal: {v}");
    let m = v["err_msg"].as_str().unwrap_or_else(|| panic!("err_msg is not text: {v}")).to_string();
    assert!(!m.is_empty() && has_cjk(&m), "err_msg should be Chinese: {v}");
    m
}

/// Asserts success (infcode 0).
pub fn ok(v: &serde_json::Value) {
    assert_eq!(v["infcode"], 0, "expected success: {v}");
}

/// Every settlement row (live and cancellations), in commit order.
pub async fn all_settlements(store: &Store) -> Vec<baozhang_store::ledger::StoredSettlement> {
    store.settlements(&baozhang_store::ledger::SettlementFilter { limit: 1000, ..Default::default() }).await.unwrap()
}

pub async fn assert_ledger_ok(store: &Store) -> baozhang_store::ledger::VerifyReport {
    let rep = baozhang_store::ledger::verify(store).await.unwrap();
    assert!(rep.ok(), "ledger verify: {:?}", rep.problems);
    rep
}

/// Fen as the yuan text the responses carry ("1234.50").
pub fn yuan(f: i64) -> String {
    baozhang_core::Fen(f).to_string()
}

/// A second server over the same database (a second `Store` opened on the same URL): another process
/// as far as the database can tell. Returns a client of the first hospital pointed at it.
pub struct Twin {
    pub base: String,
    pub store: Store,
    pub hospital: NatClient,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    pub async fn twin(&self) -> Twin {
        let store = Store::open(&self.url).await.unwrap();
        let (base, shutdown, task) = start(store.clone()).await;
        let mut hospital = self.hospital.clone(); // shares the msgid counter: no collisions
        hospital.base = base.clone();
        Twin { base, store, hospital, shutdown: Some(shutdown), task: Some(task) }
    }
}

impl Twin {
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A REST client with an optional bearer token.
pub struct Rest {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Rest {
    pub fn anonymous(base: &str) -> Rest {
        Rest { http: reqwest::Client::new(), base: base.to_string(), token: None }
    }

    /// Logs in through `POST /api/login`.
    pub async fn login(base: &str, username: &str, password: &str) -> Rest {
        let mut r = Rest::anonymous(base);
        let (status, v) = r.post("/api/login", serde_json::json!({"username": username, "password": password})).await;
        assert_eq!(status, 200, "login of {username}: {v}");
        r.token = Some(v["token"].as_str().expect("a token").to_string());
        r
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        let r = rb.send().await.expect("the server answers");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let mut rb = self.http.post(format!("{}{path}", self.base)).header("content-type", "application/json").body(body.to_string());
        if let Some(t) = &self.token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        let r = rb.send().await.expect("the server answers");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}
