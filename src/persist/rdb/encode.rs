//! Writing values as Redis 7.0 does (`rdb.c` `rdbSaveObjectType` / `rdbSaveObject`,
//! `shared/spec/redis.md` §3.2–3.5).
//!
//! Everything is generic over `io::Write` (Redis's `rio` lesson) so DUMP (a `Vec<u8>`), the
//! RDB file (a `BufWriter<File>`), full syncs (a socket) and HTTP downloads share one writer.
//!
//! For the same logical value the bytes equal redis-server's:
//! - strings: `rdbSaveRawString` — INT8/16/32 for canonical integers of up to 11 characters,
//!   LZF when longer than 20 bytes and `lzf_compress` fits in `len - 4`, else raw;
//! - lists: `LIST_QUICKLIST_2`, nodes split where 7.0's quicklist splits them when the
//!   elements are pushed at the tail (`_quicklistNodeAllowInsert`, `list-max-listpack-size`),
//!   each node a listpack saved with `rdbSaveRawString` (so usually LZF-compressed);
//! - hashes: `HASH_LISTPACK` while the hash is listpack-encoded, else `HASH`.

use std::io::{self, Write};

use super::listpack::{self, Builder};
use super::{container, lzf, types};
use crate::config::Config;
use crate::resp::decode::parse_i64;
use crate::store::{Hash, List, Value};

/// Elements this large or larger get a PLAIN quicklist node (`packed_threshold`, 1 GiB).
pub const PACKED_THRESHOLD: usize = 1 << 30;
/// The hard node size limit for count-based fills (`SIZE_SAFETY_LIMIT`).
const SIZE_SAFETY_LIMIT: u64 = 8192;
/// Node byte limits for fills -1 … -5 (`optimization_level`).
const OPTIMIZATION_LEVEL: [u64; 5] = [4096, 8192, 16384, 32768, 65536];
/// Largest positive fill (`FILL_MAX`).
const FILL_MAX: i64 = (1 << 15) - 1;

/// Settings that change the bytes written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOpts {
    /// Try LZF on strings longer than 20 bytes (`rdbcompression`).
    pub compress: bool,
    /// `list-max-listpack-size`: negative = node byte limit class, positive = elements.
    pub list_fill: i64,
    /// `rdb-key-save-delay`: a pause after each key (see [`WriteOpts::pause_after_key`]).
    pub key_save_delay: i64,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            compress: true,
            list_fill: -2,
            key_save_delay: 0,
        }
    }
}

impl WriteOpts {
    /// Returns the options a server with configuration `c` writes with.
    pub fn from_config(c: &Config) -> Self {
        WriteOpts {
            compress: c.rdbcompression,
            list_fill: c.list_max_listpack_size,
            key_save_delay: c.rdb_key_save_delay,
        }
    }

    /// Sleeps as `rdb-key-save-delay` asks after a key (Redis `debugDelay`): `n` > 0 sleeps
    /// `n` µs; `n` < 0 sleeps 1 µs once in `-n` keys on average, since even the shortest
    /// sleep costs a system call.
    pub fn pause_after_key(&self) {
        let usec = match self.key_save_delay {
            0 => return,
            n if n > 0 => n,
            n => i64::from(rand::random::<u64>().is_multiple_of(n.unsigned_abs())),
        };
        if usec > 0 {
            std::thread::sleep(std::time::Duration::from_micros(usec as u64));
        }
    }
}

/// Writes a length in the shortest form (`rdbSaveLen`): 6 bits, 14 bits big endian,
/// 0x80 + u32 BE, or 0x81 + u64 BE.
pub fn write_length<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    if len < 1 << 6 {
        w.write_all(&[len as u8])
    } else if len < 1 << 14 {
        w.write_all(&[0x40 | (len >> 8) as u8, len as u8])
    } else if len <= u32::MAX as u64 {
        w.write_all(&[0x80])?;
        w.write_all(&(len as u32).to_be_bytes())
    } else {
        w.write_all(&[0x81])?;
        w.write_all(&len.to_be_bytes())
    }
}

