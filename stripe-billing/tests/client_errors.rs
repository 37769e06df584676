//! Errors: Stripe's error object typed, answers that are not Stripe's, bad
//! configuration, and the secret key kept out of every output.

mod client_support;

use client_support::{client, fast_retries, stripe_error, SECRET_KEY};
use serde_json::json;
use stripe_billing::{ApiErrorType, StripeClient, StripeConfigError, StripeError};
use tenancy_core::BackendError;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ROUTE: &str = "/v1/subscriptions/sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";

async fn answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ROUTE))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

async fn error_for(template: ResponseTemplate) -> StripeError {
    let server = answering(template).await;
    client(&server)
        .retrieve_subscription("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")
        .await
        .unwrap_err()
}

#[tokio::test]
async fn every_field_of_a_card_error_is_kept() {
    let body = json!({
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "param": "payment_method",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_abc?t=1",
            "doc_url": "https://docs.stripe.com/error-codes/card-declined"
        }
    });
    let template = ResponseTemplate::new(402)
        .set_body_json(body)
        .insert_header("Request-Id", "req_abc");

    let error = error_for(template).await;

    let api = error.api_error().unwrap();
    assert_eq!(api.status, 402);
    assert_eq!(api.error_type, ApiErrorType::Card);
    assert_eq!(api.code.as_deref(), Some("card_declined"));
    assert_eq!(api.decline_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        api.message.as_deref(),
        Some("Your card has insufficient funds.")
    );
    assert_eq!(api.param.as_deref(), Some("payment_method"));
    assert_eq!(
        api.request_log_url.as_deref(),
        Some("https://dashboard.stripe.com/test/logs/req_abc?t=1")
    );
    assert_eq!(api.request_id.as_deref(), Some("req_abc"));
    let message = error.to_string();
    assert!(
        message
            .contains("card_error (http 402, code card_declined, decline_code insufficient_funds"),
        "{message}"
    );
    assert!(
        message.contains("ask the customer for another payment method"),
        "{message}"
    );
}

