//! 挂牌督战 (R-SUP-1): the villages that meet the thresholds of data/supervision/thresholds.toml
//! (each with every criterion it meets), put under supervision by the bureau or by hand with a reason;
//! responsibility zones with a city and a county leader; inspections (field / remote / phone) with their
//! findings, which go to the rectification ledger in one step.

use std::collections::HashMap;
use std::sync::OnceLock;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::supervise::{pct, selection_reasons, Thresholds};
use baozhang_core::Date;
use baozhang_store::date_num;
use baozhang_store::oversight::Rectification;
use baozhang_store::supervise::{mode_zh, Inspection, Zone, INSPECTION_MODES};
use serde::Deserialize;

use super::cache::Built;
use super::health::{count_day, year_param};
use super::table::{Cell, InlineForm, Input, Part, Table};
use super::{Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// The shipped thresholds (checked by a unit test in core).
pub fn thresholds() -> &'static Thresholds {
    static T: OnceLock<Thresholds> = OnceLock::new();
    T.get_or_init(|| {
        Thresholds::parse(include_str!("../../../../data/supervision/thresholds.toml")).expect("data/supervision/thresholds.toml is valid")
    })
}

/// The oversight pages' menu, as `templates/supervise_subnav.html` writes it.
#[derive(Template)]
#[template(path = "supervise_subnav.html")]
pub struct SubnavView {
    pub items: Vec<SubnavItem>,
}

pub struct SubnavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// The page shown (written in bold, not linked).
    pub active: bool,
}

/// The oversight pages' menu with `active` (a path) marked.
pub fn subnav_view(active: &str) -> SubnavView {
    let items = [
        ("/web/supervise", "挂牌督战"),
        ("/web/rectify", "整改台账"),
        ("/web/reports", "月报与分析"),
        ("/web/forms", "定期报表"),
        ("/web/scores", "考核评分"),
        ("/web/exit", "退出验收"),
        ("/web/funds", "资金拨付"),
    ];
    SubnavView { items: items.iter().map(|&(href, label)| SubnavItem { href, label, active: href == active }).collect() }
}

/// The oversight pages' own menu (HTML, for pages that push it before their body).
pub fn subnav(active: &str) -> String {
    subnav_view(active).render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "subnav template failed");
        String::new()
    })
}

/// A number card (label, value, note), as the pages' templates write it.
pub use super::table::Card;

/// One line of a page's facts (`<dl class="facts">`): the label, the value, the value's tooltip (a code
/// behind a name; empty: none) and its `data-testid` (empty: none).
#[derive(Debug, PartialEq, Eq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    pub title: String,
    pub testid: &'static str,
}

impl Fact {
    pub fn new(label: &'static str, value: impl Into<String>) -> Fact {
        Fact { label, value: value.into(), title: String::new(), testid: "" }
    }
    pub fn title(mut self, title: impl Into<String>) -> Fact {
        self.title = title.into();
        self
    }
    pub fn testid(mut self, id: &'static str) -> Fact {
        self.testid = id;
        self
    }
}

fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

