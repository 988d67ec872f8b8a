//! The crate's layers, held against its imports: a module may import only modules of its own
//! layer or below, and no files import each other in a circle (directly or through others).
//!
//! A small source scan, not a compiler: every `crate::a::b` path and `super::`/`self::` path
//! outside `#[cfg(test)]` code is resolved to the file that defines the module it names. README's
//! "Layout" paragraph draws the same floors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, from the ground up. Each top-level module of `src/` is on exactly one.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "ground: errors, the environment snapshot, secrets and identities",
        &[
            "error",
            "env",
            "secrets",
            "names",
            "vocab",
            "digest",
            "provenance",
            "identity",
        ],
    ),
    (
        "bounded input and output, and the printer",
        &["input", "output", "report"],
    ),
    ("the configuration", &["config"]),
    (
        "the stages",
        &["artifacts", "onnx", "smoke", "gates", "card", "sarif"],
    ),
    (
        "the bundle and its manifest",
        &["bundle", "manifest", "sums", "space"],
    ),
    ("check, publish and verify", &["check", "publish", "verify"]),
    (
        "the front ends",
        &["cli", "commands", "action", "dispatch", "lib", "main"],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `src/`, by module path (`smoke::run`, `lib`, `main`).
fn files() -> BTreeMap<String, PathBuf> {
    let root = src();
    let mut found = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).expect("below src");
                let mut parts: Vec<String> = relative
                    .with_extension("")
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                found.insert(parts.join("::"), path);
            }
        }
    }
    found
}

/// The source without comments and without its `#[cfg(test)]` module.
fn code_of(path: &Path) -> String {
    let mut text = std::fs::read_to_string(path).expect("source is UTF-8");
    if let Some(tests) = text.find("\n#[cfg(test)]\n") {
        text.truncate(tests);
    }
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names: `crate::a::b::Item` gives `a::b::Item`, `super::x` is
/// resolved against the file's own module, `use crate::{a, b::c}` gives both.
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let own: Vec<&str> = if module == "lib" || module == "main" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut paths = Vec::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("tinydit_release::", Vec::new()),
        ("super::", own[..own.len().saturating_sub(1)].to_vec()),
        ("self::", own.clone()),
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut tails = Vec::new();
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find("};").unwrap_or(group.len());
                tails.extend(group[..end].split(',').map(|t| t.trim().to_owned()));
            } else {
                let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
                tails.push(rest[..end].to_owned());
            }
            for tail in tails {
                let tail = tail.split('{').next().unwrap_or("").trim_end_matches("::");
                let mut path: Vec<&str> = base.clone();
                path.extend(tail.split("::").filter(|p| !p.is_empty() && *p != "self"));
                paths.push(path.join("::"));
            }
        }
    }
    paths
}

/// A module's own children named by a bare path (`summary::markdown(...)` in `check/mod.rs`).
fn children_named(module: &str, code: &str, modules: &BTreeMap<String, PathBuf>) -> Vec<String> {
    let prefix = if module == "lib" {
        String::new()
    } else {
        format!("{module}::")
    };
    modules
        .keys()
        .filter_map(|child| {
            let name = child.strip_prefix(&prefix)?;
            (!name.contains("::")).then_some((child, name))
        })
        .filter(|(_, name)| {
            let needle = format!("{name}::");
            code.match_indices(&needle).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            })
        })
        .map(|(child, _)| child.clone())
        .collect()
}

/// The file a path lands in: its longest prefix that is a module of ours.
/// A path that lands in no module names an item of the crate root (`crate::EnvSnapshot`), which
/// is `lib.rs`, a front end: below it, a module imports the item from where it is defined.
fn file_of<'a>(path: &str, modules: &'a BTreeMap<String, PathBuf>) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find_map(|candidate| modules.get_key_value(&candidate).map(|(k, _)| k.as_str()))
        .or_else(|| {
            let root_item =
                parts.len() == 1 && parts[0].starts_with(|c: char| c.is_ascii_uppercase());
            root_item.then_some("lib")
        })
}

/// file -> the files it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = files();
    let mut graph = BTreeMap::new();
    for (module, path) in &modules {
        let code = code_of(path);
        let mut paths = named_paths(module, &code);
        paths.extend(children_named(module, &code, &modules));
        let targets: BTreeSet<String> = paths
            .iter()
            .filter_map(|p| file_of(p, &modules))
            .filter(|target| target != module)
            .map(str::to_owned)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&top))
}

#[test]
fn every_module_imports_only_its_own_layer_or_below() {
    let mut problems = Vec::new();
    for (module, targets) in imports() {
        let Some(floor) = layer_of(&module) else {
            problems.push(format!(
                "`{module}` is on no layer: add it to LAYERS here and to README's Layout"
            ));
            continue;
        };
        for target in targets {
            let Some(target_floor) = layer_of(&target) else {
                continue;
            };
            if target_floor > floor {
                problems.push(format!(
                    "`{module}` ({}) imports `{target}` ({}), a layer above it",
                    LAYERS[floor].0, LAYERS[target_floor].0
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A file not yet visited, on the current path, or done.
#[derive(Clone, Copy, PartialEq)]
enum Colour {
    White,
    Grey,
    Black,
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = imports();
    // Depth-first search with colours: a grey file met again closes a circle.
    let mut colour: BTreeMap<&str, Colour> =
        graph.keys().map(|k| (k.as_str(), Colour::White)).collect();
    let mut circles = Vec::new();
    for start in graph.keys() {
        if colour[start.as_str()] != Colour::White {
            continue;
        }
        // (file, its imports still to visit); the stack is the current path.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(
            start.as_str(),
            graph[start].iter().map(String::as_str).collect(),
        )];
        colour.insert(start.as_str(), Colour::Grey);
        while let Some((file, pending)) = stack.last_mut() {
            let file = *file;
            let Some(next) = pending.pop() else {
                colour.insert(file, Colour::Black);
                stack.pop();
                continue;
            };
            match colour.get(next).copied() {
                Some(Colour::White) => {
                    colour.insert(next, Colour::Grey);
                    let imports = graph[next].iter().map(String::as_str).collect();
                    stack.push((next, imports));
                }
                Some(Colour::Grey) => {
                    let from = stack.iter().position(|(f, _)| *f == next).unwrap_or(0);
                    let mut circle: Vec<&str> = stack[from..].iter().map(|(f, _)| *f).collect();
                    circle.push(next);
                    circles.push(circle.join(" -> "));
                }
                _ => {}
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// The scan itself sees what it must: a `super::` import, a grouped `use crate::{...}`, a path
/// inside an expression, and nothing inside tests.
#[test]
fn the_scan_resolves_the_paths_it_is_given() {
    let code = "use super::sampler::Sampled;\nuse crate::{error::Problem, names};\n\
                let x = crate::output::write_atomically(p);\n";
    let paths = named_paths("smoke::run", code);
    assert!(
        paths.contains(&"smoke::sampler::Sampled".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"error::Problem".to_owned()), "{paths:?}");
    assert!(paths.contains(&"names".to_owned()), "{paths:?}");
    assert!(
        paths.contains(&"output::write_atomically".to_owned()),
        "{paths:?}"
    );
    let graph = imports();
    assert!(graph["smoke::run"].contains("smoke::sampler"));
    assert!(graph["check"].contains("check::summary"));
    assert!(
        !graph["names"].contains("artifacts::convert"),
        "test code is not scanned"
    );
}
