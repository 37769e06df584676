//! The scratch copy of a tenant database a rehearsal migrates, and its removal.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;
use sqlx::Connection;
use tenancy_core::{DatabaseKind, DatabaseTarget, DatabaseUrl};

use super::RehearsalError;
use crate::connection::TenantConnection;
use crate::MigrateOptions;

/// How a rehearsal copied the tenant's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CopyMethod {
    /// `CREATE DATABASE … TEMPLATE …` on the tenant's server: fast and exact, but
    /// only possible while nobody else is connected to the tenant's database, and
    /// PostgreSQL keeps new connections out of it until the copy is made. Chosen
    /// only when asked for ([`Rehearsal::copy_method`](super::Rehearsal::copy_method)):
    /// for an idle tenant or a maintenance window.
    Template,
    /// `pg_dump --format=custom | pg_restore` into a new database on the tenant's
    /// server, the default: the tenant's service goes on meanwhile. Needs
    /// PostgreSQL's client programs on this machine.
    DumpRestore,
    /// SQLite's `VACUUM INTO`: a consistent copy of the file beside it.
    FileCopy,
}

impl std::fmt::Display for CopyMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Template => "template",
            Self::DumpRestore => "pg_dump | pg_restore",
            Self::FileCopy => "file copy",
        })
    }
}

/// A scratch database: named before it exists, so that removing it is always
/// possible and always safe (`IF EXISTS`).
#[derive(Debug)]
pub(crate) struct ScratchDatabase {
    target: DatabaseTarget,
    place: Place,
    removed: bool,
}

#[derive(Debug, Clone)]
enum Place {
    /// A database on the tenant's server, and how to reach the server to drop it:
    /// its maintenance database, or the tenant's where that refuses us.
    Postgres {
        server: DatabaseUrl,
        source: Box<DatabaseTarget>,
        name: String,
    },
    /// A file.
    Sqlite { path: PathBuf },
}

impl ScratchDatabase {
    /// Names a scratch database beside `source`; nothing is created yet.
    pub(crate) fn name_beside(source: &DatabaseTarget) -> Result<Self, RehearsalError> {
        let unsupported = || RehearsalError::Unsupported {
            database: source.url.redacted(),
        };
        // The time in the name lets a later rehearsal find a copy that a killed
        // process left behind (see `remove_stale`).
        let tag = format!("{}_{:04x}", unix_now(), fastrand::u16(..));
        let (url, place) = match source.kind() {
            DatabaseKind::Postgres => {
                let source_name = source.url.database_name().ok_or_else(unsupported)?;
                // Identifiers end at 63 bytes: keep the tenant's name recognisable.
                let stem: String = source_name.chars().take(32).collect();
                let name = format!("{stem}_rehearsal_{tag}");
                let server = maintenance_url(&source.url);
                let url = source.url.with_database(&name);
                let place = Place::Postgres {
                    server,
                    source: Box::new(source.clone()),
                    name,
                };
                (url, place)
            }
            DatabaseKind::Sqlite => {
                let file = Path::new(source.url.database_name().ok_or_else(unsupported)?);
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("tenant");
                let stem: String = stem
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                    .collect();
                let path = file.with_file_name(format!("{stem}.rehearsal-{tag}.db"));
                let url = DatabaseUrl::parse(&format!("sqlite:{}", path.display()))
                    .map_err(|_| unsupported())?;
                (url, Place::Sqlite { path })
            }
            _ => return Err(unsupported()),
        };
        Ok(Self {
            target: DatabaseTarget::new(url),
            place,
            removed: false,
        })
    }

    /// Where the copy is.
    pub(crate) fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    /// Fills the scratch database with a copy of `source`: by dump and restore
    /// (PostgreSQL; from a template when `forced` says so), or by `VACUUM INTO`
    /// (SQLite).
    pub(crate) async fn copy_from(
        &self,
        source: &DatabaseTarget,
        forced: Option<CopyMethod>,
        options: &MigrateOptions,
    ) -> Result<CopyMethod, RehearsalError> {
        match &self.place {
            Place::Sqlite { path } => {
                vacuum_into(source, path, options).await?;
                Ok(CopyMethod::FileCopy)
            }
            Place::Postgres { server, name, .. } => {
                let mut admin = connect(server, source, options).await?;
                let result = self.copy_postgres(&mut admin, source, name, forced).await;
                let _ = admin.close().await;
                result
            }
        }
    }

