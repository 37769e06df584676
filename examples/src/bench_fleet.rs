//! What the benchmark binaries share: a fleet of real tenant databases on one
//! PostgreSQL server, made and dropped, and the median of measured rounds.

use sqlx::{Connection, PgConnection};
use tenancy_core::DatabaseUrl;

/// A benchmark's result: any error ends it with its message.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The URLs of `count` tenant databases `<prefix>t00000`, `<prefix>t00001`, … on `server`.
pub fn fleet_urls(server: &DatabaseUrl, prefix: &str, count: usize) -> Vec<DatabaseUrl> {
    (0..count)
        .map(|i| server.with_database(&format!("{prefix}t{i:05}")))
        .collect()
}

/// Creates each database of `urls` that `server` does not have yet (names start
/// with `prefix`, so an earlier run's are reused).
pub async fn create_databases(
    server: &DatabaseUrl,
    prefix: &str,
    urls: &[DatabaseUrl],
) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut admin)
            .await?;
    for name in urls.iter().filter_map(DatabaseUrl::database_name) {
        if !existing.iter().any(|e| e == name) {
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await?;
        }
    }
    admin.close().await?;
    Ok(())
}

/// Drops every database of `urls`, ending the sessions still on them.
pub async fn drop_databases(server: &DatabaseUrl, urls: &[DatabaseUrl]) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    for name in urls.iter().filter_map(DatabaseUrl::database_name) {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    Ok(())
}

/// The median of `values` (NaN when there are none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
