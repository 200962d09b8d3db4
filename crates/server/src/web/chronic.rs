//! 慢病卡 (R-CHR-1/2): the health department's chronic registry compared with the card register —
//! eligible poor patients without a card, patients under medication guarantee, cards to check — exported
//! as the feedback file for the health department; and the monthly random audit of new cards: a draw of
//! at least 10 % with a recorded seed (re-drawn on the audit page to show it reproduces), and its findings.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use baozhang_ingest::health::{card_coverage, compare_cards, drawn_cards, fresh_seed, new_cards_of_month, CardClass};
use baozhang_store::programmes::AUDIT_RESULTS;
use serde::Deserialize;

use super::cache::Built;
use super::health::{bp, may_manage, require_manage, unmask_view, Ctx, UnmaskLink};
use super::table::{Card, Cell, InlineForm, Input, Table};
use super::{count, Page, WebError, WebResult, WebUser};
use crate::AppState;
use askama::Template;
use std::sync::Arc;

#[derive(Deserialize, Default)]
pub struct ChronicQ {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    export: Option<String>,
    #[serde(default)]
    unmasked: Option<String>,
}

fn yyyymm(m: i64) -> String {
    format!("{}-{:02}", m / 100, m % 100)
}

pub async fn chronic_page(State(state): State<AppState>, u: WebUser, Query(q): Query<ChronicQ>) -> WebResult {
    let ctx = Ctx::new(&state, &u, q.region.as_deref(), q.unmasked.as_deref() == Some("1"), "web.chronic").await?;
    // A masked view is kept (`web::cache`); an unmasked one is built and logged.
    let built = if ctx.unmasked { Arc::new(build(&state, &u, &ctx).await?) } else { cached(&state, &u, &ctx.region).await? };
    if let Some(id) = q.export.as_deref() {
        ctx.log_shown(&state, &u, Some(id)).await?;
        return super::table::export_for(&state, &u, &built.export_tables(), id).await;
    }
    ctx.log_shown(&state, &u, None).await?;
    Ok(built.page(&u).render(&u))
}

/// The region's page, masked, as kept by `web::cache`.
pub async fn cached(state: &AppState, u: &WebUser, region: &str) -> Result<Arc<Built>, WebError> {
    let address = format!("/web/chronic?region={region}");
    super::cache::kept(state, u, "chronic", address, region, 0, |st, who, region, _| {
        Box::pin(async move {
            let ctx = Ctx::new(&st, &who, Some(&region), false, "web.chronic").await?;
            build(&st, &who, &ctx).await
        })
    })
    .await
}

