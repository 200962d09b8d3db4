//! PostgreSQL's partitions of the tables that grow with every year (migration 0018): the ledger's
//! settlements and entries, the enrolments and the visits, each partitioned by insurance year and then by
//! prefecture. This module keeps the partitions made, lists them, and detaches a finished year for
//! archiving. SQLite keeps plain tables: every function here does nothing there.
//!
//! Rows never wait for a partition: a year or prefecture without one goes to a default partition and is
//! moved out when its partition is made (by [`Store::maintain_partitions`] on open and every minute in
//! the server, or by an import before it writes a new year, `registry::Import::stage_enrolments`).

use crate::{Backend, Result, Store};
use sqlx::Row;

/// The tables PostgreSQL partitions (migration 0018's `bz_partitioned`).
pub const PARTITIONED: [&str; 4] = ["enrolments", "ledger_entries", "ledger_settlements", "mdtrts"];

/// One table of a partition tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partitioned table it belongs to (`enrolments`, …).
    pub root: String,
    pub name: String,
    /// 0 for the table itself, 1 for a year (or the default), 2 for a prefecture of a year.
    pub depth: i64,
    /// PostgreSQL's text of its bounds (`FOR VALUES IN ('2018')`, `DEFAULT`, …); empty for the root.
    pub bound: String,
    /// Rows held (leaf tables only, counted; 0 for a table that is itself partitioned).
    pub rows: i64,
    pub partitioned: bool,
}

/// The years as the partition function takes them: comma-separated.
fn years_csv(years: &[i64]) -> String {
    years.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// The statement that makes the partitions of `years` (moving waiting rows), returning the rows moved.
pub(crate) const ENSURE_SQL: &str = "SELECT bz_ensure_partitions($1, $2)";

/// [`ENSURE_SQL`]'s first argument for these years.
pub(crate) fn ensure_arg(years: &[i64]) -> String {
    years_csv(years)
}

/// The prefectures an import batch should have partitions of beside the home ones: those holding half of
/// the batch's rows or 10,000 of them (a county's roster is nearly all its own prefecture; a few people
/// insured elsewhere stay in the year's "other" partition). Comma-separated, for [`ENSURE_SQL`].
pub(crate) fn batch_prefectures<'a>(areas: impl Iterator<Item = &'a str>) -> String {
    let mut n = 0usize;
    let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for a in areas {
        n += 1;
        if a.len() >= 4 && a.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
            *by.entry(&a[..4]).or_default() += 1;
        }
    }
    by.into_iter().filter(|&(_, k)| k * 2 >= n || k >= 10_000).map(|(p, _)| p).collect::<Vec<_>>().join(",")
}

impl Store {
    /// PostgreSQL: makes every partition that should exist — this year, next year in December, last year
    /// until March, every year that
    /// has rows waiting in a default partition or a partition already, each for every home prefecture
    /// (the institutions', those with partitions already, and any with 10,000 rows waiting in an "other"
    /// or default partition) — and moves waiting rows into them. Returns the rows moved.
    pub async fn maintain_partitions(&self) -> Result<i64> {
        if self.backend != Backend::Postgres {
            return Ok(0);
        }
        let t = std::time::Instant::now();
        let moved: i64 = sqlx::query_scalar("SELECT bz_ensure_partitions(bz_partition_years(), '')").fetch_one(self.pool()).await?;
        if moved > 0 {
            tracing::info!(moved, ms = t.elapsed().as_millis() as u64, "rows moved out of default partitions");
        }
        Ok(moved)
    }

    /// PostgreSQL: makes the partitions of these years (years outside 1990–2200 are left to the default
    /// partition). Returns the rows moved out of default partitions.
    pub async fn ensure_partition_years(&self, years: &[i64]) -> Result<i64> {
        if self.backend != Backend::Postgres || years.is_empty() {
            return Ok(0);
        }
        Ok(sqlx::query_scalar(ENSURE_SQL).bind(years_csv(years)).bind(String::new()).fetch_one(self.pool()).await?)
    }

    /// Every table of the partition trees, roots first, with the rows of each leaf. Empty on SQLite.
    pub async fn partitions(&self) -> Result<Vec<Partition>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "WITH RECURSIVE tree AS ( \
               SELECT c.oid, CAST(b.tbl AS TEXT) AS root, CAST(0 AS BIGINT) AS depth FROM bz_partitioned b \
               JOIN pg_class c ON c.oid = to_regclass(quote_ident(b.tbl)) \
               UNION ALL SELECT i.inhrelid, t.root, t.depth + 1 FROM tree t JOIN pg_inherits i ON i.inhparent = t.oid) \
             SELECT t.root, CAST(c.relname AS TEXT), t.depth, CAST(COALESCE(pg_get_expr(c.relpartbound, c.oid), '') AS TEXT), \
               CAST(CASE WHEN c.relkind = 'p' THEN 1 ELSE 0 END AS BIGINT) \
             FROM tree t JOIN pg_class c ON c.oid = t.oid ORDER BY t.root, CAST(c.relname AS TEXT)",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = r.try_get(1)?;
            let partitioned = r.try_get::<i64, _>(4)? == 1;
            let rows = if partitioned {
                0
            } else {
                // The names come from the catalogue; quoted all the same.
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""))).fetch_one(self.pool()).await?
            };
            out.push(Partition { root: r.try_get(0)?, name, depth: r.try_get(2)?, bound: r.try_get(3)?, rows, partitioned });
        }
        Ok(out)
    }

    /// PostgreSQL: detaches `year` from every partitioned table and renames it (with its prefecture
    /// tables) `archive_…`, to be dumped and dropped or attached again. Returns the archived year tables
    /// (none when the year has no partition). Refused on SQLite.
    pub async fn detach_year(&self, year: i64) -> Result<Vec<String>> {
        if self.backend != Backend::Postgres {
            return Err(crate::StoreError::Unsupported("SQLite 数据库不分区，没有可分离的年度分区".into()));
        }
        let done: Option<String> = sqlx::query_scalar("SELECT bz_detach_year($1)").bind(year).fetch_one(self.pool()).await?;
        tracing::info!(year, tables = %done.as_deref().unwrap_or(""), "year detached from the partitioned tables");
        Ok(done.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_go_to_the_function_comma_separated() {
        assert_eq!(ensure_arg(&[2018, 2019]), "2018,2019");
        assert_eq!(ensure_arg(&[]), "");
    }

    #[test]
    fn a_batch_names_the_prefectures_that_hold_half_of_it_or_ten_thousand_rows() {
        let areas = ["620422", "620421", "510100", "", "62"];
        assert_eq!(batch_prefectures(areas.iter().copied()), "");
        let areas = ["620422", "620421", "620423", "510100"];
        assert_eq!(batch_prefectures(areas.iter().copied()), "6204");
        let many: Vec<String> = (0..30_000).map(|i| if i % 3 == 0 { "510100".into() } else { "620422".into() }).collect();
        assert_eq!(batch_prefectures(many.iter().map(String::as_str)), "5101,6204");
    }
}
