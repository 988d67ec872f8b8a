//! What the smoke stage found: the checks, the samples and grids, the session it ran on.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{CfgMode, Provider};
use crate::onnx::ModelSummary;

/// One check of the smoke test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `finite`, `sample-stats`, `conditioning`, `determinism`, `latency`, `golden`,
    /// `classifier`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, in one line.
    pub detail: String,
}

impl Check {
    pub(crate) fn new(name: &str, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        }
    }
}

/// One sample image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleImage {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub class_name: String,
    /// Which sample of the class (0-based).
    pub index: usize,
    /// The PNG, relative to the output folder, `/`-separated.
    pub png: String,
    /// The classifier's label for it, when a classifier ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier_label: Option<String>,
}

/// A grid image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// The class, or `None` for the overall grid.
    pub class: Option<usize>,
    /// Its name, or `None` for the overall grid.
    pub class_name: Option<String>,
    /// The PNG, relative to the output folder.
    pub png: String,
}

/// Everything the smoke test found.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    /// The generator as statically inspected.
    pub generator: ModelSummary,
    /// The classifier, when one was checked.
    pub classifier: Option<ModelSummary>,
    /// The execution provider the generator really ran on.
    pub provider: Provider,
    /// The device it ran on (`cpu`, `cuda:0`).
    pub device: &'static str,
    /// Why earlier providers were skipped, when one was.
    pub provider_fallback: Option<String>,
    /// Intra-op threads.
    pub threads: u32,
    /// Euler steps.
    pub steps: u32,
    /// Guidance mode.
    pub cfg: CfgMode,
    /// Guidance scale (used by `explicit` only).
    pub cfg_scale: f32,
    /// Noise seed.
    pub seed: u64,
    /// Timed single-image runs behind the latency percentiles.
    pub latency_runs: usize,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Metrics for gates (`smoke.*`).
    pub metrics: BTreeMap<String, f64>,
    /// One entry per sample, class-major.
    pub samples: Vec<SampleImage>,
    /// One grid per class, then the overall grid.
    pub grids: Vec<Grid>,
}

impl SmokeReport {
    /// Every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The overall grid, relative to the output folder.
    pub fn gallery(&self) -> Option<&str> {
        self.grids
            .iter()
            .find(|g| g.class.is_none())
            .map(|g| g.png.as_str())
    }
}
