//! GitHub through octocrab 0.54.9: the tag, a draft release, its assets uploaded from disk and
//! verified against GitHub's digests, then the release published (octocrab.md).
//!
//! octocrab re-sends failed requests, POSTs included, with no backoff: its retries are off
//! (`RetryConfig::None`) and every call goes through `retry::Backoff`. Assets are streamed
//! from disk with a percent-encoded name (octocrab's `upload_asset` takes the whole file in
//! memory and does not encode the name). Drafts are invisible to `releases/tags/{tag}`, so the
//! release of a tag is found by listing.
//!
//! octocrab reads every answer whole and has no deadline for a whole request, so each call goes
//! through [`GitHub::call`]: octocrab's raw request (with its connect, read and write timeouts),
//! the whole exchange under the request deadline of `net::Timeouts`, the answer read within a
//! `net::Limit`; listings follow `Link: rel="next"` on the API's origin only (`net::next_page`).

use std::path::Path;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use octocrab::Octocrab;
use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::error::PublishError;
use super::net::{self, Limit, NetError, Timeouts};
use super::plan::{GithubAsset, GithubRelease, GithubState};
use super::retry::{self, Backoff, Failure, Landed};
use super::route;
use crate::secrets::Token;

/// A connection to one repository.
pub struct GitHub {
    octo: Octocrab,
    uploader: reqwest::Client,
    api: Url,
    repo: String,
    uploads: String,
    token: Token,
    backoff: Backoff,
    timeouts: Timeouts,
}

/// The HTTP methods the release needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

#[derive(Deserialize)]
struct RefJson {
    object: RefObject,
}

