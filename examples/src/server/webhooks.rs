use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use stripe_billing::{EventType, ProcessError, ProcessOutcome};

use super::{ApiError, AppState};

/// `POST /api/webhooks/stripe`: verify the raw body, process the event.
/// 400 when verification fails; 200 `{"received": true, "duplicate": bool}` otherwise.
pub(super) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Some(verifier) = state.verifier() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks are disabled: set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret",
        ));
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let event = verifier.verify(&body, signature).map_err(|error| {
        tracing::warn!(%error, "rejected a Stripe webhook");
        ApiError::bad_request(error)
    })?;
    let outcome = state.billing().process(&event).await;
    let duplicate = match outcome {
        Ok(ProcessOutcome::AlreadyProcessed { .. }) => true,
        Ok(ProcessOutcome::UnknownTenant { customer_id }) => {
            park(&state, &event, &body).await?;
            tracing::info!(event = %event.id, ?customer_id, "webhook for no known tenant yet: parked");
            false
        }
        Ok(other) => {
            tracing::info!(event = %event.id, ?other, "webhook processed");
            if let (Some(parked), Some(customer)) = (state.parked(), event.customer_id()) {
                let now = state.clock().now();
                log_replay(parked.replay_customer(state.billing(), customer, now).await);
            }
            state.wake_effects();
            false
        }
        // A bad tenant reference will not get better when Stripe retries: acknowledge it.
        Err(error @ ProcessError::InvalidTenantReference { .. }) => {
            tracing::warn!(event = %event.id, %error, "webhook ignored");
            false
        }
        // Storage trouble: answer 500 so that Stripe delivers the event again.
        Err(error) => return Err(ApiError::internal(error)),
    };
    Ok(Json(json!({ "received": true, "duplicate": duplicate })))
}

async fn park(
    state: &AppState,
    event: &stripe_billing::Event,
    body: &[u8],
) -> Result<(), ApiError> {
    match state.parked() {
        Some(parked) => parked
            .park(event, body, state.clock().now())
            .await
            .map_err(ApiError::internal),
        None => Ok(()),
    }
}

/// On the billing clock: retries the oldest parked events, drops the expired ones.
pub(super) async fn replay_parked(state: &AppState) {
    if let Some(parked) = state.parked() {
        log_replay(parked.replay(state.billing(), state.clock().now()).await);
    }
}

fn log_replay(result: Result<usize, sqlx::Error>) {
    match result {
        Ok(0) => {}
        Ok(resolved) => tracing::info!(resolved, "parked webhooks applied"),
        Err(error) => tracing::error!(%error, "could not replay parked webhooks"),
    }
}

/// `GET /api/webhooks/stripe/test`: whether a secret is configured and which events are handled.
pub(super) async fn test(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "ok": true,
        "secret_configured": state.verifier().is_some(),
        "handled_events": EventType::NAMED,
    }))
}
