//! The registry: regions, households, persons, identity periods, special states, enrolments, and the
//! imports that wrote them. An import stages its accepted rows and merges them set-wise in one
//! transaction; merges keep history (changes logged, versions superseded, periods retracted — never
//! deleted or silently overwritten) and change nothing when the data is already there.

use crate::bulk::Conn;
use crate::{get_i64, get_opt_i64, get_opt_text, get_text, now_text, Result, Store, Val};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionRow {
    pub code: String,
    pub name: String,
    pub level: u8,
    pub parent_code: Option<String>,
}

const STAGE_DDL: &str = include_str!("stage.sql");
/// The staging tables' indexes, made after the last staged row (one sort each, not an index insert per
/// row in file order).
const STAGE_INDEXES: [&str; 5] = [
    // With `seq`: the last-row-of-person probe (`LAST_OF_PERSON`) is answered from the index alone.
    "CREATE INDEX stage_persons_key ON stage_persons (import_id, id_no, seq)",
    "CREATE INDEX stage_periods_key ON stage_periods (import_id, id_no)",
    "CREATE INDEX stage_states_key ON stage_states (import_id, id_no)",
    "CREATE INDEX stage_enrolments_key ON stage_enrolments (import_id, id_no, year)",
    "CREATE INDEX stage_poverty_key ON stage_poverty (import_id, id_no)",
];
/// A staged person row that is the last of its person in the file (`s`: `stage_persons`).
const LAST_OF_PERSON: &str =
    "NOT EXISTS (SELECT 1 FROM stage_persons l WHERE l.import_id = s.import_id AND l.id_no = s.id_no AND l.seq > s.seq)";
const STAGE_TABLES: [&str; 6] =
    ["stage_persons", "stage_person_diffs", "stage_periods", "stage_states", "stage_poverty", "stage_enrolments"];

/// An import as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub imported_at: String,
    pub rows_total: i64,
    pub rows_accepted: i64,
    pub rows_rejected: i64,
    pub changes: i64,
}

/// Asserts (in debug builds) that `$n` placeholders first appear in ascending order: SQLite numbers
/// them by first appearance, PostgreSQL by n, and only this order makes both agree.
fn checked(sql: &str) -> &str {
    #[cfg(debug_assertions)]
    {
        let b = sql.as_bytes();
        let mut next = 1;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if let Ok(n) = sql[i + 1..j].parse::<usize>() {
                    assert!(n <= next, "placeholder ${n} appears before ${next} in: {sql}");
                    if n == next {
                        next += 1;
                    }
                }
                i = j;
            } else {
                i += 1;
            }
        }
    }
    sql
}

async fn exec(conn: &mut Conn, sql: &str, import_id: i64) -> Result<u64> {
    let t = std::time::Instant::now();
    let n = conn.exec(checked(sql), &[Val::I(import_id)]).await?;
    tracing::info!(ms = t.elapsed().as_millis() as u64, rows = n, sql = &sql[..sql.len().min(90)], "merge step");
    Ok(n)
}

async fn exec2(conn: &mut Conn, sql: &str, import_id: i64, s: &str) -> Result<u64> {
    let t = std::time::Instant::now();
    let n = conn.exec(checked(sql), &[Val::I(import_id), Val::T(s.to_string())]).await?;
    tracing::info!(ms = t.elapsed().as_millis() as u64, rows = n, sql = &sql[..sql.len().min(90)], "merge step");
    Ok(n)
}

