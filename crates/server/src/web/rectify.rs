//! 整改台账 (R-SUP-2): problems with their source, place, responsible unit and person, deadline and
//! measures; overdue items listed and counted; closing (销号) in two steps by two people: one requests it
//! with the evidence, another user (a manager whose scope covers the item) reviews it in their own
//! session and approves or returns it; every step on the item's trail. Audit leads and reconciliation findings become items
//! in one step (one item per lead or finding).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::Date;
use baozhang_ingest::worklist::mask_id;
use baozhang_store::date_num;
use baozhang_store::oversight::{CloseError, Rectification, RECT_SOURCES};
use serde::Deserialize;

use super::supervise::{Card, Fact};
use super::table::{Cell, Table};
use super::{urlencode, Page, WebError, WebResult, WebUser};
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
    let institutions: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
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
            Cell::text(match institutions.get(&r.responsible_unit) {
                Some(name) => format!("{name}（{}）", r.responsible_unit),
                None => r.responsible_unit.clone(),
            }),
            Cell::text(&r.responsible_person),
            Cell::text(super::date_text(r.deadline)),
            status,
            Cell::text(&r.measures),
            Cell::text(crate::clock::beijing_day(&r.closed_at)),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let view = ledger_view(&region, &items, crate::clock::today(), which, may_manage(&u));
    let mut page = Page::new(format!("整改台账 · {}", names.get(&region).cloned().unwrap_or_else(|| region.clone())));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &region).await?;
    page.crumbs.push(("整改台账".into(), String::new()));
    page.view(&view)?.tables(&u, &[&t]);
    Ok(page.render(&u))
}

/// One of the ledger's filters (全部, 整改中, …): the one shown is not a link.
pub struct Filter {
    pub label: &'static str,
    pub href: String,
    pub active: bool,
    pub testid: &'static str,
}

/// The form registering an item.
pub struct NewItemForm {
    pub region: String,
    pub deadline: String,
    pub sources: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "rectify.html")]
pub struct LedgerView {
    pub cards: Vec<Card>,
    pub filters: Vec<Filter>,
    /// For those who may register items.
    pub form: Option<NewItemForm>,
}

/// The ledger's view model: its counts, filters and form, from the region's items on `today`.
pub fn ledger_view(region: &str, items: &[Rectification], today: Date, which: &str, manage: bool) -> LedgerView {
    let now = date_num(today);
    let open = items.iter().filter(|r| r.status != "closed").count();
    let review = items.iter().filter(|r| r.in_review()).count();
    let overdue = items.iter().filter(|r| r.overdue(now)).count();
    let closed: Vec<_> = items.iter().filter(|r| r.status == "closed").collect();
    let on_time =
        closed.iter().filter(|r| Date::parse(&crate::clock::beijing_day(&r.closed_at)).is_ok_and(|d| date_num(d) <= r.deadline)).count();
    let filters =
        [("", "全部", ""), ("open", "整改中", ""), ("review", "待复核", ""), ("overdue", "逾期", "overdue-link"), ("closed", "已销号", "")]
            .iter()
            .map(|&(state, label, testid)| Filter {
                label,
                href: format!("/web/rectify?region={}&state={state}", urlencode(region)),
                active: state == which,
                testid,
            })
            .collect();
    LedgerView {
        cards: vec![
            Card::new("整改中", format!("{open} 项"), format!("共 {} 项，其中待复核销号 {review} 项", items.len())),
            Card::new("逾期未销号", format!("{overdue} 项"), format!("截至 {today}")),
            Card::new("已销号", format!("{} 项", closed.len()), format!("按期销号 {on_time} 项")),
        ],
        filters,
        form: manage.then(|| NewItemForm {
            region: region.to_string(),
            deadline: today.add_days(30).to_string(),
            sources: RECT_SOURCES.to_vec(),
        }),
    }
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
        et.rows.push(vec![Cell::text(crate::clock::beijing_minute(at)), Cell::text(actor), Cell::text(action), Cell::text(note)]);
    }
    let institutions: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
    let view = item_view(
        &r,
        institutions.get(&r.responsible_unit).map(String::as_str),
        today(),
        &u.p.username,
        may_manage(&u),
        u.p.role == Role::Cadre,
    );
    let mut page = Page::new(format!("整改事项 #{id}"));
    page.crumbs.push(("整改台账".into(), format!("/web/rectify?region={}", r.region_code)));
    page.crumbs.push((format!("#{id}"), String::new()));
    page.view(&view)?.tables(&u, &[&et]);
    Ok(page.render(&u))
}

#[derive(Template)]
#[template(path = "rectify_item.html")]
pub struct ItemView {
    pub id: i64,
    pub facts: Vec<Fact>,
    /// The form updating the measures, with the current ones.
    pub can_update: bool,
    pub measures: String,
    /// The form requesting 销号.
    pub can_close: bool,
    /// The user requested 销号 and waits for someone else's review.
    pub review_wait: bool,
    /// The review form (another user's request).
    pub can_review: bool,
}

