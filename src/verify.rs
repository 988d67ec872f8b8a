//! `verify`: whoever downloads a release checks that its files are the ones the release built,
//! on the Hub and on GitHub alike.
//!
//! A Hub release (`owner/name@v1.2.0`) is checked file by file against its `SHA256SUMS`, without
//! downloading the large files: the Hub lists an LFS/Xet file by the git oid of its LFS pointer,
//! which is a digest of its sha256 and size (`plan::lfs_pointer_oid`), so comparing the listed
//! oid with the pointer of `SHA256SUMS`'s digest checks the sha256 the Hub stores. Small files
//! are read (within their listed size, checked against their git oid) and hashed. With
//! `--download DIR` every file is streamed to `DIR` and hashed on the way; only matching files
//! are kept. The GitHub release of the same tag must carry the same `SHA256SUMS`, and each of its
//! assets the digest `SHA256SUMS` gives the file of that name: the two registries must agree.
//!
//! A downloaded folder (a bundle, `check`'s `--out` folder, or `hf download --local-dir`) is
//! checked against its own `SHA256SUMS` and, beside a bundle, `check`'s `manifest.json`.
//!
//! Every missing, extra or different file is named and the exit code is 1; an error (no
//! `SHA256SUMS`, the network) is exit code 2. No token is needed for public repositories;
//! `HF_TOKEN` and `GITHUB_TOKEN` are used when set. Every read goes through the network layer of
//! `publish` (its timeouts, body bounds, retries and same-origin listing rules).
//!
//! Layer 6, a pipeline beside `publish`, whose Hub and GitHub readers it reuses.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sha2::Digest as _;

use crate::digest::hex;
use crate::env::EnvSnapshot;
use crate::error::Outcome;
use crate::error::Problem;
use crate::publish::github::ReleaseJson;
use crate::publish::net::{self, Limit, NetError, Timeouts};
use crate::publish::plan::{GithubRelease, RemoteFile, lfs_pointer_oid};
use crate::publish::retry::Backoff;
use crate::publish::{hub::Hub, route};
use crate::report::Reporter;
use crate::secrets::Token;
use crate::sums::{self, MAX_SUMS_BYTES, SUMS_FILE};

/// Largest small (non-LFS) Hub file read into memory to hash it; larger ones are streamed.
const MAX_READ_BYTES: u64 = 10 * 1024 * 1024;

/// Files the Hub or `hf download` add that are no part of a release.
fn is_service_file(path: &str) -> bool {
    path == ".gitattributes" || path.starts_with(".cache/huggingface/")
}

/// `verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What to verify: a Hub release `owner/name@TAG` (e.g. `d-oit/tinydit-cats@v1.2.0`), or a
    /// folder: a downloaded release, a bundle, or the `--out` folder of `check`.
    #[arg(value_name = "REPO@TAG|DIR")]
    pub target: String,
    /// The GitHub repository (`owner/name`) whose release of the same tag must carry the same
    /// SHA256SUMS. Without it GitHub is not compared.
    #[arg(long, value_name = "OWNER/REPO")]
    pub github_repo: Option<String>,
    /// The Hub revision whose files are checked against the release (default: the tag itself),
    /// e.g. `main` to check that the branch users download from still holds the release.
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Download every Hub file into DIR, hashing it on the way (kept only when it matches).
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,
}

/// One file that is not as released.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    verified: usize,
}

