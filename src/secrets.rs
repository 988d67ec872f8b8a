//! Tokens: the one way secrets enter the tool.
//!
//! `HF_TOKEN` and `GITHUB_TOKEN` (and the action's token inputs, which action.yml maps to the
//! same variables) are read once by `main.rs` into a [`Token`]. A token's `Debug` shows only that
//! it is set; it has no `Display`, is never serialized, and its value is exposed only to build
//! an `Authorization` header inside `publish`. Error messages from the clients are scrubbed of
//! every known token value before they reach the printer ([`Tokens::scrub`]).

use secrecy::{ExposeSecret as _, SecretString};

/// An access token for the Hub or GitHub.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// A token from an environment value; unset or blank means no token.
    pub fn from_env_value(value: Option<String>) -> Option<Self> {
        let value = value?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(Self(SecretString::from(trimmed.to_owned())))
    }

    /// The value, for an `Authorization` header and nothing else.
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

impl Tokens {
    /// Replaces every token value in `text` by `***` (server messages sometimes echo a request).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for token in [&self.hub, &self.github].into_iter().flatten() {
            let value = token.expose();
            if !value.is_empty() {
                out = out.replace(value, "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let token = Token::from_env_value(Some("hf_s3cr3t".to_owned())).expect("set");
        let tokens = Tokens {
            hub: Some(token.clone()),
            github: None,
        };
        let shown = format!("{token:?} {tokens:?} {tokens:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(token.expose(), "hf_s3cr3t");
    }

    #[test]
    fn blank_values_are_no_token() {
        assert!(Token::from_env_value(None).is_none());
        assert!(Token::from_env_value(Some("  ".to_owned())).is_none());
    }

    #[test]
    fn scrub_removes_every_token() {
        let tokens = Tokens {
            hub: Token::from_env_value(Some("hf_abc".to_owned())),
            github: Token::from_env_value(Some("ghp_xyz".to_owned())),
        };
        assert_eq!(
            tokens.scrub("sent hf_abc and ghp_xyz twice: hf_abc"),
            "sent *** and *** twice: ***"
        );
    }
}
