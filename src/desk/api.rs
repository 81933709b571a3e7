//! REST handlers. Each one names the roles it serves; an agent reaches only its own state,
//! pops and calls, a marketer only reports, and only an admin manages agents.

use super::auth::{password_matches, Gate};
use super::sessions::Session;
use super::{ApiError, App};
use crate::acd::{CallId, DeskCommand};
use crate::call::{DeskError, TransferTarget};
use crate::context::Role;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

type Body<T> = Result<Json<T>, JsonRejection>;

/// The session behind a request: `Authorization: Bearer TOKEN`, or `?token=` (WebSockets).
pub struct Authed(pub Session, pub String);

/// A stand-in stored hash for unknown ids (no password matches it).
const UNKNOWN_HA1: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The bearer token: from `Authorization` only, except on a WebSocket upgrade, where browsers
/// cannot set headers. A token in the query of an ordinary request would leak into proxy logs,
/// history and `Referer`, so it is not accepted there.
fn token_of(parts: &Parts) -> Option<String> {
    if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
        let v = h.to_str().ok()?;
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return None;
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(String::from)
    })
}

#[axum::async_trait]
impl FromRequestParts<Arc<App>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = token_of(parts).ok_or_else(|| {
            ApiError::Unauthorized("log in first: send Authorization: Bearer <token>".into())
        })?;
        let s = app.sessions.get(Instant::now(), &token).ok_or_else(|| {
            ApiError::Unauthorized("session unknown or expired; log in again".into())
        })?;
        Ok(Authed(s, token))
    }
}

/// Refuses the request unless the session has one of `roles`.
pub fn allow(s: &Session, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&s.role) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(ApiError::Forbidden(format!(
        "{} may not do this (needs: {})",
        s.role.as_str(),
        names.join(", ")
    )))
}

/// Roles that take calls at a desk.
const CALL_TAKERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin];
pub(super) const SUPERVISORS: &[Role] = &[Role::Supervisor, Role::Admin];

fn store(app: &App) -> Result<&crate::context::Store, ApiError> {
    app.store
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no database configured".into()))
}

pub(super) fn core_gone() -> ApiError {
    ApiError::Unavailable("the call core is not running".into())
}

#[derive(Deserialize)]
pub struct Login {
    id: String,
    password: String,
}

