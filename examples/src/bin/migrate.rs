//! `migrate`: roll a migration set out to every tenant database.
//!
//! ```text
//! migrate run      --tenants FILE --migrations DIR [--state URL] [--strategy all|waves:10,50,100|canary:N|canary:tag=TAG]
//!                  [--concurrency N] [--max-failures N|P%] [--soak DURATION] [--lease DURATION] [--tag TAG]...
//!                  [--allow-lint RULE]... [--require-no-drift | --exclude-drifted]
//!                  [--dry-run] [--json]
//! migrate status   --tenants FILE --migrations DIR [--state URL] [--concurrency N] [--json]
//! migrate drift    --tenants FILE --migrations DIR [--state URL] [--concurrency N] [--reference TENANT] [--json]
//! migrate rollback --tenants FILE --migrations DIR [--state URL] [--json]
//! migrate rehearse --tenants FILE --migrations DIR [--tenant ID] [--copy dump|template] [--json]
//! migrate lint DIR
//! ```
//!
//! `FILE` is CSV with a header `id,database_url[,tags]` (tags separated by `;`,
//! fields may be quoted, `#` starts a comment line), read by `tenant_migrate::FleetList`.
//! `--json` prints one `RolloutStatusView` object (the admin API's `GET /status`
//! shape, with every tenant).
//! Exit codes: 0 every targeted tenant is at the target version (or, for `rollback`,
//! every migrated tenant was reverted; for `status`, the rollout completed and every
//! tenant of the file is in it), 1 a tenant failed or the rollout halted, 2 bad
//! usage or configuration (a bad CSV row names its line; an unreadable migrations
//! directory, an unreachable state store, a lint error or an empty canary wave also
//! exit 2). `drift` exits 0 when every tenant was read and none drifted, 1 when one
//! drifted (schema or history) or could not be read, 2 for bad usage (an unknown
//! `--reference` included); `run --require-no-drift` refuses (exit 2) while a
//! targeted tenant drifted. The README's `migrate` section states what rollback
//! reverts, where tenants that join the fleet go, and the JSON of `drift` and `status`.
//!
//! `rehearse` copies one tenant's database (see `tenant_migrate::rehearse`), applies
//! the pending migrations to the copy and prints each one's duration, locks and
//! schema fingerprint; it exits 0 when all applied there (or none was pending), 1
//! when one failed there, 130 when interrupted with Ctrl-C (the copy is removed
//! first), 2 for bad usage, an unknown `--tenant`, or a copy that cannot be made.
//!
//! Ctrl-C stops `run` and `rollback` with exit 130: the runner claims no more
//! tenants and lets those in flight finish (a migration's statement runs on its
//! server to its end whatever the client does), so that running the same command
//! again resumes at once. A second Ctrl-C stops at once, abandoning them. Every command exits 141 when
//! the reader of its output went away (`migrate status | head`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tenancy_core::{DatabaseUrl, TenantId};
use tenancy_examples::control_plane::ControlPlane;
use tenancy_examples::outln;
use tenant_migrate::drift::{
    DriftError, DriftPolicy, DriftRecords, DriftReport, DriftSurvey, FleetStatus,
};
use tenant_migrate::rehearse::{
    choose_canary, CopyMethod, Rehearsal, RehearsalError, RehearsalReport,
};
use tenant_migrate::rollout::store::{RolloutStore, SqliteRolloutStore};
use tenant_migrate::{
    lint, FailureThreshold, Finding, FleetList, IntoFleet, MigrationSet, Rollout, RolloutError,
    RolloutEvent, RolloutReport, RolloutStatusView, Rule, Severity, Strategy, Targeting,
    TenantFleet, TenantMigrator,
};

