//! The smoke stage: run the ONNX generator with ONNX Runtime and look at what it draws.
//!
//! [`run`] decides everything before it runs anything, then reports every check:
//!
//! 1. static checks of each ONNX file (`crate::onnx`): protobuf, opsets, external data, and the
//!    declared I/O against `[generator]` / `[classifier]`; golden files loaded and matched;
//! 2. ONNX Runtime loaded, the generator session opened on the first provider that works
//!    (`session.rs`), a fallback printed as a warning and recorded;
//! 3. `samples-per-class` images of every class sampled (`sampler.rs`) from seeded noise
//!    (`noise.rs`): sample `k` of every class starts from the same noise;
//! 4. checks, each also a metric: finite values; per-image mean/std bounds; velocity (sampling
//!    moved the images away from their noise: a zero velocity returns the noise, whose statistics
//!    pass); conditioning as an effect size (classes from the same noise differ by a fair share of
//!    how much one class differs across noise; with one sample per class a second sample of a few
//!    classes is drawn for that); determinism and latency (the first sample alone, a warm-up then
//!    [`LATENCY_RUNS`] timed runs, all giving identical bytes); then golden parity and the
//!    classifier when configured;
//! 5. a PNG per sample, a grid per class and an overall grid (`images.rs`).
//!
//! A failed check is a value in [`SmokeReport`] (the caller refuses the release, exit code 1);
//! a model or configuration that cannot be run is an `Err` (exit code 2). [`sample`] is the
//! user-facing `sample` command built from the same parts.

pub mod agreement;
pub mod bundle;
pub mod checks;
pub mod classifier;
pub mod golden;
pub mod images;
pub mod noise;
pub mod npy;
pub mod runtime;
pub mod sampler;
pub mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::sampler::{Guidance, Sampled, SamplerPlan};
use self::session::{OpenedSession, SessionSettings, provider_name};
use crate::config::{CfgMode, GeneratorConfig, Provider, ReleaseConfig};
use crate::error::Problem;
use crate::onnx::{self, ModelSummary};
use crate::report::Reporter;

/// The metric names the smoke test records; each is declared in
/// `config::validate::SMOKE_METRICS` so gates may use it.
pub mod metric {
    /// Milliseconds to open the generator session.
    pub const LOAD_MS: &str = "smoke.load_ms";
    /// Median milliseconds of one generator call.
    pub const STEP_MS_P50: &str = "smoke.step_ms_p50";
    /// Median milliseconds per image (a batch's wall time divided by its images).
    pub const LATENCY_MS_P50: &str = "smoke.latency_ms_p50";
    /// 95th percentile of the same.
    pub const LATENCY_MS_P95: &str = "smoke.latency_ms_p95";
    /// NaN and infinite values in all samples.
    pub const NONFINITE_COUNT: &str = "smoke.nonfinite_count";
    /// Largest |mean| of a sample.
    pub const SAMPLE_MEAN_ABS_MAX: &str = "smoke.sample_mean_abs_max";
    /// Smallest standard deviation of a sample.
    pub const SAMPLE_STD_MIN: &str = "smoke.sample_std_min";
    /// Largest standard deviation of a sample.
    pub const SAMPLE_STD_MAX: &str = "smoke.sample_std_max";
    /// Fraction of class pairs whose samples from the same noise differ.
    pub const CLASS_DISTINCT_FRACTION: &str = "smoke.class_distinct_fraction";
    /// Class conditioning as an effect size: between-class over within-class RMS difference.
    pub const CLASS_EFFECT_SIZE: &str = "smoke.class_effect_size";
    /// RMS of (samples - their starting noise) over RMS of the noise; 0 for a zero velocity.
    pub const NOISE_DISPLACEMENT: &str = "smoke.noise_displacement";
    /// Largest absolute difference from the golden outputs.
    pub const GOLDEN_MAX_ABS_DIFF: &str = "smoke.golden_max_abs_diff";
    /// Largest relative difference from the golden outputs.
    pub const GOLDEN_MAX_REL_DIFF: &str = "smoke.golden_max_rel_diff";
    /// Fraction of samples the classifier labels as expected.
    pub const CLASSIFIER_AGREEMENT: &str = "smoke.classifier_agreement";
}

/// Timed runs of one image alone behind `smoke.latency_ms_p50` / `_p95` (after one warm-up run):
/// with 20, p95 lies between the two slowest runs rather than being the one slowest.
pub const LATENCY_RUNS: usize = 20;

/// With one sample per class, a second sample of this many classes (from fresh noise) measures
/// the spread within a class for the conditioning check.
pub const SPREAD_CLASSES: usize = 4;

/// One check of the smoke test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `finite`, `sample-stats`, `conditioning`, `determinism`, `latency`, `golden`,
    /// `classifier`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, in one line.
    pub detail: String,
}

impl Check {
    fn new(name: &str, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        }
    }
}

/// One sample image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleImage {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub class_name: String,
    /// Which sample of the class (0-based).
    pub index: usize,
    /// The PNG, relative to the output folder, `/`-separated.
    pub png: String,
    /// The classifier's label for it, when a classifier ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier_label: Option<String>,
}

/// A grid image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// The class, or `None` for the overall grid.
    pub class: Option<usize>,
    /// Its name, or `None` for the overall grid.
    pub class_name: Option<String>,
    /// The PNG, relative to the output folder.
    pub png: String,
}

