use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{BackendError, TenantId};

/// Starts a new tenant's billing (its trial, say) when onboarding reaches that step;
/// `stripe_billing::BillingProcessor` implements it.
///
/// Implementations **must be idempotent per tenant**: onboarding may run the step
/// again after a crash, and a tenant whose billing already started keeps it as it is.
#[async_trait]
pub trait BillingStarter: Send + Sync {
    /// Starts `tenant`'s billing at `now`, or does nothing if it has started.
    async fn start_billing(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<(), BackendError>;
}

/// Ends a tenant's billing when it is offboarded: cancels its subscription at once if
/// it is still live, and moves its billing state to cancelled;
/// `stripe_billing::SubscriptionCancellation` implements it.
///
/// Implementations **must be idempotent per tenant**: offboarding may run the step
/// again after a crash, and a tenant whose billing already ended (or never started)
/// is left as it is.
#[async_trait]
pub trait BillingCanceller: Send + Sync {
    /// Ends `tenant`'s billing at `now`, or does nothing if it has ended.
    async fn cancel_billing(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<(), BackendError>;
}
