//! Configuration from the environment, with the service's variable names, validated at
//! start with messages that name the variable to fix.

use std::time::Duration;

use supabase_mgmt::{InstanceSize, RegionSelection};
use tenancy_core::SecretString;

/// A configuration problem, naming the variable to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is not set; {hint}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// How to fix it.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Reads variables; the process environment in production, a map in tests.
pub trait Env {
    /// The variable's value, if set and not blank.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Supabase settings: present when `SUPABASE_ACCESS_TOKEN` is set.
#[derive(Debug, Clone)]
pub struct SupabaseConfig {
    /// `SUPABASE_ACCESS_TOKEN`: a personal access token (`sbp_…`).
    pub access_token: SecretString,
    /// `SUPABASE_ORGANIZATION_SLUG`, or the older `SUPABASE_ORGANIZATION_ID`.
    pub organization_slug: String,
    /// `SUPABASE_REGION`: a region code (`eu-central-1`) or smart group (`emea`);
    /// unset, the smart group Supabase recommends for the organization.
    pub region: Option<RegionSelection>,
    /// `SUPABASE_PLAN`: the compute size of new projects (`micro`, `small`, …);
    /// unset, the smallest.
    pub instance_size: Option<InstanceSize>,
    /// `SUPABASE_API_URL`: the Management API's base URL (default `https://api.supabase.com`).
    pub api_url: Option<String>,
    /// `SUPABASE_PROJECT_URL_TEMPLATE` (default `https://{ref}.supabase.co`).
    pub project_url_template: Option<String>,
    /// `SUPABASE_PASSWORD_SECRET`: derives each tenant's database password, so an adopted
    /// project's password can be recomputed (defaults to the access token).
    pub password_secret: SecretString,
}

impl SupabaseConfig {
    /// Reads the Supabase settings; `Ok(None)` when `SUPABASE_ACCESS_TOKEN` is unset.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(token) = env.var("SUPABASE_ACCESS_TOKEN") else {
            return Ok(None);
        };
        let organization_slug = env
            .var("SUPABASE_ORGANIZATION_SLUG")
            .or_else(|| env.var("SUPABASE_ORGANIZATION_ID"))
            .ok_or(ConfigError::Missing {
                var: "SUPABASE_ORGANIZATION_SLUG",
                hint: "set it (or the older SUPABASE_ORGANIZATION_ID) to your organization's slug from the Supabase dashboard URL",
            })?;
        if let Some(template) = env.var("SUPABASE_PROJECT_URL_TEMPLATE") {
            if !template.contains("{ref}") {
                return Err(ConfigError::Invalid {
                    var: "SUPABASE_PROJECT_URL_TEMPLATE",
                    reason: format!("`{template}` has no `{{ref}}` placeholder; write it like https://{{ref}}.supabase.co"),
                });
            }
        }
        if let Some(api) = env.var("SUPABASE_API_URL") {
            check_http_url("SUPABASE_API_URL", &api)?;
        }
        Ok(Some(Self {
            password_secret: env
                .var("SUPABASE_PASSWORD_SECRET")
                .unwrap_or_else(|| token.clone())
                .into(),
            access_token: token.into(),
            organization_slug,
            region: env
                .var("SUPABASE_REGION")
                .and_then(|code| code.parse().ok()),
            instance_size: env
                .var("SUPABASE_PLAN")
                .map(|plan| instance_size(&plan))
                .transpose()?,
            api_url: env.var("SUPABASE_API_URL"),
            project_url_template: env.var("SUPABASE_PROJECT_URL_TEMPLATE"),
        }))
    }
}

/// `SUPABASE_PLAN` names a compute size; a billing plan (`free`, `pro`) is no longer
/// set per project, so it is refused with what to write instead.
fn instance_size(plan: &str) -> Result<InstanceSize, ConfigError> {
    InstanceSize::parse_known(plan).ok_or_else(|| ConfigError::Invalid {
        var: "SUPABASE_PLAN",
        reason: format!(
            "`{plan}` is not a compute size; the billing plan (free, pro, …) is set on the organization in the Supabase dashboard, not per project. \
             Set SUPABASE_PLAN to a compute size ({}) or leave it unset for the smallest",
            InstanceSize::NAMED.join(", ")
        ),
    })
}

/// Stripe settings.
#[derive(Debug, Clone, Default)]
pub struct StripeConfig {
    /// `STRIPE_WEBHOOK_SECRET`, comma-separated while a secret is rolled.
    pub webhook_secrets: Vec<SecretString>,
    /// `STRIPE_SECRET_KEY` (optional: only Checkout, re-reading subscriptions and
    /// reconciliation with Stripe's events need it).
    pub secret_key: Option<SecretString>,
    /// `STRIPE_API_URL`: the Stripe API's base URL (default `https://api.stripe.com`).
    pub api_url: Option<String>,
}

