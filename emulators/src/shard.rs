//! Reads Xet CAS shards (`*.mdb`) for the one mapping the Hub needs: file sha256 → Xet file
//! hash and size (hub-protocol.md §8.1). Bounded: a shard is read whole only up to
//! [`MAX_SHARD_BYTES`], every record is bounds-checked, and the walk stops at the bookend or
//! the end of the data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// Largest shard file read.
pub const MAX_SHARD_BYTES: u64 = 512 << 20;
/// ASCII tag at the start of every shard.
const TAG: &[u8] = b"HFRepoMetaData\0";
const RECORD: usize = 48;
const HEADER: usize = 48;
const FLAG_VERIFICATION: u32 = 1 << 31;
const FLAG_METADATA_EXT: u32 = 1 << 30;
/// Deepest folder level searched for shards under the CAS folder.
const MAX_DEPTH: usize = 8;

/// One file described by a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFile {
    /// Canonical hex of the Xet file hash (what `X-Xet-Hash` carries).
    pub xet_hash: String,
    /// The file's sha256, ordinary hex (what `lfsFile.oid` carries).
    pub sha256: String,
    /// File size in bytes (sum of its segments).
    pub size: u64,
    /// Where its bytes are: each segment's xorb (canonical hex) and chunk range `[start, end)`.
    pub segments: Vec<Segment>,
}

/// One segment of a file: a chunk range of one xorb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The xorb's hash, canonical hex (its file in the CAS is `xorbs/default.<hash>`).
    pub xorb: String,
    /// First chunk.
    pub start: u32,
    /// One past the last chunk.
    pub end: u32,
}

/// The canonical hex of a 32-byte hash stored as four little-endian u64 words.
pub fn hash_hex(bytes: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for word in bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let _ = write!(out, "{:016x}", u64::from_le_bytes(w));
    }
    out
}

