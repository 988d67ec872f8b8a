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
//! 6. bundle: config.json, generation_config.json, metrics.json, included files, the manifest;
//!    then `report.json` and `summary.md` next to it.
//!
//! Refusals (a failed gate, check or scan) make the outcome `Refused`; anything that stops a
//! stage from running (I/O, a corrupt file, a bad model) is an error and leaves no bundle.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::artifacts::convert::{self, ConvertOptions, ConvertOutcome};
use crate::bundle::{Manifest, Staging};
use crate::card::{self, CardInputs, CheckpointFacts, SampleImage};
use crate::config::{OnnxRole, ReleaseConfig, Severity};
use crate::gates::{self, GateReport, Metrics};
use crate::output::write_atomically;
use crate::report::Reporter;
use crate::smoke::{self, SmokeReport, runtime::OrtSearch};

/// Version of the `report.json` layout; bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// What `check` needs besides the configuration.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Output folder: `bundle/`, `manifest.json`, `report.json`, `summary.md`.
    pub out: PathBuf,
    /// The previous release's `metrics.json`, for regression gates.
    pub baseline: Option<PathBuf>,
    /// The Git commit being released, for provenance.
    pub git_commit: Option<String>,
    /// Where to find ONNX Runtime.
    pub ort: OrtSearch,
}

/// One built-in or stage check, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// `scan:<file>`, `finite-weights`, `size:<bundle path>`, `smoke:<name>`, `card`, `files-exist`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Whether a failure blocks the release.
    pub severity: Severity,
    /// What was found.
    pub detail: String,
}

/// An artifact of the release as it went into the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactEntry {
    /// The source file, relative to the repository.
    pub source: String,
    /// `safetensors`, `onnx` or `file`.
    pub kind: &'static str,
    /// Bundle paths produced from it (shards, external data).
    pub outputs: Vec<String>,
}

/// `report.json`: everything `check` found, in a stable, documented layout (docs/report.md).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `tinydit-release X.Y.Z`.
    pub tool: String,
    /// `[model] name`.
    pub model: String,
    /// Hub repository id.
    pub hub_repo: String,
    /// Release version, when known.
    pub version: Option<String>,
    /// `pass` or `refused`.
    pub outcome: &'static str,
    /// Every reason the release is refused, one sentence each.
    pub refusals: Vec<String>,
    /// The artifacts.
    pub artifacts: Vec<ArtifactEntry>,
    /// Every metric of this release.
    pub metrics: Metrics,
    /// The previous release's metrics, when given.
    pub baseline: Option<Metrics>,
    /// Built-in and stage checks.
    pub checks: Vec<CheckResult>,
    /// The gates.
    pub gates: GateReport,
    /// The smoke test, when configured.
    pub smoke: Option<SmokeReport>,
    /// The bundle's files.
    pub bundle: Manifest,
}

impl CheckReport {
    /// No refusal.
    pub fn passed(&self) -> bool {
        self.refusals.is_empty()
    }
}

/// What the stages found so far: metrics for the gates and checks for the report.
#[derive(Default)]
struct Findings {
    metrics: Metrics,
    checks: Vec<CheckResult>,
}

