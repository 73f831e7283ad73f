//! Integration tests: real sockets against in-process servers.
