//! The smoke stage: run the ONNX generator with ONNX Runtime and look at what it draws.
//!
//! [`run`] decides everything before it runs anything, then reports every check:
//!
//! 1. static checks of each ONNX file (`crate::onnx`): protobuf, opsets, external data, and the
//!    declared I/O against `[generator]` / `[classifier]`; golden files loaded and matched;
//! 2. ONNX Runtime loaded, the generator session opened on the first provider that works
//!    (`session.rs`), a fallback printed as a warning and recorded;
//! 3. `samples-per-class` images of every class sampled (`sampler.rs`) from seeded noise
//!    (`noise.rs`): sample `k` of every class starts from the same noise;
//! 4. checks, each also a metric: finite values; per-image mean/std bounds; velocity (sampling
//!    moved the images away from their noise: a zero velocity returns the noise, whose statistics
//!    pass); conditioning as an effect size (classes from the same noise differ by a fair share of
//!    how much one class differs across noise; with one sample per class a second sample of a few
//!    classes is drawn for that); determinism and latency (the first sample alone, a warm-up then
//!    [`LATENCY_RUNS`] timed runs, all giving identical bytes); then golden parity and the
//!    classifier when configured;
//! 5. a PNG per sample, a grid per class and an overall grid (`images.rs`).
//!
//! A failed check is a value in [`SmokeReport`] (the caller refuses the release, exit code 1);
//! a model or configuration that cannot be run is an `Err` (exit code 2). [`sample`] is the
//! user-facing `sample` command built from the same parts.
//!
//! The rooms, by job: `run.rs` the stage in named steps; `setup.rs` what the stage and `sample`
//! share (the generator's entries, the runtime, opening a session); `checks.rs` every check and
//! the numbers behind it; `gallery.rs` the sample PNGs and grids (`images.rs` draws them);
//! `report.rs` what the stage found; `sample.rs` the `sample` command. The sampler itself is
//! `sampler.rs` over `noise.rs`, the sessions `session.rs` over `runtime.rs`.
//!
//! Layer 4, a stage: imports the configuration, `onnx` and the floors below them.

pub mod agreement;
pub mod bundle;
pub mod checks;
pub mod classifier;
pub mod gallery;
pub mod golden;
pub mod images;
pub mod noise;
pub mod npy;
pub mod report;
pub mod run;
pub mod runtime;
pub mod sample;
pub mod sampler;
pub mod session;
pub mod setup;

pub use self::report::{Check, Grid, SampleImage, SmokeReport};
pub use self::run::{LATENCY_RUNS, SPREAD_CLASSES, run};
pub use self::sample::{SampleOptions, SampleReport, SampleSource, resolve_breeds, sample};
