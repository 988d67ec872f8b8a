//! The `sample` command: images of chosen classes from a generator, from the same parts as the
//! smoke stage.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::gallery::write_gallery;
use super::report::{Grid, SampleImage};
use super::sampler::{self, Guidance, SamplerPlan};
use super::session::SessionSettings;
use super::setup::{cfg_text, describe, load_runtime, name_of, open_reporting};
use super::{bundle, checks, noise, npy, runtime};
use crate::config::{CfgMode, Provider};
use crate::error::Problem;
use crate::onnx;
use crate::report::Reporter;

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

#[cfg(test)]
mod tests {
    use super::*;

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
