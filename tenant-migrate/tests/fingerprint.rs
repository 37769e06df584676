//! Schema fingerprints on real PostgreSQL and SQLite: equal schemas hash equal
//! whatever order they were built in, and each kind of drift is reported as the
//! one difference it is.

use sqlx::Connection;
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::DatabaseTarget;
use tenant_migrate::fingerprint::{read_schema, ObjectKind, SchemaDifference, SchemaScope};
use tenant_migrate::MigrateOptions;

const PG_SCHEMA: &[&str] = &[
    "CREATE TYPE state AS ENUM ('open', 'closed')",
    "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT '', qty integer, st state)",
    "CREATE INDEX items_name_idx ON items (name)",
    "CREATE TABLE orders (id bigint PRIMARY KEY, item bigint REFERENCES items (id) ON DELETE CASCADE)",
    "CREATE VIEW open_items AS SELECT id, name FROM items WHERE st = 'open'",
    "CREATE FUNCTION total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM items'",
    "CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY)",
];

async fn postgres_with(statements: &[&str]) -> (TestDatabase, DatabaseTarget) {
    let db = TestDatabase::create().await.unwrap();
    let mut conn = sqlx::PgConnection::connect(db.url().expose())
        .await
        .unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let target = DatabaseTarget::new(db.url().clone());
    (db, target)
}

async fn differences(reference: &DatabaseTarget, tenant: &DatabaseTarget) -> Vec<SchemaDifference> {
    let scope = SchemaScope::default();
    let options = MigrateOptions::default();
    let reference = read_schema(reference, &scope, &options).await.unwrap();
    let tenant = read_schema(tenant, &scope, &options).await.unwrap();
    tenant.diff(&reference)
}

#[tokio::test]
async fn postgres_fingerprints_ignore_order_and_name_each_drift() {
    let (_a, reference) = postgres_with(PG_SCHEMA).await;
    let mut reordered: Vec<&str> = PG_SCHEMA.to_vec();
    reordered.swap(5, 6); // the history table before the function
    reordered.swap(2, 3); // orders before the index
    let (_b, same) = postgres_with(&reordered).await;
    let scope = SchemaScope::default();
    let options = MigrateOptions::default();
    let a = read_schema(&reference, &scope, &options).await.unwrap();
    let b = read_schema(&same, &scope, &options).await.unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert!(a.len() > 15, "{a:?}");
    assert!(a
        .objects()
        .all(|(_, name, _)| !name.contains("_sqlx_migrations")));

    let hotfix = [PG_SCHEMA, &["ALTER TABLE items ADD COLUMN note text"]].concat();
    let (_c, added) = postgres_with(&hotfix).await;
    let found = differences(&reference, &added).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].to_string(), "column public.items.note added: text");

    let incident = [PG_SCHEMA, &["DROP INDEX items_name_idx"]].concat();
    let (_d, dropped) = postgres_with(&incident).await;
    let found = differences(&reference, &dropped).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        matches!(&found[0], SchemaDifference::Missing { kind: ObjectKind::Index, name, .. } if name == "public.items_name_idx")
    );

    let retyped = [
        PG_SCHEMA,
        &["ALTER TABLE items ALTER COLUMN qty TYPE bigint"],
    ]
    .concat();
    let (_e, changed) = postgres_with(&retyped).await;
    let found = differences(&reference, &changed).await;
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["column public.items.qty changed: integer -> bigint"]
    );

    // Outside the migrated schemas: not compared unless asked for.
    let elsewhere = [
        PG_SCHEMA,
        &["CREATE SCHEMA audit", "CREATE TABLE audit.log (id int)"],
    ]
    .concat();
    let (_f, other) = postgres_with(&elsewhere).await;
    assert!(differences(&reference, &other).await.is_empty());
    let wide = SchemaScope::default().schemas(["public", "audit"]);
    let seen = read_schema(&other, &wide, &options).await.unwrap();
    assert!(seen.diff(&a).iter().any(|d| d.name() == "audit.log.id"));
}

const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', sku TEXT UNIQUE)",
    "CREATE INDEX items_name_idx ON items (name)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, item INTEGER REFERENCES items (id) ON DELETE CASCADE)",
    "CREATE VIEW named AS SELECT id, name FROM items",
    "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY)",
];

async fn sqlite_with(statements: &[&str]) -> (TempSqlite, DatabaseTarget) {
    let file = TempSqlite::new();
    let mut conn = sqlx::SqliteConnection::connect(&file.url()).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let target = file.target().unwrap();
    (file, target)
}

#[tokio::test]
async fn sqlite_fingerprints_ignore_order_and_name_each_drift() {
    let (_a, reference) = sqlite_with(SQLITE_SCHEMA).await;
    let mut reordered = SQLITE_SCHEMA.to_vec();
    reordered.reverse();
    reordered.swap(3, 4); // items before its index
    let (_b, same) = sqlite_with(&reordered).await;
    assert!(differences(&reference, &same).await.is_empty());

    let hotfix = [SQLITE_SCHEMA, &["ALTER TABLE items ADD COLUMN note TEXT"]].concat();
    let (_c, added) = sqlite_with(&hotfix).await;
    let found = differences(&reference, &added).await;
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["column main.items.note added: text"]
    );

    let incident = [SQLITE_SCHEMA, &["DROP INDEX items_name_idx"]].concat();
    let (_d, dropped) = sqlite_with(&incident).await;
    let found = differences(&reference, &dropped).await;
    assert_eq!(
        found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["index main.items_name_idx missing"]
    );
}
