//! `baozhang bench …`: benchmarks that print numbers (never timed assertions in tests).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use baozhang_core::engine::{settle_in_place, Accumulators, Settlement};
use baozhang_ingest::synth::{synth_claims, write_claims_csv};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// 结算性能：引擎本身与 settle CSV→CSV 端到端（engine alone, and `settle` end to end）
    Settle {
        /// Number of synthetic claims.
        #[arg(long, default_value_t = 1_000_000)]
        claims: usize,
        /// Distinct persons the claims spread over (default: claims / 4).
        #[arg(long)]
        persons: Option<usize>,
        #[arg(long, default_value = "gansu-huining-2018")]
        policy: String,
        #[arg(long, default_value_t = 20181)]
        seed: u64,
        /// Repetitions of the engine-only pass (the best is reported too).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Keep the generated claims and the output in this directory (default: a temporary one).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// Peak resident memory of finished children, in KiB (Linux reports ru_maxrss in KiB).
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

fn self_peak_rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

pub fn run(cmd: BenchCmd) -> ExitCode {
    match cmd {
        BenchCmd::Settle { claims, persons, policy, seed, rounds, dir } => {
            bench_settle(claims, persons.unwrap_or((claims / 4).max(1)), &policy, seed, rounds, dir)
        }
    }
}

fn bench_settle(n: usize, persons: usize, policy_name: &str, seed: u64, rounds: usize, keep: Option<std::path::PathBuf>) -> ExitCode {
    let policy = match crate::policy_cmd::load_policy(policy_name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    println!("bench settle: policy {} ({}), {n} claims over {persons} persons, seed {seed}", policy.meta.id, policy.version);
    println!("machine: {cpu}, {} logical CPUs; single-threaded", std::thread::available_parallelism().map_or(1, |n| n.get()));

    let t = Instant::now();
    let claims = synth_claims(seed, n, persons, policy.meta.year);
    println!("generate: {:.2} s", t.elapsed().as_secs_f64());

    // Engine alone: pre-parsed claims, accumulators in a vector indexed by person (one year).
    let mut best = f64::MAX;
    let mut checksum = 0i64;
    for round in 0..rounds.max(1) {
        let mut accs = vec![Accumulators::default(); persons];
        let mut s: Settlement = baozhang_core::settle(&policy, &claims[0].claim, claims[0].identities, &Accumulators::default()).0;
        let t = Instant::now();
        let mut sum = 0i64;
        for c in &claims {
            settle_in_place(&policy, &c.claim, c.identities, &mut accs[c.person], &mut s);
            sum += s.psn_part_amt.0;
        }
        let secs = t.elapsed().as_secs_f64();
        checksum = black_box(sum);
        best = best.min(secs);
        println!("engine round {}: {:.3} s, {:.0} claims/s, {:.0} ns/claim", round + 1, secs, n as f64 / secs, secs * 1e9 / n as f64);
    }
    println!("engine best: {:.0} claims/s (patients' total {:.2} yuan as a checksum)", n as f64 / best, checksum as f64 / 100.0);

    // End to end: the real command on a real file, in a child process (its own peak memory).
    let tmp = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("错误：无法创建临时目录：{e}");
            return ExitCode::from(crate::EXIT_IO);
        }
    };
    let dir = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("错误：无法创建目录 {}：{e}", dir.display());
        return ExitCode::from(crate::EXIT_IO);
    }
    let input = dir.join("claims.csv");
    let output = dir.join("settled.csv");
    {
        let f = std::fs::File::create(&input).expect("temp file");
        let mut w = std::io::BufWriter::new(f);
        write_claims_csv(&mut w, &claims).expect("write claims");
    }
    let in_mb = std::fs::metadata(&input).map_or(0, |m| m.len()) as f64 / 1e6;
    drop(claims);
    println!("in-process peak RSS so far (generation + engine): {} MiB", self_peak_rss_kib() / 1024);
    let exe = std::env::current_exe().expect("own path");
    let t = Instant::now();
    let status = std::process::Command::new(exe)
        .args(["settle", "--policy", policy_name, "--claims"])
        .arg(&input)
        .arg("--out")
        .arg(&output)
        .stderr(std::process::Stdio::null())
        .status();
    let secs = t.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("错误：端到端结算失败：{other:?}");
            return ExitCode::from(crate::EXIT_IO);
        }
    }
    let out_mb = std::fs::metadata(&output).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "settle end to end (CSV {in_mb:.0} MB → CSV {out_mb:.0} MB, incl. process start and fsync): {secs:.3} s, {:.0} claims/s, peak RSS {} MiB",
        n as f64 / secs,
        children_peak_rss_kib() / 1024
    );
    ExitCode::SUCCESS
}
