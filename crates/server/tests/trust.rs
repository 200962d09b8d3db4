//! The trust boundary (issue 14), through HTTP against a real server on both databases: an outside file,
//! a slow client, a curious clerk, a user of another region and an attacker with a captured request
//! can neither crash the service, stall it, nor read or change what is not theirs.

mod common;

use std::time::Duration;

use baozhang_server::auth::{create_user, Role};
use baozhang_server::testkit::{add_hospital, NatClient, COUNTY, VILLAGES};
use baozhang_server::Config;
use common::{
    assert_ledger_ok, has_cjk, ok, parse_resp, post_with_headers, refused, spawn_app, spawn_app_with, Browser, Rest, BACKENDS, PASSWORD,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A neighbouring county of the test county (same prefecture).
const OTHER_COUNTY: &str = "620421";

async fn users(app: &common::App) {
    for (user, role, scope) in [
        ("admin1", Role::Admin, ""),
        ("bureau1", Role::Bureau, COUNTY),
        ("audit1", Role::Auditor, COUNTY),
        ("town1", Role::Bureau, "620422100"),
        ("cadre_a", Role::Cadre, VILLAGES[0]),
        ("cadre_b", Role::Cadre, VILLAGES[1]),
        ("other_bureau", Role::Bureau, OTHER_COUNTY),
        ("other_audit", Role::Auditor, OTHER_COUNTY),
        ("hosp1", Role::Hospital, "H62042200001"),
    ] {
        create_user(&app.store, "test", user, "", role, scope, PASSWORD).await.unwrap();
    }
}

/// A TCP connection to the server made from another loopback address (so that per-address limits
/// tell it apart from the test's own clients on 127.0.0.1).
async fn connect_from(base: &str, from: [u8; 4]) -> std::io::Result<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(std::net::SocketAddr::from((from, 0)))?;
    s.connect(addr).await
}

/// Whether the server has closed (or answered and closed) a connection within `wait`.
async fn closed_within(c: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

// ───────────────────────────── 1. outside files ─────────────────────────────

/// A workbook with a roster's header in row 1 and one cell at XFD1048576: a few KB that asked the old
/// reader for a dense grid of 17 billion cells.
fn sparse_bomb() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["户编号", "姓名", "证件号码", "性别", "与户主关系", "行政区划代码", "贫困状态", "识别年度"].iter().enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    ws.write_string(1_048_575, 16_383, "x").unwrap();
    wb.save_to_buffer().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_workbook_claiming_a_huge_sheet_is_refused_and_settlement_goes_on() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        let bureau = Browser::login(&app.base, "bureau1").await;
        let imports = app.store.count("imports").await.unwrap();
        let bomb = sparse_bomb();
        assert!(bomb.len() < 16 * 1024, "{db:?}: the bomb is small ({} bytes)", bomb.len());
        // The import runs as a job; its page ends with the refusal.
        let r = bureau.post_multipart("/web/import", &[("kind", "poverty")], "bomb.xlsx", &bomb).await;
        assert_eq!(r.status, 200, "{db:?}: {}", r.text());
        let text = r.text();
        assert!(text.contains("未完成"), "{db:?}: the job ends refused: {text}");
        assert!(
            text.contains("bomb.xlsx") && text.contains("超出导入上限") && text.contains("XFD"),
            "{db:?}: names the file, the cell and the limit: {text}"
        );
        assert!(!text.contains("/tmp/"), "{db:?}: the server's temporary path is not shown: {text}");
        // An old .xls is refused with what to do about it.
        let r = bureau.post_multipart("/web/import", &[("kind", "poverty")], "old.xls", b"\xd0\xcf\x11\xe0").await;
        assert!(r.status == 400 && r.text().contains("另存为"), "{db:?}: {}", r.text());
        // The server is alive and still settles.
        let (st, v) = Rest::anonymous(&app.base).get("/healthz").await;
        assert_eq!(st, 200, "{db:?}: {v}");
        let p = &app.people[0];
        let m = app.hospital.admit(p, "2018-06-01").await.unwrap();
        ok(&app.hospital.call("2304", NatClient::settle_input(p, &m, "1000.00", "0", "0", "0", "1000.00")).await.unwrap());
        assert_eq!(app.store.count("imports").await.unwrap(), imports, "{db:?}: nothing was imported");
        app.stop().await;
    }
}

