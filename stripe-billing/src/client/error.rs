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

    /// The HTTP status of Stripe's answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(error) => Some(error.status),
            Self::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether sending the same request again later may succeed (the client has
    /// already retried as far as its retry policy allows).
    pub fn is_transient(&self) -> bool {
        classify(self) != RetryDecision::GiveUp
    }
}

impl From<StripeError> for BackendError {
    fn from(error: StripeError) -> Self {
        if error.is_transient() {
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
