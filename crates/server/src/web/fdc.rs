//! 家庭医生签约 (R-FDC-1/2/3): contract rates of the registered poor and of key people per village,
//! follow-up completion and the overdue lists per village doctor, the fee statement per hospital (the
//! 50/50 split, the fund's 60 % prepayment and the year-end settlement against services delivered), the
//! teams; and per person the contract, the plan (一人一策) and the service records.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_core::programmes::{FURTHER_DISEASES, KEY_DISEASES};
use baozhang_core::Date;
use baozhang_ingest::health::{contract_rate, fee_statement, follow_up_completion, follow_ups};
use baozhang_ingest::programmes::SERVICE_KINDS;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::programmes::{team_level_zh, Plan, ServiceRow};
use baozhang_store::{date_num, num_date};
use serde::Deserialize;

use super::cache::Built;
use super::health::{bp, may_manage, unmask_view, Ctx, UnmaskLink};
use super::table::{Card, Cell, Table};
use super::{count, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;
use askama::Template;
use std::sync::Arc;

#[derive(Deserialize, Default)]
pub struct FdcQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    as_of: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    unmasked: Option<String>,
}

/// The plan's categories (R-FDC-2).
pub const PLAN_CATEGORIES: [&str; 6] = ["大病", "慢病", "需住院治疗", "需康复", "残疾或留守", "无力就医"];

pub async fn fdc_page(State(state): State<AppState>, u: WebUser, Query(q): Query<FdcQ>) -> WebResult {
    let ctx = Ctx::new(&state, &u, q.region.as_deref(), q.unmasked.as_deref() == Some("1"), "web.fdc").await?;
    let year = super::health::year_param(&state, q.year.as_deref()).await?;
    let default_day = date_num(super::health::count_day(year)?);
    let as_of_n = super::health::parse_day(q.as_of.as_deref(), default_day, "统计日期")?;
    let as_of = num_date(as_of_n).ok_or_else(|| WebError::bad("统计日期无效"))?;
    if i64::from(as_of.year()) != year {
        return Err(WebError::bad(format!("统计日期 {as_of} 不在 {year} 年内")));
    }
    // A masked view on the default day is kept (`web::cache`); an unmasked one is built and logged.
    let built = if ctx.unmasked || as_of_n != default_day {
        Arc::new(build(&state, &u, &ctx, year, as_of).await?)
    } else {
        cached(&state, &u, &ctx.region, year).await?
    };
    if let Some(x) = q.export.as_deref() {
        if x == "fees" && u.p.role == Role::Cadre {
            return Err(WebError::forbidden("村干部不能导出服务费结算表"));
        }
        ctx.log_shown(&state, &u, Some(x)).await?;
        return super::table::export_for(&state, &u, &built.export_tables(), x).await;
    }
    ctx.log_shown(&state, &u, None).await?;
    Ok(built.page(&u).render(&u))
}

/// The county (or township, village) page of a year on its count day, masked, as kept by `web::cache`.
pub async fn cached(state: &AppState, u: &WebUser, region: &str, year: i64) -> Result<Arc<Built>, WebError> {
    let address = format!("/web/fdc?region={region}&year={year}");
    super::cache::kept(state, u, "fdc", address, region, year, |st, who, region, year| {
        Box::pin(async move {
            let ctx = Ctx::new(&st, &who, Some(&region), false, "web.fdc").await?;
            build(&st, &who, &ctx, year, super::health::count_day(year)?).await
        })
    })
    .await
}

