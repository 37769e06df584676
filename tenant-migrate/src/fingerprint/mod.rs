//! Schema fingerprints: a canonical, order-independent description of the objects
//! in a tenant's migrated schemas, read from the catalog in one round trip, and
//! the difference between two of them.
//!
//! Comparing a fleet does not need every tenant's description: [`read_digest`]
//! reads a [`SchemaDigest`], about half the cost on PostgreSQL, that differs whenever
//! the descriptions differ. A survey reads one per tenant, and a description only
//! for one tenant of each distinct digest.
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
use std::fmt;

use tenancy_core::DatabaseTarget;

use crate::connection::TenantConnection;
use crate::history::HistorySnapshot;
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

/// Reads the [`SchemaDigest`] of `target` within `scope`: one connection, one query.
pub async fn read_digest(
    target: &DatabaseTarget,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<SchemaDigest, MigrateError> {
    let mut connection = TenantConnection::open(target, options).await?;
    let read = connection.schema_digest(scope).await;
    connection.close().await;
    read
}

/// A digest of a tenant's schema within a [`SchemaScope`]: two databases whose
/// [`SchemaSnapshot`]s differ have different digests, and two built alike (the
/// same migrations, whatever identifiers their objects were given) have equal
/// ones. Unlike a [`SchemaFingerprint`], a digest may also tell apart schemas whose
/// snapshots are equal (a column order, a default written otherwise): read the
/// snapshots to know. On PostgreSQL it costs a fraction of a snapshot (raw catalog
/// rows, hashed by the client); on SQLite it is the snapshot's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaDigest([u8; 32]);

impl fmt::Display for SchemaDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Whether `scope` covers a schema of the system, whose objects have identifiers
/// below `FirstNormalObjectId` (the PostgreSQL digest reads only those above).
#[cfg(feature = "postgres")]
fn covers_system_schemas(scope: &SchemaScope) -> bool {
    scope
        .schema_names()
        .iter()
        .any(|name| name.starts_with("pg_") || name == "information_schema")
}

impl TenantConnection {
    /// The digest of the objects in `scope` (see [`SchemaDigest`]).
    pub(crate) async fn schema_digest(
        &mut self,
        scope: &SchemaScope,
    ) -> Result<SchemaDigest, MigrateError> {
        // Irrefutable when the crate is built for PostgreSQL alone.
        #[cfg(feature = "postgres")]
        #[allow(irrefutable_let_patterns)]
        if let Self::Postgres { conn, state } = self {
            if !covers_system_schemas(scope) {
                return postgres::digest(conn, scope)
                    .await
                    .map(SchemaDigest)
                    .map_err(|source| catalog_error(state.database_name(), source));
            }
        }
        let snapshot = SchemaSnapshot::new(self.schema_objects(scope).await?);
        Ok(SchemaDigest(snapshot.fingerprint().into_bytes()))
    }

    /// The migration history and the digest of the objects in `scope`, in one
    /// request (PostgreSQL); `None` where that cannot be done (SQLite, a scope with
    /// system schemas, a database without a history table yet): read them apart.
    pub(crate) async fn history_and_digest(
        &mut self,
        scope: &SchemaScope,
    ) -> Result<Option<(HistorySnapshot, SchemaDigest)>, MigrateError> {
        // Irrefutable when the crate is built for PostgreSQL alone.
        #[cfg(feature = "postgres")]
        #[allow(irrefutable_let_patterns)]
        if let Self::Postgres { conn, state } = self {
            if covers_system_schemas(scope) {
                return Ok(None);
            }
            let read = postgres::digest_after(conn, scope, Some(postgres::HISTORY)).await;
            let (digest, rows) = match read {
                Ok(read) => read,
                Err(error) if postgres::is_undefined_table(&error) => return Ok(None),
                Err(source) => return Err(catalog_error(state.database_name(), source)),
            };
            let history = postgres::history(&rows)
                .map_err(|source| catalog_error(state.database_name(), source))?;
            return Ok(Some((history, SchemaDigest(digest))));
        }
        let _ = scope;
        Ok(None)
    }

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
