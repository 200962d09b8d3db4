//! Catalogue files (医保目录): the national items and a hospital's code map, read from CSV or XLSX in
//! the national column layout (the field names of the 1312 / 1318 / 1319 query outputs) or with the
//! Chinese headers officials use, validated row by row, and imported through `store::catalogue`.
//!
//! A file is taken whole or not at all: if any row is invalid nothing is imported and every bad row is
//! listed (file, row, field, value, reason in Chinese; the first [`MAX_LISTED_ERRORS`]). Files are bounded
//! ([`MAX_FILE_BYTES`], [`limits`]: 500,000 rows). Rows whose first cell starts with `#` are comments
//! (the shipped samples carry their "示例数据" marking that way). Amounts, ratios and dates are parsed
//! from text, never through `f64`.
//!
//! Readings: a 最高限价 of 0 means no ceiling (files write 0 for "none"; a ceiling of zero would make
//! every line over the limit); a blank 先行自付比例 is 0 except for 乙类 items, which must have one; a
//! blank 有效标志 is 1; dates may be written 2024-01-01, 2024/1/1, 20240101, 2024年1月1日, with a time
//! after them, or as Excel date cells.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use baozhang_core::catalogue::{med_chrgitm_type_zh, parse_prop_bp, ChrgitmLv, ListType};
use baozhang_core::{Date, Fen};
use baozhang_store::catalogue::{CatalogueImportReport, CatalogueItem, CatalogueMapRow};
use baozhang_store::{date_num, Store, StoreError};

use crate::table::{ReadLimits, TableError, TableReader};

/// Largest catalogue file accepted (a national catalogue of a few hundred thousand rows fits).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Bad rows listed in a refusal; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 200;

/// Bounds of a catalogue file: 500,000 rows, 128 columns, 4,000 characters a cell.
pub fn limits() -> ReadLimits {
    ReadLimits { max_rows: 500_000, max_cols: 128, max_cell_chars: 4_000, max_uncompressed_bytes: 1 << 30 }
}

/// One invalid value: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub row: u64,
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "第 {} 行「{}」：{}", self.row, self.field, self.reason)
        } else {
            write!(f, "第 {} 行「{}」值“{}”：{}", self.row, self.field, self.value, self.reason)
        }
    }
}

#[derive(Debug)]
pub enum CatalogueFileError {
    Table(TableError),
    Store(StoreError),
    Io {
        file: String,
        reason: String,
    },
    TooLarge {
        file: String,
        bytes: u64,
    },
    NoRows {
        file: String,
    },
    /// Invalid rows: nothing was imported. `errors` are the first [`MAX_LISTED_ERRORS`], `more` the rest.
    Rejected {
        file: String,
        rows: u64,
        errors: Vec<RowError>,
        more: u64,
    },
}

