use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What a caller's classifier says about one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Try again after the policy's backoff delay.
    Retry,
    /// Try again after the delay the server asked for (`Retry-After`, a rate-limit reset).
    RetryAfter(Duration),
    /// Do not try again.
    GiveUp,
}

/// Exponential backoff with jitter, a cap on attempts and on total time, and respect
/// for a server-provided delay: the one retry implementation of the workspace.
///
/// Callers classify each error into a [`RetryDecision`]; the policy decides whether
/// and how long to wait.
///
/// ```
/// use std::time::Duration;
/// use tenancy_core::{RetryDecision, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let policy = RetryPolicy::default()
///     .with_max_attempts(4)
///     .with_initial_delay(Duration::from_millis(1));
/// let mut calls = 0;
/// let result: Result<&str, &str> = policy
///     .run(
///         |_attempt| {
///             calls += 1;
///             let outcome = if calls < 3 { Err("503") } else { Ok("done") };
///             async move { outcome }
///         },
///         |err| if *err == "503" { RetryDecision::Retry } else { RetryDecision::GiveUp },
///     )
///     .await;
/// assert_eq!(result, Ok("done"));
/// assert_eq!(calls, 3);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    max_elapsed: Option<Duration>,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// 5 attempts, 250 ms doubling to at most 30 s, jittered, 2 minutes in all.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            max_elapsed: Some(Duration::from_secs(120)),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Sets the number of attempts, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the delay before the first retry.
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Caps each backoff delay (a server-provided delay is not capped by this).
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the growth factor between delays (at least 1).
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// Caps the total time spent, waits included; `None` for no cap.
    pub fn with_max_elapsed(mut self, max_elapsed: Option<Duration>) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// Turns jitter on or off. Jitter spreads retries of many clients over time;
    /// turn it off only for deterministic tests.
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The number of attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff before retry number `retry` (1 for the first retry): the initial
    /// delay times the multiplier to the power `retry - 1`, capped, and with "equal
    /// jitter" (a random point in the upper half) when jitter is on.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(64) as i32;
        let raw = self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = raw.min(self.max_delay.as_secs_f64()).max(0.0);
        let secs = if self.jitter {
            capped / 2.0 + fastrand::f64() * capped / 2.0
        } else {
            capped
        };
        Duration::from_secs_f64(secs)
    }

    /// How long to wait before the next attempt, or `None` to give up.
    ///
    /// `attempts` is the number of attempts made so far and `elapsed` the time since
    /// the first began. A server-provided delay is used as it is, unless waiting it
    /// would pass the time cap, in which case the policy gives up at once rather than
    /// sleep for nothing.
    pub fn next_delay(
        &self,
        attempts: u32,
        elapsed: Duration,
        decision: RetryDecision,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = match decision {
            RetryDecision::GiveUp => return None,
            RetryDecision::Retry => self.backoff(attempts),
            RetryDecision::RetryAfter(delay) => delay,
        };
        match self.max_elapsed {
            Some(cap) if elapsed + delay > cap => None,
            _ => Some(delay),
        }
    }

    /// Runs `op` until it succeeds, `classify` says to give up, or the policy's limits
    /// are reached; returns the last result. `op` receives the attempt number (1-based).
    pub async fn run<T, E, Op, Fut, Classify>(&self, mut op: Op, classify: Classify) -> Result<T, E>
    where
        Op: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        Classify: Fn(&E) -> RetryDecision,
    {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let error = match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let decision = classify(&error);
            let Some(delay) = self.next_delay(attempt, started.elapsed(), decision) else {
                return Err(error);
            };
            tracing::debug!(
                attempt,
                ?decision,
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> RetryPolicy {
        RetryPolicy::default()
            .with_jitter(false)
            .with_initial_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_millis(350))
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = fixed();
        let delays: Vec<_> = (1..=4).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let p = fixed().with_jitter(true);
        for _ in 0..200 {
            let d = p.backoff(2).as_millis();
            assert!((100..=200).contains(&d), "{d}");
        }
    }

    #[test]
    fn server_delay_is_honoured_but_bounded_by_the_time_cap() {
        let p = fixed().with_max_elapsed(Some(Duration::from_secs(10)));
        let hint = RetryDecision::RetryAfter(Duration::from_secs(7));
        assert_eq!(
            p.next_delay(1, Duration::ZERO, hint),
            Some(Duration::from_secs(7))
        );
        assert_eq!(p.next_delay(1, Duration::from_secs(4), hint), None);
        assert_eq!(p.next_delay(1, Duration::ZERO, RetryDecision::GiveUp), None);
        assert_eq!(p.next_delay(5, Duration::ZERO, RetryDecision::Retry), None);
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_until_success_with_the_expected_waits() {
        let p = fixed();
        let start = Instant::now();
        let mut seen = Vec::new();
        let result: Result<u32, &str> = p
            .run(
                |attempt| {
                    seen.push(attempt);
                    async move {
                        if attempt < 3 {
                            Err("busy")
                        } else {
                            Ok(attempt)
                        }
                    }
                },
                |_| RetryDecision::Retry,
            )
            .await;
        assert_eq!(result, Ok(3));
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_at_max_attempts_and_on_give_up() {
        let p = fixed().with_max_attempts(3);
        let mut calls = 0;
        let result: Result<(), &str> = p
            .run(
                |_| {
                    calls += 1;
                    async { Err("down") }
                },
                |_| RetryDecision::Retry,
            )
            .await;
        assert_eq!((result, calls), (Err("down"), 3));

        let mut calls = 0;
        let result: Result<(), &str> = p
            .run(
                |_| {
                    calls += 1;
                    async { Err("bad request") }
                },
                |_| RetryDecision::GiveUp,
            )
            .await;
        assert_eq!((result, calls), (Err("bad request"), 1));
    }
}
