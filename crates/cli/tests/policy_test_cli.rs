//! `baozhang policy test`: a policy's hand-computed cases (`policies/tests/<id>.toml`) run through the
//! real binary — shipped ids from any working directory, a bureau's own policy file with its cases beside
//! it, a case one fen off, and files that cannot be read or are not case files.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_baozhang");

const POLICIES: [&str; 4] = ["gansu-huining-2018", "ningxia-zhongwei-2018", "yunnan-2020", "neimenggu-2020"];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!("exit {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}", self.code, self.stderr, self.stdout)
    }
}

/// Runs the binary in `dir` (a directory with no policies in it, unless a test puts them there).
fn baozhang(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN).args(args).current_dir(dir).output().expect("the baozhang binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cases_text(policy: &str) -> String {
    std::fs::read_to_string(repo().join("policies/tests").join(format!("{policy}.toml"))).unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Number of `[[cases]]` in a case file.
fn count_cases(text: &str) -> usize {
    text.lines().filter(|l| l.trim() == "[[cases]]").count()
}

#[test]
fn a_shipped_policy_passes_its_shipped_cases_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = baozhang(dir.path(), &["policy", "test", "gansu-huining-2018"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let n = count_cases(&cases_text("gansu-huining-2018"));
    assert!(n >= 40, "the Gansu cases: {n}");
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("✓ ")).count(), n, "one ✓ line per case: {}", r.describe());
    assert!(!r.stdout.contains('✗'));
    assert!(r.stdout.contains(&format!("全部通过：{n} 个案例")), "{}", r.describe());
    // Each case is shown with its reason.
    assert!(r.stdout.contains("✓ G04  half-away-from-zero rounding in the basic layer"), "{}", r.describe());
}

#[test]
fn every_shipped_policy_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    for p in POLICIES {
        let r = baozhang(dir.path(), &["policy", "test", p]);
        assert_eq!(r.code, Some(0), "{p}: {}", r.describe());
    }
}

#[test]
fn one_expected_value_one_fen_off_fails_naming_the_case_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = cases_text("gansu-huining-2018");
    // G04: 70 % × 1000.15 = 700.105 → 700.11; the edited file says 700.12.
    let at = text.find("id = \"G04\"").expect("case G04");
    let field = at + text[at..].find("hifp_pay = \"700.11\"").expect("G04's basic payment");
    let edited = format!("{}hifp_pay = \"700.12\"{}", &text[..field], &text[field + "hifp_pay = \"700.11\"".len()..]);
    let cases = dir.path().join("edited.toml");
    std::fs::write(&cases, &edited).unwrap();

    let r = baozhang(dir.path(), &["policy", "test", "gansu-huining-2018", "--cases", path_str(&cases)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let failed: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("✗ ")).collect();
    assert_eq!(failed.len(), 1, "{}", r.describe());
    let line = edited[..at].lines().count(); // the `[[cases]]` line just above `id = "G04"`
    assert!(
        failed[0].starts_with("✗ G04  half-away-from-zero rounding") && failed[0].contains(&format!("第 {line} 行")),
        "{}",
        r.describe()
    );
    assert!(r.stdout.contains("    hifp_pay：应为 700.12，实际 700.11（差 -0.01）"), "{}", r.describe());
    // fund_390100 is the same payment and was not edited: only the one field is reported.
    assert!(!r.stdout.contains("fund_390100："), "{}", r.describe());
    assert!(r.stdout.contains("未通过：44 个案例中 1 个（G04）"), "{}", r.describe());
}

#[test]
fn a_bureaus_policy_file_finds_its_cases_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("本县政策.toml");
    std::fs::copy(repo().join("policies/gansu-huining-2018.toml"), &policy).unwrap();

    // No tests/ beside it: an I/O error naming where the cases were looked for.
    let r = baozhang(dir.path(), &["policy", "test", path_str(&policy)]);
    assert_eq!(r.code, Some(3), "{}", r.describe());
    assert!(r.stderr.contains("tests/gansu-huining-2018.toml") && r.stderr.contains("--cases"), "{}", r.describe());

    // tests/<policy id>.toml beside the file.
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/gansu-huining-2018.toml"), cases_text("gansu-huining-2018")).unwrap();
    let r = baozhang(dir.path(), &["policy", "test", path_str(&policy)]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    // Relative to the working directory, too.
    let r = baozhang(dir.path(), &["policy", "test", "本县政策.toml"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());

    // The repository's own layout: policies/<id>.toml and policies/tests/<id>.toml.
    let r = baozhang(dir.path(), &["policy", "test", path_str(&repo().join("policies/ningxia-zhongwei-2018.toml"))]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
}

#[test]
fn the_bureau_changes_a_value_and_the_cases_show_what_moved() {
    // A bureau lowers Gansu's level-1 deductible from 150 to 100: the cases at that level fail, each
    // naming the fields that moved, and the run exits 1.
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("policies/gansu-huining-2018.toml")).unwrap();
    let changed = src.replacen("deductible_by_level.1 = { value = 150,", "deductible_by_level.1 = { value = 100,", 1);
    assert_ne!(changed, src, "the level-1 deductible is in the policy");
    let policy = dir.path().join("changed.toml");
    std::fs::write(&policy, changed).unwrap();
    let cases = repo().join("policies/tests/gansu-huining-2018.toml");
    let r = baozhang(dir.path(), &["policy", "test", path_str(&policy), "--cases", path_str(&cases)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stdout.contains("✗ G01  ") && r.stdout.contains("    act_pay_dedc：应为 150.00，实际 100.00"), "{}", r.describe());
    assert!(r.stdout.contains("✓ G04  "), "a level-2 case still passes: {}", r.describe());
}

#[test]
fn files_that_cannot_be_read_or_are_not_case_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = baozhang(dir.path(), &["policy", "test", "no-such-policy.toml"]);
    assert_eq!(r.code, Some(3), "{}", r.describe());
    assert!(r.stderr.contains("no-such-policy.toml"), "{}", r.describe());

    let r = baozhang(dir.path(), &["policy", "test", "gansu-huining-2018", "--cases", "missing.toml"]);
    assert_eq!(r.code, Some(3), "{}", r.describe());
    assert!(r.stderr.contains("missing.toml"), "{}", r.describe());

    // An amount written as a float, and cases of another policy.
    let text = cases_text("gansu-huining-2018").replacen("medfee_sumamt = \"175.50\"", "medfee_sumamt = 175.5", 1);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, &text).unwrap();
    let r = baozhang(dir.path(), &["policy", "test", "gansu-huining-2018", "--cases", path_str(&bad)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("案例 G01：medfee_sumamt：带小数的金额请写成字符串"), "{}", r.describe());
    assert!(r.stdout.is_empty(), "nothing is settled from an invalid file: {}", r.describe());

    let cases = repo().join("policies/tests/yunnan-2020.toml");
    let r = baozhang(dir.path(), &["policy", "test", "gansu-huining-2018", "--cases", path_str(&cases)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("yunnan-2020") && r.stderr.contains("gansu-huining-2018"), "{}", r.describe());
}
