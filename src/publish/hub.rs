//! The Hugging Face Hub through `hf-hub` 1.0.0: read the repo's state, ensure the repo and
//! branch, one commit with every changed file through Xet, read the tree back, tag the commit.
//!
//! The known hf-hub 1.0.0 problems (hub-protocol.md §6) are each worked around in exactly one
//! place here, marked `hf-hub bug N`:
//! 1. downloads never check the status: [`Hub::read_metrics`] verifies size and git oid;
//! 2. `get_file_metadata` fails on LFS/Xet files: never used, `list_tree` instead;
//! 3. `local_dir`/stream downloads skip Xet: only a small regular file is ever downloaded;
//! 4. commit, tag and branch POSTs are retried: [`Hub::new`] sets `.retry_max_attempts(0)`;
//!    ambiguous failures are resolved by re-reading (`retry::Backoff::run_write`);
//! 5. `pr_url` never filled: no pull requests are used;
//! 6. retry count and `Retry-After` ignored: retries are ours (`retry`), `Retry-After` honoured;
//!    the `RateLimit` header it drops is asked for again by the backoff's probe (`whoami-v2`);
//! 7. `create_repository(exist_ok)` accepts any 409: [`Hub::ensure_repo`] re-reads the repo;
//! 8. a batch answer other than `xet` silently inlines binaries: [`Hub::require_xet`] asks
//!    preupload and the LFS batch first and refuses;
//! 9. unchanged files re-uploaded: the plan diffs against `list_tree`; only changes are sent;
//! 10. (found here) `BlobLfsInfo` never gets the LFS sha256: see `remote_file`.
//!
//! hf-hub reads every answer whole (a 1 GiB refs listing is buffered), preallocates a download
//! from `X-Linked-Size`, and follows a listing's `Link: rel="next"` to any host with our token.
//! So the reads the plan is made of (refs, trees, paths-info, the small files read back) are made
//! here through the bounded reads of `net.rs`; hf-hub keeps the writes, on a client that carries
//! the timeouts of `net::Timeouts`.

use std::path::Path;

use anyhow::Context as _;
use hf_hub::repository::{AddSource, CommitOperation, RepoTreeEntry, RepoType as _, RepoTypeAny};
use hf_hub::{HFClient, HFError, HFRepository};
use sha1::Digest as _;

use super::error::PublishError;
use super::net::{self, Limit, NetError, Timeouts};
use super::plan::{FileAction, HubPlan, HubRef, HubState, PreviousRelease, RemoteFile};
use super::retry::{self, Backoff, Failure, Landed};
use super::route;
use crate::bundle::{BundleFile, BundleMetrics};
use crate::digest::hex;
use crate::identity::{IDENTITY_FILE, MAX_IDENTITY_BYTES, ReleaseIdentity};
use crate::secrets::Token;

/// The kinds of Hub repo a release writes: the model, and its demo Space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// A model repo (`/api/models/…`, web pages at `/{owner}/{name}`).
    Model,
    /// A static Space (`/api/spaces/…`, web pages at `/spaces/{owner}/{name}`).
    Space,
}

impl RepoKind {
    /// hf-hub's marker, which also spells the API's plural (`models`, `spaces`) and the prefix
    /// of web, resolve and git addresses (`""`, `spaces/`).
    fn any(self) -> RepoTypeAny {
        match self {
            Self::Model => RepoTypeAny::Model,
            Self::Space => RepoTypeAny::Space,
        }
    }

    /// The prefix of its web addresses (`""`, `spaces/`).
    pub fn url_prefix(self) -> &'static str {
        self.any().url_prefix()
    }

    /// In words, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Model => "model repo",
            Self::Space => "Space",
        }
    }
}

/// A connection to one Hub repo.
pub struct Hub {
    client: HFClient,
    repo: HFRepository<RepoTypeAny>,
    kind: RepoKind,
    repo_id: String,
    endpoint: String,
    token: Option<Token>,
    backoff: Backoff,
    http: reqwest::Client,
    timeouts: Timeouts,
}

/// How an hf-hub error is treated by the retry policy (`retry::classify_status`). hf-hub keeps
/// only `Retry-After` of a 429 and drops the Hub's `RateLimit` header: without it the backoff's
/// probe asks the Hub how long the limit holds.
pub fn classify(err: &HFError) -> Failure {
    match err {
        HFError::RateLimited {
            retry_after: Some(after),
            ..
        } => Failure::Transient(Some(*after)),
        HFError::RateLimited { context, .. }
        | HFError::Http { context }
        | HFError::Conflict { context } => retry::classify_status(
            context.status.as_u16(),
            None,
            context.server_message.as_deref().unwrap_or(&context.body),
        ),
        HFError::Request { source, .. }
            if source.is_connect()
                || source.is_timeout()
                || source.is_request()
                || source.is_body()
                || source.is_decode() =>
        {
            Failure::Transient(None)
        }
        _ => Failure::Permanent,
    }
}