pub async fn login(
    State(app): State<Arc<App>>,
    peer: Option<ConnectInfo<SocketAddr>>,
    body: Body<Login>,
) -> Result<Json<Value>, ApiError> {
    let Json(l) = body?;
    let now = Instant::now();
    let ip = peer.map(|ConnectInfo(a)| a.ip());
    if l.id.len() > 64 || l.password.len() > 256 {
        return Err(ApiError::BadRequest("id or password too long".into()));
    }
    match app.limiter.check(now, ip, &l.id) {
        Gate::Blocked(wait) => return Err(ApiError::TooManyAttempts(wait)),
        Gate::Go(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Gate::Go(_) => {}
    }
    let found = store(&app)?.agent_login(&l.id).await?;
    // An unknown id costs the same hash as a wrong password, so timing tells nothing.
    let (id, realm, ha1) = match found.as_ref().filter(|a| a.realm == app.cfg.realm) {
        Some(a) => (a.id.as_str(), a.realm.as_str(), a.ha1_sha256.as_str()),
        None => (l.id.as_str(), app.cfg.realm.as_str(), UNKNOWN_HA1),
    };
    let ok = password_matches(id, realm, &l.password, ha1) && found.is_some();
    let Some(a) = found.filter(|_| ok) else {
        app.limiter.failed(now, ip, &l.id);
        tracing::warn!(id = %l.id, ?ip, "desk log-in failed");
        // The same answer for an unknown id and a wrong password.
        return Err(ApiError::Unauthorized("wrong id or password".into()));
    };
    app.limiter.succeeded(ip, &a.id);
    let token = app.sessions.open(now, &a.id, &a.name, a.role);
    Ok(Json(
        json!({"token": token, "agent": a.id, "name": a.name, "role": a.role}),
    ))
}

pub async fn logout(State(app): State<Arc<App>>, Authed(_, token): Authed) -> StatusCode {
    app.sessions.close(&token);
    StatusCode::NO_CONTENT
}

pub async fn me(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<Value>, ApiError> {
    let status = app.core.status().await.ok_or_else(core_gone)?;
    let me = status.agents.iter().find(|a| a.id == s.agent);
    let card = if CALL_TAKERS.contains(&s.role) {
        app.hub.card(&s.agent)
    } else {
        None
    };
    Ok(Json(json!({
        "agent": s.agent,
        "name": s.name,
        "role": s.role,
        "state": me.map(|a| super::wallboard::state_name(a.state)),
        "reason": me.and_then(|a| a.reason.clone()),
        "card": card,
        "queues": status.queues.iter().map(|q| q.name.clone()).collect::<Vec<_>>(),
    })))
}

fn desk_error(e: DeskError) -> ApiError {
    match e {
        DeskError::Presence(crate::acd::PresenceError::UnknownAgent(a)) => {
            ApiError::NotFound(format!("agent '{a}' is not in the directory (yet)"))
        }
        DeskError::Presence(crate::acd::PresenceError::NoReason) => {
            ApiError::BadRequest(e.to_string())
        }
        DeskError::Presence(p) => ApiError::Conflict(p.to_string()),
        DeskError::NoSuchCall(_) => ApiError::NotFound(e.to_string()),
        DeskError::NotYourCall(..) => ApiError::Forbidden(e.to_string()),
        DeskError::UnknownQueue(_) | DeskError::UnknownAgent(_) => {
            ApiError::BadRequest(e.to_string())
        }
        DeskError::Elsewhere { .. } => {
            ApiError::Unavailable(format!("{e}, and that leader did not answer; try again"))
        }
    }
}

async fn set_state(app: &App, agent: &str, cmd: DeskCommand) -> Result<Json<Value>, ApiError> {
    app.core
        .desk(agent, cmd)
        .await
        .ok_or_else(core_gone)?
        .map_err(desk_error)?;
    Ok(Json(json!({"ok": true})))
}

pub async fn my_state(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    body: Body<DeskCommand>,
) -> Result<Json<Value>, ApiError> {
    allow(&s, CALL_TAKERS)?;
    let Json(cmd) = body?;
    set_state(&app, &s.agent, cmd).await
}

/// A supervisor pauses or logs out someone else (an agent who walked away from a ready desk).
pub async fn agent_state(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(id): Path<String>,
    body: Body<DeskCommand>,
) -> Result<Json<Value>, ApiError> {
    allow(&s, SUPERVISORS)?;
    let Json(cmd) = body?;
    set_state(&app, &id, cmd).await
}

#[derive(Deserialize)]
pub struct Transfer {
    queue: Option<String>,
    agent: Option<String>,
    #[serde(default)]
    note: String,
}

pub async fn transfer(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(call): Path<CallId>,
    body: Body<Transfer>,
) -> Result<Json<Value>, ApiError> {
    allow(&s, CALL_TAKERS)?;
    let Json(t) = body?;
    let target = match (t.queue, t.agent) {
        (Some(q), None) => TransferTarget::Queue(q),
        (None, Some(a)) => TransferTarget::Agent(a),
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of \"queue\" or \"agent\"".into(),
            ))
        }
    };
    if t.note.len() > 2000 {
        return Err(ApiError::BadRequest("note longer than 2000 bytes".into()));
    }
    let transfers = app
        .core
        .transfer(&s.agent, call, target, t.note)
        .await
        .ok_or_else(core_gone)?
        .map_err(desk_error)?;
    Ok(Json(json!({
        "transfers": transfers,
        "warning": (transfers > 2).then_some("this caller has been transferred more than twice"),
    })))
}

/// May this session see or change this interaction? Agents: only calls they took.
async fn may_touch(app: &App, s: &Session, id: &str) -> Result<(), ApiError> {
    allow(s, CALL_TAKERS)?;
    if s.role != Role::Agent {
        return Ok(());
    }
    let mine = match app.hub.handled_by(id) {
        Some(a) => a == s.agent,
        None => store(app)?
            .interaction(id)
            .await?
            .is_some_and(|r| r.agent_id.as_deref() == Some(&s.agent)),
    };
    if mine {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "interaction '{id}' is not one of your calls"
        )))
    }
}