#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Roll a migration set out to every tenant database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run (or resume) the rollout of the migration set.
    Run(RunArgs),
    /// Show the rollout's state, the fleet's versions and its drift counts.
    Status(StatusArgs),
    /// Find tenants whose schema or history drifted from their peers at the same version.
    Drift(DriftArgs),
    /// Revert the tenants the rollout migrated.
    Rollback(Common),
    /// Check a migrations directory for unsafe statements.
    Lint {
        /// The migrations directory.
        dir: PathBuf,
    },
    /// Apply the pending migrations to a scratch copy of one tenant's database and
    /// report their durations, locks and schema; the tenant is not changed.
    Rehearse(RehearseArgs),
}

#[derive(Debug, Args)]
struct RehearseArgs {
    /// CSV file with a header `id,database_url[,tags]`.
    #[arg(long, value_name = "FILE")]
    tenants: PathBuf,
    /// Directory of migrations in sqlx's naming.
    #[arg(long, value_name = "DIR")]
    migrations: PathBuf,
    /// The tenant whose database is copied (default: the first in id order, where
    /// a `canary:1` rollout starts).
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// How to copy a PostgreSQL tenant: `dump` (pg_dump | pg_restore, beside the
    /// running service) or `template` (faster; keeps new connections out of the
    /// tenant's database while it copies, and needs nobody connected).
    #[arg(long, value_parser = ["dump", "template"], default_value = "dump")]
    copy: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Common {
    /// CSV file with a header `id,database_url[,tags]` (tags separated by `;`).
    #[arg(long, value_name = "FILE")]
    tenants: PathBuf,
    /// Directory of migrations in sqlx's naming.
    #[arg(long, value_name = "DIR")]
    migrations: PathBuf,
    /// The state store: `sqlite:FILE` or `postgres://…`.
    #[arg(long, value_name = "URL", default_value = "sqlite:migrate-state.db", value_parser = parse_state)]
    state: DatabaseUrl,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    common: Common,
    /// Tenants whose version is read at once.
    #[arg(long, default_value_t = tenant_migrate::DEFAULT_CONCURRENCY)]
    concurrency: usize,
}

#[derive(Debug, Args)]
struct DriftArgs {
    #[command(flatten)]
    common: Common,
    /// Tenants read at once.
    #[arg(long, default_value_t = tenant_migrate::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Compare with this tenant's schema at its version, instead of the largest group's.
    #[arg(long, value_name = "TENANT")]
    reference: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// all (the default), waves:10,50,100, canary:N or canary:tag=TAG. A rerun
    /// keeps the strategy its rollout started with, and says so if another is given.
    #[arg(long)]
    strategy: Option<String>,
    /// Tenants migrated at once.
    #[arg(long, default_value_t = tenant_migrate::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Failures (a count, or a percentage such as 2%) beyond which the rollout halts;
    /// a canary wave halts on its first failure whatever this says.
    #[arg(long, value_name = "N|P%")]
    max_failures: Option<String>,
    /// Wait after each wave, e.g. 30s, 10m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    soak: Option<Duration>,
    /// Only tenants with this tag (repeat to accept several).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Run despite lint errors of this rule (repeat for several).
    #[arg(long = "allow-lint", value_name = "RULE", value_parser = parse_rule)]
    allow_lint: Vec<Rule>,
    /// How long a claim on a tenant holds without renewal: a crashed runner's
    /// tenants are taken over after it (e.g. 30s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    lease: Option<Duration>,
    /// Refuse to start while a targeted tenant drifted from its version's reference schema.
    #[arg(long, conflicts_with = "exclude_drifted")]
    require_no_drift: bool,
    /// Leave targeted tenants that drifted out of the rollout, saying why.
    #[arg(long)]
    exclude_drifted: bool,
    /// Show the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A problem the operator must fix before anything runs: exit code 2.
#[derive(Debug)]
struct UsageError(String);

impl<E: std::fmt::Display> From<E> for UsageError {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Status(args) => status(args).await,
        Command::Drift(args) => drift(args).await,
        Command::Rollback(args) => rollback(args).await,
        Command::Lint { dir } => lint_dir(&dir),
        Command::Rehearse(args) => rehearse(args).await,
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("migrate: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: RunArgs) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.common.migrations)?;
    refuse_lint_errors(&set, &args.allow_lint)?;
    let strategy = strategy(&args)?;
    let targeting = args
        .tags
        .iter()
        .fold(Targeting::all(), |t, tag| t.with_tag(tag.clone()));
    let progress = Progress::new(args.common.json);
    let fleet = check_drift(&args, &set, &targeting).await?;
    // A dry run changes nothing: not even a state file is created.
    let (store, _) = open_store(&args.common.state, !args.dry_run).await?;
    let rollout = open_rollout(store, fleet.fleet, set, &progress)
        .targeting(targeting)
        .concurrency(args.concurrency);
    let rollout = match strategy {
        Some(strategy) => rollout.strategy(strategy),
        None => rollout,
    };
    let rollout = match args.lease {
        Some(lease) => rollout.lease(lease),
        None => rollout,
    }
    .build();
    if args.dry_run {
        return dry_run(&rollout, args.common.json).await;
    }
    // Planned first: an empty canary wave is refused before any tenant is touched.
    let mut warnings = rollout.plan().await.map_err(fatal)?.warnings().to_vec();
    for warning in &warnings {
        eprintln!("migrate: warning: {warning}");
    }
    warnings.extend(fleet.excluded);
    let report = match stop_on_ctrl_c(|stop| rollout.run_until(stop), &progress).await? {
        Ok(report) => report,
        Err(exit) => return Ok(exit),
    };
    let done = report.is_complete();
    finish(&rollout, &report, args.common.json, done, warnings, None).await
}

/// The fleet after `--require-no-drift` or `--exclude-drifted` (a survey of the
/// targeted tenants, recorded in the state store); each tenant left out is said.
async fn check_drift(
    args: &RunArgs,
    set: &MigrationSet,
    targeting: &Targeting,
) -> Result<CheckedRun, UsageError> {
    let fleet: Arc<dyn TenantFleet> = read_fleet(&args.common)?.into_fleet();
    let policy = if args.require_no_drift {
        DriftPolicy::RequireNoDrift
    } else if args.exclude_drifted {
        DriftPolicy::ExcludeDrifted
    } else {
        return Ok(CheckedRun {
            fleet,
            excluded: Vec::new(),
        });
    };
    let records = DriftRecords::open(&args.common.state).await?;
    let survey = DriftSurvey::new(set.clone()).concurrency(args.concurrency);
    let checked = policy
        .check(fleet, &survey, targeting.filter())
        .await
        .map_err(drift_refused)?;
    if let Some(report) = &checked.report {
        records.record(report).await?;
    }
    let excluded: Vec<String> = checked.excluded.iter().map(ToString::to_string).collect();
    for line in &excluded {
        eprintln!("migrate: {line}");
    }
    Ok(CheckedRun {
        fleet: checked.fleet,
        excluded,
    })
}

/// The fleet a run goes over, and the tenants it leaves out.
struct CheckedRun {
    fleet: Arc<dyn TenantFleet>,
    excluded: Vec<String>,
}

/// `run --require-no-drift` refused, or the survey could not run: exit 2.
fn drift_refused(error: DriftError) -> UsageError {
    UsageError(error.to_string())
}

async fn status(args: StatusArgs) -> Result<ExitCode, UsageError> {
    let StatusArgs {
        common: args,
        concurrency,
    } = args;
    if concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()));
    }
    let set = load_migrations(&args.migrations)?;
    let fleet = read_fleet(&args)?.into_fleet();
    let (store, missing) = open_store(&args.state, false).await?;
    let records = match missing {
        Some(_) => None,
        None => Some(DriftRecords::open(&args.state).await?),
    };
    let migrator = TenantMigrator::new(set.clone());
    let rollout = open_rollout(store, fleet.clone(), set, &Progress::new(true)).build();
    let tenants = FleetStatus::read(
        fleet.as_ref(),
        &tenancy_core::TenantFilter::all(),
        &migrator,
        records.as_ref(),
        concurrency,
    )
    .await
    .map_err(drift_refused)?;
    if !args.json {
        print_fleet_status(&tenants);
    }
    match rollout.status().await.map_err(fatal)? {
        Some(report) => {
            // Complete means every listed tenant, those that joined since included.
            let unlisted = rollout.unlisted(report.rollout_id).await.map_err(fatal)?;
            let mut warnings = Vec::new();
            if !unlisted.is_empty() {
                let ids: Vec<&str> = unlisted.iter().map(|id| id.as_str()).collect();
                warnings.push(format!(
                    "{} tenants joined the fleet after this rollout started and are not migrated yet ({}); run again to migrate them",
                    unlisted.len(),
                    ids.join(", ")
                ));
            }
            if !args.json {
                for warning in &warnings {
                    eprintln!("migrate: {warning}");
                }
            }
            let done = report.is_complete() && unlisted.is_empty();
            finish(&rollout, &report, args.json, done, warnings, Some(&tenants)).await
        }
        None => {
            let note = match missing {
                Some(path) => format!(
                    "no state store at {}, so no rollout is recorded (check --state; `migrate run` creates it)",
                    path.display()
                ),
                None => "no rollout of this migration set yet".to_owned(),
            };
            print_unstarted(&rollout, args.json, &note, Some(&tenants)).await?;
            Ok(ExitCode::from(1))
        }
    }
}

