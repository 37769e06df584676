//! The rollout part of the admin page, called as a browser would (cookies and
//! forms), over SQLite tenant databases, a SQLite state store and a stored catalog.
#![cfg(feature = "pages")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::FromRef;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use sqlx::Connection;
use tenancy_core::http::pages::{self, AdminPage, AdminSessions};
use tenancy_core::persistence::StorePoolOptions;
use tenancy_core::testing::TempSqlite;
use tenancy_core::{
    DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantFilter, TenantStatus,
};
use tenant_migrate::http::RolloutRoutes;
use tenant_migrate::pages::{rollout_pages_router, RolloutSection};
use tenant_migrate::rollout::store::SqliteRolloutStore;
use tenant_migrate::{MigrationSet, StoredCatalog};
use tower::ServiceExt;

const TOKEN: &str = "the-admin-token-0123";
const VERSION: &str = "20240127120000_add_pinned";
const ADD_PINNED: &str = "ALTER TABLE notes ADD COLUMN pinned BOOLEAN;";
/// A table whose name is markup: creating it again fails with an error naming it.
const SCRIPT_TABLE: &str = r#"CREATE TABLE "<script>alert(1)</script>" (id INTEGER);"#;

#[derive(Clone)]
struct State {
    sessions: AdminSessions,
    admin: AdminPage,
    rollouts: RolloutRoutes,
}
impl FromRef<State> for AdminSessions {
    fn from_ref(state: &State) -> Self {
        state.sessions.clone()
    }
}
impl FromRef<State> for AdminPage {
    fn from_ref(state: &State) -> Self {
        state.admin.clone()
    }
}
impl FromRef<State> for RolloutRoutes {
    fn from_ref(state: &State) -> Self {
        state.rollouts.clone()
    }
}

struct App {
    router: Router,
    /// The tenants' databases, by tenant (in id order), and the control plane's.
    tenants: Vec<TempSqlite>,
    _control: TempSqlite,
    _state: TempSqlite,
}

fn base_migrations() -> MigrationSet {
    MigrationSet::builder()
        .file(
            "1_create_notes.up.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
        )
        .file("1_create_notes.down.sql", "DROP TABLE notes;")
        .build()
        .unwrap()
}

/// Three ready tenants on SQLite files, the admin pages with the rollout section,
/// and the rollout forms nested at `/admin/rollout`.
async fn app() -> App {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let now = time::OffsetDateTime::now_utc();
    let mut files = Vec::new();
    for i in 0..3 {
        let file = TempSqlite::new();
        let mut tenant = NewTenant::new(&format!("Tenant {i}"), "admin@example.com")
            .unwrap()
            .into_tenant(now);
        tenant.status = TenantStatus::Ready;
        tenant.database = Some(file.target().unwrap());
        directory.insert(&tenant).await.unwrap();
        files.push(file);
    }
    let control = TempSqlite::new();
    let pool = StorePoolOptions::new()
        .open(&DatabaseUrl::parse(&control.url()).unwrap())
        .await
        .unwrap();
    let catalog = StoredCatalog::open(base_migrations(), pool).await.unwrap();
    let state_file = TempSqlite::new();
    let store = SqliteRolloutStore::open(&state_file.url()).await.unwrap();
    let rollouts = RolloutRoutes::new(directory.clone(), Arc::new(store), Arc::new(catalog));
    let state = State {
        sessions: AdminSessions::new(Some(TOKEN.into())),
        admin: AdminPage::new(directory.clone())
            .section(Arc::new(RolloutSection::new(rollouts.clone()))),
        rollouts,
    };
    let signed_in = pages::admin_pages_router()
        .nest("/rollout", rollout_pages_router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::require_admin_session::<State>,
        ));
    let router = Router::new()
        .nest("/admin", signed_in.merge(pages::admin_login_router()))
        .with_state(state);
    // The files in the directory's (id) order.
    let listed = directory.list(&TenantFilter::all()).await.unwrap();
    let mut tenants = Vec::new();
    for tenant in listed {
        let url = tenant.database.unwrap().url.expose().to_owned();
        let at = files.iter().position(|f| f.url() == url).unwrap();
        tenants.push(files.remove(at));
    }
    App {
        router,
        tenants,
        _control: control,
        _state: state_file,
    }
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

