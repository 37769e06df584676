use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::job::{run_job, JobContext};
use super::{
    ClaimRequest, RolloutError, RolloutEvent, RolloutPhase, RolloutRecord, RolloutStatus,
    TenantState, WaveProgress,
};

/// The loop of one runner: claim up to `concurrency` tenants of the open wave, run
/// their jobs, renew their leases, and look at the rollout again whenever a claim
/// comes back short or a tenant fails.
#[derive(Debug)]
pub(crate) struct Runner {
    pub(crate) ctx: Arc<JobContext>,
    pub(crate) record: RolloutRecord,
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) poll: Duration,
}

/// What the runner may do next, as read from the state store.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gate {
    /// Claim tenants of waves up to this one.
    Open(u32),
    /// The next wave opens after the soak time.
    Soak(Duration),
    /// Nothing left to claim.
    Done,
    /// The rollout halted or changed phase: claim nothing more.
    Stopped,
}

type Jobs = JoinSet<Result<Option<TenantState>, RolloutError>>;

/// The waves this runner has announced.
#[derive(Debug, Default)]
struct WaveView {
    current: Option<u32>,
    soaking: Option<u32>,
    halted_seen: bool,
    waiting_announced: bool,
}

impl Runner {
    /// Runs until the rollout is done for this runner. Once `stop` resolves it
    /// claims nothing more, lets its jobs in flight finish and record their
    /// outcomes, and returns [`RolloutError::Interrupted`] unless that finished
    /// the rollout. (Cancelling a job instead would not stop its statement on the
    /// server, which may still commit.)
    pub(crate) async fn run(self, stop: impl Future<Output = ()>) -> Result<(), RolloutError> {
        let mut jobs = Jobs::new();
        let driven = self.drive(&mut jobs, stop).await;
        if driven.is_err() {
            // A failing runner leaves no job behind.
            jobs.shutdown().await;
        }
        driven
    }

    async fn drive(
        &self,
        jobs: &mut Jobs,
        stop: impl Future<Output = ()>,
    ) -> Result<(), RolloutError> {
        tokio::pin!(stop);
        let mut stopping: Option<u64> = None;
        let mut view = WaveView::default();
        let mut renew = tokio::time::interval(self.lease / 3);
        renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut gate = match self.ctx.phase {
            RolloutPhase::Forward => self.refresh(&mut view, false).await?,
            RolloutPhase::Revert => Gate::Open(u32::MAX),
        };
        let mut fruitless = false;
        loop {
            if stopping.is_some() {
                gate = Gate::Stopped;
            }
            let mut stale = false;
            match gate {
                Gate::Open(wave) if jobs.len() < self.concurrency => {
                    let free = self.concurrency - jobs.len();
                    let claimed = self.claim(wave, free).await?;
                    let got = claimed.len();
                    for tenant in claimed {
                        jobs.spawn(run_job(Arc::clone(&self.ctx), tenant));
                    }
                    if got < free {
                        if jobs.is_empty() {
                            // Others hold the wave's last tenants: do not spin.
                            if fruitless {
                                self.wait(self.poll, &mut stop, &mut stopping, jobs).await;
                            }
                            fruitless = true;
                            gate = self.refresh(&mut view, true).await?;
                            continue;
                        }
                        stale = true;
                    }
                    fruitless = false;
                }
                Gate::Done | Gate::Stopped if jobs.is_empty() => break,
                Gate::Soak(remaining) if jobs.is_empty() => {
                    self.wait(remaining.min(self.poll), &mut stop, &mut stopping, jobs)
                        .await;
                    gate = self.refresh(&mut view, false).await?;
                    continue;
                }
                _ => {}
            }
            tokio::select! {
                joined = jobs.join_next() => {
                    if let Some(joined) = joined {
                        stale |= failed(joined)?;
                        // Every job that finished meanwhile too: their places are
                        // claimed together, in one write to the state store.
                        while let Some(joined) = jobs.try_join_next() {
                            stale |= failed(joined)?;
                        }
                    }
                }
                _ = renew.tick() => {
                    self.ctx.store.renew_leases(self.ctx.rollout_id, &self.ctx.owner, self.lease).await?;
                }
                () = &mut stop, if stopping.is_none() => self.stopping(&mut stopping, jobs),
            }
            if stale {
                gate = self.refresh(&mut view, false).await?;
            }
        }
        let done = self.finish(&mut view).await?;
        match stopping {
            Some(finished) if !done => Err(RolloutError::Interrupted {
                rollout_id: self.ctx.rollout_id,
                finished,
            }),
            _ => Ok(()),
        }
    }

