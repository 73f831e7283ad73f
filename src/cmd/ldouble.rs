//! x87 80-bit `long double` arithmetic, in software, for the commands Redis computes with it.
//!
//! Redis parses `HINCRBYFLOAT` (and `INCRBYFLOAT`) operands with `strtold`, adds them as
//! `long double` (64-bit mantissa) and prints the sum with `"%.17Lf"` (`util.c` `string2ld`,
//! `ld2string` in `LD_STR_HUMAN` mode). With `f64` the digits differ: Redis answers `10.6`
//! for `10.5 + 0.1` where `f64` prints `10.59999999999999964`. This module reproduces the
//! three steps exactly: correctly rounded decimal (and hex) parsing, round-to-nearest-even
//! addition, and exact `%.17Lf` formatting. Blocking timeouts use it too
//! (`getTimeoutFromObjectOrReply`: `ceill(strtold(arg) * 1000)`).

use std::cmp::Ordering;

/// Largest binary exponent of the leading mantissa bit (x87: 16383).
const MAX_EXP: i32 = 16383;
/// Smallest binary exponent of the leading mantissa bit of a normal value.
const MIN_EXP: i32 = -16382;
/// `MAX_LONG_DOUBLE_CHARS`: `string2ld` refuses strings this long.
const MAX_CHARS: usize = 5 * 1024;

/// A `long double` value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ld {
    /// Signed zero (`true` = negative).
    Zero(bool),
    /// `(-1)^neg × mant × 2^exp`, with the mantissa's top bit set.
    Finite {
        /// Sign.
        neg: bool,
        /// 64-bit mantissa, top bit set.
        mant: u64,
        /// Binary exponent of the mantissa's lowest bit.
        exp: i32,
    },
    /// Signed infinity.
    Inf(bool),
    /// Not a number.
    Nan,
}

// ---- A MINIMAL BIG INTEGER ----

