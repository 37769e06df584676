use crate::history::HistorySnapshot;
use crate::{MigrateError, Migration, MigrationSet};

/// Where one tenant database stands against a [`MigrationSet`], read in one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The highest successfully applied version (`None`: nothing applied).
    pub current_version: Option<i64>,
    /// The set's highest version.
    pub latest_version: Option<i64>,
    /// Successfully applied versions, ascending.
    pub applied: Vec<i64>,
    /// Versions of the set not applied yet, ascending.
    pub pending: Vec<i64>,
    /// The first version recorded with `success = false`.
    pub dirty: Option<i64>,
    /// Applied versions whose checksum differs from the set's.
    pub mismatched: Vec<i64>,
    /// Applied versions that the set does not contain.
    pub missing: Vec<i64>,
    /// Pending versions that sort below the highest applied version the set
    /// contains, ascending: never applied, and never reached by moving forward
    /// (a file added with an older version, or a date written with `_` such as
    /// `2024_03_01_x.sql`, read as version 2024). A migrator refuses to build on
    /// them ([`MigrateError::PendingBelowApplied`]).
    pub pending_below_applied: Vec<i64>,
}

impl MigrationStatus {
    /// Compares the history against the set.
    pub(crate) fn compute(set: &MigrationSet, history: &HistorySnapshot) -> Self {
        let mut status = Self {
            latest_version: set.latest_version(),
            ..Self::default()
        };
        for row in &history.rows {
            if !row.success {
                status.dirty.get_or_insert(row.version);
                continue;
            }
            status.applied.push(row.version);
            match set.get(row.version) {
                Some(migration) if migration.checksum() != row.checksum.as_slice() => {
                    status.mismatched.push(row.version);
                }
                Some(_) => {}
                None => status.missing.push(row.version),
            }
        }
        status.current_version = status.applied.iter().copied().max();
        status.pending = set
            .iter()
            .map(Migration::version)
            .filter(|version| {
                history
                    .rows
                    .binary_search_by_key(version, |row| row.version)
                    .is_err()
            })
            .collect();
        let latest_known = status.latest_known(set);
        status.pending_below_applied = status
            .pending
            .iter()
            .copied()
            .filter(|version| latest_known.is_some_and(|latest| *version < latest))
            .collect();
        status
    }

    /// The highest applied version the set contains.
    fn latest_known(&self, set: &MigrationSet) -> Option<i64> {
        self.applied
            .iter()
            .copied()
            .filter(|version| set.get(*version).is_some())
            .max()
    }

    /// Whether every migration of the set is applied and nothing is wrong.
    pub fn is_up_to_date(&self) -> bool {
        self.pending.is_empty() && self.is_consistent()
    }

    /// Whether the history has no dirty row, no checksum mismatch, no unknown
    /// version and no pending version below the latest applied one.
    pub fn is_consistent(&self) -> bool {
        self.dirty.is_none()
            && self.mismatched.is_empty()
            && self.missing.is_empty()
            && self.pending_below_applied.is_empty()
    }

    /// The error a migrator refuses with, if the history is not safe to build on:
    /// a dirty row, a checksum mismatch, an unknown version (unless
    /// `ignore_missing`), or a pending version below the latest applied one.
    pub fn problem(&self, set: &MigrationSet, ignore_missing: bool) -> Option<MigrateError> {
        self.history_problem(set, ignore_missing)
            .or_else(|| self.pending_below_problem(set))
    }

    /// The refusal of a pending version below the latest applied one, if any.
    pub(crate) fn pending_below_problem(&self, set: &MigrationSet) -> Option<MigrateError> {
        let version = *self.pending_below_applied.first()?;
        Some(MigrateError::PendingBelowApplied {
            version,
            file: set
                .get(version)
                .map(|m| m.file().to_owned())
                .unwrap_or_default(),
            latest: self.latest_known(set)?,
        })
    }

