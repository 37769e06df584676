//! Verifying Stripe webhook signatures.

mod error;
mod header;
mod verifier;

pub use error::{HeaderError, WebhookError};
pub use header::{SignatureHeader, MAX_SIGNATURES};
pub use verifier::{sign, WebhookVerifier, WebhookVerifierBuilder, DEFAULT_TOLERANCE};
