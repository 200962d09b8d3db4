//! Settlements explain themselves (POLICY §2.3): per layer, the base, deductible, segments, ratio, cap
//! and amount, as data and as one line of Chinese for slips and pages; and where the values it used come
//! from (docs/SETTLEMENT.md "Sources as data"): 依据 and whether any was illustrative (示意值).

use crate::engine::{CapHit, LayerOutcome, Settlement};
use crate::money::Fen;
use crate::policy::{CapKind, Layer, LayerKind, Mark, Policy, ValueUse};

/// One layer of one settlement, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerExplanation {
    pub layer_id: String,
    pub layer_name: String,
    pub fund_code: Option<&'static str>,
    pub applied: bool,
    pub branch: Option<String>,
    pub base: Fen,
    pub deductible: Fen,
    /// Segments the base fell into, as "lo–hi ratio" (empty for kinds without segments).
    pub segments: Vec<String>,
    pub ratio: Option<String>,
    pub cap: Option<&'static str>,
    pub amount: Fen,
    pub clawed_back: Fen,
    /// One line of Chinese: the rule behind the amount.
    pub text: String,
    /// For an annual layer: how the payment follows from the year's totals (reading 1), in Chinese.
    pub year_formula: Option<String>,
    /// The marked values this settlement of the layer used, as indices into `Policy::provenance`.
    pub provenance: Vec<usize>,
    /// Some value used is illustrative (示意值, mark I): the amount rests on a figure that is not an
    /// official one. `text` then ends with "（含示意值）".
    pub illustrative: bool,
    /// The titles of the S and P sources of the values used (依据), in the policy's order of sources.
    /// `text` then ends with "；依据：…".
    pub basis: Vec<String>,
}

/// What `text` ends with for a layer whose values have these marks: "（含示意值）" and/or "；依据：…"
/// ("" when neither). A page or slip that shows the two as fields of their own strips this suffix.
pub fn provenance_marker(illustrative: bool, basis: &[String]) -> String {
    let mut m = String::new();
    if illustrative {
        m.push_str("（含示意值）");
    }
    if !basis.is_empty() {
        m.push_str("；依据：");
        m.push_str(&basis.join("、"));
    }
    m
}

/// Whether a settlement of `layer` (outcome `o`, hospital level `lv`) used a value of this use in
/// branch `branch`. Deductibles for identities and repeat stays are read from the deductible in force
/// (the explanation does not know the claimant's identities): an identity's deductible is the one in
/// force when it is the smallest one at or above it and below the schedule's.
fn value_used(layer: &Layer, o: &LayerOutcome, lv: usize, branch: Option<usize>, used: ValueUse) -> bool {
    let at = |levels: u8| levels & (1 << lv) != 0;
    let (br, sched) = match &layer.kind {
        LayerKind::Ratio { branches, .. } => {
            let b = &branches[usize::from(o.branch)];
            (Some(b), Some(&b.levels[lv]))
        }
        _ => (None, None),
    };
    if branch.is_some_and(|b| br.is_none() || b != usize::from(o.branch)) {
        return false;
    }
    let d = o.deductible_fen;
    // The identity deductible in force, if one is.
    let ded_for = match (br, sched) {
        (Some(b), Some(s)) => b.deductible_for.iter().map(|&(_, a)| a.0).filter(|&a| a < s.deductible.0 && d <= a).min(),
        _ => None,
    };
    match used {
        ValueUse::Always => true,
        ValueUse::Deductible { levels } => at(levels) && ded_for.is_none() && (d > 0 || sched.is_some_and(|s| s.deductible.0 == 0)),
        ValueUse::Ratio { levels } => at(levels),
        ValueUse::Segment { levels, index } => {
            at(levels) && if o.seg_first <= o.seg_last { (o.seg_first..=o.seg_last).contains(&index) } else { index == 0 }
        }
        ValueUse::DeductibleFor(a) => ded_for == Some(a.0),
        ValueUse::Bonus(r) => r.0 > 0 && o.bonus == r,
        ValueUse::RepeatStay | ValueUse::DeductibleRule(_) => ded_for.is_none() && sched.is_some_and(|s| d < s.deductible.0),
        ValueUse::Adjust(i) => o.adjust == i.saturating_add(1),
        ValueUse::Cap(kind) => match (kind, o.cap) {
            (CapKind::PerClaim, CapHit::PerClaim) | (CapKind::Outpatient, CapHit::Outpatient) => true,
            (CapKind::Annual, CapHit::BranchAnnual) => branch.is_some(),
            (CapKind::Annual, CapHit::Annual) => branch.is_none(),
            _ => false,
        },
    }
}

