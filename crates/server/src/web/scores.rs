//! 考核评分 (R-SUP-4): assessment forms as data (data/forms/*.toml: seed 001's cadre form and its
//! 五督 form), a sheet per form, unit and year; the items the data can answer are filled by
//! 自动评分 with the evidence (figures and where they come from), the rest by hand; every answer is
//! kept (the latest counts); totals per unit, to Excel and PDF.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::Form as AxForm;
use baozhang_core::supervise::{probe_policy, score, total, Answer, Form, FormItem, ScoreRule, AUTO_CHECKS};
use baozhang_ingest::health::{card_coverage, compare_cards, contract_rate, follow_up_completion, follow_ups, treatment_rate};
use baozhang_slip::ReportData;
use baozhang_store::date_num;
use baozhang_store::indicators::VillageStats;
use baozhang_store::supervise::{ScoreAnswer, ScoreSheet};
use serde::Deserialize;

use super::health::{count_day, year_param};
use super::supervise::Card;
use super::table::{Cell, InlineForm, Input, Table};
use super::{urlencode, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// The shipped forms (checked by a unit test in core).
pub fn forms() -> &'static [Form] {
    static F: OnceLock<Vec<Form>> = OnceLock::new();
    F.get_or_init(|| {
        [include_str!("../../../../data/forms/wudu.toml"), include_str!("../../../../data/forms/cadre.toml")]
            .iter()
            .map(|t| Form::parse(t).expect("data/forms is valid"))
            .collect()
    })
}

fn form(id: &str) -> Result<&'static Form, WebError> {
    forms().iter().find(|f| f.id == id).ok_or_else(|| WebError::not_found(format!("没有考核表“{id}”")))
}

fn may_score(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau | Role::Auditor)
}

#[derive(Deserialize, Default)]
pub struct ScoresQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    year: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// The latest answer of each item.
fn latest(answers: &[ScoreAnswer]) -> HashMap<&str, &ScoreAnswer> {
    answers.iter().map(|a| (a.item_no.as_str(), a)).collect()
}

fn rating(points: i64, veto: bool) -> &'static str {
    match (veto, points) {
        (true, _) => "差（一票否决）",
        (_, p) if p >= 90 => "好",
        (_, p) if p >= 75 => "较好",
        (_, p) if p >= 60 => "一般",
        _ => "差",
    }
}

