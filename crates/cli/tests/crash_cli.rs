//! Crash safety of `baozhang serve`, end to end through the binary: a server killed with SIGKILL in the
//! middle of a load of admissions (2401) and settlements (2304) must lose nothing it answered and settle
//! nothing twice; after a restart, resubmitting every message (same msgids, same bytes) must settle every
//! visit exactly once, answer what was answered before with the very same bytes, and a further
//! resubmission must change nothing — on SQLite and on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baozhang_core::Fen;
use baozhang_server::testkit::{add_hospital, seed_people, NatClient, SeedPerson};
use baozhang_store::ledger::{self, SettlementFilter, StoredSettlement};
use baozhang_store::Store;
use serde_json::{json, Value};

const HOSPITAL: &str = "H62042200001";
/// People in the registry.
const PEOPLE: usize = 300;
/// Visits (each an admission and a settlement); three per person, so accumulators are shared.
const VISITS: usize = 300;
const VISITS_PER_PERSON: usize = 3;
/// Concurrent senders.
const WORKERS: usize = 16;
/// The server is killed once this share of the messages has been answered.
const KILL_AFTER_SHARE: f64 = 0.4;
/// Nothing here should take anywhere near this long.
const PATIENCE: Duration = Duration::from_secs(120);

// ───────────────────────────── databases ─────────────────────────────

