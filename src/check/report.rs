//! `report.json`'s types: what `check` found, in a stable, documented layout
//! (docs/report.md). `mod.rs` fills them; `summary.rs` renders them.

use serde::Serialize;

use crate::bundle::Manifest;
use crate::config::Severity;
use crate::gates::{GateReport, Metrics};
use crate::manifest::{MANIFEST_SCHEMA_VERSION, ReleaseManifest, Verdict};
use crate::names::{ArtifactKind, CheckId};
use crate::smoke::SmokeReport;
use crate::smoke::agreement::VariantReport;

/// Version of the `report.json` layout; bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One built-in or stage check, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// `scan:<file>`, `finite-weights`, `size:<bundle path>`, `smoke:<name>`, `card`, `files-exist`:
    /// [`CheckResult::id`] with its subject, as users read it.
    pub name: String,
    /// Which check this is.
    #[serde(skip)]
    pub id: CheckId,
    /// Whether it passed.
    pub passed: bool,
    /// Whether a failure blocks the release.
    pub severity: Severity,
    /// What was found.
    pub detail: String,
}

/// An artifact of the release as it went into the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactEntry {
    /// The source file, relative to the repository.
    pub source: String,
    /// `safetensors`, `onnx` or `file`.
    pub kind: ArtifactKind,
    /// Bundle paths produced from it (shards, external data).
    pub outputs: Vec<String>,
}

/// `report.json`: everything `check` found, in a stable, documented layout (docs/report.md).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `tinydit-release X.Y.Z`.
    pub tool: String,
    /// `[model] name`.
    pub model: String,
    /// Hub repository id.
    pub hub_repo: String,
    /// GitHub repository, `owner/name`, when known.
    pub github_repo: Option<String>,
    /// Release version, when known.
    pub version: Option<String>,
    /// The version's tag (`tag-prefix` + version), when known.
    pub tag: Option<String>,
    /// The Git commit the release was built from, and whether tracked files had uncommitted
    /// changes; absent outside a Git work tree.
    pub source: Option<crate::provenance::SourceCommit>,
    /// `pass` or `refused`.
    pub outcome: Verdict,
    /// Every reason the release is refused, one sentence each.
    pub refusals: Vec<String>,
    /// The artifacts.
    pub artifacts: Vec<ArtifactEntry>,
    /// Every metric of this release.
    pub metrics: Metrics,
    /// The previous release's metrics, when given.
    pub baseline: Option<Metrics>,
    /// Built-in and stage checks.
    pub checks: Vec<CheckResult>,
    /// The gates.
    pub gates: GateReport,
    /// Line and column of each `[[gate]]` entry in release.toml, by gate index (what
    /// [`crate::gates::GateResult::gate`] refers to).
    pub gate_positions: Vec<(usize, usize)>,
    /// The smoke test, when configured.
    pub smoke: Option<SmokeReport>,
    /// Generator variants (quantized exports) judged against the full generator, in
    /// `release.toml` order: file, size, what `quantize` did, agreement per class.
    pub variants: Vec<VariantReport>,
    /// The bundle's files.
    pub bundle: Manifest,
    /// The demo Space's repository and files (`<out>/space/`), when `[space]` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<crate::manifest::SpaceListing>,
    /// The release identity (`release.json`'s `identity`).
    pub identity: Option<String>,
}

impl CheckReport {
    /// No refusal.
    pub fn passed(&self) -> bool {
        self.refusals.is_empty()
    }

    /// The release manifest: what was decided and which bytes were produced.
    pub fn manifest(&self) -> ReleaseManifest {
        ReleaseManifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            tool: self.tool.clone(),
            model: self.model.clone(),
            hub_repo: self.hub_repo.clone(),
            github_repo: self.github_repo.clone(),
            version: self.version.clone(),
            tag: self.tag.clone(),
            source: self.source.clone(),
            identity: self.identity.clone(),
            outcome: self.outcome,
            metrics: self.metrics.clone(),
            gates: self
                .gates
                .results
                .iter()
                .map(|g| crate::manifest::GateLine {
                    metric: g.metric.clone(),
                    kind: g.kind.to_owned(),
                    threshold: g.threshold,
                    value: g.value,
                    verdict: serde_json::to_value(g.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    blocking_severity: g.severity == Severity::Error,
                })
                .collect(),
            files: self.bundle.files.clone(),
            space: self.space.clone(),
        }
    }
}
