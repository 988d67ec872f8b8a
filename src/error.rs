//! User-facing failures that carry a hint, and the exit codes they map to.
//!
//! Stages return `anyhow::Result` and add context naming the file, key or value in hand. When a
//! failure has an obvious next step, its root is a [`Problem`] with a hint; `report.rs` prints the
//! chain once and the hint after it. There is deliberately no crate-wide error enum: callers that
//! branch on a condition get a small typed error inside the module that raises it.
//!
//! Layer 1, the ground floor: imports nothing of the crate.

use std::fmt;

/// How the process ends. `main.rs` turns this into the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done, or a dry run found nothing wrong.
    Success = 0,
    /// The release was refused: a gate failed, a scan found something, a smoke check failed.
    Refused = 1,
    /// Something stopped us: bad configuration or input, I/O, network, authentication.
    Error = 2,
}

/// The result of a command that ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// A check refused the release (exit code 1); the reasons were reported.
    Refused,
}

/// A failure the user can act on: a one-line message and an optional hint saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    message: String,
    hint: Option<String>,
}

impl Problem {
    /// A problem with no hint.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the sentence printed after `hint:`.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The hint, if any.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

/// One problem in the configuration file, at a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, naming the key and the value found.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Located {
    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// The problems, in file order.
    pub problems: Vec<Located>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        writeln!(
            f,
            "`{}` has {count} problem{}",
            self.file,
            if count == 1 { "" } else { "s" }
        )?;
        for (i, problem) in self.problems.iter().enumerate() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, problem.line, problem.column, problem.message
            )?;
            if let Some(hint) = &problem.hint {
                write!(f, "\n    hint: {hint}")?;
            }
            if i + 1 < count {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// The first hint found anywhere in an error's chain.
pub fn hint_of(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        cause
            .downcast_ref::<Problem>()
            .and_then(Problem::hint_text)
            .map(str::to_owned)
    })
}

/// Returned by subcommands whose stage is not part of this build yet. Never a fake success.
pub fn not_built_yet(what: &str) -> anyhow::Error {
    Problem::new(format!(
        "`{what}` is not built yet in this version of tinydit-release"
    ))
    .hint("see the open issues of the project; nothing was changed")
    .into()
}
