//! PyTorch checkpoint -> safetensors, then reload and compare every tensor byte for byte.
//!
//! Steps, in order:
//! 1. open and scan the checkpoint ([`Checkpoint::open`]); any dangerous or unsupported finding
//!    refuses the file ([`ConvertOutcome::Refused`]), a corrupt one is an error; nothing is
//!    written in either case;
//! 2. select the weights (`select.rs`) and deduplicate aliases: tensors that share a storage
//!    *and* have the same offset, shape, stride and dtype are one tensor (tied weights). As in
//!    HF's `convert.py`, the first name in sorted order is kept and the metadata records
//!    `removed -> kept`. Other views of a shared storage (a transpose, a slice) are written as
//!    tensors of their own, gathered into row-major order;
//! 3. write each output to a temporary file in the destination folder, streaming one tensor at
//!    a time from the input (optionally cast with `--dtype`, refusing values the target cannot
//!    hold), counting NaN/Inf on the way;
//! 4. re-read each file with the `safetensors` crate and compare every tensor, byte for byte,
//!    with the source bytes read again (after the cast, with the cast result);
//! 5. only then rename the files into place (mode 0644).
//!
//! With `max_shard_size`, tensors (in name order) fill shards of at most that many bytes (a
//! larger tensor gets a shard of its own), written next to the configured output as
//! `model-0000N-of-0000M.safetensors` plus `model.safetensors.index.json` in the
//! transformers/diffusers layout: the configured file name is replaced by that scheme. When
//! everything fits in one shard, the single configured file is written instead, as transformers
//! does.
//!
//! Metadata: `format = pt`, `source_sha256` (of the input file), the checkpoint keys mapped by
//! name (by default `training_steps <- step` and `final_loss <- loss` when those keys exist),
//! and the removed aliases.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::checkpoint::{self, Checkpoint};
use super::pickle::{Arena, Obj, Parsed, Value};
use super::scan::ScanReport;
use super::select::{self, Selected};
use super::tensor::{self, element_size};
use crate::config::{DtypeChoice, WeightsChoice};
use crate::digest::hex;
use crate::error::Problem;
use crate::report::Reporter;

/// What to convert and how.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The checkpoint.
    pub input: PathBuf,
    /// The safetensors file (with sharding: its folder receives the shards and the index).
    pub output: PathBuf,
    /// Which weights.
    pub weights: WeightsChoice,
    /// Prefixes stripped when every name carries them.
    pub strip_prefixes: Vec<String>,
    /// Output element type for floating-point tensors.
    pub dtype: DtypeChoice,
    /// Shard size in bytes.
    pub max_shard_size: Option<u64>,
    /// Metadata name -> checkpoint key (dotted path to a scalar).
    pub metadata: BTreeMap<String, String>,
    /// Also report each tensor's sha256 (one more pass over the output bytes).
    pub tensor_sha256: bool,
    /// Most bytes the written tensors may take together; `None`: [`default_output_limit`] of
    /// the checkpoint's storage bytes.
    pub max_output_bytes: Option<u64>,
}

impl ConvertOptions {
    /// Defaults: `auto` weights, the default prefixes, dtypes kept, no sharding.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            weights: WeightsChoice::Auto,
            strip_prefixes: crate::config::DEFAULT_STRIP_PREFIXES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            dtype: DtypeChoice::Keep,
            max_shard_size: None,
            metadata: BTreeMap::new(),
            tensor_sha256: false,
            max_output_bytes: None,
        }
    }
}

/// Converted, or refused with the scan's findings.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum ConvertOutcome {
    /// Files written and verified.
    Converted(Box<ConversionReport>),
    /// The checkpoint contains something not allowed; nothing was written.
    Refused(ScanReport),
}

/// Weight statistics for the gates stage, published as `checkpoint.*` metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckpointMetrics {
    /// Training step (`step` key), if the checkpoint has one.
    pub step: Option<i64>,
    /// Final loss (`loss` key), if the checkpoint has one.
    pub loss: Option<f64>,
    /// NaN values in the written tensors.
    pub nan_count: u64,
    /// Infinite values in the written tensors.
    pub inf_count: u64,
    /// Elements in the written tensors (aliases counted once).
    pub param_count: u64,
    /// Bytes of the written files.
    pub bytes: u64,
}

