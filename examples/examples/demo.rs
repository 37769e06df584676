//! `demo`: the whole job of tenancy-kit, end to end, with no configuration and no
//! network: SQLite files in a fresh temporary folder (or `--dir DIR`).
//!
//! 1. signs up three tenants, provisions and migrates their databases, creates their
//!    admin users and starts their 14-day trials;
//! 2. delivers signed Stripe events through the real verifier and billing processor,
//!    and moves a manual clock past a grace period and a trial;
//! 3. rolls a new migration out: one canary tenant first, then the rest;
//! 4. prints each tenant's schema version and billing state;
//! 5. offboards the suspended tenant: its database exported and paused, kept for 30
//!    days, then deleted, with its export and a tombstone left.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde_json::Value;
use stripe_billing::testing::{
    checkout_session, event, invoice, signed, subscription, InvoiceShape,
};
use stripe_billing::{Effect, ProcessOutcome, WebhookVerifier};
use tenancy_core::{
    Clock, ManualClock, NewTenant, SqliteFileProvisioner, Tenant, TenantFilter, TenantId,
};
use tenancy_examples::assembly::Assembly;
use tenancy_examples::control_plane::{ControlPlane, TenantDatabases};
use tenancy_examples::demo_rollout;
use time::{Duration, OffsetDateTime};

/// Runs the whole job on SQLite in a fresh folder and narrates it.
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    version,
    about = "The whole job end to end on SQLite: signups, Stripe webhooks, a canary rollout, offboarding"
)]
struct Args {
    /// Where to keep the databases (default: a new temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const WEBHOOK_SECRET: &str = "whsec_demo_only_secret";
const SIGNUPS: [(&str, &str, &str); 3] = [
    ("Acme Pharmacy", "owner@acme.example", "staging"),
    ("Bluebird Clinic", "admin@bluebird.example", "eu"),
    ("Cedar Health", "it@cedar.example", "us"),
];

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> ExitCode {
    tenancy_examples::telemetry::init_quiet_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> DemoResult<()> {
    let dir = args.dir.unwrap_or_else(fresh_folder);
    std::fs::create_dir_all(&dir)?;
    println!("tenancy-kit demo: everything local, in {}\n", dir.display());

    let start = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let clock = ManualClock::new(start);
    let plane = ControlPlane::open(&format!("sqlite:{}", dir.join("control.db").display())).await?;
    let databases = TenantDatabases::sqlite_files(dir.join("tenants"));
    let env: [(&str, &str); 0] = [];
    let demo = Assembly::with_databases(plane, databases, &env, Arc::new(clock.clone())).await?;

    let tenants = sign_up(&demo).await?;
    bill(&demo, &clock, &tenants).await?;
    println!("\n3. Rolling out 20240127000000_add_new_field: a canary tenant first, then the rest");
    demo_rollout::run(&demo).await?;
    summary(&demo).await?;
    offboard(&demo, &clock, &dir).await
}

/// Offboards the tenant whose trial ran out: export, pause, retention, deletion.
async fn offboard(demo: &Assembly, clock: &ManualClock, dir: &Path) -> DemoResult<()> {
    println!("\n5. Offboarding cedar-health: exported, paused, kept 30 days, then deleted");
    let tenant = TenantId::try_from("cedar-health")?;
    let pauser = Arc::new(SqliteFileProvisioner::new(dir.join("tenants")));
    let exports = dir.join("exports");
    let offboarding =
        demo.offboarding(pauser, exports, Duration::days(30), Arc::new(clock.clone()));
    let retained = offboarding.offboard(&tenant).await?;
    if let Some(export) = retained.status.export() {
        println!(
            "   export: {} ({} bytes, sha256 {}…)",
            export.location,
            export.size_bytes,
            &export.sha256[..12.min(export.sha256.len())]
        );
    }
    println!("   {tenant}: {}", retained.status.name());
    clock.advance(Duration::days(31));
    let report = offboarding.run_pending().await?;
    for deleted in &report.deleted {
        println!("   31 days later: {deleted} deleted; its export and a tombstone remain");
    }
    Ok(())
}

fn fresh_folder() -> PathBuf {
    let stamp = OffsetDateTime::now_utc().unix_timestamp_nanos();
    std::env::temp_dir().join(format!("tenancy-demo-{}-{stamp}", std::process::id()))
}

async fn sign_up(demo: &Assembly) -> DemoResult<Vec<TenantId>> {
    println!(
        "1. Signing up three tenants (provision → migrate → admin user → 14-day trial → ready)"
    );
    let mut ids = Vec::new();
    for (company, email, tag) in SIGNUPS {
        let tenant = demo
            .onboarding
            .onboard(NewTenant::new(company, email)?.with_tag(tag)?)
            .await?;
        let database = tenant
            .database
            .as_ref()
            .map(|db| db.url.to_string())
            .unwrap_or_default();
        println!(
            "   ✓ {:<16} {:<6} admin {:<24} {database}",
            tenant.id, tenant.status, tenant.admin_email
        );
        ids.push(tenant.id);
    }
    Ok(ids)
}

/// A Stripe account, as seen through signed webhooks.
struct Stripe<'a> {
    demo: &'a Assembly,
    clock: &'a ManualClock,
    verifier: WebhookVerifier,
}

impl Stripe<'_> {
    /// Signs `event` as Stripe would, verifies it, processes it, and says what happened.
    async fn deliver(&self, event: &Value, what: &str) -> DemoResult<()> {
        let (body, header) = signed(event, WEBHOOK_SECRET, self.clock.now().unix_timestamp());
        let verified = self.verifier.verify(&body, Some(&header))?;
        let outcome = self.demo.billing.process(&verified).await?;
        let said = match outcome {
            ProcessOutcome::Applied {
                tenant_id, phase, ..
            } => {
                let plan = self
                    .demo
                    .billing
                    .state(&tenant_id)
                    .await?
                    .and_then(|s| s.plan);
                let plan = plan.map(|p| format!(" on {}", p.plan)).unwrap_or_default();
                format!("{tenant_id} is now {}{plan}", phase.name())
            }
            ProcessOutcome::Unchanged { tenant_id } => format!("{tenant_id} unchanged"),
            ProcessOutcome::AlreadyProcessed { .. } => {
                "already processed: ignored (Stripe delivered it twice)".into()
            }
            other => format!("{other:?}"),
        };
        println!("   → {what:<44} {said}");
        self.deliver_notices().await
    }

