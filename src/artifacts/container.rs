//! Strict reading of the zip container torch writes (`torch.save`, torch >= 1.6), and format
//! detection.
//!
//! Our own reader rather than a zip crate, because the checks are the point (checkpoint-safety.md
//! §2, §7): the central directory and every local header are read and compared; duplicate names,
//! more than one archive prefix, bytes before the first local header or after the end records
//! (pickle/zip polyglots), encryption and patch flags, compression and size mismatches are all
//! refused. ZIP64 records are followed, as torch always writes them. Record data is never read
//! here: entries are byte ranges of the file.

// A `Finding` is the error of every function here; it is returned once per file, so its size
// does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use super::finding::{Finding, FindingKind, Member};

/// Which container a file is, decided like torch: by the first four bytes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `PK\x03\x04`: the zip format.
    Zip,
    /// Anything else: the legacy stream format (or not a checkpoint at all).
    Legacy,
}

/// Detects the format, refusing the pre-0.1.10 tar format and files that are both.
pub fn detect(data: &[u8]) -> Result<Format, Finding> {
    if data.is_empty() {
        return Err(Finding::corrupt(
            FindingKind::Container,
            "the file is empty",
        ));
    }
    if data.starts_with(b"PK\x03\x04") {
        return Ok(Format::Zip);
    }
    if data.get(257..262) == Some(b"ustar") {
        return Err(Finding::new(
            super::finding::Severity::Unsupported,
            FindingKind::Container,
            "a tar archive: the pre-0.1.10 PyTorch format, which even torch refuses with weights_only",
        ));
    }
    if let Some(eocd) = find_eocd(data)
        && read_end_records(data, eocd).is_ok()
    {
        let start = find(data, b"PK\x03\x04").unwrap_or(0) as u64;
        return Err(Finding::corrupt(
            FindingKind::Container,
            format!(
                "a pickle/zip polyglot: the file does not start as a zip, yet a zip directory at byte \
                 {eocd} describes entries from byte {start}; readers disagree on which to load"
            ),
        )
        .at_file(start));
    }
    Ok(Format::Legacy)
}

/// One zip entry: its name and where its (stored) bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Full name, e.g. `archive/data.pkl`.
    pub name: String,
    /// Absolute offset of the first data byte.
    pub start: u64,
    /// Data length (as stored).
    pub len: u64,
    /// Compression method; torch stores checkpoint records uncompressed (0), TorchScript
    /// archives deflate their code (8). Compressed data is never inflated.
    pub method: u16,
}

/// A zip archive whose structure passed every check.
#[derive(Debug, Clone)]
pub struct Zip {
    /// Entries in central-directory order.
    pub entries: Vec<Entry>,
    /// The archive folder every entry lives in (torch takes it from the first entry).
    pub root: String,
}

