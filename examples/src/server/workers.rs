//! Background tasks: onboarding resumption, the billing clock, reconciliation with
//! Stripe, effect delivery, offboarding (resumption and deletion after retention).

use std::time::Duration;

use stripe_billing::{BillingNotice, Effect};
use tenancy_core::{Notification, OnboardingStep, TenantFilter, TenantStatus};

use super::AppState;

/// How long shutdown waits for background tasks before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often queued effects are delivered when nothing wakes the task.
const EFFECT_POLL: Duration = Duration::from_secs(5);
/// How many tenants or effects one step handles.
const PAGE: u32 = 500;

/// The running background tasks.
#[derive(Debug)]
pub(super) struct Workers {
    state: AppState,
}

/// Starts the background tasks.
pub(super) fn start(state: AppState) -> Workers {
    let tasks = state.tasks();
    tasks.spawn(resume_onboarding(state.clone()));
    tasks.spawn(resume_rollout(state.clone()));
    tasks.spawn(billing_clock(state.clone()));
    if state.reconciler().is_some() {
        tasks.spawn(reconcile_loop(state.clone()));
    }
    tasks.spawn(deliver_effects_loop(state.clone()));
    if state.offboarding().is_some() {
        tasks.spawn(offboarding_loop(state.clone()));
    }
    Workers { state }
}

impl Workers {
    /// Stops every task and waits (bounded) for them to finish.
    pub(super) async fn stop(self) {
        self.state.shutdown_token().cancel();
        let tasks = self.state.tasks();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop in time; their state is resumable");
        }
    }
}

/// Resumes onboarding of every tenant that is not ready, or is ready but whose ready
/// notice was never accepted (after a restart).
async fn resume_onboarding(state: AppState) {
    let mut filter = TenantFilter::all().limit(PAGE);
    loop {
        let page = match state.directory().list(&filter).await {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "could not list tenants to resume onboarding");
                return;
            }
        };
        let Some(last) = page.last().map(|t| t.id.clone()) else {
            return;
        };
        let unfinished = |t: &tenancy_core::Tenant| {
            !t.status.is_offboarded()
                && (t.status != TenantStatus::Ready || t.ready_notified_at.is_none())
        };
        for tenant in page.into_iter().filter(unfinished) {
            state.spawn_onboarding(tenant.id);
        }
        filter = filter.after(last);
    }
}

/// Resumes onboarding of the tenants that stopped at their migrate step: after the
/// migration that failed them was replaced or withdrawn.
pub(super) async fn resume_failed_migrations(state: AppState) {
    let mut filter = TenantFilter::all().limit(PAGE);
    loop {
        let page = match state.directory().list(&filter).await {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(%error, "could not list tenants to resume their migration");
                return;
            }
        };
        let Some(last) = page.last().map(|t| t.id.clone()) else {
            return;
        };
        for tenant in page {
            if matches!(
                tenant.status,
                TenantStatus::Failed {
                    step: OnboardingStep::Migrate,
                    ..
                }
            ) {
                state.spawn_onboarding(tenant.id);
            }
        }
        filter = filter.after(last);
    }
}

/// Joins an unfinished rollout of the current migrations (its strategy and plan are
/// kept in the state store).
async fn resume_rollout(state: AppState) {
    tokio::select! {
        result = state.migrations().resume() => {
            if let Err(error) = result {
                tracing::error!(%error, "could not resume the unfinished rollout");
            }
        }
        () = state.shutdown_token().cancelled() => {}
    }
}

/// Applies clock-driven billing transitions (trial and grace expiry) on a schedule.
async fn billing_clock(state: AppState) {
    let mut interval = tokio::time::interval(state.tick_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = state.shutdown_token().cancelled() => return,
        }
        replay_parked(&state).await;
        match state.billing().tick(state.clock().now()).await {
            Ok(report) => {
                if !report.changed.is_empty() {
                    tracing::info!(
                        changed = report.changed.len(),
                        "billing clock moved tenants"
                    );
                    state.wake_effects();
                }
                for (tenant, error) in report.failed {
                    tracing::error!(%tenant, %error, "billing clock could not update a tenant");
                }
            }
            Err(error) => tracing::error!(%error, "billing clock failed"),
        }
    }
}

