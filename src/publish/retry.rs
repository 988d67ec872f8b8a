//! The retry policy of every Hub and GitHub call, owned here rather than by the clients.
//!
//! hf-hub retries every request, POSTs included, without honouring `Retry-After`, and octocrab
//! re-sends immediately (hub-protocol.md §4, octocrab.md): both are switched off, and each call
//! goes through [`Backoff::run`]. What a failed answer means is decided once, by
//! [`classify_status`], for both services and every client:
//! - rate limits wait as long as the server says ([`rate_limit`]): `Retry-After`; the Hub's
//!   IETF `RateLimit: "api";r=0;t=55` (it sends no `Retry-After`); GitHub's
//!   `x-ratelimit-remaining: 0` with `x-ratelimit-reset`, and its secondary limit (403 "You have
//!   exceeded a secondary rate limit", one minute when it names no time). A wait longer than
//!   [`Backoff::max_wait`] is not waited: the error is reported and names the rate limit;
//! - 408, 429, 5xx and connection errors are retried with bounded exponential backoff;
//! - two refusals the Hub gives for a moment only are retried too: a commit naming LFS objects
//!   it has not seen yet (400 "Your push was rejected because an LFS pointer pointed to a file
//!   that does not exist", also right after their upload while they propagate; the retry
//!   uploads them again) and a repo create meeting another operation (409 "Cannot create repo:
//!   another conflicting operation is in progress");
//! - authentication and permission errors, and every other refusal, fail at once.
//!
//! A write is never simply repeated: before a retry the caller's `landed` check reads whether
//! the first attempt took effect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How a failed call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try, after at least this long when the server said so.
    Transient(Option<Duration>),
    /// A rate limit whose error does not say for how long (hf-hub keeps `Retry-After` only and
    /// drops the Hub's `RateLimit` header): the backoff's [`Probe`] asks the server.
    RateLimitUnknown,
    /// Final.
    Permanent,
}

/// Asks the server how long its rate limit still holds: `None` when it does not say.
#[derive(Clone)]
pub struct Probe(Arc<dyn Fn() -> ProbeFuture + Send + Sync>);

type ProbeFuture = Pin<Box<dyn Future<Output = Option<Duration>> + Send>>;

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    /// A probe that `GET`s `url` with `authorization` through `client` (which carries the
    /// timeouts of every call) and reads the rate-limit headers of the answer (a cheap read in
    /// the same rate-limit bucket, e.g. the Hub's `whoami-v2`); its body is never read.
    pub fn get(client: reqwest::Client, url: String, authorization: String) -> Self {
        Self(Arc::new(move || {
            let (client, url, authorization) = (client.clone(), url.clone(), authorization.clone());
            Box::pin(async move {
                let mut request = client.get(&url);
                if !authorization.is_empty() {
                    request = request.header(reqwest::header::AUTHORIZATION, &authorization);
                }
                let response = request.send().await.ok()?;
                match rate_limit(response.status().as_u16(), Some(response.headers()), "") {
                    Some(RateLimit::Wait(wait)) => Some(wait),
                    _ => None,
                }
            })
        }))
    }
}

/// Bounded exponential backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Attempts in total, the first included.
    pub attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub base: Duration,
    /// Longest single wait, server-given waits included: a server asking for more is reported.
    pub max_wait: Duration,
    /// Asks how long a rate limit holds when the error does not say ([`Failure::RateLimitUnknown`]).
    pub probe: Option<Probe>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(500),
            max_wait: Duration::from_mins(1),
            probe: None,
        }
    }
}

/// The outcome of an attempt that failed transiently, for the caller's `landed` check.
pub enum Landed<T> {
    /// The write took effect: this is its result.
    Yes(T),
    /// It did not: try again.
    No,
}

impl Backoff {
    /// The same backoff, asking `probe` how long a rate limit holds when an error does not say.
    #[must_use]
    pub fn probing(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The wait before attempt `n + 1` after `n` failures, a server-given wait taking
    /// precedence.
    pub fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        retry_after.unwrap_or(exponential).min(self.max_wait)
    }

    /// `None` when the failure is final; else the server-given wait, if any (asking the probe
    /// for a rate limit the error does not describe).
    async fn transient(&self, failure: Failure) -> Option<Option<Duration>> {
        match failure {
            Failure::Permanent => None,
            Failure::Transient(after) => Some(after),
            Failure::RateLimitUnknown => Some(match &self.probe {
                Some(probe) => (probe.0)().await,
                None => None,
            }),
        }
    }

