//! The registry end to end through the binary: a generated county (whose generator records exactly
//! which rows are invalid and which people carry which discrepancy) is imported and reconciled, and
//! what the product finds must be exactly what was planted — on SQLite and on PostgreSQL. The demo's
//! batch settlement lands in the service's ledger, where online settlements continue from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_baozhang"))
}

fn run(db: &str, args: &[&str]) -> Output {
    let out = bin().args(args).env("BAOZHANG_DATABASE_URL", db).output().expect("run baozhang");
    assert!(
        out.status.success(),
        "baozhang {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

const KINDS: [&str; 6] = ["poverty", "dibao", "extreme_poor", "death", "military", "enrolment"];

struct Pg {
    name: String,
}

impl Pg {
    fn create() -> Option<(Pg, String)> {
        let base = std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!(
            "bz_cli_{}_{}",
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
        Some((Pg { name }, url))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let base = std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let _ = Command::new("psql").args([base.as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)]).status();
    }
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers: Vec<String> = r.headers().unwrap().iter().map(|h| h.trim_start_matches('\u{feff}').to_string()).collect();
    r.records().map(|rec| headers.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

/// Generates, imports and reconciles; checks rejections and findings against the generator's truth.
fn import_and_reconcile_matches_the_planted_truth(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("county");
    let data_s = data.to_str().unwrap();
    run(db, &["generate", "--county", "620422", "--scale", "0.02", "--seed", "7", "--out", data_s]);
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("truth.json")).unwrap()).unwrap();

    let reports = dir.path().join("reports");
    for kind in KINDS {
        let file = data.join(format!("{kind}.csv"));
        let out = run(db, &["import", kind, file.to_str().unwrap(), "--report-dir", reports.to_str().unwrap()]);
        assert!(stdout(&out).contains("接受"), "{}", stdout(&out));
    }
    // Exactly the planted invalid rows are rejected, plus the second row of each planted duplicate.
    let mut rejected: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut dup_rows = 0;
    for kind in KINDS {
        let p = reports.join(format!("{kind}.rejected.csv"));
        if !p.exists() {
            continue;
        }
        for r in read_csv(&p) {
            if r["原因"].contains("同一人出现在两个户中") {
                dup_rows += 1;
                continue;
            }
            rejected.insert((format!("{kind}.csv"), r["行号"].parse().unwrap()));
        }
        assert!(reports.join(format!("{kind}.rejected.xlsx")).exists());
    }
    let planted: BTreeSet<(String, u64)> = truth["invalid_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["file"].as_str().unwrap().to_string(), r["row"].as_u64().unwrap()))
        .collect();
    assert_eq!(rejected, planted, "rejected rows differ from the planted invalid rows");
    assert_eq!(dup_rows, truth["duplicate_person"].as_array().unwrap().len());

    // Reconciliation finds exactly the planted people in every class.
    let findings = dir.path().join("findings.csv");
    let wl = dir.path().join("worklists");
    run(
        db,
        &["reconcile", "--as-of", "2018-12-31", "--findings", findings.to_str().unwrap(), "--unmasked", "--export", wl.to_str().unwrap()],
    );
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in read_csv(&findings) {
        assert_eq!(r["状态"], "新增", "a first run has only new findings");
        found.entry(r["class"].clone()).or_default().insert(r["证件号码"].clone());
    }
    let mut problems = Vec::new();
    for (class, ids) in truth.as_object().unwrap() {
        let Some(list) = ids.as_array() else { continue };
        if class == "invalid_rows" {
            continue;
        }
        let want: BTreeSet<String> = list.iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let got = found.remove(class).unwrap_or_default();
        if want != got {
            problems.push(format!(
                "{class}: planted {} found {}; missed {:?}; extra {:?}",
                want.len(),
                got.len(),
                want.difference(&got).take(3).collect::<Vec<_>>(),
                got.difference(&want).take(3).collect::<Vec<_>>()
            ));
        }
    }
    for (class, ids) in found {
        problems.push(format!("{class}: {} findings of a class nothing was planted in", ids.len()));
    }
    assert!(problems.is_empty(), "reconciliation differs from the truth:\n{}", problems.join("\n"));

    // The worklists: one workbook per township, ID numbers in full only because --unmasked was given.
    let books: Vec<_> = std::fs::read_dir(&wl).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!books.is_empty());

    // A second import of the same file changes nothing; a second run finds no new findings.
    let again = run(db, &["import", "enrolment", data.join("enrolment.csv").to_str().unwrap(), "--report-dir", reports.to_str().unwrap()]);
    assert!(stdout(&again).contains("导入过，未做任何更改"), "{}", stdout(&again));
    let second = run(db, &["reconcile", "--as-of", "2018-12-31"]);
    assert!(stdout(&second).contains("其中新增 0 条"), "{}", stdout(&second));
    assert!(stdout(&second).contains("已解决 0 条"), "{}", stdout(&second));
}

#[test]
fn import_and_reconciliation_find_exactly_what_was_planted_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    import_and_reconcile_matches_the_planted_truth(&db);
}

#[test]
fn import_and_reconciliation_find_exactly_what_was_planted_on_postgresql() {
    let (_pg, url) = Pg::create().unwrap();
    import_and_reconcile_matches_the_planted_truth(&url);
}

#[test]
fn worklists_mask_id_numbers_and_names_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let data = dir.path().join("county");
    run(&db, &["generate", "--scale", "0.01", "--seed", "3", "--out", data.to_str().unwrap()]);
    run(&db, &["import", "poverty", data.join("poverty.csv").to_str().unwrap(), "--report-dir", dir.path().to_str().unwrap()]);
    let wl = dir.path().join("wl");
    run(&db, &["reconcile", "--as-of", "2018-12-31", "--export", wl.to_str().unwrap()]);
    use calamine::{open_workbook_auto, Reader};
    let mut checked = 0;
    assert!(wl.join("参保指标.xlsx").exists(), "indicators workbook");
    for book in std::fs::read_dir(&wl).unwrap() {
        let path = book.unwrap().path();
        if !path.to_string_lossy().ends_with("比对工作清单.xlsx") {
            continue;
        }
        let mut wb = open_workbook_auto(path).unwrap();
        for name in wb.sheet_names().to_vec() {
            let range = wb.worksheet_range(&name).unwrap();
            for row in range.rows().skip(1) {
                let id = row[4].to_string();
                assert_eq!(id.len(), 18);
                assert_eq!(&id[6..14], "********", "ID not masked: {id}");
                assert!(row[3].to_string().chars().skip(1).all(|c| c == '*'), "name not masked");
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no findings to check");
}

#[test]
fn templates_keep_their_example_out_of_the_data_and_an_example_row_is_never_imported() {
    let dir = tempfile::tempdir().unwrap();
    use calamine::{open_workbook_auto, Reader};
    for kind in KINDS {
        let out = dir.path().join(format!("{kind}.xlsx"));
        let o = bin().args(["template", kind, "--out", out.to_str().unwrap()]).output().unwrap();
        assert!(o.status.success());
        let mut wb = open_workbook_auto(&out).unwrap();
        let range = wb.worksheet_range_at(0).unwrap().unwrap();
        let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
        assert!(header.contains(&"证件号码".to_string()) || header.contains(&"户编号".to_string()), "{kind}: {header:?}");
        assert_eq!(range.rows().count(), 1, "{kind}: the data sheet holds only the header");
        let names = wb.sheet_names();
        assert!(names.iter().any(|n| n.starts_with("填写示例")), "{kind}: {names:?}");
        let example = wb.worksheet_range(&names[1]).unwrap();
        assert_eq!(example.rows().count(), 2, "{kind}: header and the example on its own sheet");
    }
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    // The template as downloaded imports nothing.
    let o = run(&db, &["import", "poverty", dir.path().join("poverty.xlsx").to_str().unwrap()]);
    assert!(stdout(&o).contains("共 0 行"), "{}", stdout(&o));
    // A file with the example row copied into the data (and one real person) takes the person only;
    // the example is refused with what to do, and a row with three problems lists all three.
    let real = baozhang_core::IdCardNo::synthesize("620422", baozhang_core::Date::new(1975, 3, 3).unwrap(), 17, baozhang_core::Sex::Female);
    let csv = format!(
        "户编号,姓名,证件号码,性别,出生日期,与户主关系,行政区划代码,贫困状态,识别年度\n\
         620422100201001,张三,620422198001011230,男,1980-01-01,户主,620422100201,未脱贫,2016\n\
         620422100201002,李花,{},女,1975-03-03,户主,620422100201,未脱贫,2016\n\
         620422100201003,王五,{},男,1975-13-03,表亲,620422100201,未脱贫,2016\n",
        real.as_str(),
        real.as_str()
    );
    let file = dir.path().join("filled.csv");
    std::fs::write(&file, csv).unwrap();
    let o = run(&db, &["import", "poverty", file.to_str().unwrap()]);
    assert!(stdout(&o).contains("接受 1 行"), "{}", stdout(&o));
    let rejected = std::fs::read_to_string(dir.path().join("filled.rejected.csv")).unwrap();
    assert!(rejected.contains("模板中的示例行"), "{rejected}");
    let line = rejected.lines().find(|l| l.contains("王五")).expect("the row with three problems");
    for field in ["性别", "出生日期", "与户主关系"] {
        assert!(line.contains(&format!("{field}：")), "{field} is listed: {line}");
    }
}

#[test]
fn an_unknown_roster_kind_is_refused_in_chinese() {
    let o = bin().args(["template", "payroll", "--out", "/tmp/x.xlsx"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("未知的名单类型"));
}

/// `demo` settles its claims into the ledger exactly as the service records settlements: `ledger verify`
/// passes, a second run settles nothing twice, every person-year's accumulators are the sum of its
/// entries, and an online settlement of a demo person in the same year continues from the demo's
/// accumulators.
fn demo_settles_into_the_ledger(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let args = ["demo", "--scale", "0.02", "--seed", "7", "--no-serve", "--dir", data.to_str().unwrap()];
    let first = stdout(&run(db, &args));
    let stored: i64 = first
        .split("记入结算台账 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no settlement count in the demo's output:\n{first}"));
    assert!(stored > 1_000, "{first}");
    // The demo hospital's own stays through the national interface (gateway account, sample catalogue).
    let his: i64 = first
        .split("办理住院 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no national-interface stays in the demo's output:\n{first}"));
    assert!(his > 0 && !first.contains("人次未能结算"), "{first}");
    let stored = stored + his;
    let verify = stdout(&run(db, &["ledger", "verify"]));
    assert!(verify.contains("结果：一致"), "{verify}");
    let again = stdout(&run(db, &args));
    assert!(again.contains("未重复结算"), "{again}");
    tokio::runtime::Runtime::new().unwrap().block_on(demo_ledger_is_the_service_ledger(db, stored));
}

async fn demo_ledger_is_the_service_ledger(db: &str, stored: i64) {
    use baozhang_core::engine::{settle, Accumulators};
    use baozhang_core::{Bill, Claim, Date, Fen, HospLevel, MedType};
    use baozhang_server::testkit::{add_hospital, NatClient, SeedPerson};
    use baozhang_store::ledger::{self, SettlementFilter, StoredSettlement};

    let store = baozhang_store::Store::open(db).await.unwrap();
    let rep = ledger::verify(&store).await.unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    assert_eq!((rep.settlements, rep.cancellations), (stored, 0));
    assert_eq!(store.count("ledger_settlements").await.unwrap(), stored, "the second run added settlements");
    assert_eq!(store.count("settlements").await.unwrap(), 0, "nothing writes the old batch table any more");
    let all = store.settlement_totals(false).await.unwrap();
    assert_eq!(all.claims, stored);
    assert_eq!(all.funds_fen[..5].iter().sum::<i64>(), all.fund_pay_fen);
    assert_eq!(all.fund_pay_fen + all.funds_fen[5] + all.psn_part_fen, all.medfee_fen);
    let poor = store.settlement_totals(true).await.unwrap();
    assert!(poor.claims > 0 && poor.claims < stored, "{poor:?}");

    let mut rows: Vec<StoredSettlement> = Vec::new();
    loop {
        let page = store.settlements(&SettlementFilter { limit: 1000, offset: rows.len() as i64, ..Default::default() }).await.unwrap();
        if page.is_empty() {
            break;
        }
        rows.extend(page);
    }
    assert_eq!(rows.len() as i64, stored);
    let mut by_person: BTreeMap<String, Vec<&StoredSettlement>> = BTreeMap::new();
    for s in &rows {
        assert_eq!(s.setl_id, ledger::setl_id_of(s.seq), "the service's settlement numbers");
        assert!(s.fixmedins_code.starts_with("DEMO-LV") || s.fixmedins_code == "H62042200001", "{}", s.fixmedins_code);
        assert_eq!(s.insuplc_admdvs, "620422");
        assert_eq!(s.year, 2018);
        by_person.entry(s.psn_no.clone()).or_default().push(s);
    }
    // The people with the most settlements: accumulators = their entries, in commit order.
    let mut busiest: Vec<(&String, &Vec<&StoredSettlement>)> = by_person.iter().collect();
    busiest.sort_by_key(|(psn, list)| (std::cmp::Reverse(list.len()), (*psn).clone()));
    for (psn, list) in busiest.iter().take(20) {
        let mut acc = Accumulators::default();
        for s in list.iter() {
            ledger::apply_entries(&mut acc, &store.settlement_entries(&s.setl_id).await.unwrap());
        }
        let stored_acc = ledger::read_accumulators(&store, psn, 2018).await.unwrap();
        assert_eq!(stored_acc.acc, acc, "{psn}: accumulators are not the sum of the entries");
        assert_eq!(stored_acc.settlements, list.len() as i64, "{psn}");
    }

    // An online settlement on 31 December of a demo person whose demo settlements change what it pays.
    let policies = baozhang_server::Policies::reference();
    let facts = store.person_facts_by_psn().await.unwrap();
    let day = Date::new(2018, 12, 31).unwrap();
    let claim = Claim {
        site: Default::default(),
        setl_date: day,
        med_type: MedType::Inpatient,
        hosp_lv: HospLevel::new(2).unwrap(),
        in_county: true,
        referral_ok: true,
        major_disease: false,
        bill: Bill::new(Fen::yuan(20_000), Fen::yuan(1_000), Fen::ZERO, Fen::yuan(1_000), Fen::yuan(18_000)).unwrap(),
    };
    let mut heaviest: Vec<(&String, i64)> = by_person.iter().map(|(p, l)| (p, l.iter().map(|s| s.medfee_sumamt).sum())).collect();
    heaviest.sort_by_key(|(p, fee)| (std::cmp::Reverse(*fee), (*p).clone()));
    let mut chosen = None;
    for (psn, _) in heaviest.iter().take(200) {
        let policy = policies.by_version(&by_person[*psn][0].policy_version).expect("the demo's policy is a reference policy");
        let ids = baozhang_ingest::registry_settle::identities_on(&facts[*psn], 20181231);
        let before = ledger::read_accumulators(&store, psn, 2018).await.unwrap();
        let (cont, after) = settle(policy, &claim, ids, &before.acc);
        let (fresh, _) = settle(policy, &claim, ids, &Accumulators::default());
        if (cont.fund_pay_sumamt, cont.psn_part_amt) != (fresh.fund_pay_sumamt, fresh.psn_part_amt) {
            chosen = Some(((*psn).clone(), ids, before, cont, after));
            break;
        }
    }
    let (psn, ids, before, expected, expected_after) = chosen.expect("a demo person whose accumulators matter");
    let person = SeedPerson { psn_no: psn.clone(), id_no: facts[&psn].id_no.clone(), village: String::new(), poor: false };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let secret = add_hospital(&store, "H62042200009", 2).await.unwrap();
    let state = baozhang_server::AppState::new(store.clone(), baozhang_server::Policies::reference(), Default::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(baozhang_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let mut hospital = NatClient::new(&base, "H62042200009", &secret);
    hospital.sign_in().await.unwrap();
    let mdtrt_id = hospital.admit(&person, "2018-12-31").await.unwrap();
    let r = hospital
        .call("2304", NatClient::settle_input(&person, &mdtrt_id, "20000.00", "1000.00", "0", "1000.00", "18000.00"))
        .await
        .unwrap();
    assert_eq!(r["infcode"], 0, "{r}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    let online = store.settlements(&SettlementFilter { mdtrt_id: Some(mdtrt_id.clone()), ..Default::default() }).await.unwrap();
    let [online] = &online[..] else { panic!("one settlement of {mdtrt_id}: {online:?}") };
    assert_eq!(online.identities, i64::from(ids.bits()));
    assert!(online.seq > rows.iter().map(|s| s.seq).max().unwrap());
    assert_eq!(
        (online.fund_pay_sumamt, online.hosp_part_amt, online.psn_part_amt),
        (expected.fund_pay_sumamt.0, expected.hosp_part_amt.0, expected.psn_part_amt.0),
        "{psn}: the online settlement did not continue from the demo's accumulators"
    );
    let after = ledger::read_accumulators(&store, &psn, 2018).await.unwrap();
    assert_eq!(after.acc, expected_after);
    assert_eq!(after.settlements, before.settlements + 1);
    let rep = ledger::verify(&store).await.unwrap();
    assert!(rep.ok(), "{:?}", rep.problems);
    assert_eq!(rep.settlements, stored + 1);
}

#[test]
fn demo_settles_into_the_ledger_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    demo_settles_into_the_ledger(&format!("sqlite://{}", dir.path().join("t.db").display()));
}

#[test]
fn demo_settles_into_the_ledger_on_postgresql() {
    let (_pg, url) = Pg::create().unwrap();
    demo_settles_into_the_ledger(&url);
}

#[test]
fn a_workbook_whose_rejected_rows_end_early_is_imported_and_reported() {
    // A worksheet row ends at its last filled cell: a rejected row without its optional end columns
    // must not fail the import when the rejected rows are written out.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let good = baozhang_core::IdCardNo::synthesize("620422", baozhang_core::Date::new(1961, 5, 2).unwrap(), 21, baozhang_core::Sex::Male);
    let header: Vec<String> = ["证件号码", "姓名", "行政区划代码", "保障起始日期", "保障终止日期", "救助类别"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = vec![
        vec![good.as_str().into(), "赵六".into(), "620422100201".into(), "2017-01-01".into(), String::new(), "低保对象".into()],
        vec!["620422196105020000".into(), "钱七".into(), "620422100201".into()],
        vec!["12345".into(), "孙八".into(), "620422100201".into(), "2017-01-01".into(), String::new(), "二类".into()],
    ];
    let file = dir.path().join("dibao.xlsx");
    baozhang_ingest::table::write_xlsx(&file, &[("低保".to_string(), header, rows)]).unwrap();
    let o = run(&db, &["import", "dibao", file.to_str().unwrap()]);
    let rejected = std::fs::read_to_string(dir.path().join("dibao.rejected.csv")).unwrap();
    assert!(stdout(&o).contains("接受 1 行，拒绝 2 行"), "{}\n{rejected}", stdout(&o));
    let short = rejected.lines().find(|l| l.contains("钱七")).expect("the short row is reported");
    assert_eq!(short.split(',').count(), 9, "padded to the header: {short}");
    assert!(rejected.contains("孙八"), "{rejected}");
}
