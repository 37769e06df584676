use sha2::{Digest, Sha384};

use crate::source::{description_from, NO_TRANSACTION_MARKER};
use crate::MigrationSourceError;

/// One versioned schema change: its up SQL and, for a reversible migration, its down SQL.
///
/// The checksum is the SHA-384 of the up SQL exactly as written, which is what sqlx
/// stores in `_sqlx_migrations.checksum`; a file that starts with `-- no-transaction`
/// runs outside a transaction, as with sqlx. Such a file is sent as one query, which
/// PostgreSQL runs as one implicit transaction when it holds several statements: keep
/// a `CREATE INDEX CONCURRENTLY` alone in its file ([`lint`](crate::lint) checks it).
/// If it fails, nothing is recorded and the error says it may have applied in part.
///
/// ```
/// use tenant_migrate::Migration;
///
/// let m = Migration::parse_adhoc("20240127_add_new_field", "ALTER TABLE items ADD COLUMN f TEXT;")?;
/// assert_eq!(m.version(), 20240127);
/// assert_eq!(m.description(), "add new field");
/// assert_eq!(m.checksum().len(), 48);
/// # Ok::<(), tenant_migrate::MigrationSourceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: i64,
    description: String,
    up: Script,
    down: Option<Script>,
    checksum: Vec<u8>,
}

/// One SQL file of a migration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Script {
    file: String,
    sql: String,
}

impl Script {
    fn no_tx(&self) -> bool {
        self.sql.starts_with(NO_TRANSACTION_MARKER)
    }
}

impl Migration {
    /// A migration from its parts; `file` names it in errors (a file name or any label).
    pub fn new(
        version: i64,
        description: impl Into<String>,
        file: impl Into<String>,
        sql: impl Into<String>,
    ) -> Self {
        let sql = sql.into();
        Self {
            version,
            description: description.into(),
            checksum: Sha384::digest(sql.as_bytes()).to_vec(),
            up: Script {
                file: file.into(),
                sql,
            },
            down: None,
        }
    }

    /// An ad-hoc migration named like `"20240127_add_new_field"`, as the admin API
    /// sends it: the leading digits are the version, the rest the description.
    pub fn parse_adhoc(name: &str, sql: impl Into<String>) -> Result<Self, MigrationSourceError> {
        let digits = name.len() - name.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let version =
            name[..digits]
                .parse::<i64>()
                .map_err(|_| MigrationSourceError::InvalidName {
                    name: name.to_owned(),
                    reason: "it must start with a numeric version, e.g. `20240127_add_new_field`",
                })?;
        let description = description_from(name[digits..].trim_start_matches(['_', '-', ' ']));
        Ok(Self::new(version, description, name, sql))
    }

    /// Adds the down SQL that reverts this migration.
    pub fn with_down(mut self, file: impl Into<String>, sql: impl Into<String>) -> Self {
        self.down = Some(Script {
            file: file.into(),
            sql: sql.into(),
        });
        self
    }

    /// The version (sqlx: a positive integer, usually a timestamp).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The description, with `_` turned into spaces as sqlx does.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The up file's name (or the ad-hoc name).
    pub fn file(&self) -> &str {
        &self.up.file
    }

    /// The up SQL.
    pub fn sql(&self) -> &str {
        &self.up.sql
    }

    /// The SHA-384 of the up SQL, as stored in `_sqlx_migrations.checksum`.
    pub fn checksum(&self) -> &[u8] {
        &self.checksum
    }

    /// Whether the up SQL starts with `-- no-transaction`.
    pub fn no_tx(&self) -> bool {
        self.up.no_tx()
    }

    /// Whether a down migration exists.
    pub fn is_reversible(&self) -> bool {
        self.down.is_some()
    }

    /// The down file's name, if any.
    pub fn down_file(&self) -> Option<&str> {
        self.down.as_ref().map(|d| d.file.as_str())
    }

    /// The down SQL, if any.
    pub fn down_sql(&self) -> Option<&str> {
        self.down.as_ref().map(|d| d.sql.as_str())
    }

    /// Whether the down SQL starts with `-- no-transaction`.
    pub fn down_no_tx(&self) -> bool {
        self.down.as_ref().is_some_and(Script::no_tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_sha384_of_the_sql() {
        let m = Migration::new(1, "init", "1_init.sql", "CREATE TABLE t (id INT);\n");
        assert_eq!(
            hex::encode(m.checksum()),
            hex::encode(Sha384::digest(b"CREATE TABLE t (id INT);\n"))
        );
        assert!(!m.no_tx() && !m.is_reversible());
    }

    #[test]
    fn adhoc_names_split_into_version_and_description() {
        let m = Migration::parse_adhoc("20240127_add_new_field", "SELECT 1").unwrap();
        assert_eq!(
            (m.version(), m.description(), m.file()),
            (20240127, "add new field", "20240127_add_new_field")
        );
        assert!(Migration::parse_adhoc("add_field", "SELECT 1").is_err());
        assert!(Migration::parse_adhoc("99999999999999999999_x", "SELECT 1").is_err());
    }

    #[test]
    fn no_transaction_marker_must_open_the_file() {
        let m = Migration::new(
            2,
            "idx",
            "2_idx.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);",
        );
        assert!(m.no_tx());
        let m = Migration::new(2, "idx", "2_idx.sql", "\n-- no-transaction\nSELECT 1;");
        assert!(!m.no_tx());
    }
}
