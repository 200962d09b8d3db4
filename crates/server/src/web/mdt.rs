//! 大病集中救治台账 (R-MDT-1): the region's major-disease list (ICD-10, editable, each list marked with
//! its source), the cases — found in settlements with a listed diagnosis or entered by hand — with
//! hospital, dates, status, referral and follow-ups, and the treatment rate (target 100 %).

use std::collections::HashMap;

use askama::filters::HtmlSafeOutput;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::programmes::valid_icd;
use baozhang_core::{Date, IdCardNo};
use baozhang_ingest::health::{cases_from_settlements, list_for, treatment_rate};
use baozhang_store::date_num;
use baozhang_store::programmes::{MdtCase, MdtDisease, MdtList, With, MDT_STATUSES};
use serde::Deserialize;

use super::health::{bp, may_manage, require_manage, Ctx};
use super::supervise::{Card, Fact};
use super::table::{Cell, Table, TableView};
use super::{Page, WebError, WebResult, WebUser};
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

pub async fn mdt_page(State(state): State<AppState>, u: WebUser, Query(q): Query<MdtQ>) -> WebResult {
    let ctx = Ctx::new(&state, &u, q.region.as_deref(), q.unmasked.as_deref() == Some("1"), "web.mdt").await?;
    let lists = state.store.mdt_lists().await?;
    let cases = state.store.mdt_cases(&ctx.region).await?;
    let institutions_in = state.store.institutions().await?;
    let institutions: HashMap<&str, &str> = institutions_in.iter().map(|i| (i.fixmedins_code.as_str(), i.name.as_str())).collect();
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
            Cell::text(institutions.get(c.row.hospital.as_str()).map_or_else(|| c.row.hospital.clone(), |n| n.to_string())),
            Cell::text(super::date_text(c.row.diagnosis_date)),
            Cell::tag(status_class, &c.row.status),
            Cell::text(c.row.treated_date.map(super::date_text).unwrap_or_default()),
            Cell::text(&c.row.referral),
            Cell::text(&c.row.origin),
            Cell::text(crate::clock::beijing_day(&c.row.updated_at)),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        ctx.log_shown(&state, &u, Some(x)).await?;
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let list = list_for(&lists, if ctx.region.is_empty() { "62" } else { &ctx.region });
    let manage = may_manage(&u);
    let year = if manage { super::dashboard::default_year(&state).await } else { 0 };
    let county = ctx.region.get(..6).unwrap_or(&ctx.region);
    let mut hospitals: Vec<(String, String)> =
        institutions_in.iter().filter(|i| i.admdvs.starts_with(county)).map(|i| (i.fixmedins_code.clone(), i.name.clone())).collect();
    hospitals.sort();
    let view = MdtView {
        done: q.done.clone().unwrap_or_default(),
        unmask: unmask_view(u.p.may_unmask(), &u.path, ctx.unmasked),
        ..mdt_view(&ctx.region, &cases, list, manage, year, hospitals)
    };
    let mut page = Page::new(format!("大病集中救治 · {}", ctx.place(&ctx.region)));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &ctx.region).await?;
    page.crumbs.push(("大病救治".into(), String::new()));
    page.view(&view)?.tables(&u, &[&t]);
    ctx.log_shown(&state, &u, None).await?;
    Ok(page.render(&u))
}

/// The link switching between masked and full names (for roles that may unmask).
pub struct UnmaskLink {
    pub href: String,
    pub text: &'static str,
    pub note: &'static str,
}

/// The mask toggle of a page at `path` (its address with query), `None` for roles that may not unmask.
pub fn unmask_view(may_unmask: bool, path: &str, unmasked: bool) -> Option<UnmaskLink> {
    if !may_unmask {
        return None;
    }
    let base = path.replace("&unmasked=1", "").replace("?unmasked=1", "?");
    Some(if unmasked {
        UnmaskLink { href: base, text: "恢复脱敏显示", note: "（本次查看已记录）" }
    } else {
        let sep = if base.contains('?') { '&' } else { '?' };
        UnmaskLink {
            href: format!("{base}{sep}unmasked=1"), text: "显示完整姓名与证件号码", note: "（将记入访问日志）"
        }
    })
}

