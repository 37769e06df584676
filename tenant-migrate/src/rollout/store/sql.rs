//! The SQL of both state stores, written once: the engines differ only in how they
//! store time, cast integers, aggregate booleans and lock claimed rows.

use std::sync::LazyLock;

use super::rows::allowed_sources;
use super::{RolloutPhase, RolloutStatus};

/// What differs between the engines' SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// The current time, as the timestamp columns hold it.
    now: &'static str,
    /// The time `{param}` seconds from now.
    from_now: fn(&str) -> String,
    /// A timestamp expression as Unix milliseconds (`BIGINT`).
    millis: fn(&str) -> String,
    /// An integer expression as `BIGINT`.
    int8: fn(&str) -> String,
    /// A JSON expression as text.
    text: fn(&str) -> String,
    /// Whether a boolean expression holds for any row (an aggregate).
    any: fn(&str) -> String,
    /// How a claim locks the rows it picks.
    skip_locked: &'static str,
    /// How `resume` locks the rollout row.
    for_update: &'static str,
    /// The strings of a JSON array parameter as a one-column subquery.
    json_texts: fn(&str) -> String,
}

/// PostgreSQL: `TIMESTAMPTZ` columns, row locks that other runners skip.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    now: "now()",
    from_now: |secs| format!("now() + make_interval(secs => {secs})"),
    millis: |column| format!("(extract(epoch FROM {column}) * 1000)::int8"),
    int8: |column| format!("{column}::int8"),
    text: |column| format!("{column}::text"),
    any: |expression| format!("bool_or({expression})"),
    skip_locked: "FOR UPDATE SKIP LOCKED",
    for_update: "FOR UPDATE",
    json_texts: |param| format!("SELECT jsonb_array_elements_text({param}::jsonb)"),
};

/// SQLite: Unix milliseconds in `INTEGER` columns; a claim holds the database's
/// write lock (a writing statement takes it before it reads) instead of row locks.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect {
    now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    from_now: |secs| format!("CAST((unixepoch('subsec') + {secs}) * 1000 AS INTEGER)"),
    millis: |column| column.to_owned(),
    int8: |column| column.to_owned(),
    text: |column| column.to_owned(),
    any: |expression| format!("max({expression})"),
    skip_locked: "",
    for_update: "",
    json_texts: |param| format!("SELECT value FROM json_each({param})"),
};

/// Every statement of a store, built once from its dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    dialect: Dialect,
    pub(crate) record: String,
    pub(crate) find: String,
    pub(crate) status_for_update: String,
    pub(crate) busy: String,
    pub(crate) retry_failed: &'static str,
    pub(crate) reactivate: String,
    pub(crate) claim_forward: String,
    pub(crate) claim_revert: String,
    pub(crate) record_start: String,
    pub(crate) record_outcome: String,
    pub(crate) renew: String,
    pub(crate) progress: String,
    pub(crate) tenants: String,
    pub(crate) tenant_rows: String,
    pub(crate) tenants_in_state: String,
    pub(crate) version_counts: &'static str,
    pub(crate) rollback_floor: String,
    pub(crate) holders: String,
    pub(crate) last_position: String,
    pub(crate) reopen: String,
}

#[cfg(feature = "postgres")]
pub(crate) static POSTGRES_STATEMENTS: LazyLock<Statements> =
    LazyLock::new(|| Statements::new(POSTGRES));
#[cfg(feature = "sqlite")]
pub(crate) static SQLITE_STATEMENTS: LazyLock<Statements> =
    LazyLock::new(|| Statements::new(SQLITE));

/// The columns a [`TenantRow`](super::rows::TenantRow) is read from.
fn tenant_columns(d: &Dialect) -> String {
    format!(
        "{}, tenant_id, {}, status, {}, from_version, to_version, error, {}, {}",
        (d.int8)("position"),
        (d.int8)("wave"),
        (d.int8)("attempts"),
        (d.millis)("started_at"),
        (d.millis)("finished_at")
    )
}

/// The columns a [`RecordRow`](super::rows::RecordRow) is read from.
fn record_columns(d: &Dialect) -> String {
    format!(
        "id, target_version, set_checksum, {}, status, halted_reason, tenant_count, {}",
        (d.text)("strategy"),
        (d.millis)("created_at")
    )
}

