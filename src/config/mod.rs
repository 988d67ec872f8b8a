//! `release.toml`: read, parse, check, apply defaults once, and hand out a [`ReleaseConfig`].
//!
//! Loading happens in this order, and every step reports all of its problems before stopping:
//! 1. parse the TOML (syntax errors, with recovery so several are reported);
//! 2. walk the parsed tree against the JSON Schema of the `Raw*` types (`schema_check.rs`):
//!    unknown keys with did-you-mean, missing keys, wrong types, out-of-range integers; and
//!    refuse any key or value that looks like an access token (`validate::no_tokens`);
//! 3. deserialize into [`raw::RawConfig`];
//! 4. cross-field rules and path confinement (`validate.rs`);
//! 5. apply defaults and the command-line [`Overrides`], producing [`ReleaseConfig`].
//!
//! Layer 3, the configuration: imports layers 1 and 2 only.

pub mod paths;
mod quantize;
pub mod raw;
mod schema_check;
pub mod source;
pub mod space;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub use paths::PathRoots;
pub use quantize::{DEFAULT_QUANTIZE_MIN_ELEMENTS, QuantizeConfig};
pub use raw::{CfgMode, DtypeChoice, OnnxRole, Provider, Severity, VersionSource};
pub use validate::{ConfigError, Located};

use self::source::Source;
use self::validate::Sink;
use crate::env::EnvSnapshot;

/// Values given on the command line or by the GitHub Action, layered over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--version`: the release version, overriding the tag or `version.value`.
    pub version: Option<String>,
    /// `$GITHUB_REPOSITORY`, the default for `model.github-repo`.
    pub github_repository: Option<String>,
    /// `$GITHUB_REF`, read when `version.from = "tag"`.
    pub github_ref: Option<String>,
    /// `validate --allow-missing-inputs`: input files need not exist (they must still stay
    /// inside the repository).
    pub allow_missing_inputs: bool,
}

impl Overrides {
    /// The values the environment gives (`GITHUB_REPOSITORY`, `GITHUB_REF`) and `--version`.
    pub fn from_env(env: &EnvSnapshot, version: Option<String>) -> Self {
        Self {
            version,
            github_repository: env.github_repository.clone(),
            github_ref: env.github_ref.clone(),
            allow_missing_inputs: false,
        }
    }
}

/// A path from release.toml, resolved inside the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPath {
    /// Absolute path.
    pub path: PathBuf,
    /// As the user wrote it, for messages.
    pub configured: String,
}

/// Which weights of a training checkpoint to convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsChoice {
    /// EMA weights when present, else the model's (see `artifacts::select`).
    Auto,
    /// The EMA weights; an error if there are none.
    Ema,
    /// The raw model weights (`model`, `state_dict`, or a flat state dict).
    Model,
    /// A dotted path into the checkpoint, e.g. `trainer.ema`.
    Path(String),
}

impl WeightsChoice {
    /// Parses the `weights` key or `--weights` flag.
    pub fn parse(text: &str) -> Self {
        match text {
            "auto" => Self::Auto,
            "ema" => Self::Ema,
            "model" => Self::Model,
            other => Self::Path(other.to_owned()),
        }
    }
}

/// Default prefixes removed from state-dict keys when every key carries them.
pub const DEFAULT_STRIP_PREFIXES: &[&str] = &["module.", "_orig_mod."];

/// `[[checkpoint]]`, resolved.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The PyTorch checkpoint.
    pub path: InputPath,
    /// Which weights to take.
    pub weights: WeightsChoice,
    /// Prefixes stripped from keys.
    pub strip_prefixes: Vec<String>,
    /// Output element type.
    pub dtype: DtypeChoice,
    /// Path inside the bundle.
    pub output: String,
    /// Safetensors metadata name -> checkpoint key.
    pub metadata: BTreeMap<String, String>,
    /// Shard size in bytes, if sharding.
    pub max_shard_size: Option<u64>,
}

