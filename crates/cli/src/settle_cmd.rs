use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use baozhang_core::policy::{Fund, Policy};
use baozhang_ingest::settle_run::{settle_stream, Format, PolicyChoice, SettleOptions, SettleRunError};

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
}

#[derive(Args)]
pub struct SettleArgs {
    /// 政策：内置名称、TOML 文件路径，或区划代码（按每条理赔的结算日期从内置政策中选用当时有效的政策）
    /// (a shipped policy id, a path, or a region code: the shipped policy in force on each claim's date)
    #[arg(long)]
    policy: String,
    /// 理赔 CSV（claims CSV, header row, columns in any order）
    #[arg(long)]
    claims: PathBuf,
    /// 输出文件；省略则在成功后写到标准输出（output file; stdout after success if omitted）
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "csv")]
    format: FormatArg,
    /// 跳过无效行并写入 <out>.rejected.csv（settle valid rows, report the rest）
    #[arg(long)]
    skip_invalid: bool,
}

/// Removes the temporary file unless the run succeeded: no half output is ever left behind.
struct TempOut {
    path: PathBuf,
    keep: bool,
}
impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn temp_beside(target: &Path, tag: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    target.with_file_name(format!(".{name}.{tag}.{}.tmp", std::process::id()))
}

pub fn run(a: SettleArgs) -> ExitCode {
    // A region code (digits) picks, for each claim, the shipped policy in force on its date.
    let by_region = !a.policy.is_empty() && a.policy.len() <= 12 && a.policy.bytes().all(|b| b.is_ascii_digit());
    let policies: Vec<Policy> = if by_region {
        baozhang_core::reference::reference_names().iter().filter_map(|n| crate::policy_cmd::load_policy(n).ok()).collect()
    } else {
        match crate::policy_cmd::load_policy(&a.policy) {
            Ok(p) => vec![p],
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_INVALID);
            }
        }
    };
    if by_region
        && !policies.iter().any(|p| {
            p.meta.region_code == a.policy
                || a.policy.starts_with(p.meta.region_code.trim_end_matches("00"))
                || p.meta.covers.iter().any(|c| c == &a.policy)
        })
    {
        eprintln!("错误：内置政策中没有区划 {} 的政策（内置：{}）", a.policy, baozhang_core::reference::reference_names().join(", "));
        return ExitCode::from(crate::EXIT_INVALID);
    }
    let choice = if by_region { PolicyChoice::Region { admdvs: &a.policy, list: &policies } } else { PolicyChoice::One(&policies[0]) };
    let size_hint_bytes = std::fs::metadata(&a.claims).map_or(0, |m| m.len());
    let input = match File::open(&a.claims) {
        Ok(f) => BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("错误：无法打开理赔文件 {}：{e}", a.claims.display());
            return ExitCode::from(crate::EXIT_IO);
        }
    };
    let opts = SettleOptions {
        format: match a.format {
            FormatArg::Csv => Format::Csv,
            FormatArg::Jsonl => Format::Jsonl,
        },
        skip_invalid: a.skip_invalid,
        size_hint_bytes,
    };
    let started = Instant::now();

    // Output goes to a temporary file beside the target (or to memory for stdout) and is published
    // only when the whole run succeeded.
    let mut tmp_out = a.out.as_ref().map(|o| TempOut { path: temp_beside(o, "out"), keep: false });
    let rejected_target = a.out.as_ref().map(|o| PathBuf::from(format!("{}.rejected.csv", o.display())));
    let mut tmp_rej = rejected_target.as_ref().filter(|_| a.skip_invalid).map(|r| TempOut { path: temp_beside(r, "rej"), keep: false });

    let result = (|| -> Result<_, SettleRunError> {
        let mut rej_file: Option<BufWriter<File>> = match &tmp_rej {
            Some(t) => Some(BufWriter::new(File::create(&t.path)?)),
            None => None,
        };
        let mut rej_stderr;
        let rej: Option<&mut dyn Write> = match rej_file.as_mut() {
            Some(f) => Some(f),
            None if a.skip_invalid => {
                rej_stderr = std::io::stderr();
                Some(&mut rej_stderr)
            }
            None => None,
        };
        let summary = match &tmp_out {
            Some(t) => {
                let mut w = BufWriter::with_capacity(1 << 20, File::create(&t.path)?);
                let s = settle_stream(choice, input, &mut w, rej, opts)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                s
            }
            None => {
                let mut mem = Vec::new();
                let s = settle_stream(choice, input, &mut mem, rej, opts)?;
                std::io::stdout().lock().write_all(&mem)?;
                s
            }
        };
        if let Some(mut f) = rej_file {
            f.flush()?;
        }
        Ok(summary)
    })();

    match result {
        Ok(s) => {
            if let (Some(t), Some(target)) = (tmp_out.as_mut(), a.out.as_ref()) {
                if let Err(e) = std::fs::rename(&t.path, target) {
                    eprintln!("错误：无法写出 {}：{e}", target.display());
                    return ExitCode::from(crate::EXIT_IO);
                }
                t.keep = true;
            }
            // A reject report from an earlier run of the same output would now be misleading.
            if let (None, Some(target)) = (tmp_rej.as_ref(), rejected_target.as_ref()) {
                let _ = std::fs::remove_file(target);
            }
            if let (Some(t), Some(target)) = (tmp_rej.as_mut(), rejected_target.as_ref()) {
                if s.rejected > 0 {
                    if std::fs::rename(&t.path, target).is_ok() {
                        t.keep = true;
                    }
                } else {
                    let _ = std::fs::remove_file(target);
                }
            }
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "已结算 {} 条（{} 个人-年度），拒绝 {} 条；总费用 {}，基本医保 {}，大病保险 {}，补充保险 {}，医疗救助 {}，政府兜底 {}，医院承担 {}，个人负担 {}；政策 {} 版本 {}；用时 {:.2} 秒",
                s.settled,
                s.person_years,
                s.rejected,
                s.medfee_sumamt.grouped(),
                s.fund(Fund::Basic).grouped(),
                s.fund(Fund::CriticalIllness).grouped(),
                s.fund(Fund::Supplemental).grouped(),
                s.fund(Fund::Assistance).grouped(),
                s.fund(Fund::Fallback).grouped(),
                s.fund(Fund::Hospital).grouped(),
                s.psn_part_amt.grouped(),
                if by_region { format!("按区划 {} 的日期选用", a.policy) } else { policies[0].meta.id.clone() },
                if by_region { "-".to_string() } else { policies[0].version.clone() },
                secs
            );
            if s.rejected > 0 {
                if let Some(t) = &rejected_target {
                    eprintln!("被拒绝的行及原因见 {}", t.display());
                }
            }
            ExitCode::SUCCESS
        }
        Err(SettleRunError::Row(e)) => {
            eprintln!("错误：{} {e}；未生成输出文件（可用 --skip-invalid 跳过无效行）", a.claims.display());
            ExitCode::from(crate::EXIT_INVALID)
        }
        Err(SettleRunError::Header(e)) => {
            eprintln!("错误：{} {e}", a.claims.display());
            ExitCode::from(crate::EXIT_INVALID)
        }
        Err(e @ SettleRunError::Io(_)) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}
