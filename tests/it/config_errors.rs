//! Configuration problems: all reported at once, each at `release.toml:LINE:COL`, exit code 2.

use crate::common::TestContext;

#[test]
fn every_problem_is_reported_with_its_position() {
    let ctx = TestContext::new().file(
        "release.toml",
        r#"[model]
name = "x"
hub-rpo = "a/b"
license = 3

[version]
from = "tga"

[smoke]
seed = -1
"#,
    );
    let run = ctx.run(["check"]);
    run.assert_status(2);
    insta::assert_snapshot!(run.stderr_redacted());
}
