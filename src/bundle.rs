//! The release bundle: the folder that goes to the Hub, and its manifest.
//!
//! Everything is written into a staging folder next to the final one (`<out>/.bundle-XXXX`) and
//! renamed to `<out>/bundle` only when every stage has finished, so a failure leaves no partial
//! bundle behind (the staging folder is removed when dropped). [`Manifest`] lists every file with
//! its size and sha256; the release manifest (`crate::manifest`) that `plan` and `publish` read
//! is built from it once the verdict is known. The files the tool generates for the bundle
//! (`config.json`, `generation_config.json`, `metrics.json`) are defined here too.
//!
//! Layer 5, the bundle: imports the stages and the floors below them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::paths::check_bundle_path;
use crate::error::Problem;

/// The name of the manifest in `check`'s output folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Largest manifest read back (a bundle of a few thousand files is far below this).
pub(crate) const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Path inside the bundle, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
}

/// Every file of a finished bundle, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The files.
    pub files: Vec<BundleFile>,
}

impl Manifest {
    /// The entry for a bundle path.
    pub fn get(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// A bundle being assembled.
#[derive(Debug)]
pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// Creates the staging folder inside `out` (created if needed). Refuses, before any work,
    /// an `out` that is or goes through a symlink and an earlier `<out>/bundle` that
    /// [`Staging::finish`] could not replace.
    pub fn new(out: &Path) -> anyhow::Result<Self> {
        crate::output::prepare_dir(out, "--out")?;
        check_replaceable(out)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}-",
                crate::output::STAGING_PREFIX,
                std::process::id()
            ))
            .tempdir_in(out)
            .with_context(|| format!("failed to create a staging folder in `{}`", out.display()))?;
        Ok(Self { dir })
    }

    /// Where a bundle path lives in the staging folder; parent folders are created.
    pub fn path_for(&self, bundle_path: &str) -> anyhow::Result<PathBuf> {
        check_bundle_path(bundle_path).map_err(|err| {
            anyhow::anyhow!("bundle path `{bundle_path}` {err}; this may indicate a bug")
        })?;
        let path = self.dir.path().join(bundle_path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        Ok(path)
    }

    /// The staging folder itself.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Copies a file into the bundle.
    pub fn copy(&self, bundle_path: &str, source: &Path) -> anyhow::Result<()> {
        let target = self.path_for(bundle_path)?;
        std::fs::copy(source, &target).with_context(|| {
            format!(
                "failed to copy `{}` into the bundle as `{bundle_path}`",
                source.display()
            )
        })?;
        Ok(())
    }

    /// Writes bytes as a bundle file.
    pub fn write(&self, bundle_path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let target = self.path_for(bundle_path)?;
        crate::output::write_atomically(&target, bytes)
            .with_context(|| format!("failed to write `{bundle_path}` into the bundle"))
    }

    /// Every file staged so far with its size, by bundle path. Reads no file contents, so it is
    /// cheap enough to call between stages; digests are computed once, by [`Staging::finish`].
    pub fn sizes(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut files = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut files)?;
        Ok(files
            .into_iter()
            .map(|(path, _, bytes)| (path, bytes))
            .collect())
    }

    /// Every file staged so far, with sizes and digests, sorted by path.
    fn manifest(&self) -> anyhow::Result<Manifest> {
        let mut files = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut files)?;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let files = files
            .into_iter()
            .map(|(path, absolute, _)| {
                let (bytes, sha256) = hash_file(&absolute)?;
                Ok(BundleFile {
                    path,
                    bytes,
                    sha256,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Manifest { files })
    }

    /// Moves the staged bundle to `<out>/bundle`, replacing an earlier one of ours (see
    /// [`check_replaceable`]), with `SHA256SUMS` added, and returns its file list. An earlier `<out>/manifest.json` is
    /// removed first: it described the old bundle, and the caller writes the new one once the
    /// verdict is known.
    pub fn finish(self, out: &Path) -> anyhow::Result<Manifest> {
        let mut manifest = self.manifest()?;
        // `SHA256SUMS` lists every other file with the digests just computed, and is listed
        // itself (`crate::sums`).
        self.write(
            crate::sums::SUMS_FILE,
            crate::sums::render(
                manifest
                    .files
                    .iter()
                    .map(|f| (f.path.as_str(), f.sha256.as_str())),
            )
            .as_bytes(),
        )?;
        let (bytes, sha256) = hash_file(&self.dir.path().join(crate::sums::SUMS_FILE))?;
        manifest.files.retain(|f| f.path != crate::sums::SUMS_FILE);
        manifest.files.push(BundleFile {
            path: crate::sums::SUMS_FILE.to_owned(),
            bytes,
            sha256,
        });
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        check_replaceable(out)?;
        let stale = out.join(MANIFEST_FILE);
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("failed to remove the earlier `{}`", stale.display()))?;
        }
        let target = out.join("bundle");
        if target.exists() {
            std::fs::remove_dir_all(&target).with_context(|| {
                format!(
                    "failed to replace the earlier bundle `{}`",
                    target.display()
                )
            })?;
        }
        let staged = self.dir.keep();
        std::fs::rename(&staged, &target)
            .with_context(|| format!("failed to move the bundle to `{}`", target.display()))?;
        Ok(manifest)
    }
}

