//! Assembly code shared by the example binaries of **tenancy-kit**: how a service wires
//! `tenancy-core`, `supabase-mgmt`, `tenant-migrate` and `stripe-billing` together.
//!
//! - [`config`]: environment variables (the service's names), validated at start.
//! - [`control_plane`]: the stores behind `--state` (SQLite by default, PostgreSQL
//!   accepted) and the tenant database provider (Supabase, a PostgreSQL server, or
//!   SQLite files).
//! - [`assembly`]: onboarding, billing and migrations wired to one control plane.
//! - [`migrations`]: the application's migrations, base plus those added at run time.
//! - [`plans`]: the example plan catalog (Starter, Professional).
//! - [`demo_rollout`]: the demo's canary rollout.
//! - [`server`]: the HTTP service with the service's routes.
//! - [`telemetry`]: logging and shutdown signals.
//!
//! The binaries live in `src/bin/`: `demo`, `onboard`, `migrate`, `server` and
//! `rollout_bench`.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod assembly;
pub mod bench_fleet;
pub mod config;
pub mod control_plane;
pub mod demo_rollout;
pub mod migrations;
pub mod plans;
pub mod server;
pub mod telemetry;
