//! The independent judge: `tests/python/hub_judge.py` runs the official `huggingface_hub`
//! client (with `hf_xet`) against a fresh Hub emulator, one scenario per test. The Python
//! comes from `TINYDIT_RELEASE_PYTHON` (`make test` sets it to the venv's).

use std::process::Command;

use crate::common::HUB;

#[track_caller]
fn judge(scenario: &str) {
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").expect(
        "TINYDIT_RELEASE_PYTHON must name a Python with huggingface_hub and hf_xet; `make test` sets it",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/hub_judge.py");
    let output = Command::new(python)
        .arg(script)
        .arg(HUB)
        .arg(scenario)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .output()
        .expect("run the Python judge");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success()
            && stdout.contains(&format!("ok {scenario}"))
            && stdout.contains("1 passed, 0 failed"),
        "Python judge `{scenario}` failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn python_client_publishes_through_xet_and_downloads_identical_files_at_the_tag() {
    judge("publish_and_download");
}

#[test]
fn python_client_stale_parent_commit_is_refused() {
    judge("stale_parent_refused");
}

#[test]
fn python_client_rerun_of_the_same_upload_makes_no_commit() {
    judge("rerun_is_no_change");
}

#[test]
fn python_client_sees_conflicts_and_auth_errors() {
    judge("conflicts_and_auth");
}
