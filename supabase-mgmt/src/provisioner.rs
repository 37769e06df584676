//! `SupabaseProvisioner`: one Supabase project per tenant, created idempotently.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, SecretString, Tenant, TenantId,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::client::validate_slug;
use crate::connection::database_target;
use crate::{
    CreateProjectRequest, DatabasePasswords, InstanceSize, ManagementClient, ManagementError,
    OrganizationProject, Project, ProjectRegion, ProjectStatus, Readiness, RegionSelection,
    SessionConnection, WaitOptions,
};

/// A [`DatabaseProvisioner`] that gives every tenant its own Supabase project.
///
/// - **Deterministic name**: the project is named `<prefix><tenant id>` (prefix empty
///   by default), so it can always be found again. Look-ups go through the
///   organization-scoped list, searched by that name and paged.
/// - **Idempotent**: `provision` first looks the name up and adopts a live project.
///   After an ambiguous create (timeout, reset connection, any 5xx) it keeps looking
///   for the project for the [adoption window](SupabaseProvisionerBuilder::adoption_window)
///   (90 s by default) before any new create, so a tenant never gets two (billed)
///   projects.
/// - **Repairs**: a project under the tenant's name that ended `INIT_FAILED` or
///   `RESTORE_FAILED` is deleted and replaced; a paused (`INACTIVE`) one is restored
///   and waited for. Each repair is logged and noted in the returned
///   [`DatabaseTarget::provisioning_notes`], which the onboarding pipeline keeps on
///   the tenant's record.
/// - **Region**: the one [configured](SupabaseProvisionerBuilder::region), else the
///   smart group `GET /v1/projects/available-regions` recommends for the
///   organization (asked once per provisioner).
/// - **Waits** until the project is `ACTIVE_HEALTHY` and its `db` and `pooler` are
///   healthy, then returns the session URL (the session pooler by default, which
///   IPv4-only hosts can reach; see [`SessionConnection`]) for migrations, and the
///   transaction pooler's URL for the application, passwords hidden.
/// - **Passwords** come from [`DatabasePasswords`]; see there how an adopted
///   project's password is recovered.
///
/// Concurrent provisioning of many tenants through clones of one
/// [`ManagementClient`] shares its pacing, so they stay under the rate limit.
///
/// ```no_run
/// use std::sync::Arc;
/// use supabase_mgmt::{DatabasePasswords, ManagementClient, Region, SupabaseProvisioner};
/// use tenancy_core::DatabaseProvisioner;
///
/// # fn run() -> Result<(), supabase_mgmt::ManagementError> {
/// let client = ManagementClient::builder(std::env::var("SUPABASE_ACCESS_TOKEN").unwrap_or_default().into()).build()?;
/// let passwords = DatabasePasswords::derived(std::env::var("DB_PASSWORD_SECRET").unwrap_or_default().into())?;
/// let provisioner: Arc<dyn DatabaseProvisioner> = Arc::new(
///     SupabaseProvisioner::builder(client, "my-org-slug", passwords)
///         .region(Region::EuCentral1)
///         .name_prefix("tenant-")
///         .build()?,
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SupabaseProvisioner {
    client: ManagementClient,
    organization_slug: String,
    name_prefix: String,
    region: Option<ProjectRegion>,
    recommended_region: Arc<OnceCell<ProjectRegion>>,
    instance_size: Option<InstanceSize>,
    session: SessionConnection,
    passwords: DatabasePasswords,
    wait: WaitOptions,
    adoption_window: Duration,
    lookup_interval: Duration,
    max_creates: u32,
}

/// Configures a [`SupabaseProvisioner`]; reached through [`SupabaseProvisioner::builder`].
#[derive(Debug)]
pub struct SupabaseProvisionerBuilder {
    provisioner: SupabaseProvisioner,
}

