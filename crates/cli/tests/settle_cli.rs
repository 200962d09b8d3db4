//! `baozhang settle` end to end: the real binary on real files.
//!
//! Amounts are always compared in integer fen parsed from the text the binary wrote (never through
//! `f64`), and every test that expects a failure also checks that nothing was left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_baozhang");

const POLICIES: [&str; 4] = ["gansu-huining-2018", "ningxia-zhongwei-2018", "yunnan-2020", "neimenggu-2020"];

/// The settle contract's output columns, in order (crates/ingest/src/output.rs).
const OUTPUT_COLUMNS: [&str; 16] = [
    "claim_id",
    "psn_no",
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "oth_pay",
    "hosp_part_amt",
    "fund_pay_sumamt",
    "psn_part_amt",
    "fund_390100",
    "fund_390200",
    "fund_620100",
    "fund_610100",
    "fund_640100",
    "fund_999996",
];

const CLAIMS_HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt";

/// A valid ordinary-resident inpatient bill (175.50 = 20.00 + 0.00 + 5.50 + 150.00) for `id`.
fn good_row(id: &str) -> String {
    format!("{id},P-{id},,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00")
}

// ───────────────────────────── helpers ─────────────────────────────

/// The hand-computed cases of `policy` (`policies/tests/<policy>.toml`) as the settle contract's files:
/// `claims.csv` (the claims of the cases that settle, in file order — a case expecting a refusal is left
/// out) or `expected.csv` (what `settle` must write for them). Written once per test process under the
/// target's temporary directory, each file by an atomic rename (the text is always the same, so
/// concurrent runs agree).
fn fixture(policy: &str, file: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("settle_cli_cases");
        for p in POLICIES {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/tests").join(format!("{p}.toml"));
            let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut cases =
                baozhang_ingest::policy_tests::parse_case_file(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display())).cases;
            cases.retain(|c| c.expected_settlement().is_some());
            let d = dir.join(p);
            std::fs::create_dir_all(&d).unwrap();
            for (name, text) in [
                ("claims.csv", baozhang_ingest::policy_tests::claims_csv(&cases)),
                ("expected.csv", baozhang_ingest::policy_tests::expected_csv(&cases)),
            ] {
                let tmp = d.join(format!(".{name}.{}", std::process::id()));
                std::fs::write(&tmp, text).unwrap();
                std::fs::rename(&tmp, d.join(name)).unwrap();
            }
        }
        dir
    });
    dir.join(policy).join(file)
}

fn policy_file(policy: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies").join(format!("{policy}.toml"))
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stderr ---\n{}\n--- stdout (first 2000 bytes) ---\n{}",
            self.code,
            self.stderr,
            self.stdout.chars().take(2000).collect::<String>()
        )
    }
}

