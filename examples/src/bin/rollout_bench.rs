//! Benchmark of `migrate run --strategy all` against its floor and the
//! sequential loop, over real tenant databases.
//!
//! Creates `--tenants N` databases (`tk_bench_t00000`, …) on the local PostgreSQL
//! (`DATABASE_URL`), gives each an earlier migration (a real fleet has a history;
//! `--fresh` skips this), then migrates all of them three ways per round, in a
//! rotating order, resetting them in between, and prints the figures side by side:
//!
//! 1. the rollout: the `migrate` binary (`migrate run --strategy all --json`, SQLite
//!    state store), with its advisory locks, history tables, state writes and leases;
//! 2. the per-tenant migrator alone in a bare parallel loop (its lock and history,
//!    no state store), to show where the rollout's cost lies;
//! 3. the floor: the same SQL through a fresh connection per tenant, at the same
//!    concurrency, with no bookkeeping at all;
//!
//! 4. with `--sqlx-cli PATH` (the `sqlx` binary of sqlx-cli), `sqlx migrate run`
//!    over the same migrations directory, one process per tenant, as many at once;
//!
//! and once, the naive approach: the same SQL, one tenant after another.
//!
//! Each phase starts after a `CHECKPOINT` and is timed by the wall clock and by
//! the machine's CPU time (from `/proc/stat`: this process, `migrate` and the
//! PostgreSQL server together); ratios are taken within each round, so a noisy
//! neighbour slows both sides alike.
//!
//! Peak memory is the `migrate` process's own (`getrusage` of a child), for fleets
//! of `--fleets` sizes: a run next to a dry run (`--dry-run` loads the tenant list
//! and plans, nothing more), so the difference is what the rollout itself holds.
//! Fleets larger than `--tenants` list each database under several tenants (each
//! tenant after the first finds its database migrated and is skipped): the machine
//! cannot hold 5,000 databases, and the rollout tracks every tenant all the same.
//!
//! ```text
//! cargo build --release -p tenancy-examples --bins
//! ./target/release/rollout_bench --tenants 1000 --concurrency 4
//! ```
//!
//! With `--latency 20ms` every tenant connection (the rollout's, the migrator's,
//! the floor's) goes through a local proxy that delays each byte 20 ms each way,
//! and with `--tls` it is made with `sslmode=require`: the tenants' server at
//! internet distance, where round trips, not the server's CPU, decide.
//!
//! The databases are dropped at the end unless `--keep` is given (creating and
//! dropping a thousand databases takes minutes).

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{self, StreamExt, TryStreamExt};
use sqlx::{Connection, PgConnection};
use tenancy_core::{DatabaseTarget, DatabaseUrl};
use tenancy_examples::bench_fleet::{
    create_databases, drop_databases, fleet_urls, median, run_bench, BenchResult, DelayProxy,
};
use tenant_migrate::{MigrationSet, TenantMigrator};

/// The 3-statement migration every tenant receives.
const MIGRATION: &str = "CREATE TABLE bench_items (id BIGINT PRIMARY KEY, name TEXT);
CREATE INDEX bench_items_name ON bench_items (name);
ALTER TABLE bench_items ADD COLUMN created_at TIMESTAMPTZ DEFAULT now();
";
const MIGRATION_FILE: &str = "20240102000000_bench.sql";

/// An earlier migration every tenant already has (a real fleet has a history).
const BASELINE: &str = "CREATE TABLE IF NOT EXISTS bench_baseline (id INT);";
const BASELINE_FILE: &str = "20240101000000_baseline.sql";

/// Removes everything, history included (set-up, not timed).
const RESET_ALL: &str = "DROP TABLE IF EXISTS bench_items; DROP TABLE IF EXISTS bench_baseline; \
     DROP TABLE IF EXISTS _sqlx_migrations;";

/// Undoes the benchmarked migration between phases (not timed).
const RESET: &str =
    "DROP TABLE IF EXISTS bench_items; DELETE FROM _sqlx_migrations WHERE version = 20240102000000;";

const PREFIX: &str = "tk_bench_";

/// The first argument that makes this binary a peak-memory wrapper around a command.
const PEAK_RSS: &str = "__peak-rss";

