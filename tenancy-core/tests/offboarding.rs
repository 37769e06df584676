//! The offboarding pipeline end to end on real PostgreSQL databases and SQLite files:
//! export, pause, retention under a test clock, deletion, restore, and resumption
//! after a crash.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Connection;
use tenancy_core::testing::{server_url, TestDatabase};
use tenancy_core::{
    BackendError, Clock, DatabaseExporter, DatabaseKind, DatabasePauser, DatabaseProvisioner,
    DatabaseTarget, DatabaseUrl, DirectoryError, DirectoryExportDestination, DumpExporter,
    ExportDestination, ExportFormat, LocalAdminUserCreator, ManualClock, MemoryTenantDirectory,
    MigrationReport, NewTenant, Offboarding, OffboardingError, OffboardingStep, Onboarding,
    OnboardingError, PostgresServerProvisioner, SchemaMigrator, SqliteFileProvisioner,
    StoredExport, Tenant, TenantDirectory, TenantFilter, TenantId, TenantStatus,
};
use time::macros::datetime;
use time::Duration;

/// The tenant's data: three orders, written by onboarding's migrate step.
#[derive(Debug)]
struct OrdersMigrator;

const ORDERS: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)",
    "INSERT INTO orders VALUES (1, 'aspirin'), (2, 'bandages'), (3, 'cough syrup') \
     ON CONFLICT DO NOTHING",
];

#[async_trait]
impl SchemaMigrator for OrdersMigrator {
    async fn migrate(
        &self,
        _: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        match database.kind() {
            DatabaseKind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(database.url.expose())
                    .await
                    .map_err(BackendError::transient)?;
                for statement in ORDERS {
                    sqlx::query(statement)
                        .execute(&mut conn)
                        .await
                        .map_err(BackendError::transient)?;
                }
            }
            _ => {
                let mut conn = sqlx::SqliteConnection::connect(database.url.expose())
                    .await
                    .map_err(BackendError::transient)?;
                for statement in ORDERS {
                    sqlx::query(statement)
                        .execute(&mut conn)
                        .await
                        .map_err(BackendError::transient)?;
                }
            }
        }
        Ok(MigrationReport::new(None, Some(1), 1))
    }
}

async fn orders_in(url: &str) -> Result<Vec<String>, sqlx::Error> {
    const QUERY: &str = "SELECT item FROM orders ORDER BY id";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        let items = sqlx::query_scalar(QUERY).fetch_all(&mut conn).await;
        conn.close().await?;
        items
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let items = sqlx::query_scalar(QUERY).fetch_all(&mut conn).await;
        conn.close().await?;
        items
    }
}

fn all_orders() -> Vec<String> {
    ["aspirin", "bandages", "cough syrup"]
        .map(String::from)
        .to_vec()
}

/// A folder of its own, removed at the end of the test.
struct Folder(PathBuf);

impl Folder {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tk-offboard-{label}-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

struct Fleet {
    directory: Arc<MemoryTenantDirectory>,
    onboarding: Onboarding,
    clock: ManualClock,
}

/// A fleet of SQLite tenants in a folder of its own, and a folder for exports;
/// both removed at the end.
struct SqliteFleet {
    fleet: Fleet,
    provisioner: Arc<SqliteFileProvisioner>,
    exports: Folder,
    _tenants: Folder,
}

impl SqliteFleet {
    fn new(name: &str) -> Self {
        let tenants = Folder::new(&format!("{name}-tenants"));
        let provisioner = Arc::new(SqliteFileProvisioner::new(&tenants.0));
        Self {
            fleet: fleet(provisioner.clone()),
            provisioner,
            exports: Folder::new(&format!("{name}-exports")),
            _tenants: tenants,
        }
    }
}

fn fleet(provisioner: Arc<dyn tenancy_core::DatabaseProvisioner>) -> Fleet {
    let directory = Arc::new(MemoryTenantDirectory::new());
    let clock = ManualClock::new(datetime!(2026-03-01 9:00 UTC));
    let onboarding = Onboarding::new(
        directory.clone(),
        provisioner,
        Arc::new(OrdersMigrator),
        Arc::new(LocalAdminUserCreator),
    )
    .with_clock(Arc::new(clock.clone()));
    Fleet {
        directory,
        onboarding,
        clock,
    }
}

impl Fleet {
    fn offboarding(
        &self,
        provisioner: Arc<dyn tenancy_core::DatabaseProvisioner>,
        pauser: Arc<dyn DatabasePauser>,
        destination: Arc<dyn ExportDestination>,
    ) -> Offboarding {
        Offboarding::new(
            self.directory.clone(),
            provisioner,
            pauser,
            Arc::new(DumpExporter::new()),
            destination,
        )
        .with_clock(Arc::new(self.clock.clone()))
    }

