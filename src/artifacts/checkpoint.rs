//! Opening a PyTorch checkpoint: detect the format, check the container, run every pickle
//! through the restricted interpreter, and validate every storage record the object refers to.
//!
//! The result, [`Checkpoint`], holds all findings of the file and, when the object pickle could
//! be read, its object tree. Nothing is read beyond the structure: tensor bytes are only read on
//! request ([`Checkpoint::read_tensor`]), one tensor at a time, so tensors outside the converted
//! subtree (optimizer state) are never touched.
//!
//! Tensor bytes are read with positioned reads into a reused buffer rather than from the memory
//! map: file-backed pages of a mapping count towards the process's resident memory once touched,
//! and the peak-memory target (about the size of the *output*) leaves no room for the input's
//! pages on top of the output's.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use memmap2::Mmap;

use super::container::{self, Format, ReadAt, Zip};
use super::finding::{Finding, FindingKind, Member, Severity};
use super::pickle::{self, Limits, Obj, ObjId, Parsed, PidFormat, Source, Tensor, Value};
use super::tensor::{self, element_size};

/// The legacy format's magic number, the first of its five pickles.
const LEGACY_MAGIC: i128 = 0x1950_a86a_20f9_469c_fc6c;
/// The legacy format's protocol version, the second pickle.
const LEGACY_PROTOCOL: i128 = 1001;
/// Deepest nesting of dicts and lists accepted in the object tree.
pub const MAX_DEPTH: usize = 1000;

/// Maps a file read-only; with `range`, only `(offset, len)` of it, with its pages read in
/// at once (for streaming through a file window by window).
///
/// The crate denies `unsafe_code`; this is its one exception.
#[allow(unsafe_code)]
pub fn map_file_range(file: &File, range: Option<(u64, usize)>) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process. Another process truncating
    // or rewriting the file while it is mapped could change or fault the bytes we read; every
    // read here is bounds-checked against the length taken at mapping time, so a change shows up
    // as different data (caught by the byte-for-byte verification), not as undefined behaviour
    // in our code beyond a SIGBUS on truncation, which is the documented risk of memmap2.
    unsafe {
        match range {
            None => Mmap::map(file),
            Some((offset, len)) => memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .populate()
                .map(file),
        }
    }
}

/// Maps a whole file read-only (see [`map_file_range`]).
pub fn map_file(file: &File) -> std::io::Result<Mmap> {
    map_file_range(file, None)
}

/// Where a storage's bytes are in the file.
#[derive(Debug, Clone)]
pub struct Record {
    /// Zip entry name, or the legacy storage key.
    pub member: Member,
    /// Absolute offset of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// An opened, scanned checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// The file as named by the caller.
    pub path: PathBuf,
    file: File,
    map: Mmap,
    /// Zip or legacy; `None` when not even that could be decided.
    pub format: Option<Format>,
    /// Storages were written big-endian (zip `byteorder` = `big`, legacy `little_endian: False`).
    pub big_endian: bool,
    /// Every finding, in the order found.
    pub findings: Vec<Finding>,
    /// The object pickle, if it could be read.
    pub object: Option<Parsed>,
    records: HashMap<String, Record>,
}

