//! Shared set-up of the Stripe client tests: Stripe's own example objects, a client
//! pointed at a wiremock server, and readers for what the server received.
#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::time::Duration;

use serde_json::{json, Value};
use stripe_billing::{StripeClient, StripeError};
use tenancy_core::{RetryPolicy, TenantId};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A test-mode secret key; tests check it never shows up in output.
pub const SECRET_KEY: &str = "sk_test_51HsupportSecretValue";

/// Stripe's example object for `resource` (`"customer"`, `"checkout.session"`, …).
pub fn stripe_object(resource: &str) -> Value {
    let object = stripe_billing::testing::example(resource);
    assert!(object.is_object(), "no {resource} among the fixtures");
    object
}

/// Stripe's example Checkout session, as created by this crate for `tenant`.
pub fn subscription_checkout_session(tenant: &str) -> Value {
    let mut session = stripe_object("checkout.session");
    session["mode"] = json!("subscription");
    session["payment_intent"] = Value::Null;
    session["client_reference_id"] = json!(tenant);
    session["metadata"] = json!({ "tenant_id": tenant });
    session
}

/// Stripe's error body.
pub fn stripe_error(
    error_type: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Value {
    json!({
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_test123?t=1234567890",
        }
    })
}

/// Retries without waiting (nearly) and without jitter.
pub fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(attempts)
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
        .with_jitter(false)
}

/// A client of `server` with up to 3 attempts and a 2 s timeout.
pub fn client(server: &MockServer) -> StripeClient {
    client_with(server, fast_retries(3), Duration::from_secs(2))
}

/// A client of `server` with the given retries and timeout.
pub fn client_with(server: &MockServer, retries: RetryPolicy, timeout: Duration) -> StripeClient {
    StripeClient::builder(SECRET_KEY)
        .base_url(server.uri())
        .timeout(timeout)
        .retry_policy(retries)
        .build()
        .unwrap()
}

/// A tenant id.
pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

/// Every request the server received.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// A request's body as text.
pub fn body(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

/// A request header as text.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

/// A server answering `http_method route` with `object`.
pub async fn stripe_answering(http_method: &str, route: &str, object: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(http_method))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(object))
        .mount(&server)
        .await;
    server
}

/// The `Idempotency-Key` of every request the server received, in order.
pub async fn idempotency_keys(server: &MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .map(|request| header(request, "idempotency-key").unwrap())
        .collect()
}

/// The parameter an `InvalidParameter` error names, `None` for any other error.
pub fn invalid_param(error: &StripeError) -> Option<&'static str> {
    match error {
        StripeError::InvalidParameter { param, .. } => Some(param),
        _ => None,
    }
}
