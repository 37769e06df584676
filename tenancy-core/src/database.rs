use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::secret::REDACTED;

/// Which database engine a [`DatabaseUrl`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatabaseKind {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// SQLite (`sqlite:`).
    Sqlite,
}

impl DatabaseKind {
    /// The lowercase name used in storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A database connection URL whose password never shows in `Debug` or `Display`.
///
/// Accepts `postgres://`, `postgresql://` and `sqlite:` URLs. `Display` prints the URL
/// with its password replaced by `[redacted]`, which is safe for logs; the full URL is
/// reached through [`DatabaseUrl::expose`].
///
/// ```
/// use tenancy_core::{DatabaseKind, DatabaseUrl};
///
/// let url: DatabaseUrl = "postgres://app:hunter2@db.example.com:5432/acme".parse()?;
/// assert_eq!(url.kind(), DatabaseKind::Postgres);
/// assert_eq!(url.to_string(), "postgres://app:[redacted]@db.example.com:5432/acme");
/// assert_eq!(url.database_name(), Some("acme"));
/// assert!(url.expose().contains("hunter2"));
/// # Ok::<(), tenancy_core::DatabaseUrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: Url,
    kind: DatabaseKind,
}

/// Why a string is not a usable [`DatabaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseUrlError {
    /// The string is not a URL at all.
    #[error("database URL is malformed ({0}); write it as postgres://user:password@host:5432/dbname or sqlite:path/to/file.db")]
    Malformed(String),
    /// The scheme is neither PostgreSQL nor SQLite.
    #[error(
        "database URL scheme `{0}` is not supported; use postgres://, postgresql:// or sqlite:"
    )]
    UnsupportedScheme(String),
    /// A PostgreSQL URL without a host.
    #[error("PostgreSQL URL has no host; write it as postgres://user:password@host:5432/dbname")]
    MissingHost,
    /// A PostgreSQL URL without a database name.
    #[error("PostgreSQL URL names no database; add it as the path, e.g. postgres://user@host:5432/dbname")]
    MissingDatabase,
    /// A SQLite URL without a path.
    #[error("SQLite URL names no file; write it as sqlite:path/to/file.db or sqlite::memory:")]
    MissingPath,
}

/// The libpq variables a client program would otherwise take from this process.
const INHERITED_LIBPQ_ENV: [&str; 12] = [
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGSSLMODE",
    "PGOPTIONS",
    "PGAPPNAME",
];

