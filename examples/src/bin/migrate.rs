//! `migrate`: roll a migration set out to every tenant database.
//!
//! ```text
//! migrate run      --tenants FILE --migrations DIR [--state URL] [--strategy all|waves:10,50,100|canary:N|canary:tag=TAG]
//!                  [--concurrency N] [--max-failures N|P%] [--soak DURATION] [--lease DURATION] [--tag TAG]...
//!                  [--allow-lint RULE]...
//!                  [--dry-run] [--json]
//! migrate status   --tenants FILE --migrations DIR [--state URL] [--json]
//! migrate rollback --tenants FILE --migrations DIR [--state URL] [--json]
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
//! exit 2). The README's `migrate` section states what rollback reverts and where
//! tenants that join the fleet go.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tenancy_core::DatabaseUrl;
use tenant_migrate::{
    lint, FailureThreshold, FleetList, MigrationSet, Rollout, RolloutError, RolloutEvent,
    RolloutReport, RolloutStatusView, Rule, Severity, Strategy, Targeting,
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
    #[arg(long, value_name = "URL", default_value = "sqlite:migrate-state.db", value_parser = parse_state)]
    state: DatabaseUrl,
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
        .concurrency(args.concurrency);
    let rollout = match args.lease {
        Some(lease) => rollout.lease(lease),
        None => rollout,
    }
    .build();
    if args.dry_run {
        return dry_run(&rollout, args.common.json).await;
    }
    // Planned first: an empty canary wave is refused before any tenant is touched.
    let warnings = rollout.plan().await.map_err(fatal)?.warnings().to_vec();
    for warning in &warnings {
        eprintln!("migrate: warning: {warning}");
    }
    let report = rollout.run().await;
    progress.finish();
    let report = report.map_err(fatal)?;
    let done = report.is_complete();
    finish(&rollout, &report, args.common.json, done, warnings).await
}

async fn status(args: Common) -> Result<ExitCode, UsageError> {
    let set = load_migrations(&args.migrations)?;
    let rollout = open_rollout(&args, set, &Progress::new(true))
        .await?
        .build();
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
            finish(&rollout, &report, args.json, done, warnings).await
        }
        None => {
            print_unstarted(&rollout, args.json, "no rollout of this migration set yet").await?;
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
    finish(
        &rollout,
        &report,
        args.json,
        report.is_rolled_back(),
        Vec::new(),
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
    let fleet = FleetList::from_csv_path(&common.tenants)?;
    let store = tenant_migrate::rollout::store::open(&common.state).await?;
    let progress = progress.clone();
    Ok(Rollout::of_migrations(fleet, set, store).on_event(move |event| progress.show(event)))
}

/// `--state`: a database URL; `sqlite:` without a file keeps nothing and is refused.
fn parse_state(raw: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(raw).map_err(|e| e.to_string())
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

fn strategy(args: &RunArgs) -> Result<Strategy, UsageError> {
    let mut strategy: Strategy = args.strategy.parse()?;
    if let Some(max) = &args.max_failures {
        strategy = strategy.with_max_failures(max.parse::<FailureThreshold>()?);
    }
    if let Some(soak) = args.soak {
        strategy = strategy.with_soak(soak);
    }
    if args.concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()));
    }
    Ok(strategy)
}

/// Maps a rollout error to an exit: configuration problems are usage errors (2).
fn fatal(error: RolloutError) -> UsageError {
    UsageError(error.to_string())
}

async fn dry_run(rollout: &Rollout, as_json: bool) -> Result<ExitCode, UsageError> {
    if !as_json {
        let plan = rollout.plan().await.map_err(fatal)?;
        for (wave, size) in plan.wave_sizes().iter().enumerate() {
            println!("wave {wave}: {size} tenants");
        }
        for warning in plan.warnings() {
            println!("warning: {warning}");
        }
    }
    print_unstarted(rollout, as_json, "dry run: nothing was changed").await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan of a rollout that has not started: every tenant pending.
async fn print_unstarted(rollout: &Rollout, as_json: bool, note: &str) -> Result<(), UsageError> {
    let target = rollout.key().map_err(fatal)?.target_version;
    let plan = rollout.plan().await.map_err(fatal)?;
    if as_json {
        print_json(&RolloutStatusView::planned(target, &plan));
    } else {
        println!(
            "{note}; {} tenants pending for version {target}",
            plan.len()
        );
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
) -> Result<ExitCode, UsageError> {
    if as_json {
        let mut view = rollout.view(report, None, u32::MAX).await.map_err(fatal)?;
        view.warnings = warnings;
        print_json(&view);
    } else {
        println!("{report}");
    }
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_json(view: &RolloutStatusView) {
    match serde_json::to_string(view) {
        Ok(line) => println!("{line}"),
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
                    RolloutEvent::Halted { .. } | RolloutEvent::WaitingForLeases { .. }
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
