//! The GitHub Action entrypoint: the only module that knows GitHub Actions.
//!
//! The runner hands a container action its `with:` values as `INPUT_<NAME>` variables (our
//! input names are snake_case, so the variables are plain). They are read from there, never from
//! a `runs.env` mapping, which a job-level `env:` of the same name would silently override; the
//! runner enforces neither `required` nor types, so every input is checked here.
//!
//! A run, in order:
//! 1. tokens (`hf_token`, `github_token`, and `HF_TOKEN`/`GITHUB_TOKEN` if set) are masked with
//!    `::add-mask::` before anything else is printed;
//! 2. the event decides what is allowed (no `publish` on pull-request events, the rule the command
//!    line shares: `crate::publish::refuse_pull_request_event`) and which commit a pull
//!    request's provenance names (its head, not the merge commit GitHub builds);
//! 3. the command runs, folded in a `::group::`, through the same code as the command line;
//! 4. whatever happened, including an error: every problem becomes an `::error`/`::warning`
//!    annotation (configuration problems at their release.toml line and column, failed gates at
//!    their `[[gate]]`), the outputs are written to `$GITHUB_OUTPUT` (multi-line values in the
//!    heredoc form with an unguessable delimiter), and the step summary to
//!    `$GITHUB_STEP_SUMMARY`, listing every annotation when there are more than GitHub shows.
//!
//! Untrusted text reaches the log only through the printer, which escapes it
//! ([`crate::report::escape`]) so it cannot start a workflow command. See
//! `../shared/reference/github-actions.md`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::artifacts::scan::ScanReport;
use crate::check::CheckReport;
use crate::cli::{CheckArgs, ConfigArg};
use crate::commands;
use crate::config::ConfigError;
use crate::env::{self, EnvSnapshot};
use crate::error::Outcome;
use crate::error::Problem;
use crate::report::Reporter;
use crate::report::markdown::{code, link, prose};
use crate::secrets::Token;
use crate::smoke::runtime::OrtSearch;

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

/// GitHub shows at most this many error (and as many warning) annotations per step; past that,
/// the step summary lists them all.
const SHOWN_ANNOTATIONS: usize = 10;
/// Largest event payload read (`$GITHUB_EVENT_PATH`).
const MAX_EVENT_BYTES: u64 = 64 * 1024 * 1024;
/// Most checkpoint files one `scan` takes from the `files` patterns.
const MAX_SCAN_FILES: usize = 10_000;

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
    fn as_str(self) -> &'static str {
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

/// What the event payload says, as far as the action cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// `GITHUB_EVENT_NAME`.
    pub name: Option<String>,
    /// For pull requests, the head commit (what the contributor pushed), not the merge commit
    /// `GITHUB_SHA` names.
    pub pull_request_head: Option<String>,
    /// For pull requests, whether the head is in a fork.
    pub fork: bool,
}

impl Event {
    /// Reads `GITHUB_EVENT_NAME` and the payload at `GITHUB_EVENT_PATH` (bounded; an unreadable
    /// payload only loses the pull request details).
    pub fn read(lookup: &impl Fn(&str) -> Option<String>) -> Self {
        let name = lookup(env::GITHUB_EVENT_NAME).filter(|n| !n.is_empty());
        let payload = lookup(env::GITHUB_EVENT_PATH)
            .and_then(|path| {
                crate::input::read_text(
                    Path::new(&path),
                    &path,
                    "`GITHUB_EVENT_PATH`",
                    MAX_EVENT_BYTES,
                )
                .ok()
            })
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let pr = payload.as_ref().map(|p| &p["pull_request"]);
        let pull_request_head = pr
            .and_then(|pr| pr["head"]["sha"].as_str())
            .filter(|sha| crate::names::is_commit_id(sha))
            .map(str::to_owned);
        let fork = pr.is_some_and(|pr| {
            pr["head"]["repo"]["fork"].as_bool().unwrap_or(false)
                || pr["head"]["repo"]["full_name"] != pr["base"]["repo"]["full_name"]
        }) && pull_request_head.is_some();
        Self {
            name,
            pull_request_head,
            fork,
        }
    }
}

