//! The errors of the Stripe API client.

use std::fmt;
use std::time::Duration;

use tenancy_core::{BackendError, BoxError, RetryDecision};

use super::retry::classify;

/// What went wrong building a [`StripeClient`](super::StripeClient).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StripeConfigError {
    /// The secret key is missing, malformed or a publishable key.
    #[error(
        "the stripe secret key {0}; pass the secret (sk_…) or restricted (rk_…) key \
         from the Stripe dashboard, Developers → API keys"
    )]
    InvalidSecretKey(&'static str),
    /// The base URL is not an absolute http(s) URL.
    #[error(
        "the stripe base url {url:?} is not usable: {reason}; pass an absolute http(s) url \
         such as https://api.stripe.com"
    )]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The pinned API version cannot be sent as a header.
    #[error(
        "the stripe api version {0:?} is not a version string; pass a dated version such as \
         2025-03-31.basil, or leave the default"
    )]
    InvalidStripeVersion(String),
    /// The HTTP client could not be built (TLS initialisation failed).
    #[error("could not build the http client: {0}")]
    HttpClient(#[source] BoxError),
}

/// What went wrong calling Stripe.
///
/// Branch on the predicates, not on the variants: [`is_retryable`](Self::is_retryable),
/// [`is_timeout`](Self::is_timeout), [`is_rate_limited`](Self::is_rate_limited),
/// [`is_connect`](Self::is_connect), [`status`](Self::status) and
/// [`retry_after`](Self::retry_after) are the stable way to tell errors apart (the same
/// set as `supabase_mgmt::ManagementError`'s), while the enum is `#[non_exhaustive]`
/// and its variants may be split or gain fields. [`api_error`](Self::api_error) gives
/// Stripe's own error object when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StripeError {
    /// A request parameter was refused before anything was sent.
    #[error("invalid {param}: {reason}")]
    InvalidParameter {
        /// The parameter, named as in Stripe's API.
        param: &'static str,
        /// Why it was refused and what is expected.
        reason: String,
    },
    /// Stripe answered with its error object.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// Stripe (or something in front of it) answered an error status without a
    /// Stripe error object.
    #[error(
        "stripe answered http {status} without an error object: {excerpt:?}; \
         check the base url, or try again later if the status is 5xx"
    )]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        excerpt: String,
        /// Stripe's `Stripe-Should-Retry` header, if sent.
        should_retry: Option<bool>,
        /// The `Retry-After` header, if sent.
        retry_after: Option<Duration>,
    },
    /// No answer within the client's timeout.
    #[error(
        "stripe did not answer {method} {path} within {timeout:?}; the request may have been \
         applied, so retry with the same idempotency key (the client does), or raise the timeout"
    )]
    Timeout {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The client's timeout.
        timeout: Duration,
    },
    /// The connection failed or broke before an answer was read.
    #[error(
        "could not reach stripe for {method} {path}: {source}; check network access \
         and the base url"
    )]
    Transport {
        /// The HTTP method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The object exists only as a deleted stub (deleted in the dashboard or the API).
    #[error("stripe {object} {id} was deleted; create a new one and store its id for the tenant")]
    Deleted {
        /// The object type.
        object: &'static str,
        /// Its id.
        id: String,
    },
    /// A success answer whose body is not the expected object.
    #[error(
        "stripe answered {path} with a body that is not a {expected} object: {source}; \
         check that the client's Stripe-Version matches the types of this crate"
    )]
    Decode {
        /// The request path.
        path: String,
        /// The object type expected.
        expected: &'static str,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
}