/// `status`'s fleet lines: tenants per applied version, then the drift counts.
fn print_fleet_status(fleet: &FleetStatus) {
    let versions: Vec<String> = fleet
        .versions
        .iter()
        .map(|v| match v.version {
            Some(version) => format!("{version}: {}", v.tenants),
            None => format!("none: {}", v.tenants),
        })
        .collect();
    outln!(
        "tenants per applied version: {}; unreachable: {}",
        versions.join(", "),
        fleet.unreachable
    );
    let d = &fleet.drift;
    let when = d
        .last_checked_at
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "never".into());
    outln!(
        "drift (last checked {when}): {} drifted, {} clean, {} unreachable, {} never checked, {} changed version since",
        d.drifted, d.clean, d.unreachable, d.unchecked, d.stale
    );
}

/// `migrate drift`: survey the fleet, record the result, print it; exit 1 on drift
/// or an unreadable tenant.
async fn drift(args: DriftArgs) -> Result<ExitCode, UsageError> {
    if args.concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()));
    }
    let set = load_migrations(&args.common.migrations)?;
    let fleet = read_fleet(&args.common)?;
    let mut survey = DriftSurvey::new(set).concurrency(args.concurrency);
    if let Some(reference) = &args.reference {
        survey = survey.reference(TenantId::new(reference.as_str())?);
    }
    let records = DriftRecords::open(&args.common.state).await?;
    let report = survey.run(&fleet).await.map_err(drift_refused)?;
    records.record(&report).await?;
    print_drift(&report, args.common.json);
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_drift(report: &DriftReport, as_json: bool) {
    if as_json {
        print_json(report);
    } else {
        outln!("{report}");
    }
}

