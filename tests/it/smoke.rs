//! `tinydit-release smoke` on the committed TinyDiT fixtures and the bad models of `onnx-bad/`:
//! exit codes 0 (all checks pass), 1 (a check failed, reason printed), 2 (model or config error).

use std::path::Path;
use std::time::Duration;

use crate::common::{TINYDIT_CLASSES, TestContext, png_info, require_ort};

/// A release.toml for the fixture generator at `generator` (relative to the test folder), with
/// extra `[generator]` and `[smoke]` lines and an optional classifier model.
fn release_toml(
    generator: &str,
    generator_extra: &str,
    smoke: &str,
    classifier: Option<&str>,
) -> String {
    let mut text = format!(
        r#"[model]
name = "TinyDiT fixture"
hub-repo = "someone/tinydit"

[[onnx]]
path = "{generator}"
role = "generator"

[generator]
image-size = 32
classes = {TINYDIT_CLASSES}
uncond-class = 12
inputs = {{ label = "breed" }}
steps = 8
{generator_extra}

[smoke]
{smoke}
"#
    );
    if let Some(classifier) = classifier {
        use std::fmt::Write as _;
        write!(
            text,
            r#"
[[onnx]]
path = "{classifier}"
role = "classifier"

[classifier]
image-size = 64
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
labels = ["cat", "other"]
expect = "cat"
"#
        )
        .expect("write to a String");
    }
    text
}

fn smoke(ctx: &TestContext) -> crate::common::Run {
    ctx.run([
        "smoke",
        "--config",
        "release.toml",
        "--out",
        "out",
        "--json",
    ])
}

fn json(run: &crate::common::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.stdout))
}

#[test]
fn every_check_passes_on_the_fixture_and_images_decode_at_the_right_size() {
    require_ort();
    let golden = r#"
[smoke.golden]
inputs = "golden/inputs.safetensors"
outputs = "golden/outputs.safetensors"
"#;
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml(
            "onnx/generator.onnx",
            "",
            &format!("samples-per-class = 2\nbatch-size = 5\n{golden}"),
            Some("onnx/classifier_ext.onnx"),
        ),
    );
    let run = smoke(&ctx);
    run.assert_status(0);
    let report = json(&run);
    assert_eq!(report["provider"], "cpu");
    assert_eq!(report["provider_fallback"], serde_json::Value::Null);
    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name"),
                c["passed"].as_bool().expect("passed"),
            )
        })
        .collect();
    assert_eq!(
        checks,
        [
            ("finite", true),
            ("sample-stats", true),
            ("velocity", true),
            ("conditioning", true),
            ("determinism", true),
            ("latency", true),
            ("golden", true),
            ("classifier", true),
        ]
    );
    let metrics = report["metrics"].as_object().expect("metrics");
    let mut names: Vec<&str> = metrics.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut declared = tinydit_release::config::validate::SMOKE_METRICS.to_vec();
    declared.sort_unstable();
    assert_eq!(
        names, declared,
        "every smoke metric is measured and declared"
    );
    assert_eq!(metrics["smoke.nonfinite_count"], 0.0);
    assert_eq!(metrics["smoke.class_distinct_fraction"], 1.0);
    let effect = metrics["smoke.class_effect_size"].as_f64().expect("f64");
    assert!(effect > 0.5, "a trained model's classes differ: {effect}");
    assert!(metrics["smoke.noise_displacement"].as_f64().expect("f64") > 0.5);
    assert_eq!(report["latency_runs"], 20);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert_eq!(
        report["threads"], cores,
        "smoke.threads defaults to the CPUs this process may use"
    );
    assert!(metrics["smoke.golden_max_abs_diff"].as_f64().expect("f64") < 1e-4);
    assert!(metrics["smoke.classifier_agreement"].as_f64().expect("f64") >= 0.9);
    assert!(report["generator"]["opset"].as_i64().expect("opset") >= 7);
    assert_eq!(report["generator"]["inputs"][0]["name"], "noise");

    let samples = report["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 26);
    assert_eq!(samples[3]["class_name"], "Bengal");
    assert_eq!(samples[3]["index"], 1);
    for sample in samples {
        let png = ctx
            .path()
            .join("out")
            .join(sample["png"].as_str().expect("png"));
        assert_eq!(
            png_info(&png),
            (32, 32, png::ColorType::Rgb),
            "{}",
            png.display()
        );
    }
    let grids = report["grids"].as_array().expect("grids");
    assert_eq!(grids.len(), 14, "one per class and the overall grid");
    let (w_class, h_class, _) = png_info(
        &ctx.path()
            .join("out")
            .join(grids[0]["png"].as_str().expect("png")),
    );
    let (w_all, h_all, _) = png_info(&ctx.path().join("out/grid.png"));
    // 32 px samples are enlarged 4x in grids (nearest-neighbour), so a person can see them.
    assert!(w_class > 2 * 128 && h_class >= 128, "{w_class}x{h_class}");
    assert_eq!(
        w_all,
        w_class.max(w_all),
        "the overall grid is as wide as the widest label"
    );
    assert!(h_all >= 13 * 128, "13 rows of 128 px cells: {h_all}");
    run.assert_stderr_contains(
        "Passed determinism: 21 runs of `Abyssinian` with seed 42 gave identical bytes",
    )
    .assert_stderr_contains("over 20 timed runs after a warm-up");
}

