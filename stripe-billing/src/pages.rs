//! The tenant's billing page and the admin page's billing column (feature `pages`).
//!
//! | route | what it does |
//! |---|---|
//! | `GET /{tenant}?expires=…&sig=…` | the billing state in plain words, the plans, "Choose plan" |
//! | `POST /{tenant}/checkout` | creates a Checkout session, answers 303 to Stripe's page |
//! | `POST /{tenant}/portal` | creates a billing-portal session, answers 303 to it |
//!
//! [`billing_link_router`] answers `GET /{tenant}` with a fresh link
//! (`{"url", "expires_at"}`), for the host's admin API.
//!
//! A tenant reaches the page through a link the host makes with
//! [`BillingLinks::link`]; there is no login. Its forms carry the link's expiry
//! and signature, checked again on every `POST`: a changed, expired or forged link
//! is refused (403), and no other site can post for a tenant. Nest the router
//! where the links point (`/billing`), outside the admin pages.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::extract::FromRef;
//! use axum::Router;
//! use stripe_billing::pages::{billing_pages_router, BillingPages};
//! # fn assemble(pages: BillingPages) -> Router {
//! #[derive(Clone)]
//! struct AppState { billing: BillingPages }
//! impl FromRef<AppState> for BillingPages {
//!     fn from_ref(state: &AppState) -> Self { state.billing.clone() }
//! }
//! Router::new()
//!     .nest("/billing", billing_pages_router())
//!     .with_state(AppState { billing: pages })
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use tenancy_core::http::pages::{error_page, notice, page, redirect, AdminSection, FleetColumn};
use tenancy_core::http::{rfc3339, ApiError};
use tenancy_core::{Clock, SystemClock, Tenant, TenantDirectory, TenantId};
use time::OffsetDateTime;

use crate::{
    BillingInterval, BillingLinkError, BillingLinks, BillingPhase, BillingProcessor, BillingState,
    CheckoutCustomer, CreateBillingPortalSession, CreateCheckoutSession, PlanId, PricingPlan,
    StripeClient, SuspendReason,
};

