//! Agreement of a generator variant (a quantized export, ours or provided) with the
//! full-precision generator it came from.
//!
//! With identical noise (the smoke seed, one image per class), steps and guidance:
//!
//! - **velocity along the full model's trajectory**: at every step both models are asked for the
//!   velocity at the same `(x_t, t, class)`, where `x_t` follows the full model; cosine similarity
//!   and relative L2 are accumulated per class, per branch (conditional, unconditional) and per
//!   quarter of `t`, and the worst cell is gated;
//! - **final images**: each model follows its own trajectory from the same noise; the images per
//!   class are compared by PSNR and SSIM (pixels in [0, 1]).
//!
//! A variant with another I/O contract, one that predicts a zero velocity, and one whose class
//! input answers for another class are refused with their own messages. Metrics are
//! `smoke.variant.<name>.*`, usable in `[[gate]]`; built-in minimums apply whatever the gates say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;

use super::images;
use super::noise::NoiseStream;
use super::sampler::Guidance;
use super::session::{SessionSettings, open};
use crate::config::ReleaseConfig;
use crate::error::Problem;
use crate::names::metric;
use crate::onnx::quantize::QuantizeReport;
use crate::report::Reporter;

/// Built-in minimum of the worst velocity cosine similarity.
pub const MIN_VELOCITY_COSINE: f64 = 0.999;
/// Built-in maximum of the worst relative L2 velocity error.
pub const MAX_VELOCITY_REL_L2: f64 = 0.05;
/// Built-in minimum of the worst per-class PSNR of the final images, in dB.
pub const MIN_PSNR_DB: f64 = 30.0;
/// Built-in minimum of the worst per-class SSIM.
pub const MIN_SSIM: f64 = 0.95;
/// A variant whose velocity norm is below this fraction of the full model's predicts nothing.
const ZERO_VELOCITY: f64 = 0.01;

/// The quarters of `t` the velocity is judged in.
const RANGES: [(&str, f32, f32); 4] = [
    (metric::VARIANT_T_RANGES[0], 0.0, 0.25),
    (metric::VARIANT_T_RANGES[1], 0.25, 0.5),
    (metric::VARIANT_T_RANGES[2], 0.5, 0.75),
    (metric::VARIANT_T_RANGES[3], 0.75, 1.0),
];

/// A variant to judge.
#[derive(Debug, Clone)]
pub struct VariantInput {
    /// Its name (`[[onnx]] variant` or `quantize.variant`).
    pub name: String,
    /// The model file.
    pub path: PathBuf,
    /// How messages name it.
    pub display: String,
    /// Its path in the bundle.
    pub file: String,
    /// What `quantize` did, for a variant built by `check`.
    pub quantized: Option<QuantizeReport>,
}

/// The judgement of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct VariantReport {
    /// Its name.
    pub name: String,
    /// Its path in the bundle.
    pub file: String,
    /// Its size with external data, in bytes.
    pub bytes: u64,
    /// What `quantize` did, for a variant built by `check`.
    pub quantized: Option<QuantizeReport>,
    /// Whether it agrees.
    pub passed: bool,
    /// What was found, in one line.
    pub detail: String,
    /// `smoke.variant.<name>.*`.
    pub metrics: BTreeMap<String, f64>,
    /// Per class: PSNR (dB) and SSIM of the final image.
    pub classes: Vec<ClassAgreement>,
    /// The side-by-side grid (full | variant, one row per class), relative to the samples folder
    /// here; `check` makes it a bundle path for `report.json` and the card.
    pub grid: Option<String>,
}

/// One class's final images compared.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAgreement {
    /// Class name.
    pub class: String,
    /// PSNR in dB (infinite when identical is capped at 100).
    pub psnr_db: f64,
    /// SSIM.
    pub ssim: f64,
}

