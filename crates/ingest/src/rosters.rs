//! `baozhang import <kind> <file>`: the rosters of docs/ROSTERS.md, validated row by row. Rejected rows
//! go to a report (row, field, reason in Chinese, the row itself) in CSV and XLSX; accepted rows are
//! applied in one transaction per file; importing the same file again changes nothing.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use baozhang_core::{Date, Fen, IdCardNo, IdentitySet, Sex};
use baozhang_store::registry::{EnrolmentRow, Import, PeriodRow, PersonRow, PovertyRow, StateRow};
use baozhang_store::{date_num, Store, StoreError};

use crate::intern::KeyIndex;
use crate::table::{write_csv, write_xlsx, TableError, TableReader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterKind {
    Poverty,
    Enrolment,
    Dibao,
    ExtremePoor,
    Death,
    Military,
    /// Health programmes (`crate::programmes`): the public-health chronic registry, the card register,
    /// family-doctor teams, contracts and service records.
    ChronicRegistry,
    ChronicCards,
    FdcTeams,
    FdcContracts,
    FdcServices,
}

/// The order rosters are imported in a full load: households first, the enrolment roster (which refers to
/// everyone) last.
pub const IMPORT_ORDER: [RosterKind; 6] =
    [RosterKind::Poverty, RosterKind::Dibao, RosterKind::ExtremePoor, RosterKind::Death, RosterKind::Military, RosterKind::Enrolment];

pub const ALL_KINDS: [RosterKind; 11] = [
    RosterKind::Poverty,
    RosterKind::Enrolment,
    RosterKind::Dibao,
    RosterKind::ExtremePoor,
    RosterKind::Death,
    RosterKind::Military,
    RosterKind::ChronicRegistry,
    RosterKind::ChronicCards,
    RosterKind::FdcTeams,
    RosterKind::FdcContracts,
    RosterKind::FdcServices,
];

/// The programme files in the order a full load imports them (teams before the contracts naming them).
pub const PROGRAMME_ORDER: [RosterKind; 5] =
    [RosterKind::ChronicRegistry, RosterKind::ChronicCards, RosterKind::FdcTeams, RosterKind::FdcContracts, RosterKind::FdcServices];

impl RosterKind {
    pub fn id(self) -> &'static str {
        match self {
            RosterKind::Poverty => "poverty",
            RosterKind::Enrolment => "enrolment",
            RosterKind::Dibao => "dibao",
            RosterKind::ExtremePoor => "extreme_poor",
            RosterKind::Death => "death",
            RosterKind::Military => "military",
            RosterKind::ChronicRegistry => "chronic_registry",
            RosterKind::ChronicCards => "chronic_cards",
            RosterKind::FdcTeams => "fdc_teams",
            RosterKind::FdcContracts => "fdc_contracts",
            RosterKind::FdcServices => "fdc_services",
        }
    }
    pub fn parse(s: &str) -> Option<RosterKind> {
        ALL_KINDS.into_iter().find(|k| k.id() == s || k.name_zh() == s)
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            RosterKind::Poverty => "建档立卡贫困人口及监测对象花名册",
            RosterKind::Enrolment => "城乡居民医保参保名单",
            RosterKind::Dibao => "低保对象名单",
            RosterKind::ExtremePoor => "特困供养人员名单",
            RosterKind::Death => "死亡人员登记",
            RosterKind::Military => "服兵役人员登记",
            RosterKind::ChronicRegistry => "公共卫生慢病患者登记（卫生健康部门）",
            RosterKind::ChronicCards => "慢病卡登记",
            RosterKind::FdcTeams => "家庭医生团队",
            RosterKind::FdcContracts => "家庭医生签约名单",
            RosterKind::FdcServices => "家庭医生服务记录（随访、送医上门、送人就医）",
        }
    }
    /// A health-programme file rather than a registry roster.
    pub fn is_programme(self) -> bool {
        PROGRAMME_ORDER.contains(&self)
    }
    /// (column, required) in template order.
    pub fn columns(self) -> &'static [(&'static str, bool)] {
        match self {
            RosterKind::Poverty => &[
                ("户编号", true),
                ("姓名", true),
                ("证件号码", true),
                ("性别", false),
                ("出生日期", false),
                ("与户主关系", true),
                ("行政区划代码", true),
                ("贫困状态", false),
                ("识别年度", false),
                ("脱贫年度", false),
                ("监测对象类型", false),
                ("纳入监测日期", false),
                ("致贫原因", false),
                ("残疾等级", false),
                ("变动日期", false),
            ],
            RosterKind::Enrolment => &[
                ("人员编号", true),
                ("证件号码", true),
                ("姓名", true),
                ("参保年度", true),
                ("参保状态", true),
                ("参保地区划", true),
                ("人员类别", false),
                ("标识日期", false),
                ("个人缴费", true),
                ("资助金额", false),
                ("资助来源", false),
            ],
            RosterKind::Dibao => &[
                ("证件号码", true),
                ("姓名", true),
                ("行政区划代码", true),
                ("保障起始日期", true),
                ("保障终止日期", false),
                ("救助类别", false),
            ],
            RosterKind::ExtremePoor => {
                &[("证件号码", true), ("姓名", true), ("行政区划代码", true), ("保障起始日期", true), ("保障终止日期", false)]
            }
            RosterKind::Death => &[("证件号码", true), ("姓名", true), ("死亡日期", true)],
            RosterKind::Military => &[("证件号码", true), ("姓名", true), ("入伍日期", true), ("退役日期", false)],
            k => crate::programmes::columns(k),
        }
    }
    /// One plausible example row for the template.
    pub fn example(self) -> &'static [&'static str] {
        match self {
            RosterKind::Poverty => &[
                "620422100201001",
                "张三",
                "620422198001011230",
                "男",
                "1980-01-01",
                "户主",
                "620422100201",
                "未脱贫",
                "2016",
                "",
                "",
                "",
                "因病",
                "",
                "2016-03-01",
            ],
            RosterKind::Enrolment => &[
                "62042200000001",
                "620422198001011230",
                "张三",
                "2018",
                "正常参保",
                "620422",
                "建档立卡",
                "2018-01-15",
                "220.00",
                "220.00",
                "医疗救助",
            ],
            RosterKind::Dibao => &["620422198001011230", "张三", "620422100201", "2017-01-01", "", "低保对象"],
            RosterKind::ExtremePoor => &["620422198001011230", "张三", "620422100201", "2017-01-01", ""],
            RosterKind::Death => &["620422198001011230", "张三", "2018-06-30"],
            RosterKind::Military => &["620422199801011233", "李四", "2017-09-01", ""],
            k => crate::programmes::example(k),
        }
    }
}

