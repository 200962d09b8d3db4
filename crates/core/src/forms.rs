//! Periodic forms (定期报表, issue 19): what townships, hospitals and offices report each month, quarter,
//! half-year or year, as data. A form names its fields (integer, decimal, text, choice, yes/no, with units
//! and bounds), its repeating rows where the printed form has rows (one per supporting hospital, one per
//! survey question), the checks between fields (总数 = the parts), its period type, its due day, the units
//! that must report and the roles that may enter it. The shipped forms are in `data/periodic/`, each
//! transcribed from its seed and citing it.
//!
//! Everything here is pure: parsing and validating a form file, the period and due-day arithmetic, the
//! checks of one submission's values, and how a unit's report for a period stands on a day (on time, late,
//! returned for correction, overdue, not yet due), from which the completeness and timeliness rates
//! (DHIS2's reporting rate and on-time rate) are counted.
//!
//! Readings taken:
//! - "每月25日前报送" is read as *on or before* the 25th (as the monthly reports of R-SUP-3), and the month
//!   reported is the month the report is due in, unless the form says `months_after` (a quarter's
//!   analysis due the 10th of the next month has `months_after = 1`).
//! - A due day past the end of a short month is that month's last day (the 31st in February is the 28th
//!   or 29th). A due day on a weekend or holiday stays where it is, unless the form says
//!   `working_day = true`; then it moves to the next working day of the calendar.
//! - A report returned for correction counts as expected and neither complete nor on time until it is
//!   submitted again; then its timeliness is that of its first submission (the unit reported on time;
//!   the correction is a separate matter, kept in its history). On time counts only complete reports.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::date::{days_in_month, Date};
use crate::workdays::Calendar;

/// Longest text a text field takes, unless the form says less.
pub const MAX_TEXT_CHARS: usize = 500;
/// Most repeating rows a form may allow.
pub const MAX_TABLE_ROWS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeriodKind {
    Month,
    Quarter,
    HalfYear,
    Year,
}

impl PeriodKind {
    pub fn parse(s: &str) -> Option<PeriodKind> {
        Some(match s {
            "month" => PeriodKind::Month,
            "quarter" => PeriodKind::Quarter,
            "half_year" => PeriodKind::HalfYear,
            "year" => PeriodKind::Year,
            _ => return None,
        })
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            PeriodKind::Month => "月报",
            PeriodKind::Quarter => "季报",
            PeriodKind::HalfYear => "半年报",
            PeriodKind::Year => "年报",
        }
    }
    /// Periods in a year.
    pub fn per_year(self) -> u8 {
        match self {
            PeriodKind::Month => 12,
            PeriodKind::Quarter => 4,
            PeriodKind::HalfYear => 2,
            PeriodKind::Year => 1,
        }
    }
    fn months(self) -> u8 {
        12 / self.per_year()
    }
}

/// One reporting period of a form: the year and the month (1–12), quarter (1–4), half (1–2) or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub kind: PeriodKind,
    pub year: u16,
    pub index: u8,
}

impl Period {
    pub fn new(kind: PeriodKind, year: u16, index: u8) -> Option<Period> {
        ((1..=kind.per_year()).contains(&index) && (1900..=2200).contains(&year)).then_some(Period { kind, year, index })
    }
    /// The stored code: year × 100 + index (201805 is May 2018 for a monthly form, 201802 the second
    /// quarter for a quarterly one; the form's period type tells them apart).
    pub fn code(self) -> i64 {
        i64::from(self.year) * 100 + i64::from(self.index)
    }
    pub fn from_code(kind: PeriodKind, code: i64) -> Option<Period> {
        Period::new(kind, u16::try_from(code / 100).ok()?, u8::try_from(code % 100).ok()?)
    }
    /// The period that holds a day.
    pub fn of_date(kind: PeriodKind, d: Date) -> Period {
        Period { kind, year: d.year(), index: (d.month() - 1) / kind.months() + 1 }
    }
    pub fn first_month(self) -> u8 {
        (self.index - 1) * self.kind.months() + 1
    }
    pub fn last_month(self) -> u8 {
        self.index * self.kind.months()
    }
    pub fn first_day(self) -> Date {
        Date::new(self.year, self.first_month(), 1).expect("a period's first day exists")
    }
    pub fn last_day(self) -> Date {
        let m = self.last_month();
        Date::new(self.year, m, days_in_month(self.year, m)).expect("a period's last day exists")
    }
    pub fn next(self) -> Period {
        if self.index == self.kind.per_year() {
            Period { year: self.year + 1, index: 1, ..self }
        } else {
            Period { index: self.index + 1, ..self }
        }
    }
    /// The periods of a year, in order.
    pub fn of_year(kind: PeriodKind, year: u16) -> Vec<Period> {
        (1..=kind.per_year()).filter_map(|i| Period::new(kind, year, i)).collect()
    }
    /// 2018年5月, 2018年第二季度, 2018年上半年, 2018年度.
    pub fn label_zh(self) -> String {
        let y = self.year;
        match self.kind {
            PeriodKind::Month => format!("{y}年{}月", self.index),
            PeriodKind::Quarter => format!("{y}年第{}季度", ["", "一", "二", "三", "四"][usize::from(self.index)]),
            PeriodKind::HalfYear => format!("{y}年{}", if self.index == 1 { "上半年" } else { "下半年" }),
            PeriodKind::Year => format!("{y}年度"),
        }
    }
    /// The form of a period in an address or a form field: 2018-05, 2018-Q2, 2018-H1, 2018.
    pub fn key(self) -> String {
        match self.kind {
            PeriodKind::Month => format!("{}-{:02}", self.year, self.index),
            PeriodKind::Quarter => format!("{}-Q{}", self.year, self.index),
            PeriodKind::HalfYear => format!("{}-H{}", self.year, self.index),
            PeriodKind::Year => format!("{}", self.year),
        }
    }
    pub fn parse_key(kind: PeriodKind, s: &str) -> Option<Period> {
        let s = s.trim();
        let (y, rest) = s.split_at(s.find('-').unwrap_or(s.len()));
        let year: u16 = y.parse().ok()?;
        let rest = rest.strip_prefix('-').unwrap_or(rest);
        let index: u8 = match kind {
            PeriodKind::Month => rest.parse().ok()?,
            PeriodKind::Quarter => rest.strip_prefix('Q').or_else(|| rest.strip_prefix('q'))?.parse().ok()?,
            PeriodKind::HalfYear => rest.strip_prefix('H').or_else(|| rest.strip_prefix('h'))?.parse().ok()?,
            PeriodKind::Year if rest.is_empty() => 1,
            PeriodKind::Year => return None,
        };
        Period::new(kind, year, index)
    }
}

