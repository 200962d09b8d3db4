//! The dashboard (驾驶舱) of a region and a year, drillable county → township → village → household →
//! person: the POLICY §5 indicators that exist so far, each with a chart and its numbers.
//!
//! Speed: per-village figures come from one set-based pass over the store
//! (`Store::village_indicators`), cached in memory per year and refreshed in the background when older
//! than [`Cache::TTL`] (or at once after an import or a reconciliation from the workbench); every region
//! is a sum of its villages, so a page costs a scan of a few hundred cached rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use baozhang_core::policy::ALL_FUNDS;
use baozhang_core::Date;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::indicators::{VillageStats, PSN_PART_BUCKETS_FEN};
use serde::Deserialize;
use serde_json::json;

use askama::Template;

use super::table::{Card, Cell, Table};
use super::{count, pct, ratio_bp, urlencode, wan, yuan, Page, WebError, WebResult, WebUser};
use crate::AppState;

/// The per-village figures of one year, as last computed.
pub struct Snapshot {
    pub year: i64,
    pub villages: Vec<VillageStats>,
    pub computed: Instant,
    pub compute_ms: u128,
}

#[derive(Default)]
pub struct Cache {
    years: Mutex<HashMap<i64, Arc<Snapshot>>>,
    refreshing: Mutex<std::collections::HashSet<i64>>,
    /// The latest enrolment year and when it was read (a scan of the enrolments: ~50 ms for a county).
    latest_year: Mutex<Option<(Instant, i64)>>,
}

impl Cache {
    pub const TTL: Duration = Duration::from_secs(60);

    /// Drops every snapshot (after an import or a reconciliation).
    pub fn invalidate(&self) {
        self.years.lock().expect("cache lock").clear();
        *self.latest_year.lock().expect("cache lock") = None;
    }

    /// The latest year with enrolments (the default period), read at most once a TTL.
    async fn latest_year(&self, state: &AppState) -> Option<i64> {
        if let Some((at, y)) = *self.latest_year.lock().expect("cache lock") {
            if at.elapsed() <= Self::TTL {
                return Some(y);
            }
        }
        match state.store.latest_enrolment_year().await {
            Ok(Some(y)) => {
                *self.latest_year.lock().expect("cache lock") = Some((Instant::now(), y));
                Some(y)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "latest enrolment year unreadable; the current year is shown");
                None
            }
        }
    }

    /// The year's snapshot: the cached one (refreshed in the background when stale), or computed now.
    pub async fn get(&self, state: &AppState, year: i64) -> Result<Arc<Snapshot>, WebError> {
        let cached = self.years.lock().expect("cache lock").get(&year).cloned();
        if let Some(s) = cached {
            if s.computed.elapsed() > Self::TTL && self.refreshing.lock().expect("cache lock").insert(year) {
                let st = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = st.web.dashboard.compute(&st, year).await {
                        tracing::warn!(status = %e.status, "background refresh of the dashboard failed");
                    }
                    st.web.dashboard.refreshing.lock().expect("cache lock").remove(&year);
                });
            }
            return Ok(s);
        }
        self.compute(state, year).await
    }

    async fn compute(&self, state: &AppState, year: i64) -> Result<Arc<Snapshot>, WebError> {
        let t = Instant::now();
        let as_of = Date::new(year as u16, 12, 31).ok_or_else(|| WebError::bad(format!("年度 {year} 无效")))?;
        let villages = state.store.village_indicators(year, as_of, state.web.warning_line_fen).await?;
        let s = Arc::new(Snapshot { year, villages, computed: Instant::now(), compute_ms: t.elapsed().as_millis() });
        tracing::info!(year, villages = s.villages.len(), ms = s.compute_ms as u64, "dashboard figures computed");
        self.years.lock().expect("cache lock").insert(year, s.clone());
        // Kept in the database, so that the first views after a restart are answered at once.
        match serde_json::to_string(&s.villages) {
            Ok(body) => {
                if let Err(e) = state.store.keep_figures(&kept_name(year), &body).await {
                    tracing::warn!(error = %e, "keeping the dashboard figures failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "dashboard figures not serialisable"),
        }
        Ok(s)
    }

    /// Takes the figures kept in the database for the year, if any and not yet computed here, with
    /// their age (so that they are refreshed in the background at the first view).
    pub async fn load_kept(&self, state: &AppState, year: i64) {
        if self.years.lock().expect("cache lock").contains_key(&year) {
            return;
        }
        let kept = match state.store.kept_figures(&kept_name(year)).await {
            Ok(Some(k)) => k,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading the kept dashboard figures failed");
                return;
            }
        };
        let villages: Vec<VillageStats> = match serde_json::from_str(&kept.1) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "kept dashboard figures unreadable; computing them");
                return;
            }
        };
        let age = age_of(&kept.0).unwrap_or(Self::TTL + Duration::from_secs(1));
        let computed = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        tracing::info!(year, villages = villages.len(), age_s = age.as_secs(), "dashboard figures taken from the database");
        self.years.lock().expect("cache lock").insert(year, Arc::new(Snapshot { year, villages, computed, compute_ms: 0 }));
    }
}

