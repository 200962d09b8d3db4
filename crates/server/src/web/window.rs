//! The one-stop settlement window (一站式结算窗口) of a hospital: find the patient, see identities,
//! enrolment and the year's accumulators, enter the bill (or take a visit whose fees came through 2301),
//! pre-settle, settle, cancel, and print the A5 slip. Every action is a national transaction run through
//! [`national::internal`] — the same checks, writer, ledger and idempotency as a hospital system's message.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use baozhang_core::{Date, Identity, IdentitySet};
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::ledger::{read_accumulators, SettlementFilter};
use baozhang_store::service::{Institution, PersonRecord};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::person::{explanation_lines, json_fen, med_type_name};
use super::table::{ButtonPart, Cell, InlineForm, Input, Part, Table};
use super::{date_text, esc, fragment, fragment_error, urlencode, yuan, Page, WebError, WebResult, WebUser};
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

pub async fn window_page(State(state): State<AppState>, u: WebUser, Query(q): Query<WindowQ>) -> WebResult {
    let inst = institution_of(&state, &u).await?;
    let mut page = Page::new("一站式结算窗口");
    page.push(&format!(
        "<p class=\"muted\">{}（{}，{} 级，所在区划 {}）</p>\
         <form class=\"inline search-big\" method=\"post\" action=\"/web/window/find\"><label>患者出示的居民身份证号码\
         <input name=\"q\" value=\"{}\" required autofocus autocomplete=\"off\" data-testid=\"window-q\"></label><button>查找</button></form>",
        esc(&inst.name),
        esc(&inst.fixmedins_code),
        inst.hosp_lv,
        esc(&inst.admdvs),
        if super::looks_like_id_no(&q.q) { String::new() } else { esc(q.q.trim()) }
    ));
    // An ID number typed into the address is refused (the search box posts it).
    if super::looks_like_id_no(&q.q) {
        return Err(super::id_in_address());
    }
    let found = if q.missing {
        None
    } else if !q.p.trim().is_empty() {
        match state.web.pid_key(&state.store).await?.decode(q.p.trim()) {
            Some(id_no) => state.store.person(&id_no).await?,
            None => None,
        }
    } else if q.q.trim().is_empty() {
        return Ok(page.render(&u));
    } else {
        lookup(&state, &q.q).await?
    };
    let Some(person) = found else {
        page.push("<div class=\"alert error\" role=\"alert\">未找到该人员：请核对证件号码或社保卡号；未登记的人员请到医保经办机构办理参保登记。</div>");
        return Ok(page.render(&u));
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

    let mut info = format!(
        "<section class=\"info\" data-testid=\"patient\"><dl><dt>姓名</dt><dd>{}</dd><dt>证件号码</dt><dd>{}</dd><dt>性别</dt><dd>{}</dd>\
         <dt>人员编号</dt><dd>{}</dd><dt>{} 年人员身份</dt><dd>{}</dd><dt>{} 年参保</dt><dd>{}</dd></dl></section>",
        esc(&person.name),
        esc(&mask_id(&person.id_no)),
        esc(&person.sex),
        esc(&psn_no),
        year,
        esc(&if ids.is_empty() { "普通居民".into() } else { ids.names_zh() }),
        year,
        match enr {
            Some(e) if e.insured => format!("已参保（参保地 {}）", esc(&e.insured_admdvs)),
            Some(e) => format!("<strong class=\"bad\">{}</strong>", esc(&e.status)),
            None => "<strong class=\"bad\">未参保</strong>".into(),
        }
    );
    let insured_area = enr.map(|e| e.insured_admdvs.clone()).unwrap_or_default();
    let policy = state.policies.for_area(&insured_area, date);
    // The year's accumulators (refreshed out of band after each settlement or cancellation).
    if !psn_no.is_empty() {
        info.push_str(&acc_box(&state, policy, &psn_no, date.year(), &u.path).await?);
    }
    page.push(&info);

    if enr.is_none_or(|e| !e.insured) {
        page.push("<div class=\"alert error\" role=\"alert\">该人员本年度未参保或已停保，不能按医保结算。</div>");
        return Ok(page.render(&u));
    }
    let Some(policy) = policy else {
        page.push(&format!("<div class=\"alert error\">参保地 {} 在 {date} 没有生效的结算政策，请联系医保局。</div>", esc(&insured_area)));
        return Ok(page.render(&u));
    };

    // Open visits (registered, or with fees uploaded through 2301), then the entry form.
    page.push(&visits_box(&state, &inst, &psn_no, &insured_area, &u.path).await?);
    let d = date.to_string();
    page.push(&format!(
        "<section class=\"calc\"><h2>录入费用并结算</h2><p class=\"muted\">适用政策：{}（版本 {}）。政策范围内费用 = 总额 − 全自费 − 超限价自费 − 先行自付。</p>\
         <form id=\"settle-form\" class=\"grid-form\" hx-target=\"#settle-result\" data-testid=\"settle-form\">\
         <input type=\"hidden\" name=\"psn_no\" value=\"{}\"><input type=\"hidden\" name=\"cert_no\" value=\"{}\">\
         <input type=\"hidden\" name=\"insuplc\" value=\"{}\"><input type=\"hidden\" name=\"mdtrt_id\" id=\"mdtrt_id\" value=\"\">\
         <label>医疗类别<select name=\"med_type\"><option value=\"21\">住院</option><option value=\"14\">门诊慢特病</option></select></label>\
         <label>入院（就诊）日期<input type=\"date\" name=\"begin\" value=\"{d}\" required></label>\
         <label>出院（结算）日期<input type=\"date\" name=\"end\" value=\"{d}\" required></label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"referral_ok\" value=\"1\" checked> 按规定转诊</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"major_disease\" value=\"1\"> 大病集中救治病种</label>\
         <label>主要诊断编码（ICD-10，可空）<input name=\"dise_codg\" placeholder=\"如 C16.9\" autocomplete=\"off\"></label>\
         {}\
         <div class=\"actions\"><button type=\"button\" hx-post=\"/web/window/presettle\" hx-include=\"#settle-form\" class=\"secondary\">预结算</button>\
         <button type=\"button\" hx-post=\"/web/window/settle\" hx-include=\"#settle-form\" hx-confirm=\"确认按以上费用结算？\">结算</button></div></form>\
         <div id=\"settle-result\" aria-live=\"polite\"></div></section>",
        esc(&policy.meta.name),
        esc(&policy.version),
        esc(&psn_no),
        esc(&state.web.pid_key(&state.store).await?.encode(&person.id_no)),
        esc(&insured_area),
        super::policy::bill_fields()
    ));

    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&done_table(&state, &inst, &psn_no).await?], x).await;
    }
    page.push(&done_list(&state, &inst, &psn_no).await?);
    Ok(page.render(&u))
}

