//! Generator variants in a release: the quantized ones `check` builds (`[[onnx]] quantize`) and
//! the ones provided as files (`[[onnx]] variant`), each judged against the full-precision
//! generator by `smoke::agreement`.

use super::report::ArtifactEntry;
use crate::bundle::Staging;
use crate::config::ReleaseConfig;
use crate::names::ArtifactKind;
use crate::onnx::quantize::{QuantizeOptions, quantize};
use crate::report::Reporter;
use crate::smoke::agreement::VariantInput;

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
