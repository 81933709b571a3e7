//! HTTP: health and live status now; the agent desk, wallboard and reports build on this router.

use crate::net::CoreHandle;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use axum::Router;

/// The routes, with the core handle as state.
pub fn router(core: CoreHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/status", get(status))
        .with_state(core)
}

async fn status(State(core): State<CoreHandle>) -> impl IntoResponse {
    match core.status().await {
        Some(s) => Json(s).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "core is not running").into_response(),
    }
}
