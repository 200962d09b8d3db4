//! Properties of the engine over random claims and all four reference policies (proptest prints the
//! failing case and its seed). See docs/SETTLEMENT.md for the rules these check.

use baozhang_core::claim::{Bill, Claim, Filing, HospGrade, HospLevel, MedType, Place, Site};
use baozhang_core::engine::{resettle_year, reverse, settle, Accumulators, Settlement};
use baozhang_core::policy::{Fund, LayerKind, Policy, ALL_FUNDS};
use baozhang_core::reference::REFERENCE_POLICIES;
use baozhang_core::{parse_policy, Date, Fen, IdentitySet};
use proptest::prelude::*;

fn policies() -> Vec<Policy> {
    REFERENCE_POLICIES.iter().map(|(_, src)| parse_policy(src).expect("reference policy")).collect()
}

#[derive(Debug, Clone)]
struct Case {
    person: usize,
    ids: IdentitySet,
    claim: Claim,
}

fn claim_strategy() -> impl Strategy<Value = Case> {
    (
        0usize..3,
        0u16..256,
        prop::bool::weighted(0.8),
        1u8..=3,
        any::<(bool, bool, bool)>(),
        // totals from 0 to 600,000 yuan, biased to small ones
        prop_oneof![0i64..100_000, 0i64..5_000_000, 0i64..60_000_000],
        (0u32..=100, 0u32..=100, 0u32..=100),
        (0u16..2, 1u8..=12, 1u8..=28),
        (0u8..3, 0u8..12, any::<bool>(), 0u8..4, 0u8..5),
    )
        .prop_map(
            |(
                person,
                bits,
                inpatient,
                lv,
                (in_county, referral_ok, major),
                total,
                (pct_out, a, b),
                (yoff, m, d),
                (kind, grade, primary, place, filing),
            )| {
                let out = total * i64::from(pct_out) / 400; // up to 25 % out of scope
                let ful = out * i64::from(a) / 100;
                let over = (out - ful) * i64::from(b) / 100;
                let pre = out - ful - over;
                let bill = Bill::new(Fen(total), Fen(ful), Fen(over), Fen(pre), Fen(total - out)).expect("adds up");
                Case {
                    person,
                    ids: IdentitySet::from_bits(bits.wrapping_mul(7) & 0x3ff),
                    claim: Claim {
                        // A grade of the claim's level (or none), a place that agrees with the county flag, and a
                        // filing only outside the county — what `claim::check_site` accepts.
                        site: Site {
                            grade: HospGrade::new(grade).filter(|g| g.level().is_none_or(|l| l.get() == lv)).unwrap_or_default(),
                            primary_care: primary && lv == 1,
                            place: if in_county {
                                [Place::Unspecified, Place::County][usize::from(place % 2)]
                            } else {
                                [Place::Unspecified, Place::Prefecture, Place::Province, Place::OutOfProvince][usize::from(place)]
                            },
                            filing: if in_county {
                                Filing::None
                            } else {
                                [Filing::None, Filing::Resident, Filing::Referral, Filing::Emergency, Filing::Unfiled][usize::from(filing)]
                            },
                        },
                        setl_date: Date::new(2020 + yoff, m, d).expect("date"),
                        med_type: match (inpatient, kind) {
                            (true, _) => MedType::Inpatient,
                            (false, 0) => MedType::GeneralOutpatient,
                            _ => MedType::OutpatientChronic,
                        },
                        hosp_lv: HospLevel::new(lv).expect("level"),
                        in_county,
                        referral_ok,
                        major_disease: major,
                        bill,
                    },
                }
            },
        )
}

/// The cases as claims of the policy's own years (the strategy draws 2020–2021; a 2024 policy gets
/// 2024–2025) and of the med types it settles (the others become outpatient chronic).
fn for_policy(policy: &Policy, cases: &[Case]) -> Vec<Case> {
    let base = policy.meta.effective_from.year();
    cases
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let d = c.claim.setl_date;
            c.claim.setl_date = Date::new(base + (d.year() - 2020), d.month(), d.day()).expect("date");
            if policy.accepts(&c.claim).is_err() {
                c.claim.med_type = MedType::OutpatientChronic;
            }
            assert!(policy.accepts(&c.claim).is_ok(), "{}: {:?}", policy.meta.id, policy.accepts(&c.claim));
            c
        })
        .collect()
}

