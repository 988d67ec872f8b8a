//! Every check of the smoke test: the pure numbers over sampled images (first), then the checks
//! the stage reports, each a [`Check`] and its metrics.
//!
//! Each check also yields metrics that gates can use (names in `config::validate::SMOKE_METRICS`).
//! The bounds on per-image statistics are ADR-028's: |mean| < 3 and 0.1 < std < 3, with the
//! image in the model's own [-1, 1] scale before clipping.

use std::collections::BTreeMap;

use super::golden;
use super::report::Check;
use super::sampler::Sampled;
use super::setup::name_of;
use crate::names::metric;

/// |mean| of every image must stay below this.
pub const MEAN_ABS_MAX: f64 = 3.0;
/// The standard deviation of every image must stay above this (a flat image is a broken model).
pub const STD_MIN: f64 = 0.1;
/// ... and below this.
pub const STD_MAX: f64 = 3.0;
/// Two samples from the same noise whose largest difference is at most this count as identical.
/// Classes of a working model differ by tenths; an export that drops the class input gives
/// differences of zero (or float noise near 1e-7).
pub const DISTINCT_TOLERANCE: f32 = 1e-4;

/// NaN and infinite values among `values`.
pub fn nonfinite(values: &[f32]) -> (usize, usize) {
    values.iter().fold((0, 0), |(nan, inf), v| {
        (
            nan + usize::from(v.is_nan()),
            inf + usize::from(v.is_infinite()),
        )
    })
}

/// Mean and population standard deviation of one image, in f64; `None` if any value is not
/// finite (the finiteness check reports those).
pub fn image_stats(image: &[f32]) -> Option<(f64, f64)> {
    if image.is_empty() || image.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = image.len() as f64;
    let mean = image.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = image
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    Some((mean, var.sqrt()))
}

/// Summary of per-image statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSummary {
    /// Largest |mean|.
    pub mean_abs_max: f64,
    /// Smallest standard deviation.
    pub std_min: f64,
    /// Largest standard deviation.
    pub std_max: f64,
}

impl StatsSummary {
    /// Whether ADR-028's bounds hold.
    pub fn within_bounds(&self) -> bool {
        self.mean_abs_max < MEAN_ABS_MAX && self.std_min > STD_MIN && self.std_max < STD_MAX
    }
}

/// Statistics over all images (`len` values each); `None` if any image is not finite.
pub fn summarize_stats(finals: &[f32], len: usize) -> Option<StatsSummary> {
    let mut summary = StatsSummary {
        mean_abs_max: 0.0,
        std_min: f64::INFINITY,
        std_max: 0.0,
    };
    for image in finals.chunks(len) {
        let (mean, std) = image_stats(image)?;
        summary.mean_abs_max = summary.mean_abs_max.max(mean.abs());
        summary.std_min = summary.std_min.min(std);
        summary.std_max = summary.std_max.max(std);
    }
    (summary.std_min.is_finite()).then_some(summary)
}

/// Result of comparing samples of different classes drawn from the same noise.
#[derive(Debug, Clone, PartialEq)]
pub struct Distinctness {
    /// Pairs that differ by more than [`DISTINCT_TOLERANCE`].
    pub distinct: usize,
    /// Pairs compared.
    pub total: usize,
    /// The identical pairs as (class a, class b, sample index), at most a few.
    pub identical: Vec<(usize, usize, usize)>,
}

impl Distinctness {
    /// `distinct / total`, or 1 when there is nothing to compare.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.distinct as f64 / self.total as f64
        }
    }
}

