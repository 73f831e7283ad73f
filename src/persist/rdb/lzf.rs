//! LZF compression, byte-compatible with the liblzf 3.6 that Redis vendors (`lzf_c.c`,
//! `lzf_d.c`, `lzfP.h`), `shared/spec/redis.md` §3.3.
//!
//! The compressor reproduces Redis's build exactly (`HLOG 16`, `VERY_FAST 1`, `ULTRA_FAST 0`),
//! including its conservative out-of-space checks: Redis calls `lzf_compress(s, len, out,
//! len - 4)` and stores the string raw when it returns 0, so the same input must fail or
//! succeed here in the same way for DUMP payloads to be byte-identical.
//!
//! Redis leaves the hash table uninitialised (`INIT_HTAB 0`). That never changes the output:
//! a slot only yields a match when the three bytes there equal the current three bytes, and
//! the first occurrence of any three bytes is always inserted into the table before it can be
//! looked up again — so a stale slot can never pass the content check. The table here is
//! therefore kept per thread and reused without clearing, as Redis's stack is.

use std::cell::RefCell;

/// log2 of the hash table size (`HLOG`).
const HLOG: u32 = 16;
/// Hash table slots.
const HSIZE: usize = 1 << HLOG;
/// Longest literal run (`MAX_LIT`).
const MAX_LIT: usize = 1 << 5;
/// Farthest back reference (`MAX_OFF`).
const MAX_OFF: usize = 1 << 13;
/// Longest back reference (`MAX_REF`).
const MAX_REF: usize = (1 << 8) + (1 << 3);

thread_local! {
    /// Positions by hash of the 3 bytes there (`LZF_STATE htab`, offsets form).
    static HTAB: RefCell<Box<[u32]>> = RefCell::new(vec![0u32; HSIZE].into_boxed_slice());
}

/// `IDX(h)` of the `VERY_FAST` build; depends only on the low 24 bits' three bytes.
#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Returns the first `i` in `from..to` where `inp[a + i] != inp[b + i]`, or `to`: the
/// match loops of `lzf_compress`, eight bytes per step.
#[inline]
fn first_mismatch(inp: &[u8], a: usize, b: usize, from: usize, to: usize) -> usize {
    let mut i = from;
    while i + 8 <= to {
        let (x, y) = (&inp[a + i..a + i + 8], &inp[b + i..b + i + 8]);
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        let diff = u64::from_le_bytes(wx) ^ u64::from_le_bytes(wy);
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < to && inp[a + i] == inp[b + i] {
        i += 1;
    }
    i
}

/// Compresses `input` into at most `out_len` bytes, as `lzf_compress` does.
///
/// Returns `None` where liblzf returns 0: empty input, or output that does not fit (by liblzf's
/// own conservative checks, which can refuse output that would have just fitted).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    // lzf's lengths are `unsigned int`; Redis never compresses more than a few hundred MiB.
    if input.is_empty() || out_len == 0 || input.len() > u32::MAX as usize {
        return None;
    }
    HTAB.with(|t| compress_with(&mut t.borrow_mut(), input, out_len))
}

fn compress_with(htab: &mut [u32], input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let inp = input;
    let in_end = inp.len();
    let mut out = vec![0u8; out_len];
    let mut ip = 0usize;
    let mut op = 1usize; // `lit = 0; op++;` start run
    let mut lit = 0usize;
    let frst = |p: usize| -> u32 { ((inp[p] as u32) << 8) | inp[p + 1] as u32 };
    let next = |v: u32, p: usize| -> u32 { (v << 8) | inp[p + 2] as u32 };

    let mut hval = if in_end >= 2 { frst(0) } else { 0 };
    while ip + 2 < in_end {
        hval = next(hval, ip);
        let slot = idx(hval);
        let r = htab[slot] as usize;
        htab[slot] = ip as u32;

        // `(off = ip - ref - 1) < MAX_OFF && ref > in_data && ref[2] == ip[2] && u16 equal`;
        // `ref >= ip` wraps the unsigned `off` in C, so it fails the first test.
        if r < ip
            && ip - r - 1 < MAX_OFF
            && r > 0
            && inp[r + 2] == inp[ip + 2]
            && inp[r] == inp[ip]
            && inp[r + 1] == inp[ip + 1]
        {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_end - ip - len).min(MAX_REF);

            // "first a faster conservative test", then "the exact but rare test".
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero

            // The match loop, unrolled 16 times in C when maxlen > 16: the unrolled part may
            // run past maxlen by up to two bytes (all compared), which changes the output.
            // Both steps compare words at a time but stop exactly where the byte loops do.
            'matching: {
                if maxlen > 16 {
                    let m = first_mismatch(inp, r, ip, len + 1, len + 17);
                    if m < len + 17 {
                        len = m;
                        break 'matching;
                    }
                    len += 16;
                }
                len = if len + 1 >= maxlen {
                    len + 1
                } else {
                    first_mismatch(inp, r, ip, len + 1, maxlen)
                };
            }

            len -= 2; // len is now #octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip + 2 >= in_end {
                break;
            }
            // VERY_FAST: hash the last two positions of the match only.
            ip -= 2;
            hval = frst(ip);
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
        } else {
            // One more literal byte we must copy.
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = inp[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8; // stop run
                lit = 0;
                op += 1; // start run
            }
        }
    }

    if op + 3 > out_len {
        // At most 3 bytes can be missing here.
        return None;
    }
    while ip < in_end {
        lit += 1;
        out[op] = inp[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0); // undo run if length is zero
    out.truncate(op);
    Some(out)
}

