//! Every member of a fleet, visited with bounded concurrency, page by page: memory
//! holds one page of members and the visits in flight.

use std::collections::HashMap;
use std::future::Future;

use tenancy_core::{TenantFilter, TenantId};
use tokio::task::{Id, JoinSet};

use super::DriftError;
use crate::rollout::{FleetMember, TenantFleet};

/// Members read from the fleet at a time.
const PAGE_SIZE: u32 = 500;

/// Runs `work` on every member `filter` selects, at most `concurrency` at once (each
/// on its own task), and hands each result to `sink` as it arrives.
pub(crate) async fn each_member<T, W, F>(
    fleet: &dyn TenantFleet,
    filter: &TenantFilter,
    concurrency: usize,
    work: W,
    mut sink: impl FnMut(TenantId, T),
) -> Result<(), DriftError>
where
    W: Fn(FleetMember) -> F,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut visits = Visits {
        jobs: JoinSet::new(),
        tenants: HashMap::new(),
    };
    let mut page = filter.clone().limit(PAGE_SIZE);
    loop {
        let members = fleet.members(&page).await?;
        let Some(last) = members.last() else { break };
        page = page.after(last.id.clone());
        let full = members.len() >= PAGE_SIZE as usize;
        for member in members {
            while visits.jobs.len() >= concurrency.max(1) {
                visits.finish_one(&mut sink).await?;
            }
            let id = member.id.clone();
            let handle = visits.jobs.spawn(work(member));
            visits.tenants.insert(handle.id(), id);
        }
        if !full {
            break;
        }
    }
    while !visits.jobs.is_empty() {
        visits.finish_one(&mut sink).await?;
    }
    Ok(())
}

/// The visits in flight and whose each is.
struct Visits<T> {
    jobs: JoinSet<T>,
    tenants: HashMap<Id, TenantId>,
}

impl<T: 'static> Visits<T> {
    /// Waits for one visit and hands its result over.
    async fn finish_one(&mut self, sink: &mut impl FnMut(TenantId, T)) -> Result<(), DriftError> {
        match self.jobs.join_next_with_id().await {
            Some(Ok((id, result))) => {
                if let Some(tenant) = self.tenants.remove(&id) {
                    sink(tenant, result);
                }
                Ok(())
            }
            Some(Err(error)) => {
                let tenant = self.tenants.remove(&error.id());
                Err(DriftError::Interrupted {
                    tenant: tenant.map_or_else(|| "?".into(), |t| t.as_str().to_owned()),
                    message: error.to_string(),
                })
            }
            None => Ok(()),
        }
    }
}
