//! What `migrate status` shows of the fleet itself: tenants per applied version,
//! read live, and drift counts from the last surveys.

use std::collections::{BTreeMap, HashMap};

use tenancy_core::{TenantFilter, TenantId};
use time::OffsetDateTime;

use super::visit::each_member;
use super::{DriftError, DriftRecord, DriftRecords};
use crate::rollout::TenantFleet;
use crate::{MigrationStatus, TenantMigrator};

/// The fleet's tenants per applied version (read live, one small query per
/// tenant) and its drift counts (from the records of the last surveys).
///
/// Serializes as:
///
/// ```json
/// {"versions": [{"version": 20240102000000, "tenants": 998}, {"version": null, "tenants": 1}],
///  "unreachable": 1,
///  "drift": {"checked": 1000, "clean": 996, "drifted": 3, "unreachable": 1,
///            "unchecked": 0, "stale": 2, "last_checked_at": "2024-05-01T12:00:00Z"}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FleetStatus {
    /// Tenants per highest successfully applied version, ascending (`null`:
    /// nothing applied).
    pub versions: Vec<VersionTally>,
    /// Tenants whose version could not be read.
    pub unreachable: u64,
    /// What the last drift surveys found of the fleet's tenants.
    pub drift: DriftTally,
}

/// Tenants at one applied version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VersionTally {
    /// The version (`None`: nothing applied).
    pub version: Option<i64>,
    /// How many tenants are at it.
    pub tenants: u64,
}

/// Drift counts of the fleet's tenants, from each one's last survey.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DriftTally {
    /// Tenants with a drift record.
    pub checked: u64,
    /// Clean when last checked.
    pub clean: u64,
    /// Drifted when last checked.
    pub drifted: u64,
    /// Unreachable when last checked.
    pub unreachable: u64,
    /// Tenants never checked (run `migrate drift`).
    pub unchecked: u64,
    /// Checked tenants whose version changed since (migrated or reverted): their
    /// record may be out of date.
    pub stale: u64,
    /// When the most recent of these checks finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
}

impl FleetStatus {
    /// Reads the applied version of every tenant `filter` selects, `concurrency` at
    /// once with `migrator`'s options, and counts drift from `records` (none: every
    /// tenant counts as unchecked).
    pub async fn read(
        fleet: &dyn TenantFleet,
        filter: &TenantFilter,
        migrator: &TenantMigrator,
        records: Option<&DriftRecords>,
        concurrency: usize,
    ) -> Result<Self, DriftError> {
        let mut recorded: HashMap<TenantId, DriftRecord> = match records {
            Some(records) => records
                .load()
                .await?
                .into_iter()
                .map(|r| (r.tenant.clone(), r))
                .collect(),
            None => HashMap::new(),
        };
        let mut versions: BTreeMap<Option<i64>, u64> = BTreeMap::new();
        let mut status = Self::default();
        // `None`: no database to read (not provisioned, or being offboarded): the
        // tenant is not counted at all.
        let work = |member: crate::FleetMember| {
            let migrator = migrator.clone();
            async move {
                let target = member.database?;
                Some(migrator.status(&target).await)
            }
        };
        each_member(fleet, filter, concurrency, work, |tenant, read| {
            let Some(read) = read else {
                recorded.remove(&tenant);
                return;
            };
            let read = read
                .map_err(|error| tracing::debug!(%tenant, %error, "tenant version unreadable"))
                .ok();
            let live = read.as_ref().map(known_version);
            match &read {
                Some(found) => *versions.entry(found.current_version).or_default() += 1,
                None => status.unreachable += 1,
            }
            status.drift.count(recorded.remove(&tenant).as_ref(), live);
        })
        .await?;
        status.versions = versions
            .into_iter()
            .map(|(version, tenants)| VersionTally { version, tenants })
            .collect();
        Ok(status)
    }
}

impl DriftTally {
    /// Counts one tenant: its record, and its version now (`None` when unread).
    fn count(&mut self, record: Option<&DriftRecord>, live: Option<Option<i64>>) {
        let Some(record) = record else {
            self.unchecked += 1;
            return;
        };
        self.checked += 1;
        match (record.unreachable, record.drifted) {
            (true, _) => self.unreachable += 1,
            (false, true) => self.drifted += 1,
            (false, false) => self.clean += 1,
        }
        if !record.unreachable && live.is_some_and(|now| now != record.version) {
            self.stale += 1;
        }
        if self
            .last_checked_at
            .is_none_or(|last| last < record.checked_at)
        {
            self.last_checked_at = Some(record.checked_at);
        }
    }
}

/// The version a survey would group the tenant under: its highest applied
/// version the set has.
fn known_version(status: &MigrationStatus) -> Option<i64> {
    status
        .applied
        .iter()
        .copied()
        .filter(|v| !status.missing.contains(v))
        .max()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tenancy_core::{
        DatabaseTarget, DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantDirectory,
        TenantStatus,
    };
    use time::OffsetDateTime;

    use super::*;
    use crate::{DirectoryFleet, MigrationSet};

    #[tokio::test]
    async fn tenants_without_a_database_to_read_are_not_counted_as_unreachable() {
        let directory = Arc::new(MemoryTenantDirectory::new());
        let mut retained = NewTenant::new("Globex", "owner@globex.example")
            .unwrap()
            .into_tenant(OffsetDateTime::UNIX_EPOCH);
        // Its paused database would refuse every connection.
        retained.database = Some(DatabaseTarget::new(
            DatabaseUrl::parse("postgres://app@127.0.0.1:1/globex").unwrap(),
        ));
        retained.status = TenantStatus::Retained {
            until: OffsetDateTime::UNIX_EPOCH,
            onboarded: true,
            export: None,
        };
        directory.insert(&retained).await.unwrap();
        let set = MigrationSet::builder()
            .file("1_items.sql", "CREATE TABLE items (id INT);")
            .build()
            .unwrap();

        let status = FleetStatus::read(
            &DirectoryFleet::new(directory),
            &TenantFilter::all(),
            &TenantMigrator::new(set),
            None,
            4,
        )
        .await
        .unwrap();

        assert_eq!(status.unreachable, 0);
        assert!(status.versions.is_empty(), "{:?}", status.versions);
        assert_eq!(status.drift.unchecked, 0);
    }
}
