//! How a [`CheckReport`] looks to people: the Markdown step summary (`summary.md`) and the
//! console table of gates and failed checks. `check` decides; this module only renders.

use std::fmt::Write as _;
use std::path::Path;

use crate::check::CheckReport;
use crate::config::Severity;
use crate::names::metric;
use crate::{card, gates, smoke};

/// The Markdown summary for the Action's step summary; kept under 1 MiB. `samples` is the
/// folder the smoke test's images are in, for embedding the grid.
pub fn markdown(report: &CheckReport, samples: &Path) -> String {
    let mut md = String::new();
    let verdict = if report.passed() { "passed" } else { "refused" };
    let _ = writeln!(
        md,
        "## {} {} — check {verdict}\n",
        report.model,
        report.version.as_deref().unwrap_or("(no version)")
    );
    if !report.refusals.is_empty() {
        let _ = writeln!(md, "**Refused because:**\n");
        for reason in &report.refusals {
            let _ = writeln!(md, "- {}", escape(reason));
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
                "| `{}` | {} | {} | {} | {}{} |",
                g.metric,
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
        let _ = writeln!(md, "| `{}` | {result} | {} |", c.name, escape(&c.detail));
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
                .map(|f| format!(" (fell back: {})", escape(f)))
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
            let path = samples.join(gallery);
            if let Ok(bytes) = std::fs::read(&path)
                && bytes.len() < 256 * 1024
            {
                let _ = writeln!(
                    md,
                    "<img alt=\"sample grid\" src=\"data:image/png;base64,{}\">\n",
                    base64(&bytes)
                );
            }
        }
    }
    let _ = writeln!(md, "### Bundle\n\n| file | size | sha256 |\n|---|---|---|");
    for f in &report.bundle.files {
        let _ = writeln!(
            md,
            "| `{}` | {} | `{}` |",
            f.path,
            card::human_bytes(f.bytes),
            &f.sha256[..16.min(f.sha256.len())]
        );
    }
    md
}

/// Keeps a table cell on one row: pipes escaped, line breaks flattened.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
