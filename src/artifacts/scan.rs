//! `scan`: every finding of a checkpoint file, without converting it.
//!
//! A file is clean only when the container is sound, every pickle in it stays within torch's
//! weights-only opcodes and globals, every tensor has a safetensors dtype, and every storage
//! record matches what the object declares. Anything else is a finding; a scan never fails open.

use std::path::Path;

use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::container::Format;
use super::finding::{Finding, Severity};

/// The findings of one file.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// The file as named by the caller.
    pub file: String,
    /// `zip` or `legacy`, when the format could be told.
    pub format: Option<&'static str>,
    /// Every finding, in file order per pickle.
    pub findings: Vec<Finding>,
    /// Why the file could not be scanned at all (unreadable, not a regular file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ScanReport {
    /// Builds the report of an opened checkpoint.
    pub fn of(checkpoint: &Checkpoint) -> Self {
        Self {
            file: checkpoint.path.display().to_string(),
            format: checkpoint.format.map(|f| match f {
                Format::Zip => "zip",
                Format::Legacy => "legacy",
            }),
            findings: checkpoint.findings.clone(),
            error: None,
        }
    }

    /// The report of a file that could not be scanned: the error chain, one line.
    pub fn failed(file: &Path, error: &anyhow::Error) -> Self {
        Self {
            file: file.display().to_string(),
            format: None,
            findings: Vec::new(),
            error: Some(format!("{error:#}")),
        }
    }

    /// A refusal as the printer shows it: the file and its dangerous globals (or how many
    /// findings), then one line per finding.
    pub fn refusal(&self) -> (String, Vec<String>) {
        let globals = self.globals();
        let what = if globals.is_empty() {
            format!("{} finding(s)", self.findings.len())
        } else {
            let list: Vec<String> = globals.iter().map(|g| format!("`{g}`")).collect();
            list.join(", ")
        };
        let details = self.findings.iter().map(ToString::to_string).collect();
        (format!("`{}`: {what}", self.file), details)
    }

    /// The human form of a scan: `FILE: clean`, or `FILE: N finding(s)` and one indented line
    /// each (the command's data, for stdout).
    pub fn result_lines(&self) -> Vec<String> {
        if self.is_clean() {
            return vec![format!("{}: clean", self.file)];
        }
        let mut lines = vec![format!("{}: {} finding(s)", self.file, self.findings.len())];
        lines.extend(self.findings.iter().map(|finding| format!("  {finding}")));
        lines
    }

    /// No findings at all, and scanned.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.error.is_none()
    }

    /// Some finding is dangerous or unsupported: the file is refused for what it contains, not
    /// for being malformed.
    pub fn is_refused(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity != Severity::Corrupt)
    }

    /// Findings of one severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The globals that are refused, deduplicated, for messages (`posix.system`, ...).
    pub fn globals(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.findings {
            if let Some(g) = &f.global
                && !out.contains(&g.qualified)
            {
                out.push(g.qualified.clone());
            }
        }
        out
    }

    /// A hint when the findings look like a whole pickled object rather than an attack:
    /// `torch.save(model)`, argparse namespaces, numpy arrays.
    pub fn hint(&self) -> Option<String> {
        let plain_objects = self.findings.iter().any(|f| {
            f.global.as_ref().is_some_and(|g| {
                g.module.starts_with("torch.nn.")
                    || g.module.starts_with("numpy")
                    || g.qualified == "argparse.Namespace"
                    || f.consumed_by.as_ref().is_some_and(|c| c.opcode == "NEWOBJ")
            })
        });
        if plain_objects {
            Some(
                "the checkpoint pickles whole Python objects (a module, a Namespace or a numpy \
                 array); save plain data instead, e.g. `torch.save({\"model\": \
                 model.state_dict(), \"step\": step}, path)` with `vars(args)` and \
                 `torch.from_numpy(...)` for the rest"
                    .to_owned(),
            )
        } else if self.count(Severity::Dangerous) > 0 {
            Some("do not load this file with torch.load or pickle; it tries to run code".to_owned())
        } else {
            None
        }
    }
}

/// Scans one checkpoint. Errors are I/O failures only; malformed content is a finding.
pub fn scan_file(path: &Path) -> anyhow::Result<ScanReport> {
    let checkpoint = Checkpoint::open(path)?;
    Ok(ScanReport::of(&checkpoint))
}
