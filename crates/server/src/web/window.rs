//! The one-stop settlement window (一站式结算窗口) of a hospital: find the patient, see identities,
//! enrolment and the year's accumulators, enter the bill (or take a visit whose fees came through 2301),
//! pre-settle, settle, cancel, and print the A5 slip. Every action is a national transaction run through
//! [`national::internal`] — the same checks, writer, ledger and idempotency as a hospital system's message.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use baozhang_core::claim::HospLevel;
use baozhang_core::{Date, Identity, IdentitySet};
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::ledger::{read_accumulators, LockedAcc, SettlementFilter, StoredSettlement};
use baozhang_store::registry::EnrolmentRow;
use baozhang_store::service::{Institution, Mdtrt, PersonRecord};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::person::{explanation_lines, json_fen, med_type_name};
use super::table::{ButtonPart, Cell, InlineForm, Input, Part, Table, TableView};
use super::{date_text, fragment, fragment_error, urlencode, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::national;
use crate::AppState;

async fn institution_of(state: &AppState, u: &WebUser) -> Result<Institution, WebError> {
    if u.p.role != Role::Hospital {
        return Err(WebError::forbidden("一站式结算窗口仅供定点医疗机构账号使用"));
    }
    let inst = state
        .cache
        .institution(&state.store, &u.p.scope)
        .await?
        .ok_or_else(|| WebError::forbidden(format!("定点医疗机构 {} 未登记，请联系医保局", u.p.scope)))?;
    if inst.disabled {
        return Err(WebError::forbidden("本机构已被停用，不能办理结算"));
    }
    Ok(inst)
}

#[derive(Deserialize, Default)]
pub struct WindowQ {
    /// What the clerk typed: an ID number (answered with a redirect to `p`) or a 人员编号.
    #[serde(default)]
    q: String,
    /// The patient's opaque key (`web::pid`): no page address carries an ID number.
    #[serde(default)]
    p: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    export: Option<String>,
    /// Set by the search when nobody has the number typed (never from the address).
    #[serde(skip)]
    missing: bool,
}

/// The search form posts: an ID number never goes into an address. Found: the patient's page by key.
pub async fn find(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<WindowQ>) -> WebResult {
    institution_of(&state, &u).await?;
    let q = f.q.trim();
    if q.is_empty() {
        return Ok(axum::response::Redirect::to("/web/window").into_response());
    }
    match lookup(&state, q).await? {
        Some(person) => {
            let key = state.web.pid_key(&state.store).await?.encode(&person.id_no);
            let date = if f.date.trim().is_empty() { String::new() } else { format!("&date={}", urlencode(f.date.trim())) };
            Ok(axum::response::Redirect::to(&format!("/web/window?p={key}{date}")).into_response())
        }
        // Not found: the page says so (an ID number typed is not echoed back).
        None => window_page(State(state), u, Query(WindowQ { missing: true, ..Default::default() })).await,
    }
}

/// The patient of the certificate presented: a window finds a person only by the full, valid ID number
/// on the card (as the national 1101 does), never by the sequential 人员编号, so a clerk cannot walk the
/// register.
async fn lookup(state: &AppState, q: &str) -> Result<Option<PersonRecord>, WebError> {
    let q = q.trim().to_ascii_uppercase();
    if q.is_empty() {
        return Ok(None);
    }
    let id = baozhang_core::IdCardNo::parse(&q).map_err(|e| WebError::bad(format!("请输入患者出示的居民身份证号码（18 位）：{e}")))?;
    Ok(state.store.person(id.as_str()).await?)
}

/// Identities in force on `d` (yyyymmdd).
fn identities_on(periods: &[baozhang_store::service::IdentityPeriod], d: i64) -> IdentitySet {
    let mut ids = IdentitySet::EMPTY;
    for p in periods {
        if p.start_date <= d && p.end_date.is_none_or(|e| e > d) {
            if let Some(i) = Identity::parse(&p.identity) {
                ids = ids.with(i);
            }
        }
    }
    ids
}

/// The window's page (`templates/window.html`): the institution, the search box and, for a patient
/// found, their details, the year's figures, the open visits, the entry form and the settlements.
#[derive(Template)]
#[template(path = "window.html")]
pub struct WindowView<'a> {
    pub institution: String,
    /// What the search box shows again (never an ID number).
    pub q: String,
    pub not_found: bool,
    pub patient: Option<PatientView>,
    pub acc: Option<AccBox<'a>>,
    pub form: Option<SettleFormView>,
    pub visits: Option<VisitsBox<'a>>,
    pub done: Option<DoneBox<'a>>,
}

/// The patient as the window shows them: the clerk holds the card, so the name is in full (the look-up
/// is logged); the ID number is masked.
#[derive(Debug, PartialEq, Eq)]
pub struct PatientView {
    pub name: String,
    pub id_masked: String,
    pub sex: String,
    pub psn_no: String,
    pub year: i64,
    pub identities: String,
    pub insured: bool,
    /// 已参保（参保地 会宁县）, the enrolment's status, or 未参保.
    pub enrolment: String,
    /// Why the window cannot settle for the patient (not insured, no policy in force).
    pub refusal: Option<String>,
}

/// The entry form's fixed values.
#[derive(Debug, PartialEq, Eq)]
pub struct SettleFormView {
    /// 会宁县城乡居民基本医疗保险（政策版本号 …）
    pub policy: String,
    pub psn_no: String,
    /// The patient's opaque key (`web::pid`), not the ID number.
    pub cert_key: String,
    pub insuplc: String,
    /// The settlement date (2018-12-20).
    pub date: String,
}

/// A region's name, else its code.
fn place(names: &HashMap<String, String>, code: &str) -> String {
    names.get(code).cloned().unwrap_or_else(|| code.to_string())
}

/// The hospital level (1–3) in words.
fn level_name(lv: i64) -> String {
    u8::try_from(lv).ok().and_then(HospLevel::new).map_or_else(|| format!("{lv} 级"), |l| l.name_zh().to_string())
}

/// The line under the title: the institution by name, its code, level and place.
pub fn institution_line(inst: &Institution, names: &HashMap<String, String>) -> String {
    format!("{}（{}，{}医疗机构，所在地 {}）", inst.name, inst.fixmedins_code, level_name(inst.hosp_lv), place(names, &inst.admdvs))
}

