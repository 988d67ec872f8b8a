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
fn release_toml(gates: &str, extra: &str) -> String {
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
val_accuracy = {{ file = "validation_report.json", path = "results.val_accuracy" }}

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
        .assert_stderr_contains("refused: 1 problem(s) block the release");
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
    tinydit_release::artifacts::convert::hex(&sha2::Sha256::digest(bytes))
}

#[test]
fn card_renders_from_the_configuration_alone() {
    let ctx = context(&release_toml(PASSING_GATES, ""));
    let run = ctx.run(["card", "-o", "README.md"]);
    run.assert_status(0);
    let readme = std::fs::read_to_string(ctx.path().join("README.md")).expect("card");
    assert!(card::validate(&readme).is_empty());
    assert!(readme.contains("# TinyDiT fixture"));
    assert!(readme.contains("| fid | 42.3 |"), "{readme}");
    // Nothing was sampled, so there is no gallery or class images to link.
    assert!(card::image_links(&readme).is_empty(), "{readme}");

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
