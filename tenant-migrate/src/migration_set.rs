use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha384};

use crate::source::{load_dir, parse_file_name, FileKind};
use crate::{Migration, MigrationSourceError};

/// An ordered set of migrations with unique versions: what a [`TenantMigrator`](crate::TenantMigrator) applies.
///
/// Build it from a directory in sqlx's naming ([`MigrationSet::from_dir`]), from
/// files embedded at compile time ([`embedded_migrations!`](crate::embedded_migrations)
/// or [`MigrationSet::builder`] with `include_str!`), or from ad-hoc `(version, sql)`
/// pairs ([`MigrationSetBuilder::adhoc`]).
///
/// ```
/// use tenant_migrate::MigrationSet;
///
/// let set = MigrationSet::builder()
///     .file("1_create_items.up.sql", "CREATE TABLE items (id BIGINT PRIMARY KEY);")
///     .file("1_create_items.down.sql", "DROP TABLE items;")
///     .adhoc("20240127_add_new_field", "ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);")
///     .build()?;
/// assert_eq!(set.latest_version(), Some(20240127));
/// assert!(set.get(1).is_some_and(|m| m.is_reversible()));
/// # Ok::<(), tenant_migrate::MigrationSourceError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
}

impl MigrationSet {
    /// Starts an empty set.
    pub fn builder() -> MigrationSetBuilder {
        MigrationSetBuilder::default()
    }

    /// Loads `<VERSION>_<description>.sql` and `.up.sql`/`.down.sql` files from a
    /// directory, as `sqlx migrate` lays them out. Other files are ignored.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, MigrationSourceError> {
        load_dir(dir.as_ref())
    }

    /// The files of `dir` whose name ends in `.sql` (any case) but that
    /// [`from_dir`](Self::from_dir) does not read, because their name is not
    /// `<VERSION>_<description>.sql` (e.g. `20240101000000.sql`, `notes.sql`,
    /// `20240101000000_items.SQL`): sqlx skips them too, so a tool should say so.
    pub fn unread_files(dir: impl AsRef<Path>) -> Result<Vec<String>, MigrationSourceError> {
        crate::source::unread_sql_files(dir.as_ref())
    }

    /// The migrations, by ascending version.
    pub fn iter(&self) -> std::slice::Iter<'_, Migration> {
        self.migrations.iter()
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, Migration::version)
            .ok()
            .map(|index| &self.migrations[index])
    }

    /// The highest version, or `None` for an empty set.
    pub fn latest_version(&self) -> Option<i64> {
        self.migrations.last().map(Migration::version)
    }

    /// How many migrations the set holds.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// A SHA-384 (hex) over every version and checksum: two sets with the same
    /// fingerprint apply the same SQL. A rollout uses it to recognise itself.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha384::new();
        for migration in &self.migrations {
            hasher.update(migration.version().to_be_bytes());
            hasher.update(migration.checksum());
        }
        hex::encode(hasher.finalize())
    }
}

impl<'a> IntoIterator for &'a MigrationSet {
    type Item = &'a Migration;
    type IntoIter = std::slice::Iter<'a, Migration>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Assembles a [`MigrationSet`]; errors are kept until [`MigrationSetBuilder::build`].
#[derive(Debug, Default)]
#[must_use = "call .build() to get the MigrationSet"]
pub struct MigrationSetBuilder {
    ups: BTreeMap<i64, Migration>,
    downs: Vec<(i64, String, String)>,
    error: Option<MigrationSourceError>,
}

impl MigrationSetBuilder {
    /// Adds a file by its sqlx name (`1_init.sql`, `2_x.up.sql`, `2_x.down.sql`) and
    /// contents; pair it with `include_str!` to embed migrations in the binary.
    pub fn file(self, name: impl Into<String>, sql: impl Into<String>) -> Self {
        let name = name.into();
        match parse_file_name(&name) {
            None => self.fail(MigrationSourceError::InvalidName {
                name,
                reason: "expected `<VERSION>_<description>.sql`, `.up.sql` or `.down.sql`",
            }),
            Some(Err(error)) => self.fail(error),
            Some(Ok(parsed)) if parsed.kind == FileKind::Down => {
                self.down(parsed.version, name, sql.into())
            }
            Some(Ok(parsed)) => self.migration(Migration::new(
                parsed.version,
                parsed.description,
                name,
                sql,
            )),
        }
    }

