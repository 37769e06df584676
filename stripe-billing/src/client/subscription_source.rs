//! The client as the webhook processor's source of truth for subscriptions.

use async_trait::async_trait;
use tenancy_core::BackendError;

use super::stripe_client::StripeClient;
use crate::{Subscription, SubscriptionSource};

/// Lets a [`BillingProcessor`](crate::BillingProcessor) re-read a subscription
/// through [`StripeClient::retrieve_subscription`] when events arrive out of order.
/// Errors keep the [`StripeError`](super::StripeError) (reach it with
/// [`BackendError::downcast_ref`]) and say whether a later try may pass.
#[async_trait]
impl SubscriptionSource for StripeClient {
    async fn subscription(&self, subscription_id: &str) -> Result<Subscription, BackendError> {
        Ok(self.retrieve_subscription(subscription_id).await?)
    }
}
