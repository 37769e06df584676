//! Offboarding end to end through the real HTTP server: the admin routes, the
//! background check that deletes after the retention (under the manual clock), the
//! Stripe cancellation, and offboarding started by a cancelled subscription.

mod support;

use serde_json::{json, Value};
use sqlx::Connection;
use stripe_billing::testing::{checkout_session, event, signed, subscription};
use support::{Service, WEBHOOK_SECRET};
use tenancy_core::testing::TestDatabase;
use tenancy_core::TenantId;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn offboard(service: &Service, id: &str) -> (u16, Value) {
    service
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/admin/tenants/{id}"),
            None,
        )
        .await
}

async fn restore(service: &Service, id: &str) -> (u16, Value) {
    service
        .admin(
            reqwest::Method::POST,
            &format!("/api/admin/tenants/{id}/restore"),
            None,
        )
        .await
}

async fn wait_for_state(service: &Service, id: &TenantId, state: &str) -> Value {
    service
        .wait_for(&format!("/api/admin/tenants/{id}"), |status, tenant| {
            status == 200 && tenant["status"]["state"] == state
        })
        .await
}

async fn signup(service: &Service, company: &str) -> (u16, Value) {
    let response = service
        .http
        .post(service.url("/api/signup"))
        .json(&json!({ "company": company, "email": "owner@acme.example" }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The tenant's database URL, as the service recorded it.
async fn database_url(service: &Service, id: &TenantId) -> String {
    let directory = &service.assembly.plane.directory;
    let tenant = directory.get(id).await.unwrap().unwrap();
    tenant.database.unwrap().url.expose().to_owned()
}

async fn write_notes(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes VALUES (1, 'refill for Mrs Alvarez'), (2, 'order gauze')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn notes_in(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let notes = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    notes
}

fn the_notes() -> Vec<String> {
    vec![
        "refill for Mrs Alvarez".to_owned(),
        "order gauze".to_owned(),
    ]
}

async fn database_exists(url: &str) -> bool {
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&tenancy_core::testing::server_url())
        .await
        .unwrap();
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    found.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_is_offboarded_restored_and_deleted_through_the_admin_routes() {
    let service = Service::start().await;
    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;
    let url = database_url(&service, &id).await;
    write_notes(&url).await;

    let (status, started) = offboard(&service, id.as_str()).await;

    assert_eq!(status, 202, "{started}");
    assert_eq!(started["id"], id.as_str());
    assert!(
        ["offboarding", "retained"].contains(&started["status"]["state"].as_str().unwrap()),
        "{started}"
    );
    let retained = wait_for_state(&service, &id, "retained").await;
    let export = &retained["status"]["export"];
    assert_eq!(export["format"], "pg_dump_custom");
    let dump = export["location"].as_str().unwrap();
    assert!(
        dump.starts_with(service.exports.to_str().unwrap()),
        "{dump}"
    );
    assert_eq!(
        std::fs::metadata(dump).unwrap().len(),
        export["size_bytes"].as_u64().unwrap()
    );
    let fresh = TestDatabase::create().await.unwrap();
    let restored = tokio::process::Command::new("pg_restore")
        .args(["--no-owner", "--dbname", fresh.url().expose(), dump])
        .output()
        .await
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    assert_eq!(notes_in(fresh.url().expose()).await, the_notes());
    assert!(sqlx::PgConnection::connect(&url).await.is_err(), "paused");
    let (_, billing) = service
        .admin_get(&format!("/api/admin/tenants/{id}/billing"))
        .await;
    assert_eq!(billing["status"], "cancelled", "{billing}");
    let (status, refused) = signup(&service, "Acme Pharmacy").await;
    assert_eq!(status, 409);
    assert!(
        refused["error"].as_str().unwrap().contains("restore"),
        "{refused}"
    );

    // Restored during the retention: ready, with its data.
    service.advance(time::Duration::days(10));
    let (status, back) = restore(&service, id.as_str()).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["status"]["state"], "ready");
    assert_eq!(notes_in(&url).await, the_notes());
    let (status, nothing) = restore(&service, id.as_str()).await;
    assert_eq!(status, 409);
    assert!(nothing["error"]
        .as_str()
        .unwrap()
        .contains("nothing to restore"));

    // Offboarded again, it is deleted once the clock passes the 30 days.
    assert_eq!(offboard(&service, id.as_str()).await.0, 202);
    let retained = wait_for_state(&service, &id, "retained").await;
    service.advance(time::Duration::days(30));
    let deleted = wait_for_state(&service, &id, "deleted").await;
    assert_eq!(deleted["status"]["export"], retained["status"]["export"]);
    assert!(deleted["database"].is_null());
    assert!(!database_exists(&url).await);
    assert!(
        std::path::Path::new(deleted["status"]["export"]["location"].as_str().unwrap()).exists()
    );

    let (status, gone) = restore(&service, id.as_str()).await;
    assert_eq!(status, 409);
    assert!(
        gone["error"].as_str().unwrap().contains("deleted"),
        "{gone}"
    );
    let (status, retired) = signup(&service, "Acme Pharmacy").await;
    assert_eq!(status, 409);
    assert!(
        retired["error"].as_str().unwrap().contains("never reused"),
        "{retired}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboarding_routes_refuse_what_they_cannot_do() {
    let service = Service::start().await;

    let (status, unknown) = offboard(&service, "nobody-here").await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(offboard(&service, "Not An Id").await.0, 400);
    assert_eq!(restore(&service, "nobody-here").await.0, 404);
    let unauthorized = service
        .http
        .delete(service.url("/api/admin/tenants/acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    service.stop().await;
}

/// Stripe's subscription `id` of `customer`, cancelled.
fn cancelled(id: &str, customer: &str, tenant: &TenantId) -> Value {
    subscription(
        id,
        customer,
        "canceled",
        "price_starter_m",
        Some(tenant.as_str()),
    )
}

async fn deliver(service: &Service, event_type: &str, object: Value) {
    let at = service.now().unix_timestamp();
    let (body, signature) = signed(&event(event_type, object, at), WEBHOOK_SECRET, at);
    let response = service
        .http
        .post(service.url("/api/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscription_is_cancelled_at_stripe_and_a_cancelled_one_starts_offboarding() {
    let stripe = MockServer::start().await;
    let service = Service::start_offboarding_on_cancel(stripe.uri()).await;
    let acme = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;
    let bravo = service
        .signup_ready("Bravo Drugs", "owner@bravo.example")
        .await;
    for (tenant, customer, sub) in [
        (&acme, "cus_acme", "sub_acme"),
        (&bravo, "cus_bravo", "sub_bravo"),
    ] {
        let session = checkout_session(tenant.as_str(), customer, sub, "paid");
        deliver(&service, "checkout.session.completed", session).await;
        service
            .wait_for(&format!("/api/admin/tenants/{tenant}/billing"), |_, b| {
                b["status"] == "active"
            })
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_acme"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(cancelled("sub_acme", "cus_acme", &acme)),
        )
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_bravo"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled(
            "sub_bravo",
            "cus_bravo",
            &bravo,
        )))
        .mount(&stripe)
        .await;

    // The operator offboards Acme: its live subscription is cancelled at Stripe.
    assert_eq!(offboard(&service, acme.as_str()).await.0, 202);
    wait_for_state(&service, &acme, "retained").await;
    let (_, billing) = service
        .admin_get(&format!("/api/admin/tenants/{acme}/billing"))
        .await;
    assert_eq!(billing["status"], "cancelled");

    // Bravo cancels at Stripe: the service offboards it without cancelling again.
    deliver(
        &service,
        "customer.subscription.deleted",
        cancelled("sub_bravo", "cus_bravo", &bravo),
    )
    .await;
    wait_for_state(&service, &bravo, "retained").await;

    let deletes = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| r.url.path().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(deletes, ["/v1/subscriptions/sub_acme"]);
    service.stop().await;
}
