//! Records as stored: a msgpack map turned into JSON, re-encoded msgpack, or hash fields,
//! with the event time added under the route's `time_key` (DESIGN.md "Forward -> store
//! mapping").
//!
//! The time field follows fluentd's `inject` helper: when the record already has the key,
//! its value is replaced in place (Ruby `record[key] = time`); otherwise the field is added
//! last. Strings are bytes: JSON output escapes only `"`, `\` and control characters and
//! passes other bytes through unchanged, so nothing a sender wrote is altered or lost
//! (a sender of non-UTF-8 bytes that needs strict JSON should use `format = "msgpack"`).
//! Nested values are walked with an explicit stack: a hostile record nested a million
//! levels deep costs memory bounded by its size, never the thread's stack.

use super::msgpack::{self, Error, Reader, Value};
use crate::resp::encode::fmt_i64;

/// The time value added to each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeValue<'a> {
    /// Epoch seconds with their fraction (fluentd's default `time_type float`).
    Float {
        /// Whole seconds.
        secs: i64,
        /// Nanoseconds.
        nanos: u32,
        /// The same as an exact decimal ([`put_float_time`]), formatted once per chunk
        /// and time rather than once per record.
        decimal: &'a [u8],
    },
    /// Text already formatted with the route's `time_format`.
    Text(&'a [u8]),
}

/// The field added to each record: key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeField<'a> {
    /// The record key (`time_key`).
    pub key: &'a [u8],
    /// The value.
    pub value: TimeValue<'a>,
}

/// Appends epoch seconds as an exact decimal: `1441588984.5`, `1441588984.0`, `-0.75`.
pub fn put_float_time(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    // The magnitude of secs + nanos/1e9, then the sign once.
    let (whole, frac) = if secs < 0 && nanos > 0 {
        ((-(secs + 1)) as u64, 1_000_000_000 - nanos)
    } else {
        (secs.unsigned_abs(), nanos)
    };
    if secs < 0 {
        out.push(b'-');
    }
    put_u64(out, whole);
    out.push(b'.');
    // Nine digits, trailing zeros dropped (at least one digit stays).
    let mut digits = [b'0'; 9];
    let mut f = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    let len = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
    out.extend_from_slice(&digits[..len]);
}

/// Appends an unsigned integer in decimal.
pub fn put_u64(out: &mut Vec<u8>, n: u64) {
    let mut num = [0u8; 20];
    match i64::try_from(n) {
        Ok(n) => out.extend_from_slice(fmt_i64(n, &mut num)),
        Err(_) => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

/// Which bytes need escaping inside a JSON string (RFC 8259 §7).
static JSON_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Reports whether any of 8 bytes needs escaping: below 0x20, `"` or `\\` (the
/// "has a byte less than n" and "has a zero byte" word tricks, so clean text is scanned
/// 8 bytes at a time).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b;
    (below_space | quote | backslash) & HIGH != 0
}

/// Appends `s` as a JSON string.
pub fn put_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    // Most log text needs no escape at all: check that word-wise (the last word may
    // overlap the one before), then copy in one go.
    if is_clean(s) {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        while let Some(w) = s.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            if word_needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            i += 8;
        }
        let end = (i + 8).min(s.len());
        while i < end {
            let b = s[i];
            if JSON_ESCAPE[b as usize] {
                out.extend_from_slice(&s[start..i]);
                put_escape(out, b);
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Reports whether no byte of `s` needs a JSON escape.
#[inline]
fn is_clean(s: &[u8]) -> bool {
    let word = |w: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        u64::from_le_bytes(b)
    };
    if s.len() < 8 {
        return !s.iter().any(|&b| JSON_ESCAPE[b as usize]);
    }
    let mut dirty = false;
    for w in s.chunks_exact(8) {
        dirty |= word_needs_escape(word(w));
    }
    !(dirty || word_needs_escape(word(&s[s.len() - 8..])))
}

/// Appends the JSON escape of one byte that needs one.
fn put_escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
    }
}

/// Appends standard base64 (RFC 4648 §4, padded): how extension payloads are shown.
pub fn put_base64(out: &mut Vec<u8>, data: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// Appends a scalar as JSON; `false` for containers (the caller walks those).
fn put_json_scalar(out: &mut Vec<u8>, v: Value<'_>) -> bool {
    let mut num = [0u8; 20];
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(n) => out.extend_from_slice(fmt_i64(n, &mut num)),
        Value::Uint(n) => put_u64(out, n),
        // JSON has no NaN or infinity.
        Value::Float(f) if !f.is_finite() => out.extend_from_slice(b"null"),
        // Debug formatting is the shortest text that reads back as the same f64, with a
        // `.0` or exponent so it stays a JSON float.
        Value::Float(f) => out.extend_from_slice(format!("{f:?}").as_bytes()),
        Value::Str(s) | Value::Bin(s) => put_json_str(out, s),
        // An EventTime inside a record reads as its float seconds.
        Value::Ext(0, p) if p.len() == 8 => put_float_time(
            out,
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as i64,
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]).min(999_999_999),
        ),
        Value::Ext(t, p) => {
            out.extend_from_slice(format!("{{\"ext\":{t},\"data\":\"").as_bytes());
            put_base64(out, p);
            out.extend_from_slice(b"\"}");
        }
        Value::Array(_) | Value::Map(_) => return false,
    }
    true
}

