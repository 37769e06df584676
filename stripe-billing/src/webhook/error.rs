use time::Duration;

/// Why a `Stripe-Signature` header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header has no `t=` item.
    #[error("the header has no `t=<unix time>` item")]
    MissingTimestamp,
    /// The header has more than one `t=` item.
    #[error("the header has more than one `t=` item")]
    DuplicateTimestamp,
    /// The `t=` value is not a unix time in seconds.
    #[error("the timestamp `{0}` is not a unix time in seconds")]
    InvalidTimestamp(String),
    /// An item is not of the form `key=value`.
    #[error("item {position} is not of the form `key=value`")]
    NotKeyValue {
        /// The 0-based position of the item in the header.
        position: usize,
    },
    /// A `v1` value is not 64 hexadecimal digits (an HMAC-SHA256).
    #[error("the v1 signature at item {position} is not 64 hexadecimal digits")]
    InvalidSignature {
        /// The 0-based position of the item in the header.
        position: usize,
    },
    /// The header has more `v1` values than any real Stripe header.
    #[error("the header has more than {max} v1 signatures")]
    TooManySignatures {
        /// The most `v1` values accepted.
        max: usize,
    },
}

/// Why a webhook request was rejected (or a verifier could not be built).
///
/// Answer a request that fails with any of these with HTTP 400: Stripe retries it,
/// and a genuine event will verify once the configuration is fixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request has no `Stripe-Signature` header (or an empty one).
    #[error("the request has no Stripe-Signature header; is this request from Stripe?")]
    MissingHeader,
    /// The `Stripe-Signature` header is malformed.
    #[error("malformed Stripe-Signature header: {0}; pass the header value exactly as received")]
    MalformedHeader(#[from] HeaderError),
    /// The header has no `v1` signature (only `v0` or unknown schemes).
    #[error("the Stripe-Signature header has no v1 signature; only v1 (HMAC-SHA256) is accepted")]
    NoV1Signature,
    /// No `v1` signature matches the payload with any configured secret.
    #[error(
        "no signature matches the payload ({signatures} signature(s), {secrets} secret(s)); \
         pass the raw request body exactly as received (not parsed and re-serialized JSON) \
         and check that the webhook secret (whsec_…) is the endpoint's and has no surrounding whitespace"
    )]
    NoMatchingSignature {
        /// How many `v1` signatures the header carried.
        signatures: usize,
        /// How many secrets were tried.
        secrets: usize,
    },
    /// The signed timestamp is further from now than the tolerance (a replay or a skewed clock).
    #[error(
        "the signed timestamp {timestamp} is {}s {} (tolerance {}s); \
         check the server clock, or this may be a replayed request",
        skew.whole_seconds().unsigned_abs(),
        if skew.is_negative() { "in the future" } else { "old" },
        tolerance.whole_seconds()
    )]
    TimestampOutsideTolerance {
        /// The header's timestamp (unix seconds).
        timestamp: i64,
        /// How old the timestamp is (negative: in the future).
        skew: Duration,
        /// The configured tolerance.
        tolerance: Duration,
    },
    /// The verified body is not JSON (or not UTF-8).
    #[error("the body is not valid JSON: {0}; pass the raw request body as received, not a re-encoded copy")]
    BodyNotJson(#[source] serde_json::Error),
    /// The verified body is JSON but not a Stripe event (or a known event whose object does not match).
    #[error("the body is JSON but not a Stripe event: {0}; check that only Stripe event deliveries reach this endpoint")]
    NotAnEvent(#[source] serde_json::Error),
    /// A configured secret is empty or blank.
    #[error("webhook secret #{index} is empty; copy the endpoint's signing secret (whsec_…) from the Stripe dashboard")]
    EmptySecret {
        /// The 0-based position of the secret.
        index: usize,
    },
    /// The verifier was built without any secret.
    #[error("no webhook secret configured; add the endpoint's signing secret (whsec_…)")]
    NoSecret,
}

impl WebhookError {
    /// Classifies an error from decoding `body` as an event: JSON that is not an event,
    /// or not JSON at all. Some shape errors surface as syntax errors (a struct read
    /// from a longer array), so those are told apart by checking the syntax alone.
    pub(crate) fn from_json(error: serde_json::Error, body: &[u8]) -> Self {
        let is_json = error.classify() == serde_json::error::Category::Data
            || (std::str::from_utf8(body).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok());
        if is_json {
            Self::NotAnEvent(error)
        } else {
            Self::BodyNotJson(error)
        }
    }
}
