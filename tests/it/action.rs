//! `tinydit-release action`: the container entrypoint, driven by the variables action.yml maps
//! its inputs to, writing outputs, the step summary and annotations as the runner expects.

use crate::common::{TestContext, require_ort};

fn action_context(toml: &str) -> TestContext {
    TestContext::new()
        .fixture("tinydit")
        .file("release.toml", toml)
        .env("ORT_DYLIB_PATH", require_ort().display().to_string())
        .env("TINYDIT_RELEASE_COMMAND", "check")
        .env("TINYDIT_RELEASE_CONFIG", "release.toml")
        .env("TINYDIT_RELEASE_OUT", "out")
        .env("TINYDIT_RELEASE_DRY_RUN", "false")
        .env("GITHUB_OUTPUT", "github_output")
        .env("GITHUB_STEP_SUMMARY", "step_summary.md")
}

const RELEASE_TOML: &str = r#"[model]
name = "TinyDiT fixture"
hub-repo = "someone/tinydit"

[version]
from = "config"
value = "2.0.0"

[[checkpoint]]
path = "checkpoints/tinydit_final.pt"
output = "tinydit.safetensors"

[[gate]]
metric = "checkpoint.nan_count"
max = 0
"#;

#[test]
fn check_writes_outputs_and_the_step_summary() {
    let ctx = action_context(RELEASE_TOML);
    ctx.run(["action"]).assert_status(0);
    let outputs = std::fs::read_to_string(ctx.path().join("github_output")).expect("outputs");
    assert_eq!(outputs, "version=2.0.0\ngates_passed=true\n");
    let summary = std::fs::read_to_string(ctx.path().join("step_summary.md")).expect("summary");
    assert!(
        summary.contains("| `checkpoint.nan_count` | max | 0 | 0 | pass |"),
        "{summary}"
    );
    assert!(ctx.path().join("out/bundle/tinydit.safetensors").is_file());
}

#[test]
fn a_refused_release_says_so_in_the_outputs() {
    let toml = RELEASE_TOML.replace(
        "metric = \"checkpoint.nan_count\"\nmax = 0",
        "metric = \"checkpoint.step\"\nmin = 1000000",
    );
    let ctx = action_context(&toml);
    ctx.run(["action"]).assert_status(1);
    let outputs = std::fs::read_to_string(ctx.path().join("github_output")).expect("outputs");
    assert_eq!(outputs, "version=2.0.0\ngates_passed=false\n");
}

#[test]
fn config_problems_become_annotations_at_their_position() {
    let toml = RELEASE_TOML.replace("hub-repo", "hub-rpo");
    let ctx = action_context(&toml);
    let run = ctx.run(["action"]);
    run.assert_status(2)
        .assert_stdout_contains("::error file=release.toml,line=3,col=1::unknown key `hub-rpo` in `model` (hint: did you mean `hub-repo`?)");
}

#[test]
fn inputs_are_validated_strictly() {
    let ctx = action_context(RELEASE_TOML).env("TINYDIT_RELEASE_DRY_RUN", "yes");
    ctx.run(["action"])
        .assert_status(2)
        .assert_stderr_contains("action input `dry_run` = `yes` is not `true` or `false`");
    let ctx = action_context(RELEASE_TOML).env("TINYDIT_RELEASE_COMMAND", "publish");
    ctx.run(["action"])
        .assert_status(2)
        .assert_stderr_contains("`publish` is not built yet");
}
