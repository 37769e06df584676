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
