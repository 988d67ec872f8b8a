//! `check`: build and judge the whole release offline, with no token.
//!
//! The stages run in this order, each from the outputs of the ones before:
//! 1. config (already loaded by the caller);
//! 2. artifacts: convert every checkpoint (scan first; a refused checkpoint is recorded, not
//!    fatal, so the rest of the report still appears), statically inspect and copy every ONNX
//!    file with its external data;
//! 3. smoke: run the generator, write samples into the bundle;
//! 4. metrics and gates: training metrics from `[metrics]`, measured `checkpoint.*`,
//!    `artifact.*` and `smoke.*` metrics, the built-in `[checks]`, then every `[[gate]]`;
//! 5. card: render, parse back, validate;
//! 6. bundle: config.json, generation_config.json, metrics.json (their contents are
//!    `bundle`'s), included files, and `release.json`, the release identity (`identity`);
//! 7. verdict: the release manifest (`manifest.json`), `report.json` and `summary.md` next to
//!    the bundle (how the summary looks is `summary.rs`'s; the report's types are in `report.rs`).
//!
//! Refusals (a failed gate, check or scan) make the outcome `Refused`; anything that stops a
//! stage from running (I/O, a corrupt file, a bad model) is an error and leaves no bundle.
//!
//! Layer 6, a pipeline: imports every stage, the bundle and the manifest, never a front end.

mod report;
pub mod summary;
mod variants;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::artifacts::convert::{self, ConvertOptions, ConvertOutcome};
use crate::bundle::{self, BundleMetrics, Staging, pretty_json};
use crate::card::{self, CardInputs, CheckpointFacts, SampleImage};
use crate::config::{OnnxRole, ReleaseConfig, Severity};
use crate::gates::{self, Metrics};
use crate::identity::{IDENTITY_FILE, InputFile, ReleaseIdentity};
use crate::manifest::Verdict;
use crate::names::{ArtifactKind, CheckId, metric};
use crate::output::write_atomically;
use crate::report::Reporter;
use crate::smoke::{self, SmokeReport, runtime::OrtSearch};

pub use self::report::{ArtifactEntry, CheckReport, CheckResult, REPORT_SCHEMA_VERSION};

/// What `check` needs besides the configuration.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Output folder: `bundle/`, `manifest.json`, `report.json`, `summary.md`.
    pub out: PathBuf,
    /// The previous release's metrics, for regression gates.
    pub baseline: Option<Baseline>,
    /// The Git commit being released, for provenance.
    pub source: Option<crate::provenance::SourceCommit>,
    /// Where to find ONNX Runtime.
    pub ort: OrtSearch,
}

/// Where the regression baseline comes from.
#[derive(Debug, Clone)]
pub enum Baseline {
    /// A `metrics.json` on disk (`--baseline FILE`).
    File(PathBuf),
    /// Metrics already read (from the Hub's latest release).
    Metrics(Metrics),
}

/// What the stages found so far: metrics for the gates and checks for the report.
#[derive(Default)]
struct Findings {
    metrics: Metrics,
    checks: Vec<CheckResult>,
}

impl Findings {
    fn check(
        &mut self,
        id: CheckId,
        subject: Option<&str>,
        passed: bool,
        detail: impl Into<String>,
    ) {
        self.checks.push(CheckResult {
            name: id.name(subject),
            id,
            passed,
            severity: Severity::Error,
            detail: detail.into(),
        });
    }
}

