use clap::Subcommand;
use std::process::ExitCode;
#[derive(Subcommand)]
pub enum BenchCmd {
    Settle,
}
pub fn run(_c: BenchCmd) -> ExitCode {
    ExitCode::SUCCESS
}
