//! MONITOR: every executed command, streamed to monitoring clients (Redis 7.0
//! `replicationFeedMonitors`).
//!
//! Redis 7.0 feeds monitors from `call()` after the command ran, so a line shows the database
//! selected *after* the command (`SELECT 1` shows `[1 …]`), commands refused before running
//! (unknown, arity, NOAUTH, pub/sub context) are not shown, queued commands are shown when
//! EXEC runs them (before `exec` itself), a blocking command once when it blocks, and
//! `admin`/`skip_monitor` commands (MONITOR, CONFIG, CLIENT, DEBUG…) never. AUTH and
//! HELLO … AUTH arguments are replaced by `(redacted)`.
//!
//! A line is `+<sec>.<usec> [<db> <ip:port>] "arg" "arg"…\r\n` with each argument quoted by
//! `sdscatrepr`; it is a status reply in RESP2 and RESP3 alike.

use std::borrow::Cow;

use bytes::Bytes;

use super::exec::Ctx;
use super::reply::{CmdError, CmdResult, Reply};
use super::session::Session;
use super::table::flags::*;
use super::table::CommandSpec;
use super::Origin;
use crate::command;
use crate::resp::decode::parse_i64;
use crate::state::ServerState;

/// MONITOR command (`monitor`: admin, noscript, loading, stale).
pub static COMMANDS: &[CommandSpec] = &[command!(
    "monitor",
    1,
    ADMIN | NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    "server",
    monitor
)];

