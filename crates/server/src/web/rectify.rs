//! 整改台账 (R-SUP-2): problems with their source, place, responsible unit and person, deadline and
//! measures; overdue items listed and counted; closing (销号) in two steps by two people: one requests it
//! with the evidence, another user (a manager whose scope covers the item) reviews it in their own
//! session and approves or returns it; every step on the item's trail. Audit leads and reconciliation findings become items
//! in one step (one item per lead or finding).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::Date;
use baozhang_ingest::worklist::mask_id;
use baozhang_store::date_num;
use baozhang_store::oversight::{CloseError, Rectification, RECT_SOURCES};
use serde::Deserialize;

use super::table::{Cell, Table};
use super::{card, esc, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct RectQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

fn today() -> i64 {
    date_num(crate::clock::today())
}

fn deadline_in(days: i32) -> i64 {
    date_num(crate::clock::today().add_days(days))
}

pub async fn ledger_page(State(state): State<AppState>, u: WebUser, Query(q): Query<RectQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let names = state.web.region_names(&state.store).await?;
    let items = state.store.rectifications(&region).await?;
    let now = today();
    let which = q.state.as_deref().unwrap_or("");
    let shown: Vec<&Rectification> = items
        .iter()
        .filter(|r| match which {
            "open" => r.status != "closed",
            "review" => r.in_review(),
            "overdue" => r.overdue(now),
            "closed" => r.status == "closed",
            _ => true,
        })
        .collect();
    let mut t = Table::new(
        "items",
        "整改台账",
        vec!["编号", "问题", "来源", "区划", "对象", "责任单位", "责任人", "整改期限", "状态", "整改措施", "销号日期"],
    );
    t.empty = "没有整改事项";
    t.page_size = 25;
    for r in &shown {
        let status = if r.overdue(now) {
            let text = if r.in_review() { "逾期未销号（待复核）" } else { "逾期未销号" };
            Cell::tag("new", text)
        } else {
            Cell::text(status_name(r))
        };
        t.rows.push(vec![
            Cell::Link(r.id.to_string(), format!("/web/rectify/{}", r.id)),
            Cell::text(&r.problem),
            Cell::text(&r.source),
            Cell::text(names.get(&r.region_code).cloned().unwrap_or_else(|| r.region_code.clone())),
            Cell::text(&r.subject),
            Cell::text(&r.responsible_unit),
            Cell::text(&r.responsible_person),
            Cell::text(super::date_text(r.deadline)),
            status,
            Cell::text(&r.measures),
            Cell::text(r.closed_at.get(..10).unwrap_or("")),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let open = items.iter().filter(|r| r.status != "closed").count();
    let review = items.iter().filter(|r| r.in_review()).count();
    let overdue = items.iter().filter(|r| r.overdue(now)).count();
    let closed: Vec<_> = items.iter().filter(|r| r.status == "closed").collect();
    let on_time =
        closed.iter().filter(|r| r.closed_at.get(..10).is_some_and(|d| Date::parse(d).is_ok_and(|d| date_num(d) <= r.deadline))).count();
    let mut page = Page::new(format!("整改台账 · {}", names.get(&region).cloned().unwrap_or_else(|| region.clone())));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &region).await?;
    page.crumbs.push(("整改台账".into(), String::new()));
    let link = |s: &str| format!("/web/rectify?region={region}&state={s}");
    page.push(&format!(
        "<div class=\"cards\" data-testid=\"rect-cards\">{}{}{}</div><p class=\"noprint\"><a href=\"{}\">全部</a> · <a href=\"{}\">整改中</a> · <a href=\"{}\">待复核</a> · <a href=\"{}\" data-testid=\"overdue-link\">逾期</a> · <a href=\"{}\">已销号</a></p>",
        card("整改中", &format!("{open} 项"), &format!("共 {} 项，其中待复核销号 {review} 项", items.len())),
        card("逾期未销号", &format!("{overdue} 项"), &format!("截至 {}", crate::clock::today())),
        card("已销号", &format!("{} 项", closed.len()), &format!("按期销号 {on_time} 项")),
        link(""),
        link("open"),
        link("review"),
        link("overdue"),
        link("closed"),
    ));
    page.push(&t.html(&u.path));
    if may_manage(&u) {
        let sources: String = RECT_SOURCES.iter().map(|s| format!("<option>{s}</option>")).collect();
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>登记整改事项</h2><form method=\"post\" action=\"/web/rectify\" class=\"grid-form\" data-testid=\"rect-form\">\
             <label>问题<input name=\"problem\" required></label><label>来源<select name=\"source\">{sources}</select></label>\
             <label>区划代码<input name=\"region\" value=\"{}\" required></label><label>对象（户、人或单位）<input name=\"subject\"></label>\
             <label>责任单位<input name=\"unit\" required></label><label>责任人<input name=\"person\" required></label>\
             <label>整改期限<input type=\"date\" name=\"deadline\" required value=\"{}\"></label><label>整改措施<input name=\"measures\" required></label>\
             <div class=\"actions\"><button type=\"submit\">登记</button></div></form></section>",
            esc(&region),
            super::date_text(deadline_in(30))
        ));
    }
    Ok(page.render(&u))
}

/// An item's status in words.
fn status_name(r: &Rectification) -> &'static str {
    match r.status.as_str() {
        "open" => "整改中",
        "review" => "已申请销号，待复核",
        _ => "已销号",
    }
}

