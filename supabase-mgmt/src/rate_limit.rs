use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// The rate-limit headers of one answer: `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
/// `X-RateLimit-Reset` and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RateLimitHeaders {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// Time until the window resets.
    pub reset: Option<Duration>,
    /// Time the server asked us to wait (`Retry-After`, in seconds).
    pub retry_after: Option<Duration>,
}

impl RateLimitHeaders {
    /// Reads the headers; absent or malformed ones are `None`.
    ///
    /// `X-RateLimit-Reset` and `Retry-After` are read as seconds to wait (fractions
    /// allowed), as Supabase sends them. A value that can only be a Unix time (from
    /// 10⁹, i.e. 2001) is turned into the time left, in seconds or, from 10¹¹, in
    /// milliseconds, as some gateways send. Every delay is capped at
    /// [`MAX_SERVER_DELAY`](Self::MAX_SERVER_DELAY), so a garbled header can neither
    /// stall the client nor overflow a clock.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            limit: header_number(headers, "x-ratelimit-limit").map(|n| n as u64),
            remaining: header_number(headers, "x-ratelimit-remaining").map(|n| n as u64),
            reset: header_number(headers, "x-ratelimit-reset").map(delay_from),
            retry_after: header_number(headers, "retry-after").map(delay_from),
        }
    }

    /// The longest delay taken from a header: two of the API's one-minute windows.
    pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(120);

    /// How long to wait before the next request: `Retry-After` if present, else the reset.
    pub fn wait(&self) -> Option<Duration> {
        self.retry_after.or(self.reset)
    }
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    let value = headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// A header's number of seconds (or Unix time) as a delay, capped.
fn delay_from(value: f64) -> Duration {
    const UNIX_SECONDS_FROM: f64 = 1e9;
    const UNIX_MILLIS_FROM: f64 = 1e11;
    let seconds = if value < UNIX_SECONDS_FROM {
        value
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let at = if value < UNIX_MILLIS_FROM {
            value
        } else {
            value / 1000.0
        };
        at - now
    };
    let cap = RateLimitHeaders::MAX_SERVER_DELAY.as_secs_f64();
    // `clamp` keeps the value finite and in range, so the conversion cannot panic.
    Duration::from_secs_f64(seconds.clamp(0.0, cap))
}

/// Client-side pacing: at most `requests` per `per`, spread evenly, shared by every
/// clone of a [`ManagementClient`](crate::ManagementClient).
///
/// Spreading evenly (rather than allowing bursts) keeps any window of length `per`
/// under the limit whatever the server's window alignment, so a burst of signups
/// never sees a 429 from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    interval: Duration,
}

impl Pacing {
    /// At most `requests` per `per` (`requests` of 0 is treated as 1).
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            interval: per / requests.max(1),
        }
    }

    /// The Management API's documented limit: 120 requests per minute.
    pub fn supabase_default() -> Self {
        Self::new(120, Duration::from_secs(60))
    }

    /// The time between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// The shared schedule of a client and its clones: each request gets the next free
/// slot (a GCRA "theoretical arrival time"), and a server's "no requests left" pauses
/// every clone until the reset.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    interval: Duration,
    state: Arc<Mutex<PacerState>>,
}

#[derive(Debug)]
struct PacerState {
    next_slot: Instant,
    paused_until: Option<Instant>,
    last_seen: Option<RateLimitHeaders>,
}

impl Pacer {
    pub(crate) fn new(pacing: Option<Pacing>) -> Self {
        Self {
            interval: pacing.map_or(Duration::ZERO, |p| p.interval),
            state: Arc::new(Mutex::new(PacerState {
                next_slot: Instant::now(),
                paused_until: None,
                last_seen: None,
            })),
        }
    }

    /// Waits for this request's slot. A pause that began while we slept (another
    /// clone learned the window is exhausted) sends us to the first slot after it.
    pub(crate) async fn acquire(&self) {
        loop {
            let slot = self.reserve();
            tokio::time::sleep_until(slot).await;
            let paused_until = self.lock().paused_until;
            if paused_until.is_none_or(|until| until <= Instant::now()) {
                return;
            }
        }
    }