fn may_inspect(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

#[derive(Deserialize, Default)]
pub struct SupQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

pub async fn supervise_page(State(state): State<AppState>, u: WebUser, Query(q): Query<SupQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let year = year_param(&state, q.year.as_deref()).await?;
    let built = cached(&state, &u, &region, year).await?;
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    Ok(built.page(&u).render(&u))
}

/// The region's page of a year, as kept by `web::cache` (the villages' facts read the whole registry).
pub async fn cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<std::sync::Arc<Built>, WebError> {
    super::cache::kept(
        state,
        u,
        "supervise",
        format!("/web/supervise?region={region}&year={year}"),
        region,
        year,
        |st, who, region, year| Box::pin(async move { build(&st, &who, region, year).await }),
    )
    .await
}

async fn build(state: &AppState, u: &WebUser, region: String, year: i64) -> Result<Built, WebError> {
    let day = count_day(year)?;
    let names = state.web.region_names(&state.store).await?;
    let place = |c: &str| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let township = |c: &str| c.get(..9).map(&place).unwrap_or_default();
    let t = thresholds();
    let facts = state.store.village_facts(&region, date_num(day)).await?;
    let selected = state.store.sup_villages(&region, year).await?;
    let zones = state.store.zones(&region).await?;
    let zone_of: HashMap<i64, &Zone> = zones.iter().map(|z| (z.id, z)).collect();
    let inspections = state.store.inspections(&region, year * 10_000 + 101, year * 10_000 + 1231).await?;
    let items = state.store.rectifications(&region).await?;
    let now = date_num(crate::clock::today());
    let mut insp_by: HashMap<&str, (usize, i64)> = HashMap::new();
    for i in &inspections {
        let e = insp_by.entry(i.village_code.as_str()).or_default();
        e.0 += 1;
        e.1 = e.1.max(i.on_date);
    }
    let mut open_by: HashMap<&str, usize> = HashMap::new();
    for r in items.iter().filter(|r| r.status != "closed") {
        *open_by.entry(r.region_code.as_str()).or_default() += 1;
    }
    let active: Vec<_> = selected.iter().filter(|v| v.status == "active").collect();
    let is_active: std::collections::HashSet<&str> = active.iter().map(|v| v.village_code.as_str()).collect();
    let manage = may_manage(u);

    let mut st = Table::new(
        "selected",
        format!("{year} 年督战村"),
        vec![
            "村",
            "乡镇",
            "入选理由",
            "方式",
            "责任片区",
            "市级责任领导",
            "县级责任领导",
            "督导次数",
            "最近督导",
            "未销号整改事项",
            "操作",
        ],
    );
    st.empty = "尚未确定督战村";
    for v in &active {
        let z = v.zone_id.and_then(|id| zone_of.get(&id));
        let (n, last) = insp_by.get(v.village_code.as_str()).copied().unwrap_or_default();
        let open = open_by.iter().filter(|(k, _)| k.starts_with(v.village_code.as_str())).map(|(_, n)| n).sum::<usize>();
        let op = if manage {
            let mut options = vec![(String::new(), "（未分片）".to_string())];
            options.extend(zones.iter().map(|z| (z.id.to_string(), z.name.clone())));
            Cell::Parts(vec![
                Part::form(
                    InlineForm::post("/web/supervise/assign", "分片")
                        .hidden("village", &v.village_code)
                        .hidden("year", year)
                        .input(Input::select("zone", "责任片区", options).value(v.zone_id.map(|z| z.to_string()).unwrap_or_default())),
                ),
                Part::form(
                    InlineForm::post("/web/supervise/remove", "移出")
                        .hidden("village", &v.village_code)
                        .hidden("year", year)
                        .input(Input::text("reason", "移出理由").required()),
                ),
            ])
        } else {
            Cell::text("")
        };
        st.rows.push(vec![
            Cell::Link(place(&v.village_code), format!("/web/region/{}", v.village_code)),
            Cell::text(township(&v.village_code)),
            Cell::text(&v.reasons),
            Cell::text(if v.by_hand { "手工纳入" } else { "按条件" }),
            Cell::text(z.map(|z| z.name.clone()).unwrap_or_default()),
            Cell::text(z.map(|z| z.city_leader.clone()).unwrap_or_default()),
            Cell::text(z.map(|z| z.county_leader.clone()).unwrap_or_default()),
            Cell::Int(n as i64),
            Cell::text(if last > 0 { super::date_text(last) } else { String::new() }),
            Cell::Int(open as i64),
            op,
        ]);
    }

    let mut ct = Table::new(
        "candidates",
        "符合条件的候选村",
        vec!["村", "乡镇", "在册人口", "未脱贫人口", "贫困发生率", "边缘户人口", "满足条件", "操作"],
    );
    ct.empty = "没有村符合选择条件";
    let mut cands: Vec<_> = facts
        .iter()
        .filter(|(v, _)| !is_active.contains(v.as_str()))
        .map(|(v, f)| (v, f, selection_reasons(f, t)))
        .filter(|(_, _, r)| !r.is_empty())
        .collect();
    cands.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(b.1.remaining_poor.cmp(&a.1.remaining_poor)).then(a.0.cmp(b.0)));
    for (v, f, reasons) in &cands {
        let op = if manage {
            Cell::form(InlineForm::post("/web/supervise/select", "纳入督战").hidden("village", v).hidden("year", year))
        } else {
            Cell::text("")
        };
        ct.rows.push(vec![
            Cell::Link(place(v), format!("/web/region/{v}")),
            Cell::text(township(v)),
            Cell::Int(f.population),
            Cell::Int(f.remaining_poor),
            Cell::Pct(f.incidence_bp()),
            Cell::Int(f.marginal),
            Cell::text(reasons.join("；")),
            op,
        ]);
    }

    let mut zt = Table::new("zones", "责任片区", vec!["片区", "范围", "市级责任领导", "县级责任领导", "督战村"]);
    zt.empty = "尚未设立责任片区";
    for z in &zones {
        let n = active.iter().filter(|v| v.zone_id == Some(z.id)).count();
        zt.rows.push(vec![
            Cell::text(&z.name),
            Cell::text(place(&z.region_code)),
            Cell::text(&z.city_leader),
            Cell::text(&z.county_leader),
            Cell::Int(n as i64),
        ]);
    }

    let mut it = Table::new("inspections", format!("{year} 年督导记录"), vec!["日期", "村", "方式", "督导人", "发现问题", "整改事项"]);
    it.empty = "本年尚无督导记录";
    for i in &inspections {
        it.rows.push(vec![
            Cell::text(super::date_text(i.on_date)),
            Cell::text(place(&i.village_code)),
            Cell::text(mode_zh(&i.mode)),
            Cell::text(&i.inspector),
            Cell::text(&i.findings),
            match i.rect_id {
                Some(id) => Cell::Link(format!("#{id}"), format!("/web/rectify/{id}")),
                None => Cell::text(""),
            },
        ]);
    }
    let inspected = active.iter().filter(|v| insp_by.contains_key(v.village_code.as_str())).count();
    let overdue = items.iter().filter(|r| r.overdue(now) && active.iter().any(|v| r.region_code.starts_with(&v.village_code))).count();
    let figures = SupFigures {
        active: active.len(),
        by_hand: active.iter().filter(|v| v.by_hand).count(),
        candidates: cands.len(),
        villages: facts.len(),
        inspected,
        inspections: inspections.len(),
        overdue,
    };
    let villages: Vec<(String, String)> =
        if may_inspect(u) { active.iter().map(|v| (v.village_code.clone(), place(&v.village_code))).collect() } else { Vec::new() };
    let view = supervise_view(year, day, &region, t, &figures, manage, villages, crate::clock::today());
    let mut page = Page::new(format!("挂牌督战 · {year} 年 · {}", place(&region)));
    page.crumbs = super::dashboard::crumbs_for(state, u, &region).await?;
    page.crumbs.push(("挂牌督战".into(), String::new()));
    page.view(&subnav_view("/web/supervise"))?.view(&view)?;
    Ok(Built::new(page, vec![st, ct, zt, it]))
}

