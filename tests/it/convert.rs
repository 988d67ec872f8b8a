//! `convert`: exact tensors out of every valid fixture, refusals and errors that leave nothing
//! behind, selection, aliases, casting, sharding and metadata.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use safetensors::SafeTensors;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::{TestContext, fixture_path};
use crate::scan::{assert_no_markers, expected_statuses, fixture_json, with_checkpoints};

fn hex(bytes: &[u8]) -> String {
    tinydit_release::digest::hex(bytes)
}

/// name -> (dtype, shape, sha256 of the bytes).
type Tensors = BTreeMap<String, (String, Vec<usize>, String)>;

/// Converts with `--json --tensor-sha256` and returns the report.
#[track_caller]
fn convert(ctx: &TestContext, input: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "convert",
        input,
        "-o",
        "out/model.safetensors",
        "--json",
        "--tensor-sha256",
    ];
    args.extend_from_slice(extra);
    let run = ctx.run(&args);
    run.assert_status(0);
    let report: Value = serde_json::from_str(&run.stdout).expect("json report");
    assert_eq!(report["outcome"], "converted");
    report
}

/// Every tensor of a safetensors file: name -> (dtype, shape, sha256 of its bytes).
fn read_back(path: &Path) -> (Tensors, BTreeMap<String, String>) {
    let bytes = std::fs::read(path).expect("read output");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (
                    format!("{:?}", view.dtype()),
                    view.shape().to_vec(),
                    hex(&Sha256::digest(view.data())),
                ),
            )
        })
        .collect();
    let (_, meta) = SafeTensors::read_metadata(&bytes).expect("metadata");
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    (tensors, metadata)
}

#[track_caller]
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected, "files in {}", dir.display());
}

#[test]
fn every_valid_fixture_converts_to_exactly_the_expected_tensors() {
    let expected = fixture_json("expected.json");
    for (name, entry) in &expected {
        let hint = &entry["selection_hint"];
        if hint["ambiguous"] == true || name == "nested.pt" {
            continue;
        }
        let ctx = with_checkpoints(&[name]);
        let report = convert(&ctx, name, &[]);
        if let Some(default) = hint["default"].as_str() {
            let default = if default == "<root>" { "" } else { default };
            assert_eq!(report["selected"], default, "{name}");
        }
        assert_eq!(report["stripped_prefix"], hint["strip_prefix"], "{name}");
        let out = ctx.path().join("out/model.safetensors");
        let (tensors, metadata) = read_back(&out);
        let sources = &entry["tensors"];
        let aliases = entry["aliases"].as_object().expect("aliases");
        for t in report["tensors"].as_array().expect("tensors") {
            let name_out = t["name"].as_str().expect("name");
            let source = t["source"].as_str().expect("source");
            let want = &sources[source];
            let (dtype, shape, sha) = &tensors[name_out];
            assert_eq!(
                dtype,
                want["dtype"].as_str().expect("dtype"),
                "{name}: {source}"
            );
            let want_shape: Vec<usize> =
                serde_json::from_value(want["shape"].clone()).expect("shape");
            assert_eq!(shape, &want_shape, "{name}: {source}");
            assert_eq!(
                sha,
                want["sha256"].as_str().expect("sha"),
                "{name}: {source}"
            );
            assert_eq!(t["sha256"].as_str(), Some(sha.as_str()), "{name}: {source}");
        }
        // Tied tensors: one written, the other recorded as removed -> kept.
        for (removed, kept) in aliases {
            let in_subtree = |p: &str| match report["selected"].as_str() {
                Some("") | None => Some(p.to_owned()),
                Some(s) => p.strip_prefix(&format!("{s}.")).map(str::to_owned),
            };
            if let (Some(r), Some(k)) = (
                in_subtree(removed),
                in_subtree(kept.as_str().expect("kept")),
            ) {
                assert!(!tensors.contains_key(&r), "{name}: alias {r} written twice");
                assert_eq!(metadata.get(&r), Some(&k), "{name}");
            }
        }
        assert_eq!(metadata["format"], "pt");
        let source_sha = hex(&Sha256::digest(
            std::fs::read(ctx.path().join(name)).expect("input"),
        ));
        assert_eq!(metadata["source_sha256"], source_sha, "{name}");
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{name}");
        assert_only(&ctx.path().join("out"), &["model.safetensors"]);
    }
}

