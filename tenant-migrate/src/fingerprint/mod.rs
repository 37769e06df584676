//! Schema fingerprints: a canonical, order-independent description of the objects
//! in a tenant's migrated schemas, read from the catalog in one round trip, and
//! the difference between two of them.
//!
//! ```no_run
//! use tenancy_core::{DatabaseTarget, DatabaseUrl};
//! use tenant_migrate::fingerprint::{read_schema, SchemaScope};
//! use tenant_migrate::MigrateOptions;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let scope = SchemaScope::default(); // `public`, without `_sqlx_migrations`
//! let options = MigrateOptions::default();
//! let acme = DatabaseTarget::new(DatabaseUrl::parse("postgres://app@db/acme")?);
//! let globex = DatabaseTarget::new(DatabaseUrl::parse("postgres://app@db/globex")?);
//! let a = read_schema(&acme, &scope, &options).await?;
//! let b = read_schema(&globex, &scope, &options).await?;
//! if a.fingerprint() != b.fingerprint() {
//!     for difference in b.diff(&a) {
//!         println!("globex: {difference}"); // e.g. "column public.items.note added: text"
//!     }
//! }
//! # Ok(()) }
//! ```

mod diff;
#[cfg(feature = "postgres")]
mod postgres;
mod snapshot;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use diff::SchemaDifference;
pub use snapshot::{ObjectKind, SchemaFingerprint, SchemaObject, SchemaSnapshot};

use std::collections::BTreeSet;

use tenancy_core::DatabaseTarget;

use crate::connection::TenantConnection;
use crate::{MigrateError, MigrateOptions};

/// Which objects a fingerprint covers: the objects of these schemas (PostgreSQL;
/// SQLite has one), except these tables and what hangs off them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaScope {
    schemas: BTreeSet<String>,
    ignored_tables: BTreeSet<String>,
}

impl Default for SchemaScope {
    /// Schema `public`, without the migration history table `_sqlx_migrations`.
    fn default() -> Self {
        Self {
            schemas: BTreeSet::from(["public".to_owned()]),
            ignored_tables: BTreeSet::from(["_sqlx_migrations".to_owned()]),
        }
    }
}

impl SchemaScope {
    /// Covers these schemas instead of `public`.
    pub fn schemas<S: Into<String>>(mut self, schemas: impl IntoIterator<Item = S>) -> Self {
        self.schemas = schemas.into_iter().map(Into::into).collect();
        self
    }

    /// Leaves out a table (its columns, constraints and indexes too).
    pub fn ignore_table(mut self, table: impl Into<String>) -> Self {
        self.ignored_tables.insert(table.into());
        self
    }

    /// The schemas covered.
    pub fn schema_names(&self) -> &BTreeSet<String> {
        &self.schemas
    }

    /// The tables left out.
    pub fn ignored_tables(&self) -> &BTreeSet<String> {
        &self.ignored_tables
    }

    fn ignored_json(&self) -> String {
        serde_json::to_string(&self.ignored_tables).unwrap_or_else(|_| "[]".into())
    }
}

/// Reads the schema of `target` within `scope`: one connection, one query.
pub async fn read_schema(
    target: &DatabaseTarget,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<SchemaSnapshot, MigrateError> {
    let mut connection = TenantConnection::open(target, options).await?;
    let read = connection.schema_objects(scope).await;
    connection.close().await;
    Ok(SchemaSnapshot::new(read?))
}

impl TenantConnection {
    /// The objects in `scope`, as the catalog describes them.
    pub(crate) async fn schema_objects(
        &mut self,
        scope: &SchemaScope,
    ) -> Result<Vec<SchemaObject>, MigrateError> {
        let rows = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres { conn, state } => postgres::rows(conn, scope)
                .await
                .map_err(|source| catalog_error(state.database_name(), source))?,
            #[cfg(feature = "sqlite")]
            Self::Sqlite { conn, database } => sqlite::rows(conn, scope)
                .await
                .map_err(|source| catalog_error(database, source))?,
        };
        Ok(rows.into_iter().filter_map(object).collect())
    }
}

/// A catalog row as both engines answer it: kind, qualified name, definition.
type CatalogRow = (String, String, Option<String>);

/// The object of a row; a kind this release does not know is left out.
fn object((kind, name, definition): CatalogRow) -> Option<SchemaObject> {
    let kind = ObjectKind::parse(&kind)?;
    Some(SchemaObject::new(
        kind,
        name,
        definition.as_deref().unwrap_or(""),
    ))
}

fn catalog_error(database: &str, source: sqlx::Error) -> MigrateError {
    MigrateError::Catalog {
        database: database.to_owned(),
        source: Box::new(source),
    }
}
