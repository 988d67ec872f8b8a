//! The GitHub REST emulator: what `octocrab` 0.54.9 and the raw calls of octocrab.md need to
//! make a release (repos, git refs, annotated tags, commits, releases, assets), with the
//! immutable-releases setting and `contents` token scopes. The API and the upload origin are
//! two listeners, as `api.github.com` and `uploads.github.com` are two hosts.

mod routes;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::ratelimit::Service;
use crate::server::{self, Common, Token};
use state::{GhRepo, GithubConfig, GithubState};

/// A seed: configuration, tokens and repos applied at start (`--seed`) or through
/// `POST /_emulator/seed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSeed {
    /// Replaces the configuration when present.
    #[serde(default)]
    pub config: Option<GithubConfig>,
    /// Tokens to add (same value: replaced).
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Repos to create when absent.
    #[serde(default)]
    pub repos: Vec<SeedRepo>,
}

/// A repo in a seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRepo {
    /// Owner login.
    pub owner: String,
    /// Repo name.
    pub name: String,
    /// Private repo.
    #[serde(default)]
    pub private: bool,
    /// Default branch (default `main`).
    #[serde(default)]
    pub default_branch: Option<String>,
    /// Immutable releases.
    #[serde(default)]
    pub immutable_releases: bool,
    /// Commit messages to create, oldest first, on the default branch (default: one
    /// `initial commit`).
    #[serde(default)]
    pub commits: Option<Vec<String>>,
}

/// The running GitHub emulator's shared parts.
pub struct Github {
    common: Arc<Common>,
    state: Mutex<GithubState>,
    api_url: String,
    uploads_url: String,
}

impl Github {
    fn lock(&self) -> MutexGuard<'_, GithubState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn data(&self) -> &Path {
        self.common.data()
    }

    /// Applies a seed and saves the state.
    pub fn apply_seed(&self, seed: &GithubSeed) -> Result<()> {
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
            let full = format!("{}/{}", repo.owner, repo.name);
            if state.repos.contains_key(&full) {
                continue;
            }
            let id = state.next_id();
            let branch = repo
                .default_branch
                .clone()
                .unwrap_or_else(|| "main".to_owned());
            state.repos.insert(
                full.clone(),
                GhRepo {
                    id,
                    owner: repo.owner.clone(),
                    name: repo.name.clone(),
                    private: repo.private,
                    default_branch: branch.clone(),
                    immutable_releases: repo.immutable_releases,
                    commits: BTreeMap::default(),
                    refs: BTreeMap::default(),
                    tag_objects: BTreeMap::default(),
                    releases: BTreeMap::default(),
                    burned_tags: BTreeSet::default(),
                    latest: None,
                },
            );
            let messages = repo
                .commits
                .clone()
                .unwrap_or_else(|| vec!["initial commit".to_owned()]);
            for message in messages {
                state.add_commit(&full, &branch, &message);
            }
        }
        state.save(self.data())
    }
}

/// Starts the GitHub emulator: binds the API and upload listeners, prints
/// `listening on http://127.0.0.1:PORT` then `uploads on http://127.0.0.1:PORT2`, and serves
/// until the process ends.
pub async fn run(data: &Path, port: u16, seed: Option<GithubSeed>) -> Result<()> {
    let common = Common::open(data, Service::Github, GithubConfig::default().rate_limit)?;
    let (api, api_port) = server::bind(port).await?;
    let (uploads, uploads_port) = server::bind(0).await?;
    let api_url = format!("http://127.0.0.1:{api_port}");
    let uploads_url = format!("http://127.0.0.1:{uploads_port}");
    let assets = common.data().join("assets");
    std::fs::create_dir_all(&assets).with_context(|| format!("creating {}", assets.display()))?;
    let state = GithubState::load(common.data())?;
    common.set_quota(state.config.rate_limit);
    let github = Arc::new(Github {
        state: Mutex::new(state),
        common: common.clone(),
        api_url: api_url.clone(),
        uploads_url: uploads_url.clone(),
    });
    if let Some(seed) = seed {
        github.apply_seed(&seed)?;
    }
    server::announce(&format!("listening on {api_url}"))?;
    server::announce(&format!("uploads on {uploads_url}"))?;
    let gh = github.clone();
    let uploads_router = Router::new().fallback(move |req| routes::uploads(gh.clone(), req));
    let gh = github.clone();
    let api_router = Router::new().fallback(move |req| routes::api(gh.clone(), req));
    let task = tokio::spawn(server::serve(
        uploads,
        uploads_router,
        common.clone(),
        "uploads",
    ));
    server::serve(api, api_router, common, "api").await;
    task.abort();
    Ok(())
}
