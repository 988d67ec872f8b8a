//! What an ONNX file declares, as `inspect` reads it: the model, its tensors, their shapes and
//! element types.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use super::element::ElementType;
use super::external::ExternalData;

/// What an ONNX file declares, read without running it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    /// The file as named in messages (relative to the repository where possible).
    pub file: String,
    /// Size of the `.onnx` file in bytes (external data not included).
    pub bytes: u64,
    /// `ModelProto.ir_version`.
    pub ir_version: i64,
    /// The default-domain (`ai.onnx`) opset.
    pub opset: i64,
    /// Every imported opset by domain (`""` is the default domain).
    pub opsets: BTreeMap<String, i64>,
    /// `producer_name producer_version`, e.g. `pytorch 2.15.0`.
    pub producer: String,
    /// Graph inputs that are not initializers, in graph order.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs, in graph order.
    pub outputs: Vec<TensorInfo>,
    /// Every external-data reference, already checked.
    pub external_data: Vec<ExternalData>,
}

impl ModelSummary {
    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// A declared graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Element type.
    pub dtype: ElementType,
    /// Dimensions, or `None` when the model declares no shape (any rank).
    pub shape: Option<Vec<Dim>>,
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.name, self.dtype)?;
        match &self.shape {
            Some(dims) => {
                let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", dims.join(", "))
            }
            None => f.write_str("[?]"),
        }
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size such as `batch`.
    Named(String),
    /// Neither a size nor a name: any size.
    Any,
}

impl Dim {
    /// The size when fixed.
    pub fn fixed(&self) -> Option<i64> {
        match self {
            Self::Fixed(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Named(name) => f.write_str(name),
            Self::Any => f.write_str("?"),
        }
    }
}
