use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{BackendError, TenantId};

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// The tenant finished onboarding.
    TenantReady,
    /// The tenant's trial ends soon.
    TrialEnding {
        /// When the trial ends.
        #[serde(with = "time::serde::rfc3339")]
        ends_at: OffsetDateTime,
    },
    /// A payment failed; access continues until the grace period ends.
    PaymentFailed {
        /// When the grace period ends.
        #[serde(with = "time::serde::rfc3339")]
        grace_ends_at: OffsetDateTime,
    },
    /// The tenant was suspended (grace period or trial over without payment).
    Suspended,
    /// The subscription was cancelled.
    Cancelled,
    /// Anything else, named by the host.
    Other(String),
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |at: &OffsetDateTime| {
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| at.to_string())
        };
        match self {
            Self::TenantReady => f.write_str("tenant ready"),
            Self::TrialEnding { ends_at } => write!(f, "trial ends on {}", date(ends_at)),
            Self::PaymentFailed { grace_ends_at } => {
                write!(
                    f,
                    "payment failed; access continues until {}",
                    date(grace_ends_at)
                )
            }
            Self::Suspended => f.write_str("access suspended"),
            Self::Cancelled => f.write_str("subscription cancelled"),
            Self::Other(kind) => f.write_str(&kind.replace('_', " ")),
        }
    }
}

/// A message for a tenant's admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Notification {
    /// The tenant it concerns.
    pub tenant_id: TenantId,
    /// What it is about.
    pub kind: NotificationKind,
}

impl Notification {
    /// A notification of `kind` for `tenant_id`.
    pub fn new(tenant_id: TenantId, kind: NotificationKind) -> Self {
        Self { tenant_id, kind }
    }
}

/// Delivers notifications (email, Slack, a queue …). Delivery should be
/// at-least-once; implementations should tolerate the same notification twice.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification.
    async fn notify(&self, notification: &Notification) -> Result<(), BackendError>;
}

/// A notifier that writes each notification to the `tracing` log at `info` level.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingNotifier;

#[async_trait]
impl Notifier for LoggingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), BackendError> {
        tracing::info!(tenant = %notification.tenant_id, notice = %notification.kind, "notification");
        Ok(())
    }
}

/// A notifier that keeps what it was sent, for tests. Clones share the record.
#[derive(Clone, Default)]
pub struct RecordingNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything sent so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for RecordingNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingNotifier")
            .field("sent", &self.sent().len())
            .finish()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), BackendError> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notification.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn kinds_read_as_sentences() {
        let failed = NotificationKind::PaymentFailed {
            grace_ends_at: datetime!(2026-12-03 2:46 UTC),
        };
        assert_eq!(
            failed.to_string(),
            "payment failed; access continues until 2026-12-03T02:46:00Z"
        );
        assert_eq!(
            NotificationKind::Other("payment_recovered".into()).to_string(),
            "payment recovered"
        );
    }

    #[tokio::test]
    async fn recording_notifier_keeps_order() {
        let notifier = RecordingNotifier::new();
        let id = TenantId::try_from("acme").unwrap();
        for kind in [NotificationKind::Suspended, NotificationKind::Cancelled] {
            notifier
                .notify(&Notification::new(id.clone(), kind))
                .await
                .unwrap();
        }
        let kinds: Vec<_> = notifier.sent().into_iter().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            [NotificationKind::Suspended, NotificationKind::Cancelled]
        );
    }
}
