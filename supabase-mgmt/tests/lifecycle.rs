//! Pausing, restoring and deleting projects against the stand-in, which moves a
//! project through the statuses the real service shows.

mod fixtures;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::{FakeConfig, FakeSupabase};
use supabase_mgmt::{
    HealthStatus, ManagementError, ProjectChange, ProjectDeletion, ProjectStatus, ReadinessStage,
    ServiceName, WaitOptions,
};

const WAIT: Duration = Duration::from_secs(5);

async fn active_project(fake: &FakeSupabase, client: &supabase_mgmt::ManagementClient) -> String {
    let project_ref = fake.seed_project("tenant-acme", "acme-password");
    client.wait_until_ready(&project_ref, WAIT).await.unwrap();
    project_ref
}

/// Records the statuses a wait reports.
fn recording() -> (WaitOptions, Arc<Mutex<Vec<ReadinessStage>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = WaitOptions::new(WAIT).on_progress(move |progress| {
        sink.lock().unwrap().push(progress.stage.clone());
    });
    (options, seen)
}

#[tokio::test]
async fn a_paused_project_goes_through_pausing_to_inactive_and_its_health_says_so() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        pausing_polls: 2,
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::client(&server);
    let project_ref = active_project(&fake, &client).await;

    assert_eq!(
        client.pause_project(&project_ref).await.unwrap(),
        ProjectChange::Requested
    );
    let (options, seen) = recording();
    let paused = client
        .wait_until_paused_with(&project_ref, &options)
        .await
        .unwrap();

    assert_eq!(paused.status, ProjectStatus::Inactive);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ReadinessStage::Project(ProjectStatus::Pausing),
            ReadinessStage::Project(ProjectStatus::Pausing),
            ReadinessStage::Ready
        ]
    );
    let health = client
        .project_health(&project_ref, &[ServiceName::Db, ServiceName::Pooler])
        .await
        .unwrap();
    assert!(
        health.iter().all(|h| h.status == HealthStatus::Unhealthy),
        "{health:?}"
    );
}

#[tokio::test]
async fn pausing_twice_is_already_underway_not_an_error() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let client = fixtures::client(&server);
    let project_ref = active_project(&fake, &client).await;

    client.pause_project(&project_ref).await.unwrap();
    assert_eq!(
        client.pause_project(&project_ref).await.unwrap(),
        ProjectChange::AlreadyUnderway(ProjectStatus::Pausing),
        "the second pause reads the project while it is still pausing"
    );
    client.wait_until_paused(&project_ref, WAIT).await.unwrap();
    assert_eq!(
        client.pause_project(&project_ref).await.unwrap(),
        ProjectChange::AlreadyUnderway(ProjectStatus::Inactive)
    );
}

#[tokio::test]
async fn a_restored_project_comes_back_through_restoring_and_is_healthy() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        restoring_polls: 2,
        coming_up_polls: 1,
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::client(&server);
    let project_ref = fake.seed_paused_project("tenant-acme", "acme-password");

    assert_eq!(
        client.restore_project(&project_ref).await.unwrap(),
        ProjectChange::Requested
    );
    let (options, seen) = recording();
    let restored = client
        .wait_until_ready_with(&project_ref, &options.restoring(true))
        .await
        .unwrap();

    assert_eq!(restored.status, ProjectStatus::ActiveHealthy);
    let statuses: Vec<ReadinessStage> = seen.lock().unwrap().clone();
    assert_eq!(
        statuses,
        [
            ReadinessStage::Project(ProjectStatus::Inactive),
            ReadinessStage::Project(ProjectStatus::Restoring),
            ReadinessStage::Project(ProjectStatus::Restoring),
            ReadinessStage::Project(ProjectStatus::ComingUp),
            ReadinessStage::Ready
        ]
    );
    assert_eq!(
        client.restore_project(&project_ref).await.unwrap(),
        ProjectChange::AlreadyUnderway(ProjectStatus::ActiveHealthy),
        "restoring a project that is up changes nothing"
    );
}

#[tokio::test]
async fn pause_then_restore_round_trip_with_the_helpers() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let client = fixtures::client(&server);
    let project_ref = active_project(&fake, &client).await;

    client.pause_project(&project_ref).await.unwrap();
    client.wait_until_paused(&project_ref, WAIT).await.unwrap();
    client.restore_project(&project_ref).await.unwrap();
    let project = client
        .wait_until_restored(&project_ref, WAIT)
        .await
        .unwrap();

    assert_eq!(project.status, ProjectStatus::ActiveHealthy);
}

#[tokio::test]
async fn restoring_a_project_that_is_coming_up_is_refused_by_the_stand_in_and_reported() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        terminal_status: Some("PAUSE_FAILED"),
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::client(&server);
    let project_ref = fake.seed_project("tenant-acme", "acme-password");

    let error = client.restore_project(&project_ref).await.unwrap_err();
    assert_eq!(error.status(), Some(400), "{error}");
    let error = client
        .wait_until_paused(&project_ref, WAIT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            ManagementError::ProjectFailed {
                status: ProjectStatus::PauseFailed,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_deleted_project_is_gone_and_deleting_it_again_succeeds() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let client = fixtures::client(&server);
    let project_ref = active_project(&fake, &client).await;

    let first = client.delete_project(&project_ref).await.unwrap();
    assert!(
        matches!(&first, ProjectDeletion::Deleted(d) if d.project_ref == project_ref),
        "{first:?}"
    );
    let error = client.get_project(&project_ref).await.unwrap_err();
    assert_eq!(error.status(), Some(404), "{error}");
    assert!(client
        .projects_named(fixtures::ORG, "tenant-acme")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        client.delete_project(&project_ref).await.unwrap(),
        ProjectDeletion::AlreadyGone
    );
}