    /// What is wrong in the rows recorded (dirty, mismatched, unknown), leaving
    /// pending versions aside: what a revert refuses.
    pub(crate) fn history_problem(
        &self,
        set: &MigrationSet,
        ignore_missing: bool,
    ) -> Option<MigrateError> {
        if let Some(version) = self.dirty {
            return Some(MigrateError::Dirty { version });
        }
        if let Some(&version) = self.mismatched.first() {
            let file = set
                .get(version)
                .map(|m| m.file().to_owned())
                .unwrap_or_default();
            return Some(MigrateError::ChecksumMismatch { version, file });
        }
        match self.missing.first() {
            Some(&version) if !ignore_missing => Some(MigrateError::VersionMissing { version }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryRow;

    fn row(migration: &Migration) -> HistoryRow {
        HistoryRow {
            version: migration.version(),
            success: true,
            checksum: migration.checksum().to_vec(),
        }
    }

    fn set() -> MigrationSet {
        MigrationSet::builder()
            .adhoc("1_a", "CREATE TABLE a (id INT);")
            .adhoc("2_b", "CREATE TABLE b (id INT);")
            .adhoc("3_c", "CREATE TABLE c (id INT);")
            .build()
            .unwrap()
    }

    #[test]
    fn pending_follows_the_history() {
        let set = set();
        let history = HistorySnapshot {
            database: None,
            table_exists: true,
            rows: vec![row(set.get(1).unwrap())],
        };
        let status = MigrationStatus::compute(&set, &history);
        assert_eq!(
            (status.current_version, status.latest_version),
            (Some(1), Some(3))
        );
        assert_eq!(status.pending, [2, 3]);
        assert!(status.is_consistent() && !status.is_up_to_date());
        assert!(status.problem(&set, false).is_none());
    }

    #[test]
    fn reports_dirty_mismatched_and_missing_rows() {
        let set = set();
        let mut edited = row(set.get(1).unwrap());
        edited.checksum[0] ^= 1;
        let mut dirty = row(set.get(2).unwrap());
        dirty.success = false;
        let unknown = HistoryRow {
            version: 9,
            success: true,
            checksum: vec![0; 48],
        };
        let history = HistorySnapshot {
            database: None,
            table_exists: true,
            rows: vec![edited, dirty, unknown],
        };
        let status = MigrationStatus::compute(&set, &history);
        assert_eq!(
            (
                status.dirty,
                status.mismatched.as_slice(),
                status.missing.as_slice()
            ),
            (Some(2), &[1][..], &[9][..])
        );
        assert_eq!(status.pending, [3]);
        assert!(matches!(
            status.problem(&set, false),
            Some(MigrateError::Dirty { version: 2 })
        ));
        let no_dirty = MigrationStatus {
            dirty: None,
            ..status
        };
        assert!(matches!(
            no_dirty.problem(&set, false),
            Some(MigrateError::ChecksumMismatch { version: 1, .. })
        ));
        let only_missing = MigrationStatus {
            mismatched: vec![],
            ..no_dirty
        };
        assert!(matches!(
            only_missing.problem(&set, false),
            Some(MigrateError::VersionMissing { version: 9 })
        ));
        assert!(only_missing.problem(&set, true).is_none());
    }

    #[test]
    fn a_pending_version_below_the_latest_applied_is_refused() {
        let set = MigrationSet::builder()
            .file("20240101000000_a.sql", "CREATE TABLE a (id INT);")
            .file("20240201000000_b.sql", "CREATE TABLE b (id INT);")
            .file("2024_03_01_x.sql", "CREATE TABLE x (id INT);")
            .build()
            .unwrap();
        let history = HistorySnapshot {
            database: None,
            table_exists: true,
            rows: vec![
                row(set.get(20240101000000).unwrap()),
                row(set.get(20240201000000).unwrap()),
            ],
        };
        let status = MigrationStatus::compute(&set, &history);
        assert_eq!(status.pending, [2024]);
        assert_eq!(status.pending_below_applied, [2024]);
        assert!(!status.is_consistent() && !status.is_up_to_date());
        let problem = status.problem(&set, true);
        assert!(
            matches!(
                &problem,
                Some(MigrateError::PendingBelowApplied { version: 2024, file, latest: 20240201000000 })
                    if file == "2024_03_01_x.sql"
            ),
            "{problem:?}"
        );
        assert!(status.history_problem(&set, false).is_none());

        // Pending above the latest applied: only pending.
        let fresh = MigrationStatus::compute(
            &set,
            &HistorySnapshot {
                database: None,
                table_exists: true,
                rows: vec![row(set.get(2024).unwrap())],
            },
        );
        assert_eq!(fresh.pending, [20240101000000, 20240201000000]);
        assert!(fresh.pending_below_applied.is_empty() && fresh.problem(&set, false).is_none());
    }
}
