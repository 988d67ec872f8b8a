//! `tinydit-release check`: the whole release, offline, on a copy of the TinyDiT fixtures.
//!
//! Each test writes its own release.toml next to a copy of `tests/fixtures/tinydit/`, runs the
//! real binary (real conversion, real ONNX Runtime) and asserts on the exit code, the messages,
//! and the files written: the bundle, `manifest.json`, `report.json` and `summary.md`.

use std::path::Path;

use crate::common::{Run, TINYDIT_CLASSES, TestContext, require_ort};
use tinydit_release::card;

/// A complete release.toml over the fixture files; `gates` replaces the gate list and `extra`
/// is appended.
pub(crate) fn release_toml(gates: &str, extra: &str) -> String {
    format!(
        r#"[model]
name = "TinyDiT fixture"
hub-repo = "someone/tinydit-fixture"
license = "apache-2.0"
pipeline-tag = "unconditional-image-generation"
library-name = "onnx"
tags = ["diffusion-transformer"]
datasets = ["oxford-iiit-pet"]

[version]
from = "config"
value = "1.2.0"

[[checkpoint]]
path = "checkpoints/tinydit_final.pt"
weights = "ema"
output = "tinydit.safetensors"

[[onnx]]
path = "onnx/generator.onnx"
role = "generator"

[[onnx]]
path = "onnx/classifier_ext.onnx"
role = "classifier"

[generator]
image-size = 32
classes = {TINYDIT_CLASSES}
uncond-class = 12
inputs = {{ label = "breed" }}
steps = 4

[classifier]
image-size = 64
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
labels = ["cat", "other"]
expect = "cat"

[smoke]
seed = 7

[smoke.golden]
inputs = "golden/inputs.safetensors"
outputs = "golden/outputs.safetensors"

[metrics]
fid = {{ file = "evaluation_report.json", path = "fid" }}
val_accuracy = {{ file = "validation_report.json", path = "results.val_accuracy", description = "the classifier's accuracy on held-out images" }}

[card]
eval-dataset = {{ name = "Oxford-IIIT Pet", type = "oxford-iiit-pet" }}
eval-metrics = ["fid"]

[bundle]
include = ["inference.py", "requirements.txt"]

{gates}
{extra}
"#
    )
}

const PASSING_GATES: &str = r#"
[[gate]]
metric = "fid"
max = 50.0

[[gate]]
metric = "smoke.classifier_agreement"
min = 0.8
"#;

fn context(toml: &str) -> TestContext {
    let ort = require_ort();
    TestContext::new()
        .fixture("tinydit")
        .file("release.toml", toml)
        .env("ORT_DYLIB_PATH", ort.display().to_string())
        // A fixed commit, so the card's provenance line is stable.
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
}

