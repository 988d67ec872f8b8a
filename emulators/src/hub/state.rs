//! The Hub emulator's persistent state: configuration, tokens, repos with their commit
//! history, branches and tags, and the sha256 → Xet hash map learnt from CAS shards. All of it
//! is one JSON file (`state.json`) rewritten atomically after every change; regular file
//! contents live beside it in `blobs/<sha256>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ratelimit::Quota;
use crate::server::Token;
use crate::util;

/// The `.gitattributes` the Hub puts in a new repo's first commit (abridged to the patterns
/// that matter for model repos).
pub const DEFAULT_GITATTRIBUTES: &str = "*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
";

/// Behaviour switches, set through a seed file or `POST /_emulator/seed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Transfer the LFS batch answers: `xet` (the real Hub for new repos) or `basic`.
    pub lfs_transfer: String,
    /// Refuse inline (`file`) commit entries whose content is binary, with the real Hub's
    /// message. On by default, as on the real Hub.
    pub reject_binary_inline: bool,
    /// Largest inline file accepted, in bytes (the real Hub: 10 MiB).
    pub max_inline_bytes: u64,
    /// Status for a commit whose `parentCommit` is not the branch head: 412 (default) or 409.
    pub stale_parent_status: u16,
    /// Whether public repos can be read without a token (the real Hub: yes).
    pub anonymous_reads: bool,
    /// The `api` request quota (the real Hub: 1000 per 5 minutes for a free user).
    pub rate_limit: Quota,
    /// Commits refused per newly uploaded LFS object before the Hub sees it (propagation lag):
    /// each gets 400 "...an LFS pointer pointed to a file that does not exist", as for an
    /// object never uploaded. Default 0; the real Hub shows this now and then.
    pub lfs_propagation_lag: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            lfs_transfer: "xet".to_owned(),
            reject_binary_inline: true,
            max_inline_bytes: 10 << 20,
            stale_parent_status: 412,
            anonymous_reads: true,
            rate_limit: Quota::HUB,
            lfs_propagation_lag: 0,
        }
    }
}

/// Repo type, as in `/api/{type}s/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    /// A model repo (`/api/models`, no URL prefix).
    Model,
    /// A dataset repo (`/api/datasets`, `datasets/` prefix).
    Dataset,
    /// A Space (`/api/spaces`, `spaces/` prefix).
    Space,
}

impl RepoType {
    /// From the singular name (`model`) used in request bodies.
    pub fn from_singular(s: &str) -> Option<Self> {
        match s {
            "model" => Some(Self::Model),
            "dataset" => Some(Self::Dataset),
            "space" => Some(Self::Space),
            _ => None,
        }
    }

    /// From the plural path segment (`models`).
    pub fn from_plural(s: &str) -> Option<Self> {
        match s {
            "models" => Some(Self::Model),
            "datasets" => Some(Self::Dataset),
            "spaces" => Some(Self::Space),
            _ => None,
        }
    }

    /// The plural path segment.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
            Self::Space => "spaces",
        }
    }

    /// The singular name.
    pub fn singular(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Dataset => "dataset",
            Self::Space => "space",
        }
    }

    /// The prefix of web and resolve URLs (`""`, `datasets/`, `spaces/`).
    pub fn url_prefix(self) -> &'static str {
        match self {
            Self::Model => "",
            Self::Dataset => "datasets/",
            Self::Space => "spaces/",
        }
    }
}

