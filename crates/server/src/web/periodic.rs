//! 定期报表 (periodic forms, issue 19): what townships, hospitals and offices report each month, quarter,
//! half-year or year, as data (`core::forms`, the forms of `data/periodic/`). A unit enters a period's
//! form on its page or uploads the same form as an Excel file in the printed layout (the template is
//! downloaded from the page); every save is a new version (corrections keep the old values, who changed
//! them and when); the county bureau returns a report for correction with a reason. Completeness and
//! timeliness per form, unit and period, the overdue units and the reminder list for the next due day;
//! the indicators computed from the forms and from the settlements (县域内就诊率, remote-care coverage of
//! township hospitals, 政策知晓率), with drill-down to the townships, feed the score sheets.
//!
//! Scope: a form is kept per county. County roles (admin; bureau and auditor of the county or wider) read
//! all of a county's units; a township's bureau account reads and files its own township's reports; a
//! hospital account its own hospital's. Filing needs the form's roles; returning a report needs a
//! county-level bureau account (or admin).
//!
//! Each page is loaded from the store, turned into a view model by a pure function and rendered by an
//! askama template (`templates/forms_*.html`, auto-escaped).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use baozhang_core::date::Date;
use baozhang_core::forms::{
    changes, next_due, parse_number, standing, FieldKind, Filed, FormDef, Period, Problem, Rates, Standing, Units, Values,
};
use baozhang_store::forms::{Filing, FilingRefusal, FormReport, FormVersion};
use baozhang_store::{date_num, num_date};
use serde::Deserialize;

use super::cache::Built;
use super::table::{Cell, Table};
use super::{count, date_text, pct, urlencode, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// Largest form file accepted (a form is a page or two; below the server's buffered body limit).
pub const MAX_UPLOAD_BYTES: usize = 512 << 10;
/// Rows and columns of a form sheet read at most.
const MAX_SHEET_ROWS: usize = 400;
const MAX_SHEET_COLS: usize = 20;
/// Characters of one cell of a form file, and uncompressed bytes of the whole file.
const MAX_CELL_CHARS: usize = 2_000;
const MAX_UNCOMPRESSED_BYTES: u64 = 16 << 20;
/// Fields posted with one form at most (head fields + rows × columns + the envelope).
const MAX_POSTED_FIELDS: usize = 4_000;
/// The sheet of the Excel form.
pub const SHEET: &str = "报表";
/// Where the printed layout puts things (0-based rows): title, unit, period, form key, header, fields.
const KEY_ROW: u32 = 3;
const HEAD_ROW: u32 = 4;
const FIELD_ROW0: u32 = 5;

/// The shipped forms.
pub fn defs() -> &'static [FormDef] {
    static D: OnceLock<Vec<FormDef>> = OnceLock::new();
    D.get_or_init(baozhang_core::forms::shipped)
}

fn def_of(id: &str) -> Result<&'static FormDef, WebError> {
    defs().iter().find(|d| d.id == id).ok_or_else(|| WebError::not_found("没有这张报表"))
}

fn role_id(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Bureau => "bureau",
        Role::Hospital => "hospital",
        Role::Cadre => "cadre",
        Role::Auditor => "auditor",
    }
}

/// A reporting unit of a county.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub code: String,
    pub name: String,
}

/// The units that must report `def` in `county`.
pub async fn units_of(state: &AppState, def: &FormDef, county: &str) -> Result<Vec<Unit>, WebError> {
    Ok(match &def.units {
        Units::Townships => {
            let names = state.web.region_names(&state.store).await?;
            let mut t: Vec<Unit> = names
                .iter()
                .filter(|(c, _)| c.len() == 9 && c.starts_with(county))
                .map(|(c, n)| Unit { code: c.clone(), name: n.clone() })
                .collect();
            t.sort_by(|a, b| a.code.cmp(&b.code));
            t
        }
        Units::Hospitals(levels) => state
            .store
            .institutions()
            .await?
            .into_iter()
            .filter(|h| h.admdvs == county && levels.contains(&h.hosp_lv) && !h.disabled)
            .map(|h| Unit { code: h.fixmedins_code, name: h.name })
            .collect(),
        Units::Offices(o) => o.iter().map(|(c, n)| Unit { code: c.clone(), name: n.clone() }).collect(),
    })
}

/// Whether the user may read `unit`'s reports of `def` in `county`.
pub fn may_view(u: &WebUser, def: &FormDef, county: &str, unit: &str) -> bool {
    match u.p.role {
        Role::Admin => true,
        Role::Bureau | Role::Auditor => {
            let own = u.p.scope.as_str();
            let county_wide = own.len() <= 6 && county.starts_with(own);
            county_wide || (matches!(def.units, Units::Townships) && own.len() == 9 && unit == own && unit.starts_with(county))
        }
        Role::Hospital => matches!(def.units, Units::Hospitals(_)) && unit == u.p.scope,
        Role::Cadre => false,
    }
}

/// Whether the user may file `unit`'s report.
pub fn may_file(u: &WebUser, def: &FormDef, county: &str, unit: &str) -> bool {
    def.may_enter(role_id(u.p.role)) && u.p.role != Role::Auditor && may_view(u, def, county, unit)
}

/// Whether the user may return a report of `county` for correction: the county's bureau.
pub fn may_return(u: &WebUser, county: &str) -> bool {
    match u.p.role {
        Role::Admin => true,
        Role::Bureau => u.p.scope.len() <= 6 && county.starts_with(u.p.scope.as_str()),
        _ => false,
    }
}

/// The county a page is about: a hospital's own county; otherwise the asked or own region, which must
/// be a county (6 digits) or lie in one (a township's account: its county).
async fn county_for(state: &AppState, u: &WebUser, asked: Option<&str>) -> Result<Option<String>, WebError> {
    if u.p.role == Role::Hospital {
        let h = state.store.institution(&u.p.scope).await?.ok_or_else(|| WebError::forbidden("医疗机构账号无效"))?;
        return Ok(Some(h.admdvs));
    }
    if u.p.role == Role::Cadre {
        return Err(WebError::forbidden("定期报表由乡镇、医疗机构和县直部门填报，村级账号不填报"));
    }
    let own = u.p.region().unwrap_or("");
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    let region = match asked {
        None => own.to_string(),
        // A township account may name its county (the county page shows it its own township only).
        Some(a)
            if a.bytes().all(|b| b.is_ascii_digit()) && (a.starts_with(own) || (own.len() > 6 && own.starts_with(a) && a.len() == 6)) =>
        {
            a.to_string()
        }
        Some(_) => return Err(WebError::forbidden("该区划不在您的管辖范围内")),
    };
    Ok(match region.len() {
        6 if !region.ends_with("00") => Some(region),
        n if n > 6 => Some(region[..6].to_string()),
        _ => None,
    })
}

/// The picker of counties for a user whose scope is wider than one.
async fn county_picker(state: &AppState, u: &WebUser, path: &str) -> WebResult {
    let names = state.web.region_names(&state.store).await?;
    let own = u.p.scope.as_str();
    let mut counties: Vec<(String, String)> = names
        .iter()
        .filter(|(c, _)| c.len() == 6 && c.starts_with(own) && !c.ends_with("00"))
        .map(|(c, n)| (format!("{path}?region={c}"), format!("{n}（{c}）")))
        .collect();
    counties.sort();
    let v = PickerView { counties };
    render_page(u, "定期报表 · 请选择县（区）", vec![("定期报表".into(), String::new())], &v, &[])
}

/// A page: the template's HTML, then the tables (`Table` escapes its cells and adds sorting and export).
fn render_page(u: &WebUser, title: &str, crumbs: Vec<(String, String)>, t: &impl Template, tables: &[&Table]) -> WebResult {
    let mut page = Page::new(title);
    page.crumbs = crumbs;
    page.push(&super::supervise::subnav("/web/forms"));
    page.view(t)?.tables(u, tables);
    Ok(page.render(u))
}

#[derive(Template)]
#[template(path = "forms_picker.html")]
struct PickerView {
    counties: Vec<(String, String)>,
}

// ───────────────────────────── standing of reports ─────────────────────────────

/// Today's standing of each expected (unit, period) report of a form in a year.
pub struct FormStanding {
    pub def: &'static FormDef,
    pub units: Vec<Unit>,
    pub periods: Vec<(Period, Date)>,
    /// (unit code, period code) → report
    pub reports: HashMap<(String, i64), FormReport>,
}

impl FormStanding {
    pub fn of(&self, unit: &str, p: Period, due: Date, today: Date) -> Standing {
        let r = self.reports.get(&(unit.to_string(), p.code()));
        let filed = r.and_then(|r| Some(Filed { first_submitted: num_date(r.first_filed_on)?, returned: r.latest.state == "returned" }));
        standing(due, filed, today)
    }
    pub fn rates(&self, unit: Option<&str>, today: Date) -> Rates {
        let mut r = Rates::default();
        for u in self.units.iter().filter(|u| unit.is_none_or(|x| x == u.code)) {
            for (p, due) in &self.periods {
                r.add(self.of(&u.code, *p, *due, today));
            }
        }
        r
    }
}

