//! `scan --format sarif`: checkpoint findings as a SARIF 2.1.0 log, the format GitHub code
//! scanning ingests (`github/codeql-action/upload-sarif`), so a malicious or unsupported
//! checkpoint shows up as an alert where a repository already looks.
//!
//! One rule per severity and kind of finding (`dangerous-global`, `corrupt-storage`, ...); one
//! result per finding, located in the checkpoint file. Checkpoints are binary, so a result points
//! at line 1 and carries the byte offset, zip member and dict key in its message and properties;
//! `partialFingerprints` keep an alert stable across runs without GitHub hashing source lines.
//! A file that could not be read at all becomes a `corrupt` result too: code scanning then shows
//! it instead of silently showing nothing.
//!
//! Schema: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json>
//! (a test validates our output against it).
//!
//! Layer 4, beside the stages: imports `artifacts` (whose findings it writes) only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::artifacts::finding::{Finding, FindingKind, Severity};
use crate::artifacts::scan::ScanReport;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/d-oit/tinydit-release";

/// The SARIF log for a scan of several files.
pub fn log(reports: &[ScanReport]) -> Value {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for report in reports {
        for finding in &report.findings {
            let id = rule_id(finding.severity, finding.kind);
            rules
                .entry(id.clone())
                .or_insert_with(|| rule(finding.severity, finding.kind));
            results.push(result(&report.file, &id, finding));
        }
    }
    for (file, error) in reports
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| (&r.file, e)))
    {
        let id = rule_id(Severity::Corrupt, FindingKind::Container);
        rules
            .entry(id.clone())
            .or_insert_with(|| rule(Severity::Corrupt, FindingKind::Container));
        results.push(json!({
            "ruleId": id,
            "level": "error",
            "message": { "text": format!("the file could not be scanned: {error}") },
            "locations": [location(file)],
            "partialFingerprints": { "tinydit-release/v1": fingerprint(&[file, &id]) },
        }));
    }
    let rule_index: Vec<&String> = rules.keys().collect();
    for result in &mut results {
        let id = result["ruleId"].as_str().unwrap_or_default().to_owned();
        if let Some(index) = rule_index.iter().position(|r| **r == id) {
            result["ruleIndex"] = json!(index);
        }
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "tinydit-release",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": INFORMATION_URI,
                    "rules": rules.into_values().collect::<Vec<_>>(),
                }
            },
            "originalUriBaseIds": {
                "%SRCROOT%": { "description": { "text": "the repository root (the scan's working directory)" } }
            },
            "results": results,
        }]
    })
}

fn rule_id(severity: Severity, kind: FindingKind) -> String {
    format!("{severity}-{}", kind_name(kind))
}

fn kind_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Global => "global",
        FindingKind::Opcode => "opcode",
        FindingKind::Container => "container",
        FindingKind::Storage => "storage",
        FindingKind::Resource => "resource",
        FindingKind::Dtype => "dtype",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Dangerous | Severity::Corrupt => "error",
        Severity::Unsupported => "warning",
    }
}

