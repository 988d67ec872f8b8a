//! Weight-only int8 quantization of an ONNX model: `tinydit-release quantize`.
//!
//! Each float32 2-D initializer that is the weight (input B) of a `MatMul` or `Gemm` and has at
//! least `min_elements` elements becomes an int8 initializer, a float32 scale per output channel
//! and an int8 zero point (all zeros: symmetric, values in -127..=127), and a `DequantizeLinear`
//! node whose output carries the weight's original name, so no other node changes. The output
//! channel is the last axis of a `MatMul` weight and of a `Gemm` weight without `transB`, and
//! the first axis with `transB = 1`. Activations stay float: the model runs unchanged wherever
//! `DequantizeLinear` runs (every ONNX Runtime execution provider, onnxruntime-web's wasm and
//! WebGPU included), unlike `quantize_dynamic`'s `MatMulInteger`, and `Gemm` is quantized too.
//!
//! Per-axis `DequantizeLinear` needs opset 13; an older model's default-domain opset is raised
//! to 13 (and its IR version to 7), and the report says so. A model that uses an operator whose
//! definition changed incompatibly on the way to opset 13 is refused instead.
//!
//! The model is rewritten on the protobuf wire (`wire.rs`): every field the rewrite does not
//! touch is copied byte for byte, and an inline model's weights are read as slices of its bytes.
//! External data is read (references were checked by [`super::inspect`] first) and written: a
//! model with external data gets `OUT.onnx.data` beside `OUT.onnx`. Same input, same options:
//! same bytes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use anyhow::Context as _;
use prost::Message as _;
use serde::Serialize;

use super::wire::{self, Value};
use crate::error::Problem;
use crate::output::AtomicFile;

/// Weights with fewer elements stay float (the configuration's default, shared with the
/// `quantize` command).
pub use crate::config::DEFAULT_QUANTIZE_MIN_ELEMENTS as DEFAULT_MIN_ELEMENTS;

/// The opset that introduced per-axis `DequantizeLinear`.
pub const DEQUANTIZE_PER_AXIS_OPSET: i64 = 13;

/// Operators whose inputs or meaning changed incompatibly between opset 7 and 13, with the
/// opset of the change: raising a model older than that to 13 would change what it computes.
const CHANGED_BY_13: &[(&str, i64)] = &[
    ("Upsample", 9),
    ("Scan", 9),
    ("BatchNormalization", 9),
    ("Slice", 10),
    ("TopK", 10),
    ("Resize", 11),
    ("Pad", 11),
    ("Clip", 11),
    ("Scatter", 11),
    ("Dropout", 12),
    ("Squeeze", 13),
    ("Unsqueeze", 13),
    ("Split", 13),
    ("ReduceSum", 13),
    ("Softmax", 13),
    ("LogSoftmax", 13),
    ("Hardmax", 13),
];

/// What `quantize` does.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Weights with fewer elements stay float.
    pub min_elements: u64,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        Self {
            min_elements: DEFAULT_MIN_ELEMENTS,
        }
    }
}

/// What `quantize` did.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    /// The input model, as named in messages.
    pub input: String,
    /// The output model.
    pub output: String,
    /// The external data file written beside the output, when the input had external data.
    pub data_file: Option<String>,
    /// The threshold used.
    pub min_elements: u64,
    /// The default-domain opset before and after.
    pub opset_before: i64,
    /// After (raised to 13 when it was older).
    pub opset_after: i64,
    /// Every weight quantized, in graph order.
    pub quantized: Vec<QuantizedWeight>,
    /// `MatMul`/`Gemm` weights left in float, and why.
    pub kept: Vec<KeptWeight>,
    /// Bytes of float32 weights that became int8 (before).
    pub float_bytes_quantized: u64,
    /// Bytes of every float initializer left in float (biases, norms, embeddings, kept weights).
    pub float_bytes_kept: u64,
    /// The model's size before (the `.onnx` file plus its external data files).
    pub bytes_before: u64,
    /// The size after (the `.onnx` file plus its data file).
    pub bytes_after: u64,
    /// The largest relative L2 error of a dequantized weight against its float original.
    pub max_relative_error: f64,
}

