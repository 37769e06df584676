//! The `migrate` binary killed with SIGKILL mid-rollout, then run again.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tenant_migrate::testing::{slow, v1, v2, TestFleet, TestMigration};

/// A scratch directory with the migrations, the tenants CSV and the state file.
struct Workspace(PathBuf);

impl Workspace {
    async fn new(fleet: &TestFleet, migrations: &[TestMigration]) -> Self {
        let dir = std::env::temp_dir().join(format!("tk-migrate-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TestMigration::write_dir(migrations, &dir.join("migrations"));
        fleet.write_csv(&dir.join("tenants.csv")).await;
        Self(dir)
    }

    fn run(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migrate"));
        command
            .arg("run")
            .arg("--tenants")
            .arg(self.0.join("tenants.csv"))
            .arg("--migrations")
            .arg(self.0.join("migrations"))
            .arg("--state")
            .arg(format!("sqlite:{}", self.0.join("state.db").display()))
            .args(["--concurrency", "2", "--json"])
            .stdin(Stdio::null());
        command
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_rollout_then_rerun_applies_every_tenant_exactly_once() {
    let fleet = TestFleet::create(8).await;
    let workspace = Workspace::new(&fleet, &[slow(v1(), Duration::from_millis(400)), v2()]).await;

    let mut first = workspace
        .run()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some tenants are done and others are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while done < 2 {
        assert!(
            Instant::now() < deadline,
            "no tenant was migrated within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        done = 0;
        for i in 0..8 {
            done += usize::from(fleet.history(i).await == vec![1, 2]);
        }
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(done < 8, "the runner finished before it could be killed");

    // The rerun waits for the dead runner's leases to expire, then finishes.
    let output = workspace.run().output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    // It said what it waited for, and for how long at most.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("held by another runner") && stderr.contains("expire within 30s"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["succeeded"], 8, "{summary}");
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["halted"], false);
    assert_eq!(summary["tenants"].as_array().unwrap().len(), 8);
    for i in 0..8 {
        assert_eq!(fleet.history(i).await, vec![1, 2], "t{i}");
        assert_eq!(fleet.applications(i).await, vec![(1, 1), (2, 1)], "t{i}");
    }
}