/// Settles the cases in order with per-(person, year) accumulators; returns (before, settlement, after).
fn run(policy: &Policy, cases: &[Case]) -> Vec<(Accumulators, Settlement, Accumulators)> {
    let mut accs: std::collections::HashMap<(usize, u16), Accumulators> = Default::default();
    cases
        .iter()
        .map(|c| {
            let acc = accs.entry((c.person, c.claim.year())).or_default();
            let before = *acc;
            let (s, after) = settle(policy, &c.claim, c.ids, &before);
            *acc = after;
            (before, s, after)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_parts_of_every_settlement_add_up_exactly(cases in prop::collection::vec(claim_strategy(), 1..25)) {
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            for (_, s, _) in run(&policy, &cases) {
                let funds: i64 = ALL_FUNDS.iter().filter(|f| **f != Fund::Hospital).map(|f| s.funds_fen[f.index()]).sum();
                prop_assert_eq!(funds, s.fund_pay_sumamt.0);
                prop_assert_eq!(s.hosp_part_amt.0, s.funds_fen[Fund::Hospital.index()]);
                prop_assert_eq!(s.fund_pay_sumamt + s.hosp_part_amt + s.psn_part_amt, s.medfee_sumamt);
                prop_assert!(s.psn_part_amt.0 >= 0);
                let by_layer: i64 = s.layers().iter().map(|l| l.amount_fen).sum();
                prop_assert_eq!(by_layer, funds + s.hosp_part_amt.0);
                prop_assert_eq!(s.hifp_pay() + s.hifmi_pay() + s.maf_pay() + s.oth_pay(), s.fund_pay_sumamt);
            }
        }
    }

    #[test]
    fn no_layer_pays_a_negative_amount_or_more_than_is_unpaid(cases in prop::collection::vec(claim_strategy(), 1..25)) {
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            for (_, s, _) in run(&policy, &cases) {
                let mut paid = 0i64;
                for (i, l) in s.layers().iter().enumerate() {
                    prop_assert!(l.amount_fen >= 0, "layer {} paid {}", policy.layers[i].id, l.amount_fen);
                    prop_assert!(l.clawed_back_fen >= 0);
                    paid += l.amount_fen;
                    prop_assert!(paid <= s.medfee_sumamt.0, "layers up to {} paid {} of {}", policy.layers[i].id, paid, s.medfee_sumamt.0);
                    if !l.applied {
                        prop_assert_eq!(l.amount_fen, 0);
                    }
                }
                // Funds never pay more than the compliant amount unless a layer's base reaches beyond it.
                let beyond = policy.layers.iter().any(|l| matches!(l.kind, LayerKind::OopCap { base: baozhang_core::policy::Base::TotalRemainder, .. }));
                if !beyond {
                    prop_assert!(s.fund_pay_sumamt <= s.inscp_scp_amt);
                }
            }
        }
    }

    #[test]
    fn annual_caps_are_never_exceeded(cases in prop::collection::vec(claim_strategy(), 1..40)) {
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            for ((_, s, after), c) in run(&policy, &cases).into_iter().zip(&cases) {
                // A branch that leaves an identity uncapped (取消封顶线) frees that layer — and the shared caps it
                // is part of — for the person; accumulators are per person, so a layer is exempt for a
                // person who ever held such an identity. Every other layer's caps still hold for them.
                let exempt: Vec<bool> = policy
                    .layers
                    .iter()
                    .map(|l| match &l.kind {
                        LayerKind::Ratio { branches, .. } => {
                            cases.iter().any(|x| x.person == c.person && branches.iter().any(|b| b.uncapped.intersects(x.ids)))
                        }
                        _ => false,
                    })
                    .collect();
                for sc in &policy.meta.shared_caps {
                    if sc.layers.iter().any(|&j| exempt[j]) {
                        continue;
                    }
                    let paid: i64 = sc.layers.iter().map(|&j| after.layers[j].paid_fen).sum();
                    prop_assert!(paid <= sc.annual.0, "{}: shared cap {} exceeded: {}", policy.meta.id, sc.name, paid);
                }
                for (i, layer) in policy.layers.iter().enumerate() {
                    let a = after.layers[i];
                    prop_assert!(a.outpatient_paid_fen <= a.paid_fen);
                    if exempt[i] {
                        continue;
                    }
                    if let Some(cap) = layer.caps.annual {
                        prop_assert!(a.paid_fen <= cap.0, "{} paid {} over cap {}", layer.id, a.paid_fen, cap.0);
                    }
                    let o = s.layers()[i];
                    if let (LayerKind::Ratio { branches, .. }, true) = (&layer.kind, o.applied && o.amount_fen > 0) {
                        let b = &branches[usize::from(o.branch)];
                        if let Some(cap) = b.caps.annual {
                            prop_assert!(a.paid_fen <= cap.0, "{}/{} paid {} over cap {}", layer.id, b.name, a.paid_fen, cap.0);
                        }
                        if let (Some(cap), MedType::OutpatientChronic) = (b.caps.outpatient, s.med_type) {
                            prop_assert!(a.outpatient_paid_fen <= cap.0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn re_settling_a_person_year_reproduces_the_original_settlements(cases in prop::collection::vec(claim_strategy(), 1..25)) {
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            let results = run(&policy, &cases);
            // group by (person, year) in settlement order
            let mut groups: std::collections::BTreeMap<(usize, u16), Vec<usize>> = Default::default();
            for (k, c) in cases.iter().enumerate() {
                groups.entry((c.person, c.claim.year())).or_default().push(k);
            }
            for idx in groups.values() {
                let input: Vec<_> = idx.iter().map(|&k| (cases[k].claim, cases[k].ids, Some(results[k].1))).collect();
                let (diffs, acc) = resettle_year(&policy, &input);
                for (d, &k) in diffs.iter().zip(idx) {
                    prop_assert!(!d.changed(), "claim {} changed on re-settlement", k);
                    prop_assert_eq!(d.new, results[k].1);
                }
                prop_assert_eq!(acc, results[*idx.last().expect("non-empty")].2);
            }
        }
    }

    #[test]
    fn reversing_the_last_claim_restores_the_accumulators_exactly(cases in prop::collection::vec(claim_strategy(), 1..25)) {
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            for (before, s, after) in run(&policy, &cases) {
                prop_assert_eq!(reverse(&policy, &s, &after).expect("reversible"), before);
                let r = s.reversal();
                prop_assert_eq!(r.fund_pay_sumamt + r.hosp_part_amt + r.psn_part_amt, r.medfee_sumamt);
                prop_assert_eq!(r.psn_part_amt, -s.psn_part_amt);
            }
        }
    }

    #[test]
    fn a_late_identity_change_shows_up_only_as_differences_on_re_settlement(cases in prop::collection::vec(claim_strategy(), 2..12)) {
        // Everybody becomes registered poor after the fact; re-settlement must report new − old per fund.
        let poor = IdentitySet::parse_list("registered_poor").expect("id");
        for policy in policies() {
            let cases = for_policy(&policy, &cases);
            let one: Vec<Case> = cases.iter().map(|c| Case { person: 0, ids: IdentitySet::EMPTY, claim: Claim { setl_date: Date::new(2020, c.claim.setl_date.month(), c.claim.setl_date.day()).expect("date"), ..c.claim } }).collect();
            let one = for_policy(&policy, &one);
            let orig = run(&policy, &one);
            let input: Vec<_> = one.iter().zip(&orig).map(|(c, r)| (c.claim, poor, Some(r.1))).collect();
            let (diffs, _) = resettle_year(&policy, &input);
            for (d, r) in diffs.iter().zip(&orig) {
                for f in ALL_FUNDS {
                    prop_assert_eq!(d.fund_diff_fen[f.index()], d.new.funds_fen[f.index()] - r.1.funds_fen[f.index()]);
                }
                prop_assert_eq!(d.psn_diff_fen, d.new.psn_part_amt.0 - r.1.psn_part_amt.0);
            }
            // One claim may cost a poor patient more (an earlier, more generous claim used up an annual
            // cap), but over the year being poor never makes the patient pay more under these policies.
            let year_diff: i64 = diffs.iter().map(|d| d.psn_diff_fen).sum();
            prop_assert!(year_diff <= 0, "{}: poor patient pays {} fen more over the year", policy.meta.id, year_diff);
        }
    }
}

#[test]
fn reversing_under_another_policy_is_refused() {
    let ps = policies();
    let bill = Bill::new(Fen::yuan(1000), Fen::ZERO, Fen::ZERO, Fen::ZERO, Fen::yuan(1000)).expect("bill");
    let claim = Claim {
        site: Default::default(),
        setl_date: Date::new(2020, 5, 1).expect("d"),
        med_type: MedType::Inpatient,
        hosp_lv: HospLevel::new(2).expect("l"),
        in_county: true,
        referral_ok: true,
        major_disease: false,
        bill,
    };
    let (s, after) = settle(&ps[0], &claim, IdentitySet::EMPTY, &Accumulators::default());
    assert!(reverse(&ps[1], &s, &after).is_err());
    assert!(reverse(&ps[0], &s, &Accumulators::default()).is_err(), "reversing against accumulators without it must fail");
}