impl QuantizeReport {
    /// One line for the terminal and the card.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} weights quantized to int8 ({:.1} MB of float32), {:.1} MB kept in float; {:.1} MB -> {:.1} MB ({:.2}x); largest weight error {:.2e}",
            self.quantized.len(),
            self.float_bytes_quantized as f64 / 1e6,
            self.float_bytes_kept as f64 / 1e6,
            self.bytes_before as f64 / 1e6,
            self.bytes_after as f64 / 1e6,
            self.bytes_after as f64 / self.bytes_before.max(1) as f64,
            self.max_relative_error,
        );
        if self.opset_after != self.opset_before {
            let _ = write!(
                line,
                "; opset raised from {} to {} for per-channel DequantizeLinear",
                self.opset_before, self.opset_after
            );
        }
        line
    }
}

/// One quantized weight.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizedWeight {
    /// The initializer's name (now the `DequantizeLinear` output's).
    pub name: String,
    /// `MatMul` or `Gemm`.
    pub op: String,
    /// Its dims.
    pub shape: Vec<i64>,
    /// The output-channel axis of the scales.
    pub axis: i64,
    /// Relative L2 error of the dequantized weight.
    pub relative_error: f64,
}

/// A `MatMul`/`Gemm` weight left in float.
#[derive(Debug, Clone, Serialize)]
pub struct KeptWeight {
    /// The initializer's name.
    pub name: String,
    /// Why.
    pub reason: String,
    /// Its size in bytes.
    pub bytes: u64,
}

// The few fields the plan needs, decoded with prost (which skips the rest, weights included,
// without copying them).

