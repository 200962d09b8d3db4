//! `baozhang policy check | show | list` end to end: the real binary on real and broken policy files.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_baozhang");

const POLICIES: [&str; 8] = [
    "gansu-huining-2018",
    "ningxia-zhongwei-2018",
    "yunnan-2020",
    "neimenggu-2020",
    "gansu-huining-2024",
    "ningxia-zhongwei-2024",
    "yunnan-2024",
    "neimenggu-2024",
];

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

fn baozhang(args: &[&str]) -> Run {
    let out = Command::new(BIN).args(args).output().expect("the baozhang binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// The 16-hex-digit version `policy check` prints for `name_or_path` (which must pass).
fn checked_version(name_or_path: &str) -> String {
    let r = baozhang(&["policy", "check", name_or_path]);
    assert_eq!(r.code, Some(0), "{name_or_path}: {}", r.describe());
    version_in(&r.stdout).unwrap_or_else(|| panic!("no version in {}", r.stdout))
}

fn version_in(text: &str) -> Option<String> {
    let v: String = text.split("版本").nth(1)?.trim_start_matches([' ', ':', '：']).chars().take_while(char::is_ascii_hexdigit).collect();
    (v.len() == 16).then_some(v)
}

/// "第 N 行" → N, for one line of a report.
fn line_number(msg: &str) -> Option<usize> {
    let rest = msg.split("第 ").nth(1)?;
    rest.split(" 行").next()?.trim().parse().ok()
}

/// 1-based line of the first line of `text` equal (trimmed) to `line`, after line `after`.
fn line_of(text: &str, line: &str, after: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, l)| l.trim() == line)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("“{line}” not in the text after line {after}"))
}

// ───────────────────────────── check ─────────────────────────────

#[test]
fn policy_check_passes_on_every_shipped_policy_file_and_prints_its_version() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(policies_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), POLICIES.len(), "{files:?}");
    for f in &files {
        let r = baozhang(&["policy", "check", path_str(f)]);
        assert_eq!(r.code, Some(0), "{}: {}", f.display(), r.describe());
        assert!(r.stderr.is_empty(), "{}: {}", f.display(), r.stderr);
        let v = version_in(&r.stdout).unwrap_or_else(|| panic!("{}: no 16-digit version in {}", f.display(), r.stdout));
        // The file on disk is the policy shipped under its name.
        let name = f.file_stem().unwrap().to_str().unwrap();
        assert!(POLICIES.contains(&name), "{name}");
        assert_eq!(v, checked_version(name), "{name}: file and shipped copy");
    }
    // All at once, too.
    let mut args = vec!["policy", "check"];
    args.extend(files.iter().map(|f| path_str(f)));
    let r = baozhang(&args);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(r.stdout.lines().count(), POLICIES.len(), "{}", r.stdout);
}

/// A policy with many problems at once, each in its own layer so that the line numbers can be
/// checked: (what, layer index, layer id, any of these in the message).
const BAD_POLICY: &str = r#"# A policy with many problems at once.
[policy]
id = "broken"
name = "有问题的政策"
region_code = "620422"
year = 2018
effective_from = "2018-01-01"

[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"
when = { identities = ["martian"] }

[[layers.branches]]
name = "住院"
ratio = "80%"

[[layers]]
id = "critical"
name = "大病保险"
fund = "390200"
kind = "ratio"
base = "compliant_remainder"
accumulation = "annual"

[[layers.branches]]
name = "分段"
deductible = 5000
segments = [
  { to = 50000, ratio = "50%" },
  { to = 40000, ratio = "60%" },
  { ratio = "70%" },
]

[[layers]]
id = "generous"
name = "过于慷慨"
fund = "390100"
kind = "ratio"
base = "compliant_remainder"

[[layers.branches]]
name = "全部"
ratio = "120%"

[[layers]]
id = "mystery_fund"
name = "未知基金"
fund = "123456"
kind = "ratio"
base = "compliant_remainder"

[[layers.branches]]
ratio = "50%"

[[layers]]
id = "topup"
name = "补足"
fund = "620100"
kind = "floor_topup"
ratio = "85%"
reference = "compliant"
counted_layers = ["basic", "no_such_layer"]
limit = "compliant_remainder"

[[layers]]
id = "cap"
name = "封顶"
kind = "ceiling"
ratio = "90%"
reference = "total"
clawback = ["basic", "afterwards"]

[[layers]]
id = "afterwards"
name = "后来的层"
fund = "610100"
kind = "magic"

[[layers]]
id = "nonsense_base"
name = "基数无效"
fund = "610100"
kind = "ratio"
base = "nonsense"

[[layers.branches]]
ratio = "50%"
"#;

struct Expected {
    what: &'static str,
    layer: usize,
    id: &'static str,
    any_of: &'static [&'static str],
}

