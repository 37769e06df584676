use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest window a [`Pacing`] takes (longer ones are capped to it): a day.
const LONGEST_WINDOW: Duration = Duration::from_secs(24 * 3600);

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

/// Client-side pacing: at most `requests` per `per`, shared by every clone of a
/// [`ManagementClient`](crate::ManagementClient), per endpoint scope or for all
/// requests at once ([`PacingScope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    requests: u32,
    per: Duration,
    scope: PacingScope,
}

/// What one pacing budget covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacingScope {
    /// One budget per endpoint scope, the method and path template of a request
    /// (`GET /v1/projects/{ref}`), as Supabase counts its limits: polling one
    /// project's status never waits for the creates of others. Each scope starts
    /// evenly spaced at the configured rate, then spends what its answers'
    /// `X-RateLimit-Remaining` says is left until their `X-RateLimit-Reset`.
    PerEndpoint,
    /// One budget for every request, spread evenly, paused for everyone when any
    /// answer says nothing is left: the most conservative choice, for an API that
    /// counts all requests together.
    Global,
}

impl Pacing {
    /// At most `requests` per `per` in each endpoint scope (`requests` of 0 is
    /// treated as 1, a `per` longer than a day as a day).
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests: requests.max(1),
            // Longer windows are no rate limit anyone sets; capping keeps every
            // deadline computed from it far from the clock's end.
            per: per.min(LONGEST_WINDOW),
            scope: PacingScope::PerEndpoint,
        }
    }

    /// At most `requests` per `per` for all requests together, evenly spread.
    pub fn global(requests: u32, per: Duration) -> Self {
        Self {
            scope: PacingScope::Global,
            ..Self::new(requests, per)
        }
    }

    /// The Management API's documented limit: 120 requests per minute in each
    /// endpoint scope.
    pub fn supabase_default() -> Self {
        Self::new(120, Duration::from_secs(60))
    }

    /// The time between two requests of one budget while nothing has been learnt
    /// from the server (and always, for [`PacingScope::Global`]).
    pub fn interval(&self) -> Duration {
        self.per / self.requests
    }

    /// What one budget covers.
    pub fn scope(&self) -> PacingScope {
        self.scope
    }
}

/// The shared schedule of a client and its clones: a budget per endpoint scope (or
/// one for everything), each paused by its own 429s and exhausted windows.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    pacing: Option<Pacing>,
    budgets: Arc<Mutex<HashMap<String, Arc<Budget>>>>,
    last_seen: Arc<Mutex<Option<RateLimitHeaders>>>,
}

/// A request's place in its budget, held while the request is in flight.
#[derive(Debug)]
pub(crate) struct Permit {
    budget: Arc<Budget>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

impl Pacer {
    pub(crate) fn new(pacing: Option<Pacing>) -> Self {
        Self {
            pacing,
            budgets: Arc::new(Mutex::new(HashMap::new())),
            last_seen: Arc::new(Mutex::new(None)),
        }
    }

    /// The budget of `scope` (`METHOD /path/{template}`), made on first use.
    fn budget(&self, scope: &str) -> Arc<Budget> {
        let per_endpoint = self
            .pacing
            .is_some_and(|p| p.scope == PacingScope::PerEndpoint);
        let key = if per_endpoint { scope } else { "" };
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let budget = budgets
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Budget::new(self.pacing, per_endpoint)));
        Arc::clone(budget)
    }

    /// Waits until a request of `scope` may go; hold the permit until its answer
    /// has been [observed](Self::observe).
    pub(crate) async fn acquire(&self, scope: &str) -> Permit {
        let budget = self.budget(scope);
        loop {
            let news = budget.news.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            let now = Instant::now();
            let Some(until) = budget.lock().take(now) else {
                break;
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = news => {}
            }
        }
        Permit { budget }
    }

    /// Learns from the answer to the request holding `permit`.
    pub(crate) fn observe(&self, permit: &Permit, headers: &RateLimitHeaders, rate_limited: bool) {
        if *headers != RateLimitHeaders::default() {
            *self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(*headers);
        }
        permit
            .budget
            .lock()
            .learn(headers, rate_limited, Instant::now());
        permit.budget.news.notify_waiters();
    }

    /// The rate-limit headers of the last answer that had any.
    pub(crate) fn last_seen(&self) -> Option<RateLimitHeaders> {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One budget and the waiters it wakes when an answer teaches it something.
#[derive(Debug)]
struct Budget {
    state: Mutex<BudgetState>,
    news: Notify,
}

impl Budget {
    fn new(pacing: Option<Pacing>, learns_windows: bool) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                interval: pacing.map_or(Duration::ZERO, |p| p.interval()),
                learns_windows,
                next_slot: Instant::now(),
                paused_until: None,
                in_flight: 0,
                window: None,
                window_length: pacing.map_or(Duration::from_secs(60), |p| p.per),
                limit: pacing.map_or(u64::MAX, |p| u64::from(p.requests)),
            }),
            news: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The server's current window of one scope, as its answers describe it.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When this window began (the previous reset), for telling late answers apart.
    started: Instant,
    /// When it resets: from the latest answer, or estimated one window length after
    /// the previous reset until an answer says.
    resets_at: Instant,
    /// Requests this process may still send in it.
    left: u64,
}

