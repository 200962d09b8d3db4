//! Fund-supervision audit rules (基金监管, R-AUD-1) over settled claims. Each rule produces **leads**,
//! not verdicts: the claims behind it, the figures, and the rule with its parameters, for a person to
//! confirm, dismiss or send to the hospital (R-AUD-2, kept by the store).
//!
//! Readings taken (POLICY.md leaves them open; every number is a parameter, `AuditParams`):
//! - **Split hospitalisation** (分解住院): an inpatient stay that begins within `split_days` days after the
//!   same person's previous stay ended, at the same hospital, with the same diagnosis category (the first
//!   three characters of ICD-10; when either stay has no diagnosis, the same hospital suffices).
//! - **Repeated hospitalisation** (频繁住院): `repeat_stays` or more inpatient stays of one person at one
//!   hospital in the year (stays at several hospitals are referrals up and down, not a hospital's pattern).
//! - **Outpatient during a stay** (住院期间门诊结算): an outpatient claim dated strictly after a stay's
//!   admission and strictly before its discharge.
//! - **Out-of-scope share** (目录外费用占比): per hospital and year, the poor inpatients' out-of-scope costs
//!   (full own-pay + over-limit) over their total costs, above 1 % / 2 % / 3 % at level 1 / 2 / 3 (POLICY
//!   2.4 C.5, per year, not per claim).
//! - **Out-of-scope costs charged to the poor** (应由医院承担的费用由贫困患者负担): a poor inpatient's claim
//!   in a hospital of the county (where the policy makes the hospital bear them) where the hospital bore
//!   nothing although the stay's out-of-scope costs exceed its level's limit and the patient paid at least
//!   that excess. A stay outside the county is not the county's hospitals' to bear.
//! - **Cost outliers** (次均费用异常): an inpatient claim costing more than `outlier_factor_pct` % of the
//!   median of its diagnosis category at hospitals of its level (default 1,000 %: a township hospital's
//!   pneumonia is not the yardstick of a tertiary one's), where that group has at least
//!   `outlier_min_cases` claims (default 30: a median of fewer is no yardstick).
//!
//! The defaults were calibrated on the demo county's year (321,552 settlements, 126,947 stays): 147
//! split stays, 167 repeated stays, 483 cost outliers, 5 hospitals' out-of-scope shares — hundreds of
//! leads rather than the 14,997 of per-person stay counts, out-of-county stays and a median across all
//! levels.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::date::Date;

/// One settled claim as the rules see it (cancelled ones are left out by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditClaim {
    pub setl_id: String,
    pub psn_no: String,
    pub fixmedins_code: String,
    /// 1, 2 or 3.
    pub hosp_lv: i64,
    pub inpatient: bool,
    /// Admission (the settlement date when the claim does not say).
    pub begin: Date,
    /// Discharge / settlement.
    pub end: Date,
    /// ICD-10, upper case; empty when unknown.
    pub dise_codg: String,
    /// At a hospital of the county (the settlement's in-county flag; true when it was not recorded).
    pub in_county: bool,
    pub poor: bool,
    pub medfee_fen: i64,
    pub out_of_scope_fen: i64,
    pub psn_part_fen: i64,
    pub hosp_part_fen: i64,
}

/// The rules' parameters (a TOML file; every field has the default below).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditParams {
    pub split_days: i32,
    pub repeat_stays: usize,
    /// Out-of-scope limits of levels 1, 2, 3, basis points.
    pub out_of_scope_limit_bp: [i64; 3],
    pub outlier_factor_pct: i64,
    pub outlier_min_cases: usize,
}

impl Default for AuditParams {
    fn default() -> AuditParams {
        AuditParams {
            split_days: 15,
            repeat_stays: 4,
            out_of_scope_limit_bp: [100, 200, 300],
            outlier_factor_pct: 1_000,
            outlier_min_cases: 30,
        }
    }
}