/// The patient's details for the settlement date's year. `policy_found`: a policy of the insured area is
/// in force on `date`.
pub fn patient_view(
    person: &PersonRecord,
    enrolment: Option<&EnrolmentRow>,
    identities: IdentitySet,
    psn_no: &str,
    date: Date,
    policy_found: bool,
    names: &HashMap<String, String>,
) -> PatientView {
    let insured = enrolment.is_some_and(|e| e.insured);
    let area = enrolment.map(|e| e.insured_admdvs.as_str()).unwrap_or("");
    PatientView {
        name: person.name.clone(),
        id_masked: mask_id(&person.id_no),
        sex: person.sex.clone(),
        psn_no: psn_no.to_string(),
        year: i64::from(date.year()),
        identities: identities.names_zh(),
        insured,
        enrolment: match enrolment {
            Some(e) if e.insured => format!("已参保（参保地 {}）", place(names, &e.insured_admdvs)),
            Some(e) => e.status.clone(),
            None => "未参保".into(),
        },
        refusal: if !insured {
            Some("该人员本年度未参保或已停保，不能按医保结算。".into())
        } else if !policy_found {
            Some(format!("参保地 {} 在 {date} 没有生效的结算政策，请联系医保局。", place(names, area)))
        } else {
            None
        },
    }
}

pub async fn window_page(State(state): State<AppState>, u: WebUser, Query(q): Query<WindowQ>) -> WebResult {
    let inst = institution_of(&state, &u).await?;
    // An ID number typed into the address is refused (the search box posts it).
    if super::looks_like_id_no(&q.q) {
        return Err(super::id_in_address());
    }
    let names = state.web.region_names(&state.store).await?;
    let mut view = WindowView {
        institution: institution_line(&inst, &names),
        q: q.q.trim().to_string(),
        not_found: false,
        patient: None,
        acc: None,
        form: None,
        visits: None,
        done: None,
    };
    let found = if q.missing {
        None
    } else if !q.p.trim().is_empty() {
        match state.web.pid_key(&state.store).await?.decode(q.p.trim()) {
            Some(id_no) => state.store.person(&id_no).await?,
            None => None,
        }
    } else if q.q.trim().is_empty() {
        return render(&u, &view);
    } else {
        lookup(&state, &q.q).await?
    };
    let Some(person) = found else {
        view.not_found = true;
        return render(&u, &view);
    };
    state.store.log_access(&u.p.username, u.p.role.as_str(), "web.window.lookup", &mask_id(&person.id_no), "结算窗口查询参保人").await?;
    let enrolments = state.store.enrolments_of(&person.id_no).await?;
    let periods = state.store.identity_periods(&person.id_no).await?;
    // The settlement date: what the clerk chose, else today — or, for data of a past year (the demo),
    // the last day of the latest year the person was insured.
    let today = crate::clock::today();
    let latest_year = enrolments.iter().filter(|e| e.insured).map(|e| e.year).max();
    let date = match Date::parse(q.date.trim()) {
        Ok(d) => d,
        Err(_) => match latest_year {
            Some(y) if y < i64::from(today.year()) => Date::new(y as u16, 12, 20).unwrap_or(today),
            _ => today,
        },
    };
    let year = i64::from(date.year());
    let enr = enrolments.iter().find(|e| e.year == year);
    let ids = identities_on(&periods, baozhang_store::date_num(date));
    let psn_no = enr.map(|e| e.psn_no.clone()).or(person.psn_no.clone()).unwrap_or_default();
    let insured_area = enr.map(|e| e.insured_admdvs.clone()).unwrap_or_default();
    let policy = state.policies.for_area(&insured_area, date);
    let patient = patient_view(&person, enr, ids, &psn_no, date, policy.is_some(), &names);
    let settle = patient.refusal.is_none();

    if settle {
        if let Some(x) = q.export.as_deref() {
            let done = done_table(&load_done(&state, &inst, &psn_no).await?);
            return super::table::export_for(&state, &u, &[&done], x).await;
        }
    }
    // The year's accumulators (refreshed out of band after each settlement or cancellation); then, if
    // the window may settle, the open visits, the entry form and the settlements.
    let boxes = Boxes {
        path: u.path.clone(),
        acc: if psn_no.is_empty() {
            None
        } else {
            Some(acc_table(policy, &read_accumulators(&state.store, &psn_no, date.year()).await?, date.year()))
        },
        visits: if settle {
            Some(visits_table(&state.store.open_visits(&inst.fixmedins_code, &psn_no).await?, &insured_area))
        } else {
            None
        },
        done: if settle { Some(done_table(&load_done(&state, &inst, &psn_no).await?)) } else { None },
    };
    if let (true, Some(policy)) = (settle, policy) {
        view.form = Some(SettleFormView {
            policy: format!("{}（政策版本号 {}）", policy.meta.name, policy.version),
            psn_no: psn_no.clone(),
            cert_key: state.web.pid_key(&state.store).await?.encode(&person.id_no),
            insuplc: insured_area.clone(),
            date: date.to_string(),
        });
    }
    view.patient = Some(patient);
    view.acc = boxes.acc_box(false);
    view.visits = boxes.visits_box(false);
    view.done = boxes.done_box(false);
    render(&u, &view)
}

fn render(u: &WebUser, view: &WindowView<'_>) -> WebResult {
    let mut page = Page::new("一站式结算窗口");
    page.view(view)?;
    Ok(page.render(u))
}

/// The year's figures in a box that a settlement or a cancellation replaces out of band
/// (`templates/window_acc.html`).
#[derive(Template)]
#[template(path = "window_acc.html")]
pub struct AccBox<'a> {
    pub oob: bool,
    pub settlements: i64,
    pub stays: u32,
    pub table: TableView<'a>,
}

/// The open visits, in a box replaced out of band after each action (`templates/window_visits.html`).
#[derive(Template)]
#[template(path = "window_visits.html")]
pub struct VisitsBox<'a> {
    pub oob: bool,
    pub table: TableView<'a>,
}

