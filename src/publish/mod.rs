//! `plan` and `publish`: read what is released, decide, then release to the Hub and GitHub.
//!
//! The order of `publish`, each step checking the world before acting so that a re-run after a
//! failure anywhere finishes the release without duplicates (and a re-run after success does
//! nothing):
//! 1. preflight (the front ends refuse pull-request events first, [`refuse_pull_request_event`],
//!    and a `--bundle` of another commit, [`check_bundle_source`]): the bundle matches its
//!    manifest, the version is known, no uncommitted tracked changes (unless `--allow-dirty`),
//!    tokens present;
//! 2. plan ([`plan::build`]) from the Hub's and GitHub's state; its problems refuse;
//! 3. Hub: the repo (created if missing), a prerelease's branch, one commit of the changed files
//!    based on the head read in step 2, the tree read back and compared, the tag;
//! 4. the demo Space (`[space]`, not for a prerelease), after the model's tag since its page
//!    loads the model at that tag: the same steps as the model's repo, on the Space's `main`;
//! 5. GitHub: the tag on the source commit, a draft release, every asset uploaded and verified,
//!    then the release published (the order immutable releases need; nothing half-done shows);
//! 6. the [`PublishReceipt`].
//!
//! Async stays inside this module: [`runtime`] builds a tokio runtime for each command; the
//! offline stages stay synchronous. Nothing here prints; progress goes through the `Reporter`.
//!
//! Layer 6, a pipeline: imports the manifest, the bundle and the floors below them, never a
//! front end.

pub mod adopt;
mod error;
pub mod github;
pub mod hub;
pub mod net;
pub mod notes;
pub mod plan;
pub mod plan_markdown;
pub mod retry;
pub mod route;
pub mod version;

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use self::adopt::Adopted;
pub use self::error::PublishError;
use self::hub::RepoKind;
pub use self::notes::{identity_in_notes, release_notes};
use self::plan::{
    AssetAction, FileAction, HubPlan, Provenance, ReleaseAction, ReleasePlan, RemoteState, TagPlan,
};
use self::version::ReleaseVersion;
use crate::config::ReleaseConfig;
use crate::identity::{IDENTITY_FILE, MAX_IDENTITY_BYTES, ReleaseIdentity};
use crate::manifest::{BuiltRelease, ReleaseManifest, Verdict};
use crate::report::Reporter;
use crate::secrets::Tokens;

/// What `publish` did: the action's outputs (`version`, `hf_commit`, `hf_url`,
/// `gh_release_url`) come from here.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReceipt {
    /// The version.
    pub version: String,
    /// Its tag.
    pub tag: String,
    /// Nothing was left to do.
    pub already_released: bool,
    /// Nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// The Hub commit of the release.
    pub hub_commit: Option<String>,
    /// Its web address.
    pub hub_commit_url: Option<String>,
    /// The Hub repo's web address.
    pub hub_url: Option<String>,
    /// The GitHub release's web address.
    pub github_release_url: Option<String>,
    /// The demo Space's web address, when the release has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_url: Option<String>,
    /// The Space's commit of the release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space_commit: Option<String>,
    /// Files uploaded to the Hub in this run.
    pub uploaded_files: Vec<String>,
    /// Assets uploaded to GitHub in this run.
    pub uploaded_assets: Vec<String>,
    /// The plan that was executed.
    pub plan: ReleasePlan,
}

/// Where the services are and who we are.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Tokens.
    pub tokens: Tokens,
    /// Addresses.
    pub endpoints: crate::env::Endpoints,
    /// The workflow run's address, for the commit description.
    pub run_url: Option<String>,
    /// The limits of every network call.
    pub timeouts: net::Timeouts,
}

/// A tokio runtime for one command's network calls.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the network runtime")
}

/// The workflow events on which `publish` is refused: each runs on code a pull request proposes
/// (`pull_request`, `pull_request_target`, `pull_request_review` and
/// `pull_request_review_comment` for a pull request's commits, `merge_group` for a merge
/// queue's candidate, which may never reach the base branch). Any later `pull_request_*` event
/// is refused too. `issue_comment` and `workflow_run` run the base branch's workflow and are
/// not refused; such a workflow must not publish a bundle built by a pull request's run.
pub const PULL_REQUEST_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "merge_group",
];

