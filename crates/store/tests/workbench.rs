//! The workbench's store functions on SQLite and PostgreSQL: village indicators from the registry, the
//! latest reconciliation and the settlement ledger (with a cancellation), households and members, and
//! worklist marks confirmed or reopened by the next reconciliation run. PostgreSQL as in
//! `both_backends.rs`: `BAOZHANG_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`), a fresh
//! database per test, dropped afterwards.

use baozhang_core::engine::Accumulators;
use baozhang_core::Date;
use baozhang_store::indicators::{MarkError, MarkState, VillageStats, N_BUCKETS};
use baozhang_store::ledger::{self, Batch, Entry, SettlementHead, Totals};
use baozhang_store::reconcile::{ReconcileParams, CLASSES};
use baozhang_store::registry::{EnrolmentRow, PeriodRow, PersonRow, RegionRow, StateRow};
use baozhang_store::Store;

mod common;
use common::{backends, d};

const V1: &str = "620422100201";
const V2: &str = "620422100202";
const YEAR: i64 = 2018;

fn person(id: &str, name: &str, village: &str, household: &str, head: bool) -> PersonRow {
    PersonRow {
        id_no: id.into(),
        name: name.into(),
        sex: "女".into(),
        birth_date: d("1980-01-01"),
        household_no: Some(household.into()),
        relation: Some(if head { "户主" } else { "子女" }.into()),
        village_code: Some(village.into()),
        psn_no: Some(format!("N{id}")),
    }
}

fn enrolment(id: &str, flags: i64, flag_date: Option<i64>, subsidy_fen: i64) -> EnrolmentRow {
    EnrolmentRow {
        id_no: id.into(),
        psn_no: format!("N{id}"),
        year: YEAR,
        status: "正常参保".into(),
        insured: true,
        insured_admdvs: "620422".into(),
        flags,
        flag_date,
        premium_fen: 22_000,
        subsidy_fen,
        subsidy_source: None,
    }
}

async fn enrol(s: &Store, sha: &str, persons: &[PersonRow], rows: &[EnrolmentRow]) {
    let mut imp = s.start_import("enrolment", "e.csv", sha).await.unwrap();
    imp.stage_persons(persons).await.unwrap();
    imp.stage_enrolments(rows).await.unwrap();
    imp.merge_persons().await.unwrap();
    imp.merge_enrolments().await.unwrap();
    imp.finish(rows.len() as u64, rows.len() as u64, 0).await.unwrap();
}

/// Two villages. V1: household H1 = A (head, poor since 2016, insured, flagged 2018-02-01) and B (poor, not
/// insured); household H2 = C (head, monitored since 2018-03, insured) and E (poor, dead 2018-05-01).
/// V2: household H3 = D (no identity, insured). Z: no village, dead 2018-07-01, insured.
async fn registry(s: &Store) {
    let r =
        |c: &str, n: &str, l: u8, p: Option<&str>| RegionRow { code: c.into(), name: n.into(), level: l, parent_code: p.map(Into::into) };
    s.load_regions(&[
        r("62", "甘肃省", 1, None),
        r("6204", "白银市", 2, Some("62")),
        r("620422", "会宁县", 3, Some("6204")),
        r("620422100", "会师镇", 4, Some("620422")),
        r(V1, "南十里铺村", 5, Some("620422100")),
        r(V2, "北十里铺村", 5, Some("620422100")),
    ])
    .await
    .unwrap();
    let a = person("A", "甲", V1, "H1", true);
    let b = person("B", "乙", V1, "H1", false);
    let c = person("C", "丙", V1, "H2", true);
    let e = person("E", "戊", V1, "H2", false);
    let dd = person("D", "丁", V2, "H3", true);
    let period = |id: &str, identity: &str, start: &str| PeriodRow {
        id_no: id.into(),
        identity: identity.into(),
        start_date: d(start),
        end_date: None,
    };
    let mut imp = s.start_import("poverty", "p.csv", "p").await.unwrap();
    imp.stage_persons(&[a.clone(), b.clone(), c.clone(), e.clone(), dd.clone()]).await.unwrap();
    imp.stage_periods(&[
        period("A", "registered_poor", "2016-01-01"),
        period("B", "registered_poor", "2016-01-01"),
        period("E", "registered_poor", "2016-01-01"),
        period("C", "marginal", "2018-03-01"),
    ])
    .await
    .unwrap();
    imp.merge_persons().await.unwrap();
    imp.merge_periods("poverty").await.unwrap();
    imp.finish(5, 5, 0).await.unwrap();
    // Z: on no village roster, dead, still insured in the county.
    let z = PersonRow { village_code: None, household_no: None, relation: None, ..person("Z", "己", V1, "-", false) };
    let mut imp = s.start_import("death", "d.csv", "d").await.unwrap();
    imp.stage_persons(&[e.clone(), z.clone()]).await.unwrap();
    imp.stage_states(&[
        StateRow { id_no: "E".into(), start_date: d("2018-05-01"), end_date: None },
        StateRow { id_no: "Z".into(), start_date: d("2018-07-01"), end_date: None },
    ])
    .await
    .unwrap();
    imp.merge_persons().await.unwrap();
    imp.merge_states("death").await.unwrap();
    imp.finish(1, 1, 0).await.unwrap();
    enrol(
        s,
        "e1",
        &[a, c, dd, z],
        &[
            enrolment("A", 1, Some(d("2018-02-01")), 22_000),
            enrolment("C", 4, None, 22_000),
            enrolment("D", 0, None, 0),
            enrolment("Z", 0, None, 0),
        ],
    )
    .await;
}

