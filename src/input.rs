//! Reading small untrusted files whole: `release.toml`, metric reports, card templates, a
//! baseline `metrics.json`.
//!
//! A path from a pull request can name anything: a FIFO (opening it blocks forever), a device or
//! a symlink to `/dev/zero` (reading never ends), a folder, or a file of gigabytes. So the path
//! is checked to be a regular file *before* it is opened, checked again on the open handle, and
//! read through a bound one byte past the limit. Checkpoints and ONNX files have their own
//! readers (memory-mapped, in `artifacts` and `onnx`) with the same regular-file rule.
//!
//! Layer 2, bounded input and output: imports only the ground floor.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;

use crate::error::Problem;

/// Largest `release.toml` accepted. Real ones are a few KiB; parsing is far from linear in the
/// size of hostile input, so the bound is low.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Largest metric report, template or baseline read whole.
pub const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;

/// Refuses a path that is not a regular file, naming what it is instead. `shown` is how the
/// user wrote the path; `what` names the flag or key (`--config`, `metrics.fid.file`).
pub fn check_regular_file(path: &Path, shown: &str, what: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("failed to read `{shown}`"))?;
    if meta.is_file() {
        return Ok(());
    }
    Err(not_a_file(shown, what, describe(&meta)).into())
}

/// Reads a whole text file of at most `limit` bytes, refusing anything that is not a regular
/// file, larger, or not UTF-8.
pub fn read_text(path: &Path, shown: &str, what: &str, limit: u64) -> anyhow::Result<String> {
    check_regular_file(path, shown, what)?;
    let file = std::fs::File::open(path).with_context(|| format!("failed to read `{shown}`"))?;
    // The path may have been swapped between the check and the open.
    let meta = file
        .metadata()
        .with_context(|| format!("failed to read `{shown}`"))?;
    if !meta.is_file() {
        return Err(not_a_file(shown, what, describe(&meta)).into());
    }
    if meta.len() > limit {
        return Err(too_large(shown, what, meta.len(), limit).into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("failed to read `{shown}`"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(shown, what, bytes.len() as u64, limit).into());
    }
    String::from_utf8(bytes).map_err(|err| {
        Problem::new(format!(
            "`{shown}` is not UTF-8 text (invalid byte at offset {})",
            err.utf8_error().valid_up_to()
        ))
        .hint(format!("{what} must name a UTF-8 text file"))
        .into()
    })
}

fn describe(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

fn not_a_file(shown: &str, what: &str, kind: &str) -> Problem {
    Problem::new(format!("`{shown}` is {kind}, not a file"))
        .hint(format!("{what} must name a regular file"))
}

fn too_large(shown: &str, what: &str, bytes: u64, limit: u64) -> Problem {
    Problem::new(format!(
        "`{shown}` is {bytes} bytes, more than the {limit} bytes accepted for {what}"
    ))
    .hint("this file is far larger than any real one; check that the path names the right file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_folders_devices_and_large_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read_text(dir.path(), "dir", "`--config`", 10).expect_err("a folder");
        assert!(err.to_string().contains("is a folder, not a file"), "{err}");
        let err = read_text(Path::new("/dev/zero"), "zero", "`--config`", 10).expect_err("dev");
        assert!(err.to_string().contains("a device"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
            let err = read_text(&link, "link", "`--config`", 10).expect_err("link to dev");
            assert!(err.to_string().contains("a device"), "{err}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 11]).expect("write");
        let err = read_text(&big, "big", "`--config`", 10).expect_err("too large");
        assert!(err.to_string().contains("11 bytes"), "{err}");
        std::fs::write(&big, b"0123456789").expect("write");
        assert_eq!(
            read_text(&big, "big", "`--config`", 10).expect("fits"),
            "0123456789"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_opening_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        // Opening a FIFO with no writer blocks; the check must answer without opening it.
        let err = read_text(&fifo, "fifo", "`--config`", 10).expect_err("a fifo");
        assert!(err.to_string().contains("named pipe"), "{err}");
    }
}