impl StripeConfig {
    /// Reads and checks the Stripe settings.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let webhook_secrets = match env.var("STRIPE_WEBHOOK_SECRET") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with("whsec_") {
                        Ok(SecretString::from(s))
                    } else {
                        Err(ConfigError::Invalid {
                            var: "STRIPE_WEBHOOK_SECRET",
                            reason: "each secret starts with whsec_; copy it from the webhook endpoint's page in the Stripe dashboard".into(),
                        })
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let secret_key = env.var("STRIPE_SECRET_KEY");
        if let Some(key) = &secret_key {
            if !(key.starts_with("sk_") || key.starts_with("rk_")) {
                return Err(ConfigError::Invalid {
                    var: "STRIPE_SECRET_KEY",
                    reason: "a secret key starts with sk_ (or rk_ for a restricted key); the pk_ key is the publishable one".into(),
                });
            }
        }
        let api_url = env.var("STRIPE_API_URL");
        if let Some(url) = &api_url {
            check_http_url("STRIPE_API_URL", url)?;
        }
        Ok(Self {
            webhook_secrets,
            secret_key: secret_key.map(SecretString::from),
            api_url,
        })
    }
}

/// The admin token guarding `/api/admin/*`: admin routes answer 503 when it is unset.
pub fn admin_token(env: &impl Env) -> Result<Option<SecretString>, ConfigError> {
    match env.var("ADMIN_TOKEN") {
        None => Ok(None),
        Some(token) if token.trim().len() < 16 => Err(ConfigError::Invalid {
            var: "ADMIN_TOKEN",
            reason: "use at least 16 characters (e.g. `openssl rand -hex 32`)".into(),
        }),
        Some(token) => Ok(Some(token.trim().to_owned().into())),
    }
}

/// The tenants' billing pages: where tenants reach the service and the secret
/// that signs their links.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    /// `PUBLIC_URL`: where tenants and operators reach the service
    /// (`https://app.example.com`); default `http://localhost:PORT`.
    pub public_url: Option<String>,
    /// `BILLING_LINK_SECRET`: signs the links to billing pages (at least 32 bytes);
    /// unset, the billing pages are off.
    pub link_secret: Option<SecretString>,
}

impl PagesConfig {
    /// Reads and checks the page settings.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let public_url = env
            .var("PUBLIC_URL")
            .map(|u| u.trim().trim_end_matches('/').to_owned());
        if let Some(url) = &public_url {
            check_http_url("PUBLIC_URL", url)?;
        }
        let link_secret = match env.var("BILLING_LINK_SECRET") {
            Some(secret) if secret.trim().len() < stripe_billing::MIN_LINK_SECRET_LEN => {
                return Err(ConfigError::Invalid {
                    var: "BILLING_LINK_SECRET",
                    reason: "use at least 32 characters (e.g. `openssl rand -hex 32`)".into(),
                })
            }
            other => other.map(|s| SecretString::from(s.trim().to_owned())),
        };
        Ok(Self {
            public_url,
            link_secret,
        })
    }

    /// Whether the admin cookie is marked `Secure`: yes unless `PUBLIC_URL` is a
    /// plain-HTTP address other than `localhost` (browsers keep `Secure` cookies
    /// over HTTP on `localhost` only).
    pub fn secure_cookie(&self) -> bool {
        match &self.public_url {
            Some(url) if url.starts_with("http://") => url.starts_with("http://localhost"),
            _ => true,
        }
    }
}

/// `BILLING_TICK_SECONDS`: how often the billing clock runs (default 60).
pub fn billing_tick(env: &impl Env) -> Result<Duration, ConfigError> {
    match env.var("BILLING_TICK_SECONDS") {
        None => Ok(Duration::from_secs(60)),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => Err(ConfigError::Invalid {
                var: "BILLING_TICK_SECONDS",
                reason: format!("`{raw}` is not a positive whole number of seconds"),
            }),
        },
    }
}

/// `STRIPE_RECONCILE_SECONDS`: how often billing is reconciled with Stripe's events
/// (default 3600), when `STRIPE_SECRET_KEY` is set.
pub fn reconcile_interval(env: &impl Env) -> Result<Duration, ConfigError> {
    match env.var("STRIPE_RECONCILE_SECONDS") {
        None => Ok(Duration::from_secs(3600)),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => Err(ConfigError::Invalid {
                var: "STRIPE_RECONCILE_SECONDS",
                reason: format!(
                    "`{raw}` is not a positive whole number of seconds; leave it unset for hourly"
                ),
            }),
        },
    }
}