    /// Waits `pause`, or until `stop` resolves (then stops claiming).
    async fn wait(
        &self,
        pause: Duration,
        stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        stopping: &mut Option<u64>,
        jobs: &Jobs,
    ) {
        if stopping.is_some() {
            return tokio::time::sleep(pause).await;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.as_mut() => self.stopping(stopping, jobs),
        }
    }

    /// Claims nothing more from now on; says so, with the jobs left to finish.
    fn stopping(&self, stopping: &mut Option<u64>, jobs: &Jobs) {
        let in_flight = u64::try_from(jobs.len()).unwrap_or(u64::MAX);
        *stopping = Some(in_flight);
        self.ctx.listener.emit(RolloutEvent::Stopping { in_flight });
    }

    async fn claim(
        &self,
        wave: u32,
        free: usize,
    ) -> Result<Vec<super::ClaimedTenant>, RolloutError> {
        let request = ClaimRequest {
            owner: &self.ctx.owner,
            phase: self.ctx.phase,
            max_wave: wave,
            limit: u32::try_from(free).unwrap_or(u32::MAX),
            lease: self.lease,
        };
        self.ctx.store.claim(self.ctx.rollout_id, &request).await
    }

    /// Reads the rollout and decides what to do next; `drained` says that the
    /// last claim found nothing while this runner had nothing in flight.
    async fn refresh(&self, view: &mut WaveView, drained: bool) -> Result<Gate, RolloutError> {
        let (record, waves) = self.ctx.store.progress(self.ctx.rollout_id).await?;
        let expected = match self.ctx.phase {
            RolloutPhase::Forward => RolloutStatus::Active,
            RolloutPhase::Revert => RolloutStatus::RollingBack,
        };
        if record.status != expected {
            if record.status == RolloutStatus::Halted && !view.halted_seen {
                view.halted_seen = true;
                let reason = record.halted_reason.unwrap_or_else(|| "halted".into());
                self.ctx.listener.emit(RolloutEvent::Halted { reason });
            }
            return Ok(Gate::Stopped);
        }
        if drained {
            self.announce_waiting(&waves, view);
        }
        match self.ctx.phase {
            RolloutPhase::Forward => self.forward_gate(&waves, view).await,
            RolloutPhase::Revert => Ok(revert_gate(&waves, drained)),
        }
    }

    /// Says once that this runner, with nothing to claim, waits for tenants that
    /// other runners hold.
    fn announce_waiting(&self, waves: &[WaveProgress], view: &mut WaveView) {
        let held: u64 = waves.iter().map(|w| w.counts.running).sum();
        if held > 0 && !view.waiting_announced {
            view.waiting_announced = true;
            self.ctx.listener.emit(RolloutEvent::WaitingForLeases {
                tenants: held,
                at_most: self.lease,
            });
        }
    }

    async fn forward_gate(
        &self,
        waves: &[WaveProgress],
        view: &mut WaveView,
    ) -> Result<Gate, RolloutError> {
        let open = waves.iter().find(|w| w.counts.unfinished() > 0);
        if view
            .current
            .is_some_and(|current| open.is_none_or(|o| o.wave != current))
        {
            self.finish_wave(view.current.take(), waves);
        }
        // Checked after the last wave too, so a rollout that ends beyond its
        // threshold reports itself halted however its last tenants finished.
        let reached = open.map_or(u32::MAX, |o| o.wave);
        if let Some(reason) = self.threshold_exceeded(waves, reached) {
            self.ctx
                .store
                .set_status(self.ctx.rollout_id, RolloutStatus::Halted, Some(&reason))
                .await?;
            view.halted_seen = true;
            self.ctx.listener.emit(RolloutEvent::Halted { reason });
            return Ok(Gate::Stopped);
        }
        let Some(open) = open else {
            return Ok(Gate::Done);
        };
        let gate = self
            .record
            .strategy
            .gate(open.wave, self.record.tenant_count);
        let untouched = open.counts.pending == open.counts.total();
        let previous_end = waves
            .iter()
            .filter(|w| w.wave < open.wave)
            .filter_map(|w| w.last_finished_at)
            .max();
        if let (true, Some(end)) = (untouched && !gate.soak_before.is_zero(), previous_end) {
            let elapsed = (OffsetDateTime::now_utc() - end).max(time::Duration::ZERO);
            let remaining = gate.soak_before.saturating_sub(elapsed.unsigned_abs());
            if !remaining.is_zero() {
                if view.soaking.replace(open.wave) != Some(open.wave) {
                    self.ctx.listener.emit(RolloutEvent::Soaking {
                        wave: open.wave,
                        remaining,
                    });
                }
                return Ok(Gate::Soak(remaining));
            }
        }
        if view.current.replace(open.wave).is_none() {
            self.ctx.listener.emit(RolloutEvent::WaveStarted {
                wave: open.wave,
                tenants: open.counts.total(),
            });
        }
        Ok(Gate::Open(open.wave))
    }

