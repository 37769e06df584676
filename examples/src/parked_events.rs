//! Verified Stripe events that named no known tenant yet, kept for a later replay.
//!
//! Stripe does not deliver in order: an `invoice.payment_failed` can arrive before the
//! `checkout.session.completed` that tells whose customer it is. The webhook route
//! answers 200 (Stripe would otherwise retry for days) and parks such an event here,
//! with its customer. When a later event is applied for that customer, its parked
//! events are processed again (an indexed lookup, so the webhook path stays cheap
//! however many events are parked); every billing tick retries the oldest ones and
//! drops those older than Stripe's own three-day retry window.

use sqlx::Row;
use stripe_billing::{BillingProcessor, Event, ProcessOutcome};
use time::{Duration, OffsetDateTime};

use crate::control_plane::{with_pool, ControlPlane, StatePool};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tenancy_parked_events (\
    event_id TEXT PRIMARY KEY, customer_id TEXT, body TEXT NOT NULL, parked_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS tenancy_parked_events_customer ON tenancy_parked_events (customer_id);
CREATE INDEX IF NOT EXISTS tenancy_parked_events_parked_at ON tenancy_parked_events (parked_at)";

/// How long an event waits for its tenant before it is dropped.
pub const PARKING_LIMIT: Duration = Duration::days(3);
/// How many parked events one replay looks at.
const REPLAY_BATCH: i64 = 500;

/// A parked event: id, body, when it was parked.
type Parked = (String, String, i64);

/// The parked events of a control plane.
#[derive(Debug, Clone)]
pub struct ParkedEvents {
    pool: StatePool,
}

impl ParkedEvents {
    /// The parked events in `plane`'s database (the table is created if missing).
    pub async fn open(plane: &ControlPlane) -> Result<Self, sqlx::Error> {
        with_pool!(&plane.pool, |pool| sqlx::raw_sql(SCHEMA)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(Self {
            pool: plane.pool.clone(),
        })
    }

    /// Keeps a verified event's body until its tenant is known (once per event id).
    pub async fn park(
        &self,
        event: &Event,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        let body = String::from_utf8_lossy(body);
        let sql = "INSERT INTO tenancy_parked_events (event_id, customer_id, body, parked_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING";
        with_pool!(&self.pool, |pool| {
            let query = sqlx::query(sql)
                .bind(&event.id)
                .bind(event.customer_id())
                .bind(body.as_ref())
                .bind(now.unix_timestamp());
            query.execute(pool).await.map(drop)
        })
    }

    /// Processes again the events parked for `customer_id` (call it after an event of
    /// that customer was applied); returns how many found their tenant.
    pub async fn replay_customer(
        &self,
        billing: &BillingProcessor,
        customer_id: &str,
        now: OffsetDateTime,
    ) -> Result<usize, sqlx::Error> {
        let sql = "SELECT event_id, body, parked_at FROM tenancy_parked_events \
                   WHERE customer_id = $1 ORDER BY parked_at LIMIT $2";
        let parked = with_pool!(&self.pool, |pool| {
            let rows = sqlx::query(sql)
                .bind(customer_id)
                .bind(REPLAY_BATCH)
                .fetch_all(pool)
                .await?;
            rows.iter().map(columns).collect::<Result<Vec<_>, _>>()
        })?;
        self.replay_events(parked, billing, now).await
    }

    /// Processes the oldest parked events again (run it on a schedule); returns how
    /// many found their tenant. Events still without a tenant stay parked until
    /// [`PARKING_LIMIT`] has passed.
    pub async fn replay(
        &self,
        billing: &BillingProcessor,
        now: OffsetDateTime,
    ) -> Result<usize, sqlx::Error> {
        let parked = self.oldest().await?;
        self.replay_events(parked, billing, now).await
    }

    async fn replay_events(
        &self,
        parked: Vec<Parked>,
        billing: &BillingProcessor,
        now: OffsetDateTime,
    ) -> Result<usize, sqlx::Error> {
        let mut resolved = 0;
        for (event_id, body, parked_at) in parked {
            let outcome = match Event::from_slice(body.as_bytes()) {
                Ok(event) => billing.process(&event).await.ok(),
                Err(_) => None,
            };
            let waiting = matches!(outcome, Some(ProcessOutcome::UnknownTenant { .. }));
            let expired = OffsetDateTime::from_unix_timestamp(parked_at)
                .map_or(true, |at| at + PARKING_LIMIT < now);
            if waiting && !expired {
                continue;
            }
            if waiting {
                tracing::warn!(event = %event_id, "parked Stripe event dropped: no tenant after three days");
            } else {
                resolved += 1;
            }
            self.remove(&event_id).await?;
        }
        Ok(resolved)
    }

    async fn oldest(&self) -> Result<Vec<Parked>, sqlx::Error> {
        let sql = "SELECT event_id, body, parked_at FROM tenancy_parked_events ORDER BY parked_at LIMIT $1";
        with_pool!(&self.pool, |pool| {
            let rows = sqlx::query(sql).bind(REPLAY_BATCH).fetch_all(pool).await?;
            rows.iter().map(columns).collect()
        })
    }

    async fn remove(&self, event_id: &str) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM tenancy_parked_events WHERE event_id = $1";
        with_pool!(&self.pool, |pool| sqlx::query(sql)
            .bind(event_id)
            .execute(pool)
            .await
            .map(drop))
    }
}

fn columns<R: Row>(row: &R) -> Result<Parked, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

#[cfg(test)]
mod tests {
    use stripe_billing::testing::{event, invoice, InvoiceShape};
    use time::macros::datetime;

    use super::*;
    use crate::assembly::Assembly;
    use crate::control_plane::TenantDatabases;

    #[tokio::test]
    async fn parks_replays_and_expires_on_sqlite() {
        let plane = ControlPlane::open("sqlite::memory:").await.unwrap();
        let databases =
            TenantDatabases::sqlite_files(std::env::temp_dir().join("tk-parked-unused"));
        let clock = std::sync::Arc::new(tenancy_core::SystemClock);
        let env: [(&str, &str); 0] = [];
        let demo = Assembly::with_databases(plane, databases, &env, clock)
            .await
            .unwrap();
        let parked = &demo.parked;
        let now = datetime!(2026-01-01 0:00 UTC);

        let failed = event(
            "invoice.payment_failed",
            invoice("sub_x", "cus_x", 0, InvoiceShape::Parent),
            1,
        );
        let body = serde_json::to_vec(&failed).unwrap();
        let decoded = Event::from_slice(&body).unwrap();
        parked.park(&decoded, &body, now).await.unwrap();
        parked.park(&decoded, &body, now).await.unwrap();
        assert_eq!(
            parked.oldest().await.unwrap().len(),
            1,
            "parked once per event id"
        );

        // Another customer's event leaves it alone, even past the limit.
        let later = now + Duration::days(4);
        assert_eq!(
            parked
                .replay_customer(&demo.billing, "cus_other", later)
                .await
                .unwrap(),
            0
        );
        assert_eq!(parked.oldest().await.unwrap().len(), 1);

        // Still no tenant: kept within the limit, dropped after it.
        assert_eq!(
            parked
                .replay(&demo.billing, now + Duration::days(1))
                .await
                .unwrap(),
            0
        );
        assert_eq!(parked.oldest().await.unwrap().len(), 1);
        assert_eq!(
            parked
                .replay(&demo.billing, now + Duration::days(4))
                .await
                .unwrap(),
            0
        );
        assert!(parked.oldest().await.unwrap().is_empty());
    }
}
