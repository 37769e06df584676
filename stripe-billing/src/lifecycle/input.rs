use time::OffsetDateTime;

use crate::{
    CheckoutMode, Event, EventObject, EventType, Invoice, PaymentStatus, Subscription,
    SubscriptionStatus,
};

/// What a subscription event says about the subscription, reduced to what the lifecycle uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionSnapshot {
    /// The subscription id.
    pub id: String,
    /// The customer id.
    pub customer_id: String,
    /// The status.
    pub status: SubscriptionStatus,
    /// The price ids of its items.
    pub price_ids: Vec<String>,
    /// When its trial ends, if it has one.
    pub trial_end: Option<OffsetDateTime>,
}

impl From<&Subscription> for SubscriptionSnapshot {
    fn from(subscription: &Subscription) -> Self {
        Self {
            id: subscription.id.clone(),
            customer_id: subscription.customer.clone(),
            status: subscription.status.clone(),
            price_ids: subscription.price_ids().map(str::to_owned).collect(),
            trial_end: subscription.trial_end,
        }
    }
}

/// What happened, as far as the lifecycle is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillingEventKind {
    /// A subscription-mode Checkout session completed.
    CheckoutCompleted {
        /// The customer it made or used.
        customer_id: Option<String>,
        /// The subscription it started.
        subscription_id: Option<String>,
        /// Whether it was paid (rather than a trial with nothing to pay yet).
        paid: bool,
    },
    /// A subscription was created or changed.
    SubscriptionChanged(SubscriptionSnapshot),
    /// A subscription ended.
    SubscriptionDeleted(SubscriptionSnapshot),
    /// Stripe says a trial ends in three days.
    TrialWillEnd(SubscriptionSnapshot),
    /// An invoice of a subscription was paid.
    PaymentSucceeded {
        /// The subscription it bills.
        subscription_id: String,
        /// The customer.
        customer_id: Option<String>,
        /// The amount paid in cents (zero for a trial's first invoice).
        amount_paid: i64,
    },
    /// A payment of a subscription invoice failed.
    PaymentFailed {
        /// The subscription it bills.
        subscription_id: String,
        /// The customer.
        customer_id: Option<String>,
    },
    /// The host ended the tenant's billing (the tenant is offboarded) while it had
    /// no subscription at Stripe, a trial say. With a subscription, the host cancels
    /// it at Stripe and applies [`SubscriptionDeleted`](Self::SubscriptionDeleted)
    /// with Stripe's answer instead.
    Closed,
}

/// An event as the lifecycle sees it: what happened and when (`event.created`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillingEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: BillingEventKind,
}

impl BillingEvent {
    /// An event at `at`.
    pub fn new(at: OffsetDateTime, kind: BillingEventKind) -> Self {
        Self { at, kind }
    }

    /// Reduces a Stripe event; `None` for events that do not concern a subscription's
    /// lifecycle (other types, Checkout in payment mode, invoices without a subscription).
    pub fn from_event(event: &Event) -> Option<Self> {
        let kind = match (&event.event_type, &event.data.object) {
            (EventType::CheckoutSessionCompleted, EventObject::CheckoutSession(session))
                if session.mode == CheckoutMode::Subscription =>
            {
                BillingEventKind::CheckoutCompleted {
                    customer_id: session.customer.clone(),
                    subscription_id: session.subscription.clone(),
                    paid: session.payment_status == PaymentStatus::Paid,
                }
            }
            (
                EventType::CustomerSubscriptionCreated | EventType::CustomerSubscriptionUpdated,
                EventObject::Subscription(s),
            ) => BillingEventKind::SubscriptionChanged(s.as_ref().into()),
            (EventType::CustomerSubscriptionDeleted, EventObject::Subscription(s)) => {
                BillingEventKind::SubscriptionDeleted(s.as_ref().into())
            }
            (EventType::CustomerSubscriptionTrialWillEnd, EventObject::Subscription(s)) => {
                BillingEventKind::TrialWillEnd(s.as_ref().into())
            }
            (
                EventType::InvoicePaid | EventType::InvoicePaymentSucceeded,
                EventObject::Invoice(invoice),
            ) => payment_succeeded(invoice)?,
            (EventType::InvoicePaymentFailed, EventObject::Invoice(invoice)) => {
                BillingEventKind::PaymentFailed {
                    subscription_id: invoice.subscription_id()?.to_owned(),
                    customer_id: invoice.customer.clone(),
                }
            }
            _ => return None,
        };
        Some(Self::new(event.created, kind))
    }
}

fn payment_succeeded(invoice: &Invoice) -> Option<BillingEventKind> {
    Some(BillingEventKind::PaymentSucceeded {
        subscription_id: invoice.subscription_id()?.to_owned(),
        customer_id: invoice.customer.clone(),
        amount_paid: invoice.amount_paid,
    })
}

/// An input of the state machine: an event, or the clock reaching `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleInput {
    /// Something happened in Stripe.
    Event(BillingEvent),
    /// The clock reached this time.
    Tick(OffsetDateTime),
}
