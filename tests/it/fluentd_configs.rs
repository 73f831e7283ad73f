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

/// The header's kura.toml snippet and the configuration it makes (parsed and validated).
fn snippet_config(text: &str) -> (String, Config) {
    let snippet = secure_snippet(text);
    let mut cfg = Config::default();
    cfg.apply_toml(&snippet)
        .unwrap_or_else(|e| panic!("{e}\n{snippet}"));
    cfg.validate().unwrap();
    (snippet, cfg)
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
    let (snippet, cfg) = snippet_config(&text);
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

// ---- every file, and the files added for issue 6 ----

/// Every file in `fluentd/` and the test that covers it: a new file needs a test here.
const ALL_FILES: [&str; 9] = [
    "compose.conf", // tests/it/deploy.rs, with docker-compose.yml
    "fluent-bit.conf",
    "fluent-bit.yaml",
    "out_forward.conf",
    "out_forward_failover.conf",
    "out_forward_gzip.conf",
    "out_forward_secure.conf",
    "out_redis.conf",
    "out_redis_store.conf",
];

#[test]
fn every_shipped_file_is_known_and_has_a_header() {
    let dir = format!("{}/fluentd", env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, ALL_FILES, "fluentd/ holds a file no test covers");
    for name in ALL_FILES {
        check_header(name, &file(name));
    }
}

/// fluentd's gzip: one member per buffer append, members back to back.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

/// A forward connection that did fluentd's side of the handshake with `shared_key`.
fn handshaken(addr: std::net::SocketAddr, self_hostname: &str, shared_key: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let helo_bytes = read_value(&mut s);
    let helo = handshake::parse_helo(&helo_bytes).unwrap();
    let salt = b"6b7572612d666c75656e74642d73616c";
    let ping = handshake::ping(
        &helo,
        self_hostname.as_bytes(),
        salt,
        shared_key.as_bytes(),
        b"",
        b"",
    );
    s.write_all(&ping).unwrap();
    let pong = read_value(&mut s);
    handshake::check_pong(
        &pong,
        &helo,
        self_hostname.as_bytes(),
        salt,
        shared_key.as_bytes(),
    )
    .unwrap();
    s
}

/// A chunk as out_forward with `compress gzip` sends it: records `{"n": "<i>"}` for `ns`,
/// two gzip members, and the chunk option for the ack.
fn gzip_chunk(tag: &str, ns: std::ops::Range<u32>, id: &[u8]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = ns
        .clone()
        .map(|n| crate::forward::entry(1_441_588_984, n, &[("n", &n.to_string())]))
        .collect();
    let half = entries.len() / 2;
    let members = [
        gzip(&entries[..half].concat()),
        gzip(&entries[half..].concat()),
    ]
    .concat();
    crate::forward::fluentd_chunk(tag, &members, entries.len() as u64, "gzip", Some(id))
}

/// The `n` field of every record in list `key`.
fn stored(k: &Kura, key: &str) -> Vec<String> {
    crate::support::bulks(crate::support::call(
        &mut k.client(),
        &[b"LRANGE", key.as_bytes(), b"0", b"-1"],
    ))
    .iter()
    .map(|b| {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        v["n"].as_str().unwrap().to_string()
    })
    .collect()
}

#[test]
fn failover_example_acks_gzip_on_the_primary_and_the_promoted_standby() {
    let defaults = Config::default();
    let text = file("out_forward_failover.conf");
    let ds = fluentd_directives(&text);
    assert_eq!(value(&ds, "match", "@type"), "forward");
    assert_eq!(value(&ds, "match", "require_ack_response"), "true");
    assert_eq!(value(&ds, "match", "compress"), "gzip");
    let chunk = size(value(&ds, "buffer", "chunk_limit_size"));
    assert!(chunk <= defaults.forward.chunk_size_limit);
    let keepalive: u64 = value(&ds, "match", "keepalive_timeout")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(keepalive < defaults.forward.idle_timeout);
    let shared_key = value(&ds, "security", "shared_key").to_string();
    let self_hostname = value(&ds, "security", "self_hostname").to_string();

    // A primary on kura's forward door, then one standby on the replica's same-host port.
    let servers = servers(&ds);
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0]["host"], defaults.forward.bind);
    assert_eq!(servers[0]["port"], defaults.forward.port.to_string());
    assert!(!servers[0].contains_key("standby"));
    assert_eq!(servers[1]["standby"], "true");
    let replica_toml = std::fs::read_to_string(format!(
        "{}/deploy/kura-replica.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let same_host = replica_toml
        .split_once("# ---- BEGIN SAME HOST ----")
        .and_then(|(_, r)| r.split_once("# ---- END SAME HOST ----"))
        .unwrap()
        .0;
    let same_host: String = same_host
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut replica_cfg = Config::default();
    replica_cfg.apply_toml(&same_host).unwrap();
    assert_eq!(servers[1]["port"], replica_cfg.forward.port.to_string());

    // The header's kura.toml snippet is kura configuration, for both kuras.
    let (snippet, cfg) = snippet_config(&text);
    assert_eq!(cfg.forward.shared_key, shared_key);
    assert_ne!(cfg.forward.self_hostname, self_hostname);

    // Replay: the primary stores and acks a gzip chunk after the handshake.
    let primary = Kura::start_with(|c| {
        c.apply_toml(&snippet).unwrap();
        c.forward.port = 0;
        c.repl_diskless_sync_delay = 0;
    });
    let primary_port = primary.addr.port();
    let standby = Kura::start_with(|c| {
        c.apply_toml(&snippet).unwrap();
        c.forward.port = 0;
        c.replicaof = Some(("127.0.0.1".into(), primary_port));
    });
    let mut s = handshaken(primary.forward, &self_hostname, &shared_key);
    s.write_all(&gzip_chunk("app", 0..10, b"c1")).unwrap();
    assert_eq!(read_value(&mut s), crate::forward::ack_of(b"c1"));
    let first: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(stored(&primary, "app"), first);

    // The standby, still a replica, holds the records but refuses the chunk: it closes
    // the connection before any HELO, so nothing is acked and fluentd keeps the chunk.
    crate::replica::wait_synced(&mut standby.client(), &mut primary.client());
    assert_eq!(stored(&standby, "app"), first);
    let mut s = TcpStream::connect(standby.forward).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(&gzip_chunk("app", 10..20, b"c2"));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a replica answered: {rest:?}");
    assert_eq!(stored(&standby, "app"), first);

    // Promoted, it acks: fluentd's retry of the same chunk lands after the replicated data.
    assert_eq!(standby.client().cmd(&["REPLICAOF", "NO", "ONE"]), "+OK\r\n");
    let mut s = handshaken(standby.forward, &self_hostname, &shared_key);
    s.write_all(&gzip_chunk("app", 10..20, b"c2")).unwrap();
    assert_eq!(read_value(&mut s), crate::forward::ack_of(b"c2"));
    let all: Vec<String> = (0..20).map(|n| n.to_string()).collect();
    assert_eq!(stored(&standby, "app"), all);
}

#[test]
fn redis_store_list_mode_replays_as_rpush_and_expire() {
    let defaults = Config::default();
    let text = file("out_redis_store.conf");
    let ds = fluentd_directives(&text);
    let v = |key| value(&ds, "match", key);
    assert_eq!(v("@type"), "redis_store");
    assert_eq!(v("store_type"), "list");
    assert_eq!(v("order"), "asc", "RPUSH, oldest first");
    assert_eq!(v("format_type"), "json");
    assert!(defaults.bind.iter().any(|b| b == v("host")));
    assert_eq!(v("port").parse::<u16>().unwrap(), defaults.port);
    assert_eq!(v("db").parse::<usize>().unwrap(), 0);
    // value_length trims with EVAL, which kura does not run: it must stay unset.
    assert!(
        !ds.iter().any(|d| d.key == "value_length"),
        "value_length set"
    );
    let prefix = v("key_prefix").to_string();
    let key_path = v("key_path").to_string();
    let expire: i64 = v("key_expire").parse().unwrap();
    assert!(expire > 0);

    // Replay what the plugin sends for a chunk: per record, RPUSH <prefix><record[key_path]>
    // <record as JSON> and EXPIRE <key> <key_expire>, pipelined without MULTI, through a
    // real client library.
    let k = Kura::start();
    let client = redis::Client::open(format!("redis://{}/", k.addr)).unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    let records: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            let service = if i % 2 == 0 { "web" } else { "db" };
            serde_json::json!({ &key_path: service, "msg": format!("m{i}") })
        })
        .collect();
    let mut pipe = redis::pipe();
    for r in &records {
        let key = format!("{prefix}{}", r[&key_path].as_str().unwrap());
        pipe.cmd("RPUSH").arg(&key).arg(r.to_string()).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(expire).ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    for service in ["web", "db"] {
        let key = format!("{prefix}{service}");
        let got: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        let want: Vec<String> = records
            .iter()
            .filter(|r| r[&key_path] == service)
            .map(|r| r.to_string())
            .collect();
        assert_eq!(got, want, "{key}");
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut con).unwrap();
        assert!(ttl > 0 && ttl <= expire, "{key}: ttl {ttl}");
    }
    // What value_length would send is refused, as the file's comment says.
    let err = redis::cmd("EVAL")
        .arg("return 1")
        .arg(0)
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
}

