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
    the_int8_variant_is_on_the_card_and_in_the_reports(&out);
}

/// Issue 16: the example's int8 variant is on the card (file, size, what was quantized, the
/// worst agreement, pass, its full | variant grid, linked and in the bundle), in report.json and
/// in summary.md.
fn the_int8_variant_is_on_the_card_and_in_the_reports(out: &std::path::Path) {
    let bundle = out.join("bundle");
    let readme = std::fs::read_to_string(bundle.join("README.md")).expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Variants"))
        .unwrap_or_else(|| panic!("no Variants section:\n{readme}"));
    for needle in [
        "### int8",
        "| file | `onnx/cats_generator_int8.onnx`, ",
        "| quantized | 14 `MatMul`/`Gemm` weights (",
        "| kept in float | ",
        "| agreement | pass |",
        "| velocity cosine similarity, worst | 0.99",
        "| final image PSNR, worst class (dB) | ",
        "| final image SSIM, worst class | 0.9",
        "![Full model | variant int8, one row per class](samples/variant_int8.png)",
        "| Abyssinian | ",
        "| Other | ",
        "tinydit-release sample --model onnx/cats_generator_int8.onnx ",
    ] {
        assert!(section.contains(needle), "{needle:?} not in\n{section}");
    }
    let grid = bundle.join("samples/variant_int8.png");
    let info = crate::common::png_info(&grid);
    // 13 classes, one row each, full | variant: two 32-pixel images side by side per row.
    assert!(info.0 >= 64 && info.1 >= 13 * 32, "{info:?}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    let variants = report["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 1, "{variants:?}");
    let v = &variants[0];
    assert_eq!(v["name"], "int8");
    assert_eq!(v["file"], "onnx/cats_generator_int8.onnx");
    assert_eq!(v["passed"], true);
    assert_eq!(v["grid"], "samples/variant_int8.png");
    assert_eq!(
        v["quantized"]["quantized"].as_array().map(Vec::len),
        Some(14)
    );
    assert_eq!(v["classes"].as_array().map(Vec::len), Some(13));
    let bytes = v["bytes"].as_u64().expect("bytes");
    let listed = report["bundle"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "onnx/cats_generator_int8.onnx")
        .and_then(|f| f["bytes"].as_u64());
    assert_eq!(
        listed,
        Some(bytes),
        "the variant is in the bundle at its size"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(summary.contains("### Variants"), "{summary}");
    assert!(
        summary.contains("| `int8` | `onnx/cats_generator_int8.onnx` | "),
        "{summary}"
    );
    assert!(
        summary.contains("grid: `samples/variant_int8.png` in the bundle"),
        "{summary}"
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
