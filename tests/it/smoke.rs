//! The smallest end-to-end checks: a server starts, answers, and stops.

use crate::support::Kura;

#[test]
fn ping_set_get() {
    let k = Kura::start();
    let mut c = k.client();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
}
