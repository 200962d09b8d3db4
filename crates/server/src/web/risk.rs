//! 因病返贫致贫预警 (R-RISK-1): people and households of a region whose personal medical payment over
//! the last 12 months is over, near or rising fast toward the warning line of their region and year
//! (`core::risk`), with the settlements behind each figure; exported for the poverty office's monitoring.
//! The bureau sets the line (a share of the rural per-capita disposable income) per region and year.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::risk::{assess, assess_household, months_back, Assessment, Level, WarningLine};
use baozhang_core::{Date, Fen};
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::risk::{best_line, LineRow};
use serde::Deserialize;

use askama::Template;

use super::table::{Cell, Details, Part, Table, TableView};
use super::{count, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct RiskQ {
    #[serde(default)]
    region: Option<String>,
    /// yyyy-mm-dd; default: the end of the latest enrolment year.
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// The line of a region and year, and how it was set (for the page's note).
pub struct LineInForce {
    pub line: WarningLine,
    /// The line set for the region (or above it); None: the workbench's default line.
    pub set: Option<LineRow>,
    pub year: i64,
}

impl LineInForce {
    pub fn configured(&self) -> bool {
        self.set.is_some()
    }
}

/// The line in force for a region among a year's lines: the one set for it (or above it), else the
/// workbench's default line.
pub fn line_from(lines: &[LineRow], default_fen: i64, region: &str, year: i64) -> LineInForce {
    match best_line(lines, region) {
        Some(l) => LineInForce { line: l.line(), set: Some(l.clone()), year },
        None => LineInForce { line: WarningLine { line_fen: default_fen, near_bp: 8_000 }, set: None, year },
    }
}

/// How the line in force was set, in words, the region it was set for by name.
pub fn line_note(lf: &LineInForce, names: &HashMap<String, String>) -> String {
    match &lf.set {
        Some(l) => format!(
            "{} 年预警线 {} 元 = 农村居民人均可支配收入 {} 元 × {}（{}，{} 于 {} 设定，适用于{}）",
            l.year,
            yuan(l.line().line_fen),
            yuan(l.income_fen),
            super::pct(Some(l.share_bp)),
            l.source,
            l.set_by,
            crate::clock::beijing_day(&l.set_at),
            names.get(&l.region_code).cloned().unwrap_or_else(|| l.region_code.clone())
        ),
        None => {
            format!("尚未设定 {} 年本地预警线，暂按默认 {} 元（请医保局按当地农村居民人均可支配收入设定）", lf.year, yuan(lf.line.line_fen))
        }
    }
}

pub async fn line_in_force(state: &AppState, region: &str, year: i64) -> Result<LineInForce, WebError> {
    let lines = state.store.warning_lines_of_year(year).await?;
    Ok(line_from(&lines, state.web.warning_line_fen, region, year))
}

/// A flagged person (the whole database's, once per day assessed; a page filters by region).
pub struct PersonRisk {
    pub village_code: String,
    pub household_no: String,
    pub name: String,
    pub id_no: String,
    pub a: Assessment,
    /// The settlements behind the figure: "date amount；…".
    pub detail: String,
}

pub struct HouseholdRisk {
    pub village_code: String,
    pub household_no: String,
    pub size: i64,
    pub a: Assessment,
}

/// Everyone's assessment on a day, each against the line of their own village.
pub struct RiskResult {
    pub computed: Instant,
    pub compute_ms: u128,
    /// Flagged people, most serious first.
    pub persons: Vec<PersonRisk>,
    pub households: Vec<HouseholdRisk>,
    /// People with a settlement in the window, per village.
    pub settled: HashMap<String, usize>,
}

/// Assessments cached per day (60 s, like the dashboard; cleared when a line is set).
#[derive(Default)]
pub struct RiskCache {
    days: Mutex<HashMap<Date, Arc<RiskResult>>>,
    refreshing: Mutex<std::collections::HashSet<Date>>,
}

impl RiskCache {
    pub const TTL: Duration = Duration::from_secs(60);

    pub fn invalidate(&self) {
        self.days.lock().expect("risk cache lock").clear();
    }

    /// The day's assessment: the cached one (older than the TTL: answered, and computed again in the
    /// background, as the dashboard's figures), or computed now.
    pub async fn get(&self, state: &AppState, as_of: Date) -> Result<Arc<RiskResult>, WebError> {
        let cached = self.days.lock().expect("risk cache lock").get(&as_of).cloned();
        if let Some(r) = cached {
            if r.computed.elapsed() > Self::TTL && self.refreshing.lock().expect("risk cache lock").insert(as_of) {
                let st = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = st.web.risk.compute_and_keep(&st, as_of).await {
                        tracing::warn!(status = %e.status, "background refresh of the early-warning list failed");
                    }
                    st.web.risk.refreshing.lock().expect("risk cache lock").remove(&as_of);
                });
            }
            return Ok(r);
        }
        self.compute_and_keep(state, as_of).await
    }

    async fn compute_and_keep(&self, state: &AppState, as_of: Date) -> Result<Arc<RiskResult>, WebError> {
        let r = Arc::new(compute(state, as_of).await?);
        tracing::info!(%as_of, flagged = r.persons.len(), ms = r.compute_ms as u64, "early-warning list computed");
        self.days.lock().expect("risk cache lock").insert(as_of, r.clone());
        Ok(r)
    }
}

