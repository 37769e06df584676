//! `offboard start|restore|resume`: the end of a tenant's life, from the command line.
//!
//! ```text
//! offboard start   TENANT [--state URL] [--exports DIR] [--retention-days N]
//! offboard restore TENANT [--state URL]
//! offboard resume         [--state URL] [--exports DIR] [--retention-days N]
//! ```
//!
//! `start` cancels the tenant's subscription (with `STRIPE_SECRET_KEY`), exports its
//! database to `--exports` (default `exports` beside a SQLite state), pauses it and
//! keeps it for the retention period (default 30 days); `restore` undoes that during
//! the retention; `resume` finishes every interrupted offboarding and deletes the
//! tenants whose retention is over (what the server does on a schedule). Tenant
//! databases come from the same provider as `onboard` (`SUPABASE_*`, else local).
//!
//! `--retention-days` sets the retention of the tenants this run pauses; a tenant
//! already retained keeps the `until` fixed when it was paused (`resume` deletes it
//! once that passes, whatever `--retention-days` says).
//!
//! Exit codes:
//! - **0**: done: the tenant is retained (or deleted, when `--retention-days 0
//!   --delete-now` applies to it), restored, or every pending offboarding finished; also when
//!   another process is offboarding the tenant (`start` says so and leaves it to
//!   that process);
//! - **1**: a step failed; it is recorded on the tenant and running the same command
//!   again resumes there;
//! - **2**: refused, nothing changed: bad usage, a tenant id that is not one (the
//!   message suggests the id a company name gives), an unknown tenant, a deleted
//!   tenant, a restore of a tenant that is not offboarding, bad configuration, a
//!   SQLite `--state` file that does not exist (nothing is created), or a
//!   retention of 0 days without `--delete-now`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use stripe_billing::StripeClient;
use tenancy_core::{
    DirectoryError, Offboarding, OffboardingError, SystemClock, Tenant, TenantDirectory,
    TenantFilter, TenantId, TenantStatus,
};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::config::{OffboardingConfig, ProcessEnv, StripeConfig, SupabaseConfig};
use tenancy_examples::control_plane::{database_pauser, ControlPlane, TenantDatabases};
use tenancy_examples::outln;
use tenancy_examples::telemetry;

/// Offboards tenants: export, pause, keep, delete; or restores one.
#[derive(Debug, Parser)]
#[command(
    name = "offboard",
    version,
    about = "Offboard a tenant (cancel billing, export and pause its database, delete it after the retention), restore one, or resume pending offboardings"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// The control-plane database: a SQLite URL (default) or a PostgreSQL URL.
    #[arg(long, global = true, default_value = "sqlite:tenancy-server.db")]
    state: String,
    /// Where exports are written (default: `exports` beside a SQLite state, or
    /// `TENANT_EXPORT_DIR`).
    #[arg(long, global = true)]
    exports: Option<PathBuf>,
    /// Days the paused database of a tenant offboarded by this run is kept (default
    /// 30, or `TENANT_RETENTION_DAYS`); tenants already retained keep theirs.
    #[arg(long, global = true)]
    retention_days: Option<u16>,
    /// Confirms a retention of 0 days: the database is deleted as soon as it is
    /// exported, with no time left to restore it.
    #[arg(long, global = true)]
    delete_now: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offboards a tenant: cancel billing, export, pause; kept for the retention.
    Start {
        /// The tenant id (`acme-pharmacy`).
        tenant: String,
    },
    /// Restores a tenant during its retention: resumes its database, makes it ready.
    Restore {
        /// The tenant id.
        tenant: String,
    },
    /// Resumes interrupted offboardings and deletes tenants past their retention.
    Resume,
}