#[test]
fn ema_is_preferred_and_the_optimizer_is_left_out() {
    let ctx = with_checkpoints(&["zip_basic.pt"]);
    let report = convert(&ctx, "zip_basic.pt", &[]);
    assert_eq!(report["selected"], "ema");
    let (tensors, metadata) = read_back(&ctx.path().join("out/model.safetensors"));
    assert!(tensors.contains_key("embed.weight"));
    assert!(!tensors.keys().any(|k| k.contains("exp_avg")));
    assert_eq!(metadata["training_steps"], "1234");
    assert_eq!(metadata["final_loss"], "0.0847");
    let metrics = &report["metrics"];
    assert_eq!(metrics["step"], 1234);
    assert_eq!(metrics["loss"], 0.0847);
    assert_eq!(metrics["nan_count"], 0);
    let expected = fixture_json("expected.json");
    let params: u64 = expected["zip_basic.pt"]["tensors"]
        .as_object()
        .expect("tensors")
        .iter()
        .filter(|(k, _)| k.starts_with("ema."))
        .map(|(_, t)| {
            t["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dim"))
                .product::<u64>()
        })
        .sum();
    assert_eq!(metrics["param_count"], params);
    let bytes = std::fs::metadata(ctx.path().join("out/model.safetensors"))
        .expect("meta")
        .len();
    assert_eq!(metrics["bytes"], bytes);

    let report = convert(&ctx, "zip_basic.pt", &["--weights", "model"]);
    assert_eq!(report["selected"], "model");
}

#[test]
fn an_ambiguous_checkpoint_is_refused_with_a_listing_until_told() {
    let ctx = with_checkpoints(&["ambiguous.pt"]);
    ctx.run(["convert", "ambiguous.pt", "-o", "out/m.safetensors"])
        .assert_status(2)
        .assert_stderr_contains("`model` (11 tensors) and `state_dict` (11 tensors)")
        .assert_stderr_contains(
            "hint: choose one with `--weights model` or `--weights state_dict`",
        );
    assert!(!ctx.path().join("out/m.safetensors").exists());
    let report = convert(&ctx, "ambiguous.pt", &["--weights", "state_dict"]);
    assert_eq!(report["selected"], "state_dict");
}

#[test]
fn a_dotted_path_selects_nested_weights() {
    let ctx = with_checkpoints(&["nested.pt"]);
    ctx.run(["convert", "nested.pt", "-o", "out/m.safetensors"])
        .assert_status(2)
        .assert_stderr_contains("`trainer.ema.model` (11 tensors)");
    let report = convert(&ctx, "nested.pt", &["--weights", "trainer.ema.model"]);
    assert_eq!(report["tensors"].as_array().expect("tensors").len(), 11);
    assert_eq!(
        report["tensors"][0]["source"]
            .as_str()
            .map(|s| s.starts_with("trainer.ema.model.")),
        Some(true)
    );
}

#[test]
fn a_prefix_is_stripped_only_when_asked_and_shared() {
    let ctx = with_checkpoints(&["prefixed_module.pt"]);
    let report = convert(
        &ctx,
        "prefixed_module.pt",
        &["--strip-prefix", "_orig_mod."],
    );
    assert_eq!(report["stripped_prefix"], Value::Null);
    let report = convert(&ctx, "prefixed_module.pt", &[]);
    assert_eq!(report["stripped_prefix"], "module.");
}

#[test]
fn every_hostile_fixture_is_refused_and_nothing_is_written_or_run() {
    let cases = fixture_json("cases.json");
    for (name, case) in &cases {
        let ctx = with_checkpoints(&[name]);
        let started = std::time::Instant::now();
        let run = ctx.run(["convert", name.as_str(), "-o", "out/model.safetensors"]);
        let status = run.status.expect("status");
        assert!(
            expected_statuses(case).contains(&status),
            "{name}: exit {status}\n{}",
            run.stderr
        );
        assert!(
            started.elapsed().as_secs() < 5,
            "{name}: took {:?}",
            started.elapsed()
        );
        if status == 1 {
            run.assert_stderr_contains("Refused");
            if let Some(global) = case["global"].as_str() {
                run.assert_stderr_contains(&format!("`{global}`"));
            }
        } else {
            run.assert_stderr_contains("is not a valid checkpoint");
        }
        assert_only(&ctx.path().join("out"), &[]);
        assert_no_markers(case);
    }
}

