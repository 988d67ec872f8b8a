//! The release manifest: what a finished `check` decided and exactly which bytes it produced.
//!
//! `check` writes `<out>/manifest.json` after the verdict is known; `plan` and `publish` read
//! it back ([`ReleaseManifest::read`]) and [`ReleaseManifest::verify`] that every bundle file
//! still has its recorded size and sha256, so `publish --bundle DIR` can ship a bundle built by
//! an earlier step without re-running the checks, and never ships bytes that changed since.
//! The manifest is not part of the bundle: it records provenance (source commit, tool) that
//! would otherwise make identical releases differ.
//!
//! Layer 5, the manifest: imports `bundle`, the stages and the floors below them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub use crate::bundle::MANIFEST_FILE;
use crate::bundle::{BundleFile, MAX_MANIFEST_BYTES, hash_file};
use crate::error::Problem;

/// Version of the `manifest.json` layout; bumped on any incompatible change.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// Whether `check` passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every gate and check passed.
    Pass,
    /// Something blocks the release.
    Refused,
}

impl Verdict {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Refused => "refused",
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseManifest {
    /// [`MANIFEST_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `tinydit-release X.Y.Z`.
    pub tool: String,
    /// `[model] name`.
    pub model: String,
    /// Hub repository id.
    pub hub_repo: String,
    /// GitHub repository, `owner/name`, when known.
    pub github_repo: Option<String>,
    /// The release version, when known.
    pub version: Option<String>,
    /// The tag of the version (`tag-prefix` + version), when known.
    pub tag: Option<String>,
    /// The Git commit the release was built from and whether tracked files had changes.
    pub source: Option<crate::provenance::SourceCommit>,
    /// The release identity (`sha256:…` of the inputs, see `identity`), when the bundle has
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The verdict of `check`.
    pub outcome: Verdict,
    /// Every metric of the release (also in the bundle's `metrics.json`).
    #[serde(default)]
    pub metrics: crate::gates::Metrics,
    /// The gates and their verdicts, for the release notes.
    #[serde(default)]
    pub gates: Vec<GateLine>,
    /// Every bundle file, sorted by path.
    pub files: Vec<BundleFile>,
    /// The demo Space `check` wrote beside the bundle (`[space]`), released with the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<SpaceListing>,
}

/// The demo Space's repository and every file of `<out>/space/`, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceListing {
    /// The Space's repository id, `owner/name`.
    pub repo: String,
    /// Its files.
    pub files: Vec<BundleFile>,
}

/// One gate as the release notes show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateLine {
    /// The metric.
    pub metric: String,
    /// `min`, `max`, `max-regression` or `max-regression-pct`.
    pub kind: String,
    /// The threshold.
    pub threshold: f64,
    /// The measured value.
    pub value: Option<f64>,
    /// `pass`, `fail`, `missing` or `no-baseline`.
    pub verdict: String,
    /// Whether it blocks (`error`) or only reports (`warn`).
    pub blocking_severity: bool,
}