/// Judges every variant against the generator of `config`. `samples_dir` receives the grids.
pub fn run(
    config: &ReleaseConfig,
    search: &super::runtime::OrtSearch,
    variants: &[VariantInput],
    samples_dir: &Path,
    reporter: &Reporter,
) -> anyhow::Result<Vec<VariantReport>> {
    let mut reports = Vec::new();
    if variants.is_empty() {
        return Ok(reports);
    }
    let (Some(entry), Some(generator)) = (config.generator_onnx(), config.generator.as_ref())
    else {
        return Err(Problem::new(
            "generator variants need the full-precision generator and `[generator]`",
        )
        .into());
    };
    let smoke = config.smoke.clone().unwrap_or_default();
    let summary = crate::onnx::inspect(&entry.path.path, &entry.path.configured)?;
    let io = crate::onnx::check_generator(&summary, generator)?;
    let settings = SessionSettings::from(&smoke);
    let (env, _) = super::runtime::environment(search)?;
    let mut full = open(
        &env,
        &entry.path.path,
        &entry.path.configured,
        summary.opset,
        &settings,
    )?
    .session;
    let guidance = Guidance::from_config(generator, generator.cfg_scale)?;
    let size = generator.image_size as usize;
    let shape = [generator.channels as usize, size, size];
    for variant in variants {
        reporter.status(
            "Comparing",
            format!("variant `{}` with the generator", variant.name),
        );
        let fail = |detail: String, bytes: u64| VariantReport {
            name: variant.name.clone(),
            file: variant.file.clone(),
            bytes,
            quantized: variant.quantized.clone(),
            passed: false,
            detail,
            metrics: BTreeMap::new(),
            classes: Vec::new(),
            grid: None,
        };
        let vsummary = match crate::onnx::inspect(&variant.path, &variant.display) {
            Ok(s) => s,
            Err(err) => {
                reports.push(fail(
                    format!("variant `{}` cannot be read: {err:#}", variant.name),
                    0,
                ));
                continue;
            }
        };
        let bytes = vsummary.bytes + vsummary.external_data.iter().map(|e| e.length).sum::<u64>();
        let vio = match crate::onnx::check_generator(&vsummary, generator) {
            Ok(vio) => vio,
            Err(err) => {
                reports.push(fail(
                    format!(
                        "variant `{}` has another I/O contract than the generator's `[generator]`: {err:#}",
                        variant.name
                    ),
                    bytes,
                ));
                continue;
            }
        };
        if vio.fixed_batch != io.fixed_batch {
            reports.push(fail(
                format!(
                    "variant `{}` fixes the batch to {:?}, the generator to {:?}: another I/O contract",
                    variant.name, vio.fixed_batch, io.fixed_batch
                ),
                bytes,
            ));
            continue;
        }
        let mut session = match open(
            &env,
            &variant.path,
            &variant.display,
            vsummary.opset,
            &settings,
        ) {
            Ok(opened) => opened.session,
            Err(err) => {
                reports.push(fail(
                    format!("variant `{}` does not load: {err:#}", variant.name),
                    bytes,
                ));
                continue;
            }
        };
        let (mut report, grid) = compare(
            &mut full,
            &mut session,
            config,
            guidance,
            io.fixed_batch,
            shape,
            smoke.seed,
            variant,
        )?;
        report.bytes = bytes;
        report.metrics.insert(
            crate::names::metric::variant(&variant.name, "size_mb"),
            bytes as f64 / 1e6,
        );
        let grid_name = format!("variant_{}.png", images::file_stem(&variant.name));
        std::fs::create_dir_all(samples_dir)
            .with_context(|| format!("failed to create `{}`", samples_dir.display()))?;
        images::write_png(
            &samples_dir.join(&grid_name),
            &grid_name,
            &grid,
            &format!("{}: full | variant {}", config.model.name, variant.name),
        )?;
        report.grid = Some(grid_name);
        reports.push(report);
    }
    Ok(reports)
}

/// Per (class, branch, range): Σ a·b, Σ a², Σ b², Σ (a-b)².
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    dot: f64,
    aa: f64,
    bb: f64,
    dd: f64,
}

