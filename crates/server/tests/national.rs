//! The national interface end to end over HTTP, on SQLite and PostgreSQL.

mod common;

use baozhang_server::testkit::NatClient;
use common::{spawn_app, BACKENDS};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poor_inpatient_is_admitted_settled_and_cancelled() {
    for db in BACKENDS {
        let app = spawn_app(db, 10).await;
        let h = &app.hospital;
        let p = &app.people[0];
        assert!(p.poor);
        let info = h.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})).await.unwrap();
        assert_eq!(info["infcode"], 0, "{info}");
        assert_eq!(info["output"]["baseinfo"]["psn_no"], p.psn_no.as_str());
        assert!(info["output"]["idetinfo"].as_array().unwrap().iter().any(|i| i["memo"] == "建档立卡贫困人口"), "{info}");

        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "500.00", "0", "300.00", "9200.00");
        let pre = h.call("2303", input.clone()).await.unwrap();
        assert_eq!(pre["infcode"], 0, "{pre}");
        let done = h.call("2304", input.clone()).await.unwrap();
        assert_eq!(done["infcode"], 0, "{done}");
        let s = &done["output"]["setlinfo"];
        assert_eq!(s["medfee_sumamt"].to_string(), "10000.00");
        assert_eq!(pre["output"]["setlinfo"]["psn_part_amt"], s["psn_part_amt"], "pre-settlement equals settlement");
        let setl_id = s["setl_id"].as_str().unwrap().to_string();

        let again = h.call("2304", input.clone()).await.unwrap();
        assert_eq!(again["infcode"], -1);
        assert!(again["err_msg"].as_str().unwrap().contains("已结算"), "{again}");

        let cancel = h.call("2305", json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        assert_eq!(cancel["infcode"], 0, "{cancel}");
        assert_eq!(cancel["output"]["setlinfo"]["medfee_sumamt"].to_string(), "-10000.00");
        let rep = baozhang_store::ledger::verify(&app.store).await.unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
        assert_eq!((rep.settlements, rep.cancellations), (1, 1));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_replayed_with_its_nonce_is_refused() {
    let app = spawn_app(common::Db::Sqlite, 2).await;
    let h = &app.hospital;
    let p = &app.people[0];
    let body =
        serde_json::to_vec(&h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})))
            .unwrap();
    let ts = baozhang_server::clock::unix_now().to_string();
    let sig = baozhang_server::national::sign(&h.secret, &ts, "nonce-1", &body);
    let send = || async {
        let r = h
            .http
            .post(format!("{}/fsi/api/x", app.base))
            .header("x-tif-paasid", &h.fixmedins_code)
            .header("x-tif-timestamp", &ts)
            .header("x-tif-nonce", "nonce-1")
            .header("x-tif-signature", &sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&r.text().await.unwrap()).unwrap()
    };
    assert_eq!(send().await["infcode"], 0);
    let again = send().await;
    assert_eq!(again["infcode"], -1);
    assert!(again["err_msg"].as_str().unwrap().contains("随机数"), "{again}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_level_written_as_a_number_is_understood() {
    let app = spawn_app(common::Db::Sqlite, 2).await;
    let h = &app.hospital;
    let p = &app.people[0];
    let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
    let up = h
        .call(
            "2301",
            json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": mdtrt, "psn_no": p.psn_no, "det_item_fee_sumamt": 100, "chrgitm_lv": 3}]}),
        )
        .await
        .unwrap();
    assert_eq!(up["infcode"], 0, "{up}");
    assert_eq!(up["output"]["result"][0]["fulamt_ownpay_amt"].to_string(), "100.00");
    app.stop().await;
}