/// Appends a map key as a JSON string: str and bin as they are, other values as their
/// JSON text (JSON keys must be strings).
///
/// Inside that text, the keys of a map key are written bare, as Ruby's `inspect` shows a
/// Hash key (`{{"a"=>1}=>1}`), not as strings of their own text: quoting and escaping the
/// text again at every level of keys nested in keys doubled the backslashes per level, so
/// a 100-byte record could demand terabytes. The text is escaped once, here.
fn put_json_key(out: &mut Vec<u8>, r: &mut Reader<'_>) -> Result<(), Error> {
    match r.next()? {
        Value::Str(s) | Value::Bin(s) => put_json_str(out, s),
        v => {
            let mut text = Vec::new();
            if !put_json_scalar(&mut text, v) {
                put_json_container(&mut text, r, v, false)?;
            }
            put_json_str(out, &text);
        }
    }
    Ok(())
}

/// Appends one whole value (of any nesting) as JSON.
pub fn put_json_value(out: &mut Vec<u8>, r: &mut Reader<'_>) -> Result<(), Error> {
    // Most values are scalars: no container machinery for them.
    let v = r.next()?;
    if put_json_scalar(out, v) {
        return Ok(());
    }
    put_json_container(out, r, v, true)
}

/// Appends a container whose header `first` was just read, nested values included. With
/// `string_keys` false, map keys are written as values (the text of a key, see
/// [`put_json_key`]), so nothing here recurses.
fn put_json_container(
    out: &mut Vec<u8>,
    r: &mut Reader<'_>,
    first: Value<'_>,
    string_keys: bool,
) -> Result<(), Error> {
    /// An open container: elements still to write, whether it is a map, elements written.
    struct Open {
        left: u64,
        map: bool,
        done: u64,
    }
    let mut stack: Vec<Open> = Vec::new();
    push_container(out, &mut stack, first);
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        if top.left == 0 {
            out.push(if top.map { b'}' } else { b']' });
            stack.pop();
            if stack.is_empty() {
                return Ok(());
            }
            continue;
        }
        let key = top.map && top.done % 2 == 0;
        if top.done > 0 {
            out.push(if top.map && !key { b':' } else { b',' });
        }
        top.left -= 1;
        top.done += 1;
        if key && string_keys {
            put_json_key(out, r)?;
            continue;
        }
        let v = r.next()?;
        if !put_json_scalar(out, v) {
            push_container(out, &mut stack, v);
        }
    }

    fn push_container(out: &mut Vec<u8>, stack: &mut Vec<Open>, v: Value<'_>) {
        match v {
            Value::Map(n) => {
                out.push(b'{');
                stack.push(Open {
                    left: 2 * n as u64,
                    map: true,
                    done: 0,
                });
            }
            Value::Array(n) => {
                out.push(b'[');
                stack.push(Open {
                    left: n as u64,
                    map: false,
                    done: 0,
                });
            }
            _ => {}
        }
    }
}

/// Appends the time value as JSON.
fn put_json_time(out: &mut Vec<u8>, t: &TimeValue<'_>) {
    match *t {
        TimeValue::Float { decimal, .. } => out.extend_from_slice(decimal),
        TimeValue::Text(s) => put_json_str(out, s),
    }
}

/// Reads the key of the next pair as bytes when it is a str or bin.
fn peek_key<'a>(r: &Reader<'a>) -> Option<&'a [u8]> {
    r.clone().next().ok().and_then(|v| v.bytes())
}

/// Appends `record` (a msgpack map) as a JSON object, with the time field.
pub fn to_json(
    record: &[u8],
    time: Option<&TimeField<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    to_json_from(&mut Reader::new(record), time, out)
}

