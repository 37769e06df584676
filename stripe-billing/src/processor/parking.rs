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
    /// - an event that was applied is followed by a replay of the events parked for
    ///   its customer, which may now find their tenant. A replay that fails leaves
    ///   them parked for the next one and is only logged: the event itself was applied.
    pub async fn process_webhook(
        &self,
        event: &Event,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<ProcessOutcome, ProcessError> {
        let outcome = self.process(event).await?;
        match &outcome {
            ProcessOutcome::UnknownTenant { customer_id } => {
                self.store()
                    .park(&ParkedEvent::new(event, body, now))
                    .await?;
                tracing::info!(event = %event.id, ?customer_id, "Stripe event for no known tenant yet: parked");
            }
            ProcessOutcome::Applied { .. } | ProcessOutcome::Unchanged { .. } => {
                if let Some(customer) = event.customer_id() {
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

    /// Processes again the events parked for `customer_id` (or the oldest of all, on
    /// a schedule), oldest first. An applied event leaves the parking in the same
    /// transaction that applies it; one still without a tenant stays until
    /// [`PARKING_LIMIT`] has passed. A store error stops the replay and leaves every
    /// event not yet applied parked, for the next replay.
    pub async fn replay_parked(
        &self,
        customer_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<ReplayReport, ProcessError> {
        let mut report = ReplayReport::default();
        for parked in self.store().parked(customer_id, REPLAY_BATCH).await? {
            let Ok(event) = Event::from_slice(parked.body.as_bytes()) else {
                tracing::warn!(event = %parked.event_id, "parked Stripe event is unreadable; dropped");
                self.store().unpark(&parked.event_id).await?;
                report.dropped += 1;
                continue;
            };
            match self.process(&event).await? {
                ProcessOutcome::UnknownTenant { .. } if parked.parked_at + PARKING_LIMIT < now => {
                    tracing::warn!(event = %parked.event_id, "parked Stripe event dropped: no tenant after three days");
                    self.store().unpark(&parked.event_id).await?;
                    report.dropped += 1;
                }
                ProcessOutcome::UnknownTenant { .. } => report.waiting += 1,
                ProcessOutcome::Ignored { .. } => {
                    // Nothing will ever apply it; processing recorded nothing.
                    self.store().unpark(&parked.event_id).await?;
                    report.dropped += 1;
                }
                _ => report.applied += 1,
            }
        }
        Ok(report)
    }
}
