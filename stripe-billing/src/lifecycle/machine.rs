use std::mem::discriminant;

use time::OffsetDateTime;

use super::{
    BillingEvent, BillingEventKind, BillingNotice, BillingPhase, BillingState, Effect,
    LifecycleConfig, LifecycleInput, SubscriptionSnapshot, SuspendReason, TrialEndBehaviour,
};
use crate::SubscriptionStatus;

/// The state machine: the state after `input`, and the effects the host must carry out.
///
/// Pure and deterministic: the same state, input and configuration always give the
/// same result, and time comes only from the input (`event.created` or the tick).
///
/// | from | input | to | effects |
/// |---|---|---|---|
/// | Trialing | checkout paid, subscription `active`, invoice paid | Active | plan modules, `Activated` |
/// | Trialing | tick ≥ trial end − notice (once), or `trial_will_end` | Trialing | `TrialEnding` |
/// | Trialing | tick ≥ trial end without a plan | Suspended (or Cancelled, by configuration) | modules off, `Suspended` |
/// | Active | invoice payment failed, subscription `past_due` | PastDue (grace = event time + grace period) | `PaymentFailed` |
/// | PastDue | invoice paid, subscription `active` | Active | `PaymentRecovered` |
/// | PastDue | tick ≥ grace end | Suspended | modules off, `Suspended` |
/// | Suspended | invoice paid, subscription `active` | Active | plan modules, `PaymentRecovered` |
/// | any | subscription deleted, `canceled`, billing closed by the host | Cancelled | modules off, `Cancelled` |
///
/// Order safety: an event older than the event that last set the phase leaves the
/// phase alone (a failure or a `past_due`/`unpaid`/`paused` status of the same second
/// too, so a tie never undoes a payment); a subscription snapshot older than the last one applied is ignored; a
/// tenant never returns to `Trialing`; a cancelled subscription stays cancelled (only a
/// new subscription makes the tenant active again).
///
/// ```
/// use stripe_billing::{transition, BillingEvent, BillingEventKind, BillingState, Effect, LifecycleInput, LifecycleConfig, BillingPhase, PricingPlan, PlanCatalog};
/// use time::macros::datetime;
///
/// let catalog = PlanCatalog::new([PricingPlan::new("starter", "Starter").monthly("price_s_m", 9_900).modules(["sales"])])?;
/// let config = LifecycleConfig::new(catalog);
/// let (trial, _) = BillingState::start_trial(datetime!(2026-01-01 0:00 UTC), &config);
///
/// let paid = BillingEvent::new(
///     datetime!(2026-01-05 0:00 UTC),
///     BillingEventKind::CheckoutCompleted { customer_id: Some("cus_1".into()), subscription_id: Some("sub_1".into()), paid: true },
/// );
/// let (active, effects) = transition(&trial, &LifecycleInput::Event(paid), &config);
/// assert_eq!(active.phase, BillingPhase::Active);
/// assert!(effects.iter().any(|e| matches!(e, Effect::Notify(_))));
/// # Ok::<(), stripe_billing::CatalogError>(())
/// ```
pub fn transition(
    state: &BillingState,
    input: &LifecycleInput,
    config: &LifecycleConfig,
) -> (BillingState, Vec<Effect>) {
    let mut new = state.clone();
    let mut notices = Vec::new();
    match input {
        LifecycleInput::Tick(now) => tick(&mut new, *now, config, &mut notices),
        LifecycleInput::Event(event) => apply(&mut new, event, config, &mut notices),
    }
    let effects = effects_of(state, &new, config, notices);
    (new, effects)
}

