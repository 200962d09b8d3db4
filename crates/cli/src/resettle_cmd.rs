//! `baozhang resettle --year Y [--region CODE | --person PSN_NO] [--reason …] [--dry-run] [--export DIR]`:
//! re-settles the person-years in scope under the policy and identities as known now and writes the
//! differences to the ledger as adjustment entries (issue 17). A run interrupted by a crash is resumed by
//! running the same command again (it continues after the last person-year committed).

use std::path::PathBuf;
use std::process::ExitCode;

use baozhang_core::policy::ALL_FUNDS;
use baozhang_core::Fen;
use baozhang_ingest::resettle_report::{owed, sheets, OwedReport};
use baozhang_server::resettle::explain;
use baozhang_store::resettle::{self, Adjusted, Reason, RunCtx, ALL_REASONS};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data_cmd::{open_store, runtime, DbArgs};

#[derive(Args)]
pub struct ResettleArgs {
    /// 重算年度（医保年度）
    #[arg(long)]
    pub year: u16,
    /// 只重算该区划（县、乡镇或村代码的前缀）内的人员
    #[arg(long, conflicts_with = "person")]
    pub region: Option<String>,
    /// 只重算该人员（人员编号）
    #[arg(long)]
    pub person: Option<String>,
    /// 重算原因：late_identity（身份认定滞后）、cancellation（撤销非末笔结算）、application（依申请救助）、year_end（年终清算）
    #[arg(long, default_value = "year_end")]
    pub reason: String,
    /// 说明（记入重算批次）
    #[arg(long, default_value = "")]
    pub note: String,
    /// 只计算差额，不记账
    #[arg(long)]
    pub dry_run: bool,
    /// 把补付、追回与基金变化导出为 Excel（写入该目录）
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// 导出时显示完整证件号码（记入访问日志）
    #[arg(long)]
    pub unmasked: bool,
    /// 另外加载的政策文件（与服务相同：按参保地与日期选用）
    #[arg(long = "policy")]
    pub policies: Vec<PathBuf>,
    /// 每个事务重算的人员年度数（中断后从最后提交处继续）
    #[arg(long, default_value_t = resettle::STEP)]
    pub step: usize,
}