impl CheckpointMetrics {
    /// The metrics under their gate names (`checkpoint.step`, ...); absent values are left out.
    pub fn named(&self) -> BTreeMap<String, f64> {
        use crate::names::metric;
        let mut out = BTreeMap::new();
        if let Some(step) = self.step {
            out.insert(metric::CHECKPOINT_STEP.to_owned(), step as f64);
        }
        if let Some(loss) = self.loss {
            out.insert(metric::CHECKPOINT_LOSS.to_owned(), loss);
        }
        out.insert(
            metric::CHECKPOINT_NAN_COUNT.to_owned(),
            self.nan_count as f64,
        );
        out.insert(
            metric::CHECKPOINT_INF_COUNT.to_owned(),
            self.inf_count as f64,
        );
        out.insert(
            metric::CHECKPOINT_PARAM_COUNT.to_owned(),
            self.param_count as f64,
        );
        out.insert(metric::CHECKPOINT_BYTES.to_owned(), self.bytes as f64);
        out
    }
}

/// A written file.
#[derive(Debug, Clone, Serialize)]
pub struct OutputFile {
    /// Where it is.
    pub path: PathBuf,
    /// Size.
    pub bytes: u64,
    /// sha256 of its contents.
    pub sha256: String,
}

/// A written tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorEntry {
    /// Name in the output.
    pub name: String,
    /// Dotted path in the checkpoint.
    pub source: String,
    /// safetensors dtype written.
    pub dtype: String,
    /// dtype in the checkpoint, when cast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_dtype: Option<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// The file it is in.
    pub file: String,
    /// NaN values.
    pub nan_count: u64,
    /// Infinite values.
    pub inf_count: u64,
    /// sha256 of its bytes, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a conversion did.
#[derive(Debug, Clone, Serialize)]
pub struct ConversionReport {
    /// The checkpoint.
    pub input: PathBuf,
    /// sha256 of the checkpoint file.
    pub source_sha256: String,
    /// Dotted path of the converted subtree (empty: the top level).
    pub selected: String,
    /// Prefix stripped from every name (all stripped prefixes together, e.g. `module._orig_mod.`).
    pub stripped_prefix: Option<String>,
    /// The prefixes stripped, in the order they were removed.
    pub stripped_prefixes: Vec<String>,
    /// The model entry that completed a parameters-only EMA entry (its buffers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_from: Option<String>,
    /// Names taken from `completed_from`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub completed: Vec<String>,
    /// Files written (shards, then the index when sharding).
    pub outputs: Vec<OutputFile>,
    /// Tensors written, in name order.
    pub tensors: Vec<TensorEntry>,
    /// Aliases dropped: removed name -> kept name.
    pub aliases: BTreeMap<String, String>,
    /// The safetensors `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// Statistics for the gates.
    pub metrics: CheckpointMetrics,
    /// The checkpoint's top-level `config` dict (architecture hyper-parameters), scalars only;
    /// empty when there is none. It feeds `config.json` and the model card.
    pub checkpoint_config: BTreeMap<String, serde_json::Value>,
}

/// What makes two tensors the same: storage key, byte offset, shape, stride, dtype.
type Identity = (String, u64, Vec<u64>, Vec<u64>, Dtype);

/// One tensor to write.
struct Planned<'a> {
    selected: &'a Selected,
    tensor: &'a super::pickle::Tensor,
    target: Dtype,
}

/// Converts a checkpoint. Refusals are values; errors are bad input or I/O.
pub fn convert(opts: &ConvertOptions, reporter: &Reporter) -> anyhow::Result<ConvertOutcome> {
    let input = &opts.input;
    check_output_path(&opts.output)?;
    reporter.status("Scanning", input.display().to_string());
    let checkpoint = Checkpoint::open(input)?;
    if !checkpoint.is_clean() {
        let report = ScanReport::of(&checkpoint);
        if report.is_refused() {
            return Ok(ConvertOutcome::Refused(report));
        }
        return Err(corrupt_error(&report));
    }
    std::thread::scope(|scope| {
        // The source hash reads the whole input; it runs beside the conversion.
        let hasher = scope.spawn(|| hash_file(checkpoint.file()));
        let result = convert_clean(opts, &checkpoint, reporter, || {
            hasher
                .join()
                .map_err(|_| anyhow::anyhow!("the hashing thread panicked"))?
                .with_context(|| format!("failed to read `{}`", input.display()))
        });
        result.map(|report| ConvertOutcome::Converted(Box::new(report)))
    })
    .with_context(|| format!("failed to convert `{}`", input.display()))
}