impl Store {
    /// Loads (or renames) administrative divisions; returns how many rows were new or changed.
    pub async fn load_regions(&self, rows: &[RegionRow]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|r| vec![r.code.clone().into(), r.name.clone().into(), i64::from(r.level).into(), r.parent_code.clone().into()])
            .collect();
        let changed = crate::upsert_rows(
            &mut tx,
            "regions",
            &["code", "name", "level", "parent_code"],
            &vals,
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name, level = excluded.level, parent_code = excluded.parent_code \
             WHERE regions.name <> excluded.name OR regions.level <> excluded.level OR regions.parent_code IS DISTINCT FROM excluded.parent_code",
        )
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// All regions (code, name, level, parent) — a few tens of thousands of rows.
    pub async fn regions(&self) -> Result<Vec<RegionRow>> {
        let rows = sqlx::query("SELECT code, name, level, parent_code FROM regions ORDER BY code").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(RegionRow {
                    code: get_text(r, 0)?,
                    name: get_text(r, 1)?,
                    level: get_i64(r, 2)? as u8,
                    parent_code: get_opt_text(r, 3)?,
                })
            })
            .collect()
    }

    pub async fn region(&self, code: &str) -> Result<Option<RegionRow>> {
        let row = sqlx::query("SELECT code, name, level, parent_code FROM regions WHERE code = $1")
            .bind(code.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(RegionRow {
                code: get_text(&r, 0)?,
                name: get_text(&r, 1)?,
                level: get_i64(&r, 2)? as u8,
                parent_code: get_opt_text(&r, 3)?,
            })
        })
        .transpose()
    }

    /// The import of this exact file (by kind and content hash), if it was imported before.
    pub async fn find_import(&self, kind: &str, sha256: &str) -> Result<Option<ImportRecord>> {
        let row = sqlx::query("SELECT id, kind, file_name, imported_at, rows_total, rows_accepted, rows_rejected, changes FROM imports WHERE kind = $1 AND file_sha256 = $2")
            .bind(kind.to_string())
            .bind(sha256.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| import_record(&r)).transpose()
    }

    pub async fn imports(&self) -> Result<Vec<ImportRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, file_name, imported_at, rows_total, rows_accepted, rows_rejected, changes FROM imports ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(import_record).collect()
    }

    /// Opens the transaction of one import and records it; everything the import writes goes through
    /// the returned [`Import`], and nothing is visible until [`Import::finish`] commits.
    pub async fn start_import(&self, kind: &str, file_name: &str, sha256: &str) -> Result<Import> {
        let mut conn = self.native.begin().await?;
        let id = conn
            .one_i64(
                "INSERT INTO imports (kind, file_name, file_sha256, imported_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[kind.into(), file_name.into(), sha256.into(), now_text().into()],
            )
            .await?;
        for stmt in STAGE_DDL.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n").split(';') {
            if !stmt.trim().is_empty() {
                conn.exec(stmt, &[]).await?;
            }
        }
        if conn.is_sqlite() {
            // The staging tables live in SQLite's temp file, whose page cache is 2 MB unless told: indexing
            // and grouping a province's staged rows then re-read the file page by page (the 10 M poverty
            // roster's staging indexes took 15.6 s). 256 MiB, like PostgreSQL's `temp_buffers` here.
            conn.exec("PRAGMA temp.cache_size = -262144", &[]).await?;
        }
        Ok(Import {
            conn,
            id,
            changes: 0,
            enrolments_direct: None,
            indexed: false,
            persons_staged: 0,
            deferred_indexes: Vec::new(),
            partition_years: Default::default(),
        })
    }
}

fn import_record(r: &sqlx::any::AnyRow) -> Result<ImportRecord> {
    Ok(ImportRecord {
        id: get_i64(r, 0)?,
        kind: get_text(r, 1)?,
        file_name: get_text(r, 2)?,
        imported_at: get_text(r, 3)?,
        rows_total: get_i64(r, 4)?,
        rows_accepted: get_i64(r, 5)?,
        rows_rejected: get_i64(r, 6)?,
        changes: get_i64(r, 7)?,
    })
}

