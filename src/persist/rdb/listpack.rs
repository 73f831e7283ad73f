//! Listpacks as Redis 7.0 builds them (`listpack.c`, `shared/spec/redis.md` §3.5): the
//! blob inside `HASH_LISTPACK` values and `QUICKLIST_2` nodes.
//!
//! ```text
//! <total bytes: u32 LE> <count: u16 LE, 65535 = unknown> <entry>* 0xFF
//! entry = <encoding + data> <backlen: size of encoding + data, 1..5 bytes>
//! ```
//!
//! Elements that are canonical decimal integers (`lpStringToInt64`, i.e. `string2ll`) are
//! stored in the smallest integer encoding, everything else as a string; the builder does
//! the same so the bytes match redis-server's for the same pushes.

use super::RdbError;
use crate::resp::decode::parse_i64;
use crate::resp::encode::fmt_i64;

/// Bytes of the header (total bytes + count).
pub const HEADER: usize = 6;
/// The end marker.
pub const EOF: u8 = 0xff;
/// Count value meaning "walk the entries to count them".
pub const COUNT_UNKNOWN: u16 = u16::MAX;
/// Size of an empty listpack (`lpNew`): header + end marker.
pub const EMPTY_BYTES: usize = HEADER + 1;

/// The encoding an element gets: an integer (by `string2ll` rules) or a string.
enum Enc {
    Int(i64),
    Str,
}

fn classify(v: &[u8]) -> Enc {
    match parse_i64(v) {
        Some(n) => Enc::Int(n),
        None => Enc::Str,
    }
}

/// Returns the size of the encoding + data part for `v` (`lpEncodeGetType`'s `enclen`).
fn encoded_len(v: &[u8]) -> usize {
    match classify(v) {
        Enc::Int(n) => int_len(n),
        Enc::Str => str_header_len(v.len()) + v.len(),
    }
}

