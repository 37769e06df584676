//! 100 signups at once (what `SupabaseProvisioner::provision` does: look up, create,
//! poll until healthy, read the connection details) against the stand-in enforcing
//! Supabase's limit per endpoint scope, 120 requests per window, with the minute
//! compressed to a 2 s window.
//!
//! Prints, for per-endpoint pacing (the default) and the older global pacing side by
//! side: the time taken, the busiest endpoint scope and its request count, the
//! minimum that scope's limit allows, and the ratio. Per-endpoint pacing must stay
//! within 1.2x.
//!
//! ```text
//! cargo bench -p supabase-mgmt --bench signup_pacing
//! ```

use std::time::{Duration, Instant};

use supabase_mgmt::testing::{self as fixtures, FakeConfig, FakeSupabase, ORG, TOKEN};
use supabase_mgmt::{ManagementClient, Pacing, Region, SupabaseProvisioner, WaitOptions};
use tenancy_core::{RetryPolicy, TenantId};

const SIGNUPS: usize = 100;
const LIMIT: u32 = 120;
const WINDOW: Duration = Duration::from_secs(2);
/// Status polls that see `COMING_UP` before `ACTIVE_HEALTHY`.
const COMING_UP_POLLS: u32 = 2;
/// The ratio per-endpoint pacing must stay within.
const TARGET_RATIO: f64 = 1.2;

struct Outcome {
    elapsed: Duration,
    failures: usize,
    refused: u64,
    busiest: (String, u64),
}

impl Outcome {
    /// The least time the busiest scope's limit allows its requests: each scope's
    /// windows start at its first request and admit `LIMIT` each, so the last of `n`
    /// requests goes `ceil(n / LIMIT) - 1` windows after the first.
    fn window_minimum(&self) -> Duration {
        let windows = self.busiest.1.div_ceil(u64::from(LIMIT)).saturating_sub(1);
        WINDOW * windows as u32
    }

    /// The same at the sustained rate, `n / LIMIT` windows (a looser reading).
    fn rate_minimum(&self) -> Duration {
        WINDOW.mul_f64(self.busiest.1 as f64 / f64::from(LIMIT))
    }

    fn ratio(&self) -> f64 {
        self.elapsed.as_secs_f64() / self.window_minimum().as_secs_f64()
    }
}

async fn signups(pacing: Pacing) -> Outcome {
    let (server, fake) = FakeSupabase::start(FakeConfig {
        coming_up_polls: COMING_UP_POLLS,
        endpoint_rate_limit: Some((LIMIT, WINDOW)),
        ..FakeConfig::default()
    })
    .await;
    let policy = RetryPolicy::default()
        .with_max_attempts(20)
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500));
    let client = ManagementClient::builder(TOKEN.into())
        .base_url(server.uri())
        .retry_policy(policy.clone())
        .pacing(Some(pacing))
        .build()
        .expect("the bench client's settings are valid");
    let wait = WaitOptions::new(Duration::from_secs(120)).poll_policy(
        policy
            .with_initial_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(100)),
    );
    let provisioner = SupabaseProvisioner::builder(client, ORG, fixtures::passwords())
        .name_prefix("bench-")
        .region(Region::EuCentral1)
        .wait(wait)
        .build()
        .expect("the bench provisioner's settings are valid");

    let started = Instant::now();
    let runs = (0..SIGNUPS).map(|i| {
        let provisioner = provisioner.clone();
        tokio::spawn(async move {
            let tenant = TenantId::new(format!("tenant-{i:03}")).expect("a valid tenant id");
            provisioner.provision_tenant(&tenant).await
        })
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let failures = results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count();
    let busiest = fake
        .served_by_scope()
        .into_iter()
        .max_by_key(|(_, served)| *served)
        .unwrap_or_default();
    Outcome {
        elapsed,
        failures,
        refused: fake.counts().1,
        busiest,
    }
}

fn report(label: &str, outcome: &Outcome) {
    println!(
        "{label:<13} {:>6.2} s  busiest {} ({} requests): minimum {:.2} s, ratio {:.2}x \
         (sustained-rate minimum {:.2} s: {:.2}x)  429s {}  failures {}",
        outcome.elapsed.as_secs_f64(),
        outcome.busiest.0,
        outcome.busiest.1,
        outcome.window_minimum().as_secs_f64(),
        outcome.ratio(),
        outcome.rate_minimum().as_secs_f64(),
        outcome.elapsed.as_secs_f64() / outcome.rate_minimum().as_secs_f64(),
        outcome.refused,
        outcome.failures,
    );
}

#[tokio::main]
async fn main() {
    println!(
        "{SIGNUPS} signups at once; the stand-in allows {LIMIT} requests per {WINDOW:?} per endpoint scope (429 beyond)"
    );
    let per_endpoint = signups(Pacing::new(LIMIT, WINDOW)).await;
    report("per endpoint", &per_endpoint);
    let global = signups(Pacing::global(LIMIT, WINDOW)).await;
    report("global", &global);
    println!(
        "per-endpoint pacing takes {:.2}x the time of global pacing",
        per_endpoint.elapsed.as_secs_f64() / global.elapsed.as_secs_f64()
    );
    if per_endpoint.failures + global.failures > 0 || per_endpoint.ratio() > TARGET_RATIO {
        eprintln!("per-endpoint pacing missed its target of {TARGET_RATIO}x, or a signup failed");
        std::process::exit(1);
    }
}
