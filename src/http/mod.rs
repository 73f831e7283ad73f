//! The HTTP door: Prometheus metrics, backups, health (issue 6; DESIGN.md "Doors").
//!
//! One axum router on `[http] bind`:`port` (redis_exporter's 9121), behind tower's timeout
//! and concurrency-limit layers and an optional bearer token. Every answer is built from the
//! same facts as INFO ([`info::Info`]) or from the persistence snapshot and RDB writer
//! ([`backup`]); nothing here writes data, and `POST /bgsave` goes through the command path
//! like a client's BGSAVE.
//!
//! Errors are JSON `{"error": "..."}` with a fitting status, whatever produced them (a
//! handler, the timeout, an unknown path or method).

pub mod backup;
pub mod exposition;
pub mod health;
pub mod info;
pub mod page;
pub mod persistence;
pub mod redis_metrics;
pub mod scrape;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::mpsc;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tracing::{info, warn};

use crate::config::HttpConfig;
use crate::state::ServerState;

/// Why the HTTP door could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr} (http): {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The state every handler gets.
#[derive(Clone)]
pub struct Door {
    /// The server.
    pub srv: Arc<ServerState>,
    /// `[http] token`; empty: no auth.
    token: Arc<str>,
    /// Backups streaming now ([`backup::MAX_STREAMS`] at most).
    pub backups: Arc<tokio::sync::Semaphore>,
}

/// An error answer: a status and the JSON `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Binds the HTTP door and serves it until shutdown; `None` when `[http] bind` is empty.
/// Called before the data loads, so `/healthz` and `/readyz` answer during a long load.
pub async fn start(
    srv: Arc<ServerState>,
    cfg: HttpConfig,
    drain: mpsc::Sender<()>,
) -> Result<Option<SocketAddr>, HttpError> {
    let host = cfg.bind.trim();
    if host.is_empty() {
        return Ok(None);
    }
    let addr = crate::server::host_port(host, cfg.port);
    let listener = crate::server::listen(&addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let door = Door {
        srv: srv.clone(),
        token: Arc::from(cfg.token.as_str()),
        backups: Arc::new(tokio::sync::Semaphore::new(backup::MAX_STREAMS)),
    };
    let app = router(door, &cfg);
    let mut shutdown = srv.shutdown_tx.subscribe();
    tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            warn!(error = %e, "http door stopped");
        }
        drop(drain);
    });
    info!(addr = %local, "http door listening");
    Ok(Some(local))
}

/// Builds the routes and layers.
fn router(door: Door, cfg: &HttpConfig) -> Router {
    let timeout = Duration::from_secs(cfg.request_timeout.max(1));
    Router::new()
        .route("/", get(page::status_page))
        .route("/metrics", get(metrics))
        .route(
            "/bgsave",
            get(persistence::status).post(persistence::start_bgsave),
        )
        .route("/backup", get(backup::download))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/replication", get(health::replication))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(door.clone(), authorize))
        .layer(middleware::from_fn(json_errors))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .timeout(timeout)
                // Global: `Router::layer` wraps each route on its own, and a per-route
                // limit would not bound the door.
                .layer(GlobalConcurrencyLimitLayer::new(
                    cfg.max_concurrent_requests.max(1),
                )),
        )
        .with_state(door)
}

/// Runs `f`, which takes the engine lock, on the blocking pool: a handler waiting for the
/// lock (behind a SAVE, say) never holds a runtime worker that RESP and forward clients need,
/// and the request timeout can still answer.
pub async fn off_runtime<T: Send + 'static>(
    srv: &Arc<ServerState>,
    f: impl FnOnce(&Arc<ServerState>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let srv = srv.clone();
    tokio::task::spawn_blocking(move || f(&srv))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("handler failed: {e}"),
            )
        })
}

/// `GET /metrics`.
async fn metrics(State(door): State<Door>) -> Result<Response, ApiError> {
    let body = off_runtime(&door.srv, |srv| scrape::render(srv)).await?;
    let kind = HeaderValue::from_static(scrape::CONTENT_TYPE);
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// Unknown paths.
async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not found".into())
}

/// The timeout layer's error (and any other layer error) as a JSON answer.
async fn overloaded(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "request timed out (http.request_timeout)".into(),
        )
    } else {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

/// Paths open without the token: orchestrators probe them without credentials.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// `[http] token`: every other request needs `Authorization: Bearer <token>`.
async fn authorize(State(door): State<Door>, req: Request, next: Next) -> Response {
    if door.token.is_empty() || OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same(t.as_bytes(), door.token.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            )
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Gives axum's bodiless error answers (405 Method Not Allowed, …) the JSON error body.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let bare = !resp.headers().contains_key(header::CONTENT_TYPE);
    if (status.is_client_error() || status.is_server_error()) && bare {
        let text = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
        let mut fixed = ApiError(status, text).into_response();
        if let Some(allow) = resp.headers().get(header::ALLOW) {
            fixed.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return fixed;
    }
    resp
}
