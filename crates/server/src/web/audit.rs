//! 基金监管 (R-AUD-1/2): audit runs over a year's settled claims and their leads, each with the evidence,
//! the claims behind it (their slips) and the rule's parameters; the bureau and auditors confirm or
//! dismiss a lead, the hospital it is about disputes it, and every step is kept on the lead's trail.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::audit::{AuditParams, Rule};
use baozhang_store::oversight::{state_zh, AuditRun, LeadError, LeadRow};
use serde::Deserialize;

use super::supervise::{Card, Fact};
use super::table::{Cell, Table};
use super::{yuan, Page, WebError, WebResult, WebUser};
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
    let may_run = matches!(u.p.role, Role::Admin | Role::Bureau);
    let mut page = Page::new("基金监管审核");
    page.crumbs.push(("基金监管".into(), String::new()));
    let Some(run) = run else {
        let year = if may_run { Some(super::dashboard::default_year(&state).await) } else { None };
        page.view(&audit_view(None, &[], 0, None, year))?;
        return Ok(page.render(&u));
    };
    let region = if hospital.is_some() { "" } else { lead_region(&u) };
    let leads = state.store.audit_leads(run.id, region, hospital.as_deref()).await?;
    let names = institution_names(&state).await?;
    let rule = q.rule.as_deref().filter(|r| !r.is_empty());
    let shown: Vec<&LeadRow> = leads.iter().filter(|l| rule.is_none_or(|r| l.rule == r)).collect();
    let mut t = Table::new("leads", "疑点线索", vec!["编号", "规则", "对象", "医疗机构", "结算记录", "涉及金额（元）", "状态", "依据"]);
    t.empty = "没有疑点线索";
    t.page_size = 25;
    let exporting = q.export.is_some();
    for l in shown.iter().take(if exporting { usize::MAX } else { SHOWN_ROWS }) {
        t.rows.push(vec![
            Cell::Link(l.id.to_string(), format!("/web/audit/lead/{}", l.id)),
            Cell::text(rule_zh(&l.rule)),
            Cell::text(&l.subject),
            Cell::text(hospital_text(&names, &l.fixmedins_code)),
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
            Cell::text(crate::clock::beijing_minute(&r.run_at)),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t, &rt, &runs_t], x).await;
    }
    page.view(&audit_view(Some(run), &leads, shown.len(), rule, may_run.then_some(run.year)))?;
    page.tables(&u, &[&rt, &t]);
    if hospital.is_none() {
        page.tables(&u, &[&runs_t]);
    }
    Ok(page.render(&u))
}

/// Hospitals' names by code.
async fn institution_names(state: &AppState) -> Result<HashMap<String, String>, WebError> {
    Ok(state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect())
}

/// A hospital by name, with its code (the code alone when it is not registered).
fn hospital_text(names: &HashMap<String, String>, code: &str) -> String {
    match names.get(code) {
        Some(name) => format!("{name}（{code}）"),
        None => code.to_string(),
    }
}

