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
pub mod identity;
pub mod input;
pub mod manifest;
pub mod names;
pub mod onnx;
pub mod output;
pub mod publish;
pub mod report;
pub mod sarif;
pub mod secrets;
pub mod smoke;
pub mod sums;
pub mod verify;
pub mod vocab;

use std::ffi::OsString;
use std::path::PathBuf;

use cli::{Cli, Command};
use config::Overrides;
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
    /// `HF_TOKEN` and `GITHUB_TOKEN`.
    pub tokens: secrets::Tokens,
    /// Where the Hub and GitHub are.
    pub endpoints: Endpoints,
    /// The limits of every network call (`TINYDIT_RELEASE_*_TIMEOUT`).
    pub timeouts: publish::net::Timeouts,
    /// A token or network setting that was given but cannot be used (a token with a control
    /// character inside, a timeout that is not a number): every command that would go online
    /// stops with it, the others do not need it.
    pub network_problem: Option<error::Problem>,
    /// `GITHUB_EVENT_NAME`.
    pub github_event_name: Option<String>,
    /// The URL of the workflow run, from `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY` and
    /// `GITHUB_RUN_ID`.
    pub run_url: Option<String>,
}

/// The Python interpreter of the environment whose `bin/` holds the executable, if any.
fn python_beside(exe_dir: &std::path::Path) -> Option<OsString> {
    ["python3", "python", "python.exe"]
        .iter()
        .map(|name| exe_dir.join(name))
        .find(|path| path.is_file())
        .map(PathBuf::into_os_string)
}

/// The service addresses, from `HF_ENDPOINT`, `GITHUB_API_URL` and
/// `TINYDIT_RELEASE_GITHUB_UPLOAD_URL`, defaulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The Hub, without a trailing `/`.
    pub hub: String,
    /// GitHub's REST API, without a trailing `/`.
    pub github_api: String,
    /// GitHub's upload host, without a trailing `/`.
    pub github_uploads: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::from_values(None, None, None)
    }
}

impl Endpoints {
    /// Defaults applied once: the public services, or for a GitHub Enterprise API
    /// (`https://HOST/api/v3`) its upload path `https://HOST/api/uploads`.
    pub fn from_values(
        hub: Option<String>,
        github_api: Option<String>,
        github_uploads: Option<String>,
    ) -> Self {
        let clean = |v: Option<String>| {
            v.map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
        };
        let hub = clean(hub).unwrap_or_else(|| "https://huggingface.co".to_owned());
        let github_api = clean(github_api).unwrap_or_else(|| "https://api.github.com".to_owned());
        let github_uploads = clean(github_uploads).unwrap_or_else(|| {
            if github_api == "https://api.github.com" {
                "https://uploads.github.com".to_owned()
            } else if let Some(host) = github_api.strip_suffix("/api/v3") {
                format!("{host}/api/uploads")
            } else {
                github_api.clone()
            }
        });
        Self {
            hub,
            github_api,
            github_uploads,
        }
    }
}

