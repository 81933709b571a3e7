//! WebSockets: `/ws/desk` carries one agent's pops and call changes; `/ws/wallboard` a fresh
//! board each second while anything changes. Both take `?token=` (browsers cannot set headers).

use super::api::{allow, Authed};
use super::{ApiError, App};
use crate::context::Role;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

pub async fn desk(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    allow(&s, &[Role::Agent, Role::Supervisor, Role::Admin])?;
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| run_desk(app, s.agent, socket)))
}

async fn run_desk(app: Arc<App>, agent: String, mut socket: WebSocket) {
    let (conn, mut rx) = app.hub.attach(&agent);
    // Resume: the current card first, so a reconnect shows what the agent was doing.
    if let Some(card) = app.hub.card(&agent) {
        let hello = serde_json::json!({"type": "resume", "card": card});
        if socket.send(Message::Text(hello.to_string())).await.is_err() {
            app.hub.detach(&agent, conn);
            return;
        }
    }
    loop {
        tokio::select! {
            push = rx.recv() => {
                let Some(p) = push else { break };
                if socket.send(Message::Text(p.text.to_string())).await.is_err() {
                    break;
                }
                if let Some(since) = p.offered_at {
                    app.hub.written(since);
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(Message::Text(t))) => {
                    // The page confirms each pop once it is on screen.
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if let (Some("shown"), Some(call)) = (v["type"].as_str(), v["call_id"].as_u64()) {
                        app.hub.shown(call, &agent);
                    }
                }
                // Pings are answered by axum.
                Some(Ok(_)) => {}
            }
        }
    }
    app.hub.detach(&agent, conn);
}

pub async fn wallboard(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    allow(&s, &[Role::Supervisor, Role::Admin])?;
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| run_wallboard(app, socket)))
}

async fn run_wallboard(app: Arc<App>, mut socket: WebSocket) {
    let mut last = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Some(status) = app.core.status().await else { break };
                let today = app.hub.today(app.store.as_ref(), app.cfg.thresholds, super::api::WALLBOARD_AGE).await;
                let board = super::wallboard::build(&status, &today);
                let text = serde_json::json!({"type": "wallboard", "board": board}).to_string();
                if text != last {
                    if socket.send(Message::Text(text.clone())).await.is_err() {
                        break;
                    }
                    last = text;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
}
