//! One tenant read for a drift survey: its history and its schema, on one connection.

use tenancy_core::DatabaseTarget;

use super::HistoryAnomaly;
use crate::connection::TenantConnection;
use crate::fingerprint::{SchemaFingerprint, SchemaScope, SchemaSnapshot};
use crate::history::HistorySnapshot;
use crate::{MigrateError, MigrateOptions, MigrationSet};

/// What a survey keeps of one tenant: a few dozen bytes, whatever its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantReading {
    /// The highest successfully applied version the set has (`None`: none).
    pub(crate) version: Option<i64>,
    /// The fingerprint of its schema.
    pub(crate) fingerprint: SchemaFingerprint,
    /// What is wrong in its history.
    pub(crate) anomalies: Vec<HistoryAnomaly>,
}

/// Reads `target`'s history (one query) and schema (one query) on one connection.
pub(crate) async fn read_tenant(
    target: &DatabaseTarget,
    set: &MigrationSet,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<(TenantReading, SchemaSnapshot), MigrateError> {
    let mut connection = TenantConnection::open(target, options).await?;
    let read = read_on(&mut connection, scope).await;
    connection.close().await;
    let (history, snapshot) = read?;
    let reading = TenantReading {
        version: known_version(set, &history),
        fingerprint: snapshot.fingerprint(),
        anomalies: HistoryAnomaly::find(set, &history),
    };
    Ok((reading, snapshot))
}

async fn read_on(
    connection: &mut TenantConnection,
    scope: &SchemaScope,
) -> Result<(HistorySnapshot, SchemaSnapshot), MigrateError> {
    let history = connection.backend().read_history().await?;
    let objects = connection.schema_objects(scope).await?;
    Ok((history, SchemaSnapshot::new(objects)))
}

/// The version a tenant's schema should match: its highest successfully applied
/// version that the set has. A version the set lacks is an anomaly, not a group.
fn known_version(set: &MigrationSet, history: &HistorySnapshot) -> Option<i64> {
    history
        .rows
        .iter()
        .filter(|row| row.success && set.get(row.version).is_some())
        .map(|row| row.version)
        .max()
}