/// Offboarding settings: where exports go, how long offboarded tenants are kept,
/// and whether a cancelled subscription starts offboarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffboardingConfig {
    /// `TENANT_EXPORT_DIR`: the folder tenants' exports are written to (default: the
    /// `exports` folder beside a SQLite state, `./exports` otherwise).
    pub export_dir: Option<std::path::PathBuf>,
    /// `TENANT_RETENTION_DAYS`: how long an offboarded tenant's paused database is
    /// kept before it is deleted (default 30; 0 deletes at the next check).
    pub retention: time::Duration,
    /// `OFFBOARD_ON_CANCEL`: `true` starts offboarding a tenant when its billing
    /// reaches cancelled (default `false`).
    pub on_cancel: bool,
    /// `OFFBOARDING_CHECK_SECONDS`: how often unfinished offboardings are resumed and
    /// tenants past their retention deleted (default 3600).
    pub check_every: Duration,
}

impl OffboardingConfig {
    /// Reads and checks the offboarding settings.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let retention = match env.var("TENANT_RETENTION_DAYS") {
            None => tenancy_core::DEFAULT_RETENTION,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(days) => time::Duration::days(i64::from(days)),
                Err(_) => {
                    return Err(ConfigError::Invalid {
                        var: "TENANT_RETENTION_DAYS",
                        reason: format!(
                        "`{raw}` is not a whole number of days (0 to 65535); leave it unset for 30"
                    ),
                    })
                }
            },
        };
        let on_cancel = match env.var("OFFBOARD_ON_CANCEL").as_deref().map(str::trim) {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "OFFBOARD_ON_CANCEL",
                    reason: format!("`{other}` is neither true nor false"),
                })
            }
        };
        let check_every = match env.var("OFFBOARDING_CHECK_SECONDS") {
            None => Duration::from_secs(3600),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "OFFBOARDING_CHECK_SECONDS",
                        reason: format!("`{raw}` is not a positive whole number of seconds; leave it unset for hourly"),
                    })
                }
            },
        };
        Ok(Self {
            export_dir: env
                .var("TENANT_EXPORT_DIR")
                .map(|dir| std::path::PathBuf::from(dir.trim())),
            retention,
            on_cancel,
            check_every,
        })
    }
}