pub async fn interaction(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<crate::context::InteractionRow>, ApiError> {
    may_touch(&app, &s, &id).await?;
    store(&app)?
        .interaction(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no interaction '{id}'")))
}

#[derive(Deserialize)]
pub struct Disposition {
    disposition: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    tags: Vec<String>,
}

fn check_disposition(d: &Disposition) -> Result<(), ApiError> {
    let disp = d.disposition.trim();
    if disp.is_empty() || disp.chars().count() > 40 || disp.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "disposition must be 1-40 printable characters".into(),
        ));
    }
    if d.note.len() > 2000 {
        return Err(ApiError::BadRequest("note longer than 2000 bytes".into()));
    }
    if d.tags.len() > 10 {
        return Err(ApiError::BadRequest("at most 10 tags".into()));
    }
    if let Some(bad) = d.tags.iter().find(|t| {
        t.is_empty()
            || t.len() > 32
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    }) {
        return Err(ApiError::BadRequest(format!(
            "tag '{bad}': 1-32 letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

pub async fn disposition(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(id): Path<String>,
    body: Body<Disposition>,
) -> Result<Json<Value>, ApiError> {
    let Json(d) = body?;
    check_disposition(&d)?;
    may_touch(&app, &s, &id).await?;
    let mut tags = d.tags.clone();
    tags.sort();
    tags.dedup();
    store(&app)?
        .set_disposition(&id, d.disposition.trim(), d.note.trim(), &tags)
        .await?;
    tracing::info!(interaction = %id, agent = %s.agent, disposition = %d.disposition, "disposition");
    Ok(Json(json!({"ok": true})))
}

pub async fn wallboard(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<super::wallboard::Wallboard>, ApiError> {
    allow(&s, SUPERVISORS)?;
    let status = app.core.status().await.ok_or_else(core_gone)?;
    let today = app
        .hub
        .today(app.store.as_ref(), app.cfg.thresholds, WALLBOARD_AGE)
        .await;
    Ok(Json(super::wallboard::build(&status, &today)))
}

pub async fn status(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<crate::control::StatusReport>, ApiError> {
    allow(&s, SUPERVISORS)?;
    app.core.status().await.map(Json).ok_or_else(core_gone)
}

pub async fn list_agents(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
) -> Result<Json<Vec<crate::context::AgentRow>>, ApiError> {
    allow(&s, SUPERVISORS)?;
    Ok(Json(store(&app)?.list_agents().await?))
}

#[derive(Deserialize)]
pub struct NewAgent {
    id: String,
    name: String,
    password: String,
    #[serde(default)]
    skills: String,
    #[serde(default = "agent_role")]
    role: Role,
    /// The agent's own after-call seconds (absent: each queue's).
    #[serde(default)]
    wrapup_s: Option<u32>,
}

fn agent_role() -> Role {
    Role::Agent
}

pub async fn add_agent(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    body: Body<NewAgent>,
) -> Result<Response, ApiError> {
    allow(&s, &[Role::Admin])?;
    let Json(a) = body?;
    let st = store(&app)?;
    let skills = crate::context::parse_skills(&a.skills)?;
    st.add_agent(&a.id, &a.name, &app.cfg.realm, &a.password, &skills)
        .await?;
    st.set_role(&a.id, a.role).await?;
    st.set_wrapup(&a.id, a.wrapup_s).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": a.id}))).into_response())
}

/// What a supervisor may change about an agent: skills with levels, and their own wrap-up.
#[derive(Deserialize)]
pub struct AgentChange {
    skills: Option<String>,
    /// Seconds, or `null` for the queues' own.
    #[serde(default, deserialize_with = "present")]
    wrapup_s: Option<Option<u32>>,
}

/// Tells "absent" (`None`) from `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

/// Changes an agent's skills or wrap-up; the ACD routes on it within `database.reload_s`.
pub async fn change_agent(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(id): Path<String>,
    body: Body<AgentChange>,
) -> Result<StatusCode, ApiError> {
    allow(&s, SUPERVISORS)?;
    let Json(c) = body?;
    let st = store(&app)?;
    if c.skills.is_none() && c.wrapup_s.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give skills and/or wrapup_s".into(),
        ));
    }
    let skills = c
        .skills
        .as_deref()
        .map(crate::context::parse_skills)
        .transpose()?;
    let found = match skills {
        Some(sk) => st.set_skills(&id, &sk).await?,
        None => true,
    } && match c.wrapup_s {
        Some(w) => st.set_wrapup(&id, w).await?,
        None => true,
    };
    if !found {
        return Err(ApiError::NotFound(format!("no agent '{id}'")));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_agent(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    allow(&s, &[Role::Admin])?;
    if !store(&app)?.remove_agent(&id).await? {
        return Err(ApiError::NotFound(format!("no agent '{id}'")));
    }
    app.sessions.close_agent(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// How stale the wallboard's "today" figures may be.
pub const WALLBOARD_AGE: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Deserialize)]
pub struct QueueQuery {
    since: Option<String>,
    until: Option<String>,
    sl_s: Option<u64>,
    short_abandon_s: Option<u64>,
    fcr_days: Option<u64>,
    /// json (default) or csv.
    format: Option<String>,
}

/// Queue statistics (`acd report queues` over HTTP): per queue, agent and hour.
pub async fn queue_report(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    q: Result<axum::extract::Query<QueueQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::report::queues;
    allow(&s, SUPERVISORS)?;
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (since, until) = crate::report::period(
        q.since.as_deref(),
        q.until.as_deref(),
        crate::context::time::unix_now(),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let d = app.cfg.thresholds;
    let t = queues::Thresholds {
        sl_s: q.sl_s.unwrap_or(d.sl_s),
        short_abandon_s: q.short_abandon_s.unwrap_or(d.short_abandon_s),
        fcr_days: q.fcr_days.unwrap_or(d.fcr_days),
    };
    let r = queues::report(store(&app)?, since, until, t)
        .await
        .map_err(|e| match e {
            crate::report::ReportError::Store(s) => ApiError::from(s),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(r).into_response(),
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            queues::csv(&r),
        )
            .into_response(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format '{other}': use json or csv"
            )))
        }
    })
}

#[derive(Deserialize)]
pub struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    /// Default: the configured `reports.attribution`.
    attribution: Option<crate::context::attribution::Attribution>,
    /// json (default), csv or svg.
    format: Option<String>,
}

/// Campaign attribution (`acd report campaigns` over HTTP): JSON, CSV or the SVG charts.
pub async fn campaign_report(
    State(app): State<Arc<App>>,
    Authed(s, _): Authed,
    q: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::report::{campaigns, svg};
    allow(&s, &[Role::Marketer, Role::Supervisor, Role::Admin])?;
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (since, until) = crate::report::period(
        q.since.as_deref(),
        q.until.as_deref(),
        crate::context::time::unix_now(),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let rule = q.attribution.unwrap_or(app.cfg.attribution);
    let r = campaigns::report(store(&app)?, since, until, rule)
        .await
        .map_err(|e| match e {
            crate::report::ReportError::Store(s) => ApiError::from(s),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(r).into_response(),
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            campaigns::csv(&r),
        )
            .into_response(),
        "svg" => (
            [(header::CONTENT_TYPE, "image/svg+xml")],
            svg::campaign_chart(&r),
        )
            .into_response(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format '{other}': use json, csv or svg"
            )))
        }
    })
}

/// Prometheus text; a session of a supervisor or admin, or the configured scrape token.
pub async fn metrics(
    State(app): State<Arc<App>>,
    parts: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let token = parts
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    let scrape = app
        .cfg
        .metrics_token
        .as_deref()
        .is_some_and(|t| crate::sip::auth::constant_eq(t.as_bytes(), token.as_bytes()));
    if !scrape {
        let s = app
            .sessions
            .get(Instant::now(), token)
            .ok_or_else(|| ApiError::Unauthorized("session unknown or expired".into()))?;
        allow(&s, SUPERVISORS)?;
    }
    let status = app.core.status().await.ok_or_else(core_gone)?;
    let body = super::metrics::render(&app.hub.metrics, &status);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