pub async fn scores_page(State(state): State<AppState>, u: WebUser, Query(q): Query<ScoresQ>) -> WebResult {
    let region = u.region_in_scope(q.region.as_deref())?.to_string();
    let year = year_param(&state, q.year.as_deref()).await?;
    let names = state.web.region_names(&state.store).await?;
    let sheets = state.store.score_sheets(&region, year).await?;
    let mut t = Table::new(
        "totals",
        format!("{year} 年考核得分（按单位）"),
        vec!["考核表", "被考核单位", "已评项", "得分", "满分", "等次", "评分表"],
    );
    t.empty = "本年尚未建立考核表";
    for s in &sheets {
        let Ok(f) = form(&s.form_id) else { continue };
        let answers = state.store.score_answers(s.id).await?;
        let l = latest(&answers);
        let (pts, n, veto) = total(f, l.iter().filter_map(|(no, a)| Answer::parse(&a.answer).map(|x| (*no, x))));
        t.rows.push(vec![
            Cell::text(&f.title),
            Cell::text(names.get(&s.region_code).cloned().unwrap_or_else(|| s.region_code.clone())),
            Cell::text(format!("{n}/{}", f.items.len())),
            Cell::Int(pts),
            Cell::Int(f.total_points()),
            Cell::text(if n == f.items.len() { rating(pts * 100 / f.total_points().max(1), veto) } else { "评分中" }),
            Cell::Link("打开".into(), format!("/web/scores/{}", s.id)),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let mut ft = Table::new("forms", "考核表", vec!["考核表", "来源", "考核项", "满分", "可自动评分项"]);
    for f in forms() {
        ft.rows.push(vec![
            Cell::text(&f.title),
            Cell::text(&f.source),
            Cell::Int(f.items.len() as i64),
            Cell::Int(f.total_points()),
            Cell::Int(f.items.iter().filter(|i| i.auto.is_some()).count() as i64),
        ]);
    }
    let view = scores_view(&region, year, may_score(&u), forms());
    let mut page = Page::new(format!("考核评分 · {year} 年"));
    page.crumbs.push(("考核评分".into(), String::new()));
    // The totals first (what the page is for), then the form opening a sheet, then the forms.
    page.view(&super::supervise::subnav_view("/web/scores"))?.tables(&u, &[&t]).view(&view)?.tables(&u, &[&ft]);
    Ok(page.render(&u))
}

#[derive(Template)]
#[template(path = "scores.html")]
pub struct ScoresView {
    /// The forms a sheet may be opened for (id, title); empty: no form to open one.
    pub forms: Vec<(String, String)>,
    pub region: String,
    pub year: i64,
}

/// The scores page's view model: the form opening a sheet, for those who score.
pub fn scores_view(region: &str, year: i64, scoring: bool, forms: &[Form]) -> ScoresView {
    ScoresView {
        forms: if scoring { forms.iter().map(|f| (f.id.clone(), f.title.clone())).collect() } else { Vec::new() },
        region: region.to_string(),
        year,
    }
}

#[derive(Deserialize)]
pub struct OpenForm {
    form: String,
    region: String,
    year: String,
}

pub async fn open(State(state): State<AppState>, u: WebUser, AxForm(f): AxForm<OpenForm>) -> WebResult {
    u.require(may_score(&u), "评分")?;
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    if !state.web.region_names(&state.store).await?.contains_key(&region) {
        return Err(WebError::bad(format!("区划代码 {region} 不存在")));
    }
    let fm = form(f.form.trim())?;
    let year = super::health::parse_year(&f.year)?;
    let s = state.store.score_sheet(&fm.id, &region, year, &u.p.username).await?;
    Ok(Redirect::to(&format!("/web/scores/{}", s.id)).into_response())
}

async fn sheet_in_scope(state: &AppState, u: &WebUser, id: i64) -> Result<(ScoreSheet, &'static Form), WebError> {
    let own = u.region()?;
    let s = state.store.score_sheet_by_id(id).await?.ok_or_else(|| WebError::not_found("没有这张评分表"))?;
    if !s.region_code.starts_with(own) {
        return Err(WebError::not_found("没有这张评分表"));
    }
    let f = form(&s.form_id)?;
    Ok((s, f))
}

#[derive(Deserialize, Default)]
pub struct SheetQ {
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    pdf: Option<String>,
}

pub async fn sheet_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Query(q): Query<SheetQ>) -> WebResult {
    let (s, f) = sheet_in_scope(&state, &u, id).await?;
    let names = state.web.region_names(&state.store).await?;
    let unit = names.get(&s.region_code).cloned().unwrap_or_else(|| s.region_code.clone());
    let answers = state.store.score_answers(id).await?;
    let l = latest(&answers);
    let check_name: HashMap<&str, &str> = AUTO_CHECKS.iter().copied().collect();
    let mut t =
        Table::new("sheet", f.title.clone(), vec!["序号", "考核内容", "考核指标", "分值", "评分方式", "答复", "得分", "依据", "评分人"]);
    t.page_size = 30;
    let scoring = may_score(&u);
    for it in &f.items {
        let a = l.get(it.no.as_str());
        let got = a.map(|a| a.points);
        let how = match &it.auto {
            Some(k) => format!("自动：{}", check_name.get(k.as_str()).unwrap_or(&"")),
            None => match it.rule {
                ScoreRule::Partial => "人工（酌情给分）".into(),
                ScoreRule::VetoNo => "人工（“是”则一票否决）".into(),
                ScoreRule::No => "人工（“否”得分）".into(),
                ScoreRule::Yes => "人工".into(),
            },
        };
        let answer_cell = if scoring {
            let current = a.map(|a| a.answer.clone()).unwrap_or_default();
            let input = if it.rule == ScoreRule::Partial {
                Input::text("answer", "得分").placeholder("").value(current)
            } else {
                let options =
                    [("", "（请选择）"), ("是", "是"), ("否", "否")].iter().map(|(v, t)| (v.to_string(), t.to_string())).collect();
                Input::select("answer", "答复", options).value(current).required()
            };
            Cell::form(
                InlineForm::post(format!("/web/scores/{id}/answer"), "保存")
                    .testid(format!("answer-{}", it.no))
                    .hidden("item", &it.no)
                    .input(input)
                    .input(
                        Input::text("evidence", "依据")
                            .value(a.filter(|a| a.source == "hand").map(|a| a.evidence.clone()).unwrap_or_default()),
                    ),
            )
        } else {
            Cell::text(a.map(|a| a.answer.clone()).unwrap_or_default())
        };
        t.rows.push(vec![
            Cell::text(&it.no),
            Cell::text(&it.section),
            Cell::text(&it.indicator),
            Cell::Int(it.points),
            Cell::text(how),
            answer_cell,
            match got {
                Some(p) => Cell::Int(p),
                None => Cell::text("未评"),
            },
            Cell::text(a.map(|a| a.evidence.clone()).unwrap_or_default()),
            Cell::text(a.map(|a| format!("{}{}", if a.source == "auto" { "自动·" } else { "" }, a.answered_by)).unwrap_or_default()),
        ]);
    }
    let (pts, n, veto) = total(f, l.iter().filter_map(|(no, a)| Answer::parse(&a.answer).map(|x| (*no, x))));
    t.total = Some(vec![
        Cell::text("总分"),
        Cell::text(""),
        Cell::text(""),
        Cell::Int(f.total_points()),
        Cell::text(""),
        Cell::text(format!("已评 {n}/{}", f.items.len())),
        Cell::Int(pts),
        Cell::text(if veto { "一票否决" } else { "" }),
        Cell::text(""),
    ]);
    t.heading = vec![f.title.clone(), format!("被考核单位：{unit} · {} 年", s.year)];
    if let Some(x) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    if q.pdf.is_some() {
        let mut rt = t.report_table();
        // The PDF leaves out the evaluator column of the page's form (it prints the answer text).
        rt.title = format!("{unit} · {} 年", s.year);
        let data = ReportData {
            title: f.title.clone(),
            subtitle: format!(
                "被考核单位：{unit} · 得分 {pts} / {} · {}",
                f.total_points(),
                rating(pts * 100 / f.total_points().max(1), veto)
            ),
            footer: format!("保障系统生成于 {} · 由 {} 导出", crate::clock::today(), u.p.username),
            tables: vec![rt],
        };
        let pdf = state.web.slip_renderer()?.render_report(&data).map_err(|e| {
            tracing::error!(error = %e, "score sheet PDF failed");
            WebError::internal("score sheet PDF failed")
        })?;
        return Ok((
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"sheet.pdf\"; filename*=UTF-8''{}", urlencode(&format!("{}{unit}.pdf", f.title))),
                ),
            ],
            pdf,
        )
            .into_response());
    }
    let view = sheet_view(id, f, &l, scoring);
    let mut page = Page::new(format!("{} · {unit} · {} 年", f.title, s.year));
    page.crumbs.push(("考核评分".into(), format!("/web/scores?year={}", s.year)));
    page.crumbs.push((unit.clone(), String::new()));
    page.view(&super::supervise::subnav_view("/web/scores"))?.view(&view)?.tables(&u, &[&t]);
    Ok(page.render(&u))
}

