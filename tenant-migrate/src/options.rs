use std::time::Duration;

/// How a [`TenantMigrator`](crate::TenantMigrator) behaves on each tenant.
///
/// ```
/// use std::time::Duration;
/// use tenant_migrate::MigrateOptions;
///
/// let options = MigrateOptions::default()
///     .with_lock_timeout(Some(Duration::from_secs(2)))
///     .with_lock_wait(Duration::from_secs(10));
/// assert_eq!(options.lock_timeout(), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    lock_wait: Duration,
    connect_timeout: Duration,
    ignore_missing: bool,
}

impl Default for MigrateOptions {
    /// `lock_timeout` 5 s, `statement_timeout` 5 min, wait up to 30 s for the
    /// migration lock, connect within 10 s, refuse versions missing from the set.
    fn default() -> Self {
        Self {
            lock_timeout: Some(Duration::from_secs(5)),
            statement_timeout: Some(Duration::from_secs(300)),
            lock_wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            ignore_missing: false,
        }
    }
}

impl MigrateOptions {
    /// PostgreSQL `lock_timeout` while a migration runs (`None`: the server's setting),
    /// so a migration never queues for long behind a long query, blocking writes
    /// meanwhile. On SQLite it is the busy timeout.
    pub fn with_lock_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// PostgreSQL `statement_timeout` while a migration runs (`None`: the server's setting).
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// How long to wait for another migrator to release the tenant's migration lock
    /// before failing with [`MigrateError::Locked`](crate::MigrateError::Locked).
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How long to wait for a connection to the tenant database.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether versions recorded in the database but absent from the set are
    /// tolerated (sqlx's `set_ignore_missing`). Off by default.
    pub fn with_ignore_missing(mut self, ignore: bool) -> Self {
        self.ignore_missing = ignore;
        self
    }

    /// The `lock_timeout` set while migrating.
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }

    /// The `statement_timeout` set while migrating.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The longest wait for the migration lock.
    pub fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The longest wait for a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether unknown applied versions are tolerated.
    pub fn ignore_missing(&self) -> bool {
        self.ignore_missing
    }

    /// `lock_timeout` and `statement_timeout` as PostgreSQL values (`"1500ms"`).
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres_timeouts(&self) -> (Option<String>, Option<String>) {
        let millis = |value: Option<Duration>| value.map(|v| format!("{}ms", v.as_millis()));
        (millis(self.lock_timeout), millis(self.statement_timeout))
    }

    /// `SET [LOCAL] lock_timeout = …; SET [LOCAL] statement_timeout = …;` for PostgreSQL.
    #[cfg(feature = "postgres")]
    pub(crate) fn timeout_sql(&self, scope: &str) -> String {
        let (lock, statement) = self.postgres_timeouts();
        let mut sql = String::new();
        for (name, value) in [("lock_timeout", lock), ("statement_timeout", statement)] {
            if let Some(value) = value {
                sql.push_str(&format!("SET {scope}{name} = '{value}'; "));
            }
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "postgres")]
    fn renders_timeouts_in_milliseconds() {
        let options = MigrateOptions::default()
            .with_lock_timeout(Some(Duration::from_millis(1500)))
            .with_statement_timeout(None);
        assert_eq!(
            options.timeout_sql("LOCAL "),
            "SET LOCAL lock_timeout = '1500ms'; "
        );
        let none = options.with_lock_timeout(None);
        assert_eq!(none.timeout_sql(""), "");
    }
}
