use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    DatabaseExport, DatabaseTarget, EmailAddress, EmailError, OffboardingStep, TenantId,
    TenantIdError,
};

/// A step of the onboarding pipeline, as recorded when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnboardingStep {
    /// Creating (or finding) the tenant's database.
    Provision,
    /// Bringing the tenant's database to the current schema.
    Migrate,
    /// Creating the tenant's first admin user.
    CreateAdmin,
    /// Starting the tenant's billing (its trial), when onboarding has a
    /// [`BillingStarter`](crate::BillingStarter).
    StartBilling,
}

impl OnboardingStep {
    /// The snake-case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::Migrate => "migrate",
            Self::CreateAdmin => "create_admin",
            Self::StartBilling => "start_billing",
        }
    }

    /// The status a tenant has while this step runs.
    pub fn status(self) -> TenantStatus {
        match self {
            Self::Provision => TenantStatus::Provisioning,
            Self::Migrate => TenantStatus::Migrating,
            Self::CreateAdmin => TenantStatus::CreatingAdmin,
            Self::StartBilling => TenantStatus::StartingBilling,
        }
    }
}

impl fmt::Display for OnboardingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a tenant is in its lifecycle.
///
/// `Pending → Provisioning → Migrating → CreatingAdmin → StartingBilling → Ready`
/// (`StartingBilling` only when onboarding starts billing), or `Failed` with the step
/// that failed; onboarding resumes a failed tenant at that step.
///
/// Then, at the end of its life (see [`Offboarding`](crate::Offboarding)):
/// `Offboarding { step: cancel_billing → export → pause } → Retained { until } →
/// Offboarding { step: delete } → Deleted { at }`. A retained tenant can be restored
/// (back to `Ready`); a deleted one is a tombstone whose id is never given out again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantStatus {
    /// Signed up; nothing created yet.
    Pending,
    /// Its database is being created.
    Provisioning,
    /// Its database is being migrated.
    Migrating,
    /// Its first admin user is being created.
    CreatingAdmin,
    /// Its billing (the trial) is being started.
    StartingBilling,
    /// Fully onboarded.
    Ready,
    /// A step failed; onboarding resumes at `step`.
    Failed {
        /// The step that failed.
        step: OnboardingStep,
        /// The error, as text safe to show an operator.
        reason: String,
        /// How many times onboarding has failed at this step in a row.
        attempts: u32,
    },
    /// Being offboarded: `step` is the step to run next (or that failed, with
    /// `last_error`); offboarding resumes there.
    Offboarding {
        /// The next step, or the one that failed.
        step: OffboardingStep,
        /// When offboarding started (it names the export, so a resumed run finds it).
        #[serde(with = "time::serde::rfc3339")]
        started_at: OffsetDateTime,
        /// Whether the tenant had finished onboarding when offboarding started: a
        /// restored tenant goes back to `Ready` if so, to `Pending` otherwise.
        onboarded: bool,
        /// The export of its database, once made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export: Option<DatabaseExport>,
        /// Why `step` last failed, if it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
        /// How many times `step` has failed in a row.
        #[serde(default)]
        attempts: u32,
        /// When a run claimed `step` (saved as the step starts, so two processes
        /// never run it at once); `None` while no run is at it. A claim older than
        /// the pipeline's claim timeout is taken to be a run that was interrupted.
        #[serde(
            default,
            with = "time::serde::rfc3339::option",
            skip_serializing_if = "Option::is_none"
        )]
        claimed_at: Option<OffsetDateTime>,
    },
    /// Offboarded, its database paused and its export kept; deleted once `until`
    /// passes, restorable until then.
    Retained {
        /// When the retention period ends.
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
        /// Whether the tenant had finished onboarding (see `Offboarding`).
        onboarded: bool,
        /// The export of its database (`None` when it never had one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export: Option<DatabaseExport>,
    },
    /// Deleted: the database is gone and the record is a tombstone that keeps the id
    /// from being used again. The export is what remains.
    Deleted {
        /// When the database was deleted.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// The export of its database (`None` when it never had one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export: Option<DatabaseExport>,
    },
}

impl TenantStatus {
    /// Every state's name, in lifecycle order (for filters and forms).
    pub const NAMES: [&'static str; 10] = [
        "pending",
        "provisioning",
        "migrating",
        "creating_admin",
        "starting_billing",
        "ready",
        "failed",
        "offboarding",
        "retained",
        "deleted",
    ];

