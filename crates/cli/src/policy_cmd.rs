use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use baozhang_core::policy::{check_quotes, describe, parse_policy, Mark, Policy};
use baozhang_core::reference::{reference_names, reference_source, reference_source_text, reference_tests};
use baozhang_ingest::policy_tests::{parse_case_file, run as run_cases, Outcome};

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// 检查政策文件，列出全部问题及位置；核对每个数值的引文是否出现在来源原文（sources/<来源 id>.txt）中
    /// (Validate policy files, every problem with its place; check each value's quote against its source's text)
    Check {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// 以表格显示政策各层（Show the layers as a readable table）
    Show { name: String },
    /// 列出内置政策（List the shipped reference policies）
    List,
    /// 运行政策旁的手工计算案例（Run the hand-computed cases beside a policy: policies/tests/<id>.toml）
    Test {
        /// 政策：内置名称或 TOML 文件路径（a shipped policy id or a path）
        file: String,
        /// 案例文件；默认为政策文件旁的 tests/<政策标识>.toml，内置政策用内置案例
        /// (the case file; default: tests/<policy id>.toml beside the policy file, the shipped cases for a shipped id)
        #[arg(long)]
        cases: Option<PathBuf>,
    },
    /// 比较两项政策：按原政策与新政策重算同一批理赔，列出基金、身份、乡镇、贫困人口报销比例与受影响人员的变化
    /// (Weigh a new policy: settle the same claims under both and show what changes)
    Compare(crate::compare_cmd::CompareArgs),
}

/// A shipped policy by id, or a TOML file by path.
pub fn load_policy(name_or_path: &str) -> Result<Policy, String> {
    let (label, src) = match reference_source(name_or_path) {
        Some(s) => (name_or_path.to_string(), s.to_string()),
        None => {
            let p = Path::new(name_or_path);
            if !p.exists() {
                return Err(format!("找不到政策“{name_or_path}”：既不是内置政策（{}），也不是文件", reference_names().join(", ")));
            }
            let s = std::fs::read_to_string(p).map_err(|e| format!("无法读取政策文件 {name_or_path}：{e}"))?;
            (name_or_path.to_string(), s)
        }
    };
    parse_policy(&src).map_err(|e| format!("{label}：{e}"))
}

/// A policy by id or path, or — for a region code — the shipped policy in force there on `date`.
pub fn load_policy_for(name: &str, date: baozhang_core::Date) -> Result<Policy, String> {
    if name.is_empty() || name.len() > 12 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return load_policy(name);
    }
    let all: Vec<Policy> = reference_names().iter().filter_map(|n| load_policy(n).ok()).collect();
    baozhang_core::policy::choose(&all, name, date)
        .cloned()
        .ok_or_else(|| format!("区划 {name} 在 {date} 没有生效的内置政策（内置：{}）", reference_names().join(", ")))
}

pub fn run(cmd: PolicyCmd) -> ExitCode {
    match cmd {
        PolicyCmd::Check { files } => {
            let mut bad = 0;
            for f in &files {
                match load_policy(f) {
                    Ok(p) => {
                        let shipped = reference_source(f).is_some();
                        let dir = Path::new(f).parent().unwrap_or(Path::new("")).join("sources");
                        let report = check_quotes(&p, |id| {
                            if shipped {
                                reference_source_text(id).map(str::to_string)
                            } else {
                                std::fs::read_to_string(dir.join(format!("{id}.txt"))).ok()
                            }
                        });
                        // A quote that cannot be checked (its source has no text file) is a warning: a bureau's
                        // own policy may cite a document it has not typed in. A quote not in its text is an error.
                        for (id, title, n) in &report.missing_texts {
                            let where_ =
                                if shipped { format!("内置来源 {id}") } else { dir.join(format!("{id}.txt")).display().to_string() };
                            eprintln!("⚠ {f}：来源“{id}”（{title}）没有原文（{where_}），其 {n} 处引文未核对");
                        }
                        if report.problems.is_empty() {
                            // The version stays last on the line: scripts read it from there.
                            let quotes = if report.checked > 0 {
                                format!("引文 {} 处已与原文核对，", report.checked)
                            } else {
                                String::new()
                            };
                            println!("✓ {f}：{}（{}），{} 层，{quotes}版本 {}", p.meta.name, p.meta.id, p.layers.len(), p.version);
                        } else {
                            bad += 1;
                            eprintln!("✗ {f}：有 {} 处引文不在来源原文中：", report.problems.len());
                            for pr in &report.problems {
                                eprintln!("  - {pr}");
                            }
                        }
                    }
                    Err(e) => {
                        bad += 1;
                        eprintln!("✗ {e}");
                    }
                }
            }
            if bad > 0 {
                ExitCode::from(crate::EXIT_INVALID)
            } else {
                ExitCode::SUCCESS
            }
        }
        PolicyCmd::Show { name } => match load_policy(&name) {
            Ok(p) => {
                print!("{}", render_policy(&p));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(crate::EXIT_INVALID)
            }
        },
        PolicyCmd::List => {
            for n in reference_names() {
                let p = load_policy(n).expect("shipped policies are valid");
                println!("{n}\t{}\t{}\t版本 {}", p.meta.region_code, p.meta.name, p.version);
            }
            ExitCode::SUCCESS
        }
        PolicyCmd::Test { file, cases } => test(&file, cases.as_deref()),
        PolicyCmd::Compare(a) => crate::compare_cmd::run(a),
    }
}

