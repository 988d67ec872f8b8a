//! Annotations: every problem as an `::error`/`::warning` workflow command, configuration
//! problems at their release.toml line and column.

use std::path::Path;

use crate::error::ConfigError;

/// GitHub shows at most this many error (and as many warning) annotations per step; past that,
/// the step summary lists them all.
pub(super) const SHOWN_ANNOTATIONS: usize = 10;

/// How bad an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`.
    Error,
    /// `::warning`.
    Warning,
}

impl Level {
    pub(crate) fn command(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One annotation: at a position of a repository file, or for the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Error or warning.
    pub level: Level,
    /// Repository-relative path, with 1-based line and column.
    pub at: Option<(String, usize, usize)>,
    /// A short title.
    pub title: String,
    /// The message.
    pub message: String,
}

/// Annotations for an error: every located configuration problem at its position, or the
/// error itself for the step.
pub fn error_annotations(error: &anyhow::Error, workspace: Option<&Path>) -> Vec<Annotation> {
    let Some(config) = error.chain().find_map(|e| e.downcast_ref::<ConfigError>()) else {
        return vec![Annotation {
            level: Level::Error,
            at: None,
            title: "tinydit-release".to_owned(),
            message: error_chain(error),
        }];
    };
    let file = repo_relative(Path::new(&config.file), workspace);
    config
        .problems
        .iter()
        .map(|p| {
            let mut message = p.message.clone();
            if let Some(hint) = &p.hint {
                message.push_str(" (hint: ");
                message.push_str(hint);
                message.push(')');
            }
            Annotation {
                level: Level::Error,
                at: Some((file.clone(), p.line, p.column)),
                title: "release.toml".to_owned(),
                message,
            }
        })
        .collect()
}

/// `message: cause: cause`, then the hint.
pub(super) fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    if let Some(hint) = crate::error::hint_of(error) {
        text.push_str(" (hint: ");
        text.push_str(&hint);
        text.push(')');
    }
    text
}

/// A path as the repository names it: annotations and summaries must not show
/// `/github/workspace/...`.
pub(super) fn repo_relative(path: &Path, workspace: Option<&Path>) -> String {
    let relative = workspace
        .and_then(|w| path.strip_prefix(w).ok())
        .unwrap_or(path);
    let shown = relative.display().to_string();
    shown.strip_prefix("./").unwrap_or(&shown).to_owned()
}