#[derive(Deserialize)]
struct RefObject {
    sha: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct TagJson {
    object: RefObject,
}

/// A release as GitHub's REST API answers it (also read by `verify`).
#[derive(Deserialize)]
pub(crate) struct ReleaseJson {
    id: u64,
    tag_name: String,
    draft: bool,
    prerelease: bool,
    html_url: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    assets: Vec<AssetJson>,
}

#[derive(Deserialize)]
pub(crate) struct AssetJson {
    id: u64,
    name: String,
    size: u64,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

impl From<AssetJson> for GithubAsset {
    fn from(a: AssetJson) -> Self {
        Self {
            id: a.id,
            name: a.name,
            size: a.size,
            digest: a.digest,
            state: a.state.unwrap_or_else(|| "uploaded".to_owned()),
        }
    }
}

impl From<ReleaseJson> for GithubRelease {
    fn from(r: ReleaseJson) -> Self {
        Self {
            id: r.id,
            tag: r.tag_name,
            draft: r.draft,
            prerelease: r.prerelease,
            html_url: r.html_url,
            identity: r.body.as_deref().and_then(super::notes::identity_in_notes),
            assets: r.assets.into_iter().map(Into::into).collect(),
        }
    }
}

fn status_of(err: &octocrab::Error) -> Option<u16> {
    match err {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// How an octocrab error is treated by the retry policy (`retry::classify_status`, which tells
/// GitHub's rate limits from its permission errors by their headers and message).
pub fn classify(err: &octocrab::Error) -> Failure {
    match err {
        octocrab::Error::GitHub { source, .. } => retry::classify_status(
            source.status_code.as_u16(),
            source.headers.as_ref(),
            &source.message,
        ),
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => Failure::Transient(None),
        other => net_error(other).map_or(Failure::Permanent, NetError::classify),
    }
}

/// Our own failure (a deadline, a bound, a foreign `Link`) carried inside octocrab's error type.
fn net_error(err: &octocrab::Error) -> Option<&NetError> {
    match err {
        octocrab::Error::Other { source, .. } => source.downcast_ref::<NetError>(),
        _ => None,
    }
}

fn octocrab_error(err: NetError) -> octocrab::Error {
    octocrab::Error::Other {
        source: Box::new(err),
        backtrace: std::backtrace::Backtrace::disabled(),
    }
}

/// The rate limit an error reports, if it is one: never a permission problem.
fn rate_limited(err: &octocrab::Error) -> Option<PublishError> {
    let octocrab::Error::GitHub { source, .. } = err else {
        return None;
    };
    let limit = retry::rate_limit(
        source.status_code.as_u16(),
        source.headers.as_ref(),
        &source.message,
    )?;
    Some(PublishError::RateLimited {
        service: "GitHub",
        retry_after: match limit {
            retry::RateLimit::Wait(wait) => Some(wait.as_secs()),
            retry::RateLimit::Unknown => None,
        },
    })
}

/// Translates an octocrab error; authentication and permission errors get a token-scope hint,
/// rate limits (403 or 429 too) say so instead. `host` is the API's, named in every failure
/// (a proxy or an Enterprise server may be the one answering).
pub fn translate(err: &octocrab::Error, repo: &str, host: &str, doing: &str) -> anyhow::Error {
    let context = format!("failed to {doing} on GitHub (`{repo}` at `{host}`)");
    if let Some(limited) = rate_limited(err) {
        return anyhow::Error::from(limited).context(context);
    }
    match status_of(err) {
        Some(401) => PublishError::AuthRequired {
            service: "GitHub",
            hint: "set `GITHUB_TOKEN` (in a workflow: `${{ secrets.GITHUB_TOKEN }}`)".to_owned(),
        }
        .into(),
        Some(403 | 404) if doing.starts_with("create") || doing.starts_with("upload") => {
            PublishError::Forbidden {
                service: "GitHub",
                what: format!("`{repo}`"),
                hint: "the workflow job needs `permissions: contents: write`".to_owned(),
            }
            .into()
        }
        _ => {
            let message = match err {
                octocrab::Error::GitHub { source, .. } => {
                    format!(
                        "HTTP {}: {}",
                        source.status_code,
                        net::excerpt(&source.message, 300)
                    )
                }
                octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => {
                    format!("could not reach GitHub: {}", net::excerpt(&chain(err), 300))
                }
                other => match net_error(other) {
                    Some(net) => {
                        let problem = crate::error::Problem::new(net.to_string());
                        let problem = match net.hint() {
                            Some(hint) => problem.hint(hint),
                            None => problem,
                        };
                        return anyhow::Error::new(problem).context(context);
                    }
                    None => net::excerpt(&other.to_string(), 600),
                },
            };
            anyhow::anyhow!("{message}").context(context)
        }
    }
}

/// Whether a transport error is one of the connect, read or write timeouts (hyper-timeout
/// reports them as `io::ErrorKind::TimedOut` somewhere in the chain).
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(cause) = current {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = cause.source();
    }
    false
}

/// An error and its causes, on one line (a transport error says why only in its sources).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The message of a GitHub error answer.
fn message_of(err: &octocrab::Error) -> &str {
    match err {
        octocrab::Error::GitHub { source, .. } => &source.message,
        _ => "",
    }
}

impl GitHub {
    /// `/repos/{owner}/{name}` and `rest`, the repository's parts percent-encoded (checked by
    /// [`GitHub::new`]).
    fn route(&self, rest: &str) -> String {
        let repo = route::repo(&self.repo).expect("checked when the client was made");
        format!("/repos/{repo}{rest}")
    }

    /// A client for `repo` (`owner/name`); octocrab's own retries are off, its connections
    /// carry the connect, read and write limits of `timeouts`.
    pub fn new(
        api: &str,
        uploads: &str,
        token: &Token,
        repo: &str,
        timeouts: &Timeouts,
    ) -> anyhow::Result<Self> {
        route::repo(repo)?;
        let octo = Octocrab::builder()
            .personal_token(token.expose().to_owned())
            .base_uri(api)
            .with_context(|| format!("`GITHUB_API_URL` = `{api}` is not a URL"))?
            .upload_uri(uploads)
            .with_context(|| format!("the upload URL `{uploads}` is not a URL"))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(timeouts.connect))
            .set_read_timeout(Some(timeouts.read))
            .set_write_timeout(Some(timeouts.read))
            .build()
            .context("failed to set up the GitHub client")?;
        Ok(Self {
            octo,
            uploader: net::upload_client(timeouts)?,
            api: Url::parse(api)
                .with_context(|| format!("`GITHUB_API_URL` = `{api}` is not a URL"))?,
            repo: repo.to_owned(),
            uploads: uploads.trim_end_matches('/').to_owned(),
            token: token.clone(),
            backoff: Backoff::default(),
            timeouts: *timeouts,
        })
    }

    /// [`translate`] for this repository and API host.
    fn refused(&self, err: &octocrab::Error, doing: &str) -> anyhow::Error {
        translate(err, &self.repo, &net::host_of(&self.api), doing)
    }

    /// One API call through octocrab, bounded: the whole exchange within the request deadline,
    /// the answer read within `limit` (an error answer only far enough to quote it). Returns the
    /// answer's headers and body; a failed status is octocrab's `GitHub` error, as its own calls
    /// return it.
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&serde_json::Value>,
        what: &str,
        limit: Limit,
    ) -> Result<(HeaderMap, Bytes), octocrab::Error> {
        let host = self
            .api
            .join(uri)
            .map_or_else(|_| net::host_of(&self.api), |u| net::host_of(&u));
        let exchange = async {
            let response = match method {
                Method::Get => self.octo._get(uri).await?,
                Method::Post => self.octo._post(uri, body).await?,
                Method::Patch => self.octo._patch(uri, body).await?,
                Method::Delete => self.octo._delete(uri, body).await?,
            };
            let (parts, mut stream) = response.into_parts();
            let success = parts.status.is_success();
            let bound = if success { limit.bytes() } else { 64 * 1024 };
            let mut bytes = Vec::new();
            while let Some(frame) = stream.frame().await {
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                let room = bound.saturating_sub(bytes.len() as u64) as usize;
                if data.len() > room {
                    if !success {
                        bytes.extend_from_slice(&data[..room]);
                        break;
                    }
                    return Err(octocrab_error(NetError::TooLarge {
                        host: host.clone(),
                        what: what.to_owned(),
                        limit: limit.bytes(),
                    }));
                }
                bytes.extend_from_slice(&data);
            }
            let bytes = Bytes::from(bytes);
            if success {
                return Ok((parts.headers, bytes));
            }
            let body = http_body_util::Full::new(bytes)
                .map_err(|never| match never {})
                .boxed();
            octocrab::map_github_error(http::Response::from_parts(parts, body)).await?;
            unreachable!("an answer that is not a success maps to an error")
        };
        match tokio::time::timeout(self.timeouts.request, exchange).await {
            // A broken or silent connection, in words that name the host.
            Ok(Err(err @ (octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }))) => {
                Err(octocrab_error(if is_timeout(&err) {
                    NetError::TimedOut {
                        host,
                        what: what.to_owned(),
                        timeouts: self.timeouts,
                    }
                } else {
                    NetError::Unreachable {
                        host,
                        what: what.to_owned(),
                        detail: net::excerpt(&chain(&err), 300),
                    }
                }))
            }
            Ok(result) => result,
            Err(_) => Err(octocrab_error(NetError::TimedOut {
                host,
                what: what.to_owned(),
                timeouts: self.timeouts,
            })),
        }
    }

