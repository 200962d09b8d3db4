//! The settlement engine (POLICY §2.3, docs/SETTLEMENT.md): a pure function
//! `(claim, identities on the service date, accumulators before, policy) → (settlement, accumulators after)`.
//!
//! Everything is integer fen; every layer's payment is rounded half away from zero before the next
//! layer runs; the patient's part is the remainder, so the parts add up exactly. The hot path does not
//! allocate: settlements and accumulators are fixed-size arrays of `MAX_LAYERS`.

use crate::claim::{Claim, MedType};
use crate::identity::IdentitySet;
use crate::money::{div_round_half_away, Fen, Ratio, BP_ONE};
use crate::policy::{
    Base, Branch, Caps, Combine, DeductibleRule, Fund, LayerKind, Policy, Reference, Select, ALL_FUNDS, MAX_LAYERS, MAX_TIERS,
};

/// What one layer has accumulated for a person in an insurance year.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LayerAcc {
    /// Annual `ratio` layer: cumulative base. Annual `oop_cap`: cumulative cost of the claims it applied to.
    pub base_fen: i64,
    /// Everything the layer paid this year (after claw-backs); caps count against it.
    pub paid_fen: i64,
    /// The part of `paid_fen` paid on outpatient (14) claims; outpatient caps count against it.
    pub outpatient_paid_fen: i64,
    /// Annual `oop_cap`: the person's own amount left after this layer, summed over the year.
    pub personal_fen: i64,
}

/// A person's accumulators for one insurance year under one policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Accumulators {
    pub layers: [LayerAcc; MAX_LAYERS],
    /// Inpatient claims settled so far this year, by tier (hospital level − 1 unless the policy defines
    /// tiers): repeat-stay deductibles.
    pub inpatient_stays: [u16; MAX_TIERS],
}

impl Accumulators {
    pub fn stays_total(&self) -> u32 {
        self.inpatient_stays.iter().map(|&n| u32::from(n)).sum()
    }
}

/// Which limit cut a layer's payment, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CapHit {
    #[default]
    None,
    PerClaim,
    Outpatient,
    BranchAnnual,
    Annual,
    /// Cut to what was still unpaid.
    Remainder,
    /// An annual limit shared with other layers (`shared_caps`).
    Shared,
}

/// How one layer treated one claim — enough to explain the amount and to reverse it exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerOutcome {
    /// The layer's conditions held (and for `ratio`, a branch matched).
    pub applied: bool,
    pub branch: u8,
    pub cap: CapHit,
    /// First and last segment (0-based) that this claim's base fell into; `seg_last < seg_first` when none.
    pub seg_first: u8,
    pub seg_last: u8,
    /// Ratio of the last segment reached, identity bonus included.
    pub ratio: Ratio,
    pub bonus: Ratio,
    /// The layer's ratio adjustment that applied: its index + 1 (0: none); its points were taken off
    /// `ratio` and its factor is `factor`.
    pub adjust: u8,
    /// "按 X% 结算": the payment is the schedule's times this (`Ratio::ONE` when no adjustment).
    pub factor: Ratio,
    /// The base of this claim for this layer.
    pub base_fen: i64,
    /// Annual layers: cumulative base (ratio) or personal amount (oop_cap) before this claim.
    pub cum_before_fen: i64,
    /// Deductible in force (after identity waivers and repeat-stay reductions).
    pub deductible_fen: i64,
    /// The part of the deductible this claim consumed.
    pub deductible_applied_fen: i64,
    /// floor_topup: target; oop_cap: the personal cap; ceiling: the limit on fund payments.
    pub threshold_fen: i64,
    /// Payment before caps.
    pub computed_fen: i64,
    /// Final payment (after caps and claw-back).
    pub amount_fen: i64,
    /// Taken back from this layer by a ceiling (for the ceiling layer itself: the total taken back).
    pub clawed_back_fen: i64,
    /// What this claim added to `LayerAcc::base_fen` / `personal_fen` (paid is `amount_fen`).
    pub acc_base_delta_fen: i64,
    pub acc_personal_delta_fen: i64,
}

