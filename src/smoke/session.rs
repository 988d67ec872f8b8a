//! Opening an ONNX Runtime session on the first execution provider that really works.
//!
//! `ort` falls back to the CPU silently when a provider fails to register, the most common ONNX
//! Runtime complaint. Here every non-CPU provider is requested with `error_on_failure()`, so a
//! failure comes back as an error. What happens then is decided, never defaulted: with
//! `require-provider = true`, or when that provider is the only one listed, the error stops the
//! run; otherwise the builder is recovered (`Error::recover`), the next provider is tried, and the
//! caller gets the error text to print as a warning and to record in the report. The provider
//! that opened the session is the one reported. ONNX Runtime may still place single nodes a GPU
//! provider cannot run on the CPU; with `require-provider` that is refused too
//! (`session.disable_cpu_ep_fallback`), so a required GPU run is a GPU run for every node.
//!
//! Thread settings: intra-op threads from `smoke.threads` (default: the CPUs this process may use,
//! `config::available_threads`, as Python onnxruntime does; BENCHMARKS.md has the comparison),
//! one inter-op thread, `GraphOptimizationLevel::All` (in ort rc.15 `Level3` is *not* "all").

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use ort::ep;
use ort::session::Session;
use ort::session::builder::{AutoDevicePolicy, GraphOptimizationLevel, SessionBuilder};

use crate::config::Provider;
use crate::error::Problem;

/// How sessions are opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Providers in order of preference.
    pub providers: Vec<Provider>,
    /// Fail unless the first provider runs.
    pub require_provider: bool,
    /// Intra-op threads.
    pub threads: u32,
}

impl From<&crate::config::SmokeConfig> for SessionSettings {
    fn from(smoke: &crate::config::SmokeConfig) -> Self {
        Self {
            providers: smoke.providers.clone(),
            require_provider: smoke.require_provider,
            threads: smoke.threads,
        }
    }
}

/// A session and how it came to be.
pub struct OpenedSession {
    /// The session.
    pub session: Session,
    /// The provider that opened it.
    pub provider: Provider,
    /// Why earlier providers were skipped, one line each (`cuda: ...`); `None` when the first
    /// provider opened the session.
    pub fallback: Option<String>,
    /// Milliseconds to create the session (load, optimize, allocate).
    pub load_ms: f64,
}

/// The name users see for a provider.
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Cpu => "cpu",
        Provider::Cuda => "cuda",
    }
}

/// The device a session on `provider` runs on, as reports name it (`cuda:0` is the device the
/// CUDA provider is opened with).
pub fn device_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Cpu => "cpu",
        Provider::Cuda => "cuda:0",
    }
}

fn builder(env: &ort::environment::Environment, threads: u32) -> ort::Result<SessionBuilder> {
    Ok(Session::builder(env)?
        // Only the providers asked for: no automatic device selection behind our back.
        .with_auto_device(AutoDevicePolicy::PreferCPU)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads as usize)?
        .with_inter_threads(1)?)
}

/// What to re-export when ONNX Runtime refuses a model the static checks accepted. `opset` is
/// the default-domain opset the model declares.
pub fn reexport_hint(message: &str, opset: i64) -> String {
    let newer_opset = [
        "Unrecognized attribute",
        "is not a registered function/op",
        "opset",
    ]
    .iter()
    .any(|needle| message.contains(needle));
    if newer_opset {
        format!(
            "the model uses an operator or attribute that its declared opset {opset} does not \
             have. torch's dynamo exporter (`torch.onnx.export(..., dynamo=True)`, the default \
             in recent torch) has been seen declaring opset 17 while writing opset-18 \
             attributes: re-export with `dynamo=False, opset_version={opset}`, or with \
             `opset_version=18` or later"
        )
    } else {
        format!(
            "the model declares opset {opset}; re-export it with the TorchScript exporter \
             (`torch.onnx.export(..., dynamo=False, opset_version=17)`) and check it with \
             `onnx.checker.check_model(model, full_check=True)`"
        )
    }
}

