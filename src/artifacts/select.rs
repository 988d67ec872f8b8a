//! Which weights of a training checkpoint to release, and under which names.
//!
//! `--weights` (or `weights` in release.toml) takes:
//!
//! - `auto` (the default), in this order:
//!   1. the EMA entry of the top-level dict: the first of [`EMA_KEYS`] that is a dict holding
//!      tensors (an entry that is `None` or holds no tensors falls through; `shadow_params`
//!      counts only in its dict form, since the list form has no names), else the one other
//!      top-level dict holding tensors whose name says EMA (`ema` or `shadow` as a word of it,
//!      e.g. `ema_weights`); two such names are ambiguous and refused with a listing;
//!   2. otherwise the model entry: the one top-level entry holding tensors among
//!      [`MODEL_KEYS`] and the other names that say model (`model` as a word, e.g.
//!      `generator_model`, never an optimizer's); if more than one does, the choice is
//!      ambiguous and refused with a listing;
//!   3. otherwise the top level itself, if it holds tensors directly (a flat state dict).
//! - `ema`: step 1 only; an error if there is no EMA entry.
//! - `model`: steps 2 and 3 only.
//! - a dotted path such as `trainer.ema.model`: that subtree. A key that itself contains dots is
//!   matched whole (the longest key that is a prefix of the remaining path wins).
//!
//! An EMA entry chosen in step 1 often holds only the parameters (training scripts keep EMA
//! copies of `named_parameters()`, not of buffers), so it would not load with `strict=True`.
//! When every EMA name is also a name of the model entry, the names the EMA lacks are taken
//! from the model entry, and [`Selection::completed`] says which and from where.
//!
//! The chosen subtree is flattened into dotted names (nested dicts joined with `.`, list items
//! by index); non-tensor leaves are dropped. Then prefixes are stripped, repeatedly: while one
//! of the configured prefixes (default `module.`, `_orig_mod.`) is carried by *every* name, it
//! is removed, so DDP around a compiled model (`module._orig_mod.`) loses both. Only the chosen
//! subtree is visited, so tensors elsewhere (optimizer state) are never read.
//!
//! Every walk here is iterative and bounded: nesting depth, one name's length and all names'
//! length together, and the number of steps (at most twice the edges of the object graph, so a
//! memo-shared "billion laughs" structure is refused instead of walked as a tree).

use std::collections::HashSet;

use anyhow::Context as _;

use super::pickle::{Arena, Obj, ObjId, Value};
use crate::config::WeightsChoice;
use crate::error::Problem;

/// EMA entries, in order of preference.
pub const EMA_KEYS: &[&str] = &[
    "ema",
    "model_ema",
    "state_dict_ema",
    "ema_state_dict",
    "ema_shadow_params",
    "ema_params",
    "shadow_params",
];

/// Model entries; more than one holding tensors is ambiguous.
pub const MODEL_KEYS: &[&str] = &["model", "state_dict", "module", "model_state_dict"];

/// Deepest nesting flattened inside the chosen subtree.
const MAX_DEPTH: usize = 64;

/// Longest tensor name (safetensors names in the wild are under 300 bytes).
const MAX_NAME_BYTES: usize = 4096;

/// All tensor names of one selection together.
const MAX_TOTAL_NAME_BYTES: usize = 64 << 20;

/// A tensor chosen for release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Name in the output, after prefix stripping.
    pub name: String,
    /// Full dotted path in the checkpoint.
    pub source: String,
    /// The tensor object.
    pub tensor: ObjId,
}

/// Tensors taken from the model entry to complete a parameters-only EMA entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The model entry they come from (`model_state_dict`).
    pub from: String,
    /// Their names in the output.
    pub names: Vec<String>,
}

/// The outcome of selection.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Dotted path of the chosen subtree; empty for the top level.
    pub subtree: String,
    /// The prefixes removed from every name, in the order they were removed.
    pub stripped: Vec<String>,
    /// Names the chosen EMA entry lacked, taken from the model entry.
    pub completed: Option<Completion>,
    /// Tensors in checkpoint order (completed ones last).
    pub tensors: Vec<Selected>,
}