/// A Fluent Bit value as the classic format writes it, for comparing with YAML's.
fn fluent_bit_value(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => "true".into(),
        "off" | "false" | "no" => "false".into(),
        _ => s,
    }
}

#[test]
fn fluent_bit_yaml_is_the_classic_file_key_for_key() {
    let defaults = Config::default();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fluentd/fluent-bit.yaml");
    let yaml = crate::yaml::load(&path);
    let out = &yaml["pipeline"]["outputs"][0];
    assert_eq!(out["name"], "forward");
    assert_eq!(out["host"], defaults.forward.bind.as_str());
    assert_eq!(out["port"], defaults.forward.port);
    assert_eq!(out["require_ack_response"], true);
    // Shown, commented out, as in the classic file.
    let text = file("fluent-bit.yaml");
    assert!(text
        .lines()
        .any(|l| l.trim_start_matches([' ', '#']) == "compress: gzip"));

    // Each classic section and its YAML counterpart hold the same keys and values.
    let classic = fluent_bit_directives(&file("fluent-bit.conf"));
    for (section, yaml_part) in [
        ("SERVICE", &yaml["service"]),
        ("INPUT", &yaml["pipeline"]["inputs"][0]),
        ("OUTPUT", &yaml["pipeline"]["outputs"][0]),
    ] {
        let from_classic: std::collections::BTreeMap<String, String> = classic
            .iter()
            .filter(|d| d.sections[0] == section)
            .map(|d| {
                (d.key.to_ascii_lowercase(), {
                    let v = serde_json::Value::String(d.value.clone());
                    fluent_bit_value(&v)
                })
            })
            .collect();
        let from_yaml: std::collections::BTreeMap<String, String> = yaml_part
            .as_object()
            .unwrap_or_else(|| panic!("{section}: {yaml_part}"))
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), fluent_bit_value(v)))
            .collect();
        assert_eq!(from_yaml, from_classic, "[{section}]");
    }
}
