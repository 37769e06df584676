use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenancy_core::{Clock, SecretString, SystemClock};
use time::{Duration, OffsetDateTime};

use super::header::SIGNATURE_LEN;
use super::{SignatureHeader, WebhookError};
use crate::Event;

type HmacSha256 = Hmac<Sha256>;

/// How far the signed timestamp may be from now, either way, by default (Stripe's own default).
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);

/// Verifies the `Stripe-Signature` header of a webhook request and decodes the event.
///
/// Every `v1` signature of the header is checked, in constant time, against every
/// configured secret, so verification keeps working while a secret is being rolled
/// (Stripe then signs with both). The signed timestamp must be within the tolerance
/// of the verifier's clock in both directions.
///
/// ```
/// use stripe_billing::{sign, WebhookVerifier};
/// use time::OffsetDateTime;
///
/// let verifier = WebhookVerifier::new("whsec_test_secret")?;
/// let body = br#"{"id":"evt_1","object":"event","type":"customer.created","created":1700000000,
///               "livemode":false,"api_version":null,"data":{"object":{}}}"#;
/// let now = OffsetDateTime::now_utc().unix_timestamp();
/// let header = sign(body, &"whsec_test_secret".into(), now);
///
/// let event = verifier.verify(body, Some(&header))?;
/// assert_eq!(event.id, "evt_1");
/// # Ok::<(), stripe_billing::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct WebhookVerifier {
    keys: Vec<HmacSha256>,
    tolerance: Duration,
    clock: Arc<dyn Clock>,
}

impl WebhookVerifier {
    /// A verifier for one secret with the default tolerance and the system clock.
    pub fn new(secret: impl Into<SecretString>) -> Result<Self, WebhookError> {
        Self::builder().secret(secret).build()
    }

    /// A builder, for several secrets, another tolerance or another clock.
    pub fn builder() -> WebhookVerifierBuilder {
        WebhookVerifierBuilder {
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(SystemClock),
        }
    }

