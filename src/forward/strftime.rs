//! Ruby-compatible `strftime` for event times: the `time_format` of a route and the date
//! parts of key templates (`logs:${tag}:%Y%m%d`), as fluentd's `<inject>` `time_format` and
//! fluent-plugin-redis's `strftime_format` write them (`shared/spec/fluent.md` §5.1).
//!
//! A format is parsed once into pieces, so rendering (once per record) does no parsing and
//! no allocation beyond the output. The civil date comes straight from the day count
//! (Howard Hinnant's `civil_from_days`): no time zone database, no chrono, correct for
//! negative times, leap years and years past 2106. Time zones are fixed UTC offsets only.
//!
//! Supported conversions (Ruby `Time#strftime` semantics): `%Y %C %y %m %d %e %j %H %k %I %l
//! %M %S %p %P %a %A %b %h %B %u %w %s %z %:z %Z %F %T %R %D %L %N %1N…%9N %n %t %%`. Flags
//! and widths (`%-d`, `%_m`) are not supported and are refused when parsed.

/// Why a format string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrftimeError {
    /// A conversion kura does not implement; refused at start rather than written out
    /// literally (Ruby's behaviour), which would produce silently wrong keys.
    #[error("unsupported strftime conversion '{0}' (write %% for a literal '%')")]
    Unsupported(String),
    /// A lone `%` at the end.
    #[error("a lone '%' at the end of a time format (write %% for a literal '%')")]
    Trailing,
}

/// One conversion of a parsed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// `%Y`: the year, at least 4 digits (5 with the sign when negative), as Ruby.
    Year,
    /// `%C`: the century (year / 100, floored), 2 digits.
    Century,
    /// `%y`: the year modulo 100, 2 digits.
    Year2,
    /// `%m`: month 01..12.
    Month,
    /// `%d`: day 01..31.
    Day,
    /// `%e`: day, space padded.
    DaySpace,
    /// `%j`: day of the year 001..366.
    YearDay,
    /// `%H`: hour 00..23.
    Hour,
    /// `%k`: hour, space padded.
    HourSpace,
    /// `%I`: hour 01..12.
    Hour12,
    /// `%l`: hour 1..12, space padded.
    Hour12Space,
    /// `%M`: minute.
    Minute,
    /// `%S`: second.
    Second,
    /// `%p`: `AM` / `PM`.
    AmPm,
    /// `%P`: `am` / `pm`.
    AmPmLower,
    /// `%a`: `Sun`…
    WeekdayShort,
    /// `%A`: `Sunday`…
    WeekdayLong,
    /// `%b`, `%h`: `Jan`…
    MonthShort,
    /// `%B`: `January`…
    MonthLong,
    /// `%u`: weekday 1..7, Monday is 1.
    WeekdayMon1,
    /// `%w`: weekday 0..6, Sunday is 0.
    WeekdaySun0,
    /// `%s`: seconds since the epoch (independent of the offset).
    Epoch,
    /// `%z`: `+0900`.
    Offset,
    /// `%:z`: `+09:00`.
    OffsetColon,
    /// `%Z`: `UTC` at offset 0, else the offset as `+09:00`.
    ZoneName,
    /// `%1N`…`%9N` (`%L` = 3, `%N` = 9): the fraction of the second, truncated to this
    /// many digits.
    Fraction(u8),
}

/// One piece of a parsed format: literal bytes or a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(Vec<u8>),
    Conv(Conv),
}

