//! 月报与分析 (R-SUP-3): the monthly reports with their due days (the county's 挂牌督战 progress by the
//! 18th, seed 000; the health-poverty information exchange by the 10th, seed 001), each unit's
//! submissions and on-time rate; the monthly and quarterly analysis tables of a county, to Excel (with
//! the title rows officials file) and to PDF.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use baozhang_core::supervise::{report_status, ReportKind, ReportStatus, REPORT_KINDS};
use baozhang_core::Date;
use baozhang_slip::ReportData;
use baozhang_store::date_num;
use baozhang_store::supervise::Submission;
use serde::Deserialize;

use super::cache::Built;
use super::health::year_param;
use super::supervise::Card;
use super::table::{Cell, Table};
use super::{urlencode, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct ReportsQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    pdf: Option<String>,
}

fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

/// A county page: the user's own county, or one they pick. `Err(page)`: the picker.
async fn county_of(state: &AppState, u: &WebUser, asked: Option<&str>, path: &str) -> Result<Result<String, Response>, WebError> {
    u.county_scope("月报与分析")?;
    let region = u.region_in_scope(asked)?.to_string();
    if region.len() == 6 {
        return Ok(Ok(region));
    }
    if region.len() > 6 {
        return Ok(Ok(region[..6].to_string()));
    }
    let names = state.web.region_names(&state.store).await?;
    let mut counties: Vec<(&String, &String)> =
        names.iter().filter(|(c, _)| c.len() == 6 && c.starts_with(&region) && !c.ends_with("00")).collect();
    counties.sort();
    let view = PickerView { counties: counties.iter().map(|(c, n)| (format!("{path}?region={c}"), format!("{n}（{c}）"))).collect() };
    let mut page = Page::new("请选择县（区）");
    page.view(&view)?;
    Ok(Err(page.render(u)))
}

#[derive(Template)]
#[template(path = "reports_picker.html")]
struct PickerView {
    /// (address, "会宁县（620422）")
    counties: Vec<(String, String)>,
}

/// The months of `year` whose reports are shown: all of a past year, up to this month in the current one.
fn months(year: i64) -> Vec<i64> {
    let today = crate::clock::today();
    let last = if i64::from(today.year()) == year {
        i64::from(today.month())
    } else if i64::from(today.year()) < year {
        0
    } else {
        12
    };
    (1..=last).map(|m| year * 100 + m).collect()
}

pub async fn reports_page(State(state): State<AppState>, u: WebUser, Query(q): Query<ReportsQ>) -> WebResult {
    let county = match county_of(&state, &u, q.region.as_deref(), "/web/reports").await? {
        Ok(c) => c,
        Err(picker) => return Ok(picker),
    };
    let year = year_param(&state, q.year.as_deref()).await?;
    let built = cached(&state, &u, &county, year).await?;
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    if q.pdf.is_some() {
        let names = state.web.region_names(&state.store).await?;
        let county_name = names.get(&county).cloned().unwrap_or_else(|| county.clone());
        let table = |id: &str| built.export_tables().into_iter().find(|t| t.id == id).map(|t| t.report_table());
        let data = ReportData {
            title: format!("{county_name}健康扶贫月度、季度分析"),
            subtitle: format!("{year} 年 · {county_name}医疗保障局"),
            footer: format!("保障系统生成于 {} · 由 {} 导出", crate::clock::today(), u.p.username),
            tables: ["monthly", "quarterly", "ontime"].iter().filter_map(|id| table(id)).collect(),
        };
        let pdf = state.web.slip_renderer()?.render_report(&data).map_err(|e| {
            tracing::error!(error = %e, "report PDF failed");
            WebError::internal("report PDF failed")
        })?;
        let filename = format!("{county_name}{year}年分析报表.pdf");
        return Ok((
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (header::CONTENT_DISPOSITION, format!("inline; filename=\"report.pdf\"; filename*=UTF-8''{}", urlencode(&filename))),
            ],
            pdf,
        )
            .into_response());
    }
    Ok(built.page(&u).render(&u))
}

/// A county's page of a year, as kept by `web::cache`.
pub async fn cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<std::sync::Arc<Built>, WebError> {
    super::cache::kept(state, u, "reports", format!("/web/reports?region={region}&year={year}"), region, year, |st, who, region, year| {
        Box::pin(async move { build(&st, &who, region, year).await })
    })
    .await
}

