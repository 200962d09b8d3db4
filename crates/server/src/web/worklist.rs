//! Worklists (比对结果): the latest reconciliation's findings in the user's region, per village, with
//! the action each calls for. A cadre (or the bureau) marks an item done; the mark records who and
//! when; the next reconciliation confirms it (the finding is gone) or reopens it (still there).

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Form;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::indicators::{Mark, MarkError, MarkState, WorklistItem};
use baozhang_store::reconcile::{class_info, CLASSES};
use serde::Deserialize;

use std::collections::HashMap;

use askama::Template;

use super::pid::PidKey;
use super::table::{Cell, InlineForm, Input, Part, Table};
use super::{fragment, fragment_error, urlencode, Page, WebError, WebResult, WebUser};
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
            let mut parts =
                vec![Part::tag("done", format!("已处理，待比对确认（{} {}）", m.marked_by, crate::clock::beijing_minute(&m.marked_at)))];
            if can {
                parts.push(Part::form(
                    InlineForm::htmx("/web/worklist/undo", "closest td", "撤销").hidden("mark_id", m.id).button_class("small secondary"),
                ));
            }
            parts
        }
        Some(m) => vec![Part::tag("", format!("{}（{} {}）", m.state.name_zh(), m.marked_by, crate::clock::beijing_minute(&m.marked_at)))],
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

/// The worklist's filters, as asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filters<'a> {
    /// A problem class (`class_info` knows it).
    pub class: Option<&'a str>,
    /// `open` or `done`.
    pub state: Option<&'a str>,
    /// Only the findings of people whose village is unknown.
    pub unknown_only: bool,
}

/// The worklist (the findings shown, masked, with the action each calls for) and the count per class
/// (of all the region's findings). `can`: the user may mark; `to_ledger`: may turn a finding into a
/// rectification item.
pub fn worklist_tables(
    items: &[WorklistItem],
    names: &HashMap<String, String>,
    pid: &PidKey,
    f: Filters<'_>,
    region: &str,
    can: bool,
    to_ledger: bool,
) -> (Table, Table) {
    let mut by_class = vec![0i64; CLASSES.len()];
    let mut t =
        Table::new("worklist", "工作清单", vec!["问题类别", "应采取措施", "村", "户编号", "姓名", "证件号码", "说明", "本次", "处理情况"]);
    t.page_size = 25;
    t.empty = "没有需要处理的问题";
    for it in items {
        let fd = &it.finding;
        if let Some(k) = CLASSES.iter().position(|c| c.0 == fd.class) {
            by_class[k] += 1;
        }
        if f.class.is_some_and(|c| c != fd.class) || (f.unknown_only && fd.village_code.is_some()) {
            continue;
        }
        let pending = it.mark.as_ref().is_some_and(|m| m.state == MarkState::Pending);
        match f.state {
            Some("open") if pending => continue,
            Some("done") if !pending => continue,
            _ => {}
        }
        let (_, cname, action) = class_info(&fd.class).unwrap_or(("", "", ""));
        let village = match fd.village_code.as_deref() {
            Some(v) => names.get(v).cloned().unwrap_or_else(|| v.to_string()),
            None => super::dashboard::UNKNOWN_VILLAGE.to_string(),
        };
        let mut parts = mark_cell(it.finding_id, it.mark.as_ref(), can);
        if to_ledger {
            parts
                .push(Part::form(InlineForm::post(format!("/web/rectify/from-finding/{}", it.finding_id), "转整改").button_class("small")));
        }
        let novelty = match (&it.reopened, fd.is_new) {
            (Some(m), _) => format!("重新打开（{} 曾于 {} 标记已处理）", m.marked_by, crate::clock::beijing_minute(&m.marked_at)),
            (None, true) => "新增".into(),
            (None, false) => "持续".into(),
        };
        t.rows.push(vec![
            Cell::text(cname),
            Cell::text(action),
            Cell::text(village),
            Cell::text(fd.household_no.clone().unwrap_or_default()),
            Cell::Link(mask_name(&fd.name), super::person::person_href(pid, &fd.id_no)),
            Cell::text(mask_id(&fd.id_no)),
            Cell::text(baozhang_core::money::yuan_in_text(fd.detail.as_deref().unwrap_or_default())),
            Cell::text(novelty),
            Cell::Parts(parts),
        ]);
    }
    let mut summary = Table::new("classes", "按问题类别", vec!["问题类别", "人数", "应采取措施"]);
    for (k, (id, name, action)) in CLASSES.iter().enumerate() {
        if by_class[k] > 0 {
            summary.rows.push(vec![
                Cell::Link(name.to_string(), format!("/web/worklist?region={}&class={id}", urlencode(region))),
                Cell::Int(by_class[k]),
                Cell::text(*action),
            ]);
        }
    }
    (t, summary)
}

