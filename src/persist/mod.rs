//! Persistence: the RDB format (DUMP/RESTORE payloads and files) and saving.

pub mod aof;
pub mod offload;
pub mod pace;
pub mod rdb;
pub mod save;

/// Removes a file that may already be gone (temp files, replaced AOF parts), logging only an
/// unexpected failure: nothing waits on it, and a leftover file is harmless but worth a line.
pub fn remove_leftover(path: &std::path::Path, what: &str) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove {what}");
        }
    }
}
