//! The operations listener (`--metrics-addr`): `/metrics` (Prometheus text format), `/healthz`
//! (200 while the process serves), `/readyz` (200 once ready, 503 with the reason otherwise),
//! and the status page with its JSON API ([`super::status`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use super::state::OpsState;

/// The routes.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(super::status::routes::router())
        .with_state(state)
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    let r = s.registry.clone();
    // Walking the sessions locks each stream briefly and may stat the disk: not on a worker.
    match tokio::task::spawn_blocking(move || super::metrics::render(&r)).await {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("metrics unavailable: {e}\n"),
        ),
    }
}

async fn readyz(State(s): State<OpsState>) -> impl IntoResponse {
    let r = s.registry.clone();
    let listening = s.listening.load(Ordering::Acquire);
    let verdict = tokio::task::spawn_blocking(move || super::health::ready(&r, listening))
        .await
        .unwrap_or_else(|e| Err(format!("readiness check failed: {e}")));
    match verdict {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Serves the routes on `listener` until `shutdown` fires, under the operations listener's
/// limits ([`super::serve`]), with the status page's sampler.
pub async fn serve(listener: TcpListener, state: OpsState, shutdown: CancellationToken) {
    tokio::spawn(super::status::sampler::run(
        state.registry.clone(),
        shutdown.clone(),
    ));
    let gate = state.registry.gate.clone();
    super::serve::serve(listener, router(state), gate, shutdown).await;
}
