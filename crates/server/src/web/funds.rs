//! 资金拨付 (R-FUND-1): each hospital's annual budget with the 60 % prepayment and the 40 % paid as
//! assessed (seed 001); the quarterly statement of the fallback money hospitals advanced, due by the
//! 10th of the month after the quarter, and its payment within 15 working days of acceptance counted on
//! the holiday calendar of data/calendar/cn.toml (seed 002); late and overdue steps listed.

use std::collections::HashMap;
use std::sync::OnceLock;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::supervise::budget_split;
use baozhang_core::workdays::{payment_due, quarter_reconciliation_due, Calendar};
use baozhang_core::{Date, Fen};
use baozhang_store::supervise::{Budget, FallbackStatement};
use baozhang_store::{date_num, num_date};
use serde::Deserialize;

use super::cache::Built;
use super::health::year_param;
use super::table::{Card, Cell, InlineForm, Input, Part, Table, TableView};
use super::{count, wan, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// The shipped working-day calendar (checked by a unit test in core).
pub fn calendar() -> &'static Calendar {
    static C: OnceLock<Calendar> = OnceLock::new();
    C.get_or_init(|| Calendar::parse(include_str!("../../../../data/calendar/cn.toml")).expect("data/calendar/cn.toml is valid"))
}

fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