/// A parsed `strftime` format, ready to render event times quickly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strftime {
    pieces: Vec<Piece>,
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Strftime {
    /// Parses a format, refusing conversions kura does not implement so a typo fails at
    /// start instead of producing wrong keys.
    pub fn parse(format: &str) -> Result<Strftime, StrftimeError> {
        let mut pieces = Vec::new();
        let mut lit: Vec<u8> = Vec::new();
        fn push(pieces: &mut Vec<Piece>, lit: &mut Vec<u8>, p: Option<Piece>) {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(lit)));
            }
            pieces.extend(p);
        }
        let b = format.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            let Some(&c) = b.get(i + 1) else {
                return Err(StrftimeError::Trailing);
            };
            let mut used = 2;
            let conv: &[Conv] = match c {
                b'%' => {
                    lit.push(b'%');
                    i += 2;
                    continue;
                }
                b'n' => {
                    lit.push(b'\n');
                    i += 2;
                    continue;
                }
                b't' => {
                    lit.push(b'\t');
                    i += 2;
                    continue;
                }
                b'Y' => &[Conv::Year],
                b'C' => &[Conv::Century],
                b'y' => &[Conv::Year2],
                b'm' => &[Conv::Month],
                b'd' => &[Conv::Day],
                b'e' => &[Conv::DaySpace],
                b'j' => &[Conv::YearDay],
                b'H' => &[Conv::Hour],
                b'k' => &[Conv::HourSpace],
                b'I' => &[Conv::Hour12],
                b'l' => &[Conv::Hour12Space],
                b'M' => &[Conv::Minute],
                b'S' => &[Conv::Second],
                b'p' => &[Conv::AmPm],
                b'P' => &[Conv::AmPmLower],
                b'a' => &[Conv::WeekdayShort],
                b'A' => &[Conv::WeekdayLong],
                b'b' | b'h' => &[Conv::MonthShort],
                b'B' => &[Conv::MonthLong],
                b'u' => &[Conv::WeekdayMon1],
                b'w' => &[Conv::WeekdaySun0],
                b's' => &[Conv::Epoch],
                b'z' => &[Conv::Offset],
                b'Z' => &[Conv::ZoneName],
                b'L' => &[Conv::Fraction(3)],
                b'N' => &[Conv::Fraction(9)],
                b':' if b.get(i + 2) == Some(&b'z') => {
                    used = 3;
                    &[Conv::OffsetColon]
                }
                b'1'..=b'9' if b.get(i + 2) == Some(&b'N') => {
                    used = 3;
                    match c - b'0' {
                        1 => &[Conv::Fraction(1)],
                        2 => &[Conv::Fraction(2)],
                        3 => &[Conv::Fraction(3)],
                        4 => &[Conv::Fraction(4)],
                        5 => &[Conv::Fraction(5)],
                        6 => &[Conv::Fraction(6)],
                        7 => &[Conv::Fraction(7)],
                        8 => &[Conv::Fraction(8)],
                        _ => &[Conv::Fraction(9)],
                    }
                }
                // Combinations, expanded here so rendering stays one flat loop.
                b'F' => &[Conv::Year, Conv::Month, Conv::Day],
                b'T' => &[Conv::Hour, Conv::Minute, Conv::Second],
                b'R' => &[Conv::Hour, Conv::Minute],
                b'D' => &[Conv::Month, Conv::Day, Conv::Year2],
                _ => {
                    let end = format[i + 1..]
                        .char_indices()
                        .nth(1)
                        .map_or(format.len(), |(k, _)| i + 1 + k);
                    return Err(StrftimeError::Unsupported(format[i..end].to_string()));
                }
            };
            // The separators of the combined conversions.
            let sep: &[u8] = match c {
                b'F' => b"-",
                b'T' | b'R' => b":",
                b'D' => b"/",
                _ => b"",
            };
            for (k, conv) in conv.iter().enumerate() {
                if k > 0 {
                    lit.extend_from_slice(sep);
                }
                push(&mut pieces, &mut lit, Some(Piece::Conv(*conv)));
            }
            i += used;
        }
        push(&mut pieces, &mut lit, None);
        Ok(Strftime { pieces })
    }

    /// Reports whether the format has any conversion: a format without one renders the
    /// same text for every time, so callers can skip rendering per record.
    pub fn uses_time(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Conv(_)))
    }

    /// Appends `secs.nanos` (seconds since the epoch, UTC) shown at `utc_offset_secs` east of
    /// UTC. Negative `secs` are times before 1970 (the fraction still counts forward).
    pub fn render(&self, secs: i64, nanos: u32, utc_offset_secs: i32, out: &mut Vec<u8>) {
        debug_assert!(nanos < 1_000_000_000, "nanos out of range: {nanos}");
        let nanos = nanos.min(999_999_999);
        // Broken-down time, computed at the first conversion that needs it.
        let mut tm: Option<Tm> = None;
        for piece in &self.pieces {
            let conv = match piece {
                Piece::Lit(b) => {
                    out.extend_from_slice(b);
                    continue;
                }
                Piece::Conv(c) => *c,
            };
            let t = *tm.get_or_insert_with(|| Tm::new(secs, utc_offset_secs));
            match conv {
                Conv::Year => {
                    if t.year < 0 {
                        out.push(b'-');
                    }
                    push_num(out, t.year.unsigned_abs(), 4, b'0');
                }
                Conv::Century => push_signed(out, t.year.div_euclid(100), 2),
                Conv::Year2 => push_num(out, t.year.rem_euclid(100) as u64, 2, b'0'),
                Conv::Month => push_num(out, t.month.into(), 2, b'0'),
                Conv::Day => push_num(out, t.day.into(), 2, b'0'),
                Conv::DaySpace => push_num(out, t.day.into(), 2, b' '),
                Conv::YearDay => push_num(out, t.yday.into(), 3, b'0'),
                Conv::Hour => push_num(out, t.hour.into(), 2, b'0'),
                Conv::HourSpace => push_num(out, t.hour.into(), 2, b' '),
                Conv::Hour12 => push_num(out, hour12(t.hour), 2, b'0'),
                Conv::Hour12Space => push_num(out, hour12(t.hour), 2, b' '),
                Conv::Minute => push_num(out, t.minute.into(), 2, b'0'),
                Conv::Second => push_num(out, t.second.into(), 2, b'0'),
                Conv::AmPm => out.extend_from_slice(if t.hour < 12 { b"AM" } else { b"PM" }),
                Conv::AmPmLower => out.extend_from_slice(if t.hour < 12 { b"am" } else { b"pm" }),
                Conv::WeekdayShort => out.extend_from_slice(&WEEKDAYS[t.wday].as_bytes()[..3]),
                Conv::WeekdayLong => out.extend_from_slice(WEEKDAYS[t.wday].as_bytes()),
                Conv::MonthShort => {
                    out.extend_from_slice(&MONTHS[usize::from(t.month) - 1].as_bytes()[..3])
                }
                Conv::MonthLong => {
                    out.extend_from_slice(MONTHS[usize::from(t.month) - 1].as_bytes())
                }
                Conv::WeekdayMon1 => {
                    push_num(out, if t.wday == 0 { 7 } else { t.wday as u64 }, 1, b'0')
                }
                Conv::WeekdaySun0 => push_num(out, t.wday as u64, 1, b'0'),
                Conv::Epoch => push_signed(out, secs, 1),
                Conv::Offset => push_offset(out, utc_offset_secs, false),
                Conv::OffsetColon => push_offset(out, utc_offset_secs, true),
                Conv::ZoneName => {
                    if utc_offset_secs == 0 {
                        out.extend_from_slice(b"UTC");
                    } else {
                        push_offset(out, utc_offset_secs, true);
                    }
                }
                Conv::Fraction(digits) => {
                    let scaled = u64::from(nanos) / 10u64.pow(9 - u32::from(digits));
                    push_num(out, scaled, digits.into(), b'0');
                }
            }
        }
    }
}

