//! The serde mirror of `release.toml`: every key as the user writes it, nothing defaulted.
//!
//! These types are the single source of the JSON Schema (`release.schema.json`) and of the
//! structural checks in `validate.rs`, so their doc comments are user-facing: they appear in the
//! schema and therefore in editors. Defaults are applied once, in `config::mod`, never here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `release.toml`: how one model is checked, described and released.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "tinydit-release configuration (release.toml)")]
pub struct RawConfig {
    /// The model being released and where it goes.
    pub model: RawModel,
    /// How the release version is chosen.
    pub version: Option<RawVersion>,
    /// PyTorch checkpoints converted to safetensors.
    #[serde(default)]
    pub checkpoint: Vec<RawCheckpoint>,
    /// ONNX files checked and shipped.
    #[serde(default)]
    pub onnx: Vec<RawOnnx>,
    /// The I/O contract and sampling settings of the generator ONNX model.
    pub generator: Option<RawGenerator>,
    /// An optional classifier that checks what the generator draws.
    pub classifier: Option<RawClassifier>,
    /// The smoke test: run the generator and look at what it makes.
    pub smoke: Option<RawSmoke>,
    /// Training metrics read from files, addressed by name in gates.
    #[serde(default)]
    pub metrics: BTreeMap<String, RawMetricSource>,
    /// Thresholds a release must meet.
    #[serde(default)]
    pub gate: Vec<RawGate>,
    /// The built-in release checks (ADR-028), each on by default.
    pub checks: Option<RawChecks>,
    /// The Hugging Face model card.
    pub card: Option<RawCard>,
    /// Extra files of the folder that goes to the Hub.
    pub bundle: Option<RawBundle>,
    /// Where the release goes.
    pub publish: Option<RawPublish>,
    /// A demo Hugging Face Space that runs the generator in the browser, released with the model.
    pub space: Option<RawSpace>,
}

/// `[model]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawModel {
    /// Human-readable name, the title of the model card.
    pub name: String,
    /// Hugging Face Hub repository id, `owner/name`.
    pub hub_repo: String,
    /// GitHub repository `owner/name` for tags and the release. Default: `$GITHUB_REPOSITORY`.
    pub github_repo: Option<String>,
    /// A license id the Hub accepts, e.g. `apache-2.0`.
    pub license: Option<String>,
    /// The Hub pipeline tag, e.g. `unconditional-image-generation`.
    pub pipeline_tag: Option<String>,
    /// The library the Hub shows for loading the model, e.g. `onnx`.
    pub library_name: Option<String>,
    /// Free-form Hub tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Hub dataset ids the model was trained on.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// The Hub model this one was fine-tuned from.
    pub base_model: Option<String>,
    /// Create the Hub repository as private.
    pub private: Option<bool>,
}

/// Where the version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// From the Git tag that triggered the run (`GITHUB_REF` = `refs/tags/v1.2.3`) or `--version`.
    Tag,
    /// From `version.value`.
    Config,
}

/// `[version]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawVersion {
    /// `tag` (default) or `config`.
    pub from: Option<VersionSource>,
    /// The version when `from = "config"`, a semantic version such as `1.2.0`.
    pub value: Option<String>,
    /// Prefix of Git and Hub tags. Default: `v`.
    pub tag_prefix: Option<String>,
    /// Refuse a version that is not greater than the latest released one. Default: true.
    pub require_increase: Option<bool>,
}

/// Element type written to safetensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DtypeChoice {
    /// Keep each tensor's dtype.
    Keep,
    /// 32-bit float.
    F32,
    /// 16-bit float; values outside its range are refused.
    F16,
    /// bfloat16.
    Bf16,
}

/// `[[checkpoint]]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCheckpoint {
    /// The PyTorch checkpoint, relative to release.toml.
    pub path: String,
    /// Which weights: `auto` (default: EMA if present), `ema`, `model`, or a dotted path.
    pub weights: Option<String>,
    /// Key prefixes removed when every key carries them. Default: `module.`, `_orig_mod.`.
    pub strip_prefixes: Option<Vec<String>>,
    /// `keep` (default), `f32`, `f16` or `bf16`.
    pub dtype: Option<DtypeChoice>,
    /// Path of the safetensors file inside the release bundle.
    pub output: String,
    /// Safetensors metadata taken from checkpoint keys: metadata name -> checkpoint key.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Shard larger outputs into `model-0000N-of-0000M.safetensors`, e.g. `5GB`.
    pub max_shard_size: Option<String>,
}

/// What an ONNX file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnnxRole {
    /// The image generator; checked against `[generator]` and run by the smoke test.
    Generator,
    /// The classifier of `[classifier]`.
    Classifier,
    /// Shipped and statically checked only.
    Other,
}