impl Zip {
    /// The entry `<root>/<relative>`.
    pub fn get(&self, relative: &str) -> Option<&Entry> {
        let name = format!("{}/{relative}", self.root);
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Most entries an archive may have (a checkpoint has one per storage).
const MAX_ENTRIES: u64 = 10_000_000;

fn corrupt(message: impl Into<String>) -> Finding {
    Finding::corrupt(FindingKind::Container, message)
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

fn u16_at(data: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    data.get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    data.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    data.get(at..at.checked_add(8)?)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn bytes_at(data: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    data.get(at..end)
}

/// The last end-of-central-directory signature within the window a comment allows.
fn find_eocd(data: &[u8]) -> Option<usize> {
    if data.len() < 22 {
        return None;
    }
    let lowest = data.len().saturating_sub(22 + 65_535);
    (lowest..=data.len() - 22)
        .rev()
        .find(|&i| data[i..i + 4] == *b"PK\x05\x06")
}

/// Where the central directory is: `(entry count, offset, size, end of the directory)`.
struct Directory {
    count: u64,
    offset: u64,
    size: u64,
    /// The directory must end exactly here (the ZIP64 end record, or the classic one).
    end: u64,
}

fn read_end_records(data: &[u8], eocd: usize) -> Result<Directory, Finding> {
    let eocd = eocd as u64;
    let truncated = || corrupt("truncated end-of-central-directory record");
    let disk = u16_at(data, eocd + 4).ok_or_else(truncated)?;
    let cd_disk = u16_at(data, eocd + 6).ok_or_else(truncated)?;
    let count = u16_at(data, eocd + 10).ok_or_else(truncated)?;
    let size = u32_at(data, eocd + 12).ok_or_else(truncated)?;
    let offset = u32_at(data, eocd + 16).ok_or_else(truncated)?;
    let comment = u16_at(data, eocd + 20).ok_or_else(truncated)?;
    if disk != 0 || cd_disk != 0 {
        return Err(corrupt("a multi-disk zip archive"));
    }
    let end = eocd + 22 + u64::from(comment);
    if end != data.len() as u64 {
        return Err(if end < data.len() as u64 {
            corrupt(format!(
                "{} bytes after the end of the zip archive (at byte {end})",
                data.len() as u64 - end
            ))
            .at_file(end)
        } else {
            truncated()
        });
    }
    let locator = eocd.checked_sub(20);
    if let Some(locator) = locator.filter(|&l| bytes_at(data, l, 4) == Some(b"PK\x06\x07")) {
        let z64 = u64_at(data, locator + 8).ok_or_else(truncated)?;
        if bytes_at(data, z64, 4) != Some(b"PK\x06\x06") {
            return Err(corrupt(format!("no ZIP64 end record at byte {z64}")));
        }
        let record_size = u64_at(data, z64 + 4).ok_or_else(truncated)?;
        if z64.checked_add(12).and_then(|v| v.checked_add(record_size)) != Some(locator) {
            return Err(corrupt(
                "bytes between the ZIP64 end record and its locator",
            ));
        }
        return Ok(Directory {
            count: u64_at(data, z64 + 32).ok_or_else(truncated)?,
            size: u64_at(data, z64 + 40).ok_or_else(truncated)?,
            offset: u64_at(data, z64 + 48).ok_or_else(truncated)?,
            end: z64,
        });
    }
    Ok(Directory {
        count: u64::from(count),
        offset: u64::from(offset),
        size: u64::from(size),
        end: eocd,
    })
}

/// Reads `len` bytes at an absolute offset; `None` past the end of the file.
pub type ReadAt<'a> = &'a dyn Fn(u64, usize) -> Option<Vec<u8>>;

/// A [`ReadAt`] over bytes in memory.
pub fn slice_reader(data: &[u8]) -> impl Fn(u64, usize) -> Option<Vec<u8>> + '_ {
    move |at, len| bytes_at(data, at, len as u64).map(<[u8]>::to_vec)
}

/// Reads and checks a zip archive's structure. `data` is the whole file; the local headers,
/// scattered through it, are read with `read_at` instead, so that checking them does not make
/// the file's pages resident (see `checkpoint.rs`).
pub fn read_zip(data: &[u8], read_at: ReadAt<'_>) -> Result<Zip, Finding> {
    let eocd = find_eocd(data).ok_or_else(|| {
        corrupt("no end-of-central-directory record: the zip is truncated or not a zip".to_owned())
            .at_file(data.len() as u64)
    })?;
    let dir = read_end_records(data, eocd)?;
    if dir.count > MAX_ENTRIES {
        return Err(corrupt(format!(
            "{} entries in the zip directory",
            dir.count
        )));
    }
    if dir.offset.checked_add(dir.size) != Some(dir.end) {
        return Err(corrupt(format!(
            "the central directory ({} bytes at byte {}) does not end where the end records start \
             (byte {})",
            dir.size, dir.offset, dir.end
        )));
    }
    let mut entries = Vec::new();
    let mut names = HashSet::new();
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    let mut p = dir.offset;
    for index in 0..dir.count {
        let truncated = || corrupt(format!("central directory entry {index} is truncated"));
        if bytes_at(data, p, 4) != Some(b"PK\x01\x02") {
            return Err(corrupt(format!(
                "central directory entry {index} at byte {p} has no signature"
            ))
            .at_file(p));
        }
        let flags = u16_at(data, p + 8).ok_or_else(truncated)?;
        let method = u16_at(data, p + 10).ok_or_else(truncated)?;
        let mut csize = u64::from(u32_at(data, p + 20).ok_or_else(truncated)?);
        let mut usize_ = u64::from(u32_at(data, p + 24).ok_or_else(truncated)?);
        let name_len = u64::from(u16_at(data, p + 28).ok_or_else(truncated)?);
        let extra_len = u64::from(u16_at(data, p + 30).ok_or_else(truncated)?);
        let comment_len = u64::from(u16_at(data, p + 32).ok_or_else(truncated)?);
        let mut local = u64::from(u32_at(data, p + 42).ok_or_else(truncated)?);
        let name = bytes_at(data, p + 46, name_len).ok_or_else(truncated)?;
        let Ok(name) = std::str::from_utf8(name) else {
            return Err(corrupt(format!(
                "entry {index} has a name that is not UTF-8"
            )));
        };
        // A NUL or other control character: C readers (miniz, libzip users) end the name at the
        // NUL, so `archive/data.pkl\0x` is a second `archive/data.pkl` to them and not to us.
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(corrupt(format!(
                "entry {index} is named `{}`, with the control character {c:?}; readers disagree \
                 on where such a name ends",
                name.escape_debug()
            ))
            .member(Member::Entry(name.to_owned()))
            .at_file(p));
        }
        let name = name.to_owned();
        let extra = bytes_at(data, p + 46 + name_len, extra_len).ok_or_else(truncated)?;
        let mut fields = [&mut usize_, &mut csize, &mut local];
        read_zip64_extra(extra, &mut fields);
        let member = Member::Entry(name.clone());
        if flags & 0x0061 != 0 {
            return Err(corrupt(format!(
                "entry `{name}` has general-purpose flags {flags:#06x}: encrypted (bit 0), patched \
                 (bit 5) or strongly encrypted (bit 6) data is refused"
            ))
            .member(member));
        }
        if method == 0 && csize != usize_ {
            return Err(corrupt(format!(
                "entry `{name}` is stored but its sizes differ ({csize} stored, {usize_} \
                 uncompressed)"
            ))
            .member(member));
        }
        if !names.insert(name.clone()) {
            return Err(corrupt(format!(
                "two entries are named `{name}`; readers disagree on which one counts"
            ))
            .member(member)
            .at_file(local));
        }
        // The local header must agree with the central directory.
        let lh = |off: u64| {
            corrupt(format!(
                "local header of `{name}` at byte {local} is truncated"
            ))
            .at_file(local + off)
        };
        let header = read_at(local, 30).unwrap_or_default();
        if header.get(..4) != Some(b"PK\x03\x04") {
            return Err(corrupt(format!(
                "entry `{name}` points at byte {local}, where no local header starts"
            ))
            .member(member)
            .at_file(local));
        }
        let local_flags = u16_at(&header, 6).ok_or_else(|| lh(6))?;
        let local_method = u16_at(&header, 8).ok_or_else(|| lh(8))?;
        let local_csize = u32_at(&header, 18).ok_or_else(|| lh(18))?;
        let local_name_len = u64::from(u16_at(&header, 26).ok_or_else(|| lh(26))?);
        let local_extra_len = u64::from(u16_at(&header, 28).ok_or_else(|| lh(28))?);
        let local_name = read_at(local + 30, local_name_len as usize).ok_or_else(|| lh(30))?;
        if local_name != name.as_bytes() {
            return Err(corrupt(format!(
                "the central directory names `{name}` but its local header names `{}`",
                String::from_utf8_lossy(&local_name)
            ))
            .member(member)
            .at_file(local));
        }
        if local_flags & 0x0061 != 0 || local_method != method {
            return Err(corrupt(format!(
                "the local header of `{name}` disagrees with the central directory on flags or \
                 compression"
            ))
            .member(member)
            .at_file(local));
        }
        if local_flags & 0x0008 == 0 && local_csize != u32::MAX && u64::from(local_csize) != csize {
            return Err(corrupt(format!(
                "the local header of `{name}` gives size {local_csize}, the central directory \
                 {csize}"
            ))
            .member(member)
            .at_file(local));
        }
        let start = local + 30 + local_name_len + local_extra_len;
        let end = start
            .checked_add(csize)
            .filter(|&e| e <= dir.offset)
            .ok_or_else(|| {
                corrupt(format!(
                    "entry `{name}` ({csize} bytes at byte {start}) runs past the central directory"
                ))
                .member(member.clone())
            })?;
        ranges.push((local, end, name.clone()));
        entries.push(Entry {
            name,
            start,
            len: csize,
            method,
        });
        p = p + 46 + name_len + extra_len + comment_len;
    }
    if p != dir.end {
        return Err(corrupt(format!(
            "the central directory declares {} entries but they end at byte {p}, not {}",
            dir.count, dir.end
        )));
    }
    ranges.sort();
    match ranges.first() {
        Some(&(first, _, _)) if first > 0 => {
            return Err(corrupt(format!(
                "{first} bytes before the first local header (a pickle/zip polyglot?)"
            ))
            .at_file(0));
        }
        None => return Err(corrupt("the zip archive has no entries")),
        _ => {}
    }
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(corrupt(format!(
                "entries `{}` and `{}` overlap",
                pair[0].2, pair[1].2
            ))
            .member(Member::Entry(pair[1].2.clone())));
        }
    }
    let root = entries[0]
        .name
        .split_once('/')
        .map(|(root, _)| root.to_owned())
        .ok_or_else(|| {
            corrupt(format!(
                "the first entry `{}` is not inside an archive folder",
                entries[0].name
            ))
        })?;
    let prefix = format!("{root}/");
    if let Some(outside) = entries.iter().find(|e| !e.name.starts_with(&prefix)) {
        let other = outside.name.split('/').next().unwrap_or("");
        return Err(corrupt(format!(
            "more than one archive prefix: `{root}/` and `{other}/` (entry `{}`); torch reads \
             the first, other tools may not",
            outside.name
        ))
        .member(Member::Entry(outside.name.clone())));
    }
    Ok(Zip { entries, root })
}