/// `[[onnx]]`, resolved.
#[derive(Debug, Clone)]
pub struct OnnxConfig {
    /// The ONNX file.
    pub path: InputPath,
    /// What it is for.
    pub role: OnnxRole,
    /// Path inside the bundle.
    pub output: String,
    /// For a generator variant: its name.
    pub variant: Option<String>,
    /// A quantized variant to build from this generator.
    pub quantize: Option<QuantizeConfig>,
}

/// `[generator]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Image height and width.
    pub image_size: u32,
    /// Image channels.
    pub channels: u32,
    /// Class names by index.
    pub classes: Vec<String>,
    /// Class of the unconditional branch.
    pub uncond_class: Option<u32>,
    /// Name of the noise / state input.
    pub noise_input: String,
    /// Name of the timestep input.
    pub timestep_input: String,
    /// Name of the class input.
    pub label_input: String,
    /// Name of the velocity output.
    pub output: String,
    /// Guidance mode.
    pub cfg: CfgMode,
    /// Guidance scale.
    pub cfg_scale: f32,
    /// Euler steps.
    pub steps: u32,
}

/// `[classifier]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    /// Input name.
    pub input: String,
    /// Output name.
    pub output: String,
    /// Input height and width.
    pub image_size: u32,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
    /// Labels in logit order.
    pub labels: Vec<String>,
    /// The expected label, or `None` for "the sample's own class".
    pub expect: Option<String>,
}

/// `[smoke.golden]`, resolved.
#[derive(Debug, Clone)]
pub struct GoldenConfig {
    /// Input tensors.
    pub inputs: InputPath,
    /// Expected outputs.
    pub outputs: InputPath,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

/// `[smoke]`, resolved.
#[derive(Debug, Clone)]
pub struct SmokeConfig {
    /// Providers in order of preference.
    pub providers: Vec<Provider>,
    /// Fail unless the first provider runs.
    pub require_provider: bool,
    /// Noise seed.
    pub seed: u64,
    /// Samples per class.
    pub samples_per_class: u32,
    /// Images per call.
    pub batch_size: u32,
    /// Intra-op threads.
    pub threads: u32,
    /// Golden parity.
    pub golden: Option<GoldenConfig>,
}

/// The settings of a smoke test when release.toml has no `[smoke]` table; also the defaults of
/// each key of `[smoke]`.
impl Default for SmokeConfig {
    fn default() -> Self {
        Self {
            providers: vec![Provider::Cpu],
            require_provider: false,
            seed: 42,
            samples_per_class: 1,
            batch_size: 8,
            threads: available_threads(),
            golden: None,
        }
    }
}

/// The default of `smoke.threads`: the CPUs this process may use. On Linux
/// `std::thread::available_parallelism` counts the affinity mask (`sched_getaffinity`, so
/// `taskset` and cpusets count) and caps it by a cgroup v1 or v2 CPU quota (`cpu.max`, what
/// `docker run --cpus` sets), so a container limited to 2 CPUs on a 64-core host gets 2. Python
/// onnxruntime's default (`intra_op_num_threads = 0`) likewise uses the available cores.
pub fn available_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// A training metric read from a file.
#[derive(Debug, Clone)]
pub struct MetricSource {
    /// The JSON or YAML file.
    pub file: InputPath,
    /// Dotted path inside it.
    pub path: String,
    /// What the figure measures, when the user said.
    pub description: Option<String>,
}

/// `[[gate]]`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// Metric name.
    pub metric: String,
    /// Lower bound.
    pub min: Option<f64>,
    /// Upper bound.
    pub max: Option<f64>,
    /// Allowed absolute regression.
    pub max_regression: Option<f64>,
    /// Allowed relative regression in percent.
    pub max_regression_pct: Option<f64>,
    /// Direction of "better".
    pub higher_is_better: bool,
    /// Pass a regression gate without a baseline.
    pub allow_missing_baseline: bool,
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line and column of the entry's `metric` key in release.toml, for annotations.
    pub position: (usize, usize),
}