#[derive(Template)]
#[template(path = "scores_sheet.html")]
pub struct SheetView {
    pub id: i64,
    pub cards: Vec<Card>,
    /// The 自动评分 button.
    pub scoring: bool,
    /// The document the form comes from.
    pub source: String,
}

/// A sheet's view model: its score, the items answered and the rating, from the latest answers.
pub fn sheet_view(id: i64, f: &Form, latest: &HashMap<&str, &ScoreAnswer>, scoring: bool) -> SheetView {
    let (pts, n, veto) = total(f, latest.iter().filter_map(|(no, a)| Answer::parse(&a.answer).map(|x| (*no, x))));
    SheetView {
        id,
        cards: vec![
            Card::new("得分", format!("{pts} 分"), format!("满分 {}", f.total_points())),
            Card::new(
                "已评项",
                format!("{n} / {}", f.items.len()),
                format!("可自动评分 {} 项", f.items.iter().filter(|i| i.auto.is_some()).count()),
            ),
            Card::new(
                "等次",
                if n == f.items.len() { rating(pts * 100 / f.total_points().max(1), veto) } else { "评分中" },
                if veto { "一票否决" } else { "" },
            ),
        ],
        scoring,
        source: f.source.clone(),
    }
}

#[derive(Deserialize)]
pub struct AnswerForm {
    item: String,
    answer: String,
    #[serde(default)]
    evidence: String,
}