/// A broken-down local time.
#[derive(Debug, Clone, Copy)]
struct Tm {
    year: i64,
    month: u8,
    day: u8,
    /// Day of the year, 1-based.
    yday: u16,
    hour: u8,
    minute: u8,
    second: u8,
    /// Day of the week, Sunday = 0.
    wday: usize,
}

impl Tm {
    fn new(secs: i64, utc_offset_secs: i32) -> Tm {
        // Saturating: only times near ±292 billion years are affected.
        let local = secs.saturating_add(utc_offset_secs.into());
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Tm {
            year,
            month,
            day,
            yday: day_of_year(year, month, day),
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
            // 1970-01-01 was a Thursday.
            wday: (days + 4).rem_euclid(7) as usize,
        }
    }
}

/// Converts days since 1970-01-01 to (year, month 1..12, day 1..31) in the proleptic
/// Gregorian calendar (Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn day_of_year(year: i64, month: u8, day: u8) -> u16 {
    const BEFORE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = u16::from(month > 2 && is_leap(year));
    BEFORE[usize::from(month) - 1] + u16::from(day) + leap
}

fn hour12(hour: u8) -> u64 {
    match hour % 12 {
        0 => 12,
        h => h.into(),
    }
}

/// Appends `n` in decimal, left-padded with `pad` to `width`.
fn push_num(out: &mut Vec<u8>, n: u64, width: usize, pad: u8) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    out.extend(std::iter::repeat_n(pad, width.saturating_sub(digits)));
    out.extend_from_slice(&buf[i..]);
}

