//! One function per subcommand: parse what the flags mean, call the stages, report.
//!
//! These are the only places that turn stage results into an [`Outcome`]; the stages themselves
//! return data and never decide exit codes.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::{CardArgs, CheckArgs, ConvertArgs, DtypeArg, SampleArgs, ScanArgs, SmokeArgs};
use crate::report::Reporter;
use crate::smoke::runtime::OrtSearch;
use crate::{EnvSnapshot, Outcome, artifacts, check, config, error, smoke};

/// `check`: the whole release bundle, offline.
pub fn check(
    args: CheckArgs,
    env: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    reporter.status("Loading", args.config.config.display().to_string());
    let config = config::load(&args.config.config, &env.overrides(args.version))?;
    let options = check::CheckOptions {
        out: args.out.clone(),
        baseline: args.baseline,
        git_commit: env.git_commit(),
        ort,
    };
    let report = check::run(&config, &options, reporter)?;
    for line in check::console_lines(&report) {
        reporter.line(&line);
    }
    reporter.status(
        "Wrote",
        format!(
            "`{}` ({} files), `report.json`, `summary.md`",
            args.out.join("bundle").display(),
            report.bundle.files.len()
        ),
    );
    if args.json {
        reporter.json(&report)?;
    }
    if report.passed() {
        reporter.status(
            "Passed",
            format!("`{}` is ready to publish", config.model.hub_repo),
        );
        Ok(Outcome::Success)
    } else {
        for reason in &report.refusals {
            reporter.warn(reason);
        }
        reporter.warn(format!(
            "refused: {} problem(s) block the release",
            report.refusals.len()
        ));
        Ok(Outcome::Refused)
    }
}

/// `smoke`: the smoke stage alone.
pub fn smoke(
    args: SmokeArgs,
    env: &EnvSnapshot,
    ort_search: &OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    let config = config::load(&args.config.config, &env.overrides(None))?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("dist/smoke"));
    let report = smoke::run(&config, ort_search, &out, reporter)?;
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

/// `sample`: generate images.
pub fn sample(
    args: SampleArgs,
    env: &EnvSnapshot,
    ort_search: &OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
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
    let report = smoke::sample(&config, ort_search, &options, reporter)?;
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

/// `card`: render the model card from the configuration and the declared training metrics alone.
///
/// Nothing is converted or run, so the sections that need measured data (architecture,
/// samples, latency, files) are left out; `check` renders the complete card into the bundle.
pub fn card(args: &CardArgs, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let config = config::load(&args.config.config, &env.overrides(None))?;
    let mut metrics = crate::gates::Metrics::new();
    for (name, source) in &config.metrics {
        let value = crate::gates::read_metric_file(
            &source.file.path,
            &source.file.configured,
            &source.path,
        )?;
        metrics.insert(name.clone(), value);
    }
    let inputs = crate::card::CardInputs {
        version: config.version.version.as_ref().map(ToString::to_string),
        git_commit: env.git_commit(),
        metrics,
        ..crate::card::CardInputs::default()
    };
    let context = crate::card::context(&config, &inputs);
    let readme = crate::card::render_for(&config, &context)?;
    let problems = crate::card::validate(&readme);
    match &args.output {
        Some(path) => {
            crate::output::write_atomically(path, readme.as_bytes())?;
            reporter.status("Rendered", format!("`{}`", path.display()));
        }
        None => reporter.data(readme.trim_end()),
    }
    if problems.is_empty() {
        Ok(Outcome::Success)
    } else {
        for problem in &problems {
            reporter.warn(format!(
                "the card's metadata would be rejected by the Hub: {problem}"
            ));
        }
        Ok(Outcome::Refused)
    }
}

/// `convert`: one checkpoint to safetensors.
pub fn convert(args: ConvertArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
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
    if let Some(size) = &args.max_output_bytes {
        opts.max_output_bytes = Some(config::validate::parse_size(size).ok_or_else(|| {
            error::Problem::new(format!("`--max-output-bytes` = `{size}` is not a size"))
                .hint("write a size like `2GB`, `500MB` or `2GiB`")
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

/// `scan`: security-scan checkpoint files. Every file is scanned and reported, whatever happens
/// to the others; the exit code is the worst result (an unreadable or malformed file is an
/// error, then a refusal, then clean).
pub fn scan(args: &ScanArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
    use artifacts::scan::ScanReport;
    let mut reports = Vec::new();
    for file in &args.files {
        reporter.status("Scanning", file.display().to_string());
        let report = match artifacts::scan::scan_file(file)
            .with_context(|| format!("failed to scan `{}`", file.display()))
        {
            Ok(report) => {
                if !args.json {
                    reporter.scan_result(&report);
                }
                report
            }
            Err(err) if args.files.len() == 1 => return Err(err),
            Err(err) => {
                reporter.error(&err);
                ScanReport::failed(file, &err)
            }
        };
        reports.push(report);
    }
    if args.json {
        reporter.json(&reports)?;
    }
    let broken: Vec<&ScanReport> = reports
        .iter()
        .filter(|r| r.error.is_some() || (!r.is_clean() && !r.is_refused()))
        .collect();
    match broken.as_slice() {
        [] => {}
        [one] if reports.len() == 1 => {
            return Err(error::Problem::new(format!(
                "`{}` is not a valid checkpoint: {}",
                one.file,
                one.findings
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
            .into());
        }
        many => {
            let names: Vec<String> = many.iter().map(|r| format!("`{}`", r.file)).collect();
            return Err(error::Problem::new(format!(
                "{} of {} files could not be scanned or are not valid checkpoints: {}",
                many.len(),
                reports.len(),
                names.join(", ")
            ))
            .hint("every file was still scanned; the findings above are complete")
            .into());
        }
    }
    if reports.iter().any(ScanReport::is_refused) {
        return Ok(Outcome::Refused);
    }
    Ok(Outcome::Success)
}
