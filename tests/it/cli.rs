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
