//! Integration tests of the emulators: each test spawns an emulator binary on port 0 in its own
//! temp folder and drives it over HTTP (`hub`, `github`), or runs the official Python client
//! against it (`judge`).

mod common;
mod github;
mod hub;
mod judge;
