//! Loader tests on literal bytes: the real 7.0.15 file of `shared/spec/redis.md` §3.8, and
//! small files built around it for each opcode and each refusal.

use std::sync::Arc;

use super::super::encode::{write_length, write_object, write_string, WriteOpts};
use super::*;
use crate::store::{List, Value};

/// The §3.8 file, produced by `SAVE` on redis-server 7.0.15 after
/// `SET k1 v1; SET big <52 x 'a'>; SET n 12345; HSET h f v n 42; SET e 1 EX 100000;
/// RPUSH l a b c 7 -300 70000; SELECT 1; SET other x`.
fn spec_file() -> Vec<u8> {
    let parts: &[&[u8]] = &[
        b"REDIS0010",
        // AUX redis-ver "7.0.15", redis-bits int8 64, ctime int32, used-mem int32, aof-base "0".
        b"\xfa\x09redis-ver\x067.0.15",
        b"\xfa\x0aredis-bits\xc0\x40",
        b"\xfa\x05ctime\xc2\x24\x99\x05\x6b",
        b"\xfa\x08used-mem\xc2\xc0\x78\x0f\x00",
        b"\xfa\x08aof-base\xc0\x00",
        // SELECTDB 0, RESIZEDB 6 keys / 1 expire.
        b"\xfe\x00",
        b"\xfb\x06\x01",
        // STRING k1 = v1.
        b"\x00\x02k1\x02v1",
        // STRING big, LZF clen 9 ulen 52.
        b"\x00\x03big\xc3\x09\x34\x01\x61\x61\xe0\x27\x00\x01\x61\x61",
        // STRING n = int16 12345.
        b"\x00\x01n\xc1\x39\x30",
        // HASH_LISTPACK h: f=v, n=42 (18-byte listpack).
        b"\x10\x01h\x12\x12\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x81n\x02\x2a\x01\xff",
        // EXPIRETIME_MS 1795628996455, STRING e = int8 1.
        b"\xfc\x67\x17\xd4\x13\xa2\x01\x00\x00",
        b"\x00\x01e\xc0\x01",
        // QUICKLIST_2 l: 1 node, PACKED, 26-byte listpack a b c 7 -300 70000.
        b"\x12\x01l\x01\x02\x1a",
        b"\x1a\x00\x00\x00\x06\x00\x81a\x02\x81b\x02\x81c\x02\x07\x01\xde\xd4\x02\xf2\x70\x11\x01\x04\xff",
        // SELECTDB 1, RESIZEDB 1/0, STRING other = x.
        b"\xfe\x01\xfb\x01\x00\x00\x05other\x01x",
        // EOF, CRC64 LE.
        b"\xff\x41\xe5\xc5\xf3\x8e\x78\xd4\x8e",
    ];
    parts.concat()
}

/// `ctime` of the §3.8 file, in ms: its key `e` expires 100000 s later.
const SPEC_CTIME_MS: i64 = 1_795_528_996_000;
const SPEC_E_EXPIRE: i64 = 1_795_628_996_455;

fn opts() -> LoadOpts {
    LoadOpts::master(SPEC_CTIME_MS)
}

fn string(ks: &Keyspace, db: usize, k: &str) -> Option<Vec<u8>> {
    match &ks.dbs[db].get(k.as_bytes())?.value {
        Value::Str(s) => Some(s.to_vec()),
        other => panic!("{k} is not a string: {other:?}"),
    }
}

fn list(ks: &Keyspace, db: usize, k: &str) -> Vec<Vec<u8>> {
    match &ks.dbs[db].get(k.as_bytes()).expect("key").value {
        Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
        other => panic!("{k} is not a list: {other:?}"),
    }
}

fn hash(ks: &Keyspace, db: usize, k: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    match &ks.dbs[db].get(k.as_bytes()).expect("key").value {
        Value::Hash(h) => h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(),
        other => panic!("{k} is not a hash: {other:?}"),
    }
}

fn expire(ks: &Keyspace, db: usize, k: &str) -> Option<i64> {
    ks.dbs[db].get(k.as_bytes()).expect("key").expire_at()
}