    /// Runs a read: transient failures are retried, the last error is returned.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut call: F,
        classify: impl Fn(&E) -> Failure,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut failures = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let Some(retry_after) = self.transient(classify(&err)).await else {
                        return Err(err);
                    };
                    failures += 1;
                    if failures >= self.attempts
                        || retry_after.is_some_and(|after| after > self.max_wait)
                    {
                        return Err(err);
                    }
                    tokio::time::sleep(self.wait(failures, retry_after)).await;
                }
            }
        }
    }

    /// Runs a write. After a transient failure `landed` reads the remote state: a write that
    /// took effect although its answer was lost is not sent again.
    pub async fn run_write<T, E, F, Fut, L, LFut>(
        &self,
        mut call: F,
        classify: impl Fn(&E) -> Failure,
        mut landed: L,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        L: FnMut() -> LFut,
        LFut: Future<Output = Result<Landed<T>, E>>,
    {
        let mut failures = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) => {
                    let Some(retry_after) = self.transient(classify(&err)).await else {
                        return Err(err);
                    };
                    failures += 1;
                    if retry_after.is_some_and(|after| after > self.max_wait) {
                        return Err(err);
                    }
                    tokio::time::sleep(self.wait(failures, retry_after)).await;
                    // Reading may fail transiently too; the reads retry on their own.
                    if let Landed::Yes(value) = self.run(&mut landed, &classify).await? {
                        return Ok(value);
                    }
                    if failures >= self.attempts {
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// A status code worth retrying: 408, 429 and 5xx.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the Hub or GitHub).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A rate limit, as the server describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// It holds this long.
    Wait(Duration),
    /// The answer does not say for how long.
    Unknown,
}

/// Whether a failed answer is a rate limit, and for how long it holds. `headers` is `None` when
/// the client dropped them (hf-hub).
pub fn rate_limit(status: u16, headers: Option<&HeaderMap>, message: &str) -> Option<RateLimit> {
    rate_limit_at(status, headers, message, SystemTime::now())
}

fn header<'h>(headers: Option<&'h HeaderMap>, name: &str) -> Option<&'h str> {
    headers?.get(name)?.to_str().ok().map(str::trim)
}

/// The Hub's IETF draft header `RateLimit: "api";r=0;t=55`: `(remaining, reset in seconds)`.
pub fn parse_ratelimit_header(value: &str) -> Option<(u64, u64)> {
    let mut remaining = None;
    let mut reset = None;
    for part in value.split(';').map(str::trim) {
        if let Some(r) = part.strip_prefix("r=") {
            remaining = r.trim().parse().ok();
        } else if let Some(t) = part.strip_prefix("t=") {
            reset = t.trim().parse().ok();
        }
    }
    Some((remaining?, reset?))
}

fn rate_limit_at(
    status: u16,
    headers: Option<&HeaderMap>,
    message: &str,
    now: SystemTime,
) -> Option<RateLimit> {
    if !matches!(status, 403 | 429) {
        return None;
    }
    // GitHub and the Hub: the number of seconds to wait.
    if let Some(after) = header(headers, "retry-after").and_then(parse_retry_after) {
        return Some(RateLimit::Wait(after));
    }
    // The Hub: the IETF draft header, sent on every answer; it is the reason only at `r=0`.
    if let Some((0, reset)) = header(headers, "ratelimit").and_then(parse_ratelimit_header) {
        return Some(RateLimit::Wait(Duration::from_secs(reset)));
    }
    // GitHub's primary limit: sent on every answer too; the reason only at `remaining: 0`.
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let reset = header(headers, "x-ratelimit-reset").and_then(|r| r.parse::<u64>().ok());
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Some(match reset {
            // The reset is a whole second: one more covers the part already begun.
            Some(reset) => RateLimit::Wait(Duration::from_secs(reset.saturating_sub(now) + 1)),
            None => RateLimit::Unknown,
        });
    }
    let lower = message.to_ascii_lowercase();
    if status == 403 && lower.contains("secondary rate limit") {
        // GitHub: "otherwise, wait for at least one minute before retrying".
        return Some(RateLimit::Wait(Duration::from_mins(1)));
    }
    if status == 429 || lower.contains("rate limit") {
        return Some(RateLimit::Unknown);
    }
    None
}