/// The person's accumulators of `year`: settlements counted and each layer's running figures, in a box
/// that a settlement or a cancellation replaces out of band.
async fn acc_box(
    state: &AppState,
    policy: Option<&baozhang_core::Policy>,
    psn_no: &str,
    year: u16,
    path: &str,
) -> Result<String, WebError> {
    let acc = read_accumulators(&state.store, psn_no, year).await?;
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
    Ok(format!(
        "<div id=\"acc-box\"><p class=\"muted\" data-testid=\"year-count\">本年度已结算 {} 次，住院 {} 次。</p>{}</div>",
        acc.settlements,
        acc.acc.stays_total(),
        t.html(path)
    ))
}

/// The hospital's open visits of the person (registered and not settled), each with 选择 (take its fees
/// into the form) and 撤销登记 (2404 / 2202: a visit registered by mistake, or whose pre-settlement was
/// abandoned), in a box replaced out of band after each action.
async fn visits_box(state: &AppState, inst: &Institution, psn_no: &str, insuplc: &str, path: &str) -> Result<String, WebError> {
    let visits = state.store.open_visits(&inst.fixmedins_code, psn_no).await?;
    let mut vt =
        Table::new("visits", "本院未结算的就诊", vec!["就诊编号", "医疗类别", "就诊日期", "费用明细", "医疗费总额", "政策范围内", "操作"]);
    vt.empty = "没有未结算的就诊（可直接在下方录入费用）";
    for (m, sums, n) in &visits {
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
    Ok(format!("<div id=\"visits-box\">{}</div>", vt.html(path)))
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

/// `html` (a box whose first tag is `<div id="…">`) marked to replace the box of that id out of band.
fn oob(html: String) -> String {
    html.replacen("\">", "\" hx-swap-oob=\"true\">", 1)
}

/// Every box of the page an action changes — the year's count and accumulators, the open visits, the
/// settlements — to swap in out of band next to the action's message.
async fn refreshed(state: &AppState, inst: &Institution, psn_no: &str, insuplc: &str, on: Option<Date>) -> String {
    let path = window_path(state, psn_no).await;
    let day = on.unwrap_or_else(crate::clock::today);
    let mut o = String::new();
    if let Ok(h) = acc_box(state, state.policies.for_area(insuplc, day), psn_no, day.year(), &path).await {
        o.push_str(&oob(h));
    }
    if let Ok(h) = visits_box(state, inst, psn_no, insuplc, &path).await {
        o.push_str(&oob(h));
    }
    o.push_str(&done_list_oob(state, inst, psn_no).await);
    o
}

/// This institution's settlements of the person, in a box that a settlement or a cancellation replaces
/// out of band (so the list is current without reloading the page).
async fn done_list(state: &AppState, inst: &Institution, psn_no: &str) -> Result<String, WebError> {
    let st = done_table(state, inst, psn_no).await?;
    Ok(format!("<div id=\"done-list\">{}</div>", st.html(&window_path(state, psn_no).await)))
}

/// The hospital's settlements of the patient (人员编号: the export link names the 人员编号, never an ID number).
async fn done_table(state: &AppState, inst: &Institution, psn_no: &str) -> Result<Table, WebError> {
    let psn_no = psn_no.to_string();
    let f = SettlementFilter {
        fixmedins_code: Some(inst.fixmedins_code.clone()),
        psn_no: Some(psn_no.clone()),
        limit: 100,
        ..Default::default()
    };
    let done = state.store.settlements(&f).await?;
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
    Ok(st)
}

/// The refreshed list of settlements, swapped in by htmx next to a fragment's message.
async fn done_list_oob(state: &AppState, inst: &Institution, psn_no: &str) -> String {
    match done_list(state, inst, psn_no).await {
        Ok(html) => html.replacen("<div id=\"done-list\">", "<div id=\"done-list\" hx-swap-oob=\"true\">", 1),
        Err(_) => String::new(),
    }
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
    let keep = format!("<input type=\"hidden\" name=\"mdtrt_id\" id=\"mdtrt_id\" value=\"{}\" hx-swap-oob=\"true\">", esc(&mdtrt_id));
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            // A refused (pre-)settlement leaves no admission behind: a visit registered for it is cancelled.
            let mut note = String::new();
            let mut keep = keep;
            if registered_now {
                match cancel_visit(state, &inst, u, &mdtrt_id, &f.psn_no, &f.med_type, &f.insuplc).await {
                    Ok(()) => {
                        keep = "<input type=\"hidden\" name=\"mdtrt_id\" id=\"mdtrt_id\" value=\"\" hx-swap-oob=\"true\">".into();
                        note = "（本次登记的就诊已撤销）".into();
                    }
                    Err(c) => tracing::warn!(error = %c, "cancelling the visit of a refused settlement failed"),
                }
            }
            return Ok(format!("{keep}<div class=\"alert error\" role=\"alert\">{}{note}</div>", esc(&e.to_string())));
        }
    };
    let boxes = refreshed(state, &inst, &f.psn_no, &f.insuplc, Date::parse(f.end.trim()).ok()).await;
    Ok(format!("{keep}{}{boxes}", result_from_output(&out, commit)))
}

