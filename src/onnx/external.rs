//! External data: tensors whose bytes live in another file next to the model.
//!
//! ONNX Runtime opens `location` relative to the model's folder and reads `length` bytes at
//! `offset`. A model from an untrusted source could point that at `../../secret` or `/etc/passwd`
//! and have the bytes come back as weights (and then as outputs). So every reference is checked
//! here, before ONNX Runtime sees the model, and the rules are strict:
//!
//! - `location` is relative, has no `..` component and no drive or root prefix (checked on the
//!   text alone, so an escaping path is refused without touching the file system);
//! - resolving symlinks keeps it inside the model's folder;
//! - it is a regular file at least `offset + length` bytes long (`length` defaults to what the
//!   tensor's dims and element type need).
//!
//! The referenced file is only ever looked at through its metadata: it is never opened, read, or
//! quoted; messages name the `location` as written in the model.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::element::ElementType;
use super::proto::{
    AttributeProto, DATA_LOCATION_EXTERNAL, GraphProto, ModelProto, SparseTensorProto, TensorProto,
};
use crate::error::Problem;

/// The `location` marker (`*/_ORT_MEM_ADDR_/*`) ONNX Runtime and its execution providers (and
/// OpenVINO's ONNX frontend) read as "the bytes are already in this process, at address
/// `offset`". Only a runtime handing tensors to itself may write it; in a file it asks for an
/// arbitrary memory read, and only recent ONNX Runtime releases (1.31 here) refuse it on load.
const ORT_MEM_ADDR: &str = "_ORT_MEM_ADDR_";

/// One checked external-data reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalData {
    /// The tensor it belongs to.
    pub tensor: String,
    /// `location` as written in the model, relative to the model's folder.
    pub location: String,
    /// Byte offset into the file.
    pub offset: u64,
    /// Bytes the tensor takes.
    pub length: u64,
}

/// How far the walk over a model's graphs goes before it refuses the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkLimits {
    /// Graphs nested inside node attributes (`If`/`Loop`/`Scan` bodies), the main graph being 0.
    pub depth: usize,
    /// Graphs, nodes, attributes and tensors visited, all together.
    pub items: usize,
}

/// The limits of [`check_all`]. Exporters nest control flow a few levels deep; protobuf decoding
/// (prost's recursion limit of 100 messages) stops near 33 levels anyway. A 2 GiB model of tiny
/// nodes holds a few hundred million items; real models have thousands to a few hundred thousand.
pub(crate) const WALK_LIMITS: WalkLimits = WalkLimits {
    depth: 16,
    items: 5_000_000,
};

/// Checks every external-data reference of the model, including those inside subgraphs,
/// function bodies and the default values of function attributes, and refuses tensors whose
/// declared size cannot be a size.
pub(crate) fn check_all(
    model: &ModelProto,
    dir: &Path,
    display: &str,
) -> anyhow::Result<Vec<ExternalData>> {
    check_all_within(model, dir, display, WALK_LIMITS)
}

pub(crate) fn check_all_within(
    model: &ModelProto,
    dir: &Path,
    display: &str,
    limits: WalkLimits,
) -> anyhow::Result<Vec<ExternalData>> {
    let tensors = collect(model, display, limits)?;
    let mut found = Vec::new();
    for tensor in tensors {
        check_size(tensor, display)?;
        if tensor.data_location == DATA_LOCATION_EXTERNAL || !tensor.external_data.is_empty() {
            found.push(check_one(tensor, dir, display)?);
        }
    }
    Ok(found)
}

