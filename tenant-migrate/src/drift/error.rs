use tenancy_core::{BoxError, DirectoryError, TenantId};

/// Why a drift survey, or a rollout's drift check, could not answer or refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriftError {
    /// The fleet (directory or fleet file) could not be listed.
    #[error("could not list the fleet's tenants: {0}; check the tenant directory and retry")]
    Fleet(#[from] DirectoryError),
    /// The named reference tenant is not among the surveyed tenants.
    #[error("the reference tenant `{tenant}` is not in the fleet (or not targeted); name a tenant the fleet lists")]
    UnknownReference {
        /// The tenant named.
        tenant: TenantId,
    },
    /// The named reference tenant could not be read.
    #[error("the reference tenant `{tenant}` could not be read; make its database reachable or name another reference")]
    ReferenceUnreachable {
        /// The tenant named.
        tenant: TenantId,
    },
    /// A rollout that requires a clean fleet found drifted tenants.
    #[error("{} targeted tenants drifted from their version's reference schema: {}; repair them (see `migrate drift`), or leave them out with --exclude-drifted", tenants.len(), list(tenants))]
    Drifted {
        /// The drifted tenants, by id.
        tenants: Vec<TenantId>,
    },
    /// Reading a tenant stopped unexpectedly (its task was cancelled or panicked).
    #[error("reading tenant `{tenant}` stopped unexpectedly: {message}; run the survey again")]
    Interrupted {
        /// The tenant.
        tenant: String,
        /// What the runtime said.
        message: String,
    },
    /// The drift records in the state store could not be read or written.
    #[error("could not read or store drift results: {0}; check the state store and retry")]
    Store(#[source] BoxError),
}

fn list(tenants: &[TenantId]) -> String {
    tenants
        .iter()
        .map(TenantId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