/// `[[onnx]]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawOnnx {
    /// The ONNX file, relative to release.toml.
    pub path: String,
    /// `generator`, `classifier` or `other`.
    pub role: OnnxRole,
    /// Path inside the release bundle. Default: `onnx/<file name>`.
    pub output: Option<String>,
    /// Marks a generator as a variant of the `[[onnx]]` generator without `variant` (for example
    /// an int8 export made elsewhere), named by this value: the smoke stage judges its agreement
    /// with that generator (`smoke.variant.<name>.*`).
    pub variant: Option<String>,
    /// Builds a weight-only int8 variant of this generator into the bundle (`check` runs
    /// `tinydit-release quantize` on it), judged like a provided variant.
    pub quantize: Option<RawQuantize>,
}

/// `[[onnx]] quantize`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawQuantize {
    /// The variant's name. Default: `int8`.
    pub variant: Option<String>,
    /// Weights with fewer elements stay float. Default: 4096.
    pub min_elements: Option<u64>,
    /// Path inside the bundle. Default: `onnx/<generator file stem>_<variant>.onnx`.
    pub output: Option<String>,
}

/// How classifier-free guidance is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CfgMode {
    /// The tool batches the conditional and unconditional inputs.
    Explicit,
    /// The graph does classifier-free guidance itself.
    Baked,
    /// No guidance.
    None,
}

/// Input names of the generator.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGeneratorInputs {
    /// The current state x_t, float32 `[batch, channels, size, size]`. Default: `noise`.
    pub noise: Option<String>,
    /// The time t in [0, 1], float32 `[batch]`. Default: `timestep`.
    pub timestep: Option<String>,
    /// The class index, int64 `[batch]`. Default: `label`.
    pub label: Option<String>,
}

/// `[generator]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGenerator {
    /// Height and width of generated images, in pixels.
    pub image_size: u32,
    /// Image channels. Default: 3.
    pub channels: Option<u32>,
    /// Class names, in class-index order.
    pub classes: Vec<String>,
    /// Class index used for the unconditional branch of classifier-free guidance.
    pub uncond_class: Option<u32>,
    /// Input names of the model.
    pub inputs: Option<RawGeneratorInputs>,
    /// Output name of the model (the predicted velocity). Default: `velocity`.
    pub output: Option<String>,
    /// `explicit` (default), `baked` or `none`.
    pub cfg: Option<CfgMode>,
    /// Guidance scale for `cfg = "explicit"`. Default: 1.5.
    pub cfg_scale: Option<f64>,
    /// Euler steps from t = 0 (noise) to t = 1 (image). Default: 50.
    pub steps: Option<u32>,
}

/// `[classifier]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawClassifier {
    /// Input name. Default: `input`.
    pub input: Option<String>,
    /// Output name (logits). Default: `output`.
    pub output: Option<String>,
    /// Input height and width; samples are resized to it.
    pub image_size: u32,
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: Vec<f64>,
    /// Output labels, in logit order.
    pub labels: Vec<String>,
    /// A label every sample should get, or `class` for a classifier of the generator's classes.
    pub expect: String,
}

/// An execution provider of ONNX Runtime.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// NVIDIA CUDA (needs the `onnxruntime-gpu` library and a GPU).
    Cuda,
    /// The CPU.
    Cpu,
}

/// `[smoke.golden]`: outputs of the PyTorch model for fixed inputs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGolden {
    /// Safetensors file with tensors named after the model inputs.
    pub inputs: String,
    /// Safetensors file with tensors named after the model outputs.
    pub outputs: String,
    /// Absolute tolerance. Default: 1e-4.
    pub atol: Option<f64>,
    /// Relative tolerance. Default: 1e-3.
    pub rtol: Option<f64>,
}

/// `[smoke]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSmoke {
    /// Execution providers tried in order. Default: `["cpu"]`.
    pub providers: Option<Vec<Provider>>,
    /// Fail unless the first provider really runs. Default: false.
    pub require_provider: Option<bool>,
    /// Seed of the initial noise. Default: 42.
    pub seed: Option<u64>,
    /// Samples drawn per class. Default: 1.
    pub samples_per_class: Option<u32>,
    /// Images per generator call. Default: 8.
    pub batch_size: Option<u32>,
    /// ONNX Runtime intra-op threads. Default: the CPUs this process may use (its affinity mask,
    /// capped by a cgroup CPU quota), as Python onnxruntime does; set 1 on a machine shared with
    /// other busy jobs.
    pub threads: Option<u32>,
    /// Golden-output parity with the PyTorch model.
    pub golden: Option<RawGolden>,
}

/// Where a training metric is read from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMetricSource {
    /// A JSON (or YAML) file, relative to release.toml.
    pub file: String,
    /// Dotted path to the number inside the file, e.g. `results.val_accuracy`.
    pub path: String,
    /// What the figure measures, for the model card, e.g. "accuracy of the cat classifier on
    /// 256 held-out images". Say whose figure it is: a classifier's accuracy is not the
    /// generator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether a failed gate blocks the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Blocks the release.
    Error,
    /// Only reported.
    Warn,
}

