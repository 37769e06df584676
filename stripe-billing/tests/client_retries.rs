//! Retries: which answers are retried, with the same idempotency key every time.

mod client_support;

use std::time::{Duration, Instant};

use client_support::{
    client, client_with, fast_retries, idempotency_keys, received, stripe_error, stripe_object,
    tenant, SECRET_KEY,
};
use serde_json::Value;
use stripe_billing::{CreateCustomer, StripeClient, StripeError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A server whose first `failures` answers are `failure`, then Stripe's customer.
async fn failing_then_ok(failure: ResponseTemplate, failures: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(failure)
        .up_to_n_times(failures)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_object("customer")))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

fn error_answer(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn rate_limited() -> ResponseTemplate {
    error_answer(
        429,
        stripe_error(
            "invalid_request_error",
            Some("rate_limit"),
            "Too many requests made to the API too quickly",
            None,
        ),
    )
}

fn server_error() -> ResponseTemplate {
    error_answer(
        500,
        stripe_error("api_error", None, "An unknown error occurred", None),
    )
}

fn params() -> CreateCustomer {
    CreateCustomer::new(tenant("acme"))
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_idempotency_key() {
    let server = failing_then_ok(server_error(), 1).await;

    let customer = client(&server).create_customer(&params()).await.unwrap();

    assert_eq!(customer.id, "cus_QXg1o8vcGmoR32");
    let keys = idempotency_keys(&server).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    let requests = received(&server).await;
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_timeout_is_retried_with_the_same_idempotency_key() {
    let slow = ResponseTemplate::new(200)
        .set_body_json(stripe_object("customer"))
        .set_delay(Duration::from_secs(3));
    let server = failing_then_ok(slow, 1).await;
    let stripe = client_with(&server, fast_retries(3), Duration::from_millis(300));

    let customer = stripe.create_customer(&params()).await.unwrap();

    assert_eq!(customer.id, "cus_QXg1o8vcGmoR32");
    let keys = idempotency_keys(&server).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test]
async fn timeouts_to_the_end_give_a_timeout_error() {
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(3));
    let server = failing_then_ok(slow, 5).await;
    let stripe = client_with(&server, fast_retries(2), Duration::from_millis(200));

    let error = stripe.create_customer(&params()).await.unwrap_err();

    assert!(
        matches!(error, StripeError::Timeout { method: "POST", .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_rate_limit_without_the_header_is_retried() {
    let server = failing_then_ok(rate_limited(), 2).await;

    client(&server).create_customer(&params()).await.unwrap();

    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn a_rate_limit_with_should_retry_true_is_retried() {
    let server = failing_then_ok(
        rate_limited().insert_header("Stripe-Should-Retry", "true"),
        1,
    )
    .await;

    client(&server).create_customer(&params()).await.unwrap();

    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_rate_limit_with_should_retry_false_is_not_retried() {
    let server = failing_then_ok(
        rate_limited().insert_header("Stripe-Should-Retry", "false"),
        1,
    )
    .await;

    let error = client(&server)
        .create_customer(&params())
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(429));
    assert_eq!(error.api_error().unwrap().should_retry, Some(false));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_server_error_with_should_retry_false_is_not_retried() {
    let server = failing_then_ok(
        server_error().insert_header("Stripe-Should-Retry", "false"),
        1,
    )
    .await;

    let error = client(&server)
        .create_customer(&params())
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(500));
    assert!(!error.is_retryable());
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn a_client_error_with_should_retry_true_is_retried() {
    let lock = error_answer(
        400,
        stripe_error("invalid_request_error", Some("lock_timeout"), "busy", None),
    )
    .insert_header("Stripe-Should-Retry", "true");
    let server = failing_then_ok(lock, 1).await;

    client(&server).create_customer(&params()).await.unwrap();

    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_idempotency_conflict_is_retried() {
    let conflict = error_answer(
        409,
        stripe_error(
            "idempotency_error",
            None,
            "There is currently another in-progress request using this Idempotent Key",
            None,
        ),
    );
    let server = failing_then_ok(conflict, 1).await;

    client(&server).create_customer(&params()).await.unwrap();

    let keys = idempotency_keys(&server).await;
    assert_eq!((keys.len(), keys[0] == keys[1]), (2, true));
}

#[tokio::test]
async fn validation_errors_are_never_retried() {
    let invalid = error_answer(
        400,
        stripe_error(
            "invalid_request_error",
            Some("parameter_invalid_empty"),
            "You passed an empty string for 'email'.",
            Some("email"),
        ),
    );
    let server = failing_then_ok(invalid, 1).await;

    let error = client(&server)
        .create_customer(&params())
        .await
        .unwrap_err();

    assert_eq!(error.api_error().unwrap().param.as_deref(), Some("email"));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn persistent_failures_stop_at_the_policy_limit_with_the_last_error() {
    let server = failing_then_ok(server_error(), 10).await;

    let error = client(&server)
        .create_customer(&params())
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(500));
    assert!(error.is_retryable());
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn retry_after_sets_the_wait() {
    let server = failing_then_ok(rate_limited().insert_header("Retry-After", "1"), 1).await;
    let started = Instant::now();

    client(&server).create_customer(&params()).await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error_after_retries() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stripe = StripeClient::builder(SECRET_KEY)
        .base_url(format!("http://127.0.0.1:{closed_port}"))
        .retry_policy(fast_retries(2))
        .build()
        .unwrap();

    let error = stripe
        .retrieve_customer("cus_QXg1o8vcGmoR32")
        .await
        .unwrap_err();

    assert!(
        matches!(error, StripeError::Transport { method: "GET", .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains("check network access"),
        "{error}"
    );
}
