//! Many settlements of one person at once: the writer (and, across processes, the accumulator row lock)
//! must settle them one after another against the latest accumulators, exactly as the engine would
//! settle them in commit order.

mod common;

use baozhang_core::engine::{settle, Accumulators};
use baozhang_core::policy::{parse_policy, Fund, ALL_FUNDS};
use baozhang_core::reference::reference_source;
use baozhang_core::{Bill, Claim, Date, Fen, HospLevel, Identity, IdentitySet, MedType};
use baozhang_server::testkit::NatClient;
use baozhang_store::ledger::{self, SettlementFilter};
use common::{assert_ledger_ok, ok, spawn_app, yuan, App, BACKENDS};

const N: usize = 50;

/// The k-th bill: compliant 1,500–32,000 yuan, with some of each out-of-scope part.
fn bill(k: usize) -> Bill {
    let inscp = if k % 10 == 3 { 150_000 } else { 800_000 + ((k * 7_919) % 41) as i64 * 60_000 + k as i64 * 13 };
    let ful = (k % 5) as i64 * 25_000 + k as i64;
    let over = if k.is_multiple_of(3) { 12_345 } else { 0 };
    let pre = (k % 7) as i64 * 3_333;
    Bill::new(Fen(inscp + ful + over + pre), Fen(ful), Fen(over), Fen(pre), Fen(inscp)).unwrap()
}

fn settle_input(p: &baozhang_server::testkit::SeedPerson, mdtrt: &str, b: &Bill) -> serde_json::Value {
    NatClient::settle_input(
        p,
        mdtrt,
        &b.total().to_string(),
        &b.fulamt_ownpay().to_string(),
        &b.overlmt_selfpay().to_string(),
        &b.preselfpay().to_string(),
        &b.compliant().to_string(),
    )
}