/// Everything the smoke test found.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    /// The generator as statically inspected.
    pub generator: ModelSummary,
    /// The classifier, when one was checked.
    pub classifier: Option<ModelSummary>,
    /// The execution provider the generator really ran on.
    pub provider: Provider,
    /// The device it ran on (`cpu`, `cuda:0`).
    pub device: &'static str,
    /// Why earlier providers were skipped, when one was.
    pub provider_fallback: Option<String>,
    /// Intra-op threads.
    pub threads: u32,
    /// Euler steps.
    pub steps: u32,
    /// Guidance mode.
    pub cfg: CfgMode,
    /// Guidance scale (used by `explicit` only).
    pub cfg_scale: f32,
    /// Noise seed.
    pub seed: u64,
    /// Timed single-image runs behind the latency percentiles.
    pub latency_runs: usize,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Metrics for gates (`smoke.*`).
    pub metrics: BTreeMap<String, f64>,
    /// One entry per sample, class-major.
    pub samples: Vec<SampleImage>,
    /// One grid per class, then the overall grid.
    pub grids: Vec<Grid>,
}

impl SmokeReport {
    /// Every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The overall grid, relative to the output folder.
    pub fn gallery(&self) -> Option<&str> {
        self.grids
            .iter()
            .find(|g| g.class.is_none())
            .map(|g| g.png.as_str())
    }
}

/// The generator entries of a configuration, or an error saying what is missing.
fn generator_of(
    config: &ReleaseConfig,
) -> anyhow::Result<(&crate::config::OnnxConfig, &GeneratorConfig)> {
    let onnx = config.generator_onnx().ok_or_else(|| {
        Problem::new(format!(
            "`{}` has no `[[onnx]]` entry with `role = \"generator\"`",
            config.file
        ))
        .hint("add the exported generator: `[[onnx]]` with `path = ...` and `role = \"generator\"`")
    })?;
    let generator = config.generator.as_ref().ok_or_else(|| {
        Problem::new(format!("`{}` has no `[generator]` table", config.file))
            .hint("describe the generator's inputs, classes and sampling in `[generator]`")
    })?;
    Ok((onnx, generator))
}

