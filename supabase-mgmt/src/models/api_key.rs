use serde::{Deserialize, Serialize};
use tenancy_core::SecretString;

tenancy_core::open_enum! {
    /// The kind of an API key (`ApiKeyResponse.type`).
    pub enum ApiKeyType {
        /// `legacy`: a JWT key (`anon`, `service_role`).
        Legacy => "legacy",
        /// `publishable`: safe in a browser (`sb_publishable_…`).
        Publishable => "publishable",
        /// `secret`: server-side only, bypasses row-level security (`sb_secret_…`).
        Secret => "secret",
    }
    /// A kind this version of the crate does not know, kept as sent.
    other Unknown
}

/// A project API key (`ApiKeyResponse`). The key itself is present only when listed
/// with `reveal=true`, and is kept secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ApiKey {
    /// The key's name (`anon`, `service_role`, or the name given at creation).
    pub name: String,
    /// The key, when revealed.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// The key's id (new-style keys).
    #[serde(default)]
    pub id: Option<String>,
    /// The key's kind.
    #[serde(rename = "type", default)]
    pub key_type: Option<ApiKeyType>,
    /// The visible prefix of the key.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The key's description.
    #[serde(default)]
    pub description: Option<String>,
    /// The claims of the JWT a new-style secret key stands for; its `role` says
    /// which Postgres role the key acts as (`service_role` for the service key).
    #[serde(default)]
    pub secret_jwt_template: Option<serde_json::Map<String, serde_json::Value>>,
    /// When it was created.
    #[serde(default)]
    pub inserted_at: Option<String>,
    /// When it was last changed.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl ApiKey {
    /// The role of a new-style secret key (`secret_jwt_template.role`).
    pub fn role(&self) -> Option<&str> {
        self.secret_jwt_template.as_ref()?.get("role")?.as_str()
    }

    /// Whether this is a new-style secret key acting as `service_role`, the one the
    /// Supabase CLI uses for admin calls (a secret key may stand for another role).
    pub fn is_service_role_secret(&self) -> bool {
        self.key_type == Some(ApiKeyType::Secret)
            && self
                .role()
                .is_some_and(|role| role.eq_ignore_ascii_case("service_role"))
    }

    /// Whether this is the legacy `service_role` JWT.
    pub fn is_legacy_service_role(&self) -> bool {
        matches!(self.key_type, Some(ApiKeyType::Legacy) | None) && self.name == "service_role"
    }

    /// Whether this key can act as the project's service role: a secret key whose
    /// role is `service_role`, or the legacy `service_role` JWT.
    pub fn is_service_key(&self) -> bool {
        self.is_service_role_secret() || self.is_legacy_service_role()
    }
}

/// The kind of key [`CreateApiKeyRequest`] creates (`CreateApiKeyBody.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NewApiKeyType {
    /// A publishable key.
    Publishable,
    /// A secret key.
    Secret,
}

/// The body of `POST /v1/projects/{ref}/api-keys` (`CreateApiKeyBody`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CreateApiKeyRequest {
    /// The kind of key.
    #[serde(rename = "type")]
    pub key_type: NewApiKeyType,
    /// Its name: 4 to 64 characters of `a-z`, `0-9`, `_`, not starting with a digit.
    pub name: String,
    /// An optional description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl CreateApiKeyRequest {
    /// A request for a key of `key_type` named `name` (validated when sent).
    pub fn new(key_type: NewApiKeyType, name: impl Into<String>) -> Self {
        Self {
            key_type,
            name: name.into(),
            description: None,
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Checks the name against the spec's pattern `^[a-z_][a-z0-9_]+$` (4 to 64 chars).
    pub(crate) fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let first_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
        let rest_ok = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if (4..=64).contains(&name.len()) && first_ok && rest_ok {
            Ok(())
        } else {
            Err(format!(
                "API key name `{name}` is invalid; use 4 to 64 characters of a-z, 0-9 and _, not starting with a digit"
            ))
        }
    }
}
