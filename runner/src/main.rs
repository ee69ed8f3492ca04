use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let _ = firedrill::drill::gate::PROCESS_STARTED.set(std::time::Instant::now());
    let cli = firedrill::cli::Cli::parse();
    firedrill::cli::run(cli)
}