/// The form registering a case by hand.
pub struct CaseFormView {
    pub list_code: String,
    /// (number, "1. 儿童急性淋巴细胞白血病")
    pub diseases: Vec<(i64, String)>,
    /// The county's hospitals (code, name), offered while typing.
    pub hospitals: Vec<(String, String)>,
    pub statuses: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "mdt.html")]
pub struct MdtView {
    /// What the last action did (after a redirect).
    pub done: String,
    pub cards: Vec<Card>,
    /// The list in force, in words.
    pub list_text: String,
    pub unmask: Option<UnmaskLink>,
    /// The scan form (with the region and the year it proposes).
    pub manage: bool,
    pub region: String,
    pub year: i64,
    pub case_form: Option<CaseFormView>,
}

/// The ledger's view model: the treatment rate and counts, the list in force, the forms.
pub fn mdt_view(
    region: &str,
    cases: &[With<MdtCase>],
    list: Option<&MdtList>,
    manage: bool,
    year: i64,
    hospitals: Vec<(String, String)>,
) -> MdtView {
    let (treated, counted) = treatment_rate(cases);
    let count = |s: &str| cases.iter().filter(|c| c.row.status == s).count();
    MdtView {
        done: String::new(),
        cards: vec![
            Card::new("救治率", super::pct(bp(treated, counted)), format!("{treated} / {counted} 例，目标 100%")),
            Card::new(
                "病例",
                format!("{} 例", cases.len()),
                format!("来自结算 {} 例", cases.iter().filter(|c| c.row.origin == "结算").count()),
            ),
            Card::new("待救治", format!("{} 例", count("待救治")), format!("放弃治疗 {} 例", count("放弃治疗"))),
            Card::new("救治中 / 已转诊", format!("{} / {} 例", count("救治中"), count("已转诊")), ""),
        ],
        list_text: list.map_or_else(|| "本区划未配置目录".to_string(), |l| format!("{}，{} 种", l.name, l.diseases.len())),
        unmask: None,
        manage,
        region: region.to_string(),
        year,
        case_form: list.filter(|_| manage).map(|l| CaseFormView {
            list_code: l.list_code.clone(),
            diseases: l.diseases.iter().map(|d| (d.no, format!("{}. {}", d.no, d.name))).collect(),
            hospitals,
            statuses: MDT_STATUSES.to_vec(),
        }),
    }
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
    let institutions: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
    let patient = format!("{} {}（{}）", text(&name), text(&idc), text(&village));
    let follow = may_manage(&u) || u.p.role == crate::auth::Role::Cadre;
    let view = CaseView {
        unmask: unmask_view(u.p.may_unmask(), &u.path, ctx.unmasked),
        ..case_view(&c.row, patient, &lists, institutions.get(&c.row.hospital).map(String::as_str), follow)
    };
    page.view(&view)?.tables(&u, &[&ft]);
    Ok(page.render(&u))
}

#[derive(Template)]
#[template(path = "mdt_case.html")]
pub struct CaseView {
    pub id: i64,
    pub facts: Vec<Fact>,
    pub unmask: Option<UnmaskLink>,
    /// The follow-up form, with the case's status and referral.
    pub follow: bool,
    pub status: String,
    pub referral: String,
    pub statuses: Vec<&'static str>,
}