async fn build(state: &AppState, u: &WebUser, ctx: &Ctx) -> Result<Built, WebError> {
    let year = super::dashboard::default_year(state).await;
    let day = year * 10_000 + 1231;
    let registry = state.store.chronic_registry(&ctx.region).await?;
    let cards = state.store.chronic_cards(&ctx.region).await?;
    let poor: HashSet<String> = state.store.registered_poor(&ctx.region, day).await?.into_iter().map(|(id, _)| id).collect();
    let findings = compare_cards(&registry, &cards, &poor);
    let (covered, eligible) = card_coverage(&findings, &poor);

    // The page lists what needs doing; the export (the feedback file) has the matched rows too.
    let feedback = |all: bool| {
        let mut t = Table::new(
            "feedback",
            "比对结果（反馈卫生健康部门）",
            vec!["类别", "处理意见", "村", "姓名", "证件号码", "病种", "慢病卡号", "说明"],
        );
        t.empty = "卫健部门慢病登记与慢病卡尚未导入（名单导入：公共卫生慢病患者登记、慢病卡登记）";
        t.page_size = 25;
        for f in findings.iter().filter(|f| all || f.class != CardClass::Matched) {
            let [village, name, id] = ctx.person(&f.id_no, &f.who);
            t.rows.push(vec![
                Cell::tag(class_css(f.class), f.class.name_zh()),
                Cell::text(f.class.action_zh()),
                village,
                name,
                id,
                Cell::text(&f.disease),
                Cell::text(&f.card_no),
                Cell::text(&f.detail),
            ]);
        }
        t
    };
    let audits = state.store.chronic_audits(&ctx.region).await?;
    let mut at = Table::new(
        "audits",
        "每月新办慢病卡随机抽审",
        vec!["月份", "区划", "当月新办卡", "抽取", "抽取比例", "已审核", "人情卡及不规范", "随机种子", "抽取人", "抽取时间"],
    );
    at.empty = "尚未抽审";
    for a in &audits {
        at.rows.push(vec![
            Cell::Link(yyyymm(a.month), format!("/web/chronic/audit/{}", a.id)),
            Cell::text(ctx.place(&a.region_code)),
            Cell::Int(a.population),
            Cell::Int(a.drawn),
            Cell::Pct(bp(a.drawn as usize, a.population as usize)),
            Cell::Int(a.checked),
            Cell::Int(a.irregular),
            Cell::text(a.seed.to_string()),
            Cell::text(&a.drawn_by),
            Cell::text(crate::clock::beijing_text(&a.drawn_at)),
        ]);
    }

    let n = |c: CardClass| count(findings.iter().filter(|f| f.class == c).count() as i64);
    let (drawn, checked): (i64, i64) =
        audits.iter().filter(|a| a.month / 100 == year).fold((0, 0), |(d, c), a| (d + a.drawn, c + a.checked));
    let irregular: i64 = audits.iter().map(|a| a.irregular).sum();
    let mut page = Page::new(format!("慢病卡管理 · {}", ctx.place(&ctx.region)));
    page.crumbs = super::dashboard::crumbs_for(state, u, &ctx.region).await?;
    page.crumbs.push(("慢病卡".into(), String::new()));
    page.view(&ChronicHead {
        year,
        cards: vec![
            Card::new(
                "登记慢病贫困患者覆盖率",
                super::pct(bp(covered, eligible)),
                format!("符合认定标准 {} 人，已办卡 {} 人", count(eligible as i64), count(covered as i64)),
            ),
            Card::new("应办未办", format!("{} 人", n(CardClass::Missing)), "发卡并标识"),
            Card::new("纳入用药保障", format!("{} 人", n(CardClass::MedicationGuarantee)), "不符合办卡标准"),
            Card::new("持卡待核查", format!("{} 张", n(CardClass::Unsupported)), "不在登记或不符合标准"),
            Card::new(
                format!("{year} 年抽审完成率"),
                super::pct(bp(checked as usize, drawn as usize)),
                format!("抽取 {} 张，已审 {} 张，人情卡及不规范 {} 张", count(drawn), count(checked), count(irregular)),
            ),
        ],
        unmask: unmask_view(u, ctx),
    })?;
    let mut built = Built::new(page, vec![feedback(false), at]);
    built.exports.push(feedback(true));
    if may_manage(u) {
        built.tail = super::render_fragment(&DrawView { region: ctx.region.clone(), month: format!("{year}-12") });
    }
    Ok(built)
}

#[derive(Template)]
#[template(path = "chronic.html")]
struct ChronicHead {
    year: i64,
    cards: Vec<Card>,
    unmask: Option<UnmaskLink>,
}

#[derive(Template)]
#[template(path = "chronic_draw.html")]
struct DrawView {
    region: String,
    month: String,
}

fn class_css(c: CardClass) -> &'static str {
    match c {
        CardClass::Missing => "new",
        CardClass::Unsupported => "reopened",
        _ => "",
    }
}

#[derive(Deserialize)]
pub struct DrawForm {
    region: String,
    month: String,
    #[serde(default)]
    seed: String,
}

