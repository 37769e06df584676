//! The fleet grouped by (version, database kind, digest) as tenants are read, then
//! by (version, kind, fingerprint) once one schema per digest is read: one snapshot
//! per group, a few bytes per tenant. Schemas of different database kinds (a
//! SQLite `main` beside a PostgreSQL `public`) are never compared: each kind has
//! its own reference at each version.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tenancy_core::{DatabaseKind, DatabaseTarget, TenantId};

use super::reading::{DigestReading, TenantReading};
use super::{
    DriftCounts, DriftError, DriftReport, ReferenceGroup, SurveyOutcome, SurveyedTenant,
    TenantDrift, UnreachableTenant, VersionReference,
};
use crate::fingerprint::{SchemaDifference, SchemaDigest, SchemaFingerprint, SchemaSnapshot};

/// A database kind, ordered by name, to key groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kind(pub(crate) DatabaseKind);

impl Ord for Kind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.as_str().cmp(other.0.as_str())
    }
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The tenants of one kind sharing one schema at one version.
type GroupKey = (Option<i64>, Kind, SchemaFingerprint);

/// What has one reference: a version, within one database kind.
type ReferenceKey = (Option<i64>, Kind);

/// The tenants of one kind sharing one digest at one version, by their first pass.
pub(crate) type DigestKey = (Option<i64>, Kind, SchemaDigest);

fn reference_key(key: &GroupKey) -> ReferenceKey {
    (key.0, key.1)
}

/// Tenants of a digest group kept as candidates to read its schema from (one, and
/// others in case it cannot be read any more).
const CANDIDATES: usize = 3;

/// A digest group to read one schema of: its key, its first tenant, candidates.
pub(crate) struct DigestGroup {
    pub(crate) key: DigestKey,
    pub(crate) first: TenantId,
    pub(crate) candidates: Vec<DatabaseTarget>,
}

/// The first pass of a survey: each tenant's digest reading as it arrives, and a
/// few tenants of each digest group to read its schema from.
#[derive(Debug, Default)]
pub(crate) struct FirstPass {
    digests: BTreeMap<DigestKey, (TenantId, Vec<DatabaseTarget>)>,
    readings: Vec<(TenantId, DigestReading)>,
    unreachable: Vec<UnreachableTenant>,
}

impl FirstPass {
    /// Adds a tenant read from `target`.
    pub(crate) fn add(&mut self, tenant: TenantId, target: DatabaseTarget, reading: DigestReading) {
        let key = (reading.version, Kind(reading.kind), reading.digest);
        let (first, candidates) = self
            .digests
            .entry(key)
            .or_insert_with(|| (tenant.clone(), Vec::new()));
        if tenant < *first {
            *first = tenant.clone();
        }
        if candidates.len() < CANDIDATES {
            candidates.push(target);
        }
        self.readings.push((tenant, reading));
    }

    /// Adds a tenant that could not be read.
    pub(crate) fn add_unreachable(&mut self, tenant: TenantId, error: String) {
        self.unreachable.push(UnreachableTenant { tenant, error });
    }

    /// The digest groups whose schema to read, their candidates taken out.
    pub(crate) fn take_groups(&mut self) -> Vec<DigestGroup> {
        self.digests
            .iter_mut()
            .map(|(key, (first, candidates))| DigestGroup {
                key: *key,
                first: first.clone(),
                candidates: std::mem::take(candidates),
            })
            .collect()
    }

    /// The fleet grouped by fingerprint, given the schema read for each digest group
    /// (or why it could not be: its tenants are then unreachable).
    pub(crate) fn into_groups(
        self,
        schemas: BTreeMap<DigestKey, Result<SchemaSnapshot, String>>,
    ) -> FleetGroups {
        let fingerprints: BTreeMap<DigestKey, SchemaFingerprint> = schemas
            .iter()
            .filter_map(|(key, schema)| Some((*key, schema.as_ref().ok()?.fingerprint())))
            .collect();
        let mut groups = FleetGroups {
            unreachable: self.unreachable,
            ..FleetGroups::default()
        };
        for (tenant, reading) in self.readings {
            let key = (reading.version, Kind(reading.kind), reading.digest);
            match (schemas.get(&key), fingerprints.get(&key)) {
                (Some(Ok(snapshot)), Some(fingerprint)) => {
                    let reading = reading.with_fingerprint(*fingerprint);
                    groups.add(tenant, reading, snapshot);
                }
                (Some(Err(error)), _) => groups.add_unreachable(
                    tenant,
                    format!("the schema of its group could not be read: {error}"),
                ),
                _ => groups.add_unreachable(tenant, "its schema was not read".into()),
            }
        }
        groups
    }
}

/// The tenants of one kind sharing one schema at one version.
#[derive(Debug)]
struct Group {
    tenants: u64,
    /// Its first tenant by id: the name a report gives the group.
    first: TenantId,
    snapshot: SchemaSnapshot,
}

/// Readings as they arrive, in any order.
#[derive(Debug, Default)]
pub(crate) struct FleetGroups {
    groups: BTreeMap<GroupKey, Group>,
    readings: Vec<(TenantId, TenantReading)>,
    unreachable: Vec<UnreachableTenant>,
}

impl FleetGroups {
    /// Adds a tenant read; its snapshot is kept (copied) only if its group is new.
    pub(crate) fn add(
        &mut self,
        tenant: TenantId,
        reading: TenantReading,
        snapshot: &SchemaSnapshot,
    ) {
        let key = (reading.version, Kind(reading.kind), reading.fingerprint);
        match self.groups.get_mut(&key) {
            Some(group) => {
                group.tenants += 1;
                if tenant < group.first {
                    group.first = tenant.clone();
                }
            }
            None => {
                self.groups.insert(
                    key,
                    Group {
                        tenants: 1,
                        first: tenant.clone(),
                        snapshot: snapshot.clone(),
                    },
                );
            }
        }
        self.readings.push((tenant, reading));
    }

