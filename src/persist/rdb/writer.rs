//! The RDB file writer (`shared/spec/redis.md` §3.1, §3.8): a point-in-time snapshot to any
//! `io::Write` — a file for SAVE/BGSAVE, and later a replica's socket or an HTTP body (the
//! lesson of Redis's `rio.c`: one serialiser, many sinks).
//!
//! Layout as redis-server 7.0 writes it: `REDIS0010`, AUX fields (`redis-ver`, `redis-bits`,
//! `ctime`, `used-mem`, then `repl-stream-db`/`repl-id`/`repl-offset` when given, `aof-base`),
//! per non-empty database SELECTDB + RESIZEDB + keys (EXPIRETIME_MS before a key with a TTL),
//! EOF, and the CRC64 of everything before it (8 zero bytes with `rdbchecksum no`).

use std::io::{self, Write};

use super::crc64::Crc64Writer;
use super::encode::{value_type, write_length, write_object, write_string, WriteOpts};
use super::{opcode, RDB_VERSION};
use crate::store::Snapshot;

/// The AUX fields of a file: facts about the server that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aux {
    /// `redis-ver`.
    pub redis_ver: String,
    /// `ctime`: unix seconds when the save started.
    pub ctime: i64,
    /// `used-mem`: bytes in use when the save started.
    pub used_mem: u64,
    /// `repl-stream-db`, `repl-id`, `repl-offset`: where in the write stream the snapshot
    /// was taken, so a replica (or a restarted server) can continue from there.
    pub repl: Option<(usize, String, u64)>,
    /// `aof-base`: the file is the base of an AOF.
    pub aof_base: bool,
}

/// Counts of what was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Keys written.
    pub keys: u64,
    /// Of which with an expiry.
    pub expires: u64,
}

fn write_aux<W: Write>(w: &mut W, key: &str, value: &[u8]) -> io::Result<()> {
    w.write_all(&[opcode::AUX])?;
    write_string(w, key.as_bytes(), false)?;
    // Redis writes aux values with rdbSaveRawString: small integers take the int form.
    write_string(w, value, false)
}

/// Writes `snap` as a complete RDB file to `w`; returns the writer and what was written.
pub fn write_rdb<W: Write>(
    w: W,
    snap: &Snapshot,
    aux: &Aux,
    opts: &WriteOpts,
    checksum: bool,
) -> io::Result<(W, Written)> {
    let (w, written) = write_rdb_unsummed(Crc64Writer::new(w), snap, aux, opts)?;
    let crc = if checksum { w.crc() } else { 0 };
    let mut inner = w.into_inner();
    inner.write_all(&crc.to_le_bytes())?;
    Ok((inner, written))
}

/// Writes everything of the file but its trailing checksum (through `EOF`), for a sink that
/// computes the CRC64 itself (a writer thread: `persist::save`'s offloaded SAVE) and appends it.
pub fn write_rdb_unsummed<W: Write>(
    mut w: W,
    snap: &Snapshot,
    aux: &Aux,
    opts: &WriteOpts,
) -> io::Result<(W, Written)> {
    w.write_all(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
    write_aux(&mut w, "redis-ver", aux.redis_ver.as_bytes())?;
    write_aux(&mut w, "redis-bits", b"64")?;
    write_aux(&mut w, "ctime", aux.ctime.to_string().as_bytes())?;
    write_aux(&mut w, "used-mem", aux.used_mem.to_string().as_bytes())?;
    if let Some((db, id, offset)) = &aux.repl {
        write_aux(&mut w, "repl-stream-db", db.to_string().as_bytes())?;
        write_aux(&mut w, "repl-id", id.as_bytes())?;
        write_aux(&mut w, "repl-offset", offset.to_string().as_bytes())?;
    }
    write_aux(&mut w, "aof-base", if aux.aof_base { b"1" } else { b"0" })?;
    let mut written = Written::default();
    for db in 0..snap.db_count() {
        let (mut keys, mut expires) = (0u64, 0u64);
        for (_, e) in snap.iter_db(db) {
            keys += 1;
            expires += u64::from(e.expire_at().is_some());
        }
        if keys == 0 {
            continue;
        }
        w.write_all(&[opcode::SELECTDB])?;
        write_length(&mut w, db as u64)?;
        w.write_all(&[opcode::RESIZEDB])?;
        write_length(&mut w, keys)?;
        write_length(&mut w, expires)?;
        for (key, entry) in snap.iter_db(db) {
            if let Some(at) = entry.expire_at() {
                w.write_all(&[opcode::EXPIRETIME_MS])?;
                w.write_all(&at.to_le_bytes())?;
            }
            w.write_all(&[value_type(&entry.value)])?;
            write_string(&mut w, key, opts.compress)?;
            write_object(&mut w, &entry.value, opts)?;
            opts.pause_after_key();
        }
        written.keys += keys;
        written.expires += expires;
    }
    w.write_all(&[opcode::EOF])?;
    Ok((w, written))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::persist::rdb::crc64::crc64;
    use crate::store::{Entry, Keyspace, Value};

    #[test]
    fn writes_redis_layout_with_checksum() {
        let mut ks = Keyspace::new(2);
        ks.dbs[0].insert(
            Bytes::from_static(b"k1"),
            Entry::new(Value::Str(Bytes::from_static(b"v1").into()), 0),
        );
        ks.dbs[0].insert(
            Bytes::from_static(b"e"),
            Entry::new(Value::Str(Bytes::from_static(b"1").into()), 0)
                .with_expire(Some(1_795_529_187_984)),
        );
        ks.dbs[1].insert(
            Bytes::from_static(b"other"),
            Entry::new(Value::Str(Bytes::from_static(b"x").into()), 0),
        );
        let aux = Aux {
            redis_ver: "7.0.15".into(),
            ctime: 1_795_529_000,
            used_mem: 1_000_000,
            repl: None,
            aof_base: false,
        };
        let (out, n) = write_rdb(
            Vec::new(),
            &ks.snapshot(),
            &aux,
            &WriteOpts::default(),
            true,
        )
        .unwrap();
        assert_eq!(
            n,
            Written {
                keys: 3,
                expires: 1
            }
        );
        assert!(out.starts_with(b"REDIS0010\xfa\x09redis-ver\x067.0.15\xfa\x0aredis-bits\xc0\x40"));
        // db 1 holds one key: SELECTDB 1, RESIZEDB 1 0, STRING "other" "x"
        let tail = b"\xfe\x01\xfb\x01\x00\x00\x05other\x01x\xff";
        let end = out.len() - 8;
        assert_eq!(&out[end - tail.len()..end], tail);
        assert_eq!(out[end..], crc64(0, &out[..end]).to_le_bytes());
        // EXPIRETIME_MS little endian before the key
        let mut exp = vec![0xfc];
        exp.extend_from_slice(&1_795_529_187_984i64.to_le_bytes());
        exp.extend_from_slice(b"\x00\x01e\xc0\x01");
        assert!(out.windows(exp.len()).any(|w| w == exp));
        // rdbchecksum no: 8 zero bytes
        let (out, _) = write_rdb(
            Vec::new(),
            &ks.snapshot(),
            &aux,
            &WriteOpts::default(),
            false,
        )
        .unwrap();
        assert_eq!(out[out.len() - 8..], [0u8; 8]);
    }
}
