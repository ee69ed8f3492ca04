use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let _ = firedrill::PROCESS_STARTED.set(std::time::Instant::now());
    let cli = firedrill::cli::Cli::parse();
    firedrill::cli::run(cli)
}
