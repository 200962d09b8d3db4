//! 退出验收 (R-EXIT-1): the "basic medical care guaranteed" check of every household with a poor
//! member — every living member insured; inpatient stays settled with the poor's preferences (basic
//! insurance, critical illness, assistance); chronic patients contracted and followed up; major-disease
//! patients treated. Lists the households that fail and why, per village; a failing household goes to
//! the rectification ledger in one step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::supervise::{exit_failures, ExitMember};
use baozhang_ingest::health::{follow_ups, is_treated};
use baozhang_ingest::worklist::mask_name;
use baozhang_store::date_num;
use baozhang_store::oversight::Rectification;
use serde::Deserialize;

use super::cache::Built;
use super::health::{bp, count_day, unmask_view, year_param, Ctx, UnmaskLink};
use super::table::{Card, Cell, InlineForm, Table};
use super::{count, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;
use askama::Template;

/// A household's check: its members (living) and each failing member's name and reasons.
pub struct HouseholdCheck {
    pub household_no: String,
    pub village_code: String,
    pub members: usize,
    pub failures: Vec<(String, Vec<String>)>,
    /// The ID numbers of the members in `failures`, in the same order (for the access log).
    pub failing_ids: Vec<String>,
}

/// The checks of a region and year, kept for a minute (a county takes seconds; its Excel export and a
/// second look then cost nothing). Dropped on import, like the dashboard's figures.
#[derive(Default)]
pub struct ExitCache {
    map: Mutex<HashMap<(String, i64), Computed>>,
}

/// When a region's checks were computed, and the checks.
type Computed = (Instant, Arc<Vec<HouseholdCheck>>);

impl ExitCache {
    pub const TTL: Duration = Duration::from_secs(60);

    pub fn invalidate(&self) {
        self.map.lock().expect("exit cache lock").clear();
    }

    pub async fn get(&self, state: &AppState, region: &str, year: i64) -> Result<Arc<Vec<HouseholdCheck>>, WebError> {
        let key = (region.to_string(), year);
        if let Some((at, v)) = self.map.lock().expect("exit cache lock").get(&key) {
            if at.elapsed() <= Self::TTL {
                return Ok(v.clone());
            }
        }
        let t = Instant::now();
        let v = Arc::new(check(state, region, year).await?);
        tracing::info!(region, year, households = v.len(), ms = t.elapsed().as_millis() as u64, "exit check computed");
        let mut m = self.map.lock().expect("exit cache lock");
        m.retain(|_, (at, _)| at.elapsed() <= Self::TTL);
        m.insert(key, (Instant::now(), v.clone()));
        Ok(v)
    }
}

/// Checks every household with a poor member under `region` for the year, counted on its count day.
pub async fn check(state: &AppState, region: &str, year: i64) -> Result<Vec<HouseholdCheck>, WebError> {
    let day = count_day(year)?;
    let d = date_num(day);
    let rows = state.store.exit_rows(region, year, d).await?;
    let poor = state.store.registered_poor(region, d).await?;
    let registry = state.store.chronic_registry(region).await?;
    let contracts = state.store.fdc_contracts(region, year).await?;
    let services = state.store.fdc_services(region, year).await?;
    let cases = state.store.mdt_cases(region).await?;
    let chronic: HashSet<&str> = registry.iter().map(|r| r.row.id_no.as_str()).collect();
    let signed: HashSet<&str> = contracts.iter().map(|c| c.row.id_no.as_str()).collect();
    let missing: HashMap<String, u32> =
        follow_ups(&poor, &registry, &contracts, &services, day).into_iter().map(|f| (f.id_no, f.status.overdue)).collect();
    let untreated: HashSet<&str> = cases
        .iter()
        .filter(|c| !(is_treated(&c.row.status) || c.row.treated_date.is_some() || c.row.status == "死亡"))
        .map(|c| c.row.id_no.as_str())
        .collect();
    let mut by: BTreeMap<(&str, &str), HouseholdCheck> = BTreeMap::new();
    for r in &rows {
        let h = by.entry((r.village_code.as_str(), r.household_no.as_str())).or_insert_with(|| HouseholdCheck {
            household_no: r.household_no.clone(),
            village_code: r.village_code.clone(),
            members: 0,
            failures: Vec::new(),
            failing_ids: Vec::new(),
        });
        if r.dead {
            continue;
        }
        h.members += 1;
        let m = ExitMember {
            dead: r.dead,
            insured: r.insured,
            inpatient: r.inpatient,
            without_preferences: r.without_preferences,
            chronic: chronic.contains(r.id_no.as_str()),
            contracted: signed.contains(r.id_no.as_str()),
            follow_ups_missing: missing.get(&r.id_no).copied().unwrap_or(0),
            untreated_case: untreated.contains(r.id_no.as_str()),
        };
        let why = exit_failures(&m);
        if !why.is_empty() {
            h.failures.push((r.name.clone(), why));
            h.failing_ids.push(r.id_no.clone());
        }
    }
    Ok(by.into_values().collect())
}

#[derive(Deserialize, Default)]
pub struct ExitQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    unmasked: Option<String>,
}

