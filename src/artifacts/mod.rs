//! The `artifacts` stage: turning training outputs into release files.
//!
//! Today that is the safe checkpoint path: `checkpoint` opens a PyTorch file with our own
//! container reader (`container`) and restricted unpickler (`pickle`), `scan` reports what it
//! found, `select` picks the weights to release, and `convert` writes and verifies safetensors.
//! Nothing in here imports, calls or executes anything a checkpoint names.
//!
//! Layer 4, a stage: imports the configuration and the floors below it.

pub mod checkpoint;
pub mod container;
pub mod convert;
pub mod finding;
pub mod pickle;
mod py2_names;
pub mod scan;
pub mod select;
pub mod tensor;
