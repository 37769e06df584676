use crate::{BoxError, TenantId};

/// An error of a [`TenantDirectory`](super::TenantDirectory).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A tenant with this id already exists.
    #[error("tenant `{0}` already exists; choose another id or load the existing tenant")]
    AlreadyExists(TenantId),
    /// No tenant has this id.
    #[error("tenant `{0}` does not exist; check the id or sign the tenant up first")]
    NotFound(TenantId),
    /// The record changed since the caller read it.
    #[error("tenant `{id}` was changed by someone else since revision {revision}; reload it and try again")]
    Conflict {
        /// The tenant.
        id: TenantId,
        /// The revision the caller had.
        revision: u64,
    },
    /// A stored record could not be decoded.
    #[error("stored record of tenant `{id}` is invalid ({reason}); repair the row by hand")]
    Corrupt {
        /// The stored id (as text, since it may itself be the invalid part).
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The storage failed (connection lost, disk full, …).
    #[error(
        "tenant directory storage failed: {0}; check that its database is reachable and writable"
    )]
    Storage(#[source] BoxError),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for DirectoryError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(Box::new(error))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<crate::persistence::SchemaError> for DirectoryError {
    fn from(error: crate::persistence::SchemaError) -> Self {
        Self::Storage(Box::new(error))
    }
}