/// Refuses, before any work, an output that is a folder or a symlink, or whose folder is a
/// symlink or not a folder.
fn check_output_path(output: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(output).is_ok_and(|m| m.is_dir()) {
        return Err(Problem::new(format!(
            "the output `{}` is a folder; `-o` names the safetensors file to write",
            output.display()
        ))
        .hint(format!(
            "write into it with `-o {}`",
            output.join("model.safetensors").display()
        ))
        .into());
    }
    let dir = crate::output::parent_of(output);
    crate::output::refuse_symlink(&dir, "the output folder")?;
    crate::output::refuse_symlink(output, "the output")?;
    if std::fs::metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Problem::new(format!(
            "the output folder `{}` exists and is not a folder",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

/// The default cap on the bytes written: four times the checkpoint's storage bytes (views may
/// overlap, e.g. a weight and its transpose, and `--dtype f32` doubles 16-bit tensors) plus
/// 1 MiB. A view repeating storage elements (stride 0, as `expand` makes) can claim any number
/// of elements; this keeps the output tied to the bytes that are really there.
pub fn default_output_limit(storage_bytes: u64) -> u64 {
    storage_bytes.saturating_mul(4).saturating_add(1 << 20)
}

/// Refuses a selection whose tensors would take more than the limit, before anything is
/// allocated or written.
fn check_output_size(
    checkpoint: &Checkpoint,
    planned: &[Planned<'_>],
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let storage_bytes = checkpoint.storage_bytes();
    let (limit, why) = match limit {
        Some(limit) => (limit, "`--max-output-bytes`".to_owned()),
        None => (
            default_output_limit(storage_bytes),
            format!("4 x the checkpoint's {storage_bytes} bytes of tensor data + 1 MiB"),
        ),
    };
    let mut total = 0u64;
    let mut largest: Option<(&Planned<'_>, u64)> = None;
    for p in planned {
        let bytes = p.tensor.view.numel().saturating_mul(element_size(p.target));
        total = total.saturating_add(bytes);
        if largest.is_none_or(|(_, b)| bytes > b) {
            largest = Some((p, bytes));
        }
    }
    if total <= limit {
        return Ok(());
    }
    let detail = largest
        .map(|(p, bytes)| {
            let (_, extent) = p.tensor.view.byte_extent();
            format!(
                "; the largest is `{}`: {bytes} bytes (shape {:?}, stride {:?}) read from {extent} \
                 bytes of its storage",
                p.selected.name, p.tensor.view.shape, p.tensor.view.stride
            )
        })
        .unwrap_or_default();
    Err(Problem::new(format!(
        "the tensors would take {total} bytes, more than the limit of {limit} bytes ({why}){detail}"
    ))
    .hint(
        "a view that repeats storage elements (stride 0) claims more data than the file holds; \
         if the size is intended, raise the limit with `--max-output-bytes`",
    )
    .into())
}

fn corrupt_error(report: &ScanReport) -> anyhow::Error {
    let first = &report.findings[0];
    let more = match report.findings.len() {
        1 => String::new(),
        n => format!(" (and {} more problems)", n - 1),
    };
    Problem::new(format!(
        "`{}` is not a valid checkpoint: {first}{more}",
        report.file
    ))
    .hint("the file is damaged or was not written by torch.save; nothing was written")
    .into()
}

fn convert_clean(
    opts: &ConvertOptions,
    checkpoint: &Checkpoint,
    reporter: &Reporter,
    source_sha256: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<ConversionReport> {
    let object = checkpoint
        .object
        .as_ref()
        .context("the checkpoint has no object pickle")?;
    let arena = &object.arena;
    let selection = select::select(arena, object.root, &opts.weights, &opts.strip_prefixes)?;
    reporter.status(
        "Selected",
        format!(
            "`{}`: {} tensors{}",
            if selection.subtree.is_empty() {
                "<top level>"
            } else {
                &selection.subtree
            },
            selection.tensors.len(),
            selection
                .stripped_prefix()
                .map(|p| format!(", prefix `{p}` stripped"))
                .unwrap_or_default()
        ),
    );
    if let Some(completion) = &selection.completed {
        reporter.status(
            "Completed",
            format!(
                "`{}` holds parameters only; took {} more tensor(s) from `{}`: {}",
                selection.subtree,
                completion.names.len(),
                completion.from,
                completion
                    .names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    // Aliases: same storage, offset, shape, stride and dtype -> one tensor, first name kept.
    let mut sorted: Vec<&Selected> = selection.tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut identity: BTreeMap<Identity, String> = BTreeMap::new();
    let mut aliases = BTreeMap::new();
    let mut planned: Vec<Planned<'_>> = Vec::new();
    for selected in sorted {
        let Obj::Tensor(t) = arena.get(selected.tensor) else {
            unreachable!("selection only returns tensors")
        };
        let Obj::Storage(storage) = arena.get(t.storage) else {
            unreachable!("tensors are built from storages")
        };
        let key = (
            storage.key.clone(),
            storage.view.map_or(0, |(o, _)| o) * element_size(t.view.dtype)
                + t.view.offset * element_size(t.view.dtype),
            t.view.shape.clone(),
            t.view.stride.clone(),
            t.view.dtype,
        );
        if let Some(kept) = identity.get(&key) {
            aliases.insert(selected.name.clone(), kept.clone());
            continue;
        }
        identity.insert(key, selected.name.clone());
        let target = match opts.dtype {
            DtypeChoice::Keep => t.view.dtype,
            _ if !tensor::is_castable(t.view.dtype) => t.view.dtype,
            DtypeChoice::F32 => Dtype::F32,
            DtypeChoice::F16 => Dtype::F16,
            DtypeChoice::Bf16 => Dtype::BF16,
        };
        planned.push(Planned {
            selected,
            tensor: t,
            target,
        });
    }
    if !aliases.is_empty() {
        reporter.status(
            "Deduplicated",
            format!("{} tied tensor(s): {}", aliases.len(), {
                let list: Vec<String> = aliases
                    .iter()
                    .map(|(r, k)| format!("`{r}` -> `{k}`"))
                    .collect();
                list.join(", ")
            }),
        );
    }

    check_output_size(checkpoint, &planned, opts.max_output_bytes)?;

    let mut metadata = BTreeMap::new();
    let (step, loss) = metadata_from_keys(object, opts, &mut metadata)?;
    for (removed, kept) in &aliases {
        metadata.insert(removed.clone(), kept.clone());
    }
    metadata.insert("format".to_owned(), "pt".to_owned());

    // Shards: name order, greedy, a tensor larger than the limit alone.
    let mut shards: Vec<Vec<Planned<'_>>> = vec![Vec::new()];
    let mut shard_bytes = 0u64;
    for p in planned {
        let bytes = p.tensor.view.numel() * element_size(p.target);
        if let Some(limit) = opts.max_shard_size
            && shard_bytes > 0
            && shard_bytes + bytes > limit
        {
            shards.push(Vec::new());
            shard_bytes = 0;
        }
        shard_bytes += bytes;
        shards.last_mut().expect("never empty").push(p);
    }
    let sharded = shards.len() > 1;
    let dir = match opts.output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::output::prepare_dir(&dir, "the output folder")?;
    if let (Ok(a), Ok(b)) = (opts.input.canonicalize(), opts.output.canonicalize()) {
        anyhow::ensure!(
            a != b,
            "the output `{}` is the input",
            opts.output.display()
        );
    }
    let count = shards.len();
    let names: Vec<PathBuf> = (1..=count)
        .map(|i| {
            if sharded {
                dir.join(format!("model-{i:05}-of-{count:05}.safetensors"))
            } else {
                opts.output.clone()
            }
        })
        .collect();

    // The source digest goes into every header, but hashing the whole input takes longer than
    // writing the output. So the shards are written with a placeholder of the same length while
    // the digest is computed on the other thread, and the header is patched in place after.
    let mut header_metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    header_metadata.insert("source_sha256".to_owned(), "0".repeat(64));
    let mut buffers = Buffers::default();
    let mut written_shards = Vec::with_capacity(shards.len());
    for (shard, path) in shards.iter().zip(&names) {
        reporter.status("Writing", path.display().to_string());
        let written = write_shard(
            checkpoint,
            shard,
            &header_metadata,
            &dir,
            opts,
            &mut buffers,
        )
        .with_context(|| format!("failed to write `{}`", path.display()))?;
        verify_shard(
            checkpoint,
            shard,
            &header_metadata,
            written.0.path(),
            &mut buffers,
        )
        .with_context(|| format!("verification of `{}` failed", path.display()))?;
        written_shards.push(written);
    }
    let source_sha256 = source_sha256()?;
    anyhow::ensure!(
        source_sha256.len() == 64,
        "a sha256 digest is 64 hex digits; this is a bug"
    );
    metadata.insert("source_sha256".to_owned(), source_sha256.clone());
    header_metadata.insert("source_sha256".to_owned(), source_sha256.clone());

    let mut temps = Vec::new();
    let mut outputs = Vec::new();
    let mut entries = Vec::new();
    let mut metrics = CheckpointMetrics {
        step,
        loss,
        ..CheckpointMetrics::default()
    };
    for ((shard, path), (temp, written)) in shards.iter().zip(&names).zip(written_shards) {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let output = seal_shard(&temp, shard, &header_metadata)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        for (p, stats) in shard.iter().zip(written) {
            metrics.nan_count += stats.nan;
            metrics.inf_count += stats.inf;
            metrics.param_count += p.tensor.view.numel();
            entries.push(TensorEntry {
                name: p.selected.name.clone(),
                source: p.selected.source.clone(),
                dtype: format!("{:?}", p.target),
                source_dtype: (p.target != p.tensor.view.dtype)
                    .then(|| format!("{:?}", p.tensor.view.dtype)),
                shape: p.tensor.view.shape.clone(),
                file: file_name.clone(),
                nan_count: stats.nan,
                inf_count: stats.inf,
                sha256: stats.sha256,
            });
        }
        metrics.bytes += output.0;
        outputs.push(OutputFile {
            path: path.clone(),
            bytes: output.0,
            sha256: output.1,
        });
        temps.push(temp);
    }
    reporter.status(
        "Verified",
        format!("{} tensors, byte for byte, after reloading", entries.len()),
    );
    let mut index = None;
    if sharded {
        let total: u64 = shards
            .iter()
            .flatten()
            .map(|p| p.tensor.view.numel() * element_size(p.target))
            .sum();
        let weight_map: BTreeMap<&str, &str> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.file.as_str()))
            .collect();
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "metadata": { "total_size": total },
            "weight_map": weight_map,
        }))?;
        let mut temp = temp_in(&dir)?;
        temp.write_all(json.as_bytes())?;
        temp.write_all(b"\n")?;
        let path = dir.join("model.safetensors.index.json");
        outputs.push(OutputFile {
            path: path.clone(),
            bytes: json.len() as u64 + 1,
            sha256: hex(&Sha256::digest(format!("{json}\n").as_bytes())),
        });
        index = Some((temp, path));
    }
    // Everything verified: move into place. A failure here removes what was already renamed.
    let mut placed: Vec<PathBuf> = Vec::new();
    let all = temps.into_iter().zip(names.iter().cloned()).chain(index);
    for (temp, path) in all {
        let result = temp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                temp.persist(&path)
                    .map_err(|e| anyhow::Error::from(e.error))
            });
        if let Err(err) = result {
            for done in &placed {
                let _ = std::fs::remove_file(done);
            }
            return Err(err.context(format!("failed to move the output to `{}`", path.display())));
        }
        placed.push(path);
    }
    reporter.status(
        "Converted",
        format!(
            "{} tensors, {} bytes in {} file(s)",
            entries.len(),
            metrics.bytes,
            outputs.len()
        ),
    );
    Ok(ConversionReport {
        input: opts.input.clone(),
        source_sha256,
        selected: selection.subtree.clone(),
        stripped_prefix: selection.stripped_prefix(),
        stripped_prefixes: selection.stripped.clone(),
        completed_from: selection.completed.as_ref().map(|c| c.from.clone()),
        completed: selection
            .completed
            .as_ref()
            .map(|c| c.names.clone())
            .unwrap_or_default(),
        outputs,
        tensors: entries,
        aliases,
        metadata,
        metrics,
        checkpoint_config: config_dict(&object.arena, object.root),
    })
}

/// The scalar entries of the top-level `config` dict, as training scripts save them.
fn config_dict(arena: &Arena, root: Value) -> BTreeMap<String, serde_json::Value> {
    let Some(dict) = select::resolve(arena, root, "config").and_then(|v| arena.dict(v)) else {
        return BTreeMap::new();
    };
    dict.items
        .iter()
        .filter_map(|(key, value)| {
            let key = arena.str(*key)?.to_owned();
            let value = match *value {
                Value::Int(i) => serde_json::Value::from(i),
                Value::Float(f) => {
                    serde_json::Number::from_f64(f).map(serde_json::Value::Number)?
                }
                Value::Bool(b) => serde_json::Value::Bool(b),
                Value::Obj(_) => serde_json::Value::String(arena.str(*value)?.to_owned()),
                Value::None => return None,
            };
            Some((key, value))
        })
        .collect()
}

/// Reused buffers, so memory stays near the largest tensor.
#[derive(Default)]
struct Buffers {
    data: Vec<u8>,
    scratch: Vec<u8>,
    cast: Vec<u8>,
}

impl Buffers {
    /// The bytes of a planned tensor as written: read, gathered, byteswapped, cast.
    fn load(&mut self, checkpoint: &Checkpoint, p: &Planned<'_>) -> anyhow::Result<&[u8]> {
        checkpoint.read_tensor(p.tensor, &mut self.data, &mut self.scratch)?;
        if p.target == p.tensor.view.dtype {
            return Ok(&self.data);
        }
        tensor::cast(p.tensor.view.dtype, p.target, &self.data, &mut self.cast).map_err(|why| {
            Problem::new(format!(
                "cannot cast `{}` to {:?}: {why}",
                p.selected.name, p.target
            ))
            .hint("keep the dtype (`--dtype keep`) or choose a wider one")
        })?;
        Ok(&self.cast)
    }
}

#[derive(Default)]
struct Written {
    nan: u64,
    inf: u64,
    sha256: Option<String>,
}

fn temp_in(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    crate::output::temp_file_in(dir)
}

/// The header the `safetensors` crate itself would write: tensors sorted by dtype alignment
/// (largest first) then name, offsets contiguous, JSON padded with spaces to 8 bytes.
fn header(
    shard: &[Planned<'_>],
    metadata: &HashMap<String, String>,
) -> anyhow::Result<(Vec<usize>, Vec<u8>)> {
    let mut order: Vec<usize> = (0..shard.len()).collect();
    order.sort_by(|&a, &b| {
        shard[b]
            .target
            .cmp(&shard[a].target)
            .then_with(|| shard[a].selected.name.cmp(&shard[b].selected.name))
    });
    let mut offset = 0usize;
    let mut infos = Vec::with_capacity(order.len());
    for &i in &order {
        let p = &shard[i];
        let len = usize::try_from(p.tensor.view.numel() * element_size(p.target))?;
        let shape = p
            .tensor
            .view
            .shape
            .iter()
            .map(|&s| usize::try_from(s))
            .collect::<Result<Vec<_>, _>>()?;
        infos.push((
            p.selected.name.clone(),
            TensorInfo {
                dtype: p.target,
                shape,
                data_offsets: (offset, offset + len),
            },
        ));
        offset += len;
    }
    // The crate serializes `__metadata__` in its `HashMap`'s order, which changes from run to
    // run; the same inputs must give the same bytes, so the metadata is written sorted by key and
    // the tensors (validated by the crate) follow in their header order.
    let tensors = Metadata::new(None, infos)
        .map_err(|e| anyhow::anyhow!("invalid safetensors header: {e:?}"))?;
    let tensors = serde_json::to_vec(&tensors)?;
    let sorted: BTreeMap<&String, &String> = metadata.iter().collect();
    let mut json = b"{\"__metadata__\":".to_vec();
    json.extend_from_slice(&serde_json::to_vec(&sorted)?);
    match tensors.strip_prefix(b"{") {
        Some(rest) if rest != b"}" => {
            json.push(b',');
            json.extend_from_slice(rest);
        }
        _ => json.push(b'}'),
    }
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    Ok((order, out))
}

/// Writes one shard to a temporary file; returns it and per-tensor stats in shard order.
fn write_shard(
    checkpoint: &Checkpoint,
    shard: &[Planned<'_>],
    metadata: &HashMap<String, String>,
    dir: &Path,
    opts: &ConvertOptions,
    buffers: &mut Buffers,
) -> anyhow::Result<(tempfile::NamedTempFile, Vec<Written>)> {
    let (order, head) = header(shard, metadata)?;
    let mut temp = temp_in(dir)?;
    temp.write_all(&head)?;
    let mut stats: Vec<Written> = (0..shard.len()).map(|_| Written::default()).collect();
    for i in order {
        let p = &shard[i];
        let bytes = buffers.load(checkpoint, p)?;
        let (nan, inf) = tensor::count_non_finite(p.target, bytes);
        temp.write_all(bytes)?;
        stats[i] = Written {
            nan,
            inf,
            sha256: opts.tensor_sha256.then(|| hex(&Sha256::digest(bytes))),
        };
    }
    // Durable now, while the input is still being hashed: sealing then rewrites only the header.
    temp.as_file().sync_data()?;
    Ok((temp, stats))
}

/// Rewrites a verified shard's header with the final metadata, reads the metadata back, makes
/// the file durable and returns its `(bytes, sha256)`. Only values of the same length may change
/// (the source digest replacing its placeholder), so no tensor moves.
fn seal_shard(
    temp: &tempfile::NamedTempFile,
    shard: &[Planned<'_>],
    metadata: &HashMap<String, String>,
) -> anyhow::Result<(u64, String)> {
    let (_, head) = header(shard, metadata)?;
    let mut written = vec![0u8; head.len()];
    temp.as_file().read_exact_at(&mut written, 0)?;
    anyhow::ensure!(
        written[..8] == head[..8],
        "the final header differs in length from the one written; this is a bug"
    );
    temp.as_file().write_all_at(&head, 0)?;
    // Durable before the rename that publishes it.
    temp.as_file().sync_data()?;
    let map = checkpoint::map_file(temp.as_file())?;
    let (_, meta) = SafeTensors::read_metadata(&map)
        .map_err(|e| anyhow::anyhow!("the written file does not parse: {e:?}"))?;
    anyhow::ensure!(
        meta.metadata().as_ref() == Some(metadata),
        "the metadata read back differs from what was written"
    );
    Ok((map.len() as u64, hex(&Sha256::digest(&map[..]))))
}

/// Re-reads a written shard with the `safetensors` crate and compares every tensor with the
/// source bytes, read again from the checkpoint.
fn verify_shard(
    checkpoint: &Checkpoint,
    shard: &[Planned<'_>],
    metadata: &HashMap<String, String>,
    path: &Path,
    buffers: &mut Buffers,
) -> anyhow::Result<()> {
    let file = File::open(path)?;
    let map = checkpoint::map_file(&file)?;
    let (_, meta) = SafeTensors::read_metadata(&map)
        .map_err(|e| anyhow::anyhow!("the written file does not parse: {e:?}"))?;
    anyhow::ensure!(
        meta.metadata().as_ref() == Some(metadata),
        "the metadata read back differs from what was written"
    );
    let tensors = SafeTensors::deserialize(&map)
        .map_err(|e| anyhow::anyhow!("the written file does not parse: {e:?}"))?;
    anyhow::ensure!(
        tensors.len() == shard.len(),
        "{} tensors read back, {} written",
        tensors.len(),
        shard.len()
    );
    for p in shard {
        let name = &p.selected.name;
        let view = tensors
            .tensor(name)
            .map_err(|e| anyhow::anyhow!("tensor `{name}` is missing: {e:?}"))?;
        let shape: Vec<u64> = view.shape().iter().map(|&s| s as u64).collect();
        anyhow::ensure!(
            view.dtype() == p.target && shape == p.tensor.view.shape,
            "tensor `{name}` reads back as {:?} {:?}",
            view.dtype(),
            view.shape()
        );
        let source = buffers.load(checkpoint, p)?;
        anyhow::ensure!(
            view.data() == source,
            "tensor `{name}` differs from the checkpoint after writing"
        );
    }
    Ok(())
}

/// Fills the mapped metadata; returns `(step, loss)` for the metrics.
fn metadata_from_keys(
    object: &Parsed,
    opts: &ConvertOptions,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<(Option<i64>, Option<f64>)> {
    let arena = &object.arena;
    let mut mapping: Vec<(String, String, bool)> = opts
        .metadata
        .iter()
        .map(|(name, key)| (name.clone(), key.clone(), true))
        .collect();
    for (name, key) in [("training_steps", "step"), ("final_loss", "loss")] {
        if !opts.metadata.contains_key(name) {
            mapping.push((name.to_owned(), key.to_owned(), false));
        }
    }
    let mut step = None;
    let mut loss = None;
    for (name, key, explicit) in mapping {
        let value = select::resolve(arena, object.root, &key);
        let text = match value.map(|v| scalar(arena, v)) {
            Some(Some(text)) => text,
            _ if !explicit => continue,
            None => {
                return Err(Problem::new(format!(
                    "metadata `{name}` comes from checkpoint key `{key}`, which does not exist"
                ))
                .hint("fix the key in `metadata` of release.toml, or remove the entry")
                .into());
            }
            Some(None) => {
                return Err(Problem::new(format!(
                    "metadata `{name}` comes from checkpoint key `{key}`, which is not a number, \
                     string or bool"
                ))
                .into());
            }
        };
        if name == "training_steps" {
            step = match value {
                Some(Value::Int(i)) => Some(i),
                _ => None,
            };
        }
        if name == "final_loss" {
            loss = match value {
                Some(Value::Float(f)) => Some(f),
                Some(Value::Int(i)) => Some(i as f64),
                _ => None,
            };
        }
        out.insert(name, text);
    }
    Ok((step, loss))
}

fn scalar(arena: &Arena, value: Value) -> Option<String> {
    match value {
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::None => None,
        Value::Obj(_) => arena
            .str(value)
            .map(str::to_owned)
            .or_else(|| arena.int(value).map(|i| i.to_string())),
    }
}

/// Lowercase hex sha256 of a whole file.
///
/// The file is hashed straight from the page cache through 1 MiB windows mapped one at a time
/// (no copy into a buffer first); each window is unmapped before the next, so resident memory
/// stays at one window, as with the 1 MiB read buffer this replaces. Files that
/// cannot be mapped are read in 1 MiB blocks instead. Nothing moves the file's cursor.
pub fn hash_file(file: &File) -> std::io::Result<String> {
    const WINDOW: u64 = 1 << 20;
    let len = file.metadata()?.len();
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    while offset < len {
        let window = usize::try_from(WINDOW.min(len - offset)).unwrap_or(usize::MAX);
        let Ok(map) = checkpoint::map_file_range(file, Some((offset, window))) else {
            return hash_by_reading(file, hasher, offset);
        };
        hasher.update(&map[..]);
        offset += map.len() as u64;
    }
    // A file that grew while hashed: the rest is read.
    hash_by_reading(file, hasher, offset)
}

/// Continues `hasher` with the file's bytes from `offset`, read in 1 MiB blocks with positioned
/// reads.
fn hash_by_reading(file: &File, mut hasher: Sha256, mut offset: u64) -> std::io::Result<String> {
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read_at(&mut buffer, offset)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        offset += n as u64;
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn metrics_have_their_gate_names() {
        let metrics = CheckpointMetrics {
            step: Some(1234),
            loss: Some(0.5),
            nan_count: 1,
            inf_count: 2,
            param_count: 300,
            bytes: 1200,
        };
        let named = metrics.named();
        assert_eq!(named["checkpoint.step"], 1234.0);
        assert_eq!(named["checkpoint.loss"], 0.5);
        assert_eq!(named["checkpoint.nan_count"], 1.0);
        assert_eq!(named["checkpoint.inf_count"], 2.0);
        assert_eq!(named["checkpoint.param_count"], 300.0);
        assert_eq!(named["checkpoint.bytes"], 1200.0);
        assert!(
            !CheckpointMetrics::default()
                .named()
                .contains_key("checkpoint.step")
        );
    }

    #[test]
    fn header_metadata_is_sorted_whatever_the_map_order() {
        let keys: Vec<String> = (0..16).map(|i| format!("key{i:02}")).collect();
        let headers: Vec<Vec<u8>> = (0..8)
            .map(|_| {
                // Each map has its own random state, so iteration orders differ.
                let map: HashMap<String, String> =
                    keys.iter().map(|k| (k.clone(), k.to_uppercase())).collect();
                header(&[], &map).expect("an empty shard has a header").1
            })
            .collect();
        assert!(headers.windows(2).all(|w| w[0] == w[1]));
        let json = std::str::from_utf8(&headers[0][8..]).expect("headers are JSON");
        assert!(json.starts_with(r#"{"__metadata__":{"key00":"KEY00","key01":"KEY01""#));
        let parsed: serde_json::Value =
            serde_json::from_str(json.trim_end()).expect("the header parses");
        assert_eq!(
            parsed["__metadata__"].as_object().map(serde_json::Map::len),
            Some(16)
        );
    }
}
