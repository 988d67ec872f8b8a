//! Command-line types (clap derive). Doc comments here are the `--help` text users read.
//!
//! Layer 7, a front end: the flags; imports the configuration only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Release a diffusion model from CI: convert checkpoints without running pickle code, smoke-test
/// the ONNX generator, gate on metrics, render the model card, publish to the Hub and GitHub.
///
/// Exit codes: 0 success (or a clean dry run), 1 refused (a gate, scan or smoke check failed),
/// 2 error (bad configuration or input, I/O, network, authentication).
#[derive(Debug, Parser)]
#[command(name = "tinydit-release", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The ONNX Runtime library (`libonnxruntime.so.1.x.y`). Otherwise: `$ORT_DYLIB_PATH`, next
    /// to this executable, then an installed Python `onnxruntime` package.
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Print only errors and data.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// When to use colours. `NO_COLOR` turns them off.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to write ANSI colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate, convert, scan, smoke-test, gate and render the card: the whole release bundle,
    /// with no network and no token. What a pull request runs.
    Check(CheckArgs),
    /// Print exactly what `publish` would do: files with size and sha256, deletions, tags and
    /// the release. No network writes, no token.
    Plan(PlanArgs),
    /// Check, then upload to the Hub, tag the Hub and GitHub, and create the GitHub release.
    Publish(PublishArgs),
    /// Convert a PyTorch checkpoint to safetensors without executing any of its code.
    Convert(ConvertArgs),
    /// Security-scan checkpoint files without converting them.
    Scan(ScanArgs),
    /// Quantize an ONNX model's MatMul and Gemm weights to int8 (weight-only, symmetric, per
    /// output channel, with DequantizeLinear): activations stay float.
    Quantize(QuantizeArgs),
    /// Run the smoke test of the generator alone.
    Smoke(SmokeArgs),
    /// Generate images with the ONNX generator (the Rust counterpart of `inference.py`).
    Sample(SampleArgs),
    /// Render the model card alone.
    Card(CardArgs),
    /// The GitHub Action entrypoint: reads `INPUT_*` and `GITHUB_*` variables.
    Action,
    /// Print the JSON Schema of release.toml (for editor completion).
    Schema,
    /// Check release.toml files quickly (syntax, keys, values, paths): no conversion, no ONNX
    /// Runtime. For editors and pre-commit hooks.
    Validate(ValidateArgs),
    /// Check a release's files against its SHA256SUMS: a Hub release (`owner/name@v1.2.0`,
    /// compared with the GitHub release of the same tag) or a downloaded folder.
    Verify(crate::verify::VerifyArgs),
    /// Print a shell completion script, e.g. `tinydit-release completions bash >
    /// /etc/bash_completion.d/tinydit-release`.
    Completions(CompletionsArgs),
}

/// `validate`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The release.toml files to check.
    #[arg(value_name = "FILE", default_value = "release.toml")]
    pub files: Vec<PathBuf>,
    /// Do not fail when a file release.toml names (a checkpoint, an ONNX file, a metric report)
    /// is missing: on a developer's machine such artifacts are often downloaded only in CI. The
    /// paths must still stay inside the repository.
    #[arg(long)]
    pub allow_missing_inputs: bool,
}

/// `completions`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where release.toml is.
#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The release configuration.
    #[arg(long, short, default_value = "release.toml", value_name = "PATH")]
    pub config: PathBuf,
}

/// `check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// Folder the release bundle and reports are written to.
    #[arg(long, short, default_value = "dist", value_name = "DIR")]
    pub out: PathBuf,
    /// The release version (default: from the tag or `version.value`).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// The previous release's `metrics.json`, for regression gates, or `hub` for the Hub's
    /// latest release (default: `[checks] baseline` in release.toml).
    #[arg(long, value_name = "FILE|hub")]
    pub baseline: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `plan`
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// The release version (default: from the tag or `version.value`).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// The folder `check` wrote (holding `manifest.json` and `bundle/`).
    #[arg(long, default_value = "dist", value_name = "DIR")]
    pub bundle: PathBuf,
    /// Print the plan as JSON on stdout (default: Markdown, as a pull request shows it).
    #[arg(long)]
    pub json: bool,
}

