//! The card stage: a Hugging Face model card (README.md) from real release data.
//!
//! [`CardContext`] is built purely from what earlier stages measured; [`render`] fills the
//! minijinja template (the built-in `templates/model_card.md.j2`, embedded at build time, or the
//! user's `card.template`) with strict undefined, so a typo in a template is an error instead of
//! an empty string. The YAML front matter is generated from data, not templated, in the shape
//! `huggingface_hub`'s `ModelCardData`/`EvalResult` write it, and [`validate`] parses the rendered
//! card back and checks it against the Hub's vocabularies before anything is uploaded.
//!
//! Layer 4, a stage: imports the configuration, `gates` and the floors below them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::ReleaseConfig;
use crate::error::Problem;
use crate::gates::{Metrics, fmt};
use crate::provenance::SourceCommit;

/// The built-in template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/model_card.md.j2");

/// Facts about the checkpoint the card describes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckpointFacts {
    /// The checkpoint's `config` dict (architecture hyper-parameters), if it has one.
    pub architecture: BTreeMap<String, serde_json::Value>,
    /// Parameters in the converted weights.
    pub parameters: Option<u64>,
    /// Training steps, from the checkpoint.
    pub steps: Option<f64>,
    /// Final training loss, from the checkpoint.
    pub final_loss: Option<f64>,
}

/// One sample image in the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct SampleImage {
    /// Class index.
    pub class_index: usize,
    /// Bundle path of the PNG.
    pub path: String,
}

/// Everything a card is rendered from, gathered by the check stage.
#[derive(Debug, Clone, Default)]
pub struct CardInputs {
    /// The release version, when known.
    pub version: Option<String>,
    /// The Git commit the release is built from.
    pub source: Option<crate::provenance::SourceCommit>,
    /// The converted checkpoint.
    pub checkpoint: Option<CheckpointFacts>,
    /// Every metric of this release.
    pub metrics: Metrics,
    /// The execution provider the smoke test ran on.
    pub provider: Option<String>,
    /// Sample images, one or more per class.
    pub samples: Vec<SampleImage>,
    /// Bundle path of the overall sample grid.
    pub gallery: Option<String>,
    /// Bundle files with their size in bytes.
    pub files: Vec<(String, u64)>,
    /// Generator variants (quantized exports) and their agreement with the full model.
    pub variants: Vec<CardVariant>,
    /// What this card lacks because it is rendered without running `check` (`card` alone);
    /// the card says so at its top.
    pub missing: Vec<String>,
}

/// The values a card template sees.
#[derive(Debug, Clone, Serialize)]
pub struct CardContext {
    /// YAML front matter, without the `---` fences.
    pub front_matter: String,
    /// `[model]`.
    pub model: serde_json::Value,
    /// Version and commit.
    pub provenance: Provenance,
    /// Architecture hyper-parameters as `(name, value)` rows; empty when unknown.
    pub architecture: Vec<(String, String)>,
    /// Parameter count, e.g. `1.2M`.
    pub parameters: Option<String>,
    /// Training facts; `None` when the checkpoint has none.
    pub training: Option<BTreeMap<String, String>>,
    /// Classes with their sample images.
    pub classes: Vec<CardClass>,
    /// Sampling defaults; `None` without a generator.
    pub generation: Option<BTreeMap<String, String>>,
    /// Bundle path of the safetensors weights.
    pub weights_file: Option<String>,
    /// Bundle path of the generator ONNX.
    pub generator_file: Option<String>,
    /// Bundle path of the classifier ONNX.
    pub classifier_file: Option<String>,
    /// Name of the generator's inputs, for the usage snippet.
    pub inputs: Option<BTreeMap<String, String>>,
    /// The performance table: every figure with where it comes from.
    pub performance: Vec<PerformanceRow>,
    /// Provider the smoke test ran on.
    pub provider: Option<String>,
    /// Bundle path of the overall sample grid.
    pub gallery: Option<String>,
    /// Files of the release with sizes.
    pub files: Vec<(String, String)>,
    /// Generator variants and their agreement with the full model.
    pub variants: Vec<CardVariant>,
    /// `[card] extra`.
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The year, for citations.
    pub year: String,
    /// What the card lacks (a preview rendered by `card` alone); empty for a release's card.
    pub missing: Vec<String>,
    /// The demo Space (`[space]`): `repo` and `title`, for the card's link.
    pub space: Option<serde_json::Value>,
}

