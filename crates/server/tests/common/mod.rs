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
