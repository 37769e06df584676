//! Events: Stripe's record of what happened, read back to catch webhooks that never
//! arrived (Stripe keeps them for 30 days).

use super::error::StripeError;
use super::form::{Form, FormValue};
use super::ids::{check_id, object_path};
use super::stripe_client::StripeClient;
use crate::{Event, EventSummary, List, ListEvents, MAX_PAGE_LIMIT};

/// The most event types one list request may filter on (Stripe's limit).
const MAX_TYPES: usize = 20;

/// The query string of `GET /v1/events`: `limit`, `types[]` (repeated),
/// `created[gte]`, `starting_after`.
fn events_query(params: &ListEvents) -> Result<Form, StripeError> {
    if params.limit == 0 || params.limit > MAX_PAGE_LIMIT {
        return Err(StripeError::invalid(
            "limit",
            format!(
                "{} is outside 1 to {MAX_PAGE_LIMIT}, the page sizes Stripe accepts",
                params.limit
            ),
        ));
    }
    if params.types.len() > MAX_TYPES {
        return Err(StripeError::invalid(
            "types",
            format!(
                "{} types given; Stripe filters on at most {MAX_TYPES}: list the rest with another request",
                params.types.len()
            ),
        ));
    }
    if let Some(after) = &params.starting_after {
        check_id("starting_after", after)?;
    }
    let types = params
        .types
        .iter()
        .map(|t| FormValue::from(t.as_str()))
        .collect();
    let created = params
        .created_gte
        .map(|gte| FormValue::Map(vec![("gte".to_owned(), gte.unix_timestamp().into())]));
    Ok(Form::new()
        .field("limit", u32::from(params.limit))
        .field("types", FormValue::Repeated(types))
        .optional("created", created)
        .optional("starting_after", params.starting_after.as_deref()))
}

impl StripeClient {
    /// One page of events (`GET /v1/events`), newest first, keeping each event's id,
    /// type and time: page on with [`ListEvents::after`] and the last id while
    /// `has_more` is set. Stripe lists the last 30 days only.
    pub async fn list_events(
        &self,
        params: &ListEvents,
    ) -> Result<List<EventSummary>, StripeError> {
        self.get_query("/v1/events", &events_query(params)?, "list of events")
            .await
    }

    /// Reads an event (`GET /v1/events/{id}`), decoded as a webhook delivery of it is.
    pub async fn retrieve_event(&self, event_id: &str) -> Result<Event, StripeError> {
        let path = object_path("/v1/events", "event", event_id)?;
        self.get(&path, "event").await
    }

    /// An event's JSON as Stripe answers it, for processing (and parking) as a
    /// webhook body.
    pub(crate) async fn event_json(&self, event_id: &str) -> Result<String, StripeError> {
        let path = object_path("/v1/events", "event", event_id)?;
        let object: serde_json::Value = self.get(&path, "event").await?;
        Ok(object.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_query_names_every_handled_type_and_the_window() {
        let params = ListEvents::handled_since(datetime!(2026-01-01 0:00 UTC)).after("evt_123");
        let query = events_query(&params).unwrap().encode();
        assert!(query.starts_with("limit=100&types[]=checkout.session.completed&types[]=customer.subscription.created"), "{query}");
        assert!(
            query.ends_with("&created[gte]=1767225600&starting_after=evt_123"),
            "{query}"
        );
        assert_eq!(
            query.matches("types[]=").count(),
            crate::EventType::NAMED.len()
        );
    }

    #[test]
    fn bad_paging_is_refused_before_sending() {
        let mut params = ListEvents::handled_since(datetime!(2026-01-01 0:00 UTC));
        params.limit = 101;
        assert!(events_query(&params).is_err());
        params.limit = 10;
        let params = params.after("evt_1&limit=5");
        assert!(events_query(&params).is_err());
    }
}
