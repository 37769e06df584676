use std::fmt;

use tenancy_core::{DatabaseKind, TenantId};
use time::OffsetDateTime;

use super::HistoryAnomaly;
use crate::fingerprint::{SchemaDifference, SchemaFingerprint};

/// What a drift survey found: per version and database kind the reference schema,
/// every tenant that differs from its reference or whose history is wrong, and
/// every tenant that could not be read.
///
/// Schemas are only compared between tenants of the same database kind (a SQLite
/// schema never matches a PostgreSQL one): a fleet of SQLite and PostgreSQL
/// tenants has, at each version, one `versions` entry and one reference per kind,
/// told apart by `database` (`"postgres"` or `"sqlite"`).
///
/// Serializes as (`version` is `null` for a tenant with nothing applied):
///
/// ```json
/// {
///   "checked_at": "2024-05-01T12:00:00Z",
///   "counts": {"surveyed": 20, "clean": 16, "drifted": 4, "unreachable": 0},
///   "versions": [{"version": 3, "database": "postgres", "tenants": 20, "groups": 3,
///                 "reference": {"tenant": "t00", "fingerprint": "9f3c…", "tenants": 18, "objects": 12, "named": false}}],
///   "drifted": [{"tenant": "acme", "version": 3, "fingerprint": "41d0…",
///                "differences": [{"change": "added", "kind": "column", "name": "public.items.note", "definition": "text"}],
///                "anomalies": [{"anomaly": "checksum_mismatch", "version": 2, "file": "2_price.sql"}]}],
///   "unreachable": [{"tenant": "initech", "error": "database postgres://app:[redacted]@db/initech is unreachable: …"}]
/// }
/// ```
///
/// `differences` items are [`SchemaDifference`]s (`change` is `added`, `missing`
/// or `changed`; `changed` has `reference` and `found` instead of `definition`),
/// `anomalies` items [`HistoryAnomaly`]s (`unknown_version`, `checksum_mismatch`,
/// `failed`, `never_applied`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DriftReport {
    /// When the survey finished.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// Tenants per outcome.
    pub counts: DriftCounts,
    /// Per version (ascending, `None` first) and, within it, per database kind,
    /// its tenants and reference schema.
    pub versions: Vec<VersionReference>,
    /// Tenants that differ from their version's (and kind's) reference or have history
    /// anomalies, by id.
    pub drifted: Vec<TenantDrift>,
    /// Tenants that could not be read, by id: not known to drift, not known clean.
    pub unreachable: Vec<UnreachableTenant>,
    /// Every surveyed tenant in brief, by id (not serialized: see [`tenants`](Self::tenants)).
    #[serde(skip)]
    pub(crate) tenants: Vec<SurveyedTenant>,
}

impl DriftReport {
    /// Whether every surveyed tenant was read and none drifted.
    pub fn is_clean(&self) -> bool {
        self.drifted.is_empty() && self.unreachable.is_empty()
    }

    /// Whether a tenant drifted (schema or history).
    pub fn has_drift(&self) -> bool {
        !self.drifted.is_empty()
    }

    /// The drifted tenants' ids, in order.
    pub fn drifted_ids(&self) -> impl Iterator<Item = &TenantId> {
        self.drifted.iter().map(|t| &t.tenant)
    }

    /// Every surveyed tenant in brief (version, fingerprint, outcome), by id: what
    /// [`DriftRecords`](super::DriftRecords) keeps.
    pub fn tenants(&self) -> &[SurveyedTenant] {
        &self.tenants
    }

    /// The drifted entry of `tenant`, if it drifted.
    pub fn drift_of(&self, tenant: &TenantId) -> Option<&TenantDrift> {
        self.drifted
            .binary_search_by(|t| t.tenant.cmp(tenant))
            .ok()
            .and_then(|i| self.drifted.get(i))
    }
}

/// One surveyed tenant in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SurveyedTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// Its version: the highest applied version the migration set has (`None`:
    /// none, or not read).
    pub version: Option<i64>,
    /// Its schema's fingerprint (`None`: not read).
    pub fingerprint: Option<SchemaFingerprint>,
    /// What the survey found.
    pub outcome: SurveyOutcome,
}

