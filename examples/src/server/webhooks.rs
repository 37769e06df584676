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
    let now = state.clock().now();
    let outcome = state.billing().process_webhook(&event, &body, now).await;
    let duplicate = match outcome {
        Ok(ProcessOutcome::AlreadyProcessed { .. }) => true,
        // Parked by the processor until its tenant is known.
        Ok(ProcessOutcome::UnknownTenant { .. }) => false,
        Ok(other) => {
            tracing::info!(event = %event.id, ?other, "webhook processed");
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

/// On the billing clock: retries the oldest parked events, drops the expired ones.
pub(super) async fn replay_parked(state: &AppState) {
    match state
        .billing()
        .replay_parked(None, state.clock().now())
        .await
    {
        Ok(report) if report.applied > 0 => {
            tracing::info!(?report, "parked webhooks applied");
            state.wake_effects();
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "could not replay parked webhooks; they stay parked"),
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
