//! `plan`: everything `publish` will do, decided before anything is done.
//!
//! [`build`] is pure: it takes the release manifest, the configuration and what was read from the
//! Hub and GitHub ([`RemoteState`]; absent without tokens) and returns a [`ReleasePlan`]. The
//! plan lists files to add, replace, keep or delete with size and sha256, metric deltas against
//! the previous release, the Hub repo, commit message, tags on both sides and the GitHub release
//! with its assets. `publish` executes exactly this plan, and a re-run after success finds
//! nothing to do ([`ReleasePlan::is_already_released`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::version::{self, ReleaseVersion};
use crate::bundle::BundleFile;
use crate::config::ReleaseConfig;
use crate::gates::Metrics;
use crate::identity::ReleaseIdentity;
use crate::manifest::ReleaseManifest;

/// Files the Hub keeps per repo that a bundle never has; never pruned, never compared.
pub const HUB_OWN_FILES: &[&str] = &[".gitattributes"];

/// Largest file the Hub accepts (50 GB) and the size above which it recommends splitting.
pub const HUB_MAX_FILE_BYTES: u64 = 50_000_000_000;
/// Files per commit above which the Hub recommends several commits; a release is one commit.
pub const HUB_MAX_FILES_PER_COMMIT: usize = 1000;
/// Largest GitHub release asset (2 GiB).
pub const GITHUB_MAX_ASSET_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// GitHub's limit on assets per release.
pub const GITHUB_MAX_ASSETS: usize = 1000;

/// A file as the Hub lists it (`list_tree` / `paths-info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    /// Path in the repo.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the content, for LFS/Xet files, when the client reports it.
    pub sha256: Option<String>,
    /// Stored through LFS/Xet: `git_oid` is then the id of the LFS pointer.
    pub lfs: bool,
    /// Git blob sha1 (`oid`) of the content, or of the LFS pointer.
    pub git_oid: String,
}

/// The git blob id of the LFS pointer of a file with this sha256 and size: what the Hub lists
/// as the `oid` of an LFS/Xet file. Comparing it checks the sha256 the pointer carries.
pub fn lfs_pointer_oid(sha256: &str, size: u64) -> String {
    use sha1::Digest as _;
    let pointer =
        format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n");
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", pointer.len()).as_bytes());
    hasher.update(pointer.as_bytes());
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(40), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A Hub branch or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubRef {
    /// Its name.
    pub name: String,
    /// The commit it points at.
    pub commit: String,
}

/// What the Hub holds for the repo, read at plan time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HubState {
    /// Whether the repo exists.
    pub exists: bool,
    /// Branches.
    pub branches: Vec<HubRef>,
    /// Tags.
    pub tags: Vec<HubRef>,
    /// Files at the head of the branch the release goes to (or `main`, which a new prerelease
    /// branch starts from).
    pub tree: Vec<RemoteFile>,
    /// Files at this version's tag, when the tag exists.
    pub tag_tree: Option<Vec<RemoteFile>>,
    /// The release identity at the tag, when the tag exists and has one (or why it could not
    /// be read).
    pub tag_identity: Option<Result<ReleaseIdentity, String>>,
    /// The release identity at the head of the branch the release goes to, when it has one.
    pub head_identity: Option<Result<ReleaseIdentity, String>>,
    /// The previous release's tag and its `metrics.json`.
    pub previous: Option<PreviousRelease>,
}

impl HubState {
    /// The commit a branch points at.
    pub fn branch(&self, name: &str) -> Option<&str> {
        self.branches
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.commit.as_str())
    }

    /// The commit a tag points at.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.commit.as_str())
    }
}

/// The release before this one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviousRelease {
    /// Its tag.
    pub tag: String,
    /// Its metrics, when its bundle had a `metrics.json`.
    pub metrics: Option<Metrics>,
}

/// A release asset as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubAsset {
    /// Asset id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `sha256:<hex>`, computed by GitHub.
    pub digest: Option<String>,
    /// `uploaded`, or `starter` for an interrupted upload.
    pub state: String,
}

/// A GitHub release (published or draft) as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubRelease {
    /// Release id.
    pub id: u64,
    /// Its tag.
    pub tag: String,
    /// Still a draft.
    pub draft: bool,
    /// A prerelease.
    pub prerelease: bool,
    /// Web page.
    pub html_url: String,
    /// The release identity its notes name, when they name one.
    pub identity: Option<String>,
    /// Its assets.
    pub assets: Vec<GithubAsset>,
}

/// What GitHub holds for the repository, read at plan time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GithubState {
    /// The commit this version's tag points at, when the tag exists.
    pub tag_commit: Option<String>,
    /// The release (or draft) of this version's tag.
    pub release: Option<GithubRelease>,
    /// Tags of every release, drafts excluded.
    pub released_tags: Vec<String>,
}

/// What was read from the services; `None` where nothing could be read (no token).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteState {
    /// The Hub.
    pub hub: Option<HubState>,
    /// GitHub.
    pub github: Option<GithubState>,
    /// The demo Space's repository on the Hub, when the release has one.
    pub space: Option<HubState>,
}

/// What happens to one file on the Hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    /// New in this release.
    Add,
    /// Changed since the branch head.
    Replace,
    /// Identical: not uploaded again.
    Unchanged,
    /// On the Hub but not in the bundle, removed with `prune`.
    Delete,
    /// On the Hub but not in the bundle, kept (no `prune`).
    Keep,
}

/// One file of the Hub commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilePlan {
    /// Path in the repo.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256, when known.
    pub sha256: Option<String>,
    /// What happens to it.
    pub action: FileAction,
}

/// A tag on one side, and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum TagPlan {
    /// Created by `publish`.
    Create,
    /// Already there (on the commit it should be).
    Exists {
        /// The commit it points at.
        commit: String,
    },
    /// Not read (no token): `publish` decides.
    Unknown,
}

/// The Hub side of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubPlan {
    /// Repo id.
    pub repo: String,
    /// Web address.
    pub url: String,
    /// `create`, `exists` or `unknown`.
    pub repo_action: &'static str,
    /// Private when created.
    pub private: bool,
    /// Branch committed to.
    pub revision: String,
    /// A prerelease branch to create first, from `main`'s head.
    pub create_branch: bool,
    /// The head the commit is based on (`parent_commit`), as read now.
    pub parent_commit: Option<String>,
    /// The commit's title.
    pub commit_message: String,
    /// The commit's description.
    pub commit_description: String,
    /// Every file with its action.
    pub files: Vec<FilePlan>,
    /// Whether a commit is needed at all.
    pub commit_needed: bool,
    /// The tag.
    pub tag: String,
    /// What happens to it.
    pub tag_plan: TagPlan,
}

