//! Where ML repositories already look: `validate` (fast release.toml checks), the pre-commit
//! hooks in `.pre-commit-hooks.yaml`, and shell completions.

use crate::common::{TestContext, repo_root};

const MINIMAL: &str = r#"[model]
name = "x"
hub-repo = "a/b"

[[checkpoint]]
path = "weights/model.pt"
output = "model.safetensors"
"#;

#[test]
fn validate_checks_release_toml_without_running_anything() {
    let ctx = TestContext::new()
        .file("release.toml", MINIMAL)
        .file("bad/release.toml", "[model]\nname = 3\n");
    // The checkpoint is missing: an error by default, allowed on request (pre-commit, where
    // artifacts are downloaded only in CI).
    ctx.run(["validate"])
        .assert_status(2)
        .assert_stderr_contains("`checkpoint[0].path` = `weights/model.pt` does not exist");
    ctx.run(["validate", "--allow-missing-inputs"])
        .assert_status(0)
        .assert_stderr_contains("Valid `release.toml` (a/b)");
    // Every file is reported, the exit code is the worst.
    let run = ctx.run([
        "validate",
        "--allow-missing-inputs",
        "release.toml",
        "bad/release.toml",
    ]);
    run.assert_status(2)
        .assert_stderr_contains("Valid `release.toml`")
        .assert_stderr_contains("bad/release.toml:2:8")
        .assert_stderr_contains("1 of 2 file(s) are not valid");
    // Paths must still stay inside the repository.
    let ctx = TestContext::new().file(
        "release.toml",
        MINIMAL.replace("weights/model.pt", "../../etc/passwd"),
    );
    ctx.run(["validate", "--allow-missing-inputs"])
        .assert_status(2)
        .assert_stderr_contains("leaves the repository");
}

/// Each hook's `entry` runs our real binary on the files its `files` pattern selects: clean
/// files pass, a bad one fails the hook.
#[test]
fn pre_commit_hooks_run_the_commands_they_name() {
    let text =
        std::fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml")).expect("hooks file");
    let hooks: Vec<serde_json::Value> = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let ids: Vec<&str> = hooks.iter().filter_map(|h| h["id"].as_str()).collect();
    assert_eq!(ids, ["tinydit-scan", "tinydit-validate"]);
    for hook in &hooks {
        assert_eq!(hook["language"], "rust", "{hook}");
        let entry = hook["entry"].as_str().expect("entry");
        let mut words = entry.split_whitespace();
        assert_eq!(words.next(), Some("tinydit-release"), "{entry}");
        let args: Vec<&str> = words.collect();
        let ctx = TestContext::new()
            .file("release.toml", MINIMAL)
            .file("bad/release.toml", "[model]\nname = 3\n")
            .fixture_file("checkpoints/tied.pt", "weights/clean.pt")
            .fixture_file("checkpoints/mal_posix_system.pt", "weights/bad.pth");
        let (good, bad) = if hook["id"] == "tinydit-scan" {
            ("weights/clean.pt", "weights/bad.pth")
        } else {
            ("release.toml", "bad/release.toml")
        };
        let pattern = hook["files"].as_str().expect("files");
        assert!(matches(pattern, good) && matches(pattern, bad), "{pattern}");
        assert!(
            !matches(pattern, "README.md") && !matches(pattern, "x.ptx"),
            "{pattern}"
        );
        ctx.run(args.iter().copied().chain([good])).assert_status(0);
        let run = ctx.run(args.iter().copied().chain([good, bad]));
        assert_ne!(
            run.status,
            Some(0),
            "`{entry}` passed `{bad}`\n{}",
            run.stderr
        );
    }
}

/// pre-commit matches `files` with Python's `re.search`; so does this check.
fn matches(pattern: &str, path: &str) -> bool {
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import re, sys; sys.exit(0 if re.search(sys.argv[1], sys.argv[2]) else 1)",
            pattern,
            path,
        ])
        .output()
        .expect("python runs");
    output.status.success()
}

#[test]
fn completions_cover_every_subcommand() {
    let run = TestContext::new().run(["completions", "bash"]);
    run.assert_status(0);
    for command in [
        "check", "plan", "publish", "convert", "scan", "smoke", "sample", "card", "validate",
    ] {
        run.assert_stdout_contains(command);
    }
    run.assert_stdout_contains("--allow-missing-inputs");
}
