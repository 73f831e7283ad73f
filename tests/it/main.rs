//! Integration tests: real sockets against in-process kura servers and real Redis peers.
//!
//! One test binary (link time matters on 2 cores); modules by concern.

mod support;

mod clients;
mod diff;
mod dump;
mod lifecycle;
mod protocol;
mod pubsub;
mod keys;
mod blocking;
mod diff;
mod lists;
mod smoke;
