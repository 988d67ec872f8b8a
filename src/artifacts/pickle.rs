//! The restricted pickle interpreter: a stack and memo machine that builds a small object tree
//! out of a checkpoint's pickle without importing or calling anything.
//!
//! What it accepts is exactly what `torch.load(weights_only=True)` accepts (checkpoint-safety.md
//! §6): the 34 opcodes of torch's weights-only unpickler and the globals of its allowlist, matched
//! exactly after the Python 2 name mapping (never by prefix: `torch.hub.load` is refused). Anything
//! else is a [`Finding`], never executed. To report *every* finding of a file, the interpreter
//! keeps going after one: the other opcodes of pickle protocols 0-5 are interpreted too (each is
//! reported once, at its first offset), and the result of a call to a refused global becomes an
//! [`Obj::Opaque`] placeholder holding its arguments, so nested payloads and the dict path where the
//! call lands can still be found. A file with any finding is refused by the caller; opaque values
//! are never converted.
//!
//! The machine stops only where it cannot go on: truncation, an unknown opcode byte, a stack
//! underflow, a resource cap ([`Limits`]). Objects live in an arena and refer to each other by
//! index, so memo references are shared (never deep-copied), cycles cost nothing, and dropping a
//! deeply nested value cannot overflow the stack.
//!
//! Hostile structure is bounded everywhere: nothing here recurses on the pickle's structure (the
//! few walks over values use explicit stacks and visit each object once), every opcode does work
//! bounded by what it adds to the tree (a call checks its argument count before looking at the
//! arguments), and the memory the tree takes is accounted in bytes as it grows and capped in
//! proportion to the pickle bytes read so far ([`Limits::memory_floor`],
//! [`Limits::memory_per_byte`]), so no pickle can make the reader take many times its own size.

use std::collections::HashMap;
use std::fmt::Write as _;

use safetensors::Dtype;

use super::finding::{ConsumedBy, Finding, FindingKind, GlobalName, Member, Severity};
use super::py2_names::{IMPORT_MAPPING, NAME_MAPPING};
use super::tensor::{self, StorageClass, View};

/// Resource caps. Every one of them is far above what a real checkpoint needs.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory the object tree may take regardless of the pickle's size.
    pub memory_floor: usize,
    /// Memory the object tree may take per pickle byte read (beyond the floor). A torch state
    /// dict takes about 10 bytes of tree per pickle byte (ten small objects per tensor, every
    /// one memoised), so with the floor every torch pickle up to about 8 MB (some 70,000
    /// tensors) is read; a hostile pickle that needs more is stopped as it grows, never after.
    pub memory_per_byte: usize,
    /// Findings of one pickle before it stops being read.
    pub max_findings: usize,
    /// Bytes of one pickle (pytorch-reader uses the same 100 MiB cap for `data.pkl`).
    pub max_pickle_bytes: usize,
    /// Values on the stack at once (torch batches `SETITEMS` by 1000 pairs).
    pub max_stack: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Bytes of all strings and byte strings together.
    pub max_string_bytes: usize,
    /// Items held by all containers together.
    pub max_items: usize,
    /// Objects of any kind.
    pub max_objects: usize,
    /// Bytes of a `LONG1`/`LONG4` integer (16 bytes = i128).
    pub max_long_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_floor: 48 << 20,
            memory_per_byte: 4,
            max_findings: 1000,
            max_pickle_bytes: 100 << 20,
            max_stack: 50_000,
            max_memo: 10_000_000,
            max_string_bytes: 256 << 20,
            max_items: 50_000_000,
            max_objects: 20_000_000,
            max_long_bytes: 16,
        }
    }
}

/// Index of an object in the [`Arena`].
pub type ObjId = u32;

/// A value on the stack or inside a container: scalars inline, everything else by reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits; larger ones are [`Obj::BigInt`] objects (values beyond i128
    /// are refused by [`Limits::max_long_bytes`]).
    Int(i64),
    /// A float.
    Float(f64),
    /// Any other object.
    Obj(ObjId),
}

/// What an allowlisted global stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalKind {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `collections.Counter`.
    Counter,
    /// `torch.nn.parameter.Parameter`.
    Parameter,
    /// `torch.Tensor` and the legacy tensor classes (`torch.FloatTensor`, `torch.cuda.*Tensor`).
    TensorClass,
    /// `torch.Size`.
    Size,
    /// `torch.device`.
    Device,
    /// `torch.serialization._get_layout`.
    GetLayout,
    /// `_codecs.encode` (how protocol 2 writes bytes).
    CodecsEncode,
    /// `builtins.bytearray`.
    Bytearray,
    /// `builtins.set`.
    Set,
    /// `builtins.complex`.
    Complex,
    /// A dtype, `torch.<name>`; `Err` for dtypes safetensors cannot hold.
    Dtype(Result<Dtype, ()>),
    /// A storage class.
    Storage(StorageClass),
    /// A quantization scheme (`torch.per_tensor_affine`, ...).
    QScheme,
    /// A rebuild function of `torch._utils` / `torch._tensor`.
    Rebuild(Rebuild),
    /// Not on the allowlist.
    Refused,
}

/// The rebuild functions of checkpoint-safety.md §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// `_rebuild_tensor` (pre-0.4).
    TensorV1,
    /// `_rebuild_tensor_v2`.
    TensorV2,
    /// `_rebuild_tensor_v3`.
    TensorV3,
    /// `_rebuild_parameter`.
    Parameter,
    /// `_rebuild_parameter_with_state`.
    ParameterWithState,
    /// `torch._tensor._rebuild_from_type_v2`.
    FromTypeV2,
    /// Allowlisted by torch but producing tensors safetensors cannot hold (quantized, sparse,
    /// meta, wrapper subclasses, numpy-backed).
    Unsupported,
}

/// Classifies an already-mapped global against torch's weights-only allowlist.
pub fn classify(module: &str, name: &str) -> GlobalKind {
    use GlobalKind as K;
    match (module, name) {
        ("collections", "OrderedDict") => K::OrderedDict,
        ("collections", "Counter") => K::Counter,
        ("torch.nn.parameter", "Parameter") => K::Parameter,
        ("torch.serialization", "_get_layout") => K::GetLayout,
        ("torch", "Size") => K::Size,
        ("torch", "Tensor") => K::TensorClass,
        ("torch", "device") => K::Device,
        ("_codecs", "encode") => K::CodecsEncode,
        ("builtins", "bytearray") => K::Bytearray,
        ("builtins", "set") => K::Set,
        ("builtins", "complex") => K::Complex,
        ("torch._tensor", "_rebuild_from_type_v2") => K::Rebuild(Rebuild::FromTypeV2),
        ("torch._utils", f) => match f {
            "_rebuild_tensor" => K::Rebuild(Rebuild::TensorV1),
            "_rebuild_tensor_v2" => K::Rebuild(Rebuild::TensorV2),
            "_rebuild_tensor_v3" => K::Rebuild(Rebuild::TensorV3),
            "_rebuild_parameter" => K::Rebuild(Rebuild::Parameter),
            "_rebuild_parameter_with_state" => K::Rebuild(Rebuild::ParameterWithState),
            "_rebuild_qtensor"
            | "_rebuild_sparse_tensor"
            | "_rebuild_meta_tensor_no_storage"
            | "_rebuild_wrapper_subclass"
            | "_rebuild_device_tensor_from_numpy"
            | "_rebuild_device_tensor_from_cpu_tensor" => K::Rebuild(Rebuild::Unsupported),
            _ => K::Refused,
        },
        ("torch.storage", "TypedStorage" | "UntypedStorage") => K::Storage(StorageClass::Untyped),
        ("torch", n) => {
            if let Some(dtype) = tensor::torch_dtype(n) {
                K::Dtype(dtype)
            } else if let Some(class) = tensor::storage_class(n) {
                K::Storage(class)
            } else if is_tensor_class(n) {
                K::TensorClass
            } else if matches!(
                n,
                "per_tensor_affine"
                    | "per_tensor_symmetric"
                    | "per_channel_affine"
                    | "per_channel_symmetric"
                    | "per_channel_affine_float_qparams"
            ) {
                K::QScheme
            } else {
                K::Refused
            }
        }
        ("torch.cuda", n) if is_tensor_class(n) && n != "Tensor" => K::TensorClass,
        _ => K::Refused,
    }
}

fn is_tensor_class(name: &str) -> bool {
    matches!(
        name,
        "DoubleTensor"
            | "FloatTensor"
            | "HalfTensor"
            | "BFloat16Tensor"
            | "LongTensor"
            | "IntTensor"
            | "ShortTensor"
            | "CharTensor"
            | "ByteTensor"
            | "BoolTensor"
    )
}

/// Globals and modules known to be harmful; they make a refused global `dangerous` rather than
/// `unsupported`. This set only grades findings: refusal is by the allowlist, so a gadget
/// missing here is still refused.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "sys",
    "subprocess",
    "_posixsubprocess",
    "runpy",
    "pickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
    "importlib",
    "pkgutil",
    "pydoc",
    "zipimport",
    "webbrowser",
    "pty",
    "shutil",
    "socket",
    "ctypes",
    "code",
    "codeop",
    "pdb",
    "bdb",
    "operator",
    "pip",
    "asyncio",
    "multiprocessing",
    "threading",
    "signal",
    "tempfile",
    "urllib",
    "http",
    "requests",
    "ftplib",
    "smtplib",
    "telnetlib",
    "torch.hub",
    "torch.jit",
    "torch.package",
    "torch._inductor",
    "torch._dynamo",
    "torch.utils.collect_env",
    "torch.utils.cpp_extension",
];

const DANGEROUS_GLOBALS: &[&str] = &[
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.__import__",
    "builtins.open",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.breakpoint",
    "builtins.input",
    "builtins.memoryview",
    "functools.reduce",
    "functools.partial",
    "torch.load",
    "torch.serialization.load",
    "torch.storage._load_from_bytes",
    "torch._C._load_for_lite_interpreter",
];