impl App {
    async fn call(&self, request: Request<Body>) -> Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, uri: &str, cookie: &str) -> Response {
        let request = Request::get(uri).header(header::COOKIE, cookie);
        self.call(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, uri: &str, cookie: &str, body: String) -> Response {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie);
        self.call(request.body(Body::from(body)).unwrap()).await
    }

    /// Signs in; returns the cookie and the forgery token of the admin page.
    async fn sign_in(&self) -> (String, String) {
        let login = Request::post("/admin/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={TOKEN}&next=%2Fadmin")))
            .unwrap();
        let response = self.call(login).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let page = text(self.get("/admin", &cookie).await).await;
        (cookie, csrf_of(&page))
    }

    /// Starts a rollout of `sql` through the confirm form.
    async fn start(&self, cookie: &str, csrf: &str, sql: &str) -> Response {
        let body = form(&[
            ("csrf", csrf),
            ("migration_sql", sql),
            ("version", VERSION),
            ("strategy", "all"),
        ]);
        self.post("/admin/rollout/start", cookie, body).await
    }

    /// Polls the progress until every tenant is done (at most 20 s).
    async fn wait_until_done(&self, cookie: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = self.get("/admin/rollout/progress", cookie).await;
            assert_eq!(response.status(), StatusCode::OK);
            let progress: Value = serde_json::from_str(&text(response).await).unwrap();
            if progress["total"] == 3 && progress["done"] == 3 {
                return progress;
            }
            assert!(
                Instant::now() < deadline,
                "the rollout did not finish: {progress}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn text(response: Response) -> String {
    String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[start..start + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_checked_started_and_followed_to_the_end() {
    let app = app().await;
    let (cookie, csrf) = app.sign_in().await;
    let page = text(app.get("/admin", &cookie).await).await;
    assert!(
        page.contains("No rollout of the current migrations yet"),
        "{page}"
    );
    assert!(page.contains("name=\"migration_sql\""));
    assert!(page.contains("placeholder=\"20240127120000_add_field\""));

    let preview = app
        .post(
            "/admin/rollout/preview",
            &cookie,
            form(&[
                ("csrf", &csrf),
                ("migration_sql", ADD_PINNED),
                ("version", VERSION),
                ("strategy", "waves:10,50,100"),
                ("canary_tag", ""),
            ]),
        )
        .await;
    assert_eq!(preview.status(), StatusCode::OK);
    let preview = text(preview).await;
    assert!(
        preview.contains("Nothing blocks this migration"),
        "{preview}"
    );
    assert!(preview.contains("action=\"/admin/rollout/start\""));
    assert!(preview.contains("name=\"strategy\" value=\"waves:10,50,100\""));

    let started = app.start(&cookie, &csrf, ADD_PINNED).await;
    assert_eq!(
        started.status(),
        StatusCode::SEE_OTHER,
        "{}",
        text(started).await
    );
    let location = started.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("/admin?notice=Rollout%20"),
        "{location}"
    );

    let progress = app.wait_until_done(&cookie).await;
    assert_eq!(progress["status"], "completed", "{progress}");
    assert_eq!(progress["succeeded"], 3);
    assert_eq!(progress["pending"], 0);

    let page = text(app.get("/admin", &cookie).await).await;
    assert!(page.contains("id=\"rollout-progress\""), "{page}");
    assert!(page.contains("value=\"3\""), "{page}");
    assert!(page.contains("3 of 3 tenants"), "{page}");
    assert!(
        page.contains("to version <code>20240127120000</code>"),
        "{page}"
    );
    assert!(page.contains(">completed</span>"), "{page}");
    // Every tenant's row shows the new version in the Schema column.
    assert!(page.contains("<th scope=\"col\">Schema</th>"), "{page}");
    assert_eq!(
        page.matches("<td><code>20240127120000</code></td>").count(),
        3,
        "{page}"
    );
    // Finished: no polling, no halt, no withdraw; a rollback is offered.
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("rollout/withdraw"));
    assert!(page.contains("action=\"/admin/rollout/rollback\""));

    // The migration reached every tenant: withdrawing it is refused as the API does.
    let withdraw = app
        .post(
            "/admin/rollout/withdraw",
            &cookie,
            form(&[("csrf", &csrf), ("version", "20240127120000")]),
        )
        .await;
    assert_eq!(withdraw.status(), StatusCode::CONFLICT);
    let withdraw = text(withdraw).await;
    assert!(
        withdraw.contains("is applied on 3 tenants already; fix it forward with a new migration"),
        "{withdraw}"
    );

    for file in &app.tenants {
        let mut conn = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('notes')")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(columns.contains(&"pinned".to_owned()), "{columns:?}");
    }
}

#[tokio::test]
async fn a_blocking_finding_is_shown_without_a_way_to_start() {
    let app = app().await;
    let (cookie, csrf) = app.sign_in().await;
    let preview = app
        .post(
            "/admin/rollout/preview",
            &cookie,
            form(&[
                ("csrf", &csrf),
                ("migration_sql", "DROP TABLE notes;"),
                ("version", "20240201000000_drop_notes"),
                ("strategy", "all"),
                ("canary_tag", "staging"),
            ]),
        )
        .await;
    assert_eq!(preview.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let preview = text(preview).await;
    assert!(preview.contains("ban-drop-table"), "{preview}");
    assert!(preview.contains("Errors block this migration"), "{preview}");
    assert!(!preview.contains("rollout/start"), "{preview}");
    assert!(preview.contains("canary:tag=staging"), "{preview}");
    // The form comes back filled in, to be changed and checked again.
    assert!(
        preview.contains(">DROP TABLE notes;</textarea>"),
        "{preview}"
    );

    // A bad version and strategy are named too.
    let preview = app
        .post(
            "/admin/rollout/preview",
            &cookie,
            form(&[
                ("csrf", &csrf),
                ("migration_sql", ADD_PINNED),
                ("version", "add_pinned"),
                ("strategy", "sometimes"),
            ]),
        )
        .await;
    assert_eq!(preview.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let preview = text(preview).await;
    assert!(preview.contains("numeric version"), "{preview}");
    assert!(preview.contains("unknown strategy"), "{preview}");
    assert!(!preview.contains("rollout/start"), "{preview}");

    // Posted straight to /start, the catalog refuses it as the API does.
    let refused = app.start(&cookie, &csrf, "DROP TABLE notes;").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(refused).await.contains("not backward compatible"));
    let none = app.get("/admin/rollout/progress", &cookie).await;
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forms_without_the_forgery_token_are_refused() {
    let app = app().await;
    let (cookie, _) = app.sign_in().await;
    for path in ["halt", "resume", "rollback", "withdraw", "preview", "start"] {
        let response = app
            .post(&format!("/admin/rollout/{path}"), &cookie, String::new())
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing to resume or roll back yet: the API's 404, as a page.
    let (cookie, csrf) = app.sign_in().await;
    let resume = app
        .post("/admin/rollout/resume", &cookie, form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(resume.status(), StatusCode::NOT_FOUND);
    assert!(text(resume).await.contains("no unfinished rollout"));
    let halt = app
        .post("/admin/rollout/halt", &cookie, form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(halt.status(), StatusCode::SEE_OTHER);
    let location = halt.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.contains("No%20unfinished%20rollout"), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_error_is_shown_as_text() {
    let app = app().await;
    // The second tenant has the table already: the migration fails there.
    let mut conn = sqlx::SqliteConnection::connect(&app.tenants[1].url())
        .await
        .unwrap();
    sqlx::query(SCRIPT_TABLE).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let (cookie, csrf) = app.sign_in().await;
    let started = app.start(&cookie, &csrf, SCRIPT_TABLE).await;
    assert_eq!(
        started.status(),
        StatusCode::SEE_OTHER,
        "{}",
        text(started).await
    );
    let progress = app.wait_until_done(&cookie).await;
    assert_eq!(progress["failed"], 1, "{progress}");
    assert_eq!(progress["succeeded"], 2, "{progress}");

    let page = text(app.get("/admin", &cookie).await).await;
    assert!(page.contains("Failed tenants"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("action=\"/admin/rollout/resume\""), "{page}");
    assert!(
        page.contains("<span class=\"badge bad\">failed</span>"),
        "{page}"
    );
}
