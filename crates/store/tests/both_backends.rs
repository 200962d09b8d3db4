//! The store's behaviour, the same on SQLite and PostgreSQL. PostgreSQL tests run against
//! `BAOZHANG_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`), each in a fresh database that
//! is dropped afterwards; `.ci/run` installs and starts the server.

use baozhang_core::Date;
use baozhang_store::reconcile::ReconcileParams;
use baozhang_store::registry::{EnrolmentRow, PeriodRow, PersonRow, RegionRow, StateRow};
use baozhang_store::Store;

mod common;
use common::{backends, d};

fn person(id: &str, name: &str, village: &str, household: &str) -> PersonRow {
    PersonRow {
        id_no: id.into(),
        name: name.into(),
        sex: "男".into(),
        birth_date: d("1980-01-01"),
        household_no: Some(household.into()),
        relation: Some("户主".into()),
        village_code: Some(village.into()),
        psn_no: None,
    }
}

async fn regions(s: &Store) {
    let r =
        |c: &str, n: &str, l: u8, p: Option<&str>| RegionRow { code: c.into(), name: n.into(), level: l, parent_code: p.map(Into::into) };
    s.load_regions(&[
        r("62", "甘肃省", 1, None),
        r("6204", "白银市", 2, Some("62")),
        r("620422", "会宁县", 3, Some("6204")),
        r("620422100", "会师镇", 4, Some("620422")),
        r("620422100201", "南十里铺村", 5, Some("620422100")),
    ])
    .await
    .unwrap();
}

