use serde::Deserialize;
use time::OffsetDateTime;

use super::common::{expandable_id_opt, null_as_default, Metadata};

tenancy_core::open_enum! {
    /// An invoice's `status`.
    pub enum InvoiceStatus {
        /// Being prepared.
        Draft => "draft",
        /// Finalized, awaiting payment.
        Open => "open",
        /// Paid.
        Paid => "paid",
        /// Written off as uncollectible.
        Uncollectible => "uncollectible",
        /// Voided.
        Void => "void",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// When an invoice changed status (`status_transitions`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[non_exhaustive]
pub struct InvoiceStatusTransitions {
    /// When it was finalized.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub finalized_at: Option<OffsetDateTime>,
    /// When it was paid.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub paid_at: Option<OffsetDateTime>,
    /// When it was marked uncollectible.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub marked_uncollectible_at: Option<OffsetDateTime>,
    /// When it was voided.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub voided_at: Option<OffsetDateTime>,
}

/// The subscription an invoice bills (`parent.subscription_details`, API 2025-03-31 and later).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SubscriptionDetails {
    /// The subscription id.
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub subscription: Option<String>,
    /// The subscription's metadata when the invoice was made.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

/// What an invoice was made for (`parent`, API 2025-03-31 and later).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct InvoiceParent {
    /// Set when the invoice bills a subscription.
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
}

/// A Stripe invoice (`object: "invoice"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Invoice {
    /// The invoice id (`in_…`).
    pub id: String,
    /// The customer id (`cus_…`).
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub customer: Option<String>,
    /// The subscription id, as API versions before 2025-03-31 send it.
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub subscription: Option<String>,
    /// What the invoice was made for, as later API versions send it.
    #[serde(default)]
    pub parent: Option<InvoiceParent>,
    /// The status.
    #[serde(default)]
    pub status: Option<InvoiceStatus>,
    /// Why it was made (`subscription_create`, `subscription_cycle`, `manual` …).
    #[serde(default)]
    pub billing_reason: Option<String>,
    /// The amount due, in the currency's smallest unit.
    #[serde(default)]
    pub amount_due: i64,
    /// The amount paid, in the currency's smallest unit.
    #[serde(default)]
    pub amount_paid: i64,
    /// The three-letter ISO currency code.
    #[serde(default)]
    pub currency: Option<String>,
    /// How many payment attempts were made.
    #[serde(default)]
    pub attempt_count: u64,
    /// When Stripe tries again, if it will.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub next_payment_attempt: Option<OffsetDateTime>,
    /// The start of the billed period.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub period_start: Option<OffsetDateTime>,
    /// The end of the billed period.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub period_end: Option<OffsetDateTime>,
    /// When the invoice changed status.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_transitions: InvoiceStatusTransitions,
    /// When the invoice was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// The integration's metadata.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    /// Whether it exists in live mode.
    #[serde(default)]
    pub livemode: bool,
}

impl Invoice {
    /// The subscription the invoice bills, from either API shape
    /// (`parent.subscription_details.subscription`, else the older top-level `subscription`).
    pub fn subscription_id(&self) -> Option<&str> {
        self.subscription_details()
            .and_then(|details| details.subscription.as_deref())
            .or(self.subscription.as_deref())
    }

    /// The subscription's metadata as copied onto the invoice (later API versions only).
    pub fn subscription_metadata(&self) -> Option<&Metadata> {
        self.subscription_details().map(|details| &details.metadata)
    }

    fn subscription_details(&self) -> Option<&SubscriptionDetails> {
        self.parent.as_ref()?.subscription_details.as_ref()
    }
}