/// The counts the page's cards show.
#[derive(Default)]
pub struct SupFigures {
    pub active: usize,
    pub by_hand: usize,
    pub candidates: usize,
    /// Villages in the region.
    pub villages: usize,
    /// Supervised villages inspected this year.
    pub inspected: usize,
    pub inspections: usize,
    /// Ledger items of supervised villages past their deadline.
    pub overdue: usize,
}

#[derive(Template)]
#[template(path = "supervise.html")]
pub struct SupView {
    pub cards: Vec<Card>,
    /// The selection criteria in words.
    pub criteria: String,
    pub manage: bool,
    pub year: i64,
    pub region: String,
    /// The supervised villages an inspection may be recorded for (code, name); empty: no inspection form.
    pub villages: Vec<(String, String)>,
    pub modes: Vec<(&'static str, &'static str)>,
    pub today: String,
    /// The default deadline of an inspection's findings (30 days).
    pub deadline: String,
}

/// The 挂牌督战 page's view model: pure, from what was loaded.
#[allow(clippy::too_many_arguments)]
pub fn supervise_view(
    year: i64,
    day: Date,
    region: &str,
    t: &Thresholds,
    f: &SupFigures,
    manage: bool,
    villages: Vec<(String, String)>,
    today: Date,
) -> SupView {
    SupView {
        cards: vec![
            Card::new("督战村", format!("{} 个", f.active), format!("手工纳入 {} 个", f.by_hand)),
            Card::new("符合条件未纳入", format!("{} 个", f.candidates), format!("共 {} 个村", f.villages)),
            Card::new("已督导的督战村", format!("{} 个", f.inspected), format!("督导 {} 次", f.inspections)),
            Card::new("督战村逾期整改", format!("{} 项", f.overdue), "未按期销号"),
        ],
        criteria: format!(
            "选择条件（满足任一）：贫困发生率 {}–{}；剩余贫困人口 ≥{} 人；边缘户人口 ≥{} 人。人口按 {day} 的名单计算。",
            pct(t.incidence_min_bp),
            pct(t.incidence_max_bp),
            t.remaining_poor_min,
            t.marginal_min,
        ),
        manage,
        year,
        region: region.to_string(),
        villages,
        modes: INSPECTION_MODES.to_vec(),
        today: today.to_string(),
        deadline: today.add_days(30).to_string(),
    }
}

