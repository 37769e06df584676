use time::OffsetDateTime;

use super::OffboardingStep;
use crate::{BackendError, DirectoryError, TenantId};

/// Why offboarding or a restore stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffboardingError {
    /// A step failed; it is recorded on the tenant, and running offboarding again
    /// resumes there.
    #[error("offboarding of tenant `{tenant}` failed at step {step}: {source}; fix the cause and run offboarding again, it resumes at this step")]
    Step {
        /// The tenant.
        tenant: TenantId,
        /// The step that failed.
        step: OffboardingStep,
        /// The implementation's error.
        #[source]
        source: BackendError,
    },
    /// Resuming the tenant's database failed; the tenant is still retained.
    #[error("could not resume the database of tenant `{tenant}`: {source}; the tenant is still retained, try the restore again")]
    Resume {
        /// The tenant.
        tenant: TenantId,
        /// The implementation's error.
        #[source]
        source: BackendError,
    },
    /// Bringing a restored tenant's schema up to date failed: its record is unchanged
    /// (still offboarding or retained), and a database that had been paused was
    /// paused again (`paused_again`: `None` when it had not been paused yet).
    #[error("tenant `{tenant}` was not restored: its schema could not be brought up to date: {source}; it is still {state}{}; fix the migration and restore it again", match paused_again { Some(true) => " and its database paused again", Some(false) => ", but pausing its database again failed too (it accepts connections until the retention ends or it is restored)", None => "" })]
    Migrate {
        /// The tenant.
        tenant: TenantId,
        /// Its state, unchanged: `offboarding` or `retained`.
        state: &'static str,
        /// Whether its database was paused again; `None` when it had not been
        /// paused before the restore (offboarding had not reached that step).
        paused_again: Option<bool>,
        /// The migrator's error.
        #[source]
        source: BackendError,
    },
    /// The tenant was deleted: only its export remains.
    #[error(
        "tenant `{tenant}` was deleted at {at}; it cannot be restored, only its export remains"
    )]
    Deleted {
        /// The tenant.
        tenant: TenantId,
        /// When it was deleted.
        at: OffsetDateTime,
    },
    /// The tenant's retention is over and its database is being deleted.
    #[error("tenant `{0}` is past its retention and its database is being deleted; it can no longer be restored")]
    Deleting(TenantId),
    /// The tenant is not being offboarded, so there is nothing to restore.
    #[error(
        "tenant `{tenant}` is {state}, not offboarding or retained; there is nothing to restore"
    )]
    NotOffboarding {
        /// The tenant.
        tenant: TenantId,
        /// Its state's name.
        state: &'static str,
    },
    /// Another process is offboarding this tenant: it claimed the step first. Nothing
    /// was done here; that process carries on.
    #[error("another process is offboarding tenant `{tenant}` (it is running step {step}); nothing to do here. If no other process is, it was interrupted: run offboarding again once the claim timeout has passed")]
    Busy {
        /// The tenant.
        tenant: TenantId,
        /// The step the other process is running.
        step: OffboardingStep,
    },
    /// Reading or writing the tenant record failed (or the tenant does not exist:
    /// [`DirectoryError::NotFound`]).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl OffboardingError {
    /// Whether running again may succeed without anyone fixing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Step { source, .. }
            | Self::Resume { source, .. }
            | Self::Migrate { source, .. } => source.is_retryable(),
            Self::Directory(DirectoryError::Conflict { .. } | DirectoryError::Storage(_)) => true,
            _ => false,
        }
    }
}
