use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// How much of a plain-text error body is kept as the JSON error's message.
const MESSAGE_LIMIT: usize = 4 * 1024;

/// Middleware that gives every error the JSON shape of [`ApiError`]: what axum's
/// extractors reject (malformed JSON, a missing field, a wrong content type, a bad
/// query string, a body over the limit, a wrong method) and routes that do not
/// exist answer `{"error": "…"}` with their status, as the routers' own errors do.
/// HTML error pages (the admin and billing pages') are left as they are.
/// Add it to the whole service with `axum::middleware::from_fn(json_errors)`.
///
/// ```
/// use axum::{routing::post, Json, Router};
/// use tenancy_core::http::json_errors;
///
/// let app: Router = Router::new()
///     .route("/items", post(|Json(_): Json<serde_json::Value>| async {}))
///     .layer(axum::middleware::from_fn(json_errors));
/// ```
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    // JSON is already the shape; an HTML page is an error page meant for a person.
    let keep = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || keep {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MESSAGE_LIMIT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match (status.as_u16(), text.is_empty()) {
        (404, true) => format!("no route for {method} {path}; check the path"),
        (405, true) => format!("{path} does not accept {method}; check the method"),
        (_, true) => status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned(),
        (_, false) => text,
    };
    let mut answer = ApiError::new(status, message).into_response();
    // Keep what the original answer told the client beyond its body (`Allow`, …).
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}
