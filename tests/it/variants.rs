//! Generator variants judged against the full generator in `check`: a quantized variant with the
//! scales of one layer zeroed, a zero-velocity model, a swapped class input and another I/O
//! contract are each refused with their own message.

use crate::common::{TINYDIT_CLASSES, TestContext};

fn release_toml(variant: &str) -> String {
    format!(
        r#"[model]
name = "TinyDiT fixture"
hub-repo = "someone/tinydit"

[[onnx]]
path = "onnx/generator.onnx"
role = "generator"

[[onnx]]
path = "{variant}"
role = "generator"
variant = "candidate"
output = "onnx/candidate.onnx"

[generator]
image-size = 32
classes = {TINYDIT_CLASSES}
uncond-class = 12
inputs = {{ label = "breed" }}
cfg = "explicit"
cfg-scale = 1.5
steps = 8

[smoke]
providers = ["cpu"]
seed = 42
"#
    )
}

/// The bytes of the raw data of the inline tensor named `name` (`TensorProto.name` = field 8,
/// `raw_data` = field 9, written in that order by our writer and by torch's exporter).
fn raw_data_range(model: &[u8], name: &str) -> std::ops::Range<usize> {
    let mut pattern = vec![0x42, u8::try_from(name.len()).expect("short name")];
    pattern.extend_from_slice(name.as_bytes());
    let at = model
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .unwrap_or_else(|| panic!("tensor `{name}` not found"))
        + pattern.len();
    assert_eq!(model[at], 0x4a, "raw_data follows the name");
    let (mut len, mut shift, mut pos) = (0_usize, 0, at + 1);
    loop {
        let byte = model[pos];
        len |= usize::from(byte & 0x7f) << shift;
        pos += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    pos..pos + len
}

fn check_refused(ctx: &TestContext, needle: &str) {
    let run = ctx.run(["check", "--config", "release.toml", "--out", "dist"]);
    run.assert_status(1);
    let report = std::fs::read_to_string(ctx.path().join("dist/report.json")).expect("report");
    assert!(
        report.contains(needle),
        "{needle:?} not in\n{report}\n{}",
        run.stderr
    );
}

fn quantized(ctx: &TestContext) -> Vec<u8> {
    ctx.run([
        "quantize",
        "onnx/generator.onnx",
        "-o",
        "int8.onnx",
        "--min-elements",
        "256",
    ])
    .assert_status(0);
    std::fs::read(ctx.path().join("int8.onnx")).expect("read")
}

/// The issue's test: a quantized variant whose scales are zeroed in one layer (the first
/// block's adaLN modulation) is refused by agreement, naming the class and the measure; the
/// intact variant passes in the same setup.
#[test]
fn a_variant_with_one_layer_of_zeroed_scales_is_refused() {
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", release_toml("int8.onnx"));
    let mut model = quantized(&ctx);
    let run = ctx.run(["check", "--config", "release.toml", "--out", "dist"]);
    run.assert_status(0);
    let report = std::fs::read_to_string(ctx.path().join("dist/report.json")).expect("report");
    assert!(
        report.contains("smoke.variant.candidate.velocity_cosine_min"),
        "{report}"
    );
    assert!(ctx.path().join("dist/bundle/onnx/candidate.onnx").is_file());
    assert!(
        ctx.path()
            .join("dist/bundle/samples/variant_candidate.png")
            .is_file()
    );
    let section = variant_section(&ctx);
    insta::with_settings!({filters => vec![
        // Float results vary from CPU to CPU, sizes with the PNG encoder.
        (r"\| [0-9][0-9.e-]* \|", "| [N] |"),
        (r"\| [0-9][0-9.e-]* \|", "| [N] |"),
        (r"\| [0-9][0-9.e-]* \|", "| [N] |"),
        (r", [0-9.]+ kB \|", ", [SIZE] |"),
    ]}, {
        insta::assert_snapshot!("the_card_shows_a_provided_variant", section);
    });

    let range = raw_data_range(&model, "blocks.0.adaLN_modulation.1.weight_scale");
    assert_eq!(range.len(), 192 * 4);
    model[range].fill(0);
    std::fs::write(ctx.path().join("int8.onnx"), &model).expect("write");
    check_refused(&ctx, "variant `candidate`: velocity cosine similarity");
    check_refused(&ctx, "at class `");
    // The refused release's card says so, with the reason.
    let section = variant_section(&ctx);
    assert!(
        section
            .contains("| agreement | **fail**: variant `candidate`: velocity cosine similarity "),
        "{section}"
    );
}

/// The card's `## Variants` section, from `dist/bundle/README.md`.
fn variant_section(ctx: &TestContext) -> String {
    let readme = std::fs::read_to_string(ctx.path().join("dist/bundle/README.md")).expect("card");
    readme
        .split("\n## ")
        .find(|s| s.starts_with("Variants"))
        .unwrap_or_else(|| panic!("no Variants section:\n{readme}"))
        .to_owned()
}

/// A variant whose class embedding has the rows of two classes swapped answers for the wrong
/// class.
#[test]
fn a_swapped_class_input_is_refused() {
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", release_toml("swapped.onnx"));
    let mut model = std::fs::read(ctx.path().join("onnx/generator.onnx")).expect("read");
    let range = raw_data_range(&model, "breed_embedder.embedding.weight");
    let row = 32 * 4;
    let (start, _) = (range.start, range.end);
    let first: Vec<u8> = model[start..start + row].to_vec();
    model.copy_within(start + row..start + 2 * row, start);
    model[start + row..start + 2 * row].copy_from_slice(&first);
    std::fs::write(ctx.path().join("swapped.onnx"), &model).expect("write");
    check_refused(&ctx, "its class input is swapped or ignored");
}

/// A model that predicts zero everywhere, and one with another output name.
#[test]
fn zero_velocity_and_another_contract_are_refused() {
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("release.toml", release_toml("zero.onnx"));
    let mut model = quantized(&ctx);
    // Zero every scale of the final projection and its bias: the output is then exactly zero.
    let range = raw_data_range(&model, "onnx::MatMul_385_scale");
    model[range].fill(0);
    let bias = raw_data_range(&model, "final_layer.linear.bias");
    model[bias].fill(0);
    std::fs::write(ctx.path().join("zero.onnx"), &model).expect("write");
    check_refused(&ctx, "predicts a zero velocity");

    let mut renamed = std::fs::read(ctx.path().join("onnx/generator.onnx")).expect("read");
    let from = b"velocity";
    let to = b"velocitx";
    let mut i = 0;
    while let Some(at) = renamed[i..].windows(from.len()).position(|w| w == from) {
        renamed[i + at..i + at + from.len()].copy_from_slice(to);
        i += at + from.len();
    }
    std::fs::write(ctx.path().join("zero.onnx"), &renamed).expect("write");
    check_refused(&ctx, "has another I/O contract than the generator");
}

/// `variant` and `quantize` are validated like every key, with file:line:col.
#[test]
fn bad_variant_keys_are_located() {
    let toml = release_toml("int8.onnx").replace(
        "variant = \"candidate\"",
        "variant = \"Bad Name\"\nquantize = { min-elements = 0 }",
    );
    let ctx = TestContext::new()
        .fixture("tinydit")
        .file("int8.onnx", "")
        .file("release.toml", toml);
    let run = ctx.run(["validate", "release.toml"]);
    run.assert_status(2)
        .assert_stderr_contains(
            "release.toml:12:11: `onnx[1].variant` = `Bad Name` is not a variant name",
        )
        .assert_stderr_contains("a variant is not quantized again")
        .assert_stderr_contains("release.toml:13:29: `onnx[1].quantize.min-elements` is 0");
}