/// Loads ONNX Runtime (once per process) and says which library is in use.
fn load_runtime(
    search: &runtime::OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<ort::environment::Environment> {
    let (env, library) = runtime::environment(search)?;
    reporter.status(
        "Loaded",
        format!("ONNX Runtime from `{}`", library.display()),
    );
    Ok(env)
}

/// Runs the smoke test of `config`'s generator, writing images into `out_dir`.
pub fn run(
    config: &ReleaseConfig,
    search: &runtime::OrtSearch,
    out_dir: &Path,
    reporter: &Reporter,
) -> anyhow::Result<SmokeReport> {
    let (onnx_entry, generator) = generator_of(config)?;
    let smoke = config.smoke.clone().unwrap_or_default();
    let display = |path: &Path| config.roots.display(path);

    // 1. Static checks, before any session.
    let summary = onnx::inspect(&onnx_entry.path.path, &onnx_entry.path.configured)?;
    let io = onnx::check_generator(&summary, generator)?;
    reporter.status("Checked", describe(&summary));
    let guidance = Guidance::from_config(generator, generator.cfg_scale)?;
    let plan = SamplerPlan::new(
        generator,
        guidance,
        generator.steps,
        smoke.batch_size as usize,
        io.fixed_batch,
    );
    let classes = generator.classes.len();
    let per_class = smoke.samples_per_class as usize;
    plan.check_budget(classes * per_class, &onnx_entry.path.configured)?;
    let classifier_setup = match (&config.classifier, config.classifier_onnx()) {
        (Some(classifier), Some(entry)) => {
            let summary = onnx::inspect(&entry.path.path, &entry.path.configured)?;
            let io = onnx::check_classifier(&summary, classifier, generator.channels)?;
            classifier::check_budget(
                classifier,
                io,
                generator.channels as usize,
                smoke.batch_size as usize,
                &entry.path.configured,
            )?;
            reporter.status("Checked", describe(&summary));
            Some((classifier, entry, summary, io))
        }
        (Some(_), None) => {
            reporter.skipped(
                "classifier check: `[classifier]` has no `[[onnx]]` entry with `role = \"classifier\"`",
            );
            None
        }
        _ => None,
    };
    let golden = smoke
        .golden
        .as_ref()
        .map(|g| golden::load(g, &summary, display).map(|set| (g, set)))
        .transpose()?;
    let settings = SessionSettings::from(&smoke);

    // 2. ONNX Runtime and the generator session.
    let env = load_runtime(search, reporter)?;
    let mut opened = open_reporting(&env, (&onnx_entry.path.path, &summary), &settings, reporter)?;
    let provider = opened.provider;
    let provider_fallback = opened.fallback.clone();

    // 3. Sampling.
    let len = plan.image_len();
    let mut base_noise = vec![0.0_f32; per_class * len];
    noise::NoiseStream::new(smoke.seed).fill(&mut base_noise);
    let mut labels = Vec::with_capacity(classes * per_class);
    let mut all_noise = Vec::with_capacity(classes * per_class * len);
    for class in 0..classes {
        for k in 0..per_class {
            labels.push(class as i64);
            all_noise.extend_from_slice(&base_noise[k * len..(k + 1) * len]);
        }
    }
    reporter.status(
        "Sampling",
        format!(
            "{} image(s), {} step(s), cfg {}, on {}",
            labels.len(),
            plan.steps,
            cfg_text(guidance),
            provider_name(opened.provider)
        ),
    );
    let bar = reporter.progress(sampler::calls(&plan, labels.len()), "sampling");
    let sampled = sampler::sample(&mut opened.session, &plan, &labels, &all_noise, &bar)?;
    bar.finish_and_clear();

    // 4. Checks.
    let mut report_checks = Vec::new();
    let mut metrics = BTreeMap::new();
    let names = &generator.classes;
    report_checks.push(finite_check(
        &sampled.finals,
        len,
        per_class,
        names,
        &mut metrics,
    ));
    report_checks.push(stats_check(&sampled.finals, len, &mut metrics));
    report_checks.push(velocity_check(&sampled.finals, &all_noise, &mut metrics));
    let hidden = indicatif::ProgressBar::hidden();
    // The spread within a class needs two samples of a class from different noise; with one
    // sample per class, a second one of the first few classes is drawn for it.
    let extra_spread = if per_class < 2 && classes >= 2 {
        let spread_classes = classes.min(SPREAD_CLASSES);
        let mut stream = vec![0.0_f32; 2 * len];
        noise::NoiseStream::new(smoke.seed).fill(&mut stream);
        let second: Vec<f32> = stream[len..].repeat(spread_classes);
        let extra = sampler::sample(
            &mut opened.session,
            &plan,
            &labels[..spread_classes],
            &second,
            &hidden,
        )?;
        let mut spread = Vec::with_capacity(spread_classes * 2 * len);
        for (class, image) in extra.finals.chunks(len).enumerate() {
            spread.extend_from_slice(&sampled.finals[class * len..(class + 1) * len]);
            spread.extend_from_slice(image);
        }
        Some((spread, spread_classes))
    } else {
        None
    };
    let spread = match &extra_spread {
        Some((spread, spread_classes)) => (spread.as_slice(), *spread_classes, 2),
        None => (sampled.finals.as_slice(), classes, per_class),
    };
    report_checks.push(conditioning_check(
        &sampled.finals,
        (classes, per_class, len),
        spread,
        names,
        &mut metrics,
    ));
    // Determinism and latency: a warm-up run of the first sample alone, then `LATENCY_RUNS`
    // timed runs of it, every one of which must give the warm-up's bytes.
    let single_plan = SamplerPlan {
        batch_size: 1,
        ..plan.clone()
    };
    let first = &all_noise[..len];
    let reference = sampler::sample(
        &mut opened.session,
        &single_plan,
        &labels[..1],
        first,
        &hidden,
    )?;
    let mut runs = Vec::with_capacity(LATENCY_RUNS);
    let mut image_ms = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        let run = sampler::sample(
            &mut opened.session,
            &single_plan,
            &labels[..1],
            first,
            &hidden,
        )?;
        image_ms.extend_from_slice(&run.image_ms);
        runs.push(run.finals);
    }
    report_checks.push(determinism_check(
        &reference.finals,
        &runs,
        name_of(names, 0),
        smoke.seed,
    ));
    report_checks.push(latency_check(
        opened.load_ms,
        &sampled,
        &image_ms,
        &mut metrics,
    ));

    if let Some((golden_config, set)) = &golden {
        reporter.status(
            "Comparing",
            format!("with golden outputs `{}`", golden_config.outputs.configured),
        );
        let results = golden::compare(
            &mut opened.session,
            set,
            golden_config.atol,
            golden_config.rtol,
        )?;
        report_checks.push(golden_check(&results, golden_config, &mut metrics));
    }
    drop(opened);

    let mut predicted: Option<Vec<Option<usize>>> = None;
    let mut classifier_summary = None;
    if let Some((classifier, entry, summary, cio)) = classifier_setup {
        let mut session = open_reporting(&env, (&entry.path.path, &summary), &settings, reporter)?;
        let shape = plan.image_shape;
        let mut inputs = Vec::new();
        for image in sampled.finals.chunks(len) {
            inputs.extend(classifier::preprocess(image, shape, classifier));
        }
        reporter.status(
            "Classifying",
            format!(
                "{} sample(s) with `{}`",
                labels.len(),
                entry.path.configured
            ),
        );
        let labels_found = classifier::classify(
            &mut session.session,
            classifier,
            cio,
            &inputs,
            labels.len(),
            smoke.batch_size as usize,
        )?;
        report_checks.push(classifier_check(
            classifier,
            &labels_found,
            &labels,
            &mut metrics,
        ));
        predicted = Some(labels_found);
        classifier_summary = Some(summary);
    }

    // 5. Images.
    let rows: Vec<(usize, &str)> = (0..classes).map(|c| (c, name_of(names, c))).collect();
    let (mut sample_images, grids) =
        write_gallery(out_dir, &sampled.finals, plan.image_shape, &rows, per_class)?;
    if let (Some(predicted), Some(classifier)) = (&predicted, &config.classifier) {
        for (sample, label) in sample_images.iter_mut().zip(predicted) {
            sample.classifier_label = label.and_then(|i| classifier.labels.get(i).cloned());
        }
    }
    reporter.status(
        "Wrote",
        format!(
            "{} sample(s) and {} grid(s) to `{}`",
            sample_images.len(),
            grids.len(),
            out_dir.display()
        ),
    );
    Ok(SmokeReport {
        generator: summary,
        classifier: classifier_summary,
        provider,
        device: session::device_name(provider),
        provider_fallback,
        threads: smoke.threads,
        steps: plan.steps,
        cfg: generator.cfg,
        cfg_scale: generator.cfg_scale,
        seed: smoke.seed,
        latency_runs: LATENCY_RUNS,
        checks: report_checks,
        metrics,
        samples: sample_images,
        grids,
    })
}