async fn form_standing(state: &AppState, u: &WebUser, def: &'static FormDef, county: &str, year: u16) -> Result<FormStanding, WebError> {
    let cal = super::funds::calendar();
    let units: Vec<Unit> = units_of(state, def, county).await?.into_iter().filter(|x| may_view(u, def, county, &x.code)).collect();
    let periods: Vec<(Period, Date)> = def.periods_of_year(year).into_iter().map(|p| (p, def.due.date(p, cal))).collect();
    let y = i64::from(year);
    let reports = state
        .store
        .form_reports(county, Some(&def.id), y * 100 + 1, y * 100 + 12)
        .await?
        .into_iter()
        .map(|r| ((r.latest.unit.clone(), r.latest.period), r))
        .collect();
    Ok(FormStanding { def, units, periods, reports })
}

fn standing_class(s: Standing) -> &'static str {
    match s {
        Standing::OnTime => "done",
        Standing::Late(_) | Standing::Returned => "reopened",
        Standing::Overdue(_) => "new",
        Standing::NotDue => "",
    }
}

fn entry_href(def: &FormDef, county: &str, unit: &str, p: Period) -> String {
    format!("/web/forms/{}/entry?region={county}&unit={}&period={}", def.id, urlencode(unit), p.key())
}

// ───────────────────────────── the index ─────────────────────────────

#[derive(Deserialize, Default)]
pub struct FormsQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

pub struct FormSummary {
    pub title: String,
    pub href: String,
    pub kind: &'static str,
    pub due: String,
    pub units: String,
    pub expected: String,
    pub completeness: String,
    pub timeliness: String,
    pub overdue: i64,
    pub returned: i64,
}

pub struct Reminder {
    pub form: String,
    pub period: String,
    pub due: String,
    pub pending: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "forms_index.html")]
pub struct IndexView {
    pub county: String,
    pub year: u16,
    pub today: String,
    pub completeness: String,
    pub timeliness: String,
    pub expected: String,
    pub overdue: String,
    pub forms: Vec<FormSummary>,
    pub reminders: Vec<Reminder>,
    pub indicators_href: String,
    pub indicators: bool,
}

/// The index's view model: pure, from the forms' standings.
pub fn index_view(county: &str, year: u16, today: Date, all: &[FormStanding], indicators: bool) -> IndexView {
    let cal = super::funds::calendar();
    let mut total = Rates::default();
    let mut forms = Vec::new();
    let mut reminders = Vec::new();
    for s in all {
        let r = s.rates(None, today);
        total.merge(r);
        forms.push(FormSummary {
            title: s.def.title.clone(),
            href: format!("/web/forms/{}?region={county}&year={year}", s.def.id),
            kind: s.def.period.name_zh(),
            due: s.def.due.words(s.def.period),
            units: format!("{}（{} 个）", s.def.units.words(), s.units.len()),
            expected: count(r.expected),
            completeness: pct(r.completeness_bp()),
            timeliness: pct(r.timeliness_bp()),
            overdue: r.overdue,
            returned: r.returned,
        });
        if let Some((p, due)) = next_due(s.def, today, cal) {
            let pending: Vec<(String, String)> = s
                .units
                .iter()
                .filter(|u| s.reports.get(&(u.code.clone(), p.code())).is_none_or(|r| r.latest.state == "returned"))
                .map(|u| (u.name.clone(), entry_href(s.def, county, &u.code, p)))
                .collect();
            if !pending.is_empty() {
                reminders.push(Reminder { form: s.def.title.clone(), period: p.label_zh(), due: date_text(date_num(due)), pending });
            }
        }
    }
    reminders.sort_by(|a, b| a.due.cmp(&b.due));
    IndexView {
        county: county.to_string(),
        year,
        today: date_text(date_num(today)),
        completeness: pct(total.completeness_bp()),
        timeliness: pct(total.timeliness_bp()),
        expected: count(total.expected),
        overdue: count(total.overdue),
        forms,
        reminders,
        indicators_href: format!("/web/forms/indicators?region={county}&year={year}"),
        indicators,
    }
}

fn year_of(state_year: i64) -> Result<u16, WebError> {
    u16::try_from(state_year).map_err(|_| WebError::bad("年份无效"))
}

/// `GET /web/forms?region=&year=`: every form of the county with its rates, the overdue and the
/// reminder list for the next due day.
pub async fn index_page(State(state): State<AppState>, u: WebUser, Query(q): Query<FormsQ>) -> WebResult {
    let Some(county) = county_for(&state, &u, q.region.as_deref()).await? else { return county_picker(&state, &u, "/web/forms").await };
    let year = year_of(super::health::year_param(&state, q.year.as_deref()).await?)?;
    let today = crate::clock::today();
    let mut all = Vec::new();
    for def in defs() {
        let s = form_standing(&state, &u, def, &county, year).await?;
        if !s.units.is_empty() {
            all.push(s);
        }
    }
    let names = state.web.region_names(&state.store).await?;
    let county_name = names.get(&county).cloned().unwrap_or_else(|| county.clone());
    let v = index_view(&county, year, today, &all, u.p.role != Role::Hospital);
    render_page(&u, &format!("定期报表 · {county_name} · {year} 年"), vec![("定期报表".into(), String::new())], &v, &[])
}

// ───────────────────────────── one form: units × periods ─────────────────────────────

pub struct GridCell {
    pub text: String,
    pub class: &'static str,
    pub href: String,
}

#[derive(Template)]
#[template(path = "forms_grid.html")]
pub struct GridView {
    pub title: String,
    pub source: String,
    pub quote: String,
    pub notes: Vec<String>,
    pub due: String,
    pub periods: Vec<String>,
    pub rows: Vec<(String, Vec<GridCell>)>,
}

fn grid_tables(s: &FormStanding, county: &str, today: Date) -> (Table, Table) {
    let mut rates =
        Table::new("rates", "各单位报送率", vec!["报送单位", "应报", "已报", "按时", "退回修改中", "逾期未报", "报送率", "及时率"]);
    let mut overdue = Table::new("overdue", "逾期未报", vec!["报送单位", "报告期", "截止日期", "逾期天数"]);
    let row = |label: String, r: Rates| {
        vec![
            Cell::text(label),
            Cell::Int(r.expected),
            Cell::Int(r.complete),
            Cell::Int(r.on_time),
            Cell::Int(r.returned),
            Cell::Int(r.overdue),
            Cell::Pct(r.completeness_bp()),
            Cell::Pct(r.timeliness_bp()),
        ]
    };
    let mut total = Rates::default();
    for unit in &s.units {
        let r = s.rates(Some(&unit.code), today);
        total.merge(r);
        rates.rows.push(row(unit.name.clone(), r));
        for (p, due) in &s.periods {
            if let Standing::Overdue(days) = s.of(&unit.code, *p, *due, today) {
                overdue.rows.push(vec![
                    Cell::Link(unit.name.clone(), entry_href(s.def, county, &unit.code, *p)),
                    Cell::text(p.label_zh()),
                    Cell::text(date_text(date_num(*due))),
                    Cell::Int(i64::from(days)),
                ]);
            }
        }
    }
    // The units' rates summed (each unit-period counted once), not computed a second time.
    rates.total = Some(row("合计".into(), total));
    overdue.empty = "没有逾期未报的报表";
    (rates, overdue)
}

pub fn grid_view(s: &FormStanding, county: &str, today: Date) -> GridView {
    let rows = s
        .units
        .iter()
        .map(|unit| {
            let cells = s
                .periods
                .iter()
                .map(|(p, due)| {
                    let st = s.of(&unit.code, *p, *due, today);
                    let version = s.reports.get(&(unit.code.clone(), p.code())).map_or(0, |r| r.latest.version);
                    let text = match st {
                        Standing::NotDue if version == 0 => "未到期".to_string(),
                        Standing::NotDue => "已报".to_string(),
                        s if version > 1 && s.complete() => format!("{}（已更正）", s.name_zh()),
                        s => s.name_zh(),
                    };
                    GridCell { text, class: standing_class(st), href: entry_href(s.def, county, &unit.code, *p) }
                })
                .collect();
            (unit.name.clone(), cells)
        })
        .collect();
    GridView {
        title: s.def.title.clone(),
        source: s.def.source.clone(),
        quote: s.def.quote.clone(),
        notes: s.def.notes.clone(),
        due: format!("{}，{}报送", s.def.due.words(s.def.period), s.def.units.words()),
        periods: s.periods.iter().map(|(p, _)| p.label_zh()).collect(),
        rows,
    }
}

