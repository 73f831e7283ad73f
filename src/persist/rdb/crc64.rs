//! CRC-64/Jones as Redis computes it (`crc64.c`, `shared/spec/redis.md` §3.9).
//!
//! Polynomial 0xad93d23594c935a9, reflected input and output, init 0, no final xor
//! ("CRC-64/REDIS" in the CRC catalogue; check value of `"123456789"` = 0xe9c6d914c4b8d9ca).
//! DUMP payloads and RDB files end with this checksum, stored little endian.
//!
//! The table is slice-by-8, built at compile time: RDB files of a few GiB are checksummed
//! while they are written, so the byte-at-a-time loop would be the writer's bottleneck.

/// The Jones polynomial, bit-reflected (the form the right-shifting loop uses).
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

/// Eight 256-entry tables: `T[0]` is the classic table, `T[k]` advances `k` more bytes.
const TABLES: [[u64; 256]; 8] = build_tables();

const fn build_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Returns `crc` extended over `data` (Redis's `crc64(crc, data, len)`; start with 0).
///
/// Chaining calls over consecutive pieces gives the CRC of their concatenation, which is how
/// a streaming RDB writer checksums what it has written so far.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let x = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(x & 0xff) as usize]
            ^ TABLES[6][((x >> 8) & 0xff) as usize]
            ^ TABLES[5][((x >> 16) & 0xff) as usize]
            ^ TABLES[4][((x >> 24) & 0xff) as usize]
            ^ TABLES[3][((x >> 32) & 0xff) as usize]
            ^ TABLES[2][((x >> 40) & 0xff) as usize]
            ^ TABLES[1][((x >> 48) & 0xff) as usize]
            ^ TABLES[0][(x >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// An `io::Write` adapter that checksums everything written through it.
///
/// The RDB file writer wraps its sink in this so the trailer needs no second pass.
#[derive(Debug)]
pub struct Crc64Writer<W> {
    inner: W,
    crc: u64,
}

impl<W: std::io::Write> Crc64Writer<W> {
    /// Wraps `inner`, starting from CRC 0.
    pub fn new(inner: W) -> Self {
        Crc64Writer { inner, crc: 0 }
    }

    /// Returns the CRC of every byte written so far.
    pub fn crc(&self) -> u64 {
        self.crc
    }

    /// Returns the wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: std::io::Write> std::io::Write for Crc64Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        #[allow(clippy::disallowed_methods)] // a Write impl must forward `write` itself
        let n = self.inner.write(buf)?;
        self.crc = crc64(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bitwise definition, to check the sliced tables against.
    fn slow(data: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &b in data {
            crc ^= b as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value_matches_redis() {
        // crc64.c's own test: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn redis_test_vector_long_text() {
        // crc64.c's test on its Lorem ipsum string (`sizeof(li)`: the NUL is included).
        let li = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do \
eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, \
quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis \
aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla \
pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia \
deserunt mollit anim id est laborum.\0";
        assert_eq!(crc64(0, li), 0xc7794709e69683b3);
    }

    #[test]
    fn sliced_equals_bitwise_and_chains() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            assert_eq!(crc64(0, &data[..len]), slow(&data[..len]), "len {len}");
        }
        let whole = crc64(0, &data);
        let split = crc64(crc64(0, &data[..333]), &data[333..]);
        assert_eq!(whole, split);
    }

    #[test]
    fn writer_accumulates() {
        use std::io::Write;
        let mut w = Crc64Writer::new(Vec::new());
        w.write_all(b"1234").unwrap();
        w.write_all(b"56789").unwrap();
        assert_eq!(w.crc(), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(w.into_inner(), b"123456789");
    }
}