fn tick(
    state: &mut BillingState,
    now: OffsetDateTime,
    config: &LifecycleConfig,
    notices: &mut Vec<BillingNotice>,
) {
    match state.phase {
        BillingPhase::Trialing { ends_at, .. } if now >= ends_at && state.plan.is_none() => {
            state.phase = match config.trial_end {
                TrialEndBehaviour::Cancel => BillingPhase::Cancelled,
                _ => BillingPhase::Suspended {
                    reason: SuspendReason::TrialExpired,
                },
            };
        }
        BillingPhase::Trialing {
            ends_at,
            notified: false,
        } if now >= ends_at.saturating_sub(config.trial_notice) => {
            state.phase = BillingPhase::Trialing {
                ends_at,
                notified: true,
            };
            if now < ends_at {
                notices.push(BillingNotice::TrialEnding { ends_at });
            }
        }
        BillingPhase::PastDue { grace_ends_at } if now >= grace_ends_at => {
            state.phase = BillingPhase::Suspended {
                reason: SuspendReason::GracePeriodExpired,
            };
        }
        _ => {}
    }
}

/// How an event's subscription relates to the tenant's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The tenant has no subscription yet.
    First,
    /// The tenant's current subscription.
    Current,
    /// Another subscription.
    Other,
}

fn relation(state: &BillingState, subscription_id: &str) -> Relation {
    match state.subscription_id.as_deref() {
        None => Relation::First,
        Some(current) if current == subscription_id => Relation::Current,
        Some(_) => Relation::Other,
    }
}

fn apply(
    state: &mut BillingState,
    event: &BillingEvent,
    config: &LifecycleConfig,
    notices: &mut Vec<BillingNotice>,
) {
    let at = event.at;
    match &event.kind {
        BillingEventKind::CheckoutCompleted {
            customer_id,
            subscription_id,
            paid,
        } => checkout_completed(
            state,
            at,
            customer_id.as_deref(),
            subscription_id.as_deref(),
            *paid,
        ),
        BillingEventKind::SubscriptionChanged(snapshot) => {
            subscription_changed(state, at, snapshot, config)
        }
        BillingEventKind::SubscriptionDeleted(snapshot) => {
            subscription_deleted(state, at, snapshot)
        }
        BillingEventKind::TrialWillEnd(snapshot) => trial_will_end(state, snapshot, notices),
        // The host's decision: it holds whatever Stripe said before.
        BillingEventKind::Closed => set_phase(state, BillingPhase::Cancelled, at),
        BillingEventKind::PaymentSucceeded {
            subscription_id,
            customer_id,
            amount_paid,
        } => {
            if adopt_for_payment(state, subscription_id, customer_id.as_deref(), at) {
                let trial_invoice =
                    matches!(state.phase, BillingPhase::Trialing { .. }) && *amount_paid <= 0;
                if !trial_invoice {
                    set_phase(state, BillingPhase::Active, at);
                }
            }
        }
        BillingEventKind::PaymentFailed {
            subscription_id,
            customer_id,
        } => {
            let grace_ends_at = at.saturating_add(config.grace_period);
            if adopt_for_payment(state, subscription_id, customer_id.as_deref(), at)
                && matches!(
                    state.phase,
                    BillingPhase::Active | BillingPhase::Trialing { .. }
                )
            {
                set_degraded_phase(state, BillingPhase::PastDue { grace_ends_at }, at);
            }
        }
    }
}

/// Whether the phase may be set by an event at `at`: not older than the event that last set it.
fn is_fresh(state: &BillingState, at: OffsetDateTime) -> bool {
    state.phase_as_of.is_none_or(|as_of| at >= as_of)
}

fn set_phase(state: &mut BillingState, phase: BillingPhase, at: OffsetDateTime) {
    state.phase = phase;
    state.phase_as_of = state.phase_as_of.max(Some(at));
}

/// Sets a phase with less access than a payment gives (past due, suspended), unless the
/// phase was set by an event of the same second: Stripe's `created` has second
/// resolution, so a failure and the payment that followed it can share a timestamp and
/// arrive in either order, and a tie must not undo the payment.
fn set_degraded_phase(state: &mut BillingState, phase: BillingPhase, at: OffsetDateTime) {
    if state.phase_as_of.is_none_or(|as_of| at > as_of) {
        set_phase(state, phase, at);
    }
}

