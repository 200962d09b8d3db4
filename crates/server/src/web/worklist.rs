//! Worklists (比对结果): the latest reconciliation's findings in the user's region, per village, with
//! the action each calls for. A cadre (or the bureau) marks an item done; the mark records who and
//! when; the next reconciliation confirms it (the finding is gone) or reopens it (still there).

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::indicators::{Mark, MarkError, MarkState, WorklistItem};
use baozhang_store::reconcile::{class_info, ReconcileParams, CLASSES};
use serde::Deserialize;

use super::table::{Cell, InlineForm, Input, Part, Table};
use askama::Template;
use super::{esc, fragment, fragment_error, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct WorklistQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    export: Option<String>,
    /// `unknown`: only the findings of people whose village is unknown (村不详), counted in the county.
    #[serde(default)]
    village: Option<String>,
}

fn may_mark(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Cadre | Role::Bureau | Role::Admin)
}

fn mark_cell(item_id: i64, mark: Option<&Mark>, can: bool) -> Vec<Part> {
    match mark {
        Some(m) if m.state == MarkState::Pending => {
            let mut parts = vec![Part::tag("done", format!("已处理，待比对确认（{} {}）", m.marked_by, m.marked_at))];
            if can {
                parts.push(Part::form(
                    InlineForm::htmx("/web/worklist/undo", "closest td", "撤销").hidden("mark_id", m.id).button_class("small secondary"),
                ));
            }
            parts
        }
        Some(m) => vec![Part::tag("", format!("{}（{} {}）", m.state.name_zh(), m.marked_by, m.marked_at))],
        None if can => vec![
            Part::text("待处理"),
            Part::form(
                InlineForm::htmx("/web/worklist/mark", "closest td", "标记已处理")
                    .hidden("finding_id", item_id)
                    .button_class("small")
                    .testid(format!("mark-{item_id}")),
            ),
        ],
        None => vec![Part::tag("new", "待处理")],
    }
}

/// The 处理情况 cell as a fragment (the answer to 标记 and 撤销, swapped into the cell).
fn mark_fragment(item_id: i64, mark: Option<&Mark>, can: bool) -> Result<String, WebError> {
    #[derive(Template)]
    #[template(source = "{% import \"parts.html\" as parts %}{% call parts::parts(p) %}", ext = "html")]
    struct Frag<'a> {
        p: &'a [Part],
    }
    Frag { p: &mark_cell(item_id, mark, can) }.render().map_err(|e| WebError::internal(&format!("mark cell: {e}")))
}