#[derive(Clone, PartialEq, prost::Message)]
struct Model {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(message, optional, tag = "7")]
    graph: Option<Graph>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<super::proto::OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Graph {
    #[prost(message, repeated, tag = "1")]
    node: Vec<Node>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorHead>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<Named>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<Named>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Node {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<Attribute>,
    #[prost(string, tag = "7")]
    domain: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Attribute {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(int64, tag = "3")]
    i: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Named {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorHead {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<super::proto::StringStringEntryProto>,
    #[prost(int32, tag = "14")]
    data_location: i32,
}

impl TensorHead {
    fn is_external(&self) -> bool {
        self.data_location == super::proto::DATA_LOCATION_EXTERNAL || !self.external_data.is_empty()
    }

    fn elements(&self) -> u64 {
        self.dims
            .iter()
            .map(|&d| u64::try_from(d).unwrap_or(0))
            .product()
    }
}

const FLOAT: i32 = 1;
const INT8: i32 = 3;
const ATTRIBUTE_INT: u64 = 2;

/// A weight chosen for quantization.
struct Planned {
    op: &'static str,
    axis: i64,
    quantized: String,
    scale: String,
    zero_point: String,
    node: String,
}

/// Quantizes `input` into `output`. `input_display` and `output_display` name them in messages.
pub fn quantize(
    input: &Path,
    input_display: &str,
    output: &Path,
    output_display: &str,
    options: &QuantizeOptions,
) -> anyhow::Result<QuantizeReport> {
    // The static checks first: a file, not too large, a model, external data confined and long
    // enough, the walk bounded.
    let summary = super::inspect(input, input_display)?;
    let in_dir = match input.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let out_name = output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Problem::new(format!("`{output_display}` names no file")))?
        .to_owned();
    let data_name = format!("{out_name}.data");
    let out_dir = crate::output::parent_of(output);
    refuse_overwriting_input(input, output, &summary, &in_dir, &out_dir, &data_name)?;

    let bytes =
        std::fs::read(input).with_context(|| format!("failed to read `{input_display}`"))?;
    let model = Model::decode(bytes.as_slice()).map_err(|err| {
        Problem::new(format!("`{input_display}` is not an ONNX model: {err}"))
            .hint("export it with `torch.onnx.export` or check that the file is complete")
    })?;
    let graph = model.graph.as_ref().ok_or_else(|| {
        Problem::new(format!(
            "`{input_display}` is not an ONNX model: it has no graph"
        ))
    })?;

    let external_main: usize = graph.initializer.iter().filter(|t| t.is_external()).count();
    if external_main != summary.external_data.len() {
        return Err(Problem::new(format!(
            "`{input_display}` keeps tensors of subgraphs or functions in external data; \
             `quantize` rewrites only the main graph's"
        ))
        .hint("save the model with its weights inline, or with external data for initializers only")
        .into());
    }
    let external_out = external_main > 0;

    // The opset.
    let opset_before = summary.opset;
    let opset_after = opset_before.max(DEQUANTIZE_PER_AXIS_OPSET);
    if opset_after != opset_before {
        for node in &graph.node {
            if !is_default_domain(&node.domain) {
                continue;
            }
            if let Some((op, changed)) = CHANGED_BY_13
                .iter()
                .find(|(op, changed)| *op == node.op_type && opset_before < *changed)
            {
                return Err(Problem::new(format!(
                    "`{input_display}` targets opset {opset_before} and uses `{op}`, whose \
                     definition changed at opset {changed}; raising the opset to \
                     {DEQUANTIZE_PER_AXIS_OPSET} for per-channel DequantizeLinear would change \
                     what the model computes"
                ))
                .hint("re-export the model with `opset_version=13` or later (TinyDiT's export uses 17)")
                .into());
            }
        }
    }

    // The plan: which initializers, with which axis.
    let initializers: BTreeMap<&str, &TensorHead> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut uses: BTreeMap<&str, (Vec<&'static str>, BTreeSet<i64>)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for node in &graph.node {
        if !is_default_domain(&node.domain) {
            continue;
        }
        let (op, axis) = match node.op_type.as_str() {
            "MatMul" => ("MatMul", 1),
            "Gemm" => {
                let trans_b = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "transB")
                    .is_some_and(|a| a.i != 0);
                ("Gemm", i64::from(!trans_b))
            }
            _ => continue,
        };
        let Some(weight) = node.input.get(1) else {
            continue;
        };
        if !initializers.contains_key(weight.as_str()) {
            continue;
        }
        let entry = uses.entry(weight.as_str()).or_insert_with(|| {
            order.push(weight.as_str());
            (Vec::new(), BTreeSet::new())
        });
        entry.0.push(op);
        entry.1.insert(axis);
    }

    let mut taken: HashSet<String> = HashSet::new();
    for node in &graph.node {
        taken.extend(node.input.iter().cloned());
        taken.extend(node.output.iter().cloned());
        taken.insert(node.name.clone());
    }
    taken.extend(graph.initializer.iter().map(|t| t.name.clone()));
    taken.extend(graph.input.iter().map(|v| v.name.clone()));
    taken.extend(graph.output.iter().map(|v| v.name.clone()));
    let mut fresh = |base: String| -> String {
        let mut name = base.clone();
        let mut k = 1;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        name
    };

    let mut planned: BTreeMap<String, Planned> = BTreeMap::new();
    let mut plan_order: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for name in order {
        let head = initializers[name];
        let (ops, axes) = &uses[name];
        let bytes = head.elements().saturating_mul(
            super::ElementType::from_code(head.data_type)
                .size()
                .unwrap_or(1),
        );
        let reason = if head.data_type != FLOAT {
            Some(format!(
                "its element type is {}, not float32",
                super::ElementType::from_code(head.data_type)
            ))
        } else if head.dims.len() != 2 {
            Some(format!("it has {} dimensions, not 2", head.dims.len()))
        } else if head.elements() < options.min_elements {
            Some(format!(
                "{} elements, fewer than the threshold of {}",
                head.elements(),
                options.min_elements
            ))
        } else if axes.len() > 1 {
            Some("its consumers disagree on the output-channel axis".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            kept.push(KeptWeight {
                name: name.to_owned(),
                reason,
                bytes,
            });
            continue;
        }
        let op = if ops.contains(&"Gemm") {
            "Gemm"
        } else {
            "MatMul"
        };
        let channel_axis = *axes.iter().next().unwrap_or(&1);
        planned.insert(
            name.to_owned(),
            Planned {
                op,
                axis: channel_axis,
                quantized: fresh(format!("{name}_quantized")),
                scale: fresh(format!("{name}_scale")),
                zero_point: fresh(format!("{name}_zero_point")),
                node: fresh(format!("{name}_DequantizeLinear")),
            },
        );
        plan_order.push(name.to_owned());
    }

    // External data: where each input tensor's bytes are.
    let external: BTreeMap<&str, &super::ExternalData> = summary
        .external_data
        .iter()
        .map(|e| (e.tensor.as_str(), e))
        .collect();

    crate::output::refuse_symlinked_folder(output, "`-o`")?;
    let mut data_file = if external_out {
        Some(DataWriter {
            file: AtomicFile::create(&out_dir.join(&data_name))?,
            location: data_name.clone(),
            offset: 0,
        })
    } else {
        None
    };

    // The rewrite.
    let mut quantized_report = Vec::new();
    let mut float_bytes_quantized = 0_u64;
    let mut float_bytes_kept = 0_u64;
    let mut max_relative_error = 0_f64;
    let mut new_graph = Vec::with_capacity(bytes.len() / 3);
    for name in &plan_order {
        let plan = &planned[name];
        let mut node = Vec::new();
        for input in [&plan.quantized, &plan.scale, &plan.zero_point] {
            wire::put_len_field(&mut node, 1, input.as_bytes());
        }
        wire::put_len_field(&mut node, 2, name.as_bytes());
        wire::put_len_field(&mut node, 3, plan.node.as_bytes());
        wire::put_len_field(&mut node, 4, b"DequantizeLinear");
        let mut attribute = Vec::new();
        wire::put_len_field(&mut attribute, 1, b"axis");
        wire::put_varint_field(&mut attribute, 3, plan.axis as u64);
        wire::put_varint_field(&mut attribute, 20, ATTRIBUTE_INT);
        wire::put_len_field(&mut node, 5, &attribute);
        wire::put_len_field(&mut new_graph, 1, &node);
    }
    let model_fields = collect_fields(&bytes, input_display)?;
    let graph_bytes = model_fields
        .iter()
        .find(|f| f.number == 7)
        .and_then(wire::Field::bytes)
        .unwrap_or_default();
    let mut source = Source {
        dir: &in_dir,
        display: input_display,
        open: None,
    };
    for field in collect_fields(graph_bytes, input_display)? {
        match (field.number, field.value) {
            (5, Value::Len(tensor)) => {
                let head =
                    TensorHead::decode(tensor).map_err(|err| malformed(input_display, err))?;
                if let Some(plan) = planned.get(&head.name) {
                    let values = source.floats(tensor, &head, external.get(head.name.as_str()))?;
                    let (rows, cols) = (
                        usize::try_from(head.dims[0]).unwrap_or(0),
                        usize::try_from(head.dims[1]).unwrap_or(0),
                    );
                    let q = quantize_weight(&values, rows, cols, plan.axis).map_err(|why| {
                        Problem::new(format!(
                            "`{input_display}`: weight `{}` {why}",
                            head.name
                        ))
                        .hint("the model is broken; re-export it from a checkpoint without NaN or infinite weights")
                    })?;
                    drop(values);
                    max_relative_error = max_relative_error.max(q.relative_error);
                    float_bytes_quantized += head.elements() * 4;
                    let channels = q.scales.len() as i64;
                    let int8: Vec<u8> = q.values.iter().map(|&v| v as u8).collect();
                    let scales: Vec<u8> = q.scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                    let zeros = vec![0_u8; q.scales.len()];
                    let int8_tensor = match data_file.as_mut() {
                        Some(writer) => {
                            let (offset, length) = writer.append(&int8)?;
                            tensor_bytes(
                                &plan.quantized,
                                INT8,
                                &head.dims,
                                TensorData::External(&writer.location, offset, length),
                            )
                        }
                        None => {
                            tensor_bytes(&plan.quantized, INT8, &head.dims, TensorData::Raw(&int8))
                        }
                    };
                    wire::put_len_field(&mut new_graph, 5, &int8_tensor);
                    wire::put_len_field(
                        &mut new_graph,
                        5,
                        &tensor_bytes(&plan.scale, FLOAT, &[channels], TensorData::Raw(&scales)),
                    );
                    wire::put_len_field(
                        &mut new_graph,
                        5,
                        &tensor_bytes(&plan.zero_point, INT8, &[channels], TensorData::Raw(&zeros)),
                    );
                    quantized_report.push(QuantizedWeight {
                        name: head.name.clone(),
                        op: plan.op.to_owned(),
                        shape: head.dims.clone(),
                        axis: plan.axis,
                        relative_error: q.relative_error,
                    });
                } else {
                    if matches!(head.data_type, 1 | 10 | 11 | 16) {
                        float_bytes_kept += head.elements().saturating_mul(
                            super::ElementType::from_code(head.data_type)
                                .size()
                                .unwrap_or(0),
                        );
                    }
                    match (head.is_external(), data_file.as_mut()) {
                        (true, Some(writer)) => {
                            let Some(entry) = external.get(head.name.as_str()) else {
                                return Err(malformed(
                                    input_display,
                                    "an external tensor was not checked",
                                ));
                            };
                            let raw = source.external(entry)?;
                            let (offset, length) = writer.append(&raw)?;
                            let mut rewritten = Vec::with_capacity(tensor.len() + 64);
                            for f in collect_fields(tensor, input_display)? {
                                if f.number != 13 && f.number != 14 {
                                    rewritten.extend_from_slice(f.raw);
                                }
                            }
                            external_entries(&mut rewritten, &writer.location, offset, length);
                            wire::put_len_field(&mut new_graph, 5, &rewritten);
                        }
                        _ => new_graph.extend_from_slice(field.raw),
                    }
                }
            }
            (11, Value::Len(value)) => {
                let named = Named::decode(value).map_err(|err| malformed(input_display, err))?;
                if !planned.contains_key(&named.name) {
                    new_graph.extend_from_slice(field.raw);
                }
            }
            _ => new_graph.extend_from_slice(field.raw),
        }
    }

    // The model around the new graph, in pieces: the graph's bytes go to the file as they are,
    // never copied into a second buffer of the whole model (the peak memory of a large model is
    // its input plus one copy of the output, not two).
    // A graph field (there is one) ends a piece; the graph is written between two pieces.
    let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
    let ir_after = if opset_after == opset_before {
        model.ir_version
    } else {
        model.ir_version.max(7)
    };
    for field in &model_fields {
        let out = pieces.last_mut().expect("one piece at least");
        match (field.number, field.value) {
            (1, _) => wire::put_varint_field(out, 1, ir_after as u64),
            (7, _) => {
                wire::put_varint(out, (7 << 3) | 2);
                wire::put_varint(out, new_graph.len() as u64);
                pieces.push(Vec::new());
            }
            (8, Value::Len(import)) if opset_after != opset_before => {
                let id = super::proto::OperatorSetIdProto::decode(import)
                    .map_err(|err| malformed(input_display, err))?;
                if is_default_domain(&id.domain) {
                    let mut rewritten = Vec::new();
                    for f in collect_fields(import, input_display)? {
                        if f.number != 2 {
                            rewritten.extend_from_slice(f.raw);
                        }
                    }
                    wire::put_varint_field(&mut rewritten, 2, opset_after as u64);
                    wire::put_len_field(out, 8, &rewritten);
                } else {
                    out.extend_from_slice(field.raw);
                }
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    let model_bytes =
        pieces.iter().map(Vec::len).sum::<usize>() + (pieces.len() - 1) * new_graph.len();
    if model_bytes as u64 > super::MAX_MODEL_BYTES {
        return Err(Problem::new(format!(
            "the quantized `{output_display}` would be {model_bytes} bytes, more than one \
             protobuf file holds"
        ))
        .hint("save the input with external data; the output then keeps its weights in `OUT.onnx.data`")
        .into());
    }

    let mut bytes_after = model_bytes as u64;
    let data_display = match data_file {
        Some(writer) => {
            bytes_after += writer.offset;
            writer.file.commit()?;
            Some(data_name)
        }
        None => None,
    };
    let mut file = AtomicFile::create(output)?;
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            file.write_all(&new_graph)
                .with_context(|| format!("failed to write `{output_display}`"))?;
        }
        file.write_all(piece)
            .with_context(|| format!("failed to write `{output_display}`"))?;
    }
    file.commit()?;
    drop(new_graph);

    let mut bytes_before = summary.bytes;
    let locations: BTreeSet<&str> = summary
        .external_data
        .iter()
        .map(|e| e.location.as_str())
        .collect();
    for location in locations {
        bytes_before += std::fs::metadata(in_dir.join(location)).map_or(0, |m| m.len());
    }

    Ok(QuantizeReport {
        input: input_display.to_owned(),
        output: output_display.to_owned(),
        data_file: data_display,
        min_elements: options.min_elements,
        opset_before,
        opset_after,
        quantized: quantized_report,
        kept,
        float_bytes_quantized,
        float_bytes_kept,
        bytes_before,
        bytes_after,
        max_relative_error,
    })
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn malformed(display: &str, err: impl std::fmt::Display) -> anyhow::Error {
    Problem::new(format!(
        "`{display}` is not a well-formed ONNX model: {err}"
    ))
    .hint("export it again or check that the file is complete")
    .into()
}

fn collect_fields<'a>(buf: &'a [u8], display: &str) -> anyhow::Result<Vec<wire::Field<'a>>> {
    wire::fields(buf)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| malformed(display, err))
}

/// Refuses an output that would replace the input or its external data.
fn refuse_overwriting_input(
    input: &Path,
    output: &Path,
    summary: &super::ModelSummary,
    in_dir: &Path,
    out_dir: &Path,
    data_name: &str,
) -> anyhow::Result<()> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let data = out_dir.join(data_name);
    let clash = same(input, output)
        || summary.external_data.iter().any(|e| {
            let source = in_dir.join(&e.location);
            same(&source, output) || same(&source, &data)
        });
    if clash {
        return Err(Problem::new(format!(
            "`-o {}` would overwrite the input model or its external data",
            output.display()
        ))
        .hint("write the quantized model to another file, e.g. `generator_int8.onnx`")
        .into());
    }
    Ok(())
}

