//! DUMP payloads (`cluster.c` `createDumpPayload` / `verifyDumpPayload`):
//!
//! ```text
//! <type byte> <value> | <RDB version: u16 LE> | <CRC64 of everything before: u64 LE>
//! ```

use super::crc64::crc64;
use super::encode::{write_value, WriteOpts};
use super::RDB_VERSION;
use crate::store::Value;

/// Bytes of the footer: RDB version + CRC64.
pub const FOOTER: usize = 10;

/// Returns the DUMP payload of `v`, byte for byte what Redis 7.0 returns for the same value.
pub fn dump_payload(v: &Value, opts: &WriteOpts) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    if write_value(&mut out, v, opts).is_err() {
        out.clear();
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reports whether a payload carries an RDB version this server reads (≤ 10) and a correct
/// CRC64 (`verifyDumpPayload`); RESTORE answers "DUMP payload version or checksum are wrong"
/// otherwise.
pub fn verify_payload(p: &[u8]) -> bool {
    if p.len() < FOOTER {
        return false;
    }
    let footer = &p[p.len() - FOOTER..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return false;
    }
    let crc = crc64(0, &p[..p.len() - 8]);
    crc.to_le_bytes() == footer[2..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn footer_round_trip() {
        let p = dump_payload(
            &Value::Str(Bytes::from_static(b"v1").into()),
            &WriteOpts::default(),
        );
        assert_eq!(&p[..5], [0, 2, b'v', b'1', 10]);
        assert_eq!(p.len(), 4 + FOOTER);
        assert!(verify_payload(&p));
        let mut bad = p.clone();
        bad[2] = b'x';
        assert!(!verify_payload(&bad));
        let mut newer = p.clone();
        newer[4] = 11;
        assert!(!verify_payload(&newer));
        assert!(!verify_payload(&p[..9]));
    }
}
