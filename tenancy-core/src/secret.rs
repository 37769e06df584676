use std::fmt;

/// A value that must never be printed: a password, an access token, an API key,
/// a webhook secret, a connection string with a password.
///
/// `Debug` and `Display` print `[redacted]`; the value is reached only through
/// [`Secret::expose`], which makes every use greppable. `Secret` deliberately
/// does not implement `Serialize`, so it cannot end up in a JSON log by accident.
///
/// ```
/// use tenancy_core::Secret;
///
/// let token = Secret::new(String::from("sbp_0123456789abcdef"));
/// assert_eq!(format!("{token:?}"), "[redacted]");
/// assert_eq!(token.to_string(), "[redacted]");
/// assert_eq!(token.expose(), "sbp_0123456789abcdef");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

/// The most common secret: a string.
pub type SecretString = Secret<String>;

/// What a secret prints instead of its value.
pub const REDACTED: &str = "[redacted]";

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the value. Call this only where the value is sent where it belongs.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl Secret<String> {
    /// Borrows the secret string as `&str`.
    pub fn expose_str(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (or only white space), which is never a usable secret.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            token: SecretString,
        }
        let config = Config {
            token: "sbp_supersecret".into(),
        };
        let printed = format!("{config:?} {config:#?} {}", config.token);
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(printed.contains(REDACTED));
    }

    #[test]
    fn blank_secrets_are_detected() {
        assert!(SecretString::from("  ").is_blank());
        assert!(!SecretString::from("whsec_x").is_blank());
    }

    #[test]
    fn deserializes_transparently() {
        let s: SecretString = serde_json::from_str("\"pw\"").unwrap();
        assert_eq!(s.expose(), "pw");
    }
}
