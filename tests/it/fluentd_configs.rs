//! The shipped sender configs in `fluentd/` (STYLE.md rule 11, issue 3): they point at
//! kura's default ports, their limits fit kura's, the secure example's kura.toml snippet is
//! real kura configuration, and a kura started with it completes the handshake
//! (`shared/spec/fluent.md` §1.6) with exactly the values the fluentd file holds.
//!
//! The files are read line by line, as much as these checks need: `<section>` nesting and
//! `key value` directives for fluentd, `[SECTION]` and `Key Value` for Fluent Bit.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kura::forward::handshake::{self, ClientError};
use kura::forward::msgpack as mp;
use kura::Config;

use crate::support::Kura;

/// Reads `fluentd/<name>`.
pub(crate) fn file(name: &str) -> String {
    let path = format!("{}/fluentd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One directive: the sections it sits in (outermost first), its key and its value.
#[derive(Debug, Clone)]
pub(crate) struct Directive {
    pub(crate) sections: Vec<String>,
    /// Which section it sits in, counting sections in file order from 1 (0: top level), so
    /// two `<server>` sections' directives can be told apart.
    pub(crate) block: usize,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// Parses a fluentd config: `<name arg>` opens a section, `</name>` closes it, `#` starts a
/// comment line, anything else is `key value`. Panics on unbalanced sections.
pub(crate) fn fluentd_directives(text: &str) -> Vec<Directive> {
    let mut open: Vec<String> = Vec::new();
    let mut blocks: Vec<usize> = Vec::new();
    let mut opened = 0;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("</") {
            let name = name.trim_end_matches('>');
            blocks.pop();
            assert_eq!(
                open.pop()
                    .as_deref()
                    .map(|s| s.split(' ').next().unwrap_or("")),
                Some(name),
                "line {}: unbalanced </{name}>",
                n + 1
            );
        } else if let Some(section) = line.strip_prefix('<') {
            assert!(section.ends_with('>'), "line {}: {line}", n + 1);
            open.push(section.trim_end_matches('>').to_string());
            opened += 1;
            blocks.push(opened);
        } else {
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            out.push(Directive {
                sections: open.clone(),
                block: blocks.last().copied().unwrap_or(0),
                key: key.to_string(),
                value: value.trim().to_string(),
            });
        }
    }
    assert!(open.is_empty(), "unclosed sections {open:?}");
    out
}

/// Parses a Fluent Bit classic config: `[SECTION]` headers and `Key Value` lines.
fn fluent_bit_directives(text: &str) -> Vec<Directive> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        out.push(Directive {
            sections: vec![section.clone()],
            block: 0,
            key: key.to_string(),
            value: value.trim().to_string(),
        });
    }
    out
}

/// The value of the one directive `key` (case-insensitive, as Fluent Bit's keys are) whose
/// innermost section starts with `section`.
pub(crate) fn value<'a>(ds: &'a [Directive], section: &str, key: &str) -> &'a str {
    let found: Vec<&Directive> = ds
        .iter()
        .filter(|d| d.key.eq_ignore_ascii_case(key))
        .filter(|d| d.sections.last().is_some_and(|s| s.starts_with(section)))
        .collect();
    assert_eq!(found.len(), 1, "{section} {key}: {found:?}");
    &found[0].value
}

/// The `<server>` sections of a fluentd config, each as its `key → value` directives.
pub(crate) fn servers(ds: &[Directive]) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut out: Vec<(usize, std::collections::BTreeMap<String, String>)> = Vec::new();
    for d in ds
        .iter()
        .filter(|d| d.sections.last().is_some_and(|s| s == "server"))
    {
        if out.last().is_none_or(|(b, _)| *b != d.block) {
            out.push((d.block, Default::default()));
        }
        if let Some((_, m)) = out.last_mut() {
            m.insert(d.key.clone(), d.value.clone());
        }
    }
    out.into_iter().map(|(_, m)| m).collect()
}

