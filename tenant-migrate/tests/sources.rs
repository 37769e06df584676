//! Loading migration sets: a directory, embedded files, ad-hoc pairs.

mod support;

use support::*;
use tenant_migrate::{embedded_migrations, MigrationSet, MigrationSourceError};

#[test]
fn loads_a_sqlx_directory_and_ignores_other_files() {
    let set = fixture_set();
    let versions: Vec<_> = set.iter().map(|m| m.version()).collect();
    assert_eq!(versions, FIXTURE_VERSIONS);
    let index = set.get(FIXTURE_VERSIONS[2]).unwrap();
    assert_eq!(index.description(), "index item names");
    assert_eq!(index.file(), "20240103000000_index_item_names.up.sql");
    assert_eq!(
        index.down_file(),
        Some("20240103000000_index_item_names.down.sql")
    );
    assert!(index.no_tx() && index.down_no_tx());
    assert!(set.iter().all(|m| m.is_reversible()));
}

#[test]
fn embedded_files_equal_the_directory() {
    let embedded = embedded_migrations!(
        "tests/fixtures/migrations",
        [
            "20240101000000_create_items.up.sql",
            "20240101000000_create_items.down.sql",
            "20240102000000_add_price.up.sql",
            "20240102000000_add_price.down.sql",
            "20240103000000_index_item_names.up.sql",
            "20240103000000_index_item_names.down.sql",
        ]
    )
    .unwrap();
    assert_eq!(embedded, fixture_set());
    assert_eq!(embedded.fingerprint(), fixture_set().fingerprint());
}

#[test]
fn adhoc_pairs_as_the_admin_api_sends_them() {
    let set = MigrationSet::builder()
        .adhoc(
            "20240127_add_new_field",
            "ALTER TABLE items ADD COLUMN IF NOT EXISTS new_field VARCHAR(255);",
        )
        .build()
        .unwrap();
    let migration = set.get(20240127).unwrap();
    assert_eq!(
        (migration.description(), migration.file()),
        ("add new field", "20240127_add_new_field")
    );

    let bad = MigrationSet::builder()
        .adhoc("add_new_field", "SELECT 1")
        .build()
        .unwrap_err();
    assert!(matches!(bad, MigrationSourceError::InvalidName { .. }));
    assert!(bad.to_string().contains("add_new_field"));
}

#[test]
fn a_missing_directory_is_a_typed_error() {
    let error = MigrationSet::from_dir(fixture_dir().join("does-not-exist")).unwrap_err();
    assert!(matches!(error, MigrationSourceError::Io { .. }), "{error}");
    assert!(error.to_string().contains("does-not-exist"));
}
