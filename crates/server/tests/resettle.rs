//! Re-settlement through the ledger (issue 17), through HTTP against a real server on both databases:
//! an identity recognised late, a cancellation of a settlement that was not the year's last, and an
//! application for assistance after discharge each end in the right adjustment entries, a passing
//! `ledger verify` (adjustments checked against the engine), the right lines for the funds page, and
//! nothing written twice. Online settlement goes on while a region is re-settled.

mod common;

use std::time::Duration;

use baozhang_core::engine::resettle_year;
use baozhang_core::{Bill, Claim, Fen, HospLevel, IdentitySet, MedType};
use baozhang_server::auth::{create_user, Role};
use baozhang_server::testkit::{NatClient, SeedPerson, COUNTY, VILLAGES};
use baozhang_server::Policies;
use baozhang_store::ledger::StoredSettlement;
use baozhang_store::Store;
use common::{assert_ledger_ok, ok, spawn_app, Browser, Rest, BACKENDS, PASSWORD};
use serde_json::{json, Value};

const OTHER_COUNTY: &str = "620421";

async fn users(app: &common::App) {
    for (user, role, scope) in [
        ("bureau1", Role::Bureau, COUNTY),
        ("audit1", Role::Auditor, COUNTY),
        ("cadre_a", Role::Cadre, VILLAGES[0]),
        ("other_bureau", Role::Bureau, OTHER_COUNTY),
        ("hosp1", Role::Hospital, "H62042200001"),
    ] {
        create_user(&app.store, "test", user, "", role, scope, PASSWORD).await.unwrap();
    }
}