/// Returns the INT8/16/32 form of `s` if it is a canonical integer that fits 32 bits
/// (`rdbTryIntegerEncoding` + `rdbEncodeInteger`).
fn int_encoding(s: &[u8], buf: &mut [u8; 5]) -> Option<usize> {
    if s.len() > 11 {
        return None;
    }
    let v = parse_i64(s)?;
    if let Ok(b) = i8::try_from(v) {
        buf[0] = 0xc0;
        buf[1] = b as u8;
        Some(2)
    } else if let Ok(h) = i16::try_from(v) {
        buf[0] = 0xc1;
        buf[1..3].copy_from_slice(&h.to_le_bytes());
        Some(3)
    } else if let Ok(i) = i32::try_from(v) {
        buf[0] = 0xc2;
        buf[1..5].copy_from_slice(&i.to_le_bytes());
        Some(5)
    } else {
        None
    }
}

/// Writes a string as `rdbSaveRawString` does: integer form, else LZF (when `compress`, the
/// string is over 20 bytes and saves at least 4), else length + bytes.
pub fn write_string<W: Write>(w: &mut W, s: &[u8], compress: bool) -> io::Result<()> {
    let mut buf = [0u8; 5];
    if let Some(n) = int_encoding(s, &mut buf) {
        return w.write_all(&buf[..n]);
    }
    // "under 20 bytes it's unable to compress even aaaaaaaaaaaaaaaaaa so skip it"
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            w.write_all(&[0xc3])?;
            write_length(w, c.len() as u64)?;
            write_length(w, s.len() as u64)?;
            return w.write_all(&c);
        }
    }
    write_length(w, s.len() as u64)?;
    w.write_all(s)
}

/// Returns the type byte Redis 7.0 writes for `v` (`rdbSaveObjectType`).
pub fn value_type(v: &Value) -> u8 {
    match v {
        Value::Str(_) => types::STRING,
        Value::List(_) => types::LIST_QUICKLIST_2,
        Value::Hash(h) if h.is_listpack() => types::HASH_LISTPACK,
        Value::Hash(_) => types::HASH,
    }
}

/// Writes the type byte and then the value (what a DUMP payload holds before its footer).
pub fn write_value<W: Write>(w: &mut W, v: &Value, opts: &WriteOpts) -> io::Result<()> {
    w.write_all(&[value_type(v)])?;
    write_object(w, v, opts)
}

/// Writes the value without its type byte (`rdbSaveObject`); RDB files put the key between.
pub fn write_object<W: Write>(w: &mut W, v: &Value, opts: &WriteOpts) -> io::Result<()> {
    match v {
        Value::Str(s) => write_string(w, s, opts.compress),
        Value::List(l) => write_list(w, l, opts),
        Value::Hash(h) => write_hash(w, h, opts),
    }
}

// ---- HASHES ----

fn write_hash<W: Write>(w: &mut W, h: &Hash, opts: &WriteOpts) -> io::Result<()> {
    if h.is_listpack() {
        let mut lp = Builder::with_capacity(h.payload_bytes() + 4 * h.len() + 7);
        for (f, v) in h.iter() {
            lp.push(f);
            lp.push(v);
        }
        write_string(w, &lp.finish(), opts.compress)
    } else {
        write_length(w, h.len() as u64)?;
        for (f, v) in h.iter() {
            write_string(w, f, opts.compress)?;
            write_string(w, v, opts.compress)?;
        }
        Ok(())
    }
}

// ---- LISTS ----

/// One quicklist node to write: how many elements, and whether it is a PLAIN node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    count: usize,
    plain: bool,
}

/// Over-estimate of one listpack entry's overhead (`SIZE_ESTIMATE_OVERHEAD`).
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

