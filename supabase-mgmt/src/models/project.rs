use serde::{Deserialize, Serialize, Serializer};
use tenancy_core::SecretString;

use super::region::{Region, RegionSelection};

tenancy_core::open_enum! {
    /// The lifecycle status of a project (`V1ProjectWithDatabaseResponse.status`).
    ///
    /// The spec has a value spelled `UNKNOWN`, so the catch-all for values this crate
    /// does not know is [`ProjectStatus::Other`].
    pub enum ProjectStatus {
        /// `INACTIVE`: paused.
        Inactive => "INACTIVE",
        /// `ACTIVE_HEALTHY`: up and serving.
        ActiveHealthy => "ACTIVE_HEALTHY",
        /// `ACTIVE_UNHEALTHY`: up but some service is not healthy yet.
        ActiveUnhealthy => "ACTIVE_UNHEALTHY",
        /// `COMING_UP`: being created or restarted.
        ComingUp => "COMING_UP",
        /// `UNKNOWN`: the platform does not know (yet).
        Unknown => "UNKNOWN",
        /// `GOING_DOWN`: being deleted or paused.
        GoingDown => "GOING_DOWN",
        /// `INIT_FAILED`: creation failed.
        InitFailed => "INIT_FAILED",
        /// `REMOVED`: deleted.
        Removed => "REMOVED",
        /// `RESTORING`: being restored.
        Restoring => "RESTORING",
        /// `UPGRADING`: its Postgres is being upgraded.
        Upgrading => "UPGRADING",
        /// `PAUSING`: being paused.
        Pausing => "PAUSING",
        /// `RESTORE_FAILED`: a restore failed.
        RestoreFailed => "RESTORE_FAILED",
        /// `RESTARTING`: restarting.
        Restarting => "RESTARTING",
        /// `PAUSE_FAILED`: a pause failed.
        PauseFailed => "PAUSE_FAILED",
        /// `RESIZING`: its instance is being resized.
        Resizing => "RESIZING",
    }
    /// A status this version of the crate does not know, kept as sent.
    other Other
}

/// What a [`ProjectStatus`] means to someone waiting for the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// The project is up; check its services' health next.
    Ready,
    /// The project may still become ready: keep polling.
    Waiting,
    /// The project will not become ready without someone acting: stop waiting.
    Failed,
}

impl ProjectStatus {
    /// Whether to keep waiting, stop, or go on to the health check.
    ///
    /// Fails on `INIT_FAILED`, `GOING_DOWN`, `REMOVED`, `INACTIVE`, `PAUSE_FAILED` and
    /// `RESTORE_FAILED`; every other status (including `PAUSING`, which ends in
    /// `INACTIVE`, and values unknown to this crate) keeps the caller waiting, bounded
    /// by its timeout.
    pub fn readiness(&self) -> Readiness {
        match self {
            Self::ActiveHealthy => Readiness::Ready,
            Self::InitFailed
            | Self::GoingDown
            | Self::Removed
            | Self::Inactive
            | Self::PauseFailed
            | Self::RestoreFailed => Readiness::Failed,
            _ => Readiness::Waiting,
        }
    }

    /// Whether the project is gone or going: such a project is never adopted.
    pub fn is_removed(&self) -> bool {
        matches!(self, Self::Removed | Self::GoingDown)
    }

    /// Whether the project is paused or being paused (`INACTIVE`, `PAUSING`).
    pub fn is_paused_or_pausing(&self) -> bool {
        matches!(self, Self::Inactive | Self::Pausing)
    }

    /// Whether the project is up or on its way up after a restore (`RESTORING`,
    /// `COMING_UP`, `ACTIVE_HEALTHY`, `ACTIVE_UNHEALTHY`).
    pub fn is_up_or_restoring(&self) -> bool {
        matches!(
            self,
            Self::Restoring | Self::ComingUp | Self::ActiveHealthy | Self::ActiveUnhealthy
        )
    }

    /// Whether the project failed in a way only a new project repairs
    /// (`INIT_FAILED`, `RESTORE_FAILED`).
    pub fn needs_replacing(&self) -> bool {
        matches!(self, Self::InitFailed | Self::RestoreFailed)
    }
}

