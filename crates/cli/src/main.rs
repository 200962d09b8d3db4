//! `baozhang` — 保障: the one binary of the product. Subcommands are thin: they parse arguments, call a
//! library, and turn errors into a Chinese message and an exit code.

mod account_cmd;
mod audit_cmd;
mod bench;
mod catalogue_cmd;
mod compare_cmd;
mod data_cmd;
mod demo_cmd;
mod his_demo;
mod partitions_cmd;
mod policy_cmd;
mod programmes_demo;
mod resettle_cmd;
mod serve_cmd;
mod settle_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "baozhang", version, about = "保障 — 医保扶贫一站式结算与监测平台 (medical security for the poor)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// 一站式结算：按政策结算理赔 CSV（Settle a claims CSV through every layer of a policy）
    Settle(settle_cmd::SettleArgs),
    /// 政策文件：检查、查看、列出（Check, show or list policies）
    Policy {
        #[command(subcommand)]
        cmd: policy_cmd::PolicyCmd,
    },
    /// 性能测试，打印数字（Benchmarks that print numbers）
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
    /// 行政区划（Administrative divisions）
    Regions {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: data_cmd::RegionsCmd,
    },
    /// 导入名单：poverty、enrolment、dibao、extreme_poor、death、military（CSV 或 XLSX）
    Import {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        /// 名单类型
        kind: String,
        /// 文件（.csv 或 .xlsx）
        file: std::path::PathBuf,
        /// 被拒绝行报告的目录（默认与文件同目录）
        #[arg(long)]
        report_dir: Option<std::path::PathBuf>,
    },
    /// 写出空白名单模板（含表头与一行示例）
    Template {
        kind: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// 生成合成县数据（真实区划，合成人员与名单）
    Generate {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: demo_cmd::GenerateArgs,
    },
    /// 演示：生成并导入会宁县合成数据、比对、结算全年理赔并汇总（主流程）
    Demo {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: demo_cmd::DemoArgs,
    },
    /// 在线结算服务：国家接口（/fsi/api）、REST 接口与接口文档（/api/docs/）
    Serve {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: serve_cmd::ServeArgs,
    },
    /// 结算台账：核对（由分录重算累计值并与存储值比对）
    Ledger {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: serve_cmd::LedgerCmd,
    },
    /// 用户账号：添加、列出
    User {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: serve_cmd::UserCmd,
    },
    /// 定点医药机构：登记（生成签名密钥）、列出
    Institution {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: serve_cmd::InstitutionCmd,
    },
    /// 接入账号（国家网关 x-tif-paasid）：开通、换令牌、授权机构、停用、列出
    Account {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: account_cmd::AccountCmd,
    },
    /// 基金监管审核（R-AUD-1）：对某年度已结算的理赔运行审核规则，保存疑点线索
    Audit {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: audit_cmd::AuditArgs,
    },
    /// 重新结算（年终清算、身份认定滞后、撤销非末笔、依申请救助）：差额记为台账调整分录，列出补付与追回
    Resettle {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: resettle_cmd::ResettleArgs,
    },
    /// 医保目录：导入（目录或医疗机构目录对照）、查询
    Catalogue {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(subcommand)]
        cmd: catalogue_cmd::CatalogueCmd,
    },
    /// 参保数据比对（R-ENR-2）：按村列出问题与处理措施，并与上次比对对照
    Reconcile {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: data_cmd::ReconcileArgs,
    },
    /// PostgreSQL 分区（按年度、地市）：列出、预建、分离归档（Partitions of the yearly tables）
    Partitions {
        #[command(flatten)]
        db: data_cmd::DbArgs,
        #[command(flatten)]
        args: partitions_cmd::PartitionsArgs,
    },
}

/// Exit codes: 0 ok, 1 input rejected (bad file, bad row, bad policy), 2 usage, 3 I/O or internal.
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_IO: u8 = 3;

fn main() -> ExitCode {
    // `baozhang … | head` should end quietly, not panic on a closed pipe.
    // SAFETY: setting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Logs go to stderr, in English, without names or ID numbers; RUST_LOG=info shows more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,sqlx=error".into()))
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Settle(a) => settle_cmd::run(a),
        Cmd::Policy { cmd } => policy_cmd::run(cmd),
        Cmd::Bench { cmd } => bench::run(cmd),
        Cmd::Regions { db, cmd } => data_cmd::regions(db, cmd),
        Cmd::Import { db, kind, file, report_dir } => data_cmd::import(db, kind, file, report_dir),
        Cmd::Template { kind, out } => data_cmd::template(kind, out),
        Cmd::Reconcile { db, args } => data_cmd::reconcile(db, args),
        Cmd::Audit { db, args } => audit_cmd::audit(db, args),
        Cmd::Resettle { db, args } => resettle_cmd::resettle(db, args),
        Cmd::Generate { db, args } => demo_cmd::generate_cmd(db, args),
        Cmd::Demo { db, args } => demo_cmd::demo(db, args),
        Cmd::Serve { db, args } => serve_cmd::serve(db, args),
        Cmd::Ledger { db, cmd } => serve_cmd::ledger(db, cmd),
        Cmd::User { db, cmd } => serve_cmd::user(db, cmd),
        Cmd::Institution { db, cmd } => serve_cmd::institution(db, cmd),
        Cmd::Account { db, cmd } => account_cmd::run(db, cmd),
        Cmd::Catalogue { db, cmd } => catalogue_cmd::run(db, cmd),
        Cmd::Partitions { db, args } => partitions_cmd::run(db, args),
    }
}
