//! What a re-run takes from the release that is already out.
//!
//! A re-run of `publish` after a failure (or after success) builds the bundle again. The files
//! that carry measurements (the card's and `metrics.json`'s latencies) then differ from those a
//! first run committed to the Hub, although the release is the same: same tool, version, source
//! commit and input files, which the release identity (`crate::identity`) records. When the Hub
//! holds this release, at its tag or at the head of its branch (the commit landed but the tag did
//! not), and its identity is ours, the re-run adopts the Hub's copy of every small regular file
//! that differs: the bytes are read back, checked against the Hub's listed size and git oid, and
//! replace ours. Everything after that (the plan, the GitHub assets, the verification of the Hub
//! commit) then sees the release exactly as it was published, so no second commit is made and the
//! GitHub assets are byte-equal to the Hub's files.
//!
//! Large (LFS/Xet) files are never adopted: they carry no measurement, and one that differs
//! despite the same identity means the build did not reproduce, which the plan refuses by name.

use std::collections::BTreeMap;
use std::path::Path;

use super::hub::Hub;
use super::plan::{HubState, RemoteFile, is_same};
use crate::bundle::{BundleFile, BundleMetrics};
use crate::identity::ReleaseIdentity;
use crate::manifest::ReleaseManifest;

/// Largest file adopted from the Hub (the Hub stores files above 10 MB through LFS/Xet).
pub const MAX_ADOPTED_BYTES: u64 = 10 * 1024 * 1024;

/// Files taken from the released revision, by bundle path.
#[derive(Debug, Default)]
pub struct Adopted {
    /// The Hub revision they come from (a tag or a branch).
    pub revision: String,
    /// Path -> the released bytes.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Adopted {
    /// Nothing was adopted.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The released bytes of a bundle path, when adopted.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// The manifest as released: adopted files with their sizes and digests, and the metrics
    /// (and gate values) of an adopted `metrics.json`.
    pub fn apply(&self, manifest: &mut ReleaseManifest) {
        for file in &mut manifest.files {
            if let Some(bytes) = self.files.get(&file.path) {
                *file = BundleFile {
                    path: file.path.clone(),
                    bytes: bytes.len() as u64,
                    sha256: crate::digest::sha256_hex(bytes),
                };
            }
        }
        let released = self
            .get("metrics.json")
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| BundleMetrics::parse(text).ok());
        if let Some(released) = released {
            for gate in &mut manifest.gates {
                if let Some(value) = released.metrics.get(&gate.metric) {
                    gate.value = Some(*value);
                }
            }
            manifest.metrics = released.metrics;
        }
    }

    /// Writes the adopted files into the bundle folder, each through a temporary file and a
    /// rename.
    pub fn write(&self, bundle: &Path) -> anyhow::Result<()> {
        for (path, bytes) in &self.files {
            crate::output::write_atomically(&bundle.join(path), bytes)?;
        }
        Ok(())
    }
}

/// The released revision whose identity is ours, with its tree: the tag when it exists, else the
/// head of the branch when the last commit there is this release.
fn released_revision<'a>(
    state: &'a HubState,
    tag: &'a str,
    branch: &'a str,
    ours: &ReleaseIdentity,
) -> Option<(&'a str, &'a [RemoteFile])> {
    if state.tag(tag).is_some() {
        let identity = state.tag_identity.as_ref()?.as_ref().ok()?;
        let tree = state.tag_tree.as_deref()?;
        return identity.matches(ours).then_some((tag, tree));
    }
    let identity = state.head_identity.as_ref()?.as_ref().ok()?;
    (identity.matches(ours) && state.branch(branch).is_some()).then_some((branch, &state.tree))
}

/// Reads the released copies of the bundle files that differ from ours, when the Hub holds this
/// release (same identity). Nothing is written.
pub async fn from_hub(
    hub: &Hub,
    state: &HubState,
    tag: &str,
    branch: &str,
    ours: &ReleaseIdentity,
    manifest: &ReleaseManifest,
    bundle: &Path,
) -> anyhow::Result<Adopted> {
    let Some((revision, tree)) = released_revision(state, tag, branch, ours) else {
        return Ok(Adopted::default());
    };
    let mut adopted = Adopted {
        revision: revision.to_owned(),
        files: BTreeMap::new(),
    };
    for file in &manifest.files {
        let Some(remote) = tree.iter().find(|r| r.path == file.path) else {
            continue;
        };
        let local = |f: &BundleFile| super::hub::git_blob_oid(&bundle.join(&f.path)).ok();
        if remote.lfs || remote.size > MAX_ADOPTED_BYTES || is_same(file, remote, &local) {
            continue;
        }
        let bytes = hub
            .read_small_file(revision, remote, MAX_ADOPTED_BYTES)
            .await?;
        adopted.files.insert(file.path.clone(), bytes);
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{GateLine, MANIFEST_SCHEMA_VERSION, Verdict};

    #[test]
    #[allow(clippy::float_cmp)]
    fn the_manifest_takes_the_released_files_and_metrics() {
        let mut manifest = ReleaseManifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            tool: "t".to_owned(),
            model: "m".to_owned(),
            hub_repo: "o/m".to_owned(),
            github_repo: None,
            version: Some("1.0.0".to_owned()),
            tag: Some("v1.0.0".to_owned()),
            source: None,
            identity: None,
            outcome: Verdict::Pass,
            metrics: [("smoke.latency_ms_p50".to_owned(), 9.0)].into(),
            gates: vec![GateLine {
                metric: "smoke.latency_ms_p50".to_owned(),
                kind: "max".to_owned(),
                threshold: 100.0,
                value: Some(9.0),
                verdict: "pass".to_owned(),
                blocking_severity: true,
            }],
            files: vec![
                BundleFile {
                    path: "metrics.json".to_owned(),
                    bytes: 1,
                    sha256: "0".repeat(64),
                },
                BundleFile {
                    path: "model.safetensors".to_owned(),
                    bytes: 5,
                    sha256: "1".repeat(64),
                },
            ],
            space: None,
        };
        let released = br#"{"version": "1.0.0", "metrics": {"smoke.latency_ms_p50": 7.5}}"#;
        let adopted = Adopted {
            revision: "v1.0.0".to_owned(),
            files: [("metrics.json".to_owned(), released.to_vec())].into(),
        };
        adopted.apply(&mut manifest);
        assert_eq!(manifest.files[0].bytes, released.len() as u64);
        assert_eq!(
            manifest.files[0].sha256,
            crate::digest::sha256_hex(released)
        );
        assert_eq!(manifest.files[1].sha256, "1".repeat(64));
        assert_eq!(manifest.metrics["smoke.latency_ms_p50"], 7.5);
        assert_eq!(manifest.gates[0].value, Some(7.5));
    }
}
