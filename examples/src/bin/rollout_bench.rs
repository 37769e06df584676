//! Benchmark of a fleet rollout against its floor and the seed's sequential loop.
//!
//! Creates `--tenants N` databases (`tk_bench_t00000`, …) on the local PostgreSQL
//! (`DATABASE_URL`), gives each an earlier migration (a real fleet has a history;
//! `--fresh` skips this), then migrates all of them four ways, resetting them in
//! between, and prints the figures side by side:
//!
//! 1. the rollout (`Rollout`, strategy all, SQLite state store: what
//!    `migrate run --strategy all` does), with its advisory lock, history table,
//!    state writes and leases;
//! 2. the per-tenant migrator alone in a bare parallel loop (its lock and history,
//!    no state store), to show where the rollout's overhead lies;
//! 3. the floor: the same SQL through a fresh connection per tenant, at the same
//!    concurrency, with no bookkeeping at all;
//! 4. the seed's approach: the same SQL, one tenant after another.
//!
//! Peak memory (`VmHWM`) is read at start, once the tenant list is loaded, and
//! after the rollouts. To see it at fleet sizes this machine cannot hold as
//! databases, add `--phantoms K`: K more tenants whose databases do not exist (each
//! goes through claim, connect, failure and outcome like any other), e.g.
//! `--tenants 0 --phantoms 10000 --rounds 1 --skip-sequential`. The databases are dropped
//! at the end unless `--keep` is given (creating and dropping a thousand databases
//! takes minutes; `--keep` lets you run the benchmark again without that).
//!
//! ```text
//! cargo run --release -p tenancy-examples --bin rollout_bench -- --tenants 1000 --concurrency 4
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt, TryStreamExt};
use sqlx::{Connection, PgConnection};
use tenancy_core::{
    DatabaseTarget, DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantId,
};
use tenant_migrate::{MigrationSet, Rollout, SqliteRolloutStore, Strategy, TenantMigrator};
use time::OffsetDateTime;

/// The 3-statement migration every tenant receives.
const MIGRATION: &str = "CREATE TABLE bench_items (id BIGINT PRIMARY KEY, name TEXT);
CREATE INDEX bench_items_name ON bench_items (name);
ALTER TABLE bench_items ADD COLUMN created_at TIMESTAMPTZ DEFAULT now();
";

/// An earlier migration every tenant already has (a real fleet has a history).
const BASELINE: &str = "CREATE TABLE IF NOT EXISTS bench_baseline (id INT);";

/// Removes everything, history included (set-up, not timed).
const RESET_ALL: &str = "DROP TABLE IF EXISTS bench_items; DROP TABLE IF EXISTS bench_baseline; \
     DROP TABLE IF EXISTS _sqlx_migrations;";

/// Undoes the benchmarked migration between phases (not timed).
const RESET: &str =
    "DROP TABLE IF EXISTS bench_items; DELETE FROM _sqlx_migrations WHERE version = 20240102000000;";

const PREFIX: &str = "tk_bench_";

