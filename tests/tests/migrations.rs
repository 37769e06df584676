//! Admin migrations end to end: lint, roll out to every tenant, report.

mod support;

use serde_json::{json, Value};
use sqlx::Connection;
use support::Service;
use tenancy_core::TenantId;

async fn run(service: &Service, body: Value) -> (u16, Value) {
    admin_post(service, "/api/admin/migrations/run", body).await
}

async fn version_and_columns(service: &Service, id: &TenantId) -> (i64, Vec<String>) {
    let tenant = service
        .assembly
        .plane
        .directory
        .get(id)
        .await
        .unwrap()
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(tenant.database.unwrap().url.expose())
        .await
        .unwrap();
    let version: i64 =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'items' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    (version, columns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_reaches_every_tenant() {
    let service = Service::start().await;
    let mut ids = Vec::new();
    for (company, email) in [
        ("Acme", "a@acme.example"),
        ("Bravo", "b@bravo.example"),
        ("Charlie", "c@charlie.example"),
    ] {
        ids.push(service.signup_ready(company, email).await);
    }
    let (status, body) = run(
        &service,
        json!({
            "migration_sql": "ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);",
            "version": "20240127000000_add_new_field",
            "strategy": "canary:1",
        }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let rollout_id = body["rollout_id"].as_i64().unwrap();

    let report = service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "completed"
        })
        .await;
    assert_eq!(report["rollout_id"], rollout_id);
    assert_eq!(report["succeeded"], 3);
    assert_eq!(report["tenants"].as_array().unwrap().len(), 3);
    assert!(report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["version"] == 20240127000000_i64));
    for id in &ids {
        let (version, columns) = version_and_columns(&service, id).await;
        assert_eq!(version, 20240127000000);
        assert!(columns.contains(&"new_field".to_owned()), "{columns:?}");
    }

    // A tenant that signs up afterwards gets the new migration during onboarding.
    let late = service.signup_ready("Delta", "d@delta.example").await;
    assert_eq!(version_and_columns(&service, &late).await.0, 20240127000000);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_or_misnumbered_migrations_are_refused_with_reasons() {
    let service = Service::start().await;
    let id = service.signup_ready("Acme", "a@acme.example").await;

    let (status, body) = run(
        &service,
        json!({ "migration_sql": "ALTER TABLE items DROP COLUMN price_cents;", "version": "20240201000000_drop_price" }),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["details"][0]["rule"], "ban-drop-column", "{body}");

    let (status, body) = run(
        &service,
        json!({ "migration_sql": "SELECT 1;", "version": "20230101000000_too_old" }),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("not newer"),
        "{body}"
    );

    let (status, _) = run(
        &service,
        json!({ "migration_sql": "SELECT 1;", "version": "no_digits" }),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = run(
        &service,
        json!({ "migration_sql": "SELECT 1;", "version": "20240301000000_x", "strategy": "sideways" }),
    )
    .await;
    assert_eq!(status, 422);

    // Nothing was recorded or applied.
    assert_eq!(version_and_columns(&service, &id).await.0, 20240115000000);
    let (status, _) = service.admin_get("/api/admin/migrations/status").await;
    assert_eq!(status, 404);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_added_by_another_server_reaches_new_tenants() {
    use tenancy_core::testing::TestDatabase;
    use tenancy_core::{DatabaseTarget, SchemaMigrator};
    use tenancy_examples::control_plane::ControlPlane;
    use tenant_migrate::MigrationCatalog;

    let control = TestDatabase::create().await.unwrap();
    let first = tenancy_examples::migrations::open(
        &ControlPlane::open(control.url().expose()).await.unwrap(),
    )
    .await
    .unwrap();
    let second = tenancy_examples::migrations::open(
        &ControlPlane::open(control.url().expose()).await.unwrap(),
    )
    .await
    .unwrap();
    first
        .add(
            "20240127000000_add_new_field",
            "ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);",
        )
        .await
        .unwrap();
    assert_eq!(second.last_read().latest_version(), Some(20240115000000));

    let tenant_db = TestDatabase::create().await.unwrap();
    let id = TenantId::try_from("acme").unwrap();
    let report = second
        .migrate(&id, &DatabaseTarget::new(tenant_db.url().clone()))
        .await
        .unwrap();
    assert_eq!(report.to_version, Some(20240127000000));
    assert_eq!(report.applied, 3);
}

async fn admin_post(service: &Service, path: &str, body: Value) -> (u16, Value) {
    service.admin(reqwest::Method::POST, path, Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_resume_and_rollback_answer_what_they_did() {
    let service = Service::start().await;
    let id = service.signup_ready("Acme", "a@acme.example").await;

    // Nothing rolled out yet: nothing to halt, resume or roll back.
    let halted = admin_post(&service, "/api/admin/migrations/halt", json!({})).await;
    assert_eq!(halted, (200, json!({"halted": false})));
    let (status, body) = admin_post(&service, "/api/admin/migrations/resume", json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin_post(&service, "/api/admin/migrations/rollback", json!({})).await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = run(
        &service,
        json!({
            "migration_sql": "ALTER TABLE items ADD COLUMN IF NOT EXISTS colour TEXT;",
            "version": "20240127000000_add_colour",
        }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "completed"
        })
        .await;
    assert_eq!(version_and_columns(&service, &id).await.0, 20240127000000);

    // A migration added through the API has no down script: refused up front, with
    // the reason, and nothing is reverted.
    let (status, body) = admin_post(&service, "/api/admin/migrations/rollback", json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("no down script"),
        "{body}"
    );
    assert_eq!(version_and_columns(&service, &id).await.0, 20240127000000);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_rollout_resumes_through_the_api() {
    let service = Service::start().await;
    service.signup_ready("Acme", "a@acme.example").await;
    // A rollout of the current migrations recorded by another runner, not run yet.
    let assembly = &service.assembly;
    let set = assembly.migrations.last_read().as_ref().clone();
    let recorded = tenant_migrate::Rollout::of_migrations(
        assembly.plane.directory.clone(),
        set,
        assembly.plane.rollouts.clone(),
    )
    .build()
    .start()
    .await
    .unwrap();

    let halted = admin_post(
        &service,
        "/api/admin/migrations/halt",
        json!({"reason": "maintenance window"}),
    )
    .await;
    assert_eq!(halted, (200, json!({"halted": true})));
    let (_, report) = service.admin_get("/api/admin/migrations/status").await;
    assert_eq!(
        (&report["halted"], &report["halted_reason"]),
        (&json!(true), &json!("maintenance window"))
    );

    let (status, body) = admin_post(&service, "/api/admin/migrations/resume", json!({})).await;
    assert_eq!((status, &body), (202, &json!({"rollout_id": recorded.id})));
    let report = service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "completed"
        })
        .await;
    assert_eq!(report["rollout_id"], recorded.id);
    assert_eq!(report["halted"], false);
    service.stop().await;
}

/// A migration that fails everywhere blocks nothing for good: posting the same
/// version with new SQL replaces it (and signups stopped at their migrate step
/// resume by themselves), `DELETE` withdraws one, and neither is allowed once a
/// tenant applied the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_migration_is_replaced_or_withdrawn_and_stopped_signups_resume() {
    let service = Service::start().await;
    let acme = service.signup_ready("Acme", "a@acme.example").await;

    let (status, body) = run(
        &service,
        json!({ "migration_sql": "ALTER TABLE missing_table ADD COLUMN note TEXT;", "version": "20240301000000_note" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let halted = service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "halted"
        })
        .await;
    assert!(
        halted["halted_reason"]
            .as_str()
            .unwrap()
            .contains("every one"),
        "{halted}"
    );

    // A signup meanwhile stops at its migrate step.
    let response = service
        .http
        .post(service.url("/api/signup"))
        .json(&json!({ "company": "Bravo", "email": "b@bravo.example" }))
        .send()
        .await
        .unwrap();
    let bravo = response.json::<Value>().await.unwrap()["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    service
        .wait_for(&format!("/api/admin/tenants/{bravo}"), |_, tenant| {
            tenant["status"]["state"] == "failed" && tenant["status"]["step"] == "migrate"
        })
        .await;

    // Same version, fixed SQL: replaced and rolled out; Bravo's onboarding resumes.
    let (status, body) = run(
        &service,
        json!({ "migration_sql": "ALTER TABLE items ADD COLUMN IF NOT EXISTS note TEXT;", "version": "20240301000000_note" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "completed"
        })
        .await;
    service
        .wait_for(&format!("/api/admin/tenants/{bravo}"), |_, tenant| {
            tenant["status"]["state"] == "ready"
        })
        .await;
    assert_eq!(version_and_columns(&service, &acme).await.0, 20240301000000);

    // Applied now: neither replaced nor withdrawn.
    let (status, body) = run(
        &service,
        json!({ "migration_sql": "SELECT 1;", "version": "20240301000000_note" }),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin_delete(&service, "/api/admin/migrations/20240301000000").await;
    assert_eq!(status, 409, "{body}");

    // A second broken one is withdrawn; the set is back where it was.
    let (status, _) = run(
        &service,
        json!({ "migration_sql": "ALTER TABLE missing_table ADD COLUMN x INT;", "version": "20240302000000_x" }),
    )
    .await;
    assert_eq!(status, 202);
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "halted"
        })
        .await;
    let (status, body) = admin_delete(&service, "/api/admin/migrations/20240302000000").await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"withdrawn": 20240302000000_i64, "latest_version": 20240301000000_i64})
        )
    );

    // Empty SQL is refused.
    let (status, body) = run(
        &service,
        json!({ "migration_sql": "  -- nothing\n", "version": "20240303000000_nothing" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    service.stop().await;
}

async fn admin_delete(service: &Service, path: &str) -> (u16, Value) {
    service.admin(reqwest::Method::DELETE, path, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposed_migration_is_rehearsed_on_a_copy_of_the_canary() {
    let service = Service::start().await;
    let mut ids = [
        service.signup_ready("Bravo", "b@bravo.example").await,
        service.signup_ready("Acme", "a@acme.example").await,
    ];
    ids.sort();
    let before = version_and_columns(&service, &ids[0]).await;

    let (status, body) = admin_post(
        &service,
        "/api/admin/migrations/rehearse",
        json!({
            "version": "20240127000000_add_note",
            "migration_sql": "ALTER TABLE items ADD COLUMN note TEXT;",
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The canary: the first tenant in id order, as `canary:1` would take.
    assert_eq!(body["tenant"], ids[0].as_str());
    assert_eq!(body["failure"], Value::Null, "{body}");
    let migrations = body["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 1, "{body}");
    assert_eq!(migrations[0]["version"], 20240127000000_i64);
    assert!(
        migrations[0]["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mode"] == "AccessExclusiveLock" && l["relation"] == "public.items"),
        "{body}"
    );
    assert_ne!(
        migrations[0]["fingerprint_after"],
        body["fingerprint_before"]
    );
    // The tenant did not change, and nothing was rolled out.
    assert_eq!(version_and_columns(&service, &ids[0]).await, before);
    let (status, _) = service.admin_get("/api/admin/migrations/status").await;
    assert_eq!(status, 404);

    // A migration that fails is the finding, on the tenant named.
    let (status, body) = admin_post(
        &service,
        "/api/admin/migrations/rehearse",
        json!({
            "tenant": ids[1].as_str(),
            "version": "20240128000000_broken",
            "migration_sql": "ALTER TABLE no_such_table ADD COLUMN x INT;",
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"], ids[1].as_str());
    assert_eq!(body["failure"]["version"], 20240128000000_i64, "{body}");
    assert!(body["failure"]["error"]
        .as_str()
        .unwrap()
        .contains("no_such_table"));

    let (status, body) = admin_post(
        &service,
        "/api/admin/migrations/rehearse",
        json!({"tenant": "no-such-tenant"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = admin_post(
        &service,
        "/api/admin/migrations/rehearse",
        json!({"migration_sql": "SELECT 1;"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    service.stop().await;
}

/// The versions a tenant's database recorded as applied.
async fn history(service: &Service, id: &TenantId) -> Vec<i64> {
    let tenant = service
        .assembly
        .plane
        .directory
        .get(id)
        .await
        .unwrap()
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(tenant.database.unwrap().url.expose())
        .await
        .unwrap();
    let versions =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    versions
}

/// A run refused for its strategy stores nothing: the next run does not bring
/// its migration along without a canary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refused_for_an_empty_canary_wave_stores_nothing() {
    let service = Service::start().await;
    let acme = service.signup_ready("Acme", "a@acme.example").await;
    let before = history(&service, &acme).await;

    let (status, body) = run(
        &service,
        json!({ "migration_sql": "create table canary_only(x int);", "version": "20250101000000", "strategy": "canary:tag=beta" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the canary wave would be empty"),
        "{body}"
    );

    let (status, body) = run(
        &service,
        json!({ "migration_sql": "create table later(x int);", "version": "20250201000000", "strategy": "all" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "completed"
        })
        .await;
    let mut expected = before;
    expected.push(20250201000000);
    assert_eq!(history(&service, &acme).await, expected);
    service.stop().await;
}

/// A migration a tenant applied on the way to a later target whose rollout
/// failed is not withdrawn: the state records the tenant at its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_applied_on_the_way_to_a_failed_target_is_not_withdrawn() {
    let service = Service::start().await;
    let acme = service.signup_ready("Acme", "a@acme.example").await;

    // v1 fails at first (its table is missing), so its own rollout reaches no one.
    let (status, body) = run(
        &service,
        json!({ "migration_sql": "insert into helper values (1);", "version": "20250101000000" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "halted"
        })
        .await;
    let tenant = service
        .assembly
        .plane
        .directory
        .get(&acme)
        .await
        .unwrap()
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(tenant.database.unwrap().url.expose())
        .await
        .unwrap();
    sqlx::query("create table helper(x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // v2 is broken: its rollout applies v1 on the way, then fails.
    let (status, body) = run(
        &service,
        json!({ "migration_sql": "alter table missing_table add column x int;", "version": "20250201000000" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    service
        .wait_for("/api/admin/migrations/status", |status, body| {
            status == 200 && body["status"] == "halted"
        })
        .await;
    assert!(history(&service, &acme).await.contains(&20250101000000));

    let (status, body) = admin_delete(&service, "/api/admin/migrations/20250201000000").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_delete(&service, "/api/admin/migrations/20250101000000").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains(acme.as_str()),
        "{body}"
    );
    service.stop().await;
}
