//! Webhook ingest under load: `POST /api/webhooks/stripe` served by axum over the
//! SQLite and the PostgreSQL billing stores, against a floor that does one INSERT
//! transaction per request through the same axum stack and the same pool.
//!
//! `cargo bench -p stripe-billing --bench webhook_ingest [-- EVENTS_PER_ROUND]`
//! (PostgreSQL at 127.0.0.1:5432, as the tests use). 64 connections send distinct
//! signed events; rounds alternate floor and webhook; the figures are medians of the
//! rounds, and every event sent is counted in the store afterwards.
//!
//! Then "store briefly unreachable": one load run per store during which the store
//! goes away for a moment (PostgreSQL: the pool reaches it through a TCP proxy the
//! bench cuts, dropping every connection and refusing new ones, then restores;
//! SQLite: another connection holds the exclusive write lock, and the pool's
//! writers give up after a short busy timeout). The load generator behaves as
//! Stripe does: on a non-2xx answer or a connection error it sends the same event
//! again (bounded, backing off). Afterwards every event must be stored exactly once,
//! and every event answered 200 must be in the store.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
/// How long the store is unreachable in the outage case.
const OUTAGE: Duration = Duration::from_millis(1_500);
/// How often the load generator sends one event before giving up (Stripe: three days).
const MAX_ATTEMPTS: u32 = 60;

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

// ---- the store briefly unreachable ----

/// A TCP proxy in front of PostgreSQL: while cut, it drops every connection it
/// carries and closes each new one at once.
#[derive(Clone)]
struct Proxy {
    port: u16,
    open: Arc<AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (cuts, _) = tokio::sync::watch::channel(0);
        let proxy = Self {
            port,
            open: Arc::new(AtomicBool::new(true)),
            cuts,
        };
        let serving = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !serving.open.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let mut cut = serving.cuts.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// How the store is made unreachable.
enum Outage {
    Proxy(Proxy),
    /// Another connection takes SQLite's exclusive lock.
    SqliteLock(Box<sqlx::sqlite::SqliteConnectOptions>),
}

impl Outage {
    /// Makes the store unreachable for [`OUTAGE`], then reachable again.
    async fn run(&self) {
        match self {
            Self::Proxy(proxy) => {
                proxy.cut();
                tokio::time::sleep(OUTAGE).await;
                proxy.restore();
            }
            Self::SqliteLock(options) => {
                use sqlx::{ConnectOptions, Connection};
                let mut holder = options.connect().await.expect("lock holder");
                sqlx::raw_sql("BEGIN EXCLUSIVE")
                    .execute(&mut holder)
                    .await
                    .expect("exclusive lock");
                tokio::time::sleep(OUTAGE).await;
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut holder)
                    .await
                    .expect("release");
                holder.close().await.expect("close");
            }
        }
    }
}

/// What the load generator saw while the store went away.
#[derive(Default)]
struct Deliveries {
    /// Event ids answered 200.
    acknowledged: Mutex<Vec<String>>,
    /// 5xx answers.
    server_errors: AtomicUsize,
    /// Connection errors (no answer).
    connection_errors: AtomicUsize,
    /// Other non-2xx answers.
    other: AtomicUsize,
    /// Events never acknowledged within [`MAX_ATTEMPTS`].
    abandoned: AtomicUsize,
}

