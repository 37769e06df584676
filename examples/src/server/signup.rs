use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tenancy_core::{NewTenant, OnboardingError};

use super::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(super) struct SignupRequest {
    company: String,
    email: String,
}

/// `POST /api/signup {"company", "email"}` → 202 `{"tenant_id"}`; onboarding runs in the background.
pub(super) async fn signup(
    State(state): State<AppState>,
    Json(request): Json<SignupRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let signup =
        NewTenant::new(&request.company, &request.email).map_err(ApiError::unprocessable)?;
    let tenant = state
        .onboarding()
        .signup(signup)
        .await
        .map_err(|error| match error {
            OnboardingError::AlreadySignedUp(_) => {
                ApiError::new(StatusCode::CONFLICT, error.to_string())
            }
            other => ApiError::internal(other),
        })?;
    state.spawn_onboarding(tenant.id.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "tenant_id": tenant.id })),
    ))
}