/// This institution's settlements of the patient, in a box replaced out of band
/// (`templates/window_done.html`).
#[derive(Template)]
#[template(path = "window_done.html")]
pub struct DoneBox<'a> {
    pub oob: bool,
    pub table: TableView<'a>,
}

/// The tables of the boxes an action changes, loaded; the boxes borrow them.
struct Boxes {
    /// The page the tables' export links point to.
    path: String,
    /// The accumulators' table, the year's settlement count and inpatient stays.
    acc: Option<(Table, i64, u32)>,
    visits: Option<Table>,
    done: Option<Table>,
}

impl Boxes {
    fn acc_box(&self, oob: bool) -> Option<AccBox<'_>> {
        self.acc.as_ref().map(|(t, settlements, stays)| AccBox { oob, settlements: *settlements, stays: *stays, table: t.view(&self.path) })
    }
    fn visits_box(&self, oob: bool) -> Option<VisitsBox<'_>> {
        self.visits.as_ref().map(|t| VisitsBox { oob, table: t.view(&self.path) })
    }
    fn done_box(&self, oob: bool) -> Option<DoneBox<'_>> {
        self.done.as_ref().map(|t| DoneBox { oob, table: t.view(&self.path) })
    }
}

/// The person's accumulators of `year`: settlements counted and each layer's running figures.
fn acc_table(policy: Option<&baozhang_core::Policy>, acc: &LockedAcc, year: u16) -> (Table, i64, u32) {
    let mut t =
        Table::new("accumulators", format!("{year} 年度累计（截至目前已结算）"), vec!["层次", "累计计算基数", "累计支付", "其中门诊"]);
    t.empty = "本年度尚无结算";
    if let Some(p) = policy {
        for (i, l) in p.layers.iter().enumerate() {
            let a = acc.acc.layers[i];
            if a.base_fen != 0 || a.paid_fen != 0 {
                t.rows.push(vec![Cell::text(&l.name), Cell::Yuan(a.base_fen), Cell::Yuan(a.paid_fen), Cell::Yuan(a.outpatient_paid_fen)]);
            }
        }
    }
    (t, acc.settlements, acc.acc.stays_total())
}

/// The hospital's open visits of the person (registered and not settled), each with 选择 (take its fees
/// into the form) and 撤销登记 (2404 / 2202: a visit registered by mistake, or whose pre-settlement was
/// abandoned).
fn visits_table(visits: &[(Mdtrt, [i64; 5], i64)], insuplc: &str) -> Table {
    let mut vt =
        Table::new("visits", "本院未结算的就诊", vec!["就诊编号", "医疗类别", "就诊日期", "费用明细", "医疗费总额", "政策范围内", "操作"]);
    vt.empty = "没有未结算的就诊（可直接在下方录入费用）";
    for (m, sums, n) in visits {
        let data = [
            ("pick-visit", String::new()),
            ("mdtrt", m.mdtrt_id.clone()),
            ("medtype", m.med_type.to_string()),
            ("begin", date_text(m.begn_date)),
            ("total", baozhang_core::Fen(sums[0]).to_string()),
            ("fulamt", baozhang_core::Fen(sums[1]).to_string()),
            ("overlmt", baozhang_core::Fen(sums[2]).to_string()),
            ("preselfpay", baozhang_core::Fen(sums[3]).to_string()),
        ];
        let pick = Cell::Parts(vec![
            Part::Button(ButtonPart {
                label: "选择".into(),
                class: "small".into(),
                data: data.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            }),
            Part::form(
                InlineForm::htmx("/web/window/visit-cancel", "#settle-result", "撤销登记")
                    .hidden("mdtrt_id", &m.mdtrt_id)
                    .hidden("psn_no", &m.psn_no)
                    .hidden("insuplc", insuplc)
                    .hidden("med_type", m.med_type)
                    .button_class("small danger")
                    .confirm(format!("撤销就诊登记 {}？", m.mdtrt_id))
                    .testid("visit-cancel"),
            ),
        ]);
        vt.rows.push(vec![
            Cell::text(&m.mdtrt_id),
            Cell::text(med_type_name(m.med_type)),
            Cell::text(date_text(m.begn_date)),
            Cell::Int(*n),
            Cell::Yuan(sums[0]),
            Cell::Yuan(sums[4]),
            pick,
        ]);
    }
    vt
}

/// The window page of the person with this 人员编号, by their opaque key (the address of the links in the
/// boxes: export, pages). No address carries the ID number; the window refuses a 人员编号 in `q`.
async fn window_path(state: &AppState, psn_no: &str) -> String {
    let id_no = match state.store.person_by_psn(psn_no).await {
        Ok(Some(p)) => p.id_no,
        _ => return "/web/window".to_string(),
    };
    match state.web.pid_key(&state.store).await {
        Ok(k) => format!("/web/window?p={}", k.encode(&id_no)),
        Err(_) => "/web/window".to_string(),
    }
}

/// Every box of the page an action changes — the year's count and accumulators, the open visits, the
/// settlements — to swap in out of band next to the action's message. A box that cannot be loaded is
/// left as it is.
async fn refreshed(state: &AppState, inst: &Institution, psn_no: &str, insuplc: &str, on: Option<Date>) -> Boxes {
    let day = on.unwrap_or_else(crate::clock::today);
    let acc = read_accumulators(&state.store, psn_no, day.year()).await.ok();
    let visits = state.store.open_visits(&inst.fixmedins_code, psn_no).await.ok();
    let done = load_done(state, inst, psn_no).await.ok();
    Boxes {
        path: window_path(state, psn_no).await,
        acc: acc.map(|a| acc_table(state.policies.for_area(insuplc, day), &a, day.year())),
        visits: visits.map(|v| visits_table(&v, insuplc)),
        done: done.map(|d| done_table(&d)),
    }
}

/// The hospital's settlements of the patient (by 人员编号).
async fn load_done(state: &AppState, inst: &Institution, psn_no: &str) -> Result<Vec<StoredSettlement>, WebError> {
    let f = SettlementFilter {
        fixmedins_code: Some(inst.fixmedins_code.clone()),
        psn_no: Some(psn_no.to_string()),
        limit: 100,
        ..Default::default()
    };
    Ok(state.store.settlements(&f).await?)
}

