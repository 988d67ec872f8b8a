//! One function per subcommand: parse what the flags mean, call the stages, report.
//!
//! These are the only places that turn stage results into an [`Outcome`]; the stages themselves
//! return data and never decide exit codes.
//!
//! Layer 7, a front end: one function per subcommand over `check` and `publish`.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::{
    CardArgs, CheckArgs, ConvertArgs, DtypeArg, SampleArgs, ScanArgs, SmokeArgs, ValidateArgs,
};
use crate::config::Overrides;
use crate::env::EnvSnapshot;
use crate::error::Outcome;
use crate::report::Reporter;
use crate::smoke::runtime::OrtSearch;
use crate::{artifacts, check, config, error, provenance, smoke};

/// The configuration file commands read when `--config` is not given.
const DEFAULT_CONFIG: &str = "release.toml";

/// `check`: the whole release bundle, offline. Returns the report; [`check_outcome`] says what
/// it means for the exit code.
pub fn check(
    args: CheckArgs,
    env: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<check::CheckReport> {
    reporter.status("Loading", args.config.config.display().to_string());
    let config = config::load(&args.config.config, &Overrides::from_env(env, args.version))?;
    let from_hub = match &args.baseline {
        Some(path) => path.as_os_str() == "hub",
        None => config.checks.baseline_from_hub,
    };
    let baseline = if from_hub {
        crate::publish::baseline_from_hub(&config, &connection(env)?, reporter)
            .map(|(_, metrics)| check::Baseline::Metrics(metrics))
    } else {
        args.baseline.clone().map(check::Baseline::File)
    };
    let options = check::CheckOptions {
        out: args.out.clone(),
        baseline,
        source: provenance::source_commit(env),
        ort,
    };
    let report = check::run(&config, &options, reporter)?;
    for line in crate::check::summary::console_lines(&report) {
        reporter.line(&line);
    }
    reporter.status(
        "Wrote",
        format!(
            "`{}` ({} files), `manifest.json`, `report.json`, `summary.md`",
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
    } else {
        reporter.refusal(
            &format!(
                "{} problem(s) block the release of `{}`",
                report.refusals.len(),
                config.model.hub_repo
            ),
            &report.refusals,
        );
    }
    Ok(report)
}

/// The exit outcome of a check report.
pub fn check_outcome(report: &check::CheckReport) -> Outcome {
    if report.passed() {
        Outcome::Success
    } else {
        Outcome::Refused
    }
}

/// `smoke`: the smoke stage alone.
pub fn smoke(
    args: SmokeArgs,
    env: &EnvSnapshot,
    ort_search: &OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    let mut config = config::load(&args.config.config, &Overrides::from_env(env, None))?;
    // The flags apply whatever release.toml holds: a GPU job's `--providers cuda
    // --require-provider` must fail without CUDA even when the file has no `[smoke]` table.
    if !args.providers.is_empty() || args.require_provider {
        let smoke = config.smoke.get_or_insert_with(Default::default);
        if !args.providers.is_empty() {
            smoke.providers.clone_from(&args.providers);
        }
        smoke.require_provider |= args.require_provider;
    }
    let out = args.out.unwrap_or_else(|| PathBuf::from("dist/smoke"));
    crate::output::check_dir(&out, "--out")?;
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
        let failed: Vec<String> = report
            .failures()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        reporter.refusal(
            &format!(
                "the smoke test refused `{}`: {} check(s) failed",
                report.generator.file,
                failed.len()
            ),
            &failed,
        );
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
    // Without `--config`: `release.toml` when there is one here, otherwise the bundle's own files
    // (the model card's command runs inside the bundle, where there is no release.toml).
    let source = match args.config {
        Some(path) => smoke::SampleSource::Config(path),
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            smoke::SampleSource::Config(PathBuf::from(DEFAULT_CONFIG))
        }
        None => smoke::SampleSource::Bundle,
    };
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
    let report = smoke::sample(
        &source,
        &Overrides::from_env(env, None),
        ort_search,
        &options,
        reporter,
    )?;
    reporter.status(
        "Wrote",
        format!(
            "{} image(s) and {} grid(s) to `{}`, sampled in {:.3} s on {}",
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
    if let Some(path) = &args.output
        && path.is_dir()
    {
        return Err(error::Problem::new(format!(
            "`-o` `{}` is a folder; it names the file to write",
            path.display()
        ))
        .hint(format!(
            "name the card's file, e.g. `{}`",
            path.join("README.md").display()
        ))
        .into());
    }
    if let Some(path) = &args.output {
        crate::output::refuse_symlinked_folder(path, "-o")?;
    }
    let config = config::load(&args.config.config, &Overrides::from_env(env, None))?;
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
        missing: crate::card::PREVIEW_LACKS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        version: config.version.version.as_ref().map(ToString::to_string),
        source: provenance::source_commit(env),
        metrics,
        ..crate::card::CardInputs::default()
    };
    let context = crate::card::context(&config, &inputs);
    let readme = crate::card::render_for(&config, &context)?;
    let problems = crate::card::validate(&readme);
    reporter.warn(format!(
        "this card is a preview from `{}` alone: it lacks {}; `tinydit-release check` renders \
         the complete card into the bundle",
        args.config.config.display(),
        crate::card::PREVIEW_LACKS.join(", ")
    ));
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
            let (subject, details) = report.refusal();
            reporter.refused(&subject, &details, report.hint().as_deref());
            Outcome::Refused
        }
    })
}

