use std::path::PathBuf;

/// Why a set of migrations could not be loaded or assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationSourceError {
    /// The migrations directory (or one of its files) cannot be read.
    #[error("cannot read migrations at {path}: {source}; check the path and its permissions")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A migration name does not follow sqlx's `<VERSION>_<description>[.up|.down].sql`.
    #[error("migration name `{name}` is invalid: {reason}")]
    InvalidName {
        /// The file or ad-hoc name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two migrations share a version.
    #[error("migrations `{first}` and `{second}` share version {version}; give one of them a new version")]
    DuplicateVersion {
        /// The shared version.
        version: i64,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// A `.down.sql` file has no matching `.up.sql`.
    #[error(
        "down migration `{file}` has no matching `.up.sql` file; add it or remove the down file"
    )]
    DownWithoutUp {
        /// The orphan down file.
        file: String,
    },
}
