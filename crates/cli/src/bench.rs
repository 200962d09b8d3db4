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
    /// 登记与比对性能：生成合成县（--scale），导入各名单（CSV 与 XLSX），比对（import rate, reconciliation time）
    Registry {
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 20181)]
        seed: u64,
        /// Database to measure against (default: a fresh SQLite file in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
        /// Also measure PostgreSQL: a server URL (`postgres://postgres@127.0.0.1:5432/test`); the bench
        /// makes a fresh database `baozhang_bench_registry` on it and drops it afterwards.
        #[arg(long)]
        pg: Option<String>,
        /// Keep the generated files here.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// 在线结算服务性能：经回环地址的 2304 每秒结算笔数与 p50/p99 延迟（持久提交）
    Serve {
        /// Database (default: a fresh SQLite file in a temporary directory; a PostgreSQL URL must name an empty database).
        #[arg(long)]
        database_url: Option<String>,
        /// Then the same on PostgreSQL: a server URL; the bench makes a fresh database
        /// `baozhang_bench_serve` on it and drops it afterwards.
        #[arg(long)]
        pg: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        people: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 20_000)]
        settlements: usize,
        /// 每次住院先上传的费用明细条数（2301，按示例医保目录分类）；0 = 2304 直接给出费用四项
        #[arg(long, default_value_t = 0)]
        fee_lines: usize,
    },
    /// 一个机构大量并发请求时另一个机构的结算延迟（p50/p99，先单独测、再在洪泛下测）
    Flood {
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 2_000)]
        people: usize,
        /// The settling institution's concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 2_000)]
        settlements: usize,
        /// The flooding institution's concurrent clients (from 127.0.0.2).
        #[arg(long, default_value_t = 128)]
        flood_clients: usize,
    },
    /// 重新结算性能：在已准备的演示库上（先运行 baozhang demo --no-serve）重算全年，每秒人员年度数（SQLite 库先复制，不改动原库）
    Resettle {
        /// Database prepared by `baozhang demo --no-serve` (default ./baozhang.db). A SQLite file is copied
        /// first; a PostgreSQL database is used as it is (the adjustments written are real ledger entries).
        #[arg(long, env = "BAOZHANG_DATABASE_URL", default_value = baozhang_store::DEFAULT_URL)]
        database_url: String,
        #[arg(long, default_value_t = 2018)]
        year: u16,
        /// Policy to re-settle under (default: Huining 2018 with the assistance threshold corrected from
        /// 3,000 to 1,000 yuan, so that most poor person-years change).
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
    },
    /// 工作台页面服务器耗时：在已准备的数据库上（先运行 baozhang demo --no-serve），逐页测量（server time per page）
    Web {
        /// Database prepared by `baozhang demo --no-serve` (default: the demo's, ./baozhang.db).
        #[arg(long, env = "BAOZHANG_DATABASE_URL", default_value = baozhang_store::DEFAULT_URL)]
        database_url: String,
        /// The account that drills down (the demo's county bureau user).
        #[arg(long, default_value = "county")]
        username: String,
        #[arg(long, default_value = "Demo-2018")]
        password: String,
        /// Requests per page after the first.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
}

/// The machine's CPU model (for the printed numbers).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
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
        BenchCmd::Registry { scale, seed, database_url, pg, dir } => bench_registry(scale, seed, database_url, pg, dir),
        BenchCmd::Serve { database_url, pg, people, clients, settlements, fee_lines } => {
            let code = bench_serve(database_url, people, clients, settlements, fee_lines);
            match pg {
                Some(server) if code == ExitCode::SUCCESS => {
                    let rt = crate::data_cmd::runtime();
                    match rt.block_on(fresh_pg_database(&server, "baozhang_bench_serve")) {
                        Ok(url) => {
                            let code = bench_serve(Some(url), people, clients, settlements, fee_lines);
                            if let Err(e) = rt.block_on(drop_pg_database(&server, "baozhang_bench_serve")) {
                                eprintln!("错误：{e}");
                            }
                            code
                        }
                        Err(e) => {
                            eprintln!("错误：{e}");
                            ExitCode::from(crate::EXIT_IO)
                        }
                    }
                }
                _ => code,
            }
        }
        BenchCmd::Web { database_url, username, password, rounds } => bench_web(database_url, username, password, rounds),
        BenchCmd::Flood { database_url, people, clients, settlements, flood_clients } => {
            bench_flood(database_url, people, clients, settlements, flood_clients)
        }
        BenchCmd::Resettle { database_url, year, policy } => bench_resettle(database_url, year, policy),
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
    let cpu = cpu_model();
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
    println!(
        "engine best: {:.0} claims/s (patients' total {} yuan as a checksum)",
        n as f64 / best,
        baozhang_core::Fen(checksum).grouped()
    );

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