fn monitor(ctx: &mut Ctx<'_>, _argv: &[Bytes]) -> CmdResult {
    // Inside EXEC Redis sets CLIENT_DENY_BLOCKING: a client that expects one reply per
    // command cannot become a monitor.
    if !ctx.may_block {
        return Err(CmdError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    // Already a monitor: Redis returns without any reply (`if (c->flags & CLIENT_SLAVE)
    // return;`).
    if ctx.sess.monitor {
        return Ok(Reply::NoReply);
    }
    let Some(tx) = ctx.sess.push_tx.clone() else {
        return Ok(Reply::Ok);
    };
    if let Ok(mut m) = ctx.srv.monitors.lock() {
        m.insert(ctx.sess.id, tx);
        ctx.srv
            .monitor_count
            .store(m.len(), std::sync::atomic::Ordering::Relaxed);
    }
    ctx.sess.monitor = true;
    if let Some(info) = &ctx.sess.info {
        info.set_flag('O', true);
    }
    Ok(Reply::Ok)
}

/// Ends MONITOR mode for the session (RESET, disconnect).
pub fn stop(srv: &ServerState, sess: &mut Session) {
    if !sess.monitor {
        return;
    }
    if let Ok(mut m) = srv.monitors.lock() {
        m.remove(&sess.id);
        srv.monitor_count
            .store(m.len(), std::sync::atomic::Ordering::Relaxed);
    }
    sess.monitor = false;
    if let Some(info) = &sess.info {
        info.set_flag('O', false);
    }
}

/// Sends a command to every MONITOR client; called after every executed command.
pub fn feed_monitors(srv: &ServerState, sess: &Session, spec: &CommandSpec, argv: &[Bytes]) {
    // Administrative commands are considered too dangerous to be shown; nothing is shown
    // while loading (AOF replay).
    if !shown(spec, argv) || sess.origin == Origin::AofLoad {
        return;
    }
    let Ok(monitors) = srv.monitors.lock() else {
        return;
    };
    if monitors.is_empty() {
        return;
    }
    let line = format_line(
        srv.clock.now_us(),
        sess.db,
        &peer(srv, sess),
        &redact(spec, argv),
    );
    for tx in monitors.values() {
        // A closed receiver is a monitor going away; its cleanup unregisters it.
        tx.send(Reply::Simple(line.clone())).ok();
    }
}

/// Subcommands flagged `admin` in Redis 7.0 (`COMMAND INFO`), whose containers also have
/// subcommands that are not: Redis decides per subcommand.
const ADMIN_SUBCOMMANDS: &[&str] = &[
    "acl|deluser",
    "acl|dryrun",
    "acl|getuser",
    "acl|list",
    "acl|load",
    "acl|log",
    "acl|save",
    "acl|setuser",
    "acl|users",
    "client|kill",
    "client|list",
    "client|no-evict",
    "client|pause",
    "client|unblock",
    "client|unpause",
    "config|get",
    "config|resetstat",
    "config|rewrite",
    "config|set",
    "latency|doctor",
    "latency|graph",
    "latency|histogram",
    "latency|history",
    "latency|latest",
    "latency|reset",
    "module|list",
    "module|load",
    "module|loadex",
    "module|unload",
    "slowlog|get",
    "slowlog|len",
    "slowlog|reset",
];

/// Reports whether Redis 7.0 shows the command to monitors: not `admin`/`skip_monitor`
/// (decided per subcommand for containers: `CLIENT SETNAME` is shown, `CLIENT LIST` is not),
/// and not an unknown subcommand, which Redis refuses before running it.
fn shown(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    if spec.subcommands.is_empty() {
        return !spec.has(SKIP_MONITOR | ADMIN);
    }
    let Some(sub) = argv.get(1) else {
        return false;
    };
    let full = format!(
        "{}|{}",
        spec.name,
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    );
    if spec.name == "pubsub" && super::pubsub::refused_before_running(argv) {
        return false;
    }
    spec.subcommands.contains(&full.as_str()) && !ADMIN_SUBCOMMANDS.contains(&full.as_str())
}

/// Returns the `ip:port` (or a name for internal doors) shown between the brackets.
fn peer(srv: &ServerState, sess: &Session) -> String {
    if let Some(info) = &sess.info {
        return info.addr.to_string();
    }
    match sess.origin {
        // Redis shows its master link's peer address.
        Origin::Master => srv
            .with_config(|c| c.replicaof.clone())
            .map_or_else(|| "master".into(), |(h, p)| format!("{h}:{p}")),
        Origin::Http => "http".into(),
        // Not a socket client, like Redis's `[0 lua]`.
        _ => "forward".into(),
    }
}

/// Builds the line without the leading `+` and the CRLF (the encoder adds them).
fn format_line(now_us: i64, db: usize, peer: &str, argv: &[Bytes]) -> String {
    let mut line = String::with_capacity(64 + argv.iter().map(|a| a.len() + 3).sum::<usize>());
    // `%ld.%06ld` of gettimeofday.
    line.push_str(&format!(
        "{}.{:06} [{} {}]",
        now_us.div_euclid(1_000_000),
        now_us.rem_euclid(1_000_000),
        db,
        peer
    ));
    for a in argv {
        line.push(' ');
        repr(&mut line, a);
    }
    line
}

/// Appends `arg` quoted as Redis's `sdscatrepr` does.
fn repr(out: &mut String, arg: &[u8]) {
    out.push('"');
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            // isprint() in the C locale.
            0x20..=0x7e => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\x");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out.push('"');
}

/// Replaces secrets as Redis 7.0's `redactClientCommandArgument` calls do: AUTH's
/// arguments when it has one or two, HELLO's `AUTH user pass` pairs met while parsing
/// (parsing stops at a bad protocol version or an unknown option, and so does redaction).
fn redact<'a>(spec: &CommandSpec, argv: &'a [Bytes]) -> Cow<'a, [Bytes]> {
    let hidden = || Bytes::from_static(b"(redacted)");
    match spec.name {
        "auth" if argv.len() <= 3 => {
            let mut v = argv.to_vec();
            for a in v.iter_mut().skip(1) {
                *a = hidden();
            }
            Cow::Owned(v)
        }
        "hello" if argv.len() > 2 => {
            if !matches!(parse_i64(&argv[1]), Some(2 | 3)) {
                return Cow::Borrowed(argv);
            }
            let mut v = argv.to_vec();
            let mut j = 2;
            while j < v.len() {
                let more = v.len() - 1 - j;
                if v[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
                    v[j + 1] = hidden();
                    v[j + 2] = hidden();
                    j += 3;
                } else if v[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
            Cow::Owned(v)
        }
        _ => Cow::Borrowed(argv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&[u8]]) -> Vec<Bytes> {
        a.iter().map(|x| Bytes::copy_from_slice(x)).collect()
    }

    #[test]
    fn line_format_and_escaping() {
        let argv = args(&[b"set", b"k", b"v\x01\"\\\n\r\t\x07\x08 \xc3\xbf"]);
        let line = format_line(1_339_518_083_107_412, 0, "127.0.0.1:60866", &argv);
        assert_eq!(
            line,
            r#"1339518083.107412 [0 127.0.0.1:60866] "set" "k" "v\x01\"\\\n\r\t\a\b \xc3\xbf""#
        );
        let line = format_line(5_000_001, 3, "[::1]:5", &args(&[b"PING"]));
        assert_eq!(line, r#"5.000001 [3 [::1]:5] "PING""#);
    }

    #[test]
    fn admin_is_decided_per_subcommand() {
        let pubsub = super::super::table::lookup(b"pubsub").unwrap();
        let monitor = super::super::table::lookup(b"monitor").unwrap();
        let get = super::super::table::lookup(b"get").unwrap();
        assert!(shown(pubsub, &args(&[b"PUBSUB", b"NUMPAT"])));
        assert!(!shown(pubsub, &args(&[b"PUBSUB", b"nosuch"])));
        assert!(!shown(pubsub, &args(&[b"PUBSUB", b"NUMPAT", b"x"])));
        assert!(!shown(monitor, &args(&[b"MONITOR"])));
        assert!(shown(get, &args(&[b"GET", b"k"])));
    }

    #[test]
    fn redaction_follows_redis() {
        let auth = super::super::table::lookup(b"auth").unwrap();
        let hello = super::super::table::lookup(b"hello").unwrap();
        let r = |spec, a: &[&[u8]]| -> Vec<Bytes> { redact(spec, &args(a)).into_owned() };
        assert_eq!(r(auth, &[b"auth", b"x"]), args(&[b"auth", b"(redacted)"]));
        assert_eq!(
            r(auth, &[b"auth", b"u", b"p"]),
            args(&[b"auth", b"(redacted)", b"(redacted)"])
        );
        assert_eq!(
            r(auth, &[b"auth", b"a", b"b", b"c"]),
            args(&[b"auth", b"a", b"b", b"c"])
        );
        assert_eq!(
            r(
                hello,
                &[b"hello", b"2", b"setname", b"n", b"AUTH", b"u", b"p", b"x"]
            ),
            args(&[
                b"hello",
                b"2",
                b"setname",
                b"n",
                b"AUTH",
                b"(redacted)",
                b"(redacted)",
                b"x"
            ])
        );
        assert_eq!(
            r(hello, &[b"hello", b"x", b"auth", b"u", b"p"]),
            args(&[b"hello", b"x", b"auth", b"u", b"p"])
        );
        assert_eq!(
            r(hello, &[b"hello", b"4", b"auth", b"u", b"p"]),
            args(&[b"hello", b"4", b"auth", b"u", b"p"])
        );
        assert_eq!(
            r(hello, &[b"hello", b"3", b"auth", b"u"]),
            args(&[b"hello", b"3", b"auth", b"u"])
        );
    }
}
