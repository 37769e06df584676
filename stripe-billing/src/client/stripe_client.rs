//! The client and the one place where requests are sent, retried and read.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde::de::DeserializeOwned;
use tenancy_core::{RetryPolicy, SecretString};

use super::builder::StripeClientBuilder;
use super::error::StripeError;
use super::form::Form;
use super::idempotency::IdempotencyKey;
use super::response::{error_from_response, ResponseHeaders};
use super::retry::classify;

/// A client of Stripe's API for the calls a subscription SaaS needs: customers,
/// Checkout sessions, subscriptions and billing-portal sessions.
///
/// Every request sends the secret key as a bearer token and the pinned
/// `Stripe-Version`; every mutating request sends an [`IdempotencyKey`]; failed
/// attempts are retried through the configured [`RetryPolicy`]. Cloning is cheap and
/// shares the connection pool. `Debug` never shows the secret key.
#[derive(Debug, Clone)]
pub struct StripeClient {
    pub(super) http: reqwest::Client,
    pub(super) secret_key: SecretString,
    pub(super) base_url: String,
    pub(super) stripe_version: String,
    pub(super) timeout: Duration,
    pub(super) retry_policy: RetryPolicy,
}

/// The HTTP methods the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Delete => Method::DELETE,
        }
    }
}

/// One request, ready to be sent as many times as the retry policy allows.
struct Request<'a> {
    verb: Verb,
    path: &'a str,
    body: Option<String>,
    idempotency_key: Option<&'a IdempotencyKey>,
    expected: &'static str,
}

impl StripeClient {
    /// Starts configuring a client with a secret (`sk_…`) or restricted (`rk_…`) key.
    pub fn builder(secret_key: impl Into<SecretString>) -> StripeClientBuilder {
        StripeClientBuilder::new(secret_key.into())
    }

    /// The pinned `Stripe-Version`.
    pub fn stripe_version(&self) -> &str {
        &self.stripe_version
    }

    /// `GET {path}`, decoded as `T` (a Stripe object named `expected`).
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        expected: &'static str,
    ) -> Result<T, StripeError> {
        self.send(Request {
            verb: Verb::Get,
            path,
            body: None,
            idempotency_key: None,
            expected,
        })
        .await
    }

    /// `GET {path}?{query}` (a list endpoint's filters and paging, in Stripe's form
    /// encoding), decoded as `T`.
    pub(crate) async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Form,
        expected: &'static str,
    ) -> Result<T, StripeError> {
        if query.is_empty() {
            return self.get(path, expected).await;
        }
        let path = format!("{path}?{}", query.encode());
        self.get(&path, expected).await
    }

    /// `POST {path}` with a form body and an idempotency key, decoded as `T`.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &IdempotencyKey,
        expected: &'static str,
    ) -> Result<T, StripeError> {
        self.send(Request {
            verb: Verb::Post,
            path,
            body: Some(form.encode()),
            idempotency_key: Some(idempotency_key),
            expected,
        })
        .await
    }

    /// `DELETE {path}`, decoded as `T`. Stripe ignores idempotency keys on `DELETE`
    /// (deleting twice ends in the same state), so none is sent.
    pub(crate) async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        expected: &'static str,
    ) -> Result<T, StripeError> {
        self.send(Request {
            verb: Verb::Delete,
            path,
            body: None,
            idempotency_key: None,
            expected,
        })
        .await
    }

    async fn send<T: DeserializeOwned>(&self, request: Request<'_>) -> Result<T, StripeError> {
        let request = &request;
        self.retry_policy
            .run(|attempt| self.attempt(request, attempt), classify)
            .await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        attempt: u32,
    ) -> Result<T, StripeError> {
        tracing::debug!(
            method = request.verb.as_str(),
            path = request.path,
            attempt,
            idempotency_key = request.idempotency_key.map(IdempotencyKey::as_str),
            "stripe request"
        );
        let response = self
            .http_request(request)
            .send()
            .await
            .map_err(|e| self.transport_error(request, e))?;
        let status = response.status().as_u16();
        let headers = ResponseHeaders::read(response.headers());
        let body = response
            .text()
            .await
            .map_err(|e| self.transport_error(request, e))?;
        if !(200..300).contains(&status) {
            tracing::debug!(status, request_id = headers.request_id, "stripe error");
            return Err(error_from_response(status, headers, &body));
        }
        serde_json::from_str(&body).map_err(|source| StripeError::Decode {
            path: request.path.to_owned(),
            expected: request.expected,
            source,
        })
    }

    /// The HTTP request of one attempt: auth, version, idempotency key, body.
    fn http_request(&self, request: &Request<'_>) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base_url, request.path);
        let mut builder = self
            .http
            .request(request.verb.method(), url)
            .bearer_auth(self.secret_key.expose_str())
            .header("Stripe-Version", &self.stripe_version)
            .timeout(self.timeout);
        if let Some(key) = request.idempotency_key {
            builder = builder.header("Idempotency-Key", key.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.clone());
        }
        builder
    }

    fn transport_error(&self, request: &Request<'_>, error: reqwest::Error) -> StripeError {
        let method = request.verb.as_str();
        let path = request.path.to_owned();
        if error.is_timeout() {
            StripeError::Timeout {
                method,
                path,
                timeout: self.timeout,
            }
        } else {
            StripeError::Transport {
                method,
                path,
                source: error.into(),
            }
        }
    }
}
