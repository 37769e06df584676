//! The signup and tenant routers, and the admin-token layer, as a host mounts them.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tenancy_core::http::{
    json_errors, require_admin_token, signup_router, tenant_router, AdminToken, TenantRoutes,
};
use tenancy_core::{
    AdminUser, AdminUserCreator, BackendError, DatabaseProvisioner, DatabaseTarget, DatabaseUrl,
    MemoryTenantDirectory, MigrationReport, Onboarding, SchemaMigrator, Tenant, TenantDirectory,
    TenantId,
};
use tower::ServiceExt;

struct Secretive;

#[async_trait::async_trait]
impl DatabaseProvisioner for Secretive {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        let url = format!(
            "postgres://app:hunter2@db.local:5432/{}",
            tenant.id.as_str().replace('-', "_")
        );
        Ok(DatabaseTarget::new(DatabaseUrl::parse(&url).unwrap()))
    }
    async fn find(&self, _: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        Ok(None)
    }
    async fn delete(&self, _: &TenantId) -> Result<(), BackendError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl SchemaMigrator for Secretive {
    async fn migrate(
        &self,
        _: &TenantId,
        _: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        Ok(MigrationReport::new(None, Some(1), 1))
    }
}

#[async_trait::async_trait]
impl AdminUserCreator for Secretive {
    async fn create_admin(
        &self,
        tenant: &Tenant,
        _: &DatabaseTarget,
    ) -> Result<AdminUser, BackendError> {
        Ok(AdminUser::new("u-1", tenant.admin_email.clone(), true))
    }
}

#[derive(Clone)]
struct Host {
    tenants: TenantRoutes,
    admin: AdminToken,
}

impl FromRef<Host> for TenantRoutes {
    fn from_ref(host: &Host) -> Self {
        host.tenants.clone()
    }
}

impl FromRef<Host> for AdminToken {
    fn from_ref(host: &Host) -> Self {
        host.admin.clone()
    }
}

const TOKEN: &str = "admin-token-0123456789";

fn app(
    token: Option<&str>,
) -> (
    Router,
    Arc<MemoryTenantDirectory>,
    Onboarding,
    Arc<Mutex<Vec<TenantId>>>,
) {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let onboarding = Onboarding::new(
        directory.clone(),
        Arc::new(Secretive),
        Arc::new(Secretive),
        Arc::new(Secretive),
    );
    let started = Arc::new(Mutex::new(Vec::new()));
    let seen = started.clone();
    let host = Host {
        tenants: TenantRoutes::new(onboarding.clone(), directory.clone())
            .on_signup(move |tenant| seen.lock().unwrap().push(tenant)),
        admin: AdminToken::new(token.map(Into::into)),
    };
    let admin = tenant_router().route_layer(axum::middleware::from_fn_with_state(
        host.clone(),
        require_admin_token::<Host>,
    ));
    let router = Router::new()
        .nest("/api", signup_router())
        .nest("/api/admin", admin)
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(host);
    (router, directory, onboarding, started)
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn signup(company: &str, email: &str) -> Request<Body> {
    Request::post("/api/signup")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"company": company, "email": email}).to_string(),
        ))
        .unwrap()
}

fn lookup(id: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(format!("/api/admin/tenants/{id}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn signup_records_the_tenant_and_starts_its_onboarding() {
    let (app, directory, _, started) = app(Some(TOKEN));

    let (status, body) = call(&app, signup("Acme Pharmacy", "owner@acme.example")).await;
    assert_eq!(
        (status, &body),
        (StatusCode::ACCEPTED, &json!({"tenant_id": "acme-pharmacy"}))
    );
    let id = TenantId::try_from("acme-pharmacy").unwrap();
    assert!(directory.get(&id).await.unwrap().is_some());
    assert_eq!(started.lock().unwrap().as_slice(), [id]);

    let (status, body) = call(&app, signup("Acme Pharmacy", "someone@else.example")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("another admin email"),
        "{body}"
    );
    let (status, body) = call(&app, signup("!", "owner@acme.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("company name"),
        "{body}"
    );
    assert_eq!(
        started.lock().unwrap().len(),
        1,
        "refused signups start nothing"
    );
}

#[tokio::test]
async fn the_tenant_view_is_an_admin_route_and_hides_passwords() {
    let (app, _, onboarding, _) = app(Some(TOKEN));
    call(&app, signup("Acme Pharmacy", "owner@acme.example")).await;
    onboarding
        .run(&TenantId::try_from("acme-pharmacy").unwrap())
        .await
        .unwrap();

    assert_eq!(
        call(&app, lookup("acme-pharmacy", None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, lookup("acme-pharmacy", Some("wrong-token-0123456")))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(&app, lookup("acme-pharmacy", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], json!({"state": "ready"}));
    assert_eq!(
        body["database"]["url"],
        "postgres://app:[redacted]@db.local:5432/acme_pharmacy"
    );
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert_eq!(
        call(&app, lookup("ghost", Some(TOKEN))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, lookup("Not_A_Tenant", Some(TOKEN))).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn admin_routes_are_closed_without_a_configured_token() {
    let (app, _, _, _) = app(None);
    let (status, body) = call(&app, lookup("acme-pharmacy", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"].as_str().unwrap().contains("ADMIN_TOKEN"),
        "{body}"
    );
}

/// What axum's extractors reject, and routes that do not exist, answer JSON like
/// every other error.
#[tokio::test]
async fn framework_rejections_answer_json() {
    let (app, ..) = app(Some(TOKEN));
    let raw = |content_type: &str, body: &str| {
        Request::post("/api/signup")
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let cases = [
        (
            raw("application/json", "{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw("application/json", r#"{"company": "Acme"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw("text/plain", "company=Acme"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Request::get("/api/nowhere").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            Request::get("/api/signup").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = call(&app, request).await;
        assert_eq!(status, expected, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{status}: {body}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_without_regard_to_case() {
    let (app, directory, ..) = app(Some(TOKEN));
    let (status, body) = call(&app, signup("Acme", "a@acme.example")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(directory
        .get(&TenantId::try_from("acme").unwrap())
        .await
        .unwrap()
        .is_some());
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let request = Request::get("/api/admin/tenants/acme")
            .header("authorization", format!("{scheme} {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::OK, "{scheme}: {body}");
    }
}

#[tokio::test]
async fn company_names_in_any_script_are_accepted_and_nul_is_refused() {
    let (app, ..) = app(Some(TOKEN));
    let (status, body) = call(&app, signup("日本語の会社", "a@example.jp")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        body["tenant_id"].as_str().unwrap().starts_with("t-"),
        "{body}"
    );
    let (status, body) = call(&app, signup("Acme\u{0}Corp", "a@acme.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
