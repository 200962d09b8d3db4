//! `baozhang policy compare` through the binary: the shipped Huining policy weighed against a copy with the
//! ordinary residents' critical-illness deductible lowered from 5,000 to 4,000 yuan, on a hand-made claims
//! file (the fund changes computed by hand below), and on a demo county's year in the ledger.

use std::path::Path;
use std::process::Command;

const HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt\n";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_baozhang"));
    c.env_remove("BAOZHANG_DATABASE_URL");
    c
}

/// The shipped policy with the critical-illness deductible of ordinary residents at `yuan` (the poor's
/// 2,000 unchanged), under its own id.
fn reform(dir: &Path, yuan: u32) -> String {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/gansu-huining-2018.toml")).unwrap();
    let changed = src
        .replacen("deductible = { value = 5000, mark = \"S\"", &format!("deductible = {{ value = {yuan}, mark = \"S\""), 1)
        .replacen("id = \"gansu-huining-2018\"", "id = \"gansu-huining-2018-reform\"", 1);
    assert_ne!(changed.matches("2018-reform").count(), 0, "the policy id was found");
    assert!(changed.contains(&format!("deductible = {{ value = {yuan}, mark")), "the deductible was found");
    let path = dir.join("huining-reform.toml");
    std::fs::write(&path, changed).unwrap();
    path.display().to_string()
}

/// Hand computation (all level 2, in county, inpatient, every yuan compliant):
/// - C1 P1 ordinary 20,000: basic (20,000 − 500) × 70 % = 13,650; remainder 6,350 → critical base 6,350:
///   old (6,350 − 5,000) × 50 % = 675, new (6,350 − 4,000) × 50 % = 1,175.
/// - C2 P1 ordinary 5,000 (same person-year): basic (5,000 − 500) × 70 % = 3,150; remainder 1,850 →
///   cumulative base 8,200: old V = 1,600, pays 1,600 − 675 = 925; new V = 2,100, pays 2,100 − 1,175 = 925.
/// - C3 P2 registered_poor 20,000: basic 20,000 × 80 % = 16,000; critical (4,000 − 2,000) × 50 % = 1,000
///   (the poor's deductible, unchanged); the 85 % floor is reached (17,000); assistance: personal 3,000 is
///   not above 3,000 → 0. Same under both: 17,000 of 20,000 = 85.00 %.
/// - C4 P3 2021-02-01: outside both policies' dates (2018-01-01 至 2020-12-31) → refused by both.
///
/// Critical-illness fund: old 675 + 925 + 1,000 = 2,600; new 1,175 + 925 + 1,000 = 3,100; change +500.
/// Basic 32,800 both. Fund payments 35,400 → 35,900; personal part 9,600 → 9,100 (−500, all of it P1's).
const ROWS: &str = "C1,P1,,2018-03-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n\
C2,P1,,2018-06-01,2,1,21,1,0,5000.00,0,0,0,5000.00\n\
C3,P2,registered_poor,2018-04-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n\
C4,P3,,2021-02-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n";