/// The state of [`billing_pages_router`]: billing state, tenants, link signing,
/// the Stripe client, and the public address of the service.
#[derive(Clone)]
pub struct BillingPages {
    processor: BillingProcessor,
    directory: Arc<dyn TenantDirectory>,
    links: BillingLinks,
    stripe: Option<StripeClient>,
    public_url: String,
    base: String,
    currency: String,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for BillingPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingPages")
            .field("stripe", &self.stripe.is_some())
            .field("public_url", &self.public_url)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl BillingPages {
    /// Pages over `processor`'s state and `directory`'s tenants, checking links
    /// with `links`. `public_url` is where tenants reach the service
    /// (`https://app.example.com`): Stripe sends them back there. Without a Stripe
    /// client (see [`stripe`](Self::stripe)) the buttons answer 503.
    pub fn new(
        processor: BillingProcessor,
        directory: Arc<dyn TenantDirectory>,
        links: BillingLinks,
        public_url: &str,
    ) -> Self {
        Self {
            processor,
            directory,
            links,
            stripe: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
            base: "/billing".into(),
            currency: "$".into(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Creates Checkout and portal sessions through `client`.
    pub fn stripe(mut self, client: Option<StripeClient>) -> Self {
        self.stripe = client;
        self
    }

    /// Where the router is nested (default `/billing`).
    pub fn base_path(mut self, base: &str) -> Self {
        self.base = format!("/{}", base.trim_matches('/'));
        self
    }

    /// The currency sign shown before prices (default `$`).
    pub fn currency_sign(mut self, sign: &str) -> Self {
        self.currency = sign.to_owned();
        self
    }

    /// Uses `clock` for link expiry and days left (a test clock, say).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A fresh link to `tenant`'s page, to send in an email or show in the app.
    pub fn link(&self, tenant: &TenantId) -> String {
        let base = format!("{}{}", self.public_url, self.base);
        self.links.link(&base, tenant, self.clock.now())
    }

    /// Checks a link, then finds its tenant: 403 for a bad or expired link, 404
    /// for a tenant that does not exist.
    async fn open(&self, id: &str, link: &LinkFields) -> Result<Tenant, Response> {
        let tenant_id =
            TenantId::try_from(id).map_err(|_| refused(BillingLinkError::BadSignature))?;
        self.links
            .verify(&tenant_id, link.expires, &link.sig, self.clock.now())
            .map_err(refused)?;
        match self.directory.get(&tenant_id).await {
            Ok(Some(tenant)) => Ok(tenant),
            Ok(None) => Err(error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "This workspace no longer exists.",
            )),
            Err(error) => Err(unavailable(&error)),
        }
    }

    fn page_url(&self, tenant: &TenantId, extra: &str) -> String {
        format!("{}{extra}", self.link(tenant))
    }
}

/// The link's proof, as the query of `GET` and hidden fields of each form.
#[derive(Debug, Deserialize)]
pub struct LinkFields {
    /// When the link expires (Unix seconds).
    pub expires: i64,
    /// The link's signature.
    pub sig: String,
    /// Set by Stripe's return: `success` or `cancelled`.
    #[serde(default)]
    pub checkout: Option<String>,
}

/// The "Choose plan" form.
#[derive(Debug, Deserialize)]
pub struct ChoosePlan {
    /// When the link expires (Unix seconds).
    pub expires: i64,
    /// The link's signature.
    pub sig: String,
    /// The plan's id.
    pub plan: String,
    /// `monthly` or `yearly`.
    pub interval: BillingInterval,
}

/// The tenant's billing routes (see the [module](self) docs).
pub fn billing_pages_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    BillingPages: FromRef<S>,
{
    Router::new()
        .route("/{tenant}", get(billing_page::<S>))
        .route("/{tenant}/checkout", post(checkout::<S>))
        .route("/{tenant}/portal", post(portal::<S>))
}

/// The admin route that hands out links: `GET /{tenant}` → `{"url", "expires_at"}`
/// (404 for an unknown tenant). Mount it behind the host's admin guard.
pub fn billing_link_router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    BillingPages: FromRef<S>,
{
    Router::new().route("/{tenant}", get(billing_link::<S>))
}

/// The answer of [`billing_link_router`].
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct BillingLinkView {
    /// The link to send the tenant.
    pub url: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

async fn billing_link<S>(
    State(state): State<S>,
    Path(id): Path<String>,
) -> Result<axum::Json<BillingLinkView>, ApiError>
where
    BillingPages: FromRef<S>,
{
    let pages = BillingPages::from_ref(&state);
    let tenant = TenantId::try_from(id.as_str()).map_err(ApiError::bad_request)?;
    match pages.directory.get(&tenant).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ApiError::not_found(format!("no tenant `{tenant}`"))),
        Err(error) => return Err(ApiError::internal(error)),
    }
    let now = pages.clock.now();
    let query = pages.links.query(&tenant, now);
    let expires = OffsetDateTime::from_unix_timestamp(query.expires).unwrap_or(now);
    Ok(axum::Json(BillingLinkView {
        url: pages.link(&tenant),
        expires_at: rfc3339(expires),
    }))
}

async fn billing_page<S>(
    State(state): State<S>,
    Path(id): Path<String>,
    query: Result<Query<LinkFields>, axum::extract::rejection::QueryRejection>,
) -> Response
where
    BillingPages: FromRef<S>,
{
    let pages = BillingPages::from_ref(&state);
    let Ok(Query(link)) = query else {
        return refused(BillingLinkError::BadSignature);
    };
    let tenant = match pages.open(&id, &link).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let billing = match pages.processor.state(&tenant.id).await {
        Ok(billing) => billing,
        Err(error) => return unavailable(&error),
    };
    let view = PageView {
        pages: &pages,
        tenant: &tenant,
        billing: billing.as_ref(),
        link: &link,
        now: pages.clock.now(),
    };
    let mut response =
        page(&format!("Billing · {}", tenant.name), None, view.render()).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn checkout<S>(
    State(state): State<S>,
    Path(id): Path<String>,
    Form(form): Form<ChoosePlan>,
) -> Response
where
    BillingPages: FromRef<S>,
{
    let pages = BillingPages::from_ref(&state);
    let link = LinkFields {
        expires: form.expires,
        sig: form.sig.clone(),
        checkout: None,
    };
    let tenant = match pages.open(&id, &link).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Some(plan) = pages
        .processor
        .config()
        .catalog
        .plan(&PlanId::new(form.plan.as_str()))
    else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown plan",
            "That plan is not offered; go back and choose one of the plans shown.",
        );
    };
    let Some(price) = plan.price(form.interval) else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown price",
            "That plan is not sold with this billing interval; go back and choose another.",
        );
    };
    let Some(stripe) = &pages.stripe else {
        return stripe_missing();
    };
    let customer = match pages.processor.state(&tenant.id).await {
        Ok(Some(BillingState {
            customer_id: Some(customer),
            ..
        })) => CheckoutCustomer::Existing(customer),
        Ok(_) => CheckoutCustomer::Email(tenant.admin_email.clone()),
        Err(error) => return unavailable(&error),
    };
    let params = CreateCheckoutSession::new(
        tenant.id.clone(),
        customer,
        price.price_id.as_str(),
        pages.page_url(&tenant.id, "&checkout=success"),
        pages.page_url(&tenant.id, "&checkout=cancelled"),
    );
    match stripe.create_checkout_session(&params).await {
        Ok(session) => match session.url {
            Some(url) => redirect(&url),
            None => stripe_failed(&"Stripe returned a session without a page"),
        },
        Err(error) => stripe_failed(&error),
    }
}