    /// [`GitHub::call`] within the backoff, the answer as JSON of type `T`.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<T, octocrab::Error> {
        let (_, bytes) = self.call(method, uri, body, what, Limit::Answer).await?;
        parse(&bytes, &net::host_of(&self.api), what)
    }

    /// Preflight: the repository exists for this token, a personal token may push, and the
    /// repository holds the source commit.
    ///
    /// `permissions.push` is trusted only for personal tokens: installation tokens (`ghs_`: the
    /// Actions `GITHUB_TOKEN`, GitHub App tokens) may read `push: false`, or no `permissions`
    /// at all, for a repository they can write to. An installation token that really lacks
    /// `contents: write` is refused at the first write, with the same hint.
    pub async fn check_push_access(&self, commit: Option<&str>) -> anyhow::Result<()> {
        let route = self.route("");
        let repo: Result<serde_json::Value, _> = self
            .backoff
            .run(
                || self.json(Method::Get, &route, None, "the repository"),
                classify,
            )
            .await;
        match repo {
            Ok(repo) => {
                let installation = self.token.expose().starts_with("ghs_");
                if !installation && repo["permissions"]["push"] == false {
                    return Err(PublishError::Forbidden {
                        service: "GitHub",
                        what: format!("pushes to `{}`", self.repo),
                        hint: "the workflow job needs `permissions: contents: write`".to_owned(),
                    }
                    .into());
                }
            }
            Err(err) if status_of(&err) == Some(404) && rate_limited(&err).is_none() => {
                return Err(PublishError::Forbidden {
                    service: "GitHub",
                    what: format!("`{}` (not found for this token)", self.repo),
                    hint: "check `model.github-repo`, and that `GITHUB_TOKEN` can read it"
                        .to_owned(),
                }
                .into());
            }
            Err(err) => {
                return Err(self.refused(&err, "read the repository"));
            }
        }
        let Some(commit) = commit else {
            return Ok(());
        };
        let route = self.route(&format!("/commits/{}", route::segment(commit)));
        let found: Result<serde_json::Value, _> = self
            .backoff
            .run(
                || self.json(Method::Get, &route, None, "the source commit"),
                classify,
            )
            .await;
        match found {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(status_of(&err), Some(404 | 422)) && rate_limited(&err).is_none() =>
            {
                Err(self.commit_missing(commit))
            }
            Err(err) => Err(self.refused(&err, &format!("read the source commit `{commit}`"))),
        }
    }

    /// The source commit is not on GitHub: a tag cannot point at it.
    fn commit_missing(&self, commit: &str) -> anyhow::Error {
        crate::error::Problem::new(format!(
            "the source commit `{commit}` is not on GitHub (`{}`): the release tag cannot point \
             at it",
            self.repo
        ))
        .hint("push the commit to GitHub first (`git push`), then re-run `publish`")
        .into()
    }

    /// The commit a tag points at (through an annotated tag object if need be).
    pub async fn tag_commit(&self, tag: &str) -> anyhow::Result<Option<String>> {
        let route = self.route(&format!("/git/ref/tags/{}", route::segment(tag)));
        let found: Result<RefJson, _> = self
            .backoff
            .run(|| self.json(Method::Get, &route, None, "a tag"), classify)
            .await;
        let reference = match found {
            Ok(r) => r,
            Err(err) if status_of(&err) == Some(404) => return Ok(None),
            Err(err) => {
                return Err(self.refused(&err, &format!("read the tag `{tag}`")));
            }
        };
        // Both ids go into a route or a message: they must be commit (or tag object) ids.
        let what = || {
            format!(
                "the object GitHub lists for the tag `{tag}` of `{}`",
                self.repo
            )
        };
        let sha = crate::names::commit_id(reference.object.sha, what)?;
        if reference.object.kind != "tag" {
            return Ok(Some(sha));
        }
        let route = self.route(&format!("/git/tags/{}", route::segment(&sha)));
        let object: TagJson = self
            .backoff
            .run(
                || self.json(Method::Get, &route, None, "a tag object"),
                classify,
            )
            .await
            .map_err(|err| self.refused(&err, &format!("read the tag `{tag}`")))?;
        let commit = crate::names::commit_id(object.object.sha, || {
            format!(
                "the commit GitHub lists for the tag `{tag}` of `{}`",
                self.repo
            )
        })?;
        Ok(Some(commit))
    }

    /// Every item of a listing, following GitHub's `Link: <…>; rel="next"` pages on the API's
    /// origin only, at most [`net::MAX_PAGES`] of them and [`net::LISTING_BYTES`] in all.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        what: &str,
    ) -> Result<Vec<T>, octocrab::Error> {
        let mut all = Vec::new();
        let mut next = Some(route.to_owned());
        let mut pages = 0;
        let mut read = 0u64;
        while let Some(uri) = next.take() {
            let current = self.api.join(&uri).map_err(|err| {
                octocrab_error(NetError::Malformed {
                    host: net::host_of(&self.api),
                    what: what.to_owned(),
                    detail: err.to_string(),
                })
            })?;
            if pages == net::MAX_PAGES || read >= net::LISTING_BYTES {
                return Err(octocrab_error(NetError::TooManyPages {
                    host: net::host_of(&current),
                    what: what.to_owned(),
                    pages,
                }));
            }
            pages += 1;
            let (headers, bytes) = self
                .backoff
                .run(
                    || self.call(Method::Get, &uri, None, what, Limit::Page),
                    classify,
                )
                .await?;
            read += bytes.len() as u64;
            let mut items: Vec<T> = parse(&bytes, &net::host_of(&current), what)?;
            all.append(&mut items);
            next = net::next_page(&headers, &current, what)
                .map_err(octocrab_error)?
                .map(String::from);
        }
        Ok(all)
    }

    /// Every release, drafts included (listed only for users with push access).
    async fn releases(&self) -> Result<Vec<ReleaseJson>, octocrab::Error> {
        self.all_pages(&self.route("/releases?per_page=100"), "the release list")
            .await
    }

    /// The release of `tag` (or its draft), the tags of published releases and the tag.
    pub async fn read_state(&self, tag: &str) -> anyhow::Result<GithubState> {
        let releases = self
            .releases()
            .await
            .map_err(|err| self.refused(&err, "list the releases"))?;
        let mut release = None;
        let mut released_tags = Vec::new();
        for r in releases {
            if !r.draft {
                released_tags.push(r.tag_name.clone());
            }
            if r.tag_name == tag && (release.is_none() || !r.draft) {
                release = Some(GithubRelease::from(r));
            }
        }
        Ok(GithubState {
            tag_commit: self.tag_commit(tag).await?,
            release,
            released_tags,
        })
    }

    /// Creates the tag on `commit`, or accepts it when it points there already.
    pub async fn ensure_tag(&self, tag: &str, commit: &str) -> anyhow::Result<()> {
        let route = self.route("/git/refs");
        let body = serde_json::json!({ "ref": format!("refs/tags/{tag}"), "sha": commit });
        let created: Result<serde_json::Value, _> = self
            .backoff
            .run_write(
                || self.json(Method::Post, &route, Some(&body), "the new tag"),
                classify,
                || async {
                    Ok(match self.tag_commit(tag).await {
                        Ok(Some(found)) if found == commit => Landed::Yes(serde_json::Value::Null),
                        _ => Landed::No,
                    })
                },
            )
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if status_of(&err) == Some(422) && message_of(&err).contains("does not exist") =>
            {
                Err(self.commit_missing(commit))
            }
            Err(err) if status_of(&err) == Some(422) => match self.tag_commit(tag).await? {
                Some(found) if found == commit => Ok(()),
                found => Err(PublishError::Conflict {
                    what: format!(
                        "the GitHub tag `{tag}` already points at `{}`, not at `{commit}`",
                        found.as_deref().unwrap_or("(unknown)")
                    ),
                }
                .into()),
            },
            Err(err) => Err(self.refused(&err, &format!("create the tag `{tag}`"))),
        }
    }

    /// The release of `tag`: an existing one, or a new draft.
    pub async fn ensure_draft(
        &self,
        tag: &str,
        name: &str,
        notes: &str,
        prerelease: bool,
    ) -> anyhow::Result<GithubRelease> {
        let find = || async {
            let releases = self.releases().await?;
            Ok::<_, octocrab::Error>(
                releases
                    .into_iter()
                    .filter(|r| r.tag_name == tag)
                    .min_by_key(|r| r.draft)
                    .map(GithubRelease::from),
            )
        };
        if let Some(existing) = find()
            .await
            .map_err(|err| self.refused(&err, "list the releases"))?
        {
            return Ok(existing);
        }
        let route = self.route("/releases");
        let body = serde_json::json!({
            "tag_name": tag,
            "name": name,
            "body": notes,
            "draft": true,
            "prerelease": prerelease,
        });
        let created: Result<ReleaseJson, _> = self
            .backoff
            .run_write(
                || self.json(Method::Post, &route, Some(&body), "the new release"),
                classify,
                || async {
                    Ok(match find().await? {
                        Some(r) => Landed::Yes(ReleaseJson {
                            id: r.id,
                            tag_name: r.tag,
                            draft: r.draft,
                            prerelease: r.prerelease,
                            html_url: r.html_url,
                            body: None,
                            assets: Vec::new(),
                        }),
                        None => Landed::No,
                    })
                },
            )
            .await;
        match created {
            Ok(r) => Ok(r.into()),
            // Another run created it meanwhile: use theirs.
            Err(err) if status_of(&err) == Some(422) => find()
                .await
                .map_err(|err| self.refused(&err, "list the releases"))?
                .context("GitHub says the release exists but does not list it"),
            Err(err) => Err(self.refused(&err, &format!("create the release `{tag}`"))),
        }
    }

    /// Deletes an asset (a partial or different one of the same name).
    pub async fn delete_asset(&self, id: u64) -> anyhow::Result<()> {
        let route = self.route(&format!("/releases/assets/{id}"));
        let deleted = self
            .backoff
            .run(
                || async {
                    self.call(
                        Method::Delete,
                        &route,
                        None,
                        "an asset deletion",
                        Limit::Answer,
                    )
                    .await
                    .map(|_| ())
                },
                classify,
            )
            .await;
        match deleted {
            Ok(()) => Ok(()),
            Err(err) if status_of(&err) == Some(404) => Ok(()),
            Err(err) => Err(self.refused(&err, "delete a partial asset")),
        }
    }

    /// The assets of a release, re-read: every page (a release holds up to 1000).
    async fn assets(&self, release: u64) -> anyhow::Result<Vec<GithubAsset>> {
        let assets: Vec<AssetJson> = self
            .all_pages(
                &self.route(&format!("/releases/{release}/assets?per_page=100")),
                "the asset list",
            )
            .await
            .map_err(|err| self.refused(&err, "list the release assets"))?;
        Ok(assets.into_iter().map(Into::into).collect())
    }

    /// Uploads `path` as asset `name`, streamed from disk, and checks GitHub's digest. An asset
    /// of that name that is partial or differs is deleted first; an identical one is kept.
    pub async fn upload_asset(
        &self,
        release: u64,
        name: &str,
        path: &Path,
        bytes: u64,
        sha256: &str,
    ) -> anyhow::Result<bool> {
        let expected = format!("sha256:{sha256}");
        let matches = |a: &GithubAsset| {
            a.name == name
                && a.state == "uploaded"
                && a.size == bytes
                && a.digest.as_deref().is_none_or(|d| d == expected)
        };
        for asset in self.assets(release).await? {
            if asset.name == name {
                if matches(&asset) {
                    return Ok(false);
                }
                self.delete_asset(asset.id).await?;
            }
        }
        let url = format!(
            "{}{}",
            self.uploads,
            self.route(&format!(
                "/releases/{release}/assets?name={}",
                route::segment(name)
            ))
        );
        let mut failures = 0;
        loop {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("failed to open `{}`", path.display()))?;
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                file,
                1 << 16,
            ));
            let request = self
                .uploader
                .post(&url)
                .bearer_auth(self.token.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, bytes)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .timeout(self.timeouts.upload(bytes))
                .body(body);
            let what = format!("the upload of `{name}`");
            let sent = net::send(request, &what, Limit::Answer, &self.timeouts).await;
            let (failure, limited, problem) = match sent {
                Ok(answer) if answer.is_success() => {
                    let asset: AssetJson = answer
                        .json(&what)
                        .map_err(NetError::into_error)
                        .context("GitHub's answer to an asset upload is not an asset")?;
                    let asset = GithubAsset::from(asset);
                    if asset.size != bytes || asset.digest.as_deref().is_some_and(|d| d != expected)
                    {
                        anyhow::bail!(
                            "GitHub stored the asset `{name}` as {} bytes with digest `{}`; the \
                             file has {bytes} bytes and `{expected}`",
                            asset.size,
                            asset.digest.as_deref().unwrap_or("(none)")
                        );
                    }
                    return Ok(true);
                }
                Ok(answer) => {
                    let status = answer.status;
                    let message = answer.message();
                    let limited = retry::rate_limit(status, Some(&answer.headers), &message);
                    if limited.is_none() && (status == 401 || status == 403) {
                        return Err(PublishError::Forbidden {
                            service: "GitHub",
                            what: format!("release assets of `{}`", self.repo),
                            hint: "the workflow job needs `permissions: contents: write`"
                                .to_owned(),
                        }
                        .into());
                    }
                    let failure = answer.failure(&what);
                    (failure.classify(), limited, failure)
                }
                Err(err) => (err.classify(), None, err),
            };
            failures += 1;
            let Failure::Transient(retry_after) = failure else {
                return Err(problem
                    .into_error()
                    .context(format!("failed to upload the asset `{name}` to GitHub")));
            };
            if failures >= self.backoff.attempts
                || retry_after.is_some_and(|after| after > self.backoff.max_wait)
            {
                if let Some(limit) = limited {
                    return Err(anyhow::Error::from(PublishError::RateLimited {
                        service: "GitHub",
                        retry_after: match limit {
                            retry::RateLimit::Wait(wait) => Some(wait.as_secs()),
                            retry::RateLimit::Unknown => None,
                        },
                    })
                    .context(format!("failed to upload the asset `{name}` to GitHub")));
                }
                return Err(problem
                    .into_error()
                    .context(format!("failed to upload the asset `{name}` to GitHub")));
            }
            tokio::time::sleep(self.backoff.wait(failures, retry_after)).await;
            // Did it land although the answer was lost? Keep it; else remove the partial one.
            for asset in self.assets(release).await? {
                if asset.name == name {
                    if matches(&asset) {
                        return Ok(true);
                    }
                    self.delete_asset(asset.id).await?;
                }
            }
        }
    }

    /// Updates the notes and publishes the draft; returns the release's web address.
    pub async fn publish(
        &self,
        release: u64,
        notes: &str,
        make_latest: bool,
    ) -> anyhow::Result<String> {
        let route = self.route(&format!("/releases/{release}"));
        let body = serde_json::json!({
            "draft": false,
            "body": notes,
            "make_latest": if make_latest { "true" } else { "false" },
        });
        // PATCH is idempotent: repeating it is safe.
        let published: ReleaseJson = self
            .backoff
            .run(
                || self.json(Method::Patch, &route, Some(&body), "the published release"),
                classify,
            )
            .await
            .map_err(|err| self.refused(&err, "publish the release"))?;
        Ok(published.html_url)
    }
}

/// An answer's body as JSON of type `T`.
fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    host: &str,
    what: &str,
) -> Result<T, octocrab::Error> {
    serde_json::from_slice(bytes).map_err(|err| {
        octocrab_error(NetError::Malformed {
            host: host.to_owned(),
            what: what.to_owned(),
            detail: net::excerpt(&err.to_string(), 300),
        })
    })
}