fn text(s: &str, field: &str, required: bool, max: usize) -> Result<String, WebError> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(WebError::bad(format!("请填写{field}")));
    }
    if s.chars().count() > max {
        return Err(WebError::bad(format!("{field}不超过 {max} 字")));
    }
    Ok(s.to_string())
}

#[derive(Deserialize)]
pub struct NewForm {
    problem: String,
    source: String,
    region: String,
    #[serde(default)]
    subject: String,
    unit: String,
    person: String,
    deadline: String,
    measures: String,
}

pub async fn create(State(state): State<AppState>, u: WebUser, Form(f): Form<NewForm>) -> WebResult {
    if !may_manage(&u) {
        return Err(WebError::forbidden(format!("{}不能登记整改事项", u.p.role.name_zh())));
    }
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    if !RECT_SOURCES.contains(&f.source.trim()) {
        return Err(WebError::bad(format!("来源“{}”无效", f.source)));
    }
    let deadline = Date::parse(f.deadline.trim()).map_err(|e| WebError::bad(format!("整改期限无效：{e}")))?;
    let r = Rectification {
        problem: text(&f.problem, "问题", true, 500)?,
        source: f.source.trim().to_string(),
        region_code: region,
        subject: text(&f.subject, "对象", false, 100)?,
        responsible_unit: text(&f.unit, "责任单位", true, 100)?,
        responsible_person: text(&f.person, "责任人", true, 50)?,
        deadline: date_num(deadline),
        measures: text(&f.measures, "整改措施", true, 500)?,
        ..Default::default()
    };
    let id = state.store.add_rectification(&r, &u.p.username).await?.ok_or_else(|| WebError::bad("该事项已登记"))?;
    Ok(Redirect::to(&format!("/web/rectify/{id}")).into_response())
}

async fn item_in_scope(state: &AppState, u: &WebUser, id: i64) -> Result<Rectification, WebError> {
    let own = u.region()?;
    let r = state.store.rectification(id).await?.ok_or_else(|| WebError::not_found("没有这个整改事项"))?;
    if !r.region_code.starts_with(own) {
        return Err(WebError::not_found("没有这个整改事项"));
    }
    Ok(r)
}