/// What a survey found of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SurveyOutcome {
    /// Its schema is its version's reference and its history is sound.
    Clean,
    /// Its schema differs from the reference, or its history is wrong.
    Drifted,
    /// It could not be read.
    Unreachable,
}

/// Tenants per outcome of a survey.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DriftCounts {
    /// Tenants the survey covered.
    pub surveyed: u64,
    /// Read, matching their version's reference, with a sound history.
    pub clean: u64,
    /// Read, and different from the reference or with history anomalies.
    pub drifted: u64,
    /// Not read (no connection, no database, a failed catalog query).
    pub unreachable: u64,
}

/// The tenants of one database kind at one version and the schema they are
/// compared against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VersionReference {
    /// The version (`None`: nothing applied).
    pub version: Option<i64>,
    /// The database kind of these tenants, serialized as `"postgres"` or
    /// `"sqlite"`: tenants of another kind at the same version have an entry of
    /// their own.
    #[serde(serialize_with = "kind_name")]
    pub database: DatabaseKind,
    /// Tenants of this kind read at this version.
    pub tenants: u64,
    /// Distinct schemas among them (1 when they all match).
    pub groups: u64,
    /// The reference schema.
    pub reference: ReferenceGroup,
}

/// The group of tenants whose schema is a version's reference, for one database kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReferenceGroup {
    /// A tenant of the group: the named reference tenant, or the group's first by id.
    pub tenant: TenantId,
    /// The schema's fingerprint.
    pub fingerprint: SchemaFingerprint,
    /// Tenants with exactly this schema.
    pub tenants: u64,
    /// Objects in the schema.
    pub objects: u64,
    /// Whether it is the reference because its tenant was named (otherwise it is
    /// the largest group).
    pub named: bool,
}

/// One drifted tenant: how its schema differs from its version's reference, and
/// what is wrong in its history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TenantDrift {
    /// The tenant.
    pub tenant: TenantId,
    /// Its version: the highest applied version the migration set has.
    pub version: Option<i64>,
    /// Its schema's fingerprint.
    pub fingerprint: SchemaFingerprint,
    /// Its schema against the reference (empty when only its history is wrong).
    pub differences: Vec<SchemaDifference>,
    /// What is wrong in its history (empty when only its schema differs).
    pub anomalies: Vec<HistoryAnomaly>,
}

/// A tenant the survey could not read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UnreachableTenant {
    /// The tenant.
    pub tenant: TenantId,
    /// Why (database URLs appear with their password redacted).
    pub error: String,
}

/// One line per finding (`acme: column public.items.note added: text`), then a
/// summary line per version and one for the fleet.
impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for tenant in &self.drifted {
            for difference in &tenant.differences {
                writeln!(f, "{}: {difference}", tenant.tenant)?;
            }
            for anomaly in &tenant.anomalies {
                writeln!(f, "{}: {anomaly}", tenant.tenant)?;
            }
        }
        for tenant in &self.unreachable {
            writeln!(f, "{}: unreachable: {}", tenant.tenant, tenant.error)?;
        }
        for version in &self.versions {
            let r = &version.reference;
            writeln!(
                f,
                "version {} ({}): {} tenants, {} schemas; reference {} ({}, {} tenants, {} objects{})",
                VersionLabel(version.version),
                version.database,
                version.tenants,
                version.groups,
                r.fingerprint.short(),
                r.tenant,
                r.tenants,
                r.objects,
                if r.named { ", named" } else { "" }
            )?;
        }
        let c = &self.counts;
        write!(
            f,
            "{} tenants: {} clean, {} drifted, {} unreachable",
            c.surveyed, c.clean, c.drifted, c.unreachable
        )
    }
}

fn kind_name<S: serde::Serializer>(kind: &DatabaseKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}

/// A version as people read it: the number, or `none`.
pub(crate) struct VersionLabel(pub(crate) Option<i64>);

impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(version) => write!(f, "{version}"),
            None => f.write_str("none"),
        }
    }
}