/// Whether `GITHUB_EVENT_NAME` names a pull-request event (see [`PULL_REQUEST_EVENTS`]).
pub fn is_pull_request_event(name: &str) -> bool {
    PULL_REQUEST_EVENTS.contains(&name) || name.starts_with("pull_request")
}

/// Refuses publishing from a pull-request event: the one rule the command line and the action
/// share.
pub fn refuse_pull_request_event(event: Option<&str>) -> anyhow::Result<()> {
    match event {
        Some(name) if is_pull_request_event(name) => Err(crate::error::Problem::new(format!(
            "publishing is refused on `{name}` events"
        ))
        .hint(
            "run `check` or `plan` on pull requests and merge queues, and `publish` on tag \
             pushes or a manual `workflow_dispatch`",
        )
        .into()),
        _ => Ok(()),
    }
}

/// The release version the configuration resolved, or an error saying how to give one.
pub fn release_version(config: &ReleaseConfig) -> anyhow::Result<ReleaseVersion> {
    let version = config.version.version.clone().ok_or_else(|| {
        crate::error::Problem::new("no release version").hint(
            "pass `--version X.Y.Z`, push a tag `vX.Y.Z`, or set `version.value` in release.toml",
        )
    })?;
    Ok(ReleaseVersion::new(version, &config.version.tag_prefix))
}

/// Reads a built release and checks that its files are unchanged and that it was built for
/// this version.
pub fn load_built(built: &BuiltRelease, ours: &ReleaseVersion) -> anyhow::Result<ReleaseManifest> {
    let manifest = ReleaseManifest::read(&built.manifest)?;
    if built.just_built {
        manifest.verify_listing(&built.bundle)?;
    } else {
        manifest.verify(&built.bundle)?;
    }
    manifest.verify_space(&built.space, !built.just_built)?;
    if manifest.version.as_deref() != Some(ours.version.to_string().as_str()) {
        return Err(crate::error::Problem::new(format!(
            "the bundle `{}` was built for version `{}`, not `{}`",
            built.bundle.display(),
            manifest.version.as_deref().unwrap_or("(none)"),
            ours.version
        ))
        .hint("run `tinydit-release check` with this version")
        .into());
    }
    Ok(manifest)
}

/// `publish --bundle`: a bundle built by an earlier step must name the commit this run releases
/// (`releasing`: `GITHUB_SHA`, else `HEAD`). A bundle is trusted as built (its checks are not
/// run again, and the GitHub tag goes on the commit it names), so one of another commit, an
/// artifact of another run or of a pull request's, is refused before its files are read.
pub fn check_bundle_source(built: &BuiltRelease, releasing: Option<&str>) -> anyhow::Result<()> {
    let manifest = ReleaseManifest::read(&built.manifest)?;
    let recorded = manifest.source.as_ref().map(|s| s.commit.as_str());
    let message = match (recorded, releasing) {
        (Some(ours), Some(theirs)) if ours.eq_ignore_ascii_case(theirs) => return Ok(()),
        (None, None) => return Ok(()),
        (Some(built_from), Some(releasing)) => format!(
            "the bundle `{}` was built from commit `{built_from}`, but this run releases commit \
             `{releasing}`",
            built.bundle.display()
        ),
        (Some(built_from), None) => format!(
            "the bundle `{}` was built from commit `{built_from}`, but the commit this run \
             releases cannot be told (no `GITHUB_SHA`, and no `git` commit here)",
            built.bundle.display()
        ),
        (None, Some(releasing)) => format!(
            "the bundle `{}` records no source commit, but this run releases commit \
             `{releasing}`",
            built.bundle.display()
        ),
    };
    Err(crate::error::Problem::new(message)
        .hint(
            "publish only a bundle `check` built in this workflow run from the commit being \
             released (never an artifact of a pull request's run), or run `publish` without \
             `--bundle` to check and publish in one step",
        )
        .into())
}