    async fn copy_postgres(
        &self,
        admin: &mut sqlx::PgConnection,
        source: &DatabaseTarget,
        name: &str,
        forced: Option<CopyMethod>,
    ) -> Result<CopyMethod, RehearsalError> {
        let source_name = source.url.database_name().unwrap_or_default();
        let copy_error = |method, reason: String| RehearsalError::Copy {
            database: source.url.redacted(),
            method,
            reason,
        };
        if forced == Some(CopyMethod::Template) {
            let template = format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote(name),
                quote(source_name)
            );
            return match sqlx::Executor::execute(&mut *admin, template.as_str()).await {
                Ok(_) => Ok(CopyMethod::Template),
                Err(error) => Err(copy_error(CopyMethod::Template, error.to_string())),
            };
        }
        let create = format!("CREATE DATABASE {}", quote(name));
        sqlx::Executor::execute(&mut *admin, create.as_str())
            .await
            .map_err(|e| copy_error(CopyMethod::DumpRestore, e.to_string()))?;
        dump_restore(&source.url, &self.target.url)
            .await
            .map_err(|reason| copy_error(CopyMethod::DumpRestore, reason))?;
        Ok(CopyMethod::DumpRestore)
    }

    /// Removes the copies of the same tenant made more than [`STALE_AFTER`] ago,
    /// which a killed process left behind; best effort, each failure only logged.
    pub(crate) async fn remove_stale(&self, options: &MigrateOptions) {
        let stale = |name: &str| {
            name.rsplit('_')
                .nth(1)
                .and_then(|secs| secs.parse::<u64>().ok())
                .is_some_and(|made| unix_now().saturating_sub(made) > STALE_AFTER.as_secs())
        };
        let found = match &self.place {
            Place::Postgres {
                server,
                source,
                name,
            } => {
                let Some((stem, _)) = name.split_once("_rehearsal_") else {
                    return;
                };
                stale_databases(server, source, stem, options).await
            }
            Place::Sqlite { path } => stale_files(path),
        };
        for place in found.into_iter().filter(|place| stale(&place.label())) {
            tracing::warn!(scratch = %place.label(), "removing a rehearsal copy left behind by an earlier run");
            if let Err(error) = remove(&place, &self.target, options).await {
                tracing::error!(%error, "could not remove a rehearsal copy left behind");
            }
        }
    }

    /// Removes the scratch database (`WITH (FORCE)`: sessions left on it end), or
    /// the file; removing one that was never created succeeds.
    pub(crate) async fn remove(mut self, options: &MigrateOptions) -> Result<(), RehearsalError> {
        self.removed = true;
        remove(&self.place, &self.target, options).await
    }
}

impl Drop for ScratchDatabase {
    /// A rehearsal dropped half way (its task cancelled) still removes its copy,
    /// on a task of its own when a runtime is there to run it.
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let (place, target) = (self.place.clone(), self.target.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = remove(&place, &target, &MigrateOptions::default()).await {
                        tracing::error!(%error, "rehearsal scratch copy left behind");
                    }
                });
            }
            Err(_) => tracing::error!(
                scratch = %target.url.redacted(),
                "rehearsal scratch copy left behind: drop it by hand"
            ),
        }
    }
}

async fn remove(
    place: &Place,
    target: &DatabaseTarget,
    options: &MigrateOptions,
) -> Result<(), RehearsalError> {
    let cleanup = |reason: String| RehearsalError::Cleanup {
        scratch: target.url.redacted(),
        reason,
    };
    match place {
        Place::Sqlite { path } => {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                match tokio::fs::remove_file(&file).await {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(cleanup(error.to_string())),
                }
            }
            Ok(())
        }
        Place::Postgres {
            server,
            source,
            name,
        } => {
            let mut admin = connect(server, source, options)
                .await
                .map_err(|e| cleanup(e.to_string()))?;
            // A copy abandoned half way (Ctrl-C) may still be running on the server:
            // stop it first, so that it cannot finish after the drop.
            let creating = format!("CREATE DATABASE {}%", quote(name));
            let _ = sqlx::query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND query LIKE $1",
            )
            .bind(creating)
            .fetch_all(&mut admin)
            .await;
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(name));
            let dropped = sqlx::Executor::execute(&mut admin, drop.as_str()).await;
            let _ = admin.close().await;
            dropped.map(|_| ()).map_err(|e| cleanup(e.to_string()))
        }
    }
}

/// The tenant's server with its maintenance database `postgres`: a copy from a
/// template must not be made from a session on the template itself.
fn maintenance_url(url: &DatabaseUrl) -> DatabaseUrl {
    url.with_database("postgres")
}

