//! Persistence: the RDB format (DUMP/RESTORE payloads and files) and saving.

pub mod aof;
pub mod offload;
pub mod pace;
pub mod rdb;
pub mod save;
