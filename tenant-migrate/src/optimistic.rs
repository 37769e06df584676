//! Applying in one request on PostgreSQL, and the mark a rollout leaves on the
//! history table.
//!
//! A fleet rollout usually knows what version a tenant is at: the one the
//! tenants before it started from. It then sends one request that takes the
//! migration lock for the transaction, checks that the history is exactly the
//! clean history of that version (every migration up to it, applied, with its
//! checksum), applies the next migration, records it and commits. When the
//! check fails nothing has changed and the rollout takes the locked path.
//!
//! A rollout records the version a tenant starts from before changing it. When
//! that version was a guess and the runner died with the request unanswered, the
//! next runner must tell "the request committed" from "the tenant was elsewhere":
//! every migration a rollout commits also sets the comment of `_sqlx_migrations`
//! to the rollout's mark, in the same transaction.

use sha2::{Digest, Sha256};

use crate::postgres::quote_text;
use crate::MigrationSet;

/// SQLSTATEs with which the guard refuses, nothing having changed:
/// `22012` (its division by zero) when another migrator holds the lock or the
/// history is not the expected one, `42P01` when there is no history table,
/// `42501` when the role does not own it (the mark could not be written).
///
/// The step's own SQL may fail with the same codes; it is then taken for a
/// refusal, and the locked path runs the step again and reports its error.
pub(crate) const REFUSALS: [&str; 3] = ["22012", "42P01", "42501"];

/// The digest of the history a database at `version` has when every migration
/// of `set` up to it was applied cleanly, as [`guard_sql`] computes it from the
/// table: SHA-256 of each row's version (8 bytes, big-endian) and checksum, in
/// version order.
pub(crate) fn expected_history_digest(set: &MigrationSet, version: i64) -> String {
    let mut digest = Sha256::new();
    for migration in set.iter().filter(|m| m.version() <= version) {
        digest.update(migration.version().to_be_bytes());
        digest.update(migration.checksum());
    }
    hex::encode(digest.finalize())
}

/// Takes the migration lock `key` for the transaction, marks the history table
/// when a `mark` is given (which fails unless the role owns it), and refuses
/// unless every history row succeeded and the rows' digest is `digest`.
///
/// Plain statements, no PL/pgSQL: on a connection's first request the server
/// would load and compile the language, costing about as much as the
/// migration itself. Each statement reads anew under `READ COMMITTED`, so the
/// history is read after the lock is held. A refusal is one of [`REFUSALS`].
pub(crate) fn guard_sql(key: i64, digest: &str, mark: Option<&str>) -> String {
    let mark = mark
        .map(|mark| format!("{};\n", mark_sql(mark)))
        .unwrap_or_default();
    format!(
        "SELECT 1 / pg_try_advisory_xact_lock({key})::int;\n{mark}\
         SELECT 1 / ((bool_and(success) AND sha256(string_agg(int8send(version) || checksum, \
         ''::bytea ORDER BY version)) = E'\\\\x{digest}'::bytea) IS TRUE)::int FROM _sqlx_migrations"
    )
}

/// Sets the history table's comment to `mark` (fails unless the role owns the table).
pub(crate) fn mark_sql(mark: &str) -> String {
    format!("COMMENT ON TABLE _sqlx_migrations IS {}", quote_text(mark))
}

/// [`mark_sql`], skipped where the role does not own the history table (such a
/// database never has a guessed start: [`READ_MARK`] reads "cannot tell").
pub(crate) fn mark_if_owner_sql(mark: &str) -> String {
    format!(
        "DO $tenancy_mark$ BEGIN {}; EXCEPTION WHEN insufficient_privilege THEN NULL; END $tenancy_mark$",
        mark_sql(mark)
    )
}

/// The history table's comment and whether the role owns the table; no row
/// when there is no history table.
pub(crate) const READ_MARK: &str = "SELECT obj_description(c.oid, 'pg_class'), \
     pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass('_sqlx_migrations')";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_the_history_up_to_the_version() {
        let set = MigrationSet::builder()
            .file("1_a.sql", "SELECT 1;")
            .file("2_b.sql", "SELECT 2;")
            .build()
            .unwrap();
        let one = expected_history_digest(&set, 1);
        assert_ne!(one, expected_history_digest(&set, 2));
        let mut row = 1_i64.to_be_bytes().to_vec();
        row.extend_from_slice(set.get(1).unwrap().checksum());
        assert_eq!(one, hex::encode(Sha256::digest(&row)));
    }

    #[test]
    fn marks_are_quoted() {
        assert_eq!(
            mark_sql("it's"),
            "COMMENT ON TABLE _sqlx_migrations IS E'it''s'"
        );
    }
}
