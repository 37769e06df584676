//! Wiring the crates into one service: the control plane, the tenant database
//! provider, the migrator, onboarding and billing.

use std::sync::Arc;

use stripe_billing::{BillingProcessor, StripeClient, SubscriptionCancellation};
use tenancy_core::{
    Clock, DatabasePauser, DirectoryExportDestination, DumpExporter, Notifier, Offboarding,
    Onboarding,
};

use crate::config::{Env, SupabaseConfig};
use crate::control_plane::{ControlPlane, ControlPlaneError, TenantDatabases};
use crate::migrations::AppMigrations;
use crate::plans::seed_lifecycle;

/// Why the service could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    /// The control plane could not be opened.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    /// The application's migrations are invalid.
    #[error(transparent)]
    Migrations(#[from] tenant_migrate::CatalogError),
    /// The plan catalog is invalid.
    #[error("plan catalog: {0}; check the STRIPE_PRICE_* variables")]
    Catalog(#[from] stripe_billing::CatalogError),
}

/// The assembled service parts.
#[derive(Clone)]
pub struct Assembly {
    /// The control plane's stores.
    pub plane: ControlPlane,
    /// Where tenant databases come from.
    pub databases: TenantDatabases,
    /// The application's migrations (base plus those added through the admin API).
    pub migrations: AppMigrations,
    /// The onboarding pipeline.
    pub onboarding: Onboarding,
    /// The billing processor (it also keeps verified Stripe events waiting for their
    /// tenant).
    pub billing: BillingProcessor,
    /// The Stripe client, when `STRIPE_SECRET_KEY` is set (Checkout, the portal).
    pub stripe: Option<StripeClient>,
}

impl std::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembly")
            .field("plane", &self.plane)
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

impl Assembly {
    /// Tells `notifier` when a tenant is ready (once `Ready` is saved; again on later
    /// runs until it accepts the notice).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.onboarding = self.onboarding.with_notifier(notifier);
        self
    }

    /// Re-reads subscriptions from Stripe through `client` when their events arrive, so
    /// that a late or out-of-order event is applied with Stripe's current copy.
    pub fn with_stripe(mut self, client: StripeClient) -> Self {
        self.billing = self
            .billing
            .with_subscription_source(Arc::new(client.clone()));
        self.stripe = Some(client);
        self
    }

    /// The offboarding pipeline over these parts: billing ended through the billing
    /// processor (subscriptions cancelled at Stripe when a client is configured, so
    /// call this after [`with_stripe`](Self::with_stripe)), exports with `pg_dump` or
    /// `VACUUM INTO` into `exports`, databases paused by `pauser` for `retention`,
    /// then deleted by the provisioner; a restored tenant is migrated to the
    /// application's current schema before it is ready again.
    pub fn offboarding(
        &self,
        pauser: Arc<dyn DatabasePauser>,
        exports: std::path::PathBuf,
        retention: time::Duration,
        clock: Arc<dyn Clock>,
    ) -> Offboarding {
        let mut billing = SubscriptionCancellation::new(self.billing.clone());
        if let Some(client) = &self.stripe {
            billing = billing.with_stripe(Arc::new(client.clone()));
        }
        Offboarding::new(
            self.plane.directory.clone(),
            self.databases.provisioner.clone(),
            pauser,
            Arc::new(DumpExporter::new()),
            Arc::new(DirectoryExportDestination::new(exports)),
        )
        .with_billing(Arc::new(billing))
        .with_migrator(self.migrations.clone())
        .with_retention(retention)
        .with_clock(clock)
    }

    /// Opens the control plane at `state_url` and wires everything to it.
    pub async fn open(
        state_url: &str,
        supabase: Option<&SupabaseConfig>,
        env: &impl Env,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AssemblyError> {
        let plane = ControlPlane::open(state_url).await?;
        let databases = TenantDatabases::choose(supabase, &plane)?;
        Self::with_databases(plane, databases, env, clock).await
    }

    /// Wires everything to an open control plane and a chosen database provider.
    pub async fn with_databases(
        plane: ControlPlane,
        databases: TenantDatabases,
        env: &impl Env,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AssemblyError> {
        let migrations = crate::migrations::open(&plane).await?;
        // Stripe events for tenants not in this directory (another environment's, when one
        // Stripe account delivers to several) are acknowledged without billing state.
        let billing = BillingProcessor::new(plane.billing.clone(), seed_lifecycle(env)?)
            .with_tenant_directory(plane.directory.clone());
        let onboarding = Onboarding::new(
            plane.directory.clone(),
            databases.provisioner.clone(),
            migrations.clone(),
            databases.admins.clone(),
        )
        .with_billing(Arc::new(billing.clone()))
        .with_clock(clock);
        Ok(Self {
            plane,
            databases,
            migrations,
            onboarding,
            billing,
            stripe: None,
        })
    }
}
