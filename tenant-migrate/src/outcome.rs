use std::time::Duration;

use tenancy_core::MigrationReport;

/// What an apply or revert did to one tenant database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationOutcome {
    /// The highest applied version before (`None`: nothing applied).
    pub from_version: Option<i64>,
    /// The highest applied version after.
    pub to_version: Option<i64>,
    /// The migrations run, in the order they ran.
    pub steps: Vec<MigrationStep>,
}

/// One migration applied or reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStep {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// How long its request took, as the client saw it (PostgreSQL: the whole
    /// transaction; `execution_time` stores the server's own measure of the SQL).
    pub elapsed: Duration,
}

impl MigrationOutcome {
    /// Nothing to do: the database stays at `version`.
    pub(crate) fn unchanged(version: Option<i64>) -> Self {
        Self {
            from_version: version,
            to_version: version,
            steps: Vec::new(),
        }
    }

    /// Whether anything ran.
    pub fn changed(&self) -> bool {
        !self.steps.is_empty()
    }
}

impl From<MigrationOutcome> for MigrationReport {
    fn from(outcome: MigrationOutcome) -> Self {
        MigrationReport::new(
            outcome.from_version,
            outcome.to_version,
            outcome.steps.len(),
        )
    }
}