/// What a card rendered by `card` alone (no conversion, no smoke test) cannot contain.
pub const PREVIEW_LACKS: &[&str] = &[
    "the architecture and parameter count (read from the converted checkpoint)",
    "sample images and the measured performance (from the smoke test)",
    "the list of files and their sizes (from the bundle)",
];

/// One figure of the card's performance table.
#[derive(Debug, Clone, Serialize)]
pub struct PerformanceRow {
    /// What the figure is, e.g. `fid` or `latency per image, p50 (ms)`.
    pub metric: String,
    /// The value, formatted.
    pub value: String,
    /// Where it comes from: `measured by the smoke test (cpu)` or `reported by
    /// `evaluation_report.json``.
    pub source: String,
    /// What it measures, when known.
    pub measures: Option<String>,
    /// Whether tinydit-release measured it for this release (otherwise a training run reported
    /// it and it was not re-measured).
    pub measured: bool,
}

/// Release version and source commit.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Release version.
    pub version: Option<String>,
    /// Git commit id.
    pub git_commit: Option<String>,
    /// Whether the work tree had uncommitted changes to tracked files.
    pub dirty: bool,
    /// Whether the state of the work tree could not be told (the tool then says so).
    pub dirty_unknown: bool,
    /// `tinydit-release X.Y.Z`.
    pub tool: String,
}

/// A class and its samples.
#[derive(Debug, Clone, Serialize)]
pub struct CardClass {
    /// Class index.
    pub index: usize,
    /// Class name.
    pub name: String,
    /// Bundle paths of its sample images.
    pub samples: Vec<String>,
}

/// A generator variant (a quantized export, built by `check` or provided) and its agreement
/// with the full-precision generator, as plain, already formatted values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardVariant {
    /// Its name (`[[onnx]] variant` or `quantize.variant`).
    pub name: String,
    /// Its bundle path.
    pub file: String,
    /// Its size with external data, e.g. `12.3 MB`.
    pub size: String,
    /// What `quantize` did; `None` for a provided variant.
    pub quantized: Option<CardQuantized>,
    /// Whether it passed its agreement gates (the built-in minimums).
    pub passed: bool,
    /// The judgement in one sentence (what failed, or the worst values).
    pub detail: String,
    /// Worst velocity cosine similarity along the full model's trajectory.
    pub velocity_cosine_min: Option<String>,
    /// Worst relative L2 error of the velocity.
    pub velocity_rel_l2_max: Option<String>,
    /// Worst per-class PSNR of the final images, in dB.
    pub psnr_min_db: Option<String>,
    /// Worst per-class SSIM of the final images.
    pub ssim_min: Option<String>,
    /// Per class: `(class, PSNR dB, SSIM)`.
    pub classes: Vec<(String, String, String)>,
    /// Bundle path of the side-by-side grid (one row per class: full | variant).
    pub grid: Option<String>,
}

/// What `quantize` did to a variant, formatted for the card.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardQuantized {
    /// Weights rewritten as int8 + scale + `DequantizeLinear`.
    pub weights: usize,
    /// Their float32 size, e.g. `1.2 MB`.
    pub float_quantized: String,
    /// Float initializers left in float (biases, norms, embeddings, small weights).
    pub float_kept: String,
    /// Size of the full model, e.g. `5.0 MB`.
    pub size_before: String,
    /// Size after over size before, e.g. `0.27`.
    pub ratio: String,
    /// `(before, after)` when the opset import was raised.
    pub opset_raised: Option<(i64, i64)>,
    /// Largest relative L2 error of a dequantized weight.
    pub max_weight_error: String,
}

/// The model-index shape written by `huggingface_hub` (`ModelCardData` with `eval_results`).
#[derive(Debug, Clone, Serialize)]
struct FrontMatter {
    #[serde(skip_serializing_if = "Option::is_none")]
    base_model: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    datasets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    library_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline_tag: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(rename = "model-index", skip_serializing_if = "Vec::is_empty")]
    model_index: Vec<ModelIndexEntry>,
}

#[derive(Debug, Clone, Serialize)]
struct ModelIndexEntry {
    name: String,
    results: Vec<EvalResult>,
}

#[derive(Debug, Clone, Serialize)]
struct EvalResult {
    task: EvalTask,
    dataset: EvalDataset,
    metrics: Vec<EvalMetric>,
}