/// [`to_json`] for a record map starting at `r`, which is left just past it.
pub fn to_json_from(
    r: &mut Reader<'_>,
    time: Option<&TimeField<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let Value::Map(n) = r.next()? else {
        return Err(Error::Truncated);
    };
    out.push(b'{');
    let mut placed = false;
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        // The common key, a str, is read once: written and compared to the time key.
        let is_time = match r.clone().next()? {
            Value::Str(k) | Value::Bin(k) => {
                r.next()?;
                put_json_str(out, k);
                // First bytes first: most keys differ there, and a call to memcmp per key
                // shows in profiles.
                time.is_some_and(|t| t.key.first() == k.first() && t.key == k)
            }
            _ => {
                put_json_key(out, r)?;
                false
            }
        };
        out.push(b':');
        match time {
            Some(t) if is_time && !placed => {
                r.skip()?;
                put_json_time(out, &t.value);
                placed = true;
            }
            _ => match r.next()? {
                // The common value, a string, without the general path.
                Value::Str(v) => put_json_str(out, v),
                v => {
                    if !put_json_scalar(out, v) {
                        put_json_container(out, r, v, true)?;
                    }
                }
            },
        }
    }
    if let Some(t) = time.filter(|_| !placed) {
        if n > 0 {
            out.push(b',');
        }
        put_json_str(out, t.key);
        out.push(b':');
        put_json_time(out, &t.value);
    }
    out.push(b'}');
    Ok(())
}

/// Appends the time value as msgpack: a float 64, or a str when formatted.
fn put_msgpack_time(out: &mut Vec<u8>, t: &TimeValue<'_>) {
    match *t {
        TimeValue::Float { secs, nanos, .. } => {
            msgpack::put_f64(out, secs as f64 + nanos as f64 / 1e9)
        }
        TimeValue::Text(s) => msgpack::put_str(out, s),
    }
}

/// Appends `record` re-encoded as msgpack, with the time field.
pub fn to_msgpack(
    record: &[u8],
    time: Option<&TimeField<'_>>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut r = Reader::new(record);
    let Value::Map(n) = r.next()? else {
        return Err(Error::Truncated);
    };
    let Some(t) = time else {
        out.extend_from_slice(record);
        return Ok(());
    };
    let pairs = r.clone();
    // First pass: is the key already there? Keys only; values are skipped by header.
    let mut has = false;
    for _ in 0..n {
        has |= peek_key(&r) == Some(t.key);
        r.skip()?;
        r.skip()?;
    }
    if !has {
        msgpack::put_map_len(out, n.saturating_add(1));
        out.extend_from_slice(pairs.rest());
        msgpack::put_str(out, t.key);
        put_msgpack_time(out, &t.value);
        return Ok(());
    }
    msgpack::put_map_len(out, n);
    let mut r = pairs;
    let mut placed = false;
    for _ in 0..n {
        let is_time = !placed && peek_key(&r) == Some(t.key);
        out.extend_from_slice(r.skip()?);
        let value = r.skip()?;
        if is_time {
            put_msgpack_time(out, &t.value);
            placed = true;
        } else {
            out.extend_from_slice(value);
        }
    }
    Ok(())
}

/// Appends a value as a hash field or value: strings as their bytes, numbers and booleans
/// as text, nil as empty, containers and extensions as JSON (fluent-plugin-redis writes
/// Ruby's `inspect` text there; JSON is what any reader can parse).
fn put_field_text(out: &mut Vec<u8>, r: &mut Reader<'_>) -> Result<(), Error> {
    match r.clone().next()? {
        Value::Str(s) | Value::Bin(s) => {
            r.next()?;
            out.extend_from_slice(s);
        }
        Value::Nil => {
            r.next()?;
        }
        _ => put_json_value(out, r)?,
    }
    Ok(())
}