impl Selection {
    /// Everything stripped as one prefix (`module._orig_mod.`), if anything was.
    pub fn stripped_prefix(&self) -> Option<String> {
        (!self.stripped.is_empty()).then(|| self.stripped.concat())
    }
}

/// Picks the weights and names them.
pub fn select(
    arena: &Arena,
    root: Value,
    choice: &WeightsChoice,
    strip_prefixes: &[String],
) -> anyhow::Result<Selection> {
    let w = &Walker::new(arena);
    let (subtree, value, ema) = match choice {
        WeightsChoice::Auto => {
            if let Some((key, value)) = find_ema(w, root)? {
                (key, value, true)
            } else {
                let (key, value) = find_model(w, root)?.ok_or_else(|| nothing_found(w, root))?;
                (key, value, false)
            }
        }
        WeightsChoice::Ema => {
            let (key, value) = find_ema(w, root)?.ok_or_else(|| {
                Problem::new(format!(
                    "the checkpoint has no EMA weights (looked for {} and names with `ema`)",
                    list(EMA_KEYS)
                ))
                .hint("use `--weights model` or a dotted path")
            })?;
            (key, value, true)
        }
        WeightsChoice::Model => {
            let (key, value) = find_model(w, root)?.ok_or_else(|| nothing_found(w, root))?;
            (key, value, false)
        }
        WeightsChoice::Path(path) => {
            let value = resolve(arena, root, path).ok_or_else(|| {
                Problem::new(format!("the checkpoint has no entry `{path}`"))
                    .hint(candidates_hint(w, root))
            })?;
            (path.clone(), value, false)
        }
    };
    let mut tensors = flatten(w, value, &subtree)
        .with_context(|| format!("failed to read the weights under `{}`", display(&subtree)))?;
    if tensors.is_empty() {
        return Err(
            Problem::new(format!("`{}` holds no tensors", display(&subtree)))
                .hint(candidates_hint(w, root))
                .into(),
        );
    }
    let completed = if ema {
        complete_ema(w, root, &mut tensors)?
    } else {
        None
    };
    let stripped = strip(&mut tensors, strip_prefixes);
    let mut seen = HashSet::new();
    for t in &tensors {
        anyhow::ensure!(
            seen.insert(t.name.as_str()),
            "two tensors would both be named `{}` (one nested, one with a dotted key)",
            t.name
        );
    }
    let completed = completed.map(|(from, first)| Completion {
        from,
        names: tensors[first..].iter().map(|t| t.name.clone()).collect(),
    });
    Ok(Selection {
        subtree,
        stripped,
        completed,
        tensors,
    })
}

/// Removes configured prefixes while one is carried by every name; returns what was removed.
fn strip(tensors: &mut [Selected], prefixes: &[String]) -> Vec<String> {
    let mut stripped = Vec::new();
    while let Some(prefix) = prefixes.iter().filter(|p| !p.is_empty()).find(|p| {
        tensors
            .iter()
            .all(|t| t.name.len() > p.len() && t.name.starts_with(p.as_str()))
    }) {
        for t in tensors.iter_mut() {
            t.name.drain(..prefix.len());
        }
        stripped.push(prefix.clone());
    }
    stripped
}

