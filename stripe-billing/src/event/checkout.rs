use serde::Deserialize;
use time::OffsetDateTime;

use super::common::{expandable_id_opt, null_as_default, Metadata};

tenancy_core::open_enum! {
    /// A Checkout session's `mode`.
    pub enum CheckoutMode {
        /// A one-time payment.
        Payment => "payment",
        /// Saving payment details for later.
        Setup => "setup",
        /// Starting a subscription.
        Subscription => "subscription",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// A Checkout session's `status`.
    pub enum CheckoutSessionStatus {
        /// In progress.
        Open => "open",
        /// Completed by the customer.
        Complete => "complete",
        /// Expired without completing.
        Expired => "expired",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// A Checkout session's `payment_status`.
    pub enum PaymentStatus {
        /// The payment succeeded.
        Paid => "paid",
        /// The payment has not succeeded (yet).
        Unpaid => "unpaid",
        /// Nothing to pay now (a trial, or a zero amount).
        NoPaymentRequired => "no_payment_required",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// The customer details collected by Checkout (`customer_details`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct CustomerDetails {
    /// The email the customer entered.
    #[serde(default)]
    pub email: Option<String>,
    /// The name the customer entered.
    #[serde(default)]
    pub name: Option<String>,
}

/// A Stripe Checkout session (`object: "checkout.session"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct CheckoutSession {
    /// The session id (`cs_…`).
    pub id: String,
    /// What the session is for.
    pub mode: CheckoutMode,
    /// Whether the session is open, complete or expired.
    #[serde(default)]
    pub status: Option<CheckoutSessionStatus>,
    /// Whether the payment went through.
    pub payment_status: PaymentStatus,
    /// The integration's reference; this crate sets it to the tenant id.
    #[serde(default)]
    pub client_reference_id: Option<String>,
    /// The customer id (`cus_…`), once there is one.
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub customer: Option<String>,
    /// The email given when the session was created.
    #[serde(default)]
    pub customer_email: Option<String>,
    /// What the customer entered.
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    /// The subscription it started (subscription mode).
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub subscription: Option<String>,
    /// The total in the currency's smallest unit.
    #[serde(default)]
    pub amount_total: Option<i64>,
    /// The three-letter ISO currency code.
    #[serde(default)]
    pub currency: Option<String>,
    /// The Checkout page to send the user to (`url`); `None` once the session is
    /// complete or expired, and for embedded sessions.
    #[serde(default)]
    pub url: Option<String>,
    /// When the session, and its page, expire (`expires_at`).
    #[serde(default, with = "time::serde::timestamp::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When the session was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// The integration's metadata.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    /// Whether it exists in live mode.
    #[serde(default)]
    pub livemode: bool,
}
