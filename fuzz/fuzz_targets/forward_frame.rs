//! The forward door's pure pipeline on arbitrary bytes (`shared/spec/fluent.md` §1.1–1.4):
//! frames cut by `msgpack::Scanner` (fed in pieces and checked against a one-shot scan),
//! `message::decode`, `message::decompress` under a cap, and `mapping::map_events` for the
//! default list route, a hash route and a dated msgpack list route.
//!
//! Input: the first byte sets the piece size, the rest is the connection's byte stream.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

use kura::forward::mapping::{map_events, Events, Sequence};
use kura::forward::message::{decode, decompress, Body, Compression};
use kura::forward::msgpack::{Scan, Scanner};
use kura::forward::route::{CompiledRoute, RecordFormat, Route, RouteMode, Router};

/// The decompression cap: small, so bombs are found quickly.
const CAP: u64 = 1 << 20;
/// The clock the mapping runs at.
const NOW_MS: i64 = 1_700_000_000_123;

fn routes() -> &'static [CompiledRoute] {
    static ROUTES: OnceLock<Vec<CompiledRoute>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let list = Route::default();
        let hash = Route {
            mode: RouteMode::Hash,
            key: "${tag}.%s".into(),
            publish: true,
            ttl: 60,
            ..Route::default()
        };
        let dated = Route {
            key: "logs:${tag_parts[0]}:${tag_suffix[-1]}:%Y%m%d".into(),
            format: RecordFormat::Msgpack,
            time_key: "@t".into(),
            time_format: "%Y-%m-%dT%H:%M:%S.%3N%z".into(),
            timezone: "+09:00".into(),
            maxlen: 1000,
            ..Route::default()
        };
        Router::new(&[list, hash, dated])
            .expect("the fuzz routes compile")
            .routes()
            .to_vec()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, mut rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    while !rest.is_empty() {
        let once = Scanner::new().scan(rest);
        // The same bytes arriving `step` at a time: the scanner resumes, never rescans.
        let mut s = Scanner::new();
        let mut cut = 0;
        let pieces = loop {
            cut = (cut + step).min(rest.len());
            match s.scan(&rest[..cut]) {
                Ok(Scan::Incomplete(_)) if cut < rest.len() => {}
                r => break r,
            }
        };
        assert_eq!(once, pieces, "piecewise scan disagrees");
        let frame = match once {
            Ok(Scan::Complete(n)) => {
                let (f, r) = rest.split_at(n);
                rest = r;
                f
            }
            // Incomplete or corrupt: the pure decoder still gets the bytes as they are.
            _ => std::mem::take(&mut rest),
        };
        run(frame);
    }
});

fn run(frame: &[u8]) {
    let frame = Bytes::copy_from_slice(frame);
    let Ok(req) = decode(&frame) else {
        return;
    };
    let raw = match &req.body {
        Body::Message(_) => None,
        Body::Entries {
            stream,
            compression: Compression::None,
        } => Some(stream.to_vec()),
        Body::Entries {
            stream,
            compression,
        } => match decompress(stream, *compression, CAP) {
            Ok(v) => {
                assert!(v.len() as u64 <= CAP, "inflated past the cap");
                Some(v)
            }
            Err(_) => return,
        },
    };
    let seq = Sequence::default();
    for route in routes() {
        let events = match (&req.body, &raw) {
            (Body::Message(ev), _) => Events::One(ev),
            (_, Some(raw)) => Events::Run(raw),
            (_, None) => return,
        };
        let Ok(m) = map_events(route, &req.tag, events, frame.len(), NOW_MS, &seq) else {
            continue;
        };
        for c in &m.commands {
            match &c[0][..] {
                b"HSET" => assert!(c.len() >= 4 && c.len() % 2 == 0),
                b"RPUSH" => assert!(c.len() >= 3),
                _ => {}
            }
        }
    }
}
