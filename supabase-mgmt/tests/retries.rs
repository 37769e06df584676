//! The send path's retries and rate-limit handling: 429 with reset, 5xx, timeouts,
//! connection errors, non-idempotent creates, and client-side pacing.

mod fixtures;

use std::time::{Duration, Instant};

use fixtures::{project_json, project_ref, FakeConfig, FakeSupabase, ORG};
use serde_json::json;
use supabase_mgmt::{CreateProjectRequest, ManagementError, Region};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Answers `first` once, then `then` for good.
async fn first_then(
    server: &MockServer,
    verb: &str,
    route: &str,
    first: ResponseTemplate,
    then: ResponseTemplate,
) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(first)
        .up_to_n_times(1)
        .mount(server)
        .await;
    mount(server, verb, route, then).await;
}

async fn mount(server: &MockServer, verb: &str, route: &str, response: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

fn rate_limited(reset: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("x-ratelimit-limit", "120")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", reset)
        .set_body_json(json!({"message": "Rate limit exceeded"}))
}

#[tokio::test]
async fn a_429_waits_for_the_reset_then_succeeds() {
    let r = project_ref(1);
    let route = format!("/v1/projects/{r}");
    let server = MockServer::start().await;
    first_then(
        &server,
        "GET",
        &route,
        rate_limited("0.3"),
        ResponseTemplate::new(200).set_body_json(project_json(&r, "acme", "ACTIVE_HEALTHY")),
    )
    .await;

    let client = fixtures::client(&server);
    let started = Instant::now();
    let project = client.get_project(&r).await.unwrap();

    assert_eq!(project.project_ref, r);
    let last = client.last_rate_limit().unwrap();
    assert_eq!(
        (last.limit, last.remaining),
        (Some(120), Some(0)),
        "headers of the 429 are kept"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn retry_after_takes_precedence_over_the_reset() {
    let server = MockServer::start().await;
    first_then(
        &server,
        "GET",
        "/v1/organizations",
        rate_limited("30").insert_header("retry-after", "0"),
        ResponseTemplate::new(200).set_body_json(fixtures::organizations_json()),
    )
    .await;
    let started = Instant::now();
    fixtures::client(&server)
        .list_organizations()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait the 30 s reset"
    );
}

#[tokio::test]
async fn a_limit_that_outlasts_the_policy_is_a_rate_limited_error_with_the_reset() {
    let server = MockServer::start().await;
    mount(&server, "GET", "/v1/organizations", rate_limited("0.01")).await;
    let error = fixtures::client(&server)
        .list_organizations()
        .await
        .unwrap_err();
    match &error {
        ManagementError::RateLimited { reset, .. } => {
            assert_eq!(*reset, Some(Duration::from_millis(10)))
        }
        other => panic!("{other:?}"),
    }
    assert!(error.is_retryable());
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        5,
        "the policy's 5 attempts"
    );

    // A reset longer than the policy's time cap is not slept through.
    let server = MockServer::start().await;
    mount(&server, "GET", "/v1/organizations", rate_limited("60")).await;
    let started = Instant::now();
    let error = fixtures::client(&server)
        .list_organizations()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManagementError::RateLimited { reset: Some(reset), .. } if reset == Duration::from_secs(60))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_500_is_retried_for_reads_but_not_for_a_create() {
    let server = MockServer::start().await;
    first_then(
        &server,
        "GET",
        "/v1/projects",
        ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})),
        ResponseTemplate::new(200).set_body_json(json!([])),
    )
    .await;
    mount(
        &server,
        "POST",
        "/v1/projects",
        ResponseTemplate::new(500).set_body_json(json!({"message": "boom"})),
    )
    .await;
    let client = fixtures::client(&server);

    assert!(client.list_projects().await.unwrap().is_empty());

    let request =
        CreateProjectRequest::new("acme", ORG, "pw-0123456789".into(), Region::EuCentral1);
    let error = client.create_project(&request).await.unwrap_err();
    assert!(
        matches!(error, ManagementError::Api { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_ambiguous());
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 1, "a create is never repeated blindly");
}

#[tokio::test]
async fn a_429_on_create_is_retried_because_nothing_was_created() {
    let r = project_ref(2);
    let server = MockServer::start().await;
    first_then(
        &server,
        "POST",
        "/v1/projects",
        rate_limited("0.05"),
        ResponseTemplate::new(201).set_body_json(fixtures::created_project_json(&r, "acme")),
    )
    .await;
    let request =
        CreateProjectRequest::new("acme", ORG, "pw-0123456789".into(), Region::EuCentral1);
    let project = fixtures::client(&server)
        .create_project(&request)
        .await
        .unwrap();
    assert_eq!(project.project_ref, r);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_timeout_is_retried_for_reads() {
    let server = MockServer::start().await;
    first_then(
        &server,
        "GET",
        "/v1/organizations",
        ResponseTemplate::new(200)
            .set_body_json(fixtures::organizations_json())
            .set_delay(Duration::from_secs(2)),
        ResponseTemplate::new(200).set_body_json(fixtures::organizations_json()),
    )
    .await;
    let client = fixtures::client_builder(&server.uri())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(client.list_organizations().await.unwrap().len(), 2);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let timeout_only = MockServer::start().await;
    mount(
        &timeout_only,
        "GET",
        "/v1/organizations",
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
    )
    .await;
    let client = fixtures::client_builder(&timeout_only.uri())
        .retry_policy(fixtures::fast_policy().with_max_attempts(2))
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let error = client.list_organizations().await.unwrap_err();
    assert!(
        matches!(error, ManagementError::Timeout { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let client = fixtures::unreachable_client(2);
    let error = client.list_projects().await.unwrap_err();
    assert!(
        matches!(error, ManagementError::Transport { .. }),
        "{error:?}"
    );
    assert!(
        error.is_retryable() && !error.is_ambiguous(),
        "a refused connection never reached the server"
    );
    assert!(error.to_string().contains("check the network"), "{error}");
}

#[tokio::test]
async fn pacing_keeps_a_burst_under_the_limit_while_an_unpaced_burst_sees_429s() {
    let limit = FakeConfig {
        rate_limit: Some((10, Duration::from_millis(500))),
        ..FakeConfig::default()
    };

    let (server, fake) = FakeSupabase::start(limit.clone()).await;
    let client = fixtures::paced_client(&server, 18, Duration::from_secs(1));
    let burst = (0..30).map(|_| {
        let client = client.clone();
        async move { client.list_organizations().await }
    });
    let results = futures::future::join_all(burst).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        fake.counts(),
        (30, 0),
        "paced: every request served, none refused"
    );

    let (server, fake) = FakeSupabase::start(limit).await;
    let client = fixtures::client(&server);
    let burst = (0..30).map(|_| {
        let client = client.clone();
        async move { client.list_organizations().await }
    });
    let results = futures::future::join_all(burst).await;
    assert!(
        results.iter().all(Result::is_ok),
        "429s are retried after the reset"
    );
    let (served, limited) = fake.counts();
    assert_eq!(served, 30);
    assert!(limited > 0, "an unpaced burst is refused some requests");
}
