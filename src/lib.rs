//! `tinydit-release`: release a diffusion model from CI.
//!
//! The pipeline runs in stages, each depending only on the outputs of earlier ones:
//! `config` -> `artifacts` -> `smoke` -> `gates` -> `card` -> `publish`. This file only declares
//! the modules and re-exports what callers name from the root; `dispatch` runs a command.
//!
//! The modules stand on seven floors; each imports only its own floor or those below (the test
//! `tests/it/layers.rs` holds the code to it, and finds no circle of imports either):
//! 1. ground: `error`, `env` (the environment snapshot), `secrets`, `names`, `vocab`, `digest`,
//!    `provenance`, `identity`;
//! 2. bounded input and output and the printer: `input`, `output`, `report`;
//! 3. the configuration: `config`;
//! 4. the stages: `artifacts`, `onnx`, `smoke`, `gates`, `card` (and `sarif`);
//! 5. the bundle and its manifest: `bundle`, `manifest`, `sums`;
//! 6. the pipelines: `check`, `publish`, `verify`;
//! 7. the front ends: `cli`, `commands`, `action`, `dispatch`.
//!
//! Nothing below the front ends reads the environment (`main.rs` passes an [`EnvSnapshot`]) or
//! prints except through [`report::Reporter`].

pub mod action;
pub mod artifacts;
pub mod bundle;
pub mod card;
pub mod check;
pub mod cli;
mod commands;
pub mod config;
pub mod digest;
pub mod dispatch;
pub mod env;
pub mod error;
pub mod gates;
pub mod identity;
pub mod input;
pub mod manifest;
pub mod names;
pub mod onnx;
pub mod output;
pub mod provenance;
pub mod publish;
pub mod report;
pub mod sarif;
pub mod secrets;
pub mod smoke;
pub mod space;
pub mod sums;
pub mod verify;
pub mod vocab;

pub use dispatch::run;
pub use env::{Endpoints, EnvSnapshot};
pub use error::Outcome;
pub use provenance::SourceCommit;
