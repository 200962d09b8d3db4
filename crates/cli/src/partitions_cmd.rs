//! `baozhang partitions [--ensure-year Y]… [--detach-year Y]`: PostgreSQL's partitions of the yearly tables
//! (enrolments, visits, the ledger's settlements and entries), by insurance year and prefecture. Lists
//! each partition with its bounds and rows; makes a year's partitions ahead of time; detaches a finished
//! year for archiving (its tables are renamed `archive_…`: dump them with `pg_dump -t 'archive_*'`, then
//! drop them, or attach them again). SQLite keeps plain tables and says so.

use std::process::ExitCode;

use baozhang_store::Backend;
use clap::Args;

use crate::data_cmd::{open_store, runtime, DbArgs};

#[derive(Args)]
pub struct PartitionsArgs {
    /// 预先建立该年度的分区（可重复；今年、12 月起的明年、3 月前的去年已自动建立）
    #[arg(long = "ensure-year", value_name = "YEAR")]
    pub ensure: Vec<i64>,
    /// 分离该年度的分区以便归档（分离后的表改名为 archive_…，不再参与查询）
    #[arg(long = "detach-year", value_name = "YEAR")]
    pub detach: Option<i64>,
}

pub fn run(db: DbArgs, a: PartitionsArgs) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        if store.backend() != Backend::Postgres {
            if a.detach.is_some() || !a.ensure.is_empty() {
                eprintln!("错误：SQLite 数据库不分区（一个县一个文件）；分区只用于 PostgreSQL");
                return ExitCode::from(crate::EXIT_INVALID);
            }
            println!("SQLite 数据库不分区（一个县一个文件）；分区只用于 PostgreSQL。");
            return ExitCode::SUCCESS;
        }
        if let Some(y) = a.ensure.iter().find(|y| !(1990..=2200).contains(*y)) {
            eprintln!("错误：年度 {y} 不在 1990–2200 之间");
            return ExitCode::from(crate::EXIT_INVALID);
        }
        let result = async {
            if !a.ensure.is_empty() {
                let moved = store.ensure_partition_years(&a.ensure).await?;
                println!("已建立 {:?} 年度的分区，从默认分区移入 {moved} 行", a.ensure);
            }
            if let Some(y) = a.detach {
                let done = store.detach_year(y).await?;
                if done.is_empty() {
                    println!("{y} 年度没有可分离的分区");
                } else {
                    println!("已分离 {y} 年度：{}（可用 pg_dump 归档后删除，或重新挂接）", done.join("、"));
                }
            }
            store.partitions().await
        }
        .await;
        match result {
            Ok(parts) => {
                println!("{:<40} {:<44} {:>12}", "分区", "范围", "行数");
                for p in &parts {
                    let name = format!("{}{}", "  ".repeat(p.depth as usize), p.name);
                    let rows = if p.partitioned { String::new() } else { p.rows.to_string() };
                    println!("{name:<40} {:<44} {rows:>12}", p.bound);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}