pub async fn item_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>) -> WebResult {
    let r = item_in_scope(&state, &u, id).await?;
    let events = state.store.rectification_events(id).await?;
    let mut et = Table::new("trail", "处理记录", vec!["时间", "操作人", "操作", "内容"]);
    for (at, actor, action, note) in &events {
        let action = match action.as_str() {
            "create" => "登记",
            "update" => "更新整改措施",
            "close_request" => "申请销号",
            "close_return" => "复核退回",
            "close" => "复核通过，销号",
            other => other,
        };
        et.rows.push(vec![
            Cell::text(at.get(..16).unwrap_or(at).replace('T', " ")),
            Cell::text(actor),
            Cell::text(action),
            Cell::text(note),
        ]);
    }
    let status = if r.overdue(today()) && !r.in_review() { "逾期未销号" } else { status_name(&r) };
    let mut page = Page::new(format!("整改事项 #{id}"));
    page.crumbs.push(("整改台账".into(), format!("/web/rectify?region={}", r.region_code)));
    page.crumbs.push((format!("#{id}"), String::new()));
    page.push(&format!(
        "<dl class=\"facts\"><dt>问题</dt><dd>{}</dd><dt>来源</dt><dd>{}</dd><dt>对象</dt><dd>{}</dd><dt>责任单位</dt><dd>{}</dd><dt>责任人</dt><dd>{}</dd>\
         <dt>整改期限</dt><dd>{}</dd><dt>状态</dt><dd data-testid=\"rect-status\">{status}</dd><dt>整改措施</dt><dd>{}</dd>{}</dl>",
        esc(&r.problem),
        esc(&r.source),
        esc(&r.subject),
        esc(&r.responsible_unit),
        esc(&r.responsible_person),
        super::date_text(r.deadline),
        esc(&r.measures),
        match r.status.as_str() {
            "closed" => format!(
                "<dt>佐证</dt><dd>{}</dd><dt>销号申请人</dt><dd>{}</dd><dt>复核人</dt><dd>{}</dd>",
                esc(&r.evidence),
                esc(&r.closed_by),
                esc(&r.reviewer)
            ),
            "review" => format!("<dt>佐证</dt><dd>{}</dd><dt>销号申请人</dt><dd>{}</dd>", esc(&r.evidence), esc(&r.closed_by)),
            _ => String::new(),
        }
    ));
    page.push(&et.html(&u.path));
    if r.status == "open" && (may_manage(&u) || u.p.role == Role::Cadre) {
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>更新整改措施</h2><form method=\"post\" action=\"/web/rectify/{id}/update\" class=\"grid-form\">\
             <label>整改措施与进展<input name=\"measures\" value=\"{}\" required></label><div class=\"actions\"><button>保存</button></div></form></section>",
            esc(&r.measures)
        ));
    }
    if r.status == "open" && may_manage(&u) {
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>申请销号</h2><p class=\"muted\">销号实行双人复核：提交后，须由另一位有权限的工作人员登录本系统复核通过，事项才销号。</p>\
             <form method=\"post\" action=\"/web/rectify/{id}/close\" class=\"grid-form\" data-testid=\"close-form\">\
             <label>整改佐证（材料名称、文号、照片编号等）<input name=\"evidence\" required></label>\
             <div class=\"actions\"><button>申请销号</button></div></form></section>"
        ));
    }
    if r.in_review() && may_manage(&u) {
        if r.closed_by == u.p.username {
            page.push("<div class=\"alert\" role=\"status\" data-testid=\"review-wait\">您已申请销号，须由另一位工作人员复核；本人不能复核。</div>");
        } else {
            page.push(&format!(
                "<section class=\"calc noprint\"><h2>销号复核</h2><form method=\"post\" action=\"/web/rectify/{id}/review\" class=\"grid-form\" data-testid=\"review-form\">\
                 <label>复核意见（退回时必填）<input name=\"reason\"></label>\
                 <div class=\"actions\"><button name=\"decision\" value=\"approve\">复核通过，销号</button>\
                 <button name=\"decision\" value=\"return\" class=\"secondary\">退回整改</button></div></form></section>"
            ));
        }
    }
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct UpdateForm {
    measures: String,
}

