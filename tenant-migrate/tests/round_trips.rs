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
use tenant_migrate::{MigrationSet, TenantMigrator};
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
    let port = listen(db, wire).await;
    PgConnectOptions::from_str(db.url().expose())
        .unwrap()
        .host("127.0.0.1")
        .port(port)
        .connect()
        .await
        .unwrap()
}

/// The database's target through a relay counting on `wire`.
async fn relayed(db: &TestDatabase, wire: &Arc<Wire>) -> tenancy_core::DatabaseTarget {
    let port = listen(db, wire.clone()).await;
    url(&format!(
        "postgres://postgres@127.0.0.1:{port}/{}",
        db.name()
    ))
}

/// Relays the next connection to `127.0.0.1:<port>` to the database's server.
async fn listen(db: &TestDatabase, wire: Arc<Wire>) -> u16 {
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
    port
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

/// What a fleet rollout does per tenant: read the version, then apply the one
/// pending migration, on one connection.
#[tokio::test]
async fn applying_after_reading_the_status_takes_few_requests() {
    let (db, migrator) = tenant_one_behind().await;
    let (first, second) = (FIXTURE_VERSIONS[0], FIXTURE_VERSIONS[1]);
    let mut conn = connect(&db).await;
    let wire = Arc::new(Wire::default());
    let mut session = migrator.connect(&relayed(&db, &wire).await).await.unwrap();

    wire.arm();
    assert_eq!(session.status().await.unwrap().current_version, Some(first));
    assert_eq!(wire.batches(), 1, "status() is one request");
    wire.arm();
    assert_eq!(session.apply().await.unwrap().to_version, Some(second));
    // The lock with the history read under it; the step's transaction with its
    // history row and the unlock. The status just read spares a read before the lock.
    assert_eq!(wire.batches(), 2, "apply() after status()");

    session.revert(first).await.unwrap();
    wire.arm();
    let status = session.lock_status().await.unwrap();
    assert_eq!(status.current_version, Some(first));
    assert_eq!(wire.batches(), 1, "lock_status() is one request");
    assert_eq!(
        advisory_locks(&mut conn).await,
        1,
        "held after lock_status()"
    );
    wire.arm();
    assert_eq!(session.apply().await.unwrap().to_version, Some(second));
    assert_eq!(
        wire.batches(),
        1,
        "apply() under the held lock: one request"
    );
    assert_eq!(advisory_locks(&mut conn).await, 0, "released by apply()");

    session.close().await;
    assert_eq!(history(&db).await.len(), 2);
}

/// Advisory locks held on the database `conn` is connected to, by any session.
async fn advisory_locks(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_lock_is_taken_once_and_released() {
    let db = TestDatabase::create().await.unwrap();
    let migrator = TenantMigrator::new(fixture_set());
    let mut conn = connect(&db).await;
    migrator.apply_postgres(&mut conn).await.unwrap();
    migrator.revert_postgres(&mut conn, 0).await.unwrap();
    // The history table exists now: the lock and the read share one statement.
    migrator.apply_postgres(&mut conn).await.unwrap();
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(held, 0, "every advisory lock taken was released");
}

/// Two transactional migrations: the tenant is at the first, the second pending.
async fn tenant_one_behind() -> (TestDatabase, TenantMigrator) {
    let db = TestDatabase::create().await.unwrap();
    let set = fixture_set()
        .iter()
        .take(2)
        .fold(MigrationSet::builder(), |b, m| b.migration(m.clone()))
        .build()
        .unwrap();
    let migrator = TenantMigrator::new(set);
    let mut conn = connect(&db).await;
    migrator.apply_postgres(&mut conn).await.unwrap();
    migrator
        .revert_postgres(&mut conn, FIXTURE_VERSIONS[0])
        .await
        .unwrap();
    (db, migrator)
}

async fn history_comment(db: &TestDatabase) -> Option<String> {
    sqlx::query_scalar("SELECT obj_description('_sqlx_migrations'::regclass, 'pg_class')")
        .fetch_one(&mut connect(db).await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_pending_migration_is_applied_in_one_request_when_the_tenant_is_where_expected() {
    let (db, migrator) = tenant_one_behind().await;
    let (first, second) = (FIXTURE_VERSIONS[0], FIXTURE_VERSIONS[1]);
    let wire = Arc::new(Wire::default());
    let mut session = migrator.connect(&relayed(&db, &wire).await).await.unwrap();
    session.mark_commits("rollout 7");
    assert!(session.can_apply_if_at(first, second));
    assert!(
        !session.can_apply_if_at(first - 1, second),
        "two pending migrations are not one request"
    );

    wire.arm();
    let outcome = session.apply_if_at(first, second).await.unwrap().unwrap();
    assert_eq!(wire.batches(), 1, "lock, check, apply, record, commit");
    assert_eq!(
        (outcome.from_version, outcome.to_version),
        (Some(first), Some(second))
    );
    assert_eq!(outcome.steps.len(), 1);
    assert_eq!(history(&db).await, vec![(first, true), (second, true)]);
    assert_eq!(
        advisory_locks(&mut connect(&db).await).await,
        0,
        "the lock ends with the transaction"
    );
    assert_eq!(history_comment(&db).await.as_deref(), Some("rollout 7"));
    assert_eq!(session.carries_mark("rollout 7").await.unwrap(), Some(true));
    assert_eq!(
        session.carries_mark("rollout 8").await.unwrap(),
        Some(false)
    );
    session.close().await;
}

#[tokio::test]
async fn a_tenant_elsewhere_or_locked_is_left_untouched_by_the_one_request_apply() {
    let (db, migrator) = tenant_one_behind().await;
    let (first, second) = (FIXTURE_VERSIONS[0], FIXTURE_VERSIONS[1]);
    let mut session = migrator.connect(&target(&db)).await.unwrap();
    session.mark_commits("rollout 7");

    // A history row whose checksum differs from the file: not the expected history.
    let mut other = connect(&db).await;
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00'")
        .execute(&mut other)
        .await
        .unwrap();
    assert!(session.apply_if_at(first, second).await.unwrap().is_none());
    assert_eq!(history(&db).await, vec![(first, true)]);
    assert_eq!(history_comment(&db).await, None);
    let checksum = migrator
        .migrations()
        .get(first)
        .unwrap()
        .checksum()
        .to_vec();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1")
        .bind(checksum)
        .execute(&mut other)
        .await
        .unwrap();

    // Another migrator holds the tenant's migration lock (sqlx's key, as a session lock).
    let mut held = migrator.connect(&target(&db)).await.unwrap();
    held.lock_status().await.unwrap();
    assert!(session.apply_if_at(first, second).await.unwrap().is_none());
    assert_eq!(history(&db).await, vec![(first, true)]);
    held.close().await;

    let applied = session.apply_if_at(first, second).await.unwrap();
    assert!(applied.is_some(), "applied once the lock is free");
    assert!(
        session.apply_if_at(first, second).await.unwrap().is_none(),
        "at the target, the history is no longer the one expected"
    );
    assert_eq!(history(&db).await, vec![(first, true), (second, true)]);
    session.close().await;
}

/// The target of `db` reached as `role`.
fn as_role(db: &TestDatabase, role: &str) -> tenancy_core::DatabaseTarget {
    let options = PgConnectOptions::from_str(db.url().expose()).unwrap();
    url(&format!(
        "postgres://{role}@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        db.name()
    ))
}

#[tokio::test]
async fn the_one_request_apply_leaves_to_the_locked_path_what_it_cannot_check() {
    let (first, second) = (FIXTURE_VERSIONS[0], FIXTURE_VERSIONS[1]);

    // No history table: nothing is created, nothing applied.
    let (empty, migrator) = tenant_one_behind().await;
    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(&mut connect(&empty).await)
        .await
        .unwrap();
    let mut session = migrator.connect(&target(&empty)).await.unwrap();
    session.mark_commits("rollout 7");
    assert!(session.apply_if_at(first, second).await.unwrap().is_none());
    assert!(history(&empty).await.is_empty());
    session.close().await;

    // A failed history row: the locked path, not the guard, decides what to do.
    let (failed, migrator) = tenant_one_behind().await;
    sqlx::query("UPDATE _sqlx_migrations SET success = FALSE")
        .execute(&mut connect(&failed).await)
        .await
        .unwrap();
    let mut session = migrator.connect(&target(&failed)).await.unwrap();
    assert!(session.apply_if_at(first, second).await.unwrap().is_none());
    assert_eq!(history(&failed).await, vec![(first, false)]);
    session.close().await;

    // A role that may migrate but does not own the history table cannot be
    // marked: refused in one request, applied (unmarked) on the locked path.
    let (shared, migrator) = tenant_one_behind().await;
    let role = format!("{}_guest", shared.name());
    let mut admin = connect(&shared).await;
    for statement in [
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO \"{role}\""),
        format!("GRANT ALL ON _sqlx_migrations TO \"{role}\""),
        format!("ALTER TABLE items OWNER TO \"{role}\""),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }
    let mut session = migrator.connect(&as_role(&shared, &role)).await.unwrap();
    session.mark_commits("rollout 7");
    let refused = session.apply_if_at(first, second).await;
    let applied = match refused {
        Ok(None) => session.apply().await.map(|o| o.to_version),
        other => Ok(other.unwrap().and_then(|o| o.to_version)),
    };
    session.close().await;
    for statement in [
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }
    assert_eq!(applied.unwrap(), Some(second), "refused, then applied");
    assert_eq!(history_comment(&shared).await, None, "never marked");
}
