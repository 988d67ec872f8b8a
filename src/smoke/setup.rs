//! What the smoke stage and the `sample` command share: the generator's entries in the
//! configuration, ONNX Runtime loaded once, a session opened and reported, and how a model and a
//! guidance mode are named in status lines.

use std::path::Path;

use super::runtime;
use super::sampler::Guidance;
use super::session::{self, OpenedSession, SessionSettings, provider_name};
use crate::config::{GeneratorConfig, ReleaseConfig};
use crate::error::Problem;
use crate::onnx::{self, ModelSummary};
use crate::report::Reporter;

/// The generator entries of a configuration, or an error saying what is missing.
pub(crate) fn generator_of(
    config: &ReleaseConfig,
) -> anyhow::Result<(&crate::config::OnnxConfig, &GeneratorConfig)> {
    let onnx = config.generator_onnx().ok_or_else(|| {
        Problem::new(format!(
            "`{}` has no `[[onnx]]` entry with `role = \"generator\"`",
            config.file
        ))
        .hint("add the exported generator: `[[onnx]]` with `path = ...` and `role = \"generator\"`")
    })?;
    let generator = config.generator.as_ref().ok_or_else(|| {
        Problem::new(format!("`{}` has no `[generator]` table", config.file))
            .hint("describe the generator's inputs, classes and sampling in `[generator]`")
    })?;
    Ok((onnx, generator))
}

/// Loads ONNX Runtime (once per process) and says which library is in use.
pub(crate) fn load_runtime(
    search: &runtime::OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<ort::environment::Environment> {
    let (env, library) = runtime::environment(search)?;
    reporter.status(
        "Loaded",
        format!("ONNX Runtime from `{}`", library.display()),
    );
    Ok(env)
}

/// One line about a statically checked model: IR, opset, I/O, external data.
pub(crate) fn describe(summary: &ModelSummary) -> String {
    let list = |tensors: &[onnx::TensorInfo]| {
        tensors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let external = match summary.external_data.len() {
        0 => String::new(),
        n => format!(", {n} tensor(s) in external data"),
    };
    format!(
        "`{}`: IR {}, opset {}, {} -> {}{external}",
        summary.file,
        summary.ir_version,
        summary.opset,
        list(&summary.inputs),
        list(&summary.outputs)
    )
}

pub(crate) fn name_of(names: &[String], class: usize) -> &str {
    names.get(class).map_or("?", String::as_str)
}

pub(crate) fn cfg_text(guidance: Guidance) -> String {
    match guidance {
        Guidance::Explicit { scale, .. } => format!("explicit (scale {scale})"),
        Guidance::Baked => "baked into the graph".to_owned(),
        Guidance::None => "none".to_owned(),
    }
}

/// Opens a session, printing the provider and any fallback.
pub(crate) fn open_reporting(
    env: &ort::environment::Environment,
    summary: (&Path, &ModelSummary),
    settings: &SessionSettings,
    reporter: &Reporter,
) -> anyhow::Result<OpenedSession> {
    let (path, summary) = summary;
    let display = summary.file.as_str();
    let opened = session::open(env, path, display, summary.opset, settings)?;
    if let Some(fallback) = &opened.fallback {
        reporter.warn(format!(
            "`{display}` runs on `{}`, not the first provider in `smoke.providers`: {fallback}",
            provider_name(opened.provider)
        ));
    }
    reporter.status(
        "Opened",
        format!(
            "`{display}` on {} (`{}`{}) in {:.0} ms ({} intra-op thread(s))",
            provider_name(opened.provider),
            session::device_name(opened.provider),
            if settings.require_provider && opened.provider != crate::config::Provider::Cpu {
                ", every node"
            } else {
                ""
            },
            opened.load_ms,
            settings.threads
        ),
    );
    Ok(opened)
}