/// What happens to one GitHub asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetAction {
    /// Uploaded.
    Upload,
    /// A partial or different asset of that name is deleted and this one uploaded.
    Replace,
    /// Already there with this digest.
    Present,
    /// The published release of this very release (same identity, no Hub side) has it with
    /// other measurements: kept as released.
    Released,
    /// Larger than GitHub allows: left out with a warning.
    TooLarge,
}

/// One release asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetPlan {
    /// Bundle path.
    pub path: String,
    /// Asset name (the file name).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256.
    pub sha256: String,
    /// What happens to it.
    pub action: AssetAction,
}

/// The GitHub release and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseAction {
    /// Created as a draft, completed, then published.
    Create,
    /// A draft of an earlier run is completed and published.
    ResumeDraft,
    /// Published already.
    Published,
    /// Not read (no token).
    Unknown,
}

/// The GitHub side of the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubPlan {
    /// `owner/name`.
    pub repo: String,
    /// The tag.
    pub tag: String,
    /// The commit the tag points at (the source commit).
    pub target_commit: Option<String>,
    /// What happens to the tag.
    pub tag_plan: TagPlan,
    /// Release title.
    pub name: String,
    /// A prerelease.
    pub prerelease: bool,
    /// Marked "latest" when published.
    pub make_latest: bool,
    /// What happens to the release.
    pub release_action: ReleaseAction,
    /// Its assets.
    pub assets: Vec<AssetPlan>,
}

/// A metric against the previous release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDelta {
    /// The metric.
    pub metric: String,
    /// Previous value.
    pub previous: Option<f64>,
    /// This release's value.
    pub current: Option<f64>,
    /// `current - previous`.
    pub delta: Option<f64>,
}

/// Everything `publish` will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleasePlan {
    /// The version.
    pub version: String,
    /// Its tag.
    pub tag: String,
    /// A prerelease.
    pub prerelease: bool,
    /// Whether the Hub and GitHub were read (tokens present) or the plan is from the bundle
    /// alone.
    pub online: bool,
    /// The source commit.
    pub source: Option<crate::provenance::SourceCommit>,
    /// Total bundle bytes.
    pub bundle_bytes: u64,
    /// The Hub side, when `[publish] hub`.
    pub hub: Option<HubPlan>,
    /// The GitHub side, when `[publish] github-release`.
    pub github: Option<GithubPlan>,
    /// The demo Space, when the release has one (`[space]`), `[publish] hub` is on and the
    /// version is not a prerelease: one commit to its `main`, tagged like the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<HubPlan>,
    /// The previous release's tag.
    pub previous_release: Option<String>,
    /// Metrics against the previous release.
    pub metric_deltas: Vec<MetricDelta>,
    /// Reasons `publish` would refuse, one sentence each.
    pub problems: Vec<String>,
    /// Things `publish` will skip or note.
    pub warnings: Vec<String>,
}

impl ReleasePlan {
    /// Nothing left to do on either side.
    pub fn is_already_released(&self) -> bool {
        self.online
            && self.problems.is_empty()
            && [&self.hub, &self.space].into_iter().all(|side| {
                side.as_ref().is_none_or(|h| {
                    !h.commit_needed && matches!(h.tag_plan, TagPlan::Exists { .. })
                })
            })
            && self.github.as_ref().is_none_or(|g| {
                g.release_action == ReleaseAction::Published
                    && g.assets.iter().all(|a| {
                        matches!(
                            a.action,
                            AssetAction::Present | AssetAction::Released | AssetAction::TooLarge
                        )
                    })
            })
    }
}

/// Context for the plan: where the Hub is and who produced the release.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The workflow run's web address.
    pub run_url: Option<String>,
    /// The Hub's address, for web links.
    pub hub_endpoint: String,
    /// This run's release identity, when the bundle has one.
    pub identity: Option<ReleaseIdentity>,
}

/// Builds the plan. `local_git_oid` and `space_git_oid` give the git blob id of a bundle file
/// and of a Space file (each in its own folder), to compare with the Hub's regular files.
pub fn build(
    manifest: &ReleaseManifest,
    config: &ReleaseConfig,
    ours: &ReleaseVersion,
    remote: &RemoteState,
    provenance: &Provenance,
    local_git_oid: &dyn Fn(&BundleFile) -> Option<String>,
    space_git_oid: &dyn Fn(&BundleFile) -> Option<String>,
) -> ReleasePlan {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let online = remote.hub.is_some() || remote.github.is_some() || remote.space.is_some();
    let hub = config.publish.hub.then(|| {
        hub_plan(
            &HubTarget::model(manifest, config, ours),
            manifest,
            ours,
            remote.hub.as_ref(),
            provenance,
            local_git_oid,
            &mut problems,
        )
    });
    let space = match &manifest.space {
        Some(listing) if config.publish.hub && ours.is_prerelease() => {
            warnings.push(format!(
                "`{}` is a prerelease: the Space `{}` keeps showing the latest release",
                ours.tag, listing.repo
            ));
            None
        }
        Some(listing) if config.publish.hub => {
            if config.model.private == Some(true) {
                warnings.push(format!(
                    "the model repo `{}` is private: the Space `{}` cannot load it in a \
                     visitor's browser",
                    config.model.hub_repo, listing.repo
                ));
            }
            Some(hub_plan(
                &HubTarget::space(listing, config),
                manifest,
                ours,
                remote.space.as_ref(),
                provenance,
                space_git_oid,
                &mut problems,
            ))
        }
        _ => None,
    };
    let github = config.publish.github_release.then(|| {
        github_plan(
            manifest,
            config,
            ours,
            remote.github.as_ref(),
            &mut problems,
            &mut warnings,
        )
    });
    if config.version.require_increase {
        if let Some(state) = &remote.hub {
            let tags = state.tags.iter().map(|t| t.name.as_str());
            let released = version::released_versions(tags, &config.version.tag_prefix);
            if let Err(problem) = version::check_increase(ours, &released, "the Hub") {
                problems.push(problem.to_string());
            }
        }
        if let Some(state) = &remote.github {
            let tags = state.released_tags.iter().map(String::as_str);
            let released = version::released_versions(tags, &config.version.tag_prefix);
            if let Err(problem) = version::check_increase(ours, &released, "GitHub") {
                problems.push(problem.to_string());
            }
        }
    }
    let previous = remote.hub.as_ref().and_then(|h| h.previous.as_ref());
    ReleasePlan {
        version: ours.version.to_string(),
        tag: ours.tag.clone(),
        prerelease: ours.is_prerelease(),
        online,
        source: manifest.source.clone(),
        bundle_bytes: manifest.total_bytes(),
        hub,
        github,
        space,
        previous_release: previous.map(|p| p.tag.clone()),
        metric_deltas: previous
            .and_then(|p| p.metrics.as_ref())
            .map(|before| metric_deltas(before, &manifest.metrics))
            .unwrap_or_default(),
        problems,
        warnings,
    }
}

