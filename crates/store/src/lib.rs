//! Storage of baozhang: schema, migrations and queries for **SQLite** (the embedded default: one file,
//! WAL, `synchronous=FULL`) and **PostgreSQL**, through one code path (sqlx's `Any` driver and portable
//! SQL). No business rules live here — callers decide what to write; this crate writes it exactly,
//! in transactions, keeping history.

mod bulk;
pub mod catalogue;
pub mod files;
pub mod forms;
pub mod indicators;
pub mod ledger;
pub mod oversight;
pub mod partitions;
pub mod programmes;
pub mod reconcile;
pub mod registry;
pub mod resettle;
pub mod risk;
pub mod service;
pub mod supervise;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use sqlx::Any;
pub type Tx<'a> = sqlx::Transaction<'a, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("数据库错误：{0}")]
    Db(#[from] sqlx::Error),
    /// SQLite read through its C API (`bulk::NativePool::read_snapshot`).
    #[error("数据库错误：{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("数据库地址无效：{0}")]
    BadUrl(String),
    #[error("数据库结构版本 {found} 高于本程序支持的 {supported}，请升级 baozhang")]
    TooNew { found: i64, supported: i64 },
    #[error("数据已损坏：{0}")]
    Corrupt(String),
    /// Another writer changed what this transaction relied on; retry it.
    #[error("并发冲突，请重试：{0}")]
    Conflict(String),
    /// What this backend does not do (e.g. detaching a year's partitions from SQLite).
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The embedded default: `baozhang.db` in the working directory.
pub const DEFAULT_URL: &str = "sqlite://baozhang.db";

const MIGRATIONS: [(i64, &str, &str); 18] = [
    (1, "registry", include_str!("../migrations/0001_registry.sql")),
    (2, "reconcile", include_str!("../migrations/0002_reconcile.sql")),
    (3, "service", include_str!("../migrations/0003_service.sql")),
    (4, "workbench", include_str!("../migrations/0004_workbench.sql")),
    (5, "health", include_str!("../migrations/0005_health.sql")),
    (6, "programmes", include_str!("../migrations/0006_programmes.sql")),
    (7, "oversight", include_str!("../migrations/0007_oversight.sql")),
    (8, "supervision", include_str!("../migrations/0008_supervision.sql")),
    (9, "trust", include_str!("../migrations/0009_trust.sql")),
    (10, "resettle", include_str!("../migrations/0010_resettle.sql")),
    (11, "his", include_str!("../migrations/0011_his.sql")),
    (12, "catalogue", include_str!("../migrations/0012_catalogue.sql")),
    (13, "files", include_str!("../migrations/0013_files.sql")),
    (14, "site", include_str!("../migrations/0014_site.sql")),
    (15, "findings", include_str!("../migrations/0015_findings.sql")),
    (16, "forms", include_str!("../migrations/0016_forms.sql")),
    (17, "kept_figures", include_str!("../migrations/0017_kept_figures.sql")),
    (18, "partitions", include_str!("../migrations/0018_partitions.sql")),
];

/// How to open a store.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// SQLite: no automatic WAL checkpoints on commit; the caller runs [`Store::checkpoint`] periodically.
    pub background_checkpoint: bool,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// One connection for [`Store::begin_write`].
    write_pool: AnyPool,
    /// The imports' connection, through the native driver (`COPY` on PostgreSQL).
    native: bulk::NativePool,
    backend: Backend,
}

/// Normalises what a user may type: a bare path means SQLite; `sqlite:` URLs get `mode=rwc` so the
/// file is created on first use.
pub fn normalise_url(url: &str) -> Result<(String, Backend)> {
    let u = url.trim();
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        return Ok((u.to_string(), Backend::Postgres));
    }
    let (path, query) = match u.strip_prefix("sqlite://").or_else(|| u.strip_prefix("sqlite:")) {
        Some(rest) => rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q))),
        None if !u.contains("://") => (u, None),
        None => return Err(StoreError::BadUrl(format!("{u}（支持 sqlite://文件 或 postgres://…）"))),
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl(u.to_string()));
    }
    if path == ":memory:" {
        // Nothing in memory outlives the process, and an import's own connection would see another database.
        return Err(StoreError::BadUrl(format!("{u}（内存数据库不保存数据，请给出数据库文件的路径）")));
    }
    let q = match query {
        Some(q) if q.contains("mode=") => q.to_string(),
        Some(q) => format!("{q}&mode=rwc"),
        None => "mode=rwc".to_string(),
    };
    Ok((format!("sqlite://{path}?{q}"), Backend::Sqlite))
}

