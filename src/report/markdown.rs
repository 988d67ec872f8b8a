//! Untrusted text in Markdown: the step summary, the plan, the release notes, the model card.
//!
//! Model names, metric names, file names, tags, commit messages and error messages come from a
//! pull request's `release.toml`, a bundle built elsewhere or a server's answer. Written into
//! Markdown as they are, they become live: `<img src=…>`, `![x](https://elsewhere/…)`, a link,
//! an autolinked address or a mention, a backtick that ends our code span early, a `|` that
//! splits a table row. Everything untrusted reaches Markdown through [`text`] (a value as
//! text), [`code`] (a value as a code span) or [`prose`] (a message of this tool, in which a
//! value quoted in backticks stays a code span); all three share one escape, keep the value on
//! one line (control characters made visible as [`crate::report::escape`] does) and leave
//! nothing a renderer acts on. Links are written only by [`link`], to an address this tool
//! built.

use std::fmt::Write as _;

/// One value as an inline code span, shown verbatim: the delimiter is a run of backticks longer
/// than any inside the value (so none can end it), a value that starts or ends with a backtick
/// is padded with a space (which CommonMark strips), and `|` is escaped so a table row stays
/// whole (GFM reads `\|` as a pipe inside a code span in a table). Inside a code span nothing is
/// HTML, a link, an image or an autolink.
pub fn code(value: &str) -> String {
    if value.is_empty() {
        return "` `".to_owned();
    }
    let value = crate::report::escape(value).replace('|', "\\|");
    let longest = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = value.starts_with('`')
        || value.ends_with('`')
        || (value.starts_with(' ') && value.ends_with(' ') && value.trim() != "");
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{value}{space}{fence}")
}

/// One value (a model or class name, a commit message) as Markdown text that renders as exactly
/// its characters and nothing else: HTML and emphasis characters, brackets, pipes and backticks
/// are escaped, a word a renderer would link (`https://…`, `www.…`, `name@host`, `mailto:…`)
/// becomes a code span, and a leading `#`, `-`, `+` or `1.` cannot start a heading or a list
/// where the text starts a line.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    let mut plain = value.to_owned();
    flush_plain(&mut out, &mut plain);
    out
}

/// A message of this tool, which quotes values in backticks (``gate `fid` failed``), as
/// Markdown: each backtick-quoted part becomes a [`code`] span, the rest is escaped as by
/// [`text`]. A lone backtick is shown as one.
pub fn prose(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    let mut rest = message;
    let mut plain = String::new();
    while let Some(open) = rest.find('`') {
        let run = backtick_run(&rest[open..]);
        let after = &rest[open + run..];
        if let Some(close) = closing_run(after, run) {
            plain.push_str(&rest[..open]);
            flush_plain(&mut out, &mut plain);
            out.push_str(&code(&after[..close]));
            rest = &after[close + run..];
        } else {
            plain.push_str(&rest[..open + run]);
            rest = after;
        }
    }
    plain.push_str(rest);
    flush_plain(&mut out, &mut plain);
    out
}

/// A link to an address this tool built (from a configured endpoint and validated names): the
/// label as a code span, the address percent-encoded wherever it could end the link or change
/// its meaning. An address that is not `https://` or `http://` is shown, not linked.
pub fn link(label: &str, url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return format!("{} ({})", code(label), code(url));
    }
    let mut destination = String::with_capacity(url.len());
    for byte in url.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:?=#%@+,".contains(&byte) {
            destination.push(char::from(byte));
        } else {
            let _ = write!(destination, "%{byte:02X}");
        }
    }
    format!("[{}]({destination})", code(label))
}

/// The length of the run of backticks `text` starts with.
fn backtick_run(text: &str) -> usize {
    text.bytes().take_while(|&b| b == b'`').count()
}

/// Where in `text` a run of exactly `run` backticks starts, as CommonMark closes a code span.
fn closing_run(text: &str, run: usize) -> Option<usize> {
    let mut at = 0;
    while let Some(found) = text[at..].find('`') {
        let start = at + found;
        let len = backtick_run(&text[start..]);
        if len == run {
            return Some(start);
        }
        at = start + len;
    }
    None
}

/// Appends `plain` (text outside code spans) to `out`, escaped, and empties it.
fn flush_plain(out: &mut String, plain: &mut String) {
    let at_start = out.is_empty();
    let mut first = true;
    for piece in plain.split_inclusive(' ') {
        let word = piece.trim_end_matches(' ');
        let spaces = &piece[word.len()..];
        if word.is_empty() {
            // Spaces that start a line would indent it into a code block.
            if at_start && first {
                out.push_str(&"&#32;".repeat(spaces.len()));
            } else {
                out.push_str(spaces);
            }
            continue;
        }
        if links_itself(word) {
            out.push_str(&code(word));
        } else {
            escape_word(out, word, at_start && first);
        }
        out.push_str(spaces);
        first = false;
    }
    plain.clear();
}

