//! The policy page: a region's layers as a readable table, and a calculator (政策宣传: enter a bill and an
//! identity, see what each fund and the patient pay). The calculator writes nothing. Admin and bureau also
//! find here the weighing of a new policy against the old on a year of their region (`policy_compare`).

use axum::extract::{Query, State};
use baozhang_core::claim::{Bill, Claim, HospLevel, MedType};
use baozhang_core::engine::{settle, Accumulators};
use baozhang_core::explain::explain;
use baozhang_core::policy::{describe, Mark, Policy};
use baozhang_core::{Date, Fen, Identity, IdentitySet};
use serde::Deserialize;

use super::table::{Cell, Table};
use super::{esc, fragment, fragment_error, pct, ratio_bp, yuan, Page, WebResult, WebUser};
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct PolicyQ {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

/// The policy a user most likely wants: the one covering their region, else the first.
fn default_policy<'a>(state: &'a AppState, u: &WebUser) -> Option<&'a Policy> {
    let all = state.policies.all();
    let scope = &u.p.scope;
    all.iter()
        .find(|p| {
            !scope.is_empty()
                && p.meta
                    .covers
                    .iter()
                    .chain(std::iter::once(&p.meta.region_code))
                    .any(|c| scope.starts_with(c.as_str()) || c.starts_with(scope.as_str()))
        })
        .or(all.first())
}

pub const IDENTITY_CHOICES: [Identity; 6] =
    [Identity::RegisteredPoor, Identity::ExitedPoor, Identity::Marginal, Identity::Dibao, Identity::ExtremePoor, Identity::SafetyNet];

pub async fn policy_page(State(state): State<AppState>, u: WebUser, Query(q): Query<PolicyQ>) -> WebResult {
    let policy = match q.id.as_deref() {
        Some(id) => {
            state.policies.all().iter().find(|p| p.meta.id == id).ok_or_else(|| super::WebError::not_found(format!("没有政策“{id}”")))?
        }
        None => default_policy(&state, &u).ok_or_else(|| super::WebError::not_found("尚未配置任何结算政策"))?,
    };
    let mut layers =
        Table::new("layers", format!("{} 各层待遇", policy.meta.name), vec!["序号", "层次", "基金", "适用条件", "计算方法", "封顶"]);
    layers.page_size = 50;
    for row in describe(policy) {
        layers.rows.push(row.into_iter().map(Cell::Text).collect());
    }
    // Where each value comes from (docs/SETTLEMENT.md "Sources as data"): 依据 for S and P, 示意值 for I.
    let mut values = Table::new("values", "数值来源（S 文件规定，P 公开指南，I 示意值：非官方数值）", vec!["标记", "数值", "值", "依据"]);
    values.page_size = 100;
    values.empty = "本政策的数值未标注来源";
    for v in &policy.provenance {
        let basis = match v.mark {
            Mark::I => "示意值：不是官方文件规定的数值，须按本地文件替换".to_string(),
            Mark::S | Mark::P => {
                let title = v.source_id.as_deref().and_then(|id| policy.source(id)).map_or("", |s| s.title.as_str());
                match &v.quote {
                    Some(q) => format!("{title}：“{q}”"),
                    None => title.to_string(),
                }
            }
        };
        values.rows.push(vec![
            Cell::Text(format!("{} {}", v.mark.letter(), v.mark.name_zh())),
            Cell::Text(v.place.clone()),
            Cell::Text(v.value.clone()),
            Cell::Text(basis),
        ]);
    }
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&layers, &values], id).await;
    }
    let mut page = Page::new("政策与测算");
    let mut sel =
        String::from("<form class=\"inline\" method=\"get\" action=\"/web/policy\"><label>政策 <select name=\"id\" data-autosubmit>");
    for p in state.policies.all() {
        sel.push_str(&format!(
            "<option value=\"{}\"{}>{}（{}）</option>",
            esc(&p.meta.id),
            if p.meta.id == policy.meta.id { " selected" } else { "" },
            esc(&p.meta.name),
            esc(&p.meta.region_name)
        ));
    }
    sel.push_str("</select></label><noscript><button>查看</button></noscript></form>");
    page.push(&sel);
    page.push(&format!(
        "<p class=\"muted\">适用区划 {}，{} 起施行{}；政策版本 {}。</p>",
        esc(&p_covers(policy)),
        policy.meta.effective_from,
        policy.meta.effective_to.map(|d| format!("，至 {d}")).unwrap_or_default(),
        esc(&policy.version)
    ));
    page.push(&layers.html(&u.path));
    page.push(&values.html(&u.path));
    page.push(&calculator_form(policy));
    page.push(&super::policy_compare::form_html(&state, &u, policy).await?);
    Ok(page.render(&u))
}

