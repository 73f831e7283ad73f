//! Reading values in every string, list and hash encoding that Redis 7.0 or older writes
//! (`rdb.c` `rdbLoadObject`, `shared/spec/redis.md` §3.2–3.7).
//!
//! Pure functions over `&[u8]`: RESTORE has the whole payload in hand, and an RDB reader can
//! hand over its buffer. Every length is checked against the bytes that remain before anything
//! is allocated, so corrupt or hostile input gives an [`RdbError`], never a panic or an absurd
//! allocation (the unit tests feed it truncated, mutated and random bytes to check this).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use super::{container, listpack, lzf, types, unsupported_type_name, ziplist, RdbError};
use crate::store::hash::{self, MAX_LISTPACK_ENTRIES, MAX_LISTPACK_VALUE};
use crate::store::{Hash, List, Str, Value};

/// What a length prefix holds: a length, or the tag of a special string encoding
/// (`rdbLoadLenByRef`'s `isencoded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// A plain length.
    Len(u64),
    /// `11xxxxxx`: the 6-bit encoding tag (0–2 integers, 3 LZF).
    Encoded(u8),
}

/// A cursor over RDB bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Returns the offset of the next byte to read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Returns how many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, RdbError> {
        let b = *self.buf.get(self.pos).ok_or(RdbError::Eof(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` bytes, borrowed from the input.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(RdbError::Eof(self.buf.len()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.read_bytes(N)?);
        Ok(a)
    }

    /// Reads a length prefix or a string-encoding tag (`rdbLoadLenByRef`).
    pub fn read_len(&mut self) -> Result<Len, RdbError> {
        let at = self.pos;
        let b = self.read_u8()?;
        Ok(match b >> 6 {
            0 => Len::Len((b & 0x3f) as u64),
            1 => Len::Len((((b & 0x3f) as u64) << 8) | self.read_u8()? as u64),
            3 => Len::Encoded(b & 0x3f),
            _ => match b {
                0x80 => Len::Len(u32::from_be_bytes(self.read_array()?) as u64),
                0x81 => Len::Len(u64::from_be_bytes(self.read_array()?)),
                _ => return Err(RdbError::BadLength { byte: b, at }),
            },
        })
    }

    /// Reads a length (`rdbLoadLen(rdb, NULL)`: an encoding tag is taken as its 6-bit value,
    /// as Redis does when it does not ask).
    pub fn read_length(&mut self) -> Result<u64, RdbError> {
        Ok(match self.read_len()? {
            Len::Len(n) => n,
            Len::Encoded(t) => t as u64,
        })
    }

    /// Reads a length that counts items of at least one byte each, rejecting a count larger
    /// than the bytes left so callers can size buffers from it.
    fn read_count(&mut self) -> Result<usize, RdbError> {
        let at = self.pos;
        let n = self.read_length()?;
        if n > self.remaining() as u64 {
            return Err(RdbError::TooLong { len: n, at });
        }
        Ok(n as usize)
    }

    /// Reads a string in any encoding (`rdbGenericLoadStringObject`): raw bytes are borrowed,
    /// integers and LZF strings are materialised.
    pub fn read_string(&mut self) -> Result<Cow<'a, [u8]>, RdbError> {
        let at = self.pos;
        match self.read_len()? {
            Len::Len(n) => {
                if n > self.remaining() as u64 {
                    return Err(RdbError::TooLong { len: n, at });
                }
                Ok(Cow::Borrowed(self.read_bytes(n as usize)?))
            }
            Len::Encoded(0) => Ok(int_string(self.read_u8()? as i8 as i64)),
            Len::Encoded(1) => Ok(int_string(i16::from_le_bytes(self.read_array()?) as i64)),
            Len::Encoded(2) => Ok(int_string(i32::from_le_bytes(self.read_array()?) as i64)),
            Len::Encoded(3) => {
                let clen_at = self.pos;
                let clen = self.read_length()?;
                let ulen_at = self.pos;
                let ulen = self.read_length()?;
                if clen > self.remaining() as u64 {
                    return Err(RdbError::TooLong {
                        len: clen,
                        at: clen_at,
                    });
                }
                // No LZF stream expands further than MAX_RATIO: refuse a length it cannot
                // reach before allocating for it.
                if ulen > clen.saturating_mul(lzf::MAX_RATIO as u64) {
                    return Err(RdbError::TooLong {
                        len: ulen,
                        at: ulen_at,
                    });
                }
                let c = self.read_bytes(clen as usize)?;
                if ulen == 0 {
                    // Redis compares lzf_decompress's result (0 on any error) with the length,
                    // so an announced length of 0 is an empty string whatever the data.
                    return Ok(Cow::Borrowed(&[]));
                }
                Ok(Cow::Owned(lzf::decompress(c, ulen as usize)?))
            }
            Len::Encoded(t) => Err(RdbError::BadStringEncoding(t as u64)),
        }
    }

    /// Reads a value of type `ty` (`rdbLoadObject`).
    pub fn read_object(&mut self, ty: u8) -> Result<Value, RdbError> {
        match ty {
            types::STRING => Ok(Value::Str(Str::from(&self.read_string()?[..]))),
            types::LIST => {
                let n = self.read_count()?;
                let mut l = List::new();
                for _ in 0..n {
                    l.push_back(&self.read_string()?);
                }
                list_value(l)
            }
            types::LIST_ZIPLIST => {
                let blob = self.read_string()?;
                let mut l = List::new();
                ziplist::for_each(&blob, |e| {
                    l.push_back(e);
                    Ok(())
                })?;
                list_value(l)
            }
            types::LIST_QUICKLIST | types::LIST_QUICKLIST_2 => {
                let nodes = self.read_count()?;
                let mut l = List::new();
                for _ in 0..nodes {
                    let c = if ty == types::LIST_QUICKLIST_2 {
                        self.read_length()?
                    } else {
                        container::PACKED
                    };
                    let at = self.pos;
                    let blob = self.read_string()?;
                    match c {
                        container::PLAIN => l.push_back(&blob),
                        container::PACKED if ty == types::LIST_QUICKLIST_2 => {
                            listpack::for_each(&blob, |e| {
                                l.push_back(e);
                                Ok(())
                            })?;
                        }
                        container::PACKED => {
                            ziplist::for_each(&blob, |e| {
                                l.push_back(e);
                                Ok(())
                            })?;
                        }
                        _ => {
                            return Err(RdbError::Corrupt {
                                what: "quicklist container",
                                at,
                            })
                        }
                    }
                }
                list_value(l)
            }
            types::HASH => {
                let n = self.read_count()?;
                let mut h = Hash::new();
                // Redis 7.0 loads a small hash into a listpack without looking for duplicate
                // fields (that is deep sanitisation, off by default); once the hash is a
                // hashtable (too many pairs, or a long field or value) it refuses them.
                let mut table = n > MAX_LISTPACK_ENTRIES;
                for _ in 0..n {
                    let f = to_bytes(self.read_string()?);
                    let v = to_bytes(self.read_string()?);
                    table |= f.len() > MAX_LISTPACK_VALUE || v.len() > MAX_LISTPACK_VALUE;
                    if h.get(&f).is_some() {
                        if table {
                            return Err(RdbError::DuplicateField);
                        }
                        continue;
                    }
                    h.set(&f, &v);
                }
                hash_value(h)
            }
            types::HASH_ZIPMAP => {
                let blob = self.read_string()?;
                let mut h = Hash::new();
                ziplist::for_each_zipmap(&blob, |f, v| {
                    if h.get(f).is_some() {
                        return Err(RdbError::DuplicateField);
                    }
                    // Redis 7.0 converts a loaded zipmap to a hashtable for a long field or
                    // value only, not for the number of pairs.
                    if f.len() > MAX_LISTPACK_VALUE || v.len() > MAX_LISTPACK_VALUE {
                        h.set(f, v);
                    } else {
                        h.set_keep_encoding(f, v);
                    }
                    Ok(())
                })?;
                hash_value(h)
            }
            types::HASH_ZIPLIST | types::HASH_LISTPACK => {
                let at = self.pos;
                let blob = self.read_string()?;
                let mut h = hash::Loader::new();
                // The pending field (`have`), copied: an entry may be a formatted integer.
                let mut field: Vec<u8> = Vec::new();
                let mut have = false;
                // Converting a ziplist always checks for duplicate fields; a listpack is only
                // checked by deep sanitisation (off by default), so there the first one wins.
                // Either way Redis 7.0 keeps the result a listpack whatever its size.
                let strict = ty == types::HASH_ZIPLIST;
                let add = |e: &[u8]| {
                    have = !have;
                    if have {
                        field.clear();
                        field.extend_from_slice(e);
                        Ok(())
                    } else if h.add(&field, e) || !strict {
                        Ok(())
                    } else {
                        Err(RdbError::DuplicateField)
                    }
                };
                let n = if ty == types::HASH_LISTPACK {
                    listpack::for_each(&blob, add)?
                } else {
                    ziplist::for_each(&blob, add)?
                };
                if n % 2 != 0 {
                    return Err(RdbError::Corrupt {
                        what: "hash (odd number of elements)",
                        at,
                    });
                }
                let h = h.finish();
                hash_value(h)
            }
            _ => Err(match unsupported_type_name(ty) {
                Some(name) => RdbError::UnsupportedType { ty, name },
                None => RdbError::UnknownType(ty),
            }),
        }
    }
}

fn int_string(v: i64) -> Cow<'static, [u8]> {
    let mut buf = [0u8; 20];
    Cow::Owned(crate::resp::encode::fmt_i64(v, &mut buf).to_vec())
}

fn to_bytes(c: Cow<'_, [u8]>) -> Bytes {
    match c {
        Cow::Borrowed(s) => Bytes::copy_from_slice(s),
        Cow::Owned(v) => Bytes::from(v),
    }
}

/// Redis refuses empty aggregates (`rdbLoadObject` … `goto emptykey`).
fn list_value(l: List) -> Result<Value, RdbError> {
    if l.is_empty() {
        return Err(RdbError::Empty("list"));
    }
    Ok(Value::List(Arc::new(l)))
}

fn hash_value(h: Hash) -> Result<Value, RdbError> {
    if h.is_empty() {
        return Err(RdbError::Empty("hash"));
    }
    Ok(Value::Hash(Arc::new(h)))
}

/// Reads a type byte and the value after it from the start of `buf` (a DUMP payload's
/// layout); returns the value and the bytes consumed.
pub fn read_value(buf: &[u8]) -> Result<(Value, usize), RdbError> {
    let mut r = Reader::new(buf);
    let ty = r.read_u8()?;
    let v = r.read_object(ty)?;
    Ok((v, r.pos()))
}

/// Reads a value of type `ty` from the start of `buf`; returns it and the bytes consumed.
pub fn read_object(ty: u8, buf: &[u8]) -> Result<(Value, usize), RdbError> {
    let mut r = Reader::new(buf);
    let v = r.read_object(ty)?;
    Ok((v, r.pos()))
}

#[cfg(test)]
mod tests {
    use super::super::encode::{write_value, WriteOpts};
    use super::super::ziplist::tests::{build, build_zipmap};
    use super::*;

    fn list_items(v: &Value) -> Vec<Vec<u8>> {
        match v {
            Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
            other => panic!("not a list: {other:?}"),
        }
    }

    fn hash_items(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
        match v {
            Value::Hash(h) => h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(),
            other => panic!("not a hash: {other:?}"),
        }
    }

    fn string(v: &Value) -> Vec<u8> {
        match v {
            Value::Str(s) => s.to_vec(),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn rdb_str(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::super::write_length(&mut out, s.len() as u64).unwrap();
        out.extend_from_slice(s);
        out
    }

    #[test]
    fn strings_in_every_encoding() {
        let (v, n) = read_value(&[0, 2, b'v', b'1', 0xee]).unwrap();
        assert_eq!((string(&v), n), (b"v1".to_vec(), 4));
        assert_eq!(string(&read_value(&[0, 0xc0, 0x80]).unwrap().0), b"-128");
        assert_eq!(
            string(&read_value(&[0, 0xc1, 0x39, 0x30]).unwrap().0),
            b"12345"
        );
        assert_eq!(
            string(&read_value(&[0, 0xc2, 0, 0, 0, 0x80]).unwrap().0),
            b"-2147483648"
        );
        let lzf = [
            0, 0xc3, 9, 52, 0x01, 0x61, 0x61, 0xe0, 0x27, 0x00, 0x01, 0x61, 0x61,
        ];
        assert_eq!(string(&read_value(&lzf).unwrap().0), vec![b'a'; 52]);
        assert!(matches!(
            read_value(&[0, 0xc4]),
            Err(RdbError::BadStringEncoding(4))
        ));
        assert!(matches!(
            read_value(&[0, 0x82]),
            Err(RdbError::BadLength { byte: 0x82, .. })
        ));
        // A 14-bit and a 32-bit length.
        let mut p = vec![0, 0x41, 0x2c];
        p.extend_from_slice(&[b'x'; 300]);
        assert_eq!(string(&read_value(&p).unwrap().0).len(), 300);
        let mut p = vec![0, 0x80, 0, 0, 0x40, 0];
        p.extend_from_slice(&[b'x'; 16384]);
        assert_eq!(string(&read_value(&p).unwrap().0).len(), 16384);
    }

    #[test]
    fn absurd_lengths_are_refused_before_allocating() {
        // A 2^63-byte string, a 4-billion element list, an LZF string claiming 4 GiB.
        let huge = [0, 0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_value(&huge), Err(RdbError::TooLong { .. })));
        let list = [1, 0x80, 0xff, 0xff, 0xff, 0xff, 1, b'a'];
        assert!(matches!(read_value(&list), Err(RdbError::TooLong { .. })));
        let lzf = [0, 0xc3, 2, 0x80, 0xff, 0xff, 0xff, 0xff, 0x00, b'a'];
        assert!(matches!(read_value(&lzf), Err(RdbError::TooLong { .. })));
    }

    #[test]
    fn lists_in_every_encoding() {
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"12".to_vec(), vec![b'q'; 300]];
        let refs: Vec<&[u8]> = want.iter().map(|v| v.as_slice()).collect();
        // Type 1: count + strings.
        let mut p = vec![types::LIST, 3];
        for r in &refs {
            p.extend_from_slice(&rdb_str(r));
        }
        assert_eq!(list_items(&read_value(&p).unwrap().0), want);
        // Type 10: a ziplist.
        let mut p = vec![types::LIST_ZIPLIST];
        p.extend_from_slice(&rdb_str(&build(&refs)));
        assert_eq!(list_items(&read_value(&p).unwrap().0), want);
        // Type 14: two ziplist nodes, one of them empty.
        let mut p = vec![types::LIST_QUICKLIST, 2];
        p.extend_from_slice(&rdb_str(&build(&refs)));
        p.extend_from_slice(&rdb_str(&build(&[])));
        assert_eq!(list_items(&read_value(&p).unwrap().0), want);
        // Type 18: a packed node then a plain node.
        let mut lp = listpack::Builder::new();
        lp.push(refs[0]);
        lp.push(refs[1]);
        let mut p = vec![types::LIST_QUICKLIST_2, 2, 2];
        p.extend_from_slice(&rdb_str(&lp.finish()));
        p.push(1);
        p.extend_from_slice(&rdb_str(refs[2]));
        assert_eq!(list_items(&read_value(&p).unwrap().0), want);
        // Container 3 does not exist.
        let p = [types::LIST_QUICKLIST_2, 1, 3, 1, b'a'];
        assert!(matches!(read_value(&p), Err(RdbError::Corrupt { .. })));
        // Empty lists are refused.
        assert_eq!(read_value(&[1, 0]).unwrap_err(), RdbError::Empty("list"));
        assert_eq!(read_value(&[18, 0]).unwrap_err(), RdbError::Empty("list"));
    }

    #[test]
    fn hashes_in_every_encoding() {
        let want = vec![
            (b"f".to_vec(), b"v".to_vec()),
            (b"n".to_vec(), b"42".to_vec()),
        ];
        // Type 4.
        let mut p = vec![types::HASH, 2];
        for (f, v) in &want {
            p.extend_from_slice(&rdb_str(f));
            p.extend_from_slice(&rdb_str(v));
        }
        assert_eq!(hash_items(&read_value(&p).unwrap().0), want);
        // Duplicate fields: the first wins in a small hash (as Redis, which does not look),
        // a big one is refused.
        let p = [types::HASH, 2, 1, b'f', 1, b'v', 1, b'f', 1, b'w'];
        assert_eq!(
            hash_items(&read_value(&p).unwrap().0),
            vec![(b"f".to_vec(), b"v".to_vec())]
        );
        // 600 entries: above hash-max-listpack-entries (512), so loaded as a table.
        let mut p = vec![types::HASH, 0x42, 0x58];
        for i in 0..600 {
            p.extend_from_slice(&rdb_str(format!("f{}", i % 550).as_bytes()));
            p.extend_from_slice(&rdb_str(b"v"));
        }
        assert_eq!(read_value(&p).unwrap_err(), RdbError::DuplicateField);
        let mut p = vec![types::HASH_ZIPLIST];
        p.extend_from_slice(&rdb_str(&build(&[b"f", b"v", b"f", b"w"])));
        assert_eq!(read_value(&p).unwrap_err(), RdbError::DuplicateField);
        // Type 9: zipmap.
        let mut p = vec![types::HASH_ZIPMAP];
        p.extend_from_slice(&rdb_str(&build_zipmap(&[(b"f", b"v"), (b"n", b"42")])));
        assert_eq!(hash_items(&read_value(&p).unwrap().0), want);
        // Type 13: ziplist.
        let mut p = vec![types::HASH_ZIPLIST];
        p.extend_from_slice(&rdb_str(&build(&[b"f", b"v", b"n", b"42"])));
        assert_eq!(hash_items(&read_value(&p).unwrap().0), want);
        // Odd element count.
        let mut p = vec![types::HASH_ZIPLIST];
        p.extend_from_slice(&rdb_str(&build(&[b"f", b"v", b"n"])));
        assert!(matches!(read_value(&p), Err(RdbError::Corrupt { .. })));
        // Type 16: the §3.8 listpack.
        let p = [
            0x10, 0x12, 0x12, 0, 0, 0, 4, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0x81, b'n', 2, 0x2a, 1,
            0xff,
        ];
        assert_eq!(hash_items(&read_value(&p).unwrap().0), want);
        // A big listpack stays a listpack, as in Redis 7.0 (converted on the next write).
        let mut b = listpack::Builder::new();
        for i in 0..200 {
            b.push(format!("f{i}").as_bytes());
            b.push(&[b'v'; 100]);
        }
        let mut p = vec![types::HASH_LISTPACK];
        p.extend_from_slice(&rdb_str(&b.finish()));
        match read_value(&p).unwrap().0 {
            Value::Hash(h) => assert!(h.is_listpack() && h.len() == 200),
            _ => panic!(),
        }
        // A type-4 hash above the listpack limits comes back as a hashtable.
        let mut p = vec![types::HASH, 0x42, 0x58];
        for i in 0..600 {
            p.extend_from_slice(&rdb_str(format!("f{i}").as_bytes()));
            p.extend_from_slice(&rdb_str(b"v"));
        }
        match read_value(&p).unwrap().0 {
            Value::Hash(h) => assert!(!h.is_listpack() && h.len() == 600),
            _ => panic!(),
        }
    }

    #[test]
    fn other_types_are_named() {
        for (ty, name) in [
            (2, "set"),
            (5, "zset"),
            (11, "set (intset)"),
            (17, "zset (listpack)"),
            (19, "stream"),
            (7, "module"),
        ] {
            assert_eq!(
                read_value(&[ty, 1, 1, b'a']).unwrap_err(),
                RdbError::UnsupportedType { ty, name }
            );
        }
        assert_eq!(read_value(&[20, 0]).unwrap_err(), RdbError::UnknownType(20));
        assert_eq!(read_value(&[]).unwrap_err(), RdbError::Eof(0));
    }

    /// Values of every shape kura holds, for round trips and corruption tests.
    fn samples() -> Vec<Value> {
        let mut out = vec![
            Value::Str(Bytes::from_static(b"hello").into()),
            Value::Str(Bytes::from_static(b"-7").into()),
            Value::Str(Bytes::from(vec![b'z'; 5000]).into()),
            Value::Str(
                Bytes::from((0..3000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()).into(),
            ),
        ];
        let mut l = List::new();
        for i in 0..3000 {
            l.push_back(format!("{{\"n\":{i},\"msg\":\"record number {i}\"}}").as_bytes());
            l.push_back(i.to_string().as_bytes());
        }
        l.push_back(&vec![b'b'; 20_000]);
        out.push(Value::List(Arc::new(l)));
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(
                format!("field{i}").as_bytes(),
                format!("{}", i * 1000).as_bytes(),
            );
        }
        out.push(Value::Hash(Arc::new(h)));
        let mut h = Hash::new();
        for i in 0..300 {
            h.set(
                format!("field{i}").as_bytes(),
                "x".repeat(i % 90).as_bytes(),
            );
        }
        out.push(Value::Hash(Arc::new(h)));
        out
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Str(x), Value::Str(y)) => x == y,
            (Value::List(x), Value::List(y)) => x.iter().eq(y.iter()),
            (Value::Hash(x), Value::Hash(y)) => {
                x.len() == y.len() && x.iter().all(|(f, v)| y.get(f) == Some(v))
            }
            _ => false,
        }
    }

    #[test]
    fn round_trips_with_and_without_compression() {
        for compress in [true, false] {
            let opts = WriteOpts {
                compress,
                ..WriteOpts::default()
            };
            for v in samples() {
                let mut buf = Vec::new();
                write_value(&mut buf, &v, &opts).unwrap();
                let (back, n) = read_value(&buf).unwrap();
                assert_eq!(n, buf.len());
                assert!(same(&v, &back), "{compress} {}", v.type_name());
            }
        }
    }

    #[test]
    fn truncated_and_mutated_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        for v in samples() {
            let mut buf = Vec::new();
            write_value(&mut buf, &v, &WriteOpts::default()).unwrap();
            // Every strict prefix fails (the footer-less value has no slack).
            for cut in (0..buf.len()).step_by(1 + buf.len() / 500) {
                assert!(read_value(&buf[..cut]).is_err(), "prefix {cut} accepted");
            }
            for _ in 0..300 {
                let mut bad = buf.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..bad.len());
                    bad[i] = rng.gen();
                }
                if let Ok((_, n)) = read_value(&bad) {
                    assert!(n <= bad.len());
                }
            }
        }
        // Random garbage after every type byte.
        for _ in 0..2000 {
            let len = rng.gen_range(0..64);
            let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(first) = junk.first_mut() {
                *first = rng.gen_range(0..21);
            }
            if let Ok((_, n)) = read_value(&junk) {
                assert!(n <= junk.len());
            }
        }
    }
}
