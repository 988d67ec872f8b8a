//! The only printer: status lines and progress to stderr, data to stdout, errors with hints.
//!
//! Stages never print; they call a [`Reporter`]. Status lines use cargo-style verbs
//! (`Converting`, `Checking`, `Rendering`); progress bars appear only when stderr is a terminal,
//! otherwise each step is one plain line, which is what CI logs want.
//!
//! Every line leaves through [`emit`] (or the JSON and workflow-command writers next to it),
//! which replaces every registered token by `***` ([`crate::secrets::scrub`]): an error chain
//! that quotes a server's echo of our `Authorization` header is printed without it, whoever
//! built the message. Only [`Reporter::mask`] names a token, to the runner.
//!
//! Layer 2, the printer: imports only the ground floor, and knows nothing of what it prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::ConfigError;

pub mod markdown;

/// Makes untrusted text (names from a checkpoint, ONNX strings, file names, config values) safe
/// to print inside one line of a terminal or a CI log: control characters (newlines, NUL, escape
/// codes, C1 controls) and the Unicode bidirectional and invisible format characters become
/// visible escapes such as `\n`, `\x1b` or `\u{202e}`. Every printer method applies it, once,
/// to every piece of text it is given; callers never escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_keeping(text, &[])
}

/// [`escape`], but leaving the listed control characters (`\t`, `\n` for multi-line data) as
/// they are.
fn escape_keeping<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| needs_escape(c) && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) || keep.contains(&c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `text` cut at a character boundary after at most `max` bytes, with a note of how much more
/// there was.
fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{} ... ({} more bytes)",
        &text[..end],
        text.len() - end
    ))
}

/// Control characters, and the format characters that reorder or hide text (Trojan Source:
/// bidi embeddings, overrides and isolates; zero-width characters; the BOM): what [`escape`]
/// makes visible, and what other quoting (a Python literal, a shell word) must escape too.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// A line that would start a GitHub Actions workflow command (`::cmd::`, or the older `##[cmd]`)
/// gets a leading backslash: the runner parses commands only at the start of a line, and only
/// the tool's own annotations ([`Reporter::workflow_command`]) may be commands.
fn guard_line(line: &str) -> Cow<'_, str> {
    let start = line.trim_start();
    if start.starts_with("::") || start.starts_with("##[") {
        Cow::Owned(format!("\\{line}"))
    } else {
        Cow::Borrowed(line)
    }
}