impl Checkpoint {
    /// Opens and scans a checkpoint. Only I/O failures are errors; everything wrong with the
    /// content is a finding.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        // A FIFO would block the open itself, a device could be endless, a folder cannot be
        // mapped: only regular files are checkpoints, and that is checked before opening.
        let meta = std::fs::metadata(path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        refuse_non_file(path, &meta)?;
        let file =
            File::open(path).with_context(|| format!("failed to open `{}`", path.display()))?;
        // The same check on what was opened, in case the path changed in between.
        let meta = file
            .metadata()
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        refuse_non_file(path, &meta)?;
        let map = map_file(&file).with_context(|| format!("failed to map `{}`", path.display()))?;
        // Only headers and pickles are read through the map, scattered across the file. Without
        // this hint the kernel maps whole large folios around every touched page, and resident
        // memory grows towards the file size (434 MB for a 530 MB checkpoint) for a scan that
        // reads a few kilobytes.
        let _ = map.advise(memmap2::Advice::Random);
        let read_at = |at: u64, len: usize| {
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, at).ok().map(|()| buf)
        };
        let scan = Scanner::run(&map, &read_at, &Limits::default());
        Ok(Self {
            path: path.to_path_buf(),
            file,
            map,
            format: scan.format,
            big_endian: scan.big_endian,
            findings: scan.findings,
            object: scan.object,
            records: scan.records,
        })
    }

    /// Whether the file may be converted: no finding of any severity.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Reads a tensor's elements in row-major order, little-endian, into `out`. `scratch` is
    /// reused across calls for views that need gathering.
    pub fn read_tensor(
        &self,
        t: &Tensor,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        let object = self.object.as_ref().context("no object pickle")?;
        let Obj::Storage(storage) = object.arena.get(t.storage) else {
            anyhow::bail!("tensor without a storage");
        };
        let record = self
            .records
            .get(&storage.key)
            .with_context(|| format!("storage `{}` has no record", storage.key))?;
        let size = element_size(t.view.dtype);
        if self.big_endian && storage.dtype.is_none() && size > 1 {
            anyhow::bail!(
                "a big-endian file with a {:?} tensor in an untyped storage: torch never \
                 byteswaps those, so their byte order is unknown",
                t.view.dtype
            );
        }
        let view_base = storage.view.map_or(0, |(offset, _)| offset) * size;
        let (extent_start, extent_len) = t.view.byte_extent();
        let start = record.start + view_base + extent_start;
        // View::new and check_record validated these against the record; recheck cheaply.
        anyhow::ensure!(
            view_base + extent_start + extent_len <= record.len,
            "tensor view past the end of storage `{}`",
            storage.key
        );
        let len = usize::try_from(extent_len).context("tensor too large for this platform")?;
        let read = |buf: &mut Vec<u8>| -> anyhow::Result<()> {
            buf.clear();
            buf.resize(len, 0);
            self.file
                .read_exact_at(buf, start)
                .with_context(|| format!("failed to read `{}`", self.path.display()))
        };
        if t.view.is_contiguous() {
            read(out)?;
            out.truncate(t.view.nbytes() as usize);
        } else {
            read(scratch)?;
            t.view.gather(scratch, out);
        }
        if self.big_endian {
            tensor::byteswap(t.view.dtype, out);
        }
        Ok(())
    }

    /// Bytes of all storage records together: the tensor data the file really holds.
    pub fn storage_bytes(&self) -> u64 {
        self.records
            .values()
            .fold(0u64, |sum, r| sum.saturating_add(r.len))
    }

    /// The mapped file (for hashing and tests).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// A plain error for a path that is not a regular file.
fn refuse_non_file(path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(crate::error::Problem::new(format!(
        "`{}` is {what}, not a checkpoint file",
        path.display()
    ))
    .hint("name the `.pt` / `.pth` / `.ckpt` file itself")
    .into())
}

/// What scanning a file's bytes found.
#[derive(Debug, Default)]
struct Scanner {
    format: Option<Format>,
    big_endian: bool,
    findings: Vec<Finding>,
    object: Option<Parsed>,
    records: HashMap<String, Record>,
    root: Option<String>,
    /// Pickles other than the object one, kept until their findings have paths.
    others: Vec<Parsed>,
}

impl Scanner {
    fn run(data: &[u8], read_at: ReadAt<'_>, limits: &Limits) -> Self {
        let mut scanner = Self::default();
        match container::detect(data) {
            Err(finding) => scanner.findings.push(finding),
            Ok(Format::Zip) => {
                scanner.format = Some(Format::Zip);
                match container::read_zip(data, read_at) {
                    Ok(zip) => scanner.scan_zip(data, &zip, limits),
                    Err(finding) => scanner.findings.push(finding),
                }
            }
            Ok(Format::Legacy) => {
                scanner.format = Some(Format::Legacy);
                scanner.scan_legacy(data, read_at, limits);
            }
        }
        for other in std::mem::take(&mut scanner.others) {
            scanner.walk(&other, false);
        }
        if let Some(object) = scanner.object.take() {
            scanner.walk(&object, true);
            scanner.object = Some(object);
        }
        scanner
    }

