//! `scan` in the action: checkpoint files from glob patterns, SARIF for code scanning, an
//! annotation per finding.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::annotations::{Annotation, Level, error_chain};
use super::inputs::ActionInputs;
use super::outputs::Results;
use crate::artifacts::scan::ScanReport;
use crate::error::{Outcome, Problem};
use crate::report::Reporter;

/// Most checkpoint files one `scan` takes from the `files` patterns.
pub(super) const MAX_SCAN_FILES: usize = 10_000;

/// `scan` in the action: every file the patterns match, SARIF for code scanning, an annotation
/// per finding.
pub(super) fn scan(
    inputs: &ActionInputs,
    reporter: &Reporter,
    results: &mut Results,
) -> anyhow::Result<Outcome> {
    if let Some(path) = &inputs.sarif {
        crate::output::refuse_symlinked_folder(path, "action input `sarif`")?;
    }
    let files = expand_patterns(Path::new("."), &inputs.files)?;
    let mut reports: Vec<ScanReport> = Vec::new();
    for file in &files {
        let shown = file.display().to_string();
        reporter.status("Scanning", &shown);
        match crate::artifacts::scan::scan_file(file) {
            Ok(report) => {
                for line in report.result_lines() {
                    reporter.data_line(line);
                }
                reports.push(report);
            }
            Err(error) => {
                results.annotations.push(Annotation {
                    level: Level::Error,
                    at: Some((shown.clone(), 1, 1)),
                    title: "checkpoint could not be scanned".to_owned(),
                    message: error_chain(&error),
                });
                reports.push(ScanReport::failed(file, &error));
            }
        }
    }
    let errors = reports.iter().filter(|r| r.error.is_some()).count();
    for report in &reports {
        for finding in &report.findings {
            results.annotations.push(Annotation {
                level: if finding.severity == crate::artifacts::finding::Severity::Unsupported {
                    Level::Warning
                } else {
                    Level::Error
                },
                at: Some((report.file.clone(), 1, 1)),
                title: format!("{} checkpoint content", finding.severity),
                message: finding.to_string(),
            });
        }
    }
    if let Some(path) = &inputs.sarif {
        let log = crate::sarif::log(&reports);
        let text = serde_json::to_vec_pretty(&log).expect("a JSON value serializes");
        crate::output::write_atomically(path, &text)?;
        reporter.status("Wrote", format!("`{}`", path.display()));
    }
    let refused = reports.iter().filter(|r| r.is_refused()).count();
    let corrupt = reports
        .iter()
        .filter(|r| !r.is_clean() && !r.is_refused())
        .count();
    let _ = writeln!(
        results.summary,
        "## Checkpoint scan\n\n{} file(s): {} clean, {refused} refused, {} unreadable or corrupt.\n",
        files.len(),
        files.len() - refused - corrupt - errors,
        corrupt + errors
    );
    results.output("scanned", files.len().to_string());
    if errors > 0 || corrupt > 0 {
        return Err(Problem::new(format!(
            "{} of {} checkpoint(s) could not be scanned or are corrupt",
            errors + corrupt,
            files.len()
        ))
        .into());
    }
    Ok(if refused > 0 {
        Outcome::Refused
    } else {
        Outcome::Success
    })
}

/// The files under `root` matching any of the glob patterns (`**/*.pt`), sorted. Walks without
/// following symlinks, skips `.git`, and stops at [`MAX_SCAN_FILES`].
pub fn expand_patterns(root: &Path, patterns: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|err| {
                Problem::new(format!(
                    "action input `files`: `{pattern}` is not a glob: {err}"
                ))
            })?;
        builder.add(glob);
    }
    let set = builder
        .build()
        .context("failed to compile the `files` patterns")?;
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    stack.push(path);
                }
            } else if kind.is_file() && set.is_match(&relative) {
                if found.len() == MAX_SCAN_FILES {
                    return Err(Problem::new(format!(
                        "the `files` patterns match more than {MAX_SCAN_FILES} files"
                    ))
                    .hint("narrow the patterns to the checkpoints of the release")
                    .into());
                }
                found.push(relative);
            }
        }
    }
    found.sort();
    Ok(found)
}