/// `2019-05` → 201905.
pub fn parse_month(s: &str) -> Option<i64> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    ((2000..=2100).contains(&y) && (1..=12).contains(&m)).then_some(y * 100 + m)
}

pub async fn draw(State(state): State<AppState>, u: WebUser, Form(f): Form<DrawForm>) -> WebResult {
    require_manage(&u, "抽取慢病卡")?;
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    let month = parse_month(&f.month).ok_or_else(|| WebError::bad(format!("月份“{}”无效（如 2018-06）", f.month)))?;
    let seed: u64 = match f.seed.trim() {
        "" => fresh_seed(),
        s => s.parse().ok().filter(|v| *v < (1u64 << 53)).ok_or_else(|| WebError::bad(format!("随机种子“{s}”无效（非负整数）")))?,
    };
    let cards = state.store.chronic_cards(&region).await?;
    let pop = new_cards_of_month(&cards, month);
    if pop.is_empty() {
        return Err(WebError::bad(format!("{} 没有新办慢病卡，无需抽取", yyyymm(month))));
    }
    let drawn = drawn_cards(&pop, seed);
    let id = state
        .store
        .record_chronic_audit(&region, month, seed as i64, pop.len() as i64, &drawn, &u.p.username)
        .await?
        .ok_or_else(|| WebError::bad(format!("{} 已抽取过（每月一次，不能重抽）", yyyymm(month))))?;
    state.store.audit(&u.p.username, "chronic.draw", &format!("{region} {month}: seed {seed}, {} of {}", drawn.len(), pop.len())).await?;
    Ok(Redirect::to(&format!("/web/chronic/audit/{id}")).into_response())
}

pub async fn audit_page(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Query(q): Query<ChronicQ>) -> WebResult {
    let own = u.region()?.to_string();
    let a = state
        .store
        .chronic_audits(&own)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| WebError::not_found("未找到该抽审，或不在您的管辖范围内"))?;
    let ctx = Ctx::new(&state, &u, Some(&a.region_code), q.unmasked.as_deref() == Some("1"), "web.chronic.audit").await?;
    let items = state.store.chronic_audit_items(id).await?;
    let cards = state.store.chronic_cards(&a.region_code).await?;
    let by_no: HashMap<&str, _> = cards.iter().map(|c| (c.row.card_no.as_str(), c)).collect();
    // Reproducibility: the same seed over the month's cards as they are now.
    let pop = new_cards_of_month(&cards, a.month);
    let again = drawn_cards(&pop, a.seed as u64);
    let recorded: Vec<String> = items.iter().map(|i| i.card_no.clone()).collect();
    let repro = (again == recorded, a.seed.to_string(), count(pop.len() as i64), count(a.population));
    let manage = may_manage(&u);
    let mut t = Table::new(
        "items",
        format!("{} 抽审明细", yyyymm(a.month)),
        vec!["序号", "慢病卡号", "村", "姓名", "证件号码", "病种", "办卡日期", "审核结论", "说明", "审核人"],
    );
    for i in &items {
        let (who_cells, disease, issue) = match by_no.get(i.card_no.as_str()) {
            Some(c) => (ctx.person(&c.row.id_no, &c.who), c.row.disease.clone(), super::date_text(c.row.issue_date)),
            None => ([Cell::text(""), Cell::text("（卡已不在登记中）"), Cell::text("")], String::new(), String::new()),
        };
        let [village, name, idc] = who_cells;
        let result = if manage {
            let options = std::iter::once("")
                .chain(AUDIT_RESULTS)
                .map(|r| (r.to_string(), if r.is_empty() { "待审核".to_string() } else { r.to_string() }))
                .collect();
            Cell::form(
                InlineForm::post(format!("/web/chronic/audit/{id}/result"), "保存")
                    .hidden("card_no", &i.card_no)
                    .input(Input::select("result", "审核结论", options).value(i.result.clone()))
                    .input(Input::text("note", "说明").value(i.note.clone())),
            )
        } else {
            Cell::text(if i.result.is_empty() { "待审核" } else { &i.result })
        };
        t.rows.push(vec![
            Cell::Int(i.draw_order),
            Cell::text(&i.card_no),
            village,
            name,
            idc,
            Cell::text(disease),
            Cell::text(issue),
            result,
            Cell::text(&i.note),
            Cell::text(&i.checked_by),
        ]);
    }
    if let Some(x) = q.export.as_deref() {
        ctx.log_shown(&state, &u, Some(x)).await?;
        return super::table::export_for(&state, &u, &[&t], x).await;
    }
    let mut page = Page::new(format!("慢病卡抽审 · {} · {}", ctx.place(&a.region_code), yyyymm(a.month)));
    page.crumbs = super::dashboard::crumbs_for(&state, &u, &a.region_code).await?;
    page.crumbs.push(("慢病卡".into(), format!("/web/chronic?region={}", a.region_code)));
    page.crumbs.push((yyyymm(a.month), String::new()));
    page.view(&AuditHead {
        cards: vec![
            Card::new("当月新办卡", format!("{} 张", count(a.population)), format!("抽取 {} 张", count(a.drawn))),
            Card::new("已审核", format!("{} / {}", count(a.checked), count(a.drawn)), format!("人情卡及不规范 {} 张", count(a.irregular))),
            Card::new("随机种子", a.seed.to_string(), format!("{} 于 {} 抽取", a.drawn_by, crate::clock::beijing_text(&a.drawn_at))),
        ],
        reproduced: repro.0,
        seed: repro.1,
        now: repro.2,
        then: repro.3,
        unmask: unmask_view(&u, &ctx),
    })?
    .tables(&u, &[&t]);
    Ok(page.render(&u))
}