impl Store {
    /// Connects (creating an SQLite file if needed) and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, OpenOptions::default()).await
    }

    /// [`Store::open`] with options (the service checkpoints SQLite's WAL itself).
    pub async fn open_with(url: &str, opts: OpenOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalise_url(url)?;
        let max = match backend {
            // One writer at a time in SQLite anyway; a few readers beside it under WAL.
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        };
        let pool = connect_pool(&url, max, opts).await?;
        // The writer's own connection: a settlement never waits for a reader to hand one back.
        let write_pool = connect_pool(&url, 1, opts).await?;
        let native = bulk::NativePool::connect(&url).await?;
        let store = Store { pool, write_pool, native, backend };
        store.migrate().await?;
        // PostgreSQL: this and the neighbouring years' partitions, and any rows waiting for one. A
        // failure here loses nothing (rows wait in the default partitions) and must not stop the program.
        if let Err(e) = store.maintain_partitions().await {
            tracing::warn!(error = %e, "partitions not maintained on open");
        }
        Ok(store)
    }

    /// SQLite: copies what it can of the WAL into the database without blocking writers
    /// (`wal_checkpoint(PASSIVE)`); once the WAL is past 32 MiB, `RESTART` so the next write starts it
    /// over (under continuous writes it would otherwise only grow). Measured under the settlement load:
    /// RESTART at 32 MiB gave 2,500 settlements/s with p99 10 ms, TRUNCATE at 64 MiB 2,000/s with 90 ms
    /// pauses. PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&self.pool).await?;
            // (busy, WAL frames, frames checkpointed); 8,192 frames of 4 KiB = 32 MiB.
            let frames: i64 = row.try_get(1)?;
            if frames > 8_192 {
                let t = std::time::Instant::now();
                sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&self.pool).await?;
                tracing::info!(frames, ms = t.elapsed().as_millis() as u64, "WAL restarted");
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
    /// Closes every connection (waits for those in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
        self.native.close().await;
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// PostgreSQL: refreshes the planner's statistics of `tables` (a batch that grows a table from
    /// nothing would otherwise be planned, and its prepared statements kept, as if the table were
    /// empty: a sequential scan per look-up; new statistics also make PostgreSQL plan those statements
    /// again). SQLite plans without statistics here, so nothing is done there.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<()> {
        if self.backend != Backend::Postgres || tables.is_empty() {
            return Ok(());
        }
        let t = std::time::Instant::now();
        sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(self.pool()).await?;
        tracing::info!(ms = t.elapsed().as_millis() as u64, tables = %tables.join(","), "planner statistics refreshed");
        Ok(())
    }

    /// PostgreSQL: `ANALYZE`s each table of the schema changed by more than `min_rows` + 10 % of its rows
    /// since it was last analysed (autovacuum's default rule, kept without relying on autovacuum, which may
    /// be off or behind); returns their names. SQLite: nothing. The server calls it in the background:
    /// plans kept by prepared statements are remade on new statistics, so a table that grew from empty is
    /// no longer scanned whole per look-up.
    pub async fn analyze_changed(&self, min_rows: i64) -> Result<Vec<String>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(relname AS TEXT) FROM pg_stat_user_tables WHERE schemaname = current_schema() \
             AND n_mod_since_analyze > $1 + n_live_tup / 10 ORDER BY relname",
        )
        .bind(min_rows)
        .fetch_all(self.pool())
        .await?;
        for t in &tables {
            let started = std::time::Instant::now();
            // The names come from the catalogue; quoted all the same.
            sqlx::query(&format!("ANALYZE \"{}\"", t.replace('"', "\"\""))).execute(self.pool()).await?;
            tracing::info!(table = %t, ms = started.elapsed().as_millis() as u64, "planner statistics refreshed");
        }
        Ok(tables)
    }

    pub async fn begin(&self) -> Result<Tx<'static>> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that will write: on SQLite `BEGIN IMMEDIATE` takes the write lock up front (waiting
    /// under `busy_timeout`), so it cannot fail later on a lock upgrade; PostgreSQL locks rows as it goes.
    pub async fn begin_write(&self) -> Result<Tx<'static>> {
        Ok(match self.backend {
            Backend::Sqlite => self.write_pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write_pool.begin().await?,
        })
    }

    /// Applies the migrations not yet applied, each in its own transaction.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let current: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetch_one(&self.pool).await?.try_get(0)?;
        let supported = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > supported {
            return Err(StoreError::TooNew { found: current, supported });
        }
        let id_type = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for (version, name, sql) in MIGRATIONS {
            if version <= current {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            let body: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .map(|l| l.split(" --").next().unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            for stmt in split_statements(&body) {
                // `{{PG}} …` statements are PostgreSQL-only (sequences).
                let stmt = match stmt.strip_prefix("{{PG}}") {
                    Some(pg) if self.backend == Backend::Postgres => pg.trim(),
                    Some(_) => continue,
                    None => stmt,
                };
                sqlx::query(&stmt.replace("{{ID}}", id_type)).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(version)
                .bind(name)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, name, "migration applied");
        }
        Ok(())
    }

    pub async fn schema_version(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetch_one(&self.pool).await?.try_get(0)?)
    }

    pub async fn count(&self, table: &str) -> Result<i64> {
        // `table` is one of ours, never user input.
        debug_assert!(table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        Ok(sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&self.pool).await?.try_get(0)?)
    }
}