    fn scan_zip(&mut self, data: &[u8], zip: &Zip, limits: &Limits) {
        self.root = Some(zip.root.clone());
        let root = &zip.root;
        let data_pkl = format!("{root}/data.pkl");
        if zip.get("constants.pkl").is_some()
            || zip
                .entries
                .iter()
                .any(|e| e.name.starts_with(&format!("{root}/code/")))
        {
            self.findings.push(
                Finding::new(
                    Severity::Unsupported,
                    FindingKind::Container,
                    "a TorchScript archive (torch.jit.save), not a checkpoint: it carries code \
                     (CVE-2025-32434)",
                )
                .member(Member::Entry(format!("{root}/constants.pkl"))),
            );
        }
        let torchscript = !self.findings.is_empty();
        for entry in &zip.entries {
            if entry.method != 0
                && !(torchscript && entry.name.starts_with(&format!("{root}/code/")))
            {
                self.findings.push(
                    Finding::corrupt(
                        FindingKind::Resource,
                        format!(
                            "entry `{}` is compressed (method {}); torch stores records \
                             uncompressed, and inflating untrusted data is refused",
                            entry.name, entry.method
                        ),
                    )
                    .member(Member::Entry(entry.name.clone())),
                );
            }
        }
        if zip.get(".data/extern_modules").is_some() {
            self.findings.push(
                Finding::new(
                    Severity::Unsupported,
                    FindingKind::Container,
                    "a torch.package archive, not a checkpoint: it carries code",
                )
                .member(Member::Entry(format!("{root}/.data/extern_modules"))),
            );
        }
        if zip.get("version").is_none() && zip.get(".data/version").is_none() {
            self.findings.push(Finding::corrupt(
                FindingKind::Container,
                format!("no `{root}/version` record"),
            ));
        }
        if let Some(entry) = zip.get("byteorder") {
            match slice(data, entry.start, entry.len) {
                Some(b"little") => {}
                Some(b"big") => self.big_endian = true,
                other => self.findings.push(
                    Finding::corrupt(
                        FindingKind::Container,
                        format!(
                            "`byteorder` says `{}`; only `little` and `big` exist",
                            String::from_utf8_lossy(other.unwrap_or_default())
                        ),
                    )
                    .member(Member::Entry(entry.name.clone())),
                ),
            }
        }
        let storage_prefix = format!("{root}/data/");
        for entry in &zip.entries {
            if let Some(key) = entry.name.strip_prefix(&storage_prefix) {
                self.records.insert(
                    key.to_owned(),
                    Record {
                        member: Member::Entry(entry.name.clone()),
                        start: entry.start,
                        len: entry.len,
                    },
                );
            }
        }
        if zip.get("data.pkl").is_none() {
            self.findings.push(Finding::corrupt(
                FindingKind::Container,
                format!("no `{data_pkl}` record: nothing to load"),
            ));
        }
        // Every pickle in the archive goes through the interpreter, not only data.pkl.
        for entry in zip.entries.iter().filter(|e| {
            Path::new(&e.name)
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("pkl"))
                && e.method == 0
        }) {
            let Some(bytes) = slice(data, entry.start, entry.len) else {
                continue;
            };
            let source = Source {
                data: bytes,
                member: Member::Entry(entry.name.clone()),
                base: entry.start,
                pids: PidFormat::Zip,
            };
            let Some(parsed) = pickle::interpret(&source, limits, &mut self.findings) else {
                continue;
            };
            if parsed.end != bytes.len() {
                self.findings.push(
                    Finding::corrupt(
                        FindingKind::Container,
                        format!("{} bytes after the pickle's STOP", bytes.len() - parsed.end),
                    )
                    .member(source.member.clone())
                    .at(parsed.end as u64, entry.start),
                );
            }
            if entry.name == data_pkl {
                self.object = Some(parsed);
            } else {
                self.others.push(parsed);
            }
        }
    }

    fn scan_legacy(&mut self, data: &[u8], read_at: ReadAt<'_>, limits: &Limits) {
        let mut pos = 0usize;
        let mut parsed: Vec<Parsed> = Vec::new();
        for index in 0..5u8 {
            let source = Source {
                data: &data[pos..],
                member: Member::Legacy(index),
                base: pos as u64,
                pids: PidFormat::Legacy,
            };
            let before = self.findings.len();
            let Some(pickle) = pickle::interpret(&source, limits, &mut self.findings) else {
                if index == 0 {
                    // Neither a zip nor the legacy magic number: say that, not which opcode broke.
                    self.findings.truncate(before);
                    self.findings.push(Finding::corrupt(
                        FindingKind::Container,
                        "not a PyTorch checkpoint: neither a zip archive nor the legacy format's \
                         magic number",
                    ));
                }
                return;
            };
            let problem = match index {
                0 if pickle.arena.int(pickle.root) != Some(LEGACY_MAGIC) => {
                    Some("not a PyTorch checkpoint: the legacy magic number is missing".to_owned())
                }
                1 if pickle.arena.int(pickle.root) != Some(LEGACY_PROTOCOL) => Some(format!(
                    "unsupported legacy protocol version {:?}",
                    pickle.root
                )),
                2 => match pickle.arena.lookup(pickle.root, "little_endian") {
                    Some(Value::Bool(little)) => {
                        self.big_endian = !little;
                        None
                    }
                    _ => Some("`sys_info` has no `little_endian` flag".to_owned()),
                },
                _ => None,
            };
            if let Some(message) = problem {
                self.findings.push(
                    Finding::corrupt(FindingKind::Container, message)
                        .member(Member::Legacy(index))
                        .at(0, pos as u64),
                );
                return;
            }
            pos += pickle.end;
            parsed.push(pickle);
        }
        let keys_pickle = &parsed[4];
        let keys: Option<Vec<String>> = match keys_pickle.root {
            Value::Obj(id) => match keys_pickle.arena.get(id) {
                Obj::List(items) => items
                    .iter()
                    .map(|&v| keys_pickle.arena.str(v).map(str::to_owned))
                    .collect(),
                _ => None,
            },
            _ => None,
        };
        let Some(keys) = keys else {
            self.findings.push(
                Finding::corrupt(
                    FindingKind::Container,
                    "the storage key list is not a list of strings",
                )
                .member(Member::Legacy(4)),
            );
            return;
        };
        let object = parsed.swap_remove(3);
        self.others.extend(parsed);
        // Element sizes come from the storages the object pickle declares.
        let mut sizes: HashMap<&str, u64> = HashMap::new();
        for id in 0..object.arena.len() {
            if let Obj::Storage(s) = object.arena.get(id as ObjId) {
                sizes.insert(s.key.as_str(), s.dtype.map_or(1, element_size));
            }
        }
        let mut records = HashMap::new();
        for key in &keys {
            let Some(&size) = sizes.get(key.as_str()) else {
                self.findings.push(
                    Finding::corrupt(
                        FindingKind::Storage,
                        format!("the storage key list names `{key}`, which the object never uses"),
                    )
                    .member(Member::Legacy(4)),
                );
                return;
            };
            // Positioned reads, not the map: the counts are scattered through the file.
            let count = read_at(pos as u64, 8)
                .map(|b| i64::from_le_bytes(b.as_slice().try_into().expect("8 bytes")));
            let bytes = count
                .and_then(|c| u64::try_from(c).ok())
                .and_then(|c| c.checked_mul(size));
            let Some(bytes) = bytes.filter(|&b| {
                (pos as u64)
                    .checked_add(8)
                    .and_then(|s| s.checked_add(b))
                    .is_some_and(|end| end <= data.len() as u64)
            }) else {
                self.findings.push(
                    Finding::corrupt(
                        FindingKind::Storage,
                        format!(
                            "storage `{key}` at byte {pos} is truncated or has a bad element count"
                        ),
                    )
                    .at_file(pos as u64),
                );
                return;
            };
            records.insert(
                key.clone(),
                Record {
                    member: Member::Entry(format!("storage {key}")),
                    start: pos as u64 + 8,
                    len: bytes,
                },
            );
            pos += 8 + bytes as usize;
        }
        if pos != data.len() {
            self.findings.push(
                Finding::corrupt(
                    FindingKind::Container,
                    format!("{} bytes after the last storage", data.len() - pos),
                )
                .at_file(pos as u64),
            );
        }
        self.records = records;
        self.object = Some(object);
    }

    /// Walks a pickle's object tree once: gives findings inside refused values their dict path
    /// and, for the object pickle, checks that every storage a tensor uses has a record of
    /// exactly the declared size.
    ///
    /// Each object is expanded once (by identity), so memo-shared structure costs nothing extra;
    /// the walk uses an explicit stack; and paths are not built while walking (a long key under
    /// a wide dict would otherwise be copied into every child's path) but only for the findings
    /// that get one, by following parent links.
    fn walk(&mut self, parsed: &Parsed, check_records: bool) {
        let arena = &parsed.arena;
        // Parent links: (parent node, the key or index leading here).
        let mut nodes: Vec<(usize, Segment)> = Vec::new();
        // (value, node of its path, depth, transparent): tuples and lists inside a refused value
        // (its arguments) keep the path of the value rather than adding indices.
        let mut stack: Vec<(Value, usize, usize, bool)> = vec![(parsed.root, ROOT, 0, false)];
        let mut expanded: HashSet<ObjId> = HashSet::new();
        let mut checked: HashSet<&str> = HashSet::new();
        let mut new_findings = Vec::new();
        let mut paths: Vec<(usize, usize)> = Vec::new();
        while let Some((value, node, depth, transparent)) = stack.pop() {
            let Value::Obj(id) = value else { continue };
            if depth > MAX_DEPTH {
                new_findings.push(Finding::corrupt(
                    FindingKind::Resource,
                    format!("the object nests deeper than {MAX_DEPTH} levels"),
                ));
                break;
            }
            match arena.get(id) {
                Obj::Tensor(t) => {
                    if check_records
                        && let Obj::Storage(s) = arena.get(t.storage)
                        && checked.insert(s.key.as_str())
                    {
                        let path = spell_path(arena, &nodes, node);
                        if let Some(f) = self.check_record(s, &path) {
                            new_findings.push(f);
                        }
                    }
                }
                obj => {
                    if !expanded.insert(id) {
                        continue;
                    }
                    let mut child = |segment: Segment| {
                        if transparent {
                            node
                        } else {
                            nodes.push((node, segment));
                            nodes.len() - 1
                        }
                    };
                    match obj {
                        Obj::Dict(d) => {
                            for (k, v) in d.items.iter().rev() {
                                if matches!(v, Value::Obj(_)) {
                                    let c = child(Segment::Key(*k));
                                    stack.push((*v, c, depth + 1, false));
                                }
                            }
                        }
                        Obj::List(items) | Obj::Tuple(items) => {
                            for (i, v) in items.iter().enumerate().rev() {
                                if matches!(v, Value::Obj(_)) {
                                    let c = child(Segment::Index(i));
                                    stack.push((*v, c, depth + 1, transparent));
                                }
                            }
                        }
                        Obj::Opaque(o) => {
                            for &f in &o.findings {
                                paths.push((f, node));
                            }
                            for v in o.children.iter().rev() {
                                stack.push((*v, node, depth + 1, true));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        for (index, node) in paths {
            if self.findings[index].path.is_none() && node != ROOT {
                self.findings[index].path = Some(spell_path(arena, &nodes, node));
            }
        }
        self.findings.extend(new_findings);
    }

    fn check_record(&self, storage: &pickle::Storage, path: &str) -> Option<Finding> {
        let needed = storage.record_bytes()?;
        let at = |f: Finding| {
            if path.is_empty() { f } else { f.path(path) }
        };
        match self.records.get(&storage.key) {
            None => {
                let member = match self.format {
                    Some(Format::Zip) => Member::Entry(self.storage_member(&storage.key)),
                    _ => Member::Legacy(4),
                };
                Some(at(Finding::corrupt(
                    FindingKind::Storage,
                    format!("storage `{}` has no record", storage.key),
                )
                .member(member)))
            }
            Some(record) if record.len != needed => Some(at(Finding::corrupt(
                FindingKind::Storage,
                format!(
                    "record of storage `{}` holds {} bytes; the checkpoint declares {needed}",
                    storage.key, record.len
                ),
            )
            .member(record.member.clone()))),
            Some(_) => None,
        }
    }

    fn storage_member(&self, key: &str) -> String {
        let root = self.root.as_deref().unwrap_or("archive");
        format!("{root}/data/{key}")
    }
}

/// The path node of the top-level object.
const ROOT: usize = usize::MAX;

/// Longest path spelled out in a finding; longer ones keep their start.
const MAX_PATH_BYTES: usize = 1024;

/// One step of a path: a dict key or a list index.
#[derive(Debug, Clone, Copy)]
enum Segment {
    Key(Value),
    Index(usize),
}

/// The dotted path of a node (`model._hook`), following parent links to the top.
fn spell_path(arena: &pickle::Arena, nodes: &[(usize, Segment)], mut node: usize) -> String {
    let mut segments = Vec::new();
    while node != ROOT {
        let (parent, segment) = nodes[node];
        segments.push(segment);
        node = parent;
    }
    let mut path = String::new();
    for segment in segments.iter().rev() {
        if !path.is_empty() {
            path.push('.');
        }
        match *segment {
            Segment::Index(i) => path.push_str(&i.to_string()),
            Segment::Key(k) => match arena.int(k) {
                Some(i) => path.push_str(&i.to_string()),
                None => path.push_str(arena.str(k).unwrap_or("?")),
            },
        }
        if path.len() > MAX_PATH_BYTES {
            let mut end = MAX_PATH_BYTES;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            path.truncate(end);
            path.push_str("...");
            break;
        }
    }
    path
}

fn slice(data: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8]) -> Parsed {
        let source = Source {
            data,
            member: Member::Entry("archive/data.pkl".into()),
            base: 0,
            pids: PidFormat::Zip,
        };
        let mut findings = Vec::new();
        let parsed = pickle::interpret(&source, &Limits::default(), &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
        parsed.expect("parses")
    }

    #[test]
    fn paths_are_spelled_only_for_findings_never_copied_per_child() {
        // A 1 MiB key over a list of 200,000 objects: copying the path into every child's stack
        // entry took 200 GB.
        let key = "k".repeat(1 << 20);
        let mut data = vec![0x80, 2, b'}', b'X'];
        data.extend_from_slice(&(key.len() as u32).to_le_bytes());
        data.extend_from_slice(key.as_bytes());
        data.push(b']');
        for _ in 0..200 {
            data.push(b'(');
            data.extend(std::iter::repeat_n(b')', 1000));
            data.push(b'e');
        }
        data.extend_from_slice(b"s.");
        let parsed = parse(&data);
        let mut scanner = Scanner::default();
        scanner.walk(&parsed, true);
        assert!(scanner.findings.is_empty(), "{:?}", scanner.findings);
    }

    #[test]
    fn long_paths_are_cut_in_findings() {
        let nodes: Vec<(usize, Segment)> = (0..2000)
            .map(|i| (if i == 0 { ROOT } else { i - 1 }, Segment::Index(i)))
            .collect();
        let arena = parse(b"\x80\x02N.").arena;
        let path = spell_path(&arena, &nodes, 1999);
        assert!(path.starts_with("0.1.2.3."));
        assert!(path.ends_with("..."));
        assert!(path.len() <= MAX_PATH_BYTES + 3);
    }
}
