use std::collections::BTreeSet;

use tenancy_core::{TenantFilter, TenantId};

use super::{CanaryTenants, RolloutError, Strategy, TenantFleet};

/// How many tenant records are read from the directory at a time while planning.
const PAGE_SIZE: u32 = 500;

/// Which tenants a rollout covers, and in what order.
///
/// The covered tenants are those a [`TenantFilter`] matches (all of them by
/// default; its paging is ignored). They are ordered by tag priority (tenants
/// carrying the first priority tag first, and so on; the others last), then by id,
/// so waves are the same on every run.
///
/// ```
/// use tenancy_core::TenantFilter;
/// use tenant_migrate::Targeting;
///
/// let targeting = Targeting::from(TenantFilter::all().with_tag("eu"))
///     .with_tag_priority(["internal", "staging"]);
/// assert!(targeting.filter().tags().contains("eu"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targeting {
    filter: TenantFilter,
    priority: Vec<String>,
}

impl From<TenantFilter> for Targeting {
    fn from(filter: TenantFilter) -> Self {
        Self {
            filter,
            priority: Vec::new(),
        }
    }
}

impl Targeting {
    /// Every tenant of the fleet.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only this tenant (call again to add more).
    pub fn with_id(mut self, id: TenantId) -> Self {
        self.filter = self.filter.with_id(id);
        self
    }

    /// Only tenants with this tag (call again to accept any of several).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.filter = self.filter.with_tag(tag);
        self
    }

    /// Orders tenants carrying these tags first, in this order.
    pub fn with_tag_priority<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.priority = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The filter selecting the covered tenants.
    pub fn filter(&self) -> &TenantFilter {
        &self.filter
    }

    fn page(&self) -> TenantFilter {
        let first = self
            .filter
            .ids()
            .iter()
            .fold(TenantFilter::all(), |f, id| f.with_id(id.clone()));
        self.filter
            .tags()
            .iter()
            .fold(first, |f, tag| f.with_tag(tag.clone()))
            .limit(PAGE_SIZE)
    }

    fn rank(&self, tags: &BTreeSet<String>) -> usize {
        self.priority
            .iter()
            .position(|tag| tags.contains(tag))
            .unwrap_or(self.priority.len())
    }
}

/// One tenant's place in a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTenant {
    /// The tenant.
    pub id: TenantId,
    /// Its wave (0 first).
    pub wave: u32,
    /// Its position in the rollout order (0 first).
    pub position: u32,
}

/// The tenants of a rollout in order, each with its wave: what a dry run shows and
/// what the state store records when the rollout starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPlan {
    tenants: Vec<PlannedTenant>,
    warnings: Vec<String>,
}

/// A tenant as kept while planning: only what ordering and the canary need.
struct Candidate {
    rank: usize,
    id: TenantId,
    canary_tag: bool,
}

impl RolloutPlan {
    async fn assign_fleet(
        fleet: &dyn TenantFleet,
        targeting: &Targeting,
        strategy: &Strategy,
    ) -> Result<(Self, BTreeSet<String>), RolloutError> {
        let canary_tag = match strategy {
            Strategy::Canary {
                tenants: CanaryTenants::Tag(tag),
                ..
            } => Some(tag.as_str()),
            _ => None,
        };
        let mut candidates = Vec::new();
        let mut tags = BTreeSet::new();
        let mut page = targeting.page();
        loop {
            let tenants = fleet.members(&page).await?;
            let Some(last) = tenants.last() else { break };
            page = page.after(last.id.clone());
            let full = tenants.len() >= PAGE_SIZE as usize;
            tags.extend(tenants.iter().flat_map(|t| t.tags.iter().cloned()));
            candidates.extend(tenants.into_iter().map(|t| Candidate {
                rank: targeting.rank(&t.tags),
                canary_tag: canary_tag.is_some_and(|tag| t.tags.contains(tag)),
                id: t.id,
            }));
            if !full {
                break;
            }
        }
        if candidates.is_empty() {
            return Err(RolloutError::NoTenants);
        }
        candidates.sort_by(|a, b| (a.rank, &a.id).cmp(&(b.rank, &b.id)));
        Ok((Self::assign(candidates, strategy), tags))
    }

    /// Reads the targeted tenants of `fleet` page by page and assigns them to
    /// waves; an empty canary wave is refused.
    pub async fn build(
        fleet: &dyn TenantFleet,
        targeting: &Targeting,
        strategy: &Strategy,
    ) -> Result<Self, RolloutError> {
        let (plan, tags) = Self::assign_fleet(fleet, targeting, strategy).await?;
        plan.check_canary(strategy, tags)
    }