async fn rollback(args: Common) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.migrations)?;
    let progress = Progress::new(args.json);
    let fleet = read_fleet(&args)?;
    let (store, missing) = open_store(&args.state, false).await?;
    if let Some(path) = missing {
        return Err(UsageError(format!(
            "no state store at {}, so no rollout is recorded to roll back; check --state",
            path.display()
        )));
    }
    let rollout = open_rollout(store, fleet, set, &progress).build();
    let report = match stop_on_ctrl_c(|stop| rollout.rollback_until(stop), &progress).await? {
        Ok(report) => report,
        Err(exit) => return Ok(exit),
    };
    finish(
        &rollout,
        &report,
        args.json,
        report.is_rolled_back(),
        Vec::new(),
        None,
    )
    .await
}

/// `migrate lint DIR`: every finding; exit 1 when one is an error.
fn lint_dir(dir: &Path) -> Result<ExitCode, UsageError> {
    let set = load_migrations(dir)?;
    let mut errors = 0;
    for migration in &set {
        for finding in lint(migration.sql()) {
            errors += usize::from(finding.severity == Severity::Error);
            outln!("{}: {finding}", migration.file());
        }
    }
    for finding in Finding::for_versions(&set) {
        errors += usize::from(finding.severity == Severity::Error);
        outln!("{}: {finding}", dir.display());
    }
    outln!("{} migrations checked, {errors} errors", set.len());
    Ok(ExitCode::from(u8::from(errors > 0)))
}

