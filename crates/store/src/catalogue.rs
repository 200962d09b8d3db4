//! The medical-insurance catalogue (医保目录): national items and each hospital's code map, versioned.
//! Storage only — the split of a fee line by an item is `core::catalogue::classify`; files are read and
//! validated by `ingest::catalogue`.
//!
//! - An import is one transaction, recorded in `catalogue_imports` and the audit log. A row whose key
//!   (items: `hilist_code`, `begndate`; maps: `fixmedins_code`, `medins_list_codg`, `begndate`) is not
//!   live is added; a live key with other values is superseded (`superseded_import`) and the new values
//!   inserted; an identical row is left alone. The same file twice changes nothing (it is recognised by
//!   its SHA-256 and not even read again). Nothing is deleted: an item leaves the catalogue by its
//!   `enddate` or `vali_flag` = 0, as the national catalogue does it.
//! - An item's `updt_time` is not compared: a row sent again with only a newer update time is unchanged.
//! - Look-ups on a date take the live, valid (`vali_flag` = 1) version with `begndate ≤ date` and
//!   (`enddate` open or `date ≤ enddate`); if periods overlap, the latest `begndate` wins.

use std::collections::{HashMap, HashSet};

use baozhang_core::catalogue::{ChrgitmLv, ItemRule};
use baozhang_core::Fen;
use sqlx::any::AnyRow;

use crate::{get_i64, get_opt_i64, get_text, insert_rows, now_text, Result, Store, StoreError, Tx, Val};

/// Codes per `IN (…)` list.
const IN_BATCH: usize = 500;

/// One version of a catalogue item, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueItem {
    pub hilist_code: String,
    pub hilist_name: String,
    /// 目录类别 code ("101", "201", "301" …).
    pub list_type: String,
    /// 医疗收费项目类别 code ("01" … "14"), '' when not given.
    pub med_chrgitm_type: String,
    /// 收费项目等级: "01" 甲类, "02" 乙类, "03" 丙类.
    pub chrgitm_lv: String,
    /// 先行自付比例 in basis points.
    pub selfpay_prop_bp: i64,
    /// 最高限价 per unit, fen.
    pub pric_uplmt_fen: Option<i64>,
    pub lmt_used_flag: bool,
    /// 限定支付范围 (text), '' when none.
    pub lmt_scope: String,
    pub insu_admdvs: String,
    pub begndate: i64,
    pub enddate: Option<i64>,
    pub vali_flag: bool,
    /// The source's 更新时间, 'YYYY-MM-DD HH:MM:SS' ('' when not given).
    pub updt_time: String,
}

impl CatalogueItem {
    /// What `core::catalogue::classify` needs. A class that does not parse (never written by the
    /// importer) is taken as 丙类: the line is then self-paid rather than paid by the fund.
    pub fn rule(&self) -> ItemRule {
        ItemRule {
            chrgitm_lv: ChrgitmLv::parse(&self.chrgitm_lv).unwrap_or(ChrgitmLv::C),
            selfpay_prop_bp: self.selfpay_prop_bp,
            pric_uplmt: self.pric_uplmt_fen.map(Fen),
            lmt_used_flag: self.lmt_used_flag,
        }
    }

    fn key(&self) -> (String, i64) {
        (self.hilist_code.clone(), self.begndate)
    }

    /// Same content (the update time aside).
    fn same_content(&self, o: &CatalogueItem) -> bool {
        CatalogueItem { updt_time: String::new(), ..self.clone() } == CatalogueItem { updt_time: String::new(), ..o.clone() }
    }

    fn vals(&self) -> Vec<Val> {
        vec![
            self.hilist_code.clone().into(),
            self.hilist_name.clone().into(),
            self.list_type.clone().into(),
            self.med_chrgitm_type.clone().into(),
            self.chrgitm_lv.clone().into(),
            self.selfpay_prop_bp.into(),
            self.pric_uplmt_fen.into(),
            i64::from(self.lmt_used_flag).into(),
            self.lmt_scope.clone().into(),
            self.insu_admdvs.clone().into(),
            self.begndate.into(),
            self.enddate.into(),
            i64::from(self.vali_flag).into(),
            self.updt_time.clone().into(),
        ]
    }
}

const ITEM_COLS: [&str; 14] = [
    "hilist_code",
    "hilist_name",
    "list_type",
    "med_chrgitm_type",
    "chrgitm_lv",
    "selfpay_prop_bp",
    "pric_uplmt_fen",
    "lmt_used_flag",
    "lmt_scope",
    "insu_admdvs",
    "begndate",
    "enddate",
    "vali_flag",
    "updt_time",
];

