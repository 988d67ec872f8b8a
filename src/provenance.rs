//! Provenance: the commit a release is built from, and whether the work tree matched it.
//!
//! Layer 1, the ground floor: reads the environment snapshot and asks `git`; imports only `env`
//! and `names`.

use crate::env::EnvSnapshot;
use crate::names;

/// The commit being released: `GITHUB_SHA`, else `git rev-parse HEAD` in the current
/// directory; and whether tracked files differ from it (`git status`), or why that cannot be
/// told. Asked only by the commands that record provenance, not at start-up. A value that is
/// not a commit id (40 hexadecimal digits) is not one: a `GITHUB_SHA` like that is passed
/// over for `git`'s answer.
pub fn source_commit(env: &EnvSnapshot) -> Option<SourceCommit> {
    let head = git(&["rev-parse", "HEAD"]);
    let commit = commit_of(env, head.as_deref().ok())?;
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

/// The id of the commit being released, as [`source_commit`] names it, without asking
/// whether tracked files were modified.
pub fn source_commit_id(env: &EnvSnapshot) -> Option<String> {
    if env.github_sha.as_deref().is_some_and(names::is_commit_id) {
        return commit_of(env, None);
    }
    commit_of(env, git(&["rev-parse", "HEAD"]).as_deref().ok())
}

/// `GITHUB_SHA` when it is a commit id, else the output of `git rev-parse HEAD` when it is.
fn commit_of(env: &EnvSnapshot, head: Option<&str>) -> Option<String> {
    if let Some(sha) = env
        .github_sha
        .as_ref()
        .filter(|sha| names::is_commit_id(sha))
    {
        return Some(sha.clone());
    }
    let sha = head?.trim();
    names::is_commit_id(sha).then(|| sha.to_owned())
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
