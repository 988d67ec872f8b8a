//! `[[onnx]] quantize`: the int8 variant `check` builds from a generator, with its defaults.

use super::raw::RawQuantize;

/// Weights with fewer elements stay float: 4096 (16 KiB of float32) keeps biases, norms and tiny
/// projections, and quantizes every `Linear` of a full-size TinyDiT (the smallest is 256 x 384).
pub const DEFAULT_QUANTIZE_MIN_ELEMENTS: u64 = 4096;

/// `[[onnx]] quantize`, resolved.
#[derive(Debug, Clone)]
pub struct QuantizeConfig {
    /// The variant's name.
    pub variant: String,
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
    /// Path inside the bundle.
    pub output: String,
}

/// `[[onnx]] quantize` with its defaults.
pub(super) fn resolve(raw: &RawQuantize, path: &str) -> QuantizeConfig {
    let variant = raw.variant.clone().unwrap_or_else(|| "int8".to_owned());
    let stem = std::path::Path::new(path).file_stem().map_or_else(
        || "generator".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    QuantizeConfig {
        output: raw
            .output
            .clone()
            .unwrap_or_else(|| format!("onnx/{stem}_{variant}.onnx")),
        min_elements: raw.min_elements.unwrap_or(DEFAULT_QUANTIZE_MIN_ELEMENTS),
        variant,
    }
}