pub async fn worklist_page(State(state): State<AppState>, u: WebUser, Query(q): Query<WorklistQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let names = state.web.region_names(&state.store).await?;
    let Some(run) = state.store.latest_run().await? else {
        let mut p = Page::new("比对结果");
        p.push("<div class=\"alert\">尚未进行参保比对：名单导入后，医保局工作人员可在此发起比对。</div>");
        return Ok(p.render(&u));
    };
    let runs = state.store.reconcile_runs(2).await?;
    let items: Vec<WorklistItem> = state.store.findings_with_marks(run, Some(&region)).await?;
    let class = q.class.as_deref().filter(|c| class_info(c).is_some());
    let state_filter = q.state.as_deref().filter(|s| !s.is_empty());
    let unknown_only = q.village.as_deref() == Some("unknown");
    let can = may_mark(&u);
    // The rectification ledger's managers turn a finding into a ledger item in one step.
    let to_ledger = matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor);
    let mut by_class = vec![0i64; CLASSES.len()];
    let mut t =
        Table::new("worklist", "工作清单", vec!["问题类别", "应采取措施", "村", "户编号", "姓名", "证件号码", "说明", "本次", "处理情况"]);
    t.page_size = 25;
    t.empty = "没有需要处理的问题";
    let pid = state.web.pid_key(&state.store).await?;
    for it in &items {
        let f = &it.finding;
        if let Some(k) = CLASSES.iter().position(|c| c.0 == f.class) {
            by_class[k] += 1;
        }
        if class.is_some_and(|c| c != f.class) || (unknown_only && f.village_code.is_some()) {
            continue;
        }
        let pending = it.mark.as_ref().is_some_and(|m| m.state == MarkState::Pending);
        match state_filter {
            Some("open") if pending => continue,
            Some("done") if !pending => continue,
            _ => {}
        }
        let (_, cname, action) = class_info(&f.class).unwrap_or(("", "", ""));
        let village = match f.village_code.as_deref() {
            Some(v) => names.get(v).cloned().unwrap_or_else(|| v.to_string()),
            None => super::dashboard::UNKNOWN_VILLAGE.to_string(),
        };
        let mut parts = mark_cell(it.finding_id, it.mark.as_ref(), can);
        if to_ledger {
            parts.push(Part::form(
                InlineForm::post(format!("/web/rectify/from-finding/{}", it.finding_id), "转整改").button_class("small"),
            ));
        }
        let novelty = match (&it.reopened, f.is_new) {
            (Some(m), _) => format!("重新打开（{} 曾于 {} 标记已处理）", m.marked_by, m.marked_at),
            (None, true) => "新增".into(),
            (None, false) => "持续".into(),
        };
        t.rows.push(vec![
            Cell::text(cname),
            Cell::text(action),
            Cell::text(village),
            Cell::text(f.household_no.clone().unwrap_or_default()),
            Cell::Link(mask_name(&f.name), super::person::person_href(&pid, &f.id_no)),
            Cell::text(mask_id(&f.id_no)),
            Cell::text(baozhang_core::money::yuan_in_text(f.detail.as_deref().unwrap_or_default())),
            Cell::text(novelty),
            Cell::Parts(parts),
        ]);
    }
    let mut summary = Table::new("classes", "按问题类别", vec!["问题类别", "人数", "应采取措施"]);
    for (k, (id, name, action)) in CLASSES.iter().enumerate() {
        if by_class[k] > 0 {
            summary.rows.push(vec![
                Cell::Link(name.to_string(), format!("/web/worklist?region={region}&class={id}")),
                Cell::Int(by_class[k]),
                Cell::text(*action),
            ]);
        }
    }
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t, &summary], id).await;
    }
    let region_name = names.get(&region).cloned().unwrap_or_else(|| if region.is_empty() { "全部".into() } else { region.clone() });
    let mut page = Page::new(format!("比对工作清单 · {region_name}"));
    if !region.is_empty() {
        page.crumbs = super::dashboard::crumbs_for(&state, &u, &region).await?;
    }
    let (as_of, started) = runs.first().map(|r| (r.1, r.2.clone())).unwrap_or_default();
    page.push(&format!(
        "<p class=\"muted\">第 {run} 次比对（数据截至 {}，{} 运行）。标记“已处理”后，下一次比对会自动确认（问题已消除）或重新打开（问题仍在）。</p>",
        super::date_text(as_of),
        esc(&started)
    ));
    let mut filters = format!(
        "<form class=\"inline\" method=\"get\" action=\"/web/worklist\"><input type=\"hidden\" name=\"region\" value=\"{}\">",
        esc(&region)
    );
    if unknown_only {
        filters.push_str("<input type=\"hidden\" name=\"village\" value=\"unknown\"><span class=\"tag\">仅村不详人员</span>");
    }
    filters.push_str("<label>问题类别<select name=\"class\"><option value=\"\">全部</option>");
    for (id, name, _) in CLASSES {
        filters.push_str(&format!("<option value=\"{id}\"{}>{name}</option>", if class == Some(id) { " selected" } else { "" }));
    }
    filters.push_str("</select></label><label>处理情况<select name=\"state\">");
    for (v, n) in [("", "全部"), ("open", "待处理"), ("done", "已处理待确认")] {
        filters.push_str(&format!("<option value=\"{v}\"{}>{n}</option>", if state_filter.unwrap_or("") == v { " selected" } else { "" }));
    }
    filters.push_str("</select></label><button>筛选</button></form>");
    page.push(&filters);
    if matches!(u.p.role, Role::Admin | Role::Bureau) {
        page.push(
            "<form method=\"post\" action=\"/web/worklist/reconcile\" class=\"inline\" data-confirm=\"按上次比对的截止日期重新比对全部名单？\">\
             <button class=\"secondary\" type=\"submit\">立即重新比对</button></form>",
        );
    }
    let path = u.path.clone();
    page.push(&summary.html(&path)).push(&t.html(&path));
    Ok(page.render(&u))
}