/// Builds small RDB files: header, raw bytes, strings, then EOF and the CRC64.
struct File(Vec<u8>);

impl File {
    fn new(version: &str) -> File {
        File(format!("REDIS{version}").into_bytes())
    }

    fn raw(mut self, b: &[u8]) -> File {
        self.0.extend_from_slice(b);
        self
    }

    fn str(mut self, s: &[u8]) -> File {
        write_string(&mut self.0, s, true).unwrap();
        self
    }

    fn len(mut self, n: u64) -> File {
        write_length(&mut self.0, n).unwrap();
        self
    }

    /// A key of type `ty`: type byte, key, then whatever the caller appends.
    fn key(self, ty: u8, k: &str) -> File {
        self.raw(&[ty]).str(k.as_bytes())
    }

    fn string_key(self, k: &str, v: &str) -> File {
        self.key(types::STRING, k).str(v.as_bytes())
    }

    /// EOF and the CRC64 (version >= 5).
    fn end(mut self) -> Vec<u8> {
        self.0.push(opcode::EOF);
        let crc = crc64(0, &self.0);
        self.0.extend_from_slice(&crc.to_le_bytes());
        self.0
    }
}

// ---- THE §3.8 FILE ----

#[test]
fn the_real_7_0_15_file_loads_exactly() {
    let f = spec_file();
    assert_eq!(crc64(0, &f[..f.len() - 8]), 0x8ed4_788e_f3c5_e541);
    let l = load(&f, 16, &opts()).unwrap();
    let ks = &l.keyspace;
    assert_eq!(l.version, 10);
    assert_eq!(l.checksum, Checksum::Verified);
    assert_eq!(
        (l.keys_loaded, l.keys_expired, l.empty_keys_skipped),
        (7, 0, 0)
    );
    assert_eq!((ks.dbs[0].len(), ks.dbs[1].len()), (6, 1));
    assert!(ks.dbs[2..].iter().all(|d| d.is_empty()));
    assert_eq!(string(ks, 0, "k1").unwrap(), b"v1");
    assert_eq!(string(ks, 0, "big").unwrap(), vec![b'a'; 52]);
    assert_eq!(string(ks, 0, "n").unwrap(), b"12345");
    assert_eq!(string(ks, 0, "e").unwrap(), b"1");
    assert_eq!(string(ks, 1, "other").unwrap(), b"x");
    assert_eq!(string(ks, 0, "other"), None);
    assert_eq!(
        hash(ks, 0, "h"),
        vec![
            (b"f".to_vec(), b"v".to_vec()),
            (b"n".to_vec(), b"42".to_vec())
        ]
    );
    let want: Vec<Vec<u8>> = ["a", "b", "c", "7", "-300", "70000"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(list(ks, 0, "l"), want);
    assert_eq!(expire(ks, 0, "e"), Some(SPEC_E_EXPIRE));
    assert_eq!(ks.dbs[0].expires_len(), 1);
    for k in ["k1", "big", "n", "h", "l"] {
        assert_eq!(expire(ks, 0, k), None, "{k}");
    }
    // AUX fields, in order, and the typed accessors.
    let names: Vec<&[u8]> = l.aux.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        names,
        [
            &b"redis-ver"[..],
            b"redis-bits",
            b"ctime",
            b"used-mem",
            b"aof-base"
        ]
    );
    assert_eq!(l.redis_ver(), Some("7.0.15"));
    assert_eq!(l.aux_field("REDIS-BITS"), Some(&b"64"[..]));
    assert_eq!(l.ctime(), Some(SPEC_CTIME_MS / 1000));
    assert_eq!(l.used_mem(), Some(0x000f_78c0));
    assert!(!l.aof_base());
    assert_eq!(
        (l.repl_id(), l.repl_offset(), l.repl_stream_db()),
        (None, None, None)
    );
}