/// The head of a draw's page: its cards, whether the recorded seed reproduces it, the unmask link.
#[derive(Template)]
#[template(path = "chronic_audit.html")]
struct AuditHead {
    cards: Vec<Card>,
    reproduced: bool,
    seed: String,
    /// The month's new cards now, and when drawn.
    now: String,
    then: String,
    unmask: Option<UnmaskLink>,
}

#[derive(Deserialize)]
pub struct ResultForm {
    card_no: String,
    result: String,
    #[serde(default)]
    note: String,
}

pub async fn set_result(State(state): State<AppState>, u: WebUser, Path(id): Path<i64>, Form(f): Form<ResultForm>) -> WebResult {
    require_manage(&u, "录入抽审结论")?;
    let own = u.region()?.to_string();
    if !state.store.chronic_audits(&own).await?.iter().any(|a| a.id == id) {
        return Err(WebError::not_found("未找到该抽审，或不在您的管辖范围内"));
    }
    let result = f.result.trim();
    if !result.is_empty() && !AUDIT_RESULTS.contains(&result) {
        return Err(WebError::bad(format!("审核结论“{result}”无效（{}）", AUDIT_RESULTS.join("、"))));
    }
    let note = f.note.trim();
    if note.chars().count() > 200 {
        return Err(WebError::bad("说明不超过 200 字"));
    }
    if (result == "人情卡" || result == "流程不规范") && note.is_empty() {
        return Err(WebError::bad("认定为人情卡或流程不规范时，请在说明中写明依据"));
    }
    if !state.store.set_audit_result(id, f.card_no.trim(), result, note, &u.p.username).await? {
        return Err(WebError::not_found(format!("慢病卡 {} 不在本次抽审中", f.card_no.trim())));
    }
    Ok(Redirect::to(&format!("/web/chronic/audit/{id}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked() {
        assert_eq!(parse_month("2018-06"), Some(201806));
        assert_eq!(parse_month(" 2018-12 "), Some(201812));
        assert_eq!(parse_month("2018-13"), None);
        assert_eq!(parse_month("2018"), None);
        assert_eq!(parse_month("abc-01"), None);
    }
}