const BAD_POLICY_PROBLEMS: [Expected; 8] = [
    Expected { what: "an unknown identity", layer: 0, id: "basic", any_of: &["martian"] },
    Expected { what: "overlapping segments", layer: 1, id: "critical", any_of: &["40,000", "40000"] },
    Expected { what: "a ratio above 100 %", layer: 2, id: "generous", any_of: &["120%"] },
    Expected { what: "an unknown fund code", layer: 3, id: "mystery_fund", any_of: &["123456"] },
    Expected { what: "counted_layers naming a missing layer", layer: 4, id: "topup", any_of: &["no_such_layer"] },
    Expected { what: "a ceiling clawing back from a later layer", layer: 5, id: "cap", any_of: &["afterwards"] },
    Expected { what: "an unknown layer kind", layer: 6, id: "afterwards", any_of: &["magic"] },
    Expected { what: "an unknown base", layer: 7, id: "nonsense_base", any_of: &["nonsense"] },
];

/// Lines of the report that name layer `i`.
fn report_lines_for(report: &str, i: usize) -> Vec<&str> {
    let tag = format!("layers[{i}]");
    report.lines().filter(|l| l.contains(&tag)).collect()
}

#[test]
fn a_policy_with_many_problems_lists_every_one_with_its_place_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.toml", BAD_POLICY);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(!r.stdout.contains('✓'), "{}", r.describe());

    // Where each layer starts and ends in the file.
    let mut starts = Vec::new();
    let mut after = 0;
    for _ in 0..BAD_POLICY_PROBLEMS.len() {
        let l = line_of(BAD_POLICY, "[[layers]]", after);
        starts.push(l);
        after = l;
    }
    let end_of = |i: usize| starts.get(i + 1).copied().unwrap_or(BAD_POLICY.lines().count() + 1);

    let mut missing = Vec::new();
    for p in &BAD_POLICY_PROBLEMS {
        let candidates = report_lines_for(&r.stderr, p.layer);
        let hit = candidates.iter().find(|l| {
            p.any_of.iter().any(|n| l.contains(n))
                && l.contains(p.id)
                && line_number(l).is_some_and(|n| (starts[p.layer]..end_of(p.layer)).contains(&n))
        });
        if hit.is_none() {
            missing.push(format!(
                "{} — expected a line naming layers[{}] ({}) with a line number in {}..{} and one of {:?}; lines for that layer: {:#?}",
                p.what,
                p.layer,
                p.id,
                starts[p.layer],
                end_of(p.layer),
                p.any_of,
                candidates
            ));
        }
    }
    assert!(missing.is_empty(), "{}\n\nthe whole report:\n{}", missing.join("\n"), r.stderr);
}

#[test]
fn each_problem_in_a_policy_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.toml", BAD_POLICY);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("layers[")).collect();
    let mut seen = std::collections::BTreeSet::new();
    let dups: Vec<&&str> = lines.iter().filter(|l| !seen.insert(**l)).collect();
    assert!(dups.is_empty(), "reported more than once: {dups:#?}");
}

fn gansu_text() -> String {
    std::fs::read_to_string(policies_dir().join("gansu-huining-2018.toml")).unwrap()
}

/// `text` with `new_line` inserted after the first line that starts with `after_prefix`; returns
/// the new text and the 1-based line number of the inserted line.
fn insert_after(text: &str, after_prefix: &str, new_line: &str) -> (String, usize) {
    let mut out = Vec::new();
    let mut at = None;
    for l in text.lines() {
        out.push(l.to_string());
        if at.is_none() && l.starts_with(after_prefix) {
            out.push(new_line.to_string());
            at = Some(out.len());
        }
    }
    (out.join("\n") + "\n", at.unwrap_or_else(|| panic!("no line starts with {after_prefix}")))
}

