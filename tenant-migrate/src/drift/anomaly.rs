use std::fmt;

use crate::history::HistorySnapshot;
use crate::MigrationSet;

/// Something wrong in a tenant's history table (`_sqlx_migrations`) against the
/// migration set: what a migrator would refuse to build on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "anomaly", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HistoryAnomaly {
    /// An applied version the migration set does not have (applied by another set,
    /// by hand, or from a migration file since deleted).
    UnknownVersion {
        /// The version.
        version: i64,
    },
    /// An applied version whose recorded checksum differs from its file's: the file
    /// was edited after it was applied, or the row was.
    ChecksumMismatch {
        /// The version.
        version: i64,
        /// The migration file it should match.
        file: String,
    },
    /// A row recorded with `success = false`: a migration that failed half way
    /// (a `no_tx` migration, or a row written by another tool).
    Failed {
        /// The version.
        version: i64,
    },
    /// A migration of the set never applied whose version sorts before the
    /// latest applied one: moving forward never runs it (a file added with an
    /// older version, or a date written with `_`, such as `2024_03_01_x.sql`,
    /// read up to its first `_` as version 2024). Give it a version after
    /// `latest` by renaming its file.
    NeverApplied {
        /// The version.
        version: i64,
        /// Its migration file.
        file: String,
        /// The latest applied version (that the set has).
        latest: i64,
    },
}

impl HistoryAnomaly {
    /// The version the anomaly is about.
    pub fn version(&self) -> i64 {
        match self {
            Self::UnknownVersion { version }
            | Self::ChecksumMismatch { version, .. }
            | Self::Failed { version }
            | Self::NeverApplied { version, .. } => *version,
        }
    }

    /// Every anomaly of `history` against `set`, by ascending version.
    pub(crate) fn find(set: &MigrationSet, history: &HistorySnapshot) -> Vec<Self> {
        let mut found = Vec::new();
        for row in &history.rows {
            if !row.success {
                found.push(Self::Failed {
                    version: row.version,
                });
            }
            match set.get(row.version) {
                None => found.push(Self::UnknownVersion {
                    version: row.version,
                }),
                Some(migration) if migration.checksum() != row.checksum.as_slice() => {
                    found.push(Self::ChecksumMismatch {
                        version: row.version,
                        file: migration.file().to_owned(),
                    })
                }
                Some(_) => {}
            }
        }
        let latest = history
            .rows
            .iter()
            .filter(|row| row.success && set.get(row.version).is_some())
            .map(|row| row.version)
            .max();
        if let Some(latest) = latest {
            let recorded = |version: i64| history.rows.iter().any(|row| row.version == version);
            found.extend(
                set.iter()
                    .filter(|m| m.version() < latest && !recorded(m.version()))
                    .map(|m| Self::NeverApplied {
                        version: m.version(),
                        file: m.file().to_owned(),
                        latest,
                    }),
            );
        }
        found.sort_by_key(Self::version);
        found
    }
}

/// One line: `history: version 99 is applied but not in the migration set`.
impl fmt::Display for HistoryAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVersion { version } => write!(
                f,
                "history: version {version} is applied but not in the migration set"
            ),
            Self::ChecksumMismatch { version, file } => write!(
                f,
                "history: version {version} was applied with a checksum that differs from {file}"
            ),
            Self::Failed { version } => write!(
                f,
                "history: version {version} is recorded as failed (success = false)"
            ),
            Self::NeverApplied {
                version,
                file,
                latest,
            } => write!(
                f,
                "history: version {version} ({file}) was never applied, and sorts before the latest applied version {latest}; give it a version after {latest} by renaming its file"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HistoryRow;

    #[test]
    fn each_kind_of_row_trouble_is_found_once() {
        let set = MigrationSet::builder()
            .adhoc("1_a", "CREATE TABLE a (id INT);")
            .adhoc("2_b", "CREATE TABLE b (id INT);")
            .build()
            .unwrap();
        let row = |version: i64, success: bool, checksum: Vec<u8>| HistoryRow {
            version,
            success,
            checksum,
        };
        let good = set.get(1).unwrap().checksum().to_vec();
        let history = HistorySnapshot {
            database: None,
            table_exists: true,
            rows: vec![
                row(1, true, good),
                row(2, false, vec![0; 48]),
                row(9, true, vec![]),
            ],
        };
        let found = HistoryAnomaly::find(&set, &history);
        assert_eq!(
            found,
            [
                HistoryAnomaly::Failed { version: 2 },
                HistoryAnomaly::ChecksumMismatch {
                    version: 2,
                    file: set.get(2).unwrap().file().to_owned()
                },
                HistoryAnomaly::UnknownVersion { version: 9 },
            ]
        );
        assert!(found[2].to_string().contains("not in the migration set"));
    }

    #[test]
    fn a_version_never_applied_below_the_latest_applied_is_found() {
        let set = MigrationSet::builder()
            .file("20240101000000_a.sql", "CREATE TABLE a (id INT);")
            .file("20240201000000_b.sql", "CREATE TABLE b (id INT);")
            .file("2024_03_01_x.sql", "CREATE TABLE x (id INT);")
            .build()
            .unwrap();
        let row = |version: i64| HistoryRow {
            version,
            success: true,
            checksum: set.get(version).unwrap().checksum().to_vec(),
        };
        let history = HistorySnapshot {
            database: None,
            table_exists: true,
            rows: vec![row(20240101000000), row(20240201000000)],
        };
        let found = HistoryAnomaly::find(&set, &history);
        assert_eq!(
            found,
            [HistoryAnomaly::NeverApplied {
                version: 2024,
                file: "2024_03_01_x.sql".into(),
                latest: 20240201000000,
            }]
        );
        let text = found[0].to_string();
        assert!(
            text.contains("version 2024 (2024_03_01_x.sql) was never applied, and sorts before the latest applied version 20240201000000"),
            "{text}"
        );
        let json = serde_json::to_value(&found[0]).unwrap();
        assert_eq!(json["anomaly"], "never_applied");
        // Pending above the latest applied version: nothing wrong.
        let early = HistorySnapshot {
            rows: vec![row(2024)],
            ..history
        };
        assert!(HistoryAnomaly::find(&set, &early).is_empty());
    }
}