    async fn ready(&self, company: &str) -> Tenant {
        let signup = NewTenant::new(company, "owner@pharmacy.example").unwrap();
        let tenant = self.onboarding.onboard(signup).await.unwrap();
        assert!(tenant.status.is_ready());
        tenant
    }
}

fn postgres_provisioner() -> Arc<PostgresServerProvisioner> {
    let server = DatabaseUrl::parse(&server_url()).unwrap();
    Arc::new(
        PostgresServerProvisioner::new(server)
            .with_prefix(&format!("tk_off_{:08x}_", fastrand::u32(..))),
    )
}

async fn database_exists(provisioner: &PostgresServerProvisioner, id: &TenantId) -> bool {
    let mut admin = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(provisioner.database_name(id))
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    found.is_some()
}

async fn pg_restore(dump: &Path, into: &TestDatabase) {
    let output = tokio::process::Command::new("pg_restore")
        .arg("--no-owner")
        .arg("--dbname")
        .arg(into.url().expose())
        .arg(dump)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_postgres_tenant_is_exported_paused_kept_and_deleted_after_retention() {
    let provisioner = postgres_provisioner();
    let fleet = fleet(provisioner.clone());
    let exports = Folder::new("pg");
    let tenant = fleet.ready("Acme Pharmacy").await;
    let url = tenant.database.clone().unwrap().url;
    let offboarding = fleet.offboarding(
        provisioner.clone(),
        provisioner.clone(),
        Arc::new(DirectoryExportDestination::new(&exports.0)),
    );

    let retained = offboarding.offboard(&tenant.id).await.unwrap();

    let TenantStatus::Retained { until, export, .. } = &retained.status else {
        panic!("not retained: {:?}", retained.status);
    };
    assert_eq!(*until, fleet.clock.now() + Duration::days(30));
    let export = export.clone().unwrap();
    assert_eq!(export.format, ExportFormat::PgDumpCustom);
    let file = PathBuf::from(&export.location);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), export.size_bytes);
    assert_eq!(sha256_hex(&file), export.sha256);
    assert!(
        sqlx::PgConnection::connect(url.expose()).await.is_err(),
        "a paused database refuses connections"
    );
    let restored = TestDatabase::create().await.unwrap();
    pg_restore(&file, &restored).await;
    assert_eq!(
        orders_in(restored.url().expose()).await.unwrap(),
        all_orders()
    );

    // Nothing is deleted before the retention ends; then the worker's call deletes it.
    fleet.clock.advance(Duration::days(29));
    let early = offboarding.run_pending().await.unwrap();
    assert!(early.deleted.is_empty(), "{early:?}");
    assert!(database_exists(&provisioner, &tenant.id).await);
    fleet.clock.advance(Duration::days(1));
    let report = offboarding.run_pending().await.unwrap();
    assert_eq!(report.deleted, std::slice::from_ref(&tenant.id));

    let deleted = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(
        deleted.status,
        TenantStatus::Deleted {
            at: fleet.clock.now(),
            export: Some(export.clone())
        }
    );
    assert_eq!(deleted.database, None);
    assert!(!database_exists(&provisioner, &tenant.id).await);
    assert!(file.exists(), "the export is what remains");

