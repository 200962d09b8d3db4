//! Institutions act only on their own visits: another hospital can neither pre-settle, settle, upload
//! fees to, nor cancel them, nor borrow the first hospital's sign-in or name.

mod common;

use baozhang_server::testkit::NatClient;
use baozhang_store::ledger;
use common::{all_settlements, assert_ledger_ok, ok, parse_resp, refused, spawn_app, BACKENDS};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_hospital_cannot_touch_the_first_hospitals_visit() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h1 = &app.hospital;
        let h2 = app.other_hospital("H62042200002").await;
        let p = &app.people[0];
        let mdtrt = h1.admit(p, "2018-06-01").await.unwrap();
        let input = NatClient::settle_input(p, &mdtrt, "8000.00", "300.00", "0", "200.00", "7500.00");

        let r = h2.call("2303", input.clone()).await.unwrap();
        assert!(refused(&r).contains("不属于本机构"), "{db:?}: {r}");
        let r = h2.call("2304", input.clone()).await.unwrap();
        assert!(refused(&r).contains("不属于本机构"), "{db:?}: {r}");
        let line = json!({"feedetl_sn": "X1", "mdtrt_id": mdtrt, "psn_no": p.psn_no, "det_item_fee_sumamt": "10.00", "chrgitm_lv": "01"});
        let r = h2.call("2301", json!({"feedetail": [line]})).await.unwrap();
        assert!(refused(&r).contains("不属于本机构"), "{db:?}: {r}");
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 0, "{db:?}");
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 0, "{db:?}");

        // The owner settles; the other hospital cannot cancel it, with or without the right ids.
        let done = h1.call("2304", input.clone()).await.unwrap();
        ok(&done);
        let setl_id = done["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string();
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        let r = h2.call("2305", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        assert!(refused(&r).contains("不属于本机构"), "{db:?}: {r}");
        let r = h2.call("2303", input.clone()).await.unwrap();
        refused(&r);

        // Nor act as the first hospital: with its sign_no, or under its name with its own key.
        let mut borrowed = h2.clone();
        borrowed.sign_no = h1.sign_no.clone();
        let r = borrowed.call("2303", input.clone()).await.unwrap();
        assert!(refused(&r).contains("签到"), "{db:?}: {r}");
        let mut impostor = NatClient::new(&app.base, &h1.fixmedins_code, &h2.secret);
        impostor.sign_no = h1.sign_no.clone();
        let r = impostor.call("2305", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        assert!(refused(&r).contains("签名"), "{db:?}: {r}");
        // Its own sign-in under the first hospital's name in the message is refused too.
        let mut mixed = h2.clone();
        mixed.fixmedins_code = h1.fixmedins_code.clone();
        let body = serde_json::to_vec(&mixed.envelope("2303", &h2.next_msgid(), input.clone())).unwrap();
        let text = h2.post_raw(body).await.unwrap();
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");

        let after = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(after.acc, acc.acc, "{db:?}");
        let all = all_settlements(&app.store).await;
        assert_eq!(all.len(), 1, "{db:?}");
        assert_eq!(all[0].fixmedins_code, h1.fixmedins_code);

        // The owner still can cancel.
        let r = h1.call("2305", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        ok(&r);
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (1, 1));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hospital_cannot_admit_a_person_under_someone_elses_certificate() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let (a, b) = (&app.people[0], &app.people[2]);
        let r = h
            .call(
                "2401",
                json!({"mdtrtinfo": {"psn_no": a.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": b.id_no,
                    "med_type": "21", "begntime": "2018-06-01 08:00:00"}}),
            )
            .await
            .unwrap();
        assert!(refused(&r).contains("不符"), "{db:?}: {r}");
        // Settling with a certificate that is not the visit's person is refused as well.
        let mdtrt = h.admit(a, "2018-06-01").await.unwrap();
        let mut input = NatClient::settle_input(a, &mdtrt, "1000.00", "0", "0", "0", "1000.00");
        input["data"]["mdtrt_cert_no"] = json!(b.id_no);
        refused(&h.call("2304", input).await.unwrap());
        let input = NatClient::settle_input(b, &mdtrt, "1000.00", "0", "0", "0", "1000.00");
        refused(&h.call("2304", input).await.unwrap());
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 0);
        app.stop().await;
    }
}
