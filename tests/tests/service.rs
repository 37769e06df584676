//! End to end through the real HTTP server: signup, admin routes, webhooks, migrations.

mod support;

use sqlx::Connection;
use support::{Service, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_makes_a_ready_tenant_with_its_schema() {
    let service = Service::start().await;
    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;

    let (status, tenant) = service.admin_get(&format!("/api/admin/tenants/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(tenant["status"]["state"], "ready");
    assert_eq!(tenant["admin_email"], "owner@acme.example");

    let record = service
        .assembly
        .plane
        .directory
        .get(&id)
        .await
        .unwrap()
        .unwrap();
    let url = record.database.unwrap().url;
    let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        ["_sqlx_migrations", "items", "orders", "tenant_admin_users"]
    );
    conn.close().await.unwrap();

    let (_, billing) = service
        .admin_get(&format!("/api/admin/tenants/{id}/billing"))
        .await;
    assert_eq!(billing["status"], "trialing");
    assert_eq!(billing["trial_ends_at"], "2026-01-15T00:00:00Z");
    // The ready notice went out once, after `Ready` was saved, and is recorded.
    let ready: Vec<_> = service
        .notifier
        .sent()
        .into_iter()
        .filter(|n| n.kind == tenancy_core::NotificationKind::TenantReady)
        .collect();
    assert_eq!(ready.len(), 1, "{ready:?}");
    assert_eq!(ready[0].tenant_id, id);
    assert!(tenant["ready_notified_at"].is_string(), "{tenant}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signups_are_refused_with_reasons() {
    let service = Service::start().await;
    let response = service
        .http
        .post(service.url("/api/signup"))
        .json(&serde_json::json!({ "company": "Acme", "email": "not-an-email" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("email"), "{body}");
    assert!(service.tenants().await.is_empty());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_token() {
    let service = Service::start().await;
    let path = service.url("/api/admin/tenants/acme");
    let missing = service.http.get(&path).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    let wrong = service
        .http
        .get(&path)
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = service
        .http
        .get(&path)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        right.status().as_u16(),
        404,
        "authorised, and the tenant does not exist"
    );
    service.stop().await;

    let disabled = Service::start_with(None, None).await;
    let response = disabled
        .http
        .get(disabled.url("/api/admin/migrations/status"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    disabled.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_test_route_describes_the_setup() {
    let service = Service::start().await;
    let body: serde_json::Value = service
        .http
        .get(service.url("/api/webhooks/stripe/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["secret_configured"], true);
    assert!(body["handled_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "invoice.payment_failed"));
    service.stop().await;
}