/// Runs every stage of a release except publishing.
pub fn run(
    config: &ReleaseConfig,
    options: &CheckOptions,
    reporter: &Reporter,
) -> anyhow::Result<CheckReport> {
    let staging = Staging::new(&options.out)?;
    let mut found = Findings::default();
    if let Some(source) = &options.source
        && let Some(why) = &source.dirty_unknown
    {
        reporter.warn(format!(
            "cannot tell whether tracked files were modified since commit `{}`: {why}; \
             `publish` will refuse this bundle unless `--allow-dirty` is given",
            source.commit
        ));
    }
    let mut inputs = Inputs::default();

    // 2. Artifacts.
    let (mut artifacts, facts) =
        convert_checkpoints(config, &staging, &mut found, &mut inputs, reporter)?;
    artifacts.extend(copy_onnx_files(config, &staging, &mut inputs, reporter)?);
    let (variant_artifacts, variants) = variants::build(config, &staging, reporter)?;
    artifacts.extend(variant_artifacts);

    // 3. Smoke.
    let smoke_report = if config.smoke.is_some() {
        let samples_dir = staging.path_for(&config.bundle.samples_dir)?;
        let report = smoke::run(config, &options.ort, &samples_dir, reporter)?;
        found.metrics.extend(report.metrics.clone());
        for check in &report.checks {
            // Golden parity is about the export, not the samples: it always blocks.
            let blocks = config.checks.valid_samples || check.name == "golden";
            found.checks.push(CheckResult {
                name: CheckId::Smoke.name(Some(&check.name)),
                id: CheckId::Smoke,
                passed: check.passed,
                severity: if blocks {
                    Severity::Error
                } else {
                    Severity::Warn
                },
                detail: check.detail.clone(),
            });
        }
        Some(report)
    } else {
        reporter.skipped("smoke: no `[smoke]` table");
        None
    };
    let mut variant_reports = if config.smoke.is_some() {
        let samples_dir = staging.path_for(&config.bundle.samples_dir)?;
        smoke::agreement::run(config, &options.ort, &variants, &samples_dir, reporter)?
    } else {
        Vec::new()
    };
    for variant in &mut variant_reports {
        // `report.json` names the grid by its bundle path, as the card links it.
        variant.grid = variant
            .grid
            .take()
            .map(|g| format!("{}/{g}", config.bundle.samples_dir));
        found.metrics.extend(variant.metrics.clone());
        found.check(
            CheckId::Smoke,
            Some(&format!("variant-{}", variant.name)),
            variant.passed,
            variant.detail.clone(),
        );
    }

    // 4. Metrics and gates.
    for (name, source) in &config.metrics {
        let value =
            gates::read_metric_file(&source.file.path, &source.file.configured, &source.path)?;
        found.metrics.insert(name.clone(), value);
    }
    let sizes = staging.sizes()?;
    measure_sizes(config, &artifacts, &sizes, &mut found);
    let baseline = match &options.baseline {
        Some(Baseline::File(path)) => Some(read_baseline(path)?),
        Some(Baseline::Metrics(metrics)) => Some(metrics.clone()),
        None => None,
    };
    reporter.status("Gating", format!("{} gate(s)", config.gates.len()));
    let gate_report = gates::evaluate(&config.gates, &found.metrics, baseline.as_ref());

    // 5. Card.
    reporter.status("Rendering", "README.md");
    let version = config.version.version.as_ref().map(ToString::to_string);
    let mut card_inputs = card_inputs(
        config,
        options,
        version.as_deref(),
        facts.as_ref(),
        &found,
        smoke_report.as_ref(),
        &sizes,
    );
    card_inputs.variants = variants::card_variants(&variant_reports);
    let readme = card::render_for(config, &card::context(config, &card_inputs))?;
    let problems = card::validate(&readme);
    let detail = if problems.is_empty() {
        "front matter valid".to_owned()
    } else {
        problems.join("; ")
    };
    found.check(CheckId::Card, None, problems.is_empty(), detail);
    staging.write("README.md", readme.as_bytes())?;

    // 6. Bundle.
    for include in &config.bundle.include {
        let name = include
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .expect("validated include paths name a file");
        staging.copy(&name, &include.path)?;
    }
    let model_config = bundle::model_config(
        config,
        facts.as_ref().map(|f| &f.architecture),
        facts.as_ref().and_then(|f| f.parameters),
    );
    staging.write("config.json", &pretty_json(&model_config))?;
    if let Some(generation) = bundle::generation_config(config) {
        staging.write("generation_config.json", &pretty_json(&generation))?;
    }
    let bundle_metrics = BundleMetrics {
        version: version.clone(),
        metrics: found.metrics.clone(),
    };
    staging.write("metrics.json", &pretty_json(&bundle_metrics))?;
    let identity = release_identity(config, options, version.clone(), inputs)?;
    staging.write(IDENTITY_FILE, &identity.to_json())?;
    if config.checks.files_exist {
        check_files_exist(config, &artifacts, &readme, &staging.sizes()?, &mut found);
    }
    let manifest = staging.finish(&options.out)?;
    let space = match &config.space {
        Some(space) => Some(crate::manifest::SpaceListing {
            repo: space.repo.clone(),
            files: write_space(config, &manifest, &options.out, reporter)?,
        }),
        None => None,
    };

    let mut refusals: Vec<String> = found
        .checks
        .iter()
        .filter(|c| !c.passed && c.severity == Severity::Error)
        .map(|c| format!("check `{}` failed: {}", c.name, c.detail))
        .collect();
    refusals.extend(
        gate_report
            .blocking()
            .map(|g| format!("gate `{}` {} failed: {}", g.metric, g.kind, g.message)),
    );
    let report = CheckReport {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: format!("tinydit-release {}", env!("CARGO_PKG_VERSION")),
        model: config.model.name.clone(),
        hub_repo: config.model.hub_repo.clone(),
        github_repo: config.model.github_repo.clone(),
        tag: config
            .version
            .version
            .as_ref()
            .map(|v| format!("{}{v}", config.version.tag_prefix)),
        version,
        source: options.source.clone(),
        outcome: if refusals.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Refused
        },
        refusals,
        artifacts,
        metrics: found.metrics,
        baseline,
        checks: found.checks,
        gates: gate_report,
        gate_positions: config.gates.iter().map(|g| g.position).collect(),
        smoke: smoke_report,
        variants: variant_reports,
        bundle: manifest,
        space,
        identity: Some(identity.identity.clone()),
    };
    // The verdict is known: record it with the exact bytes it applies to.
    write_atomically(
        &options.out.join(crate::manifest::MANIFEST_FILE),
        &pretty_json(&report.manifest()),
    )?;
    write_atomically(&options.out.join("report.json"), &pretty_json(&report))?;
    write_atomically(
        &options.out.join("summary.md"),
        summary::markdown(&report).as_bytes(),
    )?;
    Ok(report)
}