    // The id is never given out again, and a deleted tenant cannot be restored.
    let again = fleet
        .onboarding
        .signup(NewTenant::new("Acme Pharmacy", "owner@pharmacy.example").unwrap())
        .await;
    assert!(
        matches!(&again, Err(OnboardingError::IdRetired(id)) if *id == tenant.id),
        "{again:?}"
    );
    assert!(again.unwrap_err().to_string().contains("never reused"));
    assert!(matches!(
        offboarding.restore(&tenant.id).await,
        Err(OffboardingError::Deleted { .. })
    ));
    assert!(matches!(
        offboarding.start(&tenant.id).await,
        Err(OffboardingError::Deleted { .. })
    ));
}

#[tokio::test]
async fn a_postgres_tenant_restored_during_retention_has_its_data_back() {
    let provisioner = postgres_provisioner();
    let fleet = fleet(provisioner.clone());
    let exports = Folder::new("pg-restore");
    let tenant = fleet.ready("Bravo Drugs").await;
    let offboarding = fleet.offboarding(
        provisioner.clone(),
        provisioner.clone(),
        Arc::new(DirectoryExportDestination::new(&exports.0)),
    );
    offboarding.offboard(&tenant.id).await.unwrap();
    fleet.clock.advance(Duration::days(10));

    let restored = offboarding.restore(&tenant.id).await.unwrap();

    assert_eq!(restored.status, TenantStatus::Ready);
    let url = restored.database.unwrap().url;
    assert_eq!(orders_in(url.expose()).await.unwrap(), all_orders());
    assert!(matches!(
        offboarding.restore(&tenant.id).await,
        Err(OffboardingError::NotOffboarding { state: "ready", .. })
    ));
    // Retention no longer applies to it.
    fleet.clock.advance(Duration::days(60));
    assert!(offboarding.run_pending().await.unwrap().deleted.is_empty());
    provisioner.delete(&tenant.id).await.unwrap();
}

#[tokio::test]
async fn a_sqlite_tenant_is_exported_with_vacuum_into_restored_then_deleted() {
    let local = SqliteFleet::new("sqlite");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Charlie Chemists").await;
    let offboarding = fleet
        .offboarding(
            provisioner.clone(),
            provisioner.clone(),
            Arc::new(DirectoryExportDestination::new(&exports.0)),
        )
        .with_retention(Duration::days(7));

    let retained = offboarding.offboard(&tenant.id).await.unwrap();

    let export = retained.status.export().cloned().unwrap();
    assert_eq!(export.format, ExportFormat::Sqlite);
    assert_eq!(
        orders_in(&format!("sqlite:{}", export.location))
            .await
            .unwrap(),
        all_orders()
    );
    assert!(!provisioner.path_of(&tenant.id).exists(), "moved aside");
    assert!(provisioner.paused_path_of(&tenant.id).exists());
    // Signing up again while offboarding is refused too, pointing at restore.
    let again = fleet
        .onboarding
        .signup(NewTenant::new("Charlie Chemists", "owner@pharmacy.example").unwrap())
        .await;
    assert!(matches!(again, Err(OnboardingError::Offboarded(_))));

    let restored = offboarding.restore(&tenant.id).await.unwrap();
    assert_eq!(restored.status, TenantStatus::Ready);
    let url = restored.database.clone().unwrap().url;
    assert_eq!(orders_in(url.expose()).await.unwrap(), all_orders());

    // Offboarded again, it is deleted once the 7 days are over.
    offboarding.offboard(&tenant.id).await.unwrap();
    fleet.clock.advance(Duration::days(7));
    let deleted = offboarding.run(&tenant.id).await.unwrap();
    assert!(deleted.status.is_deleted());
    assert!(!provisioner.path_of(&tenant.id).exists());
    assert!(!provisioner.paused_path_of(&tenant.id).exists());
    assert!(PathBuf::from(&deleted.status.export().unwrap().location).exists());
}

/// Fails its first pause: the crash between export and deletion.
struct PauseFailsOnce {
    inner: Arc<SqliteFileProvisioner>,
    failures: AtomicU32,
}

#[async_trait]
impl DatabasePauser for PauseFailsOnce {
    async fn pause(&self, tenant: &Tenant, db: &DatabaseTarget) -> Result<(), BackendError> {
        if self.failures.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(BackendError::transient(std::io::Error::other(
                "the host went away",
            )));
        }
        self.inner.pause(tenant, db).await
    }

    async fn resume(&self, tenant: &Tenant, db: &DatabaseTarget) -> Result<(), BackendError> {
        self.inner.resume(tenant, db).await
    }
}