/// Applies a ZIP64 extended-information extra field (id 1) to the 32-bit fields set to
/// `0xFFFFFFFF`, in the order the format defines: uncompressed size, compressed size, offset.
fn read_zip64_extra(extra: &[u8], fields: &mut [&mut u64; 3]) {
    let mut i = 0usize;
    while i + 4 <= extra.len() {
        let id = u16::from_le_bytes([extra[i], extra[i + 1]]);
        let len = usize::from(u16::from_le_bytes([extra[i + 2], extra[i + 3]]));
        let body = &extra[(i + 4).min(extra.len())..(i + 4 + len).min(extra.len())];
        if id == 1 {
            let mut at = 0;
            for field in fields.iter_mut() {
                if **field == u64::from(u32::MAX) && at + 8 <= body.len() {
                    **field = u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
                    at += 8;
                }
            }
        }
        i += 4 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal stored zip in torch's layout (data descriptors, zero timestamps).
    fn zip(entries: &[(&str, &[u8])], prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
        let mut out = prefix.to_vec();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[0, 0, 0x08, 0x08, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[0, 0, 0, 0, 0x08, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(suffix);
        out
    }

    #[test]
    fn a_well_formed_archive_reads_with_its_root() {
        let data = zip(
            &[
                ("archive/data.pkl", b"\x80\x02}."),
                ("archive/version", b"3\n"),
            ],
            b"",
            b"",
        );
        let archive = read_zip(&data, &slice_reader(&data)).expect("valid");
        assert_eq!(archive.root, "archive");
        let pkl = archive.get("data.pkl").expect("entry");
        assert_eq!(
            &data[pkl.start as usize..(pkl.start + pkl.len) as usize],
            b"\x80\x02}."
        );
    }

    #[test]
    fn structural_tricks_are_refused() {
        let cases: &[(Vec<u8>, &str)] = &[
            (
                zip(&[("a/x", b"1"), ("a/x", b"2")], b"", b""),
                "two entries are named",
            ),
            (
                zip(&[("a/x", b"1"), ("b/x", b"2")], b"", b""),
                "more than one archive prefix",
            ),
            (zip(&[("a/x", b"1")], b"", b"junk"), "bytes after the end"),
            (
                zip(&[("x", b"1")], b"", b""),
                "not inside an archive folder",
            ),
        ];
        for (data, needle) in cases {
            let err = read_zip(data, &slice_reader(data)).expect_err(needle);
            assert!(err.message.contains(needle), "{}", err.message);
        }
        for name in [
            "archive/data.pkl\0",
            "archive/data.pkl\0x",
            "archive/da\nta.pkl",
        ] {
            let data = zip(
                &[("archive/data.pkl", b"\x80\x02}."), (name, b"x")],
                b"",
                b"",
            );
            let err = read_zip(&data, &slice_reader(&data)).expect_err(name);
            assert!(
                err.message.contains("control character"),
                "{name:?}: {}",
                err.message
            );
        }
        let polyglot = zip(&[("a/x", b"1")], b"\x80\x02K\x01.", b"");
        let err = detect(&polyglot).expect_err("polyglot");
        assert!(err.message.contains("polyglot"), "{}", err.message);
        assert_eq!(err.file_offset, Some(5));
        let mut mismatch = zip(&[("a/x", b"1")], b"", b"");
        mismatch[30] = b'b';
        let err = read_zip(&mismatch, &slice_reader(&mismatch)).expect_err("mismatch");
        assert!(
            err.message.contains("local header names `b/x`"),
            "{}",
            err.message
        );
        let mut encrypted = zip(&[("a/x", b"1")], b"", b"");
        let cd = find(&encrypted, b"PK\x01\x02").expect("cd");
        encrypted[cd + 8] |= 1;
        assert!(
            read_zip(&encrypted, &slice_reader(&encrypted))
                .expect_err("flag")
                .message
                .contains("flags")
        );
    }

    #[test]
    fn truncation_and_garbage_never_panic() {
        let data = zip(
            &[
                ("archive/data.pkl", b"\x80\x02}."),
                ("archive/version", b"3\n"),
            ],
            b"",
            b"",
        );
        for cut in 0..data.len() {
            let _ = read_zip(&data[..cut], &slice_reader(&data[..cut]));
            let _ = detect(&data[..cut]);
        }
        assert_eq!(detect(b"\x80\x02").expect("legacy"), Format::Legacy);
        assert!(detect(b"").is_err());
    }
}
