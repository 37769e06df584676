//! Creating Checkout sessions: the exact request sent and the session read back.

mod client_support;

use client_support::{
    body, client, header, idempotency_keys, invalid_param, received, stripe_answering,
    subscription_checkout_session, tenant, SECRET_KEY,
};
use stripe_billing::{
    CheckoutCustomer, CheckoutMode, CreateCheckoutSession, IdempotencyKey, DEFAULT_STRIPE_VERSION,
};
use tenancy_core::EmailAddress;
use wiremock::MockServer;

const SUCCESS: &str = "https://app.example/billing/success?session_id={CHECKOUT_SESSION_ID}";
const CANCEL: &str = "https://app.example/billing";

fn for_customer() -> CreateCheckoutSession {
    CreateCheckoutSession::new(
        tenant("acme"),
        CheckoutCustomer::Existing("cus_QXg1o8vcGmoR32".into()),
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        SUCCESS,
        CANCEL,
    )
}

async fn stripe_answering_a_session() -> MockServer {
    stripe_answering(
        "POST",
        "/v1/checkout/sessions",
        subscription_checkout_session("acme"),
    )
    .await
}

#[tokio::test]
async fn sends_the_exact_form_body_and_headers() {
    let server = stripe_answering_a_session().await;
    let params = for_customer().quantity(2).trial_period_days(14);

    client(&server)
        .create_checkout_session(&params)
        .await
        .unwrap();

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        body(request),
        "mode=subscription\
         &line_items[0][price]=price_1PgafmB7WZ01zgkW6dKueIc5\
         &line_items[0][quantity]=2\
         &customer=cus_QXg1o8vcGmoR32\
         &client_reference_id=acme\
         &success_url=https%3A%2F%2Fapp.example%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D\
         &cancel_url=https%3A%2F%2Fapp.example%2Fbilling\
         &metadata[tenant_id]=acme\
         &subscription_data[metadata][tenant_id]=acme\
         &subscription_data[trial_period_days]=14"
    );
    assert_eq!(
        header(request, "authorization").unwrap(),
        format!("Bearer {SECRET_KEY}")
    );
    assert_eq!(
        header(request, "stripe-version").unwrap(),
        DEFAULT_STRIPE_VERSION
    );
    assert_eq!(
        header(request, "content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let key = header(request, "idempotency-key").unwrap();
    assert_eq!(key.len(), 64, "{key}");
}

#[tokio::test]
async fn a_new_customer_is_named_by_email_and_extra_metadata_goes_on_both_objects() {
    let server = stripe_answering_a_session().await;
    let email = EmailAddress::new("owner@acme.example").unwrap();
    let params = CreateCheckoutSession::new(
        tenant("acme"),
        CheckoutCustomer::Email(email),
        "price_1",
        SUCCESS,
        CANCEL,
    )
    .metadata("plan", "starter");

    client(&server)
        .create_checkout_session(&params)
        .await
        .unwrap();

    let sent = body(&received(&server).await[0]);
    assert!(
        sent.contains("&customer_email=owner%40acme.example&"),
        "{sent}"
    );
    assert!(!sent.contains("&customer="), "{sent}");
    assert!(!sent.contains("trial_period_days"), "{sent}");
    assert!(
        sent.ends_with(
            "&metadata[plan]=starter&metadata[tenant_id]=acme\
             &subscription_data[metadata][plan]=starter&subscription_data[metadata][tenant_id]=acme"
        ),
        "{sent}"
    );
}

#[tokio::test]
async fn the_session_comes_back_with_its_url_and_tenant() {
    let server = stripe_answering_a_session().await;

    let checkout = client(&server)
        .create_checkout_session(&for_customer())
        .await
        .unwrap();

    assert_eq!(
        checkout.url.as_deref(),
        Some("https://checkout.stripe.com/pay/c/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY")
    );
    assert_eq!(
        checkout.expires_at.map(|t| t.unix_timestamp()),
        Some(1_234_567_890)
    );
    assert_eq!(
        checkout.id,
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    assert_eq!(checkout.mode, CheckoutMode::Subscription);
    assert_eq!(checkout.client_reference_id.as_deref(), Some("acme"));
}

#[tokio::test]
async fn derived_keys_repeat_for_the_same_request_and_differ_otherwise() {
    let server = stripe_answering_a_session().await;
    let stripe = client(&server);

    stripe
        .create_checkout_session(&for_customer())
        .await
        .unwrap();
    stripe
        .create_checkout_session(&for_customer())
        .await
        .unwrap();
    stripe
        .create_checkout_session(&for_customer().quantity(3))
        .await
        .unwrap();
    let other_tenant = CreateCheckoutSession::new(
        tenant("globex"),
        CheckoutCustomer::Existing("cus_QXg1o8vcGmoR32".into()),
        "price_1PgafmB7WZ01zgkW6dKueIc5",
        SUCCESS,
        CANCEL,
    );
    stripe.create_checkout_session(&other_tenant).await.unwrap();
    let explicit = IdempotencyKey::new("click-7f3a").unwrap();
    stripe
        .create_checkout_session(&for_customer().idempotency_key(explicit))
        .await
        .unwrap();

    let keys = idempotency_keys(&server).await;
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
    assert_ne!(keys[0], keys[3]);
    assert_eq!(keys[4], "click-7f3a");
}

#[tokio::test]
async fn bad_parameters_are_refused_before_anything_is_sent() {
    let server = stripe_answering_a_session().await;
    let stripe = client(&server);
    let cases = [
        (for_customer().quantity(0), "quantity"),
        (
            for_customer().trial_period_days(0),
            "subscription_data[trial_period_days]",
        ),
        (
            for_customer().trial_period_days(731),
            "subscription_data[trial_period_days]",
        ),
        (for_customer().metadata("tenant_id", "other"), "metadata"),
        (
            CreateCheckoutSession::new(
                tenant("acme"),
                CheckoutCustomer::Existing("cus_1".into()),
                " ",
                SUCCESS,
                CANCEL,
            ),
            "price",
        ),
        (
            CreateCheckoutSession::new(
                tenant("acme"),
                CheckoutCustomer::Existing(String::new()),
                "price_1",
                SUCCESS,
                CANCEL,
            ),
            "customer",
        ),
        (
            CreateCheckoutSession::new(
                tenant("acme"),
                CheckoutCustomer::Existing("cus_1".into()),
                "price_1",
                "/ok",
                CANCEL,
            ),
            "success_url",
        ),
        (
            CreateCheckoutSession::new(
                tenant("acme"),
                CheckoutCustomer::Existing("cus_1".into()),
                "price_1",
                SUCCESS,
                "javascript:x",
            ),
            "cancel_url",
        ),
    ];
    for (params, expected) in cases {
        let error = stripe.create_checkout_session(&params).await.unwrap_err();
        assert_eq!(invalid_param(&error), Some(expected), "{error}");
    }
    assert!(received(&server).await.is_empty());
}
