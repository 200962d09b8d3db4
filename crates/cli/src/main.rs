//! `baozhang` — 保障: the one binary of the product. Subcommands are thin: they parse arguments, call a
//! library, and turn errors into a Chinese message and an exit code.

mod bench;
mod policy_cmd;
mod settle_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "baozhang",
    version,
    about = "保障 — 医保扶贫一站式结算与监测平台 (medical security for the poor)"
)]
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
}

/// Exit codes: 0 ok, 1 input rejected (bad file, bad row, bad policy), 2 usage, 3 I/O or internal.
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_IO: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Settle(a) => settle_cmd::run(a),
        Cmd::Policy { cmd } => policy_cmd::run(cmd),
        Cmd::Bench { cmd } => bench::run(cmd),
    }
}
