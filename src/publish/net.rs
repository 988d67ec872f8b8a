//! The limits of every network call, and the bounded HTTP reads built on them.
//!
//! A server that accepts a connection and never answers, one that sends a byte a second, one that
//! answers a small question with a gigabyte, or one whose `Link` sends us elsewhere must not hold
//! a release job until its 6-hour limit or exhaust its memory. So:
//! - every client (hf-hub's, octocrab's, the asset upload's, ours) gets a connect timeout, a
//!   silence (read) timeout and a deadline for the whole request ([`Timeouts`]; configurable in
//!   `env.rs`, so tests can shorten them); a request that runs out is a transient failure, retried
//!   within the backoff (`retry.rs`), then reported naming the host;
//! - every answer we read ourselves is read through a bound fit for what it carries ([`Limit`]),
//!   growing the buffer as bytes arrive, never preallocating from `Content-Length` or
//!   `X-Linked-Size`; an error answer is read only far enough to quote its message;
//! - a listing follows `Link: rel="next"` only on the origin it started from and only for
//!   [`MAX_PAGES`] pages ([`next_page`]), so no other host ever sees our token.
//!
//! What is left to hf-hub (commits, tags, branches, repo creation) is bounded by the timeouts
//! only: hf-hub reads those answers itself.

use reqwest::Url;
use reqwest::header::HeaderMap;

use super::retry::{self, Backoff, Failure};
use crate::error::Problem;

/// Most pages a listing follows (a Hub tree of 1000 entries a page, 50 with details; GitHub's
/// releases and assets 100 a page: far more than a model repository holds).
pub const MAX_PAGES: usize = 100;
/// Most bytes a listing reads over all its pages.
pub const LISTING_BYTES: u64 = 64 * 1024 * 1024;

/// How much of an answer is read, by what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A small JSON object: who a token is, a repo, a ref, a created tag or release, an upload
    /// method.
    Answer,
    /// A list of refs: every branch and tag of a Hub repo.
    Refs,
    /// One page of a listing: Hub files, GitHub releases (notes included) or assets.
    Page,
    /// A small file read back (`metrics.json`, `release.json`): at most this many bytes.
    File(u64),
}

impl Limit {
    /// The bound in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Answer => 1024 * 1024,
            Self::Refs => 8 * 1024 * 1024,
            Self::Page => 16 * 1024 * 1024,
            Self::File(bytes) => bytes,
        }
    }
}

/// What to do when a server does not answer in time.
pub const TIMEOUT_HINT: &str = "the service or a proxy in between may be down; if it is only \
    slow, raise `TINYDIT_RELEASE_READ_TIMEOUT` or `TINYDIT_RELEASE_REQUEST_TIMEOUT` (seconds)";

/// The part of an error answer read to quote its message.
const ERROR_BYTES: usize = 64 * 1024;
/// The longest server message quoted in an error.
const MESSAGE_CHARS: usize = 300;

pub use crate::env::Timeouts;

/// `host:port` of a URL, as errors name it.
pub fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => url.to_string(),
    }
}

/// A user agent for every request.
pub fn user_agent() -> String {
    format!("tinydit-release/{}", env!("CARGO_PKG_VERSION"))
}

/// The client for API calls: every limit of `timeouts`; redirects to another host lose the
/// `Authorization` header (reqwest's rule).
pub fn api_client(timeouts: &Timeouts) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        .timeout(timeouts.request)
        .build()
        .map_err(|err| anyhow::anyhow!("failed to set up the HTTP client: {err}"))
}

/// The client for uploads: a connect timeout only, because reqwest's silence timer runs from the
/// start of a request, while a large body is still being sent; each upload sets its own deadline
/// ([`Timeouts::upload`]).
pub fn upload_client(timeouts: &Timeouts) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(timeouts.connect)
        .build()
        .map_err(|err| anyhow::anyhow!("failed to set up the upload client: {err}"))
}