/// One ledger settlement through the ledger API: `funds` are (layer, fund code, amount); the hospital part
/// goes to fund 999996 on layer 11, the rest is the personal part. Returns the settlement id.
#[allow(clippy::too_many_arguments)]
async fn settle(
    s: &Store,
    id_no: &str,
    village: Option<&str>,
    year: i64,
    med_type: i64,
    identities: i64,
    medfee: i64,
    inscp: i64,
    funds: &[(i64, &str, i64)],
    hosp: i64,
) -> String {
    let mut entries: Vec<Entry> = funds
        .iter()
        .map(|&(layer, fund, amount)| Entry {
            layer,
            fund: fund.into(),
            amount_fen: amount,
            outpatient_fen: 0,
            base_delta_fen: amount,
            personal_delta_fen: 0,
            stay_level: -1,
            stay_delta: 0,
        })
        .collect();
    if hosp != 0 {
        entries.push(Entry {
            layer: 11,
            fund: "999996".into(),
            amount_fen: hosp,
            outpatient_fen: 0,
            base_delta_fen: 0,
            personal_delta_fen: 0,
            stay_level: -1,
            stay_delta: 0,
        });
    }
    let fund_pay: i64 = funds.iter().map(|f| f.2).sum();
    let psn = medfee - fund_pay - hosp;
    entries.push(Entry {
        layer: -1,
        fund: ledger::PERSONAL_FUND.into(),
        amount_fen: psn,
        outpatient_fen: 0,
        base_delta_fen: 0,
        personal_delta_fen: 0,
        stay_level: if med_type == 21 { 0 } else { -1 },
        stay_delta: i64::from(med_type == 21),
    });
    let totals = Totals {
        year: year as u16,
        med_type,
        medfee_sumamt: medfee,
        inscp_scp_amt: inscp,
        act_pay_dedc: 0,
        fund_pay_sumamt: fund_pay,
        hosp_part_amt: hosp,
        psn_part_amt: psn,
    };
    write(s, id_no, village, identities, None, &totals, &entries).await
}

/// Cancels a settlement: a new row with `reverses` set, negated totals and entries.
async fn cancel(s: &Store, setl_id: &str) -> String {
    let orig = s.settlement(setl_id).await.unwrap().expect("settlement");
    let entries = ledger::negated(&s.settlement_entries(setl_id).await.unwrap());
    let totals = Totals::of_stored(&orig).negated();
    write(s, &orig.id_no, orig.village_code.as_deref(), orig.identities, Some(setl_id), &totals, &entries).await
}