/// The page's figures and tables for the region of `ctx` on `as_of`.
async fn build(state: &AppState, u: &WebUser, ctx: &Ctx, year: i64, as_of: Date) -> Result<Built, WebError> {
    let as_of_n = date_num(as_of);
    let poor = state.store.registered_poor(&ctx.region, as_of_n).await?;
    let contracts = state.store.fdc_contracts(&ctx.region, year).await?;
    let registry = state.store.chronic_registry(&ctx.region).await?;
    let services = state.store.fdc_services(&ctx.region, year).await?;
    let teams = state.store.fdc_teams().await?;
    let cases = state.store.mdt_cases(&ctx.region).await?;
    let mut key_ids: HashSet<String> = registry.iter().map(|r| r.row.id_no.clone()).collect();
    key_ids.extend(cases.iter().map(|c| c.row.id_no.clone()));
    let rate = contract_rate(&poor, &contracts, &key_ids);
    let fus = follow_ups(&poor, &registry, &contracts, &services, as_of);
    let (made, due) = follow_up_completion(&fus);
    let overdue: Vec<_> = fus.iter().filter(|f| f.status.overdue > 0).collect();

    // Per village.
    let signed: HashSet<&str> = contracts.iter().map(|c| c.row.id_no.as_str()).collect();
    let mut villages: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for (id, who) in &poor {
        let v = villages.entry(who.village_code.as_str()).or_default();
        let s = signed.contains(id.as_str());
        v[0] += 1;
        v[1] += usize::from(s);
        if key_ids.contains(id) {
            v[2] += 1;
            v[3] += usize::from(s);
        }
    }
    for f in &overdue {
        villages.entry(f.who.village_code.as_str()).or_default()[4] += 1;
    }
    let mut vt = Table::new(
        "villages",
        "签约率（按村）",
        vec!["村", "建档立卡贫困人口", "已签约", "签约率", "重点人群", "重点人群已签约", "重点人群签约率", "随访逾期人数"],
    );
    for (v, n) in &villages {
        vt.rows.push(vec![
            Cell::Link(ctx.place(v), format!("/web/fdc?region={v}&year={year}")),
            Cell::Int(n[0] as i64),
            Cell::Int(n[1] as i64),
            Cell::Pct(bp(n[1], n[0])),
            Cell::Int(n[2] as i64),
            Cell::Int(n[3] as i64),
            Cell::Pct(bp(n[3], n[2])),
            Cell::Int(n[4] as i64),
        ]);
    }

    // Overdue per doctor, then each overdue patient.
    let mut by_doc: BTreeMap<(&str, &str), [u32; 3]> = BTreeMap::new();
    for f in &fus {
        let e = by_doc.entry((f.doctor.as_str(), f.who.village_code.as_str())).or_default();
        e[0] += 1;
        if f.status.overdue > 0 {
            e[1] += 1;
            e[2] += f.status.overdue;
        }
    }
    let mut dt = Table::new("doctors", "随访逾期（按责任医生）", vec!["责任医生", "村", "管理慢病患者", "逾期患者", "欠随访次数"]);
    for ((doc, v), n) in by_doc.iter().filter(|(_, n)| n[1] > 0) {
        dt.rows.push(vec![
            Cell::text(*doc),
            Cell::text(ctx.place(v)),
            Cell::Int(i64::from(n[0])),
            Cell::Int(i64::from(n[1])),
            Cell::Int(i64::from(n[2])),
        ]);
    }
    dt.empty = "没有逾期的随访";
    let mut ot = Table::new(
        "overdue",
        "随访逾期名单",
        vec!["责任医生", "村", "姓名", "证件号码", "病种", "随访要求", "已随访", "应随访", "欠", "最近随访", "最早欠随访日期"],
    );
    ot.empty = "没有逾期的随访";
    ot.page_size = 25;
    let mut od = overdue.clone();
    od.sort_by(|a, b| (&a.doctor, &a.who.village_code, &a.id_no).cmp(&(&b.doctor, &b.who.village_code, &b.id_no)));
    for f in od {
        let [village, name, id] = ctx.person(&f.id_no, &f.who);
        ot.rows.push(vec![
            Cell::text(&f.doctor),
            village,
            name,
            id,
            Cell::text(f.diseases.join("、")),
            Cell::text(f.status.schedule.name_zh()),
            Cell::Int(i64::from(f.status.done)),
            Cell::Int(i64::from(f.status.due)),
            Cell::Int(i64::from(f.status.overdue)),
            Cell::text(f.last.map(|d| d.to_string()).unwrap_or_else(|| "无".into())),
            Cell::text(f.status.next_due.map(|d| d.to_string()).unwrap_or_default()),
        ]);
    }

    // The fee statement (not for village cadres: it is the hospitals' money).
    let institutions: HashMap<String, String> = state.store.institutions().await?.into_iter().map(|i| (i.fixmedins_code, i.name)).collect();
    let team_inst: HashMap<String, String> = teams.iter().map(|t| (t.team_code.clone(), t.institution.clone())).collect();
    let show_fees = u.p.role != Role::Cadre;
    let insured = if show_fees { state.store.fdc_insured(&ctx.region, year).await? } else { HashSet::new() };
    let served: HashSet<String> = services.iter().map(|s| s.id_no.clone()).collect();
    let statement = fee_statement(&contracts, &team_inst, &insured, &served);
    let mut ft = Table::new(
        "fees",
        format!("{year} 年家庭医生签约服务费结算表（按医疗机构）"),
        vec![
            "医疗机构",
            "签约人数",
            "基础包",
            "中级包",
            "服务费合计（元）",
            "医保基金承担（元）",
            "公卫经费承担（元）",
            "个人承担（元）",
            "年初预付 60%（元）",
            "有服务记录的签约",
            "按服务应付（元）",
            "年终结算（元，负数为应退回）",
        ],
    );
    let mut total = [0i64; 7];
    for l in &statement {
        let name = institutions.get(&l.institution).map_or_else(|| l.institution.clone(), |n| format!("{n}（{}）", l.institution));
        ft.rows.push(vec![
            Cell::text(name),
            Cell::Int(l.contracts as i64),
            Cell::Int(l.basic as i64),
            Cell::Int(l.intermediate as i64),
            Cell::Yuan(l.fee_fen),
            Cell::Yuan(l.year.fund_share_fen),
            Cell::Yuan(l.public_health_fen),
            Cell::Yuan(l.person_fen),
            Cell::Yuan(l.year.prepaid_fen),
            Cell::Int(l.served as i64),
            Cell::Yuan(l.year.earned_fen),
            Cell::Yuan(l.year.balance_fen),
        ]);
        for (k, v) in
            [l.fee_fen, l.year.fund_share_fen, l.public_health_fen, l.person_fen, l.year.prepaid_fen, l.year.earned_fen, l.year.balance_fen]
                .iter()
                .enumerate()
        {
            total[k] += v;
        }
    }
    if !statement.is_empty() {
        ft.rows.push(vec![
            Cell::text("合计"),
            Cell::Int(statement.iter().map(|l| l.contracts as i64).sum()),
            Cell::Int(statement.iter().map(|l| l.basic as i64).sum()),
            Cell::Int(statement.iter().map(|l| l.intermediate as i64).sum()),
            Cell::Yuan(total[0]),
            Cell::Yuan(total[1]),
            Cell::Yuan(total[2]),
            Cell::Yuan(total[3]),
            Cell::Yuan(total[4]),
            Cell::Int(statement.iter().map(|l| l.served as i64).sum()),
            Cell::Yuan(total[5]),
            Cell::Yuan(total[6]),
        ]);
    }
    ft.empty = "本年度没有签约";
    let n_of_team: HashMap<&str, usize> = contracts.iter().fold(HashMap::new(), |mut m, c| {
        *m.entry(c.row.team_code.as_str()).or_default() += 1;
        m
    });
    let mut tt = Table::new(
        "teams",
        "家庭医生团队",
        vec!["团队编号", "团队名称", "级别", "结算医疗机构", "服务区划", "团队长", "本年签约（本区划）"],
    );
    for t in teams.iter().filter(|t| t.region_code.starts_with(&ctx.region) || ctx.region.starts_with(&t.region_code)) {
        tt.rows.push(vec![
            Cell::text(&t.team_code),
            Cell::text(&t.name),
            Cell::text(team_level_zh(t.level)),
            Cell::text(institutions.get(&t.institution).cloned().unwrap_or_else(|| t.institution.clone())),
            Cell::text(ctx.place(&t.region_code)),
            Cell::text(t.leader.clone().unwrap_or_default()),
            Cell::Int(n_of_team.get(t.team_code.as_str()).copied().unwrap_or(0) as i64),
        ]);
    }
    tt.empty = "尚未导入家庭医生团队";
    let mut page = Page::new(format!("家庭医生签约服务 · {} · {year}", ctx.place(&ctx.region)));
    page.crumbs = super::dashboard::crumbs_for(state, u, &ctx.region).await?;
    page.crumbs.push(("家庭医生".into(), String::new()));
    page.view(&head_view(u, ctx, year, as_of, &rate, (made, due), overdue.len(), fus.len()))?;
    let mut tables = vec![vt, dt, ot];
    if show_fees {
        tables.push(ft);
    }
    tables.push(tt);
    Ok(Built::new(page, tables))
}