#[test]
fn an_unknown_key_is_rejected_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let (text, line) = insert_after(&gansu_text(), "counted_layers", r#"ratoi = "50%""#);
    let file = write(dir.path(), "typo.toml", &text);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("ratoi"), "{}", r.stderr);
    let reported: Vec<usize> = r.stderr.lines().filter_map(line_number).collect();
    assert!(reported.contains(&line), "line {line} expected among {reported:?}:\n{}", r.stderr);
}

#[test]
fn an_unknown_key_in_a_branch_is_rejected_too() {
    let dir = tempfile::tempdir().unwrap();
    let (text, line) = insert_after(&gansu_text(), "ratio_by_level", "deductable = 100");
    let file = write(dir.path(), "typo.toml", &text);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains("deductable"), "{}", r.stderr);
    assert!(r.stderr.lines().filter_map(line_number).any(|n| n == line), "line {line}:\n{}", r.stderr);
}

#[test]
fn a_money_value_written_as_a_float_is_rejected_asking_for_a_string() {
    let dir = tempfile::tempdir().unwrap();
    let text = gansu_text();
    // The value is written with its mark ({ value = …, mark = "I" }); a float is refused there as anywhere.
    assert!(text.contains("annual_cap = { value = 150000,"));
    let text = text.replacen("annual_cap = { value = 150000,", "annual_cap = { value = 1500.5,", 1);
    let file = write(dir.path(), "float.toml", &text);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let line = r.stderr.lines().find(|l| l.contains("annual_cap")).unwrap_or_else(|| panic!("annual_cap named:\n{}", r.stderr));
    assert!(line.contains("字符串"), "asks for a string: {line}");
    assert!(line.contains("layers[0]"), "names the layer: {line}");
    // The line number points into the first layer (from its header to the next one).
    let first = line_of(&text, "[[layers]]", 0);
    let second = line_of(&text, "[[layers]]", first);
    assert!(line_number(line).is_some_and(|n| (first..second).contains(&n)), "line in {first}..{second}: {line}");
}

// ───────────────────────────── show, list ─────────────────────────────