fn read_fleet(common: &Common) -> Result<FleetList, UsageError> {
    Ok(FleetList::from_csv_path(&common.tenants)?)
}

fn open_rollout(
    store: Arc<dyn RolloutStore>,
    fleet: impl IntoFleet,
    set: MigrationSet,
    progress: &Progress,
) -> tenant_migrate::RolloutBuilder {
    let progress = progress.clone();
    Rollout::of_migrations(fleet, set, store).on_event(move |event| progress.show(event))
}

/// The state store at `--state`. Unless `create`, a SQLite file that does not
/// exist is not made: an empty store in memory stands in, and its path is returned
/// so that the reader hears of it (a typo in `--state` reads as "nothing recorded").
async fn open_store(
    state: &DatabaseUrl,
    create: bool,
) -> Result<(Arc<dyn RolloutStore>, Option<PathBuf>), UsageError> {
    match ControlPlane::missing_file(state.expose()).filter(|_| !create) {
        Some(path) => {
            let empty = SqliteRolloutStore::open("sqlite::memory:").await?;
            Ok((Arc::new(empty), Some(path)))
        }
        None => Ok((tenant_migrate::rollout::store::open(state).await?, None)),
    }
}

/// `--state`: a database URL; `sqlite:` without a file keeps nothing and is refused.
fn parse_state(raw: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(raw).map_err(|e| e.to_string())
}

fn load_migrations(dir: &Path) -> Result<MigrationSet, UsageError> {
    let set = MigrationSet::from_dir(dir)?;
    for name in MigrationSet::unread_files(dir)? {
        eprintln!(
            "migrate: warning: {} is not read as a migration; name it <VERSION>_<description>.sql, e.g. 20240101000000_create_items.sql",
            dir.join(name).display()
        );
    }
    for finding in Finding::for_versions(&set) {
        eprintln!("migrate: {}: {finding}", dir.display());
    }
    if set.is_empty() {
        return Err(UsageError(format!(
            "{} holds no migration; name files like 20240101000000_create_items.sql",
            dir.display()
        )));
    }
    Ok(set)
}

/// `--allow-lint`: a rule the linter has; a typo would silently allow nothing.
fn parse_rule(name: &str) -> Result<Rule, String> {
    Rule::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Rule::ALL.iter().map(|rule| rule.name()).collect();
        format!(
            "no lint rule is named `{name}`; the rules are {}",
            known.join(", ")
        )
    })
}

/// `run` refuses error findings unless their rule is allowed with `--allow-lint`.
fn refuse_lint_errors(set: &MigrationSet, allowed: &[Rule]) -> Result<(), UsageError> {
    let mut refused = Vec::new();
    for migration in set {
        for finding in lint(migration.sql()) {
            if finding.severity == Severity::Error && !allowed.contains(&finding.rule) {
                refused.push(format!("  {}: {finding}", migration.file()));
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "lint found errors; fix them, or pass --allow-lint RULE for each rule you accept:\n{}",
        refused.join("\n")
    )))
}

/// The strategy the flags ask for; `None` when none of them was given (a new
/// rollout then runs all tenants at once, a rerun keeps its own silently).
fn strategy(args: &RunArgs) -> Result<Option<Strategy>, UsageError> {
    if args.concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()));
    }
    if args.strategy.is_none() && args.max_failures.is_none() && args.soak.is_none() {
        return Ok(None);
    }
    let mut strategy: Strategy = args.strategy.as_deref().unwrap_or("all").parse()?;
    if let Some(max) = &args.max_failures {
        let threshold = max
            .parse::<FailureThreshold>()
            .map_err(|e| UsageError(format!("--max-failures {max}: {e}")))?;
        strategy = strategy.with_max_failures(threshold);
    }
    if let Some(soak) = args.soak {
        strategy = strategy.with_soak(soak);
    }
    Ok(Some(strategy))
}

