//! `tinydit-release action`: the container entrypoint as the runner drives it. A simulated runner:
//! the `INPUT_*` variables it sets from `with:`, `GITHUB_*` variables, an event payload, and the
//! `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY` files; assertions on the workflow commands printed, the
//! outputs and the summary.

use std::fmt::Write as _;

use crate::common::{Run, TestContext, repo_root, require_ort};

fn action_context(toml: &str) -> TestContext {
    TestContext::new()
        .fixture("tinydit")
        .file("release.toml", toml)
        .env("ORT_DYLIB_PATH", require_ort().display().to_string())
        .env("GITHUB_ACTIONS", "true")
        .env("INPUT_COMMAND", "check")
        .env("INPUT_CONFIG", "release.toml")
        .env("INPUT_OUT", "out")
        .env("INPUT_DRY_RUN", "false")
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

fn read(ctx: &TestContext, file: &str) -> String {
    std::fs::read_to_string(ctx.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// No line of the log is a workflow command except the ones the tool means to print.
#[track_caller]
fn assert_only_commands(run: &Run, allowed: &[&str]) {
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        if let Some(rest) = line.trim_start().strip_prefix("::") {
            let command = rest.split([' ', ':']).next().unwrap_or_default();
            assert!(
                allowed.contains(&command),
                "unexpected workflow command {line:?}\n{}",
                run.stdout
            );
        }
    }
}

#[test]
fn check_writes_outputs_and_the_step_summary() {
    let ctx = action_context(RELEASE_TOML);
    let run = ctx.run(["action"]);
    run.assert_status(0)
        .assert_stdout_contains("::group::tinydit-release check")
        .assert_stdout_contains("::endgroup::");
    // The plan of what would change is an output too, in the heredoc form.
    let outputs = read(&ctx, "github_output");
    assert!(
        outputs.starts_with("version=2.0.0\ngates_passed=true\nplan_json<<ghadelimiter_"),
        "{outputs}"
    );
    let delimiter = outputs
        .lines()
        .nth(2)
        .and_then(|l| l.strip_prefix("plan_json<<"))
        .expect("delimiter");
    let json = outputs
        .split(&format!("<<{delimiter}\n"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("\n{delimiter}\n")).next())
        .expect("heredoc body");
    let plan: serde_json::Value = serde_json::from_str(json).expect("plan_json is JSON");
    assert_eq!(plan["version"], "2.0.0");
    let summary = read(&ctx, "step_summary.md");
    assert!(
        summary.contains("tinydit.safetensors"),
        "the plan's files\n{summary}"
    );
    assert!(
        summary.contains("| `checkpoint.nan_count` | max | 0 | 0 | pass |"),
        "{summary}"
    );
    assert!(
        summary.contains("The bundle is in `out/bundle`"),
        "{summary}"
    );
    assert!(
        !summary.contains("data:"),
        "GitHub strips data: URIs\n{summary}"
    );
    assert!(ctx.path().join("out/bundle/tinydit.safetensors").is_file());
    assert_only_commands(&run, &["group", "endgroup"]);
}

/// `with:` wins: inputs are read from `INPUT_*`, so a job-level `env:` of any other name (the
/// variables action.yml used to map) changes nothing.
#[test]
fn inputs_come_from_input_variables() {
    let ctx = action_context(RELEASE_TOML)
        .env("TINYDIT_RELEASE_CONFIG", "elsewhere.toml")
        .env("TINYDIT_RELEASE_COMMAND", "publish");
    ctx.run(["action"]).assert_status(0);
}

#[test]
fn a_refused_gate_is_an_annotation_at_its_entry() {
    let toml = RELEASE_TOML.replace(
        "metric = \"checkpoint.nan_count\"\nmax = 0",
        "metric = \"checkpoint.step\"\nmin = 1000000",
    );
    let ctx = action_context(&toml);
    let run = ctx.run(["action"]);
    run.assert_status(1).assert_stdout_contains(
        "::error file=release.toml,line=14,col=1,title=gate `checkpoint.step` min (#1)::`checkpoint.step` = 900 (min 1000000)",
    );
    assert!(read(&ctx, "github_output").starts_with("version=2.0.0\ngates_passed=false\n"));
}

#[test]
fn config_problems_become_annotations_at_their_position_with_outputs_and_summary() {
    let toml = RELEASE_TOML.replace("hub-repo", "hub-rpo");
    let ctx = action_context(&toml);
    let run = ctx.run(["action"]);
    run.assert_status(2).assert_stdout_contains(
        "::error file=release.toml,line=3,col=1,title=release.toml::unknown key `hub-rpo` in `model` (hint: did you mean `hub-repo`?)",
    );
    // Outputs and the summary are written on every exit.
    assert_eq!(read(&ctx, "github_output"), "gates_passed=false\n");
    assert!(read(&ctx, "step_summary.md").contains("## tinydit-release: error"));
}

#[test]
fn inputs_are_validated_strictly_and_still_leave_outputs() {
    let ctx = action_context(RELEASE_TOML).env("INPUT_DRY_RUN", "yes");
    let run = ctx.run(["action"]);
    run.assert_status(2)
        .assert_stderr_contains("action input `dry_run` = `yes` is not `true` or `false`")
        .assert_stdout_contains("::error title=tinydit-release::action input `dry_run`");
    assert_eq!(read(&ctx, "github_output"), "gates_passed=false\n");
}

/// Tokens are masked before anything else is printed and never appear anywhere else: not in the
/// log, the outputs, the summary or the files written.
#[test]
fn tokens_are_masked_first_and_appear_nowhere_else() {
    const HF: &str = "hf_SECRETvalue123";
    const GH: &str = "ghs_OTHERsecret456";
    let ctx = action_context(RELEASE_TOML)
        .env("INPUT_HF_TOKEN", HF)
        .env("INPUT_GITHUB_TOKEN", GH)
        .env("HF_TOKEN", "hf_fromTheEnvironment");
    let run = ctx.run(["action"]);
    run.assert_status(0);
    let first: Vec<&str> = run.stdout.lines().take(3).collect();
    assert!(
        first.contains(&"::add-mask::hf_fromTheEnvironment"),
        "{first:?}"
    );
    assert!(
        first.contains(&format!("::add-mask::{HF}").as_str()),
        "{first:?}"
    );
    assert!(
        first.contains(&format!("::add-mask::{GH}").as_str()),
        "{first:?}"
    );
    let rest: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .chain(run.stderr.lines())
        .collect::<Vec<_>>()
        .join("\n");
    for secret in [HF, GH, "hf_fromTheEnvironment"] {
        assert!(!rest.contains(secret), "{secret} leaked:\n{rest}");
        for file in walk(ctx.path()) {
            let bytes = std::fs::read(&file).expect("read");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                file.display()
            );
        }
    }
}

#[test]
fn publishing_on_a_pull_request_is_refused() {
    let ctx = action_context(RELEASE_TOML)
        .env("INPUT_COMMAND", "publish")
        .env("GITHUB_EVENT_NAME", "pull_request");
    let run = ctx.run(["action"]);
    run.assert_status(2).assert_stdout_contains(
        "::error title=tinydit-release::publishing is refused on `pull_request` events",
    );
    assert!(!ctx.path().join("out").exists(), "nothing ran");
}

/// Issue 14: the action refuses `publish` on every event the command line refuses, with the
/// same rule (one function) and the same message.
#[test]
fn publishing_is_refused_on_every_pull_request_event() {
    for event in tinydit_release::publish::PULL_REQUEST_EVENTS {
        let ctx = action_context(RELEASE_TOML)
            .env("INPUT_COMMAND", "publish")
            .env("GITHUB_EVENT_NAME", *event);
        let run = ctx.run(["action"]);
        run.assert_status(2).assert_stdout_contains(&format!(
            "::error title=tinydit-release::publishing is refused on `{event}` events"
        ));
        assert!(!ctx.path().join("out").exists(), "{event}: nothing ran");
    }
}

/// A pull request's provenance is its head commit from the event payload, not the merge commit
/// in `GITHUB_SHA`.
#[test]
fn pull_request_provenance_uses_the_head_commit() {
    const HEAD: &str = "1111111111111111111111111111111111111111";
    const MERGE: &str = "2222222222222222222222222222222222222222";
    let event = format!(
        r#"{{"pull_request": {{"number": 7,
            "head": {{"sha": "{HEAD}", "repo": {{"full_name": "fork/tinydit", "fork": true}}}},
            "base": {{"sha": "3333333333333333333333333333333333333333", "repo": {{"full_name": "d-oit/tinydit"}}}}}}}}"#
    );
    let ctx = action_context(RELEASE_TOML)
        .file("event.json", event)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", "event.json")
        .env("GITHUB_SHA", MERGE);
    ctx.run(["action"]).assert_status(0);
    let report: serde_json::Value =
        serde_json::from_str(&read(&ctx, "out/report.json")).expect("report");
    assert_eq!(report["source"]["commit"], HEAD);
    let summary = read(&ctx, "step_summary.md");
    assert!(
        summary.contains(&format!("pull request head `{HEAD}` (from a fork)")),
        "{summary}"
    );
    let card = read(&ctx, "out/bundle/README.md");
    assert!(card.contains(HEAD) && !card.contains(MERGE), "{card}");
}

