//! The no-op check of an up-to-date tenant costs one round trip: counted on the
//! wire by a TCP relay between the migrator and PostgreSQL.

mod support;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use support::*;
use tenancy_core::testing::TestDatabase;
use tenant_migrate::TenantMigrator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Counts the batches of bytes the client sends while armed: each batch is one
/// request the client then waits on (pipelined messages arrive as one batch).
#[derive(Default)]
struct Wire {
    armed: AtomicBool,
    client_batches: AtomicUsize,
}

impl Wire {
    fn arm(&self) {
        self.client_batches.store(0, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    fn batches(&self) -> usize {
        self.client_batches.load(Ordering::SeqCst)
    }
}

async fn relay(db: &TestDatabase, wire: Arc<Wire>) -> PgConnection {
    let options = PgConnectOptions::from_str(db.url().expose()).unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if wire.armed.load(Ordering::SeqCst) {
                wire.client_batches.fetch_add(1, Ordering::SeqCst);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    options
        .host("127.0.0.1")
        .port(port)
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn up_to_date_check_is_one_round_trip() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());
    migrator.apply(&target(&db)).await.unwrap();

    let wire = Arc::new(Wire::default());
    let mut conn = relay(&db, wire.clone()).await;

    wire.arm();
    assert!(migrator
        .status_postgres(&mut conn)
        .await
        .unwrap()
        .is_up_to_date());
    assert_eq!(wire.batches(), 1, "status() is one request");

    wire.arm();
    assert!(!migrator.apply_postgres(&mut conn).await.unwrap().changed());
    assert_eq!(
        wire.batches(),
        1,
        "apply() of an up-to-date tenant is one request"
    );

    // The relay does see every request: a pending migration needs several.
    let fresh = TestDatabase::create().await.unwrap();
    let mut fresh_conn = relay(&fresh, wire.clone()).await;
    wire.arm();
    migrator.apply_postgres(&mut fresh_conn).await.unwrap();
    assert!(wire.batches() > 3, "{} requests", wire.batches());
}