/// `policy test`: the policy's hand-computed cases settled as `baozhang settle` settles them, each
/// reported ✓ or ✗ with its reason and every differing field. Exit 0 when all pass, 1 when a case fails
/// or a file is invalid, 3 when a file cannot be read.
fn test(file: &str, cases: Option<&Path>) -> ExitCode {
    let invalid = || ExitCode::from(crate::EXIT_INVALID);
    let io = || ExitCode::from(crate::EXIT_IO);
    // The policy: a shipped id, else a file.
    let shipped = reference_source(file);
    let src = match shipped {
        Some(s) => s.to_string(),
        None => match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("错误：无法读取政策“{file}”：{e}（内置政策：{}）", reference_names().join(", "));
                return io();
            }
        },
    };
    let policy = match parse_policy(&src) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{file}：{e}");
            return invalid();
        }
    };
    // The cases: --cases, else the shipped ones of a shipped id, else tests/<id>.toml beside the file.
    let (label, text) = match (cases, shipped) {
        (Some(path), _) => match std::fs::read_to_string(path) {
            Ok(t) => (path.display().to_string(), t),
            Err(e) => {
                eprintln!("错误：无法读取案例文件 {}：{e}", path.display());
                return io();
            }
        },
        (None, Some(_)) => match reference_tests(file) {
            Some(t) => (format!("内置 policies/tests/{file}.toml"), t.to_string()),
            None => {
                eprintln!("错误：内置政策 {file} 没有内置案例；请用 --cases 指定案例文件");
                return io();
            }
        },
        (None, None) => {
            let path = Path::new(file).parent().unwrap_or(Path::new("")).join("tests").join(format!("{}.toml", policy.meta.id));
            match std::fs::read_to_string(&path) {
                Ok(t) => (path.display().to_string(), t),
                Err(e) => {
                    eprintln!(
                        "错误：无法读取案例文件 {}：{e}（案例放在政策文件旁的 tests/<政策标识>.toml，或用 --cases 指定）",
                        path.display()
                    );
                    return io();
                }
            }
        }
    };
    let case_file = match parse_case_file(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("错误：{label}：{e}");
            return invalid();
        }
    };
    let results = match run_cases(&policy, &case_file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("错误：{label}：{e}");
            return invalid();
        }
    };
    println!("政策 {}（{}）版本 {}；案例 {label}，{} 个", policy.meta.name, policy.meta.id, policy.version, results.len());
    let mut failed = Vec::new();
    for r in &results {
        if r.passed() {
            match &r.outcome {
                Outcome::Refused { field, .. } => println!("✓ {}  {}（按预期拒绝：字段 {field}）", r.case.id, r.case.reason),
                Outcome::Settled(_) => println!("✓ {}  {}", r.case.id, r.case.reason),
            }
        } else {
            println!("✗ {}  {}（第 {} 行）", r.case.id, r.case.reason, r.case.line);
            if let Some(why) = &r.mismatch {
                println!("    {why}");
            }
            for d in &r.differences {
                println!("    {d}");
            }
            failed.push(r.case.id.as_str());
        }
    }
    if failed.is_empty() {
        println!("全部通过：{} 个案例", results.len());
        ExitCode::SUCCESS
    } else {
        println!("未通过：{} 个案例中 {} 个（{}）", results.len(), failed.len(), failed.join("、"));
        invalid()
    }
}

/// Display width: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 => {
                2
            }
            _ => 1,
        })
        .sum()
}