/// Reports whether a listpack node of `node_bytes` bytes and `count` elements takes one more
/// element of `sz` bytes (`_quicklistNodeAllowInsert` of Redis 7.0).
fn allow_insert(node_bytes: usize, count: usize, fill: i64, sz: usize) -> bool {
    let new_sz = (node_bytes + sz + SIZE_ESTIMATE_OVERHEAD) as u64;
    if fill < 0 {
        // `_quicklistNodeSizeMeetsOptimizationRequirement`
        let offset = (-fill - 1) as usize;
        if offset < OPTIMIZATION_LEVEL.len() && new_sz <= OPTIMIZATION_LEVEL[offset] {
            return true;
        }
    }
    if new_sz > SIZE_SAFETY_LIMIT {
        return false;
    }
    (count as i64) < fill
}

/// Splits the list into nodes as successive `quicklistPushTail` calls would.
fn plan_nodes(l: &List, fill: i64) -> Vec<Node> {
    // `quicklistSetFill` clamps the configured value.
    let fill = fill.clamp(-5, FILL_MAX);
    let mut nodes: Vec<Node> = Vec::new();
    // Bytes of the open listpack node, if the tail node is one.
    let mut open: Option<usize> = None;
    for e in l.iter() {
        let sz = e.len();
        if sz >= PACKED_THRESHOLD {
            nodes.push(Node {
                count: 1,
                plain: true,
            });
            open = None;
            continue;
        }
        let es = listpack::entry_size(e);
        match (open, nodes.last_mut()) {
            (Some(bytes), Some(n)) if allow_insert(bytes, n.count, fill, sz) => {
                n.count += 1;
                open = Some(bytes + es);
            }
            _ => {
                nodes.push(Node {
                    count: 1,
                    plain: false,
                });
                open = Some(listpack::EMPTY_BYTES + es);
            }
        }
    }
    nodes
}

/// Lists of up to this many payload bytes are encoded in one pass, their nodes held until
/// the count (which the format puts first) is known; longer ones take two passes, so a
/// multi-GiB list never doubles in memory. One pass reads the elements once instead of twice:
/// the writer's time is mostly reading list memory.
const ONE_PASS_BYTES: usize = 32 << 20;

/// One quicklist node built in memory.
enum Built<'a> {
    /// A PLAIN node: one big element.
    Plain(&'a [u8]),
    /// A listpack.
    Packed(Vec<u8>),
}

/// Builds the nodes successive `quicklistPushTail` calls would make (as [`plan_nodes`]
/// plans them).
fn build_nodes(l: &List, fill: i64) -> Vec<Built<'_>> {
    let fill = fill.clamp(-5, FILL_MAX);
    let mut nodes = Vec::new();
    let mut open: Option<Builder> = None;
    for e in l.iter() {
        let sz = e.len();
        if sz >= PACKED_THRESHOLD {
            if let Some(b) = open.take() {
                nodes.push(Built::Packed(b.finish()));
            }
            nodes.push(Built::Plain(e));
            continue;
        }
        match open.as_mut() {
            Some(b) if allow_insert(b.bytes(), b.count(), fill, sz) => b.push(e),
            _ => {
                if let Some(b) = open.take() {
                    nodes.push(Built::Packed(b.finish()));
                }
                let mut b = Builder::with_capacity(1024);
                b.push(e);
                open = Some(b);
            }
        }
    }
    if let Some(b) = open {
        nodes.push(Built::Packed(b.finish()));
    }
    nodes
}

fn write_list<W: Write>(w: &mut W, l: &List, opts: &WriteOpts) -> io::Result<()> {
    if l.bytes() <= ONE_PASS_BYTES {
        write_list_one_pass(w, l, opts)
    } else {
        write_list_two_passes(w, l, opts)
    }
}