impl ReleaseManifest {
    /// Reads and parses a manifest.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display().to_string();
        let text = crate::input::read_text(path, &shown, "the manifest", MAX_MANIFEST_BYTES)?;
        Self::parse(&text).with_context(|| format!("`{shown}` is not a release manifest"))
    }

    /// Parses a manifest's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let manifest: Self = serde_json::from_str(text)?;
        if manifest.schema_version != MANIFEST_SCHEMA_VERSION {
            anyhow::bail!(
                "schema version {} is not {MANIFEST_SCHEMA_VERSION}, the one this tool reads",
                manifest.schema_version
            );
        }
        // Commit ids and the identity digest are shortened, compared and put into URLs and
        // release notes: they must be the ASCII they claim to be.
        if let Some(source) = &manifest.source {
            crate::names::commit_id(source.commit.clone(), || {
                "the source commit (`source.commit`)".to_owned()
            })?;
        }
        if let Some(identity) = &manifest.identity
            && !crate::identity::is_digest(identity)
        {
            anyhow::bail!(
                "the release identity (`identity`) is not `sha256:` and 64 lowercase hexadecimal \
                 digits"
            );
        }
        let space_files = manifest.space.iter().flat_map(|s| &s.files);
        for file in manifest.files.iter().chain(space_files) {
            crate::config::paths::check_bundle_path(&file.path)
                .map_err(|err| anyhow::anyhow!("file `{}` {err}", file.path))?;
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!("file `{}` has no sha256 digest", file.path);
            }
        }
        Ok(manifest)
    }

    /// Checks the Space folder against [`Self::space`] as [`Self::verify`] checks the bundle
    /// (`hash`: also every sha256). Nothing to check when the release has no Space.
    pub fn verify_space(&self, space_dir: &Path, hash: bool) -> anyhow::Result<()> {
        match &self.space {
            Some(space) => compare(&space.files, space_dir, hash, "the Space folder"),
            None => Ok(()),
        }
    }

    /// Checks that every listed file is in `bundle` with its recorded size and sha256, and that
    /// the bundle holds nothing else. Sizes are compared first, so a changed size costs no
    /// hashing.
    pub fn verify(&self, bundle: &Path) -> anyhow::Result<()> {
        self.compare(bundle, true)
    }

    /// [`Self::verify`] without re-hashing: names and sizes only. For a manifest this process
    /// wrote moments ago from these very files, whose digests were just computed.
    pub fn verify_listing(&self, bundle: &Path) -> anyhow::Result<()> {
        self.compare(bundle, false)
    }

    fn compare(&self, bundle: &Path, hash: bool) -> anyhow::Result<()> {
        compare(&self.files, bundle, hash, "the bundle")
    }

    /// Total bytes of the bundle.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Checks that every listed file is in `bundle` (`what`: the bundle or the Space folder) with