/// An item's view model. `unit_name`: the name of the responsible unit when it is a hospital's code (an
/// audit lead's item); `now` yyyymmdd; `user` the one reading (who may not review their own request).
pub fn item_view(r: &Rectification, unit_name: Option<&str>, now: i64, user: &str, manage: bool, cadre: bool) -> ItemView {
    let status = if r.overdue(now) && !r.in_review() { "逾期未销号" } else { status_name(r) };
    let unit = match unit_name {
        Some(name) => Fact::new("责任单位", name).title(format!("医疗机构编码 {}", r.responsible_unit)),
        None => Fact::new("责任单位", &r.responsible_unit),
    };
    let mut facts = vec![
        Fact::new("问题", &r.problem),
        Fact::new("来源", &r.source),
        Fact::new("对象", &r.subject),
        unit,
        Fact::new("责任人", &r.responsible_person),
        Fact::new("整改期限", super::date_text(r.deadline)),
        Fact::new("状态", status).testid("rect-status"),
        Fact::new("整改措施", &r.measures),
    ];
    if matches!(r.status.as_str(), "closed" | "review") {
        facts.push(Fact::new("佐证", &r.evidence));
        facts.push(Fact::new("销号申请人", &r.closed_by));
    }
    if r.status == "closed" {
        facts.push(Fact::new("复核人", &r.reviewer));
    }
    let open = r.status == "open";
    ItemView {
        id: r.id,
        facts,
        can_update: open && (manage || cadre),
        measures: r.measures.clone(),
        can_close: open && manage,
        review_wait: r.in_review() && manage && r.closed_by == user,
        can_review: r.in_review() && manage && r.closed_by != user,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, status: &str, deadline: i64, closed_at: &str) -> Rectification {
        Rectification {
            id,
            problem: "村卫生室未悬挂政策公示牌".into(),
            source: "督查检查".into(),
            region_code: "620422100201".into(),
            responsible_unit: "H62042200001".into(),
            responsible_person: "院长".into(),
            deadline,
            measures: "悬挂公示牌".into(),
            status: status.into(),
            evidence: "照片 3 张".into(),
            closed_by: "bureau1".into(),
            reviewer: "audit1".into(),
            closed_at: closed_at.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_ledger_view_counts_overdue_and_on_time_items() {
        let today = Date::parse("2018-12-01").unwrap();
        let items = [
            item(1, "open", 20181130, ""),
            item(2, "review", 20181231, ""),
            item(3, "closed", 20181110, "2018-11-09T10:00:00"),
            item(4, "closed", 20181110, "2018-11-20T10:00:00"),
        ];
        let v = ledger_view("620422", &items, today, "overdue", true);
        let cards: Vec<(&str, &str, &str)> = v.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect();
        assert_eq!(
            cards,
            [
                ("整改中", "2 项", "共 4 项，其中待复核销号 1 项"),
                ("逾期未销号", "1 项", "截至 2018-12-01"),
                ("已销号", "2 项", "按期销号 1 项"),
            ]
        );
        let overdue = v.filters.iter().find(|f| f.testid == "overdue-link").unwrap();
        assert_eq!((overdue.label, overdue.href.as_str(), overdue.active), ("逾期", "/web/rectify?region=620422&state=overdue", true));
        assert_eq!(v.filters.iter().filter(|f| f.active).count(), 1);
        let f = v.form.as_ref().unwrap();
        assert_eq!((f.region.as_str(), f.deadline.as_str()), ("620422", "2018-12-31"));
        let html = v.render().unwrap();
        assert!(html.contains("<strong>逾期</strong>") && html.contains("data-testid=\"rect-form\""), "{html}");
        assert!(ledger_view("620422", &items, today, "", false).form.is_none(), "only managers register items");
    }

    #[test]
    fn an_item_names_its_hospital_and_offers_review_only_to_another_user() {
        let r = item(7, "review", 20181130, "");
        let v = item_view(&r, Some("会宁县人民医院"), 20181201, "bureau1", true, false);
        let fact = |l: &str| v.facts.iter().find(|f| f.label == l).unwrap();
        assert_eq!(fact("状态").value, "已申请销号，待复核", "an item in review is not called overdue");
        assert_eq!(fact("状态").testid, "rect-status");
        assert_eq!((fact("责任单位").value.as_str(), fact("责任单位").title.as_str()), ("会宁县人民医院", "医疗机构编码 H62042200001"));
        assert_eq!(fact("销号申请人").value, "bureau1");
        assert!(v.facts.iter().all(|f| f.label != "复核人"));
        assert!(v.review_wait && !v.can_review && !v.can_close && !v.can_update, "the requester waits");
        let v = item_view(&r, None, 20181201, "audit1", true, false);
        assert!(v.can_review && !v.review_wait, "another manager reviews");
        assert!(v.render().unwrap().contains("data-testid=\"review-form\""));
        let open = item(8, "open", 20181130, "");
        let v = item_view(&open, None, 20181201, "cadre_a", false, true);
        assert_eq!(v.facts.iter().find(|f| f.label == "状态").unwrap().value, "逾期未销号");
        assert!(v.can_update && !v.can_close, "a cadre updates the measures but does not close");
    }
}
