//! How a [`ReleasePlan`] looks in a pull request: Markdown tables of the Hub commit, the tags,
//! the GitHub release and the metric deltas. `publish::plan` decides; this only renders.

use std::fmt::Write as _;

use crate::publish::plan::{AssetAction, FileAction, HubPlan, ReleaseAction, ReleasePlan, TagPlan};
use crate::report::markdown::{code, link, prose, text};

/// The first 12 characters of a commit id or digest, as a code span.
fn short(sha: &str) -> String {
    code(sha.get(..12).unwrap_or(sha))
}

fn tag_text(tag: &TagPlan) -> String {
    match tag {
        TagPlan::Create => "create".to_owned(),
        TagPlan::Exists { commit } => format!("exists at {}", short(commit)),
        TagPlan::Unknown => "create unless present (not read: no token)".to_owned(),
    }
}

/// The plan as Markdown. Every name, path, message and commit goes through [`text`],
/// [`code`] or [`prose`]; the links are to the Hub repos' addresses (the model's and the demo
/// Space's), which the plan built from the configured endpoint.
pub fn markdown(plan: &ReleasePlan) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Release plan: {}{}\n",
        code(&plan.tag),
        if plan.prerelease { " (prerelease)" } else { "" }
    );
    if plan.is_already_released() {
        let _ = writeln!(md, "**Already released**: `publish` has nothing to do.\n");
    }
    if !plan.online {
        let _ = writeln!(
            md,
            "_From the bundle alone: the Hub and GitHub were not read (no tokens)._\n"
        );
    }
    if !plan.problems.is_empty() {
        let _ = writeln!(md, "**`publish` would refuse:**\n");
        for problem in &plan.problems {
            let _ = writeln!(md, "- {}", prose(problem));
        }
        md.push('\n');
    }
    for warning in &plan.warnings {
        let _ = writeln!(md, "- warning: {}", prose(warning));
    }
    if let Some(hub) = &plan.hub {
        hub_section(&mut md, "Hugging Face Hub", hub);
    }
    if let Some(space) = &plan.space {
        hub_section(&mut md, "Demo Space", space);
    }
    if let Some(gh) = &plan.github {
        let release = match gh.release_action {
            ReleaseAction::Create => "create as a draft, upload the assets, then publish",
            ReleaseAction::ResumeDraft => "complete the draft of an earlier run, then publish",
            ReleaseAction::Published => "published already",
            ReleaseAction::Unknown => "create unless present (not read: no token)",
        };
        let _ = writeln!(
            md,
            "### GitHub: {}\n\nTag {} on {}: {}. Release \"{}\"{}: {release}; {}.\n",
            code(&gh.repo),
            code(&gh.tag),
            gh.target_commit
                .as_deref()
                .map_or("(no source commit)".to_owned(), short),
            tag_text(&gh.tag_plan),
            text(&gh.name),
            if gh.prerelease { " (prerelease)" } else { "" },
            if gh.make_latest {
                "marked latest"
            } else {
                "not marked latest"
            }
        );
        if !gh.assets.is_empty() {
            let _ = writeln!(md, "| asset | action | size | sha256 |\n|---|---|---|---|");
            for asset in &gh.assets {
                let action = match asset.action {
                    AssetAction::Upload => "upload",
                    AssetAction::Replace => "replace",
                    AssetAction::Present => "present",
                    AssetAction::Released => "released from the same inputs: kept",
                    AssetAction::TooLarge => "skipped: over 2 GiB",
                };
                let _ = writeln!(
                    md,
                    "| {} | {action} | {} | {} |",
                    code(&asset.name),
                    crate::card::human_bytes(asset.bytes),
                    short(&asset.sha256)
                );
            }
            md.push('\n');
        }
    }
    if let Some(previous) = &plan.previous_release {
        let _ = writeln!(
            md,
            "### Metrics against {}\n\n| metric | previous | now | change |\n|---|---|---|---|",
            code(previous)
        );
        for delta in &plan.metric_deltas {
            let show = |v: Option<f64>| v.map_or("—".to_owned(), crate::gates::fmt);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                code(&delta.metric),
                show(delta.previous),
                show(delta.current),
                delta.delta.map_or("—".to_owned(), |d| format!("{d:+}"))
            );
        }
    }
    md
}

/// One Hub repo's commit and tag: the model's, or the demo Space's.
fn hub_section(md: &mut String, heading: &str, hub: &HubPlan) {
    let _ = writeln!(
        md,
        "### {heading}: {}\n\nRepo: {}. Branch {}{}; commit \"{}\"{}; tag {}: {}.\n",
        link(&hub.repo, &hub.url),
        hub.repo_action,
        code(&hub.revision),
        if hub.create_branch {
            " (created from `main`)"
        } else {
            ""
        },
        text(&hub.commit_message),
        hub.parent_commit
            .as_deref()
            .map(|p| format!(" on {}", short(p)))
            .unwrap_or_default(),
        code(&hub.tag),
        tag_text(&hub.tag_plan)
    );
    if !hub.commit_needed {
        let _ = writeln!(md, "No commit needed: every file is already there.\n");
    }
    let _ = writeln!(md, "| file | action | size | sha256 |\n|---|---|---|---|");
    for file in &hub.files {
        let action = match file.action {
            FileAction::Add => "add",
            FileAction::Replace => "replace",
            FileAction::Unchanged => "unchanged",
            FileAction::Delete => "**delete**",
            FileAction::Keep => "keep (not in bundle)",
        };
        let _ = writeln!(
            md,
            "| {} | {action} | {} | {} |",
            code(&file.path),
            crate::card::human_bytes(file.bytes),
            file.sha256.as_deref().map_or("—".to_owned(), short)
        );
    }
    md.push('\n');
}
