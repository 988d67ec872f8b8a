//! The smoke stage, step by step: static checks, the session, sampling, the checks, the images.

use std::collections::BTreeMap;
use std::path::Path;

use super::checks::{
    classifier_check, conditioning_check, determinism_check, finite_check, golden_check,
    latency_check, stats_check, velocity_check,
};
use super::gallery::write_gallery;
use super::report::{Check, Grid, SampleImage, SmokeReport};
use super::sampler::{self, Guidance, Sampled, SamplerPlan};
use super::session::{self, OpenedSession, SessionSettings, provider_name};
use super::setup::{cfg_text, describe, generator_of, load_runtime, name_of, open_reporting};
use super::{classifier, golden, noise, runtime};
use crate::config::{
    ClassifierConfig, GeneratorConfig, GoldenConfig, OnnxConfig, ReleaseConfig, SmokeConfig,
};
use crate::onnx::{self, ClassifierIo, ModelSummary};
use crate::report::Reporter;

/// Timed runs of one image alone behind `smoke.latency_ms_p50` / `_p95` (after one warm-up run):
/// with 20, p95 lies between the two slowest runs rather than being the one slowest.
pub const LATENCY_RUNS: usize = 20;

/// With one sample per class, a second sample of this many classes (from fresh noise) measures
/// the spread within a class for the conditioning check.
pub const SPREAD_CLASSES: usize = 4;

/// Runs the smoke test of `config`'s generator, writing images into `out_dir`.
pub fn run(
    config: &ReleaseConfig,
    search: &runtime::OrtSearch,
    out_dir: &Path,
    reporter: &Reporter,
) -> anyhow::Result<SmokeReport> {
    let stage = prepare(config, reporter)?;
    let env = load_runtime(search, reporter)?;
    let mut opened = open_reporting(
        &env,
        (&stage.onnx.path.path, &stage.summary),
        &stage.settings,
        reporter,
    )?;
    let batch = sample_every_class(&mut opened, &stage, reporter)?;

    let mut found = Found::default();
    found.push(|m| {
        finite_check(
            &batch.sampled.finals,
            batch.len,
            stage.per_class,
            &stage.generator.classes,
            m,
        )
    });
    found.push(|m| stats_check(&batch.sampled.finals, batch.len, m));
    found.push(|m| velocity_check(&batch.sampled.finals, &batch.noise, m));
    check_conditioning(&mut opened, &stage, &batch, &mut found)?;
    check_determinism_and_latency(&mut opened, &stage, &batch, &mut found)?;
    if let Some((golden_config, set)) = &stage.golden {
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
        found.push(|m| golden_check(&results, golden_config, m));
    }
    let provider = opened.provider;
    let provider_fallback = opened.fallback.clone();
    drop(opened);

    let classified = match &stage.classifier {
        Some(setup) => Some(classify(&env, &stage, setup, &batch, reporter, &mut found)?),
        None => None,
    };
    let (samples, grids) = write_images(out_dir, &stage, &batch, classified.as_deref(), reporter)?;
    Ok(SmokeReport {
        classifier: stage.classifier.map(|setup| setup.summary),
        generator: stage.summary,
        provider,
        device: session::device_name(provider),
        provider_fallback,
        threads: stage.smoke.threads,
        steps: stage.plan.steps,
        cfg: stage.generator.cfg,
        cfg_scale: stage.generator.cfg_scale,
        seed: stage.smoke.seed,
        latency_runs: LATENCY_RUNS,
        checks: found.checks,
        metrics: found.metrics,
        samples,
        grids,
    })
}

/// Everything decided before a session opens.
struct Stage<'a> {
    onnx: &'a OnnxConfig,
    generator: &'a GeneratorConfig,
    smoke: SmokeConfig,
    summary: ModelSummary,
    guidance: Guidance,
    plan: SamplerPlan,
    per_class: usize,
    classifier: Option<ClassifierSetup<'a>>,
    golden: Option<(&'a GoldenConfig, golden::GoldenSet)>,
    settings: SessionSettings,
}

/// A classifier checked statically, to run on the samples.
struct ClassifierSetup<'a> {
    config: &'a ClassifierConfig,
    onnx: &'a OnnxConfig,
    summary: ModelSummary,
    io: ClassifierIo,
}

