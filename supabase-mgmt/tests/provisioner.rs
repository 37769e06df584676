//! `SupabaseProvisioner` against the fake Management API: happy path, idempotency
//! after ambiguous creates, adoption, find and delete, and the onboarding pipeline.

mod fixtures;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixtures::{CreateFault, FakeConfig, FakeSupabase, ORG, PASSWORD_SECRET};
use serde_json::json;
use supabase_mgmt::{
    DatabasePasswords, ManagementClient, ManagementError, Region, RegionSelection,
    SessionConnection, SupabaseAdminUserCreator, SupabaseProvisioner, WaitOptions,
};
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, MemoryTenantDirectory, MigrationReport,
    NewTenant, Onboarding, SchemaMigrator, TenantId,
};

fn provisioner(client: ManagementClient) -> SupabaseProvisioner {
    fixtures::provisioner_builder(client)
        .name_prefix("tenant-")
        .region(RegionSelection::Specific(Region::EuCentral1))
        .build()
        .unwrap()
}

fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

fn expected_password(name: &str) -> String {
    // The derivation is documented: HMAC-SHA256(secret, label || name), hex.
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(PASSWORD_SECRET.as_bytes()).unwrap();
    mac.update(b"supabase-mgmt/db-password/v1\0");
    mac.update(name.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn provisions_a_project_and_returns_session_and_transaction_pooler_urls() {
    let config = FakeConfig {
        coming_up_polls: 2,
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let provisioner = provisioner(fixtures::client(&server));

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    let project = &fake.projects()[0];
    let password = expected_password("tenant-acme");
    assert_eq!(project.name, "tenant-acme");
    assert_eq!(project.db_pass, password);
    assert_eq!(
        target.external_ref.as_deref(),
        Some(project.project_ref.as_str())
    );
    // Migrations go through the session pooler (IPv4-safe): the pooler config's
    // connection string, password filled in, on the session port.
    assert_eq!(
        target.url.expose(),
        format!(
            "postgresql://postgres.{}:{password}@127.0.0.1:5432/postgres",
            project.project_ref
        )
    );
    // The application gets the transaction pooler, as listed.
    assert_eq!(
        target.transaction_pooler_url.as_ref().unwrap().expose(),
        format!(
            "postgresql://postgres.{}:{password}@127.0.0.1:{}/postgres",
            project.project_ref,
            fake.transaction_port()
        )
    );
    assert!(target.provisioning_notes.is_empty());
    assert!(!format!("{target:?}").contains(&password));

    let requests = server.received_requests().await.unwrap();
    let create = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    assert_eq!(create.url.path(), "/v1/projects");
    assert_eq!(create.headers["content-type"], "application/json");
    assert_eq!(
        create.body_json::<serde_json::Value>().unwrap(),
        json!({
            "name": "tenant-acme",
            "organization_slug": ORG,
            "db_pass": password,
            "region_selection": {"type": "specific", "code": "eu-central-1"}
        })
    );
    let polls = requests
        .iter()
        .filter(|r| {
            r.method.as_str() == "GET"
                && r.url.path() == format!("/v1/projects/{}", project.project_ref)
        })
        .count();
    assert_eq!(polls, 3, "two COMING_UP polls, then ACTIVE_HEALTHY");
    let health = requests
        .iter()
        .find(|r| r.url.path().ends_with("/health"))
        .unwrap();
    assert_eq!(health.url.query(), Some("services=db&services=pooler"));
}

#[tokio::test]
async fn a_create_that_timed_out_is_adopted_not_repeated() {
    // The first create happens on the server but its answer comes after the client's
    // 2 s timeout: the provisioner must find the project by name instead of creating
    // a second one.
    let config = FakeConfig {
        create_faults: vec![CreateFault::CreateThenDelay(Duration::from_secs(5))],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let provisioner = provisioner(fixtures::client(&server));

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    assert_eq!(fake.creates(), 1, "exactly one POST /v1/projects");
    assert_eq!(fake.projects().len(), 1);
    let project = &fake.projects()[0];
    assert_eq!(
        target.external_ref.as_deref(),
        Some(project.project_ref.as_str())
    );
    assert!(target
        .url
        .expose()
        .contains(&expected_password("tenant-acme")));
}

#[tokio::test]
async fn even_the_last_allowed_create_is_looked_for_before_giving_up() {
    // One create allowed: it times out on the client but happens on the server. The
    // provisioner still looks for it, so a caller retrying later finds no reason to
    // create a second project.
    let config = FakeConfig {
        create_faults: vec![CreateFault::CreateThenDelay(Duration::from_secs(5))],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let once = fixtures::provisioner_builder(fixtures::client(&server))
        .name_prefix("tenant-")
        .max_creates(1)
        .build()
        .unwrap();

    let target = once.provision_tenant(&tenant("acme")).await.unwrap();

    assert_eq!(fake.creates(), 1, "exactly one POST /v1/projects");
    assert_eq!(
        target.external_ref.as_deref(),
        Some(fake.projects()[0].project_ref.as_str())
    );
}

#[tokio::test]
async fn an_ambiguous_create_never_seen_is_reported_as_retryable() {
    // The create answers 502 and nothing appears during the window: the error says
    // the outcome is unknown and is worth retrying (after the window, not at once).
    let config = FakeConfig {
        create_faults: vec![CreateFault::Refuse(502)],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let once = fixtures::provisioner_builder(fixtures::client(&server))
        .max_creates(1)
        .build()
        .unwrap();
    let signup = NewTenant::with_id(tenant("acme"), "Acme", "owner@acme.example").unwrap();
    let error = DatabaseProvisioner::provision(
        &once,
        &signup.into_tenant(time::OffsetDateTime::UNIX_EPOCH),
    )
    .await
    .unwrap_err();
    assert!(
        error.is_retryable(),
        "an ambiguous create is worth retrying"
    );
    let error = error.downcast_ref::<ManagementError>().unwrap();
    assert!(
        matches!(error, ManagementError::Api { status: 502, .. }),
        "{error:?}"
    );
    assert_eq!(fake.creates(), 1);
}

#[tokio::test]
async fn a_502_after_creating_is_adopted_and_a_refused_create_is_retried() {
    // (fault, POSTs expected): a project created before a 5xx is adopted; a 503
    // that created nothing is followed by a second create. Either way, one project.
    for (fault, creates) in [
        (CreateFault::CreateThenFail(502), 1),
        // Cloudflare's "origin timed out": the API may well have acted.
        (CreateFault::CreateThenFail(524), 1),
        (CreateFault::Refuse(503), 2),
    ] {
        let config = FakeConfig {
            create_faults: vec![fault],
            ..FakeConfig::default()
        };
        let (server, fake) = FakeSupabase::start(config).await;
        provisioner(fixtures::client(&server))
            .provision_tenant(&tenant("acme"))
            .await
            .unwrap();
        assert_eq!(
            (fake.creates(), fake.projects().len()),
            (creates, 1),
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_create_is_not_retried_and_says_why() {
    let config = FakeConfig {
        create_faults: vec![CreateFault::Refuse(402)],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let error = provisioner(fixtures::client(&server))
        .provision_tenant(&tenant("acme"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ManagementError::Api { status: 402, .. }),
        "{error:?}"
    );
    assert_eq!(fake.creates(), 1);
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_existing_project_is_adopted_without_a_create() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let existing = fake.seed_project("tenant-acme", &expected_password("tenant-acme"));
    let provisioner = provisioner(fixtures::client(&server));

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    assert_eq!(fake.creates(), 0);
    assert_eq!(target.external_ref.as_deref(), Some(existing.as_str()));
    assert!(target
        .url
        .expose()
        .contains(&expected_password("tenant-acme")));
}

#[tokio::test]
async fn a_same_named_project_of_another_organization_is_never_adopted_nor_deleted() {
    // A personal token sees every organization of its user: staging's `tenant-acme`
    // must not become production's database.
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let staging = fake.seed_project_in("staging-org", "tenant-acme", "staging-password");
    let provisioner = provisioner(fixtures::client(&server));
    let acme = tenant("acme");

    assert_eq!(provisioner.find_tenant(&acme).await.unwrap(), None);
    let target = provisioner.provision_tenant(&acme).await.unwrap();

    assert_eq!(fake.creates(), 1);
    let ours = &fake.projects()[1];
    assert_eq!(
        (ours.organization_slug.as_str(), ours.name.as_str()),
        (ORG, "tenant-acme")
    );
    assert_eq!(
        target.external_ref.as_deref(),
        Some(ours.project_ref.as_str())
    );
    assert_ne!(ours.project_ref, staging);

    assert!(provisioner.delete_tenant(&acme).await.unwrap());
    let projects = fake.projects();
    assert!(
        !projects[0].removed,
        "the other organization's project is untouched"
    );
    assert!(projects[1].removed);
}

#[tokio::test]
async fn random_passwords_are_reset_when_a_project_is_adopted() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    fake.seed_project("acme", "lost-password");
    let provisioner =
        SupabaseProvisioner::builder(fixtures::client(&server), ORG, DatabasePasswords::random())
            .wait(WaitOptions::new(Duration::from_secs(5)))
            .build()
            .unwrap();

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    let new_password = fake.projects()[0].db_pass.clone();
    assert_ne!(new_password, "lost-password");
    assert_eq!(new_password.len(), 64);
    assert!(target.url.expose().contains(&new_password));
    let requests = server.received_requests().await.unwrap();
    assert!(requests
        .iter()
        .any(|r| r.method.as_str() == "PATCH" && r.url.path().ends_with("/database/password")));
}

#[tokio::test]
async fn the_direct_host_is_used_only_when_asked_for() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let provisioner = fixtures::provisioner_builder(fixtures::client(&server))
        .region(Region::EuCentral1)
        .session_connection(SessionConnection::Direct)
        .build()
        .unwrap();
    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();
    let project = &fake.projects()[0];
    assert_eq!(
        target.url.expose(),
        format!(
            "postgres://postgres:{}@db.{}.supabase.invalid:5432/postgres",
            expected_password("acme"),
            project.project_ref
        )
    );
    assert!(
        target.transaction_pooler_url.is_some(),
        "the application URL is offered in both modes"
    );
}

#[tokio::test]
async fn a_failed_project_is_reported_then_replaced_on_the_next_attempt() {
    let config = FakeConfig {
        init_failed_names: vec!["tenant-acme".into()],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let provisioner = provisioner(fixtures::client(&server));
    let acme = tenant("acme");

    let error = provisioner.provision_tenant(&acme).await.unwrap_err();
    assert!(
        matches!(&error, ManagementError::ProjectFailed { status, .. } if status.as_str() == "INIT_FAILED"),
        "{error:?}"
    );
    assert!(error.is_retryable(), "the next attempt repairs it");
    let failed = fake.projects()[0].project_ref.clone();
    // `find` reports it as absent, so that the pipeline provisions again.
    assert_eq!(
        DatabaseProvisioner::find(&provisioner, &acme)
            .await
            .unwrap(),
        None
    );

    let target = provisioner.provision_tenant(&acme).await.unwrap();

    let projects = fake.projects();
    assert!(projects[0].removed, "the failed project is deleted");
    let live = fake.live_projects_named("tenant-acme");
    assert_eq!(live.len(), 1, "exactly one live project");
    assert_eq!(
        target.external_ref.as_deref(),
        Some(live[0].project_ref.as_str())
    );
    assert_eq!(fake.creates(), 2);
    assert_eq!(
        target.provisioning_notes.len(),
        1,
        "{:?}",
        target.provisioning_notes
    );
    assert!(
        target.provisioning_notes[0].contains(&failed)
            && target.provisioning_notes[0].contains("INIT_FAILED"),
        "{:?}",
        target.provisioning_notes
    );
}

#[tokio::test]
async fn a_paused_project_is_restored_and_waited_for() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let paused = fake.seed_paused_project("tenant-acme", &expected_password("tenant-acme"));
    let provisioner = provisioner(fixtures::client(&server));

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    assert_eq!(fake.creates(), 0, "restored, not replaced");
    assert_eq!(target.external_ref.as_deref(), Some(paused.as_str()));
    assert_eq!(
        target.provisioning_notes,
        [format!("restored project {paused}, which was paused")]
    );
    let restores = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/restore"))
        .count();
    assert_eq!(restores, 1);
}

#[tokio::test]
async fn without_a_region_the_recommended_smart_group_is_sent() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let provisioner = fixtures::provisioner_builder(fixtures::client(&server))
        .build()
        .unwrap();
    for id in ["acme", "bravo"] {
        provisioner.provision_tenant(&tenant(id)).await.unwrap();
    }
    let requests = server.received_requests().await.unwrap();
    let creates: Vec<serde_json::Value> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/projects")
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(creates.len(), 2);
    for body in &creates {
        assert_eq!(
            body["region_selection"],
            json!({"type": "smartGroup", "code": "emea"})
        );
        assert!(body.get("region").is_none());
    }
    let asked = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/projects/available-regions")
        .count();
    assert_eq!(asked, 1, "the recommendation is asked once per provisioner");
    assert_eq!(fake.creates(), 2);
}

#[tokio::test]
async fn the_stand_in_refuses_a_create_without_exactly_one_region_field() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let http = reqwest::Client::new();
    let base = json!({"name": "acme", "organization_slug": ORG, "db_pass": "pw-0123456789"});
    let mut both = base.clone();
    both["region"] = json!("eu-west-1");
    both["region_selection"] = json!({"type": "specific", "code": "eu-west-1"});
    for body in [base, both] {
        let response = http
            .post(format!("{}/v1/projects", server.uri()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["message"], fixtures::REGION_REQUIRED);
    }
    assert!(fake.projects().is_empty());
}

#[tokio::test]
async fn lookups_search_the_organization_and_page_past_a_hundred() {
    // 150 older projects whose names contain the tenant's: the tenant's own project
    // is on the second page, oldest first. Odd projects here and in another
    // organization must not fail the look-up.
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    fake.seed_crowd("tenant-acme-archive-", 150);
    fake.seed_odd_project(ORG, "tenant-acme-archive-odd", "COLD_STORAGE");
    fake.seed_odd_project(fixtures::OTHER_ORG, "tenant-acme", "QUARANTINED");
    let ours = fake.seed_project("tenant-acme", &expected_password("tenant-acme"));
    let provisioner = provisioner(fixtures::client(&server));

    let target = provisioner.provision_tenant(&tenant("acme")).await.unwrap();

    assert_eq!(target.external_ref.as_deref(), Some(ours.as_str()));
    assert_eq!(fake.creates(), 0);
    let requests = server.received_requests().await.unwrap();
    assert!(
        !requests
            .iter()
            .any(|r| r.url.path() == "/v1/projects" && r.method.as_str() == "GET"),
        "the whole account is never listed"
    );
    let pages: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == format!("/v1/organizations/{ORG}/projects"))
        .map(|r| r.url.query().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        pages,
        [
            "search=tenant-acme&offset=0&limit=100&sort=created_asc",
            "search=tenant-acme&offset=100&limit=100&sort=created_asc",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_create_waits_out_a_slow_list_before_creating_again() {
    // The create happens but answers 502, and the list shows the new project only
    // 20 s later. Within the default window (90 s) the provisioner adopts it; a
    // provisioner that gave up after 5 s would have created a second, billed project.
    let config = || FakeConfig {
        create_faults: vec![CreateFault::CreateThenFail(502)],
        list_lag: Duration::from_secs(20),
        ..FakeConfig::default()
    };
    let (patient_server, patient_fake) = FakeSupabase::start(config()).await;
    let (hasty_server, hasty_fake) = FakeSupabase::start(config()).await;
    let patient = fixtures::provisioner_builder(fixtures::client(&patient_server))
        .region(Region::EuCentral1)
        .adoption_window(SupabaseProvisioner::DEFAULT_ADOPTION_WINDOW)
        .lookup_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    let hasty = fixtures::provisioner_builder(fixtures::client(&hasty_server))
        .region(Region::EuCentral1)
        .adoption_window(Duration::from_secs(5))
        .lookup_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(SupabaseProvisioner::DEFAULT_ADOPTION_WINDOW >= Duration::from_secs(60));

    let acme = tenant("acme");
    let (patient_target, hasty_target) = tokio::join!(
        patient.provision_tenant(&acme),
        hasty.provision_tenant(&acme)
    );

    patient_target.unwrap();
    assert_eq!(patient_fake.creates(), 1);
    assert_eq!(patient_fake.live_projects_named("acme").len(), 1);
    hasty_target.unwrap();
    assert_eq!(
        hasty_fake.live_projects_named("acme").len(),
        2,
        "the stand-in is slow enough to catch a short window"
    );
}

#[tokio::test]
async fn find_reports_only_live_ready_projects_and_delete_is_idempotent() {
    let config = FakeConfig {
        coming_up_polls: 1,
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let provisioner = provisioner(fixtures::client(&server));
    let acme = tenant("acme");

    assert_eq!(
        DatabaseProvisioner::find(&provisioner, &acme)
            .await
            .unwrap(),
        None
    );
    let project_ref = fake.seed_project("tenant-acme", &expected_password("tenant-acme"));
    // The list shows it COMING_UP (no poll yet): absent, so provision will adopt and wait.
    assert_eq!(provisioner.find_tenant(&acme).await.unwrap(), None);
    let provisioned = provisioner.provision_tenant(&acme).await.unwrap();
    let found = provisioner.find_tenant(&acme).await.unwrap().unwrap();
    assert_eq!(found, provisioned);
    assert_eq!(found.external_ref.as_deref(), Some(project_ref.as_str()));

    DatabaseProvisioner::delete(&provisioner, &acme)
        .await
        .unwrap();
    assert!(fake.projects()[0].removed);
    assert_eq!(
        provisioner.find_tenant(&acme).await.unwrap(),
        None,
        "removed projects are never adopted"
    );
    assert!(
        !provisioner.delete_tenant(&acme).await.unwrap(),
        "deleting again succeeds and reports nothing deleted"
    );
    let deletes = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count();
    assert_eq!(deletes, 1);
}

#[tokio::test]
async fn builder_refuses_bad_configuration() {
    let (server, _fake) = FakeSupabase::start(FakeConfig::default()).await;
    let error =
        SupabaseProvisioner::builder(fixtures::client(&server), "my org!", fixtures::passwords())
            .build()
            .unwrap_err();
    assert!(matches!(error, ManagementError::Config(_)), "{error:?}");
    let error = SupabaseProvisioner::builder(fixtures::client(&server), ORG, fixtures::passwords())
        .name_prefix("bad\nprefix")
        .build()
        .unwrap_err();
    assert!(matches!(error, ManagementError::Config(_)), "{error:?}");
}

/// A migrator that only records which databases it was given.
#[derive(Debug, Default)]
struct RecordingMigrator {
    seen: std::sync::Mutex<Vec<DatabaseTarget>>,
}

#[async_trait]
impl SchemaMigrator for RecordingMigrator {
    async fn migrate(
        &self,
        _tenant: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        self.seen.lock().unwrap().push(database.clone());
        Ok(MigrationReport::new(None, Some(1), 1))
    }
}

#[tokio::test]
async fn plugs_into_the_onboarding_pipeline() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        coming_up_polls: 1,
        ..FakeConfig::default()
    })
    .await;
    let client = fixtures::client(&server);
    let migrator = Arc::new(RecordingMigrator::default());
    let admins = SupabaseAdminUserCreator::new(client.clone())
        .with_project_url_template(fixtures::project_url_template(&server))
        .unwrap();
    let onboarding = Onboarding::new(
        Arc::new(MemoryTenantDirectory::new()),
        Arc::new(provisioner(client)),
        migrator.clone(),
        Arc::new(admins),
    );

    let tenant = onboarding
        .onboard(NewTenant::new("Acme Pharmacy", "owner@acme.example").unwrap())
        .await
        .unwrap();

    assert!(tenant.status.is_ready());
    let project = &fake.projects()[0];
    assert_eq!(project.name, "tenant-acme-pharmacy");
    let database = tenant.database.unwrap();
    assert_eq!(
        database.external_ref.as_deref(),
        Some(project.project_ref.as_str())
    );
    assert_eq!(migrator.seen.lock().unwrap().as_slice(), [database]);
    assert_eq!(fake.creates(), 1);
}