#[test]
fn versions_above_10_and_bad_signatures_are_refused() {
    let mut f = spec_file();
    f[8] = b'1'; // REDIS0011
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(e, LoadError::Version { version: 11 });
    assert_eq!(e.to_string(), "Can't handle RDB format version 11");
    assert_eq!(e.kind(), "version");
    f[5..9].copy_from_slice(b"0000");
    assert_eq!(
        load(&f, 16, &opts()).unwrap_err(),
        LoadError::Version { version: 0 }
    );
    f[5..9].copy_from_slice(b"x010");
    assert_eq!(
        load(&f, 16, &opts()).unwrap_err(),
        LoadError::Version { version: 0 }
    );
    f[..9].copy_from_slice(b"RADIS0010");
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(e.to_string(), "Wrong signature trying to load DB from file");
}

#[test]
fn a_wrong_checksum_is_refused_with_redis_words() {
    let good = spec_file();
    let n = good.len();
    // The stored CRC changed.
    let mut f = good.clone();
    f[n - 1] ^= 0x01;
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(
        e,
        LoadError::Checksum {
            expected: 0x8ed4_788e_f3c5_e541,
            got: 0x8fd4_788e_f3c5_e541,
            at: n - 8
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "Wrong RDB checksum expected: (8ed4788ef3c5e541) but got (8fd4788ef3c5e541) (checksum at offset {})",
            n - 8
        )
    );
    assert_eq!((e.kind(), e.offset()), ("checksum", n - 8));
    // A data byte changed: "v1" read as "v2", caught by the checksum.
    let mut f = good.clone();
    let at = f.windows(3).position(|w| w == b"\x02v1").unwrap();
    f[at + 2] = b'2';
    assert_eq!(load(&f, 16, &opts()).unwrap_err().kind(), "checksum");
    // With rdbchecksum no, nothing is checked (but the file must still parse).
    let l = load(
        &f,
        16,
        &LoadOpts {
            verify_checksum: false,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(l.checksum, Checksum::NotChecked);
    assert_eq!(string(&l.keyspace, 0, "k1").unwrap(), b"v2");
}

#[test]
fn a_zero_checksum_means_saved_without_one() {
    let mut f = spec_file();
    let n = f.len();
    f[n - 8..].fill(0);
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!(l.checksum, Checksum::Disabled);
    assert_eq!(l.keys_loaded, 7);
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let f = spec_file();
    for cut in 0..f.len() {
        let e = load(&f[..cut], 16, &opts()).unwrap_err();
        assert_eq!(e.kind(), "truncated", "cut at {cut}: {e}");
        assert!(e.offset() <= cut, "cut at {cut}: {e}");
        assert!(
            e.to_string()
                .starts_with("Unexpected EOF reading RDB file at offset"),
            "{e}"
        );
    }
    // The message says where and what.
    let cut = f.windows(3).position(|w| w == b"\x02v1").unwrap() + 2;
    let e = load(&f[..cut], 16, &opts()).unwrap_err();
    assert!(
        e.to_string()
            .contains("doing read-object-value, key 'k1' in DB 0"),
        "{e}"
    );
    // A cut inside the checksum.
    let e = load(&f[..f.len() - 3], 16, &opts()).unwrap_err();
    assert!(e.to_string().contains("doing check-sum"), "{e}");
}

#[test]
fn trailing_bytes_are_refused() {
    let mut f = spec_file();
    let n = f.len();
    f.push(0);
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(e, LoadError::Trailing { at: n, len: 1 });
    // Before version 5 there is no checksum: the data ends at EOF.
    let old = File::new("0004").raw(b"\xfe\x00").string_key("a", "b").0;
    let mut ok = old.clone();
    ok.push(opcode::EOF);
    let l = load(&ok, 16, &opts()).unwrap();
    assert_eq!((l.version, l.checksum), (4, Checksum::Absent));
    assert_eq!(string(&l.keyspace, 0, "a").unwrap(), b"b");
    ok.extend_from_slice(&[0; 8]);
    assert_eq!(load(&ok, 16, &opts()).unwrap_err().kind(), "trailing_data");
}

// ---- REFUSALS ----

#[test]
fn a_set_stops_the_load_naming_the_key() {
    let f = File::new("0010")
        .raw(b"\xfe\x00")
        .string_key("before", "x")
        .key(types::SET, "myset")
        .len(2)
        .str(b"a")
        .str(b"b")
        .end();
    let e = load(&f, 16, &opts()).unwrap_err();
    let at = f.windows(6).position(|w| w == b"\x05myset").unwrap() - 1;
    assert_eq!(
        e,
        LoadError::UnsupportedType {
            key: KeyName(b"myset".to_vec()),
            db: 0,
            ty: types::SET,
            name: "set",
            module: None,
            at
        }
    );
    assert_eq!(
        e.to_string(),
        format!("key 'myset' in DB 0 at offset {at} is a set, a type kura does not hold: refusing to load the RDB file")
    );
    // Every other type kura lacks is named too.
    for (ty, name) in [
        (types::SET_INTSET, "set (intset)"),
        (types::ZSET_2, "zset"),
        (types::ZSET_LISTPACK, "zset (listpack)"),
        (types::STREAM_LISTPACKS_2, "stream"),
    ] {
        let f = File::new("0010").key(ty, "k").raw(b"\x01\x01a").end();
        match load(&f, 16, &opts()).unwrap_err() {
            LoadError::UnsupportedType { name: n, key, .. } => {
                assert_eq!((n, key), (name, KeyName(b"k".to_vec())))
            }
            other => panic!("{ty}: {other}"),
        }
    }
}

/// A module type id as Redis builds it: nine 6-bit characters, then a 10-bit version.
fn module_id(name: &str, encver: u64) -> u64 {
    const CSET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let id = name
        .chars()
        .fold(0u64, |id, c| (id << 6) | CSET.find(c).unwrap() as u64);
    (id << 10) | encver
}

#[test]
fn modules_and_functions_are_refused_by_name() {
    let id = module_id("ReJSON-RL", 3);
    assert_eq!(module_name(id), "ReJSON-RL");
    let f = File::new("0010")
        .key(types::MODULE_2, "doc")
        .len(id)
        .raw(b"\x00")
        .end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("key 'doc' in DB 0 at offset 9 is a module of module 'ReJSON-RL'"),
        "{e}"
    );
    let f = File::new("0010")
        .raw(&[opcode::MODULE_AUX])
        .len(id)
        .len(2)
        .len(1)
        .end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(
        e,
        LoadError::ModuleAux {
            module: "ReJSON-RL".into(),
            at: 9
        }
    );
    assert_eq!(e.kind(), "module_aux");
    let f = File::new("0010")
        .raw(&[opcode::FUNCTION2])
        .str(b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)")
        .end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(
        e,
        LoadError::Function {
            library: Some("mylib".into()),
            at: 9
        }
    );
    assert!(e
        .to_string()
        .starts_with("Failed loading library 'mylib' at offset 9"));
    let f = File::new("0010").raw(&[opcode::FUNCTION]).end();
    assert_eq!(load(&f, 16, &opts()).unwrap_err().kind(), "function");
}

#[test]
fn selectdb_beyond_the_configured_databases_is_fatal() {
    let f = spec_file();
    let e = load(&f, 1, &opts()).unwrap_err();
    let at = f.windows(2).rposition(|w| w == b"\xfe\x01").unwrap();
    assert_eq!(
        e,
        LoadError::DbOutOfRange {
            db: 1,
            databases: 1,
            at
        }
    );
    assert!(e
        .to_string()
        .starts_with("FATAL: Data file was created with a Redis server configured to handle more than 1 databases"));
    assert!(load(&f, 2, &opts()).is_ok());
    // With no database at all, even DB 0 is out of range.
    let f = File::new("0010").string_key("a", "b").end();
    assert_eq!(load(&f, 0, &opts()).unwrap_err().kind(), "db_out_of_range");
}

#[test]
fn a_duplicate_key_in_one_db_is_fatal() {
    let f = File::new("0010")
        .raw(b"\xfe\x00")
        .string_key("k", "1")
        .string_key("k", "2")
        .end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "RDB has duplicated key 'k' in DB 0 (offset 16)"
    );
    // The same name in two databases is two keys.
    let f = File::new("0010")
        .raw(b"\xfe\x00")
        .string_key("k", "1")
        .raw(b"\xfe\x03")
        .string_key("k", "2")
        .end();
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!(string(&l.keyspace, 3, "k").unwrap(), b"2");
}

