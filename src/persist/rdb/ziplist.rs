//! Readers for the encodings older Redis versions wrote and 7.0 still loads
//! (`shared/spec/redis.md` §3.6–3.7): ziplists (list type 10, hash type 13, quicklist type 14
//! nodes; Redis ≤ 6.2) and zipmaps (hash type 9; Redis ≤ 2.4). Nothing writes these any more,
//! so there is no builder.
//!
//! ```text
//! ziplist = <zlbytes: u32 LE> <zltail: u32 LE> <zllen: u16 LE> <entry>* 0xFF
//! entry   = <prevlen: 1 byte, or 0xFE + u32 LE> <encoding> <data>
//! zipmap  = <zmlen: 1 byte> { <len> key <len> <free: 1 byte> value <free bytes> }* 0xFF
//! ```

use super::RdbError;
use crate::resp::encode::fmt_i64;

const ZL_HEADER: usize = 10;
const ZL_END: u8 = 0xff;
const ZL_BIGLEN: u8 = 0xfe;

fn corrupt(what: &'static str, at: usize) -> RdbError {
    RdbError::Corrupt { what, at }
}

/// Walks every element of the ziplist `zl`, calling `f` with its bytes (integers in decimal);
/// returns the number of elements.
///
/// Checks what Redis's deep `ziplistValidateIntegrity` checks: sizes in the header, entries
/// inside the blob, each prevlen equal to the previous entry's size, the tail offset, the end
/// marker, and the count unless it is 65535.
pub fn for_each(
    zl: &[u8],
    mut f: impl FnMut(&[u8]) -> Result<(), RdbError>,
) -> Result<usize, RdbError> {
    let bad = |at| corrupt("ziplist", at);
    if zl.len() < ZL_HEADER + 1 {
        return Err(bad(0));
    }
    let zlbytes = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    let zltail = u32::from_le_bytes([zl[4], zl[5], zl[6], zl[7]]) as usize;
    let zllen = u16::from_le_bytes([zl[8], zl[9]]);
    if zlbytes != zl.len() || zl[zl.len() - 1] != ZL_END {
        return Err(bad(0));
    }
    let mut p = ZL_HEADER;
    let mut prev_size = 0usize;
    let mut last = ZL_HEADER;
    let mut n = 0usize;
    let mut num = [0u8; 20];
    while zl[p] != ZL_END {
        let start = p;
        // prevlen
        let prevlen = if zl[p] < ZL_BIGLEN {
            p += 1;
            zl[p - 1] as usize
        } else {
            let d = zl.get(p + 1..p + 5).ok_or_else(|| bad(p))?;
            p += 5;
            u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize
        };
        if prevlen != prev_size {
            return Err(bad(start));
        }
        let enc = *zl.get(p).ok_or_else(|| bad(p))?;
        let int = |len: usize| -> Result<i64, RdbError> {
            let d = zl.get(p + 1..p + 1 + len).ok_or_else(|| bad(p))?;
            let mut le = [0u8; 8];
            le[..len].copy_from_slice(d);
            let shift = 64 - 8 * len as u32;
            Ok((i64::from_le_bytes(le) << shift) >> shift)
        };
        // (encoding bytes, data bytes, value if an integer)
        let (hdr, data, value): (usize, usize, Option<i64>) = match enc >> 6 {
            0 => (1, (enc & 0x3f) as usize, None),
            1 => {
                let y = *zl.get(p + 1).ok_or_else(|| bad(p))? as usize;
                (2, (((enc & 0x3f) as usize) << 8) | y, None)
            }
            2 => {
                let d = zl.get(p + 1..p + 5).ok_or_else(|| bad(p))?;
                (
                    5,
                    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize,
                    None,
                )
            }
            _ => match enc {
                0xc0 => (1, 0, Some(int(2)?)),
                0xd0 => (1, 0, Some(int(4)?)),
                0xe0 => (1, 0, Some(int(8)?)),
                0xf0 => (1, 0, Some(int(3)?)),
                0xfe => (1, 0, Some(int(1)?)),
                0xf1..=0xfd => (1, 0, Some((enc & 0x0f) as i64 - 1)),
                _ => return Err(bad(p)),
            },
        };
        let int_bytes = match enc {
            0xc0 => 2,
            0xd0 => 4,
            0xe0 => 8,
            0xf0 => 3,
            0xfe => 1,
            _ => 0,
        };
        let body = hdr + if value.is_some() { int_bytes } else { data };
        let end = p.checked_add(body).ok_or_else(|| bad(p))?;
        // The entry must end before the end marker.
        if end >= zl.len() {
            return Err(bad(p));
        }
        match value {
            Some(v) => f(fmt_i64(v, &mut num))?,
            None => f(&zl[p + hdr..end])?,
        }
        n += 1;
        prev_size = end - start;
        last = start;
        p = end;
    }
    if p != zl.len() - 1 || last != zltail {
        return Err(bad(p));
    }
    if zllen != u16::MAX && zllen as usize != n {
        return Err(bad(8));
    }
    Ok(n)
}

