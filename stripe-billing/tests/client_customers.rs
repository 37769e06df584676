//! Customers: creating one per tenant and reading one back.

mod client_support;

use client_support::{
    body, client, header, idempotency_keys, invalid_param, received, stripe_answering,
    stripe_object, tenant,
};
use serde_json::json;
use stripe_billing::{CreateCustomer, IdempotencyKey, StripeError};
use tenancy_core::EmailAddress;
use wiremock::MockServer;

fn acme() -> CreateCustomer {
    CreateCustomer::new(tenant("acme-pharmacy"))
        .email(EmailAddress::new("owner@acme.example").unwrap())
        .name("Acme Pharmacy & Co")
}

#[tokio::test]
async fn creating_a_customer_sends_email_name_and_tenant() {
    let mut customer = stripe_object("customer");
    customer["email"] = json!("owner@acme.example");
    customer["metadata"] = json!({ "tenant_id": "acme-pharmacy" });
    let server = stripe_answering("POST", "/v1/customers", customer).await;

    let created = client(&server)
        .create_customer(&acme().metadata("region", "eu"))
        .await
        .unwrap();

    let request = &received(&server).await[0];
    assert_eq!(
        body(request),
        "email=owner%40acme.example&name=Acme+Pharmacy+%26+Co\
         &metadata[region]=eu&metadata[tenant_id]=acme-pharmacy"
    );
    assert_eq!(created.id, "cus_QXg1o8vcGmoR32");
    assert_eq!(created.email.as_deref(), Some("owner@acme.example"));
    assert_eq!(created.metadata["tenant_id"], "acme-pharmacy");
    assert!(header(request, "idempotency-key").is_some());
}

#[tokio::test]
async fn the_same_tenant_gets_the_same_key_so_a_rerun_finds_the_first_customer() {
    let server = stripe_answering("POST", "/v1/customers", stripe_object("customer")).await;
    let stripe = client(&server);

    stripe.create_customer(&acme()).await.unwrap();
    stripe.create_customer(&acme()).await.unwrap();
    stripe
        .create_customer(&CreateCustomer::new(tenant("globex")))
        .await
        .unwrap();
    let explicit = IdempotencyKey::new("signup-42").unwrap();
    stripe
        .create_customer(&acme().idempotency_key(explicit))
        .await
        .unwrap();

    let keys = idempotency_keys(&server).await;
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
    assert_eq!(keys[3], "signup-42");
    assert_eq!(
        body(&received(&server).await[2]),
        "metadata[tenant_id]=globex"
    );
}

#[tokio::test]
async fn bad_names_and_metadata_are_refused_before_anything_is_sent() {
    let server = stripe_answering("POST", "/v1/customers", stripe_object("customer")).await;
    let stripe = client(&server);

    let blank = stripe
        .create_customer(&acme().name("  "))
        .await
        .unwrap_err();
    let long = stripe
        .create_customer(&acme().name("n".repeat(257)))
        .await
        .unwrap_err();
    let bracket = stripe
        .create_customer(&acme().metadata("a[b]", "c"))
        .await
        .unwrap_err();

    assert_eq!(invalid_param(&blank), Some("name"), "{blank}");
    assert_eq!(invalid_param(&long), Some("name"), "{long}");
    assert_eq!(invalid_param(&bracket), Some("metadata"), "{bracket}");
    assert!(received(&server).await.is_empty());
}

#[tokio::test]
async fn retrieving_reads_stripes_customer_object_without_a_key_or_body() {
    let server = stripe_answering(
        "GET",
        "/v1/customers/cus_QXg1o8vcGmoR32",
        stripe_object("customer"),
    )
    .await;

    let customer = client(&server)
        .retrieve_customer("cus_QXg1o8vcGmoR32")
        .await
        .unwrap();

    assert_eq!(customer.id, "cus_QXg1o8vcGmoR32");
    assert_eq!(customer.created.unix_timestamp(), 1_234_567_890);
    assert!(!customer.delinquent);
    let request = &received(&server).await[0];
    assert_eq!(header(request, "idempotency-key"), None);
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn a_deleted_customer_is_a_typed_error() {
    let server = stripe_answering(
        "GET",
        "/v1/customers/cus_QXg1o8vcGmoR32",
        stripe_object("deleted_customer"),
    )
    .await;

    let error = client(&server)
        .retrieve_customer("cus_QXg1o8vcGmoR32")
        .await
        .unwrap_err();

    assert!(
        matches!(&error, StripeError::Deleted { object: "customer", id } if id == "cus_QXg1o8vcGmoR32"),
        "{error:?}"
    );
    assert!(error.to_string().contains("create a new one"), "{error}");
}

#[tokio::test]
async fn an_id_that_could_reach_another_path_is_refused() {
    let server = MockServer::start().await;

    let error = client(&server)
        .retrieve_customer("../charges")
        .await
        .unwrap_err();

    assert_eq!(invalid_param(&error), Some("customer"), "{error}");
    assert!(received(&server).await.is_empty());
}
