//! `tinydit-release`: release a diffusion model from CI.
//!
//! The pipeline runs in stages, each depending only on the outputs of earlier ones:
//! `config` -> `artifacts` -> `smoke` -> `gates` -> `card` -> `publish`. This file only sequences
//! them for each subcommand; the work lives in the stage modules. Nothing here reads the
//! environment (`main.rs` passes an [`EnvSnapshot`]) or prints (everything goes through
//! [`report::Reporter`]).

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
pub mod vocab;

pub use dispatch::run;
pub use env::{Endpoints, EnvSnapshot};
pub use error::Outcome;
pub use provenance::SourceCommit;