/// A refusal (exit 2) or a failed step (exit 1).
enum Failure {
    Refused(String),
    Failed(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_quiet_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Refused(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    let (offboarding, directory) = assemble(&args).await.map_err(Failure::Refused)?;
    match &args.command {
        Command::Start { tenant } => {
            let id = known_tenant(directory.as_ref(), tenant).await?;
            match offboarding.offboard(&id).await {
                Err(busy @ OffboardingError::Busy { .. }) => outln!("{busy}"),
                done => print_tenant(&done.map_err(failure)?),
            }
        }
        Command::Restore { tenant } => {
            let id = known_tenant(directory.as_ref(), tenant).await?;
            let tenant = offboarding.restore(&id).await.map_err(failure)?;
            print_tenant(&tenant);
        }
        Command::Resume => {
            let report = offboarding.run_pending().await.map_err(failure)?;
            for id in &report.retained {
                outln!("retained: {id}");
            }
            for id in &report.deleted {
                outln!("deleted:  {id}");
            }
            for id in &report.busy {
                outln!("busy:     {id} (another process is offboarding it)");
            }
            if report.retained.is_empty()
                && report.deleted.is_empty()
                && report.busy.is_empty()
                && report.failed.is_empty()
            {
                outln!(
                    "nothing to resume: no offboarding was interrupted and no retention is over"
                );
            }
            if !report.failed.is_empty() {
                let failed: Vec<String> = report
                    .failed
                    .iter()
                    .map(|(id, error)| format!("{id}: {error}"))
                    .collect();
                return Err(Failure::Failed(format!(
                    "{} offboarding(s) stopped at a failed step; run `offboard resume` again after fixing the cause:\n  {}",
                    failed.len(),
                    failed.join("\n  ")
                )));
            }
        }
    }
    Ok(())
}

async fn assemble(args: &Args) -> Result<(Offboarding, Arc<dyn TenantDirectory>), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    if let Some(path) = ControlPlane::missing_file(&args.state) {
        return Err(format!(
            "no state database at {}: check --state (onboarding creates it)",
            path.display()
        ));
    }
    let env = ProcessEnv;
    let supabase = SupabaseConfig::from_env(&env).map_err(|e| text(&e))?;
    let stripe = StripeConfig::from_env(&env).map_err(|e| text(&e))?;
    let config = OffboardingConfig::from_env(&env).map_err(|e| text(&e))?;
    let plane = ControlPlane::open(&args.state)
        .await
        .map_err(|e| text(&e))?;
    let databases = TenantDatabases::choose(supabase.as_ref(), &plane).map_err(|e| text(&e))?;
    let mut assembly =
        Assembly::with_databases(plane.clone(), databases, &env, Arc::new(SystemClock))
            .await
            .map_err(|e| text(&e))?;
    if let Some(key) = &stripe.secret_key {
        let mut client = StripeClient::builder(key.clone());
        if let Some(url) = &stripe.api_url {
            client = client.base_url(url.clone());
        }
        assembly = assembly.with_stripe(client.build().map_err(|e| text(&e))?);
    }
    let pauser = database_pauser(supabase.as_ref(), &plane).map_err(|e| text(&e))?;
    let exports = args
        .exports
        .clone()
        .or(config.export_dir)
        .unwrap_or_else(|| plane.export_folder());
    let retention = args.retention_days.map_or(config.retention, |days| {
        time::Duration::days(i64::from(days))
    });
    if retention.is_zero() && !args.delete_now {
        return Err("a retention of 0 days deletes a tenant's database as soon as it is exported, with no time to restore it; add --delete-now to confirm, or give --retention-days".into());
    }
    let offboarding = assembly.offboarding(pauser, exports, retention, Arc::new(SystemClock));
    Ok((offboarding, plane.directory))
}

/// The tenant `raw` names, refused (exit 2) when it is not an id or not known.
async fn known_tenant(directory: &dyn TenantDirectory, raw: &str) -> Result<TenantId, Failure> {
    let id = TenantId::try_from(raw.trim()).map_err(|error| {
        let hint = match TenantId::from_name(raw) {
            Ok(id) => format!("; did you mean `{id}`?"),
            Err(_) => String::new(),
        };
        Failure::Refused(format!("{error}{hint}"))
    })?;
    match directory.get(&id).await {
        Ok(Some(_)) => Ok(id),
        Ok(None) => {
            let close = closest_id(directory, &id).await;
            let hint = close.map_or(String::new(), |c| format!("; did you mean `{c}`?"));
            Err(Failure::Refused(format!(
                "tenant `{id}` does not exist in this state database{hint}"
            )))
        }
        Err(error) => Err(Failure::Refused(error.to_string())),
    }
}

/// A known id within two edits of `id`, if any (among the first thousands).
async fn closest_id(directory: &dyn TenantDirectory, id: &TenantId) -> Option<TenantId> {
    let tenants = directory
        .list(&TenantFilter::all().limit(5_000))
        .await
        .ok()?;
    tenants
        .into_iter()
        .map(|t| (edit_distance(t.id.as_str(), id.as_str()), t.id))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, id)| id)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn failure(error: OffboardingError) -> Failure {
    match error {
        error @ (OffboardingError::Step { .. }
        | OffboardingError::Resume { .. }
        | OffboardingError::Migrate { .. }) => Failure::Failed(error.to_string()),
        OffboardingError::Directory(error @ DirectoryError::Storage(_)) => {
            Failure::Failed(error.to_string())
        }
        other => Failure::Refused(other.to_string()),
    }
}

fn print_tenant(tenant: &Tenant) {
    outln!("tenant_id: {}", tenant.id);
    outln!("state:     {}", tenant.status);
    if let TenantStatus::Retained { until, .. } = &tenant.status {
        outln!("deleted:   after {until}");
    }
    if let Some(export) = tenant.status.export() {
        outln!("export:    {}", export.location);
        outln!("size:      {} bytes", export.size_bytes);
        outln!("sha256:    {}", export.sha256);
    }
}
