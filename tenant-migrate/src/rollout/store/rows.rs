//! Rows of the state tables as both stores read them, and their decoding.

use tenancy_core::TenantId;

use crate::SchemaVersion;
use time::OffsetDateTime;

use super::{
    ClaimedTenant, RolloutError, RolloutKey, RolloutRecord, RolloutStatus, Strategy, TenantRecord,
    WaveProgress,
};

/// The SQL placed in the state tables' `strategy` column.
pub(crate) fn strategy_json(strategy: &Strategy) -> Result<String, RolloutError> {
    serde_json::to_string(strategy).map_err(|e| RolloutError::CorruptState(e.to_string()))
}

/// Decodes a stored strategy.
pub(crate) fn parse_strategy(json: &str) -> Result<Strategy, RolloutError> {
    serde_json::from_str(json).map_err(|e| RolloutError::CorruptState(format!("strategy: {e}")))
}

/// Decodes a stored tenant id.
pub(crate) fn parse_tenant_id(raw: String) -> Result<TenantId, RolloutError> {
    TenantId::new(raw.clone()).map_err(|_| RolloutError::CorruptTenantId(raw))
}

/// Converts a stored integer column to `u32` (waves, attempts, positions).
pub(crate) fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// Converts a stored count to `u64`.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A rollout row as both stores select it: id, target version, set checksum,
/// strategy JSON, status, halt reason, tenant count, creation time (Unix ms).
pub(crate) type RecordRow = (i64, i64, String, String, String, Option<String>, i64, i64);

/// A tenant row as both stores select it: position, id, wave, state, attempts,
/// from version, to version, error, start and finish times (Unix ms).
pub(crate) type TenantRow = (
    i64,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

/// A claimed row as both stores return it: id, wave, attempts, started, from version.
pub(crate) type ClaimRow = (String, i64, i64, bool, Option<i64>);

/// A progress row: wave, state, count, last finish time (Unix ms).
pub(crate) type ProgressRow = (i64, String, i64, Option<i64>);

pub(crate) fn record_from_row(row: RecordRow) -> Result<RolloutRecord, RolloutError> {
    let (id, target_version, set_checksum, strategy, status, halted_reason, count, created) = row;
    Ok(RolloutRecord {
        id,
        key: RolloutKey {
            target_version,
            set_checksum,
        },
        strategy: parse_strategy(&strategy)?,
        status: status.parse()?,
        halted_reason,
        tenant_count: to_u64(count),
        created_at: from_millis(created),
    })
}

pub(crate) fn tenant_from_row(row: TenantRow) -> Result<(u32, TenantRecord), RolloutError> {
    let (position, id, wave, state, attempts, from, to, error, started, finished) = row;
    Ok((
        to_u32(position),
        TenantRecord {
            tenant_id: parse_tenant_id(id)?,
            wave: to_u32(wave),
            state: state.parse()?,
            attempts: to_u32(attempts),
            from_version: from,
            to_version: to,
            error,
            started_at: started.map(from_millis),
            finished_at: finished.map(from_millis),
        },
    ))
}

pub(crate) fn claim_from_row(row: ClaimRow) -> Result<ClaimedTenant, RolloutError> {
    let (id, wave, attempts, started, from_version) = row;
    Ok(ClaimedTenant {
        tenant_id: parse_tenant_id(id)?,
        wave: to_u32(wave),
        attempts: to_u32(attempts),
        started,
        from_version,
    })
}

/// Folds progress rows into per-wave counts, by wave.
pub(crate) fn waves_from_rows(rows: Vec<ProgressRow>) -> Result<Vec<WaveProgress>, RolloutError> {
    let mut waves: Vec<WaveProgress> = Vec::new();
    for (wave, state, count, finished) in rows {
        let wave = to_u32(wave);
        if waves.last().is_none_or(|w| w.wave != wave) {
            waves.push(WaveProgress {
                wave,
                ..WaveProgress::default()
            });
        }
        if let Some(current) = waves.last_mut() {
            current.counts.add(state.parse()?, to_u64(count));
            current.last_finished_at = current.last_finished_at.max(finished.map(from_millis));
        }
    }
    Ok(waves)
}

/// The statuses a rollout may move to `to` from.
pub(crate) fn allowed_sources(to: RolloutStatus) -> &'static [&'static str] {
    match to {
        RolloutStatus::Active => &["halted", "active"],
        RolloutStatus::Halted | RolloutStatus::Completed => &["active"],
        RolloutStatus::RollingBack => &["active", "halted", "completed", "rolling_back"],
        RolloutStatus::RolledBack => &["rolling_back"],
    }
}

/// Unix milliseconds to a timestamp (out-of-range values clamp to the epoch).
pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Interprets the rollback-floor aggregates: whether any tenant was migrated,
/// whether one started from an empty database, and the lowest start version.
pub(crate) fn rollback_floor(
    any: Option<bool>,
    from_empty: Option<bool>,
    lowest: Option<i64>,
) -> Option<SchemaVersion> {
    match (any, from_empty) {
        (Some(true), Some(true)) => Some(SchemaVersion::Empty),
        (Some(true), _) => Some(SchemaVersion::from(lowest)),
        _ => None,
    }
}
