//! Names the code branches on, declared once: artifact kinds, check ids and metric names.
//!
//! Users read these names in `report.json`, the summary and gate configurations, so their
//! spelling is part of the contract; the code compares the typed values, never the strings.
//! The drift tests at the bottom fail when a module spells a metric name of its own.
//!
//! Layer 1, the ground floor: imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// `SHA256SUMS`: its name in the bundle, on the Hub and as a GitHub asset (`crate::sums`
/// writes and reads it).
pub const SUMS_FILE: &str = "SHA256SUMS";

/// What an artifact of the release is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// Weights converted from a checkpoint.
    Safetensors,
    /// An ONNX model, with its external data.
    Onnx,
    /// Any other file copied into the bundle.
    File,
}

impl ArtifactKind {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safetensors => "safetensors",
            Self::Onnx => "onnx",
            Self::File => "file",
        }
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A built-in or stage check of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// The security scan of one checkpoint (`scan:<file>`).
    Scan,
    /// No NaN or infinite weights.
    FiniteWeights,
    /// An artifact within its size limit (`size:<bundle path>`).
    Size,
    /// One check of the smoke test (`smoke:<name>`).
    Smoke,
    /// The model card's front matter.
    Card,
    /// Every artifact and linked image is in the bundle.
    FilesExist,
}

