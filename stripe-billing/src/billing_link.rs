//! Expiring, HMAC-signed links to a tenant's billing page, which the host hands to
//! the tenant (in an email, from its app) instead of a login.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tenancy_core::{SecretString, TenantId};
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted: 32 bytes, as the HMAC-SHA256 key it is.
pub const MIN_LINK_SECRET_LEN: usize = 32;

/// How long a link is valid unless configured: seven days.
pub const DEFAULT_LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a billing link was not made, or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BillingLinkError {
    /// The secret is too short to sign with.
    #[error("the billing link secret has {0} bytes; use at least 32 random bytes (e.g. `openssl rand -hex 32`)")]
    WeakSecret(usize),
    /// The link's time is over.
    #[error("this billing link expired; ask for a new one")]
    Expired,
    /// The signature does not match: a changed link, or another secret.
    #[error("this billing link is not valid; use the link exactly as sent, or ask for a new one")]
    BadSignature,
}

/// Signs and checks links to tenants' billing pages: `?expires=UNIX&sig=HEX`, the
/// signature an HMAC-SHA256 of the tenant id and the expiry. Checking is constant
/// time, and a link for one tenant never opens another's page.
///
/// ```
/// use std::time::Duration;
/// use stripe_billing::{BillingLinkError, BillingLinks};
/// use tenancy_core::TenantId;
///
/// let links = BillingLinks::new("0123456789abcdef0123456789abcdef".into())?;
/// let acme = TenantId::try_from("acme")?;
/// let now = time::OffsetDateTime::now_utc();
/// let link = links.link("https://app.example.com/billing", &acme, now);
/// let query = links.query(&acme, now);
/// assert!(link.ends_with(&query.to_string()));
/// assert!(links.verify(&acme, query.expires, &query.signature, now).is_ok());
/// let later = now + Duration::from_secs(8 * 24 * 3600);
/// assert_eq!(links.verify(&acme, query.expires, &query.signature, later), Err(BillingLinkError::Expired));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BillingLinks {
    key: HmacSha256,
    lifetime: Duration,
}

impl fmt::Debug for BillingLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingLinks")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// The query a billing link carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkQuery {
    /// When the link stops working (Unix seconds).
    pub expires: i64,
    /// The signature (lowercase hex).
    pub signature: String,
}

impl fmt::Display for LinkQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "?expires={}&sig={}", self.expires, self.signature)
    }
}

impl BillingLinks {
    /// Links signed with `secret` (at least [`MIN_LINK_SECRET_LEN`] bytes), valid
    /// for [`DEFAULT_LINK_LIFETIME`].
    pub fn new(secret: SecretString) -> Result<Self, BillingLinkError> {
        let bytes = secret.expose_str().as_bytes();
        if bytes.len() < MIN_LINK_SECRET_LEN {
            return Err(BillingLinkError::WeakSecret(bytes.len()));
        }
        let key = HmacSha256::new_from_slice(bytes)
            .map_err(|_| BillingLinkError::WeakSecret(bytes.len()))?;
        Ok(Self {
            key,
            lifetime: DEFAULT_LINK_LIFETIME,
        })
    }

    /// Sets how long a link stays valid.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The query of a link for `tenant` made at `now`.
    pub fn query(&self, tenant: &TenantId, now: OffsetDateTime) -> LinkQuery {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires = now.unix_timestamp().saturating_add(lifetime);
        LinkQuery {
            expires,
            signature: hex::encode(self.mac(tenant, expires).finalize().into_bytes()),
        }
    }

    /// The whole link: `{base}/{tenant}?expires=…&sig=…`, where `base` is where the
    /// host mounts the billing page (`https://app.example.com/billing`).
    pub fn link(&self, base: &str, tenant: &TenantId, now: OffsetDateTime) -> String {
        format!(
            "{}/{tenant}{}",
            base.trim_end_matches('/'),
            self.query(tenant, now)
        )
    }

    /// Checks a link's query for `tenant` at `now`.
    pub fn verify(
        &self,
        tenant: &TenantId,
        expires: i64,
        signature: &str,
        now: OffsetDateTime,
    ) -> Result<(), BillingLinkError> {
        let given = hex::decode(signature).map_err(|_| BillingLinkError::BadSignature)?;
        self.mac(tenant, expires)
            .verify_slice(&given)
            .map_err(|_| BillingLinkError::BadSignature)?;
        if now.unix_timestamp() >= expires {
            return Err(BillingLinkError::Expired);
        }
        Ok(())
    }

    fn mac(&self, tenant: &TenantId, expires: i64) -> HmacSha256 {
        let mut mac = self.key.clone();
        mac.update(format!("billing-link:{tenant}:{expires}").as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> BillingLinks {
        BillingLinks::new("0123456789abcdef0123456789abcdef".into()).unwrap()
    }

    #[test]
    fn a_link_opens_its_tenant_until_it_expires() {
        let (acme, globex) = (
            TenantId::try_from("acme").unwrap(),
            TenantId::try_from("globex").unwrap(),
        );
        let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let query = links()
            .with_lifetime(Duration::from_secs(60))
            .query(&acme, now);
        let links = links();
        assert_eq!(
            links.verify(&acme, query.expires, &query.signature, now),
            Ok(())
        );
        // Another tenant, a moved expiry, a changed or malformed signature.
        let bad = BillingLinkError::BadSignature;
        assert_eq!(
            links.verify(&globex, query.expires, &query.signature, now),
            Err(bad.clone())
        );
        assert_eq!(
            links.verify(&acme, query.expires + 3600, &query.signature, now),
            Err(bad.clone())
        );
        let mut flipped = query.signature.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            links.verify(&acme, query.expires, &flipped, now),
            Err(bad.clone())
        );
        assert_eq!(links.verify(&acme, query.expires, "not hex", now), Err(bad));
        // Expired exactly at `expires`.
        let then = now + Duration::from_secs(60);
        assert_eq!(
            links.verify(&acme, query.expires, &query.signature, then),
            Err(BillingLinkError::Expired)
        );
        // Another secret does not verify it.
        let other = BillingLinks::new("fedcba9876543210fedcba9876543210".into()).unwrap();
        assert_eq!(
            other.verify(&acme, query.expires, &query.signature, now),
            Err(BillingLinkError::BadSignature)
        );
    }

    #[test]
    fn a_short_secret_is_refused_and_never_printed() {
        let error = BillingLinks::new("short-secret".into()).unwrap_err();
        assert_eq!(error, BillingLinkError::WeakSecret(12));
        let links = links();
        assert!(!format!("{links:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn the_link_joins_base_tenant_and_query() {
        let acme = TenantId::try_from("acme").unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let link = links().link("https://app.example.com/billing/", &acme, now);
        assert!(
            link.starts_with("https://app.example.com/billing/acme?expires=604800&sig="),
            "{link}"
        );
    }
}