/// A connection to `server`'s maintenance database, or, where it refuses us, to
/// `fallback` (a template copy then fails and dump and restore is used).
async fn connect(
    server: &DatabaseUrl,
    fallback: &DatabaseTarget,
    options: &MigrateOptions,
) -> Result<sqlx::PgConnection, RehearsalError> {
    let maintenance = DatabaseTarget::new(server.clone());
    let opened = match TenantConnection::open(&maintenance, options).await {
        Ok(conn) => conn,
        Err(_) => TenantConnection::open(fallback, options).await?,
    };
    opened.into_postgres().ok_or(RehearsalError::Unsupported {
        database: fallback.url.redacted(),
    })
}

/// `VACUUM INTO`: a consistent copy even while the tenant's service writes.
#[cfg(feature = "sqlite")]
async fn vacuum_into(
    source: &DatabaseTarget,
    path: &Path,
    options: &MigrateOptions,
) -> Result<(), RehearsalError> {
    let copy_error = |reason: String| RehearsalError::Copy {
        database: source.url.redacted(),
        method: CopyMethod::FileCopy,
        reason,
    };
    let Some(mut conn) = TenantConnection::open(source, options).await?.into_sqlite() else {
        return Err(RehearsalError::Unsupported {
            database: source.url.redacted(),
        });
    };
    let target = path
        .to_str()
        .ok_or_else(|| copy_error("the path is not UTF-8".into()))?;
    let result = sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result.map(|_| ()).map_err(|e| copy_error(e.to_string()))
}

#[cfg(not(feature = "sqlite"))]
async fn vacuum_into(
    source: &DatabaseTarget,
    _: &Path,
    _: &MigrateOptions,
) -> Result<(), RehearsalError> {
    Err(RehearsalError::Unsupported {
        database: source.url.redacted(),
    })
}

/// `pg_dump --format=custom` of `source` piped into `pg_restore` into `scratch`,
/// each reached through the libpq environment (no password on a command line).
async fn dump_restore(source: &DatabaseUrl, scratch: &DatabaseUrl) -> Result<(), String> {
    let mut dump = source
        .client_command("pg_dump")
        .args(["--format=custom", "--no-owner", "--no-privileges"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| missing_tool("pg_dump", &e))?;
    let piped: Stdio = dump
        .stdout
        .take()
        .ok_or("pg_dump gave no output")?
        .try_into()
        .map_err(|e: std::io::Error| e.to_string())?;
    let restore = scratch
        .client_command("pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--dbname",
        ])
        .arg(scratch.database_name().unwrap_or_default())
        .stdin(piped)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| missing_tool("pg_restore", &e))?;
    let (dumped, restored) = tokio::join!(dump.wait_with_output(), restore.wait_with_output());
    let (dumped, restored) = (
        dumped.map_err(|e| e.to_string())?,
        restored.map_err(|e| e.to_string())?,
    );
    for (tool, output) in [("pg_dump", &dumped), ("pg_restore", &restored)] {
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "{tool} failed ({}): {}",
                output.status,
                said.trim()
            ));
        }
    }
    Ok(())
}

fn missing_tool(tool: &str, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{tool} is not installed here: install PostgreSQL's client programs (the server's major version or newer)"
        )
    } else {
        format!("{tool} could not start: {error}")
    }
}

/// A double-quoted identifier.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// How old a copy must be to count as left behind: no rehearsal runs this long.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Place {
    /// The name that carries the copy's time: the database's, or the file's stem.
    fn label(&self) -> String {
        match self {
            Self::Postgres { name, .. } => name.clone(),
            Self::Sqlite { path } => path
                .file_stem()
                .map(|stem| stem.to_string_lossy().replace(['.', '-'], "_"))
                .unwrap_or_default(),
        }
    }
}

/// The copies of the tenant `stem` on `server` (any age).
async fn stale_databases(
    server: &DatabaseUrl,
    source: &DatabaseTarget,
    stem: &str,
    options: &MigrateOptions,
) -> Vec<Place> {
    let Ok(mut admin) = connect(server, source, options).await else {
        return Vec::new();
    };
    let pattern = format!("{}\\_rehearsal\\_%", stem.replace('_', "\\_"));
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    let _ = admin.close().await;
    names
        .into_iter()
        .map(|name| Place::Postgres {
            server: server.clone(),
            source: Box::new(source.clone()),
            name,
        })
        .collect()
}

/// The copy files beside `path` made for the same tenant (any age).
fn stale_files(path: &Path) -> Vec<Place> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((stem, _)) = name.split_once(".rehearsal-") else {
        return Vec::new();
    };
    let prefix = format!("{stem}.rehearsal-");
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|found| {
            found
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".db"))
        })
        .map(|path| Place::Sqlite { path })
        .collect()
}
