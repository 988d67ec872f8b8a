//! The command line itself: help, exit codes, ONNX Runtime discovery, subcommands not built yet.

use crate::common::TestContext;

#[test]
fn help_lists_every_subcommand_and_the_exit_codes() {
    let run = TestContext::new().run(["--help"]);
    run.assert_status(0);
    for command in [
        "check", "plan", "publish", "convert", "scan", "smoke", "sample", "card", "action",
    ] {
        run.assert_stdout_contains(&format!("  {command} "));
    }
    run.assert_stdout_contains("1 refused");
}

#[test]
fn a_bad_flag_is_a_usage_error_with_exit_code_2() {
    TestContext::new()
        .run(["check", "--bogus"])
        .assert_status(2);
}

#[test]
fn a_missing_config_file_is_exit_2_naming_it() {
    TestContext::new()
        .run(["check", "--config", "nope.toml"])
        .assert_status(2)
        .assert_stderr_contains("error: failed to read `nope.toml`");
}

/// A config whose smoke test needs ONNX Runtime, over the fixture generator.
fn smoke_context() -> TestContext {
    TestContext::new().fixture("tinydit").file(
        "release.toml",
        r#"[model]
name = "x"
hub-repo = "a/b"

[[onnx]]
path = "onnx/generator.onnx"
role = "generator"

[generator]
image-size = 32
classes = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"]
uncond-class = 12
inputs = { label = "breed" }
steps = 2

[smoke]
"#,
    )
}

/// The last rule of the search: the `onnxruntime` package of a Python interpreter, found
/// without `--ort-lib`, `ORT_DYLIB_PATH` or a library next to the executable.
#[test]
fn onnx_runtime_is_found_through_the_python_package() {
    let python = std::env::var("TINYDIT_RELEASE_PYTHON").expect(
        "TINYDIT_RELEASE_PYTHON must name a Python with onnxruntime installed; `make test` sets it",
    );
    smoke_context()
        .without_env("ORT_DYLIB_PATH")
        .env("TINYDIT_RELEASE_PYTHON", python)
        .run(["smoke", "--out", "out"])
        .assert_status(0)
        .assert_stderr_contains("onnxruntime/capi/libonnxruntime.so.1.31.1");
}

#[test]
fn without_onnx_runtime_the_error_says_how_to_install_it() {
    smoke_context()
        .without_env("ORT_DYLIB_PATH")
        .without_env("VIRTUAL_ENV")
        // A Python that does not exist, so not even `python3`'s packages are asked first.
        .env("TINYDIT_RELEASE_PYTHON", "/nonexistent/python3")
        .env("PATH", "/nonexistent")
        .run(["smoke", "--out", "out"])
        .assert_status(2)
        .assert_stderr_contains("error: the ONNX Runtime library was not found")
        .assert_stderr_contains("hint: install the ONNX Runtime library with `python3 -m pip install onnxruntime==1.31.1`");
}

#[test]
fn an_explicit_library_that_is_not_one_is_an_error_with_the_loader_message() {
    smoke_context()
        .file("fake.so", "not a library")
        .run(["smoke", "--out", "out", "--ort-lib", "fake.so"])
        .assert_status(2)
        .assert_stderr_contains(
            "failed to load the ONNX Runtime library `fake.so` (found via --ort-lib)",
        );
}
