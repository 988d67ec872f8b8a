//! The only printer: status lines and progress to stderr, data to stdout, errors with hints.
//!
//! Stages never print; they call a [`Reporter`]. Status lines use cargo-style verbs
//! (`Converting`, `Checking`, `Rendering`); progress bars appear only when stderr is a terminal,
//! otherwise each step is one plain line, which is what CI logs want.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How and whether to decorate output.
#[derive(Debug, Clone)]
pub struct Reporter {
    color: bool,
    quiet: bool,
    interactive: bool,
}

impl Reporter {
    /// A reporter; `color` already accounts for `NO_COLOR` and `--color`.
    pub fn new(color: bool, quiet: bool) -> Self {
        Self {
            color,
            quiet,
            interactive: std::io::stderr().is_terminal(),
        }
    }

    /// A reporter that prints nothing but errors; for tests and library use.
    pub fn silent() -> Self {
        Self {
            color: false,
            quiet: true,
            interactive: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// `   Converting weights/model.pt`, right-aligned verb like cargo.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        let verb = self.paint("1;32", &format!("{verb:>12}"));
        eprintln!("{verb} {}", message.as_ref());
    }

    /// `     Skipped ...` in yellow, for stages not run.
    pub fn skipped(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        let verb = self.paint("1;33", &format!("{:>12}", "Skipped"));
        eprintln!("{verb} {}", message.as_ref());
    }

    /// One check's verdict: `      Passed name: detail` in green, or `      Failed name: detail`
    /// in red. A failure is printed even when quiet: it is the reason for exit code 1.
    pub fn check(&self, passed: bool, name: &str, detail: &str) {
        if passed {
            self.status("Passed", format!("{name}: {detail}"));
        } else {
            let verb = self.paint("1;31", &format!("{:>12}", "Failed"));
            eprintln!("{verb} {name}: {detail}");
        }
    }

    /// `warning: ...`, printed even when quiet.
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("{} {}", self.paint("1;33", "warning:"), message.as_ref());
    }

    /// The error chain once, then the hint.
    pub fn error(&self, error: &anyhow::Error) {
        eprintln!("{} {error}", self.paint("1;31", "error:"));
        for cause in error.chain().skip(1) {
            eprintln!("  {} {cause}", self.paint("1;31", "caused by:"));
        }
        if let Some(hint) = crate::error::hint_of(error) {
            eprintln!("\n{} {hint}", self.paint("1;36", "hint:"));
        }
    }

    /// A refused checkpoint: one line per finding and the hint, printed even when quiet.
    pub fn refused(&self, report: &crate::artifacts::scan::ScanReport) {
        let globals = report.globals();
        let what = if globals.is_empty() {
            format!("{} finding(s)", report.findings.len())
        } else {
            let list: Vec<String> = globals.iter().map(|g| format!("`{g}`")).collect();
            list.join(", ")
        };
        eprintln!(
            "{} `{}`: {what}",
            self.paint("1;31", &format!("{:>12}", "Refused")),
            report.file
        );
        for finding in &report.findings {
            eprintln!("  {finding}");
        }
        eprintln!("\nnothing was written");
        if let Some(hint) = report.hint() {
            eprintln!("{} {hint}", self.paint("1;36", "hint:"));
        }
    }

    /// The human form of a scan: `FILE: clean` or `FILE: N finding(s)` and one line each, on
    /// stdout (the findings are the command's data).
    pub fn scan_result(&self, report: &crate::artifacts::scan::ScanReport) {
        if report.is_clean() {
            self.data(format!("{}: clean", report.file));
            return;
        }
        let mut text = format!("{}: {} finding(s)", report.file, report.findings.len());
        for finding in &report.findings {
            text.push_str("\n  ");
            text.push_str(&finding.to_string());
        }
        self.data(text);
    }

    /// Plain data on stdout.
    pub fn data(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth reporting.
        let _ = writeln!(out, "{}", text.as_ref());
    }

    /// Pretty JSON on stdout.
    pub fn json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        self.data(text);
        Ok(())
    }

    /// A progress bar of `len` steps when stderr is a terminal; hidden otherwise.
    pub fn progress(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        if self.quiet || !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(message.into());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("the progress template is valid")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
