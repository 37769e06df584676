//! What the benchmark binaries share: a fleet of real tenant databases on one
//! PostgreSQL server, made and dropped, and the median of measured rounds.

use sqlx::{Connection, PgConnection};
use tenancy_core::DatabaseUrl;

/// A benchmark's result: any error ends it with its message.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs `bench` on a new runtime; an error ends it with `name: error` and a failure.
pub fn run_bench(
    name: &str,
    bench: impl std::future::Future<Output = BenchResult<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The URLs of `count` tenant databases `<prefix>t00000`, `<prefix>t00001`, … on `server`.
pub fn fleet_urls(server: &DatabaseUrl, prefix: &str, count: usize) -> Vec<DatabaseUrl> {
    (0..count)
        .map(|i| server.with_database(&format!("{prefix}t{i:05}")))
        .collect()
}

/// Creates each database of `urls` that `server` does not have yet (names start
/// with `prefix`, so an earlier run's are reused).
pub async fn create_databases(
    server: &DatabaseUrl,
    prefix: &str,
    urls: &[DatabaseUrl],
) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut admin)
            .await?;
    for name in urls.iter().filter_map(DatabaseUrl::database_name) {
        if !existing.iter().any(|e| e == name) {
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .await?;
        }
    }
    admin.close().await?;
    Ok(())
}

/// Drops every database of `urls`, ending the sessions still on them.
pub async fn drop_databases(server: &DatabaseUrl, urls: &[DatabaseUrl]) -> BenchResult<()> {
    let mut admin = PgConnection::connect(server.expose()).await?;
    for name in urls.iter().filter_map(DatabaseUrl::database_name) {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    Ok(())
}

/// The median of `values` (NaN when there are none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A TCP proxy in front of a database server that delays every byte by a fixed
/// time in each direction: a server far away, on one machine. Bytes pass through
/// unchanged, so TLS (`sslmode=require`) is negotiated end to end and pays its
/// round trips like any other.
#[derive(Debug)]
pub struct DelayProxy {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free local port and relays each connection to `upstream`
    /// (`host:port`), `delay` late each way.
    pub async fn start(upstream: String, delay: std::time::Duration) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match tokio::net::TcpStream::connect(&upstream).await {
                        Ok(server) => relay_both(client, server, delay).await,
                        Err(error) => eprintln!("delay proxy: cannot reach {upstream}: {error}"),
                    }
                });
            }
        });
        Ok(Self { address, task })
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn route(&self, url: &DatabaseUrl) -> BenchResult<DatabaseUrl> {
        let mut raw = url::Url::parse(url.expose())?;
        raw.set_host(Some("127.0.0.1"))?;
        raw.set_port(Some(self.port()))
            .map_err(|()| "the database URL cannot take a port")?;
        Ok(DatabaseUrl::parse(raw.as_str())?)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_both(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    delay: std::time::Duration,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        relay(client_read, server_write, delay),
        relay(server_read, client_write, delay)
    );
}

/// Copies `from` to `to`, each chunk written `delay` after it arrived; chunks
/// keep their order and do not wait for each other (latency, not bandwidth).
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: std::time::Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (chunks, mut arriving) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if chunks.send((due, buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = arriving.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}
