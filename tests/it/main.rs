//! Integration tests: real sockets against in-process kura servers and real Redis peers.
//!
//! One test binary (link time matters on 2 cores); modules by concern.

mod support;

mod blocking;
mod clients;
mod diff;
mod dump;
mod keys;
mod lifecycle;
mod lists;
mod protocol;
mod pubsub;
mod server;
mod smoke;
