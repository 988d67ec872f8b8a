//! Golden parity: the ONNX generator against outputs the user's PyTorch model produced.
//!
//! `[smoke.golden]` names an inputs file and an outputs file. Each is a `.safetensors` file with
//! tensors named after the model's inputs / outputs, a folder of `<name>.npy` files, or a single
//! `.npy` file when the model has exactly one input (or output). Inputs must have the element type
//! the model declares (float32 or int64). Every output tensor present in the outputs file is
//! compared element by element with NumPy's `allclose` rule, `|a - b| <= atol + rtol * |b|` with
//! `b` the expected value; NaN never matches.
//!
//! Reported per output, and as metrics over all outputs: the largest absolute difference
//! (`smoke.golden_max_abs_diff`) and the largest relative difference
//! (`smoke.golden_max_rel_diff`), `|a - b| / |b|` over elements with `|b| > atol` (smaller
//! expected values are judged by the absolute tolerance alone; dividing by them would only
//! measure how close to zero they are).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use serde::Serialize;

use super::npy::{self, Npy, NpyData};
use crate::config::GoldenConfig;
use crate::error::Problem;
use crate::onnx::{ElementType, ModelSummary};

/// Golden files larger than this are refused rather than read into memory: fixed inputs for a
/// parity check are a handful of images, not a data set.
pub const MAX_GOLDEN_BYTES: u64 = 1 << 30;

/// The golden inputs and expected outputs, loaded and matched to the model.
#[derive(Debug, Clone)]
pub struct GoldenSet {
    /// Input tensors by model input name, in model order.
    pub inputs: Vec<(String, Npy)>,
    /// Expected float32 outputs by model output name.
    pub outputs: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// Comparison of one output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputParity {
    /// Output name.
    pub name: String,
    /// Elements compared.
    pub elements: usize,
    /// Largest |a - b|.
    pub max_abs_diff: f64,
    /// Largest |a - b| / |b| over elements with |b| > atol.
    pub max_rel_diff: f64,
    /// Elements outside `atol + rtol * |b|` (NaN counts as outside).
    pub mismatched: usize,
    /// The shape ONNX Runtime returned, when it differs from the expected one.
    pub shape_mismatch: Option<(Vec<usize>, Vec<usize>)>,
}

impl OutputParity {
    /// Whether the output matches.
    pub fn passed(&self) -> bool {
        self.mismatched == 0 && self.shape_mismatch.is_none()
    }
}

