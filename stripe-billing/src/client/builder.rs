//! Configuring a [`StripeClient`].

use std::time::Duration;

use tenancy_core::{RetryPolicy, SecretString};
use url::Url;

use super::error::StripeConfigError;
use super::stripe_client::StripeClient;
use crate::DEFAULT_STRIPE_VERSION;

/// Stripe's API, the default base URL.
pub const STRIPE_API_BASE_URL: &str = "https://api.stripe.com";

/// The default timeout of one attempt (Stripe's own libraries use 80 s).
pub const DEFAULT_STRIPE_TIMEOUT: Duration = Duration::from_secs(80);

/// Builds a [`StripeClient`]; reached through [`StripeClient::builder`].
#[derive(Debug, Clone)]
pub struct StripeClientBuilder {
    secret_key: SecretString,
    base_url: String,
    stripe_version: String,
    timeout: Duration,
    retry_policy: RetryPolicy,
    http: Option<reqwest::Client>,
}

impl StripeClientBuilder {
    pub(crate) fn new(secret_key: SecretString) -> Self {
        Self {
            secret_key,
            base_url: STRIPE_API_BASE_URL.to_owned(),
            stripe_version: DEFAULT_STRIPE_VERSION.to_owned(),
            timeout: DEFAULT_STRIPE_TIMEOUT,
            retry_policy: RetryPolicy::default(),
            http: None,
        }
    }

    /// Sends requests elsewhere than `https://api.stripe.com` (a mock, a proxy).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Pins another `Stripe-Version` than [`DEFAULT_STRIPE_VERSION`].
    pub fn stripe_version(mut self, version: impl Into<String>) -> Self {
        self.stripe_version = version.into();
        self
    }

    /// Sets the timeout of each attempt (retries get a fresh one).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how failed attempts are retried (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// Shares an existing HTTP client (its connection pool) instead of building one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<StripeClient, StripeConfigError> {
        check_secret_key(&self.secret_key)?;
        let base_url = check_base_url(&self.base_url)?;
        check_stripe_version(&self.stripe_version)?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(concat!(
                    "tenancy-kit-stripe-billing/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .map_err(|error| StripeConfigError::HttpClient(error.into()))?,
        };
        Ok(StripeClient {
            http,
            secret_key: self.secret_key,
            base_url,
            stripe_version: self.stripe_version,
            timeout: self.timeout,
            retry_policy: self.retry_policy,
        })
    }
}

fn check_secret_key(key: &SecretString) -> Result<(), StripeConfigError> {
    let key = key.expose_str();
    let problem = if key.trim().is_empty() {
        "is empty"
    } else if key.starts_with("pk_") {
        "is a publishable key, which cannot call the API"
    } else if key.starts_with("whsec_") {
        "is a webhook signing secret, not an API key"
    } else if !(key.starts_with("sk_") || key.starts_with("rk_")) {
        "does not start with sk_ or rk_"
    } else if key.len() <= "sk_".len() {
        "has nothing after its prefix"
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        "contains white space or non-ascii characters (copied with a line break?)"
    } else {
        return Ok(());
    };
    Err(StripeConfigError::InvalidSecretKey(problem))
}

fn check_base_url(text: &str) -> Result<String, StripeConfigError> {
    let refuse = |reason: &str| StripeConfigError::InvalidBaseUrl {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text).map_err(|error| refuse(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme is not http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it has a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(StripeConfigError::InvalidBaseUrl {
            url: shown.to_string(),
            reason: "it carries credentials; the secret key is sent as a bearer token".to_owned(),
        });
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn check_stripe_version(version: &str) -> Result<(), StripeConfigError> {
    let usable = !version.is_empty() && version.bytes().all(|b| b.is_ascii_graphic());
    if usable {
        Ok(())
    } else {
        Err(StripeConfigError::InvalidStripeVersion(version.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_key(key: &str) -> String {
        match check_secret_key(&SecretString::from(key)) {
            Err(StripeConfigError::InvalidSecretKey(reason)) => reason.to_owned(),
            other => panic!("{key:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn secret_and_restricted_keys_are_accepted() {
        for key in ["sk_test_51Habc", "sk_live_x", "rk_test_abc"] {
            assert!(check_secret_key(&SecretString::from(key)).is_ok(), "{key}");
        }
    }

    #[test]
    fn other_keys_are_refused_with_a_reason() {
        assert!(refused_key("").contains("empty"));
        assert!(refused_key("pk_test_abc").contains("publishable"));
        assert!(refused_key("whsec_abc").contains("webhook"));
        assert!(refused_key("sbp_abc").contains("sk_"));
        assert!(refused_key("sk_").contains("nothing"));
        assert!(refused_key("sk_test_abc\n").contains("white space"));
    }

    #[test]
    fn base_urls_are_normalised_or_refused() {
        assert_eq!(
            check_base_url("http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            check_base_url("https://proxy.example/stripe/").unwrap(),
            "https://proxy.example/stripe"
        );
        for bad in [
            "api.stripe.com",
            "ftp://api.stripe.com",
            "https://a.example/?x=1",
            "https://u:hunter2@a.example",
        ] {
            let error = check_base_url(bad).unwrap_err();
            assert!(
                matches!(error, StripeConfigError::InvalidBaseUrl { .. }),
                "{bad}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn versions_must_fit_in_a_header() {
        assert!(check_stripe_version(DEFAULT_STRIPE_VERSION).is_ok());
        assert!(check_stripe_version("").is_err());
        assert!(check_stripe_version("2025-11-17 clover").is_err());
    }
}
