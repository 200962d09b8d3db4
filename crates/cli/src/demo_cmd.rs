//! `baozhang generate` and `baozhang demo`: a realistic synthetic county on the real division tree,
//! imported, reconciled and settled — the product's main job end to end on the embedded default.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use baozhang_core::Fen;
use baozhang_ingest::county::{generate, CountyParams, VillageRef};
use baozhang_ingest::registry_settle::settle_claims_from_registry;
use baozhang_store::Store;

use crate::data_cmd::{ensure_regions, import_one, open_store, progress_bar, run_reconcile, runtime, DbArgs, ReconcileArgs};

#[derive(Args)]
pub struct GenerateArgs {
    /// 县级区划代码（默认会宁县）
    #[arg(long, default_value = "620422")]
    pub county: String,
    #[arg(long, default_value_t = 20181)]
    pub seed: u64,
    /// 规模（1.0 ≈ 58 万常住人口、63,656 名建档立卡贫困人口）
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// 数据年度
    #[arg(long, default_value_t = 2018)]
    pub year: u16,
    /// 输出目录
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct DemoArgs {
    /// 规模（1.0 为全县；0.1 约十分之一，适合快速体验）
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 20181)]
    pub seed: u64,
    /// 生成的名单存放目录
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// 只准备数据后退出（本版本尚无工作台，总是如此）
    #[arg(long)]
    pub no_serve: bool,
}

const DEMO_COUNTY: &str = "620422";
const DEMO_YEAR: u16 = 2018;
const DEMO_POLICY: &str = "gansu-huining-2018";

pub async fn county_villages(store: &Store, county: &str) -> Result<Vec<VillageRef>, String> {
    let regions = store.regions_upto(5, Some(county)).await.map_err(|e| e.to_string())?;
    let towns: std::collections::HashMap<&str, &str> =
        regions.iter().filter(|r| r.level == 4).map(|r| (r.code.as_str(), r.name.as_str())).collect();
    let villages: Vec<VillageRef> = regions
        .iter()
        .filter(|r| r.level == 5)
        .filter_map(|r| {
            let t = r.parent_code.as_deref()?;
            Some(VillageRef {
                code: r.code.clone(),
                name: r.name.clone(),
                township_code: t.to_string(),
                township_name: towns.get(t).copied().unwrap_or("").to_string(),
            })
        })
        .collect();
    if villages.is_empty() {
        return Err(format!("区划 {county} 下没有村级区划（请先 baozhang regions load 或 regions import）"));
    }
    Ok(villages)
}

fn run_generate(params: &CountyParams, out: &Path) -> Result<baozhang_ingest::county::GenerateSummary, String> {
    let pb = progress_bar("生成");
    let started = Instant::now();
    let r = generate(params, out, &mut |stage, n| {
        pb.set_message(format!("生成 {stage}"));
        pb.set_position(n);
    })
    .map_err(|e| format!("生成失败：{e}"))?;
    pb.finish_and_clear();
    println!(
        "已生成 {}：常住人口 {}，{} 户，建档立卡 {}（已脱贫 {}），监测对象 {}，低保 {}，特困 {}，理赔 {} 条；用时 {:.1} 秒",
        out.display(),
        r.residents,
        r.households,
        r.registered_poor,
        r.exited_poor,
        r.marginal,
        r.dibao,
        r.extreme_poor,
        r.claims,
        started.elapsed().as_secs_f64()
    );
    Ok(r)
}

pub fn generate_cmd(db: DbArgs, a: GenerateArgs) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        let villages = match ensure_regions(&store).await.and(Ok(())) {
            Ok(()) => county_villages(&store, &a.county).await,
            Err(e) => Err(e),
        };
        let villages = match villages {
            Ok(v) => v,
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_INVALID);
            }
        };
        let params = CountyParams { county_code: a.county.clone(), villages, seed: a.seed, scale: a.scale, year: a.year };
        match run_generate(&params, &a.out) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

fn ratio(n: i64, d: i64) -> String {
    if d == 0 {
        return "—".into();
    }
    let bp = (n * 10_000 + d / 2) / d;
    format!("{}.{:02}%", bp / 100, bp % 100)
}

