//! The `onboard` binary against a Supabase stand-in as strict as the real service:
//! the direct host does not resolve (an IPv4-only network), the transaction pooler
//! port is closed, the session pooler is the local PostgreSQL with a role and a
//! database per project, the organization holds more than a hundred projects (and
//! odd ones), the first secret key listed acts for another role, one tenant's first
//! project ends `INIT_FAILED`, and another tenant's project is paused.

use std::process::{Command, Output};

use sqlx::Connection;
use supabase_mgmt::testing::{self, FakeConfig, FakeSupabase, ORG, OTHER_ORG, SECRET_KEY};
use tenancy_core::testing::server_url;
use tenancy_core::{SqliteTenantDirectory, TenantDirectory, TenantId};

/// Runs `onboard` for `company` against the stand-in, with the control plane at `state`.
async fn onboard(server: &str, template: &str, state: &str, company: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onboard"));
    let email = format!("owner@{}.example", company.to_lowercase().replace(' ', "-"));
    command
        .args(["--company", company, "--email", &email, "--state", state])
        .env("SUPABASE_ACCESS_TOKEN", testing::TOKEN)
        .env("SUPABASE_ORGANIZATION_SLUG", ORG)
        .env("SUPABASE_API_URL", server)
        .env("SUPABASE_PROJECT_URL_TEMPLATE", template)
        .env("SUPABASE_PASSWORD_SECRET", testing::PASSWORD_SECRET)
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove("SUPABASE_REGION")
        .env_remove("SUPABASE_PLAN");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_on_supabase_ends_ready_with_one_project_each() {
    let config = FakeConfig {
        init_failed_names: vec!["bluebird-clinic".into()],
        local_databases: Some(server_url()),
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    fake.seed_crowd("acme-pharmacy-archive-", 120);
    fake.seed_odd_project(ORG, "acme-pharmacy-legacy", "COLD_STORAGE");
    fake.seed_odd_project(OTHER_ORG, "acme-pharmacy", "QUARANTINED");
    let paused = fake.seed_paused_project("cedar-health", "set-before-the-pause");
    let dir = std::env::temp_dir().join(format!("tk-onboard-sb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = format!("sqlite:{}", dir.join("control.db").display());
    let template = testing::project_url_template(&server);
    let uri = server.uri();
    let run = |company: &'static str| onboard(&uri, &template, &state, company);

    let acme = run("Acme Pharmacy").await;
    assert_eq!(acme.status.code(), Some(0), "{}", text(&acme));
    // Logs go to a pipe here, not a terminal: plain text, no colour codes.
    let logs = String::from_utf8_lossy(&acme.stderr);
    assert!(logs.contains("INFO"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs: {logs:?}"
    );
    let cedar = run("Cedar Health").await;
    assert_eq!(cedar.status.code(), Some(0), "{}", text(&cedar));
    // The first project ends INIT_FAILED: onboarding stops and says so; running it
    // again replaces the project and finishes.
    let bluebird = run("Bluebird Clinic").await;
    assert_eq!(bluebird.status.code(), Some(1), "{}", text(&bluebird));
    assert!(
        text(&bluebird).contains("INIT_FAILED"),
        "{}",
        text(&bluebird)
    );
    let bluebird = run("Bluebird Clinic").await;
    assert_eq!(bluebird.status.code(), Some(0), "{}", text(&bluebird));

    let directory = SqliteTenantDirectory::connect(&state).await.unwrap();
    for id in ["acme-pharmacy", "bluebird-clinic", "cedar-health"] {
        let live = fake.live_projects_named(id);
        assert_eq!(live.len(), 1, "{id}: exactly one live project");
        let project_ref = &live[0].project_ref;
        let tenant = directory
            .get(&TenantId::new(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(tenant.status.is_ready(), "{id}: {}", tenant.status);
        let database = tenant.database.as_ref().unwrap();
        assert_eq!(database.external_ref.as_deref(), Some(project_ref.as_str()));
        assert_eq!(database.url.host(), Some("127.0.0.1"), "the session pooler");
        assert!(database
            .url
            .expose()
            .contains(&format!("postgres.{project_ref}")));

        // The schema is in the project's own database.
        let own = fake.local_database_url(project_ref).unwrap();
        let mut connection = sqlx::PgConnection::connect(own.expose()).await.unwrap();
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&mut connection)
                .await
                .unwrap();
        assert!(applied >= 2, "{id}: {applied} migrations applied");
        connection.close().await.unwrap();
    }

    let bluebird = directory
        .get(&TenantId::new("bluebird-clinic").unwrap())
        .await
        .unwrap()
        .unwrap();
    let notes = &bluebird.database.unwrap().provisioning_notes;
    assert!(
        notes.len() == 1 && notes[0].contains("INIT_FAILED"),
        "{notes:?}"
    );
    let cedar = directory
        .get(&TenantId::new("cedar-health").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cedar.database.unwrap().provisioning_notes,
        [format!("restored project {paused}, which was paused")]
    );

    let admins = fake.admin_creations();
    assert_eq!(admins.len(), 3, "{admins:?}");
    assert!(
        admins.iter().all(|a| a.api_key == SECRET_KEY),
        "every admin made with the service_role key: {admins:?}"
    );
    directory.pool().close().await;
    fake.drop_local_databases();
    std::fs::remove_dir_all(dir).unwrap();
}
