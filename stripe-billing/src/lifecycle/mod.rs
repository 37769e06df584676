//! The local subscription lifecycle: a pure, deterministic state machine.

mod config;
mod effect;
mod input;
mod machine;
mod state;

pub use config::{LifecycleConfig, TrialEndBehaviour};
pub use effect::{BillingNotice, Effect};
pub use input::{BillingEvent, BillingEventKind, LifecycleInput, SubscriptionSnapshot};
pub use machine::transition;
pub use state::{BillingPhase, BillingState, SuspendReason};