fn check(ctx: &TestContext, extra_args: &[&str]) -> Run {
    let mut args = vec!["check", "--out", "out"];
    args.extend_from_slice(extra_args);
    ctx.run(args)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn check_builds_a_complete_bundle_and_passes() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    let run = check(&ctx, &[]);
    run.assert_status(0).assert_stderr_contains("Passed");
    let out = ctx.path().join("out");
    let bundle = out.join("bundle");
    for file in [
        "README.md",
        "tinydit.safetensors",
        "config.json",
        "generation_config.json",
        "metrics.json",
        "onnx/generator.onnx",
        "onnx/classifier_ext.onnx",
        // External data travels with its model, under the name the model refers to.
        "onnx/classifier_ext.onnx.data",
        "samples/grid.png",
        "inference.py",
        "requirements.txt",
    ] {
        assert!(bundle.join(file).is_file(), "missing {file} in the bundle");
    }

    // The manifest lists exactly the bundle's files with their real digests.
    let manifest = read_json(&out.join("manifest.json"));
    let files = manifest["files"].as_array().expect("files");
    let on_disk = walk(&bundle);
    assert_eq!(files.len(), on_disk.len());
    for entry in files {
        let path = entry["path"].as_str().expect("path");
        let bytes = std::fs::read(bundle.join(path)).expect("listed file exists");
        assert_eq!(entry["bytes"].as_u64(), Some(bytes.len() as u64), "{path}");
        assert_eq!(
            entry["sha256"].as_str(),
            Some(sha256_hex(&bytes).as_str()),
            "{path}"
        );
    }

    // report.json: outcome, metrics from every source, the checks that ran.
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["outcome"], "pass");
    assert_eq!(report["version"], "1.2.0");
    let metrics = &report["metrics"];
    assert_eq!(metrics["fid"], 42.3);
    assert_eq!(metrics["checkpoint.step"], 900.0);
    assert_eq!(metrics["checkpoint.nan_count"], 0.0);
    assert_eq!(metrics["smoke.classifier_agreement"], 1.0);
    assert!(
        metrics["smoke.golden_max_abs_diff"]
            .as_f64()
            .expect("golden")
            < 1e-4
    );
    assert!(
        metrics["artifact.tinydit.safetensors.size_mb"]
            .as_f64()
            .expect("size")
            > 0.1
    );
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    for expected in [
        "finite-weights",
        "smoke:finite",
        "smoke:golden",
        "card",
        "files-exist",
    ] {
        assert!(
            checks.contains(&expected),
            "no `{expected}` check in {checks:?}"
        );
    }

    // The card: front matter valid, model-index equals the measured metric, images exist.
    let readme = std::fs::read_to_string(bundle.join("README.md")).expect("card");
    assert!(
        card::validate(&readme).is_empty(),
        "{:?}",
        card::validate(&readme)
    );
    let front: serde_json::Value =
        serde_yaml_ng::from_str(card::front_matter_of(&readme).expect("front matter"))
            .expect("yaml");
    assert_eq!(
        front["model-index"][0]["results"][0]["metrics"][0]["type"],
        "fid"
    );
    assert_eq!(
        front["model-index"][0]["results"][0]["metrics"][0]["value"],
        metrics["fid"]
    );
    let links = card::image_links(&readme);
    assert_eq!(
        links.iter().filter(|l| l.starts_with("samples/")).count(),
        14
    );
    for link in links {
        assert!(
            bundle.join(&link).is_file(),
            "the card links `{link}`, not in the bundle"
        );
    }

    // metrics.json is what the next release compares against.
    let published = read_json(&bundle.join("metrics.json"));
    assert_eq!(published["version"], "1.2.0");
    assert_eq!(published["metrics"]["fid"], 42.3);

    // The step summary stays small and names the gates.
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    assert!(summary.len() < 1024 * 1024);
    assert!(
        summary.contains("| `fid` | max | 42.3 | 50 | pass |"),
        "{summary}"
    );
}

#[test]
fn the_card_matches_its_snapshot() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    check(&ctx, &[]).assert_status(0);
    let readme = std::fs::read_to_string(ctx.path().join("out/bundle/README.md")).expect("card");
    insta::with_settings!({filters => vec![
        // Timings vary from run to run; float results and PNG sizes from CPU to CPU.
        (r"(latency[^|]*\| )[0-9.e-]+", "$1[MS]"),
        (r"(max abs difference \| )[0-9.e-]+", "$1[DIFF]"),
        (r"(images\)` \| )[0-9.]+ kB", "$1[SIZE]"),
        (r"(year = \{)\d{4}", "$1[YEAR]"),
        (r"(-)\d{4}(,\n)", "$1[YEAR]$2"),
        (r"tinydit-release \d+\.\d+\.\d+", "tinydit-release [VERSION]"),
    ]}, {
        insta::assert_snapshot!(readme);
    });
}

#[test]
fn a_failed_gate_refuses_with_exit_1_and_still_writes_the_report() {
    let gates = r#"
[[gate]]
metric = "fid"
max = 40.0

[[gate]]
metric = "checkpoint.step"
min = 1000
severity = "warn"
"#;
    let ctx = context(&release_toml(gates, ""));
    let run = check(&ctx, &[]);
    run.assert_status(1)
        .assert_stderr_contains("gate `fid` max failed: `fid` = 42.3 (max 40)")
        .assert_stderr_contains("error: refused: 1 problem(s) block the release");
    assert!(!run.stderr.contains("warning: refused"), "{}", run.stderr);
    let report = read_json(&ctx.path().join("out/report.json"));
    assert_eq!(report["outcome"], "refused");
    assert_eq!(report["refusals"].as_array().map(Vec::len), Some(1));
    let results = report["gates"]["results"].as_array().expect("results");
    assert_eq!(results[0]["verdict"], "fail");
    assert_eq!(results[0]["blocking"], true);
    // The warn gate failed too, but does not block.
    assert_eq!(results[1]["verdict"], "fail");
    assert_eq!(results[1]["blocking"], false);
    assert!(ctx.path().join("out/bundle/README.md").is_file());
}

