use serde::Deserialize;
use time::OffsetDateTime;

use super::common::{expandable_id, expandable_id_opt, null_as_default, List, Metadata, Price};

tenancy_core::open_enum! {
    /// A subscription's `status`.
    pub enum SubscriptionStatus {
        /// In a free trial.
        Trialing => "trialing",
        /// Paid and in good standing.
        Active => "active",
        /// The latest payment failed; Stripe is retrying.
        PastDue => "past_due",
        /// Cancelled (terminal).
        Canceled => "canceled",
        /// Payment retries are exhausted and the invoice stays unpaid.
        Unpaid => "unpaid",
        /// The first payment has not succeeded yet.
        Incomplete => "incomplete",
        /// The first payment never succeeded within 23 hours (terminal).
        IncompleteExpired => "incomplete_expired",
        /// Paused (a trial ended without a payment method).
        Paused => "paused",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// A Stripe subscription (`object: "subscription"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Subscription {
    /// The subscription id (`sub_…`).
    pub id: String,
    /// The customer id (`cus_…`).
    #[serde(deserialize_with = "expandable_id")]
    pub customer: String,
    /// The status.
    pub status: SubscriptionStatus,
    /// When the subscription was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// When the trial started, if it had one.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub trial_start: Option<OffsetDateTime>,
    /// When the trial ends (or ended), if it has one.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub trial_end: Option<OffsetDateTime>,
    /// When the subscription is scheduled to be cancelled.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub cancel_at: Option<OffsetDateTime>,
    /// Whether it cancels at the end of the current period.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cancel_at_period_end: bool,
    /// When it was cancelled (or the cancellation was requested).
    #[serde(default, with = "time::serde::timestamp::option")]
    pub canceled_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// The items (one per price).
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: List<SubscriptionItem>,
    /// The latest invoice id.
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub latest_invoice: Option<String>,
    /// The integration's metadata (this crate reads `tenant_id`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    /// Whether it exists in live mode.
    #[serde(default)]
    pub livemode: bool,
}

/// One item of a subscription: a price and a quantity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionItem {
    /// The item id (`si_…`).
    pub id: String,
    /// The price.
    pub price: Price,
    /// The quantity.
    #[serde(default)]
    pub quantity: Option<u64>,
    /// The start of the item's current billing period.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub current_period_start: Option<OffsetDateTime>,
    /// The end of the item's current billing period.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub current_period_end: Option<OffsetDateTime>,
}

impl Subscription {
    /// The price ids of the items, in order.
    pub fn price_ids(&self) -> impl Iterator<Item = &str> {
        self.items.data.iter().map(|item| item.price.id.as_str())
    }

    /// Whether Stripe will never bill this subscription again (`canceled`, or
    /// `incomplete_expired`).
    pub fn has_ended(&self) -> bool {
        matches!(
            self.status,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }

    /// The latest end of the items' current billing periods.
    pub fn current_period_end(&self) -> Option<OffsetDateTime> {
        self.items
            .data
            .iter()
            .filter_map(|item| item.current_period_end)
            .max()
    }
}
