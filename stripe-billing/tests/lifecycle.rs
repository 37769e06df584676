//! The subscription state machine: every transition of the table, order safety, and
//! property tests over arbitrary input sequences.

mod common;

use std::collections::BTreeSet;

use common::{at, config, CUSTOMER, DAY, PRO_MONTHLY, STARTER_MONTHLY, SUBSCRIPTION, T0};
use proptest::prelude::*;
use stripe_billing::{
    transition, BillingEvent, BillingEventKind as Kind, BillingNotice, BillingPhase, BillingState,
    Effect, LifecycleConfig, LifecycleInput, Module, SubscriptionSnapshot, SubscriptionStatus,
    SuspendReason, TrialEndBehaviour,
};
use tenancy_core::NotificationKind;
use time::Duration;

fn modules(names: &[&str]) -> BTreeSet<Module> {
    names.iter().map(|n| Module::new(*n)).collect()
}

fn starter() -> BTreeSet<Module> {
    modules(&["inventory", "sales"])
}

fn trial() -> BillingState {
    BillingState::start_trial(at(T0), &config()).0
}

fn snapshot(id: &str, status: &str, price: &str) -> SubscriptionSnapshot {
    let mut fixture = common::subscription(status, price, None);
    fixture["id"] = serde_json::json!(id);
    let sub: stripe_billing::Subscription = serde_json::from_value(fixture).unwrap();
    SubscriptionSnapshot::from(&sub)
}

fn event(unix: i64, kind: Kind) -> LifecycleInput {
    LifecycleInput::Event(BillingEvent::new(at(unix), kind))
}

fn changed(unix: i64, status: &str, price: &str) -> LifecycleInput {
    event(
        unix,
        Kind::SubscriptionChanged(snapshot(SUBSCRIPTION, status, price)),
    )
}

fn deleted(unix: i64) -> LifecycleInput {
    event(
        unix,
        Kind::SubscriptionDeleted(snapshot(SUBSCRIPTION, "canceled", STARTER_MONTHLY)),
    )
}

fn paid(unix: i64, amount: i64) -> LifecycleInput {
    event(
        unix,
        Kind::PaymentSucceeded {
            subscription_id: SUBSCRIPTION.into(),
            customer_id: Some(CUSTOMER.into()),
            amount_paid: amount,
        },
    )
}

fn failed(unix: i64) -> LifecycleInput {
    event(
        unix,
        Kind::PaymentFailed {
            subscription_id: SUBSCRIPTION.into(),
            customer_id: Some(CUSTOMER.into()),
        },
    )
}

fn checkout(unix: i64, paid: bool) -> LifecycleInput {
    event(
        unix,
        Kind::CheckoutCompleted {
            customer_id: Some(CUSTOMER.into()),
            subscription_id: Some(SUBSCRIPTION.into()),
            paid,
        },
    )
}

fn tick(unix: i64) -> LifecycleInput {
    LifecycleInput::Tick(at(unix))
}

/// Runs `inputs` from `state`, returning the final state and every effect.
fn run(
    state: BillingState,
    inputs: &[LifecycleInput],
    config: &LifecycleConfig,
) -> (BillingState, Vec<Effect>) {
    inputs
        .iter()
        .fold((state, Vec::new()), |(state, mut all), input| {
            let (state, effects) = transition(&state, input, config);
            all.extend(effects);
            (state, all)
        })
}

fn active() -> BillingState {
    run(
        trial(),
        &[changed(T0 + DAY, "active", STARTER_MONTHLY)],
        &config(),
    )
    .0
}

fn past_due() -> BillingState {
    run(active(), &[failed(T0 + 20 * DAY)], &config()).0
}

fn suspended() -> BillingState {
    run(past_due(), &[tick(T0 + 27 * DAY)], &config()).0
}

#[test]
fn a_trial_lasts_14_days_with_the_starter_modules() {
    let (state, effects) = BillingState::start_trial(at(T0), &config());
    assert_eq!(
        state.phase,
        BillingPhase::Trialing {
            ends_at: at(T0 + 14 * DAY),
            notified: false
        }
    );
    assert_eq!(effects, [Effect::EnableModules(starter())]);
    assert_eq!(state.next_deadline(&config()), Some(at(T0 + 11 * DAY)));
}