async fn write(
    s: &Store,
    id_no: &str,
    village: Option<&str>,
    identities: i64,
    reverses: Option<&str>,
    totals: &Totals,
    entries: &[Entry],
) -> String {
    let psn_no = format!("N{id_no}");
    let mut tx = s.begin_write().await.unwrap();
    let mut batch = Batch::default();
    let locked = ledger::lock_accumulators(&mut tx, &batch, &psn_no, totals.year).await.unwrap();
    let mut after: Accumulators = locked.acc;
    ledger::apply_entries(&mut after, entries);
    let seq = ledger::next_seq(&mut tx, s.backend(), &mut batch).await.unwrap();
    let setl_id = format!("T{seq:08}");
    let head = SettlementHead {
        setl_id: setl_id.clone(),
        seq,
        reverses: reverses.map(str::to_string),
        msgid: format!("M{seq}"),
        mdtrt_id: format!("V{}", reverses.map_or(seq.to_string(), |r| r.to_string())),
        psn_no: psn_no.clone(),
        id_no: id_no.into(),
        village_code: village.map(str::to_string),
        fixmedins_code: "H620422001".into(),
        insuplc_admdvs: "620422".into(),
        setl_date: totals.year as i64 * 10_000 + 601,
        hosp_lv: 1,
        identities,
        policy_id: "test".into(),
        policy_version: "v1".into(),
        fulamt_ownpay_amt: 0,
        overlmt_selfpay: 0,
        preselfpay_amt: 0,
        outcome_json: "[]".into(),
        opter: "test".into(),
        claim_flags: None,
    };
    ledger::append(&mut batch, &head, totals, entries, &locked, &after, "test", 12).unwrap();
    batch.flush(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    setl_id
}

fn village<'a>(v: &'a [VillageStats], code: &str) -> &'a VillageStats {
    v.iter().find(|x| x.village_code == code).unwrap_or_else(|| panic!("village {code} missing"))
}

fn class_index(class: &str) -> usize {
    CLASSES.iter().position(|c| c.0 == class).unwrap()
}