    /// The configured tolerance.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies the request against the verifier's clock and decodes the event.
    ///
    /// `signature_header` is the `Stripe-Signature` header, `None` if the request has
    /// none; `payload` is the raw body exactly as received.
    pub fn verify(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<Event, WebhookError> {
        self.verify_at(payload, signature_header, self.clock.now())
    }

    /// [`verify`](Self::verify) against the time `now`.
    pub fn verify_at(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Event, WebhookError> {
        self.verify_signature_at(payload, signature_header, now)?;
        Event::from_slice(payload)
    }

    /// Checks the signature and timestamp only, against the verifier's clock, without decoding the body.
    pub fn verify_signature(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<(), WebhookError> {
        self.verify_signature_at(payload, signature_header, self.clock.now())
    }

    /// [`verify_signature`](Self::verify_signature) against the time `now`.
    pub fn verify_signature_at(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), WebhookError> {
        let header = signature_header
            .filter(|h| !h.trim().is_empty())
            .ok_or(WebhookError::MissingHeader)?;
        let header = SignatureHeader::parse(header)?;
        if header.signatures().is_empty() {
            return Err(WebhookError::NoV1Signature);
        }
        if !self.any_signature_matches(&header, payload) {
            return Err(WebhookError::NoMatchingSignature {
                signatures: header.signatures().len(),
                secrets: self.keys.len(),
            });
        }
        self.check_tolerance(header.timestamp(), now)
    }

    fn any_signature_matches(&self, header: &SignatureHeader, payload: &[u8]) -> bool {
        let mut matched = false;
        for key in &self.keys {
            // The keyed state is cloned, never re-keyed; the body is hashed in place,
            // once per secret, whatever the number of signatures.
            let tag = signed_message_mac(key.clone(), header.timestamp(), payload).finalize();
            let tag: [u8; SIGNATURE_LEN] = tag.into_bytes().into();
            for signature in header.signatures() {
                // Non-short-circuiting: every comparison runs, each in constant time.
                matched |= constant_time_eq(&tag, signature);
            }
        }
        matched
    }

    fn check_tolerance(&self, timestamp: i64, now: OffsetDateTime) -> Result<(), WebhookError> {
        let skew = Duration::seconds(now.unix_timestamp().saturating_sub(timestamp));
        if skew.abs() > self.tolerance {
            return Err(WebhookError::TimestampOutsideTolerance {
                timestamp,
                skew,
                tolerance: self.tolerance,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .field("clock", &self.clock)
            .finish()
    }
}

/// Builds a [`WebhookVerifier`]; reached through [`WebhookVerifier::builder`].
#[derive(Debug)]
#[must_use]
pub struct WebhookVerifierBuilder {
    secrets: Vec<SecretString>,
    tolerance: Duration,
    clock: Arc<dyn Clock>,
}

impl WebhookVerifierBuilder {
    /// Adds a signing secret (`whsec_…`). Add the old and the new one while rolling a secret.
    pub fn secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// How far the signed timestamp may be from now, in either direction (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance.abs();
        self
    }

    /// The clock to check timestamps against (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the verifier; fails on a blank secret or when no secret was given.
    pub fn build(self) -> Result<WebhookVerifier, WebhookError> {
        if self.secrets.is_empty() {
            return Err(WebhookError::NoSecret);
        }
        let keys = self
            .secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| keyed_mac(secret).ok_or(WebhookError::EmptySecret { index }))
            .collect::<Result<_, _>>()?;
        Ok(WebhookVerifier {
            keys,
            tolerance: self.tolerance,
            clock: self.clock,
        })
    }
}

fn keyed_mac(secret: &SecretString) -> Option<HmacSha256> {
    if secret.is_blank() {
        return None;
    }
    HmacSha256::new_from_slice(secret.expose_str().as_bytes()).ok()
}

/// Whether `a` equals `b`, in time independent of where they differ: every byte is
/// compared, the differences are accumulated without a branch, and the result is
/// hidden from the optimiser before it is looked at.
fn constant_time_eq(a: &[u8; SIGNATURE_LEN], b: &[u8; SIGNATURE_LEN]) -> bool {
    let mut difference = 0u8;
    for (x, y) in a.iter().zip(b) {
        difference |= x ^ y;
    }
    std::hint::black_box(difference) == 0
}

/// Feeds `"{timestamp}.{payload}"` to the MAC in pieces, without building the message.
#[inline]
fn signed_message_mac(mut mac: HmacSha256, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    let mut digits = [0u8; 20];
    mac.update(decimal(timestamp, &mut digits));
    mac.update(b".");
    mac.update(payload);
    mac
}

/// Writes `value` in decimal into `buffer`, returning the digits (a minus sign for negatives).
fn decimal(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut rest = value.unsigned_abs();
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// A valid `Stripe-Signature` header for `payload`, signed with `secret` at `timestamp`
/// (unix seconds): `t=<timestamp>,v1=<hex>`, as stripe-node's `generateTestHeaderString`
/// makes. For tests and for replaying events to a local endpoint.
///
/// ```
/// let header = stripe_billing::sign(b"{}", &"whsec_x".into(), 1_700_000_000);
/// assert!(header.starts_with("t=1700000000,v1="));
/// ```
pub fn sign(payload: &[u8], secret: &SecretString, timestamp: i64) -> String {
    let key = HmacSha256::new_from_slice(secret.expose_str().as_bytes());
    // HMAC accepts keys of any length, so this never fails.
    let signature = key
        .map(|key| {
            hex::encode(
                signed_message_mac(key, timestamp, payload)
                    .finalize()
                    .into_bytes(),
            )
        })
        .unwrap_or_default();
    format!("t={timestamp},v1={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_finds_a_difference_in_any_byte() {
        let tag = [7u8; SIGNATURE_LEN];
        assert!(constant_time_eq(&tag, &tag));
        for i in 0..SIGNATURE_LEN {
            let mut other = tag;
            other[i] ^= 0x80;
            assert!(!constant_time_eq(&tag, &other), "byte {i}");
        }
    }

    #[test]
    fn decimal_writes_every_i64() {
        let mut buffer = [0u8; 20];
        for value in [0, 7, 10, 1_700_000_000, i64::MAX, -1, i64::MIN] {
            assert_eq!(decimal(value, &mut buffer), value.to_string().as_bytes());
        }
    }
}
