//! `migrate`: roll a migration set out to every tenant database.
//!
//! ```text
//! migrate run      --tenants FILE --migrations DIR [--state URL] [--strategy all|waves:10,50,100|canary:N|canary:tag=TAG]
//!                  [--concurrency N] [--max-failures N|P%] [--soak DURATION] [--tag TAG]... [--allow-lint RULE]...
//!                  [--dry-run] [--json]
//! migrate status   --tenants FILE --migrations DIR [--state URL] [--json]
//! migrate rollback --tenants FILE --migrations DIR [--state URL] [--json]
//! migrate lint DIR
//! ```
//!
//! `FILE` is CSV with a header `id,database_url[,tags]` (tags separated by `;`).
//! Exit codes: 0 every targeted tenant is at the target version (or, for `rollback`,
//! every migrated tenant was reverted), 1 a tenant failed or the rollout halted, 2 bad
//! usage or configuration (a bad CSV row names its line; an unreadable migrations
//! directory, an unreachable state store or a lint error also exit 2).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tenancy_core::{
    DatabaseTarget, DatabaseUrl, MemoryTenantDirectory, NewTenant, TenantDirectory, TenantId,
    TenantStatus,
};
use tenant_migrate::{
    lint, FailureThreshold, MigrationSet, PostgresRolloutStore, Rollout, RolloutError,
    RolloutEvent, RolloutReport, RolloutStatus, RolloutStore, Severity, SqliteRolloutStore,
    Strategy, Targeting, TenantRow,
};
use time::OffsetDateTime;

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
    /// Show the rollout's state.
    Status(Common),
    /// Revert the tenants the rollout migrated.
    Rollback(Common),
    /// Check a migrations directory for unsafe statements.
    Lint {
        /// The migrations directory.
        dir: PathBuf,
    },
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
    #[arg(long, value_name = "URL", default_value = "sqlite:migrate-state.db")]
    state: String,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// all, waves:10,50,100, canary:N or canary:tag=TAG.
    #[arg(long, default_value = "all")]
    strategy: String,
    /// Tenants migrated at once.
    #[arg(long, default_value_t = tenant_migrate::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Failures (a count, or a percentage such as 2%) beyond which the rollout halts.
    #[arg(long, value_name = "N|P%")]
    max_failures: Option<String>,
    /// Wait after each wave, e.g. 30s, 10m, 1h.
    #[arg(long, value_name = "DURATION")]
    soak: Option<String>,
    /// Only tenants with this tag (repeat to accept several).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Run despite lint errors of this rule (repeat for several).
    #[arg(long = "allow-lint", value_name = "RULE")]
    allow_lint: Vec<String>,
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
        Command::Rollback(args) => rollback(args).await,
        Command::Lint { dir } => lint_dir(&dir),
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
    let rollout = open_rollout(&args.common, set, &progress)
        .await?
        .strategy(strategy)
        .targeting(targeting)
        .concurrency(args.concurrency)
        .build();
    if args.dry_run {
        return dry_run(&rollout, args.common.json).await;
    }
    let report = rollout.run().await;
    progress.finish();
    let report = report.map_err(fatal)?;
    finish(&rollout, &report, args.common.json, report.is_complete()).await
}

async fn status(args: Common) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.migrations)?;
    let rollout = open_rollout(&args, set, &Progress::new(true))
        .await?
        .build();
    match rollout.status().await.map_err(fatal)? {
        Some(report) => finish(&rollout, &report, args.json, report.is_complete()).await,
        None => {
            let target = rollout.key().map_err(fatal)?.target_version;
            let plan = rollout.plan().await.map_err(fatal)?;
            let ids: Vec<&TenantId> = plan.tenants().iter().map(|t| &t.id).collect();
            print_unstarted(
                target,
                &ids,
                args.json,
                "no rollout of this migration set yet",
            );
            Ok(ExitCode::from(1))
        }
    }
}

async fn rollback(args: Common) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.migrations)?;
    let progress = Progress::new(args.json);
    let rollout = open_rollout(&args, set, &progress).await?.build();
    let report = rollout.rollback().await;
    progress.finish();
    let report = report.map_err(fatal)?;
    finish(&rollout, &report, args.json, report.is_rolled_back()).await
}

/// `migrate lint DIR`: every finding; exit 1 when one is an error.
fn lint_dir(dir: &Path) -> Result<ExitCode, UsageError> {
    let set = load_migrations(dir)?;
    let mut errors = 0;
    for migration in &set {
        for finding in lint(migration.sql()) {
            errors += usize::from(finding.severity == Severity::Error);
            println!("{}: {finding}", migration.file());
        }
    }
    println!("{} migrations checked, {errors} errors", set.len());
    Ok(ExitCode::from(u8::from(errors > 0)))
}

