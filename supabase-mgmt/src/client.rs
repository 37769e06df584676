use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use tenancy_core::{RetryPolicy, SecretString};
use url::Url;

use crate::rate_limit::Pacer;
use crate::transport::{sensitive_header, ApiRequest, Idempotency, Route};
use crate::{
    ApiKey, AvailableRegions, Continent, CreateApiKeyRequest, CreateProjectRequest,
    ManagementError, Organization, OrganizationProject, OrganizationProjectsPage, Pacing,
    Pagination, Project, ProjectChange, ProjectDeletion, ProjectQuery, ProjectStatus,
    RateLimitHeaders, RunQueryRequest, ServiceHealth, ServiceName, SupavisorConfig,
};

/// How many pages of 100 [`ManagementClient::projects_named`] reads at most (a bound
/// against an answer whose `pagination.count` never stops growing).
const MAX_PROJECT_PAGES: usize = 1_000;

/// A page whose projects are not decoded yet.
#[derive(serde::Deserialize)]
struct RawProjectsPage {
    projects: Vec<serde_json::Value>,
    pagination: Pagination,
}

/// Decodes one listed project, naming its place in the page if it does not fit.
fn decode_listed(
    organization_slug: &str,
    index: usize,
    project: serde_json::Value,
) -> Result<OrganizationProject, ManagementError> {
    serde_json::from_value(project).map_err(|e| ManagementError::Decode {
        endpoint: format!("GET /v1/organizations/{organization_slug}/projects"),
        path: format!("projects[{index}]"),
        message: e.to_string(),
    })
}

fn paging_error(organization_slug: &str, message: String) -> ManagementError {
    ManagementError::Decode {
        endpoint: format!("GET /v1/organizations/{organization_slug}/projects"),
        path: "pagination".into(),
        message,
    }
}

/// An organization slug, as the API's pattern `^[\w-]+$` allows.
pub(crate) fn validate_slug(slug: &str) -> Result<(), ManagementError> {
    if !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(ManagementError::InvalidInput(format!(
            "`{slug}` is not an organization slug; copy it from the organization's settings (letters, digits, _ and -)"
        )))
    }
}

/// The Management API's public address.
pub const DEFAULT_BASE_URL: &str = "https://api.supabase.com";

/// A client of the Supabase Management API: one typed method per endpoint, every
/// request paced, retried through the shared [`RetryPolicy`] and decoded with the
/// path of any field that does not match the spec.
///
/// Cheap to clone; clones share the connection pool and the pacing budgets.
///
/// ```no_run
/// use supabase_mgmt::ManagementClient;
///
/// # async fn run() -> Result<(), supabase_mgmt::ManagementError> {
/// let client = ManagementClient::builder("sbp_0123456789abcdef".into()).build()?;
/// for project in client.list_projects().await? {
///     println!("{} {} {}", project.project_ref, project.name, project.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManagementClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    authorization: HeaderValue,
    retry: RetryPolicy,
    pacer: Pacer,
    pacing: Option<Pacing>,
}

impl fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClient")
            .field("base_url", &redacted_url(&self.inner.base_url))
            .field("token", &tenancy_core::REDACTED)
            .field("retry", &self.inner.retry)
            .field("pacing", &self.inner.pacing)
            .finish()
    }
}

/// Configures a [`ManagementClient`]; reached through [`ManagementClient::builder`].
pub struct ManagementClientBuilder {
    token: SecretString,
    base_url: String,
    timeout: Duration,
    user_agent: String,
    retry: RetryPolicy,
    pacing: Option<Pacing>,
}

impl fmt::Debug for ManagementClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClientBuilder")
            .field("token", &self.token)
            .field(
                "base_url",
                &Url::parse(&self.base_url)
                    .map_or_else(|_| "[not a URL]".into(), |u| redacted_url(&u)),
            )
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("pacing", &self.pacing)
            .finish()
    }
}

