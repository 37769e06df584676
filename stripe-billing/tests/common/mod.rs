//! Shared test setup: the plan catalog, fixed ids and times, and short forms of the
//! crate's `testing` fixtures (Stripe's own example objects in event envelopes).
#![allow(dead_code, unreachable_pub, unused_imports)]

use serde_json::{json, Value};
pub use stripe_billing::testing::{example, InvoiceShape};
use stripe_billing::{testing, Event, LifecycleConfig, PlanCatalog, PricingPlan};
use time::OffsetDateTime;

pub const SECRET: &str = "whsec_test_secret";
pub const STARTER_MONTHLY: &str = "price_starter_monthly";
pub const STARTER_YEARLY: &str = "price_starter_yearly";
pub const PRO_MONTHLY: &str = "price_professional_monthly";
pub const PRO_YEARLY: &str = "price_professional_yearly";
pub const CUSTOMER: &str = "cus_QXg1o8vcGmoR32";
pub const SUBSCRIPTION: &str = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
/// 2026-01-01T00:00:00Z
pub const T0: i64 = 1_767_225_600;
pub const DAY: i64 = 86_400;

pub fn catalog() -> PlanCatalog {
    PlanCatalog::new([
        PricingPlan::new("starter", "Starter")
            .monthly(STARTER_MONTHLY, 9_900)
            .yearly(STARTER_YEARLY, 99_000)
            .modules(["inventory", "sales"]),
        PricingPlan::new("professional", "Professional")
            .monthly(PRO_MONTHLY, 29_900)
            .yearly(PRO_YEARLY, 299_000)
            .modules(["inventory", "sales", "reports", "api"]),
    ])
    .unwrap()
}

pub fn config() -> LifecycleConfig {
    LifecycleConfig::new(catalog())
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// Stripe's example event with `type`, `created` and `data.object` replaced and a fresh id.
pub fn envelope(event_type: &str, object: Value, created: i64) -> Value {
    testing::event(event_type, object, created)
}

pub fn decode(event: &Value) -> Event {
    Event::from_slice(event.to_string().as_bytes()).unwrap()
}

/// Stripe's example subscription `SUBSCRIPTION` of `CUSTOMER`, with a trial ending 14 days after `T0`.
pub fn subscription(status: &str, price: &str, tenant: Option<&str>) -> Value {
    let mut sub = testing::subscription(SUBSCRIPTION, CUSTOMER, status, price, tenant);
    sub["trial_end"] = json!(T0 + 14 * DAY);
    sub
}

/// Stripe's example Checkout session, completed in subscription mode for `tenant`.
pub fn checkout_session(tenant: &str, payment_status: &str) -> Value {
    testing::checkout_session(tenant, CUSTOMER, SUBSCRIPTION, payment_status)
}

/// Stripe's example invoice of `SUBSCRIPTION` for `CUSTOMER`, in `shape`.
pub fn invoice(shape: InvoiceShape, amount_paid: i64) -> Value {
    testing::invoice(SUBSCRIPTION, CUSTOMER, amount_paid, shape)
}

/// The body and a valid `Stripe-Signature` header for `event`, signed with `SECRET` at `timestamp`.
pub fn signed(event: &Value, timestamp: i64) -> (Vec<u8>, String) {
    testing::signed(event, SECRET, timestamp)
}

/// How many cases each property test runs: `PROPTEST_CASES`, else `default`.
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A billing store and whatever keeps its database alive.
pub struct Backend {
    pub store: std::sync::Arc<dyn stripe_billing::BillingStore>,
    pub database: Option<tenancy_core::testing::TestDatabase>,
    pub file: Option<tenancy_core::testing::TempSqlite>,
}

/// The in-memory store.
pub async fn memory() -> Backend {
    Backend {
        store: std::sync::Arc::new(stripe_billing::MemoryBillingStore::new()),
        database: None,
        file: None,
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> Backend {
    let file = tenancy_core::testing::TempSqlite::new();
    let store = stripe_billing::SqliteBillingStore::connect(&file.url())
        .await
        .unwrap();
    Backend {
        store: std::sync::Arc::new(store),
        database: None,
        file: Some(file),
    }
}

/// A store on a new database of the local PostgreSQL server.
pub async fn postgres() -> Backend {
    let database = tenancy_core::testing::TestDatabase::create_with_prefix("stripe_billing")
        .await
        .unwrap();
    let store = stripe_billing::PostgresBillingStore::connect(database.url().expose())
        .await
        .unwrap();
    Backend {
        store: std::sync::Arc::new(store),
        database: Some(database),
        file: None,
    }
}
