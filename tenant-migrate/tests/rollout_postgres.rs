//! Fleet rollouts on real PostgreSQL: many tenant databases, a PostgreSQL state
//! store, broken tenants, halts, crashed and concurrent runners, rollback.

mod rollout_support;

use std::sync::Arc;
use std::time::Duration;

use rollout_support::{
    another_store, control_plane, real_migrator, records, rollout, slow, v1, v2, v2_irreversible,
    with_password, Fleet, TENANT_PASSWORD,
};
use sqlx::Connection;
use tenancy_core::{DatabaseUrl, TenantId};
use tenant_migrate::rollout::store::{PostgresRolloutStore, RolloutStore, TenantRecord};
use tenant_migrate::{
    FailureThreshold, RolloutError, RolloutEvent, RolloutStatus, Strategy, TenantState,
};

fn state_of(records: &[TenantRecord], id: &TenantId) -> TenantState {
    records.iter().find(|r| &r.tenant_id == id).unwrap().state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_tenant_fails_alone_and_no_password_reaches_the_state_store() {
    let fleet = Fleet::create(8).await;
    fleet.break_by_dropping(2).await;
    fleet.break_by_conflict(5).await;
    let (control, store) = control_plane().await;
    let migrator = real_migrator(&[v1(), v2()]);
    let (builder, events) = rollout(&fleet, migrator, store.clone());
    let rollout = builder.concurrency(4).build();

    let report = rollout.run().await.unwrap();

    assert_eq!(report.counts.succeeded, 6);
    assert_eq!(report.counts.failed, 2);
    // Nothing is left to run: it halts with the reason (still open, so that a
    // run after the fix retries the failed tenants).
    assert_eq!(report.status, RolloutStatus::Halted);
    assert_eq!(
        report.halted_reason.as_deref(),
        Some("2 of 8 tenants failed; fix them and run again to retry them")
    );
    let records = records(&rollout, report.rollout_id).await;
    for i in [0, 1, 3, 4, 6, 7] {
        assert_eq!(fleet.history(i).await, vec![1, 2]);
        assert_eq!(fleet.applications(i).await, vec![(1, 1), (2, 1)]);
        assert_eq!(state_of(&records, fleet.id(i)), TenantState::Succeeded);
    }
    fleet.assert_untouched([5]).await;
    for i in [2, 5] {
        let record = records
            .iter()
            .find(|r| &r.tenant_id == fleet.id(i))
            .unwrap();
        assert_eq!(record.state, TenantState::Failed);
        assert!(record.error.as_deref().is_some_and(|e| !e.is_empty()));
    }
    let failures = events.count(|e| matches!(e, RolloutEvent::TenantFailed { .. }));
    assert_eq!(failures, 2);

    // No tenant password reaches the state tables (errors name databases redacted).
    let mut conn = sqlx::PgConnection::connect(control.url().expose())
        .await
        .unwrap();
    let dump: String = sqlx::query_scalar(
        "SELECT (SELECT string_agg(t::text, ' ') FROM tenancy_rollouts t) || ' ' ||
                (SELECT string_agg(t::text, ' ') FROM tenancy_rollout_tenants t)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(dump.contains("t00"), "{dump}");
    assert!(dump.contains("[redacted]"), "{dump}");
    assert!(!dump.contains(TENANT_PASSWORD), "{dump}");
    assert!(fleet.target(0).await.url.expose().contains(TENANT_PASSWORD));
    let with_password = DatabaseUrl::parse(&with_password(control.url().expose())).unwrap();
    let store = PostgresRolloutStore::connect(&with_password).await.unwrap();
    assert!(!format!("{store:?} {rollout:?}").contains(TENANT_PASSWORD));

    // Repairing the conflict and running again retries only the failed tenants.
    fleet.repair(5).await;
    let again = rollout.run().await.unwrap();
    assert_eq!(again.rollout_id, report.rollout_id);
    assert_eq!(again.counts.succeeded, 7);
    assert_eq!(again.counts.failed, 1);
    assert_eq!(fleet.applications(5).await, vec![(1, 1), (2, 1)]);
    assert_eq!(fleet.applications(0).await, vec![(1, 1), (2, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waves_halt_at_the_threshold_and_leave_later_waves_untouched() {
    let fleet = Fleet::create(20).await;
    // Waves 10/50/100 of 20 tenants: t00–t01, t02–t09, t10–t19.
    fleet.break_by_conflict(3).await;
    fleet.break_by_conflict(6).await;
    let (_control, store) = control_plane().await;
    let migrator = real_migrator(&[v1()]);
    let strategy = Strategy::waves([10, 50, 100])
        .unwrap()
        .with_max_failures(FailureThreshold::Count(1));
    let (builder, events) = rollout(&fleet, migrator, store);
    let rollout = builder.strategy(strategy).concurrency(2).build();

    let report = rollout.run().await.unwrap();

    assert_eq!(report.status, RolloutStatus::Halted);
    assert!(report
        .halted_reason
        .as_deref()
        .unwrap()
        .contains("2 tenants failed"));
    assert_eq!(report.counts.failed, 2);
    let last_wave = report.waves.iter().find(|w| w.wave == 2).unwrap();
    assert_eq!(last_wave.counts.pending, 10, "{:?}", report.waves);
    fleet.assert_untouched(10..20).await;
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::Halted { .. })),
        1
    );
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::WaveFinished { wave: 0, .. })),
        1
    );

    // Fixed: the rerun resumes the halted rollout, retries the failures, finishes.
    fleet.repair(3).await;
    fleet.repair(6).await;
    let resumed = rollout.run().await.unwrap();
    assert_eq!(resumed.rollout_id, report.rollout_id);
    assert_eq!(resumed.status, RolloutStatus::Completed);
    assert_eq!(resumed.counts.succeeded, 20);
    for i in 0..20 {
        assert_eq!(fleet.applications(i).await, vec![(1, 1)], "t{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_killed_mid_rollout_is_resumed_and_applies_each_tenant_once() {
    let fleet = Fleet::create(10).await;
    let (_control, store) = control_plane().await;
    let migrator = real_migrator(&[slow(v1(), Duration::from_millis(300)), v2()]);
    let (builder, events) = rollout(&fleet, migrator.clone(), store.clone());
    let first = Arc::new(builder.concurrency(3).build());

    let task = tokio::spawn({
        let first = first.clone();
        async move { first.run().await }
    });
    let started = || events.count(|e| matches!(e, RolloutEvent::TenantStarted { .. }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while started() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "five tenants never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let interrupted = first.status().await.unwrap().unwrap();
    assert!(interrupted.counts.running > 0, "{:?}", interrupted.counts);
    assert!(interrupted.counts.succeeded < 10);

    let (builder, _) = rollout(&fleet, migrator, store);
    let report = builder.concurrency(3).build().run().await.unwrap();
    assert_eq!(report.rollout_id, interrupted.rollout_id);
    assert_eq!(report.status, RolloutStatus::Completed);
    assert_eq!(report.counts.succeeded, 10);
    for i in 0..10 {
        assert_eq!(fleet.history(i).await, vec![1, 2], "t{i}");
        assert_eq!(fleet.applications(i).await, vec![(1, 1), (2, 1)], "t{i}");
    }
}

async fn runners_share_one_rollout(runners: usize) {
    let fleet = Fleet::create(16).await;
    let (control, store) = control_plane().await;
    let migrator = real_migrator(&[slow(v1(), Duration::from_millis(50)), v2()]);
    let mut tasks = Vec::new();
    for _ in 0..runners {
        // Each runner has its own store connection, as a separate process would.
        let store: Arc<dyn RolloutStore> = another_store(&control).await;
        let (builder, _) = rollout(&fleet, migrator.clone(), store);
        let rollout = builder.concurrency(3).build();
        tasks.push(tokio::spawn(async move { rollout.run().await }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().rollout_id);
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "one rollout: {ids:?}");

    let (builder, _) = rollout(&fleet, migrator, store);
    let report = builder.build().status().await.unwrap().unwrap();
    assert_eq!(report.status, RolloutStatus::Completed);
    assert_eq!(report.counts.succeeded, 16);
    for i in 0..16 {
        assert_eq!(fleet.applications(i).await, vec![(1, 1), (2, 1)], "t{i}");
    }
    let mut conn = sqlx::PgConnection::connect(control.url().expose())
        .await
        .unwrap();
    let rollouts: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy_rollouts")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rollouts, 1);
    let claims: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM tenancy_rollout_tenants")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(claims, 16, "every tenant claimed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_at_once_migrate_each_tenant_once() {
    runners_share_one_rollout(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_runners_at_once_migrate_each_tenant_once() {
    runners_share_one_rollout(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_restores_the_previous_version_on_exactly_the_migrated_tenants() {
    let fleet = Fleet::create(6).await;
    let (_control, store) = control_plane().await;
    // Every tenant at version 1 first.
    let (base, _) = rollout(&fleet, real_migrator(&[v1()]), store.clone());
    assert!(base.build().run().await.unwrap().is_complete());
    // t01 is already at version 2 (migrated by someone else): not this rollout's.
    let both = real_migrator(&[v1(), v2()]);
    let mut session = both.connect(&fleet.target(1).await).await.unwrap();
    session.apply(2).await.unwrap();
    session.close().await;
    // t04 cannot take version 2.
    let mut conn = fleet.connect(4).await;
    sqlx::query("ALTER TABLE items ADD COLUMN name INT")
        .execute(&mut conn)
        .await
        .unwrap();

    let (builder, events) = rollout(&fleet, both, store);
    let rollout = builder.build();
    let forward = rollout.run().await.unwrap();
    assert_eq!(
        (
            forward.counts.succeeded,
            forward.counts.skipped,
            forward.counts.failed
        ),
        (4, 1, 1)
    );

    let back = rollout.rollback().await.unwrap();

    assert_eq!(back.status, RolloutStatus::RolledBack);
    assert_eq!(back.counts.rolled_back, 4);
    let records = records(&rollout, back.rollout_id).await;
    for i in [0, 2, 3, 5] {
        assert_eq!(fleet.history(i).await, vec![1], "t{i} is back at version 1");
        assert_eq!(state_of(&records, fleet.id(i)), TenantState::RolledBack);
    }
    assert_eq!(
        fleet.history(1).await,
        vec![1, 2],
        "t01 was not migrated by this rollout"
    );
    assert_eq!(state_of(&records, fleet.id(1)), TenantState::Skipped);
    assert_eq!(state_of(&records, fleet.id(4)), TenantState::Failed);
    let reverted = events.count(|e| {
        matches!(
            e,
            RolloutEvent::TenantRolledBack {
                to_version: Some(1),
                ..
            }
        )
    });
    assert_eq!(reverted, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_of_an_irreversible_migration_is_refused_before_touching_anything() {
    let fleet = Fleet::create(3).await;
    let (_control, store) = control_plane().await;
    let (base, _) = rollout(&fleet, real_migrator(&[v1()]), store.clone());
    base.build().run().await.unwrap();
    let migrator = real_migrator(&[v1(), v2_irreversible()]);
    let (builder, _) = rollout(&fleet, migrator, store);
    let rollout = builder.build();
    rollout.run().await.unwrap();

    let error = rollout.rollback().await.unwrap_err();

    assert!(
        matches!(error, RolloutError::Irreversible { version: 2 }),
        "{error}"
    );
    assert!(error.to_string().contains("down"));
    for i in 0..3 {
        assert_eq!(fleet.history(i).await, vec![1, 2]);
    }
    assert_eq!(
        rollout.status().await.unwrap().unwrap().status,
        RolloutStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_are_renewed_while_a_migration_outlasts_them() {
    let fleet = Fleet::create(3).await;
    let (control, _) = control_plane().await;
    // Each migration takes three leases' time; a second runner waits to take over.
    let migrator = real_migrator(&[slow(v1(), Duration::from_millis(2400))]);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (builder, _) = rollout(&fleet, migrator.clone(), another_store(&control).await);
        let rollout = builder
            .lease(Duration::from_millis(800))
            .concurrency(2)
            .build();
        tasks.push(tokio::spawn(async move { rollout.run().await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_complete());
    }

    let mut conn = sqlx::PgConnection::connect(control.url().expose())
        .await
        .unwrap();
    let claims: i64 = sqlx::query_scalar("SELECT sum(attempts) FROM tenancy_rollout_tenants")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        claims, 3,
        "no tenant was taken over while its runner worked"
    );
    for i in 0..3 {
        assert_eq!(fleet.applications(i).await, vec![(1, 1)], "t{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_in_which_every_tenant_failed_reports_itself_halted() {
    let fleet = Fleet::create(3).await;
    for i in 0..3 {
        fleet.break_by_conflict(i).await;
    }
    let (_control, store) = control_plane().await;
    let (builder, events) = rollout(&fleet, real_migrator(&[v1()]), store);
    let rollout = builder.build();

    let report = rollout.run().await.unwrap();

    assert_eq!(report.counts.failed, 3);
    assert_eq!(report.status, RolloutStatus::Halted, "{report}");
    assert!(
        report
            .halted_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("every one of the 3 tenants failed")),
        "{report}"
    );
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::Halted { .. })),
        1
    );
    // The status a later reader sees says the same.
    let status = rollout.status().await.unwrap().unwrap();
    assert_eq!(status.status, RolloutStatus::Halted);

    // Fixed, a run resumes it and retries them.
    for i in 0..3 {
        fleet.repair(i).await;
    }
    let report = rollout.run().await.unwrap();
    assert!(report.is_complete(), "{report}");
}

/// One rollout serves a migration set until it is rolled back: a rerun records
/// nothing new, a tenant that joined later is added to it, and a rollback reverts
/// every tenant any run of the set migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_and_joiners_share_one_rollout_that_rolls_back_whole() {
    let mut fleet = Fleet::create(3).await;
    let (_control, store) = control_plane().await;
    let migrations = [v1(), v2()];
    let run = |fleet: &Fleet| {
        let (builder, events) = rollout(fleet, real_migrator(&migrations), store.clone());
        (builder.build(), events)
    };
    let (first, _) = run(&fleet);
    let report = first.run().await.unwrap();
    assert!(report.is_complete());

    // A harmless rerun: same rollout, nothing started.
    let (rerun, events) = run(&fleet);
    let again = rerun.run().await.unwrap();
    assert_eq!(again.rollout_id, report.rollout_id);
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::TenantStarted { .. })),
        0
    );

    // A tenant joins: it is unlisted until the next run, which takes only it.
    let joined = fleet.join(&[]).await;
    let (later, events) = run(&fleet);
    assert_eq!(
        later.unlisted(report.rollout_id).await.unwrap(),
        vec![fleet.id(joined).clone()]
    );
    let after = later.run().await.unwrap();
    assert_eq!(after.rollout_id, report.rollout_id);
    assert!(after.is_complete(), "{after}");
    assert_eq!(after.counts.succeeded, 4);
    assert_eq!(
        events.count(|e| matches!(e, RolloutEvent::TenantStarted { .. })),
        1
    );
    assert_eq!(fleet.history(joined).await, vec![1, 2]);
    assert!(later.unlisted(report.rollout_id).await.unwrap().is_empty());

    // The rollback reverts all four, the first run's tenants included.
    let reverted = later.rollback().await.unwrap();
    assert!(reverted.is_rolled_back(), "{reverted}");
    for i in 0..4 {
        assert_eq!(fleet.history(i).await, Vec::<i64>::new(), "t{i}");
    }
}

/// A tenant that joins while the rollout is halted is taken in when it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_joins_a_halted_rollout_is_migrated_when_it_resumes() {
    let mut fleet = Fleet::create(3).await;
    fleet.break_by_conflict(1).await;
    let (_control, store) = control_plane().await;
    let (builder, _) = rollout(&fleet, real_migrator(&[v1()]), store.clone());
    let report = builder.build().run().await.unwrap();
    assert!(report.is_halted(), "{report}");

    let joined = fleet.join(&[]).await;
    fleet.repair(1).await;
    let (builder, _) = rollout(&fleet, real_migrator(&[v1()]), store);
    let resumed = builder.build().run().await.unwrap();
    assert_eq!(resumed.rollout_id, report.rollout_id);
    assert!(resumed.is_complete(), "{resumed}");
    assert_eq!(resumed.counts.succeeded, 4);
    assert_eq!(fleet.history(joined).await, vec![1]);
}