/// `[card]`, resolved.
#[derive(Debug, Clone, Default)]
pub struct CardConfig {
    /// User template replacing the built-in one.
    pub template: Option<InputPath>,
    /// Dataset of `model-index` results.
    pub eval_dataset: Option<raw::RawEvalDataset>,
    /// Metrics written into `model-index`.
    pub eval_metrics: Vec<String>,
    /// Extra template values.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `[bundle]`, resolved.
#[derive(Debug, Clone)]
pub struct BundleConfig {
    /// Extra files copied to the top of the bundle.
    pub include: Vec<InputPath>,
    /// Folder of sample images inside the bundle.
    pub samples_dir: String,
}

/// `[publish]`, resolved.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Publish to the Hub.
    pub hub: bool,
    /// Create a GitHub release.
    pub github_release: bool,
    /// Bundle globs attached to the GitHub release.
    pub github_assets: Vec<String>,
    /// Delete Hub files the bundle no longer has.
    pub prune: bool,
}

/// `[checks]`, resolved.
#[derive(Debug, Clone, PartialEq)]
// Independent on/off switches mirroring the `[checks]` keys; an enum would not be clearer.
#[allow(clippy::struct_excessive_bools)]
pub struct ChecksConfig {
    /// Artifacts in the bundle, card images present.
    pub files_exist: bool,
    /// No NaN/Inf weights.
    pub finite_weights: bool,
    /// Smoke sample checks block the release.
    pub valid_samples: bool,
    /// Apply the size limits.
    pub size_limits: bool,
    /// Largest safetensors output in MB.
    pub max_weights_mb: f64,
    /// Largest generator ONNX in MB.
    pub max_generator_mb: f64,
    /// Largest classifier ONNX in MB.
    pub max_classifier_mb: f64,
    /// `baseline = "hub"`: regression gates compare with the Hub's latest release.
    pub baseline_from_hub: bool,
}

/// The version policy, resolved.
#[derive(Debug, Clone)]
pub struct VersionConfig {
    /// Where the version comes from.
    pub from: VersionSource,
    /// The version, when known at load time (from `--version`, the tag or the file).
    pub version: Option<semver::Version>,
    /// Tag prefix.
    pub tag_prefix: String,
    /// Refuse versions not greater than the latest release.
    pub require_increase: bool,
}

/// Size and sha256 of a text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextDigest {
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

impl TextDigest {
    /// The digest of `text`.
    pub fn of(text: &str) -> Self {
        Self {
            bytes: text.len() as u64,
            sha256: crate::digest::sha256_hex(text.as_bytes()),
        }
    }
}

/// A complete, validated configuration with every default applied.
#[derive(Debug, Clone)]
pub struct ReleaseConfig {
    /// The configuration file as named by the user.
    pub file: String,
    /// Size and sha256 of the configuration text, for the release identity.
    pub text: TextDigest,
    /// Where paths resolve from.
    pub roots: PathRoots,
    /// `[model]`; `github_repo` already defaulted from the environment.
    pub model: raw::RawModel,
    /// `[version]`.
    pub version: VersionConfig,
    /// `[[checkpoint]]`.
    pub checkpoints: Vec<CheckpointConfig>,
    /// `[[onnx]]`.
    pub onnx: Vec<OnnxConfig>,
    /// `[generator]`.
    pub generator: Option<GeneratorConfig>,
    /// `[classifier]`.
    pub classifier: Option<ClassifierConfig>,
    /// `[smoke]`, if the section is present.
    pub smoke: Option<SmokeConfig>,
    /// `[metrics]`.
    pub metrics: BTreeMap<String, MetricSource>,
    /// `[[gate]]`.
    pub gates: Vec<GateConfig>,
    /// `[checks]`.
    pub checks: ChecksConfig,
    /// `[card]`.
    pub card: CardConfig,
    /// `[bundle]`.
    pub bundle: BundleConfig,
    /// `[publish]`.
    pub publish: PublishConfig,
    /// `[space]`, when the release has a demo Space.
    pub space: Option<space::SpaceConfig>,
}

impl ReleaseConfig {
    /// The generator ONNX entry, if any.
    pub fn generator_onnx(&self) -> Option<&OnnxConfig> {
        self.onnx
            .iter()
            .find(|o| o.role == OnnxRole::Generator && o.variant.is_none())
    }

