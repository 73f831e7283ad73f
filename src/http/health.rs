//! `GET /healthz`, `GET /readyz` and `GET /replication`: what orchestrators and failover
//! scripts ask.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::info::Info;
use super::{off_runtime, ApiError, Door};
use crate::replication::state::LinkState;
use crate::state::ServerState;

/// `GET /healthz`: the process answers (liveness; open without the token).
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Why kura is not ready, or `None` when it is: the data is loaded, and on a replica the
/// link to the master is up and not in a full sync.
pub fn not_ready(srv: &ServerState) -> Option<String> {
    if srv.loading.load(Ordering::Relaxed) {
        return Some("loading the dataset in memory".into());
    }
    let link = srv.repl.link()?;
    match link.state {
        LinkState::Connected => None,
        LinkState::Sync => Some(format!(
            "full synchronization with master {}:{} in progress",
            link.host, link.port
        )),
        other => Some(format!(
            "link with master {}:{} is down ({})",
            link.host,
            link.port,
            other.role_word()
        )),
    }
}

/// `GET /readyz`: 200 when ready, 503 with the reason otherwise (open without the token).
pub async fn readyz(State(door): State<Door>) -> Response {
    match not_ready(&door.srv) {
        None => Json(json!({ "ready": true })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response(),
    }
}

/// The JSON of `GET /replication` (README "HTTP door" documents it): INFO replication's
/// facts, typed.
#[derive(Debug, Serialize)]
pub struct Replication {
    /// `"master"` or `"replica"` (INFO says `slave`).
    pub role: String,
    /// `master_replid`.
    pub replid: String,
    /// `master_replid2`.
    pub replid2: String,
    /// `master_repl_offset`: bytes of write stream so far.
    pub offset: i64,
    /// `second_repl_offset`.
    pub second_offset: i64,
    /// The backlog (history for partial resyncs).
    pub backlog: Backlog,
    /// On a replica: its master link; `null` on a master.
    pub master: Option<MasterSide>,
    /// Replicas attached to this server.
    pub replicas: Vec<Replica>,
}

/// `repl_backlog_*`.
#[derive(Debug, Serialize)]
pub struct Backlog {
    /// `repl_backlog_active`.
    pub active: bool,
    /// `repl_backlog_size`.
    pub size: i64,
    /// `repl_backlog_first_byte_offset`.
    pub first_byte_offset: i64,
    /// `repl_backlog_histlen`.
    pub histlen: i64,
}

/// A replica's link to its master.
#[derive(Debug, Serialize)]
pub struct MasterSide {
    /// `master_host`.
    pub host: String,
    /// `master_port`.
    pub port: i64,
    /// `master_link_status == up`.
    pub link_up: bool,
    /// `master_last_io_seconds_ago` (-1 before any).
    pub last_io_seconds_ago: i64,
    /// `master_sync_in_progress`.
    pub sync_in_progress: bool,
    /// `slave_repl_offset`: the master's stream applied here.
    pub offset: i64,
    /// `slave_read_only`.
    pub read_only: bool,
}

/// An attached replica (`slaveN:`).
#[derive(Debug, Serialize)]
pub struct Replica {
    /// `ip=`.
    pub ip: String,
    /// `port=` (its listening port).
    pub port: i64,
    /// `state=`: `wait_bgsave`, `send_bulk` or `online`.
    pub state: String,
    /// `offset=`: what it acknowledged.
    pub offset: i64,
    /// `lag=`: seconds since its last acknowledgement.
    pub lag_seconds: Option<i64>,
    /// Bytes of stream it has not acknowledged yet (`offset` minus its `offset`).
    pub lag_bytes: i64,
}

impl Replication {
    /// Reads INFO replication.
    pub fn read(srv: &ServerState) -> Replication {
        Replication::from_info(&Info::read_sections(srv, &["replication"]))
    }

    /// Takes the facts from an INFO read that holds the replication section.
    pub fn from_info(info: &Info) -> Replication {
        let offset = info.int("master_repl_offset");
        let master = (info.get("role") == Some("slave")).then(|| MasterSide {
            host: info.get("master_host").unwrap_or("").to_string(),
            port: info.int("master_port"),
            link_up: info.get("master_link_status") == Some("up"),
            last_io_seconds_ago: info.int("master_last_io_seconds_ago"),
            sync_in_progress: info.int("master_sync_in_progress") == 1,
            offset: info.int("slave_repl_offset"),
            read_only: info.int("slave_read_only") == 1,
        });
        Replication {
            role: if master.is_some() {
                "replica"
            } else {
                "master"
            }
            .into(),
            replid: info.get("master_replid").unwrap_or("").to_string(),
            replid2: info.get("master_replid2").unwrap_or("").to_string(),
            offset,
            second_offset: info.int("second_repl_offset"),
            backlog: Backlog {
                active: info.int("repl_backlog_active") == 1,
                size: info.int("repl_backlog_size"),
                first_byte_offset: info.int("repl_backlog_first_byte_offset"),
                histlen: info.int("repl_backlog_histlen"),
            },
            master,
            replicas: info
                .replicas()
                .into_iter()
                .map(|r| Replica {
                    port: r.port.parse().unwrap_or(0),
                    lag_bytes: (offset - r.offset).max(0),
                    ip: r.ip,
                    state: r.state,
                    offset: r.offset,
                    lag_seconds: r.lag,
                })
                .collect(),
        }
    }
}

/// `GET /replication`.
pub async fn replication(State(door): State<Door>) -> Result<Json<Replication>, ApiError> {
    off_runtime(&door.srv, |srv| Replication::read(srv))
        .await
        .map(Json)
}
