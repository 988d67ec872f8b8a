//! One finding of a checkpoint scan: what is wrong, how bad it is, and exactly where.
//!
//! Findings are data: the scanner collects every one it can reach in a file and the caller decides
//! (a file with any finding is never converted). The one-line human form is
//! ``archive/data.pkl:314: dangerous global `posix.system` called by REDUCE at 371 (key `model._hook`)``;
//! the JSON form carries the same fields (see `checkpoint-safety.md` §9).

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Every severity refuses the file; the order is the order of reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A known-harmful global (code execution, file or network access, a nested unpickler) or an
    /// opcode that calls something by itself (`INST`, `OBJ`).
    Dangerous,
    /// Anything else outside what `torch.load(weights_only=True)` accepts, or a construct this
    /// converter cannot represent (a dtype without a safetensors equivalent, a TorchScript archive).
    Unsupported,
    /// The file is malformed: truncated, inconsistent, out of bounds, or over a resource cap.
    Corrupt,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dangerous => "dangerous",
            Self::Unsupported => "unsupported",
            Self::Corrupt => "corrupt",
        })
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// A global (`module.name`) outside the allowlist.
    Global,
    /// An opcode outside torch's weights-only set, or an allowed opcode used on the wrong type.
    Opcode,
    /// The zip or legacy container.
    Container,
    /// A storage record or a tensor's view of it.
    Storage,
    /// A resource cap (pickle size, nesting, integer size, compressed records).
    Resource,
    /// A tensor element type without a safetensors equivalent.
    Dtype,
}

/// Where in the file a pickle or record sits: a zip entry name, or the index (0-4) of a pickle
/// in the legacy stream format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Member {
    /// A zip entry, e.g. `archive/data.pkl`.
    Entry(String),
    /// A pickle of the legacy format: 0 magic, 1 protocol, 2 sys_info, 3 object, 4 storage keys.
    Legacy(u8),
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entry(name) => f.write_str(name),
            Self::Legacy(index) => {
                let what = ["magic", "protocol", "sys_info", "object", "storage keys"]
                    .get(usize::from(*index))
                    .copied()
                    .unwrap_or("?");
                write!(f, "pickle {index} ({what})")
            }
        }
    }
}

/// A global as written in the pickle and as Python would resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalName {
    /// `module.name` after the Python 2 name mapping, e.g. `builtins.eval`.
    pub qualified: String,
    /// The module after mapping.
    pub module: String,
    /// The name after mapping.
    pub name: String,
    /// `module.name` exactly as written, e.g. `__builtin__.eval`.
    pub raw_qualified: String,
}

/// The opcode that used a global's value: the call (`REDUCE`, `NEWOBJ`, `INST`) or `BINPERSID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumedBy {
    /// Opcode name.
    pub opcode: String,
    /// Its offset within the pickle.
    pub offset: u64,
}

/// One problem found in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub kind: FindingKind,
    /// One line saying what is wrong, without the location.
    pub message: String,
    /// The global involved, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalName>,
    /// The opcode at `offset`, if the finding is about an opcode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<String>,
    /// The zip entry or legacy pickle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Offset within the member (for pickles: of the opcode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Absolute offset in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<u64>,
    /// The opcode that called or used the global.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed_by: Option<ConsumedBy>,
    /// Dotted path of the dict key where the result lands, e.g. `model._hook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Finding {
    /// A finding with only severity, kind and message; the builder methods add the location.
    pub fn new(severity: Severity, kind: FindingKind, message: impl Into<String>) -> Self {
        Self {
            severity,
            kind,
            message: message.into(),
            global: None,
            opcode: None,
            member: None,
            offset: None,
            file_offset: None,
            consumed_by: None,
            path: None,
        }
    }

    /// A corrupt-file finding.
    pub fn corrupt(kind: FindingKind, message: impl Into<String>) -> Self {
        Self::new(Severity::Corrupt, kind, message)
    }

    /// Sets the member.
    #[must_use]
    pub fn member(mut self, member: Member) -> Self {
        self.member = Some(member);
        self
    }

    /// Sets the offset within the member and, from the member's start in the file, the absolute one.
    #[must_use]
    pub fn at(mut self, offset: u64, member_start: u64) -> Self {
        self.offset = Some(offset);
        self.file_offset = Some(member_start.saturating_add(offset));
        self
    }

    /// Sets the absolute file offset only.
    #[must_use]
    pub fn at_file(mut self, file_offset: u64) -> Self {
        self.file_offset = Some(file_offset);
        self
    }

    /// Sets the dict path.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for Finding {
    /// ``member:offset: severity what ...``, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.member, self.offset, self.file_offset) {
            (Some(member), Some(offset), _) => write!(f, "{member}:{offset}: ")?,
            (Some(member), None, _) => write!(f, "{member}: ")?,
            (None, _, Some(file_offset)) => write!(f, "byte {file_offset}: ")?,
            (None, _, None) => {}
        }
        write!(f, "{} {}", self.severity, self.message)?;
        if let Some(consumed) = &self.consumed_by {
            let verb = match consumed.opcode.as_str() {
                "NEWOBJ" | "NEWOBJ_EX" | "OBJ" => "instantiated",
                "BINPERSID" => "used",
                _ => "called",
            };
            write!(f, " {verb} by {} at {}", consumed.opcode, consumed.offset)?;
        }
        if let Some(path) = &self.path {
            write!(f, " (key `{path}`)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_finding_reads_like_the_reference_line() {
        let mut finding = Finding::new(
            Severity::Dangerous,
            FindingKind::Global,
            "global `posix.system`",
        )
        .member(Member::Entry("archive/data.pkl".into()))
        .at(185, 64)
        .path("_hook");
        finding.consumed_by = Some(ConsumedBy {
            opcode: "REDUCE".into(),
            offset: 221,
        });
        assert_eq!(
            finding.to_string(),
            "archive/data.pkl:185: dangerous global `posix.system` called by REDUCE at 221 (key `_hook`)"
        );
        assert_eq!(finding.file_offset, Some(249));
    }

    #[test]
    fn legacy_members_are_named_by_role() {
        assert_eq!(Member::Legacy(2).to_string(), "pickle 2 (sys_info)");
        assert_eq!(
            serde_json::to_value(Member::Legacy(3)).expect("serializes"),
            serde_json::json!(3)
        );
    }
}