/// Translates an hf-hub error into what the user should read; authentication and permission
/// errors become [`PublishError`]s with a hint about token scopes.
pub fn translate(err: HFError, repo: &str, doing: &str) -> anyhow::Error {
    match err {
        HFError::AuthRequired { .. } => PublishError::AuthRequired {
            service: "the Hub",
            hint: "set `HF_TOKEN` to a token with the `write` role".to_owned(),
        }
        .into(),
        HFError::Forbidden { .. } => PublishError::Forbidden {
            service: "the Hub",
            what: format!("`{repo}`"),
            hint: format!(
                "give the `HF_TOKEN` write access to `{repo}` (a `write` token, or a fine-grained \
                 token with \"Write access to contents/settings of repos\" for its owner)"
            ),
        }
        .into(),
        HFError::RateLimited { retry_after, .. } => PublishError::RateLimited {
            service: "the Hub",
            retry_after: retry_after.map(|d| d.as_secs()),
        }
        .into(),
        HFError::Request { ref source, .. } if source.is_timeout() => {
            anyhow::Error::new(crate::error::Problem::new(describe(&err)).hint(net::TIMEOUT_HINT))
                .context(format!("failed to {doing} on the Hub"))
        }
        other => {
            anyhow::anyhow!("{}", describe(&other)).context(format!("failed to {doing} on the Hub"))
        }
    }
}

