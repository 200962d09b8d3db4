//! The import's own connection, through each database's native sqlx driver rather than `Any`: bulk rows
//! go the way each database is made to take them — `COPY … FROM STDIN` on PostgreSQL, prepared
//! multi-row `INSERT`s with borrowed arguments on SQLite — and the merges run in the same transaction.
//!
//! `Any` converts every argument of every statement into the driver's own type and cannot reach
//! PostgreSQL's copy protocol; on the demo county's enrolment roster that conversion was a quarter of
//! the import's time, and PostgreSQL took rows at 44,000/s through multi-row `INSERT`s.

use std::fmt::Write as _;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};

use crate::{Result, StoreError, Val};

/// A pool of native connections for imports (one at a time: imports hold a permit anyway).
#[derive(Clone, Debug)]
pub(crate) enum NativePool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl NativePool {
    /// The same database as `url` (already normalised), with the pragmas of [`crate::connect_pool`].
    pub(crate) async fn connect(url: &str) -> Result<NativePool> {
        if url.starts_with("postgres") {
            let opts: PgConnectOptions = url.parse()?;
            // The import's session: its TEMP staging tables get 256 MB of buffers (8 MB by default, set
            // before their first use), its index builds and its merges' sorts and hashes room to work in
            // memory (64 MB and 4 MB by default). One such connection at a time.
            let opts = opts.options([("temp_buffers", "256MB"), ("maintenance_work_mem", "256MB"), ("work_mem", "64MB")]);
            let pool = PoolOptions::<Postgres>::new().max_connections(1).acquire_timeout(Duration::from_secs(60)).connect_lazy_with(opts);
            return Ok(NativePool::Pg(pool));
        }
        let opts: SqliteConnectOptions = url.parse()?;
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("cache_size", "-131072");
        let pool = PoolOptions::<Sqlite>::new().max_connections(1).acquire_timeout(Duration::from_secs(60)).connect_lazy_with(opts);
        Ok(NativePool::Sqlite(pool))
    }

    pub(crate) async fn close(&self) {
        match self {
            NativePool::Sqlite(p) => p.close().await,
            NativePool::Pg(p) => p.close().await,
        }
    }