/// Opens `path` on the first provider of `settings` that works. `display` names the model and
/// `opset` is its declared default-domain opset (for the hint when ONNX Runtime refuses it).
pub fn open(
    env: &ort::environment::Environment,
    path: &Path,
    display: &str,
    opset: i64,
    settings: &SessionSettings,
) -> anyhow::Result<OpenedSession> {
    let mut skipped: Vec<String> = Vec::new();
    // A builder handed back by `recover()` after a failed registration is clean and is reused.
    let mut recovered: Option<SessionBuilder> = None;
    let last = settings.providers.len().saturating_sub(1);
    for (i, &provider) in settings.providers.iter().enumerate() {
        let may_fall_back = i < last && !(i == 0 && settings.require_provider);
        let fail = |stage: &str, message: String| -> anyhow::Error {
            let name = provider_name(provider);
            let install = match provider {
                Provider::Cuda => {
                    "for CUDA, install the GPU library with its pinned CUDA 13 libraries (`pip install \
                     --require-hashes -r scripts/requirements-cuda.txt` from this tool's repository, \
                     or use the `-cuda` image), point `--ort-lib` at its `libonnxruntime.so.1.31.1`, \
                     and run on a machine with an NVIDIA driver 580 or newer"
                }
                Provider::Cpu => "check the model and the ONNX Runtime version",
            };
            let why = if settings.require_provider {
                "`smoke.require-provider = true` forbids a fallback (of the whole model or of any \
                 node; `--require-provider` too)"
            } else {
                "no provider is listed after it in `smoke.providers` (add \"cpu\" to allow a visible fallback)"
            };
            Problem::new(format!(
                "the `{name}` execution provider failed to {stage} for `{display}`: {message}"
            ))
            .hint(format!("{install}; {why}"))
            .into()
        };
        let mut builder = match recovered.take() {
            Some(builder) => builder,
            None => builder(env, settings.threads)
                .context("failed to configure an ONNX Runtime session")?,
        };
        if provider != Provider::Cpu {
            let dispatch = match provider {
                // TF32 is off so GPU results stay comparable with the float32 golden outputs.
                Provider::Cuda => ep::CUDA::default()
                    .with_device_id(0)
                    .with_tf32(false)
                    .build(),
                Provider::Cpu => unreachable!("handled above"),
            };
            if settings.require_provider && i == 0 {
                // Required means every node: ONNX Runtime may otherwise place the nodes this
                // provider cannot run on the CPU without a word. With this entry, session
                // creation fails instead, naming the nodes.
                builder = builder.with_disable_cpu_fallback().map_err(|err| {
                    anyhow::anyhow!(
                        "failed to configure an ONNX Runtime session: {}",
                        err.message()
                    )
                })?;
            }
            builder = match builder.with_execution_providers([dispatch.error_on_failure()]) {
                Ok(builder) => builder,
                Err(err) => {
                    let message = err.message().trim().to_owned();
                    if !may_fall_back {
                        return Err(fail("register", message));
                    }
                    skipped.push(format!("{}: {message}", provider_name(provider)));
                    recovered = Some(err.recover());
                    continue;
                }
            };
        }
        let started = Instant::now();
        match builder.commit_from_file(path) {
            Ok(session) => {
                return Ok(OpenedSession {
                    session,
                    provider,
                    fallback: (!skipped.is_empty()).then(|| skipped.join("; ")),
                    load_ms: started.elapsed().as_secs_f64() * 1000.0,
                });
            }
            Err(err) if provider != Provider::Cpu && may_fall_back => {
                skipped.push(format!(
                    "{}: {}",
                    provider_name(provider),
                    err.message().trim()
                ));
            }
            Err(err) if provider != Provider::Cpu => {
                return Err(fail("open the model", err.message().trim().to_owned()));
            }
            Err(err) => {
                let message = err.message().trim().to_owned();
                return Err(Problem::new(format!(
                    "ONNX Runtime refused `{display}`, which passed the static checks: {message}"
                ))
                .hint(reexport_hint(&message, opset))
                .into());
            }
        }
    }
    Err(Problem::new(format!(
        "no execution provider could open `{display}`: {}",
        skipped.join("; ")
    ))
    .into())
}