#[test]
fn a_nan_producing_model_is_refused_and_says_nan() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/nan_generator.onnx", "nan_generator.onnx")
        .file(
            "release.toml",
            release_toml("nan_generator.onnx", "", "", None),
        );
    let run = smoke(&ctx);
    run.assert_status(1)
        .assert_stderr_contains("Failed finite: 13 of 13 sample(s) contain NaN or infinite values")
        .assert_stderr_contains("NaN")
        .assert_stderr_contains("the smoke test refused");
    assert_eq!(
        json(&run)["metrics"]["smoke.nonfinite_count"],
        13.0 * 3.0 * 32.0 * 32.0
    );
}

#[test]
fn wrong_io_names_are_refused_naming_expected_and_actual() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/wrong_names.onnx", "wrong_names.onnx")
        .file(
            "release.toml",
            release_toml("wrong_names.onnx", "", "", None),
        );
    smoke(&ctx)
        .assert_status(2)
        .assert_stderr_contains(
            "expected inputs `noise`, `timestep`, `breed`, the model has `x`, `t`, `y`",
        )
        .assert_stderr_contains("expected output `velocity`, the model has `out`")
        .assert_stderr_contains("hint: set the model's names in `[generator.inputs]`");
}

#[test]
fn a_model_that_ignores_the_class_fails_the_conditioning_check() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/ignores_class.onnx", "ignores_class.onnx")
        .file(
            "release.toml",
            release_toml("ignores_class.onnx", "", "", None),
        );
    let run = smoke(&ctx);
    run.assert_status(1)
        .assert_stderr_contains("Failed conditioning: the model (nearly) ignores its class input")
        .assert_stderr_contains("effect size 0.000, needs 0.1")
        .assert_stderr_contains("78 of 78 class pairs give identical samples")
        .assert_stderr_contains("Passed velocity");
    let report = json(&run);
    assert_eq!(report["metrics"]["smoke.class_distinct_fraction"], 0.0);
    assert_eq!(report["metrics"]["smoke.class_effect_size"], 0.0);
}

