//! Benchmark of `migrate drift` against `migrate status` over the same fleet of
//! real tenant databases, and of the peak memory of `migrate drift` as the fleet
//! grows.
//!
//! Creates `--tenants N` databases (`tk_driftb_t00000`, …) on the local PostgreSQL
//! (`DATABASE_URL`), migrates each to a small shop schema (five tables, their
//! indexes and foreign keys; five migrations) and records the rollout with
//! `migrate run`, then times, per round and in a rotating order:
//!
//! 1. `migrate status --json`: the rollout's state, and each tenant's applied
//!    version read live (one connection and one query per tenant);
//! 2. `migrate drift --json`: each tenant's history and schema digest read (one
//!    connection, two requests per tenant), then the schema of one tenant per
//!    distinct digest; grouped, compared and recorded;
//!
//! both at `--concurrency`, both as child processes (start-up included). The
//! ratio drift / status is taken within each round; medians are printed.
//!
//! Peak memory is `migrate drift`'s own (its max RSS, through `rollout_bench`'s
//! peak-memory wrapper), at each size of `--fleets`: a flat figure means memory
//! holds a few bytes per tenant and one schema per group, not a schema per tenant.
//!
//! ```text
//! cargo build --release -p tenancy-examples --bins
//! ./target/release/drift_bench --tenants 1000 --concurrency 8
//! ```
//!
//! The databases are dropped at the end unless `--keep` is given.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt, TryStreamExt};
use sqlx::{Connection, PgConnection};
use tenancy_core::{DatabaseTarget, DatabaseUrl};
use tenancy_examples::bench_fleet::{
    create_databases, drop_databases, fleet_urls, median, run_bench, BenchResult,
};
use tenant_migrate::{MigrationSet, TenantMigrator};

/// The schema every tenant has: five migrations (one index each for the last three,
/// built concurrently as on a live fleet).
const MIGRATIONS: [(&str, &str); 5] = [
    (
        "20240101000000_shop.sql",
        "CREATE TABLE customers (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE products (id BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL UNIQUE, title TEXT NOT NULL, price NUMERIC(10, 2) NOT NULL DEFAULT 0, active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, customer_id BIGINT NOT NULL REFERENCES customers (id), placed_at TIMESTAMPTZ NOT NULL DEFAULT now(), status TEXT NOT NULL DEFAULT 'open');
",
    ),
    (
        "20240102000000_order_items.sql",
        "CREATE TABLE order_items (order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE, product_id BIGINT NOT NULL REFERENCES products (id), quantity INTEGER NOT NULL CHECK (quantity > 0), PRIMARY KEY (order_id, product_id));
CREATE TABLE invoices (id BIGSERIAL PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders (id), total NUMERIC(12, 2) NOT NULL, issued_at TIMESTAMPTZ);
",
    ),
    (
        "20240103000000_orders_customer_idx.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n",
    ),
    (
        "20240104000000_orders_status_idx.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status, placed_at);\n",
    ),
    (
        "20240105000000_invoices_order_idx.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_order_idx ON invoices (order_id);\n",
    ),
];

const PREFIX: &str = "tk_driftb_";

/// The first argument that makes `rollout_bench` a peak-memory wrapper.
const PEAK_RSS: &str = "__peak-rss";

#[derive(Debug, Parser)]
#[command(
    name = "drift_bench",
    version,
    about = "migrate drift vs migrate status over N tenant databases"
)]
struct Args {
    /// Number of tenant databases.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Tenants read at once (drift and status alike).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Rounds of (status, drift); medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Fleet sizes at which to read the peak memory of `migrate drift`.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    fleets: Vec<usize>,
    /// Keep the databases at the end (to rerun without creating them again).
    #[arg(long)]
    keep: bool,
    /// The directory holding the `migrate` and `rollout_bench` binaries (default:
    /// this one's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    run_bench("drift_bench", bench(Args::parse()))
}