/// Compares every pair of classes for every sample index. Images are class-major:
/// image `class * per_class + k` is sample `k` of `class`, and sample `k` of every class started
/// from the same noise.
pub fn distinctness(finals: &[f32], classes: usize, per_class: usize, len: usize) -> Distinctness {
    let image = |class: usize, k: usize| {
        let start = (class * per_class + k) * len;
        &finals[start..start + len]
    };
    let mut result = Distinctness {
        distinct: 0,
        total: 0,
        identical: Vec::new(),
    };
    for k in 0..per_class {
        for a in 0..classes {
            for b in a + 1..classes {
                let max_diff = image(a, k)
                    .iter()
                    .zip(image(b, k))
                    .map(|(x, y)| (x - y).abs())
                    .fold(
                        0.0_f32,
                        |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
                    );
                result.total += 1;
                if max_diff > DISTINCT_TOLERANCE {
                    result.distinct += 1;
                } else if result.identical.len() < 5 {
                    result.identical.push((a, b, k));
                }
            }
        }
    }
    result
}

/// A conditioned model's classes must differ from each other by at least this fraction of how
/// much samples of one class differ from each other ([`ClassEffect::size`]). On the fixtures
/// (`tests/fixtures`, 8 steps) the trained TinyDiT gives 1.0 with one sample per class and 1.3
/// with three; `onnx-bad/ignores_class.onnx` and `zero_velocity.onnx` give 0.
pub const MIN_CLASS_EFFECT: f64 = 0.1;

/// At most this many samples of each class enter [`class_effect`], which compares every pair of
/// classes: enough for a stable mean, and the cost stays `classes^2 * 8` image differences.
pub const EFFECT_SAMPLES: usize = 8;

/// Class conditioning as an effect size. Sample `k` of every class starts from the same noise, so
/// the difference between two classes' `k`-th samples is the class alone; the difference between
/// two samples of one class is the noise alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassEffect {
    /// Mean RMS difference between samples of two classes drawn from the same noise.
    pub between: f64,
    /// Mean RMS difference between samples of one class drawn from different noise.
    pub within: f64,
    /// Class pairs compared (per sample index).
    pub between_pairs: usize,
    /// Sample pairs compared within classes.
    pub within_pairs: usize,
}

impl ClassEffect {
    /// `between / within`: 0 for a model that ignores its class, about 1 or more when the class
    /// moves a sample as much as the noise does. Infinite when the noise changes nothing.
    pub fn size(&self) -> f64 {
        if self.within > 0.0 {
            self.between / self.within
        } else if self.between > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }
}

/// RMS of the difference of two images, in f64; NaN when any value is not finite.
pub fn rms_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    (sum / a.len() as f64).sqrt()
}

/// The class effect of class-major images (`image(class, k)` is sample `k` of `class`, sample `k`
/// of every class from the same noise), using at most [`EFFECT_SAMPLES`] samples per class.
/// `within` may come from other images than `between` (see `spread`): `spread` holds
/// `spread_classes` classes of `spread_per_class` samples each, class-major too. `None` when
/// there are fewer than two classes or no class with two samples.
pub fn class_effect(
    finals: &[f32],
    classes: usize,
    per_class: usize,
    spread: (&[f32], usize, usize),
    len: usize,
) -> Option<ClassEffect> {
    let (spread, spread_classes, spread_per_class) = spread;
    let used = per_class.min(EFFECT_SAMPLES);
    let image = |per: usize, class: usize, k: usize| {
        let start = (class * per + k) * len;
        start..start + len
    };
    let mut between = 0.0;
    let mut between_pairs = 0;
    for k in 0..used {
        for a in 0..classes {
            for b in a + 1..classes {
                between += rms_diff(
                    &finals[image(per_class, a, k)],
                    &finals[image(per_class, b, k)],
                );
                between_pairs += 1;
            }
        }
    }
    let spread_used = spread_per_class.min(EFFECT_SAMPLES);
    let mut within = 0.0;
    let mut within_pairs = 0;
    for class in 0..spread_classes {
        for k in 0..spread_used {
            for l in k + 1..spread_used {
                within += rms_diff(
                    &spread[image(spread_per_class, class, k)],
                    &spread[image(spread_per_class, class, l)],
                );
                within_pairs += 1;
            }
        }
    }
    if between_pairs == 0 || within_pairs == 0 {
        return None;
    }
    Some(ClassEffect {
        between: between / between_pairs as f64,
        within: within / within_pairs as f64,
        between_pairs,
        within_pairs,
    })
}