    /// Runs `queries` (no arguments: only numbers computed by the caller are in them) in one read-only
    /// snapshot on a connection of its own — not the imports' one, which an import may hold for
    /// minutes — streaming each row through `each(state, query index, row)` without holding the rows.
    ///
    /// SQLite: through rusqlite on a blocking thread, because sqlx's SQLite rows cost about 7 µs each
    /// (sent one by one from its worker thread): 161 s for the 23 M rows of a 10 M-person registry,
    /// which the same scans through the C API read in a few seconds. Under WAL the snapshot keeps no
    /// writer waiting. PostgreSQL: a `REPEATABLE READ READ ONLY` transaction whose queries come as
    /// `COPY (query) TO STDOUT` text lines, parsed by [`CopyRow`] (16.6 s for the same registry).
    pub(crate) async fn read_snapshot<S: Send + 'static>(
        &self,
        queries: Vec<String>,
        state: S,
        each: fn(&mut S, usize, &dyn Cols) -> Result<()>,
    ) -> Result<S> {
        use sqlx::ConnectOptions;
        match self {
            NativePool::Sqlite(p) => {
                let path = p.connect_options().get_filename().to_path_buf();
                let read = move || -> Result<S> {
                    let mut state = state;
                    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    let conn = rusqlite::Connection::open_with_flags(&path, flags)?;
                    conn.busy_timeout(Duration::from_secs(30))?;
                    conn.execute_batch("PRAGMA query_only = 1; BEGIN")?;
                    for (k, sql) in queries.iter().enumerate() {
                        let mut stmt = conn.prepare(sql)?;
                        let mut rows = stmt.query([])?;
                        while let Some(r) = rows.next()? {
                            each(&mut state, k, r)?;
                        }
                    }
                    conn.execute_batch("COMMIT")?;
                    Ok(state)
                };
                tokio::task::spawn_blocking(read).await.map_err(|e| StoreError::Corrupt(format!("读取线程异常结束：{e}")))?
            }
            NativePool::Pg(p) => {
                use futures_util::TryStreamExt;
                use sqlx::Connection;
                let mut state = state;
                let mut c = p.connect_options().connect().await?;
                sqlx::query::<Postgres>("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut c).await?;
                for (k, sql) in queries.iter().enumerate() {
                    // `COPY (query) TO STDOUT`: the rows as text lines, parsed here, instead of one
                    // decoded `PgRow` each.
                    let mut out = c.copy_out_raw(&format!("COPY ({sql}) TO STDOUT")).await?;
                    let mut rest: Vec<u8> = Vec::new();
                    let mut row = CopyRow::default();
                    while let Some(chunk) = out.try_next().await? {
                        // A message is one row as PostgreSQL sends them; lines are split here anyway.
                        rest.extend_from_slice(&chunk);
                        let mut used = 0;
                        while let Some(n) = rest[used..].iter().position(|&b| b == b'\n') {
                            row.parse(&rest[used..used + n])?;
                            each(&mut state, k, &row)?;
                            used += n + 1;
                        }
                        rest.drain(..used);
                    }
                    if !rest.is_empty() {
                        return Err(StoreError::Corrupt("COPY 输出的最后一行不完整".into()));
                    }
                }
                sqlx::query::<Postgres>("COMMIT").execute(&mut c).await?;
                c.close().await?;
                Ok(state)
            }
        }
    }

    pub(crate) async fn begin(&self) -> Result<Conn> {
        Ok(match self {
            NativePool::Sqlite(p) => Conn::Sqlite(p.begin().await?),
            NativePool::Pg(p) => Conn::Pg(p.begin().await?),
        })
    }
}

/// The columns of a row read by [`NativePool::read_snapshot`], whichever the driver.
pub(crate) trait Cols {
    fn text(&self, i: usize) -> Result<&str>;
    fn opt_text(&self, i: usize) -> Result<Option<&str>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
}

/// One line of `COPY … TO STDOUT`'s text format, split into its fields (escapes undone, `\N` = NULL).
#[derive(Default)]
pub(crate) struct CopyRow {
    text: String,
    /// Each field's range in `text`, `None` for NULL.
    fields: Vec<Option<(usize, usize)>>,
}

impl CopyRow {
    /// Parses one line (without its newline).
    pub(crate) fn parse(&mut self, line: &[u8]) -> Result<()> {
        let line = std::str::from_utf8(line).map_err(|e| StoreError::Corrupt(format!("COPY 输出不是 UTF-8：{e}")))?;
        self.text.clear();
        self.fields.clear();
        for field in line.split('\t') {
            if field == "\\N" {
                self.fields.push(None);
                continue;
            }
            let start = self.text.len();
            if field.contains('\\') {
                unescape_copy_field(&mut self.text, field)?;
            } else {
                self.text.push_str(field);
            }
            self.fields.push(Some((start, self.text.len())));
        }
        Ok(())
    }

    fn field(&self, i: usize) -> Result<Option<&str>> {
        match self.fields.get(i) {
            Some(f) => Ok(f.map(|(a, b)| &self.text[a..b])),
            None => Err(StoreError::Corrupt(format!("COPY 输出缺少第 {} 列", i + 1))),
        }
    }
}

/// Undoes the backslash escapes of `COPY`'s text format (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`,
/// octal `\NNN`, hex `\xHH`; any other character stands for itself).
fn unescape_copy_field(out: &mut String, field: &str) -> Result<()> {
    let b = field.as_bytes();
    let mut bytes: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            bytes.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b't' => bytes.push(b'\t'),
            b'n' => bytes.push(b'\n'),
            b'r' => bytes.push(b'\r'),
            b'b' => bytes.push(8),
            b'f' => bytes.push(12),
            b'v' => bytes.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut k = 0;
                while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    k += 1;
                }
                bytes.push((v & 0xff) as u8);
            }
            b'x' if i < b.len() && b[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                bytes.push(v as u8);
            }
            other => bytes.push(other),
        }
    }
    out.push_str(std::str::from_utf8(&bytes).map_err(|e| StoreError::Corrupt(format!("COPY 输出的转义不是 UTF-8：{e}")))?);
    Ok(())
}