/// `GET /web/forms/{form}?region=&year=[&export=rates|overdue]`
pub async fn grid_page(State(state): State<AppState>, u: WebUser, Path(form): Path<String>, Query(q): Query<FormsQ>) -> WebResult {
    let def = def_of(&form)?;
    let Some(county) = county_for(&state, &u, q.region.as_deref()).await? else { return county_picker(&state, &u, "/web/forms").await };
    let year = year_of(super::health::year_param(&state, q.year.as_deref()).await?)?;
    let today = crate::clock::today();
    let s = form_standing(&state, &u, def, &county, year).await?;
    if s.units.is_empty() && u.p.role != Role::Admin {
        return Err(WebError::forbidden("您的账号不报送、也不能查看这张报表"));
    }
    let (mut rates, mut overdue) = grid_tables(&s, &county, today);
    let names = state.web.region_names(&state.store).await?;
    let county_name = names.get(&county).cloned().unwrap_or_else(|| county.clone());
    for t in [&mut rates, &mut overdue] {
        t.heading = vec![format!("{county_name}{}{}", def.title, t.title), format!("{year} 年 · 截至 {}", date_text(date_num(today)))];
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&rates, &overdue], x).await;
    }
    let v = grid_view(&s, &county, today);
    render_page(
        &u,
        &format!("{} · {county_name} · {year} 年", def.title),
        vec![("定期报表".into(), format!("/web/forms?region={county}&year={year}")), (def.title.clone(), String::new())],
        &v,
        &[&rates, &overdue],
    )
}

// ───────────────────────────── entering one report ─────────────────────────────

#[derive(Deserialize, Default)]
pub struct EntryQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    saved: Option<i64>,
}

/// One input of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    /// number / text / select / textarea
    pub widget: &'static str,
    pub choices: Vec<String>,
    pub value: String,
    pub required: bool,
    pub error: String,
    /// The Excel cell this value sits in (D8), shown in the tooltip so paper, page and file agree.
    pub cell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRow {
    pub no: String,
    pub group: String,
    pub label: String,
    pub unit: String,
    pub help: String,
    pub input: Input,
}

pub struct TableView {
    pub title: String,
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Input>>,
}

pub struct HistoryRow {
    pub version: i64,
    pub action: &'static str,
    pub actor: String,
    pub at: String,
    pub filed_on: String,
    pub note: String,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "forms_entry.html")]
pub struct EntryView {
    pub form_id: String,
    pub title: String,
    pub source: String,
    pub quote: String,
    pub notes: Vec<String>,
    pub county: String,
    pub unit: String,
    pub unit_name: String,
    pub period_key: String,
    pub period: String,
    pub due: String,
    pub standing: String,
    pub standing_class: &'static str,
    pub version: i64,
    pub returned_reason: String,
    pub saved: String,
    pub problems: Vec<String>,
    pub can_file: bool,
    pub can_return: bool,
    pub backdate: bool,
    pub filed_on: String,
    pub note: String,
    pub fields: Vec<FieldRow>,
    pub table: Option<TableView>,
    pub history: Vec<HistoryRow>,
    pub template_href: String,
    pub grid_href: String,
    pub max_upload_kb: usize,
}

fn widget(k: &FieldKind) -> &'static str {
    match k {
        FieldKind::Integer | FieldKind::Decimal { .. } => "number",
        FieldKind::Text { max_chars } if *max_chars > 60 => "textarea",
        FieldKind::Text { .. } => "text",
        FieldKind::Choice(_) | FieldKind::YesNo => "select",
    }
}

fn choices(k: &FieldKind) -> Vec<String> {
    match k {
        FieldKind::Choice(c) => c.clone(),
        FieldKind::YesNo => vec!["是".into(), "否".into()],
        _ => Vec::new(),
    }
}

/// Excel's name of a cell (0-based row and column): D8.
pub fn cell_name(row: u32, col: u16) -> String {
    let mut c = String::new();
    let mut n = u32::from(col) + 1;
    while n > 0 {
        let r = (n - 1) % 26;
        c.insert(0, (b'A' + r as u8) as char);
        n = (n - 1) / 26;
    }
    format!("{c}{}", row + 1)
}

/// The layout of the Excel form: the row of each head field, and of the table's title, header and rows.
pub struct Layout {
    pub table_title_row: u32,
    pub table_head_row: u32,
    pub table_row0: u32,
}

pub fn layout(def: &FormDef) -> Layout {
    let after = FIELD_ROW0 + def.fields.len() as u32 + 1;
    Layout { table_title_row: after, table_head_row: after + 1, table_row0: after + 2 }
}

/// Where a problem sits in the Excel form ("" for what is not in the file: the version, the day filed).
/// `sheet_rows`: the sheet row (0-based) of each kept table row of an upload; without it, the rows as
/// the template lays them out.
fn problem_cell(def: &FormDef, p: &Problem, sheet_rows: Option<&[u32]>) -> String {
    let l = layout(def);
    match p.row {
        None => match def.fields.iter().position(|f| f.key == p.key) {
            Some(i) => cell_name(FIELD_ROW0 + i as u32, 3),
            None if p.key.is_empty() && def.table.as_ref().is_some_and(|t| t.title == p.label) => cell_name(l.table_title_row, 0),
            None => String::new(),
        },
        Some(r) => {
            let col = def.table.as_ref().and_then(|t| t.columns.iter().position(|c| c.key == p.key)).unwrap_or(0);
            let row = sheet_rows.and_then(|rows| rows.get(r - 1).copied()).unwrap_or(l.table_row0 + r as u32 - 1);
            cell_name(row, col as u16)
        }
    }
}

fn problem_text(p: &Problem) -> String {
    let at = match p.row {
        Some(r) => format!("第 {r} 行·{}", p.label),
        None => p.label.clone(),
    };
    if p.value.trim().is_empty() {
        format!("{at}：{}", p.reason)
    } else {
        format!("{at}（“{}”）：{}", p.value.chars().take(40).collect::<String>(), p.reason)
    }
}

fn action_zh(a: &str) -> &'static str {
    match a {
        "submit" => "报送",
        "correct" => "更正",
        "return" => "退回修改",
        _ => "其他",
    }
}

/// What was typed (or uploaded) and refused: shown again with its problems.
#[derive(Clone, Copy)]
pub struct Typed<'a> {
    pub values: &'a Values,
    pub problems: &'a [Problem],
    pub note: &'a str,
    pub filed_on: &'a str,
    /// For an upload: the sheet row of each kept table row.
    pub sheet_rows: Option<&'a [u32]>,
}

