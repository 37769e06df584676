use std::time::Duration;

use tenancy_core::BackendError;

use crate::ProjectStatus;

/// Everything that can go wrong talking to Supabase.
///
/// Messages say what to do next. Branch on the predicates, not on the variants:
/// [`is_retryable`](Self::is_retryable), [`is_timeout`](Self::is_timeout),
/// [`is_rate_limited`](Self::is_rate_limited), [`is_connect`](Self::is_connect),
/// [`status`](Self::status) and [`retry_after`](Self::retry_after) are the stable way
/// to tell errors apart (the same set as `stripe_billing::StripeError`'s, plus
/// [`is_ambiguous`](Self::is_ambiguous) for creates), while the enum is
/// `#[non_exhaustive]` and its variants may be split or gain fields.
/// [`From<ManagementError> for BackendError`] carries `is_retryable` into tenancy-core's
/// pipeline.
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

    /// The HTTP status of the API's answer, when it answered with an error status
    /// (429 for a rate limit); `None` when no answer was read or nothing was sent.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether the API did not answer within the client's timeout (the request may
    /// nevertheless have been applied: see [`is_ambiguous`](Self::is_ambiguous)).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Transport { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// Whether the API answered 429 (too many requests) after the retry policy gave up.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }

    /// Whether the client could not reach the API at all (no connection was made, so
    /// the request was not sent).
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Transport { source, .. } => source.is_connect(),
            _ => false,
        }
    }

    /// How long the API asked to wait before trying again: `Retry-After`, else the
    /// `X-RateLimit-Reset` of a rate limit, when sent (capped at
    /// [`RateLimitHeaders::MAX_SERVER_DELAY`](crate::RateLimitHeaders::MAX_SERVER_DELAY)).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { reset, .. } => *reset,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The predicates of one error, in one value, so a test states them all at once.
    #[derive(Debug, PartialEq, Eq)]
    struct Predicates {
        retryable: bool,
        timeout: bool,
        rate_limited: bool,
        connect: bool,
        status: Option<u16>,
        retry_after: Option<Duration>,
    }

    fn predicates(error: &ManagementError) -> Predicates {
        Predicates {
            retryable: error.is_retryable(),
            timeout: error.is_timeout(),
            rate_limited: error.is_rate_limited(),
            connect: error.is_connect(),
            status: error.status(),
            retry_after: error.retry_after(),
        }
    }

    const NONE: Predicates = Predicates {
        retryable: false,
        timeout: false,
        rate_limited: false,
        connect: false,
        status: None,
        retry_after: None,
    };

    const ENDPOINT: &str = "GET /v1/projects";

    fn api(status: u16) -> ManagementError {
        ManagementError::Api {
            endpoint: ENDPOINT.into(),
            status,
            message: "no".into(),
        }
    }

    fn transport(source: reqwest::Error) -> ManagementError {
        ManagementError::Transport {
            endpoint: ENDPOINT.into(),
            source,
        }
    }

    #[test]
    fn a_rate_limit_carries_the_servers_wait() {
        let wait = Some(Duration::from_secs(3));
        let limited = ManagementError::RateLimited {
            endpoint: ENDPOINT.into(),
            reset: wait,
        };
        assert_eq!(
            predicates(&limited),
            Predicates {
                retryable: true,
                rate_limited: true,
                status: Some(429),
                retry_after: wait,
                ..NONE
            }
        );
        let without_reset = ManagementError::RateLimited {
            endpoint: ENDPOINT.into(),
            reset: None,
        };
        assert_eq!(predicates(&without_reset).retry_after, None);
    }

    #[test]
    fn client_errors_are_final_and_server_errors_retryable() {
        for status in [400, 401, 404, 422] {
            assert_eq!(
                predicates(&api(status)),
                Predicates {
                    status: Some(status),
                    ..NONE
                },
                "{status}"
            );
        }
        for status in [408, 500, 503] {
            assert_eq!(
                predicates(&api(status)),
                Predicates {
                    retryable: true,
                    status: Some(status),
                    ..NONE
                },
                "{status}"
            );
        }
    }

    #[test]
    fn a_timeout_is_retryable_without_a_status() {
        let error = ManagementError::Timeout {
            endpoint: ENDPOINT.into(),
        };
        assert_eq!(
            predicates(&error),
            Predicates {
                retryable: true,
                timeout: true,
                ..NONE
            }
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_failure() {
        // A port that was just free: nothing listens there, so the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        assert_eq!(
            predicates(&transport(refused)),
            Predicates {
                retryable: true,
                connect: true,
                ..NONE
            }
        );
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_answer_is_not_a_connect_failure() {
        // A server that accepts the connection and closes it without answering.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || drop(listener.accept()));
        let closed = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        server.join().unwrap();
        assert_eq!(
            predicates(&transport(closed)),
            Predicates {
                retryable: true,
                ..NONE
            }
        );
    }

    #[test]
    fn errors_without_an_answer_match_no_http_predicate() {
        let not_ready = ManagementError::NotReady {
            project_ref: "abcdefghijklmnopqrst".into(),
            waited: Duration::from_secs(600),
            last_status: "COMING_UP".into(),
        };
        assert_eq!(
            predicates(&not_ready),
            Predicates {
                retryable: true,
                ..NONE
            }
        );
        let decode = ManagementError::Decode {
            endpoint: ENDPOINT.into(),
            path: "[0].status".into(),
            message: "expected a string".into(),
        };
        let failed = ManagementError::ProjectFailed {
            project_ref: "abcdefghijklmnopqrst".into(),
            status: ProjectStatus::Removed,
        };
        for error in [
            decode,
            failed,
            ManagementError::Config("bad".into()),
            ManagementError::InvalidInput("bad".into()),
        ] {
            assert_eq!(predicates(&error), NONE, "{error:?}");
        }
    }
}