/// Appends a signed number zero-padded to `width`, the sign included in the width
/// (C's `%0*ld`, which Ruby uses: `%C` of year -1 is `-1`).
fn push_signed(out: &mut Vec<u8>, n: i64, width: usize) {
    if n < 0 {
        out.push(b'-');
        push_num(out, n.unsigned_abs(), width.saturating_sub(1), b'0');
    } else {
        push_num(out, n.unsigned_abs(), width, b'0');
    }
}

/// Appends `+hhmm` or `+hh:mm`.
fn push_offset(out: &mut Vec<u8>, offset: i32, colon: bool) {
    out.push(if offset < 0 { b'-' } else { b'+' });
    let abs = offset.unsigned_abs() / 60;
    push_num(out, (abs / 60).into(), 2, b'0');
    if colon {
        out.push(b':');
    }
    push_num(out, (abs % 60).into(), 2, b'0');
}

/// Parses a route's `timezone`: empty, `UTC`, `GMT` or `Z` for UTC, or a fixed offset
/// `+09:00`, `-0500`, `+09`. Named zones (`Asia/Tokyo`) need a time zone database kura does
/// not carry, so they are refused. Returns seconds east of UTC.
pub fn parse_utc_offset(zone: &str) -> Option<i32> {
    if zone.is_empty() || ["utc", "gmt", "z"].contains(&zone.to_ascii_lowercase().as_str()) {
        return Some(0);
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        2 => (rest, "00"),
        4 => rest.split_at(2),
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    if !(h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, secs: i64, nanos: u32, off: i32) -> String {
        let mut out = Vec::new();
        Strftime::parse(f)
            .unwrap()
            .render(secs, nanos, off, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_instants() {
        // The spec's example: 2015-09-07T01:23:04Z (§1.3), a Monday.
        let t = 1_441_588_984;
        assert_eq!(
            fmt("%Y-%m-%dT%H:%M:%S%z", t, 0, 0),
            "2015-09-07T01:23:04+0000"
        );
        assert_eq!(fmt("%F %T", t, 0, 0), "2015-09-07 01:23:04");
        assert_eq!(
            fmt("%a %A %b %h %B", t, 0, 0),
            "Mon Monday Sep Sep September"
        );
        assert_eq!(fmt("%e|%j|%y|%C|%u|%w", t, 0, 0), " 7|250|15|20|1|1");
        assert_eq!(fmt("%I %l %p %P %k", t, 0, 0), "01  1 AM am  1");
        assert_eq!(fmt("%s", t, 0, 9 * 3600), "1441588984");
        assert_eq!(fmt("%D %R %%Y %Z", t, 0, 0), "09/07/15 01:23 %Y UTC");
        // Noon and midnight in 12-hour form.
        assert_eq!(fmt("%I%p", 43_200, 0, 0), "12PM");
        assert_eq!(fmt("%I%p", 0, 0, 0), "12AM");
    }

    #[test]
    fn fractions_truncate() {
        let t = 1_441_588_984;
        let n = 123_456_789;
        assert_eq!(fmt("%L", t, n, 0), "123");
        assert_eq!(fmt("%N", t, n, 0), "123456789");
        assert_eq!(fmt("%3N %6N %9N %1N", t, n, 0), "123 123456 123456789 1");
        assert_eq!(fmt("%L %N", t, 999_999, 0), "000 000999999");
        assert_eq!(
            fmt("%Y-%m-%dT%H:%M:%S.%L%:z", t, n, 0),
            "2015-09-07T01:23:04.123+00:00"
        );
    }

    #[test]
    fn leap_days_and_year_ends() {
        // 2024-02-29T12:00:00Z, a Thursday, day 60.
        assert_eq!(fmt("%F %a %j", 1_709_208_000, 0, 0), "2024-02-29 Thu 060");
        // 2024-12-31 is day 366 of a leap year, 2023-12-31 day 365.
        assert_eq!(fmt("%F %j", 1_735_603_200, 0, 0), "2024-12-31 366");
        assert_eq!(fmt("%F %j", 1_703_980_800, 0, 0), "2023-12-31 365");
        // 2000 is a leap year (divisible by 400), 1900 is not.
        assert_eq!(fmt("%F", 951_782_400, 0, 0), "2000-02-29");
        assert_eq!(fmt("%F", -2_203_891_200, 0, 0), "1900-03-01");
    }

    #[test]
    fn negative_times() {
        assert_eq!(fmt("%F %T %a", -1, 0, 0), "1969-12-31 23:59:59 Wed");
        // The fraction counts forward from the (floored) second.
        assert_eq!(fmt("%T.%L", -1, 500_000_000, 0), "23:59:59.500");
        assert_eq!(fmt("%s", -1, 0, 0), "-1");
        assert_eq!(fmt("%F", -86_400 * 365, 0, 0), "1969-01-01");
        // Year 1 and year 0 (= 1 BC), 4-digit padded; negative years as Ruby: -0001.
        assert_eq!(fmt("%Y-%m-%d", -62_135_596_800, 0, 0), "0001-01-01");
        assert_eq!(fmt("%Y", -62_167_219_200, 0, 0), "0000");
        assert_eq!(fmt("%Y %y %C", -62_198_755_200, 0, 0), "-0001 99 -1");
    }

    #[test]
    fn far_future() {
        // One second past what uint32 EventTime seconds can hold.
        assert_eq!(fmt("%FT%T", 4_294_967_296, 0, 0), "2106-02-07T06:28:16");
        assert_eq!(fmt("%Y", 253_402_300_800, 0, 0), "10000");
        // Extremes do not panic.
        fmt("%F %T %j %a", i64::MAX, 999_999_999, 86_340);
        fmt("%F %T %j %a", i64::MIN, 0, -86_340);
    }

    #[test]
    fn offsets() {
        let t = 1_441_588_984; // 01:23:04Z
        assert_eq!(
            fmt("%F %T %z %:z %Z", t, 0, 9 * 3600),
            "2015-09-07 10:23:04 +0900 +09:00 +09:00"
        );
        assert_eq!(
            fmt("%F %T %z %:z", t, 0, -(5 * 3600 + 30 * 60)),
            "2015-09-06 19:53:04 -0530 -05:30"
        );
        assert_eq!(fmt("%z %Z", t, 0, 0), "+0000 UTC");
        assert_eq!(parse_utc_offset(""), Some(0));
        assert_eq!(parse_utc_offset("UTC"), Some(0));
        assert_eq!(parse_utc_offset("Z"), Some(0));
        assert_eq!(parse_utc_offset("+09:00"), Some(32_400));
        assert_eq!(parse_utc_offset("-0500"), Some(-18_000));
        assert_eq!(parse_utc_offset("+05"), Some(18_000));
        assert_eq!(parse_utc_offset("-00:30"), Some(-1800));
        for bad in [
            "Asia/Tokyo",
            "+9",
            "+24:00",
            "+09:60",
            "09:00",
            "+0a:00",
            "+09-00",
        ] {
            assert_eq!(parse_utc_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Strftime::parse("%Y%Q"),
            Err(StrftimeError::Unsupported("%Q".into()))
        );
        assert_eq!(
            Strftime::parse("%-d"),
            Err(StrftimeError::Unsupported("%-".into()))
        );
        assert_eq!(
            Strftime::parse("%é"),
            Err(StrftimeError::Unsupported("%é".into()))
        );
        assert_eq!(Strftime::parse("50%"), Err(StrftimeError::Trailing));
        assert!(!Strftime::parse("plain %% text").unwrap().uses_time());
        assert!(Strftime::parse("%s").unwrap().uses_time());
        assert_eq!(fmt("", 0, 0, 0), "");
    }
}