#[allow(clippy::needless_pass_by_value)] // every caller hands over a `format!`
impl Findings {
    fn missing(&mut self, what: String) {
        self.problems.push(format!("missing: {what}"));
    }
    fn extra(&mut self, what: String) {
        self.problems.push(format!("extra: {what}"));
    }
    fn different(&mut self, what: String) {
        self.problems.push(format!("different: {what}"));
    }
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs, env: &EnvSnapshot, reporter: &Reporter) -> anyhow::Result<Outcome> {
    let folder = Path::new(&args.target);
    let findings = if !args.target.contains('@') && folder.exists() {
        if args.download.is_some() || args.github_repo.is_some() || args.revision.is_some() {
            return Err(Problem::new(
                "`--download`, `--github-repo` and `--revision` apply to a Hub release, not a folder",
            )
            .hint("give `owner/name@TAG` to verify a Hub release")
            .into());
        }
        verify_folder(folder, reporter)?
    } else {
        if let Some(problem) = &env.network_problem {
            return Err(problem.clone().into());
        }
        let (repo, tag) = args.target.split_once('@').ok_or_else(|| {
            Problem::new(format!(
                "`{}` is neither a folder nor a Hub release `owner/name@TAG`",
                args.target
            ))
            .hint("e.g. `tinydit-release verify d-oit/tinydit-cats@v1.2.0`")
        })?;
        if tag.is_empty() || tag.len() > 256 || tag.chars().any(char::is_control) {
            return Err(Problem::new(format!("`{tag}` is not a tag")).into());
        }
        route::repo(repo)?;
        if let Some(github) = &args.github_repo {
            route::repo(github)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("failed to start the network runtime")?;
        runtime.block_on(verify_hub(args, repo, tag, env, reporter))?
    };
    if findings.problems.is_empty() {
        reporter.status(
            "Verified",
            format!(
                "{} file(s) of `{}` match the release",
                findings.verified, args.target
            ),
        );
        Ok(Outcome::Success)
    } else {
        reporter.refusal(
            &format!(
                "{} file(s) of `{}` are not as released",
                findings.problems.len(),
                args.target
            ),
            &findings.problems,
        );
        Ok(Outcome::Refused)
    }
}

/// A folder: `DIR/bundle` with `DIR/manifest.json` (check's `--out`), or the files themselves.
fn verify_folder(dir: &Path, reporter: &Reporter) -> anyhow::Result<Findings> {
    let (root, manifest) = if dir.join("bundle").join(SUMS_FILE).is_file() {
        let manifest = dir.join(crate::manifest::MANIFEST_FILE);
        (dir.join("bundle"), manifest.is_file().then_some(manifest))
    } else {
        let beside = dir
            .parent()
            .map(|p| p.join(crate::manifest::MANIFEST_FILE))
            .filter(|m| m.is_file() && dir.file_name().is_some_and(|n| n == "bundle"));
        (dir.to_path_buf(), beside)
    };
    let sums_path = root.join(SUMS_FILE);
    let shown = sums_path.display().to_string();
    if !sums_path.exists() {
        return Err(Problem::new(format!("`{shown}` does not exist"))
            .hint("verify a release made by tinydit-release (every release carries SHA256SUMS)")
            .into());
    }
    let text = crate::input::read_text(&sums_path, &shown, "SHA256SUMS", MAX_SUMS_BYTES)?;
    let listed = sums::parse(&text, &format!("`{shown}`"))?;
    reporter.status(
        "Verifying",
        format!("{} file(s) of `{}`", listed.len(), root.display()),
    );
    let mut present = Vec::new();
    crate::bundle::list_files(&root, &mut present)?;
    let present: BTreeMap<String, PathBuf> =
        present.into_iter().map(|(p, abs, _)| (p, abs)).collect();
    let mut findings = Findings::default();
    for (path, expected) in &listed {
        let Some(absolute) = present.get(path) else {
            findings.missing(format!(
                "`{path}` is listed in SHA256SUMS but not in the folder"
            ));
            continue;
        };
        let (_, sha256) = crate::bundle::hash_file(absolute)?;
        if &sha256 == expected {
            findings.verified += 1;
        } else {
            findings.different(format!(
                "`{path}` has sha256 {sha256}, SHA256SUMS says {expected}"
            ));
        }
    }
    for path in present.keys() {
        if path != SUMS_FILE && !listed.contains_key(path) && !is_service_file(path) {
            findings.extra(format!("`{path}` is in the folder but not in SHA256SUMS"));
        }
    }
    if let Some(manifest) = manifest {
        let manifest = crate::manifest::ReleaseManifest::read(&manifest)?;
        let sums_digest = crate::bundle::hash_file(&sums_path)?.1;
        for file in &manifest.files {
            let expected = if file.path == SUMS_FILE {
                Some(&sums_digest)
            } else {
                listed.get(&file.path)
            };
            match expected {
                None => findings.missing(format!(
                    "`{}` is in manifest.json but not in SHA256SUMS",
                    file.path
                )),
                Some(sha) if *sha != file.sha256 => findings.different(format!(
                    "`{}` has sha256 {sha}, manifest.json says {}",
                    file.path, file.sha256
                )),
                Some(_) => {}
            }
        }
        for path in listed.keys() {
            if !manifest.files.iter().any(|f| &f.path == path) {
                findings.extra(format!(
                    "`{path}` is in SHA256SUMS but not in manifest.json"
                ));
            }
        }
    }
    Ok(findings)
}

/// A Hub release, and the GitHub release of the same tag.
async fn verify_hub(
    args: &VerifyArgs,
    repo: &str,
    tag: &str,
    env: &EnvSnapshot,
    reporter: &Reporter,
) -> anyhow::Result<Findings> {
    let hub_token = env.tokens.hub.as_ref();
    let hub = Hub::connect(&env.endpoints.hub, hub_token, repo, &env.timeouts)?;
    // The release's SHA256SUMS is the one at its tag; the files checked are at `--revision`.
    let revision = args.revision.as_deref().unwrap_or(tag);
    let tag_tree = hub.tree(tag).await?;
    let Some(listed_sums) = tag_tree.iter().find(|f| f.path == SUMS_FILE) else {
        return Err(Problem::new(format!(
            "`{repo}` has no {SUMS_FILE} at `{tag}` on the Hub"
        ))
        .hint("releases made by tinydit-release carry SHA256SUMS; check the repository and tag")
        .into());
    };
    let sums_bytes = hub
        .read_small_file(tag, listed_sums, MAX_SUMS_BYTES)
        .await?;
    let sums_text = String::from_utf8(sums_bytes.clone())
        .map_err(|_| Problem::new(format!("{SUMS_FILE} at `{tag}` is not UTF-8")))?;
    let listed = sums::parse(&sums_text, &format!("{SUMS_FILE} at `{tag}` on the Hub"))?;
    let mut findings = Findings::default();
    let tree = if revision == tag {
        tag_tree
    } else {
        let tree = hub.tree(revision).await?;
        match tree.iter().find(|f| f.path == SUMS_FILE) {
            None => findings.missing(format!(
                "`{SUMS_FILE}` of `{tag}` is not on the Hub at `{revision}`"
            )),
            Some(other) if other.git_oid != listed_sums.git_oid => findings.different(format!(
                "`{SUMS_FILE}` on the Hub at `{revision}` is not the one of `{tag}`"
            )),
            Some(_) => {}
        }
        tree
    };
    reporter.status(
        "Verifying",
        format!(
            "{} file(s) of `{repo}` at `{revision}` on the Hub",
            listed.len()
        ),
    );
    let place = format!("on the Hub at `{revision}`");
    let download = match &args.download {
        Some(dir) => {
            crate::output::prepare_dir(dir, "--download")?;
            Some(dir.as_path())
        }
        None => None,
    };
    let hub_host = reqwest::Url::parse(&env.endpoints.hub)
        .map_or_else(|_| env.endpoints.hub.clone(), |u| net::host_of(&u));
    for (path, expected) in &listed {
        let Some(remote) = tree.iter().find(|f| &f.path == path) else {
            findings.missing(format!("`{path}` is listed in SHA256SUMS but not {place}"));
            continue;
        };
        let sha256 = if let Some(dir) = download {
            let target = dir.join(path);
            stream(
                Source::Hub {
                    hub: &hub,
                    revision,
                    path,
                },
                &hub_host,
                remote.size,
                &env.timeouts,
                Some((dir, &target, expected)),
            )
            .await
            .with_context(|| format!("failed to download `{path}` from the Hub"))?
        } else {
            hub_digest(&hub, &hub_host, env, revision, remote, expected).await?
        };
        if &sha256 == expected {
            findings.verified += 1;
        } else {
            findings.different(format!(
                "`{path}` {place} has sha256 {sha256}, SHA256SUMS says {expected}"
            ));
        }
    }
    if let Some(dir) = download {
        crate::output::write_atomically(&dir.join(SUMS_FILE), &sums_bytes)?;
    }
    for file in &tree {
        if file.path != SUMS_FILE
            && !listed.contains_key(&file.path)
            && !is_service_file(&file.path)
        {
            findings.extra(format!("`{}` is {place} but not in SHA256SUMS", file.path));
        }
    }
    if let Some(github) = &args.github_repo {
        compare_github(github, tag, &listed, env, &mut findings, reporter).await?;
    }
    Ok(findings)
}

/// The sha256 of a Hub file without downloading a large one: an LFS/Xet file's listed pointer
/// oid either is the pointer of `expected` (then the Hub stores exactly that content) or not
/// (then it holds something else, whose sha256 the listing does not give: reported as unknown).
async fn hub_digest(
    hub: &Hub,
    host: &str,
    env: &EnvSnapshot,
    revision: &str,
    remote: &RemoteFile,
    expected: &str,
) -> anyhow::Result<String> {
    if remote.lfs {
        if lfs_pointer_oid(expected, remote.size) == remote.git_oid {
            return Ok(expected.to_owned());
        }
        return Ok(match &remote.sha256 {
            Some(sha) => sha.clone(),
            None => format!(
                "unknown (not the listed one; LFS pointer oid {})",
                remote.git_oid
            ),
        });
    }
    if remote.size <= MAX_READ_BYTES {
        let bytes = hub
            .read_small_file(revision, remote, MAX_READ_BYTES)
            .await?;
        return Ok(crate::digest::sha256_hex(&bytes));
    }
    stream(
        Source::Hub {
            hub,
            revision,
            path: &remote.path,
        },
        host,
        remote.size,
        &env.timeouts,
        None,
    )
    .await
    .with_context(|| format!("failed to read `{}` from the Hub", remote.path))
}

/// Where a streamed file comes from: a plain `GET`, or hf-hub's download (Xet included).
enum Source<'a> {
    /// `GET url` with these headers.
    Get {
        http: &'a reqwest::Client,
        url: String,
        authorization: Option<&'a str>,
        accept: Option<&'a str>,
    },
    /// A Hub file at a revision.
    Hub {
        hub: &'a Hub,
        revision: &'a str,
        path: &'a str,
    },
}

