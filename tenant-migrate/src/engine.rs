//! The migration algorithm, shared by every backend: read the history, refuse an
//! unsafe one, lock and read again, run what is needed, unlock.

use std::time::Duration;

use crate::backend::{Backend, Direction, Step};
use crate::history::HistorySnapshot;
use crate::{
    MigrateError, MigrateOptions, Migration, MigrationOutcome, MigrationSet, MigrationStatus,
    MigrationStep,
};

/// The status of the database: one query.
pub(crate) async fn status(
    backend: &mut dyn Backend,
    set: &MigrationSet,
) -> Result<MigrationStatus, MigrateError> {
    Ok(read(backend, set).await?.0)
}

/// The status, and whether the history table exists.
async fn read(
    backend: &mut dyn Backend,
    set: &MigrationSet,
) -> Result<(MigrationStatus, bool), MigrateError> {
    Ok(evaluate(set, &backend.read_history().await?))
}

/// The status a history gives, and whether its table exists.
fn evaluate(set: &MigrationSet, history: &HistorySnapshot) -> (MigrationStatus, bool) {
    (MigrationStatus::compute(set, history), history.table_exists)
}

/// What the caller already read on this connection, before an operation.
#[derive(Debug, Clone, Default)]
pub(crate) enum Prior {
    /// Nothing: the operation reads for itself.
    #[default]
    Nothing,
    /// A status read without the lock: when it shows work to do, the check
    /// before taking the lock is skipped (the history is read again under the
    /// lock in any case, so a stale one costs nothing).
    Read(MigrationStatus),
    /// The history read under the lock this connection still holds: no other
    /// migrator can have changed it, so the operation neither locks nor reads.
    /// Only for a backend whose lock is real ([`Backend::holds_lock`]).
    Locked(HistorySnapshot),
}

/// Takes the lock and reads the history under it: the status cannot change
/// until the lock is released (by the next apply or revert, or by closing). On
/// failure the lock is released.
///
/// Refuses a pending version below the latest applied one
/// ([`MigrateError::PendingBelowApplied`]): a caller that reads the version
/// before applying (a rollout) would take a database at or past its target for
/// done and pass over it.
pub(crate) async fn lock_status(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
) -> Result<(MigrationStatus, HistorySnapshot), MigrateError> {
    match backend.lock_and_read(options).await {
        Ok(history) => {
            let status = evaluate(set, &history).0;
            match status.pending_below_problem(set) {
                Some(problem) => release(backend, Err(problem)).await,
                None => Ok((status, history)),
            }
        }
        Err(error) => release(backend, Err(error)).await,
    }
}

/// Applies every pending migration up to `until` (`None`: all of them). An
/// up-to-date database costs one query.
pub(crate) async fn apply(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    until: Option<i64>,
    prior: Prior,
) -> Result<MigrationOutcome, MigrateError> {
    let held = match prior {
        Prior::Locked(history) => Some(history),
        Prior::Read(known) if has_work(plan_apply(&known, set, options, until)) => None,
        Prior::Read(_) | Prior::Nothing => {
            let (from, plan) = plan_apply(&status(backend, set).await?, set, options, until)?;
            if plan.is_empty() {
                return Ok(MigrationOutcome::unchanged(from));
            }
            None
        }
    };
    let result = match locked_history(backend, options, held).await {
        Ok(history) => apply_locked(backend, set, options, until, &history).await,
        Err(error) => Err(error),
    };
    release(backend, result).await
}

/// Applies the one migration above `expected` (up to `until`) in one request,
/// when the backend can and the database's history is exactly the clean history
/// of `expected`; `Ok(None)` otherwise, with nothing changed.
pub(crate) async fn apply_if_at(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    expected: i64,
    until: i64,
) -> Result<Option<MigrationOutcome>, MigrateError> {
    let Some(migration) = one_request_step(&*backend, set, expected, until) else {
        return Ok(None);
    };
    let step = Step {
        migration,
        direction: Direction::Up,
        last: true,
    };
    let Some(elapsed) = backend.run_guarded(step, options, set, expected).await? else {
        return Ok(None);
    };
    Ok(Some(MigrationOutcome {
        from_version: Some(expected),
        to_version: Some(migration.version()),
        steps: vec![step_done(migration, Direction::Up, elapsed)],
    }))
}

/// The migration [`apply_if_at`] runs: the only one above `expected` up to
/// `until`, in a transaction, on a backend that can and holds no lock.
pub(crate) fn one_request_step<'s>(
    backend: &dyn Backend,
    set: &'s MigrationSet,
    expected: i64,
    until: i64,
) -> Option<&'s Migration> {
    if !backend.applies_in_one_request() || backend.holds_lock() || set.get(expected).is_none() {
        return None;
    }
    let mut plan = set
        .iter()
        .filter(|m| m.version() > expected && m.version() <= until);
    match (plan.next(), plan.next()) {
        (Some(migration), None) if !migration.no_tx() => Some(migration),
        _ => None,
    }
}

fn has_work(plan: Result<(Option<i64>, Vec<&Migration>), MigrateError>) -> bool {
    plan.is_ok_and(|(_, plan)| !plan.is_empty())
}