/// `publish`
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// The release version (default: from the tag or `version.value`).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: Option<String>,
    /// Publish the bundle an earlier `check --out DIR` built, instead of running `check` again.
    /// It is trusted as built: use only one built in this run from the commit being released
    /// (a bundle that names another commit is refused), never a pull request's artifact.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Folder `check` writes the bundle and reports to (without `--bundle`).
    #[arg(long, short, default_value = "dist", value_name = "DIR")]
    pub out: PathBuf,
    /// The previous release's `metrics.json`, or `hub`, for regression gates (without `--bundle`).
    #[arg(long, value_name = "FILE|hub")]
    pub baseline: Option<PathBuf>,
    /// Run every check and print the plan, but write nothing to the Hub or GitHub.
    #[arg(long)]
    pub dry_run: bool,
    /// Publish although tracked files have uncommitted changes (untracked files never count).
    #[arg(long)]
    pub allow_dirty: bool,
    /// Print the result (version, Hub commit and URL, GitHub release URL) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `convert`
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The PyTorch checkpoint (`.pt`, `.pth`, `.ckpt`, `.bin`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// The safetensors file to write.
    #[arg(long, short, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Which weights: `auto` (EMA if present), `ema`, `model`, or a dotted path.
    #[arg(long, default_value = "auto", value_name = "W")]
    pub weights: String,
    /// Output element type.
    #[arg(long, value_enum, default_value_t = DtypeArg::Keep, value_name = "D")]
    pub dtype: DtypeArg,
    /// Key prefix removed when every key carries it (repeatable). Default: `module.`, `_orig_mod.`.
    #[arg(long = "strip-prefix", value_name = "P")]
    pub strip_prefixes: Vec<String>,
    /// Shard into `model-0000N-of-0000M.safetensors` files of at most this size, e.g. `5GB`.
    #[arg(long, value_name = "SIZE")]
    pub max_shard_size: Option<String>,
    /// Also compute each tensor's sha256 for the report (one more pass over the bytes).
    #[arg(long)]
    pub tensor_sha256: bool,
    /// Most bytes the written tensors may take together, e.g. `2GB`. Default: 4 x the
    /// checkpoint's tensor data + 1 MiB (a view repeating elements, stride 0, can claim more).
    #[arg(long, value_name = "SIZE")]
    pub max_output_bytes: Option<String>,
    /// Print the conversion report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `quantize`
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The float ONNX model.
    #[arg(value_name = "IN.onnx")]
    pub input: PathBuf,
    /// The quantized model to write (with `OUT.onnx.data` beside it when the input has external
    /// data).
    #[arg(long, short, value_name = "OUT.onnx")]
    pub output: PathBuf,
    /// Weights with fewer elements stay float.
    #[arg(long, value_name = "N", default_value_t = crate::onnx::quantize::DEFAULT_MIN_ELEMENTS)]
    pub min_elements: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--dtype` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// Keep each tensor's dtype.
    Keep,
    /// 32-bit float.
    F32,
    /// 16-bit float (refuses values out of range).
    F16,
    /// bfloat16.
    Bf16,
}

/// `scan`
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Checkpoint files to scan; every one is reported. Exit code: the worst of them, 0 all
    /// clean, 1 something refused (dangerous or unsupported), 2 a file is malformed or unreadable.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print findings as JSON on stdout (the same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format: `human`, `json`, or `sarif` (SARIF 2.1.0 for GitHub code scanning, e.g.
    /// `scan --format sarif *.pt > checkpoints.sarif`).
    #[arg(long, value_enum, default_value_t = ScanFormat::Human)]
    pub format: ScanFormat,
}

/// `scan --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// One line per file and finding.
    Human,
    /// The scan reports as JSON.
    Json,
    /// A SARIF 2.1.0 log.
    Sarif,
}

/// `smoke`
#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// Folder the sample images are written to.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the smoke report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Execution providers to try, in order, instead of `smoke.providers` (e.g. `--providers
    /// cuda` on a GPU runner).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PROVIDER")]
    pub providers: Vec<crate::config::Provider>,
    /// Fail unless the first provider runs, as `smoke.require-provider = true`: a GPU job whose
    /// CUDA provider cannot run fails instead of passing on the CPU.
    #[arg(long)]
    pub require_provider: bool,
}

/// `sample`
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The generator ONNX model.
    #[arg(long, value_name = "GEN.onnx")]
    pub model: PathBuf,
    /// The release configuration. Default: `release.toml` when it exists here; otherwise the
    /// `config.json` and `generation_config.json` of the bundle the model is in (next to it or
    /// up to 3 folders above), as `check` writes them.
    #[arg(long, short, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Class by name or index (repeatable). Default: every class.
    #[arg(long, value_name = "NAME|INDEX")]
    pub breed: Vec<String>,
    /// Images per class.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub num_images: u32,
    /// Guidance scale (default: from release.toml or the bundle).
    #[arg(long, value_name = "S")]
    pub cfg_scale: Option<f32>,
    /// Euler steps (default: from release.toml or the bundle).
    #[arg(long, value_name = "K")]
    pub steps: Option<u32>,
    /// Noise seed.
    #[arg(long, default_value_t = 42, value_name = "N")]
    pub seed: u64,
    /// Folder the PNG images are written to.
    #[arg(long, short, default_value = "samples", value_name = "DIR")]
    pub out: PathBuf,
    /// Initial noise (float32 `[B, C, H, W]`, NumPy .npy) instead of drawing it.
    #[arg(long, value_name = "FILE.npy")]
    pub noise: Option<PathBuf>,
    /// Write the final sampler state (before it becomes an image) as .npy.
    #[arg(long, value_name = "FILE.npy")]
    pub save_tensor: Option<PathBuf>,
}

/// `card`
#[derive(Debug, Args)]
pub struct CardArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ConfigArg,
    /// Where to write the card. Default: stdout.
    #[arg(long, short, value_name = "README.md")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
