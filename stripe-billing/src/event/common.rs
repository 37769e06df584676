use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

/// A Stripe object's `metadata`: string keys and values set by the integration.
pub type Metadata = HashMap<String, String>;

/// A Stripe list object (`{"object": "list", "data": […], "has_more": …}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct List<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Whether more items exist beyond this page.
    #[serde(default)]
    pub has_more: bool,
}

impl<T> List<T> {
    /// A page of `data`, with `has_more` saying whether more items follow it
    /// (for stand-ins of Stripe's list endpoints).
    pub fn new(data: Vec<T>, has_more: bool) -> Self {
        Self { data, has_more }
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
        }
    }
}

tenancy_core::open_enum! {
    /// How often a recurring price bills (`recurring.interval`).
    pub enum PriceInterval {
        /// Daily.
        Day => "day",
        /// Weekly.
        Week => "week",
        /// Monthly.
        Month => "month",
        /// Yearly.
        Year => "year",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// The recurring part of a price (`price.recurring`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Recurring {
    /// The billing interval.
    pub interval: PriceInterval,
    /// How many intervals between bills.
    #[serde(default)]
    pub interval_count: Option<u64>,
}

/// A Stripe price (`object: "price"`), as found on subscription items.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Price {
    /// The price id (`price_…`), which a [`PlanCatalog`](crate::PlanCatalog) resolves to a plan.
    pub id: String,
    /// The product id (`prod_…`).
    #[serde(default, deserialize_with = "expandable_id_opt")]
    pub product: Option<String>,
    /// The amount in the currency's smallest unit.
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// The three-letter ISO currency code.
    #[serde(default)]
    pub currency: Option<String>,
    /// How the price recurs (absent for one-time prices).
    #[serde(default)]
    pub recurring: Option<Recurring>,
    /// The price's lookup key.
    #[serde(default)]
    pub lookup_key: Option<String>,
}

/// Either an id or an expanded object with an `id`: how Stripe sends related objects.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

/// Deserializes an expandable field to its id.
pub(crate) fn expandable_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    Ok(match Expandable::deserialize(deserializer)? {
        Expandable::Id(id) | Expandable::Object { id } => id,
    })
}

/// Deserializes a nullable expandable field to its id.
pub(crate) fn expandable_id_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(
        Option::<Expandable>::deserialize(deserializer)?.map(|e| match e {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }),
    )
}

/// Deserializes `null` as the type's default (Stripe sends `"metadata": null` on some objects).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
