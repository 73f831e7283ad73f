//! Reply encoding for RESP2 and RESP3.
//!
//! RESP3 types fall back to their RESP2 shapes exactly as Redis 7.0 does (`networking.c`
//! `addReplyMap`, `addReplyNull`, `addReplyVerbatim`, …): maps become flat arrays, both nulls
//! become `$-1`/`*-1`, doubles become bulks, booleans integers, verbatim strings bulks.

use bytes::{BufMut, BytesMut};

use crate::cmd::Reply;

/// The protocol a connection speaks, chosen by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default for every new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// Returns the number `HELLO` reports for this protocol.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

fn put_len(out: &mut BytesMut, prefix: u8, n: i64) {
    let mut line = [0u8; 24];
    let used = len_line(&mut line, prefix, n);
    out.extend_from_slice(&line[..used]);
}

/// Writes `<prefix><n>\r\n` into `line`; returns its length. One copy into the output
/// instead of three, and no division for the one-digit lengths most list elements and
/// small values have (Redis keeps ready-made headers for lengths below 32, `shared.bulkhdr`).
#[inline]
fn len_line(line: &mut [u8; 24], prefix: u8, n: i64) -> usize {
    line[0] = prefix;
    if (0..10).contains(&n) {
        line[1] = b'0' + n as u8;
        line[2] = b'\r';
        line[3] = b'\n';
        return 4;
    }
    let mut b = [0u8; 20];
    let digits = fmt_i64(n, &mut b);
    let end = 1 + digits.len();
    line[1..end].copy_from_slice(digits);
    line[end] = b'\r';
    line[end + 1] = b'\n';
    end + 2
}

/// Formats `n` in decimal into `buf` and returns the digits, without allocating: RESP
/// lengths and integers, listpack/ziplist integers read back as strings, forward records.
pub fn fmt_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    // Two digits per division (the forward door formats a few integers per record).
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut i = buf.len();
    let neg = n < 0;
    let mut u = n.unsigned_abs();
    while u >= 100 {
        let d = (u % 100) as usize * 2;
        u /= 100;
        i -= 2;
        buf[i] = PAIRS[d];
        buf[i + 1] = PAIRS[d + 1];
    }
    if u >= 10 {
        let d = u as usize * 2;
        i -= 2;
        buf[i] = PAIRS[d];
        buf[i + 1] = PAIRS[d + 1];
    } else {
        i -= 1;
        buf[i] = b'0' + u as u8;
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Appends the header of a bulk string of `len` bytes.
pub fn put_bulk_header(out: &mut BytesMut, len: usize) {
    put_len(out, b'$', len as i64);
}

/// Appends one bulk string.
pub fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    let mut line = [0u8; 24];
    let used = len_line(&mut line, b'$', data.len() as i64);
    out.reserve(used + data.len() + 2);
    out.extend_from_slice(&line[..used]);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends an array header.
pub fn put_array_header(out: &mut BytesMut, n: usize) {
    put_len(out, b'*', n as i64);
}

/// Formats a double the way Redis replies with one (`%.17g`, with `inf`/`-inf`).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    format_g17(d)
}

/// C's `%.17g`.
pub fn format_g17(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = d.abs().log10().floor() as i32;
    let sci = format!("{:.16e}", d);
    // Recompute the exponent from Rust's formatting to avoid log10 rounding at boundaries.
    let (mant, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..17).contains(&e) {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", e.abs())
    } else {
        let prec = (16 - e).max(0) as usize;
        trim_zeros(&format!("{:.*}", prec, d)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Appends `reply` encoded for `proto`.
pub fn encode(out: &mut BytesMut, reply: &Reply, proto: Protocol) {
    let r3 = proto == Protocol::Resp3;
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(s) => {
            out.put_u8(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.put_u8(b'-');
            // Errors never carry CR/LF on the wire.
            out.extend(
                e.iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
        Reply::Int(n) => put_len(out, b':', *n),
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::BulkStr(s) => put_bulk(out, s.as_bytes()),
        Reply::Nil => out.extend_from_slice(if r3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if r3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => {
            put_len(out, b'*', items.len() as i64);
            for i in items {
                encode(out, i, proto);
            }
        }
        Reply::Set(items) => {
            put_len(out, if r3 { b'~' } else { b'*' }, items.len() as i64);
            for i in items {
                encode(out, i, proto);
            }
        }
        Reply::Push(items) => {
            put_len(out, if r3 { b'>' } else { b'*' }, items.len() as i64);
            for i in items {
                encode(out, i, proto);
            }
        }
        Reply::Map(pairs) => {
            if r3 {
                put_len(out, b'%', pairs.len() as i64);
            } else {
                put_len(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(out, k, proto);
                encode(out, v, proto);
            }
        }
        Reply::Double(d) => {
            let s = format_double(*d);
            if r3 {
                out.put_u8(b',');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Bool(b) => {
            if r3 {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
        Reply::Verbatim(s) => {
            if r3 {
                put_len(out, b'=', s.len() as i64 + 4);
                out.extend_from_slice(b"txt:");
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                put_bulk(out, s.as_bytes());
            }
        }
        Reply::Raw(bytes) => out.extend_from_slice(bytes),
        Reply::NoReply => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_integers() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_i64(0, &mut b), b"0");
        assert_eq!(fmt_i64(-300, &mut b), b"-300");
        assert_eq!(fmt_i64(i64::MIN, &mut b), b"-9223372036854775808");
        assert_eq!(fmt_i64(i64::MAX, &mut b), b"9223372036854775807");
    }

    #[test]
    fn length_lines_match_the_general_format() {
        for n in [-1, 0, 1, 9, 10, 99, 100, 12345, i64::MAX, i64::MIN] {
            let mut line = [0u8; 24];
            let used = len_line(&mut line, b'$', n);
            assert_eq!(&line[..used], format!("${n}\r\n").as_bytes());
        }
        let mut out = BytesMut::new();
        put_bulk(&mut out, b"");
        put_bulk(&mut out, b"0123456789");
        assert_eq!(&out[..], b"$0\r\n\r\n$10\r\n0123456789\r\n");
    }

    fn enc(r: &Reply, p: Protocol) -> String {
        let mut b = BytesMut::new();
        encode(&mut b, r, p);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn nulls_and_maps_per_protocol() {
        assert_eq!(enc(&Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(&Reply::NilArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(&Reply::Nil, Protocol::Resp3), "_\r\n");
        let m = Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]);
        assert_eq!(enc(&m, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(
            enc(&Reply::Verbatim("x".into()), Protocol::Resp3),
            "=5\r\ntxt:x\r\n"
        );
    }

    #[test]
    fn doubles_like_printf_g17() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(-2.5e-5), "-2.5000000000000001e-05");
    }
}