    /// The snake-case name of the state (`pending`, …, `failed`, `offboarding`,
    /// `retained`, `deleted`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::Migrating => "migrating",
            Self::CreatingAdmin => "creating_admin",
            Self::StartingBilling => "starting_billing",
            Self::Ready => "ready",
            Self::Failed { .. } => "failed",
            Self::Offboarding { .. } => "offboarding",
            Self::Retained { .. } => "retained",
            Self::Deleted { .. } => "deleted",
        }
    }

    /// Whether the tenant is at the end of its life: offboarding, retained or deleted
    /// (onboarding leaves such a tenant alone).
    pub fn is_offboarded(&self) -> bool {
        matches!(
            self,
            Self::Offboarding { .. } | Self::Retained { .. } | Self::Deleted { .. }
        )
    }

    /// Whether the tenant was deleted (its id is never reused).
    pub fn is_deleted(&self) -> bool {
        matches!(self, Self::Deleted { .. })
    }

    /// The export of the tenant's database, once offboarding made one.
    pub fn export(&self) -> Option<&DatabaseExport> {
        match self {
            Self::Offboarding { export, .. }
            | Self::Retained { export, .. }
            | Self::Deleted { export, .. } => export.as_ref(),
            _ => None,
        }
    }

    /// Whether onboarding has finished successfully.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed {
                step,
                reason,
                attempts,
            } => {
                write!(f, "failed at {step} (attempt {attempts}): {reason}")
            }
            Self::Offboarding {
                step,
                last_error: Some(reason),
                attempts,
                ..
            } => write!(
                f,
                "offboarding failed at {step} (attempt {attempts}): {reason}"
            ),
            Self::Offboarding { step, .. } => write!(f, "offboarding at {step}"),
            Self::Retained { until, .. } => write!(f, "retained until {until}"),
            Self::Deleted { at, .. } => write!(f, "deleted at {at}"),
            other => f.pad(other.name()),
        }
    }
}

/// A tenant record, as kept by a [`TenantDirectory`](crate::TenantDirectory).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tenant {
    /// The tenant's stable id.
    pub id: TenantId,
    /// The display name (usually the company name).
    pub name: String,
    /// The email of the tenant's first admin user.
    pub admin_email: EmailAddress,
    /// The lifecycle status.
    pub status: TenantStatus,
    /// The tenant's database, once provisioned.
    pub database: Option<DatabaseTarget>,
    /// Free-form labels used to target rollouts (`staging`, `eu`, `beta`, …).
    pub tags: BTreeSet<String>,
    /// When the tenant signed up.
    pub created_at: OffsetDateTime,
    /// When the record last changed.
    pub updated_at: OffsetDateTime,
    /// When the onboarding pipeline's notifier confirmed the "tenant ready" notice;
    /// `None` until then, so that a notice lost to a crash or a failed delivery is
    /// sent by the next run of onboarding.
    pub ready_notified_at: Option<OffsetDateTime>,
    /// Incremented by every update; a directory refuses an update made from a stale copy.
    pub revision: u64,
}

/// The input of a signup: what a new tenant is made from.
///
/// ```
/// use tenancy_core::NewTenant;
///
/// let signup = NewTenant::new("Acme Pharmacy", "owner@acme.example")?.with_tag("beta")?;
/// assert_eq!(signup.id().as_str(), "acme-pharmacy");
/// # Ok::<(), tenancy_core::TenantError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    id: TenantId,
    name: String,
    admin_email: EmailAddress,
    tags: BTreeSet<String>,
}

/// Why a signup or a tenant field is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The tenant id is invalid.
    #[error(transparent)]
    Id(#[from] TenantIdError),
    /// The display name has too few letters or digits to derive a tenant id from.
    #[error("name `{0}` has fewer than 3 letters or digits, so no tenant id can be derived from it; use the full company name")]
    NoIdInName(String),
    /// The display name is empty or too long.
    #[error("tenant name must have 1 to 200 characters (got {0}); give the company's name")]
    Name(usize),
    /// The display name holds a control character (a NUL, a line break, …).
    #[error(
        "tenant name holds a control character (U+{0:04X}); send the company's name as plain text"
    )]
    ControlCharacter(u32),
    /// The admin email is invalid.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// A tag is empty, too long, or has characters other than letters, digits, `-`, `_`, `.`, `:`.
    #[error("tag `{0}` is invalid; use 1 to 64 letters, digits, `-`, `_`, `.` or `:`")]
    Tag(String),
}

impl NewTenant {
    /// A signup for `name` with the admin `email`; the id is derived from the name.
    pub fn new(name: &str, email: &str) -> Result<Self, TenantError> {
        let name = validate_name(name)?;
        let id = TenantId::from_name(&name).map_err(|_| TenantError::NoIdInName(name.clone()))?;
        Ok(Self {
            id,
            name,
            admin_email: EmailAddress::new(email)?,
            tags: BTreeSet::new(),
        })
    }

    /// A signup with an explicit id.
    pub fn with_id(id: TenantId, name: &str, email: &str) -> Result<Self, TenantError> {
        Ok(Self {
            id,
            name: validate_name(name)?,
            admin_email: EmailAddress::new(email)?,
            tags: BTreeSet::new(),
        })
    }

    /// Adds a tag, validating it.
    pub fn with_tag(mut self, tag: &str) -> Result<Self, TenantError> {
        self.tags.insert(validate_tag(tag)?);
        Ok(self)
    }

    /// The tenant id this signup will create.
    pub fn id(&self) -> &TenantId {
        &self.id
    }