/// Most serious first: the level, then the 12-month payment.
fn seriousness(a: &Assessment) -> std::cmp::Reverse<(Level, i64)> {
    std::cmp::Reverse((a.level, a.twelve_months_fen))
}

async fn compute(state: &AppState, as_of: Date) -> Result<RiskResult, WebError> {
    let t = Instant::now();
    let year = i64::from(as_of.year());
    let lines = state.store.warning_lines_of_year(year).await?;
    let from = months_back(as_of, 12);
    let people = state.store.payments_in("", from, as_of).await?;
    let sizes = state.store.household_sizes("").await?;
    let mut line_of: HashMap<String, WarningLine> = HashMap::new();
    let mut line_for = |village: &str| {
        *line_of.entry(village.to_string()).or_insert_with(|| line_from(&lines, state.web.warning_line_fen, village, year).line)
    };

    let mut persons = Vec::new();
    let mut settled: HashMap<String, usize> = HashMap::new();
    let mut households: BTreeMap<String, (String, Vec<Assessment>)> = BTreeMap::new();
    for p in &people {
        *settled.entry(p.village_code.clone()).or_default() += 1;
        let a = assess(&p.payments, as_of, &line_for(&p.village_code));
        if let Some(h) = &p.household_no {
            households.entry(h.clone()).or_insert_with(|| (p.village_code.clone(), Vec::new())).1.push(a);
        }
        if a.level == Level::None {
            continue;
        }
        let mut pays: Vec<_> = p.payments.iter().filter(|x| x.date > from && x.date <= as_of).collect();
        pays.sort_by_key(|x| x.date);
        persons.push(PersonRisk {
            village_code: p.village_code.clone(),
            household_no: p.household_no.clone().unwrap_or_default(),
            name: p.name.clone(),
            id_no: p.id_no.clone(),
            a,
            detail: pays.iter().map(|x| format!("{} {} 元", x.date, Fen(x.psn_part_fen).grouped())).collect::<Vec<_>>().join("；"),
        });
    }
    persons.sort_by_key(|p| seriousness(&p.a));
    let mut hflags = Vec::new();
    for (h, (village, members)) in households {
        let size = sizes.get(&h).copied().unwrap_or(0).max(members.len() as i64);
        let mut all = members;
        all.resize(size as usize, Assessment { twelve_months_fen: 0, three_months_fen: 0, settlements: 0, level: Level::None });
        let a = assess_household(&all, &line_for(&village));
        if a.level != Level::None {
            hflags.push(HouseholdRisk { village_code: village, household_no: h, size, a });
        }
    }
    hflags.sort_by_key(|h| seriousness(&h.a));
    Ok(RiskResult { computed: Instant::now(), compute_ms: t.elapsed().as_millis(), persons, households: hflags, settled })
}

/// Rows shown on the page per table (the Excel export has all).
const SHOWN_ROWS: usize = 1_000;

fn level_cell(l: Level) -> Cell {
    let class = match l {
        Level::Over => "new",
        Level::Near => "reopened",
        _ => "",
    };
    Cell::tag(class, l.name_zh())
}

fn parse_as_of(s: Option<&str>, default: Date) -> Result<Date, WebError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => Date::parse(s).map_err(|e| WebError::bad(format!("评估日期“{s}”无效：{e}"))),
    }
}

