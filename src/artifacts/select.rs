//! Which weights of a training checkpoint to release, and under which names.
//!
//! `--weights` (or `weights` in release.toml) takes:
//!
//! - `auto` (the default), in this order:
//!   1. the first EMA entry of the top-level dict among `ema`, `model_ema`, `state_dict_ema`,
//!      `ema_state_dict`, `shadow_params` that is a dict holding tensors (an entry that is `None`
//!      or holds no tensors falls through; `shadow_params` counts only in its dict form, since the
//!      list form has no names);
//!   2. otherwise the model entry among `model`, `state_dict`, `module` that holds tensors; if
//!      more than one does, the choice is ambiguous and refused with a listing;
//!   3. otherwise the top level itself, if it holds tensors directly (a flat state dict).
//! - `ema`: step 1 only; an error if there is no EMA entry.
//! - `model`: steps 2 and 3 only.
//! - a dotted path such as `trainer.ema.model`: that subtree. A key that itself contains dots is
//!   matched whole (the longest key that is a prefix of the remaining path wins).
//!
//! The chosen subtree is flattened into dotted names (nested dicts joined with `.`, list items
//! by index); non-tensor leaves are dropped. Then one prefix is stripped: the first of the
//! configured prefixes (default `module.`, `_orig_mod.`) that *every* name carries. Only the
//! chosen subtree is visited, so tensors elsewhere (optimizer state) are never read.

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
    "shadow_params",
];

/// Model entries; more than one holding tensors is ambiguous.
pub const MODEL_KEYS: &[&str] = &["model", "state_dict", "module"];

/// Deepest nesting flattened inside the chosen subtree.
const MAX_DEPTH: usize = 64;

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

/// The outcome of selection.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Dotted path of the chosen subtree; empty for the top level.
    pub subtree: String,
    /// The prefix removed from every name, if any.
    pub stripped: Option<String>,
    /// Tensors in checkpoint order.
    pub tensors: Vec<Selected>,
}

/// Picks the weights and names them.
pub fn select(
    arena: &Arena,
    root: Value,
    choice: &WeightsChoice,
    strip_prefixes: &[String],
) -> anyhow::Result<Selection> {
    let (subtree, value) = match choice {
        WeightsChoice::Auto => match find_ema(arena, root) {
            Some(found) => found,
            None => find_model(arena, root)?.ok_or_else(|| nothing_found(arena, root))?,
        },
        WeightsChoice::Ema => find_ema(arena, root).ok_or_else(|| {
            Problem::new(format!(
                "the checkpoint has no EMA weights (looked for {})",
                list(EMA_KEYS)
            ))
            .hint("use `--weights model` or a dotted path")
        })?,
        WeightsChoice::Model => {
            find_model(arena, root)?.ok_or_else(|| nothing_found(arena, root))?
        }
        WeightsChoice::Path(path) => {
            let value = resolve(arena, root, path).ok_or_else(|| {
                Problem::new(format!("the checkpoint has no entry `{path}`"))
                    .hint(candidates_hint(arena, root))
            })?;
            (path.clone(), value)
        }
    };
    let mut tensors = Vec::new();
    flatten(
        arena,
        value,
        &subtree,
        String::new(),
        &mut tensors,
        &mut Vec::new(),
    )
    .with_context(|| format!("failed to read the weights under `{}`", display(&subtree)))?;
    if tensors.is_empty() {
        return Err(
            Problem::new(format!("`{}` holds no tensors", display(&subtree)))
                .hint(candidates_hint(arena, root))
                .into(),
        );
    }
    let stripped = strip_prefixes
        .iter()
        .filter(|p| !p.is_empty())
        .find(|p| {
            tensors
                .iter()
                .all(|t| t.name.len() > p.len() && t.name.starts_with(p.as_str()))
        })
        .cloned();
    if let Some(prefix) = &stripped {
        for t in &mut tensors {
            t.name = t.name[prefix.len()..].to_owned();
        }
    }
    let mut seen = std::collections::HashSet::new();
    for t in &tensors {
        anyhow::ensure!(
            seen.insert(t.name.as_str()),
            "two tensors would both be named `{}` (one nested, one with a dotted key)",
            t.name
        );
    }
    Ok(Selection {
        subtree,
        stripped,
        tensors,
    })
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

/// Tensors directly or indirectly under a value (counted up to a small depth).
fn tensor_count(arena: &Arena, value: Value) -> usize {
    let mut out = Vec::new();
    match flatten(arena, value, "", String::new(), &mut out, &mut Vec::new()) {
        Ok(()) => out.len(),
        Err(_) => 0,
    }
}

fn find_ema(arena: &Arena, root: Value) -> Option<(String, Value)> {
    for key in EMA_KEYS {
        if let Some(value) = arena.lookup(root, key)
            && arena.dict(value).is_some()
            && tensor_count(arena, value) > 0
        {
            return Some(((*key).to_owned(), value));
        }
    }
    None
}

fn find_model(arena: &Arena, root: Value) -> anyhow::Result<Option<(String, Value)>> {
    let found: Vec<(&str, Value, usize)> = MODEL_KEYS
        .iter()
        .filter_map(|key| {
            let value = arena.lookup(root, key)?;
            let count = tensor_count(arena, value);
            (count > 0).then_some((*key, value, count))
        })
        .collect();
    match found.as_slice() {
        [] => {}
        [(key, value, _)] => return Ok(Some(((*key).to_owned(), *value))),
        many => {
            let listing = many
                .iter()
                .map(|(k, _, n)| format!("`{k}` ({n} tensors)"))
                .collect::<Vec<_>>()
                .join(" and ");
            let choices = many
                .iter()
                .map(|(k, _, _)| format!("`--weights {k}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(Problem::new(format!(
                "which weights to convert is ambiguous: {listing} both hold weights"
            ))
            .hint(format!("choose one with {choices}"))
            .into());
        }
    }
    // A flat state dict: tensors directly at the top level.
    let flat = arena
        .dict(root)
        .is_some_and(|d| d.items.iter().any(|(_, v)| arena.tensor(*v).is_some()));
    Ok(flat.then(|| (String::new(), root)))
}