/// What every timed command needs.
struct Bench {
    args: Args,
    workdir: WorkDir,
    migrate: PathBuf,
    wrapper: PathBuf,
}

/// One round's wall-clock times.
#[derive(Debug, Clone, Copy)]
struct Round {
    status: Duration,
    drift: Duration,
}

async fn bench(args: Args) -> BenchResult<()> {
    let server = DatabaseUrl::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("this binary has no directory")?
            .to_path_buf(),
    };
    let (migrate, wrapper) = (bin_dir.join("migrate"), bin_dir.join("rollout_bench"));
    for binary in [&migrate, &wrapper] {
        if !binary.is_file() {
            return Err(format!(
                "no {} binary: run `cargo build --release -p tenancy-examples --bins` first",
                binary.display()
            )
            .into());
        }
    }
    let urls = fleet_urls(&server, PREFIX, args.tenants);
    let started = Instant::now();
    create_databases(&server, PREFIX, &urls).await?;
    let bench = Bench {
        workdir: WorkDir::create(&urls)?,
        args,
        migrate,
        wrapper,
    };
    migrate_everywhere(&urls, bench.args.concurrency).await?;
    let tenants = bench.workdir.tenants_csv(urls.len());
    let concurrency = bench.args.concurrency.to_string();
    bench
        .expect(&["run", "--concurrency", &concurrency], &tenants, &[0])
        .await?;
    eprintln!(
        "{} databases ready in {:.1?}",
        urls.len(),
        started.elapsed()
    );

    let rounds = bench.rounds(&tenants).await?;
    let mut memory = Vec::new();
    for &fleet in &bench.args.fleets {
        let fleet = fleet.min(urls.len());
        let run = bench.peak_rss(&bench.workdir.tenants_csv(fleet)).await?;
        memory.push((fleet, run));
    }
    report(&bench.args, &rounds, &memory);
    if !bench.args.keep {
        drop_databases(&server, &urls).await?;
    }
    Ok(())
}

impl Bench {
    /// The timed rounds, status and drift in turn; the order alternates.
    async fn rounds(&self, tenants: &Path) -> BenchResult<Vec<Round>> {
        let concurrency = self.args.concurrency.to_string();
        let status_args = ["status", "--json", "--concurrency", concurrency.as_str()];
        let drift_args = ["drift", "--json", "--concurrency", concurrency.as_str()];
        let mut rounds = Vec::new();
        for round in 0..self.args.rounds.max(1) {
            let (mut status, mut drift) = (Duration::ZERO, Duration::ZERO);
            for phase in (0..2).map(|p| (p + round) % 2) {
                if phase == 0 {
                    status = self.expect(&status_args, tenants, &[0]).await?;
                } else {
                    drift = self.expect(&drift_args, tenants, &[0]).await?;
                }
            }
            eprintln!("round {round}: migrate status {status:.2?}, migrate drift {drift:.2?}");
            rounds.push(Round { status, drift });
        }
        Ok(rounds)
    }

