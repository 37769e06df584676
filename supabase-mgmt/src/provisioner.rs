//! `SupabaseProvisioner`: one Supabase project per tenant, created idempotently.

use std::time::Duration;

use async_trait::async_trait;
use tenancy_core::{
    BackendError, DatabaseProvisioner, DatabaseTarget, DatabaseUrl, RetryDecision, RetryPolicy,
    SecretString, Tenant, TenantId,
};
use url::Url;

use crate::{
    CreateProjectRequest, DatabasePasswords, InstanceSize, ManagementClient, ManagementError,
    PoolMode, PoolerDatabaseType, Project, Readiness, RegionSelection, SupavisorConfig,
    WaitOptions,
};

/// The direct database port of a Supabase project.
const DIRECT_PORT: u16 = 5432;
/// The database and user of a new Supabase project.
const POSTGRES: &str = "postgres";

/// A [`DatabaseProvisioner`] that gives every tenant its own Supabase project.
///
/// - **Deterministic name**: the project is named `<prefix><tenant id>` (prefix empty
///   by default), so it can always be found again.
/// - **Idempotent**: `provision` first looks the name up and adopts a live project;
///   after an ambiguous create (timeout, reset connection, any 5xx) it looks
///   again before any new create, so a tenant never gets two (billed) projects.
///   The look-up waits the backoff of the [create retry
///   policy](SupabaseProvisionerBuilder::create_retry_policy) first (5 s by default)
///   so that a project whose create did happen has time to appear in the list.
/// - **Waits** until the project is `ACTIVE_HEALTHY` and its `db` and `pooler` are
///   healthy, then returns the direct URL (`db.<ref>.supabase.co:5432`, for
///   migrations) and the pooled URL (from the Supavisor config), password hidden.
/// - **Passwords** come from [`DatabasePasswords`]; see there how an adopted
///   project's password is recovered.
///
/// Concurrent provisioning of many tenants through clones of one
/// [`ManagementClient`] shares its pacing, so they stay under the rate limit.
///
/// ```no_run
/// use std::sync::Arc;
/// use supabase_mgmt::{DatabasePasswords, ManagementClient, SupabaseProvisioner};
/// use tenancy_core::DatabaseProvisioner;
///
/// # fn run() -> Result<(), supabase_mgmt::ManagementError> {
/// let client = ManagementClient::builder(std::env::var("SUPABASE_ACCESS_TOKEN").unwrap_or_default().into()).build()?;
/// let passwords = DatabasePasswords::derived(std::env::var("DB_PASSWORD_SECRET").unwrap_or_default().into())?;
/// let provisioner: Arc<dyn DatabaseProvisioner> =
///     Arc::new(SupabaseProvisioner::builder(client, "my-org-slug", passwords).name_prefix("tenant-").build()?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SupabaseProvisioner {
    client: ManagementClient,
    organization_slug: String,
    name_prefix: String,
    region: Option<RegionSelection>,
    instance_size: Option<InstanceSize>,
    passwords: DatabasePasswords,
    wait: WaitOptions,
    create_retry: RetryPolicy,
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

    /// Where projects run (default: the API's choice).
    pub fn region(mut self, region: RegionSelection) -> Self {
        self.provisioner.region = Some(region);
        self
    }

    /// The compute size of new projects (default: the smallest).
    pub fn instance_size(mut self, size: InstanceSize) -> Self {
        self.provisioner.instance_size = Some(size);
        self
    }

    /// How to wait for a new project (default: 10 minutes, `db` and `pooler`).
    pub fn wait(mut self, wait: WaitOptions) -> Self {
        self.provisioner.wait = wait;
        self
    }

    /// How to retry a create whose outcome is unknown, looking the project up before
    /// each new attempt (default: 5 attempts, from 5 s apart, within 5 minutes).
    pub fn create_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.provisioner.create_retry = policy;
        self
    }

    /// Builds the provisioner.
    pub fn build(self) -> Result<SupabaseProvisioner, ManagementError> {
        let p = &self.provisioner;
        let slug_ok = !p.organization_slug.is_empty()
            && p.organization_slug
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !slug_ok {
            return Err(ManagementError::Config(format!(
                "organization slug `{}` is invalid; copy it from the organization's settings (letters, digits, _ and -)",
                p.organization_slug
            )));
        }
        if p.name_prefix.chars().count() > 100 || p.name_prefix.chars().any(char::is_control) {
            return Err(ManagementError::Config(
                "the project name prefix must be at most 100 printable characters".into(),
            ));
        }
        Ok(self.provisioner)
    }
}

impl SupabaseProvisioner {
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
                instance_size: None,
                passwords,
                wait: WaitOptions::new(Duration::from_secs(600)),
                create_retry: RetryPolicy::default()
                    .with_initial_delay(Duration::from_secs(5))
                    .with_max_elapsed(Some(Duration::from_secs(300))),
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

    /// Creates (or adopts) `tenant`'s project, waits until it is ready and returns
    /// its connection details; [`DatabaseProvisioner::provision`] with a typed error.
    pub async fn provision_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<DatabaseTarget, ManagementError> {
        let name = self.project_name(tenant);
        let (project_ref, known_password) = match self.find_project(&name).await? {
            Some(existing) => {
                tracing::info!(%tenant, project_ref = %existing.project_ref, status = %existing.status, "adopting the tenant's existing project");
                (existing.project_ref, None)
            }
            None => {
                let (created, password) = self.create(&name).await?;
                (created.project_ref, Some(password))
            }
        };
        let project = self
            .client
            .wait_until_ready_with(&project_ref, &self.wait)
            .await?;
        let password = match known_password {
            Some(password) => password,
            None => self.recover_password(&project).await?,
        };
        self.target(&project, &password).await
    }