/// Walks the zipmap `zm`, calling `f(key, value)` for each pair; returns the number of pairs.
pub fn for_each_zipmap(
    zm: &[u8],
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), RdbError>,
) -> Result<usize, RdbError> {
    let bad = |at| corrupt("zipmap", at);
    let count = *zm.first().ok_or_else(|| bad(0))?;
    let len_at = |p: usize| -> Result<(usize, usize), RdbError> {
        let b = *zm.get(p).ok_or_else(|| bad(p))?;
        if b < ZL_BIGLEN {
            Ok((b as usize, 1))
        } else {
            // zipmap.c copies the 4 bytes in host order; every server that wrote these was LE.
            let d = zm.get(p + 1..p + 5).ok_or_else(|| bad(p))?;
            Ok((u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize, 5))
        }
    };
    let mut p = 1usize;
    let mut n = 0usize;
    loop {
        match zm.get(p) {
            None => return Err(bad(p)),
            Some(&ZL_END) => break,
            Some(_) => {}
        }
        let (klen, s) = len_at(p)?;
        p += s;
        let key = zm.get(p..p.saturating_add(klen)).ok_or_else(|| bad(p))?;
        p += klen;
        let (vlen, s) = len_at(p)?;
        p += s;
        let free = *zm.get(p).ok_or_else(|| bad(p))? as usize;
        p += 1;
        let value = zm.get(p..p.saturating_add(vlen)).ok_or_else(|| bad(p))?;
        p += vlen + free;
        f(key, value)?;
        n += 1;
    }
    if p != zm.len() - 1 {
        return Err(bad(p));
    }
    if count < ZL_BIGLEN && count as usize != n {
        return Err(bad(0));
    }
    Ok(n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a ziplist the way ziplist.c would (used to test the readers).
    pub(crate) fn build(items: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = ZL_HEADER;
        for it in items {
            let start = body.len();
            last = ZL_HEADER + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(0xfe);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match std::str::from_utf8(it)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(v) if (0..=12).contains(&v) => body.push(0xf1 + v as u8),
                Some(v) if i8::try_from(v).is_ok() => body.extend_from_slice(&[0xfe, v as u8]),
                Some(v) if i16::try_from(v).is_ok() => {
                    body.push(0xc0);
                    body.extend_from_slice(&(v as i16).to_le_bytes());
                }
                Some(v) if (-8_388_608..8_388_608).contains(&v) => {
                    body.push(0xf0);
                    body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                }
                Some(v) if i32::try_from(v).is_ok() => {
                    body.push(0xd0);
                    body.extend_from_slice(&(v as i32).to_le_bytes());
                }
                Some(v) => {
                    body.push(0xe0);
                    body.extend_from_slice(&v.to_le_bytes());
                }
                None => {
                    let l = it.len();
                    if l < 64 {
                        body.push(l as u8);
                    } else if l < 16384 {
                        body.push(0x40 | (l >> 8) as u8);
                        body.push(l as u8);
                    } else {
                        body.push(0x80);
                        body.extend_from_slice(&(l as u32).to_be_bytes());
                    }
                    body.extend_from_slice(it);
                }
            }
            prev = body.len() - start;
        }
        let total = ZL_HEADER + body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(ZL_END);
        out
    }

    /// Builds a zipmap as zipmap.c would.
    pub(crate) fn build_zipmap(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = vec![pairs.len().min(254) as u8];
        let len = |out: &mut Vec<u8>, l: usize| {
            if l < 254 {
                out.push(l as u8);
            } else {
                out.push(254);
                out.extend_from_slice(&(l as u32).to_le_bytes());
            }
        };
        for (k, v) in pairs {
            len(&mut out, k.len());
            out.extend_from_slice(k);
            len(&mut out, v.len());
            out.push(2);
            out.extend_from_slice(v);
            out.extend_from_slice(b"..");
        }
        out.push(ZL_END);
        out
    }

    fn collect(zl: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
        let mut v = Vec::new();
        for_each(zl, |e| {
            v.push(e.to_vec());
            Ok(())
        })?;
        Ok(v)
    }

    #[test]
    fn reads_the_ziplist_from_the_redis_sources() {
        // ziplist.c's example: [2, 5] = 0f 00 00 00 | 0c 00 00 00 | 02 00 | 00 f3 | 02 f6 | ff
        let zl = [
            0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 0x02, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff,
        ];
        assert_eq!(collect(&zl).unwrap(), vec![b"2".to_vec(), b"5".to_vec()]);
        assert_eq!(build(&[b"2", b"5"]), zl);
    }

    #[test]
    fn reads_every_encoding() {
        let big = vec![b'x'; 300];
        let huge = vec![b'y'; 20_000];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"12",
            b"13",
            b"-128",
            b"1000",
            b"-100000",
            b"2000000000",
            b"-9223372036854775808",
            b"hello",
            &big,
            &huge,
            b"",
        ];
        let zl = build(&items);
        let got = collect(&zl).unwrap();
        let want: Vec<Vec<u8>> = items.iter().map(|v| v.to_vec()).collect();
        assert_eq!(got, want);
        for cut in 0..zl.len() {
            assert!(collect(&zl[..cut]).is_err());
        }
        for i in 0..zl.len().min(400) {
            let mut bad = zl.clone();
            bad[i] ^= 0x5a;
            if let Ok(items) = collect(&bad) {
                assert!(items.len() <= bad.len());
            }
        }
    }

    #[test]
    fn reads_zipmaps() {
        let long = vec![b'v'; 300];
        let zm = build_zipmap(&[(b"f", b"v"), (b"name", &long)]);
        let mut got = Vec::new();
        let n = for_each_zipmap(&zm, |k, v| {
            got.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(got[1], (b"name".to_vec(), long));
        for cut in 0..zm.len() {
            assert!(for_each_zipmap(&zm[..cut], |_, _| Ok(())).is_err());
        }
    }
}
