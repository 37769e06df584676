//! Schema fingerprints on real PostgreSQL and SQLite: equal schemas hash equal
//! whatever order they were built in, and each kind of drift is reported as the
//! one difference it is.

use sqlx::Connection;
use tenancy_core::testing::{TempSqlite, TestDatabase};
use tenancy_core::DatabaseTarget;
use tenant_migrate::fingerprint::{
    read_digest, read_schema, ObjectKind, SchemaDifference, SchemaScope,
};
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

/// The base schema of the digest test: [`PG_SCHEMA`], a trigger function, a
/// foreign key to a table outside the compared schemas, a generated column (whose
/// expression reads another column) and a check constraint.
const PG_DIGEST_BASE: &[&str] = &[
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
    "CREATE SCHEMA audit",
    "CREATE TABLE audit.ref (id int PRIMARY KEY, code int UNIQUE)",
    "ALTER TABLE orders ADD COLUMN ref int REFERENCES audit.ref (code)",
    "ALTER TABLE items ADD COLUMN twice bigint GENERATED ALWAYS AS (id * 2) STORED",
    "ALTER TABLE orders ADD CONSTRAINT orders_ref_positive CHECK (ref > 0)",
];

/// Each change by hand, and whether the compared schema changes with it.
const PG_CHANGES: &[(&str, &[&str], bool)] = &[
    ("table added", &["CREATE TABLE extra (id int)"], true),
    ("column added", &["ALTER TABLE items ADD COLUMN note text"], true),
    ("column retyped", &["ALTER TABLE items ALTER COLUMN qty TYPE bigint"], true),
    ("column renamed", &["ALTER TABLE items RENAME COLUMN qty TO quantity"], true),
    ("default changed", &["ALTER TABLE items ALTER COLUMN name SET DEFAULT 'x'"], true),
    ("made not null", &["ALTER TABLE items ALTER COLUMN qty SET NOT NULL"], true),
    ("check added", &["ALTER TABLE items ADD CONSTRAINT qty_positive CHECK (qty > 0)"], true),
    (
        "check changed",
        &[
            "ALTER TABLE orders DROP CONSTRAINT orders_ref_positive",
            "ALTER TABLE orders ADD CONSTRAINT orders_ref_positive CHECK (ref > 1)",
        ],
        true,
    ),
    (
        "generated column changed",
        &[
            "ALTER TABLE items DROP COLUMN twice",
            "ALTER TABLE items ADD COLUMN twice bigint GENERATED ALWAYS AS (id * 3) STORED",
        ],
        true,
    ),
    (
        "function result changed",
        &[
            "DROP FUNCTION total()",
            "CREATE FUNCTION total() RETURNS integer LANGUAGE sql AS 'SELECT count(*) FROM items'",
        ],
        true,
    ),
    (
        "foreign key action changed",
        &[
            "ALTER TABLE orders DROP CONSTRAINT orders_item_fkey",
            "ALTER TABLE orders ADD CONSTRAINT orders_item_fkey FOREIGN KEY (item) REFERENCES items (id)",
        ],
        true,
    ),
    (
        "referenced column renamed outside the scope",
        &["ALTER TABLE audit.ref RENAME COLUMN code TO ref_code"],
        true,
    ),
    ("index dropped", &["DROP INDEX items_name_idx"], true),
    (
        "index reversed",
        &["DROP INDEX items_name_idx", "CREATE INDEX items_name_idx ON items (name DESC)"],
        true,
    ),
    (
        "index made unique",
        &["DROP INDEX items_name_idx", "CREATE UNIQUE INDEX items_name_idx ON items (name)"],
        true,
    ),
    (
        "index made partial",
        &["DROP INDEX items_name_idx", "CREATE INDEX items_name_idx ON items (name) WHERE qty > 0"],
        true,
    ),
    (
        "view changed",
        &["CREATE OR REPLACE VIEW open_items AS SELECT id, name FROM items WHERE st = 'closed'"],
        true,
    ),
    (
        "function body changed",
        &["CREATE OR REPLACE FUNCTION total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) + 1 FROM items'"],
        true,
    ),
    (
        "function overload added",
        &["CREATE FUNCTION total(x int) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint'"],
        true,
    ),
    ("sequence changed", &["ALTER SEQUENCE items_id_seq INCREMENT BY 2"], true),
    ("enum label added", &["ALTER TYPE state ADD VALUE 'archived'"], true),
    (
        "trigger added",
        &["CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch()"],
        true,
    ),
    ("history table changed", &["ALTER TABLE _sqlx_migrations ADD COLUMN note text"], false),
    ("table added outside the scope", &["CREATE TABLE audit.log (id int)"], false),
    ("rows written", &["INSERT INTO items (name, qty) VALUES ('a', 1)"], false),
    (
        "default written otherwise",
        &["ALTER TABLE items ALTER COLUMN name SET DEFAULT ''::text"],
        false,
    ),
];

