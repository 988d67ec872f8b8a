//! `tinydit-release quantize`: weight-only int8 with DequantizeLinear. The outputs are judged by
//! our own static checks (the command runs them) and by ONNX Runtime, against the float model.

use std::path::Path;

use ort::value::TensorRef;

use crate::common::{TestContext, repo_root, require_ort};

// A minimal protobuf writer for the test models (the crate's own is private).
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn int_field(out: &mut Vec<u8>, n: u64, v: u64) {
    varint(out, n << 3);
    varint(out, v);
}
fn len_field(out: &mut Vec<u8>, n: u64, bytes: &[u8]) {
    varint(out, (n << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `ValueInfoProto` of a float tensor with fixed dims.
fn value_info(name: &str, dims: &[i64]) -> Vec<u8> {
    let mut shape = Vec::new();
    for &d in dims {
        let mut dim = Vec::new();
        int_field(&mut dim, 1, d as u64);
        len_field(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    int_field(&mut tensor, 1, 1);
    len_field(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    len_field(&mut ty, 1, &tensor);
    let mut out = Vec::new();
    len_field(&mut out, 1, name.as_bytes());
    len_field(&mut out, 2, &ty);
    out
}

fn node(op: &str, inputs: &[&str], output: &str, trans_b: Option<i64>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in inputs {
        len_field(&mut out, 1, i.as_bytes());
    }
    len_field(&mut out, 2, output.as_bytes());
    len_field(&mut out, 3, format!("{op}_{output}").as_bytes());
    len_field(&mut out, 4, op.as_bytes());
    if let Some(t) = trans_b {
        let mut attr = Vec::new();
        len_field(&mut attr, 1, b"transB");
        int_field(&mut attr, 3, t as u64);
        int_field(&mut attr, 20, 2);
        len_field(&mut out, 5, &attr);
    }
    out
}

fn weights(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.731 + seed).sin() * 0.5) * (1.0 + (i % 7) as f32 * 0.1))
        .collect()
}

/// X [2, 16] -> Gemm(W1, b1, transB) -> [2, 32] -> Softmax -> MatMul(W2 [32, 8]) -> Y [2, 8].
/// With `external`, W1, b1 and W2 live in `<name>.data`.
fn write_model(dir: &Path, name: &str, trans_b: bool, external: bool, opset: i64, softmax: bool) {
    let w1_dims: [i64; 2] = if trans_b { [32, 16] } else { [16, 32] };
    let tensors: [(&str, Vec<i64>, Vec<f32>); 3] = [
        ("W1", w1_dims.to_vec(), weights(512, 0.3)),
        ("b1", vec![32], weights(32, 1.7)),
        ("W2", vec![32, 8], weights(256, 2.9)),
    ];
    let mut graph = Vec::new();
    len_field(
        &mut graph,
        1,
        &node("Gemm", &["X", "W1", "b1"], "H", Some(i64::from(trans_b))),
    );
    let hidden = if softmax {
        len_field(&mut graph, 1, &node("Softmax", &["H"], "S", None));
        "S"
    } else {
        "H"
    };
    len_field(&mut graph, 1, &node("MatMul", &[hidden, "W2"], "Y", None));
    len_field(&mut graph, 2, b"test");
    let mut data = Vec::new();
    for (tname, dims, values) in &tensors {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut t = Vec::new();
        for &d in dims {
            int_field(&mut t, 1, d as u64);
        }
        int_field(&mut t, 2, 1);
        len_field(&mut t, 8, tname.as_bytes());
        if external {
            for (k, v) in [
                ("location", format!("{name}.data")),
                ("offset", data.len().to_string()),
                ("length", raw.len().to_string()),
            ] {
                let mut e = Vec::new();
                len_field(&mut e, 1, k.as_bytes());
                len_field(&mut e, 2, v.as_bytes());
                len_field(&mut t, 13, &e);
            }
            int_field(&mut t, 14, 1);
            data.extend_from_slice(&raw);
        } else {
            len_field(&mut t, 9, &raw);
        }
        len_field(&mut graph, 5, &t);
    }
    len_field(&mut graph, 11, &value_info("X", &[2, 16]));
    len_field(&mut graph, 12, &value_info("Y", &[2, 8]));
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    len_field(&mut model, 2, b"test");
    len_field(&mut model, 7, &graph);
    let mut opset_id = Vec::new();
    int_field(&mut opset_id, 2, opset as u64);
    len_field(&mut model, 8, &opset_id);
    std::fs::write(dir.join(name), model).expect("write model");
    if external {
        std::fs::write(dir.join(format!("{name}.data")), data).expect("write data");
    }
}

fn run_model(path: &Path, input: &[f32], shape: &[usize]) -> Vec<f32> {
    let search = tinydit_release::smoke::runtime::OrtSearch {
        env: Some(require_ort().into_os_string()),
        ..Default::default()
    };
    let (env, _) = tinydit_release::smoke::runtime::environment(&search).expect("ort");
    let mut session = ort::session::Session::builder(&env)
        .expect("builder")
        .commit_from_file(path)
        .unwrap_or_else(|e| panic!("ONNX Runtime refused {}: {e}", path.display()));
    let names: Vec<String> = session
        .inputs()
        .iter()
        .map(|i| i.name().to_owned())
        .collect();
    let value: ort::session::SessionInputValue<'_> =
        TensorRef::from_array_view((shape.to_vec(), input))
            .expect("tensor")
            .into();
    let outputs = session
        .run(vec![(std::borrow::Cow::Owned(names[0].clone()), value)])
        .expect("run");
    let (_, y) = outputs[0]
        .try_extract_tensor::<f32>()
        .expect("float output");
    y.to_vec()
}

fn agreement(a: &[f32], b: &[f32]) -> (f64, f64) {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        .sqrt();
    (dot / (na * nb), diff / na)
}

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("json: {e}\n{stdout}"))
}

const X: [usize; 2] = [2, 16];

fn input() -> Vec<f32> {
    weights(32, 0.11)
}

/// A `Gemm` with and without `transB` and a `MatMul`: each weight gets scales on its output
/// axis, the result passes the static checks, loads in ONNX Runtime and agrees with the float
/// model; the same input gives the same bytes.
#[test]
fn gemm_trans_b_and_matmul_are_quantized_and_run() {
    let ctx = TestContext::new();
    for trans_b in [true, false] {
        let name = format!("m{}.onnx", u8::from(trans_b));
        write_model(ctx.path(), &name, trans_b, false, 17, false);
        let out = format!("q{}.onnx", u8::from(trans_b));
        let run = ctx.run([
            "quantize",
            &name,
            "-o",
            &out,
            "--min-elements",
            "64",
            "--json",
        ]);
        run.assert_status(0);
        let json = report(&run.stdout);
        let quantized = json["quantized"].as_array().expect("quantized");
        assert_eq!(quantized.len(), 2, "{json}");
        assert_eq!(quantized[0]["name"], "W1");
        assert_eq!(quantized[0]["op"], "Gemm");
        assert_eq!(quantized[0]["axis"], i32::from(!trans_b));
        assert_eq!(quantized[1]["name"], "W2");
        assert_eq!(quantized[1]["axis"], 1);
        assert_eq!(json["opset_after"], 17);
        assert!(
            json["bytes_after"].as_u64() < json["bytes_before"].as_u64(),
            "{json}"
        );
        let full = run_model(&ctx.path().join(&name), &input(), &X);
        let int8 = run_model(&ctx.path().join(&out), &input(), &X);
        let (cos, rel) = agreement(&full, &int8);
        assert!(cos > 0.9999 && rel < 0.02, "cos {cos} rel {rel}");
        assert_ne!(full, int8, "the weights really changed");

        // Deterministic: a second run writes the same bytes.
        ctx.run([
            "quantize",
            &name,
            "-o",
            "again.onnx",
            "--min-elements",
            "64",
        ])
        .assert_status(0);
        assert_eq!(
            std::fs::read(ctx.path().join(&out)).expect("read"),
            std::fs::read(ctx.path().join("again.onnx")).expect("read"),
        );
    }
}

/// External data in, external data out: `OUT.onnx.data` holds the int8 weights and the float
/// bias; the model runs from it.
#[test]
fn external_data_is_read_and_written() {
    let ctx = TestContext::new();
    write_model(ctx.path(), "ext.onnx", true, true, 17, false);
    std::fs::create_dir(ctx.path().join("out")).expect("mkdir");
    let run = ctx.run([
        "quantize",
        "ext.onnx",
        "-o",
        "out/q.onnx",
        "--min-elements",
        "64",
        "--json",
    ]);
    run.assert_status(0);
    let json = report(&run.stdout);
    assert_eq!(json["data_file"], "q.onnx.data");
    let data = std::fs::metadata(ctx.path().join("out/q.onnx.data")).expect("data file");
    // int8 W1 (512) + W2 (256) + float b1 (128).
    assert_eq!(data.len(), 512 + 256 + 128);
    let full = run_model(&ctx.path().join("ext.onnx"), &input(), &X);
    let int8 = run_model(&ctx.path().join("out/q.onnx"), &input(), &X);
    let (cos, _) = agreement(&full, &int8);
    assert!(cos > 0.9999, "cos {cos}");
    // No temporaries are left.
    let names: Vec<String> = std::fs::read_dir(ctx.path().join("out"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Overwriting the input's data is refused.
    ctx.run(["quantize", "ext.onnx", "-o", "ext.onnx"])
        .assert_status(2)
        .assert_stderr_contains("would overwrite the input model");
}

/// Below the threshold nothing is quantized and the report says why; an older opset is raised
/// to 13 and said so; an opset-11 model with `Softmax` (changed at 13) is refused.
#[test]
fn threshold_opset_raise_and_refusal() {
    let ctx = TestContext::new();
    write_model(ctx.path(), "m.onnx", true, false, 17, true);
    let run = ctx.run(["quantize", "m.onnx", "-o", "q.onnx", "--json"]);
    run.assert_status(0);
    let json = report(&run.stdout);
    assert_eq!(json["quantized"].as_array().map(Vec::len), Some(0));
    assert!(
        json["kept"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("512 elements, fewer than the threshold of 4096")),
        "{json}"
    );

    write_model(ctx.path(), "old.onnx", true, false, 11, false);
    let run = ctx.run([
        "quantize",
        "old.onnx",
        "-o",
        "old8.onnx",
        "--min-elements",
        "64",
    ]);
    run.assert_status(0)
        .assert_stderr_contains("opset raised from 11 to 13");
    let full = run_model(&ctx.path().join("old.onnx"), &input(), &X);
    let int8 = run_model(&ctx.path().join("old8.onnx"), &input(), &X);
    assert!(agreement(&full, &int8).0 > 0.9999);

    write_model(ctx.path(), "old_softmax.onnx", true, false, 11, true);
    ctx.run([
        "quantize",
        "old_softmax.onnx",
        "-o",
        "x.onnx",
        "--min-elements",
        "64",
    ])
    .assert_status(2)
    .assert_stderr_contains(
        "targets opset 11 and uses `Softmax`, whose definition changed at opset 13",
    );
    assert!(!ctx.path().join("x.onnx").exists());
}

/// The example's real TinyDiT generator (Gemm with transB for adaLN and the timestep MLP, MatMul
/// for attention and MLP): every weight is quantized at the example's threshold and the result
/// loads and runs.
#[test]
fn the_example_generator_is_quantized() {
    let ctx = TestContext::new().fixture("tinydit");
    let run = ctx.run([
        "quantize",
        "onnx/generator.onnx",
        "-o",
        "g8.onnx",
        "--min-elements",
        "256",
        "--json",
    ]);
    run.assert_status(0);
    let json = report(&run.stdout);
    let ops: Vec<&str> = json["quantized"]
        .as_array()
        .expect("quantized")
        .iter()
        .filter_map(|q| q["op"].as_str())
        .collect();
    assert_eq!(ops.iter().filter(|o| **o == "Gemm").count(), 5, "{json}");
    assert_eq!(ops.iter().filter(|o| **o == "MatMul").count(), 9, "{json}");
    assert_eq!(json["kept"].as_array().map(Vec::len), Some(0), "{json}");
    assert!(
        repo_root()
            .join("tests/fixtures/tinydit/onnx/generator.onnx")
            .is_file()
    );
}
