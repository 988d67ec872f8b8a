//! Configuration problems: all reported at once, each at `release.toml:LINE:COL`, exit code 2.

use crate::common::TestContext;

#[test]
fn every_problem_is_reported_with_its_position() {
    let ctx = TestContext::new().file(
        "release.toml",
        r#"[model]
name = "x"
hub-rpo = "a/b"
license = 3

[version]
from = "tga"

[smoke]
seed = -1
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}

/// Cross-field rules run once the structure is sound, and also report everything at once.
#[test]
fn cross_field_problems_are_all_reported() {
    let ctx = TestContext::new().file("weights/model.pt", "x").file(
        "release.toml",
        r#"[model]
name = "x"
hub-repo = "not-a-repo-id"

[version]
from = "config"
value = "1.2"

[[checkpoint]]
path = "weights/missing.pt"
output = "../model.safetensors"
max-shard-size = "lots"

[[onnx]]
path = "/etc/passwd"
role = "classifier"

[generator]
image-size = 32
classes = ["a", "b", "a"]
uncond-class = 7
steps = 0

[smoke]
providers = ["cpu", "cpu"]
batch-size = 0

[[gate]]
metric = "fidd"
min = 2.0
max = 1.0

[metrics]
fid = { file = "eval.json", path = "fid" }
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}

#[test]
fn a_path_that_escapes_the_repository_is_refused_with_its_position() {
    let outside = TestContext::new().file("secret.pt", "x");
    let ctx = TestContext::new().file(
        "release.toml",
        format!(
            "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n\n[[checkpoint]]\npath = \"../{}/secret.pt\"\noutput = \"m.safetensors\"\n",
            outside.path().file_name().expect("name").to_string_lossy()
        ),
    );
    ctx.run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:6:8: `checkpoint[0].path`")
        .assert_stderr_contains("leaves the repository");
}

#[cfg(unix)]
#[test]
fn a_symlink_that_leads_out_is_refused() {
    let outside = TestContext::new().file("secret.pt", "x");
    let ctx = TestContext::new().file(
        "release.toml",
        "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n\n[[checkpoint]]\npath = \"link.pt\"\noutput = \"m.safetensors\"\n",
    );
    std::os::unix::fs::symlink(outside.path().join("secret.pt"), ctx.path().join("link.pt"))
        .expect("symlink");
    ctx.run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:6:8:")
        .assert_stderr_contains("symlink that leads out of the repository");
}

#[test]
fn invalid_toml_is_reported_at_its_position() {
    TestContext::new()
        .file("release.toml", "[model]\nname = \"x\nhub-repo = \"a/b\"\n")
        .run(["check"])
        .assert_status(2)
        .assert_stderr_contains("release.toml:2:")
        .assert_stderr_contains("invalid TOML");
}
