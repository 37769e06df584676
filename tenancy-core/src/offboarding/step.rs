use std::fmt;

use serde::{Deserialize, Serialize};

/// A step of the offboarding pipeline, as recorded on the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OffboardingStep {
    /// Cancelling the tenant's subscription and moving its billing to cancelled.
    CancelBilling,
    /// Exporting the tenant's database to the host's export destination.
    Export,
    /// Pausing the tenant's database for the retention period.
    Pause,
    /// Deleting the tenant's database once the retention period is over.
    Delete,
}

impl OffboardingStep {
    /// The snake-case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CancelBilling => "cancel_billing",
            Self::Export => "export",
            Self::Pause => "pause",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for OffboardingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
