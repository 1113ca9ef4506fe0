//! The status routes of the operations listener: the pages, their two static assets, and the
//! JSON API. Documents are built off the async workers (they stat the output folder).

use super::{page, read, session_page};
use crate::ops::state::OpsState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the pages may load: only their own script and stylesheet, and the API.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The status routes (merged into the operations router).
pub fn router() -> Router<OpsState> {
    Router::new()
        .route("/", get(index))
        .route("/sessions/{id}", get(session_page))
        .route(
            "/static/status.css",
            get(|| async { asset(page::CSS, "text/css") }),
        )
        .route(
            "/static/status.js",
            get(|| async { asset(page::JS, "text/javascript") }),
        )
        .route(
            "/static/favicon.svg",
            get(|| async { asset(page::ICON, "image/svg+xml") }),
        )
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/sessions", get(api_sessions))
        .route("/api/v1/sessions/{id}", get(api_session))
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (code, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    respond(
        StatusCode::OK,
        match content_type {
            "text/css" => "text/css; charset=utf-8",
            "image/svg+xml" => "image/svg+xml",
            _ => "text/javascript; charset=utf-8",
        },
        body.to_owned(),
    )
}

fn json<T: serde::Serialize>(doc: &T) -> Response {
    match serde_json::to_string_pretty(doc) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => unavailable(&e.to_string()),
    }
}

fn unavailable(why: &str) -> Response {
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        format!("status unavailable: {why}\n"),
    )
}

fn not_found(id: &str) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        format!("no session {}\n", id.escape_debug()),
    )
}

/// Runs `f` on the blocking pool (the documents stat the disk and take short locks).
async fn off_worker<T: Send + 'static>(
    s: &OpsState,
    f: impl FnOnce(&OpsState) -> T + Send + 'static,
) -> Result<T, String> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| e.to_string())
}

async fn index(State(s): State<OpsState>) -> Response {
    match off_worker(&s, |s| {
        let status = read::status(&s.registry, s.ports);
        let sessions = read::sessions(&s.registry);
        page::index(&status, &sessions)
    })
    .await
    {
        Ok(html) => respond(StatusCode::OK, "text/html; charset=utf-8", html),
        Err(e) => unavailable(&e),
    }
}

async fn session_page(State(s): State<OpsState>, Path(id): Path<String>) -> Response {
    let Ok(n) = id.parse::<u64>() else {
        return not_found(&id);
    };
    match off_worker(&s, move |s| {
        read::session(&s.registry, n).map(|d| session_page::session(&d))
    })
    .await
    {
        Ok(Some(html)) => respond(StatusCode::OK, "text/html; charset=utf-8", html),
        Ok(None) => not_found(&id),
        Err(e) => unavailable(&e),
    }
}

async fn api_status(State(s): State<OpsState>) -> Response {
    match off_worker(&s, |s| read::status(&s.registry, s.ports)).await {
        Ok(doc) => json(&doc),
        Err(e) => unavailable(&e),
    }
}

async fn api_sessions(State(s): State<OpsState>) -> Response {
    match off_worker(&s, |s| read::sessions(&s.registry)).await {
        Ok(doc) => json(&doc),
        Err(e) => unavailable(&e),
    }
}

async fn api_session(State(s): State<OpsState>, Path(id): Path<String>) -> Response {
    let Ok(n) = id.parse::<u64>() else {
        return not_found(&id);
    };
    match off_worker(&s, move |s| read::session(&s.registry, n)).await {
        Ok(Some(doc)) => json(&doc),
        Ok(None) => not_found(&id),
        Err(e) => unavailable(&e),
    }
}
