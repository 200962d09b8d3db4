//! The 2021+ medical-assistance classes (issue 16, R-POL-29/30) through the binary: the civil-affairs
//! roster's 救助类别 gives each person their class, and reconciliation checks each class's premium
//! subsidy against the policy of the year (`reconcile --policy`) — on SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};

use baozhang_core::{Date, IdCardNo, Sex};

fn run(db: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_baozhang")).args(args).env("BAOZHANG_DATABASE_URL", db).output().expect("run baozhang");
    assert!(
        out.status.success(),
        "baozhang {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn id(n: u16) -> String {
    IdCardNo::synthesize("620422", Date::new(1960, 1, 1).unwrap(), n, if n % 2 == 0 { Sex::Male } else { Sex::Female }).as_str().to_string()
}

fn classes_and_subsidies(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d, e) = (id(11), id(12), id(13), id(14), id(15));
    // A 低保对象 (the default class), B 低保边缘家庭成员, C 因病致贫重病患者 (no end date: 12 months), D 特困人员.
    let dibao = format!(
        "证件号码,姓名,行政区划代码,保障起始日期,保障终止日期,救助类别\n\
         {a},甲,620422100201,2024-01-01,,\n{b},乙,620422100201,2024-01-01,,低保边缘家庭成员\n\
         {c},丙,620422100201,2025-03-01,,因病致贫重病患者\n{d},丁,620422100201,2024-01-01,,特困人员\n"
    );
    let bad = format!("证件号码,姓名,行政区划代码,保障起始日期,保障终止日期,救助类别\n{e},戊,620422100201,2024-01-01,,富裕户\n");
    // Enrolled in 2025, premium 400: A subsidised 290 (the policy's amount), B and C nothing, D 300 of a full
    // subsidy, E (an ordinary resident) 100.
    let enrol = format!(
        "人员编号,证件号码,姓名,参保年度,参保状态,参保地区划,人员类别,标识日期,个人缴费,资助金额,资助来源\n\
         P1,{a},甲,2025,正常参保,620422,,2025-01-01,400,290,民政\nP2,{b},乙,2025,正常参保,620422,,2025-01-01,400,0,\n\
         P3,{c},丙,2025,正常参保,620422,,2025-01-01,400,0,\nP4,{d},丁,2025,正常参保,620422,,2025-01-01,400,300,民政\n\
         P5,{e},戊,2025,正常参保,620422,,2025-01-01,400,100,其他\n"
    );
    for (name, text) in [("dibao.csv", &dibao), ("bad.csv", &bad), ("enrolment.csv", &enrol)] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let reports = dir.path().join("reports");
    run(db, &["import", "dibao", dir.path().join("dibao.csv").to_str().unwrap(), "--report-dir", reports.to_str().unwrap()]);
    run(db, &["import", "enrolment", dir.path().join("enrolment.csv").to_str().unwrap(), "--report-dir", reports.to_str().unwrap()]);
    // An unknown class is refused with the column named.
    let out = Command::new(env!("CARGO_BIN_EXE_baozhang"))
        .args(["import", "dibao", dir.path().join("bad.csv").to_str().unwrap(), "--report-dir", reports.to_str().unwrap()])
        .env("BAOZHANG_DATABASE_URL", db)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: String =
        std::fs::read_dir(&reports).unwrap().filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok()).collect::<Vec<_>>().join("\n");
    assert!(report.contains("救助类别") && report.contains("富裕户"), "{text}\n{report}");

    let findings = dir.path().join("findings.csv");
    run(
        db,
        &["reconcile", "--as-of", "2025-06-30", "--policy", "gansu-huining-2024", "--findings", findings.to_str().unwrap(), "--unmasked"],
    );
    let mut rdr = csv::Reader::from_path(&findings).unwrap();
    let mut by_class: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rdr.deserialize::<BTreeMap<String, String>>() {
        let r = r.unwrap();
        by_class.entry(r["class"].clone()).or_default().insert(r["证件号码"].clone());
    }
    let missing = by_class.remove("subsidy_missing").unwrap_or_default();
    // B (低保边缘: 250 in 2025) and D (特困: the whole 400) are short; A has 290 of 290; C's class has no
    // subsidy in the policy; E holds no class.
    assert_eq!(missing, BTreeSet::from([b.clone(), d.clone()]), "{db}");
    assert!(by_class.remove("subsidy_excess").unwrap_or_default().is_empty(), "{db}");
    // A policy without subsidies for the year is refused with the reason.
    let out = Command::new(env!("CARGO_BIN_EXE_baozhang"))
        .args(["reconcile", "--as-of", "2025-06-30", "--policy", "gansu-huining-2018"])
        .env("BAOZHANG_DATABASE_URL", db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("参保资助"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn assistance_classes_and_their_subsidies_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    classes_and_subsidies(&format!("sqlite://{}", dir.path().join("a.db").display()));
}

#[test]
fn assistance_classes_and_their_subsidies_on_postgresql() {
    let base = std::env::var("BAOZHANG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("bz_cli_ac_{}", std::process::id());
    let created = Command::new("psql").args([base.as_str(), "-qc", &format!("CREATE DATABASE {name}")]).status().map(|s| s.success());
    assert!(created.unwrap_or(false), "PostgreSQL at {base} (and psql) are required for this test");
    let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    let r = std::panic::catch_unwind(|| classes_and_subsidies(&url));
    let _ = Command::new("psql").args([base.as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")]).status();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}