fn hash_at(data: &[u8], at: usize) -> Option<[u8; 32]> {
    data.get(at..at + 32)?.try_into().ok()
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Parses one shard's file-info section. Files without a sha256 extension are skipped.
pub fn parse_shard(data: &[u8]) -> Result<Vec<ShardFile>> {
    if data.len() < HEADER || !data.starts_with(TAG) {
        bail!("not a Xet shard (no HFRepoMetaData tag)");
    }
    let version = u64_at(data, 32).unwrap_or(0);
    if version != 2 {
        bail!("unsupported shard version {version}");
    }
    let mut files = Vec::new();
    let mut at = HEADER;
    loop {
        let Some(hash) = hash_at(data, at) else {
            bail!("shard ends inside the file-info section at byte {at}");
        };
        if hash == [0xff; 32] {
            return Ok(files);
        }
        let flags = u32_at(data, at + 32).context("truncated file header")?;
        let segments = u32_at(data, at + 36).context("truncated file header")? as usize;
        at += RECORD;
        let mut size = 0u64;
        let mut parts = Vec::new();
        for i in 0..segments.min(data.len() / RECORD) {
            let seg = at + i * RECORD;
            size += u64::from(u32_at(data, seg + 36).context("truncated segment entry")?);
            parts.push(Segment {
                xorb: hash_hex(&hash_at(data, seg).context("truncated segment entry")?),
                start: u32_at(data, seg + 40).context("truncated segment entry")?,
                end: u32_at(data, seg + 44).context("truncated segment entry")?,
            });
        }
        at = at
            .checked_add(
                segments
                    .checked_mul(RECORD)
                    .context("segment count overflows")?,
            )
            .context("segment count overflows")?;
        if flags & FLAG_VERIFICATION != 0 {
            at = at
                .checked_add(segments * RECORD)
                .context("segment count overflows")?;
        }
        if at > data.len() {
            bail!("file entry runs past the end of the shard");
        }
        if flags & FLAG_METADATA_EXT != 0 {
            let sha = hash_at(data, at).context("truncated metadata extension")?;
            at += RECORD;
            files.push(ShardFile {
                xet_hash: hash_hex(&hash),
                sha256: hash_hex(&sha),
                size,
                segments: parts,
            });
        }
    }
}

/// Every `*.mdb` file under `dir` (a few levels deep), sorted. The client's own shard caches
/// (`shard-cache/`, `shard-session/`), which hf-xet keeps beside a `local://` CAS, are not
/// the CAS: a shard only there does not prove an upload.
pub fn find_shards(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let client_state = path
                .file_name()
                .is_some_and(|n| n == "shard-cache" || n == "shard-session");
            if kind.is_dir() && depth < MAX_DEPTH && !client_state {
                stack.push((path, depth + 1));
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "mdb") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// sha256 → file for every readable shard under `dir`; unreadable or foreign files are
/// skipped (the client writes its caches beside the CAS).
pub fn scan(dir: &Path) -> BTreeMap<String, ShardFile> {
    let mut map = BTreeMap::new();
    for path in find_shards(dir) {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.len() > MAX_SHARD_BYTES {
            continue;
        }
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(files) = parse_shard(&data) {
            for file in files {
                map.insert(file.sha256.clone(), file);
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut data = TAG.to_vec();
        data.resize(32, 7);
        data.extend_from_slice(&2u64.to_le_bytes());
        data.extend_from_slice(&0u64.to_le_bytes());
        data
    }

    fn words(hex: &str) -> [u8; 32] {
        // Inverse of `hash_hex`: each 16-digit group is a little-endian u64.
        let mut out = [0u8; 32];
        for (i, chunk) in hex.as_bytes().chunks(16).enumerate() {
            let word =
                u64::from_str_radix(std::str::from_utf8(chunk).unwrap_or("0"), 16).unwrap_or(0);
            out[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    #[test]
    fn word_order_gives_the_ordinary_sha256_hex() {
        // hub-protocol.md §8.1: the raw stored bytes of sha256("") start 141cfc98...
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let stored = words(empty);
        assert_eq!(crate::util::hex(&stored[..8]), "141cfc9842c4b0e3");
        assert_eq!(hash_hex(&stored), empty);
    }

    #[test]
    fn parses_file_with_sha256_extension_and_skips_verification_entries() {
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let file_hash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let mut data = header();
        data.extend_from_slice(&words(file_hash));
        data.extend_from_slice(&(FLAG_VERIFICATION | FLAG_METADATA_EXT).to_le_bytes());
        data.extend_from_slice(&2u32.to_le_bytes());
        data.extend_from_slice(&[0; 8]);
        for size in [1000u32, 234] {
            data.extend_from_slice(&[9; 32]);
            data.extend_from_slice(&0u32.to_le_bytes());
            data.extend_from_slice(&size.to_le_bytes());
            data.extend_from_slice(&[0; 8]);
        }
        data.extend_from_slice(&[5; 96]); // two verification entries
        data.extend_from_slice(&words(sha));
        data.extend_from_slice(&[0; 16]);
        data.extend_from_slice(&[0xff; 48]); // bookend
        let files = parse_shard(&data).expect("valid shard");
        assert_eq!(
            files,
            vec![ShardFile {
                xet_hash: file_hash.to_owned(),
                sha256: sha.to_owned(),
                size: 1234,
                segments: vec![
                    Segment {
                        xorb: "09".repeat(32),
                        start: 0,
                        end: 0,
                    };
                    2
                ],
            }]
        );
        // Cut short: an error, not a panic.
        assert!(parse_shard(&data[..data.len() - 60]).is_err());
        assert!(parse_shard(b"not a shard").is_err());
    }

    #[test]
    fn huge_segment_count_is_an_error() {
        let mut data = header();
        data.extend_from_slice(&[1; 32]);
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(&[0; 8]);
        assert!(parse_shard(&data).is_err());
    }
}
