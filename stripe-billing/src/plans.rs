//! The plan catalog: what a tenant can buy and which modules each plan enables.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A plan's stable id (`starter`, `professional`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanId(String);

impl PlanId {
    /// A plan id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A feature module of the host application that a plan enables (`inventory`, `reports`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Module(String);

impl Module {
    /// A module name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a plan price bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingInterval {
    /// Every month.
    Monthly,
    /// Every year.
    Yearly,
}

/// A Stripe price of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanPrice {
    /// The Stripe price id (`price_…`).
    pub price_id: String,
    /// The amount in cents (the currency's smallest unit).
    pub amount: i64,
}

/// Something a tenant can buy: a name, Stripe prices and the modules it enables.
///
/// ```
/// use stripe_billing::PricingPlan;
///
/// let starter = PricingPlan::new("starter", "Starter")
///     .monthly("price_starter_monthly", 9_900)
///     .yearly("price_starter_yearly", 99_000)
///     .modules(["inventory", "sales"]);
/// assert_eq!(starter.monthly.as_ref().map(|p| p.amount), Some(9_900));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PricingPlan {
    /// The plan's id.
    pub id: PlanId,
    /// The display name.
    pub name: String,
    /// The monthly price, if sold monthly.
    pub monthly: Option<PlanPrice>,
    /// The yearly price, if sold yearly.
    pub yearly: Option<PlanPrice>,
    /// The modules the plan enables.
    pub modules: BTreeSet<Module>,
}

impl PricingPlan {
    /// A plan with no prices and no modules yet.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: PlanId::new(id),
            name: name.into(),
            monthly: None,
            yearly: None,
            modules: BTreeSet::new(),
        }
    }

    /// Sets the monthly Stripe price and its amount in cents.
    #[must_use]
    pub fn monthly(mut self, price_id: impl Into<String>, amount: i64) -> Self {
        self.monthly = Some(PlanPrice {
            price_id: price_id.into(),
            amount,
        });
        self
    }

    /// Sets the yearly Stripe price and its amount in cents.
    #[must_use]
    pub fn yearly(mut self, price_id: impl Into<String>, amount: i64) -> Self {
        self.yearly = Some(PlanPrice {
            price_id: price_id.into(),
            amount,
        });
        self
    }

    /// Adds modules the plan enables.
    #[must_use]
    pub fn modules<M: Into<String>>(mut self, modules: impl IntoIterator<Item = M>) -> Self {
        self.modules
            .extend(modules.into_iter().map(|m| Module::new(m)));
        self
    }

    /// The price for `interval`, if the plan is sold that way.
    pub fn price(&self, interval: BillingInterval) -> Option<&PlanPrice> {
        match interval {
            BillingInterval::Monthly => self.monthly.as_ref(),
            BillingInterval::Yearly => self.yearly.as_ref(),
        }
    }

    /// The plan's prices with their intervals, monthly first.
    pub fn prices(&self) -> impl Iterator<Item = (&PlanPrice, BillingInterval)> {
        let monthly = self.monthly.iter().map(|p| (p, BillingInterval::Monthly));
        monthly.chain(self.yearly.iter().map(|p| (p, BillingInterval::Yearly)))
    }
}

/// The plan a tenant is on, and how it pays.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanSelection {
    /// The plan.
    pub plan: PlanId,
    /// How often it is billed.
    pub interval: BillingInterval,
}

/// Why a [`PlanCatalog`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The catalog has no plan.
    #[error("the plan catalog is empty; add at least the plan trials get")]
    Empty,
    /// Two plans share an id.
    #[error("plan id `{0}` appears twice in the catalog; give each plan its own id")]
    DuplicatePlan(PlanId),
    /// Two prices share a Stripe price id, so a price would not name one plan.
    #[error("Stripe price `{0}` is used by two plans or intervals; give each its own price")]
    DuplicatePrice(String),
    /// The trial plan is not in the catalog.
    #[error("trial plan `{0}` is not in the catalog; name one of the catalog's plans")]
    UnknownTrialPlan(PlanId),
}

/// The plans on sale, the plan trials get, and price id → plan resolution.
///
/// ```
/// use stripe_billing::{BillingInterval, PricingPlan, PlanCatalog};
///
/// let catalog = PlanCatalog::new([
///     PricingPlan::new("starter", "Starter").monthly("price_s_m", 9_900).yearly("price_s_y", 99_000).modules(["sales"]),
///     PricingPlan::new("professional", "Professional").monthly("price_p_m", 29_900).modules(["sales", "reports"]),
/// ])?;
/// let selection = catalog.resolve_price("price_p_m").unwrap();
/// assert_eq!(selection.plan.as_str(), "professional");
/// assert_eq!(selection.interval, BillingInterval::Monthly);
/// assert_eq!(catalog.trial_plan().id.as_str(), "starter");
/// # Ok::<(), stripe_billing::CatalogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCatalog {
    plans: Vec<PricingPlan>,
    trial_plan: usize,
}

