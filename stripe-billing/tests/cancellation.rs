//! Ending a tenant's billing for offboarding: `DELETE /v1/subscriptions/{id}` at
//! Stripe, then the cancellation through the state machine.

mod client_support;

use std::sync::Arc;

use client_support::{client, received, stripe_error, stripe_object};
use serde_json::Value;
use stripe_billing::{
    BillingNotice, BillingPhase, BillingProcessor, Effect, LifecycleConfig, MemoryBillingStore,
    PlanCatalog, PricingPlan, SubscriptionCancellation, SubscriptionCanceller, SubscriptionStatus,
};
use tenancy_core::{BillingCanceller, TenantId};
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SUBSCRIPTION: &str = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";

fn with_status(status: &str) -> Value {
    let mut subscription = stripe_object("subscription");
    subscription["status"] = status.into();
    subscription
}

fn processor() -> BillingProcessor {
    let catalog = PlanCatalog::new([PricingPlan::new("starter", "Starter")
        .monthly("price_1PgafmB7WZ01zgkW6dKueIc5", 2_000)
        .modules(["inventory"])])
    .unwrap();
    BillingProcessor::new(
        Arc::new(MemoryBillingStore::new()),
        LifecycleConfig::new(catalog),
    )
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[tokio::test]
async fn cancelling_now_deletes_the_subscription() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{SUBSCRIPTION}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_status("canceled")))
        .expect(1)
        .mount(&server)
        .await;

    let cancelled = client(&server).cancel_now(SUBSCRIPTION).await.unwrap();

    assert_eq!(cancelled.status, SubscriptionStatus::Canceled);
    let request = &received(&server).await[0];
    assert!(request.body.is_empty(), "no parameters");
}

#[tokio::test]
async fn a_subscription_that_had_ended_is_read_back_not_refused() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(400).set_body_json(stripe_error(
            "invalid_request_error",
            None,
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/subscriptions/{SUBSCRIPTION}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_status("canceled")))
        .mount(&server)
        .await;

    let ended = client(&server).cancel_now(SUBSCRIPTION).await.unwrap();

    assert_eq!(ended.status, SubscriptionStatus::Canceled);
}

#[tokio::test]
async fn a_live_subscription_is_cancelled_and_billing_moves_to_cancelled_once() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/subscriptions/{SUBSCRIPTION}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(with_status("canceled")))
        .expect(1)
        .mount(&server)
        .await;
    let processor = processor();
    let now = datetime!(2026-02-01 0:00 UTC);
    processor.start_trial(&acme(), now).await.unwrap();
    let active = stripe_billing::testing::subscription(
        SUBSCRIPTION,
        "cus_QXg1o8vcGmoR32",
        "active",
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        Some("acme"),
    );
    let event =
        stripe_billing::testing::event("customer.subscription.updated", active, 1_769_904_000);
    processor
        .process(&serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    processor
        .store()
        .ack_effects(
            &processor
                .store()
                .pending_effects(10)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let cancellation =
        SubscriptionCancellation::new(processor.clone()).with_stripe(Arc::new(client(&server)));

    cancellation.cancel_billing(&acme(), now).await.unwrap();
    cancellation.cancel_billing(&acme(), now).await.unwrap();

    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Cancelled);
    let effects: Vec<Effect> = processor
        .store()
        .pending_effects(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.effect)
        .collect();
    assert!(
        effects.contains(&Effect::Notify(BillingNotice::Cancelled)),
        "{effects:?}"
    );
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::DisableModules(_))));
}

#[tokio::test]
async fn a_trial_is_closed_without_stripe_and_no_billing_is_left_alone() {
    let processor = processor();
    let now = datetime!(2026-02-01 0:00 UTC);
    processor.start_trial(&acme(), now).await.unwrap();
    let cancellation = SubscriptionCancellation::new(processor.clone());

    cancellation.cancel_billing(&acme(), now).await.unwrap();
    cancellation
        .cancel_billing(&TenantId::new("never-billed").unwrap(), now)
        .await
        .unwrap();

    let state = processor.state(&acme()).await.unwrap().unwrap();
    assert_eq!(state.phase, BillingPhase::Cancelled);
}