/// Loads and checks the golden files against the model's declared inputs and outputs.
pub fn load(
    config: &GoldenConfig,
    summary: &ModelSummary,
    display: impl Fn(&Path) -> String,
) -> anyhow::Result<GoldenSet> {
    let input_names: Vec<&str> = summary.inputs.iter().map(|i| i.name.as_str()).collect();
    let output_names: Vec<&str> = summary.outputs.iter().map(|o| o.name.as_str()).collect();
    let inputs_display = display(&config.inputs.path);
    let outputs_display = display(&config.outputs.path);
    let mut inputs_found = read_tensors(&config.inputs.path, &inputs_display, &input_names)?;
    let mut inputs = Vec::new();
    for declared in &summary.inputs {
        let Some(tensor) = inputs_found.remove(&declared.name) else {
            let have: Vec<String> = inputs_found.keys().map(|k| format!("`{k}`")).collect();
            return Err(Problem::new(format!(
                "`{inputs_display}` has no tensor `{}` for the model input of that name (it has {})",
                declared.name,
                if have.is_empty() { "none of the others".to_owned() } else { have.join(", ") }
            ))
            .hint("name the golden input tensors after the model's inputs")
            .into());
        };
        let matches = matches!(
            (&tensor.data, declared.dtype),
            (NpyData::F32(_), ElementType::Float32) | (NpyData::I64(_), ElementType::Int64)
        );
        if !matches {
            return Err(Problem::new(format!(
                "golden input `{}` in `{inputs_display}` is {}, the model declares {}",
                declared.name,
                tensor.dtype(),
                declared.dtype
            ))
            .hint("save it with the model's element type (timesteps float32, classes int64)")
            .into());
        }
        inputs.push((declared.name.clone(), tensor));
    }
    let outputs_found = read_tensors(&config.outputs.path, &outputs_display, &output_names)?;
    let mut outputs = Vec::new();
    for (name, tensor) in outputs_found {
        if !output_names.contains(&name.as_str()) {
            return Err(Problem::new(format!(
                "`{outputs_display}` has a tensor `{name}`, but the model's outputs are {}",
                output_names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint("name the expected output tensors after the model's outputs")
            .into());
        }
        let NpyData::F32(data) = tensor.data else {
            return Err(Problem::new(format!(
                "expected output `{name}` in `{outputs_display}` is int64; float32 is compared"
            ))
            .into());
        };
        outputs.push((name, tensor.shape, data));
    }
    if outputs.is_empty() {
        return Err(Problem::new(format!(
            "`{outputs_display}` holds no expected output to compare"
        ))
        .into());
    }
    Ok(GoldenSet { inputs, outputs })
}

/// Reads the tensors of a golden file or folder. `names` are the model's names for the role:
/// a folder is read as `<name>.npy` for each, a lone `.npy` stands for the only name.
fn read_tensors(
    path: &Path,
    display: &str,
    names: &[&str],
) -> anyhow::Result<BTreeMap<String, Npy>> {
    let meta = std::fs::metadata(path).with_context(|| format!("failed to read `{display}`"))?;
    let mut found = BTreeMap::new();
    if meta.is_dir() {
        for name in names {
            let file = path.join(format!("{name}.npy"));
            if file.is_file() {
                found.insert(
                    (*name).to_owned(),
                    npy::read(&file, &format!("{display}/{name}.npy"))?,
                );
            }
        }
        return Ok(found);
    }
    if meta.len() > MAX_GOLDEN_BYTES {
        return Err(Problem::new(format!(
            "`{display}` is {} bytes; golden files are limited to 1 GiB",
            meta.len()
        ))
        .into());
    }
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        let [only] = names else {
            return Err(Problem::new(format!(
                "`{display}` is a single .npy array, but the model has {} tensors here ({})",
                names.len(),
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint("use a .safetensors file, or a folder with one `<name>.npy` per tensor")
            .into());
        };
        found.insert((*only).to_owned(), npy::read(path, display)?);
        return Ok(found);
    }
    let bytes = std::fs::read(path).with_context(|| format!("failed to read `{display}`"))?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(|err| {
        Problem::new(format!("`{display}` is not a safetensors file: {err}"))
            .hint("save golden tensors with `safetensors.torch.save_file` or as .npy files")
    })?;
    for (name, view) in tensors.iter() {
        let data = match view.dtype() {
            safetensors::Dtype::F32 => NpyData::F32(
                view.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            safetensors::Dtype::I64 => NpyData::I64(
                view.data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            other => {
                return Err(Problem::new(format!(
                    "tensor `{name}` in `{display}` is {other:?}; float32 or int64 is needed"
                ))
                .into());
            }
        };
        found.insert(
            name.to_owned(),
            Npy {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(found)
}

/// Runs the model on the golden inputs and compares every expected output.
pub fn compare(
    session: &mut Session,
    golden: &GoldenSet,
    atol: f64,
    rtol: f64,
) -> anyhow::Result<Vec<OutputParity>> {
    let mut feed: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::new();
    for (name, tensor) in &golden.inputs {
        let value: SessionInputValue<'_> = match &tensor.data {
            NpyData::F32(data) => {
                TensorRef::from_array_view((tensor.shape.clone(), data.as_slice()))?.into()
            }
            NpyData::I64(data) => {
                TensorRef::from_array_view((tensor.shape.clone(), data.as_slice()))?.into()
            }
        };
        feed.push((Cow::Borrowed(name.as_str()), value));
    }
    let outputs = session
        .run(feed)
        .context("the generator failed on the golden inputs")?;
    let mut results = Vec::new();
    for (name, shape, expected) in &golden.outputs {
        let value = outputs
            .get(name.as_str())
            .ok_or_else(|| Problem::new(format!("the model returned no `{name}` output")))?;
        let (actual_shape, actual) = value
            .try_extract_tensor::<f32>()
            .with_context(|| format!("output `{name}` is not float32"))?;
        let actual_shape: Vec<usize> = actual_shape.iter().map(|&d| d as usize).collect();
        let mut parity = if actual_shape == *shape {
            diff(actual, expected, atol, rtol)
        } else {
            OutputParity {
                elements: 0,
                max_abs_diff: f64::INFINITY,
                max_rel_diff: f64::INFINITY,
                mismatched: expected.len(),
                shape_mismatch: Some((actual_shape, shape.clone())),
                name: String::new(),
            }
        };
        parity.name.clone_from(name);
        results.push(parity);
    }
    Ok(results)
}

/// Element-wise comparison with `allclose` semantics.
pub fn diff(actual: &[f32], expected: &[f32], atol: f64, rtol: f64) -> OutputParity {
    let mut parity = OutputParity {
        name: String::new(),
        elements: expected.len(),
        max_abs_diff: 0.0,
        max_rel_diff: 0.0,
        mismatched: 0,
        shape_mismatch: None,
    };
    for (&a, &b) in actual.iter().zip(expected) {
        let (a, b) = (f64::from(a), f64::from(b));
        let d = (a - b).abs();
        if d.is_nan() {
            parity.mismatched += 1;
            parity.max_abs_diff = f64::INFINITY;
            parity.max_rel_diff = f64::INFINITY;
            continue;
        }
        parity.max_abs_diff = parity.max_abs_diff.max(d);
        if b.abs() > atol && b != 0.0 {
            parity.max_rel_diff = parity.max_rel_diff.max(d / b.abs());
        }
        if d > atol + rtol * b.abs() {
            parity.mismatched += 1;
        }
    }
    parity
}

#[cfg(test)]
// Exact values are the point of these tests.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn allclose_semantics_and_relative_diff_over_large_values_only() {
        let p = diff(&[1.0, 2.0005, 1e-7], &[1.0, 2.0, 0.0], 1e-4, 1e-3);
        assert_eq!(p.mismatched, 0);
        assert!((p.max_abs_diff - 0.0005).abs() < 1e-6);
        assert!(
            (p.max_rel_diff - 0.00025).abs() < 1e-6,
            "{}",
            p.max_rel_diff
        );
        let strict = diff(&[1.0, 2.0005], &[1.0, 2.0], 1e-9, 0.0);
        assert_eq!(strict.mismatched, 1);
        assert!(!strict.passed());
        let nan = diff(&[f32::NAN], &[1.0], 1.0, 1.0);
        assert_eq!(nan.mismatched, 1);
        assert_eq!(nan.max_abs_diff, f64::INFINITY);
    }
}