impl Sums {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x), f64::from(y));
            self.dot += x * y;
            self.aa += x * x;
            self.bb += y * y;
            self.dd += (x - y) * (x - y);
        }
    }
    fn merge(&mut self, o: &Sums) {
        self.dot += o.dot;
        self.aa += o.aa;
        self.bb += o.bb;
        self.dd += o.dd;
    }
    fn cosine(&self) -> f64 {
        if self.aa == 0.0 && self.bb == 0.0 {
            return 1.0;
        }
        if self.aa == 0.0 || self.bb == 0.0 {
            return 0.0;
        }
        self.dot / (self.aa.sqrt() * self.bb.sqrt())
    }
    fn rel_l2(&self) -> f64 {
        if self.aa == 0.0 {
            return if self.dd == 0.0 { 0.0 } else { f64::INFINITY };
        }
        (self.dd / self.aa).sqrt()
    }
}

fn velocity(
    session: &mut Session,
    config: &crate::config::GeneratorConfig,
    x: &[f32],
    shape: [usize; 4],
    t: f32,
    classes: &[i64],
    what: &str,
) -> anyhow::Result<Vec<f32>> {
    let rows = shape[0];
    let times = vec![t; rows];
    let outputs = session
        .run(ort::inputs![
            config.noise_input.as_str() => TensorRef::from_array_view((shape, x))?,
            config.timestep_input.as_str() => TensorRef::from_array_view(([rows], times.as_slice()))?,
            config.label_input.as_str() => TensorRef::from_array_view(([rows], classes))?,
        ])
        .with_context(|| format!("{what} failed at t = {t}"))?;
    let value = outputs
        .get(config.output.as_str())
        .ok_or_else(|| Problem::new(format!("{what} returned no `{}` output", config.output)))?;
    let (_, v) = value
        .try_extract_tensor::<f32>()
        .with_context(|| format!("{what}'s `{}` output is not float32", config.output))?;
    if v.len() != x.len() {
        return Err(Problem::new(format!(
            "{what} returned {} values for an input of {}",
            v.len(),
            x.len()
        ))
        .into());
    }
    Ok(v.to_vec())
}

