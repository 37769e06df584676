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
    SupabaseAdminUserCreator, SupabaseProvisioner, WaitOptions,
};
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, MemoryTenantDirectory, MigrationReport,
    NewTenant, Onboarding, RetryPolicy, SchemaMigrator, TenantId,
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
async fn provisions_a_project_and_returns_direct_and_pooled_urls() {
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
    assert_eq!(
        target.url.expose(),
        format!(
            "postgres://postgres:{password}@db.{}.supabase.co:5432/postgres",
            project.project_ref
        )
    );
    assert_eq!(
        target.pooled_url.as_ref().unwrap().expose(),
        format!(
            "postgres://postgres.{}:{password}@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
            project.project_ref
        )
    );
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
async fn a_timed_out_create_given_up_on_is_adopted_by_the_next_provisioning() {
    // The process gives up (or crashes) after the ambiguous create; the pipeline
    // provisions again later and must adopt, not create a second project.
    let config = FakeConfig {
        create_faults: vec![CreateFault::CreateThenDelay(Duration::from_secs(5))],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let client = fixtures::client(&server);
    let gives_up = fixtures::provisioner_builder(client.clone())
        .name_prefix("tenant-")
        .create_retry_policy(RetryPolicy::never())
        .build()
        .unwrap();

    let signup = NewTenant::with_id(tenant("acme"), "Acme", "owner@acme.example").unwrap();
    let error = DatabaseProvisioner::provision(
        &gives_up,
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
        matches!(error, ManagementError::Timeout { .. }),
        "{error:?}"
    );

    let target = provisioner(client)
        .provision_tenant(&tenant("acme"))
        .await
        .unwrap();
    assert_eq!(fake.creates(), 1, "exactly one POST /v1/projects");
    assert_eq!(
        target.external_ref.as_deref(),
        Some(fake.projects()[0].project_ref.as_str())
    );
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
async fn a_failed_project_is_reported_not_replaced() {
    let config = FakeConfig {
        terminal_status: Some("INIT_FAILED"),
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let provisioner = provisioner(fixtures::client(&server));

    let error = provisioner
        .provision_tenant(&tenant("acme"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ManagementError::ProjectFailed { status, .. } if status.as_str() == "INIT_FAILED"),
        "{error:?}"
    );
    assert!(error.to_string().contains("delete it"), "{error}");

    // Through the trait, the error is permanent and keeps its type.
    let error = DatabaseProvisioner::find(&provisioner, &tenant("acme"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable());
    assert!(error.downcast_ref::<ManagementError>().is_some());
    assert_eq!(fake.creates(), 1);
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