fn copy_int(s: &str, i: usize) -> Result<i64> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("第 {} 列不是整数：{s}", i + 1)))
}

impl Cols for CopyRow {
    fn text(&self, i: usize) -> Result<&str> {
        self.field(i)?.ok_or_else(|| StoreError::Corrupt(format!("第 {} 列为空", i + 1)))
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        self.field(i)
    }
    fn int(&self, i: usize) -> Result<i64> {
        copy_int(self.text(i)?, i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.field(i)?.map(|s| copy_int(s, i)).transpose()
    }
}

impl Cols for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<&str> {
        self.get_ref(i)?.as_str().map_err(|e| StoreError::Corrupt(format!("第 {} 列不是文本：{e}", i + 1)))
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        self.get_ref(i)?.as_str_or_null().map_err(|e| StoreError::Corrupt(format!("第 {} 列不是文本：{e}", i + 1)))
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get::<_, i64>(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get::<_, Option<i64>>(i)?)
    }
}

/// One import's transaction on a native connection; rolled back if dropped unfinished.
pub(crate) enum Conn {
    Sqlite(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

/// Binds `vals` to a native query, borrowing the text.
macro_rules! bind_all {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::I(i) => q.bind(*i),
                Val::T(t) => q.bind(t.as_str()),
                Val::NullI => q.bind(None::<i64>),
                Val::NullT => q.bind(None::<&str>),
            };
        }
        q
    }};
}

/// The rows in multi-row statements of one size but the last, on a native transaction `$t` of `$db`.
macro_rules! multi_row {
    ($db:ty, $t:expr, $table:expr, $cols:expr, $rows:expr, $on_conflict:expr, $positional:expr) => {{
        let per = rows_per_statement($cols.len()).min($rows.len());
        let full = values_sql($table, $cols, per, $on_conflict, $positional);
        let mut n = 0;
        for chunk in $rows.chunks(per) {
            let last;
            let sql = if chunk.len() == per {
                &full
            } else {
                last = values_sql($table, $cols, chunk.len(), $on_conflict, $positional);
                &last
            };
            n += bind_all!(sqlx::query::<$db>(sql), chunk.iter().flatten()).execute(&mut **$t).await?.rows_affected();
        }
        n
    }};
}

