//! Integration tests: real sockets against in-process kura servers and real Redis peers.
//!
//! One test binary (link time matters on 2 cores); modules by concern.

mod support;

mod blocking;
mod diff;
mod lists;
mod smoke;
