//! The demo Space: the static Hugging Face Space `check` writes into `<out>/space/` beside the
//! bundle when `release.toml` has `[space]`.
//!
//! The Space is a page that runs the release's generator in the visitor's browser: `README.md`
//! (the Space's front matter: `sdk: static`, `models:` naming the model repository, the
//! `custom_headers` that make the page cross-origin isolated so WebAssembly can use threads),
//! `index.html`, `app.js` (the page), `worker.js` (onnxruntime-web off the page's thread, the
//! Euler sampler), `noise.js` (the project's seeded noise, bit for bit) and `space.json`, the
//! facts of this release: the model repository and **this release's tag** (never `main`), the
//! generator file and its sha256, and the pinned onnxruntime-web files with theirs.
//!
//! onnxruntime-web is not vendored (its WebAssembly alone is 15 MB, 29 MB for WebGPU): the page
//! fetches the pinned version's files from jsDelivr's npm mirror and refuses any whose sha256 is
//! not the one below (script `integrity` cannot cover a worker's imports and the WebAssembly, so
//! the worker checks the digests itself).
//!
//! `tests/it/publish/space.rs` runs the page in headless Chromium against a release published to
//! the Hub emulator (`tests/browser/`, whose `package-lock.json` pins the same onnxruntime-web,
//! whose files it serves, so a wrong digest here fails it). `check` lists the files in the
//! manifest (`SpaceListing`) and `publish` releases them to the Space's `main`, tagged with the
//! version (`publish::release_to_hub`).
//!
//! Layer 5, beside the bundle: imports the configuration and the bundle's manifest.

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use crate::bundle::{Manifest, pretty_json};
use crate::config::ReleaseConfig;
use crate::config::space::SpaceConfig;
use crate::error::Problem;

/// The Space's folder in `check`'s output.
pub const SPACE_DIR: &str = "space";

/// The onnxruntime-web version the page runs (as `tests/browser/package.json` pins it).
pub const ORT_WEB_VERSION: &str = "1.31.1";

/// Where the page fetches onnxruntime-web from.
pub const ORT_WEB_BASE: &str = "https://cdn.jsdelivr.net/npm/onnxruntime-web@1.31.1/dist/";

/// onnxruntime-web's files the page loads, with their sha256 (from the npm package).
pub const ORT_WEB_FILES: [(&str, &str); 4] = [
    (
        "ort.wasm.bundle.min.mjs",
        "51bd7168175767324ab0acfcfc4ca94a096a3826e3ebac9ccc4f195eb865f8dd",
    ),
    (
        "ort-wasm-simd-threaded.wasm",
        "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d",
    ),
    (
        "ort.webgpu.bundle.min.mjs",
        "c90275ffcd0e74e8929f527840ce9339399bfd45f11a74887e4b81a893907b70",
    ),
    (
        "ort-wasm-simd-threaded.asyncify.wasm",
        "ca319e9539cd0f1e291cf56074760121eaf39650f5dbf84b6e52c07f4b2944ec",
    ),
];

/// The Hub the page loads the model from.
pub const HUB_ENDPOINT: &str = "https://huggingface.co";

/// The page's files, as shipped.
const STATIC_FILES: [(&str, &str); 4] = [
    ("index.html", include_str!("../templates/space/index.html")),
    ("app.js", include_str!("../templates/space/app.js")),
    ("worker.js", include_str!("../templates/space/worker.js")),
    ("noise.js", include_str!("../templates/space/noise.js")),
];

/// The headers that make the page cross-origin isolated (`crossOriginIsolated`, hence wasm
/// threads) on its own origin, as the Space's `custom_headers`.
pub const CUSTOM_HEADERS: [(&str, &str); 3] = [
    ("cross-origin-embedder-policy", "require-corp"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "cross-origin"),
];

