use async_trait::async_trait;
use tenancy_core::BackendError;

use crate::Subscription;

/// Where the processor can read a subscription's current state from Stripe, to act on
/// the truth rather than on an event that may be late (the API client implements it).
///
/// When a [`BillingProcessor`](crate::BillingProcessor) has a source, it re-reads the
/// subscription of every subscription event before applying it; if the read fails it
/// falls back to the event's own copy.
#[async_trait]
pub trait SubscriptionSource: Send + Sync + std::fmt::Debug {
    /// The subscription with id `subscription_id` as Stripe has it now.
    async fn subscription(&self, subscription_id: &str) -> Result<Subscription, BackendError>;
}