/// Counts what it stores; its first store succeeds and then reports a failure, as a
/// process that crashed before recording the export would.
struct CountingDestination {
    inner: DirectoryExportDestination,
    stores: AtomicU32,
    lose_first_answer: bool,
}

impl CountingDestination {
    /// Over an export folder; `lose_first_answer` as the field says.
    fn new(folder: &Path, lose_first_answer: bool) -> Self {
        Self {
            inner: DirectoryExportDestination::new(folder),
            stores: AtomicU32::new(0),
            lose_first_answer,
        }
    }
}

#[async_trait]
impl ExportDestination for CountingDestination {
    async fn store(
        &self,
        name: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<StoredExport, BackendError> {
        let stored = self.inner.store(name, file, sha256).await?;
        if self.stores.fetch_add(1, Ordering::SeqCst) == 0 && self.lose_first_answer {
            return Err(BackendError::transient(std::io::Error::other(
                "crashed before the export was recorded",
            )));
        }
        Ok(stored)
    }

    async fn find(&self, name: &str) -> Result<Option<StoredExport>, BackendError> {
        self.inner.find(name).await
    }
}

#[tokio::test]
async fn a_failure_between_export_and_delete_resumes_without_a_second_or_missing_export() {
    let local = SqliteFleet::new("crash");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Delta Dispensary").await;
    let destination = Arc::new(CountingDestination::new(&exports.0, false));
    let pauser = Arc::new(PauseFailsOnce {
        inner: provisioner.clone(),
        failures: AtomicU32::new(0),
    });
    let offboarding = fleet.offboarding(provisioner.clone(), pauser, destination.clone());

    let failed = offboarding.offboard(&tenant.id).await.unwrap_err();

    assert!(matches!(
        failed,
        OffboardingError::Step {
            step: OffboardingStep::Pause,
            ..
        }
    ));
    assert!(failed.is_retryable());
    let stopped = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    let TenantStatus::Offboarding {
        step: OffboardingStep::Pause,
        export: Some(recorded),
        last_error: Some(reason),
        attempts: 1,
        ..
    } = &stopped.status
    else {
        panic!("not stopped at pause: {:?}", stopped.status);
    };
    assert!(reason.contains("the host went away"));

    let report = offboarding.run_pending().await.unwrap();

    assert_eq!(report.retained, std::slice::from_ref(&tenant.id));
    let resumed = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(resumed.status.export(), Some(recorded));
    assert_eq!(destination.stores.load(Ordering::SeqCst), 1, "one export");
    assert_eq!(
        std::fs::read_dir(&exports.0).unwrap().count(),
        2,
        "dump and checksum"
    );
}

#[tokio::test]
async fn an_export_stored_before_a_crash_is_found_again_not_made_twice() {
    let local = SqliteFleet::new("lost");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Echo Apothecary").await;
    let destination = Arc::new(CountingDestination::new(&exports.0, true));
    let offboarding = fleet.offboarding(
        provisioner.clone(),
        provisioner.clone(),
        destination.clone(),
    );

    let failed = offboarding.offboard(&tenant.id).await.unwrap_err();
    assert!(matches!(
        failed,
        OffboardingError::Step {
            step: OffboardingStep::Export,
            ..
        }
    ));
    fleet.clock.advance(Duration::minutes(5));
    let retained = offboarding.run(&tenant.id).await.unwrap();

    assert_eq!(destination.stores.load(Ordering::SeqCst), 1, "one export");
    let export = retained.status.export().unwrap();
    let file = PathBuf::from(&export.location);
    assert_eq!(sha256_hex(&file), export.sha256);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), export.size_bytes);
    let stored_at: time::OffsetDateTime =
        std::fs::metadata(&file).unwrap().modified().unwrap().into();
    assert_eq!(
        export.exported_at, stored_at,
        "made when stored, not when found"
    );
    assert_eq!(
        orders_in(&format!("sqlite:{}", export.location))
            .await
            .unwrap(),
        all_orders()
    );
}