impl CheckId {
    /// The name of the check, or its prefix when it has a subject.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::FiniteWeights => "finite-weights",
            Self::Size => "size",
            Self::Smoke => "smoke",
            Self::Card => "card",
            Self::FilesExist => "files-exist",
        }
    }

    /// The name users read: `scan:<file>` for a check with a subject, else the id alone.
    pub fn name(self, subject: Option<&str>) -> String {
        match subject {
            Some(subject) => format!("{}:{subject}", self.as_str()),
            None => self.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metric names measured by the tool itself, in the families a gate can name.
pub mod metric {
    /// Milliseconds to open the generator session.
    pub const LOAD_MS: &str = "smoke.load_ms";
    /// Median milliseconds of one generator call.
    pub const STEP_MS_P50: &str = "smoke.step_ms_p50";
    /// Median milliseconds per image (a batch's wall time divided by its images).
    pub const LATENCY_MS_P50: &str = "smoke.latency_ms_p50";
    /// 95th percentile of the same.
    pub const LATENCY_MS_P95: &str = "smoke.latency_ms_p95";
    /// NaN and infinite values in all samples.
    pub const NONFINITE_COUNT: &str = "smoke.nonfinite_count";
    /// Largest |mean| of a sample.
    pub const SAMPLE_MEAN_ABS_MAX: &str = "smoke.sample_mean_abs_max";
    /// Smallest standard deviation of a sample.
    pub const SAMPLE_STD_MIN: &str = "smoke.sample_std_min";
    /// Largest standard deviation of a sample.
    pub const SAMPLE_STD_MAX: &str = "smoke.sample_std_max";
    /// Fraction of class pairs whose samples from the same noise differ.
    pub const CLASS_DISTINCT_FRACTION: &str = "smoke.class_distinct_fraction";
    /// Class conditioning as an effect size: between-class over within-class RMS difference.
    pub const CLASS_EFFECT_SIZE: &str = "smoke.class_effect_size";
    /// RMS of (samples - their starting noise) over RMS of the noise; 0 for a zero velocity.
    pub const NOISE_DISPLACEMENT: &str = "smoke.noise_displacement";
    /// Largest absolute difference from the golden outputs.
    pub const GOLDEN_MAX_ABS_DIFF: &str = "smoke.golden_max_abs_diff";
    /// Largest relative difference from the golden outputs.
    pub const GOLDEN_MAX_REL_DIFF: &str = "smoke.golden_max_rel_diff";
    /// Fraction of samples the classifier labels as expected.
    pub const CLASSIFIER_AGREEMENT: &str = "smoke.classifier_agreement";

    /// Training step stored in the checkpoint.
    pub const CHECKPOINT_STEP: &str = "checkpoint.step";
    /// Training loss stored in the checkpoint.
    pub const CHECKPOINT_LOSS: &str = "checkpoint.loss";
    /// NaN values in the released weights.
    pub const CHECKPOINT_NAN_COUNT: &str = "checkpoint.nan_count";
    /// Infinite values in the released weights.
    pub const CHECKPOINT_INF_COUNT: &str = "checkpoint.inf_count";
    /// Number of parameters.
    pub const CHECKPOINT_PARAM_COUNT: &str = "checkpoint.param_count";
    /// Bytes of tensor data.
    pub const CHECKPOINT_BYTES: &str = "checkpoint.bytes";

    /// Every `checkpoint.*` metric.
    pub const CHECKPOINT: &[&str] = &[
        CHECKPOINT_STEP,
        CHECKPOINT_LOSS,
        CHECKPOINT_NAN_COUNT,
        CHECKPOINT_INF_COUNT,
        CHECKPOINT_PARAM_COUNT,
        CHECKPOINT_BYTES,
    ];

    /// Every `smoke.*` metric.
    pub const SMOKE: &[&str] = &[
        LATENCY_MS_P50,
        LATENCY_MS_P95,
        STEP_MS_P50,
        LOAD_MS,
        CLASSIFIER_AGREEMENT,
        GOLDEN_MAX_ABS_DIFF,
        GOLDEN_MAX_REL_DIFF,
        NONFINITE_COUNT,
        SAMPLE_MEAN_ABS_MAX,
        SAMPLE_STD_MIN,
        SAMPLE_STD_MAX,
        CLASS_DISTINCT_FRACTION,
        CLASS_EFFECT_SIZE,
        NOISE_DISPLACEMENT,
    ];

    const ARTIFACT_PREFIX: &str = "artifact.";
    const SIZE_SUFFIX: &str = ".size_mb";

    /// `smoke.variant.<name>.<measure>`: a generator variant's agreement with the generator.
    pub fn variant(name: &str, measure: &str) -> String {
        format!("smoke.variant.{name}.{measure}")
    }

    /// The quarters of `t` a variant's velocity is judged in, as its metrics name them.
    pub const VARIANT_T_RANGES: [&str; 4] = ["t00_25", "t25_50", "t50_75", "t75_100"];

    /// Every metric of a variant called `name`.
    pub fn variant_metrics(name: &str) -> Vec<String> {
        let mut out: Vec<String> = [
            "velocity_cosine_min",
            "velocity_rel_l2_max",
            "psnr_min_db",
            "ssim_min",
            "size_mb",
        ]
        .iter()
        .map(|m| variant(name, m))
        .collect();
        for branch in ["cond", "uncond"] {
            for range in VARIANT_T_RANGES {
                out.push(variant(name, &format!("velocity_cosine.{branch}.{range}")));
                out.push(variant(name, &format!("velocity_rel_l2.{branch}.{range}")));
            }
        }
        out
    }

    /// `artifact.<bundle path>.size_mb`: the size of an artifact in MB.
    pub fn artifact_size_mb(bundle_path: &str) -> String {
        format!("{ARTIFACT_PREFIX}{bundle_path}{SIZE_SUFFIX}")
    }

    /// The bundle path of an `artifact.<bundle path>.size_mb` metric.
    pub fn artifact_of(name: &str) -> Option<&str> {
        name.strip_prefix(ARTIFACT_PREFIX)?
            .strip_suffix(SIZE_SUFFIX)
    }

    /// Whether a name belongs to a family the tool measures (`checkpoint.`, `artifact.`,
    /// `smoke.`), which a `[metrics]` entry may not take.
    pub fn is_measured_family(name: &str) -> bool {
        ["checkpoint.", ARTIFACT_PREFIX, "smoke."]
            .iter()
            .any(|prefix| name.starts_with(prefix))
    }
}

/// Whether `text` is a Git commit id as `git`, the Hub and GitHub write it: 40 hexadecimal
/// digits. A commit id from a server's answer, a manifest or the environment is checked where it
/// enters, so that later code may shorten it or put it in a URL as the ASCII it then is.
pub fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `id` if it [is a commit id](is_commit_id), else an error naming `what` it was meant to be
/// (``the commit of the Hub branch `main` ``) and at most 64 characters of what was found.
pub fn commit_id(id: String, what: impl FnOnce() -> String) -> anyhow::Result<String> {
    if is_commit_id(&id) {
        return Ok(id);
    }
    let mut shown: String = id.chars().take(64).collect();
    if shown.len() < id.len() {
        shown.push('…');
    }
    anyhow::bail!(
        "{} is `{shown}`, not a commit id (40 hexadecimal digits)",
        what()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_40_hex_digits() {
        assert!(is_commit_id("0123456789abcdef0123456789ABCDEF01234567"));
        for bad in [
            "",
            "0123456",
            "0123456789abcdef0123456789abcdef0123456",
            "0123456789abcdef0123456789abcdef012345678",
            "g123456789abcdef0123456789abcdef01234567",
            "0123456789abcdef0123456789abcdef012345猫",
            "../../../../../../../../../../../../../x",
        ] {
            assert!(!is_commit_id(bad), "{bad}");
        }
        let err =
            commit_id("猫".repeat(100), || "the commit of `main`".to_owned()).expect_err("not hex");
        assert_eq!(
            err.to_string(),
            format!(
                "the commit of `main` is `{}…`, not a commit id (40 hexadecimal digits)",
                "猫".repeat(64)
            )
        );
    }

    #[test]
    fn artifact_size_names_round_trip() {
        let name = metric::artifact_size_mb("onnx/gen.onnx");
        assert_eq!(name, "artifact.onnx/gen.onnx.size_mb");
        assert_eq!(metric::artifact_of(&name), Some("onnx/gen.onnx"));
        assert_eq!(metric::artifact_of("smoke.load_ms"), None);
    }

    #[test]
    fn ids_serialize_as_users_read_them() {
        for kind in [
            ArtifactKind::Safetensors,
            ArtifactKind::Onnx,
            ArtifactKind::File,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("serializes"),
                kind.as_str()
            );
        }
        for id in [
            CheckId::Scan,
            CheckId::FiniteWeights,
            CheckId::Size,
            CheckId::Smoke,
            CheckId::Card,
            CheckId::FilesExist,
        ] {
            assert_eq!(serde_json::to_value(id).expect("serializes"), id.as_str());
        }
        assert_eq!(CheckId::Scan.name(Some("a.pt")), "scan:a.pt");
    }

    /// The converter reports exactly the declared `checkpoint.*` names.
    #[test]
    fn checkpoint_metrics_match_the_declared_names() {
        let metrics = crate::artifacts::convert::CheckpointMetrics {
            step: Some(1),
            loss: Some(0.5),
            ..Default::default()
        };
        let named: Vec<String> = metrics.named().into_keys().collect();
        let mut declared: Vec<&str> = metric::CHECKPOINT.to_vec();
        declared.sort_unstable();
        assert_eq!(named, declared);
    }

    /// No module spells a measured metric name itself: every `"checkpoint.…"`, `"artifact.…"`
    /// or `"smoke.…"` string literal outside this file and unit tests would drift from the
    /// declared names. (release.toml keys like `smoke.providers` live in `config/`, which is not
    /// scanned.)
    #[test]
    fn no_module_spells_a_metric_name_of_its_own() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    if !path.ends_with("config") {
                        stack.push(path);
                    }
                    continue;
                }
                let relative = path.strip_prefix(&root).expect("below src");
                if relative == std::path::Path::new("names.rs")
                    || path.extension().is_none_or(|e| e != "rs")
                {
                    continue;
                }
                let mut text = std::fs::read_to_string(&path).expect("source is UTF-8");
                // Tests may spell the contract out literally.
                if let Some(tests) = text.find("\n#[cfg(test)]\n") {
                    text.truncate(tests);
                }
                for (number, line) in text.lines().enumerate() {
                    if ["\"checkpoint.", "\"artifact.", "\"smoke."]
                        .iter()
                        .any(|p| line.contains(p))
                    {
                        offenders.push(format!("{}:{}: {line}", relative.display(), number + 1));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "metric names spelled outside src/names.rs:\n{}",
            offenders.join("\n")
        );
    }
}