#[derive(Deserialize, Default)]
pub struct FundsQ {
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// How a statement stands: (submission, payment) in Chinese, and whether each is overdue or late.
pub struct StatementState {
    pub submit_due: Option<Date>,
    pub pay_due: Option<Date>,
    pub submit: String,
    pub pay: String,
    pub overdue: bool,
}

pub fn statement_state(s: &FallbackStatement, today: Date) -> StatementState {
    let submit_due = u8::try_from(s.quarter).ok().and_then(|q| quarter_reconciliation_due(u16::try_from(s.year).ok()?, q));
    let submitted = s.submitted_on.and_then(num_date);
    let accepted = s.accepted_on.and_then(num_date);
    let paid = s.paid_on.and_then(num_date);
    let mut overdue = false;
    let submit = match (submitted, submit_due) {
        (Some(d), Some(due)) if d <= due => "按时".to_string(),
        (Some(d), Some(due)) => format!("迟报 {} 天", d.to_days() - due.to_days()),
        (None, Some(due)) if today > due => {
            overdue = true;
            format!("逾期未报 {} 天", today.to_days() - due.to_days())
        }
        _ => "未到期".to_string(),
    };
    let pay_due = accepted.map(|a| payment_due(calendar(), a));
    let pay = match (accepted, paid, pay_due) {
        (None, _, _) => "待受理".to_string(),
        (Some(_), Some(p), Some(due)) if p <= due => "按时拨付".to_string(),
        (Some(a), Some(p), Some(_)) => format!("逾期拨付（第 {} 个工作日）", calendar().working_days_between(a, p)),
        (Some(a), None, Some(due)) if today > due => {
            overdue = true;
            format!("逾期未付（已 {} 个工作日）", calendar().working_days_between(a, today))
        }
        (Some(a), None, _) => format!("待拨付（第 {} 个工作日）", calendar().working_days_between(a, today)),
        _ => String::new(),
    };
    StatementState { submit_due, pay_due, submit, pay, overdue }
}

/// The budgets of the county's hospitals for `year`, each with the step it is waiting for (for a
/// manager), and their total; and the five sums (budget, prepaid, held, paid as assessed, withheld).
pub fn budgets_table(budgets: &[Budget], name: &HashMap<&str, &str>, year: i64, today: Date, manage: bool) -> (Table, [i64; 5]) {
    let mut bt = Table::new(
        "budgets",
        format!("{year} 年医保基金总额预算与拨付"),
        vec!["定点医疗机构", "年度预算", "60% 预付", "预付日期", "40% 考核部分", "考核结果", "考核后拨付", "考核扣减", "操作"],
    );
    bt.empty = "尚未登记预算";
    let mut sums = [0i64; 5];
    for b in budgets.iter().filter(|b| name.contains_key(b.fixmedins_code.as_str())) {
        let s = budget_split(b.budget_fen, b.assessed_bp);
        sums[0] += s.budget_fen;
        sums[1] += s.prepay_fen;
        sums[2] += s.held_fen;
        sums[3] += s.assessed_pay_fen.unwrap_or(0);
        sums[4] += s.withheld_fen.unwrap_or(0);
        let mut op = Vec::new();
        if manage && b.prepaid_on.is_none() {
            op.push(Part::form(
                InlineForm::post("/web/funds/prepay", "登记预付")
                    .hidden("code", &b.fixmedins_code)
                    .hidden("year", year)
                    .input(Input::date("on", "预付日期", today.to_string())),
            ));
        }
        if manage && b.assessed_bp.is_none() {
            op.push(Part::form(
                InlineForm::post("/web/funds/assess", "登记考核")
                    .hidden("code", &b.fixmedins_code)
                    .hidden("year", year)
                    .input(Input::text("result", "考核结果（%）").placeholder("考核%"))
                    .input(Input::date("on", "考核日期", today.to_string())),
            ));
        }
        bt.rows.push(vec![
            Cell::text(hospital(name, &b.fixmedins_code)),
            Cell::Yuan(s.budget_fen),
            Cell::Yuan(s.prepay_fen),
            Cell::text(b.prepaid_on.map(super::date_text).unwrap_or_else(|| "未拨付".into())),
            Cell::Yuan(s.held_fen),
            match b.assessed_bp {
                Some(bp) => Cell::Pct(Some(bp)),
                None => Cell::text("未考核"),
            },
            s.assessed_pay_fen.map_or(Cell::text(""), Cell::Yuan),
            s.withheld_fen.map_or(Cell::text(""), Cell::Yuan),
            Cell::Parts(op),
        ]);
    }
    bt.total = Some(vec![
        Cell::text("合计"),
        Cell::Yuan(sums[0]),
        Cell::Yuan(sums[1]),
        Cell::text(""),
        Cell::Yuan(sums[2]),
        Cell::text(""),
        Cell::Yuan(sums[3]),
        Cell::Yuan(sums[4]),
        Cell::text(""),
    ]);
    (bt, sums)
}

/// A hospital by name with its code: 会宁县人民医院（H62042200001）.
fn hospital(name: &HashMap<&str, &str>, code: &str) -> String {
    format!("{}（{code}）", name.get(code).unwrap_or(&"未登记机构"))
}

/// The quarters of `year`: the fallback money each hospital advanced (the ledger's), the statement drawn
/// up for it and how it stands, with the next step for a manager; and the overdue items.
pub fn statements_tables(
    ledger: &[(String, i64, i64, i64)],
    statements: &[FallbackStatement],
    name: &HashMap<&str, &str>,
    year: i64,
    today: Date,
    manage: bool,
) -> (Table, Table) {
    let stmt: HashMap<(&str, i64), &FallbackStatement> = statements.iter().map(|s| ((s.fixmedins_code.as_str(), s.quarter), s)).collect();
    let mut st = Table::new(
        "statements",
        format!("{year} 年兜底资金季度对账与拨付"),
        vec![
            "定点医疗机构",
            "季度",
            "账面垫付兜底资金（救助+兜底）",
            "笔数",
            "对账金额",
            "对账截止",
            "报送日期",
            "报送",
            "受理日期",
            "拨付截止（15 个工作日）",
            "拨付日期",
            "拨付",
            "操作",
        ],
    );
    st.empty = "本年尚无兜底资金垫付";
    st.page_size = 24;
    let mut late_list = Vec::new();
    for (code, quarter, amount, claims) in ledger.iter().filter(|l| name.contains_key(l.0.as_str())) {
        let quarter_over = quarter_reconciliation_due(year as u16, *quarter as u8).is_some_and(|d| d.add_days(-10) <= today);
        let s = stmt.get(&(code.as_str(), *quarter));
        let (cells, op) = match s {
            None => {
                let op = if manage && quarter_over {
                    Cell::form(
                        InlineForm::post("/web/funds/statement", "生成对账表")
                            .hidden("code", code)
                            .hidden("year", year)
                            .hidden("quarter", quarter),
                    )
                } else if !quarter_over {
                    Cell::text("季度未结束")
                } else {
                    Cell::text("")
                };
                let mut cells = vec![Cell::text("未生成")];
                cells.extend((0..7).map(|_| Cell::text("")));
                (cells, op)
            }
            Some(s) => {
                let ss = statement_state(s, today);
                if ss.overdue {
                    late_list.push((*s, ss.submit.clone(), ss.pay.clone()));
                }
                let next = if s.submitted_on.is_none() {
                    Some(("submit", "登记报送"))
                } else if s.accepted_on.is_none() {
                    Some(("accept", "登记受理"))
                } else if s.paid_on.is_none() {
                    Some(("pay", "登记拨付"))
                } else {
                    None
                };
                let op = match next {
                    Some((step, label)) if manage => {
                        Cell::form(InlineForm::post("/web/funds/step", label).hidden("id", s.id).hidden("step", step).input(Input::date(
                            "on",
                            &format!("{label}日期"),
                            today.to_string(),
                        )))
                    }
                    _ => Cell::text(""),
                };
                let tag = |t: &str| {
                    if t.starts_with("逾期") || t.starts_with("迟报") {
                        Cell::tag("new", t)
                    } else {
                        Cell::text(t)
                    }
                };
                (
                    vec![
                        Cell::Yuan(s.amount_fen),
                        Cell::text(ss.submit_due.map(|d| d.to_string()).unwrap_or_default()),
                        Cell::text(s.submitted_on.map(super::date_text).unwrap_or_default()),
                        tag(&ss.submit),
                        Cell::text(s.accepted_on.map(super::date_text).unwrap_or_default()),
                        Cell::text(ss.pay_due.map(|d| d.to_string()).unwrap_or_default()),
                        Cell::text(s.paid_on.map(super::date_text).unwrap_or_default()),
                        tag(&ss.pay),
                    ],
                    op,
                )
            }
        };
        let mut row = vec![Cell::text(hospital(name, code)), Cell::text(quarter_name(*quarter)), Cell::Yuan(*amount), Cell::Int(*claims)];
        row.extend(cells);
        row.push(op);
        st.rows.push(row);
    }
    let mut ot = Table::new("overdue", "逾期事项", vec!["定点医疗机构", "季度", "对账金额", "报送", "拨付"]);
    ot.empty = "没有逾期事项";
    for (s, submit, pay) in &late_list {
        ot.rows.push(vec![
            Cell::text(hospital(name, &s.fixmedins_code)),
            Cell::text(quarter_name(s.quarter)),
            Cell::Yuan(s.amount_fen),
            Cell::text(submit),
            Cell::text(pay),
        ]);
    }
    (st, ot)
}

/// 第一季度 … 第四季度.
fn quarter_name(q: i64) -> String {
    format!("第{}季度", ["", "一", "二", "三", "四"][(q.clamp(0, 4)) as usize])
}

/// The funds page (`templates/funds.html`): the cards, the overdue items, the statements, the budgets
/// and (for a manager) the budget form.
#[derive(Template)]
#[template(path = "funds.html")]
pub struct FundsView<'a> {
    /// (label, value, note)
    pub cards: Vec<Card>,
    pub calendar_warning: Option<String>,
    pub overdue: TableView<'a>,
    pub statements: TableView<'a>,
    pub budgets: TableView<'a>,
    pub manage: bool,
    pub year: i64,
    /// (code, name with code) of the county's hospitals.
    pub hospitals: Vec<(String, String)>,
}

