//! Integration tests: real sockets against in-process kura servers and real Redis peers.
//!
//! One test binary (link time matters on 2 cores); modules by concern.

// Tests drop results on purpose when tearing down peers (kill, wait, shutdown writes).
#![allow(clippy::let_underscore_must_use)]

mod support;

mod aof;
mod aof_load;
mod blocking;
mod clients;
mod crash;
mod deploy;
mod diff;
mod dump;
mod exporter;
mod faults;
mod fluentd_configs;
mod forward;
mod glob;
mod hashmem;
mod http;
mod keys;
mod lifecycle;
mod lists;
mod master;
mod memory;
mod persist;
mod prometheus;
mod protocol;
mod pubsub;
mod rdb_load;
mod replica;
mod sd_notify;
mod server;
mod smoke;
mod twemproxy;
mod wait;
mod yaml;