/// Admits N visits of one poor person (sequentially), settles them all at once through `clients`
/// (request k goes to `clients[k % len]`), and checks the ledger against the engine.
async fn fifty_settlements_of_one_person(app: &App, clients: &[NatClient]) {
    let p = app.people[0].clone();
    assert!(p.poor);
    let mut mdtrts = Vec::with_capacity(N);
    for k in 0..N {
        mdtrts.push(clients[k % clients.len()].admit(&p, "2018-06-01").await.unwrap());
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|k| {
            let c = clients[k % clients.len()].clone();
            let input = settle_input(&p, &mdtrts[k], &bill(k));
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                c.call("2304", input).await.unwrap()
            })
        })
        .collect();
    let mut responses = std::collections::HashMap::new();
    for (k, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        ok(&r);
        responses.insert(mdtrts[k].clone(), (k, r));
    }

    // Re-settle in commit order with the engine.
    let policy = parse_policy(reference_source("gansu-huining-2018").unwrap()).unwrap();
    let ids = IdentitySet::EMPTY.with(Identity::RegisteredPoor);
    let stored =
        app.store.settlements(&SettlementFilter { psn_no: Some(p.psn_no.clone()), limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(stored.len(), N);
    let mut acc = Accumulators::default();
    let mut annual_hits = std::collections::BTreeSet::new();
    let mut layer_paid = vec![0i64; policy.layers.len()];
    let mut fund_paid = [0i64; 6];
    for (i, s) in stored.iter().enumerate() {
        assert!(s.reverses.is_none() && s.cancelled_by.is_none());
        if i > 0 {
            assert!(s.seq > stored[i - 1].seq, "settlements are listed in commit order");
        }
        let (k, resp) = &responses[&s.mdtrt_id];
        let b = bill(*k);
        let claim = Claim {
            site: Default::default(),
            setl_date: Date::new(2018, 6, 1).unwrap(),
            med_type: MedType::Inpatient,
            hosp_lv: HospLevel::new(2).unwrap(),
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill: b,
        };
        let (e, after) = settle(&policy, &claim, ids, &acc);
        let what = format!("settlement #{i} (seq {}, bill {k})", s.seq);
        assert_eq!(s.identities, i64::from(ids.bits()), "{what}: identities");
        assert_eq!(s.policy_id, "gansu-huining-2018");
        assert_eq!(s.medfee_sumamt, b.total().0, "{what}");
        assert_eq!(s.inscp_scp_amt, b.compliant().0, "{what}");
        assert_eq!(s.psn_part_amt, e.psn_part_amt.0, "{what}: psn_part_amt");
        assert_eq!(s.fund_pay_sumamt, e.fund_pay_sumamt.0, "{what}: fund_pay_sumamt");
        assert_eq!(s.hosp_part_amt, e.hosp_part_amt.0, "{what}: hosp_part_amt");
        assert_eq!(s.act_pay_dedc, e.act_pay_dedc.0, "{what}: act_pay_dedc");
        let entries = app.store.settlement_entries(&s.setl_id).await.unwrap();
        for f in ALL_FUNDS {
            let sum: i64 = entries.iter().filter(|x| x.layer >= 0 && x.fund == f.code()).map(|x| x.amount_fen).sum();
            assert_eq!(sum, e.funds_fen[f.index()], "{what}: fund {}", f.code());
        }
        for x in entries.iter().filter(|x| x.layer >= 0) {
            layer_paid[x.layer as usize] += x.amount_fen;
            if let Some(f) = Fund::from_code(&x.fund) {
                fund_paid[f.index()] += x.amount_fen;
            }
        }
        let psn: i64 = entries.iter().filter(|x| x.fund == ledger::PERSONAL_FUND).map(|x| x.amount_fen).sum();
        assert_eq!(psn, e.psn_part_amt.0, "{what}: personal entry");
        // What the hospital was told is what the ledger holds.
        let si = &resp["output"]["setlinfo"];
        assert_eq!(si["setl_id"], s.setl_id.as_str(), "{what}");
        assert_eq!(si["psn_part_amt"].to_string(), yuan(e.psn_part_amt.0), "{what}: response psn_part_amt");
        assert_eq!(si["fund_pay_sumamt"].to_string(), yuan(e.fund_pay_sumamt.0), "{what}: response fund_pay_sumamt");
        assert_eq!(si["hifp_pay"].to_string(), yuan(e.fund(Fund::Basic).0), "{what}: response hifp_pay");
        assert_eq!(si["hifmi_pay"].to_string(), yuan(e.fund(Fund::CriticalIllness).0), "{what}: response hifmi_pay");
        assert_eq!(si["maf_pay"].to_string(), yuan(e.fund(Fund::Assistance).0), "{what}: response maf_pay");
        for (l, o) in e.layers().iter().enumerate() {
            if o.cap == baozhang_core::engine::CapHit::Annual {
                annual_hits.insert(policy.layers[l].id.clone());
            }
        }
        acc = after;
    }
    let final_stored = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
    assert_eq!(final_stored.acc, acc, "stored accumulators = the engine's after settling in commit order");
    assert_eq!(final_stored.settlements, N as i64);
    assert_eq!(final_stored.policy_id, "gansu-huining-2018");

    // The bills are large enough that the annual caps bind; they are reached and never exceeded.
    for (l, layer) in policy.layers.iter().enumerate() {
        assert_eq!(layer_paid[l], acc.layers[l].paid_fen, "layer {}: ledger entries add up to the accumulator", layer.id);
        if let Some(cap) = layer.caps.annual {
            assert!(layer_paid[l] <= cap.0, "layer {} paid {} over its annual cap {}", layer.id, layer_paid[l], cap.0);
        }
    }
    for id in ["basic", "critical"] {
        assert!(annual_hits.contains(id), "the {id} layer's annual cap should bind in this test (hits: {annual_hits:?})");
        let l = policy.layers.iter().position(|x| x.id == id).unwrap();
        assert_eq!(Some(Fen(layer_paid[l])), policy.layers[l].caps.annual, "{id} paid exactly its annual cap");
    }
    assert!(fund_paid[Fund::Assistance.index()] > 0, "medical assistance pays once the person's own part passes its annual cap");
    assert!(fund_paid[Fund::Supplemental.index()] > 0, "the insurer tops up to 85% on some claims");
    assert_ledger_ok(&app.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_settlements_of_one_person_at_once_equal_the_engine_in_commit_order() {
    for db in BACKENDS {
        let t = std::time::Instant::now();
        let app = spawn_app(db, 4).await;
        let clients = vec![app.hospital.clone()];
        fifty_settlements_of_one_person(&app, &clients).await;
        app.stop().await;
        eprintln!("{db:?}: {:?}", t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_settlements_of_one_person_through_two_servers_on_one_database_equal_the_engine() {
    for db in BACKENDS {
        let t = std::time::Instant::now();
        let app = spawn_app(db, 4).await;
        let twin = app.twin().await;
        let clients = vec![app.hospital.clone(), twin.hospital.clone()];
        fifty_settlements_of_one_person(&app, &clients).await;
        twin.stop().await;
        app.stop().await;
        eprintln!("{db:?}: {:?}", t.elapsed());
    }
}

/// Sends `inputs[i]` as transaction `infno` with a fresh msgid, all at once, alternately to each client.
async fn at_once(clients: &[NatClient], infno: &str, inputs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(inputs.len()));
    let tasks: Vec<_> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let c = clients[i % clients.len()].clone();
            let (barrier, infno) = (barrier.clone(), infno.to_string());
            tokio::spawn(async move {
                barrier.wait().await;
                c.call(&infno, input).await.unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_visit_settled_and_cancelled_by_different_messages_at_once_through_two_servers_takes_effect_once() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let twin = app.twin().await;
        let clients = vec![app.hospital.clone(), twin.hospital.clone()];
        let p = app.people[0].clone();
        for round in 0..8 {
            let mdtrt = app.hospital.admit(&p, "2018-06-01").await.unwrap();
            let input = settle_input(&p, &mdtrt, &bill(round));
            let rs = at_once(&clients, "2304", vec![input; 6]).await;
            let winners: Vec<_> = rs.iter().filter(|r| r["infcode"] == 0).collect();
            assert_eq!(winners.len(), 1, "{db:?} round {round}: {rs:?}");
            for r in rs.iter().filter(|r| r["infcode"] != 0) {
                assert!(common::refused(r).contains("结算"), "{db:?}: {r}");
            }
            let setl_id = winners[0]["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string();
            let cancel = serde_json::json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}});
            let rs = at_once(&clients, "2305", vec![cancel; 6]).await;
            assert_eq!(rs.iter().filter(|r| r["infcode"] == 0).count(), 1, "{db:?} round {round}: {rs:?}");
            let rep = assert_ledger_ok(&app.store).await;
            assert_eq!((rep.settlements, rep.cancellations), (round as i64 + 1, round as i64 + 1), "{db:?} round {round}");
        }
        let acc = ledger::read_accumulators(&app.store, &p.psn_no, 2018).await.unwrap();
        assert_eq!(acc.acc, Accumulators::default(), "{db:?}");
        assert_eq!(acc.settlements, 0, "{db:?}");
        twin.stop().await;
        app.stop().await;
    }
}