impl Statements {
    fn new(d: Dialect) -> Self {
        let columns = record_columns(&d);
        let tenant_columns = tenant_columns(&d);
        let now = d.now;
        Self {
            record: format!("SELECT {columns} FROM tenancy_rollouts WHERE id = $1"),
            find: format!(
                "SELECT {columns} FROM tenancy_rollouts
                  WHERE target_version = $1 AND set_checksum = $2
                    AND (NOT $3 OR status IN ('active', 'halted', 'rolling_back'))
                  ORDER BY id DESC LIMIT 1"
            ),
            status_for_update: format!(
                "SELECT status FROM tenancy_rollouts WHERE id = $1 {}",
                d.for_update
            ),
            busy: format!(
                "SELECT EXISTS (SELECT 1 FROM tenancy_rollout_tenants WHERE rollout_id = $1
                   AND (status = 'pending' OR (status = 'running' AND lease_expires_at > {now})))"
            ),
            retry_failed: "UPDATE tenancy_rollout_tenants SET status = 'pending'
                            WHERE rollout_id = $1 AND status = 'failed'",
            reactivate: format!(
                "UPDATE tenancy_rollouts SET status = 'active', halted_reason = NULL, updated_at = {now}
                  WHERE id = $1"
            ),
            claim_forward: claim(&d, RolloutPhase::Forward),
            claim_revert: claim(&d, RolloutPhase::Revert),
            record_start: format!(
                "UPDATE tenancy_rollout_tenants SET started_at = {now}, from_version = $4
                  WHERE rollout_id = $1 AND tenant_id = $2 AND lease_owner = $3 AND status = 'running'"
            ),
            record_outcome: format!(
                "UPDATE tenancy_rollout_tenants
                    SET status = $4, error = $7, finished_at = {now},
                        to_version = CASE WHEN $8 THEN $5 ELSE to_version END,
                        migrated = CASE WHEN $8 THEN $6 ELSE migrated END,
                        lease_owner = NULL, lease_expires_at = NULL
                  WHERE rollout_id = $1 AND tenant_id = $2 AND lease_owner = $3 AND status = 'running'"
            ),
            renew: format!(
                "UPDATE tenancy_rollout_tenants SET lease_expires_at = {}
                  WHERE rollout_id = $1 AND lease_owner = $2 AND status = 'running'",
                (d.from_now)("$3")
            ),
            progress: format!(
                "SELECT {}, status, count(*), {}
                   FROM tenancy_rollout_tenants WHERE rollout_id = $1
                  GROUP BY wave, status ORDER BY wave",
                (d.int8)("wave"),
                (d.millis)("max(finished_at)")
            ),
            tenants: format!(
                "SELECT {tenant_columns} FROM tenancy_rollout_tenants
                  WHERE rollout_id = $1 AND position > $2
                  ORDER BY position LIMIT $3"
            ),
            // `$2`: a JSON array of tenant ids; each is a primary-key look-up.
            tenant_rows: format!(
                "SELECT {tenant_columns} FROM tenancy_rollout_tenants
                  WHERE rollout_id = $1 AND tenant_id IN ({})
                  ORDER BY position",
                (d.json_texts)("$2")
            ),
            // Walks the claim index (rollout, status, wave, position).
            tenants_in_state: format!(
                "SELECT {tenant_columns} FROM tenancy_rollout_tenants
                  WHERE rollout_id = $1 AND status = $2
                  ORDER BY position LIMIT $3"
            ),
            version_counts: "SELECT COALESCE(to_version, from_version) AS version, count(*)
                               FROM tenancy_rollout_tenants WHERE rollout_id = $1
                              GROUP BY version ORDER BY version NULLS FIRST",
            rollback_floor: format!(
                "SELECT {}, {}, min(CASE WHEN migrated THEN from_version END)
                   FROM tenancy_rollout_tenants WHERE rollout_id = $1",
                (d.any)("migrated"),
                (d.any)("migrated AND from_version IS NULL")
            ),
            // Every rollout's rows: what any of them recorded (or has in flight)
            // at version `$1` or later.
            holders: format!(
                "SELECT t.tenant_id, max(COALESCE(t.to_version, t.from_version)), {}
                   FROM tenancy_rollout_tenants t JOIN tenancy_rollouts r ON r.id = t.rollout_id
                  WHERE COALESCE(t.to_version, t.from_version) >= $1
                     OR (t.status = 'running' AND r.target_version >= $1)
                  GROUP BY t.tenant_id ORDER BY t.tenant_id LIMIT $2",
                (d.any)("t.status = 'running' AND r.target_version >= $1")
            ),
            last_position: format!(
                "SELECT {} FROM tenancy_rollout_tenants WHERE rollout_id = $1",
                (d.int8)("COALESCE(MAX(position), -1)")
            ),
            reopen: format!(
                "UPDATE tenancy_rollouts
                    SET tenant_count = tenant_count + $2, updated_at = {now},
                        status = CASE WHEN status = 'completed' THEN 'active' ELSE status END
                  WHERE id = $1"
            ),
            dialect: d,
        }
    }

    /// The claim statement of a phase.
    pub(crate) fn claim(&self, phase: RolloutPhase) -> &str {
        match phase {
            RolloutPhase::Forward => &self.claim_forward,
            RolloutPhase::Revert => &self.claim_revert,
        }
    }

    /// Moves a rollout to `to` if it is in a status that may lead there; entering
    /// `rolling_back` starts a new rollback pass.
    pub(crate) fn set_status(&self, to: RolloutStatus) -> String {
        let now = self.dialect.now;
        let sources: Vec<String> = allowed_sources(to)
            .iter()
            .map(|s| format!("'{s}'"))
            .collect();
        format!(
            "UPDATE tenancy_rollouts
                SET status = $2, halted_reason = $3, updated_at = {now},
                    phase_started_at = CASE WHEN $2 = 'rolling_back' THEN {now} ELSE phase_started_at END
              WHERE id = $1 AND status IN ({})",
            sources.join(", ")
        )
    }
}