    /// The classifier ONNX entry, if any.
    pub fn classifier_onnx(&self) -> Option<&OnnxConfig> {
        self.onnx.iter().find(|o| o.role == OnnxRole::Classifier)
    }

    /// Every input file the configuration names (checkpoints, ONNX files, golden files, metric
    /// files, the card template, bundle includes), in the file's order; ONNX external data is
    /// found by `check`. What decides a release's bytes, with the configuration itself.
    pub fn input_files(&self) -> Vec<&InputPath> {
        let mut files: Vec<&InputPath> = Vec::new();
        files.extend(self.checkpoints.iter().map(|c| &c.path));
        files.extend(self.onnx.iter().map(|o| &o.path));
        if let Some(golden) = self.smoke.as_ref().and_then(|s| s.golden.as_ref()) {
            files.push(&golden.inputs);
            files.push(&golden.outputs);
        }
        files.extend(self.metrics.values().map(|m| &m.file));
        files.extend(self.card.template.iter());
        files.extend(self.bundle.include.iter());
        files
    }

    /// The configuration file's path relative to the repository root, `/`-separated.
    pub fn repo_relative_file(&self) -> String {
        let name = Path::new(&self.file)
            .file_name()
            .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned());
        let dir = self
            .roots
            .config_dir
            .strip_prefix(&self.roots.repo_root)
            .unwrap_or(Path::new(""));
        let mut parts: Vec<String> = dir
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.push(name);
        parts.join("/")
    }

    /// A resolved input path relative to the repository root, `/`-separated.
    pub fn repo_relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.roots.repo_root)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path, overrides: &Overrides) -> anyhow::Result<ReleaseConfig> {
    let shown = path.display().to_string();
    let text = crate::input::read_text(path, &shown, "`--config`", crate::input::MAX_CONFIG_BYTES)?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let roots = PathRoots::discover(&dir)
        .with_context(|| format!("failed to open the folder of `{}`", path.display()))?;
    parse(&text, &path.display().to_string(), roots, overrides)
}

/// Parses and validates configuration text. `file` names it in messages. Problems in the file
/// come back as one [`ConfigError`] listing each at its position; a bad `--version` flag, which
/// has no position in the file, as an error naming the flag.
pub fn parse(
    text: &str,
    file: &str,
    roots: PathRoots,
    overrides: &Overrides,
) -> anyhow::Result<ReleaseConfig> {
    let fail = |problems: Vec<Located>| ConfigError {
        file: file.to_owned(),
        problems,
    };
    let (root, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    let source = Source::index(text, &root);
    if !syntax_errors.is_empty() {
        let problems = syntax_errors
            .iter()
            .map(|err| {
                let (line, column) = err
                    .span()
                    .map_or((1, 1), |span| source.line_col(span.start));
                Located {
                    line,
                    column,
                    message: format!("invalid TOML: {}", err.message()),
                    hint: None,
                }
            })
            .collect();
        return Err(fail(problems).into());
    }
    let mut sink = Sink::default();
    schema_check::check(&root, &schema(), &source, &mut sink);
    validate::no_tokens(root.get_ref(), &source, &mut sink);
    if !sink.is_empty() {
        return Err(fail(sink.into_sorted()).into());
    }
    let raw: raw::RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            // The schema walk should have caught this; report serde's view rather than nothing.
            let (line, column) = err.span().map_or((1, 1), |s| source.line_col(s.start));
            return Err(fail(vec![Located {
                line,
                column,
                message: err.message().to_owned(),
                hint: None,
            }])
            .into());
        }
    };
    validate::check(
        &raw,
        &roots,
        &source,
        overrides.allow_missing_inputs,
        &mut sink,
    );
    for problem in space::check(&raw, &source, validate::check_repo_id) {
        sink.push(problem);
    }
    let version = resolve_version(&raw, overrides, &source, &mut sink);
    if !sink.is_empty() {
        return Err(fail(sink.into_sorted()).into());
    }
    let version = version?;
    let mut config = resolve(raw, file, roots, overrides, version);
    config.text = TextDigest::of(text);
    for (i, gate) in config.gates.iter_mut().enumerate() {
        gate.position = source.key_position(&format!("gate[{i}].metric"));
    }
    Ok(config)
}