fn back(year: i64) -> WebResult {
    Ok(Redirect::to(&format!("/web/supervise?year={year}")).into_response())
}

#[derive(Deserialize)]
pub struct SelectForm {
    village: String,
    year: String,
    #[serde(default)]
    reason: String,
}

/// Puts a village under supervision: with the criteria it meets (recomputed here, not taken from the
/// form), or by hand with the reason given.
pub async fn select(State(state): State<AppState>, u: WebUser, Form(f): Form<SelectForm>) -> WebResult {
    u.require(may_manage(&u), "确定督战村")?;
    let village = u.region_in_scope(Some(&f.village))?.to_string();
    if village.len() != 12 {
        return Err(WebError::bad(format!("“{village}”不是村级区划代码（12 位）")));
    }
    let names = state.web.region_names(&state.store).await?;
    if !names.contains_key(&village) {
        return Err(WebError::bad(format!("区划代码 {village} 不存在")));
    }
    let year = super::health::parse_year(&f.year)?;
    let day = count_day(year)?;
    let reason = f.reason.trim();
    let (reasons, by_hand) = if reason.is_empty() {
        let facts = state.store.village_facts(&village, date_num(day)).await?;
        let r = facts.first().map(|(_, f)| selection_reasons(f, thresholds())).unwrap_or_default();
        if r.is_empty() {
            return Err(WebError::bad("该村不满足选择条件；如需纳入，请手工纳入并填写理由"));
        }
        (r.join("；"), false)
    } else {
        if reason.chars().count() > 200 {
            return Err(WebError::bad("纳入理由不超过 200 字"));
        }
        (format!("手工纳入：{reason}"), true)
    };
    if !state.store.select_village(&village, year, &reasons, by_hand, None, &u.p.username).await? {
        return Err(WebError::bad("该村已是本年督战村"));
    }
    tracing::info!(village = %village, year, by_hand, "village put under supervision");
    back(year)
}

