//! `tinydit-release`: release a diffusion model from CI.
//!
//! The pipeline runs in stages, each depending only on the outputs of earlier ones:
//! `config` -> `artifacts` -> `smoke` -> `gates` -> `card` -> `publish`. This file only sequences
//! them for each subcommand; the work lives in the stage modules. Nothing here reads the
//! environment (`main.rs` passes an [`EnvSnapshot`]) or prints (everything goes through
//! [`report::Reporter`]).

pub mod artifacts;
pub mod bundle;
pub mod card;
pub mod cli;
pub mod config;
pub mod env;
pub mod error;
pub mod gates;
pub mod onnx;
pub mod report;
pub mod smoke;
pub mod vocab;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context as _;
use cli::{Cli, Command, ConvertArgs, DtypeArg, ScanArgs};
use config::Overrides;
use error::not_built_yet;
use report::Reporter;

/// The result of a command that ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// A check refused the release (exit code 1); the reasons were reported.
    Refused,
}

/// The environment variables the tool reads, captured once by `main.rs`.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    /// `ORT_DYLIB_PATH`.
    pub ort_dylib_path: Option<OsString>,
    /// `TINYDIT_RELEASE_PYTHON`.
    pub python: Option<OsString>,
    /// `VIRTUAL_ENV`.
    pub virtual_env: Option<OsString>,
    /// `GITHUB_REF`.
    pub github_ref: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub github_repository: Option<String>,
    /// The folder of the running executable.
    pub exe_dir: Option<PathBuf>,
}

impl EnvSnapshot {
    /// Where to look for ONNX Runtime, given `--ort-lib`.
    pub fn ort_search(&self, flag: Option<PathBuf>) -> smoke::runtime::OrtSearch {
        let mut pythons = Vec::new();
        if let Some(python) = &self.python {
            pythons.push(python.clone());
        }
        if let Some(venv) = &self.virtual_env {
            pythons.push(PathBuf::from(venv).join("bin/python3").into_os_string());
        }
        pythons.push("python3".into());
        smoke::runtime::OrtSearch {
            flag,
            env: self.ort_dylib_path.clone(),
            exe_dir: self.exe_dir.clone(),
            pythons,
        }
    }

    fn overrides(&self, version: Option<String>) -> Overrides {
        Overrides {
            version,
            github_repository: self.github_repository.clone(),
            github_ref: self.github_ref.clone(),
        }
    }
}

