//! 资金拨付 (R-FUND-1): each hospital's annual budget with the 60 % prepayment and the 40 % paid as
//! assessed (seed 001); the quarterly statement of the fallback money hospitals advanced, due by the
//! 10th of the month after the quarter, and its payment within 15 working days of acceptance counted on
//! the holiday calendar of data/calendar/cn.toml (seed 002); late and overdue steps listed.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::supervise::budget_split;
use baozhang_core::workdays::{payment_due, quarter_reconciliation_due, Calendar};
use baozhang_core::{Date, Fen};
use baozhang_store::supervise::FallbackStatement;
use baozhang_store::{date_num, num_date};
use serde::Deserialize;

use super::health::year_param;
use super::table::{Cell, InlineForm, Input, Part, Table};
use super::{card, esc, yuan, Page, WebError, WebResult, WebUser};
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

pub async fn funds_page(State(state): State<AppState>, u: WebUser, Query(q): Query<FundsQ>) -> WebResult {
    let county = u.county_scope("资金拨付")?.to_string();
    let year = year_param(&state, q.year.as_deref()).await?;
    let today = crate::clock::today();
    let hospitals: Vec<_> = state.store.institutions().await?.into_iter().filter(|h| h.admdvs.starts_with(&county)).collect();
    let name: HashMap<&str, &str> = hospitals.iter().map(|h| (h.fixmedins_code.as_str(), h.name.as_str())).collect();
    let budgets = state.store.budgets(year).await?;
    let manage = may_manage(&u);

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
            Cell::text(format!("{}（{}）", name.get(b.fixmedins_code.as_str()).unwrap_or(&""), b.fixmedins_code)),
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

    // Quarters: the ledger's fallback per hospital, and the statement drawn up for it.
    let ledger = state.store.fallback_by_quarter(year).await?;
    let statements = state.store.fallback_statements(year).await?;
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
    let mut overdue = 0;
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
                (
                    vec![
                        Cell::text("未生成"),
                        Cell::text(""),
                        Cell::text(""),
                        Cell::text(""),
                        Cell::text(""),
                        Cell::text(""),
                        Cell::text(""),
                        Cell::text(""),
                    ],
                    op,
                )
            }
            Some(s) => {
                let ss = statement_state(s, today);
                if ss.overdue {
                    overdue += 1;
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
                    Some((step, label)) if manage => Cell::form(
                        InlineForm::post("/web/funds/step", label)
                            .hidden("id", s.id)
                            .hidden("step", step)
                            .input(Input::date("on", &format!("{label}日期"), today.to_string())),
                    ),
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
        let mut row = vec![
            Cell::text(format!("{}（{code}）", name.get(code.as_str()).unwrap_or(&""))),
            Cell::text(format!("第{}季度", ["", "一", "二", "三", "四"][(*quarter as usize).min(4)])),
            Cell::Yuan(*amount),
            Cell::Int(*claims),
        ];
        row.extend(cells);
        row.push(op);
        st.rows.push(row);
    }
    let mut ot = Table::new("overdue", "逾期事项", vec!["定点医疗机构", "季度", "对账金额", "报送", "拨付"]);
    ot.empty = "没有逾期事项";
    for (s, submit, pay) in &late_list {
        ot.rows.push(vec![
            Cell::text(format!("{}（{}）", name.get(s.fixmedins_code.as_str()).unwrap_or(&""), s.fixmedins_code)),
            Cell::Int(s.quarter),
            Cell::Yuan(s.amount_fen),
            Cell::text(submit),
            Cell::text(pay),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&bt, &st, &ot], x).await;
    }

    let mut page = Page::new(format!("资金拨付 · {year} 年"));
    page.crumbs.push(("资金拨付".into(), String::new()));
    page.push(&super::supervise::subnav("/web/funds"));
    let fallback_total: i64 = ledger.iter().filter(|l| name.contains_key(l.0.as_str())).map(|l| l.2).sum();
    page.push(&format!(
        "<div class=\"cards\" data-testid=\"fund-cards\">{}{}{}</div>",
        card(
            "年度预算",
            &format!("{} 元", yuan(sums[0])),
            &format!("已预付 {} 家", budgets.iter().filter(|b| b.prepaid_on.is_some()).count())
        ),
        card("医院垫付兜底资金", &format!("{} 元", yuan(fallback_total)), &format!("{} 家医院", hospitals.len())),
        card("逾期事项", &format!("{overdue} 项"), "对账逾期未报或拨付超过 15 个工作日"),
    ));
    if !calendar().knows(year as u16) {
        page.push(&format!(
            "<p class=\"tag new\">节假日安排中没有 {year} 年，工作日暂按周一至周五计算；请联系系统管理员补充该年的节假日安排。</p>"
        ));
    }
    page.push(&ot.html(&u.path));
    page.push(&st.html(&u.path));
    page.push(&bt.html(&u.path));
    if manage {
        let options: String = hospitals
            .iter()
            .map(|h| format!("<option value=\"{}\">{}（{}）</option>", esc(&h.fixmedins_code), esc(&h.name), esc(&h.fixmedins_code)))
            .collect();
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>登记年度预算</h2><form method=\"post\" action=\"/web/funds/budget\" class=\"grid-form\" data-testid=\"budget-form\">\
             <input type=\"hidden\" name=\"year\" value=\"{year}\"><label>定点医疗机构<select name=\"code\">{options}</select></label>\
             <label>年度预算（元）<input name=\"amount\" required inputmode=\"decimal\"></label><div class=\"actions\"><button>登记</button></div></form></section>"
        ));
    }
    page.push("<p class=\"muted\">依据：医保基金按年度预算 60% 预付、40% 经考核后拨付；医疗机构每季度对垫付的政府兜底资金对账，季度结束后次月 10 日前报送，受理后 15 个工作日内拨付（节假日与调休按国务院办公厅通知配置）。</p>");
    Ok(page.render(&u))
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