/// Why LZF data could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LzfError {
    /// The output would exceed the announced length (`E2BIG`).
    #[error("lzf output larger than announced")]
    TooBig,
    /// The input ends inside an instruction or refers before the output start (`EINVAL`).
    #[error("lzf input is malformed")]
    Malformed,
    /// The output is shorter than announced.
    #[error("lzf output shorter than announced")]
    TooShort,
}

/// Decompresses `input`, which must expand to exactly `out_len` bytes (Redis's
/// `lzf_decompress(c, clen, val, len) != len` check).
///
/// The caller bounds `out_len` first (see `MAX_RATIO`), so a forged length cannot make this
/// allocate more than the input could ever produce.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    // Reserve what was announced only up to a sane amount; the vector grows past it if the
    // data really expands that far.
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(1 << 26));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < (1 << 5) {
            // Literal run of ctrl + 1 bytes.
            let n = ctrl + 1;
            if out.len() + n > out_len {
                return Err(LzfError::TooBig);
            }
            let lits = input.get(ip..ip + n).ok_or(LzfError::Malformed)?;
            out.extend_from_slice(lits);
            ip += n;
        } else {
            // Back reference.
            let mut len = ctrl >> 5;
            let mut back = (ctrl & 0x1f) << 8;
            if len == 7 {
                len += *input.get(ip).ok_or(LzfError::Malformed)? as usize;
                ip += 1;
            }
            back += *input.get(ip).ok_or(LzfError::Malformed)? as usize;
            ip += 1;
            back += 1;
            if out.len() + len + 2 > out_len {
                return Err(LzfError::TooBig);
            }
            if back > out.len() {
                return Err(LzfError::Malformed);
            }
            let start = out.len() - back;
            // An overlapping copy repeats the last `back` bytes (lzf_d.c copies byte by
            // byte); copying `back` bytes at a time gives the same bytes.
            let mut done = 0;
            while done < len + 2 {
                let n = (len + 2 - done).min(back);
                out.extend_from_within(start + done..start + done + n);
                done += n;
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError::TooShort);
    }
    Ok(out)
}

/// Largest expansion LZF can achieve: a 3-byte back reference yields at most 264 bytes.
pub const MAX_RATIO: usize = 88;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8]) {
        if let Some(c) = compress(data, data.len() + 64) {
            assert_eq!(decompress(&c, data.len()).unwrap(), data);
            assert!(c.len() <= data.len() + data.len() / 32 + 2);
        }
    }

    #[test]
    fn known_redis_output() {
        // From a real 7.0.15 RDB (`shared/spec/redis.md` §3.8): 52 × 'a' compresses to
        // `01 61 61 e0 27 00 01 61 61` (clen 9).
        let s = vec![b'a'; 52];
        let c = compress(&s, s.len() - 4).unwrap();
        assert_eq!(c, [0x01, 0x61, 0x61, 0xe0, 0x27, 0x00, 0x01, 0x61, 0x61]);
    }

    #[test]
    fn round_trips() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"ab");
        round_trip(b"abc");
        for n in [4, 20, 21, 100, 1000, 9000, 70_000] {
            let text: Vec<u8> = (0..n).map(|i| b"hello world, "[i % 13]).collect();
            round_trip(&text);
            let random: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            round_trip(&random);
            let sparse: Vec<u8> = (0..n).map(|_| rng.gen_range(b'a'..b'e')).collect();
            round_trip(&sparse);
        }
    }

    #[test]
    fn incompressible_data_does_not_fit() {
        let random: Vec<u8> = (0..100u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(compress(&random, random.len() - 4), None);
    }

    #[test]
    fn decompress_rejects_bad_input() {
        // Back reference before the start.
        assert_eq!(decompress(&[0x20, 0x05], 3), Err(LzfError::Malformed));
        // Truncated literal run.
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(LzfError::Malformed));
        // Output larger than announced.
        assert_eq!(decompress(&[0x01, b'a', b'b'], 1), Err(LzfError::TooBig));
        // Output shorter than announced.
        assert_eq!(decompress(&[0x01, b'a', b'b'], 3), Err(LzfError::TooShort));
        // Truncated long back reference.
        assert_eq!(
            decompress(&[0x00, b'a', 0xe0], 20),
            Err(LzfError::Malformed)
        );
    }
}
