//! `migrate drift`, `migrate run --require-no-drift | --exclude-drifted` and the
//! drift counts of `migrate status`, as an operator runs them, over a fleet of 20
//! migrated tenants (SQLite files, and PostgreSQL databases) in which four were
//! changed by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;
use tenant_migrate::testing::TestFleet;

const FIRST: &str = "20240101000000";
const SECOND: &str = "20240102000000";

/// A scratch folder: migrations, a fleet file, a state file, and (for SQLite)
/// the tenant database files.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tk-drift-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        let s = Self(dir);
        s.migration(
            &format!("{FIRST}_items.sql"),
            "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL);",
        );
        s.migration(
            &format!("{SECOND}_index_names.sql"),
            "CREATE INDEX items_name_idx ON items (name);",
        );
        s
    }

    fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.0.join("migrations").join(file), sql).unwrap();
    }

    /// 20 SQLite tenants `t00`…`t19` in the fleet file.
    fn sqlite_fleet(&self) {
        let mut csv = String::from("id,database_url\n");
        for i in 0..20 {
            let db = self.db(i);
            std::fs::write(&db, b"").unwrap();
            csv.push_str(&format!("t{i:02},sqlite:{}\n", db.display()));
        }
        std::fs::write(self.0.join("tenants.csv"), csv).unwrap();
    }

    fn db(&self, i: usize) -> PathBuf {
        self.0.join(format!("t{i:02}.db"))
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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

/// The lines about single tenants (`tNN: …`), in order.
fn tenant_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with('t') && line.get(3..5) == Some(": "))
        .map(str::to_owned)
        .collect()
}

/// The changes made by hand: a column added, an index dropped, a history row
/// whose checksum differs, an applied version the migrations do not have.
fn by_hand(checksum: &str) -> [(usize, String); 4] {
    [
        (3, "ALTER TABLE items ADD COLUMN note TEXT".into()),
        (7, "DROP INDEX items_name_idx".into()),
        (
            11,
            format!("UPDATE _sqlx_migrations SET checksum = {checksum} WHERE version = {FIRST}"),
        ),
        (
            15,
            format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (20240199000000, 'hotfix', TRUE, {checksum}, 0)"
            ),
        ),
    ]
}

fn expected_lines(schema: &str) -> Vec<String> {
    vec![
        format!("t03: column {schema}.items.note added: text"),
        format!("t07: index {schema}.items_name_idx missing"),
        format!("t11: history: version {FIRST} was applied with a checksum that differs from {FIRST}_items.sql"),
        "t15: history: version 20240199000000 is applied but not in the migration set".into(),
    ]
}