#[test]
fn corrupt_values_name_their_key_and_offset() {
    // Type 20 (7.2's set listpack) does not exist in version 10.
    let f = File::new("0010").key(20, "k").raw(b"\x00").end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert_eq!(e.kind(), "corrupt");
    assert_eq!(
        e.to_string(),
        "Internal error in RDB reading offset 12 (doing read-object-value, key 'k' in DB 0): unknown rdb value type 20"
    );
    // A bad length byte where a key should be.
    let f = File::new("0010").raw(b"\x00\x82").end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert!(e.to_string().contains("doing read-key"), "{e}");
    // Binary keys are shown escaped.
    let f = File::new("0010").key(20, "k\u{7f}'").raw(b"\x00").end();
    let e = load(&f, 16, &opts()).unwrap_err();
    assert!(e.to_string().contains(r"key 'k\x7f\'' in DB 0"), "{e}");
}

// ---- KEYS AND THEIR OPCODES ----

#[test]
fn expired_keys_are_dropped_by_a_master_and_kept_by_a_replica() {
    let f = spec_file();
    let later = SPEC_E_EXPIRE + 1;
    let l = load(&f, 16, &LoadOpts::master(later)).unwrap();
    assert_eq!((l.keys_loaded, l.keys_expired), (6, 1));
    assert!(l.keyspace.dbs[0].get(b"e").is_none());
    assert_eq!(l.keyspace.dbs[0].expires_len(), 0);
    let l = load(&f, 16, &LoadOpts::replica(later)).unwrap();
    assert_eq!((l.keys_loaded, l.keys_expired), (7, 0));
    assert_eq!(expire(&l.keyspace, 0, "e"), Some(SPEC_E_EXPIRE));
    // Exactly at the deadline the key is still alive (Redis: `expiretime < now`).
    let l = load(&f, 16, &LoadOpts::master(SPEC_E_EXPIRE)).unwrap();
    assert_eq!(l.keys_expired, 0);
}