fn kept_name(year: i64) -> String {
    format!("dashboard.villages.{year}")
}

/// The age of a UTC timestamp written by `store::now_text` (2026-12-07T01:02:03Z).
fn age_of(utc: &str) -> Option<Duration> {
    let d = Date::parse(utc.get(..10)?).ok()?;
    let t = utc.get(11..19)?;
    let secs: Vec<i64> = t.split(':').map(|p| p.parse().ok()).collect::<Option<Vec<_>>>()?;
    let at = i64::from(d.to_days()) * 86_400 + secs.first()? * 3600 + secs.get(1)? * 60 + secs.get(2)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(now.saturating_sub(at).max(0) as u64))
}

/// Computes the default year's figures in the background, so the first page is fast too.
/// What `serve` builds at start, in the background: the dashboard's figures (from `kept_figures`, then
/// fresh), the early-warning list, and each county's kept pages (`cache::warm_pages`). The handle ends
/// when all of it is built (`bench web` waits for it, to measure the first view after a restart).
pub fn warm(state: &AppState) -> tokio::task::JoinHandle<()> {
    // The slip renderer loads its CJK fonts once; do it now rather than on the first print.
    let web = state.web.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = web.slip_renderer() {
            tracing::warn!(error = %e.message, "settlement slips unavailable");
        }
    });
    let st = state.clone();
    tokio::spawn(async move {
        let year = default_year(&st).await;
        st.web.dashboard.load_kept(&st, year).await;
        let mut counties: Vec<String> = match st.web.dashboard.get(&st, year).await {
            Ok(snap) => {
                let mut c: Vec<String> = snap.villages.iter().filter_map(|v| v.village_code.get(..6)).map(str::to_string).collect();
                c.dedup();
                c.sort();
                c.dedup();
                c
            }
            Err(e) => {
                tracing::warn!(status = %e.status, "warming the dashboard failed");
                Vec::new()
            }
        };
        if let Some(day) = Date::new(year as u16, 12, 31) {
            if let Err(e) = st.web.risk.get(&st, day).await {
                tracing::warn!(status = %e.status, "warming the early-warning list failed");
            }
        }
        // The county pages that take seconds, for each county's bureau (a province: its first 20).
        counties.truncate(20);
        super::cache::warm_pages(&st, counties, year).await;
    })
}

/// Code lengths of the levels: province, city, county, township, village.
const LEVELS: [usize; 5] = [2, 4, 6, 9, 12];

fn child_len(code: &str) -> Option<usize> {
    LEVELS.iter().copied().find(|&l| l > code.len())
}

fn level_name(len: usize) -> &'static str {
    match len {
        2 => "省",
        4 => "市",
        6 => "县（区）",
        9 => "乡镇",
        12 => "村",
        _ => "区划",
    }
}

/// The place of people whose village is unknown (on a death or military roster only): counted in the
/// county of their enrolment.
pub const UNKNOWN_VILLAGE: &str = "村不详";

/// Sum of the villages under `code`, and per child region.
fn rollup(s: &Snapshot, code: &str) -> (VillageStats, BTreeMap<String, VillageStats>) {
    let mut total = VillageStats::default();
    let mut children: BTreeMap<String, VillageStats> = BTreeMap::new();
    let cl = child_len(code);
    for v in s.villages.iter().filter(|v| v.village_code.starts_with(code)) {
        total.add(v);
        if let Some(l) = cl {
            // A unit above the child level (the county of people whose village is unknown) is a child
            // of its own, 村不详, so the children add up to the total.
            let key = if v.village_code.len() >= l { &v.village_code[..l] } else { v.village_code.as_str() };
            children.entry(key.to_string()).or_default().add(v);
        }
    }
    (total, children)
}