/// The result of settling one claim. `Copy`, no heap: one per claim in million-claim runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub policy_version: u64,
    pub year: u16,
    pub med_type: MedType,
    /// The claim's tier ([`Policy::tier_of`]): 0-based hospital level unless the policy defines tiers.
    pub level_index: u8,
    pub medfee_sumamt: Fen,
    pub inscp_scp_amt: Fen,
    pub out_of_scope_amt: Fen,
    pub n_layers: u8,
    pub layers: [LayerOutcome; MAX_LAYERS],
    /// By `Fund::index()`.
    pub funds_fen: [i64; 6],
    pub act_pay_dedc: Fen,
    /// Every fund except the hospital's share.
    pub fund_pay_sumamt: Fen,
    pub hosp_part_amt: Fen,
    /// What the patient pays: the remainder.
    pub psn_part_amt: Fen,
}

/// Overwrites `out` as `Settlement::empty` would, touching only the policy's layers (a policy has
/// 5–6 of the 12 slots; the rest stay default and are never read through `layers()`).
#[inline]
fn reset_for(out: &mut Settlement, policy: &Policy, claim: &Claim) {
    let n = policy.layers.len();
    let old_n = usize::from(out.n_layers);
    out.policy_version = policy.version_id;
    out.year = claim.year();
    out.med_type = claim.med_type;
    out.level_index = policy.tier_of(claim) as u8;
    out.medfee_sumamt = claim.bill.total();
    out.inscp_scp_amt = claim.bill.compliant();
    out.out_of_scope_amt = claim.bill.out_of_scope();
    out.n_layers = n as u8;
    for l in &mut out.layers[..n.max(old_n)] {
        *l = LayerOutcome::default();
    }
    out.funds_fen = [0; 6];
    out.act_pay_dedc = Fen::ZERO;
    out.fund_pay_sumamt = Fen::ZERO;
    out.hosp_part_amt = Fen::ZERO;
    out.psn_part_amt = Fen::ZERO;
}

impl Settlement {
    fn empty(policy: &Policy, claim: &Claim) -> Settlement {
        Settlement {
            policy_version: policy.version_id,
            year: claim.year(),
            med_type: claim.med_type,
            level_index: claim.hosp_lv.index() as u8,
            medfee_sumamt: claim.bill.total(),
            inscp_scp_amt: claim.bill.compliant(),
            out_of_scope_amt: claim.bill.out_of_scope(),
            n_layers: policy.layers.len() as u8,
            layers: [LayerOutcome::default(); MAX_LAYERS],
            funds_fen: [0; 6],
            act_pay_dedc: Fen::ZERO,
            fund_pay_sumamt: Fen::ZERO,
            hosp_part_amt: Fen::ZERO,
            psn_part_amt: Fen::ZERO,
        }
    }

    pub fn fund(&self, f: Fund) -> Fen {
        Fen(self.funds_fen[f.index()])
    }
    /// National `hifp_pay`.
    pub fn hifp_pay(&self) -> Fen {
        self.fund(Fund::Basic)
    }
    /// National `hifmi_pay`.
    pub fn hifmi_pay(&self) -> Fen {
        self.fund(Fund::CriticalIllness)
    }
    /// National `maf_pay`.
    pub fn maf_pay(&self) -> Fen {
        self.fund(Fund::Assistance)
    }
    /// National `oth_pay`: supplemental insurance and government fallback.
    pub fn oth_pay(&self) -> Fen {
        self.fund(Fund::Supplemental) + self.fund(Fund::Fallback)
    }
    pub fn layers(&self) -> &[LayerOutcome] {
        &self.layers[..usize::from(self.n_layers)]
    }