/// `check --baseline hub`: the metrics of the Hub's latest release before this version, or
/// `None` (with a warning) when there is none or the Hub cannot be reached, so regression gates
/// report `no-baseline` as they do offline.
pub fn baseline_from_hub(
    config: &ReleaseConfig,
    connection: &Connection,
    reporter: &Reporter,
) -> Option<(String, crate::gates::Metrics)> {
    let read = || -> anyhow::Result<Option<(String, crate::bundle::BundleMetrics)>> {
        let rt = runtime()?;
        let hub = hub::Hub::connect(
            &connection.endpoints.hub,
            connection.tokens.hub.as_ref(),
            &config.model.hub_repo,
            &connection.timeouts,
        )?;
        rt.block_on(
            hub.latest_release_metrics(&config.version.tag_prefix, config.version.version.as_ref()),
        )
    };
    match read() {
        Ok(Some((tag, metrics))) => {
            reporter.status(
                "Baseline",
                format!("`metrics.json` of `{tag}` from `{}`", config.model.hub_repo),
            );
            Some((tag, metrics.metrics))
        }
        Ok(None) => {
            reporter.warn(format!(
                "no earlier release of `{}` on the Hub: regression gates have no baseline",
                config.model.hub_repo
            ));
            None
        }
        Err(err) => {
            reporter.warn(format!(
                "could not read the baseline from the Hub ({err:#}): regression gates have no \
                 baseline"
            ));
            None
        }
    }
}

/// Token scopes, checked before anything is read for the plan or written.
fn preflight(
    config: &ReleaseConfig,
    manifest: &ReleaseManifest,
    connection: &Connection,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    if config.publish.hub
        && let Some(token) = &connection.tokens.hub
    {
        let hub = hub::Hub::new(
            &connection.endpoints.hub,
            token,
            &config.model.hub_repo,
            &connection.timeouts,
        )?;
        rt.block_on(hub.check_write_access())?;
    }
    if config.publish.github_release
        && let (Some(token), Some(repo)) = (&connection.tokens.github, &manifest.github_repo)
    {
        let _context = rt.enter();
        let github = github::GitHub::new(
            &connection.endpoints.github_api,
            &connection.endpoints.github_uploads,
            token,
            repo,
            &connection.timeouts,
        )?;
        let source = manifest.source.as_ref().map(|s| s.commit.as_str());
        rt.block_on(github.check_push_access(source))?;
    }
    Ok(())
}

/// Reads the Hub and GitHub where a token is present; writes nothing.
fn read_remote(
    config: &ReleaseConfig,
    manifest: &ReleaseManifest,
    ours: &ReleaseVersion,
    connection: &Connection,
    rt: &tokio::runtime::Runtime,
    reporter: &Reporter,
) -> anyhow::Result<RemoteState> {
    let mut remote = RemoteState::default();
    if config.publish.hub
        && let Some(token) = &connection.tokens.hub
    {
        reporter.status("Reading", format!("`{}` on the Hub", config.model.hub_repo));
        let hub = hub::Hub::new(
            &connection.endpoints.hub,
            token,
            &config.model.hub_repo,
            &connection.timeouts,
        )?;
        remote.hub = Some(rt.block_on(hub.read_state(
            &ours.hub_revision(),
            &ours.tag,
            &config.version.tag_prefix,
            &ours.version,
        ))?);
    }
    if config.publish.github_release
        && let (Some(token), Some(repo)) = (&connection.tokens.github, &manifest.github_repo)
    {
        reporter.status("Reading", format!("`{repo}` on GitHub"));
        // octocrab's client spawns its service on the current runtime.
        let _context = rt.enter();
        let github = github::GitHub::new(
            &connection.endpoints.github_api,
            &connection.endpoints.github_uploads,
            token,
            repo,
            &connection.timeouts,
        )?;
        remote.github = Some(rt.block_on(github.read_state(&ours.tag))?);
    }
    if let (Some(space), true, false, Some(token)) = (
        &manifest.space,
        config.publish.hub,
        ours.is_prerelease(),
        &connection.tokens.hub,
    ) {
        reporter.status("Reading", format!("the Space `{}` on the Hub", space.repo));
        let hub = hub::Hub::connect_kind(
            &connection.endpoints.hub,
            Some(token),
            &space.repo,
            RepoKind::Space,
            &connection.timeouts,
        )?;
        remote.space = Some(rt.block_on(hub.read_state(
            "main",
            &ours.tag,
            &config.version.tag_prefix,
            &ours.version,
        ))?);
    }
    Ok(remote)
}

