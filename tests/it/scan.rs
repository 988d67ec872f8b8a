//! `scan`: every malicious, unsupported and corrupt fixture is refused for the documented reason
//! and nothing in it runs; every valid fixture is clean.
//!
//! The fixtures and their expectations (`cases.json`, `expected.json`) come from
//! `tests/fixtures/gen_checkpoints.py` (real PyTorch; hostile pickles written opcode by opcode).

use std::path::Path;

use serde_json::Value;

use crate::common::{TestContext, fixture_path};

/// `tests/fixtures/checkpoints/<name>.json`, parsed.
pub fn fixture_json(name: &str) -> serde_json::Map<String, Value> {
    let path = fixture_path("checkpoints").join(name);
    let text = std::fs::read_to_string(&path).expect("read fixture json");
    match serde_json::from_str(&text).expect("fixture json parses") {
        Value::Object(map) => map,
        _ => panic!("{name} is not an object"),
    }
}

/// A test folder holding only the named checkpoint fixtures (same relative paths).
pub fn with_checkpoints(names: &[&str]) -> TestContext {
    names.iter().fold(TestContext::new(), |ctx, name| {
        let bytes = std::fs::read(fixture_path("checkpoints").join(name)).expect("read fixture");
        ctx.file(name, bytes)
    })
}

/// The exit status a case's class must produce: refusals 1, corrupt files 2.
pub fn expected_statuses(case: &Value) -> Vec<i32> {
    case["acceptable_classes"]
        .as_array()
        .expect("acceptable_classes")
        .iter()
        .map(|c| if c == "corrupt" { 2 } else { 1 })
        .collect()
}

#[track_caller]
pub fn assert_no_markers(case: &Value) {
    for marker in case["markers"].as_array().expect("markers") {
        let marker = marker.as_str().expect("marker path");
        assert!(!Path::new(marker).exists(), "payload ran: {marker} exists");
    }
}

#[test]
fn every_hostile_or_corrupt_fixture_is_reported_where_the_generator_put_it() {
    let cases = fixture_json("cases.json");
    for (name, case) in &cases {
        let run = with_checkpoints(&[name]).run(["scan", "--json", name.as_str()]);
        let status = run.status.expect("exit status");
        assert!(
            expected_statuses(case).contains(&status),
            "{name}: exit {status}, class {}\n{}\n{}",
            case["class"],
            run.stdout,
            run.stderr
        );
        let reports: Value = serde_json::from_str(&run.stdout).expect("json report");
        let findings = reports[0]["findings"].as_array().expect("findings");
        assert!(!findings.is_empty(), "{name}: no findings");
        if status == 1 && case["global"].is_string() {
            let global = &case["global"];
            let finding = findings
                .iter()
                .find(|f| f["global"]["qualified"] == *global && f["offset"] == case["offset"])
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: no finding for {global} at {}: {findings:#?}",
                        case["offset"]
                    )
                });
            assert_eq!(
                finding["global"]["raw_qualified"], case["raw_global"],
                "{name}"
            );
            assert_eq!(finding["file_offset"], case["file_offset"], "{name}");
            assert_eq!(finding["member"], case["member"], "{name}");
            if case["consumed_by"].is_object() {
                assert_eq!(finding["consumed_by"], case["consumed_by"], "{name}");
            }
            if case["path"].is_string() {
                assert_eq!(finding["path"], case["path"], "{name}");
            }
            if case["class"] == "dangerous" {
                assert!(
                    findings.iter().any(|f| f["severity"] == "dangerous"),
                    "{name}: nothing dangerous in {findings:#?}"
                );
            }
        }
        // Every non-allowlisted global the generator's static scan saw is reported too.
        for expected in case["findings"].as_array().expect("findings") {
            if expected["kind"] == "global" && status == 1 {
                assert!(
                    findings
                        .iter()
                        .any(|f| f["global"]["qualified"] == expected["global"]
                            && f["offset"] == expected["offset"]),
                    "{name}: missing {expected}"
                );
            }
            if expected["kind"] == "opcode" && status == 1 {
                assert!(
                    findings
                        .iter()
                        .any(|f| f["opcode"] == expected["opcode"]
                            && f["offset"] == expected["offset"]),
                    "{name}: missing opcode {expected}"
                );
            }
        }
        if case["class"] == "corrupt" && status == 2 {
            assert!(
                findings.iter().all(|f| f["severity"] == "corrupt"),
                "{name}"
            );
            if case["path"].is_string() && case["kind"] == "storage" {
                assert!(
                    findings.iter().any(|f| f["path"] == case["path"]),
                    "{name}: no finding at {}: {findings:#?}",
                    case["path"]
                );
            }
        }
        assert_no_markers(case);
    }
}