#[tokio::test]
async fn migrations_apply_once_and_reopening_changes_nothing() {
    for db in backends("mig").await {
        let v = db.store.schema_version().await.unwrap();
        assert!(v >= 2);
        db.store.migrate().await.unwrap();
        assert_eq!(db.store.schema_version().await.unwrap(), v);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn merging_the_same_rows_twice_changes_nothing_the_second_time() {
    for db in backends("idem").await {
        let s = &db.store;
        regions(s).await;
        for round in 0..2 {
            let mut imp = s.start_import("dibao", "x.csv", &format!("sha{round}")).await.unwrap();
            imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
            imp.stage_periods(&[PeriodRow { id_no: "A".into(), identity: "dibao".into(), start_date: d("2017-01-01"), end_date: None }])
                .await
                .unwrap();
            imp.merge_persons().await.unwrap();
            imp.merge_periods("dibao").await.unwrap();
            let changes = imp.finish(1, 1, 0).await.unwrap();
            if round == 0 {
                assert_eq!(changes, 2, "{:?}", s.backend());
            } else {
                assert_eq!(changes, 0, "{:?}", s.backend());
            }
        }
        assert_eq!(s.count("persons").await.unwrap(), 1);
        assert_eq!(s.count("identity_periods").await.unwrap(), 1);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn changes_keep_history_and_unconfirmed_periods_are_retracted_not_deleted() {
    for db in backends("hist").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("poverty", "a.csv", "a").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
        imp.stage_periods(&[PeriodRow {
            id_no: "A".into(),
            identity: "registered_poor".into(),
            start_date: d("2016-01-01"),
            end_date: None,
        }])
        .await
        .unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_periods("poverty").await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        // A later roster: renamed, exited in 2018 (period ends, a new one starts).
        let mut imp = s.start_import("poverty", "b.csv", "b").await.unwrap();
        imp.stage_persons(&[person("A", "甲乙", "620422100201", "H1")]).await.unwrap();
        imp.stage_periods(&[
            PeriodRow {
                id_no: "A".into(),
                identity: "registered_poor".into(),
                start_date: d("2016-01-01"),
                end_date: Some(d("2018-01-01")),
            },
            PeriodRow { id_no: "A".into(), identity: "exited_poor".into(), start_date: d("2018-01-01"), end_date: None },
        ])
        .await
        .unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_periods("poverty").await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        let facts = sqlx::query_as::<_, (String, i64, Option<i64>)>(
            "SELECT identity, start_date, end_date FROM identity_periods WHERE retracted_import IS NULL ORDER BY start_date",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(
            facts,
            vec![("registered_poor".into(), d("2016-01-01"), Some(d("2018-01-01"))), ("exited_poor".into(), d("2018-01-01"), None)]
        );
        let changes =
            sqlx::query_as::<_, (String, Option<String>, Option<String>)>("SELECT field, old_value, new_value FROM person_changes")
                .fetch_all(s.pool())
                .await
                .unwrap();
        assert_eq!(changes, vec![("name".into(), Some("甲".into()), Some("甲乙".into()))]);
        // A third roster that no longer asserts the exit: retracted, kept.
        let mut imp = s.start_import("poverty", "c.csv", "c").await.unwrap();
        imp.stage_persons(&[person("A", "甲乙", "620422100201", "H1")]).await.unwrap();
        imp.stage_periods(&[PeriodRow {
            id_no: "A".into(),
            identity: "registered_poor".into(),
            start_date: d("2016-01-01"),
            end_date: None,
        }])
        .await
        .unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_periods("poverty").await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        assert_eq!(s.count("identity_periods").await.unwrap(), 2, "nothing deleted");
        let retracted: i64 = sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM identity_periods WHERE retracted_import IS NOT NULL")
            .fetch_one(s.pool())
            .await
            .unwrap()
            .0;
        assert_eq!(retracted, 1);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn an_abandoned_import_leaves_nothing_behind() {
    for db in backends("abandon").await {
        let s = &db.store;
        let mut imp = s.start_import("death", "x.csv", "x").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.abandon().await.unwrap();
        assert_eq!(s.count("persons").await.unwrap(), 0);
        assert_eq!(s.count("imports").await.unwrap(), 0);

        db.drop_pg().await;
    }
}

#[tokio::test]
async fn enrolment_changes_make_a_new_version() {
    for db in backends("enrol").await {
        let s = &db.store;
        let e = |subsidy: i64| EnrolmentRow {
            id_no: "A".into(),
            psn_no: "N1".into(),
            year: 2018,
            status: "正常参保".into(),
            insured: true,
            insured_admdvs: "620422".into(),
            flags: 1,
            flag_date: None,
            premium_fen: 22000,
            subsidy_fen: subsidy,
            subsidy_source: None,
        };
        for (i, subsidy) in [0, 22000, 22000].into_iter().enumerate() {
            let mut imp = s.start_import("enrolment", "e.csv", &format!("e{i}")).await.unwrap();
            imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
            imp.stage_enrolments(&[e(subsidy)]).await.unwrap();
            imp.merge_persons().await.unwrap();
            imp.merge_enrolments().await.unwrap();
            imp.finish(1, 1, 0).await.unwrap();
        }
        let rows = sqlx::query_as::<_, (i64, Option<i64>)>("SELECT subsidy_fen, superseded_import FROM enrolments ORDER BY id")
            .fetch_all(s.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{:?}: {rows:?}", s.backend());
        assert_eq!(rows[0].0, 0);
        assert!(rows[0].1.is_some());
        assert_eq!(rows[1], (22000, None));
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn reconciliation_finds_the_same_classes_on_both_backends_and_tracks_resolution() {
    let mut results = Vec::new();
    for db in backends("rec").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("poverty", "p.csv", "p").await.unwrap();
        imp.stage_persons(&[
            person("P1", "甲", "620422100201", "H1"),
            person("P2", "乙", "620422100201", "H1"),
            person("P3", "丙", "620422100201", "H2"),
        ])
        .await
        .unwrap();
        let open =
            |id: &str| PeriodRow { id_no: id.into(), identity: "registered_poor".into(), start_date: d("2016-01-01"), end_date: None };
        imp.stage_periods(&[open("P1"), open("P2"), open("P3")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_periods("poverty").await.unwrap();
        imp.finish(3, 3, 0).await.unwrap();
        let mut imp = s.start_import("death", "d.csv", "d").await.unwrap();
        imp.stage_persons(&[person("P3", "丙", "620422100201", "H2")]).await.unwrap();
        imp.stage_states(&[StateRow { id_no: "P3".into(), start_date: d("2018-05-01"), end_date: None }]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_states("death").await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        let as_of = Date::parse("2018-12-31").unwrap();
        let first = s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap();
        // P1 and P2 not insured (not new: registered 2016), P3 dead still on the roster.
        let get =
            |sum: &baozhang_store::reconcile::RunSummary, c: &str| sum.by_class.iter().find(|x| x.0 == c).map(|x| (x.1, x.2, x.3)).unwrap();
        assert_eq!(get(&first, "poor_not_insured"), (2, 2, 0));
        assert_eq!(get(&first, "dead_still_counted"), (1, 1, 0));
        // P1 gets insured; the next run resolves P1, keeps P2 (persists), keeps P3.
        let mut imp = s.start_import("enrolment", "e.csv", "e").await.unwrap();
        imp.stage_persons(&[person("P1", "甲", "620422100201", "H1")]).await.unwrap();
        imp.stage_enrolments(&[EnrolmentRow {
            id_no: "P1".into(),
            psn_no: "N1".into(),
            year: 2018,
            status: "正常参保".into(),
            insured: true,
            insured_admdvs: "620422".into(),
            flags: 1,
            flag_date: Some(d("2018-02-01")),
            premium_fen: 22000,
            subsidy_fen: 22000,
            subsidy_source: None,
        }])
        .await
        .unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_enrolments().await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        let second = s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap();
        assert_eq!(get(&second, "poor_not_insured"), (1, 0, 1));
        assert_eq!(second.previous_run, Some(first.run_id));
        let resolved = s.resolved_findings(second.run_id).await.unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].id_no, "P1");
        let ind = s.enrolment_indicators(as_of).await.unwrap();
        assert_eq!((ind[0].poor, ind[0].poor_insured, ind[0].flagged), (2, 1, 1));
        assert_eq!(ind[0].flag_delay_days_sum, 762, "2016-01-01 → 2018-02-01");
        assert_eq!(second.indicators, ind, "the run's own indicators are those of the same registry");
        results.push((first.by_class.clone(), second.by_class.clone()));
        db.drop_pg().await;
    }
    assert_eq!(results[0], results[1], "SQLite and PostgreSQL disagree");
}

mod ledger_batch {
    use super::*;
    use baozhang_core::engine::{reverse, settle, Settlement};
    use baozhang_core::{Bill, Claim, Fen, HospLevel, Identity, IdentitySet, MedType, Policy};
    use baozhang_store::ledger::{self, Batch, SettlementHead, Totals};
    use baozhang_store::Tx;

    fn policy() -> Policy {
        baozhang_core::parse_policy(baozhang_core::reference::reference_source("gansu-huining-2018").unwrap()).unwrap()
    }

    fn claim(day: &str, yuan: i64) -> Claim {
        let total = Fen::yuan(yuan);
        Claim {
            site: Default::default(),
            setl_date: Date::parse(day).unwrap(),
            med_type: MedType::Inpatient,
            hosp_lv: HospLevel::new(2).unwrap(),
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill: Bill::new(total, Fen::ZERO, Fen::ZERO, Fen::ZERO, total).unwrap(),
        }
    }

    fn head(setl_id: &str, seq: i64, mdtrt_id: &str, psn_no: &str, ids: IdentitySet, policy: &Policy) -> SettlementHead {
        SettlementHead {
            setl_id: setl_id.into(),
            seq,
            reverses: None,
            msgid: format!("BATCH{mdtrt_id}"),
            mdtrt_id: mdtrt_id.into(),
            psn_no: psn_no.into(),
            id_no: format!("ID{psn_no}"),
            village_code: Some("620422100201".into()),
            fixmedins_code: "DEMO-LV2".into(),
            insuplc_admdvs: "620422".into(),
            setl_date: 20180301,
            hosp_lv: 2,
            identities: i64::from(ids.bits()),
            policy_id: policy.meta.id.clone(),
            policy_version: policy.version.clone(),
            fulamt_ownpay_amt: 0,
            overlmt_selfpay: 0,
            preselfpay_amt: 0,
            outcome_json: "[]".into(),
            opter: "batch".into(),
            claim_flags: Some(ledger::claim_flags(true, true, false)),
        }
    }

    /// Settles one claim into `batch` as batch settlement does; returns its settlement.
    async fn settle_one(
        tx: &mut Tx<'_>,
        batch: &mut Batch,
        policy: &Policy,
        seq: i64,
        (mdtrt_id, psn_no, c, ids): (&str, &str, Claim, IdentitySet),
    ) -> Settlement {
        let locked = ledger::lock_accumulators(tx, batch, psn_no, 2018).await.unwrap();
        let (s, after) = settle(policy, &c, ids, &locked.acc);
        let h = head(&ledger::setl_id_of(seq), seq, mdtrt_id, psn_no, ids, policy);
        ledger::append(batch, &h, &Totals::of(&s), &ledger::entries_of(policy, &s), &locked, &after, &policy.meta.id, policy.layers.len())
            .unwrap();
        s
    }

    fn add(t: &mut baozhang_store::registry::SettlementTotals, s: &Settlement, sign: i64) {
        t.claims += sign;
        t.medfee_fen += sign * s.medfee_sumamt.0;
        t.inscp_fen += sign * s.inscp_scp_amt.0;
        for k in 0..6 {
            t.funds_fen[k] += sign * s.funds_fen[k];
        }
        t.fund_pay_fen += sign * s.fund_pay_sumamt.0;
        t.psn_part_fen += sign * s.psn_part_amt.0;
    }

    /// Chunked batch settlement through the ledger API: numbers from the service's sequence, visits already
    /// settled found, totals from the ledger net of a cancellation, `verify` clean — on both backends.
    #[tokio::test]
    async fn batch_settlements_and_a_cancellation_add_up_in_the_ledger_totals() {
        let policy = policy();
        let poor = IdentitySet::EMPTY.with(Identity::RegisteredPoor);
        let plain = IdentitySet::EMPTY;
        for db in backends("ledger").await {
            let s = &db.store;
            let backend = s.backend();
            let mut tx = s.begin_write().await.unwrap();
            let mut batch = Batch::default();
            ledger::lock_many(&mut tx, &mut batch, &[("P1".to_string(), 2018), ("P2".to_string(), 2018)]).await.unwrap();
            let seqs = ledger::next_seqs(&mut tx, backend, &mut batch, 3).await.unwrap();
            assert_eq!(seqs.len(), 3, "{backend:?}");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{backend:?}: {seqs:?}");
            let s1 = settle_one(&mut tx, &mut batch, &policy, seqs[0], ("V1", "P1", claim("2018-03-01", 8_000), poor)).await;
            let s2 = settle_one(&mut tx, &mut batch, &policy, seqs[1], ("V2", "P1", claim("2018-05-01", 30_000), poor)).await;
            let s3 = settle_one(&mut tx, &mut batch, &policy, seqs[2], ("V3", "P2", claim("2018-04-01", 12_000), plain)).await;
            batch.flush(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            assert_ne!(s1.psn_part_amt, s2.psn_part_amt, "the second settlement ran on the first one's accumulators");

            // Cancel P1's second settlement (the last of the person-year), as the service does.
            let mut tx = s.begin_write().await.unwrap();
            let mut batch = Batch::default();
            let v2 = ledger::setl_id_of(seqs[1]);
            let locked = ledger::lock_accumulators(&mut tx, &batch, "P1", 2018).await.unwrap();
            let entries = ledger::entries_of_settlement(&mut tx, &v2).await.unwrap();
            let after = reverse(&policy, &s2, &locked.acc).unwrap();
            let seq = ledger::next_seq(&mut tx, backend, &mut batch).await.unwrap();
            assert!(seq > seqs[2], "{backend:?}");
            let mut h = head(&ledger::setl_id_of(seq), seq, "V2", "P1", poor, &policy);
            h.reverses = Some(v2.clone());
            let totals = Totals::of(&s2).negated();
            ledger::append(&mut batch, &h, &totals, &ledger::negated(&entries), &locked, &after, &policy.meta.id, policy.layers.len())
                .unwrap();
            batch.flush(&mut tx).await.unwrap();
            tx.commit().await.unwrap();

            let rep = ledger::verify(s).await.unwrap();
            assert!(rep.ok(), "{backend:?}: {:?}", rep.problems);
            assert_eq!((rep.settlements, rep.cancellations), (3, 1), "{backend:?}");

            // Totals: net of the cancellation; the poor inpatient ones are P1's.
            let mut all = baozhang_store::registry::SettlementTotals::default();
            add(&mut all, &s1, 1);
            add(&mut all, &s3, 1);
            assert_eq!(s.settlement_totals(false).await.unwrap(), all, "{backend:?}");
            let mut poor_t = baozhang_store::registry::SettlementTotals::default();
            add(&mut poor_t, &s1, 1);
            assert_eq!(s.settlement_totals(true).await.unwrap(), poor_t, "{backend:?}");
            assert_eq!(s.count("settlements").await.unwrap(), 0, "nothing writes the old batch table");

            // Visits with a settlement (cancelled or not) are the ones a re-run skips.
            let mut tx = s.begin_write().await.unwrap();
            let found = ledger::visits_settled(&mut tx, &["V1", "V2", "V3", "V4"]).await.unwrap();
            tx.rollback().await.unwrap();
            let mut found: Vec<String> = found.into_iter().collect();
            found.sort();
            assert_eq!(found, ["V1", "V2", "V3"], "{backend:?}");

            // P1's accumulators are the sum of its entries: only the first settlement's remain.
            let acc = ledger::read_accumulators(s, "P1", 2018).await.unwrap();
            let (_, expected) = settle(&policy, &claim("2018-03-01", 8_000), poor, &Default::default());
            assert_eq!(acc.acc, expected, "{backend:?}");
            assert_eq!(acc.settlements, 1, "{backend:?}");
            db.drop_pg().await;
        }
    }
}

#[tokio::test]
async fn a_persons_history_names_each_stated_field_that_changed_and_nothing_unstated() {
    for db in backends("hist").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("poverty", "a.csv", "a").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1"), person("B", "乙", "620422100201", "H1")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(2, 2, 0).await.unwrap();
        // A roster without villages or relations: A's birth date, household and person number change; B
        // is as before; C is new (no history: nothing changed).
        let mut imp = s.start_import("enrolment", "b.csv", "b").await.unwrap();
        let later = PersonRow {
            birth_date: d("1980-01-02"),
            household_no: Some("H2".into()),
            relation: None,
            village_code: None,
            psn_no: Some("P1".into()),
            ..person("A", "甲", "620422100201", "H1")
        };
        let same = PersonRow { relation: None, village_code: None, ..person("B", "乙", "620422100201", "H1") };
        imp.stage_persons(&[later, same, person("C", "丙", "620422100201", "H3")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(3, 3, 0).await.unwrap();
        let changes = sqlx::query_as::<_, (String, String, Option<String>, Option<String>)>(
            "SELECT id_no, field, old_value, new_value FROM person_changes ORDER BY id",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(
            changes,
            vec![
                ("A".into(), "birth_date".into(), Some("19800101".into()), Some("19800102".into())),
                ("A".into(), "household_no".into(), Some("H1".into()), Some("H2".into())),
                ("A".into(), "psn_no".into(), None, Some("P1".into())),
            ]
        );
        let a = s.person("A").await.unwrap().unwrap();
        assert_eq!(
            (a.village_code.as_deref(), a.household_no.as_deref()),
            (Some("620422100201"), Some("H2")),
            "the unstated village is kept"
        );
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn a_person_staged_twice_in_one_file_is_registered_once_with_the_last_row() {
    // An enrolment roster of two years states each person twice: the person is inserted once (new) or
    // changed once (registered), from the later row, and the change is logged once.
    for db in backends("twice").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("enrolment", "e.csv", "e1").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1"), person("B", "乙", "620422100201", "H1")]).await.unwrap();
        imp.stage_persons(&[person("A", "甲一", "620422100201", "H1")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(3, 3, 0).await.unwrap();
        let names =
            sqlx::query_as::<_, (String, String)>("SELECT id_no, name FROM persons ORDER BY id_no").fetch_all(s.pool()).await.unwrap();
        assert_eq!(names, [("A".to_string(), "甲一".to_string()), ("B".into(), "乙".into())], "{:?}", s.backend());
        let mut imp = s.start_import("enrolment", "e.csv", "e2").await.unwrap();
        imp.stage_persons(&[person("B", "乙二", "620422100201", "H1"), person("B", "乙三", "620422100201", "H1")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(2, 2, 0).await.unwrap();
        let changes = sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT field, old_value, new_value FROM person_changes WHERE id_no = 'B' ORDER BY id",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        assert_eq!(changes, [("name".to_string(), Some("乙".to_string()), Some("乙三".to_string()))], "{:?}", s.backend());
        let b: String = sqlx::query_scalar("SELECT name FROM persons WHERE id_no = 'B'").fetch_one(s.pool()).await.unwrap();
        assert_eq!(b, "乙三");
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn a_first_import_into_empty_tables_leaves_every_index_in_place() {
    // SQLite drops an empty table's secondary indexes for a bulk insert and makes them again; an import
    // that is abandoned, or finished without a merge, leaves them as they were.
    for db in backends("idx").await {
        let s = &db.store;
        regions(s).await;
        let sql = match s.backend() {
            baozhang_store::Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('persons', 'enrolments') AND sql IS NOT NULL ORDER BY name"
            }
            baozhang_store::Backend::Postgres => "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE tablename IN ('persons', 'enrolments') ORDER BY 1",
        };
        let indexes = || async { sqlx::query_scalar::<_, String>(sql).fetch_all(s.pool()).await.unwrap() };
        let before = indexes().await;
        assert!(before.iter().any(|n| n == "enrolments_psn") && before.iter().any(|n| n == "persons_village"), "{before:?}");
        let e = EnrolmentRow {
            id_no: "A".into(),
            psn_no: "P-A".into(),
            year: 2018,
            status: "正常参保".into(),
            insured: true,
            insured_admdvs: "620422".into(),
            flags: 1,
            flag_date: None,
            premium_fen: 22000,
            subsidy_fen: 0,
            subsidy_source: None,
        };
        let mut imp = s.start_import("enrolment", "e.csv", "abandoned").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
        imp.stage_enrolments(std::slice::from_ref(&e)).await.unwrap();
        imp.abandon().await.unwrap();
        assert_eq!(indexes().await, before, "{:?}: abandoned", s.backend());
        let mut imp = s.start_import("enrolment", "e.csv", "unmerged").await.unwrap();
        imp.stage_enrolments(std::slice::from_ref(&e)).await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        assert_eq!(indexes().await, before, "{:?}: finished without a merge", s.backend());
        sqlx::query("DELETE FROM enrolments").execute(s.pool()).await.unwrap();
        let mut imp = s.start_import("enrolment", "e.csv", "merged").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1")]).await.unwrap();
        imp.stage_enrolments(std::slice::from_ref(&e)).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_enrolments().await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        assert_eq!(indexes().await, before, "{:?}: merged", s.backend());
        // More persons staged than registered: the same on a table that is not empty.
        let mut imp = s.start_import("dibao", "d.csv", "more").await.unwrap();
        imp.stage_persons(&[person("B", "乙", "620422100201", "H2"), person("C", "丙", "620422100201", "H2")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(2, 2, 0).await.unwrap();
        assert_eq!(indexes().await, before, "{:?}: more than registered", s.backend());
        let h2: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE household_no = 'H2'").fetch_one(s.pool()).await.unwrap();
        assert_eq!(h2, 2);
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM persons p JOIN enrolments e ON e.id_no = p.id_no WHERE p.village_code = '620422100201'",
        )
        .fetch_one(s.pool())
        .await
        .unwrap();
        assert_eq!(n, 1);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn tables_that_changed_are_analysed_once_on_postgresql_and_never_on_sqlite() {
    for db in backends("stats").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("dibao", "x.csv", "many").await.unwrap();
        let rows: Vec<PersonRow> = (0..2_000).map(|i| person(&format!("S{i:05}"), "甲", "620422100201", "H1")).collect();
        imp.stage_persons(&rows).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.finish(2_000, 2_000, 0).await.unwrap();
        let first = s.analyze_changed(500).await.unwrap();
        match s.backend() {
            baozhang_store::Backend::Sqlite => assert!(first.is_empty()),
            baozhang_store::Backend::Postgres => {
                // A backend reports its counters when idle, at most every second, else within ten.
                let mut first = first;
                for _ in 0..150 {
                    if first.iter().any(|t| t == "persons") {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    first.extend(s.analyze_changed(500).await.unwrap());
                }
                assert!(first.iter().any(|t| t == "persons"), "{first:?}");
                assert!(!first.iter().any(|t| t == "regions"), "a few changed rows are left to the next time: {first:?}");
                let again = s.analyze_changed(500).await.unwrap();
                assert!(!again.iter().any(|t| t == "persons"), "analysed once: {again:?}");
            }
        }
        db.drop_pg().await;
    }
}

/// PostgreSQL partitions the yearly tables by year and prefecture (migration 0018): an import's year goes
/// straight to its partition, a person insured elsewhere to the year's "other" partition, a visit of a
/// year without a partition waits in the default one until the partitions are maintained, a visit id
/// stays unique across partitions, and a detached year leaves the others. SQLite keeps plain tables and
/// refuses to detach.
#[tokio::test]
async fn yearly_tables_are_partitioned_by_year_and_prefecture_on_postgresql_and_plain_on_sqlite() {
    use baozhang_store::service::{self, Mdtrt};
    for db in backends("parts").await {
        let s = &db.store;
        regions(s).await;
        let e = |id: &str, year: i64, admdvs: &str| EnrolmentRow {
            id_no: id.into(),
            psn_no: format!("N{id}"),
            year,
            status: "正常参保".into(),
            insured: true,
            insured_admdvs: admdvs.into(),
            flags: 0,
            flag_date: None,
            premium_fen: 22000,
            subsidy_fen: 0,
            subsidy_source: None,
        };
        let mut imp = s.start_import("enrolment", "e.csv", "parts").await.unwrap();
        imp.stage_persons(&[person("A", "甲", "620422100201", "H1"), person("B", "乙", "620422100201", "H1")]).await.unwrap();
        imp.stage_enrolments(&[e("A", 2018, "620422"), e("B", 2018, "510100"), e("A", 2019, "620422")]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_enrolments().await.unwrap();
        imp.finish(3, 3, 0).await.unwrap();

        let visit = |id: &str, begn: i64| Mdtrt {
            mdtrt_id: id.into(),
            psn_no: "NA".into(),
            id_no: "A".into(),
            fixmedins_code: "H001".into(),
            med_type: 21,
            begn_date: begn,
            insuplc_admdvs: "620422".into(),
            referral_ok: false,
            major_disease: false,
            status: "open".into(),
            setl_id: None,
            end_date: None,
            ipt_otp_no: "ZY1".into(),
        };
        let mut c = s.pool().acquire().await.unwrap();
        assert!(service::insert_mdtrt(&mut c, &visit("V1", 20410305)).await.unwrap());
        // The same id again, even with another date (another partition), is refused.
        assert!(!service::insert_mdtrt(&mut c, &visit("V1", 20180305)).await.unwrap());
        drop(c);
        let where_is = |t: &'static str| async move {
            sqlx::query_as::<_, (String, i64)>(&format!("SELECT CAST(tableoid::regclass AS TEXT), COUNT(*) FROM {t} GROUP BY 1 ORDER BY 1"))
                .fetch_all(s.pool())
                .await
                .unwrap()
        };
        match s.backend() {
            baozhang_store::Backend::Postgres => {
                assert_eq!(
                    where_is("enrolments").await,
                    [("enrolments_y2018_other".into(), 1), ("enrolments_y2018_p6204".into(), 1), ("enrolments_y2019_p6204".into(), 1)]
                );
                assert_eq!(where_is("mdtrts").await, [("mdtrts_default".to_string(), 1)]);
                assert_eq!(s.maintain_partitions().await.unwrap(), 1, "the 2041 visit moves to its partition");
                assert_eq!(where_is("mdtrts").await, [("mdtrts_y2041_p6204".to_string(), 1)]);
                assert_eq!(s.maintain_partitions().await.unwrap(), 0, "nothing left to move");
                let parts = s.partitions().await.unwrap();
                let leaf = parts.iter().find(|p| p.name == "enrolments_y2018_p6204").expect("listed");
                assert_eq!((leaf.depth, leaf.rows, leaf.partitioned), (2, 1, false));
                assert!(leaf.bound.contains("6204") && leaf.bound.contains("6205"), "{}", leaf.bound);
                assert!(parts.iter().any(|p| p.name == "ledger_entries_y2041" && p.partitioned));
                let archived = s.detach_year(2018).await.unwrap();
                assert!(archived.contains(&"archive_enrolments_y2018".to_string()), "{archived:?}");
                assert_eq!(where_is("enrolments").await, [("enrolments_y2019_p6204".to_string(), 1)]);
                let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM archive_enrolments_y2018").fetch_one(s.pool()).await.unwrap();
                assert_eq!(kept, 2);
                assert!(s.detach_year(2018).await.unwrap().is_empty(), "a year detached already is not there");
            }
            baozhang_store::Backend::Sqlite => {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrolments").fetch_one(s.pool()).await.unwrap();
                assert_eq!(n, 3);
                assert!(s.partitions().await.unwrap().is_empty());
                assert_eq!(s.maintain_partitions().await.unwrap(), 0);
                assert!(s.detach_year(2018).await.is_err());
            }
        }
        db.drop_pg().await;
    }
}

/// The reconciliation's snapshot read gives text back exactly as stored, whatever it holds: on
/// PostgreSQL it comes as `COPY` text, where tabs, newlines and backslashes are escaped.
#[tokio::test]
async fn the_registry_read_keeps_separators_and_backslashes_in_text() {
    let odd = "H\t1\\2\n3\r测\u{3000}";
    for db in backends("recodd").await {
        let s = &db.store;
        regions(s).await;
        let mut imp = s.start_import("poverty", "p.csv", "p").await.unwrap();
        imp.stage_persons(&[person("P1", "甲", "620422100201", odd)]).await.unwrap();
        let open = PeriodRow { id_no: "P1".into(), identity: "registered_poor".into(), start_date: d("2016-01-01"), end_date: None };
        imp.stage_periods(&[open]).await.unwrap();
        imp.merge_persons().await.unwrap();
        imp.merge_periods("poverty").await.unwrap();
        imp.add_conflicts("poverty", &[("P1".into(), None, format!("两户：{odd} / H2"))]).await.unwrap();
        imp.finish(1, 1, 0).await.unwrap();
        let as_of = Date::parse("2018-12-31").unwrap();
        let run = s.reconcile(&ReconcileParams { as_of: Some(as_of), ..Default::default() }).await.unwrap();
        let found = s.findings(run.run_id, None).await.unwrap();
        assert!(!found.is_empty(), "{:?}", s.backend());
        for f in &found {
            assert_eq!(f.household_no.as_deref(), Some(odd), "{:?} {}", s.backend(), f.class);
        }
        let dup = found.iter().find(|f| f.class == "duplicate_person").expect("the conflict is a duplicate");
        assert!(dup.detail.as_deref().unwrap_or("").contains(&format!("两户：{odd} / H2")), "{:?}: {:?}", s.backend(), dup.detail);
        db.drop_pg().await;
    }
}
