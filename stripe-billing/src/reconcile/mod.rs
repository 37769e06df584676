//! Reconciliation: reading Stripe's own record back, so that webhooks that never
//! arrived (an endpoint down for longer than Stripe's three days of retries, a
//! signing secret rotated without the endpoint, a handler that failed) still reach
//! the tenants' billing state.

mod source;
mod tenant;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use tenancy_core::{BackendError, Clock, SystemClock, TenantId};
use time::{Duration, OffsetDateTime};

pub use source::{EventSummary, ListEvents, StripeEvents, MAX_PAGE_LIMIT};

use crate::{
    BillingPhase, BillingProcessor, Effect, Event, ProcessError, ProcessOutcome, ReconcileCursor,
    StoreError, SubscriptionStatus,
};

/// How long Stripe keeps events: the events list answers for the last 30 days only,
/// so reconciliation never looks further back.
pub const EVENT_RETENTION: Duration = Duration::days(30);

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Events of the handled types that Stripe listed in the window.
    pub events_seen: usize,
    /// Events processed for the first time now (they were missed): applied, or
    /// recorded without a change.
    pub events_applied: usize,
    /// Events that had been processed before (by a webhook, or an earlier run):
    /// nothing was done with them.
    pub duplicates: usize,
    /// Tenants whose state was moved to match Stripe's subscription.
    pub tenants_reconciled: usize,
}

impl ReconcileReport {
    /// Whether anything changed, so that queued effects wait in the outbox.
    pub fn changed_anything(&self) -> bool {
        self.events_applied > 0 || self.tenants_reconciled > 0
    }
}

/// What [`Reconciler::reconcile_tenant`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantReconciliation {
    /// The tenant's state disagreed with Stripe's subscription and was moved to
    /// match it through the state machine; the effects (with [`Effect::Reconciled`])
    /// are queued in the outbox.
    Moved {
        /// The phase before.
        from: BillingPhase,
        /// The phase after.
        to: BillingPhase,
        /// The subscription followed.
        subscription_id: String,
        /// Its status at Stripe.
        stripe_status: SubscriptionStatus,
        /// What the host must do (also queued).
        effects: Vec<Effect>,
    },
    /// The state machine leaves the state as it is: it already matches Stripe's
    /// subscription, or the subscription's status does not move it (a `trialing`
    /// status never takes a tenant back into a trial; a cancelled subscription stays
    /// cancelled). Nothing was written.
    Unchanged {
        /// The tenant's phase.
        phase: BillingPhase,
        /// The subscription compared with.
        subscription_id: String,
        /// Its status at Stripe.
        stripe_status: SubscriptionStatus,
    },
    /// The tenant has no Stripe customer yet (a trial that never reached Checkout):
    /// there is nothing at Stripe to compare with.
    NoCustomer,
    /// Stripe has no subscription for the tenant's customer.
    NoSubscription {
        /// The customer.
        customer_id: String,
    },
}

/// Why a reconciliation stopped. Everything applied before the failure stays
/// applied and the cursor marks it: running again resumes there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// Stripe could not be read (after the client's own retries).
    #[error(
        "could not read {what} from Stripe: {source}; nothing after the last applied event \
         changed: run the reconciliation again once Stripe answers (it resumes from its cursor), \
         or check the secret key if Stripe refused it"
    )]
    Stripe {
        /// What was being read (`the events list`, `event evt_…`, `the subscriptions of cus_…`).
        what: String,
        /// The source's error.
        #[source]
        source: BackendError,
    },
    /// The billing store failed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The tenant has no billing state.
    #[error(
        "tenant `{0}` has no billing state; it starts when onboarding finishes, \
         so there is nothing to reconcile yet"
    )]
    NoBillingState(TenantId),
}

impl ReconcileError {
    fn stripe(what: impl Into<String>, source: BackendError) -> Self {
        Self::Stripe {
            what: what.into(),
            source,
        }
    }

    /// Whether running again later may pass: Stripe or the store failed in a way
    /// that may clear.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Stripe { source, .. } => source.is_retryable(),
            Self::Process(error) => error.is_retryable(),
            _ => false,
        }
    }
}

impl From<StoreError> for ReconcileError {
    fn from(error: StoreError) -> Self {
        Self::Process(ProcessError::Store(error))
    }
}

