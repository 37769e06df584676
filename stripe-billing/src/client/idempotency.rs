//! `Idempotency-Key` values: given by the caller or derived from the request.

use std::fmt;

use sha2::{Digest, Sha256};

use super::error::StripeError;
use super::form::Form;

/// The longest key Stripe accepts.
const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` sent with a mutating request. Stripe answers a repeated key
/// (for 24 hours) with the first answer instead of acting twice.
///
/// Every mutating call of [`StripeClient`](super::StripeClient) sends one: the caller's,
/// or one derived from the operation, the tenant (or object) and the request body, so a
/// retry — in this process or after a restart — never creates a second customer or
/// session. A derived key also makes an *identical* request within 24 hours return the
/// first answer; where a user may legitimately repeat an action (opening the billing
/// portal again, a new Checkout after an expired one), pass a key per user action.
///
/// ```
/// use stripe_billing::IdempotencyKey;
///
/// let a = IdempotencyKey::derive("checkout.session.create", &["acme", "click-42"]);
/// let b = IdempotencyKey::derive("checkout.session.create", &["acme", "click-42"]);
/// assert_eq!(a, b);
/// assert_eq!(a.as_str().len(), 64);
/// assert!(IdempotencyKey::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A caller-chosen key: 1 to 255 visible ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<Self, StripeError> {
        let key = key.into();
        let reason = if key.is_empty() {
            "is empty"
        } else if key.len() > MAX_KEY_LEN {
            "is longer than 255 characters"
        } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
            "has characters other than visible ascii"
        } else {
            return Ok(Self(key));
        };
        Err(StripeError::invalid(
            "idempotency_key",
            format!("the key {reason}; use 1 to 255 visible ascii characters, e.g. a uuid"),
        ))
    }

    /// A key derived from an operation name and the values that make the request
    /// unique: the SHA-256 (hex) of them all, each length-prefixed so that no two
    /// different lists give the same input.
    pub fn derive(operation: &str, parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in std::iter::once(&operation).chain(parts) {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        Self(hex::encode(hasher.finalize()))
    }

    /// The caller's key, or one derived from the operation, its scope (the tenant or
    /// object it acts on) and the encoded body.
    pub(crate) fn or_derive(
        explicit: Option<&Self>,
        operation: &str,
        scope: &str,
        form: &Form,
    ) -> Self {
        match explicit {
            Some(key) => key.clone(),
            None => Self::derive(operation, &[scope, &form.encode()]),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_depends_on_every_part_and_their_boundaries() {
        let base = IdempotencyKey::derive("customer.create", &["acme", "email=a"]);
        assert_ne!(
            base,
            IdempotencyKey::derive("customer.create", &["acme", "email=b"])
        );
        assert_ne!(
            base,
            IdempotencyKey::derive("customer.create", &["acmee", "mail=a"])
        );
        assert_ne!(
            base,
            IdempotencyKey::derive("checkout.session.create", &["acme", "email=a"])
        );
        assert!(base.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn caller_keys_are_checked() {
        assert_eq!(
            IdempotencyKey::new("order-42").unwrap().as_str(),
            "order-42"
        );
        for bad in [String::new(), "a b".into(), "é".into(), "k".repeat(256)] {
            let error = IdempotencyKey::new(bad.clone()).unwrap_err();
            assert!(
                matches!(
                    error,
                    StripeError::InvalidParameter {
                        param: "idempotency_key",
                        ..
                    }
                ),
                "{bad:?}: {error}"
            );
        }
        assert!(IdempotencyKey::new("k".repeat(255)).is_ok());
    }
}