/// What the `sample` command is asked for (its flags, typed).
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// The generator ONNX model.
    pub model: PathBuf,
    /// Classes by name or index; empty means every class.
    pub breeds: Vec<String>,
    /// Images per class.
    pub num_images: u32,
    /// Guidance scale instead of `generator.cfg-scale` (explicit guidance only).
    pub cfg_scale: Option<f32>,
    /// Euler steps instead of `generator.steps`.
    pub steps: Option<u32>,
    /// Noise seed (ignored with `noise`).
    pub seed: u64,
    /// Folder for the PNGs.
    pub out: PathBuf,
    /// Initial noise from a `.npy` file instead of the seed.
    pub noise: Option<PathBuf>,
    /// Where to write the final state as `.npy`.
    pub save_tensor: Option<PathBuf>,
}

/// What `sample` did.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// The model as given.
    pub model: String,
    /// The execution provider it ran on.
    pub provider: Provider,
    /// Why earlier providers were skipped, when one was.
    pub provider_fallback: Option<String>,
    /// Euler steps.
    pub steps: u32,
    /// Guidance mode.
    pub cfg: CfgMode,
    /// Guidance scale, for explicit guidance.
    pub cfg_scale: Option<f32>,
    /// The seed, unless the noise came from a file.
    pub seed: Option<u64>,
    /// One entry per image, class-major.
    pub images: Vec<SampleImage>,
    /// One grid per class, then the overall grid.
    pub grids: Vec<Grid>,
    /// The `.npy` file with the final states, when asked for.
    pub tensor: Option<String>,
    /// Milliseconds to open the session.
    pub load_ms: f64,
    /// Milliseconds of sampling.
    pub sample_ms: f64,
}

/// Upper bounds that keep a typo from asking for days of compute or gigabytes of noise.
const MAX_IMAGES: u32 = 10_000;
const MAX_STEPS: u32 = 10_000;

/// Resolves `--breed` values (a name, case-insensitively, or an index) to class indices, in
/// order, without repeats.
pub fn resolve_breeds(given: &[String], classes: &[String]) -> anyhow::Result<Vec<usize>> {
    if given.is_empty() {
        return Ok((0..classes.len()).collect());
    }
    let mut out = Vec::new();
    for text in given {
        let found = match text.trim().parse::<usize>() {
            Ok(index) if index < classes.len() => Some(index),
            Ok(index) => {
                return Err(Problem::new(format!(
                    "`--breed {index}` is not a class index (0..{})",
                    classes.len()
                ))
                .into());
            }
            Err(_) => classes
                .iter()
                .position(|c| c == text)
                .or_else(|| classes.iter().position(|c| c.eq_ignore_ascii_case(text))),
        };
        let Some(index) = found else {
            let names: Vec<&str> = classes.iter().map(String::as_str).collect();
            let hint = match crate::config::validate::did_you_mean(text, &names) {
                Some(guess) => format!("did you mean `{guess}`?"),
                None => format!("the classes are {}", names.join(", ")),
            };
            return Err(
                Problem::new(format!("`--breed {text}` is not a class name"))
                    .hint(hint)
                    .into(),
            );
        };
        if !out.contains(&index) {
            out.push(index);
        }
    }
    Ok(out)
}

/// Where `sample` takes the generator's contract from.
#[derive(Debug, Clone)]
pub enum SampleSource {
    /// A `release.toml` (`--config`, or the one in the current folder).
    Config(PathBuf),
    /// No `release.toml`: the bundle's `config.json` and `generation_config.json` found next to
    /// the model or above it.
    Bundle,
}