#[derive(Deserialize)]
pub struct RemoveForm {
    village: String,
    year: String,
    reason: String,
}

pub async fn remove(State(state): State<AppState>, u: WebUser, Form(f): Form<RemoveForm>) -> WebResult {
    u.require(may_manage(&u), "移出督战村")?;
    let village = u.region_in_scope(Some(&f.village))?.to_string();
    let year = super::health::parse_year(&f.year)?;
    if f.reason.trim().is_empty() {
        return Err(WebError::bad("请填写移出理由"));
    }
    if !state.store.remove_village(&village, year, f.reason.trim(), &u.p.username).await? {
        return Err(WebError::bad("该村不是本年督战村"));
    }
    back(year)
}

#[derive(Deserialize)]
pub struct ZoneForm {
    name: String,
    region: String,
    city_leader: String,
    county_leader: String,
}

pub async fn add_zone(State(state): State<AppState>, u: WebUser, Form(f): Form<ZoneForm>) -> WebResult {
    u.require(may_manage(&u), "设立责任片区")?;
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    let field = |s: &str, name: &str| {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 50 {
            Err(WebError::bad(format!("请填写{name}（不超过 50 字）")))
        } else {
            Ok(s.to_string())
        }
    };
    let z = Zone {
        id: 0,
        name: field(&f.name, "片区名称")?,
        region_code: region,
        city_leader: field(&f.city_leader, "市级责任领导")?,
        county_leader: field(&f.county_leader, "县级责任领导")?,
    };
    state.store.add_zone(&z, &u.p.username).await?;
    Ok(Redirect::to("/web/supervise").into_response())
}

#[derive(Deserialize)]
pub struct AssignForm {
    village: String,
    year: String,
    #[serde(default)]
    zone: String,
}

pub async fn assign(State(state): State<AppState>, u: WebUser, Form(f): Form<AssignForm>) -> WebResult {
    u.require(may_manage(&u), "分配责任片区")?;
    let village = u.region_in_scope(Some(&f.village))?.to_string();
    let year = super::health::parse_year(&f.year)?;
    let zone = match f.zone.trim() {
        "" => None,
        z => {
            let id: i64 = z.parse().map_err(|_| WebError::bad("责任片区无效"))?;
            if !state.store.zones(&village).await?.iter().any(|z| z.id == id) {
                return Err(WebError::bad("该片区不覆盖这个村"));
            }
            Some(id)
        }
    };
    if !state.store.assign_zone(&village, year, zone).await? {
        return Err(WebError::bad("该村不是本年督战村"));
    }
    back(year)
}

#[derive(Deserialize)]
pub struct InspectForm {
    village: String,
    on_date: String,
    mode: String,
    inspector: String,
    findings: String,
    #[serde(default)]
    deadline: String,
}

