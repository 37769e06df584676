//! A client of Stripe's API for subscriptions: customers, Checkout sessions in
//! subscription mode, subscriptions, billing-portal sessions, and the events list
//! that reconciliation reads back.
//!
//! - Requests are form-encoded in Stripe's bracket syntax, authenticated with the
//!   secret key as a bearer token, and pinned to a `Stripe-Version`.
//! - Every mutating request carries an [`IdempotencyKey`]: the caller's or one derived
//!   from the operation, the tenant and the parameters, identical across retries.
//! - Failed attempts go through the shared [`tenancy_core::RetryPolicy`]:
//!   `Stripe-Should-Retry` decides when present, otherwise 409, 429, 5xx, timeouts and
//!   broken connections are retried, with a `Retry-After` of up to 60 s honoured.
//! - Stripe's error object becomes a typed [`ApiError`].
//!
//! # Example: send a tenant to Checkout
//!
//! ```no_run
//! use std::time::Duration;
//! use stripe_billing::{CheckoutCustomer, CreateCheckoutSession, StripeClient};
//! use tenancy_core::{EmailAddress, RetryPolicy, TenantId};
//!
//! # async fn choose_plan() -> Result<(), Box<dyn std::error::Error>> {
//! let stripe = StripeClient::builder(std::env::var("STRIPE_SECRET_KEY")?)
//!     .timeout(Duration::from_secs(30))
//!     .retry_policy(RetryPolicy::default().with_max_attempts(3))
//!     .build()?;
//!
//! let tenant = TenantId::new("acme-pharmacy")?;
//! let params = CreateCheckoutSession::new(
//!     tenant,
//!     CheckoutCustomer::Email(EmailAddress::new("owner@acme.example")?),
//!     "price_1PgafmB7WZ01zgkW6dKueIc5",
//!     "https://app.example/billing/success?session_id={CHECKOUT_SESSION_ID}",
//!     "https://app.example/billing",
//! )
//! .trial_period_days(14);
//! let checkout = stripe.create_checkout_session(&params).await?;
//! if let Some(url) = &checkout.url {
//!     println!("redirect the user to {url}");
//! }
//! # Ok(()) }
//! ```

mod billing_portal;
mod builder;
mod checkout;
mod customers;
mod error;
mod events;
mod form;
mod idempotency;
mod ids;
mod metadata;
mod response;
mod retry;
mod stripe_client;
mod subscription_source;
mod subscriptions;

pub use billing_portal::{BillingPortalSession, CreateBillingPortalSession};
pub use builder::{StripeClientBuilder, DEFAULT_STRIPE_TIMEOUT, STRIPE_API_BASE_URL};
pub use checkout::{CheckoutCustomer, CheckoutRedirect, CreateCheckoutSession};
pub use customers::CreateCustomer;
pub use error::{ApiError, ApiErrorType, StripeConfigError, StripeError};
pub use idempotency::IdempotencyKey;
pub use stripe_client::StripeClient;
