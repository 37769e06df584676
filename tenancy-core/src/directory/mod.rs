//! Where tenant records live: the [`TenantDirectory`] trait and its stores.

mod codec;
mod error;
mod filter;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use error::DirectoryError;
pub use filter::TenantFilter;
pub use memory::MemoryTenantDirectory;
#[cfg(feature = "postgres")]
pub use postgres::PostgresTenantDirectory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{DirectoryEngine, SqlTenantDirectory};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteTenantDirectory;

use async_trait::async_trait;

use crate::{Tenant, TenantId};

/// The store of tenant records.
///
/// Updates are optimistic: [`update`](TenantDirectory::update) succeeds only when the
/// stored record still has the caller's `revision`, and returns the record with the
/// new revision. Two processes that change the same tenant cannot silently overwrite
/// each other; the second gets [`DirectoryError::Conflict`].
#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// Stores a new tenant; fails with [`DirectoryError::AlreadyExists`] when the id is taken.
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError>;

    /// The tenant with this id, if any.
    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError>;

    /// Replaces the stored record if its revision is still `tenant.revision`;
    /// returns the stored record (revision incremented).
    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError>;

    /// Tenants matching `filter`, ordered by id. Use [`TenantFilter::after`] and
    /// [`TenantFilter::limit`] to page through a large fleet.
    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError>;
}
