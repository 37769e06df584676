//! Ctrl-C during `migrate run`: the runner claims nothing more and lets the tenant in
//! flight finish, so that the next run resumes at once; a second Ctrl-C abandons it.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tenancy_core::testing::{server_url, TestDatabase};

/// A folder with the fleet file (two PostgreSQL tenants), migrations and a state file.
struct Scratch {
    dir: PathBuf,
    tenants: Vec<TestDatabase>,
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
        let mut tenants = Vec::new();
        let mut csv = String::from("id,database_url\n");
        for id in ["acme", "bravo"] {
            let tenant = TestDatabase::create_with_prefix("tk_cli_interrupt")
                .await
                .unwrap();
            csv.push_str(&format!("{id},{}\n", tenant.url().expose()));
            tenants.push(tenant);
        }
        std::fs::write(dir.join("tenants.csv"), csv).unwrap();
        Self { dir, tenants }
    }

    /// `migrate run`, one tenant at a time, with this lease.
    fn run(&self, lease: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .arg("run")
            .arg("--tenants")
            .arg(self.dir.join("tenants.csv"))
            .arg("--migrations")
            .arg(self.dir.join("migrations"))
            .arg("--state")
            .arg(format!("sqlite:{}", self.dir.join("state.db").display()))
            .args(["--concurrency", "1", "--lease", lease]);
        command
    }

    /// Waits (bounded) until tenant `index`'s database runs the slow migration.
    async fn wait_until_migrating(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut conn = PgConnection::connect(&server_url()).await.unwrap();
        loop {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep%'",
            )
            .bind(self.tenants[index].name())
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

    /// Tenant `index`'s version (`None` before its first migration).
    async fn version(&self, index: usize) -> Option<i64> {
        let mut conn = PgConnection::connect(self.tenants[index].url().expose())
            .await
            .unwrap();
        let version = sqlx::query_scalar(
            "SELECT max(version) FROM _sqlx_migrations WHERE success AND to_regclass('_sqlx_migrations') IS NOT NULL",
        )
        .fetch_one(&mut conn)
        .await
        .ok()
        .flatten();
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

fn interrupt(child: &Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Starts `command` with its output captured.
fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_lets_the_tenant_in_flight_finish_and_a_second_abandons_it() {
    let scratch = Scratch::new().await;

    // One Ctrl-C while `acme` migrates: it finishes, `bravo` is never claimed.
    let child = spawn(scratch.run("10m"));
    scratch.wait_until_migrating(0).await;
    interrupt(&child);
    let mut child = child;
    wait_for_exit(&mut child);
    let output = child.wait_with_output().unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(130), "{said}");
    assert!(
        said.contains("stopping: claiming no more tenants")
            && said.contains("let the 1 it had in flight finish"),
        "{said}"
    );
    assert_eq!(scratch.version(0).await, Some(20240101000000), "{said}");
    assert_eq!(scratch.version(1).await, None, "{said}");

    // Twice while `bravo` migrates: the run stops at once, `bravo` abandoned
    // under a two-second lease.
    let mut child = spawn(scratch.run("2s"));
    scratch.wait_until_migrating(1).await;
    interrupt(&child);
    // The second once the first was heard: the run says it is stopping.
    let mut log = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("stopping:") {
        let read = std::io::BufRead::read_line(&mut log, &mut said).unwrap();
        assert_ne!(read, 0, "the run ended without stopping: {said}");
    }
    interrupt(&child);
    std::io::Read::read_to_string(&mut log, &mut said).unwrap();
    wait_for_exit(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("stopped at once"), "{said}");

    // The next run finishes the rollout: `bravo`'s abandoned migration either
    // committed (and is read as done) or is applied now.
    let rerun = scratch.run("2s").output().unwrap();
    let said = text(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{said}");
    assert_eq!(scratch.version(1).await, Some(20240101000000), "{said}");
}
