//! The admin page and the tenant's billing page in headless Chromium, against the
//! real server on an ephemeral port, with wiremock standing in for Stripe. Each
//! failing step leaves a screenshot under `target/browser-screenshots/`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use stripe_billing::testing::{checkout_session, event, signed};
use support::browser::{Browser, BrowserError};
use support::{Service, ADMIN_TOKEN, WEBHOOK_SECRET};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(20);
const COMPANY: &str = "<script>alert('pwned')</script> Labs";

/// Stripe's example Checkout session, its page on the stand-in.
async fn stripe_stand_in() -> MockServer {
    let stripe = MockServer::start().await;
    let mut session = stripe_billing::testing::example("checkout.session");
    session["mode"] = json!("subscription");
    session["url"] = json!(format!("{}/c/pay/cs_test_e2e", stripe.uri()));
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/c/pay/cs_test_e2e"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!doctype html><title>Checkout</title><h1>Stand-in Checkout</h1>",
            "text/html",
        ))
        .mount(&stripe)
        .await;
    stripe
}

async fn sign_in(browser: &Browser, service: &Service) -> Result<(), BrowserError> {
    browser.goto(&service.url("/admin")).await?;
    browser.wait_for_text("h1", "Sign in", WAIT).await?;
    browser.fill("#token", ADMIN_TOKEN).await?;
    browser.click("form button[type=submit]").await?;
    browser.wait_for_text("#fleet", "Tenants", WAIT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_the_fleet_and_watches_a_canary_rollout_finish() {
    let service = Service::start().await;
    let escaped = service.signup_ready(COMPANY, "owner@labs.example").await;
    for (company, email) in [
        ("Acme", "owner@acme.example"),
        ("Globex", "it@globex.example"),
    ] {
        service.signup_ready(company, email).await;
    }
    let browser = Browser::start("admin_canary_rollout").await;

    browser
        .step("sign in", sign_in(&browser, &service))
        .await
        .unwrap();
    browser
        .step("see the fleet, names as text", async {
            let row = format!("tr[data-tenant='{escaped}'] td:nth-child(2)");
            let name = browser.text(&row).await?;
            if name != COMPANY {
                return Err(BrowserError::new(format!("the name shows as {name:?}")));
            }
            browser.wait_for_text("table", "ready", WAIT).await?;
            // Headings are upper-cased by the style sheet.
            browser.wait_for_text("thead", "BILLING", WAIT).await?;
            Ok(())
        })
        .await
        .unwrap();

    browser
        .step("check a canary rollout", async {
            // The form is open while there is no rollout yet.
            browser
                .fill(
                    "#migration_sql",
                    "CREATE TABLE notes (id bigint PRIMARY KEY, body text);",
                )
                .await?;
            browser.fill("#version", "20260201000000_add_notes").await?;
            let strategy = browser.find("#strategy").await?;
            strategy
                .select_by_value("canary:1")
                .await
                .map_err(|e| BrowserError::new(format!("choose the strategy: {e}")))?;
            browser
                .click("form[action$='rollout/preview'] button[type=submit]")
                .await?;
            browser.wait_for_text("h1", "Check migration", WAIT).await?;
            browser
                .wait_for_text("main", "Nothing blocks this migration", WAIT)
                .await?;
            Ok(())
        })
        .await
        .unwrap();

    browser
        .step("start it and watch it reach 100%", async {
            browser
                .click("form[action$='rollout/start'] button[type=submit]")
                .await?;
            browser
                .wait_for_text("#rollout", "Schema rollout", WAIT)
                .await?;
            // Updated in place by the page's polling: no reload.
            browser
                .wait_for_text("#rollout-done", "3 of 3 tenants", WAIT)
                .await?;
            browser
                .wait_for_text("#rollout-status", "completed", WAIT)
                .await?;
            Ok(())
        })
        .await
        .unwrap();

    browser
        .step("the schema column shows the new version", async {
            browser.goto(&service.url("/admin")).await?;
            browser
                .wait_for_text("table", "20260201000000", WAIT)
                .await?;
            Ok(())
        })
        .await
        .unwrap();
    // The whole page for the README: the rollout, then the fleet.
    browser.client().set_window_size(1280, 1000).await.unwrap();
    let png = browser.client().screenshot().await.unwrap();
    let shot = browser.screenshot_path("admin-page");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    std::fs::write(&shot, png).unwrap();

    // A form posted without its forgery token, with the signed-in cookie: refused.
    let cookie = browser.client().get_named_cookie("tk_admin").await.unwrap();
    let forged = service
        .http
        .post(service.url("/admin/rollout/halt"))
        .header("cookie", format!("tk_admin={}", cookie.value()))
        .form(&[("reason", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.text().await.unwrap().contains("security token"));

    browser.close().await;
    service.stop().await;
}

async fn billing_link(service: &Service, tenant: &tenancy_core::TenantId) -> String {
    let (status, view) = service
        .admin_get(&format!("/api/admin/billing-links/{tenant}"))
        .await;
    assert_eq!(status, 200, "{view}");
    view["url"].as_str().unwrap().to_owned()
}

async fn deliver(service: &Service, event_json: &Value) {
    let at = service.now().unix_timestamp();
    let (body, signature) = signed(event_json, WEBHOOK_SECRET, at);
    let response = service
        .http
        .post(service.url("/api/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_billing_change_after_a_webhook_and_chooses_a_plan() {
    let stripe = stripe_stand_in().await;
    let service = Service::start_with(Some(ADMIN_TOKEN), Some(stripe.uri())).await;
    let tenant = service.signup_ready(COMPANY, "owner@labs.example").await;
    let link = billing_link(&service, &tenant).await;
    let browser = Browser::start("billing_page").await;

    browser
        .step("the trial, in words", async {
            browser.goto(&link).await?;
            browser
                .wait_for_text("#billing-state", "Free trial: 14 days left", WAIT)
                .await?;
            let heading = browser.text("h1").await?;
            if heading != format!("Billing for {COMPANY}") {
                return Err(BrowserError::new(format!(
                    "the heading shows as {heading:?}"
                )));
            }
            Ok(())
        })
        .await
        .unwrap();

    // Stripe says the first payment failed: past due, with the grace end.
    let now = service.now().unix_timestamp();
    let session = checkout_session(tenant.as_str(), "cus_e2e", "sub_e2e", "paid");
    deliver(&service, &event("checkout.session.completed", session, now)).await;
    let invoice = stripe_billing::testing::invoice(
        "sub_e2e",
        "cus_e2e",
        0,
        stripe_billing::testing::InvoiceShape::Parent,
    );
    deliver(&service, &event("invoice.payment_failed", invoice, now + 1)).await;
    browser
        .step("the new state after the webhook", async {
            browser.goto(&link).await?;
            browser
                .wait_for_text("#billing-state", "Payment failed", WAIT)
                .await?;
            browser
                .wait_for_text("main", "Manage payment methods", WAIT)
                .await?;
            Ok(())
        })
        .await
        .unwrap();

    browser
        .step("choose a plan and arrive at Checkout", async {
            browser
                .click("article[data-plan=starter] form button[type=submit]")
                .await?;
            browser
                .wait_for_text("h1", "Stand-in Checkout", WAIT)
                .await?;
            let url = browser.current_url().await?;
            if !url.as_str().starts_with(&stripe.uri()) {
                return Err(BrowserError::new(format!("ended at {url}")));
            }
            Ok(())
        })
        .await
        .unwrap();
    let requests = stripe.received_requests().await.unwrap();
    let checkout = requests
        .iter()
        .find(|r| r.url.path() == "/v1/checkout/sessions")
        .unwrap();
    let form = String::from_utf8_lossy(&checkout.body);
    assert!(form.contains("customer=cus_e2e"), "{form}");

    browser
        .step("a changed link is refused", async {
            browser.goto(&link.replace("sig=", "sig=1")).await?;
            browser.wait_for_text("main", "not valid", WAIT).await?;
            Ok(())
        })
        .await
        .unwrap();
    service.advance(time::Duration::days(8));
    browser
        .step("an expired link is refused", async {
            browser.goto(&link).await?;
            browser.wait_for_text("main", "expired", WAIT).await?;
            Ok(())
        })
        .await
        .unwrap();

    browser.close().await;
    service.stop().await;
}
