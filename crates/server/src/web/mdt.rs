//! 大病集中救治台账 (R-MDT-1): the region's major-disease list (ICD-10, editable, each list marked with
//! its source), the cases — found in settlements with a listed diagnosis or entered by hand — with
//! hospital, dates, status, referral and follow-ups, and the treatment rate (target 100 %).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::programmes::valid_icd;
use baozhang_core::{Date, IdCardNo};
use baozhang_ingest::health::{cases_from_settlements, list_for, treatment_rate};
use baozhang_store::date_num;
use baozhang_store::programmes::{MdtCase, MdtDisease, MdtList, MDT_STATUSES};
use serde::Deserialize;

use super::health::{bp, may_manage, require_manage, unmask_link, Ctx};
use super::table::{Cell, Table};
use super::{card, esc, Page, WebError, WebResult, WebUser};
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct MdtQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    unmasked: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn disease_name(lists: &[MdtList], list: &str, no: i64) -> String {
    lists
        .iter()
        .find(|l| l.list_code == list)
        .and_then(|l| l.diseases.iter().find(|d| d.no == no))
        .map_or_else(|| format!("{list} #{no}"), |d| d.name.clone())
}

fn status_options(current: &str) -> String {
    MDT_STATUSES.iter().map(|s| format!("<option{}>{s}</option>", if *s == current { " selected" } else { "" })).collect()
}

