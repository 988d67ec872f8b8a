//! Every environment variable that `tinydit-release` reads, one documented constant each.
//!
//! Only `main.rs`, `cli.rs` and `action.rs` read the environment; stages receive values. Keeping the
//! names here means a test can list them, and a reader can see at a glance what the tool listens to.

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
/// arrives as `INPUT_DRY_RUN` (`action::input_variable`). Read only by `action.rs`.
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
