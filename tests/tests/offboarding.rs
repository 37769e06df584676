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
    let refusal = refused["error"].as_str().unwrap();
    assert!(refusal.contains("is not available"), "{refused}");
    assert!(
        !refusal.contains("restore") && !refusal.contains("/api/admin"),
        "an anonymous caller is not told about admin routes: {refused}"
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
        retired["error"]
            .as_str()
            .unwrap()
            .contains("is not available"),
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

/// Onboarding's migrate step, with nothing to migrate.
#[derive(Debug)]
struct NoMigrations;

#[async_trait::async_trait]
impl tenancy_core::SchemaMigrator for NoMigrations {
    async fn migrate(
        &self,
        _: &TenantId,
        _: &tenancy_core::DatabaseTarget,
    ) -> Result<tenancy_core::MigrationReport, tenancy_core::BackendError> {
        Ok(tenancy_core::MigrationReport::new(None, None, 0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supabase_project_is_paused_then_deleted_after_retention_or_restored() {
    use std::sync::Arc;
    use supabase_mgmt::testing::{self, FakeConfig, FakeSupabase};
    use supabase_mgmt::{ProjectStatus, SupabaseAdminUserCreator, SupabaseProjectPauser};
    use tenancy_core::{
        Clock, DirectoryExportDestination, DumpExporter, ManualClock, MemoryTenantDirectory,
        NewTenant, Offboarding, Onboarding, TenantDirectory, TenantStatus,
    };

    let (server, fake) = FakeSupabase::start(FakeConfig {
        local_databases: Some(tenancy_core::testing::server_url()),
        ..FakeConfig::default()
    })
    .await;
    let client = testing::client(&server);
    let provisioner = Arc::new(
        testing::provisioner_builder(client.clone())
            .build()
            .unwrap(),
    );
    let admins = SupabaseAdminUserCreator::new(client.clone())
        .with_project_url_template(testing::project_url_template(&server))
        .unwrap();
    let directory = Arc::new(MemoryTenantDirectory::new());
    let clock = ManualClock::new(time::macros::datetime!(2026-05-01 12:00 UTC));
    let onboarding = Onboarding::new(
        directory.clone(),
        provisioner.clone(),
        Arc::new(NoMigrations),
        Arc::new(admins),
    );
    let exports = std::env::temp_dir().join(format!(
        "tk-supabase-exports-{}-{:08x}",
        std::process::id(),
        unique_suffix()
    ));
    let offboarding = Offboarding::new(
        directory.clone(),
        provisioner.clone(),
        Arc::new(
            SupabaseProjectPauser::new(client.clone()).wait(std::time::Duration::from_secs(5)),
        ),
        Arc::new(DumpExporter::new()),
        Arc::new(DirectoryExportDestination::new(&exports)),
    )
    .with_clock(Arc::new(clock.clone()));
    let onboard = |company: &'static str| {
        let onboarding = onboarding.clone();
        async move {
            let signup = NewTenant::new(company, "owner@acme.example").unwrap();
            onboarding.onboard(signup).await.unwrap()
        }
    };
    let acme = onboard("Acme Pharmacy").await;
    let bravo = onboard("Bravo Drugs").await;
    let reference = |t: &tenancy_core::Tenant| t.database.clone().unwrap().external_ref.unwrap();
    let acme_url = acme.database.clone().unwrap().url;
    write_notes(acme_url.expose()).await;

    // Acme: exported, paused, then deleted once the clock passes the retention.
    let retained = offboarding.offboard(&acme.id).await.unwrap();
    let status = client.get_project(&reference(&acme)).await.unwrap().status;
    assert_eq!(status, ProjectStatus::Inactive);
    let dump = retained.status.export().unwrap().location.clone();
    let fresh = TestDatabase::create().await.unwrap();
    let restored = tokio::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--no-acl",
            "--dbname",
            fresh.url().expose(),
            &dump,
        ])
        .output()
        .await
        .unwrap();
    assert!(restored.status.success(), "{restored:?}");
    assert_eq!(notes_in(fresh.url().expose()).await, the_notes());
    clock.advance(time::Duration::days(29));
    assert!(offboarding.run_pending().await.unwrap().deleted.is_empty());
    assert!(!fake.live_projects_named(acme.id.as_str()).is_empty());
    clock.advance(time::Duration::days(1));
    let report = offboarding.run_pending().await.unwrap();
    assert_eq!(report.deleted, std::slice::from_ref(&acme.id));
    assert!(fake.live_projects_named(acme.id.as_str()).is_empty());
    let deleted = directory.get(&acme.id).await.unwrap().unwrap();
    assert_eq!(
        deleted.status,
        TenantStatus::Deleted {
            at: clock.now(),
            export: retained.status.export().cloned()
        }
    );

    // Bravo: paused, then restored during its retention.
    offboarding.offboard(&bravo.id).await.unwrap();
    let back = offboarding.restore(&bravo.id).await.unwrap();
    assert_eq!(back.status, TenantStatus::Ready);
    let status = client.get_project(&reference(&bravo)).await.unwrap().status;
    assert_eq!(status, ProjectStatus::ActiveHealthy);

    let _ = std::fs::remove_dir_all(exports);
    fake.drop_local_databases();
}

fn unique_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_restored_before_it_finished_onboarding_is_onboarded() {
    use tenancy_core::Clock;
    let service = Service::start().await;
    // Offboarded before onboarding created anything: retained, never onboarded.
    let signup = tenancy_core::NewTenant::new("Kilo Pharmacy", "owner@kilo.example").unwrap();
    let mut tenant = signup.into_tenant(service.clock.now());
    tenant.status = tenancy_core::TenantStatus::Retained {
        until: service.clock.now() + time::Duration::days(30),
        onboarded: false,
        export: None,
    };
    let directory = &service.assembly.plane.directory;
    directory.insert(&tenant).await.unwrap();

    let (status, back) = restore(&service, tenant.id.as_str()).await;

    assert_eq!(status, 200, "{back}");
    assert_eq!(back["status"]["state"], "pending");
    let ready = wait_for_state(&service, &tenant.id, "ready").await;
    assert!(ready["database"].is_object(), "{ready}");
    service.stop().await;
}
