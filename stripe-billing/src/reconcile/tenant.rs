//! Moving one tenant to match Stripe's subscription, through the state machine.

use tenancy_core::TenantId;
use time::OffsetDateTime;

use super::TenantReconciliation;
use crate::processor::state_update;
use crate::{
    transition, BillingEvent, BillingEventKind, BillingProcessor, BillingState, Effect,
    LifecycleInput, StoreError, Subscription, SubscriptionSnapshot, SubscriptionStatus,
};

impl BillingProcessor {
    /// Applies `subscription`, as Stripe has it at `now`, to the tenant's state as a
    /// subscription change (the path of `customer.subscription.updated`), in one store
    /// transaction. When that changes the tenant's standing (phase, plan, Stripe ids),
    /// the machine's effects are queued with [`Effect::Reconciled`]; otherwise nothing
    /// is written. `None` when the tenant has no billing state.
    pub(crate) async fn reconcile_subscription(
        &self,
        tenant_id: &TenantId,
        subscription: &Subscription,
        now: OffsetDateTime,
    ) -> Result<Option<TenantReconciliation>, StoreError> {
        let config = self.config();
        let snapshot = SubscriptionSnapshot::from(subscription);
        let stripe_status = subscription.status.clone();
        let input = LifecycleInput::Event(BillingEvent::new(
            now,
            BillingEventKind::SubscriptionChanged(snapshot),
        ));
        let mut outcome = None;
        self.store()
            .transact(tenant_id, None, &mut |current| {
                let state = current?;
                let (new_state, mut effects) = transition(&state, &input, config);
                if same_standing(&state, &new_state) {
                    outcome = Some(TenantReconciliation::Unchanged {
                        phase: state.phase.clone(),
                        subscription_id: subscription.id.clone(),
                        stripe_status: stripe_status.clone(),
                    });
                    return None;
                }
                effects.push(Effect::Reconciled {
                    from: state.phase.clone(),
                    to: new_state.phase.clone(),
                    stripe_status: stripe_status.clone(),
                });
                outcome = Some(TenantReconciliation::Moved {
                    from: state.phase.clone(),
                    to: new_state.phase.clone(),
                    subscription_id: subscription.id.clone(),
                    stripe_status: stripe_status.clone(),
                    effects: effects.clone(),
                });
                Some(state_update(new_state, effects, config))
            })
            .await?;
        Ok(outcome)
    }
}

/// Whether two states give the tenant the same standing: the times that guard event
/// order may differ.
fn same_standing(old: &BillingState, new: &BillingState) -> bool {
    old.phase == new.phase
        && old.plan == new.plan
        && old.customer_id == new.customer_id
        && old.subscription_id == new.subscription_id
}

/// Whether Stripe will never bill a subscription in this status again.
fn is_terminal(status: &SubscriptionStatus) -> bool {
    matches!(
        status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    )
}

/// The subscription the tenant's state should follow among its customer's: the one
/// the state names, else the most recent; a live subscription created after a
/// terminal current one replaces it (the customer subscribed again).
pub(super) fn current_subscription<'a>(
    state: &BillingState,
    subscriptions: &'a [Subscription],
) -> Option<&'a Subscription> {
    let newest = subscriptions.iter().max_by_key(|s| s.created);
    let named = state
        .subscription_id
        .as_deref()
        .and_then(|id| subscriptions.iter().find(|s| s.id == id));
    let Some(named) = named else {
        return newest;
    };
    if !is_terminal(&named.status) {
        return Some(named);
    }
    let newer_live = subscriptions
        .iter()
        .filter(|s| s.created > named.created && !is_terminal(&s.status))
        .max_by_key(|s| s.created);
    Some(newer_live.unwrap_or(named))
}