fn write_list_one_pass<W: Write>(w: &mut W, l: &List, opts: &WriteOpts) -> io::Result<()> {
    let nodes = build_nodes(l, opts.list_fill);
    write_length(w, nodes.len() as u64)?;
    for n in nodes {
        match n {
            Built::Plain(e) => {
                write_length(w, container::PLAIN)?;
                write_string(w, e, opts.compress)?;
            }
            Built::Packed(lp) => {
                write_length(w, container::PACKED)?;
                write_string(w, &lp, opts.compress)?;
            }
        }
    }
    Ok(())
}

fn write_list_two_passes<W: Write>(w: &mut W, l: &List, opts: &WriteOpts) -> io::Result<()> {
    // The node count comes first in the format: plan, then build and write node by node.
    let nodes = plan_nodes(l, opts.list_fill);
    write_length(w, nodes.len() as u64)?;
    let mut it = l.iter();
    for n in nodes {
        if n.plain {
            write_length(w, container::PLAIN)?;
            let e = it.next().unwrap_or_default();
            write_string(w, e, opts.compress)?;
            continue;
        }
        write_length(w, container::PACKED)?;
        let mut lp = Builder::with_capacity(8192 + 64);
        for e in it.by_ref().take(n.count) {
            lp.push(e);
        }
        write_string(w, &lp.finish(), opts.compress)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn enc_str(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, s, true).unwrap();
        out
    }

    fn enc_len(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_length(&mut out, n).unwrap();
        out
    }

    #[test]
    fn lengths() {
        assert_eq!(enc_len(0), [0]);
        assert_eq!(enc_len(63), [63]);
        assert_eq!(enc_len(64), [0x40, 64]);
        assert_eq!(enc_len(16383), [0x7f, 0xff]);
        assert_eq!(enc_len(16384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(enc_len(u32::MAX as u64), [0x80, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(enc_len(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn strings_as_rdb_save_raw_string() {
        assert_eq!(enc_str(b"v1"), [2, b'v', b'1']);
        assert_eq!(enc_str(b"12345"), [0xc1, 0x39, 0x30]); // §3.8 `SET n 12345`
        assert_eq!(enc_str(b"64"), [0xc0, 64]);
        assert_eq!(enc_str(b"-128"), [0xc0, 0x80]);
        assert_eq!(enc_str(b"-129"), [0xc1, 0x7f, 0xff]);
        assert_eq!(enc_str(b"2147483647"), [0xc2, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(enc_str(b"-2147483648"), [0xc2, 0, 0, 0, 0x80]);
        assert_eq!(enc_str(b"2147483648"), b"\x0a2147483648");
        assert_eq!(enc_str(b"007"), b"\x03007");
        assert_eq!(enc_str(b""), [0]);
        // §3.8 `SET big <52 x 'a'>`.
        assert_eq!(
            enc_str(&[b'a'; 52]),
            [0xc3, 9, 52, 0x01, 0x61, 0x61, 0xe0, 0x27, 0x00, 0x01, 0x61, 0x61]
        );
        // 20 bytes: never compressed.
        assert_eq!(enc_str(&[b'a'; 20])[0], 20);
        let mut plain = Vec::new();
        write_string(&mut plain, &[b'a'; 52], false).unwrap();
        assert_eq!(plain[0], 52);
    }

    #[test]
    fn values_from_the_annotated_rdb() {
        // `RPUSH l a b c 7 -300 70000` → §3.8.
        let l = List::from_iter_bytes([&b"a"[..], b"b", b"c", b"7", b"-300", b"70000"]);
        let mut out = Vec::new();
        write_value(&mut out, &Value::List(Arc::new(l)), &WriteOpts::default()).unwrap();
        let mut want = vec![0x12, 0x01, 0x02, 0x1a];
        want.extend_from_slice(&[
            0x1a, 0, 0, 0, 6, 0, 0x81, b'a', 2, 0x81, b'b', 2, 0x81, b'c', 2, 7, 1, 0xde, 0xd4, 2,
            0xf2, 0x70, 0x11, 0x01, 4, 0xff,
        ]);
        assert_eq!(out, want);
        // `HSET h f v n 42`.
        let mut h = Hash::new();
        h.set(b"f", b"v");
        h.set(b"n", b"42");
        let mut out = Vec::new();
        write_value(&mut out, &Value::Hash(Arc::new(h)), &WriteOpts::default()).unwrap();
        let mut want = vec![0x10, 0x12];
        want.extend_from_slice(&[
            0x12, 0, 0, 0, 4, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0x81, b'n', 2, 0x2a, 1, 0xff,
        ]);
        assert_eq!(out, want);
    }

    #[test]
    fn nodes_split_at_8k() {
        // 100-byte elements: entry = 2 + 100 + 1 = 103 bytes; estimate = 100 + 8 = 108.
        // A node takes n elements while 7 + 103 (n - 1) + 108 <= 8192 → 79 elements.
        let e = vec![b'x'; 100];
        let l = List::from_iter_bytes((0..200).map(|_| e.as_slice()));
        let nodes = plan_nodes(&l, -2);
        assert_eq!(
            nodes.iter().map(|n| n.count).collect::<Vec<_>>(),
            vec![79, 79, 42]
        );
        // Positive fill: a count limit under the 8 KiB safety limit.
        let nodes = plan_nodes(&l, 16);
        assert_eq!(nodes.len(), 13);
        // An element above 8 KiB sits alone.
        let big = vec![b'y'; 10_000];
        let l = List::from_iter_bytes([&b"a"[..], &big, b"b"]);
        assert_eq!(plan_nodes(&l, -2).len(), 3);
    }

    #[test]
    fn random_values_round_trip_under_every_setting() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
        let element = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
            match rng.gen_range(0..6) {
                // Integers of every listpack width, canonical or not.
                0 => rng.gen_range(-200i64..200).to_string().into_bytes(),
                1 => (rng.gen::<i64>() >> rng.gen_range(0..63))
                    .to_string()
                    .into_bytes(),
                2 => format!("0{}", rng.gen_range(0..1000)).into_bytes(),
                // Strings around the 63/4095-byte encoding boundaries.
                3 => vec![b'a' + rng.gen_range(0..3); rng.gen_range(60..68)],
                4 => vec![b'q'; rng.gen_range(4090..4100)],
                _ => (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect(),
            }
        };
        for round in 0..40 {
            let n = rng.gen_range(1..600);
            let items: Vec<Vec<u8>> = (0..n).map(|_| element(&mut rng)).collect();
            let opts = WriteOpts {
                compress: round % 2 == 0,
                list_fill: [-5, -4, -3, -2, -1, 0, 1, 5, 100][round % 9],
                ..WriteOpts::default()
            };
            let l = List::from_iter_bytes(items.iter().map(|v| v.as_slice()));
            // Both list paths write the same bytes.
            let (mut one, mut two) = (Vec::new(), Vec::new());
            write_list_one_pass(&mut one, &l, &opts).unwrap();
            write_list_two_passes(&mut two, &l, &opts).unwrap();
            assert_eq!(one, two, "round {round}");
            let mut buf = Vec::new();
            write_value(&mut buf, &Value::List(Arc::new(l)), &opts).unwrap();
            let (back, used) = super::super::read_value(&buf).unwrap();
            assert_eq!(used, buf.len());
            match back {
                Value::List(b) => assert!(b.iter().eq(items.iter().map(|v| v.as_slice()))),
                _ => panic!("not a list"),
            }
            let mut h = Hash::new();
            for pair in items.chunks(2) {
                h.set(&pair[0], pair.last().unwrap());
            }
            let mut buf = Vec::new();
            write_value(&mut buf, &Value::Hash(Arc::new(h.clone())), &opts).unwrap();
            match super::super::read_value(&buf).unwrap().0 {
                Value::Hash(b) => {
                    assert_eq!(b.len(), h.len());
                    assert!(h.iter().all(|(f, v)| b.get(f) == Some(v)));
                }
                _ => panic!("not a hash"),
            }
        }
    }
}