pub async fn answer(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, AxForm(f): AxForm<AnswerForm>) -> WebResult {
    u.require(may_score(&u), "评分")?;
    let (_, fm) = sheet_in_scope(&state, &u, id).await?;
    let it = fm.item(f.item.trim()).ok_or_else(|| WebError::bad(format!("没有第 {} 项", f.item)))?;
    if f.answer.trim().is_empty() {
        return Err(WebError::bad(format!("第 {} 项：请选择答复或填写得分", it.no)));
    }
    let a = Answer::parse(&f.answer).ok_or_else(|| WebError::bad(format!("第 {} 项：答复“{}”无效", it.no, f.answer)))?;
    let (points, _) = score(it, a).map_err(WebError::bad)?;
    let evidence = f.evidence.trim();
    if evidence.chars().count() > 300 {
        return Err(WebError::bad("依据不超过 300 字"));
    }
    if it.rule == ScoreRule::Partial && points < it.points && evidence.is_empty() {
        return Err(WebError::bad(format!("第 {} 项扣分须写明依据", it.no)));
    }
    record(&state, id, it, a, evidence, "hand", &u.p.username).await?;
    Ok(Redirect::to(&format!("/web/scores/{id}")).into_response())
}

/// Fills every item that names a data check (answers given by hand are overwritten by a newer answer
/// only here: the trail keeps both).
pub async fn auto(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>) -> WebResult {
    u.require(may_score(&u), "评分")?;
    let (s, fm) = sheet_in_scope(&state, &u, id).await?;
    // A job (`web::jobs`): the data of a county takes seconds to gather; the answers are saved in one
    // transaction, so the sheet is filled whole or not at all.
    let (st, by) = (state.clone(), u.p.username.clone());
    let job = state.web.jobs.start("scores.auto", &format!("自动评分 · {}", fm.title), &u.p.username, move |p| async move {
        p.stage("正在汇总参保、结算、签约、救治和报表数据");
        let facts = Facts::gather(&st, &s.region_code, s.year).await?;
        p.stage("正在按数据评分");
        let mut answers = Vec::new();
        for it in &fm.items {
            let Some(key) = &it.auto else { continue };
            let Some((a, evidence)) = facts.answer(key) else { continue };
            answers.push(answer_of(it, a, &evidence, "auto", &by)?);
        }
        st.store.add_score_answers(id, &answers).await?;
        tracing::info!(sheet = id, filled = answers.len(), "score sheet filled from data");
        let hand = fm.items.iter().filter(|it| it.auto.is_none()).count();
        Ok(super::jobs::Outcome {
            message: format!("已按数据自动评分 {} 项（每项附依据）；其余 {hand} 项需人工评分。", answers.len()),
            link: Some(("查看评分表".into(), format!("/web/scores/{id}"))),
            ..Default::default()
        })
    });
    Ok(super::jobs::started(job))
}