/// The entry page's view model: pure, from the form, the unit's history and what was typed (after a
/// refused save, the typed values and their problems).
#[allow(clippy::too_many_arguments)]
pub fn entry_view(
    def: &FormDef,
    county: &str,
    unit: &Unit,
    p: Period,
    today: Date,
    history: &[FormVersion],
    typed: Option<Typed<'_>>,
    can_file: bool,
    can_return: bool,
    backdate: bool,
    saved: Option<i64>,
) -> EntryView {
    let cal = super::funds::calendar();
    let due = def.due.date(p, cal);
    let latest = history.last();
    let current: Values = latest.and_then(|l| serde_json::from_str(&l.values_json).ok()).unwrap_or_default();
    let (values, problems, note, filed_on, sheet_rows) = match &typed {
        Some(t) => (t.values.clone(), t.problems.to_vec(), t.note.to_string(), t.filed_on.to_string(), t.sheet_rows),
        None => (current.clone(), Vec::new(), String::new(), today.to_string(), None),
    };
    let err_of = |row: Option<usize>, key: &str| -> String {
        problems.iter().filter(|x| x.row == row && x.key == key).map(|x| x.reason.clone()).collect::<Vec<_>>().join("；")
    };
    // As printed: a 序号 and a 类别 spanning several rows are written once, on their first row.
    let same_as_before =
        |i: usize, get: fn(&baozhang_core::forms::Field) -> &String| i > 0 && get(&def.fields[i - 1]) == get(&def.fields[i]);
    let fields = def
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| FieldRow {
            no: if same_as_before(i, |f| &f.no) { String::new() } else { f.no.clone() },
            group: if same_as_before(i, |f| &f.group) { String::new() } else { f.group.clone() },
            label: f.label.clone(),
            unit: f.unit.clone(),
            help: f.help.clone(),
            input: Input {
                name: format!("f_{}", f.key),
                widget: widget(&f.kind),
                choices: choices(&f.kind),
                value: values.fields.get(&f.key).cloned().unwrap_or_default(),
                required: f.required,
                error: err_of(None, &f.key),
                cell: cell_name(FIELD_ROW0 + i as u32, 3),
            },
        })
        .collect();
    let lay = layout(def);
    let table = def.table.as_ref().map(|t| {
        let n = (values.rows.len() + 3).max(3).min(t.max_rows).max(t.min_rows);
        TableView {
            title: t.title.clone(),
            columns: t.columns.iter().map(|c| (c.label.clone(), c.unit.clone())).collect(),
            rows: (0..n)
                .map(|i| {
                    t.columns
                        .iter()
                        .enumerate()
                        .map(|(j, c)| Input {
                            name: format!("r{i}_{}", c.key),
                            widget: if widget(&c.kind) == "textarea" { "text" } else { widget(&c.kind) },
                            choices: choices(&c.kind),
                            value: values.rows.get(i).and_then(|r| r.get(&c.key)).cloned().unwrap_or_default(),
                            required: false,
                            error: err_of(Some(i + 1), &c.key),
                            cell: cell_name(lay.table_row0 + i as u32, j as u16),
                        })
                        .collect()
                })
                .collect(),
        }
    });
    let mut history_rows = Vec::new();
    let mut prev: Option<Values> = None;
    for h in history {
        let v: Values = serde_json::from_str(&h.values_json).unwrap_or_default();
        let ch = match (&prev, h.action.as_str()) {
            (Some(p), "correct") => changes(def, p, &v),
            _ => Vec::new(),
        };
        history_rows.push(HistoryRow {
            version: h.version,
            action: action_zh(&h.action),
            actor: h.actor.clone(),
            at: crate::clock::beijing_text(&h.created_at),
            filed_on: date_text(h.filed_on),
            note: h.note.clone(),
            changes: ch,
        });
        prev = Some(v);
    }
    history_rows.reverse();
    let filed = history
        .first()
        .and_then(|f| num_date(f.filed_on))
        .map(|d| Filed { first_submitted: d, returned: latest.is_some_and(|l| l.state == "returned") });
    let st = standing(due, filed, today);
    EntryView {
        form_id: def.id.clone(),
        title: def.title.clone(),
        source: def.source.clone(),
        quote: def.quote.clone(),
        notes: def.notes.clone(),
        county: county.to_string(),
        unit: unit.code.clone(),
        unit_name: unit.name.clone(),
        period_key: p.key(),
        period: p.label_zh(),
        due: date_text(date_num(due)),
        standing: match (st, latest) {
            (Standing::NotDue, Some(_)) => "已报送（未到截止日）".into(),
            (s, _) => s.name_zh(),
        },
        standing_class: standing_class(st),
        version: latest.map_or(0, |l| l.version),
        returned_reason: latest.filter(|l| l.state == "returned").map(|l| l.note.clone()).unwrap_or_default(),
        saved: match saved {
            Some(1) => "已报送（第 1 版）。".into(),
            Some(v) if v > 1 => format!("已保存为第 {v} 版，旧的内容保留在修改记录中。"),
            _ => String::new(),
        },
        problems: problems
            .iter()
            .map(|p| match problem_cell(def, p, sheet_rows) {
                c if c.is_empty() => problem_text(p),
                c => format!("{}（Excel 单元格 {c}）", problem_text(p)),
            })
            .collect(),
        can_file,
        can_return: can_return && latest.is_some_and(|l| l.state == "submitted"),
        backdate,
        filed_on,
        note,
        fields,
        table,
        history: history_rows,
        template_href: format!("/web/forms/{}/template?region={county}&unit={}&period={}", def.id, urlencode(&unit.code), p.key()),
        grid_href: format!("/web/forms/{}?region={county}&year={}", def.id, p.year),
        max_upload_kb: MAX_UPLOAD_BYTES >> 10,
    }
}

/// The unit and period of an address or a posted form, checked against the form and the user's scope.
async fn target(
    state: &AppState,
    u: &WebUser,
    def: &FormDef,
    region: Option<&str>,
    unit: &str,
    period: &str,
) -> Result<(String, Unit, Period), WebError> {
    let county = county_for(state, u, region).await?.ok_or_else(|| WebError::bad("请指定县（区）"))?;
    let p = Period::parse_key(def.period, period).ok_or_else(|| {
        WebError::bad(format!(
            "报告期“{}”无效（{}，如 {}）",
            period.chars().take(20).collect::<String>(),
            def.period.name_zh(),
            def.start.key()
        ))
    })?;
    if p < def.start || def.end.is_some_and(|e| p > e) {
        return Err(WebError::bad(format!("{}不在本表的报送期内", p.label_zh())));
    }
    let unit = units_of(state, def, &county)
        .await?
        .into_iter()
        .find(|x| x.code == unit)
        .ok_or_else(|| WebError::not_found("本县（区）没有这个报送单位"))?;
    if !may_view(u, def, &county, &unit.code) {
        return Err(WebError::forbidden("该报送单位不在您的管辖范围内"));
    }
    Ok((county, unit, p))
}

#[allow(clippy::too_many_arguments)]
async fn show_entry(
    state: &AppState,
    u: &WebUser,
    def: &FormDef,
    county: &str,
    unit: &Unit,
    p: Period,
    typed: Option<Typed<'_>>,
    saved: Option<i64>,
) -> WebResult {
    let history = state.store.form_history(&def.id, county, &unit.code, p.code()).await?;
    let today = crate::clock::today();
    let can_file = may_file(u, def, county, &unit.code) && p.first_day() <= today;
    let backdate = may_backdate(u, def, county);
    let v = entry_view(def, county, unit, p, today, &history, typed, can_file, may_return(u, county), backdate, saved);
    let crumbs = vec![
        ("定期报表".into(), format!("/web/forms?region={county}&year={}", p.year)),
        (def.title.clone(), v.grid_href.clone()),
        (format!("{} · {}", unit.name, p.label_zh()), String::new()),
    ];
    let status = if typed.is_some() { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK };
    let mut r = render_page(u, &format!("{} · {} · {}", def.title, unit.name, p.label_zh()), crumbs, &v, &[])?;
    *r.status_mut() = status;
    Ok(r)
}

/// `GET /web/forms/{form}/entry?region=&unit=&period=`
pub async fn entry_page(State(state): State<AppState>, u: WebUser, Path(form): Path<String>, Query(q): Query<EntryQ>) -> WebResult {
    let def = def_of(&form)?;
    let (county, unit, p) = target(&state, &u, def, q.region.as_deref(), &q.unit, &q.period).await?;
    show_entry(&state, &u, def, &county, &unit, p, None, q.saved).await
}

/// The envelope of a posted form or upload.
#[derive(Default)]
struct Envelope {
    region: String,
    unit: String,
    period: String,
    seen_version: i64,
    note: String,
    filed_on: String,
}

fn envelope_field(e: &mut Envelope, k: &str, v: &str) -> bool {
    match k {
        "region" => e.region = v.trim().to_string(),
        "unit" => e.unit = v.trim().to_string(),
        "period" => e.period = v.trim().to_string(),
        "seen_version" => e.seen_version = v.trim().parse().unwrap_or(-1),
        "note" => e.note = v.trim().to_string(),
        "filed_on" => e.filed_on = v.trim().to_string(),
        _ => return false,
    }
    true
}

/// Values from the page's inputs: `f_<key>` for the head, `r<i>_<key>` for row i.
fn values_from_pairs(def: &FormDef, pairs: &[(String, String)]) -> Values {
    let mut v = Values::default();
    let mut rows: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    let max_rows = def.table.as_ref().map_or(0, |t| t.max_rows + 20);
    for (k, val) in pairs {
        if let Some(key) = k.strip_prefix("f_") {
            if def.fields.iter().any(|f| f.key == key) {
                v.fields.insert(key.to_string(), val.clone());
            }
        } else if let Some(rest) = k.strip_prefix('r') {
            let Some((i, key)) = rest.split_once('_') else { continue };
            let Ok(i) = i.parse::<usize>() else { continue };
            if i < max_rows && def.table.as_ref().is_some_and(|t| t.columns.iter().any(|c| c.key == key)) {
                rows.entry(i).or_default().insert(key.to_string(), val.clone());
            }
        }
    }
    // Blank rows between filled ones are dropped, so the rows shown after a save are the rows kept.
    v.rows = rows.into_values().filter(|r| r.values().any(|x| !x.trim().is_empty())).collect();
    v
}

/// Whether the user may give the day a paper report was received: the county's bureau (or admin) for
/// the townships' and hospitals' reports — never a unit for its own report, nor an office's report (the
/// county's offices are the bureau's own), since the first submission's day decides timeliness.
fn may_backdate(u: &WebUser, def: &FormDef, county: &str) -> bool {
    may_return(u, county) && !matches!(def.units, Units::Offices(_))
}

/// The day a version is filed: today, or (the county entering a paper report) the day it was received.
fn filed_day(u: &WebUser, def: &FormDef, county: &str, p: Period, asked: &str, today: Date) -> Result<Date, String> {
    if asked.is_empty() || !may_backdate(u, def, county) {
        return Ok(today);
    }
    let d = Date::parse(asked).map_err(|_| format!("报送日期“{}”无效（如 {today}）", asked.chars().take(20).collect::<String>()))?;
    if d > today {
        return Err("报送日期不能晚于今天".into());
    }
    if d < p.first_day() {
        return Err(format!("报送日期不能早于报告期开始（{}）", p.first_day()));
    }
    Ok(d)
}

