//! `server --listen ADDR --state URL`: the HTTP service of a database-per-tenant SaaS.
//!
//! Environment: `STRIPE_WEBHOOK_SECRET` (comma-separated while rolling a secret),
//! `STRIPE_SECRET_KEY` (optional; with it, missed webhooks are read back from Stripe
//! at start and every `STRIPE_RECONCILE_SECONDS`, default 3600), `ADMIN_TOKEN`
//! (admin routes answer 503 without it),
//! `BILLING_TICK_SECONDS` (default 60), `PUBLIC_URL` (where tenants reach the
//! service; default `http://localhost:PORT`), `BILLING_LINK_SECRET` (signs links to
//! tenants' billing pages; the pages are off without it), the `SUPABASE_*` variables to provision
//! tenants on Supabase instead of locally, and for offboarding `TENANT_EXPORT_DIR`
//! (default `exports` beside a SQLite state), `TENANT_RETENTION_DAYS` (default 30),
//! `OFFBOARD_ON_CANCEL` (`true` offboards a tenant when its billing is cancelled;
//! default `false`) and `OFFBOARDING_CHECK_SECONDS` (default 3600).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use stripe_billing::pages::BillingPages;
use stripe_billing::{BillingLinks, Reconciler, StripeClient, WebhookVerifier};
use tenancy_core::{LoggingNotifier, Notifier, SystemClock};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::config::{
    self, OffboardingConfig, PagesConfig, ProcessEnv, StripeConfig, SupabaseConfig,
};
use tenancy_examples::control_plane::database_pauser;
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
    /// The address to listen on: IP:PORT, or HOST:PORT (e.g. localhost:8000).
    #[arg(long, default_value = "127.0.0.1:8000", value_parser = parse_listen)]
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
    let reconcile_every = config::reconcile_interval(&env)?;
    let pages = PagesConfig::from_env(&env)?;
    let offboarding_config = OffboardingConfig::from_env(&env)?;
    if offboarding_config.retention.is_zero() {
        tracing::warn!("TENANT_RETENTION_DAYS is 0: an offboarded tenant's database is deleted as soon as it is exported, with no time to restore it");
    }
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
    let reconciler = assembly
        .stripe
        .clone()
        .map(|client| Reconciler::new(assembly.billing.clone(), Arc::new(client)));
    if reconciler.is_none() {
        tracing::warn!(
            "STRIPE_SECRET_KEY is not set: missed webhooks are not read back from Stripe"
        );
    }
    let verifier = build_verifier(&stripe)?;
    if verifier.is_none() {
        tracing::warn!("STRIPE_WEBHOOK_SECRET is not set: the webhook route answers 503");
    }
    if admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: admin routes answer 503");
    }
    // Bound first: with port 0, the links name the port given.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; stop what uses that address or pass another --listen",
                args.listen
            )
        })?;
    let port = listener.local_addr()?.port();
    let public_url = pages
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    let billing_pages = match &pages.link_secret {
        Some(secret) => Some(
            BillingPages::new(
                assembly.billing.clone(),
                assembly.plane.directory.clone(),
                BillingLinks::new(secret.clone())?,
                &public_url,
            )
            .stripe(assembly.stripe.clone()),
        ),
        None => {
            tracing::warn!("BILLING_LINK_SECRET is not set: tenants' billing pages are off");
            None
        }
    };
    let offboarding = assembly.offboarding(
        database_pauser(supabase.as_ref(), &assembly.plane)?,
        offboarding_config
            .export_dir
            .clone()
            .unwrap_or_else(|| assembly.plane.export_folder()),
        offboarding_config.retention,
        Arc::new(SystemClock),
    );
    let migrations = MigrationAdmin::new(&assembly);
    let state = AppState::builder(
        assembly.plane.directory.clone(),
        assembly.onboarding.clone(),
        assembly.billing.clone(),
        migrations,
    )
    .verifier(verifier)
    .reconciler(reconciler)
    .reconcile_interval(reconcile_every)
    .notifier(notifier)
    .admin_token(admin_token)
    .secure_cookie(pages.secure_cookie())
    .billing_pages(billing_pages)
    .tick_interval(tick)
    .offboarding(Some(offboarding))
    .offboard_on_cancel(offboarding_config.on_cancel)
    .offboarding_interval(offboarding_config.check_every)
    .build();
    let shutdown = telemetry::shutdown_signal();
    tracing::info!(address = %listener.local_addr()?, provider = assembly.databases.provider, admin = %format!("{public_url}/admin"), "listening");
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

/// `--listen`: an address, or a host name resolved to its first IPv4 address (else
/// its first address).
fn parse_listen(raw: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let hint = "give HOST:PORT, e.g. 127.0.0.1:8000 or localhost:8000";
    let addresses: Vec<SocketAddr> = raw
        .to_socket_addrs()
        .map_err(|e| format!("`{raw}`: {e}; {hint}"))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| format!("`{raw}` resolves to no address; {hint}"))
}