impl Conn {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Conn::Sqlite(t) => t.commit().await?,
            Conn::Pg(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Conn::Sqlite(t) => t.rollback().await?,
            Conn::Pg(t) => t.rollback().await?,
        }
        Ok(())
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Conn::Sqlite(_))
    }

    /// SQLite: an upper bound of the rows of a rowid table (its largest rowid; 0 when empty), in one
    /// seek. PostgreSQL: `i64::MAX` (not used there).
    pub(crate) async fn sqlite_rows_at_most(&mut self, table: &str) -> Result<i64> {
        let Conn::Sqlite(t) = self else {
            return Ok(i64::MAX);
        };
        let n: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(rowid) FROM {table}")).fetch_one(&mut **t).await?;
        Ok(n.unwrap_or(0))
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// SQLite: drops the secondary indexes of `table` (empty, or about to take more rows than it holds) and returns their
    /// `CREATE INDEX` statements, as stored, to be run after the bulk insert. PostgreSQL: nothing
    /// (`DROP INDEX` would lock the table against readers until the import commits).
    pub(crate) async fn drop_secondary_indexes(&mut self, table: &str) -> Result<Vec<String>> {
        let Conn::Sqlite(t) = self else {
            return Ok(Vec::new());
        };
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name")
                .bind(table)
                .fetch_all(&mut **t)
                .await?;
        for (name, _) in &rows {
            sqlx::query::<Sqlite>(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\""))).execute(&mut **t).await?;
        }
        Ok(rows.into_iter().map(|(_, sql)| sql).collect())
    }

    /// Runs one statement with `binds` (`$1`, `$2`, … in order of first appearance); rows affected.
    pub(crate) async fn exec(&mut self, sql: &str, binds: &[Val]) -> Result<u64> {
        Ok(match self {
            Conn::Sqlite(t) => bind_all!(sqlx::query::<Sqlite>(sql), binds).execute(&mut **t).await?.rows_affected(),
            Conn::Pg(t) => bind_all!(sqlx::query::<Postgres>(sql), binds).execute(&mut **t).await?.rows_affected(),
        })
    }

    /// Whether the query returns a row.
    pub(crate) async fn exists(&mut self, sql: &str) -> Result<bool> {
        Ok(match self {
            Conn::Sqlite(t) => sqlx::query::<Sqlite>(sql).fetch_optional(&mut **t).await?.is_some(),
            Conn::Pg(t) => sqlx::query::<Postgres>(sql).fetch_optional(&mut **t).await?.is_some(),
        })
    }

    /// The first column of the first row, an integer.
    pub(crate) async fn one_i64(&mut self, sql: &str, binds: &[Val]) -> Result<i64> {
        Ok(match self {
            Conn::Sqlite(t) => bind_all!(sqlx::query::<Sqlite>(sql), binds).fetch_one(&mut **t).await?.try_get(0)?,
            Conn::Pg(t) => bind_all!(sqlx::query::<Postgres>(sql), binds).fetch_one(&mut **t).await?.try_get(0)?,
        })
    }

    /// Rows of an integer id and `n` text columns (NULL read as the empty string).
    pub(crate) async fn id_and_texts(&mut self, sql: &str, n: usize) -> Result<Vec<(i64, Vec<String>)>> {
        fn read<R: Row>(r: &R, n: usize) -> Result<(i64, Vec<String>)>
        where
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            usize: sqlx::ColumnIndex<R>,
        {
            let id: i64 = r.try_get(0)?;
            let mut v = Vec::with_capacity(n);
            for i in 1..=n {
                v.push(r.try_get::<Option<String>, _>(i)?.unwrap_or_default());
            }
            Ok((id, v))
        }
        match self {
            Conn::Sqlite(t) => sqlx::query::<Sqlite>(sql).fetch_all(&mut **t).await?.iter().map(|r| read(r, n)).collect(),
            Conn::Pg(t) => sqlx::query::<Postgres>(sql).fetch_all(&mut **t).await?.iter().map(|r| read(r, n)).collect(),
        }
    }

    /// Inserts `rows` into `table (cols)`, then `on_conflict` (empty for none; PostgreSQL then takes
    /// them by `COPY`, which has no conflict clause). Returns the rows written.
    pub(crate) async fn insert_rows(&mut self, table: &str, cols: &[&str], rows: &[Vec<Val>], on_conflict: &str) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let n = match self {
            Conn::Pg(t) if on_conflict.is_empty() => {
                let mut copy = t.copy_in_raw(&format!("COPY {table} ({}) FROM STDIN", cols.join(", "))).await?;
                let mut buf = String::with_capacity(1 << 20);
                for row in rows {
                    debug_assert_eq!(row.len(), cols.len());
                    copy_text_row(&mut buf, row);
                    if buf.len() >= 1 << 20 {
                        copy.send(buf.as_bytes()).await?;
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.as_bytes()).await?;
                }
                copy.finish().await?
            }
            Conn::Pg(t) => multi_row!(Postgres, t, table, cols, rows, on_conflict, false),
            Conn::Sqlite(t) => multi_row!(Sqlite, t, table, cols, rows, on_conflict, true),
        };
        tracing::debug!(table, rows = n, "bulk insert");
        Ok(n)
    }
}

