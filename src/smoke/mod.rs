//! The smoke stage: run the ONNX generator with ONNX Runtime and look at what it draws.

pub mod checks;
pub mod images;
pub mod noise;
pub mod npy;
pub mod runtime;
pub mod sampler;
pub mod session;