/// The hospital's settlements of the patient, each valid one with its slip and 冲销 (with its reason).
fn done_table(done: &[StoredSettlement]) -> Table {
    let mut st = Table::new(
        "done",
        "本院结算记录",
        vec!["结算编号", "结算日期", "医疗类别", "医疗费总额", "基金支付", "医院承担", "个人负担", "状态", "操作"],
    );
    st.empty = "本院尚无该患者的结算记录";
    for s in done.iter().filter(|s| s.reverses.is_none()) {
        let actions = if s.cancelled_by.is_some() {
            Cell::text("")
        } else {
            Cell::Parts(vec![
                Part::link_new_tab("结算单", format!("/web/slip/{}", urlencode(&s.setl_id))),
                Part::form(
                    InlineForm::htmx("/web/window/cancel", "#settle-result", "冲销")
                        .hidden("setl_id", &s.setl_id)
                        .hidden("mdtrt_id", &s.mdtrt_id)
                        .hidden("psn_no", &s.psn_no)
                        .hidden("insuplc", &s.insuplc_admdvs)
                        .input(Input::text("reason", "冲销原因").placeholder("冲销原因（必填）").required())
                        .button_class("small danger")
                        .confirm(format!("确认冲销结算 {}？", s.setl_id))
                        .testid("cancel-form"),
                ),
            ])
        };
        st.rows.push(vec![
            Cell::text(&s.setl_id),
            Cell::text(date_text(s.setl_date)),
            Cell::text(med_type_name(s.med_type)),
            Cell::Yuan(s.medfee_sumamt),
            Cell::Yuan(s.fund_pay_sumamt),
            Cell::Yuan(s.hosp_part_amt),
            Cell::Yuan(s.psn_part_amt),
            Cell::text(if s.cancelled_by.is_some() { "已冲销" } else { "有效" }),
            actions,
        ]);
    }
    st
}

#[derive(Deserialize)]
pub struct SettleForm {
    psn_no: String,
    cert_no: String,
    insuplc: String,
    #[serde(default)]
    mdtrt_id: String,
    med_type: String,
    begin: String,
    end: String,
    #[serde(default)]
    referral_ok: Option<String>,
    #[serde(default)]
    major_disease: Option<String>,
    /// The main diagnosis (ICD-10), for the major-disease ledger; checked by the admission message.
    #[serde(default)]
    dise_codg: String,
    total: String,
    #[serde(default)]
    fulamt: String,
    #[serde(default)]
    overlmt: String,
    #[serde(default)]
    preselfpay: String,
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The visit to settle: the one the form names; else this hospital's open visit of the person with the
/// same medical type and date (a look-up again, or the page reloaded, takes it up instead of registering
/// another); else a new registration (2401 / 2201). Returns its id and whether it was registered now.
async fn ensure_visit(state: &AppState, inst: &Institution, u: &WebUser, f: &SettleForm) -> Result<(String, bool), String> {
    if !f.mdtrt_id.trim().is_empty() {
        return Ok((f.mdtrt_id.trim().to_string(), false));
    }
    if let Ok(begin) = Date::parse(f.begin.trim()) {
        let open = state.store.open_visits(&inst.fixmedins_code, &f.psn_no).await.map_err(|e| WebError::from(e).message)?;
        let med_type = f.med_type.trim().parse::<i64>().unwrap_or(0);
        // Only a visit registered as this form would register it (same type, date, referral and
        // major-disease flags) and without uploaded fees: another one is not silently settled with
        // flags the clerk did not choose, and a visit with fees is taken up by choosing it.
        let same = |m: &baozhang_store::service::Mdtrt| {
            m.med_type == med_type
                && m.begn_date == baozhang_store::date_num(begin)
                && m.referral_ok == f.referral_ok.is_some()
                && m.major_disease == f.major_disease.is_some()
        };
        if let Some((m, _, _)) = open.iter().find(|(m, _, n)| *n == 0 && same(m)) {
            return Ok((m.mdtrt_id.clone(), false));
        }
    }
    let inpatient = f.med_type == "21";
    let mut data = serde_json::json!({
        "psn_no": f.psn_no, "mdtrt_cert_no": f.cert_no, "begntime": f.begin, "med_type": f.med_type,
        "refl_flag": if f.referral_ok.is_some() { "1" } else { "0" }, "major_dise_flag": if f.major_disease.is_some() { "1" } else { "0" },
    });
    if !f.dise_codg.trim().is_empty() {
        data["dise_codg"] = Value::String(f.dise_codg.trim().to_string());
    }
    let input = if inpatient { serde_json::json!({"mdtrtinfo": data}) } else { serde_json::json!({"data": data}) };
    let out = national::internal(
        state,
        inst,
        if inpatient { national::Infno::Admission } else { national::Infno::OutpatientRegister },
        &u.p.username,
        &f.insuplc,
        obj(input),
    )
    .await
    .map_err(|e| e.to_string())?;
    out.get("result")
        .or_else(|| out.get("data"))
        .and_then(|r| r.get("mdtrt_id"))
        .or_else(|| out.get("mdtrt_id"))
        .and_then(Value::as_str)
        .map(|id| (id.to_string(), true))
        .ok_or_else(|| "登记就诊的应答中没有就诊编号".to_string())
}

/// Cancels a visit's registration (2404 inpatient / 2202 outpatient) through the national path.
async fn cancel_visit(
    state: &AppState,
    inst: &Institution,
    u: &WebUser,
    mdtrt_id: &str,
    psn_no: &str,
    med_type: &str,
    insuplc: &str,
) -> Result<(), String> {
    let infno = if med_type == "21" { national::Infno::AdmissionCancel } else { national::Infno::OutpatientRegisterCancel };
    let input = serde_json::json!({"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no}});
    national::internal(state, inst, infno, &u.p.username, insuplc, obj(input)).await.map(|_| ()).map_err(|e| e.to_string())
}

async fn run_settle(state: &AppState, u: &WebUser, f: &SettleForm, commit: bool) -> Result<String, String> {
    let inst = institution_of(state, u).await.map_err(|e| e.message)?;
    let bill = super::policy::parse_bill(&f.total, &f.fulamt, &f.overlmt, &f.preselfpay)?;
    let (mdtrt_id, registered_now) = ensure_visit(state, &inst, u, f).await?;
    let inpatient = f.med_type == "21";
    let infno = match (inpatient, commit) {
        (true, false) => national::Infno::InpatientPreSettle,
        (true, true) => national::Infno::InpatientSettle,
        (false, false) => national::Infno::OutpatientPreSettle,
        (false, true) => national::Infno::OutpatientSettle,
    };
    let input = serde_json::json!({"data": {
        "mdtrt_id": mdtrt_id, "psn_no": f.psn_no, "mdtrt_cert_no": f.cert_no,
        "medfee_sumamt": bill.total().to_string(), "fulamt_ownpay_amt": bill.fulamt_ownpay().to_string(),
        "overlmt_selfpay": bill.overlmt_selfpay().to_string(), "preselfpay_amt": bill.preselfpay().to_string(),
        "inscp_scp_amt": bill.compliant().to_string(), "dscg_time": f.end,
    }});
    let out = national::internal(state, &inst, infno, &u.p.username, &f.insuplc, obj(input)).await;
    // The visit id goes back into the form (out of band) so a settle after a pre-settle uses the same visit.
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            // A refused (pre-)settlement leaves no admission behind: a visit registered for it is cancelled.
            let mut note = "";
            let mut keep = mdtrt_id.clone();
            if registered_now {
                match cancel_visit(state, &inst, u, &mdtrt_id, &f.psn_no, &f.med_type, &f.insuplc).await {
                    Ok(()) => {
                        keep = String::new();
                        note = "（本次登记的就诊已撤销）";
                    }
                    Err(c) => tracing::warn!(error = %c, "cancelling the visit of a refused settlement failed"),
                }
            }
            let frag = ResultFragment { keep_visit: Some(keep), error: format!("{e}{note}"), ..ResultFragment::default() };
            return frag.html();
        }
    };
    let boxes = refreshed(state, &inst, &f.psn_no, &f.insuplc, Date::parse(f.end.trim()).ok()).await;
    ResultFragment { keep_visit: Some(mdtrt_id), result: Some(result_view(&out, commit)), ..ResultFragment::with_boxes(&boxes) }.html()
}

fn amount(v: &Value, k: &str) -> i64 {
    json_fen(v.get(k))
}

/// What a (pre-)settlement's answer shows: each fund's amount with its rule, the totals in yuan, and
/// for a settlement its number and slip.
#[derive(Debug, PartialEq, Eq)]
pub struct ResultView {
    pub committed: bool,
    pub setl_id: String,
    pub slip_href: String,
    /// (layer, amount in yuan, rule)
    pub lines: Vec<(String, String, String)>,
    pub total: String,
    pub inscp: String,
    pub fund: String,
    pub hosp: String,
    pub psn: String,
}

/// The view of a national answer (2303/2304, 2206/2207): its `setlinfo` and the applied layers of its
/// explanation.
pub fn result_view(out: &Value, committed: bool) -> ResultView {
    let info = out.get("setlinfo").cloned().unwrap_or(Value::Null);
    let setl_id = info.get("setl_id").and_then(Value::as_str).unwrap_or("").to_string();
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let lines = out
        .get("explanation")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| e.get("applied").and_then(Value::as_bool).unwrap_or(false))
                .map(|e| (text(e, "name"), yuan(amount(e, "amount")), text(e, "text")))
                .collect()
        })
        .unwrap_or_default();
    ResultView {
        committed,
        slip_href: if committed { format!("/web/slip/{}", urlencode(&setl_id)) } else { String::new() },
        setl_id,
        lines,
        total: yuan(amount(&info, "medfee_sumamt")),
        inscp: yuan(amount(&info, "inscp_scp_amt")),
        fund: yuan(amount(&info, "fund_pay_sumamt")),
        hosp: yuan(amount(&info, "hosp_part_amt")),
        psn: yuan(amount(&info, "psn_part_amt")),
    }
}