tenancy_core::open_enum! {
    /// The compute size of a project (`desired_instance_size`).
    pub enum InstanceSize {
        /// `nano`.
        Nano => "nano",
        /// `micro`.
        Micro => "micro",
        /// `small`.
        Small => "small",
        /// `medium`.
        Medium => "medium",
        /// `large`.
        Large => "large",
        /// `xlarge`.
        Xlarge => "xlarge",
        /// `2xlarge`.
        Xlarge2 => "2xlarge",
        /// `4xlarge`.
        Xlarge4 => "4xlarge",
        /// `8xlarge`.
        Xlarge8 => "8xlarge",
        /// `12xlarge`.
        Xlarge12 => "12xlarge",
        /// `16xlarge`.
        Xlarge16 => "16xlarge",
        /// `24xlarge`.
        Xlarge24 => "24xlarge",
        /// `24xlarge_optimized_memory`.
        Xlarge24OptimizedMemory => "24xlarge_optimized_memory",
        /// `24xlarge_optimized_cpu`.
        Xlarge24OptimizedCpu => "24xlarge_optimized_cpu",
        /// `24xlarge_high_memory`.
        Xlarge24HighMemory => "24xlarge_high_memory",
        /// `48xlarge`.
        Xlarge48 => "48xlarge",
        /// `48xlarge_optimized_memory`.
        Xlarge48OptimizedMemory => "48xlarge_optimized_memory",
        /// `48xlarge_optimized_cpu`.
        Xlarge48OptimizedCpu => "48xlarge_optimized_cpu",
        /// `48xlarge_high_memory`.
        Xlarge48HighMemory => "48xlarge_high_memory",
    }
    /// A size this version of the crate does not know, kept as sent.
    other Unknown
}

impl InstanceSize {
    /// The size named `name` (`micro`, `2xlarge`, …), if this crate knows it; unlike
    /// `From<&str>`, which keeps any value, this refuses what is not a size, such as
    /// a billing plan name (`free`, `pro`).
    ///
    /// ```
    /// use supabase_mgmt::InstanceSize;
    ///
    /// assert_eq!(InstanceSize::parse_known("small"), Some(InstanceSize::Small));
    /// assert_eq!(InstanceSize::parse_known("pro"), None);
    /// ```
    pub fn parse_known(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::known()
            .iter()
            .find(|size| size.as_str() == name)
            .cloned()
    }
}

/// A project as the API describes it: `V1ProjectWithDatabaseResponse` (get, list) or
/// `V1ProjectResponse` (create, which has no `database`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Project {
    /// The project ref, a 20-letter id used in every project path.
    #[serde(rename = "ref")]
    pub project_ref: String,
    /// The project's name.
    pub name: String,
    /// The slug of the organization that owns it.
    pub organization_slug: String,
    /// The region code it runs in.
    pub region: String,
    /// When it was created (as the API formats it).
    pub created_at: String,
    /// Its lifecycle status.
    pub status: ProjectStatus,
    /// Its database; absent in the answer to a create.
    #[serde(default)]
    pub database: Option<ProjectDatabase>,
}

/// The `database` of a `V1ProjectWithDatabaseResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ProjectDatabase {
    /// The direct database host (`db.<ref>.supabase.co`).
    pub host: String,
    /// The Postgres version.
    pub version: String,
    /// The Postgres engine.
    pub postgres_engine: String,
    /// The release channel.
    pub release_channel: String,
}

/// The answer to a delete (`V1ProjectRefResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct DeletedProject {
    /// The numeric id.
    pub id: i64,
    /// The project ref.
    #[serde(rename = "ref")]
    pub project_ref: String,
    /// The project's name.
    pub name: String,
}

/// The outcome of [`ManagementClient::delete_project`](crate::ManagementClient::delete_project).
///
/// A delete is idempotent: a project the API no longer knows (HTTP 404, as after an
/// earlier delete whose answer was lost) is [`AlreadyGone`](Self::AlreadyGone), not an
/// error, as the Supabase Terraform provider treats it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectDeletion {
    /// The API accepted the delete and named the project (`V1ProjectRefResponse`).
    Deleted(DeletedProject),
    /// The API does not know the project (404): it was deleted before, or never existed.
    AlreadyGone,
}

impl ProjectDeletion {
    /// Whether this call deleted the project (`false`: it was already gone).
    pub fn was_deleted(&self) -> bool {
        matches!(self, Self::Deleted(_))
    }
}

/// The outcome of [`ManagementClient::pause_project`](crate::ManagementClient::pause_project)
/// and [`ManagementClient::restore_project`](crate::ManagementClient::restore_project).
///
/// Both calls only start the change; the project's status shows it a moment later
/// (`PAUSING` then `INACTIVE`; `RESTORING`, `COMING_UP`, then `ACTIVE_HEALTHY`). Wait
/// for the end with [`ManagementClient::wait_until_paused`](crate::ManagementClient::wait_until_paused)
/// or [`ManagementClient::wait_until_restored`](crate::ManagementClient::wait_until_restored).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProjectChange {
    /// The API accepted the request (HTTP 200, no body); the project is on its way.
    Requested,
    /// The API refused because the project already is, or is already on its way to,
    /// the state asked for; this is its status as read right after the refusal.
    AlreadyUnderway(ProjectStatus),
}

/// Where a new project runs: exactly one of the create body's `region_selection` or
/// deprecated `region`, as the API requires ("Either region or region_selection must
/// be defined, but not both"). Being one enum, a request cannot carry both or neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ProjectRegion {
    /// `region_selection`: a specific region or a smart group (recommended).
    #[serde(rename = "region_selection")]
    Selection(RegionSelection),
    /// The deprecated `region` code.
    #[serde(rename = "region")]
    Legacy(Region),
}

impl From<RegionSelection> for ProjectRegion {
    fn from(selection: RegionSelection) -> Self {
        Self::Selection(selection)
    }
}