#[test]
fn legacy_expiry_idle_and_freq_apply_to_the_next_key_only() {
    let now_ms = 2_000_000_000_000;
    let f = File::new("0010")
        .raw(b"\xfe\x00")
        // EXPIRETIME (seconds, 4 bytes LE): 2_100_000_000 s.
        .raw(&[opcode::EXPIRETIME])
        .raw(&2_100_000_000i32.to_le_bytes())
        // IDLE 3600 s, FREQ 5.
        .raw(&[opcode::IDLE])
        .len(3600)
        .raw(&[opcode::FREQ, 5])
        .string_key("a", "1")
        .string_key("b", "2")
        .end();
    let l = load(&f, 16, &LoadOpts::master(now_ms)).unwrap();
    let a = l.keyspace.dbs[0].get(b"a").unwrap();
    let b = l.keyspace.dbs[0].get(b"b").unwrap();
    assert_eq!(a.expire_at(), Some(2_100_000_000_000));
    assert_eq!(a.access as i64, now_ms / 1000 - 3600);
    assert_eq!(b.expire_at(), None);
    assert_eq!(b.access as i64, now_ms / 1000);
}

#[test]
fn empty_aggregates_are_skipped_and_loading_goes_on() {
    let f = File::new("0010")
        .raw(b"\xfe\x00")
        .key(types::LIST, "empty-list")
        .len(0)
        .key(types::HASH, "empty-hash")
        .len(0)
        .raw(&[opcode::EXPIRETIME_MS])
        .raw(&1i64.to_le_bytes())
        .key(types::LIST_QUICKLIST_2, "no-nodes")
        .len(0)
        .string_key("after", "ok")
        .end();
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!((l.keys_loaded, l.empty_keys_skipped), (1, 3));
    assert_eq!(l.keyspace.dbs[0].len(), 1);
    // The skipped key's expiry did not leak onto the next key.
    assert_eq!(expire(&l.keyspace, 0, "after"), None);
}