#[test]
fn every_valid_fixture_scans_clean() {
    let expected = fixture_json("expected.json");
    let names: Vec<&str> = expected.keys().map(String::as_str).collect();
    let mut args = vec!["scan"];
    args.extend(&names);
    with_checkpoints(&names)
        .run(&args)
        .assert_status(0)
        .assert_stdout_contains("zip_basic.pt: clean")
        .assert_stdout_contains("legacy_basic.pt: clean");
}

#[test]
fn one_refused_file_among_clean_ones_exits_1() {
    with_checkpoints(&["zip_basic.pt", "mal_inst.pt"])
        .run(["scan", "zip_basic.pt", "mal_inst.pt"])
        .assert_status(1)
        .assert_stdout_contains("zip_basic.pt: clean")
        .assert_stdout_contains("mal_inst.pt: 2 finding(s)");
}

#[test]
fn an_unreadable_file_is_an_error() {
    TestContext::new()
        .run(["scan", "nope.pt"])
        .assert_status(2)
        .assert_stderr_contains("failed to open `nope.pt`");
}

#[test]
fn the_human_report_names_global_call_and_key() {
    let run = with_checkpoints(&["mal_builtin_eval.pt"]).run(["scan", "mal_builtin_eval.pt"]);
    run.assert_status(1);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn every_bomb_is_answered_quickly_by_scan_and_convert() {
    let bombs = fixture_json("bombs.json");
    assert!(bombs.len() >= 4);
    for (name, bomb) in &bombs {
        let ctx = with_checkpoints(&[name]);
        let timeout = std::time::Duration::from_secs(20);
        let scan = ctx.run_with_timeout(["scan", name.as_str()], timeout);
        let want = bomb["scan"].as_i64().expect("scan status");
        scan.assert_status(i32::try_from(want).expect("small"));
        let message = bomb["message"].as_str().expect("message");
        if want != 0 {
            assert!(
                scan.stdout.contains(message) || scan.stderr.contains(message),
                "{name}: scan does not say `{message}`\n{}\n{}",
                scan.stdout,
                scan.stderr
            );
        }
        let convert = ctx.run_with_timeout(
            ["convert", name.as_str(), "-o", "out/m.safetensors"],
            timeout,
        );
        let want = bomb["convert"].as_i64().expect("convert status");
        convert.assert_status(i32::try_from(want).expect("small"));
        assert!(
            convert.stderr.contains(message),
            "{name}: convert does not say `{message}`\n{}",
            convert.stderr
        );
        assert!(!ctx.path().join("out/m.safetensors").exists(), "{name}");
    }
}

#[test]
fn a_file_that_overflowed_the_stack_does_not_hide_later_files() {
    let names = [
        "bombs/nested_build_state.pt",
        "bombs/rebuild_self_args.pt",
        "mal_inst.pt",
    ];
    let mut args = vec!["scan"];
    args.extend(names);
    let run = with_checkpoints(&names).run_with_timeout(&args, std::time::Duration::from_secs(20));
    run.assert_status(1)
        .assert_stdout_contains("nested_build_state.pt: 2 finding(s)")
        .assert_stdout_contains("rebuild_self_args.pt: 1 finding(s)")
        .assert_stdout_contains("mal_inst.pt: 2 finding(s)");
}

#[test]
fn every_file_is_reported_and_the_worst_result_wins() {
    let ctx = with_checkpoints(&["zip_basic.pt", "mal_inst.pt", "truncated_zip.pt"]);
    let run = ctx.run([
        "scan",
        "zip_basic.pt",
        "nope.pt",
        "mal_inst.pt",
        "truncated_zip.pt",
    ]);
    run.assert_status(2)
        .assert_stdout_contains("zip_basic.pt: clean")
        .assert_stdout_contains("mal_inst.pt: 2 finding(s)")
        .assert_stdout_contains("truncated_zip.pt: 1 finding(s)")
        .assert_stderr_contains("failed to open `nope.pt`")
        .assert_stderr_contains("2 of 4 files could not be scanned or are not valid checkpoints");
    // A corrupt file outranks a refused one.
    ctx.run(["scan", "mal_inst.pt", "truncated_zip.pt"])
        .assert_status(2);
    let run = ctx.run(["scan", "--json", "zip_basic.pt", "nope.pt"]);
    run.assert_status(2);
    let reports: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(reports.as_array().map(Vec::len), Some(2));
    assert!(
        reports[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("failed to open `nope.pt`")),
        "{reports:#}"
    );
}

#[test]
fn a_pipe_a_folder_or_a_device_is_refused_before_it_is_opened() {
    let ctx = with_checkpoints(&["zip_basic.pt"]);
    let fifo = ctx.path().join("pipe.pt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    std::fs::create_dir(ctx.path().join("folder.pt")).expect("mkdir");
    let timeout = std::time::Duration::from_secs(20);
    for (file, what) in [
        ("pipe.pt", "a named pipe (FIFO)"),
        ("folder.pt", "a folder"),
        ("/dev/zero", "a device"),
    ] {
        ctx.run_with_timeout(["scan", file], timeout)
            .assert_status(2)
            .assert_stderr_contains(&format!("is {what}, not a checkpoint file"));
        ctx.run_with_timeout(["convert", file, "-o", "out/m.safetensors"], timeout)
            .assert_status(2)
            .assert_stderr_contains(&format!("is {what}, not a checkpoint file"));
    }
    // Among other files, the pipe is one error and the rest is still scanned.
    ctx.run_with_timeout(["scan", "pipe.pt", "zip_basic.pt"], timeout)
        .assert_status(2)
        .assert_stdout_contains("zip_basic.pt: clean");
}

/// `scan --format sarif`: every file, the worst exit code, and a log that validates against the
/// SARIF 2.1.0 schema (what `github/codeql-action/upload-sarif` takes).
#[test]
fn sarif_output_validates_and_covers_every_file() {
    let ctx = TestContext::new()
        .fixture_file("checkpoints/tied.pt", "clean.pt")
        .fixture_file("checkpoints/mal_posix_system.pt", "bad.pt");
    let run = ctx.run([
        "scan",
        "--format",
        "sarif",
        "clean.pt",
        "bad.pt",
        "missing.pt",
    ]);
    run.assert_status(2);
    let path = ctx.path().join("out.sarif");
    std::fs::write(&path, &run.stdout).expect("write");
    crate::common::validate_sarif(&path);
    let log: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let uris: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str())
        .collect();
    assert!(
        uris.contains(&"bad.pt") && uris.contains(&"missing.pt"),
        "{uris:?}"
    );
    assert!(!uris.contains(&"clean.pt"), "{uris:?}");
}

/// A file name that would be a workflow command in a CI log is printed escaped.
#[test]
fn file_names_cannot_become_workflow_commands() {
    let ctx = TestContext::new().fixture_file("checkpoints/tied.pt", "::error::forged.pt");
    let run = ctx.run(["scan", "::error::forged.pt"]);
    run.assert_status(0);
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        assert!(!line.trim_start().starts_with("::"), "{line:?}");
    }
    run.assert_stdout_contains("\\::error::forged.pt: clean");
}