pub async fn mdt_page(State(state): State<AppState>, u: WebUser, Query(q): Query<MdtQ>) -> WebResult {
    let ctx = Ctx::new(&state, &u, q.region.as_deref(), q.unmasked.as_deref() == Some("1"), "web.mdt").await?;
    let lists = state.store.mdt_lists().await?;
    let cases = state.store.mdt_cases(&ctx.region).await?;
    let institutions: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
    let (treated, counted) = treatment_rate(&cases);
    let mut t = Table::new(
        "cases",
        "大病集中救治台账",
        vec![
            "编号",
            "村",
            "姓名",
            "证件号码",
            "病种",
            "诊断编码",
            "定点医院",
            "确诊日期",
            "救治状态",
            "救治日期",
            "转诊",
            "来源",
            "更新时间",
        ],
    );
    t.empty = "台账中还没有病例";
    t.page_size = 25;
    for c in &cases {
        let [village, name, id] = ctx.person(&c.row.id_no, &c.who);
        let status_class = match c.row.status.as_str() {
            "待救治" | "放弃治疗" => "new",
            "救治中" | "已转诊" => "reopened",
            _ => "",
        };
        t.rows.push(vec![
            Cell::Link(c.row.id.to_string(), format!("/web/mdt/case/{}", c.row.id)),
            village,
            name,
            id,
            Cell::text(disease_name(&lists, &c.row.list_code, c.row.disease_no)),
            Cell::text(&c.row.dise_codg),
            Cell::text(institutions.get(&c.row.hospital).cloned().unwrap_or_else(|| c.row.hospital.clone())),
            Cell::text(super::date_text(c.row.diagnosis_date)),
            Cell::tag(status_class, &c.row.status),
            Cell::text(c.row.treated_date.map(super::date_text).unwrap_or_default()),
            Cell::text(&c.row.referral),
            Cell::text(&c.row.origin),
            Cell::text(c.row.updated_at.get(..10).unwrap_or("")),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        ctx.log_shown(&state, &u, Some(x)).await?;
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let list = list_for(&lists, if ctx.region.is_empty() { "62" } else { &ctx.region });
    let count = |s: &str| cases.iter().filter(|c| c.row.status == s).count();
    let mut page = Page::new(format!("大病集中救治 · {}", ctx.place(&ctx.region)));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &ctx.region).await?;
    page.crumbs.push(("大病救治".into(), String::new()));
    if let Some(d) = q.done.as_deref() {
        page.push(&format!("<p class=\"ok\" role=\"status\" data-testid=\"mdt-done\">{}</p>", esc(d)));
    }
    page.push(&format!(
        "<div class=\"cards\" data-testid=\"mdt-cards\">{}{}{}{}</div>",
        card("救治率", &super::pct(bp(treated, counted)), &format!("{treated} / {counted} 例，目标 100%")),
        card("病例", &format!("{} 例", cases.len()), &format!("来自结算 {} 例", cases.iter().filter(|c| c.row.origin == "结算").count())),
        card("待救治", &format!("{} 例", count("待救治")), &format!("放弃治疗 {} 例", count("放弃治疗"))),
        card("救治中 / 已转诊", &format!("{} / {} 例", count("救治中"), count("已转诊")), ""),
    ));
    page.push(&format!(
        "<p class=\"muted\">病种目录：{}（<a href=\"/web/mdt/lists\">查看与编辑目录</a>）。救治率 = 已救治、救治中、已转诊及曾救治的病例 ÷ 全部病例（未经救治即死亡的不计入）。</p>{}",
        list.map_or_else(|| "本区划未配置目录".to_string(), |l| format!("{}，{} 种", esc(&l.name), l.diseases.len())),
        unmask_link(&u, &ctx)
    ));
    page.push(&t.html(&u.path));
    if may_manage(&u) {
        let year = super::dashboard::default_year(&state).await;
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>从结算中发现病例</h2><form method=\"post\" action=\"/web/mdt/scan\" class=\"inline\" data-testid=\"scan-form\">\
             <input type=\"hidden\" name=\"region\" value=\"{}\"><label>年度<input name=\"year\" value=\"{year}\" inputmode=\"numeric\" size=\"5\"></label>\
             <button>发现新病例</button></form><p class=\"muted\">主要诊断在本区划病种目录内、未撤销的结算，为尚无该病种病例的患者建立病例（状态“已救治”）。</p></section>",
            esc(&ctx.region)
        ));
        if let Some(l) = list {
            let opts: String =
                l.diseases.iter().map(|d| format!("<option value=\"{}\">{}. {}</option>", d.no, d.no, esc(&d.name))).collect();
            page.push(&format!(
                "<section class=\"calc noprint\"><h2>手工登记病例</h2><form method=\"post\" action=\"/web/mdt/case\" class=\"grid-form\" data-testid=\"case-form\">\
                 <input type=\"hidden\" name=\"list_code\" value=\"{}\">\
                 <label>证件号码<input name=\"id_no\" required autocomplete=\"off\"></label>\
                 <label>病种<select name=\"disease_no\">{opts}</select></label>\
                 <label>诊断编码（ICD-10，可空）<input name=\"dise_codg\" placeholder=\"如 H25.9\"></label>\
                 <label>定点医院<input name=\"hospital\" required value=\"H62042200001\"></label>\
                 <label>确诊日期<input type=\"date\" name=\"diagnosis_date\" required></label>\
                 <label>救治状态<select name=\"status\">{}</select></label>\
                 <div class=\"actions\"><button type=\"submit\">登记</button></div></form></section>",
                esc(&l.list_code),
                status_options("待救治")
            ));
        }
    }
    ctx.log_shown(&state, &u, None).await?;
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct ScanForm {
    region: String,
    year: String,
}

pub async fn scan(State(state): State<AppState>, u: WebUser, Form(f): Form<ScanForm>) -> WebResult {
    require_manage(&u, "从结算中发现病例")?;
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    let year: i64 = super::health::parse_year(&f.year)?;
    let (listed, opened) = cases_from_settlements(&state.store, &region, year, &u.p.username).await?;
    state.store.audit(&u.p.username, "mdt.scan", &format!("{region} {year}: {listed} listed visits, {opened} cases opened")).await?;
    let msg = format!("{year} 年有 {listed} 次结算的主要诊断在目录内，新建病例 {opened} 个");
    Ok(Redirect::to(&format!("/web/mdt?region={region}&done={}", super::urlencode(&msg))).into_response())
}

#[derive(Deserialize)]
pub struct CaseForm {
    list_code: String,
    id_no: String,
    disease_no: String,
    #[serde(default)]
    dise_codg: String,
    hospital: String,
    diagnosis_date: String,
    status: String,
}

pub async fn add_case(State(state): State<AppState>, u: WebUser, Form(f): Form<CaseForm>) -> WebResult {
    require_manage(&u, "登记大病病例")?;
    let id = IdCardNo::parse(f.id_no.trim()).map_err(|e| WebError::bad(format!("证件号码无效：{e}")))?;
    let person = state.store.person(id.as_str()).await?.ok_or_else(|| WebError::not_found("登记中没有此人，请先导入名单"))?;
    let enrolments = state.store.enrolments_of(id.as_str()).await?;
    if !u.p.covers_person(person.village_code.as_deref(), &enrolments) {
        return Err(WebError::not_found("登记中没有此人，或不在您的管辖范围内"));
    }
    let lists = state.store.mdt_lists().await?;
    let list = lists.iter().find(|l| l.list_code == f.list_code).ok_or_else(|| WebError::bad("病种目录无效"))?;
    let no: i64 = f.disease_no.trim().parse().map_err(|_| WebError::bad("病种无效"))?;
    let disease = list.diseases.iter().find(|d| d.no == no).ok_or_else(|| WebError::bad("病种不在目录中"))?;
    let code = f.dise_codg.trim().to_ascii_uppercase();
    if !code.is_empty() && !valid_icd(&code) {
        return Err(WebError::bad(format!("诊断编码“{code}”不是 ICD-10 编码")));
    }
    let day = Date::parse(f.diagnosis_date.trim()).map_err(|e| WebError::bad(format!("确诊日期无效：{e}")))?;
    if day > crate::clock::today() || day < id.birth_date() {
        return Err(WebError::bad("确诊日期应在出生日期与今天之间"));
    }
    let status = f.status.trim();
    if !MDT_STATUSES.contains(&status) {
        return Err(WebError::bad(format!("救治状态“{status}”无效")));
    }
    let hospital = f.hospital.trim();
    if hospital.is_empty() || hospital.chars().count() > 60 {
        return Err(WebError::bad("请填写定点医院（不超过 60 字）"));
    }
    let case = MdtCase {
        id: 0,
        id_no: id.as_str().to_string(),
        list_code: list.list_code.clone(),
        disease_no: no,
        dise_codg: code,
        hospital: hospital.to_string(),
        diagnosis_date: date_num(day),
        status: status.to_string(),
        treated_date: (status == "已救治").then(|| date_num(day)),
        referral: String::new(),
        origin: "手工".into(),
        setl_id: String::new(),
        updated_at: String::new(),
    };
    if !state.store.add_mdt_case(&case, &u.p.username).await? {
        return Err(WebError::bad(format!("此人已有“{}”的病例，请在原病例中随访更新", disease.name)));
    }
    let region = person.village_code.unwrap_or_default();
    Ok(Redirect::to(&format!(
        "/web/mdt?region={}&done={}",
        super::urlencode(u.region_in_scope(Some(&region)).unwrap_or("")),
        super::urlencode("病例已登记")
    ))
    .into_response())
}

async fn case_in_scope(state: &AppState, u: &WebUser, id: i64) -> Result<baozhang_store::programmes::With<MdtCase>, WebError> {
    let not_found = || WebError::not_found("未找到该病例，或不在您的管辖范围内");
    let c = state.store.mdt_case(id).await?.ok_or_else(not_found)?;
    let enrolments = state.store.enrolments_of(&c.row.id_no).await?;
    let village = (!c.who.village_code.is_empty()).then_some(c.who.village_code.as_str());
    if !u.p.covers_person(village, &enrolments) {
        return Err(not_found());
    }
    Ok(c)
}

pub async fn case_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Query(q): Query<MdtQ>) -> WebResult {
    let c = case_in_scope(&state, &u, id).await?;
    let ctx = Ctx::new(&state, &u, None, q.unmasked.as_deref() == Some("1"), "web.mdt.case").await?;
    let lists = state.store.mdt_lists().await?;
    let fus = state.store.mdt_followups(id).await?;
    let [village, name, idc] = ctx.person(&c.row.id_no, &c.who);
    let text = |cell: &Cell| match cell {
        Cell::Text(s) | Cell::Link(s, _) => s.clone(),
        _ => String::new(),
    };
    let mut ft = Table::new("followups", "随访记录", vec!["日期", "状态", "情况", "记录人"]);
    ft.empty = "暂无随访";
    for (d, s, n, by) in &fus {
        ft.rows.push(vec![Cell::text(super::date_text(*d)), Cell::text(s), Cell::text(n), Cell::text(by)]);
    }
    let mut page = Page::new(format!("大病病例 #{id}"));
    if !c.who.village_code.is_empty() {
        page.crumbs = super::dashboard::crumbs_for(&state, &u, &c.who.village_code).await.unwrap_or_default();
    }
    page.crumbs.push(("大病救治".into(), format!("/web/mdt?region={}", c.who.village_code)));
    page.crumbs.push((format!("病例 #{id}"), String::new()));
    page.push(&format!(
        "<dl class=\"facts\"><dt>患者</dt><dd>{} {}（{}）</dd><dt>病种</dt><dd>{}（{}）</dd><dt>诊断编码</dt><dd>{}</dd><dt>定点医院</dt><dd>{}</dd>\
         <dt>确诊日期</dt><dd>{}</dd><dt>救治状态</dt><dd data-testid=\"case-status\">{}</dd><dt>转诊</dt><dd>{}</dd><dt>来源</dt><dd>{}{}</dd></dl>{}",
        esc(&text(&name)),
        esc(&text(&idc)),
        esc(&text(&village)),
        esc(&disease_name(&lists, &c.row.list_code, c.row.disease_no)),
        esc(&c.row.list_code),
        esc(&c.row.dise_codg),
        esc(&c.row.hospital),
        super::date_text(c.row.diagnosis_date),
        esc(&c.row.status),
        esc(&c.row.referral),
        esc(&c.row.origin),
        if c.row.setl_id.is_empty() { String::new() } else { format!("（结算 {}）", esc(&c.row.setl_id)) },
        unmask_link(&u, &ctx)
    ));
    page.push(&ft.html(&u.path));
    if may_manage(&u) || u.p.role == crate::auth::Role::Cadre {
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>随访</h2><form method=\"post\" action=\"/web/mdt/case/{id}/follow\" class=\"grid-form\" data-testid=\"follow-form\">\
             <label>日期<input type=\"date\" name=\"date\" required></label><label>救治状态<select name=\"status\">{}</select></label>\
             <label>转诊去向（可空）<input name=\"referral\" value=\"{}\"></label><label>情况<input name=\"note\" required></label>\
             <div class=\"actions\"><button type=\"submit\">记录</button></div></form></section>",
            status_options(&c.row.status),
            esc(&c.row.referral)
        ));
    }
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct FollowForm {
    date: String,
    status: String,
    #[serde(default)]
    referral: String,
    note: String,
}