/// Why a bounded call failed. Every variant names the host.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Nothing, or not enough, came back in time.
    #[error("`{host}` did not answer {what} in time ({timeouts})")]
    TimedOut {
        /// The server.
        host: String,
        /// The call, e.g. `the refs listing`.
        what: String,
        /// The limits in force.
        timeouts: Timeouts,
    },
    /// The connection failed or broke.
    #[error("could not reach `{host}` for {what}: {detail}")]
    Unreachable {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// The transport's words.
        detail: String,
    },
    /// An answer larger than such an answer ever is.
    #[error("`{host}` answered {what} with more than {limit} bytes; not read further")]
    TooLarge {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// The bound.
        limit: u64,
    },
    /// A failed answer, after retries where it was worth one.
    #[error("`{host}` answered {what} with HTTP {status}{}", message_suffix(.message))]
    Status {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// The status code.
        status: u16,
        /// The server's message, shortened.
        message: String,
        /// `Retry-After` or a rate limit's reset, when worth a retry.
        retry: Failure,
    },
    /// An answer that is not what was asked for.
    #[error("`{host}` answered {what} with something that is not the expected JSON: {detail}")]
    Malformed {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A `Link: rel="next"` to another origin: our token is not sent there.
    #[error(
        "`{host}` sent the next page of {what} to another origin, `{to}`; not followed, so our \
         token is never sent there"
    )]
    OtherOrigin {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// Where the link points.
        to: String,
    },
    /// More pages than a listing ever needs.
    #[error(
        "`{host}` did not end {what} within {pages} pages and {} MiB; not followed further",
        LISTING_BYTES / (1024 * 1024)
    )]
    TooManyPages {
        /// The server.
        host: String,
        /// The call.
        what: String,
        /// The bound.
        pages: usize,
    },
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl NetError {
    /// How the retry policy treats it.
    pub fn classify(&self) -> Failure {
        match self {
            Self::TimedOut { .. } | Self::Unreachable { .. } => Failure::Transient(None),
            Self::Status { retry, .. } => *retry,
            Self::TooLarge { .. }
            | Self::Malformed { .. }
            | Self::OtherOrigin { .. }
            | Self::TooManyPages { .. } => Failure::Permanent,
        }
    }

    /// The status code of a failed answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What to do about it, where there is something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::TimedOut { .. } => Some(TIMEOUT_HINT),
            Self::OtherOrigin { .. } | Self::TooLarge { .. } | Self::TooManyPages { .. } => Some(
                "a proxy or mirror between us and the service may be misbehaving; check \
                 `HF_ENDPOINT` and `GITHUB_API_URL`",
            ),
            _ => None,
        }
    }

    /// As an error for the user, with its hint.
    pub fn into_error(self) -> anyhow::Error {
        match self.hint() {
            Some(hint) => Problem::new(self.to_string()).hint(hint).into(),
            None => anyhow::Error::new(self),
        }
    }

    /// A transport error of reqwest, for `url`.
    pub fn transport(err: &reqwest::Error, url: &Url, what: &str, timeouts: &Timeouts) -> Self {
        let host = host_of(url);
        if err.is_timeout() {
            return Self::TimedOut {
                host,
                what: what.to_owned(),
                timeouts: *timeouts,
            };
        }
        // reqwest's message ends with the URL; its source chain says why.
        let mut detail = String::new();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            detail = cause.to_string();
            source = cause.source();
        }
        if detail.is_empty() {
            detail = err.to_string();
        }
        Self::Unreachable {
            host,
            what: what.to_owned(),
            detail: excerpt(&detail, MESSAGE_CHARS),
        }
    }
}

/// A whole answer, read within its bound.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The final URL (after redirects).
    pub url: Url,
    /// The body: whole for a success, the start of it for an error.
    pub body: Vec<u8>,
}

impl Answer {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's message for an error answer: `X-Error-Message`, a JSON `error` or `message`,
    /// or the start of the body; shortened.
    pub fn message(&self) -> String {
        if let Some(header) = self
            .headers
            .get("x-error-message")
            .and_then(|v| v.to_str().ok())
        {
            return excerpt(header, MESSAGE_CHARS);
        }
        let text = String::from_utf8_lossy(&self.body);
        let json = serde_json::from_str::<serde_json::Value>(&text).ok();
        let found = json.as_ref().and_then(|v| {
            ["error", "message"]
                .iter()
                .find_map(|k| v[*k].as_str().map(str::to_owned))
        });
        excerpt(found.as_deref().unwrap_or(text.trim()), MESSAGE_CHARS)
    }

    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, NetError> {
        serde_json::from_slice(&self.body).map_err(|err| NetError::Malformed {
            host: host_of(&self.url),
            what: what.to_owned(),
            detail: excerpt(&err.to_string(), MESSAGE_CHARS),
        })
    }

