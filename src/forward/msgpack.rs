//! The MessagePack subset the forward door needs: a zero-copy reader over a complete
//! buffer, a skipper that walks nested values without recursion, and writers.
//!
//! Hand-written rather than serde-based (rmp-serde) for three reasons the forward spec
//! makes (`shared/spec/fluent.md` §1.2, §4, §9): `str` payloads must stay raw bytes (no
//! UTF-8 check, fluentd sends gzip data as str32), values are borrowed from the frame
//! instead of copied, and skipping a value needs no allocation at any nesting depth.
//! Format reference: the MessagePack specification, "Formats" table.

/// Why a buffer does not hold a well-formed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends inside a value.
    #[error("msgpack value truncated")]
    Truncated,
    /// The byte 0xc1, which the format reserves ("never used").
    #[error("msgpack reserved byte 0xc1")]
    Reserved,
}

/// One decoded MessagePack item. Containers give only their length: their elements follow
/// in the buffer and are read with further calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// Any signed integer encoding (negative fixint, int 8..64).
    Int(i64),
    /// Any unsigned integer encoding (positive fixint, uint 8..64).
    Uint(u64),
    /// float 32 or float 64.
    Float(f64),
    /// A str: raw bytes, not checked for UTF-8.
    Str(&'a [u8]),
    /// A bin.
    Bin(&'a [u8]),
    /// An array header with its element count.
    Array(u32),
    /// A map header with its pair count.
    Map(u32),
    /// An extension: type tag and payload.
    Ext(i8, &'a [u8]),
}

impl<'a> Value<'a> {
    /// Returns the bytes of a str or bin (clients use either for strings, §1.2).
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Str(b) | Value::Bin(b) => Some(b),
            _ => None,
        }
    }
}

/// How a header announces what follows it.
enum Header {
    /// The value is complete in `len` bytes.
    Scalar { len: usize },
    /// `len` header bytes then `payload` bytes (str, bin, ext).
    Payload { len: usize, payload: usize },
    /// `len` header bytes then `children` nested values (array: n, map: 2n).
    Container { len: usize, children: u64 },
}

fn be(b: &[u8]) -> usize {
    b.iter().fold(0usize, |acc, &x| (acc << 8) | x as usize)
}

/// Decodes the header at the start of `b` without reading any payload.
#[inline]
fn header(b: &[u8]) -> Result<Header, Error> {
    let Some(&m) = b.first() else {
        return Err(Error::Truncated);
    };
    let need = |n: usize| {
        if b.len() < n {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    };
    Ok(match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Header::Scalar { len: 1 },
        0x80..=0x8f => Header::Container {
            len: 1,
            children: 2 * (m & 0x0f) as u64,
        },
        0x90..=0x9f => Header::Container {
            len: 1,
            children: (m & 0x0f) as u64,
        },
        0xa0..=0xbf => Header::Payload {
            len: 1,
            payload: (m & 0x1f) as usize,
        },
        0xc1 => return Err(Error::Reserved),
        0xc4 | 0xd9 => {
            need(2)?;
            Header::Payload {
                len: 2,
                payload: b[1] as usize,
            }
        }
        0xc5 | 0xda => {
            need(3)?;
            Header::Payload {
                len: 3,
                payload: be(&b[1..3]),
            }
        }
        0xc6 | 0xdb => {
            need(5)?;
            Header::Payload {
                len: 5,
                payload: be(&b[1..5]),
            }
        }
        // ext 8/16/32: length, then the type byte, then the payload.
        0xc7 => {
            need(2)?;
            Header::Payload {
                len: 3,
                payload: b[1] as usize,
            }
        }
        0xc8 => {
            need(3)?;
            Header::Payload {
                len: 4,
                payload: be(&b[1..3]),
            }
        }
        0xc9 => {
            need(5)?;
            Header::Payload {
                len: 6,
                payload: be(&b[1..5]),
            }
        }
        0xca => Header::Scalar { len: 5 },
        0xcb => Header::Scalar { len: 9 },
        0xcc | 0xd0 => Header::Scalar { len: 2 },
        0xcd | 0xd1 => Header::Scalar { len: 3 },
        0xce | 0xd2 => Header::Scalar { len: 5 },
        0xcf | 0xd3 => Header::Scalar { len: 9 },
        // fixext 1/2/4/8/16: the type byte, then 2^k payload bytes.
        0xd4 => Header::Payload { len: 2, payload: 1 },
        0xd5 => Header::Payload { len: 2, payload: 2 },
        0xd6 => Header::Payload { len: 2, payload: 4 },
        0xd7 => Header::Payload { len: 2, payload: 8 },
        0xd8 => Header::Payload {
            len: 2,
            payload: 16,
        },
        0xdc => {
            need(3)?;
            Header::Container {
                len: 3,
                children: be(&b[1..3]) as u64,
            }
        }
        0xdd => {
            need(5)?;
            Header::Container {
                len: 5,
                children: be(&b[1..5]) as u64,
            }
        }
        0xde => {
            need(3)?;
            Header::Container {
                len: 3,
                children: 2 * be(&b[1..3]) as u64,
            }
        }
        0xdf => {
            need(5)?;
            Header::Container {
                len: 5,
                children: 2 * be(&b[1..5]) as u64,
            }
        }
    })
}

