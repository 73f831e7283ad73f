//! Persistence: the RDB format (DUMP/RESTORE payloads now; files with the persistence issue).

pub mod rdb;