/// Below this, [`displacement`] says the sampler returned its input noise: the velocity is zero.
pub const MIN_DISPLACEMENT: f64 = 1e-3;

/// How far sampling moved the images from their starting noise: RMS of `finals - noise` over RMS
/// of `noise`. A generator whose velocity is zero everywhere (an untrained adaLN-Zero model, a
/// zeroed final layer) returns its noise unchanged (0), which has the statistics of a sample.
/// NaN when a value is not finite.
pub fn displacement(finals: &[f32], noise: &[f32]) -> f64 {
    let noise_rms = if noise.is_empty() {
        0.0
    } else {
        (noise.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / noise.len() as f64).sqrt()
    };
    let moved = rms_diff(finals, noise);
    if noise_rms > 0.0 {
        moved / noise_rms
    } else {
        moved
    }
}

/// The `p`-th percentile (0..=100) with linear interpolation between ranks, NumPy's default.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
}

pub(crate) fn finite_check(
    finals: &[f32],
    len: usize,
    per_class: usize,
    class_names: &[String],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let (nan, inf) = nonfinite(finals);
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

pub(crate) fn stats_check(
    finals: &[f32],
    len: usize,
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let Some(stats) = summarize_stats(finals, len) else {
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
        stats.mean_abs_max, MEAN_ABS_MAX, stats.std_min, stats.std_max, STD_MIN, STD_MAX
    );
    Check::new("sample-stats", stats.within_bounds(), detail)
}

pub(crate) fn velocity_check(
    finals: &[f32],
    noise: &[f32],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let moved = displacement(finals, noise);
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
    if moved < MIN_DISPLACEMENT {
        return Check::new(
            "velocity",
            false,
            format!(
                "the generator's velocity is zero: the samples are their input noise (moved by \
                 {moved:.1e} of the noise's RMS, needs {MIN_DISPLACEMENT}), as from an untrained \
                 model or a zeroed final layer"
            ),
        );
    }
    Check::new(
        "velocity",
        true,
        format!(
            "sampling moved the images by {moved:.3} of their starting noise's RMS (needs \
             {MIN_DISPLACEMENT})"
        ),
    )
}

/// `(classes, per_class, len)` describe `finals`; `spread` is `(images, classes, per_class)` of
/// the images the within-class spread is measured on.
pub(crate) fn conditioning_check(
    finals: &[f32],
    (classes, per_class, len): (usize, usize, usize),
    spread: (&[f32], usize, usize),
    class_names: &[String],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let d = distinctness(finals, classes, per_class, len);
    metrics.insert(metric::CLASS_DISTINCT_FRACTION.to_owned(), d.fraction());
    if d.total == 0 {
        metrics.insert(metric::CLASS_EFFECT_SIZE.to_owned(), 0.0);
        return Check::new("conditioning", true, "one class only: nothing to compare");
    }
    let Some(effect) = class_effect(finals, classes, per_class, spread, len) else {
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
        effect.between, effect.between_pairs, effect.within, effect.within_pairs, MIN_CLASS_EFFECT
    );
    if size.is_nan() {
        return Check::new(
            "conditioning",
            false,
            "not computed: samples contain NaN or infinite values",
        );
    }
    if size >= MIN_CLASS_EFFECT {
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

pub(crate) fn determinism_check(
    reference: &[f32],
    runs: &[Vec<f32>],
    class: &str,
    seed: u64,
) -> Check {
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

pub(crate) fn latency_check(
    load_ms: f64,
    sampled: &Sampled,
    image_ms: &[f64],
    metrics: &mut BTreeMap<String, f64>,
) -> Check {
    let step_p50 = percentile(&sampled.step_ms, 50.0);
    let p50 = percentile(image_ms, 50.0);
    let p95 = percentile(image_ms, 95.0);
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

pub(crate) fn golden_check(
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

pub(crate) fn classifier_check(
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

#[cfg(test)]
// Exact values are the point of these tests.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn nonfinite_values_are_counted_by_kind() {
        assert_eq!(
            nonfinite(&[1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0]),
            (1, 2)
        );
    }

    #[test]
    fn stats_use_the_population_std_and_check_bounds() {
        let (mean, std) = image_stats(&[1.0, 3.0, 1.0, 3.0]).expect("finite");
        assert!((mean - 2.0).abs() < 1e-12 && (std - 1.0).abs() < 1e-12);
        assert_eq!(image_stats(&[1.0, f32::NAN]), None);
        let ok = summarize_stats(&[1.0, 3.0, -1.0, 1.0], 2).expect("finite");
        assert_eq!(ok.mean_abs_max, 2.0);
        assert!(ok.within_bounds());
        let flat = summarize_stats(&[0.5; 8], 4).expect("finite");
        assert_eq!(flat.std_min, 0.0);
        assert!(!flat.within_bounds());
        assert_eq!(summarize_stats(&[0.0, f32::NAN], 1), None);
    }

    #[test]
    fn identical_classes_are_found_per_sample() {
        // 3 classes x 2 samples x 2 values; classes 0 and 2 are identical for sample 1.
        let finals = [
            0.0, 0.0, 1.0, 1.0, // class 0
            0.5, 0.5, 2.0, 2.0, // class 1
            0.9, 0.9, 1.0, 1.00001, // class 2
        ];
        let d = distinctness(&finals, 3, 2, 2);
        assert_eq!(d.total, 6);
        assert_eq!(d.distinct, 5);
        assert_eq!(d.identical, [(0, 2, 1)]);
        assert!((d.fraction() - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(distinctness(&finals[..4], 1, 2, 2).fraction(), 1.0);
    }

    /// Issue 8 item 18: classes that differ by a hair (more than the old 1e-4 tolerance, far less
    /// than the noise moves a sample) have a small effect size; real conditioning a large one.
    #[test]
    fn class_effect_compares_between_class_distance_with_within_class_spread() {
        // 2 classes x 2 samples x 4 values; sample k of both classes from the same noise.
        let noise = [[0.5_f32, -0.5, 0.25, -0.25], [-0.4, 0.3, 0.6, -0.1]];
        let with_class = |shift: f32| {
            let mut out = Vec::new();
            for class in 0..2 {
                for n in &noise {
                    out.extend(n.iter().map(|v| v + shift * class as f32));
                }
            }
            out
        };
        let hair = with_class(1e-3);
        assert_eq!(
            distinctness(&hair, 2, 2, 4).fraction(),
            1.0,
            "the old check passes"
        );
        let effect = class_effect(&hair, 2, 2, (&hair, 2, 2), 4).expect("effect");
        assert!((effect.between - 1e-3).abs() < 1e-6, "{effect:?}");
        assert!(effect.size() < MIN_CLASS_EFFECT, "{effect:?}");
        let real = with_class(0.5);
        let effect = class_effect(&real, 2, 2, (&real, 2, 2), 4).expect("effect");
        assert!(effect.size() > 0.5, "{effect:?}");
        assert_eq!((effect.between_pairs, effect.within_pairs), (2, 2));
        assert!(
            class_effect(&real, 2, 1, (&real[..8], 2, 1), 4).is_none(),
            "no spread"
        );
        let none = with_class(0.0);
        assert_eq!(
            class_effect(&none, 2, 2, (&none, 2, 2), 4)
                .expect("e")
                .size(),
            0.0
        );
    }

    #[test]
    fn displacement_is_zero_when_sampling_returns_the_noise() {
        let noise = [1.0_f32, -1.0, 1.0, -1.0];
        assert_eq!(displacement(&noise, &noise), 0.0);
        let moved = [0.0_f32; 4];
        assert!((displacement(&moved, &noise) - 1.0).abs() < 1e-12);
        assert!(displacement(&[f32::NAN; 4], &noise).is_nan());
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert!((percentile(&v, 95.0) - 3.85).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
    }

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
}