/// The worklist's head (`templates/worklist.html`): which reconciliation, the filters, and the button
/// that runs one again; or, before the first, what to do.
#[derive(Template, Debug, Default)]
#[template(path = "worklist.html")]
pub struct WorklistView {
    /// 第 3 次比对（数据截至 2018-12-31，2019-01-02 10:00 运行）; None: no reconciliation yet.
    pub run: Option<String>,
    pub region: String,
    pub unknown_only: bool,
    /// (id, name) of the problem classes.
    pub classes: Vec<(&'static str, &'static str)>,
    pub class: String,
    /// (value, name) of the states.
    pub states: Vec<(&'static str, &'static str)>,
    pub state: String,
    pub may_reconcile: bool,
}

/// The worklist's head for the reconciliation `run` (as of the date `as_of`, yyyymmdd, run at `started`).
pub fn worklist_view(run: i64, as_of: i64, started: &str, region: &str, f: Filters<'_>, may_reconcile: bool) -> WorklistView {
    WorklistView {
        run: Some(format!("第 {run} 次比对（数据截至 {}，{started} 运行）", super::date_text(as_of))),
        region: region.to_string(),
        unknown_only: f.unknown_only,
        classes: CLASSES.iter().map(|(id, name, _)| (*id, *name)).collect(),
        class: f.class.unwrap_or("").to_string(),
        states: vec![("", "全部"), ("open", "待处理"), ("done", "已处理待确认")],
        state: f.state.unwrap_or("").to_string(),
        may_reconcile,
    }
}