impl fmt::Display for CatalogueFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogueFileError::Table(e) => write!(f, "{e}"),
            CatalogueFileError::Store(e) => write!(f, "{e}"),
            CatalogueFileError::Io { file, reason } => write!(f, "无法读取 {file}：{reason}"),
            CatalogueFileError::TooLarge { file, bytes } => {
                write!(f, "{file} 有 {} MB，超出目录文件上限 {} MB；请拆分后分批导入", bytes >> 20, MAX_FILE_BYTES >> 20)
            }
            CatalogueFileError::NoRows { file } => write!(f, "{file} 没有数据行"),
            CatalogueFileError::Rejected { file, rows, errors, more } => {
                write!(f, "{file} 共 {rows} 行，其中 {} 处不符合要求，整个文件未导入：", errors.len() as u64 + more)?;
                for e in errors {
                    write!(f, "\n  {e}")?;
                }
                if *more > 0 {
                    write!(f, "\n  ……另有 {more} 处未列出")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CatalogueFileError {}

impl From<TableError> for CatalogueFileError {
    fn from(e: TableError) -> Self {
        CatalogueFileError::Table(e)
    }
}
impl From<StoreError> for CatalogueFileError {
    fn from(e: StoreError) -> Self {
        CatalogueFileError::Store(e)
    }
}

// ───────────────────────────── values ─────────────────────────────

/// A date as officials write it: 2024-01-01, 2024/1/1, 2024.1.1, 20240101, 2024年1月1日, any of them
/// followed by a time, or an Excel date serial (1954–2119) from a cell that lost its date format.
pub fn parse_date_loose(s: &str) -> Option<Date> {
    let t = s.trim();
    let day = t.split([' ', 'T']).next().unwrap_or("");
    let b = day.as_bytes();
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        let n: u32 = day.parse().ok()?;
        return Date::new((n / 10_000) as u16, (n / 100 % 100) as u8, (n % 100) as u8);
    }
    if b.len() == 5 && b.iter().all(u8::is_ascii_digit) {
        // Excel's day 0 is 1899-12-30 (its 1900 leap-year bug included); 25,569 is 1970-01-01.
        let serial: i32 = day.parse().ok()?;
        return (20_000..=80_000).contains(&serial).then(|| Date::from_days(serial - 25_569));
    }
    let norm = day.replace(['年', '月'], "-").replace('日', "");
    let parts: Vec<&str> = norm.split(['-', '/', '.']).collect();
    if parts.len() != 3 {
        return None;
    }
    let ok = |p: &str, lo: usize, hi: usize| p.len() >= lo && p.len() <= hi && p.bytes().all(|c| c.is_ascii_digit());
    if !ok(parts[0], 4, 4) || !ok(parts[1], 1, 2) || !ok(parts[2], 1, 2) {
        return None;
    }
    Date::new(parts[0].parse().ok()?, parts[1].parse().ok()?, parts[2].parse().ok()?)
}

/// An update time as 'YYYY-MM-DD HH:MM:SS' (a date alone is midnight).
pub fn normalise_time(s: &str) -> Option<String> {
    let t = s.trim();
    let date = parse_date_loose(t)?;
    let rest = t.split_once([' ', 'T']).map_or("", |(_, r)| r.trim());
    let rest = rest.trim_end_matches('Z');
    let rest = rest.split('.').next().unwrap_or("");
    let (h, m, sec) = if rest.is_empty() {
        (0, 0, 0)
    } else {
        let p: Vec<&str> = rest.split(':').collect();
        if p.len() < 2 || p.len() > 3 || p.iter().any(|x| x.is_empty() || x.len() > 2 || !x.bytes().all(|c| c.is_ascii_digit())) {
            return None;
        }
        let n = |i: usize| p.get(i).map_or(Some(0), |x| x.parse::<u32>().ok());
        (n(0)?, n(1)?, n(2)?)
    };
    (h < 24 && m < 60 && sec < 60).then(|| format!("{date} {h:02}:{m:02}:{sec:02}"))
}

fn parse_flag(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "是" | "Y" | "y" | "TRUE" | "true" => Some(true),
        "0" | "否" | "N" | "n" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

fn code_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

// ───────────────────────────── columns ─────────────────────────────

/// A field: its national name first, then the names it may go by.
struct Field {
    names: &'static [&'static str],
    required: bool,
}

const ITEM_FIELDS: [Field; 14] = [
    Field { names: &["hilist_code", "医保目录编码", "med_list_codg", "医疗目录编码"], required: true },
    Field { names: &["hilist_name", "医保目录名称", "med_list_name", "医疗目录名称"], required: true },
    Field { names: &["list_type", "目录类别"], required: true },
    Field { names: &["med_chrgitm_type", "医疗收费项目类别"], required: false },
    Field { names: &["chrgitm_lv", "收费项目等级"], required: true },
    Field { names: &["selfpay_prop", "先行自付比例", "自付比例"], required: false },
    Field { names: &["hilist_pric_uplmt_amt", "最高限价", "医保目录定价上限金额", "pric_uplmt_amt"], required: false },
    Field { names: &["lmt_used_flag", "限制使用标志"], required: false },
    Field { names: &["lmt_scope", "限定支付范围", "memo", "备注"], required: false },
    Field { names: &["insu_admdvs", "医保区划", "参保机构医保区划"], required: false },
    Field { names: &["begndate", "开始日期"], required: true },
    Field { names: &["enddate", "结束日期"], required: false },
    Field { names: &["vali_flag", "有效标志"], required: false },
    Field { names: &["updt_time", "更新时间", "数据更新时间"], required: false },
];

const MAP_FIELDS: [Field; 6] = [
    Field { names: &["fixmedins_code", "定点医药机构编号", "定点医疗机构编号", "医疗机构编码"], required: true },
    Field { names: &["medins_list_codg", "医疗机构目录编码", "医药机构目录编码", "院内项目编码"], required: true },
    Field { names: &["medins_list_name", "医疗机构目录名称", "医药机构目录名称", "院内项目名称"], required: false },
    Field { names: &["med_list_codg", "hilist_code", "医疗目录编码", "医保目录编码"], required: true },
    Field { names: &["begndate", "开始日期"], required: true },
    Field { names: &["enddate", "结束日期"], required: false },
];

/// Column index per field (None when the file has no such column); refuses a file missing a required one.
fn resolve(reader: &TableReader, fields: &[Field]) -> Result<Vec<Option<usize>>, TableError> {
    let cols: Vec<Option<usize>> = fields.iter().map(|f| f.names.iter().find_map(|n| reader.column(n))).collect();
    let missing: Vec<String> = fields
        .iter()
        .zip(&cols)
        .filter(|(f, c)| f.required && c.is_none())
        .map(|(f, _)| format!("{}（或 {}）", f.names[0], f.names[1]))
        .collect();
    if missing.is_empty() {
        Ok(cols)
    } else {
        Err(TableError::MissingColumns { file: reader.file().to_string(), columns: missing.join("、") })
    }
}

/// The cells of one row, by field.
struct Cells<'a> {
    row: u64,
    cells: &'a [String],
    cols: &'a [Option<usize>],
    fields: &'a [Field],
    errors: &'a mut Errors,
}

