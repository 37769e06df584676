//! Stripe's own example objects, shaped into webhook events, for tests and demos
//! (feature `testing`).
//!
//! The objects are Stripe's published examples (from Stripe's OpenAPI repository),
//! embedded in the crate; the helpers only replace the fields a scenario needs, so
//! every other field keeps Stripe's real shape.
//!
//! ```
//! use stripe_billing::testing::{checkout_session, event, signed};
//! use stripe_billing::WebhookVerifier;
//!
//! let session = checkout_session("acme", "cus_123", "sub_123", "paid");
//! let event = event("checkout.session.completed", session, 1_767_225_600);
//! let (body, header) = signed(&event, "whsec_test", 1_767_225_600);
//! let verifier = WebhookVerifier::new("whsec_test")?;
//! assert!(verifier.verify_signature_at(&body, Some(&header), time::macros::datetime!(2026-01-01 0:00 UTC)).is_ok());
//! # Ok::<(), stripe_billing::WebhookError>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};
use tenancy_core::SecretString;

use crate::sign;

/// The API version the helpers stamp on events.
pub const API_VERSION: &str = crate::DEFAULT_STRIPE_VERSION;

/// One of Stripe's example objects: `event`, `subscription`, `checkout.session`,
/// `invoice`, `customer`, `deleted_customer` or `billing_portal.session`
/// (`Value::Null` for anything else).
pub fn example(resource: &str) -> Value {
    let text = match resource {
        "event" => include_str!("../tests/fixtures/event.json"),
        "subscription" => include_str!("../tests/fixtures/subscription.json"),
        "checkout.session" | "checkout_session" => {
            include_str!("../tests/fixtures/checkout_session.json")
        }
        "invoice" => include_str!("../tests/fixtures/invoice.json"),
        "customer" => include_str!("../tests/fixtures/customer.json"),
        "deleted_customer" => include_str!("../tests/fixtures/deleted_customer.json"),
        "billing_portal.session" | "billing_portal_session" => {
            include_str!("../tests/fixtures/billing_portal_session.json")
        }
        _ => return Value::Null,
    };
    serde_json::from_str(text).unwrap_or(Value::Null)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Stripe's example event with a fresh id, `type`, `created` and `data.object` replaced.
pub fn event(event_type: &str, object: Value, created: i64) -> Value {
    let mut event = example("event");
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    event["id"] = json!(format!("evt_test_{n:06}_{}", std::process::id()));
    event["type"] = json!(event_type);
    event["created"] = json!(created);
    event["api_version"] = json!(API_VERSION);
    event["data"] = json!({ "object": object });
    event
}

/// Stripe's example subscription `id` of `customer`, with `status`, one item at `price`,
/// and `metadata.tenant_id` when `tenant` is given.
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    price: &str,
    tenant: Option<&str>,
) -> Value {
    let mut sub = example("subscription");
    sub["id"] = json!(id);
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    sub["items"]["data"][0]["price"]["id"] = json!(price);
    sub["items"]["data"][0]["subscription"] = json!(id);
    sub["metadata"] = tenant.map_or(json!({}), |t| json!({ "tenant_id": t }));
    sub
}

/// Stripe's example Checkout session, completed in subscription mode for `tenant`.
pub fn checkout_session(
    tenant: &str,
    customer: &str,
    subscription: &str,
    payment_status: &str,
) -> Value {
    let mut session = example("checkout.session");
    session["mode"] = json!("subscription");
    session["status"] = json!("complete");
    session["payment_status"] = json!(payment_status);
    session["client_reference_id"] = json!(tenant);
    session["metadata"] = json!({ "tenant_id": tenant });
    session["customer"] = json!(customer);
    session["subscription"] = json!(subscription);
    session
}

/// Where an invoice names its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvoiceShape {
    /// `subscription` at the top level (API versions before 2025-03-31).
    TopLevel,
    /// `parent.subscription_details.subscription` (2025-03-31 and later).
    Parent,
}

/// Stripe's example invoice of `subscription` for `customer`: paid when `amount_paid > 0`.
pub fn invoice(subscription: &str, customer: &str, amount_paid: i64, shape: InvoiceShape) -> Value {
    let mut invoice = example("invoice");
    invoice["customer"] = json!(customer);
    invoice["amount_paid"] = json!(amount_paid);
    invoice["status"] = json!(if amount_paid > 0 { "paid" } else { "open" });
    match shape {
        InvoiceShape::TopLevel => {
            invoice["subscription"] = json!(subscription);
            invoice["parent"] = Value::Null;
        }
        InvoiceShape::Parent => {
            invoice["subscription"] = Value::Null;
            invoice["parent"]["type"] = json!("subscription_details");
            invoice["parent"]["subscription_details"]["subscription"] = json!(subscription);
        }
    }
    invoice
}

/// The body and a valid `Stripe-Signature` header for `event`, signed with `secret` at `timestamp`.
pub fn signed(event: &Value, secret: &str, timestamp: i64) -> (Vec<u8>, String) {
    let body = serde_json::to_vec_pretty(event).unwrap_or_default();
    let header = sign(&body, &SecretString::from(secret), timestamp);
    (body, header)
}

/// Stripe's list object over `data`, as list endpoints answer at `url`
/// (`{"object": "list", "data": […], "has_more": …, "url": "/v1/events"}`).
pub fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// Stripe's answer to `GET /v1/events` with the (decoded) query parameters `query`,
/// over a log of `events` (Stripe's event objects, such as [`event`] makes, in the
/// order they happened): those of the `types[]` asked for (all without one), created
/// at or after `created[gte]`, newest first, after the `starting_after` event, at most
/// `limit` and at most `page_size` of them, so that a stand-in can make small pages.
///
/// ```
/// use stripe_billing::testing::{event, events_page, subscription};
///
/// let sub = subscription("sub_1", "cus_1", "active", "price_1", Some("acme"));
/// let log: Vec<_> = (0..3).map(|n| event("customer.subscription.updated", sub.clone(), 1_767_225_600 + n)).collect();
/// let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
///     pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
/// };
/// let first = events_page(&log, &query(&[("limit", "100")]), 2);
/// assert_eq!(first["data"][0]["id"], log[2]["id"]); // newest first
/// assert_eq!(first["has_more"], true);
/// let last = log[1]["id"].as_str().unwrap_or_default();
/// let second = events_page(&log, &query(&[("limit", "100"), ("starting_after", last)]), 2);
/// assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
/// assert_eq!(second["has_more"], false);
/// ```
pub fn events_page(events: &[Value], query: &[(String, String)], page_size: usize) -> Value {
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let types: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "types[]")
        .map(|(_, value)| value.as_str())
        .collect();
    let since = param("created[gte]")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let limit = param("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .min(page_size.max(1));
    let mut newest_first: Vec<(usize, &Value)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["created"].as_i64().unwrap_or(i64::MIN) >= since)
        .filter(|(_, e)| {
            types.is_empty() || types.contains(&e["type"].as_str().unwrap_or_default())
        })
        .collect();
    newest_first.sort_by_key(|(position, e)| {
        std::cmp::Reverse((e["created"].as_i64().unwrap_or(i64::MIN), *position))
    });
    let start = match param("starting_after") {
        Some(after) => newest_first
            .iter()
            .position(|(_, e)| e["id"] == after)
            .map_or(newest_first.len(), |at| at + 1),
        None => 0,
    };
    let rest = newest_first.get(start..).unwrap_or_default();
    let page: Vec<Value> = rest.iter().take(limit).map(|(_, e)| (*e).clone()).collect();
    list("/v1/events", page, rest.len() > limit)
}
