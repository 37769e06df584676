//! The tenant's billing page, reached through a signed link, with wiremock standing
//! in for Stripe.

mod client_support;
mod common;

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::FromRef;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use client_support::{client, received, stripe_object, subscription_checkout_session};
use common::{at, config, CUSTOMER, DAY, STARTER_YEARLY, T0};
use stripe_billing::pages::{
    billing_link_router, billing_pages_router, BillingPages, BillingSection,
};
use stripe_billing::{BillingLinks, BillingProcessor, MemoryBillingStore};
use tenancy_core::http::pages::AdminSection;
use tenancy_core::{ManualClock, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantId};
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LINK_SECRET: &str = "0123456789abcdef0123456789abcdef";

#[derive(Clone)]
struct State(BillingPages);
impl FromRef<State> for BillingPages {
    fn from_ref(state: &State) -> Self {
        state.0.clone()
    }
}

struct Site {
    router: Router,
    pages: BillingPages,
    processor: BillingProcessor,
    clock: ManualClock,
    stripe: MockServer,
    acme: TenantId,
}

async fn site() -> Site {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let tenant = NewTenant::new("<script>alert('x')</script> GmbH", "owner@acme.example")
        .unwrap()
        .into_tenant(at(T0));
    let acme = tenant.id.clone();
    directory.insert(&tenant).await.unwrap();
    let other = NewTenant::new("Globex", "owner@globex.example")
        .unwrap()
        .into_tenant(at(T0));
    directory.insert(&other).await.unwrap();

    let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), config());
    processor.start_trial(&acme, at(T0)).await.unwrap();
    let clock = ManualClock::new(at(T0 + 3 * DAY));
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(subscription_checkout_session("acme")),
        )
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(stripe_object("billing_portal.session")),
        )
        .mount(&stripe)
        .await;
    let pages = BillingPages::new(
        processor.clone(),
        directory,
        BillingLinks::new(LINK_SECRET.into()).unwrap(),
        "https://app.example.com/",
    )
    .stripe(Some(client(&stripe)))
    .with_clock(Arc::new(clock.clone()));
    let router = Router::new()
        .nest("/billing", billing_pages_router())
        .nest("/links", billing_link_router())
        .with_state(State(pages.clone()));
    Site {
        router,
        pages,
        processor,
        clock,
        stripe,
        acme,
    }
}

impl Site {
    /// The path and query of a fresh link to `tenant`'s page.
    fn link(&self, tenant: &TenantId) -> String {
        self.pages
            .link(tenant)
            .replace("https://app.example.com", "")
    }

