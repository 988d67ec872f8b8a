//! Every environment variable that `tinydit-release` reads, one documented constant each.
//!
//! Only `main.rs`, `cli.rs` and `action/` read the environment; stages receive values. Keeping the
//! names here means a test can list them, and a reader can see at a glance what the tool listens to.
//!
//! Layer 1, the ground floor: imports only `error` and `secrets`.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Problem;

/// Path to the ONNX Runtime shared library (`libonnxruntime.so.1.x.y`). Also read by the `ort`
/// crate itself; `--ort-lib` takes precedence.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// The Python interpreter used to locate an installed `onnxruntime` package when no library
/// path is given. Default: `python3`.
pub const TINYDIT_RELEASE_PYTHON: &str = "TINYDIT_RELEASE_PYTHON";

/// An active Python virtual environment; its interpreter is asked before `python3`.
pub const VIRTUAL_ENV: &str = "VIRTUAL_ENV";

/// When set to any non-empty value, no ANSI colours are written (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";

/// The Git ref that triggered a GitHub Actions run, e.g. `refs/tags/v1.2.3`; `version.from = "tag"`
/// reads the version from it when `--version` is not given.
pub const GITHUB_REF: &str = "GITHUB_REF";

/// The commit a GitHub Actions run builds; recorded as the release's provenance. Without it,
/// `git rev-parse HEAD` is asked.
pub const GITHUB_SHA: &str = "GITHUB_SHA";

/// `owner/name` of the repository running the workflow; the default for `model.github-repo`.
pub const GITHUB_REPOSITORY: &str = "GITHUB_REPOSITORY";

/// Prefix of the variables the runner sets for a container action's inputs: input `dry_run`
/// arrives as `INPUT_DRY_RUN` (`action::input_variable`). Read only by `action/`.
pub const INPUT_PREFIX: &str = "INPUT_";

/// The event payload (JSON) of the workflow run; a pull request's head commit comes from here.
pub const GITHUB_EVENT_PATH: &str = "GITHUB_EVENT_PATH";

/// File the action appends `name=value` outputs to (set by the runner).
pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";

/// File the action appends the Markdown step summary to (set by the runner).
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// The workspace the runner mounts; annotation paths are made relative to it.
pub const GITHUB_WORKSPACE: &str = "GITHUB_WORKSPACE";

/// Hugging Face token with write access to the model repository (`write` role, or a
/// fine-grained token with "Write access to contents/settings of repos"). Read through
/// `secrets::Token`, never printed.
pub const HF_TOKEN: &str = "HF_TOKEN";

/// GitHub token with `contents: write` on the repository (tags and releases). Read through
/// `secrets::Token`, never printed.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// The Hub's address. Default: `https://huggingface.co`; tests aim it at the Hub emulator.
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";

/// GitHub's REST API address (set by the runner; GitHub Enterprise: `https://HOST/api/v3`).
/// Default: `https://api.github.com`.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";

/// Where release assets are uploaded. Default: `https://uploads.github.com` for github.com,
/// else `<api host>/api/uploads`; tests aim it at the GitHub emulator.
pub const TINYDIT_RELEASE_GITHUB_UPLOAD_URL: &str = "TINYDIT_RELEASE_GITHUB_UPLOAD_URL";

/// Seconds to wait for a connection to the Hub or GitHub (`2`, `0.5`). Default: 30.
pub const TINYDIT_RELEASE_CONNECT_TIMEOUT: &str = "TINYDIT_RELEASE_CONNECT_TIMEOUT";

/// Seconds a server may stay silent: before its answer starts, and between two pieces of it.
/// Default: 120.
pub const TINYDIT_RELEASE_READ_TIMEOUT: &str = "TINYDIT_RELEASE_READ_TIMEOUT";

/// Seconds one request to the Hub or GitHub may take in all, answer included; an asset upload
/// gets one more second per MiB it sends. Default: 300.
pub const TINYDIT_RELEASE_REQUEST_TIMEOUT: &str = "TINYDIT_RELEASE_REQUEST_TIMEOUT";

/// The event that started a workflow run (`push`, `pull_request`, ...); publishing from a
/// pull-request event (`crate::publish::PULL_REQUEST_EVENTS`) is refused.
pub const GITHUB_EVENT_NAME: &str = "GITHUB_EVENT_NAME";

/// The web address of GitHub (`https://github.com`), for the run URL in commit messages.
pub const GITHUB_SERVER_URL: &str = "GITHUB_SERVER_URL";

/// The workflow run's id, for the run URL in commit messages.
pub const GITHUB_RUN_ID: &str = "GITHUB_RUN_ID";