/// The checks run so far, and their metrics.
#[derive(Default)]
struct Found {
    checks: Vec<Check>,
    metrics: BTreeMap<String, f64>,
}

impl Found {
    fn push(&mut self, check: impl FnOnce(&mut BTreeMap<String, f64>) -> Check) {
        let check = check(&mut self.metrics);
        self.checks.push(check);
    }
}

/// The samples of every class: sample `k` of every class starts from the same noise.
struct Batch {
    /// One image's values.
    len: usize,
    /// Class of each image, class-major.
    labels: Vec<i64>,
    /// The starting noise of each image.
    noise: Vec<f32>,
    sampled: Sampled,
}

/// Step 1: static checks of every ONNX file and the golden files, and the sampling plan, before
/// any session.
fn prepare<'a>(config: &'a ReleaseConfig, reporter: &Reporter) -> anyhow::Result<Stage<'a>> {
    let (onnx_entry, generator) = generator_of(config)?;
    let smoke = config.smoke.clone().unwrap_or_default();
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
    let classifier = match (&config.classifier, config.classifier_onnx()) {
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
            Some(ClassifierSetup {
                config: classifier,
                onnx: entry,
                summary,
                io,
            })
        }
        (Some(_), None) => {
            reporter.skipped(
                "classifier check: `[classifier]` has no `[[onnx]]` entry with `role = \"classifier\"`",
            );
            None
        }
        _ => None,
    };
    let display = |path: &Path| config.roots.display(path);
    let golden = config
        .smoke
        .as_ref()
        .and_then(|smoke| smoke.golden.as_ref())
        .map(|g| golden::load(g, &summary, display).map(|set| (g, set)))
        .transpose()?;
    let settings = SessionSettings::from(&smoke);
    Ok(Stage {
        onnx: onnx_entry,
        generator,
        smoke,
        summary,
        guidance,
        plan,
        per_class,
        classifier,
        golden,
        settings,
    })
}

/// Step 2: `samples-per-class` images of every class from seeded noise.
fn sample_every_class(
    opened: &mut OpenedSession,
    stage: &Stage<'_>,
    reporter: &Reporter,
) -> anyhow::Result<Batch> {
    let classes = stage.generator.classes.len();
    let per_class = stage.per_class;
    let len = stage.plan.image_len();
    let mut base_noise = vec![0.0_f32; per_class * len];
    noise::NoiseStream::new(stage.smoke.seed).fill(&mut base_noise);
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
            stage.plan.steps,
            cfg_text(stage.guidance),
            provider_name(opened.provider)
        ),
    );
    let bar = reporter.progress(sampler::calls(&stage.plan, labels.len()), "sampling");
    let sampled = sampler::sample(&mut opened.session, &stage.plan, &labels, &all_noise, &bar)?;
    bar.finish_and_clear();
    Ok(Batch {
        len,
        labels,
        noise: all_noise,
        sampled,
    })
}

/// Step 3: conditioning. The spread within a class needs two samples of a class from different
/// noise; with one sample per class, a second one of the first few classes is drawn for it.
fn check_conditioning(
    opened: &mut OpenedSession,
    stage: &Stage<'_>,
    batch: &Batch,
    found: &mut Found,
) -> anyhow::Result<()> {
    let classes = stage.generator.classes.len();
    let (per_class, len) = (stage.per_class, batch.len);
    let finals = &batch.sampled.finals;
    let extra_spread = if per_class < 2 && classes >= 2 {
        let spread_classes = classes.min(SPREAD_CLASSES);
        let mut stream = vec![0.0_f32; 2 * len];
        noise::NoiseStream::new(stage.smoke.seed).fill(&mut stream);
        let second: Vec<f32> = stream[len..].repeat(spread_classes);
        let extra = sampler::sample(
            &mut opened.session,
            &stage.plan,
            &batch.labels[..spread_classes],
            &second,
            &indicatif::ProgressBar::hidden(),
        )?;
        let mut spread = Vec::with_capacity(spread_classes * 2 * len);
        for (class, image) in extra.finals.chunks(len).enumerate() {
            spread.extend_from_slice(&finals[class * len..(class + 1) * len]);
            spread.extend_from_slice(image);
        }
        Some((spread, spread_classes))
    } else {
        None
    };
    let spread = match &extra_spread {
        Some((spread, spread_classes)) => (spread.as_slice(), *spread_classes, 2),
        None => (finals.as_slice(), classes, per_class),
    };
    found.push(|m| {
        conditioning_check(
            finals,
            (classes, per_class, len),
            spread,
            &stage.generator.classes,
            m,
        )
    });
    Ok(())
}

