//! The desk and wallboard pages and the OpenAPI document, embedded in the binary (no CDN, no
//! files to deploy). They hold no data; everything comes from the API after log-in.

use super::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const DESK: &str = include_str!("assets/desk.html");
const WALLBOARD: &str = include_str!("assets/wallboard.html");
const REPORTS: &str = include_str!("assets/reports.html");
const OPENAPI: &str = include_str!("openapi.json");

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "desk.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/desk.js"),
    ),
    (
        "reports.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/reports.js"),
    ),
    (
        "wallboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/wallboard.js"),
    ),
];

pub async fn desk() -> Html<&'static str> {
    Html(DESK)
}

pub async fn wallboard() -> Html<&'static str> {
    Html(WALLBOARD)
}

pub async fn reports() -> Html<&'static str> {
    Html(REPORTS)
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, ctype, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no asset '{file}'")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_is_json_and_lists_every_api_route() {
        let v: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/api/login",
            "/api/me",
            "/api/me/state",
            "/api/calls/{call}/transfer",
            "/api/interactions/{id}/disposition",
            "/api/wallboard",
            "/metrics",
            "/ws/desk",
        ] {
            assert!(paths.contains_key(p), "{p} missing from openapi.json");
        }
    }
}
