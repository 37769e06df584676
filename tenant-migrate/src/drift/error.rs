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

/// Tenants named in a message: the first [`NAMED`], then how many more.
const NAMED: usize = 20;

fn list(tenants: &[TenantId]) -> String {
    let named: Vec<&str> = tenants.iter().take(NAMED).map(TenantId::as_str).collect();
    match tenants.len().saturating_sub(NAMED) {
        0 => named.join(", "),
        more => format!("{} and {more} more", named.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_of_drifted_tenants_is_cut_short() {
        let tenants: Vec<TenantId> = (0..1000)
            .map(|i| TenantId::try_from(format!("t{i:04}")).unwrap())
            .collect();
        let message = DriftError::Drifted { tenants }.to_string();
        assert!(
            message.starts_with("1000 targeted tenants drifted"),
            "{message}"
        );
        assert!(message.contains("t0019 and 980 more"), "{message}");
        assert!(!message.contains("t0020"), "{message}");
    }
}
