use axum::extract::{FromRef, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::SecretString;

/// The bearer token that guards admin routes; `None` disables them (503), so that a
/// service started without one never serves them unguarded.
#[derive(Clone, Debug)]
pub struct AdminToken(Option<SecretString>);

impl AdminToken {
    /// Guards admin routes with `token` (`None`: admin routes answer 503).
    pub fn new(token: Option<SecretString>) -> Self {
        Self(token)
    }
}

/// Middleware for admin routes: 503 when no token is configured, 401 without
/// `Authorization: Bearer <token>` (compared in constant time). Use it with
/// `axum::middleware::from_fn_with_state(state, require_admin_token::<S>)`.
pub async fn require_admin_token<S>(
    State(state): State<S>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError>
where
    AdminToken: FromRef<S>,
{
    let AdminToken(expected) = AdminToken::from_ref(&state);
    let Some(expected) = expected else {
        return Err(ApiError::unavailable(
            "admin routes are disabled: set ADMIN_TOKEN to enable them",
        ));
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` works as `Bearer`.
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    let matches: bool = given.as_bytes().ct_eq(expected.expose().as_bytes()).into();
    if !matches {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
        ));
    }
    Ok(next.run(request).await)
}