async fn portal<S>(
    State(state): State<S>,
    Path(id): Path<String>,
    Form(link): Form<LinkFields>,
) -> Response
where
    BillingPages: FromRef<S>,
{
    let pages = BillingPages::from_ref(&state);
    let tenant = match pages.open(&id, &link).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Some(stripe) = &pages.stripe else {
        return stripe_missing();
    };
    let customer = match pages.processor.state(&tenant.id).await {
        Ok(Some(BillingState {
            customer_id: Some(customer),
            ..
        })) => customer,
        Ok(_) => {
            return error_page(
                StatusCode::CONFLICT,
                "No payment details yet",
                "Choose a plan first; the billing portal manages a paid subscription.",
            );
        }
        Err(error) => return unavailable(&error),
    };
    let params = CreateBillingPortalSession::new(customer, pages.link(&tenant.id));
    match stripe.create_billing_portal_session(&params).await {
        Ok(session) => redirect(&session.url),
        Err(error) => stripe_failed(&error),
    }
}

/// What the billing page shows, rendered once.
struct PageView<'a> {
    pages: &'a BillingPages,
    tenant: &'a Tenant,
    billing: Option<&'a BillingState>,
    link: &'a LinkFields,
    now: OffsetDateTime,
}

impl PageView<'_> {
    fn render(&self) -> Markup {
        let current = self.billing.and_then(|b| b.plan.as_ref());
        let plans = self.pages.processor.config().catalog.plans();
        html! {
            h1 { "Billing for " (self.tenant.name) }
            @match self.link.checkout.as_deref() {
                Some("success") => (notice("good", "Thank you. Your payment is being confirmed; this page shows the new plan within a minute.")),
                Some("cancelled") => (notice("", "Checkout was cancelled; nothing was charged.")),
                _ => {}
            }
            section aria-labelledby="state" {
                h2 #state { "Your subscription" }
                p #billing-state { (self.state_in_words()) }
                @if self.billing.and_then(|b| b.customer_id.as_ref()).is_some() {
                    form method="post" action=(self.action("portal")) {
                        (self.link_fields())
                        button.secondary type="submit" { "Manage payment methods and invoices" }
                    }
                }
            }
            section aria-labelledby="plans" {
                h2 #plans { "Plans" }
                div.cards {
                    @for plan in plans {
                        @if plan.monthly.is_some() || plan.yearly.is_some() {
                            (self.plan_card(plan, current.map(|c| &c.plan) == Some(&plan.id)))
                        }
                    }
                }
            }
        }
    }

    fn state_in_words(&self) -> String {
        let Some(billing) = self.billing else {
            return "Billing starts when your workspace is ready.".into();
        };
        let plan = billing
            .plan
            .as_ref()
            .and_then(|p| self.pages.processor.config().catalog.plan(&p.plan))
            .map(|p| p.name.as_str());
        match &billing.phase {
            BillingPhase::Trialing { ends_at, .. } => {
                let days = (*ends_at - self.now)
                    .whole_seconds()
                    .max(0)
                    .saturating_add(86_399)
                    / 86_400;
                let unit = if days == 1 { "day" } else { "days" };
                format!("Free trial: {days} {unit} left (ends {}). Choose a plan to keep your modules afterwards.", date(*ends_at))
            }
            BillingPhase::Active => match plan {
                Some(plan) => format!("Active: the {plan} plan."),
                None => "Active.".into(),
            },
            BillingPhase::PastDue { grace_ends_at } => format!(
                "Payment failed. Update your payment method before {} to keep access.",
                date(*grace_ends_at)
            ),
            BillingPhase::Suspended { reason } => format!(
                "Suspended: {}. Your data is kept; choose a plan to restore access.",
                match reason {
                    SuspendReason::TrialExpired => "the trial ended without a plan",
                    SuspendReason::GracePeriodExpired | SuspendReason::Unpaid =>
                        "the payment was not received",
                    SuspendReason::Paused => "the subscription is paused",
                }
            ),
            BillingPhase::Cancelled => {
                "Cancelled: the subscription ended. Choose a plan to start again.".into()
            }
        }
    }

    fn plan_card(&self, plan: &PricingPlan, current: bool) -> Markup {
        html! {
            article.card data-plan=(plan.id) {
                h3 { (plan.name) @if current { " " span.badge.good { "current plan" } } }
                @for (price, interval) in plan.prices() {
                    p { span.price { (self.money(price.amount)) } " " (per(interval)) }
                }
                @if !plan.modules.is_empty() {
                    ul { @for module in &plan.modules { li { (module.as_str()) } } }
                }
                @for (_, interval) in plan.prices() {
                    form method="post" action=(self.action("checkout")) {
                        (self.link_fields())
                        input type="hidden" name="plan" value=(plan.id);
                        input type="hidden" name="interval" value=(interval_name(interval));
                        button type="submit" { "Choose " (plan.name) ", " (interval_name(interval)) }
                    }
                }
            }
        }
    }

    fn link_fields(&self) -> Markup {
        html! {
            input type="hidden" name="expires" value=(self.link.expires);
            input type="hidden" name="sig" value=(self.link.sig);
        }
    }

    fn action(&self, what: &str) -> String {
        format!("{}/{}/{what}", self.pages.base, self.tenant.id)
    }

    fn money(&self, cents: i64) -> String {
        format!(
            "{}{}.{:02}",
            self.pages.currency,
            cents / 100,
            cents.rem_euclid(100)
        )
    }
}