/// Breadcrumbs from the user's own region down to `code`.
pub async fn crumbs_for(state: &AppState, u: &WebUser, code: &str) -> Result<Vec<(String, String)>, WebError> {
    let names = state.web.region_names(&state.store).await?;
    let own = u.region()?;
    let mut out = Vec::new();
    for l in LEVELS {
        if l > code.len() {
            break;
        }
        let c = &code[..l];
        if c.len() < own.len() {
            continue;
        }
        out.push((names.get(c).cloned().unwrap_or_else(|| c.to_string()), format!("/web/region/{c}")));
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
pub struct RegionQ {
    #[serde(default)]
    year: Option<i64>,
    #[serde(default)]
    export: Option<String>,
}

/// The latest year with enrolment data (the demo's data is of 2018), else this year.
pub async fn default_year(state: &AppState) -> i64 {
    state.web.dashboard.latest_year(state).await.unwrap_or_else(|| i64::from(crate::clock::today().year()))
}

/// The user's own region — or, for a whole-country administrator, the first region that has more than
/// one child (so the landing page is the county, not a chain of single provinces and cities).
pub async fn region_home(State(state): State<AppState>, u: WebUser, Query(q): Query<RegionQ>) -> WebResult {
    let own = u.region()?.to_string();
    let year = match q.year {
        Some(y) => y,
        None => default_year(&state).await,
    };
    let snap = state.web.dashboard.get(&state, year).await?;
    let mut code = own;
    loop {
        let (_, children) = rollup(&snap, &code);
        if children.len() == 1 && code.len() < 6 {
            code = children.into_keys().next().unwrap_or_default();
        } else {
            break;
        }
    }
    if code.is_empty() {
        let mut p = Page::new("驾驶舱");
        p.view(&super::Alert {
            class: "", message: "尚无数据：请先在“名单导入”中上传贫困人口、参保等名单。"
        })?;
        return Ok(p.render(&u));
    }
    Ok(Redirect::to(&format!("/web/region/{code}?year={year}")).into_response())
}

fn year_end(year: i64) -> Result<Date, WebError> {
    Date::new(year as u16, 12, 31).ok_or_else(|| WebError::bad(format!("年度 {year} 无效")))
}

pub async fn region_page(State(state): State<AppState>, u: WebUser, Path(code): Path<String>, Query(q): Query<RegionQ>) -> WebResult {
    let code = u.region_in_scope(Some(&code))?.to_string();
    let year = match q.year {
        Some(y) if (2000..=2100).contains(&y) => y,
        Some(y) => return Err(WebError::bad(format!("年度 {y} 无效"))),
        None => default_year(&state).await,
    };
    let started = Instant::now();
    let names = state.web.region_names(&state.store).await?;
    let snap = state.web.dashboard.get(&state, year).await?;
    let (t, children) = rollup(&snap, &code);
    let region_name = names.get(&code).cloned().unwrap_or_else(|| code.clone());
    if !names.contains_key(&code) && !snap.villages.iter().any(|v| v.village_code.starts_with(&code)) {
        return Err(WebError::not_found("没有这个区划"));
    }
    let cl = child_len(&code);
    let child_level = cl.map(level_name).unwrap_or("户");
    let link = |c: &str| format!("/web/region/{c}?year={year}");
    // R-RISK-1 as the early-warning list has it: the 12 months to the year's end, each person against the
    // line of their own village (cached per day; `risk::RiskCache`).
    let risk = state.web.risk.get(&state, year_end(year)?).await?;
    let flagged = |prefix: &str, level: baozhang_core::risk::Level| {
        risk.persons.iter().filter(|p| p.a.level == level && p.village_code.starts_with(prefix)).count() as i64
    };

    // The children's table (or, in a village, its households).
    let mut ct = Table::new(
        "children",
        format!("下辖{child_level}"),
        vec![
            child_level,
            "建档立卡人数",
            "已参保",
            "参保率",
            "监测对象参保率",
            "比对问题",
            "结算人次",
            "基金支付（元）",
            "贫困人口住院实际报销比例",
            "超预警线人数",
        ],
    );
    for (c, s) in &children {
        let label = if c.len() <= code.len() {
            // People of the region whose village is unknown: their findings, in the worklist.
            Cell::Link(UNKNOWN_VILLAGE.to_string(), format!("/web/worklist?region={c}&village=unknown"))
        } else {
            Cell::Link(names.get(c).cloned().unwrap_or_else(|| c.clone()), link(c))
        };
        ct.rows.push(vec![
            label,
            Cell::Int(s.poor),
            Cell::Int(s.poor_insured),
            Cell::Pct(ratio_bp(s.poor_insured, s.poor)),
            Cell::Pct(ratio_bp(s.marginal_insured, s.marginal)),
            Cell::Int(s.findings_total()),
            Cell::Int(s.settlements),
            Cell::Yuan(s.fund_pay_fen),
            Cell::Pct(s.poor_inpatient_ratio_total_bp()),
            Cell::Int(flagged(c, baozhang_core::risk::Level::Over)),
        ]);
    }
    let mut households =
        Table::new("households", "农户", vec!["户编号", "户主", "人数", "建档立卡人数", "已参保", "结算人次", "个人负担（元）"]);
    households.page_size = 25;
    if code.len() == 12 {
        for h in state.store.households_in(&code, year, year_end(year)?).await? {
            households.rows.push(vec![
                Cell::Link(h.household_no.clone(), format!("/web/household/{}?year={year}", urlencode(&h.household_no))),
                Cell::text(h.head_name.as_deref().map(mask_name).unwrap_or_default()),
                Cell::Int(h.members),
                Cell::Int(h.poor),
                Cell::Int(h.insured),
                Cell::Int(h.settlements),
                Cell::Yuan(h.psn_part_fen),
            ]);
        }
    }
    let mut classes = Table::new("findings", "参保比对问题（最近一次比对）", vec!["问题类别", "人数", "应采取措施"]);
    for (k, (class, name, action)) in baozhang_store::reconcile::CLASSES.iter().enumerate() {
        let n = t.findings[k];
        if n == 0 {
            continue;
        }
        classes.rows.push(vec![
            Cell::Link(name.to_string(), format!("/web/worklist?region={code}&class={class}")),
            Cell::Int(n),
            Cell::text(*action),
        ]);
    }
    let mut layers = Table::new("layers", "各层基金支付", vec!["支付项目", "金额（元）", "占医疗费总额", "支付人次", "占结算人次"]);
    for f in ALL_FUNDS {
        let i = f.index();
        layers.rows.push(vec![
            Cell::text(f.name_zh()),
            Cell::Yuan(t.funds_fen[i]),
            Cell::Pct(ratio_bp(t.funds_fen[i], t.medfee_fen)),
            Cell::Int(t.fund_hits[i]),
            Cell::Pct(ratio_bp(t.fund_hits[i], t.settlements)),
        ]);
    }
    layers.rows.push(vec![
        Cell::text("个人负担"),
        Cell::Yuan(t.psn_part_fen),
        Cell::Pct(ratio_bp(t.psn_part_fen, t.medfee_fen)),
        Cell::Int(t.settlements),
        Cell::Pct(Some(10_000).filter(|_| t.settlements > 0)),
    ]);
    let mut dist = Table::new("psn-part", "贫困人口住院个人负担分布（每次结算）", vec!["个人负担区间", "人次", "占比"]);
    let bucket_names = bucket_labels();
    let dist_total: i64 = t.poor_inpatient_psn_part_buckets.iter().sum();
    for (i, n) in t.poor_inpatient_psn_part_buckets.iter().enumerate() {
        dist.rows.push(vec![Cell::text(&bucket_names[i]), Cell::Int(*n), Cell::Pct(ratio_bp(*n, dist_total))]);
    }
    let tables = [&ct, &households, &classes, &layers, &dist];
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &tables, id).await;
    }

    let mut page = Page::new(format!("{region_name} · {year} 年"));
    page.crumbs = crumbs_for(&state, &u, &code).await?;
    if let Some(last) = page.crumbs.last_mut() {
        last.1 = String::new();
    }
    let this = default_year(&state).await;
    let unknown = |c: &str| c.len() <= code.len();
    let children_view: Vec<Child> = children
        .iter()
        .map(|(c, s)| Child {
            name: if unknown(c) { UNKNOWN_VILLAGE.to_string() } else { names.get(c).cloned().unwrap_or_else(|| c.clone()) },
            href: if unknown(c) { format!("/web/worklist?region={c}&village=unknown") } else { link(c) },
            stats: s,
        })
        .collect();
    let risk_counts = [
        flagged(&code, baozhang_core::risk::Level::Over),
        flagged(&code, baozhang_core::risk::Level::Near),
        flagged(&code, baozhang_core::risk::Level::Rising),
    ];
    // 县域内就诊率, remote care and policy awareness (定期报表, issue 19), for county roles.
    let county_role = matches!(u.p.role, crate::auth::Role::Admin | crate::auth::Role::Bureau | crate::auth::Role::Auditor);
    let view = region_view(&RegionInput {
        code: &code,
        year,
        this_year: this,
        child_level,
        total: &t,
        children: &children_view,
        risk: risk_counts,
        indicators: county_role && (6..=9).contains(&code.len()),
    });
    page.view(&view)?;
    if code.len() == 12 {
        page.tables(&u, &[&households]);
    } else {
        page.tables(&u, &[&ct]);
    }
    page.tables(&u, &[&classes, &layers, &dist]);
    page.view(&RegionNote {
        year,
        computed_secs: snap.computed.elapsed().as_secs(),
        compute_ms: snap.compute_ms,
        page_ms: started.elapsed().as_millis(),
    })?;
    Ok(page.render(&u))
}