fn p_covers(p: &Policy) -> String {
    if p.meta.covers.is_empty() {
        format!("{} {}", p.meta.region_code, p.meta.region_name)
    } else {
        p.meta.covers.join("、")
    }
}

fn calculator_form(policy: &Policy) -> String {
    let mut ids = String::new();
    for i in IDENTITY_CHOICES {
        ids.push_str(&format!(
            "<label class=\"check\"><input type=\"checkbox\" name=\"identity\" value=\"{}\"> {}</label>",
            i.id(),
            i.name_zh()
        ));
    }
    let date = policy.meta.effective_from;
    format!(
        "<section class=\"calc\"><h2>待遇测算（政策宣传用）</h2>\
         <form hx-post=\"/web/policy/calc\" hx-target=\"#calc-result\" class=\"grid-form\" data-testid=\"calc-form\">\
         <input type=\"hidden\" name=\"policy\" value=\"{}\">\
         <fieldset><legend>人员身份</legend>{ids}</fieldset>\
         <label>医疗类别<select name=\"med_type\"><option value=\"21\">住院</option><option value=\"14\">门诊慢特病</option></select></label>\
         <label>医院等级<select name=\"hosp_lv\"><option value=\"1\">一级（乡镇卫生院）</option><option value=\"2\" selected>二级（县级医院）</option><option value=\"3\">三级</option></select></label>\
         <label>结算日期<input type=\"date\" name=\"date\" value=\"{}\"></label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"in_county\" value=\"1\" checked> 县域内就医</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"referral_ok\" value=\"1\" checked> 按规定转诊</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"major_disease\" value=\"1\"> 大病集中救治病种</label>\
         {}\
         <div class=\"actions\"><button type=\"submit\">测算</button></div></form>\
         <div id=\"calc-result\" aria-live=\"polite\"></div></section>",
        esc(&policy.meta.id),
        date,
        bill_fields()
    )
}

/// The bill's parts as form fields (yuan), shared with the settlement window.
pub fn bill_fields() -> String {
    "<label>医疗费总额（元）<input name=\"total\" inputmode=\"decimal\" required placeholder=\"如 10000.00\"></label>\
     <label>全自费（元）<input name=\"fulamt\" inputmode=\"decimal\" value=\"0\"></label>\
     <label>超限价自费（元）<input name=\"overlmt\" inputmode=\"decimal\" value=\"0\"></label>\
     <label>先行自付（元）<input name=\"preselfpay\" inputmode=\"decimal\" value=\"0\"></label>"
        .to_string()
}

/// Parses the four yuan fields into a bill (政策范围内 = 总额 − 三项自费). Errors name the field.
pub fn parse_bill(total: &str, fulamt: &str, overlmt: &str, preselfpay: &str) -> Result<Bill, String> {
    let field = |name: &str, v: &str| -> Result<Fen, String> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(Fen::ZERO);
        }
        let f = Fen::parse_yuan(v).map_err(|e| format!("{name}“{v}”无效：{e}"))?;
        if f < Fen::ZERO {
            return Err(format!("{name}不能为负数"));
        }
        Ok(f)
    };
    let total = field("医疗费总额", total)?;
    if total <= Fen::ZERO {
        return Err("请填写医疗费总额（大于 0）".into());
    }
    let (ful, over, pre) = (field("全自费", fulamt)?, field("超限价自费", overlmt)?, field("先行自付", preselfpay)?);
    let inscp = total - ful - over - pre;
    if inscp < Fen::ZERO {
        return Err(format!("全自费、超限价自费、先行自付之和（{} 元）超过了医疗费总额（{} 元）", ful + over + pre, total));
    }
    Bill::new(total, ful, over, pre, inscp).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub struct CalcForm {
    policy: String,
    #[serde(default)]
    identity: Vec<String>,
    med_type: String,
    hosp_lv: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    in_county: Option<String>,
    #[serde(default)]
    referral_ok: Option<String>,
    #[serde(default)]
    major_disease: Option<String>,
    total: String,
    #[serde(default)]
    fulamt: String,
    #[serde(default)]
    overlmt: String,
    #[serde(default)]
    preselfpay: String,
}

pub async fn calculate(State(state): State<AppState>, _u: WebUser, axum_extra_form: axum::body::Bytes) -> axum::response::Response {
    // Repeated `identity` fields: parsed with serde_urlencoded's pair list (axum's Form keeps one value).
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&axum_extra_form).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let has = |k: &str| pairs.iter().any(|(n, v)| n == k && !v.is_empty());
    let f = CalcForm {
        policy: get("policy"),
        identity: pairs.iter().filter(|(n, _)| n == "identity").map(|(_, v)| v.clone()).collect(),
        med_type: get("med_type"),
        hosp_lv: get("hosp_lv"),
        date: get("date"),
        in_county: has("in_county").then(String::new),
        referral_ok: has("referral_ok").then(String::new),
        major_disease: has("major_disease").then(String::new),
        total: get("total"),
        fulamt: get("fulamt"),
        overlmt: get("overlmt"),
        preselfpay: get("preselfpay"),
    };
    match calc(&state, &f) {
        Ok(html) => fragment(html),
        Err(e) => fragment_error(&e),
    }
}