/// Records an inspection; findings other than 无 become a ledger item (source 督查检查) at once.
pub async fn inspect(State(state): State<AppState>, u: WebUser, Form(f): Form<InspectForm>) -> WebResult {
    u.require(may_inspect(&u), "登记督导")?;
    let village = u.region_in_scope(Some(&f.village))?.to_string();
    let on = super::health::past_day(&f.on_date, "督导日期")?;
    let year = i64::from(on.year());
    if !state.store.sup_villages(&village, year).await?.iter().any(|v| v.village_code == village && v.status == "active") {
        return Err(WebError::bad(format!("该村不是 {year} 年督战村")));
    }
    if !INSPECTION_MODES.iter().any(|(m, _)| *m == f.mode) {
        return Err(WebError::bad(format!("督导方式“{}”无效", f.mode)));
    }
    let inspector = f.inspector.trim();
    let findings = f.findings.trim();
    if inspector.is_empty() || findings.is_empty() {
        return Err(WebError::bad("请填写督导人和发现问题（无问题填“无”）"));
    }
    if findings.chars().count() > 500 {
        return Err(WebError::bad("发现问题不超过 500 字"));
    }
    let i = Inspection {
        village_code: village.clone(),
        on_date: date_num(on),
        mode: f.mode.clone(),
        inspector: inspector.to_string(),
        findings: findings.to_string(),
        ..Default::default()
    };
    let id = state.store.add_inspection(&i, &u.p.username).await?;
    if !matches!(findings, "无" | "未发现问题") {
        let deadline = match f.deadline.trim() {
            "" => on.add_days(30),
            d => Date::parse(d).map_err(|e| WebError::bad(format!("整改期限无效：{e}")))?,
        };
        let r = Rectification {
            problem: findings.to_string(),
            source: "督查检查".into(),
            source_ref: Some(format!("inspection:{id}")),
            region_code: village.clone(),
            subject: format!("{}（{}）", mode_zh(&f.mode), super::date_text(date_num(on))),
            responsible_unit: "乡镇人民政府、村委会".into(),
            responsible_person: "驻村工作队".into(),
            deadline: date_num(deadline),
            measures: "按督导意见整改".into(),
            ..Default::default()
        };
        if let Some(item) = state.store.add_rectification(&r, &u.p.username).await? {
            state.store.link_inspection(id, item).await?;
        }
    }
    back(year)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subnav_marks_the_page_shown_and_links_the_others() {
        let v = subnav_view("/web/scores");
        let active: Vec<&str> = v.items.iter().filter(|i| i.active).map(|i| i.label).collect();
        assert_eq!(active, ["考核评分"]);
        assert_eq!(v.items.len(), 7);
        let html = subnav("/web/scores");
        assert!(html.contains("<strong>考核评分</strong>"), "{html}");
        assert!(html.contains("<a href=\"/web/rectify\">整改台账</a>"), "{html}");
        assert!(!html.contains("href=\"/web/scores\""), "the page shown is not a link: {html}");
    }

    #[test]
    fn the_supervise_view_counts_and_states_the_criteria_in_words() {
        let t = Thresholds { incidence_min_bp: 100, incidence_max_bp: 300, remaining_poor_min: 30, marginal_min: 20 };
        let f = SupFigures { active: 3, by_hand: 1, candidates: 2, villages: 40, inspected: 2, inspections: 5, overdue: 1 };
        let today = Date::parse("2018-11-20").unwrap();
        let day = Date::parse("2018-12-31").unwrap();
        let v = supervise_view(2018, day, "620422", &t, &f, true, vec![("620422100201".into(), "甲村".into())], today);
        let cards: Vec<(&str, &str, &str)> = v.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect();
        assert_eq!(
            cards,
            [
                ("督战村", "3 个", "手工纳入 1 个"),
                ("符合条件未纳入", "2 个", "共 40 个村"),
                ("已督导的督战村", "2 个", "督导 5 次"),
                ("督战村逾期整改", "1 项", "未按期销号"),
            ]
        );
        assert_eq!(
            v.criteria,
            "选择条件（满足任一）：贫困发生率 1.00%–3.00%；剩余贫困人口 ≥30 人；边缘户人口 ≥20 人。人口按 2018-12-31 的名单计算。"
        );
        assert_eq!((v.today.as_str(), v.deadline.as_str()), ("2018-11-20", "2018-12-20"));
        assert_eq!(v.modes.iter().map(|m| m.1).collect::<Vec<_>>(), ["实地督导", "远程视频", "电话抽查"]);
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"inspect-form\"") && html.contains("<option value=\"620422100201\">甲村</option>"), "{html}");
        assert!(html.contains("data-testid=\"hand-form\"") && html.contains("data-testid=\"zone-form\""), "{html}");
        // No supervised village to inspect, no managing right: no forms.
        let v = supervise_view(2018, day, "620422", &t, &f, false, Vec::new(), today);
        let html = v.render().unwrap();
        assert!(!html.contains("<form"), "{html}");
    }
}
