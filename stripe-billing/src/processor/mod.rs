//! Processing verified events: tenant resolution, idempotency, order safety, stores.

mod billing_processor;
mod memory;
mod parking;
#[cfg(feature = "postgres")]
mod postgres;
mod source;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_store;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod tenant_lookup;

pub(crate) use billing_processor::state_update;
pub use billing_processor::{
    BillingProcessor, ProcessError, ProcessOutcome, TickOutcome, TickReport,
};
pub use memory::MemoryBillingStore;
pub use parking::{ReplayReport, PARKING_LIMIT};
#[cfg(feature = "postgres")]
pub use postgres::PostgresBillingStore;
pub use source::SubscriptionSource;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql_store::{BillingEngine, SqlBillingStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBillingStore;
pub use store::{
    BillingStore, ParkedEvent, PendingEffect, ReconcileCursor, StateChange, StateUpdate,
    StoreError, Transacted,
};
pub(crate) use tenant_lookup::DirectoryTenantLookup;
pub use tenant_lookup::TenantLookup;
