//! `baozhang bench serve`: settlements per second and latency of 2304 over loopback, with durable
//! commits, `clients` concurrent clients spread over `people` persons.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baozhang_store::Store;
use serde_json::Value;

use crate::testkit::{add_hospital, seed_people, NatClient, SeedPerson};
use crate::{AppState, Config, Policies};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub database_url: String,
    pub people: usize,
    pub clients: usize,
    pub settlements: usize,
    /// Fee lines uploaded per stay (2301) before its settlement, classified by the sample catalogue;
    /// 0: the 2304 message states the bill's four parts (no 2301, no catalogue).
    pub fee_lines: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Phase {
    pub name: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Phase {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The `p` quantile of sorted durations (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `make(i)` for i in 0..n over `clients` concurrent tasks; measures each request.
async fn run_phase<F>(name: &'static str, client: &NatClient, clients: usize, n: usize, make: F) -> (Phase, Vec<Value>)
where
    F: Fn(usize) -> (String, Value) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (c, make, next) = (client.clone(), make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (infno, input) = make(i);
                let t = Instant::now();
                let r = c.call(&infno, input).await;
                lat.push(t.elapsed());
                out.push((i, r.unwrap_or(Value::Null)));
            }
            (lat, out)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut results = vec![Value::Null; n];
    for t in tasks {
        let (l, o) = t.await.expect("bench task");
        lat.extend(l);
        for (i, v) in o {
            results[i] = v;
        }
    }
    let elapsed = start.elapsed();
    lat.sort();
    let errors = results.iter().filter(|r| r["infcode"] != 0).count();
    let phase = Phase {
        name,
        requests: n,
        errors,
        elapsed,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
    };
    (phase, results)
}

/// The 2401 input of admission `i` of a person (a day of 2018).
fn admission_input(person: &SeedPerson, i: usize) -> Value {
    serde_json::json!({"mdtrtinfo": {"psn_no": person.psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person.id_no,
        "med_type": "21", "begntime": format!("2018-{:02}-{:02} 08:00:00", 1 + i % 12, 1 + i % 28)}})
}

/// The visit numbers of admission answers (empty where one failed).
fn visit_ids(admitted: &[Value]) -> Arc<Vec<String>> {
    Arc::new(admitted.iter().map(|r| r["output"]["result"]["mdtrt_id"].as_str().unwrap_or("").to_string()).collect())
}

/// Seeds, serves in-process on 127.0.0.1:0, admits, then settles; returns the measured phases.
pub async fn run(opts: &BenchOptions, dir: &std::path::Path) -> Result<Vec<Phase>, String> {
    let store = Store::open_with(&opts.database_url, baozhang_store::OpenOptions { background_checkpoint: true })
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let people = Arc::new(seed_people(&store, opts.people, dir).await?);
    eprintln!("seeded {} people in {:.1} s", people.len(), t.elapsed().as_secs_f64());
    let code = format!("H{}", &crate::random_hex(6)[..11]);
    let secret = add_hospital(&store, &code, 2).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let state = AppState::new(store.clone(), Policies::reference(), Config::default());
    let writer = state.writer.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let mut client = NatClient::new(&base, &code, &secret);
    client.sign_in().await?;
    let n = opts.settlements;
    let p = people.clone();
    let (admit, admitted) = run_phase("2401 入院办理", &client, opts.clients, n, move |i| {
        ("2401".to_string(), admission_input(&p[(i * 7919) % p.len()], i))
    })
    .await;
    let mdtrts = visit_ids(&admitted);
    let mut phases = vec![admit];
    if opts.fee_lines > 0 {
        let codes = Arc::new(load_sample_catalogue(&store, dir).await?);
        let (p, m, codes2, k) = (people.clone(), mdtrts.clone(), codes.clone(), opts.fee_lines);
        let (upload, _) = run_phase("2301 费用上传（按医保目录分类）", &client, opts.clients, n, move |i| {
            ("2301".to_string(), fee_upload_input(&p[(i * 7919) % p.len()], &m[i], &codes2, i, k))
        })
        .await;
        phases.push(upload);
        let (p, m) = (people.clone(), mdtrts.clone());
        let (settle, _) = run_phase("2304 住院结算（目录分类后的明细）", &client, opts.clients, n, move |i| {
            let person: &SeedPerson = &p[(i * 7919) % p.len()];
            let total = baozhang_core::Fen((0..k).map(|j| line_amount_fen(i, j)).sum());
            let input = serde_json::json!({"data": {"psn_no": person.psn_no, "mdtrt_id": m[i], "mdtrt_cert_type": "02",
                "mdtrt_cert_no": person.id_no, "insutype": "390", "medfee_sumamt": total.to_string()}});
            ("2304".to_string(), input)
        })
        .await;
        phases.push(settle);
        return finish(&store, writer, stop, server, phases).await;
    }
    let p = people.clone();
    let (settle, _) = run_phase("2304 住院结算", &client, opts.clients, n, move |i| {
        let person: &SeedPerson = &p[(i * 7919) % p.len()];
        // Bills from 1,000 to ~60,000 yuan, 8 % out of scope, 3 % category-B self-pay.
        let total_fen = 100_000 + (i as i64 * 7_654_321) % 5_900_000;
        let ful = total_fen * 8 / 100;
        let pre = total_fen * 3 / 100;
        let inscp = total_fen - ful - pre;
        let y = |f: i64| baozhang_core::Fen(f).to_string();
        ("2304".to_string(), NatClient::settle_input(person, &mdtrts[i], &y(total_fen), &y(ful), "0", &y(pre), &y(inscp)))
    })
    .await;
    phases.push(settle);
    finish(&store, writer, stop, server, phases).await
}

/// Prints the writer's figures, stops the server and verifies the ledger.
async fn finish(
    store: &Store,
    writer: crate::writer::WriterHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    phases: Vec<Phase>,
) -> Result<Vec<Phase>, String> {
    let st = writer.stats();
    let (commits, jobs, retries) = (st.commits.load(Relaxed), st.jobs.load(Relaxed), st.retries.load(Relaxed));
    let busy = Duration::from_micros(st.busy_us.load(Relaxed));
    let total: Duration = phases.iter().map(|p| p.elapsed).sum();
    eprintln!(
        "writer: {jobs} jobs in {commits} commits ({:.1} jobs per commit), {retries} retries, busy {:.1} s of {:.1} s",
        jobs as f64 / commits.max(1) as f64,
        busy.as_secs_f64(),
        total.as_secs_f64()
    );
    let _ = stop.send(());
    let _ = server.await;
    let rep = baozhang_store::ledger::verify(store).await.map_err(|e| e.to_string())?;
    if !rep.ok() {
        return Err(format!("ledger verify failed after the benchmark: {:?}", rep.problems));
    }
    eprintln!("ledger verify: ok ({} settlements, {} entries, {} person-years)", rep.settlements, rep.entries, rep.person_years);
    Ok(phases)
}

/// The sample catalogue shipped in `data/catalogue/` (sample data, not an official catalogue), loaded
/// into the store; returns the codes valid in 2018.
async fn load_sample_catalogue(store: &Store, dir: &std::path::Path) -> Result<Vec<String>, String> {
    let path = dir.join("sample_catalogue.csv");
    std::fs::write(&path, SAMPLE_CATALOGUE).map_err(|e| e.to_string())?;
    let items = baozhang_ingest::catalogue::read_items(&path, &baozhang_ingest::catalogue::limits()).map_err(|e| e.to_string())?;
    store.import_catalogue_items("bench", "sample_catalogue.csv", "bench", &items).await.map_err(|e| e.to_string())?;
    Ok(items.iter().filter(|i| i.begndate <= 20180101 && i.enddate.is_none()).map(|i| i.hilist_code.clone()).collect())
}

/// The sample catalogue (`data/catalogue/sample_catalogue.csv`), embedded for the benchmark and the demo.
pub const SAMPLE_CATALOGUE: &str = include_str!("../../../data/catalogue/sample_catalogue.csv");

/// Line `j` of stay `i`: 5 to ~500 yuan.
fn line_amount_fen(i: usize, j: usize) -> i64 {
    500 + ((i as i64 * 7_919 + j as i64 * 104_729) % 49_500)
}

/// A 2301 of `k` lines by catalogue code only, as a HIS sends it.
fn fee_upload_input(p: &SeedPerson, mdtrt_id: &str, codes: &[String], i: usize, k: usize) -> Value {
    let lines: Vec<Value> = (0..k)
        .map(|j| {
            let amt = baozhang_core::Fen(line_amount_fen(i, j));
            serde_json::json!({"feedetl_sn": format!("{j:04}"), "mdtrt_id": mdtrt_id, "psn_no": p.psn_no, "med_type": "21",
                "med_list_codg": codes[(i + j * 7) % codes.len()], "det_item_fee_sumamt": amt.to_string(), "cnt": "1",
                "pric": amt.to_string(), "hosp_appr_flag": "1"})
        })
        .collect();
    serde_json::json!({ "feedetail": lines })
}

/// `baozhang bench flood`: one institution floods the service with `flood_clients` concurrent clients
/// (person look-ups, admissions and 200-line fee uploads as fast as it is answered) while another
/// institution settles with `clients` clients; the second institution's latency is measured alone and
/// under the flood.
pub async fn run_flood(opts: &BenchOptions, flood_clients: usize, dir: &std::path::Path) -> Result<FloodReport, String> {
    let store = Store::open_with(&opts.database_url, baozhang_store::OpenOptions { background_checkpoint: true })
        .await
        .map_err(|e| e.to_string())?;
    let people = Arc::new(seed_people(&store, opts.people, dir).await?);
    let victim_code = format!("H{}", &crate::random_hex(6)[..11]);
    let flood_code = format!("F{}", &crate::random_hex(6)[..11]);
    let victim_secret = add_hospital(&store, &victim_code, 2).await?;
    let flood_secret = add_hospital(&store, &flood_code, 2).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let state = AppState::new(store.clone(), Policies::reference(), Config::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let mut victim = NatClient::new(&base, &victim_code, &victim_secret);
    victim.sign_in().await?;
    let mut flooder = NatClient::new(&base, &flood_code, &flood_secret);
    flooder.prefix = "F".into();
    flooder.sign_in().await?;
    // The flood comes from another address (127.0.0.2), as another hospital's would.
    flooder.http = reqwest::Client::builder()
        .pool_max_idle_per_host(flood_clients)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .map_err(|e| e.to_string())?;

    let n = opts.settlements;
    let settle_phase = |name: &'static str, offset: usize| {
        let (p, c) = (people.clone(), victim.clone());
        async move {
            let (_, admitted) = run_phase("2401", &c, opts.clients, n, {
                let p = p.clone();
                move |i| ("2401".to_string(), admission_input(&p[((i + offset) * 7919) % p.len()], i))
            })
            .await;
            let mdtrts = visit_ids(&admitted);
            let (phase, _) = run_phase(name, &c, opts.clients, n, move |i| {
                let person: &SeedPerson = &p[((i + offset) * 7919) % p.len()];
                let y = |f: i64| baozhang_core::Fen(f).to_string();
                let total = 100_000 + (i as i64 * 7_654_321) % 5_900_000;
                ("2304".to_string(), NatClient::settle_input(person, &mdtrts[i], &y(total), "0", "0", "0", &y(total)))
            })
            .await;
            phase
        }
    };
    let alone = settle_phase("2304 alone", 0).await;

    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (sent, refused) = (Arc::new(std::sync::atomic::AtomicUsize::new(0)), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
    let mut flood = Vec::new();
    for k in 0..flood_clients {
        let (c, p, running, sent, refused) = (flooder.clone(), people.clone(), running.clone(), sent.clone(), refused.clone());
        flood.push(tokio::spawn(async move {
            let mut i = k;
            while running.load(Relaxed) {
                let person: &SeedPerson = &p[(i * 31) % p.len()];
                let r = match i % 3 {
                    0 => c.call("1101", serde_json::json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.id_no}})).await,
                    _ => match c.admit(person, "2018-07-01").await {
                        Ok(m) => {
                            let lines: Vec<Value> = (0..200)
                                .map(|l| {
                                    serde_json::json!({"feedetl_sn": format!("{i}-{l}"), "mdtrt_id": m, "psn_no": person.psn_no,
                                    "det_item_fee_sumamt": "3.00", "chrgitm_lv": "01"})
                                })
                                .collect();
                            c.call("2301", serde_json::json!({"feedetail": lines})).await
                        }
                        Err(e) => Err(e),
                    },
                };
                sent.fetch_add(1, Relaxed);
                if !matches!(&r, Ok(v) if v["infcode"] == 0) {
                    refused.fetch_add(1, Relaxed);
                }
                i += flood_clients;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_started = Instant::now();
    let under = settle_phase("2304 under flood", n).await;
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let flood_sent = sent.load(Relaxed);
    running.store(false, Relaxed);
    for t in flood {
        let _ = t.await;
    }
    let _ = stop.send(());
    let _ = server.await;
    let rep = baozhang_store::ledger::verify(&store).await.map_err(|e| e.to_string())?;
    if !rep.ok() {
        return Err(format!("ledger verify failed after the benchmark: {:?}", rep.problems));
    }
    Ok(FloodReport { alone, under, flood_requests: flood_sent, flood_refused: refused.load(Relaxed), flood_secs })
}

/// What `bench flood` measured.
pub struct FloodReport {
    pub alone: Phase,
    pub under: Phase,
    /// Requests the flooding institution made (and had refused) while the other one settled.
    pub flood_requests: usize,
    pub flood_refused: usize,
    pub flood_secs: f64,
}