impl SupabaseProvisionerBuilder {
    /// Prefixes every project name (default none): `tenant-` names the project of
    /// tenant `acme` `tenant-acme`.
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.provisioner.name_prefix = prefix.into();
        self
    }

    /// Where projects run: a [`Region`](crate::Region), a
    /// [`RegionSelection`](crate::RegionSelection) or a [`ProjectRegion`]. Without
    /// one, the smart group that `GET /v1/projects/available-regions` recommends for
    /// the organization is used.
    pub fn region(mut self, region: impl Into<ProjectRegion>) -> Self {
        self.provisioner.region = Some(region.into());
        self
    }

    /// The compute size of new projects (default: the smallest).
    pub fn instance_size(mut self, size: InstanceSize) -> Self {
        self.provisioner.instance_size = Some(size);
        self
    }

    /// How migrations reach the database (default [`SessionConnection::SessionPooler`]).
    pub fn session_connection(mut self, session: SessionConnection) -> Self {
        self.provisioner.session = session;
        self
    }

    /// How to wait for a new project (default: 10 minutes, `db` and `pooler`).
    pub fn wait(mut self, wait: WaitOptions) -> Self {
        self.provisioner.wait = wait;
        self
    }

    /// How long to keep looking for the project of a create whose outcome is unknown
    /// (timeout, 5xx) before creating it again (default 90 s). A new project can take
    /// a while to show in the list; creating again too early makes a second, billed
    /// project.
    pub fn adoption_window(mut self, window: Duration) -> Self {
        self.provisioner.adoption_window = window;
        self
    }

    /// How often to look within the adoption window (default every 5 s).
    pub fn lookup_interval(mut self, interval: Duration) -> Self {
        self.provisioner.lookup_interval = interval;
        self
    }

    /// How many creates to send for one tenant, each after an ambiguous failure and
    /// a whole adoption window without the project appearing (default 3).
    pub fn max_creates(mut self, creates: u32) -> Self {
        self.provisioner.max_creates = creates.max(1);
        self
    }

    /// Builds the provisioner.
    pub fn build(self) -> Result<SupabaseProvisioner, ManagementError> {
        let p = &self.provisioner;
        validate_slug(&p.organization_slug).map_err(|error| match error {
            ManagementError::InvalidInput(message) => ManagementError::Config(message),
            other => other,
        })?;
        if p.name_prefix.chars().count() > 100 || p.name_prefix.chars().any(char::is_control) {
            return Err(ManagementError::Config(
                "the project name prefix must be at most 100 printable characters".into(),
            ));
        }
        if p.lookup_interval.is_zero() || p.lookup_interval > p.adoption_window {
            return Err(ManagementError::Config(format!(
                "the lookup interval ({:?}) must be above zero and within the adoption window ({:?})",
                p.lookup_interval, p.adoption_window
            )));
        }
        Ok(self.provisioner)
    }
}

impl SupabaseProvisioner {
    /// How long a provisioner keeps looking for the project of an ambiguous create
    /// before creating again, unless [configured](SupabaseProvisionerBuilder::adoption_window).
    pub const DEFAULT_ADOPTION_WINDOW: Duration = Duration::from_secs(90);

    /// Starts configuring a provisioner creating projects in `organization_slug`.
    pub fn builder(
        client: ManagementClient,
        organization_slug: impl Into<String>,
        passwords: DatabasePasswords,
    ) -> SupabaseProvisionerBuilder {
        SupabaseProvisionerBuilder {
            provisioner: Self {
                client,
                organization_slug: organization_slug.into(),
                name_prefix: String::new(),
                region: None,
                recommended_region: Arc::new(OnceCell::new()),
                instance_size: None,
                session: SessionConnection::default(),
                passwords,
                wait: WaitOptions::new(Duration::from_secs(600)),
                adoption_window: Self::DEFAULT_ADOPTION_WINDOW,
                lookup_interval: Duration::from_secs(5),
                max_creates: 3,
            },
        }
    }

    /// The name of `tenant`'s project.
    pub fn project_name(&self, tenant: &TenantId) -> String {
        format!("{}{}", self.name_prefix, tenant)
    }

    /// The client this provisioner uses.
    pub fn client(&self) -> &ManagementClient {
        &self.client
    }