/// What is left to visit: a graph, or the attributes of a list of nodes (a function's, or a
/// graph's), each with the depth of the graph it belongs to.
enum Work<'m> {
    Graph(&'m GraphProto),
    Attributes(&'m [AttributeProto]),
}

/// Every tensor of the model, found without recursion: an explicit stack, a depth limit on nested
/// graphs and a limit on everything visited, so a hostile file cannot exhaust the stack or the
/// time of the walk.
fn collect<'m>(
    model: &'m ModelProto,
    display: &str,
    limits: WalkLimits,
) -> anyhow::Result<Vec<&'m TensorProto>> {
    let too_many = || -> anyhow::Error {
        Problem::new(format!(
            "`{display}` has more than {} graphs, nodes, attributes and tensors; it was refused \
             rather than walked",
            limits.items
        ))
        .hint("this is far beyond any exported diffusion model; check where the file came from")
        .into()
    };
    let mut out = Vec::new();
    let mut stack: Vec<(Work<'m>, usize)> = Vec::new();
    if let Some(graph) = &model.graph {
        stack.push((Work::Graph(graph), 0));
    }
    for function in &model.functions {
        stack.push((Work::Attributes(&function.attribute_proto), 0));
        for node in &function.node {
            stack.push((Work::Attributes(&node.attribute), 0));
        }
    }
    let mut visited = stack.len();
    while let Some((work, depth)) = stack.pop() {
        match work {
            Work::Graph(graph) => {
                visited = visited
                    .saturating_add(graph.initializer.len())
                    .saturating_add(graph.sparse_initializer.len())
                    .saturating_add(graph.node.len());
                if visited > limits.items {
                    return Err(too_many());
                }
                out.extend(&graph.initializer);
                for sparse in &graph.sparse_initializer {
                    collect_sparse(sparse, &mut out);
                }
                for node in &graph.node {
                    stack.push((Work::Attributes(&node.attribute), depth));
                }
            }
            Work::Attributes(attributes) => {
                for attribute in attributes {
                    visited = visited
                        .saturating_add(1)
                        .saturating_add(attribute.tensors.len())
                        .saturating_add(attribute.sparse_tensors.len())
                        .saturating_add(attribute.graphs.len());
                    if visited > limits.items {
                        return Err(too_many());
                    }
                    out.extend(&attribute.t);
                    out.extend(&attribute.tensors);
                    if let Some(sparse) = &attribute.sparse_tensor {
                        collect_sparse(sparse, &mut out);
                    }
                    for sparse in &attribute.sparse_tensors {
                        collect_sparse(sparse, &mut out);
                    }
                    let nested = attribute.g.as_deref().into_iter().chain(&attribute.graphs);
                    for graph in nested {
                        if depth + 1 > limits.depth {
                            return Err(Problem::new(format!(
                                "`{display}` nests graphs in node attributes more than {} levels \
                                 deep (attribute `{}`); it was refused rather than walked",
                                limits.depth, attribute.name
                            ))
                            .hint("exporters nest control flow a few levels deep; check where the file came from")
                            .into());
                        }
                        stack.push((Work::Graph(graph), depth + 1));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn collect_sparse<'m>(sparse: &'m SparseTensorProto, out: &mut Vec<&'m TensorProto>) {
    out.extend(&sparse.values);
    out.extend(&sparse.indices);
}

/// Refuses a tensor whose dims are negative or whose size in bytes (elements, for types without a
/// fixed size) does not fit in 64 bits: no real tensor has one, and a runtime that multiplies
/// them unchecked allocates or reads the wrong amount.
fn check_size(tensor: &TensorProto, display: &str) -> anyhow::Result<()> {
    let refuse = |what: &str| -> anyhow::Error {
        Problem::new(format!(
            "`{display}`: tensor `{}` declares dims {:?}, {what}",
            tensor.name, tensor.dims
        ))
        .hint("the model is corrupt or was edited by hand; re-export it")
        .into()
    };
    if tensor.dims.iter().any(|&d| d < 0) {
        return Err(refuse("and a dimension cannot be negative"));
    }
    let size = ElementType::from_code(tensor.data_type).size().unwrap_or(1);
    let bytes = tensor.dims.iter().try_fold(size, |acc, &d| {
        u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    });
    if bytes.is_none() {
        return Err(refuse("whose size in bytes overflows 64 bits"));
    }
    Ok(())
}

fn check_one(tensor: &TensorProto, dir: &Path, display: &str) -> anyhow::Result<ExternalData> {
    let name = &tensor.name;
    let refuse_with = |what: String, hint: &str| -> anyhow::Error {
        Problem::new(format!("`{display}`: tensor `{name}` {what}"))
            .hint(hint)
            .into()
    };
    let refuse = |what: String| {
        refuse_with(
            what,
            "external data must be a file inside the model's folder; \
             re-export with `location` set to a plain file name",
        )
    };
    let mut location = None;
    let mut offset = 0_u64;
    let mut length = None;
    for entry in &tensor.external_data {
        let parse = |value: &str| {
            value.parse::<u64>().map_err(|_| {
                refuse(format!(
                    "has external data `{}` = `{value}`, which is not a byte count",
                    entry.key
                ))
            })
        };
        match entry.key.as_str() {
            "location" => location = Some(entry.value.as_str()),
            "offset" => offset = parse(&entry.value)?,
            "length" => length = Some(parse(&entry.value)?),
            _ => {}
        }
    }
    let Some(location) = location.filter(|l| !l.is_empty()) else {
        return Err(refuse(
            "is stored externally but names no `location`".to_owned(),
        ));
    };
    if location.contains(ORT_MEM_ADDR) {
        return Err(refuse(format!(
            "has external data at `{location}`, ONNX Runtime's marker for data already in memory: \
             a runtime that honours it reads process memory at `offset`; it was not opened"
        )));
    }
    let relative = confined(location).map_err(|why| {
        refuse(format!(
            "has external data at `{location}`, which {why}; it was not opened"
        ))
    })?;
    let needed = needed_bytes(tensor);
    if let (Some(declared), Some(needed)) = (length, needed)
        && declared < needed
    {
        return Err(refuse(format!(
            "declares {declared} bytes of external data in `{location}` but its shape needs {needed}"
        )));
    }
    let length = length.or(needed).unwrap_or(0);
    let path = dir.join(&relative);
    // Metadata only: `canonicalize` resolves symlinks with stat/readlink, and `metadata` stats
    // the result. Neither opens the file.
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse_with(
                format!(
                    "has external data in `{location}`, which does not exist next to the model"
                ),
                "copy the external data file next to the model; it belongs to the same export",
            ));
        }
        Err(err) => {
            return Err(refuse(format!(
                "has external data in `{location}`, which cannot be resolved: {err}"
            )));
        }
    };
    let real_dir = dir
        .canonicalize()
        .map_err(|err| refuse(format!("sits in a folder that cannot be resolved: {err}")))?;
    if !real.starts_with(&real_dir) {
        return Err(refuse(format!(
            "has external data at `{location}`, a symlink that leaves the model's folder; \
             it was not opened"
        )));
    }
    let meta = std::fs::metadata(&real)
        .map_err(|err| refuse(format!("has external data in `{location}`: {err}")))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "has external data in `{location}`, which is not a regular file"
        )));
    }
    let end = offset.checked_add(length).ok_or_else(|| {
        refuse(format!(
            "declares an external data range in `{location}` that overflows"
        ))
    })?;
    if meta.len() < end {
        return Err(refuse_with(
            format!(
                "needs bytes {offset}..{end} of `{location}`, but the file has {} bytes",
                meta.len()
            ),
            "the external data file is truncated or from another export; copy it again",
        ));
    }
    Ok(ExternalData {
        tensor: name.clone(),
        location: location.to_owned(),
        offset,
        length,
    })
}

