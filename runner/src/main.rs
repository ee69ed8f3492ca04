use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = firedrill::cli::Cli::parse();
    firedrill::cli::run(cli)
}