async fn drift_by_hand_sqlite(s: &Scratch) {
    for (i, sql) in by_hand("X'00'") {
        let url = format!("sqlite:{}", s.db(i).display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_drift_names_the_four_drifted_tenants_and_exits_by_what_it_found() {
    let s = Scratch::new("sqlite");
    s.sqlite_fleet();
    let run = s.migrate("run", &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let clean = s.migrate("drift", &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(
        text(&clean).contains("20 tenants: 20 clean"),
        "{}",
        text(&clean)
    );

    drift_by_hand_sqlite(&s).await;
    let drift = s.migrate("drift", &["--concurrency", "3"]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift));
    assert_eq!(tenant_lines(&drift), expected_lines("main"));

    let report = json(&s.migrate("drift", &["--json"]));
    assert_eq!(report["counts"]["drifted"], 4, "{report}");
    assert_eq!(report["counts"]["clean"], 16, "{report}");
    assert_eq!(report["versions"][0]["reference"]["tenant"], "t00");
    assert_eq!(report["drifted"][1]["differences"][0]["change"], "missing");

    // The hotfixed tenant as the reference: the others lack its column.
    let against = s.migrate("drift", &["--reference", "t03"]);
    assert_eq!(against.status.code(), Some(1), "{}", text(&against));
    let lines = tenant_lines(&against);
    assert_eq!(lines[0], "t00: column main.items.note missing");
    assert!(lines.iter().all(|l| !l.starts_with("t03")), "{lines:?}");

    // Bad usage: exit 2, saying what is wrong.
    let unknown = s.migrate("drift", &["--reference", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("`nobody` is not in the fleet"),
        "{}",
        text(&unknown)
    );
    std::fs::write(s.0.join("tenants.csv"), "id,datbase_url\n").unwrap();
    let unreadable = s.migrate("drift", &[]);
    assert_eq!(unreadable.status.code(), Some(2), "{}", text(&unreadable));
    let no_dir = Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args([
            "drift",
            "--tenants",
            "/nonexistent/tenants.csv",
            "--migrations",
        ])
        .arg(s.0.join("no-such-dir"))
        .output()
        .unwrap();
    assert_eq!(no_dir.status.code(), Some(2), "{}", text(&no_dir));
}

#[tokio::test]
async fn sqlite_runs_refuse_or_leave_out_drifted_tenants_and_status_counts_them() {
    let s = Scratch::new("gate");
    s.sqlite_fleet();
    assert_eq!(s.migrate("run", &[]).status.code(), Some(0));
    drift_by_hand_sqlite(&s).await;
    s.migration(
        "20240103000000_stock.sql",
        "CREATE TABLE stock (id BIGINT PRIMARY KEY);",
    );

    let refused = s.migrate("run", &["--require-no-drift"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("4 targeted tenants drifted")
            && text(&refused).contains("t03, t07, t11, t15"),
        "{}",
        text(&refused)
    );
    assert!(
        (0..20).all(|i| !has_table(&s.db(i), "stock")),
        "nothing may run"
    );

    let run = s.migrate("run", &["--exclude-drifted", "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let view = json(&run);
    assert_eq!(view["succeeded"], 16, "{view}");
    let warnings = view["warnings"].to_string();
    assert!(
        warnings.contains("t03 left out: drifted (column main.items.note added: text)"),
        "{warnings}"
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("t07 left out: drifted"));
    for i in 0..20 {
        let drifted = [3, 7, 11, 15].contains(&i);
        assert_eq!(has_table(&s.db(i), "stock"), !drifted, "t{i:02}");
    }

    // Status: versions read live, drift counts from the last survey (the run's).
    let status = s.migrate("status", &["--json"]);
    let fleet = &json(&status)["fleet"];
    assert_eq!(
        fleet["versions"],
        serde_json::json!([
            {"version": 20240102000000_i64, "tenants": 3},
            {"version": 20240103000000_i64, "tenants": 16},
            {"version": 20240199000000_i64, "tenants": 1}
        ]),
        "{fleet}"
    );
    assert_eq!(fleet["drift"]["drifted"], 4, "{fleet}");
    assert_eq!(fleet["drift"]["clean"], 16, "{fleet}");
    assert_eq!(
        fleet["drift"]["stale"], 16,
        "the clean tenants were migrated since: {fleet}"
    );
    let text_status = s.migrate("status", &[]);
    assert!(
        text(&text_status).contains("drift (last checked")
            && text(&text_status).contains("4 drifted"),
        "{}",
        text(&text_status)
    );
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

#[tokio::test]
async fn postgres_drift_and_the_rollout_gate_from_the_command_line() {
    let s = Scratch::new("postgres");
    let fleet = TestFleet::create(20).await;
    fleet.write_csv(&s.0.join("tenants.csv")).await;
    let run = s.migrate("run", &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(s.migrate("drift", &[]).status.code(), Some(0));

    for (i, sql) in by_hand("'\\x00'") {
        let mut conn = fleet.connect(i).await;
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let drift = s.migrate("drift", &[]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift));
    assert_eq!(tenant_lines(&drift), expected_lines("public"));
    assert!(!text(&drift).contains(tenant_migrate::testing::TENANT_PASSWORD));

    let against = s.migrate("drift", &["--reference", "t07", "--json"]);
    let report = json(&against);
    assert_eq!(
        report["versions"][0]["reference"]["named"], true,
        "{report}"
    );
    assert_eq!(report["counts"]["drifted"], 19, "{report}");

    s.migration(
        "20240103000000_stock.sql",
        "CREATE TABLE stock (id BIGINT PRIMARY KEY);",
    );
    let refused = s.migrate("run", &["--require-no-drift"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("t03, t07, t11, t15"),
        "{}",
        text(&refused)
    );
    let run = s.migrate("run", &["--exclude-drifted"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    for i in 0..20 {
        let migrated = fleet.history(i).await.contains(&20240103000000);
        assert_eq!(migrated, ![3, 7, 11, 15].contains(&i), "t{i:02}");
    }
}