/// Checks and files one version; `Err(page)`: the form again with the typed values and every problem.
#[allow(clippy::too_many_arguments)]
async fn file_values(
    state: &AppState,
    u: &WebUser,
    def: &FormDef,
    county: &str,
    unit: &Unit,
    p: Period,
    env: &Envelope,
    raw: &Values,
    extra: Vec<Problem>,
    sheet_rows: Option<&[u32]>,
) -> Result<Result<i64, Response>, WebError> {
    if !may_file(u, def, county, &unit.code) {
        return Err(WebError::forbidden(format!("{}不能填报这张报表", u.p.role.name_zh())));
    }
    let today = crate::clock::today();
    if p.first_day() > today {
        return Err(WebError::bad(format!("{}尚未开始，不能报送", p.label_zh())));
    }
    check_note(&env.note, "说明")?;
    let mut problems = extra;
    let on = filed_day(u, def, county, p, &env.filed_on, today);
    if let Err(e) = &on {
        problems
            .push(Problem { row: None, key: String::new(), label: "报送日期".into(), value: env.filed_on.clone(), reason: e.clone() });
    }
    let checked = def.check(raw);
    if let Err(pr) = &checked {
        problems.extend(pr.iter().cloned());
    }
    if !problems.is_empty() {
        let typed = Typed { values: raw, problems: &problems, note: &env.note, filed_on: &env.filed_on, sheet_rows };
        let page = show_entry(state, u, def, county, unit, p, Some(typed), None).await?;
        return Ok(Err(page));
    }
    let values = checked.expect("no problems");
    let f = Filing {
        form_id: def.id.clone(),
        county: county.to_string(),
        unit: unit.code.clone(),
        period: p.code(),
        seen_version: env.seen_version,
        filed_on: date_num(on.expect("no problems")),
        values_json: serde_json::to_string(&values).map_err(|_| WebError::internal("values json"))?,
        note: env.note.clone(),
        actor: u.p.username.clone(),
    };
    match state.store.file_form(&f).await? {
        Ok(v) => {
            tracing::info!(form = %def.id, unit = %unit.code, period = p.code(), version = v, user = %u.p.username, "form filed");
            Ok(Ok(v))
        }
        Err(FilingRefusal::Stale { latest }) => {
            let stale = Problem {
                row: None,
                key: String::new(),
                label: "版本".into(),
                value: String::new(),
                reason: format!("您填写期间，这份报表已被保存为第 {latest} 版（您填写时是第 {} 版）：请核对下方修改记录后重新提交，您填写的内容仍在表中", env.seen_version.max(0)),
            };
            let problems = [stale];
            let typed = Typed { values: raw, problems: &problems, note: &env.note, filed_on: &env.filed_on, sheet_rows };
            let page = show_entry(state, u, def, county, unit, p, Some(typed), None).await?;
            Ok(Err(page))
        }
        Err(FilingRefusal::NotSubmitted) => Err(WebError::bad("这份报表尚未报送")),
    }
}

/// A note or a reason: at most 200 characters, no invisible characters (a NUL would not even store).
fn check_note(text: &str, what: &str) -> Result<(), WebError> {
    if text.chars().count() > 200 {
        return Err(WebError::bad(format!("{what}不超过 200 字")));
    }
    if text.chars().any(char::is_control) {
        return Err(WebError::bad(format!("{what}含有看不见的特殊字符，请删除后重新填写")));
    }
    Ok(())
}

/// `POST /web/forms/{form}/entry`
pub async fn entry_post(
    State(state): State<AppState>,
    u: WebUser,
    Path(form): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult {
    let def = def_of(&form)?;
    if pairs.len() > MAX_POSTED_FIELDS {
        return Err(WebError::bad("提交的内容过多"));
    }
    let mut env = Envelope::default();
    for (k, v) in &pairs {
        envelope_field(&mut env, k, v);
    }
    let (county, unit, p) = target(&state, &u, def, Some(&env.region), &env.unit, &env.period).await?;
    let raw = values_from_pairs(def, &pairs);
    match file_values(&state, &u, def, &county, &unit, p, &env, &raw, Vec::new(), None).await? {
        Ok(v) => Ok(Redirect::to(&format!("{}&saved={v}", entry_href(def, &county, &unit.code, p))).into_response()),
        Err(page) => Ok(page),
    }
}

#[derive(Deserialize)]
pub struct ReturnForm {
    region: String,
    unit: String,
    period: String,
    seen_version: i64,
    #[serde(default)]
    reason: String,
}

/// `POST /web/forms/{form}/return`: the county bureau returns a submitted report with its reason.
pub async fn return_post(State(state): State<AppState>, u: WebUser, Path(form): Path<String>, Form(f): Form<ReturnForm>) -> WebResult {
    let def = def_of(&form)?;
    let (county, unit, p) = target(&state, &u, def, Some(&f.region), &f.unit, &f.period).await?;
    u.require(may_return(&u, &county), "退回报表（需县级医保部门账号）")?;
    let reason = f.reason.trim();
    if reason.is_empty() {
        return Err(WebError::bad("请写明退回修改的原因"));
    }
    check_note(reason, "退回原因")?;
    let filing = Filing {
        form_id: def.id.clone(),
        county: county.clone(),
        unit: unit.code.clone(),
        period: p.code(),
        seen_version: f.seen_version,
        filed_on: date_num(crate::clock::today()),
        actor: u.p.username.clone(),
        ..Default::default()
    };
    match state.store.return_form(&filing, reason).await? {
        Ok(v) => {
            tracing::info!(form = %def.id, unit = %unit.code, period = p.code(), version = v, user = %u.p.username, "form returned");
            Ok(Redirect::to(&entry_href(def, &county, &unit.code, p)).into_response())
        }
        Err(FilingRefusal::Stale { latest }) => Err(WebError::bad(format!("这份报表已有第 {latest} 版，请刷新页面后再退回"))),
        Err(FilingRefusal::NotSubmitted) => Err(WebError::bad("这份报表未报送或已退回，不能退回")),
    }
}

// ───────────────────────────── Excel: the printed form ─────────────────────────────

/// The key written into the form file (B4), so a file is taken only for its form, unit and period, and
/// only over the version it was downloaded with (a file filled in offline must not undo a correction made
/// meanwhile).
fn form_key(def: &FormDef, unit: &str, p: Period, version: i64) -> String {
    format!("{}|{unit}|{}|{version}", def.id, p.key())
}

/// The Excel form in the printed layout, with the current values (if any).
pub fn template_xlsx(def: &FormDef, unit: &Unit, p: Period, version: i64, county_name: &str, values: &Values) -> Result<Vec<u8>, WebError> {
    use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};
    let xerr = |e: rust_xlsxwriter::XlsxError| {
        tracing::error!(error = %e, "form template");
        WebError::internal("form template")
    };
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(SHEET).map_err(xerr)?;
    let title = Format::new().set_bold().set_font_size(14).set_align(FormatAlign::Center);
    let head = Format::new().set_bold().set_border(FormatBorder::Thin).set_background_color("#E8EEF6");
    let cell = Format::new().set_border(FormatBorder::Thin);
    let input = Format::new().set_border(FormatBorder::Thin).set_background_color("#FFF8DC");
    let text_input = input.clone().set_num_format("@");
    let muted = Format::new().set_font_color("#666666");
    let cols = def.table.as_ref().map_or(6, |t| t.columns.len().max(6)) as u16;
    ws.merge_range(0, 0, 0, cols - 1, &def.title, &title).map_err(xerr)?;
    ws.write(1, 0, format!("填报单位：{county_name}{}", unit.name)).map_err(xerr)?;
    ws.write(2, 0, format!("报告期：{}    报送时限：{}", p.label_zh(), def.due.words(def.period))).map_err(xerr)?;
    ws.write_with_format(KEY_ROW, 0, "表号", &muted).map_err(xerr)?;
    ws.write_with_format(KEY_ROW, 1, form_key(def, &unit.code, p, version), &muted).map_err(xerr)?;
    ws.write_with_format(KEY_ROW, 3, "黄色格子填写；请勿改动表号和行列位置", &muted).map_err(xerr)?;
    for (c, h) in ["序号", "类别", "项目", "数量 / 内容", "计量单位", "说明"].iter().enumerate() {
        ws.write_with_format(HEAD_ROW, c as u16, *h, &head).map_err(xerr)?;
    }
    let write_value = |ws: &mut rust_xlsxwriter::Worksheet, r: u32, c: u16, kind: &FieldKind, v: &str| -> Result<(), WebError> {
        match kind {
            FieldKind::Integer | FieldKind::Decimal { .. } if v.parse::<f64>().is_ok() => {
                // A number cell: the canonical text is an exact decimal; Excel shows it as typed.
                ws.write_number_with_format(r, c, v.parse::<f64>().unwrap_or_default(), &input).map_err(xerr)?;
            }
            FieldKind::Integer | FieldKind::Decimal { .. } if !v.is_empty() => {
                ws.write_string_with_format(r, c, v, &input).map_err(xerr)?;
            }
            FieldKind::Integer | FieldKind::Decimal { .. } => {
                ws.write_blank(r, c, &input).map_err(xerr)?;
            }
            _ => {
                ws.write_string_with_format(r, c, v, &text_input).map_err(xerr)?;
            }
        }
        Ok(())
    };
    for (i, f) in def.fields.iter().enumerate() {
        let r = FIELD_ROW0 + i as u32;
        ws.write_with_format(r, 0, &f.no, &cell).map_err(xerr)?;
        ws.write_with_format(r, 1, &f.group, &cell).map_err(xerr)?;
        ws.write_with_format(r, 2, &f.label, &cell).map_err(xerr)?;
        write_value(ws, r, 3, &f.kind, values.fields.get(&f.key).map(String::as_str).unwrap_or(""))?;
        ws.write_with_format(r, 4, &f.unit, &cell).map_err(xerr)?;
        let help = match &f.kind {
            FieldKind::YesNo => "填“是”或“否”".to_string(),
            FieldKind::Choice(c) => format!("填 {} 之一", c.join(" / ")),
            _ if f.required => "必填".to_string(),
            _ => f.help.clone(),
        };
        ws.write_with_format(r, 5, help, &cell).map_err(xerr)?;
    }
    if let Some(t) = &def.table {
        let l = layout(def);
        ws.write_with_format(l.table_title_row, 0, format!("{}（每行一项，最多 {} 行）", t.title, t.max_rows), &Format::new().set_bold())
            .map_err(xerr)?;
        for (c, col) in t.columns.iter().enumerate() {
            let h = if col.unit.is_empty() { col.label.clone() } else { format!("{}（{}）", col.label, col.unit) };
            ws.write_with_format(l.table_head_row, c as u16, h, &head).map_err(xerr)?;
        }
        let n = (values.rows.len() + 5).min(t.max_rows).max(t.min_rows);
        for i in 0..n {
            for (c, col) in t.columns.iter().enumerate() {
                let v = values.rows.get(i).and_then(|r| r.get(&col.key)).map(String::as_str).unwrap_or("");
                write_value(ws, l.table_row0 + i as u32, c as u16, &col.kind, v)?;
            }
        }
    }
    ws.set_column_width(0, 8).map_err(xerr)?;
    ws.set_column_width(1, 22).map_err(xerr)?;
    ws.set_column_width(2, 30).map_err(xerr)?;
    ws.set_column_width(3, 16).map_err(xerr)?;
    ws.set_column_width(4, 12).map_err(xerr)?;
    ws.set_column_width(5, 28).map_err(xerr)?;
    wb.save_to_buffer().map_err(xerr)
}

