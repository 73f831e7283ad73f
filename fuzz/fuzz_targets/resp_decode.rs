//! The RESP request decoder (`resp::decode`, Redis 7.0 `processMultibulkBuffer` /
//! `processInlineBuffer`) on arbitrary bytes, whole and in pieces.
//!
//! Input: the first byte says whether the client is authenticated (bit 0) and the piece
//! size (the other bits); the rest is the connection's byte stream. The two runs must
//! decode the same requests up to the first error (a request split across reads may hit
//! an inline-size limit a whole one does not, as in Redis, so only the prefix must agree).

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

use kura::resp::{DecodeError, Limits, RequestDecoder};

/// Small limits, so oversized arguments and counts are reached.
const LIMITS: Limits = Limits {
    max_bulk_len: 1 << 20,
    query_buffer_limit: 4 << 20,
    max_multibulk_len: 1 << 20,
    max_inline_len: 4096,
};

fn run(data: &[u8], step: usize, authenticated: bool) -> (Vec<Vec<Bytes>>, Option<DecodeError>) {
    let mut decoder = RequestDecoder::new();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf, &LIMITS, authenticated) {
                Ok(Some(argv)) => {
                    assert!(!argv.is_empty(), "empty requests are skipped");
                    assert!(argv.iter().all(|a| a.len() <= LIMITS.max_bulk_len));
                    requests.push(argv);
                }
                Ok(None) => break,
                Err(e) => {
                    // Every error has the exact line Redis sends.
                    let line = e.reply_bytes();
                    assert!(line.starts_with(b"-ERR Protocol error: ") && line.ends_with(b"\r\n"));
                    return (requests, Some(e));
                }
            }
        }
    }
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let authenticated = flags & 1 == 1;
    let step = usize::from(flags >> 1) + 1;
    let (whole, whole_err) = run(data, data.len().max(1), authenticated);
    let (pieces, pieces_err) = run(data, step, authenticated);
    let n = whole.len().min(pieces.len());
    assert_eq!(
        whole[..n],
        pieces[..n],
        "whole and piecewise decoding disagree"
    );
    if whole_err.is_none() && pieces_err.is_none() {
        assert_eq!(whole, pieces);
    }
});