/// The figures the cards state.
#[derive(Clone, Copy, Debug, Default)]
pub struct FundFigures {
    pub budget_fen: i64,
    pub prepaid_hospitals: usize,
    pub fallback_fen: i64,
    pub hospitals: usize,
    pub overdue: usize,
}

pub fn fund_cards(f: &FundFigures) -> Vec<Card> {
    vec![
        Card::new("年度预算", wan(f.budget_fen), format!("即 {} 元；已预付 {} 家", yuan(f.budget_fen), count(f.prepaid_hospitals as i64))),
        Card::new("医院垫付兜底资金", wan(f.fallback_fen), format!("即 {} 元；{} 家医院", yuan(f.fallback_fen), count(f.hospitals as i64))),
        Card::new("逾期事项", format!("{} 项", count(f.overdue as i64)), "对账逾期未报或拨付超过 15 个工作日"),
    ]
}

/// The warning of a year the holiday calendar does not know (working days are then Monday to Friday).
pub fn calendar_warning(year: i64, known: bool) -> Option<String> {
    (!known).then(|| format!("节假日安排中没有 {year} 年，工作日暂按周一至周五计算；请联系系统管理员补充该年的节假日安排。"))
}

pub async fn funds_page(State(state): State<AppState>, u: WebUser, Query(q): Query<FundsQ>) -> WebResult {
    let county = u.county_scope("资金拨付")?.to_string();
    let year = year_param(&state, q.year.as_deref()).await?;
    let built = cached(&state, &u, &county, year).await?;
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    Ok(built.page(&u).render(&u))
}