/// A rejected row: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub row: u64,
    pub field: String,
    pub reason: String,
    pub cells: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub kind: String,
    pub file: String,
    pub rows_total: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Rows of the registry changed (new, changed, retracted). 0 when the data was already there.
    pub changes: u64,
    /// Set when this exact file had been imported before (nothing was done).
    pub already_imported_as: Option<i64>,
    pub import_id: Option<i64>,
    pub rejections_csv: Option<PathBuf>,
    pub rejections_xlsx: Option<PathBuf>,
    /// Rows contradicting others (the same person in two households, …), kept for reconciliation.
    pub conflicts: u64,
    /// Accepted rows whose cells were put right (invisible characters, full-width digits, 15-digit ID
    /// numbers, date formats, spaces in names), and the file listing them (行号, 字段, 处理).
    pub normalised_rows: u64,
    pub normalised_csv: Option<PathBuf>,
    /// The first notes (row, field, note), for a page to show.
    pub normalised: Vec<(u64, String, String)>,
}

/// What an import put right in accepted rows (`crate::normalise`), for its report: how many rows, and the
/// first [`Normalised::MAX_KEPT`] notes (row, field, note) — a file of ten million full-width numbers
/// must not keep ten million notes in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Normalised {
    pub rows: u64,
    pub kept: Vec<(u64, String, String)>,
}