/// One file in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content.
    pub sha256: String,
    /// Git blob id: of the content for regular files, of the LFS pointer for LFS files.
    pub oid: String,
    /// Stored through LFS/Xet rather than as a git blob.
    pub lfs: bool,
    /// Xet file hash, for files uploaded through Xet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl Entry {
    /// A regular (git blob) file.
    pub fn regular(content: &[u8]) -> Self {
        Self {
            size: content.len() as u64,
            sha256: util::sha256_hex(content),
            oid: util::git_blob_sha1(content),
            lfs: false,
            xet_hash: None,
        }
    }

    /// An LFS file stored through Xet.
    pub fn xet(sha256: &str, size: u64, xet_hash: &str) -> Self {
        Self {
            size,
            sha256: sha256.to_owned(),
            oid: util::git_blob_sha1(lfs_pointer(sha256, size).as_bytes()),
            lfs: true,
            xet_hash: Some(xet_hash.to_owned()),
        }
    }
}

/// The git-lfs pointer file of an LFS object.
pub fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// One commit: its parents, message and full file tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// 40-hex commit id.
    pub id: String,
    /// Parent commit ids (empty for the first commit).
    pub parents: Vec<String>,
    /// Summary line.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// Author (the token's user).
    pub author: String,
    /// Seconds since the epoch.
    pub date: u64,
    /// Every file, by path.
    pub files: BTreeMap<String, Entry>,
}

/// A tag: its commit and optional message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    /// The commit tagged.
    pub commit: String,
    /// Tag message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A repo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repo {
    /// `namespace/name`.
    pub id: String,
    /// Its type.
    pub kind: RepoType,
    /// Private repos are visible only to their namespace's tokens.
    pub private: bool,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// Branch name → head commit.
    pub branches: BTreeMap<String, String>,
    /// Tag name → tag.
    pub tags: BTreeMap<String, Tag>,
    /// Every commit, by id.
    pub commits: BTreeMap<String, Commit>,
    /// Its own folder of the CAS (`cas/<this>`): Xet objects belong to one repo, and a repo
    /// deleted and created again starts without them. Empty in states from before: `cas/`.
    #[serde(default)]
    pub cas: String,
    /// sha256 → Xet file, learnt from the shards in its CAS folder.
    #[serde(default)]
    pub xet_files: BTreeMap<String, XetFile>,
}

impl Repo {
    /// The namespace (user or organisation).
    pub fn namespace(&self) -> &str {
        self.id
            .split_once('/')
            .map_or(self.id.as_str(), |(ns, _)| ns)
    }

    /// Resolves a revision (branch, `refs/heads/…`, tag, `refs/tags/…` or a full commit id) to
    /// a commit id.
    pub fn resolve(&self, rev: &str) -> Option<String> {
        let branch = rev.strip_prefix("refs/heads/").unwrap_or(rev);
        if let Some(id) = self.branches.get(branch) {
            return Some(id.clone());
        }
        let tag = rev.strip_prefix("refs/tags/").unwrap_or(rev);
        if let Some(tag) = self.tags.get(tag) {
            return Some(tag.commit.clone());
        }
        self.commits.contains_key(rev).then(|| rev.to_owned())
    }

    /// First-parent history from `head`, newest first (bounded by the number of commits).
    pub fn history(&self, head: &str) -> Vec<&Commit> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut next = Some(head.to_owned());
        while let Some(id) = next {
            if !seen.insert(id.clone()) {
                break;
            }
            let Some(commit) = self.commits.get(&id) else {
                break;
            };
            out.push(commit);
            next = commit.parents.first().cloned();
        }
        out
    }

    /// The newest commit in `head`'s history that changed `path` (or any file under it).
    pub fn last_change(&self, head: &str, path: &str) -> Option<&Commit> {
        let history = self.history(head);
        let view = |c: &Commit| -> Vec<(String, String)> {
            c.files
                .iter()
                .filter(|(p, _)| *p == path || p.starts_with(&format!("{path}/")))
                .map(|(p, e)| (p.clone(), e.oid.clone()))
                .collect()
        };
        for (i, commit) in history.iter().enumerate() {
            let parent = history.get(i + 1);
            if parent.is_none_or(|p| view(p) != view(commit)) {
                return Some(commit);
            }
        }
        None
    }
}