pub fn demo(db: DbArgs, a: DemoArgs) -> ExitCode {
    if !(a.scale > 0.0 && a.scale <= 20.0) {
        eprintln!("错误：--scale 应在 0 到 20 之间");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    runtime().block_on(async move {
        match demo_inner(&db, &a).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

async fn demo_inner(db: &DbArgs, a: &DemoArgs) -> Result<(), String> {
    let started = Instant::now();
    let store = open_store(db).await.map_err(|_| "无法打开数据库".to_string())?;
    println!("数据库：{}", crate::data_cmd::redact_url(&db.database_url));
    ensure_regions(&store).await?;
    let data = a.dir.join(format!("{DEMO_COUNTY}-seed{}-scale{}", a.seed, a.scale));
    if store.count("persons").await.map_err(|e| e.to_string())? == 0 {
        if !data.join("truth.json").exists() {
            let villages = county_villages(&store, DEMO_COUNTY).await?;
            let params = CountyParams { county_code: DEMO_COUNTY.into(), villages, seed: a.seed, scale: a.scale, year: DEMO_YEAR };
            run_generate(&params, &data)?;
        }
        for kind in baozhang_ingest::rosters::IMPORT_ORDER {
            let file = data.join(format!("{}.csv", kind.id()));
            import_one(&store, kind, &file, Some(data.join("rejected")), false).await?;
        }
    } else {
        println!("数据库已有登记数据，跳过生成与导入。");
    }
    let as_of = baozhang_core::Date::new(DEMO_YEAR, 12, 31).expect("date");
    let rec = ReconcileArgs {
        as_of: None,
        export: Some(data.join("worklists")),
        unmasked: false,
        findings: None,
        subsidy_standard: None,
        new_window_days: 90,
    };
    run_reconcile(&store, &rec, as_of).await?;

    let policy = crate::policy_cmd::load_policy(DEMO_POLICY)?;
    if store.count("settlements").await.map_err(|e| e.to_string())? == 0 {
        let pb = progress_bar("结算");
        let t = Instant::now();
        let s = settle_claims_from_registry(&store, &policy, &data.join("claims.csv"), &mut |n| pb.set_position(n))
            .await
            .map_err(|e| e.to_string())?;
        pb.finish_and_clear();
        println!(
            "已按 {}（版本 {}）结算 {} 条理赔并入库 {} 条（未找到参保人 {} 条，无效 {} 条）；用时 {:.1} 秒",
            policy.meta.name,
            policy.version,
            s.claims,
            s.stored,
            s.unknown_persons,
            s.rejected,
            t.elapsed().as_secs_f64()
        );
    }
    let all = store.settlement_totals(false).await.map_err(|e| e.to_string())?;
    let poor = store.settlement_totals(true).await.map_err(|e| e.to_string())?;
    let names = ["基本医保", "大病保险", "补充保险", "医疗救助", "政府兜底", "医院承担"];
    println!("一站式结算（{} 年，{} 条）：总费用 {} 元", DEMO_YEAR, all.claims, Fen(all.medfee_fen).grouped());
    for (k, n) in names.iter().enumerate() {
        println!("  {n:<8} {:>20} 元  {}", Fen(all.funds_fen[k]).grouped(), ratio(all.funds_fen[k], all.medfee_fen));
    }
    println!("  个人负担 {:>20} 元  {}", Fen(all.psn_part_fen).grouped(), ratio(all.psn_part_fen, all.medfee_fen));
    println!(
        "建档立卡贫困人口住院（{} 人次）实际报销比例：占总费用 {}，占政策范围内费用 {}；医院承担 {} 元",
        poor.claims,
        ratio(poor.fund_pay_fen, poor.medfee_fen),
        ratio(poor.fund_pay_fen, poor.inscp_fen),
        Fen(poor.funds_fen[5]).grouped()
    );
    println!("完成，用时 {:.1} 秒。工作清单在 {}。", started.elapsed().as_secs_f64(), data.join("worklists").display());
    Ok(())
}