pub async fn risk_page(State(state): State<AppState>, u: WebUser, Query(q): Query<RiskQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let year = super::dashboard::default_year(&state).await;
    let default_day = Date::new(year as u16, 12, 31).ok_or_else(|| WebError::bad("年度无效"))?;
    let as_of = parse_as_of(q.as_of.as_deref(), default_day)?;
    let lf = line_in_force(&state, &region, i64::from(as_of.year())).await?;
    let res = state.web.risk.get(&state, as_of).await?;
    let names = state.web.region_names(&state.store).await?;
    let pid = state.web.pid_key(&state.store).await?;
    let exporting = q.export.is_some();
    let village_name = |c: &str| names.get(c).cloned().unwrap_or_else(|| c.to_string());

    let mine: Vec<&PersonRisk> = res.persons.iter().filter(|p| p.village_code.starts_with(&region)).collect();
    let mut pt = Table::new(
        "persons",
        "预警人员（近 12 个月个人负担）",
        vec![
            "村",
            "户编号",
            "姓名",
            "证件号码",
            "近12个月个人负担（元）",
            "其中近3个月（元）",
            "结算人次",
            "预警等级",
            "结算明细（日期 个人负担）",
        ],
    );
    pt.empty = "没有达到预警条件的人员";
    pt.page_size = 25;
    for f in mine.iter().take(if exporting { usize::MAX } else { SHOWN_ROWS }) {
        pt.rows.push(vec![
            Cell::text(village_name(&f.village_code)),
            Cell::text(&f.household_no),
            Cell::Link(mask_name(&f.name), super::person::person_href(&pid, &f.id_no)),
            Cell::text(mask_id(&f.id_no)),
            Cell::Yuan(f.a.twelve_months_fen),
            Cell::Yuan(f.a.three_months_fen),
            Cell::Int(f.a.settlements),
            level_cell(f.a.level),
            if exporting {
                Cell::text(&f.detail)
            } else {
                Cell::Parts(vec![Part::Details(Details {
                    summary: format!("{} 笔", f.a.settlements),
                    lines: vec![f.detail.clone()],
                    numbered: false,
                })])
            },
        ]);
    }
    let homes: Vec<&HouseholdRisk> = res.households.iter().filter(|h| h.village_code.starts_with(&region)).collect();
    let mut ht = Table::new(
        "households",
        "预警家庭（按人均与预警线比较）",
        vec!["村", "户编号", "人数", "近12个月个人负担合计（元）", "人均（元）", "其中近3个月（元）", "预警等级"],
    );
    ht.empty = "没有达到预警条件的家庭";
    for h in homes.iter().take(if exporting { usize::MAX } else { SHOWN_ROWS }) {
        ht.rows.push(vec![
            Cell::text(village_name(&h.village_code)),
            Cell::Link(h.household_no.clone(), format!("/web/household/{}", super::urlencode(&h.household_no))),
            Cell::Int(h.size),
            Cell::Yuan(h.a.twelve_months_fen),
            Cell::Yuan(h.a.twelve_months_fen / h.size.max(1)),
            Cell::Yuan(h.a.three_months_fen),
            level_cell(h.a.level),
        ]);
    }
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&pt, &ht], id).await;
    }

    let count = |l: Level| mine.iter().filter(|f| f.a.level == l).count() as i64;
    let settled: usize = res.settled.iter().filter(|(v, _)| v.starts_with(&region)).map(|(_, n)| n).sum();
    let region_name = village_name(&region);
    let mut page = Page::new(format!("因病返贫致贫预警 · {region_name}"));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &region).await?;
    page.crumbs.push(("因病致贫预警".into(), String::new()));
    let figures = Figures {
        over: count(Level::Over),
        near: count(Level::Near),
        rising: count(Level::Rising),
        persons: mine.len(),
        households: homes.len(),
        settled,
        age_secs: res.computed.elapsed().as_secs(),
    };
    let manage = matches!(u.p.role, Role::Admin | Role::Bureau);
    let view = risk_view(&region, as_of, &lf, &names, &figures, manage, pt.view(&u.path), ht.view(&u.path));
    page.view(&view)?;
    Ok(page.render(&u))
}

/// The counts the page states.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub over: i64,
    pub near: i64,
    pub rising: i64,
    /// Flagged people and households of the region (the tables show at most `SHOWN_ROWS`).
    pub persons: usize,
    pub households: usize,
    /// People of the region with a settlement in the 12 months.
    pub settled: usize,
    /// How old the list is.
    pub age_secs: u64,
}

/// The line form's values.
#[derive(Debug)]
pub struct LineFormView {
    pub region: String,
    pub year: i64,
    pub state: &'static str,
}