fn is_cancelled(state: &BillingState) -> bool {
    state.phase == BillingPhase::Cancelled
}

/// Whether an event about `subscription_id` may affect the tenant at all: not about a
/// cancelled subscription, and about the current one unless the tenant is cancelled
/// (then a new subscription starts over).
fn concerns_tenant(state: &BillingState, subscription_id: &str) -> bool {
    match relation(state, subscription_id) {
        Relation::First => true,
        Relation::Current => !is_cancelled(state),
        Relation::Other => is_cancelled(state),
    }
}

fn adopt(state: &mut BillingState, subscription_id: &str, customer_id: Option<&str>) {
    if relation(state, subscription_id) != Relation::Current {
        state.subscription_id = Some(subscription_id.to_owned());
    }
    if let Some(customer_id) = customer_id {
        if state.customer_id.as_deref() != Some(customer_id) {
            state.customer_id = Some(customer_id.to_owned());
        }
    }
}

fn adopt_for_payment(
    state: &mut BillingState,
    subscription_id: &str,
    customer_id: Option<&str>,
    at: OffsetDateTime,
) -> bool {
    if !concerns_tenant(state, subscription_id) || !is_fresh(state, at) {
        return false;
    }
    adopt(state, subscription_id, customer_id);
    true
}

fn checkout_completed(
    state: &mut BillingState,
    at: OffsetDateTime,
    customer_id: Option<&str>,
    subscription_id: Option<&str>,
    paid: bool,
) {
    if let Some(subscription_id) = subscription_id {
        if !concerns_tenant(state, subscription_id) {
            return;
        }
        adopt(state, subscription_id, customer_id);
    } else if let Some(customer_id) = customer_id {
        state.customer_id = Some(customer_id.to_owned());
    }
    if paid && is_fresh(state, at) {
        set_phase(state, BillingPhase::Active, at);
    }
}

fn subscription_changed(
    state: &mut BillingState,
    at: OffsetDateTime,
    snapshot: &SubscriptionSnapshot,
    config: &LifecycleConfig,
) {
    let terminal = matches!(
        snapshot.status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    );
    let stale = state.subscription_as_of.is_some_and(|as_of| at < as_of);
    let relevant = match relation(state, &snapshot.id) {
        Relation::First => true,
        Relation::Current => !is_cancelled(state),
        // A newer live subscription replaces the current one (the customer subscribed again).
        Relation::Other => !terminal && snapshot.status != SubscriptionStatus::Incomplete,
    };
    if stale || !relevant {
        return;
    }
    adopt(state, &snapshot.id, Some(&snapshot.customer_id));
    state.subscription_as_of = Some(at);
    if let Some(plan) = config
        .catalog
        .resolve_any(snapshot.price_ids.iter().map(String::as_str))
    {
        state.plan = Some(plan);
    }
    if let (BillingPhase::Trialing { ends_at, .. }, Some(trial_end)) =
        (&mut state.phase, snapshot.trial_end)
    {
        if snapshot.status == SubscriptionStatus::Trialing {
            *ends_at = trial_end;
        }
    }
    if is_fresh(state, at) {
        match phase_for_status(&state.phase, &snapshot.status, at, config) {
            Some(phase @ (BillingPhase::PastDue { .. } | BillingPhase::Suspended { .. })) => {
                set_degraded_phase(state, phase, at);
            }
            Some(phase) => set_phase(state, phase, at),
            None => {}
        }
    }
}

