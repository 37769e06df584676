//! The per-database advisory lock, keyed exactly as sqlx keys it so that our
//! migrator and `sqlx migrate run` never work on one database at once.

use std::time::Duration;

use sqlx::{PgConnection, Row};
use tenancy_core::{RetryDecision, RetryPolicy};
use tokio::time::Instant;

/// sqlx's key: `0x3d32ad9e * crc32(database name)` (borrowed from Rails).
pub(crate) fn advisory_lock_key(database: &str) -> i64 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32_ad9e * i64::from(CRC.checksum(database.as_bytes()))
}

/// Polls `pg_try_advisory_lock` with the workspace's backoff until it succeeds or
/// `wait` has passed. `Ok(Err(waited))` means another session kept the lock.
pub(crate) async fn try_lock_within(
    conn: &mut PgConnection,
    key: i64,
    wait: Duration,
) -> Result<Result<(), Duration>, sqlx::Error> {
    let policy = RetryPolicy::default()
        .with_max_attempts(u32::MAX)
        .with_initial_delay(Duration::from_millis(25))
        .with_max_delay(Duration::from_millis(500))
        .with_max_elapsed(Some(wait));
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        let query = sqlx::query("SELECT pg_try_advisory_lock($1)").bind(key);
        let locked = sqlx::Executor::fetch_one(&mut *conn, query)
            .await?
            .try_get::<bool, _>(0)?;
        if locked {
            return Ok(Ok(()));
        }
        attempts += 1;
        match policy.next_delay(attempts, started.elapsed(), RetryDecision::Retry) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return Ok(Err(started.elapsed())),
        }
    }
}

/// Releases the lock taken by [`try_lock_within`].
pub(crate) async fn unlock(conn: &mut PgConnection, key: i64) -> Result<(), sqlx::Error> {
    let query = sqlx::query("SELECT pg_advisory_unlock($1)").bind(key);
    sqlx::Executor::execute(conn, query).await.map(drop)
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
