//! The end of a tenant's life: the resumable offboarding pipeline (cancel billing →
//! export → pause → retain → delete) and the traits it runs over.

mod directory_destination;
mod error;
mod export;
mod pause;
mod pipeline;
mod step;

pub use directory_destination::DirectoryExportDestination;
pub use error::OffboardingError;
pub use export::{DatabaseExport, DatabaseExporter, ExportDestination, ExportFormat, StoredExport};
pub use pause::DatabasePauser;
pub use pipeline::{Offboarding, OffboardingReport, DEFAULT_CLAIM_TIMEOUT, DEFAULT_RETENTION};
pub use step::OffboardingStep;
