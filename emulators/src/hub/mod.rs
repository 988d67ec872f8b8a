//! The Hugging Face Hub emulator: every call `hf-hub` 1.0.0 and Python `huggingface_hub`
//! 2.4.0 (with `hf_xet` 1.8.0) make to publish and download (hub-protocol.md §2, §9). Routes
//! are matched by hand on the decoded path segments, because repo ids hold a `/` and
//! revisions arrive percent-encoded; anything unmatched answers 501.

mod routes;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::ratelimit::Service;
use crate::server::{self, Common, Token};
use state::{HubConfig, HubState, RepoType};

/// The real Hub's refusal of a commit naming LFS (Xet) objects the repo does not have, also
/// given right after an upload while the objects propagate (`lfs_propagation_lag`).
pub const LFS_POINTER_MISSING: &str =
    "Your push was rejected because an LFS pointer pointed to a file that does not exist.";
/// The largest Xet file the CDN rebuilds in memory.
const MAX_XET_FILE_BYTES: u64 = 1 << 30;

/// The real Hub's passing refusal of a repo create (`huggingface_hub` retries it, `hf_api.py`);
/// inject it with a `status` fault on `POST /api/repos/create`.
pub const CONFLICTING_OPERATION: &str =
    "Cannot create repo: another conflicting operation is in progress";

/// A seed: configuration, tokens and empty repos applied at start (`--seed`) or through
/// `POST /_emulator/seed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSeed {
    /// Replaces the configuration when present.
    #[serde(default)]
    pub config: Option<HubConfig>,
    /// Tokens to add (a token with the same value is replaced).
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Repos to create when absent (with the usual initial commit).
    #[serde(default)]
    pub repos: Vec<SeedRepo>,
}

/// A repo in a seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRepo {
    /// `namespace/name`.
    pub id: String,
    /// `model` (default), `dataset` or `space`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Private repo.
    #[serde(default)]
    pub private: bool,
}

/// The running Hub emulator's shared parts.
pub struct Hub {
    common: Arc<Common>,
    state: Mutex<HubState>,
    api_url: String,
    cdn_url: String,
}

