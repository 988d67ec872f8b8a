//! Outputs stay inside (issue 14, item 5): a repository can commit a symlink (`build ->
//! /anywhere`), so every command that writes refuses an output path that goes through one
//! below the working directory, and `check` never replaces a `bundle/` folder it cannot
//! recognise as its own. Each test builds the hostile repository in its temp folder.

use crate::common::{TestContext, require_ort};

/// The fixture with a committed `build -> <elsewhere>` link and a passing release.toml.
fn repository_with_a_link(elsewhere: &std::path::Path) -> TestContext {
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", crate::check::release_toml("", ""))
        .env("ORT_DYLIB_PATH", require_ort().display().to_string())
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567");
    std::os::unix::fs::symlink(elsewhere, ctx.path().join("build")).expect("symlink");
    ctx
}

/// Every output flag of every command, relative or absolute into the repository: refused before
/// any work, naming the link, and nothing is written where it points.
#[test]
fn every_output_through_a_committed_symlink_is_refused_before_any_work() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(elsewhere.path().join("dist")).expect("an existing folder there");
    let ctx = repository_with_a_link(elsewhere.path());
    let absolute = ctx.path().join("build/dist").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", "--out", "build/dist"],
        vec!["check", "--out", "build/dist/deeper"],
        vec!["check", "--out", &absolute],
        vec!["publish", "--out", "build/dist", "--dry-run"],
        vec!["smoke", "--out", "build/smoke"],
        vec![
            "sample",
            "--model",
            "onnx/generator.onnx",
            "--out",
            "build/samples",
        ],
        vec![
            "sample",
            "--model",
            "onnx/generator.onnx",
            "--out",
            "samples",
            "--save-tensor",
            "build/final.npy",
        ],
        vec!["card", "-o", "build/README.md"],
        vec![
            "convert",
            "checkpoints/tinydit_final.pt",
            "-o",
            "build/model.safetensors",
        ],
    ];
    for args in &cases {
        let run = ctx.run(args);
        run.assert_status(2)
            .assert_stderr_contains("outputs are never written through a symlink");
        let absolute_link = format!(
            "through the symlink `{}`",
            ctx.path().join("build").display()
        );
        let named = [
            "through the symlink `build`",
            "folder `build` is a symlink",
            &absolute_link,
        ];
        assert!(
            named.iter().any(|n| run.stderr.contains(n)),
            "{args:?}: the link is named\n{}",
            run.stderr
        );
        for busy in ["Converting", "Checked", "Wrote", "Rendered"] {
            assert!(
                !run.stderr.contains(busy),
                "{args:?} did work:\n{}",
                run.stderr
            );
        }
    }
    let left: Vec<_> = walkdir(elsewhere.path());
    assert_eq!(left, ["dist"], "nothing written through the link");
    assert!(!ctx.path().join("samples").exists());
}

/// The action's `out` and `sarif` inputs follow the same rule.
#[test]
fn the_actions_outputs_through_a_committed_symlink_are_refused() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for (command, extra) in [
        ("check", ("INPUT_OUT", "build/dist")),
        ("scan", ("INPUT_SARIF", "build/checkpoints.sarif")),
    ] {
        let ctx = repository_with_a_link(elsewhere.path())
            .env("GITHUB_ACTIONS", "true")
            .env("INPUT_COMMAND", command)
            .env("INPUT_FILES", "checkpoints/*.pt")
            .env(extra.0, extra.1)
            .env("GITHUB_OUTPUT", "github_output")
            .env("GITHUB_STEP_SUMMARY", "step_summary.md");
        let run = ctx.run(["action"]);
        run.assert_status(2)
            .assert_stdout_contains("goes through the symlink `build`");
        assert!(
            !run.stderr.contains("Converting") && !run.stderr.contains("Scanning"),
            "{command} did work:\n{}",
            run.stderr
        );
        std::fs::remove_file(ctx.path().join("build")).expect("rm link");
    }
    assert!(walkdir(elsewhere.path()).is_empty());
}

/// A `bundle/` folder `check` did not write (the repository's own, or a bundle someone added
/// files to) is never deleted: refused before any work, every file left as it was.
#[test]
fn a_folder_that_is_not_our_bundle_is_never_replaced() {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let ctx = repository_with_a_link(elsewhere.path())
        .file("bundle/notes.md", "the repository's own folder")
        .file("dist/bundle/README.md", "a card")
        .file("dist/bundle/mine.txt", "added by hand")
        .file(
            "dist/manifest.json",
            r#"{"schema_version": 1, "files": [{"path": "README.md"}]}"#,
        );
    for (out, file, why) in [
        (
            ".",
            "bundle/notes.md",
            "there is no readable `./manifest.json`",
        ),
        (
            "dist",
            "dist/bundle/mine.txt",
            "`mine.txt` not listed in `dist/manifest.json`",
        ),
    ] {
        let run = ctx.run(["check", "--out", out]);
        run.assert_status(2)
            .assert_stderr_contains("is not one tinydit-release wrote")
            .assert_stderr_contains(why)
            .assert_stderr_contains("hint: move or remove it yourself");
        assert!(!run.stderr.contains("Converting"), "{}", run.stderr);
        assert!(ctx.path().join(file).is_file(), "{file} kept");
    }
    assert!(ctx.path().join("dist/manifest.json").is_file());
    assert!(ctx.path().join("dist/bundle/README.md").is_file());
}

/// Paths of everything below `dir`, sorted, `/`-separated.
fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("list") {
            let entry = entry.expect("entry");
            let path = entry.path();
            found.push(
                path.strip_prefix(dir)
                    .expect("below")
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
            if entry.file_type().expect("type").is_dir() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}
