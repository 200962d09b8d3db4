//! What the store's test files share: a fresh SQLite file and a fresh PostgreSQL database per test.
#![allow(dead_code)]

use baozhang_core::Date;
use baozhang_store::{Backend, Store};

pub struct TestDb {
    pub store: Store,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn drop_pg(self) {
        let TestDb { store, cleanup, .. } = self;
        store.pool().close().await;
        if let Some((admin, name)) = cleanup {
            let mut admin = admin_connection(&admin).await;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.expect("drop");
        }
    }
}

/// A plain connection to the admin database: no `Store`, so the tests never migrate (and race on) it.
pub async fn admin_connection(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| panic!("PostgreSQL at {url} is required for the store tests: {e}"))
}

pub fn pg_admin_url() -> String {
    std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn backends(tag: &str) -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("sqlite");
    let admin_url = pg_admin_url();
    let mut admin = admin_connection(&admin_url).await;
    let name = format!(
        "bz_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
    );
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create db");
    drop(admin);
    let url = match admin_url.rfind('/') {
        Some(i) => format!("{}/{name}", &admin_url[..i]),
        None => panic!("bad PG url"),
    };
    let pg = Store::open(&url).await.expect("pg");
    assert_eq!(pg.backend(), Backend::Postgres);
    vec![TestDb { store: sqlite, cleanup: None, _dir: Some(dir) }, TestDb { store: pg, cleanup: Some((admin_url, name)), _dir: None }]
}

pub fn d(s: &str) -> i64 {
    baozhang_store::date_num(Date::parse(s).unwrap())
}