/// A child region of the page's region (or its people of unknown village), with its figures.
pub struct Child<'a> {
    pub name: String,
    pub href: String,
    pub stats: &'a VillageStats,
}

/// What the region page is made of.
pub struct RegionInput<'a> {
    pub code: &'a str,
    pub year: i64,
    /// The latest insurance year: the year picker offers it and the four before it.
    pub this_year: i64,
    pub child_level: &'a str,
    pub total: &'a VillageStats,
    pub children: &'a [Child<'a>],
    /// People over, near and rising towards the early-warning line (R-RISK-1).
    pub risk: [i64; 3],
    /// Whether the 健康扶贫指标 link is offered (county roles on a county or township).
    pub indicators: bool,
}

/// A chart: `app.js` draws it with ECharts from `option` (JSON, in a data attribute) and navigates to
/// `links[i]` when bar or slice i is clicked.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub option: String,
}

#[derive(Template)]
#[template(path = "region.html")]
pub struct RegionView {
    pub code: String,
    pub years: Vec<(i64, bool)>,
    pub cards: Vec<Card>,
    pub risk_href: String,
    pub indicators_href: Option<String>,
    pub charts: Vec<Chart>,
}

#[derive(Template)]
#[template(path = "region_note.html")]
pub struct RegionNote {
    pub year: i64,
    pub computed_secs: u64,
    pub compute_ms: u128,
    pub page_ms: u128,
}

