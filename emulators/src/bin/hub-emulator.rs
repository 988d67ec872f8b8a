//! `hub-emulator --data DIR [--port N] [--seed FILE]`: the Hugging Face Hub emulator.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use emulators::hub::{self, HubSeed};

/// A stateful Hugging Face Hub emulator on 127.0.0.1 (API and a CDN origin).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Folder holding the state, blobs, the local CAS, faults.json and the request log.
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
    emulators::server::run_binary::<HubSeed, _, _>(
        "hub-emulator",
        &args.data,
        args.port,
        args.seed.as_deref(),
        |data, port, seed| async move { hub::run(&data, port, seed).await },
    )
}
