//! Stateful emulators of the Hugging Face Hub and of the GitHub REST API, for
//! `tinydit-release`'s tests. Each runs as its own binary (`hub-emulator`, `github-emulator`),
//! keeps its state in a data folder, logs every request and injects faults on demand; the
//! tool never links this crate. See `emulators/README.md`.

pub mod fault;
pub mod github;
pub mod hub;
pub mod ratelimit;
pub mod respond;
pub mod server;
pub mod shard;
pub mod util;
