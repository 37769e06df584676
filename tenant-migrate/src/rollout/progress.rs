use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tenancy_core::TenantId;

use super::{StateCounts, Strategy};

/// What a rollout reports while it runs, for progress bars, logs and UIs.
///
/// Each runner reports what it sees: with several runners, each reports the
/// tenants it migrates and the waves it takes part in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RolloutEvent {
    /// The runner created or joined a rollout.
    Joined {
        /// The rollout's id in the state store.
        rollout_id: i64,
        /// The tenants it covers.
        tenants: u64,
        /// Whether it already existed (a rerun or a second runner).
        existing: bool,
    },
    /// A strategy was given for a rollout that already exists: the rollout keeps
    /// the strategy (failure limit and soak time included) it started with.
    StrategyKept {
        /// The rollout.
        rollout_id: i64,
        /// The strategy it keeps.
        kept: Strategy,
        /// The strategy given, not used.
        given: Strategy,
    },
    /// The runner was asked to stop: it claims no more tenants and lets those in
    /// flight finish.
    Stopping {
        /// The tenants in flight, left to finish.
        in_flight: u64,
    },
    /// A wave opened.
    WaveStarted {
        /// The wave.
        wave: u32,
        /// Its tenants.
        tenants: u64,
    },
    /// Every tenant of a wave finished.
    WaveFinished {
        /// The wave.
        wave: u32,
        /// Its tenants per state.
        counts: StateCounts,
    },
    /// The next wave waits for the soak time.
    Soaking {
        /// The wave that will open.
        wave: u32,
        /// The wait left.
        remaining: Duration,
    },
    /// Nothing is left to claim in the open wave, but other runners (or one that
    /// died) hold tenants of it: this runner waits for them to finish, or for their
    /// leases to expire.
    WaitingForLeases {
        /// The tenants held by other runners.
        tenants: u64,
        /// The longest the wait can last: one lease period.
        at_most: Duration,
    },
    /// A tenant job started.
    TenantStarted {
        /// The tenant.
        tenant: TenantId,
        /// Its wave.
        wave: u32,
        /// Its attempt (1 for the first claim).
        attempt: u32,
    },
    /// A tenant reached the target version.
    TenantSucceeded {
        /// The tenant.
        tenant: TenantId,
        /// Its version before.
        from_version: Option<i64>,
        /// Its version after.
        to_version: Option<i64>,
        /// How long the job took.
        elapsed: Duration,
    },
    /// A tenant was reverted by a rollback.
    TenantRolledBack {
        /// The tenant.
        tenant: TenantId,
        /// Its version after the revert.
        to_version: Option<i64>,
        /// How long the job took.
        elapsed: Duration,
    },
    /// A tenant needed nothing (already at the target, or no database).
    TenantSkipped {
        /// The tenant.
        tenant: TenantId,
        /// Why.
        reason: String,
    },
    /// A tenant's migration (or revert) failed; it is recorded as failed.
    TenantFailed {
        /// The tenant.
        tenant: TenantId,
        /// The error, safe to show.
        error: String,
    },
    /// The rollout stopped claiming tenants.
    Halted {
        /// Why.
        reason: String,
    },
}

/// One line for a person: what the command line prints and a log or a page shows.
///
/// ```
/// use std::time::Duration;
/// use tenant_migrate::RolloutEvent;
/// use tenancy_core::TenantId;
///
/// let tenant = TenantId::try_from("acme")?;
/// let event = RolloutEvent::TenantSucceeded {
///     tenant,
///     from_version: Some(1),
///     to_version: Some(2),
///     elapsed: Duration::from_millis(12),
/// };
/// assert_eq!(event.to_string(), "acme: 1 -> 2 (12 ms)");
/// # Ok::<(), tenancy_core::TenantIdError>(())
/// ```
impl std::fmt::Display for RolloutEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = |v: &Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
        match self {
            Self::Joined {
                rollout_id,
                tenants,
                existing,
            } => {
                let verb = if *existing { "joined" } else { "started" };
                write!(f, "{verb} rollout {rollout_id} ({tenants} tenants)")
            }
            Self::StrategyKept {
                rollout_id, kept, ..
            } => write!(
                f,
                "rollout {rollout_id} keeps the strategy it started with ({kept}, with its failure limit and soak time); the strategy, failure limit or soak time given now is not used"
            ),
            Self::Stopping { in_flight } => write!(
                f,
                "stopping: claiming no more tenants, letting the {in_flight} in flight finish"
            ),
            Self::WaveStarted { wave, tenants } => {
                write!(f, "wave {wave} started ({tenants} tenants)")
            }
            Self::WaveFinished { wave, counts } => write!(
                f,
                "wave {wave} finished: {} succeeded, {} failed, {} skipped",
                counts.succeeded, counts.failed, counts.skipped
            ),
            Self::Soaking { wave, remaining } => {
                write!(f, "soaking {}s before wave {wave}", remaining.as_secs())
            }
            Self::WaitingForLeases { tenants, at_most } => write!(
                f,
                "waiting for {tenants} tenants held by another runner: they finish, or their leases expire within {}s",
                at_most.as_secs()
            ),
            Self::TenantStarted {
                tenant,
                wave,
                attempt,
            } => write!(f, "{tenant}: started (wave {wave}, attempt {attempt})"),
            Self::TenantSucceeded {
                tenant,
                from_version,
                to_version,
                elapsed,
            } => write!(
                f,
                "{tenant}: {} -> {} ({} ms)",
                version(from_version),
                version(to_version),
                elapsed.as_millis()
            ),
            Self::TenantRolledBack {
                tenant,
                to_version,
                elapsed,
            } => write!(
                f,
                "{tenant}: rolled back to {} ({} ms)",
                version(to_version),
                elapsed.as_millis()
            ),
            Self::TenantSkipped { tenant, reason } => write!(f, "{tenant}: skipped ({reason})"),
            Self::TenantFailed { tenant, error } => write!(f, "{tenant}: FAILED: {error}"),
            Self::Halted { reason } => write!(f, "halted: {reason}"),
        }
    }
}

/// A callback receiving [`RolloutEvent`]s; it must return quickly (forward to a
/// channel for slow consumers).
#[derive(Clone)]
pub(crate) struct Listener(Arc<dyn Fn(&RolloutEvent) + Send + Sync>);

impl Listener {
    pub(crate) fn new(callback: impl Fn(&RolloutEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    pub(crate) fn silent() -> Self {
        Self::new(|_| {})
    }

    pub(crate) fn emit(&self, event: RolloutEvent) {
        (self.0)(&event);
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Listener(..)")
    }
}
