//! `SHA256SUMS`: one line per released file, in the format of `sha256sum` / `shasum -a 256`
//! (`<64 hex digits>  <path>`), which `actions/attest` reads as `subject-checksums` and
//! `sha256sum -c` checks.
//!
//! `check` writes it into every bundle (listing every other bundle file, sorted by path, so the
//! same files give the same bytes); it is committed to the Hub with the release and always
//! attached to the GitHub release, and `verify` compares both copies with each other and with
//! the files. A path holding a backslash or a line break is written as coreutils does: the line
//! starts with `\` and the path has `\\`, `\n` and `\r` escapes.
//!
//! Layer 5, beside the bundle: imports the configuration (bundle paths) and the ground floor.

use std::collections::BTreeMap;

use crate::error::Problem;

/// The file's name in the bundle, on the Hub and as a GitHub asset.
pub use crate::names::SUMS_FILE;

/// Largest `SHA256SUMS` read (a bundle of tens of thousands of files is far below this).
pub const MAX_SUMS_BYTES: u64 = 4 * 1024 * 1024;

/// Most lines read.
const MAX_SUMS_LINES: usize = 100_000;

/// The text of `SHA256SUMS` for these files, `(path, sha256)` each (any `SHA256SUMS` among them
/// is left out), sorted by path.
pub fn render<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut listed: Vec<(&str, &str)> = files
        .into_iter()
        .filter(|(path, _)| *path != SUMS_FILE)
        .collect();
    listed.sort_unstable();
    let mut text = String::new();
    for (path, sha256) in listed {
        if path.contains(['\\', '\n', '\r']) {
            let escaped = path
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            text.push('\\');
            text.push_str(sha256);
            text.push_str("  ");
            text.push_str(&escaped);
            text.push('\n');
        } else {
            text.push_str(sha256);
            text.push_str("  ");
            text.push_str(path);
            text.push('\n');
        }
    }
    text
}

/// Parses `SHA256SUMS` into path -> lowercase hex sha256. `what` names the copy in errors (`the
/// Hub's SHA256SUMS at v1.2.0`). A path listed twice, a malformed line or one that leaves the
/// bundle is an error naming the line.
pub fn parse(text: &str, what: &str) -> Result<BTreeMap<String, String>, Problem> {
    let mut sums = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if number > MAX_SUMS_LINES {
            return Err(Problem::new(format!(
                "{what} has more than {MAX_SUMS_LINES} lines"
            )));
        }
        if line.is_empty() {
            continue;
        }
        let bad = || {
            Problem::new(format!("{what}, line {number}, is not `<sha256>  <path>`"))
                .hint("SHA256SUMS lists one file per line as `sha256sum` writes it")
        };
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (digest, path) = line.split_at_checked(64).ok_or_else(bad)?;
        // `  ` (text mode) or ` *` (binary mode): the same digest either way.
        let path = path
            .strip_prefix("  ")
            .or_else(|| path.strip_prefix(" *"))
            .ok_or_else(bad)?;
        if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let path = if escaped {
            unescape(path).ok_or_else(bad)?
        } else {
            path.to_owned()
        };
        if crate::config::paths::check_bundle_path(&path).is_err() {
            return Err(Problem::new(format!(
                "{what}, line {number}, names a path outside the release"
            )));
        }
        if sums
            .insert(path.clone(), digest.to_ascii_lowercase())
            .is_some()
        {
            return Err(Problem::new(format!(
                "{what}, line {number}, lists a file a second time"
            )));
        }
    }
    Ok(sums)
}

fn unescape(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::BundleFile;

    fn render(files: &[BundleFile]) -> String {
        super::render(files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())))
    }

    fn file(path: &str, digit: char) -> BundleFile {
        BundleFile {
            path: path.to_owned(),
            bytes: 1,
            sha256: digit.to_string().repeat(64),
        }
    }

    #[test]
    fn sorted_without_itself_and_read_back() {
        let files = [
            file("onnx/b.onnx", 'b'),
            file(SUMS_FILE, 'f'),
            file("README.md", 'a'),
            file("odd\\name\n.txt", 'c'),
        ];
        let text = render(&files);
        assert_eq!(
            text,
            format!(
                "{a}  README.md\n\\{c}  odd\\\\name\\n.txt\n{b}  onnx/b.onnx\n",
                a = "a".repeat(64),
                b = "b".repeat(64),
                c = "c".repeat(64)
            )
        );
        let parsed = parse(&text, "SHA256SUMS").expect("parses");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed["odd\\name\n.txt"], "c".repeat(64));
        assert_eq!(parsed["onnx/b.onnx"], "b".repeat(64));
    }

    #[test]
    fn bad_lines_are_named() {
        let a = "a".repeat(64);
        for (text, expect) in [
            ("nothex  x\n".to_owned(), "line 1, is not"),
            (
                format!("{a}  x\n{a}  x\n"),
                "line 2, lists a file a second time",
            ),
            (format!("{a}  ../x\n"), "line 1, names a path outside"),
            (format!("{a} x\n"), "line 1, is not"),
        ] {
            let err = parse(&text, "SHA256SUMS").expect_err(&text);
            assert!(err.to_string().contains(expect), "{err}");
        }
        assert_eq!(
            parse(&format!("{}  x\n", "A".repeat(64)), "s").expect("upper")["x"],
            a
        );
    }
}