    /// The fleet's tenants missing from a rollout, with the wave each joins: the
    /// canary wave for those the strategy makes canaries, the last wave otherwise.
    pub(crate) async fn joiners(
        fleet: &dyn TenantFleet,
        targeting: &Targeting,
        strategy: &Strategy,
        listed: &BTreeSet<TenantId>,
        last_wave: u32,
    ) -> Result<Vec<(TenantId, u32)>, RolloutError> {
        let (plan, _) = match Self::assign_fleet(fleet, targeting, strategy).await {
            Ok(found) => found,
            Err(RolloutError::NoTenants) => return Ok(Vec::new()),
            Err(other) => return Err(other),
        };
        let canary = matches!(strategy, Strategy::Canary { .. });
        Ok(plan
            .tenants
            .into_iter()
            .filter(|t| !listed.contains(&t.id))
            .map(|t| {
                let wave = if canary && t.wave == 0 { 0 } else { last_wave };
                (t.id, wave)
            })
            .collect())
    }

    /// Refuses an empty canary wave; warns when it holds every tenant.
    fn check_canary(
        mut self,
        strategy: &Strategy,
        tags: BTreeSet<String>,
    ) -> Result<Self, RolloutError> {
        let Strategy::Canary { tenants, .. } = strategy else {
            return Ok(self);
        };
        let canaries = self.tenants.iter().filter(|t| t.wave == 0).count();
        if canaries == 0 {
            let canary = match tenants {
                CanaryTenants::Tag(tag) => format!("tagged `{tag}`"),
                CanaryTenants::Ids(ids) => {
                    let ids: Vec<&str> = ids.iter().map(TenantId::as_str).collect();
                    format!("one of {}", ids.join(", "))
                }
                CanaryTenants::Count(n) => format!("among the first {n}"),
            };
            return Err(RolloutError::EmptyCanary {
                canary,
                tags: tags.into_iter().collect(),
            });
        }
        if canaries == self.tenants.len() {
            self.warnings.push(format!(
                "the canary wave holds all {canaries} targeted tenants, so there is no canary: every tenant is migrated at once"
            ));
        }
        Ok(self)
    }

    /// What an operator should know before this plan runs (a canary wave that is
    /// the whole fleet, say).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn assign(candidates: Vec<Candidate>, strategy: &Strategy) -> Self {
        let (canaries, rest, then, offset) = match strategy {
            Strategy::Canary { tenants, then, .. } => {
                let (canaries, rest) = split_canaries(candidates, tenants);
                (canaries, rest, then.as_ref(), 1)
            }
            other => (
                Vec::new(),
                candidates.into_iter().map(|c| c.id).collect(),
                other,
                0,
            ),
        };
        let waves = wave_numbers(rest.len(), then);
        let tenants = canaries
            .into_iter()
            .map(|id| (id, 0))
            .chain(rest.into_iter().zip(waves).map(|(id, w)| (id, w + offset)))
            .enumerate()
            .map(|(position, (id, wave))| PlannedTenant {
                id,
                wave,
                position: u32::try_from(position).unwrap_or(u32::MAX),
            })
            .collect();
        Self {
            tenants,
            warnings: Vec::new(),
        }
    }

    /// The tenants in rollout order.
    pub fn tenants(&self) -> &[PlannedTenant] {
        &self.tenants
    }

    /// How many tenants the rollout covers.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Whether the plan is empty (never true for a built plan).
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// The number of tenants in each wave, by wave number (empty waves included).
    pub fn wave_sizes(&self) -> Vec<usize> {
        let waves = self.tenants.iter().map(|t| t.wave + 1).max().unwrap_or(0);
        let mut sizes = vec![0; waves as usize];
        for tenant in &self.tenants {
            sizes[tenant.wave as usize] += 1;
        }
        sizes
    }
}

/// Splits the ordered candidates into canaries and the rest, both still in order.
fn split_canaries(
    candidates: Vec<Candidate>,
    which: &CanaryTenants,
) -> (Vec<TenantId>, Vec<TenantId>) {
    let mut canaries = Vec::new();
    let mut rest = Vec::with_capacity(candidates.len());
    for (index, candidate) in candidates.into_iter().enumerate() {
        let is_canary = match which {
            CanaryTenants::Ids(ids) => ids.contains(&candidate.id),
            CanaryTenants::Count(n) => index < *n,
            CanaryTenants::Tag(_) => candidate.canary_tag,
        };
        if is_canary {
            canaries.push(candidate.id);
        } else {
            rest.push(candidate.id);
        }
    }
    (canaries, rest)
}

/// The wave of each of `count` ordered tenants under a non-canary strategy.
fn wave_numbers(count: usize, strategy: &Strategy) -> impl Iterator<Item = u32> {
    let bounds: Vec<usize> = match strategy {
        Strategy::Waves { percents, .. } => percents
            .iter()
            .map(|p| (count * usize::from(*p)).div_ceil(100))
            .collect(),
        _ => vec![count],
    };
    (0..count).map(move |position| {
        let wave = bounds.iter().position(|bound| position < *bound);
        u32::try_from(wave.unwrap_or(bounds.len().saturating_sub(1))).unwrap_or(u32::MAX)
    })
}

#[cfg(test)]
mod tests {
    use crate::rollout::members::DirectoryFleet;
    use tenancy_core::{MemoryTenantDirectory, NewTenant, TenantDirectory};
    use time::OffsetDateTime;

    use super::*;

