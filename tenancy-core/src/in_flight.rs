//! Per-tenant locks of the pipelines within one process.

use std::future::Future;
use std::sync::Arc;

use crate::TenantId;

/// The tenants a pipeline (and its clones) is working on right now, each with the
/// lock its runs take: in one process, runs of one tenant go one after another (a
/// signup and a resume at start-up, say; an offboarding and a restore). Across processes the record's
/// revision and the providers' idempotence keep them apart.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    locks: std::sync::Mutex<std::collections::HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
}

impl InFlight {
    /// Runs `work` holding `id`'s lock: after any earlier run of `id` in this process.
    pub(crate) async fn exclusive<T>(&self, id: &TenantId, work: impl Future<Output = T>) -> T {
        let lock = self.lock_of(id);
        let result = {
            let _turn = lock.lock().await;
            work.await
        };
        self.release(id, lock);
        result
    }

    fn lock_of(&self, id: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(id.clone()).or_default().clone()
    }

    /// Forgets the lock of `id` once no run holds or awaits it.
    fn release(&self, id: &TenantId, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(lock);
        if locks.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(id);
        }
    }
}