#[derive(Debug, Parser)]
#[command(about = "Rollout vs floor vs sequential loop over N tenant databases")]
struct Args {
    /// Number of tenant databases.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Tenants in flight at once (rollout and floor alike).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Keep the databases at the end (to rerun without creating them again).
    #[arg(long)]
    keep: bool,
    /// Skip the sequential loop (it takes N × ~17 ms).
    #[arg(long)]
    skip_sequential: bool,
    /// Rounds of (rollout, migrator only, floor); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Extra tenants whose databases do not exist (each fails at connect): grows
    /// the fleet the rollout tracks, to read peak memory beyond the databases this
    /// machine can hold.
    #[arg(long, default_value_t = 0)]
    phantoms: usize,
    /// Start from empty databases: the rollout also creates each history table
    /// (by default every tenant already has an earlier migration in its history).
    #[arg(long)]
    fresh: bool,
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args = Args::parse();
    let server = DatabaseUrl::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )?;
    let urls: Vec<DatabaseUrl> = (0..args.tenants)
        .map(|i| server.with_database(&format!("{PREFIX}t{i:05}")))
        .collect();
    let started = Instant::now();
    create_databases(&server, &urls).await?;
    eprintln!(
        "{} databases ready in {:.1?}",
        urls.len(),
        started.elapsed()
    );

    run_everywhere(&urls, args.concurrency, RESET_ALL).await?;
    let baseline = if args.fresh {
        None
    } else {
        Some(baseline_set()?)
    };
    if let Some(set) = &baseline {
        apply_everywhere(&urls, args.concurrency, set).await?;
    }
    let set = bench_set(baseline)?;
    let reset = if args.fresh { RESET_ALL } else { RESET };

    let phantoms: Vec<DatabaseUrl> = (0..args.phantoms)
        .map(|i| server.with_database(&format!("{PREFIX}missing_t{i:05}")))
        .collect();
    let rss_before = peak_rss_kib();
    let mut rss_with_list = 0;
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        let (rollout, rss) = time_rollout(&urls, &phantoms, args.concurrency, set.clone()).await?;
        rss_with_list = rss_with_list.max(rss);
        run_everywhere(&urls, args.concurrency, reset).await?;
        let started = Instant::now();
        apply_everywhere(&urls, args.concurrency, &set).await?;
        let migrator_only = started.elapsed();
        run_everywhere(&urls, args.concurrency, reset).await?;
        let floor = time_floor(&urls, args.concurrency).await?;
        run_everywhere(&urls, args.concurrency, reset).await?;
        eprintln!(
            "round: rollout {rollout:.2?}, migrator only {migrator_only:.2?}, floor {floor:.2?}"
        );
        rounds.push((rollout, migrator_only, floor));
    }
    let rss_after = peak_rss_kib();
    let median = |pick: fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut values: Vec<Duration> = rounds.iter().map(pick).collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    let (rollout, migrator_only, floor) = (median(|r| r.0), median(|r| r.1), median(|r| r.2));
    let sequential = if args.skip_sequential {
        None
    } else {
        Some(time_floor(&urls, 1).await?)
    };
    run_everywhere(&urls, args.concurrency, RESET_ALL).await?;

    let times = Times {
        rollout,
        migrator_only,
        floor,
        sequential,
    };
    report(&args, &times, [rss_before, rss_with_list, rss_after]);
    if !args.keep {
        drop_databases(&server, &urls).await?;
    }
    Ok(())
}

/// Wall times of the phases.
#[derive(Debug)]
struct Times {
    rollout: Duration,
    migrator_only: Duration,
    floor: Duration,
    sequential: Option<Duration>,
}

fn report(args: &Args, times: &Times, [rss_before, rss_with_list, rss_after]: [u64; 3]) {
    let Times {
        rollout,
        migrator_only,
        floor,
        sequential,
    } = *times;
    let n = args.tenants as f64;
    let rate = |d: Duration| n / d.as_secs_f64();
    let history = if args.fresh {
        "empty databases"
    } else {
        "one earlier migration in each history"
    };
    println!(
        "tenants: {} (+{} without a database), concurrency: {}, {history}, median of {} rounds",
        args.tenants, args.phantoms, args.concurrency, args.rounds
    );
    println!(
        "rollout (strategy all): {:>8.2} s  {:>7.1} tenants/s",
        rollout.as_secs_f64(),
        rate(rollout)
    );
    println!(
        "migrator only (no state): {:>6.2} s  {:>7.1} tenants/s",
        migrator_only.as_secs_f64(),
        rate(migrator_only)
    );
    println!(
        "floor (bare parallel):  {:>8.2} s  {:>7.1} tenants/s",
        floor.as_secs_f64(),
        rate(floor)
    );
    println!(
        "rollout / floor throughput: {:.0} %  (migrator only / floor: {:.0} %)",
        100.0 * rate(rollout) / rate(floor),
        100.0 * rate(migrator_only) / rate(floor)
    );
    if let Some(sequential) = sequential {
        println!(
            "sequential loop:        {:>8.2} s  {:>7.1} tenants/s",
            sequential.as_secs_f64(),
            rate(sequential)
        );
        println!(
            "rollout speed-up over sequential: {:.2}x",
            sequential.as_secs_f64() / rollout.as_secs_f64()
        );
    }
    println!(
        "peak RSS: {rss_before} KiB at start, {rss_with_list} KiB with the tenant list loaded, \
         {rss_after} KiB after the rollouts"
    );
}

