//! A billing database made by the release before reconciliation (no
//! `billing_reconcile_cursor` table, schema version 1) is upgraded when a store opens
//! it, and keeps its tenants, processed events, parked events and queued effects.

use std::sync::Arc;

use stripe_billing::{
    BillingNotice, BillingPhase, BillingProcessor, BillingState, BillingStore, Effect,
    LifecycleConfig, PlanCatalog, PostgresBillingStore, PricingPlan, ReconcileCursor,
    SqliteBillingStore,
};
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::TenantId;
use time::macros::datetime;

/// The tables of schema version 1, as that release created them (SQLite).
const SQLITE_V1: &str = "
    CREATE TABLE billing_tenants (tenant_id TEXT PRIMARY KEY, customer_id TEXT,
        phase TEXT NOT NULL, due_at INTEGER, state TEXT NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE billing_events (event_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,
        processed_at INTEGER NOT NULL);
    CREATE TABLE billing_parked_events (event_id TEXT PRIMARY KEY, customer_id TEXT,
        body TEXT NOT NULL, parked_at INTEGER NOT NULL);
    CREATE TABLE billing_effects (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL,
        effect TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE tenancy_schema_versions (component TEXT PRIMARY KEY NOT NULL, version BIGINT NOT NULL);
    INSERT INTO tenancy_schema_versions VALUES ('stripe_billing', 1);";

/// The same in PostgreSQL.
const POSTGRES_V1: &str = "
    CREATE TABLE billing_tenants (tenant_id TEXT PRIMARY KEY, customer_id TEXT,
        phase TEXT NOT NULL, due_at BIGINT, state JSONB NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
    CREATE TABLE billing_events (event_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,
        processed_at TIMESTAMPTZ NOT NULL DEFAULT now());
    CREATE TABLE billing_parked_events (event_id TEXT PRIMARY KEY, customer_id TEXT,
        body TEXT NOT NULL, parked_at BIGINT NOT NULL);
    CREATE TABLE billing_effects (id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL,
        effect JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
    CREATE TABLE tenancy_schema_versions (component TEXT PRIMARY KEY NOT NULL, version BIGINT NOT NULL);
    INSERT INTO tenancy_schema_versions VALUES ('stripe_billing', 1);";

fn config() -> LifecycleConfig {
    let catalog = PlanCatalog::new([PricingPlan::new("starter", "Starter")
        .monthly("price_starter_m", 9_900)
        .modules(["inventory"])])
    .unwrap();
    LifecycleConfig::new(catalog)
}

/// The rows the old release wrote: a tenant in its trial, a processed event, a
/// parked event and a queued notice; `at` writes a time column's value.
fn old_rows(at: &str) -> String {
    let (trial, _) = BillingState::start_trial(datetime!(2026-01-01 0:00 UTC), &config());
    let state = serde_json::to_string(&trial).unwrap();
    let effect = serde_json::to_string(&Effect::Notify(BillingNotice::Cancelled)).unwrap();
    format!(
        "INSERT INTO billing_tenants (tenant_id, customer_id, phase, due_at, state, updated_at) \
             VALUES ('acme', 'cus_acme', 'trialing', 1768003200, '{state}', {at});
         INSERT INTO billing_events (event_id, tenant_id, processed_at) VALUES ('evt_old', 'acme', {at});
         INSERT INTO billing_parked_events VALUES ('evt_parked', 'cus_later', '{{}}', 1767225600);
         INSERT INTO billing_effects (tenant_id, effect, created_at) VALUES ('acme', '{effect}', {at});"
    )
}

async fn keeps_its_rows_and_gains_the_cursor(store: Arc<dyn BillingStore>) {
    let processor = BillingProcessor::new(store.clone(), config());
    let acme = TenantId::new("acme").unwrap();
    let state = processor.state(&acme).await.unwrap().unwrap();
    assert!(matches!(state.phase, BillingPhase::Trialing { .. }));
    assert_eq!(
        state,
        BillingState::start_trial(datetime!(2026-01-01 0:00 UTC), &config()).0
    );
    let processed = store
        .processed_events(&["evt_old".to_owned(), "evt_new".to_owned()])
        .await
        .unwrap();
    assert_eq!(processed.into_iter().collect::<Vec<_>>(), ["evt_old"]);
    assert_eq!(store.parked(None, None, 10).await.unwrap().len(), 1);
    let effects = store.pending_effects(10).await.unwrap();
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].effect, Effect::Notify(BillingNotice::Cancelled));

    // The table the upgrade added works.
    assert_eq!(store.reconcile_cursor().await.unwrap(), None);
    let cursor = ReconcileCursor::new("evt_new", datetime!(2026-01-02 0:00 UTC));
    store.save_reconcile_cursor(&cursor).await.unwrap();
    assert_eq!(store.reconcile_cursor().await.unwrap(), Some(cursor));
}

#[tokio::test]
async fn a_sqlite_billing_database_of_the_previous_schema_is_upgraded_with_its_rows() {
    let file = TempSqlite::new();
    let old = sqlx::SqlitePool::connect(&file.url()).await.unwrap();
    sqlx::raw_sql(SQLITE_V1).execute(&old).await.unwrap();
    sqlx::raw_sql(&old_rows("1767225600"))
        .execute(&old)
        .await
        .unwrap();
    old.close().await;

    let store = SqliteBillingStore::connect(&file.url()).await.unwrap();

    let version: i64 = sqlx::query_scalar(
        "SELECT version FROM tenancy_schema_versions WHERE component = 'stripe_billing'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(version, 2);
    keeps_its_rows_and_gains_the_cursor(Arc::new(store)).await;
}

#[tokio::test]
async fn a_postgres_billing_database_of_the_previous_schema_is_upgraded_with_its_rows() {
    let database = TestDatabase::create_with_prefix("stripe_upgrade")
        .await
        .unwrap();
    let old = database.pool().await.unwrap();
    sqlx::raw_sql(POSTGRES_V1).execute(&old).await.unwrap();
    let rows = old_rows("to_timestamp(1767225600)");
    sqlx::raw_sql(&rows).execute(&old).await.unwrap();
    old.close().await;

    let store = PostgresBillingStore::connect(database.url().expose())
        .await
        .unwrap();

    let version: i64 = sqlx::query_scalar(
        "SELECT version FROM tenancy_schema_versions WHERE component = 'stripe_billing'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(version, 2);
    keeps_its_rows_and_gains_the_cursor(Arc::new(store)).await;
}