#[test]
fn whole_modules_get_a_hint_to_save_a_state_dict() {
    for name in ["whole_module.pt", "namespace.pt", "numpy_array.pt"] {
        with_checkpoints(&[name])
            .run(["convert", name, "-o", "m.safetensors"])
            .assert_status(1)
            .assert_stderr_contains("hint: the checkpoint pickles whole Python objects");
    }
}

#[test]
fn casting_to_f16_converts_floats_and_keeps_integers() {
    let ctx = with_checkpoints(&["zip_basic.pt"]);
    let report = convert(&ctx, "zip_basic.pt", &["--dtype", "f16"]);
    let (tensors, _) = read_back(&ctx.path().join("out/model.safetensors"));
    assert_eq!(tensors["embed.weight"].0, "F16");
    assert_eq!(tensors["pos_ids"].0, "I64");
    let entry = report["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .find(|t| t["name"] == "embed.weight")
        .expect("entry");
    assert_eq!(entry["source_dtype"], "F32");
}

#[test]
fn casting_to_f16_refuses_values_beyond_its_range() {
    let ctx = with_checkpoints(&["f16_overflow.pt"]);
    let run = ctx.run([
        "convert",
        "f16_overflow.pt",
        "-o",
        "out/m.safetensors",
        "--dtype",
        "f16",
    ]);
    run.assert_status(2).assert_stderr_contains("`big`");
    assert_only(&ctx.path().join("out"), &[]);
    // The same values convert unchanged when the dtype is kept, and `fits` (65504, the largest
    // f16) alone would have been fine.
    convert(&ctx, "f16_overflow.pt", &[]);
}

#[test]
fn sharding_writes_numbered_files_and_an_index() {
    let ctx = with_checkpoints(&["zip_basic.pt"]);
    let report = convert(&ctx, "zip_basic.pt", &["--max-shard-size", "400B"]);
    let outputs = report["outputs"].as_array().expect("outputs");
    let shards = outputs.len() - 1;
    assert!(shards > 1, "{outputs:#?}");
    let out = ctx.path().join("out");
    let mut expected: Vec<String> = (1..=shards)
        .map(|i| format!("model-{i:05}-of-{shards:05}.safetensors"))
        .collect();
    expected.push("model.safetensors.index.json".to_owned());
    assert_only(
        &out,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("model.safetensors.index.json")).expect("index"),
    )
    .expect("json");
    let weight_map = index["weight_map"].as_object().expect("weight_map");
    assert_eq!(weight_map.len(), 11);
    let mut total = 0;
    for (tensor, file) in weight_map {
        let (tensors, _) = read_back(&out.join(file.as_str().expect("file")));
        assert!(tensors.contains_key(tensor), "{tensor} not in {file}");
        let bytes = std::fs::read(out.join(file.as_str().expect("file"))).expect("shard");
        let st = SafeTensors::deserialize(&bytes).expect("shard parses");
        total += st.tensor(tensor).expect("tensor").data().len();
    }
    assert_eq!(index["metadata"]["total_size"], total);
}

#[test]
fn the_training_checkpoint_converts_its_ema_weights() {
    let ctx = TestContext::new().file(
        "tinydit_final.pt",
        std::fs::read(fixture_path("tinydit/checkpoints/tinydit_final.pt")).expect("fixture"),
    );
    let report = convert(&ctx, "tinydit_final.pt", &["--weights", "ema"]);
    assert_eq!(report["selected"], "ema");
    assert!(report["metrics"]["param_count"].as_u64().expect("count") > 0);
    let (tensors, _) = read_back(&ctx.path().join("out/model.safetensors"));
    assert_eq!(
        tensors.len(),
        report["tensors"].as_array().expect("tensors").len()
    );
}

#[test]
fn a_bad_shard_size_is_a_usage_error() {
    with_checkpoints(&["zip_basic.pt"])
        .run([
            "convert",
            "zip_basic.pt",
            "-o",
            "m.safetensors",
            "--max-shard-size",
            "lots",
        ])
        .assert_status(2)
        .assert_stderr_contains("`--max-shard-size` = `lots` is not a size");
}

