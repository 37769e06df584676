//! Typed requests and responses of the Management API, named after the spec's schemas.

mod api_key;
mod health;
mod organization;
mod pooler;
mod project;
mod query;
mod region;

pub use api_key::{ApiKey, ApiKeyType, CreateApiKeyRequest, NewApiKeyType};
pub use health::{HealthStatus, ServiceHealth, ServiceName};
pub use organization::Organization;
pub use pooler::{PoolMode, PoolerDatabaseType, SupavisorConfig};
pub use project::{
    CreateProjectRequest, DeletedProject, InstanceSize, OrganizationProject,
    OrganizationProjectsPage, Pagination, Project, ProjectChange, ProjectDatabase, ProjectDeletion,
    ProjectQuery, ProjectRegion, ProjectStatus, Readiness,
};
pub use query::RunQueryRequest;
pub use region::{
    AvailableRegions, Continent, Region, RegionCapacity, RegionList, RegionProvider,
    RegionRecommendations, RegionSelection, SmartGroup, SmartGroupRegion, SpecificRegion,
};