/// A classifier whose external data points somewhere it must not; the generator is fine.
fn bad_classifier(ctx: TestContext, model: &str, at: &str) -> TestContext {
    ctx.fixture_file("tinydit/onnx/generator.onnx", "generator.onnx")
        .fixture_file(&format!("onnx-bad/{model}"), at)
        .file(
            "release.toml",
            release_toml("generator.onnx", "", "", Some(at)),
        )
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `traversal.onnx` points at `../../secret.bin`. The secret is a named pipe: opening it would
/// block forever (nobody writes to it), so finishing in time proves it was never opened, and the
/// run never touches ONNX Runtime's loader, which would have followed the path.
#[test]
fn external_data_traversal_is_refused_by_name_without_opening_the_target() {
    require_ort();
    let ctx = bad_classifier(
        TestContext::new(),
        "traversal.onnx",
        "a/b/models/traversal.onnx",
    );
    mkfifo(&ctx.path().join("a/secret.bin"));
    let run = ctx.run_with_timeout(
        ["smoke", "--config", "release.toml", "--out", "out"],
        Duration::from_secs(30),
    );
    run.assert_status(2)
        .assert_stderr_contains("`a/b/models/traversal.onnx`: tensor `features.0.weight`")
        .assert_stderr_contains(
            "external data at `../../secret.bin`, which leaves the model's folder",
        )
        .assert_stderr_contains("it was not opened");
    assert!(!ctx.path().join("out").exists(), "refused before sampling");
}

#[test]
fn external_data_through_a_symlink_out_of_the_folder_is_refused_without_opening_it() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("tinydit/onnx/generator.onnx", "generator.onnx")
        .fixture_file(
            "tinydit/onnx/classifier_ext.onnx",
            "models/classifier_ext.onnx",
        )
        .file(
            "release.toml",
            release_toml("generator.onnx", "", "", Some("models/classifier_ext.onnx")),
        );
    mkfifo(&ctx.path().join("secret.fifo"));
    std::os::unix::fs::symlink(
        "../secret.fifo",
        ctx.path().join("models/classifier_ext.onnx.data"),
    )
    .expect("symlink");
    ctx.run_with_timeout(
        ["smoke", "--config", "release.toml", "--out", "out"],
        Duration::from_secs(30),
    )
    .assert_status(2)
    .assert_stderr_contains("`classifier_ext.onnx.data`, a symlink that leaves the model's folder");
}

#[test]
fn absolute_missing_and_short_external_data_are_refused_by_name() {
    require_ort();
    for (model, expected) in [
        (
            "absolute.onnx",
            "external data at `/etc/passwd`, which is absolute; it was not opened",
        ),
        (
            "missing_data.onnx",
            "external data in `missing.onnx.data`, which does not exist next to the model",
        ),
    ] {
        let ctx = bad_classifier(TestContext::new(), model, &format!("models/{model}"));
        let run = smoke(&ctx);
        run.assert_status(2).assert_stderr_contains(expected);
        assert!(
            !run.stderr.contains("root:"),
            "nothing of the target is echoed"
        );
    }
    let ctx = bad_classifier(
        TestContext::new(),
        "short_data.onnx",
        "models/short_data.onnx",
    )
    .fixture_file(
        "onnx-bad/short_data.onnx.data",
        "models/short_data.onnx.data",
    );
    smoke(&ctx)
        .assert_status(2)
        .assert_stderr_contains("of `short_data.onnx.data`, but the file has 7556 bytes");
}

#[test]
fn golden_parity_fails_with_a_tiny_tolerance() {
    require_ort();
    let golden = r#"
[smoke.golden]
inputs = "golden/inputs.safetensors"
outputs = "golden/outputs.safetensors"
atol = 1e-12
rtol = 0.0
"#;
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml("onnx/generator.onnx", "", golden, None),
    );
    let run = smoke(&ctx);
    run.assert_status(1)
        .assert_stderr_contains("Failed golden: `velocity`")
        .assert_stderr_contains("values outside atol 1e-12 + rtol 0e0");
    let diff = json(&run)["metrics"]["smoke.golden_max_abs_diff"]
        .as_f64()
        .expect("f64");
    assert!(diff > 0.0 && diff < 1e-4, "{diff}");
}