/// A person as a roster states them. `None` fields are not stated by that roster and keep their value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRow {
    pub id_no: String,
    pub name: String,
    pub sex: String,
    pub birth_date: i64,
    pub household_no: Option<String>,
    pub relation: Option<String>,
    pub village_code: Option<String>,
    pub psn_no: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodRow {
    pub id_no: String,
    pub identity: String,
    pub start_date: i64,
    pub end_date: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRow {
    pub id_no: String,
    pub start_date: i64,
    pub end_date: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PovertyRow {
    pub id_no: String,
    pub household_no: String,
    pub village_code: String,
    pub status: String,
    pub reg_year: Option<i64>,
    pub exit_year: Option<i64>,
    pub monitor_type: Option<String>,
    pub monitor_date: Option<i64>,
    pub cause: Option<String>,
    pub disability: Option<String>,
    pub change_date: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EnrolmentRow {
    pub id_no: String,
    pub psn_no: String,
    pub year: i64,
    pub status: String,
    pub insured: bool,
    pub insured_admdvs: String,
    pub flags: i64,
    pub flag_date: Option<i64>,
    pub premium_fen: i64,
    pub subsidy_fen: i64,
    pub subsidy_source: Option<String>,
}

/// One import in progress: its transaction and id.
pub struct Import {
    conn: Conn,
    pub id: i64,
    /// Rows changed so far (new rows, changed values, retracted periods).
    pub changes: u64,
    /// Whether the enrolments go straight into their table (it held no row when the import began
    /// staging them: there is nothing to compare or supersede). `None` until the first batch.
    enrolments_direct: Option<bool>,
    /// Whether the staging tables have their indexes (made before the first merge step reads them; a
    /// row staged later is indexed as it comes).
    indexed: bool,
    /// Persons staged so far (`stage_persons.seq`).
    persons_staged: i64,
    /// Indexes of a table that was empty, dropped for the bulk insert and made again before anything
    /// reads it (SQLite only): their `CREATE INDEX` statements.
    deferred_indexes: Vec<String>,
    /// Enrolment years whose partitions this import has made sure of (PostgreSQL).
    partition_years: std::collections::BTreeSet<i64>,
}

impl Import {
    /// The import's transaction, for the writes of other modules (`programmes`).
    pub(crate) fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Indexes the staged rows, once, before the first step that reads them.
    async fn index_stage(&mut self) -> Result<()> {
        self.restore_indexes().await?;
        if !self.indexed {
            let t = std::time::Instant::now();
            for sql in STAGE_INDEXES {
                self.conn.exec(sql, &[]).await?;
            }
            if self.conn.is_postgres() {
                // TEMP tables are never analysed by autovacuum: without statistics the merges' joins were
                // planned for a few rows.
                for t in STAGE_TABLES {
                    self.conn.exec(&format!("ANALYZE {t}"), &[]).await?;
                }
            }
            self.indexed = true;
            tracing::info!(ms = t.elapsed().as_millis() as u64, "staging indexed");
        }
        Ok(())
    }

    /// Makes the indexes dropped by [`Conn::drop_secondary_indexes`] again, once.
    async fn restore_indexes(&mut self) -> Result<()> {
        let t = std::time::Instant::now();
        for sql in std::mem::take(&mut self.deferred_indexes) {
            self.conn.exec(&sql, &[]).await?;
            tracing::info!(ms = t.elapsed().as_millis() as u64, sql, "index made again");
        }
        Ok(())
    }

    pub async fn stage_persons(&mut self, rows: &[PersonRow]) -> Result<()> {
        let first = self.persons_staged;
        self.persons_staged += rows.len() as i64;
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .zip(first..)
            .map(|(p, seq)| {
                vec![
                    self.id.into(),
                    seq.into(),
                    p.id_no.clone().into(),
                    p.name.clone().into(),
                    p.sex.clone().into(),
                    p.birth_date.into(),
                    p.household_no.clone().into(),
                    p.relation.clone().into(),
                    p.village_code.clone().into(),
                    p.psn_no.clone().into(),
                ]
            })
            .collect();
        self.conn
            .insert_rows(
                "stage_persons",
                &["import_id", "seq", "id_no", "name", "sex", "birth_date", "household_no", "relation", "village_code", "psn_no"],
                &vals,
                "",
            )
            .await?;
        Ok(())
    }

    pub async fn stage_periods(&mut self, rows: &[PeriodRow]) -> Result<()> {
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|p| vec![self.id.into(), p.id_no.clone().into(), p.identity.clone().into(), p.start_date.into(), p.end_date.into()])
            .collect();
        self.conn.insert_rows("stage_periods", &["import_id", "id_no", "identity", "start_date", "end_date"], &vals, "").await?;
        Ok(())
    }

    pub async fn stage_states(&mut self, rows: &[StateRow]) -> Result<()> {
        let vals: Vec<Vec<Val>> =
            rows.iter().map(|p| vec![self.id.into(), p.id_no.clone().into(), p.start_date.into(), p.end_date.into()]).collect();
        self.conn.insert_rows("stage_states", &["import_id", "id_no", "start_date", "end_date"], &vals, "").await?;
        Ok(())
    }

    pub async fn stage_poverty(&mut self, rows: &[PovertyRow]) -> Result<()> {
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|p| {
                vec![
                    self.id.into(),
                    p.id_no.clone().into(),
                    p.household_no.clone().into(),
                    p.village_code.clone().into(),
                    p.status.clone().into(),
                    p.reg_year.into(),
                    p.exit_year.into(),
                    p.monitor_type.clone().into(),
                    p.monitor_date.into(),
                    p.cause.clone().into(),
                    p.disability.clone().into(),
                    p.change_date.into(),
                ]
            })
            .collect();
        self.conn
            .insert_rows(
                "stage_poverty",
                &[
                    "import_id",
                    "id_no",
                    "household_no",
                    "village_code",
                    "status",
                    "reg_year",
                    "exit_year",
                    "monitor_type",
                    "monitor_date",
                    "cause",
                    "disability",
                    "change_date",
                ],
                &vals,
                "",
            )
            .await?;
        Ok(())
    }

    pub async fn stage_enrolments(&mut self, rows: &[EnrolmentRow]) -> Result<()> {
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|e| {
                vec![
                    self.id.into(),
                    e.id_no.clone().into(),
                    e.psn_no.clone().into(),
                    e.year.into(),
                    e.status.clone().into(),
                    i64::from(e.insured).into(),
                    e.insured_admdvs.clone().into(),
                    e.flags.into(),
                    e.flag_date.into(),
                    e.premium_fen.into(),
                    e.subsidy_fen.into(),
                    e.subsidy_source.clone().into(),
                ]
            })
            .collect();
        // PostgreSQL: a year the enrolments have no partition for is made now, in this transaction, so its
        // rows go straight to their year and prefecture (it holds the table's lock until the commit; a new
        // year comes once a year).
        if self.conn.is_postgres() {
            let new: Vec<i64> = rows.iter().map(|e| e.year).filter(|y| !self.partition_years.contains(y)).collect();
            if !new.is_empty() {
                let mut new = new;
                new.sort_unstable();
                new.dedup();
                let prefs = crate::partitions::batch_prefectures(rows.iter().map(|e| e.insured_admdvs.as_str()));
                let moved =
                    self.conn.one_i64(crate::partitions::ENSURE_SQL, &[Val::T(crate::partitions::ensure_arg(&new)), Val::T(prefs)]).await?;
                tracing::info!(years = ?new, moved, "enrolment partitions ensured");
                self.partition_years.extend(new);
            }
        }
        // A first enrolment roster (an empty table, seen inside the import's transaction) skips the
        // staging and the merge: nothing to supersede, and the file holds each (person, year) once (a
        // second row is rejected as a duplicate before it gets here).
        let direct = match self.enrolments_direct {
            Some(d) => d,
            None => {
                let any = self.conn.exists("SELECT 1 FROM enrolments LIMIT 1").await?;
                self.enrolments_direct = Some(!any);
                if !any {
                    // SQLite: the empty table's secondary indexes are made again after the last row (one
                    // sort each instead of a random index insert per row); readers keep their snapshot.
                    self.deferred_indexes = self.conn.drop_secondary_indexes("enrolments").await?;
                }
                !any
            }
        };
        let n = self
            .conn
            .insert_rows(
                if direct { "enrolments" } else { "stage_enrolments" },
                &[
                    "import_id",
                    "id_no",
                    "psn_no",
                    "year",
                    "status",
                    "insured",
                    "insured_admdvs",
                    "flags",
                    "flag_date",
                    "premium_fen",
                    "subsidy_fen",
                    "subsidy_source",
                ],
                &vals,
                "",
            )
            .await?;
        if direct {
            self.changes += n;
        }
        Ok(())
    }

    /// Records rows that contradict others (not applied; listed by reconciliation).
    /// `rows`: (id_no, the year for an enrolment conflict, detail).
    pub async fn add_conflicts(&mut self, kind: &str, rows: &[(String, Option<i64>, String)]) -> Result<()> {
        let vals: Vec<Vec<Val>> = rows
            .iter()
            .map(|(id_no, year, detail)| vec![self.id.into(), kind.into(), id_no.clone().into(), (*year).into(), detail.clone().into()])
            .collect();
        self.changes +=
            self.conn.insert_rows("roster_conflicts", &["import_id", "kind", "id_no", "conflict_year", "detail"], &vals, "").await?;
        Ok(())
    }

    /// Resolves the open conflicts of `kind` from earlier imports for every person this import holds
    /// once, without a conflict of its own: the data that made them duplicates has been put right at its
    /// source. A person this file does not mention keeps their conflict (a partial file proves nothing).
    /// Call after [`Import::add_conflicts`] and before the merge. Returns how many were resolved.
    pub async fn resolve_conflicts(&mut self, kind: &str) -> Result<u64> {
        self.index_stage().await?;
        // This import's enrolments: staged, or already in their table (a first roster, `enrolments_direct`).
        let enrolled = if self.enrolments_direct == Some(true) { "enrolments" } else { "stage_enrolments" };
        let sql = format!(
            "UPDATE roster_conflicts SET resolved_import = $1 WHERE kind = $2 AND resolved_import IS NULL AND import_id < $1 \
             AND id_no IN (SELECT s.id_no FROM stage_persons s WHERE s.import_id = $1) \
             AND id_no NOT IN (SELECT c.id_no FROM roster_conflicts c WHERE c.import_id = $1) \
             AND (conflict_year IS NULL OR EXISTS (SELECT 1 FROM {enrolled} e WHERE e.import_id = $1 \
                  AND e.id_no = roster_conflicts.id_no AND e.year = roster_conflicts.conflict_year))",
        );
        let n = exec2(&mut self.conn, &sql, self.id, kind).await?;
        self.changes += n;
        Ok(n)
    }

    /// Persons: log every changed attribute, then insert or update. Unstated (NULL) attributes keep
    /// their value.
    pub async fn merge_persons(&mut self) -> Result<()> {
        self.index_stage().await?;
        let id = self.id;
        // (field, old as text, new as text, whether the roster states it): name, sex and birth date always;
        // the others only when the row has them (a roster without villages keeps the village).
        const FIELDS: [(&str, &str, &str, &str); 7] = [
            ("name", "d.p_name", "d.s_name", "1 = 1"),
            ("sex", "d.p_sex", "d.s_sex", "1 = 1"),
            ("birth_date", "CAST(d.p_birth_date AS TEXT)", "CAST(d.s_birth_date AS TEXT)", "1 = 1"),
            ("household_no", "d.p_household_no", "d.s_household_no", "d.s_household_no IS NOT NULL"),
            ("relation", "d.p_relation", "d.s_relation", "d.s_relation IS NOT NULL"),
            ("village_code", "d.p_village_code", "d.s_village_code", "d.s_village_code IS NOT NULL"),
            ("psn_no", "d.p_psn_no", "d.s_psn_no", "d.s_psn_no IS NOT NULL"),
        ];
        // One pass over the staged rows finds the registered persons whose stated fields differ (one
        // index probe per row, not one per field); the history is written from those few rows.
        let differs: Vec<String> =
            FIELDS.iter().map(|(f, _, _, stated)| format!("({} AND p.{f} IS DISTINCT FROM s.{f})", stated.replace("d.s_", "s."))).collect();
        exec(
            &mut self.conn,
            &format!(
                "INSERT INTO stage_person_diffs (id_no, p_name, s_name, p_sex, s_sex, p_birth_date, s_birth_date, p_household_no, s_household_no, \
                 p_relation, s_relation, p_village_code, s_village_code, p_psn_no, s_psn_no) \
                 SELECT s.id_no, p.name, s.name, p.sex, s.sex, p.birth_date, s.birth_date, p.household_no, s.household_no, p.relation, s.relation, \
                 p.village_code, s.village_code, p.psn_no, s.psn_no \
                 FROM stage_persons s JOIN persons p ON p.id_no = s.id_no WHERE s.import_id = $1 AND {LAST_OF_PERSON} AND ({})",
                differs.join(" OR ")
            ),
            id,
        )
        .await?;
        for (field, old, new, stated) in FIELDS {
            let sql = format!(
                "INSERT INTO person_changes (id_no, field, old_value, new_value, import_id) \
                 SELECT d.id_no, '{field}', {old}, {new}, $1 FROM stage_person_diffs d \
                 WHERE {stated} AND d.p_{field} IS DISTINCT FROM d.s_{field}"
            );
            exec(&mut self.conn, &sql, id).await?;
        }
        // The registered persons that differ take the stated values (unstated ones keep theirs)…
        self.changes += exec(
            &mut self.conn,
            "UPDATE persons SET name = d.s_name, sex = d.s_sex, birth_date = d.s_birth_date, \
               household_no = COALESCE(d.s_household_no, persons.household_no), relation = COALESCE(d.s_relation, persons.relation), \
               village_code = COALESCE(d.s_village_code, persons.village_code), psn_no = COALESCE(d.s_psn_no, persons.psn_no), import_id = $1 \
             FROM stage_person_diffs d WHERE persons.id_no = d.id_no",
            id,
        )
        .await?;
        self.conn.exec("DELETE FROM stage_person_diffs", &[]).await?;
        // A first roster into an empty registry, or one staging more persons than are registered: SQLite
        // makes the secondary indexes after the rows (one sort each). At 10 M persons the inserts into three
        // indexes larger than the page cache took 104 s of the enrolment roster's 288 s.
        if self.conn.is_sqlite() && self.conn.sqlite_rows_at_most("persons").await? < self.persons_staged {
            self.deferred_indexes.extend(self.conn.drop_secondary_indexes("persons").await?);
        }
        // …and the new ones are inserted, in key order (the staging index's order: the primary key's
        // B-tree grows at its end rather than everywhere). A plain insert, not an upsert: on PostgreSQL
        // `ON CONFLICT DO UPDATE` took 6.6 s for the demo county's enrolment roster.
        self.changes += exec(
            &mut self.conn,
            &format!(
                "INSERT INTO persons (id_no, name, sex, birth_date, household_no, relation, village_code, psn_no, import_id) \
             SELECT s.id_no, s.name, s.sex, s.birth_date, s.household_no, s.relation, s.village_code, s.psn_no, $1 FROM stage_persons s \
             WHERE s.import_id = $1 AND {LAST_OF_PERSON} AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.id_no = s.id_no) ORDER BY s.id_no"
            ),
            id,
        )
        .await?;
        self.restore_indexes().await?;
        Ok(())
    }

    /// Households and poverty records (versioned) from a poverty roster.
    pub async fn merge_poverty(&mut self) -> Result<()> {
        self.index_stage().await?;
        let id = self.id;
        self.changes += exec(
            &mut self.conn,
            "INSERT INTO households (household_no, village_code, import_id) \
             SELECT household_no, MIN(village_code), $1 FROM stage_poverty WHERE import_id = $1 GROUP BY household_no \
             ON CONFLICT (household_no) DO UPDATE SET village_code = excluded.village_code, import_id = excluded.import_id \
             WHERE households.village_code <> excluded.village_code",
            id,
        )
        .await?;
        let differs = "r.household_no <> s.household_no OR r.status <> s.status OR r.reg_year IS DISTINCT FROM s.reg_year \
             OR r.exit_year IS DISTINCT FROM s.exit_year OR r.monitor_type IS DISTINCT FROM s.monitor_type \
             OR r.monitor_date IS DISTINCT FROM s.monitor_date OR r.cause IS DISTINCT FROM s.cause \
             OR r.disability IS DISTINCT FROM s.disability OR r.change_date <> s.change_date";
        self.changes += exec(
            &mut self.conn,
            &format!(
                "UPDATE poverty_records SET superseded_import = $1 WHERE superseded_import IS NULL AND EXISTS \
                 (SELECT 1 FROM stage_poverty s, poverty_records r WHERE s.import_id = $1 AND r.id = poverty_records.id AND s.id_no = r.id_no AND ({differs}))"
            ),
            id,
        )
        .await?;
        self.changes += exec(
            &mut self.conn,
            "INSERT INTO poverty_records (id_no, household_no, status, reg_year, exit_year, monitor_type, monitor_date, cause, disability, change_date, import_id) \
             SELECT s.id_no, s.household_no, s.status, s.reg_year, s.exit_year, s.monitor_type, s.monitor_date, s.cause, s.disability, s.change_date, $1 \
             FROM stage_poverty s WHERE s.import_id = $1 AND NOT EXISTS (SELECT 1 FROM poverty_records r WHERE r.id_no = s.id_no AND r.superseded_import IS NULL)",
            id,
        )
        .await?;
        Ok(())
    }

    /// Identity periods asserted by `source` for the persons of this import: the staged set replaces
    /// theirs (unconfirmed periods retracted, changed end dates updated and marked, new ones inserted).
    pub async fn merge_periods(&mut self, source: &str) -> Result<()> {
        self.index_stage().await?;
        let id = self.id;
        let same = "p.import_id = $1 AND p.id_no = identity_periods.id_no AND p.identity = identity_periods.identity AND p.start_date = identity_periods.start_date";
        self.changes += exec2(
            &mut self.conn,
            &format!(
                "UPDATE identity_periods SET retracted_import = $1 WHERE source = $2 AND retracted_import IS NULL \
                 AND EXISTS (SELECT 1 FROM stage_persons s WHERE s.import_id = $1 AND s.id_no = identity_periods.id_no) \
                 AND NOT EXISTS (SELECT 1 FROM stage_periods p WHERE {same})"
            ),
            id,
            source,
        )
        .await?;
        self.changes += exec2(
            &mut self.conn,
            &format!(
                "UPDATE identity_periods SET end_date = (SELECT p.end_date FROM stage_periods p WHERE {same}), changed_import = $1, retracted_import = NULL \
                 WHERE source = $2 AND EXISTS (SELECT 1 FROM stage_periods p WHERE {same} \
                   AND (p.end_date IS DISTINCT FROM identity_periods.end_date OR identity_periods.retracted_import IS NOT NULL))"
            ),
            id,
            source,
        )
        .await?;
        self.changes += exec2(
            &mut self.conn,
            "INSERT INTO identity_periods (import_id, id_no, identity, start_date, end_date, source) \
             SELECT $1, p.id_no, p.identity, p.start_date, p.end_date, $2 FROM stage_periods p WHERE p.import_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM identity_periods i WHERE i.id_no = p.id_no AND i.identity = p.identity AND i.source = $2 AND i.start_date = p.start_date)",
            id,
            source,
        )
        .await?;
        Ok(())
    }

    /// Special states (`death`, `military`) for the persons of this import, like periods.
    pub async fn merge_states(&mut self, state: &str) -> Result<()> {
        self.index_stage().await?;
        let id = self.id;
        let same = "p.import_id = $1 AND p.id_no = special_states.id_no AND p.start_date = special_states.start_date";
        self.changes += exec2(
            &mut self.conn,
            &format!(
                "UPDATE special_states SET end_date = (SELECT p.end_date FROM stage_states p WHERE {same}), retracted_import = NULL \
                 WHERE state = $2 AND EXISTS (SELECT 1 FROM stage_states p WHERE {same} \
                   AND (p.end_date IS DISTINCT FROM special_states.end_date OR special_states.retracted_import IS NOT NULL))"
            ),
            id,
            state,
        )
        .await?;
        self.changes += exec2(
            &mut self.conn,
            "INSERT INTO special_states (import_id, id_no, state, start_date, end_date) \
             SELECT $1, p.id_no, $2, p.start_date, p.end_date FROM stage_states p WHERE p.import_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM special_states i WHERE i.id_no = p.id_no AND i.state = $2 AND i.start_date = p.start_date)",
            id,
            state,
        )
        .await?;
        Ok(())
    }

    /// Enrolments, versioned per (person, year).
    pub async fn merge_enrolments(&mut self) -> Result<()> {
        self.index_stage().await?;
        if self.enrolments_direct == Some(true) {
            return Ok(()); // inserted as they were staged
        }
        let id = self.id;
        let differs = "e.psn_no <> s.psn_no OR e.status <> s.status OR e.insured <> s.insured OR e.insured_admdvs <> s.insured_admdvs \
             OR e.flags <> s.flags OR e.flag_date IS DISTINCT FROM s.flag_date OR e.premium_fen <> s.premium_fen \
             OR e.subsidy_fen <> s.subsidy_fen OR e.subsidy_source IS DISTINCT FROM s.subsidy_source";
        self.changes += exec(
            &mut self.conn,
            &format!(
                "UPDATE enrolments SET superseded_import = $1 WHERE superseded_import IS NULL AND EXISTS \
                 (SELECT 1 FROM stage_enrolments s, enrolments e WHERE s.import_id = $1 AND e.id = enrolments.id AND s.id_no = e.id_no AND s.year = e.year AND ({differs}))"
            ),
            id,
        )
        .await?;
        self.changes += exec(
            &mut self.conn,
            "INSERT INTO enrolments (import_id, id_no, psn_no, year, status, insured, insured_admdvs, flags, flag_date, premium_fen, subsidy_fen, subsidy_source) \
             SELECT $1, s.id_no, s.psn_no, s.year, s.status, s.insured, s.insured_admdvs, s.flags, s.flag_date, s.premium_fen, s.subsidy_fen, s.subsidy_source \
             FROM stage_enrolments s WHERE s.import_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.id_no = s.id_no AND e.year = s.year AND e.superseded_import IS NULL)",
            id,
        )
        .await?;
        Ok(())
    }

    /// Clears the staging rows, records the counts and commits. Returns the number of changes.
    pub async fn finish(mut self, rows_total: u64, rows_accepted: u64, rows_rejected: u64) -> Result<u64> {
        self.restore_indexes().await?;
        for t in STAGE_TABLES {
            self.conn.exec(&format!("DROP TABLE {t}"), &[]).await?;
        }
        let counts = [rows_total as i64, rows_accepted as i64, rows_rejected as i64, self.changes as i64, self.id].map(Val::I);
        self.conn
            .exec("UPDATE imports SET rows_total = $1, rows_accepted = $2, rows_rejected = $3, changes = $4 WHERE id = $5", &counts)
            .await?;
        self.conn.commit().await?;
        Ok(self.changes)
    }

    /// Abandons the import: nothing it staged or merged remains.
    pub async fn abandon(self) -> Result<()> {
        self.conn.rollback().await?;
        Ok(())
    }
}

