//! Test helpers (feature `testing`): a fleet of real tenant databases on the local
//! PostgreSQL server and small reversible migrations, for hosts that test their own
//! rollouts and for this workspace's tests.
//!
//! The server is `DATABASE_URL`'s, or `postgres://postgres@127.0.0.1:5432/postgres`
//! (see `tenancy_core::testing::server_url`). Like assertions, these helpers panic
//! with a message when the test server fails.
//!
//! ```no_run
//! use tenant_migrate::testing::{v1, v2, TestFleet, TestMigration};
//! use tenant_migrate::Rollout;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = TestFleet::create(3).await;
//! let store = tenant_migrate::rollout::store::open(&"sqlite::memory:".parse()?).await?;
//! let report = Rollout::of_migrations(fleet.directory.clone(), TestMigration::set(&[v1(), v2()]), store)
//!     .build()
//!     .run()
//!     .await?;
//! assert!(report.is_complete());
//! assert_eq!(fleet.history(0).await, vec![1, 2]);
//! # Ok(()) }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::server_url;
use tenancy_core::{
    DatabaseProvisioner, DatabaseTarget, DatabaseUrl, MemoryTenantDirectory, NewTenant,
    PostgresServerProvisioner, TenantDirectory, TenantId,
};
use time::OffsetDateTime;

use crate::MigrationSet;

static FLEETS: AtomicU32 = AtomicU32::new(0);

/// `n` tenants `t00`, `t01`, … each with its own database on the test server, in a
/// memory directory. The databases are dropped when the fleet is dropped.
#[derive(Debug)]
pub struct TestFleet {
    /// The tenants, each with its database.
    pub directory: Arc<MemoryTenantDirectory>,
    /// Their ids, `t00`, `t01`, …
    pub ids: Vec<TenantId>,
    /// What created (and deletes) their databases.
    pub provisioner: PostgresServerProvisioner,
    prefix: String,
}

impl TestFleet {
    /// `n` tenants without tags.
    pub async fn create(n: usize) -> Self {
        Self::create_tagged(n, |_| Vec::new()).await
    }

    /// A fleet whose tenant `i` has the tags `tags(i)`.
    pub async fn create_tagged(n: usize, tags: impl Fn(usize) -> Vec<&'static str>) -> Self {
        let prefix = format!(
            "tk_ro_{}_{}_{:04x}_",
            std::process::id(),
            FLEETS.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                & 0xffff
        );
        let server = DatabaseUrl::parse(&with_password(&server_url())).unwrap();
        let provisioner = PostgresServerProvisioner::new(server).with_prefix(&prefix);
        let directory = Arc::new(MemoryTenantDirectory::new());
        let mut ids = Vec::new();
        for i in 0..n {
            let id = TenantId::new(format!("t{i:02}")).unwrap();
            let mut signup =
                NewTenant::with_id(id.clone(), &format!("Tenant {i}"), "ops@example.com").unwrap();
            for tag in tags(i) {
                signup = signup.with_tag(tag).unwrap();
            }
            let mut tenant = signup.into_tenant(OffsetDateTime::now_utc());
            tenant.database = Some(provisioner.provision(&tenant).await.unwrap());
            directory.insert(&tenant).await.unwrap();
            ids.push(id);
        }
        Self {
            directory,
            ids,
            provisioner,
            prefix,
        }
    }

    /// Adds a tenant (the next `tNN`) with its own database and these tags, as a
    /// signup after a rollout started would; returns its index.
    pub async fn join(&mut self, tags: &[&str]) -> usize {
        let i = self.ids.len();
        let id = TenantId::new(format!("t{i:02}")).expect("a valid tenant id");
        let mut signup = NewTenant::with_id(id.clone(), &format!("Tenant {i}"), "ops@example.com")
            .expect("a valid signup");
        for tag in tags {
            signup = signup.with_tag(tag).expect("a valid tag");
        }
        let mut tenant = signup.into_tenant(OffsetDateTime::now_utc());
        tenant.database = Some(
            self.provisioner
                .provision(&tenant)
                .await
                .expect("provision"),
        );
        self.directory
            .insert(&tenant)
            .await
            .expect("insert the tenant");
        self.ids.push(id);
        i
    }

    /// Tenant `i`'s id.
    pub fn id(&self, i: usize) -> &TenantId {
        &self.ids[i]
    }

    /// Tenant `i`'s database.
    pub async fn target(&self, i: usize) -> DatabaseTarget {
        let tenant = self.directory.get(&self.ids[i]).await.unwrap().unwrap();
        tenant.database.unwrap()
    }

    /// A connection to tenant `i`'s database.
    pub async fn connect(&self, i: usize) -> PgConnection {
        PgConnection::connect(self.target(i).await.url.expose())
            .await
            .unwrap()
    }

    /// Drops tenant `i`'s database: its migration will fail.
    pub async fn break_by_dropping(&self, i: usize) {
        self.provisioner.delete(&self.ids[i]).await.unwrap();
    }

