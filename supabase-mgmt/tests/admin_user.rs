//! `SupabaseAdminUserCreator`: the key it reads, the Auth request it sends, and its
//! idempotency when the email is already registered.

mod fixtures;

use fixtures::{FakeConfig, FakeSupabase, SECRET_KEY, SERVICE_ROLE_JWT};
use serde_json::json;
use supabase_mgmt::{AdminUserMode, ManagementError, SupabaseAdminUserCreator};
use tenancy_core::{AdminUserCreator, DatabaseTarget, EmailAddress, NewTenant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn creator(server: &MockServer) -> SupabaseAdminUserCreator {
    SupabaseAdminUserCreator::new(fixtures::client(server))
        .with_project_url_template(fixtures::project_url_template(server))
        .unwrap()
}

fn email() -> EmailAddress {
    EmailAddress::new("owner@acme.example").unwrap()
}

#[tokio::test]
async fn creates_the_user_with_the_secret_key() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let r = fake.seed_project("acme", "pw");

    let admin = creator(&server)
        .create_admin_user(&r, &email())
        .await
        .unwrap();

    assert!(admin.created);
    assert_eq!(admin.email, email());
    let requests = server.received_requests().await.unwrap();
    let keys = requests
        .iter()
        .find(|q| q.url.path().ends_with("/api-keys"))
        .unwrap();
    assert_eq!(keys.url.query(), Some("reveal=true"));
    let create = requests
        .iter()
        .find(|q| q.method.as_str() == "POST")
        .unwrap();
    assert_eq!(
        create.url.path(),
        format!("/project/{r}/auth/v1/admin/users")
    );
    // The first secret key listed acts as another role; the service one is chosen.
    assert_eq!(create.headers["apikey"], SECRET_KEY);
    assert_eq!(fake.admin_creations()[0].api_key, SECRET_KEY);
    assert!(
        create.headers.get("authorization").is_none(),
        "a new-style secret key is not a bearer JWT"
    );
    assert_eq!(
        create.body_json::<serde_json::Value>().unwrap(),
        json!({"email": "owner@acme.example", "email_confirm": true})
    );
}

#[tokio::test]
async fn an_already_registered_email_is_found_and_returned_as_not_created() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let r = fake.seed_project("acme", "pw");
    fake.seed_user(
        &r,
        "someone@else.example",
        "11111111-1111-4111-8111-111111111111",
    );
    fake.seed_user(
        &r,
        "owner@acme.example",
        "22222222-2222-4222-8222-222222222222",
    );

    let admin = creator(&server)
        .create_admin_user(&r, &email())
        .await
        .unwrap();

    assert!(!admin.created);
    assert_eq!(admin.user_id, "22222222-2222-4222-8222-222222222222");
    let requests = server.received_requests().await.unwrap();
    let lookup = requests
        .iter()
        .find(|q| q.method.as_str() == "GET" && q.url.path().ends_with("/auth/v1/admin/users"))
        .unwrap();
    assert!(
        lookup
            .url
            .query()
            .unwrap()
            .contains("filter=owner%40acme.example"),
        "{:?}",
        lookup.url.query()
    );
}

#[tokio::test]
async fn legacy_service_role_keys_are_sent_as_bearer_too_and_invites_use_the_invite_endpoint() {
    let r = fixtures::project_ref(5);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/api-keys")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            fixtures::api_key_json("anon", "legacy", "eyJhbGciOiJIUzI1NiJ9.YW5vbg.fixture"),
            fixtures::api_key_json("service_role", "legacy", SERVICE_ROLE_JWT)
        ])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/project/{r}/auth/v1/invite")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(fixtures::auth_user_json(
                "33333333-3333-4333-8333-333333333333",
                "owner@acme.example",
            )),
        )
        .expect(1)
        .mount(&server)
        .await;

    let admin = creator(&server)
        .with_mode(AdminUserMode::Invite)
        .create_admin_user(&r, &email())
        .await
        .unwrap();

    assert_eq!(
        (admin.user_id.as_str(), admin.created),
        ("33333333-3333-4333-8333-333333333333", true)
    );
    let requests = server.received_requests().await.unwrap();
    let invite = requests
        .iter()
        .find(|q| q.method.as_str() == "POST")
        .unwrap();
    assert_eq!(invite.headers["apikey"], SERVICE_ROLE_JWT);
    assert_eq!(
        invite.headers["authorization"],
        format!("Bearer {SERVICE_ROLE_JWT}").as_str()
    );
    assert_eq!(
        invite.body_json::<serde_json::Value>().unwrap(),
        json!({"email": "owner@acme.example"})
    );
}

#[tokio::test]
async fn a_project_without_a_service_key_is_a_clear_error() {
    let r = fixtures::project_ref(6);
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/projects/{r}/api-keys")))
        .respond_with(
            // A secret key of another role cannot create users: it is no service key.
            ResponseTemplate::new(200).set_body_json(json!([
                fixtures::secret_key_json(
                    "ci_reader",
                    fixtures::OTHER_ROLE_SECRET_KEY,
                    "authenticated"
                ),
                fixtures::api_key_json("anon", "legacy", "eyJhbGciOiJIUzI1NiJ9.YW5vbg.fixture"),
            ])),
        )
        .mount(&server)
        .await;
    let error = creator(&server)
        .create_admin_user(&r, &email())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ManagementError::NoServiceKey { project_ref } if *project_ref == r),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("secret_jwt_template.role is `service_role`")
            && message.contains("legacy `service_role` key"),
        "{message}"
    );
}

#[tokio::test]
async fn the_trait_needs_the_project_ref_and_bad_templates_are_refused() {
    let (server, _fake) = FakeSupabase::start(FakeConfig::default()).await;
    let tenant = NewTenant::new("Acme", "owner@acme.example")
        .unwrap()
        .into_tenant(time::OffsetDateTime::UNIX_EPOCH);
    let no_ref = DatabaseTarget::new("postgres://postgres@localhost:5432/acme".parse().unwrap());
    let error = creator(&server)
        .create_admin(&tenant, &no_ref)
        .await
        .unwrap_err();
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("no Supabase project ref"),
        "{error}"
    );

    let client = fixtures::client(&server);
    for bad in ["https://example.com", "not a url {ref}", "mailto:{ref}@x"] {
        let error = SupabaseAdminUserCreator::new(client.clone())
            .with_project_url_template(bad)
            .unwrap_err();
        assert!(
            matches!(error, ManagementError::Config(_)),
            "{bad}: {error:?}"
        );
    }
}

#[tokio::test]
async fn registered_but_unlisted_is_a_typed_error() {
    let (server, fake) = FakeSupabase::start(FakeConfig::default()).await;
    let r = fake.seed_project("acme", "pw");
    Mock::given(method("POST"))
        .and(path(format!("/project/{r}/auth/v1/admin/users")))
        .respond_with(ResponseTemplate::new(422).set_body_json(fixtures::email_exists_json()))
        .with_priority(1)
        .mount(&server)
        .await;
    let error = creator(&server)
        .create_admin_user(&r, &email())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ManagementError::AdminUserNotFound { project_ref } if *project_ref == r),
        "{error:?}"
    );
}