/// Appends the pairs of `record` as hash fields and values, with the time field; each
/// piece's byte range in `out` is pushed to `spans` (field, value, field, value, …).
pub fn to_fields(
    record: &[u8],
    time: Option<&TimeField<'_>>,
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), Error> {
    let mut r = Reader::new(record);
    let Value::Map(n) = r.next()? else {
        return Err(Error::Truncated);
    };
    let put_time = |out: &mut Vec<u8>, t: &TimeValue<'_>| match *t {
        TimeValue::Float { decimal, .. } => out.extend_from_slice(decimal),
        TimeValue::Text(s) => out.extend_from_slice(s),
    };
    let mut placed = false;
    for _ in 0..n {
        let is_time = !placed && time.is_some_and(|t| peek_key(&r) == Some(t.key));
        let start = out.len();
        put_field_text(out, &mut r)?;
        spans.push((start, out.len()));
        let start = out.len();
        match time {
            Some(t) if is_time => {
                r.skip()?;
                put_time(out, &t.value);
                placed = true;
            }
            _ => put_field_text(out, &mut r)?,
        }
        spans.push((start, out.len()));
    }
    if let Some(t) = time.filter(|_| !placed) {
        let start = out.len();
        out.extend_from_slice(t.key);
        spans.push((start, out.len()));
        let start = out.len();
        put_time(out, &t.value);
        spans.push((start, out.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::{Rng, SeedableRng};

    use super::*;

    const TIME: TimeField<'static> = TimeField {
        key: b"time",
        value: TimeValue::Float {
            secs: 1441588984,
            nanos: 500_000_000,
            decimal: b"1441588984.5",
        },
    };

    fn json(record: &[u8], time: Option<&TimeField<'_>>) -> String {
        let mut out = Vec::new();
        to_json(record, time, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_adds_the_time_last_or_in_place() {
        // {"message": "bar", "n": -3}
        let rec = b"\x82\xa7message\xa3bar\xa1n\xfd";
        assert_eq!(
            json(rec, Some(&TIME)),
            r#"{"message":"bar","n":-3,"time":1441588984.5}"#
        );
        assert_eq!(json(rec, None), r#"{"message":"bar","n":-3}"#);
        // {"time": "x", "a": nil}: replaced where it stands, as Ruby's record[key] = v
        let rec = b"\x82\xa4time\xa1x\xa1a\xc0";
        assert_eq!(json(rec, Some(&TIME)), r#"{"time":1441588984.5,"a":null}"#);
        // {} with a formatted time
        let t = TimeField {
            key: b"@t",
            value: TimeValue::Text(b"2015-09-07T01:23:04Z"),
        };
        assert_eq!(json(b"\x80", Some(&t)), r#"{"@t":"2015-09-07T01:23:04Z"}"#);
    }

    #[test]
    fn json_escapes_and_keeps_raw_bytes() {
        // {"q": "a\"b\\c\n\x01", bin "k": "\xff"} -> escapes, non-UTF-8 passed through
        let rec = b"\x82\xa1q\xa7a\"b\\c\n\x01\xc4\x01k\xa1\xff";
        let mut out = Vec::new();
        to_json(rec, None, &mut out).unwrap();
        assert_eq!(
            out,
            b"{\"q\":\"a\\\"b\\\\c\\n\\u0001\",\"k\":\"\xff\"}".to_vec()
        );
    }

    #[test]
    fn json_of_nested_values_numbers_and_extensions() {
        // {"a": [1, 2.5, true, {"b": nil}], 7: {}, "u": 2^64-1, "t": EventTime, "x": ext 5}
        let mut rec = vec![0x85, 0xa1, b'a', 0x94, 0x01, 0xcb];
        rec.extend_from_slice(&2.5f64.to_bits().to_be_bytes());
        rec.extend_from_slice(&[0xc3, 0x81, 0xa1, b'b', 0xc0, 0x07, 0x80, 0xa1, b'u', 0xcf]);
        rec.extend_from_slice(&u64::MAX.to_be_bytes());
        rec.extend_from_slice(&[0xa1, b't', 0xd7, 0x00, 0x55, 0xec, 0xe6, 0xf8, 0, 0, 0, 0]);
        rec.extend_from_slice(&[0xa1, b'x', 0xd5, 0x05, 0xab, 0xcd]);
        assert_eq!(
            json(&rec, None),
            r#"{"a":[1,2.5,true,{"b":null}],"7":{},"u":18446744073709551615,"t":1441588984.0,"x":{"ext":5,"data":"q80="}}"#
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        // {"d": [[[[...]]]]} a million levels deep
        let mut rec = vec![0x81, 0xa1, b'd'];
        rec.extend(std::iter::repeat_n(0x91, 1_000_000));
        rec.push(0x90);
        let out = json(&rec, None);
        assert_eq!(out.len(), 6 + 2 * 1_000_001);
    }

    #[test]
    fn float_times_are_exact_decimals() {
        let f = |secs, nanos| {
            let mut o = Vec::new();
            put_float_time(&mut o, secs, nanos);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(1441588984, 0), "1441588984.0");
        assert_eq!(f(1441588984, 1), "1441588984.000000001");
        assert_eq!(f(0, 0), "0.0");
        assert_eq!(f(-1, 250_000_000), "-0.75");
        assert_eq!(f(-2, 0), "-2.0");
    }

    #[test]
    fn msgpack_appends_or_replaces_the_time() {
        // {"m": "x"} -> {"m": "x", "time": 1441588984.5}
        let mut out = Vec::new();
        to_msgpack(b"\x81\xa1m\xa1x", Some(&TIME), &mut out).unwrap();
        let mut want = b"\x82\xa1m\xa1x\xa4time\xcb".to_vec();
        want.extend_from_slice(&1441588984.5f64.to_bits().to_be_bytes());
        assert_eq!(out, want);
        // {"time": 1, "m": "x"} -> value replaced in place, map size kept
        out.clear();
        to_msgpack(b"\x82\xa4time\x01\xa1m\xa1x", Some(&TIME), &mut out).unwrap();
        let mut want = b"\x82\xa4time\xcb".to_vec();
        want.extend_from_slice(&1441588984.5f64.to_bits().to_be_bytes());
        want.extend_from_slice(b"\xa1m\xa1x");
        assert_eq!(out, want);
        // 15 pairs + time = 16: the header grows from fixmap to map16
        let mut rec = vec![0x8f];
        for i in 0..15u8 {
            rec.extend_from_slice(&[0xa1, b'a' + i, i]);
        }
        out.clear();
        to_msgpack(&rec, Some(&TIME), &mut out).unwrap();
        assert_eq!(&out[..3], &[0xde, 0, 16]);
    }

    #[test]
    fn hash_fields_as_fluent_plugin_redis_but_json_for_nesting() {
        // {"s": "v", "i": 42, "f": 1.5, "b": false, "n": nil, "m": {"k": [1]}}
        let mut rec = b"\x86\xa1s\xa1v\xa1i\x2a\xa1f\xcb".to_vec();
        rec.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
        rec.extend_from_slice(b"\xa1b\xc2\xa1n\xc0\xa1m\x81\xa1k\x91\x01");
        let (mut out, mut spans) = (Vec::new(), Vec::new());
        to_fields(&rec, Some(&TIME), &mut out, &mut spans).unwrap();
        let pieces: Vec<&[u8]> = spans.iter().map(|&(a, b)| &out[a..b]).collect();
        assert_eq!(
            pieces,
            vec![
                &b"s"[..],
                b"v",
                b"i",
                b"42",
                b"f",
                b"1.5",
                b"b",
                b"false",
                b"n",
                b"",
                b"m",
                br#"{"k":[1]}"#,
                b"time",
                b"1441588984.5"
            ]
        );
    }

    /// A random msgpack-able value, as serde_json sees it.
    fn random_value(rng: &mut rand::rngs::StdRng, depth: u32) -> serde_json::Value {
        use serde_json::Value as J;
        match rng.gen_range(0..if depth > 3 { 5 } else { 7 }) {
            0 => J::Null,
            1 => J::Bool(rng.gen()),
            2 => J::from(rng.gen::<i64>() >> rng.gen_range(0..63)),
            3 => J::from(rng.gen::<f64>() * 1e6),
            4 => {
                let n = rng.gen_range(0..20);
                J::String((0..n).map(|_| rng.gen_range('\0'..'\u{2FFF}')).collect())
            }
            5 => J::Array(
                (0..rng.gen_range(0..5))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => J::Object(
                (0..rng.gen_range(0..5))
                    .map(|i| (format!("k{i}\"\\"), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn json_round_trips_random_records() {
        // rmp-serde is an independent encoder; serde_json an independent parser.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let mut rec = BTreeMap::new();
            for i in 0..rng.gen_range(0..8) {
                rec.insert(format!("f{i}"), random_value(&mut rng, 0));
            }
            let packed = rmp_serde::to_vec(&rec).unwrap();
            let mut out = Vec::new();
            to_json(&packed, Some(&TIME), &mut out).unwrap();
            let back: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
            let mut want: BTreeMap<String, serde_json::Value> = rec.clone();
            want.insert("time".into(), serde_json::json!(1441588984.5));
            assert_eq!(back, want);
            // msgpack output decodes to the same record plus the time
            let mut mp = Vec::new();
            to_msgpack(&packed, Some(&TIME), &mut mp).unwrap();
            let back: BTreeMap<String, serde_json::Value> = rmp_serde::from_slice(&mp).unwrap();
            assert_eq!(back, want);
        }
    }
}
