//! Event times in every form clients send (`shared/spec/fluent.md` §1.3, §1.2 v1.5).
//!
//! The spec allows integer seconds and EventTime (ext type 0: u32 seconds, u32 nanoseconds,
//! big-endian; fixext 8 or ext 8). Clients also send signed integer widths (Go msgp), the
//! msgpack Timestamp extension (type -1) and floats; v1.5 wraps the time as
//! `[time, {metadata}]` (Fluent Bit >= 5.0.5's default). All are accepted. A time of `nil`
//! or 0 means "now", as fluentd's `normalize_event_stream` does.

use super::msgpack::{Error, Reader, Value};

/// A point in time with nanoseconds, or "use the arrival time".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// Seconds since the epoch (negative before 1970) and nanoseconds.
    At {
        /// Whole seconds.
        secs: i64,
        /// Nanoseconds, below 1e9.
        nanos: u32,
    },
    /// The sender left the time to the server (`nil`, 0, EventTime 0/0).
    Now,
}

impl EventTime {
    /// Returns the time, with `now_ms` standing in for [`EventTime::Now`].
    pub fn resolve(self, now_ms: i64) -> (i64, u32) {
        match self {
            EventTime::At { secs, nanos } => (secs, nanos),
            EventTime::Now => (
                now_ms.div_euclid(1000),
                (now_ms.rem_euclid(1000) * 1_000_000) as u32,
            ),
        }
    }
}

/// Why a value is not a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The bytes end inside the value.
    #[error(transparent)]
    Msgpack(#[from] Error),
    /// A value of a type no client uses for times.
    #[error("event time has an invalid type")]
    InvalidType,
}

fn from_secs(secs: i64, nanos: u32) -> EventTime {
    if secs == 0 && nanos == 0 {
        EventTime::Now
    } else {
        EventTime::At { secs, nanos }
    }
}

/// Interprets an already-read item as a time (not the v1.5 array form).
fn scalar_time(v: Value<'_>) -> Result<EventTime, TimeError> {
    match v {
        Value::Nil => Ok(EventTime::Now),
        Value::Uint(n) => Ok(from_secs(i64::try_from(n).unwrap_or(i64::MAX), 0)),
        Value::Int(n) => Ok(from_secs(n, 0)),
        Value::Float(f) if f.is_finite() => {
            let secs = f.floor();
            let nanos = (((f - secs) * 1e9).round() as u32).min(999_999_999);
            Ok(from_secs(secs as i64, nanos))
        }
        // EventTime: ext 0 with 8 bytes, u32 seconds then u32 nanoseconds (§1.3).
        Value::Ext(0, p) if p.len() == 8 => {
            let secs = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let nanos = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            Ok(from_secs(secs as i64, nanos.min(999_999_999)))
        }
        // msgpack Timestamp (ext -1): 32-bit seconds; 30-bit nanos + 34-bit seconds;
        // or 32-bit nanos + signed 64-bit seconds.
        Value::Ext(-1, p) => match p.len() {
            4 => Ok(from_secs(
                u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as i64,
                0,
            )),
            8 => {
                let v = u64::from_be_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
                Ok(from_secs(
                    (v & 0x3_ffff_ffff) as i64,
                    ((v >> 34) as u32).min(999_999_999),
                ))
            }
            12 => {
                let nanos = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                let secs = i64::from_be_bytes([p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]]);
                Ok(from_secs(secs, nanos.min(999_999_999)))
            }
            _ => Err(TimeError::InvalidType),
        },
        _ => Err(TimeError::InvalidType),
    }
}