/// Whether a GitHub-flavoured (or a linkifying) renderer would turn `word` into a link or a
/// mention: a URL scheme (`https://`, `mailto:`, `javascript:`), `www.`, or an `@`.
fn links_itself(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if lower.contains("www.") || word.contains('@') || word.contains("://") {
        return true;
    }
    // `scheme:rest`: letters, then a colon with something after it.
    word.char_indices().any(|(i, c)| {
        c == ':'
            && i > 0
            && word[..i]
                .chars()
                .last()
                .is_some_and(|p| p.is_ascii_alphabetic())
            && word[i + 1..]
                .chars()
                .next()
                .is_some_and(|n| !n.is_whitespace())
    })
}

/// One word outside code spans: HTML and Markdown punctuation escaped; at the start of the
/// text, also what would start a block (a heading, a list item).
fn escape_word(out: &mut String, word: &str, starts_line: bool) {
    let chars: Vec<char> = word.chars().collect();
    let mut from = 0;
    if starts_line {
        let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && digits + 1 == chars.len() && matches!(chars[digits], '.' | ')') {
            out.push_str(&word[..digits]);
            out.push('\\');
            from = digits;
        } else if matches!(chars.first(), Some('#' | '-' | '+')) {
            out.push('\\');
        }
    }
    for (i, &c) in chars.iter().enumerate().skip(from) {
        // `_` between two letters or digits can neither open nor close emphasis.
        let intraword = || {
            i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '_' if intraword() => out.push('_'),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // Control and bidi characters become `\n`, `\u{202e}`: a backslash before a letter
            // is shown as it is.
            c => out.push_str(&crate::report::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
}

/// What the hostile-text tests feed every field, and how they judge the Markdown that results.
#[cfg(test)]
pub(crate) mod hostile {
    /// One value that tries everything at once: HTML, an image and a link to another host,
    /// autolinks, a mention, backtick runs that would end a code span, a table pipe, emphasis,
    /// math, an entity, new lines that would start a heading and a list, a bidi override, and a
    /// multi-byte character across the 12th and 16th bytes (where digests are shortened).
    pub const VALUE: &str = "0123456789a猫bc猫`x``<img src=https://evil.example/i.png>![p](https://evil.example/p.png) \
        [l](https://evil.example) www.evil.example a@evil.example <https://evil.example> | *b* _i_ \
        ~s~ $m$ &lt; \\\n# h\n- i\r\n1. j\u{202e}`";

    /// Where the code span that starts at `chars[i]` (a backtick run) ends, if a run of the
    /// same length closes it on the line.
    fn code_span_end(chars: &[char], i: usize) -> Option<usize> {
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + run;
        while j < chars.len() {
            let len = chars[j..].iter().take_while(|&&c| c == '`').count();
            if len == run {
                return Some(j + len);
            }
            j += len.max(1);
        }
        None
    }

    /// Everything in `markdown` a renderer would act on, outside this tool's own links to
    /// `allowed` addresses: raw `<`, `![`, a `[`, an autolink, a mention, a backtick run that
    /// no run of the same length closes on its line.
    pub fn live_parts(markdown: &str, allowed: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        for (n, line) in markdown.lines().enumerate() {
            let chars: Vec<char> = line.chars().collect();
            let mut plain = String::new();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if c == '\\' && chars.get(i + 1).is_some_and(char::is_ascii_punctuation) {
                    plain.push(' ');
                    i += 2;
                    continue;
                }
                if c == '`' {
                    if let Some(end) = code_span_end(&chars, i) {
                        plain.push(' ');
                        i = end;
                    } else {
                        found.push(format!("line {}: unbalanced backticks: {line}", n + 1));
                        i += chars[i..].iter().take_while(|&&c| c == '`').count();
                    }
                    continue;
                }
                // Our own link: `[`, a code span, `](`, an allowed address, `)`.
                if c == '['
                    && chars.get(i + 1) == Some(&'`')
                    && let Some(label_end) = code_span_end(&chars, i + 1)
                {
                    let rest: String = chars[label_end..].iter().collect();
                    if let Some(destination) = rest.strip_prefix("](")
                        && allowed.iter().any(|a| destination.starts_with(a))
                        && let Some(close) = destination.find(')')
                    {
                        plain.push(' ');
                        i = label_end + 2 + destination[..=close].chars().count();
                        continue;
                    }
                }
                plain.push(c);
                i += 1;
            }
            let lower = plain.to_ascii_lowercase();
            for live in ["<", "![", "[", "://", "www.", "@", "mailto:"] {
                if lower.contains(live) {
                    found.push(format!("line {}: `{live}` outside code: {line}", n + 1));
                }
            }
        }
        found
    }

    #[track_caller]
    pub fn assert_inert(markdown: &str, allowed: &[&str]) {
        let live = live_parts(markdown, allowed);
        assert!(
            live.is_empty(),
            "{}\n--- markdown\n{markdown}",
            live.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_any_value_verbatim() {
        assert_eq!(code("model.onnx"), "`model.onnx`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("<img src=x>"), "`<img src=x>`");
        assert_eq!(code(""), "` `");
        assert_eq!(code(" a "), "`  a  `");
        assert_eq!(code("a\nb"), "`a\\nb`");
        assert_eq!(code("猫"), "`猫`");
    }

    #[test]
    fn prose_keeps_quoted_values_as_code_and_nothing_else_live() {
        assert_eq!(
            prose("gate `fid` max 50: 62.1 > 50"),
            "gate `fid` max 50: 62.1 &gt; 50"
        );
        assert_eq!(
            prose("<img src=x onerror=y> | a\nb"),
            "&lt;img src=x onerror=y&gt; \\| a\\nb"
        );
        assert_eq!(prose("![i](x.png)"), "!\\[i\\](x.png)");
        assert_eq!(
            prose("British_Shorthair _x_ a_ 1_2"),
            "British_Shorthair \\_x\\_ a\\_ 1_2"
        );
        assert_eq!(
            prose("see https://evil.example/a"),
            "see `https://evil.example/a`"
        );
        assert_eq!(prose("www.evil.example"), "`www.evil.example`");
        assert_eq!(prose("ping @someone"), "ping `@someone`");
        assert_eq!(prose("javascript:alert(1)"), "`javascript:alert(1)`");
        assert_eq!(prose("a lone ` backtick"), "a lone \\` backtick");
        assert_eq!(prose("``a ` b`` then `c`"), "``a ` b`` then `c`");
        assert_eq!(prose("# title"), "\\# title");
        assert_eq!(prose("- item"), "\\- item");
        assert_eq!(prose("12. item"), "12\\. item");
        assert_eq!(prose("1.2.0"), "1.2.0");
        assert_eq!(prose("  indented"), "&#32;&#32;indented");
        assert_eq!(prose("a-b c#d 1. e"), "a-b c#d 1. e");
        assert_eq!(
            prose("*x* _y_ ~z~ $m$ &amp;"),
            "\\*x\\* \\_y\\_ \\~z\\~ \\$m\\$ &amp;amp;"
        );
        assert_eq!(prose("猫 and 🐈 tabby"), "猫 and 🐈 tabby");
        // A value is all text: its backticks are shown, not read as code.
        assert_eq!(text("a `b` c"), "a \\`b\\` c");
        assert_eq!(
            text("<b>x</b> https://e.example"),
            "&lt;b&gt;x&lt;/b&gt; `https://e.example`"
        );
    }

    #[test]
    fn the_hostile_value_stays_inert_as_text_prose_and_code() {
        for md in [
            text(hostile::VALUE),
            prose(hostile::VALUE),
            code(hostile::VALUE),
            format!("| {} | {} |", prose(hostile::VALUE), code(hostile::VALUE)),
            link(hostile::VALUE, "https://huggingface.co/o/m"),
        ] {
            assert_eq!(md.lines().count(), 1, "{md}");
            hostile::assert_inert(&md, &["https://huggingface.co/"]);
        }
        let live = hostile::live_parts(
            "a `b <img> ![x](y) www.x.org [z](https://elsewhere/)",
            &["https://huggingface.co/"],
        );
        assert_eq!(live.len(), 6, "{live:?}");
    }

    #[test]
    fn links_go_only_where_we_point_them() {
        assert_eq!(
            link("v1.0", "https://github.com/o/r/releases/tag/v1.0"),
            "[`v1.0`](https://github.com/o/r/releases/tag/v1.0)"
        );
        assert_eq!(
            link("x", "https://h/a b)(<\"'>*_[]`\\&"),
            "[`x`](https://h/a%20b%29%28%3C%22%27%3E%2A_%5B%5D%60%5C%26)"
        );
        assert_eq!(
            link("x", "javascript:alert(1)"),
            "`x` (`javascript:alert(1)`)"
        );
    }
}