    /// Turns the signup into a `Pending` tenant record created at `now`.
    pub fn into_tenant(self, now: OffsetDateTime) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name,
            admin_email: self.admin_email,
            status: TenantStatus::Pending,
            database: None,
            tags: self.tags,
            created_at: now,
            updated_at: now,
            ready_notified_at: None,
            revision: 0,
        }
    }
}

fn validate_name(name: &str) -> Result<String, TenantError> {
    let name = name.trim();
    let len = name.chars().count();
    if len == 0 || len > 200 {
        return Err(TenantError::Name(len));
    }
    // Refused on every store alike (PostgreSQL cannot store a NUL in text at all).
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(TenantError::ControlCharacter(u32::from(c)));
    }
    Ok(name.to_owned())
}

/// Validates a tag: 1 to 64 ASCII letters, digits, `-`, `_`, `.` or `:`.
pub fn validate_tag(tag: &str) -> Result<String, TenantError> {
    let tag = tag.trim();
    let ok = (1..=64).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(tag.to_owned())
    } else {
        Err(TenantError::Tag(tag.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_any_script_is_accepted() {
        assert!(matches!(
            NewTenant::new("Acme\0Corp", "a@acme.example"),
            Err(TenantError::ControlCharacter(0))
        ));
        let signup = NewTenant::new("日本語の会社", "a@example.jp").unwrap();
        assert_eq!(signup.name, "日本語の会社");
        assert!(signup.id.as_str().starts_with("t-"));
    }

    #[test]
    fn signup_validates_every_field() {
        assert!(matches!(
            NewTenant::new("  ", "a@b.co"),
            Err(TenantError::Name(0))
        ));
        assert!(matches!(
            NewTenant::new("Acme", "nope"),
            Err(TenantError::Email(_))
        ));
        assert!(matches!(
            NewTenant::new("!!", "a@b.co"),
            Err(TenantError::NoIdInName(_))
        ));
        assert!(matches!(
            NewTenant::new("Acme", "a@b.co")
                .unwrap()
                .with_tag("bad tag"),
            Err(TenantError::Tag(_))
        ));
        let t = NewTenant::new("Acme Labs", "a@b.co")
            .unwrap()
            .with_tag("beta")
            .unwrap()
            .into_tenant(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(t.id.as_str(), "acme-labs");
        assert_eq!(t.tags.iter().collect::<Vec<_>>(), ["beta"]);
        assert_eq!(t.status, TenantStatus::Pending);
    }

    #[test]
    fn states_stored_before_offboarding_existed_still_load() {
        for (json, name) in [
            (r#"{"state":"ready"}"#, "ready"),
            (r#"{"state":"pending"}"#, "pending"),
            (
                r#"{"state":"failed","step":"provision","reason":"x","attempts":1}"#,
                "failed",
            ),
        ] {
            let status: TenantStatus = serde_json::from_str(json).unwrap();
            assert_eq!(status.name(), name);
            assert!(!status.is_offboarded());
        }
    }

    #[test]
    fn offboarding_states_serialize_with_their_times_and_export() {
        let export = DatabaseExport::new(
            crate::StoredExport::new("/exports/acme-1.dump", 10, "00ff"),
            crate::ExportFormat::PgDumpCustom,
            time::macros::datetime!(2026-01-01 0:00 UTC),
        );
        let retained = TenantStatus::Retained {
            until: time::macros::datetime!(2026-01-31 0:00 UTC),
            onboarded: true,
            export: Some(export),
        };
        let json = serde_json::to_value(&retained).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": "retained",
                "until": "2026-01-31T00:00:00Z",
                "onboarded": true,
                "export": {
                    "location": "/exports/acme-1.dump",
                    "format": "pg_dump_custom",
                    "size_bytes": 10,
                    "sha256": "00ff",
                    "exported_at": "2026-01-01T00:00:00Z"
                }
            })
        );
        assert_eq!(
            serde_json::from_value::<TenantStatus>(json).unwrap(),
            retained
        );
        assert!(retained.is_offboarded() && !retained.is_deleted());
        assert_eq!(retained.export().map(|e| e.size_bytes), Some(10));
        // a started offboarding leaves out what it does not have yet
        let started: TenantStatus = serde_json::from_str(
            r#"{"state":"offboarding","step":"cancel_billing","started_at":"2026-01-01T00:00:00Z","onboarded":false}"#,
        )
        .unwrap();
        assert_eq!(started.to_string(), "offboarding at cancel_billing");
        assert_eq!(
            TenantStatus::NAMES[7..],
            ["offboarding", "retained", "deleted"]
        );
    }

    #[test]
    fn status_serializes_with_its_step() {
        let failed = TenantStatus::Failed {
            step: OnboardingStep::Migrate,
            reason: "syntax error".into(),
            attempts: 2,
        };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "failed", "step": "migrate", "reason": "syntax error", "attempts": 2})
        );
        assert_eq!(
            serde_json::from_value::<TenantStatus>(json).unwrap(),
            failed
        );
        assert_eq!(
            failed.to_string(),
            "failed at migrate (attempt 2): syntax error"
        );
    }
}
