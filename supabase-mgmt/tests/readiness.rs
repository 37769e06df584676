//! `wait_until_ready`: which statuses keep it waiting, which fail fast, the health
//! phase, progress reporting and the timeout.

mod fixtures;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::{project_json, project_ref, FakeConfig, FakeSupabase};
use supabase_mgmt::{
    HealthStatus, ManagementError, ProjectStatus, Readiness, ReadinessStage, ServiceName,
    WaitOptions,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FAIL_FAST: [&str; 6] = [
    "INIT_FAILED",
    "GOING_DOWN",
    "REMOVED",
    "INACTIVE",
    "PAUSE_FAILED",
    "RESTORE_FAILED",
];
const KEEP_WAITING: [&str; 7] = [
    "COMING_UP",
    "ACTIVE_UNHEALTHY",
    "RESTORING",
    "UPGRADING",
    "RESTARTING",
    "RESIZING",
    "UNKNOWN",
];

async fn project_stuck_in(status: &str) -> (MockServer, String) {
    let r = project_ref(1);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(project_json(&r, "acme", status)))
        .mount(&server)
        .await;
    (server, r)
}

#[test]
fn the_status_table_matches_the_issue() {
    for status in FAIL_FAST {
        assert_eq!(
            ProjectStatus::from(status).readiness(),
            Readiness::Failed,
            "{status}"
        );
    }
    for status in KEEP_WAITING.into_iter().chain(["PAUSING", "SOMETHING_NEW"]) {
        assert_eq!(
            ProjectStatus::from(status).readiness(),
            Readiness::Waiting,
            "{status}"
        );
    }
    assert_eq!(ProjectStatus::ActiveHealthy.readiness(), Readiness::Ready);
}

#[tokio::test]
async fn slow_readiness_waits_through_every_stage_and_reports_progress() {
    let config = FakeConfig {
        coming_up_polls: 3,
        health_not_found: 1,
        pooler_coming_up: 1,
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let r = fake.seed_project("acme", "pw");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let options = WaitOptions::new(Duration::from_secs(5)).on_progress(move |progress| {
        recorder
            .lock()
            .unwrap()
            .push((progress.poll, progress.stage.clone()))
    });

    let project = fixtures::client(&server)
        .wait_until_ready_with(&r, &options)
        .await
        .unwrap();

    assert_eq!(project.status, ProjectStatus::ActiveHealthy);
    let seen = seen.lock().unwrap();
    let stages: Vec<&ReadinessStage> = seen.iter().map(|(_, stage)| stage).collect();
    assert_eq!(stages.len(), 6, "{stages:?}");
    assert!(stages[..3]
        .iter()
        .all(|s| **s == ReadinessStage::Project(ProjectStatus::ComingUp)));
    assert_eq!(*stages[3], ReadinessStage::HealthNotFound);
    match stages[4] {
        ReadinessStage::Services(pending) => {
            assert_eq!(pending.len(), 1);
            assert_eq!(
                (&pending[0].name, &pending[0].status),
                (&ServiceName::Pooler, &HealthStatus::ComingUp)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*stages[5], ReadinessStage::Ready);
    assert_eq!(
        seen.iter().map(|(poll, _)| *poll).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
}

#[tokio::test]
async fn fails_fast_on_terminal_statuses() {
    for status in FAIL_FAST {
        let (server, r) = project_stuck_in(status).await;
        let error = fixtures::client(&server)
            .wait_until_ready(&r, Duration::from_secs(30))
            .await
            .unwrap_err();
        match &error {
            ManagementError::ProjectFailed {
                project_ref,
                status: seen,
            } => {
                assert_eq!((project_ref.as_str(), seen.as_str()), (r.as_str(), status));
            }
            other => panic!("{status}: {other:?}"),
        }
        // Provisioning again replaces a failed project and restores a paused one;
        // nothing repairs the others.
        let repairable = ["INIT_FAILED", "RESTORE_FAILED", "INACTIVE"].contains(&status);
        assert_eq!(error.is_retryable(), repairable, "{status}");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{status}: no second poll"
        );
    }
}

#[tokio::test]
async fn keeps_waiting_on_transitional_statuses_until_the_timeout() {
    for status in KEEP_WAITING.into_iter().chain(["PAUSING", "SOMETHING_NEW"]) {
        let (server, r) = project_stuck_in(status).await;
        let error = fixtures::client(&server)
            .wait_until_ready(&r, Duration::from_millis(150))
            .await
            .unwrap_err();
        match &error {
            ManagementError::NotReady {
                last_status,
                waited,
                ..
            } => {
                assert!(last_status.contains(status), "{status}: {last_status}");
                assert!(*waited >= Duration::from_millis(150));
            }
            other => panic!("{status}: {other:?}"),
        }
        assert!(error.is_retryable());
        assert!(
            server.received_requests().await.unwrap().len() > 1,
            "{status}: polled again"
        );
    }
}

#[tokio::test]
async fn retryable_poll_failures_do_not_end_the_wait_but_permanent_ones_do() {
    let r = project_ref(2);
    let server = MockServer::start().await;
    // More 503s than one request's retry policy absorbs, then ready.
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(serde_json::json!({"message": "busy"})),
        )
        .up_to_n_times(6)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(project_json(
            &r,
            "acme",
            "ACTIVE_HEALTHY",
        )))
        .mount(&server)
        .await;
    let options = WaitOptions::new(Duration::from_secs(5)).services(Vec::new());
    let project = fixtures::client(&server)
        .wait_until_ready_with(&r, &options)
        .await
        .unwrap();
    assert_eq!(project.status, ProjectStatus::ActiveHealthy);

    let missing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"message": "Project not found"})),
        )
        .mount(&missing)
        .await;
    let error = fixtures::client(&missing)
        .wait_until_ready(&r, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManagementError::Api { status: 404, .. }),
        "{error:?}"
    );
}
