use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tenancy_core::NotificationKind;
use time::OffsetDateTime;

use super::{BillingPhase, SuspendReason};
use crate::{Module, PlanId, SubscriptionStatus};

/// What a tenant's admins should be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BillingNotice {
    /// The trial ends soon.
    TrialEnding {
        /// When it ends.
        #[serde(with = "time::serde::timestamp")]
        ends_at: OffsetDateTime,
    },
    /// A payment failed; access continues until the grace period ends.
    PaymentFailed {
        /// When the grace period ends.
        #[serde(with = "time::serde::timestamp")]
        grace_ends_at: OffsetDateTime,
    },
    /// Access was suspended.
    Suspended {
        /// Why.
        reason: SuspendReason,
    },
    /// The subscription was cancelled.
    Cancelled,
    /// A paid subscription started (after a trial, or again after a cancellation).
    Activated {
        /// The plan, once known.
        plan: Option<PlanId>,
    },
    /// A payment went through after a failure; access is back to normal.
    PaymentRecovered,
}

impl BillingNotice {
    /// The workspace-wide notification kind for this notice, for a [`tenancy_core::Notifier`].
    pub fn notification_kind(&self) -> NotificationKind {
        match self {
            Self::TrialEnding { ends_at } => NotificationKind::TrialEnding { ends_at: *ends_at },
            Self::PaymentFailed { grace_ends_at } => NotificationKind::PaymentFailed {
                grace_ends_at: *grace_ends_at,
            },
            Self::Suspended { .. } => NotificationKind::Suspended,
            Self::Cancelled => NotificationKind::Cancelled,
            Self::Activated { .. } => NotificationKind::Other("subscription_activated".to_owned()),
            Self::PaymentRecovered => NotificationKind::Other("payment_recovered".to_owned()),
        }
    }
}

/// Something the host must do after a transition. Effects are values: the state
/// machine never performs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// Turn these modules on for the tenant.
    EnableModules(BTreeSet<Module>),
    /// Turn these modules off for the tenant (keep its data).
    DisableModules(BTreeSet<Module>),
    /// Tell the tenant's admins.
    Notify(BillingNotice),
    /// Reconciliation found the tenant's state out of line with Stripe's subscription
    /// (webhooks were missed) and moved it through the state machine, from `from` to
    /// `to`; the module and notice effects of the move come with it. Log or audit it:
    /// it means events were lost on the way.
    Reconciled {
        /// The phase before.
        from: BillingPhase,
        /// The phase after.
        to: BillingPhase,
        /// The subscription's status at Stripe.
        stripe_status: SubscriptionStatus,
    },
}
