use std::fmt;
use std::sync::Arc;

use tenancy_core::{BackendError, TenantDirectory, TenantId, TenantIdError};
use time::OffsetDateTime;

use super::{
    BillingStore, DirectoryTenantLookup, StateUpdate, StoreError, SubscriptionSource, TenantLookup,
    Transacted,
};
use crate::{
    transition, BillingEvent, BillingEventKind, BillingPhase, BillingState, Effect, Event,
    EventType, LifecycleConfig, LifecycleInput, SubscriptionSnapshot,
};

/// What processing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessOutcome {
    /// The event changed the tenant's state; the effects are also queued in the store's outbox.
    Applied {
        /// The tenant.
        tenant_id: TenantId,
        /// The tenant's phase after the event.
        phase: BillingPhase,
        /// What the host must do.
        effects: Vec<Effect>,
    },
    /// The event was recorded but changed nothing (it was older than the state, or a no-op).
    Unchanged {
        /// The tenant.
        tenant_id: TenantId,
    },
    /// The event was processed before: nothing was done.
    AlreadyProcessed {
        /// The tenant.
        tenant_id: TenantId,
    },
    /// The event does not concern a subscription's lifecycle (another type, a one-time
    /// Checkout, an invoice without a subscription). Nothing was done.
    Ignored {
        /// The event's type.
        event_type: EventType,
    },
    /// No tenant could be found for the event: nothing was recorded, so a later delivery
    /// (Stripe retries for three days if the host answers with an error) is processed in full.
    UnknownTenant {
        /// The customer the event concerns, if any.
        customer_id: Option<String>,
    },
    /// The event names a tenant that the processor's
    /// [tenant lookup](BillingProcessor::with_tenant_lookup) does not know (another
    /// environment's tenant, when one Stripe account delivers to several): no billing
    /// state was given to it. The event id is recorded as processed, so neither
    /// Stripe's retries nor a reconciliation apply it later, to a tenant signing up
    /// under the same id. Answer Stripe with a success: the event is not this
    /// service's, and a retry cannot change that.
    TenantNotInDirectory {
        /// The tenant the event names.
        tenant_id: TenantId,
        /// The event's type.
        event_type: EventType,
    },
}

/// Why an event (or a tick) could not be processed. Nothing was changed; retrying is safe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The event names a tenant (`client_reference_id` or `metadata.tenant_id`) that is not a valid tenant id.
    #[error(
        "event {event_id} names tenant `{value}`, which is not a valid tenant id: {source}; \
         set client_reference_id or metadata.tenant_id to the tenant id when creating Stripe objects"
    )]
    InvalidTenantReference {
        /// The event.
        event_id: String,
        /// The value found.
        value: String,
        /// Why it is invalid.
        #[source]
        source: TenantIdError,
    },
    /// The tenant lookup could not tell whether the event's tenant exists.
    #[error(
        "could not check whether tenant `{tenant_id}` of event {event_id} exists: {source}; \
         nothing was applied: check that the tenant directory's database is reachable, \
         Stripe delivers the event again"
    )]
    TenantLookup {
        /// The event.
        event_id: String,
        /// The tenant it names.
        tenant_id: TenantId,
        /// The lookup's error.
        #[source]
        source: BackendError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProcessError {
    /// Whether processing the event again later may succeed without anyone fixing
    /// anything (the store or the tenant lookup failed in a way that may clear).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidTenantReference { .. } => false,
            Self::TenantLookup { source, .. } => source.is_retryable(),
            Self::Store(error) => matches!(error, StoreError::Database(_)),
        }
    }
}

/// One tenant changed by a [`BillingProcessor::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TickOutcome {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its phase after the tick.
    pub phase: BillingPhase,
    /// What the host must do (also queued in the outbox).
    pub effects: Vec<Effect>,
}

/// What a [`BillingProcessor::tick`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TickReport {
    /// The tenants whose state changed.
    pub changed: Vec<TickOutcome>,
    /// The tenants that could not be updated (the others were).
    pub failed: Vec<(TenantId, StoreError)>,
}

