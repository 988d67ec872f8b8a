//! `hub-emulator --data DIR [--port N] [--seed FILE]`: the Hugging Face Hub emulator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
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
    let result = (|| -> anyhow::Result<()> {
        let seed: Option<HubSeed> = match &args.seed {
            Some(path) => Some(
                emulators::util::read_json(path)?
                    .with_context(|| format!("seed file {} does not exist", path.display()))?,
            ),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(hub::run(&args.data, args.port, seed))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "hub-emulator: {e:#}");
            ExitCode::from(2)
        }
    }
}
