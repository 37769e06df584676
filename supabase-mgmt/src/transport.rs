//! The one path every request takes: pacing, sending, reading rate-limit headers,
//! classifying failures, and retrying through tenancy-core's `RetryPolicy`.

use std::fmt;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tenancy_core::{RetryDecision, SecretString};
use url::Url;

use crate::{ManagementClient, ManagementError, RateLimitHeaders};

/// Which failures a request may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// Safe to repeat: retried on 429, 408, 5xx, timeouts and transport errors.
    Idempotent,
    /// Not safe to repeat blindly: retried only when it certainly had no effect
    /// (a 429, a connection that could not be opened). An ambiguous failure is
    /// returned to the caller, who checks before trying again.
    Once,
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// The Management API token, paced by the client's shared schedule.
    Management,
    /// A project API key for the project's own APIs (Auth); sent as `apikey`, and as
    /// a bearer token too when it is a legacy JWT key.
    ProjectKey { key: SecretString, bearer: bool },
}

/// Where a request goes: its URL, and the path template that names its endpoint
/// scope for pacing (`/v1/projects/{ref}/health`).
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) url: Url,
    pub(crate) template: String,
}

impl Route {
    /// A route whose URL path is its own template (no parameters in the path).
    pub(crate) fn fixed(url: Url) -> Self {
        let template = url.path().to_owned();
        Self { url, template }
    }
}

/// One request, described before it is sent (possibly several times).
///
/// `Debug` leaves the body out: it may hold a database password.
pub(crate) struct ApiRequest {
    method: Method,
    url: Url,
    template: String,
    body: Option<Vec<u8>>,
    idempotency: Idempotency,
    credentials: Credentials,
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiRequest")
            .field("endpoint", &self.endpoint())
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .field("idempotency", &self.idempotency)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl ApiRequest {
    pub(crate) fn new(method: Method, route: Route, idempotency: Idempotency) -> Self {
        Self {
            method,
            url: route.url,
            template: route.template,
            body: None,
            idempotency,
            credentials: Credentials::Management,
        }
    }

    pub(crate) fn get(route: Route) -> Self {
        Self::new(Method::GET, route, Idempotency::Idempotent)
    }

    pub(crate) fn json<T: serde::Serialize>(mut self, body: &T) -> Result<Self, ManagementError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            ManagementError::InvalidInput(format!("request body does not serialize: {e}"))
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub(crate) fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// `METHOD /path`, as errors and logs name the request (never the query, which
    /// could carry a filter with personal data).
    pub(crate) fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }

    /// `METHOD /path/{template}`: the endpoint scope the API counts this request in.
    pub(crate) fn scope(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

impl ManagementClient {
    /// Sends `request` and decodes its JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
    ) -> Result<T, ManagementError> {
        let endpoint = request.endpoint();
        let body = self.execute(request).await?;
        decode(&endpoint, &body)
    }

    /// Sends `request` and ignores its answer's body.
    pub(crate) async fn call_empty(&self, request: ApiRequest) -> Result<(), ManagementError> {
        self.execute(request).await.map(drop)
    }

    /// Sends `request` through the retry policy; returns the body of a 2xx answer.
    pub(crate) async fn execute(&self, request: ApiRequest) -> Result<Vec<u8>, ManagementError> {
        let idempotency = request.idempotency;
        self.retry_policy()
            .run(
                |attempt| self.attempt(&request, attempt),
                |error| classify(error, idempotency),
            )
            .await
    }

    async fn attempt(
        &self,
        request: &ApiRequest,
        attempt: u32,
    ) -> Result<Vec<u8>, ManagementError> {
        let endpoint = request.endpoint();
        let permit = match request.credentials {
            Credentials::Management => Some(self.pacer().acquire(&request.scope()).await),
            Credentials::ProjectKey { .. } => None,
        };
        let response = self
            .build(request)?
            .send()
            .await
            .map_err(|source| transport_error(&endpoint, source))?;
        let status = response.status();
        let limits = RateLimitHeaders::from_headers(response.headers());
        if let Some(permit) = &permit {
            self.pacer()
                .observe(permit, &limits, status == StatusCode::TOO_MANY_REQUESTS);
        }
        tracing::debug!(%endpoint, attempt, status = status.as_u16(), remaining = ?limits.remaining, "supabase answered");
        let body = response
            .bytes()
            .await
            .map_err(|source| transport_error(&endpoint, source))?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ManagementError::RateLimited {
                endpoint,
                reset: limits.wait(),
            });
        }
        if !status.is_success() {
            let message = error_message(&body);
            return Err(ManagementError::Api {
                endpoint,
                status: status.as_u16(),
                message,
            });
        }
        Ok(body.to_vec())
    }

    fn build(&self, request: &ApiRequest) -> Result<reqwest::RequestBuilder, ManagementError> {
        let mut builder = self
            .http()
            .request(request.method.clone(), request.url.clone());
        builder = match &request.credentials {
            Credentials::Management => builder.header(AUTHORIZATION, self.authorization().clone()),
            Credentials::ProjectKey { key, bearer } => {
                let value = sensitive_header(key.expose_str())?;
                let builder = builder.header("apikey", value);
                if *bearer {
                    builder.header(
                        AUTHORIZATION,
                        sensitive_header(&format!("Bearer {}", key.expose_str()))?,
                    )
                } else {
                    builder
                }
            }
        };
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        Ok(builder)
    }
}