/// JSON output: serde_json escapes C0 controls inside strings but passes DEL, C1 controls and
/// bidi characters through; those become `\u00XX` JSON escapes, which keeps the document valid.
fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| needs_escape(c) && c != '\n') {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if needs_escape(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Toolkit `escapeData`: the message of a workflow command.
fn escape_command_data(text: &str) -> String {
    escape(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Toolkit `escapeProperty`: a property value of a workflow command.
fn escape_command_property(text: &str) -> String {
    escape_command_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// Longest error line printed: a server's message can be a whole page (or a gigabyte).
const MAX_ERROR_LINE: usize = 4096;

/// Writes one line, without any registered token. A closed or failing stdout/stderr (`| head`)
/// is ignored: printing never panics and never stops the work.
fn emit(stream: Stream, line: &str) {
    let line = crate::secrets::scrub(line);
    let line = guard_line(&line);
    let _ = match stream {
        Stream::Out => writeln!(std::io::stdout().lock(), "{line}"),
        Stream::Err => writeln!(std::io::stderr().lock(), "{line}"),
    };
}

/// How and whether to decorate output.
#[derive(Debug, Clone)]
pub struct Reporter {
    color: bool,
    quiet: bool,
    interactive: bool,
}

impl Reporter {
    /// A reporter; `color` already accounts for `NO_COLOR` and `--color`.
    pub fn new(color: bool, quiet: bool) -> Self {
        Self {
            color,
            quiet,
            interactive: std::io::stderr().is_terminal(),
        }
    }

    /// A reporter that prints nothing but errors; for tests and library use.
    pub fn silent() -> Self {
        Self {
            color: false,
            quiet: true,
            interactive: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn verb(&self, code: &str, verb: &str, message: &str) {
        let verb = self.paint(code, &format!("{verb:>12}"));
        emit(Stream::Err, &format!("{verb} {}", escape(message)));
    }

    /// `   Converting weights/model.pt`, right-aligned verb like cargo.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        if !self.quiet {
            self.verb("1;32", verb, message.as_ref());
        }
    }

    /// `     Skipped ...` in yellow, for stages not run.
    pub fn skipped(&self, message: impl AsRef<str>) {
        if !self.quiet {
            self.verb("1;33", "Skipped", message.as_ref());
        }
    }

    /// One check's verdict: `      Passed name: detail` in green, or `      Failed name: detail`
    /// in red. A failure is printed even when quiet: it is the reason for exit code 1.
    pub fn check(&self, passed: bool, name: &str, detail: &str) {
        if passed {
            self.status("Passed", format!("{name}: {detail}"));
        } else {
            self.verb("1;31", "Failed", &format!("{name}: {detail}"));
        }
    }

    /// `warning: ...`, printed even when quiet.
    pub fn warn(&self, message: impl AsRef<str>) {
        emit(
            Stream::Err,
            &format!(
                "{} {}",
                self.paint("1;33", "warning:"),
                escape(message.as_ref())
            ),
        );
    }

    /// A refused release: one `error: refused: ...` line naming the count, then every reason;
    /// printed even when quiet. Refusal is exit code 1, not an error, but it is what the user
    /// must act on, so it prints at error level.
    pub fn refusal(&self, what: &str, reasons: &[String]) {
        emit(
            Stream::Err,
            &format!("{} {}", self.paint("1;31", "error: refused:"), escape(what)),
        );
        for reason in reasons {
            emit(Stream::Err, &format!("  - {}", escape(reason)));
        }
    }

    /// The error chain once, then the hint. A configuration error prints every located problem
    /// on its own line.
    pub fn error(&self, error: &anyhow::Error) {
        let label = self.paint("1;31", "error:");
        for (i, cause) in error.chain().enumerate() {
            let prefix = if i == 0 {
                label.clone()
            } else {
                format!("  {}", self.paint("1;31", "caused by:"))
            };
            if let Some(config) = cause.downcast_ref::<ConfigError>() {
                Self::config_error(&prefix, config);
            } else {
                let cause = crate::secrets::scrub(&cause.to_string()).into_owned();
                emit(
                    Stream::Err,
                    &format!("{prefix} {}", escape(&cut(&cause, MAX_ERROR_LINE))),
                );
            }
        }
        if let Some(hint) = crate::error::hint_of(error) {
            emit(Stream::Err, "");
            emit(
                Stream::Err,
                &format!("{} {}", self.paint("1;36", "hint:"), escape(&hint)),
            );
        }
    }

    fn config_error(prefix: &str, config: &ConfigError) {
        let count = config.problems.len();
        let file = escape(&config.file);
        emit(
            Stream::Err,
            &format!(
                "{prefix} `{file}` has {count} problem{}",
                if count == 1 { "" } else { "s" }
            ),
        );
        for problem in &config.problems {
            emit(
                Stream::Err,
                &format!(
                    "{file}:{}:{}: {}",
                    problem.line,
                    problem.column,
                    escape(&problem.message)
                ),
            );
            if let Some(hint) = &problem.hint {
                emit(Stream::Err, &format!("    hint: {}", escape(hint)));
            }
        }
    }

    /// A refused input: `Refused SUBJECT`, one indented line per detail, that nothing was
    /// written, and the hint; printed even when quiet.
    pub fn refused(&self, subject: &str, details: &[String], hint: Option<&str>) {
        self.verb("1;31", "Refused", subject);
        for detail in details {
            emit(Stream::Err, &format!("  {}", escape(detail)));
        }
        emit(Stream::Err, "");
        emit(Stream::Err, "nothing was written");
        if let Some(hint) = hint {
            emit(
                Stream::Err,
                &format!("{} {}", self.paint("1;36", "hint:"), escape(hint)),
            );
        }
    }

    /// One line of a command's result on stdout, escaped whole (tabs too).
    pub fn data_line(&self, line: impl AsRef<str>) {
        emit(Stream::Out, &escape(line.as_ref()));
    }

    /// An indented informational line on stderr (tables, results), unless quiet.
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.quiet {
            emit(Stream::Err, &escape(text.as_ref()));
        }
    }

    /// Plain data on stdout, possibly several lines (a rendered model card): each line is
    /// escaped on its own, tabs kept.
    pub fn data(&self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            emit(Stream::Out, &escape_keeping(line, &['\t']));
        }
    }

    /// Pretty JSON on stdout.
    pub fn json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        let text = crate::secrets::scrub(&text);
        let _ = writeln!(std::io::stdout().lock(), "{}", escape_json(&text));
        Ok(())
    }

    /// `::add-mask::` for a token, so the runner hides it in every later log line, even when it
    /// did not come from `secrets.*`.
    pub fn mask(&self, token: &crate::secrets::Token) {
        let value = token.expose();
        if !value.is_empty() && !value.contains(['\n', '\r']) {
            let _ = writeln!(std::io::stdout().lock(), "::add-mask::{value}");
        }
    }

    /// A GitHub Actions workflow command on stdout, e.g. `::error file=release.toml,line=3,col=1::msg`.
    /// Property values and the message are escaped as the Actions toolkit does (`%0A`, `%3A`, ...)
    /// after [`escape`], so untrusted text can neither end the command nor start another.
    pub fn workflow_command(&self, command: &str, properties: &[(&str, String)], message: &str) {
        let props: Vec<String> = properties
            .iter()
            .map(|(k, v)| format!("{k}={}", escape_command_property(&crate::secrets::scrub(v))))
            .collect();
        let sep = if props.is_empty() { "" } else { " " };
        let line = format!(
            "::{command}{sep}{}::{}",
            props.join(","),
            escape_command_data(&crate::secrets::scrub(message))
        );
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// A progress bar of `len` steps when stderr is a terminal; hidden otherwise.
    pub fn progress(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        if self.quiet || !self.interactive {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(message.into());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("the progress template is valid")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_control_and_bidi_characters_visible() {
        assert_eq!(escape("plain `text` ok"), "plain `text` ok");
        assert_eq!(escape("a\nb\r\0"), "a\\nb\\r\\0");
        assert_eq!(escape("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
        assert_eq!(escape("x\u{7f}"), "x\\x7f");
        assert_eq!(escape("d\u{e9}j\u{e0} vu"), "d\u{e9}j\u{e0} vu");
    }

    #[test]
    fn lines_that_would_be_workflow_commands_are_defused() {
        assert_eq!(guard_line("::add-mask::secret"), "\\::add-mask::secret");
        assert_eq!(guard_line("  ::error::x"), "\\  ::error::x");
        assert_eq!(guard_line("##[error]x"), "\\##[error]x");
        assert_eq!(guard_line("file: clean ::x"), "file: clean ::x");
    }

    #[test]
    fn json_stays_valid_and_loses_raw_c1_and_bidi_characters() {
        let value = serde_json::json!({ "name": "a\u{9b}b\u{202e}\u{1b}" });
        let text = serde_json::to_string_pretty(&value).expect("json");
        let escaped = escape_json(&text);
        assert!(!escaped.contains('\u{9b}') && !escaped.contains('\u{202e}'));
        let back: serde_json::Value = serde_json::from_str(&escaped).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn long_error_lines_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("ééééé", 5), "éé ... (6 more bytes)");
    }

    #[test]
    fn workflow_command_values_cannot_break_out() {
        assert_eq!(
            escape_command_data("50% done\nnext\r"),
            "50%25 done\\nnext\\r"
        );
        assert_eq!(escape_command_property("a:b,c"), "a%3Ab%2Cc");
    }
}
