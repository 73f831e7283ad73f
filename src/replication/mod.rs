//! Replication (`shared/spec/redis.md` §2): the ordered write stream and its history
//! ([`backlog`]), the state both sides share ([`state`]), the master side serving replicas
//! ([`master`]), the replica side following a master ([`replica`]) and waiting for replicas'
//! acks (WAIT, `min-replicas-to-write`: [`wait`]).

pub mod backlog;
pub mod master;
pub mod replica;
pub mod state;
pub mod wait;

pub use backlog::WriteStream;
pub use state::Repl;