#[test]
fn golden_inputs_must_name_every_model_input() {
    require_ort();
    let golden = r#"
[smoke.golden]
inputs = "golden/outputs.safetensors"
outputs = "golden/outputs.safetensors"
"#;
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml("onnx/generator.onnx", "", golden, None),
    );
    smoke(&ctx)
        .assert_status(2)
        .assert_stderr_contains("has no tensor `noise` for the model input of that name");
}

/// The CPU wheel has no CUDA provider: with `require-provider` the run stops with ONNX Runtime's
/// own message instead of silently running on the CPU.
#[test]
fn cuda_required_on_a_cpu_only_library_is_an_error_with_the_runtime_message() {
    require_ort();
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml(
            "onnx/generator.onnx",
            "",
            "providers = [\"cuda\", \"cpu\"]\nrequire-provider = true",
            None,
        ),
    );
    smoke(&ctx)
        .assert_status(2)
        .assert_stderr_contains("the `cuda` execution provider failed to register")
        .assert_stderr_contains("CUDA execution provider is not enabled in this build")
        .assert_stderr_contains("`smoke.require-provider = true` forbids a fallback");
    let only = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml("onnx/generator.onnx", "", "providers = [\"cuda\"]", None),
    );
    smoke(&only)
        .assert_status(2)
        .assert_stderr_contains("no provider is listed after it");
}

#[test]
fn cuda_with_a_cpu_fallback_runs_on_cpu_with_a_warning_and_reports_it() {
    require_ort();
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml(
            "onnx/generator.onnx",
            "",
            "providers = [\"cuda\", \"cpu\"]",
            None,
        ),
    );
    let run = smoke(&ctx);
    run.assert_status(0).assert_stderr_contains(
        "warning: `onnx/generator.onnx` runs on `cpu`, not the first provider in `smoke.providers`: \
         cuda: CUDA execution provider is not enabled in this build",
    );
    let report = json(&run);
    assert_eq!(report["provider"], "cpu");
    assert!(
        report["provider_fallback"]
            .as_str()
            .expect("fallback recorded")
            .contains("CUDA execution provider is not enabled in this build")
    );
}

#[test]
fn a_config_without_a_generator_model_is_an_error() {
    let ctx = TestContext::new().file(
        "release.toml",
        "[model]\nname = \"x\"\nhub-repo = \"a/b\"\n",
    );
    ctx.run(["smoke", "--config", "release.toml"])
        .assert_status(2)
        .assert_stderr_contains("has no `[[onnx]]` entry with `role = \"generator\"`");
}

/// Issue 8 item 9: `smoke --out` that is a symlink or a file is refused before any work, and a
/// symlink inside the folder is replaced by the image, not followed.
#[test]
fn smoke_output_folder_symlinks_and_files_are_refused_or_replaced() {
    require_ort();
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file(
            "release.toml",
            release_toml("onnx/generator.onnx", "", "", None),
        )
        .file("a-file", "x");
    std::fs::create_dir(ctx.path().join("real")).expect("mkdir");
    std::os::unix::fs::symlink(ctx.path().join("real"), ctx.path().join("link")).expect("symlink");
    for (out, expected) in [
        ("link", "--out `link` is a symlink"),
        ("a-file", "--out `a-file` exists and is not a folder"),
    ] {
        let run = ctx.run(["smoke", "--config", "release.toml", "--out", out]);
        run.assert_status(2).assert_stderr_contains(expected);
        assert!(!run.stderr.contains("Checked"), "before any work");
    }
    let victim = ctx.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").expect("write");
    std::fs::create_dir(ctx.path().join("out")).expect("mkdir");
    std::os::unix::fs::symlink(&victim, ctx.path().join("out/grid.png")).expect("symlink");
    smoke(&ctx).assert_status(0);
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep me");
    assert!(
        std::fs::symlink_metadata(ctx.path().join("out/grid.png"))
            .expect("grid")
            .is_file()
    );
}