/// The head of the 家庭医生 page: the period form, the four cards, what the figures mean.
#[derive(Template)]
#[template(path = "fdc.html")]
struct FdcHead {
    region: String,
    year: i64,
    as_of: String,
    cards: Vec<Card>,
    further: String,
    unmask: Option<UnmaskLink>,
}

#[allow(clippy::too_many_arguments)]
fn head_view(
    u: &WebUser,
    ctx: &Ctx,
    year: i64,
    as_of: Date,
    rate: &baozhang_ingest::health::ContractRate,
    (made, due): (u32, u32),
    overdue: usize,
    managed: usize,
) -> FdcHead {
    let ok = |v: Option<i64>, target: i64| if v.is_some_and(|v| v >= target) { "达标" } else { "未达标" };
    let poor = bp(rate.contracted, rate.poor);
    let key = bp(rate.key_contracted, rate.key);
    FdcHead {
        region: ctx.region.clone(),
        year,
        as_of: as_of.to_string(),
        cards: vec![
            Card::new(
                "建档立卡贫困人口签约率",
                super::pct(poor),
                format!("{} / {} 人，目标 ≥95%（{}）", count(rate.contracted as i64), count(rate.poor as i64), ok(poor, 9_500)),
            ),
            Card::new(
                "重点人群签约率",
                super::pct(key),
                format!("{} / {} 人，目标 100%（{}）", count(rate.key_contracted as i64), count(rate.key as i64), ok(key, 10_000)),
            ),
            Card::new(
                "随访完成率",
                super::pct(bp(made as usize, due as usize)),
                format!("截至 {as_of} 应随访 {} 次，已随访 {} 次", count(i64::from(due)), count(i64::from(made))),
            ),
            Card::new("随访逾期", format!("{} 人", count(overdue as i64)), format!("管理慢病患者 {} 人", count(managed as i64))),
        ],
        further: FURTHER_DISEASES.join("、"),
        unmask: unmask_view(u, ctx),
    }
}

