//! Provisioners and an admin-user creator for databases on this machine or one
//! PostgreSQL server: the embedded default and a self-hosted setup.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod admin_user;
#[cfg(feature = "postgres")]
mod postgres_server;
#[cfg(feature = "sqlite")]
mod sqlite_files;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use admin_user::LocalAdminUserCreator;
#[cfg(feature = "postgres")]
pub use postgres_server::PostgresServerProvisioner;
#[cfg(feature = "sqlite")]
pub use sqlite_files::SqliteFileProvisioner;
