use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An email address, checked for the shape every mail system needs:
/// one `@`, a non-empty local part, a domain with a dot, no white space,
/// at most 254 characters. The domain is lowercased; the local part is kept.
///
/// ```
/// use tenancy_core::EmailAddress;
///
/// let email: EmailAddress = "Owner@Acme.Example".parse()?;
/// assert_eq!(email.as_str(), "Owner@acme.example");
/// assert!("not-an-email".parse::<EmailAddress>().is_err());
/// # Ok::<(), tenancy_core::EmailError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Why a string is not an [`EmailAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{address}` is not a valid email address: {reason}; give an address such as owner@example.com"
)]
pub struct EmailError {
    address: String,
    reason: &'static str,
}

impl EmailError {
    /// What is wrong with the address.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl EmailAddress {
    /// The longest address that SMTP accepts.
    pub const MAX_LEN: usize = 254;

    /// Validates an email address.
    pub fn new(address: impl AsRef<str>) -> Result<Self, EmailError> {
        let address = address.as_ref().trim();
        let fail = |reason| EmailError {
            address: address.to_owned(),
            reason,
        };
        if address.len() > Self::MAX_LEN {
            return Err(fail("it is longer than 254 characters"));
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains white space"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(fail("it has no `@`"));
        };
        if local.is_empty() || local.contains('@') {
            return Err(fail(
                "the part before `@` must be non-empty and contain no `@`",
            ));
        }
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(fail("the domain must look like example.com"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({:?})", self.0)
    }
}

impl FromStr for EmailAddress {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for EmailAddress {
    type Error = EmailError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            EmailAddress::new(" a.b+c@Sub.Example.COM ")
                .unwrap()
                .as_str(),
            "a.b+c@sub.example.com"
        );
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a b@example.com",
            "a@exa mple.com",
            "a@-x.com",
            "a@x..com",
        ] {
            let err = EmailAddress::new(bad).unwrap_err();
            assert!(err.to_string().contains("owner@example.com"), "{err}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::new(long).is_err());
    }
}