fn metric_deltas(before: &Metrics, now: &Metrics) -> Vec<MetricDelta> {
    let mut names: Vec<&String> = before.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let previous = before.get(name).copied();
            let current = now.get(name).copied();
            MetricDelta {
                metric: name.clone(),
                previous,
                current,
                delta: previous.zip(current).map(|(p, c)| c - p),
            }
        })
        .collect()
}

/// The Hub's web address of a model repo.
pub fn hub_repo_url(endpoint: &str, repo: &str) -> String {
    hub_web_url(endpoint, "", repo)
}

/// The Hub's web address of a repo whose addresses start with `prefix` (`""`, `spaces/`).
fn hub_web_url(endpoint: &str, prefix: &str, repo: &str) -> String {
    let repo = super::route::repo(repo).unwrap_or_else(|_| super::route::segment(repo));
    format!("{}/{prefix}{repo}", endpoint.trim_end_matches('/'))
}

/// The web page of the GitHub release of `tag`, built from the API address rather than taken
/// from a server's answer: `https://api.github.com` serves pages at `https://github.com`,
/// GitHub Enterprise's `https://HOST/api/v3` at `https://HOST`, and any other API (the test
/// emulator) at its own address. The repo and the tag are percent-encoded as in requests.
pub fn github_release_page(api: &str, repo: &str, tag: &str) -> String {
    let api = api.trim_end_matches('/');
    let web = if api == "https://api.github.com" {
        "https://github.com"
    } else {
        api.strip_suffix("/api/v3").unwrap_or(api)
    };
    let repo = super::route::repo(repo).unwrap_or_else(|_| super::route::segment(repo));
    format!("{web}/{repo}/releases/tag/{}", super::route::segment(tag))
}

/// A Hub repo the release commits to: the model repo (the bundle) or the demo Space.
pub struct HubTarget<'a> {
    /// Repo id.
    pub repo: &'a str,
    /// The files it gets, with their sizes and digests.
    pub files: &'a [BundleFile],
    /// The branch committed to.
    pub revision: String,
    /// Private when created.
    pub private: bool,
    /// Where, in messages: `the Hub`, `the Space `owner/name``.
    pub place: String,
    /// The prefix of its web address (`""`, `spaces/`).
    pub web_prefix: &'static str,
    /// Files on the Hub that the release lacks are deleted (`[publish] prune`).
    pub prune: bool,
}

impl<'a> HubTarget<'a> {
    /// The model repo: the bundle, on `main` or a prerelease's branch.
    pub fn model(
        manifest: &'a ReleaseManifest,
        config: &'a ReleaseConfig,
        ours: &ReleaseVersion,
    ) -> Self {
        Self {
            repo: &config.model.hub_repo,
            files: &manifest.files,
            revision: ours.hub_revision(),
            private: config.model.private.unwrap_or(false),
            place: "the Hub".to_owned(),
            web_prefix: "",
            prune: config.publish.prune,
        }
    }

    /// The demo Space: its files on `main`, which the Space serves.
    pub fn space(listing: &'a crate::manifest::SpaceListing, config: &ReleaseConfig) -> Self {
        Self {
            repo: &listing.repo,
            files: &listing.files,
            revision: "main".to_owned(),
            private: config.model.private.unwrap_or(false),
            place: format!("the Space `{}`", listing.repo),
            web_prefix: "spaces/",
            prune: config.publish.prune,
        }
    }
}