fn pg_admin_url() -> String {
    std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database, dropped at the end.
struct Pg {
    name: String,
}

impl Pg {
    fn create() -> (Pg, String) {
        let base = pg_admin_url();
        let name = format!(
            "bz_crash_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let ok = Command::new("psql")
            .args([base.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "PostgreSQL at {base} (and psql) are required for this test");
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        (Pg { name }, url)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([pg_admin_url().as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}

// ───────────────────────────── the server process ─────────────────────────────

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baozhang"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A `baozhang serve` child; killed (SIGKILL) if still running when dropped, so a failing test leaves
/// no server behind.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    async fn start(url: &str, dir: &Path, tag: &str) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("serve-{tag}.log"));
        let child = bin()
            .args(["serve", "--addr", &addr, "--database-url", url])
            .env_remove("BAOZHANG_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn baozhang serve");
        let mut s = Server { child, base: format!("http://{addr}"), log };
        s.wait_healthy().await;
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls GET /healthz until it answers 200.
    async fn wait_healthy(&mut self) {
        let http = NatClient::new(&self.base, HOSPITAL, "").http;
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("baozhang serve exited early ({status}):\n{}", self.log_text());
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(t.elapsed() < Duration::from_secs(30), "baozhang serve did not become healthy in 30 s:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no shutdown hook runs, the writer is stopped wherever it is.
    fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// SIGTERM, then waits for the graceful shutdown.
    fn terminate(&mut self) -> ExitStatus {
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "the server did not stop within 30 s of SIGTERM:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ───────────────────────────── the messages ─────────────────────────────

#[derive(Clone)]
struct Msg {
    infno: &'static str,
    msgid: String,
    /// Serialized once: every submission sends these very bytes.
    body: Vec<u8>,
}

#[derive(Clone)]
struct Visit {
    mdtrt_id: String,
    /// The admission, then the settlement.
    msgs: [Msg; 2],
}

/// The k-th bill in fen: (total, fulamt_ownpay, overlmt_selfpay, preselfpay, inscp_scp) — compliant
/// 3,000–27,000 yuan, so three of them take a person into the later layers and up to some caps.
fn bill(k: usize) -> [i64; 5] {
    let inscp = 300_000 + ((k * 7_919) % 41) as i64 * 60_000 + k as i64 * 13;
    let ful = (k % 5) as i64 * 25_000 + k as i64;
    let over = if k.is_multiple_of(3) { 12_345 } else { 0 };
    let pre = (k % 7) as i64 * 3_333;
    [inscp + ful + over + pre, ful, over, pre, inscp]
}

/// Visit k of person k / 3: admitted on a day of 2018, discharged three days later.
fn plan(client: &NatClient, people: &[SeedPerson]) -> Vec<Visit> {
    (0..VISITS)
        .map(|k| {
            let p = &people[k / VISITS_PER_PERSON];
            let (month, day) = (1 + k % 12, 1 + k % 25);
            let admit_id = format!("{HOSPITAL}ADM{k:06}");
            let settle_id = format!("{HOSPITAL}SET{k:06}");
            let mdtrt_id = baozhang_server::national::mdtrt_id_of(HOSPITAL, &admit_id);
            let admit = json!({"mdtrtinfo": {"psn_no": p.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
                "med_type": "21", "ipt_no": "", "begntime": format!("2018-{month:02}-{day:02} 08:00:00")}});
            let [total, ful, over, pre, inscp] = bill(k).map(|f| Fen(f).to_string());
            let mut settle = NatClient::settle_input(p, &mdtrt_id, &total, &ful, &over, &pre, &inscp);
            settle["data"]["dscg_time"] = json!(format!("2018-{month:02}-{:02} 10:00:00", day + 3));
            let body = |infno: &str, msgid: &str, input: Value| serde_json::to_vec(&client.envelope(infno, msgid, input)).unwrap();
            Visit {
                msgs: [
                    Msg { infno: "2401", body: body("2401", &admit_id, admit), msgid: admit_id },
                    Msg { infno: "2304", body: body("2304", &settle_id, settle), msgid: settle_id },
                ],
                mdtrt_id,
            }
        })
        .collect()
}

// ───────────────────────────── the load ─────────────────────────────

/// Message i is `visits[i / 2].msgs[i % 2]`.
struct Load {
    next_visit: AtomicUsize,
    answered: AtomicUsize,
    responses: Mutex<Vec<Option<String>>>,
    /// Transport failures (no answer): (message index, error).
    failures: Mutex<Vec<(usize, String)>>,
    /// Set when a worker has stopped.
    done: AtomicUsize,
}

/// Sends every visit (admission, then — once it is answered — settlement) with `WORKERS` concurrent
/// senders. A sender stops at its first transport failure (the server is gone).
fn fire(client: &NatClient, visits: &Arc<Vec<Visit>>) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let load = Arc::new(Load {
        next_visit: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        responses: Mutex::new(vec![None; visits.len() * 2]),
        failures: Mutex::new(Vec::new()),
        done: AtomicUsize::new(0),
    });
    let tasks = (0..WORKERS)
        .map(|_| {
            let (client, visits, load) = (client.clone(), visits.clone(), load.clone());
            tokio::spawn(async move {
                'visits: loop {
                    let k = load.next_visit.fetch_add(1, Ordering::SeqCst);
                    if k >= visits.len() {
                        break;
                    }
                    for (j, m) in visits[k].msgs.iter().enumerate() {
                        let i = 2 * k + j;
                        match client.post_raw(m.body.clone()).await {
                            Ok(text) => {
                                load.responses.lock().unwrap()[i] = Some(text);
                                load.answered.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => {
                                load.failures.lock().unwrap().push((i, e));
                                break 'visits;
                            }
                        }
                    }
                }
                load.done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    (load, tasks)
}

async fn join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    tokio::time::timeout(PATIENCE, async {
        for t in tasks {
            t.await.expect("sender task");
        }
    })
    .await
    .expect("the senders finish");
}

/// Resubmits every message to a running server and returns the responses (all must be answered).
async fn resubmit_all(client: &NatClient, visits: &Arc<Vec<Visit>>) -> Vec<String> {
    let (load, tasks) = fire(client, visits);
    join(tasks).await;
    let failures = load.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "transport failures against a running server: {failures:?}");
    let responses = load.responses.lock().unwrap().clone();
    responses.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|| panic!("message {i} was not answered"))).collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"))
}

fn assert_ok(m: &Msg, text: &str) {
    assert_eq!(parse(text)["infcode"], 0, "{} {} was not accepted: {text}", m.infno, m.msgid);
}

// ───────────────────────────── checks on the database ─────────────────────────────

/// Every ledger_settlements row, in commit order.
async fn all_settlements(store: &Store) -> Vec<StoredSettlement> {
    let mut all = Vec::new();
    loop {
        let page = store.settlements(&SettlementFilter { limit: 1000, offset: all.len() as i64, ..Default::default() }).await.unwrap();
        let n = page.len();
        all.extend(page);
        if n < 1000 {
            return all;
        }
    }
}

/// The live settlements (not cancellations, not cancelled) by visit; panics on a visit settled twice.
fn live_by_visit(all: &[StoredSettlement]) -> BTreeMap<String, StoredSettlement> {
    let mut by: BTreeMap<String, StoredSettlement> = BTreeMap::new();
    for s in all.iter().filter(|s| s.reverses.is_none() && s.cancelled_by.is_none()) {
        if let Some(prev) = by.insert(s.mdtrt_id.clone(), s.clone()) {
            panic!("visit {} has two live settlements: {} and {}", s.mdtrt_id, prev.setl_id, s.setl_id);
        }
    }
    by
}

/// `baozhang ledger verify` through the binary: exit 0 and 结果：一致.
fn cli_ledger_verify(url: &str) -> String {
    let out =
        bin().args(["ledger", "verify", "--database-url", url]).env_remove("BAOZHANG_DATABASE_URL").output().expect("run ledger verify");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.contains("结果：一致"),
        "ledger verify failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn store_ledger_verify(store: &Store) -> ledger::VerifyReport {
    let rep = ledger::verify(store).await.unwrap();
    assert!(rep.ok(), "ledger::verify: {:?}", rep.problems);
    rep
}

/// A settlement response agrees with the ledger row of its visit.
fn assert_response_matches_ledger(visit: &Visit, text: &str, live: &BTreeMap<String, StoredSettlement>) {
    let v = parse(text);
    let si = &v["output"]["setlinfo"];
    let row = live.get(&visit.mdtrt_id).unwrap_or_else(|| panic!("answered settlement of {} is not in the ledger: {text}", visit.mdtrt_id));
    assert_eq!(si["setl_id"], row.setl_id.as_str(), "{}: response and ledger name different settlements", visit.mdtrt_id);
    assert_eq!(si["psn_part_amt"].to_string(), Fen(row.psn_part_amt).to_string(), "{}: psn_part_amt", visit.mdtrt_id);
    assert_eq!(si["fund_pay_sumamt"].to_string(), Fen(row.fund_pay_sumamt).to_string(), "{}: fund_pay_sumamt", visit.mdtrt_id);
    assert_eq!(si["medfee_sumamt"].to_string(), Fen(row.medfee_sumamt).to_string(), "{}: medfee_sumamt", visit.mdtrt_id);
}

// ───────────────────────────── the scenario ─────────────────────────────

async fn crash_and_recover(backend: &str, url: &str, dir: &Path) {
    let t0 = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |what: &'static str, timings: &mut Vec<(&str, Duration)>| {
        timings.push((what, lap.elapsed()));
        lap = Instant::now();
    };

    // 1. Registry and hospital, then the store is closed: from here on only the binary touches the database.
    let (people, secret) = {
        let store = Store::open(url).await.expect("open store");
        let people = seed_people(&store, PEOPLE, dir).await.expect("seed people");
        let secret = add_hospital(&store, HOSPITAL, 2).await.expect("register hospital");
        store.pool().close().await;
        (people, secret)
    };
    mark("seed", &mut timings);

    // 2–3. A server; sign in; the messages.
    let mut server = Server::start(url, dir, "1").await;
    let mut client = NatClient::new(&server.base, HOSPITAL, &secret);
    client.sign_in().await.expect("sign in");
    let visits = Arc::new(plan(&client, &people));
    let total = visits.len() * 2;
    let all_msgs: Vec<&Msg> = visits.iter().flat_map(|v| v.msgs.iter()).collect();
    mark("start", &mut timings);

    // 4. Load, and SIGKILL once 40% of the messages are answered.
    let threshold = (total as f64 * KILL_AFTER_SHARE) as usize;
    let (load, tasks) = fire(&client, &visits);
    let t_load = Instant::now();
    loop {
        if load.answered.load(Ordering::SeqCst) >= threshold {
            break;
        }
        assert!(load.done.load(Ordering::SeqCst) < WORKERS, "the senders stopped before the kill: {:?}", load.failures.lock().unwrap());
        assert!(t_load.elapsed() < PATIENCE, "only {} of {total} messages answered", load.answered.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let answered_at_signal = load.answered.load(Ordering::SeqCst);
    server.kill_hard();
    let load_time = t_load.elapsed();
    join(tasks).await;
    let before: Vec<Option<String>> = load.responses.lock().unwrap().clone();
    let failures = load.failures.lock().unwrap().clone();
    let answered: BTreeSet<usize> = before.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i).collect();
    mark("load+kill", &mut timings);
    assert!(answered.len() >= threshold && answered.len() < total, "the kill must fall mid-load: {} of {total} answered", answered.len());
    assert!(!failures.is_empty(), "the senders should have seen the server go away");
    for &i in &answered {
        assert_ok(all_msgs[i], before[i].as_deref().unwrap());
    }
    let log1 = server.log_text();
    drop(server);

    // 5. After the crash: consistent, nothing answered is missing, nothing is doubled.
    cli_ledger_verify(url);
    let store = Store::open(url).await.expect("reopen store");
    let rep = store_ledger_verify(&store).await;
    let crashed = all_settlements(&store).await;
    let live = live_by_visit(&crashed);
    assert!(crashed.iter().all(|s| s.reverses.is_none()), "no cancellation was sent");
    let ours: BTreeSet<&str> = visits.iter().map(|v| v.mdtrt_id.as_str()).collect();
    for s in &crashed {
        assert!(ours.contains(s.mdtrt_id.as_str()), "unexpected settlement {} of {}", s.setl_id, s.mdtrt_id);
    }
    let mut admitted_in_db = 0;
    for (k, v) in visits.iter().enumerate() {
        let in_db = store.mdtrt(&v.mdtrt_id).await.unwrap();
        admitted_in_db += usize::from(in_db.is_some());
        for (j, m) in v.msgs.iter().enumerate() {
            let Some(text) = &before[2 * k + j] else { continue };
            // What was answered is stored with its response…
            let logged = store
                .msg(&baozhang_server::national::msg_key(HOSPITAL, &m.msgid))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("answered {} {} is not in the message log", m.infno, m.msgid));
            assert_eq!(&logged.response, text, "{}: the stored response differs from the one sent", m.msgid);
            // …and with its effect.
            if j == 0 {
                assert!(in_db.is_some(), "answered admission {} left no visit", m.msgid);
            } else {
                assert_response_matches_ledger(v, text, &live);
            }
        }
        if live.contains_key(&v.mdtrt_id) {
            assert!(in_db.as_ref().is_some_and(|m| m.status == "settled"), "{} settled in the ledger but not in mdtrts", v.mdtrt_id);
        }
    }
    let answered_settlements = answered.iter().filter(|i| *i % 2 == 1).count();
    let answered_admissions = answered.len() - answered_settlements;
    let crash_stats = format!(
        "answered {} of {total} before SIGKILL ({answered_at_signal} at the signal; {answered_admissions} admissions, {answered_settlements} settlements); \
         committed: {admitted_in_db} visits ({} unanswered), {} settlements ({} unanswered); {} senders cut off; ledger after crash: {} settlements, {} entries",
        answered.len(),
        admitted_in_db - answered_admissions,
        live.len(),
        live.len() - answered_settlements,
        failures.len(),
        rep.settlements,
        rep.entries,
    );
    store.pool().close().await;
    drop(store);
    mark("verify-after-crash", &mut timings);

    // 6. Restart and resubmit everything.
    let mut server = Server::start(url, dir, "2").await;
    let mut client2 = client.clone();
    client2.base = server.base.clone();
    client2.http = NatClient::new(&server.base, HOSPITAL, &secret).http; // no pooled connections to the dead server
    mark("restart", &mut timings);
    let second = resubmit_all(&client2, &visits).await;
    mark("resubmit", &mut timings);
    for (i, text) in second.iter().enumerate() {
        assert_ok(all_msgs[i], text);
        if let Some(old) = &before[i] {
            assert_eq!(
                text, old,
                "{} {}: the response after the restart differs from the one before the kill",
                all_msgs[i].infno, all_msgs[i].msgid
            );
        }
    }
    cli_ledger_verify(url);
    let store = Store::open(url).await.expect("reopen store");
    store_ledger_verify(&store).await;
    let settled = all_settlements(&store).await;
    assert!(settled.iter().all(|s| s.reverses.is_none()));
    assert_eq!(settled.len(), VISITS, "exactly one settlement per visit");
    let live = live_by_visit(&settled);
    assert_eq!(live.keys().map(String::as_str).collect::<BTreeSet<_>>(), ours, "every visit settled");
    for (k, v) in visits.iter().enumerate() {
        assert_response_matches_ledger(v, &second[2 * k + 1], &live);
        assert_eq!(store.mdtrt(&v.mdtrt_id).await.unwrap().map(|m| m.status), Some("settled".to_string()), "{}", v.mdtrt_id);
    }
    // Settlements committed before the kill kept their ids.
    for s in &crashed {
        assert_eq!(live[&s.mdtrt_id].setl_id, s.setl_id, "{}: the settlement committed before the kill was replaced", s.mdtrt_id);
    }
    let psn_sum: i64 = settled.iter().map(|s| s.psn_part_amt).sum();
    let ids: Vec<String> = settled.iter().map(|s| s.setl_id.clone()).collect();
    mark("verify-after-resubmit", &mut timings);

    // A third submission changes nothing.
    let third = resubmit_all(&client2, &visits).await;
    mark("resubmit-again", &mut timings);
    for (i, text) in third.iter().enumerate() {
        assert_eq!(text, &second[i], "{} {}: a third submission answered differently", all_msgs[i].infno, all_msgs[i].msgid);
    }
    let again = all_settlements(&store).await;
    assert_eq!(again.len(), VISITS, "a third submission added settlements");
    assert_eq!(again.iter().map(|s| s.psn_part_amt).sum::<i64>(), psn_sum, "a third submission changed psn_part_amt");
    assert_eq!(again.iter().map(|s| s.setl_id.clone()).collect::<Vec<_>>(), ids);
    store_ledger_verify(&store).await;
    cli_ledger_verify(url);
    store.pool().close().await;
    drop(store);

    // 7. Graceful shutdown.
    let status = server.terminate();
    assert!(status.success(), "SIGTERM should stop the server cleanly, got {status}:\n{}", server.log_text());
    let log2 = server.log_text();
    assert!(log2.contains("服务已停止"), "no shutdown message:\n{log2}");
    mark("sigterm", &mut timings);

    let panicked = |log: &str| log.contains("panicked");
    assert!(!panicked(&log1) && !panicked(&log2), "a server panicked:\n--- first ---\n{log1}\n--- second ---\n{log2}");
    let timing_text: Vec<String> = timings.iter().map(|(w, d)| format!("{w} {:.0} ms", d.as_secs_f64() * 1000.0)).collect();
    eprintln!(
        "[{backend}] {crash_stats}\n[{backend}] load until SIGKILL {:.0} ms; {}; total {:.1} s",
        load_time.as_secs_f64() * 1000.0,
        timing_text.join(", "),
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_load_loses_nothing_and_doubles_nothing() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", sqlite_dir.path().join("crash.db").display());
    crash_and_recover("sqlite", &url, sqlite_dir.path()).await;

    let pg_dir = tempfile::tempdir().unwrap();
    let (_pg, url) = Pg::create();
    crash_and_recover("postgres", &url, pg_dir.path()).await;
}