impl Hub {
    /// Loads (or starts) the state in `common`'s data folder; `api_url` and `cdn_url` are the
    /// two listeners' base URLs.
    pub fn open(common: Arc<Common>, api_url: String, cdn_url: String) -> Result<Arc<Self>> {
        let state = HubState::load(common.data())?;
        common.set_quota(state.config.rate_limit);
        for dir in ["blobs", "cas"] {
            let path = common.data().join(dir);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        // Every new repo's first commit holds this file; its blob must be servable.
        let attributes = state::DEFAULT_GITATTRIBUTES.as_bytes();
        let blob = common
            .data()
            .join("blobs")
            .join(crate::util::sha256_hex(attributes));
        if !blob.exists() {
            crate::util::write_atomically(&blob, attributes)?;
        }
        Ok(Arc::new(Self {
            common,
            state: Mutex::new(state),
            api_url,
            cdn_url,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn data(&self) -> &Path {
        self.common.data()
    }

    /// The CAS folder of `repo`, handed out as its `casUrl` (`local:///<data>/cas/<repo.cas>`).
    pub fn cas_dir(&self, repo: &state::Repo) -> PathBuf {
        self.data().join("cas").join(&repo.cas)
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.data().join("blobs").join(sha256)
    }

    /// The bytes of a Xet file, rebuilt from the CAS folder of the repo that holds it (its shard
    /// names the xorb chunk ranges; hf-xet's own reader decompresses them), and returned only
    /// when they hash to `sha256`. What the real Hub's CDN serves for a Xet file.
    fn xet_bytes(&self, sha256: &str) -> Option<Vec<u8>> {
        let cas = std::fs::read_dir(self.data().join("cas")).ok()?;
        for dir in cas.flatten().map(|entry| entry.path()) {
            let Some(file) = crate::shard::scan(&dir).remove(sha256) else {
                continue;
            };
            if file.size > MAX_XET_FILE_BYTES {
                return None;
            }
            // hf-xet's local CAS keeps `shards/` and `xorbs/` side by side in one folder.
            let roots: Vec<PathBuf> = crate::shard::find_shards(&dir)
                .iter()
                .filter_map(|shard| Some(shard.parent()?.parent()?.to_path_buf()))
                .collect();
            let mut bytes = Vec::new();
            for segment in &file.segments {
                let name = format!("default.{}", segment.xorb);
                let path = roots
                    .iter()
                    .map(|root| root.join("xorbs").join(&name))
                    .find(|path| path.is_file())?;
                let mut reader = std::io::BufReader::new(std::fs::File::open(path).ok()?);
                let xorb =
                    xet_core_structures::xorb_object::XorbObject::deserialize(&mut reader).ok()?;
                let part = xorb
                    .get_bytes_by_chunk_range(&mut reader, segment.start, segment.end)
                    .ok()?;
                bytes.extend_from_slice(&part);
            }
            let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            return (crate::util::hex(&digest) == sha256).then_some(bytes);
        }
        None
    }

    /// Applies a seed and saves the state.
    pub fn apply_seed(&self, seed: &HubSeed) -> Result<()> {
        let mut state = self.lock();
        if let Some(config) = &seed.config {
            state.config = config.clone();
            self.common.set_quota(config.rate_limit);
        }
        for token in &seed.tokens {
            state.tokens.retain(|t| t.token != token.token);
            state.tokens.push(token.clone());
        }
        for repo in &seed.repos {
            let kind = match repo.kind.as_deref() {
                None => RepoType::Model,
                Some(k) => RepoType::from_singular(k)
                    .with_context(|| format!("seed repo {}: unknown type {k:?}", repo.id))?,
            };
            if repo.id.split('/').count() != 2 {
                anyhow::bail!("seed repo {:?}: the id must be namespace/name", repo.id);
            }
            let key = state::repo_key(kind, &repo.id);
            if !state.repos.contains_key(&key) {
                let owner = repo.id.split('/').next().unwrap_or_default().to_owned();
                routes::create_repo_in(&mut state, kind, &repo.id, repo.private, &owner);
            }
        }
        state.save(self.data())
    }

    /// The router of the API listener.
    pub fn api_router(self: &Arc<Self>) -> Router {
        let hub = self.clone();
        Router::new().fallback(move |req| routes::dispatch(hub.clone(), req))
    }

    /// The router of the CDN listener (a different origin, as on the real Hub).
    pub fn cdn_router(self: &Arc<Self>) -> Router {
        let hub = self.clone();
        Router::new().fallback(move |req: axum::extract::Request| {
            std::future::ready(routes::cdn(&hub, &req))
        })
    }
}

/// Starts the Hub emulator: binds the API and CDN listeners, prints
/// `listening on http://127.0.0.1:PORT` then `cdn on http://127.0.0.1:PORT2`, and serves
/// until the process ends.
pub async fn run(data: &Path, port: u16, seed: Option<HubSeed>) -> Result<()> {
    let common = Common::open(data, Service::Hub, state::HubConfig::default().rate_limit)?;
    let (api, api_port) = server::bind(port).await?;
    let (cdn, cdn_port) = server::bind(0).await?;
    let api_url = format!("http://127.0.0.1:{api_port}");
    let cdn_url = format!("http://127.0.0.1:{cdn_port}");
    let hub = Hub::open(common.clone(), api_url.clone(), cdn_url.clone())?;
    if let Some(seed) = seed {
        hub.apply_seed(&seed)?;
    }
    server::announce(&format!("listening on {api_url}"))?;
    server::announce(&format!("cdn on {cdn_url}"))?;
    let cdn_task = tokio::spawn(server::serve(cdn, hub.cdn_router(), common.clone(), "cdn"));
    server::serve(api, hub.api_router(), common, "api").await;
    cdn_task.abort();
    Ok(())
}
