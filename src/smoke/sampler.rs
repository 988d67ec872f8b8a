//! The Euler flow-matching sampler, exactly as `reference/tinydit.md` describes it.
//!
//! For each batch of images: `x = noise`; `dt = 1 / steps` (f32); for `i in 0..steps`:
//! `t = i as f32 / steps as f32`, `v = model(x, t, class)`, `x = x + dt * v`, all in f32, in
//! that order, so the result matches a NumPy loop with the same library to float rounding.
//! Classifier-free guidance:
//!
//! - `explicit`: one call per step on the batch `[x; x]` with classes `[cond; uncond]`, then
//!   `v = v_u + s * (v_c - v_u)` element by element in f32;
//! - `baked`: the graph does the above itself; one call on `x` with the classes;
//! - `none`: one call on `x` with the classes.
//!
//! Images are processed `batch-size` at a time (per call: twice that with `explicit`). A graph
//! with a fixed batch gets exactly that many rows each call; a short last batch is padded with
//! copies of its first image, whose results are dropped.
//!
//! Buffers are allocated once per batch and reused for every step: the input tensors borrow them
//! (`TensorRef`, no copy), the state is updated in place from the output slice, and for
//! `explicit` the state lives in the first half of the model input so only the second half is
//! copied per step. What remains per step is ONNX Runtime's own output allocation.

use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::{CfgMode, GeneratorConfig};
use crate::error::Problem;

/// The most float32 state (noise and final images) one run may hold.
pub const MAX_STATE_BYTES: u64 = 4 << 30;

/// How classifier-free guidance is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guidance {
    /// The sampler batches `[cond; uncond]` and mixes with this scale.
    Explicit {
        /// Guidance scale `s`.
        scale: f32,
        /// The class of the unconditional branch.
        uncond: i64,
    },
    /// The graph applies guidance itself.
    Baked,
    /// No guidance.
    None,
}

impl Guidance {
    /// The guidance `[generator]` asks for, with `scale` in place of `cfg-scale`.
    pub fn from_config(config: &GeneratorConfig, scale: f32) -> anyhow::Result<Self> {
        Ok(match config.cfg {
            CfgMode::Explicit => Self::Explicit {
                scale,
                uncond: i64::from(config.uncond_class.ok_or_else(|| {
                    Problem::new("`cfg = \"explicit\"` needs `generator.uncond-class`")
                })?),
            },
            CfgMode::Baked => Self::Baked,
            CfgMode::None => Self::None,
        })
    }
}

/// Everything the sampler needs besides the session and the inputs.
#[derive(Debug, Clone)]
pub struct SamplerPlan {
    /// Name of the state input.
    pub noise_input: String,
    /// Name of the time input.
    pub timestep_input: String,
    /// Name of the class input.
    pub label_input: String,
    /// Name of the velocity output.
    pub output: String,
    /// Shape of one image, `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// Euler steps.
    pub steps: u32,
    /// Guidance.
    pub guidance: Guidance,
    /// Images per call when the graph's batch is dynamic.
    pub batch_size: usize,
    /// The batch the graph fixes, if any (rows per call, guidance rows included).
    pub fixed_batch: Option<usize>,
}

impl SamplerPlan {
    /// A plan from `[generator]` and the facts found in the model.
    pub fn new(
        config: &GeneratorConfig,
        guidance: Guidance,
        steps: u32,
        batch_size: usize,
        fixed_batch: Option<usize>,
    ) -> Self {
        let size = config.image_size as usize;
        Self {
            noise_input: config.noise_input.clone(),
            timestep_input: config.timestep_input.clone(),
            label_input: config.label_input.clone(),
            output: config.output.clone(),
            image_shape: [config.channels as usize, size, size],
            steps,
            guidance,
            batch_size: batch_size.max(1),
            fixed_batch,
        }
    }