/// its recorded size (and with `hash`, sha256), and that the folder holds nothing else.
fn compare(files: &[BundleFile], bundle: &Path, hash: bool, what: &str) -> anyhow::Result<()> {
    // A link anywhere (the folder itself, a folder or a file in it) could make us measure,
    // hash and publish files from outside the bundle: refused before any file is looked at,
    // so no message ever shows the size of a file outside.
    match std::fs::symlink_metadata(bundle) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Problem::new(format!(
                "{what} `{}` is a symlink; a bundle holds only regular files and folders",
                bundle.display()
            ))
            .hint("publish the folder `tinydit-release check` wrote, not a link to it")
            .into());
        }
        Ok(meta) if meta.is_dir() => {}
        _ => {
            return Err(Problem::new(format!(
                "{what} `{}` is missing or not a folder",
                bundle.display()
            ))
            .hint("run `tinydit-release check` again to rebuild the bundle")
            .into());
        }
    }
    let mut problems = Vec::new();
    let mut present = Vec::new();
    crate::bundle::list_files(bundle, &mut present)?;
    for file in files {
        let path = bundle.join(&file.path);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if meta.len() != file.bytes {
                    problems.push(format!(
                        "`{}` has {} bytes, the manifest says {}",
                        file.path,
                        meta.len(),
                        file.bytes
                    ));
                    continue;
                }
                if !hash {
                    continue;
                }
                let (_, sha256) = hash_file(&path)?;
                if sha256 != file.sha256 {
                    problems.push(format!("`{}` changed: its sha256 differs", file.path));
                }
            }
            Ok(_) => problems.push(format!("`{}` is not a regular file", file.path)),
            Err(_) => problems.push(format!("`{}` is missing", file.path)),
        }
    }
    for (path, _, _) in &present {
        if !files.iter().any(|f| &f.path == path) {
            problems.push(format!("`{path}` is not in the manifest"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Problem::new(format!(
        "{what} `{}` does not match its manifest: {}",
        bundle.display(),
        problems.join("; ")
    ))
    .hint("run `tinydit-release check` again to rebuild the bundle")
    .into())
}

/// Where a built release lies: `<out>/manifest.json` and `<out>/bundle/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltRelease {
    /// The manifest file.
    pub manifest: PathBuf,
    /// The bundle folder.
    pub bundle: PathBuf,
    /// The demo Space's folder (`<out>/space/`), read when the manifest lists a Space.
    pub space: PathBuf,
    /// Whether `check` built it in this process, so the manifest's digests were computed from
    /// these files moments ago and need not be computed again (names and sizes still are).
    pub just_built: bool,
}

impl BuiltRelease {
    /// The release in `check`'s output folder `out`, built by an earlier step: verified in full.
    pub fn in_out_dir(out: &Path) -> Self {
        Self {
            manifest: out.join(MANIFEST_FILE),
            bundle: out.join("bundle"),
            space: out.join(crate::space::SPACE_DIR),
            just_built: false,
        }
    }

    /// The release `check` has just written to `out` in this process.
    pub fn just_built(out: &Path) -> Self {
        Self {
            just_built: true,
            ..Self::in_out_dir(out)
        }
    }

    /// `--bundle DIR`: either `check`'s output folder (holding `manifest.json` and `bundle/`)
    /// or the `bundle/` folder itself. `publish` writes into it (the files it adopts from the
    /// Hub and their manifest), so it is refused, as an output is, when it is or goes through
    /// a symlink; so is a `manifest.json` that is a symlink.
    pub fn locate(dir: &Path) -> anyhow::Result<Self> {
        crate::output::refuse_symlink(dir, "`--bundle`")?;
        let found = if dir.join(MANIFEST_FILE).is_file() {
            Some(Self::in_out_dir(dir))
        } else if let Some(parent) = dir.parent()
            && parent.join(MANIFEST_FILE).is_file()
            && dir.file_name().is_some_and(|n| n == "bundle")
        {
            Some(Self::in_out_dir(parent))
        } else {
            None
        };
        if let Some(found) = found {
            crate::output::refuse_symlink(&found.manifest, "the manifest")?;
            return Ok(found);
        }
        Err(Problem::new(format!(
            "`--bundle` `{}` holds no `{MANIFEST_FILE}`",
            dir.display()
        ))
        .hint("pass the folder `tinydit-release check --out DIR` wrote (it holds `manifest.json` and `bundle/`)")
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: Vec<BundleFile>) -> ReleaseManifest {
        ReleaseManifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            tool: "tinydit-release 0.1.0".to_owned(),
            model: "m".to_owned(),
            hub_repo: "o/m".to_owned(),
            github_repo: Some("o/r".to_owned()),
            version: Some("1.2.3".to_owned()),
            tag: Some("v1.2.3".to_owned()),
            source: Some(crate::provenance::SourceCommit::clean("a".repeat(40))),
            identity: None,
            outcome: Verdict::Pass,
            metrics: crate::gates::Metrics::new(),
            gates: Vec::new(),
            files,
            space: None,
        }
    }

    fn bundle_with(files: &[(&str, &[u8])]) -> (tempfile::TempDir, ReleaseManifest) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut listed = Vec::new();
        for (path, bytes) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(&full, bytes).expect("write");
            let (size, sha256) = hash_file(&full).expect("hash");
            listed.push(BundleFile {
                path: (*path).to_owned(),
                bytes: size,
                sha256,
            });
        }
        (dir, manifest(listed))
    }

    #[test]
    fn a_manifest_round_trips_and_verifies() {
        let (dir, manifest) = bundle_with(&[("README.md", b"# card"), ("onnx/g.onnx", b"x")]);
        let text = serde_json::to_string(&manifest).expect("json");
        let back = ReleaseManifest::parse(&text).expect("parses");
        assert_eq!(back, manifest);
        back.verify(dir.path()).expect("verifies");
    }

    #[test]
    fn verify_names_every_changed_missing_and_extra_file() {
        let (dir, manifest) = bundle_with(&[("a.bin", b"aaaa"), ("b.bin", b"bbbb"), ("c", b"c")]);
        std::fs::write(dir.path().join("a.bin"), b"aaab").expect("same size, other bytes");
        std::fs::write(dir.path().join("b.bin"), b"bb").expect("other size");
        std::fs::remove_file(dir.path().join("c")).expect("rm");
        std::fs::write(dir.path().join("extra"), b"?").expect("extra");
        let err = manifest.verify(dir.path()).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("`a.bin` changed"), "{text}");
        assert!(
            text.contains("`b.bin` has 2 bytes, the manifest says 4"),
            "{text}"
        );
        assert!(text.contains("`c` is missing"), "{text}");
        assert!(text.contains("`extra` is not in the manifest"), "{text}");
        // Without hashing, everything but the same-size change is still found.
        let text = manifest
            .verify_listing(dir.path())
            .expect_err("refused")
            .to_string();
        assert!(!text.contains("`a.bin`"), "{text}");
        assert!(text.contains("`b.bin` has 2 bytes") && text.contains("`c` is missing"));
        assert!(text.contains("`extra` is not in the manifest"), "{text}");
    }

    /// Issue 14: a link anywhere in a bundle (a file, a folder, the bundle itself) is refused
    /// before anything is measured, even when its target has the recorded bytes, so nothing
    /// from outside is published and no message shows an outside file's size.
    #[cfg(unix)]
    #[test]
    fn a_bundle_with_a_symlink_is_refused_before_any_file_is_measured() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(outside.path().join("onnx")).expect("mkdir");
        std::fs::write(outside.path().join("onnx/g.onnx"), b"x").expect("same bytes");
        std::fs::write(outside.path().join("secret"), vec![b's'; 123_457]).expect("write");
        let files: &[(&str, &[u8])] = &[("README.md", b"# card"), ("onnx/g.onnx", b"x")];
        for (link, target) in [
            ("onnx", outside.path().join("onnx")),
            ("README.md", outside.path().join("secret")),
            ("extra", outside.path().join("secret")),
        ] {
            let (dir, manifest) = bundle_with(files);
            let path = dir.path().join(link);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("rm");
            } else if path.exists() {
                std::fs::remove_file(&path).expect("rm");
            }
            std::os::unix::fs::symlink(&target, &path).expect("symlink");
            for check in [ReleaseManifest::verify, ReleaseManifest::verify_listing] {
                let err = check(&manifest, dir.path()).expect_err(link).to_string();
                assert!(err.contains(&format!("`{link}`")), "{link}: {err}");
                assert!(err.contains("is a symlink"), "{link}: {err}");
                assert!(!err.contains("123457"), "an outside size leaked: {err}");
            }
        }
        let (dir, manifest) = bundle_with(files);
        let link = outside.path().join("bundle-link");
        std::os::unix::fs::symlink(dir.path(), &link).expect("symlink");
        let err = manifest
            .verify(&link)
            .expect_err("the bundle itself")
            .to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }

    #[test]
    fn parse_refuses_escaping_paths_other_schemas_and_missing_digests() {
        let (_dir, mut bad) = bundle_with(&[("a", b"a")]);
        bad.files[0].path = "../a".to_owned();
        let err = ReleaseManifest::parse(&serde_json::to_string(&bad).expect("json"))
            .expect_err("escaping path");
        assert!(err.to_string().contains("`../a`"), "{err}");
        let (_dir, mut bad) = bundle_with(&[("a", b"a")]);
        bad.schema_version = 99;
        assert!(ReleaseManifest::parse(&serde_json::to_string(&bad).expect("json")).is_err());
        let (_dir, mut bad) = bundle_with(&[("a", b"a")]);
        bad.files[0].sha256 = "xyz".to_owned();
        assert!(ReleaseManifest::parse(&serde_json::to_string(&bad).expect("json")).is_err());
    }

    /// Issue 17: the Space's listing is held to the bundle's rules (paths that stay inside, real
    /// digests), and its folder is checked like the bundle, links and strays included.
    #[test]
    fn the_spaces_listing_is_checked_like_the_bundles() {
        let (dir, mut manifest) = bundle_with(&[("a", b"a")]);
        let space = dir.path().join("space");
        std::fs::create_dir(&space).expect("mkdir");
        std::fs::write(space.join("index.html"), b"page").expect("write");
        let (bytes, sha256) = hash_file(&space.join("index.html")).expect("hash");
        manifest.space = Some(SpaceListing {
            repo: "o/demo".to_owned(),
            files: vec![BundleFile {
                path: "index.html".to_owned(),
                bytes,
                sha256,
            }],
        });
        let text = serde_json::to_string(&manifest).expect("json");
        let back = ReleaseManifest::parse(&text).expect("parses");
        back.verify_space(&space, true).expect("matches");

        std::fs::write(space.join("stray.js"), b"x").expect("write");
        let err = back.verify_space(&space, false).expect_err("stray file");
        assert!(
            err.to_string()
                .contains("`stray.js` is not in the manifest"),
            "{err}"
        );
        std::fs::remove_file(space.join("stray.js")).expect("rm");
        std::fs::write(space.join("index.html"), b"evil").expect("write");
        let err = back.verify_space(&space, true).expect_err("changed");
        assert!(err.to_string().contains("`index.html` changed"), "{err}");
        let link = dir.path().join("space-link");
        std::os::unix::fs::symlink(&space, &link).expect("symlink");
        let err = back.verify_space(&link, true).expect_err("link");
        assert!(err.to_string().contains("is a symlink"), "{err}");

        let mut bad = manifest.clone();
        if let Some(space) = bad.space.as_mut() {
            space.files[0].path = "../index.html".to_owned();
        }
        let err = ReleaseManifest::parse(&serde_json::to_string(&bad).expect("json"))
            .expect_err("escaping path");
        assert!(err.to_string().contains("`../index.html`"), "{err}");
        let mut bad = manifest;
        if let Some(space) = bad.space.as_mut() {
            space.files[0].sha256 = "xyz".to_owned();
        }
        assert!(ReleaseManifest::parse(&serde_json::to_string(&bad).expect("json")).is_err());
    }

    /// Issue 14: commit ids and the identity are shortened and put into URLs and notes later;
    /// a manifest from another job must hold them as the ASCII they claim to be.
    #[test]
    fn parse_refuses_a_source_commit_or_identity_that_is_not_hex() {
        let parse = |m: &ReleaseManifest| {
            ReleaseManifest::parse(&serde_json::to_string(m).expect("json"))
                .map_err(|err| format!("{err:#}"))
        };
        let (_dir, mut good) = bundle_with(&[("a", b"a")]);
        good.identity = Some(format!("sha256:{}", "0f".repeat(32)));
        parse(&good).expect("hex");
        for commit in [
            "猫".repeat(14),
            "a".repeat(39),
            format!("{}/../x", "a".repeat(35)),
        ] {
            let mut bad = good.clone();
            bad.source = Some(crate::provenance::SourceCommit::clean(commit));
            let err = parse(&bad).expect_err("not a commit id");
            assert!(
                err.contains("the source commit (`source.commit`) is `"),
                "{err}"
            );
        }
        for identity in [
            format!("sha256:{}", "猫".repeat(21)),
            format!("sha256:{}", "0F".repeat(32)),
            "sha256:`x`".to_owned(),
        ] {
            let mut bad = good.clone();
            bad.identity = Some(identity);
            let err = parse(&bad).expect_err("not a digest");
            assert!(err.contains("release identity"), "{err}");
        }
    }

    #[test]
    fn locate_accepts_the_out_folder_or_its_bundle() {
        let out = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(out.path().join("bundle")).expect("mkdir");
        assert!(BuiltRelease::locate(out.path()).is_err());
        std::fs::write(out.path().join(MANIFEST_FILE), b"{}").expect("write");
        let expected = BuiltRelease::in_out_dir(out.path());
        assert_eq!(BuiltRelease::locate(out.path()).expect("out"), expected);
        assert_eq!(
            BuiltRelease::locate(&out.path().join("bundle")).expect("bundle"),
            expected
        );
    }
}