/// Little-endian base-2^32 magnitude.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bitlen(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() - 1) * 32 + (32 - top.leading_zeros() as usize),
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0
            .get(i / 32)
            .is_some_and(|limb| limb >> (i % 32) & 1 == 1)
    }

    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = a as u64;
        for limb in &mut self.0 {
            let v = *limb as u64 * m as u64 + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut e: u32) {
        while e >= 9 {
            self.mul_add_small(1_000_000_000, 0);
            e -= 9;
        }
        if e > 0 {
            self.mul_add_small(10u32.pow(e), 0);
        }
    }

    fn shl(&self, bits: usize) -> Big {
        let (limbs, rem) = (bits / 32, bits % 32);
        let mut out = vec![0u32; limbs];
        if rem == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for limb in &self.0 {
                out.push(limb << rem | carry);
                carry = limb >> (32 - rem);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr1(&mut self) {
        let mut carry = 0u32;
        for limb in self.0.iter_mut().rev() {
            let next = *limb & 1;
            *limb = *limb >> 1 | carry << 31;
            carry = next;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`, which must not be larger.
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let v = *limb as i64 - other.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            if v < 0 {
                *limb = (v + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                *limb = v as u32;
                borrow = 0;
            }
        }
        self.trim();
    }

    /// Bits `from..from + n` (n ≤ 128) as an integer.
    fn bits(&self, from: usize, n: usize) -> u128 {
        let mut v = 0u128;
        for i in (0..n).rev() {
            v = v << 1 | self.bit(from + i) as u128;
        }
        v
    }

    fn any_below(&self, n: usize) -> bool {
        (0..n).any(|i| self.bit(i))
    }

    /// Decimal digits.
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut limbs = self.0.clone();
        let mut parts = Vec::new();
        while !limbs.is_empty() {
            let mut rem = 0u64;
            for limb in limbs.iter_mut().rev() {
                let v = rem << 32 | *limb as u64;
                *limb = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            parts.push(rem as u32);
        }
        let mut s = parts.pop().map_or(String::new(), |p| p.to_string());
        for p in parts.iter().rev() {
            s.push_str(&format!("{p:09}"));
        }
        s
    }
}

// ---- ROUNDING ----

/// Rounds `q` (any width) to a 64-bit mantissa, half to even, `sticky` telling whether
/// non-zero bits were already dropped below `q`; returns (mantissa, bits dropped).
fn round_u128(q: u128, sticky: bool) -> (u64, i32) {
    debug_assert!(q != 0);
    let len = 128 - q.leading_zeros() as i32;
    if len <= 64 {
        // Exact: callers that dropped bits (sticky) always pass at least 65 bits.
        debug_assert!(!sticky);
        return ((q << (64 - len)) as u64, len - 64);
    }
    let shift = len - 64;
    let m = (q >> shift) as u64;
    let rem = q & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let up = rem > half || (rem == half && (sticky || m & 1 == 1));
    if up {
        match m.checked_add(1) {
            Some(m) => (m, shift),
            None => (1 << 63, shift + 1),
        }
    } else {
        (m, shift)
    }
}

/// Builds a value from a mantissa and exponent, applying the range limits.
fn finish(neg: bool, mant: u64, exp: i32) -> Ld {
    let top = exp + 63;
    if top > MAX_EXP {
        Ld::Inf(neg)
    } else if top < MIN_EXP - 64 {
        Ld::Zero(neg)
    } else {
        Ld::Finite { neg, mant, exp }
    }
}

/// Rounds the big integer `n × 2^exp` to a value.
fn from_big(neg: bool, n: &Big, exp: i64) -> Ld {
    if n.is_zero() {
        return Ld::Zero(neg);
    }
    let len = n.bitlen();
    let (mant, dropped) = if len <= 64 {
        (n.bits(0, len) as u64, 0i64)
    } else {
        let keep = 65.min(len);
        let q = n.bits(len - keep, keep);
        let sticky = n.any_below(len - keep);
        let (m, d) = round_u128(q, sticky);
        (m, d as i64 + (len - keep) as i64)
    };
    let norm = mant.leading_zeros() as i64;
    let e = exp + dropped - norm;
    if e > i32::MAX as i64 / 2 {
        return Ld::Inf(neg);
    }
    if e < i32::MIN as i64 / 2 {
        return Ld::Zero(neg);
    }
    finish(neg, mant << norm, e as i32)
}

// ---- PARSING (strtold) ----

/// What `strtold` made of a whole string, with its `errno`.
struct Parsed {
    value: Ld,
    range_error: bool,
}

fn parse_strtold(s: &[u8]) -> Option<Parsed> {
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.to_ascii_lowercase();
    if lower == b"inf" || lower == b"infinity" {
        return Some(Parsed {
            value: Ld::Inf(neg),
            range_error: false,
        });
    }
    if lower.starts_with(b"nan") {
        let tail = &lower[3..];
        let ok = tail.is_empty()
            || (tail.first() == Some(&b'(')
                && tail.last() == Some(&b')')
                && tail[1..tail.len() - 1]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_'));
        return ok.then_some(Parsed {
            value: Ld::Nan,
            range_error: false,
        });
    }
    if lower.starts_with(b"0x") {
        return parse_hex(neg, &lower[2..]);
    }
    parse_decimal(neg, rest)
}

fn parse_decimal(neg: bool, s: &[u8]) -> Option<Parsed> {
    let mut digits = Big(Vec::new());
    let mut ndigits = 0usize;
    let mut exp10: i64 = 0;
    let mut seen_digit = false;
    let mut i = 0;
    let mut after_dot = false;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                seen_digit = true;
                if !digits.is_zero() || c != b'0' {
                    digits.mul_add_small(10, (c - b'0') as u32);
                    ndigits += 1;
                }
                if after_dot {
                    exp10 -= 1;
                }
            }
            b'.' if !after_dot => after_dot = true,
            _ => break,
        }
        i += 1;
    }
    if !seen_digit {
        return None;
    }
    if i < s.len() {
        exp10 += parse_exponent(s, i, b"eE")?;
    }
    if digits.is_zero() {
        return Some(Parsed {
            value: Ld::Zero(neg),
            range_error: false,
        });
    }
    // Magnitude is about 10^(ndigits + exp10): far outside the range needs no arithmetic.
    let magnitude = ndigits as i64 + exp10;
    if magnitude > 4940 {
        return Some(Parsed {
            value: Ld::Inf(neg),
            range_error: true,
        });
    }
    if magnitude < -4960 {
        return Some(Parsed {
            value: Ld::Zero(neg),
            range_error: true,
        });
    }
    let value = if exp10 >= 0 {
        digits.mul_pow10(exp10 as u32);
        from_big(neg, &digits, 0)
    } else {
        let mut p = Big::from_u64(1);
        p.mul_pow10((-exp10) as u32);
        divide(neg, &digits, &p)
    };
    let range_error = matches!(value, Ld::Inf(_) | Ld::Zero(_))
        || matches!(value, Ld::Finite { exp, .. } if exp + 63 < MIN_EXP);
    Some(Parsed { value, range_error })
}

/// Rounds `a / b` to a value.
fn divide(neg: bool, a: &Big, b: &Big) -> Ld {
    // Scale so the quotient has 66 or 67 bits: 64 kept, one to round on, sticky below.
    let shift = 66 + b.bitlen() as i64 - a.bitlen() as i64;
    let (num, mut den) = if shift >= 0 {
        (a.shl(shift as usize), b.clone())
    } else {
        (a.clone(), b.shl((-shift) as usize))
    };
    let mut rem = num;
    let s = rem.bitlen() as i64 - den.bitlen() as i64;
    let mut q: u128 = 0;
    if s >= 0 {
        den = den.shl(s as usize);
        for i in (0..=s).rev() {
            if rem.cmp(&den) != Ordering::Less {
                rem.sub(&den);
                q |= 1u128 << i;
            }
            den.shr1();
        }
    }
    let (mant, dropped) = round_u128(q, !rem.is_zero());
    let norm = mant.leading_zeros() as i32;
    finish(neg, mant << norm, dropped - norm - shift as i32)
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<Parsed> {
    let mut n = Big(Vec::new());
    let mut exp2: i64 = 0;
    let mut seen = false;
    let mut after_dot = false;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if let Some(d) = (c as char).to_digit(16) {
            seen = true;
            if n.bitlen() < 20_000 {
                n.mul_add_small(16, d);
                if after_dot {
                    exp2 -= 4;
                }
            } else if !after_dot {
                exp2 += 4;
            }
        } else if c == b'.' && !after_dot {
            after_dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if !seen {
        return None;
    }
    if i < s.len() {
        exp2 += parse_exponent(s, i, b"p")?;
    }
    let value = from_big(neg, &n, exp2);
    let range_error = !n.is_zero() && matches!(value, Ld::Inf(_) | Ld::Zero(_));
    Some(Parsed { value, range_error })
}

impl Ld {
    /// Parses like Redis's `string2ld`: the whole string, no leading space, no NaN, and no
    /// overflow or underflow to zero; `None` when Redis would refuse it.
    pub fn parse(s: &[u8]) -> Option<Ld> {
        if s.is_empty() || s.len() >= MAX_CHARS || s[0].is_ascii_whitespace() || s[0] == 0x0b {
            return None;
        }
        let p = parse_strtold(s)?;
        match p.value {
            Ld::Nan => None,
            Ld::Inf(_) | Ld::Zero(_) if p.range_error => None,
            v => Some(v),
        }
    }

    /// Returns the value of an integer (exact: 64 mantissa bits hold any `i64`).
    pub fn from_i64(v: i64) -> Ld {
        if v == 0 {
            return Ld::Zero(false);
        }
        let m = v.unsigned_abs();
        let norm = m.leading_zeros() as i32;
        Ld::Finite {
            neg: v < 0,
            mant: m << norm,
            exp: -norm,
        }
    }

    /// Reports whether the value is NaN or infinite.
    pub fn is_nan_or_inf(self) -> bool {
        matches!(self, Ld::Nan | Ld::Inf(_))
    }

    /// Returns `self + other`, rounded to nearest-even as the x87 does.
    pub fn sum(self, other: Ld) -> Ld {
        match (self, other) {
            (Ld::Nan, _) | (_, Ld::Nan) => Ld::Nan,
            (Ld::Inf(a), Ld::Inf(b)) => {
                if a == b {
                    Ld::Inf(a)
                } else {
                    Ld::Nan
                }
            }
            (Ld::Inf(a), _) | (_, Ld::Inf(a)) => Ld::Inf(a),
            (Ld::Zero(a), Ld::Zero(b)) => Ld::Zero(a && b),
            (Ld::Zero(_), x) | (x, Ld::Zero(_)) => x,
            (
                Ld::Finite {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Ld::Finite {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // Order by magnitude: (na, ma, ea) is the larger.
                let ((na, ma, ea), (nb, mb, eb)) = if (ea, ma) >= (eb, mb) {
                    ((na, ma, ea), (nb, mb, eb))
                } else {
                    ((nb, mb, eb), (na, ma, ea))
                };
                const GUARD: i32 = 62;
                let a = (ma as u128) << GUARD;
                let d = (ea - eb) as u32;
                let (mut b, sticky) = if d >= 126 {
                    (0u128, true)
                } else {
                    let full = (mb as u128) << GUARD;
                    let b = full >> d;
                    (b, b << d != full)
                };
                // A dropped bit only matters as a sticky bit, far below the rounding point.
                if sticky {
                    b |= 1;
                }
                let s = if na == nb { a + b } else { a - b };
                if s == 0 {
                    return Ld::Zero(false);
                }
                let (mant, dropped) = round_u128(s, false);
                let norm = mant.leading_zeros() as i32;
                finish(na, mant << norm, ea - GUARD + dropped - norm)
            }
        }
    }

    /// Returns `self × m` for a small positive `m`, rounded to nearest-even.
    pub fn mul_small(self, m: u32) -> Ld {
        match self {
            Ld::Finite { neg, mant, exp } => {
                let p = mant as u128 * m as u128;
                let (mant, dropped) = round_u128(p, false);
                let norm = mant.leading_zeros() as i32;
                finish(neg, mant << norm, exp + dropped - norm)
            }
            other => other,
        }
    }

    /// Returns `ceill(self)` converted to `long long` as x86 does: values that do not fit
    /// (and NaN) become `i64::MIN`.
    pub fn ceil_to_i64(self) -> i64 {
        match self {
            Ld::Zero(_) => 0,
            Ld::Nan | Ld::Inf(_) => i64::MIN,
            Ld::Finite { neg, mant, exp } => {
                let magnitude: Option<u128> = if exp >= 0 {
                    if exp > 63 {
                        None
                    } else {
                        Some((mant as u128) << exp)
                    }
                } else if exp <= -64 {
                    // |x| < 1: ceil is 1 for positive, -0 for negative.
                    Some(if neg { 0 } else { 1 })
                } else {
                    let int = (mant >> -exp) as u128;
                    let frac = mant & ((1u64 << -exp) - 1) != 0;
                    Some(if frac && !neg { int + 1 } else { int })
                };
                match magnitude {
                    Some(v) if !neg && v <= i64::MAX as u128 => v as i64,
                    Some(v) if neg && v <= 1u128 << 63 => (v as i128).wrapping_neg() as i64,
                    _ => i64::MIN,
                }
            }
        }
    }

    /// Formats like Redis's `ld2string(…, LD_STR_HUMAN)`: `"%.17Lf"` with trailing zeros
    /// (and a trailing dot) removed, and `-0` written `0`.
    pub fn to_human(self) -> String {
        let (neg, mant, exp) = match self {
            Ld::Inf(neg) => return if neg { "-inf" } else { "inf" }.into(),
            Ld::Nan => return "nan".into(),
            Ld::Zero(_) => return "0".into(),
            Ld::Finite { neg, mant, exp } => (neg, mant, exp),
        };
        const FRAC_DIGITS: u32 = 17;
        const SCALE: u128 = 100_000_000_000_000_000; // 10^17
        let (int, frac) = if exp >= 0 {
            (Big::from_u64(mant).shl(exp as usize).to_decimal(), 0u128)
        } else {
            let s = (-exp) as u32;
            let (int, f) = if s >= 64 {
                (0u128, mant as u128)
            } else {
                ((mant >> s) as u128, (mant & ((1u64 << s) - 1)) as u128)
            };
            // f / 2^s × 10^17, rounded half to even (glibc printf is exact).
            let p = f * SCALE;
            let (mut q, rem_cmp) = if s >= 128 {
                (0u128, Ordering::Less)
            } else {
                let q = p >> s;
                let r = p & ((1u128 << s) - 1);
                let half = 1u128 << (s - 1);
                (q, r.cmp(&half))
            };
            if rem_cmp == Ordering::Greater || (rem_cmp == Ordering::Equal && q & 1 == 1) {
                q += 1;
            }
            let mut int = int;
            if q == SCALE {
                int += 1;
                q = 0;
            }
            (int.to_string(), q)
        };
        let mut out = String::with_capacity(int.len() + 20);
        if neg {
            out.push('-');
        }
        out.push_str(&int);
        if frac != 0 {
            let digits = format!("{frac:0width$}", width = FRAC_DIGITS as usize);
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        if out == "-0" {
            out = "0".into();
        }
        out
    }
}

/// Parses the exponent part of a number at `s[i..]`: one of `markers`, an optional sign, then
/// only digits to the end (clamped, as an overflowing exponent only needs to be "huge").
fn parse_exponent(s: &[u8], i: usize, markers: &[u8]) -> Option<i64> {
    if !markers.contains(&s[i]) {
        return None;
    }
    let mut j = i + 1;
    let neg = match s.get(j) {
        Some(b'-') => {
            j += 1;
            true
        }
        Some(b'+') => {
            j += 1;
            false
        }
        _ => false,
    };
    if j >= s.len() || !s[j..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut e: i64 = 0;
    for c in &s[j..] {
        e = (e * 10 + (c - b'0') as i64).min(1 << 40);
    }
    Some(if neg { -e } else { e })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let x = Ld::parse(a.as_bytes()).unwrap();
        let y = Ld::parse(b.as_bytes()).unwrap();
        x.sum(y).to_human()
    }

    #[test]
    fn sums_print_like_redis() {
        // Values checked against redis-server 7.0.15 HINCRBYFLOAT.
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("0", "3.0"), "3");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("-0.5", "0.25"), "-0.25");
        assert_eq!(sum("0", "1e-20"), "0");
        assert_eq!(sum("0", "-1e-20"), "0");
        assert_eq!(sum("0", "1.5e20"), "150000000000000000000");
        assert_eq!(sum("0", "0x10"), "16");
        assert_eq!(sum("0", "1.1"), "1.1");
        assert_eq!(sum("0", "3.3333"), "3.3333");
    }

    #[test]
    fn matches_redis_on_sampled_sums() {
        // (stored value, increment, HINCRBYFLOAT reply) from redis-server 7.0.15.
        let cases: &[(&str, &str, &str)] = &[
            ("10.5", "0.1", "10.6"),
            ("0.1", "0.2", "0.3"),
            ("1e-10", "1", "1.0000000001"),
            ("123456789.123456789", "0.000000001", "123456789.12345678999554366"),
            ("1e20", "1", "100000000000000000000"),
            ("1e19", "-1e19", "0"),
            ("9007199254740993", "1", "9007199254740994"),
            ("0.3", "-0.1", "0.2"),
            ("1.7976931348623157e308", "1e308", "279769313486231570002352240441350078789299929179619934003987695617693370918830364684014944221042050987341155710361544171686148029276505307138777262321877129888036065002204239033812550598509174132739480498569620043582760541189365866551522561741435317031294527744011878159793174665688773926186886103199182225408"),
            ("3", "1e-17", "3.00000000000000001"),
            ("3", "5e-18", "3"),
            ("3", "1.5e-17", "3.00000000000000001"),
            ("0", "0.000000000000000005", "0"),
            ("0", "0.000000000000000015", "0.00000000000000002"),
            ("0", "0.000000000000000025", "0.00000000000000002"),
            ("-1", "0.99999999999999999", "-0.00000000000000001"),
            ("5", "0x1p-3", "5.125"),
            ("1e300", "1", "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144"),
            ("0", "12345678901234567890123", "12345678901234567889920"),
            ("0", "-1.23456789e-5", "-0.0000123456789"),
            ("-48910.996702630836808", "-94198954.343277052", "-94247865.33997968283802038"),
            ("0.029794911", "-2.564", "-2.534205089"),
            ("87521718471.86", "-0.97377162", "87521718470.88622838258743286"),
            ("-4.4103526797778e+17", "-6.807915752839e-05", "-441035267977780000"),
            ("2.3585e+07", "-7.3552e-07", "23584999.99999926448072074"),
            ("0.05471874", "-0.42139", "-0.36667126"),
            ("75223786648855.3125", "-6.366627e+15", "-6291403213351144.6875"),
            ("933128.6", "-9568595.832", "-8635467.2319999999999709"),
            ("87.1585", "-3.36e+12", "-3359999999912.84150004386901855"),
            ("-993233761251286.5", "-86795.50989", "-993233761338082.0098876953125"),
            ("-385.0962674", "-3.75632e+14", "-375632000000385.09625244140625"),
            ("-8.85998e-07", "6.89761778776e-07", "-0.00000019623622122"),
            ("57547.6607960868423", "1.570376581137e-07", "57547.6607962438799575"),
            ("-0.0906545762602117", "0.91035979918233256303", "0.81970522292212086"),
            ("5.115e+07", "249920242.249", "301070242.24900000001071021"),
            ("0.000551206029", "49679.61129693261319", "49679.61184813864219123"),
            ("-9.267368401e-05", "-3.185189e+12", "-3185189000000.00009274482727051"),
            ("8361.74371067", "8.48395239e+10", "84839532261.74371066689491272"),
            ("-3.75e+03", "-6.45044449e-05", "-3750.00006450444489992"),
            ("442.27", "-6.769410711507675e-06", "442.26999323058928848"),
            ("9.73e+10", "-9.363470340172e+16", "-93634606101720000"),
            ("-31.23341973677947081", "0.00301932877626379", "-31.23040040800320702"),
            ("9.6e+13", "6e+03", "96000000006000"),
            ("-7.388563e+16", "89959712524379.75", "-73795670287475620.25"),
            ("-7867387.8060548", "-7015093.10919", "-14882480.91524480000043695"),
            ("-7.175951831e+12", "9.52015e+07", "-7175856629500"),
            ("3776.780922637137", "-451928939.0590397", "-451925162.2781170628441032"),
            ("0.0008037209383623", "64411000890.12", "64411000890.12080372124910355"),
            ("2.5393e+08", "-639759405.12", "-385829405.11999999999534339"),
            ("3.0357745e+09", "-2.7734753395454899e+17", "-277347530918774490"),
            ("3.89193498902e+14", "5.2e+04", "389193498954000"),
            ("40.8939148013406211", "-4702831094004591", "-4702831094004550.10595703125"),
            ("9137.708537", "1.61322e-07", "9137.70853716132199995"),
            ("9.398178419049108", "34328584.781", "34328594.17917841904636589"),
            ("6.333593354e+13", "-3.04230983945e+13", "32912835145500"),
            ("4756547.05428", "0.0844666463776", "4756547.13874664637751266"),
            ("9522.44376603882", "-0.071628358171373488", "9522.37213768064862585"),
            ("6.732406e+08", "3.828511697e+16", "38285117643240600"),
            ("-6.5634649072915e+17", "329103.7180358497426", "-656346490728820896.3125"),
            ("2.474741869e+17", "4.40828949e-07", "247474186900000000"),
            ("-6.799539e+07", "3.0023412675772211955", "-67995386.99765873241994996"),
            ("2.6173e-06", "0.09595199112034231", "0.09595460842034231"),
            ("0.00078", "935961025.68", "935961025.6807799999951385"),
            ("966414.8", "-297800326640921", "-297800325674506.20001220703125"),
            ("-0.85604602709167609831", "43603.046", "43602.18995397290832372"),
            ("-3e+01", "7.3280248217396e+15", "7328024821739570"),
            ("-2.52240688139637336e-06", "0.000227128182372189153", "0.00022460577549079"),
            ("904.4172634", "-41361.63598552272015", "-40457.2187221227201519"),
            ("-1.618e+11", "-0.00261114560552354541", "-161800000000.00261114537715912"),
            ("1.91875e+11", "0.009144251823299733", "191875000000.00914424657821655"),
            ("-818337599171458.5", "-2e+03", "-818337599173458.5"),
            ("83295225523.66261292", "-3.4912e+11", "-265824774476.3373870849609375"),
            ("-1.415982182073", "-4170108366075937", "-4170108366075938.416015625"),
            ("-0.02322169101069", "18790099411941552", "18790099411941551.9765625"),
            ("-73889.90357", "-4e+02", "-74289.90357000000000198"),
            ("0.008590890807866803", "-952450154395610.1", "-952450154395610.09136962890625"),
            ("9.2166186039846582645", "-0.009200469884", "9.20741813410065826"),
            ("-97359340667.28", "-452424761.005167246", "-97811765428.28516724705696106"),
            ("-51", "442.91", "391.91"),
            ("-15472075.22", "2897532561940.1924", "2897517089864.97239995002746582"),
        ];
        for (a, b, want) in cases {
            assert_eq!(&sum(a, b), want, "{a} + {b}");
        }
    }

    #[test]
    fn parse_refuses_what_string2ld_refuses() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "1e5000", "-1e5000", "1e-5000", ".",
        ] {
            assert_eq!(Ld::parse(bad.as_bytes()), None, "{bad:?}");
        }
        for good in [
            "inf",
            "-Infinity",
            "+1",
            ".5",
            "5.",
            "1E3",
            "0e-9999",
            "0x1p3",
        ] {
            assert!(Ld::parse(good.as_bytes()).is_some(), "{good:?}");
        }
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(Ld::from_i64(i64::MAX).to_human(), i64::MAX.to_string());
        assert_eq!(Ld::from_i64(i64::MIN).to_human(), i64::MIN.to_string());
        assert_eq!(Ld::from_i64(-7).to_human(), "-7");
    }

    #[test]
    fn timeouts_round_up_to_milliseconds() {
        let ms = |s: &str| {
            Ld::parse(s.as_bytes())
                .unwrap()
                .mul_small(1000)
                .ceil_to_i64()
        };
        assert_eq!(ms("0.1"), 100);
        assert_eq!(ms("0.0001"), 1);
        assert_eq!(ms("-0.0001"), 0);
        assert_eq!(ms("1.5"), 1500);
        assert_eq!(ms("-0.5"), -500);
        assert_eq!(ms("inf"), i64::MIN);
        assert_eq!(ms("1e300"), i64::MIN);
        assert_eq!(ms("9.3e15"), i64::MIN);
        assert_eq!(ms("9.2e15"), 9_200_000_000_000_000_000);
    }
}
