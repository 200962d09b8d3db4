//! `baozhang catalogue`: import the medical-insurance catalogue (医保目录) or a hospital's code map, and
//! search the catalogue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use baozhang_core::catalogue::{med_chrgitm_type_zh, ChrgitmLv, ListType};
use baozhang_core::{Date, Fen};
use baozhang_ingest::catalogue::{import_file, limits, parse_date_loose, CatalogueFileError, CatalogueKind};
use baozhang_ingest::table::TableError;
use baozhang_store::catalogue::CatalogueQuery;
use baozhang_store::{date_num, num_date};

use crate::data_cmd::{open_store, runtime, DbArgs};

#[derive(Subcommand)]
pub enum CatalogueCmd {
    /// 导入医保目录文件（CSV 或 XLSX，国家字段名或中文表头）；--map 导入医疗机构目录对照。有任何一行不合格则整个文件不导入
    Import {
        /// 文件（.csv 或 .xlsx）
        file: PathBuf,
        /// 文件是医疗机构目录与医保目录的对照（fixmedins_code、medins_list_codg、med_list_codg …）
        #[arg(long)]
        map: bool,
    },
    /// 查询医保目录：编码前缀或名称的一部分
    Search {
        text: String,
        /// 只列出这一天有效的项目（如 2024-06-01）
        #[arg(long)]
        on: Option<String>,
        /// 最多列出的行数
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

pub fn run(db: DbArgs, cmd: CatalogueCmd) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match cmd {
            CatalogueCmd::Import { file, map } => {
                let kind = if map { CatalogueKind::Map } else { CatalogueKind::Items };
                let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().to_string());
                match import_file(&store, kind, &file, &name, &actor(), &limits()).await {
                    Ok(r) => {
                        let what = if map { "医疗机构目录对照" } else { "医保目录" };
                        match r.already_imported_as {
                            Some(id) => println!("{name}：此文件已于导入批次 #{id} 导入过，未做任何更改。"),
                            None => println!(
                                "{name}：{what}导入批次 #{}，共 {} 行：新增 {}，更新 {}（旧版本保留为历史），未变 {}。",
                                r.import_id.unwrap_or_default(),
                                r.rows,
                                r.added,
                                r.superseded,
                                r.unchanged
                            ),
                        }
                        if !map {
                            if let Ok(n) = store.catalogue_size().await {
                                println!("目录现有有效项目 {n} 个。");
                            }
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        let io = matches!(
                            e,
                            CatalogueFileError::Io { .. }
                                | CatalogueFileError::Store(_)
                                | CatalogueFileError::Table(TableError::Open { .. })
                        );
                        ExitCode::from(if io { crate::EXIT_IO } else { crate::EXIT_INVALID })
                    }
                }
            }
            CatalogueCmd::Search { text, on, limit } => {
                let valid_on = match on.as_deref().map(|s| parse_date_loose(s).ok_or(s)) {
                    None => None,
                    Some(Ok(d)) => Some(date_num(d)),
                    Some(Err(s)) => {
                        eprintln!("错误：日期“{s}”无效（如 2024-06-01）");
                        return ExitCode::from(crate::EXIT_INVALID);
                    }
                };
                let q = CatalogueQuery { text: Some(text.clone()), valid_on, ..Default::default() };
                match store.catalogue_page(&q, 1, limit.clamp(1, 500)).await {
                    Ok((total, items)) => {
                        if total == 0 {
                            println!("没有找到“{text}”。");
                            return ExitCode::SUCCESS;
                        }
                        println!("医保目录编码\t名称\t目录类别\t收费类别\t等级\t先行自付比例\t最高限价（元）\t限定支付范围\t有效期");
                        for i in &items {
                            let date = |n: i64| num_date(n).map_or_else(|| n.to_string(), |d: Date| d.to_string());
                            println!(
                                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{} 至 {}{}",
                                i.hilist_code,
                                i.hilist_name,
                                ListType::parse(&i.list_type).map_or(i.list_type.as_str(), |l| l.name_zh()),
                                med_chrgitm_type_zh(&i.med_chrgitm_type).unwrap_or(&i.med_chrgitm_type),
                                ChrgitmLv::parse(&i.chrgitm_lv).map_or(i.chrgitm_lv.as_str(), |l| l.name_zh()),
                                baozhang_core::Ratio(i.selfpay_prop_bp.clamp(0, 10_000) as u16),
                                i.pric_uplmt_fen.map_or("—".to_string(), |f| Fen(f).grouped()),
                                if i.lmt_used_flag { i.lmt_scope.as_str() } else { "—" },
                                date(i.begndate),
                                i.enddate.map_or("长期".to_string(), date),
                                if i.vali_flag { "" } else { "（无效）" },
                            );
                        }
                        if total > items.len() as i64 {
                            println!("……共 {total} 项，只列出前 {} 项（--limit）", items.len());
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        ExitCode::from(crate::EXIT_IO)
                    }
                }
            }
        }
    })
}
