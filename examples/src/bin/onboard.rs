//! `onboard --company NAME --email EMAIL`: one signup through the resumable pipeline.
//!
//! Uses Supabase when `SUPABASE_ACCESS_TOKEN` is set (`SUPABASE_ORGANIZATION_SLUG` or
//! the older `SUPABASE_ORGANIZATION_ID`, `SUPABASE_REGION`, `SUPABASE_PLAN`, `SUPABASE_API_URL`,
//! `SUPABASE_PROJECT_URL_TEMPLATE`), otherwise a local provider: one database per
//! tenant on the `--state` PostgreSQL server, or one SQLite file per tenant beside a
//! SQLite state. Running it again for the same company resumes where it stopped.
//! Exit 0 only when the tenant is ready (also when another run onboarding it at the
//! same time finished it), 1 when a step failed (run it again to resume), 2 for bad
//! input or a refusal: the company signed up with another email, or its tenant is
//! being offboarded or was deleted.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tenancy_core::{NewTenant, OnboardingError, SystemClock, Tenant, TenantStatus};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::config::{ProcessEnv, SupabaseConfig};
use tenancy_examples::control_plane::{supabase_databases, ControlPlane, TenantDatabases};
use tenancy_examples::outln;
use tenancy_examples::telemetry;

/// Signs one tenant up and onboards it.
#[derive(Debug, Parser)]
#[command(
    name = "onboard",
    version,
    about = "Onboard one tenant: create its database, migrate it, create its first admin user, start its trial"
)]
struct Args {
    /// The tenant's company name (the tenant id is derived from it).
    #[arg(long)]
    company: String,
    /// The email of the tenant's first admin user.
    #[arg(long)]
    email: String,
    /// The control-plane database: a SQLite URL (default) or a PostgreSQL URL.
    #[arg(long, default_value = "sqlite:tenancy-server.db")]
    state: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_quiet_logging();
    let args = Args::parse();
    let signup = match NewTenant::new(&args.company, &args.email) {
        Ok(signup) => signup,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let spinner = spinner();
    let (assembly, provider) = match assemble(&args.state, spinner.clone()).await {
        Ok(parts) => parts,
        Err(error) => {
            spinner.finish_and_clear();
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    spinner.set_message(format!("onboarding {} on {provider}", signup.id()));
    let outcome = assembly.onboarding.onboard(signup.clone()).await;
    spinner.finish_and_clear();
    let tenant = match outcome {
        Ok(tenant) => Some(tenant),
        // Refusals: nothing to rerun.
        Err(
            error @ (OnboardingError::AlreadySignedUp(_)
            | OnboardingError::IdRetired(_)
            | OnboardingError::Offboarded(_)),
        ) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            let tenant = assembly
                .plane
                .directory
                .get(signup.id())
                .await
                .ok()
                .flatten();
            if tenant
                .as_ref()
                .is_some_and(|t| t.status == TenantStatus::Ready)
            {
                // Another run onboarding the same tenant at once finished it.
                eprintln!(
                    "note: another onboarding of this tenant finished it meanwhile ({error})"
                );
            } else {
                eprintln!("error: {error}");
            }
            tenant
        }
    };
    print_tenant(tenant.as_ref());
    match tenant {
        Some(t) if t.status == TenantStatus::Ready => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

async fn assemble(
    state: &str,
    spinner: ProgressBar,
) -> Result<(Assembly, &'static str), Box<dyn std::error::Error>> {
    let env = ProcessEnv;
    let supabase = SupabaseConfig::from_env(&env)?;
    let plane = ControlPlane::open(state).await?;
    let databases = match &supabase {
        Some(config) => {
            let progress =
                move |p: &supabase_mgmt::ReadinessProgress| spinner.set_message(p.to_string());
            supabase_databases(config, Some(Arc::new(progress)))?
        }
        None => TenantDatabases::choose(None, &plane)?,
    };
    let provider = databases.provider;
    let assembly = Assembly::with_databases(plane, databases, &env, Arc::new(SystemClock)).await?;
    Ok((assembly, provider))
}

fn print_tenant(tenant: Option<&Tenant>) {
    let Some(tenant) = tenant else {
        return;
    };
    let reference = tenant
        .database
        .as_ref()
        .and_then(|db| db.external_ref.as_deref())
        .unwrap_or("-");
    outln!("tenant_id:   {}", tenant.id);
    outln!("project_ref: {reference}");
    outln!("state:       {}", tenant.status);
}

fn spinner() -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}
