//! Where reconciliation reads Stripe's records: the events list, one event, a
//! customer's subscriptions. The API client implements it (feature `client`); the
//! reconciliation itself needs no HTTP client.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use tenancy_core::BackendError;
use time::OffsetDateTime;

use crate::{EventType, List, Subscription};

/// The most items one page of a Stripe list holds (`limit`).
pub const MAX_PAGE_LIMIT: u8 = 100;

/// The parameters of one page of `GET /v1/events`: which types, created since when,
/// after which event (`starting_after`: Stripe lists newest first, so the next page
/// holds older events), how many.
///
/// ```
/// use stripe_billing::ListEvents;
/// use time::macros::datetime;
///
/// let first = ListEvents::handled_since(datetime!(2026-01-01 0:00 UTC));
/// assert_eq!(first.types.len(), stripe_billing::EventType::NAMED.len());
/// assert_eq!(first.limit, 100);
/// let next = first.after("evt_1Pgc76B7WZ01zgkWwyRHS12y");
/// assert_eq!(next.starting_after.as_deref(), Some("evt_1Pgc76B7WZ01zgkWwyRHS12y"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListEvents {
    /// The event types (`types[]`); empty for every type. Stripe accepts up to 20.
    pub types: Vec<EventType>,
    /// Only events created at or after this time (`created[gte]`).
    pub created_gte: Option<OffsetDateTime>,
    /// The page after this event (`starting_after`): the last event of the previous page.
    pub starting_after: Option<String>,
    /// How many events per page (`limit`, 1 to [`MAX_PAGE_LIMIT`]).
    pub limit: u8,
}

impl ListEvents {
    /// The first page of the event types this crate handles ([`EventType::known`]),
    /// created at or after `created_gte`, [`MAX_PAGE_LIMIT`] per page.
    pub fn handled_since(created_gte: OffsetDateTime) -> Self {
        Self {
            types: EventType::known().to_vec(),
            created_gte: Some(created_gte),
            starting_after: None,
            limit: MAX_PAGE_LIMIT,
        }
    }

    /// The same query for the page after `event_id` (the last event of a page).
    #[must_use]
    pub fn after(mut self, event_id: impl Into<String>) -> Self {
        self.starting_after = Some(event_id.into());
        self
    }
}

/// An event as the events list names it: what reconciliation keeps of each event
/// while it walks the list (the whole event is read again when it is applied).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct EventSummary {
    /// The event id (`evt_…`).
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
}

impl EventSummary {
    /// A summary (for stand-ins of the events list).
    pub fn new(id: impl Into<String>, event_type: EventType, created: OffsetDateTime) -> Self {
        Self {
            id: id.into(),
            event_type,
            created,
        }
    }
}

/// What [`Reconciler`](crate::Reconciler) reads from Stripe. `StripeClient`
/// implements it (feature `client`), through its retry policy (429s and
/// `Stripe-Should-Retry` are honoured there); a host may implement it over another
/// client, or over a recording for tests.
///
/// Errors say, through [`BackendError::is_retryable`], whether a later run may pass.
#[async_trait]
pub trait StripeEvents: Send + Sync + fmt::Debug {
    /// One page of `GET /v1/events` for `query`: newest first, with `has_more` set when
    /// older events follow.
    async fn list_events(&self, query: &ListEvents) -> Result<List<EventSummary>, BackendError>;

    /// The event `event_id` (`GET /v1/events/{id}`) as Stripe's JSON: the body a
    /// webhook delivery of it would have carried.
    async fn event(&self, event_id: &str) -> Result<String, BackendError>;

    /// Every subscription of customer `customer_id`, whatever its status
    /// (`GET /v1/subscriptions?customer=…&status=all`, every page).
    async fn customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, BackendError>;
}
