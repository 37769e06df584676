//! The access token, database passwords and API keys never show in `Debug`, in error
//! messages, or in tracing output (captured at TRACE level).

mod fixtures;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fixtures::{
    CreateFault, FakeConfig, FakeSupabase, ORG, PASSWORD_SECRET, SECRET_KEY, SERVICE_ROLE_JWT,
    TOKEN,
};
use supabase_mgmt::{
    CreateProjectRequest, DatabasePasswords, ManagementClient, Region, SupabaseAdminUserCreator,
    SupabaseProvisioner,
};
use tenancy_core::{EmailAddress, TenantId};

/// A tracing writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "`{secret}` leaked into:\n{text}");
    }
}

#[tokio::test]
async fn debug_output_of_every_type_holding_a_secret_is_redacted() {
    let (server, _fake) = FakeSupabase::start(FakeConfig::default()).await;
    let builder = ManagementClient::builder(TOKEN.into()).base_url(server.uri());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let passwords = DatabasePasswords::derived(PASSWORD_SECRET.into()).unwrap();
    let provisioner = SupabaseProvisioner::builder(client.clone(), ORG, passwords.clone())
        .build()
        .unwrap();
    let request =
        CreateProjectRequest::new("acme", ORG, "db-password-123456".into(), Region::EuCentral1);
    let admins = SupabaseAdminUserCreator::new(client.clone());
    let keys = fixtures::client(&server)
        .api_keys(&fixtures::project_ref(1), true)
        .await;

    let printed = format!("{builder_debug} {client:?} {client:#?} {passwords:?} {provisioner:?} {request:?} {admins:?} {keys:?}");
    assert_hidden(
        &printed,
        &[
            TOKEN,
            PASSWORD_SECRET,
            "db-password-123456",
            SECRET_KEY,
            SERVICE_ROLE_JWT,
        ],
    );
    assert!(printed.contains("[redacted]"));
}

#[test]
fn a_proxy_password_in_the_base_url_is_never_printed() {
    let builder = ManagementClient::builder(TOKEN.into())
        .base_url("https://relay:proxy-pass-123@proxy.example/supabase");
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let refused = ManagementClient::builder(TOKEN.into())
        .base_url("ftp://relay:proxy-pass-123@proxy.example")
        .build()
        .unwrap_err();
    let printed = format!("{builder_debug} {client:?} {refused}");
    assert_hidden(&printed, &["proxy-pass-123", TOKEN]);
    assert!(printed.contains("proxy.example"), "{printed}");
}

#[tokio::test]
async fn errors_never_carry_the_token() {
    let unreachable = fixtures::unreachable_client(1);
    let transport = unreachable.list_projects().await.unwrap_err();
    let (server, _fake) = FakeSupabase::start(FakeConfig::default()).await;
    let api = fixtures::client(&server)
        .get_project(&fixtures::project_ref(9))
        .await
        .unwrap_err();
    let printed = format!("{transport} {transport:?} {api} {api:?}");
    assert_hidden(&printed, &[TOKEN, "sbp_"]);
}

#[tokio::test]
async fn tracing_output_of_a_full_provisioning_holds_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = FakeConfig {
        coming_up_polls: 1,
        create_faults: vec![CreateFault::CreateThenFail(502)],
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let client = fixtures::client(&server);
    let provisioner = fixtures::provisioner_builder(client.clone())
        .build()
        .unwrap();
    let target = provisioner
        .provision_tenant(&TenantId::new("acme").unwrap())
        .await
        .unwrap();
    let project_ref = target.external_ref.clone().unwrap();
    SupabaseAdminUserCreator::new(client)
        .with_project_url_template(fixtures::project_url_template(&server))
        .unwrap()
        .create_admin_user(
            &project_ref,
            &EmailAddress::new("owner@acme.example").unwrap(),
        )
        .await
        .unwrap();

    let logs = captured.text();
    assert!(logs.contains("creating a Supabase project"), "{logs}");
    assert!(logs.contains("adopting its project"), "{logs}");
    assert!(logs.contains("ready"), "{logs}");
    let password = fake.projects()[0].db_pass.clone();
    assert_hidden(
        &logs,
        &[
            TOKEN,
            &password,
            PASSWORD_SECRET,
            SECRET_KEY,
            SERVICE_ROLE_JWT,
        ],
    );
}
