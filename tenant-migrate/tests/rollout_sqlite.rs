//! Fleet rollouts recorded in the embedded SQLite state store, driving a
//! migrator other than the crate's own (tenant databases on PostgreSQL).

mod rollout_support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollout_support::{rollout, v1, Fleet, PgTestMigrator};
use tenant_migrate::rollout::store::SqliteRolloutStore;
use tenant_migrate::{CanaryTenants, RolloutEvent, RolloutStatus, Strategy};

/// A fresh SQLite state file, removed on drop.
struct StateFile(PathBuf);

impl StateFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("tk-rollout-{name}-{}.db", std::process::id())))
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.0.display())
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn staging(i: usize) -> Vec<&'static str> {
    if i == 1 || i == 4 {
        vec!["staging"]
    } else {
        Vec::new()
    }
}

fn canary() -> Strategy {
    Strategy::canary(CanaryTenants::Tag("staging".into()), Strategy::AllAtOnce).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_rollout_runs_canaries_first_with_a_sqlite_state_store() {
    let fleet = Fleet::create_tagged(6, staging).await;
    let file = StateFile::new("canary");
    let store = Arc::new(SqliteRolloutStore::open(&file.url()).await.unwrap());
    let migrator = Arc::new(PgTestMigrator::new(vec![v1()]));
    let (builder, events) = rollout(&fleet, migrator.clone(), store.clone());
    let first = builder.strategy(canary()).concurrency(3).build();

    let report = first.run().await.unwrap();

    assert_eq!(report.status, RolloutStatus::Completed);
    assert_eq!(report.counts.succeeded, 6);
    assert_eq!(report.versions, vec![(Some(1), 6)]);
    let started: Vec<(String, u32)> = events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            RolloutEvent::TenantStarted { tenant, wave, .. } => Some((tenant.to_string(), wave)),
            _ => None,
        })
        .collect();
    let mut canaries: Vec<&str> = started[..2].iter().map(|(t, _)| t.as_str()).collect();
    canaries.sort_unstable();
    assert_eq!(canaries, vec!["t01", "t04"]);
    assert!(started[2..].iter().all(|(_, wave)| *wave == 1));
    for i in 0..6 {
        assert_eq!(fleet.history(i).await, vec![1]);
    }

    // A finished rollout is reused: a rerun records no new rollout and touches
    // no tenant, so that a rollback still reverts what the first run migrated.
    let reopened = Arc::new(SqliteRolloutStore::open(&file.url()).await.unwrap());
    let (builder, events) = rollout(&fleet, migrator, reopened);
    let again = builder.build().run().await.unwrap();
    assert_eq!(again.rollout_id, report.rollout_id);
    assert_eq!(again.counts.succeeded, 6);
    assert!(again.is_complete());
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::TenantStarted { .. })),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_canary_halts_before_any_other_tenant() {
    let fleet = Fleet::create_tagged(6, staging).await;
    fleet.break_by_conflict(4).await;
    let file = StateFile::new("halt");
    let store = Arc::new(SqliteRolloutStore::open(&file.url()).await.unwrap());
    let (builder, events) = rollout(&fleet, Arc::new(PgTestMigrator::new(vec![v1()])), store);
    let rollout = builder.strategy(canary()).build();

    let report = rollout.run().await.unwrap();

    assert!(report.is_halted());
    assert_eq!(
        (
            report.counts.succeeded,
            report.counts.failed,
            report.counts.pending
        ),
        (1, 1, 4)
    );
    fleet.assert_untouched([0, 2, 3, 5]).await;
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::Halted { .. })),
        1
    );
    assert!(
        rollout.halt("again").await.unwrap(),
        "a halted rollout is still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_wave_waits_for_the_soak_time() {
    let fleet = Fleet::create(4).await;
    let file = StateFile::new("soak");
    let store = Arc::new(SqliteRolloutStore::open(&file.url()).await.unwrap());
    let soak = Duration::from_millis(1200);
    let strategy = Strategy::waves([50, 100]).unwrap().with_soak(soak);
    let (builder, _) = rollout(&fleet, Arc::new(PgTestMigrator::new(vec![v1()])), store);
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let rollout = builder
        .strategy(strategy)
        .on_event({
            let timeline = timeline.clone();
            move |event| {
                timeline
                    .lock()
                    .unwrap()
                    .push((Instant::now(), event.clone()))
            }
        })
        .build();

    let report = rollout.run().await.unwrap();

    assert!(report.is_complete());
    let timeline = timeline.lock().unwrap();
    let at = |wanted: fn(&RolloutEvent) -> bool| {
        timeline
            .iter()
            .filter(|(_, e)| wanted(e))
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
    };
    let wave_one_done = at(|e| matches!(e, RolloutEvent::WaveFinished { wave: 0, .. }))[0];
    let wave_two_start = at(|e| matches!(e, RolloutEvent::WaveStarted { wave: 1, .. }))[0];
    assert!(wave_two_start - wave_one_done >= soak - Duration::from_millis(100));
    assert_eq!(
        at(|e| matches!(e, RolloutEvent::Soaking { wave: 1, .. })).len(),
        1
    );
}