    /// Creates (or adopts, restores, replaces) `tenant`'s project, waits until it is
    /// ready and returns its connection details; [`DatabaseProvisioner::provision`]
    /// with a typed error.
    pub async fn provision_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<DatabaseTarget, ManagementError> {
        let name = self.project_name(tenant);
        let mut notes = Vec::new();
        let existing = self.live_project(tenant, &name, &mut notes).await?;
        let mut wait = self.wait.clone();
        let (project_ref, known_password) = match existing {
            Some(project) if project.status == ProjectStatus::Inactive => {
                self.restore(tenant, &project, &mut notes).await?;
                wait = wait.restoring(true);
                (project.project_ref, None)
            }
            Some(project) => {
                tracing::info!(%tenant, project_ref = %project.project_ref, status = %project.status, "adopting the tenant's existing project");
                (project.project_ref, None)
            }
            None => {
                let (created, password) = self.create(&name).await?;
                (created.project_ref, Some(password))
            }
        };
        let project = self
            .client
            .wait_until_ready_with(&project_ref, &wait)
            .await?;
        let password = match known_password {
            Some(password) => password,
            None => self.recover_password(&project).await?,
        };
        let mut target = self.target(&project, &password).await?;
        target.provisioning_notes = notes;
        Ok(target)
    }

    /// `tenant`'s project if it exists and is up. A project still coming up, paused,
    /// or failed is reported as absent, so that
    /// [`provision_tenant`](Self::provision_tenant) adopts, restores or replaces it.
    /// With [`DatabasePasswords::random`] this resets the project's password (it
    /// cannot be read back).
    pub async fn find_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<DatabaseTarget>, ManagementError> {
        let Some(project) = self.find_project(&self.project_name(tenant)).await? else {
            return Ok(None);
        };
        if project.status.readiness() != Readiness::Ready {
            tracing::info!(%tenant, project_ref = %project.project_ref, status = %project.status, "the tenant's project is not up; provisioning will take it from here");
            return Ok(None);
        }
        let password = self.recover_password(&project).await?;
        self.target(&project, &password).await.map(Some)
    }