/// Refuses to replace `<out>/bundle` unless it is a bundle this tool wrote: a real folder (not
/// a symlink) holding only regular files and folders, every file listed in the
/// `<out>/manifest.json` beside it (or no file at all). `--out .` in a repository with a
/// `bundle/` folder of its own, or a bundle folder a user added files to, is left alone.
fn check_replaceable(out: &Path) -> anyhow::Result<()> {
    let target = out.join("bundle");
    crate::output::refuse_symlink(&target, "the bundle folder")?;
    let Ok(meta) = std::fs::symlink_metadata(&target) else {
        return Ok(());
    };
    let not_ours = |why: String| -> anyhow::Error {
        Problem::new(format!(
            "the earlier bundle folder `{}` is not one tinydit-release wrote: {why}",
            target.display()
        ))
        .hint(
            "move or remove it yourself, or choose another `--out`; an earlier bundle is only \
             replaced when the `manifest.json` beside it lists every file in it",
        )
        .into()
    };
    if !meta.is_dir() {
        return Err(not_ours("it is not a folder".to_owned()));
    }
    let mut files = Vec::new();
    walk(&target, &target, &mut files).map_err(|err| not_ours(format!("{err:#}")))?;
    if files.is_empty() {
        return Ok(());
    }
    let manifest = out.join(MANIFEST_FILE);
    let Some(listed) = listed_paths(&manifest) else {
        return Err(not_ours(format!(
            "there is no readable `{}` beside it",
            manifest.display()
        )));
    };
    let foreign: Vec<String> = files
        .iter()
        .filter(|(path, _, _)| !listed.contains(path))
        .map(|(path, _, _)| format!("`{path}`"))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let shown = foreign.len().min(5);
    let more = if foreign.len() > shown {
        format!(" and {} more", foreign.len() - shown)
    } else {
        String::new()
    };
    Err(not_ours(format!(
        "{}{more} not listed in `{}`",
        foreign[..shown].join(", "),
        manifest.display()
    )))
}

/// `(bundle path, absolute path, size)` of every file below a finished bundle folder. A symlink
/// or anything else that is not a regular file or a folder is refused: a bundle never holds
/// one, and following it would publish (or measure) a file from outside.
pub fn list_files(bundle: &Path, files: &mut Vec<(String, PathBuf, u64)>) -> anyhow::Result<()> {
    walk(bundle, bundle, files)
}

/// The bundle paths an earlier `manifest.json` lists, read leniently (any schema version):
/// what `check` may replace. `None` when there is no readable manifest (or it is a symlink).
pub fn listed_paths(path: &Path) -> Option<BTreeSet<String>> {
    if std::fs::symlink_metadata(path)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let shown = path.display().to_string();
    let text = crate::input::read_text(path, &shown, "the manifest", MAX_MANIFEST_BYTES).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value
        .get("files")?
        .as_array()?
        .iter()
        .map(|file| file.get("path")?.as_str().map(str::to_owned))
        .collect()
}

/// `metrics.json` in the bundle: this release's metrics, which the next release compares
/// against (`check --baseline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleMetrics {
    /// The release version, when known.
    pub version: Option<String>,
    /// Every metric of the release.
    pub metrics: crate::gates::Metrics,
}

impl BundleMetrics {
    /// Parses a `metrics.json`; a bare map of names to numbers is accepted too.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        match value.get("metrics") {
            Some(metrics) => Ok(Self {
                version: value
                    .get("version")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
                metrics: serde_json::from_value(metrics.clone())?,
            }),
            None => Ok(Self {
                version: None,
                metrics: serde_json::from_value(value)?,
            }),
        }
    }
}