/// The county's page of a year, as kept by `web::cache` (the fallback money reads the year's ledger).
pub async fn cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<std::sync::Arc<Built>, WebError> {
    super::cache::kept(state, u, "funds", format!("/web/funds?year={year}"), region, year, |st, who, region, year| {
        Box::pin(async move { build(&st, &who, region, year).await })
    })
    .await
}

async fn build(state: &AppState, u: &WebUser, county: String, year: i64) -> Result<Built, WebError> {
    let today = crate::clock::today();
    let hospitals: Vec<_> = state.store.institutions().await?.into_iter().filter(|h| h.admdvs.starts_with(&county)).collect();
    let name: HashMap<&str, &str> = hospitals.iter().map(|h| (h.fixmedins_code.as_str(), h.name.as_str())).collect();
    let budgets = state.store.budgets(year).await?;
    let manage = may_manage(u);
    let (bt, sums) = budgets_table(&budgets, &name, year, today, manage);
    // Quarters: the ledger's fallback per hospital, and the statement drawn up for it.
    let ledger = state.store.fallback_by_quarter(year).await?;
    let statements = state.store.fallback_statements(year).await?;
    let (st, ot) = statements_tables(&ledger, &statements, &name, year, today, manage);
    let figures = FundFigures {
        budget_fen: sums[0],
        prepaid_hospitals: budgets.iter().filter(|b| name.contains_key(b.fixmedins_code.as_str()) && b.prepaid_on.is_some()).count(),
        fallback_fen: ledger.iter().filter(|l| name.contains_key(l.0.as_str())).map(|l| l.2).sum(),
        hospitals: hospitals.len(),
        overdue: ot.rows.len(),
    };
    let view = FundsView {
        cards: fund_cards(&figures),
        calendar_warning: calendar_warning(year, calendar().knows(year as u16)),
        overdue: ot.view(&u.path),
        statements: st.view(&u.path),
        budgets: bt.view(&u.path),
        manage,
        year,
        hospitals: hospitals.iter().map(|h| (h.fixmedins_code.clone(), format!("{}（{}）", h.name, h.fixmedins_code))).collect(),
    };
    let mut page = Page::new(format!("资金拨付 · {year} 年"));
    page.crumbs.push(("资金拨付".into(), String::new()));
    // The area's sub-navigation, as `supervise` renders it for all its pages.
    page.push(&super::supervise::subnav("/web/funds"));
    page.view(&view)?;
    // The tables are inside the template; the export serves them from here.
    let mut built = Built::new(page, Vec::new());
    built.exports = vec![bt, st, ot];
    Ok(built)
}

fn back(year: i64) -> WebResult {
    Ok(Redirect::to(&format!("/web/funds?year={year}")).into_response())
}

async fn hospital_in_scope(state: &AppState, u: &WebUser, code: &str) -> Result<(), WebError> {
    u.require(may_manage(u), "登记资金拨付")?;
    let county = u.county_scope("资金拨付")?;
    match state.store.institution(code.trim()).await? {
        Some(h) if h.admdvs.starts_with(county) => Ok(()),
        _ => Err(WebError::not_found(format!("没有定点医疗机构“{code}”"))),
    }
}

fn day_of(s: &str, field: &str) -> Result<i64, WebError> {
    super::health::past_day(s, field).map(date_num)
}

#[derive(Deserialize)]
pub struct BudgetForm {
    code: String,
    year: String,
    amount: String,
}