#[test]
fn resizedb_hints_are_only_hints() {
    // Absurd hints neither fail nor allocate absurdly; small ones are fine when wrong.
    let f = File::new("0010")
        .raw(b"\xfe\x00\xfb")
        .raw(&[0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        .raw(&[0x80, 0xff, 0xff, 0xff, 0xff])
        .string_key("a", "1")
        .raw(b"\xfe\x01\xfb\x00\x00")
        .string_key("b", "2")
        .end();
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!(l.keys_loaded, 2);
}

#[test]
fn aux_accessors_follow_redis_rules() {
    let id40 = "a".repeat(40);
    let f = File::new("0010")
        .raw(&[opcode::AUX])
        .str(b"repl-id")
        .str(b"short")
        .raw(&[opcode::AUX])
        .str(b"repl-stream-db")
        .str(b"3")
        .raw(&[opcode::AUX])
        .str(b"repl-offset")
        .str(b"123456789012")
        .raw(&[opcode::AUX])
        .str(b"aof-base")
        .str(b"1")
        .raw(&[opcode::AUX])
        .str(b"%custom")
        .str(b"shown in the log")
        .end();
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!(l.repl_id(), None);
    assert_eq!(l.repl_stream_db(), Some(3));
    assert_eq!(l.repl_offset(), Some(123_456_789_012));
    assert!(l.aof_base());
    assert_eq!(l.aux.len(), 5);
    assert_eq!(l.keyspace.dbs.len(), 16);
    let f = File::new("0010")
        .raw(&[opcode::AUX])
        .str(b"repl-id")
        .str(id40.as_bytes())
        .end();
    assert_eq!(
        load(&f, 16, &opts()).unwrap().repl_id(),
        Some(id40.as_str())
    );
}

#[test]
fn big_files_checksum_on_a_second_thread() {
    // A list of a few MiB, written by kura's own encoder (several quicklist nodes).
    let mut l = List::new();
    for i in 0..60_000u32 {
        l.push_back(format!("{{\"n\":{i},\"msg\":\"record number {i} of many\"}}").as_bytes());
    }
    let v = Value::List(Arc::new(l));
    let mut f = File::new("0010")
        .raw(b"\xfe\x00")
        .key(types::LIST_QUICKLIST_2, "log");
    let no_lzf = WriteOpts {
        compress: false,
        ..WriteOpts::default()
    };
    write_object(&mut f.0, &v, &no_lzf).unwrap();
    let f = f.string_key("tail", &"z".repeat(100)).end();
    assert!(f.len() > PARALLEL_CRC_MIN, "{}", f.len());
    let l = load(&f, 16, &opts()).unwrap();
    assert_eq!(l.checksum, Checksum::Verified);
    assert_eq!(l.keys_loaded, 2);
    match &l.keyspace.dbs[0].get(b"log").unwrap().value {
        Value::List(got) => assert_eq!(got.len(), 60_000),
        _ => panic!(),
    }
    // A flipped byte inside a list element: parses, fails the checksum.
    let mut bad = f.clone();
    let at = f.len() / 2;
    let at = at + bad[at..].iter().position(|b| *b == b'r').unwrap();
    bad[at] = b'R';
    assert_eq!(load(&bad, 16, &opts()).unwrap_err().kind(), "checksum");
    // Trailing bytes and truncation stop the CRC thread and report the parse error.
    let mut long = f.clone();
    long.extend_from_slice(b"junk");
    assert_eq!(
        load(&long, 16, &opts()).unwrap_err().kind(),
        "trailing_data"
    );
    assert_eq!(
        load(&f[..f.len() - 100], 16, &opts()).unwrap_err().kind(),
        "truncated"
    );
}