impl Cells<'_> {
    fn get(&self, i: usize) -> &str {
        self.cols[i].and_then(|c| self.cells.get(c)).map_or("", |s| s.trim())
    }
    fn fail(&mut self, i: usize, reason: impl Into<String>) {
        let value: String = self.get(i).chars().take(60).collect();
        self.errors.push(RowError { row: self.row, field: self.fields[i].names[0].to_string(), value, reason: reason.into() });
    }
    /// A required value, or an error.
    fn required(&mut self, i: usize) -> Option<String> {
        let v = self.get(i).to_string();
        if v.is_empty() {
            self.fail(i, format!("必填项为空（{}）", self.fields[i].names[1]));
            None
        } else {
            Some(v)
        }
    }
    fn date(&mut self, i: usize, required: bool) -> Option<Option<i64>> {
        let v = self.get(i).to_string();
        if v.is_empty() {
            if required {
                self.fail(i, format!("必填项为空（{}）", self.fields[i].names[1]));
                return None;
            }
            return Some(None);
        }
        match parse_date_loose(&v) {
            Some(d) => Some(Some(date_num(d))),
            None => {
                self.fail(i, "不是有效日期（如 2024-01-01、2024/1/1 或 20240101）");
                None
            }
        }
    }
}

/// Errors collected while reading: the first [`MAX_LISTED_ERRORS`] and a count of the rest.
#[derive(Default)]
struct Errors {
    listed: Vec<RowError>,
    more: u64,
}

impl Errors {
    fn push(&mut self, e: RowError) {
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(e);
        } else {
            self.more += 1;
        }
    }
    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

fn check_size(path: &Path) -> Result<(), CatalogueFileError> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| CatalogueFileError::Io { file: file.clone(), reason: e.to_string() })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(CatalogueFileError::TooLarge { file, bytes: meta.len() });
    }
    Ok(())
}