impl Findings {
    fn check(&mut self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.checks.push(CheckResult {
            name: name.into(),
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

    // 2. Artifacts.
    let (mut artifacts, facts) = convert_checkpoints(config, &staging, &mut found, reporter)?;
    artifacts.extend(copy_onnx_files(config, &staging, reporter)?);

    // 3. Smoke.
    let smoke_report = if config.smoke.is_some() {
        let samples_dir = staging.path_for(&config.bundle.samples_dir)?;
        let report = smoke::run(config, &options.ort, &samples_dir, reporter)?;
        found.metrics.extend(report.metrics.clone());
        for check in &report.checks {
            // Golden parity is about the export, not the samples: it always blocks.
            let blocks = config.checks.valid_samples || check.name == "golden";
            found.checks.push(CheckResult {
                name: format!("smoke:{}", check.name),
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

    // 4. Metrics and gates.
    for (name, source) in &config.metrics {
        let value =
            gates::read_metric_file(&source.file.path, &source.file.configured, &source.path)?;
        found.metrics.insert(name.clone(), value);
    }
    let sizes = staging.sizes()?;
    measure_sizes(config, &artifacts, &sizes, &mut found);
    let baseline = options.baseline.as_deref().map(read_baseline).transpose()?;
    reporter.status("Gating", format!("{} gate(s)", config.gates.len()));
    let gate_report = gates::evaluate(&config.gates, &found.metrics, baseline.as_ref());

    // 5. Card.
    reporter.status("Rendering", "README.md");
    let version = config.version.version.as_ref().map(ToString::to_string);
    let card_inputs = card_inputs(
        config,
        options,
        version.as_deref(),
        facts.as_ref(),
        &found,
        smoke_report.as_ref(),
        &sizes,
    );
    let readme = card::render_for(config, &card::context(config, &card_inputs))?;
    let problems = card::validate(&readme);
    let detail = if problems.is_empty() {
        "front matter valid".to_owned()
    } else {
        problems.join("; ")
    };
    found.check("card", problems.is_empty(), detail);
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
    staging.write(
        "config.json",
        &pretty(&model_config(config, facts.as_ref())),
    )?;
    if let Some(generation) = generation_config(config) {
        staging.write("generation_config.json", &pretty(&generation))?;
    }
    staging.write(
        "metrics.json",
        &pretty(&serde_json::json!({ "version": version, "metrics": found.metrics })),
    )?;
    if config.checks.files_exist {
        check_files_exist(config, &artifacts, &readme, &staging.sizes()?, &mut found);
    }
    let manifest = staging.finish(&options.out)?;

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
        version,
        outcome: if refusals.is_empty() {
            "pass"
        } else {
            "refused"
        },
        refusals,
        artifacts,
        metrics: found.metrics,
        baseline,
        checks: found.checks,
        gates: gate_report,
        smoke: smoke_report,
        bundle: manifest,
    };
    write_atomically(&options.out.join("report.json"), &pretty(&report))?;
    let samples = options.out.join("bundle").join(&config.bundle.samples_dir);
    write_atomically(
        &options.out.join("summary.md"),
        summary_markdown(&report, &samples).as_bytes(),
    )?;
    Ok(report)
}

/// Scans and converts every checkpoint into the bundle. A refused checkpoint is a failed check,
/// not an error, so the rest of the report still appears. The first converted checkpoint gives
/// the `checkpoint.*` metrics and the card's architecture.
fn convert_checkpoints(
    config: &ReleaseConfig,
    staging: &Staging,
    found: &mut Findings,
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
        let scan_name = format!("scan:{}", checkpoint.path.configured);
        let report = match outcome {
            ConvertOutcome::Refused(scan) => {
                let detail = format!(
                    "refused: {} finding(s); globals: {}",
                    scan.findings.len(),
                    scan.globals().join(", ")
                );
                found.check(scan_name, false, detail);
                continue;
            }
            ConvertOutcome::Converted(report) => report,
        };
        found.check(scan_name, true, "no findings");
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
            found.check("finite-weights", m.nan_count + m.inf_count == 0, detail);
        }
        artifacts.push(ArtifactEntry {
            source: checkpoint.path.configured.clone(),
            kind: "safetensors",
            outputs: report
                .outputs
                .iter()
                .map(|o| bundle_relative(staging.root(), &o.path))
                .collect(),
        });
    }
    Ok((artifacts, facts))
}

/// Inspects every ONNX file (refusing bad external data by name) and copies it into the bundle
/// with its external data files, under the names the model refers to.
fn copy_onnx_files(
    config: &ReleaseConfig,
    staging: &Staging,
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
            outputs.push(bundle_path);
        }
        artifacts.push(ArtifactEntry {
            source: onnx.path.configured.clone(),
            kind: "onnx",
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
            .insert(format!("artifact.{name}.size_mb"), size_mb);
        if !config.checks.size_limits {
            continue;
        }
        let role = config
            .onnx
            .iter()
            .find(|o| o.path.configured == artifact.source)
            .map(|o| o.role);
        let limit = match (artifact.kind, role) {
            ("safetensors", _) => config.checks.max_weights_mb,
            (_, Some(OnnxRole::Generator)) => config.checks.max_generator_mb,
            (_, Some(OnnxRole::Classifier)) => config.checks.max_classifier_mb,
            _ => continue,
        };
        let detail = format!(
            "{} MB (limit {} MB)",
            gates::fmt(size_mb),
            gates::fmt(limit)
        );
        found.check(format!("size:{name}"), size_mb <= limit, detail);
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
        git_commit: options.git_commit.clone(),
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
    found.check("files-exist", missing.is_empty(), detail);
}

/// Reads a previous release's `metrics.json` (`{"version": ..., "metrics": {...}}`).
fn read_baseline(path: &Path) -> anyhow::Result<Metrics> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the baseline `{}`", path.display()))?;
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

fn pretty(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("reports serialize to JSON");
    bytes.push(b'\n');
    bytes
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

/// `config.json`: the architecture from the checkpoint's `config` dict plus the I/O contract.
fn model_config(config: &ReleaseConfig, facts: Option<&CheckpointFacts>) -> serde_json::Value {
    let mut map: serde_json::Map<String, serde_json::Value> = facts
        .map(|f| f.architecture.clone().into_iter().collect())
        .unwrap_or_default();
    map.insert("model_name".to_owned(), config.model.name.clone().into());
    if let Some(g) = &config.generator {
        map.entry("image_size").or_insert(g.image_size.into());
        map.entry("in_channels").or_insert(g.channels.into());
        map.entry("num_classes").or_insert(g.classes.len().into());
        map.insert("classes".to_owned(), g.classes.clone().into());
        map.insert(
            "onnx_io".to_owned(),
            serde_json::json!({
                "inputs": {"noise": g.noise_input, "timestep": g.timestep_input, "label": g.label_input},
                "output": g.output,
            }),
        );
    }
    if let Some(p) = facts.and_then(|f| f.parameters) {
        map.insert("num_parameters".to_owned(), p.into());
    }
    serde_json::Value::Object(map)
}

/// `generation_config.json`: the sampling defaults, when there is a generator.
fn generation_config(config: &ReleaseConfig) -> Option<serde_json::Value> {
    let g = config.generator.as_ref()?;
    Some(serde_json::json!({
        "sampler": "euler",
        "objective": "flow-matching",
        "time": "t from 0 (noise) to 1 (image), t_i = i / steps",
        "steps": g.steps,
        "cfg": g.cfg,
        "cfg_scale": g.cfg_scale,
        "uncond_class": g.uncond_class,
        "image_size": g.image_size,
        "channels": g.channels,
        "output_range": [-1.0, 1.0],
    }))
}

/// The Markdown summary for the Action's step summary; kept under 1 MiB. `samples` is the
/// folder the smoke test's images are in, for embedding the grid.
pub fn summary_markdown(report: &CheckReport, samples: &Path) -> String {
    let mut md = String::new();
    let verdict = if report.passed() { "passed" } else { "refused" };
    let _ = writeln!(
        md,
        "## {} {} — check {verdict}\n",
        report.model,
        report.version.as_deref().unwrap_or("(no version)")
    );
    if !report.refusals.is_empty() {
        let _ = writeln!(md, "**Refused because:**\n");
        for reason in &report.refusals {
            let _ = writeln!(md, "- {}", escape(reason));
        }
        md.push('\n');
    }
    if !report.gates.results.is_empty() {
        let _ = writeln!(
            md,
            "### Gates\n\n| metric | gate | value | threshold | verdict |\n|---|---|---|---|---|"
        );
        for g in &report.gates.results {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {}{} |",
                g.metric,
                g.kind,
                g.value.map_or("—".to_owned(), gates::fmt),
                gates::fmt(g.threshold),
                serde_json::to_value(g.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                if g.severity == Severity::Warn {
                    " (warn)"
                } else {
                    ""
                }
            );
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "### Checks\n\n| check | result | detail |\n|---|---|---|"
    );
    for c in &report.checks {
        let result = match (c.passed, c.severity) {
            (true, _) => "pass",
            (false, Severity::Error) => "**fail**",
            (false, Severity::Warn) => "warn",
        };
        let _ = writeln!(md, "| `{}` | {result} | {} |", c.name, escape(&c.detail));
    }
    md.push('\n');
    if let Some(smoke) = &report.smoke {
        let _ = writeln!(
            md,
            "### Smoke test\n\nProvider `{}`{}, {} steps, CFG `{:?}` {}.\n",
            smoke::session::provider_name(smoke.provider),
            smoke
                .provider_fallback
                .as_ref()
                .map(|f| format!(" (fell back: {})", escape(f)))
                .unwrap_or_default(),
            smoke.steps,
            smoke.cfg,
            smoke.cfg_scale
        );
        for key in [
            "smoke.load_ms",
            "smoke.step_ms_p50",
            "smoke.latency_ms_p50",
            "smoke.latency_ms_p95",
        ] {
            if let Some(v) = smoke.metrics.get(key) {
                let _ = writeln!(md, "- `{key}`: {}", gates::fmt(*v));
            }
        }
        md.push('\n');
        if let Some(gallery) = smoke.gallery() {
            let path = samples.join(gallery);
            if let Ok(bytes) = std::fs::read(&path)
                && bytes.len() < 256 * 1024
            {
                let _ = writeln!(
                    md,
                    "<img alt=\"sample grid\" src=\"data:image/png;base64,{}\">\n",
                    base64(&bytes)
                );
            }
        }
    }
    let _ = writeln!(md, "### Bundle\n\n| file | size | sha256 |\n|---|---|---|");
    for f in &report.bundle.files {
        let _ = writeln!(
            md,
            "| `{}` | {} | `{}` |",
            f.path,
            card::human_bytes(f.bytes),
            &f.sha256[..16.min(f.sha256.len())]
        );
    }
    md
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A console table of the gates and failed checks.
pub fn console_lines(report: &CheckReport) -> Vec<String> {
    let mut lines = Vec::new();
    for g in &report.gates.results {
        let verdict = serde_json::to_value(g.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        lines.push(format!("{verdict:>11}  {}", g.message));
    }
    for c in report.checks.iter().filter(|c| !c.passed) {
        lines.push(format!("{:>11}  {}: {}", "fail", c.name, c.detail));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn bundle_paths_join_and_split() {
        assert_eq!(parent_of("onnx/a.onnx"), "onnx");
        assert_eq!(parent_of("a.onnx"), "");
        assert_eq!(join_bundle("onnx", "a.data"), "onnx/a.data");
        assert_eq!(join_bundle("", "a.data"), "a.data");
    }
}