fn check_http_url(var: &'static str, raw: &str) -> Result<(), ConfigError> {
    if raw.starts_with("http://") || raw.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: format!("`{raw}` is not an http(s) URL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supabase_is_optional_but_complete_when_present() {
        assert!(SupabaseConfig::from_env(&[("X", "y")]).unwrap().is_none());
        let err = SupabaseConfig::from_env(&[("SUPABASE_ACCESS_TOKEN", "sbp_x")]).unwrap_err();
        assert!(
            err.to_string().contains("SUPABASE_ORGANIZATION_SLUG"),
            "{err}"
        );
        let seed = SupabaseConfig::from_env(&[
            ("SUPABASE_ACCESS_TOKEN", "sbp_secret"),
            ("SUPABASE_ORGANIZATION_ID", "acme-org"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(seed.organization_slug, "acme-org");
        assert_eq!(seed.region, None, "unset: Supabase's recommendation");
        assert_eq!(seed.instance_size, None);
        assert!(!format!("{seed:?}").contains("sbp_secret"));
        let bad = SupabaseConfig::from_env(&[
            ("SUPABASE_ACCESS_TOKEN", "sbp_x"),
            ("SUPABASE_ORGANIZATION_SLUG", "o"),
            ("SUPABASE_PROJECT_URL_TEMPLATE", "https://example.com"),
        ])
        .unwrap_err();
        assert!(bad.to_string().contains("SUPABASE_PROJECT_URL_TEMPLATE"));
    }

    #[test]
    fn supabase_region_and_plan_are_read_or_refused() {
        let base = [
            ("SUPABASE_ACCESS_TOKEN", "sbp_x"),
            ("SUPABASE_ORGANIZATION_SLUG", "acme-org"),
            ("SUPABASE_REGION", "emea"),
            ("SUPABASE_PLAN", "small"),
        ];
        let config = SupabaseConfig::from_env(&base).unwrap().unwrap();
        assert_eq!(
            config.region,
            Some(RegionSelection::SmartGroup(supabase_mgmt::SmartGroup::Emea))
        );
        assert_eq!(config.instance_size, Some(InstanceSize::Small));
        let mut billing_plan = base;
        billing_plan[3] = ("SUPABASE_PLAN", "pro");
        let error = SupabaseConfig::from_env(&billing_plan).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("SUPABASE_PLAN") && message.contains("micro"),
            "{message}"
        );
    }

    #[test]
    fn stripe_secrets_are_split_and_checked() {
        let cfg = StripeConfig::from_env(&[("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b")]).unwrap();
        assert_eq!(cfg.webhook_secrets.len(), 2);
        assert_eq!(cfg.webhook_secrets[1].expose(), "whsec_b");
        let err = StripeConfig::from_env(&[("STRIPE_WEBHOOK_SECRET", "oops")]).unwrap_err();
        assert!(err.to_string().contains("STRIPE_WEBHOOK_SECRET"));
        let err = StripeConfig::from_env(&[("STRIPE_SECRET_KEY", "pk_test_1")]).unwrap_err();
        assert!(err.to_string().contains("publishable"));
    }

    #[test]
    fn page_settings_are_validated_and_decide_the_cookie() {
        let off = PagesConfig::from_env(&[("A", "b")]).unwrap();
        assert!(off.link_secret.is_none() && off.secure_cookie());
        let short = PagesConfig::from_env(&[("BILLING_LINK_SECRET", "tooshort")]).unwrap_err();
        assert!(short.to_string().contains("BILLING_LINK_SECRET"));
        let bad = PagesConfig::from_env(&[("PUBLIC_URL", "app.example.com")]).unwrap_err();
        assert!(bad.to_string().contains("PUBLIC_URL"));
        let lan = PagesConfig::from_env(&[("PUBLIC_URL", "http://10.0.0.5:8000/")]).unwrap();
        assert_eq!(lan.public_url.as_deref(), Some("http://10.0.0.5:8000"));
        assert!(
            !lan.secure_cookie(),
            "a plain-HTTP address other than localhost"
        );
        let local = PagesConfig::from_env(&[("PUBLIC_URL", "http://localhost:8000")]).unwrap();
        assert!(local.secure_cookie());
    }

    #[test]
    fn admin_token_and_tick_are_validated() {
        assert!(admin_token(&[("A", "b")]).unwrap().is_none());
        assert!(admin_token(&[("ADMIN_TOKEN", "short")]).is_err());
        assert!(admin_token(&[("ADMIN_TOKEN", "0123456789abcdef")])
            .unwrap()
            .is_some());
        assert_eq!(
            billing_tick(&[("A", "b")]).unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            billing_tick(&[("BILLING_TICK_SECONDS", "5")]).unwrap(),
            Duration::from_secs(5)
        );
        assert!(billing_tick(&[("BILLING_TICK_SECONDS", "0")]).is_err());
    }

    #[test]
    fn offboarding_settings_default_to_thirty_days_and_no_automatic_start() {
        let defaults = OffboardingConfig::from_env(&[("A", "b")]).unwrap();
        assert_eq!(defaults.retention, time::Duration::days(30));
        assert!(!defaults.on_cancel);
        assert_eq!(defaults.export_dir, None);
        assert_eq!(defaults.check_every, Duration::from_secs(3600));
        let set = OffboardingConfig::from_env(&[
            ("TENANT_RETENTION_DAYS", "7"),
            ("OFFBOARD_ON_CANCEL", "true"),
            ("TENANT_EXPORT_DIR", "/backups"),
            ("OFFBOARDING_CHECK_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(set.retention, time::Duration::days(7));
        assert!(set.on_cancel);
        assert_eq!(
            set.export_dir.as_deref(),
            Some(std::path::Path::new("/backups"))
        );
        for (var, bad) in [
            ("TENANT_RETENTION_DAYS", "-1"),
            ("OFFBOARD_ON_CANCEL", "maybe"),
            ("OFFBOARDING_CHECK_SECONDS", "0"),
        ] {
            let error = OffboardingConfig::from_env(&[(var, bad)]).unwrap_err();
            assert!(error.to_string().contains(var), "{error}");
        }
    }

    #[test]
    fn the_reconciliation_interval_defaults_to_an_hour() {
        assert_eq!(
            reconcile_interval(&[("A", "b")]).unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            reconcile_interval(&[("STRIPE_RECONCILE_SECONDS", "600")]).unwrap(),
            Duration::from_secs(600)
        );
        for bad in ["0", "-5", "hourly"] {
            let error = reconcile_interval(&[("STRIPE_RECONCILE_SECONDS", bad)]).unwrap_err();
            assert!(
                error.to_string().contains("STRIPE_RECONCILE_SECONDS"),
                "{error}"
            );
        }
    }
}