/// fluentd's size syntax: `8m`, `256k`, `1g`, or bytes.
fn size(v: &str) -> u64 {
    let (num, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().unwrap() * mult
}

/// The file's opening comment block.
fn header(text: &str) -> Vec<&str> {
    text.lines().take_while(|l| l.starts_with('#')).collect()
}

/// Checks what every shipped file starts with: what it is for and which kura settings it
/// pairs with.
fn check_header(name: &str, text: &str) {
    let h = header(text);
    assert!(h.len() >= 3, "{name}: no header comment");
    assert!(h[0].to_lowercase().contains("kura"), "{name}: {}", h[0]);
    assert!(
        h.iter().any(|l| l.contains("Pairs with")),
        "{name}: the header names the kura settings it pairs with"
    );
}

const FORWARD_FILES: [&str; 3] = [
    "out_forward.conf",
    "out_forward_gzip.conf",
    "out_forward_secure.conf",
];

#[test]
fn out_forward_files_point_at_kuras_forward_door() {
    let defaults = Config::default();
    for name in FORWARD_FILES {
        let text = file(name);
        check_header(name, &text);
        let ds = fluentd_directives(&text);
        assert_eq!(value(&ds, "match", "@type"), "forward", "{name}");
        assert_eq!(
            value(&ds, "server", "host"),
            defaults.forward.bind,
            "{name}"
        );
        assert_eq!(
            value(&ds, "server", "port").parse::<u16>().unwrap(),
            defaults.forward.port,
            "{name}"
        );
        assert_eq!(
            value(&ds, "match", "require_ack_response"),
            "true",
            "{name}"
        );
        // A chunk above kura's chunk_size_limit would be refused and retried forever.
        let chunk = size(value(&ds, "buffer", "chunk_limit_size"));
        assert!(
            chunk <= defaults.forward.chunk_size_limit,
            "{name}: chunk_limit_size {chunk}"
        );
        assert_eq!(value(&ds, "buffer", "@type"), "file", "{name}");
        // Connections are closed by fluentd before kura's idle timeout closes them.
        let keepalive = value(&ds, "match", "keepalive_timeout");
        let secs: u64 = keepalive.trim_end_matches('s').parse().unwrap();
        assert!(secs < defaults.forward.idle_timeout, "{name}: {keepalive}");
    }
    let gz = fluentd_directives(&file("out_forward_gzip.conf"));
    assert_eq!(value(&gz, "match", "compress"), "gzip");
}

#[test]
fn fluent_bit_and_redis_plugin_files_point_at_kura() {
    let defaults = Config::default();
    let text = file("fluent-bit.conf");
    check_header("fluent-bit.conf", &text);
    let ds = fluent_bit_directives(&text);
    assert_eq!(value(&ds, "OUTPUT", "Name"), "forward");
    assert_eq!(value(&ds, "OUTPUT", "Host"), defaults.forward.bind);
    assert_eq!(
        value(&ds, "OUTPUT", "Port").parse::<u16>().unwrap(),
        defaults.forward.port
    );
    assert!(value(&ds, "OUTPUT", "Require_ack_response").eq_ignore_ascii_case("true"));
    // The gzip option is shown (commented out) where it belongs.
    assert!(text
        .lines()
        .any(|l| l.trim_start_matches([' ', '#']).starts_with("Compress")
            && l.trim_end().ends_with("gzip")));

    let text = file("out_redis.conf");
    check_header("out_redis.conf", &text);
    let ds = fluentd_directives(&text);
    assert_eq!(value(&ds, "match", "@type"), "redis");
    let host = value(&ds, "match", "host");
    assert!(
        defaults.bind.iter().any(|b| b == host),
        "{host} vs {:?}",
        defaults.bind
    );
    assert_eq!(
        value(&ds, "match", "port").parse::<u16>().unwrap(),
        defaults.port
    );
    // fluent-plugin-redis refuses to start without tag and time chunk keys.
    assert!(ds
        .iter()
        .any(|d| d.sections.last().is_some_and(|s| s == "buffer tag, time")));
}

/// The kura.toml snippet in the secure example's header: the indented comment lines.
fn secure_snippet(text: &str) -> String {
    header(text)
        .iter()
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Reads one complete msgpack value from the socket.
fn read_value(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut scanner = mp::Scanner::new();
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("read a handshake message");
        buf.push(b[0]);
        if let Ok(mp::Scan::Complete(n)) = scanner.scan(&buf) {
            assert_eq!(n, buf.len());
            return buf;
        }
    }
}

#[test]
fn secure_example_matches_its_kura_snippet_and_handshakes() {
    let text = file("out_forward_secure.conf");
    let ds = fluentd_directives(&text);
    let shared_key = value(&ds, "security", "shared_key").to_string();
    let self_hostname = value(&ds, "security", "self_hostname").to_string();
    // The snippet is kura configuration as it stands.
    let snippet = secure_snippet(&text);
    let mut cfg = Config::default();
    cfg.apply_toml(&snippet)
        .unwrap_or_else(|e| panic!("{e}\n{snippet}"));
    cfg.validate().unwrap();
    assert_eq!(cfg.forward.shared_key, shared_key);
    assert_eq!(cfg.forward.port, Config::default().forward.port);
    // fluentd refuses a PONG carrying its own name: the sender's name must not be kura's.
    assert_ne!(self_hostname, cfg.forward.self_hostname);
    assert_ne!(self_hostname, Config::default().forward.self_hostname);

    // End to end: kura with the snippet, fluentd's side of the handshake with the file's
    // values (a 32-hex-character salt, as fluentd's SecureRandom.hex(16)).
    let k = Kura::start_with(|c| {
        c.apply_toml(&snippet).unwrap();
        c.forward.port = 0;
    });
    let salt = b"6b7572612d666c75656e74642d73616c";
    let handshake_as = |client: &[u8]| {
        let mut s = TcpStream::connect(k.forward).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let helo_bytes = read_value(&mut s);
        let helo = handshake::parse_helo(&helo_bytes).unwrap();
        // fluentd always answers an auth salt with a (here empty) username and password.
        let ping = handshake::ping(&helo, client, salt, shared_key.as_bytes(), b"", b"");
        s.write_all(&ping).unwrap();
        let pong = read_value(&mut s);
        let verdict = handshake::check_pong(&pong, &helo, client, salt, shared_key.as_bytes())
            .map(|host| host.to_vec());
        (s, verdict)
    };
    let (mut s, verdict) = handshake_as(self_hostname.as_bytes());
    assert_eq!(verdict, Ok(cfg.forward.self_hostname.as_bytes().to_vec()));
    // The connection is in the transport phase: a Message-mode event with a chunk id is
    // stored and acked. ["secure", 1441588984, {"m": "x"}, {"chunk": "c1"}]
    s.write_all(b"\x94\xa6secure\xce\x55\xec\xe6\xf8\x81\xa1m\xa1x\x81\xa5chunk\xa2c1")
        .unwrap();
    let ack = read_value(&mut s);
    assert_eq!(ack, b"\x81\xa3ack\xa2c1".to_vec());
    // A sender named like kura would be refused by its own check.
    let (_, verdict) = handshake_as(cfg.forward.self_hostname.as_bytes());
    assert_eq!(verdict, Err(ClientError::SameHostname));
}