    /// The reversal record (冲销) of this settlement: every amount negated. Accumulator deltas too, so
    /// applying the reversal's deltas to the accumulators undoes the original exactly.
    pub fn reversal(&self) -> Settlement {
        let mut r = *self;
        for l in r.layers.iter_mut() {
            l.amount_fen = -l.amount_fen;
            l.computed_fen = -l.computed_fen;
            l.clawed_back_fen = -l.clawed_back_fen;
            l.deductible_applied_fen = -l.deductible_applied_fen;
            l.acc_base_delta_fen = -l.acc_base_delta_fen;
            l.acc_personal_delta_fen = -l.acc_personal_delta_fen;
        }
        for f in r.funds_fen.iter_mut() {
            *f = -*f;
        }
        r.medfee_sumamt = -r.medfee_sumamt;
        r.inscp_scp_amt = -r.inscp_scp_amt;
        r.out_of_scope_amt = -r.out_of_scope_amt;
        r.act_pay_dedc = -r.act_pay_dedc;
        r.fund_pay_sumamt = -r.fund_pay_sumamt;
        r.hosp_part_amt = -r.hosp_part_amt;
        r.psn_part_amt = -r.psn_part_amt;
        r
    }
}

/// V(b0) and V(b1) of a schedule, exact in fen·bp, in one pass, and the segments (first, last) whose
/// part changes between b0 ≤ b1 (last < first when none).
#[inline]
fn schedule_values(
    segments: &[crate::policy::Segment],
    deductible: i64,
    bonus_bp: i64,
    minus_bp: i64,
    b0: i64,
    b1: i64,
) -> (i64, i64, u8, u8) {
    debug_assert!(b0 <= b1);
    let mut lo = deductible;
    let (mut v0, mut v1) = (0i64, 0i64);
    let (mut first, mut last) = (1u8, 0u8);
    for (i, seg) in segments.iter().enumerate() {
        if b1 <= lo {
            break;
        }
        let hi = seg.to.map_or(i64::MAX, |t| t.0);
        if hi > lo {
            let r = ((i64::from(seg.ratio.0) + bonus_bp).min(BP_ONE) - minus_bp).max(0);
            let p1 = b1.min(hi) - lo;
            let p0 = (b0.min(hi) - lo).max(0);
            v1 += p1 * r;
            v0 += p0 * r;
            if p1 != p0 {
                if first > last {
                    first = i as u8;
                }
                last = i as u8;
            }
            lo = hi;
        }
    }
    (v0, v1, first, last)
}

fn top_ratio(segments: &[crate::policy::Segment], idx: u8, bonus: Ratio) -> Ratio {
    segments.get(usize::from(idx)).map_or(Ratio::ZERO, |s| s.ratio.plus_capped(bonus))
}

/// `v` in fen·bp times `factor` (bp), rounded half away from zero to fen.
#[inline]
fn factored(v: i64, factor: Ratio) -> i64 {
    if factor == Ratio::ONE {
        return div_round_half_away(v, BP_ONE);
    }
    let p = i128::from(v) * i128::from(factor.0);
    let d = i128::from(BP_ONE) * i128::from(BP_ONE);
    let q = (p.abs() + d / 2) / d;
    (if p < 0 { -q } else { q }) as i64
}

#[inline]
fn apply_caps(mut pay: i64, caps: &Caps, acc: &crate::engine::LayerAcc, outpatient: bool, annual_hit: CapHit, hit: &mut CapHit) -> i64 {
    if let Some(c) = caps.per_claim {
        if pay > c.0 {
            pay = c.0;
            *hit = CapHit::PerClaim;
        }
    }
    if outpatient {
        if let Some(c) = caps.outpatient {
            let room = (c.0 - acc.outpatient_paid_fen).max(0);
            if pay > room {
                pay = room;
                *hit = CapHit::Outpatient;
            }
        }
    }
    if let Some(c) = caps.annual {
        let room = (c.0 - acc.paid_fen).max(0);
        if pay > room {
            pay = room;
            *hit = annual_hit;
        }
    }
    pay
}

fn select_branch<'a>(branches: &'a [Branch], select: Select, claim: &Claim, lv: usize, ids: IdentitySet) -> Option<(usize, &'a Branch)> {
    match select {
        Select::First => branches.iter().enumerate().find(|(_, b)| b.when.matches(claim, lv, ids)),
        Select::MostFavourable => {
            let mut best: Option<(usize, &Branch, Ratio)> = None;
            for (i, b) in branches.iter().enumerate() {
                if !b.when.matches(claim, lv, ids) {
                    continue;
                }
                let r = top_ratio(&b.levels[lv].segments, 0, bonus_for(b, ids));
                if best.is_none_or(|(_, _, br)| r > br) {
                    best = Some((i, b, r));
                }
            }
            best.map(|(i, b, _)| (i, b))
        }
    }
}