impl PlanCatalog {
    /// A catalog of `plans`; trials get the first plan's modules.
    pub fn new(plans: impl IntoIterator<Item = PricingPlan>) -> Result<Self, CatalogError> {
        let plans: Vec<PricingPlan> = plans.into_iter().collect();
        if plans.is_empty() {
            return Err(CatalogError::Empty);
        }
        let mut ids = BTreeSet::new();
        let mut prices = BTreeSet::new();
        for plan in &plans {
            if !ids.insert(&plan.id) {
                return Err(CatalogError::DuplicatePlan(plan.id.clone()));
            }
            for (price, _) in plan.prices() {
                if !prices.insert(&price.price_id) {
                    return Err(CatalogError::DuplicatePrice(price.price_id.clone()));
                }
            }
        }
        Ok(Self {
            plans,
            trial_plan: 0,
        })
    }

    /// Makes trials get `plan`'s modules instead of the first plan's.
    pub fn with_trial_plan(mut self, plan: &str) -> Result<Self, CatalogError> {
        self.trial_plan = self
            .plans
            .iter()
            .position(|p| p.id.as_str() == plan)
            .ok_or_else(|| CatalogError::UnknownTrialPlan(PlanId::new(plan)))?;
        Ok(self)
    }

    /// The plans, in the order given.
    pub fn plans(&self) -> &[PricingPlan] {
        &self.plans
    }

    /// The plan whose modules a trial enables.
    pub fn trial_plan(&self) -> &PricingPlan {
        // `new` refuses an empty catalog and `with_trial_plan` keeps the index in bounds.
        &self.plans[self.trial_plan]
    }

    /// The plan with id `id`.
    pub fn plan(&self, id: &PlanId) -> Option<&PricingPlan> {
        self.plans.iter().find(|p| &p.id == id)
    }

    /// The plan and interval a Stripe price id stands for.
    pub fn resolve_price(&self, price_id: &str) -> Option<PlanSelection> {
        self.plans.iter().find_map(|plan| {
            plan.prices()
                .find(|(price, _)| price.price_id == price_id)
                .map(|(_, interval)| PlanSelection {
                    plan: plan.id.clone(),
                    interval,
                })
        })
    }

    /// The first of `price_ids` that names a plan (a subscription's items).
    pub fn resolve_any<'a>(
        &self,
        price_ids: impl IntoIterator<Item = &'a str>,
    ) -> Option<PlanSelection> {
        price_ids.into_iter().find_map(|id| self.resolve_price(id))
    }

    /// The modules `selection` enables; the trial plan's when there is no selection
    /// or it names a plan no longer in the catalog.
    pub fn modules_for(&self, selection: Option<&PlanSelection>) -> &BTreeSet<Module> {
        selection
            .and_then(|s| self.plan(&s.plan))
            .map_or(&self.trial_plan().modules, |plan| &plan.modules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> PlanCatalog {
        PlanCatalog::new([
            PricingPlan::new("starter", "Starter")
                .monthly("price_s_m", 9_900)
                .yearly("price_s_y", 99_000)
                .modules(["a"]),
            PricingPlan::new("professional", "Professional")
                .monthly("price_p_m", 29_900)
                .modules(["a", "b"]),
        ])
        .unwrap()
    }

    #[test]
    fn resolves_monthly_and_yearly_prices() {
        let catalog = catalog();
        let yearly = catalog.resolve_price("price_s_y").unwrap();
        assert_eq!(
            (yearly.plan.as_str(), yearly.interval),
            ("starter", BillingInterval::Yearly)
        );
        assert_eq!(catalog.resolve_price("price_unknown"), None);
        let any = catalog.resolve_any(["price_other", "price_p_m"]).unwrap();
        assert_eq!(any.plan.as_str(), "professional");
    }

    #[test]
    fn modules_fall_back_to_the_trial_plan() {
        let catalog = catalog().with_trial_plan("professional").unwrap();
        assert_eq!(catalog.modules_for(None).len(), 2);
        let starter = catalog.resolve_price("price_s_m").unwrap();
        assert_eq!(catalog.modules_for(Some(&starter)).len(), 1);
    }

    #[test]
    fn refuses_inconsistent_catalogs() {
        assert_eq!(PlanCatalog::new([]), Err(CatalogError::Empty));
        let dup = PlanCatalog::new([PricingPlan::new("a", "A"), PricingPlan::new("a", "B")]);
        assert_eq!(dup, Err(CatalogError::DuplicatePlan(PlanId::new("a"))));
        let dup_price = PlanCatalog::new([
            PricingPlan::new("a", "A").monthly("p", 1),
            PricingPlan::new("b", "B").yearly("p", 2),
        ]);
        assert_eq!(dup_price, Err(CatalogError::DuplicatePrice("p".into())));
        assert_eq!(
            catalog().with_trial_plan("gold"),
            Err(CatalogError::UnknownTrialPlan(PlanId::new("gold")))
        );
    }
}
