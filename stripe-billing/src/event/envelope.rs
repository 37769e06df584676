use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{CheckoutSession, Invoice, Subscription};
use crate::{WebhookError, TENANT_ID_METADATA_KEY};

tenancy_core::open_enum! {
    /// An event's `type`. The types a billing integration subscribes to are named;
    /// every other type is kept in `Unknown` (and its object in [`EventObject::Other`]).
    pub enum EventType {
        /// A Checkout session completed.
        CheckoutSessionCompleted => "checkout.session.completed",
        /// A subscription was created.
        CustomerSubscriptionCreated => "customer.subscription.created",
        /// A subscription changed (status, plan, trial …).
        CustomerSubscriptionUpdated => "customer.subscription.updated",
        /// A subscription ended.
        CustomerSubscriptionDeleted => "customer.subscription.deleted",
        /// A trial ends in three days.
        CustomerSubscriptionTrialWillEnd => "customer.subscription.trial_will_end",
        /// An invoice payment succeeded.
        InvoicePaymentSucceeded => "invoice.payment_succeeded",
        /// An invoice payment failed.
        InvoicePaymentFailed => "invoice.payment_failed",
        /// An invoice was paid (also when paid out of band).
        InvoicePaid => "invoice.paid",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

/// The object an event is about (`data.object`), typed for the known event types.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventObject {
    /// For `checkout.session.*`.
    CheckoutSession(Box<CheckoutSession>),
    /// For `customer.subscription.*`.
    Subscription(Box<Subscription>),
    /// For `invoice.*`.
    Invoice(Box<Invoice>),
    /// For every other event type, as sent.
    Other(Value),
}

/// An event's `data`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventData {
    /// The object as it was when the event happened.
    pub object: EventObject,
    /// For `*.updated` events, the previous values of the fields that changed.
    pub previous_attributes: Option<Map<String, Value>>,
}

/// A Stripe event (`object: "event"`), as delivered to a webhook endpoint.
///
/// Decoding never fails on an unknown event type: it becomes [`EventType::Unknown`]
/// with the object kept as JSON. A known type whose object does not have the
/// expected shape is an error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The event id (`evt_…`): the idempotency key of processing.
    pub id: String,
    /// The event type.
    pub event_type: EventType,
    /// When the event happened (second resolution).
    pub created: OffsetDateTime,
    /// Whether it happened in live mode.
    pub livemode: bool,
    /// The API version the event was rendered with.
    pub api_version: Option<String>,
    /// The object and, for updates, the previous attributes.
    pub data: EventData,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(rename = "type")]
    event_type: EventType,
    #[serde(with = "time::serde::timestamp")]
    created: OffsetDateTime,
    #[serde(default)]
    livemode: bool,
    #[serde(default)]
    api_version: Option<String>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: Value,
    #[serde(default)]
    previous_attributes: Option<Map<String, Value>>,
}

impl Event {
    /// Decodes an event from a (verified) request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, WebhookError> {
        serde_json::from_slice(body).map_err(|error| WebhookError::from_json(error, body))
    }

    /// The object's `metadata.tenant_id`, `client_reference_id` or invoice subscription
    /// metadata: the tenant the integration named when it created the object.
    pub fn declared_tenant(&self) -> Option<&str> {
        match &self.data.object {
            EventObject::CheckoutSession(session) => {
                session.client_reference_id.as_deref().or_else(|| {
                    session
                        .metadata
                        .get(TENANT_ID_METADATA_KEY)
                        .map(String::as_str)
                })
            }
            EventObject::Subscription(subscription) => subscription
                .metadata
                .get(TENANT_ID_METADATA_KEY)
                .map(String::as_str),
            EventObject::Invoice(invoice) => invoice
                .metadata
                .get(TENANT_ID_METADATA_KEY)
                .or_else(|| invoice.subscription_metadata()?.get(TENANT_ID_METADATA_KEY))
                .map(String::as_str),
            EventObject::Other(_) => None,
        }
    }

    /// The customer id of the object, if it has one.
    pub fn customer_id(&self) -> Option<&str> {
        match &self.data.object {
            EventObject::CheckoutSession(session) => session.customer.as_deref(),
            EventObject::Subscription(subscription) => Some(&subscription.customer),
            EventObject::Invoice(invoice) => invoice.customer.as_deref(),
            EventObject::Other(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEvent::deserialize(deserializer)?;
        if let Some(object) = raw.object.as_deref().filter(|o| *o != "event") {
            return Err(D::Error::custom(format_args!(
                "`object` is `{object}`, not `event`; post the event, not the object it carries"
            )));
        }
        let object = typed_object(&raw.event_type, raw.data.object).map_err(|e| {
            D::Error::custom(format_args!(
                "the object of this `{}` event: {e}",
                raw.event_type
            ))
        })?;
        Ok(Self {
            id: raw.id,
            event_type: raw.event_type,
            created: raw.created,
            livemode: raw.livemode,
            api_version: raw.api_version,
            data: EventData {
                object,
                previous_attributes: raw.data.previous_attributes,
            },
        })
    }
}

fn typed_object(event_type: &EventType, object: Value) -> Result<EventObject, serde_json::Error> {
    use EventType as T;
    Ok(match event_type {
        T::CheckoutSessionCompleted => {
            EventObject::CheckoutSession(decode(object, "checkout.session")?)
        }
        T::CustomerSubscriptionCreated
        | T::CustomerSubscriptionUpdated
        | T::CustomerSubscriptionDeleted
        | T::CustomerSubscriptionTrialWillEnd => {
            EventObject::Subscription(decode(object, "subscription")?)
        }
        T::InvoicePaymentSucceeded | T::InvoicePaymentFailed | T::InvoicePaid => {
            EventObject::Invoice(decode(object, "invoice")?)
        }
        T::Unknown(_) => EventObject::Other(object),
    })
}

/// Decodes `object` as a `T`, refusing an object whose `object` field names another kind.
fn decode<T: DeserializeOwned>(object: Value, kind: &str) -> Result<Box<T>, serde_json::Error> {
    match object.get("object").and_then(Value::as_str) {
        Some(actual) if actual != kind => Err(serde_json::Error::custom(format_args!(
            "expected a `{kind}` object, found a `{actual}`"
        ))),
        _ => serde_json::from_value(object).map(Box::new),
    }
}