/// Fills in the provenance of the values an applied layer used and appends its marker to the text.
fn mark_sources(policy: &Policy, li: usize, o: &LayerOutcome, lv: usize, e: &mut LayerExplanation) {
    let layer = &policy.layers[li];
    e.provenance = policy
        .provenance
        .iter()
        .enumerate()
        .filter(|(_, p)| p.layer == li && value_used(layer, o, lv, p.branch, p.used))
        .map(|(i, _)| i)
        .collect();
    e.illustrative = e.provenance.iter().any(|&i| policy.provenance[i].mark == Mark::I);
    e.basis = policy
        .meta
        .sources
        .iter()
        .filter(|s| {
            s.id.as_ref().is_some_and(|id| {
                e.provenance.iter().any(|&i| {
                    let p = &policy.provenance[i];
                    p.mark != Mark::I && p.source_id.as_ref() == Some(id)
                })
            })
        })
        .map(|s| s.title.clone())
        .collect();
    e.text.push_str(&provenance_marker(e.illustrative, &e.basis));
}

/// V(x) of a ratio schedule in fen × basis points: the segments above the deductible up to the cumulative
/// base `x`, each at its ratio plus the identity bonus (exact, not rounded).
fn value_bp(sched: &crate::policy::Schedule, deductible_fen: i64, bonus: crate::money::Ratio, x: i64) -> i128 {
    let mut lo = deductible_fen;
    let mut v: i128 = 0;
    for seg in &sched.segments {
        let hi = seg.to.map_or(i64::MAX, |t| t.0);
        if hi > lo {
            let part = x.min(hi) - lo;
            if part > 0 {
                v += i128::from(part) * i128::from(seg.ratio.plus_capped(bonus).0);
            }
            lo = hi;
        }
    }
    v
}

/// fen × bp → fen, half away from zero.
fn round_bp(v: i128) -> i64 {
    let r = if v >= 0 { (v + 5_000) / 10_000 } else { -((-v + 5_000) / 10_000) };
    r as i64
}

fn cap_name(c: CapHit) -> Option<&'static str> {
    match c {
        CapHit::None => None,
        CapHit::PerClaim => Some("单次封顶"),
        CapHit::Outpatient => Some("门诊年度封顶"),
        CapHit::BranchAnnual | CapHit::Annual => Some("年度封顶"),
        CapHit::Remainder => Some("以剩余未付金额为限"),
        CapHit::Shared => Some("合计年度封顶"),
    }
}

pub fn explain(policy: &Policy, s: &Settlement) -> Vec<LayerExplanation> {
    let lv = usize::from(s.level_index);
    policy
        .layers
        .iter()
        .zip(s.layers().iter())
        .enumerate()
        .map(|(li, (layer, o))| {
            let mut e = explain_layer(policy, layer, o, lv, s.year);
            if o.applied && !policy.provenance.is_empty() {
                mark_sources(policy, li, o, lv, &mut e);
            }
            e
        })
        .collect()
}

