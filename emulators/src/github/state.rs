//! The GitHub emulator's persistent state: tokens, repos with commits, refs, annotated tag
//! objects, releases and assets. One JSON file (`state.json`) rewritten atomically after every
//! change; asset bytes live in `assets/<id>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ratelimit::Quota;
use crate::server::Token;
use crate::util;

/// Behaviour switches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubConfig {
    /// Largest asset accepted, in bytes (GitHub: 2 GiB).
    pub max_asset_bytes: u64,
    /// Most assets on one release (GitHub: 1000).
    pub max_assets: usize,
    /// The primary rate limit (GitHub: 5000 requests per hour for a token).
    pub rate_limit: Quota,
    /// What `GET /repos/{o}/{r}` tells an installation token (`kind: "installation"`) about
    /// its permissions, whatever it may really do: `absent` (no `permissions` object, the
    /// default) or `pull` (`push: false`, `pull: true`).
    pub installation_permissions: String,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            max_asset_bytes: 2 << 30,
            max_assets: 1000,
            rate_limit: Quota::GITHUB,
            installation_permissions: "absent".to_owned(),
        }
    }
}

/// A commit (only what refs and tags need).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GhCommit {
    /// 40-hex sha.
    pub sha: String,
    /// Message.
    pub message: String,
    /// Parent shas.
    pub parents: Vec<String>,
    /// Seconds since the epoch.
    pub date: u64,
}

/// An annotated tag object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TagObject {
    /// Its own sha.
    pub sha: String,
    /// Tag name.
    pub tag: String,
    /// Message.
    pub message: String,
    /// The object tagged.
    pub object_sha: String,
    /// Its type (`commit`).
    pub object_type: String,
    /// Seconds since the epoch.
    pub date: u64,
    /// Tagger name.
    pub tagger: String,
}

/// A release asset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asset {
    /// Id.
    pub id: u64,
    /// File name (after GitHub's renaming).
    pub name: String,
    /// Label.
    pub label: Option<String>,
    /// Content type sent at upload.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 hex of the content.
    pub sha256: String,
    /// Uploader's login.
    pub uploader: String,
    /// Seconds since the epoch.
    pub created_at: u64,
}

/// A release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// Id.
    pub id: u64,
    /// Tag name.
    pub tag_name: String,
    /// Branch or sha the tag is created from.
    pub target_commitish: String,
    /// Title.
    pub name: Option<String>,
    /// Notes.
    pub body: Option<String>,
    /// Draft.
    pub draft: bool,
    /// Prerelease.
    pub prerelease: bool,
    /// Author's login.
    pub author: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// When published (drafts: none).
    pub published_at: Option<u64>,
    /// Locked by the repo's immutable-releases setting when published.
    pub immutable: bool,
    /// Assets, in upload order.
    pub assets: Vec<Asset>,
}

/// What a ref points at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefTarget {
    /// Object sha.
    pub sha: String,
    /// `commit` or `tag`.
    pub kind: String,
}

/// A repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GhRepo {
    /// Numeric id.
    pub id: u64,
    /// Owner login.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Private repos are visible only to tokens of users listed as collaborators (the owner).
    pub private: bool,
    /// Default branch.
    pub default_branch: String,
    /// Immutable releases setting.
    pub immutable_releases: bool,
    /// Commits by sha.
    pub commits: BTreeMap<String, GhCommit>,
    /// Full ref name (`refs/heads/main`, `refs/tags/v1`) → target.
    pub refs: BTreeMap<String, RefTarget>,
    /// Annotated tag objects by sha.
    pub tag_objects: BTreeMap<String, TagObject>,
    /// Releases by id.
    pub releases: BTreeMap<u64, Release>,
    /// Tags of deleted immutable releases: never usable again for a release.
    pub burned_tags: BTreeSet<String>,
    /// The release marked latest.
    pub latest: Option<u64>,
}

impl GhRepo {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The commit a branch, tag, full ref or sha names (annotated tags are peeled).
    pub fn resolve_commit(&self, rev: &str) -> Option<String> {
        let target = self
            .refs
            .get(rev)
            .or_else(|| self.refs.get(&format!("refs/heads/{rev}")))
            .or_else(|| self.refs.get(&format!("refs/tags/{rev}")));
        let sha = match target {
            Some(t) => t.sha.clone(),
            None => rev.to_owned(),
        };
        self.peel(&sha)
    }

