//! HTTP and WebSocket: the agent desk (log-in, ready/pause, screen pops, disposition, transfer),
//! the supervisor wallboard, `/metrics` and `/openapi.json`. Every endpoint but the log-in, the
//! static pages and `/healthz` needs a session, and each checks the session's role.

mod api;
pub mod auth;
mod drain;
mod error;
pub mod https;
pub mod hub;
pub mod metrics;
mod pages;
pub mod sessions;
pub mod wallboard;
mod ws;

use crate::context::Store;
use crate::control::CoreHandle;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
pub use error::ApiError;
use std::sync::Arc;
use std::time::Duration;

/// Desk settings from the config.
#[derive(Clone, Debug)]
pub struct DeskConfig {
    /// The SIP realm the agents' HA1 hashes were made for.
    pub realm: String,
    pub session_ttl: Duration,
    /// Service level, short-abandon and first-contact-resolution thresholds for the wallboard.
    pub thresholds: crate::report::queues::Thresholds,
    /// Which send a caller who got several campaigns is credited to.
    pub attribution: crate::context::attribution::Attribution,
    /// A fixed bearer token Prometheus may scrape `/metrics` with (sessions work too).
    pub metrics_token: Option<String>,
    /// Failed log-ins allowed per address or account within `login_window`.
    pub login_failures: usize,
    pub login_window: Duration,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            realm: "acd".into(),
            session_ttl: Duration::from_secs(12 * 3600),
            thresholds: Default::default(),
            attribution: Default::default(),
            metrics_token: None,
            login_failures: 5,
            login_window: Duration::from_secs(300),
        }
    }
}

/// Shared by every handler.
pub struct App {
    pub core: CoreHandle,
    pub store: Option<Store>,
    pub cfg: DeskConfig,
    pub sessions: sessions::Sessions,
    pub limiter: auth::LoginLimiter,
    pub hub: Arc<hub::Hub>,
}

/// Largest request body accepted (JSON commands are small).
const MAX_BODY: usize = 16 * 1024;

/// Starts the hub on the core's event stream and returns the routes.
/// The desk's router; `saved` are the sessions left by the previous run (with a store, new
/// ones are saved as they open, so a restart keeps everyone logged in).
pub fn start(
    core: CoreHandle,
    store: Option<Store>,
    cfg: DeskConfig,
    saved: Vec<crate::context::SavedSession>,
) -> Router {
    let hub = hub::Hub::new(core.clone());
    tokio::spawn(hub.clone().run(core.events.subscribe()));
    let sessions = match &store {
        Some(st) => sessions::Sessions::persistent(cfg.session_ttl, st.clone(), saved),
        None => sessions::Sessions::new(cfg.session_ttl),
    };
    let app = Arc::new(App {
        sessions,
        limiter: auth::LoginLimiter::new(cfg.login_failures, cfg.login_window),
        core,
        store,
        cfg,
        hub,
    });
    router(app)
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(pages::openapi))
        .route("/", get(pages::desk))
        .route("/desk", get(pages::desk))
        .route("/wallboard", get(pages::wallboard))
        .route("/reports", get(pages::reports))
        .route("/assets/:file", get(pages::asset))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/me", get(api::me))
        .route("/api/me/state", post(api::my_state))
        .route("/api/agents", get(api::list_agents).post(api::add_agent))
        .route(
            "/api/agents/:id",
            delete(api::remove_agent).patch(api::change_agent),
        )
        .route("/api/agents/:id/state", post(api::agent_state))
        .route("/api/calls/:call/transfer", post(api::transfer))
        .route("/api/interactions/:id", get(api::interaction))
        .route("/api/interactions/:id/disposition", post(api::disposition))
        .route("/api/wallboard", get(api::wallboard))
        .route("/api/status", get(api::status))
        .route("/api/drain", post(drain::start).delete(drain::stop))
        .route("/api/reports/campaigns", get(api::campaign_report))
        .route("/api/reports/queues", get(api::queue_report))
        .route("/metrics", get(api::metrics))
        .route("/ws/desk", get(ws::desk))
        .route("/ws/wallboard", get(ws::wallboard))
        .fallback(|| async { ApiError::NotFound("no such page or endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Sent with every answer: the pages load nothing but their own scripts and styles (so an
/// injected script cannot run or call home), may not be framed (clickjacking on Ready or
/// Transfer), and are never content-sniffed; no URL leaks in `Referer`.
async fn security_headers(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The Content-Security-Policy of every page (blob: images are the report charts).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