impl ManagementClientBuilder {
    /// The API's address (default [`DEFAULT_BASE_URL`]); a path prefix is kept, for proxies.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The timeout of one attempt of one request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `supabase-mgmt/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The retry policy of every request (default [`RetryPolicy::default`]); its
    /// backoff also spaces the polls of [`ManagementClient::wait_until_ready`].
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Client-side pacing shared by every clone (default [`Pacing::supabase_default`],
    /// 120 requests per minute in each endpoint scope); `None` sends as fast as
    /// asked, relying on 429s.
    pub fn pacing(mut self, pacing: Option<Pacing>) -> Self {
        self.pacing = pacing;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ManagementClient, ManagementError> {
        if self.token.is_blank() {
            return Err(ManagementError::Config(
                "the access token is empty; create one at https://supabase.com/dashboard/account/tokens".into(),
            ));
        }
        let authorization =
            sensitive_header(&format!("Bearer {}", self.token.expose_str().trim()))?;
        let base_url = Url::parse(self.base_url.trim()).map_err(|e| {
            ManagementError::Config(format!(
                "the base URL is not a URL ({e}); write it as https://api.supabase.com"
            ))
        })?;
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ManagementError::Config(format!(
                "base URL `{}` must be an http(s) URL such as https://api.supabase.com",
                redacted_url(&base_url)
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| {
                ManagementError::Config(format!("could not set up the HTTP client: {e}"))
            })?;
        Ok(ManagementClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                authorization,
                retry: self.retry,
                pacer: Pacer::new(self.pacing),
                pacing: self.pacing,
            }),
        })
    }
}