impl DatabaseUrl {
    /// Parses and validates a database URL.
    pub fn parse(raw: &str) -> Result<Self, DatabaseUrlError> {
        // Never echo `raw` in an error: it may hold a password.
        let url = Url::parse(raw.trim()).map_err(|e| DatabaseUrlError::Malformed(e.to_string()))?;
        let kind = match url.scheme() {
            "postgres" | "postgresql" => DatabaseKind::Postgres,
            "sqlite" => DatabaseKind::Sqlite,
            other => return Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
        };
        match kind {
            DatabaseKind::Postgres => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(DatabaseUrlError::MissingHost);
                }
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(DatabaseUrlError::MissingDatabase);
                }
            }
            DatabaseKind::Sqlite => {
                let path = url
                    .as_str()
                    .trim_start_matches("sqlite:")
                    .trim_start_matches("//");
                if path.split('?').next().is_none_or(str::is_empty) {
                    return Err(DatabaseUrlError::MissingPath);
                }
            }
        }
        Ok(Self { url, kind })
    }

    /// The database engine.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The full URL, password included. Pass it only to a database driver.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The database name (PostgreSQL) or file path (SQLite), if any.
    pub fn database_name(&self) -> Option<&str> {
        match self.kind {
            DatabaseKind::Postgres => {
                Some(self.url.path().trim_start_matches('/')).filter(|s| !s.is_empty())
            }
            DatabaseKind::Sqlite => {
                let rest = self
                    .url
                    .as_str()
                    .trim_start_matches("sqlite:")
                    .trim_start_matches("//");
                rest.split('?').next().filter(|s| !s.is_empty())
            }
        }
    }

    /// The host, for PostgreSQL URLs.
    pub fn host(&self) -> Option<&str> {
        self.url.host_str()
    }

    /// The same server with another database name (PostgreSQL only; SQLite URLs are
    /// returned unchanged). Used to derive a tenant database URL from a server URL.
    pub fn with_database(&self, name: &str) -> Self {
        let mut url = self.url.clone();
        if self.kind == DatabaseKind::Postgres {
            url.set_path(&format!("/{name}"));
        }
        Self {
            url,
            kind: self.kind,
        }
    }

    /// The libpq environment (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGSSLMODE`, …) naming this PostgreSQL database, for running
    /// PostgreSQL's client programs (`pg_dump`, `pg_restore`, `psql`) without the
    /// password on their command line, where every user of the machine could read
    /// it. Percent-escapes are decoded. Empty for SQLite URLs.
    ///
    /// The values include the password: set them on a child process only, never log
    /// them.
    ///
    /// ```
    /// use tenancy_core::DatabaseUrl;
    ///
    /// let url: DatabaseUrl = "postgres://app:p%40ss@db.example.com:6543/acme?sslmode=require".parse()?;
    /// let env = url.libpq_env();
    /// assert!(env.contains(&("PGHOST", "db.example.com".to_owned())));
    /// assert!(env.contains(&("PGPORT", "6543".to_owned())));
    /// assert!(env.contains(&("PGPASSWORD", "p@ss".to_owned())));
    /// assert!(env.contains(&("PGDATABASE", "acme".to_owned())));
    /// assert!(env.contains(&("PGSSLMODE", "require".to_owned())));
    /// # Ok::<(), tenancy_core::DatabaseUrlError>(())
    /// ```
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        if self.kind != DatabaseKind::Postgres {
            return Vec::new();
        }
        let decode = |raw: &str| {
            url::form_urlencoded::parse(format!("v={}", raw.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        let mut env = Vec::new();
        if let Some(host) = self.url.host_str() {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            env.push(("PGHOST", host.to_owned()));
        }
        if let Some(port) = self.url.port() {
            env.push(("PGPORT", port.to_string()));
        }
        if !self.url.username().is_empty() {
            env.push(("PGUSER", decode(self.url.username())));
        }
        if let Some(password) = self.url.password() {
            env.push(("PGPASSWORD", decode(password)));
        }
        if let Some(name) = self.database_name() {
            env.push(("PGDATABASE", decode(name)));
        }
        for (key, value) in self.url.query_pairs() {
            let var = match key.as_ref() {
                "sslmode" => "PGSSLMODE",
                "sslrootcert" => "PGSSLROOTCERT",
                "sslcert" => "PGSSLCERT",
                "sslkey" => "PGSSLKEY",
                "application_name" => "PGAPPNAME",
                "options" => "PGOPTIONS",
                "connect_timeout" => "PGCONNECT_TIMEOUT",
                _ => continue,
            };
            env.push((var, value.into_owned()));
        }
        env
    }

    /// A PostgreSQL client program (`pg_dump`, `pg_restore`, `psql`) set up to reach
    /// this database through [`libpq_env`](Self::libpq_env): no password on its
    /// command line, `--no-password` so that it fails instead of prompting, none of
    /// this process's own `PG*` variables in the way, and killed if the command's
    /// future is dropped. Add the program's own arguments.
    pub fn client_command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command.arg("--no-password");
        for inherited in INHERITED_LIBPQ_ENV {
            command.env_remove(inherited);
        }
        command.envs(self.libpq_env()).kill_on_drop(true);
        command
    }

    /// The URL with its password replaced by `[redacted]`, safe to log.
    pub fn redacted(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            // Setting a password only fails on URLs that cannot have one, which
            // excludes every URL that has one.
            let _ = url.set_password(Some(REDACTED));
            return url.as_str().replace("%5Bredacted%5D", REDACTED);
        }
        url.as_str().to_owned()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a tenant's database lives: what a [`DatabaseProvisioner`](crate::DatabaseProvisioner)
/// returns and a [`SchemaMigrator`](crate::SchemaMigrator) connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseTarget {
    /// The session connection, used for migrations and for anything that needs a
    /// session of its own (advisory locks, prepared statements, `SET`): a direct
    /// connection or a session-mode pooler, never a transaction-mode pooler.
    pub url: DatabaseUrl,
    /// A transaction-mode pooled connection for the application's short requests
    /// (Supavisor or PgBouncer in transaction mode), when the provider offers one.
    ///
    /// Each transaction may run on another server connection, so nothing that lives
    /// in a session survives: turn named prepared statements off (with sqlx,
    /// `PgConnectOptions::statement_cache_capacity(0)`), or you get errors such as
    /// `prepared statement "sqlx_s_1" does not exist`. Never migrate through it.
    pub transaction_pooler_url: Option<DatabaseUrl>,
    /// The provider's own reference for the database (a Supabase project ref, a
    /// database name, a file path), used to find it again.
    pub external_ref: Option<String>,
    /// What the provider had to repair to hand this database over (a failed project
    /// replaced, a paused one restored), oldest first. Kept on the tenant's record
    /// so that such repairs are never silent.
    pub provisioning_notes: Vec<String>,
}

