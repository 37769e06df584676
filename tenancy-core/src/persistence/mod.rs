//! One persistence policy for every store of tenancy-kit: how a pool is opened, how
//! a store's tables are created and upgraded, and how advisory locks are keyed.
//!
//! A host usually opens one pool for its control plane with [`StorePoolOptions`] and
//! hands it to each store's `from_pool`; each store then brings its own tables up to
//! date through its [`StoreSchema`], a numbered list of [`SchemaStep`]s whose applied
//! count is kept per store in `tenancy_schema_versions`. Upgrades run in one
//! transaction, one process at a time (an advisory lock keyed by [`advisory_key`] on
//! PostgreSQL, SQLite's write lock on SQLite), so that several processes starting at
//! once on an old database apply each step exactly once, and a column added in a
//! later release reaches databases created before it.
//!
//! ```no_run
//! use tenancy_core::persistence::StorePoolOptions;
//! use tenancy_core::SqliteTenantDirectory;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The control plane may be created here; a tenant database never is.
//! let pool = StorePoolOptions::new().create_if_missing(true).open_sqlite("sqlite:control.db").await?;
//! let directory = SqliteTenantDirectory::from_pool(pool.clone()).await?;
//! # Ok(()) }
//! ```

mod lock;
mod pool;
mod schema;

pub use lock::advisory_key;
pub use pool::{StorePool, StorePoolOptions};
pub use schema::{SchemaError, SchemaStep, SchemaUpgrade, StoreSchema};