/// Sends every event over `CONNECTIONS` connections as Stripe does: again on any
/// non-2xx answer or connection error, backing off, at most [`MAX_ATTEMPTS`] times.
async fn load_retrying(
    url: &str,
    events: Arc<Vec<(String, Vec<u8>, String)>>,
    deliveries: Arc<Deliveries>,
    sent: Arc<AtomicUsize>,
) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, events, next, deliveries, sent) = (
                client.clone(),
                url.to_owned(),
                events.clone(),
                next.clone(),
                deliveries.clone(),
                sent.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((id, body, header)) = events.get(i) else {
                        return;
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    let mut acknowledged = false;
                    for attempt in 0..MAX_ATTEMPTS {
                        let answer = client
                            .post(&url)
                            .header("stripe-signature", header)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match answer {
                            Ok(answer) if answer.status().is_success() => {
                                acknowledged = true;
                                break;
                            }
                            Ok(answer) if answer.status().is_server_error() => {
                                deliveries.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {
                                deliveries.other.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                deliveries.connection_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let backoff = Duration::from_millis(10 << attempt.min(5));
                        tokio::time::sleep(backoff.min(Duration::from_millis(250))).await;
                    }
                    if acknowledged {
                        let mut ids = deliveries.acknowledged.lock().expect("ids");
                        ids.push(id.clone());
                    } else {
                        deliveries.abandoned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    started.elapsed()
}

/// One load run with the store unreachable for a moment a quarter of the way in.
async fn measure_outage(
    name: &str,
    processor: BillingProcessor,
    floor: Floor,
    outage: Outage,
    count: usize,
) {
    let subject = Subject {
        name: "outage",
        processor,
        floor,
        _keep: Box::new(()),
    };
    let base = serve(&subject).await;
    let events: Vec<(String, Vec<u8>, String)> = events(count, ROUNDS + 1)
        .into_iter()
        .map(|(body, header)| {
            let event: Value = serde_json::from_slice(&body).expect("event");
            let id = event["id"].as_str().expect("id").to_owned();
            (id, body, header)
        })
        .collect();
    let ids: Vec<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    let deliveries = Arc::new(Deliveries::default());
    let sent = Arc::new(AtomicUsize::new(0));
    let before = subject.floor.count("billing_events").await;
    let cut = {
        let sent = sent.clone();
        async move {
            while sent.load(Ordering::Relaxed) < count / 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outage.run().await;
        }
    };
    let url = format!("{base}/webhook");
    let (elapsed, ()) = tokio::join!(
        load_retrying(&url, Arc::new(events), deliveries.clone(), sent),
        cut
    );
    let store = subject.processor.store();
    let stored = subject.floor.count("billing_events").await - before;
    let processed = count_processed(store.as_ref(), &ids).await;
    let acknowledged = deliveries.acknowledged.lock().expect("ids").clone();
    let acknowledged_stored = count_processed(store.as_ref(), &acknowledged).await;
    let server_errors = deliveries.server_errors.load(Ordering::Relaxed);
    let connection_errors = deliveries.connection_errors.load(Ordering::Relaxed);
    let other = deliveries.other.load(Ordering::Relaxed);
    let abandoned = deliveries.abandoned.load(Ordering::Relaxed);
    println!(
        "{name:<9} outage {:.1} s: {:>7.0} events/s over the run | {server_errors} answered 5xx, {connection_errors} connection errors, {other} other non-2xx, all retried | stored {stored}/{count} events, {processed}/{count} ids found | answered 200 {} of which in the store {acknowledged_stored} | abandoned {abandoned}",
        OUTAGE.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        acknowledged.len(),
    );
    assert!(
        server_errors + connection_errors > 0,
        "{name}: the outage was not felt"
    );
    assert_eq!(
        abandoned, 0,
        "{name}: every event is acknowledged eventually"
    );
    assert_eq!(
        other, 0,
        "{name}: only 5xx or connection errors during the outage"
    );
    assert_eq!(
        stored as usize, count,
        "{name}: every event stored exactly once"
    );
    assert_eq!(processed, count, "{name}: every event id is in the store");
    assert_eq!(
        acknowledged_stored,
        acknowledged.len(),
        "{name}: every event answered 200 is in the store"
    );
}

/// SQLite whose writers give up after a short busy timeout, and the lock that stops them.
async fn sqlite_outage(count: usize) {
    let file = TempSqlite::new();
    let url = format!("{}?mode=rwc", file.url());
    let pool = tenancy_core::persistence::StorePoolOptions::new()
        .create_if_missing(true)
        .busy_timeout(Duration::from_millis(250))
        .open_sqlite(&url)
        .await
        .expect("sqlite pool");
    let store = SqliteBillingStore::from_pool(pool.clone())
        .await
        .expect("sqlite store");
    let holder = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .expect("options")
        .busy_timeout(Duration::from_secs(30));
    let subject = subject("sqlite", Arc::new(store), Floor::Sqlite(pool), Box::new(())).await;
    measure_outage(
        "sqlite",
        subject.processor,
        subject.floor,
        Outage::SqliteLock(Box::new(holder)),
        count,
    )
    .await;
    drop(file);
}

/// PostgreSQL reached through a proxy the bench cuts.
async fn postgres_outage(count: usize) {
    let db = TestDatabase::create_with_prefix("tk_ingest_outage")
        .await
        .expect("database");
    let options = sqlx::postgres::PgConnectOptions::from_str(db.url().expose()).expect("url");
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.port(proxy.port))
        .await
        .expect("pool through the proxy");
    let store = PostgresBillingStore::from_pool(pool.clone())
        .await
        .expect("postgres store");
    let subject = subject(
        "postgres",
        Arc::new(store),
        Floor::Postgres(pool),
        Box::new(()),
    )
    .await;
    measure_outage(
        "postgres",
        subject.processor,
        subject.floor,
        Outage::Proxy(proxy),
        count,
    )
    .await;
    drop(db);
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
    println!("store briefly unreachable: {per_round} events, {CONNECTIONS} connections, retried as Stripe does");
    sqlite_outage(per_round).await;
    postgres_outage(per_round).await;
}

/// How many of `ids` the store recorded as processed, read a thousand at a time.
async fn count_processed(store: &dyn BillingStore, ids: &[String]) -> usize {
    let mut found = 0;
    for chunk in ids.chunks(1_000) {
        found += store
            .processed_events(chunk)
            .await
            .expect("read back")
            .len();
    }
    found
}