/// The location as a relative path that cannot leave its base folder, judged on the text alone.
fn confined(location: &str) -> Result<PathBuf, &'static str> {
    if location.contains('\0') {
        return Err("contains a NUL byte");
    }
    // Both separators count: a model made on Windows may use `\`, and `..\x` must not slip by.
    let normalized = location.replace('\\', "/");
    let bytes = normalized.as_bytes();
    if normalized.starts_with('/') || (bytes.len() >= 2 && bytes[1] == b':') {
        return Err("is absolute");
    }
    let mut path = PathBuf::new();
    for component in Path::new(&normalized).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("leaves the model's folder (`..`)"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    if path.as_os_str().is_empty() {
        return Err("names no file");
    }
    Ok(path)
}

/// Bytes the tensor's data takes, when its element type has a fixed size.
fn needed_bytes(tensor: &TensorProto) -> Option<u64> {
    let size = ElementType::from_code(tensor.data_type).size()?;
    tensor.dims.iter().try_fold(size, |acc, &d| {
        u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

#[cfg(test)]
mod tests {
    use super::super::proto::{FunctionProto, ModelProto, NodeProto, StringStringEntryProto};
    use super::super::tests::{generator_model, write};
    use super::*;

    fn with_external(location: &str, extra: &[(&str, &str)]) -> ModelProto {
        let mut model = generator_model();
        let graph = model.graph.as_mut().expect("graph");
        let tensor = &mut graph.initializer[0];
        tensor.data_location = DATA_LOCATION_EXTERNAL;
        tensor.external_data = std::iter::once(("location", location))
            .chain(extra.iter().copied())
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_owned(),
                value: v.to_owned(),
            })
            .collect();
        model
    }

    fn inspect_err(dir: &Path, model: &ModelProto) -> String {
        let path = write(dir, "m.onnx", model);
        super::super::inspect(&path, "m.onnx")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_file_in_the_folder_of_the_right_size_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("m.onnx.data"), [0_u8; 16]).expect("write");
        let path = write(dir.path(), "m.onnx", &with_external("m.onnx.data", &[]));
        let summary = super::super::inspect(&path, "m.onnx").expect("accepted");
        assert_eq!(
            summary.external_data,
            [ExternalData {
                tensor: "w".into(),
                location: "m.onnx.data".into(),
                offset: 0,
                length: 16,
            }]
        );
    }

    #[test]
    fn traversal_absolute_and_drive_paths_are_refused_without_touching_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (location, why) in [
            ("../../secret.bin", "leaves the model's folder"),
            ("sub/../../x", "leaves the model's folder"),
            ("..\\secret.bin", "leaves the model's folder"),
            ("/etc/passwd", "is absolute"),
            ("C:\\Windows\\win.ini", "is absolute"),
        ] {
            let err = inspect_err(dir.path(), &with_external(location, &[]));
            assert!(err.contains(&format!("`{location}`")), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(err.contains("tensor `w`"), "{err}");
        }
    }

    #[test]
    fn missing_short_and_symlinked_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = inspect_err(dir.path(), &with_external("absent.bin", &[]));
        assert!(err.contains("`absent.bin`, which does not exist"), "{err}");

        std::fs::write(dir.path().join("short.bin"), [0_u8; 10]).expect("write");
        let err = inspect_err(dir.path(), &with_external("short.bin", &[]));
        assert!(err.contains("needs bytes 0..16 of `short.bin`"), "{err}");
        let err = inspect_err(
            dir.path(),
            &with_external("short.bin", &[("offset", "8"), ("length", "16")]),
        );
        assert!(err.contains("needs bytes 8..24"), "{err}");
        let err = inspect_err(dir.path(), &with_external("short.bin", &[("length", "4")]));
        assert!(err.contains("declares 4 bytes"), "{err}");

        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), [0_u8; 64]).expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link.bin"))
            .expect("symlink");
        let err = inspect_err(dir.path(), &with_external("link.bin", &[]));
        assert!(
            err.contains("a symlink that leaves the model's folder"),
            "{err}"
        );
    }

    #[test]
    fn tensors_in_subgraphs_are_checked_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = with_external("../x", &[]).graph.expect("graph");
        let mut model = generator_model();
        model.graph.as_mut().expect("graph").node.push(NodeProto {
            name: "if".into(),
            op_type: "If".into(),
            attribute: vec![AttributeProto {
                name: "then_branch".into(),
                g: Some(Box::new(inner)),
                ..AttributeProto::default()
            }],
        });
        let err = inspect_err(dir.path(), &model);
        assert!(err.contains("`../x`"), "{err}");
    }

    #[test]
    fn bad_numbers_and_missing_location_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = inspect_err(dir.path(), &with_external("a.bin", &[("offset", "-1")]));
        assert!(err.contains("`offset` = `-1`"), "{err}");
        let err = inspect_err(dir.path(), &with_external("", &[]));
        assert!(err.contains("names no `location`"), "{err}");
    }

    /// Issue 8 item 13: a model-local function's attribute default
    /// (`FunctionProto.attribute_proto`) is a tensor like any other.
    #[test]
    fn tensors_in_function_attribute_defaults_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tensor = with_external("../../secret.bin", &[])
            .graph
            .expect("graph")
            .initializer[0]
            .clone();
        let mut model = generator_model();
        model.functions.push(FunctionProto {
            name: "AddBias".into(),
            node: vec![],
            attribute_proto: vec![AttributeProto {
                name: "bias".into(),
                t: Some(tensor),
                ..AttributeProto::default()
            }],
        });
        let err = inspect_err(dir.path(), &model);
        assert!(err.contains("`../../secret.bin`"), "{err}");
        assert!(err.contains("leaves the model's folder"), "{err}");
    }

    /// `*/_ORT_MEM_ADDR_/*` is refused even when a file of that name exists and is long enough.
    #[test]
    fn the_runtime_memory_address_marker_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("*/_ORT_MEM_ADDR_");
        std::fs::create_dir_all(&marker).expect("mkdir");
        std::fs::write(marker.join("*"), [0_u8; 64]).expect("write");
        let err = inspect_err(
            dir.path(),
            &with_external("*/_ORT_MEM_ADDR_/*", &[("offset", "16"), ("length", "16")]),
        );
        assert!(
            err.contains("ONNX Runtime's marker for data already in memory"),
            "{err}"
        );
        assert!(err.contains("it was not opened"), "{err}");
    }

    #[test]
    fn sizes_that_overflow_and_negative_dims_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("w.bin"), [0_u8; 64]).expect("write");
        let mut model = with_external("w.bin", &[]);
        model.graph.as_mut().expect("graph").initializer[0].dims = vec![1 << 62, 4];
        let err = inspect_err(dir.path(), &model);
        assert!(
            err.contains(
                "tensor `w` declares dims [4611686018427387904, 4], whose size in bytes overflows"
            ),
            "{err}"
        );
        model.graph.as_mut().expect("graph").initializer[0].dims = vec![-4];
        let err = inspect_err(dir.path(), &model);
        assert!(err.contains("a dimension cannot be negative"), "{err}");
        // Inline tensors too.
        let mut inline = generator_model();
        inline.graph.as_mut().expect("graph").initializer[0].dims = vec![1 << 40, 1 << 40];
        let err = inspect_err(dir.path(), &inline);
        assert!(err.contains("overflows 64 bits"), "{err}");
    }

    /// A model whose `If` bodies nest `depth` graphs deep, the innermost holding `tensor`.
    fn nested(depth: usize, tensor: TensorProto) -> ModelProto {
        let mut graph = GraphProto {
            initializer: vec![tensor],
            ..GraphProto::default()
        };
        for _ in 0..depth {
            graph = GraphProto {
                node: vec![NodeProto {
                    name: "if".into(),
                    op_type: "If".into(),
                    attribute: vec![AttributeProto {
                        name: "then_branch".into(),
                        g: Some(Box::new(graph)),
                        ..AttributeProto::default()
                    }],
                }],
                ..GraphProto::default()
            };
        }
        let mut model = generator_model();
        model.graph.as_mut().expect("graph").node = graph.node;
        model
    }

    /// Issue 8 item 13: the walk is bounded in depth and in count, whatever the file holds.
    #[test]
    fn the_walk_is_bounded_in_depth_and_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = generator_model().graph.expect("graph").initializer[0].clone();
        // 20 levels decode (prost stops at 100 nested messages, about 33 levels) but exceed 16.
        let err = inspect_err(dir.path(), &nested(20, plain.clone()));
        assert!(
            err.contains("nests graphs in node attributes more than 16 levels deep"),
            "{err}"
        );
        let path = write(dir.path(), "ok.onnx", &nested(16, plain.clone()));
        super::super::inspect(&path, "ok.onnx").expect("16 levels are fine");

        let mut wide = generator_model();
        wide.graph.as_mut().expect("graph").initializer = vec![plain; 50];
        let limits = WalkLimits {
            depth: 16,
            items: 40,
        };
        let err = check_all_within(&wide, dir.path(), "wide.onnx", limits)
            .expect_err("too many")
            .to_string();
        assert!(
            err.contains("`wide.onnx` has more than 40 graphs, nodes, attributes and tensors"),
            "{err}"
        );
        let limits = WalkLimits {
            depth: 16,
            items: 60,
        };
        check_all_within(&wide, dir.path(), "wide.onnx", limits).expect("within the limit");
    }
}
