//! Pacing per endpoint scope, against the stand-in enforcing a limit per scope and
//! against wiremock answering 429s.

mod fixtures;

use std::time::Duration;

use fixtures::{FakeConfig, FakeSupabase, ORG};
use serde_json::json;
use supabase_mgmt::ManagementClient;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORGANIZATIONS: &str = "GET /v1/organizations";

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn served(fake: &FakeSupabase, scope: &str) -> u64 {
    fake.served_by_scope().get(scope).copied().unwrap_or(0)
}

fn burst(client: &ManagementClient, requests: usize) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let calls = (0..requests).map(|_| client.list_organizations());
        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }
    })
}

#[tokio::test]
async fn a_burst_against_one_endpoint_does_not_delay_another() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        endpoint_rate_limit: Some((5, Duration::from_secs(2))),
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::paced_client(&server, 5, Duration::from_secs(2));

    let organizations = burst(&client, 12);
    eventually("the first window of the burst is spent", || {
        served(&fake, ORGANIZATIONS) == 5
    })
    .await;
    client.available_regions(ORG, None).await.unwrap();

    assert!(
        served(&fake, ORGANIZATIONS) < 12 && !organizations.is_finished(),
        "the other endpoint was answered while the burst still waits for its windows"
    );
    organizations.await.unwrap();
    assert_eq!(served(&fake, ORGANIZATIONS), 12);
    assert_eq!(fake.counts().1, 0, "paced: nothing refused");
}

#[tokio::test]
async fn per_endpoint_pacing_spends_each_window_without_a_429() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        endpoint_rate_limit: Some((10, Duration::from_millis(500))),
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::paced_client(&server, 10, Duration::from_millis(500));

    let started = Instant::now();
    burst(&client, 25).await.unwrap();

    assert_eq!(fake.counts(), (25, 0), "every request served, none refused");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "25 requests need a third window"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_and_pauses_only_its_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixtures::organizations_json()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/projects"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let client = fixtures::paced_client(&server, 120, Duration::from_secs(60));

    let started = Instant::now();
    let limited = {
        let client = client.clone();
        tokio::spawn(async move { client.list_organizations().await })
    };
    let received = || async { server.received_requests().await.unwrap_or_default().len() };
    let deadline = Instant::now() + Duration::from_secs(5);
    while received().await == 0 {
        assert!(Instant::now() < deadline, "the first request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.list_projects().await.unwrap();
    assert!(
        !limited.is_finished(),
        "another endpoint went while the refused one waits"
    );

    let organizations = limited.await.unwrap().unwrap();
    assert_eq!(organizations.len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried only after Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(
        received().await,
        3,
        "one refusal, one retry, one other request"
    );
}