/// An hf-hub error in words that name the host and quote at most a short server message (hf-hub
/// keeps a whole error page as the message).
fn describe(err: &HFError) -> String {
    let host = |url: &str| {
        reqwest::Url::parse(url).map_or_else(
            |_| "the Hub".to_owned(),
            |u| format!("`{}`", net::host_of(&u)),
        )
    };
    match err {
        HFError::Http { context }
        | HFError::Conflict { context }
        | HFError::Forbidden { context } => {
            let message = context
                .server_message
                .as_deref()
                .unwrap_or(context.body.as_str());
            let message = net::excerpt(message, 300);
            format!(
                "{} answered HTTP {}{}",
                host(&context.url),
                context.status.as_u16(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )
        }
        HFError::Request { source, url } => {
            let at = url.as_deref().map_or_else(|| "the Hub".to_owned(), host);
            if source.is_timeout() {
                format!("{at} did not answer in time")
            } else {
                format!(
                    "could not reach {at}: {}",
                    net::excerpt(&source.to_string(), 300)
                )
            }
        }
        other => net::excerpt(&other.to_string(), 600),
    }
}

/// The git blob id of a file: sha1 over `blob <size>\0` and the bytes, streamed.
/// The git blob id of bytes in memory.
pub fn git_blob_oid_of(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex(&hasher.finalize())
}

/// The git blob id of a file, read in pieces.
pub fn git_blob_oid(path: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("failed to read `{}`", path.display()))?
        .len();
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {size}\0").as_bytes());
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn remote_file(entry: RepoTreeEntry) -> Option<RemoteFile> {
    match entry {
        RepoTreeEntry::File {
            oid,
            size,
            path,
            lfs,
            ..
        } => Some(RemoteFile {
            path,
            size,
            // hf-hub bug 10 (not in hub-protocol.md §6): `BlobLfsInfo` reads `sha256` and
            // `pointer_size`, while the Hub (and Python's reader) use `oid` and `pointerSize`,
            // so the sha256 of an LFS file is always missing here. Such files are compared by
            // the git oid of their LFS pointer instead (`plan::lfs_pointer_oid`).
            sha256: lfs.as_ref().and_then(|l| l.sha256.clone()),
            lfs: lfs.is_some(),
            git_oid: oid,
        }),
        RepoTreeEntry::Directory { .. } => None,
    }
}

impl Hub {
    /// A client for `repo_id` at `endpoint`; hf-hub's own retries are off (hf-hub bug 4 and 6),
    /// and its cache is not used (nothing is downloaded into it).
    pub fn new(
        endpoint: &str,
        token: &Token,
        repo_id: &str,
        timeouts: &Timeouts,
    ) -> anyhow::Result<Self> {
        Self::connect(endpoint, Some(token), repo_id, timeouts)
    }

    /// A client that may read public repos without a token. Every request of hf-hub's and ours
    /// goes through one HTTP client with the limits of `timeouts`.
    pub fn connect(
        endpoint: &str,
        token: Option<&Token>,
        repo_id: &str,
        timeouts: &Timeouts,
    ) -> anyhow::Result<Self> {
        Self::connect_kind(endpoint, token, repo_id, RepoKind::Model, timeouts)
    }

    /// A client for a repo of `kind`.
    pub fn connect_kind(
        endpoint: &str,
        token: Option<&Token>,
        repo_id: &str,
        kind: RepoKind,
        timeouts: &Timeouts,
    ) -> anyhow::Result<Self> {
        route::repo(repo_id)?;
        let (owner, name) = repo_id
            .split_once('/')
            .with_context(|| format!("the Hub repo `{repo_id}` is not `owner/name`"))?;
        let http = net::api_client(timeouts)?;
        let mut builder = HFClient::builder().endpoint(endpoint).client(http.clone());
        if let Some(token) = token {
            builder = builder.token(token.expose());
        }
        let client = builder
            .retry_max_attempts(0)
            .cache_enabled(false)
            .build()
            .context("failed to set up the Hub client")?;
        let repo = client.repository(kind.any(), owner, name);
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let probe = retry::Probe::get(
            http.clone(),
            format!("{endpoint}/api/whoami-v2"),
            token
                .map(|t| format!("Bearer {}", t.expose()))
                .unwrap_or_default(),
        );
        Ok(Self {
            client,
            repo,
            kind,
            repo_id: repo_id.to_owned(),
            endpoint,
            token: token.cloned(),
            backoff: Backoff::default().probing(probe),
            http,
            timeouts: *timeouts,
        })
    }

    /// A bounded `GET` of a Hub URL with our token, retried within the backoff.
    async fn get(&self, url: &str, what: &str, limit: Limit) -> Result<net::Answer, NetError> {
        let authorization = self.client_token();
        net::fetch(&self.backoff, &self.timeouts, what, limit, || {
            let request = self.http.get(url);
            if authorization.is_empty() {
                request
            } else {
                request.header(reqwest::header::AUTHORIZATION, &authorization)
            }
        })
        .await
    }

    /// The API URL of this repo: `{endpoint}/api/models/{owner}/{name}` (`spaces` for a Space).
    fn api_url(&self) -> String {
        let repo = route::repo(&self.repo_id).expect("checked when the client was made");
        format!("{}/api/{}/{repo}", self.endpoint, self.kind.any().plural())
    }

    /// The repo's path below the Hub's address: `{owner}/{name}`, `spaces/{owner}/{name}`.
    fn web_path(&self) -> String {
        let repo = route::repo(&self.repo_id).expect("checked when the client was made");
        format!("{}{repo}", self.kind.url_prefix())
    }

    /// A failed answer of ours in the user's terms, as `translate` does for hf-hub's.
    fn refused(&self, err: NetError, doing: &str) -> anyhow::Error {
        match err.status() {
            Some(401) => PublishError::AuthRequired {
                service: "the Hub",
                hint: "set `HF_TOKEN` to a token with the `write` role".to_owned(),
            }
            .into(),
            Some(403) if err.classify() == Failure::Permanent => PublishError::Forbidden {
                service: "the Hub",
                what: format!("`{}`", self.repo_id),
                hint: format!(
                    "give the `HF_TOKEN` access to `{}` (a `write` token, or a fine-grained token \
                     with \"Write access to contents/settings of repos\" for its owner)",
                    self.repo_id
                ),
            }
            .into(),
            Some(429) => PublishError::RateLimited {
                service: "the Hub",
                retry_after: match err.classify() {
                    Failure::Transient(Some(after)) => Some(after.as_secs()),
                    _ => None,
                },
            }
            .into(),
            _ => err.into_error(),
        }
        .context(format!("failed to {doing} on the Hub"))
    }

    /// The repo's web address.
    pub fn repo_url(&self) -> String {
        format!("{}/{}", self.endpoint, self.web_path())
    }

    /// A commit's web address.
    pub fn commit_url(&self, commit: &str) -> String {
        format!("{}/commit/{}", self.repo_url(), route::segment(commit))
    }

    /// Branches and tags, or `None` when the repo does not exist.
    async fn refs(&self) -> anyhow::Result<Option<(Vec<HubRef>, Vec<HubRef>)>> {
        let Some((branches, tags)) = self
            .read_refs()
            .await
            .map_err(|err| self.refused(err, "list the refs"))?
        else {
            return Ok(None);
        };
        // Every commit id is shortened, compared and sent back in URLs later: it must be one.
        for (kind, list) in [("branch", &branches), ("tag", &tags)] {
            for r in list {
                crate::names::commit_id(r.commit.clone(), || {
                    format!(
                        "the commit the Hub lists for the {kind} `{}` of `{}`",
                        r.name.chars().take(200).collect::<String>(),
                        self.repo_id
                    )
                })?;
            }
        }
        Ok(Some((branches, tags)))
    }

    /// [`Hub::refs`] with the bare error, for the `landed` checks of writes.
    async fn read_refs(&self) -> Result<Option<(Vec<HubRef>, Vec<HubRef>)>, NetError> {
        const WHAT: &str = "the refs listing";
        let answer = self
            .get(&format!("{}/refs", self.api_url()), WHAT, Limit::Refs)
            .await?;
        if answer.status == 404 {
            return Ok(None);
        }
        if !answer.is_success() {
            return Err(answer.failure(WHAT));
        }
        let refs: hf_hub::repository::GitRefs = answer.json(WHAT)?;
        let convert = |list: Vec<hf_hub::repository::GitRefInfo>| {
            list.into_iter()
                .map(|r| HubRef {
                    name: r.name,
                    commit: r.target_commit,
                })
                .collect::<Vec<_>>()
        };
        Ok(Some((convert(refs.branches), convert(refs.tags))))
    }

    /// Every file at a revision (never `get_file_metadata`: hf-hub bug 2), following the
    /// listing's pages on the Hub's origin only, at most [`net::MAX_PAGES`] of them.
    pub async fn tree(&self, revision: &str) -> anyhow::Result<Vec<RemoteFile>> {
        self.read_tree(revision)
            .await
            .map_err(|err| self.refused(err, &format!("list the files at `{revision}`")))
    }

    async fn read_tree(&self, revision: &str) -> Result<Vec<RemoteFile>, NetError> {
        const WHAT: &str = "the file listing";
        let mut next = Some(format!(
            "{}/tree/{}?recursive=true&expand=true",
            self.api_url(),
            route::segment(revision)
        ));
        let mut files = Vec::new();
        let mut pages = 0;
        let mut read = 0u64;
        while let Some(url) = next.take() {
            if pages == net::MAX_PAGES || read >= net::LISTING_BYTES {
                return Err(NetError::TooManyPages {
                    host: reqwest::Url::parse(&url)
                        .map_or_else(|_| url.clone(), |u| net::host_of(&u)),
                    what: WHAT.to_owned(),
                    pages,
                });
            }
            pages += 1;
            let answer = self.get(&url, WHAT, Limit::Page).await?;
            read += answer.body.len() as u64;
            if !answer.is_success() {
                return Err(answer.failure(WHAT));
            }
            let entries: Vec<RepoTreeEntry> = answer.json(WHAT)?;
            files.extend(entries.into_iter().filter_map(remote_file));
            next = net::next_page(&answer.headers, &answer.url, WHAT)?.map(String::from);
        }
        files.sort_by(|a: &RemoteFile, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Everything the plan needs: refs, the tree the release starts from, the tree at its tag,
    /// the previous release and its metrics.
    pub async fn read_state(
        &self,
        revision: &str,
        tag: &str,
        tag_prefix: &str,
        ours: &semver::Version,
    ) -> anyhow::Result<HubState> {
        let Some((branches, tags)) = self.refs().await? else {
            return Ok(HubState::default());
        };
        let start = if branches.iter().any(|b| b.name == revision) {
            revision
        } else {
            "main"
        };
        let tree = if branches.iter().any(|b| b.name == start) {
            self.tree(start).await?
        } else {
            Vec::new()
        };
        let tag_tree = if tags.iter().any(|t| t.name == tag) {
            Some(self.tree(tag).await?)
        } else {
            None
        };
        let tag_identity = match &tag_tree {
            Some(tree) => self.read_identity(tag, tree).await,
            None => None,
        };
        let head_identity = if branches.iter().any(|b| b.name == start) {
            self.read_identity(start, &tree).await
        } else {
            None
        };
        let released =
            super::version::released_versions(tags.iter().map(|t| t.name.as_str()), tag_prefix);
        let previous_version = released
            .iter()
            .filter(|v| *v < ours && v.pre.is_empty())
            .max();
        // The previous release's metrics live in the model repo; a Space has none to read.
        let previous = match previous_version.filter(|_| self.kind == RepoKind::Model) {
            Some(version) => {
                let previous_tag = format!("{tag_prefix}{version}");
                let metrics = self.read_metrics(&previous_tag).await?;
                Some(PreviousRelease {
                    tag: previous_tag,
                    metrics: metrics.map(|m| m.metrics),
                })
            }
            None => None,
        };
        Ok(HubState {
            exists: true,
            branches,
            tags,
            tree,
            tag_tree,
            tag_identity,
            head_identity,
            previous,
        })
    }

    /// `metrics.json` at a revision, if it has one.
    pub async fn read_metrics(&self, revision: &str) -> anyhow::Result<Option<BundleMetrics>> {
        const FILE: &str = "metrics.json";
        const WHAT: &str = "the paths-info of `metrics.json`";
        let url = format!("{}/paths-info/{}", self.api_url(), route::segment(revision));
        let authorization = self.client_token();
        let body = serde_json::json!({ "paths": [FILE] });
        let listed = net::fetch(&self.backoff, &self.timeouts, WHAT, Limit::Answer, || {
            self.http
                .post(&url)
                .header(reqwest::header::AUTHORIZATION, &authorization)
                .json(&body)
        })
        .await
        .and_then(|answer| {
            if answer.is_success() {
                answer.json::<Vec<RepoTreeEntry>>(WHAT)
            } else {
                Err(answer.failure(WHAT))
            }
        })
        .map_err(|err| self.refused(err, "read `metrics.json`"))?;
        let Some(expected) = listed
            .into_iter()
            .filter_map(remote_file)
            .find(|f| f.path == FILE)
        else {
            return Ok(None);
        };
        let bytes = self
            .read_small_file(revision, &expected, crate::input::MAX_TEXT_BYTES)
            .await?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("`{FILE}` at `{revision}` on the Hub is not UTF-8"))?;
        BundleMetrics::parse(&text)
            .map(Some)
            .with_context(|| format!("`{FILE}` at `{revision}` on the Hub is not a metrics file"))
    }

    /// The bytes of a small regular (not LFS) file the tree at `revision` lists as `expected`.
    /// hf-hub bug 1: a download may return an error page as the file's bytes, so the status is
    /// checked and the bytes are compared with the listed size and git oid before they are
    /// trusted; hf-hub bug 3: only regular files are downloaded this way. The bytes are read up
    /// to the listed size (and `max_bytes`), never preallocated from a header such as
    /// `X-Linked-Size`, which hf-hub's download trusts.
    pub async fn read_small_file(
        &self,
        revision: &str,
        expected: &RemoteFile,
        max_bytes: u64,
    ) -> anyhow::Result<Vec<u8>> {
        let path = &expected.path;
        if expected.lfs {
            anyhow::bail!(
                "`{path}` at `{revision}` on the Hub is stored through LFS/Xet; only small \
                 regular files are read back"
            );
        }
        if expected.size > max_bytes {
            anyhow::bail!(
                "`{path}` at `{revision}` on the Hub has {} bytes, more than the {max_bytes} \
                 this file may have",
                expected.size
            );
        }
        let what = format!("the download of `{path}`");
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            self.web_path(),
            route::segment(revision),
            path.split('/')
                .map(route::segment)
                .collect::<Vec<_>>()
                .join("/")
        );
        let answer = self
            .get(&url, &what, Limit::File(expected.size))
            .await
            .and_then(|answer| {
                if answer.is_success() {
                    Ok(answer)
                } else {
                    Err(answer.failure(&what))
                }
            })
            .map_err(|err| self.refused(err, &format!("download `{path}`")))?;
        let bytes = answer.body;
        if bytes.len() as u64 != expected.size || git_blob_oid_of(&bytes) != expected.git_oid {
            anyhow::bail!(
                "the `{path}` downloaded from `{revision}` on the Hub is not the file the Hub \
                 lists (size or digest differ)"
            );
        }
        Ok(bytes)
    }

    /// A file's bytes at `revision`, streamed by hf-hub, which reads Xet-stored files through
    /// Xet (`verify --download`). The caller bounds the bytes and checks their size and digest.
    pub async fn stream_file(
        &self,
        revision: &str,
        path: &str,
    ) -> anyhow::Result<hf_hub::repository::download::HFByteStream> {
        let (_, stream) = self
            .repo
            .download_file_stream()
            .filename(path)
            .revision(revision)
            .send()
            .await
            .map_err(|err| translate(err, &self.repo_id, &format!("download `{path}`")))?;
        Ok(stream)
    }

    /// The release identity (`release.json`) in `tree`, read at `revision`: `None` when the
    /// tree has none (a release made before identities, or not by this tool).
    pub async fn read_identity(
        &self,
        revision: &str,
        tree: &[RemoteFile],
    ) -> Option<Result<ReleaseIdentity, String>> {
        let listed = tree.iter().find(|f| f.path == IDENTITY_FILE)?;
        let read = async {
            let bytes = self
                .read_small_file(revision, listed, MAX_IDENTITY_BYTES)
                .await?;
            ReleaseIdentity::parse(
                &bytes,
                &format!("`{IDENTITY_FILE}` at `{revision}` on the Hub"),
            )
        };
        Some(read.await.map_err(|err| format!("{err:#}")))
    }

    /// Creates the repo, or finds it. hf-hub bug 7: `exist_ok` takes any 409 for success, the
    /// Hub's passing "another conflicting operation is in progress" included, so it is off: that
    /// 409 is retried, any other means the name exists, and the repo is read back and must be a
    /// repo of our kind we can see. A Space is created as a static one (`sdk: static`), which
    /// the Hub requires to be named at creation.
    pub async fn ensure_repo(&self, private: bool) -> anyhow::Result<()> {
        #[derive(serde::Deserialize)]
        struct Info {
            id: String,
        }
        const WHAT: &str = "the repo's description";
        let sdk = (self.kind == RepoKind::Space).then(|| "static".to_owned());
        let created = self
            .backoff
            .run_write(
                || async {
                    let created = self
                        .client
                        .create_repository()
                        .repo_id(&self.repo_id)
                        .repo_type(self.kind.any())
                        .maybe_space_sdk(sdk.clone())
                        .private(private)
                        .send()
                        .await;
                    match created {
                        Err(err @ HFError::Conflict { .. })
                            if classify(&err) == Failure::Permanent =>
                        {
                            Ok(())
                        }
                        other => other.map(|_| ()),
                    }
                },
                classify,
                || async {
                    Ok(match self.repo.exists().send().await {
                        Ok(true) => Landed::Yes(()),
                        _ => Landed::No,
                    })
                },
            )
            .await;
        created.map_err(|err| translate(err, &self.repo_id, "create the repo"))?;
        let info: Info = self
            .get(&self.api_url(), WHAT, Limit::Page)
            .await
            .and_then(|answer| {
                if answer.is_success() {
                    answer.json(WHAT)
                } else {
                    Err(answer.failure(WHAT))
                }
            })
            .map_err(|err| self.refused(err, "read the repo"))?;
        if info.id != self.repo_id {
            anyhow::bail!(
                "creating the {} `{}` on the Hub found `{}` instead; the name may be taken by \
                 another kind of repo",
                self.kind.noun(),
                self.repo_id,
                info.id.chars().take(200).collect::<String>()
            );
        }
        Ok(())
    }

    /// The commit a branch points at, re-read.
    pub async fn branch_head(&self, branch: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .refs()
            .await?
            .and_then(|(branches, _)| branches.into_iter().find(|b| b.name == branch))
            .map(|b| b.commit))
    }

    /// Creates a prerelease branch from `from` unless it exists.
    pub async fn ensure_branch(&self, branch: &str, from: Option<&str>) -> anyhow::Result<()> {
        if self.branch_head(branch).await?.is_some() {
            return Ok(());
        }
        self.backoff
            .run_write(
                || async {
                    self.repo
                        .create_branch()
                        .branch(branch)
                        .maybe_revision(from.map(str::to_owned))
                        .send()
                        .await
                },
                classify,
                || async {
                    Ok(
                        match self.repo.revision_exists().revision(branch).send().await {
                            Ok(true) => Landed::Yes(()),
                            _ => Landed::No,
                        },
                    )
                },
            )
            .await
            .map_err(|err| translate(err, &self.repo_id, &format!("create the branch `{branch}`")))
    }

    /// hf-hub bug 8: when the Hub's LFS batch does not choose `xet`, hf-hub logs a warning and
    /// puts every binary inline as base64 (which the Hub refuses, or worse, stores as git blobs).
    /// Ask preupload which files go through LFS and the batch endpoint how, and refuse anything
    /// but `xet` before a byte is uploaded.
    async fn require_xet(
        &self,
        revision: &str,
        files: &[(&str, &Path, u64, &str)],
    ) -> anyhow::Result<()> {
        use base64::Engine as _;
        use std::io::Read as _;
        let mut payload = Vec::new();
        for (path, local, size, _) in files {
            let mut sample = Vec::with_capacity(512);
            std::fs::File::open(local)
                .with_context(|| format!("failed to open `{}`", local.display()))?
                .take(512)
                .read_to_end(&mut sample)
                .with_context(|| format!("failed to read `{}`", local.display()))?;
            payload.push(serde_json::json!({
                "path": path,
                "size": size,
                "sample": base64::engine::general_purpose::STANDARD.encode(&sample),
            }));
        }
        let url = format!("{}/preupload/{}", self.api_url(), route::segment(revision));
        let answer: serde_json::Value = self
            .post_json(
                &url,
                "the preupload question",
                &serde_json::json!({ "files": payload }),
                None,
            )
            .await
            .context("failed to ask the Hub how to upload the files (preupload)")?;
        let lfs: Vec<&(&str, &Path, u64, &str)> = files
            .iter()
            .filter(|(path, ..)| {
                answer["files"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|f| f["path"] == *path && f["uploadMode"] == "lfs")
                })
            })
            .collect();
        if lfs.is_empty() {
            return Ok(());
        }
        let objects: Vec<serde_json::Value> = lfs
            .iter()
            .map(|(_, _, size, sha256)| serde_json::json!({ "oid": sha256, "size": size }))
            .collect();
        let url = format!(
            "{}/{}.git/info/lfs/objects/batch",
            self.endpoint,
            self.web_path()
        );
        let body = serde_json::json!({
            "operation": "upload",
            "transfers": ["basic", "multipart", "xet"],
            "objects": objects,
            "hash_algo": "sha256",
            "ref": { "name": revision },
        });
        let answer = self
            .post_json(
                &url,
                "the LFS batch question",
                &body,
                Some("application/vnd.git-lfs+json"),
            )
            .await
            .context("failed to ask the Hub for an upload method (LFS batch)")?;
        if answer["transfer"] != "xet" {
            return Err(PublishError::NoXet {
                transfer: answer["transfer"].as_str().unwrap_or("none").to_owned(),
            }
            .into());
        }
        Ok(())
    }

    fn client_token(&self) -> String {
        self.token
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose()))
            .unwrap_or_default()
    }

    /// Preflight: the token is valid and may write. A `read` token is refused before anything
    /// is uploaded; fine-grained tokens carry their permissions per repo and are let through
    /// (a missing permission then shows at the first write, with the same hint).
    pub async fn check_write_access(&self) -> anyhow::Result<()> {
        const WHAT: &str = "who the token belongs to (whoami)";
        let url = format!("{}/api/whoami-v2", self.endpoint);
        let answer = self
            .get(&url, WHAT, Limit::Answer)
            .await
            .map_err(|err| self.refused(err, "ask who the token belongs to"))?;
        if answer.status == 401 {
            return Err(PublishError::AuthRequired {
                service: "the Hub",
                hint: "`HF_TOKEN` is not a valid token: create one with the `write` role"
                    .to_owned(),
            }
            .into());
        }
        let who: serde_json::Value = if answer.is_success() {
            answer.json(WHAT)
        } else {
            Err(answer.failure(WHAT))
        }
        .map_err(|err| self.refused(err, "ask who the token belongs to"))?;
        if who["auth"]["accessToken"]["role"] == "read" {
            return Err(PublishError::Forbidden {
                service: "the Hub",
                what: format!(
                    "writes to `{}` (the token has the `read` role)",
                    self.repo_id
                ),
                hint: "use a token with the `write` role, or a fine-grained token with write \
                       access to the repo's owner"
                    .to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// The metrics of the latest stable release below `below` (any, without a version): its
    /// tag and `metrics.json`. `None` when the repo or such a release does not exist.
    pub async fn latest_release_metrics(
        &self,
        tag_prefix: &str,
        below: Option<&semver::Version>,
    ) -> anyhow::Result<Option<(String, BundleMetrics)>> {
        let Some((_, tags)) = self.refs().await? else {
            return Ok(None);
        };
        let released =
            super::version::released_versions(tags.iter().map(|t| t.name.as_str()), tag_prefix);
        let Some(latest) = released
            .iter()
            .filter(|v| v.pre.is_empty() && below.is_none_or(|b| *v < b))
            .max()
        else {
            return Ok(None);
        };
        let tag = format!("{tag_prefix}{latest}");
        Ok(self.read_metrics(&tag).await?.map(|m| (tag, m)))
    }

    /// A bounded JSON `POST` with our token, retried within the backoff; 401 and 403 say which
    /// permission is missing.
    async fn post_json(
        &self,
        url: &str,
        what: &str,
        body: &serde_json::Value,
        content_type: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let authorization = self.client_token();
        let answer = net::fetch(&self.backoff, &self.timeouts, what, Limit::Answer, || {
            let mut request = self
                .http
                .post(url)
                .header(reqwest::header::AUTHORIZATION, &authorization)
                .json(body);
            if let Some(kind) = content_type {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, kind)
                    .header(reqwest::header::ACCEPT, kind);
            }
            request
        })
        .await
        .map_err(NetError::into_error)?;
        if answer.status == 401 || answer.status == 403 {
            return Err(PublishError::AuthRequired {
                service: "the Hub",
                hint: format!("give the `HF_TOKEN` write access to `{}`", self.repo_id),
            }
            .into());
        }
        if !answer.is_success() {
            return Err(answer.failure(what).into_error());
        }
        answer.json(what).map_err(NetError::into_error)
    }

    /// One commit with every added, replaced and deleted file of the plan, based on
    /// `parent_commit`. A conflict (the branch moved) is reported, never overwritten. After an
    /// ambiguous failure (connection lost, 5xx) the branch is re-read: a commit that landed is
    /// recognised by its parent and its files and not sent again.
    pub async fn commit(
        &self,
        plan: &HubPlan,
        bundle: &Path,
        files: &[BundleFile],
    ) -> anyhow::Result<String> {
        let mut operations = Vec::new();
        let mut uploads = Vec::new();
        for file in &plan.files {
            match file.action {
                FileAction::Add | FileAction::Replace => {
                    let local = bundle.join(&file.path);
                    operations.push(CommitOperation::Add {
                        path_in_repo: file.path.clone(),
                        source: AddSource::File(local.clone()),
                    });
                    uploads.push((
                        file.path.as_str(),
                        local,
                        file.bytes,
                        file.sha256.as_deref(),
                    ));
                }
                FileAction::Delete => operations.push(CommitOperation::Delete {
                    path_in_repo: file.path.clone(),
                }),
                FileAction::Unchanged | FileAction::Keep => {}
            }
        }
        let checks: Vec<(&str, &Path, u64, &str)> = uploads
            .iter()
            .map(|(p, l, b, s)| (*p, l.as_path(), *b, s.unwrap_or_default()))
            .collect();
        self.require_xet(&plan.revision, &checks).await?;
        let parent = plan.parent_commit.clone();
        let result = self
            .backoff
            .run_write(
                || {
                    let call = self
                        .repo
                        .create_commit()
                        .operations(operations.clone())
                        .commit_message(plan.commit_message.clone())
                        .commit_description(plan.commit_description.clone())
                        .revision(plan.revision.clone())
                        .maybe_parent_commit(parent.clone());
                    async move {
                        call.send()
                            .await
                            .map(|info| info.commit_oid.unwrap_or_default())
                    }
                },
                classify,
                || self.landed_commit(plan, files, bundle),
            )
            .await;
        match result {
            Ok(oid) if oid.is_empty() => self
                .branch_head(&plan.revision)
                .await?
                .context("the Hub accepted the commit but the branch has no head"),
            Ok(oid) => crate::names::commit_id(oid, || {
                format!("the commit the Hub answered for `{}`", self.repo_id)
            }),
            Err(HFError::Conflict { .. }) => Err(self.conflict(plan).await),
            Err(HFError::Http { context }) if context.status.as_u16() == 412 => {
                Err(self.conflict(plan).await)
            }
            Err(err) => Err(translate(err, &self.repo_id, "commit the release")),
        }
    }

    async fn conflict(&self, plan: &HubPlan) -> anyhow::Error {
        let head = self.branch_head(&plan.revision).await.ok().flatten();
        PublishError::Conflict {
            what: format!(
                "`{}` on the Hub moved from `{}` to `{}` since the plan was made; another \
                 publish may be running",
                plan.revision,
                plan.parent_commit.as_deref().unwrap_or("(none)"),
                head.as_deref().unwrap_or("(unknown)")
            ),
        }
        .into()
    }

    /// Whether our commit landed although its answer was lost: the branch moved on from our
    /// parent, and the new head's tree is exactly the bundle (plus kept files).
    async fn landed_commit(
        &self,
        plan: &HubPlan,
        files: &[BundleFile],
        bundle: &Path,
    ) -> Result<Landed<String>, HFError> {
        let Some((branches, _)) = self.read_refs().await.map_err(|err| hf_error(&err))? else {
            return Ok(Landed::No);
        };
        let Some(head) = branches
            .into_iter()
            .find(|b| b.name == plan.revision)
            .map(|b| b.commit)
            .filter(|head| crate::names::is_commit_id(head))
        else {
            return Ok(Landed::No);
        };
        if plan.parent_commit.as_deref() == Some(head.as_str()) {
            return Ok(Landed::No);
        }
        let Ok(tree) = self.tree(&head).await else {
            return Ok(Landed::No);
        };
        let same = super::plan::differing_files(files, &tree, &|f| {
            git_blob_oid(&bundle.join(&f.path)).ok()
        })
        .iter()
        .all(|d| d.ends_with("is not in the bundle"));
        Ok(if same { Landed::Yes(head) } else { Landed::No })
    }

    /// Reads the tree at `commit` back and compares every bundle file's size and digest.
    pub async fn verify(
        &self,
        commit: &str,
        files: &[BundleFile],
        bundle: &Path,
    ) -> anyhow::Result<()> {
        let tree = self.tree(commit).await?;
        let mut problems = Vec::new();
        for file in files {
            let Some(remote) = tree.iter().find(|r| r.path == file.path) else {
                problems.push(format!("`{}` is missing", file.path));
                continue;
            };
            if remote.size != file.bytes {
                problems.push(format!(
                    "`{}` has {} bytes on the Hub, {} here",
                    file.path, remote.size, file.bytes
                ));
                continue;
            }
            let same =
                super::plan::is_same(file, remote, &|f| git_blob_oid(&bundle.join(&f.path)).ok());
            if !same {
                problems.push(format!("`{}` differs", file.path));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "reading commit `{commit}` back from the Hub found: {}",
                problems.join("; ")
            )
        }
    }

    /// Tags `commit`. A tag that exists already must point at it.
    pub async fn tag(&self, tag: &str, commit: &str, message: &str) -> anyhow::Result<()> {
        let pointing =
            |tags: Vec<HubRef>| tags.into_iter().find(|t| t.name == tag).map(|t| t.commit);
        let result = self
            .backoff
            .run_write(
                || {
                    self.repo
                        .create_tag()
                        .tag(tag)
                        .revision(commit)
                        .message(message.to_owned())
                        .send()
                },
                classify,
                || async {
                    let tags = self
                        .read_refs()
                        .await
                        .map_err(|err| hf_error(&err))?
                        .map(|(_, tags)| tags)
                        .unwrap_or_default();
                    Ok(match pointing(tags) {
                        Some(found) if found == commit => Landed::Yes(()),
                        _ => Landed::No,
                    })
                },
            )
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(HFError::Conflict { .. }) => {
                let tags = self.refs().await?.map(|(_, t)| t).unwrap_or_default();
                match pointing(tags) {
                    Some(found) if found == commit => Ok(()),
                    found => Err(PublishError::Conflict {
                        what: format!(
                            "the Hub tag `{tag}` already points at `{}`, not at `{commit}`",
                            found.as_deref().unwrap_or("(unknown)")
                        ),
                    }
                    .into()),
                }
            }
            Err(err) => Err(translate(
                err,
                &self.repo_id,
                &format!("create the tag `{tag}`"),
            )),
        }
    }

    /// How long a re-read waits for a lagging server; kept for tests that shorten it.
    pub fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = backoff;
    }
}

/// One of our reads failed inside a write's `landed` check, which speaks hf-hub's error type:
/// carried as its message.
fn hf_error(err: &NetError) -> HFError {
    HFError::Other(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_oids_match_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").expect("write");
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_oid(&path).expect("oid"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
