//! Settlements explain themselves (POLICY §2.3): per layer, the base, deductible, segments, ratio, cap
//! and amount, as data and as one line of Chinese for slips and pages.

use crate::engine::{CapHit, LayerOutcome, Settlement};
use crate::money::Fen;
use crate::policy::{LayerKind, Policy};

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
    }
}

pub fn explain(policy: &Policy, s: &Settlement) -> Vec<LayerExplanation> {
    policy.layers.iter().zip(s.layers().iter()).map(|(layer, o)| explain_layer(policy, layer, o, usize::from(s.level_index))).collect()
}

fn explain_layer(policy: &Policy, layer: &crate::policy::Layer, o: &LayerOutcome, lv: usize) -> LayerExplanation {
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
            let mut lo = o.deductible_fen;
            for (i, seg) in sched.segments.iter().enumerate() {
                let hi = seg.to.map_or(i64::MAX, |t| t.0);
                if hi > lo {
                    if (i as u8) >= o.seg_first && (i as u8) <= o.seg_last {
                        let r = seg.ratio.plus_capped(o.bonus);
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
            if e.segments.is_empty() {
                text.push_str(&format!("，比例 {}", o.ratio));
            } else {
                text.push_str(&format!("，{}", e.segments.join("、")));
            }
            if o.bonus.0 > 0 {
                text.push_str(&format!("（含身份提高 {} 个百分点）", o.bonus.to_string().trim_end_matches('%')));
            }
            // Reading 1 (docs/SETTLEMENT.md): an annual layer pays round(V(B₁)) − round(V(B₀)). Say so with
            // both figures, so the line can be checked by hand even where this claim's own segments, rounded
            // alone, would differ by a fen.
            if *annual && e.cap.is_none() && o.clawed_back_fen == 0 {
                let v = |x: i64| round_bp(value_bp(sched, o.deductible_fen, o.bonus, x));
                let (v0, v1) = (v(o.cum_before_fen), v(o.cum_before_fen + o.base_fen));
                if v1 - v0 == o.amount_fen && o.amount_fen > 0 {
                    let alone = round_bp(value_bp(sched, o.deductible_fen, o.bonus, o.cum_before_fen + o.base_fen) - value_bp(sched, o.deductible_fen, o.bonus, o.cum_before_fen));
                    let note = if alone != o.amount_fen { format!("；本次单独计算为 {}，差额为年度累计取整", Fen(alone).grouped()) } else { String::new() };
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
                "{scope}{} {} 超过封顶 {} 的部分",
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
        assert!(e.text.ends_with("支付 1,195.78（= 年度累计应付 1,195.79 − 此前累计 0.01；本次单独计算为 1,195.79，差额为年度累计取整）"), "{}", e.text);
        // The first claim's line needs no note: its own rounding is the year's.
        let e1 = &explain(&p, &s1)[0];
        assert_eq!(e1.year_formula.as_deref(), Some("年度累计应付 0.01 − 此前累计 0.00"));
    }
}