    /// Adds an ad-hoc migration named like `"20240127_add_new_field"` (see [`Migration::parse_adhoc`]).
    pub fn adhoc(self, name: &str, sql: impl Into<String>) -> Self {
        match Migration::parse_adhoc(name, sql) {
            Ok(migration) => self.migration(migration),
            Err(error) => self.fail(error),
        }
    }

    /// Adds a ready-made migration.
    pub fn migration(mut self, migration: Migration) -> Self {
        if let Some(existing) = self.ups.get(&migration.version()) {
            let error = MigrationSourceError::DuplicateVersion {
                version: migration.version(),
                first: existing.file().to_owned(),
                second: migration.file().to_owned(),
            };
            return self.fail(error);
        }
        self.ups.insert(migration.version(), migration);
        self
    }

    /// Checks and returns the set.
    pub fn build(mut self) -> Result<MigrationSet, MigrationSourceError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        for (version, file, sql) in self.downs {
            let Some(up) = self.ups.remove(&version) else {
                return Err(MigrationSourceError::DownWithoutUp { file });
            };
            if let Some(existing) = up.down_file() {
                return Err(MigrationSourceError::DuplicateVersion {
                    version,
                    first: existing.to_owned(),
                    second: file,
                });
            }
            self.ups.insert(version, up.with_down(file, sql));
        }
        Ok(MigrationSet {
            migrations: self.ups.into_values().collect(),
        })
    }

    fn down(mut self, version: i64, file: String, sql: String) -> Self {
        self.downs.push((version, file, sql));
        self
    }

    fn fail(mut self, error: MigrationSourceError) -> Self {
        self.error.get_or_insert(error);
        self
    }
}

/// Embeds migration files in the binary at compile time and builds a
/// [`MigrationSet`] from them (a `Result`, checked like a directory).
///
/// The directory is relative to the calling crate's `Cargo.toml`; list the files
/// (macros cannot read a directory).
///
/// ```
/// let set = tenant_migrate::embedded_migrations!(
///     "tests/fixtures/migrations",
///     [
///         "20240101000000_create_items.up.sql",
///         "20240101000000_create_items.down.sql",
///         "20240102000000_add_price.up.sql",
///     ]
/// )?;
/// assert_eq!(set.latest_version(), Some(20240102000000));
/// assert!(set.get(20240101000000).is_some_and(|m| m.is_reversible()));
/// # Ok::<(), tenant_migrate::MigrationSourceError>(())
/// ```
#[macro_export]
macro_rules! embedded_migrations {
    ($dir:literal, [$($file:literal),* $(,)?]) => {
        $crate::MigrationSet::builder()
            $(.file($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file))))*
            .build()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_up_and_down_files_in_version_order() {
        let set = MigrationSet::builder()
            .file("2_b.up.sql", "CREATE TABLE b (id INT);")
            .file("1_a.sql", "CREATE TABLE a (id INT);")
            .file("2_b.down.sql", "DROP TABLE b;")
            .build()
            .unwrap();
        let versions: Vec<_> = set.iter().map(Migration::version).collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(set.get(2).unwrap().down_sql(), Some("DROP TABLE b;"));
        assert!(!set.get(1).unwrap().is_reversible());
    }

    #[test]
    fn rejects_duplicates_and_orphans() {
        let duplicate = MigrationSet::builder()
            .file("1_a.sql", "x")
            .file("1_b.sql", "y")
            .build();
        assert!(matches!(
            duplicate,
            Err(MigrationSourceError::DuplicateVersion { version: 1, .. })
        ));
        let orphan = MigrationSet::builder().file("3_c.down.sql", "x").build();
        assert!(matches!(
            orphan,
            Err(MigrationSourceError::DownWithoutUp { .. })
        ));
        let unnamed = MigrationSet::builder().file("init.sql", "x").build();
        assert!(matches!(
            unnamed,
            Err(MigrationSourceError::InvalidName { .. })
        ));
    }

    #[test]
    fn fingerprint_changes_with_any_sql() {
        let a = MigrationSet::builder()
            .adhoc("1_a", "SELECT 1")
            .build()
            .unwrap();
        let b = MigrationSet::builder()
            .adhoc("1_a", "SELECT 2")
            .build()
            .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }
}
