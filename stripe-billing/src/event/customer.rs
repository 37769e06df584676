use serde::Deserialize;
use time::OffsetDateTime;

use super::common::{null_as_default, Metadata};

/// A Stripe customer (`object: "customer"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Customer {
    /// The customer id (`cus_…`).
    pub id: String,
    /// The customer's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The customer's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the latest invoice is unpaid.
    #[serde(default, deserialize_with = "null_as_default")]
    pub delinquent: bool,
    /// When the customer was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// The integration's metadata (this crate reads `tenant_id`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    /// Whether it exists in live mode.
    #[serde(default)]
    pub livemode: bool,
}