/// `quantize`: weight-only int8 of one ONNX model.
pub fn quantize(args: &crate::cli::QuantizeArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let options = crate::onnx::quantize::QuantizeOptions {
        min_elements: args.min_elements,
    };
    let input = args.input.display().to_string();
    let output = args.output.display().to_string();
    reporter.status("Quantizing", format!("{input} -> {output}"));
    let report =
        crate::onnx::quantize::quantize(&args.input, &input, &args.output, &output, &options)?;
    // The result must pass our own static checks.
    crate::onnx::inspect(&args.output, &output)?;
    reporter.status("Quantized", report.summary());
    if args.json {
        reporter.json(&report)?;
    }
    Ok(Outcome::Success)
}

/// `scan`: security-scan checkpoint files. Every file is scanned and reported, whatever happens
/// to the others; the exit code is the worst result (an unreadable or malformed file is an
/// error, then a refusal, then clean).
pub fn scan(args: &ScanArgs, reporter: &Reporter) -> anyhow::Result<Outcome> {
    use crate::cli::ScanFormat;
    use artifacts::scan::ScanReport;
    let format = if args.json {
        ScanFormat::Json
    } else {
        args.format
    };
    let mut reports = Vec::new();
    for file in &args.files {
        reporter.status("Scanning", file.display().to_string());
        let report = match artifacts::scan::scan_file(file)
            .with_context(|| format!("failed to scan `{}`", file.display()))
        {
            Ok(report) => {
                if format == ScanFormat::Human {
                    for line in report.result_lines() {
                        reporter.data_line(line);
                    }
                }
                report
            }
            Err(err) if args.files.len() == 1 && format == ScanFormat::Human => return Err(err),
            Err(err) => {
                reporter.error(&err);
                ScanReport::failed(file, &err)
            }
        };
        reports.push(report);
    }
    match format {
        ScanFormat::Human => {}
        ScanFormat::Json => reporter.json(&reports)?,
        ScanFormat::Sarif => reporter.json(&crate::sarif::log(&reports))?,
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

/// The connection to the services, from the captured environment; refused when a token or a
/// network setting was given but cannot be used.
fn connection(env: &EnvSnapshot) -> anyhow::Result<crate::publish::Connection> {
    if let Some(problem) = &env.network_problem {
        return Err(problem.clone().into());
    }
    Ok(crate::publish::Connection {
        tokens: env.tokens.clone(),
        endpoints: env.endpoints.clone(),
        run_url: env.run_url.clone(),
        timeouts: env.timeouts,
    })
}

/// What `plan` found, in the forms the action needs.
#[derive(Debug, Clone)]
pub struct PlanReport {
    /// The plan.
    pub plan: crate::publish::plan::ReleasePlan,
    /// The plan as JSON (`plan --json`).
    pub json: serde_json::Value,
    /// The plan as Markdown (what a pull request shows).
    pub markdown: String,
}

/// `plan`: what `publish` would do.
pub fn plan(
    args: &crate::cli::PlanArgs,
    env: &EnvSnapshot,
    reporter: &Reporter,
) -> anyhow::Result<PlanReport> {
    let built = crate::manifest::BuiltRelease::locate(&args.bundle)?;
    plan_built(args, &built, env, reporter)
}

/// `plan` of a located release: `args.bundle` is not looked at again (the action plans the
/// release its own `check` has just built, see [`crate::manifest::BuiltRelease::just_built`]).
pub fn plan_built(
    args: &crate::cli::PlanArgs,
    built: &crate::manifest::BuiltRelease,
    env: &EnvSnapshot,
    reporter: &Reporter,
) -> anyhow::Result<PlanReport> {
    let config = config::load(
        &args.config.config,
        &Overrides::from_env(env, args.version.clone()),
    )?;
    let plan = crate::publish::plan(&config, built, &connection(env)?, reporter)?;
    let report = PlanReport {
        json: serde_json::to_value(&plan).expect("plans serialize to JSON"),
        markdown: crate::publish::plan_markdown::markdown(&plan),
        plan,
    };
    let plan = &report.plan;
    if args.json {
        reporter.json(&report.json)?;
    } else {
        reporter.data(report.markdown.trim_end());
    }
    if !plan.online {
        reporter.warn(
            "planned from the bundle alone: set `HF_TOKEN` and `GITHUB_TOKEN` to compare with \
             what is released",
        );
    }
    for problem in &plan.problems {
        reporter.warn(format!("publish would refuse: {problem}"));
    }
    Ok(report)
}

/// What `publish` ended with.
#[derive(Debug, Clone)]
pub enum PublishResult {
    /// `check` refused the release; nothing was published.
    Refused(Box<check::CheckReport>),
    /// Released, already released, or a clean dry run.
    Done(Box<crate::publish::PublishReceipt>),
}

impl PublishResult {
    /// The exit outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) => Outcome::Refused,
            Self::Done(_) => Outcome::Success,
        }
    }
}

