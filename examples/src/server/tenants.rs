use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use stripe_billing::Phase;
use tenancy_core::{Tenant, TenantId};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ApiError, AppState};

/// `GET /api/admin/tenants/{id}`: the tenant record with its onboarding step.
pub(super) async fn tenant(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = load(&state, &id).await?;
    Ok(Json(tenant_json(&tenant)))
}

/// `GET /api/admin/tenants/{id}/billing`: `{"tenant_id", "status", "plan", "modules", "trial_ends_at", "grace_ends_at"}`.
pub(super) async fn billing(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = load(&state, &id).await?;
    let billing = state.billing();
    let Some(billing_state) = billing
        .state(&tenant.id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::not_found(format!(
            "tenant `{id}` has no billing state yet; it starts when onboarding finishes"
        )));
    };
    let (trial_ends_at, grace_ends_at) = match &billing_state.phase {
        Phase::Trialing { ends_at, .. } => (Some(*ends_at), None),
        Phase::PastDue { grace_ends_at } => (None, Some(*grace_ends_at)),
        _ => (None, None),
    };
    Ok(Json(json!({
        "tenant_id": tenant.id,
        "status": billing_state.phase.name(),
        "plan": billing_state.plan.as_ref().map(|p| p.plan.to_string()),
        "modules": billing_state.enabled_modules(billing.config()),
        "trial_ends_at": trial_ends_at.map(rfc3339),
        "grace_ends_at": grace_ends_at.map(rfc3339),
    })))
}

async fn load(state: &AppState, id: &str) -> Result<Tenant, ApiError> {
    let id = TenantId::try_from(id).map_err(ApiError::bad_request)?;
    state
        .directory()
        .get(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("tenant `{id}` does not exist")))
}

fn tenant_json(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id,
        "name": tenant.name,
        "admin_email": tenant.admin_email,
        "status": tenant.status,
        "database": tenant.database.as_ref().map(|db| json!({
            "url": db.url.to_string(),
            "transaction_pooler_url": db.transaction_pooler_url.as_ref().map(ToString::to_string),
            "external_ref": db.external_ref,
            "provisioning_notes": db.provisioning_notes,
        })),
        "tags": tenant.tags,
        "created_at": rfc3339(tenant.created_at),
        "updated_at": rfc3339(tenant.updated_at),
    })
}

/// Formats a time as RFC 3339.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}