/// The `sample` command: generate images with a generator ONNX model under the contract of
/// `source` (`overrides` apply to a `release.toml`).
pub fn sample(
    source: &SampleSource,
    overrides: &crate::config::Overrides,
    search: &runtime::OrtSearch,
    options: &SampleOptions,
    reporter: &Reporter,
) -> anyhow::Result<SampleReport> {
    crate::output::check_dir(&options.out, "--out")?;
    if let Some(path) = &options.save_tensor {
        check_output_file(path, "--save-tensor")?;
    }
    let (generator, smoke) = match source {
        SampleSource::Config(path) => {
            let config = crate::config::load(path, overrides)?;
            let generator = config.generator.clone().ok_or_else(|| {
                Problem::new(format!("`{}` has no `[generator]` table", config.file)).hint(
                    "`sample` reads the model's inputs, classes and sampling from `[generator]`",
                )
            })?;
            (generator, config.smoke.clone().unwrap_or_default())
        }
        SampleSource::Bundle => {
            let found = bundle::load(&options.model)?;
            reporter.status(
                "Read",
                format!(
                    "the generator's contract from `{}` and `{}`",
                    found.dir.join("config.json").display(),
                    found.dir.join("generation_config.json").display()
                ),
            );
            (found.generator, crate::config::SmokeConfig::default())
        }
    };
    let generator = &generator;
    let steps = options.steps.unwrap_or(generator.steps);
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(Problem::new(format!(
            "`--steps` must be within 1..={MAX_STEPS}, found {steps}"
        ))
        .into());
    }
    if !(1..=MAX_IMAGES).contains(&options.num_images) {
        return Err(Problem::new(format!(
            "`--num-images` must be within 1..={MAX_IMAGES}, found {}",
            options.num_images
        ))
        .into());
    }
    if let Some(scale) = options.cfg_scale {
        if !(scale.is_finite() && (0.0..=100.0).contains(&scale)) {
            return Err(Problem::new(format!(
                "`--cfg-scale` must be within 0..=100, found {scale}"
            ))
            .into());
        }
        if generator.cfg != CfgMode::Explicit {
            return Err(Problem::new(format!(
                "`--cfg-scale` has no effect: `[generator]` has cfg = \"{}\"",
                if generator.cfg == CfgMode::Baked {
                    "baked"
                } else {
                    "none"
                }
            ))
            .hint("a baked guidance scale is fixed in the graph; drop `--cfg-scale`")
            .into());
        }
    }
    let breeds = resolve_breeds(&options.breeds, &generator.classes)?;
    let per_class = options.num_images as usize;
    let model_display = options.model.display().to_string();
    let summary = onnx::inspect(&options.model, &model_display)?;
    let io = onnx::check_generator(&summary, generator)?;
    reporter.status("Checked", describe(&summary));
    let scale = options.cfg_scale.unwrap_or(generator.cfg_scale);
    let guidance = Guidance::from_config(generator, scale)?;
    let plan = SamplerPlan::new(
        generator,
        guidance,
        steps,
        smoke.batch_size as usize,
        io.fixed_batch,
    );
    let len = plan.image_len();
    let count = breeds.len() * per_class;
    plan.check_budget(count, &model_display)?;
    let mut labels = Vec::with_capacity(count);
    for &class in &breeds {
        labels.extend(std::iter::repeat_n(class as i64, per_class));
    }
    let noise = if let Some(path) = &options.noise {
        let display = path.display().to_string();
        let (shape, data) = npy::read_f32(path, &display)?;
        let want = [
            count,
            plan.image_shape[0],
            plan.image_shape[1],
            plan.image_shape[2],
        ];
        if shape != want {
            return Err(Problem::new(format!(
                "`{display}` has shape {shape:?}, {count} image(s) ({} class(es) x {per_class}) \
                 need {want:?}",
                breeds.len()
            ))
            .hint("one row per image, class-major: every image of the first class, then the next")
            .into());
        }
        data
    } else {
        let mut base = vec![0.0_f32; per_class * len];
        noise::NoiseStream::new(options.seed).fill(&mut base);
        let mut all = Vec::with_capacity(count * len);
        for _ in &breeds {
            all.extend_from_slice(&base);
        }
        all
    };
    let settings = SessionSettings::from(&smoke);
    let env = load_runtime(search, reporter)?;
    let mut opened = open_reporting(&env, (&options.model, &summary), &settings, reporter)?;
    reporter.status(
        "Sampling",
        format!(
            "{count} image(s), {steps} step(s), cfg {}",
            cfg_text(guidance)
        ),
    );
    let bar = reporter.progress(sampler::calls(&plan, count), "sampling");
    let started = std::time::Instant::now();
    let sampled = sampler::sample(&mut opened.session, &plan, &labels, &noise, &bar)?;
    let sample_ms = started.elapsed().as_secs_f64() * 1000.0;
    bar.finish_and_clear();
    let tensor = match &options.save_tensor {
        Some(path) => {
            let display = path.display().to_string();
            let shape = [
                count,
                plan.image_shape[0],
                plan.image_shape[1],
                plan.image_shape[2],
            ];
            npy::write_f32(path, &display, &shape, &sampled.finals)?;
            Some(display)
        }
        None => None,
    };
    let rows: Vec<(usize, &str)> = breeds
        .iter()
        .map(|&c| (c, name_of(&generator.classes, c)))
        .collect();
    let (images, grids) = write_gallery(
        &options.out,
        &sampled.finals,
        plan.image_shape,
        &rows,
        per_class,
    )?;
    let (nan, inf) = checks::nonfinite(&sampled.finals);
    if nan + inf > 0 {
        reporter.warn(format!(
            "the samples contain {nan} NaN and {inf} infinite values; their pixels are black or clipped"
        ));
    }
    Ok(SampleReport {
        model: model_display,
        provider: opened.provider,
        provider_fallback: opened.fallback.clone(),
        steps,
        cfg: generator.cfg,
        cfg_scale: (generator.cfg == CfgMode::Explicit).then_some(scale),
        seed: options.noise.is_none().then_some(options.seed),
        images,
        grids,
        tensor,
        load_ms: opened.load_ms,
        sample_ms,
    })
}