impl StripeError {
    pub(crate) fn invalid(param: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            param,
            reason: reason.into(),
        }
    }

    /// Stripe's error object, when Stripe sent one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    /// The HTTP status of Stripe's answer, when Stripe (or something in front of it)
    /// answered; `None` when no answer was read or nothing was sent.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(error) => Some(error.status),
            Self::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether sending the same request again later may succeed: the client's retry
    /// classification (`Stripe-Should-Retry` when sent; otherwise 409, 429, 5xx,
    /// timeouts and broken connections). The client has already retried as far as
    /// its retry policy allows.
    pub fn is_retryable(&self) -> bool {
        classify(self) != RetryDecision::GiveUp
    }

    /// Whether Stripe did not answer within the client's timeout (the request may
    /// nevertheless have been applied).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether Stripe answered 429: too many requests, or a lock on the object held
    /// by a concurrent request (`lock_timeout`).
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// Whether the client could not reach Stripe at all (no connection was made, so
    /// the request was not sent).
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Transport { source, .. } => source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_connect),
            _ => false,
        }
    }

    /// How long Stripe asked to wait before trying again (`Retry-After`, when it sent
    /// one of at most 60 s).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(error) => error.retry_after,
            Self::UnexpectedResponse { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<StripeError> for BackendError {
    fn from(error: StripeError) -> Self {
        if error.is_retryable() {
            BackendError::transient(error)
        } else {
            BackendError::permanent(error)
        }
    }
}

tenancy_core::open_enum! {
    /// The `type` of a Stripe error object.
    pub enum ApiErrorType {
        /// `api_error`: a problem on Stripe's side (rare).
        Api => "api_error",
        /// `card_error`: the card cannot be charged; `decline_code` says why.
        Card => "card_error",
        /// `idempotency_error`: a key was reused with different parameters or another endpoint.
        Idempotency => "idempotency_error",
        /// `invalid_request_error`: invalid parameters, or the key has no access.
        InvalidRequest => "invalid_request_error",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// Stripe's error object (`{"error": {…}}`) with the answer's status and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The error's `type`.
    pub error_type: ApiErrorType,
    /// A short machine-readable `code` (`resource_missing`, `lock_timeout`, …).
    pub code: Option<String>,
    /// For card errors, the issuer's `decline_code`.
    pub decline_code: Option<String>,
    /// The human-readable `message`.
    pub message: Option<String>,
    /// The request parameter the error is about.
    pub param: Option<String>,
    /// The link to this request in the Stripe dashboard.
    pub request_log_url: Option<String>,
    /// The `Request-Id` header, to quote to Stripe support.
    pub request_id: Option<String>,
    /// The `Stripe-Should-Retry` header, if sent.
    pub should_retry: Option<bool>,
    /// The `Retry-After` header, if sent.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// What to do about this error.
    pub fn hint(&self) -> &'static str {
        match (self.status, &self.error_type) {
            (401, _) => "check the secret key (revoked, or test and live mode mixed up)",
            (403, _) => "the restricted key lacks a permission for this request; grant it in the dashboard",
            (404, _) => "the object does not exist in this account and mode; check the id and the key's mode",
            (429, _) => "stripe is rate limiting; the client backed off and retried, so send fewer requests",
            (_, ApiErrorType::Card) => "the card was declined; ask the customer for another payment method",
            (_, ApiErrorType::Idempotency) => {
                "an idempotency key was reused for a different request; use a new key for new parameters"
            }
            (_, ApiErrorType::InvalidRequest) => "fix the request parameter Stripe names",
            (status, _) if status >= 500 => "a problem on stripe's side; try again later",
            _ => "see the message and the request log",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stripe {} (http {}", self.error_type, self.status)?;
        for (label, value) in [
            ("code", &self.code),
            ("decline_code", &self.decline_code),
            ("param", &self.param),
        ] {
            if let Some(value) = value {
                write!(f, ", {label} {value}")?;
            }
        }
        let message = self.message.as_deref().unwrap_or("no message");
        write!(f, "): {message}; {}", self.hint())?;
        match (&self.request_log_url, &self.request_id) {
            (Some(url), _) => write!(f, " (request log: {url})"),
            (None, Some(id)) => write!(f, " (request id {id})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The predicates of one error, in one value, so a test states them all at once.
    #[derive(Debug, PartialEq, Eq)]
    struct Predicates {
        retryable: bool,
        timeout: bool,
        rate_limited: bool,
        connect: bool,
        status: Option<u16>,
        retry_after: Option<Duration>,
    }

    fn predicates(error: &StripeError) -> Predicates {
        Predicates {
            retryable: error.is_retryable(),
            timeout: error.is_timeout(),
            rate_limited: error.is_rate_limited(),
            connect: error.is_connect(),
            status: error.status(),
            retry_after: error.retry_after(),
        }
    }

    const NONE: Predicates = Predicates {
        retryable: false,
        timeout: false,
        rate_limited: false,
        connect: false,
        status: None,
        retry_after: None,
    };

    fn api(status: u16, should_retry: Option<bool>, retry_after: Option<Duration>) -> StripeError {
        StripeError::Api(Box::new(ApiError {
            status,
            error_type: ApiErrorType::InvalidRequest,
            code: None,
            decline_code: None,
            message: None,
            param: None,
            request_log_url: None,
            request_id: None,
            should_retry,
            retry_after,
        }))
    }

    fn transport(source: BoxError) -> StripeError {
        StripeError::Transport {
            method: "GET",
            path: "/v1/customers/cus_1".into(),
            source,
        }
    }

    #[test]
    fn a_rate_limit_is_retryable_and_carries_the_servers_wait() {
        let wait = Some(Duration::from_millis(1500));
        assert_eq!(
            predicates(&api(429, None, wait)),
            Predicates {
                retryable: true,
                rate_limited: true,
                status: Some(429),
                retry_after: wait,
                ..NONE
            }
        );
        // Stripe-Should-Retry: false wins, yet it is still a rate limit.
        assert_eq!(
            predicates(&api(429, Some(false), None)),
            Predicates {
                rate_limited: true,
                status: Some(429),
                ..NONE
            }
        );
    }

    #[test]
    fn client_errors_are_final_and_server_errors_retryable() {
        assert_eq!(
            predicates(&api(404, None, None)),
            Predicates {
                status: Some(404),
                ..NONE
            }
        );
        assert_eq!(
            predicates(&api(500, None, None)),
            Predicates {
                retryable: true,
                status: Some(500),
                ..NONE
            }
        );
        let html = StripeError::UnexpectedResponse {
            status: 503,
            excerpt: "<html>".into(),
            should_retry: None,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            predicates(&html),
            Predicates {
                retryable: true,
                status: Some(503),
                retry_after: Some(Duration::from_secs(2)),
                ..NONE
            }
        );
    }

    #[test]
    fn a_timeout_is_retryable_without_a_status() {
        let error = StripeError::Timeout {
            method: "POST",
            path: "/v1/customers".into(),
            timeout: Duration::from_secs(80),
        };
        assert_eq!(
            predicates(&error),
            Predicates {
                retryable: true,
                timeout: true,
                ..NONE
            }
        );
    }

    #[test]
    fn a_broken_connection_is_retryable_but_not_a_connect_failure() {
        let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert_eq!(
            predicates(&transport(Box::new(broken))),
            Predicates {
                retryable: true,
                ..NONE
            }
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_failure() {
        // A port that was just free: nothing listens there, so the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        assert_eq!(
            predicates(&transport(refused.into())),
            Predicates {
                retryable: true,
                connect: true,
                ..NONE
            }
        );
    }

    #[test]
    fn refused_parameters_deleted_objects_and_undecodable_bodies_match_no_predicate() {
        let decode = StripeError::Decode {
            path: "/v1/customers".into(),
            expected: "customer",
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        let deleted = StripeError::Deleted {
            object: "customer",
            id: "cus_1".into(),
        };
        for error in [StripeError::invalid("price", "empty"), deleted, decode] {
            assert_eq!(predicates(&error), NONE, "{error:?}");
        }
    }
}
