//! Reading Stripe's answers: the headers that steer retries and the error object.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;

use super::error::{ApiError, ApiErrorType, StripeError};

/// How much of an unexpected body an error keeps.
const EXCERPT_CHARS: usize = 200;

/// The response headers the client acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseHeaders {
    pub(crate) should_retry: Option<bool>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) request_id: Option<String>,
}

impl ResponseHeaders {
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        Self {
            should_retry: text("stripe-should-retry").and_then(parse_should_retry),
            retry_after: text("retry-after").and_then(parse_retry_after),
            request_id: text("request-id").map(str::to_owned),
        }
    }
}

fn parse_should_retry(value: &str) -> Option<bool> {
    match value.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The longest `Retry-After` honoured, as Stripe's own libraries do (stripe-node's
/// `MAX_RETRY_AFTER_WAIT`); a longer one leaves the wait to the retry policy.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `Retry-After` in seconds (whole or fractional), up to [`MAX_RETRY_AFTER`]; an HTTP
/// date, garbage or a longer wait is ignored and the policy's own backoff applies.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|delay| *delay <= MAX_RETRY_AFTER)
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(rename = "type")]
    error_type: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    param: Option<String>,
    request_log_url: Option<String>,
}

/// The error for a non-success answer: Stripe's error object when the body is one.
pub(crate) fn error_from_response(
    status: u16,
    headers: ResponseHeaders,
    body: &str,
) -> StripeError {
    match serde_json::from_str::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope { error }) => StripeError::Api(Box::new(ApiError {
            status,
            error_type: ApiErrorType::from(error.error_type.as_deref().unwrap_or_default()),
            code: error.code,
            decline_code: error.decline_code,
            message: error.message,
            param: error.param,
            request_log_url: error.request_log_url,
            request_id: headers.request_id,
            should_retry: headers.should_retry,
            retry_after: headers.retry_after,
        })),
        Err(_) => StripeError::UnexpectedResponse {
            status,
            excerpt: body.chars().take(EXCERPT_CHARS).collect(),
            should_retry: headers.should_retry,
            retry_after: headers.retry_after,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_the_retry_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("Stripe-Should-Retry", HeaderValue::from_static("false"));
        headers.insert("Retry-After", HeaderValue::from_static("1.5"));
        headers.insert("Request-Id", HeaderValue::from_static("req_123"));
        let read = ResponseHeaders::read(&headers);
        assert_eq!(read.should_retry, Some(false));
        assert_eq!(read.retry_after, Some(Duration::from_millis(1500)));
        assert_eq!(read.request_id.as_deref(), Some("req_123"));
    }

    #[test]
    fn ignores_header_values_it_cannot_read() {
        let mut headers = HeaderMap::new();
        headers.insert("Stripe-Should-Retry", HeaderValue::from_static("maybe"));
        headers.insert(
            "Retry-After",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(ResponseHeaders::read(&headers), ResponseHeaders::default());
        for ignored in ["-3", "61", "1e300", "NaN"] {
            headers.insert("Retry-After", HeaderValue::from_static(ignored));
            assert_eq!(
                ResponseHeaders::read(&headers).retry_after,
                None,
                "{ignored}"
            );
        }
        headers.insert("Retry-After", HeaderValue::from_static("60"));
        assert_eq!(
            ResponseHeaders::read(&headers).retry_after,
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn a_body_without_an_error_object_keeps_an_excerpt() {
        let body = "<html>".repeat(100);
        let error = error_from_response(502, ResponseHeaders::default(), &body);
        let StripeError::UnexpectedResponse {
            status, excerpt, ..
        } = error
        else {
            panic!("{error:?}");
        };
        assert_eq!((status, excerpt.chars().count()), (502, EXCERPT_CHARS));
    }
}