fn amount(v: &Value, k: &str) -> i64 {
    json_fen(v.get(k))
}

fn result_from_output(out: &Value, committed: bool) -> String {
    let info = out.get("setlinfo").cloned().unwrap_or(Value::Null);
    let setl_id = info.get("setl_id").and_then(Value::as_str).unwrap_or("");
    let mut rows = String::new();
    if let Some(a) = out.get("explanation").and_then(Value::as_array) {
        for e in a.iter().filter(|e| e.get("applied").and_then(Value::as_bool).unwrap_or(false)) {
            rows.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"rule\">{}</td></tr>",
                esc(e.get("name").and_then(Value::as_str).unwrap_or("")),
                yuan(amount(e, "amount")),
                esc(e.get("text").and_then(Value::as_str).unwrap_or(""))
            ));
        }
    }
    let head = if committed {
        format!(
            "<h3>结算成功 · 结算编号 <span data-testid=\"setl-id\">{}</span></h3><p><a class=\"btn\" href=\"/web/slip/{}\" target=\"_blank\" data-testid=\"slip-link\">打印结算单（PDF）</a></p>",
            esc(setl_id),
            urlencode(setl_id)
        )
    } else {
        "<h3>预结算结果（未入账）</h3>".to_string()
    };
    format!(
        "<div class=\"result\" data-testid=\"result\">{head}<table class=\"plain\"><thead><tr><th>支付项目</th><th>金额（元）</th><th>依据</th></tr></thead><tbody>{rows}</tbody>\
         <tfoot><tr><th>医疗费总额</th><td class=\"num\">{}</td><td>政策范围内 {}</td></tr>\
         <tr><th>基金支付合计</th><td class=\"num\" data-testid=\"fund-total\">{}</td><td></td></tr>\
         <tr><th>医院承担</th><td class=\"num\">{}</td><td></td></tr>\
         <tr class=\"strong\"><th>个人负担（患者应付）</th><td class=\"num\" data-testid=\"psn-part\">{}</td><td></td></tr></tfoot></table></div>",
        yuan(amount(&info, "medfee_sumamt")),
        yuan(amount(&info, "inscp_scp_amt")),
        yuan(amount(&info, "fund_pay_sumamt")),
        yuan(amount(&info, "hosp_part_amt")),
        yuan(amount(&info, "psn_part_amt")),
    )
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