fn explain_layer(policy: &Policy, layer: &crate::policy::Layer, o: &LayerOutcome, lv: usize, year: u16) -> LayerExplanation {
    let mut e = LayerExplanation {
        layer_id: layer.id.clone(),
        layer_name: layer.name.clone(),
        fund_code: layer.fund.map(|f| f.code()),
        applied: o.applied,
        branch: None,
        base: Fen(o.base_fen),
        deductible: Fen(o.deductible_fen),
        segments: Vec::new(),
        ratio: None,
        cap: cap_name(o.cap),
        amount: Fen(o.amount_fen),
        clawed_back: Fen(o.clawed_back_fen),
        text: String::new(),
        year_formula: None,
        provenance: Vec::new(),
        illustrative: false,
        basis: Vec::new(),
    };
    if !o.applied {
        e.text = format!("{}：不适用", layer.name);
        return e;
    }
    let mut text = format!("{}：", layer.name);
    match &layer.kind {
        LayerKind::Ratio { base, annual, branches, .. } => {
            let br = &branches[usize::from(o.branch)];
            e.branch = Some(br.name.clone());
            let sched = &br.levels[lv];
            let adjust = usize::from(o.adjust).checked_sub(1).and_then(|i| layer.adjust.get(i));
            let minus = adjust.map_or(0, |a| a.minus_points.0);
            let mut lo = o.deductible_fen;
            for (i, seg) in sched.segments.iter().enumerate() {
                let hi = seg.to.map_or(i64::MAX, |t| t.0);
                if hi > lo {
                    if (i as u8) >= o.seg_first && (i as u8) <= o.seg_last {
                        let r = crate::money::Ratio(seg.ratio.plus_capped(o.bonus).0.saturating_sub(minus));
                        e.segments.push(match seg.to {
                            Some(t) => format!("{}–{} {}", Fen(lo).grouped(), t.grouped(), r),
                            None => format!("{} 以上 {}", Fen(lo).grouped(), r),
                        });
                    }
                    lo = hi;
                }
            }
            e.ratio = Some(o.ratio.to_string());
            if *annual {
                text.push_str(&format!(
                    "{}本次 {}（年度累计 {} → {}）",
                    base.name_zh(),
                    Fen(o.base_fen).grouped(),
                    Fen(o.cum_before_fen).grouped(),
                    Fen(o.cum_before_fen + o.base_fen).grouped()
                ));
            } else {
                text.push_str(&format!("{} {}", base.name_zh(), Fen(o.base_fen).grouped()));
            }
            text.push_str(&format!("，起付线 {}", Fen(o.deductible_fen).grouped()));
            // A deductible set as a share of income says which income and share (R-POL-27), so it can be
            // checked by hand.
            if let Some(inc) = policy.income_for(year) {
                let share = br.deductible_rules.iter().find_map(|(_, r)| match r {
                    crate::policy::DeductibleRule::ShareOfIncome(x) if x.apply(inc).0 == o.deductible_fen => Some(*x),
                    _ => None,
                });
                if let Some(x) = share {
                    text.push_str(&format!("（{} 年居民人均可支配收入 {} × {x}）", year - 1, inc.grouped()));
                }
            }
            if e.segments.is_empty() {
                text.push_str(&format!("，比例 {}", o.ratio));
            } else {
                text.push_str(&format!("，{}", e.segments.join("、")));
            }
            if o.bonus.0 > 0 {
                text.push_str(&format!("（含身份提高 {} 个百分点）", o.bonus.to_string().trim_end_matches('%')));
            }
            if let Some(a) = adjust {
                text.push_str(&format!("（{}：{}）", a.name, a.describe()));
            }
            // Reading 1 (docs/SETTLEMENT.md): an annual layer pays round(V(B₁)) − round(V(B₀)). Say so with
            // both figures, so the line can be checked by hand even where this claim's own segments, rounded
            // alone, would differ by a fen.
            if *annual && e.cap.is_none() && o.clawed_back_fen == 0 && adjust.is_none() {
                let v = |x: i64| round_bp(value_bp(sched, o.deductible_fen, o.bonus, x));
                let (v0, v1) = (v(o.cum_before_fen), v(o.cum_before_fen + o.base_fen));
                if v1 - v0 == o.amount_fen && o.amount_fen > 0 {
                    let alone = round_bp(
                        value_bp(sched, o.deductible_fen, o.bonus, o.cum_before_fen + o.base_fen)
                            - value_bp(sched, o.deductible_fen, o.bonus, o.cum_before_fen),
                    );
                    let note = if alone != o.amount_fen {
                        format!("；本次单独计算为 {}，差额为年度累计取整", Fen(alone).grouped())
                    } else {
                        String::new()
                    };
                    e.year_formula = Some(format!("年度累计应付 {} − 此前累计 {}{note}", Fen(v1).grouped(), Fen(v0).grouped()));
                }
            }
        }
        LayerKind::FloorTopup { ratio, reference, .. } => {
            text.push_str(&format!("补足至{}的 {}（目标 {}）", reference.name_zh(), ratio, Fen(o.threshold_fen).grouped()));
            e.ratio = Some(ratio.to_string());
        }
        LayerKind::OopCap { base, annual, .. } => {
            let scope = if *annual { format!("年度已负担 {}，", Fen(o.cum_before_fen).grouped()) } else { String::new() };
            text.push_str(&format!(
                "{scope}{} {}，超过个人负担限额 {} 的部分由本项支付",
                base.name_zh(),
                Fen(o.base_fen).grouped(),
                Fen(o.threshold_fen).grouped()
            ));
        }
        LayerKind::Ceiling { ratio, reference, .. } => {
            text.push_str(&format!("基金支付不超过{}的 {}（{}）", reference.name_zh(), ratio, Fen(o.threshold_fen).grouped()));
            if o.clawed_back_fen > 0 {
                text.push_str(&format!("，扣回 {}", Fen(o.clawed_back_fen).grouped()));
            }
            e.text = text;
            return e;
        }
        LayerKind::HospitalBears { base } => {
            text.push_str(&format!("{} {} 由医院承担", base.name_zh(), Fen(o.base_fen).grouped()));
        }
    }
    if let Some(c) = e.cap {
        text.push_str(&format!("，受{c}限制"));
    }
    if o.clawed_back_fen > 0 {
        text.push_str(&format!("，被封顶扣回 {}", Fen(o.clawed_back_fen).grouped()));
    }
    text.push_str(&format!("，支付 {}", Fen(o.amount_fen).grouped()));
    if let Some(f) = &e.year_formula {
        text.push_str(&format!("（= {f}）"));
    }
    let _ = policy;
    e.text = text;
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{settle, Accumulators};
    use crate::{parse_policy, Bill, Claim, Date, HospLevel, IdentitySet, MedType};

    const ANNUAL_ONLY: &str = r#"
[policy]
id = "test-annual"
name = "年度分段（测试）"
region_code = "620422"
region_name = "测试县"
year = 2018
effective_from = "2018-01-01"

[[layers]]
id = "critical"
name = "大病保险"
fund = "390200"
kind = "ratio"
base = "compliant"
accumulation = "annual"

[[layers.branches]]
name = "分段"
deductible = 2000
segments = [{ to = 50000, ratio = "50%" }, { ratio = "60%" }]
"#;

    fn claim(date: &str, compliant_fen: i64) -> Claim {
        Claim {
            site: Default::default(),
            setl_date: Date::parse(date).unwrap(),
            med_type: MedType::Inpatient,
            hosp_lv: HospLevel::new(2).unwrap(),
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill: Bill::new(Fen(compliant_fen), Fen(0), Fen(0), Fen(0), Fen(compliant_fen)).unwrap(),
        }
    }

    /// The issue's case: after a year's base of 2,000.01 (half a fen payable), a claim of 2,391.57 at 50 %
    /// is paid 1,195.78 — the year's total 1,195.79 less the 0.01 paid — while the claim alone would round
    /// to 1,195.79. The line says both, so it can be checked by hand.
    #[test]
    fn an_annual_layer_says_how_its_payment_follows_from_the_year() {
        let p = parse_policy(ANNUAL_ONLY).unwrap();
        let (s1, acc) = settle(&p, &claim("2018-03-01", 200_001), IdentitySet::EMPTY, &Accumulators::default());
        assert_eq!(s1.layers()[0].amount_fen, 1, "0.005 rounds to 0.01");
        let (s2, _) = settle(&p, &claim("2018-04-01", 239_157), IdentitySet::EMPTY, &acc);
        let e = &explain(&p, &s2)[0];
        assert_eq!(e.amount, Fen(119_578));
        assert_eq!(e.year_formula.as_deref(), Some("年度累计应付 1,195.79 − 此前累计 0.01；本次单独计算为 1,195.79，差额为年度累计取整"));
        assert!(
            e.text.ends_with("支付 1,195.78（= 年度累计应付 1,195.79 − 此前累计 0.01；本次单独计算为 1,195.79，差额为年度累计取整）"),
            "{}",
            e.text
        );
        // The first claim's line needs no note: its own rounding is the year's.
        let e1 = &explain(&p, &s1)[0];
        assert_eq!(e1.year_formula.as_deref(), Some("年度累计应付 0.01 − 此前累计 0.00"));
    }
}