/// `plan`: what `publish` would do, from the bundle alone or, with tokens, against the Hub
/// and GitHub. Writes nothing anywhere.
pub fn plan(
    config: &ReleaseConfig,
    built: &BuiltRelease,
    connection: &Connection,
    reporter: &Reporter,
) -> anyhow::Result<ReleasePlan> {
    let ours = release_version(config)?;
    let mut manifest = load_built(built, &ours)?;
    let rt = runtime()?;
    let reading = read_released(
        config,
        &mut manifest,
        built,
        &ours,
        connection,
        &rt,
        reporter,
    )?;
    Ok(build_plan(
        &manifest, config, &ours, &reading, connection, built,
    ))
}

/// What was read before planning: the services' state, this bundle's identity, and the files
/// adopted from the release that is already out.
struct Reading {
    remote: RemoteState,
    identity: Option<ReleaseIdentity>,
    adopted: Adopted,
}

/// Reads the Hub and GitHub and adopts what is already released of this very release (same
/// identity, see [`adopt`]) into `manifest`, in memory; nothing is written.
fn read_released(
    config: &ReleaseConfig,
    manifest: &mut ReleaseManifest,
    built: &BuiltRelease,
    ours: &ReleaseVersion,
    connection: &Connection,
    rt: &tokio::runtime::Runtime,
    reporter: &Reporter,
) -> anyhow::Result<Reading> {
    let identity = bundle_identity(built, manifest)?;
    let remote = read_remote(config, manifest, ours, connection, rt, reporter)?;
    let adopted = rt.block_on(adopt_released(
        config,
        manifest,
        identity.as_ref(),
        ours,
        connection,
        &remote,
        &built.bundle,
    ))?;
    if !adopted.is_empty() {
        let names: Vec<String> = adopted.files.keys().map(|p| format!("`{p}`")).collect();
        reporter.status(
            "Adopting",
            format!(
                "{} as released at `{}`: the same inputs were released there",
                names.join(", "),
                adopted.revision
            ),
        );
        adopted.apply(manifest);
    }
    Ok(Reading {
        remote,
        identity,
        adopted,
    })
}

/// The bundle's release identity (`release.json`), when it has one; it must be the identity
/// the manifest records.
fn bundle_identity(
    built: &BuiltRelease,
    manifest: &ReleaseManifest,
) -> anyhow::Result<Option<ReleaseIdentity>> {
    if !manifest.files.iter().any(|f| f.path == IDENTITY_FILE) {
        return Ok(None);
    }
    let path = built.bundle.join(IDENTITY_FILE);
    let shown = path.display().to_string();
    let text = crate::input::read_text(&path, &shown, "the release identity", MAX_IDENTITY_BYTES)?;
    let identity = ReleaseIdentity::parse(text.as_bytes(), &format!("`{shown}`"))?;
    if manifest
        .identity
        .as_ref()
        .is_some_and(|recorded| *recorded != identity.identity)
    {
        anyhow::bail!("`{shown}` is not the release identity `manifest.json` records");
    }
    Ok(Some(identity))
}

/// The Hub's copies of the files that differ, when the Hub holds this very release (see
/// [`adopt`]). Reads only.
async fn adopt_released(
    config: &ReleaseConfig,
    manifest: &ReleaseManifest,
    identity: Option<&ReleaseIdentity>,
    ours: &ReleaseVersion,
    connection: &Connection,
    remote: &RemoteState,
    bundle: &Path,
) -> anyhow::Result<Adopted> {
    let (Some(identity), Some(state), Some(token)) = (
        identity,
        remote.hub.as_ref(),
        connection.tokens.hub.as_ref(),
    ) else {
        return Ok(Adopted::default());
    };
    let hub = hub::Hub::new(
        &connection.endpoints.hub,
        token,
        &config.model.hub_repo,
        &connection.timeouts,
    )?;
    adopt::from_hub(
        &hub,
        state,
        &ours.tag,
        &ours.hub_revision(),
        identity,
        manifest,
        bundle,
    )
    .await
}

