//! 基金监管 (R-AUD-1/2): audit runs over a year's settled claims and their leads, each with the evidence,
//! the claims behind it (their slips) and the rule's parameters; the bureau and auditors confirm or
//! dismiss a lead, the hospital it is about disputes it, and every step is kept on the lead's trail.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::audit::Rule;
use baozhang_ingest::oversight::{run_audit, AuditError, DEFAULT_RULES};
use baozhang_store::oversight::{state_zh, LeadError, LeadRow};
use serde::Deserialize;

use super::table::{Cell, Table};
use super::{card, esc, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct AuditQ {
    #[serde(default)]
    run: Option<i64>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// The hospital a user is limited to (hospital accounts), or none; others must have a region role.
fn hospital_of(u: &WebUser) -> Result<Option<String>, WebError> {
    match u.p.role {
        Role::Hospital => Ok(Some(u.p.scope.clone())),
        Role::Admin | Role::Bureau | Role::Auditor => Ok(None),
        Role::Cadre => Err(WebError::forbidden("村干部不能查看基金监管线索")),
    }
}

/// The region whose leads the user reads: their own (admin: all; hospitals: every region, but only their
/// own leads).
fn lead_region(u: &WebUser) -> &str {
    u.p.region().unwrap_or("")
}

/// Whether a run is one the user may see: it covered part of their region, or their region lies in it.
fn run_visible(u: &WebUser, run_region: &str) -> bool {
    let own = lead_region(u);
    u.p.role == Role::Hospital || run_region.starts_with(own) || own.starts_with(run_region)
}

/// A lead is in scope: inside the user's region, and for a hospital about itself.
pub fn lead_visible(u: &WebUser, l: &LeadRow) -> bool {
    match u.p.role {
        Role::Hospital => l.fixmedins_code == u.p.scope,
        Role::Cadre => false,
        _ => l.admdvs.starts_with(lead_region(u)),
    }
}

/// Leads shown on the page (the Excel export has all).
const SHOWN_ROWS: usize = 1_000;

fn may_judge(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

fn rule_zh(id: &str) -> &'static str {
    Rule::parse(id).map_or("未知规则", Rule::name_zh)
}

pub async fn audit_page(State(state): State<AppState>, u: WebUser, Query(q): Query<AuditQ>) -> WebResult {
    let hospital = hospital_of(&u)?;
    let runs: Vec<_> = state.store.audit_runs().await?.into_iter().filter(|r| run_visible(&u, &r.region_code)).collect();
    let run = match q.run {
        Some(id) => Some(runs.iter().find(|r| r.id == id).ok_or_else(|| WebError::not_found("没有这次审核"))?),
        None => runs.first(),
    };
    let mut page = Page::new("基金监管审核");
    page.crumbs.push(("基金监管".into(), String::new()));
    let Some(run) = run else {
        page.push("<p class=\"muted\">还没有运行过审核。</p>");
        if matches!(u.p.role, Role::Admin | Role::Bureau) {
            page.push(&run_form(super::dashboard::default_year(&state).await));
        }
        return Ok(page.render(&u));
    };
    let region = if hospital.is_some() { "" } else { lead_region(&u) };
    let leads = state.store.audit_leads(run.id, region, hospital.as_deref()).await?;
    let shown: Vec<&LeadRow> = leads.iter().filter(|l| q.rule.as_deref().is_none_or(|r| r.is_empty() || l.rule == r)).collect();
    let mut t = Table::new("leads", "疑点线索", vec!["编号", "规则", "对象", "医疗机构", "结算记录", "涉及金额（元）", "状态", "依据"]);
    t.empty = "没有疑点线索";
    t.page_size = 25;
    let exporting = q.export.is_some();
    for l in shown.iter().take(if exporting { usize::MAX } else { SHOWN_ROWS }) {
        t.rows.push(vec![
            Cell::Link(l.id.to_string(), format!("/web/audit/lead/{}", l.id)),
            Cell::text(rule_zh(&l.rule)),
            Cell::text(&l.subject),
            Cell::text(&l.fixmedins_code),
            Cell::Int(l.claims.len() as i64),
            Cell::Yuan(l.amount_fen),
            Cell::text(state_zh(&l.state)),
            Cell::text(&l.evidence),
        ]);
    }
    let mut rt = Table::new("rules", "按规则汇总", vec!["规则", "线索", "待核查", "已确认", "已排除", "申诉中", "涉及金额（元）"]);
    for r in Rule::ALL {
        let of: Vec<&LeadRow> = leads.iter().filter(|l| l.rule == r.id()).collect();
        let n = |s: &str| of.iter().filter(|l| l.state == s).count() as i64;
        rt.rows.push(vec![
            Cell::Link(r.name_zh().into(), format!("/web/audit?run={}&rule={}", run.id, r.id())),
            Cell::Int(of.len() as i64),
            Cell::Int(n("open")),
            Cell::Int(n("confirmed")),
            Cell::Int(n("dismissed")),
            Cell::Int(n("disputed")),
            Cell::Yuan(of.iter().map(|l| l.amount_fen).sum()),
        ]);
    }
    let mut runs_t = Table::new("runs", "审核记录", vec!["运行", "年度", "结算条数", "线索", "运行人", "时间"]);
    for r in &runs {
        runs_t.rows.push(vec![
            Cell::Link(format!("#{}", r.id), format!("/web/audit?run={}", r.id)),
            Cell::Int(r.year),
            Cell::Int(r.claims),
            Cell::Int(r.leads),
            Cell::text(&r.run_by),
            Cell::text(r.run_at.get(..16).unwrap_or(&r.run_at).replace('T', " ")),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t, &rt, &runs_t], x).await;
    }
    let count = |s: &str| leads.iter().filter(|l| l.state == s).count();
    page.push(&format!(
        "<div class=\"cards\" data-testid=\"audit-cards\">{}{}{}{}</div>",
        card("疑点线索", &format!("{} 条", leads.len()), &format!("{} 年，审核 #{}，结算 {} 条", run.year, run.id, run.claims)),
        card("待核查", &format!("{} 条", count("open")), ""),
        card("已确认违规", &format!("{} 条", count("confirmed")), &format!("已排除 {} 条", count("dismissed"))),
        card("医院申诉中", &format!("{} 条", count("disputed")), ""),
    ));
    // The parameters as used, in words (the stored run keeps them as configured).
    let params = match baozhang_core::audit::AuditParams::parse(&run.params) {
        Ok(p) => p.words().iter().map(|w| format!("<li>{}</li>", esc(w))).collect::<String>(),
        Err(_) => "<li>（本次审核的参数记录无法读取）</li>".to_string(),
    };
    page.push(&format!(
        "<p class=\"muted\">线索是疑点，不是结论：请核对结算记录后确认或排除；医院可对线索申诉。本次审核所用标准：</p><ul class=\"muted\" data-testid=\"params\">{params}</ul>"
    ));
    if shown.len() > SHOWN_ROWS {
        page.push(&format!(
            "<div class=\"alert\" role=\"status\">线索较多：页面显示前 {SHOWN_ROWS} 条（共 {} 条），可在上表按规则筛选，完整名单请点“导出 Excel”。</div>",
            shown.len()
        ));
    }
    let path = u.path.clone();
    page.push(&rt.html(&path)).push(&t.html(&path));
    if hospital.is_none() {
        page.push(&runs_t.html(&path));
    }
    if matches!(u.p.role, Role::Admin | Role::Bureau) {
        page.push(&run_form(run.year));
    }
    Ok(page.render(&u))
}

fn run_form(year: i64) -> String {
    format!(
        "<section class=\"calc noprint\"><h2>运行审核</h2><form method=\"post\" action=\"/web/audit/run\" class=\"inline\" data-testid=\"audit-run\">\
         <label>年度<input name=\"year\" value=\"{year}\" inputmode=\"numeric\" size=\"5\"></label><button>运行</button></form>\
         <p class=\"muted\">按本地审核参数运行全部规则（参数由系统管理员配置，每次运行所用参数随结果保存，可在下方查看）。</p></section>"
    )
}

#[derive(Deserialize)]
pub struct RunForm {
    year: String,
}

pub async fn run(State(state): State<AppState>, u: WebUser, Form(f): Form<RunForm>) -> WebResult {
    if !matches!(u.p.role, Role::Admin | Role::Bureau) {
        return Err(WebError::forbidden(format!("{}不能运行审核", u.p.role.name_zh())));
    }
    let year: i64 = super::health::parse_year(&f.year)?;
    // A run covers the settlements of the runner's region only (a county bureau audits its own fund).
    let region = u.region()?.to_string();
    let o = run_audit(&state.store, year, &region, DEFAULT_RULES, &u.p.username).await.map_err(|e| match e {
        AuditError::Params(m) => WebError::bad(m),
        AuditError::Store(s) => WebError::from(s),
    })?;
    state.store.audit(&u.p.username, "audit.run", &format!("year {year}: run {} with {} leads", o.run_id, o.leads.len())).await?;
    Ok(Redirect::to(&format!("/web/audit?run={}", o.run_id)).into_response())
}

async fn lead_in_scope(state: &AppState, u: &WebUser, id: i64) -> Result<LeadRow, WebError> {
    let hospital = hospital_of(u)?;
    let l = state.store.audit_lead(id).await?.ok_or_else(|| WebError::not_found("没有这条线索"))?;
    if hospital.is_some_and(|h| h != l.fixmedins_code) || !lead_visible(u, &l) {
        return Err(WebError::not_found("没有这条线索"));
    }
    Ok(l)
}

pub async fn lead_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>) -> WebResult {
    let l = lead_in_scope(&state, &u, id).await?;
    let events = state.store.audit_lead_events(id).await?;
    let mut ct = Table::new("claims", "相关结算记录", vec!["结算编号", "结算单"]);
    for c in &l.claims {
        ct.rows.push(vec![Cell::text(c), Cell::Link("查看结算单".into(), format!("/web/slip/{c}"))]);
    }
    let mut et = Table::new("trail", "处理记录", vec!["时间", "操作人", "角色", "操作", "状态变化", "说明"]);
    et.empty = "尚未处理";
    for e in &events {
        et.rows.push(vec![
            Cell::text(e.at.get(..16).unwrap_or(&e.at).replace('T', " ")),
            Cell::text(&e.actor),
            Cell::text(&e.role),
            Cell::text(match e.action.as_str() {
                "confirm" => "确认违规",
                "dismiss" => "排除",
                "dispute" => "申诉",
                "reopen" => "重新核查",
                other => other,
            }),
            Cell::text(format!("{} → {}", state_zh(&e.from_state), state_zh(&e.to_state))),
            Cell::text(&e.note),
        ]);
    }
    let mut page = Page::new(format!("疑点线索 #{id}"));
    page.crumbs.push(("基金监管".into(), format!("/web/audit?run={}", l.run_id)));
    page.crumbs.push((format!("线索 #{id}"), String::new()));
    page.push(&format!(
        "<dl class=\"facts\"><dt>规则</dt><dd>{}</dd><dt>对象</dt><dd>{}</dd><dt>医疗机构</dt><dd>{}</dd><dt>涉及金额</dt><dd>{} 元</dd>\
         <dt>状态</dt><dd data-testid=\"lead-state\">{}</dd><dt>依据</dt><dd>{}</dd></dl>",
        rule_zh(&l.rule),
        esc(&l.subject),
        esc(&l.fixmedins_code),
        super::yuan(l.amount_fen),
        state_zh(&l.state),
        esc(&l.evidence)
    ));
    page.push(&ct.html(&u.path)).push(&et.html(&u.path));
    let actions: &[(&str, &str)] = match u.p.role {
        Role::Hospital => &[("dispute", "申诉")],
        _ if may_judge(&u) => &[("confirm", "确认违规"), ("dismiss", "排除"), ("reopen", "重新核查")],
        _ => &[],
    };
    if may_judge(&u) {
        page.push(&format!(
            "<form method=\"post\" action=\"/web/rectify/from-lead/{id}\" class=\"inline noprint\"><button class=\"secondary\" data-testid=\"to-ledger\">转入整改台账</button></form>"
        ));
    }
    if !actions.is_empty() {
        let buttons: String = actions.iter().map(|(a, label)| format!("<button name=\"action\" value=\"{a}\">{label}</button>")).collect();
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>处理</h2><form method=\"post\" action=\"/web/audit/lead/{id}\" class=\"grid-form\" data-testid=\"lead-form\">\
             <label>说明（排除、申诉时必填）<input name=\"note\"></label><div class=\"actions\">{buttons}</div></form></section>"
        ));
    }
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct ActForm {
    action: String,
    #[serde(default)]
    note: String,
}

pub async fn act(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<ActForm>) -> WebResult {
    lead_in_scope(&state, &u, id).await?;
    let by_hospital = u.p.role == Role::Hospital;
    if !by_hospital && !may_judge(&u) {
        return Err(WebError::forbidden(format!("{}不能处理线索", u.p.role.name_zh())));
    }
    let note = f.note.trim();
    if note.chars().count() > 500 {
        return Err(WebError::bad("说明不超过 500 字"));
    }
    if matches!(f.action.as_str(), "dismiss" | "dispute") && note.is_empty() {
        return Err(WebError::bad("排除或申诉时请写明理由"));
    }
    match state.store.act_on_lead(id, &f.action, by_hospital, &u.p.username, u.p.role.name_zh(), note).await {
        Ok(_) => Ok(Redirect::to(&format!("/web/audit/lead/{id}")).into_response()),
        Err(LeadError::NotFound) => Err(WebError::not_found("没有这条线索")),
        Err(e @ LeadError::NotAllowed(..)) => Err(WebError::bad(e.to_string())),
        Err(LeadError::Store(s)) => Err(WebError::from(s)),
    }
}
