//! The seed's plans: Starter $99/month and Professional $299/month, with the modules
//! each enables. Price ids come from the environment (`STRIPE_PRICE_*`), with
//! placeholders that the demo and tests use.

use stripe_billing::{CatalogError, LifecycleConfig, PlanCatalog, PricingPlan};

use crate::config::Env;

/// The modules every tenant has during its trial and on Starter.
pub const STARTER_MODULES: [&str; 3] = ["inventory", "sales", "purchases"];
/// Professional adds these.
pub const PROFESSIONAL_EXTRA_MODULES: [&str; 2] = ["reports", "multi_branch"];

/// The seed's catalog with price ids from `env` (placeholders when unset):
/// `STRIPE_PRICE_STARTER_MONTHLY`, `STRIPE_PRICE_STARTER_YEARLY`,
/// `STRIPE_PRICE_PROFESSIONAL_MONTHLY`, `STRIPE_PRICE_PROFESSIONAL_YEARLY`.
pub fn seed_catalog(env: &impl Env) -> Result<PlanCatalog, CatalogError> {
    let price = |var: &str, fallback: &str| env.var(var).unwrap_or_else(|| fallback.to_owned());
    let professional_modules = STARTER_MODULES
        .iter()
        .chain(PROFESSIONAL_EXTRA_MODULES.iter())
        .copied();
    PlanCatalog::new([
        PricingPlan::new("starter", "Starter")
            .monthly(
                price("STRIPE_PRICE_STARTER_MONTHLY", "price_starter_monthly"),
                9_900,
            )
            .yearly(
                price("STRIPE_PRICE_STARTER_YEARLY", "price_starter_yearly"),
                99_000,
            )
            .modules(STARTER_MODULES),
        PricingPlan::new("professional", "Professional")
            .monthly(
                price(
                    "STRIPE_PRICE_PROFESSIONAL_MONTHLY",
                    "price_professional_monthly",
                ),
                29_900,
            )
            .yearly(
                price(
                    "STRIPE_PRICE_PROFESSIONAL_YEARLY",
                    "price_professional_yearly",
                ),
                299_000,
            )
            .modules(professional_modules),
    ])?
    .with_trial_plan("starter")
}

/// The seed's lifecycle: 14-day trial, notice 3 days before its end, 7-day grace period.
pub fn seed_lifecycle(env: &impl Env) -> Result<LifecycleConfig, CatalogError> {
    Ok(LifecycleConfig::new(seed_catalog(env)?))
}