/// Completes a parameters-only EMA selection with the model entry's other tensors (its
/// buffers), when every EMA name is one of the model's. Returns the model entry and the index
/// of the first added tensor.
fn complete_ema(
    w: &Walker<'_>,
    root: Value,
    tensors: &mut Vec<Selected>,
) -> anyhow::Result<Option<(String, usize)>> {
    // No model entry, or an ambiguous one: nothing to complete from.
    let Ok(Some((model_key, model))) = find_model(w, root) else {
        return Ok(None);
    };
    if model_key.is_empty() {
        return Ok(None);
    }
    let model_tensors = flatten(w, model, &model_key)?;
    let ema_names: HashSet<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let model_names: HashSet<&str> = model_tensors.iter().map(|t| t.name.as_str()).collect();
    if !ema_names.is_subset(&model_names) || ema_names.len() == model_names.len() {
        return Ok(None);
    }
    let missing: Vec<Selected> = model_tensors
        .iter()
        .filter(|t| !ema_names.contains(t.name.as_str()))
        .cloned()
        .collect();
    let first = tensors.len();
    tensors.extend(missing);
    Ok(Some((model_key, first)))
}

fn display(path: &str) -> &str {
    if path.is_empty() { "<top level>" } else { path }
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Tensors directly or indirectly under a value.
fn tensor_count(w: &Walker<'_>, value: Value, key: &str) -> anyhow::Result<usize> {
    Ok(flatten(w, value, key)
        .with_context(|| format!("failed to read the weights under `{}`", display(key)))?
        .len())
}

/// The words of a key (`model_ema.v2` -> `model`, `ema`, `v2`), lowercase.
fn words(key: &str) -> impl Iterator<Item = String> + '_ {
    key.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Whether a top-level name says EMA (`ema`, `shadow` as a word of it).
fn says_ema(key: &str) -> bool {
    words(key).any(|w| w == "ema" || w == "shadow")
}

/// Whether a top-level name says model (`model` as a word) and nothing else that is not weights.
fn says_model(key: &str) -> bool {
    !says_ema(key)
        && words(key).any(|w| w == "model")
        && !words(key).any(|w| {
            matches!(
                w.as_str(),
                "optimizer" | "optim" | "scheduler" | "scaler" | "opt"
            )
        })
}

/// The top-level dict's string keys and values, in order.
fn top_level(arena: &Arena, root: Value) -> Vec<(&str, Value)> {
    arena
        .dict(root)
        .map(|d| {
            d.items
                .iter()
                .filter_map(|&(k, v)| Some((arena.str(k)?, v)))
                .collect()
        })
        .unwrap_or_default()
}

fn find_ema(w: &Walker<'_>, root: Value) -> anyhow::Result<Option<(String, Value)>> {
    let arena = w.arena;
    for key in EMA_KEYS {
        if let Some(value) = arena.lookup(root, key)
            && arena.dict(value).is_some()
            && tensor_count(w, value, key)? > 0
        {
            return Ok(Some(((*key).to_owned(), value)));
        }
    }
    let mut found = Vec::new();
    for (key, value) in top_level(arena, root) {
        if !EMA_KEYS.contains(&key)
            && says_ema(key)
            && arena.dict(value).is_some()
            && tensor_count(w, value, key)? > 0
        {
            found.push((key, value));
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [(key, value)] => Ok(Some(((*key).to_owned(), *value))),
        many => Err(ambiguous(w, many, "EMA weights")),
    }
}

fn find_model(w: &Walker<'_>, root: Value) -> anyhow::Result<Option<(String, Value)>> {
    let arena = w.arena;
    let mut found: Vec<(&str, Value)> = Vec::new();
    for key in MODEL_KEYS {
        if let Some(value) = arena.lookup(root, key)
            && tensor_count(w, value, key)? > 0
        {
            found.push((key, value));
        }
    }
    for (key, value) in top_level(arena, root) {
        if !MODEL_KEYS.contains(&key) && says_model(key) && tensor_count(w, value, key)? > 0 {
            found.push((key, value));
        }
    }
    match found.as_slice() {
        [] => {}
        [(key, value)] => return Ok(Some(((*key).to_owned(), *value))),
        many => return Err(ambiguous(w, many, "weights")),
    }
    // A flat state dict: tensors directly at the top level.
    let flat = arena
        .dict(root)
        .is_some_and(|d| d.items.iter().any(|(_, v)| arena.tensor(*v).is_some()));
    Ok(flat.then(|| (String::new(), root)))
}

fn ambiguous(w: &Walker<'_>, many: &[(&str, Value)], what: &str) -> anyhow::Error {
    let listing = many
        .iter()
        .map(|(k, v)| {
            let n = tensor_count(w, *v, k).unwrap_or(0);
            format!("`{k}` ({n} tensors)")
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let choices = many
        .iter()
        .map(|(k, _)| format!("`--weights {k}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    Problem::new(format!(
        "which {what} to convert is ambiguous: {listing} both hold weights"
    ))
    .hint(format!("choose one with {choices}"))
    .into()
}

fn nothing_found(w: &Walker<'_>, root: Value) -> anyhow::Error {
    Problem::new(format!(
        "found no weights: no EMA entry ({}), no model entry ({}) and no tensors at the top level",
        list(EMA_KEYS),
        list(MODEL_KEYS)
    ))
    .hint(candidates_hint(w, root))
    .into()
}

/// "choose one with --weights PATH; dicts holding tensors: ..." for error hints. Looks four
/// levels deep, each dict once, and lists at most 20 entries.
fn candidates_hint(w: &Walker<'_>, root: Value) -> String {
    const MAX_LISTED: usize = 20;
    let arena = w.arena;
    let mut found = Vec::new();
    let mut seen: HashSet<ObjId> = HashSet::new();
    let mut stack = vec![(root, String::new(), 0usize)];
    while let Some((value, path, depth)) = stack.pop() {
        if found.len() >= MAX_LISTED {
            break;
        }
        let Value::Obj(id) = value else { continue };
        let Some(dict) = arena.dict(value) else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        if !path.is_empty() && dict.items.iter().any(|(_, v)| arena.tensor(*v).is_some()) {
            let count = tensor_count(w, value, &path)
                .map_or_else(|_| "too many".to_owned(), |n| n.to_string());
            found.push(format!("`{path}` ({count} tensors)"));
            continue;
        }
        if depth < 4 {
            for (k, v) in dict.items.iter().rev() {
                if let Some(k) = arena.str(*k)
                    && arena.dict(*v).is_some()
                    && path.len() + k.len() < MAX_NAME_BYTES
                {
                    let child = if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    };
                    stack.push((*v, child, depth + 1));
                }
            }
        }
    }
    if found.is_empty() {
        "pass a dotted path to the state dict with `--weights`".to_owned()
    } else {
        format!(
            "pass a dotted path with `--weights`; entries holding tensors: {}",
            found.join(", ")
        )
    }
}

/// Follows a dotted path through dict keys (longest matching key first) and list indices.
pub fn resolve(arena: &Arena, root: Value, path: &str) -> Option<Value> {
    let mut value = root;
    let mut rest = path;
    while !rest.is_empty() {
        let Value::Obj(id) = value else { return None };
        match arena.get(id) {
            Obj::Dict(dict) => {
                let (next, remaining) = dict
                    .items
                    .iter()
                    .filter_map(|(k, v)| {
                        let key = match arena.int(*k) {
                            Some(i) => i.to_string(),
                            None => arena.str(*k)?.to_owned(),
                        };
                        if rest == key {
                            Some((key.len(), *v, ""))
                        } else {
                            rest.strip_prefix(key.as_str())
                                .and_then(|r| r.strip_prefix('.'))
                                .map(|r| (key.len(), *v, r))
                        }
                    })
                    .max_by_key(|(len, _, _)| *len)
                    .map(|(_, v, r)| (v, r))?;
                value = next;
                rest = remaining;
            }
            Obj::List(items) | Obj::Tuple(items) => {
                let (head, remaining) = rest.split_once('.').unwrap_or((rest, ""));
                value = *items.get(head.parse::<usize>().ok()?)?;
                rest = remaining;
            }
            _ => return None,
        }
    }
    Some(value)
}

/// The arena and what is left of the steps one selection may take through it. All walks of a
/// selection (finding the EMA and model entries, counting, flattening, hints) share it: a tree
/// walk visits each edge of the object graph once and a selection walks a few subtrees a few
/// times, so eight times the graph's edges is plenty; memo-shared structure referenced over and
/// over (one dict under a million keys, 2^60 paths through 60 dicts) runs out of it at once.
struct Walker<'a> {
    arena: &'a Arena,
    left: std::cell::Cell<usize>,
    total: usize,
}

impl<'a> Walker<'a> {
    fn new(arena: &'a Arena) -> Self {
        let total = 8 * (arena.edges() + arena.len()) + 1024;
        Self {
            arena,
            left: std::cell::Cell::new(total),
            total,
        }
    }

    fn step(&self) -> anyhow::Result<()> {
        let left = self.left.get();
        anyhow::ensure!(
            left > 0,
            "the weights reference the same structure over and over (more than {} steps to walk \
             them, for {} objects)",
            self.total,
            self.arena.len()
        );
        self.left.set(left - 1);
        Ok(())
    }
}

/// The key of a dict item as a name segment; `None` for keys that are neither str nor int.
fn segment(arena: &Arena, key: Value) -> Option<std::borrow::Cow<'_, str>> {
    match arena.int(key) {
        Some(i) => Some(i.to_string().into()),
        None => arena.str(key).map(Into::into),
    }
}

/// Every tensor under `value`, named by its dotted path below it, in checkpoint order.
///
/// Depth-first with an explicit stack of containers and one name buffer, so neither nesting
/// nor width costs more than the names produced. A container inside itself is an error; so is
/// a walk longer than twice the object graph's edges (shared substructure referenced over and
/// over), a name longer than [`MAX_NAME_BYTES`] or names longer than [`MAX_TOTAL_NAME_BYTES`]
/// together.
fn flatten(w: &Walker<'_>, value: Value, base: &str) -> anyhow::Result<Vec<Selected>> {
    let arena = w.arena;
    let mut name_bytes = 0usize;
    let mut out = Vec::new();
    let mut name = String::new();
    // (container, next item, name length before the container's own segment)
    let mut frames: Vec<(ObjId, usize, usize)> = Vec::new();
    let mut visit = |value: Value,
                     name: &mut String,
                     before: usize,
                     frames: &mut Vec<(ObjId, usize, usize)>,
                     out: &mut Vec<Selected>|
     -> anyhow::Result<()> {
        let Value::Obj(id) = value else {
            name.truncate(before);
            return Ok(());
        };
        match arena.get(id) {
            Obj::Tensor(_) => {
                let source = match (base.is_empty(), name.is_empty()) {
                    (true, _) => name.clone(),
                    (false, true) => base.to_owned(),
                    (false, false) => format!("{base}.{name}"),
                };
                name_bytes += name.len() + source.len();
                anyhow::ensure!(
                    name_bytes <= MAX_TOTAL_NAME_BYTES,
                    "the tensor names exceed {} MiB together",
                    MAX_TOTAL_NAME_BYTES >> 20
                );
                out.push(Selected {
                    name: name.clone(),
                    source,
                    tensor: id,
                });
                name.truncate(before);
            }
            Obj::Dict(_) | Obj::List(_) | Obj::Tuple(_) => {
                anyhow::ensure!(
                    !frames.iter().any(|f| f.0 == id),
                    "`{}` contains itself",
                    display(name)
                );
                anyhow::ensure!(
                    frames.len() < MAX_DEPTH,
                    "weights nested deeper than {MAX_DEPTH} levels"
                );
                frames.push((id, 0, before));
            }
            _ => name.truncate(before),
        }
        Ok(())
    };
    visit(value, &mut name, 0, &mut frames, &mut out)?;
    while let Some(frame) = frames.last_mut() {
        let (id, next, before) = *frame;
        let item = match arena.get(id) {
            Obj::Dict(d) => d.items.get(next).map(|&(k, v)| (segment(arena, k), v)),
            Obj::List(items) | Obj::Tuple(items) => {
                items.get(next).map(|&v| (Some(next.to_string().into()), v))
            }
            _ => None,
        };
        let Some((key, child)) = item else {
            frames.pop();
            name.truncate(before);
            continue;
        };
        frame.1 += 1;
        w.step()?;
        // Keys that are neither str nor int name nothing (as before: such items are skipped).
        let Some(key) = key else { continue };
        let here = name.len();
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&key);
        anyhow::ensure!(
            name.len() <= MAX_NAME_BYTES,
            "a tensor name longer than {MAX_NAME_BYTES} bytes under `{}`",
            display(base)
        );
        visit(child, &mut name, here, &mut frames, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::finding::Member;
    use crate::artifacts::pickle::{Limits, PidFormat, Source, interpret};

    /// Builds `{key: {name: tensor, ...} | None, ...}` as a real pickle and interprets it.
    fn checkpoint(entries: &[(&str, Option<&[&str]>)]) -> crate::artifacts::pickle::Parsed {
        let mut p = vec![0x80, 2, b'}', b'('];
        let s = |p: &mut Vec<u8>, text: &str| {
            p.push(b'X');
            p.extend_from_slice(&(text.len() as u32).to_le_bytes());
            p.extend_from_slice(text.as_bytes());
        };
        let mut key = 0;
        for (entry, names) in entries {
            s(&mut p, entry);
            match names {
                None => p.push(b'N'),
                Some(names) => {
                    p.extend_from_slice(b"}(");
                    for name in *names {
                        s(&mut p, name);
                        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
                        s(&mut p, "storage");
                        p.extend_from_slice(b"ctorch\nFloatStorage\n");
                        s(&mut p, &key.to_string());
                        key += 1;
                        s(&mut p, "cpu");
                        p.extend_from_slice(
                            b"K\x01tQK\x00(K\x01t(K\x01t\x89ccollections\nOrderedDict\n)RtR",
                        );
                    }
                    p.push(b'u');
                }
            }
        }
        p.extend_from_slice(b"u.");
        let source = Source {
            data: &p,
            member: Member::Entry("archive/data.pkl".into()),
            base: 0,
            pids: PidFormat::Zip,
        };
        let mut findings = Vec::new();
        let parsed = interpret(&source, &Limits::default(), &mut findings).expect("parses");
        assert!(findings.is_empty(), "{findings:?}");
        parsed
    }

    fn names(
        parsed: &crate::artifacts::pickle::Parsed,
        choice: &str,
        strip: &[&str],
    ) -> anyhow::Result<(String, Vec<String>)> {
        let strip: Vec<String> = strip.iter().map(|s| (*s).to_owned()).collect();
        let selection = select(
            &parsed.arena,
            parsed.root,
            &WeightsChoice::parse(choice),
            &strip,
        )?;
        Ok((
            selection.subtree,
            selection.tensors.into_iter().map(|t| t.name).collect(),
        ))
    }

    #[test]
    fn auto_prefers_ema_then_model_then_a_flat_dict() {
        let ckpt = checkpoint(&[
            ("model", Some(&["w"])),
            ("ema", Some(&["w", "b"])),
            ("optimizer", Some(&["s"])),
        ]);
        assert_eq!(names(&ckpt, "auto", &[]).expect("ok").0, "ema");
        assert_eq!(names(&ckpt, "model", &[]).expect("ok").0, "model");
        assert_eq!(names(&ckpt, "optimizer", &[]).expect("ok").1, ["s"]);
        let none = checkpoint(&[("model", Some(&["w"])), ("ema", None)]);
        assert_eq!(names(&none, "auto", &[]).expect("ok").0, "model");
        assert!(names(&none, "ema", &[]).is_err());
        let flat = checkpoint(&[("module.w", Some(&[])), ("x", Some(&["y"]))]);
        // `x` holds a nested tensor only: not a flat state dict, not a model entry.
        let err = names(&flat, "auto", &[]).expect_err("nothing");
        assert!(err.to_string().contains("found no weights"), "{err}");
    }

    #[test]
    fn two_model_entries_are_ambiguous() {
        let ckpt = checkpoint(&[("model", Some(&["w"])), ("state_dict", Some(&["w"]))]);
        let err = names(&ckpt, "auto", &[]).expect_err("ambiguous");
        assert!(
            err.to_string()
                .contains("`model` (1 tensors) and `state_dict` (1 tensors)"),
            "{err}"
        );
        assert_eq!(
            crate::error::hint_of(&err).as_deref(),
            Some("choose one with `--weights model` or `--weights state_dict`")
        );
    }

    #[test]
    fn a_prefix_is_stripped_only_when_every_name_has_it() {
        let ckpt = checkpoint(&[("model", Some(&["module.a", "module.b"]))]);
        assert_eq!(
            names(&ckpt, "model", &["_orig_mod.", "module."])
                .expect("ok")
                .1,
            ["a", "b"]
        );
        let mixed = checkpoint(&[("model", Some(&["module.a", "b"]))]);
        assert_eq!(
            names(&mixed, "model", &["module."]).expect("ok").1,
            ["module.a", "b"]
        );
    }

    #[test]
    fn stacked_prefixes_are_stripped_until_none_applies() {
        let ckpt = checkpoint(&[("model", Some(&["module._orig_mod.a", "module._orig_mod.b"]))]);
        let strip = ["module.".to_owned(), "_orig_mod.".to_owned()];
        let selection = select(
            &ckpt.arena,
            ckpt.root,
            &WeightsChoice::parse("model"),
            &strip,
        )
        .expect("ok");
        let names: Vec<&str> = selection.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(selection.stripped, strip);
        assert_eq!(
            selection.stripped_prefix().as_deref(),
            Some("module._orig_mod.")
        );
    }

    #[test]
    fn the_authors_names_are_recognised_and_a_parameters_only_ema_is_completed() {
        let ckpt = checkpoint(&[
            ("model_state_dict", Some(&["w", "buf"])),
            ("optimizer_state_dict", Some(&["state"])),
            ("ema_shadow_params", Some(&["w"])),
        ]);
        let selection = select(&ckpt.arena, ckpt.root, &WeightsChoice::Auto, &[]).expect("ok");
        assert_eq!(selection.subtree, "ema_shadow_params");
        let written: Vec<&str> = selection.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(written, ["w", "buf"]);
        assert_eq!(selection.tensors[1].source, "model_state_dict.buf");
        assert_eq!(
            selection.completed,
            Some(Completion {
                from: "model_state_dict".into(),
                names: vec!["buf".into()]
            })
        );
        assert_eq!(
            names_of(&ckpt, "model").0,
            "model_state_dict",
            "the optimizer's state dict is not a model"
        );
        // Other names that say EMA or model, by word.
        let generic = checkpoint(&[
            ("generator_model", Some(&["w"])),
            ("schema", Some(&["x"])),
            ("weights_ema", Some(&["w"])),
        ]);
        assert_eq!(names_of(&generic, "auto").0, "weights_ema");
        assert_eq!(names_of(&generic, "model").0, "generator_model");
        let two = checkpoint(&[("a_ema", Some(&["w"])), ("b_ema", Some(&["w"]))]);
        let err = names(&two, "auto", &[]).expect_err("ambiguous");
        assert!(err.to_string().contains("which EMA weights"), "{err}");
        // An EMA with names the model lacks is not completed.
        let other = checkpoint(&[("model", Some(&["w", "buf"])), ("ema", Some(&["v"]))]);
        let selection = select(&other.arena, other.root, &WeightsChoice::Auto, &[]).expect("ok");
        assert_eq!(selection.completed, None);
        assert_eq!(selection.tensors.len(), 1);
    }

    fn names_of(parsed: &crate::artifacts::pickle::Parsed, choice: &str) -> (String, Vec<String>) {
        names(parsed, choice, &[]).expect("selects")
    }

    #[test]
    fn shared_structure_is_refused_not_walked_as_a_tree() {
        // {"ema": D60}, D(k+1) = {"a": D(k), "b": D(k)}: 2^60 paths to one tensor.
        let mut p = vec![0x80, 2, b'}', b'('];
        let s = |p: &mut Vec<u8>, text: &str| {
            p.push(b'X');
            p.extend_from_slice(&(text.len() as u32).to_le_bytes());
            p.extend_from_slice(text.as_bytes());
        };
        s(&mut p, "ema");
        for _ in 0..60 {
            p.extend_from_slice(b"}(");
            s(&mut p, "a");
        }
        p.extend_from_slice(b"}");
        s(&mut p, "w");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        s(&mut p, "storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        s(&mut p, "0");
        s(&mut p, "cpu");
        p.extend_from_slice(b"K\x01tQK\x00(K\x01t(K\x01t\x89ccollections\nOrderedDict\n)RtRs");
        for level in 0..60u8 {
            p.extend_from_slice(&[b'q', level]);
            s(&mut p, "b");
            p.extend_from_slice(&[b'h', level, b'u']);
        }
        p.extend_from_slice(b"u.");
        let source = Source {
            data: &p,
            member: Member::Entry("archive/data.pkl".into()),
            base: 0,
            pids: PidFormat::Zip,
        };
        let mut findings = Vec::new();
        let parsed = interpret(&source, &Limits::default(), &mut findings).expect("parses");
        assert!(findings.is_empty(), "{findings:?}");
        let started = std::time::Instant::now();
        let err = names(&parsed, "ema", &[]).expect_err("refused");
        assert!(started.elapsed().as_secs() < 2);
        assert!(
            format!("{err:#}").contains("same structure over and over"),
            "{err:#}"
        );
    }

    #[test]
    fn one_dict_under_many_names_is_not_walked_once_per_name() {
        // D holds 10,000 references to one tensor; 10,000 top-level names that say model all
        // refer to D: counting each would take 10^8 steps.
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ");
        p.extend_from_slice(b"K\x00(K\x01t(K\x01t\x89ccollections\nOrderedDict\n)RtRq\x01");
        p.extend_from_slice(b"0}(");
        for i in 0..10_000i32 {
            p.push(b'J');
            p.extend_from_slice(&i.to_le_bytes());
            p.extend_from_slice(b"h\x01");
        }
        p.extend_from_slice(b"uq\x020}(");
        for i in 0..10_000 {
            let key = format!("model_{i}");
            p.push(b'X');
            p.extend_from_slice(&(key.len() as u32).to_le_bytes());
            p.extend_from_slice(key.as_bytes());
            p.extend_from_slice(b"h\x02");
        }
        p.extend_from_slice(b"u.");
        let source = Source {
            data: &p,
            member: Member::Entry("archive/data.pkl".into()),
            base: 0,
            pids: PidFormat::Zip,
        };
        let mut findings = Vec::new();
        let parsed = interpret(&source, &Limits::default(), &mut findings).expect("parses");
        let started = std::time::Instant::now();
        let err = names(&parsed, "auto", &[]).expect_err("refused");
        assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
        assert!(
            format!("{err:#}").contains("same structure over and over"),
            "{err:#}"
        );
    }

    #[test]
    fn dotted_paths_match_the_longest_key() {
        let ckpt = checkpoint(&[("trainer.ema", Some(&["w"])), ("trainer", Some(&["v"]))]);
        assert_eq!(names(&ckpt, "trainer.ema", &[]).expect("ok").1, ["w"]);
        let err = names(&ckpt, "nope.x", &[]).expect_err("missing");
        assert!(err.to_string().contains("no entry `nope.x`"));
    }
}
