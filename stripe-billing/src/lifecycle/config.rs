use time::Duration;

use crate::PlanCatalog;

/// What happens when a trial ends without a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrialEndBehaviour {
    /// Suspend the tenant (modules off, data kept) until it pays (the default).
    #[default]
    Suspend,
    /// Cancel the tenant.
    Cancel,
}

/// The durations and plans the lifecycle runs with.
///
/// ```
/// use stripe_billing::{LifecycleConfig, PricingPlan, PlanCatalog};
/// use time::Duration;
///
/// let catalog = PlanCatalog::new([PricingPlan::new("starter", "Starter").monthly("price_s_m", 9_900)])?;
/// let config = LifecycleConfig::new(catalog).grace_period(Duration::days(10));
/// assert_eq!(config.trial_length, Duration::days(14));
/// # Ok::<(), stripe_billing::CatalogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleConfig {
    /// How long a trial lasts (default 14 days).
    pub trial_length: Duration,
    /// How long before the trial ends the tenant is told (default 3 days).
    pub trial_notice: Duration,
    /// How long access continues after a failed payment (default 7 days).
    pub grace_period: Duration,
    /// What happens when a trial ends without a plan.
    pub trial_end: TrialEndBehaviour,
    /// The plans on sale.
    pub catalog: PlanCatalog,
}

impl LifecycleConfig {
    /// The default durations (14-day trial, notice 3 days before its end, 7-day grace) with `catalog`.
    pub fn new(catalog: PlanCatalog) -> Self {
        Self {
            trial_length: Duration::days(14),
            trial_notice: Duration::days(3),
            grace_period: Duration::days(7),
            trial_end: TrialEndBehaviour::Suspend,
            catalog,
        }
    }

    /// Sets the trial length.
    #[must_use]
    pub fn trial_length(mut self, length: Duration) -> Self {
        self.trial_length = length;
        self
    }

    /// Sets how long before the trial's end the tenant is told.
    #[must_use]
    pub fn trial_notice(mut self, notice: Duration) -> Self {
        self.trial_notice = notice;
        self
    }

    /// Sets the grace period after a failed payment.
    #[must_use]
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Sets what happens when a trial ends without a plan.
    #[must_use]
    pub fn on_trial_end(mut self, behaviour: TrialEndBehaviour) -> Self {
        self.trial_end = behaviour;
        self
    }
}
