//! The demo's rollout step: the `staging` tenant as a canary, then the rest.

use tenant_migrate::{CanaryTenants, MigrationSet, Rollout, RolloutEvent, Strategy};

use crate::assembly::Assembly;

/// The migration the demo rolls out (`examples/rollout/`), on top of the base set.
pub fn rollout_migrations(
    base: &MigrationSet,
) -> Result<MigrationSet, tenant_migrate::MigrationSourceError> {
    let added = tenant_migrate::embedded_migrations!(
        "rollout",
        [
            "20240127000000_add_new_field.up.sql",
            "20240127000000_add_new_field.down.sql"
        ]
    )?;
    base.iter()
        .chain(added.iter())
        .fold(MigrationSet::builder(), |builder, migration| {
            builder.migration(migration.clone())
        })
        .build()
}

/// Rolls `examples/rollout/` out over the demo's tenants, narrating each step.
pub async fn run(demo: &Assembly) -> Result<(), Box<dyn std::error::Error>> {
    let set = rollout_migrations(&demo.migrations.last_read())?;
    let strategy = Strategy::canary(CanaryTenants::Tag("staging".into()), Strategy::AllAtOnce)?;
    let rollout = Rollout::of_migrations(
        demo.plane.directory.clone(),
        set,
        demo.plane.rollouts.clone(),
    )
    .strategy(strategy)
    .concurrency(2)
    .on_event(narrate)
    .build();
    let report = rollout.run().await?;
    println!(
        "   rollout {} to version {}: {} ({} succeeded, {} failed)",
        report.rollout_id,
        report.target_version,
        report.status,
        report.counts.succeeded,
        report.counts.failed
    );
    Ok(())
}

fn narrate(event: &RolloutEvent) {
    match event {
        RolloutEvent::WaveStarted { wave: 0, tenants } => {
            println!("   wave 0 (canary): {tenants} tenant")
        }
        RolloutEvent::WaveStarted { wave, tenants } => {
            println!("   wave {wave}: {tenants} tenants")
        }
        RolloutEvent::TenantSucceeded {
            tenant,
            from_version,
            to_version,
            ..
        } => println!(
            "      ✓ {tenant:<16} {} → {}",
            from_version.map_or("-".into(), |v| v.to_string()),
            to_version.map_or("-".into(), |v| v.to_string())
        ),
        RolloutEvent::TenantFailed { tenant, error, .. } => {
            println!("      ✗ {tenant:<16} {error}")
        }
        _ => {}
    }
}