#[test]
fn policy_show_prints_the_layers_in_chinese_with_grouped_amounts_and_percentages() {
    let r = baozhang(&["policy", "show", "gansu-huining-2018"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    for s in ["基本医保", "大病保险", "医疗救助", "医院承担", "390100", "2,000.00", "150,000.00", "3,000.00", "85%", "80%", "620422"]
    {
        assert!(r.stdout.contains(s), "“{s}” in:\n{}", r.stdout);
    }
    assert_eq!(version_in(&r.stdout), Some(checked_version("gansu-huining-2018")), "shows the version");
}

#[test]
fn policy_show_works_for_every_shipped_policy_and_for_a_file() {
    for p in POLICIES {
        let r = baozhang(&["policy", "show", p]);
        assert_eq!(r.code, Some(0), "{p}: {}", r.describe());
        assert!(r.stdout.contains(p), "{p}");
    }
    let file = policies_dir().join("yunnan-2020.toml");
    let by_file = baozhang(&["policy", "show", path_str(&file)]);
    let by_name = baozhang(&["policy", "show", "yunnan-2020"]);
    assert_eq!(by_file.code, Some(0), "{}", by_file.describe());
    assert_eq!(by_file.stdout, by_name.stdout);
}

#[test]
fn policy_show_of_an_unknown_name_fails_with_a_chinese_message() {
    let r = baozhang(&["policy", "show", "atlantis-1999"]);
    assert_ne!(r.code, Some(0), "{}", r.describe());
    assert!(r.stdout.is_empty(), "{}", r.describe());
    assert!(r.stderr.contains("atlantis-1999"), "{}", r.stderr);
    assert!(r.stderr.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "a Chinese message: {}", r.stderr);
    // It also tells which policies exist.
    assert!(r.stderr.contains("gansu-huining-2018"), "{}", r.stderr);
}

#[test]
fn policy_list_names_the_shipped_policies_with_their_versions() {
    let r = baozhang(&["policy", "list"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    for p in POLICIES {
        let line = r.stdout.lines().find(|l| l.starts_with(p)).unwrap_or_else(|| panic!("{p} listed:\n{}", r.stdout));
        assert_eq!(version_in(line), Some(checked_version(p)), "{line}");
    }
}

// ───────────────────────────── version ─────────────────────────────

#[test]
fn the_version_is_a_hash_of_the_content_not_of_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let original = gansu_text();
    let v0 = checked_version(path_str(&write(dir.path(), "original.toml", &original)));

    // Comments, blank lines and spacing do not change the version.
    let mut relaid = String::from("# 重新排版的副本\n\n");
    for l in original.lines() {
        relaid.push_str(l);
        if l.starts_with("kind") {
            relaid.push_str("    # 层类型");
        }
        relaid.push('\n');
        if l.starts_with('[') {
            relaid.push_str("# 注释\n\n");
        }
    }
    relaid.push_str("\n\n# 结束\n");
    assert_ne!(relaid, original);
    let v1 = checked_version(path_str(&write(dir.path(), "relaid.toml", &relaid)));
    assert_eq!(v0, v1, "comments and blank lines keep the version");

    // One value changed: a new version.
    assert!(original.contains("amount = { value = 3000,"));
    let changed = original.replacen("amount = { value = 3000,", "amount = { value = 3001,", 1);
    let v2 = checked_version(path_str(&write(dir.path(), "changed.toml", &changed)));
    assert_ne!(v0, v2, "a changed value changes the version");

    let changed_ratio = original.replacen(r#"ratio = { value = "85%""#, r#"ratio = { value = "86%""#, 1);
    assert_ne!(changed_ratio, original);
    let v3 = checked_version(path_str(&write(dir.path(), "ratio.toml", &changed_ratio)));
    assert_ne!(v0, v3, "a changed ratio changes the version");
    assert_ne!(v2, v3);
}

// ───────────────────────────── sources as data (issue 16) ─────────────────────────────

/// `text` with every value written `{ value = X, mark = …, … }` written plain, `X`.
fn without_marks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{ value = ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "{ value = ".len()..];
        let end = after.find('}').expect("the value's table closes");
        let value = after[..end].split(',').next().unwrap().trim();
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn marks_sources_and_quotes_leave_the_version_alone() {
    let dir = tempfile::tempdir().unwrap();
    for p in POLICIES {
        let text = std::fs::read_to_string(policies_dir().join(format!("{p}.toml"))).unwrap();
        let plain = without_marks(&text);
        assert!(!plain.contains(", mark = \"") && !plain.contains("quote = \""), "{p}: every mark removed");
        let v = checked_version(path_str(&write(dir.path(), &format!("{p}-plain.toml"), &plain)));
        assert_eq!(v, checked_version(p), "{p}: the same values written plain have the same version");
    }
}

#[test]
fn policy_check_verifies_each_quote_against_its_source_text() {
    // The shipped files beside their sources: every quote found, no warning (stderr empty, see above).
    let r = baozhang(&["policy", "check", path_str(&policies_dir().join("gansu-huining-2018.toml"))]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.stdout.contains("引文 6 处已与原文核对"), "{}", r.describe());

    // A copy with its sources: a quote that is not in the text fails, naming the value and its line.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sources")).unwrap();
    std::fs::copy(policies_dir().join("sources/huining-pioneer-2018.txt"), dir.path().join("sources/huining-pioneer-2018.txt")).unwrap();
    let text = gansu_text();
    let wrong = text.replacen("quote = \"个人自负合规费用年累计超过3000元", "quote = \"个人自负合规费用年累计超过2000元", 1);
    assert_ne!(wrong, text);
    let file = write(dir.path(), "wrong-quote.toml", &wrong);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let line = r.stderr.lines().find(|l| l.contains("引文不在来源“")).unwrap_or_else(|| panic!("{}", r.describe()));
    assert!(line.contains("layers[3] (assistance)") && line.contains("医疗救助·个人负担封顶金额"), "names the value: {line}");
    assert!(line.contains("huining-pioneer-2018") && line.contains("超过2000元"), "names the source and the quote: {line}");
    let assistance = line_of(&wrong, "id = \"assistance\"", 0);
    assert!(line_number(line).is_some_and(|n| n + 1 == assistance), "the layer's line ({}): {line}", assistance - 1);

    // Whitespace does not matter: the seed's "超过 5000 元" is quoted as "超过5000元" too.
    let spaced = text.replacen("超过 5000 元的部分纳入大病保险\" }", "超过5000元的部分纳入大病保险\" }", 1);
    assert_ne!(spaced, text);
    let r = baozhang(&["policy", "check", path_str(&write(dir.path(), "spaced.toml", &spaced))]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.stderr.is_empty(), "{}", r.describe());

    // Without the source's text the quotes are not checked: a warning, not an error.
    let alone = tempfile::tempdir().unwrap();
    let file = write(alone.path(), "gansu.toml", &text);
    let r = baozhang(&["policy", "check", path_str(&file)]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.stdout.contains("版本 0a722ad43ec3a05d"), "{}", r.describe());
    assert!(r.stderr.contains("⚠") && r.stderr.contains("huining-pioneer-2018") && r.stderr.contains("6 处引文未核对"), "{}", r.describe());
}

#[test]
fn a_value_with_a_bad_mark_or_source_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let text = gansu_text();
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            "no mark",
            "annual_cap = { value = 300000, mark = \"I\" }",
            "annual_cap = { value = 300000 }",
            &["layers[1] (critical) → annual_cap", "缺少 mark"],
        ),
        (
            "unknown mark",
            "annual_cap = { value = 300000, mark = \"I\" }",
            "annual_cap = { value = 300000, mark = \"X\" }",
            &["layers[1]", "mark = “X” 无效"],
        ),
        (
            "S without a source",
            "ratio = { value = \"60%\", mark = \"I\" }",
            "ratio = { value = \"60%\", mark = \"S\" }",
            &["branches[1] (门诊慢特病) → ratio", "须用 source", "huining-pioneer-2018"],
        ),
        (
            "an unknown source",
            "source = \"huining-pioneer-2018\", quote = \"建档立卡贫困人口合规",
            "source = \"huining-2019\", quote = \"建档立卡贫困人口合规",
            &["layers[2] (insurer_topup) → ratio", "huining-2019", "不是本政策"],
        ),
        (
            "a quote on an illustrative value",
            "deductible = { value = 0, mark = \"I\" }",
            "deductible = { value = 0, mark = \"I\", quote = \"不设起付线\" }",
            &["branches[1] (门诊慢特病) → deductible", "示意值"],
        ),
    ];
    for (what, old, new, needles) in cases {
        assert!(text.contains(old), "{what}: {old}");
        let file = write(dir.path(), "bad.toml", &text.replacen(old, new, 1));
        let r = baozhang(&["policy", "check", path_str(&file)]);
        assert_eq!(r.code, Some(1), "{what}: {}", r.describe());
        let line = r.stderr.lines().find(|l| needles.iter().all(|n| l.contains(n)));
        assert!(line.is_some_and(|l| line_number(l).is_some()), "{what}: a line with {needles:?} and its line number:\n{}", r.stderr);
    }
}

#[test]
fn policy_show_gives_each_value_its_mark_and_basis_and_flags_the_illustrative_ones() {
    let r = baozhang(&["policy", "show", "gansu-huining-2018"]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let out = &r.stdout;
    assert!(out.contains("来源 [S] huining-pioneer-2018：会宁县健康扶贫先锋行动实施意见（2018）"), "{out}");
    assert!(out.contains("数值来源"), "{out}");
    let line = |needle: &str| out.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("“{needle}” in:\n{out}"));
    let s = line("大病保险·分段递增·起付线（建档立卡贫困人口");
    assert!(
        s.contains("[S]")
            && s.contains("2,000.00")
            && s.contains("依据：会宁县健康扶贫先锋行动实施意见（2018）")
            && s.contains("降低至2000元”"),
        "{s}"
    );
    let i = line("基本医保·住院·起付线（2级）");
    assert!(i.contains("[I]") && i.contains("500.00") && i.contains("示意值"), "{i}");
    assert!(out.contains("其中 16 个为示意值"), "{out}");
    // A P value names its guide.
    let r = baozhang(&["policy", "show", "neimenggu-2020"]);
    let p = r.stdout.lines().find(|l| l.contains("大病保险·普通居民·起付线")).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(p.contains("[P]") && p.contains("14,000.00") && p.contains("依据：乌兰察布市中心医院城乡居民医保患者就医指南（公开）"), "{p}");
}