impl DatabaseTarget {
    /// A target with only a session URL.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            transaction_pooler_url: None,
            external_ref: None,
            provisioning_notes: Vec::new(),
        }
    }

    /// Sets the transaction-mode pooled URL (see
    /// [`transaction_pooler_url`](Self::transaction_pooler_url)).
    pub fn with_transaction_pooler_url(mut self, url: DatabaseUrl) -> Self {
        self.transaction_pooler_url = Some(url);
        self
    }

    /// Adds a note on what the provider repaired (see
    /// [`provisioning_notes`](Self::provisioning_notes)).
    pub fn with_provisioning_note(mut self, note: impl Into<String>) -> Self {
        self.provisioning_notes.push(note.into());
        self
    }

    /// Sets the provider's reference.
    pub fn with_external_ref(mut self, external_ref: impl Into<String>) -> Self {
        self.external_ref = Some(external_ref.into());
        self
    }

    /// The database engine of the session URL.
    pub fn kind(&self) -> DatabaseKind {
        self.url.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_and_redacts() {
        let url = DatabaseUrl::parse("postgresql://u:p%40ss@localhost:5432/acme?sslmode=require")
            .unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        assert_eq!(url.database_name(), Some("acme"));
        let shown = format!("{url} {url:?}");
        assert!(
            !shown.contains("p%40ss") && !shown.contains("p@ss"),
            "{shown}"
        );
        assert!(shown.contains("u:[redacted]@localhost"), "{shown}");
        assert!(url.expose().contains("p%40ss"));
    }

    #[test]
    fn parses_sqlite() {
        let url = DatabaseUrl::parse("sqlite:data/acme.db?mode=rwc").unwrap();
        assert_eq!(url.kind(), DatabaseKind::Sqlite);
        assert_eq!(url.database_name(), Some("data/acme.db"));
        let abs = DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap();
        assert_eq!(abs.database_name(), Some("/tmp/x.db"));
    }

    #[test]
    fn rejects_malformed_urls_without_echoing_them() {
        let err = DatabaseUrl::parse("not a url with secret").unwrap_err();
        assert!(matches!(err, DatabaseUrlError::Malformed(_)));
        assert!(!err.to_string().contains("secret"));
        assert_eq!(
            DatabaseUrl::parse("mysql://u:p@h/db").unwrap_err(),
            DatabaseUrlError::UnsupportedScheme("mysql".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h:5432").unwrap_err(),
            DatabaseUrlError::MissingDatabase
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:").unwrap_err(),
            DatabaseUrlError::MissingPath
        );
    }

    #[test]
    fn derives_a_sibling_database() {
        let server = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/postgres").unwrap();
        let tenant = server.with_database("tenant_acme");
        assert_eq!(
            tenant.expose(),
            "postgres://postgres@127.0.0.1:5432/tenant_acme"
        );
    }

    #[test]
    fn libpq_env_names_the_database_without_a_url() {
        let url = DatabaseUrl::parse("postgres://ops+1@[::1]/tenant_acme").unwrap();
        let env = url.libpq_env();
        assert_eq!(
            env,
            vec![
                ("PGHOST", "::1".to_owned()),
                ("PGUSER", "ops+1".to_owned()),
                ("PGDATABASE", "tenant_acme".to_owned()),
            ]
        );
        let sqlite = DatabaseUrl::parse("sqlite:tenants/acme.db").unwrap();
        assert!(sqlite.libpq_env().is_empty());
    }
}