/// Reads every data row (comments skipped) through `each`, then refuses the file if anything was wrong.
fn read_rows<T>(
    path: &Path,
    limits: &ReadLimits,
    fields: &[Field],
    mut each: impl FnMut(&mut Cells<'_>) -> Option<T>,
) -> Result<Vec<T>, CatalogueFileError> {
    check_size(path)?;
    let mut reader = TableReader::open_with(path, limits)?;
    let cols = resolve(&reader, fields)?;
    let mut errors = Errors::default();
    let mut out = Vec::new();
    let mut cells = Vec::new();
    let mut rows = 0u64;
    while let Some(row) = reader.next_row(&mut cells)? {
        if cells.iter().find(|c| !c.is_empty()).is_some_and(|c| c.starts_with('#')) {
            continue;
        }
        rows += 1;
        let mut c = Cells { row, cells: &cells, cols: &cols, fields, errors: &mut errors };
        if let Some(v) = each(&mut c) {
            out.push(v);
        }
    }
    let file = reader.file().to_string();
    if !errors.is_empty() {
        return Err(CatalogueFileError::Rejected { file, rows, errors: errors.listed, more: errors.more });
    }
    if rows == 0 {
        return Err(CatalogueFileError::NoRows { file });
    }
    Ok(out)
}

// ───────────────────────────── items ─────────────────────────────

/// Reads a catalogue file into items; refuses it whole (listing the bad rows) if any row is invalid,
/// including a (code, begndate) given twice.
pub fn read_items(path: &Path, limits: &ReadLimits) -> Result<Vec<CatalogueItem>, CatalogueFileError> {
    let mut seen: HashMap<(String, i64), u64> = HashMap::new();
    read_rows(path, limits, &ITEM_FIELDS, |c| {
        let code = c.required(0);
        if let Some(code) = &code {
            if !code_ok(code, 50) {
                c.fail(0, "医保目录编码只能由字母、数字和 - _ . 组成，最长 50 位");
            }
        }
        let name = c.required(1);
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            c.fail(1, "名称超过 200 个字符");
        }
        let list_type = c.required(2).and_then(|v| match ListType::parse(&v) {
            Some(l) => Some(l.code().to_string()),
            None => {
                c.fail(2, "目录类别无效（101 西药中成药、102 中药饮片、103 自制剂、104 民族药、201 医疗服务项目、301 医用耗材）");
                None
            }
        });
        let med_type = {
            let v = c.get(3);
            let v = if v.len() == 1 && v.bytes().all(|b| b.is_ascii_digit()) { format!("0{v}") } else { v.to_string() };
            if v.is_empty() || med_chrgitm_type_zh(&v).is_some() {
                Some(v)
            } else {
                c.fail(3, "医疗收费项目类别无效（01 床位费 … 14 其他费）");
                None
            }
        };
        let lv = c.required(4).and_then(|v| match ChrgitmLv::parse(&v) {
            Some(l) => Some(l),
            None => {
                c.fail(4, "收费项目等级无效（01 甲类、02 乙类、03 丙类）");
                None
            }
        });
        let prop = match c.get(5) {
            "" if lv == Some(ChrgitmLv::B) => {
                c.fail(5, "乙类项目须填写先行自付比例（0–1 的小数，如 0.1）");
                None
            }
            "" => Some(0),
            v => match parse_prop_bp(v) {
                Ok(bp) => Some(bp),
                Err(e) => {
                    c.fail(5, e.to_string());
                    None
                }
            },
        };
        let ceiling = match c.get(6) {
            "" => Some(None),
            v => match Fen::parse_yuan(v) {
                Ok(Fen(0)) => Some(None),
                Ok(f) => Some(Some(f.0)),
                Err(e) => {
                    c.fail(6, e.to_string());
                    None
                }
            },
        };
        let lmt = match c.get(7) {
            "" => Some(false),
            v => parse_flag(v).or_else(|| {
                c.fail(7, "限制使用标志应为 0 或 1");
                None
            }),
        };
        let scope = c.get(8).to_string();
        if scope.chars().count() > 2_000 {
            c.fail(8, "限定支付范围超过 2000 个字符");
        }
        let admdvs = c.get(9).to_string();
        let six_digits = admdvs.len() == 6 && admdvs.bytes().all(|b| b.is_ascii_digit());
        if !admdvs.is_empty() && !six_digits {
            c.fail(9, "医保区划应为 6 位数字");
        }
        let begn = c.date(10, true);
        let end = c.date(11, false);
        if let (Some(Some(b)), Some(Some(e))) = (begn, end) {
            if e < b {
                c.fail(11, "结束日期早于开始日期");
            }
        }
        let vali = match c.get(12) {
            "" => Some(true),
            v => parse_flag(v).or_else(|| {
                c.fail(12, "有效标志应为 0 或 1");
                None
            }),
        };
        let updt = match c.get(13) {
            "" => Some(String::new()),
            v => normalise_time(v).or_else(|| {
                c.fail(13, "不是有效时间（如 2024-01-01 12:00:00）");
                None
            }),
        };
        let (Some(code), Some(name), Some(list_type), Some(med_type), Some(lv), Some(prop), Some(ceiling), Some(lmt)) =
            (code, name, list_type, med_type, lv, prop, ceiling, lmt)
        else {
            return None;
        };
        let (Some(Some(begndate)), Some(enddate), Some(vali), Some(updt)) = (begn, end, vali, updt) else { return None };
        if let Some(first) = seen.insert((code.clone(), begndate), c.row) {
            c.fail(0, format!("与第 {first} 行的编码和开始日期相同（同一项目同一开始日期只能有一行）"));
            return None;
        }
        Some(CatalogueItem {
            hilist_code: code,
            hilist_name: name,
            list_type,
            med_chrgitm_type: med_type,
            chrgitm_lv: lv.code().to_string(),
            selfpay_prop_bp: prop,
            pric_uplmt_fen: ceiling,
            lmt_used_flag: lmt,
            lmt_scope: scope,
            insu_admdvs: admdvs,
            begndate,
            enddate,
            vali_flag: vali,
            updt_time: updt,
        })
    })
}