#[inline]
fn bonus_for(b: &Branch, ids: IdentitySet) -> Ratio {
    b.bonus.iter().filter(|(set, _)| set.intersects(ids)).map(|&(_, r)| r).max().unwrap_or(Ratio::ZERO)
}

/// The most a person-year's accumulators may reach, in fen (10¹⁰ yuan). A bill field is at most 10⁸ yuan,
/// and with accumulators below this bound every product of fen and basis points stays below 10¹⁶, far
/// inside `i64`: [`within_bounds`] is what callers check before settling, so no sum or product can
/// overflow (and no invariant assertion can be reached by accumulating absurd totals).
pub const MAX_ANNUAL_FEN: i64 = 1_000_000_000_000;

/// Whether settling `claim` keeps every accumulator of the person-year within [`MAX_ANNUAL_FEN`].
pub fn within_bounds(claim: &Claim, acc: &Accumulators) -> bool {
    let t = claim.bill.total().0;
    t >= 0
        && acc.layers.iter().all(|l| {
            [l.base_fen, l.paid_fen, l.outpatient_paid_fen, l.personal_fen]
                .iter()
                .all(|v| v.checked_add(t).is_some_and(|s| s <= MAX_ANNUAL_FEN))
        })
}

/// Settles one claim: the pure function of the design. Returns the settlement and the accumulators after.
pub fn settle(policy: &Policy, claim: &Claim, ids: IdentitySet, before: &Accumulators) -> (Settlement, Accumulators) {
    let mut acc = *before;
    let mut s = Settlement::empty(policy, claim);
    settle_in_place(policy, claim, ids, &mut acc, &mut s);
    (s, acc)
}