#[derive(Debug)]
struct BudgetState {
    /// Even spacing while no window is known.
    interval: Duration,
    /// Whether answers' windows replace the even spacing (per-endpoint budgets).
    learns_windows: bool,
    next_slot: Instant,
    /// A 429 or an exhausted window stops this budget until then.
    paused_until: Option<Instant>,
    /// Requests sent and not yet answered.
    in_flight: u64,
    /// The server's window, once an answer has described one.
    window: Option<Window>,
    /// The longest window seen (the configured `per` to begin with).
    window_length: Duration,
    /// Requests per window (`X-RateLimit-Limit` once seen).
    limit: u64,
}

impl BudgetState {
    /// Takes a place for a request at `now`, or says until when to wait (an answer
    /// arriving meanwhile may allow more).
    fn take(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Some(until);
        }
        self.paused_until = None;
        match &mut self.window {
            None => {
                if self.next_slot > now {
                    return Some(self.next_slot);
                }
                self.next_slot = now + self.interval;
            }
            Some(window) => {
                if window.resets_at <= now {
                    // Answers to requests still in flight may count in the new window.
                    *window = Window {
                        started: window.resets_at,
                        resets_at: window.resets_at + self.window_length,
                        left: self.limit.saturating_sub(self.in_flight),
                    };
                }
                if window.left == 0 {
                    return Some(window.resets_at);
                }
                window.left -= 1;
            }
        }
        self.in_flight += 1;
        None
    }

    /// Learns from one answer, received at `now`, to a request still counted in flight.
    fn learn(&mut self, headers: &RateLimitHeaders, rate_limited: bool, now: Instant) {
        let exhausted = rate_limited || headers.remaining == Some(0);
        if let Some(until) = headers
            .wait()
            .filter(|_| exhausted)
            .and_then(|wait| now.checked_add(wait))
        {
            if self.paused_until.is_none_or(|current| current < until) {
                tracing::debug!(
                    wait_ms = (until - now).as_millis() as u64,
                    "rate limit exhausted; pausing this scope until the reset"
                );
                self.paused_until = Some(until);
            }
        }
        if !self.learns_windows {
            return;
        }
        let (Some(remaining), Some(reset)) = (headers.remaining, headers.reset) else {
            return;
        };
        let Some(resets_at) = now.checked_add(reset) else {
            return;
        };
        if let Some(limit) = headers.limit.filter(|limit| *limit > 0) {
            self.limit = limit;
        }
        self.window_length = self.window_length.max(reset);
        let remaining = if rate_limited { 0 } else { remaining };
        // Besides this request, the others in flight may not be counted yet.
        let unanswered = self.in_flight.saturating_sub(1);
        let tolerance = self.window_length / 4;
        self.window = Some(match self.window {
            // A late answer, counted in a window that has ended: nothing to learn.
            Some(ours) if resets_at <= ours.started + tolerance => return,
            // Our window, more precisely: never more than the server says is left.
            Some(ours) if resets_at <= ours.resets_at + tolerance => Window {
                resets_at,
                left: ours.left.min(remaining),
                ..ours
            },
            // The first window described, or a later one than we thought.
            _ => Window {
                started: resets_at.checked_sub(self.window_length).unwrap_or(now),
                resets_at,
                left: remaining.saturating_sub(unanswered),
            },
        });
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

    const PROJECT: &str = "GET /v1/projects/{ref}";
    const CREATE: &str = "POST /v1/projects";

    fn window(limit: u64, remaining: u64, reset_ms: u64) -> RateLimitHeaders {
        RateLimitHeaders {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(Duration::from_millis(reset_ms)),
            retry_after: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn before_any_answer_requests_are_spread_and_shared_by_clones() {
        let pacer = Pacer::new(Some(Pacing::new(10, Duration::from_secs(1))));
        let clone = pacer.clone();
        let start = Instant::now();
        for _ in 0..5 {
            drop(pacer.acquire(PROJECT).await);
            drop(clone.acquire(PROJECT).await);
        }
        // 10 requests, the first at once, then every 100 ms.
        assert_eq!(start.elapsed(), Duration::from_millis(900));
    }

    #[tokio::test(start_paused = true)]
    async fn each_endpoint_scope_has_its_own_budget() {
        let pacer = Pacer::new(Some(Pacing::new(2, Duration::from_secs(1))));
        let start = Instant::now();
        for _ in 0..3 {
            drop(pacer.acquire(PROJECT).await);
        }
        let polled = start.elapsed();
        let other = Instant::now();
        drop(pacer.acquire(CREATE).await);
        assert_eq!(polled, Duration::from_secs(1));
        assert_eq!(
            other.elapsed(),
            Duration::ZERO,
            "another scope does not wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_endless_window_is_capped_instead_of_overflowing_the_clock() {
        let pacer = Pacer::new(Some(Pacing::new(1, Duration::MAX)));
        let start = Instant::now();
        drop(pacer.acquire(PROJECT).await);
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(start.elapsed(), LONGEST_WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn global_pacing_spreads_every_scope_together() {
        let pacer = Pacer::new(Some(Pacing::global(2, Duration::from_secs(1))));
        let start = Instant::now();
        drop(pacer.acquire(PROJECT).await);
        drop(pacer.acquire(CREATE).await);
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_described_window_is_spent_at_once_then_waited_out() {
        let pacer = Pacer::new(Some(Pacing::new(10, Duration::from_secs(1))));
        let start = Instant::now();
        let first = pacer.acquire(PROJECT).await;
        pacer.observe(&first, &window(10, 3, 400), false);
        drop(first);
        for _ in 0..3 {
            drop(pacer.acquire(PROJECT).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "what is left goes at once");
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(400),
            "then the reset"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_window_allows_the_limit_minus_what_is_still_in_flight() {
        let pacer = Pacer::new(Some(Pacing::new(4, Duration::from_secs(1))));
        let first = pacer.acquire(PROJECT).await;
        pacer.observe(&first, &window(4, 1, 200), false);
        drop(first);
        let _in_flight = pacer.acquire(PROJECT).await;
        let start = Instant::now();
        for _ in 0..3 {
            drop(pacer.acquire(PROJECT).await);
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        let next = Instant::now();
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(
            next.elapsed(),
            Duration::from_secs(1),
            "the request in flight may count in the new window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_from_an_ended_window_teaches_nothing() {
        let pacer = Pacer::new(Some(Pacing::new(4, Duration::from_secs(1))));
        let first = pacer.acquire(PROJECT).await;
        let late = pacer.acquire(PROJECT).await;
        pacer.observe(&first, &window(4, 2, 100), false);
        drop(first);
        tokio::time::sleep(Duration::from_millis(150)).await;
        drop(pacer.acquire(PROJECT).await);
        // Counted just before the reset that has since passed.
        pacer.observe(&late, &window(4, 0, 0), false);
        drop(late);
        let start = Instant::now();
        for _ in 0..2 {
            drop(pacer.acquire(PROJECT).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_only_its_scope_for_the_retry_after() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        let limited = pacer.acquire(PROJECT).await;
        let retry_after = RateLimitHeaders {
            retry_after: Some(Duration::from_secs(3)),
            ..RateLimitHeaders::default()
        };
        pacer.observe(&limited, &retry_after, true);
        drop(limited);
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
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
        let permit = pacer.acquire(PROJECT).await;
        pacer.observe(&permit, &exhausted, false);
        drop(permit);
        let permit = pacer.acquire(PROJECT).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));

        let plenty = RateLimitHeaders {
            remaining: Some(5),
            ..exhausted
        };
        pacer.observe(&permit, &plenty, false);
        drop(permit);
        let before = Instant::now();
        drop(pacer.acquire(PROJECT).await);
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
