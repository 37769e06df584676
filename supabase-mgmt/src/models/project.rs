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

/// The body of `POST /v1/projects` (`V1CreateProjectBody`).
///
/// The region is either a `region_selection` (specific region or smart group) or the
/// deprecated `region`; setting one clears the other, as the API accepts only one.
///
/// ```
/// use supabase_mgmt::{CreateProjectRequest, Region, RegionSelection};
///
/// let request = CreateProjectRequest::new("acme", "my-org", "a-strong-password".into())
///     .with_region_selection(RegionSelection::Specific(Region::EuCentral1));
/// assert!(!format!("{request:?}").contains("a-strong-password"));
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
    /// The region selection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_selection: Option<RegionSelection>,
    /// The deprecated region code; prefer `region_selection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The compute size; omitted means the smallest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_instance_size: Option<InstanceSize>,
}

impl CreateProjectRequest {
    /// A request with the required fields; the API picks the region.
    pub fn new(
        name: impl Into<String>,
        organization_slug: impl Into<String>,
        db_pass: SecretString,
    ) -> Self {
        Self {
            name: name.into(),
            organization_slug: organization_slug.into(),
            db_pass,
            region_selection: None,
            region: None,
            desired_instance_size: None,
        }
    }

    /// Chooses a region or smart group (clears the deprecated `region`).
    pub fn with_region_selection(mut self, selection: RegionSelection) -> Self {
        self.region_selection = Some(selection);
        self.region = None;
        self
    }

    /// Uses the deprecated `region` field (clears `region_selection`).
    pub fn with_legacy_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self.region_selection = None;
        self
    }

    /// Sets the compute size.
    pub fn with_instance_size(mut self, size: InstanceSize) -> Self {
        self.desired_instance_size = Some(size);
        self
    }
}

pub(crate) fn expose_secret<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_str())
}