/// Untrusted text (a config value echoed in a message) cannot end an annotation and start
/// another command.
#[test]
fn annotations_escape_untrusted_text() {
    let toml = RELEASE_TOML.replace(
        "metric = \"checkpoint.nan_count\"",
        "metric = \"x\\n::add-mask::gates\\r\\n::error::forged\"",
    );
    let ctx = action_context(&toml);
    let run = ctx.run(["action"]);
    run.assert_status(2);
    assert_only_commands(&run, &["group", "endgroup", "error"]);
    assert!(
        run.stdout
            .contains("x\\n::add-mask::gates\\r\\n::error::forged"),
        "{}",
        run.stdout
    );
}

/// More failures than GitHub shows per step: the summary lists every one.
#[test]
fn past_ten_annotations_the_summary_lists_them_all() {
    let mut toml = RELEASE_TOML.to_owned();
    for i in 0..12 {
        let _ = write!(
            toml,
            "\n[[gate]]\nmetric = \"checkpoint.step\"\nmin = {}\n",
            1_000_000 + i
        );
    }
    let ctx = action_context(&toml);
    let run = ctx.run(["action"]);
    run.assert_status(1);
    assert_eq!(run.stdout.matches("::error file=release.toml").count(), 12);
    let summary = read(&ctx, "step_summary.md");
    assert!(summary.contains("### All 12 annotations"), "{summary}");
    assert_eq!(
        summary.matches("- **error** `release.toml:").count(),
        12,
        "{summary}"
    );
}