/// Reads one event time from `r`, including v1.5's `[time, {metadata}...]` form, whose
/// metadata kura does not keep (§1.2: "MUST handle both" only if metadata is implemented).
pub fn read_time(r: &mut Reader<'_>) -> Result<EventTime, TimeError> {
    match r.next()? {
        Value::Array(n) if n >= 1 => {
            let t = scalar_time(r.next()?)?;
            for _ in 1..n {
                r.skip()?;
            }
            Ok(t)
        }
        v => scalar_time(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(bytes: &[u8]) -> Result<EventTime, TimeError> {
        let mut r = Reader::new(bytes);
        let v = read_time(&mut r);
        assert!(v.is_err() || r.is_empty(), "read all of {bytes:02x?}");
        v
    }

    fn at(secs: i64, nanos: u32) -> Result<EventTime, TimeError> {
        Ok(EventTime::At { secs, nanos })
    }

    #[test]
    fn integers_of_every_width() {
        // 2015-09-07T01:23:04Z = 1441588984 = 0x55ECE6F8
        assert_eq!(t(&[0xce, 0x55, 0xec, 0xe6, 0xf8]), at(1441588984, 0)); // uint32
        assert_eq!(
            t(&[0xcf, 0, 0, 0, 0, 0x55, 0xec, 0xe6, 0xf8]), // uint64
            at(1441588984, 0)
        );
        assert_eq!(t(&[0xd2, 0x55, 0xec, 0xe6, 0xf8]), at(1441588984, 0)); // int32 (Go msgp)
        assert_eq!(
            t(&[0xd3, 0, 0, 0, 0, 0x55, 0xec, 0xe6, 0xf8]), // int64
            at(1441588984, 0)
        );
        assert_eq!(t(&[0x05]), at(5, 0)); // positive fixint
        assert_eq!(t(&[0xff]), at(-1, 0)); // negative fixint: 1969-12-31T23:59:59Z
        assert_eq!(t(&[0x00]), Ok(EventTime::Now)); // 0 means now
        assert_eq!(t(&[0xc0]), Ok(EventTime::Now)); // nil means now
    }

    #[test]
    fn event_time_fixext8_and_ext8() {
        // D7 00 55ECE6F8 00000001: EventTime 1441588984 s + 1 ns as fixext 8
        assert_eq!(
            t(&[0xd7, 0x00, 0x55, 0xec, 0xe6, 0xf8, 0, 0, 0, 1]),
            at(1441588984, 1)
        );
        // C7 08 00 ...: the same as ext 8 with length 8
        assert_eq!(
            t(&[0xc7, 0x08, 0x00, 0x55, 0xec, 0xe6, 0xf8, 0, 0, 0, 1]),
            at(1441588984, 1)
        );
        // EventTime 0/0 means now
        assert_eq!(t(&[0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]), Ok(EventTime::Now));
        // ext 0 with 4 bytes is not an EventTime
        assert_eq!(t(&[0xd6, 0x00, 0, 0, 0, 1]), Err(TimeError::InvalidType));
    }

    #[test]
    fn msgpack_timestamp_ext() {
        // D6 FF 55ECE6F8: timestamp 32
        assert_eq!(t(&[0xd6, 0xff, 0x55, 0xec, 0xe6, 0xf8]), at(1441588984, 0));
        // D7 FF: timestamp 64, nanos 5 in the top 30 bits, seconds in the low 34
        let v: u64 = (5u64 << 34) | 1441588984;
        let mut b = vec![0xd7, 0xff];
        b.extend_from_slice(&v.to_be_bytes());
        assert_eq!(t(&b), at(1441588984, 5));
        // C7 0C FF: timestamp 96, nanos then signed seconds (-1)
        let mut b = vec![0xc7, 12, 0xff, 0, 0, 0, 7];
        b.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(t(&b), at(-1, 7));
    }

    #[test]
    fn floats_and_v15_metadata_form() {
        // CB 1441588984.5 as float 64
        let mut b = vec![0xcb];
        b.extend_from_slice(&1441588984.5f64.to_bits().to_be_bytes());
        assert_eq!(t(&b), at(1441588984, 500_000_000));
        // 92 D7 00 <EventTime> 80: [EventTime, {}] (Fluent Bit >= 5.0.5)
        assert_eq!(
            t(&[0x92, 0xd7, 0x00, 0x55, 0xec, 0xe6, 0xf8, 0, 0, 0, 2, 0x80]),
            at(1441588984, 2)
        );
        // 92 05 81 A1 'k' A1 'v': [5, {"k": "v"}]
        assert_eq!(t(&[0x92, 0x05, 0x81, 0xa1, b'k', 0xa1, b'v']), at(5, 0));
        // strings, maps and empty arrays are not times
        assert_eq!(t(&[0xa1, b'5']), Err(TimeError::InvalidType));
        assert_eq!(t(&[0x80]), Err(TimeError::InvalidType));
        assert_eq!(t(&[0x90]), Err(TimeError::InvalidType));
        // NaN is not a time
        let mut b = vec![0xcb];
        b.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        assert_eq!(t(&b), Err(TimeError::InvalidType));
    }

    #[test]
    fn now_resolves_to_the_clock() {
        assert_eq!(EventTime::Now.resolve(1_500), (1, 500_000_000));
        assert_eq!(EventTime::Now.resolve(-1), (-1, 999_000_000));
    }
}
