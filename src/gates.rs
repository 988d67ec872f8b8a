//! The gates stage: metrics plus thresholds give a [`GateReport`].
//!
//! Pure apart from [`read_metric_file`]. A gate compares one metric with `min`/`max`, or with
//! the previous release's value (`max-regression`, `max-regression-pct`). Verdicts:
//! - `pass` / `fail`; a failed `warn` gate is reported but does not refuse the release;
//! - `missing`: the metric was not measured in this run (e.g. no classifier configured) — it
//!   fails like a threshold would, because a gate that cannot be evaluated must not pass silently;
//! - `no-baseline`: a regression gate with no previous release to compare with; it fails unless
//!   the gate says `allow-missing-baseline = true`.
//!
//! Layer 4, a stage: imports the configuration and the floors below it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::{GateConfig, Severity};
use crate::error::Problem;

/// Metric name -> value, for one release.
pub type Metrics = BTreeMap<String, f64>;

/// The outcome of one gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The value meets the threshold.
    Pass,
    /// The value does not meet the threshold.
    Fail,
    /// The metric has no value in this run.
    Missing,
    /// A regression gate without a previous release to compare with.
    NoBaseline,
}

/// One gate, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// Index of the `[[gate]]` entry this result comes from.
    pub gate: usize,
    /// The metric.
    pub metric: String,
    /// `min`, `max`, `max-regression` or `max-regression-pct`.
    pub kind: &'static str,
    /// The threshold as configured.
    pub threshold: f64,
    /// This release's value.
    pub value: Option<f64>,
    /// The previous release's value, for regression gates.
    pub baseline: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
    /// `error` blocks the release; `warn` only reports.
    pub severity: Severity,
    /// Whether this result blocks the release.
    pub blocking: bool,
    /// One sentence saying what was compared.
    pub message: String,
}

/// Every gate of a release.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GateReport {
    /// Results in configuration order, one per threshold.
    pub results: Vec<GateResult>,
}

impl GateReport {
    /// No blocking result.
    pub fn passed(&self) -> bool {
        !self.results.iter().any(|r| r.blocking)
    }

    /// The blocking results.
    pub fn blocking(&self) -> impl Iterator<Item = &GateResult> {
        self.results.iter().filter(|r| r.blocking)
    }
}

/// Evaluates every gate against this release's metrics and, for regressions, the previous one's.
pub fn evaluate(gates: &[GateConfig], metrics: &Metrics, baseline: Option<&Metrics>) -> GateReport {
    let mut results = Vec::new();
    for (index, gate) in gates.iter().enumerate() {
        let value = metrics.get(&gate.metric).copied();
        let previous = baseline.and_then(|b| b.get(&gate.metric).copied());
        let mut push = |kind: &'static str, threshold: f64, verdict: Verdict, message: String| {
            let failed = verdict != Verdict::Pass;
            results.push(GateResult {
                gate: index,
                metric: gate.metric.clone(),
                kind,
                threshold,
                value,
                baseline: previous,
                verdict,
                severity: gate.severity,
                blocking: failed && gate.severity == Severity::Error,
                message,
            });
        };
        let name = &gate.metric;
        if let Some(min) = gate.min {
            match value {
                None => push(
                    "min",
                    min,
                    Verdict::Missing,
                    format!("`{name}` was not measured"),
                ),
                Some(v) => push(
                    "min",
                    min,
                    pass_if(v >= min),
                    format!("`{name}` = {} (min {})", fmt(v), fmt(min)),
                ),
            }
        }
        if let Some(max) = gate.max {
            match value {
                None => push(
                    "max",
                    max,
                    Verdict::Missing,
                    format!("`{name}` was not measured"),
                ),
                Some(v) => push(
                    "max",
                    max,
                    pass_if(v <= max),
                    format!("`{name}` = {} (max {})", fmt(v), fmt(max)),
                ),
            }
        }
        for (kind, allowed, relative) in [
            ("max-regression", gate.max_regression, false),
            ("max-regression-pct", gate.max_regression_pct, true),
        ] {
            let Some(allowed) = allowed else { continue };
            let (verdict, message) = match (value, previous) {
                (None, _) => (Verdict::Missing, format!("`{name}` was not measured")),
                (Some(_), None) if gate.allow_missing_baseline => (
                    Verdict::Pass,
                    format!("`{name}`: no previous release to compare with (allowed)"),
                ),
                (Some(_), None) => (
                    Verdict::NoBaseline,
                    format!("`{name}`: no previous release to compare with"),
                ),
                (Some(v), Some(b)) => {
                    let worse_by = if gate.higher_is_better { b - v } else { v - b };
                    let (amount, unit) = if relative {
                        if b == 0.0 {
                            (if worse_by > 0.0 { f64::INFINITY } else { 0.0 }, "%")
                        } else {
                            (worse_by / b.abs() * 100.0, "%")
                        }
                    } else {
                        (worse_by, "")
                    };
                    (
                        pass_if(amount <= allowed),
                        format!(
                            "`{name}` = {} against {} before: {} by {}{unit} (allowed {}{unit})",
                            fmt(v),
                            fmt(b),
                            if worse_by > 0.0 { "worse" } else { "not worse" },
                            fmt(amount.max(0.0)),
                            fmt(allowed)
                        ),
                    )
                }
            };
            push(kind, allowed, verdict, message);
        }
    }
    GateReport { results }
}