/// Where an input tensor's bytes come from.
struct Source<'a> {
    dir: &'a Path,
    display: &'a str,
    open: Option<(String, std::fs::File)>,
}

impl Source<'_> {
    /// The raw bytes of an external tensor (its range was checked by `inspect`).
    fn external(&mut self, entry: &super::ExternalData) -> anyhow::Result<Vec<u8>> {
        if self.open.as_ref().is_none_or(|(l, _)| *l != entry.location) {
            let path = self.dir.join(&entry.location);
            let file = std::fs::File::open(&path).with_context(|| {
                format!(
                    "failed to open `{}` (external data of `{}`)",
                    entry.location, self.display
                )
            })?;
            self.open = Some((entry.location.clone(), file));
        }
        let Some((_, file)) = self.open.as_mut() else {
            return Err(malformed(self.display, "no external data file"));
        };
        let length = usize::try_from(entry.length)
            .map_err(|_| malformed(self.display, "an external tensor does not fit in memory"))?;
        let mut raw = vec![0_u8; length];
        file.seek(SeekFrom::Start(entry.offset))
            .and_then(|_| file.read_exact(&mut raw))
            .with_context(|| format!("failed to read `{}`", entry.location))?;
        Ok(raw)
    }

    /// A float32 tensor's values, inline (`raw_data` or `float_data`) or external.
    fn floats(
        &mut self,
        tensor: &[u8],
        head: &TensorHead,
        external: Option<&&super::ExternalData>,
    ) -> anyhow::Result<Vec<f32>> {
        let expected = usize::try_from(head.elements())
            .map_err(|_| malformed(self.display, "a tensor does not fit in memory"))?;
        let values = if head.is_external() {
            let Some(entry) = external else {
                return Err(malformed(
                    self.display,
                    "an external tensor was not checked",
                ));
            };
            if entry.length != head.elements() * 4 {
                return Err(malformed(
                    self.display,
                    format!(
                        "tensor `{}` declares {} bytes of external data for {} floats",
                        head.name, entry.length, expected
                    ),
                ));
            }
            le_floats(&self.external(entry)?)
        } else {
            let mut raw: Option<&[u8]> = None;
            let mut packed = Vec::new();
            for field in collect_fields(tensor, self.display)? {
                match (field.number, field.value) {
                    (9, Value::Len(bytes)) => raw = Some(bytes),
                    (4, Value::Len(bytes)) => packed.extend(le_floats(bytes)),
                    (4, Value::Fixed32(bits)) => packed.push(f32::from_bits(bits)),
                    _ => {}
                }
            }
            match raw {
                Some(bytes) => le_floats(bytes),
                None => packed,
            }
        };
        if values.len() != expected {
            return Err(malformed(
                self.display,
                format!(
                    "tensor `{}` holds {} values but its dims {:?} need {expected}",
                    head.name,
                    values.len(),
                    head.dims
                ),
            ));
        }
        Ok(values)
    }
}