pub async fn follow_up(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<FollowForm>) -> WebResult {
    if !(may_manage(&u) || u.p.role == crate::auth::Role::Cadre) {
        return Err(WebError::forbidden(format!("{}不能记录随访", u.p.role.name_zh())));
    }
    case_in_scope(&state, &u, id).await?;
    let day = Date::parse(f.date.trim()).map_err(|e| WebError::bad(format!("日期无效：{e}")))?;
    if day > crate::clock::today() {
        return Err(WebError::bad("不能记录将来日期的随访"));
    }
    let status = f.status.trim();
    if !MDT_STATUSES.contains(&status) {
        return Err(WebError::bad(format!("救治状态“{status}”无效")));
    }
    let note = f.note.trim();
    if note.is_empty() || note.chars().count() > 200 {
        return Err(WebError::bad("请填写随访情况（不超过 200 字）"));
    }
    let referral = f.referral.trim();
    state.store.mdt_follow_up(id, date_num(day), status, (!referral.is_empty()).then_some(referral), note, &u.p.username).await?;
    Ok(Redirect::to(&format!("/web/mdt/case/{id}")).into_response())
}

pub async fn lists_page(State(state): State<AppState>, u: WebUser) -> WebResult {
    let own = u.region()?.to_string();
    // The lists that apply somewhere in the user's region (a county sees its province's list).
    let lists: Vec<_> = state
        .store
        .mdt_lists()
        .await?
        .into_iter()
        .filter(|l| l.region_prefix.starts_with(&own) || own.starts_with(&l.region_prefix))
        .collect();
    let mut page = Page::new("大病集中救治病种目录");
    page.crumbs.push(("大病救治".into(), "/web/mdt".into()));
    page.crumbs.push(("病种目录".into(), String::new()));
    page.push("<p class=\"muted\">诊断编码按前缀匹配（去掉小数点后比较，如 C16 匹配 C16.900）。目录随系统提供，可按正式文件修改；每次修改都记入审计日志。</p>");
    for l in &lists {
        let mut t = Table::new(
            "list",
            format!("{}（{} 种，适用区划 {}）", l.name, l.diseases.len(), l.region_prefix),
            vec!["序号", "病种", "ICD-10 编码"],
        );
        for d in &l.diseases {
            t.rows.push(vec![Cell::Int(d.no), Cell::text(&d.name), Cell::text(d.icd10.join("；"))]);
        }
        page.push(&format!(
            "<section data-testid=\"list-{}\"><p class=\"{}\">{}{}</p><p class=\"muted small\">来源：{}</p>",
            esc(&l.list_code),
            if l.exact { "muted" } else { "alert" },
            if l.exact { "" } else { "非官方原文目录：" },
            esc(&l.note),
            esc(&l.source)
        ));
        page.push(&t.html("/web/mdt/lists"));
        page.push("</section>");
    }
    if may_manage(&u) {
        let opts: String = lists.iter().map(|l| format!("<option value=\"{}\">{}</option>", esc(&l.list_code), esc(&l.name))).collect();
        page.push(&format!(
            "<section class=\"calc noprint\"><h2>修改或新增病种</h2><form method=\"post\" action=\"/web/mdt/lists/save\" class=\"grid-form\" data-testid=\"list-form\">\
             <label>目录<select name=\"list_code\">{opts}</select></label><label>序号<input name=\"no\" inputmode=\"numeric\" required></label>\
             <label>病种名称<input name=\"name\" required></label><label>ICD-10 编码（多个用分号分隔）<input name=\"icd10\" required placeholder=\"如 C16；C15\"></label>\
             <div class=\"actions\"><button type=\"submit\">保存</button></div></form></section>"
        ));
    }
    Ok(page.render(&u))
}

