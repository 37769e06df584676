//! Billing-portal sessions: where a customer manages payment methods and plans.

use serde::Deserialize;
use time::OffsetDateTime;

use super::checkout::check_redirect_url;
use super::error::StripeError;
use super::form::Form;
use super::idempotency::IdempotencyKey;
use super::ids::check_id;
use super::stripe_client::StripeClient;

/// Parameters of [`StripeClient::create_billing_portal_session`].
#[derive(Debug, Clone)]
pub struct CreateBillingPortalSession {
    customer: String,
    return_url: String,
    idempotency_key: Option<IdempotencyKey>,
}

impl CreateBillingPortalSession {
    /// A portal session for `customer` (`cus_…`), returning to `return_url`.
    pub fn new(customer: impl Into<String>, return_url: impl Into<String>) -> Self {
        Self {
            customer: customer.into(),
            return_url: return_url.into(),
            idempotency_key: None,
        }
    }

    /// Uses this key instead of the one derived from the customer and the return URL.
    /// Portal links are short-lived: pass one per click, or an identical request
    /// within 24 h gets the first (possibly expired) session back.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    fn form(&self) -> Result<Form, StripeError> {
        check_id("customer", &self.customer)?;
        check_redirect_url("return_url", &self.return_url)?;
        Ok(Form::new()
            .field("customer", self.customer.as_str())
            .field("return_url", self.return_url.as_str()))
    }
}

/// A billing-portal session (fields of Stripe's `billing_portal.session` object).
/// Send the user to [`url`](Self::url).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillingPortalSession {
    /// `bps_…`
    pub id: String,
    /// The short-lived link to the portal.
    pub url: String,
    /// The customer (`cus_…`).
    pub customer: String,
    /// Where the portal's "return" link goes.
    pub return_url: Option<String>,
    /// The portal configuration (`bpc_…`).
    #[serde(default)]
    pub configuration: Option<String>,
    /// When the session was created.
    #[serde(with = "time::serde::timestamp")]
    pub created: OffsetDateTime,
    /// Whether the session is in live mode.
    pub livemode: bool,
}

impl StripeClient {
    /// Creates a billing-portal session (`POST /v1/billing_portal/sessions`).
    pub async fn create_billing_portal_session(
        &self,
        params: &CreateBillingPortalSession,
    ) -> Result<BillingPortalSession, StripeError> {
        let form = params.form()?;
        let key = IdempotencyKey::or_derive(
            params.idempotency_key.as_ref(),
            "billing_portal.session.create",
            &params.customer,
            &form,
        );
        self.post(
            "/v1/billing_portal/sessions",
            &form,
            &key,
            "billing_portal.session",
        )
        .await
    }
}