/// A pool whose connections are set up for money (WAL, FULL sync, busy timeout …).
async fn connect_pool(url: &str, max: u32, opts: OpenOptions) -> std::result::Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    // WAL for concurrent readers; FULL sync because this is money.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA foreign_keys = ON",
                        // Imports and reconciliation touch a few hundred MB in one transaction; the default
                        // 2 MB cache made SQLite re-read its own pages through the WAL. TEMP staging tables stay in
                        // SQLite's temp file (not MEMORY), so a 10-million-row roster does not stage in RAM.
                        "PRAGMA cache_size = -131072",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    if opts.background_checkpoint {
                        // The committing connection would otherwise copy the WAL into the database every
                        // 1,000 pages, inside a settlement's latency; [`Store::checkpoint`] does it beside.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *conn).await?;
                        // When the WAL restarts, keep at most 64 MiB of it on disk.
                        sqlx::query("PRAGMA journal_size_limit = 67108864").execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(url)
        .await
}

/// UTC timestamp as ISO-8601 text (portable across both backends).
/// A migration's statements: split at `;`, except inside a `$$ … $$` body (a PL/pgSQL function), trimmed,
/// empty ones dropped.
fn split_statements(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'$') {
            quoted = !quoted;
            i += 2;
            continue;
        }
        if bytes[i] == b';' && !quoted {
            out.push(body[start..i].trim());
            start = i + 1;
        }
        i += 1;
    }
    out.push(body[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

pub fn now_text() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400) as i32;
    let rem = secs.rem_euclid(86_400);
    let d = baozhang_core::Date::from_days(days);
    format!("{d}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The upper bound of the region codes under a prefix (codes are digits, `~` sorts after them).
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}~")
}

/// A date as stored: BIGINT yyyymmdd.
pub fn date_num(d: baozhang_core::Date) -> i64 {
    i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
}

pub fn num_date(n: i64) -> Option<baozhang_core::Date> {
    baozhang_core::Date::new((n / 10_000) as u16, (n / 100 % 100) as u8, (n % 100) as u8)
}

/// A value to bind in a batch insert.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    I(i64),
    T(String),
    NullI,
    NullT,
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::T(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::T(v.to_string())
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        v.map_or(Val::NullI, Val::I)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        v.map_or(Val::NullT, Val::T)
    }
}