    /// Runs `migrate ARGS --tenants … --migrations … --state …`, timed; fails
    /// unless it exits with one of `codes`.
    async fn expect(&self, args: &[&str], tenants: &Path, codes: &[i32]) -> BenchResult<Duration> {
        let started = Instant::now();
        let output = tokio::process::Command::new(&self.migrate)
            .args(args)
            .args(self.common(tenants))
            .stdin(Stdio::null())
            .output()
            .await?;
        let elapsed = started.elapsed();
        if !output
            .status
            .code()
            .is_some_and(|code| codes.contains(&code))
        {
            return Err(format!(
                "migrate {} exited with {}: {}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(elapsed)
    }

    /// Peak RSS (KiB) of `migrate drift` over the fleet file `tenants`.
    async fn peak_rss(&self, tenants: &Path) -> BenchResult<u64> {
        let output = tokio::process::Command::new(&self.wrapper)
            .arg(PEAK_RSS)
            .arg(&self.migrate)
            .args(["drift", "--json", "--concurrency"])
            .arg(self.args.concurrency.to_string())
            .args(self.common(tenants))
            .stdin(Stdio::null())
            .output()
            .await?;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        if report["counts"]["clean"].as_u64() != report["counts"]["surveyed"].as_u64() {
            return Err(format!("the bench fleet drifted: {}", report["counts"]).into());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|line| line.strip_prefix("peak-rss-kib: "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no peak RSS reported: {stderr}").into())
    }

    fn common(&self, tenants: &Path) -> Vec<String> {
        vec![
            "--tenants".into(),
            tenants.display().to_string(),
            "--migrations".into(),
            self.workdir.migrations().display().to_string(),
            "--state".into(),
            self.workdir.state(),
        ]
    }
}

fn report(args: &Args, rounds: &[Round], memory: &[(usize, u64)]) {
    println!(
        "tenants: {}, concurrency: {}; medians of {} rounds (ratio within each round)",
        args.tenants,
        args.concurrency,
        rounds.len()
    );
    let status = median(rounds.iter().map(|r| r.status.as_secs_f64()).collect());
    let drift = median(rounds.iter().map(|r| r.drift.as_secs_f64()).collect());
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|r| r.drift.as_secs_f64() / r.status.as_secs_f64())
        .collect();
    let per_round: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!("migrate status: {status:>7.2} s");
    println!("migrate drift:  {drift:>7.2} s");
    println!(
        "drift / status: {:.2}x (rounds: {}; target at most 1.50x)",
        median(ratios),
        per_round.join(", ")
    );
    for (fleet, kib) in memory {
        println!("peak RSS of migrate drift at {fleet:>6} tenants: {kib:>7} KiB");
    }
    if let [(small, a), .., (large, b)] = memory {
        println!(
            "peak RSS at {large} / at {small} tenants: {:.2}x",
            *b as f64 / *a as f64
        );
    }
}

/// A temporary directory for the migrations, fleet files and the state file.
struct WorkDir {
    dir: PathBuf,
    urls: Vec<DatabaseUrl>,
}

impl WorkDir {
    fn create(urls: &[DatabaseUrl]) -> BenchResult<Self> {
        let dir = std::env::temp_dir().join(format!("drift-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("migrations"))?;
        for (file, sql) in MIGRATIONS {
            std::fs::write(dir.join("migrations").join(file), sql)?;
        }
        let workdir = Self {
            dir,
            urls: urls.to_vec(),
        };
        Ok(workdir)
    }

    fn migrations(&self) -> PathBuf {
        self.dir.join("migrations")
    }

    fn state(&self) -> String {
        format!("sqlite:{}", self.dir.join("state.db").display())
    }

    /// The fleet file of the first `fleet` tenants (written on first use).
    fn tenants_csv(&self, fleet: usize) -> PathBuf {
        let path = self.dir.join(format!("tenants-{fleet}.csv"));
        if !path.exists() {
            let mut csv = String::from("id,database_url\n");
            for (i, url) in self.urls.iter().take(fleet).enumerate() {
                csv.push_str(&format!("t{i:05},{}\n", url.expose()));
            }
            if let Err(error) = std::fs::write(&path, csv) {
                eprintln!("drift_bench: cannot write {}: {error}", path.display());
            }
        }
        path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Empties each tenant's schema (left over by an earlier run), then brings it to
/// the bench schema (set-up, not timed).
async fn migrate_everywhere(urls: &[DatabaseUrl], concurrency: usize) -> BenchResult<()> {
    stream::iter(urls)
        .map(|url| async move {
            let mut conn = PgConnection::connect(url.expose()).await?;
            sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
                .execute(&mut conn)
                .await?;
            conn.close().await
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    let set = MIGRATIONS
        .iter()
        .fold(MigrationSet::builder(), |b, (file, sql)| {
            b.file(*file, *sql)
        })
        .build()?;
    let migrator = TenantMigrator::new(set);
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