/// Heals the billing state from Stripe's own record: missed webhooks are read back
/// from Stripe's events list ([`reconcile`](Self::reconcile)), and one tenant's state
/// can be checked against its subscription ([`reconcile_tenant`](Self::reconcile_tenant)).
///
/// Events go through [`BillingProcessor::process_webhook`], the webhooks' own path:
/// applied once by event id (an event a webhook already applied changes nothing),
/// parked when its tenant is not known yet, never moving a tenant backwards.
///
/// **Stripe keeps events for 30 days** ([`EVENT_RETENTION`]): a window that starts
/// earlier is cut to the last 30 days, and what happened before can only be healed
/// tenant by tenant with [`reconcile_tenant`](Self::reconcile_tenant).
///
/// One reconciliation runs at a time per `Reconciler` (clones share the turn); a
/// second call waits for the first. Running several processes at once is safe too:
/// each event applies once and the cursor never moves back.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use stripe_billing::{
///     BillingProcessor, EventSummary, LifecycleConfig, List, ListEvents, MemoryBillingStore,
///     PlanCatalog, PricingPlan, Reconciler, StripeEvents, Subscription,
/// };
/// use tenancy_core::BackendError;
///
/// /// A Stripe account with no events (a real host passes its `StripeClient`).
/// #[derive(Debug)]
/// struct Quiet;
///
/// #[async_trait]
/// impl StripeEvents for Quiet {
///     async fn list_events(&self, _: &ListEvents) -> Result<List<EventSummary>, BackendError> {
///         Ok(List::new(Vec::new(), false))
///     }
///     async fn event(&self, id: &str) -> Result<String, BackendError> {
///         Err(BackendError::permanent(std::io::Error::other(format!("no event {id}"))))
///     }
///     async fn customer_subscriptions(&self, _: &str) -> Result<Vec<Subscription>, BackendError> {
///         Ok(Vec::new())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let catalog = PlanCatalog::new([PricingPlan::new("starter", "Starter").monthly("price_s_m", 9_900)])?;
/// let processor = BillingProcessor::new(Arc::new(MemoryBillingStore::new()), LifecycleConfig::new(catalog));
/// let reconciler = Reconciler::new(processor, Arc::new(Quiet));
/// let report = reconciler.reconcile(None).await?; // from the cursor, or 30 days back
/// assert_eq!(report.events_applied, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Reconciler {
    processor: BillingProcessor,
    source: Arc<dyn StripeEvents>,
    clock: Arc<dyn Clock>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("processor", &self.processor)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One event of the window, as kept while the list is walked.
#[derive(Debug)]
struct Listed {
    id: String,
    created: OffsetDateTime,
    /// Processed before the walk: it is not read again.
    processed: bool,
}

