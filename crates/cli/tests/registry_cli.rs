//! The registry end to end through the binary: a generated county (whose generator records exactly
//! which rows are invalid and which people carry which discrepancy) is imported and reconciled, and
//! what the product finds must be exactly what was planted — on SQLite and on PostgreSQL.

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
fn templates_have_the_official_headers_and_an_example_row() {
    let dir = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let out = dir.path().join(format!("{kind}.xlsx"));
        let o = bin().args(["template", kind, "--out", out.to_str().unwrap()]).output().unwrap();
        assert!(o.status.success());
        use calamine::{open_workbook_auto, Reader};
        let mut wb = open_workbook_auto(&out).unwrap();
        let range = wb.worksheet_range_at(0).unwrap().unwrap();
        let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
        assert!(header.contains(&"证件号码".to_string()) || header.contains(&"户编号".to_string()), "{kind}: {header:?}");
        assert_eq!(range.rows().count(), 2, "{kind}: header and one example");
    }
    // A template filled with its own example imports cleanly (needs the division tree).
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let o = run(&db, &["import", "poverty", dir.path().join("poverty.xlsx").to_str().unwrap()]);
    assert!(stdout(&o).contains("接受 1 行"), "{}", stdout(&o));
}

#[test]
fn an_unknown_roster_kind_is_refused_in_chinese() {
    let o = bin().args(["template", "payroll", "--out", "/tmp/x.xlsx"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("未知的名单类型"));
}