/// What the registry knows of a person for settlement: identities over time and where they live.
#[derive(Clone, Debug, Default)]
pub struct PersonFacts {
    pub id_no: String,
    pub village_code: Option<String>,
    /// (identity id, start yyyymmdd, end yyyymmdd exclusive or None)
    pub periods: Vec<(String, i64, Option<i64>)>,
}

impl Store {
    /// Maps insurance person numbers (current enrolments) to the person and their identity periods —
    /// loaded once for a batch settlement.
    pub async fn person_facts_by_psn(&self) -> Result<std::collections::HashMap<String, PersonFacts>> {
        let mut by_id: std::collections::HashMap<String, PersonFacts> = Default::default();
        let rows = sqlx::query("SELECT p.id_no, p.village_code FROM persons p").fetch_all(self.pool()).await?;
        for r in &rows {
            let id_no = get_text(r, 0)?;
            by_id.insert(id_no.clone(), PersonFacts { id_no, village_code: get_opt_text(r, 1)?, periods: Vec::new() });
        }
        let rows = sqlx::query("SELECT id_no, identity, start_date, end_date FROM identity_periods WHERE retracted_import IS NULL")
            .fetch_all(self.pool())
            .await?;
        for r in &rows {
            if let Some(f) = by_id.get_mut(&get_text(r, 0)?) {
                f.periods.push((get_text(r, 1)?, get_i64(r, 2)?, get_opt_i64(r, 3)?));
            }
        }
        let rows =
            sqlx::query("SELECT DISTINCT psn_no, id_no FROM enrolments WHERE superseded_import IS NULL").fetch_all(self.pool()).await?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            if let Some(f) = by_id.get(&get_text(r, 1)?) {
                out.insert(get_text(r, 0)?, f.clone());
            }
        }
        Ok(out)
    }

    /// The insured area (`insured_admdvs`) of each insurance person number and year, from the current
    /// enrolments — what a hospital sends as `insuplc_admdvs` (batch settlement records it the same way).
    pub async fn insured_areas_by_psn(&self) -> Result<std::collections::HashMap<(String, u16), String>> {
        let rows = sqlx::query("SELECT psn_no, year, insured_admdvs FROM enrolments WHERE superseded_import IS NULL")
            .fetch_all(self.pool())
            .await?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            out.insert((get_text(r, 0)?, get_i64(r, 1)? as u16), get_text(r, 2)?);
        }
        Ok(out)
    }
}

