//! The release identity: what makes two runs of `check` the same release.
//!
//! Two runs of the same inputs give the same bytes for everything but the files that carry
//! measurements (the card's and `metrics.json`'s latencies), so bytes alone cannot say whether a
//! re-run is building the release that is already out. The identity can: the tool, the version,
//! the source commit, and the size and sha256 of `release.toml` and of every input file it names
//! (checkpoints, ONNX files and their external data, metric files, the card template, golden
//! files, bundle includes). `check` writes it into the bundle as [`IDENTITY_FILE`], so it is
//! released with the model on the Hub and attached to the GitHub release, and `publish` compares
//! the identity of what is already released with its own before it decides anything: the same
//! identity finishes the release from what is released; another identity is refused, naming the
//! inputs that differ. Measurements never enter the identity.
//!
//! Layer 1, the ground floor: imports only its neighbours there (`provenance`, `digest`).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::hex;
use crate::provenance::SourceCommit;

/// The bundle file that holds the identity.
pub const IDENTITY_FILE: &str = "release.json";

/// Version of the `release.json` layout.
pub const IDENTITY_SCHEMA_VERSION: u32 = 1;

/// Largest `release.json` read back from a service (thousands of inputs fit in far less).
pub const MAX_IDENTITY_BYTES: u64 = 4 * 1024 * 1024;

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// Everything that decides a release's bytes, and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseIdentity {
    /// [`IDENTITY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `sha256:<hex>` of the other fields ([`ReleaseIdentity::digest_of`]).
    pub identity: String,
    /// `tinydit-release X.Y.Z`.
    pub tool: String,
    /// The release version, when known.
    pub version: Option<String>,
    /// The source commit, when known.
    pub source: Option<SourceCommit>,
    /// Every input file, sorted by path.
    pub inputs: Vec<InputFile>,
}

/// The fields the digest covers, in a fixed order.
#[derive(Serialize)]
struct Covered<'a> {
    schema_version: u32,
    tool: &'a str,
    version: Option<&'a str>,
    source_commit: Option<&'a str>,
    source_dirty: Option<bool>,
    inputs: &'a [InputFile],
}

impl ReleaseIdentity {
    /// The identity of these inputs. Duplicate paths (one file named twice) count once.
    pub fn new(
        tool: String,
        version: Option<String>,
        source: Option<SourceCommit>,
        mut inputs: Vec<InputFile>,
    ) -> Self {
        inputs.sort_by(|a, b| a.path.cmp(&b.path));
        inputs.dedup_by(|a, b| a.path == b.path);
        let mut identity = Self {
            schema_version: IDENTITY_SCHEMA_VERSION,
            identity: String::new(),
            tool,
            version,
            source,
            inputs,
        };
        identity.identity = identity.digest_of();
        identity
    }

    /// `sha256:<hex>` of the canonical JSON of every field but `identity` (see [`is_digest`]).
    pub fn digest_of(&self) -> String {
        let covered = Covered {
            schema_version: self.schema_version,
            tool: &self.tool,
            version: self.version.as_deref(),
            source_commit: self.source.as_ref().map(|s| s.commit.as_str()),
            source_dirty: self.source.as_ref().and_then(|s| s.dirty),
            inputs: &self.inputs,
        };
        let json = serde_json::to_vec(&covered).expect("identity fields serialize");
        format!("sha256:{}", hex(&Sha256::digest(&json)))
    }

    /// The file's bytes: pretty JSON with a final newline, the same for the same identity.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("the identity serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Reads `release.json` as released; `whence` names it in errors. The recorded digest must
    /// match the recorded fields, so an edited file is not taken for the release it claims.
    pub fn parse(bytes: &[u8], whence: &str) -> anyhow::Result<Self> {
        let identity: Self = serde_json::from_slice(bytes)
            .map_err(|err| anyhow::anyhow!("{whence} is not a release identity: {err}"))?;
        if identity.schema_version != IDENTITY_SCHEMA_VERSION {
            anyhow::bail!(
                "{whence} has layout version {}, this tool reads version \
                 {IDENTITY_SCHEMA_VERSION}",
                identity.schema_version
            );
        }
        if identity.digest_of() != identity.identity {
            anyhow::bail!("{whence} was edited: its `identity` is not the digest of its fields");
        }
        Ok(identity)
    }

    /// Whether `other` is the same release.
    pub fn matches(&self, other: &Self) -> bool {
        self.identity == other.identity
    }