impl AuditParams {
    /// The parameters in words, for the page officials read (not the configuration's field names).
    pub fn words(&self) -> Vec<String> {
        let pct = |bp: i64| format!("{}.{:02}%", bp / 100, bp % 100);
        let [l1, l2, l3] = self.out_of_scope_limit_bp;
        vec![
            format!("分解住院：同一人在同一医院出院后 {} 天内再次入院（同一诊断类别）", self.split_days),
            format!("频繁住院：一人一年在同一医院住院 {} 次及以上", self.repeat_stays),
            format!("目录外费用占比上限：一级医院 {}、二级医院 {}、三级医院 {}", pct(l1), pct(l2), pct(l3)),
            format!(
                "次均费用异常：住院费用超过同级医院同一诊断类别中位数的 {} 倍（该类别至少 {} 例才比较）",
                format!("{}.{:02}", self.outlier_factor_pct / 100, self.outlier_factor_pct % 100)
                    .trim_end_matches('0')
                    .trim_end_matches('.'),
                self.outlier_min_cases
            ),
        ]
    }

    pub fn parse(toml_text: &str) -> Result<AuditParams, String> {
        let p: AuditParams = toml::from_str(toml_text).map_err(|e| format!("审核规则参数无效：{e}"))?;
        if p.split_days < 0 || p.repeat_stays < 2 || p.outlier_factor_pct <= 100 || p.outlier_min_cases < 2 {
            return Err("审核规则参数超出范围（split_days ≥ 0，repeat_stays ≥ 2，outlier_factor_pct > 100，outlier_min_cases ≥ 2）".into());
        }
        if p.out_of_scope_limit_bp.iter().any(|b| !(0..=10_000).contains(b)) {
            return Err("out_of_scope_limit_bp 应在 0–10000（万分比）之间".into());
        }
        Ok(p)
    }
    fn limit_bp(&self, hosp_lv: i64) -> i64 {
        self.out_of_scope_limit_bp[(hosp_lv.clamp(1, 3) - 1) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    SplitStay,
    RepeatedStays,
    OutpatientDuringStay,
    OutOfScopeShare,
    ChargedToPoor,
    CostOutlier,
}

impl Rule {
    pub const ALL: [Rule; 6] =
        [Rule::SplitStay, Rule::RepeatedStays, Rule::OutpatientDuringStay, Rule::OutOfScopeShare, Rule::ChargedToPoor, Rule::CostOutlier];
    pub fn id(self) -> &'static str {
        match self {
            Rule::SplitStay => "split_stay",
            Rule::RepeatedStays => "repeated_stays",
            Rule::OutpatientDuringStay => "outpatient_during_stay",
            Rule::OutOfScopeShare => "out_of_scope_share",
            Rule::ChargedToPoor => "charged_to_poor",
            Rule::CostOutlier => "cost_outlier",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Rule::SplitStay => "分解住院",
            Rule::RepeatedStays => "频繁住院",
            Rule::OutpatientDuringStay => "住院期间门诊结算",
            Rule::OutOfScopeShare => "贫困患者目录外费用占比超限",
            Rule::ChargedToPoor => "应由医院承担的目录外费用由贫困患者负担",
            Rule::CostOutlier => "次均费用异常",
        }
    }
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == s)
    }
}

/// A lead: what a rule found, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lead {
    pub rule: Rule,
    /// The person (psn_no) or the hospital (fixmedins_code) it is about.
    pub subject: String,
    pub fixmedins_code: String,
    /// The claims behind it (setl_id).
    pub claims: Vec<String>,
    /// The figures, Chinese, with the parameter it was compared with.
    pub evidence: String,
    /// The amount at stake, fen (0 when the rule names none).
    pub amount_fen: i64,
}

fn icd3(code: &str) -> &str {
    code.get(..3).unwrap_or(code)
}

fn yuan(f: i64) -> String {
    crate::Fen(f).grouped()
}

