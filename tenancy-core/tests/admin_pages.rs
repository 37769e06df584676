//! The admin sign-in and fleet page, called as a browser would (cookies and forms).

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::FromRef;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use tenancy_core::http::pages::{
    self, maud::html, AdminPage, AdminSection, AdminSession, AdminSessions, FleetColumn,
};
use tenancy_core::{
    ManualClock, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantId, TenantStatus,
};
use time::macros::datetime;
use tower::ServiceExt;

const TOKEN: &str = "the-admin-token-0123";

#[derive(Clone)]
struct State {
    sessions: AdminSessions,
    admin: AdminPage,
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

/// A section adding a panel with a form and a column.
struct Plans;

#[async_trait::async_trait]
impl AdminSection for Plans {
    async fn panel(&self, session: &AdminSession) -> Option<maud::Markup> {
        Some(
            html! { form method="post" action=(session.url("plans/sync")) { (session.csrf_field()) button { "Sync plans" } } },
        )
    }
    async fn columns(&self, tenants: &[TenantId]) -> Vec<FleetColumn> {
        let column = tenants.iter().fold(FleetColumn::new("Plan"), |c, t| {
            c.cell(t.clone(), html! { "plan of " (t) })
        });
        vec![column]
    }
}

use tenancy_core::http::pages::maud;

struct App {
    router: Router,
    clock: ManualClock,
}

async fn app(token: Option<&str>) -> App {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let now = datetime!(2026-03-01 0:00 UTC);
    let mut names: Vec<String> = (0..7).map(|i| format!("Tenant {i}")).collect();
    names.push("<script>alert(1)</script> Ltd".into());
    for name in names {
        let mut tenant = NewTenant::new(&name, "admin@example.com")
            .unwrap()
            .with_tag(if name.ends_with('3') { "eu" } else { "us" })
            .unwrap()
            .into_tenant(now);
        if name.ends_with('5') {
            tenant.status = TenantStatus::Ready;
        }
        directory.insert(&tenant).await.unwrap();
    }
    let clock = ManualClock::new(now);
    let state = State {
        sessions: AdminSessions::new(token.map(Into::into)).with_clock(Arc::new(clock.clone())),
        admin: AdminPage::new(directory)
            .section(Arc::new(Plans))
            .page_size(3),
    };
    let signed_in = pages::admin_pages_router()
        .route(
            "/plans/sync",
            axum::routing::post(|_: AdminSession| async {
                pages::redirect("/admin?notice=synced")
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::require_admin_session::<State>,
        ));
    let router = Router::new()
        .nest("/admin", signed_in.merge(pages::admin_login_router()))
        .with_state(state);
    App { router, clock }
}

impl App {
    async fn call(&self, request: Request<Body>) -> Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.call(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, uri: &str, cookie: Option<&str>, form: &str) -> Response {
        let mut request =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.call(request.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    /// Signs in; returns the `name=value` cookie.
    async fn sign_in(&self) -> String {
        let response = self
            .post(
                "/admin/login",
                None,
                &format!("token={TOKEN}&next=%2Fadmin"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        set_cookie.split(';').next().unwrap().to_owned()
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

#[tokio::test]
async fn the_admin_page_needs_a_sign_in_and_escapes_names() {
    let app = app(Some(TOKEN)).await;
    let anonymous = app.get("/admin?tag=us", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers()[header::LOCATION],
        "/admin/login?next=%2Fadmin%3Ftag%3Dus"
    );

    let wrong = app
        .post("/admin/login", None, "token=guess&next=%2Fadmin")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    assert!(text(wrong).await.contains("not the admin token"));

    let cookie = app.sign_in().await;
    let filtered = app.get("/admin?tag=us&status=pending", Some(&cookie)).await;
    assert_eq!(filtered.status(), StatusCode::OK);
    assert_eq!(filtered.headers()[header::CACHE_CONTROL], "no-store");
    let page = text(filtered).await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt; Ltd"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("plan of script-alert-1-script-ltd") || page.contains("Sync plans"));
    // Page one of three rows, keyset paging keeps the filters.
    assert_eq!(page.matches("<tr data-tenant").count(), 3);
    assert!(
        page.contains("?status=pending&amp;tag=us&amp;after="),
        "{page}"
    );
    assert!(!page.contains("tenant-3\""), "eu tenant filtered out");
    assert!(!page.contains("tenant-5\""), "ready tenant filtered out");
}

#[tokio::test]
async fn pages_follow_the_fleet_keyset_and_refuse_bad_filters() {
    let app = app(Some(TOKEN)).await;
    let cookie = app.sign_in().await;
    let mut seen = Vec::new();
    let mut uri = "/admin".to_owned();
    for _ in 0..5 {
        let page = text(app.get(&uri, Some(&cookie)).await).await;
        seen.extend(
            page.match_indices("<tr data-tenant=\"")
                .map(|(i, _)| page[i + 17..].split('"').next().unwrap().to_owned()),
        );
        let Some(at) = page.find("rel=\"next\"") else {
            break;
        };
        let href = page[..at]
            .rsplit("href=\"")
            .next()
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        uri = href.replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "each tenant once, in id order");

    let bad = app.get("/admin?status=sleeping", Some(&cookie)).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text(bad).await.contains("not a tenant state"));
}

#[tokio::test]
async fn forms_need_the_forgery_token_and_sessions_expire() {
    let app = app(Some(TOKEN)).await;
    let cookie = app.sign_in().await;
    let page = text(app.get("/admin", Some(&cookie)).await).await;
    let csrf = csrf_of(&page);

    let forged = app.post("/admin/plans/sync", Some(&cookie), "").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(text(forged).await.contains("security token"));
    let stale = app
        .post("/admin/plans/sync", Some(&cookie), "csrf=00")
        .await;
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    let done = app
        .post("/admin/plans/sync", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[header::LOCATION], "/admin?notice=synced");

    // A forged cookie, and the real one after eight hours, are signed out.
    let tampered = cookie.replace('.', "9.");
    assert_eq!(
        app.get("/admin", Some(&tampered)).await.status(),
        StatusCode::SEE_OTHER
    );
    app.clock.advance(time::Duration::hours(9));
    assert_eq!(
        app.get("/admin", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    let late = app
        .post("/admin/plans/sync", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_never_redirects_off_the_admin_pages_and_logout_clears_the_cookie() {
    let app = app(Some(TOKEN)).await;
    for next in [
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "%2Fadministrator",
        "%2Fadmin%2F%2Fevil",
    ] {
        let response = app
            .post("/admin/login", None, &format!("token={TOKEN}&next={next}"))
            .await;
        assert_eq!(response.headers()[header::LOCATION], "/admin", "{next}");
    }
    let cookie = app.sign_in().await;
    let csrf = csrf_of(&text(app.get("/admin", Some(&cookie)).await).await);
    let out = app
        .post("/admin/logout", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // A copy of the cookie kept after signing out opens nothing, its forms included.
    let kept = app.get("/admin", Some(&cookie)).await;
    assert_ne!(kept.status(), StatusCode::OK);
    let replayed = app
        .post("/admin/plans/sync", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(replayed.status(), StatusCode::FORBIDDEN);
    // Another sign-in is a session of its own.
    let again = app.sign_in().await;
    assert_eq!(
        app.get("/admin", Some(&again)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_an_admin_token_the_pages_are_disabled() {
    let app = app(None).await;
    assert_eq!(
        app.get("/admin", None).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let login = app.post("/admin/login", None, "token=").await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(login).await.contains("ADMIN_TOKEN"));
}