// ───────────────────────────── one person ─────────────────────────────

/// The person behind a key, if in the user's scope.
async fn person_of(state: &AppState, u: &WebUser, key: &str) -> Result<baozhang_store::service::PersonRecord, WebError> {
    u.region()?;
    let pid = state.web.pid_key(&state.store).await?;
    let not_found = || WebError::not_found("未找到该人员，或不在您的管辖范围内");
    let id_no = pid.decode(key.trim()).ok_or_else(not_found)?;
    let person = state.store.person(&id_no).await?.ok_or_else(not_found)?;
    let enrolments = state.store.enrolments_of(&id_no).await?;
    if !u.p.covers_person(person.village_code.as_deref(), &enrolments) {
        return Err(not_found());
    }
    Ok(person)
}

/// Who may write plans and service records: the bureau and the village's cadre (who keeps the records
/// of the village doctor's visits).
fn may_record(u: &WebUser) -> bool {
    may_manage(u) || u.p.role == Role::Cadre
}

pub async fn person_page(State(state): State<AppState>, u: WebUser, Path(key): Path<String>) -> WebResult {
    let p = person_of(&state, &u, &key).await?;
    let year = super::dashboard::default_year(&state).await;
    let contracts = state.store.fdc_contracts_of(&p.id_no).await?;
    let plan = state.store.fdc_plan(&p.id_no, year).await?.unwrap_or_default();
    let services = state.store.fdc_services_of(&p.id_no).await?;
    let person_link = super::person::person_href(&state.web.pid_key(&state.store).await?, &p.id_no);
    let teams: HashMap<String, String> = state.store.fdc_teams().await?.into_iter().map(|t| (t.team_code, t.name)).collect();
    let registered: Vec<_> = state.store.chronic_registry_of(&p.id_no).await?;
    let schedule = baozhang_core::programmes::Schedule::of(registered.iter().map(|r| r.disease.as_str()));
    let follow_dates: Vec<Date> = services.iter().filter(|s| s.kind == "随访").filter_map(|s| num_date(s.service_date)).collect();
    let day = {
        let today = crate::clock::today();
        if i64::from(today.year()) == year {
            today
        } else {
            Date::new(year as u16, 12, 31).unwrap_or(today)
        }
    };
    let status = baozhang_core::programmes::follow_up_status(schedule, &follow_dates, day);
    let mut ct = Table::new("contracts", "签约记录", vec!["年度", "团队", "责任医生", "服务包", "服务费（元）", "签约日期"]);
    ct.empty = "未签约";
    for c in &contracts {
        ct.rows.push(vec![
            Cell::Int(c.year),
            Cell::text(teams.get(&c.team_code).map_or_else(|| c.team_code.clone(), |n| format!("{n}（{}）", c.team_code))),
            Cell::text(&c.doctor),
            Cell::text(&c.package),
            Cell::Yuan(c.fee_fen),
            Cell::text(super::date_text(c.signed_date)),
        ]);
    }
    let mut st = Table::new("services", "服务记录（随访、送医上门、送人就医）", vec!["日期", "类型", "病种", "医生", "备注"]);
    st.empty = "暂无服务记录";
    for s in &services {
        st.rows.push(vec![
            Cell::text(super::date_text(s.service_date)),
            Cell::text(&s.kind),
            Cell::text(&s.disease),
            Cell::text(&s.doctor),
            Cell::text(s.note.clone().unwrap_or_default()),
        ]);
    }
    let mut page = Page::new(format!("家庭医生签约服务 · {}", mask_name(&p.name)));
    if let Some(v) = &p.village_code {
        page.crumbs = super::dashboard::crumbs_for(&state, &u, v).await.unwrap_or_default();
    }
    page.crumbs.push((format!("{} {}", mask_name(&p.name), mask_id(&p.id_no)), person_link));
    page.crumbs.push(("家庭医生".into(), String::new()));
    let registered_text = if registered.is_empty() {
        "无".to_string()
    } else {
        registered
            .iter()
            .map(|r| format!("{}（{}）", r.disease, if r.eligible { "符合办卡标准" } else { "不符合办卡标准" }))
            .collect::<Vec<_>>()
            .join("、")
    };
    let view = PersonFdcView {
        registered: registered_text,
        schedule: schedule.name_zh().to_string(),
        day: day.to_string(),
        done: status.done,
        due: status.due,
        overdue: status.overdue,
        year,
        here: format!("/web/fdc/person/{}", key.trim()),
        may_record: may_record(&u),
        categories: PLAN_CATEGORIES.iter().map(|c| c.to_string()).collect(),
        plan_category: plan.category.clone(),
        fields: vec![
            ("doctors", "责任医生", plan.doctors.clone()),
            ("referral", "转诊去向（医院、床位、专家）", plan.referral.clone()),
            ("medication", "用药（药名、剂量、疗程）", plan.medication.clone()),
            ("schedule", "随访安排", plan.schedule.clone()),
        ],
        updated: if plan.updated_by.is_empty() {
            "尚未制定".to_string()
        } else {
            format!("{} 于 {} 更新；每次修改都记入审计日志", plan.updated_by, crate::clock::beijing_text(&plan.updated_at))
        },
        kinds: SERVICE_KINDS.iter().map(|k| k.to_string()).collect(),
        diseases: KEY_DISEASES.iter().chain(FURTHER_DISEASES.iter()).map(|d| d.to_string()).collect(),
    };
    page.view(&ContractsHead { view: &view })?.tables(&u, &[&ct]);
    page.view(&view)?.tables(&u, &[&st]);
    if view.may_record {
        page.view(&ServiceFormView { view: &view })?;
    }
    Ok(page.render(&u))
}