/// Progress of [`Scanner::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// A whole value of this many bytes starts the buffer.
    Complete(usize),
    /// More bytes are needed; the value is at least this long in total.
    Incomplete(usize),
}

/// Finds where one top-level value ends in a buffer that grows between calls, resuming
/// where the previous call stopped: bytes already walked are never walked again, so a
/// frame arriving in many reads costs time linear in its size (unlike re-parsing from the
/// start on every read, Vector's quadratic fluent decoder, spec §4).
///
/// Nesting is tracked as one counter of values still owed, so depth costs no memory.
#[derive(Debug, Default, Clone)]
pub struct Scanner {
    /// Bytes of the current value already walked.
    pos: usize,
    /// Values still to walk before the current top-level value is complete.
    owed: u64,
}

impl Scanner {
    /// Returns a scanner at the start of a value.
    pub fn new() -> Self {
        Scanner::default()
    }

    /// Walks `buf` (which starts with the current value) as far as it goes.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Scan, Error> {
        if self.pos == 0 && self.owed == 0 {
            self.owed = 1;
        }
        while self.owed > 0 {
            let rest = &buf[self.pos.min(buf.len())..];
            let h = match header(rest) {
                Ok(h) => h,
                Err(Error::Truncated) => return Ok(Scan::Incomplete(self.pos + 1)),
                Err(e) => return Err(e),
            };
            let (step, children) = match h {
                Header::Scalar { len } => (len, 0),
                Header::Payload { len, payload } => (len + payload, 0),
                Header::Container { len, children } => (len, children),
            };
            if rest.len() < step {
                return Ok(Scan::Incomplete(self.pos + step));
            }
            self.pos += step;
            self.owed = (self.owed - 1).saturating_add(children);
        }
        let n = self.pos;
        self.pos = 0;
        Ok(Scan::Complete(n))
    }

    /// Returns how many bytes of the current value are walked (0 between values).
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// A cursor over a buffer that holds complete values.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Returns a reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Returns how many bytes were read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Reports whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Returns the bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    /// Reads one item (a container's header only).
    ///
    /// The forms that make up most of a log record (fixstr, str 8, fixmap, fixarray,
    /// small unsigned integers) are decoded inline; the rest take the general path.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Result<Value<'a>, Error> {
        let b = self.rest();
        if let Some(&m) = b.first() {
            match m {
                0xa0..=0xbf => {
                    let n = (m & 0x1f) as usize;
                    if let Some(s) = b.get(1..1 + n) {
                        self.pos += 1 + n;
                        return Ok(Value::Str(s));
                    }
                }
                0x00..=0x7f => {
                    self.pos += 1;
                    return Ok(Value::Uint(m as u64));
                }
                0x80..=0x8f => {
                    self.pos += 1;
                    return Ok(Value::Map((m & 0x0f) as u32));
                }
                0x90..=0x9f => {
                    self.pos += 1;
                    return Ok(Value::Array((m & 0x0f) as u32));
                }
                // str 8: strings of 32..255 bytes, common in log lines.
                0xd9 => {
                    if let Some(&n) = b.get(1) {
                        let n = n as usize;
                        if let Some(s) = b.get(2..2 + n) {
                            self.pos += 2 + n;
                            return Ok(Value::Str(s));
                        }
                    }
                }
                0xcc => {
                    if let Some(&n) = b.get(1) {
                        self.pos += 2;
                        return Ok(Value::Uint(n as u64));
                    }
                }
                0xcd => {
                    if let Some(p) = b.get(1..3) {
                        self.pos += 3;
                        return Ok(Value::Uint(u16::from_be_bytes([p[0], p[1]]) as u64));
                    }
                }
                _ => {}
            }
        }
        self.next_general(b)
    }

    fn next_general(&mut self, b: &'a [u8]) -> Result<Value<'a>, Error> {
        let h = header(b)?;
        let v = match h {
            Header::Scalar { len } => {
                if b.len() < len {
                    return Err(Error::Truncated);
                }
                let m = b[0];
                let p = &b[1..len];
                match m {
                    0x00..=0x7f => Value::Uint(m as u64),
                    0xe0..=0xff => Value::Int(m as i8 as i64),
                    0xc0 => Value::Nil,
                    0xc2 => Value::Bool(false),
                    0xc3 => Value::Bool(true),
                    0xca => Value::Float(f32::from_be_bytes([p[0], p[1], p[2], p[3]]) as f64),
                    0xcb => Value::Float(f64::from_bits(be(p) as u64)),
                    0xcc..=0xcf => Value::Uint(be(p) as u64),
                    0xd0 => Value::Int(p[0] as i8 as i64),
                    0xd1 => Value::Int(i16::from_be_bytes([p[0], p[1]]) as i64),
                    0xd2 => Value::Int(i32::from_be_bytes([p[0], p[1], p[2], p[3]]) as i64),
                    _ => Value::Int(be(p) as u64 as i64),
                }
            }
            Header::Payload { len, payload } => {
                if b.len() < len + payload {
                    return Err(Error::Truncated);
                }
                let data = &b[len..len + payload];
                match b[0] {
                    0xa0..=0xbf | 0xd9..=0xdb => Value::Str(data),
                    0xc4..=0xc6 => Value::Bin(data),
                    _ => Value::Ext(b[len - 1] as i8, data),
                }
            }
            // Map headers count 2n children; the header width bounds n to 2^32 - 1.
            Header::Container { children, .. } => match b[0] {
                0x80..=0x8f | 0xde | 0xdf => Value::Map((children / 2) as u32),
                _ => Value::Array(children as u32),
            },
        };
        self.pos += match h {
            Header::Scalar { len } | Header::Container { len, .. } => len,
            Header::Payload { len, payload } => len + payload,
        };
        Ok(v)
    }

    /// Skips one whole value, nested elements included; returns its bytes.
    pub fn skip(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        match Scanner::new().scan(self.rest())? {
            Scan::Complete(n) => {
                self.pos += n;
                Ok(&self.buf[start..start + n])
            }
            Scan::Incomplete(_) => Err(Error::Truncated),
        }
    }
}

