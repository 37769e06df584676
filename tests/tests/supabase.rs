//! Signup through the real HTTP server with Supabase provisioning, against the
//! stateful stand-in of the Management and Auth APIs that supabase-mgmt's tests use.

mod support;
// The stand-in of the Management API and of projects' Auth admin API.
#[path = "../../supabase-mgmt/tests/fixtures/mod.rs"]
mod supabase_fake;

use std::sync::Arc;

use async_trait::async_trait;
use supabase_fake::{FakeConfig, FakeSupabase};
use supabase_mgmt::{SupabaseAdminUserCreator, SupabaseProvisioner};
use support::{Service, ADMIN_TOKEN};
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, PostgresServerProvisioner, Tenant, TenantId,
};
use tenancy_examples::control_plane::TenantDatabases;

/// Supabase projects whose databases live on the local server: the project is
/// created, awaited and inspected through the Management API stand-in, and the
/// connection it returns is pointed at a local database for the migrations.
struct ProjectsOnLocalServer {
    supabase: SupabaseProvisioner,
    local: PostgresServerProvisioner,
}

impl ProjectsOnLocalServer {
    async fn local(
        &self,
        tenant: &Tenant,
        project: DatabaseTarget,
    ) -> Result<DatabaseTarget, BackendError> {
        let local = self.local.provision(tenant).await?;
        Ok(DatabaseTarget::new(local.url)
            .with_external_ref(project.external_ref.unwrap_or_default()))
    }
}

#[async_trait]
impl DatabaseProvisioner for ProjectsOnLocalServer {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        let project = self.supabase.provision(tenant).await?;
        self.local(tenant, project).await
    }

    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        let Some(project) = self.supabase.find(tenant).await? else {
            return Ok(None);
        };
        let local = self.local.find(tenant).await?;
        Ok(local.map(|db| {
            DatabaseTarget::new(db.url).with_external_ref(project.external_ref.unwrap_or_default())
        }))
    }

    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError> {
        self.supabase.delete(tenant).await?;
        self.local.delete(tenant).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_provisions_a_supabase_project_and_its_admin() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        coming_up_polls: 2,
        ..FakeConfig::default()
    })
    .await;
    let client = supabase_fake::client(&server);
    let supabase = supabase_fake::provisioner_builder(client.clone())
        .build()
        .unwrap();
    let admins = SupabaseAdminUserCreator::new(client)
        .with_project_url_template(supabase_fake::project_url_template(&server))
        .unwrap();
    let service = Service::start_on(Some(ADMIN_TOKEN), None, |local| TenantDatabases {
        provisioner: Arc::new(ProjectsOnLocalServer { supabase, local }),
        admins: Arc::new(admins),
        provider: "supabase",
    })
    .await;

    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;
    let projects = fake.projects();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].name, id.as_str());
    assert_eq!(fake.creates(), 1);

    let (_, tenant) = service.admin_get(&format!("/api/admin/tenants/{id}")).await;
    assert_eq!(tenant["status"]["state"], "ready");
    assert_eq!(
        tenant["database"]["external_ref"],
        projects[0].project_ref.as_str()
    );

    let admin_creations = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/auth/v1/admin/users"))
        .collect::<Vec<_>>();
    assert_eq!(admin_creations.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&admin_creations[0].body).unwrap();
    assert_eq!(body["email"], "owner@acme.example");
    service.stop().await;
}