/// Finds a finding of the latest run inside the user's region.
async fn finding_in_scope(state: &AppState, u: &WebUser, finding_id: i64) -> Result<WorklistItem, WebError> {
    let region = u.region()?;
    let run = state.store.latest_run().await?.ok_or_else(|| WebError::not_found("尚未进行参保比对"))?;
    state
        .store
        .findings_with_marks(run, Some(region))
        .await?
        .into_iter()
        .find(|i| i.finding_id == finding_id)
        .ok_or_else(|| WebError::not_found("该问题不在最新一次比对结果中，或不在您的管辖范围内"))
}

fn mark_error(e: MarkError) -> String {
    match e {
        MarkError::Store(s) => {
            tracing::error!(error = %s, "marking a finding failed");
            "系统暂时无法处理，请稍后重试".into()
        }
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
pub struct MarkForm {
    finding_id: i64,
    #[serde(default)]
    note: Option<String>,
}

pub async fn mark(State(state): State<AppState>, u: WebUser, Form(f): Form<MarkForm>) -> Response {
    if !may_mark(&u) {
        return fragment_error(&format!("{}不能标记处理情况", u.p.role.name_zh()));
    }
    if let Err(e) = finding_in_scope(&state, &u, f.finding_id).await {
        return fragment_error(&e.message);
    }
    let note = f.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    match state.store.mark_finding_done(f.finding_id, &u.p.username, note).await {
        Ok(m) => mark_fragment(f.finding_id, Some(&m), true).map_or_else(|e| fragment_error(&e.message), fragment),
        Err(e) => fragment_error(&mark_error(e)),
    }
}

#[derive(Deserialize)]
pub struct UndoForm {
    mark_id: i64,
}

pub async fn undo(State(state): State<AppState>, u: WebUser, Form(f): Form<UndoForm>) -> Response {
    if !may_mark(&u) {
        return fragment_error(&format!("{}不能撤销处理标记", u.p.role.name_zh()));
    }
    let m = match state.store.mark(f.mark_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return fragment_error("处理标记不存在"),
        Err(e) => return fragment_error(&WebError::from(e).message),
    };
    if !u.p.covers(m.village_code.as_deref()) {
        return fragment_error("该标记不在您的管辖范围内");
    }
    match state.store.undo_mark(f.mark_id, &u.p.username).await {
        Ok(_) => mark_fragment(m.finding_id, None, true).map_or_else(|e| fragment_error(&e.message), fragment),
        Err(e) => fragment_error(&mark_error(e)),
    }
}

/// Runs a reconciliation now, as of the previous run's date (bureau and administrators).
pub async fn reconcile_now(State(state): State<AppState>, u: WebUser) -> WebResult {
    if !matches!(u.p.role, Role::Admin | Role::Bureau) {
        return Err(WebError::forbidden("只有医保局工作人员可以发起比对"));
    }
    // A reconciliation runs over the whole registry: only a user whose region covers all of it may start one.
    let own = u.region()?;
    if state.store.anyone_outside(own).await? {
        return Err(WebError::forbidden(format!("名单中有您的范围（{own}）以外的人员，全库比对须由上级医保部门或系统管理员发起")));
    }
    let as_of = state.store.reconcile_runs(1).await?.first().and_then(|r| baozhang_store::num_date(r.1));
    // The subsidies per class are the policy's of the user's region for the year of the date.
    let day = as_of.unwrap_or_else(crate::clock::today);
    let subsidy_by_class = state.policies.for_area(own, day).map(|p| p.subsidy_classes(day.year())).unwrap_or_default();
    let summary =
        state.store.reconcile(&ReconcileParams { as_of, new_window_days: 90, subsidy_standard_fen: None, subsidy_by_class }).await?;
    state.store.audit(&u.p.username, "web.reconcile", &format!("run {}", summary.run_id)).await?;
    state.web.dashboard.invalidate();
    let mut page = Page::new("比对完成");
    page.push(&format!(
        "<div class=\"alert ok\" role=\"status\">第 {} 次比对完成：发现问题 {} 条，其中新增 {} 条，已消除 {} 条。</div><p><a class=\"btn\" href=\"/web/worklist\">查看工作清单</a></p>",
        summary.run_id, summary.findings, summary.new_findings, summary.resolved
    ));
    Ok(page.render(&u))
}