#[allow(clippy::too_many_arguments)]
fn compare(
    full: &mut Session,
    variant_session: &mut Session,
    config: &ReleaseConfig,
    guidance: Guidance,
    fixed_batch: Option<usize>,
    shape: [usize; 3],
    seed: u64,
    variant: &VariantInput,
) -> anyhow::Result<(VariantReport, images::Pixels)> {
    let generator = config.generator.as_ref().expect("checked by the caller");
    let names = &generator.classes;
    let n = names.len();
    let len: usize = shape.iter().product();
    let steps = generator.steps.max(1);
    let dt = 1.0_f32 / steps as f32;
    let mut noise = vec![0.0_f32; len];
    NoiseStream::new(seed).fill(&mut noise);
    let (scale, uncond) = match guidance {
        Guidance::Explicit { scale, uncond } => (Some(scale), uncond),
        _ => (None, 0),
    };
    let branches: &[&str] = if scale.is_some() {
        &["cond", "uncond"]
    } else {
        &["cond"]
    };
    let rows = n * branches.len();
    if fixed_batch.is_some_and(|b| b != rows) {
        return Err(Problem::new(format!(
            "the generator fixes its batch to {fixed_batch:?}; comparing a variant needs a dynamic batch or exactly {rows} rows"
        ))
        .into());
    }
    let mut classes: Vec<i64> = (0..n as i64).collect();
    if scale.is_some() {
        classes.extend(std::iter::repeat_n(uncond, n));
    }
    let x_shape = [rows, shape[0], shape[1], shape[2]];
    let mut x_full: Vec<f32> = noise.repeat(rows);
    let mut x_var: Vec<f32> = x_full.clone();
    // cells[class][branch][range]
    let mut cells = vec![vec![[Sums::default(); 4]; branches.len()]; n];
    let mut first_full: Vec<f32> = Vec::new();
    let mut first_var: Vec<f32> = Vec::new();
    let gen_cfg = generator;
    for i in 0..steps {
        let t = i as f32 / steps as f32;
        let range = RANGES
            .iter()
            .position(|(_, lo, hi)| t >= *lo && t < *hi)
            .unwrap_or(3);
        let v_full = velocity(
            full,
            gen_cfg,
            &x_full,
            x_shape,
            t,
            &classes,
            "the generator",
        )?;
        let v_var = velocity(
            variant_session,
            gen_cfg,
            &x_full,
            x_shape,
            t,
            &classes,
            "the variant",
        )?;
        let v_own = velocity(
            variant_session,
            gen_cfg,
            &x_var,
            x_shape,
            t,
            &classes,
            "the variant",
        )?;
        for (b, _) in branches.iter().enumerate() {
            for (c, cell) in cells.iter_mut().enumerate() {
                let row = b * n + c;
                cell[b][range].add(
                    &v_full[row * len..(row + 1) * len],
                    &v_var[row * len..(row + 1) * len],
                );
            }
        }
        if i == 0 {
            first_full = v_full[..n * len].to_vec();
            first_var = v_var[..n * len].to_vec();
        }
        step(&mut x_full, &v_full, n * len, scale, dt);
        step(&mut x_var, &v_own, n * len, scale, dt);
    }

    // Velocity metrics.
    let metric = |m: &str| crate::names::metric::variant(&variant.name, m);
    let mut metrics = BTreeMap::new();
    let mut worst_cos: (f64, String) = (f64::INFINITY, String::new());
    let mut worst_rel: (f64, String) = (0.0, String::new());
    let mut total = Sums::default();
    for (b, branch) in branches.iter().enumerate() {
        for (r, (range, lo, hi)) in RANGES.iter().enumerate() {
            let mut merged = Sums::default();
            for (c, cell) in cells.iter().enumerate() {
                let s = cell[b][r];
                if s.aa == 0.0 && s.bb == 0.0 && s.dd == 0.0 {
                    continue;
                }
                merged.merge(&s);
                let place = format!(
                    "class `{}`, {} branch, t in [{lo}, {hi})",
                    name_of(names, c),
                    if *branch == "cond" {
                        "conditional"
                    } else {
                        "unconditional"
                    }
                );
                if s.cosine() < worst_cos.0 {
                    worst_cos = (s.cosine(), place.clone());
                }
                if s.rel_l2() > worst_rel.0 {
                    worst_rel = (s.rel_l2(), place);
                }
            }
            if merged.aa > 0.0 || merged.bb > 0.0 {
                metrics.insert(
                    metric(&format!("velocity_cosine.{branch}.{range}")),
                    merged.cosine(),
                );
                metrics.insert(
                    metric(&format!("velocity_rel_l2.{branch}.{range}")),
                    merged.rel_l2(),
                );
            }
            total.merge(&merged);
        }
    }
    metrics.insert(metric("velocity_cosine_min"), worst_cos.0);
    metrics.insert(metric("velocity_rel_l2_max"), worst_rel.0);

    // Final images.
    let mut class_reports = Vec::new();
    let mut worst_psnr = (f64::INFINITY, String::new());
    let mut worst_ssim = (f64::INFINITY, String::new());
    let mut pixels = Vec::new();
    for c in 0..n {
        let a = &x_full[c * len..(c + 1) * len];
        let b = &x_var[c * len..(c + 1) * len];
        let psnr = psnr_db(a, b);
        let ssim = ssim(a, b, shape);
        let class = name_of(names, c);
        if psnr < worst_psnr.0 {
            worst_psnr = (psnr, class.clone());
        }
        if ssim < worst_ssim.0 {
            worst_ssim = (ssim, class.clone());
        }
        class_reports.push(ClassAgreement {
            class: class.clone(),
            psnr_db: psnr,
            ssim,
        });
        pixels.push((
            class,
            images::to_pixels(a, shape),
            images::to_pixels(b, shape),
        ));
    }
    metrics.insert(metric("psnr_min_db"), worst_psnr.0);
    metrics.insert(metric("ssim_min"), worst_ssim.0);
    let rows_px: Vec<(String, Vec<&images::Pixels>)> = pixels
        .iter()
        .map(|(c, a, b)| (c.clone(), vec![a, b]))
        .collect();
    let grid = images::grid(&rows_px);

    // The judgement, most specific first.
    let norm_ratio = if total.aa > 0.0 {
        (total.bb / total.aa).sqrt()
    } else {
        1.0
    };
    let name = &variant.name;
    let detail_ok = format!(
        "velocity cosine >= {:.6} (worst: {}), relative L2 <= {:.4}; final images PSNR >= {:.1} dB (worst: `{}`), SSIM >= {:.4}",
        worst_cos.0, worst_cos.1, worst_rel.0, worst_psnr.0, worst_psnr.1, worst_ssim.0
    );
    let (passed, detail) = if norm_ratio < ZERO_VELOCITY {
        (
            false,
            format!(
                "variant `{name}` predicts a zero velocity: its norm is {norm_ratio:.2e} of the full model's, so it would not move the noise"
            ),
        )
    } else if let Some((own, other)) =
        swapped(&first_full, &first_var, n, len).filter(|_| worst_cos.0 < MIN_VELOCITY_COSINE)
    {
        (
            false,
            format!(
                "variant `{name}` answers class `{}` the way the full model answers class `{}`: its class input is swapped or ignored",
                name_of(names, own),
                name_of(names, other)
            ),
        )
    } else if worst_cos.0 < MIN_VELOCITY_COSINE {
        (
            false,
            format!(
                "variant `{name}`: velocity cosine similarity {:.6} < {MIN_VELOCITY_COSINE} at {}",
                worst_cos.0, worst_cos.1
            ),
        )
    } else if worst_rel.0 > MAX_VELOCITY_REL_L2 {
        (
            false,
            format!(
                "variant `{name}`: velocity relative L2 error {:.4} > {MAX_VELOCITY_REL_L2} at {}",
                worst_rel.0, worst_rel.1
            ),
        )
    } else if worst_psnr.0 < MIN_PSNR_DB {
        (
            false,
            format!(
                "variant `{name}`: final image of class `{}` has PSNR {:.1} dB < {MIN_PSNR_DB} dB against the full model's",
                worst_psnr.1, worst_psnr.0
            ),
        )
    } else if worst_ssim.0 < MIN_SSIM {
        (
            false,
            format!(
                "variant `{name}`: final image of class `{}` has SSIM {:.4} < {MIN_SSIM} against the full model's",
                worst_ssim.1, worst_ssim.0
            ),
        )
    } else {
        (true, detail_ok)
    };
    let report = VariantReport {
        name: variant.name.clone(),
        file: variant.file.clone(),
        bytes: 0,
        quantized: variant.quantized.clone(),
        passed,
        detail,
        metrics,
        classes: class_reports,
        grid: None,
    };
    Ok((report, grid))
}

