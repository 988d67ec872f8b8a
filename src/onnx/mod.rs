//! Static checks of ONNX files, before any ONNX Runtime session exists.
//!
//! [`inspect`] parses the model's protobuf (with `prost` and the hand-written messages of
//! `proto.rs`; no protoc, no build script) and returns a [`ModelSummary`]: IR version, opsets,
//! inputs and outputs with element types and shapes, and every external-data reference, each
//! already confined to the model's folder and checked for size (`external.rs`). `contract.rs`
//! matches the declared inputs and outputs against `[generator]` and `[classifier]`.
//!
//! Nothing here runs the model or reads weights: a refused model is refused before ONNX Runtime
//! opens it, and in particular before ONNX Runtime would follow an external-data path.
//!
//! Layer 4, a stage: imports the configuration and the floors below it.

mod contract;
mod element;
mod external;
mod proto;
pub mod quantize;
mod summary;
mod wire;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use prost::Message as _;

pub use contract::{ClassifierIo, GeneratorIo, check_classifier, check_generator};
pub use external::ExternalData;
pub use summary::{Dim, ElementType, ModelSummary, TensorInfo};

use crate::error::Problem;

/// Protobuf messages cannot exceed 2 GiB, so no valid single-file ONNX model is larger; weights
/// beyond that live in external data files, which are never read into memory here.
pub const MAX_MODEL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The oldest default-domain opset accepted. Opset 7 is the first that ONNX Runtime's CPU
/// provider implements completely; older exports are refused rather than half-run.
pub const MIN_OPSET: i64 = 7;

/// ONNX IR version 3 introduced `opset_import`; anything older is not a model ONNX Runtime loads.
pub const MIN_IR_VERSION: i64 = 3;

/// Parses and checks an ONNX file. `display` names it in messages.
///
/// Refuses, naming the file: a file that is not an ONNX model, an IR version or default-domain
/// opset that is too old, and external data that is absolute, leaves the model's folder (by `..`
/// or a symlink), is missing, or is shorter than the tensor it holds.
pub fn inspect(path: &Path, display: &str) -> anyhow::Result<ModelSummary> {
    let meta = std::fs::metadata(path).with_context(|| format!("failed to read `{display}`"))?;
    if meta.is_dir() {
        return Err(
            Problem::new(format!("`{display}` is a folder, not an ONNX model file"))
                .hint("name the `.onnx` file inside it, e.g. `onnx/generator.onnx`")
                .into(),
        );
    }
    if !meta.is_file() {
        return Err(Problem::new(format!(
            "`{display}` is not a regular file (a device, pipe or socket)"
        ))
        .hint("name the exported `.onnx` file")
        .into());
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(Problem::new(format!(
            "`{display}` is {} bytes, more than a single protobuf file can hold (2 GiB)",
            meta.len()
        ))
        .hint("export large models with external data (`save_as_external_data=True`)")
        .into());
    }
    let bytes = std::fs::read(path).with_context(|| format!("failed to read `{display}`"))?;
    let model = proto::ModelProto::decode(bytes.as_slice()).map_err(|err| {
        Problem::new(format!("`{display}` is not an ONNX model: {err}"))
            .hint("export it with `torch.onnx.export` or check that the file is complete")
    })?;
    drop(bytes);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    summarize(&model, display, meta.len(), dir)
}

fn summarize(
    model: &proto::ModelProto,
    display: &str,
    bytes: u64,
    dir: &Path,
) -> anyhow::Result<ModelSummary> {
    let Some(graph) = &model.graph else {
        return Err(
            Problem::new(format!("`{display}` is not an ONNX model: it has no graph"))
                .hint("export it with `torch.onnx.export` or check that the file is complete")
                .into(),
        );
    };
    if model.ir_version < MIN_IR_VERSION {
        return Err(Problem::new(format!(
            "`{display}` has ONNX IR version {}, older than {MIN_IR_VERSION}",
            model.ir_version
        ))
        .hint("re-export the model with a current exporter")
        .into());
    }
    let mut opsets = BTreeMap::new();
    for import in &model.opset_import {
        let domain = if import.domain == "ai.onnx" {
            String::new()
        } else {
            import.domain.clone()
        };
        opsets.insert(domain, import.version);
    }
    let Some(&opset) = opsets.get("") else {
        return Err(Problem::new(format!(
            "`{display}` imports no default-domain (`ai.onnx`) opset"
        ))
        .hint("re-export the model; every exporter records the opset it targets")
        .into());
    };
    if opset < MIN_OPSET {
        return Err(Problem::new(format!(
            "`{display}` targets opset {opset}, older than {MIN_OPSET}"
        ))
        .hint("re-export with `opset_version=17` (what TinyDiT uses)")
        .into());
    }
    let initializers: std::collections::HashSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(
            graph
                .sparse_initializer
                .iter()
                .filter_map(|s| s.values.as_ref().map(|v| v.name.as_str())),
        )
        .collect();
    let inputs = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(tensor_info)
        .collect();
    let outputs = graph.output.iter().map(tensor_info).collect();
    let external_data = external::check_all(model, dir, display)?;
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_owned();
    Ok(ModelSummary {
        file: display.to_owned(),
        bytes,
        ir_version: model.ir_version,
        opset,
        opsets,
        producer,
        inputs,
        outputs,
        external_data,
    })
}

