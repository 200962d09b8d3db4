//! Properties of re-settlement's adjustments (issue 17) over random person-years and the four reference
//! policies: with nothing changed there is nothing to adjust; after an identity change the adjustments
//! are exactly the differences `engine::resettle_year` reports; a settlement's entries plus its
//! adjustment add up to the new settlement's entries; the accumulators are the fold of all entries; and
//! adjusting twice changes nothing the second time.

use baozhang_core::claim::{Bill, Claim, HospLevel, MedType};
use baozhang_core::engine::{resettle_year, settle, Accumulators};
use baozhang_core::reference::REFERENCE_POLICIES;
use baozhang_core::{parse_policy, Date, Fen, IdentitySet, Policy};
use baozhang_store::ledger::{apply_entries, entries_of, entry_diff, entry_money, Entry};
use baozhang_store::resettle::{plan, YearClaim};
use proptest::prelude::*;

fn policies() -> Vec<Policy> {
    REFERENCE_POLICIES.iter().map(|(_, src)| parse_policy(src).expect("reference policy")).collect()
}

fn claim_strategy() -> impl Strategy<Value = Claim> {
    (
        prop::bool::weighted(0.8),
        1u8..=3,
        any::<(bool, bool, bool)>(),
        prop_oneof![0i64..100_000, 0i64..5_000_000, 0i64..60_000_000],
        (0u32..=100, 0u32..=100),
        (1u8..=12, 1u8..=28),
    )
        .prop_map(|(inpatient, lv, (in_county, referral_ok, major), total, (pct_out, a), (m, d))| {
            let out = total * i64::from(pct_out) / 400;
            let ful = out * i64::from(a) / 100;
            let bill = Bill::new(Fen(total), Fen(ful), Fen(out - ful), Fen(0), Fen(total - out)).expect("adds up");
            Claim {
                site: Default::default(),
                setl_date: Date::new(2020, m, d).expect("date"),
                med_type: if inpatient { MedType::Inpatient } else { MedType::OutpatientChronic },
                hosp_lv: HospLevel::new(lv).expect("level"),
                in_county,
                referral_ok,
                major_disease: major,
                bill,
            }
        })
}

/// A person-year as the ledger holds it after settling `claims` in order with `ids`: each claim with its
/// entries; and the accumulators (the fold of the entries).
fn settled(policy: &Policy, claims: &[Claim], ids: &[IdentitySet]) -> (Vec<YearClaim>, Accumulators) {
    let mut acc = Accumulators::default();
    let mut out = Vec::new();
    for (i, (c, id)) in claims.iter().zip(ids).enumerate() {
        let (s, after) = settle(policy, c, *id, &acc);
        acc = after;
        out.push(YearClaim {
            setl_id: format!("S{i}"),
            seq: i as i64,
            mdtrt_id: format!("V{i}"),
            id_no: "X".into(),
            village_code: None,
            fixmedins_code: "H".into(),
            insuplc_admdvs: policy.meta.region_code.clone(),
            setl_date: 20200101,
            claim: *c,
            policy_id: policy.meta.id.clone(),
            identities: i64::from(id.bits()),
            entries: entries_of(policy, &s),
            act_pay_dedc: s.act_pay_dedc.0,
        });
    }
    (out, acc)
}

fn fold(entries: &[&[Entry]]) -> Accumulators {
    let mut acc = Accumulators::default();
    for e in entries {
        apply_entries(&mut acc, e);
    }
    acc
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn with_nothing_changed_nothing_is_adjusted(
        claims in prop::collection::vec(claim_strategy(), 1..8),
        bits in prop::collection::vec(0u16..64, 8),
    ) {
        for policy in policies() {
            // The claims in the policy's own first year (a 2024 policy needs the income of the year before).
            let claims: Vec<Claim> = claims
                .iter()
                .map(|c| Claim { setl_date: Date::new(policy.meta.effective_from.year(), c.setl_date.month(), c.setl_date.day()).expect("date"), ..*c })
                .collect();
            let ids: Vec<IdentitySet> = bits.iter().take(claims.len()).map(|b| IdentitySet::from_bits(*b)).collect();
            let (year, acc) = settled(&policy, &claims, &ids);
            let (planned, after) = plan(&policy, &year, &ids).unwrap();
            prop_assert!(planned.iter().all(|p| !p.changed()), "{}", policy.meta.id);
            prop_assert_eq!(after, acc);
        }
    }

    #[test]
    fn adjustments_are_the_engines_differences_and_add_up(
        claims in prop::collection::vec(claim_strategy(), 1..8),
        before in 0u16..64,
        now in 0u16..64,
    ) {
        for policy in policies() {
            // The claims in the policy's own first year (a 2024 policy needs the income of the year before).
            let claims: Vec<Claim> = claims
                .iter()
                .map(|c| Claim { setl_date: Date::new(policy.meta.effective_from.year(), c.setl_date.month(), c.setl_date.day()).expect("date"), ..*c })
                .collect();
            let old_ids = vec![IdentitySet::from_bits(before); claims.len()];
            let new_ids = vec![IdentitySet::from_bits(now); claims.len()];
            let (year, acc_before) = settled(&policy, &claims, &old_ids);
            let (planned, after) = plan(&policy, &year, &new_ids).unwrap();
            // What the engine reports against the originals.
            let (_, originals_acc) = {
                let input: Vec<_> = claims.iter().zip(&old_ids).map(|(c, i)| (*c, *i, None)).collect();
                resettle_year(&policy, &input)
            };
            prop_assert_eq!(originals_acc, acc_before);
            let originals: Vec<_> = claims.iter().zip(&old_ids).scan(Accumulators::default(), |acc, (c, i)| {
                let (s, a) = settle(&policy, c, *i, acc);
                *acc = a;
                Some(s)
            }).collect();
            let input: Vec<_> = claims.iter().zip(&new_ids).zip(&originals).map(|((c, i), o)| (*c, *i, Some(*o))).collect();
            let (diffs, engine_acc) = resettle_year(&policy, &input);
            prop_assert_eq!(after, engine_acc);
            let mut all: Vec<&[Entry]> = Vec::new();
            for (p, d) in planned.iter().zip(&diffs) {
                // Per fund and for the patient: exactly the engine's difference.
                prop_assert_eq!(p.psn_fen, d.psn_diff_fen);
                prop_assert_eq!(p.funds_fen, d.fund_diff_fen);
                let (funds, fund_pay, hosp, psn) = entry_money(&p.diff);
                prop_assert_eq!(funds, p.funds_fen);
                prop_assert_eq!(fund_pay + hosp + psn, 0, "an adjustment only moves money within one bill");
                // Original entries + adjustment = the new settlement's entries.
                let mut with: Vec<Entry> = year[p.index].entries.clone();
                with.extend(p.diff.iter().cloned());
                prop_assert!(entry_diff(&with, &entries_of(&policy, &p.new)).is_empty());
                all.push(&year[p.index].entries);
                all.push(&p.diff);
            }
            // Accumulators are the fold of every entry, originals and adjustments.
            prop_assert_eq!(fold(&all), after);
            // Adjusted once, a second plan finds nothing.
            let mut adjusted = year.clone();
            for p in &planned {
                adjusted[p.index].entries.extend(p.diff.iter().cloned());
                adjusted[p.index].act_pay_dedc += p.act_pay_dedc_fen;
            }
            let (again, _) = plan(&policy, &adjusted, &new_ids).unwrap();
            prop_assert!(again.iter().all(|p| !p.changed()));
        }
    }
}
