//! `sample` inside a release bundle: the generator's contract read from the bundle's own
//! `config.json` and `generation_config.json` (written by `check`, `src/check/`), so the model
//! card's command works where the card is, without the `release.toml` that made it.
//!
//! The two files are found next to the model or in a folder above it (the bundle keeps ONNX files
//! in `onnx/`), at most [`MAX_LEVELS`] folders up. They are untrusted input like any downloaded
//! file: read with a size limit, every field type-checked and range-checked, and errors name the
//! file and the key.
//!
//! From `generation_config.json`: `steps`, `cfg`, `cfg_scale`, `uncond_class`, `image_size`,
//! `channels`. From `config.json`: `classes` and `onnx_io` (`inputs.noise`, `inputs.timestep`,
//! `inputs.label`, `output`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::config::{CfgMode, GeneratorConfig};
use crate::error::Problem;

/// Folders searched: the model's own and this many above it.
pub const MAX_LEVELS: usize = 3;

/// `config.json` and `generation_config.json` are a few kilobytes; anything larger is not ours.
const MAX_JSON_BYTES: u64 = 1 << 20;

/// Upper bounds that keep a corrupt file from asking for absurd work (as `release.toml`'s do).
const MAX_IMAGE_SIZE: u64 = 8192;
const MAX_CHANNELS: u64 = 64;
const MAX_CLASSES: usize = 10_000;
const MAX_STEPS: u64 = 10_000;

/// The generator contract of a bundle and where it was found.
#[derive(Debug, Clone)]
pub struct BundleGenerator {
    /// The contract, as `[generator]` would give it.
    pub generator: GeneratorConfig,
    /// The folder holding the two files, as found (relative when the model path was).
    pub dir: PathBuf,
}

/// Finds and reads the bundle files for `model` (searching its folder and up to [`MAX_LEVELS`]
/// folders above).
pub fn load(model: &Path) -> anyhow::Result<BundleGenerator> {
    let start = match model.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Relative folders stay relative in messages: `onnx/..` is shown as `.`.
    let candidates = std::iter::successors(Some(start), |dir| {
        if dir == Path::new(".") || dir.ends_with("..") {
            Some(dir.join(".."))
        } else {
            Some(match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            })
        }
    });
    for dir in candidates.take(MAX_LEVELS + 1) {
        if dir.join("generation_config.json").is_file() {
            let generator = read(&dir)?;
            return Ok(BundleGenerator { generator, dir });
        }
    }
    Err(Problem::new(format!(
        "no `release.toml` here, and no bundle `generation_config.json` next to `{}` or up to \
         {MAX_LEVELS} folders above it",
        model.display()
    ))
    .hint(
        "pass `--config release.toml`, or run `sample` in a bundle written by `tinydit-release \
         check` (it has `config.json` and `generation_config.json`)",
    )
    .into())
}

/// Reads the contract from `dir/config.json` and `dir/generation_config.json`.
pub fn read(dir: &Path) -> anyhow::Result<GeneratorConfig> {
    let generation_path = dir.join("generation_config.json");
    let config_path = dir.join("config.json");
    let generation = read_json(&generation_path)?;
    let model = read_json(&config_path)?;
    let g = Fields {
        file: &generation_path,
        value: &generation,
    };
    let m = Fields {
        file: &config_path,
        value: &model,
    };
    let cfg = match g.string("cfg")? {
        "explicit" => CfgMode::Explicit,
        "baked" => CfgMode::Baked,
        "none" => CfgMode::None,
        other => {
            return Err(g.bad(
                "cfg",
                &format!("`{other}` is not `explicit`, `baked` or `none`"),
            ));
        }
    };
    let classes_value = m.get("classes")?;
    let Some(list) = classes_value.as_array() else {
        return Err(m.bad("classes", "is not a list of class names"));
    };
    if list.is_empty() || list.len() > MAX_CLASSES {
        return Err(m.bad(
            "classes",
            &format!("has {} entries, 1..={MAX_CLASSES} are needed", list.len()),
        ));
    }
    let mut classes = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        match item.as_str() {
            Some(name) if !name.is_empty() && name.len() <= 256 => classes.push(name.to_owned()),
            _ => {
                return Err(m.bad(
                    "classes",
                    &format!("entry {i} is not a class name (a string of 1 to 256 bytes)"),
                ));
            }
        }
    }
    let uncond_class = match g.get("uncond_class")? {
        Value::Null => None,
        value => Some(
            value
                .as_u64()
                .filter(|&c| (c as usize) < classes.len())
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| {
                    g.bad(
                        "uncond_class",
                        &format!("is not a class index below {}", classes.len()),
                    )
                })?,
        ),
    };
    if cfg == CfgMode::Explicit && uncond_class.is_none() {
        return Err(g.bad(
            "uncond_class",
            "is null, but `cfg` = `explicit` needs the unconditional class",
        ));
    }
    let cfg_scale =
        g.get("cfg_scale")?
            .as_f64()
            .filter(|s| s.is_finite() && (0.0..=100.0).contains(s))
            .ok_or_else(|| g.bad("cfg_scale", "is not a number within 0..=100"))? as f32;
    let io = Fields {
        file: &config_path,
        value: m.get("onnx_io")?,
    };
    let inputs = Fields {
        file: &config_path,
        value: io.get("inputs")?,
    };
    let name = |fields: &Fields<'_>, key: &str| -> anyhow::Result<String> {
        let text = fields.string(key)?;
        if text.is_empty() || text.len() > 256 {
            return Err(fields.bad(key, "is not an input or output name"));
        }
        Ok(text.to_owned())
    };
    Ok(GeneratorConfig {
        image_size: g.count("image_size", MAX_IMAGE_SIZE)?,
        channels: g.count("channels", MAX_CHANNELS)?,
        classes,
        uncond_class,
        noise_input: name(&inputs, "noise")?,
        timestep_input: name(&inputs, "timestep")?,
        label_input: name(&inputs, "label")?,
        output: name(&io, "output")?,
        cfg,
        cfg_scale,
        steps: g.count("steps", MAX_STEPS)?,
    })
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let display = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("failed to read `{display}`"))?;
    if !meta.is_file() || meta.len() > MAX_JSON_BYTES {
        return Err(Problem::new(format!(
            "`{display}` is not a bundle file of at most 1 MiB"
        ))
        .hint("the bundle's `config.json` and `generation_config.json` are written by `check`")
        .into());
    }
    let bytes = std::fs::read(path).with_context(|| format!("failed to read `{display}`"))?;
    serde_json::from_slice(&bytes).map_err(|err| {
        Problem::new(format!("`{display}` is not valid JSON: {err}"))
            .hint("the bundle's `config.json` and `generation_config.json` are written by `check`")
            .into()
    })
}