    fn reserve(&self) -> Instant {
        let mut state = self.lock();
        let now = Instant::now();
        let earliest = state.paused_until.map_or(now, |until| until.max(now));
        let slot = state.next_slot.max(earliest);
        state.next_slot = slot + self.interval;
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Learns from an answer's headers: when the server says nothing is left (or
    /// answered 429), no clone sends anything before the reset.
    pub(crate) fn observe(&self, headers: &RateLimitHeaders, rate_limited: bool) {
        let mut state = self.lock();
        if *headers != RateLimitHeaders::default() {
            state.last_seen = Some(*headers);
        }
        let exhausted = rate_limited || headers.remaining == Some(0);
        let Some(wait) = headers.wait().filter(|_| exhausted) else {
            return;
        };
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "rate limit exhausted; pausing requests until the reset"
            );
        }
    }

    /// The rate-limit headers of the last answer that had any.
    pub(crate) fn last_seen(&self) -> Option<RateLimitHeaders> {
        self.lock().last_seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_rate_limit_headers() {
        let h = RateLimitHeaders::from_headers(&headers(&[
            ("x-ratelimit-limit", "120"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1.5"),
        ]));
        assert_eq!(h.limit, Some(120));
        assert_eq!(h.remaining, Some(0));
        assert_eq!(h.wait(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_wins_and_garbage_is_ignored() {
        let h = RateLimitHeaders::from_headers(&headers(&[
            ("retry-after", "7"),
            ("x-ratelimit-reset", "30"),
            ("x-ratelimit-remaining", "soon"),
        ]));
        assert_eq!(h.wait(), Some(Duration::from_secs(7)));
        assert_eq!(h.remaining, None);
        let none = RateLimitHeaders::from_headers(&headers(&[("x-ratelimit-reset", "-3")]));
        assert_eq!(none.reset, None);
    }

    #[test]
    fn absurd_delays_are_capped_instead_of_panicking() {
        for value in ["1e300", "99999999999999999999", "1e18", "100000"] {
            let h = RateLimitHeaders::from_headers(&headers(&[
                ("x-ratelimit-reset", value),
                ("retry-after", value),
            ]));
            assert_eq!(h.reset, Some(RateLimitHeaders::MAX_SERVER_DELAY), "{value}");
            assert_eq!(h.retry_after, Some(RateLimitHeaders::MAX_SERVER_DELAY));
        }
        let past = RateLimitHeaders::from_headers(&headers(&[("x-ratelimit-reset", "1000000000")]));
        assert_eq!(
            past.reset,
            Some(Duration::ZERO),
            "a reset in the past means now"
        );
    }

    #[test]
    fn a_unix_time_in_milliseconds_becomes_a_delay() {
        let in_ten_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 10_000;
        let h = RateLimitHeaders::from_headers(&headers(&[(
            "x-ratelimit-reset",
            &in_ten_ms.to_string(),
        )]));
        let reset = h.reset.unwrap();
        assert!(
            reset <= Duration::from_secs(10) && reset >= Duration::from_secs(8),
            "{reset:?}"
        );
    }

    #[test]
    fn a_unix_time_reset_becomes_a_delay() {
        let in_ten = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        let h =
            RateLimitHeaders::from_headers(&headers(&[("x-ratelimit-reset", &in_ten.to_string())]));
        let reset = h.reset.unwrap();
        assert!(
            reset <= Duration::from_secs(10) && reset >= Duration::from_secs(8),
            "{reset:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spreads_requests_and_is_shared_by_clones() {
        let pacer = Pacer::new(Some(Pacing::new(10, Duration::from_secs(1))));
        let clone = pacer.clone();
        let start = Instant::now();
        for _ in 0..5 {
            pacer.acquire().await;
            clone.acquire().await;
        }
        // 10 requests, the first at once, then every 100 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(900));
    }

    #[tokio::test(start_paused = true)]
    async fn exhausted_window_pauses_until_the_reset() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        let exhausted = RateLimitHeaders {
            remaining: Some(0),
            reset: Some(Duration::from_secs(3)),
            ..RateLimitHeaders::default()
        };
        pacer.observe(&exhausted, false);
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));

        let plenty = RateLimitHeaders {
            remaining: Some(5),
            ..exhausted
        };
        pacer.observe(&plenty, false);
        let before = Instant::now();
        pacer.acquire().await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