/// `config.json`: the architecture from the checkpoint's `config` dict plus the I/O contract.
/// `sample` reads it back from a bundle; keep its keys.
pub fn model_config(
    config: &crate::config::ReleaseConfig,
    architecture: Option<&BTreeMap<String, serde_json::Value>>,
    parameters: Option<u64>,
) -> serde_json::Value {
    let mut map: serde_json::Map<String, serde_json::Value> = architecture
        .map(|a| a.clone().into_iter().collect())
        .unwrap_or_default();
    map.insert("model_name".to_owned(), config.model.name.clone().into());
    if let Some(g) = &config.generator {
        map.entry("image_size").or_insert(g.image_size.into());
        map.entry("in_channels").or_insert(g.channels.into());
        map.entry("num_classes").or_insert(g.classes.len().into());
        map.insert("classes".to_owned(), g.classes.clone().into());
        map.insert(
            "onnx_io".to_owned(),
            serde_json::json!({
                "inputs": {"noise": g.noise_input, "timestep": g.timestep_input, "label": g.label_input},
                "output": g.output,
            }),
        );
    }
    if let Some(p) = parameters {
        map.insert("num_parameters".to_owned(), p.into());
    }
    serde_json::Value::Object(map)
}

/// `generation_config.json`: the sampling defaults, when there is a generator. `sample` reads
/// it back from a bundle; keep its keys.
pub fn generation_config(config: &crate::config::ReleaseConfig) -> Option<serde_json::Value> {
    let g = config.generator.as_ref()?;
    Some(serde_json::json!({
        // Where the generator is in the bundle, for scripts that run it (`inference.py`).
        "generator_file": config.generator_onnx().map(|o| o.output.clone()),
        "sampler": "euler",
        "objective": "flow-matching",
        "time": "t from 0 (noise) to 1 (image), t_i = i / steps",
        "steps": g.steps,
        "cfg": g.cfg,
        "cfg_scale": g.cfg_scale,
        "uncond_class": g.uncond_class,
        "image_size": g.image_size,
        "channels": g.channels,
        "output_range": [-1.0, 1.0],
    }))
}

/// Pretty JSON with a final newline, the form of every JSON file the tool writes.
pub fn pretty_json(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("reports serialize to JSON");
    bytes.push(b'\n');
    bytes
}

/// `(bundle path, absolute path, size)` of every file below `dir`.
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf, u64)>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        let relative = path
            .strip_prefix(root)
            .expect("walked from the root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if kind.is_dir() {
            walk(root, &path, files)?;
        } else if kind.is_file() {
            let bytes = entry.metadata()?.len();
            files.push((relative, path, bytes));
        } else {
            let what = if kind.is_symlink() {
                "a symlink"
            } else {
                "neither a file nor a folder"
            };
            return Err(Problem::new(format!(
                "`{relative}` in `{}` is {what}; a bundle holds only regular files and folders",
                root.display()
            ))
            .hint("rebuild the bundle with `tinydit-release check`; never publish a bundle with links")
            .into());
        }
    }
    Ok(())
}