/// Reads [`ITEM_COLS`] from `row` starting at column `at`.
fn item_from(row: &AnyRow, at: usize) -> Result<CatalogueItem> {
    Ok(CatalogueItem {
        hilist_code: get_text(row, at)?,
        hilist_name: get_text(row, at + 1)?,
        list_type: get_text(row, at + 2)?,
        med_chrgitm_type: get_text(row, at + 3)?,
        chrgitm_lv: get_text(row, at + 4)?,
        selfpay_prop_bp: get_i64(row, at + 5)?,
        pric_uplmt_fen: get_opt_i64(row, at + 6)?,
        lmt_used_flag: get_i64(row, at + 7)? != 0,
        lmt_scope: get_text(row, at + 8)?,
        insu_admdvs: get_text(row, at + 9)?,
        begndate: get_i64(row, at + 10)?,
        enddate: get_opt_i64(row, at + 11)?,
        vali_flag: get_i64(row, at + 12)? != 0,
        updt_time: get_text(row, at + 13)?,
    })
}

/// One row of a hospital's code map (医疗机构目录编码 → 医保目录编码).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueMapRow {
    pub fixmedins_code: String,
    pub medins_list_codg: String,
    pub medins_list_name: String,
    pub hilist_code: String,
    pub begndate: i64,
    pub enddate: Option<i64>,
}

impl CatalogueMapRow {
    fn key(&self) -> (String, String, i64) {
        (self.fixmedins_code.clone(), self.medins_list_codg.clone(), self.begndate)
    }
    fn vals(&self) -> Vec<Val> {
        vec![
            self.fixmedins_code.clone().into(),
            self.medins_list_codg.clone().into(),
            self.medins_list_name.clone().into(),
            self.hilist_code.clone().into(),
            self.begndate.into(),
            self.enddate.into(),
        ]
    }
}

const MAP_COLS: [&str; 6] = ["fixmedins_code", "medins_list_codg", "medins_list_name", "hilist_code", "begndate", "enddate"];

fn map_from(row: &AnyRow, at: usize) -> Result<CatalogueMapRow> {
    Ok(CatalogueMapRow {
        fixmedins_code: get_text(row, at)?,
        medins_list_codg: get_text(row, at + 1)?,
        medins_list_name: get_text(row, at + 2)?,
        hilist_code: get_text(row, at + 3)?,
        begndate: get_i64(row, at + 4)?,
        enddate: get_opt_i64(row, at + 5)?,
    })
}

/// What an import did. `added + superseded + unchanged = rows`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogueImportReport {
    /// The import recorded (None when the file had been imported before).
    pub import_id: Option<i64>,
    /// Set when this exact file (same kind, same SHA-256) had been imported: nothing was done.
    pub already_imported_as: Option<i64>,
    pub rows: u64,
    /// Keys that were not live.
    pub added: u64,
    /// Live versions replaced by a changed row.
    pub superseded: u64,
    pub unchanged: u64,
}

/// One recorded import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueImport {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub file_sha256: String,
    pub rows_total: i64,
    pub added: i64,
    pub superseded: i64,
    pub actor: String,
    pub imported_at: String,
}

/// One version of an item and the imports that brought and replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueVersion {
    pub item: CatalogueItem,
    pub import_id: i64,
    pub superseded_import: Option<i64>,
    pub imported_at: String,
}

/// A search of the live catalogue (all filters optional, combined with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogueQuery {
    /// A code prefix or a part of the name (the search box).
    pub text: Option<String>,
    /// A code prefix (an exact code is its own prefix).
    pub code: Option<String>,
    pub name_contains: Option<String>,
    /// 目录类别 code.
    pub list_type: Option<String>,
    /// Only the versions valid on this date (yyyymmdd) with `vali_flag` = 1.
    pub valid_on: Option<i64>,
    /// Only rows whose `updt_time` ≥ this ('YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'), as 1312 asks.
    pub updated_since: Option<String>,
}

