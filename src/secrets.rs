//! Tokens: the one way secrets enter the tool, and the one set of values no output may carry.
//!
//! `HF_TOKEN` and `GITHUB_TOKEN` (and the action's token inputs) are read once by `main.rs` and
//! `action/` into a [`Token`]: trimmed of surrounding whitespace (a secret file's trailing
//! newline), refused when anything but printable ASCII is left inside (a control character would
//! make octocrab panic and hf-hub silently send no token at all). A token's `Debug` shows only that
//! it is set; it has no `Display`, is never serialized, and its value is exposed only to build an
//! `Authorization` header inside `publish`.
//!
//! Servers echo requests: an error body, an `X-Error-Message`, a proxy's page may quote the
//! `Authorization` header. Rather than trusting every call site to clean what it passes on, the
//! tokens are registered here once ([`hide`], where `main.rs` and `action/` read them) and the
//! two places where text leaves the process, the printer (`report.rs`) and the file writers
//! (`output.rs`, the action's runner files), replace every registered value by `***`
//! ([`scrub`], [`scrub_bytes`]). The one exception is the printer's `::add-mask::`, which must
//! name the value to the runner.
//!
//! A value in `release.toml` that looks like a token ([`find_token_like`]) is refused by config
//! validation before it can reach the model card or `config.json`.
//!
//! Layer 1, the ground floor: imports only `error`.

use std::borrow::Cow;
use std::sync::RwLock;

use secrecy::{ExposeSecret as _, SecretString};

use crate::error::Problem;

/// What replaces a token in anything printed or written.
pub const REDACTED: &str = "***";

/// Every token this process holds, registered by [`hide`].
static HIDDEN: RwLock<Vec<SecretString>> = RwLock::new(Vec::new());

/// An access token for the Hub or GitHub.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// A token from an environment value or action input named `name` (for messages, e.g.
    /// `` `HF_TOKEN` ``): unset or blank means no token; surrounding whitespace is trimmed; a
    /// value with anything but printable ASCII inside is refused, without showing it.
    pub fn parse(value: Option<&str>, name: &str) -> Result<Option<Self>, Problem> {
        let Some(value) = value else {
            return Ok(None);
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = trimmed.chars().find(|c| !c.is_ascii_graphic()) {
            let what = if bad.is_control() {
                "a line break or another control character"
            } else if bad.is_whitespace() {
                "whitespace"
            } else {
                "a non-ASCII character"
            };
            return Err(Problem::new(format!(
                "{name} contains {what} inside the token; it is not used"
            ))
            .hint(
                "a token is one line of printable ASCII: copy it again from the Hub's or \
                 GitHub's settings into the secret, without quotes or line breaks",
            ));
        }
        Ok(Some(Self(SecretString::from(trimmed.to_owned()))))
    }

    /// The value, for an `Authorization` header and the runner's `::add-mask::`, nothing else.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The tokens a run has.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// `HF_TOKEN`.
    pub hub: Option<Token>,
    /// `GITHUB_TOKEN`.
    pub github: Option<Token>,
}

/// Registers a token: from now on [`scrub`] replaces it wherever it appears.
pub fn hide(token: &Token) {
    let mut hidden = HIDDEN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !hidden.iter().any(|h| h.expose_secret() == token.expose()) {
        hidden.push(token.0.clone());
        // Longest first, so a token that contains another is replaced whole.
        hidden.sort_by_key(|h| std::cmp::Reverse(h.expose_secret().len()));
    }
}

/// `text` with every registered token replaced by `***`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let hidden = HIDDEN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for token in hidden.iter() {
        let value = token.expose_secret();
        if !value.is_empty() && out.contains(value) {
            out = Cow::Owned(out.replace(value, REDACTED));
        }
    }
    out
}

/// [`scrub`] for bytes that may not be UTF-8 (a file about to be written).
pub fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let hidden = HIDDEN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(bytes);
    for token in hidden.iter() {
        let value = token.expose_secret().as_bytes();
        if value.is_empty() || !out.windows(value.len()).any(|w| w == value) {
            continue;
        }
        let mut replaced = Vec::with_capacity(out.len());
        let mut rest: &[u8] = &out;
        while let Some(at) = rest.windows(value.len()).position(|w| w == value) {
            replaced.extend_from_slice(&rest[..at]);
            replaced.extend_from_slice(REDACTED.as_bytes());
            rest = &rest[at + value.len()..];
        }
        replaced.extend_from_slice(rest);
        out = Cow::Owned(replaced);
    }
    out
}