/// The JSON Schema of release.toml, as committed in `release.schema.json`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawConfig))
        .expect("a derived schema always serializes")
}

/// The release version: `--version`, else the tag or `version.value` as the file says. Problems
/// of the file go to `sink`; a bad flag is the `Err`, naming the flag rather than a position.
///
/// On a tag push (`GITHUB_REF=refs/tags/<prefix>X.Y.Z`) the tag is the truth: a `--version` or
/// a `version.value` that says something else is an error, never a silent choice. Build
/// metadata (`1.2.3+build.5`) is refused: tags on the Hub and GitHub would carry it, while
/// semver ignores it when comparing, so two releases could not be told apart by order.
fn resolve_version(
    raw: &raw::RawConfig,
    overrides: &Overrides,
    source: &Source,
    sink: &mut Sink,
) -> Result<Option<semver::Version>, crate::error::Problem> {
    let section = raw.version.clone().unwrap_or_default();
    let prefix = section.tag_prefix.as_deref().unwrap_or("v");
    let pushed_tag = overrides
        .github_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .filter(|tag| tag.starts_with(prefix));
    let from_tag = match pushed_tag {
        Some(tag) => match semver::Version::parse(&tag[prefix.len()..]) {
            Ok(v) if !v.build.is_empty() => {
                sink.push(Located::at_value(
                    source,
                    "version",
                    format!("the tag `{tag}` carries build metadata `+{}`", v.build),
                ));
                None
            }
            Ok(v) => Some(v),
            Err(err) => {
                sink.push(Located::at_value(
                    source,
                    "version",
                    format!(
                        "the tag `{tag}` is not `{prefix}` followed by a semantic version: {err}"
                    ),
                ));
                None
            }
        },
        None => None,
    };
    if let Some(given) = &overrides.version {
        let bare = given.strip_prefix(prefix).unwrap_or(given);
        let version = semver::Version::parse(bare).map_err(|err| {
            crate::error::Problem::new(format!(
                "`--version` = `{given}` is not a semantic version: {err}"
            ))
            .hint(format!(
                "write it as MAJOR.MINOR.PATCH, e.g. `1.2.0` (or `{prefix}1.2.0`)"
            ))
        })?;
        if !version.build.is_empty() {
            return Err(crate::error::Problem::new(format!(
                "`--version` = `{given}` carries build metadata `+{}`, which tags may not",
                version.build
            ))
            .hint("release `MAJOR.MINOR.PATCH` or a prerelease such as `1.3.0-rc.1`"));
        }
        if let (Some(tag), Some(tagged)) = (pushed_tag, &from_tag)
            && *tagged != version
        {
            return Err(crate::error::Problem::new(format!(
                "`--version` = `{given}` differs from the pushed tag `{tag}`"
            ))
            .hint("drop `--version` on tag pushes: the tag names the version"));
        }
        return Ok(Some(version));
    }
    Ok(match section.from.unwrap_or(VersionSource::Tag) {
        VersionSource::Config => {
            let value = section
                .value
                .as_deref()
                .and_then(|v| semver::Version::parse(v).ok());
            if let Some(v) = &value
                && !v.build.is_empty()
            {
                sink.push(Located::at_value(
                    source,
                    "version.value",
                    format!("`version.value` = `{v}` carries build metadata, which tags may not"),
                ));
            }
            if let (Some(tag), Some(tagged), Some(v)) = (pushed_tag, &from_tag, &value)
                && tagged != v
            {
                sink.push(
                    Located::at_value(
                        source,
                        "version.value",
                        format!("the pushed tag `{tag}` differs from `version.value` = `{v}`"),
                    )
                    .hint("push the tag of `version.value`, or update `version.value`"),
                );
            }
            value
        }
        VersionSource::Tag => from_tag,
    })
}

