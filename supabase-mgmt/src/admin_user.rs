//! `SupabaseAdminUserCreator`: the tenant's first user, through the project's Auth admin API.

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use tenancy_core::{
    AdminUser, AdminUserCreator, BackendError, DatabaseTarget, EmailAddress, SecretString, Tenant,
};
use url::Url;

use crate::transport::{ApiRequest, Credentials, Idempotency, Route};
use crate::{ApiKey, ApiKeyType, ManagementClient, ManagementError};

/// The default project URL: the project's own API on supabase.co.
pub const DEFAULT_PROJECT_URL_TEMPLATE: &str = "https://{ref}.supabase.co";

const USERS_PER_PAGE: u32 = 100;
const MAX_USER_PAGES: u32 = 100;

/// How the admin user is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AdminUserMode {
    /// `POST /auth/v1/admin/users` with `email_confirm: true`: the user exists at once
    /// and sets a password through the usual recovery flow.
    #[default]
    Create,
    /// `POST /auth/v1/invite`: Supabase emails the user an invitation link.
    Invite,
}

/// An [`AdminUserCreator`] that creates the tenant's first user in its Supabase
/// project's Auth, with the project's secret (or legacy `service_role`) key read
/// through the Management API.
///
/// Idempotent: when Auth answers that the email is already registered, the user is
/// looked up and returned with `created: false`.
///
/// ```no_run
/// use supabase_mgmt::{AdminUserMode, ManagementClient, SupabaseAdminUserCreator};
///
/// # fn run(client: ManagementClient) -> Result<(), supabase_mgmt::ManagementError> {
/// let admins = SupabaseAdminUserCreator::new(client)
///     .with_project_url_template("https://{ref}.auth.example.com")?
///     .with_mode(AdminUserMode::Invite);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SupabaseAdminUserCreator {
    client: ManagementClient,
    project_url_template: String,
    mode: AdminUserMode,
}

#[derive(Deserialize)]
struct AuthUser {
    id: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct AuthUserPage {
    users: Vec<AuthUser>,
}

impl SupabaseAdminUserCreator {
    /// A creator using [`DEFAULT_PROJECT_URL_TEMPLATE`] and [`AdminUserMode::Create`].
    pub fn new(client: ManagementClient) -> Self {
        Self {
            client,
            project_url_template: DEFAULT_PROJECT_URL_TEMPLATE.to_owned(),
            mode: AdminUserMode::Create,
        }
    }

    /// Uses another project URL, with `{ref}` standing for the project ref (custom
    /// domains, proxies, tests).
    pub fn with_project_url_template(
        mut self,
        template: impl Into<String>,
    ) -> Result<Self, ManagementError> {
        let template = template.into();
        if !template.contains("{ref}") {
            return Err(ManagementError::Config(format!(
                "project URL template `{template}` has no `{{ref}}`; write it like https://{{ref}}.supabase.co"
            )));
        }
        self.project_url_template = template;
        self.project_url("abcdefghijklmnopqrst")?;
        Ok(self)
    }

    /// Chooses between creating the user and inviting it.
    pub fn with_mode(mut self, mode: AdminUserMode) -> Self {
        self.mode = mode;
        self
    }

    /// The project's URL, from the template.
    pub fn project_url(&self, project_ref: &str) -> Result<Url, ManagementError> {
        let raw = self.project_url_template.replace("{ref}", project_ref);
        let url = Url::parse(&raw).map_err(|e| {
            ManagementError::Config(format!(
                "project URL `{raw}` is not a URL ({e}); fix the project URL template"
            ))
        })?;
        if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
            return Err(ManagementError::Config(format!(
                "project URL `{raw}` must be an http(s) URL"
            )));
        }
        Ok(url)
    }

    /// Creates (or finds) the admin user with `email` in the project `project_ref`;
    /// [`AdminUserCreator::create_admin`] with a typed error.
    pub async fn create_admin_user(
        &self,
        project_ref: &str,
        email: &EmailAddress,
    ) -> Result<AdminUser, ManagementError> {
        let credentials = self.service_credentials(project_ref).await?;
        let base = self.project_url(project_ref)?;
        match self.create_user(&base, &credentials, email).await {
            Ok(user) => {
                tracing::info!(project_ref, user_id = %user.id, "created the tenant's admin user");
                Ok(AdminUser::new(user.id, email.clone(), true))
            }
            Err(error) if is_already_registered(&error) => {
                let user = self
                    .find_user(project_ref, &base, &credentials, email)
                    .await?;
                tracing::info!(project_ref, user_id = %user.id, "the admin user already existed");
                Ok(AdminUser::new(user.id, email.clone(), false))
            }
            Err(error) => Err(error),
        }
    }