fn per(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Monthly => "per month",
        BillingInterval::Yearly => "per year",
    }
}

fn interval_name(interval: BillingInterval) -> &'static str {
    match interval {
        BillingInterval::Monthly => "monthly",
        BillingInterval::Yearly => "yearly",
    }
}

fn date(at: OffsetDateTime) -> String {
    format!("{} {} {}", at.day(), at.month(), at.year())
}

fn refused(error: BillingLinkError) -> Response {
    error_page(StatusCode::FORBIDDEN, "Link not valid", &error.to_string())
}

fn unavailable(error: &dyn fmt::Display) -> Response {
    tracing::error!(%error, "billing page: a store failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "Billing is unavailable for a moment; try again in a minute.",
    )
}

fn stripe_missing() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Payments unavailable",
        "Payments are not set up on this service yet (no STRIPE_SECRET_KEY); contact support.",
    )
}

fn stripe_failed(error: &dyn fmt::Display) -> Response {
    tracing::warn!(%error, "billing page: Stripe refused or failed");
    error_page(
        StatusCode::BAD_GATEWAY,
        "Payments unavailable",
        "Stripe could not start the payment; try again in a minute.",
    )
}

/// The admin page's "Billing" column: each tenant's phase and plan.
#[derive(Debug, Clone)]
pub struct BillingSection {
    processor: BillingProcessor,
}

impl BillingSection {
    /// The column over `processor`'s state.
    pub fn new(processor: BillingProcessor) -> Self {
        Self { processor }
    }
}

#[async_trait]
impl AdminSection for BillingSection {
    async fn columns(&self, tenants: &[TenantId]) -> Vec<FleetColumn> {
        let mut column = FleetColumn::new("Billing");
        for tenant in tenants {
            let cell = match self.processor.state(tenant).await {
                Ok(Some(state)) => {
                    let kind = match state.phase {
                        BillingPhase::Active | BillingPhase::Trialing { .. } => "good",
                        BillingPhase::PastDue { .. } => "warn",
                        _ => "bad",
                    };
                    let plan = state.plan.as_ref().map(|p| p.plan.to_string());
                    html! {
                        span class={ "badge " (kind) } data-billing=(state.phase.name()) { (state.phase.name().replace('_', " ")) }
                        @if let Some(plan) = plan { " " small { (plan) } }
                    }
                }
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%tenant, %error, "admin page: billing state unreadable");
                    html! { span.badge.bad { "unreadable" } }
                }
            };
            column = column.cell(tenant.clone(), cell);
        }
        vec![column]
    }
}
