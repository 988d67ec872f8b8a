//! The classifier check: do the samples look like what they should be?
//!
//! Each sample is turned into exactly the image a user sees (the PNG's bytes, `images::to_byte`),
//! scaled to [0, 1], resized to `classifier.image-size` with bilinear interpolation using
//! half-pixel centres (PyTorch's `interpolate(mode="bilinear", align_corners=False)`, no
//! antialiasing), normalised per channel with `classifier.mean` / `classifier.std`, and
//! classified. `smoke.classifier_agreement` is the fraction of samples whose top logit is the
//! expected label: `classifier.expect`, or the sample's own class when `expect = "class"`.

use anyhow::Context as _;
use ort::session::Session;
use ort::value::TensorRef;

use super::images::to_byte;
use crate::config::ClassifierConfig;
use crate::error::Problem;
use crate::onnx::ClassifierIo;

/// Classifier input for one `[C, H, W]` sample: `[C, S, S]`, normalised.
pub fn preprocess(image: &[f32], shape: [usize; 3], config: &ClassifierConfig) -> Vec<f32> {
    let [channels, h, w] = shape;
    let size = config.image_size as usize;
    let mut out = Vec::with_capacity(channels * size * size);
    let mut plane = vec![0.0_f32; h * w];
    for c in 0..channels {
        for (dst, &x) in plane.iter_mut().zip(&image[c * h * w..(c + 1) * h * w]) {
            *dst = f32::from(to_byte(x)) / 255.0;
        }
        let mean = config.mean.get(c).copied().unwrap_or(0.0);
        let std = config.std.get(c).copied().unwrap_or(1.0);
        let start = out.len();
        resize_bilinear(&plane, h, w, size, size, &mut out);
        for v in &mut out[start..] {
            *v = (*v - mean) / std;
        }
    }
    out
}

/// Source index and weight of one output coordinate, as PyTorch computes them for
/// `align_corners=False`.
fn source(dst: usize, in_len: usize, out_len: usize) -> (usize, usize, f32) {
    let scale = in_len as f32 / out_len as f32;
    let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let low = (src as usize).min(in_len - 1);
    let high = if low < in_len - 1 { low + 1 } else { low };
    (low, high, src - low as f32)
}

/// Appends `plane` (`h x w`) resized to `oh x ow`.
pub fn resize_bilinear(
    plane: &[f32],
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    out: &mut Vec<f32>,
) {
    let columns: Vec<(usize, usize, f32)> = (0..ow).map(|x| source(x, w, ow)).collect();
    for y in 0..oh {
        let (y0, y1, ly) = source(y, h, oh);
        let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
        for &(x0, x1, lx) in &columns {
            let top = (1.0 - lx) * r0[x0] + lx * r0[x1];
            let bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
            out.push((1.0 - ly) * top + ly * bottom);
        }
    }
}

/// The index of the largest logit of each row (NaN rows give `None`).
pub fn argmax_rows(logits: &[f32], labels: usize) -> Vec<Option<usize>> {
    logits
        .chunks(labels)
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
        })
        .collect()
}

/// Refuses a classifier whose calls would need more than
/// [`super::sampler::MAX_STATE_BYTES`] of float32 input, before anything is allocated: every call
/// is padded to a fixed batch, however few samples there are. `model` names the classifier.
pub fn check_budget(
    config: &ClassifierConfig,
    io: ClassifierIo,
    channels: usize,
    batch_size: usize,
    model: &str,
) -> anyhow::Result<()> {
    let size = config.image_size as usize;
    let rows = io.fixed_batch.unwrap_or(batch_size).max(1);
    let bytes = [channels, size, size, rows]
        .iter()
        .try_fold(4_usize, |acc, &d| acc.checked_mul(d));
    if bytes.is_some_and(|b| b as u64 <= super::sampler::MAX_STATE_BYTES) {
        return Ok(());
    }
    let what = match io.fixed_batch {
        Some(fixed) => format!(
            "fixes its batch dimension (axis 0 of `{}`) to {fixed}",
            config.input
        ),
        None => format!("is called with batches of {rows}"),
    };
    Err(Problem::new(format!(
        "`{model}` {what}: one call of {rows} rows of [{channels}, {size}, {size}] needs more \
         than {} GiB of float32 input",
        super::sampler::MAX_STATE_BYTES >> 30
    ))
    .hint("re-export the classifier with a dynamic batch axis (`dynamic_axes`)")
    .into())
}