pub async fn set_budget(State(state): State<AppState>, u: WebUser, Form(f): Form<BudgetForm>) -> WebResult {
    hospital_in_scope(&state, &u, &f.code).await?;
    let year = super::health::parse_year(&f.year)?;
    let fen = Fen::parse_yuan(f.amount.trim()).map_err(|e| WebError::bad(format!("年度预算“{}”无效：{e}", f.amount)))?;
    if fen.0 <= 0 {
        return Err(WebError::bad("年度预算须大于 0"));
    }
    if state.store.budgets(year).await?.iter().any(|b| b.fixmedins_code == f.code.trim() && b.prepaid_on.is_some()) {
        return Err(WebError::bad("已拨付预付金的预算不能再修改"));
    }
    state.store.set_budget(f.code.trim(), year, fen.0, &u.p.username).await?;
    back(year)
}

#[derive(Deserialize)]
pub struct PrepayForm {
    code: String,
    year: String,
    on: String,
}

pub async fn prepay(State(state): State<AppState>, u: WebUser, Form(f): Form<PrepayForm>) -> WebResult {
    hospital_in_scope(&state, &u, &f.code).await?;
    let year = super::health::parse_year(&f.year)?;
    let on = day_of(&f.on, "预付日期")?;
    if !state.store.budget_step(f.code.trim(), year, Some(on), None, &u.p.username).await? {
        return Err(WebError::bad("请先登记该机构的年度预算"));
    }
    back(year)
}

#[derive(Deserialize)]
pub struct AssessForm {
    code: String,
    year: String,
    result: String,
    on: String,
}

pub async fn assess(State(state): State<AppState>, u: WebUser, Form(f): Form<AssessForm>) -> WebResult {
    hospital_in_scope(&state, &u, &f.code).await?;
    let year = super::health::parse_year(&f.year)?;
    let on = day_of(&f.on, "考核日期")?;
    // A percentage with up to two decimals, as basis points (exact: parsed like yuan).
    let bp = Fen::parse_yuan(f.result.trim().trim_end_matches('%'))
        .map_err(|_| WebError::bad(format!("考核结果“{}”无效（0–100）", f.result)))?
        .0;
    if !(0..=10_000).contains(&bp) {
        return Err(WebError::bad(format!("考核结果“{}”须在 0–100 之间", f.result)));
    }
    if !state.store.budget_step(f.code.trim(), year, None, Some((bp, on)), &u.p.username).await? {
        return Err(WebError::bad("请先登记该机构的年度预算"));
    }
    back(year)
}

#[derive(Deserialize)]
pub struct StatementForm {
    code: String,
    year: String,
    quarter: String,
}

/// Draws up a quarter's statement from the ledger (once; the amount is fixed when drawn up).
pub async fn draw_up(State(state): State<AppState>, u: WebUser, Form(f): Form<StatementForm>) -> WebResult {
    hospital_in_scope(&state, &u, &f.code).await?;
    let year = super::health::parse_year(&f.year)?;
    let quarter: i64 = f.quarter.trim().parse().ok().filter(|q| (1..=4).contains(q)).ok_or_else(|| WebError::bad("季度无效"))?;
    let (amount, claims) = state
        .store
        .fallback_by_quarter(year)
        .await?
        .into_iter()
        .find(|l| l.0 == f.code.trim() && l.1 == quarter)
        .map(|l| (l.2, l.3))
        .ok_or_else(|| WebError::bad("该季度没有垫付兜底资金"))?;
    if state.store.draw_up_statement(f.code.trim(), year, quarter, amount, claims, &u.p.username).await?.is_none() {
        return Err(WebError::bad("该季度的对账表已生成"));
    }
    back(year)
}

#[derive(Deserialize)]
pub struct StepForm {
    id: i64,
    step: String,
    on: String,
}