/// A case's view model. `patient`: the person as the page may show them; `hospital`: the name of the
/// case's hospital when registered.
pub fn case_view(c: &MdtCase, patient: String, lists: &[MdtList], hospital: Option<&str>, follow: bool) -> CaseView {
    let list_name = lists.iter().find(|l| l.list_code == c.list_code).map_or(c.list_code.as_str(), |l| l.name.as_str());
    let hosp = match hospital {
        Some(name) => Fact::new("定点医院", name).title(format!("医疗机构编码 {}", c.hospital)),
        None => Fact::new("定点医院", &c.hospital),
    };
    let origin = if c.setl_id.is_empty() { c.origin.clone() } else { format!("{}（结算 {}）", c.origin, c.setl_id) };
    CaseView {
        id: c.id,
        facts: vec![
            Fact::new("患者", patient),
            Fact::new("病种", format!("{}（{list_name}）", disease_name(lists, &c.list_code, c.disease_no))),
            Fact::new("诊断编码", &c.dise_codg),
            hosp,
            Fact::new("确诊日期", super::date_text(c.diagnosis_date)),
            Fact::new("救治状态", &c.status).testid("case-status"),
            Fact::new("转诊", &c.referral),
            Fact::new("来源", origin),
        ],
        unmask: None,
        follow,
        status: c.status.clone(),
        referral: c.referral.clone(),
        statuses: MDT_STATUSES.to_vec(),
    }
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
    let names = state.web.region_names(&state.store).await?;
    let view = lists_view(&lists, &names, may_manage(&u));
    let mut page = Page::new("大病集中救治病种目录");
    page.crumbs.push(("大病救治".into(), "/web/mdt".into()));
    page.crumbs.push(("病种目录".into(), String::new()));
    page.view(&view)?;
    Ok(page.render(&u))
}

/// One list with its entries.
pub struct ListSection {
    pub code: String,
    pub name: String,
    /// The official list as published (otherwise a reference list to be corrected).
    pub exact: bool,
    pub note: String,
    pub source: String,
    pub table: Table,
}

impl ListSection {
    /// The list's table, written by its own template (`templates/table.html`, which escapes every cell).
    pub fn table(&self) -> HtmlSafeOutput<TableView<'_>> {
        HtmlSafeOutput(self.table.view("/web/mdt/lists"))
    }
}

#[derive(Template)]
#[template(path = "mdt_lists.html")]
pub struct ListsView {
    pub lists: Vec<ListSection>,
    /// The form changing an entry.
    pub manage: bool,
}