    /// Why the rollout must halt, if the failures of the waves up to `open` exceed
    /// the threshold of any of them (a canary wave allows none of its own).
    fn threshold_exceeded(&self, waves: &[WaveProgress], open: u32) -> Option<String> {
        let mut failed = 0;
        for wave in waves.iter().filter(|w| w.wave <= open) {
            failed += wave.counts.failed;
            let gate = self
                .record
                .strategy
                .gate(wave.wave, self.record.tenant_count);
            if let Some(max) = gate.max_failures.filter(|max| failed > *max) {
                return Some(format!(
                    "{failed} tenants failed by wave {}, more than the {max} allowed; fix them and run again to resume",
                    wave.wave
                ));
            }
        }
        None
    }

    fn finish_wave(&self, wave: Option<u32>, waves: &[WaveProgress]) {
        if let Some(done) = wave.and_then(|n| waves.iter().find(|w| w.wave == n)) {
            self.ctx.listener.emit(RolloutEvent::WaveFinished {
                wave: done.wave,
                counts: done.counts,
            });
        }
    }

    /// Marks the rollout finished when nothing is left to do; returns whether
    /// it is.
    async fn finish(&self, view: &mut WaveView) -> Result<bool, RolloutError> {
        let (record, waves) = self.ctx.store.progress(self.ctx.rollout_id).await?;
        let unfinished: u64 = waves.iter().map(|w| w.counts.unfinished()).sum();
        let running: u64 = waves.iter().map(|w| w.counts.running).sum();
        let failed: u64 = waves.iter().map(|w| w.counts.failed).sum();
        match (self.ctx.phase, record.status) {
            (RolloutPhase::Forward, RolloutStatus::Active) if unfinished == 0 => {
                self.finish_wave(view.current.take(), &waves);
                if failed == 0 {
                    self.ctx
                        .store
                        .set_status(self.ctx.rollout_id, RolloutStatus::Completed, None)
                        .await?;
                } else {
                    // Nothing is left to run, so it is not active: it stopped short.
                    let total: u64 = waves.iter().map(|w| w.counts.total()).sum();
                    let reason = if failed == total {
                        format!("every one of the {total} tenants failed; fix the migration or the tenants, then run again to retry them")
                    } else {
                        format!("{failed} of {total} tenants failed; fix them and run again to retry them")
                    };
                    self.ctx
                        .store
                        .set_status(self.ctx.rollout_id, RolloutStatus::Halted, Some(&reason))
                        .await?;
                    if !view.halted_seen {
                        view.halted_seen = true;
                        self.ctx.listener.emit(RolloutEvent::Halted { reason });
                    }
                }
            }
            // Tenants still pending were never migrated: nothing to revert there.
            (RolloutPhase::Revert, RolloutStatus::RollingBack) if running == 0 => {
                let left = self.ctx.store.rollback_floor(self.ctx.rollout_id).await?;
                if left.is_none() {
                    self.ctx
                        .store
                        .set_status(self.ctx.rollout_id, RolloutStatus::RolledBack, None)
                        .await?;
                    return Ok(true);
                }
                return Ok(false);
            }
            _ => {}
        }
        Ok(unfinished == 0)
    }
}

/// Whether a finished job failed its tenant (its errors end the runner).
fn failed(
    joined: Result<Result<Option<TenantState>, RolloutError>, tokio::task::JoinError>,
) -> Result<bool, RolloutError> {
    let state = joined.map_err(|e| RolloutError::JobPanicked(e.to_string()))??;
    Ok(state == Some(TenantState::Failed))
}

/// A rollback ignores waves; it is done when no tenant is in flight anywhere and a
/// claim found nothing more.
fn revert_gate(waves: &[WaveProgress], drained: bool) -> Gate {
    if !drained || waves.iter().any(|w| w.counts.running > 0) {
        Gate::Open(u32::MAX)
    } else {
        Gate::Done
    }
}