async fn build(state: &AppState, u: &WebUser, county: String, year: i64) -> Result<Built, WebError> {
    let names = state.web.region_names(&state.store).await?;
    let county_name = names.get(&county).cloned().unwrap_or_else(|| county.clone());
    let today = crate::clock::today();
    let subs = state.store.report_submissions(&county, year * 100 + 1, year * 100 + 12).await?;
    let by: HashMap<(&str, &str, i64), &Submission> = subs.iter().map(|s| ((s.kind.as_str(), s.unit.as_str(), s.period), s)).collect();

    // Submissions, month by month, and the on-time rate per unit.
    let mut grid = Table::new(
        "submissions",
        format!("{year} 年报送情况"),
        vec!["报表", "报送单位", "月份", "截止日期", "报送日期", "状态", "报送人", "说明"],
    );
    grid.page_size = 36;
    let mut rate =
        Table::new("ontime", format!("{year} 年按时报送率"), vec!["报表", "报送单位", "应报", "按时", "迟报", "逾期未报", "按时报送率"]);
    let (mut all_counted, mut all_on_time) = (0i64, 0i64);
    let mut overdue_now = 0;
    for kind in REPORT_KINDS {
        for (unit, unit_name) in kind.units() {
            let (mut counted, mut on_time, mut late, mut missing) = (0i64, 0i64, 0i64, 0i64);
            for period in months(year) {
                let Some(due) = kind.due(period) else { continue };
                let s = by.get(&(kind.id(), *unit, period));
                let submitted = s.and_then(|s| baozhang_store::num_date(s.submitted_on));
                let status = report_status(due, submitted, today);
                if status.counted() {
                    counted += 1;
                }
                match status {
                    ReportStatus::OnTime => on_time += 1,
                    ReportStatus::Late(_) => late += 1,
                    ReportStatus::Overdue(_) => {
                        missing += 1;
                        overdue_now += 1;
                    }
                    ReportStatus::NotDue => {}
                }
                let tag = match status {
                    ReportStatus::Overdue(_) | ReportStatus::Late(_) => Cell::tag("new", status.name_zh()),
                    _ => Cell::text(status.name_zh()),
                };
                grid.rows.push(vec![
                    // The report is a periodic form (issue 19): its page shows, corrects and returns it.
                    Cell::Link(
                        kind.name_zh().to_string(),
                        format!("/web/forms/{}/entry?region={county}&unit={unit}&period={}-{:02}", kind.id(), period / 100, period % 100),
                    ),
                    Cell::text(*unit_name),
                    Cell::text(format!("{}年{}月", period / 100, period % 100)),
                    Cell::text(due.to_string()),
                    Cell::text(s.map(|s| super::date_text(s.submitted_on)).unwrap_or_default()),
                    tag,
                    Cell::text(s.map(|s| s.submitted_by.clone()).unwrap_or_default()),
                    Cell::text(s.map(|s| s.note.clone()).unwrap_or_default()),
                ]);
            }
            all_counted += counted;
            all_on_time += on_time;
            rate.rows.push(vec![
                Cell::text(kind.name_zh()),
                Cell::text(*unit_name),
                Cell::Int(counted),
                Cell::Int(on_time),
                Cell::Int(late),
                Cell::Int(missing),
                Cell::Pct(super::ratio_bp(on_time, counted)),
            ]);
        }
    }
    rate.total = Some(vec![
        Cell::text("合计"),
        Cell::text(""),
        Cell::Int(all_counted),
        Cell::Int(all_on_time),
        Cell::Int(rate.rows.iter().map(|r| if let Cell::Int(n) = r[4] { n } else { 0 }).sum()),
        Cell::Int(rate.rows.iter().map(|r| if let Cell::Int(n) = r[5] { n } else { 0 }).sum()),
        Cell::Pct(super::ratio_bp(all_on_time, all_counted)),
    ]);

    let (monthly, quarterly) = analysis(state, &county, year).await?;
    let heading = |title: &str| vec![format!("{county_name}{title}"), format!("{year} 年 · 制表：{county_name}医疗保障局 · {}", today)];
    let mut tables = [grid, rate, monthly, quarterly];
    for t in &mut tables {
        t.heading = heading(&t.title.clone());
    }
    let [grid, rate, monthly, quarterly] = tables;
    let view = reports_view(&county, year, today, all_on_time, all_counted, overdue_now, may_manage(u));
    let mut page = Page::new(format!("月报与分析 · {county_name} · {year} 年"));
    page.crumbs.push(("月报与分析".into(), String::new()));
    page.view(&super::supervise::subnav_view("/web/reports"))?.view(&view)?;
    Ok(Built::new(page, vec![rate, grid, monthly, quarterly]))
}

