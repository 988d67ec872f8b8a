//! How a [`CheckReport`] looks to people: the Markdown step summary (`summary.md`) and the
//! console table of gates and failed checks. `check` decides (`mod.rs`); this module only renders.

use std::fmt::Write as _;

use super::report::CheckReport;
use crate::config::Severity;
use crate::names::metric;
use crate::report::markdown::{code, prose, text};
use crate::{card, gates, smoke};

/// The Markdown summary for the Action's step summary; kept under 1 MiB. Every value from the
/// configuration, the checkpoint or the bundle goes through [`text`], [`code`] or [`prose`]. Images are not
/// embedded: GitHub strips `data:` URIs from step summaries, so the grid is named where it is (the
/// bundle, which a following `actions/upload-artifact` step keeps; the Hub after a release).
pub fn markdown(report: &CheckReport) -> String {
    let mut md = String::new();
    let verdict = if report.passed() { "passed" } else { "refused" };
    let _ = writeln!(
        md,
        "## {} {} — check {verdict}\n",
        text(&report.model),
        report
            .version
            .as_deref()
            .map_or("(no version)".to_owned(), text)
    );
    if !report.refusals.is_empty() {
        let _ = writeln!(md, "**Refused because:**\n");
        for reason in &report.refusals {
            let _ = writeln!(md, "- {}", prose(reason));
        }
        md.push('\n');
    }
    if !report.gates.results.is_empty() {
        let _ = writeln!(
            md,
            "### Gates\n\n| metric | gate | value | threshold | verdict |\n|---|---|---|---|---|"
        );
        for g in &report.gates.results {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {}{} |",
                code(&g.metric),
                g.kind,
                g.value.map_or("—".to_owned(), gates::fmt),
                gates::fmt(g.threshold),
                serde_json::to_value(g.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                if g.severity == Severity::Warn {
                    " (warn)"
                } else {
                    ""
                }
            );
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "### Checks\n\n| check | result | detail |\n|---|---|---|"
    );
    for c in &report.checks {
        let result = match (c.passed, c.severity) {
            (true, _) => "pass",
            (false, Severity::Error) => "**fail**",
            (false, Severity::Warn) => "warn",
        };
        let _ = writeln!(
            md,
            "| {} | {result} | {} |",
            code(&c.name),
            prose(&c.detail)
        );
    }
    md.push('\n');
    if let Some(smoke) = &report.smoke {
        let _ = writeln!(
            md,
            "### Smoke test\n\nProvider `{}`{}, {} steps, CFG `{:?}` {}.\n",
            smoke::session::provider_name(smoke.provider),
            smoke
                .provider_fallback
                .as_ref()
                .map(|f| format!(" (fell back: {})", prose(f)))
                .unwrap_or_default(),
            smoke.steps,
            smoke.cfg,
            smoke.cfg_scale
        );
        for key in [
            metric::LOAD_MS,
            metric::STEP_MS_P50,
            metric::LATENCY_MS_P50,
            metric::LATENCY_MS_P95,
        ] {
            if let Some(v) = smoke.metrics.get(key) {
                let _ = writeln!(md, "- `{key}`: {}", gates::fmt(*v));
            }
        }
        md.push('\n');
        if let Some(gallery) = smoke.gallery() {
            let _ = writeln!(md, "Sample grid: {} in the bundle.\n", code(gallery));
        }
    }
    if !report.variants.is_empty() {
        variants(&mut md, report);
    }
    let _ = writeln!(md, "### Bundle\n\n| file | size | sha256 |\n|---|---|---|");
    for f in &report.bundle.files {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            code(&f.path),
            card::human_bytes(f.bytes),
            code(f.sha256.get(..16).unwrap_or(&f.sha256))
        );
    }
    md
}

/// One row per generator variant: its file, size, worst agreement with the full model and
/// verdict, and where its full | variant grid is.
fn variants(md: &mut String, report: &CheckReport) {
    let _ = writeln!(
        md,
        "### Variants\n\n| variant | file | size | velocity cosine (worst) | rel. L2 (worst) | PSNR dB (worst) | SSIM (worst) | agreement |\n|---|---|---|---|---|---|---|---|"
    );
    for v in &report.variants {
        let get = |measure: &str, digits: usize| {
            v.metrics
                .get(&metric::variant(&v.name, measure))
                .map_or("—".to_owned(), |x| format!("{x:.digits$}"))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            code(&v.name),
            code(&v.file),
            card::human_bytes(v.bytes),
            get("velocity_cosine_min", 6),
            get("velocity_rel_l2_max", 4),
            get("psnr_min_db", 1),
            get("ssim_min", 4),
            if v.passed { "pass" } else { "**fail**" },
        );
    }
    md.push('\n');
    for v in &report.variants {
        if let Some(grid) = &v.grid {
            let _ = writeln!(
                md,
                "Full | {} grid: {} in the bundle.\n",
                code(&v.name),
                code(grid)
            );
        }
    }
}

/// A console table of the gates and failed checks.
pub fn console_lines(report: &CheckReport) -> Vec<String> {
    let mut lines = Vec::new();
    for g in &report.gates.results {
        let verdict = serde_json::to_value(g.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        lines.push(format!("{verdict:>11}  {}", g.message));
    }
    for c in report.checks.iter().filter(|c| !c.passed) {
        lines.push(format!("{:>11}  {}: {}", "fail", c.name, c.detail));
    }
    lines
}
