//! The integration-test harness: a temp folder per test, the real binary, and assertions.
//!
//! `TestContext::new()` makes an empty folder (a stand-in repository root); `fixture(name)` copies
//! `tests/fixtures/<name>/` into it; `run(args)` runs `tinydit-release` there with the user's
//! tokens and GitHub variables removed, so nothing outside the folder leaks in.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variables that must not reach the binary under test.
const SCRUBBED: &[&str] = &[
    "HF_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_REF",
    "GITHUB_REPOSITORY",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "NO_COLOR",
];

/// The repository checkout the tests run from.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A committed fixture folder.
pub fn fixture_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// One test's private folder and the commands run in it.
#[must_use]
pub struct TestContext {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl TestContext {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tinydit-it-")
            .tempdir()
            .expect("create temp dir");
        Self {
            dir,
            env: Vec::new(),
        }
    }

    /// The test's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `tests/fixtures/<name>/` into the test folder, keeping relative layout.
    pub fn fixture(self, name: &str) -> Self {
        copy_dir(&fixture_path(name), self.path());
        self
    }

    /// Writes a file relative to the test folder.
    pub fn file(self, relative: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(path, contents).expect("write file");
        self
    }

    /// Sets an environment variable for commands run from here.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// A command for the binary, in the test folder, with a scrubbed environment.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tinydit-release"));
        command.current_dir(self.path()).args(args);
        for key in SCRUBBED {
            command.env_remove(key);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("INPUT_") {
                command.env_remove(key);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs the binary and returns what it did.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self.command(args).output().expect("run tinydit-release");
        Run::new(&output, self.path())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    root: String,
}

impl Run {
    fn new(output: &Output, root: &Path) -> Self {
        Self {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            root: root.display().to_string(),
        }
    }

    /// stderr with the temp folder replaced by `[TEMP]`, for snapshots.
    pub fn stderr_redacted(&self) -> String {
        self.stderr.replace(&self.root, "[TEMP]")
    }

    #[track_caller]
    pub fn assert_status(&self, expected: i32) -> &Self {
        assert_eq!(
            self.status,
            Some(expected),
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not contain {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout does not contain {needle:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }
}