/// An answer scored by the item's rule, as the sheet's trail keeps it.
fn answer_of(it: &FormItem, a: Answer, evidence: &str, source: &str, by: &str) -> Result<ScoreAnswer, WebError> {
    let (points, veto) = score(it, a).map_err(WebError::bad)?;
    Ok(ScoreAnswer {
        item_no: it.no.clone(),
        answer: a.text(),
        points,
        veto,
        evidence: evidence.into(),
        source: source.into(),
        answered_by: by.into(),
        ..Default::default()
    })
}

/// Scores an answer by the item's rule and appends it to the sheet's trail.
async fn record(state: &AppState, sheet: i64, it: &FormItem, a: Answer, evidence: &str, source: &str, by: &str) -> Result<(), WebError> {
    let answer = answer_of(it, a, evidence, source, by)?;
    Ok(state.store.add_score_answer(sheet, &answer).await?)
}

/// What the data says about a unit and year, gathered once for all of a sheet's data checks.
pub struct Facts {
    year: i64,
    stats: VillageStats,
    probe: Option<(String, baozhang_core::supervise::PolicyProbe)>,
    prepaid: (usize, usize),
    mdt: (usize, usize),
    contract: (usize, usize),
    escorts: usize,
    follow_up: (u32, u32),
    cards_missing: usize,
    cards_covered: usize,
    /// 定期报表 and settlements (issue 19): remote care, in-county visits, policy awareness.
    forms: super::periodic::Indicators,
}

impl Facts {
    pub async fn gather(state: &AppState, region: &str, year: i64) -> Result<Facts, WebError> {
        let snap = state.web.dashboard.get(state, year).await?;
        let mut stats = VillageStats::default();
        for v in snap.villages.iter().filter(|v| v.village_code.starts_with(region)) {
            stats.add(v);
        }
        let day = count_day(year)?;
        let county = region.get(..6).unwrap_or(region);
        let probe = state.policies.for_area(county, day).map(|p| (p.meta.name.clone(), probe_policy(p, day)));
        let hospitals: HashSet<String> =
            state.store.institutions().await?.into_iter().filter(|h| h.admdvs.starts_with(county)).map(|h| h.fixmedins_code).collect();
        let budgets = state.store.budgets(year).await?;
        let mine: Vec<_> = budgets.iter().filter(|b| hospitals.contains(&b.fixmedins_code)).collect();
        let prepaid = (mine.iter().filter(|b| b.prepaid_on.is_some()).count(), mine.len());
        let cases = state.store.mdt_cases(region).await?;
        let mdt = treatment_rate(&cases);
        let d = date_num(day);
        let poor = state.store.registered_poor(region, d).await?;
        let contracts = state.store.fdc_contracts(region, year).await?;
        let registry = state.store.chronic_registry(region).await?;
        let key: HashSet<String> = registry.iter().map(|r| r.row.id_no.clone()).collect();
        let rate = contract_rate(&poor, &contracts, &key);
        let services = state.store.fdc_services(region, year).await?;
        let escorts = services.iter().filter(|s| s.kind == "送人就医").count();
        let follow_up = follow_up_completion(&follow_ups(&poor, &registry, &contracts, &services, day));
        let cards = state.store.chronic_cards(region).await?;
        let poor_ids: HashSet<String> = poor.iter().map(|(id, _)| id.clone()).collect();
        let findings = compare_cards(&registry, &cards, &poor_ids);
        let (covered, due) = card_coverage(&findings, &poor_ids);
        Ok(Facts {
            year,
            stats,
            probe,
            prepaid,
            mdt,
            contract: (rate.contracted, rate.poor),
            escorts,
            follow_up,
            cards_missing: due - covered,
            cards_covered: covered,
            forms: super::periodic::indicators(state, region, u16::try_from(year).unwrap_or(0)).await?,
        })
    }