impl ManagementClient {
    /// Starts configuring a client that authenticates with `token` (a personal access
    /// token `sbp_…` or an OAuth access token).
    pub fn builder(token: SecretString) -> ManagementClientBuilder {
        ManagementClientBuilder {
            token,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(30),
            user_agent: concat!("supabase-mgmt/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            pacing: Some(Pacing::supabase_default()),
        }
    }

    /// The retry policy of this client.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The rate-limit headers of the last answer that carried any (shared by clones):
    /// how much of the current window is left, and when it resets.
    pub fn last_rate_limit(&self) -> Option<RateLimitHeaders> {
        self.inner.pacer.last_seen()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn authorization(&self) -> &HeaderValue {
        &self.inner.authorization
    }

    pub(crate) fn pacer(&self) -> &Pacer {
        &self.inner.pacer
    }

    /// The route of an API path without parameters, given as segments.
    fn fixed_route(&self, segments: &[&str]) -> Route {
        self.route(segments, segments)
    }

    /// The route of an API path given as segments (each percent-encoded), counted
    /// in the endpoint scope of `template` (the same segments with `{ref}`, `{slug}`).
    fn route(&self, segments: &[&str], template: &[&str]) -> Route {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        let template = format!("/{}", template.join("/"));
        Route { url, template }
    }

    fn project_url(&self, project_ref: &str, rest: &[&str]) -> Result<Route, ManagementError> {
        validate_ref(project_ref)?;
        let segments = [&["v1", "projects", project_ref], rest].concat();
        let template = [&["v1", "projects", "{ref}"], rest].concat();
        Ok(self.route(&segments, &template))
    }

    /// `GET /v1/organizations`: the organizations the token can see.
    pub async fn list_organizations(&self) -> Result<Vec<Organization>, ManagementError> {
        self.call(ApiRequest::get(self.fixed_route(&["v1", "organizations"])))
            .await
    }

    /// `GET /v1/projects`: every project of every organization the token can see, in
    /// one unpaged answer. For lookups prefer the organization-scoped
    /// [`list_organization_projects`](Self::list_organization_projects).
    pub async fn list_projects(&self) -> Result<Vec<Project>, ManagementError> {
        self.call(ApiRequest::get(self.fixed_route(&["v1", "projects"])))
            .await
    }

    /// `GET /v1/organizations/{slug}/projects?search=…&offset=…&limit=…&sort=…`: one
    /// page of an organization's projects.
    pub async fn list_organization_projects(
        &self,
        organization_slug: &str,
        query: &ProjectQuery,
    ) -> Result<OrganizationProjectsPage, ManagementError> {
        let page: RawProjectsPage = self
            .call(ApiRequest::get(
                self.organization_projects_url(organization_slug, query)?,
            ))
            .await?;
        let projects = page
            .projects
            .into_iter()
            .enumerate()
            .map(|(index, project)| decode_listed(organization_slug, index, project))
            .collect::<Result<_, _>>()?;
        Ok(OrganizationProjectsPage {
            projects,
            pagination: page.pagination,
        })
    }

    /// The projects of `organization_slug` named exactly `name` that are not removed,
    /// going down or branches, oldest first: searched by name and paged until the answer's
    /// `pagination.count` is covered. Other projects are not decoded at all, so a
    /// project this crate does not understand never fails the look-up.
    pub async fn projects_named(
        &self,
        organization_slug: &str,
        name: &str,
    ) -> Result<Vec<OrganizationProject>, ManagementError> {
        let mut query = ProjectQuery::new().search(name);
        let mut named: Vec<OrganizationProject> = Vec::new();
        for _ in 0..MAX_PROJECT_PAGES {
            let route = self.organization_projects_url(organization_slug, &query)?;
            let page: RawProjectsPage = self.call(ApiRequest::get(route)).await?;
            if page.pagination.offset != query.offset {
                return Err(paging_error(
                    organization_slug,
                    format!(
                        "asked for offset {} and got the page at offset {}",
                        query.offset, page.pagination.offset
                    ),
                ));
            }
            let served = page.projects.len() as u64;
            for (index, project) in page.projects.into_iter().enumerate() {
                if project.get("name").and_then(|n| n.as_str()) != Some(name) {
                    continue;
                }
                let project = decode_listed(organization_slug, index, project)?;
                let seen = named.iter().any(|p| p.project_ref == project.project_ref);
                if !seen && !project.status.is_removed() && !project.is_branch {
                    named.push(project);
                }
            }
            query.offset += served;
            if served == 0 || query.offset >= page.pagination.count {
                named.sort_by(|a, b| a.inserted_at.cmp(&b.inserted_at));
                return Ok(named);
            }
        }
        Err(paging_error(
            organization_slug,
            format!("more than {MAX_PROJECT_PAGES} pages match `{name}`"),
        ))
    }

    /// The live project named `name` (not removed or going down) in the organization
    /// `organization_slug`, if any; the oldest when several share the name.
    pub async fn find_project_by_name(
        &self,
        organization_slug: &str,
        name: &str,
    ) -> Result<Option<Project>, ManagementError> {
        let named = self.projects_named(organization_slug, name).await?;
        if named.len() > 1 {
            tracing::warn!(
                organization_slug,
                name,
                count = named.len(),
                "several projects share this name; using the oldest"
            );
        }
        match named.first() {
            Some(project) => self.get_project(&project.project_ref).await.map(Some),
            None => Ok(None),
        }
    }

    fn organization_projects_url(
        &self,
        organization_slug: &str,
        query: &ProjectQuery,
    ) -> Result<Route, ManagementError> {
        validate_slug(organization_slug)?;
        let mut route = self.route(
            &["v1", "organizations", organization_slug, "projects"],
            &["v1", "organizations", "{slug}", "projects"],
        );
        {
            let mut pairs = route.url.query_pairs_mut();
            if let Some(search) = &query.search {
                pairs.append_pair("search", search);
            }
            pairs
                .append_pair("offset", &query.offset.to_string())
                .append_pair(
                    "limit",
                    &query.limit.clamp(1, ProjectQuery::MAX_LIMIT).to_string(),
                );
            if query.oldest_first {
                pairs.append_pair("sort", "created_asc");
            }
        }
        Ok(route)
    }

    /// `POST /v1/projects`: starts creating a project; it is `COMING_UP` for a few
    /// minutes (see [`wait_until_ready`](Self::wait_until_ready)).
    ///
    /// Not retried after an ambiguous failure (timeout, 5xx): the project may exist
    /// anyway. Look it up by name before trying again, as
    /// [`SupabaseProvisioner`](crate::SupabaseProvisioner) does.
    pub async fn create_project(
        &self,
        request: &CreateProjectRequest,
    ) -> Result<Project, ManagementError> {
        let route = self.fixed_route(&["v1", "projects"]);
        self.call(ApiRequest::new(Method::POST, route, Idempotency::Once).json(request)?)
            .await
    }

    /// `GET /v1/projects/{ref}`.
    pub async fn get_project(&self, project_ref: &str) -> Result<Project, ManagementError> {
        self.call(ApiRequest::get(self.project_url(project_ref, &[])?))
            .await
    }

    /// `DELETE /v1/projects/{ref}`: deletes the project and everything in it.
    ///
    /// Idempotent: retried after timeouts and 5xx, and a project the API does not
    /// know (HTTP 404, e.g. deleted by an earlier call whose answer was lost) is
    /// [`ProjectDeletion::AlreadyGone`] rather than an error.
    pub async fn delete_project(
        &self,
        project_ref: &str,
    ) -> Result<ProjectDeletion, ManagementError> {
        let route = self.project_url(project_ref, &[])?;
        let request = ApiRequest::new(Method::DELETE, route, Idempotency::Idempotent);
        match self.call(request).await {
            Ok(deleted) => Ok(ProjectDeletion::Deleted(deleted)),
            Err(ManagementError::Api { status: 404, .. }) => {
                tracing::info!(project_ref, "the project to delete is already gone");
                Ok(ProjectDeletion::AlreadyGone)
            }
            Err(error) => Err(error),
        }
    }

    /// `POST /v1/projects/{ref}/pause`: starts pausing the project (`PAUSING`, then
    /// `INACTIVE`; see [`wait_until_paused`](Self::wait_until_paused)).
    ///
    /// Pausing a project that is already paused or pausing is
    /// [`ProjectChange::AlreadyUnderway`]: when the API refuses the pause (400, 409,
    /// 422), the project's status is read, and only a status other than `INACTIVE` or
    /// `PAUSING` returns the refusal. That also makes a retried pause safe.
    pub async fn pause_project(&self, project_ref: &str) -> Result<ProjectChange, ManagementError> {
        let route = self.project_url(project_ref, &["pause"])?;
        let request = ApiRequest::new(Method::POST, route, Idempotency::Idempotent);
        self.change_status(project_ref, request, ProjectStatus::is_paused_or_pausing)
            .await
    }

    /// `POST /v1/projects/{ref}/restore` (no body): starts restoring a paused
    /// project (`RESTORING`, `COMING_UP`, then `ACTIVE_HEALTHY`; see
    /// [`wait_until_restored`](Self::wait_until_restored)).
    ///
    /// Restoring a project that is already up or restoring is
    /// [`ProjectChange::AlreadyUnderway`], told apart as for
    /// [`pause_project`](Self::pause_project).
    pub async fn restore_project(
        &self,
        project_ref: &str,
    ) -> Result<ProjectChange, ManagementError> {
        let route = self.project_url(project_ref, &["restore"])?;
        let request = ApiRequest::new(Method::POST, route, Idempotency::Idempotent);
        self.change_status(project_ref, request, ProjectStatus::is_up_or_restoring)
            .await
    }

    /// Sends a pause or restore; a refusal from a project already `underway` (as its
    /// status then says) is [`ProjectChange::AlreadyUnderway`].
    async fn change_status(
        &self,
        project_ref: &str,
        request: ApiRequest,
        underway: fn(&ProjectStatus) -> bool,
    ) -> Result<ProjectChange, ManagementError> {
        let refusal = match self.call_empty(request).await {
            Ok(()) => return Ok(ProjectChange::Requested),
            Err(
                error @ ManagementError::Api {
                    status: 400 | 409 | 422,
                    ..
                },
            ) => error,
            Err(error) => return Err(error),
        };
        let status = self.get_project(project_ref).await?.status;
        if underway(&status) {
            tracing::info!(project_ref, %status, "the project is already where it was asked to go");
            Ok(ProjectChange::AlreadyUnderway(status))
        } else {
            Err(refusal)
        }
    }

    /// `GET /v1/projects/{ref}/health?services=…`: the health of the given services
    /// (sent as one `services=` pair per service, the spec's form/explode style).
    pub async fn project_health(
        &self,
        project_ref: &str,
        services: &[ServiceName],
    ) -> Result<Vec<ServiceHealth>, ManagementError> {
        if services.is_empty() {
            return Err(ManagementError::InvalidInput(
                "name at least one service to check the health of".into(),
            ));
        }
        let mut route = self.project_url(project_ref, &["health"])?;
        route
            .url
            .query_pairs_mut()
            .extend_pairs(services.iter().map(|s| ("services", s.as_str())));
        self.call(ApiRequest::get(route)).await
    }

    /// `GET /v1/projects/{ref}/api-keys?reveal=…`: the project's API keys; with
    /// `reveal`, the secret keys' values too (kept in [`SecretString`]s).
    pub async fn api_keys(
        &self,
        project_ref: &str,
        reveal: bool,
    ) -> Result<Vec<ApiKey>, ManagementError> {
        let mut route = self.project_url(project_ref, &["api-keys"])?;
        route
            .url
            .query_pairs_mut()
            .append_pair("reveal", if reveal { "true" } else { "false" });
        self.call(ApiRequest::get(route)).await
    }

    /// `POST /v1/projects/{ref}/api-keys?reveal=true`: creates a publishable or
    /// secret key and returns it with its value.
    pub async fn create_api_key(
        &self,
        project_ref: &str,
        request: &CreateApiKeyRequest,
    ) -> Result<ApiKey, ManagementError> {
        request.validate().map_err(ManagementError::InvalidInput)?;
        let mut route = self.project_url(project_ref, &["api-keys"])?;
        route.url.query_pairs_mut().append_pair("reveal", "true");
        self.call(ApiRequest::new(Method::POST, route, Idempotency::Once).json(request)?)
            .await
    }

    /// `POST /v1/projects/{ref}/database/query`: runs SQL as the `postgres` role and
    /// returns the result rows as JSON. Not retried after an ambiguous failure.
    pub async fn run_query(
        &self,
        project_ref: &str,
        query: &RunQueryRequest,
    ) -> Result<serde_json::Value, ManagementError> {
        if query.query.trim().is_empty() {
            return Err(ManagementError::InvalidInput(
                "the SQL query is empty".into(),
            ));
        }
        let route = self.project_url(project_ref, &["database", "query"])?;
        self.call(ApiRequest::new(Method::POST, route, Idempotency::Once).json(query)?)
            .await
    }

    /// `PATCH /v1/projects/{ref}/database/password`: sets the `postgres` password.
    pub async fn update_database_password(
        &self,
        project_ref: &str,
        password: &SecretString,
    ) -> Result<(), ManagementError> {
        let route = self.project_url(project_ref, &["database", "password"])?;
        let body = serde_json::json!({ "password": password.expose_str() });
        self.call_empty(ApiRequest::new(Method::PATCH, route, Idempotency::Idempotent).json(&body)?)
            .await
    }

    /// `GET /v1/projects/{ref}/config/database/pooler`: the Supavisor pooler(s).
    pub async fn pooler_config(
        &self,
        project_ref: &str,
    ) -> Result<Vec<SupavisorConfig>, ManagementError> {
        let route = self.project_url(project_ref, &["config", "database", "pooler"])?;
        self.call(ApiRequest::get(route)).await
    }

    /// `GET /v1/projects/available-regions?organization_slug=…[&continent=…]`.
    pub async fn available_regions(
        &self,
        organization_slug: &str,
        continent: Option<Continent>,
    ) -> Result<AvailableRegions, ManagementError> {
        let mut route = self.fixed_route(&["v1", "projects", "available-regions"]);
        route
            .url
            .query_pairs_mut()
            .append_pair("organization_slug", organization_slug);
        if let Some(continent) = continent {
            route
                .url
                .query_pairs_mut()
                .append_pair("continent", continent.as_str());
        }
        self.call(ApiRequest::get(route)).await
    }
}

/// `url` with any password (a proxy's credentials, say) replaced by `[redacted]`.
fn redacted_url(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        // Only URLs that cannot have credentials refuse this, and they have none.
        let _ = url.set_password(Some(tenancy_core::REDACTED));
    }
    url.into()
}

/// A project ref is lowercase ASCII letters (20 of them today); anything else is
/// refused before it reaches a URL.
fn validate_ref(project_ref: &str) -> Result<(), ManagementError> {
    let ok = !project_ref.is_empty()
        && project_ref.len() <= 64
        && project_ref
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ManagementError::InvalidInput(format!(
            "`{project_ref}` is not a project ref; a ref is the 20 lowercase letters in the project's URL"
        )))
    }
}
