//! The action's inputs: what the runner hands a container action as `INPUT_<NAME>` variables,
//! checked here (the runner enforces neither `required` nor types).

use std::path::PathBuf;

use crate::env;
use crate::error::Problem;
use crate::secrets::Token;

/// Every action input (its name in action.yml) and the command-line flag it stands for.
pub const INPUTS: &[(&str, &str)] = &[
    ("command", "the subcommand: check, plan, publish or scan"),
    ("config", "--config"),
    ("out", "--out"),
    ("version", "--version"),
    ("dry_run", "--dry-run"),
    ("bundle", "publish --bundle"),
    ("hf_token", "$HF_TOKEN"),
    ("github_token", "$GITHUB_TOKEN"),
    ("files", "scan FILE..."),
    ("sarif", "scan --format sarif > FILE"),
];

/// The variable the runner sets for an input.
pub fn input_variable(name: &str) -> String {
    format!("{}{}", env::INPUT_PREFIX, name.to_ascii_uppercase())
}

/// What the action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionCommand {
    /// `check`: pull requests.
    Check,
    /// `plan`: what `publish` would do.
    Plan,
    /// `publish`: tag pushes.
    Publish,
    /// `scan`: checkpoint files, with SARIF for code scanning.
    Scan,
}

impl ActionCommand {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Plan => "plan",
            Self::Publish => "publish",
            Self::Scan => "scan",
        }
    }
}

/// The action's inputs, validated.
#[derive(Debug, Clone)]
pub struct ActionInputs {
    /// What to run.
    pub command: ActionCommand,
    /// release.toml.
    pub config: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Release version, if given.
    pub version: Option<String>,
    /// Dry run.
    pub dry_run: bool,
    /// A bundle built by an earlier `check` step, for `publish`.
    pub bundle: Option<PathBuf>,
    /// `hf_token`.
    pub hf_token: Option<Token>,
    /// `github_token`.
    pub github_token: Option<Token>,
    /// `files`: glob patterns of checkpoints to scan.
    pub files: Vec<String>,
    /// `sarif`: where `scan` writes its SARIF log.
    pub sarif: Option<PathBuf>,
}

/// Reads the inputs from a variable lookup; unset or empty inputs take action.yml's defaults.
pub fn inputs(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<ActionInputs> {
    let get = |name: &str| {
        lookup(&input_variable(name))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let command = match get("command").as_deref() {
        None | Some("check") => ActionCommand::Check,
        Some("plan") => ActionCommand::Plan,
        Some("publish") => ActionCommand::Publish,
        Some("scan") => ActionCommand::Scan,
        Some(other) => {
            return Err(Problem::new(format!(
                "action input `command` = `{other}` is not `check`, `plan`, `publish` or `scan`"
            ))
            .hint("use `check` on pull requests and `publish` on tag pushes")
            .into());
        }
    };
    let dry_run = match get("dry_run").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Problem::new(format!(
                "action input `dry_run` = `{other}` is not `true` or `false`"
            ))
            .into());
        }
    };
    let files: Vec<String> = get("files")
        .map(|f| f.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if command == ActionCommand::Scan && files.is_empty() {
        return Err(
            Problem::new("action input `files` is empty; `scan` needs patterns")
                .hint("e.g. `files: \"**/*.pt **/*.pth **/*.ckpt\"`")
                .into(),
        );
    }
    Ok(ActionInputs {
        command,
        config: PathBuf::from(get("config").unwrap_or_else(|| "release.toml".to_owned())),
        out: PathBuf::from(get("out").unwrap_or_else(|| "dist".to_owned())),
        version: get("version"),
        dry_run,
        bundle: get("bundle").map(PathBuf::from),
        hf_token: Token::parse(
            lookup(&input_variable("hf_token")).as_deref(),
            "action input `hf_token`",
        )?,
        github_token: Token::parse(
            lookup(&input_variable("github_token")).as_deref(),
            "action input `github_token`",
        )?,
        files,
        sarif: get("sarif").map(PathBuf::from),
    })
}
