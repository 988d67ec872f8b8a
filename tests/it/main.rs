//! Integration tests: the real binary against committed fixtures, one module per area.

mod cli;
mod common;
mod config_errors;
mod example;
mod sample;
mod smoke;