/// The due day of a form's report for a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// Months after the period's last month (0: in the period's last month).
    pub months_after: u8,
    /// For yearly forms: a fixed month of the period's year (7: the 31 July summary), instead of
    /// `months_after`.
    pub month: Option<u8>,
    /// Day of the month; 31 means the month's last day in shorter months.
    pub day: u8,
    /// A due day on a weekend or holiday moves to the next working day.
    pub working_day: bool,
}

impl Due {
    /// The last day on time for `p`'s report.
    pub fn date(&self, p: Period, cal: &Calendar) -> Date {
        let (year, month) = match self.month {
            Some(m) => (p.year, m),
            None => {
                let m0 = u32::from(p.last_month()) - 1 + u32::from(self.months_after);
                (p.year + (m0 / 12) as u16, (m0 % 12) as u8 + 1)
            }
        };
        let day = self.day.min(days_in_month(year, month)).max(1);
        let d = Date::new(year, month, day).expect("clamped due day exists");
        if self.working_day && !cal.is_working(d) {
            cal.add_working_days(d, 1)
        } else {
            d
        }
    }
    /// In words, for the page: 每月25日前, 季后次月10日前, 每年12月1日前.
    pub fn words(&self, kind: PeriodKind) -> String {
        let day = if self.day >= 31 { "月末".to_string() } else { format!("{}日", self.day) };
        let wd = if self.working_day { "（遇节假日顺延）" } else { "" };
        match (kind, self.month, self.months_after) {
            (_, Some(m), _) => format!("每年{m}月{day}前{wd}"),
            (PeriodKind::Month, None, 0) => format!("每月{day}前{wd}"),
            (PeriodKind::Month, None, 1) => format!("次月{day}前{wd}"),
            (PeriodKind::Month, None, n) => format!("报告期后第{n}个月{day}前{wd}"),
            (PeriodKind::Year, None, 0) => format!("每年12月{day}前{wd}"),
            (k, None, 0) => format!("{}末月{day}前{wd}", period_word(k)),
            (k, None, n) => format!("{}后第{n}个月{day}前{wd}", period_word(k)),
        }
    }
}

fn period_word(k: PeriodKind) -> &'static str {
    match k {
        PeriodKind::Month => "月",
        PeriodKind::Quarter => "季",
        PeriodKind::HalfYear => "半年",
        PeriodKind::Year => "年",
    }
}

/// Who must report a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Units {
    /// Every township of the county (乡镇), e.g. its 食药监所 or 卫生院.
    Townships,
    /// The county's registered hospitals of these levels (1 township, 2 county, 3 city/province).
    Hospitals(Vec<i64>),
    /// Named offices: (code, name), e.g. ("insurance", "医保部门").
    Offices(Vec<(String, String)>),
}

impl Units {
    pub fn words(&self) -> String {
        match self {
            Units::Townships => "各乡镇".into(),
            Units::Hospitals(l) => {
                let names: Vec<&str> = l.iter().map(|l| hospital_level_zh(*l)).collect();
                names.join("、")
            }
            Units::Offices(o) => o.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join("、"),
        }
    }
}

pub fn hospital_level_zh(l: i64) -> &'static str {
    match l {
        1 => "乡镇卫生院",
        2 => "县级医院",
        _ => "市级以上医院",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Integer,
    /// A number with up to `scale` decimals, kept as an integer of 10^-scale units (万元 with 2 decimals).
    Decimal {
        scale: u8,
    },
    Text {
        max_chars: usize,
    },
    Choice(Vec<String>),
    YesNo,
}

impl FieldKind {
    pub fn numeric(&self) -> bool {
        matches!(self, FieldKind::Integer | FieldKind::Decimal { .. })
    }
    pub fn scale(&self) -> u8 {
        match self {
            FieldKind::Decimal { scale } => *scale,
            _ => 0,
        }
    }
}

/// One field (or one column of the repeating rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    /// 序号 as printed (附表1's 1–12), empty when the form has none.
    pub no: String,
    /// The printed group heading (类别 spanning several rows: 检查涉药单位（户次）).
    pub group: String,
    pub label: String,
    pub kind: FieldKind,
    /// Unit of measure as printed: 人次, 户次, 盒/袋/公斤, 万元.
    pub unit: String,
    pub required: bool,
    /// Bounds in the field's own units × 10^scale.
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub help: String,
}

impl Field {
    pub fn full_label(&self) -> String {
        if self.group.is_empty() || self.group == self.label {
            self.label.clone()
        } else {
            format!("{}·{}", self.group, self.label)
        }
    }
}

/// Repeating rows: one per supporting hospital, one per survey question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Field>,
    pub min_rows: usize,
    pub max_rows: usize,
    /// The column whose value names a row and may not repeat (支援医院).
    pub key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Le,
    Ge,
}

/// A check between numeric fields: sum(left) op sum(right). On the repeating rows, per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub left: Vec<String>,
    pub op: Op,
    pub right: Vec<String>,
    pub message: String,
    pub per_row: bool,
}

/// What a form's figures feed: an indicator of the dashboard and the score sheets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndicatorSpec {
    /// `remote_coverage`, `awareness`.
    pub id: String,
    /// Fields the indicator reads (numerator, denominator; for a yes/no share, the field).
    pub fields: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormDef {
    pub id: String,
    pub title: String,
    /// The document it is transcribed from: 文号, title, attachment.
    pub source: String,
    /// How the document asks for it, quoted.
    pub quote: String,
    pub period: PeriodKind,
    pub due: Due,
    pub units: Units,
    /// Roles that may enter it (admin, bureau, hospital; a unit's own account for hospitals).
    pub roles: Vec<String>,
    /// First and last period reported (inclusive).
    pub start: Period,
    pub end: Option<Period>,
    pub fields: Vec<Field>,
    pub table: Option<Table>,
    pub checks: Vec<Check>,
    pub indicator: Option<IndicatorSpec>,
    /// Whether values shown are sample or interpreted (示意), with why: a due day the seed does not give.
    pub notes: Vec<String>,
}

