//! Idempotency of national write messages: a message repeated with the same `msgid` gets the original
//! response bytes back and changes nothing; a `msgid` reused for different content is refused.

mod common;

use baozhang_server::testkit::NatClient;
use baozhang_store::ledger;
use common::{all_settlements, assert_ledger_ok, ok, parse_resp, refused, spawn_app, BACKENDS};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_sent_ten_times_answers_ten_identical_texts_and_settles_once() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let msgid = h.next_msgid();
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "500.00", "0", "300.00", "9200.00");
        let body = serde_json::to_vec(&h.envelope("2304", &msgid, input)).unwrap();

        let mut texts = Vec::new();
        let mut first_acc = None;
        for i in 0..10 {
            texts.push(h.post_raw(body.clone()).await.unwrap());
            let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
            match &first_acc {
                None => first_acc = Some(acc),
                Some(f) => {
                    assert_eq!(acc.acc, f.acc, "{db:?}: accumulators changed by replay {i}");
                    assert_eq!(acc.settlements, 1, "{db:?}: replay {i} counted a settlement");
                    assert_eq!(acc.policy_id, f.policy_id);
                }
            }
        }
        let first = parse_resp(&texts[0]);
        ok(&first);
        assert!(first["output"]["setlinfo"]["setl_id"].as_str().is_some_and(|s| !s.is_empty()), "{first}");
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(t, &texts[0], "{db:?}: response {i} differs from the first");
        }
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 1, "{db:?}");
        assert!(app.store.count("msg_log").await.unwrap() >= 1);
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (1, 0));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_msgid_reused_for_different_content_is_refused_and_changes_nothing() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let msgid = h.next_msgid();
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "500.00", "0", "300.00", "9200.00");
        let done = h.call_with("2304", &msgid, input).await.unwrap();
        ok(&done);
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();

        // Same msgid, same transaction, different amounts.
        let other = NatClient::settle_input(p, &mdtrt, "10001.00", "500.00", "0", "300.00", "9201.00");
        let r = h.call_with("2304", &msgid, other).await.unwrap();
        let m = refused(&r);
        assert!(m.contains("msgid"), "{db:?}: {m}");

        // Same msgid, another write transaction (a cancellation).
        let setl_id = done["output"]["setlinfo"]["setl_id"].as_str().unwrap();
        let r = h.call_with("2305", &msgid, json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        let m = refused(&r);
        assert!(m.contains("msgid"), "{db:?}: {m}");

        // Same msgid and the very same input from another institution: refused, and it does not get the
        // first hospital's stored response (which names the patient).
        let other_h = app.other_hospital("H62042200002").await;
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "500.00", "0", "300.00", "9200.00");
        let r = other_h.call_with("2304", &msgid, input).await.unwrap();
        refused(&r);
        assert!(r["output"].is_null(), "{db:?}: another institution got output: {r}");
        // … while a write of its own under the same msgid is its own message: msgids are each
        // institution's numbering, so one institution can neither squat nor block another's.
        let input = json!({"mdtrtinfo": {"psn_no": p.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
            "med_type": "21", "begntime": "2018-06-02 08:00:00"}});
        let r = other_h.call_with("2401", &msgid, input).await.unwrap();
        common::ok(&r);
        assert_eq!(app.store.count("mdtrts").await.unwrap(), 2, "{db:?}: the other institution's admission is its own visit");

        // A different msgid for the same visit is a second settlement attempt: refused as already settled.
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "500.00", "0", "300.00", "9200.00");
        let r = h.call("2304", input).await.unwrap();
        assert!(refused(&r).contains("已结算"), "{db:?}: {r}");

        let after = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(after.acc, acc.acc, "{db:?}");
        assert_eq!(after.settlements, 1);
        assert_eq!(all_settlements(&app.store).await.len(), 1, "{db:?}");
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_replayed_ten_times_at_once_settles_once_with_identical_answers() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let msgid = h.next_msgid();
        let input = NatClient::settle_input(p, &mdtrt, "25000.00", "1000.00", "200.00", "800.00", "23000.00");
        let body = serde_json::to_vec(&h.envelope("2304", &msgid, input)).unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (h, body, barrier) = (h.clone(), body.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    h.post_raw(body).await.unwrap()
                })
            })
            .collect();
        let mut texts = Vec::new();
        for t in tasks {
            texts.push(t.await.unwrap());
        }
        ok(&parse_resp(&texts[0]));
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(t, &texts[0], "{db:?}: concurrent response {i} differs");
        }
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 1, "{db:?}");
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(acc.settlements, 1);
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

/// Sends `body` ten times at once, alternately to each server; returns the texts.
async fn blast(a: &NatClient, b: &NatClient, body: &[u8]) -> Vec<String> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (body, barrier) = (body.to_vec(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                c.post_raw(body).await.unwrap()
            })
        })
        .collect();
    let mut texts = Vec::new();
    for t in tasks {
        texts.push(t.await.unwrap());
    }
    texts
}

/// All texts are the one successful response.
fn all_the_original(texts: &[String], what: &str) -> serde_json::Value {
    let ok_text = texts.iter().find(|t| parse_resp(t)["infcode"] == 0).unwrap_or_else(|| panic!("{what}: none succeeded: {texts:?}"));
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(t, ok_text, "{what}: response {i} differs from the original");
    }
    parse_resp(ok_text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_and_its_cancellation_replayed_at_once_to_two_servers_take_effect_once_with_identical_answers() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let twin = app.twin().await;
        let p = &app.people[0];
        let h = &app.hospital;
        for round in 0..5i64 {
            let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
            let input = NatClient::settle_input(p, &mdtrt, "5000.00", "100.00", "0", "100.00", "4800.00");
            let body = serde_json::to_vec(&h.envelope("2304", &h.next_msgid(), input)).unwrap();
            let done = all_the_original(&blast(h, &twin.hospital, &body).await, &format!("{db:?} round {round} 2304"));
            assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 2 * round + 1, "{db:?}");
            let setl_id = done["output"]["setlinfo"]["setl_id"].as_str().unwrap();
            let input = json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}});
            let body = serde_json::to_vec(&h.envelope("2305", &h.next_msgid(), input)).unwrap();
            all_the_original(&blast(h, &twin.hospital, &body).await, &format!("{db:?} round {round} 2305"));
            assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 2 * round + 2, "{db:?}");
        }
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (5, 5));
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(acc.settlements, 0, "{db:?}");
        assert_eq!(acc.acc, baozhang_core::Accumulators::default(), "{db:?}: five settlements all cancelled leave nothing");
        twin.stop().await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admission_replayed_returns_the_same_visit_and_registers_it_once() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let msgid = h.next_msgid();
        let input = json!({"mdtrtinfo": {"psn_no": p.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
            "med_type": "21", "begntime": "2018-03-01 08:00:00"}});
        let body = serde_json::to_vec(&h.envelope("2401", &msgid, input)).unwrap();
        let a = h.post_raw(body.clone()).await.unwrap();
        let b = h.post_raw(body).await.unwrap();
        assert_eq!(a, b, "{db:?}");
        let v = parse_resp(&a);
        ok(&v);
        assert_eq!(app.store.count("mdtrts").await.unwrap(), 1, "{db:?}");
        app.stop().await;
    }
}