    /// Values in one image.
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Refuses a run whose buffers would exceed [`MAX_STATE_BYTES`], before anything is
    /// allocated: the state of `images` images (noise and final images), plus one call's model
    /// input and output. With a fixed batch a call always has that many rows, however few images
    /// are sampled, so the padding counts: `image-size = 100000` is a typo and a graph fixing its
    /// batch to 10^9 is a broken export, not requests for terabytes. `model` names the generator.
    pub fn check_budget(&self, images: usize, model: &str) -> anyhow::Result<()> {
        let image_bytes = self
            .image_shape
            .iter()
            .try_fold(4_usize, |acc, &d| acc.checked_mul(d));
        let rows_per_image = if matches!(self.guidance, Guidance::Explicit { .. }) {
            2
        } else {
            1
        };
        let rows = self
            .fixed_batch
            .unwrap_or_else(|| self.batch_size.min(images.max(1)) * rows_per_image);
        // Input and output of one call.
        let call = image_bytes.and_then(|b| b.checked_mul(rows)?.checked_mul(2));
        let state = image_bytes.and_then(|b| b.checked_mul(images));
        let total = call.zip(state).and_then(|(c, s)| c.checked_add(s));
        if total.is_some_and(|t| t as u64 <= MAX_STATE_BYTES) {
            return Ok(());
        }
        let limit = MAX_STATE_BYTES >> 30;
        if let Some(fixed) = self.fixed_batch
            && call.is_none_or(|c| c as u64 > MAX_STATE_BYTES / 2)
        {
            return Err(Problem::new(format!(
                "`{model}` fixes its batch dimension (axis 0 of `{}`) to {fixed}: every call is \
                 padded to {fixed} rows of {:?}, more than {limit} GiB of float32 input and output",
                self.noise_input, self.image_shape
            ))
            .hint(
                "re-export the generator with a dynamic batch axis \
                 (`dynamic_axes={\"noise\": {0: \"batch\"}, ...}`) or a fixed batch near `smoke.batch-size`",
            )
            .into());
        }
        Err(Problem::new(format!(
            "{images} image(s) of {:?} need more than {limit} GiB of float32 state",
            self.image_shape
        ))
        .hint("check `generator.image-size` and `generator.channels`, or sample fewer images")
        .into())
    }

    /// Images per call, and whether calls are padded to a fixed batch.
    fn images_per_call(&self) -> anyhow::Result<(usize, bool)> {
        let explicit = matches!(self.guidance, Guidance::Explicit { .. });
        match self.fixed_batch {
            Some(fixed) if explicit && fixed % 2 != 0 => Err(Problem::new(format!(
                "the generator fixes its batch to {fixed}, but `cfg = \"explicit\"` needs an even \
                 batch (conditional and unconditional rows)"
            ))
            .hint("re-export with a dynamic batch axis (`dynamic_axes`)")
            .into()),
            Some(fixed) if explicit => Ok((fixed / 2, true)),
            Some(fixed) => Ok((fixed, true)),
            None => Ok((self.batch_size, false)),
        }
    }
}

/// What sampling produced.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    /// Final states, image after image, each `[C, H, W]` in C order.
    pub finals: Vec<f32>,
    /// Milliseconds of each model call.
    pub step_ms: Vec<f64>,
    /// Milliseconds per image: each batch's wall time divided by its images, once per image.
    pub image_ms: Vec<f64>,
}

/// Samples one image per entry of `labels`, starting from `noise` (`labels.len()` images).
/// `progress` advances once per model call.
pub fn sample(
    session: &mut Session,
    plan: &SamplerPlan,
    labels: &[i64],
    noise: &[f32],
    progress: &ProgressBar,
) -> anyhow::Result<Sampled> {
    let len = plan.image_len();
    if noise.len() != labels.len() * len {
        return Err(Problem::new(format!(
            "the noise holds {} values, {} images of {:?} need {}",
            noise.len(),
            labels.len(),
            plan.image_shape,
            labels.len() * len
        ))
        .into());
    }
    if plan.steps == 0 {
        return Err(Problem::new("sampling needs at least one step").into());
    }
    let (per_call, padded) = plan.images_per_call()?;
    let explicit = match plan.guidance {
        Guidance::Explicit { scale, uncond } => Some((scale, uncond)),
        _ => None,
    };
    let rows_per_image = if explicit.is_some() { 2 } else { 1 };
    let steps = plan.steps;
    let dt = 1.0_f32 / steps as f32;
    let mut out = Sampled {
        finals: Vec::with_capacity(noise.len()),
        step_ms: Vec::with_capacity(steps as usize * labels.len().div_ceil(per_call)),
        image_ms: Vec::with_capacity(labels.len()),
    };
    // Reused across batches: the model input (state, then its copy for `explicit`), times, classes.
    let mut xin: Vec<f32> = Vec::new();
    let mut times: Vec<f32> = Vec::new();
    let mut classes: Vec<i64> = Vec::new();
    for (chunk_labels, chunk_noise) in labels.chunks(per_call).zip(noise.chunks(per_call * len)) {
        let started = Instant::now();
        let n = chunk_labels.len();
        let slots = if padded { per_call } else { n };
        let rows = slots * rows_per_image;
        let state_len = slots * len;
        xin.clear();
        xin.extend_from_slice(chunk_noise);
        classes.clear();
        classes.extend_from_slice(chunk_labels);
        for _ in n..slots {
            xin.extend_from_slice(&chunk_noise[..len]);
            classes.push(chunk_labels[0]);
        }
        if let Some((_, uncond)) = explicit {
            xin.extend_from_within(..state_len);
            classes.extend(std::iter::repeat_n(uncond, slots));
        }
        times.clear();
        times.resize(rows, 0.0);
        let x_shape = [
            rows,
            plan.image_shape[0],
            plan.image_shape[1],
            plan.image_shape[2],
        ];
        for i in 0..steps {
            times.fill(i as f32 / steps as f32);
            let call = Instant::now();
            let outputs = session
                .run(ort::inputs![
                    plan.noise_input.as_str() => TensorRef::from_array_view((x_shape, xin.as_slice()))?,
                    plan.timestep_input.as_str() => TensorRef::from_array_view(([rows], times.as_slice()))?,
                    plan.label_input.as_str() => TensorRef::from_array_view(([rows], classes.as_slice()))?,
                ])
                .with_context(|| format!("the generator failed at step {i} of {steps}"))?;
            let value = outputs.get(plan.output.as_str()).ok_or_else(|| {
                Problem::new(format!(
                    "the generator returned no `{}` output",
                    plan.output
                ))
            })?;
            let (shape, v) = value.try_extract_tensor::<f32>().with_context(|| {
                format!("the generator's `{}` output is not float32", plan.output)
            })?;
            if v.len() != rows * len {
                return Err(Problem::new(format!(
                    "the generator returned `{}` of shape {shape}, expected [{rows}, {}, {}, {}]",
                    plan.output, plan.image_shape[0], plan.image_shape[1], plan.image_shape[2]
                ))
                .into());
            }
            let (x, _) = xin.split_at_mut(state_len);
            if let Some((scale, _)) = explicit {
                let (v_c, v_u) = v.split_at(state_len);
                for ((x, &c), &u) in x.iter_mut().zip(v_c).zip(v_u) {
                    let guided = u + scale * (c - u);
                    *x += dt * guided;
                }
            } else {
                for (x, &v) in x.iter_mut().zip(v) {
                    *x += dt * v;
                }
            }
            drop(outputs);
            if explicit.is_some() {
                xin.copy_within(..state_len, state_len);
            }
            out.step_ms.push(call.elapsed().as_secs_f64() * 1000.0);
            progress.inc(1);
        }
        out.finals.extend_from_slice(&xin[..n * len]);
        let per_image = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
        out.image_ms.extend(std::iter::repeat_n(per_image, n));
    }
    Ok(out)
}

