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

/// The rules not exercised above, in one file, so every validation message has a snapshot.
#[test]
fn the_remaining_rules_are_reported_too() {
    let ctx = TestContext::new()
        .file("gen.onnx", "x")
        .file("eval.json", "{}")
        .file("README.md", "# the repository's own readme")
        .file(
            "release.toml",
            r#"[model]
name = " "
hub-repo = "a/b"
github-repo = "no-slash"
license = "apache2"
pipeline-tag = "image-generation"

[version]
from = "tag"
value = "1.0.0"

[[onnx]]
path = "gen.onnx"
role = "generator"

[[onnx]]
path = "gen.onnx"
role = "generator"
output = "onnx/gen.onnx"

[generator]
image-size = 0
classes = []
cfg-scale = 500.0

[classifier]
image-size = 0
mean = [0.5]
std = [0.2, 0.0, 0.2]
labels = ["cat", "other"]
expect = "dog"

[smoke]
samples-per-class = 5000
batch-size = 9999

[smoke.golden]
inputs = "missing-in.safetensors"
outputs = "missing-out.safetensors"
atol = -1.0

[metrics]
"smoke.fid" = { file = "eval.json", path = "a..b" }

[[gate]]
metric = "smoke.latency_ms_p50"

[[gate]]
metric = "artifact.onnx/gen.onnx.size_mb"
max-regression = -1.0

[checks]
max-weights-mb = 0

[card]
template = "card.j2"
eval-metrics = ["bleu"]

[bundle]
include = ["../outside.txt", "README.md"]
samples-dir = "/abs"

[publish]
github-assets = ["../x"]
"#,
        );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}