impl Store {
    /// Records that someone saw personal information unmasked (or did something that must be traced).
    pub async fn audit(&self, actor: &str, action: &str, detail: &str) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(now_text())
            .bind(actor.to_string())
            .bind(action.to_string())
            .bind(detail.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Store {
    /// All region codes (for validating roster rows).
    pub async fn region_codes(&self) -> Result<std::collections::HashSet<String>> {
        let rows = sqlx::query("SELECT code FROM regions").fetch_all(self.pool()).await?;
        rows.iter().map(|r| get_text(r, 0)).collect()
    }

    /// Regions down to `max_level` (1 province … 5 village), or the subtree under `prefix` when given.
    pub async fn regions_upto(&self, max_level: u8, prefix: Option<&str>) -> Result<Vec<RegionRow>> {
        let rows = sqlx::query("SELECT code, name, level, parent_code FROM regions WHERE level <= $1 AND code LIKE $2 ORDER BY code")
            .bind(i64::from(max_level))
            .bind(format!("{}%", prefix.unwrap_or("")))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RegionRow {
                    code: get_text(r, 0)?,
                    name: get_text(r, 1)?,
                    level: get_i64(r, 2)? as u8,
                    parent_code: get_opt_text(r, 3)?,
                })
            })
            .collect()
    }
}