/// Typed access to one JSON object, with errors naming the file and the key.
struct Fields<'a> {
    file: &'a Path,
    value: &'a Value,
}

impl<'a> Fields<'a> {
    fn bad(&self, key: &str, what: &str) -> anyhow::Error {
        Problem::new(format!("`{}`: `{key}` {what}", self.file.display()))
            .hint("the bundle's `config.json` and `generation_config.json` are written by `check`; write them again with it")
            .into()
    }

    fn get(&self, key: &str) -> anyhow::Result<&'a Value> {
        self.value
            .get(key)
            .ok_or_else(|| self.bad(key, "is missing"))
    }

    fn string(&self, key: &str) -> anyhow::Result<&'a str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.bad(key, "is not a string"))
    }

    fn count(&self, key: &str, max: u64) -> anyhow::Result<u32> {
        self.get(key)?
            .as_u64()
            .filter(|&n| (1..=max).contains(&n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.bad(key, &format!("is not a whole number within 1..={max}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bundle(dir: &Path, generation: &Value, config: &Value) {
        std::fs::write(
            dir.join("generation_config.json"),
            serde_json::to_vec(generation).expect("json"),
        )
        .expect("write");
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_vec(config).expect("json"),
        )
        .expect("write");
    }

    fn generation() -> Value {
        serde_json::json!({
            "sampler": "euler", "steps": 20, "cfg": "explicit", "cfg_scale": 1.5,
            "uncond_class": 2, "image_size": 32, "channels": 3, "output_range": [-1.0, 1.0],
        })
    }

    fn config() -> Value {
        serde_json::json!({
            "model_name": "x", "image_size": 32, "classes": ["a", "b", "Other"],
            "onnx_io": {"inputs": {"noise": "noise", "timestep": "timestep", "label": "breed"},
                        "output": "velocity"},
        })
    }

    #[test]
    fn the_files_check_writes_give_the_generator_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("onnx")).expect("mkdir");
        write_bundle(dir.path(), &generation(), &config());
        let found = load(&dir.path().join("onnx/gen.onnx")).expect("found one folder up");
        let g = found.generator;
        assert_eq!(g.classes, ["a", "b", "Other"]);
        assert_eq!((g.image_size, g.channels, g.steps), (32, 3, 20));
        assert_eq!((g.cfg, g.uncond_class), (CfgMode::Explicit, Some(2)));
        assert_eq!(g.label_input, "breed");
        assert_eq!(g.output, "velocity");
    }

    #[test]
    fn bad_fields_are_refused_naming_the_file_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (key, value, expected) in [
            (
                "steps",
                serde_json::json!(0),
                "`steps` is not a whole number",
            ),
            ("cfg", serde_json::json!("cfg++"), "`cfg` `cfg++` is not"),
            (
                "uncond_class",
                serde_json::json!(7),
                "not a class index below 3",
            ),
            (
                "image_size",
                serde_json::json!(1e12),
                "`image_size` is not a whole number",
            ),
            (
                "cfg_scale",
                serde_json::json!("big"),
                "`cfg_scale` is not a number",
            ),
        ] {
            let mut g = generation();
            g[key] = value;
            write_bundle(dir.path(), &g, &config());
            let err = read(dir.path()).expect_err(key).to_string();
            assert!(err.contains("generation_config.json"), "{err}");
            assert!(err.contains(expected), "{err}");
        }
        let mut c = config();
        c["classes"] = serde_json::json!([1, 2]);
        write_bundle(dir.path(), &generation(), &c);
        let err = read(dir.path()).expect_err("classes").to_string();
        assert!(err.contains("config.json`: `classes` entry 0"), "{err}");
        std::fs::write(dir.path().join("config.json"), b"{").expect("write");
        let err = read(dir.path()).expect_err("json").to_string();
        assert!(err.contains("is not valid JSON"), "{err}");
    }

    #[test]
    fn no_bundle_files_say_what_to_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(&dir.path().join("gen.onnx")).expect_err("nothing");
        assert!(err.to_string().contains("no `release.toml` here"), "{err}");
        let hint = crate::error::hint_of(&err).expect("hint");
        assert!(hint.contains("--config release.toml"), "{hint}");
    }
}
