//! Checkout sessions in subscription mode: the "Choose plan" page.

use std::collections::BTreeMap;

use tenancy_core::{EmailAddress, TenantId};
use url::Url;

use super::error::StripeError;
use super::form::{Form, FormValue};
use super::idempotency::IdempotencyKey;
use super::ids::check_id;
use super::metadata::with_tenant;
use super::stripe_client::StripeClient;
use crate::CheckoutSession;

/// The longest trial Stripe accepts, in days.
const MAX_TRIAL_DAYS: u32 = 730;

/// Who pays in a Checkout session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckoutCustomer {
    /// An existing Stripe customer (`cus_…`), sent as `customer`.
    Existing(String),
    /// A new customer with this email, sent as `customer_email`; Stripe creates the
    /// customer when the session completes.
    Email(EmailAddress),
}

/// Parameters of [`StripeClient::create_checkout_session`]: a subscription to one
/// price for one tenant.
///
/// The tenant id is sent as `client_reference_id`, as `metadata[tenant_id]` and as
/// `subscription_data[metadata][tenant_id]`, so `checkout.session.completed` and every
/// later `customer.subscription.*` event name the tenant.
#[derive(Debug, Clone)]
pub struct CreateCheckoutSession {
    tenant_id: TenantId,
    customer: CheckoutCustomer,
    price: String,
    quantity: u32,
    success_url: String,
    cancel_url: String,
    trial_period_days: Option<u32>,
    metadata: BTreeMap<String, String>,
    idempotency_key: Option<IdempotencyKey>,
}

impl CreateCheckoutSession {
    /// A session for `tenant_id` to subscribe to `price` (`price_…`), quantity 1.
    /// Stripe sends the user to `success_url` after paying (it may contain
    /// `{CHECKOUT_SESSION_ID}`) and to `cancel_url` when they go back.
    pub fn new(
        tenant_id: TenantId,
        customer: CheckoutCustomer,
        price: impl Into<String>,
        success_url: impl Into<String>,
        cancel_url: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id,
            customer,
            price: price.into(),
            quantity: 1,
            success_url: success_url.into(),
            cancel_url: cancel_url.into(),
            trial_period_days: None,
            metadata: BTreeMap::new(),
            idempotency_key: None,
        }
    }

    /// Sets the quantity (at least 1).
    pub fn quantity(mut self, quantity: u32) -> Self {
        self.quantity = quantity;
        self
    }

    /// Starts the subscription with a free trial (1 to 730 days).
    pub fn trial_period_days(mut self, days: u32) -> Self {
        self.trial_period_days = Some(days);
        self
    }

    /// Adds a metadata entry, on the session and on the subscription, besides `tenant_id`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Uses this key instead of the one derived from the tenant and the parameters
    /// (pass one per click when the same tenant may start Checkout again within 24 h).
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn form(&self) -> Result<Form, StripeError> {
        self.check()?;
        let metadata = FormValue::from(&with_tenant(&self.tenant_id, &self.metadata)?);
        let line_item = FormValue::Map(vec![
            ("price".into(), self.price.as_str().into()),
            ("quantity".into(), self.quantity.into()),
        ]);
        let mut subscription_data = vec![("metadata".to_owned(), metadata.clone())];
        if let Some(days) = self.trial_period_days {
            subscription_data.push(("trial_period_days".to_owned(), days.into()));
        }
        let form = Form::new()
            .field("mode", "subscription")
            .field("line_items", FormValue::List(vec![line_item]));
        let form = match &self.customer {
            CheckoutCustomer::Existing(id) => form.field("customer", id.as_str()),
            CheckoutCustomer::Email(email) => form.field("customer_email", email.as_str()),
        };
        Ok(form
            .field("client_reference_id", self.tenant_id.as_str())
            .field("success_url", self.success_url.as_str())
            .field("cancel_url", self.cancel_url.as_str())
            .field("metadata", metadata)
            .field("subscription_data", FormValue::Map(subscription_data)))
    }

    fn check(&self) -> Result<(), StripeError> {
        if self.price.trim().is_empty() {
            return Err(StripeError::invalid(
                "price",
                "the price id is empty; pass a price_… id",
            ));
        }
        if self.quantity == 0 {
            return Err(StripeError::invalid(
                "quantity",
                "the quantity must be at least 1",
            ));
        }
        if let CheckoutCustomer::Existing(id) = &self.customer {
            check_id("customer", id)?;
        }
        if let Some(days) = self.trial_period_days {
            if !(1..=MAX_TRIAL_DAYS).contains(&days) {
                return Err(StripeError::invalid(
                    "subscription_data[trial_period_days]",
                    format!("{days} is outside 1 to 730 days; leave the trial out for none"),
                ));
            }
        }
        check_redirect_url("success_url", &self.success_url)?;
        check_redirect_url("cancel_url", &self.cancel_url)
    }
}

/// An absolute http(s) URL, as Stripe requires for redirects.
pub(crate) fn check_redirect_url(param: &'static str, url: &str) -> Result<(), StripeError> {
    match Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(StripeError::invalid(
            param,
            format!("{url:?} is not an absolute http(s) url; pass the full url of your page"),
        )),
    }
}

/// The former name of the answer of [`StripeClient::create_checkout_session`], now
/// the one [`CheckoutSession`] type shared with webhook events; kept so existing code
/// compiles. Its `url` is the Checkout page to send the user to.
pub type CheckoutRedirect = CheckoutSession;

impl StripeClient {
    /// Creates a Checkout session in subscription mode (`POST /v1/checkout/sessions`).
    /// Without an explicit key, the idempotency key is derived from the tenant and the
    /// parameters. Send the user to the session's [`url`](CheckoutSession::url).
    pub async fn create_checkout_session(
        &self,
        params: &CreateCheckoutSession,
    ) -> Result<CheckoutSession, StripeError> {
        let form = params.form()?;
        let key = IdempotencyKey::or_derive(
            params.idempotency_key.as_ref(),
            "checkout.session.create",
            params.tenant_id.as_str(),
            &form,
        );
        self.post("/v1/checkout/sessions", &form, &key, "checkout.session")
            .await
    }
}