/// Classifies preprocessed inputs (`count` images of `image_len` values) in batches of
/// `batch_size` (or the classifier's fixed batch, padding the last one). Returns the predicted
/// label index per image.
pub fn classify(
    session: &mut Session,
    config: &ClassifierConfig,
    io: ClassifierIo,
    inputs: &[f32],
    count: usize,
    batch_size: usize,
) -> anyhow::Result<Vec<Option<usize>>> {
    let size = config.image_size as usize;
    let image_len = inputs.len() / count.max(1);
    let channels = image_len / (size * size).max(1);
    let labels = config.labels.len();
    let per_call = io.fixed_batch.unwrap_or(batch_size).max(1);
    let mut predicted = Vec::with_capacity(count);
    let mut batch: Vec<f32> = Vec::new();
    for chunk in inputs.chunks(per_call * image_len) {
        let n = chunk.len() / image_len;
        let rows = if io.fixed_batch.is_some() {
            per_call
        } else {
            n
        };
        batch.clear();
        batch.extend_from_slice(chunk);
        for _ in n..rows {
            batch.extend_from_slice(&chunk[..image_len]);
        }
        let outputs = session
            .run(ort::inputs![
                config.input.as_str() => TensorRef::from_array_view(([rows, channels, size, size], batch.as_slice()))?,
            ])
            .context("the classifier failed")?;
        let value = outputs.get(config.output.as_str()).ok_or_else(|| {
            Problem::new(format!(
                "the classifier returned no `{}` output",
                config.output
            ))
        })?;
        let (shape, logits) = value.try_extract_tensor::<f32>().with_context(|| {
            format!("the classifier's `{}` output is not float32", config.output)
        })?;
        if logits.len() != rows * labels {
            return Err(Problem::new(format!(
                "the classifier returned `{}` of shape {shape}, expected [{rows}, {labels}] \
                 (one logit per `classifier.labels` entry)",
                config.output
            ))
            .into());
        }
        predicted.extend(argmax_rows(logits, labels).into_iter().take(n));
    }
    Ok(predicted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(size: u32) -> ClassifierConfig {
        ClassifierConfig {
            input: "input".into(),
            output: "output".into(),
            image_size: size,
            mean: vec![0.5],
            std: vec![0.25],
            labels: vec!["cat".into(), "other".into()],
            expect: Some("cat".into()),
        }
    }

    #[test]
    fn a_huge_fixed_batch_is_refused_before_allocating() {
        let huge = ClassifierIo {
            fixed_batch: Some(1 << 40),
        };
        let err = check_budget(&config(64), huge, 3, 8, "c.onnx").expect_err("huge");
        assert!(
            err.to_string().contains(
                "`c.onnx` fixes its batch dimension (axis 0 of `input`) to 1099511627776"
            ),
            "{err}"
        );
        let fine = ClassifierIo {
            fixed_batch: Some(4),
        };
        check_budget(&config(64), fine, 3, 8, "c.onnx").expect("small");
    }

    /// Values PyTorch gives for `F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]),
    /// size=(4, 4), mode="bilinear", align_corners=False)`.
    #[test]
    fn bilinear_matches_pytorch_half_pixel_centres() {
        let mut out = Vec::new();
        resize_bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4, &mut out);
        let expected = [
            0.0, 0.25, 0.75, 1.0, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2.0, 2.25, 2.75, 3.0,
        ];
        for (a, b) in out.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
        let mut same = Vec::new();
        resize_bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 2, 2, &mut same);
        assert_eq!(same, [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn preprocess_quantizes_scales_and_normalises() {
        // One channel, 1x1 image at x = 1 (white) -> 1.0 -> (1 - 0.5) / 0.25 = 2.
        let out = preprocess(&[1.0], [1, 1, 1], &config(2));
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|v| (v - 2.0).abs() < 1e-6), "{out:?}");
    }

    #[test]
    fn argmax_skips_nan_rows() {
        assert_eq!(
            argmax_rows(&[0.1, 0.9, 2.0, -1.0, f32::NAN, f32::NAN], 2),
            [Some(1), Some(0), None]
        );
    }
}