/// Every file of the Space for this release, by path: `(path, bytes)`.
pub fn files(
    config: &ReleaseConfig,
    manifest: &Manifest,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let space = config
        .space
        .as_ref()
        .ok_or_else(|| Problem::new("`release.toml` has no `[space]`"))?;
    let (file, variant) = generator_file(config, space)?;
    let entry = manifest.get(&file).ok_or_else(|| {
        Problem::new(format!(
            "the Space's generator `{file}` is not in the bundle"
        ))
    })?;
    let version = config.version.version.as_ref().ok_or_else(|| {
        Problem::new("the Space loads the model at the release's tag: no version is known")
    })?;
    let tag = format!("{}{version}", config.version.tag_prefix);
    let sha = |name: &str| {
        ORT_WEB_FILES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .unwrap_or_default()
    };
    let space_json = json!({
        "endpoint": HUB_ENDPOINT,
        "model_repo": config.model.hub_repo,
        "revision": tag,
        "generator": {
            "file": file,
            "variant": variant,
            "sha256": entry.sha256,
            "bytes": entry.bytes,
        },
        "defaults": {
            "breed": space.breed,
            "seed": space.seed.to_string(),
            "steps": space.steps,
            "guidance_scale": space.guidance_scale,
        },
        "onnxruntime_web": {
            "version": ORT_WEB_VERSION,
            "base": ORT_WEB_BASE,
            "wasm": {
                "module": "ort.wasm.bundle.min.mjs",
                "module_sha256": sha("ort.wasm.bundle.min.mjs"),
                "binary": "ort-wasm-simd-threaded.wasm",
                "binary_sha256": sha("ort-wasm-simd-threaded.wasm"),
            },
            "webgpu": {
                "module": "ort.webgpu.bundle.min.mjs",
                "module_sha256": sha("ort.webgpu.bundle.min.mjs"),
                "binary": "ort-wasm-simd-threaded.asyncify.wasm",
                "binary_sha256": sha("ort-wasm-simd-threaded.asyncify.wasm"),
            },
        },
    });
    let mut out = vec![
        (
            "README.md".to_owned(),
            readme(config, space, &tag).into_bytes(),
        ),
        ("space.json".to_owned(), pretty_json(&space_json)),
    ];
    for (name, text) in STATIC_FILES {
        let text = if name == "index.html" {
            text.replace("__TITLE__", &html_escape(&space.title))
        } else {
            text.to_owned()
        };
        out.push((name.to_owned(), text.into_bytes()));
    }
    out.sort();
    Ok(out)
}