/// Whether a refused global is known to be harmful (see [`DANGEROUS_MODULES`]).
pub fn is_dangerous(module: &str, name: &str) -> bool {
    let qualified = format!("{module}.{name}");
    DANGEROUS_GLOBALS.contains(&qualified.as_str())
        || DANGEROUS_MODULES.iter().any(|m| {
            module == *m
                || module
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
}

/// The Python 2 name mapping of `_compat_pickle`, applied before any check.
pub fn map_py2(module: &str, name: &str) -> (String, String) {
    if let Some((_, (m, n))) = NAME_MAPPING
        .iter()
        .find(|((m, n), _)| *m == module && *n == name)
    {
        return ((*m).to_owned(), (*n).to_owned());
    }
    let module = IMPORT_MAPPING
        .iter()
        .find(|(from, _)| *from == module)
        .map_or(module, |(_, to)| *to);
    (module.to_owned(), name.to_owned())
}

/// A global reference on the stack.
#[derive(Debug, Clone)]
pub struct Global {
    /// Mapped module.
    pub module: String,
    /// Mapped name.
    pub name: String,
    /// What it is, if allowlisted.
    pub kind: GlobalKind,
    /// Offset of the opcode that produced it.
    pub offset: u64,
    /// The finding raised for it, if refused.
    pub finding: Option<usize>,
}

impl Global {
    fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A storage named by a persistent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The record key (`data/<key>` in a zip, the root key in the legacy format).
    pub key: String,
    /// Element type of a typed storage; `None` for `UntypedStorage`.
    pub dtype: Option<Dtype>,
    /// The pid's `numel` (elements for typed storages, bytes for untyped ones).
    pub numel: u64,
    /// Legacy view metadata: `(offset, size)` in elements of the root storage.
    pub view: Option<(u64, u64)>,
    /// Offset of the `BINPERSID` opcode.
    pub offset: u64,
}

impl Storage {
    /// Bytes the whole record must hold, or `None` on overflow.
    pub fn record_bytes(&self) -> Option<u64> {
        match self.dtype {
            Some(dtype) => self.numel.checked_mul(tensor::element_size(dtype)),
            None => Some(self.numel),
        }
    }
}

/// A tensor: a validated view of a storage.
#[derive(Debug, Clone)]
pub struct Tensor {
    /// The storage object.
    pub storage: ObjId,
    /// Element type, offset, shape and stride.
    pub view: View,
    /// Wrapped in `nn.Parameter`.
    pub parameter: bool,
}

/// A placeholder for the result of something refused; holds what it was made from so that nested
/// findings get a path too.
#[derive(Debug, Clone, Default)]
pub struct Opaque {
    /// Findings this value stands for.
    pub findings: Vec<usize>,
    /// Function, arguments and state it was built from.
    pub children: Vec<Value>,
}

/// Any non-scalar object. The large variants are boxed so that the common small objects
/// (strings, tuples, lists) take 32 bytes each.
#[derive(Debug, Clone)]
pub enum Obj {
    /// `str`.
    Str(Box<str>),
    /// `bytes` / `bytearray`.
    Bytes(Box<[u8]>),
    /// An integer beyond 64 bits (the legacy format's magic number is one).
    BigInt(i128),
    /// `tuple` (also `torch.Size`).
    Tuple(Vec<Value>),
    /// `list`.
    List(Vec<Value>),
    /// `dict`, `OrderedDict` or `Counter`, in insertion order.
    Dict(Box<Dict>),
    /// `set` / `frozenset`.
    Set(Vec<Value>),
    /// `complex`.
    Complex(f64, f64),
    /// A global reference.
    Global(Box<Global>),
    /// A storage from a persistent id.
    Storage(Box<Storage>),
    /// A tensor.
    Tensor(Box<Tensor>),
    /// The result of something refused.
    Opaque(Box<Opaque>),
}

impl Obj {
    /// Bytes this object takes on the heap beyond its slot in the arena. Lengths, not
    /// capacities: the slack of a growing vector is never written, so it is never resident.
    fn heap_bytes(&self) -> usize {
        let values = |v: &Vec<Value>| v.len() * size_of::<Value>();
        match self {
            Self::Str(s) => s.len(),
            Self::Bytes(b) => b.len(),
            Self::Tuple(v) | Self::List(v) | Self::Set(v) => values(v),
            Self::Dict(d) => size_of::<Dict>() + d.heap_bytes(),
            Self::Global(g) => size_of::<Global>() + g.module.len() + g.name.len(),
            Self::Storage(s) => size_of::<Storage>() + s.key.len(),
            Self::Tensor(t) => size_of::<Tensor>() + (t.view.shape.len() + t.view.stride.len()) * 8,
            Self::Opaque(o) => size_of::<Opaque>() + values(&o.children) + o.findings.len() * 8,
            Self::BigInt(_) | Self::Complex(..) => 0,
        }
    }
}

/// An insertion-ordered dict with Python's replace-on-duplicate-key semantics.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    /// Key-value pairs in insertion order.
    pub items: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
    /// Bytes of the string keys held by the index.
    key_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(Box<str>),
    Int(i128),
    Bool(bool),
    None,
    Obj(ObjId),
}

impl Key {
    fn heap_bytes(&self) -> usize {
        match self {
            Self::Str(s) => s.len(),
            _ => 0,
        }
    }
}

impl Dict {
    /// Heap bytes of the items and the index (keys included).
    fn heap_bytes(&self) -> usize {
        self.items.len() * size_of::<(Value, Value)>()
            + self.index.capacity() * Self::INDEX_SLOT_BYTES
            + self.key_bytes
    }

    /// Bytes of one slot of the index (entry and control byte).
    const INDEX_SLOT_BYTES: usize = size_of::<(Key, usize)>() + 1;
}

/// All objects of one pickle.
#[derive(Debug, Default)]
pub struct Arena {
    objects: Vec<Obj>,
}

impl Arena {
    /// The object behind an id.
    pub fn get(&self, id: ObjId) -> &Obj {
        &self.objects[id as usize]
    }

    /// The string behind a value, if it is one.
    pub fn str(&self, value: Value) -> Option<&str> {
        match value {
            Value::Obj(id) => match self.get(id) {
                Obj::Str(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// The dict behind a value, if it is one.
    pub fn dict(&self, value: Value) -> Option<&Dict> {
        match value {
            Value::Obj(id) => match self.get(id) {
                Obj::Dict(d) => Some(d),
                _ => None,
            },
            _ => None,
        }
    }

    /// The tensor behind a value, if it is one.
    pub fn tensor(&self, value: Value) -> Option<&Tensor> {
        match value {
            Value::Obj(id) => match self.get(id) {
                Obj::Tensor(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// The integer behind a value, small or big.
    pub fn int(&self, value: Value) -> Option<i128> {
        match value {
            Value::Int(i) => Some(i128::from(i)),
            Value::Obj(id) => match self.get(id) {
                Obj::BigInt(i) => Some(*i),
                _ => None,
            },
            _ => None,
        }
    }

    /// Looks a string key up in a dict value.
    pub fn lookup(&self, dict: Value, key: &str) -> Option<Value> {
        let dict = self.dict(dict)?;
        dict.index
            .get(&Key::Str(key.into()))
            .map(|&i| dict.items[i].1)
    }

    /// Items held by all containers together (list, tuple and set items, dict pairs, children
    /// of refused values): the number of edges of the object graph.
    pub fn edges(&self) -> usize {
        self.objects
            .iter()
            .map(|o| match o {
                Obj::Tuple(v) | Obj::List(v) | Obj::Set(v) => v.len(),
                Obj::Dict(d) => d.items.len(),
                Obj::Opaque(o) => o.children.len(),
                _ => 0,
            })
            .sum()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// How `BINPERSID` ids look: 5 fields in zip checkpoints, 6 (with view metadata) in legacy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidFormat {
    /// `('storage', storage_type, key, location, numel)`.
    Zip,
    /// `('storage', storage_type, root_key, location, numel, view_metadata)`.
    Legacy,
}

/// One pickle to interpret.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// Bytes from the pickle's first byte; for the legacy format, the rest of the file.
    pub data: &'a [u8],
    /// Where the pickle sits, for findings.
    pub member: Member,
    /// Absolute file offset of `data[0]`.
    pub base: u64,
    /// Persistent-id layout.
    pub pids: PidFormat,
}

/// A pickle that was read to its `STOP`.
#[derive(Debug)]
pub struct Parsed {
    /// Every object.
    pub arena: Arena,
    /// The value `STOP` returned.
    pub root: Value,
    /// Offset just past `STOP`, relative to the pickle start.
    pub end: usize,
}

/// Interprets one pickle. Findings are appended to `findings` (their indices are referenced by
/// opaque objects); `None` means the pickle could not be read to its end, and the last finding
/// says why.
pub fn interpret(
    source: &Source<'_>,
    limits: &Limits,
    findings: &mut Vec<Finding>,
) -> Option<Parsed> {
    let mut machine = Machine {
        src: source,
        limits,
        findings,
        first_finding: 0,
        pos: 0,
        op_pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Memo::default(),
        arena: Arena::default(),
        reported_opcodes: Vec::new(),
        string_bytes: 0,
        items: 0,
        memory: 0,
        protocol: 0,
        storages: HashMap::new(),
    };
    machine.first_finding = machine.findings.len();
    match machine.run() {
        Ok((root, end)) => Some(Parsed {
            arena: machine.arena,
            root,
            end,
        }),
        Err(stop) => {
            let finding = Finding::new(Severity::Corrupt, stop.kind, stop.message)
                .member(source.member.clone())
                .at(stop.offset as u64, source.base);
            machine.findings.push(finding);
            None
        }
    }
}

/// Why interpretation stopped.
struct Stop {
    kind: FindingKind,
    message: String,
    offset: usize,
}

type Step<T = ()> = Result<T, Stop>;

struct Machine<'s, 'a, 'f> {
    src: &'s Source<'a>,
    limits: &'s Limits,
    findings: &'f mut Vec<Finding>,
    first_finding: usize,
    pos: usize,
    op_pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    arena: Arena,
    reported_opcodes: Vec<u8>,
    string_bytes: usize,
    items: usize,
    /// Bytes the object tree, memo and dict indices take (see [`Limits::memory_per_byte`]).
    memory: usize,
    /// The `PROTO` version (0 when absent, as in Python).
    protocol: u8,
    /// What the first persistent id of each storage key declared: `(dtype, numel, offset)`.
    storages: HashMap<String, (Option<Dtype>, u64, u64)>,
}

/// The memo: a dense array for the indices picklers write (0, 1, 2, ...), a map for the rest.
#[derive(Default)]
struct Memo {
    dense: Vec<Option<Value>>,
    sparse: HashMap<u32, Value>,
    /// Entries set.
    count: usize,
}

impl Memo {
    /// How far past the dense array's end an index may be and still extend it.
    const DENSE_GAP: usize = 1024;

    fn get(&self, index: u32) -> Option<Value> {
        match self.dense.get(index as usize) {
            Some(slot) => *slot,
            None => self.sparse.get(&index).copied(),
        }
    }

    /// Sets an entry; returns the bytes that took (new dense slots, or a map entry with the
    /// map's growth slack).
    fn put(&mut self, index: u32, value: Value) -> usize {
        let i = index as usize;
        if self.get(index).is_none() {
            self.count += 1;
        }
        if i < self.dense.len() {
            self.dense[i] = Some(value);
            0
        } else if i <= self.dense.len() + Self::DENSE_GAP && !self.sparse.contains_key(&index) {
            let added = i + 1 - self.dense.len();
            self.dense.resize(i + 1, None);
            self.dense[i] = Some(value);
            added * size_of::<Option<Value>>()
        } else {
            let fresh = self.sparse.insert(index, value).is_none();
            if fresh {
                3 * (size_of::<(u32, Value)>() + 1)
            } else {
                0
            }
        }
    }
}

/// Most arguments any allowlisted callable takes (`_rebuild_tensor_v3` takes 8).
const MAX_CALL_ARGS: usize = 8;

/// Longest storage key accepted (torch writes small integers, legacy files heap addresses).
const MAX_KEY_BYTES: usize = 1024;

/// Longest module or name of a global (the text opcodes stop at 4096 bytes per line too).
const MAX_GLOBAL_NAME_BYTES: usize = 4096;

/// Untrusted text in a message, cut to a readable length.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.into();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len()).into()
}

/// Opcodes of torch's weights-only unpickler.
const TORCH_OPCODES: &[u8] = b"c\x81Rbae su(t\x85\x86\x87N\x89\x88)]}\x8fJKMGXUQhjqr\x8a\x80.";

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "?",
    }
}

impl Machine<'_, '_, '_> {
    fn stop<T>(&self, kind: FindingKind, message: impl Into<String>) -> Step<T> {
        Err(Stop {
            kind,
            message: message.into(),
            offset: self.op_pos,
        })
    }

    fn corrupt<T>(&self, message: impl Into<String>) -> Step<T> {
        self.stop(FindingKind::Container, message)
    }

    fn finding(&mut self, severity: Severity, kind: FindingKind, message: String) -> usize {
        let finding = Finding::new(severity, kind, message)
            .member(self.src.member.clone())
            .at(self.op_pos as u64, self.src.base);
        self.push_finding(finding)
    }

    fn push_finding(&mut self, finding: Finding) -> usize {
        // One finding per place and kind: a memoised refused global used twice is one problem.
        if let Some(i) = self.findings[self.first_finding..].iter().position(|f| {
            f.offset == finding.offset && f.kind == finding.kind && f.message == finding.message
        }) {
            return self.first_finding + i;
        }
        self.findings.push(finding);
        self.findings.len() - 1
    }

    /// Stops once a pickle has produced [`Limits::max_findings`] findings: the file is refused
    /// anyway, and a pickle made of nothing but findings must not cost more than that.
    fn check_findings(&self) -> Step {
        if self.findings.len() - self.first_finding >= self.limits.max_findings {
            return self.stop(
                FindingKind::Resource,
                format!(
                    "more than {} findings in one pickle; the rest was not read",
                    self.limits.max_findings
                ),
            );
        }
        Ok(())
    }

    /// Accounts `bytes` of memory taken by the object tree; stops when the tree would take more
    /// than the floor plus [`Limits::memory_per_byte`] per pickle byte read so far.
    fn charge(&mut self, bytes: usize) -> Step {
        self.memory = self.memory.saturating_add(bytes);
        let allowed = self
            .limits
            .memory_floor
            .saturating_add(self.pos.saturating_mul(self.limits.memory_per_byte));
        if self.memory > allowed {
            return self.stop(
                FindingKind::Resource,
                format!(
                    "reading the first {} bytes of the pickle would take more than {} MiB of \
                     memory ({} MiB + {} per pickle byte): structure repeated or shared through \
                     the memo, or more than about 70,000 tensors in one pickle",
                    self.pos,
                    allowed >> 20,
                    self.limits.memory_floor >> 20,
                    self.limits.memory_per_byte
                ),
            );
        }
        Ok(())
    }

    fn consumed(&mut self, finding: usize, opcode: &str) {
        let consumed = ConsumedBy {
            opcode: opcode.to_owned(),
            offset: self.op_pos as u64,
        };
        let f = &mut self.findings[finding];
        if f.consumed_by.is_none() {
            f.consumed_by = Some(consumed);
        }
    }

    // ---- reading ---------------------------------------------------------------------------

    fn take(&mut self, n: usize) -> Step<&[u8]> {
        let data = self.src.data;
        let end = self.pos.checked_add(n).filter(|&e| e <= data.len());
        match end {
            Some(end) if end <= self.limits.max_pickle_bytes => {
                let bytes = &data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            Some(_) => self.stop(
                FindingKind::Resource,
                format!(
                    "pickle is larger than the {} MiB cap",
                    self.limits.max_pickle_bytes >> 20
                ),
            ),
            None => self.corrupt(format!(
                "truncated pickle: {} needs {n} more bytes at offset {}, only {} left",
                opcode_name(data.get(self.op_pos).copied().unwrap_or(0)),
                self.pos,
                data.len().saturating_sub(self.pos)
            )),
        }
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Step<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Step<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn line(&mut self) -> Step<String> {
        let rest = &self.src.data[self.pos.min(self.src.data.len())..];
        let Some(len) = rest.iter().take(4096).position(|&b| b == b'\n') else {
            if rest.len() < 4096 {
                return self.corrupt(format!(
                    "truncated pickle: {} text argument cut off at offset {}",
                    opcode_name(self.src.data[self.op_pos]),
                    self.src.data.len()
                ));
            }
            return self.corrupt("text argument without a newline in its first 4096 bytes");
        };
        let text = self.take(len + 1)?;
        let text = String::from_utf8_lossy(&text[..len]).into_owned();
        Ok(text)
    }

    fn length(&mut self, len: u64) -> Step<usize> {
        let remaining = self.src.data.len().saturating_sub(self.pos) as u64;
        if len > remaining {
            return self.corrupt(format!(
                "truncated pickle: a {len}-byte argument at offset {} but only {remaining} bytes left",
                self.pos
            ));
        }
        Ok(len as usize)
    }

    // ---- the stack -------------------------------------------------------------------------

    fn push(&mut self, value: Value) -> Step {
        if self.stack.len() >= self.limits.max_stack {
            return self.stop(
                FindingKind::Resource,
                format!(
                    "the pickle stack exceeds {} values (deep nesting)",
                    self.limits.max_stack
                ),
            );
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Step<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.corrupt(format!(
                "stack underflow at {}",
                opcode_name(self.src.data[self.op_pos])
            ));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }

    fn top(&self) -> Step<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(v) if self.stack.len() > floor => Ok(*v),
            _ => self.corrupt(format!(
                "stack underflow at {}",
                opcode_name(self.src.data[self.op_pos])
            )),
        }
    }

    fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            return self.corrupt(format!(
                "{} without a MARK",
                opcode_name(self.src.data[self.op_pos])
            ));
        };
        Ok(self.stack.split_off(mark))
    }

    fn alloc(&mut self, obj: Obj) -> Step<Value> {
        self.charge(size_of::<Obj>() + obj.heap_bytes())?;
        if self.arena.objects.len() >= self.limits.max_objects {
            return self.stop(
                FindingKind::Resource,
                format!("more than {} objects", self.limits.max_objects),
            );
        }
        let count = match &obj {
            Obj::Tuple(v) | Obj::List(v) | Obj::Set(v) => v.len(),
            Obj::Dict(d) => d.items.len(),
            Obj::Str(s) => {
                self.count_string(s.len())?;
                0
            }
            Obj::Bytes(b) => {
                self.count_string(b.len())?;
                0
            }
            _ => 0,
        };
        self.count_items(count)?;
        let id = ObjId::try_from(self.arena.objects.len()).expect("max_objects fits u32");
        self.arena.objects.push(obj);
        Ok(Value::Obj(id))
    }

    fn count_items(&mut self, n: usize) -> Step {
        self.items = self.items.saturating_add(n);
        if self.items > self.limits.max_items {
            return self.stop(
                FindingKind::Resource,
                format!("containers hold more than {} items", self.limits.max_items),
            );
        }
        Ok(())
    }

    fn count_string(&mut self, n: usize) -> Step {
        self.string_bytes = self.string_bytes.saturating_add(n);
        if self.string_bytes > self.limits.max_string_bytes {
            return self.stop(
                FindingKind::Resource,
                format!(
                    "strings exceed {} MiB in total",
                    self.limits.max_string_bytes >> 20
                ),
            );
        }
        Ok(())
    }

    fn obj(&self, value: Value) -> Option<&Obj> {
        match value {
            Value::Obj(id) => Some(self.arena.get(id)),
            _ => None,
        }
    }

    fn obj_mut(&mut self, value: Value) -> Option<&mut Obj> {
        match value {
            Value::Obj(id) => Some(&mut self.arena.objects[id as usize]),
            _ => None,
        }
    }

    fn memo_put(&mut self, index: u32, value: Value) -> Step {
        if self.memo.get(index).is_none() && self.memo.count >= self.limits.max_memo {
            return self.stop(
                FindingKind::Resource,
                format!("more than {} memo entries", self.limits.max_memo),
            );
        }
        let bytes = self.memo.put(index, value);
        self.charge(bytes)
    }

    fn memo_get(&mut self, index: u32) -> Step {
        let Some(value) = self.memo.get(index) else {
            return self.corrupt(format!("memo entry {index} read before it was written"));
        };
        self.push(value)
    }

    fn describe(&self, value: Value) -> &'static str {
        match value {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Obj(id) => match self.arena.get(id) {
                Obj::Str(_) => "str",
                Obj::Bytes(_) => "bytes",
                Obj::BigInt(_) => "int",
                Obj::Tuple(_) => "tuple",
                Obj::List(_) => "list",
                Obj::Dict(_) => "dict",
                Obj::Set(_) => "set",
                Obj::Complex(..) => "complex",
                Obj::Global(_) => "global",
                Obj::Storage(_) => "storage",
                Obj::Tensor(_) => "tensor",
                Obj::Opaque(_) => "refused value",
            },
        }
    }

    // ---- the main loop ---------------------------------------------------------------------

    fn run(&mut self) -> Step<(Value, usize)> {
        loop {
            self.op_pos = self.pos;
            if self.pos >= self.src.data.len() {
                return self.corrupt(format!(
                    "truncated pickle: ends at offset {} without STOP",
                    self.pos
                ));
            }
            self.check_findings()?;
            let op = self.u8()?;
            if !TORCH_OPCODES.contains(&op) && opcode_name(op) != "?" {
                self.report_opcode(op);
            }
            match op {
                b'.' => {
                    let root = self.pop()?;
                    return Ok((root, self.pos));
                }
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.corrupt(format!("unknown pickle protocol {proto}"));
                    }
                    self.protocol = proto;
                }
                0x95 => {
                    // FRAME: only a read-ahead hint; the bytes are read opcode by opcode anyway.
                    self.u64()?;
                }
                b'(' => {
                    if self.marks.len() >= self.limits.max_stack {
                        return self.stop(FindingKind::Resource, "too many nested MARKs");
                    }
                    self.marks.push(self.stack.len());
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    self.long(n)?;
                }
                0x8b => {
                    let n = u64::from(self.u32()?);
                    let n = self.length(n)?;
                    self.long(n)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("take returns 8 bytes"));
                    self.push(Value::Float(v))?;
                }
                b'I' | b'L' => {
                    let text = self.line()?;
                    let text = text.trim_end_matches('L');
                    match text {
                        "00" => self.push(Value::Bool(false))?,
                        "01" => self.push(Value::Bool(true))?,
                        t => match t.parse::<i128>() {
                            Ok(v) => self.push_int(v)?,
                            Err(_) => {
                                return self.corrupt(format!("bad integer literal `{}`", clip(t)));
                            }
                        },
                    }
                }
                b'F' => {
                    let text = self.line()?;
                    let Ok(v) = text.parse::<f64>() else {
                        return self.corrupt(format!("bad float literal `{}`", clip(&text)));
                    };
                    self.push(Value::Float(v))?;
                }
                b'X' => {
                    let n = u64::from(self.u32()?);
                    self.unicode(n)?;
                }
                0x8c => {
                    let n = u64::from(self.u8()?);
                    self.unicode(n)?;
                }
                0x8d => {
                    let n = self.u64()?;
                    self.unicode(n)?;
                }
                b'U' => {
                    let n = u64::from(self.u8()?);
                    self.binstring(n)?;
                }
                b'T' => {
                    let n = u64::from(self.u32()?);
                    self.binstring(n)?;
                }
                b'S' | b'V' => {
                    let text = self.line()?;
                    let text = text.trim_matches(|c| c == '\'' || c == '"');
                    let v = self.alloc(Obj::Str(text.into()))?;
                    self.push(v)?;
                }
                b'B' => {
                    let n = u64::from(self.u32()?);
                    self.bytes(n)?;
                }
                b'C' => {
                    let n = u64::from(self.u8()?);
                    self.bytes(n)?;
                }
                0x8e | 0x96 => {
                    let n = self.u64()?;
                    self.bytes(n)?;
                }
                0x97 => {
                    return self.stop(
                        FindingKind::Opcode,
                        "NEXT_BUFFER needs out-of-band buffers, which a file cannot carry",
                    );
                }
                0x98 => {}
                b')' => {
                    let v = self.alloc(Obj::Tuple(Vec::new()))?;
                    self.push(v)?;
                }
                b']' => {
                    let v = self.alloc(Obj::List(Vec::new()))?;
                    self.push(v)?;
                }
                b'}' => {
                    let v = self.alloc(Obj::Dict(Box::default()))?;
                    self.push(v)?;
                }
                0x8f => {
                    let v = self.alloc(Obj::Set(Vec::new()))?;
                    self.push(v)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let v = self.alloc(Obj::Tuple(items))?;
                    self.push(v)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Tuple(items))?;
                    self.push(v)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::List(items))?;
                    self.push(v)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Dict(Box::default()))?;
                    self.set_items(v, &items)?;
                    self.push(v)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Obj::Set(items))?;
                    self.push(v)?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.push(v)?;
                }
                b'h' => {
                    let i = u32::from(self.u8()?);
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                b'g' => {
                    let text = self.line()?;
                    let Ok(i) = text.parse::<u32>() else {
                        return self.corrupt(format!("bad memo index `{}`", clip(&text)));
                    };
                    self.memo_get(i)?;
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    let v = self.top()?;
                    self.memo_put(i, v)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?;
                    self.memo_put(i, v)?;
                }
                b'p' => {
                    let text = self.line()?;
                    let Ok(i) = text.parse::<u32>() else {
                        return self.corrupt(format!("bad memo index `{}`", clip(&text)));
                    };
                    let v = self.top()?;
                    self.memo_put(i, v)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.count).unwrap_or(u32::MAX);
                    let v = self.top()?;
                    self.memo_put(i, v)?;
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.append(target, items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, &[key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, &items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let v = self.global(&module, &name, "GLOBAL")?;
                    self.push(v)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.arena.str(module), self.arena.str(name))
                    else {
                        return self.corrupt("STACK_GLOBAL needs two strings");
                    };
                    if module.len() > MAX_GLOBAL_NAME_BYTES || name.len() > MAX_GLOBAL_NAME_BYTES {
                        return self.corrupt(format!(
                            "STACK_GLOBAL of a name longer than {MAX_GLOBAL_NAME_BYTES} bytes"
                        ));
                    }
                    let (module, name) = (module.to_owned(), name.to_owned());
                    let v = self.global(&module, &name, "STACK_GLOBAL")?;
                    self.push(v)?;
                }
                b'i' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let args = self.pop_mark()?;
                    let func = self.global(&module, &name, "INST")?;
                    let args = self.alloc(Obj::Tuple(args))?;
                    let v = self.call(func, args, "INST")?;
                    self.push(v)?;
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.corrupt("OBJ without a class");
                    }
                    let class = items.remove(0);
                    let args = self.alloc(Obj::Tuple(items))?;
                    let v = self.call(class, args, "OBJ")?;
                    self.push(v)?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.call(func, args, "REDUCE")?;
                    self.push(v)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let v = self.call(class, args, "NEWOBJ")?;
                    self.push(v)?;
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let v = self.call(class, args, "NEWOBJ_EX")?;
                    self.adopt(v, &[kwargs])?;
                    self.push(v)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v)?;
                }
                b'P' => {
                    let text = self.line()?;
                    let finding = self.finding(
                        Severity::Unsupported,
                        FindingKind::Opcode,
                        format!(
                            "text persistent id `{}` (torch writes BINPERSID tuples)",
                            clip(&text)
                        ),
                    );
                    let v = self.opaque(finding, Vec::new())?;
                    self.push(v)?;
                }
                0x82..=0x84 => {
                    let code = match op {
                        0x82 => u32::from(self.u8()?),
                        0x83 => u32::from(self.u16()?),
                        _ => self.u32()?,
                    };
                    let finding = self.finding(
                        Severity::Unsupported,
                        FindingKind::Opcode,
                        format!("extension registry code {code} (a global by number)"),
                    );
                    let v = self.opaque(finding, Vec::new())?;
                    self.push(v)?;
                }
                other => {
                    return self.corrupt(format!("unknown opcode byte {other:#04x}"));
                }
            }
        }
    }

    fn report_opcode(&mut self, op: u8) {
        if self.reported_opcodes.contains(&op) {
            return;
        }
        self.reported_opcodes.push(op);
        let name = opcode_name(op);
        let severity = if matches!(op, b'i' | b'o') {
            Severity::Dangerous
        } else {
            Severity::Unsupported
        };
        let why = if severity == Severity::Dangerous {
            "imports and calls in one step; outside torch's weights-only opcodes"
        } else {
            "outside torch's weights-only opcodes"
        };
        let mut finding = Finding::new(
            severity,
            FindingKind::Opcode,
            format!("opcode `{name}` ({why})"),
        )
        .member(self.src.member.clone())
        .at(self.op_pos as u64, self.src.base);
        finding.opcode = Some(name.to_owned());
        self.findings.push(finding);
    }

    fn long(&mut self, n: usize) -> Step {
        if n > self.limits.max_long_bytes {
            return self.stop(
                FindingKind::Resource,
                format!(
                    "a {n}-byte integer (at most {} bytes are accepted)",
                    self.limits.max_long_bytes
                ),
            );
        }
        let bytes = self.take(n)?;
        let mut value: i128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            value |= i128::from(b) << (8 * i);
        }
        if n > 0 && n < 16 && bytes[n - 1] & 0x80 != 0 {
            value -= 1i128 << (8 * n);
        }
        self.push_int(value)
    }

    /// Pushes an integer: inline when it fits 64 bits, else as a [`Obj::BigInt`].
    fn push_int(&mut self, value: i128) -> Step {
        let value = match i64::try_from(value) {
            Ok(small) => Value::Int(small),
            Err(_) => self.alloc(Obj::BigInt(value))?,
        };
        self.push(value)
    }

    fn unicode(&mut self, n: u64) -> Step {
        let n = self.length(n)?;
        let bytes = self.take(n)?;
        let Ok(text) = std::str::from_utf8(bytes) else {
            return self.corrupt("string is not valid UTF-8");
        };
        let text: Box<str> = text.into();
        let v = self.alloc(Obj::Str(text))?;
        self.push(v)
    }

    fn binstring(&mut self, n: u64) -> Step {
        // Protocol-2 byte strings decode as latin-1 text in Python 3 (`encoding='latin1'`).
        let n = self.length(n)?;
        let text: String = self.take(n)?.iter().map(|&b| char::from(b)).collect();
        let v = self.alloc(Obj::Str(text.into_boxed_str()))?;
        self.push(v)
    }

    fn bytes(&mut self, n: u64) -> Step {
        let n = self.length(n)?;
        let bytes: Box<[u8]> = self.take(n)?.into();
        let v = self.alloc(Obj::Bytes(bytes))?;
        self.push(v)
    }

    fn opaque(&mut self, finding: usize, children: Vec<Value>) -> Step<Value> {
        self.alloc(Obj::Opaque(Box::new(Opaque {
            findings: vec![finding],
            children,
        })))
    }

    /// A refused value standing for the result of something whose own finding is already
    /// reported (or that holds one).
    fn opaque_of(&mut self, children: Vec<Value>) -> Step<Value> {
        self.alloc(Obj::Opaque(Box::new(Opaque {
            findings: Vec::new(),
            children,
        })))
    }

    /// Adds values to an opaque object's children (so nested findings get a path); no-op otherwise.
    fn adopt(&mut self, target: Value, values: &[Value]) -> Step {
        if let Some(Obj::Opaque(o)) = self.obj_mut(target) {
            o.children.extend_from_slice(values);
            self.charge(size_of_val(values))?;
        }
        Ok(())
    }

    fn global(&mut self, raw_module: &str, raw_name: &str, opcode: &str) -> Step<Value> {
        // Python applies its Python 2 name mapping only to protocol 0-2 pickles
        // (`Unpickler.find_class`: `if self.proto < 3 and self.fix_imports`); a protocol 3+ pickle
        // naming `__builtin__` or `copy_reg` names modules that do not exist in Python 3.
        let (module, name) = if self.protocol < 3 {
            map_py2(raw_module, raw_name)
        } else {
            (raw_module.to_owned(), raw_name.to_owned())
        };
        let kind = classify(&module, &name);
        let finding = if kind == GlobalKind::Refused {
            // INST calls what it imports in the same step, so whatever it names is dangerous.
            let severity = if is_dangerous(&module, &name) || opcode == "INST" {
                Severity::Dangerous
            } else {
                Severity::Unsupported
            };
            let qualified = format!("{module}.{name}");
            let raw_qualified = format!("{raw_module}.{raw_name}");
            let mut message = format!("global `{qualified}`");
            if raw_qualified != qualified {
                let _ = write!(message, " (written `{raw_qualified}`)");
            }
            if opcode != "GLOBAL" {
                let _ = write!(message, " imported by {opcode}");
            }
            let mut finding = Finding::new(severity, FindingKind::Global, message)
                .member(self.src.member.clone())
                .at(self.op_pos as u64, self.src.base);
            finding.opcode = Some(opcode.to_owned());
            finding.global = Some(GlobalName {
                qualified,
                module: module.clone(),
                name: name.clone(),
                raw_qualified,
            });
            Some(self.push_finding(finding))
        } else {
            None
        };
        self.alloc(Obj::Global(Box::new(Global {
            module,
            name,
            kind,
            offset: self.op_pos as u64,
            finding,
        })))
    }

    fn append(&mut self, target: Value, items: Vec<Value>) -> Step {
        self.count_items(items.len())?;
        self.charge(items.len() * size_of::<Value>())?;
        match self.obj_mut(target) {
            Some(Obj::List(list) | Obj::Set(list)) => {
                list.extend(items);
                Ok(())
            }
            Some(Obj::Opaque(o)) => {
                o.children.extend(items);
                Ok(())
            }
            _ => {
                let what = self.describe(target);
                self.finding(
                    Severity::Unsupported,
                    FindingKind::Opcode,
                    format!("APPEND on a {what} (only lists accept items)"),
                );
                Ok(())
            }
        }
    }

    fn set_items(&mut self, target: Value, items: &[Value]) -> Step {
        if !items.len().is_multiple_of(2) {
            return self.corrupt("SETITEMS with an odd number of values");
        }
        self.count_items(items.len() / 2)?;
        match self.obj(target) {
            Some(Obj::Dict(_)) => {}
            Some(Obj::Opaque(_)) => return self.adopt(target, items),
            _ => {
                let what = self.describe(target);
                self.finding(
                    Severity::Unsupported,
                    FindingKind::Opcode,
                    format!("SETITEM on a {what} (only dicts accept items)"),
                );
                return Ok(());
            }
        }
        let mut keys = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks_exact(2) {
            keys.push(self.key(pair[0])?);
        }
        let Some(Obj::Dict(dict)) = self.obj_mut(target) else {
            return Ok(());
        };
        let mut added = 0usize;
        let capacity = dict.index.capacity();
        for (pair, key) in items.chunks_exact(2).zip(keys) {
            if let Some(&i) = dict.index.get(&key) {
                dict.items[i].1 = pair[1];
            } else {
                dict.key_bytes += key.heap_bytes();
                dict.index.insert(key, dict.items.len());
                dict.items.push((pair[0], pair[1]));
                added += 1;
            }
        }
        // A grown index is charged in full: while it is rebuilt the old one is still there.
        let grown = dict.index.capacity();
        let index_bytes = if grown > capacity {
            grown * Dict::INDEX_SLOT_BYTES
        } else {
            0
        };
        // Key strings were charged when they were copied (`key`).
        self.charge(added * size_of::<(Value, Value)>() + index_bytes)
    }

    /// The dict key of a value; a string key is a copy, charged before it is made.
    fn key(&mut self, value: Value) -> Step<Key> {
        Ok(match value {
            Value::None => Key::None,
            Value::Bool(b) => Key::Bool(b),
            Value::Int(i) => Key::Int(i128::from(i)),
            // Float keys are rare in checkpoints; identity is enough to keep them apart.
            Value::Float(f) => Key::Int(i128::from(f.to_bits()) | (1 << 100)),
            Value::Obj(id) => {
                if let Obj::Str(s) = self.arena.get(id) {
                    let len = s.len();
                    self.charge(len)?;
                }
                match self.arena.get(id) {
                    Obj::Str(s) => Key::Str(s.clone()),
                    Obj::BigInt(i) => Key::Int(*i),
                    _ => Key::Obj(id),
                }
            }
        })
    }

    fn build(&mut self, target: Value, state: Value) -> Step {
        let empty_state = self.is_empty_state(state);
        match self.obj_mut(target) {
            // OrderedDict state is the `_metadata` attribute of a state dict: safe to drop.
            Some(Obj::Dict(_)) => {}
            Some(Obj::Opaque(o)) => {
                o.children.push(state);
                self.charge(size_of::<Value>())?;
            }
            Some(Obj::Tensor(_)) if empty_state => {}
            _ => {
                let what = self.describe(target);
                let finding = self.finding(
                    Severity::Unsupported,
                    FindingKind::Opcode,
                    format!("BUILD sets state on a {what}"),
                );
                let placeholder = Obj::Opaque(Box::new(Opaque {
                    findings: vec![finding],
                    children: vec![state],
                }));
                self.charge(placeholder.heap_bytes())?;
                if let Value::Obj(id) = target {
                    self.arena.objects[id as usize] = placeholder;
                }
            }
        }
        Ok(())
    }

    /// Whether a value is the empty state torch writes (`None`, `{}`, or tuples of those such as
    /// `(None, {})`). An explicit stack and a small visit budget: a deep or memo-shared tuple
    /// tree is simply "not empty", never a deep recursion or an exponential walk.
    fn is_empty_state(&self, value: Value) -> bool {
        const MAX_VISITS: usize = 64;
        let mut stack = vec![value];
        let mut visits = 0usize;
        while let Some(value) = stack.pop() {
            visits += 1;
            if visits > MAX_VISITS {
                return false;
            }
            match value {
                Value::None => {}
                Value::Obj(id) => match self.arena.get(id) {
                    Obj::Dict(d) if d.items.is_empty() => {}
                    Obj::Tuple(items) if items.len() <= MAX_VISITS => {
                        stack.extend_from_slice(items);
                    }
                    _ => return false,
                },
                _ => return false,
            }
        }
        true
    }

    fn persistent(&mut self, pid: Value) -> Step<Value> {
        let Some(Obj::Tuple(fields)) = self.obj(pid) else {
            let what = self.describe(pid);
            let finding = self.finding(
                Severity::Unsupported,
                FindingKind::Opcode,
                format!("persistent id is a {what}, not a storage tuple"),
            );
            return self.opaque(finding, vec![pid]);
        };
        let tag = fields
            .first()
            .and_then(|&v| self.arena.str(v))
            .unwrap_or("");
        if tag != "storage" {
            let message = format!(
                "persistent id `{}` (only `storage` ids are data; `module` ids carry source code)",
                clip(tag)
            );
            let finding = self.finding(Severity::Unsupported, FindingKind::Opcode, message);
            return self.opaque(finding, vec![pid]);
        }
        let expected = match self.src.pids {
            PidFormat::Zip => 5,
            PidFormat::Legacy => 6,
        };
        if fields.len() != expected {
            return self.corrupt(format!(
                "storage persistent id has {} fields, expected {expected}",
                fields.len()
            ));
        }
        let fields = fields.clone();
        let class = match self.obj(fields[1]) {
            Some(Obj::Global(g)) => (**g).clone(),
            Some(Obj::Opaque(_)) => return self.opaque_of(vec![pid]),
            _ => return self.corrupt("storage persistent id without a storage class"),
        };
        let dtype = match class.kind {
            GlobalKind::Storage(StorageClass::Typed(dtype)) => Some(dtype),
            GlobalKind::Storage(StorageClass::Untyped) => None,
            GlobalKind::Storage(StorageClass::Unsupported) | GlobalKind::Dtype(Err(())) => {
                let finding = self.dtype_finding(&class, "BINPERSID");
                return self.opaque(finding, vec![pid]);
            }
            GlobalKind::Refused => return self.opaque_of(vec![pid]),
            _ => {
                return self.corrupt(format!(
                    "storage persistent id names `{}`, not a storage class",
                    class.qualified()
                ));
            }
        };
        let Some(key) = self.arena.str(fields[2]) else {
            return self.corrupt("storage key is not a string");
        };
        if key.len() > MAX_KEY_BYTES {
            return self.corrupt(format!(
                "storage key of {} bytes (at most {MAX_KEY_BYTES})",
                key.len()
            ));
        }
        let key = key.to_owned();
        let Some(numel) = self.arena.int(fields[4]) else {
            return self.corrupt(format!("storage `{key}` has a non-integer size"));
        };
        let Ok(numel) = u64::try_from(numel) else {
            return self.corrupt(format!("storage `{key}` has size {numel}"));
        };
        let view = if self.src.pids == PidFormat::Legacy {
            match fields[5] {
                Value::None => None,
                v => {
                    let parts = match self.obj(v) {
                        Some(Obj::Tuple(parts)) if parts.len() == 3 => parts.clone(),
                        _ => return self.corrupt(format!("storage `{key}` has bad view metadata")),
                    };
                    match (self.arena.int(parts[1]), self.arena.int(parts[2])) {
                        (Some(offset), Some(size)) if offset >= 0 && size >= 0 => {
                            let (Ok(offset), Ok(size)) =
                                (u64::try_from(offset), u64::try_from(size))
                            else {
                                return self
                                    .corrupt(format!("storage `{key}` has a view out of range"));
                            };
                            if offset.checked_add(size).is_none_or(|end| end > numel) {
                                return self.stop(
                                    FindingKind::Storage,
                                    format!("storage view {offset}+{size} exceeds storage `{key}` of {numel} elements"),
                                );
                            }
                            Some((offset, size))
                        }
                        _ => return self.corrupt(format!("storage `{key}` has bad view metadata")),
                    }
                }
            }
        } else {
            None
        };
        // torch loads each key once and reuses that storage for every later persistent id of the
        // key, whatever type and size they declare; a later use that disagrees would have its
        // tensors read as the first use's type. Every use must agree.
        let describe = |dtype: Option<Dtype>, numel: u64| match dtype {
            Some(d) => format!("{numel} {d:?} elements"),
            None => format!("{numel} untyped bytes"),
        };
        match self.storages.get(&key) {
            Some(&(first_dtype, first_numel, first_at))
                if (first_dtype, first_numel) != (dtype, numel) =>
            {
                let message = format!(
                    "storage `{key}` is declared as {} at offset {first_at} and as {} here; \
                     readers would reinterpret one as the other",
                    describe(first_dtype, first_numel),
                    describe(dtype, numel)
                );
                let finding = self.finding(Severity::Corrupt, FindingKind::Storage, message);
                return self.opaque(finding, vec![pid]);
            }
            Some(_) => {}
            None => {
                self.charge(key.len() + size_of::<(String, (Option<Dtype>, u64, u64))>() + 1)?;
                self.storages
                    .insert(key.clone(), (dtype, numel, self.op_pos as u64));
            }
        }
        let storage = Storage {
            key,
            dtype,
            numel,
            view,
            offset: self.op_pos as u64,
        };
        if storage.record_bytes().is_none() {
            return self.stop(
                FindingKind::Storage,
                format!(
                    "storage `{}` of {numel} elements overflows 64 bits",
                    storage.key
                ),
            );
        }
        self.alloc(Obj::Storage(Box::new(storage)))
    }

    fn dtype_finding(&mut self, global: &Global, opcode: &str) -> usize {
        let message = format!(
            "dtype `{}` has no safetensors equivalent",
            global.qualified()
        );
        self.global_misuse(global, FindingKind::Dtype, message, opcode)
    }

    /// An `unsupported` finding about an allowlisted global (already name-checked when it was
    /// pushed) that is used for something a weights-only checkpoint cannot hold; `opcode` is
    /// the call that consumed it.
    fn global_misuse(
        &mut self,
        global: &Global,
        kind: FindingKind,
        message: String,
        opcode: &str,
    ) -> usize {
        let qualified = global.qualified();
        let mut finding = Finding::new(Severity::Unsupported, kind, message)
            .member(self.src.member.clone())
            .at(global.offset, self.src.base);
        finding.opcode = Some("GLOBAL".to_owned());
        finding.global = Some(GlobalName {
            qualified: qualified.clone(),
            module: global.module.clone(),
            name: global.name.clone(),
            raw_qualified: qualified,
        });
        let index = self.push_finding(finding);
        self.consumed(index, opcode);
        index
    }

    /// The items of a tuple or list of at most `max` items (a copy; `None` for anything else or
    /// anything longer, so that no opcode copies a large shared tuple).
    fn short_items(&self, value: Value, max: usize) -> Option<Vec<Value>> {
        match self.obj(value) {
            Some(Obj::Tuple(items) | Obj::List(items)) if items.len() <= max => Some(items.clone()),
            _ => None,
        }
    }

    /// The items of a tuple or list, whatever its length: only for results that are charged
    /// in full right after (a set, a `torch.Size`, dict items).
    fn all_items(&self, value: Value) -> Option<Vec<Value>> {
        match self.obj(value) {
            Some(Obj::Tuple(items) | Obj::List(items)) => Some(items.clone()),
            _ => None,
        }
    }

    /// Bytes of the string a value holds (0 for anything else).
    fn str_len(&self, value: Value) -> usize {
        self.arena.str(value).map_or(0, str::len)
    }

    /// `REDUCE`, `NEWOBJ`, `INST`, `OBJ`: only allowlisted callables do anything.
    fn call(&mut self, func: Value, args: Value, opcode: &str) -> Step<Value> {
        let refused = match self.obj(func) {
            Some(Obj::Global(g)) => g.finding,
            Some(Obj::Opaque(_)) => return self.opaque_of(vec![func, args]),
            _ => {
                let what = self.describe(func);
                return self.corrupt(format!("{opcode} calls a {what}"));
            }
        };
        if let Some(finding) = refused {
            self.consumed(finding, opcode);
            return self.opaque(finding, vec![func, args]);
        }
        // Allowlisted: its name is short, so the copy is cheap.
        let Some(Obj::Global(global)) = self.obj(func) else {
            return self.corrupt(format!("{opcode} calls a non-global"));
        };
        let global = (**global).clone();
        let call_args = match self.obj(args) {
            Some(Obj::Tuple(items) | Obj::List(items)) if items.len() <= MAX_CALL_ARGS => {
                items.clone()
            }
            Some(Obj::Tuple(items) | Obj::List(items)) => {
                let message = format!(
                    "global `{}` called with {} arguments (torch's take at most {MAX_CALL_ARGS})",
                    global.qualified(),
                    items.len()
                );
                let index = self.global_misuse(&global, FindingKind::Global, message, opcode);
                return self.opaque(index, vec![func, args]);
            }
            Some(Obj::Opaque(_)) => return self.opaque_of(vec![func, args]),
            _ => return self.corrupt(format!("{opcode} arguments are not a tuple")),
        };
        if global.kind == GlobalKind::Rebuild(Rebuild::Unsupported) && opcode == "REDUCE" {
            return self.rebuild(Rebuild::Unsupported, &global, &call_args);
        }
        // An opaque argument makes the result opaque too (its finding is already reported).
        if call_args
            .iter()
            .any(|&a| matches!(self.obj(a), Some(Obj::Opaque(_))))
        {
            return self.opaque_of(vec![func, args]);
        }
        let newobj = opcode == "NEWOBJ" || opcode == "NEWOBJ_EX";
        match global.kind {
            GlobalKind::OrderedDict | GlobalKind::Counter => {
                let dict = self.alloc(Obj::Dict(Box::default()))?;
                if let (false, Some(&init)) = (newobj, call_args.first()) {
                    if let Some(pairs) = self.all_items(init) {
                        self.charge(pairs.len() * size_of::<Value>())?;
                        for pair in pairs {
                            match self.short_items(pair, 2) {
                                Some(kv) if kv.len() == 2 => self.set_items(dict, &kv)?,
                                _ => return self.corrupt("OrderedDict item is not a pair"),
                            }
                        }
                    } else if self.obj(init).is_some_and(|o| matches!(o, Obj::Dict(_))) {
                        let len = self.arena.dict(init).map_or(0, |d| d.items.len());
                        self.charge(len * 2 * size_of::<Value>())?;
                        let items: Vec<Value> = self
                            .arena
                            .dict(init)
                            .map(|d| d.items.iter().flat_map(|&(k, v)| [k, v]).collect())
                            .unwrap_or_default();
                        self.set_items(dict, &items)?;
                    }
                }
                Ok(dict)
            }
            GlobalKind::Set => {
                let items = call_args
                    .first()
                    .and_then(|&v| self.all_items(v))
                    .unwrap_or_default();
                self.count_items(items.len())?;
                self.alloc(Obj::Set(items))
            }
            GlobalKind::Size if !newobj => {
                let items = call_args
                    .first()
                    .and_then(|&v| self.short_items(v, tensor::MAX_RANK))
                    .unwrap_or_default();
                self.alloc(Obj::Tuple(items))
            }
            GlobalKind::Device | GlobalKind::GetLayout if !newobj => {
                let len: usize = call_args.iter().map(|&v| self.str_len(v) + 40).sum();
                self.charge(len)?;
                let text = call_args
                    .iter()
                    .map(|&v| match self.arena.int(v) {
                        Some(i) => i.to_string(),
                        None => self.arena.str(v).unwrap_or("?").to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(":");
                self.alloc(Obj::Str(text.into()))
            }
            GlobalKind::CodecsEncode if !newobj => {
                let first = call_args.first().copied().unwrap_or(Value::None);
                self.charge(self.str_len(first))?;
                let text = self.arena.str(first).unwrap_or("");
                let Some(bytes) = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect::<Option<Box<[u8]>>>()
                else {
                    return self.corrupt("_codecs.encode of a string outside latin-1");
                };
                self.alloc(Obj::Bytes(bytes))
            }
            GlobalKind::Bytearray => {
                let bytes = match call_args.first().and_then(|&v| self.obj(v)) {
                    Some(Obj::Bytes(b)) => b.len(),
                    _ => 0,
                };
                self.charge(bytes)?;
                let bytes = match call_args.first().and_then(|&v| self.obj(v)) {
                    Some(Obj::Bytes(b)) => b.clone(),
                    _ => Box::default(),
                };
                self.alloc(Obj::Bytes(bytes))
            }
            GlobalKind::Complex if !newobj => {
                let part = |v: Option<&Value>| match v {
                    Some(Value::Float(f)) => *f,
                    Some(Value::Int(i)) => *i as f64,
                    _ => 0.0,
                };
                self.alloc(Obj::Complex(
                    part(call_args.first()),
                    part(call_args.get(1)),
                ))
            }
            GlobalKind::Parameter if newobj => {
                let Some(&data) = call_args.first() else {
                    return self.corrupt("Parameter without data");
                };
                self.parameter(data)
            }
            GlobalKind::Rebuild(rebuild) if !newobj => self.rebuild(rebuild, &global, &call_args),
            _ => {
                let message = format!(
                    "global `{}` used in a way torch checkpoints never do",
                    global.qualified()
                );
                let index = self.global_misuse(&global, FindingKind::Global, message, opcode);
                self.opaque(index, vec![func, args])
            }
        }
    }

    fn parameter(&mut self, data: Value) -> Step<Value> {
        let Some(Obj::Tensor(t)) = self.obj(data) else {
            let what = self.describe(data);
            return self.corrupt(format!("Parameter of a {what}, not a tensor"));
        };
        let mut t = t.clone();
        t.parameter = true;
        self.alloc(Obj::Tensor(t))
    }

    fn int(&self, value: Value, what: &str) -> Step<i128> {
        if let Some(i) = self.arena.int(value) {
            return Ok(i);
        }
        let t = self.describe(value);
        self.corrupt(format!("{what} is a {t}, not an int"))
    }

    fn ints(&self, value: Value, what: &str) -> Step<Vec<i128>> {
        let Some(Obj::Tuple(items) | Obj::List(items)) = self.obj(value) else {
            let t = self.describe(value);
            return self.corrupt(format!("{what} is a {t}, not a tuple"));
        };
        if items.len() > tensor::MAX_RANK {
            return self.stop(
                FindingKind::Resource,
                format!("{what} has {} dimensions", items.len()),
            );
        }
        items.iter().map(|&v| self.int(v, what)).collect()
    }

    fn rebuild(&mut self, rebuild: Rebuild, global: &Global, call_args: &[Value]) -> Step<Value> {
        let name = global.qualified();
        match rebuild {
            Rebuild::Unsupported => {
                let message = format!(
                    "`{name}` builds a tensor safetensors cannot hold (quantized, sparse, meta or \
                     subclass)"
                );
                let index = self.global_misuse(global, FindingKind::Dtype, message, "REDUCE");
                self.opaque(index, call_args.to_vec())
            }
            Rebuild::Parameter | Rebuild::ParameterWithState => {
                let arity = if rebuild == Rebuild::Parameter { 3 } else { 4 };
                if call_args.len() != arity {
                    return self.corrupt(format!(
                        "`{name}` takes {arity} arguments, got {}",
                        call_args.len()
                    ));
                }
                if !self.is_empty_state(call_args[2])
                    || call_args.get(3).is_some_and(|&s| !self.is_empty_state(s))
                {
                    let finding = self.finding(
                        Severity::Unsupported,
                        FindingKind::Opcode,
                        format!("`{name}` with backward hooks or extra state"),
                    );
                    return self.opaque(finding, call_args.to_vec());
                }
                self.parameter(call_args[0])
            }
            Rebuild::FromTypeV2 => {
                if call_args.len() != 4 {
                    return self.corrupt(format!(
                        "`{name}` takes 4 arguments, got {}",
                        call_args.len()
                    ));
                }
                let inner = match self.obj(call_args[0]) {
                    Some(Obj::Global(g)) => (**g).clone(),
                    _ => return self.corrupt(format!("`{name}` without a rebuild function")),
                };
                let new_type = match self.obj(call_args[1]) {
                    Some(Obj::Global(g)) => g.kind,
                    _ => return self.corrupt(format!("`{name}` without a tensor type")),
                };
                // torch writes one level: `_rebuild_from_type_v2(_rebuild_tensor_v2, ...)`. A
                // nested `_rebuild_from_type_v2` would make this a recursion on the pickle's
                // structure (its arguments can even contain themselves through the memo).
                let nested = inner.kind == GlobalKind::Rebuild(Rebuild::FromTypeV2);
                if nested
                    || !matches!(new_type, GlobalKind::TensorClass | GlobalKind::Parameter)
                    || !self.is_empty_state(call_args[3])
                {
                    let why = if nested {
                        "calling itself"
                    } else {
                        "with a tensor subclass or state"
                    };
                    let finding = self.finding(
                        Severity::Unsupported,
                        FindingKind::Opcode,
                        format!("`{name}` {why}"),
                    );
                    return self.opaque(finding, call_args.to_vec());
                }
                let Some(inner_args) = self.short_items(call_args[2], MAX_CALL_ARGS) else {
                    return self.corrupt(format!(
                        "`{name}` arguments are not a tuple of at most {MAX_CALL_ARGS} values"
                    ));
                };
                let GlobalKind::Rebuild(inner_rebuild) = inner.kind else {
                    return self.corrupt(format!("`{name}` calls `{}`", inner.qualified()));
                };
                if inner_args
                    .iter()
                    .any(|&a| matches!(self.obj(a), Some(Obj::Opaque(_))))
                {
                    return self.opaque_of(call_args.to_vec());
                }
                let tensor = self.rebuild(inner_rebuild, &inner, &inner_args)?;
                if new_type == GlobalKind::Parameter
                    && matches!(self.obj(tensor), Some(Obj::Tensor(_)))
                {
                    return self.parameter(tensor);
                }
                Ok(tensor)
            }
            Rebuild::TensorV1 | Rebuild::TensorV2 | Rebuild::TensorV3 => {
                let (min, max) = match rebuild {
                    Rebuild::TensorV1 => (4, 4),
                    Rebuild::TensorV2 => (6, 7),
                    _ => (7, 8),
                };
                if call_args.len() < min || call_args.len() > max {
                    return self.corrupt(format!(
                        "`{name}` takes {min} to {max} arguments, got {}",
                        call_args.len()
                    ));
                }
                let storage_value = call_args[0];
                let Some(Obj::Storage(storage)) = self.obj(storage_value) else {
                    let what = self.describe(storage_value);
                    return self.corrupt(format!("`{name}` of a {what}, not a storage"));
                };
                let storage = storage.clone();
                let offset = self.int(call_args[1], "storage offset")?;
                let shape = self.ints(call_args[2], "size")?;
                let stride = self.ints(call_args[3], "stride")?;
                if rebuild != Rebuild::TensorV1 {
                    if !matches!(call_args[4], Value::Bool(_)) {
                        return self.corrupt(format!("`{name}`: requires_grad is not a bool"));
                    }
                    let hooks_empty = self
                        .arena
                        .dict(call_args[5])
                        .is_some_and(|d| d.items.is_empty());
                    let metadata_index = if rebuild == Rebuild::TensorV3 { 7 } else { 6 };
                    let metadata_empty = call_args
                        .get(metadata_index)
                        .is_none_or(|&m| self.is_empty_state(m));
                    if !hooks_empty || !metadata_empty {
                        let finding = self.finding(
                            Severity::Unsupported,
                            FindingKind::Opcode,
                            format!(
                                "`{name}` with backward hooks or tensor metadata (conj/neg bits)"
                            ),
                        );
                        return self.opaque(finding, call_args.to_vec());
                    }
                }
                let dtype = if rebuild == Rebuild::TensorV3 {
                    let class = match self.obj(call_args[6]) {
                        Some(Obj::Global(g)) => g.clone(),
                        _ => return self.corrupt(format!("`{name}` without a dtype")),
                    };
                    match class.kind {
                        GlobalKind::Dtype(Ok(dtype)) => dtype,
                        GlobalKind::Dtype(Err(())) => {
                            let finding = self.dtype_finding(&class, "REDUCE");
                            return self.opaque(finding, call_args.to_vec());
                        }
                        _ => {
                            return self
                                .corrupt(format!("`{name}` dtype is `{}`", class.qualified()));
                        }
                    }
                } else {
                    match storage.dtype {
                        Some(dtype) => dtype,
                        None => return self.corrupt(format!("`{name}` of an untyped storage")),
                    }
                };
                let size = tensor::element_size(dtype);
                let (elements, kind_ok) = match (storage.dtype, storage.view) {
                    (_, Some((_, view_size))) => (view_size, true),
                    (Some(d), None) => (storage.numel, d == dtype),
                    (None, None) => (storage.numel / size, storage.numel % size == 0),
                };
                if !kind_ok {
                    return self.stop(
                        FindingKind::Storage,
                        format!(
                            "storage `{}` does not hold whole {dtype:?} elements",
                            storage.key
                        ),
                    );
                }
                match View::new(dtype, offset, &shape, &stride, elements) {
                    Ok(view) => {
                        let Value::Obj(storage_id) = storage_value else {
                            unreachable!("matched an object above")
                        };
                        self.alloc(Obj::Tensor(Box::new(Tensor {
                            storage: storage_id,
                            view,
                            parameter: false,
                        })))
                    }
                    Err(why) => {
                        let finding = self.finding(
                            Severity::Corrupt,
                            FindingKind::Storage,
                            format!("tensor of storage `{}`: {why}", storage.key),
                        );
                        self.opaque(finding, Vec::new())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-assembles protocol-2 pickles.
    #[derive(Default)]
    struct P(Vec<u8>);

    impl P {
        fn new() -> Self {
            Self(vec![0x80, 2])
        }
        fn op(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn global(self, module: &str, name: &str) -> Self {
            self.op(format!("c{module}\n{name}\n").as_bytes())
        }
        fn str(self, s: &str) -> Self {
            let len = (s.len() as u32).to_le_bytes();
            self.op(b"X").op(&len).op(s.as_bytes())
        }
        fn int(self, i: u8) -> Self {
            self.op(&[b'K', i])
        }
        fn pos(&self) -> u64 {
            self.0.len() as u64
        }
        fn stop(self) -> Vec<u8> {
            self.op(b".").0
        }
    }

    fn run(data: &[u8]) -> (Option<Parsed>, Vec<Finding>) {
        run_with(data, &Limits::default())
    }

    fn run_with(data: &[u8], limits: &Limits) -> (Option<Parsed>, Vec<Finding>) {
        let source = Source {
            data,
            member: Member::Entry("archive/data.pkl".into()),
            base: 100,
            pids: PidFormat::Zip,
        };
        let mut findings = Vec::new();
        let parsed = interpret(&source, limits, &mut findings);
        (parsed, findings)
    }

    /// `(storage, 'FloatStorage', key, 'cpu', numel)` pid and a `_rebuild_tensor_v2` call.
    fn tensor(p: P, key: &str, numel: u8, offset: u8, shape: &[u8], stride: &[u8]) -> P {
        let mut p = p
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(offset)
            .op(b"(");
        for &s in shape {
            p = p.int(s);
        }
        p = p.op(b"t(");
        for &s in stride {
            p = p.int(s);
        }
        p.op(b"t\x89")
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }

    #[test]
    fn a_state_dict_becomes_an_ordered_dict_of_tensors() {
        let p = P::new()
            .global("collections", "OrderedDict")
            .op(b")R")
            .op(b"q\x00(")
            .str("w");
        let p = tensor(p, "0", 6, 0, &[2, 3], &[3, 1])
            .op(b"q\x01")
            .str("tied")
            .op(b"h\x01");
        let p = p.str("t");
        let data = tensor(p, "0", 6, 0, &[3, 2], &[1, 3]).op(b"u").stop();
        let (parsed, findings) = run(&data);
        assert!(findings.is_empty(), "{findings:?}");
        let parsed = parsed.expect("parses");
        let dict = parsed.arena.dict(parsed.root).expect("a dict");
        let keys: Vec<_> = dict
            .items
            .iter()
            .map(|(k, _)| parsed.arena.str(*k).expect("str"))
            .collect();
        assert_eq!(keys, ["w", "tied", "t"]);
        assert_eq!(dict.items[0].1, dict.items[1].1, "memo keeps identity");
        let t = parsed.arena.tensor(dict.items[2].1).expect("tensor");
        assert_eq!(t.view.shape, [3, 2]);
        assert!(!t.view.is_contiguous());
    }

    #[test]
    fn a_refused_global_is_reported_with_its_call_and_scanning_goes_on() {
        let p = P::new().op(b"}(").str("_hook");
        let global_at = p.pos();
        let p = p.global("posix", "system").str("touch x").op(b"\x85");
        let reduce_at = p.pos();
        let p = p
            .op(b"R")
            .str("_eval")
            .global("__builtin__", "eval")
            .str("1")
            .op(b"\x85R");
        let data = p.op(b"u").stop();
        let (parsed, findings) = run(&data);
        assert!(parsed.is_some(), "keeps going after a refused global");
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Dangerous);
        assert_eq!(
            f.global.as_ref().map(|g| g.qualified.as_str()),
            Some("posix.system")
        );
        assert_eq!(f.offset, Some(global_at));
        assert_eq!(f.file_offset, Some(100 + global_at));
        assert_eq!(
            f.consumed_by,
            Some(ConsumedBy {
                opcode: "REDUCE".into(),
                offset: reduce_at
            })
        );
        let g = findings[1].global.as_ref().expect("global");
        assert_eq!(
            (g.qualified.as_str(), g.raw_qualified.as_str()),
            ("builtins.eval", "__builtin__.eval")
        );
    }

    #[test]
    fn the_allowlist_is_exact_never_by_prefix() {
        assert_eq!(classify("torch", "hub"), GlobalKind::Refused);
        assert_eq!(classify("torch.hub", "load"), GlobalKind::Refused);
        assert_eq!(classify("torch", "load"), GlobalKind::Refused);
        assert_eq!(
            classify("torch._utils", "_rebuild_tensor_v2"),
            GlobalKind::Rebuild(Rebuild::TensorV2)
        );
        assert_eq!(
            classify("torch", "float8_e5m2"),
            GlobalKind::Dtype(Ok(Dtype::F8_E5M2))
        );
        assert!(is_dangerous("torch.hub", "load"));
        assert!(is_dangerous("os.path", "join"));
        assert!(!is_dangerous("osmium", "x"));
        assert!(!is_dangerous("argparse", "Namespace"));
        assert_eq!(
            map_py2("__builtin__", "reduce"),
            ("functools".into(), "reduce".into())
        );
        assert_eq!(
            map_py2("copy_reg", "_reconstructor"),
            ("copyreg".into(), "_reconstructor".into())
        );
    }

    #[test]
    fn opcodes_outside_torchs_set_are_reported_once_each_and_interpreted() {
        // Protocol 4: memoised strings combined by STACK_GLOBAL, as in picklescan bypasses.
        let mut data = vec![0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(b"\x8c\x05posix\x94\x8c\x06system\x94");
        data.extend_from_slice(b"h\x00h\x01\x93\x8c\x01x\x85R.");
        let (parsed, findings) = run(&data);
        assert!(parsed.is_some());
        let names: Vec<_> = findings
            .iter()
            .map(|f| f.opcode.clone().unwrap_or_default() + "/" + &f.severity.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "FRAME/unsupported",
                "SHORT_BINUNICODE/unsupported",
                "MEMOIZE/unsupported",
                "STACK_GLOBAL/unsupported",
                "STACK_GLOBAL/dangerous"
            ]
        );
    }

    #[test]
    fn inst_is_dangerous_in_itself() {
        let data = P::new()
            .op(b"(")
            .str("touch x")
            .op(b"iposix\nsystem\n")
            .stop();
        let (_, findings) = run(&data);
        assert!(findings.iter().any(|f| f.opcode.as_deref() == Some("INST")
            && f.kind == FindingKind::Opcode
            && f.severity == Severity::Dangerous));
        let g = findings
            .iter()
            .find(|f| f.kind == FindingKind::Global)
            .expect("global finding");
        assert_eq!(
            g.consumed_by.as_ref().map(|c| c.opcode.as_str()),
            Some("INST")
        );
    }

    #[test]
    fn binbytes_is_refused_and_never_looked_into() {
        let data = P::new()
            .global("pickle", "loads")
            .op(b"B\x03\x00\x00\x00abc\x85R")
            .stop();
        let (_, findings) = run(&data);
        let kinds: Vec<_> = findings.iter().map(|f| (f.kind, f.severity)).collect();
        assert_eq!(
            kinds,
            [
                (FindingKind::Global, Severity::Dangerous),
                (FindingKind::Opcode, Severity::Unsupported)
            ]
        );
    }

    #[test]
    fn malformed_pickles_stop_with_a_corrupt_finding_never_a_panic() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "without STOP"),
            (b"\x80\x02}", "without STOP"),
            (b"\x80\x02X\xff\xff\xff\x7f", "truncated"),
            (b"\x80\x02.", "underflow"),
            (b"\x80\x02u.", "without a MARK"),
            (b"\x80\x02h\x05.", "memo entry 5"),
            (b"\x80\x02\xff.", "unknown opcode"),
            (b"\x80\x09.", "protocol 9"),
            (b"\x80\x02K\x01K\x02R.", "calls a int"),
        ];
        for (data, needle) in cases {
            let (parsed, findings) = run(data);
            assert!(parsed.is_none(), "{data:?}");
            let last = findings.last().expect("a finding");
            assert_eq!(last.severity, Severity::Corrupt);
            assert!(last.message.contains(needle), "{data:?}: {}", last.message);
        }
    }

    #[test]
    fn resource_caps_stop_bombs() {
        let mut deep = vec![0x80, 2];
        deep.extend(std::iter::repeat_n(b']', 100));
        deep.push(b'.');
        let limits = Limits {
            max_stack: 50,
            ..Limits::default()
        };
        let (_, findings) = run_with(&deep, &limits);
        assert_eq!(findings.last().map(|f| f.kind), Some(FindingKind::Resource));

        let mut long = vec![0x80, 2, 0x8a, 17];
        long.extend([0xff; 17]);
        long.push(b'.');
        let (_, findings) = run(&long);
        assert!(
            findings
                .last()
                .expect("finding")
                .message
                .contains("17-byte integer")
        );

        // A memo copy bomb is cheap: BINGET shares, never copies.
        let mut bomb = P::new().op(b"]q\x00");
        for _ in 0..30 {
            bomb = bomb.op(b"h\x00h\x00\x86q\x00");
        }
        let (parsed, findings) = run(&bomb.stop());
        assert!(findings.is_empty());
        assert!(parsed.expect("parses").arena.len() < 40);

        let limits = Limits {
            max_string_bytes: 10,
            ..Limits::default()
        };
        let (_, findings) = run_with(&P::new().str("01234567890").stop(), &limits);
        assert!(
            findings
                .last()
                .expect("finding")
                .message
                .contains("strings exceed")
        );
    }

    #[test]
    fn deeply_nested_build_state_is_refused_without_recursing() {
        // 200,000 nested one-tuples as BUILD state: a few hundred kilobytes that overflowed the
        // stack of a recursive emptiness check.
        let mut data = P::new().op(b"])").0;
        data.extend(std::iter::repeat_n(0x85, 200_000));
        data.extend_from_slice(b"b.");
        let (parsed, findings) = run(&data);
        assert!(parsed.is_some());
        assert!(
            findings
                .iter()
                .any(|f| f.message.contains("BUILD sets state")),
            "{findings:?}"
        );
    }

    #[test]
    fn memo_shared_state_is_not_walked_as_a_tree() {
        // 2^60 paths through 60 tuples: an emptiness check walking it as a tree never ends.
        let mut p = P::new().op(b"])q\x00");
        for _ in 0..60 {
            p = p.op(b"h\x00h\x00\x86q\x00");
        }
        let data = p.op(b"b").stop();
        let started = std::time::Instant::now();
        let (parsed, findings) = run(&data);
        assert!(started.elapsed().as_secs() < 2);
        assert!(parsed.is_some());
        assert_eq!(findings.len(), 1, "{findings:?}");
    }

    #[test]
    fn a_rebuild_whose_arguments_contain_themselves_is_refused() {
        // L = [F, torch.Tensor, L, None]; F(*L) with F = _rebuild_from_type_v2 calls F(*L) again.
        let data = P::new()
            .global("torch._tensor", "_rebuild_from_type_v2")
            .op(b"q\x00]q\x01(h\x00")
            .global("torch", "Tensor")
            .op(b"h\x01Ne0h\x00h\x01R.")
            .0;
        let (parsed, findings) = run(&data);
        assert!(parsed.is_some());
        assert!(
            findings
                .iter()
                .any(|f| f.message.contains("calling itself")),
            "{findings:?}"
        );
    }

    #[test]
    fn python2_names_are_mapped_only_below_protocol_3() {
        let data = |proto: u8| {
            let mut p = P::new().global("__builtin__", "set").op(b")R.").0;
            p[1] = proto;
            p
        };
        let (_, findings) = run(&data(2));
        assert!(findings.is_empty(), "{findings:?}");
        let (_, findings) = run(&data(3));
        let g = findings[0].global.as_ref().expect("a global finding");
        assert_eq!(g.qualified, "__builtin__.set");
        assert_eq!(findings[0].severity, Severity::Unsupported);
        // The same holds for names that map onto dangerous ones: protocol 2 reports the
        // mapped name, protocol 4 the name as written.
        let mut p4 = P::new().global("__builtin__", "eval").op(b")R.").0;
        p4[1] = 4;
        let (_, findings) = run(&p4);
        let g = findings[0].global.as_ref().expect("a global finding");
        assert_eq!(g.qualified, "__builtin__.eval");
    }

    /// `(storage, <class>, key, 'cpu', numel)` pid.
    fn pid(p: P, class: &str, key: &str, numel: u8) -> P {
        p.op(b"(")
            .str("storage")
            .global("torch", class)
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
    }

    #[test]
    fn every_use_of_a_storage_key_must_agree_on_type_and_size() {
        let agree = pid(
            pid(P::new().op(b"("), "FloatStorage", "0", 6),
            "FloatStorage",
            "0",
            6,
        )
        .op(b"t.");
        let (_, findings) = run(&agree.0);
        assert!(findings.is_empty(), "{findings:?}");
        for (class, numel) in [("DoubleStorage", 6), ("FloatStorage", 7)] {
            let data = pid(
                pid(P::new().op(b"("), "FloatStorage", "0", 6),
                class,
                "0",
                numel,
            )
            .op(b"t.");
            let (parsed, findings) = run(&data.0);
            assert!(parsed.is_some());
            assert_eq!(findings.len(), 1, "{findings:?}");
            assert_eq!(findings[0].severity, Severity::Corrupt);
            assert!(
                findings[0].message.contains("declared as 6 F32 elements"),
                "{}",
                findings[0].message
            );
        }
    }

    #[test]
    fn memory_is_bounded_in_proportion_to_the_pickle() {
        let limits = Limits {
            memory_floor: 1 << 20,
            ..Limits::default()
        };
        // Many small objects: one byte each, 30-50 bytes of tree each.
        let mut many = P::new().op(b"](").0;
        many.extend(std::iter::repeat_n(b')', 1_000_000));
        many.extend_from_slice(b"e.");
        let (_, findings) = run_with(&many, &limits);
        let last = findings.last().expect("a finding");
        assert_eq!(last.kind, FindingKind::Resource, "{last:?}");
        assert!(last.message.contains("MiB of memory"), "{}", last.message);
        // A long memoised string used as a key of many dicts: each key is a copy.
        let mut keys = P::new().str(&"k".repeat(1 << 20)).op(b"q\x00](");
        for _ in 0..200 {
            keys = keys.op(b"}h\x00Ns");
        }
        let (_, findings) = run(&keys.op(b"e").stop());
        let last = findings.last().expect("a finding");
        assert!(last.message.contains("MiB of memory"), "{}", last.message);
    }

    #[test]
    fn far_memo_indices_do_not_size_the_memo() {
        // LONG_BINPUT 0xfffffff0: a memo sized by its largest index would take 64 GB.
        let data = P::new()
            .op(b"Nr\xf0\xff\xff\xffj\xf0\xff\xff\xff\x86")
            .op(b"K\x07q\x05h\x05\x86.")
            .0;
        let (parsed, findings) = run(&data);
        assert!(findings.is_empty(), "{findings:?}");
        let parsed = parsed.expect("parses");
        assert!(
            matches!(parsed.arena.get(1), Obj::Tuple(t) if t == &[Value::Int(7), Value::Int(7)])
        );
    }

    #[test]
    fn findings_per_pickle_are_capped() {
        let mut p = P::new().op(b"]");
        for _ in 0..2000 {
            p = p.op(b"}Na0");
        }
        let (parsed, findings) = run(&p.stop());
        assert!(parsed.is_none());
        assert_eq!(findings.len(), 1001);
        assert!(findings[1000].message.contains("more than 1000 findings"));
    }

    #[test]
    fn long1_is_little_endian_twos_complement() {
        for (bytes, expected) in [
            (&b"\x8a\x00"[..], 0i128),
            (b"\x8a\x01\xff", -1),
            (b"\x8a\x02\x00\x80", -32768),
            (
                b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
                0x1950_a86a_20f9_469c_fc6c,
            ),
        ] {
            let mut data = vec![0x80, 2];
            data.extend_from_slice(bytes);
            data.push(b'.');
            let (parsed, _) = run(&data);
            let parsed = parsed.expect("parses");
            assert_eq!(parsed.arena.int(parsed.root), Some(expected));
        }
    }

    #[test]
    fn bad_views_and_unsupported_dtypes_are_findings() {
        let p = P::new().op(b"}(").str("x");
        let data = tensor(p, "0", 6, 4, &[3], &[1]).op(b"u").stop();
        let (parsed, findings) = run(&data);
        assert!(parsed.is_some());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Corrupt);
        assert!(
            findings[0].message.contains("element 6"),
            "{}",
            findings[0].message
        );

        let data = P::new()
            .op(b"((")
            .str("storage")
            .global("torch", "ComplexDoubleStorage")
            .str("0")
            .str("cpu")
            .int(2)
            .op(b"tQ.")
            .0;
        let (_, findings) = run(&data);
        assert_eq!(findings[0].kind, FindingKind::Dtype);
        assert_eq!(findings[0].offset, Some(16));
    }
}