/// Reads missed webhooks back from Stripe's events: at start (the endpoint may have
/// been down while the service was), then on a schedule. A run stopped by shutdown
/// or a failure resumes from its cursor on the next one.
async fn reconcile_loop(state: AppState) {
    let Some(reconciler) = state.reconciler().cloned() else {
        return;
    };
    let mut interval = tokio::time::interval(state.reconcile_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = state.shutdown_token().cancelled() => return,
        }
        let result = tokio::select! {
            result = reconciler.reconcile(None) => result,
            () = state.shutdown_token().cancelled() => {
                tracing::info!("reconciliation stopped by shutdown; it resumes from its cursor");
                return;
            }
        };
        match result {
            Ok(report) => {
                if report.changed_anything() {
                    tracing::info!(?report, "reconciliation applied missed Stripe events");
                    state.wake_effects();
                }
            }
            Err(error) => {
                tracing::error!(%error, "reconciliation with Stripe failed; it resumes from its cursor on the next run");
                // What was applied before the failure waits in the outbox.
                state.wake_effects();
            }
        }
    }
}

/// Resumes unfinished offboardings and deletes tenants whose retention is over: at
/// start, then on a schedule (the retention is read from the state's clock).
async fn offboarding_loop(state: AppState) {
    let Some(offboarding) = state.offboarding().cloned() else {
        return;
    };
    let mut interval = tokio::time::interval(state.offboarding_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = state.shutdown_token().cancelled() => return,
        }
        let result = tokio::select! {
            result = offboarding.run_pending() => result,
            () = state.shutdown_token().cancelled() => return,
        };
        match result {
            Ok(report) => {
                if !report.deleted.is_empty() || !report.retained.is_empty() {
                    tracing::info!(deleted = ?report.deleted, retained = ?report.retained, "offboarding moved tenants");
                    state.wake_effects();
                }
                for (tenant, error) in report.failed {
                    tracing::error!(%tenant, %error, "offboarding failed; the next check resumes it");
                }
            }
            Err(error) => tracing::error!(%error, "could not check offboardings"),
        }
    }
}

async fn deliver_effects_loop(state: AppState) {
    loop {
        deliver_effects(&state).await;
        tokio::select! {
            () = state.effects_woken() => {}
            () = tokio::time::sleep(EFFECT_POLL) => {}
            () = state.shutdown_token().cancelled() => return,
        }
    }
}

/// Carries out queued billing effects: notices go to the notifier; module changes and
/// reconciliations are logged (the modules themselves are derived from the billing
/// state on each request).
pub(super) async fn deliver_effects(state: &AppState) {
    loop {
        let store = state.billing().store();
        let pending = match store.pending_effects(PAGE as usize).await {
            Ok(pending) if !pending.is_empty() => pending,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "could not read the billing outbox");
                return;
            }
        };
        let mut done = Vec::with_capacity(pending.len());
        for item in pending {
            match &item.effect {
                Effect::Notify(notice) => {
                    let notification =
                        Notification::new(item.tenant_id.clone(), notice.notification_kind());
                    if let Err(error) = state.notifier().notify(&notification).await {
                        tracing::warn!(tenant = %item.tenant_id, %error, "notice not delivered; will retry");
                        continue;
                    }
                    if *notice == BillingNotice::Cancelled && state.offboards_on_cancel() {
                        tracing::info!(tenant = %item.tenant_id, "billing cancelled: offboarding the tenant");
                        state.spawn_offboarding(item.tenant_id.clone());
                    }
                }
                Effect::Reconciled {
                    from,
                    to,
                    stripe_status,
                } => {
                    tracing::info!(
                        tenant = %item.tenant_id,
                        from = from.name(),
                        to = to.name(),
                        %stripe_status,
                        "billing state was out of line with Stripe and was reconciled: webhooks were missed"
                    );
                }
                other => {
                    tracing::info!(tenant = %item.tenant_id, effect = ?other, "billing effect")
                }
            }
            done.push(item.id);
        }
        let delivered_all = !done.is_empty();
        if let Err(error) = store.ack_effects(&done).await {
            tracing::error!(%error, "could not acknowledge delivered effects");
            return;
        }
        if !delivered_all {
            return;
        }
    }
}

/// On the billing clock: retries the oldest parked events, drops the expired ones.
async fn replay_parked(state: &AppState) {
    match state
        .billing()
        .replay_parked(None, state.clock().now())
        .await
    {
        Ok(report) if report.applied > 0 => {
            tracing::info!(?report, "parked webhooks applied");
            state.wake_effects();
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, "could not replay parked webhooks; they stay parked")
        }
    }
}