    /// Deletes `tenant`'s project; returns whether there was one.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<bool, ManagementError> {
        let Some(project) = self.find_project(&self.project_name(tenant)).await? else {
            return Ok(false);
        };
        let deleted = self.delete_project(&project.project_ref).await?;
        if deleted {
            tracing::info!(%tenant, project_ref = %project.project_ref, "deleted the tenant's project");
        }
        Ok(deleted)
    }

    /// The live project named `name` in this provisioner's organization.
    async fn find_project(&self, name: &str) -> Result<Option<Project>, ManagementError> {
        self.client
            .find_project_by_name(&self.organization_slug, name)
            .await
    }

    /// The oldest usable project named `name`, after deleting every one under that
    /// name that only a new project repairs.
    async fn live_project(
        &self,
        tenant: &TenantId,
        name: &str,
        notes: &mut Vec<String>,
    ) -> Result<Option<OrganizationProject>, ManagementError> {
        let named = self
            .client
            .projects_named(&self.organization_slug, name)
            .await?;
        let mut usable = Vec::new();
        for listed in named {
            if !listed.status.needs_replacing() {
                usable.push(listed);
                continue;
            }
            // The list may be stale: delete only what the project itself still says.
            let project = self.client.get_project(&listed.project_ref).await?;
            let (project_ref, status) = (&project.project_ref, &project.status);
            if !status.needs_replacing() {
                tracing::info!(%tenant, %project_ref, %status, "the listed failed project has recovered; keeping it");
                usable.push(OrganizationProject {
                    status: status.clone(),
                    ..listed
                });
                continue;
            }
            tracing::warn!(%tenant, %project_ref, %status, "deleting the tenant's failed project to replace it");
            if self.delete_project(project_ref).await? {
                notes.push(format!(
                    "deleted project {project_ref}, which had ended {status}, to provision a replacement"
                ));
            }
        }
        Ok(usable.into_iter().next())
    }

    /// Deletes a project; `false` when it was already gone.
    async fn delete_project(&self, project_ref: &str) -> Result<bool, ManagementError> {
        Ok(self.client.delete_project(project_ref).await?.was_deleted())
    }

    /// Asks Supabase to restore a paused project.
    async fn restore(
        &self,
        tenant: &TenantId,
        project: &OrganizationProject,
        notes: &mut Vec<String>,
    ) -> Result<(), ManagementError> {
        let project_ref = &project.project_ref;
        tracing::warn!(%tenant, %project_ref, "the tenant's project is paused; restoring it");
        let change = self.client.restore_project(project_ref).await?;
        tracing::debug!(%tenant, %project_ref, ?change, "restore requested");
        notes.push(format!("restored project {project_ref}, which was paused"));
        Ok(())
    }

    /// Creates the project; after an ambiguous failure, looks for it during the
    /// adoption window and adopts it before trying to create it again.
    async fn create(&self, name: &str) -> Result<(Project, SecretString), ManagementError> {
        let password = self.passwords.for_project(name)?;
        let mut request = CreateProjectRequest::new(
            name,
            &self.organization_slug,
            password.clone(),
            self.region().await?,
        );
        request.desired_instance_size = self.instance_size.clone();
        let mut creates = 0;
        loop {
            creates += 1;
            tracing::info!(name, attempt = creates, "creating a Supabase project");
            let error = match self.client.create_project(&request).await {
                Ok(project) => return Ok((project, password)),
                Err(error) if error.is_ambiguous() => error,
                Err(error) => return Err(error),
            };
            // Even after the last create: a caller that retries must not find the
            // list still behind and create once more.
            tracing::warn!(name, %error, window = ?self.adoption_window, "the create's outcome is unknown; looking for its project before anything else");
            if let Some(project) = self.look_for_created(name).await? {
                tracing::info!(name, project_ref = %project.project_ref, "the ambiguous create did happen; adopting its project");
                return Ok((project, password));
            }
            if creates >= self.max_creates {
                return Err(error);
            }
        }
    }

    /// Looks for the project named `name` every lookup interval until the adoption
    /// window has passed.
    async fn look_for_created(&self, name: &str) -> Result<Option<Project>, ManagementError> {
        let started = Instant::now();
        loop {
            tokio::time::sleep(self.lookup_interval).await;
            match self.find_project(name).await {
                Ok(Some(project)) => return Ok(Some(project)),
                Ok(None) => {}
                Err(error) if error.is_retryable() => {
                    tracing::warn!(name, %error, "looking for the project failed; looking again");
                }
                Err(error) => return Err(error),
            }
            if started.elapsed() >= self.adoption_window {
                return Ok(None);
            }
        }
    }

    /// The configured region, else the organization's recommended smart group.
    async fn region(&self) -> Result<ProjectRegion, ManagementError> {
        if let Some(region) = &self.region {
            return Ok(region.clone());
        }
        let recommended = self
            .recommended_region
            .get_or_try_init(|| async {
                let regions = self
                    .client
                    .available_regions(&self.organization_slug, None)
                    .await?;
                let group = regions.recommendations.smart_group.code;
                tracing::info!(%group, "no region configured; using the smart group Supabase recommends");
                Ok::<_, ManagementError>(ProjectRegion::from(RegionSelection::SmartGroup(group)))
            })
            .await?;
        Ok(recommended.clone())
    }

    /// The password of a project we did not create in this call.
    async fn recover_password(&self, project: &Project) -> Result<SecretString, ManagementError> {
        let password = self.passwords.for_project(&project.name)?;
        if !self.passwords.is_derived() {
            tracing::warn!(project_ref = %project.project_ref, "resetting the database password of an adopted project (random passwords cannot be recovered)");
            self.client
                .update_database_password(&project.project_ref, &password)
                .await?;
        }
        Ok(password)
    }

    async fn target(
        &self,
        project: &Project,
        password: &SecretString,
    ) -> Result<DatabaseTarget, ManagementError> {
        let poolers = self.client.pooler_config(&project.project_ref).await?;
        database_target(project, &poolers, password, self.session)
    }
}

#[async_trait]
impl DatabaseProvisioner for SupabaseProvisioner {
    async fn provision(&self, tenant: &Tenant) -> Result<DatabaseTarget, BackendError> {
        Ok(self.provision_tenant(&tenant.id).await?)
    }

    async fn find(&self, tenant: &TenantId) -> Result<Option<DatabaseTarget>, BackendError> {
        Ok(self.find_tenant(tenant).await?)
    }

    async fn delete(&self, tenant: &TenantId) -> Result<(), BackendError> {
        self.delete_tenant(tenant)
            .await
            .map(drop)
            .map_err(BackendError::from)
    }
}
