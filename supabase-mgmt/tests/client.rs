//! Each endpoint of `ManagementClient`: the request it sends (method, path, query,
//! headers, JSON body) and how it decodes the spec-shaped answer.

mod fixtures;

use fixtures::{project_json, project_ref, ORG, TOKEN};
use serde_json::json;
use supabase_mgmt::{
    ApiKeyType, Continent, CreateApiKeyRequest, CreateProjectRequest, HealthStatus, InstanceSize,
    ManagementClient, ManagementError, NewApiKeyType, PoolMode, ProjectChange, ProjectDeletion,
    ProjectRegion, ProjectStatus, Region, RegionSelection, RunQueryRequest, ServiceName,
    SmartGroup,
};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn server_answering(
    verb: &str,
    route: &str,
    status: u16,
    body: serde_json::Value,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path(route))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn lists_organizations_and_projects_with_the_bearer_token() {
    let server = server_answering(
        "GET",
        "/v1/organizations",
        200,
        fixtures::organizations_json(),
    )
    .await;
    let orgs = fixtures::client(&server)
        .list_organizations()
        .await
        .unwrap();
    assert_eq!(
        (orgs[0].slug.as_str(), orgs[0].name.as_str()),
        (ORG, "Acme Holdings")
    );
    let request = &server.received_requests().await.unwrap()[0];
    assert!(request.headers["user-agent"]
        .to_str()
        .unwrap()
        .starts_with("supabase-mgmt/"));

    let r = project_ref(1);
    let server = server_answering(
        "GET",
        "/v1/projects",
        200,
        json!([project_json(&r, "acme", "ACTIVE_HEALTHY")]),
    )
    .await;
    let projects = fixtures::client(&server).list_projects().await.unwrap();
    assert_eq!(projects[0].project_ref, r);
    assert_eq!(projects[0].status, ProjectStatus::ActiveHealthy);
    assert_eq!(
        projects[0].database.as_ref().unwrap().host,
        fixtures::direct_host(&r)
    );
}

#[tokio::test]
async fn creates_a_project_with_the_spec_body() {
    let r = project_ref(2);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/projects"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "name": "acme",
            "organization_slug": ORG,
            "db_pass": "correct-horse-battery-staple",
            "region_selection": {"type": "smartGroup", "code": "emea"},
            "desired_instance_size": "micro"
        })))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(fixtures::created_project_json(&r, "acme")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let request = CreateProjectRequest::new(
        "acme",
        ORG,
        "correct-horse-battery-staple".into(),
        RegionSelection::SmartGroup(SmartGroup::Emea),
    )
    .with_instance_size(InstanceSize::Micro);
    let project = fixtures::client(&server)
        .create_project(&request)
        .await
        .unwrap();
    assert_eq!(project.status, ProjectStatus::ComingUp);
    assert_eq!(project.database, None);

    let mut legacy = request.clone();
    legacy.region = ProjectRegion::Legacy(Region::UsEast1);
    let body = serde_json::to_value(&legacy).unwrap();
    assert_eq!(body["region"], "us-east-1");
    assert!(
        body.get("region_selection").is_none(),
        "only one of region and region_selection is sent"
    );
}