/// The lists page's view model: each list with where it applies (by name), its source and entries.
pub fn lists_view(lists: &[MdtList], names: &HashMap<String, String>, manage: bool) -> ListsView {
    let lists = lists
        .iter()
        .map(|l| {
            let place = names.get(&l.region_prefix).cloned().unwrap_or_else(|| format!("区划 {}", l.region_prefix));
            let mut t =
                Table::new("list", format!("{}（{} 种，适用于{place}）", l.name, l.diseases.len()), vec!["序号", "病种", "ICD-10 编码"]);
            for d in &l.diseases {
                t.rows.push(vec![Cell::Int(d.no), Cell::text(&d.name), Cell::text(d.icd10.join("；"))]);
            }
            ListSection {
                code: l.list_code.clone(),
                name: l.name.clone(),
                exact: l.exact,
                note: l.note.clone(),
                source: l.source.clone(),
                table: t,
            }
        })
        .collect();
    ListsView { lists, manage }
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

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_store::programmes::Who;

    fn list() -> MdtList {
        MdtList {
            list_code: "gansu-50".into(),
            name: "甘肃省50种重大疾病集中救治病种".into(),
            region_prefix: "62".into(),
            source: "《会宁县健康扶贫先锋行动实施意见》".into(),
            exact: false,
            note: "参考清单".into(),
            diseases: vec![
                MdtDisease { no: 1, name: "胃癌".into(), icd10: vec!["C16".into()] },
                MdtDisease { no: 2, name: "白内障".into(), icd10: vec!["H25".into(), "H26".into()] },
            ],
        }
    }

    fn case(id: i64, status: &str, origin: &str) -> MdtCase {
        MdtCase {
            id,
            id_no: "620422199001011234".into(),
            list_code: "gansu-50".into(),
            disease_no: 2,
            dise_codg: "H25.9".into(),
            hospital: "H62042200001".into(),
            diagnosis_date: 20180301,
            status: status.into(),
            treated_date: None,
            referral: String::new(),
            origin: origin.into(),
            setl_id: if origin == "结算" { "S100".into() } else { String::new() },
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_ledger_view_gives_the_treatment_rate_and_the_forms() {
        let cases: Vec<With<MdtCase>> = [("已救治", "结算"), ("待救治", "手工"), ("救治中", "手工"), ("放弃治疗", "手工")]
            .iter()
            .enumerate()
            .map(|(i, (s, o))| With { row: case(i as i64, s, o), who: Who::default() })
            .collect();
        let l = list();
        let v = mdt_view("620422", &cases, Some(&l), true, 2018, vec![("H62042200001".into(), "会宁县人民医院".into())]);
        let cards: Vec<(&str, &str, &str)> = v.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect();
        assert_eq!(
            cards,
            [
                ("救治率", "50.00%", "2 / 4 例，目标 100%"),
                ("病例", "4 例", "来自结算 1 例"),
                ("待救治", "1 例", "放弃治疗 1 例"),
                ("救治中 / 已转诊", "1 / 0 例", ""),
            ]
        );
        assert_eq!(v.list_text, "甘肃省50种重大疾病集中救治病种，2 种");
        let f = v.case_form.as_ref().unwrap();
        assert_eq!(f.diseases, [(1, "1. 胃癌".to_string()), (2, "2. 白内障".to_string())]);
        let html = v.render().unwrap();
        assert!(html.contains("<option value=\"H62042200001\">会宁县人民医院</option>"), "{html}");
        assert!(html.contains("<option selected>待救治</option>"), "{html}");
        assert!(!html.contains("value=\"H62042200001\" required"), "no hospital is filled in for the user: {html}");
        let v = mdt_view("620422", &cases, None, false, 0, Vec::new());
        assert_eq!(v.list_text, "本区划未配置目录");
        assert!(v.case_form.is_none() && !v.render().unwrap().contains("<form"));
    }

    #[test]
    fn the_mask_toggle_keeps_the_address_and_says_it_is_logged() {
        assert!(unmask_view(false, "/web/mdt?region=620422", false).is_none());
        let m = unmask_view(true, "/web/mdt?region=620422", false).unwrap();
        assert_eq!((m.href.as_str(), m.text), ("/web/mdt?region=620422&unmasked=1", "显示完整姓名与证件号码"));
        let m = unmask_view(true, "/web/mdt/case/3?unmasked=1", true).unwrap();
        assert_eq!((m.href.as_str(), m.text, m.note), ("/web/mdt/case/3?", "恢复脱敏显示", "（本次查看已记录）"));
    }

    #[test]
    fn a_case_names_its_list_and_hospital() {
        let v = case_view(&case(5, "已救治", "结算"), "张* 6204**（甲村）".into(), &[list()], Some("会宁县人民医院"), true);
        let fact = |label: &str| v.facts.iter().find(|f| f.label == label).unwrap();
        assert_eq!(fact("病种").value, "白内障（甘肃省50种重大疾病集中救治病种）");
        assert_eq!((fact("定点医院").value.as_str(), fact("定点医院").title.as_str()), ("会宁县人民医院", "医疗机构编码 H62042200001"));
        assert_eq!(fact("来源").value, "结算（结算 S100）");
        assert_eq!(fact("救治状态").testid, "case-status");
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"follow-form\"") && html.contains("<option selected>已救治</option>"), "{html}");
    }

    #[test]
    fn the_lists_say_where_they_apply_by_name_and_hold_their_tables() {
        let names: HashMap<String, String> = [("62".to_string(), "甘肃省".to_string())].into();
        let v = lists_view(&[list()], &names, true);
        assert_eq!(v.lists[0].table.title, "甘肃省50种重大疾病集中救治病种（2 种，适用于甘肃省）");
        assert_eq!(v.lists[0].table.rows.len(), 2);
        let html = v.render().unwrap();
        let section = &html[html.find("data-testid=\"list-gansu-50\"").unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        assert!(section.contains("<table id=\"list\">") && section.contains("H25；H26"), "the table is inside its list: {section}");
        assert!(html.contains("非官方原文目录：参考清单") && html.contains("data-testid=\"list-form\""), "{html}");
        assert!(!html.contains("&lt;table"), "the table is written, not escaped: {html}");
    }
}
