//! Subscriptions: read the truth back from Stripe, cancel at the end of the period
//! or at once.

use super::error::StripeError;
use super::form::Form;
use super::idempotency::IdempotencyKey;
use super::ids::{check_id, object_path};
use super::stripe_client::StripeClient;
use crate::{List, Subscription, MAX_PAGE_LIMIT};

impl StripeClient {
    /// Reads a subscription (`GET /v1/subscriptions/{id}`): the truth to fall back on
    /// when webhook events arrive out of order.
    pub async fn retrieve_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Subscription, StripeError> {
        let path = object_path("/v1/subscriptions", "subscription", subscription_id)?;
        self.get(&path, "subscription").await
    }

    /// Every subscription of a customer, whatever its status, in Stripe's order
    /// (newest first; `GET /v1/subscriptions?customer=…&status=all&limit=100`, paged
    /// with `starting_after` until `has_more` is unset). Cancelled subscriptions are included, which the
    /// endpoint leaves out without `status=all`.
    pub async fn list_customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, StripeError> {
        check_id("customer", customer_id)?;
        let mut subscriptions = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let query = Form::new()
                .field("customer", customer_id)
                .field("status", "all")
                .field("limit", u32::from(MAX_PAGE_LIMIT))
                .optional("starting_after", after.as_deref());
            let page: List<Subscription> = self
                .get_query("/v1/subscriptions", &query, "list of subscriptions")
                .await?;
            let last = page.data.last().map(|s| s.id.clone());
            subscriptions.extend(page.data);
            match last {
                Some(last) if page.has_more => after = Some(last),
                _ => return Ok(subscriptions),
            }
        }
    }

    /// Cancels a subscription at the end of its current period
    /// (`POST /v1/subscriptions/{id}` with `cancel_at_period_end=true`); access
    /// continues until then. Without an explicit key, the idempotency key is derived
    /// from the subscription id, so a second cancellation within 24 hours (after the
    /// customer resumed) would get the first answer back: pass a key per user action
    /// where that can happen.
    pub async fn cancel_subscription_at_period_end(
        &self,
        subscription_id: &str,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<Subscription, StripeError> {
        let path = object_path("/v1/subscriptions", "subscription", subscription_id)?;
        let form = Form::new().field("cancel_at_period_end", true);
        let key = IdempotencyKey::or_derive(
            idempotency_key.as_ref(),
            "subscription.cancel_at_period_end",
            subscription_id,
            &form,
        );
        self.post(&path, &form, &key, "subscription").await
    }

    /// Cancels a subscription at once (`DELETE /v1/subscriptions/{id}`): Stripe
    /// answers with the subscription, its status `canceled`, and bills nothing more
    /// for it (pending invoice items are still charged at the end of the period).
    /// A subscription that is already cancelled cannot be cancelled again: Stripe
    /// answers 4xx, so read it with [`retrieve_subscription`](Self::retrieve_subscription)
    /// to tell that case apart.
    pub async fn cancel_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Subscription, StripeError> {
        let path = object_path("/v1/subscriptions", "subscription", subscription_id)?;
        self.delete(&path, "subscription").await
    }
}