/// The rollout, timed from planning to the final report; also the peak RSS once
/// the tenant list is loaded, before the rollout starts.
async fn time_rollout(
    urls: &[DatabaseUrl],
    phantoms: &[DatabaseUrl],
    concurrency: usize,
    set: MigrationSet,
) -> BenchResult<(Duration, u64)> {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let now = OffsetDateTime::now_utc();
    for (i, url) in urls.iter().chain(phantoms).enumerate() {
        let id = TenantId::new(format!("t{i:05}"))?;
        let mut tenant = NewTenant::with_id(id, "bench", "ops@example.com")?.into_tenant(now);
        tenant.database = Some(DatabaseTarget::new(url.clone()));
        directory.insert(&tenant).await?;
    }
    let state = std::env::temp_dir().join(format!("rollout-bench-{}.db", std::process::id()));
    let store = Arc::new(SqliteRolloutStore::open(&format!("sqlite:{}", state.display())).await?);
    let rollout = Rollout::of_migrations(directory, set, store)
        .strategy(Strategy::AllAtOnce)
        .concurrency(concurrency)
        .build();
    let rss_with_list = peak_rss_kib();
    let started = Instant::now();
    let report = rollout.run().await?;
    let elapsed = started.elapsed();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", state.display()));
    }
    let expected = (urls.len() as u64, phantoms.len() as u64);
    if (report.counts.succeeded, report.counts.failed) != expected {
        return Err(format!("rollout did not complete: {:?}", report.counts).into());
    }
    Ok((elapsed, rss_with_list))
}

/// The per-tenant migrator alone (lock, history, one connection per tenant) in a
/// bare parallel loop: separates its bookkeeping from the rollout's.
async fn apply_everywhere(
    urls: &[DatabaseUrl],
    concurrency: usize,
    set: &MigrationSet,
) -> BenchResult<()> {
    let migrator = TenantMigrator::new(set.clone());
    stream::iter(urls)
        .map(|url| {
            let migrator = migrator.clone();
            async move { migrator.apply(&DatabaseTarget::new(url.clone())).await }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn baseline_set() -> BenchResult<MigrationSet> {
    Ok(MigrationSet::builder()
        .file("20240101000000_baseline.sql", BASELINE)
        .build()?)
}

/// The benchmarked migration, after the baseline when there is one.
fn bench_set(baseline: Option<MigrationSet>) -> BenchResult<MigrationSet> {
    let builder = baseline
        .iter()
        .flatten()
        .fold(MigrationSet::builder(), |b, m| b.migration(m.clone()));
    Ok(builder
        .file("20240102000000_bench.sql", MIGRATION)
        .build()?)
}

/// The same SQL through a fresh connection per tenant, `concurrency` at a time.
async fn time_floor(urls: &[DatabaseUrl], concurrency: usize) -> BenchResult<Duration> {
    let started = Instant::now();
    run_everywhere(urls, concurrency, MIGRATION).await?;
    Ok(started.elapsed())
}

async fn run_everywhere(urls: &[DatabaseUrl], concurrency: usize, sql: &str) -> BenchResult<()> {
    stream::iter(urls)
        .map(|url| async move {
            let mut conn = PgConnection::connect(url.expose()).await?;
            sqlx::raw_sql(sql).execute(&mut conn).await?;
            conn.close().await
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    Ok(())
}

async fn create_databases(server: &DatabaseUrl, urls: &[DatabaseUrl]) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tk\\_bench\\_%'")
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

async fn drop_databases(server: &DatabaseUrl, urls: &[DatabaseUrl]) -> BenchResult<()> {
    let started = Instant::now();
    let mut admin = PgConnection::connect(server.expose()).await?;
    for name in urls.iter().filter_map(DatabaseUrl::database_name) {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    eprintln!(
        "{} databases dropped in {:.1?}",
        urls.len(),
        started.elapsed()
    );
    Ok(())
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