#[derive(Deserialize)]
pub struct DiseaseForm {
    list_code: String,
    no: String,
    name: String,
    icd10: String,
}

pub async fn save_disease(State(state): State<AppState>, u: WebUser, Form(f): Form<DiseaseForm>) -> WebResult {
    require_manage(&u, "修改病种目录")?;
    let lists = state.store.mdt_lists().await?;
    let list = lists.iter().find(|l| l.list_code == f.list_code.trim()).ok_or_else(|| WebError::bad("病种目录无效"))?;
    // A list is the province's (or prefecture's) own: only a user whose region covers all of it edits it.
    let own = u.region()?;
    if !list.region_prefix.starts_with(own) {
        return Err(WebError::forbidden(format!(
            "病种目录“{}”适用于区划 {}，由该级医保部门维护；您的范围是 {own}",
            list.name, list.region_prefix
        )));
    }
    let no: i64 = f.no.trim().parse().ok().filter(|n| (1..=500).contains(n)).ok_or_else(|| WebError::bad(format!("序号“{}”无效", f.no)))?;
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(WebError::bad("请填写病种名称（不超过 60 字）"));
    }
    if list.diseases.iter().any(|d| d.name == name && d.no != no) {
        return Err(WebError::bad(format!("“{name}”已在目录中")));
    }
    let codes: Vec<String> =
        f.icd10.split([';', '；', ',', '，', ' ']).map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
    if codes.is_empty() {
        return Err(WebError::bad("请填写 ICD-10 编码"));
    }
    if let Some(bad) = codes.iter().find(|c| !valid_icd(c)) {
        return Err(WebError::bad(format!("“{bad}”不是 ICD-10 编码（如 C16 或 C16.9）")));
    }
    state.store.save_mdt_disease(&list.list_code, &MdtDisease { no, name: name.to_string(), icd10: codes }, &u.p.username).await?;
    Ok(Redirect::to("/web/mdt/lists").into_response())
}