    /// `tenant`'s project if it exists and is up; a project still coming up is
    /// reported as absent so that [`provision_tenant`](Self::provision_tenant)
    /// adopts it and waits. With [`DatabasePasswords::random`] this resets the
    /// project's password (it cannot be read back).
    pub async fn find_tenant(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<DatabaseTarget>, ManagementError> {
        let Some(project) = self.find_project(&self.project_name(tenant)).await? else {
            return Ok(None);
        };
        match project.status.readiness() {
            Readiness::Failed => Err(ManagementError::ProjectFailed {
                project_ref: project.project_ref,
                status: project.status,
            }),
            Readiness::Ready => {
                let password = self.recover_password(&project).await?;
                self.target(&project, &password).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Deletes `tenant`'s project; returns whether there was one.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<bool, ManagementError> {
        let Some(project) = self.find_project(&self.project_name(tenant)).await? else {
            return Ok(false);
        };
        match self.client.delete_project(&project.project_ref).await {
            Ok(_) => {
                tracing::info!(%tenant, project_ref = %project.project_ref, "deleted the tenant's project");
                Ok(true)
            }
            Err(ManagementError::Api { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The live project named `name` in this provisioner's organization.
    async fn find_project(&self, name: &str) -> Result<Option<Project>, ManagementError> {
        self.client
            .find_project_by_name(&self.organization_slug, name)
            .await
    }

    /// Creates the project; after an ambiguous failure, looks it up by name and
    /// adopts it before trying to create it again.
    async fn create(&self, name: &str) -> Result<(Project, SecretString), ManagementError> {
        let password = self.passwords.for_project(name)?;
        let mut request =
            CreateProjectRequest::new(name, &self.organization_slug, password.clone());
        request.region_selection = self.region.clone();
        request.desired_instance_size = self.instance_size.clone();
        let project = self
            .create_retry
            .run(
                |attempt| self.create_or_adopt(&request, attempt),
                |error| {
                    if error.is_ambiguous() {
                        RetryDecision::Retry
                    } else {
                        RetryDecision::GiveUp
                    }
                },
            )
            .await?;
        Ok((project, password))
    }

    async fn create_or_adopt(
        &self,
        request: &CreateProjectRequest,
        attempt: u32,
    ) -> Result<Project, ManagementError> {
        if attempt > 1 {
            if let Some(existing) = self.find_project(&request.name).await? {
                tracing::info!(name = %request.name, project_ref = %existing.project_ref, "the ambiguous create did happen; adopting its project");
                return Ok(existing);
            }
        }
        tracing::info!(name = %request.name, attempt, "creating a Supabase project");
        self.client.create_project(request).await
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
        let project_ref = &project.project_ref;
        let host = project.database.as_ref().map_or_else(
            || format!("db.{project_ref}.supabase.co"),
            |db| db.host.clone(),
        );
        let direct = postgres_url(POSTGRES, password, &host, DIRECT_PORT, POSTGRES)
            .map_err(|message| decode_error(project_ref, "database.host", message))?;
        let mut target = DatabaseTarget::new(direct).with_external_ref(project_ref.clone());
        if let Some(pooler) = primary_pooler(self.client.pooler_config(project_ref).await?) {
            let pooled = postgres_url(
                &pooler.db_user,
                password,
                &pooler.db_host,
                pooler.db_port,
                &pooler.db_name,
            )
            .map_err(|message| decode_error(project_ref, "[].db_host", message))?;
            target = target.with_pooled_url(pooled);
        }
        Ok(target)
    }
}

/// The primary database's pooler, transaction mode preferred.
fn primary_pooler(configs: Vec<SupavisorConfig>) -> Option<SupavisorConfig> {
    let mut primaries: Vec<SupavisorConfig> = configs
        .into_iter()
        .filter(|c| c.database_type == PoolerDatabaseType::Primary)
        .collect();
    let transaction = primaries
        .iter()
        .position(|c| c.pool_mode == PoolMode::Transaction);
    match transaction {
        Some(index) => Some(primaries.swap_remove(index)),
        None => primaries.into_iter().next(),
    }
}

fn postgres_url(
    user: &str,
    password: &SecretString,
    host: &str,
    port: u16,
    database: &str,
) -> Result<DatabaseUrl, String> {
    let mut url = Url::parse("postgres://localhost").map_err(|e| e.to_string())?;
    url.set_host(Some(host))
        .map_err(|e| format!("host `{host}` is invalid: {e}"))?;
    let credentials_set = url.set_port(Some(port)).is_ok()
        && url.set_username(user).is_ok()
        && url.set_password(Some(password.expose_str())).is_ok();
    if !credentials_set {
        return Err(format!("cannot build a connection URL for host `{host}`"));
    }
    url.set_path(&format!("/{database}"));
    DatabaseUrl::parse(url.as_str()).map_err(|e| e.to_string())
}

fn decode_error(project_ref: &str, path: &str, message: String) -> ManagementError {
    ManagementError::Decode {
        endpoint: format!("project {project_ref}"),
        path: path.to_owned(),
        message,
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