fn tensor_info(value: &proto::ValueInfoProto) -> TensorInfo {
    let tensor = value.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    TensorInfo {
        name: value.name.clone(),
        dtype: ElementType::from_code(tensor.map_or(0, |t| t.elem_type)),
        shape: tensor.and_then(|t| t.shape.as_ref()).map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match (&d.dim_value, &d.dim_param) {
                    (Some(n), _) => Dim::Fixed(*n),
                    (None, Some(name)) if !name.is_empty() => Dim::Named(name.clone()),
                    _ => Dim::Any,
                })
                .collect()
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use prost::Message as _;

    use super::proto::*;
    use super::*;

    pub(crate) fn value(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.to_owned(),
            r#type: Some(TypeProto {
                tensor_type: Some(TensorTypeProto {
                    elem_type,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| match d {
                                Dim::Fixed(n) => Dimension {
                                    dim_value: Some(*n),
                                    dim_param: None,
                                },
                                Dim::Named(s) => Dimension {
                                    dim_value: None,
                                    dim_param: Some(s.clone()),
                                },
                                Dim::Any => Dimension::default(),
                            })
                            .collect(),
                    }),
                }),
            }),
        }
    }

    /// A generator-shaped model: inputs noise/timestep/breed, output velocity, one initializer
    /// that is also (as older exporters write it) listed among the graph inputs.
    pub(crate) fn generator_model() -> ModelProto {
        let batch = Dim::Named("batch".into());
        ModelProto {
            ir_version: 8,
            producer_name: "pytorch".into(),
            producer_version: "2.15.0".into(),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(GraphProto {
                name: "main".into(),
                input: vec![
                    value(
                        "noise",
                        1,
                        &[batch.clone(), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
                    ),
                    value("timestep", 1, std::slice::from_ref(&batch)),
                    value("breed", 7, std::slice::from_ref(&batch)),
                    value("w", 1, &[Dim::Fixed(4)]),
                ],
                output: vec![value(
                    "velocity",
                    1,
                    &[batch, Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
                )],
                initializer: vec![TensorProto {
                    dims: vec![4],
                    data_type: 1,
                    name: "w".into(),
                    ..TensorProto::default()
                }],
                ..GraphProto::default()
            }),
            functions: vec![],
        }
    }

    pub(crate) fn write(dir: &Path, name: &str, model: &ModelProto) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, model.encode_to_vec()).expect("write model");
        path
    }

    #[test]
    fn summary_lists_inputs_without_initializers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "g.onnx", &generator_model());
        let summary = inspect(&path, "g.onnx").expect("inspect");
        assert_eq!(summary.ir_version, 8);
        assert_eq!(summary.opset, 17);
        assert_eq!(summary.producer, "pytorch 2.15.0");
        let names: Vec<&str> = summary.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["noise", "timestep", "breed"]);
        assert_eq!(
            summary.inputs[0].to_string(),
            "`noise` float32[batch, 3, 32, 32]"
        );
        assert_eq!(summary.inputs[2].dtype, ElementType::Int64);
        assert_eq!(summary.outputs[0].name, "velocity");
    }

    #[test]
    fn a_file_that_is_not_protobuf_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.onnx");
        std::fs::write(&path, b"\xff\xff\xff\xff not a model").expect("write");
        let err = inspect(&path, "x.onnx").expect_err("garbage");
        assert!(
            err.to_string().contains("`x.onnx` is not an ONNX model"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_message_has_no_graph() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.onnx");
        std::fs::write(&path, b"").expect("write");
        let err = inspect(&path, "x.onnx").expect_err("empty");
        assert!(err.to_string().contains("it has no graph"), "{err}");
    }

    #[test]
    fn old_opsets_and_missing_default_domain_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut model = generator_model();
        model.opset_import[0].version = 6;
        let path = write(dir.path(), "old.onnx", &model);
        let err = inspect(&path, "old.onnx").expect_err("old opset");
        assert!(err.to_string().contains("opset 6"), "{err}");
        model.opset_import[0].domain = "com.microsoft".into();
        let path = write(dir.path(), "ms.onnx", &model);
        let err = inspect(&path, "ms.onnx").expect_err("no default domain");
        assert!(err.to_string().contains("no default-domain"), "{err}");
        model.opset_import.push(OperatorSetIdProto {
            domain: "ai.onnx".into(),
            version: 17,
        });
        let path = write(dir.path(), "aionnx.onnx", &model);
        assert_eq!(inspect(&path, "aionnx.onnx").expect("ai.onnx").opset, 17);
    }

    #[test]
    fn unpacked_proto2_dims_decode() {
        // onnx.proto is proto2: `dims` arrives unpacked (one tag per value) from most writers.
        let mut bytes = Vec::new();
        for dim in [2_u8, 3] {
            bytes.extend_from_slice(&[0x08, dim]); // field 1, varint
        }
        bytes.extend_from_slice(&[0x10, 0x01]); // data_type = FLOAT
        let tensor = TensorProto::decode(bytes.as_slice()).expect("decode");
        assert_eq!(tensor.dims, [2, 3]);
        assert_eq!(tensor.data_type, 1);
    }
}