/// `LIKE` text matching `s` literally (with `ESCAPE '\'`).
fn like_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// A query with `binds` bound in order.
fn bind_vals<'q>(sql: &'q str, binds: &[Val]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql);
    for v in binds {
        query = match v {
            Val::I(i) => query.bind(*i),
            Val::T(t) => query.bind(t.clone()),
            Val::NullI => query.bind(None::<i64>),
            Val::NullT => query.bind(None::<String>),
        };
    }
    query
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The live, valid versions of `codes` on `date` (yyyymmdd), by code. Usable inside a transaction
/// (`&mut *tx`); codes are looked up 500 at a time.
pub async fn items_on(c: &mut sqlx::AnyConnection, codes: &[&str], date: i64) -> Result<HashMap<String, CatalogueItem>> {
    let mut uniq: Vec<&str> = codes.iter().copied().filter(|c| !c.is_empty()).collect();
    uniq.sort_unstable();
    uniq.dedup();
    let mut out = HashMap::with_capacity(uniq.len());
    for chunk in uniq.chunks(IN_BATCH) {
        let sql = format!(
            "SELECT {} FROM catalogue_items WHERE superseded_import IS NULL AND vali_flag = 1 AND begndate <= $1 \
             AND (enddate IS NULL OR enddate >= $2) AND hilist_code IN ({}) ORDER BY hilist_code, begndate",
            ITEM_COLS.join(", "),
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(date).bind(date);
        for code in chunk {
            q = q.bind(code.to_string());
        }
        for row in q.fetch_all(&mut *c).await? {
            // Ordered by begndate: a later period replaces an earlier one that overlaps it.
            let item = item_from(&row, 0)?;
            out.insert(item.hilist_code.clone(), item);
        }
    }
    Ok(out)
}

/// A hospital's own codes mapped to national ones on `date`: medins_list_codg → hilist_code.
pub async fn mapped_codes(
    c: &mut sqlx::AnyConnection,
    fixmedins_code: &str,
    medins_codes: &[&str],
    date: i64,
) -> Result<HashMap<String, String>> {
    let mut uniq: Vec<&str> = medins_codes.iter().copied().filter(|c| !c.is_empty()).collect();
    uniq.sort_unstable();
    uniq.dedup();
    let mut out = HashMap::with_capacity(uniq.len());
    for chunk in uniq.chunks(IN_BATCH) {
        let sql = format!(
            "SELECT medins_list_codg, hilist_code FROM catalogue_maps WHERE superseded_import IS NULL AND fixmedins_code = $1 \
             AND begndate <= $2 AND (enddate IS NULL OR enddate >= $3) AND medins_list_codg IN ({}) ORDER BY medins_list_codg, begndate",
            placeholders(4, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(date).bind(date);
        for code in chunk {
            q = q.bind(code.to_string());
        }
        for row in q.fetch_all(&mut *c).await? {
            out.insert(get_text(&row, 0)?, get_text(&row, 1)?);
        }
    }
    Ok(out)
}

/// Starts an import: `None` (and nothing written) when this file was imported before.
async fn begin_import(
    tx: &mut Tx<'_>,
    kind: &str,
    file_name: &str,
    sha: &str,
    rows: usize,
    actor: &str,
) -> Result<std::result::Result<i64, i64>> {
    let prev = sqlx::query("SELECT id FROM catalogue_imports WHERE kind = $1 AND file_sha256 = $2")
        .bind(kind.to_string())
        .bind(sha.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(r) = prev {
        return Ok(Err(get_i64(&r, 0)?));
    }
    let row = sqlx::query(
        "INSERT INTO catalogue_imports (kind, file_name, file_sha256, rows_total, added, superseded, actor, imported_at) \
         VALUES ($1, $2, $3, $4, 0, 0, $5, $6) RETURNING id",
    )
    .bind(kind.to_string())
    .bind(file_name.to_string())
    .bind(sha.to_string())
    .bind(rows as i64)
    .bind(actor.to_string())
    .bind(now_text())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Ok(get_i64(&row, 0)?))
}

/// Marks live rows superseded by `import_id`, 500 ids at a time.
async fn supersede(tx: &mut Tx<'_>, table: &str, import_id: i64, ids: &[i64]) -> Result<()> {
    for chunk in ids.chunks(IN_BATCH) {
        let sql = format!(
            "UPDATE {table} SET superseded_import = $1 WHERE superseded_import IS NULL AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(import_id);
        for id in chunk {
            q = q.bind(*id);
        }
        let n = q.execute(&mut **tx).await?.rows_affected();
        if n != chunk.len() as u64 {
            return Err(StoreError::Conflict(format!(
                "{table}: {} of {} live rows changed during the import",
                chunk.len() as u64 - n,
                chunk.len()
            )));
        }
    }
    Ok(())
}

async fn finish_import(tx: &mut Tx<'_>, id: i64, added: u64, superseded: u64, actor: &str, detail: &str) -> Result<()> {
    sqlx::query("UPDATE catalogue_imports SET added = $1, superseded = $2 WHERE id = $3")
        .bind(added as i64)
        .bind(superseded as i64)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(now_text())
        .bind(actor.to_string())
        .bind("catalogue.import".to_string())
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Live items with `vali_flag` = 1, whatever their dates (0: no catalogue loaded).
    pub async fn catalogue_size(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM catalogue_items WHERE superseded_import IS NULL AND vali_flag = 1")
            .fetch_one(self.pool())
            .await?;
        get_i64(&row, 0)
    }

    /// A page (1-based, `page_size` ≤ 500) of the live catalogue matching `q`, ordered by code and
    /// begndate, and the number of rows matching.
    pub async fn catalogue_page(&self, q: &CatalogueQuery, page_num: i64, page_size: i64) -> Result<(i64, Vec<CatalogueItem>)> {
        let mut wh = vec!["superseded_import IS NULL".to_string()];
        let mut binds: Vec<Val> = Vec::new();
        let next = |binds: &mut Vec<Val>, v: Val| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(t) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let a = next(&mut binds, Val::T(format!("{}%", like_escape(&t.to_uppercase()))));
            let b = next(&mut binds, Val::T(format!("%{}%", like_escape(&t.to_uppercase()))));
            wh.push(format!("(hilist_code LIKE {a} ESCAPE '\\' OR UPPER(hilist_name) LIKE {b} ESCAPE '\\')"));
        }
        if let Some(c) = q.code.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let a = next(&mut binds, Val::T(format!("{}%", like_escape(&c.to_uppercase()))));
            wh.push(format!("hilist_code LIKE {a} ESCAPE '\\'"));
        }
        if let Some(n) = q.name_contains.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let a = next(&mut binds, Val::T(format!("%{}%", like_escape(&n.to_uppercase()))));
            wh.push(format!("UPPER(hilist_name) LIKE {a} ESCAPE '\\'"));
        }
        if let Some(l) = q.list_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let a = next(&mut binds, Val::T(l.to_string()));
            wh.push(format!("list_type = {a}"));
        }
        if let Some(d) = q.valid_on {
            let a = next(&mut binds, Val::I(d));
            let b = next(&mut binds, Val::I(d));
            wh.push(format!("vali_flag = 1 AND begndate <= {a} AND (enddate IS NULL OR enddate >= {b})"));
        }
        if let Some(u) = q.updated_since.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let a = next(&mut binds, Val::T(u.to_string()));
            wh.push(format!("updt_time >= {a}"));
        }
        let where_sql = wh.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM catalogue_items WHERE {where_sql}");
        let total = get_i64(&bind_vals(&count_sql, &binds).fetch_one(self.pool()).await?, 0)?;
        let size = page_size.clamp(1, 500);
        let offset = (page_num.max(1) - 1).saturating_mul(size);
        let sql = format!(
            "SELECT {} FROM catalogue_items WHERE {where_sql} ORDER BY hilist_code, begndate LIMIT {size} OFFSET {offset}",
            ITEM_COLS.join(", ")
        );
        let rows = bind_vals(&sql, &binds).fetch_all(self.pool()).await?;
        let items = rows.iter().map(|r| item_from(r, 0)).collect::<Result<Vec<_>>>()?;
        Ok((total, items))
    }

    /// Every version of an item, oldest first, with the imports that brought and replaced it.
    pub async fn catalogue_history(&self, code: &str) -> Result<Vec<CatalogueVersion>> {
        let cols: Vec<String> = ITEM_COLS.iter().map(|c| format!("i.{c}")).collect();
        let sql = format!(
            "SELECT {}, i.import_id, i.superseded_import, COALESCE(ci.imported_at, '') FROM catalogue_items i \
             LEFT JOIN catalogue_imports ci ON ci.id = i.import_id WHERE i.hilist_code = $1 ORDER BY i.begndate, i.id",
            cols.join(", ")
        );
        let rows = sqlx::query(&sql).bind(code.to_string()).fetch_all(self.pool()).await?;
        let n = ITEM_COLS.len();
        rows.iter()
            .map(|r| {
                Ok(CatalogueVersion {
                    item: item_from(r, 0)?,
                    import_id: get_i64(r, n)?,
                    superseded_import: get_opt_i64(r, n + 1)?,
                    imported_at: get_text(r, n + 2)?,
                })
            })
            .collect()
    }

    /// The most recent imports, newest first.
    pub async fn catalogue_imports(&self, limit: i64) -> Result<Vec<CatalogueImport>> {
        let rows = sqlx::query(&format!(
            "SELECT id, kind, file_name, file_sha256, rows_total, added, superseded, actor, imported_at FROM catalogue_imports \
             ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CatalogueImport {
                    id: get_i64(r, 0)?,
                    kind: get_text(r, 1)?,
                    file_name: get_text(r, 2)?,
                    file_sha256: get_text(r, 3)?,
                    rows_total: get_i64(r, 4)?,
                    added: get_i64(r, 5)?,
                    superseded: get_i64(r, 6)?,
                    actor: get_text(r, 7)?,
                    imported_at: get_text(r, 8)?,
                })
            })
            .collect()
    }

    /// The live rows of a hospital's code map, by its own code.
    pub async fn catalogue_map(&self, fixmedins_code: &str) -> Result<Vec<CatalogueMapRow>> {
        let sql = format!(
            "SELECT {} FROM catalogue_maps WHERE superseded_import IS NULL AND fixmedins_code = $1 ORDER BY medins_list_codg, begndate",
            MAP_COLS.join(", ")
        );
        let rows = sqlx::query(&sql).bind(fixmedins_code.to_string()).fetch_all(self.pool()).await?;
        rows.iter().map(|r| map_from(r, 0)).collect()
    }

    /// Imports catalogue items in one transaction (see the module doc). Rows must have distinct keys
    /// (`hilist_code`, `begndate`); the file reader checks that with row numbers, this refuses it whole.
    pub async fn import_catalogue_items(
        &self,
        actor: &str,
        file_name: &str,
        file_sha256: &str,
        rows: &[CatalogueItem],
    ) -> Result<CatalogueImportReport> {
        let mut seen = HashSet::with_capacity(rows.len());
        if let Some(dup) = rows.iter().find(|r| !seen.insert(r.key())) {
            return Err(StoreError::Corrupt(format!("目录文件中 {}（开始日期 {}）出现不止一次", dup.hilist_code, dup.begndate)));
        }
        let mut tx = self.begin_write().await?;
        let import_id = match begin_import(&mut tx, "items", file_name, file_sha256, rows.len(), actor).await? {
            Ok(id) => id,
            Err(prev) => {
                tx.rollback().await?;
                return Ok(CatalogueImportReport {
                    already_imported_as: Some(prev),
                    rows: rows.len() as u64,
                    unchanged: rows.len() as u64,
                    ..Default::default()
                });
            }
        };
        let mut report = CatalogueImportReport { import_id: Some(import_id), rows: rows.len() as u64, ..Default::default() };
        let mut codes: Vec<&str> = rows.iter().map(|r| r.hilist_code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        let mut live: HashMap<(String, i64), (i64, CatalogueItem)> = HashMap::new();
        for chunk in codes.chunks(IN_BATCH) {
            let sql = format!(
                "SELECT id, {} FROM catalogue_items WHERE superseded_import IS NULL AND hilist_code IN ({})",
                ITEM_COLS.join(", "),
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c.to_string());
            }
            for r in q.fetch_all(&mut *tx).await? {
                let item = item_from(&r, 1)?;
                live.insert(item.key(), (get_i64(&r, 0)?, item));
            }
        }
        let mut superseded = Vec::new();
        let mut inserts = Vec::new();
        for r in rows {
            match live.get(&r.key()) {
                Some((_, old)) if old.same_content(r) => {
                    report.unchanged += 1;
                    continue;
                }
                Some((id, _)) => {
                    superseded.push(*id);
                    report.superseded += 1;
                }
                None => report.added += 1,
            }
            let mut v = r.vals();
            v.push(Val::I(import_id));
            inserts.push(v);
        }
        supersede(&mut tx, "catalogue_items", import_id, &superseded).await?;
        let mut cols: Vec<&str> = ITEM_COLS.to_vec();
        cols.push("import_id");
        insert_rows(&mut tx, "catalogue_items", &cols, &inserts).await?;
        let detail = format!(
            "目录导入 #{import_id} {file_name}：{} 行，新增 {}，更新 {}，未变 {}",
            report.rows, report.added, report.superseded, report.unchanged
        );
        finish_import(&mut tx, import_id, report.added, report.superseded, actor, &detail).await?;
        tx.commit().await?;
        tracing::info!(import_id, rows = report.rows, added = report.added, superseded = report.superseded, "catalogue imported");
        Ok(report)
    }

    /// Imports a hospital code map in one transaction, like [`Store::import_catalogue_items`]; keys are
    /// (`fixmedins_code`, `medins_list_codg`, `begndate`).
    pub async fn import_catalogue_map(
        &self,
        actor: &str,
        file_name: &str,
        file_sha256: &str,
        rows: &[CatalogueMapRow],
    ) -> Result<CatalogueImportReport> {
        let mut seen = HashSet::with_capacity(rows.len());
        if let Some(dup) = rows.iter().find(|r| !seen.insert(r.key())) {
            return Err(StoreError::Corrupt(format!(
                "对照文件中机构 {} 的 {}（开始日期 {}）出现不止一次",
                dup.fixmedins_code, dup.medins_list_codg, dup.begndate
            )));
        }
        let mut tx = self.begin_write().await?;
        let import_id = match begin_import(&mut tx, "map", file_name, file_sha256, rows.len(), actor).await? {
            Ok(id) => id,
            Err(prev) => {
                tx.rollback().await?;
                return Ok(CatalogueImportReport {
                    already_imported_as: Some(prev),
                    rows: rows.len() as u64,
                    unchanged: rows.len() as u64,
                    ..Default::default()
                });
            }
        };
        let mut report = CatalogueImportReport { import_id: Some(import_id), rows: rows.len() as u64, ..Default::default() };
        let mut by_inst: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in rows {
            by_inst.entry(r.fixmedins_code.as_str()).or_default().push(r.medins_list_codg.as_str());
        }
        let mut live: HashMap<(String, String, i64), (i64, CatalogueMapRow)> = HashMap::new();
        for (inst, mut codes) in by_inst {
            codes.sort_unstable();
            codes.dedup();
            for chunk in codes.chunks(IN_BATCH) {
                let sql = format!(
                    "SELECT id, {} FROM catalogue_maps WHERE superseded_import IS NULL AND fixmedins_code = $1 AND medins_list_codg IN ({})",
                    MAP_COLS.join(", "),
                    placeholders(2, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(inst.to_string());
                for c in chunk {
                    q = q.bind(c.to_string());
                }
                for r in q.fetch_all(&mut *tx).await? {
                    let m = map_from(&r, 1)?;
                    live.insert(m.key(), (get_i64(&r, 0)?, m));
                }
            }
        }
        let mut superseded = Vec::new();
        let mut inserts = Vec::new();
        for r in rows {
            match live.get(&r.key()) {
                Some((_, old)) if old == r => {
                    report.unchanged += 1;
                    continue;
                }
                Some((id, _)) => {
                    superseded.push(*id);
                    report.superseded += 1;
                }
                None => report.added += 1,
            }
            let mut v = r.vals();
            v.push(Val::I(import_id));
            inserts.push(v);
        }
        supersede(&mut tx, "catalogue_maps", import_id, &superseded).await?;
        let mut cols: Vec<&str> = MAP_COLS.to_vec();
        cols.push("import_id");
        insert_rows(&mut tx, "catalogue_maps", &cols, &inserts).await?;
        let detail = format!(
            "目录对照导入 #{import_id} {file_name}：{} 行，新增 {}，更新 {}，未变 {}",
            report.rows, report.added, report.superseded, report.unchanged
        );
        finish_import(&mut tx, import_id, report.added, report.superseded, actor, &detail).await?;
        tx.commit().await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_text_is_literal_and_placeholders_ascend() {
        assert_eq!(like_escape("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }

    #[test]
    fn a_class_that_does_not_parse_is_self_paid() {
        let item = CatalogueItem {
            hilist_code: "X".into(),
            hilist_name: "x".into(),
            list_type: "101".into(),
            med_chrgitm_type: String::new(),
            chrgitm_lv: "9".into(),
            selfpay_prop_bp: 0,
            pric_uplmt_fen: Some(100),
            lmt_used_flag: true,
            lmt_scope: String::new(),
            insu_admdvs: String::new(),
            begndate: 20240101,
            enddate: None,
            vali_flag: true,
            updt_time: String::new(),
        };
        let r = item.rule();
        assert_eq!(r.chrgitm_lv, ChrgitmLv::C);
        assert_eq!(r.pric_uplmt, Some(Fen(100)));
        assert!(r.lmt_used_flag);
    }
}
