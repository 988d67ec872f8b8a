//! `github-emulator --data DIR [--port N] [--seed FILE]`: the GitHub REST emulator.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use emulators::github::{self, GithubSeed};

/// A stateful GitHub REST emulator on 127.0.0.1 (API and an upload origin).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Folder holding the state, asset bytes, faults.json and the request log.
    #[arg(long)]
    data: PathBuf,
    /// API port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// JSON seed applied at start: {"config": {...}, "tokens": [...], "repos": [...]}.
    #[arg(long)]
    seed: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    emulators::server::run_binary::<GithubSeed, _, _>(
        "github-emulator",
        &args.data,
        args.port,
        args.seed.as_deref(),
        |data, port, seed| async move { github::run(&data, port, seed).await },
    )
}
