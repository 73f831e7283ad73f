//! `GET /bgsave` and `POST /bgsave`: the backup trigger and its status, the facts of INFO
//! persistence as JSON.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;

use super::info::Info;
use super::{off_runtime, ApiError, Door};
use crate::cmd::reply::Reply;
use crate::cmd::session::Session;
use crate::cmd::Origin;
use crate::state::ServerState;

/// The JSON of `GET /bgsave` (README "HTTP door" documents it).
#[derive(Debug, Serialize)]
pub struct BgsaveStatus {
    /// A background save is running (`rdb_bgsave_in_progress`).
    pub in_progress: bool,
    /// Unix seconds of the last successful save (`rdb_last_save_time`, as LASTSAVE).
    pub last_save_unix: i64,
    /// `"ok"` or `"err"` (`rdb_last_bgsave_status`).
    pub last_status: String,
    /// Seconds the last background save took, -1 before any (`rdb_last_bgsave_time_sec`).
    pub last_duration_seconds: i64,
    /// Writes since the last save (`rdb_changes_since_last_save`).
    pub changes_since_last_save: i64,
    /// The dump file (`dir`/`dbfilename`).
    pub file: String,
    /// Bytes of the last dump written, 0 before any.
    pub bytes: u64,
}

impl BgsaveStatus {
    /// Reads the status now.
    pub fn read(srv: &ServerState) -> BgsaveStatus {
        let info = Info::read_sections(srv, &["persistence"]);
        BgsaveStatus {
            in_progress: info.int("rdb_bgsave_in_progress") == 1,
            last_save_unix: info.int("rdb_last_save_time"),
            last_status: info.get("rdb_last_bgsave_status").unwrap_or("").to_string(),
            last_duration_seconds: info.int("rdb_last_bgsave_time_sec"),
            changes_since_last_save: info.int("rdb_changes_since_last_save"),
            file: crate::persist::save::dump_path(srv).display().to_string(),
            bytes: srv.save.last_bytes.load(Ordering::Relaxed),
        }
    }
}

/// `GET /bgsave`.
pub async fn status(State(door): State<Door>) -> Result<Json<BgsaveStatus>, ApiError> {
    off_runtime(&door.srv, |srv| BgsaveStatus::read(srv))
        .await
        .map(Json)
}

/// `POST /bgsave`: runs BGSAVE through the command path, as a client would. 202 with the
/// status once started (or scheduled), 409 while a save or an AOF rewrite runs, 503 while
/// the data loads.
pub async fn start_bgsave(State(door): State<Door>) -> Result<Response, ApiError> {
    let (reply, status) = off_runtime(&door.srv, |srv| {
        let mut sess = Session::internal(Origin::Http, 0);
        let argv = vec![Bytes::from_static(b"BGSAVE")];
        let reply = crate::cmd::exec::execute(srv, &mut sess, argv).reply;
        (reply, BgsaveStatus::read(srv))
    })
    .await?;
    Ok(match reply {
        Reply::Simple(_) => (StatusCode::ACCEPTED, Json(status)).into_response(),
        Reply::Error(e) => {
            let text = String::from_utf8_lossy(&e).into_owned();
            let (code, message) = text.split_once(' ').unwrap_or(("ERR", text.as_str()));
            let status = match code {
                "LOADING" => StatusCode::SERVICE_UNAVAILABLE,
                _ if message.contains("in progress") || message.contains("child process") => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            ApiError(status, message.to_string()).into_response()
        }
        other => ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected BGSAVE reply {other:?}"),
        )
        .into_response(),
    })
}