impl Normalised {
    pub const MAX_KEPT: usize = 50_000;
    /// Takes the notes of an accepted row.
    pub(crate) fn take(&mut self, rowno: u64, row: &Row) {
        let notes = std::mem::take(&mut *row.notes.borrow_mut());
        if notes.is_empty() {
            return;
        }
        self.rows += 1;
        for (field, note) in notes {
            if self.kept.len() < Self::MAX_KEPT {
                self.kept.push((rowno, field, note));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Table(#[from] TableError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("无法读取 {file}：{reason}")]
    Io { file: String, reason: String },
    #[error("行政区划表为空：请先运行 baozhang regions load（内置甘肃、宁夏、云南、内蒙古）或 baozhang regions import <目录>")]
    NoRegions,
}

pub struct ImportOptions {
    /// Where the reject reports go (default: beside the input file).
    pub report_dir: Option<PathBuf>,
    /// Rows staged per batch (bounds memory).
    pub batch: usize,
    /// Bounds on the file (rows, columns, cell size, XLSX uncompressed size).
    pub limits: crate::table::ReadLimits,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { report_dir: None, batch: 20_000, limits: crate::table::ReadLimits::default() }
    }
}

fn sha256_file(path: &Path) -> Result<String, ImportError> {
    let io = |e: std::io::Error| ImportError::Io { file: path.display().to_string(), reason: e.to_string() };
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

/// What the rows of one batch turn into.
#[derive(Default)]
struct Batch {
    persons: Vec<PersonRow>,
    periods: Vec<PeriodRow>,
    states: Vec<StateRow>,
    poverty: Vec<PovertyRow>,
    enrolments: Vec<EnrolmentRow>,
}

impl Batch {
    fn len(&self) -> usize {
        self.persons.len()
    }
    async fn flush(&mut self, imp: &mut Import) -> Result<(), StoreError> {
        imp.stage_persons(&self.persons).await?;
        imp.stage_periods(&self.periods).await?;
        imp.stage_states(&self.states).await?;
        imp.stage_poverty(&self.poverty).await?;
        imp.stage_enrolments(&self.enrolments).await?;
        *self = Batch::default();
        Ok(())
    }
}

pub(crate) struct Row<'a> {
    pub(crate) cells: &'a [String],
    pub(crate) reader: &'a TableReader,
    /// What reading the row put right (field, note): invisible characters, full-width digits, a 15-digit
    /// ID number, a date's format, spaces in a name (`crate::normalise`); listed in the import report.
    pub(crate) notes: std::cell::RefCell<Vec<(String, String)>>,
}

impl<'a> Row<'a> {
    pub(crate) fn new(cells: &'a [String], reader: &'a TableReader) -> Row<'a> {
        Row { cells, reader, notes: Default::default() }
    }
    fn note(&self, col: &str, notes: impl IntoIterator<Item = String>) {
        let mut n = self.notes.borrow_mut();
        for x in notes {
            if !n.iter().any(|(c, t)| c == col && *t == x) {
                n.push((col.to_string(), x));
            }
        }
    }
}

pub(crate) type Reject = (String, String);

impl Row<'_> {
    pub(crate) fn get(&self, col: &str) -> &str {
        self.reader.column(col).and_then(|i| self.cells.get(i)).map_or("", String::as_str)
    }
    pub(crate) fn required(&self, col: &str) -> Result<&str, Reject> {
        let v = self.get(col);
        if v.is_empty() {
            Err((col.into(), "必填项为空".into()))
        } else {
            Ok(v)
        }
    }
    pub(crate) fn date(&self, col: &str) -> Result<Option<Date>, Reject> {
        let v = self.get(col);
        if v.is_empty() {
            return Ok(None);
        }
        match crate::normalise::date(v) {
            Some((d, note)) => {
                self.note(col, note);
                Ok(Some(d))
            }
            None => Err((col.into(), format!("日期“{v}”无法识别（可写 2018-06-02、2018/6/2、20180602 或 2018年6月2日）"))),
        }
    }
    pub(crate) fn req_date(&self, col: &str) -> Result<Date, Reject> {
        self.required(col)?;
        Ok(self.date(col)?.expect("non-empty"))
    }
    pub(crate) fn year(&self, col: &str) -> Result<Option<i64>, Reject> {
        let v = self.get(col);
        if v.is_empty() {
            return Ok(None);
        }
        match v.parse::<i64>() {
            Ok(y) if (1980..=2100).contains(&y) => Ok(Some(y)),
            _ => Err((col.into(), format!("年度“{v}”无效（应为四位年份）"))),
        }
    }
    pub(crate) fn money(&self, col: &str) -> Result<Option<Fen>, Reject> {
        let v = self.get(col);
        if v.is_empty() {
            return Ok(None);
        }
        Fen::parse_yuan(v).map(Some).map_err(|e| (col.into(), e.to_string()))
    }
    /// The ID number, checked against 性别 / 出生日期 when the roster has them.
    pub(crate) fn person_id(&self) -> Result<IdCardNo, Reject> {
        let raw = self.required("证件号码")?;
        let (id, notes) = crate::normalise::id_number(raw).map_err(|e| ("证件号码".to_string(), e.to_string()))?;
        self.note("证件号码", notes);
        let sex = self.get("性别");
        if !sex.is_empty() {
            match Sex::parse(sex) {
                Some(s) if s == id.sex() => {}
                Some(_) => return Err(("性别".into(), format!("性别“{sex}”与证件号码（{}）不一致", id.sex().name_zh()))),
                None => return Err(("性别".into(), format!("性别“{sex}”无效（男 / 女）"))),
            }
        }
        if let Some(b) = self.date("出生日期")? {
            if b != id.birth_date() {
                return Err(("出生日期".into(), format!("出生日期 {b} 与证件号码中的 {} 不一致", id.birth_date())));
            }
        }
        Ok(id)
    }
    pub(crate) fn name(&self) -> Result<String, Reject> {
        let raw = self.required("姓名")?;
        let n = crate::normalise::name(raw);
        if n.text.is_empty() {
            return Err(("姓名".into(), "必填项为空".into()));
        }
        if n.text.chars().count() > 30 {
            return Err(("姓名".into(), "姓名过长".into()));
        }
        self.note("姓名", n.notes);
        Ok(n.text)
    }
}

fn person(id: &IdCardNo, name: String) -> PersonRow {
    PersonRow {
        id_no: id.as_str().to_string(),
        name,
        sex: id.sex().name_zh().to_string(),
        birth_date: date_num(id.birth_date()),
        household_no: None,
        relation: None,
        village_code: None,
        psn_no: None,
    }
}

fn jan1(y: i64) -> i64 {
    y * 10_000 + 101
}

const RELATIONS: [&str; 8] = ["户主", "配偶", "子女", "父母", "孙子女", "兄弟姐妹", "儿媳", "其他"];
/// 贫困状态 (empty: not registered, e.g. a monitored person only).
const POVERTY_STATUS: [&str; 4] = ["", "未脱贫", "已脱贫", "已清退"];
/// 监测对象类型 (防止返贫监测对象).
const MONITOR_TYPES: [&str; 4] = ["", "边缘易致贫户", "脱贫不稳定户", "突发严重困难户"];
const DISABILITY: [&str; 5] = ["", "一级", "二级", "三级", "四级"];

/// Whether a row is the template's example (its ID number and name as `RosterKind::example` writes
/// them): it is refused, never imported as a real person (a template filled in with the example row left
/// in place).
pub(crate) fn is_example_row(kind: RosterKind, row: &Row) -> bool {
    let ex = |col: &str| kind.columns().iter().position(|c| c.0 == col).and_then(|i| kind.example().get(i)).copied();
    match (ex("证件号码"), ex("姓名")) {
        (Some(id), Some(name)) => row.get("证件号码").eq_ignore_ascii_case(id) && row.get("姓名") == name,
        _ => false,
    }
}

pub(crate) const EXAMPLE_ROW_REASON: &str = "这是模板中的示例行（示例人员），不是真实数据：请删除该行后再导入";

/// Every problem of a rejected row, not only the first: `first` (what the row's reading stopped at),
/// then each column's own check that fails (required, ID number, name, sex, dates, years, amounts, codes,
/// the closed lists). Rules that relate columns to each other are in `first` only.
pub(crate) fn row_problems(kind: RosterKind, row: &Row, regions: &HashSet<String>, first: Reject) -> Vec<Reject> {
    let mut out = vec![first];
    let mut add = |r: Result<(), Reject>| {
        if let Err(e) = r {
            if !out.iter().any(|o| o.0 == e.0) {
                out.push(e);
            }
        }
    };
    for &(col, required) in kind.columns() {
        if row.reader.column(col).is_none() {
            continue;
        }
        let v = row.get(col);
        if v.is_empty() {
            if required {
                add(Err((col.into(), "必填项为空".into())));
            }
            continue;
        }
        let one_of = |list: &[&str]| {
            if list.contains(&v) {
                Ok(())
            } else {
                Err((
                    col.to_string(),
                    format!("“{v}”无效（{}）", list.iter().filter(|x| !x.is_empty()).copied().collect::<Vec<_>>().join("、")),
                ))
            }
        };
        let check: Result<(), Reject> = match col {
            "证件号码" => row.person_id().map(|_| ()),
            "姓名" => row.name().map(|_| ()),
            "性别" => Sex::parse(v).map(|_| ()).ok_or_else(|| (col.to_string(), format!("性别“{v}”无效（男 / 女）"))),
            "与户主关系" => one_of(&RELATIONS),
            "贫困状态" => one_of(&POVERTY_STATUS),
            "监测对象类型" => one_of(&MONITOR_TYPES),
            "残疾等级" => one_of(&DISABILITY),
            "人员类别" => IdentitySet::parse_list(v).map(|_| ()).map_err(|e| (col.to_string(), e)),
            "个人缴费" | "资助金额" => row.money(col).map(|_| ()),
            "行政区划代码" => {
                let ok_len = v.len() == 12 || (kind != RosterKind::Poverty && v.len() == 6);
                if !ok_len || !v.bytes().all(|b| b.is_ascii_digit()) {
                    Err((col.into(), format!("行政区划代码“{v}”位数不对或含非数字字符")))
                } else if !regions.contains(v) {
                    Err((col.into(), format!("行政区划代码“{v}”不存在")))
                } else {
                    Ok(())
                }
            }
            "参保地区划" if v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()) => {
                Err((col.into(), format!("“{v}”应为 6 位区划代码")))
            }
            c if c.ends_with("日期") => row.date(col).map(|_| ()),
            c if c.ends_with("年度") => row.year(col).map(|_| ()),
            _ => Ok(()),
        };
        add(check);
    }
    out
}

