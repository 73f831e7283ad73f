//! Redis's `long double` arithmetic (INCRBYFLOAT, HINCRBYFLOAT), emulated exactly.
//!
//! Redis parses with `strtold`, adds in x87 80-bit extended precision (64-bit mantissa) and
//! prints with `%.17Lf` minus trailing zeros (`util.c` `string2ld`, `ld2string` with
//! `LD_STR_HUMAN`). `f64` gives other digits (`0.1` prints as `0.10000000000000001`), so values
//! are kept as `mantissa × 2^exp` and every step is done on exact big integers, rounded to
//! nearest-even once, as the FPU and glibc do.

use std::cmp::Ordering;

/// Bits of the x87 extended mantissa (explicit integer bit).
const MANT_BITS: i64 = 64;
/// Exponent of the smallest subnormal's unit: values are `m × 2^e` with `e >= EXP_MIN`.
const EXP_MIN: i64 = -16445;
/// Every finite value is below `2^EXP_LIMIT`.
const EXP_LIMIT: i64 = 16384;
/// `string2ld`'s buffer (`MAX_LONG_DOUBLE_CHARS`): longer inputs are not floats.
const MAX_CHARS: usize = 5 * 1024;

/// A finite or infinite `long double`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `(-1)^neg × mant × 2^exp`; zero has `mant == 0`.
    Finite {
        /// Sign.
        neg: bool,
        /// Mantissa (at most 64 significant bits).
        mant: u64,
        /// Binary exponent of the mantissa's unit.
        exp: i32,
    },
    /// Positive or negative infinity (`strtold` accepts "inf").
    Inf {
        /// Sign.
        neg: bool,
    },
}

