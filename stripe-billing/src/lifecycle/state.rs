use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Effect, LifecycleConfig};
use crate::{Module, PlanSelection};

/// Why a tenant is suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SuspendReason {
    /// The trial ended without a plan.
    TrialExpired,
    /// The grace period after a failed payment ended without a payment.
    GracePeriodExpired,
    /// Stripe gave up collecting (`unpaid`).
    Unpaid,
    /// Stripe paused the subscription.
    Paused,
}

/// Where a tenant is in the billing lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BillingPhase {
    /// In the free trial.
    Trialing {
        /// When the trial ends.
        #[serde(with = "time::serde::timestamp")]
        ends_at: OffsetDateTime,
        /// Whether the "trial ending" notice went out.
        notified: bool,
    },
    /// Paid and in good standing.
    Active,
    /// A payment failed; access continues until the grace period ends.
    PastDue {
        /// When the grace period ends.
        #[serde(with = "time::serde::timestamp")]
        grace_ends_at: OffsetDateTime,
    },
    /// Access suspended (modules off, data kept) until a payment.
    Suspended {
        /// Why.
        reason: SuspendReason,
    },
    /// The subscription ended.
    Cancelled,
}

impl BillingPhase {
    /// The phase's name (`trialing`, `active`, `past_due`, `suspended`, `cancelled`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Trialing { .. } => "trialing",
            Self::Active => "active",
            Self::PastDue { .. } => "past_due",
            Self::Suspended { .. } => "suspended",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the tenant has access to its plan's modules in this phase.
    pub fn has_access(&self) -> bool {
        matches!(
            self,
            Self::Trialing { .. } | Self::Active | Self::PastDue { .. }
        )
    }
}

/// A tenant's billing state: the lifecycle phase, the plan, the Stripe ids, and the
/// event times that make processing order-safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BillingState {
    /// The lifecycle phase.
    pub phase: BillingPhase,
    /// The plan, once a price resolved to one.
    pub plan: Option<PlanSelection>,
    /// The Stripe customer id (`cus_…`), once known.
    pub customer_id: Option<String>,
    /// The current Stripe subscription id (`sub_…`), once known.
    pub subscription_id: Option<String>,
    /// The `created` time of the latest event that set the phase; older events leave the phase alone.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub phase_as_of: Option<OffsetDateTime>,
    /// The `created` time of the latest subscription snapshot applied; older snapshots are ignored.
    #[serde(default, with = "time::serde::timestamp::option")]
    pub subscription_as_of: Option<OffsetDateTime>,
}

impl BillingState {
    /// A trial that starts at `now`, and the effects of starting it (the trial plan's modules).
    pub fn start_trial(now: OffsetDateTime, config: &LifecycleConfig) -> (Self, Vec<Effect>) {
        let state = Self {
            phase: BillingPhase::Trialing {
                ends_at: now.saturating_add(config.trial_length),
                notified: false,
            },
            plan: None,
            customer_id: None,
            subscription_id: None,
            phase_as_of: None,
            subscription_as_of: None,
        };
        let modules = state.enabled_modules(config);
        (state, vec![Effect::EnableModules(modules)])
    }

    /// The modules the tenant should have on now.
    pub fn enabled_modules(&self, config: &LifecycleConfig) -> BTreeSet<Module> {
        if self.phase.has_access() {
            config.catalog.modules_for(self.plan.as_ref()).clone()
        } else {
            BTreeSet::new()
        }
    }

    /// The next time a clock tick can change this state (a trial notice, a trial end, a grace end).
    pub fn next_deadline(&self, config: &LifecycleConfig) -> Option<OffsetDateTime> {
        match &self.phase {
            BillingPhase::Trialing {
                ends_at,
                notified: false,
            } => Some(ends_at.saturating_sub(config.trial_notice)),
            BillingPhase::Trialing {
                ends_at,
                notified: true,
            } if self.plan.is_none() => Some(*ends_at),
            BillingPhase::PastDue { grace_ends_at } => Some(*grace_ends_at),
            _ => None,
        }
    }
}