/// A directory that yields between reading a record and handing it over, as a
/// second process reads the record while the first is about to write it.
struct YieldingDirectory(Arc<MemoryTenantDirectory>);

#[async_trait]
impl TenantDirectory for YieldingDirectory {
    async fn insert(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        self.0.insert(tenant).await
    }

    async fn get(&self, id: &TenantId) -> Result<Option<Tenant>, DirectoryError> {
        let tenant = self.0.get(id).await;
        tokio::task::yield_now().await;
        tenant
    }

    async fn update(&self, tenant: &Tenant) -> Result<Tenant, DirectoryError> {
        self.0.update(tenant).await
    }

    async fn list(&self, filter: &TenantFilter) -> Result<Vec<Tenant>, DirectoryError> {
        self.0.list(filter).await
    }
}

/// Counts the exports it makes (with `DumpExporter`).
#[derive(Default)]
struct CountingExporter {
    exports: AtomicU32,
}

#[async_trait]
impl DatabaseExporter for CountingExporter {
    async fn export(&self, database: &DatabaseTarget, into: &Path) -> Result<(), BackendError> {
        self.exports.fetch_add(1, Ordering::SeqCst);
        DumpExporter::new().export(database, into).await
    }
}

/// Two pipelines over one directory: two processes.
struct TwoProcesses {
    first: Offboarding,
    second: Offboarding,
    exporter: Arc<CountingExporter>,
    destination: Arc<CountingDestination>,
}

fn two_processes(
    fleet: &Fleet,
    provisioner: Arc<SqliteFileProvisioner>,
    exports: &Path,
) -> TwoProcesses {
    let directory = Arc::new(YieldingDirectory(fleet.directory.clone()));
    let exporter = Arc::new(CountingExporter::default());
    let destination = Arc::new(CountingDestination::new(exports, false));
    let process = || {
        Offboarding::new(
            directory.clone(),
            provisioner.clone(),
            provisioner.clone(),
            exporter.clone(),
            destination.clone(),
        )
        .with_clock(Arc::new(fleet.clock.clone()))
    };
    TwoProcesses {
        first: process(),
        second: process(),
        exporter,
        destination,
    }
}

/// Records `tenant` at the export step, claimed at `claimed_at`: where a run that
/// stopped there left it.
async fn stopped_at_export(
    fleet: &Fleet,
    offboarding: &Offboarding,
    id: &TenantId,
    claimed: Option<time::OffsetDateTime>,
) {
    offboarding.start(id).await.unwrap();
    let mut tenant = fleet.directory.get(id).await.unwrap().unwrap();
    let TenantStatus::Offboarding {
        step, claimed_at, ..
    } = &mut tenant.status
    else {
        panic!("not offboarding: {:?}", tenant.status);
    };
    *step = OffboardingStep::Export;
    *claimed_at = claimed;
    fleet.directory.update(&tenant).await.unwrap();
}

#[tokio::test]
async fn two_processes_resuming_one_export_make_it_once() {
    let local = SqliteFleet::new("race");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Foxtrot Pharmacy").await;
    let processes = two_processes(fleet, provisioner.clone(), &exports.0);
    stopped_at_export(fleet, &processes.first, &tenant.id, None).await;

    // Both read the record before either writes it.
    let (first, second) = tokio::join!(
        processes.first.run(&tenant.id),
        processes.second.run(&tenant.id)
    );

    let (done, busy) = match (first, second) {
        (Ok(done), Err(busy)) | (Err(busy), Ok(done)) => (done, busy),
        other => panic!("not one run and one refusal: {other:?}"),
    };
    assert_eq!(done.status.name(), "retained");
    assert!(
        matches!(
            busy,
            OffboardingError::Busy {
                step: OffboardingStep::Export,
                ..
            }
        ),
        "{busy:?}"
    );
    assert!(busy
        .to_string()
        .contains("another process is offboarding tenant"));
    assert!(!busy.is_retryable());
    assert_eq!(processes.exporter.exports.load(Ordering::SeqCst), 1);
    assert_eq!(processes.destination.stores.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read_dir(&exports.0).unwrap().count(),
        2,
        "one export and its checksum"
    );
    let export = done.status.export().unwrap();
    assert_eq!(sha256_hex(Path::new(&export.location)), export.sha256);
}

