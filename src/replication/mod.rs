//! Replication: the ordered write stream now; master and replica sides come with their issue.

pub mod backlog;

pub use backlog::WriteStream;