fn hub_plan(
    target: &HubTarget<'_>,
    manifest: &ReleaseManifest,
    ours: &ReleaseVersion,
    state: Option<&HubState>,
    provenance: &Provenance,
    local_git_oid: &dyn Fn(&BundleFile) -> Option<String>,
    problems: &mut Vec<String>,
) -> HubPlan {
    let revision = target.revision.clone();
    let repo = target.repo.to_owned();
    let place = &target.place;
    let (repo_action, create_branch, parent_commit) = match state {
        None => ("unknown", false, None),
        Some(s) if !s.exists => ("create", revision != "main", None),
        Some(s) => match s.branch(&revision) {
            Some(head) => ("exists", false, Some(head.to_owned())),
            None => ("exists", true, s.branch("main").map(str::to_owned)),
        },
    };
    let remote_tree: BTreeMap<&str, &RemoteFile> = state
        .map(|s| s.tree.iter().map(|f| (f.path.as_str(), f)).collect())
        .unwrap_or_default();
    let mut files: Vec<FilePlan> = target
        .files
        .iter()
        .map(|file| {
            let action = match remote_tree.get(file.path.as_str()) {
                _ if state.is_none() => FileAction::Add,
                None => FileAction::Add,
                Some(remote) if is_same(file, remote, local_git_oid) => FileAction::Unchanged,
                Some(_) => FileAction::Replace,
            };
            FilePlan {
                path: file.path.clone(),
                bytes: file.bytes,
                sha256: Some(file.sha256.clone()),
                action,
            }
        })
        .collect();
    for remote in remote_tree.values() {
        if target.files.iter().any(|f| f.path == remote.path)
            || HUB_OWN_FILES.contains(&remote.path.as_str())
        {
            continue;
        }
        files.push(FilePlan {
            path: remote.path.clone(),
            bytes: remote.size,
            sha256: remote.sha256.clone(),
            action: if target.prune {
                FileAction::Delete
            } else {
                FileAction::Keep
            },
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in target.files {
        if file.bytes > HUB_MAX_FILE_BYTES {
            problems.push(format!(
                "`{}` has {} bytes, more than the Hub's limit of 50 GB per file",
                file.path, file.bytes
            ));
        }
    }
    if target.files.len() > HUB_MAX_FILES_PER_COMMIT {
        problems.push(format!(
            "the bundle has {} files; the Hub recommends at most {HUB_MAX_FILES_PER_COMMIT} per commit",
            target.files.len()
        ));
    }
    let tag_plan = match state {
        None => TagPlan::Unknown,
        Some(s) => match s.tag(&ours.tag) {
            None => TagPlan::Create,
            Some(commit) => {
                let differing = s
                    .tag_tree
                    .as_deref()
                    .map(|tree| differing_files(target.files, tree, local_git_oid))
                    .unwrap_or_default();
                match (&s.tag_identity, &provenance.identity) {
                    (Some(Ok(released)), Some(identity)) if !identity.matches(released) => {
                        problems.push(format!(
                            "`{}` is already released on {place} from other inputs: {}",
                            ours.tag,
                            identity.differences(released).join("; ")
                        ));
                    }
                    (Some(Err(why)), Some(_)) => problems.push(format!(
                        "`{}` is released on {place}, but its release identity cannot be read: \
                         {why}",
                        ours.tag
                    )),
                    (Some(Ok(_)), Some(_)) if !differing.is_empty() => {
                        problems.push(format!(
                            "`{}` is released on {place} from the same inputs, but this run did \
                             not reproduce its bytes: {}",
                            ours.tag,
                            differing.join(", ")
                        ));
                    }
                    _ if !differing.is_empty() => {
                        problems.push(format!(
                            "`{}` is already released on {place} with different content: {}",
                            ours.tag,
                            differing.join(", ")
                        ));
                    }
                    _ => {}
                }
                TagPlan::Exists {
                    commit: commit.to_owned(),
                }
            }
        },
    };
    // Once the tag exists with identical content, the commit is done even if the branch moved
    // on since (a later release, or an unrelated edit).
    let tag_done = matches!(tag_plan, TagPlan::Exists { .. });
    let commit_needed = !tag_done
        && files.iter().any(|f| {
            matches!(
                f.action,
                FileAction::Add | FileAction::Replace | FileAction::Delete
            )
        });
    HubPlan {
        url: hub_web_url(&provenance.hub_endpoint, target.web_prefix, &repo),
        repo,
        repo_action,
        private: target.private,
        revision,
        create_branch,
        parent_commit,
        commit_message: format!("Release {}", ours.tag),
        commit_description: commit_description(manifest, provenance),
        files,
        commit_needed,
        tag: ours.tag.clone(),
        tag_plan,
    }
}

/// The commit's description: where the release came from.
fn commit_description(manifest: &ReleaseManifest, provenance: &Provenance) -> String {
    let mut lines = vec![format!("Released by {}.", manifest.tool)];
    if let Some(repo) = &manifest.github_repo {
        lines.push(format!("GitHub repository: {repo}"));
    }
    if let Some(source) = &manifest.source {
        lines.push(format!(
            "Source commit: {}{}",
            source.commit,
            if source.is_dirty() {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ));
    }
    if let Some(identity) = &manifest.identity {
        lines.push(format!("Release identity: {identity}"));
    }
    if let Some(run) = &provenance.run_url {
        lines.push(format!("Workflow run: {run}"));
    }
    lines.join("\n")
}

/// Whether the Hub's file has the bundle file's size and content: by sha256 when known, else by
/// the git oid of its LFS pointer or of its content.
pub fn is_same(
    file: &BundleFile,
    remote: &RemoteFile,
    local_git_oid: &dyn Fn(&BundleFile) -> Option<String>,
) -> bool {
    if file.bytes != remote.size {
        return false;
    }
    match &remote.sha256 {
        Some(sha256) => *sha256 == file.sha256,
        None if remote.lfs => remote.git_oid == lfs_pointer_oid(&file.sha256, file.bytes),
        None => local_git_oid(file).is_some_and(|oid| oid == remote.git_oid),
    }
}

/// Bundle files that are missing or differ in `tree`, and files of `tree` the bundle lacks.
pub fn differing_files(
    files: &[BundleFile],
    tree: &[RemoteFile],
    local_git_oid: &dyn Fn(&BundleFile) -> Option<String>,
) -> Vec<String> {
    let mut differing = Vec::new();
    for file in files {
        match tree.iter().find(|r| r.path == file.path) {
            Some(remote) if is_same(file, remote, local_git_oid) => {}
            Some(_) => differing.push(format!("`{}` differs", file.path)),
            None => differing.push(format!("`{}` is missing", file.path)),
        }
    }
    for remote in tree {
        if !HUB_OWN_FILES.contains(&remote.path.as_str())
            && !files.iter().any(|f| f.path == remote.path)
        {
            differing.push(format!("`{}` is not in the bundle", remote.path));
        }
    }
    differing
}

fn github_plan(
    manifest: &ReleaseManifest,
    config: &ReleaseConfig,
    ours: &ReleaseVersion,
    state: Option<&GithubState>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> GithubPlan {
    let repo = manifest.github_repo.clone().unwrap_or_default();
    if repo.is_empty() {
        problems.push(
            "no GitHub repository: set `model.github-repo` or run inside GitHub Actions".to_owned(),
        );
    }
    let target_commit = manifest.source.as_ref().map(|s| s.commit.clone());
    let tag_plan = match state {
        None => TagPlan::Unknown,
        Some(s) => match &s.tag_commit {
            None => TagPlan::Create,
            Some(commit) => {
                if target_commit.as_ref().is_some_and(|t| t != commit) {
                    problems.push(format!(
                        "the GitHub tag `{}` points at `{commit}`, not at the source commit `{}`",
                        ours.tag,
                        target_commit.as_deref().unwrap_or_default()
                    ));
                }
                TagPlan::Exists {
                    commit: commit.clone(),
                }
            }
        },
    };
    let release = state.and_then(|s| s.release.as_ref());
    if let (Some(release), Some(identity)) = (release, &manifest.identity)
        && let Some(theirs) = &release.identity
        && theirs != identity
    {
        problems.push(format!(
            "the GitHub release `{}` was made from other inputs (release identity `{theirs}`, \
             this run's is `{identity}`)",
            ours.tag
        ));
    }
    let release_action = match (state, release) {
        (None, _) => ReleaseAction::Unknown,
        (Some(_), None) => ReleaseAction::Create,
        (Some(_), Some(r)) if r.draft => ReleaseAction::ResumeDraft,
        (Some(_), Some(_)) => ReleaseAction::Published,
    };
    // The published release of this very release, with no Hub side to adopt from: its assets
    // with other measurements are kept as released.
    let same_release = !config.publish.hub
        && release.is_some_and(|r| !r.draft && r.identity.is_some())
        && release.and_then(|r| r.identity.as_ref()) == manifest.identity.as_ref();
    let mut assets: Vec<AssetPlan> = Vec::new();
    for file in select_assets(manifest, &config.publish.github_assets) {
        // Compared and uploaded under the name GitHub gives it, so a re-run finds it.
        let name = github_asset_name(&asset_name(&file.path));
        if name != asset_name(&file.path) {
            warnings.push(format!(
                "`{}` is attached as `{name}`: GitHub renames assets with special characters",
                file.path
            ));
        }
        if let Some(twin) = assets.iter().find(|a| a.name == name) {
            problems.push(format!(
                "`{}` and `{}` would both be the GitHub asset `{name}`",
                twin.path, file.path
            ));
        }
        let existing = release.and_then(|r| r.assets.iter().find(|a| a.name == name));
        let action = if file.bytes > GITHUB_MAX_ASSET_BYTES {
            warnings.push(format!(
                "`{}` ({} bytes) is larger than GitHub's 2 GiB asset limit: not attached",
                file.path, file.bytes
            ));
            AssetAction::TooLarge
        } else {
            match existing {
                None => AssetAction::Upload,
                Some(asset) if is_same_asset(asset, file) => AssetAction::Present,
                Some(asset) if same_release && asset.state == "uploaded" => AssetAction::Released,
                Some(_) => AssetAction::Replace,
            }
        };
        if action == AssetAction::Replace && release_action == ReleaseAction::Published {
            problems.push(format!(
                "the published GitHub release `{}` has an asset `{name}` with different content",
                ours.tag
            ));
        }
        assets.push(AssetPlan {
            path: file.path.clone(),
            name,
            bytes: file.bytes,
            sha256: file.sha256.clone(),
            action,
        });
    }
    if assets.len() > GITHUB_MAX_ASSETS {
        problems.push(format!(
            "`[publish] github-assets` selects {} files; a GitHub release holds at most \
             {GITHUB_MAX_ASSETS} assets",
            assets.len()
        ));
    }
    let released: Vec<semver::Version> = state
        .map(|s| {
            version::released_versions(
                s.released_tags.iter().map(String::as_str),
                &config.version.tag_prefix,
            )
        })
        .unwrap_or_default();
    GithubPlan {
        repo,
        tag: ours.tag.clone(),
        target_commit,
        tag_plan,
        name: format!("{} {}", manifest.model, ours.tag),
        prerelease: ours.is_prerelease(),
        make_latest: version::is_latest(ours, &released),
        release_action,
        assets,
    }
}

fn is_same_asset(asset: &GithubAsset, file: &BundleFile) -> bool {
    asset.state == "uploaded"
        && asset.size == file.bytes
        && asset
            .digest
            .as_deref()
            .is_none_or(|d| d == format!("sha256:{}", file.sha256))
}

/// The asset name of a bundle path: its file name (GitHub assets have no folders).
pub fn asset_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// The name GitHub gives an asset uploaded as `name`. GitHub renames silently ("List release
/// assets" shows the new name; its documentation only says that special characters,
/// non-alphanumeric characters and leading or trailing periods are renamed), as observed:
/// ASCII letters, digits, `-`, `_` and `.` stay; Latin letters with diacritics are
/// transliterated (`é` → `e`, `æ` → `ae`, `ß` → `ss`); every other character, `+ ~ @ : ( )`
/// and spaces included, becomes `.`; runs of dots become one; a leading dot gets the name
/// `default` before it (`.config` → `default.config`) and trailing dots go.
pub fn github_asset_name(name: &str) -> String {
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

/// The ASCII approximation of a Latin-1 or Latin Extended-A letter (the common Rails/I18n
/// table GitHub's renaming matches: `ð` → `d`, `æ` → `ae`, `ŋ` → `ng`, `©` → none).
fn transliterate(c: char) -> Option<&'static str> {
    const LATIN_1: &str = "A A A A A A AE C E E E E I I I I D N O O O O O x O U U U U Y Th ss \
                           a a a a a a ae c e e e e i i i i d n o o o o o - o u u u u y th y";
    const LATIN_EXT_A: &str = "A a A a A a C c C c C c C c D d D d E e E e E e E e E e G g G g \
                               G g G g H h H h I i I i I i I i I i IJ ij J j K k k L l L l L \
                               l L l L l N n N n N n 'n NG ng O o O o O o OE oe R r R r R r S \
                               s S s S s S s T t T t T t U u U u U u U u U u U u W w Y y Y Z \
                               z Z z Z z -";
    let code = u32::from(c);
    let (table, first) = match code {
        0xC0..=0xFF => (LATIN_1, 0xC0),
        0x100..=0x17F => (LATIN_EXT_A, 0x100),
        _ => return None,
    };
    table
        .split_whitespace()
        .nth((code - first) as usize)
        .filter(|t| *t != "-")
}

/// Bundle files matching the `[publish] github-assets` globs (`*` within a path segment), and
/// `SHA256SUMS` always: both registries carry it.
pub fn select_assets<'a>(manifest: &'a ReleaseManifest, globs: &[String]) -> Vec<&'a BundleFile> {
    manifest
        .files
        .iter()
        .filter(|f| {
            f.path == crate::sums::SUMS_FILE || globs.iter().any(|g| glob_match(g, &f.path))
        })
        .collect()
}

/// `*` matches any run of characters except `/`; `?` one such character.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        // Iterative with one backtrack point, so the work stays linear in practice.
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if pi < p.len() && (p[pi] == s[si] || (p[pi] == '?' && s[si] != '/')) {
                pi += 1;
                si += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, si));
                pi += 1;
            } else if let Some((sp, ss)) = star
                && s[ss] != '/'
            {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
    // Characters, not bytes: `?` stands for one character, `猫` included.
    let chars = |text: &str| text.chars().collect::<Vec<char>>();
    go(&chars(pattern), &chars(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_pointer_oids_match_git() {
        // `printf 'version https://git-lfs.github.com/spec/v1\noid sha256:<empty sha>\nsize 0\n'
        //  | git hash-object --stdin`
        assert_eq!(
            lfs_pointer_oid(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                0
            ),
            "fc8e42b32efb9a9bf3ae0234a18a948e499490f8"
        );
    }

    #[test]
    fn asset_names_are_the_names_github_gives() {
        for (sent, listed) in [
            ("model.safetensors", "model.safetensors"),
            ("tinydit-1.2.3+cpu.onnx", "tinydit-1.2.3.cpu.onnx"),
            ("model card.md", "model.card.md"),
            (
                "pkg-1.1.0-1~buster_amd64.deb",
                "pkg-1.1.0-1.buster_amd64.deb",
            ),
            (
                "app-v1.3.0-(15-5)-release.apk",
                "app-v1.3.0-.15-5.-release.apk",
            ),
            ("repo:epoch@v1.tar", "repo.epoch.v1.tar"),
            ("a{}~.txt", "a.txt"),
            ("a5_ð_æ_©_ŋ.txt", "a5_d_ae_._ng.txt"),
            ("żółw.bin", "zolw.bin"),
            ("Straße Übersicht.onnx", "Strasse.Ubersicht.onnx"),
            ("模型.bin", "default.bin"),
            (".config", "default.config"),
            ("weights.", "weights"),
        ] {
            assert_eq!(github_asset_name(sent), listed, "{sent}");
            // Uploading a name GitHub gave changes nothing.
            assert_eq!(github_asset_name(listed), listed, "{listed}");
        }
        // The 64 Latin-1 and 128 Latin Extended-A entries line up with their code points.
        assert_eq!(transliterate('À'), Some("A"));
        assert_eq!(transliterate('÷'), None);
        assert_eq!(transliterate('ÿ'), Some("y"));
        assert_eq!(transliterate('Ā'), Some("A"));
        assert_eq!(transliterate('ŉ'), Some("'n"));
        assert_eq!(transliterate('ž'), Some("z"));
        assert_eq!(transliterate('ſ'), None);
    }

    #[test]
    fn globs_match_within_segments() {
        assert!(glob_match("onnx/*.onnx", "onnx/gen.onnx"));
        assert!(!glob_match("onnx/*.onnx", "onnx/sub/gen.onnx"));
        assert!(glob_match("*.safetensors", "model.safetensors"));
        assert!(!glob_match("*.safetensors", "dir/model.safetensors"));
        assert!(glob_match("README.md", "README.md"));
        assert!(!glob_match("README.md", "README.mdx"));
        assert!(glob_match("?.bin", "猫.bin"));
        assert!(glob_match("*猫?.bin", "a猫🐈.bin"));
    }

    #[test]
    fn deltas_cover_both_sides() {
        let before: Metrics = [("fid".to_owned(), 40.0), ("old".to_owned(), 1.0)].into();
        let now: Metrics = [("fid".to_owned(), 42.5), ("new".to_owned(), 2.0)].into();
        let deltas = metric_deltas(&before, &now);
        assert_eq!(deltas.len(), 3);
        assert_eq!(deltas[0].metric, "fid");
        assert_eq!(deltas[0].delta, Some(2.5));
        assert_eq!(deltas[1].current, Some(2.0));
        assert_eq!(deltas[1].previous, None);
    }
}

#[cfg(test)]
pub(crate) mod build_tests {
    use super::*;
    use crate::manifest::{MANIFEST_SCHEMA_VERSION, Verdict};

    fn config(extra: &str) -> ReleaseConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = crate::config::PathRoots::discover(dir.path()).expect("roots");
        let text = format!(
            "[model]\nname = \"m\"\nhub-repo = \"o/m\"\ngithub-repo = \"o/src\"\n\n\
             [publish]\ngithub-assets = [\"*.bin\"]\n{extra}\n"
        );
        crate::config::parse(
            &text,
            "release.toml",
            roots,
            &crate::config::Overrides::default(),
        )
        .expect("valid")
    }

    fn manifest() -> ReleaseManifest {
        let file = |path: &str, sha: char| BundleFile {
            path: path.to_owned(),
            bytes: 4,
            sha256: sha.to_string().repeat(64),
        };
        ReleaseManifest {
            schema_version: MANIFEST_SCHEMA_VERSION,
            tool: "tinydit-release 0.1.0".to_owned(),
            model: "m".to_owned(),
            hub_repo: "o/m".to_owned(),
            github_repo: Some("o/src".to_owned()),
            version: Some("1.1.0".to_owned()),
            tag: Some("v1.1.0".to_owned()),
            source: Some(crate::provenance::SourceCommit::clean("c".repeat(40))),
            identity: None,
            outcome: Verdict::Pass,
            metrics: [("fid".to_owned(), 41.0)].into(),
            gates: Vec::new(),
            files: vec![file("README.md", 'a'), file("w.bin", 'b')],
            space: None,
        }
    }

    fn lfs(path: &str, sha: char) -> RemoteFile {
        RemoteFile {
            path: path.to_owned(),
            size: 4,
            sha256: None,
            lfs: true,
            git_oid: lfs_pointer_oid(&sha.to_string().repeat(64), 4),
        }
    }

    fn hub(tags: &[&str], tree: Vec<RemoteFile>) -> HubState {
        HubState {
            exists: true,
            branches: vec![HubRef {
                name: "main".to_owned(),
                commit: "h".repeat(40),
            }],
            tags: tags
                .iter()
                .map(|t| HubRef {
                    name: (*t).to_owned(),
                    commit: "t".repeat(40),
                })
                .collect(),
            tree,
            tag_tree: None,
            tag_identity: None,
            head_identity: None,
            previous: Some(PreviousRelease {
                tag: "v1.0.0".to_owned(),
                metrics: Some([("fid".to_owned(), 40.0)].into()),
            }),
        }
    }

    fn plan(config: &ReleaseConfig, remote: &RemoteState, version: &str) -> ReleasePlan {
        let ours = ReleaseVersion::new(semver::Version::parse(version).expect("semver"), "v");
        build(
            &manifest(),
            config,
            &ours,
            remote,
            &Provenance::default(),
            &|_| None,
            &|_| None,
        )
    }

    /// Issue 17: the demo Space is a second Hub side: `main`, a `spaces/` address, its own files
    /// compared with its own folder's; a released tag with the same files is done; a prerelease
    /// leaves it alone with a warning.
    #[test]
    fn the_demo_space_is_planned_beside_the_model() {
        let mut manifest = manifest();
        let page = BundleFile {
            path: "index.html".to_owned(),
            bytes: 4,
            sha256: "d".repeat(64),
        };
        manifest.space = Some(crate::manifest::SpaceListing {
            repo: "o/demo".to_owned(),
            files: vec![page.clone()],
        });
        let config = config("");
        let provenance = Provenance {
            hub_endpoint: "https://huggingface.co/".to_owned(),
            ..Provenance::default()
        };
        let build_for = |version: &str, remote: &RemoteState| {
            let ours = ReleaseVersion::new(semver::Version::parse(version).expect("semver"), "v");
            // The Space's files are compared by the oid of its own folder's copy.
            build(
                &manifest,
                &config,
                &ours,
                remote,
                &provenance,
                &|_| None,
                &|f| (f.path == "index.html").then(|| "e".repeat(40)),
            )
        };
        let remote = RemoteState {
            hub: Some(hub(&["v1.0.0"], Vec::new())),
            github: None,
            space: Some(HubState::default()),
        };
        let plan = build_for("1.1.0", &remote);
        let space = plan.space.clone().expect("a Space side");
        assert_eq!(space.url, "https://huggingface.co/spaces/o/demo");
        assert_eq!(space.repo_action, "create");
        assert_eq!(space.revision, "main");
        assert!(!space.create_branch);
        assert_eq!(space.tag_plan, TagPlan::Create);
        assert_eq!(space.files.len(), 1);
        assert_eq!(space.files[0].action, FileAction::Add);
        assert!(!plan.is_already_released());
        let md = super::super::plan_markdown::markdown(&plan);
        assert!(
            md.contains("### Demo Space: [`o/demo`](https://huggingface.co/spaces/o/demo)"),
            "{md}"
        );

        // Released with the same page at the tag: nothing left on the Space's side.
        let regular = |oid: &str| RemoteFile {
            path: "index.html".to_owned(),
            size: 4,
            sha256: None,
            lfs: false,
            git_oid: oid.to_owned(),
        };
        let mut released = hub(&["v1.1.0"], vec![regular(&"e".repeat(40))]);
        released.tag_tree = Some(vec![regular(&"e".repeat(40))]);
        let remote = RemoteState {
            space: Some(released.clone()),
            ..RemoteState::default()
        };
        let plan = build_for("1.1.0", &remote);
        let space = plan.space.expect("a Space side");
        assert!(!space.commit_needed);
        assert!(matches!(space.tag_plan, TagPlan::Exists { .. }));
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);

        // Another page at the released tag is refused, naming the Space and the file.
        released.tag_tree = Some(vec![regular(&"f".repeat(40))]);
        let remote = RemoteState {
            space: Some(released),
            ..RemoteState::default()
        };
        let plan = build_for("1.1.0", &remote);
        assert_eq!(
            plan.problems,
            [
                "`v1.1.0` is already released on the Space `o/demo` with different content: \
              `index.html` differs"
            ]
        );

        // A prerelease: no Space side, a warning.
        let plan = build_for("1.2.0-rc.1", &RemoteState::default());
        assert!(plan.space.is_none());
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("`v1.2.0-rc.1` is a prerelease: the Space `o/demo`")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn assets_are_planned_under_githubs_names_and_within_its_limits() {
        let file = |path: &str| BundleFile {
            path: path.to_owned(),
            bytes: 4,
            sha256: "b".repeat(64),
        };
        let ours = ReleaseVersion::new(semver::Version::parse("1.1.0").expect("semver"), "v");
        let remote = RemoteState {
            hub: None,
            github: Some(GithubState::default()),
            space: None,
        };
        let mut manifest = manifest();
        manifest.files = vec![file("w (fp16).bin"), file("w.fp16.bin"), file("x+cpu.bin")];
        let plan = build(
            &manifest,
            &config(""),
            &ours,
            &remote,
            &Provenance::default(),
            &|_| None,
            &|_| None,
        );
        let names: Vec<&str> = plan
            .github
            .as_ref()
            .expect("github")
            .assets
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["w.fp16.bin", "w.fp16.bin", "x.cpu.bin"]);
        assert_eq!(
            plan.problems,
            ["`w (fp16).bin` and `w.fp16.bin` would both be the GitHub asset `w.fp16.bin`"]
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("`x+cpu.bin` is attached as `x.cpu.bin`")),
            "{:?}",
            plan.warnings
        );

        manifest.files = (0..=GITHUB_MAX_ASSETS)
            .map(|i| file(&format!("p{i:04}.bin")))
            .collect();
        let plan = build(
            &manifest,
            &config(""),
            &ours,
            &remote,
            &Provenance::default(),
            &|_| None,
            &|_| None,
        );
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("selects 1001 files; a GitHub release holds at most 1000")),
            "{:?}",
            plan.problems
        );
    }

    #[test]
    fn unchanged_files_are_kept_and_only_changes_committed() {
        // `w.bin` is on the Hub with the same digest (by its LFS pointer); README.md is not.
        let remote = RemoteState {
            hub: Some(hub(
                &["v1.0.0"],
                vec![lfs("w.bin", 'b'), lfs("old.bin", 'z')],
            )),
            github: Some(GithubState::default()),
            space: None,
        };
        let plan = plan(&config(""), &remote, "1.1.0");
        let actions: Vec<(&str, FileAction)> = plan
            .hub
            .as_ref()
            .expect("hub")
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("README.md", FileAction::Add),
                ("old.bin", FileAction::Keep),
                ("w.bin", FileAction::Unchanged)
            ]
        );
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert_eq!(plan.metric_deltas[0].delta, Some(1.0));
        let github = plan.github.expect("github");
        assert!(github.make_latest);
        assert_eq!(github.assets[0].action, AssetAction::Upload);
        // With prune, files the bundle lost are deleted.
        let pruned = super::tests_support::pruned(&remote);
        assert!(pruned);
    }

    #[test]
    fn older_versions_and_retagged_content_are_problems() {
        let mut state = hub(&["v1.0.0", "v1.2.0", "v1.1.0"], Vec::new());
        state.tag_tree = Some(vec![lfs("w.bin", 'x')]);
        let remote = RemoteState {
            hub: Some(state),
            github: None,
            space: None,
        };
        let plan = plan(&config(""), &remote, "1.1.0");
        assert_eq!(
            plan.problems,
            [
                "`v1.1.0` is already released on the Hub with different content: `README.md` \
                 is missing, `w.bin` differs"
                    .to_owned(),
                "version `1.1.0` is not greater than `1.2.0`, already released on the Hub"
                    .to_owned(),
            ]
        );
        let relaxed = plan_with_increase_off(&remote);
        assert_eq!(relaxed.len(), 1, "{relaxed:?}");
    }

    /// The identity at a released tag decides: another identity is refused naming the input, an
    /// unreadable `release.json` is refused naming why, the same identity with the same files
    /// is done, and the same identity with other large files did not reproduce.
    #[test]
    fn a_released_tags_identity_decides_what_a_rerun_may_do() {
        use crate::identity::{InputFile, ReleaseIdentity};
        let identity = |sha: char| {
            ReleaseIdentity::new(
                "tinydit-release 0.1.0".to_owned(),
                Some("1.1.0".to_owned()),
                Some(crate::provenance::SourceCommit::clean("c".repeat(40))),
                vec![InputFile {
                    path: "release.toml".to_owned(),
                    bytes: 10,
                    sha256: sha.to_string().repeat(64),
                }],
            )
        };
        let ours = identity('1');
        let mut manifest = manifest();
        manifest.identity = Some(ours.identity.clone());
        let run = |tag_identity: Option<Result<ReleaseIdentity, String>>, tree: Vec<RemoteFile>| {
            let mut state = hub(&["v1.1.0"], Vec::new());
            state.tag_tree = Some(tree);
            state.tag_identity = tag_identity;
            let remote = RemoteState {
                hub: Some(state),
                github: None,
                space: None,
            };
            let provenance = Provenance {
                identity: Some(ours.clone()),
                ..Provenance::default()
            };
            let version = ReleaseVersion::new(semver::Version::parse("1.1.0").expect("v"), "v");
            let mut config = config("");
            config.version.require_increase = false;
            build(
                &manifest,
                &config,
                &version,
                &remote,
                &provenance,
                &|_| None,
                &|_| None,
            )
            .problems
        };
        let released = vec![lfs("README.md", 'a'), lfs("w.bin", 'b')];
        assert_eq!(
            run(Some(Ok(identity('2'))), released.clone()),
            [
                "`v1.1.0` is already released on the Hub from other inputs: `release.toml` has \
              other content"
            ]
        );
        let unreadable = run(Some(Err("not JSON".to_owned())), released.clone());
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert!(
            unreadable[0].contains("its release identity cannot be read: not JSON"),
            "{unreadable:?}"
        );
        assert!(run(Some(Ok(ours.clone())), released).is_empty());
        let other_bytes = run(
            Some(Ok(ours.clone())),
            vec![lfs("README.md", 'a'), lfs("w.bin", 'z')],
        );
        assert_eq!(
            other_bytes,
            [
                "`v1.1.0` is released on the Hub from the same inputs, but this run did not \
              reproduce its bytes: `w.bin` differs"
            ]
        );
    }

    fn plan_with_increase_off(remote: &RemoteState) -> Vec<String> {
        plan(
            &config("[version]\nrequire-increase = false"),
            remote,
            "1.1.0",
        )
        .problems
    }

    /// What a pull request shows for a plan against a Hub with an earlier release.
    #[test]
    fn the_markdown_of_a_plan() {
        let remote = RemoteState {
            hub: Some(hub(&["v1.0.0"], vec![lfs("w.bin", 'b')])),
            github: Some(GithubState::default()),
            space: None,
        };
        let plan = plan(&config(""), &remote, "1.1.0");
        insta::assert_snapshot!(crate::publish::plan_markdown::markdown(&plan));
    }

    #[test]
    fn release_notes_carry_the_summary_gates_and_hub_commit() {
        let mut manifest = manifest();
        manifest.gates = vec![crate::manifest::GateLine {
            metric: "fid".to_owned(),
            kind: "max".to_owned(),
            threshold: 50.0,
            value: Some(41.0),
            verdict: "pass".to_owned(),
            blocking_severity: true,
        }];
        insta::assert_snapshot!(crate::publish::release_notes(
            &manifest,
            Some("https://huggingface.co/o/m/commit/abc")
        ));
    }

    /// A plan whose every name, path, message and commit is [`hostile::VALUE`] (the Hub
    /// repo's address excepted: `plan` builds it from the configured endpoint).
    ///
    /// [`hostile::VALUE`]: crate::report::markdown::hostile::VALUE
    pub(crate) fn hostile_plan() -> ReleasePlan {
        let remote = RemoteState {
            hub: Some(hub(
                &["v1.0.0"],
                vec![lfs("w.bin", 'b'), lfs("old.bin", 'c')],
            )),
            github: Some(GithubState::default()),
            space: None,
        };
        let mut plan = plan(&config(""), &remote, "1.1.0");
        let v = || crate::report::markdown::hostile::VALUE.to_owned();
        plan.tag = v();
        plan.problems = vec![v()];
        plan.warnings = vec![v()];
        plan.previous_release = Some(v());
        for delta in &mut plan.metric_deltas {
            delta.metric = v();
        }
        let hub = plan.hub.as_mut().expect("hub");
        hub.url = "https://huggingface.co/o/m".to_owned();
        hub.repo = v();
        hub.revision = v();
        hub.commit_message = v();
        hub.parent_commit = Some(v());
        hub.tag = v();
        hub.tag_plan = TagPlan::Exists { commit: v() };
        for file in &mut hub.files {
            file.path = v();
            file.sha256 = Some(v());
        }
        let github = plan.github.as_mut().expect("github");
        github.repo = v();
        github.tag = v();
        github.target_commit = Some(v());
        github.tag_plan = TagPlan::Exists { commit: v() };
        github.name = v();
        github.assets = vec![AssetPlan {
            path: v(),
            name: v(),
            bytes: 4,
            sha256: v(),
            action: AssetAction::Upload,
        }];
        plan
    }

    /// Issue 14: every name, path, message and commit of a plan and of the release notes
    /// reaches Markdown inert, whatever it holds, and nothing panics on multi-byte text.
    #[test]
    fn every_field_of_the_plan_and_the_notes_renders_inert() {
        use crate::report::markdown::hostile::{VALUE, assert_inert};
        let v = || VALUE.to_owned();
        let markdown = crate::publish::plan_markdown::markdown(&hostile_plan());
        // Every field is shown (whole: a digest cut inside a character is not cut), none live.
        assert!(
            markdown.matches("0123456789a猫bc猫").count() >= 20,
            "{markdown}"
        );
        assert_inert(&markdown, &["https://huggingface.co/o/m)"]);

        let mut manifest = manifest();
        manifest.model = v();
        manifest.version = Some(v());
        manifest.tool = v();
        manifest.source = Some(crate::provenance::SourceCommit::clean(v()));
        manifest.identity = Some(v());
        manifest.gates = vec![crate::manifest::GateLine {
            metric: v(),
            kind: v(),
            threshold: 50.0,
            value: Some(41.0),
            verdict: v(),
            blocking_severity: true,
        }];
        let notes =
            crate::publish::release_notes(&manifest, Some("https://huggingface.co/o/m/commit/abc"));
        assert_inert(&notes, &["https://huggingface.co/o/m/commit/abc)"]);
        assert_eq!(crate::publish::identity_in_notes(&notes), None);
    }

    #[test]
    fn a_prerelease_plans_a_branch_and_no_latest() {
        let remote = RemoteState {
            hub: Some(hub(&["v1.0.0"], Vec::new())),
            github: Some(GithubState::default()),
            space: None,
        };
        let plan = plan(&config(""), &remote, "1.1.0-rc.1");
        let hub = plan.hub.expect("hub");
        assert_eq!(hub.revision, "prerelease-v1.1.0-rc.1");
        assert!(hub.create_branch);
        assert_eq!(hub.parent_commit.as_deref(), Some("h".repeat(40).as_str()));
        let github = plan.github.expect("github");
        assert!(github.prerelease && !github.make_latest);
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    /// Whether a `prune` plan deletes the Hub file the bundle lost.
    pub fn pruned(remote: &RemoteState) -> bool {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = crate::config::PathRoots::discover(dir.path()).expect("roots");
        let text = "[model]\nname = \"m\"\nhub-repo = \"o/m\"\n\n[publish]\nprune = true\n";
        let config = crate::config::parse(
            text,
            "release.toml",
            roots,
            &crate::config::Overrides::default(),
        )
        .expect("valid");
        let manifest = ReleaseManifest {
            schema_version: crate::manifest::MANIFEST_SCHEMA_VERSION,
            tool: String::new(),
            model: "m".to_owned(),
            hub_repo: "o/m".to_owned(),
            github_repo: None,
            version: Some("1.1.0".to_owned()),
            tag: None,
            source: None,
            identity: None,
            outcome: crate::manifest::Verdict::Pass,
            metrics: Metrics::new(),
            gates: Vec::new(),
            files: Vec::new(),
            space: None,
        };
        let ours = ReleaseVersion::new(semver::Version::new(1, 1, 0), "v");
        let plan = build(
            &manifest,
            &config,
            &ours,
            remote,
            &Provenance::default(),
            &|_| None,
            &|_| None,
        );
        plan.hub.is_some_and(|h| {
            h.files
                .iter()
                .any(|f| f.path == "old.bin" && f.action == FileAction::Delete)
        })
    }
}
