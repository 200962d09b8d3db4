//! Files of the national interface and the centre's reconciliation figures on SQLite and PostgreSQL:
//! a file is stored and read back only by its institution and pruned when expired; settlement lists keep
//! their versions; the centre's totals and rows over a ledger written through the public ledger API
//! (settlements, a re-settlement adjustment, cancellations), net of cancellations.

use baozhang_core::engine::Accumulators;
use baozhang_store::files::{self, Direction, ExchangeFile, NewSettlementList};
use baozhang_store::ledger::{self, AdjustmentHead, Batch, Entry, SettlementHead, Totals};
use baozhang_store::{Store, StoreError};

mod common;
use common::backends;

const H1: &str = "H620422001";
const H2: &str = "H620422002";

#[tokio::test]
async fn a_file_is_read_back_only_by_its_institution_and_pruned_when_expired() {
    for db in backends("files").await {
        let s = &db.store;
        // Every byte value, NULs included: the content goes through as bytes on both backends.
        let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let up = ExchangeFile::new("FQ1", H1, "detail.txt.zip", Direction::Up, content.clone(), 1_000);
        let down = ExchangeFile::new("FQ2", H1, "result.txt.zip", Direction::Down, b"PK\x05\x06".to_vec(), 2_000);
        let mut tx = s.begin_write().await.unwrap();
        files::insert_file(&mut tx, &up).await.unwrap();
        files::insert_file(&mut tx, &down).await.unwrap();
        tx.commit().await.unwrap();

        let got = s.file("FQ1", H1).await.unwrap().expect("own file");
        assert_eq!(got, up, "{:?}", s.backend());
        assert_eq!(got.content, content);
        assert_eq!(got.size(), 70_000);
        assert_eq!(got.sha256, files::sha256_hex(&content));
        assert_eq!(s.file("FQ2", H1).await.unwrap().unwrap().direction, Direction::Down);
        // Another institution does not find it, nor does a wrong number.
        assert_eq!(s.file("FQ1", H2).await.unwrap(), None);
        assert_eq!(s.file("FQ9", H1).await.unwrap(), None);

        // A number taken is a conflict.
        let mut tx = s.begin_write().await.unwrap();
        let again = ExchangeFile::new("FQ1", H2, "x.zip", Direction::Up, vec![1], 3_000);
        assert!(matches!(files::insert_file(&mut tx, &again).await, Err(StoreError::Conflict(_))));
        tx.rollback().await.unwrap();

        // Pruning: what expired at `now` goes, the rest stays.
        assert_eq!(s.prune_files(999).await.unwrap(), 0);
        assert_eq!(s.prune_files(1_000).await.unwrap(), 1);
        assert_eq!(s.file("FQ1", H1).await.unwrap(), None);
        assert!(s.file("FQ2", H1).await.unwrap().is_some());
        assert_eq!(s.prune_files(5_000).await.unwrap(), 1);
        assert_eq!(s.count("exchange_files").await.unwrap(), 0);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn settlement_lists_keep_every_version_and_the_latest_counts() {
    for db in backends("setllist").await {
        let s = &db.store;
        let list = |code: &'static str, body: &'static str, msgid: &'static str| NewSettlementList {
            fixmedins_code: code,
            setl_id: "S1",
            mdtrt_id: "V1",
            psn_no: "P1",
            msgid,
            body,
        };
        let mut tx = s.begin_write().await.unwrap();
        let v1 = files::insert_settlement_list(&mut tx, &list(H1, r#"{"setlinfo":{"a":1}}"#, "M1")).await.unwrap();
        assert_eq!((v1.version, v1.added), (1, true));
        // The same body again writes nothing.
        let same = files::insert_settlement_list(&mut tx, &list(H1, r#"{"setlinfo":{"a":1}}"#, "M2")).await.unwrap();
        assert_eq!((same.version, same.added), (1, false));
        let v2 = files::insert_settlement_list(&mut tx, &list(H1, r#"{"setlinfo":{"a":2}}"#, "M3")).await.unwrap();
        assert_eq!((v2.version, v2.added), (2, true));
        // Another institution's list of a settlement with the same id is its own.
        let other = files::insert_settlement_list(&mut tx, &list(H2, r#"{"setlinfo":{"b":1}}"#, "M4")).await.unwrap();
        assert_eq!(other.version, 1);
        let s2 = NewSettlementList { setl_id: "S2", ..list(H1, "{}", "M5") };
        files::insert_settlement_list(&mut tx, &s2).await.unwrap();
        tx.commit().await.unwrap();

        let h1 = s.settlement_lists(Some(H1), 100).await.unwrap();
        assert_eq!(h1.iter().map(|l| (l.setl_id.as_str(), l.version)).collect::<Vec<_>>(), vec![("S2", 1), ("S1", 2)]);
        assert_eq!(h1[1].body, r#"{"setlinfo":{"a":2}}"#);
        assert_eq!(h1[1].msgid, "M3");
        assert_eq!(s.settlement_lists(None, 100).await.unwrap().len(), 3);
        assert_eq!(s.settlement_lists(Some(H1), 1).await.unwrap().len(), 1);
        let history = s.settlement_list_versions(H1, "S1").await.unwrap();
        assert_eq!(history.iter().map(|l| (l.version, l.msgid.as_str())).collect::<Vec<_>>(), vec![(1, "M1"), (2, "M3")]);
        assert_eq!(s.settlement_list(H1, "S1").await.unwrap().unwrap().version, 2);
        assert_eq!(s.settlement_list(H2, "S1").await.unwrap().unwrap().body, r#"{"setlinfo":{"b":1}}"#);
        assert_eq!(s.settlement_list(H2, "S2").await.unwrap(), None);
        assert_eq!(s.count("settlement_lists").await.unwrap(), 4);
        db.drop_pg().await;
    }
}

/// A settlement's entries: the fund's part on layer 0, the personal part last.
fn entries(fund: i64, psn: i64) -> Vec<Entry> {
    let e = |layer: i64, fund_code: &str, amount_fen: i64| Entry {
        layer,
        fund: fund_code.into(),
        amount_fen,
        outpatient_fen: 0,
        base_delta_fen: 0,
        personal_delta_fen: 0,
        stay_level: -1,
        stay_delta: 0,
    };
    vec![e(0, "390100", fund), e(-1, ledger::PERSONAL_FUND, psn)]
}

/// Appends a settlement (or, with `reverses`, a cancellation) through the ledger API, as the writer does.
async fn write(
    s: &Store,
    fixmedins: &str,
    psn_no: &str,
    setl_date: i64,
    reverses: Option<&str>,
    totals: &Totals,
    entries: &[Entry],
) -> String {
    let mut tx = s.begin_write().await.unwrap();
    let mut batch = Batch::default();
    let locked = ledger::lock_accumulators(&mut tx, &batch, psn_no, totals.year).await.unwrap();
    let mut after: Accumulators = locked.acc;
    ledger::apply_entries(&mut after, entries);
    let seq = ledger::next_seq(&mut tx, s.backend(), &mut batch).await.unwrap();
    let setl_id = ledger::setl_id_of(seq);
    let head = SettlementHead {
        setl_id: setl_id.clone(),
        seq,
        reverses: reverses.map(str::to_string),
        msgid: format!("MSG{seq}"),
        mdtrt_id: format!("V{}", reverses.unwrap_or(&setl_id)),
        psn_no: psn_no.into(),
        id_no: format!("ID{psn_no}"),
        village_code: None,
        fixmedins_code: fixmedins.into(),
        insuplc_admdvs: "620422".into(),
        setl_date,
        hosp_lv: 1,
        identities: 0,
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

async fn settle(s: &Store, fixmedins: &str, psn_no: &str, setl_date: i64, med_type: i64, medfee: i64, fund: i64) -> String {
    let psn = medfee - fund;
    let totals = Totals {
        year: (setl_date / 10_000) as u16,
        med_type,
        medfee_sumamt: medfee,
        inscp_scp_amt: medfee,
        act_pay_dedc: 0,
        fund_pay_sumamt: fund,
        hosp_part_amt: 0,
        psn_part_amt: psn,
    };
    write(s, fixmedins, psn_no, setl_date, None, &totals, &entries(fund, psn)).await
}

/// Cancels a settlement as the server does: the negation of its effective totals and entries (its row
/// and adjustments), on `setl_date`.
async fn cancel(s: &Store, setl_id: &str, setl_date: i64) -> String {
    let orig = s.settlement(setl_id).await.unwrap().expect("settlement");
    let mut c = s.pool().acquire().await.unwrap();
    let totals = ledger::effective_totals(&mut c, &orig).await.unwrap().negated();
    let entries = ledger::negated(&ledger::effective_entries(&mut c, setl_id).await.unwrap());
    drop(c);
    write(s, &orig.fixmedins_code, &orig.psn_no, setl_date, Some(setl_id), &totals, &entries).await
}

/// A re-settlement adjustment moving `delta` fen from the personal part to the fund.
async fn adjust(s: &Store, setl_id: &str, delta: i64) {
    let orig = s.settlement(setl_id).await.unwrap().expect("settlement");
    let year = orig.year as u16;
    let adj_entries =
        vec![Entry { amount_fen: delta, ..entries(0, 0)[0].clone() }, Entry { amount_fen: -delta, ..entries(0, 0)[1].clone() }];
    let (funds_fen, fund_pay, hosp, psn) = ledger::entry_money(&adj_entries);
    let mut tx = s.begin_write().await.unwrap();
    let mut batch = Batch::default();
    let locked = ledger::lock_accumulators(&mut tx, &batch, &orig.psn_no, year).await.unwrap();
    let mut acc = locked.acc;
    ledger::apply_entries(&mut acc, &adj_entries);
    let head = AdjustmentHead {
        adj_id: ledger::adj_id_of(1, setl_id),
        run_id: 1,
        setl_id: setl_id.into(),
        psn_no: orig.psn_no.clone(),
        year,
        mdtrt_id: orig.mdtrt_id.clone(),
        id_no: orig.id_no.clone(),
        village_code: None,
        fixmedins_code: orig.fixmedins_code.clone(),
        insuplc_admdvs: orig.insuplc_admdvs.clone(),
        setl_date: orig.setl_date,
        reason: "late_identity".into(),
        identities: 0,
        policy_id: "test".into(),
        policy_version: "v1".into(),
        funds_fen,
        act_pay_dedc: 0,
        fund_pay_sumamt: fund_pay,
        hosp_part_amt: hosp,
        psn_part_amt: psn,
        outcome_json: "[]".into(),
        opter: "test".into(),
    };
    ledger::append_adjustment(&mut batch, &head, &adj_entries).unwrap();
    ledger::set_accumulators(&mut batch, &orig.psn_no, year, &locked, &acc, "test", 12);
    batch.flush(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn centre_totals_and_rows_are_net_of_cancellations_with_adjustments() {
    for db in backends("centre").await {
        let s = &db.store;
        // H1 in March 2024: A outpatient (100 yuan, fund 60); B inpatient (1,000 yuan, fund 700, then
        // re-settled: fund +50); C (200 yuan, fund 100) cancelled on the 3rd.
        let a = settle(s, H1, "PA", 20240301, 11, 10_000, 6_000).await;
        let b = settle(s, H1, "PB", 20240302, 21, 100_000, 70_000).await;
        adjust(s, &b, 5_000).await;
        let c = settle(s, H1, "PC", 20240302, 11, 20_000, 10_000).await;
        let c_cancel = cancel(s, &c, 20240303).await;
        // Not counted: another institution, another month.
        settle(s, H2, "PD", 20240302, 11, 50_000, 40_000).await;
        settle(s, H1, "PE", 20240401, 11, 30_000, 20_000).await;

        let t = s.centre_totals(H1, 20240301, 20240331, None).await.unwrap();
        assert_eq!((t.count, t.settled, t.cancelled), (2, 3, 1), "{:?}", s.backend());
        assert_eq!(t.medfee_sumamt, 10_000 + 100_000 + 20_000 - 20_000);
        assert_eq!(t.fund_pay_sumamt, 6_000 + 75_000 + 10_000 - 10_000);
        assert_eq!(t.psn_part_amt, 4_000 + 25_000 + 10_000 - 10_000);
        assert_eq!((t.acct_pay, t.hosp_part_amt), (0, 0));
        assert_eq!(t.fund_pay_sumamt + t.hosp_part_amt + t.psn_part_amt, t.medfee_sumamt);
        // One med_type (clr_type): the inpatient B only, with its adjustment.
        let inpatient = s.centre_totals(H1, 20240301, 20240331, Some(21)).await.unwrap();
        assert_eq!((inpatient.count, inpatient.medfee_sumamt, inpatient.fund_pay_sumamt), (1, 100_000, 75_000));
        // Up to the 2nd, C is not yet cancelled.
        let early = s.centre_totals(H1, 20240301, 20240302, None).await.unwrap();
        assert_eq!((early.count, early.cancelled, early.medfee_sumamt), (3, 0, 130_000));
        // A day without settlements.
        assert_eq!(s.centre_totals(H1, 20240310, 20240310, None).await.unwrap(), Default::default());

        let rows = s.centre_rows(H1, 20240301, 20240331, None, 100).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.setl_id.as_str()).collect();
        assert_eq!(ids, vec![a.as_str(), b.as_str(), c.as_str(), c_cancel.as_str()]);
        let rb = &rows[1];
        assert_eq!((rb.medfee_sumamt, rb.fund_pay_sumamt, rb.psn_part_amt, rb.med_type), (100_000, 75_000, 25_000, 21));
        assert!(!rb.refd_setl_flag());
        let rc = &rows[3];
        assert!(rc.refd_setl_flag());
        assert_eq!(rc.reverses.as_deref(), Some(c.as_str()));
        assert_eq!((rc.medfee_sumamt, rc.fund_pay_sumamt, rc.setl_date), (-20_000, -10_000, 20240303));
        assert!(rc.msgid.starts_with("MSG"));
        assert_eq!(rows.iter().map(|r| r.medfee_sumamt).sum::<i64>(), t.medfee_sumamt);
        assert_eq!(s.centre_rows(H1, 20240301, 20240331, None, 2).await.unwrap().len(), 2);
        assert_eq!(s.centre_rows(H1, 20240301, 20240331, Some(21), 100).await.unwrap().len(), 1);

        // B cancelled after its adjustment: the cancellation negates the effective amounts, so March nets
        // to A alone.
        let b_cancel = cancel(s, &b, 20240305).await;
        let t = s.centre_totals(H1, 20240301, 20240331, None).await.unwrap();
        assert_eq!((t.count, t.settled, t.cancelled), (1, 3, 2));
        assert_eq!((t.medfee_sumamt, t.fund_pay_sumamt, t.psn_part_amt), (10_000, 6_000, 4_000));
        let rows = s.centre_rows(H1, 20240305, 20240305, None, 100).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].setl_id.as_str(), rows[0].fund_pay_sumamt, rows[0].psn_part_amt), (b_cancel.as_str(), -75_000, -25_000));
        db.drop_pg().await;
    }
}