fn calc(state: &AppState, f: &CalcForm) -> Result<String, String> {
    let policy = state.policies.all().iter().find(|p| p.meta.id == f.policy).ok_or_else(|| format!("没有政策“{}”", f.policy))?;
    let mut ids = IdentitySet::EMPTY;
    for i in &f.identity {
        ids = ids.with(Identity::parse(i).ok_or_else(|| format!("身份“{i}”无效"))?);
    }
    let med_type = MedType::parse(&f.med_type).map_err(|e| format!("医疗类别：{e}"))?;
    let hosp_lv = HospLevel::parse(&f.hosp_lv).map_err(|e| format!("医院等级：{e}"))?;
    let setl_date = if f.date.trim().is_empty() {
        policy.meta.effective_from
    } else {
        Date::parse(f.date.trim()).map_err(|e| format!("结算日期：{e}"))?
    };
    if setl_date < policy.meta.effective_from || policy.meta.effective_to.is_some_and(|to| setl_date > to) {
        return Err(format!("结算日期 {setl_date} 不在该政策的施行期内"));
    }
    let bill = parse_bill(&f.total, &f.fulamt, &f.overlmt, &f.preselfpay)?;
    let claim = Claim {
        site: Default::default(),
        setl_date,
        med_type,
        hosp_lv,
        in_county: f.in_county.is_some(),
        referral_ok: f.referral_ok.is_some(),
        major_disease: f.major_disease.is_some(),
        bill,
    };
    let (s, _) = settle(policy, &claim, ids, &Accumulators::default());
    let a = baozhang_ingest::output::SetlAmounts::of(&s, &bill);
    Ok(result_html(policy, &s, &a, &bill, &ids, "测算结果（按本年度首次就医计算）", true))
}

/// The result of a settlement (computed or committed) as an HTML block: every fund, the hospital, the
/// patient, and the rule behind each amount.
pub fn result_html(
    policy: &Policy,
    s: &baozhang_core::engine::Settlement,
    a: &baozhang_ingest::output::SetlAmounts,
    bill: &Bill,
    ids: &IdentitySet,
    title: &str,
    printable: bool,
) -> String {
    let mut rows = String::new();
    for e in explain(policy, s).iter().filter(|e| e.applied) {
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"rule\">{}</td></tr>",
            esc(&e.layer_name),
            yuan(e.amount.0),
            esc(&e.text)
        ));
    }
    let total = bill.total().0;
    format!(
        "<div class=\"result\" data-testid=\"result\"><h3>{}</h3><p>身份：{}；医疗费总额 {} 元，其中政策范围内 {} 元。</p>\
         <table class=\"plain\"><thead><tr><th>支付项目</th><th>金额（元）</th><th>依据</th></tr></thead><tbody>{rows}</tbody>\
         <tfoot><tr><th>基金支付合计</th><td class=\"num\" data-testid=\"fund-total\">{}</td><td></td></tr>\
         <tr><th>医院承担</th><td class=\"num\">{}</td><td></td></tr>\
         <tr class=\"strong\"><th>个人负担（患者应付）</th><td class=\"num\" data-testid=\"psn-part\">{}</td><td>实际报销比例 {}</td></tr></tfoot></table>{}</div>",
        esc(title),
        esc(&if ids.is_empty() { "普通居民".to_string() } else { ids.names_zh() }),
        yuan(total),
        yuan(bill.compliant().0),
        yuan(a.fund_pay_sumamt.0),
        yuan(a.hosp_part_amt.0),
        yuan(a.psn_part_amt.0),
        pct(ratio_bp(total - a.psn_part_amt.0, total)),
        if printable { "<p class=\"noprint\"><button type=\"button\" data-print>打印</button></p>" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_from_four_fields_adds_up() {
        let b = parse_bill("20000", "500", "", "1000.5").expect("valid");
        assert_eq!(b.total(), Fen(2_000_000));
        assert_eq!(b.compliant(), Fen(2_000_000 - 50_000 - 100_050));
    }

    #[test]
    fn bad_bills_name_the_field() {
        assert!(parse_bill("abc", "0", "0", "0").unwrap_err().contains("医疗费总额"));
        assert!(parse_bill("0", "0", "0", "0").unwrap_err().contains("医疗费总额"));
        assert!(parse_bill("100", "-1", "0", "0").unwrap_err().contains("全自费"));
        assert!(parse_bill("100", "60", "30", "20").unwrap_err().contains("超过了医疗费总额"));
        assert!(parse_bill("100", "0", "1.234", "0").unwrap_err().contains("超限价自费"));
    }
}
