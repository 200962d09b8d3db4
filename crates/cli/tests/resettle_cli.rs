//! `baozhang resettle` end to end through the binary on a small demo county (SQLite): a county's year
//! re-settled under a corrected policy, killed with SIGKILL in the middle, resumed by running the same
//! command again — every claim the dry run said would change is adjusted exactly once, `ledger verify`
//! passes (adjustments checked against the engine), and a further run writes nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_baozhang"));
    c.env_remove("BAOZHANG_DATABASE_URL");
    c
}

fn run_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = bin().current_dir(dir).args(args).output().expect("run baozhang");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The Huining policy with the assistance threshold lowered from 3,000 to 1,000 yuan: a correction that
/// changes most poor person-years of the demo county (same policy id, another version).
fn corrected_policy(dir: &Path) -> String {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/gansu-huining-2018.toml")).unwrap();
    let at = src.find("id = \"assistance\"").expect("assistance layer");
    let (head, tail) = src.split_at(at);
    let tail = tail.replacen("amount = { value = 3000,", "amount = { value = 1000,", 1);
    assert_ne!(tail, src[at..], "the threshold was found");
    let path = dir.join("huining-corrected.toml");
    std::fs::write(&path, format!("{head}{tail}")).unwrap();
    path.display().to_string()
}

async fn query_i64(url: &str, sql: &str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    let r = sqlx::query(sql).fetch_one(&mut c).await.unwrap();
    r.try_get::<i64, _>(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_resettlement_killed_midway_resumes_and_adjusts_every_claim_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ok, text) = run_in(dir, &["demo", "--scale", "0.02", "--no-serve"]);
    assert!(ok, "demo: {text}");
    let url = format!("sqlite://{}", dir.join("baozhang.db").display());
    let policy = corrected_policy(dir);
    // The demo re-settles one approved application itself.
    let base = query_i64(&url, "SELECT COUNT(*) FROM ledger_adjustments").await;
    let runs = query_i64(&url, "SELECT COUNT(*) FROM resettle_runs").await;

    let (ok, dry) = run_in(dir, &["resettle", "--year", "2018", "--policy", &policy, "--dry-run"]);
    assert!(ok, "dry run: {dry}");
    let expected: i64 = dry
        .split("需调整 ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("dry run prints the claims to adjust: {dry}"));
    assert!(expected > 20, "the correction changes many claims: {dry}");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM ledger_adjustments").await, base, "a dry run writes nothing");

    // Small steps, so that the kill lands between commits of one run.
    let args = ["resettle", "--year", "2018", "--policy", policy.as_str(), "--reason", "year_end", "--step", "10"];
    let mut child = bin().current_dir(dir).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    loop {
        let done = query_i64(&url, "SELECT COALESCE(MAX(done_person_years), 0) FROM resettle_runs").await;
        if done >= 30 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        assert!(t.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let status = query_i64(&url, "SELECT COUNT(*) FROM resettle_runs WHERE status = 'running'").await;
    assert_eq!(status, 1, "killed in the middle");
    let partial = query_i64(&url, "SELECT COUNT(*) FROM ledger_adjustments").await - base;
    assert!(partial < expected, "killed before the end ({partial} of {expected})");

    let (ok, text) = run_in(dir, &args);
    assert!(ok, "resume: {text}");
    assert!(text.contains("继续未完成的重算批次"), "{text}");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM resettle_runs").await, runs + 1, "the same run went on");
    let run = query_i64(&url, "SELECT MAX(id) FROM resettle_runs").await;
    let of_run = format!("SELECT COUNT(*) FROM ledger_adjustments WHERE run_id = {run}");
    assert_eq!(query_i64(&url, &of_run).await, expected, "every claim the dry run named, once");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM ledger_adjustments").await, base + expected, "nothing else");
    let (ok, text) = run_in(dir, &["ledger", "verify", "--policy", &policy]);
    assert!(ok, "ledger verify: {text}");
    // Without the corrected policy loaded, verify says which version it misses instead of passing.
    let (ok, text) = run_in(dir, &["ledger", "verify"]);
    assert!(!ok && text.contains("未加载"), "{text}");

    // Once more: a new run that changes nothing; the Excel of what is owed is written.
    let (ok, text) = run_in(dir, &["resettle", "--year", "2018", "--policy", &policy, "--export", "out"]);
    assert!(ok, "{text}");
    assert!(text.contains("需调整 0 笔"), "{text}");
    assert_eq!(query_i64(&url, "SELECT COUNT(*) FROM ledger_adjustments").await, base + expected);
    let files: Vec<_> = std::fs::read_dir(dir.join("out")).unwrap().collect();
    assert_eq!(files.len(), 1);
}
