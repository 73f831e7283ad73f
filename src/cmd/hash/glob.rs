//! Redis's glob-style matcher (`util.c` `stringmatchlen`), for `HSCAN … MATCH`.
//!
//! A line-by-line port, quirks included: `[a-]` ranges, `\` escapes, an unterminated `[`
//! and the early exit on repeated `*` that keeps pathological patterns linear-ish
//! (CVE-2022-36021). Bytes past the pattern read as NUL, as Redis's sds strings do. Nesting
//! stops at 1000 stars (as Redis 7.2 does), so a hostile pattern cannot overflow the stack.

/// Reports whether `string` matches `pattern` (case-sensitive).
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, &mut skip_longer, 0)
}

fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Deepest `*` recursion allowed.
const MAX_NESTING: usize = 1000;

fn match_impl(pattern: &[u8], string: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
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
                while slen > 0 {
                    let rest = &pattern[(p + 1).min(pattern.len())..];
                    let rest = &rest[..((plen - 1).max(0) as usize).min(rest.len())];
                    if match_impl(rest, &string[s..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
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
                        if at(pattern, p) == c {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if plen == 0 {
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && at(pattern, p + 1) == b'-' {
                        // C compares plain (signed) chars.
                        let mut start = at(pattern, p) as i8 as i32;
                        let mut end = at(pattern, p + 2) as i8 as i32;
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        let ci = c as i8 as i32;
                        p += 2;
                        plen -= 2;
                        if ci >= start && ci <= end {
                            matched = true;
                        }
                    } else if at(pattern, p) == c {
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
            b'\\' => {
                if plen >= 2 {
                    p += 1;
                    plen -= 1;
                }
                if at(pattern, p) != at(string, s) {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            ch => {
                if ch != at(string, s) {
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
    use super::matches;

    #[test]
    fn globs_like_redis() {
        let yes = [
            ("*", "anything"),
            ("f*", "field"),
            ("*d", "field"),
            ("f?eld", "field"),
            ("f[a-z]eld", "field"),
            ("f[^x]eld", "field"),
            ("f[z-a]eld", "field"),
            ("a\\*b", "a*b"),
            ("**x", "abcx"),
            ("a*", "a"),
            ("[abc", "a"),
        ];
        let no = [
            ("f*x", "field"),
            ("f[^i]eld", "field"),
            ("?", ""),
            ("a\\*b", "axb"),
            ("abc", "ab"),
            ("", "a"),
        ];
        for (p, s) in yes {
            assert!(matches(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        }
        for (p, s) in no {
            assert!(!matches(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        }
        let hostile = "*a".repeat(100_000);
        assert!(!matches(hostile.as_bytes(), "a".repeat(10).as_bytes()));
    }
}