/// One rejection of a row from all its problems: the field(s) and the reason(s), each problem named by
/// its field when there are several.
pub(crate) fn rejection(rowno: u64, problems: Vec<Reject>, cells: &[String]) -> Rejection {
    if problems.len() == 1 {
        let (field, reason) = problems.into_iter().next().expect("one");
        return Rejection { row: rowno, field, reason, cells: cells.to_vec() };
    }
    let field = problems.iter().map(|p| p.0.as_str()).filter(|f| !f.is_empty()).collect::<Vec<_>>().join("、");
    let reason = problems.iter().map(|(f, r)| if f.is_empty() { r.clone() } else { format!("{f}：{r}") }).collect::<Vec<_>>().join("；");
    Rejection { row: rowno, field, reason, cells: cells.to_vec() }
}

/// Imports one roster file. Rows are validated as they stream; valid rows are staged in batches and
/// merged when the whole file has been read, all in one transaction.
pub async fn import_file(
    store: &Store,
    kind: RosterKind,
    path: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let file_name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string());
    let sha = sha256_file(path)?;
    let mut report = ImportReport { kind: kind.id().into(), file: path.display().to_string(), ..Default::default() };
    if let Some(prev) = store.find_import(kind.id(), &sha).await? {
        report.already_imported_as = Some(prev.id);
        report.rows_total = prev.rows_total as u64;
        report.rows_accepted = prev.rows_accepted as u64;
        report.rows_rejected = prev.rows_rejected as u64;
        return Ok(report);
    }
    let mut reader = TableReader::open_with(path, &opts.limits)?;
    let required: Vec<&str> = kind.columns().iter().filter(|c| c.1).map(|c| c.0).collect();
    reader.require(&required)?;

    // Region codes that exist (villages and counties).
    let regions: HashSet<String> = store.region_codes().await?;
    if regions.is_empty() {
        return Err(ImportError::NoRegions);
    }

    let mut imp = store.start_import(kind.id(), &file_name, &sha).await?;
    let result = if kind.is_programme() {
        let mut fixed = Normalised::default();
        crate::programmes::read_and_merge(store, kind, &mut reader, &regions, &mut imp, &mut fixed, progress)
            .await
            .map(|(rejections, total)| ParseOutcome { reader, fixed, rejections, conflicts: Vec::new(), total })
    } else {
        read_rows(kind, reader, regions, &mut imp, opts.batch, Normalised::default(), progress).await
    };
    let ParseOutcome { reader, mut fixed, rejections, conflicts, total, .. } = match result {
        Ok(r) => r,
        Err(e) => {
            imp.abandon().await?;
            return Err(e);
        }
    };
    let conflicts = conflicts.len() as u64;
    match kind {
        RosterKind::Poverty => {
            imp.merge_persons().await?;
            imp.merge_poverty().await?;
            imp.merge_periods("poverty").await?;
        }
        RosterKind::Enrolment => {
            imp.merge_persons().await?;
            imp.merge_enrolments().await?;
        }
        RosterKind::Dibao | RosterKind::ExtremePoor => {
            imp.merge_persons().await?;
            imp.merge_periods(kind.id()).await?;
        }
        RosterKind::Death => {
            imp.merge_persons().await?;
            imp.merge_states("death").await?;
        }
        RosterKind::Military => {
            imp.merge_persons().await?;
            imp.merge_states("military").await?;
        }
        // Merged as they were read.
        _ => {}
    }
    report.rows_total = total;
    report.rows_rejected = rejections.len() as u64;
    report.rows_accepted = total - report.rows_rejected;
    report.conflicts = conflicts;
    report.import_id = Some(imp.id);
    report.changes = imp.finish(total, report.rows_accepted, report.rows_rejected).await?;

    report.normalised_rows = fixed.rows;
    if !fixed.kept.is_empty() {
        let dir = opts.report_dir.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
        std::fs::create_dir_all(&dir).map_err(|e| ImportError::Io { file: dir.display().to_string(), reason: e.to_string() })?;
        let stem = path.file_stem().map_or("roster".into(), |s| s.to_string_lossy().to_string());
        let header = vec!["行号".to_string(), "字段".to_string(), "处理".to_string()];
        let rows: Vec<Vec<String>> = fixed.kept.iter().map(|(r, f, n)| vec![r.to_string(), f.clone(), n.clone()]).collect();
        let csv_path = dir.join(format!("{stem}.normalised.csv"));
        write_csv(&csv_path, &header, &rows)?;
        report.normalised_csv = Some(csv_path);
        fixed.kept.truncate(1_000);
        report.normalised = fixed.kept;
    }
    if !rejections.is_empty() {
        let dir = opts.report_dir.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
        std::fs::create_dir_all(&dir).map_err(|e| ImportError::Io { file: dir.display().to_string(), reason: e.to_string() })?;
        let stem = path.file_stem().map_or("roster".into(), |s| s.to_string_lossy().to_string());
        let mut header = vec!["行号".to_string(), "字段".to_string(), "原因".to_string()];
        header.extend(reader.header().iter().cloned());
        let rows: Vec<Vec<String>> = rejections
            .iter()
            .map(|r| {
                let mut v = vec![r.row.to_string(), r.field.clone(), r.reason.clone()];
                v.extend(r.cells.iter().cloned());
                v
            })
            .collect();
        let csv_path = dir.join(format!("{stem}.rejected.csv"));
        let xlsx_path = dir.join(format!("{stem}.rejected.xlsx"));
        write_csv(&csv_path, &header, &rows)?;
        write_xlsx(&xlsx_path, &[("被拒绝的行".to_string(), header, rows)])?;
        report.rejections_csv = Some(csv_path);
        report.rejections_xlsx = Some(xlsx_path);
    }
    Ok(report)
}