/// Step 4: determinism and latency. A warm-up run of the first sample alone, then
/// `LATENCY_RUNS` timed runs of it, every one of which must give the warm-up's bytes.
fn check_determinism_and_latency(
    opened: &mut OpenedSession,
    stage: &Stage<'_>,
    batch: &Batch,
    found: &mut Found,
) -> anyhow::Result<()> {
    let hidden = indicatif::ProgressBar::hidden();
    let single_plan = SamplerPlan {
        batch_size: 1,
        ..stage.plan.clone()
    };
    let first = &batch.noise[..batch.len];
    let label = &batch.labels[..1];
    let reference = sampler::sample(&mut opened.session, &single_plan, label, first, &hidden)?;
    let mut runs = Vec::with_capacity(LATENCY_RUNS);
    let mut image_ms = Vec::with_capacity(LATENCY_RUNS);
    for _ in 0..LATENCY_RUNS {
        let run = sampler::sample(&mut opened.session, &single_plan, label, first, &hidden)?;
        image_ms.extend_from_slice(&run.image_ms);
        runs.push(run.finals);
    }
    let names = &stage.generator.classes;
    found.push(|_| {
        determinism_check(
            &reference.finals,
            &runs,
            name_of(names, 0),
            stage.smoke.seed,
        )
    });
    found.push(|m| latency_check(opened.load_ms, &batch.sampled, &image_ms, m));
    Ok(())
}

/// Step 5: the classifier's label for every sample, in its own session.
fn classify(
    env: &ort::environment::Environment,
    stage: &Stage<'_>,
    setup: &ClassifierSetup<'_>,
    batch: &Batch,
    reporter: &Reporter,
    found: &mut Found,
) -> anyhow::Result<Vec<Option<usize>>> {
    let mut session = open_reporting(
        env,
        (&setup.onnx.path.path, &setup.summary),
        &stage.settings,
        reporter,
    )?;
    let mut inputs = Vec::new();
    for image in batch.sampled.finals.chunks(batch.len) {
        inputs.extend(classifier::preprocess(
            image,
            stage.plan.image_shape,
            setup.config,
        ));
    }
    reporter.status(
        "Classifying",
        format!(
            "{} sample(s) with `{}`",
            batch.labels.len(),
            setup.onnx.path.configured
        ),
    );
    let labels_found = classifier::classify(
        &mut session.session,
        setup.config,
        setup.io,
        &inputs,
        batch.labels.len(),
        stage.smoke.batch_size as usize,
    )?;
    found.push(|m| classifier_check(setup.config, &labels_found, &batch.labels, m));
    Ok(labels_found)
}

/// Step 6: a PNG per sample, a grid per class and the overall grid, each sample with the
/// classifier's label when one ran.
fn write_images(
    out_dir: &Path,
    stage: &Stage<'_>,
    batch: &Batch,
    classified: Option<&[Option<usize>]>,
    reporter: &Reporter,
) -> anyhow::Result<(Vec<SampleImage>, Vec<Grid>)> {
    let names = &stage.generator.classes;
    let rows: Vec<(usize, &str)> = (0..names.len()).map(|c| (c, name_of(names, c))).collect();
    let (mut samples, grids) = write_gallery(
        out_dir,
        &batch.sampled.finals,
        stage.plan.image_shape,
        &rows,
        stage.per_class,
    )?;
    if let (Some(predicted), Some(setup)) = (classified, &stage.classifier) {
        for (sample, label) in samples.iter_mut().zip(predicted) {
            sample.classifier_label = label.and_then(|i| setup.config.labels.get(i).cloned());
        }
    }
    reporter.status(
        "Wrote",
        format!(
            "{} sample(s) and {} grid(s) to `{}`",
            samples.len(),
            grids.len(),
            out_dir.display()
        ),
    );
    Ok((samples, grids))
}