    async fn get(&self, uri: &str) -> Response {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn post(&self, uri: &str, form: &str) -> Response {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap();
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// The link's `expires=…&sig=…`.
    fn proof(&self, tenant: &TenantId) -> String {
        self.link(tenant).split_once('?').unwrap().1.to_owned()
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

#[tokio::test]
async fn the_page_says_the_state_in_words_and_escapes_the_company_name() {
    let site = site().await;
    let response = site.get(&site.link(&site.acme)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = text(response).await;
    assert!(
        page.contains("Free trial: 11 days left (ends 15 January 2026)"),
        "{page}"
    );
    assert!(page.contains("&lt;script&gt;alert('x')&lt;/script&gt; GmbH"));
    assert!(!page.contains("<script>alert"));
    assert!(
        page.contains("$99.00") && page.contains("$2990.00"),
        "{page}"
    );
    assert!(page.contains("Choose Professional, yearly"));
    // No customer yet: no portal button.
    assert!(!page.contains("Manage payment methods"));
}

#[tokio::test]
async fn wrong_expired_and_borrowed_links_are_refused() {
    let site = site().await;
    let link = site.link(&site.acme);
    assert_eq!(
        site.get(&link.replace("sig=", "sig=0")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        site.get(&format!("/billing/{}", site.acme)).await.status(),
        StatusCode::FORBIDDEN
    );
    let globex = TenantId::new("globex").unwrap();
    let borrowed = link.replace(site.acme.as_str(), globex.as_str());
    assert_eq!(site.get(&borrowed).await.status(), StatusCode::FORBIDDEN);

    site.clock.advance(time::Duration::days(8));
    let expired = site.get(&link).await;
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    assert!(text(expired).await.contains("expired"));
    // The form of a page opened before expiry is refused too; Stripe is not called.
    let form = format!(
        "{}&plan=starter&interval=monthly",
        link.split_once('?').unwrap().1
    );
    let late = site
        .post(&format!("/billing/{}/checkout", site.acme), &form)
        .await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
    assert!(received(&site.stripe).await.is_empty());
}

#[tokio::test]
async fn choosing_a_plan_creates_a_checkout_session_and_redirects_to_it() {
    let site = site().await;
    let form = format!("{}&plan=starter&interval=yearly", site.proof(&site.acme));
    let response = site
        .post(&format!("/billing/{}/checkout", site.acme), &form)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let expected = subscription_checkout_session("acme")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()[header::LOCATION], expected.as_str());

    let requests = received(&site.stripe).await;
    assert_eq!(requests.len(), 1);
    let body: Vec<(String, String)> = url::form_urlencoded::parse(&requests[0].body)
        .into_owned()
        .collect();
    let field = |name: &str| body.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(
        field("line_items[0][price]").as_deref(),
        Some(STARTER_YEARLY)
    );
    assert_eq!(
        field("customer_email").as_deref(),
        Some("owner@acme.example")
    );
    assert_eq!(
        field("client_reference_id").as_deref(),
        Some(site.acme.as_str())
    );
    let success = field("success_url").unwrap();
    assert!(success.starts_with(&format!(
        "https://app.example.com/billing/{}?expires=",
        site.acme
    )));
    assert!(success.ends_with("&checkout=success"), "{success}");

    // An unknown plan or a forged proof never reaches Stripe.
    let unknown = format!("{}&plan=platinum&interval=monthly", site.proof(&site.acme));
    let response = site
        .post(&format!("/billing/{}/checkout", site.acme), &unknown)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let forged = "expires=9999999999&sig=00&plan=starter&interval=monthly";
    let response = site
        .post(&format!("/billing/{}/checkout", site.acme), forged)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(received(&site.stripe).await.len(), 1);
}

#[tokio::test]
async fn the_portal_opens_once_there_is_a_customer_and_the_admin_column_shows_the_phase() {
    let site = site().await;
    let uri = format!("/billing/{}/portal", site.acme);
    assert_eq!(
        site.post(&uri, &site.proof(&site.acme)).await.status(),
        StatusCode::CONFLICT
    );

    // Checkout completed: the customer is known, the page offers the portal.
    let session = common::checkout_session(site.acme.as_str(), "paid");
    let event = common::envelope("checkout.session.completed", session, T0 + 3 * DAY);
    site.processor
        .process(&common::decode(&event))
        .await
        .unwrap();
    let page = text(site.get(&site.link(&site.acme)).await).await;
    assert!(page.contains("Manage payment methods"), "{page}");
    let response = site.post(&uri, &site.proof(&site.acme)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let portal = received(&site.stripe).await;
    assert!(String::from_utf8_lossy(&portal[0].body).contains(CUSTOMER));

    let globex = TenantId::new("globex").unwrap();
    let columns = BillingSection::new(site.processor.clone())
        .columns(&[site.acme.clone(), globex.clone()])
        .await;
    assert_eq!(columns[0].header, "Billing");
    assert!(columns[0].cells[&site.acme].0.contains("data-billing"));
    assert!(
        !columns[0].cells.contains_key(&globex),
        "no billing state, no cell"
    );
}

#[tokio::test]
async fn the_admin_link_route_hands_out_links_that_open_the_page() {
    let site = site().await;
    let response = site.get(&format!("/links/{}", site.acme)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let view: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    let url = view["url"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "https://app.example.com/billing/{}?expires=",
        site.acme
    )));
    assert_eq!(view["expires_at"], "2026-01-11T00:00:00Z");
    let page = site.get(&url.replace("https://app.example.com", "")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        site.get("/links/nobody").await.status(),
        StatusCode::NOT_FOUND
    );
}