/// `GET /web/forms/{form}/template?region=&unit=&period=`: the form as an Excel file, with what was filed.
pub async fn template_download(State(state): State<AppState>, u: WebUser, Path(form): Path<String>, Query(q): Query<EntryQ>) -> WebResult {
    let def = def_of(&form)?;
    let (county, unit, p) = target(&state, &u, def, q.region.as_deref(), &q.unit, &q.period).await?;
    let history = state.store.form_history(&def.id, &county, &unit.code, p.code()).await?;
    let values: Values = history.last().and_then(|l| serde_json::from_str(&l.values_json).ok()).unwrap_or_default();
    let version = history.last().map_or(0, |l| l.version);
    let names = state.web.region_names(&state.store).await?;
    let county_name = names.get(&county).cloned().unwrap_or_default();
    let place = if matches!(def.units, Units::Townships) { String::new() } else { county_name };
    let bytes = template_xlsx(def, &unit, p, version, &place, &values)?;
    super::table::download(bytes, &format!("{}_{}_{}.xlsx", unit.name, def.title, p.label_zh()))
}

/// A number read from a cell as the clerk meant it: a formula's binary remainder (0.15000000000000002)
/// is rounded away at 9 decimals; anything else is left to the form's checks.
fn cell_number_text(s: &str) -> String {
    match s.split_once('.') {
        Some((_, frac)) if frac.len() > 9 && s.parse::<f64>().is_ok() => {
            let t = format!("{:.9}", s.parse::<f64>().unwrap_or_default());
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => s.to_string(),
    }
}

/// A filled Excel form as read: its values, the problems of its rows, the sheet row of each kept table
/// row (for messages) and the version the file was downloaded with.
#[derive(Debug)]
pub struct FormFile {
    pub values: Values,
    pub problems: Vec<Problem>,
    pub sheet_rows: Vec<u32>,
    pub version: i64,
}

/// Reads a filled Excel form, or says why the file is not this form (in Chinese, for the clerk). The
/// workbook is read through the bounded cell reader: a file claiming a huge sheet or inflating past
/// the limit is refused before it takes memory.
pub fn read_form_xlsx(def: &FormDef, unit: &str, p: Period, name: &str, bytes: &[u8]) -> Result<FormFile, String> {
    let limits = baozhang_ingest::table::ReadLimits {
        max_rows: MAX_SHEET_ROWS as u64,
        max_cols: MAX_SHEET_COLS as u32,
        max_cell_chars: MAX_CELL_CHARS,
        max_uncompressed_bytes: MAX_UNCOMPRESSED_BYTES,
    };
    let cells = baozhang_ingest::table::read_cells(bytes, name, SHEET, &limits).map_err(|e| e.to_string())?;
    let at = |r: u32, c: u16| -> String { cells.get(&(r, u32::from(c))).cloned().unwrap_or_default() };
    let key = at(KEY_ROW, 1);
    let want = form_key(def, unit, p, 0);
    let want_prefix = want.rsplit_once('|').map_or(want.as_str(), |(a, _)| a).to_string();
    let (file_prefix, file_version) = key.rsplit_once('|').map_or((key.as_str(), ""), |(a, v)| (a, v));
    if file_prefix != want_prefix {
        return Err(if key.is_empty() {
            format!("工作表“{SHEET}”单元格 B4 没有表号：请用本页“下载 Excel 报表”得到的文件填写")
        } else {
            format!(
                "工作表“{SHEET}”单元格 B4 的表号是“{}”，不是本表（{want_prefix}）：请确认报表、单位和报告期",
                key.chars().take(60).collect::<String>()
            )
        });
    }
    let version: i64 = file_version.parse().map_err(|_| format!("工作表“{SHEET}”单元格 B4 的表号不完整：请重新下载本表"))?;
    let mut values = Values::default();
    for (i, f) in def.fields.iter().enumerate() {
        let r = FIELD_ROW0 + i as u32;
        if at(r, 2) != f.label {
            return Err(format!("工作表“{SHEET}”单元格 {} 应为“{}”：表格的行被改动过，请用下载的模板填写", cell_name(r, 2), f.label));
        }
        let val = at(r, 3);
        if !val.is_empty() {
            values.fields.insert(f.key.clone(), if f.kind.numeric() { cell_number_text(&val) } else { val });
        }
    }
    let mut problems = Vec::new();
    let mut sheet_rows = Vec::new();
    if let Some(t) = &def.table {
        let l = layout(def);
        for (c, col) in t.columns.iter().enumerate() {
            if !at(l.table_head_row, c as u16).starts_with(&col.label) {
                return Err(format!(
                    "工作表“{SHEET}”单元格 {} 应为“{}”：表格的列被改动过，请用下载的模板填写",
                    cell_name(l.table_head_row, c as u16),
                    col.label
                ));
            }
        }
        let last = cells.keys().map(|(r, _)| *r).max().unwrap_or(0);
        for r in l.table_row0..=last {
            let row: BTreeMap<String, String> = t
                .columns
                .iter()
                .enumerate()
                .map(|(c, col)| {
                    let v = at(r, c as u16);
                    (col.key.clone(), if col.kind.numeric() { cell_number_text(&v) } else { v })
                })
                .filter(|(_, x)| !x.is_empty())
                .collect();
            if row.is_empty() {
                continue;
            }
            if values.rows.len() == t.max_rows {
                problems.push(Problem {
                    row: None,
                    key: String::new(),
                    label: t.title.clone(),
                    value: String::new(),
                    reason: format!("第 {} 行起超过了最多 {} 行", r + 1, t.max_rows),
                });
                break;
            }
            values.rows.push(row);
            sheet_rows.push(r);
        }
    }
    Ok(FormFile { values, problems, sheet_rows, version })
}

/// `POST /web/forms/{form}/upload` (multipart: region, unit, period, note, file). The file's own key
/// says which version it was downloaded with; a save over a newer one is refused.
pub async fn upload(
    State(state): State<AppState>,
    u: WebUser,
    Path(form): Path<String>,
    pending: Option<axum::Extension<crate::guard::CsrfPending>>,
    mut mp: Multipart,
) -> WebResult {
    let def = def_of(&form)?;
    let pending = pending.map(|p| p.0);
    let mut csrf_ok = pending.is_none();
    let mut env = Envelope::default();
    let mut file: Option<(String, axum::body::Bytes)> = None;
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        tracing::info!(error = %e.body_text(), "form upload unreadable");
        WebError::bad(format!("上传中断或文件过大（上限 {} KB），请重试", MAX_UPLOAD_BYTES >> 10))
    };
    while let Some(field) = mp.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_string();
        if name == crate::guard::CSRF_FIELD {
            let v = field.text().await.map_err(unreadable)?;
            csrf_ok = crate::guard::check_pending(pending.as_ref(), Some(v.trim()));
        } else if name == "file" {
            if !csrf_ok {
                return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
            }
            let fname = super::import::safe_file_name(field.file_name().unwrap_or("form.xlsx"));
            file = Some((fname, field.bytes().await.map_err(unreadable)?));
        } else if name != "seen_version" {
            let v = field.text().await.map_err(unreadable)?;
            envelope_field(&mut env, &name, &v);
        }
    }
    if !csrf_ok {
        return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
    }
    let (county, unit, p) = target(&state, &u, def, Some(&env.region), &env.unit, &env.period).await?;
    // Who may not file does not get the file parsed either.
    if !may_file(&u, def, &county, &unit.code) {
        return Err(WebError::forbidden(format!("{}不能填报这张报表", u.p.role.name_zh())));
    }
    let (name, bytes) = file.filter(|(_, b)| !b.is_empty()).ok_or_else(|| WebError::bad("请选择要上传的 Excel 文件"))?;
    if !name.to_lowercase().ends_with(".xlsx") {
        return Err(WebError::bad(format!("文件“{name}”不是 .xlsx：请用本页下载的 Excel 报表填写后上传")));
    }
    let (d, code, n) = (def, unit.code.clone(), name.clone());
    let read = tokio::task::spawn_blocking(move || read_form_xlsx(d, &code, p, &n, &bytes))
        .await
        .map_err(|_| WebError::internal("form upload reader"))?;
    let f = read.map_err(|e| WebError::bad(if e.contains(&name) { e } else { format!("{name}：{e}") }))?;
    env.seen_version = f.version;
    match file_values(&state, &u, def, &county, &unit, p, &env, &f.values, f.problems, Some(&f.sheet_rows)).await? {
        Ok(v) => Ok(Redirect::to(&format!("{}&saved={v}", entry_href(def, &county, &unit.code, p))).into_response()),
        Err(page) => Ok(page),
    }
}

