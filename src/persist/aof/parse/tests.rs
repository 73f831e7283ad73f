use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

/// `SET a 1`, 27 bytes.
const SET_A: &[u8] = b"*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n";
/// `MULTI`, 15 bytes.
const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
/// `EXEC`, 14 bytes.
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn bad(buf: &[u8]) -> FormatError {
    match scan(buf, 0) {
        Scan::Bad(e) => e,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn reads_commands_zero_copy_with_offsets() {
    // SELECT 0 / set a 1 / #TS:1\r\n / rpush q x y
    let buf = cat(&[
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
        SET_A,
        b"#TS:1700000000\r\n",
        b"*4\r\n$5\r\nrpush\r\n$1\r\nq\r\n$1\r\nx\r\n$0\r\n\r\n",
    ]);
    let Next::Command(c) = next_command(&buf, 0, true).unwrap() else {
        panic!()
    };
    assert_eq!(c.argv, vec![&b"SELECT"[..], b"0"]);
    assert_eq!((c.start, c.end), (0, 23));
    let Next::Command(c) = next_command(&buf, 23, true).unwrap() else {
        panic!()
    };
    assert_eq!(c.argv, vec![&b"set"[..], b"a", b"1"]);
    assert_eq!(c.end, 50);
    // The annotation is skipped; the command starts after it.
    let Next::Command(c) = next_command(&buf, 50, true).unwrap() else {
        panic!()
    };
    assert_eq!(c.start, 66);
    assert_eq!(c.argv, vec![&b"rpush"[..], b"q", b"x", b""]);
    assert!(std::ptr::eq(c.argv[1].as_ptr(), &buf[c.start + 19]));
    assert_eq!(next_command(&buf, buf.len(), true).unwrap(), Next::End);
    assert_eq!(scan(&buf, 0), Scan::Clean { commands: 3 });
}

#[test]
fn binary_safe_arguments() {
    let buf = b"*2\r\n$3\r\nGET\r\n$4\r\n\r\n\x00\xff\r\n";
    let Next::Command(c) = next_command(buf, 0, true).unwrap() else {
        panic!()
    };
    assert_eq!(c.argv[1], b"\r\n\x00\xff");
}

#[test]
fn truncation_reports_the_last_complete_command() {
    let buf = cat(&[SET_A, b"*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n"]);
    assert_eq!(
        scan(&buf, 0),
        Scan::Truncated {
            commands: 1,
            valid_up_to: 27,
            unclosed_multi: false
        }
    );
    // Mid-stream (not at the end of the file) the same bytes only ask for more.
    assert_eq!(
        next_command(&buf, 27, false).unwrap(),
        Next::Incomplete {
            start: 27,
            need: 27
        }
    );
    // A header cut anywhere is a truncation too, as Redis's `readerr` at EOF.
    for cut in [
        b"*".as_slice(),
        b"*3",
        b"*3\r",
        b"*3\r\n$",
        b"*3\r\n$3\r\nse",
    ] {
        let buf = cat(&[SET_A, cut]);
        assert!(
            matches!(
                scan(&buf, 0),
                Scan::Truncated {
                    valid_up_to: 27,
                    ..
                }
            ),
            "{cut:?}"
        );
    }
}

#[test]
fn unclosed_multi_reverts_to_before_it() {
    // As redis-server 7.0.15 does: "Revert incomplete MULTI/EXEC transaction", cut at 27.
    let buf = cat(&[SET_A, MULTI, SET_A]);
    assert_eq!(
        scan(&buf, 0),
        Scan::Truncated {
            commands: 3,
            valid_up_to: 27,
            unclosed_multi: true
        }
    );
    // A MULTI cut mid-command is cut at the last complete command (offset 69), as Redis.
    let buf = cat(&[SET_A, MULTI, SET_A, b"*3\r\n$3\r\nset"]);
    assert_eq!(
        scan(&buf, 0),
        Scan::Truncated {
            commands: 3,
            valid_up_to: 69,
            unclosed_multi: false
        }
    );
    // Closed transactions are clean, case-insensitively.
    let buf = cat(&[MULTI, SET_A, b"*1\r\n$4\r\nexec\r\n", MULTI, EXEC]);
    assert_eq!(scan(&buf, 0), Scan::Clean { commands: 5 });
    // The revert point is the end of the previous command, before any annotation.
    let buf = cat(&[SET_A, b"#TS:1\r\n", MULTI]);
    assert!(matches!(
        scan(&buf, 0),
        Scan::Truncated {
            valid_up_to: 27,
            unclosed_multi: true,
            ..
        }
    ));
}

#[test]
fn annotations() {
    // An unterminated last annotation is a clean end (Redis's fgets returns it).
    assert_eq!(scan(b"#TS:17", 0), Scan::Clean { commands: 0 });
    assert_eq!(
        next_command(b"#TS:17", 0, false).unwrap(),
        Next::Incomplete { start: 0, need: 7 }
    );
    let long = cat(&[b"#", &[b'x'; MAX_ANNOTATION], b"\r\n"]);
    assert_eq!(
        bad(&long),
        FormatError {
            offset: 0,
            what: Expected::LongAnnotation
        }
    );
}

#[test]
fn format_errors_with_offsets() {
    let e = bad(&cat(&[SET_A, b"?3\r\n"]));
    assert_eq!(e.offset, 27);
    assert_eq!(e.to_string(), "expected prefix '*', got: '?' at offset 27");
    assert_eq!(bad(b"\r\n").what, Expected::Star { got: b'\r' });
    assert_eq!(bad(b"*0\r\n").what, Expected::ArgCount);
    assert_eq!(bad(b"*-1\r\n").what, Expected::ArgCount);
    assert_eq!(bad(b"*x\r\n").what, Expected::ArgCount);
    assert_eq!(bad(b"*3\n").what, Expected::ArgCount);
    assert_eq!(bad(b"*2147483648\r\n").what, Expected::ArgCount);
    assert_eq!(bad(b"*99999999999999999999\r\n").what, Expected::ArgCount);
    assert_eq!(
        bad(b"*1\rx"),
        FormatError {
            offset: 2,
            what: Expected::Crlf {
                got: b"\rx".to_vec()
            }
        }
    );
    assert_eq!(
        bad(b"*1\r\n+OK\r\n"),
        FormatError {
            offset: 4,
            what: Expected::Dollar { got: b'+' }
        }
    );
    assert_eq!(bad(b"*1\r\n$-1\r\n").what, Expected::BulkLen);
    assert_eq!(bad(b"*1\r\n$\r\n").what, Expected::BulkLen);
    assert_eq!(bad(b"*1\r\n$99999999999999\r\n").what, Expected::BulkLen);
    // Redis's loader swallows any two bytes after a bulk; kura checks them as redis-check-aof.
    let e = bad(b"*1\r\n$1\r\n1xx");
    assert_eq!(e.offset, 9);
    assert_eq!(e.to_string(), "expected \\r\\n, got: 7878 at offset 9");
}

#[test]
fn huge_headers_allocate_nothing_and_ask_for_bytes() {
    // *2147483647 with no arguments: incomplete, and the need is large but finite.
    let Next::Incomplete { start, need } = next_command(b"*2147483647\r\n", 0, false).unwrap()
    else {
        panic!()
    };
    assert_eq!(start, 0);
    assert!(need >= 6 * 2147483647);
    let Next::Incomplete { need, .. } =
        next_command(b"*1\r\n$70368744177664\r\n", 0, false).unwrap()
    else {
        panic!()
    };
    assert_eq!(need, 21 + 70368744177664 + 2);
}

#[test]
fn tail_after_a_preamble() {
    let buf = cat(&[b"RDBBYTES", SET_A, b"*1"]);
    assert_eq!(
        scan(&buf, 8),
        Scan::Truncated {
            commands: 1,
            valid_up_to: 35,
            unclosed_multi: false
        }
    );
    assert_eq!(bad(b"x").shifted(100).offset, 100);
}

/// A valid stream of every shape: annotations, binary args, empty args, MULTI/EXEC.
fn sample() -> Vec<u8> {
    cat(&[
        b"#TS:1\r\n",
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
        SET_A,
        MULTI,
        b"*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$0\r\n\r\n",
        b"*3\r\n$4\r\nHSET\r\n$2\r\n\r\n\r\n$3\r\n\x00\x01\x02\r\n",
        EXEC,
        b"*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nq\r\n$13\r\n1795529187984\r\n",
    ])
}

#[test]
fn every_prefix_is_clean_truncated_or_bad_never_a_panic() {
    let full = sample();
    assert_eq!(scan(&full, 0), Scan::Clean { commands: 7 });
    for cut in 0..full.len() {
        match scan(&full[..cut], 0) {
            Scan::Clean { .. } => {}
            Scan::Truncated { valid_up_to, .. } => {
                // Cutting there leaves a clean file, or (cut inside a MULTI, as Redis cuts)
                // one whose unclosed MULTI the next load reverts.
                let fixed = &full[..valid_up_to as usize];
                match scan(fixed, 0) {
                    Scan::Clean { .. } => {}
                    Scan::Truncated {
                        valid_up_to,
                        unclosed_multi: true,
                        ..
                    } => {
                        let again = &full[..valid_up_to as usize];
                        assert!(matches!(scan(again, 0), Scan::Clean { .. }), "cut {cut}");
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
            Scan::Bad(e) => panic!("a prefix is never malformed: cut {cut}: {e}"),
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let full = sample();
    let mut rng = SmallRng::seed_from_u64(0x6b757261);
    let interesting = [b'*', b'$', b'\r', b'\n', b'#', b'0', b'9', b'-', 0, 0xff];
    for _ in 0..20_000 {
        let mut buf = full.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..buf.len());
            match rng.gen_range(0..4) {
                0 => buf[i] = rng.gen(),
                1 => buf[i] = interesting[rng.gen_range(0..interesting.len())],
                2 => {
                    buf.remove(i);
                }
                _ => buf.insert(i, interesting[rng.gen_range(0..interesting.len())]),
            }
            if buf.is_empty() {
                break;
            }
        }
        let cut = rng.gen_range(0..=buf.len());
        for b in [&buf[..], &buf[..cut]] {
            match scan(b, 0) {
                Scan::Clean { .. } | Scan::Bad(_) => {}
                Scan::Truncated { valid_up_to, .. } => {
                    assert!(valid_up_to as usize <= b.len());
                }
            }
            // The incremental form agrees and never panics either.
            if let Ok(Next::Command(c)) = next_command(b, 0, false) {
                assert!(c.end <= b.len());
            }
        }
    }
}
