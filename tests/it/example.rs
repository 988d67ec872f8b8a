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
    // The bundle carries SHA256SUMS, in the format `sha256sum -c` (and `actions/attest`) reads,
    // listing every other file of the bundle.
    let bundle = out.join("bundle");
    let sums = std::fs::read_to_string(bundle.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_once("  ").expect("`<sha256>  <path>`").1)
        .collect();
    listed.sort_unstable();
    let mut present = Vec::new();
    walk(&bundle, &bundle, &mut present);
    present.retain(|p| p != "SHA256SUMS");
    present.sort();
    assert_eq!(listed, present);
    let checked = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&bundle)
        .output()
        .expect("sha256sum runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}

fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let relative = path.strip_prefix(root).expect("inside");
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}
