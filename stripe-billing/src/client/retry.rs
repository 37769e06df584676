//! Which failed attempts are worth another try: the classifier handed to
//! [`tenancy_core::RetryPolicy::run`].

use std::time::Duration;

use tenancy_core::RetryDecision;

use super::error::StripeError;

/// Stripe's `Stripe-Should-Retry` header decides when present; otherwise 409
/// (idempotency conflict), 429 (rate limit, lock timeout) and 5xx are retried, as are
/// timeouts and broken connections (every mutating request carries an idempotency
/// key, so a retry cannot apply it twice). Other 4xx and undecodable bodies are final.
/// A `Retry-After` header of up to 60 s sets the delay.
pub(crate) fn classify(error: &StripeError) -> RetryDecision {
    match error {
        StripeError::Timeout { .. } | StripeError::Transport { .. } => RetryDecision::Retry,
        StripeError::Api(api) => by_response(api.status, api.should_retry, api.retry_after),
        StripeError::UnexpectedResponse {
            status,
            should_retry,
            retry_after,
            ..
        } => by_response(*status, *should_retry, *retry_after),
        _ => RetryDecision::GiveUp,
    }
}

fn by_response(
    status: u16,
    should_retry: Option<bool>,
    retry_after: Option<Duration>,
) -> RetryDecision {
    let retry = should_retry.unwrap_or(matches!(status, 409 | 429 | 500..=599));
    match (retry, retry_after) {
        (false, _) => RetryDecision::GiveUp,
        (true, Some(delay)) => RetryDecision::RetryAfter(delay),
        (true, None) => RetryDecision::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripe_should_retry_header_wins_over_the_status() {
        assert_eq!(by_response(400, Some(true), None), RetryDecision::Retry);
        assert_eq!(by_response(500, Some(false), None), RetryDecision::GiveUp);
        assert_eq!(by_response(429, Some(false), None), RetryDecision::GiveUp);
    }

    #[test]
    fn without_the_header_conflicts_rate_limits_and_server_errors_are_retried() {
        for status in [409, 429, 500, 502, 503, 599] {
            assert_eq!(
                by_response(status, None, None),
                RetryDecision::Retry,
                "{status}"
            );
        }
        for status in [400, 401, 402, 403, 404, 422, 600] {
            assert_eq!(
                by_response(status, None, None),
                RetryDecision::GiveUp,
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_sets_the_delay_only_when_retrying() {
        let delay = Some(Duration::from_secs(2));
        assert_eq!(
            by_response(429, None, delay),
            RetryDecision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(by_response(400, None, delay), RetryDecision::GiveUp);
    }

    #[test]
    fn bad_parameters_are_never_retried() {
        assert_eq!(
            classify(&StripeError::invalid("price", "empty")),
            RetryDecision::GiveUp
        );
    }
}