    async fn tick(&self, advance: Duration) -> DemoResult<()> {
        self.clock.advance(advance);
        let report = self.demo.billing.tick(self.clock.now()).await?;
        println!("   ⏱ clock +{} days → billing tick", advance.whole_days());
        for change in report.changed {
            println!("      {} is now {}", change.tenant_id, change.phase.name());
        }
        self.deliver_notices().await
    }

    /// Carries out the notices the billing processor queued (here: prints them).
    async fn deliver_notices(&self) -> DemoResult<()> {
        let store = self.demo.billing.store();
        let pending = store.pending_effects(100).await?;
        for item in &pending {
            if let Effect::Notify(notice) = &item.effect {
                println!(
                    "      ✉ to {}: {}",
                    item.tenant_id,
                    notice.notification_kind()
                );
            }
        }
        let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
        store.ack_effects(&ids).await?;
        Ok(())
    }
}

async fn bill(demo: &Assembly, clock: &ManualClock, tenants: &[TenantId]) -> DemoResult<()> {
    println!("\n2. Stripe webhooks: signed, verified and processed");
    let verifier = WebhookVerifier::builder()
        .secret(WEBHOOK_SECRET)
        .clock(Arc::new(clock.clone()))
        .build()?;
    let stripe = Stripe {
        demo,
        clock,
        verifier,
    };
    let (acme, bluebird) = (tenants[0].as_str(), tenants[1].as_str());
    // Each event happens a minute after the previous one.
    let now = || {
        clock.advance(Duration::minutes(1));
        clock.now().unix_timestamp()
    };

    let session = checkout_session(acme, "cus_acme", "sub_acme", "paid");
    stripe
        .deliver(
            &event("checkout.session.completed", session, now()),
            "checkout.session.completed (acme)",
        )
        .await?;
    let sub = subscription(
        "sub_acme",
        "cus_acme",
        "active",
        "price_professional_monthly",
        Some(acme),
    );
    stripe
        .deliver(
            &event("customer.subscription.created", sub, now()),
            "customer.subscription.created (pro)",
        )
        .await?;

    let session = checkout_session(bluebird, "cus_bluebird", "sub_bluebird", "paid");
    stripe
        .deliver(
            &event("checkout.session.completed", session, now()),
            "checkout.session.completed (bluebird)",
        )
        .await?;
    let sub = subscription(
        "sub_bluebird",
        "cus_bluebird",
        "active",
        "price_starter_monthly",
        Some(bluebird),
    );
    stripe
        .deliver(
            &event("customer.subscription.created", sub, now()),
            "customer.subscription.created (starter)",
        )
        .await?;
    let failed = event(
        "invoice.payment_failed",
        invoice("sub_bluebird", "cus_bluebird", 0, InvoiceShape::Parent),
        now(),
    );
    stripe
        .deliver(&failed, "invoice.payment_failed (bluebird)")
        .await?;
    stripe.deliver(&failed, "the same event again").await?;

    stripe.tick(Duration::days(8)).await?;
    let paid = invoice(
        "sub_bluebird",
        "cus_bluebird",
        9_900,
        InvoiceShape::TopLevel,
    );
    stripe
        .deliver(
            &event("invoice.payment_succeeded", paid, now()),
            "invoice.payment_succeeded (bluebird)",
        )
        .await?;
    stripe.tick(Duration::days(7)).await
}

async fn summary(demo: &Assembly) -> DemoResult<()> {
    println!("\n4. The fleet");
    println!(
        "   {:<16} {:<10} {:<16} {:<11} {:<13} modules",
        "tenant", "onboarding", "schema version", "billing", "plan"
    );
    for tenant in demo.plane.directory.list(&TenantFilter::all()).await? {
        print_row(demo, &tenant).await?;
    }
    Ok(())
}

async fn print_row(demo: &Assembly, tenant: &Tenant) -> DemoResult<()> {
    let version = match &tenant.database {
        Some(db) => tenant_migrate::TenantMigrator::new(demo.migrations.last_read())
            .status(db)
            .await?
            .current_version
            .map_or("-".to_owned(), |v| v.to_string()),
        None => "-".to_owned(),
    };
    let billing = demo.billing.state(&tenant.id).await?;
    let (phase, plan, modules) = match &billing {
        Some(state) => (
            state.phase.name(),
            state
                .plan
                .as_ref()
                .map_or("-".to_owned(), |p| p.plan.to_string()),
            state
                .enabled_modules(demo.billing.config())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => ("-", "-".to_owned(), String::new()),
    };
    println!(
        "   {:<16} {:<10} {:<16} {:<11} {:<13} {modules}",
        tenant.id,
        tenant.status.name(),
        version,
        phase,
        plan
    );
    Ok(())
}
