//! Integration tests: the real binary against committed fixtures, one module per area.

mod action;
mod check;
mod cli;
mod common;
mod config_errors;
mod convert;
mod example;
mod hooks;
mod hostile_text;
mod layers;
#[cfg(unix)]
mod outputs;
mod publish;
mod quantize;
mod sample;
mod scan;
mod smoke;
mod variants;
mod workflows;