/// How bad an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`.
    Error,
    /// `::warning`.
    Warning,
}

impl Level {
    fn command(self) -> &'static str {
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

/// Everything a run leaves for the runner.
#[derive(Debug, Default)]
struct Results {
    outputs: Vec<(&'static str, String)>,
    summary: String,
    annotations: Vec<Annotation>,
}

impl Results {
    fn output(&mut self, name: &'static str, value: impl Into<String>) {
        self.outputs.retain(|(n, _)| *n != name);
        self.outputs.push((name, value.into()));
    }
}

/// Runs the action.
pub fn run(
    env_snapshot: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
) -> anyhow::Result<Outcome> {
    let lookup = |name: &str| std::env::var(name).ok();
    let output_file = lookup(env::GITHUB_OUTPUT).map(PathBuf::from);
    let summary_file = lookup(env::GITHUB_STEP_SUMMARY).map(PathBuf::from);
    let workspace = lookup(env::GITHUB_WORKSPACE).map(PathBuf::from);
    // Tokens that arrive in the environment or as inputs are masked even when other inputs
    // (or the other token) are bad.
    mask(
        reporter,
        [&env_snapshot.tokens.hub, &env_snapshot.tokens.github],
    );
    for name in ["hf_token", "github_token"] {
        if let Ok(token) = Token::parse(lookup(&input_variable(name)).as_deref(), name) {
            mask(reporter, [&token]);
        }
    }
    let mut results = Results::default();
    let outcome = match inputs(lookup) {
        Ok(inputs) => {
            let event = Event::read(&lookup);
            let mut env_snapshot = env_snapshot.clone();
            if let Some(token) = &inputs.hf_token {
                env_snapshot.tokens.hub = Some(token.clone());
            }
            if let Some(token) = &inputs.github_token {
                env_snapshot.tokens.github = Some(token.clone());
            }
            if let Some(head) = &event.pull_request_head {
                env_snapshot.github_sha = Some(head.clone());
            }
            reporter.workflow_command(
                "group",
                &[],
                &format!("tinydit-release {}", inputs.command.as_str()),
            );
            let outcome = run_command(&inputs, &event, &env_snapshot, ort, reporter, &mut results);
            reporter.workflow_command("endgroup", &[], "");
            outcome
        }
        Err(error) => Err(error),
    };
    if let Err(error) = &outcome {
        results
            .annotations
            .extend(error_annotations(error, workspace.as_deref()));
        results.output("gates_passed", "false");
        results.summary.push_str(&error_section(error));
    }
    for annotation in &results.annotations {
        let mut properties = Vec::new();
        if let Some((file, line, column)) = &annotation.at {
            properties.push(("file", file.clone()));
            properties.push(("line", line.to_string()));
            properties.push(("col", column.to_string()));
        }
        properties.push(("title", annotation.title.clone()));
        reporter.workflow_command(annotation.level.command(), &properties, &annotation.message);
    }
    let errors = results
        .annotations
        .iter()
        .filter(|a| a.level == Level::Error)
        .count();
    let warnings = results.annotations.len() - errors;
    if errors > SHOWN_ANNOTATIONS || warnings > SHOWN_ANNOTATIONS {
        let _ = writeln!(
            results.summary,
            "\n### All {} annotations\n\nGitHub shows {SHOWN_ANNOTATIONS} of each kind per step; \
             here is every one.\n",
            results.annotations.len()
        );
        for a in &results.annotations {
            results.summary.push_str(&annotation_item(a));
        }
    }
    // Outputs and the summary are written on every exit; a failure to write them is reported
    // after the command's own error, never instead of it.
    let written = write_runner_files(output_file.as_deref(), summary_file.as_deref(), &results);
    let outcome = outcome?;
    written?;
    Ok(outcome)
}

/// The step summary's section for an error that stopped the run: its first line, then each
/// further line (every problem of a configuration) as an item of a list.
fn error_section(error: &anyhow::Error) -> String {
    let chain = error_chain(error);
    let mut lines = chain.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut section = format!(
        "## tinydit-release: error\n\n{}\n\n",
        prose(lines.next().unwrap_or_default())
    );
    let mut listed = false;
    for line in lines {
        let _ = writeln!(section, "- {}", prose(line));
        listed = true;
    }
    if listed {
        section.push('\n');
    }
    section
}

/// One annotation as an item of the summary's full list.
fn annotation_item(a: &Annotation) -> String {
    let at =
        a.at.as_ref()
            .map(|(f, l, c)| format!("{} ", code(&format!("{f}:{l}:{c}"))))
            .unwrap_or_default();
    format!(
        "- **{}** {at}{}: {}\n",
        a.level.command(),
        prose(&a.title),
        prose(&a.message)
    )
}

/// Tells the runner to hide each token in its log, and registers it with the printer and the file
/// writers, which replace it wherever it appears (`secrets::scrub`).
fn mask<'a>(reporter: &Reporter, tokens: impl IntoIterator<Item = &'a Option<Token>>) {
    for token in tokens.into_iter().flatten() {
        crate::secrets::hide(token);
        reporter.mask(token);
    }
}

fn run_command(
    inputs: &ActionInputs,
    event: &Event,
    env_snapshot: &EnvSnapshot,
    ort: OrtSearch,
    reporter: &Reporter,
    results: &mut Results,
) -> anyhow::Result<Outcome> {
    match inputs.command {
        ActionCommand::Check => {
            let args = CheckArgs {
                config: ConfigArg {
                    config: inputs.config.clone(),
                },
                out: inputs.out.clone(),
                version: inputs.version.clone(),
                baseline: None,
                json: false,
            };
            let report = commands::check(args, env_snapshot, ort, reporter)?;
            check_results(&report, inputs, env_snapshot, event, results);
            // What would change against the latest release, for the pull request's summary; a
            // plan that cannot be made (no version yet, no network) does not fail the check.
            let built = crate::manifest::BuiltRelease::just_built(&inputs.out);
            match plan(inputs, Some(&built), env_snapshot, reporter, results) {
                Ok(()) => {}
                Err(error) => {
                    let _ = writeln!(
                        results.summary,
                        "\n_No release plan: {}_",
                        prose(&error_chain(&error))
                    );
                }
            }
            Ok(commands::check_outcome(&report))
        }
        ActionCommand::Plan => {
            plan(inputs, None, env_snapshot, reporter, results)?;
            Ok(Outcome::Success)
        }
        ActionCommand::Publish => {
            crate::publish::refuse_pull_request_event(event.name.as_deref())?;
            let args = crate::cli::PublishArgs {
                config: ConfigArg {
                    config: inputs.config.clone(),
                },
                version: inputs.version.clone(),
                bundle: inputs.bundle.clone(),
                out: inputs.out.clone(),
                baseline: None,
                dry_run: inputs.dry_run,
                allow_dirty: false,
                json: false,
            };
            match commands::publish(&args, env_snapshot, ort, reporter)? {
                commands::PublishResult::Refused(report) => {
                    check_results(&report, inputs, env_snapshot, event, results);
                    Ok(Outcome::Refused)
                }
                commands::PublishResult::Done(receipt) => {
                    publish_results(&receipt, &env_snapshot.endpoints, results);
                    Ok(Outcome::Success)
                }
            }
        }
        ActionCommand::Scan => scan(inputs, reporter, results),
    }
}

/// `plan` from the folder `check` wrote (`built` when this run's own `check` just wrote it): the
/// `plan_json` output and the Markdown in the summary.
fn plan(
    inputs: &ActionInputs,
    built: Option<&crate::manifest::BuiltRelease>,
    env_snapshot: &EnvSnapshot,
    reporter: &Reporter,
    results: &mut Results,
) -> anyhow::Result<()> {
    let args = crate::cli::PlanArgs {
        config: ConfigArg {
            config: inputs.config.clone(),
        },
        version: inputs.version.clone(),
        bundle: inputs.bundle.clone().unwrap_or_else(|| inputs.out.clone()),
        json: false,
    };
    let report = match built {
        Some(built) => commands::plan_built(&args, built, env_snapshot, reporter)?,
        None => commands::plan(&args, env_snapshot, reporter)?,
    };
    results.output(
        "plan_json",
        serde_json::to_string_pretty(&report.json).expect("a JSON value serializes"),
    );
    let _ = write!(results.summary, "\n{}\n", report.markdown.trim_end());
    Ok(())
}

/// Outputs and summary of a finished `publish`. The summary links only to addresses built here
/// from the configured endpoints, never to one a server answered with.
fn publish_results(
    receipt: &crate::publish::PublishReceipt,
    endpoints: &crate::env::Endpoints,
    results: &mut Results,
) {
    results.output("version", receipt.version.clone());
    results.output("gates_passed", "true");
    results.output("hf_commit", receipt.hub_commit.clone().unwrap_or_default());
    results.output(
        "hf_url",
        receipt
            .hub_commit_url
            .clone()
            .or_else(|| receipt.hub_url.clone())
            .unwrap_or_default(),
    );
    results.output(
        "release_url",
        receipt.github_release_url.clone().unwrap_or_default(),
    );
    results.output(
        "plan_json",
        serde_json::to_string_pretty(&receipt.plan).expect("plans serialize to JSON"),
    );
    let what = if receipt.dry_run {
        "dry run: nothing was written"
    } else if receipt.already_released {
        "already released: nothing to do"
    } else {
        "released"
    };
    let _ = writeln!(results.summary, "## {} — {what}\n", code(&receipt.tag));
    if let Some(url) = &receipt.hub_commit_url {
        let _ = writeln!(results.summary, "- Hub: {}", link(url, url));
    }
    if let (Some(_), Some(github)) = (&receipt.github_release_url, &receipt.plan.github) {
        let page = crate::publish::plan::github_release_page(
            &endpoints.github_api,
            &github.repo,
            &github.tag,
        );
        let _ = writeln!(results.summary, "- GitHub release: {}", link(&page, &page));
    }
    let _ = writeln!(
        results.summary,
        "- uploaded {} file(s) to the Hub and {} asset(s) to GitHub in this run\n",
        receipt.uploaded_files.len(),
        receipt.uploaded_assets.len()
    );
    results
        .summary
        .push_str(&crate::publish::plan_markdown::markdown(&receipt.plan));
}

/// Outputs, annotations and the summary of a `check`.
fn check_results(
    report: &CheckReport,
    inputs: &ActionInputs,
    env_snapshot: &EnvSnapshot,
    event: &Event,
    results: &mut Results,
) {
    results.output("version", report.version.clone().unwrap_or_default());
    results.output("gates_passed", report.passed().to_string());
    let workspace = std::env::current_dir().ok();
    let config_file = repo_relative(&inputs.config, workspace.as_deref());
    for (i, gate) in report.gates.results.iter().enumerate() {
        if gate.verdict == crate::gates::Verdict::Pass {
            continue;
        }
        let at = report
            .gate_positions
            .get(gate.gate)
            .map(|&(line, column)| (config_file.clone(), line, column));
        results.annotations.push(Annotation {
            level: if gate.blocking {
                Level::Error
            } else {
                Level::Warning
            },
            at,
            title: format!("gate `{}` {} (#{})", gate.metric, gate.kind, i + 1),
            message: gate.message.clone(),
        });
    }
    for check in report.checks.iter().filter(|c| !c.passed) {
        results.annotations.push(Annotation {
            level: if check.severity == crate::config::Severity::Error {
                Level::Error
            } else {
                Level::Warning
            },
            at: None,
            title: format!("check `{}`", check.name),
            message: check.detail.clone(),
        });
    }
    if let Some(fallback) = report
        .smoke
        .as_ref()
        .and_then(|s| s.provider_fallback.as_ref())
    {
        results.annotations.push(Annotation {
            level: Level::Warning,
            at: None,
            title: "smoke test fell back to the CPU".to_owned(),
            message: fallback.clone(),
        });
    }
    results
        .summary
        .push_str(&crate::check::summary::markdown(report));
    let bundle = inputs.out.join("bundle");
    let _ = writeln!(
        results.summary,
        "\nThe bundle is in {}: keep it with `actions/upload-artifact` ({}).",
        code(&bundle.display().to_string()),
        code(&format!("path: {}/", bundle.display()))
    );
    if event.pull_request_head.is_some() {
        let _ = writeln!(
            results.summary,
            "\nProvenance: pull request head {}{}.",
            code(env_snapshot.github_sha.as_deref().unwrap_or_default()),
            if event.fork { " (from a fork)" } else { "" }
        );
    }
}

/// `scan` in the action: every file the patterns match, SARIF for code scanning, an annotation
/// per finding.
fn scan(
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

fn write_runner_files(
    output_file: Option<&Path>,
    summary_file: Option<&Path>,
    results: &Results,
) -> anyhow::Result<()> {
    if let Some(path) = output_file {
        let mut text = String::new();
        for (name, value) in &results.outputs {
            text.push_str(&output_entry(name, value, &random_delimiter())?);
        }
        append(path, &text)?;
    }
    if let Some(path) = summary_file
        && !results.summary.is_empty()
    {
        append(path, &fit_summary(&results.summary))?;
    }
    Ok(())
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or for a multi-line value the heredoc form with a
/// delimiter the value cannot contain (the toolkit's `ghadelimiter_<uuid>` rule).
pub fn output_entry(name: &str, value: &str, delimiter: &str) -> anyhow::Result<String> {
    if !value.contains('\n') && !value.contains('\r') {
        return Ok(format!("{name}={value}\n"));
    }
    anyhow::ensure!(
        !value.contains(delimiter) && !name.contains(delimiter),
        "output `{name}` contains its delimiter; this may indicate a bug"
    );
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// `ghadelimiter_` and 128 random bits.
fn random_delimiter() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: derive from time and pid, still far from guessable by a value's author.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
        bytes.copy_from_slice(&digest[..16]);
    }
    let mut out = String::from("ghadelimiter_");
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The runner rejects a step summary over 1 MiB (and then shows nothing): cut it before the
/// limit with a note, at the last line boundary, or (when that would drop more than 64 KiB: one
/// very long line) at the last character boundary; never inside a character, whatever the text.
fn fit_summary(summary: &str) -> String {
    const LIMIT: usize = 1024 * 1024 - 256;
    const MOST_DROPPED_FOR_A_LINE: usize = 64 * 1024;
    if summary.len() <= LIMIT {
        return summary.to_owned();
    }
    let end = summary.floor_char_boundary(LIMIT);
    let cut = match summary[..end].rfind('\n') {
        Some(line) if end - line <= MOST_DROPPED_FOR_A_LINE => line,
        _ => end,
    };
    format!(
        "{}\n\n_The summary was cut at GitHub's 1 MiB limit; `summary.md` in the output folder \
         has all of it._\n",
        &summary[..cut]
    )
}

/// Appends to a runner file, without any registered token (`secrets::scrub`): the summary and
/// outputs quote error chains and plans, which may quote a server's echo of a request.
fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let text = crate::secrets::scrub(text);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
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
fn error_chain(error: &anyhow::Error) -> String {
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
fn repo_relative(path: &Path, workspace: Option<&Path>) -> String {
    let relative = workspace
        .and_then(|w| path.strip_prefix(w).ok())
        .unwrap_or(path);
    let shown = relative.display().to_string();
    shown.strip_prefix("./").unwrap_or(&shown).to_owned()
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
        assert_eq!(defaults.command, ActionCommand::Check);
        assert_eq!(defaults.config, PathBuf::from("release.toml"));
        assert_eq!(defaults.out, PathBuf::from("dist"));
        assert!(!defaults.dry_run);
        assert_eq!(defaults.version, None);
        assert!(defaults.hf_token.is_none());
        let given = inputs(lookup(&[
            ("INPUT_COMMAND", "publish"),
            ("INPUT_DRY_RUN", "true"),
            ("INPUT_VERSION", " 1.2.3 "),
            ("INPUT_HF_TOKEN", "hf_abc"),
            ("INPUT_BUNDLE", "dist/bundle"),
        ]))
        .expect("given");
        assert_eq!(given.command, ActionCommand::Publish);
        assert!(given.dry_run);
        assert_eq!(given.version.as_deref(), Some("1.2.3"));
        assert_eq!(given.bundle, Some(PathBuf::from("dist/bundle")));
        assert!(!format!("{given:?}").contains("hf_abc"));
        let err = inputs(lookup(&[("INPUT_DRY_RUN", "yes")])).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "action input `dry_run` = `yes` is not `true` or `false`"
        );
        assert!(inputs(lookup(&[("INPUT_COMMAND", "relase")])).is_err());
        assert!(
            inputs(lookup(&[("INPUT_COMMAND", "scan")])).is_err(),
            "scan needs files"
        );
    }

    /// action.yml and this module must not drift: the same inputs, read from `INPUT_*` (no
    /// `runs.env` mapping a job's `env:` could override, no positional `args`).
    #[test]
    fn action_yml_declares_exactly_these_inputs() {
        let action: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../action.yml")).expect("action.yml is YAML");
        let mut declared: Vec<&str> = action["inputs"]
            .as_object()
            .expect("inputs")
            .keys()
            .map(String::as_str)
            .collect();
        declared.sort_unstable();
        let mut listed: Vec<&str> = INPUTS.iter().map(|(name, _)| *name).collect();
        listed.sort_unstable();
        assert_eq!(declared, listed);
        assert_eq!(action["runs"]["using"], "docker");
        assert!(
            action["runs"].get("env").is_none(),
            "inputs come from INPUT_*"
        );
        assert!(action["runs"].get("args").is_none(), "no positional args");
        for name in listed {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "input `{name}` must be snake_case"
            );
        }
    }

    #[test]
    fn multi_line_outputs_use_a_heredoc_with_their_delimiter() {
        assert_eq!(
            output_entry("version", "1.2.3", "D").expect("entry"),
            "version=1.2.3\n"
        );
        assert_eq!(
            output_entry("plan_json", "{\n}", "ghadelimiter_ab").expect("entry"),
            "plan_json<<ghadelimiter_ab\n{\n}\nghadelimiter_ab\n"
        );
        assert!(output_entry("x", "a\nghadelimiter_ab\nb", "ghadelimiter_ab").is_err());
        let (a, b) = (random_delimiter(), random_delimiter());
        assert_ne!(a, b);
        assert_eq!(a.len(), "ghadelimiter_".len() + 32);
    }

    #[test]
    fn patterns_match_relative_paths_without_following_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in [
            "a.pt",
            "sub/b.pth",
            "sub/deep/c.ckpt",
            "sub/d.txt",
            ".git/x.pt",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, b"x").expect("write");
        }
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("e.pt"), b"x").expect("write");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        let found = expand_patterns(
            dir.path(),
            &[
                "**/*.pt".to_owned(),
                "**/*.pth".to_owned(),
                "**/*.ckpt".to_owned(),
            ],
        )
        .expect("expand");
        assert_eq!(
            found,
            [
                PathBuf::from("a.pt"),
                PathBuf::from("sub/b.pth"),
                PathBuf::from("sub/deep/c.ckpt")
            ]
        );
    }

    /// Issue 14: the error, every annotation and a finished publish reach the step summary
    /// inert, whatever they hold; links go only to the Hub and GitHub addresses built here.
    #[test]
    fn every_summary_field_renders_inert() {
        use crate::report::markdown::hostile::{VALUE, assert_inert};
        let allowed = ["https://huggingface.co/", "https://github.com/"];
        assert_inert(&error_section(&anyhow::anyhow!(VALUE)), &allowed);
        let config_like = anyhow::anyhow!("2 problems\n{VALUE}\n    hint: {VALUE}");
        let section = error_section(&config_like);
        assert_inert(&section, &allowed);
        // Each line its own item; a line cannot start a heading or a list of its own.
        assert_eq!(section.lines().filter(|l| l.starts_with("- ")).count(), 8);
        assert!(section.contains("\n- \\# h\n") && section.contains("\n- 1\\. j"));
        let annotation = Annotation {
            level: Level::Error,
            at: Some((VALUE.to_owned(), 1, 2)),
            title: VALUE.to_owned(),
            message: VALUE.to_owned(),
        };
        assert_inert(&annotation_item(&annotation), &allowed);

        let plan = crate::publish::plan::build_tests::hostile_plan();
        let receipt = crate::publish::PublishReceipt {
            version: VALUE.to_owned(),
            tag: VALUE.to_owned(),
            already_released: false,
            dry_run: false,
            hub_commit: Some(VALUE.to_owned()),
            hub_commit_url: Some(format!(
                "https://huggingface.co/o/m/commit/{}",
                "a".repeat(40)
            )),
            hub_url: Some("https://huggingface.co/o/m".to_owned()),
            // What a hostile server answered; the summary links the page it built itself.
            github_release_url: Some("javascript:alert(1)".to_owned()),
            uploaded_files: vec![VALUE.to_owned()],
            uploaded_assets: vec![VALUE.to_owned()],
            plan,
        };
        let mut results = Results::default();
        publish_results(&receipt, &crate::env::Endpoints::default(), &mut results);
        assert_inert(&results.summary, &allowed);
        assert!(
            results
                .summary
                .contains("- GitHub release: [`https://github.com/"),
            "{}",
            results.summary
        );
        assert!(!results.summary.contains("javascript:"));
    }

    /// Issue 14: a summary over the limit is cut at a line (so at a character) boundary,
    /// whichever byte the limit falls on, and stays under 1 MiB with its note.
    #[test]
    fn a_long_summary_is_cut_at_a_line_and_character_boundary() {
        for shift in 0..4 {
            let line = format!("{}- 猫🐈 {}\n", "x".repeat(shift), "猫".repeat(300));
            let summary = line.repeat(2 * 1024 * 1024 / line.len());
            let fitted = fit_summary(&summary);
            assert!(fitted.len() < 1024 * 1024, "{}", fitted.len());
            let (kept, note) = fitted.split_once("\n\n_The summary was cut").expect("note");
            assert!(summary.starts_with(kept) && kept.ends_with(&"猫".repeat(300)));
            assert!(note.contains("`summary.md`"));
        }
        // One line longer than the limit is cut inside it, at a character boundary.
        for shift in 0..4 {
            let one_line = format!("## x\n\n{}{}", "x".repeat(shift), "猫".repeat(400_000));
            let fitted = fit_summary(&one_line);
            assert!(fitted.len() < 1024 * 1024);
            let (kept, _) = fitted.split_once("\n\n_The summary was cut").expect("note");
            assert!(kept.len() > 1024 * 1024 - 300 && one_line.starts_with(kept));
        }
    }

    #[test]
    fn summary_text_cannot_inject_html_or_break_tables() {
        assert_eq!(
            prose("<img src=x onerror=y> | a\nb"),
            "&lt;img src=x onerror=y&gt; \\| a\\nb"
        );
    }
}
