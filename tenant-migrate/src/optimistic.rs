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

/// SQLSTATE the guard raises when another migrator holds the lock.
pub(crate) const LOCK_HELD: &str = "TKLCK";
/// SQLSTATE the guard raises when the history is not the expected one.
pub(crate) const HISTORY_DIFFERS: &str = "TKHIS";

/// The digest of the history a database at `version` has when every migration
/// of `set` up to it was applied cleanly, as [`guard_sql`] computes it from the
/// table: `version:true:checksum` rows, in version order, joined by commas.
pub(crate) fn expected_history_digest(set: &MigrationSet, version: i64) -> String {
    let rows: Vec<String> = set
        .iter()
        .filter(|m| m.version() <= version)
        .map(|m| format!("{}:true:{}", m.version(), hex::encode(m.checksum())))
        .collect();
    hex::encode(Sha256::digest(rows.join(",").as_bytes()))
}

/// Takes the migration lock `key` for the transaction and refuses, with
/// [`LOCK_HELD`] or [`HISTORY_DIFFERS`], unless the history's digest is
/// `digest` and the session's role owns the history table (it must, to mark
/// it). Each check is its own query: under `READ COMMITTED` the history is read
/// after the lock is held.
pub(crate) fn guard_sql(key: i64, digest: &str) -> String {
    format!(
        "DO $tenancy_guard$ BEGIN
  IF NOT pg_try_advisory_xact_lock({key}) THEN
    RAISE EXCEPTION 'another migrator holds the migration lock' USING ERRCODE = '{LOCK_HELD}';
  END IF;
  IF to_regclass('_sqlx_migrations') IS NULL OR NOT pg_has_role(
       (SELECT relowner FROM pg_class WHERE oid = to_regclass('_sqlx_migrations')), 'USAGE') THEN
    RAISE EXCEPTION 'the migration history is not the expected one' USING ERRCODE = '{HISTORY_DIFFERS}';
  END IF;
  IF (SELECT encode(sha256(convert_to(coalesce(string_agg(
          version::text || ':' || success::text || ':' || encode(checksum, 'hex'), ','
          ORDER BY version), ''), 'UTF8')), 'hex') FROM _sqlx_migrations) IS DISTINCT FROM '{digest}' THEN
    RAISE EXCEPTION 'the migration history is not the expected one' USING ERRCODE = '{HISTORY_DIFFERS}';
  END IF;
END $tenancy_guard$"
    )
}

/// Sets the history table's comment to `mark` (the guard made sure the role owns it).
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
        let text = format!("1:true:{}", hex::encode(set.get(1).unwrap().checksum()));
        assert_eq!(one, hex::encode(Sha256::digest(text.as_bytes())));
    }

    #[test]
    fn marks_are_quoted() {
        assert_eq!(
            mark_sql("it's"),
            "COMMENT ON TABLE _sqlx_migrations IS E'it''s'"
        );
    }
}