    async fn service_credentials(&self, project_ref: &str) -> Result<Credentials, ManagementError> {
        let keys = self.client.api_keys(project_ref, true).await?;
        let chosen = pick_service_key(keys).ok_or_else(|| ManagementError::NoServiceKey {
            project_ref: project_ref.to_owned(),
        })?;
        let bearer = !matches!(chosen.key_type, Some(ApiKeyType::Secret));
        let key = chosen
            .api_key
            .unwrap_or_else(|| SecretString::new(String::new()));
        Ok(Credentials::ProjectKey { key, bearer })
    }

    async fn create_user(
        &self,
        base: &Url,
        credentials: &Credentials,
        email: &EmailAddress,
    ) -> Result<AuthUser, ManagementError> {
        let (path, body) = match self.mode {
            AdminUserMode::Create => (
                "auth/v1/admin/users",
                serde_json::json!({ "email": email.as_str(), "email_confirm": true }),
            ),
            AdminUserMode::Invite => (
                "auth/v1/invite",
                serde_json::json!({ "email": email.as_str() }),
            ),
        };
        let url = join(base, path, &[])?;
        // Retrying after an ambiguous failure never makes a second user: a repeated create
        // answers "already registered" (handled above). A repeated invite of a user who
        // has not accepted yet may send a second email, which is harmless.
        let request = ApiRequest::new(Method::POST, Route::fixed(url), Idempotency::Idempotent)
            .with_credentials(credentials.clone())
            .json(&body)?;
        self.client.call(request).await
    }

    async fn find_user(
        &self,
        project_ref: &str,
        base: &Url,
        credentials: &Credentials,
        email: &EmailAddress,
    ) -> Result<AuthUser, ManagementError> {
        let per_page = USERS_PER_PAGE.to_string();
        for page in 1..=MAX_USER_PAGES {
            let page_number = page.to_string();
            let query = [
                ("filter", email.as_str()),
                ("page", &page_number),
                ("per_page", &per_page),
            ];
            let url = join(base, "auth/v1/admin/users", &query)?;
            let request = ApiRequest::get(Route::fixed(url)).with_credentials(credentials.clone());
            let batch: AuthUserPage = self.client.call(request).await?;
            let count = batch.users.len();
            let found = batch.users.into_iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email.as_str()))
            });
            if let Some(user) = found {
                return Ok(user);
            }
            if count < USERS_PER_PAGE as usize {
                break;
            }
        }
        Err(ManagementError::AdminUserNotFound {
            project_ref: project_ref.to_owned(),
        })
    }
}

/// The revealed secret key whose role is `service_role`, else the legacy
/// `service_role` JWT (as the Supabase CLI chooses). Secret keys of other roles
/// are never used: they cannot create users.
fn pick_service_key(keys: Vec<ApiKey>) -> Option<ApiKey> {
    let mut usable: Vec<ApiKey> = keys
        .into_iter()
        .filter(|k| k.is_service_key() && k.api_key.as_ref().is_some_and(|s| !s.is_blank()))
        .collect();
    let secret = usable.iter().position(ApiKey::is_service_role_secret);
    match secret {
        Some(index) => Some(usable.swap_remove(index)),
        None => usable.into_iter().next(),
    }
}

/// GoTrue answers 422 (`email_exists`, "already been registered") for a known email.
fn is_already_registered(error: &ManagementError) -> bool {
    match error {
        ManagementError::Api {
            status: 400 | 409 | 422,
            message,
            ..
        } => {
            let message = message.to_ascii_lowercase();
            message.contains("already been registered")
                || message.contains("already registered")
                || message.contains("email_exists")
        }
        _ => false,
    }
}

fn join(base: &Url, path: &str, query: &[(&str, &str)]) -> Result<Url, ManagementError> {
    let mut url = base.clone();
    {
        let mut segments = url.path_segments_mut().map_err(|_| {
            ManagementError::Config(format!("project URL `{base}` cannot have a path"))
        })?;
        segments.pop_if_empty().extend(path.split('/'));
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

#[async_trait]
impl AdminUserCreator for SupabaseAdminUserCreator {
    async fn create_admin(
        &self,
        tenant: &Tenant,
        database: &DatabaseTarget,
    ) -> Result<AdminUser, BackendError> {
        let project_ref = database.external_ref.as_deref().ok_or_else(|| {
            BackendError::permanent(ManagementError::InvalidInput(format!(
                "tenant `{}` has no Supabase project ref recorded; provision it with SupabaseProvisioner first",
                tenant.id
            )))
        })?;
        Ok(self
            .create_admin_user(project_ref, &tenant.admin_email)
            .await?)
    }
}
