//! Signup through the real HTTP server with Supabase provisioning, against the
//! stand-in of the Management and Auth APIs that supabase-mgmt's tests use: each
//! project's session pooler is a database of its own on the local server, reached as
//! `postgres.<ref>`, and its direct host does not resolve.

mod support;

use std::sync::Arc;

use supabase_mgmt::testing::{self, FakeConfig, FakeSupabase, SECRET_KEY};
use supabase_mgmt::SupabaseAdminUserCreator;
use support::{Service, ADMIN_TOKEN};
use tenancy_core::testing::server_url;
use tenancy_examples::control_plane::TenantDatabases;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_provisions_a_supabase_project_and_its_admin() {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        coming_up_polls: 2,
        local_databases: Some(server_url()),
        ..FakeConfig::default()
    })
    .await;
    let client = testing::client(&server);
    let supabase = testing::provisioner_builder(client.clone())
        .build()
        .unwrap();
    let admins = SupabaseAdminUserCreator::new(client)
        .with_project_url_template(testing::project_url_template(&server))
        .unwrap();
    let service = Service::start_on(Some(ADMIN_TOKEN), None, |_local| TenantDatabases {
        provisioner: Arc::new(supabase),
        admins: Arc::new(admins),
        provider: "supabase",
    })
    .await;

    let id = service
        .signup_ready("Acme Pharmacy", "owner@acme.example")
        .await;
    let projects = fake.live_projects_named(id.as_str());
    assert_eq!(projects.len(), 1);
    assert_eq!(fake.creates(), 1);

    let (_, tenant) = service.admin_get(&format!("/api/admin/tenants/{id}")).await;
    assert_eq!(tenant["status"]["state"], "ready");
    assert_eq!(
        tenant["database"]["external_ref"],
        projects[0].project_ref.as_str()
    );
    let admins = fake.admin_creations();
    assert_eq!(admins.len(), 1, "{admins:?}");
    assert_eq!(
        (admins[0].email.as_str(), admins[0].api_key.as_str()),
        ("owner@acme.example", SECRET_KEY)
    );
    service.stop().await;
    fake.drop_local_databases();
}