pub async fn step(State(state): State<AppState>, u: WebUser, Form(f): Form<StepForm>) -> WebResult {
    let s = state.store.fallback_statement(f.id).await?.ok_or_else(|| WebError::not_found("没有这张对账表"))?;
    hospital_in_scope(&state, &u, &s.fixmedins_code).await?;
    let on = day_of(&f.on, "日期")?;
    if !matches!(f.step.as_str(), "submit" | "accept" | "pay") {
        return Err(WebError::bad("操作无效"));
    }
    if !state.store.statement_step(f.id, &f.step, on, &u.p.username).await? {
        return Err(WebError::bad("须按报送、受理、拨付的顺序登记，日期不能早于上一步，且每步只登记一次"));
    }
    back(s.year)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashMap<&'static str, &'static str> {
        [("H1", "会宁县人民医院"), ("H2", "会师镇卫生院")].into_iter().collect()
    }

    #[test]
    fn budgets_split_sixty_forty_and_only_managers_get_the_steps() {
        let today = Date::new(2018, 6, 1).unwrap();
        let budgets = vec![
            Budget {
                fixmedins_code: "H1".into(),
                year: 2018,
                budget_fen: 10_000_000,
                prepaid_on: Some(20180115),
                assessed_bp: Some(9_000),
                ..Budget::default()
            },
            Budget { fixmedins_code: "H2".into(), year: 2018, budget_fen: 1_000_000, ..Budget::default() },
            Budget { fixmedins_code: "OTHER".into(), year: 2018, budget_fen: 5, ..Budget::default() },
        ];
        let (t, sums) = budgets_table(&budgets, &names(), 2018, today, true);
        assert_eq!(t.rows.len(), 2, "another county's hospital is left out");
        assert_eq!(t.rows[0][0].shown_text(), "会宁县人民医院（H1）");
        assert_eq!(t.rows[0][2].shown_text(), "60,000.00");
        assert_eq!(t.rows[0][3].shown_text(), "2018-01-15");
        assert_eq!(t.rows[0][5].shown_text(), "90.00%");
        assert_eq!(t.rows[1][3].shown_text(), "未拨付");
        assert_eq!(t.rows[1][5].shown_text(), "未考核");
        assert_eq!(sums[0], 11_000_000);
        assert_eq!(sums[1], 6_600_000);
        let Cell::Parts(ops) = &t.rows[1][8] else { panic!("steps") };
        assert_eq!(ops.len(), 2, "登记预付 and 登记考核");
        let (t, _) = budgets_table(&budgets, &names(), 2018, today, false);
        assert!(matches!(&t.rows[1][8], Cell::Parts(p) if p.is_empty()), "a viewer gets no forms");
    }

    #[test]
    fn a_statement_not_submitted_after_its_due_date_is_overdue() {
        let today = Date::new(2018, 5, 1).unwrap();
        let ledger = vec![("H1".to_string(), 1, 123_400, 3), ("H2".to_string(), 1, 5_000, 1), ("H1".to_string(), 2, 7_000, 1)];
        let statements = vec![FallbackStatement {
            id: 9,
            fixmedins_code: "H1".into(),
            year: 2018,
            quarter: 1,
            amount_fen: 123_400,
            claims: 3,
            ..FallbackStatement::default()
        }];
        let (st, ot) = statements_tables(&ledger, &statements, &names(), 2018, today, true);
        assert_eq!(st.rows.len(), 3);
        assert_eq!(st.rows[0][1].shown_text(), "第一季度");
        assert_eq!(st.rows[0][5].shown_text(), "2018-04-10");
        assert_eq!(st.rows[0][7].shown_text(), "逾期未报 21 天");
        assert_eq!(st.rows[1][4].shown_text(), "未生成");
        assert!(matches!(&st.rows[1][12], Cell::Parts(p) if matches!(&p[0], Part::Form(f) if f.action == "/web/funds/statement")));
        assert_eq!(st.rows[2][12].shown_text(), "季度未结束");
        assert_eq!(ot.rows.len(), 1);
        assert_eq!((ot.rows[0][0].shown_text().as_str(), ot.rows[0][1].shown_text().as_str()), ("会宁县人民医院（H1）", "第一季度"));
    }

    #[test]
    fn the_cards_state_the_figures_in_wan_yuan_and_exactly() {
        let c = fund_cards(&FundFigures { budget_fen: 11_000_000, prepaid_hospitals: 1, fallback_fen: 135_400, hospitals: 2, overdue: 1 });
        assert_eq!(
            (c[0].label.as_str(), c[0].value.as_str(), c[0].note.as_str()),
            ("年度预算", "11.00 万元", "即 110,000.00 元；已预付 1 家")
        );
        assert_eq!((c[1].value.as_str(), c[1].note.as_str()), ("0.14 万元", "即 1,354.00 元；2 家医院"));
        assert_eq!(c[2].value, "1 项");
        assert!(calendar_warning(2018, true).is_none());
        assert!(calendar_warning(2031, false).is_some_and(|w| w.contains("2031 年")));
    }
}