/// [`settle`] writing into caller-owned storage (what batch runs use to avoid copies).
/// `acc` goes from "before" to "after"; `out` is overwritten entirely.
pub fn settle_in_place(policy: &Policy, claim: &Claim, ids: IdentitySet, acc: &mut Accumulators, out: &mut Settlement) {
    reset_for(out, policy, claim);
    let t = claim.bill.total().0;
    let c = claim.bill.compliant().0;
    let o = claim.bill.out_of_scope().0;
    let outpatient = claim.med_type == MedType::OutpatientChronic;
    let inpatient = claim.med_type == MedType::Inpatient;
    let lv = policy.tier_of(claim);
    let mut paid_funds: i64 = 0;
    let mut paid_all: i64 = 0;
    let mut act_pay_dedc: Option<i64> = None;

    for (i, layer) in policy.layers.iter().enumerate() {
        if !layer.when.matches(claim, lv, ids) {
            continue;
        }
        let mut uncapped = false;
        let total_rem = t - paid_all;
        let comp_rem = (c - paid_funds).max(0).min(total_rem);
        let base_of = |b: Base| -> i64 {
            match b {
                Base::Compliant => c,
                Base::CompliantRemainder => comp_rem,
                Base::TotalRemainder => total_rem,
                Base::OutOfScope => o,
                Base::Total => t,
            }
            .min(total_rem)
            .max(0)
        };
        let reference_of = |r: Reference| -> i64 {
            match r {
                Reference::Compliant => c,
                Reference::Total => t,
            }
        };
        let la = acc.layers[i];
        let mut oc = LayerOutcome { applied: true, seg_first: 1, factor: Ratio::ONE, ..LayerOutcome::default() };
        let mut pay: i64;
        match &layer.kind {
            LayerKind::Ratio { base, annual, select, branches } => {
                let Some((bi, br)) = select_branch(branches, *select, claim, lv, ids) else {
                    continue;
                };
                oc.branch = bi as u8;
                let sched = &br.levels[lv];
                // An identity's rule (share of income, factor) replaces the schedule's deductible (the
                // smallest matching rule); an identity's amount only lowers it (R-POL-27).
                let mut d = sched.deductible.0;
                let mut by_rule: Option<i64> = None;
                for &(set, rule) in &br.deductible_rules {
                    if set.intersects(ids) {
                        let x = match rule {
                            DeductibleRule::ShareOfIncome(r) => policy.income_for(claim.year()).map(|inc| r.apply(inc).0),
                            DeductibleRule::Factor(r) => Some(r.apply(sched.deductible).0),
                        };
                        if let Some(x) = x {
                            by_rule = Some(by_rule.map_or(x, |b| b.min(x)));
                        }
                    }
                }
                if let Some(x) = by_rule {
                    d = x;
                }
                for &(set, amt) in &br.deductible_for {
                    if set.intersects(ids) {
                        d = d.min(amt.0);
                    }
                }
                if let (Some(r), true) = (&br.repeat, inpatient) {
                    let earlier = if r.same_tier { u32::from(acc.inpatient_stays[lv]) } else { acc.stays_total() };
                    d = r.apply(d, earlier);
                    if r.waive_same_level.intersects(ids) && acc.inpatient_stays[lv] > 0 {
                        d = 0;
                    }
                }
                let bonus = bonus_for(br, ids);
                let (mut minus, mut factor) = (Ratio::ZERO, Ratio::ONE);
                for (ai, a) in layer.adjust.iter().enumerate() {
                    if a.when.matches(claim, lv, ids) {
                        (minus, factor) = (a.minus_points, a.factor);
                        oc.adjust = ai as u8 + 1;
                        break;
                    }
                }
                oc.factor = factor;
                let base_amt = base_of(*base);
                let b0 = if *annual { la.base_fen } else { 0 };
                let b1 = b0 + base_amt;
                let (v0, v1, f, l) = schedule_values(&sched.segments, d, i64::from(bonus.0), i64::from(minus.0), b0, b1);
                pay = factored(v1, factor) - factored(v0, factor);
                oc.seg_first = f;
                oc.seg_last = l;
                let top = if f <= l { top_ratio(&sched.segments, l, bonus) } else { top_ratio(&sched.segments, 0, bonus) };
                oc.ratio = Ratio(top.0.saturating_sub(minus.0));
                oc.bonus = bonus;
                oc.base_fen = base_amt;
                oc.cum_before_fen = b0;
                oc.deductible_fen = d;
                oc.deductible_applied_fen = b1.min(d) - b0.min(d);
                oc.computed_fen = pay;
                if *annual {
                    oc.acc_base_delta_fen = base_amt;
                }
                uncapped = br.uncapped.intersects(ids);
                if !uncapped {
                    pay = apply_caps(pay, &br.caps, &la, outpatient, CapHit::BranchAnnual, &mut oc.cap);
                    pay = apply_caps(pay, &layer.caps, &la, outpatient, CapHit::Annual, &mut oc.cap);
                }
                if layer.fund == Some(Fund::Basic) && act_pay_dedc.is_none() {
                    act_pay_dedc = Some(oc.deductible_applied_fen);
                }
            }
            LayerKind::FloorTopup { ratio, reference, counted, limit } => {
                let target = ratio.apply(Fen(reference_of(*reference))).0;
                let already: i64 = counted.iter().map(|&j| out.layers[j].amount_fen).sum();
                let lim = base_of(*limit);
                oc.threshold_fen = target;
                oc.base_fen = lim;
                oc.ratio = *ratio;
                pay = (target - already).max(0);
                oc.computed_fen = pay;
                if pay > lim {
                    pay = lim;
                    oc.cap = CapHit::Remainder;
                }
                pay = apply_caps(pay, &layer.caps, &la, outpatient, CapHit::Annual, &mut oc.cap);
            }
            LayerKind::OopCap { base, annual, amount, ratio, ratio_of, combine } => {
                let rem = base_of(*base);
                let cost = reference_of(*ratio_of);
                let cost_cum = if *annual { la.base_fen + cost } else { cost };
                let by_ratio = ratio.map(|r| r.apply(Fen(cost_cum)).0);
                let cap = match (amount.map(|a| a.0), by_ratio) {
                    (Some(a), Some(r)) => match combine {
                        Combine::Either => a.max(r),
                        Combine::Both => a.min(r),
                    },
                    (Some(a), None) => a,
                    (None, Some(r)) => r,
                    (None, None) => i64::MAX,
                };
                let p0 = if *annual { la.personal_fen } else { 0 };
                oc.threshold_fen = cap;
                oc.base_fen = rem;
                oc.cum_before_fen = p0;
                oc.ratio = ratio.unwrap_or(Ratio::ZERO);
                pay = (p0 + rem - cap).clamp(0, rem);
                oc.computed_fen = pay;
                pay = apply_caps(pay, &layer.caps, &la, outpatient, CapHit::Annual, &mut oc.cap);
                if *annual {
                    oc.acc_base_delta_fen = cost;
                    oc.acc_personal_delta_fen = rem - pay;
                }
            }
            LayerKind::Ceiling { ratio, reference, clawback } => {
                let limit = ratio.apply(Fen(reference_of(*reference))).0;
                oc.threshold_fen = limit;
                oc.ratio = *ratio;
                oc.base_fen = reference_of(*reference);
                let mut excess = (paid_funds - limit).max(0);
                let mut taken_total = 0;
                for &j in clawback {
                    if excess == 0 {
                        break;
                    }
                    let take = excess.min(out.layers[j].amount_fen);
                    if take > 0 {
                        out.layers[j].amount_fen -= take;
                        out.layers[j].clawed_back_fen += take;
                        acc.layers[j].paid_fen -= take;
                        if outpatient {
                            acc.layers[j].outpatient_paid_fen -= take;
                        }
                        excess -= take;
                        taken_total += take;
                    }
                }
                paid_funds -= taken_total;
                paid_all -= taken_total;
                oc.clawed_back_fen = taken_total;
                pay = 0;
            }
            LayerKind::HospitalBears { base } => {
                pay = base_of(*base);
                oc.base_fen = pay;
                oc.computed_fen = pay;
                pay = apply_caps(pay, &layer.caps, &la, outpatient, CapHit::Annual, &mut oc.cap);
            }
        }
        if !uncapped {
            for &ci in &policy.shared_of[i] {
                let sc = &policy.meta.shared_caps[ci];
                let used: i64 = sc.layers.iter().map(|&j| acc.layers[j].paid_fen).sum();
                let room = (sc.annual.0 - used).max(0);
                if pay > room {
                    pay = room;
                    oc.cap = CapHit::Shared;
                }
            }
        }
        if pay > total_rem {
            pay = total_rem;
            oc.cap = CapHit::Remainder;
        }
        // Invariant (TigerBeetle style, on in release): a layer never pays a negative amount or more
        // than what is still unpaid.
        assert!(pay >= 0 && pay <= total_rem, "layer {} paid {pay} of remainder {total_rem}", layer.id);
        oc.amount_fen = pay;
        let a = &mut acc.layers[i];
        a.paid_fen += pay;
        if outpatient {
            a.outpatient_paid_fen += pay;
        }
        a.base_fen += oc.acc_base_delta_fen;
        a.personal_fen += oc.acc_personal_delta_fen;
        paid_all += pay;
        if layer.fund != Some(Fund::Hospital) {
            paid_funds += pay;
        }
        out.layers[i] = oc;
    }

    if inpatient {
        acc.inpatient_stays[lv] += 1;
    }
    let mut funds = [0i64; 6];
    for (i, layer) in policy.layers.iter().enumerate() {
        if let Some(f) = layer.fund {
            funds[f.index()] += out.layers[i].amount_fen;
        }
    }
    let hosp = funds[Fund::Hospital.index()];
    let fund_sum: i64 = ALL_FUNDS.iter().filter(|f| **f != Fund::Hospital).map(|f| funds[f.index()]).sum();
    let psn = t - fund_sum - hosp;
    assert!(psn >= 0, "personal part negative: total {t}, funds {fund_sum}, hospital {hosp}");
    assert_eq!(fund_sum + hosp, paid_all, "fund totals disagree with the running sum");
    out.funds_fen = funds;
    out.fund_pay_sumamt = Fen(fund_sum);
    out.hosp_part_amt = Fen(hosp);
    out.psn_part_amt = Fen(psn);
    out.act_pay_dedc = Fen(act_pay_dedc.unwrap_or(0));
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReverseError {
    #[error("冲销后的累计值为负（层 {layer}），结算与累计值不对应")]
    WouldGoNegative { layer: usize },
    #[error("冲销的结算使用的政策版本 {settled:016x} 与当前政策 {current:016x} 不同")]
    PolicyMismatch { settled: u64, current: u64 },
}

/// Reversal (冲销) of a settlement: the accumulators as they would be without it. Exact for the last
/// claim of a person-year; for an earlier claim, re-settle the person-year afterwards
/// ([`resettle_year`]) so later claims see the right accumulators.
pub fn reverse(policy: &Policy, s: &Settlement, after: &Accumulators) -> Result<Accumulators, ReverseError> {
    if s.policy_version != policy.version_id {
        return Err(ReverseError::PolicyMismatch { settled: s.policy_version, current: policy.version_id });
    }
    let mut acc = *after;
    let outpatient = s.med_type == MedType::OutpatientChronic;
    for (i, l) in s.layers().iter().enumerate() {
        let a = &mut acc.layers[i];
        a.paid_fen -= l.amount_fen;
        if outpatient {
            a.outpatient_paid_fen -= l.amount_fen;
        }
        a.base_fen -= l.acc_base_delta_fen;
        a.personal_fen -= l.acc_personal_delta_fen;
        if a.paid_fen < 0 || a.outpatient_paid_fen < 0 || a.base_fen < 0 || a.personal_fen < 0 {
            return Err(ReverseError::WouldGoNegative { layer: i });
        }
    }
    if s.med_type == MedType::Inpatient {
        let n = &mut acc.inpatient_stays[usize::from(s.level_index)];
        if *n == 0 {
            return Err(ReverseError::WouldGoNegative { layer: usize::MAX });
        }
        *n -= 1;
    }
    Ok(acc)
}

/// One claim's outcome in a re-settlement of a person-year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDiff {
    pub index: usize,
    pub new: Settlement,
    /// new − original, by `Fund::index()` (zero when there was no original).
    pub fund_diff_fen: [i64; 6],
    pub psn_diff_fen: i64,
}

