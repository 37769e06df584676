//! Ending a tenant's billing when it is offboarded: the subscription cancelled at
//! Stripe at once, the billing state moved to cancelled through the state machine.

use std::sync::Arc;

use async_trait::async_trait;
use tenancy_core::{BackendError, BillingCanceller, TenantId};
use time::OffsetDateTime;

use crate::processor::state_update;
use crate::{
    transition, BillingEvent, BillingEventKind, BillingPhase, BillingProcessor, LifecycleInput,
    StoreError, Subscription, SubscriptionSnapshot,
};

/// Cancels a subscription at Stripe at once; `StripeClient` implements it with
/// `DELETE /v1/subscriptions/{id}`.
#[async_trait]
pub trait SubscriptionCanceller: Send + Sync + std::fmt::Debug {
    /// Cancels the subscription now and returns Stripe's copy (status `canceled`).
    /// A subscription that had already ended is returned as Stripe has it.
    async fn cancel_now(&self, subscription_id: &str) -> Result<Subscription, BackendError>;
}

/// Ends tenants' billing for [`tenancy_core::Offboarding`]: cancels the tenant's
/// subscription at Stripe if it is still live, then applies the cancellation to the
/// billing state through the state machine, in one store transaction, with its
/// effects (modules off, the "cancelled" notice) queued in the outbox.
///
/// A tenant with no subscription (still in its trial) has its billing closed
/// ([`BillingEventKind::Closed`]); one already cancelled, or with no billing state,
/// is left as it is. Stripe's `customer.subscription.deleted` webhook that follows
/// changes nothing more.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use stripe_billing::*;
/// # fn wire(processor: BillingProcessor, client: StripeClient) {
/// let cancellation = SubscriptionCancellation::new(processor).with_stripe(Arc::new(client));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SubscriptionCancellation {
    processor: BillingProcessor,
    stripe: Option<Arc<dyn SubscriptionCanceller>>,
}

/// Why a tenant's billing could not be ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancellationError {
    /// The tenant has a subscription, and no Stripe client was given to cancel it.
    #[error("tenant `{tenant}` has subscription {subscription_id} at Stripe, and no Stripe client is configured to cancel it; set STRIPE_SECRET_KEY (SubscriptionCancellation::with_stripe), or cancel it in the Stripe dashboard and run offboarding again")]
    NoStripeClient {
        /// The tenant.
        tenant: TenantId,
        /// Its subscription.
        subscription_id: String,
    },
    /// Stripe still reports the subscription live after the cancellation.
    #[error("Stripe still reports subscription {subscription_id} as {status} after cancelling it; check it in the Stripe dashboard and run offboarding again")]
    StillLive {
        /// The subscription.
        subscription_id: String,
        /// Its status at Stripe.
        status: String,
    },
}

impl SubscriptionCancellation {
    /// Ends billing in `processor`'s store; without [`with_stripe`](Self::with_stripe)
    /// only tenants without a subscription can be cancelled.
    pub fn new(processor: BillingProcessor) -> Self {
        Self {
            processor,
            stripe: None,
        }
    }

    /// Cancels subscriptions at Stripe through `stripe`.
    pub fn with_stripe(mut self, stripe: Arc<dyn SubscriptionCanceller>) -> Self {
        self.stripe = Some(stripe);
        self
    }

    /// Ends `tenant`'s billing at `now`: what [`BillingCanceller::cancel_billing`]
    /// does, with this crate's errors.
    pub async fn cancel(&self, tenant: &TenantId, now: OffsetDateTime) -> Result<(), BackendError> {
        let state = self.processor.state(tenant).await.map_err(store_error)?;
        let Some(state) = state else {
            return Ok(()); // billing never started
        };
        if state.phase == BillingPhase::Cancelled {
            return Ok(());
        }
        let kind = match &state.subscription_id {
            None => BillingEventKind::Closed,
            Some(subscription_id) => {
                let stripe = self.stripe.as_ref().ok_or_else(|| {
                    BackendError::permanent(CancellationError::NoStripeClient {
                        tenant: tenant.clone(),
                        subscription_id: subscription_id.clone(),
                    })
                })?;
                let cancelled = stripe.cancel_now(subscription_id).await?;
                if !cancelled.has_ended() {
                    return Err(BackendError::transient(CancellationError::StillLive {
                        subscription_id: cancelled.id.clone(),
                        status: cancelled.status.to_string(),
                    }));
                }
                BillingEventKind::SubscriptionDeleted(SubscriptionSnapshot::from(&cancelled))
            }
        };
        self.apply(tenant, BillingEvent::new(now, kind))
            .await
            .map_err(store_error)
    }

    /// Applies `event` to the tenant's state through the state machine, in one store
    /// transaction with its effects.
    async fn apply(&self, tenant: &TenantId, event: BillingEvent) -> Result<(), StoreError> {
        let config = self.processor.config();
        let input = LifecycleInput::Event(event);
        self.processor
            .store()
            .transact(tenant, None, &mut |current| {
                let state = current?;
                let (new_state, effects) = transition(&state, &input, config);
                (new_state != state).then(|| state_update(new_state, effects, config))
            })
            .await?;
        tracing::info!(%tenant, "billing cancelled");
        Ok(())
    }
}

#[async_trait]
impl BillingCanceller for SubscriptionCancellation {
    async fn cancel_billing(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<(), BackendError> {
        self.cancel(tenant, now).await
    }
}

fn store_error(error: StoreError) -> BackendError {
    match error {
        error @ StoreError::Database(_) => BackendError::transient(error),
        error => BackendError::permanent(error),
    }
}