fn rule(severity: Severity, kind: FindingKind) -> Value {
    let what = match kind {
        FindingKind::Global => "a global outside the PyTorch weights-only allowlist",
        FindingKind::Opcode => "a pickle opcode outside the weights-only set",
        FindingKind::Container => "a malformed or ambiguous checkpoint container",
        FindingKind::Storage => "a tensor storage or view that is out of bounds or inconsistent",
        FindingKind::Resource => "a checkpoint over a resource limit",
        FindingKind::Dtype => "a tensor type safetensors cannot represent",
    };
    let (summary, help, score) = match severity {
        Severity::Dangerous => (
            format!("Checkpoint uses {what} that runs code when loaded"),
            "Loading this file with `torch.load` (without `weights_only=True`) or any unpickler \
             would execute code from it. Do not load it; rebuild the checkpoint from trusted \
             training code and save only tensors (a state dict).",
            "9.8",
        ),
        Severity::Unsupported => (
            format!("Checkpoint uses {what}"),
            "The file needs more than PyTorch's weights-only loader allows. Save a plain state \
             dict (`torch.save(model.state_dict(), path)`) so it can be read without executing \
             anything.",
            "5.0",
        ),
        Severity::Corrupt => (
            format!("Checkpoint has {what}"),
            "The file is truncated, inconsistent or built so that different readers would \
             disagree on its contents. Re-save it from the training run.",
            "7.0",
        ),
    };
    json!({
        "id": rule_id(severity, kind),
        "name": rule_id(severity, kind),
        "shortDescription": { "text": summary },
        "fullDescription": { "text": format!("{summary}. {help}") },
        "help": { "text": help },
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": { "level": level(severity) },
        "properties": {
            "tags": ["security", "pickle", "checkpoint"],
            "security-severity": score,
            "precision": "very-high",
        },
    })
}

fn result(file: &str, rule: &str, finding: &Finding) -> Value {
    let member = finding.member.as_ref().map(ToString::to_string);
    let mut properties = serde_json::Map::new();
    if let Some(member) = &member {
        properties.insert("member".into(), json!(member));
    }
    if let Some(offset) = finding.offset {
        properties.insert("offset".into(), json!(offset));
    }
    if let Some(offset) = finding.file_offset {
        properties.insert("fileOffset".into(), json!(offset));
    }
    if let Some(global) = &finding.global {
        properties.insert("global".into(), json!(global.qualified));
        properties.insert("rawGlobal".into(), json!(global.raw_qualified));
    }
    if let Some(path) = &finding.path {
        properties.insert("key".into(), json!(path));
    }
    let offset = finding
        .file_offset
        .map(|o| o.to_string())
        .unwrap_or_default();
    json!({
        "ruleId": rule,
        "level": level(finding.severity),
        "message": { "text": finding.to_string() },
        "locations": [location(file)],
        "partialFingerprints": {
            "tinydit-release/v1": fingerprint(&[file, rule, member.as_deref().unwrap_or(""), &offset, &finding.message]),
        },
        "properties": properties,
    })
}

fn location(file: &str) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(file), "uriBaseId": "%SRCROOT%" },
            // Checkpoints are binary: line 1 keeps GitHub's viewer happy; the byte offset is in
            // the message and the properties.
            "region": { "startLine": 1 },
        }
    })
}

/// A relative URI reference for a path: `/`-separated, `./` dropped, everything but unreserved
/// characters and `/` percent-encoded.
fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::finding::Member;

    #[test]
    fn one_rule_per_kind_and_one_result_per_finding() {
        let report = ScanReport {
            file: "weights/my model.pt".to_owned(),
            format: Some("zip"),
            error: None,
            findings: vec![
                Finding::new(
                    Severity::Dangerous,
                    FindingKind::Global,
                    "global `posix.system`",
                )
                .member(Member::Entry("archive/data.pkl".into()))
                .at(185, 64),
                Finding::new(
                    Severity::Dangerous,
                    FindingKind::Global,
                    "global `builtins.eval`",
                ),
            ],
        };
        let gone = ScanReport {
            file: "gone.pt".to_owned(),
            format: None,
            findings: Vec::new(),
            error: Some("no such file".to_owned()),
        };
        let log = log(&[report, gone]);
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 2, "{rules:?}");
        let results = run["results"].as_array().expect("results");
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["ruleId"], "dangerous-global");
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "weights/my%20model.pt"
        );
        assert_eq!(results[0]["properties"]["fileOffset"], 249);
        assert_ne!(
            results[0]["partialFingerprints"],
            results[1]["partialFingerprints"]
        );
        assert_eq!(results[2]["ruleId"], "corrupt-container");
        let index = results[2]["ruleIndex"].as_u64().expect("index") as usize;
        assert_eq!(rules[index]["id"], "corrupt-container");
    }
}
