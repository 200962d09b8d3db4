use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use baozhang_core::policy::{describe, parse_policy, Policy};
use baozhang_core::reference::{reference_names, reference_source};

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// 检查政策文件，列出全部问题及位置（Validate policy files; every problem with its place）
    Check {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// 以表格显示政策各层（Show the layers as a readable table）
    Show { name: String },
    /// 列出内置政策（List the shipped reference policies）
    List,
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

pub fn run(cmd: PolicyCmd) -> ExitCode {
    match cmd {
        PolicyCmd::Check { files } => {
            let mut bad = 0;
            for f in &files {
                match load_policy(f) {
                    Ok(p) => println!("✓ {f}：{}（{}），{} 层，版本 {}", p.meta.name, p.meta.id, p.layers.len(), p.version),
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
        o.push_str(&format!("来源 [{}] {}{}\n", s.mark, s.title, s.reference.as_ref().map(|r| format!("（{r}）")).unwrap_or_default()));
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
    o
}