/// A header value marked sensitive (hidden from `Debug` by the HTTP stack).
pub(crate) fn sensitive_header(value: &str) -> Result<HeaderValue, ManagementError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        ManagementError::Config("a token or key contains characters not allowed in an HTTP header; copy it again without spaces or line breaks".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn transport_error(endpoint: &str, source: reqwest::Error) -> ManagementError {
    let endpoint = endpoint.to_owned();
    if source.is_timeout() {
        ManagementError::Timeout { endpoint }
    } else {
        ManagementError::Transport {
            endpoint,
            source: source.without_url(),
        }
    }
}

/// The retry classifier of the send path.
fn classify(error: &ManagementError, idempotency: Idempotency) -> RetryDecision {
    let idempotent = idempotency == Idempotency::Idempotent;
    match error {
        ManagementError::RateLimited {
            reset: Some(wait), ..
        } => RetryDecision::RetryAfter(*wait),
        ManagementError::RateLimited { reset: None, .. } => RetryDecision::Retry,
        ManagementError::Transport { source, .. } if source.is_connect() => RetryDecision::Retry,
        ManagementError::Transport { .. } | ManagementError::Timeout { .. } if idempotent => {
            RetryDecision::Retry
        }
        ManagementError::Api { status, .. } if idempotent && (*status == 408 || *status >= 500) => {
            RetryDecision::Retry
        }
        _ => RetryDecision::GiveUp,
    }
}

/// Decodes a JSON answer, naming the path of the field that failed.
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: &str,
    body: &[u8],
) -> Result<T, ManagementError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| ManagementError::Decode {
        endpoint: endpoint.to_owned(),
        path: error.path().to_string(),
        message: error.inner().to_string(),
    })
}

/// The human message of an error body: Supabase's `message`, GoTrue's `msg` or
/// `error_description`, a string `error`, or the start of the body.
fn error_message(body: &[u8]) -> String {
    const KEYS: [&str; 4] = ["message", "msg", "error_description", "error"];
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = parsed.as_ref().and_then(|json| {
        KEYS.iter()
            .find_map(|key| json.get(key).and_then(|v| v.as_str()).map(str::to_owned))
    });
    from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text.chars().take(200).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_json_body() {
        assert_eq!(
            error_message(br#"{"message":"Project not found"}"#),
            "Project not found"
        );
        assert_eq!(
            error_message(br#"{"code":422,"msg":"already registered"}"#),
            "already registered"
        );
        assert_eq!(
            error_message(b"<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn only_idempotent_requests_are_retried_after_ambiguous_failures() {
        let server_error = ManagementError::Api {
            endpoint: "POST /v1/projects".into(),
            status: 503,
            message: String::new(),
        };
        assert_eq!(
            classify(&server_error, Idempotency::Idempotent),
            RetryDecision::Retry
        );
        assert_eq!(
            classify(&server_error, Idempotency::Once),
            RetryDecision::GiveUp
        );
        let timeout = ManagementError::Timeout {
            endpoint: "POST /v1/projects".into(),
        };
        assert_eq!(classify(&timeout, Idempotency::Once), RetryDecision::GiveUp);
        let limited = ManagementError::RateLimited {
            endpoint: "POST /v1/projects".into(),
            reset: Some(std::time::Duration::from_secs(2)),
        };
        assert_eq!(
            classify(&limited, Idempotency::Once),
            RetryDecision::RetryAfter(std::time::Duration::from_secs(2))
        );
        let bad_request = ManagementError::Api {
            endpoint: "GET /v1/projects".into(),
            status: 400,
            message: String::new(),
        };
        assert_eq!(
            classify(&bad_request, Idempotency::Idempotent),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn a_request_debug_shows_neither_its_body_nor_its_key() {
        let url = Url::parse("https://api.supabase.com/v1/projects").unwrap();
        let body = serde_json::json!({ "db_pass": "hunter2-database-password" });
        let request = ApiRequest::new(Method::POST, Route::fixed(url), Idempotency::Once)
            .json(&body)
            .unwrap()
            .with_credentials(Credentials::ProjectKey {
                key: "sb_secret_abcdef".into(),
                bearer: false,
            });
        let printed = format!("{request:?}");
        assert!(printed.contains("POST /v1/projects"), "{printed}");
        assert!(!printed.contains("hunter2") && !printed.contains("sb_secret_abcdef"));
    }

    #[test]
    fn decode_errors_name_the_failing_field() {
        let error = decode::<Vec<crate::Organization>>(
            "GET /v1/organizations",
            br#"[{"slug":"a","name":"A"},{"slug":"b"}]"#,
        )
        .unwrap_err();
        match error {
            ManagementError::Decode { path, message, .. } => {
                assert_eq!(path, "[1]");
                assert!(message.contains("name"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