    /// The commit behind a commit or tag object sha.
    pub fn peel(&self, sha: &str) -> Option<String> {
        let mut sha = sha.to_owned();
        for _ in 0..16 {
            if self.commits.contains_key(&sha) {
                return Some(sha);
            }
            let next = self.tag_objects.get(&sha)?.object_sha.clone();
            sha = next;
        }
        None
    }

    /// Whether `ancestor` is in `sha`'s history (bounded by the number of commits).
    pub fn descends(&self, sha: &str, ancestor: &str) -> bool {
        let mut stack = vec![sha.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if s == ancestor {
                return true;
            }
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(c) = self.commits.get(&s) {
                stack.extend(c.parents.iter().cloned());
            }
        }
        false
    }

    /// Whether `tag` belongs to a published immutable release (or a deleted one).
    pub fn tag_locked(&self, tag: &str) -> bool {
        self.burned_tags.contains(tag)
            || self
                .releases
                .values()
                .any(|r| r.immutable && !r.draft && r.tag_name == tag)
    }

    /// Recomputes the latest release after one disappeared: the newest published,
    /// non-prerelease release.
    pub fn recompute_latest(&mut self) {
        self.latest = self
            .releases
            .values()
            .filter(|r| !r.draft && !r.prerelease)
            .max_by_key(|r| (r.published_at, r.id))
            .map(|r| r.id);
    }
}

/// Everything the GitHub emulator keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GithubState {
    /// Behaviour switches.
    pub config: GithubConfig,
    /// Accepted tokens (scopes `contents:read`, `contents:write`).
    pub tokens: Vec<Token>,
    /// Repos by `owner/name`.
    pub repos: BTreeMap<String, GhRepo>,
    /// Last id handed out (repos, releases, assets).
    pub last_id: u64,
}

impl GithubState {
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

    /// A new numeric id.
    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// A fresh 40-hex object sha.
    pub fn next_sha(&mut self, salt: &str) -> String {
        let n = self.next_id();
        util::sha1_hex(format!("{salt}\0{n}\0{}", util::now_millis()).as_bytes())
    }

    /// Adds a commit on `branch` of `repo` (creating the branch) and returns its sha.
    pub fn add_commit(&mut self, repo: &str, branch: &str, message: &str) -> Option<String> {
        let sha = self.next_sha(&format!("{repo}\0{branch}\0{message}"));
        let r = self.repos.get_mut(repo)?;
        let ref_name = format!("refs/heads/{branch}");
        let parents: Vec<String> = r
            .refs
            .get(&ref_name)
            .map(|t| t.sha.clone())
            .into_iter()
            .collect();
        r.commits.insert(
            sha.clone(),
            GhCommit {
                sha: sha.clone(),
                message: message.to_owned(),
                parents,
                date: util::now_secs(),
            },
        );
        r.refs.insert(
            ref_name,
            RefTarget {
                sha: sha.clone(),
                kind: "commit".to_owned(),
            },
        );
        Some(sha)
    }
}

/// GitHub's renaming of asset names, as observed (its documentation only says that "special
/// characters, non-alphanumeric characters, and leading or trailing periods" are renamed):
/// ASCII letters, digits, `-`, `_` and `.` stay; Latin letters with diacritics are
/// transliterated (`é` → `e`, `æ` → `ae`, `ŋ` → `ng`); everything else (spaces and
/// `+ ~ @ : ( ) # & ,` included, and any other non-ASCII character) becomes `.`; runs of dots
/// become one; trailing dots go and a leading dot gets `default` before it (`.config` →
/// `default.config`). Observations: travis-ci/dpl#821 (a name with every printable ASCII
/// character and `a5_ð_æ_©_ŋ.txt` → `a5_d_ae_._ng.txt`), softprops/action-gh-release#159 and
/// #741, actions/upload-release-asset#57, tarides/dune-release#142.
pub fn sanitize_asset_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let replaced = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c.to_string()
        } else {
            transliterate(c).unwrap_or(".").to_owned()
        };
        for c in replaced.chars() {
            let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '.'
            };
            if !(c == '.' && out.ends_with('.')) {
                out.push(c);
            }
        }
    }
    let out = out.trim_end_matches('.');
    if out.is_empty() {
        "default".to_owned()
    } else if out.starts_with('.') {
        format!("default{out}")
    } else {
        out.to_owned()
    }
}

