//! Provisions 100 tenants at once against a fake Management API that enforces the
//! real limit with time scaled down (120 requests per second instead of per minute,
//! 429 beyond), and compares the total time with the minimum the limit allows.
//!
//! Two clients run side by side: one pacing all its requests together
//! (`Pacing::global`, matching this fake's single limit), one relying only on 429s
//! and their `X-RateLimit-Reset`. For Supabase's per-endpoint limits see the
//! `signup_pacing` bench.
//!
//! ```text
//! cargo run --release -p supabase-mgmt --example provision_bench
//! ```

use std::time::{Duration, Instant};

use supabase_mgmt::testing::{self as fixtures, FakeConfig, FakeSupabase, ORG, TOKEN};
use supabase_mgmt::{ManagementClient, Pacing, Region, SupabaseProvisioner, WaitOptions};
use tenancy_core::{RetryPolicy, TenantId};

const TENANTS: usize = 100;
const LIMIT: u32 = 120;
const WINDOW: Duration = Duration::from_secs(1);
/// Polls that see `COMING_UP` before the project is `ACTIVE_HEALTHY`.
const COMING_UP_POLLS: u32 = 2;
/// The fewest requests one provisioning can make: list, create, the status polls,
/// one health probe, the pooler config.
const REQUIRED_PER_TENANT: u32 = 1 + 1 + (COMING_UP_POLLS + 1) + 1 + 1;

struct Outcome {
    failures: usize,
    elapsed: Duration,
    served: u64,
    refused: u64,
}

async fn run(pacing: Option<Pacing>) -> Outcome {
    let config = FakeConfig {
        coming_up_polls: COMING_UP_POLLS,
        rate_limit: Some((LIMIT, WINDOW)),
        ..FakeConfig::default()
    };
    let (server, fake) = FakeSupabase::start(config).await;
    let policy = RetryPolicy::default()
        .with_max_attempts(20)
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500));
    let client = ManagementClient::builder(TOKEN.into())
        .base_url(server.uri())
        .retry_policy(policy.clone())
        .pacing(pacing)
        .build()
        .expect("client");
    let wait = WaitOptions::new(Duration::from_secs(120))
        .poll_policy(policy.with_initial_delay(Duration::from_millis(100)));
    let provisioner = SupabaseProvisioner::builder(client, ORG, fixtures::passwords())
        .name_prefix("bench-")
        // A fixed region: the recommended one would cost one more request per run.
        .region(Region::EuCentral1)
        .wait(wait)
        .build()
        .expect("provisioner");

    let started = Instant::now();
    let runs = (0..TENANTS).map(|i| {
        let provisioner = provisioner.clone();
        tokio::spawn(async move {
            let tenant = TenantId::new(format!("tenant-{i:03}")).expect("tenant id");
            provisioner.provision_tenant(&tenant).await
        })
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let failures = results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count();
    for error in results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.as_ref().err())
        .take(3)
    {
        eprintln!("failure: {error}");
    }
    assert_eq!(
        fake.projects().len(),
        TENANTS - failures,
        "one project per tenant"
    );
    let (served, refused) = fake.counts();
    Outcome {
        failures,
        elapsed,
        served,
        refused,
    }
}

/// Prints the measured time against two lower bounds computed from the fewest
/// requests the work needs (not from what the client happened to send): the
/// sustained rate (`LIMIT` per `WINDOW`), and the fixed window the fake enforces
/// (`LIMIT` at the start of each window, so the last request may start after
/// `ceil(required / LIMIT) - 1` windows).
fn report(label: &str, outcome: &Outcome) {
    let required = f64::from(REQUIRED_PER_TENANT) * TENANTS as f64;
    let rate = f64::from(LIMIT) / WINDOW.as_secs_f64();
    let sustained_minimum = required / rate;
    let window_minimum = ((required / f64::from(LIMIT)).ceil() - 1.0) * WINDOW.as_secs_f64();
    let total = outcome.elapsed.as_secs_f64();
    println!(
        "{label:<22} failures {:>3}  requests {:>4} (required {required})  429s {:>4}  total {total:>6.2} s  \
         vs fixed-window minimum {window_minimum:.2} s: {:.2}x  vs sustained-rate minimum {sustained_minimum:.2} s: {:.2}x",
        outcome.failures,
        outcome.served,
        outcome.refused,
        total / window_minimum,
        total / sustained_minimum,
    );
}

#[tokio::main]
async fn main() {
    println!("provisioning {TENANTS} tenants concurrently; the fake allows {LIMIT} requests per {WINDOW:?} (429 beyond)");
    // This fake counts every request together, so the client paces them together.
    let paced = run(Some(Pacing::global(LIMIT, WINDOW))).await;
    report("paced (global)", &paced);
    let unpaced = run(None).await;
    report("unpaced, 429-driven", &unpaced);
    if paced.failures + unpaced.failures > 0 {
        std::process::exit(1);
    }
}
