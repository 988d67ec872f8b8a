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
//! The rooms: `inputs.rs`, `event.rs`, `outputs.rs` (outputs and the step summary),
//! `annotations.rs`, `scan.rs`; this file runs the steps above in order.
//!
//! Layer 7, a front end (above `commands`, whose subcommands it runs). Untrusted text reaches the
//! log only through the printer, which escapes it
//! ([`crate::report::escape`]) so it cannot start a workflow command. See
//! `../shared/reference/github-actions.md`.

mod annotations;
mod event;
mod inputs;
mod outputs;
mod scan;

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cli::{CheckArgs, ConfigArg};
use crate::commands;
use crate::env::{self, EnvSnapshot};
use crate::error::Outcome;
use crate::report::Reporter;
use crate::report::markdown::prose;
use crate::secrets::Token;
use crate::smoke::runtime::OrtSearch;

pub use self::annotations::{Annotation, Level, error_annotations};
use self::annotations::{SHOWN_ANNOTATIONS, error_chain};
pub use self::event::Event;
pub use self::inputs::{ActionCommand, ActionInputs, INPUTS, input_variable, inputs};
pub use self::outputs::output_entry;
use self::outputs::{
    Results, annotation_item, check_results, error_section, publish_results, write_runner_files,
};
pub use self::scan::expand_patterns;

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
    mask_every_token(env_snapshot, &lookup, reporter);
    let mut results = Results::default();
    let outcome = inputs(lookup).and_then(|inputs| {
        let event = Event::read(&lookup);
        let env_snapshot = with_inputs(env_snapshot, &inputs, &event);
        reporter.workflow_command(
            "group",
            &[],
            &format!("tinydit-release {}", inputs.command.as_str()),
        );
        let run = Run {
            inputs: &inputs,
            event: &event,
            env_snapshot: &env_snapshot,
            reporter,
        };
        let outcome = run_command(&run, ort, &mut results);
        reporter.workflow_command("endgroup", &[], "");
        outcome
    });
    if let Err(error) = &outcome {
        results
            .annotations
            .extend(error_annotations(error, workspace.as_deref()));
        results.output("gates_passed", "false");
        results.summary.push_str(&error_section(error));
    }
    annotate(reporter, &results.annotations);
    list_annotations_beyond_what_github_shows(&mut results);
    // Outputs and the summary are written on every exit; a failure to write them is reported
    // after the command's own error, never instead of it.
    let written = write_runner_files(output_file.as_deref(), summary_file.as_deref(), &results);
    let outcome = outcome?;
    written?;
    Ok(outcome)
}

/// Tokens that arrive in the environment or as inputs are masked before anything else is
/// printed, even when other inputs (or the other token) are bad.
fn mask_every_token(
    env_snapshot: &EnvSnapshot,
    lookup: &impl Fn(&str) -> Option<String>,
    reporter: &Reporter,
) {
    mask(
        reporter,
        [&env_snapshot.tokens.hub, &env_snapshot.tokens.github],
    );
    for name in ["hf_token", "github_token"] {
        if let Ok(token) = Token::parse(lookup(&input_variable(name)).as_deref(), name) {
            mask(reporter, [&token]);
        }
    }
}

/// The environment as the command sees it: the token inputs over the variables, and a pull
/// request's head as the commit being checked.
fn with_inputs(env_snapshot: &EnvSnapshot, inputs: &ActionInputs, event: &Event) -> EnvSnapshot {
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
    env_snapshot
}

/// Every annotation as a workflow command, at its file, line and column when it has one.
fn annotate(reporter: &Reporter, annotations: &[Annotation]) {
    for annotation in annotations {
        let mut properties = Vec::new();
        if let Some((file, line, column)) = &annotation.at {
            properties.push(("file", file.clone()));
            properties.push(("line", line.to_string()));
            properties.push(("col", column.to_string()));
        }
        properties.push(("title", annotation.title.clone()));
        reporter.workflow_command(annotation.level.command(), &properties, &annotation.message);
    }
}

/// GitHub shows [`SHOWN_ANNOTATIONS`] of each kind per step; past that, the summary lists
/// every one.
fn list_annotations_beyond_what_github_shows(results: &mut Results) {
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
}