#[derive(Debug, Parser)]
#[command(
    name = "rollout_bench",
    version,
    about = "migrate run vs floor vs sequential loop over N tenant databases"
)]
struct Args {
    /// Number of tenant databases.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Tenants in flight at once (rollout and floor alike).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Rounds of (rollout, migrator only, floor); medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Fleet sizes at which to read the peak memory of `migrate run` (none: skip).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    fleets: Vec<usize>,
    /// Skip the sequential loop (it takes N × ~17 ms).
    #[arg(long)]
    skip_sequential: bool,
    /// Start from empty databases: the rollout also creates each history table.
    #[arg(long)]
    fresh: bool,
    /// Keep the databases at the end (to rerun without creating them again).
    #[arg(long)]
    keep: bool,
    /// The `migrate` binary (default: next to this one).
    #[arg(long)]
    migrate: Option<PathBuf>,
    /// Delay each way between the tenants and their server (e.g. `20ms`), through
    /// a local proxy: a server at internet distance.
    #[arg(long, value_parser = humantime::parse_duration)]
    latency: Option<Duration>,
    /// Reach the tenant databases over TLS (`sslmode=require`).
    #[arg(long)]
    tls: bool,
    /// sqlx-cli's `sqlx` binary: adds `sqlx migrate run` in parallel to each round
    /// (`cargo install sqlx-cli --no-default-features --features postgres,rustls`).
    #[arg(long)]
    sqlx_cli: Option<PathBuf>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PEAK_RSS) {
        return peak_rss_wrapper(&argv[2..]);
    }
    run_bench("rollout_bench", bench(Args::parse()))
}

/// Everything a phase needs.
struct Bench {
    args: Args,
    server: DatabaseUrl,
    urls: Vec<DatabaseUrl>,
    set: MigrationSet,
    reset: &'static str,
    workdir: WorkDir,
    migrate: PathBuf,
}

async fn bench(args: Args) -> BenchResult<()> {
    let server = DatabaseUrl::parse(
        &std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )?;
    let migrate = match &args.migrate {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("migrate"),
    };
    if !migrate.is_file() {
        return Err(format!(
            "no migrate binary at {}: run `cargo build --release -p tenancy-examples --bins` first",
            migrate.display()
        )
        .into());
    }
    check_connection_limit(&server, args.concurrency).await?;
    let urls = fleet_urls(&server, PREFIX, args.tenants);
    let started = Instant::now();
    create_databases(&server, PREFIX, &urls).await?;
    eprintln!(
        "{} databases ready in {:.1?}",
        urls.len(),
        started.elapsed()
    );

    // Every tenant connection (rollout, migrator, floor, resets) goes the far way.
    let proxy = match args.latency {
        Some(delay) => Some(DelayProxy::start(upstream(&server)?, delay).await?),
        None => None,
    };
    let tenant_urls = urls
        .iter()
        .map(|url| far_url(url, proxy.as_ref(), args.tls))
        .collect::<BenchResult<Vec<_>>>()?;
    let bench = Bench::prepare(args, server.clone(), tenant_urls, migrate).await?;
    let rounds = bench.rounds().await?;
    let sequential = if bench.args.skip_sequential {
        None
    } else {
        let sequential = bench.time_floor(1).await?;
        run_everywhere(&bench.urls, bench.args.concurrency, bench.reset).await?;
        Some(sequential)
    };
    let memory = bench.memory().await?;
    run_everywhere(&bench.urls, bench.args.concurrency, RESET_ALL).await?;
    report(&bench.args, &rounds, sequential, &memory);
    if !bench.args.keep {
        let started = Instant::now();
        drop_databases(&server, &urls).await?;
        eprintln!(
            "{} databases dropped in {:.1?}",
            bench.urls.len(),
            started.elapsed()
        );
    }
    Ok(())
}