// ---- WRITERS ----

/// Appends an array header.
pub fn put_array_len(out: &mut Vec<u8>, n: u32) {
    match n {
        0..=15 => out.push(0x90 | n as u8),
        16..=0xffff => {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdd);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a map header.
pub fn put_map_len(out: &mut Vec<u8>, n: u32) {
    match n {
        0..=15 => out.push(0x80 | n as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a str (the bytes need not be UTF-8: they are echoed as received).
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    match n {
        0..=31 => out.push(0xa0 | n as u8),
        32..=0xff => out.extend_from_slice(&[0xd9, n as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s);
}

/// Appends a bin.
pub fn put_bin(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    match n {
        0..=0xff => out.extend_from_slice(&[0xc4, n as u8]),
        0x100..=0xffff => {
            out.push(0xc5);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xc6);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s);
}

/// Appends a boolean.
pub fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xc3 } else { 0xc2 });
}

/// Appends `nil`.
pub fn put_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Appends an unsigned integer in its smallest encoding.
pub fn put_uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a signed integer in its smallest encoding.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        return put_uint(out, n as u64);
    }
    match n {
        -32..=-1 => out.push(n as i8 as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2147483648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a float 64.
pub fn put_f64(out: &mut Vec<u8>, f: f64) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

/// Appends a Fluent EventTime: ext type 0, seconds and nanoseconds as big-endian u32, in
/// the fixext 8 form fluentd and Fluent Bit send (spec §1.3).
pub fn put_event_time(out: &mut Vec<u8>, secs: u32, nanos: u32) {
    out.extend_from_slice(&[0xd7, 0x00]);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Vec<Value<'_>> {
        let mut r = Reader::new(buf);
        let mut v = Vec::new();
        while !r.is_empty() {
            v.push(r.next().unwrap());
        }
        v
    }

    #[test]
    fn reads_every_integer_width() {
        // 7f, -1, cc ff, cd ffff, ce ffffffff, cf 2^64-1, d0 -128, d1 -32768, d2 -2^31, d3 -2^63
        let buf = [
            &[
                0x7f, 0xff, 0xcc, 0xff, 0xcd, 0xff, 0xff, 0xce, 0xff, 0xff, 0xff, 0xff,
            ][..],
            &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xd0, 0x80, 0xd1, 0x80, 0x00, 0xd2, 0x80, 0, 0, 0],
            &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(
            all(&buf),
            vec![
                Value::Uint(127),
                Value::Int(-1),
                Value::Uint(255),
                Value::Uint(65535),
                Value::Uint(u32::MAX as u64),
                Value::Uint(u64::MAX),
                Value::Int(-128),
                Value::Int(-32768),
                Value::Int(i32::MIN as i64),
                Value::Int(i64::MIN),
            ]
        );
    }

    #[test]
    fn reads_strings_raw_and_ext() {
        // str8 "\xff\xfe" (not UTF-8), bin8 [1], fixext8 type 0, ext8 len 8 type 0, ext -1 (4)
        let buf = [
            &[0xd9, 2, 0xff, 0xfe, 0xc4, 1, 1][..],
            &[0xd7, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0xc7, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            &[0xd6, 0xff, 0, 0, 0, 9],
        ]
        .concat();
        assert_eq!(
            all(&buf),
            vec![
                Value::Str(&[0xff, 0xfe]),
                Value::Bin(&[1]),
                Value::Ext(0, &[1, 2, 3, 4, 5, 6, 7, 8]),
                Value::Ext(0, &[1, 2, 3, 4, 5, 6, 7, 8]),
                Value::Ext(-1, &[0, 0, 0, 9]),
            ]
        );
    }

    #[test]
    fn writers_round_trip_through_the_reader() {
        let mut out = Vec::new();
        let ints = [
            0i64, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33, -128, -129,
        ];
        for n in ints {
            put_int(&mut out, n);
        }
        put_int(&mut out, i64::MIN);
        put_uint(&mut out, u64::MAX);
        put_str(&mut out, &[b'x'; 40]);
        put_str(&mut out, &vec![b'y'; 70000]);
        put_bin(&mut out, b"b");
        put_array_len(&mut out, 20);
        put_map_len(&mut out, 70000);
        put_f64(&mut out, 1.5);
        put_bool(&mut out, true);
        put_nil(&mut out);
        let got = all(&out);
        for (i, n) in ints.iter().enumerate() {
            let v = match got[i] {
                Value::Uint(u) => u as i64,
                Value::Int(i) => i,
                ref other => panic!("{other:?}"),
            };
            assert_eq!(v, *n);
        }
        let tail = &got[ints.len()..];
        assert_eq!(tail[0], Value::Int(i64::MIN));
        assert_eq!(tail[1], Value::Uint(u64::MAX));
        assert_eq!(tail[2], Value::Str(&[b'x'; 40]));
        assert_eq!(tail[3].bytes().map(|b| b.len()), Some(70000));
        assert_eq!(tail[4], Value::Bin(b"b"));
        assert_eq!(tail[5], Value::Array(20));
        assert_eq!(tail[6], Value::Map(70000));
        assert_eq!(tail[7], Value::Float(1.5));
        assert_eq!(tail[8], Value::Bool(true));
        assert_eq!(tail[9], Value::Nil);
    }

    #[test]
    fn scanner_resumes_and_finds_the_end() {
        // [ "tag", [ [1, {"a": "b"}] ] ] followed by a second value
        let frame = b"\x92\xa3tag\x91\x92\x01\x81\xa1a\xa1b";
        let mut buf = frame.to_vec();
        buf.push(0xc0);
        let mut s = Scanner::new();
        for cut in 0..frame.len() {
            let mut t = Scanner::new();
            assert!(matches!(t.scan(&buf[..cut]).unwrap(), Scan::Incomplete(_)));
        }
        // Byte by byte: each call continues where the last stopped.
        let mut done = None;
        for cut in 1..=buf.len() {
            if let Scan::Complete(n) = s.scan(&buf[..cut]).unwrap() {
                done = Some((cut, n));
                break;
            }
        }
        assert_eq!(done, Some((frame.len(), frame.len())));
        assert_eq!(s.scan(&buf[frame.len()..]).unwrap(), Scan::Complete(1));
    }

    #[test]
    fn scanner_reports_the_size_a_header_announces() {
        // str32 of 8 MiB: the scanner knows the total before the payload arrives.
        let mut buf = vec![0xdb];
        buf.extend_from_slice(&(8u32 << 20).to_be_bytes());
        assert_eq!(
            Scanner::new().scan(&buf).unwrap(),
            Scan::Incomplete(5 + (8 << 20))
        );
        assert_eq!(Scanner::new().scan(&[0xc1]), Err(Error::Reserved));
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let mut buf = vec![0x91; 1_000_000];
        buf.push(0xc0);
        assert_eq!(
            Scanner::new().scan(&buf).unwrap(),
            Scan::Complete(buf.len())
        );
        assert_eq!(Reader::new(&buf).skip().unwrap().len(), buf.len());
    }
}
