//! The local provisioners and admin-user creator against real SQLite files and PostgreSQL.

use sqlx::Connection;
use tenancy_core::testing::server_url;
use tenancy_core::{
    AdminUserCreator, DatabaseProvisioner, DatabaseUrl, LocalAdminUserCreator, NewTenant,
    PostgresServerProvisioner, SqliteFileProvisioner, Tenant,
};
use time::OffsetDateTime;

fn tenant(name: &str) -> Tenant {
    NewTenant::new(name, "owner@acme.example")
        .unwrap()
        .into_tenant(OffsetDateTime::now_utc())
}

#[tokio::test]
async fn sqlite_files_are_created_once_found_and_deleted() {
    let folder = std::env::temp_dir().join(format!(
        "tk-local-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    let provisioner = SqliteFileProvisioner::new(&folder);
    let acme = tenant("Acme");
    assert!(provisioner.find(&acme.id).await.unwrap().is_none());

    let first = provisioner.provision(&acme).await.unwrap();
    let again = provisioner.provision(&acme).await.unwrap();
    assert_eq!(first, again);
    assert!(provisioner.path_of(&acme.id).exists());
    assert_eq!(
        provisioner.find(&acme.id).await.unwrap(),
        Some(first.clone())
    );

    let admin = LocalAdminUserCreator
        .create_admin(&acme, &first)
        .await
        .unwrap();
    assert!(admin.created);
    let admin = LocalAdminUserCreator
        .create_admin(&acme, &first)
        .await
        .unwrap();
    assert!(!admin.created, "the second call adopts the existing admin");

    provisioner.delete(&acme.id).await.unwrap();
    provisioner.delete(&acme.id).await.unwrap();
    assert!(provisioner.find(&acme.id).await.unwrap().is_none());
    std::fs::remove_dir_all(folder).unwrap();
}

#[tokio::test]
async fn postgres_server_databases_are_idempotent() {
    let server = DatabaseUrl::parse(&server_url()).unwrap();
    let provisioner = PostgresServerProvisioner::new(server)
        .with_prefix(&format!("tk_local_{}_", fastrand_suffix()));
    let acme = tenant("Acme Labs");
    let name = provisioner.database_name(&acme.id);
    assert!(name.ends_with("acme_labs"), "{name}");

    // Two provisions at once still make one database.
    let (a, b) = tokio::join!(provisioner.provision(&acme), provisioner.provision(&acme));
    let target = a.unwrap();
    assert_eq!(target, b.unwrap());
    assert_eq!(target.url.database_name(), Some(name.as_str()));
    let mut conn = sqlx::PgConnection::connect(target.url.expose())
        .await
        .unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();

    let admin = LocalAdminUserCreator
        .create_admin(&acme, &target)
        .await
        .unwrap();
    assert!(admin.created);
    assert!(
        !LocalAdminUserCreator
            .create_admin(&acme, &target)
            .await
            .unwrap()
            .created
    );

    provisioner.delete(&acme.id).await.unwrap();
    assert!(provisioner.find(&acme.id).await.unwrap().is_none());
}

fn fastrand_suffix() -> String {
    format!(
        "{:08x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}
