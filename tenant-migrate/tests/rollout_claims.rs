//! How a runner claims tenants from the state store.

mod store_support;

use std::sync::Arc;

use store_support::{notes_set, sqlite_fleet, Observed};
use tenancy_core::testing::TempSqlite;
use tenant_migrate::rollout::store::SqliteRolloutStore;
use tenant_migrate::{Rollout, RolloutStatus};

/// Jobs that end together free their places together: the runner claims them all
/// in one write instead of one claim per finished job.
// A current-thread runtime: the held jobs all end before the runner runs again.
#[tokio::test]
async fn places_freed_together_are_claimed_in_one_write() {
    let (_files, fleet) = sqlite_fleet(8, &[]).await;
    let file = TempSqlite::new();
    let store = Arc::new(
        Observed::new(SqliteRolloutStore::open(&file.url()).await.unwrap())
            .holding_first_outcomes(4),
    );

    let report = Rollout::of_migrations(fleet, notes_set(), store.clone())
        .concurrency(4)
        .build()
        .run()
        .await
        .unwrap();

    assert_eq!(report.status, RolloutStatus::Completed);
    assert_eq!(report.counts.succeeded, 8);
    let limits = store.claim_limits();
    assert_eq!(
        limits.get(..2),
        Some(&[4, 4][..]),
        "the first four places, then the four freed together: {limits:?}"
    );
}