/// A person's 家庭医生 page: the follow-up line, the plan form, the service form.
#[derive(Template)]
#[template(path = "fdc_person_plan.html")]
struct PersonFdcView {
    registered: String,
    schedule: String,
    day: String,
    done: u32,
    due: u32,
    overdue: u32,
    year: i64,
    /// The page's own address (the forms post under it).
    here: String,
    may_record: bool,
    categories: Vec<String>,
    plan_category: String,
    /// (name, label, value) of the plan's text fields.
    fields: Vec<(&'static str, &'static str, String)>,
    updated: String,
    kinds: Vec<String>,
    diseases: Vec<String>,
}

#[derive(Template)]
#[template(path = "fdc_person_line.html")]
struct ContractsHead<'a> {
    view: &'a PersonFdcView,
}

#[derive(Template)]
#[template(path = "fdc_person_service.html")]
struct ServiceFormView<'a> {
    view: &'a PersonFdcView,
}

#[derive(Deserialize)]
pub struct PlanForm {
    category: String,
    #[serde(default)]
    doctors: String,
    #[serde(default)]
    referral: String,
    #[serde(default)]
    medication: String,
    #[serde(default)]
    schedule: String,
}

fn short(s: &str, field: &str) -> Result<String, WebError> {
    let s = s.trim();
    if s.chars().count() > 200 {
        return Err(WebError::bad(format!("{field}不超过 200 字")));
    }
    Ok(s.to_string())
}