/// The early-warning page (`templates/risk.html`).
#[derive(Template)]
#[template(path = "risk.html")]
pub struct RiskView<'a> {
    pub region: String,
    pub as_of: String,
    pub from: String,
    pub line_note: String,
    /// (label, value, note)
    pub cards: Vec<(String, String, String)>,
    pub long_list: Option<String>,
    pub persons: TableView<'a>,
    pub households: TableView<'a>,
    /// For the bureau: the form that sets a line.
    pub line_form: Option<LineFormView>,
    pub freshness: String,
}

#[allow(clippy::too_many_arguments)]
pub fn risk_view<'a>(
    region: &str,
    as_of: Date,
    lf: &LineInForce,
    names: &HashMap<String, String>,
    f: &Figures,
    manage: bool,
    persons: TableView<'a>,
    households: TableView<'a>,
) -> RiskView<'a> {
    RiskView {
        region: region.to_string(),
        as_of: as_of.to_string(),
        from: months_back(as_of, 12).add_days(1).to_string(),
        line_note: line_note(lf, names),
        cards: vec![
            ("超过预警线".into(), format!("{} 人", count(f.over)), format!("预警线 {} 元/年", yuan(lf.line.line_fen))),
            ("接近预警线".into(), format!("{} 人", count(f.near)), format!("{} 元以上", yuan(lf.line.near_fen()))),
            ("快速上升".into(), format!("{} 人", count(f.rising)), "近 3 个月负担较重".into()),
            ("预警家庭".into(), format!("{} 户", count(f.households as i64)), format!("近 12 个月有结算的 {} 人", count(f.settled as i64))),
        ],
        long_list: (f.persons > SHOWN_ROWS || f.households > SHOWN_ROWS).then(|| {
            format!(
                "名单较长：页面按严重程度显示前 {} 条，完整名单请点“导出 Excel”（预警人员 {} 人，预警家庭 {} 户）。",
                count(SHOWN_ROWS as i64),
                count(f.persons as i64),
                count(f.households as i64)
            )
        }),
        persons,
        households,
        line_form: manage.then(|| LineFormView {
            region: region.to_string(),
            year: i64::from(as_of.year()),
            state: if lf.configured() { "当前已设定" } else { "当前未设定，按默认值" },
        }),
        freshness: format!("名单于 {} 秒前计算，每分钟更新一次。", f.age_secs),
    }
}

#[derive(Deserialize)]
pub struct LineForm {
    region: String,
    year: String,
    income: String,
    share: String,
    source: String,
}

/// Percent with up to two decimals → basis points.
fn percent_bp(s: &str) -> Option<i64> {
    let f = Fen::parse_yuan(s.trim()).ok()?;
    (0..=10_000).contains(&f.0).then_some(f.0)
}

pub async fn set_line(State(state): State<AppState>, u: WebUser, Form(f): Form<LineForm>) -> WebResult {
    if !matches!(u.p.role, Role::Admin | Role::Bureau) {
        return Err(WebError::forbidden(format!("{}不能设定预警线", u.p.role.name_zh())));
    }
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    let year: i64 = super::health::parse_year(&f.year)?;
    let income = Fen::parse_yuan(f.income.trim()).map_err(|e| WebError::bad(format!("人均可支配收入“{}”无效：{e}", f.income)))?;
    if income.0 <= 0 {
        return Err(WebError::bad("人均可支配收入必须大于 0"));
    }
    let share = percent_bp(&f.share).ok_or_else(|| WebError::bad(format!("比例“{}”无效（0–100，最多两位小数）", f.share)))?;
    let source = f.source.trim();
    if source.is_empty() {
        return Err(WebError::bad("请填写数据来源"));
    }
    state.store.set_warning_line(&region, year, income.0, share, source, &u.p.username).await?;
    state.web.risk.invalidate();
    state
        .store
        .audit(&u.p.username, "web.warning_line", &format!("{region} {year}: income {} share {share} bp ({source})", income.0))
        .await?;
    Ok(Redirect::to(&format!("/web/risk?region={region}&as_of={year}-12-31")).into_response())
}

