//! The REST API's authentication and scoping: who sees which persons and settlements, masking by
//! default, unmasking only where allowed and always logged.

mod common;

use baozhang_ingest::rosters::{import_file, ImportOptions, RosterKind};
use baozhang_server::auth::{create_user, Role};
use baozhang_server::testkit::{NatClient, SeedPerson, VILLAGES};
use common::{ok, spawn_app, App, Rest, BACKENDS};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-9";

/// Puts the people of the second village on the dibao roster, which gives them their village code in
/// the registry (the seeded poverty roster only covers the first village).
async fn place_second_village(app: &App) {
    let mut csv = String::from("证件号码,姓名,行政区划代码,保障起始日期,保障终止日期\n");
    for (i, p) in app.people.iter().enumerate() {
        if p.village == VILLAGES[1] {
            csv.push_str(&format!("{},测试{i},{},2017-01-01,\n", p.id_no, p.village));
        }
    }
    let path = app._dir.path().join("dibao.csv");
    std::fs::write(&path, csv).unwrap();
    let rep = import_file(&app.store, RosterKind::Dibao, &path, &ImportOptions::default(), &mut |_| {}).await.unwrap();
    assert_eq!(rep.rows_rejected, 0);
}

fn masked_id(id: &str) -> String {
    format!("{}{}{}", &id[..6], "*".repeat(id.len() - 10), &id[id.len() - 4..])
}

fn persons(v: &Value) -> &Vec<Value> {
    v["persons"].as_array().unwrap_or_else(|| panic!("no persons: {v}"))
}

