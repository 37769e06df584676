//! The migration algorithm, shared by every backend: read the history, refuse an
//! unsafe one, lock, read again, run what is needed, unlock.

use crate::backend::{Backend, Direction, Step};
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
    let history = backend.read_history().await?;
    Ok((
        MigrationStatus::compute(set, &history),
        history.table_exists,
    ))
}

/// Applies every pending migration up to `until` (`None`: all of them). An
/// up-to-date database costs one query.
pub(crate) async fn apply(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    until: Option<i64>,
) -> Result<MigrationOutcome, MigrateError> {
    let (from, plan) = plan_apply(&status(backend, set).await?, set, options, until)?;
    if plan.is_empty() {
        return Ok(MigrationOutcome::unchanged(from));
    }
    backend.lock(options).await?;
    let result = apply_locked(backend, set, options, until).await;
    release(backend, result).await
}

/// Reverts, newest first, every applied migration above `to_version`.
pub(crate) async fn revert(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    to_version: i64,
) -> Result<MigrationOutcome, MigrateError> {
    let (from, plan) = plan_revert(&status(backend, set).await?, set, options, to_version)?;
    if plan.is_empty() {
        return Ok(MigrationOutcome::unchanged(from));
    }
    backend.lock(options).await?;
    let result = revert_locked(backend, set, options, to_version).await;
    release(backend, result).await
}

async fn apply_locked(
    backend: &mut dyn Backend,
    set: &MigrationSet,
    options: &MigrateOptions,
    until: Option<i64>,
) -> Result<MigrationOutcome, MigrateError> {
    // Another migrator may have finished while we waited for the lock.
    let (status, table_exists) = read(backend, set).await?;
    if !table_exists {
        backend.ensure_history_table().await?;
    }
    let (from, plan) = plan_apply(&status, set, options, until)?;
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
) -> Result<MigrationOutcome, MigrateError> {
    let status = status(backend, set).await?;
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
    for migration in plan {
        let elapsed = backend
            .run(
                Step {
                    migration,
                    direction,
                },
                options,
            )
            .await?;
        tracing::info!(
            version = migration.version(),
            ?direction,
            ?elapsed,
            "migration step done"
        );
        steps.push(MigrationStep {
            version: migration.version(),
            description: migration.description().to_owned(),
            elapsed,
        });
    }
    Ok(steps)
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

/// The current version and the migrations to revert (newest first), or why reverting is refused.
fn plan_revert<'s>(
    status: &MigrationStatus,
    set: &'s MigrationSet,
    options: &MigrateOptions,
    to_version: i64,
) -> Result<(Option<i64>, Vec<&'s Migration>), MigrateError> {
    if let Some(problem) = status.problem(set, options.ignore_missing()) {
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
