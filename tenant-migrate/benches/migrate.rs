//! Side by side, over one already-open PostgreSQL connection:
//! - applying a 3-statement migration with `TenantMigrator` vs running the same SQL by hand;
//! - the no-op check of an up-to-date tenant (`apply` and `status`) vs reading the
//!   history table by hand, and vs `SELECT 1` (one bare round trip).
//!
//! Run: `CARGO_TARGET_DIR=… cargo bench -p tenant-migrate --bench migrate`
//! (needs PostgreSQL at `DATABASE_URL`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sqlx::{Connection, Executor, PgConnection};
use tenancy_core::testing::TestDatabase;
use tenant_migrate::{MigrationSet, TenantMigrator};
use tokio::runtime::Runtime;

const THREE_STATEMENTS: &str = "CREATE TABLE bench_items (id BIGINT PRIMARY KEY, name TEXT);\n\
     ALTER TABLE bench_items ADD COLUMN price NUMERIC(10, 2);\n\
     CREATE INDEX bench_items_name_idx ON bench_items (name);\n";
const UNDO: &str =
    "DROP TABLE IF EXISTS bench_items; DELETE FROM _sqlx_migrations WHERE version = 2";
const BY_HAND_HISTORY: &str =
    "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";

struct Fixture {
    _db: TestDatabase,
    conn: PgConnection,
    runtime: Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (db, conn) = runtime.block_on(async {
        let db = TestDatabase::create_with_prefix("tk_bench").await.unwrap();
        let mut conn = PgConnection::connect(db.url().expose()).await.unwrap();
        // Commits do not wait for the WAL flush, on both sides alike: the figures
        // compare work and round trips, not the disk of a shared machine.
        conn.execute("SET synchronous_commit = off").await.unwrap();
        (db, conn)
    });
    Fixture {
        _db: db,
        conn,
        runtime,
    }
}

fn migrators() -> (TenantMigrator, TenantMigrator) {
    let base = || MigrationSet::builder().adhoc("1_base", "CREATE TABLE base (id INT);");
    let three = base()
        .adhoc("2_three_statements", THREE_STATEMENTS)
        .build()
        .unwrap();
    (
        TenantMigrator::new(base().build().unwrap()),
        TenantMigrator::new(three),
    )
}

/// One measured operation over the shared connection.
enum Work<'m> {
    Apply(&'m TenantMigrator),
    NoopApply(&'m TenantMigrator),
    Status(&'m TenantMigrator),
    ByHand(&'static str),
    ByHandInTransaction(&'static str),
}

impl Work<'_> {
    async fn perform(&self, conn: &mut PgConnection) {
        match self {
            Work::Apply(migrator) => {
                assert_eq!(migrator.apply_postgres(conn).await.unwrap().steps.len(), 1)
            }
            Work::NoopApply(migrator) => {
                assert!(!migrator.apply_postgres(conn).await.unwrap().changed())
            }
            Work::Status(migrator) => assert!(migrator
                .status_postgres(conn)
                .await
                .unwrap()
                .is_up_to_date()),
            Work::ByHand(sql) => drop(conn.fetch_all(*sql).await.unwrap()),
            Work::ByHandInTransaction(sql) => {
                let mut tx = conn.begin().await.unwrap();
                tx.execute(*sql).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
    }
}

/// Times `work` over `iters` runs; `undo` (untimed) runs after each.
fn timed(f: &mut Fixture, iters: u64, work: &Work<'_>, undo: Option<&str>) -> Duration {
    let Fixture { conn, runtime, .. } = f;
    runtime.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let started = Instant::now();
            work.perform(conn).await;
            total += started.elapsed();
            if let Some(undo) = undo {
                conn.execute(undo).await.unwrap();
            }
        }
        total
    })
}

fn apply_three_statements(c: &mut Criterion) {
    let mut f = fixture();
    let (base, three) = migrators();
    f.runtime
        .block_on(base.apply_postgres(&mut f.conn))
        .unwrap();
    let cases = [
        ("TenantMigrator::apply_postgres", Work::Apply(&three)),
        ("same SQL by hand", Work::ByHand(THREE_STATEMENTS)),
        (
            "same SQL by hand in BEGIN/COMMIT",
            Work::ByHandInTransaction(THREE_STATEMENTS),
        ),
    ];
    let mut group = c.benchmark_group("apply a 3-statement migration");
    for (name, work) in &cases {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| timed(&mut f, iters, work, Some(UNDO)))
        });
    }
    group.finish();
}

fn noop_check(c: &mut Criterion) {
    let mut f = fixture();
    let (_, three) = migrators();
    f.runtime
        .block_on(three.apply_postgres(&mut f.conn))
        .unwrap();
    let cases = [
        ("TenantMigrator::apply_postgres", Work::NoopApply(&three)),
        ("TenantMigrator::status_postgres", Work::Status(&three)),
        ("history read by hand", Work::ByHand(BY_HAND_HISTORY)),
        ("SELECT 1", Work::ByHand("SELECT 1")),
    ];
    let mut group = c.benchmark_group("no-op check of an up-to-date tenant");
    for (name, work) in &cases {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| timed(&mut f, iters, work, None))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = apply_three_statements, noop_check
}
criterion_main!(benches);