async fn settle(h: &NatClient, p: &SeedPerson) -> String {
    let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
    let r = h.call("2304", NatClient::settle_input(p, &mdtrt, "3000.00", "100.00", "0", "0", "2900.00")).await.unwrap();
    ok(&r);
    r["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_see_only_their_scope_masked_unless_allowed_and_logged() {
    for db in BACKENDS {
        let app = spawn_app(db, 10).await;
        place_second_village(&app).await;
        let (v1, v2) = (VILLAGES[0], VILLAGES[1]);
        let in_v1: Vec<&SeedPerson> = app.people.iter().filter(|p| p.village == v1).collect();
        let in_v2: Vec<&SeedPerson> = app.people.iter().filter(|p| p.village == v2).collect();
        for p in &in_v2 {
            assert_eq!(app.store.person(&p.id_no).await.unwrap().unwrap().village_code.as_deref(), Some(v2), "{db:?}");
        }

        // One settlement at each hospital: the first for a person of village 1, the second for village 2.
        let h2 = app.other_hospital("H62042200002").await;
        let setl_1 = settle(&app.hospital, in_v1[0]).await;
        let setl_2 = settle(&h2, in_v2[0]).await;

        let s = &app.store;
        create_user(s, "test", "cadre1", "南关村干部", Role::Cadre, v1, PASSWORD).await.unwrap();
        create_user(s, "test", "hosp1", "医院收费处", Role::Hospital, &app.hospital.fixmedins_code, PASSWORD).await.unwrap();
        create_user(s, "test", "audit1", "审计", Role::Auditor, "620422", PASSWORD).await.unwrap();
        create_user(s, "test", "bureau1", "医保局", Role::Bureau, "620422", PASSWORD).await.unwrap();
        let cadre = Rest::login(&app.base, "cadre1", PASSWORD).await;
        let hosp = Rest::login(&app.base, "hosp1", PASSWORD).await;
        let auditor = Rest::login(&app.base, "audit1", PASSWORD).await;
        let bureau = Rest::login(&app.base, "bureau1", PASSWORD).await;

        // The cadre: their village only, masked.
        let (st, v) = cadre.get("/api/persons").await;
        assert_eq!(st, 200, "{db:?}: {v}");
        let list = persons(&v);
        assert_eq!(list.len(), in_v1.len(), "{db:?}: {v}");
        for row in list {
            assert_eq!(row["village_code"], v1, "{db:?}: {row}");
            let full = in_v1.iter().find(|p| masked_id(&p.id_no) == row["id_no"].as_str().unwrap());
            assert!(full.is_some(), "{db:?}: ID number not masked as first 6 + last 4: {row}");
            let name = row["name"].as_str().unwrap();
            assert!(name.starts_with("测") && name.chars().skip(1).all(|c| c == '*') && name.chars().count() > 1, "{db:?}: {row}");
        }
        for region in ["620422", v2, "6204221002"] {
            let (st, v) = cadre.get(&format!("/api/persons?region={region}")).await;
            assert_eq!(st, 403, "{db:?}: cadre listing {region}: {v}");
        }
        let (st, v) = cadre.post("/api/persons/lookup", serde_json::json!({"id_no": in_v2[0].id_no})).await;
        assert_eq!(st, 404, "{db:?}: a person of the other village: {v}");
        let (st, v) = cadre.post("/api/persons/lookup", serde_json::json!({"id_no": in_v1[1].id_no})).await;
        assert_eq!(st, 200, "{db:?}: {v}");
        assert_eq!(v["person"]["id_no"], masked_id(&in_v1[1].id_no).as_str(), "{db:?}");

        // Unmasked, on request, for a cadre: in clear, and logged.
        let before = s.count("access_log").await.unwrap();
        let (st, v) = cadre.post("/api/persons/lookup", serde_json::json!({"id_no": in_v1[1].id_no, "unmasked": true})).await;
        assert_eq!(st, 200, "{db:?}: {v}");
        assert_eq!(v["person"]["id_no"], in_v1[1].id_no.as_str(), "{db:?}");
        assert!(!v["person"]["name"].as_str().unwrap().contains('*'), "{db:?}: {v}");
        assert_eq!(s.count("access_log").await.unwrap(), before + 1, "{db:?}: the unmasked view is logged");
        let log = s.access_log(1).await.unwrap();
        assert_eq!(log[0].actor, "cadre1");
        assert_eq!(log[0].subject, masked_id(&in_v1[1].id_no), "{db:?}: the log names the person masked");
        let (st, v) = cadre.get("/api/persons?unmasked=true").await;
        assert_eq!(st, 200);
        assert!(persons(&v).iter().all(|r| !r["id_no"].as_str().unwrap().contains('*')), "{db:?}: {v}");
        assert_eq!(s.count("access_log").await.unwrap(), before + 1 + in_v1.len() as i64, "{db:?}");
        let (st, _) = cadre.post("/api/persons/lookup", serde_json::json!({"id_no": in_v2[0].id_no, "unmasked": true})).await;
        assert_eq!(st, 404, "{db:?}: unmasking does not widen the scope");

        // The auditor: the whole county, always masked.
        let (st, v) = auditor.get("/api/persons").await;
        assert_eq!(st, 200);
        assert_eq!(persons(&v).len(), app.people.len(), "{db:?}: {v}");
        assert!(persons(&v).iter().all(|r| r["id_no"].as_str().unwrap().contains('*')));
        let before = s.count("access_log").await.unwrap();
        let (st, v) = auditor.get("/api/persons?unmasked=true").await;
        assert_eq!(st, 403, "{db:?}: auditor listing unmasked: {v}");
        let (st, v) = auditor.post("/api/persons/lookup", serde_json::json!({"id_no": in_v1[0].id_no, "unmasked": true})).await;
        assert_eq!(st, 403, "{db:?}: auditor unmasking one person: {v}");
        assert_eq!(s.count("access_log").await.unwrap(), before, "{db:?}");
        let (st, _) = auditor.get("/api/access-log").await;
        assert_eq!(st, 200);
        let (st, _) = cadre.get("/api/access-log").await;
        assert_eq!(st, 403);

        // The hospital: no person listings; its own settlements only.
        let (st, v) = hosp.get("/api/persons").await;
        assert_eq!(st, 403, "{db:?}: {v}");
        let (st, v) = hosp.get("/api/settlements").await;
        assert_eq!(st, 200, "{db:?}: {v}");
        let rows = v["settlements"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{db:?}: {v}");
        assert_eq!(rows[0]["setl_id"], setl_1.as_str());
        assert_eq!(rows[0]["fixmedins_code"], app.hospital.fixmedins_code.as_str());
        assert_eq!(rows[0]["id_no"], masked_id(&in_v1[0].id_no).as_str(), "{db:?}: settlements mask ID numbers");
        let (st, _) = hosp.get(&format!("/api/settlements/{setl_2}")).await;
        assert_eq!(st, 404, "{db:?}: another hospital's settlement");
        let (st, v) = hosp.get(&format!("/api/settlements/{setl_1}")).await;
        assert_eq!(st, 200, "{db:?}: {v}");
        assert!(v["entries"].as_array().is_some_and(|e| !e.is_empty()), "{db:?}: {v}");

        // The cadre sees settlements of their village; the bureau the county's.
        let (_, v) = cadre.get("/api/settlements").await;
        let ids: Vec<&str> = v["settlements"].as_array().unwrap().iter().map(|r| r["setl_id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![setl_1.as_str()], "{db:?}");
        let (st, _) = cadre.get(&format!("/api/settlements/{setl_2}")).await;
        assert_eq!(st, 404);
        let (_, v) = bureau.get("/api/settlements").await;
        assert_eq!(v["settlements"].as_array().unwrap().len(), 2, "{db:?}: {v}");
        let (st, v) = bureau.get("/api/ledger/verify").await;
        assert_eq!(st, 200);
        assert_eq!(v["ok"], true, "{db:?}: {v}");
        let (st, _) = cadre.get("/api/ledger/verify").await;
        assert_eq!(st, 403);
        let (st, _) = bureau.get("/api/users").await;
        assert_eq!(st, 403, "only admins list users");

        let (st, v) = cadre.get("/api/me").await;
        assert_eq!(st, 200);
        assert_eq!(v["role"], "cadre");
        assert_eq!(v["scope"], v1);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_without_a_live_token_are_unauthorized() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        create_user(&app.store, "test", "cadre1", "", Role::Cadre, VILLAGES[0], PASSWORD).await.unwrap();
        let anon = Rest::anonymous(&app.base);
        for path in ["/api/persons", "/api/settlements", "/api/me", &format!("/api/persons/{}", app.people[0].psn_no)] {
            let (st, v) = anon.get(path).await;
            assert_eq!(st, 401, "{db:?}: {path}: {v}");
            assert!(common::has_cjk(v["error"].as_str().unwrap_or("")), "{db:?}: {v}");
        }
        // Garbage tokens.
        for t in ["garbage", "", "Bearer", &"0".repeat(64)] {
            let r = Rest { http: reqwest::Client::new(), base: app.base.clone(), token: Some(t.to_string()) };
            let (st, v) = r.get("/api/persons").await;
            assert_eq!(st, 401, "{db:?}: token {t:?}: {v}");
        }
        // A header that is not a bearer token.
        let resp = reqwest::Client::new()
            .get(format!("{}/api/persons", app.base))
            .header("authorization", "Basic Y2FkcmUxOng=")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        // An expired session.
        let token = baozhang_server::random_hex(32);
        let now = baozhang_server::clock::unix_now();
        app.store.add_session(&baozhang_server::sha256_hex(token.as_bytes()), "cadre1", now - 1).await.unwrap();
        let r = Rest { http: reqwest::Client::new(), base: app.base.clone(), token: Some(token) };
        let (st, v) = r.get("/api/persons").await;
        assert_eq!(st, 401, "{db:?}: expired: {v}");
        // Wrong password, unknown user.
        let (st, _) = anon.post("/api/login", serde_json::json!({"username": "cadre1", "password": "wrong-pass-1"})).await;
        assert_eq!(st, 401);
        let (st, _) = anon.post("/api/login", serde_json::json!({"username": "nobody", "password": PASSWORD})).await;
        assert_eq!(st, 401);
        let (st, _) = anon.post("/api/login", serde_json::json!({"username": "cadre1"})).await;
        assert_eq!(st, 400);
        // A live token works, and stops working after logout.
        let cadre = Rest::login(&app.base, "cadre1", PASSWORD).await;
        assert_eq!(cadre.get("/api/persons").await.0, 200);
        assert_eq!(cadre.post("/api/logout", serde_json::json!({})).await.0, 200);
        assert_eq!(cadre.get("/api/persons").await.0, 401, "{db:?}: token still valid after logout");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_county_sees_its_insured_people_without_a_village_and_a_village_does_not() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        // The seeded people of the second village are on the enrolment roster only: no village code.
        let q = app.people.iter().find(|p| p.village == VILLAGES[1]).unwrap();
        assert_eq!(app.store.person(&q.id_no).await.unwrap().unwrap().village_code, None);
        let setl = settle(&app.hospital, q).await;
        create_user(&app.store, "test", "bureau1", "", Role::Bureau, "620422", PASSWORD).await.unwrap();
        create_user(&app.store, "test", "audit1", "", Role::Auditor, "620422", PASSWORD).await.unwrap();
        create_user(&app.store, "test", "town1", "", Role::Bureau, "620422100", PASSWORD).await.unwrap();
        create_user(&app.store, "test", "cadre1", "", Role::Cadre, VILLAGES[0], PASSWORD).await.unwrap();
        create_user(&app.store, "test", "other", "", Role::Bureau, "620421", PASSWORD).await.unwrap();
        for (user, sees) in [("bureau1", true), ("audit1", true), ("town1", false), ("cadre1", false), ("other", false)] {
            let r = Rest::login(&app.base, user, PASSWORD).await;
            let (st, v) = r.get("/api/settlements").await;
            assert_eq!(st, 200, "{db:?}");
            let n = v["settlements"].as_array().unwrap().len();
            assert_eq!(n, usize::from(sees), "{db:?}: {user} listing: {v}");
            let (st, v) = r.get(&format!("/api/settlements/{setl}")).await;
            assert_eq!(st, if sees { 200 } else { 404 }, "{db:?}: {user} settlement: {v}");
            let (st, v) = r.post("/api/persons/lookup", serde_json::json!({"id_no": q.id_no})).await;
            assert_eq!(st, if sees { 200 } else { 404 }, "{db:?}: {user} person: {v}");
        }
        app.stop().await;
    }
}