#[test]
fn regression_gates_compare_with_the_baseline() {
    let gates = r#"
[[gate]]
metric = "fid"
max-regression = 2.0
"#;
    let ctx = context(&release_toml(gates, ""))
        .file(
            "previous/metrics.json",
            r#"{"version": "1.1.0", "metrics": {"fid": 40.0}}"#,
        )
        .file(
            "better/metrics.json",
            r#"{"version": "1.1.0", "metrics": {"fid": 41.0}}"#,
        );
    // 42.3 against 40: worse by 2.3, allowed 2.
    check(&ctx, &["--baseline", "previous/metrics.json"])
        .assert_status(1)
        .assert_stderr_contains("`fid` = 42.3 against 40 before: worse by 2.3 (allowed 2)");
    let run = check(&ctx, &["--baseline", "better/metrics.json", "--json"]);
    run.assert_status(0);
    // `--json` prints the same report on stdout.
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    assert_eq!(printed["baseline"]["fid"], 41.0);
    assert_eq!(printed["gates"]["results"][0]["verdict"], "pass");
    // Without any baseline the gate cannot pass silently.
    check(&ctx, &[])
        .assert_status(1)
        .assert_stderr_contains("no previous release to compare with");
}

#[test]
fn a_missing_baseline_passes_only_when_allowed() {
    let gates = r#"
[[gate]]
metric = "fid"
max-regression-pct = 5
allow-missing-baseline = true
"#;
    let ctx = context(&release_toml(gates, ""));
    check(&ctx, &[]).assert_status(0);
    let report = read_json(&ctx.path().join("out/report.json"));
    assert_eq!(report["gates"]["results"][0]["verdict"], "pass");
}

#[test]
fn an_error_leaves_no_partial_bundle() {
    let toml = release_toml(PASSING_GATES, "").replace("path = \"fid\"", "path = \"results.fid\"");
    let ctx = context(&toml);
    check(&ctx, &[]).assert_status(2).assert_stderr_contains(
        "metric path `results.fid` in `evaluation_report.json` does not exist",
    );
    let out = ctx.path().join("out");
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_malicious_checkpoint_refuses_the_release() {
    let toml = release_toml(PASSING_GATES, "")
        .replace("checkpoints/tinydit_final.pt", "mal.pt")
        .replace("weights = \"ema\"", "weights = \"auto\"");
    let ctx = context(&toml);
    std::fs::copy(
        crate::common::fixture_path("checkpoints/mal_posix_system.pt"),
        ctx.path().join("mal.pt"),
    )
    .expect("copy");
    let run = check(&ctx, &[]);
    run.assert_status(1).assert_stderr_contains("posix.system");
    assert!(!ctx.path().join("out/bundle/tinydit.safetensors").exists());
    let markers: Vec<_> = std::fs::read_dir("/tmp")
        .expect("list /tmp")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("tinydit-pwned"))
        .collect();
    assert!(markers.is_empty(), "a payload ran: {markers:?}");
}

#[test]
fn a_card_template_with_metadata_the_hub_rejects_is_refused() {
    let template =
        "---\n{{ front_matter }}pipeline_tag: image-generation\n---\n# {{ model.name }}\n";
    let toml =
        release_toml(PASSING_GATES, "").replace("[card]\n", "[card]\ntemplate = \"card.md.j2\"\n");
    let ctx = context(&toml).file("card.md.j2", template);
    let run = check(&ctx, &[]);
    run.assert_status(1)
        .assert_stderr_contains("check `card` failed")
        .assert_stderr_contains("image-generation");
}

#[test]
fn a_card_template_typo_is_an_error_naming_the_template() {
    let toml =
        release_toml(PASSING_GATES, "").replace("[card]\n", "[card]\ntemplate = \"card.md.j2\"\n");
    let ctx = context(&toml).file(
        "card.md.j2",
        "---\n{{ front_matter }}---\n# {{ model.nmae }}\n",
    );
    check(&ctx, &[])
        .assert_status(2)
        .assert_stderr_contains("card.md.j2")
        .assert_stderr_contains("undefined");
    assert!(!ctx.path().join("out/bundle").exists());
}

#[test]
fn hub_metadata_mistakes_are_config_errors_with_suggestions() {
    let toml = release_toml(PASSING_GATES, "")
        .replace("license = \"apache-2.0\"", "license = \"apache2.0\"")
        .replace(
            "pipeline-tag = \"unconditional-image-generation\"",
            "pipeline-tag = \"image-generation\"",
        );
    let ctx = context(&toml);
    check(&ctx, &[])
        .assert_status(2)
        .assert_stderr_contains("release.toml:4:11: `model.license` = `apache2.0` is not a license id the Hub accepts")
        .assert_stderr_contains("did you mean `apache-2.0`?")
        .assert_stderr_contains("release.toml:5:16: `model.pipeline-tag` = `image-generation` is not a Hub pipeline tag")
        .assert_stderr_contains("unconditional-image-generation");
}