fn step(x: &mut [f32], v: &[f32], state: usize, scale: Option<f32>, dt: f32) {
    match scale {
        Some(s) => {
            let (v_c, v_u) = v.split_at(state);
            for ((x, &c), &u) in x[..state].iter_mut().zip(v_c).zip(v_u) {
                *x += dt * (u + s * (c - u));
            }
            x.copy_within(..state, state);
        }
        None => {
            for (x, &v) in x.iter_mut().zip(v) {
                *x += dt * v;
            }
        }
    }
}

/// At the first step every class starts from the same noise: a class whose variant velocity is
/// closer to another class's full velocity than to its own, and within 5 % of it, is answered
/// for the wrong class.
fn swapped(full: &[f32], var: &[f32], n: usize, len: usize) -> Option<(usize, usize)> {
    if n < 2 || full.len() < n * len || var.len() < n * len {
        return None;
    }
    let dist = |a: &[f32], b: &[f32]| -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
    };
    for c in 0..n {
        let v = &var[c * len..(c + 1) * len];
        let own = dist(v, &full[c * len..(c + 1) * len]);
        let best = (0..n)
            .filter(|&o| o != c)
            .map(|o| (o, dist(v, &full[o * len..(o + 1) * len])))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        // A swap is a near match with another class (within 5 % relative L2), not merely a
        // damaged answer that happens to sit closer to some other class.
        if let Some((other, d)) = best
            && d < own
            && d < 0.05_f64.powi(2) * dist(&full[other * len..(other + 1) * len], &vec![0.0; len])
        {
            return Some((c, other));
        }
    }
    None
}