/// Issue 8 item 5: a generator whose batch axis is fixed to 10^9 would have every call padded to
/// a billion rows; the budget counts the padding and refuses, naming the model and the dimension.
#[test]
fn a_huge_fixed_batch_is_refused_naming_the_model_and_the_dimension() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/huge_batch.onnx", "huge_batch.onnx")
        .file(
            "release.toml",
            release_toml("huge_batch.onnx", "", "", None),
        );
    let run = smoke(&ctx);
    run.assert_status(2)
        .assert_stderr_contains(
            "`huge_batch.onnx` fixes its batch dimension (axis 0 of `noise`) to 1000000000",
        )
        .assert_stderr_contains("re-export the generator with a dynamic batch axis");
    assert!(
        !run.stderr.contains("Loaded"),
        "refused before ONNX Runtime"
    );
    let sample = ctx.run([
        "sample",
        "--config",
        "release.toml",
        "--model",
        "huge_batch.onnx",
        "--breed",
        "0",
    ]);
    sample
        .assert_status(2)
        .assert_stderr_contains("fixes its batch dimension (axis 0 of `noise`) to 1000000000");
}

/// Issue 8 item 13: what only ONNX Runtime 1.31 caught before (`gen_onnx_bad.py` records its
/// verdicts) is refused by the static check, before the runtime is loaded: external data in a
/// model-local function's attribute default, the runtime's memory-address marker as a location,
/// and a tensor whose byte length overflows.
#[test]
fn hostile_external_data_only_the_newest_runtime_caught_is_refused_statically() {
    require_ort();
    for (model, data, expected) in [
        (
            "function_default_ext.onnx",
            None,
            "tensor `bias_default` has external data at `../../secret.bin`, which leaves the model's folder",
        ),
        (
            "mem_addr.onnx",
            None,
            "tensor `w` has external data at `*/_ORT_MEM_ADDR_/*`, ONNX Runtime's marker",
        ),
        (
            "overflow.onnx",
            Some("overflow.onnx.data"),
            "tensor `w` declares dims [4611686018427387904, 4], whose size in bytes overflows",
        ),
    ] {
        let mut ctx = TestContext::new()
            .fixture_file(&format!("onnx-bad/{model}"), &format!("m/{model}"))
            .file(
                "release.toml",
                release_toml(&format!("m/{model}"), "", "", None),
            );
        if let Some(data) = data {
            ctx = ctx.fixture_file(&format!("onnx-bad/{data}"), &format!("m/{data}"));
        }
        // A file where the marker points, so only the marker rule can refuse it.
        std::fs::create_dir_all(ctx.path().join("m/*/_ORT_MEM_ADDR_")).expect("mkdir");
        std::fs::write(ctx.path().join("m/*/_ORT_MEM_ADDR_/*"), [0_u8; 8192]).expect("write");
        let run = smoke(&ctx);
        run.assert_status(2).assert_stderr_contains(expected);
        assert!(
            !run.stderr.contains("Loaded"),
            "{model}: refused before ONNX Runtime"
        );
    }
}

/// Issue 8 item 18: an untrained TinyDiT (adaLN-Zero: the final layer is zero) has velocity 0,
/// so its samples are the input noise, whose statistics pass; the velocity check names it.
#[test]
fn a_zero_velocity_generator_is_named_as_such() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/zero_velocity.onnx", "zero_velocity.onnx")
        .file(
            "release.toml",
            release_toml("zero_velocity.onnx", "", "", None),
        );
    let run = smoke(&ctx);
    run.assert_status(1)
        .assert_stderr_contains("Passed sample-stats")
        .assert_stderr_contains(
            "Failed velocity: the generator's velocity is zero: the samples are their input noise",
        )
        .assert_stderr_contains("an untrained model or a zeroed final layer");
    assert_eq!(json(&run)["metrics"]["smoke.noise_displacement"], 0.0);
}

