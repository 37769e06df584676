//! Events that arrive before their tenant is known: parked in the store, replayed when
//! the tenant becomes known, dropped after Stripe's own retry window.

use time::{Duration, OffsetDateTime};

use super::{BillingProcessor, ParkedEvent, ProcessError, ProcessOutcome};
use crate::Event;

/// How long a parked event waits for its tenant before it is dropped: Stripe's own
/// retry window, after which nobody would deliver it again either.
pub const PARKING_LIMIT: Duration = Duration::days(3);

/// How many parked events one replay looks at.
const REPLAY_BATCH: usize = 500;

/// What a replay of parked events did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Events that found their tenant and were applied (or were already applied).
    pub applied: usize,
    /// Events still waiting for their tenant.
    pub waiting: usize,
    /// Events dropped: past [`PARKING_LIMIT`], or unreadable.
    pub dropped: usize,
}

impl BillingProcessor {
    /// Processes a verified webhook event whose raw body is `body`:
    /// - an event for no known tenant yet is parked (the answer to Stripe can then be
    ///   a success: the event is kept, not lost) and reported as
    ///   [`ProcessOutcome::UnknownTenant`];
    /// - an event for a tenant that the [tenant lookup](Self::with_tenant_lookup) does
    ///   not know is recorded without a change and reported as
    ///   [`ProcessOutcome::TenantNotInDirectory`] (answer Stripe with a success too);
    /// - an event that was applied and linked its customer to a tenant (the tenant's
    ///   state named another customer, or none, before) is followed by a replay of the
    ///   events parked for that customer, which may now find their tenant. Events
    ///   parked for a customer already linked need no replay: an event is parked only
    ///   after seeing no tenant for its customer, and the parking checks again
    ///   afterwards. A replay that fails leaves them parked for the next
    ///   [`replay_parked`](Self::replay_parked) and is only logged: the event itself
    ///   was applied.
    pub async fn process_webhook(
        &self,
        event: &Event,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<ProcessOutcome, ProcessError> {
        let (outcome, linked) = self.process_linking(event).await?;
        match &outcome {
            ProcessOutcome::UnknownTenant { customer_id: None } => {
                tracing::warn!(event = %event.id, "Stripe event names no tenant and no customer: nothing can ever apply it; not parked");
            }
            ProcessOutcome::UnknownTenant {
                customer_id: Some(customer),
            } => {
                self.store()
                    .park(&ParkedEvent::new(event, body, now))
                    .await?;
                tracing::info!(event = %event.id, customer, "Stripe event for no known tenant yet: parked");
                // The event naming the tenant may have been applied (and replayed
                // this customer's parked events) between the look-up and the parking.
                if self.store().tenant_for_customer(customer).await?.is_some() {
                    return self.process(event).await;
                }
            }
            ProcessOutcome::Applied { .. } => {
                if let Some(customer) = linked.as_deref() {
                    match self.replay_parked(Some(customer), now).await {
                        Ok(report) if report != ReplayReport::default() => {
                            tracing::info!(customer, ?report, "replayed parked Stripe events");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(customer, %error, "could not replay parked Stripe events; they stay parked");
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// Processes again the events parked for `customer_id` (or all of them, on a
    /// schedule), oldest first, page by page, so that events still waiting never
    /// hide newer ones. An applied event leaves the parking in the same
    /// transaction that applies it; one still without a tenant stays until
    /// [`PARKING_LIMIT`] has passed. A store error stops the replay and leaves every
    /// event not yet applied parked, for the next replay.
    pub async fn replay_parked(
        &self,
        customer_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<ReplayReport, ProcessError> {
        let mut report = ReplayReport::default();
        let mut after: Option<ParkedEvent> = None;
        loop {
            let page = self
                .store()
                .parked(customer_id, after.as_ref(), REPLAY_BATCH)
                .await?;
            let full = page.len() == REPLAY_BATCH;
            for parked in &page {
                self.replay_one(parked, now, &mut report).await?;
            }
            match page.into_iter().last() {
                Some(last) if full => after = Some(last),
                _ => return Ok(report),
            }
        }
    }

    /// Processes one parked event again and counts what happened to it.
    async fn replay_one(
        &self,
        parked: &ParkedEvent,
        now: OffsetDateTime,
        report: &mut ReplayReport,
    ) -> Result<(), ProcessError> {
        let Ok(event) = Event::from_slice(parked.body.as_bytes()) else {
            tracing::warn!(event = %parked.event_id, "parked Stripe event is unreadable; dropped");
            self.store().unpark(&parked.event_id).await?;
            report.dropped += 1;
            return Ok(());
        };
        match self.process(&event).await? {
            ProcessOutcome::UnknownTenant { .. } if parked.parked_at + PARKING_LIMIT < now => {
                tracing::warn!(event = %parked.event_id, "parked Stripe event dropped: no tenant after three days");
                self.store().unpark(&parked.event_id).await?;
                report.dropped += 1;
            }
            ProcessOutcome::UnknownTenant { .. } => report.waiting += 1,
            ProcessOutcome::Ignored { .. } | ProcessOutcome::TenantNotInDirectory { .. } => {
                // Nothing will ever apply it (its tenant, found through its customer,
                // is not in the tenant directory).
                self.store().unpark(&parked.event_id).await?;
                report.dropped += 1;
            }
            _ => report.applied += 1,
        }
        Ok(())
    }
}
