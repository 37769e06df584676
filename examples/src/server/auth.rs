use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Admin routes: 503 when `ADMIN_TOKEN` is unset, 401 without the right bearer token.
pub(super) async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.admin_token() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "admin routes are disabled: set ADMIN_TOKEN to enable them",
        ));
    };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let matches: bool = given.as_bytes().ct_eq(expected.expose().as_bytes()).into();
    if !matches {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
        ));
    }
    Ok(next.run(request).await)
}
