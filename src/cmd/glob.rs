//! Redis's glob-style matcher (`util.c` `stringmatchlen`), the one kura uses everywhere a
//! pattern is matched: KEYS, SCAN/HSCAN `MATCH`, PSUBSCRIBE and PUBSUB CHANNELS, CONFIG GET,
//! COMMAND LIST FILTERBY PATTERN.
//!
//! A line-by-line port of Redis 7.0's `stringmatchlen_impl`, quirks included, so that a
//! pattern selects exactly what it selects on Redis:
//! - `*` does not match the empty string (the main loop needs bytes on both sides), but an
//!   empty pattern matches an empty string;
//! - `[a-z]` ranges may be reversed (`[z-a]`), compare as C's signed `char` (bytes ≥ 0x80
//!   sort below ASCII), and a `-` with nothing after it is a range up to `]` (`[a-]`);
//! - an unterminated `[` class runs to the end of the pattern;
//! - `\` escapes the next byte, in and out of classes, and a trailing `\` is literal;
//! - with `nocase`, ASCII letters fold, except the escaped byte inside a class (`[\G]`),
//!   which Redis compares exactly;
//! - bytes past the end of the pattern read as NUL, as Redis's sds strings do;
//! - a failed `*` tells every enclosing `*` to stop (`skipLongerMatches`, CVE-2022-36021), and
//!   nesting stops at 1000 stars, so hostile patterns cost little and cannot overflow the
//!   stack.

/// Reports whether `string` matches the glob `pattern`; `nocase` folds ASCII case (CONFIG GET
/// and COMMAND LIST use it, keys and channels do not).
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, nocase, &mut skip_longer, 0)
}

/// Deepest `*` recursion allowed (Redis: "Protection against abusive patterns").
const MAX_NESTING: usize = 1000;

/// Returns byte `i` of `s`, or NUL past its end (the C string terminator).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// C's `tolower` on a `char` promoted to `int`: only `A`–`Z` change.
fn lower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// Compares two bytes as `stringmatchlen` does outside classes.
fn same(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `stringmatchlen_impl`: `p`/`s` are the C pointers (indexes), `plen`/`slen` the remaining
/// lengths, kept signed and updated exactly where C updates them.
fn match_impl(
    pattern: &[u8],
    string: &[u8],
    nocase: bool,
    skip_longer: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    let (mut p, mut s) = (0usize, 0usize);
    let mut plen = pattern.len() as isize;
    let mut slen = string.len() as isize;
    while plen > 0 && slen > 0 {
        match at(pattern, p) {
            b'*' => {
                while plen > 0 && at(pattern, p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                // `pattern+1, patternLen-1`: the rest of this pattern, to its end.
                let rest = pattern.get(p + 1..).unwrap_or_default();
                while slen > 0 {
                    if match_impl(rest, &string[s..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                // No match for the rest anywhere in the string: a longer match for an earlier
                // `*` cannot help either.
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = at(pattern, p) == b'^';
                if not {
                    p += 1;
                    plen -= 1;
                }
                let c = at(string, s);
                let mut matched = false;
                loop {
                    if at(pattern, p) == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        // Compared exactly, even with nocase.
                        if at(pattern, p) == c {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if plen == 0 {
                        // Unterminated class: step back so the `p++` below lands on the end.
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && at(pattern, p + 1) == b'-' {
                        // `int start = pattern[0]`: a signed char in Redis's builds.
                        let mut start = at(pattern, p) as i8 as i32;
                        let mut end = at(pattern, p + 2) as i8 as i32;
                        let mut ci = c as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = lower(start);
                            end = lower(end);
                            ci = lower(ci);
                        }
                        p += 2;
                        plen -= 2;
                        if ci >= start && ci <= end {
                            matched = true;
                        }
                    } else if same(at(pattern, p), c, nocase) {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            b => {
                let b = if b == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    at(pattern, p)
                } else {
                    b
                };
                if !same(b, at(string, s), nocase) {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while at(pattern, p) == b'*' {
                p += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn globs_like_redis() {
        let yes = [
            ("", ""),
            ("*", "anything"),
            ("a*", "a"),
            ("a*", "abc"),
            ("*a?", "aab"),
            ("f?eld", "field"),
            ("h[ae]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("f[^x]eld", "field"),
            ("a\\*b", "a*b"),
            ("a\\", "a\\"),
            ("[\\]]", "]"),
            ("**x**", "aaxbb"),
            ("*.*.*", "a.b.c"),
            ("*a*b*c", "xxaxxbxxc"),
            ("[abc", "a"),
            ("[^", "x"),
            // `[a-]` is the range ']'..'a'.
            ("[a-]", "^"),
        ];
        let no = [
            ("*", ""),
            ("?", ""),
            ("", "a"),
            ("abc", "ab"),
            ("a*b", "a"),
            ("f*x", "field"),
            ("h[^e]llo", "hello"),
            ("a\\*b", "axb"),
            ("ab[", "abc"),
            ("[a-", "x"),
            ("*.*.*", "a.b"),
            ("*a*b*c", "xxaxxbxx"),
        ];
        for (p, s) in yes {
            assert!(m(p, s), "{p:?} should match {s:?}");
        }
        for (p, s) in no {
            assert!(!m(p, s), "{p:?} should not match {s:?}");
        }
    }

    #[test]
    fn nocase_folds_ascii_except_escapes_in_classes() {
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"HELLO", b"hello", false));
        assert!(glob_match(b"[A-C]", b"b", true));
        assert!(glob_match(b"[F-H]et", b"get", true));
        assert!(glob_match(b"\\Get", b"get", true));
        assert!(!glob_match(b"[\\G]et", b"get", true));
        assert!(glob_match(b"MAX*", b"maxmemory", true));
    }

    #[test]
    fn high_bytes_sort_below_ascii_in_ranges() {
        // Signed chars: 0xff is -1, inside [\x80-a] (-128..97) but not [a-\xff] (-1..97 too).
        assert!(glob_match(b"[\x80-a]", b"\xff", false));
        assert!(glob_match(b"[a-\xff]", b"0", false));
        assert!(!glob_match(b"[a-z]", b"\xe9", false));
    }

    #[test]
    fn unterminated_classes_run_to_the_end() {
        // `[abc` is a class running to the end of the pattern.
        assert!(m("x[ab", "xa"));
        assert!(!m("x[ab", "xc"));
        assert!(!m("[", "["));
        assert!(!m("[", "a"));
        assert!(m("[^]", "a"));
        assert!(m("[a-", "a"));
        assert!(!m("[]]", "]"));
        assert!(m("a[\\]]b", "a]b"));
    }

    #[test]
    fn nesting_stops_at_a_thousand_stars() {
        assert!(!m(&"a*".repeat(1100), &"a".repeat(1100)));
        assert!(m(&"a*".repeat(900), &"a".repeat(900)));
    }

    #[test]
    fn hostile_patterns_stay_cheap() {
        let s = "a".repeat(50);
        assert!(!m(&format!("{}b", "a*".repeat(30)), &s));
        let hostile = "*a".repeat(100_000);
        assert!(!m(&hostile, &"a".repeat(10)));
    }
}