/// The answer to a window action (`templates/window_result.html`), swapped into `#settle-result`: the
/// visit id back into the form, a message or the result, and the boxes the action changed, out of band.
#[derive(Template, Default)]
#[template(path = "window_result.html")]
pub struct ResultFragment<'a> {
    /// The form's visit id, replaced out of band (empty: a new visit next time).
    pub keep_visit: Option<String>,
    pub error: String,
    pub ok: String,
    pub result: Option<ResultView>,
    pub acc: Option<AccBox<'a>>,
    pub visits: Option<VisitsBox<'a>>,
    pub done: Option<DoneBox<'a>>,
}

impl<'a> ResultFragment<'a> {
    fn with_boxes(b: &'a Boxes) -> ResultFragment<'a> {
        ResultFragment { acc: b.acc_box(true), visits: b.visits_box(true), done: b.done_box(true), ..ResultFragment::default() }
    }
    fn html(&self) -> Result<String, String> {
        self.render().map_err(|e| {
            tracing::error!(error = %e, "template window_result.html failed");
            "系统暂时无法处理，请稍后重试".to_string()
        })
    }
}

/// The form carries the patient's key, not the ID number (a hospital system may post the ID number
/// itself); the national message needs the ID number.
async fn with_cert(state: &AppState, mut f: SettleForm) -> Result<SettleForm, String> {
    let c = f.cert_no.trim();
    if !super::looks_like_id_no(c) {
        let key = state.web.pid_key(&state.store).await.map_err(|e| e.message)?;
        f.cert_no = key.decode(c).ok_or_else(|| "患者信息无效，请重新查找患者".to_string())?;
    }
    Ok(f)
}

/// An action's fragment, or its refusal as an error fragment (still 200, so htmx swaps it in).
fn answer(r: Result<String, String>) -> Response {
    match r {
        Ok(html) => fragment(html),
        Err(e) => fragment_error(&e),
    }
}

pub async fn presettle(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<SettleForm>) -> Response {
    let f = match with_cert(&state, f).await {
        Ok(f) => f,
        Err(e) => return fragment_error(&e),
    };
    answer(run_settle(&state, &u, &f, false).await)
}

pub async fn settle(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<SettleForm>) -> Response {
    let f = match with_cert(&state, f).await {
        Ok(f) => f,
        Err(e) => return fragment_error(&e),
    };
    answer(run_settle(&state, &u, &f, true).await)
}

#[derive(Deserialize)]
pub struct CancelForm {
    setl_id: String,
    mdtrt_id: String,
    psn_no: String,
    insuplc: String,
    /// Why the settlement is cancelled (required; kept in the audit log with the settlement number).
    #[serde(default)]
    reason: String,
}

pub async fn cancel(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<CancelForm>) -> Response {
    let inst = match institution_of(&state, &u).await {
        Ok(i) => i,
        Err(e) => return fragment_error(&e.message),
    };
    let reason = f.reason.trim();
    if reason.is_empty() {
        return fragment_error("请填写冲销原因");
    }
    if super::contains_id_like(reason) {
        return fragment_error("冲销原因中请不要填写证件号码");
    }
    if reason.chars().count() > 200 {
        return fragment_error("冲销原因不超过 200 字");
    }
    let setl = state.store.settlement(&f.setl_id).await.ok().flatten();
    let med_type = setl.as_ref().map(|s| s.med_type).unwrap_or(21);
    let infno = if med_type == 21 { national::Infno::InpatientSettleCancel } else { national::Infno::OutpatientSettleCancel };
    let input = serde_json::json!({"data": {"setl_id": f.setl_id, "mdtrt_id": f.mdtrt_id, "psn_no": f.psn_no}});
    match national::internal(&state, &inst, infno, &u.p.username, &f.insuplc, obj(input)).await {
        Ok(_) => {
            if let Err(e) = state.store.audit(&u.p.username, "web.window.cancel", &format!("{}：{reason}", f.setl_id)).await {
                tracing::error!(error = %e, "recording a cancellation's reason failed");
            }
            let on = setl.as_ref().and_then(|s| baozhang_store::num_date(s.setl_date));
            let boxes = refreshed(&state, &inst, &f.psn_no, &f.insuplc, on).await;
            let ok = format!("结算 {} 已冲销（原因：{reason}），基金与个人累计已退回；该就诊可重新结算。", f.setl_id);
            answer(ResultFragment { ok, ..ResultFragment::with_boxes(&boxes) }.html())
        }
        Err(e) => fragment_error(&e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct VisitCancelForm {
    mdtrt_id: String,
    psn_no: String,
    insuplc: String,
    med_type: String,
}

/// 撤销登记: an open visit of this hospital cancelled (2404 / 2202), e.g. one registered by mistake.
pub async fn visit_cancel(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<VisitCancelForm>) -> Response {
    let inst = match institution_of(&state, &u).await {
        Ok(i) => i,
        Err(e) => return fragment_error(&e.message),
    };
    match cancel_visit(&state, &inst, &u, &f.mdtrt_id, &f.psn_no, &f.med_type, &f.insuplc).await {
        Ok(()) => {
            let boxes = refreshed(&state, &inst, &f.psn_no, &f.insuplc, None).await;
            let ok = format!("就诊登记 {} 已撤销。", f.mdtrt_id);
            answer(ResultFragment { keep_visit: Some(String::new()), ok, ..ResultFragment::with_boxes(&boxes) }.html())
        }
        Err(e) => fragment_error(&e),
    }
}

/// The A5 settlement slip of a settlement (PDF): for the hospital that settled it, or a region user
/// whose region covers the patient (name masked for them).
#[derive(Deserialize, Default)]
pub struct SlipQ {
    /// A re-settlement adjustment of the settlement: print the settlement as that adjustment left it.
    #[serde(default)]
    adj: Option<String>,
}

pub async fn slip(State(state): State<AppState>, u: WebUser, Path(setl_id): Path<String>, Query(q): Query<SlipQ>) -> WebResult {
    let setl_id = setl_id.trim_end_matches(".pdf").to_string();
    let not_found = || WebError::not_found("未找到该结算，或不在您的查询范围内");
    let mut s = state.store.settlement(&setl_id).await?.ok_or_else(not_found)?;
    let own_hospital = u.p.role == Role::Hospital && s.fixmedins_code == u.p.scope;
    let in_region = u.p.role != Role::Hospital && u.p.covers(s.village_code.as_deref().or(Some(s.insuplc_admdvs.as_str())));
    if !(own_hospital || in_region) {
        return Err(not_found());
    }
    if s.reverses.is_some() {
        return Err(WebError::bad("这是一条冲销记录，请打印原结算的结算单"));
    }
    // A re-settlement slip: the settlement with its adjustments up to the one asked for, explained as
    // that adjustment computed it.
    let mut adjustment = None;
    if let Some(adj_id) = q.adj.as_deref().filter(|a| !a.is_empty()) {
        let all: Vec<_> =
            state.store.adjustments(None, "", Some(&s.psn_no)).await?.into_iter().filter(|a| a.setl_id == s.setl_id).collect();
        let at = all.iter().position(|a| a.adj_id == adj_id).ok_or_else(|| WebError::not_found("没有这笔重新结算调整"))?;
        let psn_before = s.psn_part_amt + all[..at].iter().map(|a| a.psn_fen).sum::<i64>();
        for a in &all[..=at] {
            s.fund_pay_sumamt += a.fund_pay_fen;
            s.hosp_part_amt += a.hosp_fen;
            s.psn_part_amt += a.psn_fen;
        }
        let a = &all[at];
        s.outcome = a.outcome.clone();
        s.identities = a.identities;
        let reason = baozhang_store::resettle::Reason::parse(&a.reason).map_or(a.reason.clone(), |r| r.name_zh().to_string());
        adjustment = Some(baozhang_slip::SlipAdjustment {
            reason: format!("{reason}（重算批次 #{}，{}）", a.run_id, crate::clock::beijing_text(&a.created_at)),
            psn_before_fen: psn_before,
            psn_change_fen: a.psn_fen,
        });
    }
    let person = state.store.person(&s.id_no).await?;
    let inst = state.store.institution(&s.fixmedins_code).await?;
    let name = person.as_ref().map(|p| if own_hospital { p.name.clone() } else { mask_name(&p.name) }).unwrap_or_default();
    state.store.log_access(&u.p.username, u.p.role.as_str(), "web.slip", &mask_id(&s.id_no), &format!("打印结算单 {setl_id}")).await?;
    let mdtrt = state.store.mdtrt(&s.mdtrt_id).await?;
    let policy_name = state.policies.by_version(&s.policy_version).map(|p| p.meta.name.clone()).unwrap_or_else(|| s.policy_id.clone());
    let lines: Vec<baozhang_slip::SlipLine> = explanation_lines(&s)
        .into_iter()
        .filter(|l| l.fund.is_some())
        .map(|l| baozhang_slip::SlipLine {
            rule: l.rule().to_string(),
            name: l.name,
            fund_code: l.fund.unwrap_or_default(),
            amount_fen: l.amount_fen,
            basis: l.basis,
            illustrative: l.illustrative,
        })
        .collect();
    let region = s.insuplc_admdvs.clone();
    let county_name = state.web.region_names(&state.store).await.ok().and_then(|m| m.get(&region).cloned()).unwrap_or_default();
    let data = baozhang_slip::SlipData {
        title: format!("{county_name}基本医疗保险“一站式”结算单"),
        setl_id: s.setl_id.clone(),
        mdtrt_id: s.mdtrt_id.clone(),
        institution: inst.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| s.fixmedins_code.clone()),
        institution_code: s.fixmedins_code.clone(),
        patient_name: name,
        id_no_masked: mask_id(&s.id_no),
        psn_no: s.psn_no.clone(),
        identities: {
            let ids = IdentitySet::from_bits(s.identities as u16);
            if ids.is_empty() {
                "普通居民".into()
            } else {
                ids.names_zh()
            }
        },
        med_type: med_type_name(s.med_type).into(),
        begin_date: mdtrt.map(|m| date_text(m.begn_date)).unwrap_or_default(),
        setl_date: date_text(s.setl_date),
        policy: format!("{policy_name}（{}）", s.policy_version),
        medfee_sumamt_fen: s.medfee_sumamt,
        fulamt_ownpay_fen: s.fulamt_ownpay_amt,
        overlmt_selfpay_fen: s.overlmt_selfpay,
        preselfpay_fen: s.preselfpay_amt,
        inscp_scp_fen: s.inscp_scp_amt,
        lines,
        fund_pay_sumamt_fen: s.fund_pay_sumamt,
        hosp_part_fen: s.hosp_part_amt,
        psn_part_fen: s.psn_part_amt,
        operator: u.p.username.clone(),
        printed_at: crate::clock::readable(crate::clock::unix_ms_now()),
        cancelled: s.cancelled_by.is_some(),
        adjustment,
    };
    state.web.slip_renderer()?;
    let web = state.web.clone();
    let pdf = tokio::task::spawn_blocking(move || {
        web.slip_renderer()
            .and_then(|r| r.render(&data).map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("结算单生成失败：{e}"))))
    })
    .await
    .map_err(|_| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "结算单生成失败"))??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"slip-{}.pdf\"", s.setl_id)),
        ],
        pdf,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HashMap<String, String> {
        [("620422", "会宁县"), ("620422100", "会师镇")].into_iter().map(|(c, n)| (c.to_string(), n.to_string())).collect()
    }

    fn inst() -> Institution {
        Institution {
            fixmedins_code: "H62042200001".into(),
            name: "会宁县人民医院".into(),
            hosp_lv: 2,
            admdvs: "620422".into(),
            secret: String::new(),
            disabled: false,
            hosp_grade: 0,
            primary_care: false,
        }
    }

    fn person() -> PersonRecord {
        PersonRecord {
            id_no: "62042219800101123X".into(),
            name: "张小明".into(),
            sex: "男".into(),
            birth_date: 19800101,
            household_no: Some("H1".into()),
            relation: None,
            village_code: Some("620422100201".into()),
            psn_no: Some("P1".into()),
        }
    }

    fn enrolment(insured: bool) -> EnrolmentRow {
        EnrolmentRow {
            id_no: "62042219800101123X".into(),
            psn_no: "P1".into(),
            year: 2018,
            status: if insured { "正常参保".into() } else { "暂停参保".into() },
            insured,
            insured_admdvs: "620422".into(),
            flags: 0,
            flag_date: None,
            premium_fen: 18_000,
            subsidy_fen: 0,
            subsidy_source: None,
        }
    }

    fn settlement(id: &str, cancelled: bool) -> StoredSettlement {
        StoredSettlement {
            setl_id: id.into(),
            seq: 1,
            reverses: None,
            cancelled_by: cancelled.then(|| "R1".to_string()),
            mdtrt_id: "M1".into(),
            psn_no: "P1".into(),
            id_no: "62042219800101123X".into(),
            village_code: None,
            fixmedins_code: "H62042200001".into(),
            insuplc_admdvs: "620422".into(),
            setl_date: 20180708,
            year: 2018,
            med_type: 21,
            hosp_lv: 2,
            identities: 0,
            policy_id: "p".into(),
            policy_version: "v".into(),
            medfee_sumamt: 800_000,
            fulamt_ownpay_amt: 0,
            overlmt_selfpay: 0,
            preselfpay_amt: 0,
            inscp_scp_amt: 800_000,
            act_pay_dedc: 0,
            fund_pay_sumamt: 600_000,
            hosp_part_amt: 10_000,
            psn_part_amt: 190_000,
            outcome: "[]".into(),
            created_at: String::new(),
            claim_flags: None,
        }
    }

    #[test]
    fn the_institution_is_named_with_its_level_in_words_and_its_place() {
        assert_eq!(institution_line(&inst(), &names()), "会宁县人民医院（H62042200001，二级（县级）医疗机构，所在地 会宁县）");
        let mut other = inst();
        other.admdvs = "999999".into();
        assert!(institution_line(&other, &names()).ends_with("所在地 999999）"), "a place without a name keeps its code");
    }

    #[test]
    fn the_patient_is_shown_with_the_id_number_masked_and_the_enrolment_in_words() {
        let d = Date::new(2018, 12, 20).unwrap();
        let e = enrolment(true);
        let v = patient_view(&person(), Some(&e), IdentitySet::EMPTY.with(Identity::Dibao), "P1", d, true, &names());
        assert_eq!(v.id_masked, "620422********123X");
        assert_eq!(v.name, "张小明", "the clerk holds the card: the name in full");
        assert_eq!(v.enrolment, "已参保（参保地 会宁县）");
        assert_eq!(v.identities, "低保");
        assert_eq!((v.year, v.insured, v.refusal.as_deref()), (2018, true, None));

        let v = patient_view(&person(), Some(&e), IdentitySet::EMPTY, "P1", d, false, &names());
        assert_eq!(v.identities, "普通居民");
        assert_eq!(v.refusal.as_deref(), Some("参保地 会宁县 在 2018-12-20 没有生效的结算政策，请联系医保局。"));

        let stopped = enrolment(false);
        let v = patient_view(&person(), Some(&stopped), IdentitySet::EMPTY, "P1", d, true, &names());
        assert_eq!((v.insured, v.enrolment.as_str()), (false, "暂停参保"));
        assert!(v.refusal.is_some_and(|r| r.contains("未参保或已停保")));
        let v = patient_view(&person(), None, IdentitySet::EMPTY, "P1", d, true, &names());
        assert_eq!(v.enrolment, "未参保");
    }

    #[test]
    fn a_result_reads_the_answer_in_yuan_with_only_the_layers_applied() {
        let out = serde_json::json!({
            "setlinfo": {"setl_id": "S 1", "medfee_sumamt": "8000.00", "inscp_scp_amt": "7500.00",
                         "fund_pay_sumamt": "5000.50", "hosp_part_amt": 0, "psn_part_amt": "2999.50"},
            "explanation": [
                {"name": "基本医保", "amount": "5000.50", "text": "（7500 − 起付线）× 70%", "applied": true},
                {"name": "大病保险", "amount": "0", "text": "未达起付线", "applied": false},
            ],
        });
        let v = result_view(&out, true);
        assert_eq!(v.setl_id, "S 1");
        assert_eq!(v.slip_href, "/web/slip/S%201");
        assert_eq!(v.lines, vec![("基本医保".to_string(), "5,000.50".to_string(), "（7500 − 起付线）× 70%".to_string())]);
        assert_eq!((v.total.as_str(), v.inscp.as_str()), ("8,000.00", "7,500.00"));
        assert_eq!((v.fund.as_str(), v.hosp.as_str(), v.psn.as_str()), ("5,000.50", "0.00", "2,999.50"));
        assert_eq!(result_view(&out, false).slip_href, "", "a pre-settlement has no slip");
    }

    #[test]
    fn the_settlements_offer_slip_and_cancellation_only_while_valid() {
        let t = done_table(&[settlement("S1", false), settlement("S2", true)]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][7].shown_text(), "有效");
        assert_eq!(t.rows[0][4].shown_text(), "6,000.00");
        let Cell::Parts(parts) = &t.rows[0][8] else { panic!("actions") };
        assert!(matches!(&parts[0], Part::Link(l) if l.href == "/web/slip/S1" && l.new_tab));
        let Part::Form(f) = &parts[1] else { panic!("cancel form") };
        assert_eq!(
            (f.action.as_str(), f.target.as_deref(), f.testid.as_deref()),
            ("/web/window/cancel", Some("#settle-result"), Some("cancel-form"))
        );
        assert!(f.hidden.contains(&("setl_id".to_string(), "S1".to_string())));
        assert_eq!(t.rows[1][7].shown_text(), "已冲销");
        assert!(matches!(&t.rows[1][8], Cell::Text(s) if s.is_empty()), "a cancelled settlement has no actions");
    }

    #[test]
    fn an_open_visit_carries_its_fees_for_the_form() {
        let m = Mdtrt {
            mdtrt_id: "M9".into(),
            psn_no: "P1".into(),
            id_no: "62042219800101123X".into(),
            fixmedins_code: "H62042200001".into(),
            med_type: 21,
            begn_date: 20180601,
            insuplc_admdvs: "620422".into(),
            referral_ok: true,
            major_disease: false,
            status: "open".into(),
            setl_id: None,
            end_date: None,
            ipt_otp_no: String::new(),
        };
        let t = visits_table(&[(m, [123_456, 100, 200, 300, 122_856], 4)], "620422");
        assert_eq!(t.rows[0][2].shown_text(), "2018-06-01");
        assert_eq!(t.rows[0][4].shown_text(), "1,234.56");
        let Cell::Parts(parts) = &t.rows[0][6] else { panic!("actions") };
        let Part::Button(b) = &parts[0] else { panic!("pick button") };
        assert!(b.data.contains(&("mdtrt".to_string(), "M9".to_string())));
        assert!(b.data.contains(&("total".to_string(), "1234.56".to_string())));
        assert!(b.data.contains(&("pick-visit".to_string(), String::new())));
        let Part::Form(f) = &parts[1] else { panic!("cancel form") };
        assert_eq!(f.testid.as_deref(), Some("visit-cancel"));
    }

    #[test]
    fn an_answer_swaps_the_boxes_and_the_visit_id_out_of_band() {
        let boxes = Boxes {
            path: "/web/window?p=k".into(),
            acc: Some((Table::new("accumulators", "累计", vec!["层次"]), 2, 1)),
            visits: Some(Table::new("visits", "就诊", vec!["就诊编号"])),
            done: Some(done_table(&[settlement("S<1>", false)])),
        };
        let html = ResultFragment { keep_visit: Some("M\"1".into()), ok: "已撤销 <b>".into(), ..ResultFragment::with_boxes(&boxes) }
            .html()
            .unwrap();
        assert!(
            html.contains("<input type=\"hidden\" name=\"mdtrt_id\" id=\"mdtrt_id\" value=\"M&#34;1\" hx-swap-oob=\"true\">"),
            "{html}"
        );
        assert!(html.contains("<div class=\"alert ok\" role=\"status\">已撤销 &#60;b&#62;</div>"), "{html}");
        assert!(html.contains("<div id=\"acc-box\" hx-swap-oob=\"true\">") && html.contains("本年度已结算 2 次，住院 1 次。"), "{html}");
        assert!(html.contains("<div id=\"visits-box\" hx-swap-oob=\"true\">"), "{html}");
        assert!(html.contains("<div id=\"done-list\" hx-swap-oob=\"true\">") && html.contains("S&#60;1&#62;"), "{html}");
        assert!(html.contains("href=\"/web/window?p=k&#38;export=done\""), "{html}");
    }
}