/// Runs one command.
pub fn run(cli: Cli, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let ort_search = env.ort_search(cli.global.ort_lib.clone());
    match cli.command {
        Command::Check(args) => {
            reporter.status("Checking", args.config.config.display().to_string());
            let config = config::load(&args.config.config, &env.overrides(args.version))?;
            reporter.status(
                "Validated",
                format!(
                    "`{}`: {} checkpoint(s), {} ONNX file(s), {} gate(s)",
                    config.file,
                    config.checkpoints.len(),
                    config.onnx.len(),
                    config.gates.len()
                ),
            );
            if !config.onnx.is_empty() {
                let (_env, path) = smoke::runtime::environment(&ort_search)?;
                reporter.status("Loaded", format!("ONNX Runtime from `{}`", path.display()));
            }
            for stage in ["artifacts", "smoke", "gates", "card", "bundle"] {
                reporter.skipped(format!("{stage}: not built yet in this version"));
            }
            Ok(Outcome::Success)
        }
        Command::Schema => {
            reporter.json(&config::schema())?;
            Ok(Outcome::Success)
        }
        Command::Plan(_) => Err(not_built_yet("plan")),
        Command::Publish(_) => Err(not_built_yet("publish")),
        Command::Convert(args) => convert(args, reporter),
        Command::Scan(args) => scan(&args, reporter),
        Command::Smoke(args) => {
            let config = config::load(&args.config.config, &env.overrides(None))?;
            let out = args.out.unwrap_or_else(|| PathBuf::from("dist/smoke"));
            let report = smoke::run(&config, &ort_search, &out, reporter)?;
            for check in &report.checks {
                reporter.check(check.passed, &check.name, &check.detail);
            }
            if args.json {
                reporter.json(&report)?;
            }
            if report.passed() {
                Ok(Outcome::Success)
            } else {
                let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
                reporter.warn(format!(
                    "the smoke test refused `{}`: {} failed",
                    report.generator.file,
                    failed.join(", ")
                ));
                Ok(Outcome::Refused)
            }
        }
        Command::Sample(args) => {
            let config = config::load(&args.config.config, &env.overrides(None))?;
            let options = smoke::SampleOptions {
                model: args.model,
                breeds: args.breed,
                num_images: args.num_images,
                cfg_scale: args.cfg_scale,
                steps: args.steps,
                seed: args.seed,
                out: args.out,
                noise: args.noise,
                save_tensor: args.save_tensor,
            };
            let report = smoke::sample(&config, &ort_search, &options, reporter)?;
            reporter.status(
                "Wrote",
                format!(
                    "{} image(s) and {} grid(s) to `{}`, sampled in {:.2} s on {}",
                    report.images.len(),
                    report.grids.len(),
                    options.out.display(),
                    report.sample_ms / 1000.0,
                    smoke::session::provider_name(report.provider)
                ),
            );
            if let Some(tensor) = &report.tensor {
                reporter.status("Wrote", format!("final state to `{tensor}`"));
            }
            Ok(Outcome::Success)
        }
        Command::Card(_) => Err(not_built_yet("card")),
        Command::Action => Err(not_built_yet("action")),
    }
}

fn convert(args: ConvertArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
    use artifacts::convert::{ConvertOptions, ConvertOutcome};
    let mut opts = ConvertOptions::new(args.input, args.output);
    opts.weights = config::WeightsChoice::parse(&args.weights);
    if !args.strip_prefixes.is_empty() {
        opts.strip_prefixes = args.strip_prefixes;
    }
    opts.dtype = match args.dtype {
        DtypeArg::Keep => config::DtypeChoice::Keep,
        DtypeArg::F32 => config::DtypeChoice::F32,
        DtypeArg::F16 => config::DtypeChoice::F16,
        DtypeArg::Bf16 => config::DtypeChoice::Bf16,
    };
    if let Some(size) = &args.max_shard_size {
        opts.max_shard_size = Some(config::validate::parse_size(size).ok_or_else(|| {
            error::Problem::new(format!("`--max-shard-size` = `{size}` is not a size"))
                .hint("write a size like `5GB`, `500MB` or `2GiB`")
        })?);
    }
    opts.tensor_sha256 = args.tensor_sha256;
    let outcome = artifacts::convert::convert(&opts, reporter)?;
    if args.json {
        reporter.json(&outcome)?;
    }
    Ok(match outcome {
        ConvertOutcome::Converted(_) => Outcome::Success,
        ConvertOutcome::Refused(report) => {
            reporter.refused(&report);
            Outcome::Refused
        }
    })
}

fn scan(args: &ScanArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let mut reports = Vec::new();
    for file in &args.files {
        reporter.status("Scanning", file.display().to_string());
        let report = artifacts::scan::scan_file(file)
            .with_context(|| format!("failed to scan `{}`", file.display()))?;
        if !args.json {
            reporter.scan_result(&report);
        }
        reports.push(report);
    }
    if args.json {
        reporter.json(&reports)?;
    }
    if reports.iter().any(artifacts::scan::ScanReport::is_refused) {
        return Ok(Outcome::Refused);
    }
    if let Some(corrupt) = reports.iter().find(|r| !r.is_clean()) {
        return Err(error::Problem::new(format!(
            "`{}` is not a valid checkpoint: {}",
            corrupt.file, corrupt.findings[0]
        ))
        .into());
    }
    Ok(Outcome::Success)
}
