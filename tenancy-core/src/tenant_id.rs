use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The stable identifier of a tenant: a lowercase slug such as `acme-pharmacy`.
///
/// A tenant id names the tenant's resources everywhere (its Supabase project, its
/// local database, its rollout rows), so it is restricted to what every one of those
/// systems accepts: 3 to 63 characters of lowercase ASCII letters, digits and `-`,
/// starting with a letter and not ending with `-`.
///
/// ```
/// use tenancy_core::TenantId;
///
/// let id = TenantId::try_from("acme-pharmacy")?;
/// assert_eq!(id.as_str(), "acme-pharmacy");
/// assert!(TenantId::try_from("Acme Pharmacy").is_err());
///
/// // A slug derived from a company name:
/// assert_eq!(TenantId::from_name("Acme Pharmacy, Inc.")?.as_str(), "acme-pharmacy-inc");
/// # Ok::<(), tenancy_core::TenantIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// Why a string is not a valid [`TenantId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantIdError {
    /// The id is shorter than 3 or longer than 63 characters.
    #[error("tenant id `{id}` has {len} characters; use 3 to 63")]
    Length {
        /// The rejected id.
        id: String,
        /// Its length in characters.
        len: usize,
    },
    /// The id contains a character other than `a-z`, `0-9` and `-`.
    #[error("tenant id `{id}` contains `{ch}`; use only lowercase letters, digits and `-`")]
    InvalidCharacter {
        /// The rejected id.
        id: String,
        /// The first offending character.
        ch: char,
    },
    /// The id does not start with a letter.
    #[error("tenant id `{0}` must start with a lowercase letter")]
    LeadingCharacter(String),
    /// The id ends with `-`.
    #[error("tenant id `{0}` must not end with `-`")]
    TrailingHyphen(String),
}

impl TenantId {
    /// The shortest valid id.
    pub const MIN_LEN: usize = 3;
    /// The longest valid id (the limit of a PostgreSQL identifier and a DNS label).
    pub const MAX_LEN: usize = 63;

    /// Validates `id` as a tenant id.
    pub fn new(id: impl Into<String>) -> Result<Self, TenantIdError> {
        let id = id.into();
        let len = id.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(TenantIdError::Length { id, len });
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(TenantIdError::InvalidCharacter { id, ch });
        }
        if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(TenantIdError::LeadingCharacter(id));
        }
        if id.ends_with('-') {
            return Err(TenantIdError::TrailingHyphen(id));
        }
        Ok(Self(id))
    }

    /// Derives a slug from a display name (`"Acme Pharmacy, Inc."` → `acme-pharmacy-inc`).
    ///
    /// ASCII letters and digits are kept (lowercased), every other run of characters
    /// becomes one `-`, and the result is cut to 63 characters. A name with a leading
    /// digit gets the prefix `t-`. A name written in another script (`日本語の会社`),
    /// which leaves fewer than 3 ASCII characters, gets a stable id from a hash of
    /// the name instead (`t-` and 12 hex digits); a name with fewer than 3 letters or
    /// digits in any script is an error.
    pub fn from_name(name: &str) -> Result<Self, TenantIdError> {
        let ascii = Self::ascii_slug(name);
        let letters = name.chars().filter(|c| c.is_alphanumeric()).count();
        if ascii.len() < Self::MIN_LEN && letters >= Self::MIN_LEN {
            return Self::new(Self::hashed(name));
        }
        Self::new(ascii)
    }

    /// `t-` and the first 12 hex digits of a stable hash (FNV-1a 64) of the
    /// lowercased, trimmed name: the same name always gives the same id.
    fn hashed(name: &str) -> String {
        let normalized: String = name.trim().chars().flat_map(char::to_lowercase).collect();
        let hash = normalized
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("t-{:012x}", hash >> 16)
    }

    fn ascii_slug(name: &str) -> String {
        let mut slug = String::with_capacity(name.len());
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        if slug.starts_with(|c: char| c.is_ascii_digit()) {
            slug.insert_str(0, "t-");
        }
        slug.truncate(Self::MAX_LEN);
        while slug.ends_with('-') {
            slug.pop();
        }
        slug
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({:?})", self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TenantId {
    type Error = TenantIdError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for ok in ["abc", "acme-pharmacy", "t-123", &"a".repeat(63)] {
            assert_eq!(TenantId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_ids_with_typed_errors() {
        assert!(matches!(
            TenantId::new("ab"),
            Err(TenantIdError::Length { len: 2, .. })
        ));
        assert!(matches!(
            TenantId::new("a".repeat(64)),
            Err(TenantIdError::Length { len: 64, .. })
        ));
        assert!(matches!(
            TenantId::new("Acme"),
            Err(TenantIdError::InvalidCharacter { ch: 'A', .. })
        ));
        assert!(matches!(
            TenantId::new("acme_1"),
            Err(TenantIdError::InvalidCharacter { ch: '_', .. })
        ));
        assert!(matches!(
            TenantId::new("1acme"),
            Err(TenantIdError::LeadingCharacter(_))
        ));
        assert!(matches!(
            TenantId::new("acme-"),
            Err(TenantIdError::TrailingHyphen(_))
        ));
        let msg = TenantId::new("Acme").unwrap_err().to_string();
        assert!(msg.contains("lowercase"), "{msg}");
    }

    #[test]
    fn a_name_in_another_script_gets_a_stable_ascii_id() {
        let id = TenantId::from_name("日本語の会社").unwrap();
        assert!(id.as_str().starts_with("t-"), "{id}");
        assert_eq!(id.as_str().len(), 14, "{id}");
        assert_eq!(TenantId::from_name(" 日本語の会社 ").unwrap(), id);
        assert_ne!(TenantId::from_name("日本語の会").unwrap(), id);
        assert!(TenantId::from_name("会社").is_err());
        // Names with enough ASCII keep their readable slug.
        assert_eq!(
            TenantId::from_name("Café Zürich").unwrap().as_str(),
            "caf-z-rich"
        );
    }

    #[test]
    fn derives_slug_from_name() {
        assert_eq!(
            TenantId::from_name("  Acme Pharmacy, Inc. ")
                .unwrap()
                .as_str(),
            "acme-pharmacy-inc"
        );
        assert_eq!(
            TenantId::from_name("42 Labs").unwrap().as_str(),
            "t-42-labs"
        );
        let long = TenantId::from_name(&"Long ".repeat(30)).unwrap();
        assert_eq!(long.as_str().len(), 63);
        assert!(!long.as_str().ends_with('-'));
        let cut_at_hyphen = TenantId::from_name(&"abcdef ".repeat(30)).unwrap();
        assert_eq!(cut_at_hyphen.as_str().len(), 62);
        assert!(TenantId::from_name("!!").is_err());
        assert!(TenantId::from_name("").is_err());
    }

    #[test]
    fn deserialization_validates() {
        let ok: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(ok.as_str(), "acme");
        assert!(serde_json::from_str::<TenantId>("\"NOPE\"").is_err());
    }
}