/// `[[gate]]`: a threshold on one metric.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGate {
    /// The metric's name: one under `[metrics]`, or `checkpoint.*`, `artifact.<path>.size_mb`,
    /// `smoke.*`.
    pub metric: String,
    /// The value must be at least this.
    pub min: Option<f64>,
    /// The value must be at most this.
    pub max: Option<f64>,
    /// The value may be worse than the previous release's by at most this much.
    pub max_regression: Option<f64>,
    /// The value may be worse than the previous release's by at most this percentage.
    pub max_regression_pct: Option<f64>,
    /// For regression gates: which direction is better. Default: lower for names containing
    /// `loss`, `fid`, `latency`, `size`, `nan`, `inf`, `diff`, `_ms` or `bytes`, higher otherwise.
    pub higher_is_better: Option<bool>,
    /// Pass a regression gate when there is no previous release to compare with. Default: false.
    pub allow_missing_baseline: Option<bool>,
    /// `error` (default) blocks the release; `warn` only reports.
    pub severity: Option<Severity>,
}

/// `[checks]`: built-in checks every release gets unless switched off.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawChecks {
    /// Every configured artifact ends up in the bundle, and every image the card links exists.
    /// Default: true.
    pub files_exist: Option<bool>,
    /// No NaN or Inf in the converted weights. Default: true.
    pub finite_weights: Option<bool>,
    /// The smoke test's sample checks (finite, mean and std bounds, conditioning) block the
    /// release. Default: true.
    pub valid_samples: Option<bool>,
    /// The size limits below apply. Default: true.
    pub size_limits: Option<bool>,
    /// Largest safetensors output, in MB (10^6 bytes). Default: 150.
    pub max_weights_mb: Option<f64>,
    /// Largest generator ONNX (with external data), in MB. Default: 150.
    pub max_generator_mb: Option<f64>,
    /// Largest classifier ONNX (with external data), in MB. Default: 100.
    pub max_classifier_mb: Option<f64>,
    /// Where regression gates find the previous release's metrics when `--baseline` is not
    /// given: `hub` reads `metrics.json` at the Hub's latest release tag (offline, or with no
    /// release yet, gates report `no-baseline`); `none` (default) uses no baseline.
    pub baseline: Option<BaselineSource>,
}

/// Where the regression baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineSource {
    /// No baseline unless `--baseline FILE` is given.
    None,
    /// The Hub's latest release.
    Hub,
}

/// A dataset reference for `model-index`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawEvalDataset {
    /// Display name, e.g. `Oxford-IIIT Pet`.
    pub name: String,
    /// Hub dataset id or type, e.g. `oxford-iiit-pet`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Dataset split. Default: none.
    pub split: Option<String>,
}

/// `[card]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCard {
    /// A minijinja template replacing the built-in model card, relative to release.toml.
    pub template: Option<String>,
    /// The dataset named in `model-index` results.
    pub eval_dataset: Option<RawEvalDataset>,
    /// Metrics written into `model-index`.
    #[serde(default)]
    pub eval_metrics: Vec<String>,
    /// Extra values available to the template as `extra.<key>`.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `[bundle]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBundle {
    /// Extra files copied into the Hub folder, relative to release.toml.
    #[serde(default)]
    pub include: Vec<String>,
    /// Folder of the sample images inside the bundle. Default: `samples`.
    pub samples_dir: Option<String>,
}

/// `[publish]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPublish {
    /// Publish to the Hugging Face Hub. Default: true.
    pub hub: Option<bool>,
    /// Create a GitHub release. Default: true.
    pub github_release: Option<bool>,
    /// Bundle paths (globs) attached to the GitHub release.
    #[serde(default)]
    pub github_assets: Vec<String>,
    /// Delete files on the Hub that the bundle no longer has. Default: false.
    pub prune: Option<bool>,
}

/// `[space]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSpace {
    /// The Space repository, `owner/name`. `check` writes the Space's files into `<out>/space/`;
    /// `publish` does not release them yet.
    pub repo: String,
    /// The Space's title. Default: `model.name`.
    pub title: Option<String>,
    /// The Space's emoji. Default: 🐱.
    pub emoji: Option<String>,
    /// Gradient start colour: red, yellow, green, blue, indigo, purple, pink or gray. Default: pink.
    pub color_from: Option<String>,
    /// Gradient end colour, from the same list. Default: indigo.
    pub color_to: Option<String>,
    /// One line shown on the Space's card (at most 60 characters).
    pub short_description: Option<String>,
    /// Which generator the page runs: `full`, or the name of a generator variant (a `quantize`
    /// variant or an `[[onnx]]` with `variant`). Default: the quantized variant when the release
    /// builds one, else `full`.
    pub generator: Option<String>,
    /// The class the page shows first, by name. Default: the first class.
    pub breed: Option<String>,
    /// The seed the page shows first. Default: `smoke.seed`, else 42.
    pub seed: Option<u64>,
    /// Euler steps the page shows first. Default: `generator.steps`.
    pub steps: Option<u32>,
    /// Guidance scale the page shows first (explicit guidance only). Default:
    /// `generator.cfg-scale`.
    pub guidance_scale: Option<f32>,
}