/// `command: scan` finds checkpoints by pattern, annotates findings, writes SARIF that validates
/// against the SARIF 2.1.0 schema, and exits with the worst result.
#[test]
fn scan_writes_sarif_that_code_scanning_accepts() {
    let ctx = TestContext::new()
        .fixture_file("checkpoints/tied.pt", "weights/clean.pt")
        .fixture_file(
            "checkpoints/mal_posix_system.pt",
            "weights/sub/bad model.pth",
        )
        .fixture_file("checkpoints/mal_builtin_eval.pt", "other.ckpt")
        .env("INPUT_COMMAND", "scan")
        .env("INPUT_FILES", "**/*.pt **/*.pth **/*.ckpt")
        .env("INPUT_SARIF", "checkpoints.sarif")
        .env("GITHUB_OUTPUT", "github_output")
        .env("GITHUB_STEP_SUMMARY", "step_summary.md");
    let run = ctx.run(["action"]);
    run.assert_status(1).assert_stdout_contains(
        "::error file=weights/sub/bad model.pth,line=1,col=1,title=dangerous checkpoint content::",
    );
    assert!(read(&ctx, "github_output").contains("scanned=3\n"));
    let sarif: serde_json::Value =
        serde_json::from_str(&read(&ctx, "checkpoints.sarif")).expect("sarif is JSON");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(|r| {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "weights/sub/bad%20model.pth"
    }));
    crate::common::validate_sarif(&ctx.path().join("checkpoints.sarif"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn action_yml_runs_the_dockerfile_on_main() {
    let text = std::fs::read_to_string(repo_root().join("action.yml")).expect("action.yml");
    assert!(
        text.contains("\n  image: Dockerfile\n"),
        "main builds the Dockerfile"
    );
}

/// `command: plan` after an earlier `check` step: no token (a fork's pull request), the plan from
/// the bundle alone as the `plan_json` output and in the summary.
#[test]
fn plan_runs_from_the_bundle_an_earlier_step_built() {
    let ctx = action_context(RELEASE_TOML);
    ctx.run(["action"]).assert_status(0);
    std::fs::remove_file(ctx.path().join("github_output")).expect("rm");
    std::fs::remove_file(ctx.path().join("step_summary.md")).expect("rm");
    let ctx = ctx.env("INPUT_COMMAND", "plan");
    let run = ctx.run(["action"]);
    run.assert_status(0)
        .assert_stdout_contains("::group::tinydit-release plan");
    let outputs = read(&ctx, "github_output");
    assert!(outputs.starts_with("plan_json<<ghadelimiter_"), "{outputs}");
    assert!(outputs.contains("\"version\": \"2.0.0\""), "{outputs}");
    let summary = read(&ctx, "step_summary.md");
    assert!(summary.contains("tinydit.safetensors"), "{summary}");
}
