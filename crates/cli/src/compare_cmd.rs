//! `baozhang policy compare OLD NEW (--claims FILE | --year Y) [--xlsx OUT.xlsx] [--top N]`: weighing a new
//! policy. The claims of a file (identities from the file, as `settle` reads them) or the live settlements of
//! a year in the ledger (their stored claim data, the identities the registry holds now) are settled under
//! both policies (`ingest::policy_compare`), and the differences printed and exported to Excel. Nothing is
//! written to the database.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use baozhang_ingest::policy_compare::{
    compare, load_year, name_affected, read_claims_csv, write_xlsx, ClaimSet, CompareReadError, MAX_CLAIMS, MAX_TOP,
};
use baozhang_ingest::settle_run::PolicyChoice;
use clap::Args;

use crate::data_cmd::{open_store, runtime, DbArgs};

#[derive(Args)]
pub struct CompareArgs {
    /// 原政策：内置名称或 TOML 文件路径（the policy in force: a shipped id or a path）
    pub old: String,
    /// 新政策：内置名称或 TOML 文件路径（the policy weighed: a shipped id or a path）
    pub new: String,
    /// 理赔 CSV（与 baozhang settle 相同的列，身份取自文件；有 village_code / insuplc_admdvs 列时按乡镇汇总）
    #[arg(long, conflicts_with = "year", required_unless_present = "year")]
    pub claims: Option<PathBuf>,
    /// 医保年度：按数据库中该年度的有效结算重算（按存储的理赔数据，身份取自登记库）
    #[arg(long)]
    pub year: Option<u16>,
    /// 导出 Excel（概况、分层、身份、乡镇、受影响人员、未结算）
    #[arg(long)]
    pub xlsx: Option<PathBuf>,
    /// 列出个人负担变化最大的人数（1–1000）
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[command(flatten)]
    pub db: DbArgs,
}

/// Refusals listed on the terminal per policy (all of them go to the Excel file).
const SHOWN_REFUSALS: usize = 20;

pub fn run(a: CompareArgs) -> ExitCode {
    let invalid = || ExitCode::from(crate::EXIT_INVALID);
    let io = || ExitCode::from(crate::EXIT_IO);
    if !(1..=MAX_TOP).contains(&a.top) {
        eprintln!("错误：--top 应在 1 到 {MAX_TOP} 之间，实际为 {}", a.top);
        return invalid();
    }
    let (old, new) = match (crate::policy_cmd::load_policy(&a.old), crate::policy_cmd::load_policy(&a.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) => {
            eprintln!("错误：原政策 {e}");
            return invalid();
        }
        (_, Err(e)) => {
            eprintln!("错误：新政策 {e}");
            return invalid();
        }
    };
    let (set, store_for_names) = match (&a.claims, a.year) {
        (Some(path), _) => match read_file(path) {
            Ok(s) => (s, None),
            Err(code) => return code,
        },
        (None, Some(year)) => {
            let rt = runtime();
            let loaded = rt.block_on(async {
                let store = open_store(&a.db).await?;
                let set = load_year(&store, year, "", MAX_CLAIMS).await.map_err(|e| {
                    eprintln!("错误：{e}");
                    io()
                })?;
                Ok::<_, ExitCode>((set, store))
            });
            match loaded {
                Ok((set, store)) => (set, Some((rt, store))),
                Err(code) => return code,
            }
        }
        (None, None) => {
            eprintln!("错误：请用 --claims 指定理赔文件，或用 --year 指定年度（从数据库读取）");
            return invalid();
        }
    };
    tracing::info!(claims = set.claims.len(), unreadable = set.unreadable.len(), "policy compare: claims loaded");
    let mut c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, a.top);
    drop(set);
    // Names for the persons listed (the registry's; a file has none): at most `--top` look-ups.
    if let Some((rt, store)) = &store_for_names {
        if let Err(e) = rt.block_on(name_affected(store, &mut c)) {
            eprintln!("错误：{e}");
            return io();
        }
    }
    tracing::info!(
        compared = c.total.claims,
        refused_old = c.old.refused.len(),
        refused_new = c.new.refused.len(),
        "policy compare: settled under both policies"
    );
    for line in c.summary_lines(SHOWN_REFUSALS) {
        println!("{line}");
    }
    if let Some(out) = &a.xlsx {
        if let Err(code) = write_atomically(out, &c) {
            return code;
        }
        println!("已导出：{}", out.display());
    }
    ExitCode::SUCCESS
}

fn read_file(path: &Path) -> Result<ClaimSet, ExitCode> {
    let f = File::open(path).map_err(|e| {
        eprintln!("错误：无法打开理赔文件 {}：{e}", path.display());
        ExitCode::from(crate::EXIT_IO)
    })?;
    match read_claims_csv(BufReader::with_capacity(1 << 20, f), MAX_CLAIMS) {
        Ok(mut s) => {
            s.source = format!("文件 {}", path.display());
            Ok(s)
        }
        Err(e @ CompareReadError::Header(baozhang_ingest::claims::ReadError::Csv(_))) => {
            eprintln!("错误：{} {e}", path.display());
            Err(ExitCode::from(crate::EXIT_IO))
        }
        Err(e) => {
            eprintln!("错误：{} {e}", path.display());
            Err(ExitCode::from(crate::EXIT_INVALID))
        }
    }
}

/// Writes the workbook beside the target and renames it into place: no half-written file is left.
fn write_atomically(out: &Path, c: &baozhang_ingest::policy_compare::Comparison) -> Result<(), ExitCode> {
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "compare.xlsx".into());
    let tmp = out.with_file_name(format!(".{name}.{}.tmp.xlsx", std::process::id()));
    let r = write_xlsx(&tmp, c).map_err(|e| e.to_string()).and_then(|()| std::fs::rename(&tmp, out).map_err(|e| e.to_string()));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("错误：无法写出 {}：{e}", out.display());
        return Err(ExitCode::from(crate::EXIT_IO));
    }
    Ok(())
}
