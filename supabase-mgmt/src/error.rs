use std::time::Duration;

use tenancy_core::BackendError;

use crate::ProjectStatus;

/// Everything that can go wrong talking to Supabase.
///
/// Messages say what to do next. [`is_retryable`](Self::is_retryable) tells whether
/// trying again later may help; [`From<ManagementError> for BackendError`] carries that
/// into tenancy-core's pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagementError {
    /// The API answered with an error status.
    #[error("{endpoint} answered HTTP {status}: {message}; {hint}", hint = api_hint(*status))]
    Api {
        /// The request, as `METHOD /path`.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The `message` of the JSON error body (or the body's start).
        message: String,
    },
    /// The API kept answering 429 after the retry policy gave up.
    #[error("{endpoint} is rate limited (HTTP 429, {}); wait for the reset, or pace requests with ManagementClientBuilder::pacing so a burst stays under the limit", describe_reset(*reset))]
    RateLimited {
        /// The request, as `METHOD /path`.
        endpoint: String,
        /// When the limit resets, from `Retry-After` or `X-RateLimit-Reset`.
        reset: Option<Duration>,
    },
    /// The request timed out.
    #[error("{endpoint} timed out; the API may be slow or unreachable, try again or raise ManagementClientBuilder::timeout")]
    Timeout {
        /// The request, as `METHOD /path`.
        endpoint: String,
    },
    /// The project did not become ready in time.
    #[error("project {project_ref} is not ready after {waited:?} (last seen: {last_status}); wait longer or check the project in the Supabase dashboard")]
    NotReady {
        /// The project ref.
        project_ref: String,
        /// How long we waited.
        waited: Duration,
        /// The last status or health seen.
        last_status: String,
    },
    /// The project is in a state it will not leave by itself.
    #[error("project {project_ref} is {status}, which it will not leave by itself; provisioning the tenant again replaces a failed project and restores a paused one, otherwise act on it in the Supabase dashboard")]
    ProjectFailed {
        /// The project ref.
        project_ref: String,
        /// Its status.
        status: ProjectStatus,
    },
    /// The request could not be sent or its answer not read.
    #[error("could not reach {endpoint}: {source}; check the network and the base URL")]
    Transport {
        /// The request, as `METHOD /path`.
        endpoint: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer did not have the shape the spec describes.
    #[error("could not decode the answer of {endpoint} at `{path}`: {message}; the API may have changed, upgrade supabase-mgmt or report it")]
    Decode {
        /// The request, as `METHOD /path`.
        endpoint: String,
        /// The JSON path of the field that failed (`[2].status`, `.` for the root).
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// The client or provisioner was configured with an unusable value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Auth refused to create the admin user as already registered, yet does not list it.
    #[error("project {project_ref}'s Auth says the admin email is registered but lists no such user; check the project's users in the Supabase dashboard")]
    AdminUserNotFound {
        /// The project ref.
        project_ref: String,
    },
    /// The project has no key that may create users.
    #[error("project {project_ref} has neither a secret API key whose secret_jwt_template.role is `service_role` nor the legacy `service_role` key; create such a secret key (dashboard: Project Settings > API Keys) and try again")]
    NoServiceKey {
        /// The project ref.
        project_ref: String,
    },
}

fn describe_reset(reset: Option<Duration>) -> String {
    match reset {
        Some(reset) => format!("resets in {:.1} s", reset.as_secs_f64()),
        None => "no reset time given".to_owned(),
    }
}

fn api_hint(status: u16) -> &'static str {
    match status {
        401 => "check the access token",
        403 => "the token may not act on this organization or project",
        404 => "check the project ref or organization slug",
        400 | 422 => "check the request's fields",
        500..=599 => "Supabase had a problem; try again later",
        _ => "see the message",
    }
}

impl ManagementError {
    /// Whether trying again later may help (rate limits, timeouts, 5xx, transport
    /// errors, a project still coming up, and a project that provisioning again
    /// repairs: `INIT_FAILED` or `RESTORE_FAILED`, replaced, and `INACTIVE`, restored).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 408 || *status >= 500,
            Self::RateLimited { .. }
            | Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::NotReady { .. } => true,
            // The next provisioning attempt replaces or restores such a project.
            Self::ProjectFailed { status, .. } => {
                status.needs_replacing() || *status == ProjectStatus::Inactive
            }
            _ => false,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether a create that failed this way may nevertheless have happened on the
    /// server: a timeout, a broken connection after the request left, any 5xx (a
    /// gateway's 502/504/524 says nothing of what the API behind it did).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Transport { source, .. } => !source.is_connect(),
            Self::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl From<ManagementError> for BackendError {
    fn from(error: ManagementError) -> Self {
        if error.is_retryable() {
            BackendError::transient(error)
        } else {
            BackendError::permanent(error)
        }
    }
}
