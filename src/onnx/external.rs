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

use super::ElementType;
use super::proto::{
    DATA_LOCATION_EXTERNAL, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto,
};
use crate::error::Problem;

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

/// Checks every external-data reference of the model, including those inside subgraphs and
/// function bodies.
pub(crate) fn check_all(
    model: &ModelProto,
    dir: &Path,
    display: &str,
) -> anyhow::Result<Vec<ExternalData>> {
    let mut tensors = Vec::new();
    if let Some(graph) = &model.graph {
        collect_graph(graph, &mut tensors);
    }
    for function in &model.functions {
        collect_nodes(&function.node, &mut tensors);
    }
    let mut found = Vec::new();
    for tensor in tensors {
        if tensor.data_location == DATA_LOCATION_EXTERNAL || !tensor.external_data.is_empty() {
            found.push(check_one(tensor, dir, display)?);
        }
    }
    Ok(found)
}

fn collect_graph<'m>(graph: &'m GraphProto, out: &mut Vec<&'m TensorProto>) {
    out.extend(&graph.initializer);
    for sparse in &graph.sparse_initializer {
        collect_sparse(sparse, out);
    }
    collect_nodes(&graph.node, out);
}

fn collect_nodes<'m>(nodes: &'m [NodeProto], out: &mut Vec<&'m TensorProto>) {
    for attribute in nodes.iter().flat_map(|n| &n.attribute) {
        out.extend(&attribute.t);
        out.extend(&attribute.tensors);
        if let Some(sparse) = &attribute.sparse_tensor {
            collect_sparse(sparse, out);
        }
        for sparse in &attribute.sparse_tensors {
            collect_sparse(sparse, out);
        }
        if let Some(graph) = &attribute.g {
            collect_graph(graph, out);
        }
        for graph in &attribute.graphs {
            collect_graph(graph, out);
        }
    }
}

fn collect_sparse<'m>(sparse: &'m SparseTensorProto, out: &mut Vec<&'m TensorProto>) {
    out.extend(&sparse.values);
    out.extend(&sparse.indices);
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
    use super::super::proto::{ModelProto, StringStringEntryProto};
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
        use super::super::proto::AttributeProto;
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
}
