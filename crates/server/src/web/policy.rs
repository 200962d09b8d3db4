//! The policy page: a region's layers as a readable table, and a calculator (政策宣传: enter a bill and an
//! identity, see what each fund and the patient pay). The calculator writes nothing. Admin and bureau also
//! find here the weighing of a new policy against the old on a year of their region (`policy_compare`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use baozhang_core::claim::{Bill, Claim, HospLevel, MedType};
use baozhang_core::engine::{settle, Accumulators};
use baozhang_core::explain::explain;
use baozhang_core::policy::{describe, Mark, Policy};
use baozhang_core::{Date, Fen, Identity, IdentitySet};
use serde::Deserialize;

use super::table::{Cell, Table, TableView};
use super::{fragment, fragment_error, pct, ratio_bp, yuan, Page, WebResult, WebUser};
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
    let names = state.web.region_names(&state.store).await?;
    let compare = super::policy_compare::form_html(&state, &u, policy).await?;
    let view = PolicyView {
        policies: state.policies.all().iter().map(|p| (p.meta.id.clone(), format!("{}（{}）", p.meta.name, p.meta.region_name))).collect(),
        selected: policy.meta.id.clone(),
        scope: scope_line(policy, &names),
        layers: layers.view(&u.path),
        values: values.view(&u.path),
        identities: IDENTITY_CHOICES.iter().map(|i| (i.id(), i.name_zh())).collect(),
        date: policy.meta.effective_from.to_string(),
        compare,
    };
    let mut page = Page::new("政策与测算");
    page.view(&view)?;
    Ok(page.render(&u))
}

/// The policy page (`templates/policy.html`): the choice of policy, where and when it applies, its
/// layers and the sources of its values, the calculator and (admin, bureau) the comparison form.
#[derive(Template)]
#[template(path = "policy.html")]
pub struct PolicyView<'a> {
    /// (id, name with its region)
    pub policies: Vec<(String, String)>,
    pub selected: String,
    pub scope: String,
    pub layers: TableView<'a>,
    pub values: TableView<'a>,
    /// (id, name) of the identities the calculator offers.
    pub identities: Vec<(&'static str, &'static str)>,
    /// The calculator's default date: the policy's first day.
    pub date: String,
    /// `policy_compare::form_html`: rendered by askama (`templates/policy_compare.html`), or empty.
    pub compare: String,
}

/// Where and when a policy applies, its regions by name: "适用于会宁县，2018-01-01 起施行；政策版本号 …。"
pub fn scope_line(p: &Policy, names: &HashMap<String, String>) -> String {
    let place = |c: &str| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    let covers = if p.meta.covers.is_empty() {
        if p.meta.region_name.is_empty() {
            place(&p.meta.region_code)
        } else {
            p.meta.region_name.clone()
        }
    } else {
        p.meta.covers.iter().map(|c| place(c)).collect::<Vec<_>>().join("、")
    };
    format!(
        "适用于{covers}，{} 起施行{}；政策版本号 {}（记录在每一笔结算上）。",
        p.meta.effective_from,
        p.meta.effective_to.map(|d| format!("，至 {d}")).unwrap_or_default(),
        p.version
    )
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
    match calc(&state, &f).and_then(|v| v.render().map_err(|e| format!("测算结果无法显示：{e}"))) {
        Ok(html) => fragment(html),
        Err(e) => fragment_error(&e),
    }
}

fn calc(state: &AppState, f: &CalcForm) -> Result<CalcResultView, String> {
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
    Ok(result_view(policy, &s, &a, &bill, &ids, "测算结果（按本年度首次就医计算）", true))
}

/// A computed settlement (`templates/policy_result.html`): every fund, the hospital, the patient, and
/// the rule behind each amount.
#[derive(Template, Debug)]
#[template(path = "policy_result.html")]
pub struct CalcResultView {
    pub title: String,
    pub identities: String,
    pub total: String,
    pub inscp: String,
    /// (layer, amount in yuan, rule)
    pub lines: Vec<(String, String, String)>,
    pub fund: String,
    pub hosp: String,
    pub psn: String,
    /// 实际报销比例: (total − personal) ÷ total.
    pub ratio: String,
    pub printable: bool,
}

pub fn result_view(
    policy: &Policy,
    s: &baozhang_core::engine::Settlement,
    a: &baozhang_ingest::output::SetlAmounts,
    bill: &Bill,
    ids: &IdentitySet,
    title: &str,
    printable: bool,
) -> CalcResultView {
    let total = bill.total().0;
    CalcResultView {
        title: title.to_string(),
        identities: ids.names_zh(),
        total: yuan(total),
        inscp: yuan(bill.compliant().0),
        lines: explain(policy, s).iter().filter(|e| e.applied).map(|e| (e.layer_name.clone(), yuan(e.amount.0), e.text.clone())).collect(),
        fund: yuan(a.fund_pay_sumamt.0),
        hosp: yuan(a.hosp_part_amt.0),
        psn: yuan(a.psn_part_amt.0),
        ratio: pct(ratio_bp(total - a.psn_part_amt.0, total)),
        printable,
    }
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

    fn huining() -> Policy {
        baozhang_core::policy::parse_policy(baozhang_core::reference::reference_source("gansu-huining-2018").unwrap()).unwrap()
    }

    #[test]
    fn the_scope_names_the_regions() {
        let mut p = huining();
        let names: HashMap<String, String> =
            [("620422", "会宁县"), ("620421", "靖远县")].into_iter().map(|(c, n)| (c.to_string(), n.to_string())).collect();
        p.meta.covers = Vec::new();
        let line = scope_line(&p, &names);
        assert!(line.starts_with(&format!("适用于{}，{} 起施行", p.meta.region_name, p.meta.effective_from)), "{line}");
        assert!(line.contains(&format!("政策版本号 {}", p.version)), "{line}");
        p.meta.covers = vec!["620422".into(), "620421".into(), "620423".into()];
        let line = scope_line(&p, &names);
        assert!(line.starts_with("适用于会宁县、靖远县、620423，"), "by name, else by code: {line}");
    }

    #[test]
    fn a_calculation_adds_up_in_yuan_with_the_rule_of_each_layer() {
        let p = huining();
        let bill = parse_bill("10000", "500", "0", "0").unwrap();
        let claim = Claim {
            site: Default::default(),
            setl_date: p.meta.effective_from,
            med_type: MedType::parse("21").unwrap(),
            hosp_lv: HospLevel::parse("2").unwrap(),
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill,
        };
        let ids = IdentitySet::EMPTY.with(Identity::RegisteredPoor);
        let (s, _) = settle(&p, &claim, ids, &Accumulators::default());
        let a = baozhang_ingest::output::SetlAmounts::of(&s, &bill);
        let v = result_view(&p, &s, &a, &bill, &ids, "测算结果", true);
        assert_eq!((v.total.as_str(), v.inscp.as_str()), ("10,000.00", "9,500.00"));
        assert_eq!(v.identities, "建档立卡贫困人口");
        assert_eq!(v.fund, yuan(a.fund_pay_sumamt.0));
        assert_eq!(a.fund_pay_sumamt.0 + a.hosp_part_amt.0 + a.psn_part_amt.0, 1_000_000);
        assert!(!v.lines.is_empty() && v.lines.iter().all(|l| !l.2.is_empty()), "each applied layer with its rule: {v:?}");
        assert_eq!(v.ratio, pct(ratio_bp(1_000_000 - a.psn_part_amt.0, 1_000_000)));
        assert!(v.printable);
    }
}
