//! The state stores' look-ups for a page of tenants: rows by tenant id, and the
//! first tenants in a state, on both engines.

mod store_support;

use std::sync::Arc;

use store_support::{notes_set as set, sqlite_fleet, Observed};
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::TenantId;
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, SqliteRolloutStore};
use tenant_migrate::{Rollout, TenantState};

async fn check(store: Arc<dyn RolloutStore>) {
    // `t03` already has the table, so it fails.
    let (_files, fleet) = sqlite_fleet(5, &[3]).await;
    let report = Rollout::of_migrations(fleet, set(), store.clone())
        .build()
        .run()
        .await
        .unwrap();
    let id = report.rollout_id;
    let ids = |names: &[&str]| -> Vec<TenantId> {
        names
            .iter()
            .map(|n| TenantId::try_from(*n).unwrap())
            .collect()
    };

    let rows = store
        .tenant_rows(id, &ids(&["t04", "t00", "t03", "nobody"]))
        .await
        .unwrap();
    let listed: Vec<(&str, TenantState, Option<i64>)> = rows
        .iter()
        .map(|(_, r)| (r.tenant_id.as_str(), r.state, r.to_version))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("t00", TenantState::Succeeded, Some(1)),
            ("t03", TenantState::Failed, None),
            ("t04", TenantState::Succeeded, Some(1)),
        ]
    );
    assert!(rows[1]
        .1
        .error
        .as_deref()
        .is_some_and(|e| e.contains("notes")));
    assert!(store.tenant_rows(id, &[]).await.unwrap().is_empty());

    let failed = store
        .tenants_in_state(id, TenantState::Failed, 20)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.tenant_id.as_str(), "t03");
    let succeeded = store
        .tenants_in_state(id, TenantState::Succeeded, 2)
        .await
        .unwrap();
    let names: Vec<&str> = succeeded
        .iter()
        .map(|(_, r)| r.tenant_id.as_str())
        .collect();
    assert_eq!(names, vec!["t00", "t01"]);
}

#[tokio::test]
async fn sqlite_finds_rows_by_tenant_and_by_state() {
    let file = TempSqlite::new();
    check(Arc::new(
        SqliteRolloutStore::open(&file.url()).await.unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn postgres_finds_rows_by_tenant_and_by_state() {
    let db = TestDatabase::create_with_prefix("tk_ro_rows")
        .await
        .unwrap();
    check(Arc::new(
        PostgresRolloutStore::connect(db.url()).await.unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn the_default_look_ups_agree() {
    let file = TempSqlite::new();
    let store = SqliteRolloutStore::open(&file.url()).await.unwrap();
    check(Arc::new(Observed::new(store).with_small_pages())).await;
}