/// Refuses an output file path that cannot be written before any work is done: a folder (or
/// anything else that is not a file) at that path, or a parent folder that does not exist. A
/// symlink at the path is fine: it is replaced by the file, never written through.
fn check_output_file(path: &Path, what: &str) -> anyhow::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
        && !meta.file_type().is_symlink()
    {
        return Err(Problem::new(format!(
            "{what} `{}` exists and is not a file",
            path.display()
        ))
        .hint("name a file to write, e.g. `final.npy`")
        .into());
    }
    crate::output::refuse_symlinked_folder(path, what)?;
    let parent = crate::output::parent_of(path);
    if !parent.is_dir() {
        return Err(Problem::new(format!(
            "{what} `{}`: the folder `{}` does not exist",
            path.display(),
            parent.display()
        ))
        .hint("create the folder first, or name a file in an existing one")
        .into());
    }
    Ok(())
}

/// One line about a statically checked model: IR, opset, I/O, external data.
fn describe(summary: &ModelSummary) -> String {
    let list = |tensors: &[onnx::TensorInfo]| {
        tensors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let external = match summary.external_data.len() {
        0 => String::new(),
        n => format!(", {n} tensor(s) in external data"),
    };
    format!(
        "`{}`: IR {}, opset {}, {} -> {}{external}",
        summary.file,
        summary.ir_version,
        summary.opset,
        list(&summary.inputs),
        list(&summary.outputs)
    )
}

fn name_of(names: &[String], class: usize) -> &str {
    names.get(class).map_or("?", String::as_str)
}

fn cfg_text(guidance: Guidance) -> String {
    match guidance {
        Guidance::Explicit { scale, .. } => format!("explicit (scale {scale})"),
        Guidance::Baked => "baked into the graph".to_owned(),
        Guidance::None => "none".to_owned(),
    }
}

/// Opens a session, printing the provider and any fallback.
fn open_reporting(
    env: &ort::environment::Environment,
    summary: (&Path, &ModelSummary),
    settings: &SessionSettings,
    reporter: &Reporter,
) -> anyhow::Result<OpenedSession> {
    let (path, summary) = summary;
    let display = summary.file.as_str();
    let opened = session::open(env, path, display, summary.opset, settings)?;
    if let Some(fallback) = &opened.fallback {
        reporter.warn(format!(
            "`{display}` runs on `{}`, not the first provider in `smoke.providers`: {fallback}",
            provider_name(opened.provider)
        ));
    }
    reporter.status(
        "Opened",
        format!(
            "`{display}` on {} (`{}`{}) in {:.0} ms ({} intra-op thread(s))",
            provider_name(opened.provider),
            session::device_name(opened.provider),
            if settings.require_provider && opened.provider != crate::config::Provider::Cpu {
                ", every node"
            } else {
                ""
            },
            opened.load_ms,
            settings.threads
        ),
    );
    Ok(opened)
}

fn finite_check(
    finals: &[f32],
    len: usize,
    per_class: usize,
    class_names: &[String],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let (nan, inf) = checks::nonfinite(finals);
    metrics.insert(metric::NONFINITE_COUNT.to_owned(), (nan + inf) as f64);
    if nan + inf == 0 {
        return Check::new(
            "finite",
            true,
            format!(
                "all {} values of {} sample(s) are finite",
                finals.len(),
                finals.len() / len.max(1)
            ),
        );
    }
    let bad: Vec<usize> = finals
        .chunks(len)
        .enumerate()
        .filter(|(_, image)| image.iter().any(|v| !v.is_finite()))
        .map(|(i, _)| i)
        .collect();
    let first = bad[0];
    Check::new(
        "finite",
        false,
        format!(
            "{} of {} sample(s) contain NaN or infinite values ({nan} NaN, {inf} infinite), \
             the first is `{}` #{}",
            bad.len(),
            finals.len() / len.max(1),
            name_of(class_names, first / per_class.max(1)),
            first % per_class.max(1)
        ),
    )
}

fn stats_check(finals: &[f32], len: usize, metrics: &mut BTreeMap<String, f64>) -> Check {
    let Some(stats) = checks::summarize_stats(finals, len) else {
        return Check::new(
            "sample-stats",
            false,
            "not computed: samples contain NaN or infinite values",
        );
    };
    metrics.insert(metric::SAMPLE_MEAN_ABS_MAX.to_owned(), stats.mean_abs_max);
    metrics.insert(metric::SAMPLE_STD_MIN.to_owned(), stats.std_min);
    metrics.insert(metric::SAMPLE_STD_MAX.to_owned(), stats.std_max);
    let detail = format!(
        "max |mean| {:.3} (< {}), std {:.3}..{:.3} (within {}..{})",
        stats.mean_abs_max,
        checks::MEAN_ABS_MAX,
        stats.std_min,
        stats.std_max,
        checks::STD_MIN,
        checks::STD_MAX
    );
    Check::new("sample-stats", stats.within_bounds(), detail)
}

fn velocity_check(finals: &[f32], noise: &[f32], metrics: &mut BTreeMap<String, f64>) -> Check {
    let moved = checks::displacement(finals, noise);
    if moved.is_finite() {
        metrics.insert(metric::NOISE_DISPLACEMENT.to_owned(), moved);
    }
    if !moved.is_finite() {
        return Check::new(
            "velocity",
            false,
            "not computed: samples contain NaN or infinite values",
        );
    }
    if moved < checks::MIN_DISPLACEMENT {
        return Check::new(
            "velocity",
            false,
            format!(
                "the generator's velocity is zero: the samples are their input noise (moved by \
                 {moved:.1e} of the noise's RMS, needs {}), as from an untrained model or a \
                 zeroed final layer",
                checks::MIN_DISPLACEMENT
            ),
        );
    }
    Check::new(
        "velocity",
        true,
        format!(
            "sampling moved the images by {moved:.3} of their starting noise's RMS (needs {})",
            checks::MIN_DISPLACEMENT
        ),
    )
}

/// `(classes, per_class, len)` describe `finals`; `spread` is `(images, classes, per_class)` of
/// the images the within-class spread is measured on.
fn conditioning_check(
    finals: &[f32],
    (classes, per_class, len): (usize, usize, usize),
    spread: (&[f32], usize, usize),
    class_names: &[String],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let d = checks::distinctness(finals, classes, per_class, len);
    metrics.insert(metric::CLASS_DISTINCT_FRACTION.to_owned(), d.fraction());
    if d.total == 0 {
        metrics.insert(metric::CLASS_EFFECT_SIZE.to_owned(), 0.0);
        return Check::new("conditioning", true, "one class only: nothing to compare");
    }
    let Some(effect) = checks::class_effect(finals, classes, per_class, spread, len) else {
        return Check::new(
            "conditioning",
            false,
            "not computed: no class has two samples to measure the spread within a class",
        );
    };
    let size = effect.size();
    if size.is_finite() {
        metrics.insert(metric::CLASS_EFFECT_SIZE.to_owned(), size);
    }
    let measured = format!(
        "samples of different classes from the same noise differ by RMS {:.4} ({} pair(s)), \
         samples of one class from different noise by RMS {:.4} ({} pair(s)): effect size \
         {size:.3}, needs {}",
        effect.between,
        effect.between_pairs,
        effect.within,
        effect.within_pairs,
        checks::MIN_CLASS_EFFECT
    );
    if size.is_nan() {
        return Check::new(
            "conditioning",
            false,
            "not computed: samples contain NaN or infinite values",
        );
    }
    if size >= checks::MIN_CLASS_EFFECT {
        return Check::new("conditioning", true, measured);
    }
    let identical = match d.identical.first() {
        Some(&(a, b, k)) => format!(
            "; {} of {} class pairs give identical samples from the same noise, e.g. `{}` and \
             `{}` (sample #{k})",
            d.total - d.distinct,
            d.total,
            name_of(class_names, a),
            name_of(class_names, b)
        ),
        None => String::new(),
    };
    Check::new(
        "conditioning",
        false,
        format!("the model (nearly) ignores its class input: {measured}{identical}"),
    )
}

fn determinism_check(reference: &[f32], runs: &[Vec<f32>], class: &str, seed: u64) -> Check {
    let differing: Vec<usize> = runs
        .iter()
        .map(|run| {
            if run.len() == reference.len() {
                run.iter()
                    .zip(reference)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count()
            } else {
                reference.len().max(run.len())
            }
        })
        .collect();
    let total = runs.len() + 1;
    match differing.iter().position(|&n| n > 0) {
        None => Check::new(
            "determinism",
            true,
            format!("{total} runs of `{class}` with seed {seed} gave identical bytes"),
        ),
        Some(i) => Check::new(
            "determinism",
            false,
            format!(
                "{total} runs of `{class}` with seed {seed}: run {} differs from the first in {} \
                 of {} values",
                i + 2,
                differing[i],
                reference.len()
            ),
        ),
    }
}

fn latency_check(
    load_ms: f64,
    sampled: &Sampled,
    image_ms: &[f64],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let step_p50 = checks::percentile(&sampled.step_ms, 50.0);
    let p50 = checks::percentile(image_ms, 50.0);
    let p95 = checks::percentile(image_ms, 95.0);
    metrics.insert(metric::LOAD_MS.to_owned(), load_ms);
    metrics.insert(metric::STEP_MS_P50.to_owned(), step_p50);
    metrics.insert(metric::LATENCY_MS_P50.to_owned(), p50);
    metrics.insert(metric::LATENCY_MS_P95.to_owned(), p95);
    Check::new(
        "latency",
        true,
        format!(
            "load {load_ms:.0} ms; {step_p50:.2} ms per call (p50 of {} calls); one image alone \
             {p50:.1} ms (p50), {p95:.1} ms (p95) over {} timed runs after a warm-up; measured \
             only, gate with `smoke.latency_ms_p95`",
            sampled.step_ms.len(),
            image_ms.len()
        ),
    )
}

fn golden_check(
    results: &[golden::OutputParity],
    config: &crate::config::GoldenConfig,
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let max_abs = results.iter().map(|r| r.max_abs_diff).fold(0.0, f64::max);
    let max_rel = results.iter().map(|r| r.max_rel_diff).fold(0.0, f64::max);
    metrics.insert(metric::GOLDEN_MAX_ABS_DIFF.to_owned(), max_abs);
    metrics.insert(metric::GOLDEN_MAX_REL_DIFF.to_owned(), max_rel);
    let parts: Vec<String> = results
        .iter()
        .map(|r| match &r.shape_mismatch {
            Some((got, want)) => format!("`{}` has shape {got:?}, expected {want:?}", r.name),
            None if r.passed() => format!(
                "`{}` max abs diff {:.2e}, max rel diff {:.2e}",
                r.name, r.max_abs_diff, r.max_rel_diff
            ),
            None => format!(
                "`{}` {} of {} values outside atol {:e} + rtol {:e} (max abs diff {:.2e}, \
                 max rel diff {:.2e})",
                r.name,
                r.mismatched,
                r.elements,
                config.atol,
                config.rtol,
                r.max_abs_diff,
                r.max_rel_diff
            ),
        })
        .collect();
    Check::new(
        "golden",
        results.iter().all(golden::OutputParity::passed),
        parts.join("; "),
    )
}

fn classifier_check(
    config: &crate::config::ClassifierConfig,
    predicted: &[Option<usize>],
    classes: &[i64],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let expected_label = config
        .expect
        .as_ref()
        .and_then(|label| config.labels.iter().position(|l| l == label));
    let agreeing = predicted
        .iter()
        .zip(classes)
        .filter(|&(p, &class)| match (p, expected_label) {
            (Some(p), Some(label)) => *p == label,
            (Some(p), None) => *p as i64 == class,
            (None, _) => false,
        })
        .count();
    let fraction = if predicted.is_empty() {
        0.0
    } else {
        agreeing as f64 / predicted.len() as f64
    };
    metrics.insert(metric::CLASSIFIER_AGREEMENT.to_owned(), fraction);
    let expected = config
        .expect
        .as_ref()
        .map_or_else(|| "their own class".to_owned(), |l| format!("`{l}`"));
    Check::new(
        "classifier",
        true,
        format!(
            "{agreeing} of {} sample(s) classified as {expected} ({fraction:.2}); measured only, \
             gate with `smoke.classifier_agreement`",
            predicted.len()
        ),
    )
}

/// Writes a PNG per sample, a grid per class and the overall grid. Images are class-major:
/// `rows[r]` owns images `r * per_class .. (r + 1) * per_class`.
fn write_gallery(
    out_dir: &Path,
    finals: &[f32],
    shape: [usize; 3],
    rows: &[(usize, &str)],
    per_class: usize,
) -> anyhow::Result<(Vec<SampleImage>, Vec<Grid>)> {
    crate::output::prepare_dir(out_dir, "the samples folder")?;
    let len: usize = shape.iter().product();
    let pixels: Vec<images::Pixels> = finals
        .chunks(len)
        .map(|image| images::to_pixels(image, shape))
        .collect();
    let mut samples = Vec::new();
    let mut grids = Vec::new();
    let mut all_rows = Vec::new();
    let write = |name: &str, pixels: &images::Pixels, title: &str| -> anyhow::Result<String> {
        let path = out_dir.join(name);
        images::write_png(&path, &path.display().to_string(), pixels, title)?;
        Ok(name.to_owned())
    };
    for (r, &(class, class_name)) in rows.iter().enumerate() {
        let stem = format!("{class:02}-{}", images::file_stem(class_name));
        let tiles: Vec<&images::Pixels> =
            pixels[r * per_class..(r + 1) * per_class].iter().collect();
        for (k, tile) in tiles.iter().enumerate() {
            let png = write(
                &format!("{stem}-{k}.png"),
                tile,
                &format!("{class_name} #{k}"),
            )?;
            samples.push(SampleImage {
                class,
                class_name: class_name.to_owned(),
                index: k,
                png,
                classifier_label: None,
            });
        }
        let row = vec![(class_name.to_owned(), tiles)];
        let png = write(&format!("grid-{stem}.png"), &images::grid(&row), class_name)?;
        grids.push(Grid {
            class: Some(class),
            class_name: Some(class_name.to_owned()),
            png,
        });
        all_rows.extend(row);
    }
    let png = write("grid.png", &images::grid(&all_rows), "samples")?;
    grids.push(Grid {
        class: None,
        class_name: None,
        png,
    });
    Ok((samples, grids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_declared_for_gates() {
        let ours = [
            metric::LOAD_MS,
            metric::STEP_MS_P50,
            metric::LATENCY_MS_P50,
            metric::LATENCY_MS_P95,
            metric::NONFINITE_COUNT,
            metric::SAMPLE_MEAN_ABS_MAX,
            metric::SAMPLE_STD_MIN,
            metric::SAMPLE_STD_MAX,
            metric::CLASS_DISTINCT_FRACTION,
            metric::CLASS_EFFECT_SIZE,
            metric::NOISE_DISPLACEMENT,
            metric::GOLDEN_MAX_ABS_DIFF,
            metric::GOLDEN_MAX_REL_DIFF,
            metric::CLASSIFIER_AGREEMENT,
        ];
        let mut ours = ours.to_vec();
        ours.sort_unstable();
        let mut declared = crate::config::validate::SMOKE_METRICS.to_vec();
        declared.sort_unstable();
        assert_eq!(ours, declared);
    }

    #[test]
    fn breeds_resolve_by_index_or_name_in_order_without_repeats() {
        let classes: Vec<String> = ["Abyssinian", "Bengal", "Other"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let given = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(resolve_breeds(&[], &classes).expect("all"), [0, 1, 2]);
        assert_eq!(
            resolve_breeds(&given(&["other", "1", "Bengal"]), &classes).expect("mixed"),
            [2, 1]
        );
        let err = resolve_breeds(&given(&["Bengol"]), &classes).expect_err("typo");
        assert_eq!(
            crate::error::hint_of(&err).as_deref(),
            Some("did you mean `Bengal`?")
        );
        assert!(resolve_breeds(&given(&["3"]), &classes).is_err());
    }
}