fn bench_registry(scale: f64, seed: u64, database_url: Option<String>, pg: Option<String>, keep: Option<std::path::PathBuf>) -> ExitCode {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    println!("bench registry: scale {scale}, seed {seed}");
    println!("machine: {}, {} logical CPUs", cpu_model(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = crate::data_cmd::runtime();
    let r: Result<(), String> = rt.block_on(async {
        let mut backends: Vec<(String, Option<String>)> = Vec::new();
        match database_url {
            Some(u) => backends.push((u, None)),
            None => backends.push((format!("sqlite://{}", tmp.path().join("bench.db").display()), None)),
        }
        if let Some(server) = pg {
            let url = fresh_pg_database(&server, "baozhang_bench_registry").await?;
            backends.push((url, Some(server)));
        }
        // The villages come from the division table of the first backend.
        let first = baozhang_store::Store::open(&backends[0].0).await.map_err(|e| e.to_string())?;
        crate::data_cmd::ensure_regions(&first).await?;
        let villages = crate::demo_cmd::county_villages(&first, "620422").await?;
        drop(first);
        let params = baozhang_ingest::county::CountyParams { county_code: "620422".into(), villages, seed, scale, year: 2018 };
        let t = Instant::now();
        let g = baozhang_ingest::county::generate(&params, &dir, &mut |_, _| {}).map_err(|e| e.to_string())?;
        println!("generate: {} residents, {} claims in {:.1} s", g.residents, g.claims, t.elapsed().as_secs_f64());
        for (url, server) in &backends {
            bench_registry_on(url, &dir, tmp.path()).await?;
            if let Some(server) = server {
                drop_pg_database(server, "baozhang_bench_registry").await?;
            }
        }
        match peer_duckdb(&dir) {
            Ok((secs, out)) => println!("peer DuckDB (python3): the same poverty and enrolment CSVs read, one left join + group by for two classes, in {secs:.1} s: {out}"),
            Err(why) => println!("peer DuckDB: {why}"),
        }
        bench_registry_xlsx(&dir, tmp.path()).await
    });
    match r {
        Ok(()) => {
            println!("peak RSS of the whole run: {} MiB", self_peak_rss_kib() / 1024);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

/// The rosters imported into one database, each next to a plain bulk load of the same file into a table
/// with the same indexes (`COPY` on PostgreSQL, the `sqlite3` shell's `.import` on SQLite), then the
/// reconciliation.
async fn bench_registry_on(url: &str, dir: &std::path::Path, tmp: &std::path::Path) -> Result<(), String> {
    let store = baozhang_store::Store::open(url).await.map_err(|e| e.to_string())?;
    let backend = if store.backend() == baozhang_store::Backend::Postgres { "PostgreSQL" } else { "SQLite" };
    println!("── {backend}: {}", crate::data_cmd::redact_url(url));
    crate::data_cmd::ensure_regions(&store).await?;
    let mut rows = 0u64;
    let t_all = Instant::now();
    for kind in baozhang_ingest::rosters::IMPORT_ORDER {
        let file = dir.join(format!("{}.csv", kind.id()));
        let t = Instant::now();
        let rep = crate::data_cmd::import_one(&store, kind, &file, Some(tmp.join("rejected")), true).await?;
        let secs = t.elapsed().as_secs_f64();
        rows += rep.rows_total;
        println!(
            "import {:<13} CSV : {:>9} rows in {:>6.2} s = {:>8.0} rows/s",
            kind.id(),
            rep.rows_total,
            secs,
            rep.rows_total as f64 / secs
        );
        let keys: &[&[&str]] = match kind {
            baozhang_ingest::rosters::RosterKind::Enrolment => &[&["证件号码", "参保年度"], &["人员编号"]],
            baozhang_ingest::rosters::RosterKind::Poverty => &[&["证件号码"], &["户编号"]],
            _ => continue,
        };
        let peer = match store.backend() {
            baozhang_store::Backend::Postgres => Some(("COPY FROM STDIN (csv)", peer_pg_copy(url, &file, keys).await?)),
            baozhang_store::Backend::Sqlite => peer_sqlite3(url, &file, keys)?.map(|r| ("sqlite3 .import", r)),
        };
        match peer {
            Some((how, (n, peer_secs))) => println!(
                "  peer {how:<22}: {:>9} rows in {:>6.2} s = {:>8.0} rows/s into a plain table with the same {} indexes; baozhang at {:.0}% of it",
                n,
                peer_secs,
                n as f64 / peer_secs,
                keys.len(),
                100.0 * peer_secs / secs
            ),
            None => println!("  peer: the sqlite3 shell is not installed; no peer figure"),
        }
    }
    let all = t_all.elapsed().as_secs_f64();
    println!(
        "import all CSV         : {:>9} rows in {:>6.2} s = {:>8.0} rows/s (peers included in the time)",
        rows,
        all,
        rows as f64 / all
    );
    let t = Instant::now();
    let params = baozhang_store::reconcile::ReconcileParams { as_of: baozhang_core::Date::new(2018, 12, 31), ..Default::default() };
    let s = store.reconcile(&params).await.map_err(|e| e.to_string())?;
    let persons = store.count("persons").await.map_err(|e| e.to_string())?;
    println!("reconcile: {persons} persons, {} findings in {:.1} s", s.findings, t.elapsed().as_secs_f64());
    store.close().await;
    Ok(())
}

/// XLSX: the dibao roster rewritten as a workbook, imported into a fresh SQLite database.
async fn bench_registry_xlsx(dir: &std::path::Path, tmp: &std::path::Path) -> Result<(), String> {
    let mut reader = baozhang_ingest::table::TableReader::open(&dir.join("dibao.csv")).map_err(|e| e.to_string())?;
    let header = reader.header().to_vec();
    let mut data = Vec::new();
    let mut row = Vec::new();
    while reader.next_row(&mut row).map_err(|e| e.to_string())?.is_some() {
        data.push(row.clone());
    }
    let xlsx = dir.join("dibao-bench.xlsx");
    baozhang_ingest::table::write_xlsx(&xlsx, &[("低保".to_string(), header, data)]).map_err(|e| e.to_string())?;
    let url2 = format!("sqlite://{}", tmp.join("bench-xlsx.db").display());
    let store2 = baozhang_store::Store::open(&url2).await.map_err(|e| e.to_string())?;
    crate::data_cmd::ensure_regions(&store2).await?;
    let t = Instant::now();
    let rep =
        crate::data_cmd::import_one(&store2, baozhang_ingest::rosters::RosterKind::Dibao, &xlsx, Some(tmp.join("rejected-xlsx")), true)
            .await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "import dibao         XLSX : {:>9} rows in {:>6.2} s = {:>8.0} rows/s (fresh SQLite, streamed)",
        rep.rows_total,
        secs,
        rep.rows_total as f64 / secs
    );
    Ok(())
}

/// The reconciliation's peer as a data engineer would write it: DuckDB reading the generated poverty and
/// enrolment CSVs, one left join and group by for two of the classes (poor not insured, poor enrolled
/// without the poverty flag). Needs `python3` with `duckdb` (`pip install duckdb`); (seconds, counts).
fn peer_duckdb(dir: &std::path::Path) -> Result<(f64, String), String> {
    const SCRIPT: &str = r#"
import sys, time
try:
    import duckdb
except ImportError:
    print("SKIP"); sys.exit(0)
d = sys.argv[1]
t = time.time()
con = duckdb.connect()
rows = con.execute(f"""
WITH poor AS (SELECT 证件号码 AS id FROM read_csv('{d}/poverty.csv', header=true, all_varchar=true) WHERE 贫困状态 IN ('未脱贫', '已脱贫')),
     e AS (SELECT 证件号码 AS id, 人员类别 AS cat FROM read_csv('{d}/enrolment.csv', header=true, all_varchar=true)
           WHERE 参保年度 = '2018' AND 参保状态 = '正常参保')
SELECT CASE WHEN e.id IS NULL THEN 'poor_not_insured'
            WHEN coalesce(e.cat, '') NOT LIKE '%建档立卡%' AND coalesce(e.cat, '') NOT LIKE '%已脱贫%' THEN 'poor_not_flagged' END AS class,
       count(*) FROM poor LEFT JOIN e ON e.id = poor.id GROUP BY 1 HAVING class IS NOT NULL ORDER BY 1""").fetchall()
print(f"{time.time() - t:.3f}", " ".join(f"{c}={n}" for c, n in rows))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir)
        .output()
        .map_err(|e| format!("python3 not found ({e}); no peer figure"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!("the DuckDB script failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    if text == "SKIP" {
        return Err("python3 has no duckdb module (pip install duckdb); no peer figure".into());
    }
    let (secs, counts) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    Ok((secs.parse().unwrap_or(f64::NAN), counts.to_string()))
}

/// The peer's table: the file's columns as text, and indexes on the named columns.
fn peer_table_sql(header: &[String], keys: &[&[&str]], table: &str) -> Vec<String> {
    let cols: Vec<String> = (0..header.len()).map(|i| format!("c{i} TEXT")).collect();
    let mut sql = vec![format!("DROP TABLE IF EXISTS {table}"), format!("CREATE TABLE {table} ({})", cols.join(", "))];
    for (k, key) in keys.iter().enumerate() {
        let cols: Vec<String> = key.iter().filter_map(|c| header.iter().position(|h| h == c)).map(|i| format!("c{i}")).collect();
        sql.push(format!("CREATE INDEX {table}_{k} ON {table} ({})", cols.join(", ")));
    }
    sql
}

fn file_header(file: &std::path::Path) -> Result<Vec<String>, String> {
    Ok(baozhang_ingest::table::TableReader::open(file).map_err(|e| e.to_string())?.header().to_vec())
}

/// `COPY peer FROM STDIN (FORMAT csv, HEADER)` of the file, streamed in 1 MiB pieces: (rows, seconds).
async fn peer_pg_copy(url: &str, file: &std::path::Path, keys: &[&[&str]]) -> Result<(u64, f64), String> {
    use sqlx::Connection;
    use std::io::Read;
    let e = |e: sqlx::Error| e.to_string();
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(e)?;
    for sql in peer_table_sql(&file_header(file)?, keys, "bench_peer") {
        sqlx::query(&sql).execute(&mut conn).await.map_err(e)?;
    }
    let t = Instant::now();
    let mut copy = conn.copy_in_raw("COPY bench_peer FROM STDIN (FORMAT csv, HEADER true)").await.map_err(e)?;
    let mut f = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await.map_err(e)?;
    }
    let n = copy.finish().await.map_err(e)?;
    let secs = t.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_peer").execute(&mut conn).await.map_err(e)?;
    Ok((n, secs))
}

/// The `sqlite3` shell's `.import` of the file into the same database: (rows, seconds), or `None`
/// without the shell.
fn peer_sqlite3(url: &str, file: &std::path::Path, keys: &[&[&str]]) -> Result<Option<(u64, f64)>, String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    let run = |args: &[&str]| std::process::Command::new("sqlite3").arg(path).args(args).output();
    let setup = peer_table_sql(&file_header(file)?, keys, "bench_peer").join("; ");
    match run(&[&setup]) {
        Err(_) => return Ok(None),
        Ok(o) if !o.status.success() => return Err(format!("sqlite3: {}", String::from_utf8_lossy(&o.stderr))),
        Ok(_) => {}
    }
    let t = Instant::now();
    let import = format!(".import --csv --skip 1 {} bench_peer", file.display());
    let o = run(&["-cmd", "PRAGMA synchronous = FULL", &import]).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    if !o.status.success() {
        return Err(format!("sqlite3 .import: {}", String::from_utf8_lossy(&o.stderr)));
    }
    let o = run(&["SELECT count(*) FROM bench_peer; DROP TABLE bench_peer"]).map_err(|e| e.to_string())?;
    let n = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
    Ok(Some((n, secs)))
}

/// A fresh database `name` on the server of `server_url`; its URL.
async fn fresh_pg_database(server_url: &str, name: &str) -> Result<String, String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .map_err(|e| format!("PostgreSQL {}: {e}", crate::data_cmd::redact_url(server_url)))?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.map_err(|e| e.to_string())?;
    let base = server_url.split('?').next().unwrap_or(server_url);
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    Ok(format!("{root}/{name}"))
}

async fn drop_pg_database(server_url: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server_url).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A temporary directory and the benchmark's database: the one given, or a fresh SQLite file in it.
fn bench_db(database_url: Option<String>) -> Result<(tempfile::TempDir, String), ExitCode> {
    let dir = tempfile::tempdir().map_err(|e| {
        eprintln!("错误：无法创建临时目录：{e}");
        ExitCode::from(crate::EXIT_IO)
    })?;
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    Ok((dir, url))
}

fn bench_serve(database_url: Option<String>, people: usize, clients: usize, settlements: usize, fee_lines: usize) -> ExitCode {
    let (dir, url) = match bench_db(database_url) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = baozhang_server::bench::BenchOptions { database_url: url.clone(), people, clients, settlements, fee_lines };
    let cpu = cpu_model();
    println!(
        "bench serve: {} — {settlements} settlements by {clients} concurrent clients over {people} people",
        crate::data_cmd::redact_url(&url)
    );
    println!(
        "machine: {cpu}, {} logical CPUs; server and clients in one process over loopback; durable commits",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rt = crate::data_cmd::runtime();
    match rt.block_on(baozhang_server::bench::run(&opts, dir.path())) {
        Ok(phases) => {
            for p in phases {
                println!(
                    "{:<24} {:>7} requests, {:>4} errors, {:>7.2} s: {:>8.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms",
                    p.name,
                    p.requests,
                    p.errors,
                    p.elapsed.as_secs_f64(),
                    p.per_sec(),
                    p.p50.as_secs_f64() * 1e3,
                    p.p99.as_secs_f64() * 1e3,
                    p.max.as_secs_f64() * 1e3
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

fn bench_flood(database_url: Option<String>, people: usize, clients: usize, settlements: usize, flood_clients: usize) -> ExitCode {
    let (dir, url) = match bench_db(database_url) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let opts = baozhang_server::bench::BenchOptions { database_url: url.clone(), people, clients, settlements, fee_lines: 0 };
    println!(
        "bench flood: {} — institution A settles {settlements} with {clients} clients; institution B floods with {flood_clients} clients",
        crate::data_cmd::redact_url(&url)
    );
    println!(
        "machine: {}, {} logical CPUs; server and clients in one process over loopback; durable commits",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match crate::data_cmd::runtime().block_on(baozhang_server::bench::run_flood(&opts, flood_clients, dir.path())) {
        Ok(r) => {
            for p in [&r.alone, &r.under] {
                println!(
                    "{:<18} {:>6} requests, {:>4} errors: {:>7.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>8.2} ms",
                    p.name,
                    p.requests,
                    p.errors,
                    p.per_sec(),
                    p.p50.as_secs_f64() * 1e3,
                    p.p99.as_secs_f64() * 1e3,
                    p.max.as_secs_f64() * 1e3
                );
            }
            println!(
                "flooding institution: {} requests in {:.1} s ({:.0} /s), {} refused or failed",
                r.flood_requests,
                r.flood_secs,
                r.flood_requests as f64 / r.flood_secs.max(1e-9),
                r.flood_refused
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

fn bench_web(database_url: String, username: String, password: String, rounds: usize) -> ExitCode {
    let cpu = cpu_model();
    println!("bench web: {} as {username}, {rounds} requests per page after the first", crate::data_cmd::redact_url(&database_url));
    println!(
        "machine: {cpu}, {} logical CPUs; server in-process over loopback",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let opts = baozhang_server::bench_web::WebBenchOptions { database_url, username, password, rounds: rounds.max(1) };
    let rt = crate::data_cmd::runtime();
    match rt.block_on(baozhang_server::bench_web::run(&opts)) {
        Ok(rep) => {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            println!(
                "dashboard figures of {} (all villages, once; then cached and rolled up in memory): {:.0} ms",
                rep.year,
                ms(rep.figures)
            );
            println!("start-up work of serve (each county's kept pages, built one at a time): {:.0} ms", ms(rep.warm));
            println!("first = the first request of a page after that start-up work (the first view after a restart)");
            println!(
                "{:<26} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}  path",
                "page", "first ms", "p50 ms", "p95 ms", "max ms", "client p50", "bytes"
            );
            for p in &rep.pages {
                println!(
                    "{:<26} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>9}  {}",
                    p.name,
                    ms(p.first),
                    ms(p.server_p50),
                    ms(p.server_p95),
                    ms(p.server_max),
                    ms(p.client_p50),
                    p.bytes,
                    p.path
                );
            }
            let worst = rep.pages.iter().max_by_key(|p| p.server_p95);
            if let Some(w) = worst {
                println!("slowest page (p95 server time): {} {:.1} ms", w.name, ms(w.server_p95));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

/// The default policy of `bench resettle`: Huining 2018 with the assistance threshold lowered (same id,
/// another version), a correction that changes most poor person-years.
fn corrected_huining() -> Result<baozhang_core::Policy, String> {
    let src = baozhang_core::reference::reference_source("gansu-huining-2018").ok_or("gansu-huining-2018 is shipped")?;
    let at = src.find("id = \"assistance\"").ok_or("the assistance layer of gansu-huining-2018")?;
    let text = format!("{}{}", &src[..at], src[at..].replacen("amount = 3000", "amount = 1000", 1));
    baozhang_core::parse_policy(&text).map_err(|e| e.to_string())
}

fn bench_resettle(database_url: String, year: u16, policy: Option<std::path::PathBuf>) -> ExitCode {
    use baozhang_store::resettle::{self, Reason, RunCtx};
    let mut policies = baozhang_server::Policies::reference();
    let added = match &policy {
        Some(p) => crate::serve_cmd::load_policies(std::slice::from_ref(p)).map(|ps| ps.all().last().cloned()),
        None => corrected_huining().map(Some),
    };
    match added {
        Ok(Some(p)) => {
            println!("bench resettle: re-settling under {} ({})", p.meta.id, p.version);
            policies.add(p);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let url = match database_url.strip_prefix("sqlite://") {
        Some(path) => {
            let copy = tmp.path().join("bench.db");
            for (from, to) in [(path.to_string(), copy.clone()), (format!("{path}-wal"), tmp.path().join("bench.db-wal"))] {
                if std::path::Path::new(&from).exists() {
                    if let Err(e) = std::fs::copy(&from, &to) {
                        eprintln!("错误：无法复制数据库 {from}：{e}");
                        return ExitCode::from(crate::EXIT_IO);
                    }
                }
            }
            format!("sqlite://{}", copy.display())
        }
        None => database_url.clone(),
    };
    println!(
        "machine: {}, {} logical CPUs; database {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        crate::data_cmd::redact_url(&database_url)
    );
    let rt = crate::data_cmd::runtime();
    rt.block_on(async move {
        let store = match baozhang_store::Store::open(&url).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("错误：无法打开数据库：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
        };
        let explain = baozhang_server::resettle::explain;
        let t = Instant::now();
        let psns = match resettle::person_years_in_scope(&store, year, "", None, None).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
        };
        println!("person-years of {year}: {} (listed in {:.2} s)", psns.len(), t.elapsed().as_secs_f64());
        if psns.is_empty() {
            eprintln!("错误：该库 {year} 年度没有结算；请先运行 baozhang demo --no-serve");
            return ExitCode::from(crate::EXIT_INVALID);
        }
        let report = |what: &str, t: Instant, o: &resettle::StepOutcome| {
            let s = t.elapsed().as_secs_f64();
            println!(
                "{what}: {} person-years, {} claims, {} adjusted, {} refused in {s:.2} s = {:.0} person-years/s ({:.0} claims/s)",
                o.person_years,
                o.claims,
                o.adjusted.len(),
                o.refused.len(),
                o.person_years as f64 / s,
                o.claims as f64 / s
            );
        };
        let t = Instant::now();
        match resettle::preview(&store, year, &psns, &policies, &explain).await {
            Ok(o) => report("dry run (read and compute, nothing written)", t, &o),
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
        }
        for (round, what) in [(1, "run (adjustments written, durable commits)"), (2, "second run (nothing left to change)")] {
            let mut tx = match store.begin_write().await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("错误：{e}");
                    return ExitCode::from(crate::EXIT_IO);
                }
            };
            let run_id = match resettle::create_run_in(
                &mut tx,
                year,
                "",
                None,
                Reason::YearEnd,
                &format!("bench round {round}"),
                "bench",
                psns.len() as i64,
            )
            .await
            {
                Ok(id) => id,
                Err(e) => {
                    eprintln!("错误：{e}");
                    return ExitCode::from(crate::EXIT_IO);
                }
            };
            if let Err(e) = tx.commit().await {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
            let run = RunCtx { run_id, reason: Reason::YearEnd, opter: "bench".into() };
            let t = Instant::now();
            match resettle::drive_run(&store, &run, year, &psns, resettle::STEP, &policies, &explain, &mut |_, _| {}).await {
                Ok(o) => report(what, t, &o),
                Err(e) => {
                    eprintln!("错误：{e}");
                    return ExitCode::from(crate::EXIT_IO);
                }
            }
        }
        let t = Instant::now();
        match baozhang_server::resettle::verify_ledger(&store, &policies).await {
            Ok(rep) => println!(
                "ledger verify: {} in {:.2} s ({} adjustments over {} re-settled person-years)",
                if rep.ok() { "consistent" } else { "PROBLEMS" },
                t.elapsed().as_secs_f64(),
                rep.adjustments,
                rep.resettled_years
            ),
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
        }
        ExitCode::SUCCESS
    })
}