#[derive(Template)]
#[template(path = "reports.html")]
pub struct ReportsView {
    pub cards: Vec<Card>,
    pub pdf_href: String,
    pub county: String,
    /// The reports and units a submission may be recorded for ("kind:unit", "报表 · 单位"); empty: no form.
    pub kinds: Vec<(String, String)>,
    /// The form's defaults: this month (2018-12) and today.
    pub month: String,
    pub today: String,
}

/// The reports page's view model: the on-time rate and overdue count, the PDF's address, the form.
pub fn reports_view(county: &str, year: i64, today: Date, on_time: i64, counted: i64, overdue: i64, manage: bool) -> ReportsView {
    ReportsView {
        cards: vec![
            Card::new("按时报送率", super::pct(super::ratio_bp(on_time, counted)), format!("应报 {counted} 次，按时 {on_time} 次")),
            Card::new("逾期未报", format!("{overdue} 次"), format!("截至 {today}")),
            Card::new("报送时限", "每月 18 日 / 10 日", "督战进展报市医保局；信息交换报卫健部门"),
        ],
        pdf_href: format!("/web/reports?region={}&year={year}&pdf=1", urlencode(county)),
        county: county.to_string(),
        kinds: if manage {
            REPORT_KINDS
                .iter()
                .flat_map(|k| k.units().iter().map(move |(unit, name)| (format!("{}:{unit}", k.id()), format!("{} · {name}", k.name_zh()))))
                .collect()
        } else {
            Vec::new()
        },
        month: format!("{:04}-{:02}", today.year(), today.month()),
        today: today.to_string(),
    }
}

/// The monthly and quarterly analysis tables: settlements (net of cancellations), rectification items
/// opened and closed, inspections.
async fn analysis(state: &AppState, county: &str, year: i64) -> Result<(Table, Table), WebError> {
    let settled = state.store.monthly_settlements(county, year).await?;
    let items = state.store.rectifications(county).await?;
    let inspections = state.store.inspections(county, year * 10_000 + 101, year * 10_000 + 1231).await?;
    // [settlements, inpatient, medfee, fund, psn, opened, closed, inspections] per month 1..=12.
    let mut m = [[0i64; 8]; 13];
    for r in &settled {
        let k = (r[0] % 100) as usize;
        if (1..=12).contains(&k) {
            m[k][..5].copy_from_slice(&r[1..6]);
        }
    }
    // The month of a stored UTC time, on Beijing's calendar (a ledger item opened 2018-05-31T17:00Z
    // is June's).
    let month_of = |at: &str| -> Option<usize> {
        let at = crate::clock::beijing_day(at);
        let y: i64 = at.get(..4)?.parse().ok()?;
        let mo: usize = at.get(5..7)?.parse().ok()?;
        (y == year).then_some(mo)
    };
    for r in &items {
        if let Some(k) = month_of(&r.created_at) {
            m[k][5] += 1;
        }
        if let Some(k) = month_of(&r.closed_at) {
            m[k][6] += 1;
        }
    }
    for i in &inspections {
        m[(i.on_date / 100 % 100) as usize][7] += 1;
    }
    let cols = vec![
        "期间",
        "结算人次",
        "住院人次",
        "医疗总费用",
        "基金支付",
        "个人负担",
        "个人负担占比",
        "新增整改事项",
        "销号整改事项",
        "督导次数",
    ];
    let row = |label: String, v: &[i64; 8]| {
        vec![
            Cell::text(label),
            Cell::Int(v[0]),
            Cell::Int(v[1]),
            Cell::Yuan(v[2]),
            Cell::Yuan(v[3]),
            Cell::Yuan(v[4]),
            Cell::Pct(super::ratio_bp(v[4], v[2])),
            Cell::Int(v[5]),
            Cell::Int(v[6]),
            Cell::Int(v[7]),
        ]
    };
    let mut total = [0i64; 8];
    let mut monthly = Table::new("monthly", "健康扶贫月度分析表", cols.clone());
    monthly.page_size = 12;
    let mut quarters = [[0i64; 8]; 5];
    for (k, v) in m.iter().enumerate().skip(1) {
        monthly.rows.push(row(format!("{k} 月"), v));
        for j in 0..8 {
            total[j] += v[j];
            quarters[k.div_ceil(3)][j] += v[j];
        }
    }
    monthly.total = Some(row("合计".into(), &total));
    let mut quarterly = Table::new("quarterly", "健康扶贫季度分析表", cols);
    for (q, v) in quarters.iter().enumerate().skip(1) {
        quarterly.rows.push(row(format!("第{}季度", ["", "一", "二", "三", "四"][q]), v));
    }
    quarterly.total = Some(row("合计".into(), &total));
    Ok((monthly, quarterly))
}