impl Reconciler {
    /// Reconciles `processor`'s tenants with what `source` reads from Stripe.
    pub fn new(processor: BillingProcessor, source: Arc<dyn StripeEvents>) -> Self {
        Self {
            processor,
            source,
            clock: Arc::new(SystemClock),
            turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Uses `clock` for the 30-day limit and parking times (default the system clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The processor events are applied through.
    pub fn processor(&self) -> &BillingProcessor {
        &self.processor
    }

    /// Applies the handled events Stripe created since `since` that were not
    /// processed yet, oldest first, through the webhooks' path.
    ///
    /// `since`: `None` resumes from the stored cursor (or starts 30 days back when
    /// there is none); a time reads from there. Either way the window starts no
    /// earlier than 30 days ago, where Stripe's record ends.
    ///
    /// Stripe lists newest first, so the events list is walked to its end first
    /// (`GET /v1/events` with `types[]`, `created[gte]`, `limit=100` and
    /// `starting_after`), keeping only each event's id and time and whether it was
    /// processed; then the others are read one by one and applied oldest first, the
    /// cursor moving after each. An interruption (Stripe failing, the store failing,
    /// the process stopping) leaves everything before it applied and the cursor on
    /// the last applied event: the next run starts there and applies nothing twice.
    pub async fn reconcile(
        &self,
        since: Option<OffsetDateTime>,
    ) -> Result<ReconcileReport, ReconcileError> {
        let _turn = self.turn.lock().await;
        let store = self.processor.store();
        let now = self.clock.now();
        let cursor = store.reconcile_cursor().await?;
        let oldest = now.saturating_sub(EVENT_RETENTION);
        let mut start = match (since, &cursor) {
            (Some(since), _) => since,
            (None, Some(cursor)) => cursor.created,
            (None, None) => oldest,
        };
        if start < oldest {
            if since.is_some() || cursor.is_some() {
                tracing::warn!(
                    from = %start,
                    "Stripe keeps events for 30 days: reconciling from 30 days ago; \
                     reconcile tenants one by one to heal anything older"
                );
            }
            start = oldest;
        }
        let mut report = ReconcileReport::default();
        let mut listed = self.list(start, &mut report).await?;
        if since.is_none() {
            if let Some(cursor) = &cursor {
                // Listed again by `created[gte]`; applied by the run that stored it.
                for entry in listed.iter_mut().filter(|e| e.id == cursor.event_id) {
                    entry.processed = true;
                }
            }
        }
        let result = self.apply(&listed, now, &mut report).await;
        if report.changed_anything() || result.is_err() {
            tracing::info!(
                ?report,
                ok = result.is_ok(),
                "reconciled billing with Stripe's events"
            );
        }
        result.map(|()| report)
    }

    /// Walks the events list from newest to `start`, and answers its events oldest first.
    async fn list(
        &self,
        start: OffsetDateTime,
        report: &mut ReconcileReport,
    ) -> Result<Vec<Listed>, ReconcileError> {
        let store = self.processor.store();
        let mut query = ListEvents::handled_since(start);
        let mut listed = Vec::new();
        loop {
            let page = self
                .source
                .list_events(&query)
                .await
                .map_err(|e| ReconcileError::stripe("the events list", e))?;
            report.events_seen += page.data.len();
            let ids: Vec<String> = page.data.iter().map(|e| e.id.clone()).collect();
            let processed = store.processed_events(&ids).await?;
            let last = ids.last().cloned();
            listed.extend(page.data.into_iter().map(|event| Listed {
                processed: processed.contains(&event.id),
                id: event.id,
                created: event.created,
            }));
            match last {
                Some(last) if page.has_more => query = query.after(last),
                _ => break,
            }
        }
        // Newest first → oldest first; the sort is stable, so events of one second
        // keep Stripe's order.
        listed.reverse();
        listed.sort_by_key(|e| e.created);
        Ok(listed)
    }

    /// Applies the listed events that were not processed, oldest first, moving the
    /// cursor after each.
    async fn apply(
        &self,
        listed: &[Listed],
        now: OffsetDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let store = self.processor.store();
        // The last event passed over without a cursor write (processed before).
        let mut unsaved: Option<&Listed> = None;
        for entry in listed {
            if entry.processed {
                report.duplicates += 1;
                unsaved = Some(entry);
                continue;
            }
            let body = self
                .source
                .event(&entry.id)
                .await
                .map_err(|e| ReconcileError::stripe(format!("event {}", entry.id), e))?;
            self.apply_one(entry, &body, now, report).await?;
            store.save_reconcile_cursor(&entry.cursor()).await?;
            unsaved = None;
        }
        if let Some(entry) = unsaved {
            store.save_reconcile_cursor(&entry.cursor()).await?;
        }
        Ok(())
    }

    /// Processes one event read back from Stripe as its webhook would have been.
    async fn apply_one(
        &self,
        entry: &Listed,
        body: &str,
        now: OffsetDateTime,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let event = match Event::from_slice(body.as_bytes()) {
            Ok(event) if event.id == entry.id => event,
            Ok(event) => {
                tracing::warn!(listed = %entry.id, read = %event.id, "Stripe answered another event than the one asked for; skipped");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(event = %entry.id, %error, "Stripe event cannot be decoded; skipped (its webhook would have been refused too)");
                return Ok(());
            }
        };
        match self
            .processor
            .process_webhook(&event, body.as_bytes(), now)
            .await
        {
            Ok(ProcessOutcome::AlreadyProcessed { .. }) => report.duplicates += 1,
            Ok(
                ProcessOutcome::Applied { tenant_id, .. } | ProcessOutcome::Unchanged { tenant_id },
            ) => {
                tracing::info!(event = %event.id, event_type = %event.event_type, tenant = %tenant_id, "missed Stripe event applied");
                report.events_applied += 1;
            }
            // Parked by the processor until its tenant is known, of no concern, or
            // for a tenant not in the directory (recorded, and logged by the processor).
            Ok(_) => {}
            // As the webhook route does: a bad tenant reference never gets better.
            Err(error @ ProcessError::InvalidTenantReference { .. }) => {
                tracing::warn!(event = %event.id, %error, "missed Stripe event ignored");
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }

    /// Checks one tenant against its Stripe subscription
    /// (`GET /v1/subscriptions?customer=…&status=all`) and, where they disagree,
    /// moves the tenant to match through the state machine, as a
    /// `customer.subscription.updated` carrying Stripe's current copy would: never a
    /// silent overwrite, the move queues [`Effect::Reconciled`] with the machine's
    /// own effects, and is logged.
    ///
    /// The subscription followed is the one the billing state names, else the most
    /// recent by `created`; a live subscription created after a cancelled current
    /// one replaces it (the customer subscribed again).
    pub async fn reconcile_tenant(
        &self,
        tenant_id: &TenantId,
    ) -> Result<TenantReconciliation, ReconcileError> {
        let Some(state) = self.processor.state(tenant_id).await? else {
            return Err(ReconcileError::NoBillingState(tenant_id.clone()));
        };
        let Some(customer_id) = state.customer_id.clone() else {
            return Ok(TenantReconciliation::NoCustomer);
        };
        let subscriptions = self
            .source
            .customer_subscriptions(&customer_id)
            .await
            .map_err(|e| {
                ReconcileError::stripe(format!("the subscriptions of {customer_id}"), e)
            })?;
        let Some(subscription) = tenant::current_subscription(&state, &subscriptions) else {
            return Ok(TenantReconciliation::NoSubscription { customer_id });
        };
        let now = self.clock.now();
        let outcome = self
            .processor
            .reconcile_subscription(tenant_id, subscription, now)
            .await?
            .ok_or_else(|| ReconcileError::NoBillingState(tenant_id.clone()))?;
        if let TenantReconciliation::Moved {
            from,
            to,
            subscription_id,
            stripe_status,
            ..
        } = &outcome
        {
            tracing::info!(
                tenant = %tenant_id,
                from = from.name(),
                to = to.name(),
                subscription = %subscription_id,
                %stripe_status,
                "billing state disagreed with Stripe's subscription; moved to match it"
            );
        }
        Ok(outcome)
    }
}

impl Listed {
    fn cursor(&self) -> ReconcileCursor {
        ReconcileCursor::new(self.id.clone(), self.created)
    }
}
