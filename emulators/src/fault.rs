//! Fault injection: what `faults.json` (or the `/_emulator/faults` admin route) asks a request
//! to suffer. `server.rs` matches and fires them; `ratelimit.rs` trips its limits through them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a matching fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer `status` (with `retry_after` and `message`) without performing the request.
    Status,
    /// Close the connection without an answer and without performing the request.
    Drop,
    /// Perform the request (the write lands), then close the connection without an answer.
    LoseResponse,
    /// Only wait `delay_ms`, then serve the request normally.
    Delay,
    /// Spend the rate-limit quota (GitHub: with `secondary`, trip the secondary limit) for
    /// `reset_s` seconds: this and every counted request until then is answered as the service
    /// answers a rate-limited client (`ratelimit`).
    RateLimit,
    /// Answer `status` (default 401) with an error that quotes the request's `Authorization`
    /// header, in the body (`error` and `message`) and in `X-Error-Message`: a server, proxy or
    /// mirror that echoes what it was sent. Nothing is performed.
    EchoToken,
    /// Accept the request and never answer, keeping the connection open.
    Hang,
    /// Perform the request, send the status and headers at once, then the body one byte every
    /// `interval_ms` (default 200).
    Drip,
    /// Answer `status` (default 200) with a body of `bytes` bytes (default 1 GiB), generated as
    /// it is sent, without a `Content-Length`. Nothing is performed.
    HugeBody,
    /// Perform the request and set `headers` on its answer (a lying `X-Linked-Size`, a `Link` to
    /// another origin).
    Headers,
}

/// One configured fault: which requests it matches, what it does and how often.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// HTTP method to match (`GET`, `POST`, ...); absent or `*` matches any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Glob over the raw (still percent-encoded) request path: `*` within a segment, `**`
    /// across segments, `?` one character.
    pub path: String,
    /// Listener to match (`api`, `cdn`, `uploads`); absent matches all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// What to do.
    pub action: FaultAction,
    /// Status code for `status` (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` header value for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Error message for `status` (body and `X-Error-Message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Wait this long before acting (any action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `rate_limit`: seconds until the limit resets (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_s: Option<u64>,
    /// `rate_limit` on GitHub: the secondary limit (403 with `retry-after`) instead of the
    /// primary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<bool>,
    /// Fire for the first `times` matching requests only (absent: every time). The count left
    /// is written back to `faults.json`; a spent fault is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Let this many matching requests through first (absent: none), so a fault can hit the
    /// second asset upload, not the first. The count left is written back to `faults.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// `headers`: header name -> value, set on the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `huge_body`: the body's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `drip`: milliseconds between two bytes of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// The content of `faults.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    /// Faults, tried in order; the first match fires.
    #[serde(default)]
    pub faults: Vec<Fault>,
}