/// The person page's line: their assessment on the day.
pub async fn person_flag(state: &AppState, id_no: &str, village: Option<&str>, as_of: Date) -> Result<String, WebError> {
    let Some(village) = village else { return Ok(String::new()) };
    let lf = line_in_force(state, village, i64::from(as_of.year())).await?;
    let from = months_back(as_of, 12);
    let pays = state.store.payments_in(village, from, as_of).await?;
    let Some(p) = pays.iter().find(|p| p.id_no == id_no) else {
        return Ok(format!("近 12 个月（截至 {as_of}）无结算"));
    };
    let a = assess(&p.payments, as_of, &lf.line);
    Ok(format!(
        "{}：截至 {as_of} 近 12 个月个人负担 {} 元（预警线 {} 元）",
        a.level.name_zh(),
        yuan(a.twelve_months_fen),
        yuan(lf.line.line_fen)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points() {
        assert_eq!(percent_bp("50"), Some(5_000));
        assert_eq!(percent_bp("37.5"), Some(3_750));
        assert_eq!(percent_bp("100"), Some(10_000));
        assert_eq!(percent_bp("100.01"), None);
        assert_eq!(percent_bp("-1"), None);
        assert_eq!(percent_bp("abc"), None);
    }

    fn row() -> LineRow {
        LineRow {
            region_code: "620422".into(),
            year: 2018,
            income_fen: 728_600,
            share_bp: 5_000,
            source: "2018 年统计公报".into(),
            set_by: "bureau1".into(),
            set_at: "2018-03-01T08:00:00Z".into(),
        }
    }

    #[test]
    fn the_line_note_names_the_region_and_the_default_says_so() {
        let names: HashMap<String, String> = [("620422".to_string(), "会宁县".to_string())].into_iter().collect();
        let lf = line_from(&[row()], 500_000, "620422100201", 2018);
        assert!(lf.configured());
        assert_eq!(lf.line.line_fen, 364_300);
        assert_eq!(
            line_note(&lf, &names),
            "2018 年预警线 3,643.00 元 = 农村居民人均可支配收入 7,286.00 元 × 50.00%（2018 年统计公报，bureau1 于 2018-03-01 设定，适用于会宁县）"
        );
        let lf = line_from(&[row()], 500_000, "620421", 2018);
        assert!(!lf.configured(), "a neighbouring county's line does not apply");
        assert_eq!(line_note(&lf, &names), "尚未设定 2018 年本地预警线，暂按默认 5,000.00 元（请医保局按当地农村居民人均可支配收入设定）");
    }

    #[test]
    fn the_page_counts_in_words_and_offers_the_form_to_the_bureau_only() {
        let names = HashMap::new();
        let lf = line_from(&[], 500_000, "620422", 2018);
        let f = Figures { over: 1_200, near: 3, rising: 0, persons: 1_203, households: 7, settled: 45_000, age_secs: 12 };
        let (pt, ht) = (Table::new("persons", "人员", vec!["a"]), Table::new("households", "家庭", vec!["a"]));
        let d = Date::new(2018, 12, 31).unwrap();
        let v = risk_view("620422", d, &lf, &names, &f, false, pt.view("/web/risk"), ht.view("/web/risk"));
        assert_eq!((v.from.as_str(), v.as_of.as_str()), ("2018-01-01", "2018-12-31"));
        assert_eq!(v.cards[0], ("超过预警线".to_string(), "1,200 人".to_string(), "预警线 5,000.00 元/年".to_string()));
        assert_eq!(v.cards[1].2, "4,000.00 元以上");
        assert_eq!(v.cards[3].2, "近 12 个月有结算的 45,000 人");
        assert!(v.long_list.as_deref().is_some_and(|l| l.contains("前 1,000 条") && l.contains("预警人员 1,203 人")));
        assert!(v.line_form.is_none());
        assert_eq!(v.freshness, "名单于 12 秒前计算，每分钟更新一次。");
        let v = risk_view("620422", d, &lf, &names, &Figures::default(), true, pt.view("/web/risk"), ht.view("/web/risk"));
        assert!(v.long_list.is_none());
        let form = v.line_form.expect("the bureau sets lines");
        assert_eq!((form.region.as_str(), form.year, form.state), ("620422", 2018, "当前未设定，按默认值"));
    }

    #[test]
    fn as_of_defaults_and_is_checked() {
        let d = Date::new(2018, 12, 31).unwrap();
        assert_eq!(parse_as_of(None, d).unwrap(), d);
        assert_eq!(parse_as_of(Some(" "), d).unwrap(), d);
        assert_eq!(parse_as_of(Some("2018-06-30"), d).unwrap(), Date::new(2018, 6, 30).unwrap());
        assert!(parse_as_of(Some("2018-02-30"), d).is_err());
    }
}
