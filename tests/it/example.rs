//! The bundled example, end to end, exactly as README's `make example` runs it.

use crate::common::{TestContext, repo_root};

#[test]
fn check_on_the_example_succeeds() {
    let ctx = TestContext::new();
    let config = repo_root().join("examples/tinydit/release.toml");
    let out = ctx.path().join("out");
    let run = ctx.run([
        "check".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    run.assert_status(0);
}
