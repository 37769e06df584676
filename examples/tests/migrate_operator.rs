//! The `migrate` command used as an operator would, mistakes included: each case
//! either does what the operator meant or is refused with a reason (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder with SQLite tenant databases, migrations and a state file.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tk-migrate-op-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(
            dir.join("migrations/20240101000000_items.up.sql"),
            "CREATE TABLE items (id INTEGER PRIMARY KEY);",
        )
        .unwrap();
        std::fs::write(
            dir.join("migrations/20240101000000_items.down.sql"),
            "DROP TABLE items;",
        )
        .unwrap();
        Self(dir)
    }

    /// Writes the fleet file with these tenants (`id`, `tags`), creating each
    /// tenant's (empty) database file.
    fn fleet(&self, tenants: &[(&str, &str)]) {
        let mut csv = String::from("id,database_url,tags\n");
        for (id, tags) in tenants {
            let db = self.0.join(format!("{id}.db"));
            if !db.exists() {
                std::fs::write(&db, b"").unwrap();
            }
            csv.push_str(&format!("{id},sqlite:{},{tags}\n", db.display()));
        }
        std::fs::write(self.0.join("tenants.csv"), csv).unwrap();
    }

    fn migrate(&self, command: &str, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_migrate"))
            .arg(command)
            .arg("--tenants")
            .arg(self.0.join("tenants.csv"))
            .arg("--migrations")
            .arg(self.0.join("migrations"))
            .arg("--state")
            .arg(format!("sqlite:{}", self.0.join("state.db").display()))
            .args(extra)
            .output()
            .unwrap()
    }

    fn has_items(&self, tenant: &str) -> bool {
        has_table(&self.0.join(format!("{tenant}.db")), "items")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn has_table(db: &Path, table: &str) -> bool {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(c.execute(\"select count(*) from sqlite_master where name=?\", (sys.argv[2],)).fetchone()[0])",
        ])
        .arg(db)
        .arg(table)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "1"
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn rollback_after_a_harmless_rerun_reverts_the_first_run() {
    let s = Scratch::new("rerun");
    s.fleet(&[("acme", ""), ("globex", "")]);
    assert_eq!(s.migrate("run", &[]).status.code(), Some(0));
    let rerun = s.migrate("run", &["--json"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let first: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();

    let rollback = s.migrate("rollback", &["--json"]);
    assert_eq!(rollback.status.code(), Some(0), "{}", text(&rollback));
    let reverted: serde_json::Value = serde_json::from_slice(&rollback.stdout).unwrap();
    assert_eq!(
        reverted["rollout_id"], first["rollout_id"],
        "one rollout for the set"
    );
    assert_eq!(reverted["rolled_back"], 2, "{reverted}");
    assert!(!s.has_items("acme") && !s.has_items("globex"));
}

#[test]
fn an_empty_canary_wave_is_refused_before_any_tenant_is_touched() {
    let s = Scratch::new("canary");
    s.fleet(&[("acme", "eu"), ("globex", "us;beta")]);
    let refused = s.migrate("run", &["--strategy", "canary:tag=staging"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let message = text(&refused);
    assert!(
        message.contains("staging") && message.contains("beta, eu, us"),
        "{message}"
    );
    assert!(!s.has_items("acme") && !s.has_items("globex"));

    // A canary wave that is the whole fleet runs, with a warning in text and JSON.
    let whole = s.migrate("run", &["--strategy", "canary:5", "--json"]);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    assert!(String::from_utf8_lossy(&whole.stderr).contains("no canary"));
    let view: serde_json::Value = serde_json::from_slice(&whole.stdout).unwrap();
    assert!(
        view["warnings"][0].as_str().unwrap().contains("no canary"),
        "{view}"
    );
}

#[test]
fn a_tenant_that_joins_is_reported_by_status_and_migrated_by_the_next_run() {
    let s = Scratch::new("join");
    s.fleet(&[("acme", "")]);
    // `--lease` takes a duration as operators write it.
    let run = s.migrate("run", &["--lease", "5s"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(s.migrate("status", &[]).status.code(), Some(0));

    s.fleet(&[("acme", ""), ("initech", "")]);
    let status = s.migrate("status", &[]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(text(&status).contains("initech"), "{}", text(&status));

    assert_eq!(s.migrate("run", &[]).status.code(), Some(0));
    assert!(s.has_items("initech"));
    assert_eq!(s.migrate("status", &[]).status.code(), Some(0));
}

#[test]
fn operator_mistakes_are_refused_with_a_reason() {
    let s = Scratch::new("mistakes");
    s.fleet(&[("acme", "")]);
    let cases: [(&[&str], &str); 3] = [
        (&["--state", "sqlite:"], "names no file"),
        (&["--allow-lint", "ban-drop-tabel"], "ban-drop-table"),
        (
            &["--state", "postgres://postgres@127.0.0.1:1/state"],
            "refused",
        ),
    ];
    for (args, says) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_migrate"))
            .arg("run")
            .arg("--tenants")
            .arg(s.0.join("tenants.csv"))
            .arg("--migrations")
            .arg(s.0.join("migrations"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(text(&output).contains(says), "{args:?}: {}", text(&output));
    }
    // A tenant database that does not exist is a failed tenant, and stays absent.
    std::fs::write(
        s.0.join("tenants.csv"),
        format!(
            "id,database_url\nacme,sqlite:{}\n",
            s.0.join("acme-typo.db").display()
        ),
    )
    .unwrap();
    let run = s.migrate("run", &[]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(!s.0.join("acme-typo.db").exists());
}

#[test]
fn a_resumed_tenant_reports_the_version_it_was_at() {
    let s = Scratch::new("resume");
    std::fs::write(
        s.0.join("migrations/20240102000000_orders.up.sql"),
        "CREATE TABLE orders (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    s.fleet(&[("acme", ""), ("globex", "")]);
    // globex already has a table the second migration creates: it stops at the first.
    sqlite(&s.0.join("globex.db"), "CREATE TABLE orders (x)");
    let halted = s.migrate("run", &[]);
    assert_eq!(halted.status.code(), Some(1), "{}", text(&halted));

    sqlite(&s.0.join("globex.db"), "DROP TABLE orders");
    let resumed = s.migrate("run", &[]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("globex: 20240101000000 -> 20240102000000"),
        "{}",
        text(&resumed)
    );
}

fn sqlite(db: &Path, statement: &str) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
        ])
        .arg(db)
        .arg(statement)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_rerun_says_when_it_keeps_the_strategy_its_rollout_started_with() {
    let s = Scratch::new("kept");
    s.fleet(&[("acme", ""), ("globex", "")]);
    let first = s.migrate("run", &["--strategy", "waves:50,100"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let other = s.migrate("run", &["--strategy", "all", "--max-failures", "3"]);
    let said = text(&other);
    assert_eq!(other.status.code(), Some(0), "{said}");
    assert!(
        said.contains("warning: rollout")
            && said.contains("keeps the strategy it started with (waves:50,100")
            && said.contains("is not used"),
        "{said}"
    );

    let plain = s.migrate("run", &[]);
    let said = text(&plain);
    assert_eq!(plain.status.code(), Some(0), "{said}");
    assert!(!said.contains("keeps the strategy"), "{said}");

    let typo = s.migrate("run", &["--max-failures", "150%"]);
    let said = text(&typo);
    assert_eq!(typo.status.code(), Some(2), "{said}");
    assert!(said.contains("--max-failures 150%"), "{said}");
}

#[test]
fn a_mistyped_state_path_is_said_and_never_created_by_reading_commands() {
    let s = Scratch::new("typo");
    s.fleet(&[("acme", ""), ("globex", "")]);
    assert_eq!(s.migrate("run", &[]).status.code(), Some(0));
    // The state moves away: `--state` now names a file that does not exist.
    let state = s.0.join("state.db");
    let kept = s.0.join("kept.db");
    std::fs::rename(&state, &kept).unwrap();

    let status = s.migrate("status", &[]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("no state store at {}", state.display())),
        "{said}"
    );
    assert!(
        said.contains("0 tenants below version 20240101000000"),
        "the tenants are at the target already: {said}"
    );
    let dry_run = s.migrate("run", &["--dry-run"]);
    assert_eq!(dry_run.status.code(), Some(0), "{}", text(&dry_run));
    assert!(
        !state.exists(),
        "a reading command created {}",
        state.display()
    );

    std::fs::rename(&kept, &state).unwrap();
    let status = s.migrate("status", &[]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
}

#[test]
fn a_reader_that_closed_the_pipe_ends_the_command_with_141() {
    let s = Scratch::new("pipe");
    s.fleet(&[("acme", "")]);
    // The reader is gone before the command writes anything.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .arg("lint")
        .arg(s.0.join("migrations"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(141), "{}", text(&status));
    assert!(
        !String::from_utf8_lossy(&status.stderr).contains("panicked"),
        "{}",
        text(&status)
    );
}

#[test]
fn a_sql_file_that_is_not_read_as_a_migration_is_named() {
    let s = Scratch::new("unread");
    s.fleet(&[("acme", "")]);
    std::fs::write(s.0.join("migrations/20240201000000.sql"), "SELECT 1;").unwrap();
    let run = s.migrate("run", &[]);
    let said = text(&run);
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(
        said.contains("20240201000000.sql is not read as a migration"),
        "{said}"
    );
    assert!(
        !said.contains("20240101000000_items.up.sql is not read"),
        "{said}"
    );
}

#[test]
fn lint_names_a_date_version_cut_at_its_first_underscore() {
    let s = Scratch::new("date");
    std::fs::write(s.0.join("migrations/2024_03_01_x.sql"), "SELECT 1;").unwrap();
    let lint = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .arg("lint")
        .arg(s.0.join("migrations"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&lint.stdout);
    assert_eq!(lint.status.code(), Some(0), "a warning: {}", text(&lint));
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("mixed-version-lengths")
                && line.contains("a date written with `_` is read up to its first `_`")
                && !line.contains("line 1:")),
        "{}",
        text(&lint)
    );
}

#[test]
fn a_dry_run_says_which_rollout_a_run_would_join_and_rollback_needs_a_state() {
    let s = Scratch::new("join");
    s.fleet(&[("acme", ""), ("globex", "")]);
    assert_eq!(s.migrate("run", &[]).status.code(), Some(0));

    let dry_run = s.migrate("run", &["--dry-run"]);
    let said = text(&dry_run);
    assert_eq!(dry_run.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "a run joins rollout 1 (completed): 0 tenants pending, 0 failed (retried), 0 joining"
        ),
        "{said}"
    );

    let state = s.0.join("state.db");
    std::fs::rename(&state, s.0.join("kept.db")).unwrap();
    let rollback = s.migrate("rollback", &[]);
    let said = text(&rollback);
    assert_eq!(rollback.status.code(), Some(2), "{said}");
    assert!(said.contains("no state store at"), "{said}");
    assert!(!state.exists(), "rollback created {}", state.display());
}

#[test]
fn a_rollback_of_a_halted_waves_rollout_passes_over_tenants_it_never_reached() {
    let s = Scratch::new("halted");
    let names = ["ten1", "ten2", "ten3", "ten4", "ten5", "ten6"];
    // `ten3` has the table already: it fails in the second wave, which halts the rollout.
    s.fleet(&names.map(|name| (name, "")));
    sqlite(&s.0.join("ten3.db"), "CREATE TABLE items (id INTEGER)");
    let run = s.migrate("run", &["--strategy", "waves:34,67,100"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        s.has_items("ten1") && !s.has_items("ten6"),
        "{}",
        text(&run)
    );

    let rollback = s.migrate("rollback", &["--json"]);
    let said = text(&rollback);
    assert_eq!(rollback.status.code(), Some(0), "{said}");
    let report: serde_json::Value = serde_json::from_slice(&rollback.stdout).unwrap();
    assert_eq!(report["status"], "rolled_back", "{report}");
    for name in ["ten1", "ten2", "ten4", "ten5", "ten6"] {
        assert!(!s.has_items(name), "{name} keeps the table: {said}");
    }
    assert!(s.has_items("ten3"), "the table made by hand stays: {said}");

    // Fixed, the set rolls out again under a new rollout.
    sqlite(&s.0.join("ten3.db"), "DROP TABLE items");
    let again = s.migrate("run", &["--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["rollout_id"], 2, "{report}");
    assert!(names.iter().all(|name| s.has_items(name)));
}