impl LongDouble {
    /// Returns zero.
    pub const ZERO: LongDouble = LongDouble::Finite {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// Parses as Redis's `string2ld`: the whole input must be a `strtold` number, no leading
    /// space, not NaN, not out of range (overflow or underflow to zero).
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_CHARS || s[0].is_ascii_whitespace() || s[0] == 0x0b {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble::Inf { neg });
        }
        let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            parse_hex(neg, &body[2..])?
        } else {
            parse_dec(neg, body)?
        };
        Some(v)
    }

    /// Returns the value of an integer.
    pub fn from_i64(n: i64) -> LongDouble {
        LongDouble::Finite {
            neg: n < 0,
            mant: n.unsigned_abs(),
            exp: 0,
        }
    }

    /// Adds as the FPU does (round to nearest even); `None` when the sum is NaN or infinite,
    /// the case INCRBYFLOAT refuses.
    pub fn checked_add(self, other: LongDouble) -> Option<LongDouble> {
        let (
            LongDouble::Finite {
                neg: na,
                mant: ma,
                exp: ea,
            },
            LongDouble::Finite {
                neg: nb,
                mant: mb,
                exp: eb,
            },
        ) = (self, other)
        else {
            return None;
        };
        let e = ea.min(eb) as i64;
        let a = Big::from_u64(ma).shl((ea as i64 - e) as usize);
        let b = Big::from_u64(mb).shl((eb as i64 - e) as usize);
        let (neg, sum) = if na == nb {
            (na, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Less => (nb, b.sub(&a)),
                Ordering::Greater => (na, a.sub(&b)),
                Ordering::Equal => return Some(LongDouble::ZERO),
            }
        };
        match round(neg, sum, e, false) {
            v @ LongDouble::Finite { .. } => Some(v),
            LongDouble::Inf { .. } => None,
        }
    }

    /// Formats as `ld2string(…, LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and a trailing dot
    /// removed, `-0` printed as `0`.
    pub fn to_human(self) -> String {
        let (neg, mant, exp) = match self {
            LongDouble::Inf { neg } => return if neg { "-inf" } else { "inf" }.to_string(),
            LongDouble::Finite { neg, mant, exp } => (neg, mant, exp as i64),
        };
        // The value times 10^17, rounded to an integer: its digits are the %.17Lf digits.
        let scaled = if exp >= 0 {
            Big::from_u64(mant).shl(exp as usize).mul_pow10(17)
        } else {
            let (q, half, sticky) = Big::from_u64(mant).mul_pow10(17).shr_round(-exp as usize);
            if half && (sticky || q.is_odd()) {
                q.add(&Big::from_u64(1))
            } else {
                q
            }
        };
        let mut digits = scaled.to_decimal();
        if digits.len() < 18 {
            digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
        }
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// Rounds `(-1)^neg × n × 2^e` (plus a sticky remainder below it) to a `long double`.
fn round(neg: bool, n: Big, e: i64, sticky_in: bool) -> LongDouble {
    if n.is_zero() {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    let bits = n.bits() as i64;
    let mut shift = bits - MANT_BITS;
    if e + shift < EXP_MIN {
        shift = EXP_MIN - e;
    }
    let (mut mant, mut exp) = if shift > 0 {
        let (q, half, sticky) = n.shr_round(shift as usize);
        let mut m = q.to_u64();
        let mut ex = e + shift;
        if half && (sticky || sticky_in || m & 1 == 1) {
            match m.checked_add(1) {
                Some(v) => m = v,
                None => {
                    m = 1 << 63;
                    ex += 1;
                }
            }
        }
        (m, ex)
    } else {
        (n.shl((-shift) as usize).to_u64(), e + shift)
    };
    if mant == 0 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    // Keep the representation canonical-ish: no trailing zero bits beyond what is needed.
    let tz = mant.trailing_zeros() as i64;
    mant >>= tz;
    exp += tz;
    if 64 - mant.leading_zeros() as i64 + exp > EXP_LIMIT {
        return LongDouble::Inf { neg };
    }
    LongDouble::Finite {
        neg,
        mant,
        exp: exp as i32,
    }
}

/// Reports whether a nonzero input rounded to zero or to infinity (`strtold`'s ERANGE cases
/// that `string2ld` rejects).
fn in_range(v: LongDouble, nonzero: bool) -> Option<LongDouble> {
    match v {
        LongDouble::Inf { .. } => None,
        LongDouble::Finite { mant: 0, .. } if nonzero => None,
        v => Some(v),
    }
}

/// Parses `digits[.digits][e[+-]digits]` (at least one mantissa digit, all input used).
fn parse_dec(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let mut i = 0;
    let mut mant = Big::from_u64(0);
    let mut ndigits = 0usize;
    // Digits from the first nonzero one: with exp10 they give the order of magnitude.
    let mut significant = 0i64;
    let mut exp10: i64 = 0;
    let mut frac = false;
    loop {
        match s.get(i) {
            Some(b'.') if !frac => frac = true,
            Some(c) if c.is_ascii_digit() => {
                mant = mant.mul_small(10).add_small((c - b'0') as u32);
                ndigits += 1;
                if !mant.is_zero() {
                    significant += 1;
                }
                if frac {
                    exp10 -= 1;
                }
            }
            _ => break,
        }
        i += 1;
    }
    if ndigits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'e' {
        i += 1;
        let eneg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            e = (e * 10 + (s[i] - b'0') as i64).min(1 << 40);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if eneg { -e } else { e };
    }
    if i != s.len() {
        return None;
    }
    if mant.is_zero() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    // Far outside the range whatever the digits: overflow or underflow (both rejected).
    let magnitude = exp10 + significant;
    if magnitude > 4940 {
        return None;
    }
    if magnitude < -4960 {
        return None;
    }
    let v = if exp10 >= 0 {
        round(neg, mant.mul_pow10(exp10 as usize), 0, false)
    } else {
        let div = Big::from_u64(1).mul_pow10((-exp10) as usize);
        // Enough quotient bits for a 64-bit mantissa plus rounding information.
        let shift = (div.bits() as i64 - mant.bits() as i64 + MANT_BITS + 2).max(0) as usize;
        let (q, rem_nonzero) = mant.shl(shift).div_rem(&div);
        round(neg, q, -(shift as i64), rem_nonzero)
    };
    in_range(v, true)
}

/// Parses the part after `0x`: `hex[.hex][p[+-]digits]`.
fn parse_hex(neg: bool, s: &[u8]) -> Option<LongDouble> {
    let mut i = 0;
    let mut mant = Big::from_u64(0);
    let mut ndigits = 0usize;
    let mut exp2: i64 = 0;
    let hex = |c: u8| (c as char).to_digit(16);
    while let Some(d) = s.get(i).and_then(|&c| hex(c)) {
        mant = mant.shl(4).add_small(d);
        ndigits += 1;
        i += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while let Some(d) = s.get(i).and_then(|&c| hex(c)) {
            mant = mant.shl(4).add_small(d);
            ndigits += 1;
            exp2 -= 4;
            i += 1;
        }
    }
    if ndigits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        i += 1;
        let eneg = match s.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            e = (e * 10 + (s[i] - b'0') as i64).min(1 << 40);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp2 += if eneg { -e } else { e };
    }
    if i != s.len() {
        return None;
    }
    if mant.is_zero() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let magnitude = exp2 + mant.bits() as i64;
    if !(EXP_MIN - 2..=EXP_LIMIT + 1).contains(&magnitude) {
        return None;
    }
    in_range(round(neg, mant, exp2, false), true)
}

/// A minimal unsigned big integer (little-endian 32-bit limbs), enough for exact conversion.
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

    fn is_odd(&self) -> bool {
        self.0.first().is_some_and(|l| l & 1 == 1)
    }

    fn bits(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// The low 64 bits (callers ensure the value fits).
    fn to_u64(&self) -> u64 {
        let lo = self.0.first().copied().unwrap_or(0) as u64;
        let hi = self.0.get(1).copied().unwrap_or(0) as u64;
        lo | hi << 32
    }

    fn mul_small(mut self, m: u32) -> Big {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self
    }

    fn add_small(mut self, a: u32) -> Big {
        let mut carry = a as u64;
        for l in self.0.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
        self
    }

    fn mul_pow10(mut self, mut k: usize) -> Big {
        while k >= 9 {
            self = self.mul_small(1_000_000_000);
            k -= 9;
        }
        if k > 0 {
            self = self.mul_small(10u32.pow(k as u32));
        }
        self
    }

    fn shl(&self, n: usize) -> Big {
        if self.is_zero() {
            return Big(Vec::new());
        }
        let (limbs, bits) = (n / 32, n % 32);
        let mut out = vec![0u32; limbs];
        out.reserve(self.0.len() + 1);
        if bits == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push(l << bits | carry);
                carry = l >> (32 - bits);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    /// Shifts right by `n`; returns the quotient, the highest dropped bit and whether any
    /// lower dropped bit is set.
    fn shr_round(&self, n: usize) -> (Big, bool, bool) {
        if n == 0 {
            return (self.clone(), false, false);
        }
        let half = self.bit(n - 1);
        let k = n - 1;
        let full = k / 32;
        let sticky = self.0.iter().take(full).any(|l| *l != 0)
            || (!k.is_multiple_of(32)
                && self
                    .0
                    .get(full)
                    .is_some_and(|l| l & ((1u32 << (k % 32)) - 1) != 0));
        let (limbs, bits) = (n / 32, n % 32);
        let src = self.0.get(limbs..).unwrap_or(&[]);
        let mut out = Vec::with_capacity(src.len());
        for (i, &l) in src.iter().enumerate() {
            let hi = if bits == 0 {
                0
            } else {
                src.get(i + 1).map_or(0, |h| h << (32 - bits))
            };
            out.push(if bits == 0 { l } else { l >> bits | hi });
        }
        let mut b = Big(out);
        b.trim();
        (b, half, sticky)
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = self.0.get(i).copied().unwrap_or(0) as u64
                + o.0.get(i).copied().unwrap_or(0) as u64
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry > 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self - o`, for `self >= o`.
    fn sub(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - o.0.get(i).copied().unwrap_or(0) as i64 - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// Long division; returns the quotient and whether the remainder is nonzero.
    fn div_rem(&self, d: &Big) -> (Big, bool) {
        let mut rem = self.clone();
        if self.cmp(d) == Ordering::Less {
            return (Big(Vec::new()), !rem.is_zero());
        }
        let span = self.bits() - d.bits();
        let mut q = Big(vec![0; span / 32 + 1]);
        let mut sh = d.shl(span);
        for i in (0..=span).rev() {
            if rem.cmp(&sh) != Ordering::Less {
                rem = rem.sub(&sh);
                q.0[i / 32] |= 1 << (i % 32);
            }
            if i > 0 {
                sh = sh.shr_round(1).0;
            }
        }
        q.trim();
        (q, !rem.is_zero())
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut chunks = Vec::new();
        let mut cur = self.0.clone();
        while !cur.is_empty() {
            let mut rem = 0u64;
            for l in cur.iter_mut().rev() {
                let v = rem << 32 | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            while cur.last() == Some(&0) {
                cur.pop();
            }
            chunks.push(rem as u32);
        }
        let mut out = String::with_capacity(chunks.len() * 9);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&c.to_string());
            } else {
                out.push_str(&format!("{c:09}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let a = LongDouble::parse(a.as_bytes())?;
        let b = LongDouble::parse(b.as_bytes())?;
        a.checked_add(b).map(|v| v.to_human())
    }

    // Expected values observed on redis-server 7.0.15 (x86-64).
    #[test]
    fn formats_like_redis() {
        assert_eq!(incr("0", "0.1").as_deref(), Some("0.1"));
        assert_eq!(incr("0", "3").as_deref(), Some("3"));
        assert_eq!(incr("0", "5.0e3").as_deref(), Some("5000"));
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("1", "0x10").as_deref(), Some("17"));
        assert_eq!(incr("17", "+.5").as_deref(), Some("17.5"));
        assert_eq!(incr("17.5", "5.").as_deref(), Some("22.5"));
        assert_eq!(incr("22.5", "0x1p-3").as_deref(), Some("22.625"));
        assert_eq!(incr("0", "-0").as_deref(), Some("0"));
        assert_eq!(
            incr("1", "-1.00000000000000000000001").as_deref(),
            Some("0")
        );
        assert_eq!(
            incr("0", "0.000000000000000011444091796875").as_deref(),
            Some("0.00000000000000001")
        );
        assert_eq!(incr("17", "1e-4940").as_deref(), Some("17"));
        assert_eq!(incr("1", "inf"), None);
        let big = incr("1e4900", "1e4900").unwrap_or_default();
        assert_eq!(big.len(), 4901);
        assert!(big.starts_with("20000000000000000000541662446138069966644810500815766869"));
        let big = incr("0.1", "1e400").unwrap_or_default();
        assert!(big.starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
    }

    #[test]
    fn rejects_what_string2ld_rejects() {
        for bad in [
            "", " 1", "1 ", "nan", "abc", "1e", "0x", ".", "1e-5000", "1e5000", "--1", "1.2.3",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(LongDouble::parse(b"0e-99999").is_some());
        assert!(LongDouble::parse(b"-inf").is_some());
    }
}