/// Claims up to `$4` tenants of waves up to `$3` for owner `$2`, leased for `$5`
/// seconds, while the rollout has status `$6`: pending tenants (forward) or those the
/// rollout migrated and has not tried to revert in this pass (revert; a pending one
/// that migrated before a retry included), plus any whose lease expired.
fn claim(d: &Dialect, phase: RolloutPhase) -> String {
    let expired = format!("lease_expires_at < {}", d.now);
    let branches: Vec<(&str, &str)> = match phase {
        RolloutPhase::Forward => vec![("pending", "TRUE"), ("running", expired.as_str())],
        RolloutPhase::Revert => vec![
            ("succeeded", "migrated"),
            // Failed after migrating some, then set back to pending by a resume.
            ("pending", "migrated"),
            (
                "failed",
                "migrated AND finished_at < \
                 (SELECT phase_started_at FROM tenancy_rollouts WHERE id = $1)",
            ),
            ("running", expired.as_str()),
        ],
    };
    // One branch per status, each walking the claim index from its first row in
    // rollout order: a claim costs the same at the end of a rollout as at its start.
    let ctes: Vec<String> = branches
        .iter()
        .enumerate()
        .map(|(i, (status, condition))| {
            format!(
                "b{i} AS (SELECT tenant_id, wave, position FROM tenancy_rollout_tenants
                  WHERE rollout_id = $1 AND status = '{status}' AND wave <= $3 AND ({condition})
                  ORDER BY wave, position LIMIT $4 {skip_locked})",
                skip_locked = d.skip_locked
            )
        })
        .collect();
    let union: Vec<String> = (0..branches.len())
        .map(|i| format!("SELECT * FROM b{i}"))
        .collect();
    format!(
        "WITH {ctes},
              picked AS (SELECT tenant_id FROM ({union}) AS candidates
                          ORDER BY wave, position LIMIT $4)
        UPDATE tenancy_rollout_tenants
           SET status = 'running', lease_owner = $2, attempts = attempts + 1,
               lease_expires_at = {lease}
         WHERE rollout_id = $1 AND tenant_id IN (SELECT tenant_id FROM picked)
           AND EXISTS (SELECT 1 FROM tenancy_rollouts WHERE id = $1 AND status = $6)
     RETURNING tenant_id, {wave}, {attempts}, started_at IS NOT NULL, from_version",
        ctes = ctes.join(",\n"),
        union = union.join(" UNION ALL "),
        lease = (d.from_now)("$5"),
        wave = (d.int8)("wave"),
        attempts = (d.int8)("attempts"),
    )
}

/// The status a claim needs the rollout to have.
pub(crate) fn claim_status(phase: RolloutPhase) -> &'static str {
    match phase {
        RolloutPhase::Forward => "active",
        RolloutPhase::Revert => "rolling_back",
    }
}