/// What the parsing thread sends the staging side.
enum Parsed {
    Batch(Batch),
    Progress(u64),
}

/// What the parsing thread found besides the rows it sent.
struct ParseOutcome {
    reader: TableReader,
    fixed: Normalised,
    rejections: Vec<Rejection>,
    conflicts: Vec<(String, Option<i64>, String)>,
    total: u64,
}

/// Reads, checks and stages the rows. Parsing runs on a thread of its own and hands batches to the
/// staging side through a channel of two, so the file is read while the database writes the batch
/// before (two cores: the demo county's enrolment roster went from parse-then-write to both at once).
async fn read_rows(
    kind: RosterKind,
    reader: TableReader,
    regions: HashSet<String>,
    imp: &mut Import,
    batch_rows: usize,
    fixed: Normalised,
    progress: &mut dyn FnMut(u64),
) -> Result<ParseOutcome, ImportError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Parsed>(2);
    let parser = tokio::task::spawn_blocking(move || parse_rows(kind, reader, regions, batch_rows, fixed, &tx));
    let mut staged: Result<(), ImportError> = Ok(());
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Progress(n) => progress(n),
            Parsed::Batch(mut b) => {
                if let Err(e) = b.flush(imp).await {
                    staged = Err(e.into());
                    break;
                }
            }
        }
    }
    // A failed write closes the channel: the parser stops at its next batch.
    drop(rx);
    let parsed = parser.await.map_err(|e| ImportError::Io { file: String::new(), reason: format!("解析线程异常结束：{e}") })?;
    staged?;
    let out = parsed?;
    imp.add_conflicts(kind.id(), &out.conflicts).await?;
    if matches!(kind, RosterKind::Poverty | RosterKind::Enrolment) {
        imp.resolve_conflicts(kind.id()).await?;
    }
    Ok(out)
}