/// Size and lowercase hex sha256 of a file.
pub fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let bytes = file
        .metadata()
        .with_context(|| format!("failed to read `{}`", path.display()))?
        .len();
    let sha256 = crate::artifacts::convert::hash_file(&file)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok((bytes, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_bundle_replaces_the_old_one_and_lists_every_file() {
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(out.path().join("bundle/stale")).expect("mkdir");
        let staging = Staging::new(out.path()).expect("staging");
        staging.write("README.md", b"# card\n").expect("write");
        staging.write("onnx/model.onnx", b"onnx").expect("write");
        let manifest = staging.finish(out.path()).expect("finish");
        let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["README.md", "SHA256SUMS", "onnx/model.onnx"]);
        let onnx = manifest.get("onnx/model.onnx").expect("listed");
        assert_eq!(onnx.bytes, 4);
        assert_eq!(
            onnx.sha256,
            "87e93f89f2be0db364e8be052f79f389e6c2da239831922e24513288af522a43"
        );
        // SHA256SUMS lists every other file with the manifest's digests, and is listed itself.
        let sums = std::fs::read_to_string(out.path().join("bundle/SHA256SUMS")).expect("sums");
        assert_eq!(
            sums,
            format!(
                "{}  README.md\n{}  onnx/model.onnx\n",
                manifest.get("README.md").expect("card").sha256,
                onnx.sha256
            )
        );
        let (bytes, sha256) = hash_file(&out.path().join("bundle/SHA256SUMS")).expect("hash");
        let listed = manifest.get("SHA256SUMS").expect("listed");
        assert_eq!(
            (listed.bytes, listed.sha256.as_str()),
            (bytes, sha256.as_str())
        );
        assert_eq!(
            std::fs::read(out.path().join("bundle/onnx/model.onnx")).expect("moved"),
            b"onnx"
        );
        assert!(!out.path().join("bundle/stale").exists());
        // No staging folder is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(out.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bundle-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// Issue 14: an earlier `bundle/` is replaced only when the `manifest.json` beside it lists
    /// every file in it; anything else is left as it was, refused before any work.
    #[test]
    fn only_a_bundle_of_ours_is_replaced() {
        let out = tempfile::tempdir().expect("tempdir");
        let bundle = out.path().join("bundle");
        std::fs::create_dir_all(bundle.join("onnx")).expect("mkdir");
        std::fs::write(bundle.join("README.md"), b"user notes").expect("write");
        std::fs::write(bundle.join("onnx/keep.onnx"), b"user model").expect("write");
        let err = Staging::new(out.path())
            .expect_err("no manifest")
            .to_string();
        assert!(
            err.contains("is not one tinydit-release wrote")
                && err.contains("no readable")
                && err.contains("manifest.json"),
            "{err}"
        );
        // A manifest that lists some of the files only.
        std::fs::write(
            out.path().join("manifest.json"),
            br#"{"files": [{"path": "README.md"}]}"#,
        )
        .expect("write");
        let err = Staging::new(out.path()).expect_err("unlisted").to_string();
        assert!(err.contains("`onnx/keep.onnx` not listed"), "{err}");
        // Checked again when the staged bundle is moved into place.
        let other = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(other.path()).expect("staging");
        staging.write("README.md", b"new").expect("write");
        assert!(staging.finish(out.path()).is_err());
        assert_eq!(
            std::fs::read(bundle.join("onnx/keep.onnx")).expect("kept"),
            b"user model"
        );
        assert!(out.path().join("manifest.json").is_file(), "left as it was");
        // Listed in full: ours, replaced.
        std::fs::write(
            out.path().join("manifest.json"),
            br#"{"files": [{"path": "README.md"}, {"path": "onnx/keep.onnx"}]}"#,
        )
        .expect("write");
        let staging = Staging::new(out.path()).expect("ours");
        staging.write("README.md", b"new").expect("write");
        staging.finish(out.path()).expect("replaced");
        assert!(!bundle.join("onnx").exists());
        // A file where the folder would go.
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::write(out.path().join("bundle"), b"x").expect("write");
        let err = Staging::new(out.path()).expect_err("a file").to_string();
        assert!(err.contains("it is not a folder"), "{err}");
    }

    /// Issue 14: a link inside an earlier bundle is never ours (a bundle never holds one).
    #[cfg(unix)]
    #[test]
    fn a_bundle_with_a_symlink_inside_is_not_replaced() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("precious"), b"keep").expect("write");
        let out = tempfile::tempdir().expect("tempdir");
        let bundle = out.path().join("bundle");
        std::fs::create_dir_all(&bundle).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), bundle.join("onnx")).expect("symlink");
        std::fs::write(
            out.path().join("manifest.json"),
            br#"{"files": [{"path": "onnx/precious"}]}"#,
        )
        .expect("write");
        let err = Staging::new(out.path()).expect_err("a link").to_string();
        assert!(err.contains("`onnx`") && err.contains("a symlink"), "{err}");
        assert!(outside.path().join("precious").is_file());
    }

    #[test]
    fn a_dropped_staging_folder_leaves_nothing() {
        let out = tempfile::tempdir().expect("tempdir");
        {
            let staging = Staging::new(out.path()).expect("staging");
            staging.write("README.md", b"x").expect("write");
        }
        assert_eq!(std::fs::read_dir(out.path()).expect("list").count(), 0);
    }

    #[test]
    fn digests_are_sha256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            hash_file(&path).expect("hash"),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned()
            )
        );
    }

    #[test]
    fn bundle_paths_cannot_escape() {
        let out = tempfile::tempdir().expect("tempdir");
        let staging = Staging::new(out.path()).expect("staging");
        assert!(staging.write("../escape", b"x").is_err());
        assert!(!out.path().join("escape").exists());
    }
}