#[test]
fn the_authors_checkpoint_converts_its_ema_completed_with_the_model_buffers() {
    let name = "authors_save_checkpoint.pt";
    let ctx = with_checkpoints(&[name]);
    let report = convert(&ctx, name, &[]);
    assert_eq!(report["selected"], "ema_shadow_params");
    assert_eq!(report["completed_from"], "model_state_dict");
    assert_eq!(report["completed"], serde_json::json!(["class_counts"]));
    // What `load_state_dict(strict=True)` checks: exactly the model's names.
    let expected = fixture_json("expected.json");
    let tensors = expected[name]["tensors"].as_object().expect("tensors");
    let model: std::collections::BTreeSet<&str> = tensors
        .keys()
        .filter_map(|k| k.strip_prefix("model_state_dict."))
        .collect();
    let (written, _) = read_back(&ctx.path().join("out/model.safetensors"));
    let written: std::collections::BTreeSet<&str> = written.keys().map(String::as_str).collect();
    assert_eq!(written, model);
    // Parameters come from the EMA, the buffer from the model.
    let sources: BTreeMap<&str, &str> = report["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name"),
                t["source"].as_str().expect("source"),
            )
        })
        .collect();
    assert_eq!(sources["class_counts"], "model_state_dict.class_counts");
    assert_eq!(sources["pos_embed"], "ema_shadow_params.pos_embed");
    let run = ctx.run(["convert", name, "-o", "out/m.safetensors"]);
    run.assert_status(0).assert_stderr_contains(
        "`ema_shadow_params` holds parameters only; took 1 more tensor(s) from `model_state_dict`: \
         `class_counts`",
    );
    let report = convert(&ctx, name, &["--weights", "model"]);
    assert_eq!(report["selected"], "model_state_dict");
    assert!(report.get("completed_from").is_none());
}

#[test]
fn stacked_wrapper_prefixes_are_all_stripped_and_recorded() {
    let ctx = with_checkpoints(&["prefixed_ddp_compiled.pt"]);
    let report = convert(&ctx, "prefixed_ddp_compiled.pt", &[]);
    assert_eq!(report["stripped_prefix"], "module._orig_mod.");
    assert_eq!(
        report["stripped_prefixes"],
        serde_json::json!(["module.", "_orig_mod."])
    );
    let (tensors, _) = read_back(&ctx.path().join("out/model.safetensors"));
    assert!(tensors.contains_key("embed.weight"), "{:?}", tensors.keys());
}

#[test]
fn the_output_may_be_neither_a_folder_nor_a_symlink() {
    let ctx = with_checkpoints(&["zip_basic.pt"]);
    std::fs::create_dir(ctx.path().join("out")).expect("mkdir");
    ctx.run(["convert", "zip_basic.pt", "-o", "out"])
        .assert_status(2)
        .assert_stderr_contains("the output `out` is a folder")
        .assert_stderr_contains("out/model.safetensors");
    std::fs::write(ctx.path().join("victim"), b"keep").expect("write");
    std::os::unix::fs::symlink("victim", ctx.path().join("link.safetensors")).expect("symlink");
    let run = ctx.run(["convert", "zip_basic.pt", "-o", "link.safetensors"]);
    run.assert_status(2).assert_stderr_contains("is a symlink");
    assert!(!run.stderr.contains("Scanning"), "refused before any work");
    assert_eq!(
        std::fs::read(ctx.path().join("victim")).expect("read"),
        b"keep"
    );
    std::os::unix::fs::symlink("out", ctx.path().join("linked_dir")).expect("symlink");
    ctx.run(["convert", "zip_basic.pt", "-o", "linked_dir/m.safetensors"])
        .assert_status(2)
        .assert_stderr_contains("the output folder `linked_dir` is a symlink");
    assert_only(&ctx.path().join("out"), &[]);
}

#[test]
fn the_output_size_limit_can_be_set() {
    let ctx = with_checkpoints(&["zip_basic.pt", "bombs/expand_stride0.pt"]);
    ctx.run([
        "convert",
        "zip_basic.pt",
        "-o",
        "out/m.safetensors",
        "--max-output-bytes",
        "100B",
    ])
    .assert_status(2)
    .assert_stderr_contains("more than the limit of 100 bytes (`--max-output-bytes`)");
    assert_only(&ctx.path().join("out"), &[]);
    // The expanded view names its shape and the bytes it really reads.
    ctx.run([
        "convert",
        "bombs/expand_stride0.pt",
        "-o",
        "out/m.safetensors",
    ])
    .assert_status(2)
    .assert_stderr_contains(
        "`w`: 4398046511104 bytes (shape [1099511627776], stride [0]) read from 4 bytes",
    );
    convert(&ctx, "zip_basic.pt", &["--max-output-bytes", "1MB"]);
}