// ---- the file format -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormFile {
    id: String,
    title: String,
    source: String,
    #[serde(default)]
    quote: String,
    period: String,
    due: DueFile,
    units: UnitsFile,
    roles: Vec<String>,
    start: String,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    fields: Vec<FieldFile>,
    #[serde(default)]
    table: Option<TableFile>,
    #[serde(default)]
    checks: Vec<CheckFile>,
    #[serde(default)]
    indicator: Option<IndicatorFile>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DueFile {
    #[serde(default)]
    months_after: u8,
    #[serde(default)]
    month: Option<u8>,
    day: u8,
    #[serde(default)]
    working_day: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    kind: String,
    #[serde(default)]
    levels: Vec<i64>,
    #[serde(default)]
    offices: Vec<[String; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    key: String,
    #[serde(default)]
    no: String,
    #[serde(default)]
    group: String,
    label: String,
    kind: String,
    #[serde(default)]
    scale: u8,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    min: Option<String>,
    #[serde(default)]
    max: Option<String>,
    #[serde(default)]
    choices: Vec<String>,
    #[serde(default)]
    max_chars: Option<usize>,
    #[serde(default)]
    help: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    title: String,
    columns: Vec<FieldFile>,
    #[serde(default)]
    min_rows: usize,
    max_rows: usize,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    rule: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    id: String,
    fields: Vec<String>,
}

/// Roles a form may name.
pub const ROLES: [&str; 5] = ["admin", "bureau", "hospital", "cadre", "auditor"];
/// Indicators the product computes from forms.
pub const INDICATORS: [&str; 2] = ["remote_coverage", "awareness"];

fn month_key(s: &str, kind: PeriodKind, what: &str) -> Result<Period, String> {
    // Start and end are written as months (2018-05) and taken as the period holding that month.
    let d = Date::parse(&format!("{}-01", s.trim())).map_err(|_| format!("{what}“{s}”不是月份（如 2018-05）"))?;
    Ok(Period::of_date(kind, d))
}

fn field_of(f: FieldFile, scope: &str) -> Result<Field, String> {
    let at = |m: String| format!("{scope}字段“{}”：{m}", f.key);
    if f.key.is_empty() || !f.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(at("键只能由字母、数字和下划线组成".into()));
    }
    let kind = match f.kind.as_str() {
        "integer" => FieldKind::Integer,
        "decimal" if (1..=4).contains(&f.scale) => FieldKind::Decimal { scale: f.scale },
        "decimal" => return Err(at("小数位数 scale 应为 1–4".into())),
        "text" => FieldKind::Text { max_chars: f.max_chars.unwrap_or(MAX_TEXT_CHARS).min(MAX_TEXT_CHARS) },
        "choice" if !f.choices.is_empty() => FieldKind::Choice(f.choices.clone()),
        "choice" => return Err(at("选择题需列出 choices".into())),
        "yesno" => FieldKind::YesNo,
        other => return Err(at(format!("类型“{other}”无效（integer / decimal / text / choice / yesno）"))),
    };
    let bound = |b: &Option<String>| -> Result<Option<i64>, String> {
        match b {
            None => Ok(None),
            Some(s) if kind.numeric() => parse_number(s, kind.scale()).map(Some).map_err(|e| at(format!("界限“{s}”{e}"))),
            Some(_) => Err(at("只有数值字段可设上下限".into())),
        }
    };
    let (min, max) = (bound(&f.min)?, bound(&f.max)?);
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(at("下限大于上限".into()));
        }
    }
    Ok(Field {
        key: f.key,
        no: f.no,
        group: f.group,
        label: f.label,
        kind,
        unit: f.unit,
        required: f.required,
        // A count is never negative unless a form says so.
        min: min.or(if f.kind == "integer" || f.kind == "decimal" { Some(0) } else { None }),
        max,
        help: f.help,
    })
}

fn parse_rule(rule: &str) -> Result<(Vec<String>, Op, Vec<String>), String> {
    let (op, sym) = if rule.contains("<=") {
        (Op::Le, "<=")
    } else if rule.contains(">=") {
        (Op::Ge, ">=")
    } else if rule.contains('=') {
        (Op::Eq, "=")
    } else {
        return Err(format!("校验“{rule}”缺少 = / <= / >="));
    };
    let (l, r) = rule.split_once(sym).expect("the operator is there");
    let side = |s: &str| -> Vec<String> { s.split('+').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect() };
    let (l, r) = (side(l), side(r));
    if l.is_empty() || r.is_empty() {
        return Err(format!("校验“{rule}”两边都要有字段"));
    }
    Ok((l, op, r))
}