/// Resolves on Ctrl-C (never, where no handler can be installed).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The number of Ctrl-C presses since the call, counted on one signal stream so
/// that none is missed between two waits.
fn ctrl_c_presses() -> tokio::sync::watch::Receiver<u32> {
    let (count, presses) = tokio::sync::watch::channel(0);
    tokio::spawn(async move {
        #[cfg(unix)]
        let Ok(mut interrupts) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        loop {
            #[cfg(unix)]
            if interrupts.recv().await.is_none() {
                return;
            }
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            count.send_modify(|n| *n += 1);
        }
    });
    presses
}

/// Resolves once Ctrl-C was pressed `times` times (never, without a handler).
async fn pressed(mut presses: tokio::sync::watch::Receiver<u32>, times: u32) {
    if presses.wait_for(|n| *n >= times).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs a rollout (`start` given the stop signal): it stops claiming at the first
/// Ctrl-C and lets its tenants in flight finish, then `Err` with exit 130; a
/// second Ctrl-C ends the process at once (exit 130).
async fn stop_on_ctrl_c<F, W>(
    start: F,
    progress: &Progress,
) -> Result<Result<RolloutReport, ExitCode>, UsageError>
where
    F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> W,
    W: std::future::Future<Output = Result<RolloutReport, RolloutError>>,
{
    let presses = ctrl_c_presses();
    let work = start(Box::pin(pressed(presses.clone(), 1)));
    let report = tokio::select! {
        done = work => done,
        () = pressed(presses, 2) => {
            progress.finish();
            eprintln!("migrate: stopped at once: the tenants in flight were abandoned; a migration still running on its server may yet commit, and the next run takes them over when their leases expire (it reads what committed)");
            std::process::exit(130);
        }
    };
    progress.finish();
    match report {
        Err(error @ RolloutError::Interrupted { .. }) => {
            eprintln!("migrate: {error}");
            Ok(Err(ExitCode::from(130)))
        }
        report => Ok(Ok(report.map_err(fatal)?)),
    }
}

/// Maps a rollout error to an exit: configuration problems are usage errors (2).
fn fatal(error: RolloutError) -> UsageError {
    UsageError(error.to_string())
}

async fn dry_run(rollout: &Rollout, as_json: bool) -> Result<ExitCode, UsageError> {
    let recorded = rollout.status().await.map_err(fatal)?;
    if let Some(report) = recorded.filter(|r| r.status != tenant_migrate::RolloutStatus::RolledBack)
    {
        return dry_run_joining(rollout, &report, as_json).await;
    }
    if !as_json {
        let plan = rollout.plan().await.map_err(fatal)?;
        for (wave, size) in plan.wave_sizes().iter().enumerate() {
            outln!("wave {wave}: {size} tenants");
        }
        for warning in plan.warnings() {
            outln!("warning: {warning}");
        }
    }
    print_unstarted(rollout, as_json, "dry run: nothing was changed", None).await?;
    Ok(ExitCode::SUCCESS)
}

/// A dry run where a run would join the rollout already recorded for the set.
async fn dry_run_joining(
    rollout: &Rollout,
    report: &RolloutReport,
    as_json: bool,
) -> Result<ExitCode, UsageError> {
    let joining = rollout.unlisted(report.rollout_id).await.map_err(fatal)?;
    if as_json {
        let mut view = rollout.view(report, None, u32::MAX).await.map_err(fatal)?;
        if !joining.is_empty() {
            view.warnings
                .push(format!("{} tenants would join it", joining.len()));
        }
        print_json(&view);
    } else {
        let c = &report.counts;
        outln!(
            "dry run: nothing was changed; a run joins rollout {} ({}): {} tenants pending, {} failed (retried), {} joining",
            report.rollout_id,
            report.status,
            c.pending + c.running,
            c.failed,
            joining.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan of a rollout that has not started: every tenant pending.
async fn print_unstarted(
    rollout: &Rollout,
    as_json: bool,
    note: &str,
    fleet: Option<&FleetStatus>,
) -> Result<(), UsageError> {
    let target = rollout.key().map_err(fatal)?.target_version;
    let plan = rollout.plan().await.map_err(fatal)?;
    if as_json {
        print_json(&StatusJson {
            view: &RolloutStatusView::planned(target, &plan),
            fleet,
        });
    } else {
        match fleet {
            // The versions read: tenants already at the target need nothing.
            Some(fleet) => {
                let below: u64 = fleet
                    .versions
                    .iter()
                    .filter(|v| v.version.is_none_or(|v| v < target))
                    .map(|v| v.tenants)
                    .sum();
                outln!("{note}; {below} tenants below version {target}");
            }
            None => outln!(
                "{note}; {} tenants pending for version {target}",
                plan.len()
            ),
        }
    }
    Ok(())
}

/// Prints the final report (JSON or text) and picks the exit code.
async fn finish(
    rollout: &Rollout,
    report: &RolloutReport,
    as_json: bool,
    success: bool,
    warnings: Vec<String>,
    fleet: Option<&FleetStatus>,
) -> Result<ExitCode, UsageError> {
    if as_json {
        let mut view = rollout.view(report, None, u32::MAX).await.map_err(fatal)?;
        view.warnings = warnings;
        print_json(&StatusJson { view: &view, fleet });
    } else {
        outln!("{report}");
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A rollout's JSON, with `status`'s `fleet` object (versions and drift counts).
#[derive(serde::Serialize)]
struct StatusJson<'a> {
    #[serde(flatten)]
    view: &'a RolloutStatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<&'a FleetStatus>,
}

fn print_json(view: &impl serde::Serialize) {
    match serde_json::to_string(view) {
        Ok(line) => outln!("{line}"),
        Err(error) => eprintln!("migrate: cannot print JSON: {error}"),
    }
}

/// A progress bar on a terminal, plain lines otherwise (both on stderr).
#[derive(Debug, Clone)]
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(quiet_lines: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tenants {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            quiet: quiet_lines,
        }
    }

    fn show(&self, event: &RolloutEvent) {
        let line = describe(event);
        match &self.bar {
            Some(bar) => {
                match event {
                    RolloutEvent::Joined { tenants, .. } => bar.set_length(*tenants),
                    RolloutEvent::TenantSucceeded { .. }
                    | RolloutEvent::TenantRolledBack { .. }
                    | RolloutEvent::TenantSkipped { .. }
                    | RolloutEvent::TenantFailed { .. } => bar.inc(1),
                    RolloutEvent::WaveStarted { wave, .. } => {
                        bar.set_message(format!("wave {wave}"))
                    }
                    _ => {}
                }
                if !matches!(
                    event,
                    RolloutEvent::TenantStarted { .. }
                        | RolloutEvent::TenantSucceeded { .. }
                        | RolloutEvent::TenantRolledBack { .. }
                        | RolloutEvent::TenantSkipped { .. }
                ) {
                    if let Some(line) = line {
                        bar.println(line);
                    }
                }
            }
            None if !self.quiet
                || matches!(
                    event,
                    RolloutEvent::Halted { .. }
                        | RolloutEvent::WaitingForLeases { .. }
                        | RolloutEvent::StrategyKept { .. }
                        | RolloutEvent::Stopping { .. }
                ) =>
            {
                if let Some(line) = line {
                    eprintln!("{line}");
                }
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The line a person sees for `event`; the start of each tenant job is not shown.
fn describe(event: &RolloutEvent) -> Option<String> {
    match event {
        RolloutEvent::TenantStarted { .. } => None,
        RolloutEvent::StrategyKept { .. } => Some(format!("migrate: warning: {event}")),
        RolloutEvent::Stopping { .. } => {
            Some(format!("migrate: {event} (Ctrl-C again to stop at once)"))
        }
        _ => Some(event.to_string()),
    }
}

/// `migrate rehearse`: the pending migrations on a scratch copy of one tenant's
/// database; exit 0 when they all applied there, 1 when one failed, 130 when
/// interrupted (the copy removed), 2 for bad usage or a copy that cannot be made.
async fn rehearse(args: RehearseArgs) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.migrations)?;
    let fleet = FleetList::from_csv_path(&args.tenants)?;
    let tenant = args
        .tenant
        .as_deref()
        .map(TenantId::try_from)
        .transpose()
        .map_err(|e| UsageError(format!("--tenant: {e}")))?;
    let (tenant, target) = choose_canary(&fleet, tenant.as_ref()).await?;
    if !args.json {
        eprintln!(
            "migrate: rehearsing on a copy of {tenant} ({})",
            target.url.redacted()
        );
    }
    let rehearsal = Rehearsal::new(TenantMigrator::new(set));
    let rehearsal = match args.copy.as_str() {
        "template" => rehearsal.copy_method(CopyMethod::Template),
        _ => rehearsal,
    };
    let report = match rehearsal.run_until(&target, ctrl_c()).await {
        Ok(report) => report,
        Err(RehearsalError::Cancelled) => {
            eprintln!(
                "migrate: interrupted; the scratch copy was removed and {tenant} is untouched"
            );
            return Ok(ExitCode::from(130));
        }
        Err(error) => return Err(error.into()),
    };
    if args.json {
        let mut json = serde_json::to_value(&report).map_err(|e| UsageError(e.to_string()))?;
        json["tenant"] = tenant.as_str().into();
        outln!("{json}");
    } else {
        print_rehearsal(&tenant, &report);
    }
    Ok(ExitCode::from(u8::from(!report.passed())))
}

fn print_rehearsal(tenant: &TenantId, report: &RehearsalReport) {
    let Some(method) = report.copy_method else {
        outln!("{tenant} has no pending migration: nothing to rehearse");
        return;
    };
    outln!(
        "{tenant}: copied ({method}) in {} ms, from version {}",
        report.copy_duration.as_millis(),
        report.from_version.map_or("none".into(), |v| v.to_string())
    );
    for migration in &report.migrations {
        outln!(
            "  {} {}: {} ms, schema {}",
            migration.version,
            migration.description,
            migration.duration.as_millis(),
            migration.fingerprint_after.short()
        );
        for lock in &migration.locks {
            let blocks = if lock.blocks_reads() {
                " (blocks reads and writes)"
            } else if lock.blocks_writes() {
                " (blocks writes)"
            } else {
                ""
            };
            outln!("      {lock}{blocks}");
        }
    }
    match &report.failure {
        Some(failure) => outln!(
            "FAILED {} {}: {}",
            failure.version,
            failure.description,
            failure.error
        ),
        None => outln!("{} migrations applied on the copy", report.migrations.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_errors_are_refused_unless_allowed() {
        let set = MigrationSet::builder()
            .file("1_drop.sql", "DROP TABLE IF EXISTS legacy;")
            .build()
            .unwrap();
        let refused = refuse_lint_errors(&set, &[]).unwrap_err();
        assert!(refused.0.contains("ban-drop-table"), "{}", refused.0);
        assert!(refused.0.contains("--allow-lint"), "{}", refused.0);
        assert!(refuse_lint_errors(&set, &[Rule::BanDropTable]).is_ok());
        assert!(parse_rule("ban-drop-tabel")
            .unwrap_err()
            .contains("ban-drop-table"));
    }

    #[test]
    fn a_state_url_without_a_file_is_refused() {
        assert!(parse_state("sqlite:").is_err());
        assert!(parse_state("sqlite:state.db").is_ok());
        let refused = parse_state("mysql://u:secret@db/state").unwrap_err();
        assert!(!refused.contains("secret"), "{refused}");
    }
}
