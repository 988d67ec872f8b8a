//! The example workflows users copy (`examples/workflows/*.yml`, shown verbatim in README.md)
//! pass actionlint and zizmor the way they would in a user's repository, and the project's own
//! workflows and Dockerfiles stay consistent with the scripts that release it.

use std::path::{Path, PathBuf};

use crate::common::{TestContext, repo_root};

/// A user pins the action to the commit its `v1` tag points to (README, "Versions"); this
/// stands in for that commit id.
const PINNED: &str = "d-oit/tinydit-release@0123456789abcdef0123456789abcdef01234567 # v1.0.0";

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples/workflows"))
        .expect("examples/workflows")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

/// The linters `make test` installs into the venv next to `TINYDIT_RELEASE_PYTHON`.
fn linter(name: &str) -> PathBuf {
    let python = std::env::var("TINYDIT_RELEASE_PYTHON")
        .expect("TINYDIT_RELEASE_PYTHON must name the venv python (`make test` sets it)");
    let path = Path::new(&python).with_file_name(name);
    assert!(
        path.is_file(),
        "`{}` is missing: `make test` installs scripts/requirements-lint.txt",
        path.display()
    );
    path
}

#[test]
fn readme_shows_every_example_workflow_verbatim() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    for file in examples() {
        let text = std::fs::read_to_string(&file).expect("example");
        assert!(
            readme.contains(&format!("```yaml\n{text}```")),
            "README.md does not show `{}` verbatim",
            file.display()
        );
    }
}

#[test]
fn example_workflows_pass_actionlint_and_zizmor_as_in_a_users_repository() {
    let ctx = TestContext::new();
    let workflows = ctx.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("mkdir");
    for file in examples() {
        let text = std::fs::read_to_string(&file).expect("example");
        let pinned = text.replace("d-oit/tinydit-release@v1", PINNED);
        std::fs::write(workflows.join(file.file_name().expect("name")), pinned).expect("write");
    }
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(ctx.path())
        .status()
        .expect("git");
    assert!(git.success());
    let actionlint = std::process::Command::new(linter("actionlint"))
        .current_dir(ctx.path())
        .output()
        .expect("actionlint runs");
    assert!(
        actionlint.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&actionlint.stdout),
        String::from_utf8_lossy(&actionlint.stderr)
    );
    let zizmor = std::process::Command::new(linter("zizmor"))
        .args(["--offline", "--no-progress", "."])
        .current_dir(ctx.path())
        .output()
        .expect("zizmor runs");
    let report = String::from_utf8_lossy(&zizmor.stdout);
    assert!(
        zizmor.status.success() && report.contains("No findings to report"),
        "zizmor:\n{report}{}",
        String::from_utf8_lossy(&zizmor.stderr)
    );
}

/// The release commit rewrites exactly action.yml's image line: run the script on a copy of this
/// checkout's files in a scratch repository.
#[test]
fn the_release_commit_points_action_yml_at_the_image_digest() {
    let ctx = TestContext::new();
    for file in [
        "action.yml",
        "Cargo.toml",
        "scripts/release-commit.sh",
        "scripts/release-lib.sh",
    ] {
        let target = ctx.path().join(file);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo_root().join(file), &target).expect("copy");
    }
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(ctx.path())
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "main"]);
    let version = env!("CARGO_PKG_VERSION");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let script = ctx.path().join("scripts/release-commit.sh");
    let bad = std::process::Command::new(&script)
        .args(["9.9.9", &digest])
        .output()
        .expect("script runs");
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a version other than Cargo.toml's is refused"
    );
    let out = std::process::Command::new(&script)
        .args([version, &digest])
        .output()
        .expect("script runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let action = std::fs::read_to_string(ctx.path().join("action.yml")).expect("action.yml");
    assert!(action.contains(&format!(
        "\n  image: docker://ghcr.io/d-oit/tinydit-release@{digest}\n"
    )));
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&action).expect("still YAML");
    assert_eq!(yaml["runs"]["using"], "docker");
    assert_eq!(git(&["tag", "--list"]), format!("v{version}"));
    assert_eq!(
        git(&["diff", "--stat", "HEAD~1", "--", "."])
            .lines()
            .count(),
        2,
        "one file"
    );
}

/// Every base image of both Dockerfiles is pinned by digest, and `verify` compares each with
/// what the registry says (a stand-in `docker` answers here).
#[test]
fn base_images_are_pinned_and_verified_against_the_registry() {
    let script = repo_root().join("scripts/base-images.sh");
    let list = std::process::Command::new(&script)
        .arg("list")
        .output()
        .expect("script runs");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let pins = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(pins.lines().count(), 3, "{pins}");
    let ctx = TestContext::new();
    // A registry that still agrees with every pin, then one where the Debian tag moved.
    let answers: Vec<String> = pins
        .lines()
        .map(|line| {
            let (tag, digest) = line.split_once(' ').expect("tag digest");
            format!("  {tag}) echo {digest} ;;")
        })
        .collect();
    let fake = |extra: &str| {
        format!(
            "#!/bin/sh\n# docker buildx imagetools inspect TAG --format ...\ncase \"$4\" in\n{extra}{}\nesac\n",
            answers.join("\n")
        )
    };
    let docker = ctx.path().join("docker");
    std::fs::write(&docker, fake("")).expect("write");
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&docker)
        .status()
        .expect("chmod");
    let verify = std::process::Command::new(&script)
        .arg("verify")
        .env("DOCKER", &docker)
        .output()
        .expect("script runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let moved = pins
        .lines()
        .find(|l| l.starts_with("debian:"))
        .expect("debian pin");
    let tag = moved.split(' ').next().expect("tag");
    std::fs::write(
        &docker,
        fake(&format!("  {tag}) echo sha256:{} ;;\n", "0".repeat(64))),
    )
    .expect("write");
    let verify = std::process::Command::new(&script)
        .arg("verify")
        .env("DOCKER", &docker)
        .output()
        .expect("script runs");
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stderr).contains(&format!("moved   {tag}")));
}