/// Inserts rows in multi-row statements (bounded: at most ~30,000 bound values a statement, under
/// both backends' limits).
pub async fn insert_rows(tx: &mut Tx<'_>, table: &str, cols: &[&str], rows: &[Vec<Val>]) -> Result<u64> {
    upsert_rows(tx, table, cols, rows, "").await
}

/// [`insert_rows`] with a clause after the VALUES (e.g. `ON CONFLICT (code) DO UPDATE …`).
pub async fn upsert_rows(tx: &mut Tx<'_>, table: &str, cols: &[&str], rows: &[Vec<Val>], on_conflict: &str) -> Result<u64> {
    rows_in(tx, table, cols, rows, on_conflict, false).await
}

/// [`upsert_rows`] for a transaction that any error rolls back whole (the ledger's batch, whose caller
/// never continues after a failed statement): on SQLite the statement is `INSERT OR FAIL`, which keeps
/// no statement journal — the temporary file into which SQLite otherwise copies every page a multi-row
/// insert touches so it can undo just that statement (a seventh of the demo county's claims step).
/// PostgreSQL has no such journal; the statement is the same as [`upsert_rows`]'.
pub async fn append_rows(tx: &mut Tx<'_>, table: &str, cols: &[&str], rows: &[Vec<Val>], on_conflict: &str) -> Result<u64> {
    rows_in(tx, table, cols, rows, on_conflict, true).await
}

async fn rows_in(tx: &mut Tx<'_>, table: &str, cols: &[&str], rows: &[Vec<Val>], on_conflict: &str, whole_tx: bool) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    // SQLite gets positional `?` placeholders: sqlx resolves named `$n` ones by a linear search
    // each, which is quadratic in a statement with thousands of them.
    let positional = tx.backend_name() == "SQLite";
    let per = bulk::rows_per_statement(cols.len());
    let mut n = 0;
    for chunk in rows.chunks(per) {
        let mut sql = bulk::values_sql(table, cols, chunk.len(), on_conflict, positional);
        if whole_tx && positional {
            sql.replace_range(.."INSERT".len(), "INSERT OR FAIL");
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            debug_assert_eq!(row.len(), cols.len());
            for v in row {
                q = match v {
                    Val::I(i) => q.bind(*i),
                    Val::T(t) => q.bind(t.clone()),
                    Val::NullI => q.bind(None::<i64>),
                    Val::NullT => q.bind(None::<String>),
                };
            }
        }
        n += q.execute(&mut **tx).await?.rows_affected();
    }
    tracing::debug!(table, rows = n, "staged");
    Ok(n)
}

pub fn get_i64(row: &AnyRow, i: usize) -> Result<i64> {
    Ok(row.try_get::<i64, _>(i)?)
}
pub fn get_opt_i64(row: &AnyRow, i: usize) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(i)?)
}
pub fn get_text(row: &AnyRow, i: usize) -> Result<String> {
    Ok(row.try_get::<String, _>(i)?)
}
pub fn get_opt_text(row: &AnyRow, i: usize) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(i)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised() {
        assert_eq!(normalise_url("baozhang.db").unwrap(), ("sqlite://baozhang.db?mode=rwc".into(), Backend::Sqlite));
        assert_eq!(normalise_url("sqlite:///tmp/x.db").unwrap().0, "sqlite:///tmp/x.db?mode=rwc");
        assert_eq!(normalise_url("sqlite://a.db?mode=ro").unwrap().0, "sqlite://a.db?mode=ro");
        assert_eq!(normalise_url("postgres://u@h/db").unwrap().1, Backend::Postgres);
        assert!(normalise_url("mysql://x").is_err());
    }

    #[test]
    fn statements_split_at_semicolons_outside_function_bodies() {
        let body = "CREATE TABLE a (x INT);\n{{PG}} CREATE FUNCTION f() RETURNS INT AS $$ BEGIN x := 1; RETURN x; END $$;\n\nSELECT 1;  ";
        assert_eq!(
            split_statements(body),
            ["CREATE TABLE a (x INT)", "{{PG}} CREATE FUNCTION f() RETURNS INT AS $$ BEGIN x := 1; RETURN x; END $$", "SELECT 1"]
        );
        assert!(split_statements(" ; ;\n").is_empty());
    }
}
