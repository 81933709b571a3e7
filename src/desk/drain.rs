//! `POST /api/drain` and `DELETE /api/drain`: a supervisor takes this node out of service
//! (new calls get 503 + Retry-After, calls in progress finish) and puts it back.

use super::api::{allow, core_gone, Authed, SUPERVISORS};
use super::error::ApiError;
use super::App;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

#[derive(serde::Serialize)]
pub struct DrainState {
    pub draining: bool,
    /// Calls still in progress (callers away for a callback included).
    pub calls: usize,
}

async fn set(app: &App, on: bool) -> Result<Json<DrainState>, ApiError> {
    if !app.core.set_draining(on).await {
        return Err(core_gone());
    }
    let s = app.core.status().await.ok_or_else(core_gone)?;
    Ok(Json(DrainState {
        draining: s.status.draining,
        calls: s.status.calls,
    }))
}

pub async fn start(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<DrainState>, ApiError> {
    allow(&s, SUPERVISORS)?;
    tracing::info!(by = %s.agent, "drain requested");
    set(&app, true).await
}

pub async fn stop(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<DrainState>, ApiError> {
    allow(&s, SUPERVISORS)?;
    tracing::info!(by = %s.agent, "back in service");
    set(&app, false).await
}