fn pct(num: i64, den: i64) -> String {
    if den == 0 {
        return "—".into();
    }
    let bp = (i128::from(num) * 10_000 / i128::from(den)) as i64;
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// Runs every rule over a year's claims. Leads come out in rule order, then subject, then first claim.
pub fn run(p: &AuditParams, claims: &[AuditClaim]) -> Vec<Lead> {
    let mut leads = Vec::new();
    let mut by_person: BTreeMap<&str, Vec<&AuditClaim>> = BTreeMap::new();
    for c in claims {
        by_person.entry(&c.psn_no).or_default().push(c);
    }
    for (psn, cs) in &by_person {
        let mut stays: Vec<&AuditClaim> = cs.iter().copied().filter(|c| c.inpatient).collect();
        stays.sort_by(|a, b| (a.begin, a.end, &a.setl_id).cmp(&(b.begin, b.end, &b.setl_id)));
        for w in stays.windows(2) {
            let (a, b) = (w[0], w[1]);
            let gap = b.begin.to_days() - a.end.to_days();
            let same_dx = if a.dise_codg.is_empty() || b.dise_codg.is_empty() { true } else { icd3(&a.dise_codg) == icd3(&b.dise_codg) };
            if (0..=p.split_days).contains(&gap) && a.fixmedins_code == b.fixmedins_code && same_dx {
                leads.push(Lead {
                    rule: Rule::SplitStay,
                    subject: psn.to_string(),
                    fixmedins_code: b.fixmedins_code.clone(),
                    claims: vec![a.setl_id.clone(), b.setl_id.clone()],
                    evidence: format!(
                        "{} 出院后 {gap} 天于同一医院再次入院（{}），诊断 {} / {}；参数：间隔 ≤ {} 天",
                        a.end,
                        b.begin,
                        if a.dise_codg.is_empty() { "未知" } else { &a.dise_codg },
                        if b.dise_codg.is_empty() { "未知" } else { &b.dise_codg },
                        p.split_days
                    ),
                    amount_fen: b.medfee_fen,
                });
            }
        }
        let mut at: BTreeMap<&str, Vec<&AuditClaim>> = BTreeMap::new();
        for s in &stays {
            at.entry(&s.fixmedins_code).or_default().push(s);
        }
        for (hosp, here) in at.into_iter().filter(|(_, v)| v.len() >= p.repeat_stays) {
            leads.push(Lead {
                rule: Rule::RepeatedStays,
                subject: psn.to_string(),
                fixmedins_code: hosp.to_string(),
                claims: here.iter().map(|s| s.setl_id.clone()).collect(),
                evidence: format!(
                    "全年在同一医院住院 {} 次（{}）；参数：≥ {} 次",
                    here.len(),
                    here.iter().map(|s| format!("{}—{}", s.begin, s.end)).collect::<Vec<_>>().join("，"),
                    p.repeat_stays
                ),
                amount_fen: here.iter().map(|s| s.medfee_fen).sum(),
            });
        }
        for o in cs.iter().filter(|c| !c.inpatient) {
            if let Some(s) = stays.iter().find(|s| s.begin < o.end && o.end < s.end) {
                leads.push(Lead {
                    rule: Rule::OutpatientDuringStay,
                    subject: psn.to_string(),
                    fixmedins_code: o.fixmedins_code.clone(),
                    claims: vec![s.setl_id.clone(), o.setl_id.clone()],
                    evidence: format!("门诊结算日 {} 在住院期间（{} 入院，{} 出院，{}）", o.end, s.begin, s.end, s.fixmedins_code),
                    amount_fen: o.medfee_fen,
                });
            }
        }
    }

    // Per hospital: the poor inpatients' out-of-scope share of the year.
    let mut by_hosp: BTreeMap<&str, (i64, i64, i64, Vec<String>)> = BTreeMap::new();
    for c in claims.iter().filter(|c| c.inpatient && c.poor) {
        let e = by_hosp.entry(&c.fixmedins_code).or_insert((c.hosp_lv, 0, 0, Vec::new()));
        e.1 += c.out_of_scope_fen;
        e.2 += c.medfee_fen;
        if c.out_of_scope_fen > 0 {
            e.3.push(c.setl_id.clone());
        }
    }
    for (h, (lv, oos, total, ids)) in by_hosp {
        let limit = p.limit_bp(lv);
        // oos / total > limit, in integers.
        if total > 0 && i128::from(oos) * 10_000 > i128::from(total) * i128::from(limit) {
            let allowed = (i128::from(total) * i128::from(limit) / 10_000) as i64;
            leads.push(Lead {
                rule: Rule::OutOfScopeShare,
                subject: h.to_string(),
                fixmedins_code: h.to_string(),
                claims: ids,
                evidence: format!(
                    "{lv} 级医院贫困患者住院目录外费用 {} 元，占总费用 {} 元的 {}；限额 {}，超出 {} 元（按年计，不按单次）",
                    yuan(oos),
                    yuan(total),
                    pct(oos, total),
                    pct(limit, 10_000),
                    yuan(oos - allowed)
                ),
                amount_fen: oos - allowed,
            });
        }
    }
    for c in claims.iter().filter(|c| c.inpatient && c.poor && c.in_county) {
        let allowed = (i128::from(c.medfee_fen) * i128::from(p.limit_bp(c.hosp_lv)) / 10_000) as i64;
        let excess = c.out_of_scope_fen - allowed;
        if excess > 0 && c.hosp_part_fen == 0 && c.psn_part_fen >= excess {
            leads.push(Lead {
                rule: Rule::ChargedToPoor,
                subject: c.psn_no.clone(),
                fixmedins_code: c.fixmedins_code.clone(),
                claims: vec![c.setl_id.clone()],
                evidence: format!(
                    "目录外费用 {} 元，超出限额 {} 元（{} 级医院限额 {} 即 {} 元）；医院承担 0 元，个人负担 {} 元",
                    yuan(c.out_of_scope_fen),
                    yuan(excess),
                    c.hosp_lv,
                    pct(p.limit_bp(c.hosp_lv), 10_000),
                    yuan(allowed),
                    yuan(c.psn_part_fen)
                ),
                amount_fen: excess,
            });
        }
    }

    // Cost outliers per diagnosis category and hospital level.
    let mut by_dx: HashMap<(&str, i64), Vec<&AuditClaim>> = HashMap::new();
    for c in claims.iter().filter(|c| c.inpatient && !c.dise_codg.is_empty()) {
        by_dx.entry((icd3(&c.dise_codg), c.hosp_lv)).or_default().push(c);
    }
    let mut dxs: Vec<_> = by_dx.into_iter().filter(|(_, v)| v.len() >= p.outlier_min_cases).collect();
    dxs.sort_by_key(|(k, _)| *k);
    for ((dx, lv), cs) in dxs {
        let mut fees: Vec<i64> = cs.iter().map(|c| c.medfee_fen).collect();
        fees.sort_unstable();
        let n = fees.len();
        let median = if n % 2 == 1 { fees[n / 2] } else { (fees[n / 2 - 1] + fees[n / 2]) / 2 };
        let bound = i128::from(median) * i128::from(p.outlier_factor_pct);
        let mut hits: Vec<&&AuditClaim> = cs.iter().filter(|c| i128::from(c.medfee_fen) * 100 > bound).collect();
        hits.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
        for c in hits {
            leads.push(Lead {
                rule: Rule::CostOutlier,
                subject: c.psn_no.clone(),
                fixmedins_code: c.fixmedins_code.clone(),
                claims: vec![c.setl_id.clone()],
                evidence: format!(
                    "{lv} 级医院诊断 {dx} 类住院 {n} 例，中位费用 {} 元；本次 {} 元，为中位数的 {}；参数：> {}% 且 ≥ {} 例",
                    yuan(median),
                    yuan(c.medfee_fen),
                    pct(c.medfee_fen, median),
                    p.outlier_factor_pct,
                    p.outlier_min_cases
                ),
                amount_fen: c.medfee_fen - median,
            });
        }
    }
    leads.sort_by(|a, b| (a.rule, &a.subject, &a.claims).cmp(&(b.rule, &b.subject, &b.claims)));
    leads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    /// An inpatient stay of a poor person at hospital H (level 2): 10,000 yuan, nothing out of scope.
    fn stay(id: &str, psn: &str, begin: &str, end: &str, dx: &str) -> AuditClaim {
        AuditClaim {
            setl_id: id.into(),
            psn_no: psn.into(),
            fixmedins_code: "H".into(),
            hosp_lv: 2,
            inpatient: true,
            begin: d(begin),
            end: d(end),
            dise_codg: dx.into(),
            in_county: true,
            poor: true,
            medfee_fen: 1_000_000,
            out_of_scope_fen: 0,
            psn_part_fen: 100_000,
            hosp_part_fen: 0,
        }
    }

    fn rules(leads: &[Lead]) -> Vec<(Rule, Vec<String>)> {
        leads.iter().map(|l| (l.rule, l.claims.clone())).collect()
    }

    #[test]
    fn a_readmission_within_the_window_with_the_same_diagnosis_is_a_split_stay() {
        let p = AuditParams::default();
        let fires = [stay("A", "P", "2018-03-01", "2018-03-10", "J18.9"), stay("B", "P", "2018-03-20", "2018-03-28", "J18.0")];
        assert_eq!(rules(&run(&p, &fires)), vec![(Rule::SplitStay, vec!["A".to_string(), "B".to_string()])]);
        // 16 days later, another diagnosis, another hospital, another person: no lead.
        let late = [stay("A", "P", "2018-03-01", "2018-03-10", "J18.9"), stay("B", "P", "2018-03-26", "2018-03-30", "J18.9")];
        assert!(run(&p, &late).is_empty());
        let other_dx = [stay("A", "P", "2018-03-01", "2018-03-10", "J18.9"), stay("B", "P", "2018-03-12", "2018-03-20", "K80.2")];
        assert!(run(&p, &other_dx).is_empty());
        let mut elsewhere = stay("B", "P", "2018-03-12", "2018-03-20", "J18.9");
        elsewhere.fixmedins_code = "H2".into();
        assert!(run(&p, &[stay("A", "P", "2018-03-01", "2018-03-10", "J18.9"), elsewhere]).is_empty());
        let two_people = [stay("A", "P", "2018-03-01", "2018-03-10", "J18.9"), stay("B", "Q", "2018-03-12", "2018-03-20", "J18.9")];
        assert!(run(&p, &two_people).is_empty());
    }

    #[test]
    fn four_stays_in_a_year_are_repeated_hospitalisation() {
        let p = AuditParams::default();
        let three: Vec<_> = ["01", "05", "09"].iter().map(|m| stay(m, "P", &format!("2018-{m}-01"), &format!("2018-{m}-05"), "")).collect();
        assert!(run(&p, &three).is_empty(), "three stays months apart");
        let mut four = three.clone();
        four.push(stay("12", "P", "2018-12-01", "2018-12-05", ""));
        let leads = run(&p, &four);
        assert_eq!(leads.len(), 1);
        assert_eq!((leads[0].rule, leads[0].claims.len(), leads[0].amount_fen), (Rule::RepeatedStays, 4, 4_000_000));
        // The same four stays at two hospitals: referrals, not one hospital's pattern.
        four[3].fixmedins_code = "H2".into();
        assert!(run(&p, &four).is_empty(), "{:?}", run(&p, &four));
    }

    #[test]
    fn an_outpatient_claim_inside_a_stay_is_flagged_but_not_on_its_edges() {
        let p = AuditParams::default();
        let mut out = stay("O", "P", "2018-03-05", "2018-03-05", "I10");
        out.inpatient = false;
        let leads = run(&p, &[stay("S", "P", "2018-03-01", "2018-03-10", "J18.9"), out.clone()]);
        assert_eq!(rules(&leads), vec![(Rule::OutpatientDuringStay, vec!["S".to_string(), "O".to_string()])]);
        out.begin = d("2018-03-10");
        out.end = d("2018-03-10");
        assert!(run(&p, &[stay("S", "P", "2018-03-01", "2018-03-10", "J18.9"), out]).is_empty(), "the day of discharge");
    }

    #[test]
    fn the_out_of_scope_share_is_per_hospital_and_year_not_per_claim() {
        let p = AuditParams::default();
        // Level 2, limit 2 %: one claim at 5 % and one at 0 % make 2.5 % over the year → a lead.
        let mut a = stay("A", "P", "2018-01-01", "2018-01-05", "");
        a.out_of_scope_fen = 50_000;
        a.hosp_part_fen = 30_000;
        let b = stay("B", "Q", "2018-06-01", "2018-06-05", "");
        let leads = run(&p, &[a.clone(), b.clone()]);
        assert_eq!(leads.iter().filter(|l| l.rule == Rule::OutOfScopeShare).count(), 1);
        let l = leads.iter().find(|l| l.rule == Rule::OutOfScopeShare).unwrap();
        assert_eq!((l.subject.as_str(), l.amount_fen), ("H", 10_000), "2.5 % of 20,000 yuan is 100 yuan over the 2 %");
        // Three more claims at 0 %: 1 % over the year → none, though claim A alone is at 5 %.
        let more: Vec<_> = ["C", "D", "E"].iter().map(|id| stay(id, id, "2018-07-01", "2018-07-05", "")).collect();
        let mut all = vec![a, b];
        all.extend(more);
        assert!(run(&p, &all).iter().all(|l| l.rule != Rule::OutOfScopeShare));
    }

    #[test]
    fn out_of_scope_costs_over_the_limit_paid_by_the_poor_patient_are_a_lead() {
        let p = AuditParams::default();
        let mut c = stay("A", "P", "2018-01-01", "2018-01-05", "");
        c.out_of_scope_fen = 50_000; // 5 % of 10,000 yuan; 2 % allowed = 200 yuan; excess 300 yuan
        c.psn_part_fen = 60_000;
        let leads = run(&p, &[c.clone()]);
        let l = leads.iter().find(|l| l.rule == Rule::ChargedToPoor).expect("fires");
        assert_eq!(l.amount_fen, 30_000);
        // The hospital bore it: no lead of this rule.
        c.hosp_part_fen = 30_000;
        c.psn_part_fen = 30_000;
        assert!(run(&p, &[c.clone()]).iter().all(|l| l.rule != Rule::ChargedToPoor));
        // Outside the county the county's rule does not make the hospital bear it.
        c.hosp_part_fen = 0;
        c.psn_part_fen = 60_000;
        c.in_county = false;
        assert!(run(&p, &[c.clone()]).iter().all(|l| l.rule != Rule::ChargedToPoor));
        // Not poor: the rule is about the poor.
        c.in_county = true;
        c.poor = false;
        assert!(run(&p, &[c]).is_empty());
    }

    #[test]
    fn a_claim_far_above_its_diagnosis_median_is_an_outlier() {
        let p = AuditParams { outlier_factor_pct: 500, outlier_min_cases: 5, ..AuditParams::default() };
        let mut cs: Vec<_> = (0..5).map(|i| stay(&format!("C{i}"), &format!("P{i}"), "2018-01-01", "2018-01-05", "K80.2")).collect();
        assert!(run(&p, &cs).is_empty(), "all alike");
        cs[4].medfee_fen = 5_000_001; // just over 500 % of the 10,000-yuan median
        let leads = run(&p, &cs);
        assert_eq!(rules(&leads), vec![(Rule::CostOutlier, vec!["C4".to_string()])]);
        cs[4].medfee_fen = 5_000_000; // exactly 500 %: not above
        assert!(run(&p, &cs).is_empty());
        // Too few cases of the category: no comparison.
        let mut four = cs[..4].to_vec();
        four[3].medfee_fen = 9_000_000;
        assert!(run(&p, &four).is_empty());
        // Compared within its hospital level: a level-3 stay is not measured against level-2 ones.
        cs[4].medfee_fen = 5_000_001;
        cs[4].hosp_lv = 3;
        let mut more = cs.clone();
        more.push(stay("C5", "P5", "2018-01-01", "2018-01-05", "K80.2"));
        assert!(run(&p, &more).iter().all(|l| l.rule != Rule::CostOutlier), "{:?}", run(&p, &more));
    }

    #[test]
    fn the_defaults_compare_within_groups_of_thirty_at_ten_times_the_median() {
        let p = AuditParams::default();
        assert_eq!((p.outlier_factor_pct, p.outlier_min_cases, p.repeat_stays), (1_000, 30, 4));
        let mut cs: Vec<_> = (0..30).map(|i| stay(&format!("C{i:02}"), &format!("P{i}"), "2018-01-01", "2018-01-05", "K80.2")).collect();
        cs[29].medfee_fen = 10_000_001;
        assert_eq!(rules(&run(&p, &cs)), vec![(Rule::CostOutlier, vec!["C29".to_string()])]);
        cs[29].medfee_fen = 9_999_999;
        assert!(run(&p, &cs).is_empty(), "under ten times the median");
    }

    #[test]
    fn parameters_come_from_a_file_and_are_checked() {
        assert_eq!(AuditParams::parse("").unwrap(), AuditParams::default());
        let p = AuditParams::parse("split_days = 7\nout_of_scope_limit_bp = [100, 150, 300]").unwrap();
        assert_eq!((p.split_days, p.out_of_scope_limit_bp[1], p.repeat_stays), (7, 150, 4));
        assert!(AuditParams::parse("split_days = -1").is_err());
        assert!(AuditParams::parse("unknown = 1").is_err());
        assert!(AuditParams::parse("outlier_factor_pct = 90").is_err());
    }
}