#[tokio::test]
async fn reads_health_with_one_services_pair_per_service() {
    let r = project_ref(3);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/health")))
        .and(query_param("services", "db"))
        .and(query_param("services", "pooler"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            fixtures::health_json("db", "ACTIVE_HEALTHY"),
            fixtures::health_json("pooler", "COMING_UP")
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let health = fixtures::client(&server)
        .project_health(&r, &[ServiceName::Db, ServiceName::Pooler])
        .await
        .unwrap();
    assert!(health[0].is_healthy());
    assert_eq!(
        (&health[1].name, &health[1].status),
        (&ServiceName::Pooler, &HealthStatus::ComingUp)
    );
    let error = fixtures::client(&server)
        .project_health(&r, &[])
        .await
        .unwrap_err();
    assert!(matches!(error, ManagementError::InvalidInput(_)));
}

#[tokio::test]
async fn reads_and_creates_api_keys_keeping_them_secret() {
    let r = project_ref(4);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/api-keys")))
        .and(query_param("reveal", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixtures::api_keys_json()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{r}/api-keys")))
        .and(query_param("reveal", "true"))
        .and(body_json(
            json!({"type": "secret", "name": "ci_secret_key", "description": "CI deploy key"}),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(fixtures::api_key_json(
                "ci_secret_key",
                "secret",
                "sb_secret_new",
            )),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = fixtures::client(&server);

    let keys = client.api_keys(&r, true).await.unwrap();
    let secret = keys.iter().find(|k| k.is_service_role_secret()).unwrap();
    assert_eq!(secret.role(), Some("service_role"));
    assert_eq!(keys[0].key_type, Some(ApiKeyType::Secret));
    assert_eq!(keys[0].role(), Some("authenticated"));
    assert!(!keys[0].is_service_key(), "a secret key of another role");
    assert_eq!(
        secret.api_key.as_ref().unwrap().expose_str(),
        fixtures::SECRET_KEY
    );
    assert!(!format!("{keys:?}").contains(fixtures::SECRET_KEY));
    assert!(
        keys.iter().filter(|k| k.is_service_key()).count() == 2,
        "secret and service_role"
    );

    let request = CreateApiKeyRequest::new(NewApiKeyType::Secret, "ci_secret_key")
        .with_description("CI deploy key");
    let created = client.create_api_key(&r, &request).await.unwrap();
    assert_eq!(created.name, "ci_secret_key");

    let bad = CreateApiKeyRequest::new(NewApiKeyType::Secret, "Bad Name");
    assert!(matches!(
        client.create_api_key(&r, &bad).await.unwrap_err(),
        ManagementError::InvalidInput(_)
    ));
}

#[tokio::test]
async fn runs_sql_and_reads_pooler_and_regions() {
    let r = project_ref(5);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{r}/database/query")))
        .and(body_json(
            json!({"query": "select 1 as one", "read_only": true}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!([{"one": 1}])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/config/database/pooler")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixtures::pooler_json(
                &r,
                "pooler.example",
                6543,
                "postgres",
            )),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/projects/available-regions"))
        .and(query_param("organization_slug", ORG))
        .and(query_param("continent", "EU"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixtures::regions_json()))
        .mount(&server)
        .await;
    let client = fixtures::client(&server);

    let rows = client
        .run_query(&r, &RunQueryRequest::new("select 1 as one").read_only())
        .await
        .unwrap();
    assert_eq!(rows, json!([{"one": 1}]));
    assert!(matches!(
        client.run_query(&r, &RunQueryRequest::new(" ")).await,
        Err(ManagementError::InvalidInput(_))
    ));

    let poolers = client.pooler_config(&r).await.unwrap();
    assert_eq!(
        (poolers[0].db_port, &poolers[0].pool_mode),
        (6543, &PoolMode::Transaction)
    );

    let regions = client
        .available_regions(ORG, Some(Continent::Europe))
        .await
        .unwrap();
    assert_eq!(regions.recommendations.smart_group.code, SmartGroup::Emea);
    assert_eq!(regions.all.specific[1].code, Region::UsEast1);
}

#[tokio::test]
async fn deletes_pauses_and_restores() {
    let r = project_ref(6);
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 42, "ref": r, "name": "acme"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    for action in ["pause", "restore"] {
        Mock::given(method("POST"))
            .and(path(format!("/v1/projects/{r}/{action}")))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = fixtures::client(&server);
    match client.delete_project(&r).await.unwrap() {
        ProjectDeletion::Deleted(deleted) => {
            assert_eq!((deleted.id, deleted.project_ref.as_str()), (42, r.as_str()))
        }
        other => panic!("expected a deletion, got {other:?}"),
    }
    assert_eq!(
        client.pause_project(&r).await.unwrap(),
        ProjectChange::Requested
    );
    assert_eq!(
        client.restore_project(&r).await.unwrap(),
        ProjectChange::Requested
    );
    let restore = server.received_requests().await.unwrap();
    let restore = restore.iter().find(|r| r.url.path().ends_with("/restore"));
    assert!(
        restore.is_some_and(|r| r.body.is_empty()),
        "the restore sends no body"
    );
}

#[tokio::test]
async fn deleting_a_project_that_is_gone_is_not_an_error() {
    let r = project_ref(6);
    let server = server_answering(
        "DELETE",
        &format!("/v1/projects/{r}"),
        404,
        json!({"message": "Project not found"}),
    )
    .await;
    let outcome = fixtures::client(&server).delete_project(&r).await.unwrap();
    assert_eq!(outcome, ProjectDeletion::AlreadyGone);
    assert!(!outcome.was_deleted());
}

#[tokio::test]
async fn a_refused_pause_of_a_paused_project_is_already_underway_and_other_refusals_stay_errors() {
    let r = project_ref(6);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/projects/{r}/pause")))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"message": "Project is not active"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(project_json(&r, "acme", "PAUSING")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(project_json(
            &r,
            "acme",
            "COMING_UP",
        )))
        .mount(&server)
        .await;
    let client = fixtures::client(&server);

    assert_eq!(
        client.pause_project(&r).await.unwrap(),
        ProjectChange::AlreadyUnderway(ProjectStatus::Pausing)
    );
    let error = client.pause_project(&r).await.unwrap_err();
    assert_eq!(error.status(), Some(400), "{error}");
}

#[tokio::test]
async fn unknown_enum_values_are_kept_not_rejected() {
    let r = project_ref(7);
    let mut project = project_json(&r, "acme", "HIBERNATING");
    project["region"] = json!("mars-north-1");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(project))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/health")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([fixtures::health_json("vector", "DEGRADED")])),
        )
        .mount(&server)
        .await;
    let client = fixtures::client(&server);

    let project = client.get_project(&r).await.unwrap();
    assert_eq!(project.status, ProjectStatus::Other("HIBERNATING".into()));
    assert_eq!(project.status.to_string(), "HIBERNATING");
    let health = client.project_health(&r, &[ServiceName::Db]).await.unwrap();
    assert_eq!(health[0].name, ServiceName::Unknown("vector".into()));
    assert_eq!(health[0].status, HealthStatus::Unknown("DEGRADED".into()));
    assert!(!health[0].is_healthy());
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_naming_the_field() {
    let r = project_ref(8);
    let mut wrong_type = project_json(&r, "acme", "ACTIVE_HEALTHY");
    wrong_type["database"]["host"] = json!(5432);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/projects"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([project_json(&r, "ok", "COMING_UP"), wrong_type])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/organizations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("[{\"slug\": \"x\", ", "application/json"),
        )
        .mount(&server)
        .await;
    let client = fixtures::client(&server);

    match client.list_projects().await.unwrap_err() {
        ManagementError::Decode {
            endpoint,
            path,
            message,
        } => {
            assert_eq!(endpoint, "GET /v1/projects");
            assert_eq!(path, "[1].database.host");
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let error = client.list_organizations().await.unwrap_err();
    assert!(
        matches!(&error, ManagementError::Decode { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("upgrade supabase-mgmt"),
        "{error}"
    );
}

#[tokio::test]
async fn api_errors_carry_the_status_and_the_json_message() {
    let r = project_ref(9);
    let server = server_answering(
        "GET",
        &format!("/v1/projects/{r}"),
        404,
        json!({"message": "Project not found"}),
    )
    .await;
    let error = fixtures::client(&server).get_project(&r).await.unwrap_err();
    match &error {
        ManagementError::Api {
            status,
            message,
            endpoint,
        } => {
            assert_eq!((*status, message.as_str()), (404, "Project not found"));
            assert_eq!(endpoint, &format!("GET /v1/projects/{r}"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().contains("check the project ref"),
        "{error}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn bad_refs_and_bad_configuration_are_refused_before_sending() {
    let server = MockServer::start().await;
    let client = fixtures::client(&server);
    for bad in ["", "../organizations", "ABC", "abc?x=1"] {
        let error = client.get_project(bad).await.unwrap_err();
        assert!(
            matches!(error, ManagementError::InvalidInput(_)),
            "{bad}: {error:?}"
        );
    }
    assert!(server.received_requests().await.unwrap().is_empty());

    let blank = ManagementClient::builder("  ".into()).build().unwrap_err();
    assert!(matches!(blank, ManagementError::Config(_)));
    let bad_url = ManagementClient::builder(TOKEN.into())
        .base_url("not a url")
        .build()
        .unwrap_err();
    assert!(matches!(bad_url, ManagementError::Config(_)));
    let newline = ManagementClient::builder("sbp_abc\ndef".into())
        .build()
        .unwrap_err();
    assert!(matches!(&newline, ManagementError::Config(_)));
    assert!(!newline.to_string().contains("sbp_abc"));
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/proxy/supabase/v1/organizations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixtures::organizations_json()))
        .expect(1)
        .mount(&server)
        .await;
    let client = ManagementClient::builder(TOKEN.into())
        .base_url(format!("{}/proxy/supabase/", server.uri()))
        .pacing(None)
        .build()
        .unwrap();
    assert_eq!(client.list_organizations().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_list_that_ignores_the_offset_is_an_error_not_a_loop() {
    let server = MockServer::start().await;
    let page = json!({
        "projects": [fixtures::organization_project_json(&project_ref(9), "acme", "ACTIVE_HEALTHY", "2026-11-26T02:00:00Z")],
        "pagination": {"count": 250, "limit": 100, "offset": 0}
    });
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/projects")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let error = fixtures::client(&server)
        .projects_named(ORG, "acme")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ManagementError::Decode { path, .. } if path == "pagination"),
        "{error:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
