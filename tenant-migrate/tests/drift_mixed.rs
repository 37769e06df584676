//! Drift surveys of a fleet of SQLite and PostgreSQL tenants on real databases:
//! schemas are compared only between tenants of the same database kind, so a
//! cleanly migrated mixed fleet is clean, and a drifted tenant of each kind is
//! reported against its own kind's reference.

mod support;

use sqlx::Connection;
use tenancy_core::testing::TempSqlite;
use tenancy_core::{DatabaseKind, TenantId};
use tenant_migrate::drift::{DriftReport, DriftSurvey};
use tenant_migrate::testing::TestFleet;
use tenant_migrate::{FleetList, FleetMember, MigrationSet, TenantMigrator};

use support::quick_options;

const SQLITE: usize = 4;
const POSTGRES: usize = 3;

fn id(raw: &str) -> TenantId {
    TenantId::new(raw).unwrap()
}

/// Two migrations both engines run alike.
fn portable_set() -> MigrationSet {
    MigrationSet::builder()
        .file(
            "1_items.sql",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
        )
        .file(
            "2_items_name.sql",
            "CREATE INDEX items_name_idx ON items (name);",
        )
        .build()
        .unwrap()
}

/// Four SQLite tenants `sq1`…`sq4` and three PostgreSQL tenants `pg1`…`pg3`, all
/// migrated with the same set.
struct MixedFleet {
    sqlite: Vec<TempSqlite>,
    postgres: TestFleet,
    list: FleetList,
}

async fn mixed_fleet() -> MixedFleet {
    let migrator = TenantMigrator::new(portable_set()).with_options(quick_options());
    let mut list = FleetList::new();
    let sqlite: Vec<TempSqlite> = (0..SQLITE).map(|_| TempSqlite::new()).collect();
    for (i, file) in sqlite.iter().enumerate() {
        let target = file.target().unwrap();
        migrator.apply(&target).await.unwrap();
        list.insert(FleetMember::new(id(&format!("sq{}", i + 1)), target));
    }
    let postgres = TestFleet::create(POSTGRES).await;
    for i in 0..POSTGRES {
        let target = postgres.target(i).await;
        migrator.apply(&target).await.unwrap();
        list.insert(FleetMember::new(id(&format!("pg{}", i + 1)), target));
    }
    MixedFleet {
        sqlite,
        postgres,
        list,
    }
}

fn survey() -> DriftSurvey {
    DriftSurvey::new(portable_set())
        .options(quick_options())
        .concurrency(4)
}

/// Each drifted tenant's findings as one-line texts, by tenant.
fn findings(report: &DriftReport) -> Vec<(String, Vec<String>)> {
    report
        .drifted
        .iter()
        .map(|t| {
            let lines = t
                .differences
                .iter()
                .map(ToString::to_string)
                .chain(t.anomalies.iter().map(ToString::to_string))
                .collect();
            (t.tenant.as_str().to_owned(), lines)
        })
        .collect()
}

/// Per `versions` entry: version, kind, tenants, schemas, reference tenant, named.
fn references(report: &DriftReport) -> Vec<(Option<i64>, DatabaseKind, u64, u64, String, bool)> {
    report
        .versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.database,
                v.tenants,
                v.groups,
                v.reference.tenant.as_str().to_owned(),
                v.reference.named,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_cleanly_migrated_mixed_fleet_has_no_drift() {
    let fleet = mixed_fleet().await;
    let report = survey().run(&fleet.list).await.unwrap();

    assert!(report.is_clean(), "{report}");
    let c = report.counts;
    assert_eq!(
        (c.surveyed, c.clean, c.drifted, c.unreachable),
        (7, 7, 0, 0)
    );
    assert_eq!(
        references(&report),
        [
            (Some(2), DatabaseKind::Postgres, 3, 1, "pg1".into(), false),
            (Some(2), DatabaseKind::Sqlite, 4, 1, "sq1".into(), false),
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["versions"][0]["database"], "postgres");
    assert_eq!(json["versions"][1]["database"], "sqlite");
    assert_eq!(json["versions"][1]["reference"]["tenant"], "sq1");
    let text = report.to_string();
    assert!(
        text.contains("version 2 (postgres): 3 tenants, 1 schemas"),
        "{text}"
    );
    assert!(
        text.ends_with("7 tenants: 7 clean, 0 drifted, 0 unreachable"),
        "{text}"
    );
}

#[tokio::test]
async fn a_drifted_tenant_of_each_kind_is_compared_with_its_own_kind() {
    let fleet = mixed_fleet().await;
    let mut pg = fleet.postgres.connect(1).await;
    sqlx::query("ALTER TABLE items ADD COLUMN note text")
        .execute(&mut pg)
        .await
        .unwrap();
    pg.close().await.unwrap();
    let mut lite = sqlx::SqliteConnection::connect(&fleet.sqlite[2].url())
        .await
        .unwrap();
    sqlx::query("DROP INDEX items_name_idx")
        .execute(&mut lite)
        .await
        .unwrap();
    lite.close().await.unwrap();

    let report = survey().run(&fleet.list).await.unwrap();
    assert_eq!(
        findings(&report),
        [
            (
                "pg2".into(),
                vec!["column public.items.note added: text".into()]
            ),
            (
                "sq3".into(),
                vec!["index main.items_name_idx missing".into()]
            ),
        ]
    );
    let c = report.counts;
    assert_eq!(
        (c.surveyed, c.clean, c.drifted, c.unreachable),
        (7, 5, 2, 0)
    );
    assert_eq!(
        references(&report),
        [
            (Some(2), DatabaseKind::Postgres, 3, 2, "pg1".into(), false),
            (Some(2), DatabaseKind::Sqlite, 4, 2, "sq1".into(), false),
        ]
    );

    // A named PostgreSQL reference: the other PostgreSQL tenants lack its column;
    // the SQLite tenants keep their largest group.
    let against = survey()
        .reference(id("pg2"))
        .run(&fleet.list)
        .await
        .unwrap();
    assert_eq!(
        findings(&against),
        [
            (
                "pg1".into(),
                vec!["column public.items.note missing".into()]
            ),
            (
                "pg3".into(),
                vec!["column public.items.note missing".into()]
            ),
            (
                "sq3".into(),
                vec!["index main.items_name_idx missing".into()]
            ),
        ]
    );
    assert_eq!(
        references(&against),
        [
            (Some(2), DatabaseKind::Postgres, 3, 2, "pg2".into(), true),
            (Some(2), DatabaseKind::Sqlite, 4, 2, "sq1".into(), false),
        ]
    );

    // A named SQLite reference leaves the PostgreSQL tenants to their largest group.
    let against = survey()
        .reference(id("sq3"))
        .run(&fleet.list)
        .await
        .unwrap();
    let drifted: Vec<&str> = against.drifted_ids().map(TenantId::as_str).collect();
    assert_eq!(drifted, ["pg2", "sq1", "sq2", "sq4"]);
    let s1 = &findings(&against)[1];
    assert_eq!(s1.0, "sq1");
    assert!(
        matches!(&s1.1[..], [line] if line.starts_with("index main.items_name_idx added")),
        "{s1:?}"
    );
}