fn build_plan(
    manifest: &ReleaseManifest,
    config: &ReleaseConfig,
    ours: &ReleaseVersion,
    reading: &Reading,
    connection: &Connection,
    built: &BuiltRelease,
) -> ReleasePlan {
    let provenance = Provenance {
        run_url: connection.run_url.clone(),
        hub_endpoint: connection.endpoints.hub.clone(),
        identity: reading.identity.clone(),
    };
    plan::build(
        manifest,
        config,
        ours,
        &reading.remote,
        &provenance,
        &|file| {
            reading.adopted.get(&file.path).map_or_else(
                || hub::git_blob_oid(&built.bundle.join(&file.path)).ok(),
                |bytes| Some(hub::git_blob_oid_of(bytes)),
            )
        },
        &|file| hub::git_blob_oid(&built.space.join(&file.path)).ok(),
    )
}

/// How `publish` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    /// Everything but the writes.
    pub dry_run: bool,
    /// Publish although tracked files had uncommitted changes.
    pub allow_dirty: bool,
}

/// `publish` from a built, passed release.
pub fn publish(
    config: &ReleaseConfig,
    built: &BuiltRelease,
    connection: &Connection,
    options: PublishOptions,
    reporter: &Reporter,
) -> anyhow::Result<PublishReceipt> {
    // 1. Preflight.
    let ours = release_version(config)?;
    let manifest = load_built(built, &ours)?;
    if manifest.outcome != Verdict::Pass {
        anyhow::bail!(
            "the bundle `{}` was refused by `check`; it cannot be published",
            built.bundle.display()
        );
    }
    if let Some(source) = &manifest.source
        && !options.allow_dirty
    {
        match (source.dirty, &source.dirty_unknown) {
            (Some(false), _) => {}
            (Some(true), _) => {
                return Err(crate::error::Problem::new(format!(
                    "the bundle was built from {source}: tracked files were modified"
                ))
                .hint("commit the changes, or pass `--allow-dirty` to publish anyway")
                .into());
            }
            (None, why) => {
                return Err(crate::error::Problem::new(format!(
                    "the bundle was built from commit `{}`, but whether tracked files were \
                     modified could not be told: {}",
                    source.commit,
                    why.as_deref().unwrap_or("no reason recorded")
                ))
                .hint(
                    "run where `git` can read the repository (the action's image has it), or \
                     pass `--allow-dirty` to publish anyway",
                )
                .into());
            }
        }
    }
    if !options.dry_run {
        let mut missing = Vec::new();
        if config.publish.hub && connection.tokens.hub.is_none() {
            missing.push("`HF_TOKEN`");
        }
        if config.publish.github_release && connection.tokens.github.is_none() {
            missing.push("`GITHUB_TOKEN`");
        }
        if !missing.is_empty() {
            return Err(crate::error::Problem::new(format!(
                "publishing needs {}",
                missing.join(" and ")
            ))
            .hint("set the tokens in the job's environment, or pass `--dry-run`")
            .into());
        }
    }

    // 2. Plan, after checking that the tokens may write and taking what is already released
    //    of this very release (same identity).
    let rt = runtime()?;
    preflight(config, &manifest, connection, &rt)?;
    let mut manifest = manifest;
    let reading = read_released(
        config,
        &mut manifest,
        built,
        &ours,
        connection,
        &rt,
        reporter,
    )?;
    if !reading.adopted.is_empty() && !options.dry_run {
        reading.adopted.write(&built.bundle)?;
        crate::output::write_atomically(&built.manifest, &crate::bundle::pretty_json(&manifest))?;
    }
    let plan = build_plan(&manifest, config, &ours, &reading, connection, built);
    if !plan.problems.is_empty() {
        return Err(crate::error::Problem::new(format!(
            "`{}` cannot be published: {}",
            ours.tag,
            plan.problems.join("; ")
        ))
        .into());
    }
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    let mut receipt = PublishReceipt {
        version: plan.version.clone(),
        tag: plan.tag.clone(),
        already_released: plan.is_already_released(),
        dry_run: options.dry_run,
        hub_commit: None,
        hub_commit_url: None,
        hub_url: None,
        github_release_url: None,
        space_url: plan.space.as_ref().map(|s| s.url.clone()),
        space_commit: plan.space.as_ref().and_then(|s| match &s.tag_plan {
            TagPlan::Exists { commit } => Some(commit.clone()),
            _ => None,
        }),
        uploaded_files: Vec::new(),
        uploaded_assets: Vec::new(),
        plan: plan.clone(),
    };
    if let Some(hub_plan) = &plan.hub {
        receipt.hub_url = Some(plan::hub_repo_url(
            &connection.endpoints.hub,
            &hub_plan.repo,
        ));
        if let TagPlan::Exists { commit } = &hub_plan.tag_plan {
            receipt.hub_commit_url = Some(format!(
                "{}/commit/{}",
                receipt.hub_url.as_deref().unwrap_or_default(),
                route::segment(commit)
            ));
            receipt.hub_commit = Some(commit.clone());
        }
    }
    receipt.github_release_url = reading
        .remote
        .github
        .as_ref()
        .and_then(|g| g.release.as_ref())
        .filter(|r| !r.draft)
        .map(|r| r.html_url.clone());
    if options.dry_run || receipt.already_released {
        return Ok(receipt);
    }

    rt.block_on(execute(
        config,
        &manifest,
        built,
        &plan,
        connection,
        &mut receipt,
        reporter,
    ))?;
    Ok(receipt)
}