#[derive(Deserialize)]
pub struct SubmitForm {
    region: String,
    what: String,
    period: String,
    submitted_on: String,
    #[serde(default)]
    note: String,
}

pub async fn submit(State(state): State<AppState>, u: WebUser, Form(f): Form<SubmitForm>) -> WebResult {
    u.require(may_manage(&u), "登记报送")?;
    u.county_scope("报送登记")?;
    let county = u.region_in_scope(Some(&f.region))?.to_string();
    if county.len() != 6 {
        return Err(WebError::bad("报送按县（区）登记"));
    }
    let (kind, unit) = f.what.split_once(':').ok_or_else(|| WebError::bad("报表无效"))?;
    let kind = ReportKind::parse(kind).ok_or_else(|| WebError::bad("报表无效"))?;
    let unit_name = kind.units().iter().find(|(u, _)| *u == unit).map(|(_, name)| *name).ok_or_else(|| WebError::bad("报送单位无效"))?;
    let period =
        super::chronic::parse_month(&f.period).ok_or_else(|| WebError::bad(format!("所属月份“{}”无效（格式 2019-05）", f.period)))?;
    let on = super::health::past_day(&f.submitted_on, "报送日期")?;
    // The report is a periodic form (issue 19): the same reporting periods as its page.
    let def = super::periodic::defs().iter().find(|d| d.id == kind.id()).ok_or_else(|| WebError::internal("report form missing"))?;
    let p = baozhang_core::forms::Period::from_code(def.period, period).ok_or_else(|| WebError::bad("所属月份无效"))?;
    if p < def.start || def.end.is_some_and(|e| p > e) {
        return Err(WebError::bad(format!("{}不在本报表的报送期内（{} 起）", p.label_zh(), def.start.label_zh())));
    }
    if on < p.first_day() {
        return Err(WebError::bad(format!("报送日期不能早于所属月份（{}）", p.label_zh())));
    }
    let note = f.note.trim();
    if note.chars().count() > 200 {
        return Err(WebError::bad("说明不超过 200 字"));
    }
    if note.chars().any(char::is_control) {
        return Err(WebError::bad("说明含有看不见的特殊字符，请删除后重新填写"));
    }
    let s = Submission {
        kind: kind.id().into(),
        region_code: county.clone(),
        unit: unit.into(),
        period,
        submitted_on: date_num(on),
        submitted_by: u.p.username.clone(),
        note: note.into(),
    };
    if !state.store.submit_report(&s).await? {
        return Err(WebError::bad(format!(
            "{}（{}）{} 年 {} 月已登记报送，不能重复登记",
            kind.name_zh(),
            unit_name,
            period / 100,
            period % 100
        )));
    }
    Ok(Redirect::to(&format!("/web/reports?region={county}&year={}", period / 100)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reports_view_gives_the_on_time_rate_and_the_form_defaults() {
        let today = Date::parse("2018-12-20").unwrap();
        let v = reports_view("620422", 2018, today, 1, 48, 46, true);
        let cards: Vec<(&str, &str, &str)> = v.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect();
        assert_eq!(cards[0], ("按时报送率", "2.08%", "应报 48 次，按时 1 次"));
        assert_eq!(cards[1], ("逾期未报", "46 次", "截至 2018-12-20"));
        assert_eq!(v.pdf_href, "/web/reports?region=620422&year=2018&pdf=1");
        assert_eq!((v.month.as_str(), v.today.as_str()), ("2018-12", "2018-12-20"));
        assert!(v.kinds.iter().any(|k| k.0 == "county_progress:county"), "{:?}", v.kinds);
        assert!(v.kinds.iter().all(|k| k.1.contains(" · ")), "each option names the report and the unit: {:?}", v.kinds);
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"submit-form\"") && html.contains("data-testid=\"report-pdf\""), "{html}");
        let v = reports_view("620422", 2018, today, 0, 0, 0, false);
        assert_eq!(v.cards[0].value, "—", "no report due: no rate");
        assert!(!v.render().unwrap().contains("<form"));
    }
}