#[tokio::test]
async fn village_indicators_add_up_the_registry_the_latest_run_and_the_ledger_net_of_cancellations() {
    let mut results = Vec::new();
    for db in backends("wbind").await {
        let s = &db.store;
        registry(s).await;
        let as_of = Date::parse("2018-12-31").unwrap();
        s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap();

        // V1
        // A: inpatient, poor; basic, critical illness, assistance, hospital; personal 2,300 yuan.
        settle(
            s,
            "A",
            Some(V1),
            YEAR,
            21,
            1,
            1_000_000,
            800_000,
            &[(0, "390100", 500_000), (1, "390200", 100_000), (3, "610100", 150_000)],
            20_000,
        )
        .await;
        // A: outpatient chronic; personal 40 yuan.
        settle(s, "A", Some(V1), YEAR, 14, 1, 10_000, 10_000, &[(0, "390100", 6_000)], 0).await;
        // B: inpatient, poor, personal 10,000 yuan — cancelled, then settled again (two fallback layers
        // sharing fund 640100; personal 6,000 yuan).
        let b1 = settle(s, "B", Some(V1), YEAR, 21, 1, 2_000_000, 1_500_000, &[(0, "390100", 1_000_000)], 0).await;
        cancel(s, &b1).await;
        settle(
            s,
            "B",
            Some(V1),
            YEAR,
            21,
            1,
            2_000_000,
            1_500_000,
            &[(0, "390100", 1_200_000), (3, "610100", 100_000), (4, "640100", 50_000), (5, "640100", 50_000)],
            0,
        )
        .await;
        // C: outpatient, monitored, nothing personal.
        settle(s, "C", Some(V1), YEAR, 14, 4, 5_000, 5_000, &[(0, "390100", 5_000)], 0).await;
        // V2 — D: inpatient, not poor; personal 1,000 yuan.
        settle(s, "D", Some(V2), YEAR, 21, 0, 300_000, 300_000, &[(0, "390100", 200_000)], 0).await;
        // Another year (not counted), and a person without a village.
        settle(s, "A", Some(V1), 2017, 21, 1, 777_000, 777_000, &[(0, "390100", 7_000)], 0).await;
        settle(s, "X", None, YEAR, 21, 1, 888_000, 888_000, &[(0, "390100", 8_000)], 0).await;
        assert!(ledger::verify(s).await.unwrap().ok(), "{:?}", s.backend());

        // Warning line 2,800 yuan: B (6,000) is over it, A (2,340) above 80 % of it.
        let ind = s.village_indicators(YEAR, Date::parse("2019-06-30").unwrap(), 280_000).await.unwrap();
        // X and Z have no village: counted under the county they are insured in.
        assert_eq!(ind.iter().map(|v| v.village_code.as_str()).collect::<Vec<_>>(), vec!["620422", V1, V2]);
        let v1 = village(&ind, V1);
        // Registry (E is dead; C is monitored).
        assert_eq!((v1.poor, v1.poor_insured, v1.marginal, v1.marginal_insured), (2, 1, 1, 1));
        assert_eq!((v1.flagged, v1.flag_delay_days_sum, v1.flag_delay_avg_days()), (1, 762, Some(762)));
        assert_eq!(v1.poor_enrolment_bp(), Some(5_000));
        // Latest run: B not insured, E dead but still counted.
        let mut findings = [0i64; CLASSES.len()];
        findings[class_index("poor_not_insured")] = 1;
        findings[class_index("dead_still_counted")] = 1;
        assert_eq!(v1.findings, findings);
        assert_eq!((v1.findings_total(), v1.findings_of("poor_not_insured"), v1.findings_of("nonsense")), (2, 1, 0));
        // Ledger: A×2, B (cancelled and settled again), C.
        assert_eq!((v1.settlements, v1.inpatient), (4, 2));
        assert_eq!(v1.medfee_fen, 1_000_000 + 10_000 + 2_000_000 + 5_000);
        assert_eq!(v1.inscp_fen, 800_000 + 10_000 + 1_500_000 + 5_000);
        assert_eq!(v1.fund_pay_fen, 750_000 + 6_000 + 1_400_000 + 5_000);
        assert_eq!(v1.hosp_part_fen, 20_000);
        assert_eq!(v1.psn_part_fen, 230_000 + 4_000 + 600_000);
        assert_eq!(v1.funds_fen, [1_711_000, 100_000, 0, 250_000, 100_000, 20_000]);
        assert_eq!(v1.fund_hits, [4, 1, 0, 2, 1, 1], "a settlement paid by two layers of one fund counts once");
        assert_eq!(v1.psn_part_buckets, [1, 1, 0, 0, 1, 1, 0]);
        assert_eq!(v1.fund_hit_bp(1), Some(2_500));
        assert_eq!(v1.psn_part_avg_fen(), Some(208_500));
        // Poor inpatients: A's and B's standing stays.
        assert_eq!(v1.poor_inpatient, 2);
        assert_eq!(
            (v1.poor_inpatient_medfee_fen, v1.poor_inpatient_inscp_fen, v1.poor_inpatient_fund_pay_fen, v1.poor_inpatient_psn_part_fen),
            (3_000_000, 2_300_000, 2_150_000, 830_000)
        );
        assert_eq!(v1.poor_inpatient_psn_part_buckets, [0, 0, 0, 0, 1, 1, 0]);
        assert_eq!(v1.poor_inpatient_ratio_total_bp(), Some(7_167), "2,150,000 / 3,000,000");
        assert_eq!(v1.poor_inpatient_ratio_compliant_bp(), Some(9_348), "2,150,000 / 2,300,000");
        assert_eq!((v1.persons_settled, v1.over_warning_line, v1.near_warning_line), (3, 1, 1));

        let v2 = village(&ind, V2);
        assert_eq!((v2.poor, v2.poor_insured, v2.poor_enrolment_bp(), v2.findings_total()), (0, 0, None, 0));
        assert_eq!((v2.settlements, v2.inpatient, v2.poor_inpatient, v2.medfee_fen, v2.psn_part_fen), (1, 1, 0, 300_000, 100_000));
        assert_eq!(v2.psn_part_buckets, [0, 0, 1, 0, 0, 0, 0]);
        assert_eq!((v2.persons_settled, v2.over_warning_line, v2.near_warning_line), (1, 0, 0));

        let x = village(&ind, "620422");
        assert_eq!((x.poor, x.findings_of("dead_still_counted"), x.findings_total()), (0, 1, 1), "Z, in the county insured in");
        assert_eq!((x.settlements, x.inpatient, x.poor_inpatient), (1, 1, 1));
        assert_eq!((x.medfee_fen, x.psn_part_fen, x.funds_fen[0], x.fund_hits[0]), (888_000, 880_000, 8_000, 1));
        assert_eq!((x.psn_part_buckets[5], x.persons_settled, x.over_warning_line), (1, 1, 1));

        // Rolled up, the county is the sum of its rows.
        let mut county = VillageStats { village_code: "620422".into(), ..Default::default() };
        for v in &ind {
            county.add(v);
        }
        assert_eq!((county.village_code.as_str(), county.settlements, county.inpatient), ("620422", 6, 4));
        assert_eq!(county.medfee_fen, 3_015_000 + 300_000 + 888_000);
        assert_eq!(county.psn_part_buckets.iter().sum::<i64>(), county.settlements);
        assert_eq!(county.psn_part_buckets.len(), N_BUCKETS);
        assert_eq!(county.funds_fen[0], 1_919_000);
        assert_eq!((county.persons_settled, county.over_warning_line, county.poor, county.findings_total()), (5, 2, 2, 3));

        // Households and members (as of the same date, so the figures agree with the village's).
        let hh = s.households_in(V1, YEAR, Date::parse("2019-06-30").unwrap()).await.unwrap();
        assert_eq!(hh.len(), 2);
        let h1 = &hh[0];
        assert_eq!((h1.household_no.as_str(), h1.head_name.as_deref()), ("H1", Some("甲")));
        assert_eq!((h1.members, h1.poor, h1.poor_insured, h1.insured, h1.settlements, h1.psn_part_fen), (2, 2, 1, 1, 3, 834_000));
        let h2 = &hh[1];
        assert_eq!((h2.household_no.as_str(), h2.head_name.as_deref()), ("H2", Some("丙")));
        assert_eq!((h2.members, h2.poor, h2.poor_insured, h2.insured, h2.settlements, h2.psn_part_fen), (1, 0, 0, 1, 1, 0));
        assert_eq!(hh.iter().map(|h| h.poor).sum::<i64>(), v1.poor);
        assert_eq!(hh.iter().map(|h| h.settlements).sum::<i64>(), v1.settlements);

        let members = s.persons_of_household("H1", YEAR, as_of).await.unwrap();
        let m: Vec<_> =
            members.iter().map(|m| (m.id_no.as_str(), m.dead, m.insured, m.identities.clone(), m.settlements, m.psn_part_fen)).collect();
        assert_eq!(
            m,
            vec![
                ("A", false, true, vec!["registered_poor".to_string()], 2, 234_000),
                ("B", false, false, vec!["registered_poor".to_string()], 1, 600_000)
            ]
        );
        assert_eq!(members[0].relation.as_deref(), Some("户主"));
        let members = s.persons_of_household("H2", YEAR, as_of).await.unwrap();
        let m: Vec<_> = members.iter().map(|m| (m.id_no.as_str(), m.dead, m.insured, m.identities.clone())).collect();
        assert_eq!(m, vec![("C", false, true, vec!["marginal".to_string()]), ("E", true, false, vec!["registered_poor".to_string()])]);
        // Before C was monitored, C had no identity.
        let early = s.persons_of_household("H2", YEAR, Date::parse("2018-02-01").unwrap()).await.unwrap();
        assert!(early[0].identities.is_empty());

        results.push(ind);
        db.drop_pg().await;
    }
    assert_eq!(results[0], results[1], "SQLite and PostgreSQL disagree");
}

