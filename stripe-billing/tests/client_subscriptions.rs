//! Subscriptions and billing-portal sessions: reading, cancelling at period end,
//! opening the portal.

mod client_support;

use std::sync::Arc;

use client_support::{
    body, client, header, idempotency_keys, invalid_param, received, stripe_answering,
    stripe_object,
};
use stripe_billing::{
    CreateBillingPortalSession, IdempotencyKey, StripeClient, StripeError, SubscriptionSource,
    SubscriptionStatus,
};
use wiremock::MockServer;

const SUBSCRIPTION: &str = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";

#[tokio::test]
async fn retrieving_a_subscription_reads_stripes_object() {
    let route = format!("/v1/subscriptions/{SUBSCRIPTION}");
    let server = stripe_answering("GET", &route, stripe_object("subscription")).await;

    let subscription = client(&server)
        .retrieve_subscription(SUBSCRIPTION)
        .await
        .unwrap();

    assert_eq!(subscription.id, SUBSCRIPTION);
    assert_eq!(subscription.customer, "cus_QXg1o8vcGmoR32");
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(
        subscription.price_ids().collect::<Vec<_>>(),
        ["price_1PgafmB7WZ01zgkW6dKueIc5"]
    );
    let request = &received(&server).await[0];
    assert_eq!(header(request, "idempotency-key"), None);
}

#[tokio::test]
async fn cancelling_at_period_end_posts_the_flag_with_a_stable_key() {
    let route = format!("/v1/subscriptions/{SUBSCRIPTION}");
    let server = stripe_answering("POST", &route, stripe_object("subscription")).await;
    let stripe = client(&server);

    let subscription = stripe
        .cancel_subscription_at_period_end(SUBSCRIPTION, None)
        .await
        .unwrap();
    stripe
        .cancel_subscription_at_period_end(SUBSCRIPTION, None)
        .await
        .unwrap();
    let explicit = IdempotencyKey::new("cancel-req-9").unwrap();
    stripe
        .cancel_subscription_at_period_end(SUBSCRIPTION, Some(explicit))
        .await
        .unwrap();

    assert!(subscription.cancel_at_period_end);
    assert_eq!(
        body(&received(&server).await[0]),
        "cancel_at_period_end=true"
    );
    let keys = idempotency_keys(&server).await;
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[2], "cancel-req-9");
}

#[tokio::test]
async fn subscription_ids_are_checked() {
    let server = MockServer::start().await;

    let error = client(&server)
        .retrieve_subscription("sub_1/../../v1/charges")
        .await
        .unwrap_err();
    let cancel = client(&server)
        .cancel_subscription_at_period_end("", None)
        .await
        .unwrap_err();

    assert_eq!(invalid_param(&error), Some("subscription"), "{error}");
    assert_eq!(invalid_param(&cancel), Some("subscription"), "{cancel}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn opening_the_billing_portal_sends_customer_and_return_url() {
    let server = stripe_answering(
        "POST",
        "/v1/billing_portal/sessions",
        stripe_object("billing_portal.session"),
    )
    .await;
    let params =
        CreateBillingPortalSession::new("cus_QXg1o8vcGmoR32", "https://example.com/account");

    let session = client(&server)
        .create_billing_portal_session(&params)
        .await
        .unwrap();

    let request = &received(&server).await[0];
    assert_eq!(
        body(request),
        "customer=cus_QXg1o8vcGmoR32&return_url=https%3A%2F%2Fexample.com%2Faccount"
    );
    assert!(header(request, "idempotency-key").is_some());
    assert_eq!(session.id, "bps_1Pgc7HB7WZ01zgkWNs8s9Auh");
    assert_eq!(session.customer, "cus_QXg1o8vcGmoR32");
    assert_eq!(
        session.configuration.as_deref(),
        Some("bpc_1Pgc7HB7WZ01zgkWxH2EPWRX")
    );
    assert!(session.url.starts_with("https://"));
}

#[tokio::test]
async fn portal_parameters_are_checked() {
    let server = MockServer::start().await;
    let stripe = client(&server);

    let bad_customer = CreateBillingPortalSession::new("cus 1", "https://example.com");
    let bad_return = CreateBillingPortalSession::new("cus_1", "example.com/account");
    let error = stripe
        .create_billing_portal_session(&bad_customer)
        .await
        .unwrap_err();
    let url_error = stripe
        .create_billing_portal_session(&bad_return)
        .await
        .unwrap_err();

    assert_eq!(invalid_param(&error), Some("customer"), "{error}");
    assert_eq!(invalid_param(&url_error), Some("return_url"), "{url_error}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn a_pinned_version_and_the_bearer_key_are_sent_on_reads() {
    let route = format!("/v1/subscriptions/{SUBSCRIPTION}");
    let server = stripe_answering("GET", &route, stripe_object("subscription")).await;
    let stripe = StripeClient::builder("rk_test_restricted")
        .base_url(format!("{}/", server.uri()))
        .stripe_version("2025-11-17.clover")
        .build()
        .unwrap();

    stripe.retrieve_subscription(SUBSCRIPTION).await.unwrap();

    let request = &received(&server).await[0];
    assert_eq!(
        header(request, "stripe-version").as_deref(),
        Some("2025-11-17.clover")
    );
    assert_eq!(
        header(request, "authorization").as_deref(),
        Some("Bearer rk_test_restricted")
    );
}

#[tokio::test]
async fn the_client_is_the_processors_subscription_source() {
    let route = format!("/v1/subscriptions/{SUBSCRIPTION}");
    let server = stripe_answering("GET", &route, stripe_object("subscription")).await;
    let source: Arc<dyn SubscriptionSource> = Arc::new(client(&server));

    let subscription = source.subscription(SUBSCRIPTION).await.unwrap();
    let missing = source.subscription("not an id").await.unwrap_err();

    assert_eq!(subscription.id, SUBSCRIPTION);
    assert!(!missing.is_retryable());
    assert!(missing.downcast_ref::<StripeError>().is_some(), "{missing}");
    assert_eq!(received(&server).await.len(), 1);
}