    /// Adds a tenant that could not be read.
    pub(crate) fn add_unreachable(&mut self, tenant: TenantId, error: String) {
        self.unreachable.push(UnreachableTenant { tenant, error });
    }

    /// The reading of `tenant`, if it was read.
    fn reading(&self, tenant: &TenantId) -> Option<&TenantReading> {
        self.readings
            .iter()
            .find(|(id, _)| id == tenant)
            .map(|(_, reading)| reading)
    }

    /// Picks the reference of each version within each database kind (the group
    /// of `named` at its version and kind, else the largest group, ties to the
    /// group with the first tenant id) and compares every other group of that
    /// version and kind with it, once per group.
    pub(crate) fn into_report(
        mut self,
        named: Option<&TenantId>,
        checked_at: time::OffsetDateTime,
    ) -> Result<DriftReport, DriftError> {
        let named_key = match named {
            None => None,
            Some(tenant) => match self.reading(tenant) {
                Some(reading) => Some((reading.version, Kind(reading.kind), reading.fingerprint)),
                None if self.unreachable.iter().any(|u| &u.tenant == tenant) => {
                    return Err(DriftError::ReferenceUnreachable {
                        tenant: tenant.clone(),
                    })
                }
                None => {
                    return Err(DriftError::UnknownReference {
                        tenant: tenant.clone(),
                    })
                }
            },
        };
        let references = self.references(named_key);
        let differences = self.differences(&references);
        let versions = self.version_summaries(&references, named_key.zip(named));
        self.readings.sort_by(|a, b| a.0.cmp(&b.0));
        self.unreachable.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let mut drifted = Vec::new();
        let mut tenants = Vec::with_capacity(self.readings.len() + self.unreachable.len());
        for (tenant, reading) in self.readings.iter() {
            let key = (reading.version, Kind(reading.kind), reading.fingerprint);
            let schema = differences.get(&key).cloned().unwrap_or_default();
            let clean = schema.is_empty() && reading.anomalies.is_empty();
            tenants.push(SurveyedTenant {
                tenant: tenant.clone(),
                version: reading.version,
                fingerprint: Some(reading.fingerprint),
                outcome: if clean {
                    SurveyOutcome::Clean
                } else {
                    SurveyOutcome::Drifted
                },
            });
            if clean {
                continue;
            }
            drifted.push(TenantDrift {
                tenant: tenant.clone(),
                version: reading.version,
                fingerprint: reading.fingerprint,
                differences: schema,
                anomalies: reading.anomalies.clone(),
            });
        }
        tenants.extend(self.unreachable.iter().map(|u| SurveyedTenant {
            tenant: u.tenant.clone(),
            version: None,
            fingerprint: None,
            outcome: SurveyOutcome::Unreachable,
        }));
        tenants.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let read = self.readings.len() as u64;
        let counts = DriftCounts {
            surveyed: read + self.unreachable.len() as u64,
            clean: read - drifted.len() as u64,
            drifted: drifted.len() as u64,
            unreachable: self.unreachable.len() as u64,
        };
        Ok(DriftReport {
            checked_at,
            counts,
            versions,
            drifted,
            unreachable: self.unreachable,
            tenants,
        })
    }

    /// The reference group of each version within each kind: a named group
    /// replaces the largest one of its own version and kind only.
    fn references(&self, named: Option<GroupKey>) -> BTreeMap<ReferenceKey, GroupKey> {
        let mut references: BTreeMap<ReferenceKey, GroupKey> = BTreeMap::new();
        for (key, group) in &self.groups {
            let at = reference_key(key);
            let better = match references.get(&at).and_then(|k| self.groups.get(k)) {
                None => true,
                Some(best) => (group.tenants, &best.first) > (best.tenants, &group.first),
            };
            if better {
                references.insert(at, *key);
            }
        }
        if let Some(named) = named {
            references.insert(reference_key(&named), named);
        }
        references
    }

    /// The differences of every non-reference group against its reference.
    fn differences(
        &self,
        references: &BTreeMap<ReferenceKey, GroupKey>,
    ) -> BTreeMap<GroupKey, Vec<SchemaDifference>> {
        let mut found = BTreeMap::new();
        for (key, group) in &self.groups {
            let Some(reference) = references.get(&reference_key(key)).filter(|r| *r != key) else {
                continue;
            };
            if let Some(reference) = self.groups.get(reference) {
                found.insert(*key, group.snapshot.diff(&reference.snapshot));
            }
        }
        found
    }

    fn version_summaries(
        &self,
        references: &BTreeMap<ReferenceKey, GroupKey>,
        named: Option<(GroupKey, &TenantId)>,
    ) -> Vec<VersionReference> {
        let mut versions = Vec::new();
        for (at, key) in references {
            let Some(group) = self.groups.get(key) else {
                continue;
            };
            let (version, kind) = at;
            let at_version = self.groups.iter().filter(|(k, _)| reference_key(k) == *at);
            let (tenants, groups) =
                at_version.fold((0, 0), |(t, g), (_, group)| (t + group.tenants, g + 1));
            let named = named.filter(|(named, _)| named == key).map(|(_, id)| id);
            versions.push(VersionReference {
                version: *version,
                database: kind.0,
                tenants,
                groups,
                reference: ReferenceGroup {
                    tenant: named.unwrap_or(&group.first).clone(),
                    fingerprint: key.2,
                    tenants: group.tenants,
                    objects: group.snapshot.len() as u64,
                    named: named.is_some(),
                },
            });
        }
        versions
    }
}
