//! The per-database advisory lock, keyed exactly as sqlx keys it so that our
//! migrator and `sqlx migrate run` never work on one database at once.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tenancy_core::{RetryDecision, RetryPolicy};
use tokio::time::Instant;

/// sqlx's key: `0x3d32ad9e * crc32(database name)` (borrowed from Rails).
pub(crate) fn advisory_lock_key(database: &str) -> i64 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32_ad9e * i64::from(CRC.checksum(database.as_bytes()))
}

/// Polls `sql`, a query whose first column of its first row is the result of
/// `pg_try_advisory_lock`, with the workspace's backoff until it reports the lock
/// taken or `wait` has passed. Returns the rows of the successful attempt;
/// `Ok(Err(waited))` means another session kept the lock.
pub(crate) async fn try_lock_within(
    conn: &mut PgConnection,
    sql: &str,
    wait: Duration,
) -> Result<Result<Vec<PgRow>, Duration>, sqlx::Error> {
    let policy = RetryPolicy::default()
        .with_max_attempts(u32::MAX)
        .with_initial_delay(Duration::from_millis(25))
        .with_max_delay(Duration::from_millis(500))
        .with_max_elapsed(Some(wait));
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        // Without parameters the query goes through the simple protocol: one
        // round trip on a fresh connection, where a prepared one costs two.
        let rows = sqlx::Executor::fetch_all(&mut *conn, sql).await?;
        let locked = match rows.first() {
            Some(row) => row.try_get::<bool, _>(0)?,
            None => false,
        };
        if locked {
            return Ok(Ok(rows));
        }
        attempts += 1;
        match policy.next_delay(attempts, started.elapsed(), RetryDecision::Retry) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return Ok(Err(started.elapsed())),
        }
    }
}

/// Takes the lock and nothing else.
pub(crate) fn lock_sql(key: i64) -> String {
    format!("SELECT pg_try_advisory_lock({key})")
}

/// Releases the lock taken by [`try_lock_within`].
pub(crate) async fn unlock(conn: &mut PgConnection, key: i64) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(conn, unlock_sql(key).as_str())
        .await
        .map(drop)
}

/// Releases the lock.
pub(crate) fn unlock_sql(key: i64) -> String {
    format!("SELECT pg_advisory_unlock({key})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_sqlx() {
        // crc32("postgres") = 0x156a8775 (ISO-HDLC, as zlib computes it).
        assert_eq!(
            advisory_lock_key("postgres"),
            0x3d32_ad9e_i64 * 0x156a_8775_i64
        );
        assert_ne!(advisory_lock_key("tenant_a"), advisory_lock_key("tenant_b"));
    }
}