/// Admits and settles an inpatient stay of `total` yuan (10 % out of scope, the rest compliant).
async fn stay(h: &NatClient, p: &SeedPerson, date: &str, total: i64) -> (String, String) {
    let mdtrt = h.admit(p, date).await.unwrap();
    let ful = total / 10;
    let input = NatClient::settle_input(p, &mdtrt, &total.to_string(), &ful.to_string(), "0", "0", &(total - ful).to_string());
    let mut input = input;
    input["data"]["setl_time"] = json!(format!("{date} 16:00:00"));
    let r = h.call("2304", input).await.unwrap();
    ok(&r);
    (mdtrt, r["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string())
}

/// The claim of a stored settlement, rebuilt from its bill and conditions (independently of the
/// re-settlement code), for the engine.
fn claim_of(s: &StoredSettlement) -> Claim {
    let flags = s.claim_flags.expect("settlements record their conditions");
    let d = baozhang_store::num_date(s.setl_date).unwrap();
    Claim {
        site: Default::default(),
        setl_date: d,
        med_type: MedType::from_code(s.med_type as u16).unwrap(),
        hosp_lv: HospLevel::new(s.hosp_lv as u8).unwrap(),
        in_county: flags & 1 != 0,
        referral_ok: flags & 2 != 0,
        major_disease: flags & 4 != 0,
        bill: Bill::new(
            Fen(s.medfee_sumamt),
            Fen(s.fulamt_ownpay_amt),
            Fen(s.overlmt_selfpay),
            Fen(s.preselfpay_amt),
            Fen(s.inscp_scp_amt),
        )
        .unwrap(),
    }
}

/// Live settlements of a person in commit order.
async fn live(store: &Store, psn_no: &str) -> Vec<StoredSettlement> {
    let f = baozhang_store::ledger::SettlementFilter { psn_no: Some(psn_no.into()), limit: 100, ..Default::default() };
    store.settlements(&f).await.unwrap().into_iter().filter(|s| s.reverses.is_none() && s.cancelled_by.is_none()).collect()
}

/// The personal part of each settlement now: the settlement plus its adjustments.
async fn psn_now(store: &Store, s: &StoredSettlement) -> i64 {
    let adj = store.adjustments(None, "", Some(&s.psn_no)).await.unwrap();
    s.psn_part_amt + adj.iter().filter(|a| a.setl_id == s.setl_id).map(|a| a.psn_fen).sum::<i64>()
}

async fn wait_done(rest: &Rest, run_id: i64) -> Value {
    for _ in 0..200 {
        let (st, v) = rest.get(&format!("/api/resettle/{run_id}")).await;
        assert_eq!(st, 200, "{v}");
        if v["run"]["status"] == "done" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("re-settlement run {run_id} did not finish");
}

/// The whole poverty roster again, with `extra` added as registered poor from `from` (a late identity:
/// the poverty office's roster arrives after the person was treated).
async fn late_identity(store: &Store, people: &[SeedPerson], extra: usize, from: &str, dir: &std::path::Path) {
    let mut csv = String::from("户编号,姓名,证件号码,性别,与户主关系,行政区划代码,贫困状态,识别年度,变动日期\n");
    for (i, p) in people.iter().enumerate() {
        if p.poor || i == extra {
            let sex = if i % 2 == 0 { "男" } else { "女" };
            let (year, change) = if i == extra { ("2018", from) } else { ("2017", "") };
            csv.push_str(&format!("H{i:08},测试{i},{},{sex},户主,{},未脱贫,{year},{change}\n", p.id_no, p.village));
        }
    }
    let path = dir.join("poverty-late.csv");
    std::fs::write(&path, csv).unwrap();
    let rep = baozhang_ingest::rosters::import_file(
        store,
        baozhang_ingest::rosters::RosterKind::Poverty,
        &path,
        &baozhang_ingest::rosters::ImportOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(rep.rows_rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_identity_is_paid_back_through_adjustment_entries_once() {
    for db in BACKENDS {
        let app = spawn_app(db, 8).await;
        users(&app).await;
        let p = app.people[1].clone();
        assert!(!p.poor);
        stay(&app.hospital, &p, "2018-03-05", 60_000).await;
        stay(&app.hospital, &p, "2018-06-10", 30_000).await;
        let before = live(&app.store, &p.psn_no).await;
        assert_eq!(before.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        late_identity(&app.store, &app.people, 1, "2018-01-15", dir.path()).await;

        let bureau = Rest::login(&app.base, "bureau1", PASSWORD).await;
        let body = json!({"year": 2018, "id_no": p.id_no, "reason": "late_identity", "dry_run": true});
        let (st, dry) = bureau.post("/api/resettle", body.clone()).await;
        assert_eq!(st, 200, "{dry}");
        assert_eq!(dry["claims_adjusted"], 2, "{dry}");
        assert!(app.store.adjustments(None, "", None).await.unwrap().is_empty(), "{db:?}: a dry run writes nothing");

        // Just outside the scope: another county's bureau, a village cadre, the hospital.
        let other = Rest::login(&app.base, "other_bureau", PASSWORD).await;
        let (st, v) = other.post("/api/resettle", json!({"year": 2018, "id_no": p.id_no})).await;
        assert_eq!(st, 404, "{db:?}: another county cannot re-settle this person: {v}");
        let (st, _) = other.post("/api/resettle", json!({"year": 2018, "region": COUNTY})).await;
        assert_eq!(st, 403, "{db:?}: nor this county");
        for u in ["cadre_a", "hosp1", "audit1"] {
            let r = Rest::login(&app.base, u, PASSWORD).await;
            let (st, _) = r.post("/api/resettle", body.clone()).await;
            assert_eq!(st, 403, "{db:?}: {u} may not re-settle");
        }

        let (st, v) = bureau.post("/api/resettle", json!({"year": 2018, "id_no": p.id_no, "reason": "late_identity"})).await;
        assert_eq!(st, 202, "{v}");
        let run_id = v["run_id"].as_i64().unwrap();
        let done = wait_done(&bureau, run_id).await;
        assert_eq!(done["claims_adjusted"], 2, "{done}");
        let (st, _) = other.get(&format!("/api/resettle/{run_id}")).await;
        assert_eq!(st, 404, "{db:?}: another county does not see the run");

        // Exactly what the engine says: the year again, in order, with the identity now known.
        let policies = Policies::reference();
        let policy = policies.for_area(COUNTY, baozhang_store::num_date(before[0].setl_date).unwrap()).unwrap();
        let poor = IdentitySet::parse_list("registered_poor").unwrap();
        let input: Vec<_> = before.iter().map(|s| (claim_of(s), poor, None)).collect();
        let (diffs, _) = resettle_year(policy, &input);
        let mut paid_back = 0;
        for (s, d) in before.iter().zip(&diffs) {
            let now = psn_now(&app.store, s).await;
            assert_eq!(now, d.new.psn_part_amt.0, "{db:?}: settlement {} now pays what the engine computes", s.setl_id);
            paid_back += s.psn_part_amt - now;
        }
        assert!(paid_back > 0, "{db:?}: the patient is paid back");
        assert_eq!(done["pay_back"].to_string(), Fen(paid_back).to_string(), "{done}");
        assert_ledger_ok(&app.store).await;

        // The funds page's quarterly fallback now includes the assistance the adjustment added.
        let by_quarter = app.store.fallback_by_quarter(2018).await.unwrap();
        let adj = app.store.adjustments(Some(run_id), "", None).await.unwrap();
        let assistance_adj: i64 = adj.iter().map(|a| a.funds_fen[3] + a.funds_fen[4]).sum();
        let ledger_total: i64 = by_quarter.iter().map(|q| q.2).sum();
        assert!(assistance_adj > 0 && ledger_total >= assistance_adj, "{db:?}: {by_quarter:?} vs {assistance_adj}");
        // … and the funds page shows each quarter's fallback with the adjustment in it.
        let web = Browser::login(&app.base, "bureau1").await;
        let funds = web.page("/web/funds?year=2018").await.text();
        for (code, quarter, amount, _) in &by_quarter {
            assert_eq!(code, "H62042200001");
            assert!(funds.contains(&Fen(*amount).grouped()), "{db:?}: quarter {quarter}'s {} on the funds page", Fen(*amount).grouped());
        }

        // Once only: the same run again changes nothing.
        let (_, v) = bureau.post("/api/resettle", json!({"year": 2018, "id_no": p.id_no, "reason": "late_identity"})).await;
        let again = wait_done(&bureau, v["run_id"].as_i64().unwrap()).await;
        assert_eq!(again["claims_adjusted"], 0, "{db:?}: {again}");
        assert_eq!(app.store.adjustments(None, "", None).await.unwrap().len(), 2);

        // A later stay of the same year continues from the re-settled accumulators.
        stay(&app.hospital, &p, "2018-09-01", 20_000).await;
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_settlement_that_is_not_the_last_resettles_the_rest_of_the_year() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        let p = app.people[0].clone();
        assert!(p.poor);
        let (m1, s1) = stay(&app.hospital, &p, "2018-02-01", 80_000).await;
        stay(&app.hospital, &p, "2018-05-01", 40_000).await;
        stay(&app.hospital, &p, "2018-08-01", 15_000).await;
        let msgid = app.hospital.next_msgid();
        let cancel = json!({"data": {"setl_id": s1, "mdtrt_id": m1, "psn_no": p.psn_no}});
        let r = app.hospital.call_with("2305", &msgid, cancel.clone()).await.unwrap();
        ok(&r);
        // Replayed with the same msgid: the stored answer, nothing more written.
        let r2 = app.hospital.call_with("2305", &msgid, cancel).await.unwrap();
        assert_eq!(r2["output"], r["output"]);

        let rest = live(&app.store, &p.psn_no).await;
        assert_eq!(rest.len(), 2);
        let adj = app.store.adjustments(None, "", None).await.unwrap();
        assert!(!adj.is_empty(), "{db:?}: the later stays were adjusted");
        assert!(adj.iter().all(|a| a.reason == "cancellation"));
        let ids = IdentitySet::from_bits(rest[0].identities as u16);
        let policy_set = Policies::reference();
        let policy = policy_set.for_area(COUNTY, baozhang_store::num_date(rest[0].setl_date).unwrap()).unwrap();
        let input: Vec<_> = rest.iter().map(|s| (claim_of(s), ids, None)).collect();
        let (diffs, _) = resettle_year(policy, &input);
        for (s, d) in rest.iter().zip(&diffs) {
            assert_eq!(psn_now(&app.store, s).await, d.new.psn_part_amt.0, "{db:?}: {} as if the first stay never happened", s.setl_id);
        }
        let bureau = Rest::login(&app.base, "bureau1", PASSWORD).await;
        let (_, runs) = bureau.get("/api/resettle").await;
        assert_eq!(runs["runs"][0]["reason"], "cancellation", "{runs}");
        assert_ledger_ok(&app.store).await;

        // Cancelling an adjusted settlement negates it with its adjustments.
        let last = rest.last().unwrap();
        let r = app
            .hospital
            .call("2305", json!({"data": {"setl_id": last.setl_id, "mdtrt_id": last.mdtrt_id, "psn_no": p.psn_no}}))
            .await
            .unwrap();
        ok(&r);
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_application_recognises_the_identity_and_resettles_the_year_from_the_workbench() {
    for db in BACKENDS {
        let app = spawn_app(db, 8).await;
        users(&app).await;
        let p = app.people[3].clone();
        assert!(!p.poor);
        stay(&app.hospital, &p, "2018-04-02", 100_000).await;
        let s = live(&app.store, &p.psn_no).await.remove(0);

        let bureau = Browser::login(&app.base, "bureau1").await;
        let page = bureau.page("/web/resettle").await;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("依申请救助"));
        let form = [
            ("id_no", p.id_no.as_str()),
            ("year", "2018"),
            ("kind", "dibao"),
            ("effective_from", "2018-01-01"),
            ("documents", "申请书、低保证"),
        ];
        let r = bureau.post_form("/web/resettle/apply", &form).await;
        assert_eq!(r.status, 303, "{}", r.text());
        let apps = app.store.applications(COUNTY, None, 10).await.unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].status, "pending");
        // The page never shows the full ID number.
        let html = bureau.page("/web/resettle").await.text();
        assert!(!html.contains(&p.id_no), "ID number masked");

        // Another county's bureau cannot decide it; the auditor may look but not decide.
        let other = Browser::login(&app.base, "other_bureau").await;
        let id = apps[0].id.to_string();
        let r = other.post_form("/web/resettle/decide", &[("id", &id), ("decision", "approve")]).await;
        assert!(r.status == 403 || r.status == 404, "{db:?}: {}", r.status);
        // Nor preview this county, nor record an application for its people.
        let r = other
            .post_form(
                "/web/resettle/preview",
                &[("year", "2018"), ("region", COUNTY), ("id_no", ""), ("reason", "year_end"), ("note", "")],
            )
            .await;
        assert_eq!(r.status, 403, "{db:?}: another county cannot preview this one");
        let r = other.post_form("/web/resettle/apply", &form).await;
        assert_eq!(r.status, 404, "{db:?}: nor file an application for its people");
        let r = bureau
            .post_form(
                "/web/resettle/preview",
                &[("year", "2018"), ("region", "620422%"), ("id_no", ""), ("reason", "year_end"), ("note", "")],
            )
            .await;
        assert_eq!(r.status, 400, "{db:?}: a region is digits only");
        let auditor = Browser::login(&app.base, "audit1").await;
        assert_eq!(auditor.page("/web/resettle").await.status, 200);
        let r = auditor.post_form("/web/resettle/decide", &[("id", &id), ("decision", "approve")]).await;
        assert_eq!(r.status, 403);

        let r = bureau.post_form("/web/resettle/decide", &[("id", &id), ("decision", "approve"), ("note", "材料齐全")]).await;
        assert_eq!(r.status, 303, "{}", r.text());
        let r = bureau.post_form("/web/resettle/decide", &[("id", &id), ("decision", "approve")]).await;
        assert_eq!(r.status, 400, "{db:?}: decided once");
        let run_id = app.store.application(apps[0].id).await.unwrap().unwrap().run_id.expect("the approval started a run");
        let done = wait_done(&bureau.rest(), run_id).await;
        assert_eq!(done["claims_adjusted"], 1, "{done}");
        // 低保: the critical-illness deductible falls from 5,000 to 2,000 yuan, paid at 50 %.
        let adj = app.store.adjustments(Some(run_id), "", None).await.unwrap();
        assert_eq!(adj[0].funds_fen[1], 150_000, "{db:?}: {adj:?}");
        assert_eq!(psn_now(&app.store, &s).await, s.psn_part_amt - 150_000);
        let run_page = bureau.page(&format!("/web/resettle/run/{run_id}")).await;
        assert_eq!(run_page.status, 200);
        assert!(run_page.text().contains("1,500.00"), "the run page shows what is paid back");
        let xlsx = bureau.get(&format!("/web/resettle/run/{run_id}?export=persons")).await;
        assert_eq!(xlsx.status, 200);
        assert_eq!(other.page(&format!("/web/resettle/run/{run_id}")).await.status, 404, "{db:?}: not another county's");
        assert_ledger_ok(&app.store).await;
        // The person page shows the history: the application and the re-settlement.
        let person = bureau.page(&common::person_path(&app.store, &p.id_no).await).await.text();
        assert!(person.contains("重新结算记录") && person.contains("依申请救助") && person.contains("补付 1,500.00"), "{person}");

        // The patient's slip for the adjustment, with the reason and what is paid back.
        let slip = bureau.get(&format!("/web/slip/{}?adj={}", s.setl_id, adj[0].adj_id)).await;
        assert_eq!(slip.status, 200);
        assert_eq!(slip.header("content-type"), "application/pdf");
        assert!(slip.body.starts_with(b"%PDF"), "a PDF");
        let text = common::pdf_text(&slip.body);
        let flat: String = text.split_whitespace().collect();
        assert!(
            flat.contains("重新结算") && flat.contains("依申请救助") && flat.contains("应补付患者") && flat.contains("1,500.00"),
            "{text}"
        );

        // The preview of the whole county now finds nothing to change.
        let r = bureau
            .post_form("/web/resettle/preview", &[("year", "2018"), ("region", ""), ("id_no", ""), ("reason", "year_end"), ("note", "")])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("没有需要调整的结算"), "{}", r.text());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_settlement_goes_on_while_a_county_is_resettled() {
    for db in BACKENDS {
        let app = spawn_app(db, 40).await;
        users(&app).await;
        for p in app.people.iter().take(30) {
            stay(&app.hospital, p, "2018-03-01", 12_000).await;
        }
        let dir = tempfile::tempdir().unwrap();
        late_identity(&app.store, &app.people, 5, "2018-01-02", dir.path()).await;
        let bureau = Rest::login(&app.base, "bureau1", PASSWORD).await;
        let (st, v) = bureau.post("/api/resettle", json!({"year": 2018, "reason": "year_end"})).await;
        assert_eq!(st, 202, "{v}");
        let run_id = v["run_id"].as_i64().unwrap();
        // Meanwhile the hospital settles the others, and a second stay of a person in the run.
        for p in app.people.iter().skip(30).chain(app.people.iter().take(3)) {
            stay(&app.hospital, p, "2018-07-01", 8_000).await;
        }
        let done = wait_done(&bureau, run_id).await;
        assert_eq!(done["run"]["done_person_years"], 30, "{done}");
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}