impl EnvSnapshot {
    /// Where to look for ONNX Runtime, given `--ort-lib`.
    pub fn ort_search(&self, flag: Option<PathBuf>) -> smoke::runtime::OrtSearch {
        let mut pythons = Vec::new();
        if let Some(python) = &self.python {
            pythons.push(python.clone());
        }
        // Installed by pip (`pip install tinydit-release`, whose wheel depends on onnxruntime):
        // the binary sits in its environment's `bin/` (`Scripts\` on Windows) next to that
        // environment's Python, asked before any other environment's.
        if let Some(python) = self.exe_dir.as_deref().and_then(python_beside) {
            pythons.push(python);
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
    /// directory; and whether tracked files differ from it (`git status`), or why that cannot be
    /// told. Asked only by the commands that record provenance, not at start-up. A value that is
    /// not a commit id (40 hexadecimal digits) is not one: a `GITHUB_SHA` like that is passed
    /// over for `git`'s answer.
    pub fn source_commit(&self) -> Option<SourceCommit> {
        let head = git(&["rev-parse", "HEAD"]);
        let commit = self.commit_of(head.as_deref().ok())?;
        // Untracked files are normal in a release job (artifacts downloaded by earlier steps);
        // only changes to tracked files make the commit id a lie.
        let (dirty, dirty_unknown) =
            match head.and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"])) {
                Ok(status) => (Some(!status.trim().is_empty()), None),
                Err(why) => (None, Some(why)),
            };
        Some(SourceCommit {
            commit,
            dirty,
            dirty_unknown,
        })
    }

    /// The id of the commit being released, as [`Self::source_commit`] names it, without asking
    /// whether tracked files were modified.
    pub fn source_commit_id(&self) -> Option<String> {
        if self.github_sha.as_deref().is_some_and(names::is_commit_id) {
            return self.commit_of(None);
        }
        self.commit_of(git(&["rev-parse", "HEAD"]).as_deref().ok())
    }

    /// `GITHUB_SHA` when it is a commit id, else the output of `git rev-parse HEAD` when it is.
    fn commit_of(&self, head: Option<&str>) -> Option<String> {
        if let Some(sha) = self
            .github_sha
            .as_ref()
            .filter(|sha| names::is_commit_id(sha))
        {
            return Some(sha.clone());
        }
        let sha = head?.trim();
        names::is_commit_id(sha).then(|| sha.to_owned())
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceCommit {
    /// The full commit id.
    pub commit: String,
    /// Whether tracked files had uncommitted changes: the release is then *not* that commit.
    /// `null` when it could not be told (`dirty_unknown` says why).
    pub dirty: Option<bool>,
    /// Why the state of the work tree could not be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty_unknown: Option<String>,
}

impl SourceCommit {
    /// A commit whose work tree had no changes to tracked files.
    pub fn clean(commit: String) -> Self {
        Self {
            commit,
            dirty: Some(false),
            dirty_unknown: None,
        }
    }

    /// Tracked files had uncommitted changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty == Some(true)
    }
}

impl std::fmt::Display for SourceCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.dirty {
            Some(false) => write!(f, "commit `{}`", self.commit),
            Some(true) => write!(f, "commit `{}` with uncommitted changes", self.commit),
            None => write!(
                f,
                "commit `{}` (whether tracked files were modified is unknown)",
                self.commit
            ),
        }
    }
}

/// Stdout of a successful `git` command in the current directory, or why it failed.
///
/// In a container action the workspace belongs to the runner's user, not to us, and git refuses
/// such a repository ("dubious ownership") unless it is marked safe. Marking it safe for this
/// one read-only command is sound because nothing git runs here comes from the repository:
/// `core.fsmonitor` (the one hook `status` can start) is off, and `GIT_OPTIONAL_LOCKS=0` keeps
/// `status` from rewriting the index of a workspace we do not own.
fn git(args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("git")
        .args(["-c", "safe.directory=*", "-c", "core.fsmonitor=false"])
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                "`git` is not installed".to_owned()
            } else {
                format!("`git` could not be started: {err}")
            }
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(format!(
            "`git {}` failed: {}",
            args.join(" "),
            if first.is_empty() {
                "no message"
            } else {
                first
            }
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("`git {}` printed non-UTF-8", args.join(" ")))
}

/// Runs one command.
pub fn run(cli: Cli, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let ort = env.ort_search(cli.global.ort_lib.clone());
    match cli.command {
        Command::Check(args) => {
            commands::check(args, env, ort, reporter).map(|r| commands::check_outcome(&r))
        }
        Command::Plan(args) => commands::plan(&args, env, reporter).map(|_| Outcome::Success),
        Command::Publish(args) => commands::publish(&args, env, ort, reporter).map(|r| r.outcome()),
        Command::Convert(args) => commands::convert(args, reporter),
        Command::Scan(args) => commands::scan(&args, reporter),
        Command::Smoke(args) => commands::smoke(args, env, &ort, reporter),
        Command::Sample(args) => commands::sample(args, env, &ort, reporter),
        Command::Card(args) => commands::card(&args, env, reporter),
        Command::Action => action::run(env, ort, reporter),
        Command::Validate(args) => commands::validate(&args, env, reporter),
        Command::Verify(args) => verify::run(&args, env, reporter),
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
