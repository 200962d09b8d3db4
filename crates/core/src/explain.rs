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
    let _ = policy;
    e.text = text;
    e
}