fn pass_if(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::Fail }
}

/// Short human form of a number: integers without a fraction, others to 4 significant places.
pub fn fmt(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.is_finite() && value.abs() >= 1e-3 {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{value:.3e}")
    }
}

/// Reads one number from a JSON or YAML file by dotted path (`results.val_accuracy`).
///
/// Numeric strings (`"0.91"`) are accepted because some training scripts write them; anything
/// else is an error naming the file, the path and what was found.
pub fn read_metric_file(file: &Path, shown: &str, path: &str) -> anyhow::Result<f64> {
    let text = crate::input::read_text(
        file,
        shown,
        "a `[metrics]` file",
        crate::input::MAX_TEXT_BYTES,
    )?;
    let is_yaml = matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let document: serde_json::Value = if is_yaml {
        serde_yaml_ng::from_str(&text).with_context(|| format!("`{shown}` is not valid YAML"))?
    } else {
        serde_json::from_str(&text).with_context(|| format!("`{shown}` is not valid JSON"))?
    };
    lookup_number(&document, path).map_err(|why| {
        Problem::new(format!("metric path `{path}` in `{shown}` {why}"))
            .hint("fix `path` under `[metrics]`, or the file the training job writes")
            .into()
    })
}

fn lookup_number(document: &serde_json::Value, path: &str) -> Result<f64, String> {
    let mut node = document;
    for (depth, part) in path.split('.').enumerate() {
        let next = match node {
            serde_json::Value::Object(map) => map.get(part),
            serde_json::Value::Array(items) => {
                part.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            _ => None,
        };
        node = next.ok_or_else(|| {
            let walked: Vec<&str> = path.split('.').take(depth).collect();
            if walked.is_empty() {
                format!("does not exist: there is no `{part}` at the top level")
            } else {
                format!("does not exist: `{}` has no `{part}`", walked.join("."))
            }
        })?;
    }
    match node {
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| "is not a number".to_owned()),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("is the string `{s}`, not a number")),
        other => Err(format!("is {}, not a number", json_kind(other))),
    }
    .and_then(|v| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err("is not finite".to_owned())
        }
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(metric: &str) -> GateConfig {
        GateConfig {
            metric: metric.to_owned(),
            min: None,
            max: None,
            max_regression: None,
            max_regression_pct: None,
            higher_is_better: !metric.contains("fid"),
            allow_missing_baseline: false,
            severity: Severity::Error,
            position: (1, 1),
        }
    }

    fn metrics(pairs: &[(&str, f64)]) -> Metrics {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn min_and_max_are_inclusive() {
        let gates = [
            GateConfig {
                max: Some(50.0),
                ..gate("fid")
            },
            GateConfig {
                min: Some(0.85),
                ..gate("acc")
            },
        ];
        let report = evaluate(&gates, &metrics(&[("fid", 50.0), ("acc", 0.85)]), None);
        assert!(report.passed(), "{report:?}");
        let report = evaluate(&gates, &metrics(&[("fid", 50.1), ("acc", 0.849)]), None);
        let verdicts: Vec<_> = report.results.iter().map(|r| r.verdict).collect();
        assert_eq!(verdicts, [Verdict::Fail, Verdict::Fail]);
        assert!(!report.passed());
        assert_eq!(report.results[0].message, "`fid` = 50.1 (max 50)");
    }

    #[test]
    fn a_failed_warn_gate_does_not_block() {
        let gates = [GateConfig {
            max: Some(100.0),
            severity: Severity::Warn,
            ..gate("size")
        }];
        let report = evaluate(&gates, &metrics(&[("size", 120.0)]), None);
        assert_eq!(report.results[0].verdict, Verdict::Fail);
        assert!(!report.results[0].blocking);
        assert!(report.passed());
    }

    #[test]
    fn an_unmeasured_metric_fails_instead_of_passing_silently() {
        let gates = [GateConfig {
            min: Some(0.8),
            ..gate(crate::names::metric::CLASSIFIER_AGREEMENT)
        }];
        let report = evaluate(&gates, &Metrics::new(), None);
        assert_eq!(report.results[0].verdict, Verdict::Missing);
        assert!(!report.passed());
    }

    #[test]
    fn regressions_follow_the_direction_of_better() {
        // FID: lower is better; 42 -> 43.5 is worse by 1.5, allowed 2.
        let fid = [GateConfig {
            max_regression: Some(2.0),
            ..gate("fid")
        }];
        let before = metrics(&[("fid", 42.0)]);
        assert!(evaluate(&fid, &metrics(&[("fid", 43.5)]), Some(&before)).passed());
        let report = evaluate(&fid, &metrics(&[("fid", 44.5)]), Some(&before));
        assert_eq!(report.results[0].verdict, Verdict::Fail);
        assert_eq!(
            report.results[0].message,
            "`fid` = 44.5 against 42 before: worse by 2.5 (allowed 2)"
        );
        // Getting better never fails.
        assert!(evaluate(&fid, &metrics(&[("fid", 10.0)]), Some(&before)).passed());

        // Accuracy: higher is better; 0.90 -> 0.85 is 5.6 % worse, allowed 5 %.
        let acc = [GateConfig {
            max_regression_pct: Some(5.0),
            ..gate("acc")
        }];
        let before = metrics(&[("acc", 0.90)]);
        assert!(evaluate(&acc, &metrics(&[("acc", 0.86)]), Some(&before)).passed());
        assert!(!evaluate(&acc, &metrics(&[("acc", 0.85)]), Some(&before)).passed());
    }

    #[test]
    fn a_regression_gate_without_baseline_fails_unless_allowed() {
        let strict = [GateConfig {
            max_regression: Some(1.0),
            ..gate("fid")
        }];
        let report = evaluate(&strict, &metrics(&[("fid", 40.0)]), None);
        assert_eq!(report.results[0].verdict, Verdict::NoBaseline);
        assert!(!report.passed());

        let lenient = [GateConfig {
            max_regression: Some(1.0),
            allow_missing_baseline: true,
            ..gate("fid")
        }];
        let report = evaluate(&lenient, &metrics(&[("fid", 40.0)]), None);
        assert_eq!(report.results[0].verdict, Verdict::Pass);
        assert!(report.results[0].message.contains("no previous release"));
        // A baseline that lacks the metric counts as no baseline.
        let report = evaluate(&strict, &metrics(&[("fid", 40.0)]), Some(&Metrics::new()));
        assert_eq!(report.results[0].verdict, Verdict::NoBaseline);
    }

    #[test]
    fn metric_files_are_read_by_dotted_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = dir.path().join("v.json");
        std::fs::write(
            &json,
            r#"{"results": {"val_accuracy": 0.91, "s": "0.5", "list": [1, 2]}}"#,
        )
        .expect("write");
        assert_eq!(
            read_metric_file(&json, "v.json", "results.val_accuracy").ok(),
            Some(0.91)
        );
        assert_eq!(
            read_metric_file(&json, "v.json", "results.s").ok(),
            Some(0.5)
        );
        assert_eq!(
            read_metric_file(&json, "v.json", "results.list.1").ok(),
            Some(2.0)
        );
        let err = read_metric_file(&json, "v.json", "results.fid").expect_err("missing");
        assert_eq!(
            err.to_string(),
            "metric path `results.fid` in `v.json` does not exist: `results` has no `fid`"
        );
        let err = read_metric_file(&json, "v.json", "results").expect_err("table");
        assert!(
            err.to_string().ends_with("is a table, not a number"),
            "{err}"
        );

        let yaml = dir.path().join("e.yaml");
        std::fs::write(&yaml, "fid: 42.5\nnested:\n  is: 3\n").expect("write");
        assert_eq!(read_metric_file(&yaml, "e.yaml", "fid").ok(), Some(42.5));
        assert_eq!(
            read_metric_file(&yaml, "e.yaml", "nested.is").ok(),
            Some(3.0)
        );
    }

    #[test]
    fn numbers_print_short() {
        assert_eq!(fmt(50.0), "50");
        assert_eq!(fmt(0.851_234_5), "0.8512");
        assert_eq!(fmt(1e-6), "1.000e-6");
        assert_eq!(fmt(1.668_930_053_710_937_5e-6), "1.669e-6");
    }
}
