//! `baozhang audit --year Y [--params FILE]`: the fund-supervision rules (R-AUD-1) over a year's settled
//! claims; the run and its leads are stored for the workbench (基金监管), where they are confirmed,
//! dismissed or disputed (R-AUD-2).

use std::path::PathBuf;
use std::process::ExitCode;

use baozhang_core::audit::Rule;
use baozhang_core::Fen;
use baozhang_ingest::oversight::{run_audit, AuditError, DEFAULT_RULES};
use clap::Args;

use crate::data_cmd::{open_store, runtime, DbArgs};

#[derive(Args)]
pub struct AuditArgs {
    /// 审核年度
    #[arg(long)]
    pub year: i64,
    /// 规则参数文件（TOML，默认使用内置的 data/audit/rules.toml）
    #[arg(long)]
    pub params: Option<PathBuf>,
}

pub fn audit(db: DbArgs, a: AuditArgs) -> ExitCode {
    let params = match &a.params {
        None => DEFAULT_RULES.to_string(),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("错误：无法读取规则参数文件 {}：{e}", p.display());
                return ExitCode::from(crate::EXIT_IO);
            }
        },
    };
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match run_audit(&store, a.year, "", &params, "cli").await {
            Ok(o) => {
                println!("{} 年基金监管审核：结算 {} 条，疑点线索 {} 条（运行 #{}）", a.year, o.claims, o.leads.len(), o.run_id);
                for r in Rule::ALL {
                    let of: Vec<_> = o.leads.iter().filter(|l| l.rule == r).collect();
                    println!(
                        "  {:<28} {:>6} 条  涉及金额 {:>16} 元",
                        r.name_zh(),
                        of.len(),
                        Fen(of.iter().map(|l| l.amount_fen).sum()).grouped()
                    );
                }
                ExitCode::SUCCESS
            }
            Err(AuditError::Params(e)) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_INVALID)
            }
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}