/// The demo Space into `<out>/space/`, its front matter checked like the card's; its files with
/// their sizes and digests, sorted by path, for the manifest.
fn write_space(
    config: &ReleaseConfig,
    manifest: &bundle::Manifest,
    out: &Path,
    reporter: &Reporter,
) -> anyhow::Result<Vec<bundle::BundleFile>> {
    let files = crate::space::files(config, manifest)?;
    let readme = files
        .iter()
        .find(|(name, _)| name == "README.md")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    let problems = crate::space::validate(&readme);
    if !problems.is_empty() {
        return Err(crate::error::Problem::new(format!(
            "the Space's README.md is not valid: {}",
            problems.join("; ")
        ))
        .into());
    }
    crate::space::write(out, &files)?;
    reporter.status(
        "Wrote",
        format!(
            "the Space `{}` ({} files)",
            crate::space::SPACE_DIR,
            files.len()
        ),
    );
    let mut listing: Vec<bundle::BundleFile> = files
        .iter()
        .map(|(name, bytes)| bundle::BundleFile {
            path: name.clone(),
            bytes: bytes.len() as u64,
            sha256: crate::digest::sha256_hex(bytes),
        })
        .collect();
    listing.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// Scans and converts every checkpoint into the bundle. A refused checkpoint is a failed check,
/// not an error, so the rest of the report still appears. The first converted checkpoint gives
/// the `checkpoint.*` metrics and the card's architecture.
fn convert_checkpoints(
    config: &ReleaseConfig,
    staging: &Staging,
    found: &mut Findings,
    inputs: &mut Inputs,
    reporter: &Reporter,
) -> anyhow::Result<(Vec<ArtifactEntry>, Option<CheckpointFacts>)> {
    let mut artifacts = Vec::new();
    let mut facts = None;
    for checkpoint in &config.checkpoints {
        reporter.status("Converting", format!("`{}`", checkpoint.path.configured));
        let options = ConvertOptions {
            input: checkpoint.path.path.clone(),
            output: staging.path_for(&checkpoint.output)?,
            weights: checkpoint.weights.clone(),
            strip_prefixes: checkpoint.strip_prefixes.clone(),
            dtype: checkpoint.dtype,
            max_shard_size: checkpoint.max_shard_size,
            metadata: checkpoint.metadata.clone(),
            tensor_sha256: false,
            max_output_bytes: None,
        };
        let outcome = convert::convert(&options, reporter)
            .with_context(|| format!("failed to convert `{}`", checkpoint.path.configured))?;
        let scanned = Some(checkpoint.path.configured.as_str());
        let report = match outcome {
            ConvertOutcome::Refused(scan) => {
                let detail = format!(
                    "refused: {} finding(s); globals: {}",
                    scan.findings.len(),
                    scan.globals().join(", ")
                );
                found.check(CheckId::Scan, scanned, false, detail);
                continue;
            }
            ConvertOutcome::Converted(report) => report,
        };
        // The converter hashed the input already; the identity reuses that digest.
        inputs
            .hashed
            .push((checkpoint.path.path.clone(), report.source_sha256.clone()));
        found.check(CheckId::Scan, scanned, true, "no findings");
        let m = &report.metrics;
        if facts.is_none() {
            found.metrics.extend(m.named());
            facts = Some(CheckpointFacts {
                architecture: report.checkpoint_config.clone(),
                parameters: Some(m.param_count),
                steps: m.step.map(|s| s as f64),
                final_loss: m.loss,
            });
        }
        if config.checks.finite_weights {
            let detail = format!(
                "`{}`: {} NaN, {} Inf values",
                checkpoint.output, m.nan_count, m.inf_count
            );
            found.check(
                CheckId::FiniteWeights,
                None,
                m.nan_count + m.inf_count == 0,
                detail,
            );
        }
        artifacts.push(ArtifactEntry {
            source: checkpoint.path.configured.clone(),
            kind: ArtifactKind::Safetensors,
            outputs: report
                .outputs
                .iter()
                .map(|o| bundle_relative(staging.root(), &o.path))
                .collect(),
        });
    }
    Ok((artifacts, facts))
}

/// Input files found while the stages run, beyond those the configuration names.
#[derive(Default)]
struct Inputs {
    /// Inputs whose sha256 a stage computed already (converted checkpoints).
    hashed: Vec<(PathBuf, String)>,
    /// ONNX external data files.
    external: Vec<PathBuf>,
}

/// The release identity: the tool, version, source commit, `release.toml` and every input
/// file with its sha256 (see `identity`). Inputs a stage hashed already are not read again.
fn release_identity(
    config: &ReleaseConfig,
    options: &CheckOptions,
    version: Option<String>,
    inputs: Inputs,
) -> anyhow::Result<ReleaseIdentity> {
    let mut files = vec![InputFile {
        path: config.repo_relative_file(),
        bytes: config.text.bytes,
        sha256: config.text.sha256.clone(),
    }];
    let configured = config.input_files().into_iter().map(|i| i.path.clone());
    for path in configured.chain(inputs.external) {
        let relative = config.repo_relative(&path);
        if files.iter().any(|f| f.path == relative) {
            continue;
        }
        let (bytes, sha256) = match inputs.hashed.iter().find(|(p, _)| *p == path) {
            Some((_, sha256)) => (
                std::fs::metadata(&path)
                    .with_context(|| format!("failed to read `{}`", path.display()))?
                    .len(),
                sha256.clone(),
            ),
            None => bundle::hash_file(&path)?,
        };
        files.push(InputFile {
            path: relative,
            bytes,
            sha256,
        });
    }
    Ok(ReleaseIdentity::new(
        format!("tinydit-release {}", env!("CARGO_PKG_VERSION")),
        version,
        options.source.clone(),
        files,
    ))
}

/// Inspects every ONNX file (refusing bad external data by name) and copies it into the bundle
/// with its external data files, under the names the model refers to.
fn copy_onnx_files(
    config: &ReleaseConfig,
    staging: &Staging,
    inputs: &mut Inputs,
    reporter: &Reporter,
) -> anyhow::Result<Vec<ArtifactEntry>> {
    let mut artifacts = Vec::new();
    for onnx in &config.onnx {
        reporter.status("Checking", format!("`{}`", onnx.path.configured));
        let summary = crate::onnx::inspect(&onnx.path.path, &onnx.path.configured)?;
        staging.copy(&onnx.output, &onnx.path.path)?;
        let mut outputs = vec![onnx.output.clone()];
        let source_dir = onnx.path.path.parent().unwrap_or(Path::new("."));
        let target_dir = parent_of(&onnx.output);
        let locations: std::collections::BTreeSet<&str> = summary
            .external_data
            .iter()
            .map(|e| e.location.as_str())
            .collect();
        for location in locations {
            let bundle_path = join_bundle(&target_dir, location);
            staging.copy(&bundle_path, &source_dir.join(location))?;
            inputs.external.push(source_dir.join(location));
            outputs.push(bundle_path);
        }
        artifacts.push(ArtifactEntry {
            source: onnx.path.configured.clone(),
            kind: ArtifactKind::Onnx,
            outputs,
        });
    }
    Ok(artifacts)
}

/// `artifact.<bundle path>.size_mb` for every artifact (with its shards or external data), and
/// the size-limit checks of `[checks]`.
fn measure_sizes(
    config: &ReleaseConfig,
    artifacts: &[ArtifactEntry],
    sizes: &BTreeMap<String, u64>,
    found: &mut Findings,
) {
    for artifact in artifacts {
        let bytes: u64 = artifact.outputs.iter().filter_map(|p| sizes.get(p)).sum();
        let size_mb = bytes as f64 / 1e6;
        // Sharded weights are named by their configured output, not the first shard.
        let name = config
            .checkpoints
            .iter()
            .find(|c| c.path.configured == artifact.source)
            .map_or(artifact.outputs[0].as_str(), |c| c.output.as_str());
        found
            .metrics
            .insert(metric::artifact_size_mb(name), size_mb);
        if !config.checks.size_limits {
            continue;
        }
        let role = config
            .onnx
            .iter()
            .find(|o| o.path.configured == artifact.source)
            .map(|o| o.role);
        let limit = match (artifact.kind, role) {
            (ArtifactKind::Safetensors, _) => config.checks.max_weights_mb,
            (_, Some(OnnxRole::Generator)) => config.checks.max_generator_mb,
            (_, Some(OnnxRole::Classifier)) => config.checks.max_classifier_mb,
            _ => continue,
        };
        let detail = format!(
            "{} MB (limit {} MB)",
            gates::fmt(size_mb),
            gates::fmt(limit)
        );
        found.check(CheckId::Size, Some(name), size_mb <= limit, detail);
    }
}

/// What the card is rendered from, gathered from every earlier stage.
fn card_inputs(
    config: &ReleaseConfig,
    options: &CheckOptions,
    version: Option<&str>,
    facts: Option<&CheckpointFacts>,
    found: &Findings,
    smoke_report: Option<&SmokeReport>,
    sizes: &BTreeMap<String, u64>,
) -> CardInputs {
    let samples_dir = &config.bundle.samples_dir;
    CardInputs {
        version: version.map(str::to_owned),
        source: options.source.clone(),
        checkpoint: facts.cloned(),
        metrics: found.metrics.clone(),
        provider: smoke_report.map(|s| smoke::session::provider_name(s.provider).to_owned()),
        samples: smoke_report
            .iter()
            .flat_map(|s| s.samples.iter())
            .map(|s| SampleImage {
                class_index: s.class,
                path: format!("{samples_dir}/{}", s.png),
            })
            .collect(),
        gallery: smoke_report
            .and_then(SmokeReport::gallery)
            .map(|g| format!("{samples_dir}/{g}")),
        files: sizes
            .iter()
            .map(|(path, bytes)| (path.clone(), *bytes))
            .collect(),
        variants: Vec::new(),
        missing: Vec::new(),
    }
}

/// Every artifact output and every image the card links is in the bundle.
fn check_files_exist(
    config: &ReleaseConfig,
    artifacts: &[ArtifactEntry],
    readme: &str,
    staged: &BTreeMap<String, u64>,
    found: &mut Findings,
) {
    let mut missing: Vec<String> = artifacts
        .iter()
        .flat_map(|a| a.outputs.iter())
        .chain(config.checkpoints.iter().map(|c| &c.output))
        .filter(|p| !staged.contains_key(*p) && !is_sharded(staged, p))
        .cloned()
        .collect();
    missing.extend(
        card::image_links(readme)
            .into_iter()
            .filter(|link| !staged.contains_key(link))
            .map(|link| format!("{link} (linked from README.md)")),
    );
    missing.sort();
    missing.dedup();
    let detail = if missing.is_empty() {
        "every artifact and linked image is in the bundle".to_owned()
    } else {
        format!("missing: {}", missing.join(", "))
    };
    found.check(CheckId::FilesExist, None, missing.is_empty(), detail);
}

/// Reads a previous release's `metrics.json` (`{"version": ..., "metrics": {...}}`).
fn read_baseline(path: &Path) -> anyhow::Result<Metrics> {
    let shown = path.display().to_string();
    let text = crate::input::read_text(path, &shown, "`--baseline`", crate::input::MAX_TEXT_BYTES)
        .context("failed to read the baseline")?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the baseline `{}` is not JSON", path.display()))?;
    let metrics = value.get("metrics").unwrap_or(&value);
    serde_json::from_value(metrics.clone()).with_context(|| {
        format!(
            "the baseline `{}` must map metric names to numbers (a release's metrics.json)",
            path.display()
        )
    })
}

fn bundle_relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn parent_of(bundle_path: &str) -> String {
    bundle_path
        .rsplit_once('/')
        .map(|(dir, _)| dir.to_owned())
        .unwrap_or_default()
}

fn join_bundle(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A sharded checkpoint output is present when its index is.
fn is_sharded(staged: &BTreeMap<String, u64>, output: &str) -> bool {
    staged.contains_key(&join_bundle(
        &parent_of(output),
        "model.safetensors.index.json",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_paths_join_and_split() {
        assert_eq!(parent_of("onnx/a.onnx"), "onnx");
        assert_eq!(parent_of("a.onnx"), "");
        assert_eq!(join_bundle("onnx", "a.data"), "onnx/a.data");
        assert_eq!(join_bundle("", "a.data"), "a.data");
    }
}