    /// This answer as the error of a failed call (not retried further).
    pub fn failure(&self, what: &str) -> NetError {
        let message = self.message();
        NetError::Status {
            host: host_of(&self.url),
            what: what.to_owned(),
            status: self.status,
            retry: retry::classify_status(self.status, Some(&self.headers), &message),
            message,
        }
    }
}

/// Sends one request and reads its answer within `limit`: a success whole (refused past the
/// bound), an error's first [`ERROR_BYTES`] only. Transport failures and timeouts name the host.
pub async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
    limit: Limit,
    timeouts: &Timeouts,
) -> Result<Answer, NetError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|err| NetError::Malformed {
        host: err.url().map_or_else(String::new, host_of),
        what: what.to_owned(),
        detail: err.to_string(),
    })?;
    let url = request.url().clone();
    let mut response = client
        .execute(request)
        .await
        .map_err(|err| NetError::transport(&err, &url, what, timeouts))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let url = response.url().clone();
    let success = (200..300).contains(&status);
    let bound = if success {
        limit.bytes()
    } else {
        ERROR_BYTES as u64
    };
    let too_large = || NetError::TooLarge {
        host: host_of(&url),
        what: what.to_owned(),
        limit: limit.bytes(),
    };
    // A declared length past the bound is refused before reading; the bytes are counted anyway,
    // since the header may lie.
    if success && response.content_length().is_some_and(|n| n > bound) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => return Err(NetError::transport(&err, &url, what, timeouts)),
        };
        let room = bound.saturating_sub(body.len() as u64) as usize;
        if chunk.len() > room {
            if !success {
                // Enough of an error page to quote it.
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        url,
        body,
    })
}

/// [`send`] within `backoff`: transport failures, timeouts and transient statuses (`retry.rs`)
/// are retried; any other answer, success or not, is returned for the caller to judge.
pub async fn fetch(
    backoff: &Backoff,
    timeouts: &Timeouts,
    what: &str,
    limit: Limit,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, NetError> {
    backoff
        .run(
            || async {
                let answer = send(request(), what, limit, timeouts).await?;
                if !answer.is_success() {
                    let failure = answer.failure(what);
                    if failure.classify() != Failure::Permanent {
                        return Err(failure);
                    }
                }
                Ok(answer)
            },
            NetError::classify,
        )
        .await
}

/// The next page of a listing from a `Link` header, if any: only on the origin of `current`.
pub fn next_page(headers: &HeaderMap, current: &Url, what: &str) -> Result<Option<Url>, NetError> {
    let Some(link) = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| {
            part.split(';')
                .skip(1)
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
        })
    else {
        return Ok(None);
    };
    let target = link
        .split(';')
        .next()
        .map(|t| t.trim().trim_start_matches('<').trim_end_matches('>'))
        .unwrap_or_default();
    let next = current.join(target).map_err(|err| NetError::Malformed {
        host: host_of(current),
        what: what.to_owned(),
        detail: format!("a `Link` that is not a URL: {err}"),
    })?;
    if next.origin() != current.origin() {
        return Err(NetError::OtherOrigin {
            host: host_of(current),
            what: what.to_owned(),
            to: next.origin().ascii_serialization(),
        });
    }
    Ok(Some(next))
}

