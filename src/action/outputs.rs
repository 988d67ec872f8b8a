//! What a run leaves for the runner: the outputs (`$GITHUB_OUTPUT`, multi-line values in the
//! heredoc form with an unguessable delimiter) and the step summary (`$GITHUB_STEP_SUMMARY`, cut
//! at GitHub's 1 MiB limit), both written through the token scrubber.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use super::annotations::{Annotation, Level, error_chain, repo_relative};
use super::event::Event;
use super::inputs::ActionInputs;
use crate::check::CheckReport;
use crate::env::EnvSnapshot;
use crate::report::markdown::{code, link, prose};

/// Everything a run leaves for the runner.
#[derive(Debug, Default)]
pub(super) struct Results {
    pub(super) outputs: Vec<(&'static str, String)>,
    pub(super) summary: String,
    pub(super) annotations: Vec<Annotation>,
}

impl Results {
    pub(crate) fn output(&mut self, name: &'static str, value: impl Into<String>) {
        self.outputs.retain(|(n, _)| *n != name);
        self.outputs.push((name, value.into()));
    }
}

/// The step summary's section for an error that stopped the run: its first line, then each
/// further line (every problem of a configuration) as an item of a list.
pub(super) fn error_section(error: &anyhow::Error) -> String {
    let chain = error_chain(error);
    let mut lines = chain.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut section = format!(
        "## tinydit-release: error\n\n{}\n\n",
        prose(lines.next().unwrap_or_default())
    );
    let mut listed = false;
    for line in lines {
        let _ = writeln!(section, "- {}", prose(line));
        listed = true;
    }
    if listed {
        section.push('\n');
    }
    section
}

/// One annotation as an item of the summary's full list.
pub(super) fn annotation_item(a: &Annotation) -> String {
    let at =
        a.at.as_ref()
            .map(|(f, l, c)| format!("{} ", code(&format!("{f}:{l}:{c}"))))
            .unwrap_or_default();
    format!(
        "- **{}** {at}{}: {}\n",
        a.level.command(),
        prose(&a.title),
        prose(&a.message)
    )
}

/// Outputs and summary of a finished `publish`. The summary links only to addresses built here
/// from the configured endpoints, never to one a server answered with.
pub(super) fn publish_results(
    receipt: &crate::publish::PublishReceipt,
    endpoints: &crate::env::Endpoints,
    results: &mut Results,
) {
    results.output("version", receipt.version.clone());
    results.output("gates_passed", "true");
    results.output("hf_commit", receipt.hub_commit.clone().unwrap_or_default());
    results.output(
        "hf_url",
        receipt
            .hub_commit_url
            .clone()
            .or_else(|| receipt.hub_url.clone())
            .unwrap_or_default(),
    );
    results.output(
        "release_url",
        receipt.github_release_url.clone().unwrap_or_default(),
    );
    results.output("space_url", receipt.space_url.clone().unwrap_or_default());
    results.output(
        "plan_json",
        serde_json::to_string_pretty(&receipt.plan).expect("plans serialize to JSON"),
    );
    let what = if receipt.dry_run {
        "dry run: nothing was written"
    } else if receipt.already_released {
        "already released: nothing to do"
    } else {
        "released"
    };
    let _ = writeln!(results.summary, "## {} — {what}\n", code(&receipt.tag));
    if let Some(url) = &receipt.hub_commit_url {
        let _ = writeln!(results.summary, "- Hub: {}", link(url, url));
    }
    if let (Some(_), Some(github)) = (&receipt.github_release_url, &receipt.plan.github) {
        let page = crate::publish::plan::github_release_page(
            &endpoints.github_api,
            &github.repo,
            &github.tag,
        );
        let _ = writeln!(results.summary, "- GitHub release: {}", link(&page, &page));
    }
    if let Some(url) = &receipt.space_url {
        let _ = writeln!(results.summary, "- Demo Space: {}", link(url, url));
    }
    let _ = writeln!(
        results.summary,
        "- uploaded {} file(s) to the Hub and {} asset(s) to GitHub in this run\n",
        receipt.uploaded_files.len(),
        receipt.uploaded_assets.len()
    );
    results
        .summary
        .push_str(&crate::publish::plan_markdown::markdown(&receipt.plan));
}

/// Outputs, annotations and the summary of a `check`.
pub(super) fn check_results(
    report: &CheckReport,
    inputs: &ActionInputs,
    env_snapshot: &EnvSnapshot,
    event: &Event,
    results: &mut Results,
) {
    results.output("version", report.version.clone().unwrap_or_default());
    results.output("gates_passed", report.passed().to_string());
    let workspace = std::env::current_dir().ok();
    let config_file = repo_relative(&inputs.config, workspace.as_deref());
    for (i, gate) in report.gates.results.iter().enumerate() {
        if gate.verdict == crate::gates::Verdict::Pass {
            continue;
        }
        let at = report
            .gate_positions
            .get(gate.gate)
            .map(|&(line, column)| (config_file.clone(), line, column));
        results.annotations.push(Annotation {
            level: if gate.blocking {
                Level::Error
            } else {
                Level::Warning
            },
            at,
            title: format!("gate `{}` {} (#{})", gate.metric, gate.kind, i + 1),
            message: gate.message.clone(),
        });
    }
    for check in report.checks.iter().filter(|c| !c.passed) {
        results.annotations.push(Annotation {
            level: if check.severity == crate::config::Severity::Error {
                Level::Error
            } else {
                Level::Warning
            },
            at: None,
            title: format!("check `{}`", check.name),
            message: check.detail.clone(),
        });
    }
    if let Some(fallback) = report
        .smoke
        .as_ref()
        .and_then(|s| s.provider_fallback.as_ref())
    {
        results.annotations.push(Annotation {
            level: Level::Warning,
            at: None,
            title: "smoke test fell back to the CPU".to_owned(),
            message: fallback.clone(),
        });
    }
    results
        .summary
        .push_str(&crate::check::summary::markdown(report));
    let bundle = inputs.out.join("bundle");
    let _ = writeln!(
        results.summary,
        "\nThe bundle is in {}: keep it with `actions/upload-artifact` ({}).",
        code(&bundle.display().to_string()),
        code(&format!("path: {}/", bundle.display()))
    );
    if event.pull_request_head.is_some() {
        let _ = writeln!(
            results.summary,
            "\nProvenance: pull request head {}{}.",
            code(env_snapshot.github_sha.as_deref().unwrap_or_default()),
            if event.fork { " (from a fork)" } else { "" }
        );
    }
}

pub(super) fn write_runner_files(
    output_file: Option<&Path>,
    summary_file: Option<&Path>,
    results: &Results,
) -> anyhow::Result<()> {
    if let Some(path) = output_file {
        let mut text = String::new();
        for (name, value) in &results.outputs {
            text.push_str(&output_entry(name, value, &random_delimiter())?);
        }
        append(path, &text)?;
    }
    if let Some(path) = summary_file
        && !results.summary.is_empty()
    {
        append(path, &fit_summary(&results.summary))?;
    }
    Ok(())
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or for a multi-line value the heredoc form with a
/// delimiter the value cannot contain (the toolkit's `ghadelimiter_<uuid>` rule).
pub fn output_entry(name: &str, value: &str, delimiter: &str) -> anyhow::Result<String> {
    if !value.contains('\n') && !value.contains('\r') {
        return Ok(format!("{name}={value}\n"));
    }
    anyhow::ensure!(
        !value.contains(delimiter) && !name.contains(delimiter),
        "output `{name}` contains its delimiter; this may indicate a bug"
    );
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// `ghadelimiter_` and 128 random bits.
pub(super) fn random_delimiter() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: derive from time and pid, still far from guessable by a value's author.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
        bytes.copy_from_slice(&digest[..16]);
    }
    let mut out = String::from("ghadelimiter_");
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The runner rejects a step summary over 1 MiB (and then shows nothing): cut it before the
/// limit with a note, at the last line boundary, or (when that would drop more than 64 KiB: one
/// very long line) at the last character boundary; never inside a character, whatever the text.
pub(super) fn fit_summary(summary: &str) -> String {
    const LIMIT: usize = 1024 * 1024 - 256;
    const MOST_DROPPED_FOR_A_LINE: usize = 64 * 1024;
    if summary.len() <= LIMIT {
        return summary.to_owned();
    }
    let end = summary.floor_char_boundary(LIMIT);
    let cut = match summary[..end].rfind('\n') {
        Some(line) if end - line <= MOST_DROPPED_FOR_A_LINE => line,
        _ => end,
    };
    format!(
        "{}\n\n_The summary was cut at GitHub's 1 MiB limit; `summary.md` in the output folder \
         has all of it._\n",
        &summary[..cut]
    )
}

/// Appends to a runner file, without any registered token (`secrets::scrub`): the summary and
/// outputs quote error chains and plans, which may quote a server's echo of a request.
pub(super) fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let text = crate::secrets::scrub(text);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}