/// The bundle path and variant name of the generator the page runs.
fn generator_file(
    config: &ReleaseConfig,
    space: &SpaceConfig,
) -> anyhow::Result<(String, Option<String>)> {
    let full = config
        .generator_onnx()
        .ok_or_else(|| Problem::new("`[space]` needs a generator `[[onnx]]`"))?;
    let Some(variant) = &space.variant else {
        return Ok((full.output.clone(), None));
    };
    if let Some(q) = full.quantize.as_ref().filter(|q| &q.variant == variant) {
        return Ok((q.output.clone(), Some(variant.clone())));
    }
    config
        .onnx
        .iter()
        .find(|o| o.variant.as_ref() == Some(variant))
        .map(|o| (o.output.clone(), Some(variant.clone())))
        .ok_or_else(|| {
            Problem::new(format!(
                "`space.generator` = `{variant}` is not a generator of this release"
            ))
            .into()
        })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The Space's `README.md`: its front matter (built as data and serialized, so no value can
/// break out of it) and a short text.
fn readme(config: &ReleaseConfig, space: &SpaceConfig, tag: &str) -> String {
    let mut headers = serde_json::Map::new();
    for (k, v) in CUSTOM_HEADERS {
        headers.insert(k.to_owned(), v.into());
    }
    let front = json!({
        "title": space.title,
        "emoji": space.emoji,
        "colorFrom": space.color_from,
        "colorTo": space.color_to,
        "sdk": "static",
        "app_file": "index.html",
        "pinned": false,
        "license": config.model.license,
        "short_description": space.short_description,
        "models": [config.model.hub_repo],
        "tags": ["onnxruntime-web", "tinydit"],
        "custom_headers": headers,
    });
    let yaml = serde_yaml_ng::to_string(&front).expect("JSON values serialize to YAML");
    format!(
        "---\n{yaml}---\n\n# {title}\n\nA demo of [{repo}](https://huggingface.co/{repo}) at `{tag}`: the \
         generator runs in your browser with ONNX Runtime Web {ORT_WEB_VERSION} (WebGPU when \
         available, else WebAssembly), loaded from the model repository at this release's tag and \
         checked against its sha256.\n\nThe noise comes from the project's seeded generator \
         (SplitMix64 and the polar method), so a seed gives the same noise bits here, in \
         `tinydit-release sample --seed` and in Python: same seed, same cat.\n",
        title = space.title.replace(['\n', '\r'], " "),
        repo = config.model.hub_repo,
    )
}

/// Problems with the Space's front matter, checked offline like the model card's.
pub fn validate(readme: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(yaml) = readme
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n").map(|(y, _)| y))
    else {
        return vec!["the Space's README.md has no front matter".to_owned()];
    };
    let data: serde_json::Value = match serde_yaml_ng::from_str(yaml) {
        Ok(d) => d,
        Err(e) => return vec![format!("the Space's front matter is not YAML: {e}")],
    };
    if data["sdk"] != "static" {
        problems.push("`sdk` is not `static`".to_owned());
    }
    for key in ["colorFrom", "colorTo"] {
        let ok = data[key]
            .as_str()
            .is_some_and(|c| crate::config::space::SPACE_COLORS.contains(&c));
        if !ok {
            problems.push(format!("`{key}` is not a Space colour"));
        }
    }
    if data["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
        problems.push("`title` is missing".to_owned());
    }
    if data["short_description"]
        .as_str()
        .is_some_and(|t| t.chars().count() > crate::config::space::MAX_SHORT_DESCRIPTION)
    {
        problems.push("`short_description` is longer than 60 characters".to_owned());
    }
    if data["models"].as_array().is_none_or(Vec::is_empty) {
        problems.push("`models` does not name the model repository".to_owned());
    }
    match data["custom_headers"].as_object() {
        Some(headers) => {
            for key in headers.keys() {
                if !CUSTOM_HEADERS.iter().any(|(k, _)| k == key) {
                    problems.push(format!(
                        "`custom_headers` has `{key}`, which Spaces do not allow"
                    ));
                }
            }
            for (key, value) in CUSTOM_HEADERS {
                if headers.get(key).and_then(|v| v.as_str()) != Some(value) {
                    problems.push(format!("`custom_headers.{key}` is not `{value}`"));
                }
            }
        }
        None => problems.push("`custom_headers` is missing".to_owned()),
    }
    problems
}

/// Writes the Space into `<out>/space/`: staged in a temporary folder beside it, then renamed
/// over an earlier one (which must be a plain folder, not a symlink).
pub fn write(out: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let target = out.join(SPACE_DIR);
    crate::output::refuse_symlink(&target, "the Space folder")?;
    let staged = tempfile::Builder::new()
        .prefix(".space-")
        .tempdir_in(out)
        .with_context(|| format!("failed to create a folder in `{}`", out.display()))?;
    for (name, bytes) in files {
        std::fs::write(staged.path().join(name), bytes)
            .with_context(|| format!("failed to write the Space's `{name}`"))?;
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("failed to replace `{}`", target.display()))?;
    }
    let staged = staged.keep();
    std::fs::rename(&staged, &target)
        .with_context(|| format!("failed to move the Space to `{}`", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_problems_are_named() {
        let bad = "---\nsdk: gradio\ncolorFrom: teal\ncolorTo: pink\ntitle: x\nmodels: []\n\
                   custom_headers:\n  x-frame-options: deny\n---\n";
        let problems = validate(bad);
        assert!(problems.iter().any(|p| p.contains("`sdk`")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("colorFrom")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("`models`")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("x-frame-options")),
            "{problems:?}"
        );
        assert!(validate("no front matter").len() == 1);
    }
}
