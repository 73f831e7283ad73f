//! The Fluent Forward door (protocol v1 with v1.5's additions, `shared/spec/fluent.md`):
//! framing, modes, handshake, acks and heartbeats, and the mapping of chunks to commands
//! that run through the one write path.

pub mod handshake;
pub mod msgpack;
pub mod pattern;
pub mod route;
pub mod strftime;
pub mod template;