#[tokio::test]
async fn postgres_digests_change_exactly_with_the_schema() {
    let scope = SchemaScope::default();
    let options = MigrateOptions::default();
    let base = [PG_SCHEMA, PG_DIGEST_BASE].concat();
    let (_a, reference) = postgres_with(&base).await;
    let digest = read_digest(&reference, &scope, &options).await.unwrap();
    let snapshot = read_schema(&reference, &scope, &options).await.unwrap();

    // Another database built alike, in another order: other identifiers, same digest.
    let mut reordered = base.clone();
    reordered.swap(5, 6);
    reordered.swap(2, 3);
    let (_b, same) = postgres_with(&reordered).await;
    assert_eq!(read_digest(&same, &scope, &options).await.unwrap(), digest);

    for (change, statements, changes) in PG_CHANGES {
        let (_db, target) = postgres_with(&[base.as_slice(), statements].concat()).await;
        let found = read_schema(&target, &scope, &options).await.unwrap();
        let found_digest = read_digest(&target, &scope, &options).await.unwrap();
        assert_eq!(
            found != snapshot,
            *changes,
            "{change}: {:?}",
            found.diff(&snapshot)
        );
        assert_eq!(found_digest != digest, *changes, "{change}: digest");
    }
}

/// A compared schema whose name the server quotes (`"Billing Ops"`), with a table, a
/// function and an enum type in it.
const PG_QUOTED_SCHEMA: &[&str] = &[
    "CREATE SCHEMA \"Billing Ops\"",
    "CREATE TABLE \"Billing Ops\".invoices (id int PRIMARY KEY, total numeric DEFAULT 0)",
    "CREATE FUNCTION \"Billing Ops\".due() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE TYPE \"Billing Ops\".state AS ENUM ('open', 'paid')",
];

#[tokio::test]
async fn postgres_digests_cover_schemas_whose_names_are_quoted() {
    let options = MigrateOptions::default();
    let scope = SchemaScope::default().schemas(["public", "Billing Ops"]);
    let base = [PG_SCHEMA, PG_QUOTED_SCHEMA].concat();
    let (_a, reference) = postgres_with(&base).await;
    let digest = read_digest(&reference, &scope, &options).await.unwrap();
    let public_only = read_digest(&reference, &SchemaScope::default(), &options)
        .await
        .unwrap();
    assert_ne!(digest, public_only);

    for change in [
        "ALTER TABLE \"Billing Ops\".invoices ADD COLUMN note text",
        "ALTER TABLE \"Billing Ops\".invoices ALTER COLUMN total SET DEFAULT 1",
        "CREATE OR REPLACE FUNCTION \"Billing Ops\".due() RETURNS int LANGUAGE sql AS 'SELECT 2'",
        "ALTER TYPE \"Billing Ops\".state ADD VALUE 'void'",
    ] {
        let (_db, target) = postgres_with(&[base.as_slice(), &[change]].concat()).await;
        let found = read_digest(&target, &scope, &options).await.unwrap();
        assert_ne!(found, digest, "{change}");
        let found = read_digest(&target, &SchemaScope::default(), &options)
            .await
            .unwrap();
        assert_eq!(found, public_only, "{change}: outside the default scope");
    }
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
