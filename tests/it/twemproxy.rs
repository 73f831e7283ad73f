//! twemproxy in front of kura (deploy/twemproxy/nutcracker.yml), with the real `nutcracker`
//! (Debian's package): the shipped file passes `nutcracker -t`, and a pool with the shipped
//! options over two in-process kura masters shards writes across both, reads them back
//! through the proxy, and closes the connection on MULTI, as the file's comments say.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bulks, call, free_port, need_program, wait_for_port, Kura, Raw, Resp};

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/twemproxy/nutcracker.yml")
}

/// The shipped file's one pool: its name and options.
fn shipped_pool() -> (String, serde_json::Map<String, Value>) {
    let conf = crate::yaml::load(&shipped_path());
    let pools = conf.as_object().unwrap();
    assert_eq!(pools.len(), 1, "one pool");
    let (name, opts) = pools.iter().next().unwrap();
    (name.clone(), opts.as_object().unwrap().clone())
}

/// A running nutcracker, killed on drop.
struct Nutcracker {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nutcracker {
    /// Runs `bin` with a config made of the shipped pool's options, `listen` on a free port
    /// and `servers` pointing at `shards` (same weights and names, so the same hashing).
    fn start(bin: &Path, shards: &[SocketAddr]) -> Nutcracker {
        let (pool, opts) = shipped_pool();
        let servers: Vec<String> = opts["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(servers.len(), shards.len(), "one shard per shipped server");
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut text = format!("{pool}:\n  listen: 127.0.0.1:{port}\n");
            for (k, v) in &opts {
                if k == "listen" || k == "servers" {
                    continue;
                }
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text.push_str(&format!("  {k}: {v}\n"));
            }
            text.push_str("  servers:\n");
            for (s, shard) in servers.iter().zip(shards) {
                // "address:port:weight name": keep weight and name.
                let (addr_weight, name) = s.split_once(' ').unwrap();
                let weight = addr_weight.rsplit(':').next().unwrap();
                text.push_str(&format!("    - {shard}:{weight} {name}\n"));
            }
            let conf = dir.path().join("nutcracker.yml");
            std::fs::write(&conf, &text).unwrap();
            // The derived file has the shipped options, to the letter.
            let derived = crate::yaml::load(&conf);
            for (k, v) in &opts {
                if k != "listen" && k != "servers" {
                    assert_eq!(&derived[&pool][k], v, "{k}");
                }
            }
            let stats = free_port().to_string();
            let mut child = Command::new(bin)
                .arg("-c")
                .arg(&conf)
                .arg("-o")
                .arg(dir.path().join("nutcracker.log"))
                .arg("-p")
                .arg(dir.path().join("nutcracker.pid"))
                .args(["-a", "127.0.0.1", "-s", &stats])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn nutcracker");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // a port was taken in between: try others
                }
                if wait_for_port(addr, Duration::from_millis(100)) {
                    return Nutcracker { addr, child, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        panic!("nutcracker did not start");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nutcracker.log")).unwrap_or_default()
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_shipped_pool_passes_nutcracker_t() {
    let Some(bin) = need_program("nutcracker") else {
        return;
    };
    let out = Command::new(bin)
        .args(["-t", "-c"])
        .arg(shipped_path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("syntax is ok"),
        "{text}"
    );
    // The options the comments promise.
    let (_, opts) = shipped_pool();
    assert_eq!(opts["redis"], true);
    assert_eq!(opts["hash"], "fnv1a_64");
    assert_eq!(opts["distribution"], "ketama");
    assert_eq!(opts["auto_eject_hosts"], false);
    // The example shards are kuras on kura's default RESP port and the port the header's
    // second-kura command line gives.
    let text = std::fs::read_to_string(shipped_path()).unwrap();
    let default_port = kura::Config::default().port;
    let servers: Vec<&str> = opts["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(servers[0].starts_with(&format!("127.0.0.1:{default_port}:")));
    let second_port = servers[1].split(':').nth(1).unwrap();
    assert!(text.contains(&format!("kura --port {second_port} ")));
    assert!(text.contains("MULTI") && text.contains("fluent-plugin-redis"));
}

#[test]
fn writes_through_nutcracker_land_on_both_kuras_and_read_back() {
    let Some(bin) = need_program("nutcracker") else {
        return;
    };
    let shards = [Kura::start(), Kura::start()];
    let proxy = Nutcracker::start(&bin, &[shards[0].addr, shards[1].addr]);
    let mut c = Raw::connect(proxy.addr);

    // 200 keys of the three kinds kura stores, written through the proxy.
    const N: usize = 200;
    let key = |i: usize| match i % 3 {
        0 => format!("tw:str:{i}"),
        1 => format!("tw:list:{i}"),
        _ => format!("tw:hash:{i}"),
    };
    for i in 0..N {
        let k = key(i);
        let v = format!("v{i}");
        let reply = match i % 3 {
            0 => c.cmd(&["SET", &k, &v]),
            1 => c.cmd(&["RPUSH", &k, &v, "second"]),
            _ => c.cmd(&["HSET", &k, "field", &v]),
        };
        assert!(
            ["+OK\r\n", ":2\r\n", ":1\r\n"].contains(&reply.as_str()),
            "{k}: {reply:?}\n{}",
            proxy.log()
        );
    }
    // Read back through the proxy.
    for i in 0..N {
        let k = key(i);
        let v = format!("v{i}").into_bytes();
        match i % 3 {
            0 => assert_eq!(call(&mut c, &[b"GET", k.as_bytes()]), Resp::Bulk(Some(v))),
            1 => assert_eq!(
                bulks(call(&mut c, &[b"LRANGE", k.as_bytes(), b"0", b"-1"])),
                [v, b"second".to_vec()]
            ),
            _ => assert_eq!(
                bulks(call(&mut c, &[b"HGETALL", k.as_bytes()])),
                [b"field".to_vec(), v]
            ),
        }
    }
    // Each kura holds some keys, no key is on both, and together they hold all.
    let held: Vec<BTreeSet<String>> = shards
        .iter()
        .map(|k| {
            bulks(call(&mut k.client(), &[b"KEYS", b"tw:*"]))
                .into_iter()
                .map(|b| String::from_utf8(b).unwrap())
                .collect()
        })
        .collect();
    assert!(
        held.iter().all(|h| h.len() >= N / 10),
        "lopsided: {} and {} keys",
        held[0].len(),
        held[1].len()
    );
    eprintln!("shards hold {} and {} keys", held[0].len(), held[1].len());
    assert!(held[0].is_disjoint(&held[1]));
    let all: BTreeSet<String> = (0..N).map(key).collect();
    assert_eq!(&held[0] | &held[1], all);

    // MULTI is not proxied: nutcracker closes the connection (why fluent-plugin-redis,
    // which wraps chunks in MULTI/EXEC, must talk to kura directly). So are the other
    // commands the file says it refuses.
    for cmd in [
        &[&b"MULTI"[..]][..],
        &[b"BLPOP", b"tw:list:1", b"1"],
        &[b"SUBSCRIBE", b"ch"],
        &[b"KEYS", b"*"],
        &[b"SCAN", b"0"],
        &[b"SELECT", b"1"],
    ] {
        let mut m = Raw::connect(proxy.addr);
        m.send(cmd);
        assert!(
            m.is_closed(Duration::from_secs(5)),
            "{} was proxied",
            String::from_utf8_lossy(cmd[0])
        );
    }
    // The proxy itself goes on serving.
    assert_eq!(c.cmd(&["GET", "tw:str:0"]), "$2\r\nv0\r\n");
}