/// The Hub's refusal of a commit naming LFS objects it has not seen (yet).
pub const LFS_POINTER_MISSING: &str = "LFS pointer pointed to a file that does not exist";
/// The Hub's refusal of a repo create while another operation runs.
pub const CONFLICTING_OPERATION: &str = "another conflicting operation is in progress";

/// How a failed answer is treated, for every client: `headers` is `None` where the client
/// dropped them (hf-hub), `message` the server's error text.
pub fn classify_status(status: u16, headers: Option<&HeaderMap>, message: &str) -> Failure {
    match rate_limit(status, headers, message) {
        Some(RateLimit::Wait(wait)) => return Failure::Transient(Some(wait)),
        Some(RateLimit::Unknown) if headers.is_none() => return Failure::RateLimitUnknown,
        Some(RateLimit::Unknown) => return Failure::Transient(None),
        None => {}
    }
    let transient = (status == 400 && message.contains(LFS_POINTER_MISSING))
        || (status == 409 && message.contains(CONFLICTING_OPERATION))
        || is_transient_status(status);
    if !transient {
        return Failure::Permanent;
    }
    let after = header(headers, "retry-after").and_then(parse_retry_after);
    Failure::Transient(after)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn quick() -> Backoff {
        Backoff {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(50),
            probe: None,
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn waits_double_and_retry_after_wins_within_the_cap() {
        let backoff = Backoff::default();
        assert_eq!(backoff.wait(1, None), Duration::from_millis(500));
        assert_eq!(backoff.wait(3, None), Duration::from_secs(2));
        assert_eq!(
            backoff.wait(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff.wait(1, Some(Duration::from_mins(10))),
            Duration::from_mins(1)
        );
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert!(is_transient_status(503) && is_transient_status(429));
        assert!(!is_transient_status(401) && !is_transient_status(409));
    }

    #[test]
    fn reads_retry_transient_failures_only_and_stop_at_the_bound() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = block_on(quick().run(
            || {
                calls.set(calls.get() + 1);
                async { if calls.get() < 3 { Err("503") } else { Ok(7) } }
            },
            |_| Failure::Transient(None),
        ));
        assert_eq!(result, Ok(7));
        assert_eq!(calls.get(), 3);

        calls.set(0);
        let result: Result<u32, &str> = block_on(quick().run(
            || {
                calls.set(calls.get() + 1);
                async { Err("503") }
            },
            |_| Failure::Transient(None),
        ));
        assert_eq!(result, Err("503"));
        assert_eq!(calls.get(), 3, "bounded");

        calls.set(0);
        let result: Result<u32, &str> = block_on(quick().run(
            || {
                calls.set(calls.get() + 1);
                async { Err("401") }
            },
            |_| Failure::Permanent,
        ));
        assert_eq!(result, Err("401"));
        assert_eq!(calls.get(), 1, "authentication fails fast");
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_not_sent_again() {
        let writes = Cell::new(0);
        let result: Result<&str, &str> = block_on(quick().run_write(
            || {
                writes.set(writes.get() + 1);
                async { Err("connection closed") }
            },
            |_| Failure::Transient(None),
            || async { Ok(Landed::Yes("landed")) },
        ));
        assert_eq!(result, Ok("landed"));
        assert_eq!(writes.get(), 1);

        writes.set(0);
        let result: Result<&str, &str> = block_on(quick().run_write(
            || {
                writes.set(writes.get() + 1);
                async {
                    if writes.get() == 1 {
                        Err("502")
                    } else {
                        Ok("written")
                    }
                }
            },
            |_| Failure::Transient(None),
            || async { Ok(Landed::No) },
        ));
        assert_eq!(result, Ok("written"));
        assert_eq!(writes.get(), 2);
    }

    #[test]
    fn a_retry_after_beyond_the_cap_is_reported_not_waited() {
        let calls = Cell::new(0);
        let result: Result<u32, &str> = block_on(quick().run(
            || {
                calls.set(calls.get() + 1);
                async { Err("429") }
            },
            |_| Failure::Transient(Some(Duration::from_hours(1))),
        ));
        assert_eq!(result, Err("429"));
        assert_eq!(calls.get(), 1);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn the_hubs_ratelimit_header_is_read_and_waited_out_only_at_zero() {
        assert_eq!(parse_ratelimit_header("\"api\";r=0;t=55"), Some((0, 55)));
        assert_eq!(parse_ratelimit_header("\"api\"; r=12; t=3"), Some((12, 3)));
        assert_eq!(parse_ratelimit_header("\"api\""), None);
        let limited = headers(&[
            ("ratelimit", "\"api\";r=0;t=55"),
            ("ratelimit-policy", "\"fixed window\";\"api\";q=1000;w=300"),
        ]);
        assert_eq!(
            classify_status(429, Some(&limited), "We had to rate limit you"),
            Failure::Transient(Some(Duration::from_secs(55)))
        );
        // The header is on every answer: with requests left it is not the reason.
        let plenty = headers(&[("ratelimit", "\"api\";r=900;t=55")]);
        assert_eq!(rate_limit(404, Some(&plenty), ""), None);
        assert_eq!(
            classify_status(429, Some(&plenty), ""),
            Failure::Transient(None)
        );
        // hf-hub drops the headers: the probe has to ask.
        assert_eq!(
            classify_status(429, None, "Rate limited"),
            Failure::RateLimitUnknown
        );
    }

    #[test]
    fn githubs_rate_limits_are_told_from_permission_errors() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let primary = headers(&[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000030"),
        ]);
        for status in [403, 429] {
            assert_eq!(
                rate_limit_at(status, Some(&primary), "API rate limit exceeded", now),
                Some(RateLimit::Wait(Duration::from_secs(31)))
            );
        }
        let secondary = headers(&[("retry-after", "7"), ("x-ratelimit-remaining", "4990")]);
        assert_eq!(
            rate_limit_at(
                403,
                Some(&secondary),
                "You have exceeded a secondary rate limit",
                now
            ),
            Some(RateLimit::Wait(Duration::from_secs(7)))
        );
        let bare = headers(&[("x-ratelimit-remaining", "4990")]);
        assert_eq!(
            rate_limit_at(
                403,
                Some(&bare),
                "You have exceeded a secondary rate limit. Please wait a few minutes",
                now
            ),
            Some(RateLimit::Wait(Duration::from_mins(1)))
        );
        // A permission error carries the same headers, with requests left.
        assert_eq!(
            rate_limit_at(
                403,
                Some(&bare),
                "Resource not accessible by integration",
                now
            ),
            None
        );
        assert_eq!(
            classify_status(403, Some(&bare), "Resource not accessible by integration"),
            Failure::Permanent
        );
    }

    #[test]
    fn the_hubs_passing_refusals_are_retried_and_the_lasting_ones_are_not() {
        let lfs = "Your push was rejected because an LFS pointer pointed to a file that does not \
                   exist. Offending file(s): model.safetensors";
        assert_eq!(classify_status(400, None, lfs), Failure::Transient(None));
        assert_eq!(
            classify_status(
                400,
                None,
                "Your push was rejected because it contains binary files"
            ),
            Failure::Permanent
        );
        assert_eq!(
            classify_status(
                409,
                None,
                "Cannot create repo: another conflicting operation is in progress"
            ),
            Failure::Transient(None)
        );
        assert_eq!(
            classify_status(409, None, "You already created this model repo"),
            Failure::Permanent
        );
        assert_eq!(classify_status(503, None, ""), Failure::Transient(None));
        assert_eq!(
            classify_status(503, Some(&headers(&[("retry-after", "2")])), ""),
            Failure::Transient(Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn a_rate_limit_without_its_time_asks_the_probe() {
        let calls = Cell::new(0);
        let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = asked.clone();
        let backoff = quick().probing(Probe(Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Some(Duration::from_millis(30)) })
        })));
        let started = std::time::Instant::now();
        let result: Result<u32, &str> = block_on(backoff.run(
            || {
                calls.set(calls.get() + 1);
                async { if calls.get() < 2 { Err("429") } else { Ok(1) } }
            },
            |_| Failure::RateLimitUnknown,
        ));
        assert_eq!(result, Ok(1));
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "waited as told"
        );

        // Told to wait past the cap: reported at once, not waited.
        let backoff = quick().probing(Probe(Arc::new(|| {
            Box::pin(async { Some(Duration::from_secs(55)) })
        })));
        calls.set(0);
        let result: Result<u32, &str> = block_on(backoff.run(
            || {
                calls.set(calls.get() + 1);
                async { Err("429") }
            },
            |_| Failure::RateLimitUnknown,
        ));
        assert_eq!(result, Err("429"));
        assert_eq!(calls.get(), 1);
    }
}