/// Steps 3 to 5.
async fn execute(
    config: &ReleaseConfig,
    manifest: &ReleaseManifest,
    built: &BuiltRelease,
    plan: &ReleasePlan,
    connection: &Connection,
    receipt: &mut PublishReceipt,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    if let (Some(hub_plan), Some(token)) = (&plan.hub, &connection.tokens.hub) {
        let done = release_to_hub(
            RepoKind::Model,
            token,
            hub_plan,
            config,
            manifest,
            built,
            plan,
            connection,
            receipt,
            reporter,
        )
        .await?;
        receipt.hub_commit_url = Some(done.commit_url);
        receipt.hub_commit = Some(done.commit);
    }

    // The Space's page loads the model at its tag, so the Space follows the model's tag.
    if let (Some(space_plan), Some(token)) = (&plan.space, &connection.tokens.hub) {
        let done = release_to_hub(
            RepoKind::Space,
            token,
            space_plan,
            config,
            manifest,
            built,
            plan,
            connection,
            receipt,
            reporter,
        )
        .await?;
        receipt.space_url = Some(done.repo_url);
        receipt.space_commit = Some(done.commit);
    }

    if let (Some(gh_plan), Some(token)) = (&plan.github, &connection.tokens.github) {
        let github = github::GitHub::new(
            &connection.endpoints.github_api,
            &connection.endpoints.github_uploads,
            token,
            &gh_plan.repo,
            &connection.timeouts,
        )?;
        let target = gh_plan
            .target_commit
            .as_deref()
            .context("no source commit recorded: the GitHub tag needs one")?;
        if !matches!(gh_plan.tag_plan, TagPlan::Exists { .. }) {
            reporter.status("Tagging", format!("`{}` on GitHub", gh_plan.tag));
            github.ensure_tag(&gh_plan.tag, target).await?;
        }
        let notes = release_notes(manifest, receipt.hub_commit_url.as_deref());
        let release = github
            .ensure_draft(&gh_plan.tag, &gh_plan.name, &notes, gh_plan.prerelease)
            .await?;
        if release.draft || gh_plan.release_action != ReleaseAction::Published {
            for asset in &gh_plan.assets {
                if asset.action == AssetAction::Released {
                    continue;
                }
                if asset.action == AssetAction::TooLarge {
                    reporter.skipped(format!("asset `{}`: larger than 2 GiB", asset.path));
                    continue;
                }
                reporter.status(
                    "Uploading",
                    format!("`{}` to the GitHub release", asset.name),
                );
                let uploaded = github
                    .upload_asset(
                        release.id,
                        &asset.name,
                        &built.bundle.join(&asset.path),
                        asset.bytes,
                        &asset.sha256,
                    )
                    .await?;
                if uploaded {
                    receipt.uploaded_assets.push(asset.name.clone());
                }
            }
        }
        reporter.status(
            "Publishing",
            format!("the GitHub release `{}`", gh_plan.tag),
        );
        let url = if release.draft {
            github
                .publish(release.id, &notes, gh_plan.make_latest)
                .await?
        } else {
            release.html_url.clone()
        };
        receipt.github_release_url = Some(url);
    }
    reporter.status("Published", format!("`{}`", plan.tag));
    Ok(())
}