#[test]
fn a_gate_on_an_unknown_metric_lists_the_known_ones() {
    let gates = "[[gate]]\nmetric = \"smoke.latency_p99\"\nmax = 5\n";
    let ctx = context(&release_toml(gates, ""));
    check(&ctx, &[])
        .assert_status(2)
        .assert_stderr_contains("`gate[0].metric` = `smoke.latency_p99` is not a known metric");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    tinydit_release::digest::hex(&sha2::Sha256::digest(bytes))
}

#[test]
fn card_renders_from_the_configuration_alone() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    let run = ctx.run(["card", "-o", "README.md"]);
    run.assert_status(0);
    let readme = std::fs::read_to_string(ctx.path().join("README.md")).expect("card");
    assert!(card::validate(&readme).is_empty());
    assert!(readme.contains("# TinyDiT fixture"));
    assert!(
        readme.contains("| fid | 42.3 | reported by `evaluation_report.json` |"),
        "{readme}"
    );
    // Nothing was sampled, so there is no gallery or class images to link, and the card says
    // what it lacks instead of passing for a release's card.
    assert!(card::image_links(&readme).is_empty(), "{readme}");
    assert!(readme.contains("> **Preview.**"), "{readme}");
    assert!(
        readme.contains("sample images and the measured performance"),
        "{readme}"
    );
    run.assert_stderr_contains("warning: this card is a preview");

    // To stdout by default.
    let run = ctx.run(["card"]);
    run.assert_status(0).assert_stdout_contains("model-index:");
}

/// The official `huggingface_hub` client is the independent judge of the card's metadata: it
/// must read the same eval results we measured, and writing its own `ModelCardData` from what
/// it read must give back exactly our front matter.
#[test]
fn huggingface_hub_reads_the_card_as_we_wrote_it() {
    const JUDGE: &str = r#"
import json, sys
from huggingface_hub import ModelCard, ModelCardData
card = ModelCard.load(sys.argv[1])
data = card.data
again = ModelCardData(**data.to_dict()).to_dict()
print(json.dumps({
    "license": data.license,
    "pipeline_tag": data.pipeline_tag,
    "library_name": data.library_name,
    "eval": [[r.task_type, r.dataset_type, r.dataset_name, r.metric_type, r.metric_value]
             for r in data.eval_results or []],
    "roundtrip": again,
}))
"#;
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").expect(
        "TINYDIT_RELEASE_PYTHON must name a Python with huggingface_hub; `make test` sets it",
    );
    let ctx = context(&release_toml(PASSING_GATES, ""));
    check(&ctx, &[]).assert_status(0);
    let readme_path = ctx.path().join("out/bundle/README.md");
    let output = std::process::Command::new(python)
        .args(["-c", JUDGE])
        .arg(&readme_path)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "huggingface_hub failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let judged: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(judged["license"], "apache-2.0");
    assert_eq!(judged["pipeline_tag"], "unconditional-image-generation");
    assert_eq!(judged["library_name"], "onnx");
    let report = read_json(&ctx.path().join("out/report.json"));
    assert_eq!(
        judged["eval"],
        serde_json::json!([[
            "unconditional-image-generation",
            "oxford-iiit-pet",
            "Oxford-IIIT Pet",
            "fid",
            report["metrics"]["fid"]
        ]])
    );
    let readme = std::fs::read_to_string(&readme_path).expect("card");
    let ours: serde_json::Value =
        serde_yaml_ng::from_str(card::front_matter_of(&readme).expect("front matter"))
            .expect("yaml");
    assert_eq!(judged["roundtrip"], ours);
}