/// The ASCII approximation of a Latin-1 Supplement or Latin Extended-A letter (the Rails/I18n
/// approximation table), `None` for anything else.
fn transliterate(c: char) -> Option<&'static str> {
    const LATIN_1: [&str; 64] = [
        "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I", "D", "N",
        "O", "O", "O", "O", "O", "x", "O", "U", "U", "U", "U", "Y", "Th", "ss", "a", "a", "a", "a",
        "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", "d", "n", "o", "o", "o", "o",
        "o", "", "o", "u", "u", "u", "u", "y", "th", "y",
    ];
    const LATIN_EXT_A: [&str; 128] = [
        "A", "a", "A", "a", "A", "a", "C", "c", "C", "c", "C", "c", "C", "c", "D", "d", "D", "d",
        "E", "e", "E", "e", "E", "e", "E", "e", "E", "e", "G", "g", "G", "g", "G", "g", "G", "g",
        "H", "h", "H", "h", "I", "i", "I", "i", "I", "i", "I", "i", "I", "i", "IJ", "ij", "J", "j",
        "K", "k", "k", "L", "l", "L", "l", "L", "l", "L", "l", "L", "l", "N", "n", "N", "n", "N",
        "n", "'n", "NG", "ng", "O", "o", "O", "o", "O", "o", "OE", "oe", "R", "r", "R", "r", "R",
        "r", "S", "s", "S", "s", "S", "s", "S", "s", "T", "t", "T", "t", "T", "t", "U", "u", "U",
        "u", "U", "u", "U", "u", "U", "u", "U", "u", "W", "w", "Y", "y", "Y", "Z", "z", "Z", "z",
        "Z", "z", "",
    ];
    let code = u32::from(c) as usize;
    let found = match code {
        0xC0..=0xFF => LATIN_1[code - 0xC0],
        0x100..=0x17F => LATIN_EXT_A[code - 0x100],
        _ => "",
    };
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_are_renamed_like_github() {
        assert_eq!(sanitize_asset_name("model card.md"), "model.card.md");
        assert_eq!(sanitize_asset_name("a & b#c.tar.gz"), "a.b.c.tar.gz");
        assert_eq!(
            sanitize_asset_name("tinydit-1.2.3+cpu.onnx"),
            "tinydit-1.2.3.cpu.onnx"
        );
        assert_eq!(
            sanitize_asset_name("pkg-1.1.0-1~buster_amd64.deb"),
            "pkg-1.1.0-1.buster_amd64.deb"
        );
        assert_eq!(
            sanitize_asset_name("app-v1.3.0-(15-5)-6064eac-release.apk"),
            "app-v1.3.0-.15-5.-6064eac-release.apk"
        );
        // travis-ci/dpl#821: every printable ASCII character, then a few non-ASCII letters.
        assert_eq!(
            sanitize_asset_name(
                "a5_ !#$%&'()+,-.0123456789;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{}~.txt"
            ),
            "a5_.-.0123456789.ABCDEFGHIJKLMNOPQRSTUVWXYZ._.abcdefghijklmnopqrstuvwxyz.txt"
        );
        assert_eq!(sanitize_asset_name("a5_ð_æ_©_ŋ.txt"), "a5_d_ae_._ng.txt");
        assert_eq!(sanitize_asset_name("a5_żółw.txt"), "a5_zolw.txt");
        assert_eq!(sanitize_asset_name("ünï.bin"), "uni.bin");
        assert_eq!(sanitize_asset_name(".config"), "default.config");
        assert_eq!(sanitize_asset_name(" .x. "), "default.x");
        // Renaming a renamed name changes nothing.
        for name in ["model.card.md", "default.config", "a5_d_ae_._ng.txt"] {
            assert_eq!(sanitize_asset_name(name), name);
        }
    }
}