    /// Creates a table that conflicts with the test migrations' first statement.
    pub async fn break_by_conflict(&self, i: usize) {
        let mut conn = self.connect(i).await;
        sqlx::query("CREATE TABLE items (id TEXT, conflicting BOOLEAN NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Removes the conflicting table (the tenant can then be migrated).
    pub async fn repair(&self, i: usize) {
        let mut conn = self.connect(i).await;
        sqlx::query("DROP TABLE items")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Versions recorded as applied in tenant `i`'s history (`_sqlx_migrations`, or
    /// the test migrator's table), ascending.
    pub async fn history(&self, i: usize) -> Vec<i64> {
        let mut conn = self.connect(i).await;
        for sql in [
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            "SELECT version FROM rollout_test_history ORDER BY version",
        ] {
            let table = sql.split(' ').nth(3).unwrap();
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            if exists {
                return sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap();
            }
        }
        Vec::new()
    }

    /// Asserts that no migration reached these tenants.
    pub async fn assert_untouched(&self, tenants: impl IntoIterator<Item = usize>) {
        for i in tenants {
            assert_eq!(
                self.history(i).await,
                Vec::<i64>::new(),
                "t{i} must be untouched"
            );
        }
    }

    /// How many times each up migration's SQL ran on tenant `i` (by version).
    pub async fn applications(&self, i: usize) -> Vec<(i64, i64)> {
        let mut conn = self.connect(i).await;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('applied_log') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if !exists {
            return Vec::new();
        }
        sqlx::query_as(
            "SELECT version, count(*) FROM applied_log GROUP BY version ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        let pattern = format!("{}%", self.prefix.replace('_', "\\_"));
        let admin_url = server_url();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await.unwrap();
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
                        .bind(&pattern)
                        .fetch_all(&mut admin)
                        .await
                        .unwrap();
                for name in names {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(error) = sqlx::query(&sql).execute(&mut admin).await {
                        eprintln!("could not drop {name}: {error}");
                    }
                }
            });
        });
        let _ = handle.join();
    }
}

/// The password put in tenant URLs: the test server trusts local connections, so
/// it is never checked, but it must never show in logs or the state store.
pub const TENANT_PASSWORD: &str = "s3cret-tenant-pw";

/// The server URL with [`TENANT_PASSWORD`] (unless it has a password already).
pub fn with_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => {
            format!("{scheme}://{user}:{TENANT_PASSWORD}@{host}")
        }
        _ => url.to_owned(),
    }
}

/// One test migration: version, up SQL, down SQL.
#[derive(Debug, Clone)]
pub struct TestMigration {
    /// The version.
    pub version: i64,
    /// The up script.
    pub up: String,
    /// The down script, if reversible.
    pub down: Option<String>,
}

/// Version 1: a table (conflicts with [`TestFleet::break_by_conflict`]).
pub fn v1() -> TestMigration {
    TestMigration {
        version: 1,
        up: "CREATE TABLE items (id BIGINT PRIMARY KEY); \
             CREATE TABLE applied_log (version BIGINT NOT NULL); \
             INSERT INTO applied_log VALUES (1);"
            .into(),
        down: Some("DROP TABLE items; DROP TABLE applied_log;".into()),
    }
}

/// Version 2: a column, reversible.
pub fn v2() -> TestMigration {
    TestMigration {
        version: 2,
        up: "ALTER TABLE items ADD COLUMN name TEXT; INSERT INTO applied_log VALUES (2);".into(),
        down: Some("ALTER TABLE items DROP COLUMN name;".into()),
    }
}

/// `migration` with a pause first, to catch runners mid-migration.
pub fn slow(migration: TestMigration, pause: Duration) -> TestMigration {
    TestMigration {
        up: format!("SELECT pg_sleep({}); {}", pause.as_secs_f64(), migration.up),
        ..migration
    }
}

/// Version 2 without a down script.
pub fn v2_irreversible() -> TestMigration {
    TestMigration { down: None, ..v2() }
}

impl TestMigration {
    /// The set of these migrations, reversible ones as `.up.sql` and `.down.sql`
    /// pairs named `<version>_step`.
    pub fn set(migrations: &[TestMigration]) -> MigrationSet {
        let mut builder = MigrationSet::builder();
        for m in migrations {
            builder = match &m.down {
                Some(down) => builder
                    .file(format!("{}_step.up.sql", m.version), m.up.clone())
                    .file(format!("{}_step.down.sql", m.version), down.clone()),
                None => builder.file(format!("{}_step.sql", m.version), m.up.clone()),
            };
        }
        builder.build().expect("test migrations form a valid set")
    }

    /// Writes these migrations into `dir` as files in sqlx's naming.
    pub fn write_dir(migrations: &[TestMigration], dir: &std::path::Path) {
        std::fs::create_dir_all(dir).expect("create the migrations directory");
        for m in migrations {
            let base = dir.join(format!("{}_step", m.version));
            match &m.down {
                Some(down) => {
                    std::fs::write(base.with_extension("up.sql"), &m.up).expect("write up.sql");
                    std::fs::write(base.with_extension("down.sql"), down).expect("write down.sql");
                }
                None => std::fs::write(base.with_extension("sql"), &m.up).expect("write .sql"),
            }
        }
    }
}

impl TestFleet {
    /// Writes the fleet as a fleet file (`id,database_url,tags`) at `path`, as the
    /// `migrate` command and [`FleetList`](crate::FleetList) read it.
    pub async fn write_csv(&self, path: &std::path::Path) {
        let mut csv = String::from("id,database_url,tags\n");
        for (i, id) in self.ids.iter().enumerate() {
            let tenant = self.directory.get(id).await.unwrap().unwrap();
            let tags: Vec<&str> = tenant.tags.iter().map(String::as_str).collect();
            let url = self.target(i).await.url;
            csv.push_str(&format!("{id},\"{}\",{}\n", url.expose(), tags.join(";")));
        }
        std::fs::write(path, csv).expect("write the fleet file");
    }
}