#[test]
fn a_lower_critical_deductible_is_weighed_fund_by_fund_and_a_refused_claim_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let claims = dir.join("claims.csv");
    std::fs::write(&claims, format!("{HEADER}{ROWS}")).unwrap();
    let new = reform(dir, 4000);
    let xlsx = dir.join("比较.xlsx");
    let o = bin()
        .args(["policy", "compare", "gansu-huining-2018", &new, "--claims", claims.to_str().unwrap()])
        .args(["--xlsx", xlsx.to_str().unwrap(), "--top", "5"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{out}\n{err}");

    // Fund totals: per fund, per layer (matched by id), and the sums.
    assert!(out.contains("城乡居民大病保险：原 2,600.00 元，新 3,100.00 元，变化 +500.00 元"), "{out}");
    assert!(out.contains("城乡居民基本医疗保险基金：原 32,800.00 元，新 32,800.00 元，变化 0.00 元"), "{out}");
    assert!(out.contains("大病保险（critical）：原 2,600.00 元，新 3,100.00 元，变化 +500.00 元"), "{out}");
    assert!(out.contains("基金支付合计：原 35,400.00 元，新 35,900.00 元，变化 +500.00 元"), "{out}");
    assert!(out.contains("个人负担：原 9,600.00 元，新 9,100.00 元，变化 -500.00 元"), "{out}");
    // The poor inpatients' ratio is unchanged; only P1 is affected.
    assert!(out.contains("贫困人口住院实际报销比例：原 85.00%，新 85.00%，变化 0.00 个百分点"), "{out}");
    assert!(out.contains("个人负担变化最大的人员（前 1）"), "{out}");
    // The refused claim, per policy, with its reason.
    assert!(out.contains("原政策结算 3 笔、拒绝 1 笔；新政策结算 3 笔、拒绝 1 笔；两项政策都结算 3 笔（2 人）"), "{out}");
    assert!(out.contains("原政策拒绝：第 5 行（C4），字段 setl_date：结算日期 2021-02-01 不在政策"), "{out}");
    assert!(out.contains("新政策拒绝：第 5 行（C4），字段 setl_date"), "{out}");

    // The workbook: one sheet per table, money in yuan from fen.
    use calamine::{open_workbook_auto, Reader};
    let mut wb = open_workbook_auto(&xlsx).unwrap();
    let names = wb.sheet_names().to_vec();
    for s in ["概况", "分层", "身份", "乡镇", "受影响人员"] {
        assert!(names.iter().any(|n| n == s), "sheet {s} in {names:?}");
    }
    let layers = wb.worksheet_range("分层").unwrap();
    let critical: Vec<String> =
        layers.rows().find(|r| r[1] == "critical").expect("the critical layer row").iter().map(|c| c.to_string()).collect();
    assert_eq!(critical[4..7], ["2600.00", "3100.00", "500.00"], "{critical:?}");
    let towns = wb.worksheet_range("乡镇").unwrap();
    assert_eq!(towns.rows().nth(1).unwrap()[1].to_string(), "全部", "a file without a region column has one township row");
    let persons = wb.worksheet_range("受影响人员").unwrap();
    assert_eq!(persons.rows().count(), 2, "header and P1");
    let refused = wb.worksheet_range("未结算").unwrap();
    assert_eq!(refused.rows().count(), 3, "header and C4 under each policy");
}

#[test]
fn a_bad_row_is_named_with_its_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let claims = tmp.path().join("claims.csv");
    std::fs::write(&claims, format!("{HEADER}C1,P1,,2018-02-30,2,1,21,1,0,1000.00,0,0,0,1000.00\n")).unwrap();
    let o = bin()
        .args(["policy", "compare", "gansu-huining-2018", "gansu-huining-2018", "--claims", claims.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("claims.csv") && err.contains("第 2 行，字段 setl_date"), "{err}");
    let o =
        bin().args(["policy", "compare", "gansu-huining-2018", "no-such-policy", "--claims", claims.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("新政策 找不到政策“no-such-policy”"));
}

/// `--year`: a demo county's 2018 settlements from the ledger, re-settled with the registry's identities.
/// The same policy on both sides changes nothing; the lower deductible pays more and never less.
#[test]
fn a_year_of_the_ledger_is_weighed_with_the_registrys_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = bin().current_dir(dir).args(["demo", "--scale", "0.01", "--no-serve"]).output().unwrap();
    assert!(o.status.success(), "demo: {}", String::from_utf8_lossy(&o.stderr));
    let db = format!("sqlite://{}", dir.join("baozhang.db").display());
    let run = |new: &str, xlsx: &Path| {
        let o = bin()
            .args(["policy", "compare", "gansu-huining-2018", new, "--year", "2018", "--database-url", &db])
            .args(["--xlsx", xlsx.to_str().unwrap()])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let same = run("gansu-huining-2018", &dir.join("same.xlsx"));
    assert!(same.contains("数据库 2018 年度有效结算"), "{same}");
    assert!(same.contains("没有人员的个人负担发生变化"), "{same}");
    assert!(same.contains("拒绝 0 笔"), "{same}");
    let new = reform(dir, 4000);
    let out = run(&new, &dir.join("reform.xlsx"));
    let line = out.lines().find(|l| l.contains("城乡居民大病保险：")).unwrap_or_default();
    assert!(line.contains("变化 +"), "the lower deductible pays more: {out}");
    use calamine::{open_workbook_auto, Reader};
    let mut wb = open_workbook_auto(dir.join("reform.xlsx")).unwrap();
    let towns = wb.worksheet_range("乡镇").unwrap();
    let named = towns.rows().skip(1).filter(|r| r[0].to_string().len() == 9 && r[1].to_string() != r[0].to_string()).count();
    assert!(named > 0, "townships by the registry's codes and names");
    let persons = wb.worksheet_range("受影响人员").unwrap();
    for r in persons.rows().skip(1) {
        let id = r[1].to_string();
        assert_eq!(&id[6..14], "********", "ID masked: {id}");
        assert!(r[2].to_string().chars().skip(1).all(|c| c == '*'), "name masked");
    }
}
