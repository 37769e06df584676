//! `migrate rehearse` as an operator runs it: the pending migrations on a copy of
//! the canary's PostgreSQL database, their locks, a failure, a typo, and Ctrl-C,
//! each leaving the tenants as they were and no copy behind.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::{server_url, TestDatabase};
use tenancy_core::DatabaseTarget;
use tenant_migrate::{MigrationSet, TenantMigrator};

const ITEMS: &str = "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT);";

/// Two PostgreSQL tenants at the first migration, and a folder for the fleet
/// file and the migrations.
struct Fleet {
    dir: PathBuf,
    tenants: Vec<(String, TestDatabase)>,
}

impl Fleet {
    async fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tk-rehearse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(dir.join("migrations/20240101000000_items.sql"), ITEMS).unwrap();
        let first = MigrationSet::from_dir(dir.join("migrations")).unwrap();
        let mut tenants = Vec::new();
        let mut csv = String::from("id,database_url\n");
        for id in ["bravo", "acme"] {
            let db = TestDatabase::create_with_prefix("tk_cli_rehearse")
                .await
                .unwrap();
            let target = DatabaseTarget::new(db.url().clone());
            TenantMigrator::new(first.clone())
                .apply(&target)
                .await
                .unwrap();
            csv.push_str(&format!("{id},{}\n", db.url().expose()));
            tenants.push((id.to_owned(), db));
        }
        std::fs::write(dir.join("tenants.csv"), csv).unwrap();
        Self { dir, tenants }
    }

    fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.dir.join("migrations").join(file), sql).unwrap();
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .arg("rehearse")
            .arg("--tenants")
            .arg(self.dir.join("tenants.csv"))
            .arg("--migrations")
            .arg(self.dir.join("migrations"))
            .args(extra);
        command
    }

    fn rehearse(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    /// Each tenant's version and its `items` columns.
    async fn state(&self) -> Vec<(i64, Vec<String>)> {
        let mut state = Vec::new();
        for (_, db) in &self.tenants {
            let mut conn = PgConnection::connect(db.url().expose()).await.unwrap();
            let version: i64 =
                sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            let columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = 'items' ORDER BY 1",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            state.push((version, columns));
        }
        state
    }

    /// The rehearsal copies on the server of any tenant of this fleet.
    async fn copies(&self) -> Vec<String> {
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        let mut names = Vec::new();
        for (_, db) in &self.tenants {
            let found: Vec<String> =
                sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
                    .bind(format!("{}_rehearsal_%", db.name()))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            names.extend(found);
        }
        conn.close().await.unwrap();
        names
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_reports_locks_on_the_canary_copy_and_changes_nothing() {
    let fleet = Fleet::new("locks").await;
    fleet.migration(
        "20240102000000_add_note.sql",
        "ALTER TABLE items ADD COLUMN note TEXT;",
    );
    let before = fleet.state().await;

    let output = fleet.rehearse(&[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    // The canary is the first tenant in id order: `acme`.
    assert!(said.contains("acme: copied"), "{said}");
    assert!(said.contains("20240102000000 add note"), "{said}");
    assert!(
        said.contains("AccessExclusiveLock on public.items (blocks reads and writes)"),
        "{said}"
    );
    assert!(said.contains("1 migrations applied on the copy"), "{said}");

    let output = fleet.rehearse(&["--tenant", "bravo", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["tenant"], "bravo");
    assert_eq!(json["from_version"], 20240101000000_i64);
    assert_eq!(
        json["migrations"][0]["locks"][0]["mode"],
        "AccessExclusiveLock"
    );

    assert_eq!(fleet.state().await, before);
    assert_eq!(fleet.copies().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_or_a_typo_is_said_and_exits_nonzero() {
    let fleet = Fleet::new("failing").await;
    fleet.migration(
        "20240102000000_broken.sql",
        "ALTER TABLE no_such_table ADD COLUMN note TEXT;",
    );
    let before = fleet.state().await;

    let output = fleet.rehearse(&[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("FAILED 20240102000000 broken"), "{said}");
    assert!(said.contains("no_such_table"), "{said}");

    let output = fleet.rehearse(&["--tenant", "acmee"]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("tenant `acmee` is not in the fleet"),
        "{said}"
    );

    assert_eq!(fleet.state().await, before);
    assert_eq!(fleet.copies().await, Vec::<String>::new());
}

/// Waits (bounded) until a rehearsal copy runs `needle`.
async fn wait_until_running(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut conn = PgConnection::connect(&server_url()).await.unwrap();
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '%\\_rehearsal\\_%' AND query LIKE $1",
        )
        .bind(format!("%{needle}%"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if running > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rehearsal never ran `{needle}`"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.close().await.unwrap();
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "migrate rehearse did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_removes_the_copy_and_leaves_the_tenant_untouched() {
    let fleet = Fleet::new("interrupt").await;
    fleet.migration("20240102000000_slow.sql", "SELECT pg_sleep(120);");
    let before = fleet.state().await;

    let mut child = fleet
        .command(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_running("pg_sleep(120)").await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = wait_for_exit(&mut child);
    let output = child.wait_with_output().unwrap();
    let said = text(&output);
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("the scratch copy was removed"), "{said}");

    assert_eq!(fleet.state().await, before);
    assert_eq!(fleet.copies().await, Vec::<String>::new());
}