// ───────────────────────────── 2. slow clients ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_bodies_and_half_sent_headers_do_not_block_the_hospital_interface() {
    let config = Config {
        max_in_flight: 8,
        max_in_flight_per_party: 4,
        max_connections_per_ip: 16,
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let app = spawn_app_with(common::Db::Sqlite, 4, config).await;
    // Slowloris from one address: half-sent headers. Past 16 connections the address is cut off at once;
    // the 16 are closed when the header deadline passes.
    let mut loris = Vec::new();
    for _ in 0..24 {
        if let Ok(mut c) = connect_from(&app.base, [127, 0, 0, 2]).await {
            let _ = c.write_all(b"POST /fsi/api/x HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
            loris.push(c);
        }
    }
    // Slow bodies from other addresses: complete headers, a body announced and trickled.
    let mut bodies = Vec::new();
    for k in 0..32u8 {
        let mut c = connect_from(&app.base, [127, 0, 1, 1 + k % 4]).await.unwrap();
        c.write_all(
            b"POST /fsi/api/fsiIntegratedService HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
        )
        .await
        .unwrap();
        bodies.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the hospital (from 127.0.0.1) reads and settles, each within a generous bound.
    let h = &app.hospital;
    let p = &app.people[0];
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut hc = h.clone();
    hc.http = quick;
    let m = hc.admit(p, "2018-06-01").await.expect("admission during the flood");
    let r =
        hc.call("2304", NatClient::settle_input(p, &m, "2000.00", "0", "0", "0", "2000.00")).await.expect("settlement during the flood");
    ok(&r);
    let (st, _) = Rest::anonymous(&app.base).get("/healthz").await;
    assert_eq!(st, 200);
    // The slow requests are cut off by their deadlines, not left open.
    let mut open = 0;
    for c in loris.iter_mut() {
        if !closed_within(c, Duration::from_secs(4)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "half-sent headers still open after the header deadline");
    for c in bodies.iter_mut() {
        let _ = c.write_all(b" ").await;
    }
    let mut open = 0;
    for c in bodies.iter_mut() {
        if !closed_within(c, Duration::from_secs(6)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "slow bodies still open after the body deadline");
    app.stop().await;
}

// ───────────────────────────── 3. a window finds only the certificate presented ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hospital_finds_a_patient_only_by_the_id_number_presented() {
    for db in BACKENDS {
        let app = spawn_app(db, 6).await;
        users(&app).await;
        let hosp = Browser::login(&app.base, "hosp1").await;
        // Walking the sequential 人员编号 shows nobody.
        for p in &app.people {
            let r = hosp.post_form("/web/window/find", &[("q", &p.psn_no)]).await;
            assert_eq!(r.status, 400, "{db:?}: {}", r.text());
            assert!(!r.text().contains("测试"), "{db:?}: a 人员编号 shows a name");
        }
        let rest = hosp.rest();
        let p = &app.people[1];
        let (st, v) = rest.get(&format!("/api/persons/{}", p.psn_no)).await;
        assert_eq!(st, 403, "{db:?}: the API refuses a hospital's look-up by 人员编号: {v}");
        let before = app.store.count("access_log").await.unwrap();
        let (st, v) = rest.post("/api/persons/lookup", json!({"id_no": p.id_no})).await;
        assert_eq!(st, 200, "{db:?}: {v}");
        assert_eq!(app.store.count("access_log").await.unwrap(), before + 1, "{db:?}: every hospital read is logged");
        let (st, v) = rest.get(&format!("/api/persons/{}", p.id_no)).await;
        assert_eq!(st, 400, "{db:?}: an ID number in an address: {v}");
        // The national path: the person whose certificate is presented, nobody else.
        let other = &app.people[2];
        let r = app
            .hospital
            .call(
                "2401",
                json!({"mdtrtinfo": {"psn_no": other.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "med_type": "21",
                    "begntime": "2018-06-01 08:00:00"}}),
            )
            .await
            .unwrap();
        assert!(refused(&r).contains("出示证件的本人"), "{db:?}: {r}");
        app.stop().await;
    }
}

// ───────────────────────────── 4 and 5. regions ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leads_lists_and_runs_stay_inside_their_region() {
    for db in BACKENDS {
        let app = spawn_app(db, 6).await;
        users(&app).await;
        let h = &app.hospital;
        // Two stays of one person a day apart: a split-stay lead of the county.
        let p = &app.people[0];
        for (begin, end) in [("2018-03-01", "2018-03-05"), ("2018-03-06", "2018-03-09")] {
            let m = h.admit(p, begin).await.unwrap();
            let mut input = NatClient::settle_input(p, &m, "3000.00", "0", "0", "0", "3000.00");
            input["data"]["dscg_time"] = json!(format!("{end} 10:00:00"));
            ok(&h.call("2304", input).await.unwrap());
        }
        let bureau = Browser::login(&app.base, "bureau1").await;
        let r = bureau.post_form("/web/audit/run", &[("year", "2018")]).await;
        let done = bureau.finish_job(&r).await;
        assert!(done.text().contains("审核完成"), "{db:?}: {}", done.text());
        let run = app.store.audit_runs().await.unwrap()[0].clone();
        assert_eq!(run.region_code, COUNTY, "{db:?}: a county's run covers its own region");
        let leads = app.store.audit_leads(run.id, "", None).await.unwrap();
        assert!(!leads.is_empty(), "{db:?}: the split stay is a lead");
        let lead = &leads[0];
        assert_eq!(lead.admdvs, COUNTY, "{db:?}");

        for who in ["other_bureau", "other_audit"] {
            let b = Browser::login(&app.base, who).await;
            let r = b.get(&format!("/web/audit?run={}", run.id)).await;
            assert_eq!(r.status, 404, "{db:?}: {who} sees another county's run: {}", r.text());
            let r = b.get(&format!("/web/audit/lead/{}", lead.id)).await;
            assert_eq!(r.status, 404, "{db:?}: {who} reads another county's lead");
            let r = b.post_form(&format!("/web/audit/lead/{}", lead.id), &[("action", "dismiss"), ("note", "不是我县的")]).await;
            assert_eq!(r.status, 404, "{db:?}: {who} dismisses another county's lead: {}", r.text());
            let r = b.post_form(&format!("/web/rectify/from-lead/{}", lead.id), &[]).await;
            assert!(matches!(r.status, 403 | 404), "{db:?}: {who} turns another county's lead into an item: {}", r.text());
        }
        assert_eq!(app.store.audit_lead(lead.id).await.unwrap().unwrap().state, "open", "{db:?}: the lead is untouched");
        assert_eq!(app.store.count("rectifications").await.unwrap(), 0, "{db:?}");
        // The county's own bureau sees and judges it.
        let r = bureau.get(&format!("/web/audit/lead/{}", lead.id)).await;
        assert_eq!(r.status, 200, "{db:?}");

        // A neighbour's run covers only the neighbour's settlements (none here) and the county cannot see it.
        let other = Browser::login(&app.base, "other_bureau").await;
        other.finish_job(&other.post_form("/web/audit/run", &[("year", "2018")]).await).await;
        // The job is its starter's: another user (the county's bureau) does not see it.
        let job = other.post_form("/web/audit/run", &[("year", "2018")]).await.header("location");
        assert_eq!(bureau.get(&job).await.status, 404, "{db:?}: another user's job");
        other.finish_job(&other.post_form("/web/audit/run", &[("year", "2018")]).await).await;
        let runs = app.store.audit_runs().await.unwrap();
        assert_eq!((runs[0].region_code.as_str(), runs[0].claims), (OTHER_COUNTY, 0), "{db:?}");
        let r = bureau.get(&format!("/web/audit?run={}", runs[0].id)).await;
        assert_eq!(r.status, 404, "{db:?}: the county sees the neighbour's run");

        // A whole-database reconciliation by someone whose region does not cover it.
        let r = other.post_form("/web/worklist/reconcile", &[]).await;
        assert_eq!(r.status, 403, "{db:?}: {}", r.text());
        assert!(r.text().contains("范围"), "{db:?}: {}", r.text());
        let r = bureau.post_form("/web/worklist/reconcile", &[]).await;
        let done = bureau.finish_job(&r).await;
        assert!(done.text().contains("比对完成"), "{db:?}: the county's bureau covers every person of this registry: {}", done.text());
        // The button is offered only where it would be allowed.
        assert!(bureau.get("/web/worklist").await.text().contains("立即重新比对"), "{db:?}: the county's bureau is offered it");
        let page = other.get("/web/worklist").await;
        assert_eq!(page.status, 200, "{db:?}");
        assert!(!page.text().contains("立即重新比对"), "{db:?}: the neighbour is not offered a run it may not start");

        // The province's disease list: not editable by a county, nor by another province's bureau.
        let edit = [("list_code", "gansu-50"), ("no", "51"), ("name", "测试病种"), ("icd10", "C99")];
        for who in ["bureau1", "other_bureau"] {
            let r = Browser::login(&app.base, who).await.post_form("/web/mdt/lists/save", &edit).await;
            assert_eq!(r.status, 403, "{db:?}: {who} edits the province's list: {}", r.text());
        }
        let admin = Browser::login(&app.base, "admin1").await;
        assert_eq!(admin.post_form("/web/mdt/lists/save", &edit).await.status, 303, "{db:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_township_or_village_account_is_not_widened_to_its_county() {
    for db in BACKENDS {
        let app = spawn_app(db, 2).await;
        users(&app).await;
        add_hospital(&app.store, "H62042200009", 1).await.unwrap();
        for who in ["town1", "cadre_a"] {
            let b = Browser::login(&app.base, who).await;
            for path in ["/web/reports", "/web/reports?region=620422", "/web/funds"] {
                let r = b.get(path).await;
                assert_eq!(r.status, 403, "{db:?}: {who} {path}: {}", r.text());
            }
        }
        let town = Browser::login(&app.base, "town1").await;
        let r = town.post_form("/web/funds/budget", &[("code", "H62042200009"), ("year", "2018"), ("amount", "100000")]).await;
        assert_eq!(r.status, 403, "{db:?}: a township writes a county hospital's budget: {}", r.text());
        assert_eq!(app.store.budgets(2018).await.unwrap().len(), 0, "{db:?}");
        let bureau = Browser::login(&app.base, "bureau1").await;
        assert_eq!(bureau.get("/web/funds").await.status, 200, "{db:?}");
        let r = bureau.post_form("/web/funds/budget", &[("code", "H62042200009"), ("year", "2018"), ("amount", "100000")]).await;
        assert_eq!(r.status, 303, "{db:?}: {}", r.text());
        app.stop().await;
    }
}

// ───────────────────────────── 6. CSRF ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_changes_need_this_sites_origin_and_the_sessions_token() {
    for db in BACKENDS {
        let app = spawn_app(db, 2).await;
        users(&app).await;
        let bureau = Browser::login(&app.base, "bureau1").await;
        let token = bureau.csrf().await.expect("pages carry the token");
        let line = || vec![("region", COUNTY), ("year", "2018"), ("income", "9000"), ("share", "50"), ("source", "测试")];
        let lines = || async { app.store.count("warning_lines").await.unwrap() };
        let cookie = format!("bz_session={}", bureau.token.clone().unwrap());
        let post = |origin: Option<&'static str>, site: Option<&'static str>, with_token: bool| {
            let mut pairs = line();
            if with_token {
                pairs.push(("csrf", token.as_str()));
            }
            let body = serde_urlencoded::to_string(&pairs).unwrap();
            let mut rb = bureau
                .http
                .post(format!("{}/web/risk/line", app.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie.clone());
            if let Some(o) = origin {
                rb = rb.header("origin", o);
            }
            if let Some(s) = site {
                rb = rb.header("sec-fetch-site", s);
            }
            rb.body(body).send()
        };
        let before = lines().await;
        let r = post(Some("http://evil.example"), None, true).await.unwrap();
        assert_eq!(r.status(), 403, "{db:?}: another site's origin");
        assert!(has_cjk(&r.text().await.unwrap()), "{db:?}");
        let r = post(None, Some("cross-site"), true).await.unwrap();
        assert_eq!(r.status(), 403, "{db:?}: a cross-site fetch");
        let r = post(None, None, false).await.unwrap();
        assert_eq!(r.status(), 403, "{db:?}: an old browser without the token");
        let mut wrong = line();
        wrong.push(("csrf", "0000"));
        let r = bureau.try_post_form_raw("/web/risk/line", &wrong).await.unwrap();
        assert_eq!(r.status, 403, "{db:?}: a wrong token");
        assert_eq!(lines().await, before, "{db:?}: nothing refused was written");
        let own = format!("http://{}", app.base.trim_start_matches("http://"));
        let r = post(Some(Box::leak(own.into_boxed_str())), Some("same-origin"), true).await.unwrap();
        assert_eq!(r.status(), 303, "{db:?}: this site, with the token");
        assert_eq!(lines().await, before + 1, "{db:?}");
        // A forged login (login CSRF) is refused too; a bearer-token API call needs no token.
        let r = bureau
            .http
            .post(format!("{}/login", app.base))
            .header("origin", "http://evil.example")
            .form(&[("username", "bureau1"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{db:?}");
        let (st, v) = bureau.rest().post("/api/logout", json!({})).await;
        assert_eq!(st, 200, "{db:?}: {v}");
        app.stop().await;
    }
}

// ───────────────────────────── 7. login ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_wrong_passwords_lock_the_account_and_are_recorded() {
    for db in BACKENDS {
        let app = spawn_app(db, 1).await;
        users(&app).await;
        let anon = Rest::anonymous(&app.base);
        let limit = Config::default().login_max_failures_per_account;
        for k in 1..=limit {
            let (st, v) = anon.post("/api/login", json!({"username": "bureau1", "password": "wrong-pass-1"})).await;
            let expected = if k < limit { 401 } else { 429 };
            assert_eq!(st, expected, "{db:?}: attempt {k}: {v}");
        }
        let (st, v) = anon.post("/api/login", json!({"username": "bureau1", "password": PASSWORD})).await;
        assert_eq!(st, 429, "{db:?}: the right password while locked: {v}");
        assert!(v["error"].as_str().unwrap().contains("分钟后再试"), "{db:?}: {v}");
        // The lock is per account: another account still logs in (also through the form).
        let (st, _) = anon.post("/api/login", json!({"username": "audit1", "password": PASSWORD})).await;
        assert_eq!(st, 200, "{db:?}");
        let admin = Rest::login(&app.base, "admin1", PASSWORD).await;
        let (st, v) = admin.get("/api/audit-log?limit=50").await;
        assert_eq!(st, 200);
        let actions: Vec<&str> = v["records"].as_array().unwrap().iter().filter_map(|r| r["action"].as_str()).collect();
        assert_eq!(actions.iter().filter(|a| **a == "login.failed").count(), limit as usize, "{db:?}: {actions:?}");
        assert!(actions.contains(&"login.locked"), "{db:?}: {actions:?}");
        assert!(!v.to_string().contains("wrong-pass-1"), "{db:?}: no password in the log");
        app.stop().await;
    }
}

// ───────────────────────────── 8. one hospital and the writer ─────────────────────────────

fn lines(p: &baozhang_server::testkit::SeedPerson, mdtrt: &str, from: usize, n: usize) -> serde_json::Value {
    let v: Vec<_> = (from..from + n)
        .map(|k| json!({"feedetl_sn": format!("L{k:06}"), "mdtrt_id": mdtrt, "psn_no": p.psn_no, "det_item_fee_sumamt": "1.00", "chrgitm_lv": "01"}))
        .collect();
    json!({ "feedetail": v })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fee_lines_per_visit_are_capped_and_a_repeat_upload_adds_nothing() {
    for db in BACKENDS {
        let app = spawn_app_with(db, 2, Config { max_fee_lines_per_visit: 50, ..Config::default() }).await;
        let (h, p) = (&app.hospital, &app.people[0]);
        let m = h.admit(p, "2018-06-01").await.unwrap();
        ok(&h.call("2301", lines(p, &m, 0, 30)).await.unwrap());
        ok(&h.call("2301", lines(p, &m, 0, 30)).await.unwrap());
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 30, "{db:?}: the same lines again add nothing");
        let r = h.call("2301", lines(p, &m, 30, 30)).await.unwrap();
        let msg = refused(&r);
        assert!(msg.contains("最多 50 条") && msg.contains("已上传 30 条"), "{db:?}: {msg}");
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 30, "{db:?}: a refused upload adds nothing");
        ok(&h.call("2301", lines(p, &m, 30, 20)).await.unwrap());
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 50, "{db:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_institution_over_its_share_waits_for_its_own_slots() {
    let app = spawn_app_with(common::Db::Sqlite, 4, Config { max_nonces_per_institution: 20, ..Config::default() }).await;
    let flood = app.other_hospital("H62042200002").await;
    // Institution 2 sends more fresh nonces than its quota at once: it alone is refused.
    let mut refusals = 0;
    for _ in 0..30 {
        let r = flood.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": app.people[0].id_no}})).await.unwrap();
        if r["infcode"] == -1 {
            assert!(r["err_msg"].as_str().unwrap().contains("过于频繁"), "{r}");
            refusals += 1;
        }
    }
    assert!(refusals >= 9, "the institution's nonce quota held ({refusals} refused)");
    // Institution 1 is not affected.
    let r = app.hospital.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": app.people[1].id_no}})).await.unwrap();
    ok(&r);
    app.stop().await;
}

// ───────────────────────────── 10. replays ─────────────────────────────

/// A signed request's body and headers, to be sent again as an attacker who captured it would.
struct Captured {
    body: Vec<u8>,
    headers: Vec<(&'static str, Option<String>)>,
}

fn capture(c: &NatClient, infno: &str, msgid: &str, input: serde_json::Value) -> Captured {
    let body = serde_json::to_vec(&c.envelope(infno, msgid, input)).unwrap();
    let ts = baozhang_server::clock::unix_now().to_string();
    let nonce = baozhang_server::random_hex(8);
    let sig = baozhang_server::national::sign(&c.secret, &ts, &nonce, &body);
    let headers = vec![
        ("x-tif-paasid", Some(c.fixmedins_code.clone())),
        ("x-tif-timestamp", Some(ts)),
        ("x-tif-nonce", Some(nonce)),
        ("x-tif-signature", Some(sig)),
    ];
    Captured { body, headers }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_captured_request_is_refused_after_a_restart_and_msgids_belong_to_their_institution() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = app.hospital.clone();
        let p = &app.people[0];
        let read = capture(&h, "1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}}));
        let (_, text) = post_with_headers(&h, read.body.clone(), &read.headers).await;
        ok(&parse_resp(&text));
        // Another server process over the same database (its memory knows no nonce): the replay is refused.
        let twin = app.twin().await;
        let mut at_twin = h.clone();
        at_twin.base = twin.base.clone();
        let (_, text) = post_with_headers(&at_twin, read.body.clone(), &read.headers).await;
        assert!(refused(&parse_resp(&text)).contains("已使用过"), "{db:?}: {text}");
        let (_, text) = post_with_headers(&h, read.body.clone(), &read.headers).await;
        assert!(refused(&parse_resp(&text)).contains("已使用过"), "{db:?}: {text}");
        // The same for a write.
        let admit = json!({"mdtrtinfo": {"psn_no": p.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "med_type": "21", "begntime": "2018-06-01 08:00:00"}});
        let write = capture(&h, "2401", "SAMEMSGID0001", admit.clone());
        let (_, text) = post_with_headers(&h, write.body.clone(), &write.headers).await;
        ok(&parse_resp(&text));
        let (_, text) = post_with_headers(&at_twin, write.body.clone(), &write.headers).await;
        assert!(refused(&parse_resp(&text)).contains("已使用过"), "{db:?}: {text}");
        // A retry with a fresh signature replays the stored answer (the msgid's idempotency).
        let again = h.call_with("2401", "SAMEMSGID0001", admit.clone()).await.unwrap();
        ok(&again);
        assert_eq!(app.store.count("mdtrts").await.unwrap(), 1, "{db:?}");
        // Another institution's same msgid is its own message, not a replay or a squat.
        let h2 = app.other_hospital("H62042200002").await;
        let q = &app.people[2];
        let r = h2
            .call_with(
                "2401",
                "SAMEMSGID0001",
                json!({"mdtrtinfo": {"psn_no": q.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": q.id_no, "med_type": "21", "begntime": "2018-06-01 08:00:00"}}),
            )
            .await
            .unwrap();
        ok(&r);
        assert_ne!(r["output"]["result"]["mdtrt_id"], again["output"]["result"]["mdtrt_id"], "{db:?}");
        assert_eq!(app.store.count("mdtrts").await.unwrap(), 2, "{db:?}");
        // Nonces have the gateway's shape.
        let mut long = capture(&h, "1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}}));
        let nonce = "n".repeat(200);
        let ts = long.headers[1].1.clone().unwrap();
        long.headers[2].1 = Some(nonce.clone());
        long.headers[3].1 = Some(baozhang_server::national::sign(&h.secret, &ts, &nonce, &long.body));
        let (_, text) = post_with_headers(&h, long.body, &long.headers).await;
        assert!(refused(&parse_resp(&text)).contains("6–64"), "{db:?}: {text}");
        twin.stop().await;
        app.stop().await;
    }
}

// ───────────────────────────── 11. the writer ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_job_is_refused_and_the_next_one_commits() {
    for db in BACKENDS {
        let app = spawn_app_with(db, 4, Config { panic_on_msgid_suffix: Some("BOOM".into()), ..Config::default() }).await;
        let (h, p) = (&app.hospital, &app.people[0]);
        let m = h.admit(p, "2018-06-01").await.unwrap();
        let input = NatClient::settle_input(p, &m, "5000.00", "0", "0", "0", "5000.00");
        let r = h.call_with("2304", "SETTLEBOOM", input.clone()).await.unwrap();
        assert!(refused(&r).contains("未记账"), "{db:?}: {r}");
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 0, "{db:?}");
        // The writer lives on: the next job commits, and /healthz says so.
        ok(&h.call("2304", input).await.unwrap());
        let (st, v) = Rest::anonymous(&app.base).get("/healthz").await;
        assert_eq!(st, 200, "{db:?}: {v}");
        assert_eq!(v["writer"]["alive"], true, "{db:?}: {v}");
        assert_eq!(v["writer"]["panicked_jobs"], 1, "{db:?}: {v}");
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_years_totals_are_bounded_so_money_cannot_overflow() {
    let app = spawn_app(common::Db::Sqlite, 2).await;
    let (h, p) = (&app.hospital, &app.people[0]);
    // The largest bill a field allows, again and again: 10¹⁰ yuan a person-year is the bound.
    let max = "100000000.00";
    let mut settled = 0;
    let refusal = loop {
        let m = h.admit(p, "2018-06-01").await.unwrap();
        let r = h.call("2304", NatClient::settle_input(p, &m, max, "0", "0", "0", max)).await.unwrap();
        if r["infcode"] == 0 {
            settled += 1;
            assert!(settled <= 100, "no bound reached");
            continue;
        }
        break refused(&r);
    };
    assert_eq!(settled, 100, "exactly up to the bound");
    assert!(refusal.contains("系统上限"), "{refusal}");
    assert_ledger_ok(&app.store).await;
    app.stop().await;
}

// ───────────────────────────── 12. headers, cookies, sessions, households ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_carry_security_headers_and_logout_ends_every_session() {
    for db in BACKENDS {
        let app = spawn_app_with(db, 2, Config { secure_cookies: true, ..Config::default() }).await;
        users(&app).await;
        let anon = Browser::anonymous(&app.base);
        for path in ["/login", "/healthz", "/static/app.js", "/web/"] {
            let r = anon.get(path).await;
            let csp = r.header("content-security-policy");
            assert!(
                csp.contains("frame-ancestors 'none'")
                    && csp.contains("script-src 'self'")
                    && !csp.contains("script-src 'self' 'unsafe-inline'"),
                "{db:?}: {path}: {csp}"
            );
            assert_eq!(r.header("x-content-type-options"), "nosniff", "{db:?}: {path}");
            assert_eq!(r.header("x-frame-options"), "DENY", "{db:?}: {path}");
            assert_eq!(r.header("referrer-policy"), "same-origin", "{db:?}: {path}");
            assert!(r.header("strict-transport-security").contains("max-age="), "{db:?}: {path}");
        }
        let r = anon.try_post_form_raw("/login", &[("username", "bureau1"), ("password", PASSWORD), ("next", "/web/")]).await.unwrap();
        assert!(r.header("set-cookie").contains("; Secure"), "{db:?}: {}", r.header("set-cookie"));
        // Logging out through the API ends the cookie session it was called with.
        let b = Browser::login(&app.base, "bureau1").await;
        assert_eq!(b.get("/web/region").await.status, 303);
        let cookie = format!("bz_session={}", b.token.clone().unwrap());
        let token = b.csrf().await.unwrap();
        let r =
            b.http.post(format!("{}/api/logout", app.base)).header("cookie", cookie).header("x-csrf-token", token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{db:?}");
        let r = b.get("/web/region").await;
        assert!(r.status == 303 && r.header("location").starts_with("/login"), "{db:?}: the cookie session outlived the logout");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_household_page_shows_only_the_members_inside_the_users_village() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        // One household number in two villages (two offices numbered alike, or a data error).
        let (a, b) = (VILLAGES[0], VILLAGES[1]);
        let mut csv = String::from("户编号,姓名,证件号码,性别,与户主关系,行政区划代码,贫困状态,识别年度\n");
        csv.push_str(&format!("HSHARED001,村甲户主,{},{},户主,{a},未脱贫,2017\n", app.people[0].id_no, app.people[0].sex_zh()));
        csv.push_str(&format!("HSHARED001,村乙成员,{},{},户主,{b},未脱贫,2017\n", app.people[1].id_no, app.people[1].sex_zh()));
        let path = app._dir.path().join("shared.csv");
        std::fs::write(&path, csv).unwrap();
        let opts = baozhang_ingest::rosters::ImportOptions::default();
        baozhang_ingest::rosters::import_file(&app.store, baozhang_ingest::rosters::RosterKind::Poverty, &path, &opts, &mut |_| {})
            .await
            .unwrap();
        let mask = |i: usize| baozhang_ingest::worklist::mask_id(&app.people[i].id_no);
        for (who, own, other) in [("cadre_a", 0, 1), ("cadre_b", 1, 0)] {
            let r = Browser::login(&app.base, who).await.get("/web/household/HSHARED001").await;
            assert_eq!(r.status, 200, "{db:?}: {who}: {}", r.text());
            let html = r.text();
            assert!(html.contains(&mask(own)), "{db:?}: {who} sees the member of their village");
            assert!(!html.contains(&mask(other)), "{db:?}: {who} sees a member of another village");
        }
        app.stop().await;
    }
}

trait SexZh {
    fn sex_zh(&self) -> &'static str;
}

impl SexZh for baozhang_server::testkit::SeedPerson {
    /// The sex the ID number encodes (17th digit odd: male).
    fn sex_zh(&self) -> &'static str {
        if self.id_no.as_bytes()[16] % 2 == 1 {
            "男"
        } else {
            "女"
        }
    }
}

// ───────────────────────────── periodic forms (issue 19) ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_forms_keep_to_their_units_and_refuse_a_hostile_workbook() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        let page = format!("/web/forms/expired_drugs/entry?region={COUNTY}&unit=620422100&period=2018-05");
        let form = |seen: &'static str, on: &'static str| {
            vec![
                ("region", COUNTY),
                ("unit", "620422100"),
                ("period", "2018-05"),
                ("seen_version", seen),
                ("filed_on", on),
                ("f_staff", "1"),
                ("f_th", "0"),
                ("f_vc", "1"),
                ("f_clinic", "0"),
                ("f_pharmacy", "0"),
                ("f_other", "0"),
                ("f_units_total", "1"),
                ("f_self_found", "0"),
                ("f_seized", "0"),
                ("f_orders_total", "0"),
                ("f_orders_done", "0"),
                ("f_cases", "0"),
                ("f_cases_closed", "0"),
                ("f_fines", "0"),
                ("f_notified", "0"),
                ("f_filler", "甲"),
                ("f_reviewer", "乙"),
            ]
        };
        // Another county's bureau and auditor: refused, whatever region they name.
        for user in ["other_bureau", "other_audit"] {
            let b = Browser::login(&app.base, user).await;
            assert_eq!(b.page(&page).await.status, 403, "{db:?}: {user}");
            assert_eq!(b.post_form("/web/forms/expired_drugs/entry", &form("0", "")).await.status, 403, "{db:?}: {user}");
        }
        // The township's own account files its report, today: it cannot backdate its own first submission.
        let town = Browser::login(&app.base, "town1").await;
        assert_eq!(town.post_form("/web/forms/expired_drugs/entry", &form("0", "2018-05-20")).await.status, 303, "{db:?}");
        let h = app.store.form_history("expired_drugs", COUNTY, "620422100", 201805).await.unwrap();
        assert_ne!(h[0].filed_on, 20180520, "{db:?}: the township's own date is not taken");
        // …and may not return it (the county does), nor read the county's office reports.
        let ret = [("region", COUNTY), ("unit", "620422100"), ("period", "2018-05"), ("seen_version", "1"), ("reason", "x")];
        assert_eq!(town.post_form("/web/forms/expired_drugs/return", &ret).await.status, 403, "{db:?}");
        let office = format!("/web/forms/info_exchange/entry?region={COUNTY}&unit=civil&period=2018-05");
        assert_eq!(town.page(&office).await.status, 403, "{db:?}");
        assert_eq!(Browser::login(&app.base, "cadre_a").await.page(&page).await.status, 403, "{db:?}");
        // An auditor may not file, so its upload is refused before the file is read.
        let bomb = sparse_bomb();
        let env = [("region", COUNTY), ("unit", "620422100"), ("period", "2018-05")];
        let auditor = Browser::login(&app.base, "audit1").await;
        assert_eq!(auditor.post_multipart("/web/forms/expired_drugs/upload", &env, "bomb.xlsx", &bomb).await.status, 403, "{db:?}");
        // A workbook claiming a huge sheet: refused with the cell named, and the service goes on.
        let bureau = Browser::login(&app.base, "bureau1").await;
        let r = bureau.post_multipart("/web/forms/expired_drugs/upload", &env, "bomb.xlsx", &bomb).await;
        assert_eq!(r.status, 400, "{db:?}: {}", r.text());
        assert!(r.text().contains("XFD1048576") && r.text().contains("超出导入上限"), "{db:?}: {}", r.text());
        let r = bureau.post_multipart("/web/forms/expired_drugs/upload", &env, "x.xlsx", b"PK\x03\x04 broken").await;
        assert!(r.status == 400 && !r.text().contains("Zip") && has_cjk(&r.text()), "{db:?}: {}", r.text());
        let p = &app.people[0];
        let m = app.hospital.admit(p, "2018-06-01").await.unwrap();
        ok(&app.hospital.call("2304", NatClient::settle_input(p, &m, "1000.00", "0", "0", "0", "1000.00")).await.unwrap());
        assert_eq!(app.store.form_history("expired_drugs", COUNTY, "620422100", 201805).await.unwrap().len(), 1, "{db:?}");
        app.stop().await;
    }
}