/// What [`release_to_hub`] released: the commit and the web addresses the receipt gives.
struct Released {
    commit: String,
    commit_url: String,
    repo_url: String,
}

/// Step 3 for one Hub repo (the model, or the demo Space): the repo created if missing, a
/// prerelease's branch, one commit of the changed files, the tree read back and compared, the
/// tag. The model repo gets the bundle, the Space the Space's folder.
#[allow(clippy::too_many_arguments)]
async fn release_to_hub(
    kind: RepoKind,
    token: &crate::secrets::Token,
    hub_plan: &HubPlan,
    config: &ReleaseConfig,
    manifest: &ReleaseManifest,
    built: &BuiltRelease,
    plan: &ReleasePlan,
    connection: &Connection,
    receipt: &mut PublishReceipt,
    reporter: &Reporter,
) -> anyhow::Result<Released> {
    let (files, dir) = match kind {
        RepoKind::Model => (&manifest.files[..], &built.bundle),
        RepoKind::Space => (
            manifest.space.as_ref().map_or(&[][..], |s| &s.files[..]),
            &built.space,
        ),
    };
    let hub = &hub::Hub::connect_kind(
        &connection.endpoints.hub,
        Some(token),
        &hub_plan.repo,
        kind,
        &connection.timeouts,
    )?;
    if hub_plan.repo_action != "exists" {
        reporter.status("Creating", format!("`{}` on the Hub", hub_plan.repo));
        hub.ensure_repo(hub_plan.private).await?;
    }
    let commit = if let TagPlan::Exists { commit } = &hub_plan.tag_plan {
        commit.clone()
    } else {
        let mut hub_plan = hub_plan.clone();
        if hub_plan.create_branch || hub_plan.repo_action != "exists" {
            if hub_plan.create_branch {
                let main = hub.branch_head("main").await?;
                reporter.status("Creating", format!("branch `{}`", hub_plan.revision));
                hub.ensure_branch(&hub_plan.revision, main.as_deref())
                    .await?;
            }
            // Plan the commit again against what the branch holds now (a new repo starts
            // with `.gitattributes`, a new branch with `main`'s files).
            let ours = ReleaseVersion::new(
                semver::Version::parse(&plan.version)
                    .context("the plan's version is a semantic version")?,
                &config.version.tag_prefix,
            );
            let state = hub
                .read_state(
                    &hub_plan.revision,
                    &ours.tag,
                    &config.version.tag_prefix,
                    &ours.version,
                )
                .await?;
            let remote = match kind {
                RepoKind::Model => RemoteState {
                    hub: Some(state),
                    ..RemoteState::default()
                },
                RepoKind::Space => RemoteState {
                    space: Some(state),
                    ..RemoteState::default()
                },
            };
            let reading = Reading {
                remote,
                identity: bundle_identity(built, manifest)?,
                adopted: Adopted::default(),
            };
            let fresh = build_plan(manifest, config, &ours, &reading, connection, built);
            let fresh = match kind {
                RepoKind::Model => fresh.hub,
                RepoKind::Space => fresh.space,
            };
            if let Some(fresh) = fresh {
                hub_plan = fresh;
            }
        }
        if hub_plan.commit_needed {
            let changed: Vec<&str> = hub_plan
                .files
                .iter()
                .filter(|f| matches!(f.action, FileAction::Add | FileAction::Replace))
                .map(|f| f.path.as_str())
                .collect();
            reporter.status(
                "Uploading",
                format!(
                    "{} file(s) to `{}` (`{}`), one commit",
                    changed.len(),
                    hub_plan.repo,
                    hub_plan.revision
                ),
            );
            receipt
                .uploaded_files
                .extend(changed.iter().map(|path| match kind {
                    RepoKind::Model => (*path).to_owned(),
                    RepoKind::Space => format!("{}/{path}", crate::space::SPACE_DIR),
                }));
            hub.commit(&hub_plan, dir, files).await?
        } else {
            reporter.skipped(format!(
                "commit to `{}`: every file is already there",
                hub_plan.repo
            ));
            hub_plan
                .parent_commit
                .clone()
                .context("nothing to commit, yet the branch has no head")?
        }
    };
    reporter.status(
        "Verifying",
        format!("commit `{commit}` of `{}` on the Hub", hub_plan.repo),
    );
    hub.verify(&commit, files, dir).await?;
    if !matches!(hub_plan.tag_plan, TagPlan::Exists { .. }) {
        reporter.status(
            "Tagging",
            format!("`{}` of `{}` on the Hub", hub_plan.tag, hub_plan.repo),
        );
        hub.tag(&hub_plan.tag, &commit, &format!("Release {}", hub_plan.tag))
            .await?;
    }
    Ok(Released {
        commit_url: hub.commit_url(&commit),
        repo_url: hub.repo_url(),
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14: one rule for the command line and the action, every pull-request event.
    #[test]
    fn publishing_is_refused_on_every_pull_request_event() {
        for event in PULL_REQUEST_EVENTS
            .iter()
            .chain(&["pull_request_future_kind"])
        {
            let err = refuse_pull_request_event(Some(event)).expect_err(event);
            assert_eq!(
                err.to_string(),
                format!("publishing is refused on `{event}` events")
            );
        }
        for event in ["push", "workflow_dispatch", "release", "schedule", ""] {
            refuse_pull_request_event(Some(event)).expect(event);
        }
        refuse_pull_request_event(None).expect("outside GitHub Actions");
    }

    /// Issue 14: a bundle from another commit is refused naming both commits.
    #[test]
    fn a_bundle_of_another_commit_is_refused_naming_both() {
        let out = tempfile::tempdir().expect("tempdir");
        let built = BuiltRelease::in_out_dir(out.path());
        let write = |source: serde_json::Value| {
            let manifest = serde_json::json!({
                "schema_version": crate::manifest::MANIFEST_SCHEMA_VERSION,
                "tool": "t", "model": "m", "hub_repo": "o/m", "github_repo": "o/r",
                "version": "1.0.0", "tag": "v1.0.0", "source": source,
                "outcome": "pass", "files": [],
            });
            std::fs::write(&built.manifest, manifest.to_string()).expect("write");
        };
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        write(serde_json::json!({"commit": a, "dirty": false}));
        check_bundle_source(&built, Some(&a)).expect("same commit");
        check_bundle_source(&built, Some(&a.to_uppercase())).expect("same commit, any case");
        let err = check_bundle_source(&built, Some(&b)).expect_err("other commit");
        assert!(
            err.to_string()
                .contains(&format!("built from commit `{a}`"))
                && err.to_string().contains(&format!("releases commit `{b}`")),
            "{err}"
        );
        let err = check_bundle_source(&built, None).expect_err("unknown here");
        assert!(err.to_string().contains("cannot be told"), "{err}");
        write(serde_json::Value::Null);
        let err = check_bundle_source(&built, Some(&b)).expect_err("none recorded");
        assert!(
            err.to_string().contains("records no source commit"),
            "{err}"
        );
        check_bundle_source(&built, None).expect("neither known: outside git and Actions");
    }
}