/// Applies verified Stripe events to tenants' billing state: idempotently (an event id
/// is applied once, recorded in the same transaction as the change) and order-safely
/// (see [`transition`](crate::transition)).
///
/// The tenant comes from the object's `client_reference_id` or `metadata.tenant_id`,
/// else from the customer → tenant mapping the store learnt from earlier events.
/// With a [tenant lookup](Self::with_tenant_lookup), an event whose tenant the lookup
/// does not know is recorded and left alone
/// ([`ProcessOutcome::TenantNotInDirectory`]); without one, every tenant an event
/// names is taken to exist.
#[derive(Clone)]
pub struct BillingProcessor {
    store: Arc<dyn BillingStore>,
    config: Arc<LifecycleConfig>,
    source: Option<Arc<dyn SubscriptionSource>>,
    tenants: Option<Arc<dyn TenantLookup>>,
}

impl fmt::Debug for BillingProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingProcessor")
            .field("store", &self.store)
            .field("source", &self.source)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl BillingProcessor {
    /// A processor over `store` with `config`.
    pub fn new(store: Arc<dyn BillingStore>, config: LifecycleConfig) -> Self {
        Self {
            store,
            config: Arc::new(config),
            source: None,
            tenants: None,
        }
    }

    /// Re-reads subscriptions from `source` before applying subscription events.
    #[must_use]
    pub fn with_subscription_source(mut self, source: Arc<dyn SubscriptionSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Applies events only to tenants that `tenants` knows: an event naming another
    /// tenant is acknowledged and recorded, and gives that tenant no billing state
    /// ([`ProcessOutcome::TenantNotInDirectory`]). Use it when one Stripe account's
    /// webhooks reach several environments (staging and production).
    #[must_use]
    pub fn with_tenant_lookup(mut self, tenants: Arc<dyn TenantLookup>) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// [`with_tenant_lookup`](Self::with_tenant_lookup) over tenancy-core's tenant
    /// directory: a tenant exists while the directory has its record, whatever its
    /// status (offboarded and deleted tenants keep theirs, and their billing goes on
    /// through the state machine as before).
    #[must_use]
    pub fn with_tenant_directory(self, directory: Arc<dyn TenantDirectory>) -> Self {
        self.with_tenant_lookup(Arc::new(DirectoryTenantLookup::new(directory)))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BillingStore> {
        &self.store
    }

    /// The lifecycle configuration.
    pub fn config(&self) -> &LifecycleConfig {
        &self.config
    }

    /// A tenant's billing state.
    pub async fn state(&self, tenant_id: &TenantId) -> Result<Option<BillingState>, StoreError> {
        self.store.load(tenant_id).await
    }

    /// Starts a tenant's trial at `now` (at signup). Does nothing if the tenant already
    /// has a billing state; returns the effects queued (the trial plan's modules).
    pub async fn start_trial(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<Effect>, StoreError> {
        let mut effects = Vec::new();
        let config = &self.config;
        self.store
            .transact(tenant_id, None, &mut |current| {
                if current.is_some() {
                    return None;
                }
                let (state, started) = BillingState::start_trial(now, config);
                effects.clone_from(&started);
                Some(state_update(state, started, config))
            })
            .await?;
        Ok(effects)
    }

    /// Processes a verified event.
    pub async fn process(&self, event: &Event) -> Result<ProcessOutcome, ProcessError> {
        Ok(self.process_linking(event).await?.0)
    }

    /// [`process`](Self::process), also answering the Stripe customer that applying the
    /// event linked to its tenant, if the tenant's state did not name it before: only
    /// then can events parked for that customer have found their tenant.
    pub(super) async fn process_linking(
        &self,
        event: &Event,
    ) -> Result<(ProcessOutcome, Option<String>), ProcessError> {
        let Some(mut input) = BillingEvent::from_event(event) else {
            let event_type = event.event_type.clone();
            return Ok((ProcessOutcome::Ignored { event_type }, None));
        };
        let Some(tenant_id) = self.resolve_tenant(event).await? else {
            tracing::warn!(event = %event.id, customer = ?event.customer_id(), "no tenant for billing event");
            let customer_id = event.customer_id().map(str::to_owned);
            return Ok((ProcessOutcome::UnknownTenant { customer_id }, None));
        };
        if !self.tenant_exists(event, &tenant_id).await? {
            return Ok((self.set_aside(event, tenant_id).await?, None));
        }
        self.refresh_subscription(&mut input).await;
        let (transacted, outcome, linked) = self
            .transact_input(
                &tenant_id,
                Some(&event.id),
                &LifecycleInput::Event(input),
                Some(event.created),
            )
            .await?;
        let outcome = match (transacted, outcome) {
            (Transacted::Duplicate, _) => ProcessOutcome::AlreadyProcessed { tenant_id },
            (_, Some((phase, effects))) => ProcessOutcome::Applied {
                tenant_id,
                phase,
                effects,
            },
            (_, None) => ProcessOutcome::Unchanged { tenant_id },
        };
        let linked = linked.filter(|_| transacted == Transacted::Committed);
        Ok((outcome, linked))
    }

    /// Applies clock-driven transitions (trial notices, trial ends, grace period ends)
    /// to every tenant due at `now`. Run it on a schedule (every few minutes).
    pub async fn tick(&self, now: OffsetDateTime) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        for tenant_id in self.store.due(now).await? {
            match self.tick_tenant(&tenant_id, now).await {
                Ok(Some((phase, effects))) => report.changed.push(TickOutcome {
                    tenant_id,
                    phase,
                    effects,
                }),
                Ok(None) => {}
                Err(error) => report.failed.push((tenant_id, error)),
            }
        }
        Ok(report)
    }

    async fn tick_tenant(
        &self,
        tenant_id: &TenantId,
        now: OffsetDateTime,
    ) -> Result<Option<(BillingPhase, Vec<Effect>)>, StoreError> {
        let (_, outcome, _) = self
            .transact_input(tenant_id, None, &LifecycleInput::Tick(now), None)
            .await?;
        Ok(outcome)
    }

    /// Applies `input` to the tenant in one store transaction (recording `event_id`), and
    /// returns what the store did, if the state changed the new phase and the effects,
    /// and the Stripe customer the written state names if the tenant's did not name it.
    /// A tenant without a state starts a trial at `trial_start`, or is left alone if `None`.
    async fn transact_input(
        &self,
        tenant_id: &TenantId,
        event_id: Option<&str>,
        input: &LifecycleInput,
        trial_start: Option<OffsetDateTime>,
    ) -> Result<
        (
            Transacted,
            Option<(BillingPhase, Vec<Effect>)>,
            Option<String>,
        ),
        StoreError,
    > {
        let config = &self.config;
        let mut outcome = None;
        let mut linked = None;
        let transacted = self
            .store
            .transact(tenant_id, event_id, &mut |current| {
                let customer_before = current.as_ref().and_then(|s| s.customer_id.clone());
                linked = None;
                let update = match (current, trial_start) {
                    (Some(state), _) => match apply(&state, input, config) {
                        None if matches!(input, LifecycleInput::Tick(_)) => {
                            // Nothing to do, yet the tenant was due: the configuration moved
                            // its deadline. Store the new one so it leaves the due set.
                            outcome = None;
                            return Some(state_update(state, Vec::new(), config));
                        }
                        changed => changed,
                    },
                    (None, Some(start)) => Some(apply_to_new_tenant(start, input, config)),
                    (None, None) => None,
                };
                outcome = update
                    .as_ref()
                    .map(|u| (u.state.phase.clone(), u.effects.clone()));
                linked = update
                    .as_ref()
                    .and_then(|u| u.state.customer_id.clone())
                    .filter(|customer| customer_before.as_ref() != Some(customer));
                update
            })
            .await?;
        Ok((transacted, outcome, linked))
    }

    /// Whether the tenant lookup (if any) knows `tenant_id`.
    async fn tenant_exists(
        &self,
        event: &Event,
        tenant_id: &TenantId,
    ) -> Result<bool, ProcessError> {
        let Some(tenants) = &self.tenants else {
            return Ok(true);
        };
        tenants
            .tenant_exists(tenant_id)
            .await
            .map_err(|source| ProcessError::TenantLookup {
                event_id: event.id.clone(),
                tenant_id: tenant_id.clone(),
                source,
            })
    }

    /// Records an event for a tenant the lookup does not know as processed, changing
    /// no state (so that it never applies later, to a tenant signing up under the
    /// same id), and answers what was done.
    async fn set_aside(
        &self,
        event: &Event,
        tenant_id: TenantId,
    ) -> Result<ProcessOutcome, ProcessError> {
        let transacted = self
            .store
            .transact(&tenant_id, Some(&event.id), &mut |_| None)
            .await?;
        if transacted == Transacted::Duplicate {
            return Ok(ProcessOutcome::AlreadyProcessed { tenant_id });
        }
        tracing::warn!(
            event = %event.id,
            event_type = %event.event_type,
            tenant = %tenant_id,
            "Stripe event for a tenant that is not in the tenant directory (another environment's?): acknowledged and ignored, no billing state given"
        );
        Ok(ProcessOutcome::TenantNotInDirectory {
            tenant_id,
            event_type: event.event_type.clone(),
        })
    }

    async fn resolve_tenant(&self, event: &Event) -> Result<Option<TenantId>, ProcessError> {
        if let Some(declared) = event.declared_tenant() {
            return TenantId::new(declared).map(Some).map_err(|source| {
                ProcessError::InvalidTenantReference {
                    event_id: event.id.clone(),
                    value: declared.to_owned(),
                    source,
                }
            });
        }
        match event.customer_id() {
            Some(customer_id) => Ok(self.store.tenant_for_customer(customer_id).await?),
            None => Ok(None),
        }
    }

    /// Replaces a subscription event's snapshot with Stripe's current one, if a source is set.
    async fn refresh_subscription(&self, input: &mut BillingEvent) {
        let Some(source) = &self.source else { return };
        let (BillingEventKind::SubscriptionChanged(snapshot)
        | BillingEventKind::TrialWillEnd(snapshot)) = &mut input.kind
        else {
            return;
        };
        match source.subscription(&snapshot.id).await {
            Ok(current) => *snapshot = SubscriptionSnapshot::from(&current),
            Err(error) => {
                tracing::warn!(subscription = %snapshot.id, %error, "could not re-read subscription; using the event's copy");
            }
        }
    }
}

/// Onboarding's billing step: starts the tenant's trial ([`BillingProcessor::start_trial`],
/// which leaves a tenant that has a billing state as it is).
#[async_trait::async_trait]
impl tenancy_core::BillingStarter for BillingProcessor {
    async fn start_billing(
        &self,
        tenant: &TenantId,
        now: OffsetDateTime,
    ) -> Result<(), tenancy_core::BackendError> {
        match self.start_trial(tenant, now).await {
            Ok(_) => Ok(()),
            Err(error @ StoreError::Database(_)) => {
                Err(tenancy_core::BackendError::transient(error))
            }
            Err(error) => Err(tenancy_core::BackendError::permanent(error)),
        }
    }
}

/// Runs the state machine on the tenant's state and returns the update to write, or
/// `None` if nothing changed.
fn apply(
    state: &BillingState,
    input: &LifecycleInput,
    config: &LifecycleConfig,
) -> Option<StateUpdate> {
    let (new_state, effects) = transition(state, input, config);
    if &new_state == state && effects.is_empty() {
        return None;
    }
    Some(state_update(new_state, effects, config))
}

/// For a tenant without a state (no trial was started for it): starts a trial at
/// `trial_start`, applies `input`, and describes the modules from nothing enabled.
fn apply_to_new_tenant(
    trial_start: OffsetDateTime,
    input: &LifecycleInput,
    config: &LifecycleConfig,
) -> StateUpdate {
    let (trial, _) = BillingState::start_trial(trial_start, config);
    let (new_state, effects) = transition(&trial, input, config);
    let modules = new_state.enabled_modules(config);
    let enable = (!modules.is_empty()).then_some(Effect::EnableModules(modules));
    let notices = effects
        .into_iter()
        .filter(|e| matches!(e, Effect::Notify(_)));
    state_update(
        new_state,
        enable.into_iter().chain(notices).collect(),
        config,
    )
}

/// The update that writes `state` with its next clock deadline and queues `effects`.
pub(crate) fn state_update(
    state: BillingState,
    effects: Vec<Effect>,
    config: &LifecycleConfig,
) -> StateUpdate {
    let due_at = state.next_deadline(config);
    StateUpdate::new(state, due_at, effects)
}