pub fn resettle(db: DbArgs, a: ResettleArgs) -> ExitCode {
    let Some(reason) = Reason::parse(&a.reason) else {
        eprintln!(
            "错误：未知的重算原因“{}”（可用：{}）",
            a.reason,
            ALL_REASONS.iter().map(|r| format!("{}（{}）", r.code(), r.name_zh())).collect::<Vec<_>>().join("、")
        );
        return ExitCode::from(crate::EXIT_INVALID);
    };
    let region = a.region.clone().unwrap_or_default();
    if !region.chars().all(|c| c.is_ascii_digit()) || region.len() > 12 {
        eprintln!("错误：--region 应为区划代码（数字，至多 12 位），实际为“{region}”");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    let policies = match crate::serve_cmd::load_policies(&a.policies) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        let io = |e: baozhang_store::StoreError| {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        };
        let (outcome, run_id) = if a.dry_run {
            let psns = match resettle::person_years_in_scope(&store, a.year, &region, a.person.as_deref(), None).await {
                Ok(p) => p,
                Err(e) => return io(e),
            };
            println!("试算：{} 年度 {} 个人员年度（不记账）", a.year, psns.len());
            match resettle::preview(&store, a.year, &psns, &policies, &explain).await {
                Ok(o) => (o, None),
                Err(e) => return io(e),
            }
        } else {
            // The same scope and reason left unfinished: resume it after its last committed person-year.
            let resumed = match store.unfinished_resettle_run(a.year, &region, a.person.as_deref(), reason).await {
                Ok(r) => r,
                Err(e) => return io(e),
            };
            let after = resumed.as_ref().and_then(|r| r.last_psn_no.clone());
            let psns = match resettle::person_years_in_scope(&store, a.year, &region, a.person.as_deref(), after.as_deref()).await {
                Ok(p) => p,
                Err(e) => return io(e),
            };
            let run_id = match &resumed {
                Some(r) => {
                    println!("继续未完成的重算批次 #{}：已完成 {} 个人员年度，剩余 {} 个", r.id, r.done_person_years, psns.len());
                    r.id
                }
                None => {
                    let mut tx = match store.begin_write().await {
                        Ok(t) => t,
                        Err(e) => return io(e),
                    };
                    let id = match resettle::create_run_in(
                        &mut tx,
                        a.year,
                        &region,
                        a.person.as_deref(),
                        reason,
                        &a.note,
                        "cli",
                        psns.len() as i64,
                    )
                    .await
                    {
                        Ok(id) => id,
                        Err(e) => return io(e),
                    };
                    if let Err(e) = tx.commit().await {
                        return io(e.into());
                    }
                    println!("重算批次 #{id}：{} 年度 {} 个人员年度，原因：{}", a.year, psns.len(), reason.name_zh());
                    id
                }
            };
            let pb = ProgressBar::new(psns.len() as u64);
            pb.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} 人员年度 ({per_sec}) [{elapsed}]").expect("template"));
            let run = RunCtx { run_id, reason, opter: "cli".into() };
            let r =
                resettle::drive_run(&store, &run, a.year, &psns, a.step, &policies, &explain, &mut |done, _| pb.set_position(done as u64))
                    .await;
            pb.finish_and_clear();
            match r {
                Ok(o) => (o, Some(run_id)),
                Err(e) => return io(e),
            }
        };
        // A resumed run's report covers the whole run, not only this sitting.
        let adjusted: Vec<Adjusted> = match run_id {
            Some(id) => match store.adjustments(Some(id), "", None).await {
                Ok(rows) => rows.iter().map(Adjusted::from).collect(),
                Err(e) => return io(e),
            },
            None => outcome.adjusted.clone(),
        };
        let report = owed(&adjusted);
        print_report(&report, outcome.person_years, outcome.claims);
        for r in outcome.refused.iter().take(20) {
            println!("未重算：{r}");
        }
        if outcome.refused.len() > 20 {
            println!("……另有 {} 个人员年度未重算", outcome.refused.len() - 20);
        }
        if let Some(dir) = &a.export {
            let names: std::collections::HashMap<String, String> = match store.institutions().await {
                Ok(list) => list.into_iter().map(|i| (i.fixmedins_code, i.name)).collect(),
                Err(e) => return io(e),
            };
            let name = |c: &str| names.get(c).cloned().unwrap_or_else(|| c.to_string());
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("错误：无法创建目录 {}：{e}", dir.display());
                return ExitCode::from(crate::EXIT_IO);
            }
            let file = dir.join(format!(
                "{}年度重算{}_{}.xlsx",
                a.year,
                run_id.map_or("试算".to_string(), |id| format!("批次{id}")),
                if region.is_empty() { "全部" } else { region.as_str() }
            ));
            if let Err(e) = baozhang_ingest::table::write_xlsx(&file, &sheets(&report, &name, a.unmasked)) {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_IO);
            }
            if a.unmasked {
                // One access-log row per person whose full ID number left in the file.
                let subjects: Vec<String> = report.persons.keys().map(|id| baozhang_ingest::worklist::mask_id(id)).collect();
                let what = format!("导出未脱敏个人信息（{} 年度重算补付追回明细）", a.year);
                if let Err(e) = store.log_access_many("cli", "cli", "resettle.export", &subjects, &what).await {
                    return io(e);
                }
            }
            println!("已导出：{}", file.display());
        }
        if outcome.refused.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::EXIT_INVALID)
        }
    })
}

fn print_report(r: &OwedReport, person_years: usize, claims: usize) {
    println!(
        "人员年度 {person_years} 个，结算 {claims} 笔；需调整 {} 笔，涉及 {} 人、{} 家医疗机构",
        r.total.claims,
        r.persons.len(),
        r.hospitals.len()
    );
    for f in ALL_FUNDS {
        let v = r.total.funds_fen[f.index()];
        if v != 0 {
            println!("  {:<24} {:>16} 元", f.name_zh(), Fen(v).grouped());
        }
    }
    let back: i64 = r.persons.values().map(|o| o.pay_back_fen()).sum();
    let recover: i64 = r.persons.values().map(|o| o.recover_fen()).sum();
    println!(
        "  应补付个人 {} 元（{} 人），应追回个人 {} 元（{} 人）",
        Fen(back).grouped(),
        r.persons.values().filter(|o| o.psn_fen < 0).count(),
        Fen(recover).grouped(),
        r.persons.values().filter(|o| o.psn_fen > 0).count()
    );
}