/// The region page's head: year picker, cards (money in 万元, counts with separators), links, charts.
pub fn region_view(i: &RegionInput<'_>) -> RegionView {
    let (t, year, code) = (i.total, i.year, i.code);
    let avg_delay = t.flag_delay_avg_days().map_or_else(|| "—".into(), |d| format!("{} 天", count(d)));
    let cards = vec![
        Card::new(
            "建档立卡贫困人口参保率",
            pct(ratio_bp(t.poor_insured, t.poor)),
            format!("{} / {} 人（目标 100%）", count(t.poor_insured), count(t.poor)),
        ),
        Card::new(
            "监测对象（边缘户）参保率",
            pct(ratio_bp(t.marginal_insured, t.marginal)),
            format!("{} / {} 人", count(t.marginal_insured), count(t.marginal)),
        ),
        Card::new("标识及时性", avg_delay, format!("认定到参保标识的平均天数（{} 人）", count(t.flagged))),
        Card::new("参保比对问题", count(t.findings_total()), "最近一次比对，点击下表查看清单"),
        Card::new("一站式结算人次", count(t.settlements), format!("其中住院 {} 人次", count(t.inpatient))),
        Card::new("基金支付", wan(t.fund_pay_fen), format!("即 {} 元；医疗费总额 {}", yuan(t.fund_pay_fen), wan(t.medfee_fen))),
        Card::new(
            "贫困人口住院实际报销比例",
            pct(t.poor_inpatient_ratio_total_bp()),
            format!(
                "政策范围内口径 {}；{} 人次，人均个人负担 {} 元",
                pct(t.poor_inpatient_ratio_compliant_bp()),
                count(t.poor_inpatient),
                t.poor_inpatient_psn_part_avg_fen().map(yuan).unwrap_or_else(|| "—".into())
            ),
        ),
        Card::new(
            "个人负担超预警线",
            format!("{} 人", count(i.risk[0])),
            format!("截至 {year}-12-31 近 12 个月，按本地预警线；接近预警线 {} 人，快速上升 {} 人", count(i.risk[1]), count(i.risk[2])),
        ),
    ];
    let mut charts = Vec::new();
    if !i.children.is_empty() {
        let names: Vec<&str> = i.children.iter().map(|c| c.name.as_str()).collect();
        let links: Vec<&str> = i.children.iter().map(|c| c.href.as_str()).collect();
        let rates: Vec<f64> =
            i.children.iter().map(|c| ratio_bp(c.stats.poor_insured, c.stats.poor).map_or(0.0, |b| b as f64 / 100.0)).collect();
        let level = i.child_level;
        charts.push(Chart {
            id: "chart-enrol",
            title: format!("各{level}建档立卡贫困人口参保率（%）——点击下钻"),
            option: json!({
                "tooltip": {"trigger": "axis"}, "grid": {"left": 8, "right": 40, "bottom": 8, "top": 8, "containLabel": true},
                "rows": names.len(),
                "yAxis": {"type": "category", "data": names, "inverse": true, "axisLabel": {"interval": 0, "fontSize": 11}},
                "xAxis": {"type": "value", "min": (rates.iter().cloned().fold(100.0, f64::min) - 1.0).floor().max(0.0), "max": 100},
                "series": [{"type": "bar", "data": rates, "itemStyle": {"color": "#1f5fa8"}, "label": {"show": true, "position": "right", "fontSize": 10, "formatter": "{c}%"}}],
                "links": links,
            })
            .to_string(),
        });
        let findings: Vec<i64> = i.children.iter().map(|c| c.stats.findings_total()).collect();
        charts.push(Chart {
            id: "chart-findings",
            title: format!("各{level}参保比对问题数——点击下钻"),
            option: json!({
                "tooltip": {"trigger": "axis"}, "grid": {"left": 8, "right": 40, "bottom": 8, "top": 8, "containLabel": true},
                "rows": names.len(),
                "yAxis": {"type": "category", "data": names, "inverse": true, "axisLabel": {"interval": 0, "fontSize": 11}},
                "xAxis": {"type": "value"},
                "series": [{"type": "bar", "data": findings, "itemStyle": {"color": "#b3261e"}, "label": {"show": true, "position": "right", "fontSize": 10}}],
                "links": links,
            })
            .to_string(),
        });
    }
    let fund_data: Vec<serde_json::Value> = ALL_FUNDS
        .iter()
        .map(|f| json!({"name": f.name_zh(), "value": t.funds_fen[f.index()] / 100}))
        .chain(std::iter::once(json!({"name": "个人负担", "value": t.psn_part_fen / 100})))
        .collect();
    charts.push(Chart {
        id: "chart-funds",
        title: "医疗费用由谁支付（元）".into(),
        // The legend wraps under the donut (never paged over it); on a phone the labels go and the
        // legend names the slices.
        option: json!({"baseOption": {"tooltip": {"trigger": "item", "formatter": "{b}：{c} 元（{d}%）"}, "legend": {"bottom": 0, "left": "center"},
                "series": [{"type": "pie", "radius": ["30%", "55%"], "center": ["50%", "42%"], "avoidLabelOverlap": true, "data": fund_data,
                            "label": {"formatter": "{b}\n{d}%", "overflow": "break"}, "labelLayout": {"hideOverlap": true}}]},
                "media": [{"query": {"maxWidth": 460}, "option": {"series": [{"radius": ["28%", "50%"], "label": {"show": false}}]}}]})
        .to_string(),
    });
    charts.push(Chart {
        id: "chart-dist",
        title: "贫困人口住院个人负担分布（人次）".into(),
        option: json!({"tooltip": {"trigger": "axis"}, "grid": {"left": 8, "right": 10, "bottom": 8, "top": 20, "containLabel": true},
                "xAxis": {"type": "category", "data": bucket_labels(), "axisLabel": {"interval": 0, "fontSize": 10, "hideOverlap": false, "rotate": 30}},
                "yAxis": {"type": "value"},
                "series": [{"type": "bar", "data": t.poor_inpatient_psn_part_buckets.to_vec(), "itemStyle": {"color": "#8a5a00"}}]})
        .to_string(),
    });
    let hit_share: Vec<f64> =
        ALL_FUNDS.iter().map(|f| ratio_bp(t.fund_hits[f.index()], t.settlements).map_or(0.0, |b| b as f64 / 100.0)).collect();
    charts.push(Chart {
        id: "chart-hits",
        title: "各层保障触及的结算人次占比（%）".into(),
        option: json!({"tooltip": {"trigger": "axis"}, "grid": {"left": 8, "right": 20, "bottom": 8, "top": 10, "containLabel": true},
                "yAxis": {"type": "category", "data": ALL_FUNDS.iter().map(|f| f.name_zh()).collect::<Vec<_>>()},
                "xAxis": {"type": "value", "max": 100},
                "series": [{"type": "bar", "data": hit_share, "itemStyle": {"color": "#1e7b34"}}]})
        .to_string(),
    });
    RegionView {
        code: code.to_string(),
        years: (i.this_year - 4..=i.this_year).rev().map(|y| (y, y == year)).collect(),
        cards,
        risk_href: format!("/web/risk?region={}&as_of={year}-12-31", urlencode(code)),
        indicators_href: i.indicators.then(|| format!("/web/forms/indicators?region={}&year={year}", urlencode(code))),
        charts,
    }
}

