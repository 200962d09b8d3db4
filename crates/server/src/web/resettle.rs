//! 重新结算 (issue 17): the bureau previews what a re-settlement would change (per fund, hospital and
//! person) before confirming it; runs go through the writer and are listed with what each party is owed
//! (Excel); applications for assistance after discharge (依申请救助) are recorded and decided here, and an
//! approved one re-settles the person's year.
//!
//! Pages are a view model rendered by a template (`templates/resettle.html`, auto-escaped) plus
//! `Table`s (sorting, Excel export).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::policy::ALL_FUNDS;
use baozhang_core::{Date, IdCardNo, Identity};
use baozhang_ingest::resettle_report::{direction_zh, owed, OwedReport};
use baozhang_ingest::worklist::mask_id;
use baozhang_store::date_num;
use baozhang_store::resettle::{Adjusted, NewApplication, Reason, ALL_REASONS};
use serde::Deserialize;

use super::health::year_param;
use super::table::{Cell, InlineForm, Input, Table};
use super::{count, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::resettle::{preview, scope_of, start, Scope};
use crate::AppState;

fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

fn may_view(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

/// Identities an application may ask to have recognised.
const APPLICABLE: [Identity; 5] =
    [Identity::IllnessPoor, Identity::Dibao, Identity::ExtremePoor, Identity::Marginal, Identity::RegisteredPoor];

struct PreviewView {
    year: u16,
    region: String,
    scope_label: String,
    person_key: String,
    reason_code: &'static str,
    reason_name: &'static str,
    note: String,
    adjusted: usize,
    refused: Vec<String>,
}

#[derive(Template)]
#[template(path = "resettle.html")]
struct ResettleView {
    manage: bool,
    year: i64,
    region: String,
    cards: Vec<(String, String, String)>,
    reasons: Vec<(&'static str, &'static str)>,
    identities: Vec<(&'static str, &'static str)>,
    preview: Option<PreviewView>,
    /// A run's refused person-years, one line each.
    problems: Vec<String>,
    /// A run's note.
    note: String,
}

impl ResettleView {
    fn new(u: &WebUser, year: i64, region: &str, cards: Vec<(String, String, String)>, preview: Option<PreviewView>) -> ResettleView {
        ResettleView {
            manage: may_manage(u),
            year,
            region: region.to_string(),
            cards,
            reasons: ALL_REASONS.iter().map(|r| (r.code(), r.name_zh())).collect(),
            identities: APPLICABLE.iter().map(|i| (i.id(), i.name_zh())).collect(),
            preview,
            problems: Vec::new(),
            note: String::new(),
        }
    }
    fn html(&self) -> Result<String, WebError> {
        self.render().map_err(|e| WebError::internal(&format!("template resettle.html: {e}")))
    }
}

/// The cards of a report: adjusted claims, persons, paid back, recovered.
fn owed_cards(r: &OwedReport, person_years: usize) -> Vec<(String, String, String)> {
    let back: i64 = r.persons.values().map(|o| o.pay_back_fen()).sum();
    let recover: i64 = r.persons.values().map(|o| o.recover_fen()).sum();
    vec![
        ("人员年度".into(), format!("{} 个", count(person_years as i64)), "在重算范围内".into()),
        (
            "需调整结算".into(),
            format!("{} 笔", count(r.total.claims as i64)),
            format!("涉及 {} 人、{} 家医疗机构", count(r.persons.len() as i64), r.hospitals.len()),
        ),
        ("应补付个人".into(), format!("{} 元", yuan(back)), format!("{} 人", r.persons.values().filter(|o| o.psn_fen < 0).count())),
        ("应追回个人".into(), format!("{} 元", yuan(recover)), format!("{} 人", r.persons.values().filter(|o| o.psn_fen > 0).count())),
    ]
}

/// The three tables of a report (by fund, by hospital, by person), named for their export.
async fn owed_tables(state: &AppState, r: &OwedReport, title: &str) -> Result<Vec<Table>, WebError> {
    let names: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
    let key = state.web.pid_key(&state.store).await?;
    let places = state.web.region_names(&state.store).await?;
    let mut funds = Table::new("funds", format!("{title} · 按基金"), vec!["基金", "本年度变化（元）", "说明"]);
    for f in ALL_FUNDS {
        let v = r.total.funds_fen[f.index()];
        funds.rows.push(vec![
            Cell::text(f.name_zh()),
            Cell::Yuan(v),
            Cell::text(match v {
                0 => "无变化",
                v if v > 0 => "多支付（补付）",
                _ => "少支付（追回）",
            }),
        ]);
    }
    funds.total = Some(vec![Cell::text("个人负担变化"), Cell::Yuan(r.total.psn_fen), Cell::text(direction_zh(r.total.psn_fen))]);
    let mut cols = vec!["定点医疗机构", "调整笔数"];
    cols.extend(ALL_FUNDS.iter().map(|f| f.name_zh()));
    cols.push("其中救助与兜底垫付变化");
    let mut hospitals = Table::new("hospitals", format!("{title} · 按医疗机构"), cols);
    for (code, o) in &r.hospitals {
        let mut row = vec![
            Cell::text(format!("{}（{code}）", names.get(code).map(String::as_str).unwrap_or("未登记机构"))),
            Cell::Int(o.claims as i64),
        ];
        row.extend(o.funds_fen.iter().map(|&f| Cell::Yuan(f)));
        row.push(Cell::Yuan(o.funds_fen[baozhang_core::Fund::Assistance.index()] + o.funds_fen[baozhang_core::Fund::Fallback.index()]));
        hospitals.rows.push(row);
    }
    hospitals.empty = "没有需要调整的结算";
    let mut persons = Table::new(
        "persons",
        format!("{title} · 按人员"),
        vec!["证件号码", "村（社区）", "调整笔数", "基金合计变化", "个人负担变化", "应补付", "应追回"],
    );
    persons.empty = "没有需要调整的结算";
    persons.page_size = 50;
    for (id, o) in &r.persons {
        persons.rows.push(vec![
            Cell::Link(mask_id(id), format!("/web/person/{}", key.encode(id))),
            Cell::text(o.village_code.as_deref().map_or(String::new(), |v| match places.get(v) {
                Some(name) => format!("{name}（{v}）"),
                None => v.to_string(),
            })),
            Cell::Int(o.claims as i64),
            Cell::Yuan(o.fund_pay_fen),
            Cell::Yuan(o.psn_fen),
            Cell::Yuan(o.pay_back_fen()),
            Cell::Yuan(o.recover_fen()),
        ]);
    }
    Ok(vec![funds, hospitals, persons])
}

#[derive(Deserialize, Default)]
pub struct ListQ {
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// `GET /web/resettle`: the form, the runs of the region, the applications.
pub async fn resettle_page(State(state): State<AppState>, u: WebUser, Query(q): Query<ListQ>) -> WebResult {
    u.require(may_view(&u), "查看重新结算")?;
    let region = u.region()?.to_string();
    let year = year_param(&state, q.year.as_deref()).await?;
    let runs = state.store.resettle_runs(&region, 200).await?;
    let mut rt = Table::new(
        "runs",
        "重算批次",
        vec!["批次", "年度", "范围", "原因", "状态", "人员年度", "调整笔数", "未重算", "发起人", "开始时间"],
    );
    rt.empty = "尚无重算批次";
    for r in &runs {
        let status =
            if r.status == "done" { "已完成".to_string() } else { format!("进行中 {}/{}", r.done_person_years, r.person_years) };
        rt.rows.push(vec![
            Cell::Link(format!("#{}", r.id), format!("/web/resettle/run/{}", r.id)),
            Cell::Int(r.year),
            Cell::text(if r.psn_no.is_some() { format!("{}（一人）", r.region) } else { r.region.clone() }),
            Cell::text(Reason::parse(&r.reason).map_or(r.reason.clone(), |x| x.name_zh().to_string())),
            Cell::text(status),
            Cell::Int(r.person_years),
            Cell::Int(r.claims_adjusted),
            Cell::Int(r.refused),
            Cell::text(r.opter.clone()),
            Cell::text(crate::clock::beijing_text(&r.started_at)),
        ]);
    }
    let apps = state.store.applications(&region, None, 500).await?;
    let mut at = Table::new(
        "applications",
        "依申请救助",
        vec!["申请", "证件号码", "年度", "认定身份", "生效日期", "已收材料", "状态", "重算批次", "操作"],
    );
    at.empty = "尚无申请";
    let manage = may_manage(&u);
    for a in &apps {
        let op = if manage && a.status == "pending" {
            Cell::form(
                InlineForm::post("/web/resettle/decide", "")
                    .hidden("id", a.id)
                    .input(Input::text("note", "审核意见"))
                    .choice("decision", "approve", "批准并重算", "")
                    .choice("decision", "reject", "不予批准", "secondary"),
            )
        } else {
            Cell::text("")
        };
        at.rows.push(vec![
            Cell::Int(a.id),
            Cell::text(mask_id(&a.id_no)),
            Cell::Int(a.year),
            Cell::text(Identity::parse(&a.kind).map_or(a.kind.clone(), |k| k.name_zh().to_string())),
            Cell::text(super::date_text(a.effective_from)),
            Cell::text(a.documents.clone()),
            Cell::text(match a.status.as_str() {
                "pending" => "待审核".to_string(),
                "approved" => format!("已批准（{}）", a.decided_by.clone().unwrap_or_default()),
                _ => format!("不予批准：{}", a.decision_note.clone().unwrap_or_default()),
            }),
            a.run_id.map_or(Cell::text(""), |id| Cell::Link(format!("#{id}"), format!("/web/resettle/run/{id}"))),
            op,
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&rt, &at], x).await;
    }
    let cards = vec![
        ("重算批次".into(), format!("{} 个", runs.len()), format!("进行中 {} 个", runs.iter().filter(|r| r.status != "done").count())),
        ("待审核申请".into(), format!("{} 件", apps.iter().filter(|a| a.status == "pending").count()), "依申请救助".into()),
    ];
    let view = ResettleView::new(&u, year, "", cards, None);
    let mut page = Page::new("重新结算");
    page.crumbs.push(("重新结算".into(), String::new()));
    page.push(&view.html()?);
    page.push(&rt.html(&u.path));
    page.push(&at.html(&u.path));
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct PreviewForm {
    year: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    id_no: String,
    /// The person's opaque key (the confirmation form carries it instead of the ID number).
    #[serde(default)]
    person: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

async fn form_scope(state: &AppState, u: &WebUser, f: &PreviewForm) -> Result<(Scope, Option<String>), WebError> {
    let year: u16 = f.year.trim().parse().map_err(|_| WebError::bad(format!("年度“{}”无效", f.year.trim())))?;
    let id_no = if !f.person.trim().is_empty() {
        let key = state.web.pid_key(&state.store).await?;
        Some(key.decode(f.person.trim()).ok_or_else(|| WebError::bad("人员标识无效，请重新预览"))?)
    } else if !f.id_no.trim().is_empty() {
        Some(IdCardNo::parse(f.id_no.trim()).map_err(|e| WebError::bad(format!("证件号码：{e}")))?.as_str().to_string())
    } else {
        None
    };
    let region = Some(f.region.trim()).filter(|r| !r.is_empty());
    let scope = scope_of(state, &u.p, year, region, id_no.as_deref()).await.map_err(WebError::from)?;
    Ok((scope, id_no))
}

fn reason_of(s: &str) -> Result<Reason, WebError> {
    Reason::parse(s).ok_or_else(|| WebError::bad(format!("未知的重算原因“{s}”")))
}

/// `POST /web/resettle/preview`: what the run would change, and the button that confirms it.
pub async fn preview_page(State(state): State<AppState>, u: WebUser, Form(f): Form<PreviewForm>) -> WebResult {
    u.require(may_manage(&u), "发起重新结算")?;
    let reason = reason_of(&f.reason)?;
    let (scope, id_no) = form_scope(&state, &u, &f).await?;
    let o = preview(&state, &scope).await?;
    let report = owed(&o.adjusted);
    let person_key = match &id_no {
        Some(id) => state.web.pid_key(&state.store).await?.encode(id),
        None => String::new(),
    };
    let pv = PreviewView {
        year: scope.year,
        region: if scope.psn_no.is_some() { String::new() } else { scope.region.clone() },
        scope_label: match &id_no {
            Some(id) => format!("人员 {}", mask_id(id)),
            None if scope.region.is_empty() => "全部区划".to_string(),
            None => format!("区划 {}", scope.region),
        },
        person_key,
        reason_code: reason.code(),
        reason_name: reason.name_zh(),
        note: f.note.chars().take(200).collect(),
        adjusted: report.total.claims,
        refused: o.refused.clone(),
    };
    let view = ResettleView::new(&u, i64::from(scope.year), "", owed_cards(&report, o.person_years), Some(pv));
    let mut page = Page::new(format!("重新结算 · 预览 {} 年度", scope.year));
    page.crumbs.push(("重新结算".into(), "/web/resettle".into()));
    page.crumbs.push(("预览".into(), String::new()));
    page.push(&view.html()?);
    for t in owed_tables(&state, &report, &format!("{}年度重算预览", scope.year)).await? {
        let mut t = t;
        // A preview is the answer to a POST: its export is the table's own workbook.
        t.export_href = Some(t.data_uri()?);
        page.push(&t.html(&u.path));
    }
    Ok(page.render(&u))
}

/// `POST /web/resettle/run`: starts the run previewed.
pub async fn run(State(state): State<AppState>, u: WebUser, Form(f): Form<PreviewForm>) -> WebResult {
    u.require(may_manage(&u), "发起重新结算")?;
    let reason = reason_of(&f.reason)?;
    let (scope, _) = form_scope(&state, &u, &f).await?;
    let note: String = f.note.chars().take(200).collect();
    let run_id = start(&state, &scope, reason, &note, &u.p.username).await?;
    state
        .store
        .audit(
            &u.p.username,
            "resettle.start",
            &format!("重算批次 #{run_id}：{} 年度，区划 {}，原因 {}", scope.year, scope.region, reason.name_zh()),
        )
        .await?;
    Ok(Redirect::to(&format!("/web/resettle/run/{run_id}")).into_response())
}

#[derive(Deserialize, Default)]
pub struct RunQ {
    #[serde(default)]
    export: Option<String>,
}

/// `GET /web/resettle/run/{id}`: a run's progress and what it owes each party.
pub async fn run_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Query(q): Query<RunQ>) -> WebResult {
    u.require(may_view(&u), "查看重新结算")?;
    let region = u.region()?.to_string();
    let not_found = || WebError::not_found("没有这个重算批次，或不在您的管辖范围内");
    let r = state.store.resettle_run(id).await?.ok_or_else(not_found)?;
    if !r.region.starts_with(&region) {
        return Err(not_found());
    }
    let rows = state.store.adjustments(Some(id), &region, None).await?;
    let adjusted: Vec<Adjusted> = rows.iter().map(Adjusted::from).collect();
    let report = owed(&adjusted);
    let title = format!("{}年度重算批次{}", r.year, r.id);
    let tables = owed_tables(&state, &report, &title).await?;
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &tables.iter().collect::<Vec<_>>(), x).await;
    }
    let mut cards = owed_cards(&report, r.done_person_years as usize);
    cards.insert(
        0,
        (
            "状态".into(),
            if r.status == "done" { "已完成".into() } else { "进行中".into() },
            format!(
                "{}/{} 个人员年度 · {}",
                count(r.done_person_years),
                count(r.person_years),
                Reason::parse(&r.reason).map_or("", Reason::name_zh)
            ),
        ),
    );
    let view = ResettleView {
        manage: false,
        problems: r.problems.lines().map(str::to_string).collect(),
        note: r.note.clone(),
        ..ResettleView::new(&u, r.year, "", cards, None)
    };
    let mut page = Page::new(format!("重算批次 #{} · {} 年度", r.id, r.year));
    page.crumbs.push(("重新结算".into(), "/web/resettle".into()));
    page.crumbs.push((format!("批次 #{}", r.id), String::new()));
    page.push(&view.html()?);
    for t in &tables {
        page.push(&t.html(&u.path));
    }
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct ApplyForm {
    id_no: String,
    year: String,
    kind: String,
    effective_from: String,
    documents: String,
}

/// `POST /web/resettle/apply`: records an application (the person must have settlements that year).
pub async fn apply(State(state): State<AppState>, u: WebUser, Form(f): Form<ApplyForm>) -> WebResult {
    u.require(may_manage(&u), "登记依申请救助")?;
    let year: u16 = f.year.trim().parse().map_err(|_| WebError::bad(format!("年度“{}”无效", f.year.trim())))?;
    let id = IdCardNo::parse(f.id_no.trim()).map_err(|e| WebError::bad(format!("证件号码：{e}")))?;
    let kind = Identity::parse(&f.kind).filter(|k| APPLICABLE.contains(k)).ok_or_else(|| WebError::bad("认定身份无效"))?;
    let from = Date::parse(f.effective_from.trim()).map_err(|e| WebError::bad(format!("认定生效日期：{e}")))?;
    if from.year() > year {
        return Err(WebError::bad(format!("认定生效日期 {from} 晚于申请的年度 {year}，该年度的结算不受影响")));
    }
    let documents: String = f.documents.trim().chars().take(500).collect();
    if documents.is_empty() {
        return Err(WebError::bad("请填写已收到的申请材料"));
    }
    let scope = scope_of(&state, &u.p, year, None, Some(id.as_str())).await.map_err(WebError::from)?;
    let psn_no = scope.psn_no.clone().ok_or_else(|| WebError::bad("未找到该人员的结算"))?;
    let village = state.store.person(id.as_str()).await?.and_then(|p| p.village_code).or(Some(scope.region.clone()));
    let app = NewApplication {
        psn_no,
        id_no: id.as_str().to_string(),
        village_code: village,
        year,
        kind,
        effective_from: date_num(from),
        documents,
    };
    let app_id = state.store.record_application(&app, &u.p.username).await?;
    state
        .store
        .audit(&u.p.username, "resettle.application", &format!("依申请救助 #{app_id}：{}，{}", mask_id(id.as_str()), kind.name_zh()))
        .await?;
    Ok(Redirect::to("/web/resettle").into_response())
}

#[derive(Deserialize)]
pub struct DecideForm {
    id: i64,
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /web/resettle/decide`: approves (the identity is recorded and the person's year re-settled) or
/// rejects an application, once.
pub async fn decide(State(state): State<AppState>, u: WebUser, Form(f): Form<DecideForm>) -> WebResult {
    u.require(may_manage(&u), "审核依申请救助")?;
    let region = u.region()?.to_string();
    let not_found = || WebError::not_found("没有这件申请，或不在您的管辖范围内");
    let a = state.store.application(f.id).await?.ok_or_else(not_found)?;
    if !a.village_code.as_deref().unwrap_or("").starts_with(&region) {
        return Err(not_found());
    }
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(WebError::bad(format!("未知的审核结果“{other}”"))),
    };
    let note: String = f.note.trim().chars().take(200).collect();
    if !approve && note.is_empty() {
        return Err(WebError::bad("不予批准须填写审核意见"));
    }
    if !state.store.decide_application(a.id, approve, &note, &u.p.username).await? {
        return Err(WebError::bad("这件申请已经审核过了"));
    }
    if approve {
        let year = u16::try_from(a.year).map_err(|_| WebError::bad("申请年度无效"))?;
        let scope = Scope { year, region: a.village_code.clone().unwrap_or_default(), psn_no: Some(a.psn_no.clone()) };
        let run_id = start(&state, &scope, Reason::Application, &format!("依申请救助 #{}", a.id), &u.p.username).await?;
        state.store.link_application_run(a.id, run_id).await?;
    }
    state
        .store
        .audit(&u.p.username, "resettle.decide", &format!("依申请救助 #{}：{}", a.id, if approve { "批准" } else { "不予批准" }))
        .await?;
    Ok(Redirect::to("/web/resettle").into_response())
}
