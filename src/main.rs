//! The `tinydit-release` binary: parse arguments, capture the environment, run, map the outcome
//! to an exit code, print an error chain once.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use clap::Parser;
use tinydit_release::cli::{Cli, ColorChoice};
use tinydit_release::env::Timeouts;
use tinydit_release::error::{ExitStatus, Problem};
use tinydit_release::report::Reporter;
use tinydit_release::secrets::{self, Token, Tokens};
use tinydit_release::{EnvSnapshot, Outcome, env};

/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`, inside a workflow run.
fn run_url() -> Option<String> {
    let server = std::env::var(env::GITHUB_SERVER_URL).ok()?;
    let repository = std::env::var(env::GITHUB_REPOSITORY).ok()?;
    let run = std::env::var(env::GITHUB_RUN_ID).ok()?;
    Some(format!(
        "{}/{repository}/actions/runs/{run}",
        server.trim_end_matches('/')
    ))
}

/// `HF_TOKEN` and `GITHUB_TOKEN`, checked and registered with the printer so that no output
/// ever shows them. A token that cannot be used is left out, and the first such problem is
/// returned for the commands that go online.
fn tokens() -> (Tokens, Option<Problem>) {
    let mut problem = None;
    let mut read = |name: &str| {
        let value = std::env::var(name).ok();
        match Token::parse(value.as_deref(), &format!("`{name}`")) {
            Ok(token) => {
                if let Some(token) = &token {
                    secrets::hide(token);
                }
                token
            }
            Err(refused) => {
                problem.get_or_insert(refused);
                None
            }
        }
    };
    let tokens = Tokens {
        hub: read(env::HF_TOKEN),
        github: read(env::GITHUB_TOKEN),
    };
    (tokens, problem)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let no_color = std::env::var_os(env::NO_COLOR).is_some_and(|v| !v.is_empty());
    let color = match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let reporter = Reporter::new(color, cli.global.quiet);
    let (tokens, token_problem) = tokens();
    let (timeouts, timeout_problem) = match Timeouts::from_values(
        std::env::var(env::TINYDIT_RELEASE_CONNECT_TIMEOUT).ok(),
        std::env::var(env::TINYDIT_RELEASE_READ_TIMEOUT).ok(),
        std::env::var(env::TINYDIT_RELEASE_REQUEST_TIMEOUT).ok(),
    ) {
        Ok(timeouts) => (timeouts, None),
        Err(problem) => (Timeouts::default(), Some(problem)),
    };
    let snapshot = EnvSnapshot {
        ort_dylib_path: std::env::var_os(env::ORT_DYLIB_PATH),
        python: std::env::var_os(env::TINYDIT_RELEASE_PYTHON),
        virtual_env: std::env::var_os(env::VIRTUAL_ENV),
        github_ref: std::env::var(env::GITHUB_REF).ok(),
        github_repository: std::env::var(env::GITHUB_REPOSITORY).ok(),
        github_sha: std::env::var(env::GITHUB_SHA)
            .ok()
            .filter(|sha| !sha.is_empty()),
        tokens,
        endpoints: tinydit_release::Endpoints::from_values(
            std::env::var(env::HF_ENDPOINT).ok(),
            std::env::var(env::GITHUB_API_URL).ok(),
            std::env::var(env::TINYDIT_RELEASE_GITHUB_UPLOAD_URL).ok(),
        ),
        timeouts,
        network_problem: token_problem.or(timeout_problem),
        github_event_name: std::env::var(env::GITHUB_EVENT_NAME).ok(),
        run_url: run_url(),
        exe_dir: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf)),
    };
    let status = match tinydit_release::run(cli, &snapshot, &reporter) {
        Ok(Outcome::Success) => ExitStatus::Success,
        Ok(Outcome::Refused) => ExitStatus::Refused,
        Err(error) => {
            reporter.error(&error);
            ExitStatus::Error
        }
    };
    ExitCode::from(status as u8)
}
