//! Generator variants in a release: the quantized ones `check` builds (`[[onnx]] quantize`) and
//! the ones provided as files (`[[onnx]] variant`), each judged against the full-precision
//! generator by `smoke::agreement`.

use super::report::ArtifactEntry;
use crate::bundle::Staging;
use crate::card::{self, CardQuantized, CardVariant};
use crate::config::ReleaseConfig;
use crate::names::{ArtifactKind, metric};
use crate::onnx::quantize::{QuantizeOptions, quantize};
use crate::report::Reporter;
use crate::smoke::agreement::{VariantInput, VariantReport};

/// Builds every `quantize` variant into the bundle and lists every variant to judge.
pub fn build(
    config: &ReleaseConfig,
    staging: &Staging,
    reporter: &Reporter,
) -> anyhow::Result<(Vec<ArtifactEntry>, Vec<VariantInput>)> {
    let mut artifacts = Vec::new();
    let mut variants = Vec::new();
    for onnx in &config.onnx {
        if let Some(name) = &onnx.variant {
            variants.push(VariantInput {
                name: name.clone(),
                path: onnx.path.path.clone(),
                display: onnx.path.configured.clone(),
                file: onnx.output.clone(),
                quantized: None,
            });
        }
        let Some(q) = &onnx.quantize else {
            continue;
        };
        reporter.status(
            "Quantizing",
            format!("`{}` -> `{}`", onnx.path.configured, q.output),
        );
        let target = staging.path_for(&q.output)?;
        let report = quantize(
            &onnx.path.path,
            &onnx.path.configured,
            &target,
            &q.output,
            &QuantizeOptions {
                min_elements: q.min_elements,
            },
        )?;
        // The result passes our own static checks before anything else sees it.
        crate::onnx::inspect(&target, &q.output)?;
        reporter.status("Quantized", report.summary());
        let mut outputs = vec![q.output.clone()];
        if let Some(data) = &report.data_file {
            let dir = q.output.rsplit_once('/').map_or("", |(d, _)| d);
            outputs.push(if dir.is_empty() {
                data.clone()
            } else {
                format!("{dir}/{data}")
            });
        }
        artifacts.push(ArtifactEntry {
            source: format!("{} (quantized: {})", onnx.path.configured, q.variant),
            kind: ArtifactKind::Onnx,
            outputs,
        });
        variants.push(VariantInput {
            name: q.variant.clone(),
            path: target,
            display: q.output.clone(),
            file: q.output.clone(),
            quantized: Some(report),
        });
    }
    Ok((artifacts, variants))
}

/// The card's view of each judged variant: plain, formatted values (the card knows no smoke
/// types).
pub fn card_variants(reports: &[VariantReport]) -> Vec<CardVariant> {
    reports
        .iter()
        .map(|v| {
            let get = |measure: &str| v.metrics.get(&metric::variant(&v.name, measure)).copied();
            CardVariant {
                name: v.name.clone(),
                file: v.file.clone(),
                size: card::human_bytes(v.bytes),
                quantized: v.quantized.as_ref().map(|q| CardQuantized {
                    weights: q.quantized.len(),
                    float_quantized: card::human_bytes(q.float_bytes_quantized),
                    float_kept: card::human_bytes(q.float_bytes_kept),
                    size_before: card::human_bytes(q.bytes_before),
                    ratio: format!("{:.2}", q.bytes_after as f64 / q.bytes_before.max(1) as f64),
                    opset_raised: (q.opset_after != q.opset_before)
                        .then_some((q.opset_before, q.opset_after)),
                    max_weight_error: format!("{:.2e}", q.max_relative_error),
                }),
                passed: v.passed,
                detail: v.detail.clone(),
                velocity_cosine_min: get("velocity_cosine_min").map(|c| format!("{c:.6}")),
                velocity_rel_l2_max: get("velocity_rel_l2_max").map(|r| format!("{r:.4}")),
                psnr_min_db: get("psnr_min_db").map(|p| format!("{p:.1}")),
                ssim_min: get("ssim_min").map(|s| format!("{s:.4}")),
                classes: v
                    .classes
                    .iter()
                    .map(|c| {
                        (
                            c.class.clone(),
                            format!("{:.1}", c.psnr_db),
                            format!("{:.4}", c.ssim),
                        )
                    })
                    .collect(),
                grid: v.grid.clone(),
            }
        })
        .collect()
}