    /// What differs between this run (`self`) and what was released (`released`), one phrase
    /// each, naming the input; empty when the identities match.
    pub fn differences(&self, released: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.tool != released.tool {
            out.push(format!(
                "the tool is `{}`, the release was made by `{}`",
                self.tool, released.tool
            ));
        }
        if self.version != released.version {
            out.push(format!(
                "the version is `{}`, the release's is `{}`",
                self.version.as_deref().unwrap_or("(none)"),
                released.version.as_deref().unwrap_or("(none)")
            ));
        }
        let commit = |s: &Option<SourceCommit>| s.as_ref().map(|s| s.commit.clone());
        if commit(&self.source) != commit(&released.source) {
            out.push(format!(
                "the source commit is `{}`, the release was built from `{}`",
                commit(&self.source).unwrap_or_else(|| "(unknown)".to_owned()),
                commit(&released.source).unwrap_or_else(|| "(unknown)".to_owned())
            ));
        } else if self.source.as_ref().and_then(|s| s.dirty)
            != released.source.as_ref().and_then(|s| s.dirty)
        {
            out.push("the work tree's uncommitted changes differ".to_owned());
        }
        for input in &self.inputs {
            match released.inputs.iter().find(|r| r.path == input.path) {
                None => out.push(format!("`{}` is a new input", input.path)),
                Some(r) if r.sha256 != input.sha256 || r.bytes != input.bytes => {
                    out.push(format!("`{}` has other content", input.path));
                }
                Some(_) => {}
            }
        }
        for released_input in &released.inputs {
            if !self.inputs.iter().any(|i| i.path == released_input.path) {
                out.push(format!("`{}` is no longer an input", released_input.path));
            }
        }
        if out.is_empty() && !self.matches(released) {
            out.push("the release identity differs".to_owned());
        }
        out
    }
}

/// Whether `text` has the form of a release identity: `sha256:` and 64 lowercase hexadecimal
/// digits, as [`ReleaseIdentity::digest_of`] writes it.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str, sha: char) -> InputFile {
        InputFile {
            path: path.to_owned(),
            bytes: 10,
            sha256: sha.to_string().repeat(64),
        }
    }

    fn identity(inputs: Vec<InputFile>) -> ReleaseIdentity {
        ReleaseIdentity::new(
            "tinydit-release 1.0.0".to_owned(),
            Some("0.1.0".to_owned()),
            Some(SourceCommit::clean("a".repeat(40))),
            inputs,
        )
    }

    #[test]
    fn the_same_inputs_in_any_order_are_the_same_release() {
        let a = identity(vec![input("release.toml", 'a'), input("model.pt", 'b')]);
        let b = identity(vec![input("model.pt", 'b'), input("release.toml", 'a')]);
        assert!(a.matches(&b));
        assert_eq!(a.to_json(), b.to_json());
        assert!(a.differences(&b).is_empty());
    }

    #[test]
    fn differences_name_the_input() {
        let ours = identity(vec![input("release.toml", 'a'), input("model.pt", 'b')]);
        let released = identity(vec![input("release.toml", 'c'), input("old.onnx", 'd')]);
        assert_eq!(
            ours.differences(&released),
            [
                "`model.pt` is a new input",
                "`release.toml` has other content",
                "`old.onnx` is no longer an input"
            ]
        );
        let mut later = ours.clone();
        later.source = Some(SourceCommit::clean("b".repeat(40)));
        later.identity = later.digest_of();
        assert_eq!(
            later.differences(&ours),
            [format!(
                "the source commit is `{}`, the release was built from `{}`",
                "b".repeat(40),
                "a".repeat(40)
            )]
        );
    }

    #[test]
    fn the_file_round_trips_and_an_edited_one_is_refused() {
        let ours = identity(vec![input("release.toml", 'a')]);
        let parsed = ReleaseIdentity::parse(&ours.to_json(), "`release.json`").expect("parses");
        assert_eq!(parsed, ours);
        let edited = String::from_utf8(ours.to_json())
            .expect("json")
            .replace("0.1.0", "0.2.0");
        let err = ReleaseIdentity::parse(edited.as_bytes(), "`release.json` at `v0.1.0`")
            .expect_err("edited");
        assert!(err.to_string().contains("was edited"), "{err}");
        assert!(ReleaseIdentity::parse(b"<html>", "`release.json`").is_err());
    }
}