#[tokio::test]
async fn a_marked_finding_is_confirmed_when_fixed_and_reopened_when_not() {
    for db in backends("wbmark").await {
        let s = &db.store;
        registry(s).await;
        let as_of = Date::parse("2018-12-31").unwrap();
        let run1 = s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap().run_id;
        let items = s.findings_with_marks(run1, Some("620422")).await.unwrap();
        let find = |items: &[baozhang_store::indicators::WorklistItem], class: &str, id: &str| {
            items.iter().find(|i| i.finding.class == class && i.finding.id_no == id).cloned().unwrap_or_else(|| panic!("{class} {id}"))
        };
        let b = find(&items, "poor_not_insured", "B");
        let e = find(&items, "dead_still_counted", "E");
        assert!(items.iter().all(|i| i.mark.is_none() && i.reopened.is_none()));
        assert_eq!(b.finding.name, "乙");

        // Mark both done; marking again returns the pending mark; an undone mark can be marked anew.
        let mb = s.mark_finding_done(b.finding_id, "cadre1", Some("已办理参保")).await.unwrap();
        assert_eq!(
            (mb.state, mb.marked_run, mb.marked_by.as_str(), mb.note.as_deref()),
            (MarkState::Pending, run1, "cadre1", Some("已办理参保"))
        );
        assert_eq!(
            (mb.class.as_str(), mb.id_no.as_str(), mb.name.as_str(), mb.village_code.as_deref()),
            ("poor_not_insured", "B", "乙", Some(V1))
        );
        let again = s.mark_finding_done(b.finding_id, "cadre2", Some("别的说明")).await.unwrap();
        assert_eq!(again, mb, "idempotent");
        let me = s.mark_finding_done(e.finding_id, "cadre1", None).await.unwrap();
        let undone = s.undo_mark(me.id, "cadre1").await.unwrap();
        assert_eq!((undone.state, undone.undone_by.as_deref()), (MarkState::Undone, Some("cadre1")));
        assert!(matches!(s.undo_mark(me.id, "cadre1").await, Err(MarkError::NotPending { state: MarkState::Undone, .. })));
        let me = s.mark_finding_done(e.finding_id, "cadre1", Some("  ")).await.unwrap();
        assert_ne!(me.id, undone.id);
        assert_eq!((me.state, me.note.clone()), (MarkState::Pending, None));
        assert!(matches!(s.mark_finding_done(999_999, "cadre1", None).await, Err(MarkError::UnknownFinding(999_999))));
        assert!(matches!(s.undo_mark(999_999, "cadre1").await, Err(MarkError::UnknownMark(999_999))));
        let items = s.findings_with_marks(run1, None).await.unwrap();
        assert_eq!(find(&items, "poor_not_insured", "B").mark.map(|m| m.id), Some(mb.id));
        assert_eq!(find(&items, "dead_still_counted", "E").mark.map(|m| m.id), Some(me.id), "the undone mark is not shown");
        assert_eq!(s.marks(Some(V1), Some(MarkState::Pending)).await.unwrap().len(), 2);
        assert_eq!(s.marks(Some(V2), None).await.unwrap().len(), 0);
        assert_eq!(s.marks(None, None).await.unwrap().len(), 3);

        // B gets insured; E stays on the roster. The next run confirms B's mark and reopens E's.
        enrol(s, "e2", &[person("B", "乙", V1, "H1", false)], &[enrolment("B", 1, Some(d("2018-10-01")), 22_000)]).await;
        let run2 = s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap().run_id;
        let mb2 = s.mark(mb.id).await.unwrap().unwrap();
        assert_eq!((mb2.state, mb2.resolved_run), (MarkState::Confirmed, Some(run2)));
        assert!(mb2.resolved_at.is_some());
        let me2 = s.mark(me.id).await.unwrap().unwrap();
        assert_eq!((me2.state, me2.resolved_run), (MarkState::Reopened, Some(run2)));
        assert_eq!(s.mark(undone.id).await.unwrap().unwrap().state, MarkState::Undone, "an undone mark stays undone");

        // In the new run, E's finding shows the mark it reopened; B's is gone.
        let items2 = s.findings_with_marks(run2, Some(V1)).await.unwrap();
        assert!(!items2.iter().any(|i| i.finding.id_no == "B" && i.finding.class == "poor_not_insured"));
        let e2 = find(&items2, "dead_still_counted", "E");
        assert_eq!((e2.mark.as_ref(), e2.reopened.as_ref().map(|m| (m.id, m.state))), (None, Some((me.id, MarkState::Reopened))));
        assert!(items2.iter().filter(|i| i.finding_id != e2.finding_id).all(|i| i.reopened.is_none()));
        // The old run's items keep their (now resolved) marks.
        let items1 = s.findings_with_marks(run1, None).await.unwrap();
        assert_eq!(find(&items1, "poor_not_insured", "B").mark.map(|m| m.state), Some(MarkState::Confirmed));

        // A finding of the old run can no longer be marked; a resolved mark can no longer be undone.
        assert!(matches!(
            s.mark_finding_done(b.finding_id, "cadre1", None).await,
            Err(MarkError::NotLatestRun { run, latest, .. }) if run == run1 && latest == Some(run2)
        ));
        assert!(matches!(s.undo_mark(mb.id, "cadre1").await, Err(MarkError::NotPending { state: MarkState::Confirmed, .. })));
        // The reopened finding can be marked again; that mark is pending and the item shows both.
        let again = s.mark_finding_done(e2.finding_id, "cadre3", Some("已报民政注销")).await.unwrap();
        assert_eq!((again.state, again.marked_run), (MarkState::Pending, run2));
        let e2 = find(&s.findings_with_marks(run2, None).await.unwrap(), "dead_still_counted", "E");
        assert_eq!((e2.mark.map(|m| m.id), e2.reopened.map(|m| m.id)), (Some(again.id), Some(me.id)));
        assert_eq!(s.marks(Some("620422"), Some(MarkState::Confirmed)).await.unwrap().len(), 1);
        assert_eq!(s.marks(Some("620422"), Some(MarkState::Reopened)).await.unwrap().len(), 1);

        // Every mark and undo is in the audit log.
        let audit = s.audit_records(100).await.unwrap();
        let actions: Vec<(&str, &str)> =
            audit.iter().filter(|a| a.action.starts_with("worklist.")).map(|a| (a.action.as_str(), a.actor.as_str())).collect();
        assert_eq!(
            actions,
            vec![
                ("worklist.mark", "cadre3"),
                ("worklist.mark", "cadre1"),
                ("worklist.undo", "cadre1"),
                ("worklist.mark", "cadre1"),
                ("worklist.mark", "cadre1")
            ],
            "newest first; the idempotent repeat wrote nothing"
        );
        assert_eq!(
            audit.iter().find(|a| a.action == "worklist.mark").and_then(|a| a.target.clone()),
            Some(format!("worklist_mark/{}", again.id))
        );
        db.drop_pg().await;
    }
}