fn may_rectify(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

pub async fn exit_page(State(state): State<AppState>, u: WebUser, Query(q): Query<ExitQ>) -> WebResult {
    let ctx = Ctx::new(&state, &u, q.region.as_deref(), q.unmasked.as_deref() == Some("1"), "web.exit").await?;
    let year = year_param(&state, q.year.as_deref()).await?;
    // A masked view is kept (`web::cache`); an unmasked one is built and logged.
    let built = if ctx.unmasked { Arc::new(build(&state, &u, &ctx, year).await?) } else { cached(&state, &u, &ctx.region, year).await? };
    if let Some(x) = q.export.as_deref() {
        ctx.log_shown(&state, &u, Some(x)).await?;
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    ctx.log_shown(&state, &u, None).await?;
    Ok(built.page(&u).render(&u))
}

/// The region's page of a year, masked, as kept by `web::cache`.
pub async fn cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<Arc<Built>, WebError> {
    let address = format!("/web/exit?region={region}&year={year}");
    super::cache::kept(state, u, "exit", address, region, year, |st, who, region, year| {
        Box::pin(async move {
            let ctx = Ctx::new(&st, &who, Some(&region), false, "web.exit").await?;
            build(&st, &who, &ctx, year).await
        })
    })
    .await
}

/// A county lists thousands of failing households: the page shows the first 1,000 (the export has all).
const SHOWN: usize = 1_000;

async fn build(state: &AppState, u: &WebUser, ctx: &Ctx, year: i64) -> Result<Built, WebError> {
    let checks = state.web.exit.get(state, &ctx.region, year).await?;
    let mut villages: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for h in checks.iter() {
        let v = villages.entry(h.village_code.as_str()).or_default();
        v[0] += 1;
        v[1] += usize::from(h.failures.is_empty());
        v[2] += usize::from(!h.failures.is_empty());
    }
    let mut vt = Table::new("villages", format!("{year} 年退出验收（按村）"), vec!["村", "贫困户", "通过", "未通过", "通过率"]);
    for (v, n) in &villages {
        vt.rows.push(vec![
            Cell::Link(ctx.place(v), format!("/web/exit?region={v}&year={year}")),
            Cell::Int(n[0] as i64),
            Cell::Int(n[1] as i64),
            Cell::Int(n[2] as i64),
            Cell::Pct(bp(n[1], n[0])),
        ]);
    }
    let failing: Vec<&HouseholdCheck> = checks.iter().filter(|h| !h.failures.is_empty()).collect();
    let rect = may_rectify(u);
    let failing_table = |rows: &[&HouseholdCheck]| {
        let mut ft = Table::new("failing", "未通过的户及原因", vec!["村", "户号", "在世成员", "未达标成员", "原因", "整改"]);
        ft.empty = "全部通过";
        ft.page_size = 25;
        for h in rows {
            h.failing_ids.iter().for_each(|id| ctx.note_shown(id));
            let why: Vec<String> = h
                .failures
                .iter()
                .map(|(name, r)| format!("{}：{}", if ctx.unmasked { name.clone() } else { mask_name(name) }, r.join("、")))
                .collect();
            let op = if rect {
                Cell::form(InlineForm::post("/web/exit/rectify", "转整改").hidden("household", &h.household_no).hidden("year", year))
            } else {
                Cell::text("")
            };
            ft.rows.push(vec![
                Cell::text(ctx.place(&h.village_code)),
                Cell::Link(h.household_no.clone(), format!("/web/household/{}", h.household_no)),
                Cell::Int(h.members as i64),
                Cell::Int(h.failures.len() as i64),
                Cell::text(why.join("；")),
                op,
            ]);
        }
        ft
    };
    let shown = failing.len().min(SHOWN);
    let mut page = Page::new(format!("退出验收 · {} · {year} 年", ctx.place(&ctx.region)));
    page.crumbs = super::dashboard::crumbs_for(state, u, &ctx.region).await?;
    page.crumbs.push(("退出验收".into(), String::new()));
    page.push(&super::supervise::subnav("/web/exit"));
    let passed = checks.len() - failing.len();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &failing {
        for (_, r) in &h.failures {
            for x in r {
                let k = if x.contains("倾斜政策") {
                    "住院未享受倾斜政策"
                } else if x.contains("欠随访") {
                    "慢病欠随访"
                } else {
                    x.as_str()
                };
                *reasons.entry(k).or_default() += 1;
            }
        }
    }
    page.view(&ExitHead {
        cards: vec![
            Card::new("贫困户", format!("{} 户", count(checks.len() as i64)), format!("统计日 {}", count_day(year)?)),
            Card::new("通过", format!("{} 户", count(passed as i64)), super::pct(bp(passed, checks.len()))),
            Card::new(
                "未通过",
                format!("{} 户", count(failing.len() as i64)),
                reasons.iter().map(|(k, n)| format!("{k} {}", count(*n as i64))).collect::<Vec<_>>().join("；"),
            ),
        ],
        unmask: unmask_view(u, ctx),
        more: (shown < failing.len()).then(|| (count(failing.len() as i64), count(shown as i64))),
    })?;
    let mut built = Built::new(page, vec![failing_table(&failing[..shown]), vt]);
    if shown < failing.len() {
        built.exports.push(failing_table(&failing));
    }
    Ok(built)
}

#[derive(Template)]
#[template(path = "exit.html")]
struct ExitHead {
    cards: Vec<Card>,
    unmask: Option<UnmaskLink>,
    /// (failing households, shown) when the page shows only the first of them.
    more: Option<(String, String)>,
}

#[derive(Deserialize)]
pub struct RectForm {
    household: String,
    year: String,
}

/// A failing household into the ledger (source 退出验收; one item per household and year).
pub async fn to_rectify(State(state): State<AppState>, u: WebUser, Form(f): Form<RectForm>) -> WebResult {
    u.require(may_rectify(&u), "登记整改事项")?;
    let own = u.region()?.to_string();
    let year = super::health::parse_year(&f.year)?;
    let village = state.store.household_village(f.household.trim()).await?.ok_or_else(|| WebError::not_found("没有这个户"))?;
    if !village.starts_with(&own) {
        return Err(WebError::not_found("没有这个户"));
    }
    let checks = check(&state, &village, year).await?;
    let h = checks.iter().find(|h| h.household_no == f.household.trim()).ok_or_else(|| WebError::not_found("该户不是贫困户"))?;
    if h.failures.is_empty() {
        return Err(WebError::bad("该户已通过退出验收，无需整改"));
    }
    let problem: Vec<String> = h.failures.iter().map(|(name, r)| format!("{}：{}", mask_name(name), r.join("、"))).collect();
    let source_ref = format!("exit:{year}:{}", h.household_no);
    let r = Rectification {
        problem: format!("退出验收未通过（{year} 年）：{}", problem.join("；")),
        source: "退出验收".into(),
        source_ref: Some(source_ref.clone()),
        region_code: village,
        subject: format!("户 {}", h.household_no),
        responsible_unit: "乡镇卫生院、村委会".into(),
        responsible_person: "健康专干".into(),
        deadline: date_num(crate::clock::today().add_days(30)),
        measures: "逐人落实参保、签约随访和待遇，补结算".into(),
        ..Default::default()
    };
    let id = match state.store.add_rectification(&r, &u.p.username).await? {
        Some(id) => id,
        None => {
            state.store.rectification_by_ref(&source_ref).await?.map(|r| r.id).ok_or_else(|| WebError::internal("ledger item vanished"))?
        }
    };
    Ok(Redirect::to(&format!("/web/rectify/{id}")).into_response())
}