pub async fn save_plan(State(state): State<AppState>, u: WebUser, Path(key): Path<String>, Form(f): Form<PlanForm>) -> WebResult {
    if !may_record(&u) {
        return Err(WebError::forbidden(format!("{}不能修改一人一策", u.p.role.name_zh())));
    }
    let p = person_of(&state, &u, &key).await?;
    if !PLAN_CATEGORIES.contains(&f.category.trim()) {
        return Err(WebError::bad(format!("类别“{}”无效（{}）", f.category, PLAN_CATEGORIES.join("、"))));
    }
    let doctors = short(&f.doctors, "责任医生")?;
    if doctors.is_empty() {
        return Err(WebError::bad("请填写责任医生"));
    }
    let year = super::dashboard::default_year(&state).await;
    let plan = Plan {
        id_no: p.id_no.clone(),
        year,
        category: f.category.trim().to_string(),
        doctors,
        referral: short(&f.referral, "转诊去向")?,
        medication: short(&f.medication, "用药")?,
        schedule: short(&f.schedule, "随访安排")?,
        ..Default::default()
    };
    state.store.save_fdc_plan(&plan, &u.p.username).await?;
    Ok(Redirect::to(&format!("/web/fdc/person/{}", key.trim())).into_response())
}

#[derive(Deserialize)]
pub struct ServiceForm {
    date: String,
    kind: String,
    #[serde(default)]
    disease: String,
    doctor: String,
    #[serde(default)]
    note: String,
}

pub async fn add_service(State(state): State<AppState>, u: WebUser, Path(key): Path<String>, Form(f): Form<ServiceForm>) -> WebResult {
    if !may_record(&u) {
        return Err(WebError::forbidden(format!("{}不能登记服务", u.p.role.name_zh())));
    }
    let p = person_of(&state, &u, &key).await?;
    let day = Date::parse(f.date.trim()).map_err(|e| WebError::bad(format!("日期“{}”无效：{e}", f.date)))?;
    if day > crate::clock::today() {
        return Err(WebError::bad("不能登记将来日期的服务"));
    }
    let kind = f.kind.trim();
    if !SERVICE_KINDS.contains(&kind) {
        return Err(WebError::bad(format!("服务类型“{kind}”无效")));
    }
    let disease = f.disease.trim();
    if !disease.is_empty() && !baozhang_ingest::programmes::is_chronic_disease(disease) {
        return Err(WebError::bad(format!("病种“{disease}”无效")));
    }
    let doctor = short(&f.doctor, "医生")?;
    if doctor.is_empty() {
        return Err(WebError::bad("请填写医生"));
    }
    let s = ServiceRow {
        id_no: p.id_no.clone(),
        service_date: date_num(day),
        kind: kind.to_string(),
        disease: disease.to_string(),
        doctor,
        note: Some(short(&f.note, "备注")?).filter(|n| !n.is_empty()),
    };
    if !state.store.add_fdc_service(&s, &u.p.username).await? {
        return Err(WebError::bad(format!("{day} 的这条{kind}记录已登记过")));
    }
    Ok(Redirect::to(&format!("/web/fdc/person/{}", key.trim())).into_response())
}
