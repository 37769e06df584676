use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use tenancy_core::TenantId;
use time::OffsetDateTime;

use super::{
    BillingStore, ParkedEvent, PendingEffect, ReconcileCursor, StateChange, StoreError, Transacted,
};
use crate::BillingState;

#[derive(Debug, Default)]
struct Inner {
    tenants: HashMap<TenantId, (BillingState, Option<OffsetDateTime>)>,
    events: HashSet<String>,
    parked: Vec<ParkedEvent>,
    outbox: Vec<PendingEffect>,
    next_effect_id: i64,
    cursor: Option<ReconcileCursor>,
}

/// A [`BillingStore`] in memory, for tests and single-process demos. State is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryBillingStore {
    inner: Mutex<Inner>,
}

impl MemoryBillingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl BillingStore for MemoryBillingStore {
    async fn load(&self, tenant_id: &TenantId) -> Result<Option<BillingState>, StoreError> {
        Ok(self
            .lock()
            .tenants
            .get(tenant_id)
            .map(|(state, _)| state.clone()))
    }

    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, StoreError> {
        let inner = self.lock();
        // The first by id, as the SQL stores answer.
        Ok(inner
            .tenants
            .iter()
            .filter(|(_, (state, _))| state.customer_id.as_deref() == Some(customer_id))
            .map(|(id, _)| id)
            .min()
            .cloned())
    }

    async fn due(&self, now: OffsetDateTime) -> Result<Vec<TenantId>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<_> = inner
            .tenants
            .iter()
            .filter(|(_, (_, due_at))| due_at.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        Ok(due)
    }

    async fn transact(
        &self,
        tenant_id: &TenantId,
        event_id: Option<&str>,
        change: &mut StateChange<'_>,
    ) -> Result<Transacted, StoreError> {
        let mut inner = self.lock();
        if let Some(id) = event_id {
            inner.parked.retain(|p| p.event_id != id);
            if inner.events.contains(id) {
                return Ok(Transacted::Duplicate);
            }
        }
        let current = inner.tenants.get(tenant_id).map(|(state, _)| state.clone());
        if let Some(update) = change(current) {
            for effect in update.effects {
                inner.next_effect_id += 1;
                let id = inner.next_effect_id;
                inner.outbox.push(PendingEffect {
                    id,
                    tenant_id: tenant_id.clone(),
                    effect,
                });
            }
            inner
                .tenants
                .insert(tenant_id.clone(), (update.state, update.due_at));
        }
        if let Some(id) = event_id {
            inner.events.insert(id.to_owned());
        }
        Ok(Transacted::Committed)
    }

    async fn park(&self, event: &ParkedEvent) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.parked.iter().any(|p| p.event_id == event.event_id) {
            return Ok(false);
        }
        inner.parked.push(event.clone());
        inner
            .parked
            .sort_by(|a, b| (a.parked_at, &a.event_id).cmp(&(b.parked_at, &b.event_id)));
        Ok(true)
    }

    async fn parked(
        &self,
        customer_id: Option<&str>,
        after: Option<&ParkedEvent>,
        limit: usize,
    ) -> Result<Vec<ParkedEvent>, StoreError> {
        let place = |p: &ParkedEvent| (p.parked_at, p.event_id.clone());
        let start = after.map(place);
        Ok(self
            .lock()
            .parked
            .iter()
            .filter(|p| customer_id.is_none() || p.customer_id.as_deref() == customer_id)
            .filter(|p| start.as_ref().is_none_or(|start| &place(p) > start))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn unpark(&self, event_id: &str) -> Result<(), StoreError> {
        self.lock().parked.retain(|p| p.event_id != event_id);
        Ok(())
    }

    async fn pending_effects(&self, limit: usize) -> Result<Vec<PendingEffect>, StoreError> {
        Ok(self.lock().outbox.iter().take(limit).cloned().collect())
    }

    async fn ack_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.lock()
            .outbox
            .retain(|effect| !ids.contains(&effect.id));
        Ok(())
    }

    async fn processed_events(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        let inner = self.lock();
        Ok(event_ids
            .iter()
            .filter(|id| inner.events.contains(id.as_str()))
            .cloned()
            .collect())
    }

    async fn reconcile_cursor(&self) -> Result<Option<ReconcileCursor>, StoreError> {
        Ok(self.lock().cursor.clone())
    }

    async fn save_reconcile_cursor(&self, cursor: &ReconcileCursor) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner
            .cursor
            .as_ref()
            .is_none_or(|stored| stored.created <= cursor.created)
        {
            inner.cursor = Some(cursor.clone());
        }
        Ok(())
    }
}
