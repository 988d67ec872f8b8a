//! The GitHub Action entrypoint: the only module that knows GitHub Actions.
//!
//! action.yml maps each snake_case input explicitly to a `TINYDIT_RELEASE_*` variable in
//! `runs.env` (hyphenated `INPUT_*` names do not reach container actions reliably). This module
//! reads them strictly (the runner enforces neither `required` nor types), runs the same code as
//! the command line, and translates the results into what the runner understands: outputs in
//! `$GITHUB_OUTPUT`, the Markdown summary in `$GITHUB_STEP_SUMMARY`, and `::error` annotations
//! at `file,line,col` for configuration problems. See `../shared/reference/github-actions.md`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{CheckArgs, ConfigArg};
use crate::config::ConfigError;
use crate::error::{Problem, not_built_yet};
use crate::report::Reporter;
use crate::smoke::runtime::OrtSearch;
use crate::{EnvSnapshot, Outcome, commands, env};

/// Every action input: its name in action.yml, the variable `runs.env` maps it to, and the
/// command-line flag it stands for.
pub const INPUTS: &[(&str, &str, &str)] = &[
    ("command", env::TINYDIT_RELEASE_COMMAND, "the subcommand"),
    ("config", env::TINYDIT_RELEASE_CONFIG, "--config"),
    ("out", env::TINYDIT_RELEASE_OUT, "--out"),
    ("version", env::TINYDIT_RELEASE_VERSION, "--version"),
    ("dry_run", env::TINYDIT_RELEASE_DRY_RUN, "--dry-run"),
];

/// The action's inputs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionInputs {
    /// `check`, `plan` or `publish`.
    pub command: String,
    /// release.toml.
    pub config: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Release version, if given.
    pub version: Option<String>,
    /// Dry run.
    pub dry_run: bool,
}

/// Reads the inputs from a variable lookup; unset inputs take action.yml's defaults.
pub fn inputs(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<ActionInputs> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let command = get(env::TINYDIT_RELEASE_COMMAND).unwrap_or_else(|| "check".to_owned());
    if !["check", "plan", "publish"].contains(&command.as_str()) {
        return Err(Problem::new(format!(
            "action input `command` = `{command}` is not `check`, `plan` or `publish`"
        ))
        .hint("use `check` on pull requests and `publish` on tag pushes")
        .into());
    }
    let dry_run = match get(env::TINYDIT_RELEASE_DRY_RUN).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::new(format!(
                "action input `dry_run` = `{other}` is not `true` or `false`"
            ))
            .into());
        }
    };
    Ok(ActionInputs {
        command,
        config: PathBuf::from(
            get(env::TINYDIT_RELEASE_CONFIG).unwrap_or_else(|| "release.toml".to_owned()),
        ),
        out: PathBuf::from(get(env::TINYDIT_RELEASE_OUT).unwrap_or_else(|| "dist".to_owned())),
        version: get(env::TINYDIT_RELEASE_VERSION),
        dry_run,
    })
}

/// Runs the action.
pub fn run(
    env_snapshot: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    let lookup = |name: &str| std::env::var(name).ok();
    let inputs = inputs(lookup)?;
    let output_file = lookup(env::GITHUB_OUTPUT).map(PathBuf::from);
    let summary_file = lookup(env::GITHUB_STEP_SUMMARY).map(PathBuf::from);
    let workspace = lookup(env::GITHUB_WORKSPACE).map(PathBuf::from);
    match inputs.command.as_str() {
        "check" => {
            let args = CheckArgs {
                config: ConfigArg {
                    config: inputs.config.clone(),
                },
                out: inputs.out.clone(),
                version: inputs.version.clone(),
                baseline: None,
                json: false,
            };
            let result = commands::check(args, env_snapshot, ort, reporter);
            let report = match result {
                Ok(report) => report,
                Err(error) => {
                    for annotation in annotations(&error, workspace.as_deref()) {
                        reporter.workflow_command(
                            "error",
                            &[
                                ("file", annotation.file),
                                ("line", annotation.line.to_string()),
                                ("col", annotation.column.to_string()),
                            ],
                            &annotation.message,
                        );
                    }
                    return Err(error);
                }
            };
            if let Some(path) = &output_file {
                let version = report.version.as_deref().unwrap_or_default();
                let passed = report.passed();
                append(path, &format!("version={version}\ngates_passed={passed}\n"))?;
            }
            if let Some(path) = &summary_file {
                let summary = std::fs::read_to_string(inputs.out.join("summary.md"))
                    .context("failed to read the summary `check` wrote")?;
                append(path, &summary)?;
            }
            Ok(commands::check_outcome(&report))
        }
        other => Err(not_built_yet(other)),
    }
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// An `::error` annotation at a position of a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Repository-relative path.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The message, with its hint.
    pub message: String,
}

/// An annotation for every located configuration problem in an error's chain.
pub fn annotations(error: &anyhow::Error, workspace: Option<&Path>) -> Vec<Annotation> {
    let Some(config) = error.chain().find_map(|e| e.downcast_ref::<ConfigError>()) else {
        return Vec::new();
    };
    let file = workspace
        .and_then(|w| Path::new(&config.file).strip_prefix(w).ok())
        .map_or_else(|| config.file.clone(), |p| p.display().to_string());
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
                file: file.clone(),
                line: p.line,
                column: p.column,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn inputs_default_like_action_yml_and_are_parsed_strictly() {
        let defaults = inputs(lookup(&[])).expect("defaults");
        assert_eq!(defaults.command, "check");
        assert_eq!(defaults.config, PathBuf::from("release.toml"));
        assert!(!defaults.dry_run);
        assert_eq!(defaults.version, None);
        let given = inputs(lookup(&[
            ("TINYDIT_RELEASE_COMMAND", "publish"),
            ("TINYDIT_RELEASE_DRY_RUN", "true"),
            ("TINYDIT_RELEASE_VERSION", " 1.2.3 "),
        ]))
        .expect("given");
        assert_eq!(given.command, "publish");
        assert!(given.dry_run);
        assert_eq!(given.version.as_deref(), Some("1.2.3"));
        let err = inputs(lookup(&[("TINYDIT_RELEASE_DRY_RUN", "yes")])).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "action input `dry_run` = `yes` is not `true` or `false`"
        );
        assert!(inputs(lookup(&[("TINYDIT_RELEASE_COMMAND", "relase")])).is_err());
    }

    /// action.yml and this module must not drift: every input is mapped in `runs.env` to the
    /// variable listed here, and nothing else is.
    #[test]
    fn every_action_input_is_mapped_to_a_declared_variable() {
        let action: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../action.yml")).expect("action.yml is YAML");
        let declared: Vec<&str> = action["inputs"]
            .as_object()
            .expect("inputs")
            .keys()
            .map(String::as_str)
            .collect();
        let listed: Vec<&str> = INPUTS.iter().map(|(name, _, _)| *name).collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        let mut declared_sorted = declared.clone();
        declared_sorted.sort_unstable();
        assert_eq!(declared_sorted, sorted);
        let mapped = action["runs"]["env"].as_object().expect("runs.env");
        assert_eq!(mapped.len(), INPUTS.len());
        for (name, variable, _) in INPUTS {
            assert_eq!(
                mapped.get(*variable).and_then(|v| v.as_str()),
                Some(format!("${{{{ inputs.{name} }}}}").as_str()),
                "action.yml must map input `{name}` to `{variable}`"
            );
        }
        assert_eq!(action["runs"]["using"], "docker");
    }
}