/// Issue 8 item 19: a model that declares opset 17 but uses an opset-18 attribute (as torch's
/// dynamo exporter wrote) passes the static checks; ONNX Runtime refuses it, and the hint says
/// what to re-export.
#[test]
fn a_model_the_runtime_refuses_gets_a_hint_on_what_to_re_export() {
    require_ort();
    let ctx = TestContext::new()
        .fixture_file("onnx-bad/opset_mismatch.onnx", "opset_mismatch.onnx")
        .file(
            "release.toml",
            release_toml("opset_mismatch.onnx", "", "", None),
        );
    smoke(&ctx)
        .assert_status(2)
        .assert_stderr_contains(
            "ONNX Runtime refused `opset_mismatch.onnx`, which passed the static checks",
        )
        .assert_stderr_contains("Unrecognized attribute: num_outputs for operator Split")
        .assert_stderr_contains("its declared opset 17 does not have")
        .assert_stderr_contains("re-export with `dynamo=False, opset_version=17`")
        .assert_stderr_contains("`opset_version=18` or later");
}

/// Issue 8 item 22: the default thread count follows the process's affinity mask (what `taskset`
/// and container cpusets set), not the machine's core count.
#[test]
fn the_default_thread_count_follows_the_affinity_mask() {
    require_ort();
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml("onnx/generator.onnx", "", "", None),
    );
    let mut command = std::process::Command::new("taskset");
    command.args(["-c", "0"]);
    let inner = ctx.command([
        "smoke",
        "--config",
        "release.toml",
        "--out",
        "out",
        "--json",
    ]);
    command
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(ctx.path());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let output = command.output().expect("run taskset (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["threads"], 1, "one CPU in the affinity mask");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("(1 intra-op thread(s))"),
        "reported"
    );
}

/// The GPU recipe (README "GPU smoke test", `examples/workflows/gpu-smoke.yml`): the flags
/// override a release.toml that allows a CPU fallback, so a runner whose CUDA provider cannot run
/// fails instead of passing on the CPU. Here the CPU-only library stands in for a broken GPU.
#[test]
fn the_gpu_recipe_flags_fail_when_cuda_does_not_run() {
    require_ort();
    let ctx = TestContext::new().fixture("tinydit").file(
        "release.toml",
        release_toml("onnx/generator.onnx", "", "providers = [\"cpu\"]", None),
    );
    let run = ctx.run([
        "smoke",
        "--providers",
        "cuda",
        "--require-provider",
        "--out",
        "out",
    ]);
    run.assert_status(2)
        .assert_stderr_contains("CUDA execution provider is not enabled in this build");
    // Without the flags the same file runs on the CPU.
    ctx.run(["smoke", "--out", "out"]).assert_status(0);
}

/// The GPU recipe on a release.toml with no `[smoke]` table at all (most users' files): the
/// flags still apply, so the run fails without CUDA instead of sampling on the CPU and passing;
/// without the flags the same file samples on the CPU, and the report names the device.
#[test]
fn the_gpu_recipe_flags_apply_without_a_smoke_table() {
    require_ort();
    let text = release_toml("onnx/generator.onnx", "", "", None).replace("[smoke]\n", "");
    assert!(!text.contains("[smoke]"));
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", text);
    ctx.run([
        "smoke",
        "--providers",
        "cuda",
        "--require-provider",
        "--out",
        "out",
    ])
    .assert_status(2)
    .assert_stderr_contains("the `cuda` execution provider failed to register")
    .assert_stderr_contains("of any node");
    let run = ctx.run(["smoke", "--out", "out", "--json"]);
    run.assert_status(0)
        .assert_stderr_contains("on cpu (`cpu`)");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("the report is JSON");
    assert_eq!(report["device"], "cpu");
}
