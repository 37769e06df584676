//! The application's migrations: the ones shipped with the binary, plus those added
//! at run time through `POST /api/admin/migrations/run`, kept in the control plane
//! by `tenant_migrate::StoredCatalog` so that tenants onboarded later get them too.

use std::sync::Arc;

use tenant_migrate::{CatalogError, MigrationSet, StoredCatalog};

use crate::control_plane::ControlPlane;

/// The application's migration catalog, shared by the admin routes and onboarding.
pub type AppMigrations = Arc<StoredCatalog>;

/// The migrations shipped with the examples (`examples/migrations/`).
pub fn base_migrations() -> Result<MigrationSet, tenant_migrate::MigrationSourceError> {
    tenant_migrate::embedded_migrations!(
        "migrations",
        [
            "20240101000000_create_items.sql",
            "20240115000000_create_orders.sql"
        ]
    )
}

/// The base migrations plus those stored in the control plane.
pub async fn open(plane: &ControlPlane) -> Result<AppMigrations, CatalogError> {
    let base = base_migrations().map_err(|e| CatalogError::Refused {
        message: e.to_string(),
        findings: Vec::new(),
    })?;
    Ok(Arc::new(
        StoredCatalog::open(base, plane.pool.clone()).await?,
    ))
}