fn le_floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

struct DataWriter {
    file: AtomicFile,
    location: String,
    offset: u64,
}

impl DataWriter {
    fn append(&mut self, bytes: &[u8]) -> anyhow::Result<(u64, u64)> {
        let offset = self.offset;
        self.file
            .write_all(bytes)
            .with_context(|| format!("failed to write `{}`", self.location))?;
        self.offset += bytes.len() as u64;
        Ok((offset, bytes.len() as u64))
    }
}

#[derive(Clone, Copy)]
enum TensorData<'a> {
    Raw(&'a [u8]),
    External(&'a str, u64, u64),
}

fn tensor_bytes(name: &str, data_type: i32, dims: &[i64], data: TensorData<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for &d in dims {
        wire::put_varint_field(&mut out, 1, d as u64);
    }
    wire::put_varint_field(&mut out, 2, data_type as u64);
    wire::put_len_field(&mut out, 8, name.as_bytes());
    match data {
        TensorData::Raw(bytes) => wire::put_len_field(&mut out, 9, bytes),
        TensorData::External(location, offset, length) => {
            external_entries(&mut out, location, offset, length);
        }
    }
    out
}

fn external_entries(out: &mut Vec<u8>, location: &str, offset: u64, length: u64) {
    for (key, value) in [
        ("location", location.to_owned()),
        ("offset", offset.to_string()),
        ("length", length.to_string()),
    ] {
        let mut entry = Vec::new();
        wire::put_len_field(&mut entry, 1, key.as_bytes());
        wire::put_len_field(&mut entry, 2, value.as_bytes());
        wire::put_len_field(out, 13, &entry);
    }
    wire::put_varint_field(out, 14, super::proto::DATA_LOCATION_EXTERNAL as u64);
}

/// A quantized weight: int8 values (row-major like the input), one scale per channel.
pub(crate) struct Quantized {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    pub relative_error: f64,
}

/// Symmetric per-channel int8 of a `rows x cols` row-major weight; `axis` 0 means one scale per
/// row, 1 one per column. Refuses NaN and infinite values.
pub(crate) fn quantize_weight(
    values: &[f32],
    rows: usize,
    cols: usize,
    axis: i64,
) -> Result<Quantized, String> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "holds a NaN or infinite value (element {i}); it cannot be quantized"
        ));
    }
    let channels = if axis == 0 { rows } else { cols };
    let channel = |i: usize| {
        if axis == 0 {
            i / cols.max(1)
        } else {
            i % cols.max(1)
        }
    };
    let mut max = vec![0_f32; channels];
    for (i, v) in values.iter().enumerate() {
        let c = channel(i);
        max[c] = max[c].max(v.abs());
    }
    let scales: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let mut error = 0_f64;
    let mut norm = 0_f64;
    let q: Vec<i8> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let s = scales[channel(i)];
            let q = (v / s).round().clamp(-127.0, 127.0) as i8;
            let d = f64::from(q) * f64::from(s) - f64::from(v);
            error += d * d;
            norm += f64::from(v) * f64::from(v);
            q
        })
        .collect();
    Ok(Quantized {
        values: q,
        scales,
        relative_error: if norm > 0.0 {
            (error / norm).sqrt()
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_scales_follow_the_axis() {
        // 2 x 3, row-major: rows [1, -2, 4], [0.5, 1, -8].
        let w = [1.0, -2.0, 4.0, 0.5, 1.0, -8.0];
        let by_col = quantize_weight(&w, 2, 3, 1).expect("quantize");
        assert_eq!(by_col.scales, [1.0 / 127.0, 2.0 / 127.0, 8.0 / 127.0]);
        assert_eq!(by_col.values, [127, -127, 64, 64, 64, -127]);
        let by_row = quantize_weight(&w, 2, 3, 0).expect("quantize");
        assert_eq!(by_row.scales, [4.0 / 127.0, 8.0 / 127.0]);
        assert_eq!(by_row.values, [32, -64, 127, 8, 16, -127]);
        assert!(by_row.relative_error < 0.01, "{}", by_row.relative_error);
    }

    #[test]
    fn zero_channels_and_bad_values() {
        let q = quantize_weight(&[0.0, 0.0], 1, 2, 1).expect("zeros");
        assert_eq!(q.scales, [1.0, 1.0]);
        assert_eq!(q.values, [0, 0]);
        let err = quantize_weight(&[1.0, f32::NAN], 1, 2, 1)
            .err()
            .expect("nan");
        assert!(err.contains("NaN or infinite value (element 1)"), "{err}");
    }
}
