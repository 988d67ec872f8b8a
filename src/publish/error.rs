//! The publish failures a user acts on differently (a token, a permission, a conflict, a rate
//! limit), each with its hint.

use crate::error::Problem;

/// Conditions a user acts on differently. Each becomes a [`Problem`] carrying its hint when it
/// turns into an error (`?`, `.into()`), so the error module finds the hint without knowing who
/// raised it.
#[derive(Debug)]
pub enum PublishError {
    /// No or an invalid token.
    AuthRequired {
        /// `the Hub` or `GitHub`.
        service: &'static str,
        /// What to do.
        hint: String,
    },
    /// The token lacks a permission.
    Forbidden {
        /// `the Hub` or `GitHub`.
        service: &'static str,
        /// What was refused.
        what: String,
        /// What to do.
        hint: String,
    },
    /// Something changed under us, or exists with other content.
    Conflict {
        /// What.
        what: String,
    },
    /// Too many requests.
    RateLimited {
        /// `the Hub` or `GitHub`.
        service: &'static str,
        /// Seconds the server asked for.
        retry_after: Option<u64>,
    },
    /// The Hub did not offer Xet for large files.
    NoXet {
        /// What it offered.
        transfer: String,
    },
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AuthRequired { service, .. } => {
                write!(f, "{service} refused the token: authentication required")
            }
            Self::Forbidden { service, what, .. } => write!(
                f,
                "{service} refused access to {what}: the token lacks a permission"
            ),
            Self::Conflict { what } => write!(f, "conflict: {what}"),
            Self::RateLimited {
                service,
                retry_after,
            } => {
                write!(f, "{service} is rate limiting this token")?;
                match retry_after {
                    Some(s) => write!(f, " (retry after {s} s)"),
                    None => Ok(()),
                }
            }
            Self::NoXet { transfer } => write!(
                f,
                "the Hub answered the LFS batch with transfer `{transfer}`, not `xet`; hf-hub \
                 would put every binary inline"
            ),
        }
    }
}

impl PublishError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::AuthRequired { hint, .. } | Self::Forbidden { hint, .. } => Some(hint.clone()),
            Self::Conflict { .. } => Some(
                "re-run `publish` once the other run finished: it completes or reports the release"
                    .to_owned(),
            ),
            Self::RateLimited { .. } => Some("wait, then re-run `publish`".to_owned()),
            Self::NoXet { .. } => None,
        }
    }
}

impl From<PublishError> for anyhow::Error {
    fn from(error: PublishError) -> Self {
        let problem = Problem::new(error.to_string());
        anyhow::Error::new(match error.hint() {
            Some(hint) => problem.hint(hint),
            None => problem,
        })
    }
}
