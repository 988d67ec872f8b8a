//! `tinydit-release`: release a diffusion model from CI.
//!
//! The pipeline runs in stages, each depending only on the outputs of earlier ones:
//! `config` -> `artifacts` -> `smoke` -> `gates` -> `card` -> `publish`. This file only sequences
//! them for each subcommand; the work lives in the stage modules. Nothing here reads the
//! environment (`main.rs` passes an [`EnvSnapshot`]) or prints (everything goes through
//! [`report::Reporter`]).

pub mod action;
pub mod artifacts;
pub mod bundle;
pub mod card;
pub mod check;
pub mod cli;
mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod gates;
pub mod input;
pub mod onnx;
pub mod output;
pub mod report;
pub mod sarif;
pub mod smoke;
pub mod vocab;

use std::ffi::OsString;
use std::path::PathBuf;

use cli::{Cli, Command};
use config::Overrides;
use error::not_built_yet;
use report::Reporter;

/// The result of a command that ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// A check refused the release (exit code 1); the reasons were reported.
    Refused,
}

/// The environment variables the tool reads, captured once by `main.rs`.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    /// `ORT_DYLIB_PATH`.
    pub ort_dylib_path: Option<OsString>,
    /// `TINYDIT_RELEASE_PYTHON`.
    pub python: Option<OsString>,
    /// `VIRTUAL_ENV`.
    pub virtual_env: Option<OsString>,
    /// `GITHUB_REF`.
    pub github_ref: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub github_repository: Option<String>,
    /// The folder of the running executable.
    pub exe_dir: Option<PathBuf>,
    /// `GITHUB_SHA`: the commit a GitHub Actions run builds.
    pub github_sha: Option<String>,
}

impl EnvSnapshot {
    /// Where to look for ONNX Runtime, given `--ort-lib`.
    pub fn ort_search(&self, flag: Option<PathBuf>) -> smoke::runtime::OrtSearch {
        let mut pythons = Vec::new();
        if let Some(python) = &self.python {
            pythons.push(python.clone());
        }
        if let Some(venv) = &self.virtual_env {
            pythons.push(PathBuf::from(venv).join("bin/python3").into_os_string());
        }
        pythons.push("python3".into());
        smoke::runtime::OrtSearch {
            flag,
            env: self.ort_dylib_path.clone(),
            exe_dir: self.exe_dir.clone(),
            pythons,
        }
    }

    /// The commit being released: `GITHUB_SHA`, else `git rev-parse HEAD` in the current
    /// directory; and whether tracked files differ from it (`git status`). Asked only by the
    /// commands that record provenance, not at start-up.
    pub fn source_commit(&self) -> Option<SourceCommit> {
        let commit = if let Some(sha) = &self.github_sha {
            sha.clone()
        } else {
            let sha = git(&["rev-parse", "HEAD"])?.trim().to_owned();
            if sha.len() != 40 {
                return None;
            }
            sha
        };
        // Untracked files are normal in a release job (artifacts downloaded by earlier steps);
        // only changes to tracked files make the commit id a lie.
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|status| !status.trim().is_empty());
        Some(SourceCommit { commit, dirty })
    }

    pub(crate) fn overrides(&self, version: Option<String>) -> Overrides {
        Overrides {
            version,
            github_repository: self.github_repository.clone(),
            github_ref: self.github_ref.clone(),
            allow_missing_inputs: false,
        }
    }
}

/// The commit a release is built from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceCommit {
    /// The full commit id.
    pub commit: String,
    /// Whether tracked files had uncommitted changes: the release is then *not* that commit.
    pub dirty: bool,
}

impl std::fmt::Display for SourceCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dirty {
            write!(f, "commit `{}` with uncommitted changes", self.commit)
        } else {
            write!(f, "commit `{}`", self.commit)
        }
    }
}

/// Stdout of a successful `git` command in the current directory.
fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// Runs one command.
pub fn run(cli: Cli, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let ort = env.ort_search(cli.global.ort_lib.clone());
    match cli.command {
        Command::Check(args) => commands::check(args, env, ort, reporter),
        Command::Plan(_) => Err(not_built_yet("plan")),
        Command::Publish(_) => Err(not_built_yet("publish")),
        Command::Convert(args) => commands::convert(args, reporter),
        Command::Scan(args) => commands::scan(&args, reporter),
        Command::Smoke(args) => commands::smoke(args, env, &ort, reporter),
        Command::Sample(args) => commands::sample(args, env, &ort, reporter),
        Command::Card(args) => commands::card(&args, env, reporter),
        Command::Action => action::run(env, ort, reporter),
        Command::Validate(args) => commands::validate(&args, env, reporter),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "tinydit-release", &mut script);
            reporter.data(String::from_utf8_lossy(&script).trim_end());
            Ok(Outcome::Success)
        }
        Command::Schema => {
            reporter.json(&config::schema())?;
            Ok(Outcome::Success)
        }
    }
}