fn nothing_found(arena: &Arena, root: Value) -> anyhow::Error {
    Problem::new(format!(
        "found no weights: no EMA entry ({}), no model entry ({}) and no tensors at the top level",
        list(EMA_KEYS),
        list(MODEL_KEYS)
    ))
    .hint(candidates_hint(arena, root))
    .into()
}

/// "choose one with --weights PATH; dicts holding tensors: ..." for error hints.
fn candidates_hint(arena: &Arena, root: Value) -> String {
    let mut found = Vec::new();
    let mut stack = vec![(root, String::new(), 0usize)];
    while let Some((value, path, depth)) = stack.pop() {
        let Some(dict) = arena.dict(value) else {
            continue;
        };
        if !path.is_empty() && dict.items.iter().any(|(_, v)| arena.tensor(*v).is_some()) {
            found.push(format!("`{path}` ({} tensors)", tensor_count(arena, value)));
            continue;
        }
        if depth < 4 {
            for (k, v) in dict.items.iter().rev() {
                if let Some(k) = arena.str(*k) {
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
                        let key = match k {
                            Value::Int(i) => i.to_string(),
                            k => arena.str(*k)?.to_owned(),
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

fn flatten(
    arena: &Arena,
    value: Value,
    base: &str,
    name: String,
    out: &mut Vec<Selected>,
    ancestors: &mut Vec<ObjId>,
) -> anyhow::Result<()> {
    let Value::Obj(id) = value else {
        return Ok(());
    };
    let join = |key: &str| {
        if name.is_empty() {
            key.to_owned()
        } else {
            format!("{name}.{key}")
        }
    };
    let children: Vec<(String, Value)> = match arena.get(id) {
        Obj::Tensor(_) => {
            let source = match (base.is_empty(), name.is_empty()) {
                (true, _) => name.clone(),
                (false, true) => base.to_owned(),
                (false, false) => format!("{base}.{name}"),
            };
            out.push(Selected {
                name,
                source,
                tensor: id,
            });
            return Ok(());
        }
        Obj::Dict(dict) => dict
            .items
            .iter()
            .filter_map(|(k, v)| {
                let key = match k {
                    Value::Int(i) => i.to_string(),
                    k => arena.str(*k)?.to_owned(),
                };
                Some((join(&key), *v))
            })
            .collect(),
        Obj::List(items) | Obj::Tuple(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (join(&i.to_string()), *v))
            .collect(),
        _ => return Ok(()),
    };
    anyhow::ensure!(
        !ancestors.contains(&id),
        "`{}` contains itself",
        display(&name)
    );
    anyhow::ensure!(
        ancestors.len() < MAX_DEPTH,
        "weights nested deeper than {MAX_DEPTH} levels"
    );
    ancestors.push(id);
    for (child_name, child) in children {
        flatten(arena, child, base, child_name, out, ancestors)?;
    }
    ancestors.pop();
    Ok(())
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
    fn dotted_paths_match_the_longest_key() {
        let ckpt = checkpoint(&[("trainer.ema", Some(&["w"])), ("trainer", Some(&["v"]))]);
        assert_eq!(names(&ckpt, "trainer.ema", &[]).expect("ok").1, ["w"]);
        let err = names(&ckpt, "nope.x", &[]).expect_err("missing");
        assert!(err.to_string().contains("no entry `nope.x`"));
    }
}
