//! The fee-line path: 2301 uploads (explicit four parts, or classified by chrgitm_lv), the settlement
//! checked against their sum, re-uploads, and uploads around settlement and cancellation.

mod common;

use baozhang_server::testkit::{NatClient, SeedPerson};
use baozhang_store::ledger;
use common::{assert_ledger_ok, ok, refused, spawn_app, BACKENDS};
use serde_json::{json, Value};

fn line(p: &SeedPerson, mdtrt: &str, sn: &str, total: &str, extra: Value) -> Value {
    let mut l = json!({"feedetl_sn": sn, "mdtrt_id": mdtrt, "psn_no": p.psn_no, "det_item_fee_sumamt": total,
        "med_list_codg": "XA01", "fee_ocur_time": "2018-06-01 09:00:00"});
    for (k, v) in extra.as_object().unwrap() {
        l[k] = v.clone();
    }
    l
}

/// The 2304 input stating only the total (the parts come from the uploaded lines).
fn settle_total(p: &SeedPerson, mdtrt: &str, total: &str) -> Value {
    json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "insutype": "390",
        "medfee_sumamt": total}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploaded_fee_lines_are_what_gets_settled() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let lines = vec![
            // Explicit four parts.
            line(
                p,
                &mdtrt,
                "L1",
                "1000.00",
                json!({"fulamt_ownpay_amt": "100.00", "overlmt_amt": "50.00", "preselfpay_amt": "50.00", "inscp_scp_amt": "800.00"}),
            ),
            // 甲类: all compliant.
            line(p, &mdtrt, "L2", "2000.00", json!({"chrgitm_lv": "01"})),
            // 乙类 with 10% self-pay first: 333.33 → 33.33 self-pay (rounded half away), 300.00 compliant.
            line(p, &mdtrt, "L3", "333.33", json!({"chrgitm_lv": "02", "selfpay_prop": "0.1"})),
            // 乙类, proportion as a number, 15% of 66.67 = 10.0005 → 10.00.
            line(p, &mdtrt, "L4", "66.67", json!({"chrgitm_lv": "02", "selfpay_prop": 0.15})),
            // 丙类: all own pay.
            line(p, &mdtrt, "L5", "500.00", json!({"chrgitm_lv": "03"})),
        ];
        let up = h.call("2301", json!({"feedetail": lines.clone()})).await.unwrap();
        ok(&up);
        let res = up["output"]["result"].as_array().unwrap();
        assert_eq!(res.len(), 5, "{db:?}: {up}");
        let by_sn = |sn: &str| res.iter().find(|r| r["feedetl_sn"] == sn).unwrap().clone();
        assert_eq!(by_sn("L2")["inscp_scp_amt"].to_string(), "2000.00");
        assert_eq!(by_sn("L2")["chrgitm_lv"], "01");
        assert_eq!(by_sn("L3")["preselfpay_amt"].to_string(), "33.33", "{db:?}: {up}");
        assert_eq!(by_sn("L3")["inscp_scp_amt"].to_string(), "300.00");
        assert_eq!(by_sn("L3")["chrgitm_lv"], "02");
        assert_eq!(by_sn("L4")["preselfpay_amt"].to_string(), "10.00", "{db:?}: {up}");
        assert_eq!(by_sn("L5")["fulamt_ownpay_amt"].to_string(), "500.00");
        assert_eq!(by_sn("L5")["chrgitm_lv"], "03");
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 5);
        // Sum: 3900.00 = own pay 600.00 + over limit 50.00 + self-pay first 93.33 + compliant 3156.67.
        let total = "3900.00";

        // The same lines again: a no-op success.
        ok(&h.call("2301", json!({"feedetail": [lines[0].clone(), lines[2].clone()]})).await.unwrap());
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 5, "{db:?}: re-upload added lines");
        // A known line with other amounts: refused, nothing changes (not even the new line beside it).
        let changed = line(p, &mdtrt, "L2", "2000.01", json!({"chrgitm_lv": "01"}));
        let fresh = line(p, &mdtrt, "L9", "1.00", json!({"chrgitm_lv": "01"}));
        let r = h.call("2301", json!({"feedetail": [fresh, changed]})).await.unwrap();
        assert!(refused(&r).contains("L2"), "{db:?}: {r}");
        let reclassified = line(p, &mdtrt, "L1", "1000.00", json!({"chrgitm_lv": "01"}));
        refused(&h.call("2301", json!({"feedetail": [reclassified]})).await.unwrap());
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 5, "{db:?}");

        // The settlement must state the lines' total (and, if it states parts, theirs).
        for wrong in ["3900.01", "3899.99", "0.00"] {
            let r = h.call("2304", settle_total(p, &mdtrt, wrong)).await.unwrap();
            assert!(refused(&r).contains("不符"), "{db:?}: {wrong}: {r}");
        }
        let r = h.call("2304", NatClient::settle_input(p, &mdtrt, total, "600.00", "50.00", "93.33", "3156.67")).await.unwrap();
        ok(&r);
        let first = r["output"]["setlinfo"].clone();
        // … which is what a settlement stating the right parts gives.
        assert_eq!(first["medfee_sumamt"].to_string(), total);
        assert_eq!(first["fulamt_ownpay_amt"].to_string(), "600.00");
        assert_eq!(first["overlmt_selfpay"].to_string(), "50.00");
        assert_eq!(first["preselfpay_amt"].to_string(), "93.33");
        assert_eq!(first["inscp_scp_amt"].to_string(), "3156.67");
        let setl_id = first["setl_id"].as_str().unwrap().to_string();
        let stored = app.store.settlement(&setl_id).await.unwrap().unwrap();
        assert_eq!(
            (stored.medfee_sumamt, stored.fulamt_ownpay_amt, stored.overlmt_selfpay, stored.preselfpay_amt, stored.inscp_scp_amt),
            (390_000, 60_000, 5_000, 9_333, 315_667),
            "{db:?}"
        );

        // Settled: no more uploads, not even of known lines.
        let r = h.call("2301", json!({"feedetail": [line(p, &mdtrt, "L6", "10.00", json!({"chrgitm_lv": "01"}))]})).await.unwrap();
        assert!(refused(&r).contains("已结算"), "{db:?}: {r}");
        refused(&h.call("2301", json!({"feedetail": [lines[0].clone()]})).await.unwrap());
        // Nor a pre-settlement: it would compute a second settlement on top of the first.
        let r = h.call("2303", settle_total(p, &mdtrt, total)).await.unwrap();
        assert!(refused(&r).contains("已结算"), "{db:?}: {r}");

        // Cancel, then settle again: the same amounts, a new settlement, a consistent ledger.
        let c = h.call("2305", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        ok(&c);
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(acc.acc, baozhang_core::Accumulators::default(), "{db:?}: the cancellation undid the settlement");
        let again = h.call("2304", settle_total(p, &mdtrt, total)).await.unwrap();
        ok(&again);
        let s2 = &again["output"]["setlinfo"];
        assert_ne!(s2["setl_id"], first["setl_id"]);
        for k in ["medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt", "hifp_pay", "hifmi_pay", "maf_pay", "oth_pay"] {
            assert_eq!(s2[k].to_string(), first[k].to_string(), "{db:?}: {k}");
        }
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (2, 1));

        // After cancelling again, more lines may be added, and the next settlement covers them.
        let setl_2 = s2["setl_id"].as_str().unwrap().to_string();
        ok(&h.call("2305", json!({"data": {"setl_id": setl_2, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap());
        ok(&h.call("2301", json!({"feedetail": [line(p, &mdtrt, "L6", "100.00", json!({"chrgitm_lv": "01"}))]})).await.unwrap());
        refused(&h.call("2304", settle_total(p, &mdtrt, total)).await.unwrap());
        let third = h.call("2304", settle_total(p, &mdtrt, "4000.00")).await.unwrap();
        ok(&third);
        assert_eq!(third["output"]["setlinfo"]["inscp_scp_amt"].to_string(), "3256.67");
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (3, 2));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fee_lines_of_another_visit_or_person_are_refused() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let (p, q) = (&app.people[0], &app.people[2]);
        let m1 = h.admit(p, "2018-06-01").await.unwrap();
        let m2 = h.admit(q, "2018-06-01").await.unwrap();
        // Lines of two visits in one upload.
        let r = h
            .call("2301", json!({"feedetail": [line(p, &m1, "A", "1.00", json!({"chrgitm_lv": "01"})), line(q, &m2, "B", "1.00", json!({"chrgitm_lv": "01"}))]}))
            .await
            .unwrap();
        refused(&r);
        // The visit of one person under another's psn_no.
        refused(&h.call("2301", json!({"feedetail": [line(q, &m1, "A", "1.00", json!({"chrgitm_lv": "01"}))]})).await.unwrap());
        // A visit that does not exist.
        let r = h.call("2301", json!({"feedetail": [line(p, "MDNOSUCH", "A", "1.00", json!({"chrgitm_lv": "01"}))]})).await.unwrap();
        assert!(refused(&r).contains("不存在"), "{db:?}: {r}");
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 0);
        // Nothing uploaded and no parts stated: nothing to settle.
        let r = h.call("2304", settle_total(p, &m1, "100.00")).await.unwrap();
        refused(&r);
        app.stop().await;
    }
}