/// Wraps a cell to `max` columns, breaking after a separator (；，、 or a space) where one is on the
/// line, so that a figure like 100,000.00 is never split.
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for ch in s.chars() {
        cur.push(ch);
        if width(&cur) > max {
            let cut =
                cur.char_indices().filter(|(_, c)| matches!(c, '；' | '，' | '、' | ' ' | '）')).map(|(i, c)| i + c.len_utf8()).next_back();
            match cut {
                Some(i) if i < cur.len() => {
                    let rest = cur.split_off(i);
                    lines.push(std::mem::replace(&mut cur, rest));
                }
                _ => {
                    let last = cur.pop().expect("non-empty");
                    lines.push(std::mem::take(&mut cur));
                    cur.push(last);
                }
            }
        }
    }
    lines.push(cur);
    lines
}

pub fn render_policy(p: &Policy) -> String {
    let mut o = String::new();
    o.push_str(&format!("{}（{}）\n", p.meta.name, p.meta.id));
    o.push_str(&format!("地区：{} {}", p.meta.region_code, p.meta.region_name));
    if !p.meta.covers.is_empty() {
        o.push_str(&format!("（含 {}）", p.meta.covers.join("、")));
    }
    o.push_str(&format!(
        "\n年度：{}　生效：{} 至 {}　版本：{}\n",
        p.meta.year,
        p.meta.effective_from,
        p.meta.effective_to.map_or("长期".to_string(), |d| d.to_string()),
        p.version
    ));
    for s in &p.meta.sources {
        o.push_str(&format!(
            "来源 [{}] {}{}{}\n",
            s.mark,
            s.id.as_ref().map(|i| format!("{i}：")).unwrap_or_default(),
            s.title,
            s.reference.as_ref().map(|r| format!("（{r}）")).unwrap_or_default()
        ));
    }
    o.push('\n');
    let header = ["序号", "报销层", "基金", "适用对象", "计算方法", "封顶"];
    let maxw = [4, 30, 34, 30, 60, 24];
    let rows: Vec<[String; 6]> = describe(p);
    let mut widths = header.map(width);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(width(c).min(maxw[i]));
        }
    }
    let sep: String = widths.iter().map(|w| "─".repeat(w + 2)).collect::<Vec<_>>().join("┼");
    let pad = |s: &str, w: usize| format!(" {}{} ", s, " ".repeat(w.saturating_sub(width(s))));
    o.push_str(&header.iter().enumerate().map(|(i, h)| pad(h, widths[i])).collect::<Vec<_>>().join("│"));
    o.push('\n');
    o.push_str(&sep);
    o.push('\n');
    for r in &rows {
        let cells: Vec<Vec<String>> = r.iter().enumerate().map(|(i, c)| wrap(c, widths[i])).collect();
        let h = cells.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..h {
            let line: Vec<String> = cells.iter().enumerate().map(|(i, c)| pad(c.get(k).map_or("", String::as_str), widths[i])).collect();
            o.push_str(line.join("│").trim_end());
            o.push('\n');
        }
    }
    o.push_str(&render_provenance(p));
    o
}

/// A quote shortened for a line: its beginning and end (where the figure usually is) when long.
fn shorten(q: &str) -> String {
    let chars: Vec<char> = q.chars().collect();
    if chars.len() <= 32 {
        q.to_string()
    } else {
        format!("{}…{}", chars[..12].iter().collect::<String>(), chars[chars.len() - 18..].iter().collect::<String>())
    }
}

/// The values written with a mark, one a line: mark, place, value, and 依据 (source title and quote) or
/// 示意值 (docs/SETTLEMENT.md "Sources as data"). Empty when the policy marks none.
pub fn render_provenance(p: &Policy) -> String {
    if p.provenance.is_empty() {
        return String::new();
    }
    let mut o = String::from("\n数值来源（S 文件规定，P 公开指南，I 示意值：不是官方文件的数值，须按本地文件替换）\n");
    let n_i = p.provenance.iter().filter(|v| v.mark == Mark::I).count();
    for v in &p.provenance {
        let basis = match v.mark {
            Mark::I => "示意值（非官方数值）".to_string(),
            Mark::S | Mark::P => {
                let title = v.source_id.as_deref().and_then(|id| p.source(id)).map_or("", |s| s.title.as_str());
                let quote = v.quote.as_deref().map(|q| format!("“{}”", shorten(q))).unwrap_or_default();
                format!("依据：{title}{quote}")
            }
        };
        o.push_str(&format!("  [{}] {}　{}　{basis}\n", v.mark.letter(), v.place, v.value));
    }
    if n_i > 0 {
        o.push_str(&format!("其中 {n_i} 个为示意值：按这些数值算出的金额不是官方标准，仅供演示与测试。\n"));
    }
    o
}