/// What the page says about a run.
pub struct RunView {
    pub cards: Vec<Card>,
    /// The rules' parameters as used, in words.
    pub params: Vec<String>,
    /// The rule the leads are filtered by (its name; empty: all), and the address of all rules.
    pub rule: String,
    pub all_href: String,
    /// Leads listed (after the rule filter), and whether the page shows only the first `shown_rows`.
    pub shown: usize,
    pub shown_rows: usize,
    pub truncated: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditView {
    /// None: no run yet.
    pub run: Option<RunView>,
    /// The year the run form proposes, for those who may run audits.
    pub run_year: Option<i64>,
}

/// The audit page's view model: the run's counts and parameters in words, from its leads.
pub fn audit_view(run: Option<&AuditRun>, leads: &[LeadRow], shown: usize, rule: Option<&str>, run_year: Option<i64>) -> AuditView {
    let run = run.map(|run| {
        let count = |s: &str| leads.iter().filter(|l| l.state == s).count();
        RunView {
            cards: vec![
                Card::new("疑点线索", format!("{} 条", leads.len()), format!("{} 年，审核 #{}，结算 {} 条", run.year, run.id, run.claims)),
                Card::new("待核查", format!("{} 条", count("open")), ""),
                Card::new("已确认违规", format!("{} 条", count("confirmed")), format!("已排除 {} 条", count("dismissed"))),
                Card::new("医院申诉中", format!("{} 条", count("disputed")), ""),
            ],
            // The parameters as used, in words (the stored run keeps them as configured).
            params: match AuditParams::parse(&run.params) {
                Ok(p) => p.words(),
                Err(_) => vec!["（本次审核的参数记录无法读取）".to_string()],
            },
            rule: rule.map(rule_zh).unwrap_or_default().to_string(),
            all_href: format!("/web/audit?run={}", run.id),
            shown,
            shown_rows: SHOWN_ROWS,
            truncated: shown > SHOWN_ROWS,
        }
    });
    AuditView { run, run_year }
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
            Cell::text(crate::clock::beijing_minute(&e.at)),
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
    let names = institution_names(&state).await?;
    let view = lead_view(&l, names.get(&l.fixmedins_code).map(String::as_str), u.p.role == Role::Hospital, may_judge(&u));
    let mut page = Page::new(format!("疑点线索 #{id}"));
    page.crumbs.push(("基金监管".into(), format!("/web/audit?run={}", l.run_id)));
    page.crumbs.push((format!("线索 #{id}"), String::new()));
    page.view(&view)?.tables(&u, &[&ct, &et]);
    Ok(page.render(&u))
}

#[derive(Template)]
#[template(path = "audit_lead.html")]
pub struct LeadView {
    pub id: i64,
    pub facts: Vec<Fact>,
    /// The button turning the lead into a ledger item.
    pub to_ledger: bool,
    /// (action, button label) the reader may take.
    pub actions: Vec<(&'static str, &'static str)>,
}

/// A lead's view model; `hospital`: the name of its hospital when registered.
pub fn lead_view(l: &LeadRow, hospital: Option<&str>, by_hospital: bool, judge: bool) -> LeadView {
    let hosp = match hospital {
        Some(name) => Fact::new("医疗机构", name).title(format!("医疗机构编码 {}", l.fixmedins_code)),
        None => Fact::new("医疗机构", &l.fixmedins_code),
    };
    let actions = if by_hospital {
        vec![("dispute", "申诉")]
    } else if judge {
        vec![("confirm", "确认违规"), ("dismiss", "排除"), ("reopen", "重新核查")]
    } else {
        Vec::new()
    };
    LeadView {
        id: l.id,
        facts: vec![
            Fact::new("规则", rule_zh(&l.rule)),
            Fact::new("对象", &l.subject),
            hosp,
            Fact::new("涉及金额", format!("{} 元", yuan(l.amount_fen))),
            Fact::new("状态", state_zh(&l.state)).testid("lead-state"),
            Fact::new("依据", &l.evidence),
        ],
        to_ledger: judge,
        actions,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(id: i64, rule: &str, state: &str) -> LeadRow {
        LeadRow {
            id,
            run_id: 3,
            rule: rule.into(),
            subject: "P0001".into(),
            fixmedins_code: "H62042200001".into(),
            claims: vec!["S1".into(), "S2".into()],
            evidence: "2018-03-10 出院后 5 天再次入院".into(),
            amount_fen: 400_000,
            state: state.into(),
            updated_at: String::new(),
            admdvs: "620422".into(),
        }
    }

    fn run() -> AuditRun {
        AuditRun {
            id: 3,
            year: 2018,
            params: include_str!("../../../../data/audit/rules.toml").into(),
            claims: 120,
            leads: 3,
            run_by: "bureau1".into(),
            run_at: String::new(),
            region_code: "620422".into(),
        }
    }

    #[test]
    fn the_audit_view_counts_leads_by_state_and_states_the_parameters_in_words() {
        let leads = [lead(1, "split_stay", "open"), lead(2, "split_stay", "confirmed"), lead(3, "repeated_stays", "disputed")];
        let v = audit_view(Some(&run()), &leads, 2, Some("split_stay"), Some(2018));
        let r = v.run.as_ref().unwrap();
        let cards: Vec<(&str, &str, &str)> = r.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect();
        assert_eq!(
            cards,
            [
                ("疑点线索", "3 条", "2018 年，审核 #3，结算 120 条"),
                ("待核查", "1 条", ""),
                ("已确认违规", "1 条", "已排除 0 条"),
                ("医院申诉中", "1 条", ""),
            ]
        );
        assert!(r.params.iter().any(|p| p.starts_with("分解住院：同一人在同一医院出院后")), "{:?}", r.params);
        assert!(r.params.iter().all(|p| !p.contains("split_days")), "{:?}", r.params);
        assert_eq!((r.rule.as_str(), r.all_href.as_str(), r.truncated), (rule_zh("split_stay"), "/web/audit?run=3", false));
        assert_eq!(v.run_year, Some(2018));
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"params\"") && html.contains("data-testid=\"audit-run\""), "{html}");
        let mut broken = run();
        broken.params = "split_days = \"x\"".into();
        assert_eq!(audit_view(Some(&broken), &[], 0, None, None).run.unwrap().params, ["（本次审核的参数记录无法读取）"]);
        let none = audit_view(None, &[], 0, None, None).render().unwrap();
        assert!(none.contains("还没有运行过审核") && !none.contains("<form"), "{none}");
        assert!(audit_view(Some(&run()), &leads, SHOWN_ROWS + 1, None, None).run.unwrap().truncated);
    }

    #[test]
    fn a_lead_names_its_hospital_and_offers_each_role_its_actions() {
        let l = lead(9, "split_stay", "open");
        let v = lead_view(&l, Some("会宁县人民医院"), false, true);
        let fact =
            |v: &LeadView, label: &str| v.facts.iter().find(|f| f.label == label).map(|f| (f.value.clone(), f.title.clone())).unwrap();
        assert_eq!(fact(&v, "医疗机构"), ("会宁县人民医院".to_string(), "医疗机构编码 H62042200001".to_string()));
        assert_eq!(fact(&v, "涉及金额").0, "4,000.00 元");
        assert_eq!(fact(&v, "状态").0, "待核查");
        assert_eq!(v.actions.iter().map(|a| a.1).collect::<Vec<_>>(), ["确认违规", "排除", "重新核查"]);
        assert!(v.to_ledger);
        let v = lead_view(&l, None, true, false);
        assert_eq!(fact(&v, "医疗机构").0, "H62042200001");
        assert_eq!(v.actions, [("dispute", "申诉")]);
        assert!(!v.to_ledger, "a hospital does not put its own lead on the ledger");
        let html = v.render().unwrap();
        assert!(html.contains("<button name=\"action\" value=\"dispute\">申诉</button>") && !html.contains("to-ledger"), "{html}");
    }
}