#[test]
fn trialing_to_active_by_paid_checkout() {
    let (state, effects) = transition(&trial(), &checkout(T0 + DAY, true), &config());
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.customer_id.as_deref(), Some(CUSTOMER));
    assert_eq!(state.subscription_id.as_deref(), Some(SUBSCRIPTION));
    assert_eq!(
        effects,
        [Effect::Notify(BillingNotice::Activated { plan: None })]
    );
}

#[test]
fn an_unpaid_checkout_records_ids_but_stays_in_trial() {
    let (state, effects) = transition(&trial(), &checkout(T0 + DAY, false), &config());
    assert!(matches!(state.phase, BillingPhase::Trialing { .. }));
    assert_eq!(state.subscription_id.as_deref(), Some(SUBSCRIPTION));
    assert!(effects.is_empty());
}

#[test]
fn trialing_to_active_by_subscription_enables_the_plan_modules() {
    let (state, effects) = transition(
        &trial(),
        &changed(T0 + DAY, "active", PRO_MONTHLY),
        &config(),
    );
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.plan.as_ref().unwrap().plan.as_str(), "professional");
    assert_eq!(
        effects,
        [
            Effect::EnableModules(modules(&["api", "reports"])),
            Effect::Notify(BillingNotice::Activated {
                plan: Some(stripe_billing::PlanId::new("professional"))
            }),
        ]
    );
}

#[test]
fn trialing_to_active_by_paid_invoice_but_not_by_the_zero_trial_invoice() {
    let (state, _) = transition(&trial(), &paid(T0 + DAY, 0), &config());
    assert!(matches!(state.phase, BillingPhase::Trialing { .. }));
    let (state, _) = transition(&trial(), &paid(T0 + DAY, 9_900), &config());
    assert_eq!(state.phase, BillingPhase::Active);
}

#[test]
fn the_trial_ending_notice_goes_out_once_three_days_before() {
    let cfg = config();
    let (state, effects) = transition(&trial(), &tick(T0 + 11 * DAY - 1), &cfg);
    assert_eq!((state, effects), (trial(), vec![]));
    let (state, effects) = transition(&trial(), &tick(T0 + 11 * DAY), &cfg);
    assert_eq!(
        effects,
        [Effect::Notify(BillingNotice::TrialEnding {
            ends_at: at(T0 + 14 * DAY)
        })]
    );
    assert_eq!(state.next_deadline(&cfg), Some(at(T0 + 14 * DAY)));
    let (_, again) = transition(&state, &tick(T0 + 12 * DAY), &cfg);
    assert!(again.is_empty());
}

