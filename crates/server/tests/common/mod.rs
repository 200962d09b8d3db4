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
    spawn_app_with(db, people, Config::default()).await
}

/// [`spawn_app`] with other limits.
pub async fn spawn_app_with(db: Db, people: usize, config: Config) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_db(db, dir.path()).await;
    let store = Store::open(&url).await.unwrap();
    let people = seed_people(&store, people, dir.path()).await.unwrap();
    let secret = add_hospital(&store, "H62042200001", 2).await.unwrap();
    let (base, shutdown, task) = start_with(store.clone(), config).await;
    let mut hospital = NatClient::new(&base, "H62042200001", &secret);
    hospital.sign_in().await.unwrap();
    App { base, store, people, hospital, url, _dir: dir, shutdown: Some(shutdown), task: Some(task) }
}

/// Starts a server over `store` on 127.0.0.1:0.
pub async fn start(store: Store) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    start_with(store, Config::default()).await
}

/// Starts a server with the given limits over `store` on 127.0.0.1:0.
pub async fn start_with(store: Store, config: Config) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store, Policies::reference(), config);
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

    /// Stops the server; a PostgreSQL test database is dropped (a CI machine runs the suite again and
    /// again against the same server).
    pub async fn stop(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        drop_pg_db(&self.url).await;
    }
}

/// Drops the PostgreSQL database of `url` if it is one of the tests' own (`bz_srv_…`).
pub async fn drop_pg_db(url: &str) {
    use sqlx::Connection;
    let Some(name) = url.strip_prefix("postgres://").and_then(|u| u.rsplit('/').next()).filter(|n| n.starts_with("bz_srv_")) else {
        return;
    };
    if let Ok(mut c) = sqlx::AnyConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
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
    // The ledger's own checks and every re-settled year against the engine.
    let rep = baozhang_server::resettle::verify_ledger(store, &baozhang_server::Policies::reference()).await.unwrap();
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

/// The password of every user the tests create.
pub const PASSWORD: &str = "correct-horse-9";

// ───────────────────────────── a browser without cookie jar ─────────────────────────────

/// An HTTP response, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default()
    }
}

/// A browser that follows no redirects and sends the session cookie by hand (reqwest's cookie store is
/// not compiled in).
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    /// The session's CSRF token, read from a page's `<meta name="csrf-token">` on the first post.
    csrf: std::sync::Mutex<Option<String>>,
}

/// The content of `<meta name="csrf-token" content="…">`.
pub fn csrf_meta(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf-token\" content=\"")? + "name=\"csrf-token\" content=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

/// The token of a `Set-Cookie: bz_session=<token>; …` header.
pub fn session_token(r: &Resp) -> Option<String> {
    let c = r.header("set-cookie");
    let v = c.strip_prefix("bz_session=")?;
    let t = v.split(';').next().unwrap_or("");
    (!t.is_empty()).then(|| t.to_string())
}