fn resolve(
    raw: raw::RawConfig,
    file: &str,
    roots: PathRoots,
    overrides: &Overrides,
    version: Option<semver::Version>,
) -> ReleaseConfig {
    let input = |configured: &str| InputPath {
        path: roots
            .resolve(configured)
            .expect("validation resolved every input path"),
        configured: configured.to_owned(),
    };
    let generator_config = raw.generator.clone().map(generator);
    let space = space::resolve(
        &raw,
        generator_config.as_ref().map(|g| space::GeneratorDefaults {
            classes: &g.classes,
            steps: g.steps,
            cfg_scale: g.cfg_scale,
        }),
        raw.smoke.as_ref().and_then(|s| s.seed),
    );
    let mut model = raw.model;
    if model.github_repo.is_none() {
        model.github_repo.clone_from(&overrides.github_repository);
    }
    let checkpoints = raw
        .checkpoint
        .iter()
        .map(|c| checkpoint(c, &input))
        .collect();
    let onnx = raw.onnx.iter().map(|o| onnx_entry(o, &input)).collect();
    let smoke = raw.smoke.map(|s| smoke(s, &input));
    let metrics = raw
        .metrics
        .iter()
        .map(|(name, m)| metric_source(name, m, &input))
        .collect();
    let card = raw.card.map(|c| card(c, &input)).unwrap_or_default();
    let bundle = bundle(raw.bundle.unwrap_or_default(), &input);
    ReleaseConfig {
        file: file.to_owned(),
        text: TextDigest::default(),
        roots,
        model,
        version: version_config(raw.version.unwrap_or_default(), version),
        checkpoints,
        onnx,
        generator: generator_config,
        classifier: raw.classifier.map(classifier),
        smoke,
        metrics,
        gates: raw.gate.iter().map(gate).collect(),
        checks: checks(&raw.checks.unwrap_or_default()),
        card,
        bundle,
        publish: publish(raw.publish.unwrap_or_default()),
        space,
    }
}

// One resolver per section of release.toml: the raw values with every default applied.

fn version_config(
    version_section: raw::RawVersion,
    version: Option<semver::Version>,
) -> VersionConfig {
    VersionConfig {
        from: version_section.from.unwrap_or(VersionSource::Tag),
        version,
        tag_prefix: version_section.tag_prefix.unwrap_or_else(|| "v".to_owned()),
        require_increase: version_section.require_increase.unwrap_or(true),
    }
}

fn checkpoint(c: &raw::RawCheckpoint, input: &impl Fn(&str) -> InputPath) -> CheckpointConfig {
    CheckpointConfig {
        path: input(&c.path),
        weights: WeightsChoice::parse(c.weights.as_deref().unwrap_or("auto")),
        strip_prefixes: c.strip_prefixes.clone().unwrap_or_else(|| {
            DEFAULT_STRIP_PREFIXES
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        }),
        dtype: c.dtype.unwrap_or(DtypeChoice::Keep),
        output: c.output.clone(),
        metadata: c.metadata.clone(),
        max_shard_size: c.max_shard_size.as_deref().and_then(validate::parse_size),
    }
}

fn onnx_entry(o: &raw::RawOnnx, input: &impl Fn(&str) -> InputPath) -> OnnxConfig {
    OnnxConfig {
        path: input(&o.path),
        role: o.role,
        output: o
            .output
            .clone()
            .unwrap_or_else(|| validate::default_onnx_output(&o.path)),
        variant: o.variant.clone(),
        quantize: o.quantize.as_ref().map(|q| quantize::resolve(q, &o.path)),
    }
}

fn generator(g: raw::RawGenerator) -> GeneratorConfig {
    let inputs = g.inputs.unwrap_or_default();
    GeneratorConfig {
        image_size: g.image_size,
        channels: g.channels.unwrap_or(3),
        classes: g.classes,
        uncond_class: g.uncond_class,
        noise_input: inputs.noise.unwrap_or_else(|| "noise".to_owned()),
        timestep_input: inputs.timestep.unwrap_or_else(|| "timestep".to_owned()),
        label_input: inputs.label.unwrap_or_else(|| "label".to_owned()),
        output: g.output.unwrap_or_else(|| "velocity".to_owned()),
        cfg: g.cfg.unwrap_or(CfgMode::Explicit),
        cfg_scale: g.cfg_scale.unwrap_or(1.5) as f32,
        steps: g.steps.unwrap_or(50),
    }
}

