//! Invariants of the reconciliation rules over arbitrary records of one person.

use baozhang_core::reconcile::{classify, is_candidate, Class, Enrolment, Person, Records, Rules, Span, StateKind, SubsidyRule};
use baozhang_core::{Date, Identity};
use proptest::prelude::*;

fn day() -> impl Strategy<Value = Date> {
    (2015u16..=2020, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}
fn span() -> impl Strategy<Value = Span> {
    (day(), proptest::option::of(day())).prop_map(|(start, end)| Span { start, end })
}
fn identity() -> impl Strategy<Value = Identity> {
    prop_oneof![
        Just(Identity::RegisteredPoor),
        Just(Identity::ExitedPoor),
        Just(Identity::Marginal),
        Just(Identity::Dibao),
        Just(Identity::ExtremePoor),
        Just(Identity::Disabled),
    ]
}
fn enrolment() -> impl Strategy<Value = Enrolment> {
    (2017i64..=2019, any::<bool>(), prop_oneof![Just("620422"), Just("620421"), Just("640502")], 0u16..8, 0i64..30_000, 0i64..30_000)
        .prop_map(|(year, insured, admdvs, flags, premium_fen, subsidy_fen)| Enrolment {
            year,
            insured,
            insured_admdvs: admdvs.into(),
            flags,
            premium_fen,
            subsidy_fen,
            flag_date: None,
        })
}
fn records() -> impl Strategy<Value = Records> {
    (
        proptest::collection::vec((identity(), span()), 0..4),
        proptest::collection::vec((prop_oneof![Just(StateKind::Death), Just(StateKind::Military)], span()), 0..2),
        proptest::collection::vec("户编号 [A-C]", 0..2),
        proptest::collection::vec(enrolment(), 0..3),
    )
        .prop_map(|(identities, states, conflicts, enrolments)| Records { identities, states, conflicts, enrolments })
}
fn rule() -> impl Strategy<Value = SubsidyRule> {
    prop_oneof![
        Just(SubsidyRule::Unknown),
        (0i64..30_000).prop_map(SubsidyRule::Standard),
        Just(SubsidyRule::ByClass(vec![(Identity::Dibao, Some(10_000)), (Identity::ExtremePoor, None)])),
    ]
}

proptest! {
    #[test]
    fn findings_are_ordered_distinct_and_consistent(
        r in records(),
        village in proptest::option::of(prop_oneof![Just("620422100001"), Just("620421200002")]),
        birth in day(),
        as_of in day(),
        subsidy in rule(),
    ) {
        let p = Person { village_code: village.map(str::to_string), birth_date: birth };
        let rules = Rules { as_of, new_window_days: 90, subsidy };
        let f = classify(&p, &r, &rules);
        let classes: Vec<Class> = f.iter().map(|f| f.class).collect();
        // One finding per class at most, in the order of the class table.
        prop_assert!(classes.windows(2).all(|w| w[0] < w[1]), "{:?}", classes);
        // Not insured is either new or not, never both; and a person insured in the year is neither.
        prop_assert!(!(classes.contains(&Class::PoorNotInsured) && classes.contains(&Class::NewPoorNotInsured)));
        let insured = r.enrolments.iter().any(|e| e.year == i64::from(as_of.year()) && e.insured);
        let not_insured = [Class::PoorNotInsured, Class::NewPoorNotInsured, Class::MarginalNotInsured];
        prop_assert!(!insured || !classes.iter().any(|c| not_insured.contains(c)));
        // The dead are cleared, nothing else is asked of them but a duplicate check or a subsidy recovery.
        let dead = r.states.iter().any(|(k, s)| *k == StateKind::Death && s.start <= as_of);
        if dead {
            prop_assert!(classes.iter().all(|c| matches!(c, Class::DeadStillCounted | Class::DuplicatePerson | Class::SubsidyExcess)), "{:?}", classes);
        }
        // Whoever is not a candidate has nothing to find (premiums and subsidies are not negative).
        if !is_candidate(&r, i64::from(as_of.year())) {
            prop_assert!(f.is_empty(), "{:?}", f);
        }
        // Conflicts alone make a duplicate, with the first detail in text order.
        prop_assert_eq!(classes.contains(&Class::DuplicatePerson), !r.conflicts.is_empty());
    }
}
