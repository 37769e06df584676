//! The admin page over a fleet in SQLite: page 1, a page deep into the fleet, and a
//! sparse filter, at 1,000 and 10,000 tenants. Keyset paging should make the deep
//! page cost what page 1 costs, and page 1 cost the same at both sizes.
//!
//! `cargo bench -p tenancy-core --features pages,sqlite --bench admin_page -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tenancy_core::http::pages::{self, AdminPage, AdminSessions};
use tenancy_core::{NewTenant, SqliteTenantDirectory, TenantDirectory, TenantStatus};
use time::macros::datetime;
use tower::ServiceExt;

const TOKEN: &str = "bench-admin-token-0123456789";

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

/// A router over `n` tenants (one in a hundred failed, one in ten tagged `eu`) and a
/// signed-in cookie.
async fn fleet(n: usize, dir: &std::path::Path) -> (Router, String) {
    let url = format!("sqlite:{}", dir.join(format!("fleet-{n}.db")).display());
    let directory = Arc::new(SqliteTenantDirectory::connect(&url).await.unwrap());
    for i in 0..n {
        let mut signup = NewTenant::new(&format!("Tenant {i:05}"), "ops@example.com").unwrap();
        if i % 10 == 0 {
            signup = signup.with_tag("eu").unwrap();
        }
        let mut tenant = signup.into_tenant(datetime!(2026-01-01 0:00 UTC));
        tenant.status = if i % 100 == 0 {
            TenantStatus::Failed {
                step: tenancy_core::OnboardingStep::Migrate,
                reason: "boom".into(),
                attempts: 1,
            }
        } else {
            TenantStatus::Ready
        };
        directory.insert(&tenant).await.unwrap();
    }
    let state = State {
        sessions: AdminSessions::new(Some(TOKEN.into())),
        admin: AdminPage::new(directory),
    };
    let router = Router::new()
        .nest(
            "/admin",
            pages::admin_pages_router()
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    pages::require_admin_session::<State>,
                ))
                .merge(pages::admin_login_router()),
        )
        .with_state(state);
    let login = Request::post("/admin/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={TOKEN}")))
        .unwrap();
    let answer = router.clone().oneshot(login).await.unwrap();
    let cookie = answer.headers()[header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (router, cookie)
}

async fn get(router: &Router, cookie: &str, uri: &str) -> usize {
    let request = Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let answer = router.clone().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap()
        .len()
}

fn admin_page(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("tk-admin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("admin_page");
    for n in [1_000, 10_000] {
        let (router, cookie) = rt.block_on(fleet(n, &dir));
        let deep = format!("/admin?after=tenant-{:05}", n - 60);
        for (label, uri) in [
            ("first_page", "/admin".to_owned()),
            ("deep_page", deep),
            ("failed_in_eu", "/admin?status=failed&tag=eu".to_owned()),
        ] {
            group.bench_with_input(BenchmarkId::new(label, n), &uri, |b, uri| {
                b.iter(|| rt.block_on(get(&router, &cookie, uri)))
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, admin_page);
criterion_main!(benches);