/// The phase a subscription status leads to from `current`, if it changes anything.
fn phase_for_status(
    current: &BillingPhase,
    status: &SubscriptionStatus,
    at: OffsetDateTime,
    config: &LifecycleConfig,
) -> Option<BillingPhase> {
    let suspended = matches!(current, BillingPhase::Suspended { .. });
    match status {
        SubscriptionStatus::Active => Some(BillingPhase::Active),
        SubscriptionStatus::PastDue
            if !suspended && !matches!(current, BillingPhase::PastDue { .. }) =>
        {
            Some(BillingPhase::PastDue {
                grace_ends_at: at.saturating_add(config.grace_period),
            })
        }
        SubscriptionStatus::Unpaid if !suspended => Some(BillingPhase::Suspended {
            reason: SuspendReason::Unpaid,
        }),
        SubscriptionStatus::Paused if !suspended => Some(BillingPhase::Suspended {
            reason: SuspendReason::Paused,
        }),
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => {
            Some(BillingPhase::Cancelled)
        }
        // `trialing` never takes a tenant back into a trial; `incomplete` and unknown
        // statuses change nothing until Stripe says more.
        _ => None,
    }
}

fn subscription_deleted(
    state: &mut BillingState,
    at: OffsetDateTime,
    snapshot: &SubscriptionSnapshot,
) {
    if relation(state, &snapshot.id) == Relation::Other {
        return; // an earlier subscription ending after the tenant moved to a new one
    }
    adopt(state, &snapshot.id, Some(&snapshot.customer_id));
    state.subscription_as_of = state.subscription_as_of.max(Some(at));
    set_phase(state, BillingPhase::Cancelled, at);
}

fn trial_will_end(
    state: &mut BillingState,
    snapshot: &SubscriptionSnapshot,
    notices: &mut Vec<BillingNotice>,
) {
    if !concerns_tenant(state, &snapshot.id) {
        return;
    }
    if let BillingPhase::Trialing { ends_at, notified } = &mut state.phase {
        if let Some(trial_end) = snapshot.trial_end {
            *ends_at = trial_end;
        }
        if !*notified {
            *notified = true;
            notices.push(BillingNotice::TrialEnding { ends_at: *ends_at });
        }
    }
}

fn effects_of(
    old: &BillingState,
    new: &BillingState,
    config: &LifecycleConfig,
    notices: Vec<BillingNotice>,
) -> Vec<Effect> {
    let before = old.enabled_modules(config);
    let after = new.enabled_modules(config);
    let mut effects = Vec::new();
    let enabled: std::collections::BTreeSet<_> = after.difference(&before).cloned().collect();
    let disabled: std::collections::BTreeSet<_> = before.difference(&after).cloned().collect();
    if !enabled.is_empty() {
        effects.push(Effect::EnableModules(enabled));
    }
    if !disabled.is_empty() {
        effects.push(Effect::DisableModules(disabled));
    }
    effects.extend(notices.into_iter().map(Effect::Notify));
    effects.extend(phase_notice(old, new).map(Effect::Notify));
    effects
}

fn phase_notice(old: &BillingState, new: &BillingState) -> Option<BillingNotice> {
    if discriminant(&old.phase) == discriminant(&new.phase) {
        return None;
    }
    Some(match &new.phase {
        BillingPhase::PastDue { grace_ends_at } => BillingNotice::PaymentFailed {
            grace_ends_at: *grace_ends_at,
        },
        BillingPhase::Suspended { reason } => BillingNotice::Suspended { reason: *reason },
        BillingPhase::Cancelled => BillingNotice::Cancelled,
        // A payment after a failure; a trial that expired unpaid is activated, not recovered.
        BillingPhase::Active
            if matches!(old.phase, BillingPhase::PastDue { .. })
                || matches!(old.phase, BillingPhase::Suspended { reason } if reason != SuspendReason::TrialExpired) =>
        {
            BillingNotice::PaymentRecovered
        }
        BillingPhase::Active => BillingNotice::Activated {
            plan: new.plan.as_ref().map(|p| p.plan.clone()),
        },
        BillingPhase::Trialing { .. } => return None,
    })
}
