//! The retry policy of every Hub and GitHub call, owned here rather than by the clients.
//!
//! hf-hub retries every request, POSTs included, without honouring `Retry-After`, and octocrab
//! re-sends immediately (hub-protocol.md §4, octocrab.md): both are switched off, and each call
//! goes through [`Backoff::run`]. 429, 5xx and connection errors are retried with bounded
//! exponential backoff that honours `Retry-After`; authentication and permission errors, and
//! every other refusal, fail at once. A write is never simply repeated: before a retry the
//! caller's `landed` check reads whether the first attempt took effect.

use std::future::Future;
use std::time::Duration;

/// How a failed call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth another try, after at least this long when the server said so.
    Transient(Option<Duration>),
    /// Final.
    Permanent,
}

/// Bounded exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in total, the first included.
    pub attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub base: Duration,
    /// Longest single wait, `Retry-After` included: a server asking for more is reported.
    pub max_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempts: 4,
            base: Duration::from_millis(500),
            max_wait: Duration::from_mins(1),
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
    /// The wait before attempt `n + 1` after `n` failures, `Retry-After` taking precedence.
    pub fn wait(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exponential = self
            .base
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)));
        retry_after.unwrap_or(exponential).min(self.max_wait)
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
                    let Failure::Transient(retry_after) = classify(&err) else {
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
                    let Failure::Transient(retry_after) = classify(&err) else {
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn quick() -> Backoff {
        Backoff {
            attempts: 3,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(50),
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
}