    /// The answer of a data check and its evidence; `None` when the data cannot answer it.
    pub fn answer(&self, key: &str) -> Option<(Answer, String)> {
        let yes = |ok: bool| if ok { Answer::Yes } else { Answer::No };
        let s = &self.stats;
        let probe = self.probe.as_ref();
        let critical = || {
            probe.map(|(name, p)| match p.critical_start_fen {
                Some(f) => (f <= 200_000, format!("按《{name}》测算，贫困人口基本医保报销后合规自付 {} 元起大病保险支付", yuan(f))),
                None => (false, format!("按《{name}》测算，大病保险未支付")),
            })
        };
        let ratio = || {
            s.poor_inpatient_ratio_compliant_bp().map(|bp| {
                (
                    bp >= 8_500,
                    format!(
                        "贫困人口住院 {} 人次，合规费用 {} 元，基金支付 {} 元，实际补偿比 {}",
                        s.poor_inpatient,
                        yuan(s.poor_inpatient_inscp_fen),
                        yuan(s.poor_inpatient_fund_pay_fen),
                        super::pct(Some(bp))
                    ),
                )
            })
        };
        let fallback = || {
            probe.map(|(name, p)| {
                (
                    p.oop_200k_fen <= 300_000,
                    format!("按《{name}》测算，贫困人口县内住院合规费用 20 万元，个人负担 {} 元", yuan(p.oop_200k_fen)),
                )
            })
        };
        let (ok, evidence) = match key {
            "poor_all_insured" => {
                if s.poor == 0 {
                    return None;
                }
                (
                    s.poor_insured == s.poor,
                    format!("建档立卡贫困人口 {} 人，参保 {} 人，参保率 {}", s.poor, s.poor_insured, super::pct(s.poor_enrolment_bp())),
                )
            }
            "poor_subsidy" => {
                let n = s.findings_of("subsidy_missing");
                if s.poor == 0 {
                    return None;
                }
                (n == 0, format!("最近一次参保比对：应资助未资助 {n} 人"))
            }
            "critical_2000" => critical()?,
            "ratio_85" => ratio()?,
            "fallback_3000" => fallback()?,
            "critical_2000_ratio_85_fallback_3000" => {
                let (a, b, c) = (critical()?, ratio()?, fallback()?);
                (a.0 && b.0 && c.0, format!("{}；{}；{}", a.1, b.1, c.1))
            }
            "prepay_60_no_deposit_no_deductible" => {
                let (name, p) = probe?;
                let (paid, of) = self.prepaid;
                if of == 0 {
                    return None;
                }
                (
                    paid == of && p.deductible_fen == 0,
                    format!(
                        "{of} 家定点医疗机构中 {paid} 家已拨付 60% 预付金；按《{name}》测算，贫困人口乡镇卫生院住院起付线 {} 元",
                        yuan(p.deductible_fen)
                    ),
                )
            }
            "one_stop" => {
                if s.poor_inpatient == 0 {
                    return None;
                }
                (true, format!("本年贫困人口住院 {} 人次均经“一站式”结算（基本医保、大病保险、医疗救助、兜底同步结算）", s.poor_inpatient))
            }
            "mdt_treatment" => {
                let (treated, n) = self.mdt;
                if n == 0 {
                    return None;
                }
                (
                    treated == n,
                    format!("大病专项救治 {n} 人，已救治 {treated} 人，救治率 {}", super::pct(super::ratio_bp(treated as i64, n as i64))),
                )
            }
            "fdc_contract_95" => {
                let (c, n) = self.contract;
                let bp = super::ratio_bp(c as i64, n as i64)?;
                (bp >= 9_500, format!("建档立卡贫困人口 {n} 人，签约 {c} 人，签约率 {}", super::pct(Some(bp))))
            }
            // 五督 9: remote consultation covering the county hospital and 80 % of township hospitals by the
            // end of 2018; in-county first visits ≥ 90 % by 2020 (judged from 2020 on; shown before).
            "remote_80_in_county_90" => {
                let f = &self.forms;
                let remote = f.remote_bp()?;
                let in_county = f.in_county_bp();
                let by_2020 = self.year >= 2020;
                let ok = remote >= 8_000 && f.county_consults > 0 && (!by_2020 || in_county.is_some_and(|b| b >= 9_000));
                (
                    ok,
                    format!(
                        "“乡镇卫生院远程医疗网络覆盖情况季报”：{} 个乡镇卫生院中 {} 个已接入远程会诊网络（{}）；“组团式”月报中县级医院远程会诊 {} 例；本年结算中县域内就诊率 {}（{}）",
                        f.remote_units,
                        f.remote_connected,
                        super::pct(Some(remote)),
                        f.county_consults,
                        super::pct(in_county),
                        if by_2020 { "目标 ≥ 90%" } else { "2020 年目标 ≥ 90%，本年不计" }
                    ),
                )
            }
            // 五督 26: 群众健康扶贫政策知晓率 ≥ 95 %, from the townships' household surveys.
            "awareness_95" => {
                let f = &self.forms;
                let bp = f.awareness_bp()?;
                (
                    bp >= 9_500,
                    format!(
                        "“健康扶贫政策群众知晓率入户调查”：受访 {} 人次，答对 {} 人次，知晓率 {}",
                        f.asked,
                        f.right,
                        super::pct(Some(bp))
                    ),
                )
            }
            "escort_case" => (self.escorts > 0, format!("本年“送人就医”服务记录 {} 条", self.escorts)),
            "chronic_cards_90" => {
                let (made, due) = self.follow_up;
                let bp = super::ratio_bp(i64::from(made), i64::from(due))?;
                (
                    bp >= 9_000 && self.cards_missing < 2,
                    format!(
                        "慢病随访完成 {made}/{due}（{}）；已办慢病卡 {} 人，应办未办 {} 人",
                        super::pct(Some(bp)),
                        self.cards_covered,
                        self.cards_missing
                    ),
                )
            }
            _ => return None,
        };
        Some((yes(ok), evidence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(item: &str, a: &str) -> ScoreAnswer {
        ScoreAnswer { item_no: item.into(), answer: a.into(), ..Default::default() }
    }

    fn cards(v: &SheetView) -> Vec<(&str, &str, &str)> {
        v.cards.iter().map(|c| (c.label.as_str(), c.value.as_str(), c.note.as_str())).collect()
    }

    #[test]
    fn a_sheet_view_gives_the_score_the_items_answered_and_the_rating() {
        let wudu = form("wudu").unwrap();
        let auto = wudu.items.iter().filter(|i| i.auto.is_some()).count();
        let v = sheet_view(4, wudu, &HashMap::new(), true);
        assert_eq!(
            cards(&v),
            [("得分", "0 分", "满分 95"), ("已评项", "0 / 26", format!("可自动评分 {auto} 项").as_str()), ("等次", "评分中", "")]
        );
        assert!(v.source.contains("县委办发〔2018〕83号"), "{}", v.source);
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"auto-score\"") && html.contains("href=\"/web/scores/4?pdf=1\""), "{html}");
        assert!(!sheet_view(4, wudu, &HashMap::new(), false).render().unwrap().contains("auto-score"), "readers do not score");

        // 是 on item 1.1 of the cadre form vetoes the year; an answer to an item not on the form is not counted.
        let cadre = form("cadre").unwrap();
        let answers = [answer("1.1", "是"), answer("99", "是")];
        let latest = latest(&answers);
        let v = sheet_view(5, cadre, &latest, true);
        assert_eq!(v.cards[1].value, format!("1 / {}", cadre.items.len()));
        assert_eq!(v.cards[2].note, "一票否决");
    }

    #[test]
    fn the_scores_view_offers_the_forms_to_those_who_score() {
        let v = scores_view("620422", 2018, true, forms());
        assert_eq!(v.forms.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["wudu", "cadre"]);
        let html = v.render().unwrap();
        assert!(html.contains("data-testid=\"open-sheet\"") && html.contains("value=\"620422\""), "{html}");
        assert!(!scores_view("620422", 2018, false, forms()).render().unwrap().contains("<form"));
    }

    #[test]
    fn ratings_follow_the_score_rate() {
        assert_eq!(
            (rating(90, false), rating(89, false), rating(60, false), rating(59, false), rating(99, true)),
            ("好", "较好", "一般", "差", "差（一票否决）")
        );
    }
}