fn bucket_labels() -> Vec<String> {
    let mut out = Vec::new();
    let mut lo = 0i64;
    for (i, hi) in PSN_PART_BUCKETS_FEN.iter().enumerate() {
        if i == 0 && *hi == 0 {
            out.push("0 元".to_string());
        } else {
            out.push(format!("{}–{} 元", lo / 100, hi / 100));
        }
        lo = *hi;
    }
    out.push(format!("{} 元以上", lo / 100));
    out
}

#[derive(Deserialize, Default)]
pub struct HouseholdQ {
    #[serde(default)]
    year: Option<i64>,
    #[serde(default)]
    export: Option<String>,
}

pub async fn household_page(
    State(state): State<AppState>,
    u: WebUser,
    Path(household_no): Path<String>,
    Query(q): Query<HouseholdQ>,
) -> WebResult {
    let own = u.region()?.to_string();
    let year = match q.year {
        Some(y) => y,
        None => default_year(&state).await,
    };
    // Every member is checked, not the first: a household number shared across villages (a data error,
    // or another county's numbering) shows only the members inside the user's region.
    let members: Vec<_> = state
        .store
        .persons_of_household(household_no.trim(), year, year_end(year)?)
        .await?
        .into_iter()
        .filter(|m| m.village_code.as_deref().is_some_and(|v| v.starts_with(&own)))
        .collect();
    if members.is_empty() {
        return Err(WebError::not_found("未找到该户，或不在您的管辖范围内"));
    }
    let pid = state.web.pid_key(&state.store).await?;
    let mut t = Table::new(
        "members",
        "家庭成员",
        vec!["姓名", "证件号码", "性别", "出生日期", "与户主关系", "身份", "参保", "结算人次", "个人负担（元）"],
    );
    for m in &members {
        t.rows.push(vec![
            Cell::Link(mask_name(&m.name), super::person::person_href(&pid, &m.id_no)),
            Cell::text(mask_id(&m.id_no)),
            Cell::text(&m.sex),
            Cell::text(super::date_text(m.birth_date)),
            Cell::text(m.relation.clone().unwrap_or_default()),
            Cell::text(if m.identities.is_empty() {
                "—".to_string()
            } else {
                m.identities
                    .iter()
                    .map(|i| baozhang_core::Identity::parse(i).map_or(i.as_str(), |x| x.name_zh()))
                    .collect::<Vec<_>>()
                    .join("、")
            }),
            Cell::text(if m.dead {
                "已故"
            } else if m.insured {
                "已参保"
            } else {
                "未参保"
            }),
            Cell::Int(m.settlements),
            Cell::Yuan(m.psn_part_fen),
        ]);
    }
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t], id).await;
    }
    let mut page = Page::new(format!("户 {}", household_no.trim()));
    if let Some(v) = &members.iter().find_map(|m| m.village_code.clone()) {
        page.crumbs = crumbs_for(&state, &u, v).await?;
    }
    page.crumbs.push((format!("户 {}", household_no.trim()), String::new()));
    page.tables(&u, &[&t]);
    Ok(page.render(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_figures_read_back_as_computed() {
        let mut v = VillageStats { village_code: "620422100001".into(), poor: 12, poor_insured: 11, settlements: 7, ..Default::default() };
        v.findings[2] = 3;
        v.funds_fen[0] = 123_456;
        let body = serde_json::to_string(&vec![v.clone()]).unwrap();
        let back: Vec<VillageStats> = serde_json::from_str(&body).unwrap();
        assert_eq!(back, vec![v]);
    }

    #[test]
    fn the_age_of_kept_figures_is_read_from_their_timestamp() {
        let now = baozhang_store::now_text();
        assert!(age_of(&now).unwrap() < Duration::from_secs(5), "{now}");
        let old = age_of("2018-01-01T00:00:00Z").unwrap();
        assert!(old > Duration::from_secs(86_400 * 365), "{old:?}");
        assert_eq!(age_of("not a time"), None);
    }

    #[test]
    fn the_region_head_reads_as_officials_read_it() {
        let t = VillageStats {
            village_code: "620422".into(),
            poor: 115_014,
            poor_insured: 115_000,
            settlements: 321_552,
            inpatient: 41_230,
            fund_pay_fen: 41_234_567_890,
            medfee_fen: 52_000_004_999,
            ..Default::default()
        };
        let a = VillageStats { poor: 10, poor_insured: 9, ..Default::default() };
        let children = [
            Child { name: "会师镇".into(), href: "/web/region/620422100?year=2018".into(), stats: &a },
            Child { name: UNKNOWN_VILLAGE.into(), href: "/web/worklist?region=620422&village=unknown".into(), stats: &a },
        ];
        let input = RegionInput {
            code: "620422",
            year: 2018,
            this_year: 2019,
            child_level: "乡镇",
            total: &t,
            children: &children,
            risk: [1_204, 3, 0],
            indicators: false,
        };
        let v = region_view(&input);
        let card = |label: &str| v.cards.iter().find(|c| c.label == label).map(|c| (c.value.clone(), c.note.clone())).unwrap();
        assert_eq!(card("基金支付"), ("41,234.57 万元".into(), "即 412,345,678.90 元；医疗费总额 52,000.00 万元".into()));
        assert_eq!(card("一站式结算人次"), ("321,552".into(), "其中住院 41,230 人次".into()));
        assert_eq!(card("建档立卡贫困人口参保率").1, "115,000 / 115,014 人（目标 100%）");
        assert_eq!(card("个人负担超预警线").0, "1,204 人");
        assert_eq!(v.years, vec![(2019, false), (2018, true), (2017, false), (2016, false), (2015, false)]);
        assert_eq!(v.indicators_href, None);
        assert_eq!(v.risk_href, "/web/risk?region=620422&as_of=2018-12-31");
        // The bar charts name the children (the unknown village too) and drill down on a click.
        let enrol: serde_json::Value = serde_json::from_str(&v.charts[0].option).unwrap();
        assert_eq!(enrol["yAxis"]["data"], json!(["会师镇", UNKNOWN_VILLAGE]));
        assert_eq!(enrol["links"][1], "/web/worklist?region=620422&village=unknown");
        assert_eq!(enrol["series"][0]["data"], json!([90.0, 90.0]));
        assert_eq!(
            v.charts.iter().map(|c| c.id).collect::<Vec<_>>(),
            ["chart-enrol", "chart-findings", "chart-funds", "chart-dist", "chart-hits"]
        );
        // A village has no children: only the three charts of its own figures.
        let v = region_view(&RegionInput { children: &[], indicators: true, ..input });
        assert_eq!(v.charts.len(), 3);
        assert_eq!(v.indicators_href.as_deref(), Some("/web/forms/indicators?region=620422&year=2018"));
    }
}