impl FormDef {
    /// Reads and checks a form file (TOML, `data/periodic/*.toml`).
    pub fn parse(toml_text: &str) -> Result<FormDef, String> {
        let f: FormFile = toml::from_str(toml_text).map_err(|e| format!("报表定义无效：{e}"))?;
        let id = f.id.clone();
        let at = |m: String| format!("报表“{id}”：{m}");
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(at("编号只能由小写字母、数字和下划线组成".into()));
        }
        let period =
            PeriodKind::parse(&f.period).ok_or_else(|| at(format!("周期“{}”无效（month / quarter / half_year / year）", f.period)))?;
        if !(1..=31).contains(&f.due.day) {
            return Err(at(format!("截止日 {} 无效", f.due.day)));
        }
        if let Some(m) = f.due.month {
            if period != PeriodKind::Year || !(1..=12).contains(&m) {
                return Err(at("固定月份（due.month）只用于年报，且为 1–12".into()));
            }
        }
        if f.due.months_after > 12 {
            return Err(at("截止月份偏移不超过 12".into()));
        }
        let due = Due { months_after: f.due.months_after, month: f.due.month, day: f.due.day, working_day: f.due.working_day };
        let units = match f.units.kind.as_str() {
            "townships" => Units::Townships,
            "hospitals" if !f.units.levels.is_empty() && f.units.levels.iter().all(|l| (1..=3).contains(l)) => {
                Units::Hospitals(f.units.levels.clone())
            }
            "hospitals" => return Err(at("医疗机构报表需列出等级 levels（1–3）".into())),
            "offices" if !f.units.offices.is_empty() => {
                let o: Vec<(String, String)> = f.units.offices.iter().map(|[c, n]| (c.clone(), n.clone())).collect();
                let codes: BTreeSet<&str> = o.iter().map(|(c, _)| c.as_str()).collect();
                if codes.len() != o.len()
                    || o.iter().any(|(c, _)| c.is_empty() || c.chars().any(|ch| !ch.is_ascii_alphanumeric() && ch != '_'))
                {
                    return Err(at("报送单位编码须唯一，由字母、数字和下划线组成".into()));
                }
                Units::Offices(o)
            }
            other => return Err(at(format!("报送单位类型“{other}”无效（townships / hospitals / offices）"))),
        };
        if f.roles.is_empty() || f.roles.iter().any(|r| !ROLES.contains(&r.as_str())) {
            return Err(at(format!("填报角色应为 {} 之一", ROLES.join(" / "))));
        }
        let start = month_key(&f.start, period, "起始月份")?;
        let end = f.end.as_deref().map(|e| month_key(e, period, "结束月份")).transpose()?;
        if end.is_some_and(|e| e < start) {
            return Err(at("结束月份早于起始月份".into()));
        }
        let fields = f.fields.into_iter().map(|x| field_of(x, "")).collect::<Result<Vec<_>, _>>().map_err(at)?;
        let table = match f.table {
            None => None,
            Some(t) => {
                if t.max_rows == 0 || t.max_rows > MAX_TABLE_ROWS || t.min_rows > t.max_rows {
                    return Err(at(format!("明细行数应为 1–{MAX_TABLE_ROWS}，且最少不多于最多")));
                }
                let columns = t.columns.into_iter().map(|x| field_of(x, "明细")).collect::<Result<Vec<_>, _>>().map_err(at)?;
                if let Some(k) = &t.key {
                    if !columns.iter().any(|c| &c.key == k) {
                        return Err(at(format!("明细的名称列“{k}”不存在")));
                    }
                }
                Some(Table { title: t.title, columns, min_rows: t.min_rows, max_rows: t.max_rows, key: t.key })
            }
        };
        if fields.is_empty() && table.is_none() {
            return Err(at("报表没有字段".into()));
        }
        let mut keys = BTreeSet::new();
        for k in fields.iter().chain(table.iter().flat_map(|t| t.columns.iter())).map(|f| f.key.as_str()) {
            if !keys.insert(k) {
                return Err(at(format!("字段“{k}”重复")));
            }
        }
        let numeric_field = |k: &str| fields.iter().find(|f| f.key == k).is_some_and(|f| f.kind.numeric());
        let numeric_col = |k: &str| table.iter().flat_map(|t| t.columns.iter()).find(|f| f.key == k).is_some_and(|f| f.kind.numeric());
        let mut checks = Vec::new();
        for c in f.checks {
            let (left, op, right) = parse_rule(&c.rule).map_err(at)?;
            let all: Vec<&String> = left.iter().chain(right.iter()).collect();
            let per_row = all.iter().all(|k| numeric_col(k));
            if !per_row && !all.iter().all(|k| numeric_field(k)) {
                return Err(at(format!("校验“{}”引用的字段须都是数值字段，且同在表头或同在明细", c.rule)));
            }
            let scales: BTreeSet<u8> = all
                .iter()
                .filter_map(|k| fields.iter().chain(table.iter().flat_map(|t| t.columns.iter())).find(|f| &f.key == *k))
                .map(|f| f.kind.scale())
                .collect();
            if scales.len() > 1 {
                return Err(at(format!("校验“{}”的字段小数位数不同", c.rule)));
            }
            checks.push(Check { left, op, right, message: c.message, per_row });
        }
        let indicator = match f.indicator {
            None => None,
            Some(i) => {
                if !INDICATORS.contains(&i.id.as_str()) {
                    return Err(at(format!("指标“{}”无效（{}）", i.id, INDICATORS.join(" / "))));
                }
                if let Some(k) = i.fields.iter().find(|k| !keys.contains(k.as_str())) {
                    return Err(at(format!("指标引用的字段“{k}”不存在")));
                }
                Some(IndicatorSpec { id: i.id, fields: i.fields })
            }
        };
        Ok(FormDef {
            id: f.id,
            title: f.title,
            source: f.source,
            quote: f.quote,
            period,
            due,
            units,
            roles: f.roles,
            start,
            end,
            fields,
            table,
            checks,
            indicator,
            notes: f.notes,
        })
    }

    /// The periods of `year` this form is reported for.
    pub fn periods_of_year(&self, year: u16) -> Vec<Period> {
        Period::of_year(self.period, year).into_iter().filter(|p| *p >= self.start && self.end.is_none_or(|e| *p <= e)).collect()
    }

    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().chain(self.table.iter().flat_map(|t| t.columns.iter())).find(|f| f.key == key)
    }

    pub fn may_enter(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

// ---- values and their checks -----------------------------------------------------------------------

/// One submission's values as entered: the fields by key, and the repeating rows (each by column key).
/// Kept as text in each field's canonical form (integers without separators, decimals with their scale,
/// 是/否, the choice as listed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values {
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub rows: Vec<BTreeMap<String, String>>,
}

/// What is wrong with one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The repeating row (1-based), `None` for a field of the form's head.
    pub row: Option<usize>,
    pub key: String,
    pub label: String,
    pub value: String,
    pub reason: String,
}

/// Full-width digits and signs as Chinese input methods produce them, turned into ASCII.
fn half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '．' | '。' => '.',
            '－' => '-',
            '，' => ',',
            '\u{3000}' => ' ',
            c => c,
        })
        .filter(|c| !matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}'))
        .collect()
}

/// A number with up to `scale` decimals, as an integer of 10^-scale units. Accepts full-width digits and
/// thousands separators (1,234); refuses more decimals than the field has, and exponents.
pub fn parse_number(s: &str, scale: u8) -> Result<i64, String> {
    let t = half_width(s).trim().replace([',', ' '], "");
    if t.is_empty() {
        return Err("为空".into());
    }
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty() || !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(if scale == 0 { "不是整数".into() } else { "不是数字".into() });
    }
    // Trailing zeros after the point do not count (12.0 is an integer; Excel writes it so).
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(scale) {
        return Err(if scale == 0 { "应为整数".into() } else { format!("最多 {scale} 位小数") });
    }
    let mut v: i64 = 0;
    for c in int.chars().chain(frac.chars()).chain(std::iter::repeat_n('0', usize::from(scale) - frac.len())) {
        v = v.checked_mul(10).and_then(|v| v.checked_add(i64::from(c as u8 - b'0'))).ok_or_else(|| "数值过大".to_string())?;
    }
    if v > 1_000_000_000_000 {
        return Err("数值过大".into());
    }
    Ok(if neg { -v } else { v })
}

/// An integer of 10^-scale units written back: 1234 with scale 2 is "12.34".
pub fn format_number(v: i64, scale: u8) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let p = 10i64.pow(u32::from(scale));
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:0width$}", a / p as u64, a % p as u64, width = usize::from(scale))
}

fn check_value(f: &Field, raw: &str) -> Result<String, String> {
    let t = half_width(raw).trim().to_string();
    if t.is_empty() {
        return if f.required { Err("必填".into()) } else { Ok(String::new()) };
    }
    match &f.kind {
        FieldKind::Integer | FieldKind::Decimal { .. } => {
            let scale = f.kind.scale();
            let v = parse_number(&t, scale)?;
            let unit = if f.unit.is_empty() { String::new() } else { f.unit.clone() };
            if let Some(min) = f.min.filter(|m| v < *m) {
                return Err(if min == 0 { "不能为负数".into() } else { format!("不能小于 {}{unit}", format_number(min, scale)) });
            }
            if let Some(max) = f.max.filter(|m| v > *m) {
                return Err(format!("不能大于 {}{unit}", format_number(max, scale)));
            }
            Ok(format_number(v, scale))
        }
        FieldKind::Text { max_chars } => {
            // Line breaks (a textarea, Alt+Enter in Excel) and tabs are kept; other invisible characters
            // are refused, not stored.
            let t = t.replace("\r\n", "\n").replace('\r', "\n");
            let n = t.chars().count();
            if n > *max_chars {
                return Err(format!("不超过 {max_chars} 字（现有 {n} 字）"));
            }
            if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err("含有看不见的特殊字符，请删除后重新填写".into());
            }
            Ok(t)
        }
        FieldKind::Choice(options) => {
            options.iter().find(|o| o.as_str() == t).cloned().ok_or_else(|| format!("应为 {} 之一", options.join(" / ")))
        }
        FieldKind::YesNo => match t.to_lowercase().as_str() {
            "是" | "有" | "已" | "y" | "yes" | "1" | "√" | "true" => Ok("是".into()),
            "否" | "无" | "未" | "n" | "no" | "0" | "×" | "false" => Ok("否".into()),
            _ => Err("应为“是”或“否”".into()),
        },
    }
}