fn classifier(c: raw::RawClassifier) -> ClassifierConfig {
    ClassifierConfig {
        input: c.input.unwrap_or_else(|| "input".to_owned()),
        output: c.output.unwrap_or_else(|| "output".to_owned()),
        image_size: c.image_size,
        mean: c.mean.iter().map(|v| *v as f32).collect(),
        std: c.std.iter().map(|v| *v as f32).collect(),
        labels: c.labels,
        expect: (c.expect != "class").then_some(c.expect),
    }
}

fn smoke(s: raw::RawSmoke, input: &impl Fn(&str) -> InputPath) -> SmokeConfig {
    let smoke_defaults = SmokeConfig::default();
    SmokeConfig {
        providers: s.providers.unwrap_or(smoke_defaults.providers),
        require_provider: s
            .require_provider
            .unwrap_or(smoke_defaults.require_provider),
        seed: s.seed.unwrap_or(smoke_defaults.seed),
        samples_per_class: s
            .samples_per_class
            .unwrap_or(smoke_defaults.samples_per_class),
        batch_size: s.batch_size.unwrap_or(smoke_defaults.batch_size),
        threads: s.threads.unwrap_or(smoke_defaults.threads),
        golden: s.golden.map(|g| GoldenConfig {
            inputs: input(&g.inputs),
            outputs: input(&g.outputs),
            atol: g.atol.unwrap_or(1e-4),
            rtol: g.rtol.unwrap_or(1e-3),
        }),
    }
}

fn metric_source(
    name: &str,
    m: &raw::RawMetricSource,
    input: &impl Fn(&str) -> InputPath,
) -> (String, MetricSource) {
    (
        name.to_owned(),
        MetricSource {
            file: input(&m.file),
            path: m.path.clone(),
            description: m.description.clone(),
        },
    )
}

fn gate(g: &raw::RawGate) -> GateConfig {
    GateConfig {
        metric: g.metric.clone(),
        min: g.min,
        max: g.max,
        max_regression: g.max_regression,
        max_regression_pct: g.max_regression_pct,
        higher_is_better: g
            .higher_is_better
            .unwrap_or_else(|| !lower_is_better_by_name(&g.metric)),
        allow_missing_baseline: g.allow_missing_baseline.unwrap_or(false),
        severity: g.severity.unwrap_or(Severity::Error),
        position: (0, 0),
    }
}

fn checks(checks_section: &raw::RawChecks) -> ChecksConfig {
    ChecksConfig {
        files_exist: checks_section.files_exist.unwrap_or(true),
        finite_weights: checks_section.finite_weights.unwrap_or(true),
        valid_samples: checks_section.valid_samples.unwrap_or(true),
        size_limits: checks_section.size_limits.unwrap_or(true),
        max_weights_mb: checks_section.max_weights_mb.unwrap_or(150.0),
        max_generator_mb: checks_section.max_generator_mb.unwrap_or(150.0),
        max_classifier_mb: checks_section.max_classifier_mb.unwrap_or(100.0),
        baseline_from_hub: checks_section.baseline == Some(raw::BaselineSource::Hub),
    }
}

fn card(c: raw::RawCard, input: &impl Fn(&str) -> InputPath) -> CardConfig {
    CardConfig {
        template: c.template.as_deref().map(input),
        eval_dataset: c.eval_dataset,
        eval_metrics: c.eval_metrics,
        extra: c.extra,
    }
}

fn bundle(bundle_section: raw::RawBundle, input: &impl Fn(&str) -> InputPath) -> BundleConfig {
    BundleConfig {
        include: bundle_section.include.iter().map(|p| input(p)).collect(),
        samples_dir: bundle_section
            .samples_dir
            .unwrap_or_else(|| "samples".to_owned()),
    }
}

fn publish(publish_section: raw::RawPublish) -> PublishConfig {
    PublishConfig {
        hub: publish_section.hub.unwrap_or(true),
        github_release: publish_section.github_release.unwrap_or(true),
        github_assets: publish_section.github_assets,
        prune: publish_section.prune.unwrap_or(false),
    }
}

