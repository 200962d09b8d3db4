//! `baozhang settle` enforces a policy's effective dates, and `--policy <region code>` settles each claim
//! under the shipped policy in force on its date (as the server chooses).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_baozhang");
const HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt\n";

fn settle(dir: &std::path::Path, policy: &str, rows: &str, extra: &[&str]) -> (i32, String, String) {
    let claims = dir.join("claims.csv");
    std::fs::write(&claims, format!("{HEADER}{rows}")).unwrap();
    let out = dir.join("out.csv");
    let o = Command::new(BIN)
        .args(["settle", "--policy", policy, "--claims", claims.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let csv = std::fs::read_to_string(&out).unwrap_or_default();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).to_string(), csv)
}

#[test]
fn a_claim_outside_its_policys_dates_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "C1,P1,,2019-05-01,2,1,21,1,0,1000.00,0,0,0,1000.00\nC2,P2,,2025-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n";
    let (code, err, csv) = settle(dir.path(), "gansu-huining-2018", rows, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("第 3 行") || err.contains("3"), "the line is named: {err}");
    assert!(
        err.contains("2025-03-01") && err.contains("2018-01-01 至 2020-12-31"),
        "the reason names the date and the policy's dates: {err}"
    );
    assert!(csv.is_empty(), "nothing written when the run is refused");

    // With --skip-invalid the 2019 claim settles and the 2025 one is reported.
    let (code, err, csv) = settle(dir.path(), "gansu-huining-2018", rows, &["--skip-invalid"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv.lines().count(), 2, "header and the 2019 claim: {csv}");
    let rejected = std::fs::read_to_string(dir.path().join("out.csv.rejected.csv")).unwrap();
    assert!(rejected.contains("setl_date") && rejected.contains("有效期"), "{rejected}");
}

#[test]
fn a_region_code_picks_the_policy_in_force_on_each_claims_date() {
    let dir = tempfile::tempdir().unwrap();
    // Huining 620422: the 2018 policy covers 2018–2020, the 2024 one 2024–2026; nothing shipped covers 2022.
    let rows = "C1,P1,,2019-05-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n";
    let (code, err, by_region) = settle(dir.path(), "620422", rows, &[]);
    assert_eq!(code, 0, "{err}");
    let (_, _, by_id) = settle(dir.path(), "gansu-huining-2018", rows, &[]);
    assert_eq!(by_region, by_id, "the same policy is chosen");
    let later = "C2,P2,,2025-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n";
    let (code, err, by_region) = settle(dir.path(), "620422", later, &[]);
    assert_eq!(code, 0, "{err}");
    let (_, _, by_id) = settle(dir.path(), "gansu-huining-2024", later, &[]);
    assert_eq!(by_region, by_id, "a 2025 claim is settled under the 2024–2026 policy");
    let (code, err, _) = settle(dir.path(), "620422", "C3,P3,,2022-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("区划 620422 在 2022-03-01 没有生效的政策"), "{err}");
    let (code, err, _) = settle(dir.path(), "990000", rows, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("没有区划 990000 的政策"), "{err}");
}