fn parse_rows(
    kind: RosterKind,
    mut reader: TableReader,
    regions: HashSet<String>,
    batch_rows: usize,
    mut fixed: Normalised,
    tx: &tokio::sync::mpsc::Sender<Parsed>,
) -> Result<ParseOutcome, ImportError> {
    let mut rejections = Vec::new();
    let mut batch = Batch::default();
    let mut cells = Vec::new();
    let mut total = 0u64;
    // id (+ year for enrolment) → first row and its household / psn_no, for duplicates in the file.
    let mut seen = KeyIndex::default();
    // Per distinct person: first row and the id of its household / psn_no (interned: many members
    // share a household), so memory grows by a few bytes a row, not a string.
    let mut seen_info: Vec<(u64, u32)> = Vec::new();
    let mut others = KeyIndex::default();
    let mut conflicts: Vec<(String, Option<i64>, String)> = Vec::new();
    let mut key = Vec::with_capacity(32);
    // The staging side has gone (its write failed, and it reports that): stop reading.
    let stopped = || ImportError::Io { file: String::new(), reason: "导入已中止".into() };
    while let Some(rowno) = reader.next_row(&mut cells)? {
        total += 1;
        if total.is_multiple_of(10_000) {
            tx.blocking_send(Parsed::Progress(total)).map_err(|_| stopped())?;
        }
        let row = Row::new(&cells, &reader);
        if is_example_row(kind, &row) {
            rejections
                .push(Rejection { row: rowno, field: "证件号码".into(), reason: EXAMPLE_ROW_REASON.into(), cells: cells.clone() });
            continue;
        }
        let mark = batch.mark();
        let parsed = parse_row(kind, &row, &regions, &mut batch);
        // A row that cannot be read is listed with every problem it has, not only the first.
        let parsed = parsed.map_err(|e| row_problems(kind, &row, &regions, e));
        let outcome = match parsed {
            Ok((id_key, other)) => {
                key.clear();
                key.extend_from_slice(id_key.as_bytes());
                let (idx, new) = seen.intern(&key);
                let (other_id, _) = others.intern(other.as_bytes());
                if new {
                    seen_info.push((rowno, other_id));
                    Ok(())
                } else {
                    let (first_row, first_other_id) = seen_info[idx as usize];
                    let first_other = String::from_utf8_lossy(others.key(first_other_id)).to_string();
                    if first_other_id != other_id && kind == RosterKind::Poverty {
                        let detail = format!("同一人出现在两个户中：户编号 {first_other}（第 {first_row} 行）与 {other}（第 {rowno} 行）");
                        conflicts.push((id_key.clone(), None, detail.clone()));
                        Err(vec![("证件号码".to_string(), format!("{detail}，请核实去重"))])
                    } else if first_other_id != other_id && kind == RosterKind::Enrolment {
                        let detail =
                            format!("同一人同一年度参保两次：人员编号 {first_other}（第 {first_row} 行）与 {other}（第 {rowno} 行）");
                        let (id_no, year) = id_key.split_once(':').unwrap_or((id_key.as_str(), ""));
                        conflicts.push((id_no.to_string(), year.parse::<i64>().ok(), detail.clone()));
                        Err(vec![("证件号码".to_string(), format!("{detail}，请核实去重"))])
                    } else {
                        Err(vec![("证件号码".to_string(), format!("与第 {first_row} 行重复"))])
                    }
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => fixed.take(rowno, &row),
            Err(problems) => {
                batch.rollback(mark);
                rejections.push(rejection(rowno, problems, &cells));
            }
        }
        if batch.len() >= batch_rows {
            tx.blocking_send(Parsed::Batch(std::mem::take(&mut batch))).map_err(|_| stopped())?;
        }
    }
    tx.blocking_send(Parsed::Batch(batch)).map_err(|_| stopped())?;
    tx.blocking_send(Parsed::Progress(total)).map_err(|_| stopped())?;
    Ok(ParseOutcome { reader, fixed, rejections, conflicts, total })
}

impl Batch {
    fn mark(&self) -> [usize; 5] {
        [self.persons.len(), self.periods.len(), self.states.len(), self.poverty.len(), self.enrolments.len()]
    }
    /// Drops everything added since `mark` (a row rejected after parsing: nothing of it is applied).
    fn rollback(&mut self, m: [usize; 5]) {
        self.persons.truncate(m[0]);
        self.periods.truncate(m[1]);
        self.states.truncate(m[2]);
        self.poverty.truncate(m[3]);
        self.enrolments.truncate(m[4]);
    }
}

/// Parses and validates one row, appending what it means to `batch`. Returns the row's identity key
/// (for duplicates in the file) and the attribute whose disagreement makes a duplicate a conflict.
fn parse_row(kind: RosterKind, row: &Row, regions: &HashSet<String>, batch: &mut Batch) -> Result<(String, String), Reject> {
    let id = row.person_id()?;
    let name = row.name()?;
    let region = |col: &str, allow_county: bool| -> Result<String, Reject> {
        let v = row.required(col)?;
        let ok_len = v.len() == 12 || (allow_county && v.len() == 6);
        if !ok_len || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err((col.into(), format!("行政区划代码“{v}”应为 {} 位数字", if allow_county { "12 位（村）或 6" } else { "12" })));
        }
        if !regions.contains(v) {
            return Err((col.into(), format!("行政区划代码“{v}”不存在")));
        }
        Ok(v.to_string())
    };
    match kind {
        RosterKind::Poverty => {
            let household = row.required("户编号")?.to_string();
            let relation = row.required("与户主关系")?;
            if !RELATIONS.contains(&relation) {
                return Err(("与户主关系".into(), format!("“{relation}”无效（{}）", RELATIONS.join("、"))));
            }
            let village = region("行政区划代码", false)?;
            let status = row.get("贫困状态");
            if !POVERTY_STATUS.contains(&status) {
                return Err(("贫困状态".into(), format!("“{status}”无效（未脱贫、已脱贫、已清退，或留空）")));
            }
            let reg_year = row.year("识别年度")?;
            let exit_year = row.year("脱贫年度")?;
            if !status.is_empty() && reg_year.is_none() {
                return Err(("识别年度".into(), "有贫困状态时必填".into()));
            }
            if status == "已脱贫" && exit_year.is_none() {
                return Err(("脱贫年度".into(), "已脱贫时必填".into()));
            }
            if let (Some(r), Some(e)) = (reg_year, exit_year) {
                if e < r {
                    return Err(("脱贫年度".into(), format!("脱贫年度 {e} 早于识别年度 {r}")));
                }
            }
            let monitor_type = row.get("监测对象类型");
            if !MONITOR_TYPES.contains(&monitor_type) {
                return Err(("监测对象类型".into(), format!("“{monitor_type}”无效（边缘易致贫户、脱贫不稳定户、突发严重困难户）")));
            }
            let monitor_date = row.date("纳入监测日期")?;
            if !monitor_type.is_empty() && monitor_date.is_none() {
                return Err(("纳入监测日期".into(), "有监测对象类型时必填".into()));
            }
            if status.is_empty() && monitor_type.is_empty() {
                return Err(("贫困状态".into(), "贫困状态与监测对象类型不能都为空".into()));
            }
            let cause = row.get("致贫原因");
            let disability = row.get("残疾等级");
            if !DISABILITY.contains(&disability) {
                return Err(("残疾等级".into(), format!("“{disability}”无效（一级至四级）")));
            }
            let change_date = match row.date("变动日期")? {
                Some(d) => date_num(d),
                None => jan1(reg_year.unwrap_or_else(|| monitor_date.map_or(2000, |d| i64::from(d.year())))),
            };
            let id_no = id.as_str().to_string();
            // Identity periods asserted by this row (docs/ROSTERS.md).
            let mut poverty_end = None;
            if let Some(r) = reg_year {
                // Registered during 识别年度: from 变动日期 when it falls in that year (a household found in
                // November is "new" in November), else from 1 January.
                let start = if change_date / 10_000 == r { change_date } else { jan1(r) };
                let end_all = if status == "已清退" { Some(change_date.max(start)) } else { None };
                match (status, exit_year) {
                    ("已脱贫", Some(e)) | ("已清退", Some(e)) => {
                        let exit = jan1(e).max(start);
                        batch.periods.push(PeriodRow {
                            id_no: id_no.clone(),
                            identity: "registered_poor".into(),
                            start_date: start,
                            end_date: Some(exit),
                        });
                        if end_all.is_none_or(|x| x > exit) {
                            batch.periods.push(PeriodRow {
                                id_no: id_no.clone(),
                                identity: "exited_poor".into(),
                                start_date: exit,
                                end_date: end_all,
                            });
                        }
                    }
                    ("未脱贫", _) | ("已清退", None) => {
                        batch.periods.push(PeriodRow {
                            id_no: id_no.clone(),
                            identity: "registered_poor".into(),
                            start_date: start,
                            end_date: end_all,
                        });
                    }
                    _ => {}
                }
                poverty_end = Some(end_all);
                if cause == "因病" {
                    batch.periods.push(PeriodRow {
                        id_no: id_no.clone(),
                        identity: "illness_poor".into(),
                        start_date: start,
                        end_date: end_all,
                    });
                }
            }
            if let Some(md) = monitor_date {
                if !monitor_type.is_empty() {
                    batch.periods.push(PeriodRow {
                        id_no: id_no.clone(),
                        identity: "marginal".into(),
                        start_date: date_num(md),
                        end_date: None,
                    });
                }
            }
            if !disability.is_empty() {
                batch.periods.push(PeriodRow {
                    id_no: id_no.clone(),
                    identity: "disabled".into(),
                    start_date: change_date.min(jan1(reg_year.unwrap_or(9999))),
                    end_date: poverty_end.flatten(),
                });
            }
            let mut p = person(&id, name);
            p.household_no = Some(household.clone());
            p.relation = Some(relation.to_string());
            p.village_code = Some(village.clone());
            batch.persons.push(p);
            batch.poverty.push(PovertyRow {
                id_no: id_no.clone(),
                household_no: household.clone(),
                village_code: village,
                status: status.to_string(),
                reg_year,
                exit_year,
                monitor_type: (!monitor_type.is_empty()).then(|| monitor_type.to_string()),
                monitor_date: monitor_date.map(date_num),
                cause: (!cause.is_empty()).then(|| cause.to_string()),
                disability: (!disability.is_empty()).then(|| disability.to_string()),
                change_date,
            });
            Ok((id_no, household))
        }
        RosterKind::Enrolment => {
            let psn_no = row.required("人员编号")?.to_string();
            let year = row.year("参保年度")?.ok_or_else(|| ("参保年度".to_string(), "必填项为空".to_string()))?;
            let status = row.required("参保状态")?;
            let insured = match status {
                "正常参保" | "参保" | "正常" => true,
                "未参保" | "停保" | "暂停" | "终止" => false,
                other => return Err(("参保状态".into(), format!("“{other}”无效（正常参保、未参保、停保）"))),
            };
            let admdvs = row.required("参保地区划")?;
            if admdvs.len() != 6 || !admdvs.bytes().all(|b| b.is_ascii_digit()) {
                return Err(("参保地区划".into(), format!("“{admdvs}”应为 6 位区划代码")));
            }
            let flags = IdentitySet::parse_list(row.get("人员类别")).map_err(|e| ("人员类别".to_string(), e))?;
            let flag_date = row.date("标识日期")?.map(date_num);
            let premium = row.money("个人缴费")?.ok_or_else(|| ("个人缴费".to_string(), "必填项为空".to_string()))?;
            let subsidy = row.money("资助金额")?.unwrap_or(Fen::ZERO);
            let source = row.get("资助来源");
            let mut p = person(&id, name);
            p.psn_no = Some(psn_no.clone());
            batch.persons.push(p);
            batch.enrolments.push(EnrolmentRow {
                id_no: id.as_str().to_string(),
                psn_no: psn_no.clone(),
                year,
                status: status.to_string(),
                insured,
                insured_admdvs: admdvs.to_string(),
                flags: i64::from(flags.bits()),
                flag_date,
                premium_fen: premium.0,
                subsidy_fen: subsidy.0,
                subsidy_source: (!source.is_empty()).then(|| source.to_string()),
            });
            Ok((format!("{}:{year}", id.as_str()), psn_no))
        }
        RosterKind::Dibao | RosterKind::ExtremePoor => {
            let region_code = region("行政区划代码", true)?;
            let start = row.req_date("保障起始日期")?;
            let mut end = row.date("保障终止日期")?;
            if end.is_some_and(|e| e <= start) {
                return Err(("保障终止日期".into(), "终止日期不晚于起始日期".into()));
            }
            // The medical-assistance class (2021+, 国办发〔2021〕42号) of a civil-affairs roster row:
            // 低保对象 by default. 因病致贫重病患者 are recognised for a period: without an end date, 12 months.
            let class = if kind == RosterKind::Dibao { row.get("救助类别") } else { "" };
            let identity = match (kind, class) {
                (RosterKind::ExtremePoor, _) | (_, "特困人员" | "特困供养人员") => "extreme_poor",
                (_, "" | "低保对象" | "低保") => "dibao",
                (_, "低保边缘家庭成员" | "低保边缘") => "dibao_edge",
                (_, "因病致贫重病患者" | "因病致贫") => {
                    if end.is_none() {
                        end = Some(months_later(start, ILLNESS_POOR_MONTHS));
                    }
                    "illness_poor"
                }
                (_, other) => {
                    return Err((
                        "救助类别".into(),
                        format!("“{other}”无效（低保对象、特困人员、低保边缘家庭成员、因病致贫重病患者；空为低保对象）"),
                    ))
                }
            };
            let mut p = person(&id, name);
            if region_code.len() == 12 {
                p.village_code = Some(region_code);
            }
            batch.persons.push(p);
            batch.periods.push(PeriodRow {
                id_no: id.as_str().to_string(),
                identity: identity.into(),
                start_date: date_num(start),
                end_date: end.map(date_num),
            });
            Ok((format!("{}:{}", id.as_str(), date_num(start)), String::new()))
        }
        RosterKind::Death => {
            let d = row.req_date("死亡日期")?;
            if d < id.birth_date() {
                return Err(("死亡日期".into(), "死亡日期早于出生日期".into()));
            }
            batch.persons.push(person(&id, name));
            batch.states.push(StateRow { id_no: id.as_str().to_string(), start_date: date_num(d), end_date: None });
            Ok((id.as_str().to_string(), String::new()))
        }
        RosterKind::Military => {
            let start = row.req_date("入伍日期")?;
            let end = row.date("退役日期")?;
            if end.is_some_and(|e| e <= start) {
                return Err(("退役日期".into(), "退役日期不晚于入伍日期".into()));
            }
            batch.persons.push(person(&id, name));
            batch.states.push(StateRow { id_no: id.as_str().to_string(), start_date: date_num(start), end_date: end.map(date_num) });
            Ok((format!("{}:{}", id.as_str(), date_num(start)), String::new()))
        }
        // Programme files are read by `crate::programmes`.
        k => Err((String::new(), format!("{} 不是户籍类名单", k.name_zh()))),
    }
}

/// An empty template of a roster. The data sheet (the first, the one an import reads) holds only the
/// headers; the example row is on a sheet of its own (填写示例) and a 填写说明 sheet says which columns are
/// required — so a template filled in and uploaded cannot carry the example in as a person (and should it
/// be copied into the data, the import refuses it: [`is_example_row`]). A CSV template is the header
/// line only. ID numbers are written as text.
pub fn write_template(kind: RosterKind, path: &Path) -> Result<(), TableError> {
    let header: Vec<String> = kind.columns().iter().map(|(c, _)| c.to_string()).collect();
    let example: Vec<String> = kind.example().iter().map(|s| s.to_string()).collect();
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        write_csv(path, &header, &[])
    } else {
        let notes: Vec<Vec<String>> = kind
            .columns()
            .iter()
            .zip(kind.example())
            .map(|((c, req), ex)| vec![c.to_string(), if *req { "必填" } else { "选填" }.to_string(), ex.to_string()])
            .collect();
        write_xlsx(
            path,
            &[
                (kind.name_zh().to_string(), header.clone(), Vec::new()),
                ("填写示例（不导入）".to_string(), header, vec![example]),
                ("填写说明".to_string(), vec!["列名".to_string(), "是否必填".to_string(), "示例".to_string()], notes),
            ],
        )
    }
}

/// How long a 因病致贫重病患者 recognition lasts when the roster gives no end date (months).
pub const ILLNESS_POOR_MONTHS: u8 = 12;

/// The same day `months` later (the month's last day when it has no such day); identity periods end
/// exclusive, so this is the first day no longer covered.
fn months_later(d: Date, months: u8) -> Date {
    let m0 = u32::from(d.month()) - 1 + u32::from(months);
    let year = d.year() + (m0 / 12) as u16;
    let month = (m0 % 12) as u8 + 1;
    let day = d.day().min(baozhang_core::date::days_in_month(year, month));
    Date::new(year, month, day).expect("valid by construction")
}

#[cfg(test)]
mod class_tests {
    use super::*;

    #[test]
    fn twelve_months_from_recognition() {
        let d = |s: &str| Date::parse(s).unwrap();
        assert_eq!(months_later(d("2024-03-15"), 12), d("2025-03-15"));
        assert_eq!(months_later(d("2024-02-29"), 12), d("2025-02-28"));
        assert_eq!(months_later(d("2024-11-30"), 3), d("2025-02-28"));
    }
}
