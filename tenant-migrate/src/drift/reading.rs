//! One tenant read for a drift survey: its history and its schema's digest, on one
//! connection; and, for one tenant of each distinct digest, its schema.

use tenancy_core::{DatabaseKind, DatabaseTarget};

use super::HistoryAnomaly;
use crate::connection::TenantConnection;
use crate::fingerprint::{SchemaDigest, SchemaFingerprint, SchemaScope, SchemaSnapshot};
use crate::history::HistorySnapshot;
use crate::{MigrateError, MigrateOptions, MigrationSet};

/// What a survey keeps of one tenant: a few dozen bytes, whatever its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantReading {
    /// Its database's kind: schemas are only compared within one kind.
    pub(crate) kind: DatabaseKind,
    /// The highest successfully applied version the set has (`None`: none).
    pub(crate) version: Option<i64>,
    /// The fingerprint of its schema.
    pub(crate) fingerprint: SchemaFingerprint,
    /// What is wrong in its history.
    pub(crate) anomalies: Vec<HistoryAnomaly>,
}

/// What the first pass of a survey reads of one tenant: its version, anomalies and
/// the digest of its schema (the schema itself is read once per distinct digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestReading {
    /// Its database's kind: schemas are only compared within one kind.
    pub(crate) kind: DatabaseKind,
    /// The highest successfully applied version the set has (`None`: none).
    pub(crate) version: Option<i64>,
    /// The digest of its schema.
    pub(crate) digest: SchemaDigest,
    /// What is wrong in its history.
    pub(crate) anomalies: Vec<HistoryAnomaly>,
}

impl DigestReading {
    /// The reading of a tenant whose schema has this fingerprint.
    pub(crate) fn with_fingerprint(self, fingerprint: SchemaFingerprint) -> TenantReading {
        TenantReading {
            kind: self.kind,
            version: self.version,
            fingerprint,
            anomalies: self.anomalies,
        }
    }
}

/// Reads `target`'s history and schema digest on one connection (one request on
/// PostgreSQL once the history table exists).
pub(crate) async fn read_tenant(
    target: &DatabaseTarget,
    set: &MigrationSet,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<DigestReading, MigrateError> {
    let mut connection = TenantConnection::open(target, options).await?;
    let read = read_on(&mut connection, scope).await;
    connection.close().await;
    let (history, digest) = read?;
    Ok(DigestReading {
        kind: target.kind(),
        version: known_version(set, &history),
        digest,
        anomalies: HistoryAnomaly::find(set, &history),
    })
}

async fn read_on(
    connection: &mut TenantConnection,
    scope: &SchemaScope,
) -> Result<(HistorySnapshot, SchemaDigest), MigrateError> {
    if let Some(read) = connection.history_and_digest(scope).await? {
        return Ok(read);
    }
    let history = connection.backend().read_history().await?;
    let digest = connection.schema_digest(scope).await?;
    Ok((history, digest))
}

/// The schema of one tenant whose digest is `digest`, from the first of
/// `candidates` that can be read and still has that digest (a tenant changed since
/// its first reading is passed over while another one is left; the last schema
/// read is taken otherwise).
pub(crate) async fn read_group_schema(
    candidates: &[DatabaseTarget],
    digest: SchemaDigest,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<SchemaSnapshot, MigrateError> {
    let mut last = None;
    for target in candidates {
        match read_schema_and_digest(target, scope, options).await {
            Ok((snapshot, found)) if found == digest => return Ok(snapshot),
            read => last = Some(read.map(|(snapshot, _)| snapshot)),
        }
    }
    last.unwrap_or_else(|| {
        Err(MigrateError::InvalidTarget {
            database: String::new(),
            reason: "no tenant to read the schema from".into(),
        })
    })
}

async fn read_schema_and_digest(
    target: &DatabaseTarget,
    scope: &SchemaScope,
    options: &MigrateOptions,
) -> Result<(SchemaSnapshot, SchemaDigest), MigrateError> {
    let mut connection = TenantConnection::open(target, options).await?;
    let read = async {
        let objects = connection.schema_objects(scope).await?;
        let digest = connection.schema_digest(scope).await?;
        Ok((SchemaSnapshot::new(objects), digest))
    }
    .await;
    connection.close().await;
    read
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
