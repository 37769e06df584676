//! Provisioners, pausers, an admin-user creator and an exporter for databases on
//! this machine or one PostgreSQL server: the embedded default and a self-hosted setup.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod admin_user;
mod exporter;
#[cfg(feature = "postgres")]
mod postgres_server;
#[cfg(feature = "sqlite")]
mod sqlite_files;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use admin_user::LocalAdminUserCreator;
pub use exporter::DumpExporter;
#[cfg(feature = "postgres")]
pub use postgres_server::PostgresServerProvisioner;
#[cfg(feature = "sqlite")]
pub use sqlite_files::SqliteFileProvisioner;

/// `path` with `suffix` appended to its file name (`acme.db` → `acme.db-wal`): the
/// names of a SQLite database's companion files and of an export's checksum.
pub(crate) fn with_suffix(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}
