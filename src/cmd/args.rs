//! Typed argument parsing for handlers, with Redis's error for each failure.

use bytes::Bytes;

use super::reply::CmdError;
use crate::resp::decode::parse_i64;

/// Parses an integer argument (`string2ll` rules).
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses an integer argument that must fit a C `int` (`getIntFromObjectOrReply`): SELECT,
/// MOVE and COPY database indexes.
pub fn int32(arg: &[u8]) -> Result<i32, CmdError> {
    i32::try_from(int(arg)?).map_err(|_| {
        CmdError::err("value is out of range, value must between -2147483648 and 2147483647")
    })
}

/// Parses a non-negative integer argument that must fit `usize`.
pub fn uint(arg: &[u8]) -> Result<usize, CmdError> {
    let n = int(arg)?;
    usize::try_from(n).map_err(|_| CmdError::NotInteger)
}

/// Parses a float argument as Redis's `getLongDoubleFromObject` does (no NaN, no spaces).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_float(arg).ok_or(CmdError::NotFloat)
}

/// Parses a float with Redis's rules; `None` when it is not one.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // strtold accepts hex floats and such; the common decimal forms are what clients send.
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            s.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// Compares an argument with an option name, ignoring ASCII case.
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

/// Returns an argument as lossy UTF-8 text (for error messages and names).
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Copies an argument out of the read buffer, so stored values never pin client buffers.
pub fn own(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// Resolves a Redis range (`start`, `end`, negatives from the end) against `len`.
///
/// Returns `None` for an empty range.
pub fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 || s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}