#[cfg(test)]
mod provenance_tests {
    use super::*;
    use crate::engine::{settle, Accumulators};
    use crate::reference::reference_source;
    use crate::{parse_policy, Bill, Claim, Date, HospLevel, Identity, IdentitySet, MedType};

    const HUINING: &str = "会宁县健康扶贫先锋行动实施意见（2018）";

    fn claim(date: &str, med_type: MedType, level: u8, compliant_fen: i64) -> Claim {
        Claim {
            site: Default::default(),
            setl_date: Date::parse(date).unwrap(),
            med_type,
            hosp_lv: HospLevel::new(level).unwrap(),
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill: Bill::new(Fen(compliant_fen), Fen(0), Fen(0), Fen(0), Fen(compliant_fen)).unwrap(),
        }
    }

    fn layer<'a>(ex: &'a [LayerExplanation], id: &str) -> &'a LayerExplanation {
        ex.iter().find(|e| e.layer_id == id).unwrap()
    }

    fn places(p: &Policy, e: &LayerExplanation) -> Vec<String> {
        e.provenance.iter().map(|&i| p.provenance[i].place.clone()).collect()
    }

    /// A poor inpatient of Huining at a level-2 hospital: the basic layer used the S deductible (0) and bonus
    /// and the I level-2 ratio; the critical layer the S deductible for the poor (2,000) and the I segments;
    /// the assistance its S 3,000. Each line says so, at its end.
    #[test]
    fn each_layer_names_the_sources_of_the_values_it_used_and_flags_illustrative_ones() {
        let p = parse_policy(reference_source("gansu-huining-2018").unwrap()).unwrap();
        let poor = IdentitySet::EMPTY.with(Identity::RegisteredPoor);
        let (s, _) = settle(&p, &claim("2018-05-01", MedType::Inpatient, 2, 4_000_000), poor, &Accumulators::default());
        let ex = explain(&p, &s);

        let basic = layer(&ex, "basic");
        assert_eq!(
            places(&p, basic),
            [
                "基本医保·住院·报销比例（2级）",
                "基本医保·住院·起付线（建档立卡贫困人口、已脱贫人口）",
                "基本医保·住院·建档立卡贫困人口、已脱贫人口报销比例提高"
            ]
        );
        assert!(basic.illustrative);
        assert_eq!(basic.basis, [HUINING]);
        assert!(basic.text.ends_with(&format!("（含示意值）；依据：{HUINING}")), "{}", basic.text);
        let rule = basic.text.strip_suffix(&provenance_marker(true, &basic.basis)).unwrap();
        assert!(rule.ends_with(&format!("支付 {}", basic.amount.grouped())), "{rule}");

        let critical = layer(&ex, "critical");
        let cp = places(&p, critical);
        assert!(cp.contains(&"大病保险·分段递增·起付线（建档立卡贫困人口、已脱贫人口、低保、特困供养）".to_string()), "{cp:?}");
        assert!(!cp.contains(&"大病保险·分段递增·起付线".to_string()), "the ordinary deductible was not used: {cp:?}");
        assert!(cp.contains(&"大病保险·分段递增·分段1比例".to_string()) && critical.illustrative, "{cp:?}");
        assert!(!cp.iter().any(|c| c.contains("年度封顶")), "no cap limited the payment: {cp:?}");

        let assistance = layer(&ex, "assistance");
        assert!(!assistance.illustrative);
        assert_eq!(assistance.basis, [HUINING]);
        assert!(assistance.text.ends_with(&format!("；依据：{HUINING}")) && !assistance.text.contains("示意值"), "{}", assistance.text);

        // A layer that did not apply says nothing of sources.
        let (s, _) = settle(&p, &claim("2018-05-01", MedType::Inpatient, 2, 100_000), IdentitySet::EMPTY, &Accumulators::default());
        let ex = explain(&p, &s);
        let topup = layer(&ex, "insurer_topup");
        assert!(!topup.applied && topup.provenance.is_empty() && topup.text.ends_with("不适用"), "{}", topup.text);
        // An ordinary resident's basic layer: the level-2 deductible and ratio, both illustrative, no basis.
        let basic = layer(&ex, "basic");
        assert_eq!(places(&p, basic), ["基本医保·住院·起付线（2级）", "基本医保·住院·报销比例（2级）"]);
        assert!(basic.illustrative && basic.basis.is_empty() && basic.text.ends_with("（含示意值）"), "{}", basic.text);
    }

    /// Only the applied branch counts: Yunnan's poor outpatients get the published 80 % (P), not the
    /// illustrative 50 % and cap of the other outpatient branch.
    #[test]
    fn only_the_values_of_the_applied_branch_count() {
        let p = parse_policy(reference_source("yunnan-2020").unwrap()).unwrap();
        let poor = IdentitySet::EMPTY.with(Identity::RegisteredPoor);
        let (s, _) = settle(&p, &claim("2020-05-01", MedType::OutpatientChronic, 1, 100_000), poor, &Accumulators::default());
        let basic = &explain(&p, &s)[0];
        assert_eq!(basic.branch.as_deref(), Some("门诊慢特病（贫困人口）"));
        assert_eq!(places(&p, basic), ["基本医保·门诊慢特病（贫困人口）·报销比例"]);
        assert!(!basic.illustrative);
        assert_eq!(basic.basis, ["云南省健康扶贫 30 条措施（贫困人口门诊慢特病 80%、住院实际报销比例 90%）"]);
        let (s, _) = settle(&p, &claim("2020-05-01", MedType::OutpatientChronic, 1, 100_000), IdentitySet::EMPTY, &Accumulators::default());
        let basic = &explain(&p, &s)[0];
        assert!(basic.illustrative && basic.basis.is_empty(), "{:?}", places(&p, basic));
    }

    /// A cap counts when it limited the payment.
    #[test]
    fn a_cap_counts_when_it_limited_the_payment() {
        let p = parse_policy(reference_source("gansu-huining-2018").unwrap()).unwrap();
        let (s, _) =
            settle(&p, &claim("2018-05-01", MedType::OutpatientChronic, 1, 1_000_000), IdentitySet::EMPTY, &Accumulators::default());
        let basic = &explain(&p, &s)[0];
        assert_eq!(basic.cap, Some("门诊年度封顶"));
        assert!(places(&p, basic).contains(&"基本医保·门诊慢特病·门诊年度封顶".to_string()), "{:?}", places(&p, basic));
    }
}