/// Reads a hospital's code map; refuses it whole if any row is invalid.
pub fn read_map(path: &Path, limits: &ReadLimits) -> Result<Vec<CatalogueMapRow>, CatalogueFileError> {
    let mut seen: HashMap<(String, String, i64), u64> = HashMap::new();
    read_rows(path, limits, &MAP_FIELDS, |c| {
        let inst = c.required(0);
        if inst.as_ref().is_some_and(|v| !code_ok(v, 30)) {
            c.fail(0, "机构编号只能由字母、数字和 - _ . 组成，最长 30 位");
        }
        let own = c.required(1);
        if own.as_ref().is_some_and(|v| v.chars().count() > 50 || v.chars().any(char::is_control)) {
            c.fail(1, "医疗机构目录编码最长 50 个字符");
        }
        let name = c.get(2).to_string();
        if name.chars().count() > 200 {
            c.fail(2, "名称超过 200 个字符");
        }
        let code = c.required(3);
        if code.as_ref().is_some_and(|v| !code_ok(v, 50)) {
            c.fail(3, "医保目录编码只能由字母、数字和 - _ . 组成，最长 50 位");
        }
        let begn = c.date(4, true);
        let end = c.date(5, false);
        if let (Some(Some(b)), Some(Some(e))) = (begn, end) {
            if e < b {
                c.fail(5, "结束日期早于开始日期");
            }
        }
        let (Some(inst), Some(own), Some(code), Some(Some(begndate)), Some(enddate)) = (inst, own, code, begn, end) else {
            return None;
        };
        if let Some(first) = seen.insert((inst.clone(), own.clone(), begndate), c.row) {
            c.fail(1, format!("与第 {first} 行的机构、院内编码和开始日期相同"));
            return None;
        }
        Some(CatalogueMapRow { fixmedins_code: inst, medins_list_codg: own, medins_list_name: name, hilist_code: code, begndate, enddate })
    })
}

