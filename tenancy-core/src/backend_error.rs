use std::error::Error as StdError;
use std::fmt;

/// A boxed error that can cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error returned by implementations of this crate's traits
/// ([`DatabaseProvisioner`](crate::DatabaseProvisioner), [`SchemaMigrator`](crate::SchemaMigrator),
/// [`AdminUserCreator`](crate::AdminUserCreator), [`Notifier`](crate::Notifier)).
///
/// It wraps the implementation's own typed error (reach it with
/// [`BackendError::downcast_ref`]) and says whether trying again may help.
///
/// ```
/// use tenancy_core::BackendError;
///
/// let err = BackendError::transient(std::io::Error::other("connection reset"));
/// assert!(err.is_retryable());
/// assert_eq!(err.to_string(), "connection reset");
/// assert!(err.downcast_ref::<std::io::Error>().is_some());
/// ```
pub struct BackendError {
    retryable: bool,
    source: BoxError,
}

impl BackendError {
    /// An error that trying again will not fix (bad input, a refused request).
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self {
            retryable: false,
            source: source.into(),
        }
    }

    /// An error that may pass if tried again later (a timeout, a rate limit, an outage).
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self {
            retryable: true,
            source: source.into(),
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The implementation's error, if it is a `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.source.downcast_ref::<T>()
    }

    /// The implementation's error.
    pub fn into_inner(self) -> BoxError {
        self.source
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendError")
            .field("retryable", &self.retryable)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.source()
    }
}