pub async fn update(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<UpdateForm>) -> WebResult {
    if !(may_manage(&u) || u.p.role == Role::Cadre) {
        return Err(WebError::forbidden(format!("{}不能更新整改措施", u.p.role.name_zh())));
    }
    item_in_scope(&state, &u, id).await?;
    let m = text(&f.measures, "整改措施", true, 500)?;
    if !state.store.update_rectification(id, &m, &u.p.username).await? {
        return Err(WebError::bad("该事项已销号，不能再更新"));
    }
    Ok(Redirect::to(&format!("/web/rectify/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct CloseForm {
    evidence: String,
}

fn close_error(e: CloseError) -> WebError {
    match e {
        CloseError::Store(e) => WebError::from(e),
        CloseError::NotFound => WebError::not_found("没有这个整改事项"),
        e => WebError::bad(e.to_string()),
    }
}

/// 申请销号: the first person records the evidence; the item waits for another user's review.
pub async fn close(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<CloseForm>) -> WebResult {
    if !may_manage(&u) {
        return Err(WebError::forbidden(format!("{}不能申请销号", u.p.role.name_zh())));
    }
    item_in_scope(&state, &u, id).await?;
    let evidence = text(&f.evidence, "整改佐证", false, 500)?;
    state.store.request_close(id, &evidence, &u.p.username).await.map_err(close_error)?;
    Ok(Redirect::to(&format!("/web/rectify/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct ReviewForm {
    decision: String,
    #[serde(default)]
    reason: String,
}

/// 销号复核: a second user with the right to manage the ledger and the item in their scope, in their
/// own session, approves (the item is closed) or returns it with a reason. The requester cannot.
pub async fn review(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<ReviewForm>) -> WebResult {
    if !may_manage(&u) {
        return Err(WebError::forbidden(format!("{}不能复核销号", u.p.role.name_zh())));
    }
    item_in_scope(&state, &u, id).await?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "return" => false,
        other => return Err(WebError::bad(format!("复核结论“{other}”无效"))),
    };
    let reason = text(&f.reason, "复核意见", false, 500)?;
    state.store.review_rectification(id, approve, &reason, &u.p.username).await.map_err(close_error)?;
    state.store.audit(&u.p.username, "web.rectify.review", &format!("item {id} {}", f.decision)).await?;
    Ok(Redirect::to(&format!("/web/rectify/{id}")).into_response())
}

/// An audit lead into the ledger (source 基金监管; responsible: the hospital; 30 days).
pub async fn from_lead(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>) -> WebResult {
    if !may_manage(&u) {
        return Err(WebError::forbidden(format!("{}不能登记整改事项", u.p.role.name_zh())));
    }
    let l = state
        .store
        .audit_lead(id)
        .await?
        .filter(|l| super::audit::lead_visible(&u, l))
        .ok_or_else(|| WebError::not_found("没有这条线索"))?;
    let rule = baozhang_core::audit::Rule::parse(&l.rule).map_or("基金监管线索", |r| r.name_zh());
    let r = Rectification {
        problem: format!("{rule}：{}", l.evidence),
        source: "基金监管".into(),
        source_ref: Some(format!("lead:{id}")),
        // The lead's own region (inside the user's): the item belongs where the settlements were insured.
        region_code: if l.admdvs.is_empty() { u.region()?.to_string() } else { l.admdvs.clone() },
        subject: l.subject.clone(),
        responsible_unit: l.fixmedins_code.clone(),
        responsible_person: "医疗机构负责人".into(),
        deadline: deadline_in(30),
        measures: "核查并退回违规费用，说明原因".into(),
        ..Default::default()
    };
    let item = match state.store.add_rectification(&r, &u.p.username).await? {
        Some(item) => item,
        None => existing(&state, &format!("lead:{id}")).await?,
    };
    Ok(Redirect::to(&format!("/web/rectify/{item}")).into_response())
}

/// A reconciliation finding into the ledger (source 参保比对; responsible: the village; 30 days).
pub async fn from_finding(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>) -> WebResult {
    if !may_manage(&u) {
        return Err(WebError::forbidden(format!("{}不能登记整改事项", u.p.role.name_zh())));
    }
    let (class, id_no, village, household, detail) =
        state.store.reconcile_finding(id).await?.ok_or_else(|| WebError::not_found("没有这条比对结果"))?;
    let own = u.region()?;
    if !village.starts_with(own) && !own.is_empty() {
        return Err(WebError::not_found("没有这条比对结果"));
    }
    let (name, action) =
        baozhang_store::reconcile::class_info(&class).map_or((class.clone(), String::new()), |c| (c.1.to_string(), c.2.to_string()));
    let r = Rectification {
        problem: format!("{name}{}", if detail.is_empty() { String::new() } else { format!("：{detail}") }),
        source: "参保比对".into(),
        source_ref: Some(format!("finding:{id}")),
        region_code: if village.is_empty() { own.to_string() } else { village.clone() },
        subject: format!("户 {household} {}", mask_id(&id_no)),
        responsible_unit: "村委会".into(),
        responsible_person: "驻村工作队".into(),
        deadline: deadline_in(30),
        measures: action,
        ..Default::default()
    };
    let item = match state.store.add_rectification(&r, &u.p.username).await? {
        Some(item) => item,
        None => existing(&state, &format!("finding:{id}")).await?,
    };
    Ok(Redirect::to(&format!("/web/rectify/{item}")).into_response())
}

async fn existing(state: &AppState, source_ref: &str) -> Result<i64, WebError> {
    state
        .store
        .rectification_by_ref(source_ref)
        .await?
        .map(|r| r.id)
        .ok_or_else(|| WebError::internal("a rectification with this source_ref vanished"))
}