#[tokio::test]
async fn each_error_type_is_typed_and_says_what_to_do() {
    let cases = [
        (
            400,
            "invalid_request_error",
            ApiErrorType::InvalidRequest,
            "fix the request parameter",
        ),
        (
            400,
            "idempotency_error",
            ApiErrorType::Idempotency,
            "use a new key",
        ),
        (
            401,
            "invalid_request_error",
            ApiErrorType::InvalidRequest,
            "check the secret key",
        ),
        (
            403,
            "invalid_request_error",
            ApiErrorType::InvalidRequest,
            "lacks a permission",
        ),
        (
            404,
            "invalid_request_error",
            ApiErrorType::InvalidRequest,
            "does not exist",
        ),
        (
            402,
            "card_error",
            ApiErrorType::Card,
            "another payment method",
        ),
        (500, "api_error", ApiErrorType::Api, "try again later"),
        (
            400,
            "brand_new_error",
            ApiErrorType::Unknown("brand_new_error".into()),
            "see the message",
        ),
    ];
    for (status, type_name, expected, hint) in cases {
        let body = stripe_error(
            type_name,
            Some("some_code"),
            "Stripe's message",
            Some("customer"),
        );
        let template = ResponseTemplate::new(status)
            .set_body_json(body)
            .insert_header("Stripe-Should-Retry", "false");

        let error = error_for(template).await;

        let api = error.api_error().unwrap_or_else(|| panic!("{error:?}"));
        assert_eq!((api.status, &api.error_type), (status, &expected));
        assert_eq!(api.error_type.as_str(), type_name);
        let message = error.to_string();
        assert!(
            message.contains("Stripe's message") && message.contains(hint),
            "{message}"
        );
        assert!(
            message.contains("request log: https://dashboard.stripe.com/"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_error_status_without_stripes_object_keeps_the_start_of_the_body() {
    let template = ResponseTemplate::new(404).set_body_string("<html>not found</html>");

    let error = error_for(template).await;

    assert!(
        matches!(&error, StripeError::UnexpectedResponse { status: 404, excerpt, .. } if excerpt == "<html>not found</html>"),
        "{error:?}"
    );
    assert!(error.to_string().contains("check the base url"), "{error}");
}

#[tokio::test]
async fn a_success_with_an_unexpected_body_is_a_decode_error_and_not_retried() {
    let server = answering(
        ResponseTemplate::new(200)
            .set_body_json(json!({ "id": "sub_1", "object": "subscription" })),
    )
    .await;

    let error = client(&server)
        .retrieve_subscription("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            StripeError::Decode {
                expected: "subscription",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("Stripe-Version"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn errors_convert_to_backend_errors_that_know_whether_to_retry() {
    let transient = error_for(ResponseTemplate::new(503).set_body_json(stripe_error(
        "api_error",
        None,
        "down",
        None,
    )))
    .await;
    let permanent = error_for(ResponseTemplate::new(404).set_body_json(stripe_error(
        "invalid_request_error",
        Some("resource_missing"),
        "No such subscription",
        Some("id"),
    )))
    .await;

    let transient = BackendError::from(transient);
    let permanent = BackendError::from(permanent);

    assert!(transient.is_retryable());
    assert!(!permanent.is_retryable());
    let inner = permanent.downcast_ref::<StripeError>().unwrap();
    assert_eq!(
        inner.api_error().unwrap().code.as_deref(),
        Some("resource_missing")
    );
}

#[tokio::test]
async fn the_predicates_describe_what_the_client_met() {
    let limited = error_for(
        ResponseTemplate::new(429)
            .set_body_json(stripe_error(
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests",
                None,
            ))
            .insert_header("Retry-After", "0.01"),
    )
    .await;
    assert!(limited.is_rate_limited() && limited.is_retryable());
    assert_eq!(limited.status(), Some(429));
    assert_eq!(
        limited.retry_after(),
        Some(std::time::Duration::from_millis(10))
    );
    assert!(!limited.is_timeout() && !limited.is_connect());

    // Nothing listens on a port that was just free: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let unreachable = StripeClient::builder(SECRET_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry_policy(fast_retries(1))
        .build()
        .unwrap()
        .retrieve_subscription("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")
        .await
        .unwrap_err();
    assert!(unreachable.is_connect(), "{unreachable:?}");
    assert!(unreachable.is_retryable());
    assert_eq!(
        (unreachable.status(), unreachable.retry_after()),
        (None, None)
    );
}

#[test]
fn the_secret_key_never_shows_in_debug_output() {
    let builder = StripeClient::builder(SECRET_KEY).retry_policy(fast_retries(2));
    let printed_builder = format!("{builder:?}");
    let client = builder.build().unwrap();
    let printed = format!("{client:?} {client:#?} {printed_builder}");

    assert!(!printed.contains("supportSecretValue"), "{printed}");
    assert!(printed.contains("[redacted]"), "{printed}");
}

#[test]
fn bad_keys_and_settings_are_refused_when_building() {
    let key_error = |key: &str| StripeClient::builder(key).build().unwrap_err();

    for key in ["", "pk_test_123", "whsec_123", "sk_test_abc def"] {
        let error = key_error(key);
        assert!(
            matches!(error, StripeConfigError::InvalidSecretKey(_)),
            "{key}: {error:?}"
        );
        assert!(
            error.to_string().contains("Developers → API keys"),
            "{error}"
        );
    }
    let url = StripeClient::builder(SECRET_KEY)
        .base_url("api.stripe.com")
        .build()
        .unwrap_err();
    assert!(
        matches!(url, StripeConfigError::InvalidBaseUrl { .. }),
        "{url:?}"
    );
    let version = StripeClient::builder(SECRET_KEY)
        .stripe_version("")
        .build()
        .unwrap_err();
    assert!(
        matches!(version, StripeConfigError::InvalidStripeVersion(_)),
        "{version:?}"
    );
}
