//! Workspace-level end-to-end tests live in `tests/`: the real HTTP server on an
//! ephemeral port, a PostgreSQL control plane and one PostgreSQL database per
//! tenant, with wiremock standing in for Stripe and a stand-in for Supabase.
//!
//! - `service.rs`: signup to a ready tenant with its schema, admin authentication.
//! - `webhooks.rs`: signed, tampered, duplicate and out-of-order Stripe events.
//! - `migrations.rs`: admin migrations rolled out to every tenant, refusals.
//! - `supabase.rs`: signup with Supabase provisioning.
//! - `browser_harness.rs`: the headless-Chromium harness (`tests/support/browser.rs`)
//!   that tests of server-rendered pages use; it needs `scripts/ensure-browser.sh`.