fn sum(keys: &[String], get: &dyn Fn(&str) -> Option<i64>) -> Option<i64> {
    keys.iter().try_fold(0i64, |acc, k| acc.checked_add(get(k).unwrap_or(0)))
}

fn holds(op: Op, l: i64, r: i64) -> bool {
    match op {
        Op::Eq => l == r,
        Op::Le => l <= r,
        Op::Ge => l >= r,
    }
}

impl FormDef {
    /// Checks one submission's values: every field by its kind and bounds, the repeating rows (empty rows
    /// dropped, their number, the name column unique) and the checks between fields. Returns the values
    /// in canonical form, or every problem found (not only the first).
    pub fn check(&self, raw: &Values) -> Result<Values, Vec<Problem>> {
        let mut out = Values::default();
        let mut problems = Vec::new();
        for f in &self.fields {
            let v = raw.fields.get(&f.key).map(String::as_str).unwrap_or("");
            match check_value(f, v) {
                Ok(c) if c.is_empty() => {}
                Ok(c) => {
                    out.fields.insert(f.key.clone(), c);
                }
                Err(reason) => problems.push(Problem { row: None, key: f.key.clone(), label: f.full_label(), value: v.into(), reason }),
            }
        }
        if let Some(t) = &self.table {
            let nonempty: Vec<&BTreeMap<String, String>> = raw
                .rows
                .iter()
                .filter(|r| t.columns.iter().any(|c| r.get(&c.key).is_some_and(|v| !half_width(v).trim().is_empty())))
                .collect();
            if nonempty.len() > t.max_rows {
                problems.push(Problem {
                    row: None,
                    key: String::new(),
                    label: t.title.clone(),
                    value: nonempty.len().to_string(),
                    reason: format!("最多 {} 行", t.max_rows),
                });
            }
            if nonempty.len() < t.min_rows {
                problems.push(Problem {
                    row: None,
                    key: String::new(),
                    label: t.title.clone(),
                    value: nonempty.len().to_string(),
                    reason: format!("至少填写 {} 行", t.min_rows),
                });
            }
            let mut names = BTreeSet::new();
            for (i, r) in nonempty.iter().take(t.max_rows).enumerate() {
                let mut row = BTreeMap::new();
                for c in &t.columns {
                    let v = r.get(&c.key).map(String::as_str).unwrap_or("");
                    match check_value(c, v) {
                        Ok(x) if x.is_empty() => {}
                        Ok(x) => {
                            if t.key.as_deref() == Some(c.key.as_str()) && !names.insert(x.clone()) {
                                problems.push(Problem {
                                    row: Some(i + 1),
                                    key: c.key.clone(),
                                    label: c.label.clone(),
                                    value: v.into(),
                                    reason: "与前面的行重复".into(),
                                });
                            }
                            row.insert(c.key.clone(), x);
                        }
                        Err(reason) => {
                            problems.push(Problem { row: Some(i + 1), key: c.key.clone(), label: c.label.clone(), value: v.into(), reason })
                        }
                    }
                }
                out.rows.push(row);
            }
        }
        // Checks between fields, on what parsed (a field already refused is not blamed twice).
        let bad: BTreeSet<(Option<usize>, String)> = problems.iter().map(|p| (p.row, p.key.clone())).collect();
        for c in &self.checks {
            let scale = self.field(&c.left[0]).map_or(0, |f| f.kind.scale());
            let rows: Vec<(Option<usize>, &BTreeMap<String, String>)> =
                if c.per_row { out.rows.iter().enumerate().map(|(i, r)| (Some(i + 1), r)).collect() } else { vec![(None, &out.fields)] };
            for (row, vals) in rows {
                if c.left.iter().chain(c.right.iter()).any(|k| bad.contains(&(row, k.clone()))) {
                    continue;
                }
                let get = |k: &str| vals.get(k).and_then(|v| parse_number(v, scale).ok());
                // A check is about figures that were given: all of them blank says nothing.
                if c.left.iter().chain(c.right.iter()).all(|k| get(k).is_none()) {
                    continue;
                }
                let (Some(l), Some(r)) = (sum(&c.left, &get), sum(&c.right, &get)) else { continue };
                if !holds(c.op, l, r) {
                    let label = self.field(&c.left[0]).map(Field::full_label).unwrap_or_default();
                    let side = |keys: &[String], v: i64| -> String {
                        let name = match keys {
                            [one] => self.field(one).map(|f| f.label.clone()).unwrap_or_default(),
                            _ => "各项之和".to_string(),
                        };
                        format!("{name}为 {}", format_number(v, scale))
                    };
                    problems.push(Problem {
                        row,
                        key: c.left[0].clone(),
                        label,
                        value: format_number(l, scale),
                        reason: format!("{}（填写的{}，{}）", c.message, side(&c.left, l), side(&c.right, r)),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// What changed between two versions: (label, old, new) for every field and row cell that differs.
pub fn changes(def: &FormDef, old: &Values, new: &Values) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in &def.fields {
        let (a, b) = (old.fields.get(&f.key).cloned().unwrap_or_default(), new.fields.get(&f.key).cloned().unwrap_or_default());
        if a != b {
            out.push((f.full_label(), a, b));
        }
    }
    if let Some(t) = &def.table {
        for i in 0..old.rows.len().max(new.rows.len()) {
            for c in &t.columns {
                let get = |v: &Values| v.rows.get(i).and_then(|r| r.get(&c.key)).cloned().unwrap_or_default();
                let (a, b) = (get(old), get(new));
                if a != b {
                    out.push((format!("第 {} 行·{}", i + 1, c.label), a, b));
                }
            }
        }
    }
    out
}

// ---- how a report stands, and the rates ------------------------------------------------------------

/// What the store knows of a unit's report for a period: the first submission's day, and whether its
/// latest version is returned for correction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filed {
    pub first_submitted: Date,
    pub returned: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    OnTime,
    /// Submitted this many days after the due day.
    Late(i32),
    /// Returned for correction, not yet submitted again.
    Returned,
    /// Not submitted, this many days past the due day.
    Overdue(i32),
    NotDue,
}

pub fn standing(due: Date, filed: Option<Filed>, today: Date) -> Standing {
    match filed {
        Some(f) if f.returned => Standing::Returned,
        Some(f) if f.first_submitted <= due => Standing::OnTime,
        Some(f) => Standing::Late(f.first_submitted.to_days() - due.to_days()),
        None if today > due => Standing::Overdue(today.to_days() - due.to_days()),
        None => Standing::NotDue,
    }
}

impl Standing {
    pub fn name_zh(self) -> String {
        match self {
            Standing::OnTime => "按时".into(),
            Standing::Late(d) => format!("迟报 {d} 天"),
            Standing::Returned => "退回修改中".into(),
            Standing::Overdue(d) => format!("逾期未报 {d} 天"),
            Standing::NotDue => "未到期".into(),
        }
    }
    /// Expected by now: counted in the rates' denominators. A report submitted before its due day is
    /// expected too (it exists).
    pub fn expected(self) -> bool {
        self != Standing::NotDue
    }
    pub fn complete(self) -> bool {
        matches!(self, Standing::OnTime | Standing::Late(_))
    }
    /// On time: submitted by the due day (a corrected report keeps the timeliness of its first
    /// submission).
    pub fn on_time(self) -> bool {
        self == Standing::OnTime
    }
}

/// Completeness and timeliness (DHIS2's reporting rate and on-time rate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub expected: i64,
    pub complete: i64,
    pub on_time: i64,
    pub returned: i64,
    pub overdue: i64,
}

impl Rates {
    /// Counts one unit-period.
    pub fn add(&mut self, s: Standing) {
        if !s.expected() {
            return;
        }
        self.expected += 1;
        match s {
            Standing::OnTime => {
                self.complete += 1;
                self.on_time += 1;
            }
            Standing::Late(_) => self.complete += 1,
            // As DHIS2 counts: on time only among complete reports; a returned report is neither
            // until it is submitted again (its first submission's day then decides).
            Standing::Returned => self.returned += 1,
            Standing::Overdue(_) => self.overdue += 1,
            Standing::NotDue => {}
        }
    }
    pub fn merge(&mut self, o: Rates) {
        self.expected += o.expected;
        self.complete += o.complete;
        self.on_time += o.on_time;
        self.returned += o.returned;
        self.overdue += o.overdue;
    }
    /// Reporting rate in basis points (complete / expected); `None` when nothing is expected yet.
    pub fn completeness_bp(self) -> Option<i64> {
        (self.expected > 0).then(|| self.complete * 10_000 / self.expected)
    }
    pub fn timeliness_bp(self) -> Option<i64> {
        (self.expected > 0).then(|| self.on_time * 10_000 / self.expected)
    }
}

/// The next due day on or after `today` among a form's periods, and the period it is for.
pub fn next_due(def: &FormDef, today: Date, cal: &Calendar) -> Option<(Period, Date)> {
    // A period's report is due at most 13 months after it starts: start a little before today's period.
    let mut p = Period::of_date(def.period, today.add_days(-400)).max(def.start);
    for _ in 0..40 {
        if def.end.is_some_and(|e| p > e) {
            return None;
        }
        let d = def.due.date(p, cal);
        if d >= today {
            return Some((p, d));
        }
        p = p.next();
    }
    None
}

/// The forms shipped in `data/periodic/`, transcribed from the seeds (file name, text).
pub const SHIPPED: [(&str, &str); 8] = [
    ("expired_drugs.toml", include_str!("../../../data/periodic/expired_drugs.toml")),
    ("expired_drugs_summary.toml", include_str!("../../../data/periodic/expired_drugs_summary.toml")),
    ("expired_drugs_annual.toml", include_str!("../../../data/periodic/expired_drugs_annual.toml")),
    ("zutuan.toml", include_str!("../../../data/periodic/zutuan.toml")),
    ("remote_coverage.toml", include_str!("../../../data/periodic/remote_coverage.toml")),
    ("awareness.toml", include_str!("../../../data/periodic/awareness.toml")),
    ("county_progress.toml", include_str!("../../../data/periodic/county_progress.toml")),
    ("info_exchange.toml", include_str!("../../../data/periodic/info_exchange.toml")),
];

/// The shipped forms, parsed (a bad file is a build defect: the test below parses them all).
pub fn shipped() -> Vec<FormDef> {
    SHIPPED.iter().filter_map(|(name, text)| FormDef::parse(text).map_err(|e| eprintln!("{name}: {e}")).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    const FORM: &str = r#"
id = "t"
title = "测试表"
source = "测试"
period = "month"
due = { day = 25 }
units = { kind = "townships" }
roles = ["bureau"]
start = "2018-05"
end = "2020-12"
[[fields]]
key = "a"
label = "甲"
kind = "integer"
[[fields]]
key = "b"
label = "乙"
kind = "integer"
[[fields]]
key = "total"
label = "总数"
kind = "integer"
required = true
[[fields]]
key = "fine"
label = "罚没款"
kind = "decimal"
scale = 2
unit = "万元"
max = "1000"
[[fields]]
key = "yes"
label = "是否"
kind = "yesno"
[[checks]]
rule = "total = a + b"
message = "总数应等于各项之和"
[table]
title = "明细"
max_rows = 3
key = "name"
[[table.columns]]
key = "name"
label = "名称"
kind = "text"
max_chars = 10
[[table.columns]]
key = "asked"
label = "受访"
kind = "integer"
[[table.columns]]
key = "right"
label = "答对"
kind = "integer"
[[checks]]
rule = "right <= asked"
message = "答对人数不能多于受访人数"
"#;

    fn vals(f: &[(&str, &str)], rows: &[&[(&str, &str)]]) -> Values {
        Values {
            fields: f.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            rows: rows.iter().map(|r| r.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).collect(),
        }
    }

    #[test]
    fn due_days_follow_the_month_and_the_form() {
        let cal = Calendar::parse(include_str!("../../../data/calendar/cn.toml")).unwrap();
        let def = FormDef::parse(FORM).unwrap();
        let may = Period::new(PeriodKind::Month, 2018, 5).unwrap();
        assert_eq!(def.due.date(may, &cal), d("2018-05-25"));
        // The 31st in February is its last day, in a leap year too; months_after rolls over the year.
        let end = Due { months_after: 0, month: None, day: 31, working_day: false };
        assert_eq!(end.date(Period::new(PeriodKind::Month, 2019, 2).unwrap(), &cal), d("2019-02-28"));
        assert_eq!(end.date(Period::new(PeriodKind::Month, 2020, 2).unwrap(), &cal), d("2020-02-29"));
        assert_eq!(end.date(Period::new(PeriodKind::Month, 2018, 4).unwrap(), &cal), d("2018-04-30"));
        let next = Due { months_after: 1, month: None, day: 10, working_day: false };
        assert_eq!(next.date(Period::new(PeriodKind::Quarter, 2018, 4).unwrap(), &cal), d("2019-01-10"));
        assert_eq!(next.date(Period::new(PeriodKind::HalfYear, 2018, 1).unwrap(), &cal), d("2018-07-10"));
        let july = Due { months_after: 0, month: Some(7), day: 31, working_day: false };
        assert_eq!(july.date(Period::new(PeriodKind::Year, 2018, 1).unwrap(), &cal), d("2018-07-31"));
        // 2018-11-25 is a Sunday: it stays, unless the form says working day (then Monday the 26th).
        let nov = Period::new(PeriodKind::Month, 2018, 11).unwrap();
        assert_eq!(def.due.date(nov, &cal), d("2018-11-25"));
        let wd = Due { working_day: true, ..def.due.clone() };
        assert_eq!(wd.date(nov, &cal), d("2018-11-26"));
        // National Day week: 2018-10-01..07 are holidays, so a 1 October due day moves to the 8th.
        let oct1 = Due { months_after: 0, month: None, day: 1, working_day: true };
        assert_eq!(oct1.date(Period::new(PeriodKind::Month, 2018, 10).unwrap(), &cal), d("2018-10-08"));
        assert_eq!(def.due.words(PeriodKind::Month), "每月25日前");
        assert_eq!(next.words(PeriodKind::Quarter), "季后第1个月10日前");
    }

    #[test]
    fn periods_count_and_read_back() {
        let def = FormDef::parse(FORM).unwrap();
        assert_eq!(def.periods_of_year(2018).len(), 8, "May to December");
        assert_eq!(def.periods_of_year(2021).len(), 0, "after the end");
        let q = Period::of_date(PeriodKind::Quarter, d("2018-08-15"));
        assert_eq!((q.index, q.first_month(), q.last_month(), q.label_zh()), (3, 7, 9, "2018年第三季度".to_string()));
        assert_eq!(q.last_day(), d("2018-09-30"));
        for kind in [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::HalfYear, PeriodKind::Year] {
            for p in Period::of_year(kind, 2019) {
                assert_eq!(Period::parse_key(kind, &p.key()), Some(p));
                assert_eq!(Period::from_code(kind, p.code()), Some(p));
            }
        }
        assert_eq!(Period::new(PeriodKind::Month, 2018, 12).unwrap().next().key(), "2019-01");
        assert!(Period::parse_key(PeriodKind::Month, "2018-13").is_none());
        assert!(Period::parse_key(PeriodKind::Quarter, "2018-5").is_none());
        assert_eq!(Period::parse_key(PeriodKind::HalfYear, "2018-H2").unwrap().label_zh(), "2018年下半年");
    }

    #[test]
    fn values_are_checked_all_at_once() {
        let def = FormDef::parse(FORM).unwrap();
        let ok = def.check(&vals(&[("a", "３"), ("b", "1,000"), ("total", "1003"), ("fine", "1.5"), ("yes", "有")], &[])).unwrap();
        assert_eq!(ok.fields["a"], "3");
        assert_eq!(ok.fields["total"], "1003");
        assert_eq!(ok.fields["fine"], "1.50");
        assert_eq!(ok.fields["yes"], "是");
        let bad = def
            .check(&vals(
                &[("a", "x"), ("b", "-1"), ("fine", "1.234"), ("yes", "也许")],
                &[&[("name", "甲医院"), ("asked", "10"), ("right", "11")], &[("name", "甲医院"), ("asked", "5")], &[]],
            ))
            .unwrap_err();
        let reasons: Vec<String> =
            bad.iter().map(|p| format!("{:?}/{}/{}", p.row, p.key, p.reason.split('（').next().unwrap_or(""))).collect();
        assert!(reasons.contains(&"None/a/不是整数".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"None/b/不能为负数".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"None/total/必填".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"None/fine/最多 2 位小数".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"None/yes/应为“是”或“否”".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"Some(1)/right/答对人数不能多于受访人数".to_string()), "{reasons:?}");
        assert!(reasons.contains(&"Some(2)/name/与前面的行重复".to_string()), "{reasons:?}");
        // The sum check is not reported on top of a refused part.
        assert!(!reasons.iter().any(|r| r.starts_with("None/total/总数")), "{reasons:?}");
        let sum = def.check(&vals(&[("a", "1"), ("b", "2"), ("total", "4")], &[])).unwrap_err();
        assert_eq!(sum.len(), 1);
        assert_eq!(sum[0].reason, "总数应等于各项之和（填写的总数为 4，各项之和为 3）");
        let rows = vals(&[("total", "0")], &[&[("name", "甲"), ("asked", "3"), ("right", "5")]]);
        assert_eq!(def.check(&rows).unwrap_err()[0].reason, "答对人数不能多于受访人数（填写的答对为 5，受访为 3）");
        let text = vals(&[("total", "0")], &[&[("name", "甲\r\n乙")]]);
        assert_eq!(def.check(&text).unwrap().rows[0]["name"], "甲\n乙", "line breaks are kept");
        let bell = vals(&[("total", "0")], &[&[("name", "甲\u{7}")]]);
        assert!(def.check(&bell).unwrap_err()[0].reason.contains("看不见的特殊字符"));
        let big = def.check(&vals(&[("total", "0"), ("fine", "1000.01")], &[])).unwrap_err();
        assert!(big[0].reason.contains("不能大于 1000.00万元"), "{:?}", big);
        let rows = vals(&[("total", "0")], &[&[("name", "1")], &[("name", "2")], &[("name", "3")], &[("name", "4")]]);
        assert!(def.check(&rows).unwrap_err().iter().any(|p| p.reason == "最多 3 行"));
    }

    #[test]
    fn numbers_read_as_officials_type_them() {
        assert_eq!(parse_number("12", 0), Ok(12));
        assert_eq!(parse_number("12.0", 0), Ok(12), "Excel writes integers so");
        assert_eq!(parse_number(" 1,234 ", 0), Ok(1234));
        assert_eq!(parse_number("０.５", 2), Ok(50));
        assert_eq!(parse_number("12.5", 0), Err("应为整数".into()));
        assert!(parse_number("1e5", 0).is_err());
        assert!(parse_number("99999999999999999999", 0).is_err());
        assert_eq!(format_number(-1234, 2), "-12.34");
        assert_eq!(format_number(5, 2), "0.05");
    }

    #[test]
    fn form_files_are_refused_with_a_reason() {
        let bad = |from: &str, to: &str| FormDef::parse(&FORM.replace(from, to)).unwrap_err();
        assert!(bad("period = \"month\"", "period = \"week\"").contains("周期"));
        assert!(bad("rule = \"total = a + b\"", "rule = \"total = a + nope\"").contains("数值字段"));
        assert!(bad("rule = \"total = a + b\"", "rule = \"total = a + fine\"").contains("小数位数"));
        assert!(bad("roles = [\"bureau\"]", "roles = [\"boss\"]").contains("填报角色"));
        assert!(bad("end = \"2020-12\"", "end = \"2017-12\"").contains("早于"));
        assert!(bad("key = \"b\"", "key = \"a\"").contains("重复"));
        assert!(bad("due = { day = 25 }", "due = { day = 32 }").contains("截止日"));
    }

    #[test]
    fn standing_and_rates() {
        let due = d("2018-05-25");
        let f = |s: &str, returned| Some(Filed { first_submitted: d(s), returned });
        assert_eq!(standing(due, f("2018-05-25", false), d("2018-06-30")), Standing::OnTime, "on the day is on time");
        assert_eq!(standing(due, f("2018-05-28", false), d("2018-06-30")), Standing::Late(3));
        assert_eq!(standing(due, f("2018-05-20", true), d("2018-06-30")), Standing::Returned);
        assert_eq!(standing(due, None, d("2018-05-27")), Standing::Overdue(2));
        assert_eq!(standing(due, None, d("2018-05-25")), Standing::NotDue);
        let mut r = Rates::default();
        r.add(Standing::OnTime);
        r.add(Standing::Late(3));
        r.add(Standing::Returned);
        r.add(Standing::Overdue(2));
        r.add(Standing::NotDue);
        assert_eq!((r.expected, r.complete, r.on_time, r.returned, r.overdue), (4, 2, 1, 1, 1));
        assert_eq!((r.completeness_bp(), r.timeliness_bp()), (Some(5_000), Some(2_500)));
        assert_eq!(Rates::default().completeness_bp(), None);
    }

    #[test]
    fn the_next_due_day_is_found() {
        let cal = Calendar::parse(include_str!("../../../data/calendar/cn.toml")).unwrap();
        let def = FormDef::parse(FORM).unwrap();
        assert_eq!(next_due(&def, d("2018-05-26"), &cal).map(|(p, d)| (p.key(), d)), Some(("2018-06".into(), d("2018-06-25"))));
        assert_eq!(next_due(&def, d("2018-01-01"), &cal).map(|(p, _)| p.key()), Some("2018-05".into()), "not before the start");
        assert_eq!(next_due(&def, d("2021-01-01"), &cal), None, "after the end");
    }

    #[test]
    fn the_shipped_forms_parse_as_printed() {
        for (name, text) in SHIPPED {
            let f = FormDef::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(format!("{}.toml", f.id), name);
            assert!(!f.source.is_empty() && !f.quote.is_empty(), "{name} cites its source");
        }
        let all = shipped();
        assert_eq!(all.len(), SHIPPED.len());
        let drugs = all.iter().find(|f| f.id == "expired_drugs").unwrap();
        // 附表1: twelve numbered rows, 10 and 11 with several cells.
        let nos: BTreeSet<&str> = drugs.fields.iter().map(|f| f.no.as_str()).filter(|n| !n.is_empty()).collect();
        assert_eq!(nos.len(), 12);
        assert_eq!(drugs.periods_of_year(2018).first().map(|p| p.key()), Some("2018-05".into()));
        let ok = drugs.check(&Values {
            fields: [
                ("staff", "12"),
                ("th", "1"),
                ("vc", "14"),
                ("clinic", "2"),
                ("pharmacy", "3"),
                ("other", "0"),
                ("units_total", "20"),
                ("self_found", "35"),
                ("seized", "4.5"),
                ("orders_total", "3"),
                ("orders_done", "2"),
                ("cases", "1"),
                ("cases_closed", "0"),
                ("fines", "0.12"),
                ("notified", "1"),
                ("filler", "李"),
                ("reviewer", "王"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            rows: vec![],
        });
        assert!(ok.is_ok(), "{ok:?}");
        let cal = Calendar::parse(include_str!("../../../data/calendar/cn.toml")).unwrap();
        let aw = all.iter().find(|f| f.id == "awareness").unwrap();
        assert_eq!(aw.due.date(Period::new(PeriodKind::HalfYear, 2018, 2).unwrap(), &cal), d("2019-01-10"));
        let summary = all.iter().find(|f| f.id == "expired_drugs_summary").unwrap();
        assert_eq!(summary.periods_of_year(2019).len(), 0);
        assert_eq!(summary.due.date(summary.periods_of_year(2018)[0], &cal), d("2018-07-31"));
    }

    #[test]
    fn corrections_list_what_changed() {
        let def = FormDef::parse(FORM).unwrap();
        let a = vals(&[("a", "1"), ("total", "1")], &[&[("name", "甲"), ("asked", "3")]]);
        let b = vals(&[("a", "2"), ("total", "1")], &[&[("name", "甲"), ("asked", "4")]]);
        let c = changes(&def, &a, &b);
        assert_eq!(c, vec![("甲".into(), "1".into(), "2".into()), ("第 1 行·受访".into(), "3".into(), "4".into())]);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = PeriodKind> {
            prop_oneof![Just(PeriodKind::Month), Just(PeriodKind::Quarter), Just(PeriodKind::HalfYear), Just(PeriodKind::Year)]
        }

        proptest! {
            #[test]
            fn due_days_land_where_the_form_says(kind in kind(), year in 2000u16..2100, idx in 1u8..=12, after in 0u8..4, day in 1u8..=31, wd: bool) {
                let cal = Calendar::parse(include_str!("../../../data/calendar/cn.toml")).unwrap();
                let p = Period::new(kind, year, (idx - 1) % kind.per_year() + 1).unwrap();
                let due = Due { months_after: after, month: None, day, working_day: wd };
                let d = due.date(p, &cal);
                prop_assert!(d >= p.first_day());
                let m0 = u32::from(p.last_month()) - 1 + u32::from(after);
                let (y, m) = (p.year + (m0 / 12) as u16, (m0 % 12) as u8 + 1);
                let plain = Date::new(y, m, day.min(days_in_month(y, m))).unwrap();
                if wd {
                    prop_assert!(cal.is_working(d) && d >= plain && d.to_days() - plain.to_days() <= 15);
                } else {
                    prop_assert_eq!(d, plain);
                }
                prop_assert_eq!(Period::parse_key(kind, &p.key()), Some(p));
                prop_assert_eq!(Period::of_date(kind, d.add_days(-(d.to_days() - p.last_day().to_days()).max(0))), p);
            }

            #[test]
            fn numbers_round_trip(v in -1_000_000_000i64..1_000_000_000, scale in 0u8..=4) {
                prop_assert_eq!(parse_number(&format_number(v, scale), scale), Ok(v));
            }
        }
    }
}