pub async fn worklist_page(State(state): State<AppState>, u: WebUser, Query(q): Query<WorklistQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let names = state.web.region_names(&state.store).await?;
    let Some(run) = state.store.latest_run().await? else {
        let mut p = Page::new("比对结果");
        p.view(&WorklistView::default())?;
        return Ok(p.render(&u));
    };
    let runs = state.store.reconcile_runs(2).await?;
    let items: Vec<WorklistItem> = state.store.findings_with_marks(run, Some(&region)).await?;
    let filters = Filters {
        class: q.class.as_deref().filter(|c| class_info(c).is_some()),
        state: q.state.as_deref().filter(|s| !s.is_empty()),
        unknown_only: q.village.as_deref() == Some("unknown"),
    };
    // The rectification ledger's managers turn a finding into a ledger item in one step.
    let to_ledger = matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor);
    let pid = state.web.pid_key(&state.store).await?;
    let (t, summary) = worklist_tables(&items, &names, &pid, filters, &region, may_mark(&u), to_ledger);
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t, &summary], id).await;
    }
    let region_name = names.get(&region).cloned().unwrap_or_else(|| if region.is_empty() { "全部".into() } else { region.clone() });
    let mut page = Page::new(format!("比对工作清单 · {region_name}"));
    if !region.is_empty() {
        page.crumbs = super::dashboard::crumbs_for(&state, &u, &region).await?;
    }
    let (as_of, started) = runs.first().map(|r| (r.1, r.2.clone())).unwrap_or_default();
    // 立即重新比对 is offered only to whom it would be allowed: a bureau or administrator whose region
    // covers everyone in the registry (the action checks the enrolments as well).
    let may_reconcile = matches!(u.p.role, Role::Admin | Role::Bureau) && !state.store.persons_outside(u.region()?).await?;
    let view = worklist_view(run, as_of, &started, &region, filters, may_reconcile);
    page.view(&view)?;
    page.tables(&u, &[&summary, &t]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_store::reconcile::Finding;

    fn item(id: i64, class: &str, village: Option<&str>, mark: Option<Mark>) -> WorklistItem {
        WorklistItem {
            finding_id: id,
            finding: Finding {
                class: class.into(),
                id_no: "62042219800101123X".into(),
                name: "张小明".into(),
                village_code: village.map(str::to_string),
                household_no: Some("H1".into()),
                detail: None,
                is_new: true,
            },
            mark,
            reopened: None,
        }
    }

    fn pending(id: i64) -> Mark {
        Mark {
            id: 70,
            finding_id: id,
            class: "poor_not_insured".into(),
            id_no: "62042219800101123X".into(),
            name: "张小明".into(),
            village_code: Some("620422100201".into()),
            household_no: None,
            marked_run: 1,
            marked_by: "cadre_a".into(),
            marked_at: "2018-12-31 10:00".into(),
            note: None,
            state: MarkState::Pending,
            resolved_run: None,
            resolved_at: None,
            undone_by: None,
            undone_at: None,
        }
    }

    fn key() -> PidKey {
        PidKey::from_hex(&"ab".repeat(32)).expect("key")
    }

    #[test]
    fn findings_are_masked_link_by_key_and_filter_by_state() {
        let names: HashMap<String, String> = [("620422100201".to_string(), "东关村".to_string())].into_iter().collect();
        let items = vec![
            item(1, "poor_not_insured", Some("620422100201"), None),
            item(2, "poor_not_insured", None, Some(pending(2))),
            item(3, "dead_still_counted", Some("620422100201"), None),
        ];
        let (t, summary) = worklist_tables(&items, &names, &key(), Filters::default(), "620422", true, false);
        assert_eq!(t.rows.len(), 3);
        let row = &t.rows[0];
        assert_eq!(row[0].shown_text(), "贫困人口未参保");
        assert_eq!(row[2].shown_text(), "东关村");
        let Cell::Link(name, href) = &row[4] else { panic!("name link") };
        assert_eq!(name, "张**");
        assert!(href.starts_with("/web/person/") && !href.contains("62042219800101123X"), "{href}");
        assert_eq!(row[5].shown_text(), "620422********123X");
        assert_eq!(row[7].shown_text(), "新增");
        assert_eq!(t.rows[1][2].shown_text(), "村不详");
        assert!(t.rows[1][8].shown_text().starts_with("已处理，待比对确认（cadre_a"));
        assert_eq!(summary.rows.len(), 2);
        assert!(
            matches!(&summary.rows[0][0], Cell::Link(n, h) if n == "贫困人口未参保" && h == "/web/worklist?region=620422&class=poor_not_insured")
        );
        assert_eq!(summary.rows[0][1].shown_text(), "2");

        let open = Filters { state: Some("open"), ..Filters::default() };
        let (t, summary) = worklist_tables(&items, &names, &key(), open, "620422", true, false);
        assert_eq!(t.rows.len(), 2, "the pending one is left out");
        assert_eq!(summary.rows[0][1].shown_text(), "2", "the counts are of all the findings");
        let unknown = Filters { unknown_only: true, ..Filters::default() };
        assert_eq!(worklist_tables(&items, &names, &key(), unknown, "620422", true, false).0.rows.len(), 1);
        let class = Filters { class: Some("dead_still_counted"), ..Filters::default() };
        assert_eq!(worklist_tables(&items, &names, &key(), class, "620422", true, false).0.rows.len(), 1);
    }

    #[test]
    fn only_markers_are_offered_the_buttons() {
        let cell = mark_cell(5, None, true);
        assert!(matches!(&cell[1], Part::Form(f) if f.testid.as_deref() == Some("mark-5") && f.target.as_deref() == Some("closest td")));
        assert_eq!(mark_cell(5, None, false), vec![Part::tag("new", "待处理")]);
        let undo = mark_cell(5, Some(&pending(5)), true);
        assert!(matches!(&undo[1], Part::Form(f) if f.action == "/web/worklist/undo"));
        assert_eq!(mark_cell(5, Some(&pending(5)), false).len(), 1);
    }

    #[test]
    fn the_head_says_which_reconciliation_and_keeps_the_filters() {
        let f = Filters { class: Some("poor_not_insured"), state: Some("done"), unknown_only: true };
        let v = worklist_view(3, 20181231, "2019-01-02 10:00", "620422", f, false);
        assert_eq!(v.run.as_deref(), Some("第 3 次比对（数据截至 2018-12-31，2019-01-02 10:00 运行）"));
        assert_eq!((v.class.as_str(), v.state.as_str(), v.unknown_only, v.may_reconcile), ("poor_not_insured", "done", true, false));
        assert_eq!(v.classes.len(), CLASSES.len());
        assert!(WorklistView::default().run.is_none(), "before the first reconciliation");
    }
}
