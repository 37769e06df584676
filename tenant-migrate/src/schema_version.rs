use std::fmt;

/// A tenant database's schema version, as its migration history shows it.
///
/// ```
/// use tenant_migrate::SchemaVersion;
///
/// assert_eq!(SchemaVersion::from(None), SchemaVersion::Empty);
/// assert_eq!(SchemaVersion::from(Some(20240101)).latest(), Some(20240101));
/// assert!(SchemaVersion::Empty < SchemaVersion::At(1));
/// assert_eq!(SchemaVersion::Empty.to_string(), "none");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaVersion {
    /// No migration applied: an empty history.
    Empty,
    /// The version of the latest applied migration.
    At(i64),
}

impl SchemaVersion {
    /// The latest applied version, `None` for an empty history.
    pub fn latest(self) -> Option<i64> {
        match self {
            Self::Empty => None,
            Self::At(version) => Some(version),
        }
    }
}

impl From<Option<i64>> for SchemaVersion {
    fn from(latest: Option<i64>) -> Self {
        latest.map_or(Self::Empty, Self::At)
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("none"),
            Self::At(version) => write!(f, "{version}"),
        }
    }
}
