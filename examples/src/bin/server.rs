//! `server --listen ADDR --state URL`: the HTTP service of a database-per-tenant SaaS.
//!
//! Environment: `STRIPE_WEBHOOK_SECRET` (comma-separated while rolling a secret),
//! `STRIPE_SECRET_KEY` (optional), `ADMIN_TOKEN` (admin routes answer 503 without it),
//! `BILLING_TICK_SECONDS` (default 60), and the `SUPABASE_*` variables to provision
//! tenants on Supabase instead of locally.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use stripe_billing::{StripeClient, WebhookVerifier};
use tenancy_core::{LoggingNotifier, Notifier, SystemClock};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::config::{self, ProcessEnv, StripeConfig, SupabaseConfig};
use tenancy_examples::server::{self, AppState, MigrationAdmin};
use tenancy_examples::telemetry;

/// The seed's HTTP service: signup, Stripe webhooks, admin migrations.
#[derive(Debug, Parser)]
#[command(
    name = "server",
    version,
    about = "The HTTP service of a database-per-tenant SaaS: signups, Stripe webhooks, admin migration and tenant routes"
)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// The control-plane database: a SQLite URL (default) or a PostgreSQL URL.
    #[arg(long, default_value = "sqlite:tenancy-server.db")]
    state: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let env = ProcessEnv;
    let supabase = SupabaseConfig::from_env(&env)?;
    let stripe = StripeConfig::from_env(&env)?;
    let admin_token = config::admin_token(&env)?;
    let tick = config::billing_tick(&env)?;
    let notifier: Arc<dyn Notifier> = Arc::new(LoggingNotifier);
    let mut assembly = Assembly::open(&args.state, supabase.as_ref(), &env, Arc::new(SystemClock))
        .await?
        .with_notifier(notifier.clone());
    if let Some(key) = &stripe.secret_key {
        let mut client = StripeClient::builder(key.clone());
        if let Some(url) = &stripe.api_url {
            client = client.base_url(url.clone());
        }
        assembly = assembly.with_stripe(client.build()?);
    }
    let verifier = build_verifier(&stripe)?;
    if verifier.is_none() {
        tracing::warn!("STRIPE_WEBHOOK_SECRET is not set: the webhook route answers 503");
    }
    if admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: admin routes answer 503");
    }
    let migrations = MigrationAdmin::new(&assembly);
    let state = AppState::builder(
        assembly.plane.directory.clone(),
        assembly.onboarding.clone(),
        assembly.billing.clone(),
        migrations,
    )
    .verifier(verifier)
    .notifier(notifier)
    .admin_token(admin_token)
    .tick_interval(tick)
    .build();
    let shutdown = telemetry::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; stop what uses that address or pass another --listen",
                args.listen
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, provider = assembly.databases.provider, "listening");
    server::serve(listener, state, shutdown).await?;
    Ok(())
}

fn build_verifier(
    stripe: &StripeConfig,
) -> Result<Option<WebhookVerifier>, stripe_billing::WebhookError> {
    if stripe.webhook_secrets.is_empty() {
        return Ok(None);
    }
    let builder = stripe
        .webhook_secrets
        .iter()
        .fold(WebhookVerifier::builder(), |builder, secret| {
            builder.secret(secret.clone())
        });
    builder.build().map(Some)
}
