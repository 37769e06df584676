//! The client as the processor's source of truth: subscriptions re-read when their
//! events arrive, and Stripe's record read back by reconciliation.

use async_trait::async_trait;
use tenancy_core::BackendError;

use super::stripe_client::StripeClient;
use crate::{EventSummary, List, ListEvents, StripeEvents, Subscription, SubscriptionSource};

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

/// Lets a [`Reconciler`](crate::Reconciler) read Stripe's events and a customer's
/// subscriptions through [`StripeClient::list_events`],
/// [`StripeClient::retrieve_event`] and
/// [`StripeClient::list_customer_subscriptions`], with the client's retry policy
/// (429s, `Stripe-Should-Retry` and `Retry-After` honoured). Errors keep the
/// [`StripeError`](super::StripeError), as above.
#[async_trait]
impl StripeEvents for StripeClient {
    async fn list_events(&self, query: &ListEvents) -> Result<List<EventSummary>, BackendError> {
        Ok(StripeClient::list_events(self, query).await?)
    }

    async fn event(&self, event_id: &str) -> Result<String, BackendError> {
        Ok(self.event_json(event_id).await?)
    }

    async fn customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, BackendError> {
        Ok(self.list_customer_subscriptions(customer_id).await?)
    }
}

/// Lets a [`SubscriptionCancellation`](crate::SubscriptionCancellation) cancel
/// subscriptions through [`StripeClient::cancel_subscription`]
/// (`DELETE /v1/subscriptions/{id}`). When Stripe refuses because the subscription
/// had already ended, the subscription is read back and returned as it is.
#[async_trait]
impl crate::SubscriptionCanceller for StripeClient {
    async fn cancel_now(&self, subscription_id: &str) -> Result<Subscription, BackendError> {
        match self.cancel_subscription(subscription_id).await {
            Ok(subscription) => Ok(subscription),
            Err(error) if error.status().is_some_and(|s| (400..500).contains(&s)) => {
                let current = self.retrieve_subscription(subscription_id).await?;
                if current.has_ended() {
                    Ok(current)
                } else {
                    Err(error.into())
                }
            }
            Err(error) => Err(error.into()),
        }
    }
}