fn name_of(names: &[String], c: usize) -> String {
    names.get(c).cloned().unwrap_or_else(|| c.to_string())
}

fn unit(x: f32) -> f64 {
    f64::from(f32::midpoint(x.clamp(-1.0, 1.0), 1.0))
}

/// PSNR of two images in model scale, pixels mapped to [0, 1]; 100 dB when identical.
pub fn psnr_db(a: &[f32], b: &[f32]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (unit(x) - unit(y)).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    if mse <= 1e-10 {
        100.0
    } else {
        (10.0 * (1.0 / mse).log10()).min(100.0)
    }
}

/// Mean SSIM over 7 x 7 windows (stride 1) of each channel, pixels in [0, 1], with the usual
/// constants (K1 0.01, K2 0.03), as `skimage.metrics.structural_similarity` computes it with
/// `gaussian_weights=False`.
#[allow(clippy::many_single_char_names)]
pub fn ssim(a: &[f32], b: &[f32], shape: [usize; 3]) -> f64 {
    let [c, h, w] = shape;
    let win = 7.min(h).min(w);
    if win == 0 {
        return 1.0;
    }
    let (c1, c2) = (0.01_f64.powi(2), 0.03_f64.powi(2));
    let np = (win * win) as f64;
    let cov_norm = np / (np - 1.0).max(1.0);
    let mut total = 0.0;
    let mut count = 0usize;
    for ch in 0..c {
        let plane = ch * h * w;
        for y in 0..=h - win {
            for x in 0..=w - win {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for dy in 0..win {
                    for dx in 0..win {
                        let i = plane + (y + dy) * w + x + dx;
                        let (p, q) = (unit(a[i]), unit(b[i]));
                        sa += p;
                        sb += q;
                        saa += p * p;
                        sbb += q * q;
                        sab += p * q;
                    }
                }
                let (ma, mb) = (sa / np, sb / np);
                let va = (saa / np - ma * ma) * cov_norm;
                let vb = (sbb / np - mb * mb) * cov_norm;
                let cov = (sab / np - ma * mb) * cov_norm;
                total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                count += 1;
            }
        }
    }
    total / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images_are_perfect_and_noise_lowers_both() {
        let a: Vec<f32> = (0..3 * 16 * 16)
            .map(|i| ((i as f32) * 0.37).sin())
            .collect();
        assert!((psnr_db(&a, &a) - 100.0).abs() < 1e-9);
        assert!((ssim(&a, &a, [3, 16, 16]) - 1.0).abs() < 1e-9);
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let p = psnr_db(&a, &b);
        assert!((25.0..28.0).contains(&p), "{p}");
        assert!(ssim(&a, &b, [3, 16, 16]) < 0.99);
    }

    #[test]
    fn sums_give_cosine_and_relative_l2() {
        let mut s = Sums::default();
        s.add(&[1.0, 0.0], &[1.0, 0.0]);
        assert!((s.cosine() - 1.0).abs() < 1e-12 && s.rel_l2() == 0.0);
        let mut z = Sums::default();
        z.add(&[1.0, 2.0], &[0.0, 0.0]);
        assert!(z.cosine().abs() < 1e-12);
        assert!((z.rel_l2() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_swapped_class_is_found() {
        let full = [1.0, 0.0, 0.0, 1.0];
        assert_eq!(swapped(&full, &full, 2, 2), None);
        let var = [0.0, 1.0, 1.0, 0.0];
        assert_eq!(swapped(&full, &var, 2, 2), Some((0, 1)));
    }
}
