//! Fleet drift surveys on real PostgreSQL and SQLite: in a fleet of 20 migrated
//! tenants where four were changed by hand, exactly those four are reported, each
//! with the one difference or history anomaly it has; a tenant that cannot be
//! reached is reported as unreachable, not as drift.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::Connection;
use tenancy_core::testing::TempSqlite;
use tenancy_core::{DatabaseTarget, DatabaseUrl, TenantFilter, TenantId};
use tenant_migrate::drift::{
    DriftError, DriftPolicy, DriftRecords, DriftReport, DriftSurvey, FleetStatus, HistoryAnomaly,
};
use tenant_migrate::testing::TestFleet;
use tenant_migrate::{FleetList, FleetMember, MigrationSet, Rollout, TenantFleet, TenantMigrator};

use support::{fixture_set, quick_options, FIXTURE_VERSIONS};

const HOTFIX: usize = 3;
const INCIDENT: usize = 7;
const EDITED: usize = 11;
const EXTRA: usize = 15;
const LATEST: i64 = FIXTURE_VERSIONS[2];

fn id(raw: &str) -> TenantId {
    TenantId::new(raw).unwrap()
}

fn tenant(i: usize) -> TenantId {
    id(&format!("t{i:02}"))
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

/// 20 PostgreSQL tenants migrated to the fixture set, four changed by hand, and a
/// fleet list of them plus `t20`, whose database does not exist.
async fn drifted_postgres_fleet() -> (TestFleet, FleetList) {
    let fleet = TestFleet::create(20).await;
    let migrator = TenantMigrator::new(fixture_set());
    let mut list = FleetList::new();
    for i in 0..20 {
        let target = fleet.target(i).await;
        migrator.apply(&target).await.unwrap();
        list.insert(FleetMember::new(tenant(i), target));
    }
    let by_hand = [
        (HOTFIX, "ALTER TABLE items ADD COLUMN note text".to_owned()),
        (INCIDENT, "DROP INDEX items_name_idx".to_owned()),
        (
            EDITED,
            format!("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = {}", FIXTURE_VERSIONS[1]),
        ),
        (
            EXTRA,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (20240199000000, 'hotfix', TRUE, '\\x00', 0)"
                .to_owned(),
        ),
    ];
    for (i, sql) in by_hand {
        let mut conn = fleet.connect(i).await;
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let missing = fleet
        .target(0)
        .await
        .url
        .with_database("tk_drift_no_such_database");
    list.insert(FleetMember::new(tenant(20), DatabaseTarget::new(missing)));
    (fleet, list)
}

fn survey() -> DriftSurvey {
    DriftSurvey::new(fixture_set())
        .options(quick_options())
        .concurrency(4)
}

#[tokio::test]
async fn postgres_survey_reports_each_drifted_tenant_with_its_one_difference() {
    let (_fleet, list) = drifted_postgres_fleet().await;
    let report = survey().run(&list).await.unwrap();

    assert_eq!(
        findings(&report),
        [
            ("t03".into(), vec!["column public.items.note added: text".into()]),
            ("t07".into(), vec!["index public.items_name_idx missing".into()]),
            (
                "t11".into(),
                vec![format!(
                    "history: version {} was applied with a checksum that differs from 20240102000000_add_price.up.sql",
                    FIXTURE_VERSIONS[1]
                )]
            ),
            (
                "t15".into(),
                vec!["history: version 20240199000000 is applied but not in the migration set".into()]
            ),
        ]
    );
    let edited = &report.drifted[2];
    assert!(matches!(
        edited.anomalies[..],
        [HistoryAnomaly::ChecksumMismatch { version, .. }] if version == FIXTURE_VERSIONS[1]
    ));
    // A version the set lacks is an anomaly; the tenant is compared at the set's latest.
    assert_eq!(report.drifted[3].version, Some(LATEST));

    let ids: Vec<&str> = report
        .unreachable
        .iter()
        .map(|u| u.tenant.as_str())
        .collect();
    assert_eq!(ids, ["t20"]);
    assert!(!report.unreachable[0]
        .error
        .contains(tenant_migrate::testing::TENANT_PASSWORD));
    let c = report.counts;
    assert_eq!(
        (c.surveyed, c.clean, c.drifted, c.unreachable),
        (21, 16, 4, 1)
    );

    let [version] = &report.versions[..] else {
        panic!("one version expected: {:?}", report.versions)
    };
    assert_eq!(
        (version.version, version.tenants, version.groups),
        (Some(LATEST), 20, 3)
    );
    assert_eq!(version.reference.tenant.as_str(), "t00");
    assert_eq!(version.reference.tenants, 18);
    assert!(!version.reference.named);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["drifted"][0]["differences"][0]["change"], "added");
    assert_eq!(json["drifted"][0]["differences"][0]["kind"], "column");
    assert_eq!(
        json["drifted"][2]["anomalies"][0]["anomaly"],
        "checksum_mismatch"
    );
    assert_eq!(json["counts"]["unreachable"], 1);
    assert!(report
        .to_string()
        .contains("t03: column public.items.note added: text"));
}

#[tokio::test]
async fn postgres_named_reference_status_counts_and_the_rollout_gate() {
    let (fleet, list) = drifted_postgres_fleet().await;

    // The hotfixed tenant as the reference: every other tenant lacks its column.
    let report = survey().reference(tenant(HOTFIX)).run(&list).await.unwrap();
    let reference = &report.versions[0].reference;
    assert_eq!((reference.tenant.as_str(), reference.named), ("t03", true));
    assert_eq!(report.counts.drifted, 19);
    let found = findings(&report);
    assert_eq!(
        found[0],
        (
            "t00".into(),
            vec!["column public.items.note missing".into()]
        )
    );
    assert!(found.iter().all(|(id, _)| id != "t03"));
    let incident = found.iter().find(|(id, _)| id == "t07").unwrap();
    assert_eq!(
        incident.1,
        [
            "column public.items.note missing",
            "index public.items_name_idx missing"
        ]
    );

    assert!(matches!(
        survey().reference(id("nobody")).run(&list).await,
        Err(DriftError::UnknownReference { tenant }) if tenant.as_str() == "nobody"
    ));
    assert!(matches!(
        survey().reference(tenant(20)).run(&list).await,
        Err(DriftError::ReferenceUnreachable { .. })
    ));

    // Recorded, then counted by status against the live versions.
    let state = TempSqlite::new();
    let records = DriftRecords::open(&DatabaseUrl::parse(&state.url()).unwrap())
        .await
        .unwrap();
    let report = survey().run(&list).await.unwrap();
    records.record(&report).await.unwrap();
    records.record(&report).await.unwrap(); // replaced, not duplicated
    assert_eq!(records.load().await.unwrap().len(), 21);
    let migrator = TenantMigrator::new(fixture_set()).with_options(quick_options());
    let status = FleetStatus::read(&list, &TenantFilter::all(), &migrator, Some(&records), 4)
        .await
        .unwrap();
    let json = serde_json::to_value(&status).unwrap();
    // t15's highest applied version is the one the set lacks.
    assert_eq!(
        json["versions"],
        serde_json::json!([{"version": LATEST, "tenants": 19}, {"version": 20240199000000_i64, "tenants": 1}])
    );
    assert_eq!(status.unreachable, 1);
    let d = &status.drift;
    assert_eq!(
        (
            d.checked,
            d.clean,
            d.drifted,
            d.unreachable,
            d.unchecked,
            d.stale
        ),
        (21, 16, 4, 1, 0, 0)
    );
    assert!(d.last_checked_at.is_some());

    // The gate, over the 20 reachable tenants (the directory fleet).
    let tenants: Arc<dyn TenantFleet> =
        tenant_migrate::IntoFleet::into_fleet(fleet.directory.clone());
    let refused = DriftPolicy::RequireNoDrift
        .check(tenants.clone(), &survey(), &TenantFilter::all())
        .await
        .unwrap_err();
    let DriftError::Drifted { tenants: drifted } = &refused else {
        panic!("{refused}")
    };
    let drifted: Vec<&str> = drifted.iter().map(TenantId::as_str).collect();
    assert_eq!(drifted, ["t03", "t07", "t11", "t15"]);
    assert!(
        refused.to_string().contains("t03, t07, t11, t15"),
        "{refused}"
    );

    let checked = DriftPolicy::ExcludeDrifted
        .check(tenants, &survey(), &TenantFilter::all())
        .await
        .unwrap();
    let left_out: Vec<String> = checked.excluded.iter().map(ToString::to_string).collect();
    assert_eq!(
        left_out[0],
        "t03 left out: drifted (column public.items.note added: text)"
    );
    assert_eq!(left_out.len(), 4);
    let next = with_stock_column(&fixture_set());
    let store =
        tenant_migrate::rollout::store::open(&DatabaseUrl::parse("sqlite::memory:").unwrap())
            .await
            .unwrap();
    let rollout = Rollout::of_migrations(checked.fleet, next, store).build();
    let result = rollout.run().await.unwrap();
    assert!(result.is_complete(), "{result}");
    assert_eq!(result.counts.succeeded, 16);
    let excluded: BTreeSet<usize> = [HOTFIX, INCIDENT, EDITED, EXTRA].into();
    for i in 0..20 {
        let migrated = fleet.history(i).await.contains(&20240104000000);
        assert_eq!(migrated, !excluded.contains(&i), "t{i:02}");
    }
}

/// `set` and a fourth migration.
fn with_stock_column(set: &MigrationSet) -> MigrationSet {
    set.iter()
        .fold(MigrationSet::builder(), |b, m| b.migration(m.clone()))
        .file(
            "20240104000000_stock.sql",
            "ALTER TABLE items ADD COLUMN stock INT;",
        )
        .build()
        .unwrap()
}

fn sqlite_set() -> MigrationSet {
    MigrationSet::from_dir(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sqlite_migrations"),
    )
    .unwrap()
}

#[tokio::test]
async fn sqlite_survey_reports_each_drifted_tenant_with_its_one_difference() {
    let set = sqlite_set();
    let migrator = TenantMigrator::new(set.clone());
    let files: Vec<TempSqlite> = (0..20).map(|_| TempSqlite::new()).collect();
    let mut list = FleetList::new();
    for (i, file) in files.iter().enumerate() {
        let target = file.target().unwrap();
        migrator.apply(&target).await.unwrap();
        list.insert(FleetMember::new(tenant(i), target));
    }
    let by_hand = [
        (HOTFIX, "ALTER TABLE notes ADD COLUMN note TEXT"),
        (INCIDENT, "DROP INDEX notes_pinned_idx"),
        (EDITED, "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 1"),
        (
            EXTRA,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'hotfix', TRUE, X'00', 0)",
        ),
    ];
    for (i, sql) in by_hand {
        let mut conn = sqlx::SqliteConnection::connect(&files[i].url())
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let gone = files[0].path().with_file_name("tk-drift-no-such-tenant.db");
    let missing = DatabaseUrl::parse(&format!("sqlite:{}", gone.display())).unwrap();
    list.insert(FleetMember::new(tenant(20), DatabaseTarget::new(missing)));

    let report = DriftSurvey::new(set)
        .concurrency(8)
        .run(&list)
        .await
        .unwrap();
    assert_eq!(
        findings(&report),
        [
            ("t03".into(), vec!["column main.notes.note added: text".into()]),
            ("t07".into(), vec!["index main.notes_pinned_idx missing".into()]),
            (
                "t11".into(),
                vec!["history: version 1 was applied with a checksum that differs from 1_create_notes.up.sql".into()]
            ),
            (
                "t15".into(),
                vec!["history: version 99 is applied but not in the migration set".into()]
            ),
        ]
    );
    let ids: Vec<&str> = report
        .unreachable
        .iter()
        .map(|u| u.tenant.as_str())
        .collect();
    assert_eq!(ids, ["t20"]);
    assert!(!gone.exists(), "a survey never creates a tenant database");
    let c = report.counts;
    assert_eq!(
        (c.surveyed, c.clean, c.drifted, c.unreachable),
        (21, 16, 4, 1)
    );
    assert_eq!(report.versions[0].version, Some(2));
    assert_eq!(report.versions[0].reference.tenants, 18);
}