#[tokio::test]
async fn a_claimed_step_is_left_alone_until_the_claim_times_out() {
    let local = SqliteFleet::new("claim");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Golf Chemists").await;
    let processes = two_processes(fleet, provisioner.clone(), &exports.0);
    let first = processes
        .first
        .clone()
        .with_claim_timeout(Duration::minutes(30));
    // The first process claimed the export, then stopped answering (a crash).
    stopped_at_export(fleet, &first, &tenant.id, Some(fleet.clock.now())).await;

    fleet.clock.advance(Duration::minutes(29));
    let busy = first.run(&tenant.id).await.unwrap_err();
    assert!(matches!(busy, OffboardingError::Busy { .. }), "{busy:?}");
    let report = first.run_pending().await.unwrap();
    assert_eq!(report.busy, std::slice::from_ref(&tenant.id));
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(processes.exporter.exports.load(Ordering::SeqCst), 0);

    fleet.clock.advance(Duration::minutes(1));
    let retained = first.run(&tenant.id).await.unwrap();
    assert_eq!(retained.status.name(), "retained");
    assert_eq!(processes.exporter.exports.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_stores_of_one_name_leave_one_whole_checksummed_export() {
    let exports = Folder::new("dest");
    let staging = Folder::new("dest-staging");
    let destination = DirectoryExportDestination::new(&exports.0);
    let first = staging.0.join("first");
    let second = staging.0.join("second");
    std::fs::write(&first, vec![b'a'; 4 << 20]).unwrap();
    std::fs::write(&second, vec![b'b'; 4 << 20]).unwrap();

    let (first_sum, second_sum) = (sha256_hex(&first), sha256_hex(&second));
    let (one, other) = tokio::join!(
        destination.store("t-1.dump", &first, &first_sum),
        destination.store("t-1.dump", &second, &second_sum),
    );

    one.unwrap();
    other.unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&exports.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["t-1.dump", "t-1.dump.sha256"],
        "no temporary file left"
    );
    let file = exports.0.join("t-1.dump");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4 << 20);
    // Whichever store won, what is found is the file as it is.
    if let Some(found) = destination.find("t-1.dump").await.unwrap() {
        assert_eq!(found.sha256, sha256_hex(&file));
    }
}

#[tokio::test]
async fn an_export_without_a_sound_checksum_counts_as_not_stored() {
    let exports = Folder::new("sums");
    let staging = Folder::new("sums-staging");
    let destination = DirectoryExportDestination::new(&exports.0);
    let source = staging.0.join("export");
    std::fs::write(&source, b"the tenant's data").unwrap();
    let sha256 = sha256_hex(&source);
    destination
        .store("t-2.dump", &source, &sha256)
        .await
        .unwrap();
    let sums = exports.0.join("t-2.dump.sha256");

    let found = destination.find("t-2.dump").await.unwrap().unwrap();
    assert_eq!(found.sha256, sha256);
    let modified = std::fs::metadata(exports.0.join("t-2.dump"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(found.stored_at, Some(modified.into()));

    let wrong = format!("{}  t-2.dump\n", "0".repeat(64));
    for checksum in ["", "   \n", "not a checksum  t-2.dump\n", wrong.as_str()] {
        std::fs::write(&sums, checksum).unwrap();
        assert_eq!(
            destination.find("t-2.dump").await.unwrap(),
            None,
            "checksum file {checksum:?}"
        );
    }
    std::fs::remove_file(&sums).unwrap();
    assert_eq!(destination.find("t-2.dump").await.unwrap(), None);
}

/// The tenant's orders plus every migration added since (`added`), failing while
/// `failing` is set.
#[derive(Default)]
struct GrowingMigrator {
    added: std::sync::Mutex<Vec<&'static str>>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl SchemaMigrator for GrowingMigrator {
    async fn migrate(
        &self,
        id: &TenantId,
        database: &DatabaseTarget,
    ) -> Result<MigrationReport, BackendError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BackendError::permanent("migration 2 has a syntax error"));
        }
        OrdersMigrator.migrate(id, database).await?;
        let added = self.added.lock().unwrap().clone();
        let mut conn = sqlx::SqliteConnection::connect(database.url.expose())
            .await
            .map_err(BackendError::transient)?;
        for statement in &added {
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .map_err(BackendError::transient)?;
        }
        let version = 1 + added.len() as i64;
        Ok(MigrationReport::new(None, Some(version), added.len() + 1))
    }
}