#[cfg(test)]
mod tests {
    /// Every constant is its own name: a typo here would silently read the wrong variable.
    #[test]
    fn constants_spell_their_own_names() {
        assert_eq!(super::INPUT_PREFIX, "INPUT_");
        for (name, value) in [
            ("ORT_DYLIB_PATH", super::ORT_DYLIB_PATH),
            ("TINYDIT_RELEASE_PYTHON", super::TINYDIT_RELEASE_PYTHON),
            ("VIRTUAL_ENV", super::VIRTUAL_ENV),
            ("NO_COLOR", super::NO_COLOR),
            ("GITHUB_REF", super::GITHUB_REF),
            ("GITHUB_SHA", super::GITHUB_SHA),
            ("GITHUB_REPOSITORY", super::GITHUB_REPOSITORY),
            ("GITHUB_OUTPUT", super::GITHUB_OUTPUT),
            ("GITHUB_STEP_SUMMARY", super::GITHUB_STEP_SUMMARY),
            ("GITHUB_WORKSPACE", super::GITHUB_WORKSPACE),
            ("HF_TOKEN", super::HF_TOKEN),
            ("GITHUB_TOKEN", super::GITHUB_TOKEN),
            ("HF_ENDPOINT", super::HF_ENDPOINT),
            ("GITHUB_API_URL", super::GITHUB_API_URL),
            (
                "TINYDIT_RELEASE_GITHUB_UPLOAD_URL",
                super::TINYDIT_RELEASE_GITHUB_UPLOAD_URL,
            ),
            (
                "TINYDIT_RELEASE_CONNECT_TIMEOUT",
                super::TINYDIT_RELEASE_CONNECT_TIMEOUT,
            ),
            (
                "TINYDIT_RELEASE_READ_TIMEOUT",
                super::TINYDIT_RELEASE_READ_TIMEOUT,
            ),
            (
                "TINYDIT_RELEASE_REQUEST_TIMEOUT",
                super::TINYDIT_RELEASE_REQUEST_TIMEOUT,
            ),
            ("GITHUB_EVENT_NAME", super::GITHUB_EVENT_NAME),
            ("GITHUB_EVENT_PATH", super::GITHUB_EVENT_PATH),
            ("GITHUB_SERVER_URL", super::GITHUB_SERVER_URL),
            ("GITHUB_RUN_ID", super::GITHUB_RUN_ID),
        ] {
            assert_eq!(name, value);
        }
    }
}

// The snapshot: every value above, read once by `main.rs` (and `action/` for its inputs) and
// passed down; nothing below the front ends calls `std::env`.

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
    pub tokens: crate::secrets::Tokens,
    /// Where the Hub and GitHub are.
    pub endpoints: Endpoints,
    /// The limits of every network call (`TINYDIT_RELEASE_*_TIMEOUT`).
    pub timeouts: Timeouts,
    /// A token or network setting that was given but cannot be used (a token with a control
    /// character inside, a timeout that is not a number): every command that would go online
    /// stops with it, the others do not need it.
    pub network_problem: Option<Problem>,
    /// `GITHUB_EVENT_NAME`.
    pub github_event_name: Option<String>,
    /// The URL of the workflow run, from `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY` and
    /// `GITHUB_RUN_ID`.
    pub run_url: Option<String>,
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

/// An upload may take one more second for each of these many bytes it sends: a floor of 1 MiB/s,
/// far below any CI runner's link, so only a stalled transfer runs out.
const UPLOAD_BYTES_PER_SECOND: u64 = 1024 * 1024;

/// Connect, silence and whole-request limits of every network call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Establishing a connection (TCP and TLS).
    pub connect: Duration,
    /// Silence: waiting for an answer to start, and between two pieces of it.
    pub read: Duration,
    /// A whole request, answer included (uploads get more, by size: [`Timeouts::upload`]).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            read: Duration::from_mins(2),
            request: Duration::from_mins(5),
        }
    }
}

impl Timeouts {
    /// The limits from `TINYDIT_RELEASE_CONNECT_TIMEOUT`, `_READ_TIMEOUT` and `_REQUEST_TIMEOUT`
    /// (seconds, decimals allowed), each defaulted when unset or blank.
    pub fn from_values(
        connect: Option<String>,
        read: Option<String>,
        request: Option<String>,
    ) -> Result<Self, Problem> {
        let defaults = Self::default();
        Ok(Self {
            connect: seconds(connect, TINYDIT_RELEASE_CONNECT_TIMEOUT, defaults.connect)?,
            read: seconds(read, TINYDIT_RELEASE_READ_TIMEOUT, defaults.read)?,
            request: seconds(request, TINYDIT_RELEASE_REQUEST_TIMEOUT, defaults.request)?,
        })
    }

    /// The deadline of an upload of `bytes`: the request's, plus a second per MiB.
    pub fn upload(&self, bytes: u64) -> Duration {
        self.request + Duration::from_secs(bytes / UPLOAD_BYTES_PER_SECOND)
    }
}

impl fmt::Display for Timeouts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connect {}, silence {}, whole request {}",
            shown(self.connect),
            shown(self.read),
            shown(self.request)
        )
    }
}

fn shown(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

fn seconds(value: Option<String>, name: &str, default: Duration) -> Result<Duration, Problem> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match value.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(Problem::new(format!(
            "`{name}` = `{value}` is not a number of seconds between 0 and 86400"
        ))
        .hint(format!(
            "unset it for the default ({} s), or give seconds such as `60` or `0.5`",
            default.as_secs()
        ))),
    }
}