fn sha256_file(path: &Path) -> Result<String, CatalogueFileError> {
    let io = |e: std::io::Error| CatalogueFileError::Io { file: path.display().to_string(), reason: e.to_string() };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Which file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogueKind {
    /// The national catalogue (items).
    Items,
    /// A hospital's code map.
    Map,
}

/// Reads, validates and imports a catalogue or map file (one transaction; the same file twice changes
/// nothing). The file is read on a blocking thread. `file_name` is what the import records (an upload's
/// own name rather than a temporary path).
pub async fn import_file(
    store: &Store,
    kind: CatalogueKind,
    path: &Path,
    file_name: &str,
    actor: &str,
    limits: &ReadLimits,
) -> Result<CatalogueImportReport, CatalogueFileError> {
    let (p, l) = (path.to_path_buf(), limits.clone());
    let read = tokio::task::spawn_blocking(move || -> Result<_, CatalogueFileError> {
        let sha = sha256_file(&p)?;
        Ok(match kind {
            CatalogueKind::Items => (sha, read_items(&p, &l)?, Vec::new()),
            CatalogueKind::Map => (sha, Vec::new(), read_map(&p, &l)?),
        })
    })
    .await
    .map_err(|e| CatalogueFileError::Io { file: path.display().to_string(), reason: e.to_string() })?;
    let (sha, items, map) = read?;
    Ok(match kind {
        CatalogueKind::Items => store.import_catalogue_items(actor, file_name, &sha, &items).await?,
        CatalogueKind::Map => store.import_catalogue_map(actor, file_name, &sha, &map).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/catalogue").join(name)
    }

    #[test]
    fn dates_are_read_as_officials_write_them() {
        let d = |s: &str| parse_date_loose(s).map(|d| d.to_string());
        for s in ["2024-01-01", "2024/1/1", "20240101", "2024-1-1 00:00:00", "2024.01.01", "2024年1月1日", "2024-01-01T08:00:00", "45292"]
        {
            assert_eq!(d(s).as_deref(), Some("2024-01-01"), "{s}");
        }
        for s in ["2024-02-30", "2024/13/1", "24-1-1", "2024", "", "abc", "99999", "12345"] {
            assert_eq!(d(s), None, "{s}");
        }
        assert_eq!(normalise_time("2024/1/2 8:05").as_deref(), Some("2024-01-02 08:05:00"));
        assert_eq!(normalise_time("2024-01-02").as_deref(), Some("2024-01-02 00:00:00"));
        assert_eq!(normalise_time("2024-01-02 12:00:00.000").as_deref(), Some("2024-01-02 12:00:00"));
        assert_eq!(normalise_time("2024-01-02 25:00:00"), None);
    }

    #[test]
    fn the_sample_files_parse() {
        let items = read_items(&data("sample_catalogue.csv"), &limits()).expect("sample catalogue");
        assert!(items.len() >= 60, "{}", items.len());
        for lv in ["01", "02", "03"] {
            assert!(items.iter().any(|i| i.chrgitm_lv == lv), "{lv}");
        }
        for lt in ["101", "102", "201", "301"] {
            assert!(items.iter().any(|i| i.list_type == lt), "{lt}");
        }
        assert!(items.iter().any(|i| i.lmt_used_flag && !i.lmt_scope.is_empty()));
        assert!(items.iter().any(|i| i.pric_uplmt_fen.is_some()));
        assert!(items.iter().any(|i| i.enddate.is_some_and(|e| e < 20250101)));
        assert!(items.iter().filter(|i| i.chrgitm_lv == "02").all(|i| (500..=2_000).contains(&i.selfpay_prop_bp)));
        let map = read_map(&data("sample_hospital_map.csv"), &limits()).expect("sample map");
        assert!(!map.is_empty());
        // Every mapped code is in the sample catalogue.
        for m in &map {
            assert!(items.iter().any(|i| i.hilist_code == m.hilist_code), "{}", m.hilist_code);
        }
    }

    #[test]
    fn a_file_with_bad_rows_is_refused_whole_listing_each() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(
            &p,
            "hilist_code,hilist_name,list_type,chrgitm_lv,selfpay_prop,hilist_pric_uplmt_amt,begndate,enddate\n\
             # a comment line\n\
             XA01,甲药,101,01,,,2024-01-01,\n\
             XA02,乙药,101,02,,,2024-01-01,\n\
             XA03,乙药,101,02,1.5,,2024-01-01,\n\
             XA04,丙药,101,04,,,2024-01-01,\n\
             XA05,耗材,301,01,,-3,2024-01-01,\n\
             XA06,药,101,01,,,2024-02-30,\n\
             XA07,药,101,01,,,2024-02-01,2024-01-01\n\
             XA01,甲药,101,01,,,20240101,\n\
             XA08,药,999,01,,,2024-01-01,\n\
             XA09,药,101,1,0.1,12.5,2024/1/1,2099-12-31\n",
        )
        .unwrap();
        let e = read_items(&p, &limits()).unwrap_err();
        let CatalogueFileError::Rejected { rows, errors, more, .. } = &e else { panic!("{e}") };
        assert_eq!((*rows, *more), (10, 0));
        let at: Vec<(u64, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(
            at,
            vec![
                (4, "selfpay_prop"),
                (5, "selfpay_prop"),
                (6, "chrgitm_lv"),
                (7, "hilist_pric_uplmt_amt"),
                (8, "begndate"),
                (9, "enddate"),
                (10, "hilist_code"),
                (11, "list_type"),
            ]
        );
        let text = e.to_string();
        assert!(text.contains("bad.csv") && text.contains("第 6 行「chrgitm_lv」值“04”") && text.contains("整个文件未导入"), "{text}");
        assert!(text.contains("与第 3 行"), "{text}");
        // The good rows alone are read.
        std::fs::write(
            &p,
            "医保目录编码,医保目录名称,目录类别,收费项目等级,先行自付比例,最高限价,开始日期,结束日期\nXA09,药,西药中成药,乙类,10%,0,2024/1/1,2099-12-31\n",
        )
        .unwrap();
        let items = read_items(&p, &limits()).unwrap();
        assert_eq!((items[0].chrgitm_lv.as_str(), items[0].selfpay_prop_bp, items[0].pric_uplmt_fen), ("02", 1_000, None));
        assert_eq!((items[0].begndate, items[0].enddate, items[0].vali_flag), (20240101, Some(20991231), true));
    }

    #[test]
    fn missing_columns_and_too_many_errors_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cols.csv");
        std::fs::write(&p, "hilist_code,hilist_name\nX,y\n").unwrap();
        let e = read_items(&p, &limits()).unwrap_err().to_string();
        assert!(e.contains("list_type（或 目录类别）") && e.contains("chrgitm_lv") && e.contains("begndate"), "{e}");
        let mut s = String::from("hilist_code,hilist_name,list_type,chrgitm_lv,begndate\n");
        for i in 0..300 {
            s.push_str(&format!("X{i},药,101,09,2024-01-01\n"));
        }
        std::fs::write(&p, s).unwrap();
        let CatalogueFileError::Rejected { errors, more, .. } = read_items(&p, &limits()).unwrap_err() else { panic!() };
        assert_eq!((errors.len(), more), (MAX_LISTED_ERRORS, 100));
        // Row bound.
        let small = ReadLimits { max_rows: 10, ..limits() };
        let e = read_items(&p, &small).unwrap_err().to_string();
        assert!(e.contains("最多 10 行数据"), "{e}");
    }

    #[test]
    fn an_xlsx_with_date_cells_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cat.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in
            ["医保目录编码", "医保目录名称", "目录类别", "收费项目等级", "先行自付比例", "最高限价", "开始日期"].iter().enumerate()
        {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
        let fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        ws.write_string(1, 0, "C0101").unwrap();
        ws.write_string(1, 1, "输液器").unwrap();
        ws.write_number(1, 2, 301).unwrap();
        ws.write_number(1, 3, 2).unwrap();
        ws.write_number(1, 4, 0.05).unwrap();
        ws.write_number(1, 5, 8.5).unwrap();
        ws.write_datetime_with_format(1, 6, &date, &fmt).unwrap();
        // The same date in a cell that lost its format: the serial number.
        ws.write_string(2, 0, "C0102").unwrap();
        ws.write_string(2, 1, "注射器").unwrap();
        ws.write_number(2, 2, 301).unwrap();
        ws.write_number(2, 3, 1).unwrap();
        ws.write_number(2, 6, 45352).unwrap();
        wb.save(&p).unwrap();
        let items = read_items(&p, &limits()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].list_type.as_str(), items[0].chrgitm_lv.as_str(), items[0].selfpay_prop_bp), ("301", "02", 500));
        assert_eq!((items[0].pric_uplmt_fen, items[0].begndate), (Some(850), 20240301));
        assert_eq!(items[1].begndate, 20240301);
    }

    #[test]
    fn a_map_file_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("map.csv");
        std::fs::write(
            &p,
            "定点医药机构编号,医疗机构目录编码,医疗机构目录名称,医疗目录编码,开始日期,结束日期\n\
             H001,YP1,奥美拉唑,XA02,2024-01-01,\n\
             H001,YP1,奥美拉唑,XA03,2024-01-01,\n\
             H 01,YP2,x,XA02,2024-01-01,\n",
        )
        .unwrap();
        let CatalogueFileError::Rejected { errors, .. } = read_map(&p, &limits()).unwrap_err() else { panic!() };
        assert_eq!(errors.iter().map(|e| e.row).collect::<Vec<_>>(), vec![3, 4]);
    }
}