/// Timing on a realistic database (not run by default): `BAOZHANG_BENCH_DB=sqlite:///tmp/ind.db cargo test
/// --release -p baozhang-store --test workbench -- --ignored --nocapture`. Reads only (the migration aside).
#[tokio::test]
#[ignore]
async fn bench_village_indicators() {
    let Ok(url) = std::env::var("BAOZHANG_BENCH_DB") else { return };
    let year: i64 = std::env::var("BAOZHANG_BENCH_YEAR").ok().and_then(|y| y.parse().ok()).unwrap_or(2018);
    let s = Store::open(&url).await.unwrap();
    let as_of = Date::new(year as u16, 12, 31).unwrap();
    let mut ind = Vec::new();
    for round in 0..3 {
        let t = std::time::Instant::now();
        ind = s.village_indicators(year, as_of, 500_000).await.unwrap();
        println!("village_indicators round {round}: {} villages, {} ms", ind.len(), t.elapsed().as_millis());
    }
    let mut county = VillageStats::default();
    for v in &ind {
        county.add(v);
    }
    println!("{county:?}");
    let Some(big) = ind.iter().max_by_key(|v| v.poor) else { return };
    let t = std::time::Instant::now();
    let hh = s.households_in(&big.village_code, year, as_of).await.unwrap();
    println!("households_in {}: {} households, {} ms", big.village_code, hh.len(), t.elapsed().as_millis());
    if let Some(h) = hh.iter().max_by_key(|h| h.members) {
        let t = std::time::Instant::now();
        let m = s.persons_of_household(&h.household_no, year, as_of).await.unwrap();
        println!("persons_of_household: {} members, {} ms", m.len(), t.elapsed().as_millis());
    }
    if let Some(run) = s.latest_run().await.unwrap() {
        let t = std::time::Instant::now();
        let items = s.findings_with_marks(run, Some(&big.village_code[..9])).await.unwrap();
        println!("findings_with_marks (township {}): {} items, {} ms", &big.village_code[..9], items.len(), t.elapsed().as_millis());
        let t = std::time::Instant::now();
        let items = s.findings_with_marks(run, None).await.unwrap();
        println!("findings_with_marks (all): {} items, {} ms", items.len(), t.elapsed().as_millis());
    }
}

/// The dashboard's figures kept for the next start: replaced on each keep, read back as kept, on both
/// backends; an unknown name has none.
#[tokio::test]
async fn kept_figures_are_replaced_and_read_back() {
    for db in backends("kept").await {
        let s = &db.store;
        assert_eq!(s.kept_figures("dashboard.villages.2018").await.unwrap(), None);
        s.keep_figures("dashboard.villages.2018", "[1]").await.unwrap();
        s.keep_figures("dashboard.villages.2018", "[{\"v\":\"会师镇\"}]").await.unwrap();
        s.keep_figures("dashboard.villages.2019", "[]").await.unwrap();
        let (at, body) = s.kept_figures("dashboard.villages.2018").await.unwrap().expect("kept");
        assert_eq!(body, "[{\"v\":\"会师镇\"}]");
        assert!(at.len() == 20 && at.ends_with('Z'), "{at}");
        assert_eq!(s.kept_figures("dashboard.villages.2019").await.unwrap().unwrap().1, "[]");
        db.drop_pg().await;
    }
}