/// The kinds of token [`find_token_like`] recognises, by prefix: Hugging Face user tokens, and
/// GitHub's personal, OAuth, user-to-server, server-to-server (the Actions `GITHUB_TOKEN`),
/// refresh and fine-grained personal tokens. Each needs a run of at least `min` token characters
/// after its prefix, so words such as `hf_hub` or `ghp_docs` are not mistaken for one.
const TOKEN_SHAPES: &[(&str, &str, usize)] = &[
    ("hf_", "a Hugging Face token", 30),
    ("ghp_", "a GitHub token", 30),
    ("gho_", "a GitHub token", 30),
    ("ghu_", "a GitHub token", 30),
    ("ghs_", "a GitHub token", 30),
    ("ghr_", "a GitHub token", 30),
    ("github_pat_", "a GitHub token", 40),
];

/// Whether `text` contains something shaped like a Hugging Face or GitHub token; returns what it
/// looks like (`a Hugging Face token`) and its prefix, never the value.
pub fn find_token_like(text: &str) -> Option<(&'static str, &'static str)> {
    let bytes = text.as_bytes();
    for (prefix, kind, min) in TOKEN_SHAPES {
        for (at, _) in text.match_indices(prefix) {
            let starts_word = at == 0 || !is_token_byte(bytes[at - 1]);
            // Fine-grained GitHub tokens have `_` inside; the others are letters and digits.
            let run = bytes[at + prefix.len()..]
                .iter()
                .take_while(|&&b| {
                    b.is_ascii_alphanumeric() || (*prefix == "github_pat_" && b == b'_')
                })
                .count();
            if starts_word && run >= *min {
                return Some((kind, prefix));
            }
        }
    }
    None
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> Token {
        Token::parse(Some(value), "`T`")
            .expect("valid")
            .expect("set")
    }

    #[test]
    fn debug_never_shows_the_value() {
        let token = token("hf_s3cr3t");
        let tokens = Tokens {
            hub: Some(token.clone()),
            github: None,
        };
        let shown = format!("{token:?} {tokens:?} {tokens:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(token.expose(), "hf_s3cr3t");
    }

    #[test]
    fn blank_values_are_no_token_and_whitespace_around_is_trimmed() {
        assert!(Token::parse(None, "`T`").expect("ok").is_none());
        assert!(Token::parse(Some("  \n"), "`T`").expect("ok").is_none());
        assert_eq!(token(" hf_abc\n").expose(), "hf_abc");
        assert_eq!(token("\tghp_abc\r\n").expose(), "ghp_abc");
    }

    #[test]
    fn a_token_with_control_characters_inside_is_refused_without_showing_it() {
        for value in [
            "hf_ab\ncd",
            "hf_ab\0cd",
            "hf_ab\x1bcd",
            "hf_ab cd",
            "hf_abécd",
        ] {
            let err = Token::parse(Some(value), "`HF_TOKEN`").expect_err(value);
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("`HF_TOKEN` contains"), "{shown}");
            assert!(!shown.contains("hf_ab") && !shown.contains("cd"), "{shown}");
        }
    }

    #[test]
    fn scrub_removes_every_registered_token_in_text_and_bytes() {
        hide(&token("hf_scrubtest_abc"));
        hide(&token("ghp_scrubtest_xyz"));
        hide(&token("hf_scrubtest_abc"));
        assert_eq!(
            scrub("sent hf_scrubtest_abc and ghp_scrubtest_xyz twice: hf_scrubtest_abc"),
            "sent *** and *** twice: ***"
        );
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            scrub_bytes(b"\x00\xffhf_scrubtest_abc\xfe").as_ref(),
            b"\x00\xff***\xfe"
        );
    }

    #[test]
    fn token_shaped_values_are_found_and_words_are_not() {
        let hf = format!("hf_{}", "aB3".repeat(12));
        let ghp = format!("ghp_{}", "x9".repeat(18));
        let pat = format!("github_pat_{}_{}", "A1".repeat(11), "b2".repeat(29));
        assert_eq!(
            find_token_like(&format!("see {hf} here")),
            Some(("a Hugging Face token", "hf_"))
        );
        assert_eq!(find_token_like(&ghp), Some(("a GitHub token", "ghp_")));
        assert_eq!(
            find_token_like(&format!("`{pat}`")),
            Some(("a GitHub token", "github_pat_"))
        );
        for word in [
            "hf_hub_download",
            "uses hf_transfer",
            "ghp_short",
            "my_hf_abcdefghijklmnopqrstuvwxyz0123456789",
            "",
        ] {
            assert_eq!(find_token_like(word), None, "{word}");
        }
    }
}