fn run_in(dir: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out: Output = cmd.output().expect("the baozhang binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `baozhang settle --policy P --claims C [--out O] [extra…]`.
fn settle(policy: &str, claims: &Path, out: Option<&Path>, extra: &[&str]) -> Run {
    let mut args = vec!["settle", "--policy", policy, "--claims", path_str(claims)];
    if let Some(o) = out {
        args.push("--out");
        args.push(path_str(o));
    }
    args.extend_from_slice(extra);
    run_in(None, &args)
}

/// Settles and returns the output file's text; panics with the run's output if it failed.
fn settle_ok(policy: &str, claims: &Path, dir: &Path, extra: &[&str]) -> String {
    let out = dir.join("out.csv");
    let _ = std::fs::remove_file(&out);
    let r = settle(policy, claims, Some(&out), extra);
    assert!(r.ok(), "settle {policy} {} failed: {}", claims.display(), r.describe());
    std::fs::read_to_string(&out).expect("output file written")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

fn claims_file(dir: &Path, rows: &[String]) -> PathBuf {
    let mut text = String::from(CLAIMS_HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    write(dir, "claims.csv", &text)
}

/// The names in `dir`, sorted.
fn dir_listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A CSV text as (header, rows).
fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header = rdr.headers().expect("a header").iter().map(str::to_string).collect();
    let rows = rdr.records().map(|r| r.expect("a CSV row").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

/// Rows as maps column → value.
fn read_csv_maps(text: &str) -> Vec<BTreeMap<String, String>> {
    let (h, rows) = read_csv(text);
    rows.into_iter()
        .map(|r| {
            assert_eq!(r.len(), h.len(), "row {r:?} has as many fields as the header");
            h.iter().cloned().zip(r).collect()
        })
        .collect()
}

/// Parses an amount as the binary writes it ("123.45", exactly two decimals) into fen.
fn fen_out(s: &str) -> Result<i64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (i, f) = body.split_once('.').ok_or_else(|| format!("“{s}” has no decimal point"))?;
    if i.is_empty() || f.len() != 2 || !i.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("“{s}” is not an amount with exactly two decimals"));
    }
    let v = i.parse::<i64>().map_err(|e| format!("“{s}”: {e}"))? * 100 + f.parse::<i64>().map_err(|e| format!("“{s}”: {e}"))?;
    Ok(if neg { -v } else { v })
}

/// Parses an amount of the claims file ("175.5", "20", "0.05") into fen.
fn fen_in(s: &str) -> i64 {
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    assert!(f.len() <= 2, "test input “{s}” has at most two decimals");
    let i: i64 = if i.is_empty() { 0 } else { i.parse().expect("yuan") };
    let f: i64 = format!("{f:0<2}").parse().expect("fen");
    i * 100 + f
}

/// Checks one output row against its bill: the parts add up to the bill, the named settlement
/// fields equal their fund columns, and nothing is negative. Returns every problem found.
fn check_row_adds_up(out: &BTreeMap<String, String>, medfee_sumamt_fen: i64) -> Vec<String> {
    let id = out.get("claim_id").cloned().unwrap_or_default();
    let mut problems = Vec::new();
    let mut v: BTreeMap<&str, i64> = BTreeMap::new();
    for col in &OUTPUT_COLUMNS[2..] {
        match out.get(*col).map(|s| fen_out(s)) {
            Some(Ok(x)) => {
                if x < 0 {
                    problems.push(format!("{id}: {col} = {} is negative", out[*col]));
                }
                v.insert(col, x);
            }
            Some(Err(e)) => problems.push(format!("{id}: {col}: {e}")),
            None => problems.push(format!("{id}: column {col} missing")),
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let mut eq = |what: &str, left: i64, right: i64| {
        if left != right {
            problems.push(format!("{id}: {what}: {left} fen ≠ {right} fen"));
        }
    };
    eq(
        "fund_pay_sumamt + hosp_part_amt + psn_part_amt = medfee_sumamt",
        v["fund_pay_sumamt"] + v["hosp_part_amt"] + v["psn_part_amt"],
        medfee_sumamt_fen,
    );
    eq("hifp_pay = fund_390100", v["hifp_pay"], v["fund_390100"]);
    eq("hifmi_pay = fund_390200", v["hifmi_pay"], v["fund_390200"]);
    eq("maf_pay = fund_610100", v["maf_pay"], v["fund_610100"]);
    eq("oth_pay = fund_620100 + fund_640100", v["oth_pay"], v["fund_620100"] + v["fund_640100"]);
    eq("hosp_part_amt = fund_999996", v["hosp_part_amt"], v["fund_999996"]);
    eq(
        "fund_pay_sumamt = every fund but 999996",
        v["fund_pay_sumamt"],
        v["fund_390100"] + v["fund_390200"] + v["fund_620100"] + v["fund_610100"] + v["fund_640100"],
    );
    problems
}

/// Checks a whole run: one output row per claim, in the claims' order, each adding up.
fn check_output_adds_up(claims_text: &str, out_text: &str) -> Vec<String> {
    let claims = read_csv_maps(claims_text);
    let out = read_csv_maps(out_text);
    let mut problems = Vec::new();
    if claims.len() != out.len() {
        problems.push(format!("{} claims but {} output rows", claims.len(), out.len()));
        return problems;
    }
    for (c, o) in claims.iter().zip(&out) {
        if c["claim_id"] != o["claim_id"] || c["psn_no"] != o["psn_no"] {
            problems
                .push(format!("output row {}/{} where claim {}/{} was expected", o["claim_id"], o["psn_no"], c["claim_id"], c["psn_no"]));
            continue;
        }
        problems.extend(check_row_adds_up(o, fen_in(&c["medfee_sumamt"])));
    }
    problems
}

// ───────────────────────────── the reference cases ─────────────────────────────

#[test]
fn every_reference_policy_matches_its_hand_computed_cases() {
    let dir = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    for policy in POLICIES {
        let actual = settle_ok(policy, &fixture(policy, "claims.csv"), dir.path(), &[]);
        let expected = std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap();
        let (eh, erows) = read_csv(&expected);
        let (ah, arows) = read_csv(&actual);
        if eh != ah {
            mismatches.push(format!("{policy}: header {ah:?}, expected {eh:?}"));
            continue;
        }
        if erows.len() != arows.len() {
            mismatches.push(format!("{policy}: {} rows, expected {}", arows.len(), erows.len()));
        }
        for (e, a) in erows.iter().zip(&arows) {
            if e[0] != a[0] {
                mismatches.push(format!("{policy}: row for claim {} where {} was expected", a[0], e[0]));
                continue;
            }
            for (k, col) in eh.iter().enumerate() {
                if e.get(k) != a.get(k) {
                    mismatches.push(format!(
                        "{policy} {}: {col} expected {} actual {}",
                        e[0],
                        e.get(k).map_or("(none)", String::as_str),
                        a.get(k).map_or("(none)", String::as_str)
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn the_csv_output_has_exactly_the_contract_columns() {
    assert_eq!(
        baozhang_ingest::output::SETTLEMENT_CSV_HEADER.trim_end(),
        OUTPUT_COLUMNS.join(","),
        "the library's header is the contract's"
    );
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let out = settle_ok(policy, &fixture(policy, "claims.csv"), dir.path(), &[]);
        let first = out.lines().next().unwrap_or("");
        assert_eq!(first, OUTPUT_COLUMNS.join(","), "{policy}: header line");
        for (n, line) in out.lines().enumerate().skip(1) {
            assert_eq!(line.split(',').count(), OUTPUT_COLUMNS.len(), "{policy}: line {} “{line}” has one field per column", n + 1);
        }
        assert!(out.ends_with('\n'), "{policy}: the file ends with a newline");
    }
}

#[test]
fn every_settlement_adds_up_to_its_bill_in_fen() {
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for policy in POLICIES {
        let claims = fixture(policy, "claims.csv");
        let out = settle_ok(policy, &claims, dir.path(), &[]);
        let claims_text = std::fs::read_to_string(&claims).unwrap();
        problems.extend(check_output_adds_up(&claims_text, &out).into_iter().map(|p| format!("{policy}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ───────────────────────────── random claims ─────────────────────────────

/// SplitMix64: the same claims on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// An amount in fen: often zero, mostly small, sometimes very large.
    fn amount(&mut self) -> i64 {
        let cap: u64 = match self.below(10) {
            0 | 1 => return 0,
            2..=5 => 50_000,    // ≤ 500 yuan
            6 | 7 => 3_000_000, // ≤ 30,000 yuan
            8 => 30_000_000,    // ≤ 300,000 yuan
            _ => 100_000_000,   // ≤ 1,000,000 yuan
        };
        self.below(cap + 1) as i64
    }
}

fn yuan(f: i64) -> String {
    format!("{}.{:02}", f / 100, f % 100)
}

/// `n` random but valid claims for a few hundred people over `years` calendar years from `year`, with
/// every identity (ids and Chinese names), both medical types, all levels and flags.
fn random_claims(seed: u64, n: usize, year: u16, years: u64) -> String {
    const IDS: [&str; 14] = [
        "registered_poor",
        "exited_poor",
        "marginal",
        "dibao",
        "extreme_poor",
        "safety_net",
        "disabled",
        "illness_poor",
        "建档立卡",
        "已脱贫",
        "低保",
        "特困供养",
        "边缘户",
        "农村兜底保障户",
    ];
    let mut rng = Rng(seed);
    let people = (n / 4).max(1) as u64;
    let mut person_ids: BTreeMap<u64, String> = BTreeMap::new();
    let mut text = String::from(CLAIMS_HEADER);
    text.push('\n');
    for k in 0..n {
        let p = rng.below(people);
        let ids = person_ids
            .entry(p)
            .or_insert_with(|| {
                let mut v = Vec::new();
                if rng.below(3) > 0 {
                    for _ in 0..=rng.below(2) {
                        v.push(IDS[rng.below(IDS.len() as u64) as usize]);
                    }
                }
                v.join(";")
            })
            .clone();
        let y = year + rng.below(years) as u16;
        let m = 1 + rng.below(12);
        let d = 1 + rng.below(28);
        let (ful, over, pre, inscp) = (rng.amount() / 4, rng.amount() / 8, rng.amount() / 8, rng.amount());
        let total = ful + over + pre + inscp;
        text.push_str(&format!(
            "R{k},RP{p},{ids},{y}-{m:02}-{d:02},{},{},{},{},{},{},{},{},{},{}\n",
            1 + rng.below(3),
            rng.below(2),
            if rng.below(3) == 0 { 14 } else { 21 },
            rng.below(2),
            rng.below(2),
            yuan(total),
            yuan(ful),
            yuan(over),
            yuan(pre),
            yuan(inscp),
        ));
    }
    text
}

#[test]
fn random_claims_always_add_up_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (i, policy) in POLICIES.iter().enumerate() {
        let seed = 0xBA0_2A46 + i as u64;
        // Within the policy's effective dates (2018–2020, 2020): two years where it has them.
        let (year, years) = if policy.ends_with("2018") { (2018, 2) } else { (2020, 1) };
        let text = random_claims(seed, 2_000, year, years);
        let claims = write(dir.path(), "random.csv", &text);
        let out = settle_ok(policy, &claims, dir.path(), &[]);
        problems.extend(check_output_adds_up(&text, &out).into_iter().map(|p| format!("{policy} (seed {seed:#x}): {p}")));
    }
    problems.truncate(50);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_persons_results_do_not_depend_on_other_peoples_claims() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let claims = fixture(policy, "claims.csv");
        let all = read_csv_maps(&settle_ok(policy, &claims, dir.path(), &[]));
        // Settle each person's claims alone, in the same order.
        let text = std::fs::read_to_string(&claims).unwrap();
        let (h, rows) = read_csv(&text);
        let psn = h.iter().position(|c| c == "psn_no").unwrap();
        let people: BTreeSet<&String> = rows.iter().map(|r| &r[psn]).collect();
        for person in people.into_iter().take(12) {
            let mine: Vec<String> = rows.iter().filter(|r| &r[psn] == person).map(|r| r.join(",")).collect();
            let file = claims_file(dir.path(), &mine);
            let alone = read_csv_maps(&settle_ok(policy, &file, dir.path(), &[]));
            let together: Vec<_> = all.iter().filter(|o| &o["psn_no"] == person).collect();
            assert_eq!(alone.len(), together.len(), "{policy} {person}");
            for (a, t) in alone.iter().zip(together) {
                assert_eq!(a, t, "{policy} {person}: settled alone vs in the whole file");
            }
        }
    }
}

// ───────────────────────────── invalid rows ─────────────────────────────

/// (what, the bad row, the field the message must name)
fn invalid_rows() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("a date that does not exist", "B4,P-B4,,2018-02-30,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "setl_date"),
        ("parts that do not add up to the total", "B4,P-B4,,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.01".into(), "medfee_sumamt"),
        ("an amount with three decimals", "B4,P-B4,,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.001".into(), "inscp_scp_amt"),
        ("a negative amount", "B4,P-B4,,2018-03-01,1,1,21,1,0,135.50,-20.00,0.00,5.50,150.00".into(), "fulamt_ownpay_amt"),
        ("an amount that is not a number", "B4,P-B4,,2018-03-01,1,1,21,1,0,175.50,20.00,abc,5.50,150.00".into(), "overlmt_selfpay"),
        ("an unknown identity", "B4,P-B4,穷人,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "identities"),
        ("med_type 99", "B4,P-B4,,2018-03-01,1,1,99,1,0,175.50,20.00,0.00,5.50,150.00".into(), "med_type"),
        ("hospital level 4", "B4,P-B4,,2018-03-01,4,1,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "hosp_lv"),
        ("in_county 2", "B4,P-B4,,2018-03-01,1,2,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "in_county"),
        ("an empty claim id", ",P-B4,,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "claim_id"),
        ("an empty person number", "B4,,,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00".into(), "psn_no"),
    ]
}

#[test]
fn an_invalid_row_stops_the_run_and_leaves_no_output_file() {
    let mut failures = Vec::new();
    for (what, bad, field) in invalid_rows() {
        let dir = tempfile::tempdir().unwrap();
        // The header is line 1, so the bad row is line 4; a good row follows it.
        let claims = claims_file(dir.path(), &[good_row("B2"), good_row("B3"), bad.clone(), good_row("B5")]);
        let out = dir.path().join("out.csv");
        let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
        let mut why = Vec::new();
        if r.code != Some(1) {
            why.push(format!("exit {:?} (expected 1)", r.code));
        }
        if !r.stderr.contains("第 4 行") {
            why.push("stderr does not name line 4 (“第 4 行”)".to_string());
        }
        if !r.stderr.contains(field) {
            why.push(format!("stderr does not name the field {field}"));
        }
        let left = dir_listing(dir.path());
        if left != names(&["claims.csv"]) {
            why.push(format!("files left behind: {left:?}"));
        }
        if !why.is_empty() {
            failures.push(format!("{what} ({bad}): {}\n{}", why.join("; "), r.describe()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_failed_run_leaves_an_existing_output_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad, _) = invalid_rows().remove(0);
    let claims = claims_file(dir.path(), &[good_row("B2"), bad]);
    let out = write(dir.path(), "out.csv", "yesterday's results\n");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "yesterday's results\n");
    assert_eq!(dir_listing(dir.path()), names(&["claims.csv", "out.csv"]));
}

#[test]
fn skip_invalid_settles_the_valid_rows_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        good_row("S2"),
        "S3,P-S3,,2018-02-30,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00".to_string(),
        good_row("S4"),
        "S5,P-S5,\"低保,特困供养\",2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.01".to_string(),
        good_row("S6"),
        "S7,P-S7,,2018-03-01,1,1,99,1,0,175.50,20.00,0.00,5.50,150.00".to_string(),
    ];
    let claims = claims_file(dir.path(), &rows);
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &["--skip-invalid"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(
        dir_listing(dir.path()),
        names(&["claims.csv", "out.csv", "out.csv.rejected.csv"]),
        "the output, the rejects, and no temporary file"
    );

    // The output holds exactly the valid rows, settled as if they were alone in the file.
    let settled = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<String> = read_csv_maps(&settled).into_iter().map(|m| m["claim_id"].clone()).collect();
    assert_eq!(ids, ["S2", "S4", "S6"]);
    let only_valid = tempfile::tempdir().unwrap();
    let valid = claims_file(only_valid.path(), &[good_row("S2"), good_row("S4"), good_row("S6")]);
    assert_eq!(settled, settle_ok("gansu-huining-2018", &valid, only_valid.path(), &[]));

    // The rejects: line, field, reason, then the row as it was.
    let rejected = std::fs::read_to_string(dir.path().join("out.csv.rejected.csv")).unwrap();
    let (h, rej) = read_csv(&rejected);
    let mut expected_header = vec!["line".to_string(), "field".into(), "reason".into()];
    expected_header.extend(CLAIMS_HEADER.split(',').map(str::to_string));
    assert_eq!(h, expected_header);
    assert_eq!(rej.len(), 3, "{rejected}");
    let original = read_csv(&std::fs::read_to_string(&claims).unwrap()).1;
    for (r, (line, field, orig)) in
        rej.iter().zip([("3", "setl_date", &original[1]), ("5", "medfee_sumamt", &original[3]), ("7", "med_type", &original[5])])
    {
        assert_eq!(r[0], line, "{r:?}");
        assert_eq!(r[1], field, "{r:?}");
        assert!(!r[2].trim().is_empty(), "a reason is given: {r:?}");
        assert_eq!(&r[3..], &orig[..], "the original row follows");
    }
    assert!(r.stderr.contains("rejected.csv"), "the summary points at the rejects: {}", r.stderr);
}

#[test]
fn skip_invalid_with_nothing_to_reject_writes_no_rejected_file() {
    let dir = tempfile::tempdir().unwrap();
    let claims = claims_file(dir.path(), &[good_row("K2"), good_row("K3")]);
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &["--skip-invalid"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(dir_listing(dir.path()), names(&["claims.csv", "out.csv"]));
}

#[test]
fn a_duplicated_claim_id_is_rejected_not_settled_twice() {
    // G09 is a poor person whose annual layers carry over between claims: a second settlement of
    // G09-1 would change what G09-2 and G09-3 get.
    let dir = tempfile::tempdir().unwrap();
    let policy = "gansu-huining-2018";
    let text = std::fs::read_to_string(fixture(policy, "claims.csv")).unwrap();
    let row = |id: &str| text.lines().find(|l| l.starts_with(&format!("{id},"))).unwrap().to_string();
    let claims = claims_file(dir.path(), &[row("G09-1"), row("G09-2"), row("G09-1"), row("G09-3")]);

    let out = dir.path().join("out.csv");
    let r = settle(policy, &claims, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 4 行"), "{}", r.stderr);
    assert!(r.stderr.contains("claim_id"), "{}", r.stderr);
    assert!(r.stderr.contains("G09-1"), "{}", r.stderr);
    assert_eq!(dir_listing(dir.path()), names(&["claims.csv"]));

    let r = settle(policy, &claims, Some(&out), &["--skip-invalid"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let settled = read_csv_maps(&std::fs::read_to_string(&out).unwrap());
    let expected: Vec<_> = read_csv_maps(&std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap())
        .into_iter()
        .filter(|m| ["G09-1", "G09-2", "G09-3"].contains(&m["claim_id"].as_str()))
        .collect();
    assert_eq!(settled, expected, "each claim settled once, as in the reference cases");
    let (_, rej) = read_csv(&std::fs::read_to_string(dir.path().join("out.csv.rejected.csv")).unwrap());
    assert_eq!(rej.len(), 1);
    assert_eq!((rej[0][0].as_str(), rej[0][1].as_str(), rej[0][3].as_str()), ("4", "claim_id", "G09-1"));
}

// ───────────────────────────── the header ─────────────────────────────

#[test]
fn a_missing_required_column_is_an_error_naming_the_column() {
    let required = [
        "claim_id",
        "psn_no",
        "setl_date",
        "hosp_lv",
        "in_county",
        "med_type",
        "medfee_sumamt",
        "fulamt_ownpay_amt",
        "overlmt_selfpay",
        "preselfpay_amt",
        "inscp_scp_amt",
    ];
    let text = std::fs::read_to_string(fixture("gansu-huining-2018", "claims.csv")).unwrap();
    let mut failures = Vec::new();
    for col in required {
        let dir = tempfile::tempdir().unwrap();
        let claims = write(dir.path(), "claims.csv", &drop_column(&text, col));
        let out = dir.path().join("out.csv");
        let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
        if r.code != Some(1) || !r.stderr.contains(col) {
            failures.push(format!("without {col}: {}", r.describe()));
        }
        if dir_listing(dir.path()) != names(&["claims.csv"]) {
            failures.push(format!("without {col}: left {:?}", dir_listing(dir.path())));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_file_without_the_identities_column_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("gansu-huining-2018", "claims.csv")).unwrap();
    let claims = write(dir.path(), "claims.csv", &drop_column(&text, "identities"));
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("identities"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn optional_flag_columns_default_to_zero() {
    // referral_ok and major_disease may be left out; gansu's reference cases do not depend on them
    // except through their values, which are 1 / 0 there, so only the major_disease column is dropped.
    let dir = tempfile::tempdir().unwrap();
    let policy = "gansu-huining-2018";
    let text = std::fs::read_to_string(fixture(policy, "claims.csv")).unwrap();
    let claims = write(dir.path(), "claims.csv", &drop_column(&text, "major_disease"));
    let out = settle_ok(policy, &claims, dir.path(), &[]);
    assert_eq!(out, std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap());
}

fn drop_column(text: &str, col: &str) -> String {
    let (h, rows) = read_csv(text);
    let k = h.iter().position(|c| c == col).expect("column present");
    let mut w = csv::Writer::from_writer(Vec::new());
    let keep = |r: &Vec<String>| -> Vec<String> { r.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, v)| v.clone()).collect() };
    w.write_record(keep(&h)).unwrap();
    for r in &rows {
        w.write_record(keep(r)).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn reorder_columns(text: &str, order: &[usize]) -> String {
    let (h, rows) = read_csv(text);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(order.iter().map(|&i| &h[i])).unwrap();
    for r in &rows {
        w.write_record(order.iter().map(|&i| &r[i])).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn columns_in_a_different_order_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let text = std::fs::read_to_string(fixture(policy, "claims.csv")).unwrap();
        let n = read_csv(&text).0.len();
        let expected = std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap();
        let reversed: Vec<usize> = (0..n).rev().collect();
        // Amounts first, then the person, then the rest.
        let shuffled: Vec<usize> = (0..n).map(|i| (i * 5 + 9) % n).collect();
        assert_eq!(shuffled.iter().collect::<BTreeSet<_>>().len(), n, "a permutation");
        for order in [reversed, shuffled] {
            let claims = write(dir.path(), "reordered.csv", &reorder_columns(&text, &order));
            let out = settle_ok(policy, &claims, dir.path(), &[]);
            assert_eq!(out, expected, "{policy}, columns in order {order:?}");
        }
    }
}

// ───────────────────────────── JSONL ─────────────────────────────

/// JSON as written, numbers kept as their text (so amounts are checked without `f64`).
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn num(&self) -> Option<&str> {
        match self {
            J::Num(s) => Some(s),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }
    fn arr(&self) -> Option<&[J]> {
        match self {
            J::Arr(v) => Some(v),
            _ => None,
        }
    }
    /// Every number anywhere in the value, with its key path.
    fn numbers(&self, path: &str, out: &mut Vec<(String, String)>) {
        match self {
            J::Num(s) => out.push((path.to_string(), s.clone())),
            J::Arr(v) => {
                for (i, x) in v.iter().enumerate() {
                    x.numbers(&format!("{path}[{i}]"), out);
                }
            }
            J::Obj(kv) => {
                for (k, x) in kv {
                    x.numbers(&format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }
}

struct JParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JParser<'_> {
    fn parse(text: &str) -> Result<J, String> {
        let mut p = JParser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing text at byte {}", p.i));
        }
        Ok(v)
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", b as char, self.i))
        }
    }
    fn value(&mut self) -> Result<J, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(J::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value()?;
                    kv.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(J::Obj(kv));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(J::Arr(v));
                }
                loop {
                    v.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(J::Arr(v));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(J::Str(self.string()?)),
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(J::Null)
            }
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(J::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(J::Bool(false))
            }
            Some(b) if *b == b'-' || b.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    self.i += 1;
                }
                Ok(J::Num(String::from_utf8(self.s[start..self.i].to_vec()).unwrap()))
            }
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.i));
        }
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        self.i += 1;
        // serde_json decodes the escapes.
        let raw = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        serde_json::from_str::<String>(raw).map_err(|e| format!("string {raw}: {e}"))
    }
}

/// Layer ids of a shipped policy file, in order (the line after each `[[layers]]`).
fn layer_ids(policy: &str) -> Vec<String> {
    let text = std::fs::read_to_string(policy_file(policy)).unwrap();
    let mut ids = Vec::new();
    let mut in_layer = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "[[layers]]" {
            in_layer = true;
        } else if t.starts_with('[') {
            in_layer = false;
        } else if in_layer {
            if let Some(rest) = t.strip_prefix("id = \"") {
                ids.push(rest.split('"').next().unwrap().to_string());
                in_layer = false;
            }
        }
    }
    ids
}

fn version_of(policy: &str) -> String {
    let r = run_in(None, &["policy", "check", policy]);
    assert!(r.ok(), "{}", r.describe());
    let v = r.stdout.split("版本").nth(1).expect("a version").trim().to_string();
    assert_eq!(v.len(), 16, "16 hex digits: {v}");
    v
}

#[test]
fn jsonl_output_carries_setlinfo_setldetail_and_an_explanation_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let mut problems: Vec<String> = Vec::new();
    for policy in POLICIES {
        let claims = fixture(policy, "claims.csv");
        let csv_rows = read_csv_maps(&settle_ok(policy, &claims, dir.path(), &[]));
        let jsonl = settle_ok(policy, &claims, dir.path(), &["--format", "jsonl"]);
        let layers = layer_ids(policy);
        assert!(!layers.is_empty(), "{policy}: layers found in the policy file");
        let version = version_of(policy);
        let lines: Vec<&str> = jsonl.lines().collect();
        assert_eq!(lines.len(), csv_rows.len(), "{policy}: one line per claim");
        assert!(jsonl.ends_with('\n'));

        for (line, csv_row) in lines.iter().zip(&csv_rows) {
            let id = &csv_row["claim_id"];
            let mut bad = |m: String| problems.push(format!("{policy} {id}: {m}"));
            if let Err(e) = serde_json::from_str::<serde_json::Value>(line) {
                bad(format!("not valid JSON: {e}"));
                continue;
            }
            let j = match JParser::parse(line) {
                Ok(j) => j,
                Err(e) => {
                    bad(format!("unreadable: {e}"));
                    continue;
                }
            };

            // Every number is an amount written with exactly two decimals — except pool_prop_selfpay, a
            // ratio 0–1 with four decimals, as the national interface defines it.
            let mut nums = Vec::new();
            j.numbers("", &mut nums);
            for (path, n) in &nums {
                if path.ends_with(".pool_prop_selfpay") {
                    let ok = n.len() == 6 && (n.starts_with("0.") || n == "1.0000") && n[2..].bytes().all(|b| b.is_ascii_digit());
                    if !ok {
                        bad(format!("{path}: “{n}” is not a ratio 0–1 with four decimals"));
                    }
                } else if let Err(e) = fen_out(n) {
                    bad(format!("{path}: {e}"));
                }
            }

            if j.get("policy_version").and_then(J::str) != Some(version.as_str()) {
                bad(format!("policy_version {:?}, `policy check` says {version}", j.get("policy_version")));
            }

            // setlinfo: the national settlement record.
            let Some(info) = j.get("setlinfo") else {
                bad("no setlinfo".into());
                continue;
            };
            if info.get("mdtrt_id").and_then(J::str) != Some(id.as_str()) {
                bad(format!("setlinfo.mdtrt_id {:?}", info.get("mdtrt_id")));
            }
            if info.get("psn_no").and_then(J::str) != Some(csv_row["psn_no"].as_str()) {
                bad(format!("setlinfo.psn_no {:?}", info.get("psn_no")));
            }
            for key in ["act_pay_dedc", "hifp_pay", "hifmi_pay", "maf_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt", "hosp_part_amt"] {
                // The raw text, as a string search: `"hifp_pay":123.45`.
                let needle = format!("\"{key}\":{}", csv_row[key]);
                if !line.contains(&needle) {
                    bad(format!("the line does not contain {needle}"));
                }
                if info.get(key).and_then(J::num) != Some(csv_row[key].as_str()) {
                    bad(format!("setlinfo.{key} {:?}, CSV {}", info.get(key), csv_row[key]));
                }
            }
            let medfee = info.get("medfee_sumamt").and_then(J::num).map(fen_out);
            let inscp = info.get("inscp_scp_amt").and_then(J::num).map(fen_out);
            let (Some(Ok(medfee)), Some(Ok(_inscp))) = (medfee, inscp) else {
                bad("setlinfo.medfee_sumamt / inscp_scp_amt missing".into());
                continue;
            };
            let amt = |k: &str| fen_out(&csv_row[k]).unwrap();
            if amt("fund_pay_sumamt") + amt("hosp_part_amt") + amt("psn_part_amt") != medfee {
                bad("setlinfo parts do not add up to medfee_sumamt".into());
            }

            // setldetail: one entry per paying fund; they add up to what the funds and the hospital pay.
            let Some(detail) = j.get("setldetail").and_then(J::arr) else {
                bad("no setldetail array".into());
                continue;
            };
            let mut detail_sum = 0;
            for d in detail {
                for key in ["fund_pay_type", "fund_pay_type_name"] {
                    if d.get(key).and_then(J::str).is_none_or(str::is_empty) {
                        bad(format!("setldetail entry without {key}: {d:?}"));
                    }
                }
                if d.get("inscp_scp_amt") != info.get("inscp_scp_amt") {
                    bad(format!("setldetail inscp_scp_amt {:?}", d.get("inscp_scp_amt")));
                }
                match d.get("fund_payamt").and_then(J::num).map(fen_out) {
                    Some(Ok(v)) => {
                        detail_sum += v;
                        let code = d.get("fund_pay_type").and_then(J::str).unwrap_or("");
                        let col = format!("fund_{code}");
                        match csv_row.get(&col) {
                            Some(c) if fen_out(c) == Ok(v) => {}
                            other => bad(format!("setldetail {code} pays {v} fen, CSV {col} = {other:?}")),
                        }
                    }
                    _ => bad(format!("setldetail entry without fund_payamt: {d:?}")),
                }
            }
            if detail_sum != amt("fund_pay_sumamt") + amt("hosp_part_amt") {
                bad(format!(
                    "setldetail sums to {detail_sum} fen, fund_pay_sumamt + hosp_part_amt = {} fen",
                    amt("fund_pay_sumamt") + amt("hosp_part_amt")
                ));
            }

            // explanation: one entry per layer of the policy, in order.
            let Some(expl) = j.get("explanation").and_then(J::arr) else {
                bad("no explanation array".into());
                continue;
            };
            if expl.len() != layers.len() {
                bad(format!("{} explanation entries for {} layers", expl.len(), layers.len()));
            }
            let mut paid = 0;
            for (e, layer) in expl.iter().zip(&layers) {
                if e.get("layer").and_then(J::str) != Some(layer.as_str()) {
                    bad(format!("explanation entry {:?} where layer {layer} was expected", e.get("layer")));
                }
                for key in ["base", "deductible", "amount"] {
                    if e.get(key).and_then(J::num).is_none() {
                        bad(format!("explanation of {layer} without amount {key}"));
                    }
                }
                for key in ["ratio", "cap"] {
                    if !matches!(e.get(key), Some(J::Str(_) | J::Null)) {
                        bad(format!("explanation of {layer}: {key} = {:?}", e.get(key)));
                    }
                }
                if e.get("segments").and_then(J::arr).is_none() {
                    bad(format!("explanation of {layer} without a segments array"));
                }
                if e.get("text").and_then(J::str).is_none_or(|t| t.trim().is_empty()) {
                    bad(format!("explanation of {layer} without text"));
                }
                if let Some(Ok(a)) = e.get("amount").and_then(J::num).map(fen_out) {
                    paid += a;
                }
            }
            if paid != amt("fund_pay_sumamt") + amt("hosp_part_amt") {
                bad(format!(
                    "the explanation's amounts add up to {paid} fen, the funds paid {} fen",
                    amt("fund_pay_sumamt") + amt("hosp_part_amt")
                ));
            }
        }
    }
    problems.truncate(60);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ───────────────────────────── stdout, identities ─────────────────────────────

#[test]
fn without_out_the_csv_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let claims = fixture(policy, "claims.csv");
        let r = run_in(Some(dir.path()), &["settle", "--policy", policy, "--claims", path_str(&claims)]);
        assert!(r.ok(), "{}", r.describe());
        assert_eq!(
            r.stdout,
            std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap(),
            "{policy}: stdout is exactly the CSV (the summary goes to stderr)"
        );
        assert!(!r.stderr.is_empty(), "a summary on stderr");
        assert!(dir_listing(dir.path()).is_empty(), "no file written");
    }
}

#[test]
fn without_out_a_failed_run_prints_no_partial_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad, _) = invalid_rows().remove(0);
    let claims = claims_file(dir.path(), &[good_row("B2"), good_row("B3"), bad]);
    let r = settle("gansu-huining-2018", &claims, None, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert_eq!(r.stdout, "", "nothing on stdout");
    assert!(r.stderr.contains("第 4 行"), "{}", r.stderr);
}

const ID_NAMES: [(&str, &str); 8] = [
    ("registered_poor", "建档立卡"),
    ("exited_poor", "已脱贫"),
    ("marginal", "边缘户"),
    ("dibao", "低保"),
    ("extreme_poor", "特困供养"),
    ("safety_net", "农村兜底保障户"),
    ("disabled", "残疾人"),
    ("illness_poor", "因病致贫返贫"),
];

/// The claims text with every identity written as its id (`chinese = false`) or Chinese name.
fn with_identity_names(text: &str, chinese: bool) -> String {
    let (h, rows) = read_csv(text);
    let k = h.iter().position(|c| c == "identities").unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&h).unwrap();
    for mut r in rows {
        let parts: Vec<String> = r[k]
            .split(';')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let p = p.trim();
                let (id, zh) =
                    ID_NAMES.iter().find(|(id, zh)| *id == p || *zh == p).unwrap_or_else(|| panic!("identity {p} known to the test"));
                if chinese { zh } else { id }.to_string()
            })
            .collect();
        r[k] = parts.join(";");
        w.write_record(&r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn chinese_identity_names_give_the_same_results_as_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let text = std::fs::read_to_string(fixture(policy, "claims.csv")).unwrap();
        let expected = std::fs::read_to_string(fixture(policy, "expected.csv")).unwrap();
        let zh = with_identity_names(&text, true);
        let ids = with_identity_names(&text, false);
        assert!(zh.contains("建档立卡") && zh.contains("低保"), "{policy}: the Chinese names are used");
        assert!(!ids.contains("建档立卡") && !ids.contains("低保"), "{policy}: only ids");
        for (label, t) in [("Chinese names", zh), ("ids", ids)] {
            let claims = write(dir.path(), "claims.csv", &t);
            let out = settle_ok(policy, &claims, dir.path(), &[]);
            assert_eq!(out, expected, "{policy} with {label}");
        }
    }
}

// ───────────────────────────── malformed files (known bugs) ─────────────────────────────

#[test]
fn a_row_with_fewer_fields_than_the_header_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = "claim_id,psn_no,setl_date,hosp_lv,in_county,med_type,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt,identities\n\
                X1,P1,2018-03-12,2,1,21,14235.79,1234.56,100.01,555.55,12345.67,registered_poor\n\
                X2,P2,2018-03-12,2,1,21,14235.79,1234.56,100.01,555.55,12345.67\n";
    let claims = write(dir.path(), "claims.csv", text);
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 3 行"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn a_row_with_more_fields_than_the_header_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let claims = claims_file(dir.path(), &[good_row("X2"), format!("{},extra", good_row("X3"))]);
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &claims, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 3 行"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn line_numbers_are_right_in_a_file_with_crlf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad, _) = invalid_rows().remove(0);
    let text = format!("{CLAIMS_HEADER}\r\n{}\r\n{}\r\n{bad}\r\n", good_row("B2"), good_row("B3"));
    let claims = write(dir.path(), "claims.csv", &text);
    let r = settle("gansu-huining-2018", &claims, None, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 4 行"), "{}", r.stderr);
}

#[test]
fn line_numbers_count_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad, _) = invalid_rows().remove(0);
    let text = format!("{CLAIMS_HEADER}\n{}\n\n{bad}\n", good_row("B2"));
    let claims = write(dir.path(), "claims.csv", &text);
    let r = settle("gansu-huining-2018", &claims, None, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 4 行"), "{}", r.stderr);
}

#[test]
fn line_numbers_count_lines_inside_quoted_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bad, _) = invalid_rows().remove(0);
    // Line 2–3: one record whose psn_no holds a line break; the bad row is on line 4.
    let text = format!("{CLAIMS_HEADER}\nB2,\"P\nB2\",,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00\n{bad}\n");
    let claims = write(dir.path(), "claims.csv", &text);
    let r = settle("gansu-huining-2018", &claims, None, &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("第 4 行"), "{}", r.stderr);
}

#[test]
fn an_empty_claims_file_is_an_error_and_a_header_only_file_settles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.csv", "");
    let out = dir.path().join("out.csv");
    let r = settle("gansu-huining-2018", &empty, Some(&out), &[]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(!out.exists());

    let header_only = claims_file(dir.path(), &[]);
    let out = settle_ok("gansu-huining-2018", &header_only, dir.path(), &[]);
    assert_eq!(out, format!("{}\n", OUTPUT_COLUMNS.join(",")));
}

#[test]
fn settling_the_same_file_twice_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        let claims = fixture(policy, "claims.csv");
        for fmt in ["csv", "jsonl"] {
            let a = settle_ok(policy, &claims, dir.path(), &["--format", fmt]);
            let b = settle_ok(policy, &claims, dir.path(), &["--format", fmt]);
            assert_eq!(a, b, "{policy} {fmt}");
        }
    }
}