/// Model calls `sample` makes for `images` images, for sizing a progress bar.
pub fn calls(plan: &SamplerPlan, images: usize) -> u64 {
    let per_call = plan.images_per_call().map_or(plan.batch_size, |(n, _)| n);
    (images.div_ceil(per_call) * plan.steps as usize) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(guidance: Guidance, batch_size: usize, fixed_batch: Option<usize>) -> SamplerPlan {
        SamplerPlan {
            noise_input: "noise".into(),
            timestep_input: "timestep".into(),
            label_input: "breed".into(),
            output: "velocity".into(),
            image_shape: [3, 32, 32],
            steps: 50,
            guidance,
            batch_size,
            fixed_batch,
        }
    }

    const EXPLICIT: Guidance = Guidance::Explicit {
        scale: 1.5,
        uncond: 12,
    };

    #[test]
    fn calls_per_run_follow_batch_and_fixed_batch() {
        assert_eq!(calls(&plan(EXPLICIT, 8, None), 13), 2 * 50);
        assert_eq!(calls(&plan(EXPLICIT, 8, Some(4)), 13), 7 * 50);
        assert_eq!(calls(&plan(Guidance::None, 8, Some(4)), 13), 4 * 50);
        assert_eq!(
            plan(Guidance::Baked, 8, Some(3))
                .images_per_call()
                .expect("odd is fine"),
            (3, true)
        );
        let err = plan(EXPLICIT, 8, Some(3))
            .images_per_call()
            .expect_err("odd batch");
        assert!(err.to_string().contains("needs an even batch"), "{err}");
    }

    #[test]
    fn absurd_sizes_are_refused_before_allocating() {
        let mut p = plan(EXPLICIT, 8, None);
        p.check_budget(13, "g.onnx").expect("small");
        p.image_shape = [3, 100_000, 100_000];
        let err = p.check_budget(13, "g.onnx").expect_err("huge");
        assert!(err.to_string().contains("more than 4 GiB"), "{err}");
        p.image_shape = [usize::MAX, 2, 2];
        assert!(
            p.check_budget(2, "g.onnx").is_err(),
            "overflow is refused too"
        );
    }

    #[test]
    fn the_padding_of_a_fixed_batch_counts_against_the_budget() {
        // One image, but every call carries 10^9 rows: 12 TB per call.
        let p = plan(EXPLICIT, 8, Some(1_000_000_000));
        let err = p.check_budget(1, "huge.onnx").expect_err("padding");
        let text = err.to_string();
        assert!(
            text.contains(
                "`huge.onnx` fixes its batch dimension (axis 0 of `noise`) to 1000000000"
            ),
            "{text}"
        );
        assert!(text.contains("padded to 1000000000 rows"), "{text}");
        plan(EXPLICIT, 8, Some(64))
            .check_budget(1, "ok.onnx")
            .expect("a modest fixed batch is fine");
        plan(EXPLICIT, 8, Some(usize::MAX))
            .check_budget(1, "max.onnx")
            .expect_err("overflow");
    }
}
