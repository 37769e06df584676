//! A migration whose version sorts below a tenant's latest applied one and was
//! never applied (`2024_03_01_x.sql`, read as version 2024, beside timestamps) is
//! never skipped in silence: on real SQLite and PostgreSQL tenants, applying,
//! the status, a fleet rollout (locked and one-request paths) and a drift survey
//! all name it.

mod support;

use std::sync::Arc;

use tenancy_core::testing::TempSqlite;
use tenancy_core::{DatabaseTarget, TenantId};
use tenant_migrate::drift::{DriftSurvey, HistoryAnomaly};
use tenant_migrate::rollout::store::SqliteRolloutStore;
use tenant_migrate::testing::TestFleet;
use tenant_migrate::{
    FleetList, FleetMember, MigrateError, MigrationSet, MigrationSetBuilder, Rollout,
    RolloutStatus, TenantMigrator, TenantState,
};

use support::quick_options;

const A: i64 = 20240101000000;
const B: i64 = 20240201000000;

fn applied_set() -> MigrationSetBuilder {
    MigrationSet::builder()
        .file("20240101000000_a.sql", "CREATE TABLE a (id INTEGER);")
        .file("20240201000000_b.sql", "CREATE TABLE b (id INTEGER);")
}

/// The applied set and a file whose date was written with `_`: version 2024.
fn set_with_gap() -> MigrationSet {
    applied_set()
        .file("2024_03_01_x.sql", "CREATE TABLE x (id INTEGER);")
        .build()
        .unwrap()
}

fn id(raw: &str) -> TenantId {
    TenantId::new(raw).unwrap()
}

/// Two SQLite tenants (`sq1`, `sq2`) and two PostgreSQL tenants (`pg1`, `pg2`)
/// at version B.
struct Tenants {
    _sqlite: Vec<TempSqlite>,
    _postgres: TestFleet,
    targets: Vec<(TenantId, DatabaseTarget)>,
}

async fn tenants_at_b() -> Tenants {
    let migrator =
        TenantMigrator::new(applied_set().build().unwrap()).with_options(quick_options());
    let mut targets = Vec::new();
    let sqlite: Vec<TempSqlite> = (0..2).map(|_| TempSqlite::new()).collect();
    for (i, file) in sqlite.iter().enumerate() {
        targets.push((id(&format!("sq{}", i + 1)), file.target().unwrap()));
    }
    let postgres = TestFleet::create(2).await;
    for i in 0..2 {
        targets.push((id(&format!("pg{}", i + 1)), postgres.target(i).await));
    }
    for (_, target) in &targets {
        migrator.apply(target).await.unwrap();
    }
    Tenants {
        _sqlite: sqlite,
        _postgres: postgres,
        targets,
    }
}

fn is_gap_error(text: &str) -> bool {
    text.contains("migration 2024 (2024_03_01_x.sql) was never applied")
        && text.contains("latest applied version 20240201000000")
        && text.contains("renaming its file")
}

#[tokio::test]
async fn applying_and_the_status_refuse_a_pending_version_below_the_applied_one() {
    let tenants = tenants_at_b().await;
    let migrator = TenantMigrator::new(set_with_gap()).with_options(quick_options());
    for (tenant, target) in &tenants.targets {
        let status = migrator.status(target).await.unwrap();
        assert_eq!(status.current_version, Some(B), "{tenant}");
        assert_eq!(status.pending_below_applied, [2024], "{tenant}");
        assert!(!status.is_consistent(), "{tenant}");

        let error = migrator.apply(target).await.unwrap_err();
        assert!(
            matches!(
                error,
                MigrateError::PendingBelowApplied {
                    version: 2024,
                    latest: B,
                    ..
                }
            ),
            "{tenant}: {error}"
        );
        assert!(is_gap_error(&error.to_string()), "{error}");
        // Nothing ran.
        let after = migrator.status(target).await.unwrap();
        assert_eq!(after.applied, [A, B], "{tenant}");

        // A session refuses under the lock, and releases it.
        let mut session = migrator.connect(target).await.unwrap();
        let locked = session.lock_status().await.unwrap_err();
        assert!(matches!(locked, MigrateError::PendingBelowApplied { .. }));
        session.close().await;
        // Reverting below it stays possible: the way to apply it in order.
        let reverted = migrator.revert(target, A).await;
        assert!(
            matches!(&reverted, Err(MigrateError::NotReversible { version: B })),
            "{tenant}: {reverted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_fails_such_tenants_instead_of_skipping_them() {
    let tenants = tenants_at_b().await;
    let mut list = FleetList::new();
    for (tenant, target) in &tenants.targets {
        list.insert(FleetMember::new(tenant.clone(), target.clone()));
    }
    let state = TempSqlite::new();
    let store = Arc::new(SqliteRolloutStore::open(&state.url()).await.unwrap());
    let rollout = Rollout::of_migrations(list, set_with_gap(), store).build();
    let report = rollout.run().await.unwrap();

    assert_eq!(report.target_version, B);
    assert_ne!(report.status, RolloutStatus::Completed, "{report:?}");
    assert_eq!(
        (report.counts.failed, report.counts.skipped),
        (4, 0),
        "{report:?}"
    );
    let records = rollout.tenants(report.rollout_id, None, 100).await.unwrap();
    assert_eq!(records.len(), 4);
    for (_, record) in records {
        assert_eq!(record.state, TenantState::Failed, "{record:?}");
        let error = record.error.clone().unwrap_or_default();
        assert!(is_gap_error(&error), "{}: {error}", record.tenant_id);
        // The start recorded is the tenant's own version, not a guess.
        assert_eq!(record.from_version, Some(B), "{record:?}");
    }
    let check = TenantMigrator::new(set_with_gap());
    for (tenant, target) in &tenants.targets {
        let status = check.status(target).await.unwrap();
        assert_eq!(status.applied, [A, B], "{tenant}");
    }
}

#[tokio::test]
async fn drift_reports_a_version_never_applied_below_the_latest() {
    let tenants = tenants_at_b().await;
    let mut list = FleetList::new();
    for (tenant, target) in &tenants.targets {
        list.insert(FleetMember::new(tenant.clone(), target.clone()));
    }
    let report = DriftSurvey::new(set_with_gap())
        .options(quick_options())
        .run(&list)
        .await
        .unwrap();
    let drifted: Vec<&str> = report.drifted_ids().map(TenantId::as_str).collect();
    assert_eq!(drifted, ["pg1", "pg2", "sq1", "sq2"]);
    for tenant in &report.drifted {
        assert!(tenant.differences.is_empty(), "{tenant:?}");
        assert_eq!(
            tenant.anomalies,
            [HistoryAnomaly::NeverApplied {
                version: 2024,
                file: "2024_03_01_x.sql".into(),
                latest: B,
            }]
        );
        let line = tenant.anomalies[0].to_string();
        assert!(
            line.contains("never applied, and sorts before the latest applied version"),
            "{line}"
        );
    }
}
