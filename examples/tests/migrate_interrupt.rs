//! Ctrl-C during `migrate run`: the runner releases the tenant it holds, so that the
//! next run takes it at once instead of waiting out its lease.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::{server_url, TestDatabase};

/// A folder with the fleet file (one PostgreSQL tenant), migrations and a state file.
struct Scratch {
    dir: PathBuf,
    tenant: TestDatabase,
}

impl Scratch {
    async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tk-migrate-int-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(
            dir.join("migrations/20240101000000_slow_items.sql"),
            "CREATE TABLE items (id BIGINT PRIMARY KEY); SELECT pg_sleep(2);",
        )
        .unwrap();
        let tenant = TestDatabase::create_with_prefix("tk_cli_interrupt")
            .await
            .unwrap();
        std::fs::write(
            dir.join("tenants.csv"),
            format!("id,database_url\nacme,{}\n", tenant.url().expose()),
        )
        .unwrap();
        Self { dir, tenant }
    }

    fn run(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .arg("run")
            .arg("--tenants")
            .arg(self.dir.join("tenants.csv"))
            .arg("--migrations")
            .arg(self.dir.join("migrations"))
            .arg("--state")
            .arg(format!("sqlite:{}", self.dir.join("state.db").display()))
            .args(["--lease", "10m"]);
        command
    }

    /// Waits (bounded) until the tenant's database runs the slow migration.
    async fn wait_until_migrating(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        loop {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep%'",
            )
            .bind(self.tenant.name())
            .fetch_one(&mut conn)
            .await
            .unwrap();
            if running > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the migration never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        conn.close().await.unwrap();
    }

    async fn version(&self) -> Option<i64> {
        let mut conn = PgConnection::connect(self.tenant.url().expose())
            .await
            .unwrap();
        let version = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        version
    }
}

impl Drop for Scratch {
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

fn wait_for_exit(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "migrate run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_releases_the_tenant_in_flight_for_the_next_run() {
    let scratch = Scratch::new().await;
    let mut child = scratch
        .run()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    scratch.wait_until_migrating().await;
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_for_exit(&mut child);
    let output = child.wait_with_output().unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(130), "{said}");
    assert!(
        said.contains("interrupted") && said.contains("released its 1 tenants in flight"),
        "{said}"
    );

    // With a ten-minute lease, the rerun would wait for it had the tenant not
    // been released.
    let rerun = scratch.run().output().unwrap();
    let said = text(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{said}");
    assert!(!said.contains("held by another runner"), "{said}");
    assert_eq!(scratch.version().await, Some(20240101000000));
}
