//! The differential test: command scripts run against a real redis-server 7.0 and against
//! kura, replies compared byte for byte, in RESP2 and in RESP3.
//!
//! Scripts live in `tests/diff/*.redis`, one command per line in redis-cli syntax (quotes and
//! `\xHH` escapes as in Redis's inline protocol). Each script runs twice on fresh connections:
//! once in RESP2, once after `HELLO 3` (the HELLO reply itself is not compared: ids differ).
//! Both servers are flushed (`FLUSHALL`) before each pass.
//!
//! A line may start with a directive:
//! - `?sorted CMD …`  the reply is an array; elements are compared as a multiset
//!   (hash tables and SCAN return elements in an unspecified order);
//! - `?type CMD …`    only the reply's type byte is compared (values that differ by nature);
//! - `?any CMD …`     the command runs on both, the reply is not compared;
//! - `?approx N CMD …` integer replies may differ by up to N (TTLs);
//! - `?resp2 CMD …` / `?resp3 CMD …` the line runs only in that pass.
//! - `@sleep MS`      pauses (expiry).
//!
//! Lines starting with `#` and blank lines are ignored.
//!
//! `DIFF_SCRIPT=name cargo test --test it diff` runs only `tests/diff/name.redis`.

use std::path::PathBuf;
use std::time::Duration;

use kura::resp::decode::split_args;

use crate::support::{Kura, Raw, RedisServer};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    Exact,
    Sorted,
    Type,
    Any,
    Approx(i64),
}

struct Line {
    no: usize,
    compare: Compare,
    only: Option<u8>,
    sleep_ms: Option<u64>,
    args: Vec<Vec<u8>>,
    text: String,
}

fn parse_script(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(ms) = t.strip_prefix("@sleep ") {
            out.push(Line {
                no: i + 1,
                compare: Compare::Any,
                only: None,
                sleep_ms: Some(ms.trim().parse().expect("@sleep MS")),
                args: vec![],
                text: t.to_string(),
            });
            continue;
        }
        let mut args =
            split_args(t.as_bytes()).unwrap_or_else(|| panic!("bad quoting on line {}", i + 1));
        let mut compare = Compare::Exact;
        let mut only = None;
        while let Some(first) = args.first() {
            match first.as_slice() {
                b"?sorted" => compare = Compare::Sorted,
                b"?type" => compare = Compare::Type,
                b"?any" => compare = Compare::Any,
                b"?approx" => {
                    let n = String::from_utf8_lossy(&args[1])
                        .parse()
                        .expect("?approx N");
                    compare = Compare::Approx(n);
                    args.remove(0);
                }
                b"?resp2" => only = Some(2),
                b"?resp3" => only = Some(3),
                _ => break,
            }
            args.remove(0);
        }
        out.push(Line {
            no: i + 1,
            compare,
            only,
            sleep_ms: None,
            args,
            text: t.to_string(),
        });
    }
    out
}

/// Splits an array reply into its top-level elements' bytes (for `?sorted`).
fn elements(reply: &[u8]) -> Option<Vec<Vec<u8>>> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'%')) {
        return None;
    }
    let mut r = Raw::from_bytes(reply);
    let header = r.line();
    let n: usize = header[1..].parse().ok()?;
    let n = if header.starts_with('%') { n * 2 } else { n };
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.element());
    }
    out.sort();
    Some(out)
}

fn int_of(reply: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(reply).ok()?;
    s.strip_prefix(':')?.trim_end().parse().ok()
}

fn matches(compare: Compare, a: &[u8], b: &[u8]) -> bool {
    match compare {
        Compare::Exact => a == b,
        Compare::Any => true,
        Compare::Type => a.first() == b.first(),
        Compare::Sorted => match (elements(a), elements(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        Compare::Approx(n) => match (int_of(a), int_of(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= n,
            _ => a == b,
        },
    }
}

fn run_pass(
    redis: &RedisServer,
    kura: &Kura,
    name: &str,
    lines: &[Line],
    proto: u8,
    fails: &mut Vec<String>,
) {
    let mut r = redis.client();
    let mut k = kura.client();
    for c in [&mut r, &mut k] {
        c.cmd(&["FLUSHALL"]);
        if proto == 3 {
            c.cmd(&["HELLO", "3"]);
        }
    }
    for line in lines {
        if let Some(ms) = line.sleep_ms {
            std::thread::sleep(Duration::from_millis(ms));
            continue;
        }
        if line.only.is_some_and(|p| p != proto) {
            continue;
        }
        let args: Vec<&[u8]> = line.args.iter().map(|a| a.as_slice()).collect();
        r.send(&args);
        k.send(&args);
        let want = r.read_reply();
        let got = match k.try_read_reply() {
            Ok(g) => g,
            Err(e) => {
                fails.push(format!(
                    "{name}:{} (RESP{proto}) `{}`: kura gave no reply ({e})",
                    line.no, line.text
                ));
                return;
            }
        };
        if !matches(line.compare, &want, &got) {
            fails.push(format!(
                "{name}:{} (RESP{proto}) `{}`\n   redis: {:?}\n   kura:  {:?}",
                line.no,
                line.text,
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
}

#[test]
fn differential_scripts() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let kura = Kura::start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/diff");
    let only = std::env::var("DIFF_SCRIPT").ok();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/diff")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "redis"))
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| p.file_stem().is_some_and(|s| s == o.as_str()))
        })
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no scripts in tests/diff");
    let mut fails = Vec::new();
    let mut count = 0;
    for path in &scripts {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let lines = parse_script(&std::fs::read_to_string(path).expect("read script"));
        count += lines.len();
        run_pass(&redis, &kura, &name, &lines, 2, &mut fails);
        run_pass(&redis, &kura, &name, &lines, 3, &mut fails);
    }
    eprintln!(
        "differential: {} scripts, {count} lines, {} mismatches",
        scripts.len(),
        fails.len()
    );
    assert!(
        fails.is_empty(),
        "{} mismatches:\n{}",
        fails.len(),
        fails.join("\n")
    );
}