async fn open_rollout(
    common: &Common,
    set: MigrationSet,
    progress: &Progress,
) -> Result<tenant_migrate::RolloutBuilder, UsageError> {
    let directory = load_tenants(&common.tenants).await?;
    let store = open_store(&common.state).await?;
    let progress = progress.clone();
    Ok(Rollout::of_migrations(directory, set, store).on_event(move |event| progress.show(event)))
}

fn load_migrations(dir: &Path) -> Result<MigrationSet, UsageError> {
    let set = MigrationSet::from_dir(dir)?;
    if set.is_empty() {
        return Err(UsageError(format!(
            "{} holds no migration; name files like 20240101000000_create_items.sql",
            dir.display()
        )));
    }
    Ok(set)
}

/// `run` refuses error findings unless their rule is allowed with `--allow-lint`.
fn refuse_lint_errors(set: &MigrationSet, allowed: &[String]) -> Result<(), UsageError> {
    let mut refused = Vec::new();
    for migration in set {
        for finding in lint(migration.sql()) {
            if finding.severity == Severity::Error
                && !allowed.iter().any(|r| r == finding.rule.name())
            {
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

fn strategy(args: &RunArgs) -> Result<Strategy, UsageError> {
    let mut strategy: Strategy = args.strategy.parse()?;
    if let Some(max) = &args.max_failures {
        strategy = strategy.with_max_failures(max.parse::<FailureThreshold>()?);
    }
    if let Some(soak) = &args.soak {
        strategy = strategy.with_soak(parse_duration(soak)?);
    }
    if args.concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()));
    }
    Ok(strategy)
}

/// `500ms`, `30s`, `10m`, `2h` or a bare number of seconds.
fn parse_duration(raw: &str) -> Result<Duration, UsageError> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let bad = || {
        UsageError(format!(
            "--soak `{raw}` is not a duration; write e.g. 30s, 10m or 1h"
        ))
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

async fn open_store(url: &str) -> Result<Arc<dyn RolloutStore>, UsageError> {
    let store: Arc<dyn RolloutStore> = if url.starts_with("sqlite:") {
        Arc::new(SqliteRolloutStore::open(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresRolloutStore::connect(&DatabaseUrl::parse(url)?).await?)
    } else {
        return Err(UsageError(
            "--state must be sqlite:FILE or postgres://user@host/db".into(),
        ));
    };
    Ok(store)
}

/// Reads the tenants CSV into a directory; a bad row names its line.
async fn load_tenants(path: &Path) -> Result<Arc<MemoryTenantDirectory>, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read --tenants {}: {e}", path.display())))?;
    let directory = Arc::new(MemoryTenantDirectory::new());
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if header != ["id", "database_url"] && header != ["id", "database_url", "tags"] {
        return Err(UsageError(format!(
            "{}: line 1 must be the header `id,database_url` or `id,database_url,tags`",
            path.display()
        )));
    }
    let now = OffsetDateTime::now_utc();
    for (index, line) in lines {
        let tenant = parse_row(line, now)
            .map_err(|e| UsageError(format!("{}: line {}: {}", path.display(), index + 1, e.0)))?;
        directory
            .insert(&tenant)
            .await
            .map_err(|e| UsageError(format!("{}: line {}: {e}", path.display(), index + 1)))?;
    }
    Ok(directory)
}

fn parse_row(line: &str, now: OffsetDateTime) -> Result<tenancy_core::Tenant, UsageError> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [id, url, rest @ ..] = fields.as_slice() else {
        return Err(UsageError("expected `id,database_url[,tags]`".into()));
    };
    if rest.len() > 1 {
        return Err(UsageError(
            "too many fields; separate tags with `;`, not `,`".into(),
        ));
    }
    let id = TenantId::new(*id)?;
    let url = DatabaseUrl::parse(url)?;
    let mut signup = NewTenant::with_id(id.clone(), id.as_str(), &format!("admin@{id}.invalid"))?;
    for tag in rest
        .first()
        .into_iter()
        .flat_map(|t| t.split(';'))
        .filter(|t| !t.trim().is_empty())
    {
        signup = signup.with_tag(tag)?;
    }
    let mut tenant = signup.into_tenant(now);
    tenant.status = TenantStatus::Ready;
    tenant.database = Some(DatabaseTarget::new(url));
    Ok(tenant)
}

/// Maps a rollout error to an exit: configuration problems are usage errors (2).
fn fatal(error: RolloutError) -> UsageError {
    UsageError(error.to_string())
}

async fn dry_run(rollout: &Rollout, as_json: bool) -> Result<ExitCode, UsageError> {
    let key = rollout.key().map_err(fatal)?;
    let plan = rollout.plan().await.map_err(fatal)?;
    if !as_json {
        for (wave, size) in plan.wave_sizes().iter().enumerate() {
            println!("wave {wave}: {size} tenants");
        }
    }
    let ids: Vec<&TenantId> = plan.tenants().iter().map(|t| &t.id).collect();
    print_unstarted(
        key.target_version,
        &ids,
        as_json,
        "dry run: nothing was changed",
    );
    Ok(ExitCode::SUCCESS)
}

fn print_unstarted(target: i64, ids: &[&TenantId], as_json: bool, note: &str) {
    if as_json {
        let tenants = ids.iter().map(|id| TenantRow::pending(id)).collect();
        let pending = u64::try_from(ids.len()).unwrap_or(u64::MAX);
        print_json(&Summary {
            target_version: target,
            succeeded: 0,
            failed: 0,
            skipped: 0,
            pending,
            halted: false,
            tenants,
        });
    } else {
        println!("{note}; {} tenants pending for version {target}", ids.len());
    }
}

/// Prints the final report (JSON or text) and picks the exit code.
async fn finish(
    rollout: &Rollout,
    report: &RolloutReport,
    as_json: bool,
    success: bool,
) -> Result<ExitCode, UsageError> {
    if as_json {
        let tenants = tenant_rows(rollout, report.rollout_id).await?;
        let c = &report.counts;
        print_json(&Summary {
            target_version: report.target_version,
            succeeded: c.succeeded,
            failed: c.failed,
            skipped: c.skipped,
            pending: c.pending + c.running,
            halted: report.status == RolloutStatus::Halted,
            tenants,
        });
    } else {
        print_text(report);
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn tenant_rows(rollout: &Rollout, rollout_id: i64) -> Result<Vec<TenantRow>, UsageError> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = rollout
            .tenants(rollout_id, after, 1000)
            .await
            .map_err(fatal)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        rows.extend(page.iter().map(|(_, t)| TenantRow::from(t)));
    }
    Ok(rows)
}

/// The final `--json` object, fields in the documented order.
#[derive(Debug, Serialize)]
struct Summary {
    target_version: i64,
    succeeded: u64,
    failed: u64,
    skipped: u64,
    pending: u64,
    halted: bool,
    tenants: Vec<TenantRow>,
}

fn print_json(summary: &Summary) {
    match serde_json::to_string(summary) {
        Ok(line) => println!("{line}"),
        Err(error) => eprintln!("migrate: cannot print JSON: {error}"),
    }
}

fn print_text(report: &RolloutReport) {
    let c = &report.counts;
    println!(
        "rollout {} to version {}: {}",
        report.rollout_id, report.target_version, report.status
    );
    println!(
        "  succeeded {}, failed {}, skipped {}, pending {}, running {}, rolled back {}",
        c.succeeded, c.failed, c.skipped, c.pending, c.running, c.rolled_back
    );
    for (version, tenants) in &report.versions {
        let version = version.map_or_else(|| "none".to_owned(), |v| v.to_string());
        println!("  version {version}: {tenants} tenants");
    }
    if let Some(reason) = &report.halted_reason {
        println!("  halted: {reason}");
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
            None if !self.quiet || matches!(event, RolloutEvent::Halted { .. }) => {
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
    (!matches!(event, RolloutEvent::TenantStarted { .. })).then(|| event.to_string())
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
        assert!(refuse_lint_errors(&set, &["ban-drop-table".into()]).is_ok());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn rows_are_validated_without_echoing_urls() {
        let now = OffsetDateTime::now_utc();
        let tenant = parse_row("acme, postgres://u:pw@db/acme, eu;beta", now).unwrap();
        assert_eq!(tenant.tags.len(), 2);
        let bad_url = parse_row("acme,mysql://u:secret@db/acme", now).unwrap_err();
        assert!(!bad_url.0.contains("secret"), "{}", bad_url.0);
        assert!(parse_row("Acme!,postgres://db/acme", now).is_err());
        assert!(parse_row("acme", now).is_err());
        assert!(parse_row("acme,postgres://db/acme,eu,beta", now).is_err());
    }
}
