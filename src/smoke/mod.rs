//! The smoke stage: run the ONNX generator with ONNX Runtime and look at what it draws.

pub mod runtime;
