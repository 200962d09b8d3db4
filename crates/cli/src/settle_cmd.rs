use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use baozhang_core::policy::Fund;
use baozhang_ingest::settle_run::{settle_stream, Format, SettleOptions, SettleRunError};

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
}

#[derive(Args)]
pub struct SettleArgs {
    /// 政策：内置名称或 TOML 文件路径（a shipped policy id or a path）
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
    let policy = match crate::policy_cmd::load_policy(&a.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
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
                let s = settle_stream(&policy, input, &mut w, rej, opts)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                s
            }
            None => {
                let mut mem = Vec::new();
                let s = settle_stream(&policy, input, &mut mem, rej, opts)?;
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
                policy.meta.id,
                policy.version,
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