// ───────────────────────────── indicators ─────────────────────────────

/// The indicators of a county's year, per township: visits and in-county visits (settlements), remote
/// care (the township's latest quarterly report: connected or not), awareness (answered right / asked).
#[derive(Clone, Debug, Default)]
pub struct Indicators {
    pub townships: Vec<TownshipIndicators>,
    pub remote_reported: i64,
    pub remote_connected: i64,
    pub remote_units: i64,
    pub county_consults: i64,
    pub asked: i64,
    pub right: i64,
    pub visits: i64,
    pub in_county: i64,
}

#[derive(Clone, Debug, Default)]
pub struct TownshipIndicators {
    pub code: String,
    pub name: String,
    pub visits: i64,
    pub in_county: i64,
    /// None: no report this year.
    pub connected: Option<bool>,
    pub asked: i64,
    pub right: i64,
}

impl Indicators {
    pub fn in_county_bp(&self) -> Option<i64> {
        (self.visits > 0).then(|| self.in_county * 10_000 / self.visits)
    }
    pub fn remote_bp(&self) -> Option<i64> {
        (self.remote_units > 0 && self.remote_reported > 0).then(|| self.remote_connected * 10_000 / self.remote_units)
    }
    pub fn awareness_bp(&self) -> Option<i64> {
        (self.asked > 0).then(|| self.right * 10_000 / self.asked)
    }
}