async fn has_table(url: &str, table: &str) -> bool {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    found.is_some()
}

#[tokio::test]
async fn a_restored_tenant_is_migrated_to_the_schema_added_while_it_was_retained() {
    let local = SqliteFleet::new("migrate");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("Hotel Pharmacy").await;
    let migrator = Arc::new(GrowingMigrator::default());
    let offboarding = fleet
        .offboarding(
            provisioner.clone(),
            provisioner.clone(),
            Arc::new(DirectoryExportDestination::new(&exports.0)),
        )
        .with_migrator(migrator.clone());
    offboarding.offboard(&tenant.id).await.unwrap();
    // A migration is rolled out while the tenant is retained (rollouts skip it).
    migrator
        .added
        .lock()
        .unwrap()
        .push("CREATE TABLE refills (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL)");

    // A failing migration leaves it retained, its database paused again.
    migrator.failing.store(true, Ordering::SeqCst);
    let failed = offboarding.restore(&tenant.id).await.unwrap_err();
    assert!(
        matches!(
            failed,
            OffboardingError::Migrate {
                paused_again: Some(true),
                state: "retained",
                ..
            }
        ),
        "{failed:?}"
    );
    assert!(failed.to_string().contains("still retained"), "{failed}");
    let still = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(still.status.name(), "retained");
    assert!(provisioner.paused_path_of(&tenant.id).exists());
    assert!(!provisioner.path_of(&tenant.id).exists());

    migrator.failing.store(false, Ordering::SeqCst);
    let restored = offboarding.restore(&tenant.id).await.unwrap();

    assert_eq!(restored.status, TenantStatus::Ready);
    let url = restored.database.unwrap().url;
    assert!(
        has_table(url.expose(), "refills").await,
        "at the new schema"
    );
    assert_eq!(orders_in(url.expose()).await.unwrap(), all_orders());
}

#[tokio::test]
async fn a_failed_restore_before_the_pause_step_leaves_the_database_unpaused() {
    let local = SqliteFleet::new("restore-early");
    let (fleet, provisioner, exports) = (&local.fleet, &local.provisioner, &local.exports);
    let tenant = fleet.ready("India Pharmacy").await;
    let migrator = Arc::new(GrowingMigrator::default());
    let offboarding = fleet
        .offboarding(
            provisioner.clone(),
            provisioner.clone(),
            Arc::new(CountingDestination::new(&exports.0, true)),
        )
        .with_migrator(migrator.clone());
    // The export's answer is lost: offboarding stops at its export step, the
    // database never paused.
    offboarding.offboard(&tenant.id).await.unwrap_err();
    let stopped = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(stopped.status.name(), "offboarding");
    assert!(provisioner.path_of(&tenant.id).exists());

    migrator.failing.store(true, Ordering::SeqCst);
    let failed = offboarding.restore(&tenant.id).await.unwrap_err();
    assert!(
        matches!(
            failed,
            OffboardingError::Migrate {
                paused_again: None,
                state: "offboarding",
                ..
            }
        ),
        "{failed:?}"
    );
    let said = failed.to_string();
    assert!(
        said.contains("still offboarding") && !said.contains("paused"),
        "{said}"
    );
    // As it was: offboarding, its database where it was and not paused.
    let still = fleet.directory.get(&tenant.id).await.unwrap().unwrap();
    assert_eq!(still.status.name(), "offboarding");
    assert!(provisioner.path_of(&tenant.id).exists());
    assert!(!provisioner.paused_path_of(&tenant.id).exists());

    migrator.failing.store(false, Ordering::SeqCst);
    let restored = offboarding.restore(&tenant.id).await.unwrap();
    assert_eq!(restored.status, TenantStatus::Ready);
}
