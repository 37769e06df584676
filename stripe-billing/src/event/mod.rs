//! Stripe events and the objects they carry, typed from Stripe's own field names.

mod checkout;
mod common;
mod customer;
mod envelope;
mod invoice;
mod subscription;

pub use checkout::{
    CheckoutMode, CheckoutSession, CheckoutSessionStatus, CustomerDetails, PaymentStatus,
};
pub use common::{List, Metadata, Price, PriceInterval, Recurring};
pub use customer::Customer;
pub use envelope::{Event, EventData, EventObject, EventType};
pub use invoice::{
    Invoice, InvoiceParent, InvoiceStatus, InvoiceStatusTransitions, SubscriptionDetails,
};
pub use subscription::{Subscription, SubscriptionItem, SubscriptionStatus};

/// The metadata key that carries the tenant id: the API client sets it on the objects
/// it creates, and an event's tenant is read from it, so later webhook events name the
/// tenant.
pub const TENANT_ID_METADATA_KEY: &str = "tenant_id";

/// The `Stripe-Version` the types of this crate were written for: the version that
/// moved billing periods onto subscription items and an invoice's subscription under
/// `parent`. The API client pins it by default; pin webhook endpoints to the same
/// version so that events and API answers agree.
pub const DEFAULT_STRIPE_VERSION: &str = "2025-03-31.basil";