/// Computes the indicators of `region` (a county or one of its townships) for `year`.
pub async fn indicators(state: &AppState, region: &str, year: u16) -> Result<Indicators, WebError> {
    let county = region.get(..6).unwrap_or(region).to_string();
    let names = state.web.region_names(&state.store).await?;
    let y = i64::from(year);
    let mut towns: BTreeMap<String, TownshipIndicators> = names
        .iter()
        .filter(|(c, _)| c.len() == 9 && c.starts_with(region))
        .map(|(c, n)| (c.clone(), TownshipIndicators { code: c.clone(), name: n.clone(), ..Default::default() }))
        .collect();
    for (t, visits, inc) in state.store.in_county_visits(region, y).await? {
        if let Some(x) = towns.get_mut(&t) {
            x.visits = visits;
            x.in_county = inc;
        }
    }
    let reports = state.store.form_reports(&county, None, y * 100 + 1, y * 100 + 12).await?;
    let mut ind = Indicators::default();
    // Latest period first, so each township's remote-care answer is its most recent one.
    let mut remote: Vec<&FormReport> =
        reports.iter().filter(|r| r.latest.form_id == "remote_coverage" && r.latest.state == "submitted").collect();
    remote.sort_by_key(|r| std::cmp::Reverse(r.latest.period));
    for r in remote {
        let v: Values = serde_json::from_str(&r.latest.values_json).unwrap_or_default();
        if let Some(t) = towns.get_mut(&r.latest.unit) {
            if t.connected.is_none() {
                t.connected = Some(v.fields.get("connected").is_some_and(|c| c == "是"));
            }
        }
    }
    for r in reports.iter().filter(|r| r.latest.state == "submitted") {
        let v: Values = serde_json::from_str(&r.latest.values_json).unwrap_or_default();
        match r.latest.form_id.as_str() {
            "awareness" => {
                if let Some(t) = towns.get_mut(&r.latest.unit) {
                    for row in &v.rows {
                        let n = |k: &str| row.get(k).and_then(|x| parse_number(x, 0).ok()).unwrap_or(0);
                        t.asked += n("asked");
                        t.right += n("right");
                    }
                }
            }
            // The county hospitals' consultations are a county figure, not a township's.
            "zutuan" if region.len() == 6 => {
                for row in &v.rows {
                    ind.county_consults += row.get("consult").and_then(|x| parse_number(x, 0).ok()).unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    for t in towns.values() {
        ind.visits += t.visits;
        ind.in_county += t.in_county;
        ind.asked += t.asked;
        ind.right += t.right;
        ind.remote_units += 1;
        if let Some(c) = t.connected {
            ind.remote_reported += 1;
            ind.remote_connected += i64::from(c);
        }
    }
    ind.townships = towns.into_values().collect();
    Ok(ind)
}

#[derive(Template)]
#[template(path = "forms_indicators.html")]
pub struct IndicatorsView {
    pub in_county: String,
    pub in_county_note: String,
    pub remote: String,
    pub remote_note: String,
    pub awareness: String,
    pub awareness_note: String,
}

pub fn indicators_table(ind: &Indicators, county: &str, year: u16) -> Table {
    let mut t = Table::new(
        "townships",
        "各乡镇指标",
        vec!["乡镇", "就诊人次", "县域内就诊人次", "县域内就诊率", "卫生院远程会诊", "受访人次", "答对人次", "政策知晓率"],
    );
    for x in &ind.townships {
        t.rows.push(vec![
            Cell::Link(x.name.clone(), format!("/web/forms/remote_coverage?region={county}&year={year}")),
            Cell::Int(x.visits),
            Cell::Int(x.in_county),
            Cell::Pct((x.visits > 0).then(|| x.in_county * 10_000 / x.visits)),
            Cell::text(match x.connected {
                Some(true) => "已接入",
                Some(false) => "未接入",
                None => "未报",
            }),
            Cell::Int(x.asked),
            Cell::Int(x.right),
            Cell::Pct((x.asked > 0).then(|| x.right * 10_000 / x.asked)),
        ]);
    }
    t.total = Some(vec![
        Cell::text("合计"),
        Cell::Int(ind.visits),
        Cell::Int(ind.in_county),
        Cell::Pct(ind.in_county_bp()),
        Cell::text(format!("{} / {}", ind.remote_connected, ind.remote_units)),
        Cell::Int(ind.asked),
        Cell::Int(ind.right),
        Cell::Pct(ind.awareness_bp()),
    ]);
    t
}

pub fn indicators_view(ind: &Indicators) -> IndicatorsView {
    IndicatorsView {
        in_county: pct(ind.in_county_bp()),
        in_county_note: format!("结算 {} 人次中县域内 {} 人次（目标：2020 年 ≥ 90%）", count(ind.visits), count(ind.in_county)),
        remote: pct(ind.remote_bp()),
        remote_note: format!(
            "{} 个乡镇卫生院中 {} 个已接入远程会诊网络（{} 个已报送；目标：2018 年底 ≥ 80%）；县级医院组团式帮扶远程会诊 {} 例",
            ind.remote_units,
            ind.remote_connected,
            ind.remote_reported,
            count(ind.county_consults)
        ),
        awareness: pct(ind.awareness_bp()),
        awareness_note: format!("入户调查受访 {} 人次，答对 {} 人次（目标 ≥ 95%）", count(ind.asked), count(ind.right)),
    }
}

/// `GET /web/forms/indicators?region=&year=`: the indicators and the townships behind them.
pub async fn indicators_page(State(state): State<AppState>, u: WebUser, Query(q): Query<FormsQ>) -> WebResult {
    u.require(matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor), "查看健康扶贫指标")?;
    if u.p.scope.len() > 9 {
        return Err(WebError::forbidden("健康扶贫指标按乡镇及以上汇总，需乡镇级及以上范围的账号"));
    }
    let Some(county) = county_for(&state, &u, q.region.as_deref()).await? else {
        return county_picker(&state, &u, "/web/forms/indicators").await;
    };
    // A township account sees its township; a county account its county, or a township it names.
    let asked = q.region.as_deref().map(str::trim).unwrap_or("");
    let region = if u.p.scope.len() > 6 {
        u.p.scope.clone()
    } else if asked.len() == 9 && asked.starts_with(&county) {
        asked.to_string()
    } else {
        county.clone()
    };
    let year = year_of(super::health::year_param(&state, q.year.as_deref()).await?)?;
    let built = indicators_cached(&state, &u, &region, i64::from(year)).await?;
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    Ok(built.page(&u).render(&u))
}

/// The indicators of a county or township and year, as kept by `web::cache` (the in-county share
/// reads the year's settlements).
pub async fn indicators_cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<Arc<Built>, WebError> {
    let address = format!("/web/forms/indicators?region={region}&year={year}");
    super::cache::kept(state, u, "indicators", address, region, year, |st, _, region, year| {
        Box::pin(async move { build_indicators(&st, &region, year).await })
    })
    .await
}

async fn build_indicators(state: &AppState, region: &str, year: i64) -> Result<Built, WebError> {
    let year = year_of(year)?;
    let county = &region[..region.len().min(6)];
    let ind = indicators(state, region, year).await?;
    let mut t = indicators_table(&ind, county, year);
    let names = state.web.region_names(&state.store).await?;
    let name = names.get(region).cloned().unwrap_or_else(|| region.to_string());
    t.heading = vec![format!("{name}健康扶贫指标"), format!("{year} 年")];
    let mut page = Page::new(format!("健康扶贫指标 · {name} · {year} 年"));
    page.crumbs = vec![("定期报表".into(), format!("/web/forms?region={county}&year={year}")), ("健康扶贫指标".into(), String::new())];
    page.push(&super::supervise::subnav("/web/forms"));
    page.view(&indicators_view(&ind))?;
    Ok(Built::new(page, vec![t]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str) -> &'static FormDef {
        def_of(id).unwrap()
    }

    #[test]
    fn cells_are_named_as_excel_names_them() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(7, 3), "D8");
        assert_eq!(cell_name(0, 26), "AA1");
    }

    #[test]
    fn the_printed_form_reads_back_and_bad_cells_are_named() {
        let d = def("expired_drugs");
        let p = Period::parse_key(d.period, "2018-06").unwrap();
        let unit = Unit { code: "620422100".into(), name: "会师镇".into() };
        let mut v = Values::default();
        for (k, x) in [("staff", "4"), ("th", "1"), ("vc", "9"), ("clinic", "1"), ("pharmacy", "2"), ("other", "0"), ("units_total", "13")]
        {
            v.fields.insert(k.into(), x.into());
        }
        v.fields.insert("fines".into(), "0.1200".into());
        v.fields.insert("filler".into(), "李四".into());
        let bytes = template_xlsx(d, &unit, p, 2, "", &v).unwrap();
        let f = read_form_xlsx(d, &unit.code, p, "x.xlsx", &bytes).unwrap();
        let (back, extra) = (f.values, f.problems);
        assert!(extra.is_empty());
        assert_eq!(f.version, 2, "the file says which version it was made from");
        assert_eq!(back.fields.get("vc").map(String::as_str), Some("9"));
        assert_eq!(back.fields.get("fines").map(String::as_str), Some("0.12"));
        assert_eq!(back.fields.get("filler").map(String::as_str), Some("李四"));
        // Another period's file is refused by its key.
        let other = Period::parse_key(d.period, "2018-07").unwrap();
        assert!(read_form_xlsx(d, &unit.code, other, "x.xlsx", &bytes).unwrap_err().contains("不是本表"));
        assert!(read_form_xlsx(d, &unit.code, p, "x.xlsx", b"PK\x03\x04 not a zip").is_err());
        // A wrong value is reported with its cell: 村卫生室 is the third field row (D8).
        let problems = d.check(&Values { fields: [("vc".to_string(), "九".to_string())].into(), rows: vec![] }).unwrap_err();
        let vc = problems.iter().find(|p| p.key == "vc").unwrap();
        assert_eq!(problem_cell(d, vc, None), "D8");
        let late = Problem { row: None, key: String::new(), label: "报送日期".into(), value: String::new(), reason: "x".into() };
        assert_eq!(problem_cell(d, &late, None), "", "what is not in the file has no cell");
        assert!(problem_text(vc).contains("村卫生室（所）") && problem_text(vc).contains("不是整数"), "{}", problem_text(vc));
    }

    #[test]
    fn table_forms_read_their_rows() {
        let d = def("awareness");
        let p = Period::parse_key(d.period, "2018-H1").unwrap();
        let unit = Unit { code: "620422100".into(), name: "会师镇".into() };
        let mut v = Values::default();
        v.fields.insert("households".into(), "30".into());
        v.rows.push(
            [("question", "先诊疗、后付费"), ("asked", "30"), ("right", "29")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        let bytes = template_xlsx(d, &unit, p, 0, "", &v).unwrap();
        let f = read_form_xlsx(d, &unit.code, p, "x.xlsx", &bytes).unwrap();
        let back = f.values;
        assert_eq!(back.rows.len(), 1);
        assert_eq!(f.sheet_rows, vec![layout(d).table_row0]);
        assert_eq!(back.rows[0].get("right").map(String::as_str), Some("29"));
        let bad = Problem { row: Some(1), key: "right".into(), label: "答对人数".into(), value: "31".into(), reason: "x".into() };
        let l = layout(d);
        assert_eq!(problem_cell(d, &bad, None), cell_name(l.table_row0, 2));
        assert_eq!(problem_cell(d, &bad, Some(&[l.table_row0 + 4])), cell_name(l.table_row0 + 4, 2), "an upload names the sheet's row");
        assert_eq!(cell_number_text("0.15000000000000002"), "0.15");
        assert_eq!(cell_number_text("12"), "12");
    }

    #[test]
    fn posted_inputs_become_values_and_blank_rows_go() {
        let d = def("zutuan");
        let pairs: Vec<(String, String)> = [
            ("f_filler", "王"),
            ("r0_hospital", "白银市第一人民医院"),
            ("r0_team", "3"),
            ("r1_hospital", ""),
            ("r2_hospital", "甘肃省人民医院"),
            ("r999_hospital", "too far"),
            ("f_nope", "x"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let v = values_from_pairs(d, &pairs);
        assert_eq!(v.fields.len(), 1);
        assert_eq!(v.rows.len(), 2);
        assert_eq!(v.rows[1].get("hospital").map(String::as_str), Some("甘肃省人民医院"));
    }

    #[test]
    fn the_entry_view_shows_history_with_changes() {
        let d = def("info_exchange");
        let p = Period::parse_key(d.period, "2018-05").unwrap();
        let unit = Unit { code: "civil".into(), name: "民政部门".into() };
        let today = Date::parse("2018-06-01").unwrap();
        let v1 = FormVersion {
            version: 1,
            action: "submit".into(),
            state: "submitted".into(),
            filed_on: 20180512,
            values_json: r#"{"fields":{"records":"10"}}"#.into(),
            actor: "a".into(),
            ..Default::default()
        };
        let v2 = FormVersion { version: 2, action: "return".into(), state: "returned".into(), note: "条数有误".into(), ..v1.clone() };
        let v3 = FormVersion {
            version: 3,
            action: "correct".into(),
            values_json: r#"{"fields":{"records":"12"}}"#.into(),
            actor: "b".into(),
            state: "submitted".into(),
            ..v1.clone()
        };
        let v = entry_view(d, "620422", &unit, p, today, &[v1.clone(), v2.clone()], None, true, true, true, None);
        assert_eq!((v.standing.as_str(), v.returned_reason.as_str(), v.can_return), ("退回修改中", "条数有误", false));
        let v = entry_view(d, "620422", &unit, p, today, &[v1, v2, v3], None, true, true, true, Some(3));
        assert_eq!(v.standing, "迟报 2 天", "timeliness is the first submission's");
        assert_eq!(v.history[0].changes, vec![("交换数据".to_string(), "10".to_string(), "12".to_string())]);
        assert!(v.can_return && v.saved.contains("第 3 版"));
        assert_eq!(v.fields[0].input.value, "12");
        let html = v.render().unwrap();
        assert!(html.contains("条数有误") && html.contains("更正"), "{html}");
    }
}