/// Loss, FID, latency, sizes and error counts improve downwards.
fn lower_is_better_by_name(metric: &str) -> bool {
    [
        "loss", "fid", "latency", "size", "nan", "inf", "diff", "_ms", "bytes",
    ]
    .iter()
    .any(|word| metric.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version `parse` resolves for a `[version]` table, a `--version` and a `GITHUB_REF`.
    fn version_of(
        section: &str,
        flag: Option<&str>,
        git_ref: Option<&str>,
    ) -> anyhow::Result<Option<semver::Version>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = PathRoots::discover(dir.path()).expect("roots");
        let text = format!("[model]\nname = \"m\"\nhub-repo = \"o/m\"\n\n[version]\n{section}\n");
        let overrides = Overrides {
            version: flag.map(str::to_owned),
            github_repository: None,
            github_ref: git_ref.map(str::to_owned),
            allow_missing_inputs: false,
        };
        parse(&text, "release.toml", roots, &overrides).map(|c| c.version.version)
    }

    #[allow(clippy::unnecessary_wraps)] // compared with `Option`s
    fn v(text: &str) -> Option<semver::Version> {
        Some(semver::Version::parse(text).expect("valid"))
    }

    #[test]
    fn versions_come_from_the_flag_the_tag_or_the_file() {
        assert_eq!(
            version_of("", Some("1.2.3"), None).expect("flag"),
            v("1.2.3")
        );
        assert_eq!(
            version_of("", Some("v1.2.3"), None).expect("flag"),
            v("1.2.3")
        );
        assert_eq!(
            version_of("", None, Some("refs/tags/v1.3.0-rc.1")).expect("tag"),
            v("1.3.0-rc.1")
        );
        assert_eq!(
            version_of("", None, Some("refs/heads/main")).expect("branch"),
            None
        );
        assert_eq!(
            version_of("from = \"config\"\nvalue = \"2.0.0\"", None, None).expect("file"),
            v("2.0.0")
        );
        // The tag agrees with the file: fine.
        assert_eq!(
            version_of(
                "from = \"config\"\nvalue = \"2.0.0\"",
                None,
                Some("refs/tags/v2.0.0")
            )
            .expect("agree"),
            v("2.0.0")
        );
    }

    #[test]
    fn a_pushed_tag_that_disagrees_is_an_error() {
        let err = version_of(
            "from = \"config\"\nvalue = \"2.0.0\"",
            None,
            Some("refs/tags/v2.0.1"),
        )
        .expect_err("tag differs from version.value");
        assert!(
            format!("{err:#}")
                .contains("the pushed tag `v2.0.1` differs from `version.value` = `2.0.0`"),
            "{err:#}"
        );
        let err = version_of("", Some("1.0.0"), Some("refs/tags/v1.0.1"))
            .expect_err("flag differs from the tag");
        assert!(
            err.to_string()
                .contains("differs from the pushed tag `v1.0.1`"),
            "{err}"
        );
    }

    #[test]
    fn build_metadata_is_refused() {
        let err = version_of("", Some("1.2.3+build.5"), None).expect_err("flag");
        assert!(
            err.to_string().contains("build metadata `+build.5`"),
            "{err}"
        );
        let err = version_of("", None, Some("refs/tags/v1.2.3+ci")).expect_err("tag");
        assert!(
            format!("{err:#}").contains("carries build metadata `+ci`"),
            "{err:#}"
        );
        let err =
            version_of("from = \"config\"\nvalue = \"1.2.3+x\"", None, None).expect_err("file");
        assert!(
            format!("{err:#}").contains("carries build metadata"),
            "{err:#}"
        );
    }

    /// The committed `release.schema.json` is what editors use; it must match the types.
    #[test]
    fn committed_schema_is_current() {
        let committed: serde_json::Value =
            serde_json::from_str(include_str!("../../release.schema.json"))
                .expect("release.schema.json is JSON");
        assert!(
            committed == schema(),
            "release.schema.json is stale: run `cargo run -- schema > release.schema.json`"
        );
    }
}
