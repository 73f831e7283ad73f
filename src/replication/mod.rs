//! Replication (`shared/spec/redis.md` §2): the ordered write stream and its history
//! ([`backlog`]), the state both sides share ([`state`]), the master side serving replicas
//! ([`master`]) and the replica side following a master ([`replica`]).

pub mod backlog;
pub mod master;
pub mod replica;
pub mod state;

pub use backlog::WriteStream;
pub use state::Repl;