/// Issue 8: a closed stdout and stderr (`check ... 2>&1 | head -3`) must neither panic nor stop
/// the work: the bundle is still written.
#[test]
fn closed_output_pipes_do_not_stop_check() {
    use std::process::Stdio;
    let ctx = context(&release_toml(PASSING_GATES, ""));
    let mut child = ctx
        .command(["check", "--out", "out", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the read ends at once: every write the tool makes fails with EPIPE.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(ctx.path().join("out/bundle/README.md").is_file());
    assert!(ctx.path().join("out/report.json").is_file());
}

/// Issue 8: temporaries of our naming left by a killed run are removed by the next run; other
/// files stay.
#[test]
fn stale_temporaries_of_a_dead_run_are_removed() {
    let ctx = context(&release_toml(PASSING_GATES, ""))
        .file("out/.tinydit-release-999999999-abc123.tmp", "half a file")
        .file("out/.bundle-999999999-xyz/README.md", "half a bundle")
        .file("out/notes.tmp", "the user's");
    check(&ctx, &[]).assert_status(0);
    let out = ctx.path().join("out");
    assert!(!out.join(".tinydit-release-999999999-abc123.tmp").exists());
    assert!(!out.join(".bundle-999999999-xyz").exists());
    assert!(out.join("notes.tmp").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Issue 8: an `--out` that is a file, a symlink, or whose `bundle` is a symlink is refused
/// before any work, and nothing is written through the link.
#[test]
fn out_that_is_a_file_or_a_symlink_is_refused_before_any_work() {
    let ctx = context(&release_toml(PASSING_GATES, "")).file("out-file", "x");
    ctx.run(["check", "--out", "out-file"])
        .assert_status(2)
        .assert_stderr_contains("`out-file` exists and is not a folder");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(elsewhere.path(), ctx.path().join("out-link")).expect("symlink");
    let run = ctx.run(["check", "--out", "out-link"]);
    run.assert_status(2).assert_stderr_contains("is a symlink");
    assert!(!run.stderr.contains("Converting"), "{}", run.stderr);
    std::fs::create_dir(ctx.path().join("out")).expect("mkdir");
    std::os::unix::fs::symlink(elsewhere.path(), ctx.path().join("out/bundle")).expect("symlink");
    check(&ctx, &[])
        .assert_status(2)
        .assert_stderr_contains("the bundle folder");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("list").count(),
        0
    );
}

/// Issue 8: a bad `--version` names the flag, not a position in release.toml.
#[test]
fn a_bad_version_flag_is_named_as_the_flag() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    let run = check(&ctx, &["--version", "one.two"]);
    run.assert_status(2)
        .assert_stderr_contains("`--version` = `one.two` is not a semantic version");
    assert!(!run.stderr.contains("release.toml:1:1"), "{}", run.stderr);
}

/// Issue 8: a card template that loops or builds huge strings stops with an error at its line
/// instead of hanging or exhausting memory.
#[test]
fn a_card_template_that_does_too_much_work_stops_at_its_line() {
    let toml =
        release_toml(PASSING_GATES, "").replace("[card]\n", "[card]\ntemplate = \"card.md.j2\"\n");
    for (template, line) in [
        (
            "---\n{{ front_matter }}---\n# x\n{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}\n",
            4,
        ),
        (
            "---\n{{ front_matter }}---\n\n\n{% set s = \"x\" * 100000000 %}{{ s }}\n",
            5,
        ),
        (
            "---\n{{ front_matter }}---\n{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}\n",
            3,
        ),
    ] {
        let ctx = context(&toml).file("card.md.j2", template);
        let run = ctx.run_with_timeout(["card"], std::time::Duration::from_mins(1));
        run.assert_status(2)
            .assert_stderr_contains("the card template `card.md.j2` failed to render at line");
        assert!(
            run.stderr.contains(&format!("at line {line}")),
            "expected line {line}\n{}",
            run.stderr
        );
    }
}

/// Issue 8: a dirty work tree is recorded as "commit X with uncommitted changes", in the report
/// and on the card; untracked files (artifacts downloaded by earlier steps) do not count.
#[test]
fn a_dirty_work_tree_is_recorded_as_such() {
    let ctx = context(&release_toml(PASSING_GATES, "")).without_env("GITHUB_SHA");
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(ctx.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "fixture"]);
    std::fs::write(ctx.path().join("downloaded.bin"), b"untracked").expect("write");
    check(&ctx, &[]).assert_status(0);
    let report = read_json(&ctx.path().join("out/report.json"));
    assert_eq!(report["source"]["dirty"], false, "{report}");
    let commit = report["source"]["commit"]
        .as_str()
        .expect("commit")
        .to_owned();
    assert_eq!(commit.len(), 40);

    let toml = std::fs::read_to_string(ctx.path().join("release.toml")).expect("read");
    std::fs::write(
        ctx.path().join("release.toml"),
        format!("{toml}\n# edited\n"),
    )
    .expect("write");
    check(&ctx, &[]).assert_status(0);
    let report = read_json(&ctx.path().join("out/report.json"));
    assert_eq!(report["source"]["dirty"], true, "{report}");
    assert_eq!(report["source"]["commit"], commit.as_str());
    let readme = std::fs::read_to_string(ctx.path().join("out/bundle/README.md")).expect("card");
    assert!(
        readme.contains(&format!(
            "from commit `{commit}` **with uncommitted changes**"
        )),
        "{readme}"
    );
}

/// Issue 8: `card -o` naming an existing folder gets a plain message, before any work.
#[test]
fn card_output_that_is_a_folder_is_refused() {
    let ctx = context(&release_toml(PASSING_GATES, "")).file("docs/keep.md", "x");
    ctx.run(["card", "-o", "docs"])
        .assert_status(2)
        .assert_stderr_contains("`-o` `docs` is a folder");
}

/// Same inputs, same bytes: two `check` runs give byte-identical bundles except the two files
/// that carry the smoke test's latencies (README.md's performance table and `metrics.json`), and
/// the same release identity, manifest order and file list. See: issue "Same inputs, same
/// release".
#[test]
fn two_checks_of_the_same_inputs_give_the_same_bytes() {
    const MEASURED: &[&str] = &["README.md", "metrics.json"];
    let ctx = context(&release_toml(PASSING_GATES, ""));
    ctx.run(["check", "--out", "first"]).assert_status(0);
    ctx.run(["check", "--out", "second"]).assert_status(0);
    let first = ctx.path().join("first");
    let second = ctx.path().join("second");
    let relative = |root: &Path| {
        let mut files: Vec<String> = walk(&root.join("bundle"))
            .iter()
            .map(|p| {
                p.strip_prefix(root.join("bundle"))
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        files
    };
    let files = relative(&first);
    assert_eq!(files, relative(&second));
    assert!(files.iter().any(|f| f == "release.json"), "{files:?}");
    for file in &files {
        if MEASURED.contains(&file.as_str()) {
            continue;
        }
        if file == "SHA256SUMS" {
            // It lists the measured files' digests too: every other line is the same.
            let lines = |root: &Path| -> Vec<String> {
                std::fs::read_to_string(root.join("bundle/SHA256SUMS"))
                    .expect("read")
                    .lines()
                    .filter(|l| !MEASURED.iter().any(|m| l.ends_with(&format!("  {m}"))))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(lines(&first), lines(&second));
            assert_eq!(lines(&first).len(), files.len() - 1 - MEASURED.len());
            continue;
        }
        let a = std::fs::read(first.join("bundle").join(file)).expect("read");
        let b = std::fs::read(second.join("bundle").join(file)).expect("read");
        assert!(
            a == b,
            "`{file}` differs between two runs of the same inputs"
        );
    }
    let paths = |root: &Path| -> Vec<serde_json::Value> {
        read_json(&root.join("manifest.json"))["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["path"].clone())
            .collect()
    };
    assert_eq!(paths(&first), paths(&second));
    let identity = |root: &Path| read_json(&root.join("manifest.json"))["identity"].clone();
    assert!(
        identity(&first)
            .as_str()
            .is_some_and(|i| i.starts_with("sha256:"))
    );
    assert_eq!(identity(&first), identity(&second));
}

/// The identity names every input: `release.toml`, the checkpoint, both ONNX files with the
/// classifier's external data, the golden files, the metric files and the bundle includes, each
/// with its real sha256.
#[test]
fn the_release_identity_lists_every_input_with_its_digest() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    check(&ctx, &[]).assert_status(0);
    let identity = read_json(&ctx.path().join("out/bundle/release.json"));
    let inputs = identity["inputs"].as_array().expect("inputs");
    let listed: Vec<&str> = inputs
        .iter()
        .map(|i| i["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        listed,
        [
            "checkpoints/tinydit_final.pt",
            "evaluation_report.json",
            "golden/inputs.safetensors",
            "golden/outputs.safetensors",
            "inference.py",
            "onnx/classifier_ext.onnx",
            "onnx/classifier_ext.onnx.data",
            "onnx/generator.onnx",
            "release.toml",
            "requirements.txt",
            "validation_report.json",
        ]
    );
    for input in inputs {
        let path = ctx.path().join(input["path"].as_str().expect("path"));
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(input["sha256"], sha256_hex(&bytes), "{}", path.display());
        assert_eq!(input["bytes"], bytes.len());
    }
    assert_eq!(identity["version"], "1.2.0");
    assert_eq!(
        identity["source"]["commit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
}
