//! Webhook ingest under load: `POST /api/webhooks/stripe` served by axum over the
//! SQLite and the PostgreSQL billing stores, against a floor that does one INSERT
//! transaction per request through the same axum stack and the same pool.
//!
//! `cargo bench -p stripe-billing --bench webhook_ingest [-- EVENTS_PER_ROUND]`
//! (PostgreSQL at 127.0.0.1:5432, as the tests use). 64 connections send distinct
//! signed events; rounds alternate floor and webhook; the figures are medians of the
//! rounds, and every event sent is counted in the store afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use stripe_billing::http::{webhook_router, WebhookRoutes};
use stripe_billing::testing::{event, signed, subscription};
use stripe_billing::{
    BillingProcessor, BillingStore, LifecycleConfig, PlanCatalog, PostgresBillingStore,
    PricingPlan, SqliteBillingStore, WebhookVerifier,
};
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::TenantId;
use time::OffsetDateTime;

const SECRET: &str = "whsec_ingest_bench_secret";
const CONNECTIONS: usize = 64;
const TENANTS: usize = 256;
const ROUNDS: usize = 5;
const PRICE: &str = "price_professional_monthly";

/// One store under test: the webhook's processor and a floor over the same pool.
struct Subject {
    name: &'static str,
    processor: BillingProcessor,
    floor: Floor,
    _keep: Box<dyn std::any::Any + Send>,
}

#[derive(Clone)]
enum Floor {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Floor {
    async fn prepare(&self) {
        let ddl =
            "CREATE TABLE IF NOT EXISTS floor_events (id TEXT PRIMARY KEY, body TEXT NOT NULL)";
        let made = match self {
            Self::Sqlite(pool) => sqlx::query(ddl).execute(pool).await.map(|_| ()),
            Self::Postgres(pool) => sqlx::query(ddl).execute(pool).await.map(|_| ()),
        };
        made.expect("floor table");
    }

    /// One INSERT in its own transaction, as the processor's floor.
    async fn insert(&self, id: &str, body: &str) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO floor_events (id, body) VALUES ($1, $2)";
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(sql)
                    .bind(id)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(sql)
                    .bind(id)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
        }
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(&sql)
                .fetch_one(pool)
                .await
                .expect("count"),
            Self::Postgres(pool) => sqlx::query_scalar(&sql)
                .fetch_one(pool)
                .await
                .expect("count"),
        }
    }
}

fn config() -> LifecycleConfig {
    let catalog = PlanCatalog::new([PricingPlan::new("professional", "Professional")
        .monthly(PRICE, 4_900)
        .modules(["inventory"])])
    .expect("catalog");
    LifecycleConfig::new(catalog)
}

async fn sqlite() -> Subject {
    let file = TempSqlite::new();
    let store = SqliteBillingStore::connect(&format!("{}?mode=rwc", file.url()))
        .await
        .expect("sqlite store");
    let floor = Floor::Sqlite(store.pool().clone());
    subject("sqlite", Arc::new(store), floor, Box::new(file)).await
}

async fn postgres() -> Subject {
    let db = TestDatabase::create_with_prefix("tk_ingest")
        .await
        .expect("database");
    let store = PostgresBillingStore::connect(db.url().expose())
        .await
        .expect("postgres store");
    let floor = Floor::Postgres(store.pool().clone());
    subject("postgres", Arc::new(store), floor, Box::new(db)).await
}

async fn subject(
    name: &'static str,
    store: Arc<dyn BillingStore>,
    floor: Floor,
    keep: Box<dyn std::any::Any + Send>,
) -> Subject {
    let processor = BillingProcessor::new(store, config());
    let now = OffsetDateTime::now_utc();
    for tenant in 0..TENANTS {
        let id = TenantId::try_from(format!("t{tenant:04}")).expect("id");
        processor.start_trial(&id, now).await.expect("trial");
    }
    floor.prepare().await;
    Subject {
        name,
        processor,
        floor,
        _keep: Box::new(keep),
    }
}

/// Serves the webhook at `/webhook` and the floor at `/floor`.
async fn serve(subject: &Subject) -> String {
    let routes = WebhookRoutes::new(
        subject.processor.clone(),
        Some(WebhookVerifier::new(SECRET).expect("secret")),
    );
    let webhook = Router::new()
        .nest("/webhook", webhook_router())
        .with_state(routes);
    let floor = Router::new()
        .route("/floor", post(floor_insert))
        .with_state(subject.floor.clone());
    let app = webhook.merge(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// The floor: read the id the way the webhook does (parse the JSON), one INSERT.
async fn floor_insert(State(floor): State<Floor>, body: String) -> StatusCode {
    let Ok(event) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = event["id"].as_str().unwrap_or_default();
    match floor.insert(id, &body).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `count` distinct signed subscription events over the tenants.
fn events(count: usize, round: usize) -> Vec<(Vec<u8>, String)> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    (0..count)
        .map(|i| {
            let tenant = format!("t{:04}", i % TENANTS);
            let object = subscription(
                &format!("sub_{tenant}"),
                &format!("cus_{tenant}"),
                "active",
                PRICE,
                Some(&tenant),
            );
            let created = now - 10_000 + (round * count + i) as i64;
            let event = event("customer.subscription.updated", object, created);
            signed(&event, SECRET, now)
        })
        .collect()
}

struct Figures {
    per_second: f64,
    p99: Duration,
}

/// Sends every event over `CONNECTIONS` connections; panics on a non-2xx answer.
async fn load(url: &str, events: Arc<Vec<(Vec<u8>, String)>>) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, events, next) =
                (client.clone(), url.to_owned(), events.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, header)) = events.get(i) else {
                        return latencies;
                    };
                    let sent = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("stripe-signature", header)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    assert!(answer.status().is_success(), "{url}: {}", answer.status());
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(events.len());
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Figures {
        per_second: events.len() as f64 / elapsed.as_secs_f64(),
        p99,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure(subject: Subject, per_round: usize) {
    let base = serve(&subject).await;
    let (mut webhook, mut floor) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let batch = Arc::new(events(per_round, round));
        // Alternate which goes first, so neither always meets a warmer server.
        let order: [&str; 2] = if round % 2 == 0 {
            ["floor", "webhook"]
        } else {
            ["webhook", "floor"]
        };
        for which in order {
            let figures = load(&format!("{base}/{which}"), batch.clone()).await;
            match which {
                "floor" => floor.push(figures),
                _ => webhook.push(figures),
            }
        }
    }
    let applied = subject.floor.count("billing_events").await;
    let floored = subject.floor.count("floor_events").await;
    let sent = (per_round * ROUNDS) as i64;
    let rate = |f: &[Figures]| median(f.iter().map(|f| f.per_second).collect());
    let p99 = |f: &[Figures]| median(f.iter().map(|f| f.p99.as_secs_f64() * 1e3).collect());
    println!(
        "{:<9} webhook {:>7.0} events/s p99 {:>6.1} ms | floor {:>7.0}/s p99 {:>6.1} ms | ratio {:.2} | stored {applied}/{sent} events (floor {floored})",
        subject.name,
        rate(&webhook),
        p99(&webhook),
        rate(&floor),
        p99(&floor),
        rate(&webhook) / rate(&floor),
    );
    assert_eq!(applied, sent, "every event is stored exactly once");
}

#[tokio::main]
async fn main() {
    let per_round = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(2_000);
    println!(
        "webhook ingest: {per_round} events per round, {ROUNDS} rounds, {CONNECTIONS} connections, medians"
    );
    measure(sqlite().await, per_round).await;
    measure(postgres().await, per_round).await;
}
