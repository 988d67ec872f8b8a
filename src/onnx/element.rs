//! ONNX tensor element types, as the protobuf numbers them, with their sizes and names.

use std::fmt;

use serde::Serialize;

/// `TensorProto.DataType`, by the names users know from NumPy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float (1).
    Float32,
    /// 8-bit unsigned (2).
    Uint8,
    /// 8-bit signed (3).
    Int8,
    /// 16-bit unsigned (4).
    Uint16,
    /// 16-bit signed (5).
    Int16,
    /// 32-bit signed (6).
    Int32,
    /// 64-bit signed (7).
    Int64,
    /// Strings (8).
    String,
    /// Booleans (9).
    Bool,
    /// 16-bit float (10).
    Float16,
    /// 64-bit float (11).
    Float64,
    /// 32-bit unsigned (12).
    Uint32,
    /// 64-bit unsigned (13).
    Uint64,
    /// bfloat16 (16).
    Bfloat16,
    /// Any other code (complex, float8, 4-bit types, or undefined).
    Other(i32),
}

impl ElementType {
    /// Maps a `TensorProto.DataType` code.
    pub fn from_code(code: i32) -> Self {
        match code {
            1 => Self::Float32,
            2 => Self::Uint8,
            3 => Self::Int8,
            4 => Self::Uint16,
            5 => Self::Int16,
            6 => Self::Int32,
            7 => Self::Int64,
            8 => Self::String,
            9 => Self::Bool,
            10 => Self::Float16,
            11 => Self::Float64,
            12 => Self::Uint32,
            13 => Self::Uint64,
            16 => Self::Bfloat16,
            other => Self::Other(other),
        }
    }

    /// Bytes per element, for the types whose size is fixed and whole.
    pub fn size(self) -> Option<u64> {
        match self {
            Self::Uint8 | Self::Int8 | Self::Bool => Some(1),
            Self::Uint16 | Self::Int16 | Self::Float16 | Self::Bfloat16 => Some(2),
            Self::Float32 | Self::Int32 | Self::Uint32 => Some(4),
            Self::Float64 | Self::Int64 | Self::Uint64 => Some(8),
            Self::String | Self::Other(_) => None,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Float32 => "float32",
            Self::Uint8 => "uint8",
            Self::Int8 => "int8",
            Self::Uint16 => "uint16",
            Self::Int16 => "int16",
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::String => "string",
            Self::Bool => "bool",
            Self::Float16 => "float16",
            Self::Float64 => "float64",
            Self::Uint32 => "uint32",
            Self::Uint64 => "uint64",
            Self::Bfloat16 => "bfloat16",
            Self::Other(code) => return write!(f, "data type {code}"),
        };
        f.write_str(name)
    }
}