/// Totals of the settlement ledger (for the demo summary and indicators).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementTotals {
    pub claims: i64,
    pub medfee_fen: i64,
    pub inscp_fen: i64,
    /// 390100, 390200, 620100, 610100, 640100, 999996
    pub funds_fen: [i64; 6],
    pub fund_pay_fen: i64,
    pub psn_part_fen: i64,
}

impl Store {
    /// Totals over the settlement ledger, net of cancellations and with re-settlement adjustments (a cancellation carries the negated amounts
    /// and entries, and the medical type and identities of the settlement it cancels). `claims` counts the
    /// settlements not cancelled; the funds are the ledger entries by fund. `poor_inpatients` restricts to
    /// inpatient settlements of people registered or exited poor on the settlement date (identity bits 0
    /// and 1, as recorded with the settlement).
    pub async fn settlement_totals(&self, poor_inpatients: bool) -> Result<SettlementTotals> {
        let filter = if poor_inpatients { "WHERE s.med_type = 21 AND (s.identities & 3) <> 0" } else { "" };
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(s.medfee_sumamt), 0) AS BIGINT), CAST(COALESCE(SUM(s.inscp_scp_amt), 0) AS BIGINT), \
             CAST(COALESCE(SUM(s.fund_pay_sumamt), 0) AS BIGINT), CAST(COALESCE(SUM(s.psn_part_amt), 0) AS BIGINT) \
             FROM ledger_settlements s {filter}"
        ))
        .fetch_one(self.pool())
        .await?;
        let mut t = SettlementTotals {
            claims: get_i64(&row, 0)?,
            medfee_fen: get_i64(&row, 1)?,
            inscp_fen: get_i64(&row, 2)?,
            fund_pay_fen: get_i64(&row, 3)?,
            psn_part_fen: get_i64(&row, 4)?,
            ..Default::default()
        };
        // Re-settlement adjustments move money between the parts of settled bills (the bill total stays);
        // a claim stays in the class its settlement was recorded in.
        let adj_filter = if poor_inpatients {
            "JOIN ledger_settlements s ON s.setl_id = a.setl_id WHERE s.med_type = 21 AND (s.identities & 3) <> 0"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(a.fund_pay_sumamt), 0) AS BIGINT), CAST(COALESCE(SUM(a.psn_part_amt), 0) AS BIGINT) FROM ledger_adjustments a {adj_filter}"
        ))
        .fetch_one(self.pool())
        .await?;
        t.fund_pay_fen += get_i64(&row, 0)?;
        t.psn_part_fen += get_i64(&row, 1)?;
        let by_fund = if poor_inpatients {
            "SELECT e.fund, CAST(SUM(e.amount_fen) AS BIGINT) FROM ledger_entries e LEFT JOIN ledger_adjustments a ON a.adj_id = e.setl_id \
             JOIN ledger_settlements s ON s.setl_id = COALESCE(a.setl_id, e.setl_id) \
             WHERE s.med_type = 21 AND (s.identities & 3) <> 0 AND e.layer >= 0 GROUP BY e.fund"
        } else {
            "SELECT e.fund, CAST(SUM(e.amount_fen) AS BIGINT) FROM ledger_entries e WHERE e.layer >= 0 GROUP BY e.fund"
        };
        for r in sqlx::query(by_fund).fetch_all(self.pool()).await? {
            if let Some(f) = baozhang_core::policy::Fund::from_code(&get_text(&r, 0)?) {
                t.funds_fen[f.index()] += get_i64(&r, 1)?;
            }
        }
        Ok(t)
    }
}