/// The chunks of a started download.
enum Chunks {
    Http(reqwest::Response),
    Hub(hf_hub::repository::download::HFByteStream),
}

impl Chunks {
    async fn next(
        &mut self,
        host: &str,
        timeouts: &Timeouts,
    ) -> anyhow::Result<Option<bytes::Bytes>> {
        match self {
            Self::Http(response) => {
                let url = response.url().clone();
                Ok(response
                    .chunk()
                    .await
                    .map_err(|err| NetError::transport(&err, &url, "a download", timeouts))?)
            }
            Self::Hub(stream) => {
                let next = std::future::poll_fn(|cx| {
                    futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx)
                })
                .await;
                match next {
                    None => Ok(None),
                    Some(Ok(bytes)) => Ok(Some(bytes)),
                    Some(Err(err)) => {
                        Err(anyhow::anyhow!("the download from `{host}` failed: {err}"))
                    }
                }
            }
        }
    }
}

/// Streams one file: hashes it, refuses more bytes than `size`, stops on `read` seconds of
/// silence or past the upload deadline for its size (a 1 MiB/s floor); with `keep` the bytes go
/// to a temporary file next to the target, renamed into place only when the sha256 is the
/// expected one (folders below the download folder are created, never followed through a link).
async fn stream(
    source: Source<'_>,
    host: &str,
    size: u64,
    timeouts: &Timeouts,
    keep: Option<(&Path, &Path, &String)>,
) -> anyhow::Result<String> {
    let host = host.to_owned();
    let timed_out = || NetError::TimedOut {
        host: host.clone(),
        what: "a download".to_owned(),
        timeouts: *timeouts,
    };
    let mut file = match keep {
        Some((root, target, _)) => {
            let parent = target.parent().unwrap_or(root);
            let relative = parent.strip_prefix(root).unwrap_or(Path::new(""));
            let mut at = root.to_path_buf();
            for part in relative.components() {
                at.push(part);
                if !crate::output::check_dir(&at, "--download")? {
                    std::fs::create_dir(&at)
                        .with_context(|| format!("failed to create `{}`", at.display()))?;
                }
            }
            Some(crate::output::AtomicFile::create(target)?)
        }
        None => None,
    };
    let deadline = timeouts.upload(size);
    let work = async {
        let mut chunks = match source {
            Source::Get {
                http,
                url,
                authorization,
                accept,
            } => {
                let parsed =
                    reqwest::Url::parse(&url).with_context(|| format!("`{url}` is not a URL"))?;
                let mut request = http.get(parsed.clone());
                if let Some(auth) = authorization {
                    request = request.header(reqwest::header::AUTHORIZATION, auth);
                }
                if let Some(accept) = accept {
                    request = request.header(reqwest::header::ACCEPT, accept);
                }
                let response = tokio::time::timeout(timeouts.read, request.send())
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|err| NetError::transport(&err, &parsed, "a download", timeouts))?;
                let status = response.status().as_u16();
                if !(200..300).contains(&status) {
                    return Err(anyhow::Error::new(Problem::new(format!(
                        "`{host}` answered {status} to the download"
                    ))));
                }
                Chunks::Http(response)
            }
            Source::Hub {
                hub,
                revision,
                path,
            } => Chunks::Hub(
                tokio::time::timeout(timeouts.read, hub.stream_file(revision, path))
                    .await
                    .map_err(|_| timed_out())??,
            ),
        };
        let mut hasher = sha2::Sha256::new();
        let mut read = 0u64;
        while let Some(chunk) = tokio::time::timeout(timeouts.read, chunks.next(&host, timeouts))
            .await
            .map_err(|_| timed_out())??
        {
            read += chunk.len() as u64;
            if read > size {
                return Err(NetError::TooLarge {
                    host: host.clone(),
                    what: "a download".to_owned(),
                    limit: size,
                }
                .into());
            }
            hasher.update(&chunk);
            if let Some(file) = file.as_mut() {
                file.file()
                    .write_all(&chunk)
                    .context("failed to write the download")?;
            }
        }
        if read != size {
            return Err(Problem::new(format!(
                "`{host}` sent {read} bytes where {size} are listed"
            ))
            .into());
        }
        Ok::<_, anyhow::Error>(hex(&hasher.finalize()))
    };
    let sha256 = tokio::time::timeout(deadline.max(Duration::from_secs(1)), work)
        .await
        .map_err(|_| timed_out())??;
    if let (Some(file), Some((_, _, expected))) = (file, keep)
        && &sha256 == expected
    {
        file.commit()?;
    }
    Ok(sha256)
}