impl From<Region> for ProjectRegion {
    /// A specific region, sent as `region_selection`.
    fn from(region: Region) -> Self {
        Self::Selection(RegionSelection::Specific(region))
    }
}

/// The body of `POST /v1/projects` (`V1CreateProjectBody`).
///
/// The region is required, as the API requires it: see [`ProjectRegion`].
///
/// ```
/// use supabase_mgmt::{CreateProjectRequest, Region};
///
/// let request = CreateProjectRequest::new("acme", "my-org", "a-strong-password".into(), Region::EuCentral1);
/// let body = serde_json::to_value(&request)?;
/// assert_eq!(body["region_selection"]["code"], "eu-central-1");
/// assert!(body.get("region").is_none());
/// assert!(!format!("{request:?}").contains("a-strong-password"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CreateProjectRequest {
    /// The project name (at most 256 characters).
    pub name: String,
    /// The organization slug.
    pub organization_slug: String,
    /// The database password (never printed).
    #[serde(serialize_with = "expose_secret")]
    pub db_pass: SecretString,
    /// Where the project runs.
    #[serde(flatten)]
    pub region: ProjectRegion,
    /// The compute size; omitted means the smallest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_instance_size: Option<InstanceSize>,
}

impl CreateProjectRequest {
    /// A request with the required fields.
    pub fn new(
        name: impl Into<String>,
        organization_slug: impl Into<String>,
        db_pass: SecretString,
        region: impl Into<ProjectRegion>,
    ) -> Self {
        Self {
            name: name.into(),
            organization_slug: organization_slug.into(),
            db_pass,
            region: region.into(),
            desired_instance_size: None,
        }
    }

    /// Sets the compute size.
    pub fn with_instance_size(mut self, size: InstanceSize) -> Self {
        self.desired_instance_size = Some(size);
        self
    }
}

/// A project as `GET /v1/organizations/{slug}/projects` lists it
/// (`OrganizationProjectsResponse.projects[]`).
///
/// Only `ref` and `name` are required when decoding, so that a project this crate
/// does not fully understand (a status it has never seen, a field missing) still
/// lists; fetch the whole project with [`ManagementClient::get_project`](crate::ManagementClient::get_project).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OrganizationProject {
    /// The project ref.
    #[serde(rename = "ref")]
    pub project_ref: String,
    /// The project's name.
    pub name: String,
    /// Its lifecycle status (`UNKNOWN` when absent).
    #[serde(default = "unknown_status")]
    pub status: ProjectStatus,
    /// When it was created (as the API formats it).
    #[serde(default)]
    pub inserted_at: Option<String>,
    /// The region code it runs in.
    #[serde(default)]
    pub region: Option<String>,
    /// The cloud provider.
    #[serde(default)]
    pub cloud_provider: Option<String>,
    /// Whether it is a branch of another project.
    #[serde(default)]
    pub is_branch: bool,
}

fn unknown_status() -> ProjectStatus {
    ProjectStatus::Unknown
}

/// One page of `GET /v1/organizations/{slug}/projects`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OrganizationProjectsPage {
    /// The projects of this page.
    pub projects: Vec<OrganizationProject>,
    /// Where this page stands.
    pub pagination: Pagination,
}

/// `OrganizationProjectsResponse.pagination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Pagination {
    /// How many projects match in all.
    #[serde(deserialize_with = "whole_number")]
    pub count: u64,
    /// The page size.
    #[serde(deserialize_with = "whole_number")]
    pub limit: u64,
    /// How many projects this page skipped.
    #[serde(deserialize_with = "whole_number")]
    pub offset: u64,
}

/// The spec types the pagination fields as `number`: accept `120` and `120.0`.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64 {
        Ok(value as u64)
    } else {
        Err(serde::de::Error::custom(format!(
            "{value} is not a whole, non-negative number"
        )))
    }
}

/// The query of [`ManagementClient::list_organization_projects`](crate::ManagementClient::list_organization_projects).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProjectQuery {
    /// `search`: projects whose name contains this.
    pub search: Option<String>,
    /// `offset`: how many to skip.
    pub offset: u64,
    /// `limit`: the page size, 1 to [`ProjectQuery::MAX_LIMIT`].
    pub limit: u32,
    /// `sort`: `created_asc` lists the oldest first.
    pub oldest_first: bool,
}

impl ProjectQuery {
    /// The largest page the API serves.
    pub const MAX_LIMIT: u32 = 100;

    /// The first page of the largest size, oldest first.
    pub fn new() -> Self {
        Self {
            search: None,
            offset: 0,
            limit: Self::MAX_LIMIT,
            oldest_first: true,
        }
    }

    /// Only projects whose name contains `search`.
    pub fn search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }

    /// Skips `offset` projects.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Pages of `limit` projects (clamped to 1 ..= [`MAX_LIMIT`](Self::MAX_LIMIT)).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }
}

impl Default for ProjectQuery {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn expose_secret<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_str())
}
