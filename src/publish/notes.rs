//! The GitHub release notes: how a release looks on GitHub, and the identity read back from
//! notes already published.

use std::fmt::Write as _;

use crate::identity::IDENTITY_FILE;
use crate::manifest::ReleaseManifest;
use crate::report::markdown::{code, link, text};

/// How the release notes name the release identity.
const IDENTITY_NOTE: &str = "Release identity:";

/// The release identity the notes of a GitHub release name, if any.
pub fn identity_in_notes(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(IDENTITY_NOTE)?.trim_start();
        let digest = rest.strip_prefix('`')?.split('`').next()?;
        crate::identity::is_digest(digest).then(|| digest.to_owned())
    })
}

/// The GitHub release notes: summary, gate table and the Hub commit. The manifest comes from a
/// bundle folder, so every value in it goes through [`text`] or [`code`]; the one link is the Hub
/// commit's address, which `publish` built from the configured endpoint.
pub fn release_notes(manifest: &ReleaseManifest, hub_commit_url: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} {}, released by {}.\n",
        text(&manifest.model),
        manifest
            .version
            .as_deref()
            .map_or("(no version)".to_owned(), text),
        text(&manifest.tool)
    );
    if let Some(url) = hub_commit_url {
        let _ = writeln!(md, "Hugging Face Hub commit: {}\n", link(url, url));
    }
    if let Some(source) = &manifest.source {
        let _ = writeln!(md, "Built from commit {}.\n", code(&source.commit));
    }
    if let Some(identity) = &manifest.identity {
        let _ = writeln!(
            md,
            "{IDENTITY_NOTE} {} (the tool, version, source commit and every input \
             file's sha256; see `{IDENTITY_FILE}`).\n",
            code(identity)
        );
    }
    if !manifest.gates.is_empty() {
        let _ = writeln!(
            md,
            "| metric | gate | threshold | value | verdict |\n|---|---|---|---|---|"
        );
        for g in &manifest.gates {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                code(&g.metric),
                text(&g.kind),
                crate::gates::fmt(g.threshold),
                g.value.map_or("—".to_owned(), crate::gates::fmt),
                text(&g.verdict)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "{} file(s), {} bytes; sha256 digests in the Hub repo's tree and on each asset.",
        manifest.files.len(),
        manifest.total_bytes()
    );
    md
}
