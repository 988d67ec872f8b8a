//! Rate limits as each service shows them: a fixed-window request quota per emulator, the
//! headers both services put on every answer, and the answer once the quota is spent.
//!
//! - The Hub counts `api` requests (the CDN is another bucket, not limited here). Every answer
//!   carries the IETF draft headers `RateLimit: "api";r=<left>;t=<seconds to reset>` and
//!   `RateLimit-Policy: "fixed window";"api";q=<limit>;w=<window>`; a spent quota answers 429
//!   with those headers and **no** `Retry-After` (what `huggingface_hub` reads, `utils/_http.py`).
//! - GitHub counts API and upload requests. Every answer carries `x-ratelimit-limit`,
//!   `-remaining`, `-used`, `-reset` (epoch seconds) and `-resource`; a spent quota answers 403
//!   (or the status a fault names, e.g. 429) "API rate limit exceeded" with
//!   `x-ratelimit-remaining: 0`. Its secondary limit answers 403 "You have exceeded a secondary
//!   rate limit" with `retry-after` while `x-ratelimit-remaining` still shows requests left.
//!
//! The `rate_limit` fault spends the quota at once (or trips the secondary limit) for
//! `reset_s` seconds: every counted request until then gets the answer above, not only the one
//! that matched. The window lives in memory: a restart starts a fresh one.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::respond::{error_response, json_response};

/// Which service an emulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Hugging Face Hub.
    Hub,
    /// The GitHub REST API.
    Github,
}

/// A fixed-window request quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests per window.
    pub limit: u64,
    /// Window length in seconds.
    pub window_s: u64,
}

impl Quota {
    /// The real Hub's quota for a free user's `api` requests: 1000 per 5 minutes.
    pub const HUB: Self = Self {
        limit: 1000,
        window_s: 300,
    };
    /// GitHub's primary limit for a token: 5000 requests per hour.
    pub const GITHUB: Self = Self {
        limit: 5000,
        window_s: 3600,
    };
}

/// The quota's state.
#[derive(Debug)]
pub struct Limiter {
    service: Service,
    quota: Quota,
    /// Current window, in milliseconds since the epoch: `[start, end)`.
    end_ms: u128,
    used: u64,
    /// Status a fault asked for while the quota is spent.
    status: Option<u16>,
    /// GitHub's secondary limit holds until then.
    secondary_until_ms: u128,
}

fn ceil_secs(ms: u128) -> u64 {
    u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX)
}

fn header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

impl Limiter {
    /// A fresh limiter with `quota`.
    pub fn new(service: Service, quota: Quota) -> Self {
        Self {
            service,
            quota,
            end_ms: 0,
            used: 0,
            status: None,
            secondary_until_ms: 0,
        }
    }

    /// Whether requests on this listener count (the Hub's CDN is a bucket of its own).
    pub fn counts(&self, origin: &str) -> bool {
        match self.service {
            Service::Hub => origin == "api",
            Service::Github => origin == "api" || origin == "uploads",
        }
    }

    /// Replaces the quota (a seed's config) and starts a new window: a limit in force, a
    /// tripped one included, is lifted.
    pub fn set_quota(&mut self, quota: Quota) {
        self.quota = quota;
        self.end_ms = 0;
        self.used = 0;
        self.status = None;
        self.secondary_until_ms = 0;
    }

    fn roll(&mut self, now_ms: u128) {
        if now_ms >= self.end_ms {
            self.end_ms = now_ms + u128::from(self.quota.window_s.max(1)) * 1000;
            self.used = 0;
            self.status = None;
        }
    }

    /// Admits a request (counting it), or answers it as the service does once limited.
    #[allow(clippy::result_large_err)] // the refusal is the response itself, as in the routes
    pub fn admit(&mut self, now_ms: u128) -> Result<(), Response<Body>> {
        self.roll(now_ms);
        if now_ms < self.secondary_until_ms {
            return Err(self.secondary(now_ms));
        }
        if self.used >= self.quota.limit {
            return Err(self.spent(now_ms));
        }
        self.used += 1;
        Ok(())
    }

    /// What a `rate_limit` fault does: spends the quota (or trips GitHub's secondary limit)
    /// for `reset_s` seconds and answers as limited.
    pub fn trip(&mut self, fault: &Fault, now_ms: u128) -> Response<Body> {
        self.roll(now_ms);
        let until = now_ms + u128::from(fault.reset_s.unwrap_or(60)) * 1000;
        if fault.secondary == Some(true) && self.service == Service::Github {
            self.secondary_until_ms = until;
            return self.secondary(now_ms);
        }
        self.used = self.quota.limit;
        self.end_ms = until;
        self.status = fault.status;
        self.spent(now_ms)
    }

    /// The headers of every counted answer.
    pub fn decorate(&self, response: &mut Response<Body>, now_ms: u128) {
        let left = self.quota.limit.saturating_sub(self.used);
        match self.service {
            Service::Hub => {
                let t = ceil_secs(self.end_ms.saturating_sub(now_ms));
                header(response, "ratelimit", &format!("\"api\";r={left};t={t}"));
                header(
                    response,
                    "ratelimit-policy",
                    &format!(
                        "\"fixed window\";\"api\";q={};w={}",
                        self.quota.limit, self.quota.window_s
                    ),
                );
            }
            Service::Github => {
                header(response, "x-ratelimit-limit", &self.quota.limit.to_string());
                header(response, "x-ratelimit-remaining", &left.to_string());
                header(response, "x-ratelimit-used", &self.used.to_string());
                header(
                    response,
                    "x-ratelimit-reset",
                    &ceil_secs(self.end_ms).to_string(),
                );
                header(response, "x-ratelimit-resource", "core");
            }
        }
    }

    fn spent(&self, now_ms: u128) -> Response<Body> {
        let mut response = match self.service {
            Service::Hub => {
                let status = StatusCode::from_u16(self.status.unwrap_or(429))
                    .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                let minutes = self.quota.window_s / 60;
                let period = if minutes > 0 && self.quota.window_s.is_multiple_of(60) {
                    format!("{minutes} minutes")
                } else {
                    format!("{} seconds", self.quota.window_s)
                };
                error_response(
                    status,
                    &format!(
                        "We had to rate limit you, you hit the quota of {} api requests per {period} \
                         period. Upgrade to a PRO user or Team/Enterprise organization account \
                         (https://hf.co/pricing) to get higher limits. See \
                         https://huggingface.co/docs/hub/rate-limits",
                        self.quota.limit
                    ),
                )
            }
            Service::Github => {
                let status = StatusCode::from_u16(self.status.unwrap_or(403))
                    .unwrap_or(StatusCode::FORBIDDEN);
                github_error(
                    status,
                    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for \
                     help, please include the request ID 0000:0000:0000000:0000000:00000000.",
                    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api",
                )
            }
        };
        self.decorate(&mut response, now_ms);
        response
    }

    fn secondary(&self, now_ms: u128) -> Response<Body> {
        let mut response = github_error(
            StatusCode::FORBIDDEN,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try \
             again. If you reach out to GitHub Support for help, please include the request ID \
             0000:0000:0000000:0000000:00000000.",
            "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        );
        self.decorate(&mut response, now_ms);
        header(
            &mut response,
            "retry-after",
            &ceil_secs(self.secondary_until_ms.saturating_sub(now_ms))
                .max(1)
                .to_string(),
        );
        response
    }
}

fn github_error(status: StatusCode, message: &str, docs: &str) -> Response<Body> {
    json_response(
        status,
        &serde_json::json!({
            "message": message,
            "documentation_url": docs,
            "status": status.as_u16().to_string(),
        }),
    )
}