#[derive(Debug, Clone, Serialize)]
struct EvalTask {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Clone, Serialize)]
struct EvalDataset {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct EvalMetric {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    value: f64,
}

/// Builds the template context from the configuration and what earlier stages measured.
pub fn context(config: &ReleaseConfig, inputs: &CardInputs) -> CardContext {
    let model = &config.model;
    let front = FrontMatter {
        base_model: model.base_model.clone(),
        datasets: model.datasets.clone(),
        library_name: model.library_name.clone(),
        license: model.license.clone(),
        pipeline_tag: model.pipeline_tag.clone(),
        tags: model.tags.clone(),
        model_index: model_index(config, &inputs.metrics),
    };
    let front_matter =
        serde_yaml_ng::to_string(&front).expect("plain strings and numbers always serialize");
    let checkpoint = inputs.checkpoint.clone().unwrap_or_default();
    let architecture = checkpoint
        .architecture
        .iter()
        .filter(|(_, v)| v.is_number() || v.is_string() || v.is_boolean())
        .map(|(k, v)| (k.clone(), plain(v)))
        .collect();
    let mut training = BTreeMap::new();
    if let Some(steps) = checkpoint.steps {
        training.insert("steps".to_owned(), fmt(steps));
    }
    if let Some(loss) = checkpoint.final_loss {
        training.insert("final_loss".to_owned(), fmt(loss));
    }
    let generator = config.generator.as_ref();
    let classes = generator
        .map(|g| {
            g.classes
                .iter()
                .enumerate()
                .map(|(index, name)| CardClass {
                    index,
                    name: name.clone(),
                    samples: inputs
                        .samples
                        .iter()
                        .filter(|s| s.class_index == index)
                        .map(|s| s.path.clone())
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let generation = generator.map(|g| {
        let mut rows = BTreeMap::new();
        rows.insert("image_size".to_owned(), g.image_size.to_string());
        rows.insert("channels".to_owned(), g.channels.to_string());
        rows.insert("steps".to_owned(), g.steps.to_string());
        rows.insert("cfg".to_owned(), format!("{:?}", g.cfg).to_lowercase());
        rows.insert("cfg_scale".to_owned(), fmt(f64::from(g.cfg_scale)));
        if let Some(uncond) = g.uncond_class {
            rows.insert("uncond_class".to_owned(), uncond.to_string());
        }
        rows
    });
    let inputs_map = generator.map(|g| {
        BTreeMap::from([
            ("noise".to_owned(), g.noise_input.clone()),
            ("timestep".to_owned(), g.timestep_input.clone()),
            ("label".to_owned(), g.label_input.clone()),
            ("output".to_owned(), g.output.clone()),
        ])
    });
    CardContext {
        front_matter,
        model: serde_json::json!({
            "name": model.name,
            "hub_repo": model.hub_repo,
            "github_repo": model.github_repo,
            "license": model.license,
            "pipeline_tag": model.pipeline_tag,
            "library_name": model.library_name,
            "tags": model.tags,
            "datasets": model.datasets,
            "base_model": model.base_model,
            "private": model.private.unwrap_or(false),
        }),
        provenance: Provenance {
            version: inputs.version.clone(),
            git_commit: inputs.source.as_ref().map(|s| s.commit.clone()),
            dirty: inputs.source.as_ref().is_some_and(SourceCommit::is_dirty),
            dirty_unknown: inputs.source.as_ref().is_some_and(|s| s.dirty.is_none()),
            tool: format!("tinydit-release {}", env!("CARGO_PKG_VERSION")),
        },
        architecture,
        parameters: checkpoint.parameters.map(human_count),
        training: (!training.is_empty()).then_some(training),
        classes,
        generation,
        weights_file: config.checkpoints.first().map(|c| c.output.clone()),
        generator_file: config.generator_onnx().map(|o| o.output.clone()),
        classifier_file: config.classifier_onnx().map(|o| o.output.clone()),
        inputs: inputs_map,
        performance: performance_rows(config, &inputs.metrics, inputs.provider.as_deref()),
        provider: inputs.provider.clone(),
        gallery: inputs.gallery.clone(),
        files: file_rows(&inputs.files, &config.bundle.samples_dir),
        variants: inputs.variants.clone(),
        extra: config.card.extra.clone(),
        year: current_year().to_string(),
        missing: inputs.missing.clone(),
        space: config.space.as_ref().map(|space| {
            serde_json::json!({
                "repo": space.repo,
                "title": space.title,
                "variant": space.variant,
            })
        }),
    }
}

fn model_index(config: &ReleaseConfig, metrics: &Metrics) -> Vec<ModelIndexEntry> {
    let (Some(dataset), Some(task)) = (&config.card.eval_dataset, &config.model.pipeline_tag)
    else {
        return Vec::new();
    };
    let values: Vec<EvalMetric> = config
        .card
        .eval_metrics
        .iter()
        .filter_map(|name| {
            metrics.get(name).map(|value| EvalMetric {
                kind: name.clone(),
                name: name.replace('_', " "),
                value: *value,
            })
        })
        .collect();
    if values.is_empty() {
        return Vec::new();
    }
    vec![ModelIndexEntry {
        name: config.model.name.clone(),
        results: vec![EvalResult {
            task: EvalTask { kind: task.clone() },
            dataset: EvalDataset {
                name: dataset.name.clone(),
                kind: dataset.kind.clone(),
                split: dataset.split.clone(),
            },
            metrics: values,
        }],
    }]
}

/// The performance table: training metrics (reported by a file of the training run, never
/// re-measured), the checkpoint's own loss, then what the smoke test measured on this release's
/// ONNX files. Each row says where its figure comes from and, where known, what it measures.
/// Bookkeeping counters (NaN counts, bytes) stay in `metrics.json`.
fn performance_rows(
    config: &ReleaseConfig,
    metrics: &Metrics,
    provider: Option<&str>,
) -> Vec<PerformanceRow> {
    use crate::names::metric;
    const MEASURED: &[(&str, &str, &str)] = &[
        (
            metric::LATENCY_MS_P50,
            "latency per image, p50 (ms)",
            "time to generate one image with the default steps and guidance",
        ),
        (
            metric::LATENCY_MS_P95,
            "latency per image, p95 (ms)",
            "time to generate one image with the default steps and guidance",
        ),
        (
            metric::STEP_MS_P50,
            "latency per generator call, p50 (ms)",
            "one forward pass of the ONNX generator",
        ),
        (
            metric::CLASSIFIER_AGREEMENT,
            "classifier agreement with the expected label",
            "share of the generated samples the bundled classifier labels as expected: a check \
             of the generator through the classifier, not the classifier's own accuracy",
        ),
        (
            metric::GOLDEN_MAX_ABS_DIFF,
            "ONNX vs PyTorch, max abs difference",
            "largest difference between the ONNX generator and the training framework's \
             outputs on the golden inputs",
        ),
    ];
    let measured_by = match provider {
        Some(provider) => format!("measured by the smoke test (`{provider}`)"),
        None => "measured by the smoke test".to_owned(),
    };
    let mut rows: Vec<PerformanceRow> = config
        .metrics
        .iter()
        .filter_map(|(name, source)| {
            metrics.get(name).map(|v| PerformanceRow {
                metric: name.clone(),
                value: fmt(*v),
                source: format!("reported by `{}`", file_name(&source.file.configured)),
                measures: source.description.clone(),
                measured: false,
            })
        })
        .collect();
    if let Some(loss) = metrics.get(metric::CHECKPOINT_LOSS) {
        rows.push(PerformanceRow {
            metric: "final training loss".to_owned(),
            value: fmt(*loss),
            source: "reported by the checkpoint".to_owned(),
            measures: Some("the training objective at the last saved step".to_owned()),
            measured: false,
        });
    }
    for (key, label, measures) in MEASURED {
        if let Some(value) = metrics.get(*key) {
            rows.push(PerformanceRow {
                metric: (*label).to_owned(),
                value: fmt(*value),
                source: measured_by.clone(),
                measures: Some((*measures).to_owned()),
                measured: true,
            });
        }
    }
    for (key, value) in metrics {
        if let Some(path) = metric::artifact_of(key) {
            rows.push(PerformanceRow {
                metric: format!("size of `{path}` (MB)"),
                value: fmt(*value),
                source: "measured in the bundle".to_owned(),
                measures: None,
                measured: true,
            });
        }
    }
    rows
}

/// The last component of a configured path, for the card (`../../reports/eval.json` ->
/// `eval.json`): where a figure comes from without leaking the repository's layout.
fn file_name(configured: &str) -> &str {
    configured.rsplit(['/', '\\']).next().unwrap_or(configured)
}

/// Bundle files for the card's table; the sample images are one row, not one per image.
fn file_rows(files: &[(String, u64)], samples_dir: &str) -> Vec<(String, String)> {
    let prefix = format!("{samples_dir}/");
    let (samples, others): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|(path, _)| path.starts_with(&prefix));
    let mut rows: Vec<(String, String)> = others
        .iter()
        .map(|(path, bytes)| (path.clone(), human_bytes(*bytes)))
        .collect();
    if !samples.is_empty() {
        let total = samples.iter().map(|(_, b)| b).sum();
        rows.push((
            format!("{prefix} ({} images)", samples.len()),
            human_bytes(total),
        ));
    }
    rows
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `22_034_187` -> `22.0M`.
fn human_count(count: u64) -> String {
    match count {
        0..1_000 => count.to_string(),
        1_000..1_000_000 => format!("{:.1}K", count as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", count as f64 / 1e6),
        _ => format!("{:.1}B", count as f64 / 1e9),
    }
}

/// Bytes as `12.3 MB` (decimal, as the Hub shows sizes).
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.2} GB", bytes as f64 / 1e9),
    }
}

fn current_year() -> u64 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970 to a civil year (Howard Hinnant's algorithm, year part only).
    let days = seconds / 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + u64::from(month <= 2)
}

/// Renders a card with the given template source.
pub fn render(
    template: &str,
    template_name: &str,
    context: &CardContext,
) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION_LIMIT);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    add_escape_filters(&mut env);
    let built_in = template_name == "built-in";
    let bug_hint = "this is a bug in tinydit-release's built-in template; please report it at \
                    https://github.com/d-oit/tinydit-release/issues";
    env.add_template(template_name, template).map_err(|err| {
        let hint = if built_in {
            bug_hint
        } else {
            "fix the template's syntax at that line; see docs/card.md"
        };
        anyhow::Error::new(
            Problem::new(template_error("does not parse", template_name, &err)).hint(hint),
        )
    })?;
    let rendered = env
        .get_template(template_name)
        .and_then(|t| t.render(minijinja::value::Serde(context)))
        .map_err(|err| {
            let message = template_error("failed to render", template_name, &err);
            let hint = if built_in {
                bug_hint
            } else if matches!(err.kind(), minijinja::ErrorKind::OutOfFuel) {
                "the template does too much work (a long loop, or a very large string); a card \
                 template should only lay out the values it is given"
            } else {
                "fix the template at that line; docs/card.md lists the values a card template \
                 sees, and templates may not recurse deeper than 100 levels"
            };
            anyhow::Error::new(Problem::new(message).hint(hint))
        })?;
    if rendered.len() > MAX_CARD_BYTES {
        return Err(Problem::new(format!(
            "the card template `{template_name}` rendered {} bytes, more than the {MAX_CARD_BYTES} \
             accepted for a model card",
            rendered.len()
        ))
        .hint("a model card is a page of text; link large content instead of inlining it")
        .into());
    }
    Ok(rendered)
}

/// The filters that put a value where it lands in a card, so that a name or path from
/// `release.toml` or a checkpoint stays text there:
/// - `md`: a value as Markdown text ([`crate::report::markdown::text`]), e.g. in a heading or a
///   table cell;
/// - `md_code`: a value as an inline code span ([`crate::report::markdown::code`]);
/// - `md_prose`: a sentence that quotes values in backticks, such as a performance row's source
///   ([`crate::report::markdown::prose`]);
/// - `attr`: the value of a double-quoted HTML attribute (`alt="…"`), also safe in a table row;
/// - `url`: a relative address (`src="…"`, `](…)`), percent-encoded except `/`;
/// - `py`: a Python string literal, quotes included;
/// - `sh`: one POSIX shell word, quoted when it needs to be (as Python's `shlex.quote` does);
/// - `line`: one line, for the inside of a fenced block (control characters made visible).
fn add_escape_filters(env: &mut minijinja::Environment<'_>) {
    fn filter(escape: fn(&str) -> String) -> impl Fn(minijinja::Value) -> String {
        move |value| match value.as_str() {
            Some(text) => escape(text),
            None => escape(&value.to_string()),
        }
    }
    env.add_filter("md", filter(crate::report::markdown::text));
    env.add_filter("md_code", filter(crate::report::markdown::code));
    env.add_filter("md_prose", filter(crate::report::markdown::prose));
    env.add_filter("attr", filter(html_attribute));
    env.add_filter("url", filter(relative_url));
    env.add_filter("py", filter(python_string));
    env.add_filter("sh", filter(shell_word));
    env.add_filter(
        "line",
        filter(|text| crate::report::escape(text).into_owned()),
    );
}

/// The value of a double-quoted HTML attribute: `&`, `<`, `>`, quotes, `|` (which would split a
/// Markdown table row) and backticks as character references; control characters made visible,
/// so the value stays on its row.
pub fn html_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in crate::report::escape(value).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '|' => out.push_str("&#124;"),
            '`' => out.push_str("&#96;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative address: every byte but ASCII letters, digits, `-._~` and `/` percent-encoded,
/// so it can end neither a Markdown link nor an HTML attribute. [`image_links`] decodes it.
pub fn relative_url(path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A Python string literal (double quotes) of `value`: backslashes, quotes and every control,
/// bidi or invisible character escaped, so the literal ends where it should and reads as what
/// it holds.
pub fn python_string(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if crate::report::needs_escape(c) => match u32::from(c) {
                code @ 0..=0xff => {
                    let _ = write!(out, "\\x{code:02x}");
                }
                code @ 0x100..=0xffff => {
                    let _ = write!(out, "\\u{code:04x}");
                }
                code => {
                    let _ = write!(out, "\\U{code:08x}");
                }
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One POSIX shell word: left as it is when it holds only ASCII letters, digits and
/// `@%+=:,./-_` (Python's `shlex.quote` rule), else single-quoted with each `'` written `'\''`.
/// A value with a control character (a newline would also end the Markdown code block) is
/// written as a `$'…'` word instead (POSIX.1-2024, bash, zsh, ksh), as bash's `printf %q` does.
pub fn shell_word(value: &str) -> String {
    use std::fmt::Write as _;
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return value.to_owned();
    }
    let hidden = crate::report::needs_escape;
    if !value.chars().any(hidden) {
        return format!("'{}'", value.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let mut bytes = [0; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(out, "\\x{byte:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Work and memory a card template may use (minijinja fuel: about one unit per instruction and
/// per 64 bytes allocated). The built-in template needs under 1 % of it
/// (`built_in_template_fits_the_fuel_budget`); a template that loops or builds huge strings stops
/// with an error instead of hanging.
pub const TEMPLATE_FUEL: u64 = 2_000_000;
/// Nesting of includes, macros and blocks a template may reach.
pub const TEMPLATE_RECURSION_LIMIT: usize = 100;
/// Largest rendered card accepted.
pub const MAX_CARD_BYTES: usize = 4 * 1024 * 1024;

/// `the card template `card.md.j2` failed to render at line 12: ...`.
fn template_error(what: &str, template_name: &str, err: &minijinja::Error) -> String {
    let at = err
        .line()
        .map(|line| format!(" at line {line}"))
        .unwrap_or_default();
    let detail = err.detail().map(|d| format!(" ({d})")).unwrap_or_default();
    format!(
        "the card template `{template_name}` {what}{at}: {}{detail}",
        err.kind()
    )
}

/// Renders the card for a release: the user's template if configured, else the built-in one.
pub fn render_for(config: &ReleaseConfig, context: &CardContext) -> anyhow::Result<String> {
    match &config.card.template {
        Some(template) => {
            let source = crate::input::read_text(
                &template.path,
                &template.configured,
                "`card.template`",
                crate::input::MAX_TEXT_BYTES,
            )?;
            render(&source, &template.configured, context)
        }
        None => render(DEFAULT_TEMPLATE, "built-in", context),
    }
}

/// Parses a rendered card's front matter back and checks it as the Hub would.
///
/// Returns every problem found; an empty list means the metadata is acceptable.
pub fn validate(card: &str) -> Vec<String> {
    let Some(yaml) = front_matter_of(card) else {
        return vec!["the card has no YAML front matter (`---` at the top)".to_owned()];
    };
    let data: serde_json::Value = match serde_yaml_ng::from_str(yaml) {
        Ok(data) => data,
        Err(err) => return vec![format!("the front matter is not valid YAML: {err}")],
    };
    let Some(map) = data.as_object() else {
        return vec!["the front matter is not a YAML mapping".to_owned()];
    };
    let mut problems = Vec::new();
    if let Some(license) = map.get("license") {
        match license.as_str() {
            Some(id) if crate::vocab::is_license(id) => {
                if id == "other" && !map.contains_key("license_name") {
                    problems.push("`license: other` needs a `license_name`".to_owned());
                }
            }
            Some(id) => problems.push(format!(
                "`license: {id}` is not a license id the Hub accepts"
            )),
            None => problems.push("`license` must be a string".to_owned()),
        }
    }
    if let Some(tag) = map.get("pipeline_tag") {
        match tag.as_str() {
            Some(t) if crate::vocab::is_pipeline_tag(t) => {}
            Some(t) => problems.push(format!(
                "`pipeline_tag: {t}` is not a Hub pipeline tag ({})",
                crate::vocab::pipeline_tag_hint(t)
            )),
            None => problems.push("`pipeline_tag` must be a string".to_owned()),
        }
    }
    for key in ["library_name", "base_model"] {
        if let Some(value) = map.get(key)
            && !value.is_string()
            && !is_string_list(value)
        {
            problems.push(format!("`{key}` must be a string"));
        }
    }
    for key in ["tags", "datasets", "metrics"] {
        if let Some(value) = map.get(key)
            && !is_string_list(value)
        {
            problems.push(format!("`{key}` must be a list of strings"));
        }
    }
    if let Some(index) = map.get("model-index") {
        validate_model_index(index, &mut problems);
    }
    problems
}

fn validate_model_index(index: &serde_json::Value, problems: &mut Vec<String>) {
    let Some(entries) = index.as_array() else {
        problems.push("`model-index` must be a list".to_owned());
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        if !entry.get("name").is_some_and(serde_json::Value::is_string) {
            problems.push(format!("`model-index[{i}].name` must be a string"));
        }
        let Some(results) = entry.get("results").and_then(serde_json::Value::as_array) else {
            problems.push(format!("`model-index[{i}].results` must be a list"));
            continue;
        };
        for (j, result) in results.iter().enumerate() {
            let at = format!("model-index[{i}].results[{j}]");
            match result
                .pointer("/task/type")
                .and_then(serde_json::Value::as_str)
            {
                Some(t) if crate::vocab::is_pipeline_tag(t) => {}
                Some(t) => problems.push(format!("`{at}.task.type` = `{t}` is not a Hub task")),
                None => problems.push(format!("`{at}.task.type` is missing")),
            }
            for field in ["name", "type"] {
                if !result
                    .pointer(&format!("/dataset/{field}"))
                    .is_some_and(serde_json::Value::is_string)
                {
                    problems.push(format!("`{at}.dataset.{field}` must be a string"));
                }
            }
            let Some(metrics) = result.get("metrics").and_then(serde_json::Value::as_array) else {
                problems.push(format!("`{at}.metrics` must be a list"));
                continue;
            };
            for (k, metric) in metrics.iter().enumerate() {
                if !metric.get("type").is_some_and(serde_json::Value::is_string) {
                    problems.push(format!("`{at}.metrics[{k}].type` must be a string"));
                }
                if !metric
                    .get("value")
                    .is_some_and(serde_json::Value::is_number)
                {
                    problems.push(format!("`{at}.metrics[{k}].value` must be a number"));
                }
            }
        }
    }
}

fn is_string_list(value: &serde_json::Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(serde_json::Value::is_string))
}

/// The YAML between the opening `---` line and the next `---` line.
pub fn front_matter_of(card: &str) -> Option<&str> {
    let rest = card.strip_prefix("---\n")?;
    let end = match rest.find("\n---\n") {
        Some(i) => i + 1,
        None => rest.strip_suffix("\n---")?.len() + 1,
    };
    Some(&rest[..end])
}

/// Relative links to images in a card's body (`![alt](path)` and `<img src="path">`).
pub fn image_links(card: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = card;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find(')') {
            links.push(after[..end].to_owned());
        }
        rest = &rest[start + 2..];
    }
    let mut rest = card;
    while let Some(start) = rest.find("src=\"") {
        let after = &rest[start + 5..];
        if let Some(end) = after.find('"') {
            links.push(after[..end].to_owned());
        }
        rest = after;
    }
    links
        .into_iter()
        .map(|l| percent_decoded(&l))
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !lower.contains("://")
                && !lower.starts_with('#')
                && [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                    .iter()
                    .any(|ext| lower.ends_with(ext))
        })
        .collect()
}

/// `%XX` sequences decoded (what [`relative_url`] wrote); anything else kept.
fn percent_decoded(link: &str) -> String {
    let bytes = link.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_found_and_checked_like_the_hub() {
        let card = "---\nlicense: apache-2.0\npipeline_tag: image-generation\nlibrary_name: transformers\nmetrics:\n- final_loss\n---\n# x\n";
        assert_eq!(
            front_matter_of(card),
            Some(
                "license: apache-2.0\npipeline_tag: image-generation\nlibrary_name: transformers\nmetrics:\n- final_loss\n"
            )
        );
        let problems = validate(card);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("`pipeline_tag: image-generation` is not a Hub pipeline tag")
        );
        assert!(validate("# no front matter\n")[0].contains("no YAML front matter"));
        let problems = validate("---\nlicense: Apache 2\ntags: [1]\n---\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn model_index_shape_is_checked() {
        let card = "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: image-generation\n    dataset:\n      name: d\n    metrics:\n    - type: fid\n      value: high\n---\n";
        let problems = validate(card);
        assert_eq!(
            problems,
            [
                "`model-index[0].results[0].task.type` = `image-generation` is not a Hub task",
                "`model-index[0].results[0].dataset.type` must be a string",
                "`model-index[0].results[0].metrics[0].value` must be a number",
            ]
        );
    }

    #[test]
    fn image_links_are_relative_images_only() {
        let body = "![a](samples/a.png) [doc](docs/x.md) ![r](https://x/y.png) <img src=\"samples/grid.png\" width=\"256\">";
        assert_eq!(image_links(body), ["samples/a.png", "samples/grid.png"]);
        // Addresses the template percent-encoded are compared as the bundle names them.
        let body = format!("![a]({})", relative_url("my samples/猫.png"));
        assert_eq!(image_links(&body), ["my samples/猫.png"]);
    }

    #[test]
    fn values_are_quoted_for_where_they_land() {
        assert_eq!(python_string("onnx/g.onnx"), "\"onnx/g.onnx\"");
        assert_eq!(
            python_string("a\"b\\c\nd\u{202e}e\u{85}猫\u{1f408}"),
            "\"a\\\"b\\\\c\\nd\\u202ee\\x85猫\u{1f408}\""
        );
        assert_eq!(shell_word("onnx/g.onnx"), "onnx/g.onnx");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b'c$(x)`y`"), "'a b'\\''c$(x)`y`'");
        assert_eq!(shell_word("猫"), "'猫'");
        assert_eq!(shell_word("a'\nb\\"), "$'a\\'\\nb\\\\'");
        assert_eq!(shell_word("\u{202e}"), "$'\\xe2\\x80\\xae'");
        assert_eq!(
            html_attribute("a\"b'c<d>&e|f`g\nh"),
            "a&quot;b&#39;c&lt;d&gt;&amp;e&#124;f&#96;g\\nh"
        );
        assert_eq!(
            relative_url("samples/00-a b\"(x).png"),
            "samples/00-a%20b%22%28x%29.png"
        );
        assert_eq!(
            percent_decoded(&relative_url("s/猫 %41.png")),
            "s/猫 %41.png"
        );
        assert_eq!(percent_decoded("a%2"), "a%2");
        assert_eq!(percent_decoded("a%+1b"), "a%+1b");
    }

    #[test]
    fn strict_undefined_turns_template_typos_into_errors() {
        let config_less = CardContext {
            front_matter: String::new(),
            model: serde_json::json!({"name": "m"}),
            provenance: Provenance {
                version: None,
                git_commit: None,
                dirty: false,
                dirty_unknown: false,
                tool: "t".to_owned(),
            },
            architecture: vec![],
            parameters: None,
            training: None,
            classes: vec![],
            generation: None,
            weights_file: None,
            generator_file: None,
            classifier_file: None,
            inputs: None,
            performance: vec![],
            provider: None,
            gallery: None,
            files: vec![],
            variants: vec![],
            extra: BTreeMap::new(),
            year: "2026".to_owned(),
            missing: vec![],
            space: None,
        };
        assert_eq!(
            render("# {{ model.name }}\n", "t.j2", &config_less).expect("renders"),
            "# m\n"
        );
        let err = render("# {{ model.nmae }}\n", "t.j2", &config_less).expect_err("typo");
        assert!(err.to_string().contains("t.j2"), "{err}");
    }

    #[test]
    fn sizes_and_counts_read_well() {
        assert_eq!(human_count(22_034_187), "22.0M");
        assert_eq!(human_bytes(89_000_000), "89.0 MB");
        assert_eq!(human_bytes(512), "512 B");
        assert!(current_year() >= 2026);
    }
}