/// Tells the runner to hide each token in its log, and registers it with the printer and the file
/// writers, which replace it wherever it appears (`secrets::scrub`).
fn mask<'a>(reporter: &Reporter, tokens: impl IntoIterator<Item = &'a Option<Token>>) {
    for token in tokens.into_iter().flatten() {
        crate::secrets::hide(token);
        reporter.mask(token);
    }
}

/// What every command of a run is given: the inputs, the event, the environment they apply to,
/// and the printer.
struct Run<'a> {
    inputs: &'a ActionInputs,
    event: &'a Event,
    env_snapshot: &'a EnvSnapshot,
    reporter: &'a Reporter,
}

/// The command the `command` input names, through the same code as the command line.
fn run_command(run: &Run<'_>, ort: OrtSearch, results: &mut Results) -> anyhow::Result<Outcome> {
    match run.inputs.command {
        ActionCommand::Check => check(run, ort, results),
        ActionCommand::Plan => {
            plan(run, None, results)?;
            Ok(Outcome::Success)
        }
        ActionCommand::Publish => publish(run, ort, results),
        ActionCommand::Scan => scan::scan(run.inputs, run.reporter, results),
    }
}

/// `check`, then what would change against the latest release, for the pull request's summary;
/// a plan that cannot be made (no version yet, no network) does not fail the check.
fn check(run: &Run<'_>, ort: OrtSearch, results: &mut Results) -> anyhow::Result<Outcome> {
    let inputs = run.inputs;
    let args = CheckArgs {
        config: ConfigArg {
            config: inputs.config.clone(),
        },
        out: inputs.out.clone(),
        version: inputs.version.clone(),
        baseline: None,
        json: false,
    };
    let report = commands::check(args, run.env_snapshot, ort, run.reporter)?;
    check_results(&report, inputs, run.env_snapshot, run.event, results);
    let built = crate::manifest::BuiltRelease::just_built(&inputs.out);
    if let Err(error) = plan(run, Some(&built), results) {
        let _ = writeln!(
            results.summary,
            "\n_No release plan: {}_",
            prose(&error_chain(&error))
        );
    }
    Ok(commands::check_outcome(&report))
}

/// `publish`, refused on a pull-request event.
fn publish(run: &Run<'_>, ort: OrtSearch, results: &mut Results) -> anyhow::Result<Outcome> {
    crate::publish::refuse_pull_request_event(run.event.name.as_deref())?;
    let inputs = run.inputs;
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
    match commands::publish(&args, run.env_snapshot, ort, run.reporter)? {
        commands::PublishResult::Refused(report) => {
            check_results(&report, inputs, run.env_snapshot, run.event, results);
            Ok(Outcome::Refused)
        }
        commands::PublishResult::Done(receipt) => {
            publish_results(&receipt, &run.env_snapshot.endpoints, results);
            Ok(Outcome::Success)
        }
    }
}

/// `plan` from the folder `check` wrote (`built` when this run's own `check` just wrote it): the
/// `plan_json` output and the Markdown in the summary.
fn plan(
    run: &Run<'_>,
    built: Option<&crate::manifest::BuiltRelease>,
    results: &mut Results,
) -> anyhow::Result<()> {
    let inputs = run.inputs;
    let args = crate::cli::PlanArgs {
        config: ConfigArg {
            config: inputs.config.clone(),
        },
        version: inputs.version.clone(),
        bundle: inputs.bundle.clone().unwrap_or_else(|| inputs.out.clone()),
        json: false,
    };
    let report = match built {
        Some(built) => commands::plan_built(&args, built, run.env_snapshot, run.reporter)?,
        None => commands::plan(&args, run.env_snapshot, run.reporter)?,
    };
    results.output(
        "plan_json",
        serde_json::to_string_pretty(&report.json).expect("a JSON value serializes"),
    );
    let _ = write!(results.summary, "\n{}\n", report.markdown.trim_end());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::outputs::{fit_summary, random_delimiter};
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
            serde_yaml_ng::from_str(include_str!("../../action.yml")).expect("action.yml is YAML");
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
            space_url: None,
            space_commit: None,
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