/// `publish`: check (or take `--bundle`), then release to the Hub and GitHub.
pub fn publish(
    args: &crate::cli::PublishArgs,
    env: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<PublishResult> {
    crate::publish::refuse_pull_request_event(env.github_event_name.as_deref())?;
    let built = if let Some(dir) = &args.bundle {
        let built = crate::manifest::BuiltRelease::locate(dir)?;
        crate::publish::check_bundle_source(&built, provenance::source_commit_id(env).as_deref())?;
        built
    } else {
        let check_args = CheckArgs {
            config: args.config.clone(),
            out: args.out.clone(),
            version: args.version.clone(),
            baseline: args.baseline.clone(),
            json: false,
        };
        let report = check(check_args, env, ort, reporter)?;
        if !report.passed() {
            return Ok(PublishResult::Refused(Box::new(report)));
        }
        crate::manifest::BuiltRelease::just_built(&args.out)
    };
    let config = config::load(
        &args.config.config,
        &Overrides::from_env(env, args.version.clone()),
    )?;
    let options = crate::publish::PublishOptions {
        dry_run: args.dry_run,
        allow_dirty: args.allow_dirty,
    };
    let receipt = crate::publish::publish(&config, &built, &connection(env)?, options, reporter)?;
    if receipt.already_released {
        reporter.status(
            "Skipped",
            format!("`{}` is already released: nothing to do", receipt.tag),
        );
    } else if receipt.dry_run {
        reporter.data(crate::publish::plan_markdown::markdown(&receipt.plan).trim_end());
        reporter.status("Skipped", "every write (`--dry-run`)");
    }
    if args.json {
        reporter.json(&receipt)?;
    }
    Ok(PublishResult::Done(Box::new(receipt)))
}

/// `validate`: every release.toml given, fully checked as `check` would read it, nothing else.
/// Every file is reported; the exit code is the worst.
pub fn validate(
    args: &ValidateArgs,
    env: &EnvSnapshot,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    let mut overrides = Overrides::from_env(env, None);
    overrides.allow_missing_inputs = args.allow_missing_inputs;
    let mut failed = 0;
    for file in &args.files {
        match config::load(file, &overrides) {
            Ok(config) => reporter.status(
                "Valid",
                format!("`{}` ({})", file.display(), config.model.hub_repo),
            ),
            Err(err) => {
                failed += 1;
                reporter.error(&err);
            }
        }
    }
    if failed == 0 {
        Ok(Outcome::Success)
    } else {
        Err(error::Problem::new(format!(
            "{failed} of {} file(s) are not valid",
            args.files.len()
        ))
        .into())
    }
}