/// The GitHub release of `tag` must carry the Hub's SHA256SUMS, and each asset the digest
/// SHA256SUMS gives the bundle file of that name.
const RELEASE_WHAT: &str = "the GitHub release";

async fn compare_github(
    github: &str,
    tag: &str,
    hub_sums: &BTreeMap<String, String>,
    env: &EnvSnapshot,
    findings: &mut Findings,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let api = &env.endpoints.github_api;
    let token: Option<&Token> = env.tokens.github.as_ref();
    let authorization = token.map(|t| format!("Bearer {}", t.expose()));
    let http = net::api_client(&env.timeouts)?;
    let backoff = Backoff::default();
    let url = format!(
        "{api}/repos/{}/releases/tags/{}",
        route::repo(github)?,
        route::segment(tag)
    );
    let answer = net::fetch(&backoff, &env.timeouts, RELEASE_WHAT, Limit::Page, || {
        let request = http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json");
        match &authorization {
            Some(auth) => request.header(reqwest::header::AUTHORIZATION, auth),
            None => request,
        }
    })
    .await
    .map_err(NetError::into_error)
    .context("failed to read the GitHub release")?;
    if answer.status == 404 {
        findings.missing(format!("the GitHub release `{tag}` of `{github}`"));
        return Ok(());
    }
    if !answer.is_success() {
        return Err(answer.failure(RELEASE_WHAT).into_error());
    }
    let release: GithubRelease = answer
        .json::<ReleaseJson>(RELEASE_WHAT)
        .map_err(NetError::into_error)?
        .into();
    if release.draft {
        findings.missing(format!(
            "the GitHub release `{tag}` of `{github}` is a draft"
        ));
    }
    reporter.status(
        "Comparing",
        format!(
            "{} asset(s) of the GitHub release `{tag}` of `{github}`",
            release.assets.len()
        ),
    );
    let Some(asset) = release.assets.iter().find(|a| a.name == SUMS_FILE) else {
        findings.missing(format!(
            "the GitHub release `{tag}` has no {SUMS_FILE} asset"
        ));
        return Ok(());
    };
    if asset.size > MAX_SUMS_BYTES {
        return Err(Problem::new(format!(
            "the {SUMS_FILE} asset of `{tag}` has {} bytes, more than {MAX_SUMS_BYTES}",
            asset.size
        ))
        .into());
    }
    let asset_url = format!(
        "{api}/repos/{}/releases/assets/{}",
        route::repo(github)?,
        asset.id
    );
    let client = net::upload_client(&env.timeouts)?;
    let (bytes, sha256) = download_small(
        &client,
        &asset_url,
        authorization.as_deref(),
        asset.size,
        &env.timeouts,
    )
    .await
    .with_context(|| format!("failed to download the {SUMS_FILE} asset of `{tag}`"))?;
    if let Some(listed) = &asset.digest
        && listed.strip_prefix("sha256:") != Some(sha256.as_str())
    {
        findings.different(format!(
            "the GitHub asset `{SUMS_FILE}` is not the file GitHub lists ({listed})"
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Problem::new(format!("the GitHub {SUMS_FILE} is not UTF-8")))?;
    let github_sums = sums::parse(&text, &format!("the GitHub release's {SUMS_FILE}"))?;
    for (path, sha) in hub_sums {
        match github_sums.get(path) {
            None => findings.missing(format!(
                "`{path}` is in the Hub's {SUMS_FILE} but not in the GitHub release's"
            )),
            Some(other) if other != sha => findings.different(format!(
                "`{path}`: the GitHub release's {SUMS_FILE} says {other}, the Hub's says {sha}"
            )),
            Some(_) => {}
        }
    }
    for path in github_sums.keys() {
        if !hub_sums.contains_key(path) {
            findings.extra(format!(
                "`{path}` is in the GitHub release's {SUMS_FILE} but not in the Hub's"
            ));
        }
    }
    // Each asset is a bundle file by its name (GitHub assets have no folders).
    for asset in release.assets.iter().filter(|a| a.name != SUMS_FILE) {
        let candidates: Vec<&String> = hub_sums
            .iter()
            .filter(|(path, _)| {
                crate::publish::plan::github_asset_name(&crate::publish::plan::asset_name(path))
                    == asset.name
            })
            .map(|(_, sha)| sha)
            .collect();
        if candidates.is_empty() {
            findings.extra(format!(
                "the GitHub asset `{}` is no file of {SUMS_FILE}",
                asset.name
            ));
            continue;
        }
        let digest = if let Some(d) = &asset.digest {
            d.strip_prefix("sha256:").unwrap_or(d).to_owned()
        } else {
            let url = format!(
                "{api}/repos/{}/releases/assets/{}",
                route::repo(github)?,
                asset.id
            );
            let host = reqwest::Url::parse(&url).map_or_else(|_| url.clone(), |u| net::host_of(&u));
            stream(
                Source::Get {
                    http: &client,
                    url,
                    authorization: authorization.as_deref(),
                    accept: Some("application/octet-stream"),
                },
                &host,
                asset.size,
                &env.timeouts,
                None,
            )
            .await?
        };
        if candidates.iter().any(|sha| **sha == digest) {
            findings.verified += 1;
        } else {
            findings.different(format!(
                "the GitHub asset `{}` has sha256 {digest}, {SUMS_FILE} says {}",
                asset.name, candidates[0]
            ));
        }
    }
    Ok(())
}

/// A small asset's bytes and sha256, read within its listed size.
async fn download_small(
    http: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    size: u64,
    timeouts: &Timeouts,
) -> anyhow::Result<(Vec<u8>, String)> {
    let backoff = Backoff::default();
    let answer = net::fetch(&backoff, timeouts, "an asset", Limit::File(size), || {
        let request = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/octet-stream");
        match authorization {
            Some(auth) => request.header(reqwest::header::AUTHORIZATION, auth),
            None => request,
        }
    })
    .await
    .map_err(NetError::into_error)?;
    if !answer.is_success() {
        return Err(answer.failure("an asset").into_error());
    }
    let sha256 = crate::digest::sha256_hex(&answer.body);
    Ok((answer.body, sha256))
}