impl Browser {
    pub fn anonymous(base: &str) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
        Browser { http, base: base.to_string(), token: None, csrf: std::sync::Mutex::new(None) }
    }

    pub fn with_token(base: &str, token: &str) -> Browser {
        Browser { token: Some(token.to_string()), ..Browser::anonymous(base) }
    }

    /// Logs in through the login form.
    pub async fn login(base: &str, username: &str) -> Browser {
        let b = Browser::anonymous(base);
        let r = b.post_form("/login", &[("username", username), ("password", PASSWORD), ("next", "/web/")]).await;
        assert_eq!(r.status, 303, "login of {username}: {}", r.text());
        let token = session_token(&r).unwrap_or_else(|| panic!("login of {username} set no session cookie: {:?}", r.headers));
        Browser { token: Some(token), ..b }
    }

    /// The same session as a bearer token of the JSON API.
    pub fn rest(&self) -> Rest {
        Rest { http: reqwest::Client::new(), base: self.base.clone(), token: self.token.clone() }
    }

    pub async fn send(&self, mut rb: reqwest::RequestBuilder) -> Result<Resp, String> {
        if let Some(t) = &self.token {
            rb = rb.header("cookie", format!("theme=light; bz_session={t}"));
        }
        let r = rb.send().await.map_err(|e| format!("no answer: {e}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.map_err(|e| format!("no body: {e}"))?.to_vec();
        Ok(Resp { status, headers, body })
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(format!("{}{path}", self.base))).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A long action's answer (303 to its job page, `web::jobs`) followed until the job ends: the job's
    /// page then, with its outcome (and the link to what it produced).
    pub async fn finish_job(&self, started: &Resp) -> Resp {
        assert_eq!(started.status, 303, "a long action answers with its job page: {}", started.text());
        let job = started.header("location");
        assert!(job.starts_with("/web/jobs/"), "{job}");
        for _ in 0..600 {
            let r = self.get(&job).await;
            assert_eq!(r.status, 200, "{job}: {}", r.text());
            if r.text().contains("data-testid=\"job-outcome\"") {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the job {job} did not end within 30 s");
    }

    /// The address the ended job's page links to.
    pub fn job_link(page: &Resp) -> String {
        let t = page.text();
        let i = t.find("data-testid=\"job-link\"").unwrap_or_else(|| panic!("no link on the job page: {t}"));
        let head = &t[..i];
        let h = head.rfind("href=\"").expect("the link's href") + 6;
        head[h..].split('"').next().unwrap_or("").replace("&#38;", "&").replace("&amp;", "&")
    }

    /// GET, following the redirects a browser follows on this site (an ID number typed into a person
    /// address is answered with the person's opaque address); never to the login page.
    pub async fn page(&self, path: &str) -> Resp {
        let mut r = self.get(path).await;
        for _ in 0..3 {
            let loc = r.header("location");
            if !(r.status == 303 && loc.starts_with("/web/")) {
                break;
            }
            r = self.get(&loc).await;
        }
        r
    }

    /// The session's CSRF token (none without a session), as the pages carry it.
    pub async fn csrf(&self) -> Option<String> {
        self.token.as_ref()?;
        if let Some(t) = self.csrf.lock().unwrap().clone() {
            return Some(t);
        }
        let t = csrf_meta(&self.get("/web/policy").await.text())?;
        *self.csrf.lock().unwrap() = Some(t.clone());
        Some(t)
    }

    pub async fn try_post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Result<Resp, String> {
        let mut pairs: Vec<(&str, &str)> = pairs.to_vec();
        let token = self.csrf().await;
        if let Some(t) = &token {
            pairs.push(("csrf", t));
        }
        self.try_post_form_raw(path, &pairs).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn try_post_form_raw(&self, path: &str, pairs: &[(&str, &str)]) -> Result<Resp, String> {
        let body = serde_urlencoded::to_string(pairs).expect("form encodes");
        self.send(self.http.post(format!("{}{path}", self.base)).header("content-type", "application/x-www-form-urlencoded").body(body))
            .await
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.try_post_form(path, pairs).await.unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Posts a multipart form with text fields and one file (`file`).
    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)], file_name: &str, data: &[u8]) -> Resp {
        let boundary = "----bzboundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        if let Some(t) = self.csrf().await {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{t}\r\n").as_bytes());
        }
        for (k, v) in fields {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        // Uploads run one at a time per process (a static permit), and the tests of one binary share a
        // process: a 503 "正在导入" from another test's upload is retried, as a user would.
        for attempt in 0.. {
            let rb = self
                .http
                .post(format!("{}{path}", self.base))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body.clone());
            let r = self.send(rb).await.unwrap_or_else(|e| panic!("POST {path}: {e}"));
            if r.status == 503 && r.text().contains("正在导入") && attempt < 100 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            // An upload is imported as a job: its page, once it has ended, is the result.
            if r.status == 303 && r.header("location").starts_with("/web/jobs/") {
                return self.finish_job(&r).await;
            }
            return r;
        }
        unreachable!()
    }
}

/// The address of a person's page, as the workbench builds it (the opaque key, never the ID number).
pub async fn person_path(store: &Store, id_no: &str) -> String {
    use baozhang_server::web::pid::PidKey;
    let hex = store.secret("web.person_link", &PidKey::random_hex()).await.expect("the person-link secret");
    format!("/web/person/{}", PidKey::from_hex(&hex).expect("32 bytes of hex").encode(id_no))
}

/// The text of a PDF as poppler's `pdftotext -layout` reads it (CI installs poppler-utils).
pub fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext not found ({e}): install poppler-utils (apt-get install poppler-utils; .ci/run does)"));
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