pub async fn presettle(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<SettleForm>) -> Response {
    let f = match with_cert(&state, f).await {
        Ok(f) => f,
        Err(e) => return fragment_error(&e),
    };
    match run_settle(&state, &u, &f, false).await {
        Ok(html) => fragment(html),
        Err(e) => fragment_error(&e),
    }
}

pub async fn settle(State(state): State<AppState>, u: WebUser, axum::Form(f): axum::Form<SettleForm>) -> Response {
    let f = match with_cert(&state, f).await {
        Ok(f) => f,
        Err(e) => return fragment_error(&e),
    };
    match run_settle(&state, &u, &f, true).await {
        Ok(html) => fragment(html),
        Err(e) => fragment_error(&e),
    }
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
            fragment(format!(
                "<div class=\"alert ok\" role=\"status\">结算 {} 已冲销（原因：{}），基金与个人累计已退回；该就诊可重新结算。</div>{}",
                esc(&f.setl_id),
                esc(reason),
                refreshed(&state, &inst, &f.psn_no, &f.insuplc, on).await
            ))
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
        Ok(()) => fragment(format!(
            "<div class=\"alert ok\" role=\"status\">就诊登记 {} 已撤销。</div><input type=\"hidden\" name=\"mdtrt_id\" id=\"mdtrt_id\" value=\"\" hx-swap-oob=\"true\">{}",
            esc(&f.mdtrt_id),
            refreshed(&state, &inst, &f.psn_no, &f.insuplc, None).await
        )),
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