impl ClaimDiff {
    pub fn changed(&self) -> bool {
        self.psn_diff_fen != 0 || self.fund_diff_fen.iter().any(|&d| d != 0)
    }
}

/// Re-settles all claims of one person-year in order from empty accumulators (year-end true-up, or
/// after a late identity change) and reports, per claim and fund, the difference to the originals.
pub fn resettle_year(policy: &Policy, claims: &[(Claim, IdentitySet, Option<Settlement>)]) -> (Vec<ClaimDiff>, Accumulators) {
    let mut acc = Accumulators::default();
    let mut out = Vec::with_capacity(claims.len());
    let mut s = Settlement::empty_for_resettle();
    for (index, (claim, ids, original)) in claims.iter().enumerate() {
        settle_in_place(policy, claim, *ids, &mut acc, &mut s);
        let mut fund_diff_fen = [0i64; 6];
        let mut psn_diff_fen = 0;
        if let Some(o) = original {
            for (k, d) in fund_diff_fen.iter_mut().enumerate() {
                *d = s.funds_fen[k] - o.funds_fen[k];
            }
            psn_diff_fen = s.psn_part_amt.0 - o.psn_part_amt.0;
        }
        out.push(ClaimDiff { index, new: s, fund_diff_fen, psn_diff_fen });
    }
    (out, acc)
}

impl Settlement {
    /// Storage for [`settle_in_place`] to overwrite (batch runs reuse one).
    pub fn blank() -> Settlement {
        Settlement::empty_for_resettle()
    }

    fn empty_for_resettle() -> Settlement {
        Settlement {
            policy_version: 0,
            year: 0,
            med_type: MedType::Inpatient,
            level_index: 0,
            medfee_sumamt: Fen::ZERO,
            inscp_scp_amt: Fen::ZERO,
            out_of_scope_amt: Fen::ZERO,
            n_layers: 0,
            layers: [LayerOutcome::default(); MAX_LAYERS],
            funds_fen: [0; 6],
            act_pay_dedc: Fen::ZERO,
            fund_pay_sumamt: Fen::ZERO,
            hosp_part_amt: Fen::ZERO,
            psn_part_amt: Fen::ZERO,
        }
    }
}