/// Rows per multi-row statement: chunks are of one size but the last, so the prepared statement is
/// reused.
pub(crate) fn rows_per_statement(cols: usize) -> usize {
    (30_000 / cols.max(1)).clamp(1, 2000)
}

/// `INSERT INTO table (cols) VALUES (…), … on_conflict` for `n` rows. SQLite gets positional `?`
/// (sqlx resolves named ones by a linear search each, quadratic in a statement with thousands of them).
pub(crate) fn values_sql(table: &str, cols: &[&str], n: usize, on_conflict: &str, positional: bool) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    let mut k = 1;
    for i in 0..n {
        sql.push_str(if i > 0 { ",(" } else { "(" });
        for c in 0..cols.len() {
            if c > 0 {
                sql.push(',');
            }
            if positional {
                sql.push('?');
            } else {
                let _ = write!(sql, "${k}");
            }
            k += 1;
        }
        sql.push(')');
    }
    if !on_conflict.is_empty() {
        sql.push(' ');
        sql.push_str(on_conflict);
    }
    sql
}

/// One row in `COPY`'s text format: tab-separated, `\N` for NULL, backslash escapes for the separators.
pub(crate) fn copy_text_row(buf: &mut String, row: &[Val]) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        match v {
            Val::I(n) => {
                let _ = write!(buf, "{n}");
            }
            Val::NullI | Val::NullT => buf.push_str("\\N"),
            Val::T(t) => copy_text_field(buf, t),
        }
    }
    buf.push('\n');
}

pub(crate) fn copy_text_field(buf: &mut String, t: &str) {
    for ch in t.chars() {
        match ch {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_separators_and_mark_nulls() {
        let mut b = String::new();
        copy_text_row(&mut b, &[Val::I(-7), Val::T("a\tb\\c\nd\re".into()), Val::NullT, Val::NullI, Val::T("测　辛".into())]);
        assert_eq!(b, "-7\ta\\tb\\\\c\\nd\\re\t\\N\t\\N\t测　辛\n");
    }

    #[test]
    fn copy_out_lines_split_unescape_and_mark_nulls() {
        let mut b = String::new();
        copy_text_row(&mut b, &[Val::I(-7), Val::T("a\tb\\c\nd\re".into()), Val::NullT, Val::T("测　辛".into()), Val::T(String::new())]);
        let mut r = CopyRow::default();
        r.parse(b.trim_end_matches('\n').as_bytes()).unwrap();
        assert_eq!(r.int(0).unwrap(), -7);
        assert_eq!(r.text(1).unwrap(), "a\tb\\c\nd\re");
        assert_eq!(r.opt_text(2).unwrap(), None);
        assert_eq!(r.opt_int(2).unwrap(), None);
        assert!(r.text(2).is_err());
        assert_eq!(r.text(3).unwrap(), "测　辛");
        assert_eq!(r.text(4).unwrap(), "");
        assert!(r.text(5).is_err(), "a missing column is an error, not an empty field");
        assert!(r.int(1).is_err());
        r.parse(b"\\101\\x42\\b\\q").unwrap();
        assert_eq!(r.text(0).unwrap(), "AB\u{8}q");
    }

    #[test]
    fn multi_row_statements_number_their_placeholders() {
        assert_eq!(rows_per_statement(2), 2000);
        assert_eq!(rows_per_statement(12), 2000);
        assert_eq!(rows_per_statement(40), 750);
        let s = values_sql("t", &["a", "b"], 500, "", true);
        assert!(s.starts_with("INSERT INTO t (a, b) VALUES (?,?),(?,?)"));
        assert_eq!(s.matches('?').count(), 1000);
        let pg = values_sql("t", &["a", "b"], 2, "ON CONFLICT DO NOTHING", false);
        assert_eq!(pg, "INSERT INTO t (a, b) VALUES ($1,$2),($3,$4) ON CONFLICT DO NOTHING");
    }
}
