//! The local subscription lifecycle: a pure, deterministic state machine.

mod config;
mod effect;
mod input;
mod machine;
mod state;

pub use config::{LifecycleConfig, TrialEndBehaviour};
pub use effect::{BillingNotice, Effect};
pub use input::{BillingEvent, BillingEventKind, Input, SubscriptionSnapshot};
pub use machine::next;
pub use state::{BillingState, Phase, SuspendReason};