/// Refuses a concurrency the server cannot hold: each phase keeps that many
/// tenant connections open at once, and the bench itself needs a few more.
async fn check_connection_limit(server: &DatabaseUrl, concurrency: usize) -> BenchResult<()> {
    let mut conn = PgConnection::connect(server.expose()).await?;
    let limit: String = sqlx::query_scalar("SHOW max_connections")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    let limit: usize = limit.parse()?;
    let needed = concurrency + 8;
    if needed > limit {
        return Err(format!(
            "the server allows {limit} connections and --concurrency {concurrency} needs {needed}: \
             raise it (ALTER SYSTEM SET max_connections = {needed}; then restart PostgreSQL)"
        )
        .into());
    }
    Ok(())
}

/// The server's `host:port`.
fn upstream(server: &DatabaseUrl) -> BenchResult<String> {
    let host = server.host().ok_or("the server URL names no host")?;
    let port = server
        .libpq_env()
        .into_iter()
        .find_map(|(name, value)| (name == "PGPORT").then_some(value))
        .unwrap_or_else(|| "5432".into());
    Ok(format!("{host}:{port}"))
}

/// A tenant's URL as the bench reaches it: through `proxy`, over TLS if asked.
fn far_url(url: &DatabaseUrl, proxy: Option<&DelayProxy>, tls: bool) -> BenchResult<DatabaseUrl> {
    let url = match proxy {
        Some(proxy) => proxy.route(url)?,
        None => url.clone(),
    };
    if !tls {
        return Ok(url);
    }
    Ok(DatabaseUrl::parse(&format!(
        "{}?sslmode=require",
        url.expose()
    ))?)
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
struct Timed {
    wall: Duration,
    /// Machine CPU time (all processes) during the phase.
    cpu: Duration,
    /// CPU time of the clients' side: this process (the delay proxy, the
    /// floor's connections) and the processes it ran (`migrate`, `sqlx`).
    client: Duration,
}

/// One round: rollout, migrator only, floor.
#[derive(Debug, Clone, Copy)]
struct Round {
    rollout: Timed,
    migrator_only: Timed,
    floor: Timed,
    sqlx_cli: Option<Timed>,
}

/// Peak RSS (KiB) of `migrate` at one fleet size: dry run, then run.
#[derive(Debug, Clone, Copy)]
struct Memory {
    fleet: usize,
    dry_run: u64,
    run: u64,
}

impl Bench {
    async fn prepare(
        args: Args,
        server: DatabaseUrl,
        urls: Vec<DatabaseUrl>,
        migrate: PathBuf,
    ) -> BenchResult<Self> {
        run_everywhere(&urls, args.concurrency, RESET_ALL).await?;
        let workdir = WorkDir::create()?;
        let mut builder = MigrationSet::builder();
        if !args.fresh {
            let baseline = MigrationSet::builder()
                .file(BASELINE_FILE, BASELINE)
                .build()?;
            apply_everywhere(&urls, args.concurrency, &baseline).await?;
            builder = builder.file(BASELINE_FILE, BASELINE);
            std::fs::write(workdir.migrations().join(BASELINE_FILE), BASELINE)?;
        }
        std::fs::write(workdir.migrations().join(MIGRATION_FILE), MIGRATION)?;
        let set = builder.file(MIGRATION_FILE, MIGRATION).build()?;
        let reset = if args.fresh { RESET_ALL } else { RESET };
        Ok(Self {
            args,
            server,
            urls,
            set,
            reset,
            workdir,
            migrate,
        })
    }

    /// The timed rounds, each phase followed by a reset; the order rotates.
    async fn rounds(&self) -> BenchResult<Vec<Round>> {
        let tenants = self.workdir.tenants_csv(&self.urls, self.urls.len())?;
        let mut rounds = Vec::new();
        let phases = if self.args.sqlx_cli.is_some() { 4 } else { 3 };
        for round in 0..self.args.rounds.max(1) {
            let mut times = [None; 4];
            for phase in (0..phases).map(|p| (p + round) % phases) {
                // Every phase starts with the server's dirty pages written out, so
                // no phase pays for the previous one's checkpoint.
                checkpoint(&self.server).await?;
                let timed = match phase {
                    0 => self.time_rollout(&tenants, round).await?,
                    1 => self.time_migrator_only().await?,
                    2 => self.time_floor(self.args.concurrency).await?,
                    _ => self.time_sqlx_cli().await?,
                };
                times[phase] = Some(timed);
                run_everywhere(&self.urls, self.args.concurrency, self.reset).await?;
            }
            let [Some(rollout), Some(migrator_only), Some(floor), sqlx_cli] = times else {
                return Err("a phase did not run".into());
            };
            eprintln!(
                "round {round}: migrate run {:.2?}, migrator only {:.2?}, floor {:.2?}, sqlx-cli {:.2?}",
                rollout.wall, migrator_only.wall, floor.wall, sqlx_cli.map(|t| t.wall)
            );
            rounds.push(Round {
                rollout,
                migrator_only,
                floor,
                sqlx_cli,
            });
        }
        Ok(rounds)
    }

    /// `migrate run --strategy all --json`, checked to have migrated every tenant.
    async fn time_rollout(&self, tenants: &Path, round: usize) -> BenchResult<Timed> {
        let state = self.workdir.state(&format!("round-{round}"));
        let args = self.run_args(tenants, &state, &["--json"]);
        let (timed, run) = measure(self.migrate_command(&args)).await?;
        let run = run?;
        let summary: serde_json::Value = serde_json::from_slice(&run.stdout)?;
        let succeeded = summary["succeeded"].as_u64();
        if !run.success || succeeded != Some(self.urls.len() as u64) {
            return Err(format!("migrate run did not migrate every tenant: {summary}").into());
        }
        Ok(timed)
    }

    async fn time_migrator_only(&self) -> BenchResult<Timed> {
        let (timed, result) = measure(apply_everywhere(
            &self.urls,
            self.args.concurrency,
            &self.set,
        ))
        .await?;
        result?;
        Ok(timed)
    }

    async fn time_floor(&self, concurrency: usize) -> BenchResult<Timed> {
        let (timed, result) = measure(run_everywhere(&self.urls, concurrency, MIGRATION)).await?;
        result?;
        Ok(timed)
    }

    /// `sqlx migrate run` per tenant, `--concurrency` processes at once.
    async fn time_sqlx_cli(&self) -> BenchResult<Timed> {
        let sqlx = self.args.sqlx_cli.as_ref().ok_or("no sqlx-cli binary")?;
        let source = self.workdir.migrations();
        let (timed, result) = measure(
            stream::iter(&self.urls)
                .map(|url| {
                    let mut command = tokio::process::Command::new(sqlx);
                    command
                        .args(["migrate", "run", "--source"])
                        .arg(&source)
                        .arg("--database-url")
                        .arg(url.expose())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped());
                    async move {
                        let output = command.output().await?;
                        if !output.status.success() {
                            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                            return Err(format!("sqlx migrate run failed: {stderr}").into());
                        }
                        BenchResult::Ok(())
                    }
                })
                .buffer_unordered(self.args.concurrency.max(1))
                .try_collect::<()>(),
        )
        .await?;
        result?;
        Ok(timed)
    }

    /// Peak RSS of `migrate run --dry-run` and `migrate run` at each fleet size.
    async fn memory(&self) -> BenchResult<Vec<Memory>> {
        let mut figures = Vec::new();
        for &fleet in &self.args.fleets {
            let tenants = self.workdir.tenants_csv(&self.urls, fleet)?;
            let state = self.workdir.state(&format!("fleet-{fleet}"));
            let dry = self
                .migrate_command(&self.run_args(&tenants, &state, &["--dry-run"]))
                .await?;
            let run = self
                .migrate_command(&self.run_args(&tenants, &state, &[]))
                .await?;
            run_everywhere(&self.urls, self.args.concurrency, self.reset).await?;
            if !dry.success || !run.success {
                let printed = String::from_utf8_lossy(if dry.success {
                    &run.stdout
                } else {
                    &dry.stdout
                });
                return Err(format!("migrate run failed at a fleet of {fleet}: {printed}").into());
            }
            figures.push(Memory {
                fleet,
                dry_run: dry.peak_rss_kib,
                run: run.peak_rss_kib,
            });
        }
        Ok(figures)
    }

    fn run_args(&self, tenants: &Path, state: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--tenants".into(),
            tenants.display().to_string(),
            "--migrations".into(),
            self.workdir.migrations().display().to_string(),
            "--state".into(),
            state.into(),
            "--strategy".into(),
            "all".into(),
            "--concurrency".into(),
            self.args.concurrency.to_string(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Runs `migrate` under this binary's peak-memory wrapper.
    async fn migrate_command(&self, args: &[String]) -> BenchResult<ChildRun> {
        let output = tokio::process::Command::new(std::env::current_exe()?)
            .arg(PEAK_RSS)
            .arg(&self.migrate)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let peak_rss_kib = stderr
            .lines()
            .find_map(|line| line.strip_prefix("peak-rss-kib: "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no peak RSS reported: {stderr}"))?;
        Ok(ChildRun {
            success: output.status.success(),
            stdout: output.stdout,
            peak_rss_kib,
        })
    }
}

/// What a `migrate` run printed and held.
#[derive(Debug)]
struct ChildRun {
    success: bool,
    stdout: Vec<u8>,
    peak_rss_kib: u64,
}

/// Runs `command` (its output passed through, its stderr silenced), then prints its
/// peak RSS on stderr: the largest of this process's children, and it has one.
fn peak_rss_wrapper(command: &[String]) -> ExitCode {
    let Some((program, args)) = command.split_first() else {
        eprintln!("usage: rollout_bench {PEAK_RSS} PROGRAM [ARGS…]");
        return ExitCode::from(2);
    };
    let status = std::process::Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .status();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    match (status, usage) {
        (Ok(status), Ok(usage)) => {
            eprintln!("peak-rss-kib: {}", usage.max_rss());
            ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
        }
        (Err(error), _) => {
            eprintln!("cannot run {program}: {error}");
            ExitCode::FAILURE
        }
        (_, Err(error)) => {
            eprintln!("getrusage failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Times `work` by the wall clock, by the machine's busy CPU time, and by the
/// CPU time of this process and the children it reaped (the clients' side).
async fn measure<T>(work: impl std::future::Future<Output = T>) -> BenchResult<(Timed, T)> {
    let cpu_before = machine_cpu()?;
    let client_before = client_cpu()?;
    let started = Instant::now();
    let output = work.await;
    let wall = started.elapsed();
    let cpu = machine_cpu()?.saturating_sub(cpu_before);
    let client = client_cpu()?.saturating_sub(client_before);
    Ok((Timed { wall, cpu, client }, output))
}

/// User and system time of this process (the floor's clients, the delay proxy)
/// plus that of its reaped descendants (`migrate`, `sqlx`).
fn client_cpu() -> BenchResult<Duration> {
    use nix::sys::resource::{getrusage, UsageWho};
    let mut total = Duration::ZERO;
    for who in [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN] {
        let usage = getrusage(who)?;
        for time in [usage.user_time(), usage.system_time()] {
            total += Duration::from_micros(
                u64::try_from(time.tv_sec()).unwrap_or(0) * 1_000_000
                    + u64::try_from(time.tv_usec()).unwrap_or(0),
            );
        }
    }
    Ok(total)
}

/// Busy CPU time of the whole machine since boot (user, nice, system, irq, softirq).
fn machine_cpu() -> BenchResult<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum();
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(busy * 10))
}

/// A temporary directory for the migrations, tenant lists and state files.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> BenchResult<Self> {
        let dir = std::env::temp_dir().join(format!("rollout-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("migrations"))?;
        Ok(Self(dir))
    }

    fn migrations(&self) -> PathBuf {
        self.0.join("migrations")
    }

    fn state(&self, name: &str) -> String {
        format!("sqlite:{}", self.0.join(format!("{name}.db")).display())
    }

    /// A tenants CSV of `fleet` tenants over `urls` (round robin past their number).
    fn tenants_csv(&self, urls: &[DatabaseUrl], fleet: usize) -> BenchResult<PathBuf> {
        let path = self.0.join(format!("tenants-{fleet}.csv"));
        let mut csv = String::from("id,database_url\n");
        for (i, url) in (0..fleet).zip(urls.iter().cycle()) {
            csv.push_str(&format!("t{i:06},{}\n", url.expose()));
        }
        std::fs::write(&path, csv)?;
        Ok(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn report(args: &Args, rounds: &[Round], sequential: Option<Timed>, memory: &[Memory]) {
    let n = args.tenants as f64;
    let history = if args.fresh {
        "empty databases"
    } else {
        "one earlier migration in each history"
    };
    println!(
        "tenants: {}, concurrency: {}, {history}; medians of {} rounds (ratios within each round)",
        args.tenants,
        args.concurrency,
        rounds.len()
    );
    let line = |name: &str, pick: fn(&Round) -> Timed| {
        let wall = median(rounds.iter().map(|r| pick(r).wall.as_secs_f64()).collect());
        let cpu = median(rounds.iter().map(|r| pick(r).cpu.as_secs_f64()).collect());
        let client = median(
            rounds
                .iter()
                .map(|r| pick(r).client.as_secs_f64())
                .collect(),
        );
        println!(
            "{name:<30} {wall:>7.2} s  {:>7.1} tenants/s  {:>6.2} ms CPU/tenant ({:.2} client side)",
            n / wall,
            1000.0 * cpu / n,
            1000.0 * client / n
        );
    };
    line("migrate run --strategy all:", |r| r.rollout);
    line("migrator only (no state):", |r| r.migrator_only);
    line("floor (bare parallel):", |r| r.floor);
    if rounds.iter().all(|r| r.sqlx_cli.is_some()) {
        let sqlx_cli = |r: &Round| r.sqlx_cli.unwrap_or(r.floor);
        line("sqlx migrate run (parallel):", sqlx_cli);
        let speed = median(
            rounds
                .iter()
                .map(|r| sqlx_cli(r).wall.as_secs_f64() / r.rollout.wall.as_secs_f64())
                .collect(),
        );
        println!("rollout speed / sqlx-cli speed: {speed:.2}x");
    }
    let ratio = |a: fn(&Round) -> Timed, b: fn(&Round) -> Timed, cpu: bool| {
        median(
            rounds
                .iter()
                .map(|r| {
                    let (a, b) = (a(r), b(r));
                    if cpu {
                        a.cpu.as_secs_f64() / b.cpu.as_secs_f64()
                    } else {
                        b.wall.as_secs_f64() / a.wall.as_secs_f64()
                    }
                })
                .collect(),
        )
    };
    let per_round: Vec<String> = rounds
        .iter()
        .map(|r| {
            format!(
                "{:.0}",
                100.0 * r.floor.wall.as_secs_f64() / r.rollout.wall.as_secs_f64()
            )
        })
        .collect();
    println!(
        "rollout / floor throughput: {:.0} % (rounds: {} %); migrator only / floor: {:.0} %",
        100.0 * ratio(|r| r.rollout, |r| r.floor, false),
        per_round.join(", "),
        100.0 * ratio(|r| r.migrator_only, |r| r.floor, false)
    );
    println!(
        "CPU per tenant, rollout / floor: {:.2}x; migrator only / floor: {:.2}x",
        ratio(|r| r.rollout, |r| r.floor, true),
        ratio(|r| r.migrator_only, |r| r.floor, true)
    );
    if let Some(sequential) = sequential {
        let rollout = median(
            rounds
                .iter()
                .map(|r| r.rollout.wall.as_secs_f64())
                .collect(),
        );
        println!(
            "sequential loop: {:.2} s ({:.1} tenants/s); rollout speed-up over it: {:.2}x",
            sequential.wall.as_secs_f64(),
            n / sequential.wall.as_secs_f64(),
            sequential.wall.as_secs_f64() / rollout
        );
    }
    for m in memory {
        println!(
            "peak RSS of migrate at {:>6} tenants: run {:>6} KiB, dry run (tenant list and plan) {:>6} KiB, difference {:>5} KiB",
            m.fleet,
            m.run,
            m.dry_run,
            m.run.saturating_sub(m.dry_run)
        );
    }
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

/// `sql` through a fresh connection per tenant, `concurrency` at a time.
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

async fn checkpoint(server: &DatabaseUrl) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    sqlx::raw_sql("CHECKPOINT").execute(&mut admin).await?;
    admin.close().await?;
    Ok(())
}