/// The history under the lock: `held` if the connection holds it already.
async fn locked_history(
    backend: &mut dyn Backend,
    options: &MigrateOptions,
    held: Option<HistorySnapshot>,
) -> Result<HistorySnapshot, MigrateError> {
    match held {
        Some(history) => Ok(history),
        None => backend.lock_and_read(options).await,
    }
}

/// Reverts, newest first, every applied migration above `to_version`.
pub(crate) async fn revert(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    to_version: i64,
    prior: Prior,
) -> Result<MigrationOutcome, MigrateError> {
    let held = match prior {
        Prior::Locked(history) => Some(history),
        Prior::Read(_) | Prior::Nothing => {
            let status = status(backend, set).await?;
            let (from, plan) = plan_revert(&status, set, options, to_version)?;
            if plan.is_empty() {
                return Ok(MigrationOutcome::unchanged(from));
            }
            None
        }
    };
    let result = match locked_history(backend, options, held).await {
        Ok(history) => revert_locked(backend, set, options, to_version, &history).await,
        Err(error) => Err(error),
    };
    release(backend, result).await
}

async fn apply_locked(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    until: Option<i64>,
    history: &HistorySnapshot,
) -> Result<MigrationOutcome, MigrateError> {
    // Read under the lock: another migrator may have finished while we waited.
    let (status, table_exists) = evaluate(set, history);
    let (from, plan) = plan_apply(&status, set, options, until)?;
    if !table_exists && !plan.is_empty() {
        backend.ensure_history_table().await?;
    }
    let steps = run_steps(backend, options, &plan, Direction::Up).await?;
    let to = steps.iter().map(|s| s.version).chain(from).max();
    Ok(MigrationOutcome {
        from_version: from,
        to_version: to,
        steps,
    })
}

async fn revert_locked(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    to_version: i64,
    history: &HistorySnapshot,
) -> Result<MigrationOutcome, MigrateError> {
    let (status, _) = evaluate(set, history);
    let (from, plan) = plan_revert(&status, set, options, to_version)?;
    let steps = run_steps(backend, options, &plan, Direction::Down).await?;
    let to = status
        .applied
        .iter()
        .copied()
        .filter(|v| *v <= to_version)
        .max();
    Ok(MigrationOutcome {
        from_version: from,
        to_version: to,
        steps,
    })
}

async fn run_steps(
    backend: &mut dyn Backend,
    options: &MigrateOptions,
    plan: &[&Migration],
    direction: Direction,
) -> Result<Vec<MigrationStep>, MigrateError> {
    let mut steps = Vec::with_capacity(plan.len());
    for (index, migration) in plan.iter().enumerate() {
        let step = Step {
            migration,
            direction,
            last: index + 1 == plan.len(),
        };
        let elapsed = backend.run(step, options).await?;
        steps.push(step_done(migration, direction, elapsed));
    }
    Ok(steps)
}

fn step_done(migration: &Migration, direction: Direction, elapsed: Duration) -> MigrationStep {
    tracing::info!(
        version = migration.version(),
        ?direction,
        ?elapsed,
        "migration step done"
    );
    MigrationStep {
        version: migration.version(),
        description: migration.description().to_owned(),
        elapsed,
    }
}

/// The current version and the migrations to apply, or why applying is refused.
fn plan_apply<'s>(
    status: &MigrationStatus,
    set: &'s MigrationSet,
    options: &MigrateOptions,
    until: Option<i64>,
) -> Result<(Option<i64>, Vec<&'s Migration>), MigrateError> {
    if let Some(problem) = status.problem(set, options.ignore_missing()) {
        return Err(problem);
    }
    let plan = status
        .pending
        .iter()
        .filter(|v| until.is_none_or(|until| **v <= until))
        .filter_map(|v| set.get(*v))
        .collect();
    Ok((status.current_version, plan))
}

/// The current version and the migrations to revert (newest first), or why
/// reverting is refused. A pending version below the latest applied one is no
/// reason to refuse: reverting below it is a way to apply it in order.
fn plan_revert<'s>(
    status: &MigrationStatus,
    set: &'s MigrationSet,
    options: &MigrateOptions,
    to_version: i64,
) -> Result<(Option<i64>, Vec<&'s Migration>), MigrateError> {
    if let Some(problem) = status.history_problem(set, options.ignore_missing()) {
        return Err(problem);
    }
    let mut plan = Vec::new();
    for &version in status.applied.iter().rev().filter(|v| **v > to_version) {
        match set.get(version) {
            Some(migration) if migration.is_reversible() => plan.push(migration),
            Some(_) => return Err(MigrateError::NotReversible { version }),
            None => return Err(MigrateError::VersionMissing { version }),
        }
    }
    Ok((status.current_version, plan))
}

/// Unlocks after locked work, reporting the work's error first. A failed unlock
/// after successful work is only logged: the lock dies with the connection.
async fn release<T>(
    backend: &mut dyn Backend,
    result: Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    let unlocked = backend.unlock().await;
    if let (Ok(_), Err(error)) = (&result, &unlocked) {
        tracing::warn!(%error, "could not release the migration lock; it is released when the connection closes");
    }
    result
}