/// `text` shortened to about `max` characters for a message. A cut falls between words, never
/// inside one: a token the server echoed may be scrubbed only when whole, so half of one must
/// never be left at the end.
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut end = text
        .char_indices()
        .nth(max)
        .map_or(text.len(), |(at, _)| at);
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-');
    // Back off to the end of the last whole word.
    while end > 0 {
        let before = text[..end].chars().next_back().is_some_and(is_word);
        let after = text[end..].chars().next().is_some_and(is_word);
        if !(before && after) {
            break;
        }
        end = text[..end]
            .char_indices()
            .next_back()
            .map_or(0, |(at, _)| at);
    }
    let head = text[..end].trim_end();
    if head.is_empty() {
        "…".to_owned()
    } else {
        format!("{head} …")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeouts_default_and_parse_seconds() {
        let defaults = Timeouts::from_values(None, Some(" ".into()), None).expect("defaults");
        assert_eq!(defaults, Timeouts::default());
        let given = Timeouts::from_values(Some("0.5".into()), Some("2".into()), Some("10".into()))
            .expect("given");
        assert_eq!(given.connect, Duration::from_millis(500));
        assert_eq!(given.read, Duration::from_secs(2));
        assert_eq!(given.upload(3 * 1024 * 1024), Duration::from_secs(13));
        for bad in ["0", "-1", "soon", "1e9", "NaN"] {
            let err = Timeouts::from_values(None, Some(bad.into()), None).expect_err(bad);
            assert!(
                err.to_string()
                    .contains("`TINYDIT_RELEASE_READ_TIMEOUT` = `"),
                "{err}"
            );
        }
        assert_eq!(
            Timeouts::default().to_string(),
            "connect 30 s, silence 120 s, whole request 300 s"
        );
    }

    #[test]
    fn excerpts_never_cut_inside_a_word() {
        assert_eq!(excerpt("  short  ", 10), "short");
        let token = "hf_abcdefghijklmnopqrstuvwxyz";
        let text = format!("you sent Bearer {token} again");
        let cut = excerpt(&text, 20);
        assert_eq!(cut, "you sent Bearer …");
        assert!(!cut.contains("hf_"), "{cut}");
        assert_eq!(excerpt(&"x".repeat(50), 10), "…");
        assert_eq!(excerpt("é é é é é é", 3), "é é …");
    }

    fn headers(link: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(reqwest::header::LINK, link.parse().expect("header"));
        map
    }

    #[test]
    fn next_pages_stay_on_their_origin() {
        let current = Url::parse("http://127.0.0.1:8000/api/x?cursor=1").expect("url");
        let same = headers(
            "<http://127.0.0.1:8000/api/x?cursor=2>; rel=\"next\", <http://127.0.0.1:8000/api/x?cursor=9>; rel=\"last\"",
        );
        assert_eq!(
            next_page(&same, &current, "x")
                .expect("same origin")
                .map(|u| u.to_string()),
            Some("http://127.0.0.1:8000/api/x?cursor=2".to_owned())
        );
        let relative = headers("</api/x?cursor=3>; rel=\"next\"");
        assert!(next_page(&relative, &current, "x").expect("ok").is_some());
        for elsewhere in [
            "<http://127.0.0.1:8001/api/x?cursor=2>; rel=\"next\"",
            "<https://127.0.0.1:8000/api/x>; rel=\"next\"",
            "<http://evil.example/api/x>; rel=\"next\"",
            "<//evil.example/api/x>; rel=\"next\"",
        ] {
            let err = next_page(&headers(elsewhere), &current, "x").expect_err(elsewhere);
            assert!(matches!(err, NetError::OtherOrigin { .. }), "{err}");
        }
        assert!(
            next_page(&HeaderMap::new(), &current, "x")
                .expect("none")
                .is_none()
        );
    }

    #[test]
    fn error_answers_quote_a_short_message() {
        let mut headers = HeaderMap::new();
        headers.insert("x-error-message", "nope".parse().expect("value"));
        let answer = Answer {
            status: 401,
            headers,
            url: Url::parse("http://127.0.0.1:9/x").expect("url"),
            body: br#"{"error": "other"}"#.to_vec(),
        };
        assert_eq!(answer.message(), "nope");
        assert_eq!(
            answer.failure("the refs").to_string(),
            "`127.0.0.1:9` answered the refs with HTTP 401: nope"
        );
        let answer = Answer {
            headers: HeaderMap::new(),
            ..answer
        };
        assert_eq!(answer.message(), "other");
    }
}