    async fn directory(tenants: &[(&str, &[&str])]) -> DirectoryFleet {
        let directory = MemoryTenantDirectory::new();
        for (id, tags) in tenants {
            let mut signup =
                NewTenant::with_id(TenantId::new(*id).unwrap(), id, "ops@example.com").unwrap();
            for tag in *tags {
                signup = signup.with_tag(tag).unwrap();
            }
            directory
                .insert(&signup.into_tenant(OffsetDateTime::now_utc()))
                .await
                .unwrap();
        }
        DirectoryFleet::new(std::sync::Arc::new(directory))
    }

    fn ids(plan: &RolloutPlan, wave: u32) -> Vec<&str> {
        plan.tenants()
            .iter()
            .filter(|t| t.wave == wave)
            .map(|t| t.id.as_str())
            .collect()
    }

    #[tokio::test]
    async fn waves_take_cumulative_shares_in_a_stable_order() {
        let names: Vec<String> = (0..20).map(|i| format!("t{i:02}")).collect();
        let list: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
        let dir = directory(&list).await;
        let strategy = Strategy::waves([10, 50, 100]).unwrap();
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &strategy)
            .await
            .unwrap();
        assert_eq!(plan.wave_sizes(), vec![2, 8, 10]);
        assert_eq!(ids(&plan, 0), vec!["t00", "t01"]);
        let again = RolloutPlan::build(&dir, &Targeting::all(), &strategy)
            .await
            .unwrap();
        assert_eq!(plan, again);
    }

    #[tokio::test]
    async fn tag_priority_then_id_orders_and_targeting_filters() {
        let dir = directory(&[
            ("aaa", &["eu"]),
            ("bbb", &["eu", "staging"]),
            ("ccc", &["us"]),
            ("ddd", &["eu", "internal"]),
        ])
        .await;
        let targeting = Targeting::all()
            .with_tag("eu")
            .with_tag_priority(["internal", "staging"]);
        let plan = RolloutPlan::build(&dir, &targeting, &Strategy::AllAtOnce)
            .await
            .unwrap();
        assert_eq!(ids(&plan, 0), vec!["ddd", "bbb", "aaa"]);

        let none = Targeting::all().with_tag("apac");
        assert!(matches!(
            RolloutPlan::build(&dir, &none, &Strategy::AllAtOnce).await,
            Err(RolloutError::NoTenants)
        ));
    }

    #[tokio::test]
    async fn canaries_go_first_then_the_rest() {
        let dir = directory(&[
            ("aaa", &[]),
            ("bbb", &["staging"]),
            ("ccc", &[]),
            ("ddd", &["staging"]),
            ("eee", &[]),
        ])
        .await;
        let by_tag = Strategy::canary(
            CanaryTenants::Tag("staging".into()),
            Strategy::waves([50, 100]).unwrap(),
        )
        .unwrap();
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &by_tag)
            .await
            .unwrap();
        assert_eq!(ids(&plan, 0), vec!["bbb", "ddd"]);
        assert_eq!(ids(&plan, 1), vec!["aaa", "ccc"]);
        assert_eq!(ids(&plan, 2), vec!["eee"]);
        assert_eq!(plan.tenants()[0].position, 0);

        let by_count = Strategy::canary(CanaryTenants::Count(1), Strategy::AllAtOnce).unwrap();
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &by_count)
            .await
            .unwrap();
        assert_eq!(ids(&plan, 0), vec!["aaa"]);
        assert_eq!(plan.wave_sizes(), vec![1, 4]);
    }

    #[tokio::test]
    async fn an_empty_canary_wave_is_refused_and_a_whole_fleet_one_warned_about() {
        let dir = directory(&[("aaa", &["eu"]), ("bbb", &["us"])]).await;
        let missing =
            Strategy::canary(CanaryTenants::Tag("staging".into()), Strategy::AllAtOnce).unwrap();
        let error = RolloutPlan::build(&dir, &Targeting::all(), &missing)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("tagged `staging`"), "{message}");
        assert!(message.contains("eu, us"), "{message}");

        let whole = Strategy::canary(CanaryTenants::Count(5), Strategy::AllAtOnce).unwrap();
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &whole)
            .await
            .unwrap();
        assert_eq!(plan.wave_sizes(), vec![2]);
        assert!(
            plan.warnings()[0].contains("no canary"),
            "{:?}",
            plan.warnings()
        );

        let fine = Strategy::canary(CanaryTenants::Count(1), Strategy::AllAtOnce).unwrap();
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &fine)
            .await
            .unwrap();
        assert!(plan.warnings().is_empty());
    }

    #[tokio::test]
    async fn pages_through_a_large_directory() {
        let names: Vec<String> = (0..1203).map(|i| format!("t{i:05}")).collect();
        let list: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &[][..])).collect();
        let dir = directory(&list).await;
        let plan = RolloutPlan::build(&dir, &Targeting::all(), &Strategy::AllAtOnce)
            .await
            .unwrap();
        assert_eq!(plan.len(), 1203);
        assert_eq!(plan.tenants()[1202].id.as_str(), "t01202");
    }
}