#[test]
fn stripes_trial_will_end_counts_as_the_notice() {
    let input = event(
        T0 + 11 * DAY,
        Kind::TrialWillEnd(snapshot(SUBSCRIPTION, "trialing", STARTER_MONTHLY)),
    );
    let (state, effects) = transition(&trial(), &input, &config());
    assert_eq!(effects.len(), 1);
    let (_, again) = transition(&state, &tick(T0 + 12 * DAY), &config());
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_trial_without_a_plan_ends_suspended_or_as_configured() {
    let (last_second, effects) = run(
        trial(),
        &[tick(T0 + 11 * DAY), tick(T0 + 14 * DAY - 1)],
        &config(),
    );
    assert!(matches!(
        last_second.phase,
        BillingPhase::Trialing { notified: true, .. }
    ));
    assert_eq!(effects.len(), 1, "only the notice: {effects:?}");
    let (state, effects) = run(
        trial(),
        &[tick(T0 + 11 * DAY), tick(T0 + 14 * DAY)],
        &config(),
    );
    assert_eq!(
        state.phase,
        BillingPhase::Suspended {
            reason: SuspendReason::TrialExpired
        }
    );
    assert!(effects.contains(&Effect::DisableModules(starter())));
    assert!(effects.contains(&Effect::Notify(BillingNotice::Suspended {
        reason: SuspendReason::TrialExpired
    })));
    assert_eq!(state.next_deadline(&config()), None);

    let cancel = config().on_trial_end(TrialEndBehaviour::Cancel);
    let (state, _) = transition(&trial(), &tick(T0 + 15 * DAY), &cancel);
    assert_eq!(state.phase, BillingPhase::Cancelled);
}

#[test]
fn a_late_tick_after_the_trial_end_suspends_without_a_stale_notice() {
    let (state, effects) = transition(&trial(), &tick(T0 + 20 * DAY), &config());
    assert!(matches!(state.phase, BillingPhase::Suspended { .. }));
    assert!(!effects
        .iter()
        .any(|e| matches!(e, Effect::Notify(BillingNotice::TrialEnding { .. }))));
}

#[test]
fn a_stripe_trial_with_a_plan_is_not_suspended_by_the_clock() {
    let (state, _) = transition(
        &trial(),
        &changed(T0 + DAY, "trialing", PRO_MONTHLY),
        &config(),
    );
    assert!(state.plan.is_some());
    let (state, _) = run(
        state,
        &[tick(T0 + 11 * DAY), tick(T0 + 15 * DAY)],
        &config(),
    );
    assert!(matches!(state.phase, BillingPhase::Trialing { .. }));
    assert_eq!(state.next_deadline(&config()), None);
}

#[test]
fn active_to_past_due_by_failed_payment_or_status() {
    for input in [
        failed(T0 + 20 * DAY),
        changed(T0 + 20 * DAY, "past_due", STARTER_MONTHLY),
    ] {
        let (state, effects) = transition(&active(), &input, &config());
        let grace_ends_at = at(T0 + 27 * DAY);
        assert_eq!(state.phase, BillingPhase::PastDue { grace_ends_at });
        assert_eq!(
            effects,
            [Effect::Notify(BillingNotice::PaymentFailed {
                grace_ends_at
            })]
        );
        assert_eq!(state.next_deadline(&config()), Some(grace_ends_at));
    }
}

#[test]
fn a_second_failure_does_not_extend_the_grace_period() {
    let (state, effects) = transition(&past_due(), &failed(T0 + 23 * DAY), &config());
    assert_eq!(
        state.phase,
        BillingPhase::PastDue {
            grace_ends_at: at(T0 + 27 * DAY)
        }
    );
    assert!(effects.is_empty());
}

#[test]
fn past_due_to_active_by_payment_keeps_modules_on() {
    let (state, effects) = transition(&past_due(), &paid(T0 + 22 * DAY, 9_900), &config());
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(effects, [Effect::Notify(BillingNotice::PaymentRecovered)]);
}

#[test]
fn past_due_to_suspended_when_the_grace_period_ends() {
    let (state, effects) = transition(&past_due(), &tick(T0 + 27 * DAY - 1), &config());
    assert_eq!((state, effects.len()), (past_due(), 0));
    let (state, effects) = transition(&past_due(), &tick(T0 + 27 * DAY), &config());
    assert_eq!(
        state.phase,
        BillingPhase::Suspended {
            reason: SuspendReason::GracePeriodExpired
        }
    );
    assert_eq!(
        effects,
        [
            Effect::DisableModules(starter()),
            Effect::Notify(BillingNotice::Suspended {
                reason: SuspendReason::GracePeriodExpired
            }),
        ]
    );
}

#[test]
fn suspended_to_active_by_payment_enables_modules_again() {
    for input in [
        paid(T0 + 30 * DAY, 9_900),
        changed(T0 + 30 * DAY, "active", STARTER_MONTHLY),
    ] {
        let (state, effects) = transition(&suspended(), &input, &config());
        assert_eq!(state.phase, BillingPhase::Active);
        assert_eq!(
            effects,
            [
                Effect::EnableModules(starter()),
                Effect::Notify(BillingNotice::PaymentRecovered)
            ]
        );
    }
}

#[test]
fn a_payment_made_before_the_grace_end_but_delivered_after_the_suspension_counts() {
    let (state, _) = transition(&suspended(), &paid(T0 + 26 * DAY, 9_900), &config());
    assert_eq!(state.phase, BillingPhase::Active);
}

#[test]
fn unpaid_and_paused_suspend() {
    let (state, _) = transition(
        &past_due(),
        &changed(T0 + 25 * DAY, "unpaid", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(
        state.phase,
        BillingPhase::Suspended {
            reason: SuspendReason::Unpaid
        }
    );
    let (state, _) = transition(
        &active(),
        &changed(T0 + 25 * DAY, "paused", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(
        state.phase,
        BillingPhase::Suspended {
            reason: SuspendReason::Paused
        }
    );
}

#[test]
fn every_phase_is_cancelled_by_deletion_or_canceled_status() {
    for from in [trial(), active(), past_due(), suspended()] {
        for input in [
            deleted(T0 + 40 * DAY),
            changed(T0 + 40 * DAY, "canceled", STARTER_MONTHLY),
        ] {
            let had = from.enabled_modules(&config());
            let (state, effects) = transition(&from, &input, &config());
            assert_eq!(state.phase, BillingPhase::Cancelled, "{from:?}");
            assert!(effects.contains(&Effect::Notify(BillingNotice::Cancelled)));
            assert_eq!(
                effects.contains(&Effect::DisableModules(had.clone())),
                !had.is_empty()
            );
        }
    }
}

#[test]
fn cancelled_is_terminal_for_that_subscription_but_a_new_one_starts_over() {
    let (cancelled, _) = transition(&active(), &deleted(T0 + 40 * DAY), &config());
    for input in [
        paid(T0 + 41 * DAY, 9_900),
        changed(T0 + 41 * DAY, "active", STARTER_MONTHLY),
        checkout(T0 + 41 * DAY, true),
    ] {
        assert_eq!(transition(&cancelled, &input, &config()).0, cancelled);
    }
    let renewed = event(
        T0 + 50 * DAY,
        Kind::SubscriptionChanged(snapshot("sub_new", "active", PRO_MONTHLY)),
    );
    let (state, effects) = transition(&cancelled, &renewed, &config());
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(state.subscription_id.as_deref(), Some("sub_new"));
    assert!(effects.contains(&Effect::EnableModules(modules(&[
        "api",
        "inventory",
        "reports",
        "sales"
    ]))));
}

#[test]
fn the_end_of_an_old_subscription_does_not_cancel_the_new_one() {
    let moved = event(
        T0 + 30 * DAY,
        Kind::SubscriptionChanged(snapshot("sub_new", "active", PRO_MONTHLY)),
    );
    let (state, _) = transition(&active(), &moved, &config());
    assert_eq!(state.subscription_id.as_deref(), Some("sub_new"));
    let (after, _) = transition(&state, &deleted(T0 + 31 * DAY), &config());
    assert_eq!(after, state);
    let (after, _) = transition(
        &state,
        &changed(T0 + 31 * DAY, "canceled", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(after, state);
}

#[test]
fn upgrades_and_downgrades_switch_modules() {
    let (pro, effects) = transition(
        &active(),
        &changed(T0 + 5 * DAY, "active", PRO_MONTHLY),
        &config(),
    );
    assert_eq!(
        effects,
        [Effect::EnableModules(modules(&["api", "reports"]))]
    );
    let (_, effects) = transition(
        &pro,
        &changed(T0 + 6 * DAY, "active", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(
        effects,
        [Effect::DisableModules(modules(&["api", "reports"]))]
    );
}

#[test]
fn never_returns_to_trialing() {
    let (state, effects) = transition(
        &active(),
        &changed(T0 + 5 * DAY, "trialing", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(state.phase, BillingPhase::Active);
    assert!(effects.is_empty());
}

#[test]
fn older_events_do_not_overwrite_newer_state() {
    // A failure from before the latest payment arrives late.
    let (state, _) = run(
        active(),
        &[failed(T0 + 20 * DAY), paid(T0 + 21 * DAY, 9_900)],
        &config(),
    );
    assert_eq!(
        transition(&state, &failed(T0 + 20 * DAY + 1), &config())
            .0
            .phase,
        BillingPhase::Active
    );
    // An older snapshot (past_due) after a newer one (active).
    let (state, _) = run(
        trial(),
        &[changed(T0 + 5 * DAY, "active", PRO_MONTHLY)],
        &config(),
    );
    let (after, effects) = transition(
        &state,
        &changed(T0 + 4 * DAY, "past_due", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!((after, effects), (state.clone(), vec![]));
    // An older "active" snapshot after a newer payment failure leaves the phase alone.
    let (state, _) = transition(&state, &failed(T0 + 20 * DAY), &config());
    let (after, _) = transition(
        &state,
        &changed(T0 + 19 * DAY, "active", PRO_MONTHLY),
        &config(),
    );
    assert!(matches!(after.phase, BillingPhase::PastDue { .. }));
}

#[test]
fn a_failure_of_the_same_second_never_undoes_a_payment() {
    // `created` has second resolution: a failure and the payment after it may tie.
    let recovered = T0 + 21 * DAY;
    let (state, _) = run(past_due(), &[paid(recovered, 9_900)], &config());
    assert_eq!(state.phase, BillingPhase::Active);
    for late in [
        failed(recovered),
        changed(recovered, "past_due", STARTER_MONTHLY),
        changed(recovered, "unpaid", STARTER_MONTHLY),
    ] {
        let (after, effects) = transition(&state, &late, &config());
        assert_eq!(
            (after.phase, effects),
            (BillingPhase::Active, vec![]),
            "{late:?}"
        );
    }
    // One second later it is a new failure.
    let (later, _) = transition(&state, &failed(recovered + 1), &config());
    assert!(
        matches!(later.phase, BillingPhase::PastDue { .. }),
        "{later:?}"
    );
}

#[test]
fn updated_before_created_ends_in_the_updated_state() {
    let created = changed(T0 + DAY, "incomplete", STARTER_MONTHLY);
    let updated = changed(T0 + DAY + 5, "active", PRO_MONTHLY);
    let in_order = run(trial(), &[created.clone(), updated.clone()], &config()).0;
    let reversed = run(trial(), &[updated, created], &config()).0;
    assert_eq!(in_order.phase, BillingPhase::Active);
    assert_eq!(reversed.phase, in_order.phase);
    assert_eq!(reversed.plan, in_order.plan);
}

#[test]
fn notices_map_onto_the_workspace_notification_kinds() {
    let ends_at = at(T0);
    assert_eq!(
        BillingNotice::TrialEnding { ends_at }.notification_kind(),
        NotificationKind::TrialEnding { ends_at }
    );
    assert_eq!(
        BillingNotice::PaymentFailed {
            grace_ends_at: ends_at
        }
        .notification_kind(),
        NotificationKind::PaymentFailed {
            grace_ends_at: ends_at
        }
    );
    assert_eq!(
        BillingNotice::Cancelled.notification_kind(),
        NotificationKind::Cancelled
    );
    assert_eq!(
        BillingNotice::Suspended {
            reason: SuspendReason::Unpaid
        }
        .notification_kind(),
        NotificationKind::Suspended
    );
    assert!(matches!(
        BillingNotice::PaymentRecovered.notification_kind(),
        NotificationKind::Other(_)
    ));
}

#[test]
fn durations_are_configuration() {
    let cfg = config()
        .trial_length(Duration::days(30))
        .grace_period(Duration::days(2))
        .trial_notice(Duration::days(1));
    let (state, _) = BillingState::start_trial(at(T0), &cfg);
    assert_eq!(
        state.phase,
        BillingPhase::Trialing {
            ends_at: at(T0 + 30 * DAY),
            notified: false
        }
    );
    assert_eq!(state.next_deadline(&cfg), Some(at(T0 + 29 * DAY)));
    let (state, _) = run(
        state,
        &[
            changed(T0 + DAY, "active", STARTER_MONTHLY),
            failed(T0 + 2 * DAY),
        ],
        &cfg,
    );
    assert_eq!(
        state.phase,
        BillingPhase::PastDue {
            grace_ends_at: at(T0 + 4 * DAY)
        }
    );
}

// ---- properties ----

const STATUSES: [&str; 9] = [
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
    "mystery",
];
const SUBS: [&str; 2] = [SUBSCRIPTION, "sub_other"];
const PRICES: [&str; 3] = [STARTER_MONTHLY, PRO_MONTHLY, "price_unknown"];

fn any_input() -> impl Strategy<Value = LifecycleInput> {
    let time = T0 - DAY..T0 + 60 * DAY;
    let sub = || prop::sample::select(&SUBS[..]);
    let snap = (
        sub(),
        prop::sample::select(&STATUSES[..]),
        prop::sample::select(&PRICES[..]),
    )
        .prop_map(|(id, status, price)| snapshot(id, status, price));
    prop_oneof![
        time.clone().prop_map(tick),
        (time.clone(), snap.clone()).prop_map(|(t, s)| event(t, Kind::SubscriptionChanged(s))),
        (time.clone(), snap.clone()).prop_map(|(t, s)| event(t, Kind::SubscriptionDeleted(s))),
        (time.clone(), snap).prop_map(|(t, s)| event(t, Kind::TrialWillEnd(s))),
        (time.clone(), sub(), 0..20_000i64).prop_map(|(t, id, amount)| event(
            t,
            Kind::PaymentSucceeded {
                subscription_id: id.into(),
                customer_id: None,
                amount_paid: amount,
            }
        )),
        (time.clone(), sub()).prop_map(|(t, id)| event(
            t,
            Kind::PaymentFailed {
                subscription_id: id.into(),
                customer_id: None
            }
        )),
        (time, prop::option::of(sub()), any::<bool>()).prop_map(|(t, id, paid)| event(
            t,
            Kind::CheckoutCompleted {
                customer_id: Some(CUSTOMER.into()),
                subscription_id: id.map(str::to_owned),
                paid,
            }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::proptest_cases(256)))]

    /// No sequence panics; effects always describe exactly how the enabled modules
    /// change; the event times guarding order only move forward; a tenant that left
    /// its trial never returns to it; the state survives a store round trip.
    #[test]
    fn any_input_sequence_keeps_the_invariants(inputs in prop::collection::vec(any_input(), 0..40)) {
        let cfg = config();
        let (mut state, effects) = BillingState::start_trial(at(T0), &cfg);
        let mut enabled = BTreeSet::new();
        let apply_effects = |effects: &[Effect], enabled: &mut BTreeSet<Module>| {
            for effect in effects {
                match effect {
                    Effect::EnableModules(m) => { prop_assert!(m.is_disjoint(enabled)); enabled.extend(m.iter().cloned()) }
                    Effect::DisableModules(m) => { prop_assert!(m.is_subset(enabled)); enabled.retain(|x| !m.contains(x)) }
                    _ => {}
                }
            }
            Ok(())
        };
        apply_effects(&effects, &mut enabled)?;
        let mut left_trial = false;
        for input in &inputs {
            let (new, effects) = transition(&state, input, &cfg);
            apply_effects(&effects, &mut enabled)?;
            prop_assert_eq!(&enabled, &new.enabled_modules(&cfg));
            prop_assert!(new.phase_as_of >= state.phase_as_of);
            prop_assert!(new.subscription_as_of >= state.subscription_as_of);
            let trialing = matches!(new.phase, BillingPhase::Trialing { .. });
            left_trial |= !trialing;
            prop_assert!(!(left_trial && trialing), "returned to the trial: {:?}", new);
            let json = serde_json::to_string(&new).unwrap();
            prop_assert_eq!(&serde_json::from_str::<BillingState>(&json).unwrap(), &new);
            state = new;
        }
    }

    /// Subscription snapshots of one subscription delivered in any order end with the
    /// newest snapshot's plan, and with its phase when that phase does not depend on history.
    #[test]
    fn snapshot_order_does_not_change_the_outcome(
        mut snapshots in prop::collection::vec(
            (prop::sample::select(&STATUSES[..5]), prop::sample::select(&PRICES[..2])), 1..8),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        // Stripe ends a subscription last: keep `canceled` only as the newest snapshot.
        let last = snapshots.len() - 1;
        for (status, _) in &mut snapshots[..last] {
            if *status == "canceled" { *status = "active"; }
        }
        let inputs: Vec<LifecycleInput> = snapshots.iter().enumerate()
            .map(|(i, (status, price))| changed(T0 + i as i64 * 3600, status, price))
            .collect();
        let mut shuffled = inputs.clone();
        let mut seed = order;
        for i in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let cfg = config();
        let sorted = run(trial(), &inputs, &cfg).0;
        let any = run(trial(), &shuffled, &cfg).0;
        prop_assert_eq!(&any.plan, &sorted.plan);
        prop_assert_eq!(any.subscription_as_of, sorted.subscription_as_of);
        let newest = snapshots[last].0;
        if newest == "active" || newest == "canceled" {
            prop_assert_eq!(&any.phase, &sorted.phase);
        }
    }
}

#[test]
fn status_values_outside_the_enum_change_nothing() {
    let (state, effects) = transition(
        &active(),
        &changed(T0 + 5 * DAY, "mystery", STARTER_MONTHLY),
        &config(),
    );
    assert_eq!(state.phase, BillingPhase::Active);
    assert!(effects.is_empty());
    assert_eq!(
        snapshot(SUBSCRIPTION, "mystery", STARTER_MONTHLY).status,
        SubscriptionStatus::Unknown("mystery".into())
    );
}

#[test]
fn paying_after_an_expired_trial_is_an_activation() {
    let (expired, _) = transition(&trial(), &tick(T0 + 15 * DAY), &config());
    let (state, effects) = transition(&expired, &checkout(T0 + 16 * DAY, true), &config());
    assert_eq!(state.phase, BillingPhase::Active);
    assert_eq!(
        effects,
        [
            Effect::EnableModules(starter()),
            Effect::Notify(BillingNotice::Activated { plan: None }),
        ]
    );
}