/// A file learnt from a CAS shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct XetFile {
    /// Xet file hash.
    pub xet_hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Commits still to refuse before the Hub "sees" it (`lfs_propagation_lag`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pending: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Everything the Hub emulator keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HubState {
    /// Behaviour switches.
    pub config: HubConfig,
    /// Accepted tokens.
    pub tokens: Vec<Token>,
    /// Repos by key (`model:ns/name`).
    pub repos: BTreeMap<String, Repo>,
    /// Counter mixed into new commit ids and tokens.
    pub counter: u64,
}

/// Key of a repo in [`HubState::repos`].
pub fn repo_key(kind: RepoType, id: &str) -> String {
    format!("{}:{id}", kind.singular())
}

impl HubState {
    /// Where the state file lives.
    pub fn path(data: &Path) -> PathBuf {
        data.join("state.json")
    }

    /// Loads the state of `data` (empty when there is none yet).
    pub fn load(data: &Path) -> Result<Self> {
        Ok(util::read_json(&Self::path(data))?.unwrap_or_default())
    }

    /// Writes the state atomically.
    pub fn save(&self, data: &Path) -> Result<()> {
        util::write_json(&Self::path(data), self)
    }

    /// A fresh, real-looking 40-hex id (commit ids, tokens).
    pub fn next_id(&mut self, salt: &str) -> String {
        self.counter += 1;
        util::sha1_hex(format!("{salt}\0{}\0{}", self.counter, util::now_millis()).as_bytes())
    }

    /// Creates a commit on top of `parent` and returns its id.
    pub fn make_commit(
        &mut self,
        key: &str,
        parent: Option<String>,
        title: &str,
        description: &str,
        author: &str,
        files: BTreeMap<String, Entry>,
    ) -> String {
        let tree: Vec<String> = files
            .iter()
            .map(|(p, e)| format!("{p} {}", e.oid))
            .collect();
        let id = self.next_id(&format!("{key}\0{parent:?}\0{title}\0{}", tree.join("\n")));
        let commit = Commit {
            id: id.clone(),
            parents: parent.into_iter().collect(),
            title: title.to_owned(),
            description: description.to_owned(),
            author: author.to_owned(),
            date: util::now_secs(),
            files,
        };
        if let Some(repo) = self.repos.get_mut(key) {
            repo.commits.insert(id.clone(), commit);
        }
        id
    }
}

/// Whether `path` is stored through LFS according to `gitattributes` (lines with
/// `filter=lfs`; a pattern without `/` matches the file name, one with `/` the whole path).
pub fn lfs_by_attributes(gitattributes: &str, path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut lfs = false;
    for line in gitattributes.lines().take(10_000) {
        let mut parts = line.split_whitespace();
        let Some(pattern) = parts.next() else {
            continue;
        };
        if pattern.starts_with('#') {
            continue;
        }
        let attrs: Vec<&str> = parts.collect();
        let matches = if pattern.contains('/') {
            util::glob_match(pattern.trim_start_matches('/'), path)
        } else {
            util::glob_match(pattern, name)
        };
        if matches {
            if attrs.contains(&"filter=lfs") {
                lfs = true;
            } else if attrs.contains(&"-filter") || attrs.contains(&"!filter") {
                lfs = false;
            }
        }
    }
    lfs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitattributes_patterns() {
        assert!(lfs_by_attributes(
            DEFAULT_GITATTRIBUTES,
            "model.safetensors"
        ));
        assert!(lfs_by_attributes(
            DEFAULT_GITATTRIBUTES,
            "onnx/generator.onnx"
        ));
        assert!(!lfs_by_attributes(DEFAULT_GITATTRIBUTES, "README.md"));
        assert!(lfs_by_attributes("big/** filter=lfs\n", "big/a/b.txt"));
        assert!(!lfs_by_attributes(
            "*.bin filter=lfs\n*.bin -filter\n",
            "x.bin"
        ));
    }
}