fn int_len(n: i64) -> usize {
    match n {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

fn str_header_len(len: usize) -> usize {
    if len < 64 {
        1
    } else if len < 4096 {
        2
    } else {
        5
    }
}

/// Returns how many bytes the backlen of an `l`-byte entry takes (`lpEncodeBacklen`).
fn backlen_len(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Returns the bytes `v` occupies as a listpack entry, backlen included.
///
/// The quicklist split rule needs the node's exact byte size before deciding where an
/// element goes.
pub fn entry_size(v: &[u8]) -> usize {
    let l = encoded_len(v);
    l + backlen_len(l)
}

/// Appends the entry for `v` (encoding, data, backlen) to `out` (`lpAppend`).
pub fn push_entry(out: &mut Vec<u8>, v: &[u8]) {
    let start = out.len();
    match classify(v) {
        Enc::Int(n) => push_int(out, n),
        Enc::Str => {
            let len = v.len();
            if len < 64 {
                out.push(0x80 | len as u8);
            } else if len < 4096 {
                out.push(0xe0 | (len >> 8) as u8);
                out.push(len as u8);
            } else {
                out.push(0xf0);
                out.extend_from_slice(&(len as u32).to_le_bytes());
            }
            out.extend_from_slice(v);
        }
    }
    let l = out.len() - start;
    push_backlen(out, l);
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    match int_len(n) {
        1 => out.push(n as u8),
        2 => {
            // 13-bit two's complement: negative values are stored as 8192 + n.
            let u = if n < 0 { (1 << 13) + n } else { n } as u16;
            out.push(0xc0 | (u >> 8) as u8);
            out.push(u as u8);
        }
        3 => {
            out.push(0xf1);
            out.extend_from_slice(&(n as i16).to_le_bytes());
        }
        4 => {
            out.push(0xf2);
            out.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
        }
        5 => {
            out.push(0xf3);
            out.extend_from_slice(&(n as i32).to_le_bytes());
        }
        _ => {
            out.push(0xf4);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends the backlen of an `l`-byte entry: big-endian 7-bit groups, every byte but the
/// first with bit 7 set, so it can be read right to left.
fn push_backlen(out: &mut Vec<u8>, l: usize) {
    let n = backlen_len(l);
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { group } else { group | 128 });
    }
}

/// Builds one listpack by appending elements, as `lpNew` + `lpAppend` would.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Returns an empty listpack under construction.
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// Returns an empty listpack with room for about `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(EMPTY_BYTES));
        buf.extend_from_slice(&[0; HEADER]);
        Builder { buf, count: 0 }
    }

    /// Appends one element.
    pub fn push(&mut self, v: &[u8]) {
        push_entry(&mut self.buf, v);
        self.count += 1;
    }

    /// Returns the size the listpack has now (`lpBytes`), end marker included.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Returns the number of elements.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Finishes the header and the end marker and returns the listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(EOF);
        let total = self.buf.len() as u32;
        let count = self.count.min(COUNT_UNKNOWN as usize) as u16;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

fn corrupt(at: usize) -> RdbError {
    RdbError::Corrupt {
        what: "listpack",
        at,
    }
}

/// Walks every element of the listpack `lp`, calling `f` with its bytes (integers in decimal);
/// returns the number of elements.
///
/// Checks what Redis's deep validation (`lpValidateIntegrity` with `deep`) checks: the header's
/// size equals the blob, each entry lies inside it, each backlen matches its entry, the end
/// marker is last, and the header count (unless 65535) equals the entries found.
pub fn for_each(
    lp: &[u8],
    mut f: impl FnMut(&[u8]) -> Result<(), RdbError>,
) -> Result<usize, RdbError> {
    if lp.len() < EMPTY_BYTES {
        return Err(corrupt(0));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    let count = u16::from_le_bytes([lp[4], lp[5]]);
    if total != lp.len() {
        return Err(corrupt(0));
    }
    let mut p = HEADER;
    let mut n = 0usize;
    let mut num = [0u8; 20];
    loop {
        let b = *lp.get(p).ok_or_else(|| corrupt(p))?;
        if b == EOF {
            if p != lp.len() - 1 {
                return Err(corrupt(p));
            }
            break;
        }
        let int = |len: usize| -> Result<i64, RdbError> {
            let d = lp.get(p + 1..p + 1 + len).ok_or_else(|| corrupt(p))?;
            let mut le = [0u8; 8];
            le[..len].copy_from_slice(d);
            // Sign-extend from the top byte of the stored width.
            let shift = 64 - 8 * len as u32;
            Ok((i64::from_le_bytes(le) << shift) >> shift)
        };
        // (header bytes, data bytes, value if an integer)
        let (hdr, data, value): (usize, usize, Option<i64>) = if b & 0x80 == 0 {
            (1, 0, Some((b & 0x7f) as i64))
        } else if b & 0xc0 == 0x80 {
            (1, (b & 0x3f) as usize, None)
        } else if b & 0xe0 == 0xc0 {
            let y = *lp.get(p + 1).ok_or_else(|| corrupt(p))? as i64;
            let u = (((b & 0x1f) as i64) << 8) | y;
            (2, 0, Some(if u >= 4096 { u - 8192 } else { u }))
        } else if b & 0xf0 == 0xe0 {
            let y = *lp.get(p + 1).ok_or_else(|| corrupt(p))? as usize;
            (2, (((b & 0x0f) as usize) << 8) | y, None)
        } else {
            match b {
                0xf0 => {
                    let d = lp.get(p + 1..p + 5).ok_or_else(|| corrupt(p))?;
                    (
                        5,
                        u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize,
                        None,
                    )
                }
                0xf1 => (3, 0, Some(int(2)?)),
                0xf2 => (4, 0, Some(int(3)?)),
                0xf3 => (5, 0, Some(int(4)?)),
                0xf4 => (9, 0, Some(int(8)?)),
                _ => return Err(corrupt(p)),
            }
        };
        let l = hdr.checked_add(data).ok_or_else(|| corrupt(p))?;
        let bl = backlen_len(l);
        let end = p
            .checked_add(l)
            .and_then(|e| e.checked_add(bl))
            .ok_or_else(|| corrupt(p))?;
        // The entry and its backlen must end before the end marker.
        if end >= lp.len() {
            return Err(corrupt(p));
        }
        if decode_backlen(&lp[p + l..end]) != Some(l) {
            return Err(corrupt(p + l));
        }
        match value {
            Some(v) => f(fmt_i64(v, &mut num))?,
            None => f(&lp[p + hdr..p + l])?,
        }
        n += 1;
        p = end;
    }
    if count != COUNT_UNKNOWN && count as usize != n {
        return Err(corrupt(4));
    }
    Ok(n)
}

/// Reads a backlen written left to right: the first byte holds the most significant group
/// and has bit 7 clear, every later byte has it set (`lpDecodeBacklen` reads it backwards).
fn decode_backlen(b: &[u8]) -> Option<usize> {
    let (first, rest) = b.split_first()?;
    if first & 128 != 0 || rest.iter().any(|x| x & 128 == 0) {
        return None;
    }
    Some(b.iter().fold(0, |v, x| (v << 7) | (x & 127) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(items: &[&[u8]]) -> Vec<u8> {
        let mut b = Builder::new();
        for i in items {
            b.push(i);
        }
        b.finish()
    }

    fn entry(v: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_entry(&mut out, v);
        assert_eq!(out.len(), entry_size(v));
        out
    }

    #[test]
    fn matches_the_real_rdb() {
        // `RPUSH l a b c 7 -300 70000` in a 7.0.15 RDB (`shared/spec/redis.md` §3.8).
        let got = lp(&[b"a", b"b", b"c", b"7", b"-300", b"70000"]);
        let want = [
            0x1a, 0, 0, 0, 6, 0, 0x81, b'a', 2, 0x81, b'b', 2, 0x81, b'c', 2, 7, 1, 0xde, 0xd4, 2,
            0xf2, 0x70, 0x11, 0x01, 4, 0xff,
        ];
        assert_eq!(got, want);
        // `HSET h f v n 42`.
        let got = lp(&[b"f", b"v", b"n", b"42"]);
        let want = [
            0x12, 0, 0, 0, 4, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0x81, b'n', 2, 0x2a, 1, 0xff,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn integer_boundaries() {
        assert_eq!(entry(b"0"), [0x00, 1]);
        assert_eq!(entry(b"127"), [0x7f, 1]);
        assert_eq!(entry(b"128"), [0xc0, 0x80, 2]);
        assert_eq!(entry(b"-1"), [0xdf, 0xff, 2]);
        assert_eq!(entry(b"4095"), [0xcf, 0xff, 2]);
        assert_eq!(entry(b"-4096"), [0xd0, 0x00, 2]);
        assert_eq!(entry(b"4096"), [0xf1, 0x00, 0x10, 3]);
        assert_eq!(entry(b"-4097"), [0xf1, 0xff, 0xef, 3]);
        assert_eq!(entry(b"32767"), [0xf1, 0xff, 0x7f, 3]);
        assert_eq!(entry(b"32768"), [0xf2, 0x00, 0x80, 0x00, 4]);
        assert_eq!(entry(b"-8388608"), [0xf2, 0x00, 0x00, 0x80, 4]);
        assert_eq!(entry(b"8388608"), [0xf3, 0x00, 0x00, 0x80, 0x00, 5]);
        assert_eq!(entry(b"-2147483648"), [0xf3, 0, 0, 0, 0x80, 5]);
        assert_eq!(entry(b"2147483648"), [0xf4, 0, 0, 0, 0x80, 0, 0, 0, 0, 9]);
        assert_eq!(
            entry(b"-9223372036854775808"),
            [0xf4, 0, 0, 0, 0, 0, 0, 0, 0x80, 9]
        );
        // Not canonical: strings.
        assert_eq!(entry(b"007"), [0x83, b'0', b'0', b'7', 4]);
        assert_eq!(entry(b"-0"), [0x82, b'-', b'0', 3]);
        assert_eq!(entry(b"+1"), [0x82, b'+', b'1', 3]);
        assert_eq!(entry(b""), [0x80, 1]);
        // One past i64::MAX.
        assert_eq!(entry(b"9223372036854775808")[0], 0x80 | 19);
    }

    #[test]
    fn string_boundaries_and_backlens() {
        let s63 = vec![b'x'; 63];
        let e = entry(&s63);
        assert_eq!((e[0], e.len(), e[64]), (0x80 | 63, 65, 64));
        let s64 = vec![b'x'; 64];
        let e = entry(&s64);
        assert_eq!((e[0], e[1], e.len()), (0xe0, 64, 67));
        assert_eq!(e[66], 66);
        // A 126-byte entry is the last with a 1-byte backlen (L = 2 + 126 = 128 → 2 bytes).
        let e = entry(&[b'x'; 125]);
        assert_eq!(&e[127..], [127]);
        let e = entry(&[b'x'; 126]);
        assert_eq!(&e[128..], [1, 128]);
        let s4095 = vec![b'x'; 4095];
        let e = entry(&s4095);
        assert_eq!((e[0], e[1]), (0xef, 0xff));
        // L = 4097 = 32 * 128 + 1 → [32, 1 | 128].
        assert_eq!(&e[4097..], [32, 129]);
        let s4096 = vec![b'x'; 4096];
        let e = entry(&s4096);
        assert_eq!(&e[..5], [0xf0, 0, 0x10, 0, 0]);
        let big = vec![b'x'; 20_000];
        let e = entry(&big);
        // L = 20005 → 3 bytes: [1, 28 | 128, 37 | 128].
        assert_eq!(&e[20005..], [1, 156, 165]);
    }

    #[test]
    fn parses_what_it_builds() {
        let items: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"0".to_vec(),
            b"-1".to_vec(),
            b"4095".to_vec(),
            b"-4096".to_vec(),
            b"70000".to_vec(),
            b"-2147483648".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"007".to_vec(),
            vec![b'y'; 63],
            vec![b'y'; 64],
            vec![b'y'; 4095],
            vec![b'y'; 4096],
            vec![b'z'; 300_000],
        ];
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        let blob = lp(&refs);
        let mut got = Vec::new();
        let n = for_each(&blob, |v| {
            got.push(v.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(n, items.len());
        assert_eq!(got, items);
    }

    #[test]
    fn rejects_corruption_without_panicking() {
        let blob = lp(&[b"a", b"hello", b"300", b"-70000", &[b'q'; 100]]);
        for cut in 0..blob.len() {
            assert!(for_each(&blob[..cut], |_| Ok(())).is_err());
        }
        for i in 0..blob.len() {
            for x in [
                0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xe0, 0xef, 0xf0, 0xf4, 0xf5, 0xfe, 0xff,
            ] {
                let mut bad = blob.clone();
                bad[i] = x;
                if let Ok(n) = for_each(&bad, |_| Ok(())) {
                    assert!(n <= bad.len());
                }
            }
        }
        // Wrong count in the header.
        let mut bad = blob.clone();
        bad[4] = 9;
        assert!(for_each(&bad, |_| Ok(())).is_err());
        // Unknown count is accepted.
        let mut ok = blob.clone();
        ok[4] = 0xff;
        ok[5] = 0xff;
        assert_eq!(for_each(&ok, |_| Ok(())).unwrap(), 5);
    }
}
