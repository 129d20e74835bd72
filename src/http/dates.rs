//! HTTP-date (RFC 9110 §5.6.7): parsing all three formats to Unix seconds,
//! formatting the preferred IMF-fixdate.
//!
//! Recipients must accept the two obsolete formats as well as IMF-fixdate
//! (RFC 9110 §5.6.7), so the parser reads:
//!
//! - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
//! - rfc850-date: `Sunday, 06-Nov-94 08:49:37 GMT`
//! - asctime-date: `Sun Nov  6 08:49:37 1994`
//!
//! Choices where the RFC leaves room, all documented on [`parse_http_date_at`]:
//! names compare case-insensitively, the day name need not agree with the
//! date, anything else outside the grammar is rejected (no extra spaces, no
//! `UTC`, no one-digit hours, no two-digit years in IMF-fixdate), and
//! optional whitespace around the whole value is ignored because it is not
//! part of a field value (RFC 9110 §5.5).

use crate::http::trim_ows;
use std::time::{SystemTime, UNIX_EPOCH};

/// `0000-01-01T00:00:00Z`, the earliest instant a four-digit year can name.
pub const MIN_HTTP_DATE: i64 = -62_167_219_200;

/// `9999-12-31T23:59:59Z`, the latest instant a four-digit year can name.
pub const MAX_HTTP_DATE: i64 = 253_402_300_799;

const SECONDS_PER_DAY: i64 = 86_400;

/// `day-name` (RFC 9110 §5.6.7), Sunday first so the index is the weekday.
const DAY_NAMES: [&[u8]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];

/// `day-name-l` of the rfc850-date (RFC 9110 §5.6.7), same order.
const DAY_NAMES_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];

/// `month` (RFC 9110 §5.6.7), January first.
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Days since 1970-01-01 of a proleptic-Gregorian civil date (month 1..=12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March so the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A parsed but not yet validated date; the year may still be two digits.
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

/// A byte cursor for the fixed-layout date grammars.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.rest = self.rest.strip_prefix(lit)?;
        Some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.rest = tail;
        Some(head.iter().fold(0, |v, &d| v * 10 + i64::from(d - b'0')))
    }

    /// One of `names`, compared case-insensitively; its index.
    fn name(&mut self, names: &[&[u8]]) -> Option<usize> {
        names
            .iter()
            .position(|name| match self.rest.get(..name.len()) {
                Some(head) if head.eq_ignore_ascii_case(name) => {
                    self.rest = self.rest.get(name.len()..).unwrap_or_default();
                    true
                }
                _ => false,
            })
    }

    fn month(&mut self) -> Option<i64> {
        self.name(&MONTHS).map(|i| i as i64 + 1)
    }

    /// `time-of-day = hour ":" minute ":" second` (RFC 9110 §5.6.7).
    fn time_of_day(&mut self, f: &mut Fields) -> Option<()> {
        f.hour = self.digits(2)?;
        self.literal(b":")?;
        f.minute = self.digits(2)?;
        self.literal(b":")?;
        f.second = self.digits(2)?;
        Some(())
    }

    /// `GMT`, case-insensitively (see [`parse_http_date_at`]).
    fn gmt(&mut self) -> Option<()> {
        self.name(&[b"GMT"]).map(|_| ())
    }

    fn end(&self) -> Option<()> {
        self.rest.is_empty().then_some(())
    }
}

fn empty_fields() -> Fields {
    Fields {
        year: 0,
        month: 0,
        day: 0,
        hour: 0,
        minute: 0,
        second: 0,
    }
}

/// `IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT`, with
/// `date1 = day SP month SP year` (RFC 9110 §5.6.7).
fn imf_fixdate(s: &[u8]) -> Option<Fields> {
    let mut c = Cursor { rest: s };
    let mut f = empty_fields();
    c.name(&DAY_NAMES)?;
    c.literal(b", ")?;
    f.day = c.digits(2)?;
    c.literal(b" ")?;
    f.month = c.month()?;
    c.literal(b" ")?;
    f.year = c.digits(4)?;
    c.literal(b" ")?;
    c.time_of_day(&mut f)?;
    c.literal(b" ")?;
    c.gmt()?;
    c.end()?;
    Some(f)
}

/// `rfc850-date = day-name-l "," SP date2 SP time-of-day SP GMT`, with
/// `date2 = day "-" month "-" 2DIGIT` (RFC 9110 §5.6.7). The year is
/// returned as its two digits.
fn rfc850_date(s: &[u8]) -> Option<Fields> {
    let mut c = Cursor { rest: s };
    let mut f = empty_fields();
    c.name(&DAY_NAMES_LONG)?;
    c.literal(b", ")?;
    f.day = c.digits(2)?;
    c.literal(b"-")?;
    f.month = c.month()?;
    c.literal(b"-")?;
    f.year = c.digits(2)?;
    c.literal(b" ")?;
    c.time_of_day(&mut f)?;
    c.literal(b" ")?;
    c.gmt()?;
    c.end()?;
    Some(f)
}

/// `asctime-date = day-name SP date3 SP time-of-day SP year`, with
/// `date3 = month SP ( 2DIGIT / ( SP DIGIT ) )` (RFC 9110 §5.6.7).
fn asctime_date(s: &[u8]) -> Option<Fields> {
    let mut c = Cursor { rest: s };
    let mut f = empty_fields();
    c.name(&DAY_NAMES)?;
    c.literal(b" ")?;
    f.month = c.month()?;
    c.literal(b" ")?;
    f.day = if c.literal(b" ").is_some() {
        c.digits(1)?
    } else {
        c.digits(2)?
    };
    c.literal(b" ")?;
    c.time_of_day(&mut f)?;
    c.literal(b" ")?;
    f.year = c.digits(4)?;
    c.end()?;
    Some(f)
}

/// Unix seconds of validated fields; `None` when a field is out of range.
/// A leap second (`:60`, RFC 9110 §5.6.7) reads as the first second of the
/// next minute, since Unix time has no leap seconds.
fn to_unix(f: &Fields) -> Option<i64> {
    let valid = (1..=12).contains(&f.month)
        && (1..=days_in_month(f.year, f.month)).contains(&f.day)
        && f.hour <= 23
        && f.minute <= 59
        && f.second <= 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(f.year, f.month, f.day);
    Some(days * SECONDS_PER_DAY + f.hour * 3600 + f.minute * 60 + f.second)
}

/// Resolves the two-digit year of an rfc850-date against `now` (RFC 9110
/// §5.6.7): a timestamp that appears more than 50 years in the future is read
/// as the most recent past year with the same last two digits. Otherwise the
/// latest year with those digits that is not more than 50 years ahead is
/// taken, so the result always falls within 100 years around `now`.
fn resolve_two_digit_year(f: &mut Fields, now: i64) {
    let now = now.clamp(MIN_HTTP_DATE, MAX_HTTP_DATE);
    let (ny, nm, nd) = civil_from_days(now.div_euclid(SECONDS_PER_DAY));
    let now_tod = now.rem_euclid(SECONDS_PER_DAY);
    let tod = f.hour * 3600 + f.minute * 60 + f.second;
    // Calendar comparison, so "50 years" means 50 calendar years, leap days included.
    let limit = (ny + 50, nm, nd, now_tod);
    let too_far = |year: i64| (year, f.month, f.day, tod) > limit;
    let mut year = ny.div_euclid(100) * 100 + f.year;
    if too_far(year) {
        year -= 100;
    } else if !too_far(year + 100) {
        year += 100;
    }
    f.year = year;
}

/// Parses an HTTP-date in any of its three formats (RFC 9110 §5.6.7) to
/// Unix seconds; `None` when the value is not a valid HTTP-date.
///
/// `now` (Unix seconds) only matters for the two-digit year of the obsolete
/// rfc850-date, read as RFC 9110 §5.6.7 requires: a date more than 50 years
/// in the future means the most recent past year with those two digits.
///
/// Where the RFC leaves room:
/// - Day names, month names and `GMT` compare case-insensitively. The
///   grammar spells them case-sensitively (RFC 9110 §5.6.7), but the
///   recipient is "encouraged to be robust in parsing timestamps"
///   (RFC 9110 §5.6.7) and a differently cased name is unambiguous.
/// - The day name is not checked against the date: the date is fully given
///   by its numeric part, and rejecting the value would only discard it.
/// - Anything else outside the grammar is invalid: two spaces where one is
///   required, dashes in an IMF-fixdate, `UTC` or a numeric zone, a
///   one-digit hour, a two-digit year outside the rfc850 format, a missing
///   comma, trailing text. An invalid `Expires` then means "already
///   expired" (RFC 9111 §5.3), which fails safe.
/// - Day of month is checked against the month and leap years; second 60
///   (leap second, RFC 9110 §5.6.7) is accepted.
/// - SP/HTAB around the whole value is ignored: it is not part of the field
///   value (RFC 9110 §5.5).
pub fn parse_http_date_at(value: &[u8], now: i64) -> Option<i64> {
    let s = trim_ows(value);
    // The fourth byte tells the formats apart: "," IMF-fixdate, SP asctime,
    // a letter the longer day name of rfc850-date.
    match s.get(3) {
        Some(b',') => to_unix(&imf_fixdate(s)?),
        Some(b' ') => to_unix(&asctime_date(s)?),
        Some(_) => {
            let mut f = rfc850_date(s)?;
            resolve_two_digit_year(&mut f, now);
            to_unix(&f)
        }
        None => None,
    }
}

/// The system clock in Unix seconds; 0 if it reads before the epoch.
pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(MAX_HTTP_DATE),
        Err(_) => 0,
    }
}

/// [`parse_http_date_at`] with the system clock as the reference for the
/// two-digit years of rfc850-dates (RFC 9110 §5.6.7).
pub fn parse_http_date(value: &[u8]) -> Option<i64> {
    parse_http_date_at(value, unix_now())
}

/// Formats Unix seconds as an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// The format has a four-digit year, so the input is clamped to
/// [`MIN_HTTP_DATE`]..=[`MAX_HTTP_DATE`]; every output parses back with
/// [`parse_http_date_at`] to the clamped input.
pub fn format_http_date(secs: i64) -> String {
    let secs = secs.clamp(MIN_HTTP_DATE, MAX_HTTP_DATE);
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let tod = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let weekday = (days + 4).rem_euclid(7);
    let name = |table: &[&'static [u8]], i: i64| -> &'static str {
        usize::try_from(i)
            .ok()
            .and_then(|i| table.get(i))
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("???")
    };
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        name(&DAY_NAMES, weekday),
        day,
        name(&MONTHS, month - 1),
        year,
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
    )
}

/// [`format_http_date`] for a fractional clock reading: the time is rounded
/// down to the whole second (HTTP-date has one-second resolution, RFC 9110
/// §5.6.7); NaN reads as the epoch and infinities clamp to the range.
pub fn format_http_date_f64(secs: f64) -> String {
    // `as` saturates and maps NaN to 0.
    format_http_date(secs.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// 2026-01-01T00:00:00Z, a fixed "now" for the two-digit-year rule.
    const NOW: i64 = 1_767_225_600;

    fn p(s: &str) -> Option<i64> {
        parse_http_date_at(s.as_bytes(), NOW)
    }

    #[test]
    fn rfc9110_5_6_7_three_formats_same_instant() {
        // The example of RFC 9110 §5.6.7 in its three formats.
        let want = Some(784_111_777);
        assert_eq!(p("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(p("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(p("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(p("Sun Nov 06 08:49:37 1994"), want);
    }

    #[test]
    fn rfc9110_5_6_7_format_imf_fixdate() {
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(
            format_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(MIN_HTTP_DATE),
            "Sat, 01 Jan 0000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(MAX_HTTP_DATE),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(format_http_date(i64::MIN), format_http_date(MIN_HTTP_DATE));
        assert_eq!(format_http_date(i64::MAX), format_http_date(MAX_HTTP_DATE));
        assert_eq!(
            format_http_date_f64(784_111_777.9),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(format_http_date_f64(f64::NAN), format_http_date(0));
        assert_eq!(
            format_http_date_f64(f64::INFINITY),
            format_http_date(MAX_HTTP_DATE)
        );
        assert_eq!(format_http_date_f64(-0.5), format_http_date(-1));
    }

    #[test]
    fn rfc9110_5_6_7_range_constants() {
        assert_eq!(days_from_civil(0, 1, 1) * SECONDS_PER_DAY, MIN_HTTP_DATE);
        assert_eq!(
            days_from_civil(9999, 12, 31) * SECONDS_PER_DAY + 86_399,
            MAX_HTTP_DATE
        );
        assert_eq!(p("Sat, 01 Jan 0000 00:00:00 GMT"), Some(MIN_HTTP_DATE));
        assert_eq!(p("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_HTTP_DATE));
    }

    #[test]
    fn rfc9110_5_6_7_names_case_insensitive_weekday_unchecked() {
        let want = p("Thu, 18 Aug 2050 02:01:18 GMT");
        assert!(want.is_some());
        assert_eq!(p("THU, 18 Aug 2050 02:01:18 GMT"), want);
        assert_eq!(p("Thu, 18 AUG 2050 02:01:18 GMT"), want);
        assert_eq!(p("Thu, 18 Aug 2050 02:01:18 gMT"), want);
        assert_eq!(p("Mon, 18 Aug 2050 02:01:18 GMT"), want);
        assert_eq!(p("thursday, 18-aug-50 02:01:18 gmt"), want);
    }

    #[test]
    fn rfc9110_5_6_7_rejects_outside_grammar() {
        for bad in [
            "",
            "0",
            "-1",
            "Thu",
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18 +0000",
            "Thu, 18 Aug 2050 02:01:18",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 8 Aug 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 GMT x",
            "Thu, 18 Aug 2050 02:01:18 GMTX",
            "Thu, 18 Agu 2050 02:01:18 GMT",
            "Thx, 18 Aug 2050 02:01:18 GMT",
            "Thu, 18 Aug 20500 02:01:18 GMT",
            "Thu, +8 Aug 2050 02:01:18 GMT",
            "Thursday, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18-Aug-50 02:01:18 GMT",
            "Thursday, 18 Aug 50 02:01:18 GMT",
            "Thursday,18-Aug-50 02:01:18 GMT",
            "Thu Aug 18 02:01:18 2050 GMT",
            "Thu Aug 8 02:01:18 2050",
            "Thu Aug  18 02:01:18 2050",
            "Thu Aug 18 02:01:18 50",
            "Thu, 18 Aug 2050 02:01:18 GMT\0",
            "\u{e9}\u{e9}\u{e9}\u{e9}",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc9110_5_6_7_field_ranges() {
        assert_eq!(p("Thu, 29 Feb 2024 00:00:00 GMT"), Some(1_709_164_800));
        assert_eq!(p("Thu, 29 Feb 2023 00:00:00 GMT"), None);
        assert_eq!(p("Thu, 29 Feb 1900 00:00:00 GMT"), None);
        assert!(p("Thu, 29 Feb 2000 00:00:00 GMT").is_some());
        assert_eq!(p("Thu, 31 Apr 2024 00:00:00 GMT"), None);
        assert_eq!(p("Thu, 00 Apr 2024 00:00:00 GMT"), None);
        assert_eq!(p("Thu, 01 Foo 2024 00:00:00 GMT"), None);
        assert_eq!(p("Thu, 01 Apr 2024 24:00:00 GMT"), None);
        assert_eq!(p("Thu, 01 Apr 2024 23:60:00 GMT"), None);
        assert_eq!(p("Thu, 01 Apr 2024 23:59:61 GMT"), None);
        // A leap second reads as the next minute's first second.
        assert_eq!(
            p("Sat, 31 Dec 2016 23:59:60 GMT"),
            p("Sun, 01 Jan 2017 00:00:00 GMT")
        );
    }

    #[test]
    fn rfc9110_5_5_surrounding_whitespace_ignored() {
        assert_eq!(p(" \tSun, 06 Nov 1994 08:49:37 GMT \t"), Some(784_111_777));
        assert_eq!(p("Sun, 06 Nov 1994 08:49:37 GMT\r\n"), None);
    }

    #[test]
    fn rfc9110_5_6_7_rfc850_two_digit_year_window() {
        // Now is 2026-01-01: 94 would be 2094, more than 50 years ahead → 1994.
        assert_eq!(p("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        // 76 → 2076 is exactly 50 years ahead at most: kept; 77 is past the limit.
        assert_eq!(
            p("Wednesday, 01-Jan-76 00:00:00 GMT"),
            p("Wed, 01 Jan 2076 00:00:00 GMT")
        );
        assert_eq!(
            p("Thursday, 01-Jan-76 00:00:01 GMT"),
            p("Thu, 01 Jan 1976 00:00:01 GMT")
        );
        assert_eq!(
            p("Friday, 01-Jan-77 00:00:00 GMT"),
            p("Sat, 01 Jan 1977 00:00:00 GMT")
        );
        assert_eq!(
            p("Monday, 01-Jan-30 00:00:00 GMT"),
            p("Tue, 01 Jan 2030 00:00:00 GMT")
        );
        // Near the end of a century the next century is the nearer reading.
        let late = days_from_civil(2099, 6, 1) * SECONDS_PER_DAY;
        assert_eq!(
            parse_http_date_at(b"Friday, 01-Jan-00 00:00:00 GMT", late),
            Some(days_from_civil(2100, 1, 1) * SECONDS_PER_DAY)
        );
        // The leap day is validated in the resolved century.
        assert_eq!(
            parse_http_date_at(b"Tuesday, 29-Feb-00 00:00:00 GMT", NOW),
            p("Tue, 29 Feb 2000 00:00:00 GMT")
        );
        assert_eq!(
            parse_http_date_at(b"Monday, 29-Feb-00 00:00:00 GMT", late),
            None
        );
        // Extreme clocks do not overflow.
        assert!(parse_http_date_at(b"Sunday, 06-Nov-94 08:49:37 GMT", i64::MAX).is_some());
        assert!(parse_http_date_at(b"Sunday, 06-Nov-94 08:49:37 GMT", i64::MIN).is_some());
    }

    #[test]
    fn system_clock_parse() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert!(unix_now() > NOW - 1);
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }

    fn system_time(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), now in any::<i64>()) {
            let _ = parse_http_date_at(&bytes, now);
        }

        #[test]
        fn near_miss_never_panics(
            s in "[A-Za-z]{3,9},? ?[0-9 ]{1,3}[- ][A-Za-z]{3}[- ][0-9]{2,5} [0-9]{1,2}:[0-9]{2}:[0-9]{2}( [A-Za-z]{3})?",
            now in any::<i64>(),
        ) {
            if let Some(t) = parse_http_date_at(s.as_bytes(), now) {
                prop_assert!(t >= MIN_HTTP_DATE - 100 * 366 * SECONDS_PER_DAY);
                prop_assert!(t <= MAX_HTTP_DATE + 101 * 366 * SECONDS_PER_DAY);
            }
        }

        #[test]
        fn format_parse_round_trip(secs in MIN_HTTP_DATE..=MAX_HTTP_DATE, now in any::<i64>()) {
            let s = format_http_date(secs);
            prop_assert_eq!(s.len(), 29);
            prop_assert_eq!(parse_http_date_at(s.as_bytes(), now), Some(secs));
        }

        #[test]
        fn obsolete_formats_agree(secs in 0i64..=4_102_444_799) {
            // Every instant of 1970..=2099 in the three formats (rfc850 read
            // with a "now" 20 years later, inside the 50-year window).
            let imf = format_http_date(secs);
            let (wd, day, mon, year, time) = (&imf[0..3], &imf[5..7], &imf[8..11], &imf[12..16], &imf[17..25]);
            let long = DAY_NAMES_LONG
                .iter()
                .find(|l| l.starts_with(wd.as_bytes()))
                .and_then(|l| std::str::from_utf8(l).ok())
                .unwrap_or("");
            let rfc850 = format!("{long}, {day}-{mon}-{} {time} GMT", &year[2..]);
            let asc_day = match day.strip_prefix('0') { Some(d) => format!(" {d}"), None => day.to_owned() };
            let asctime = format!("{wd} {mon} {asc_day} {time} {year}");
            prop_assert_eq!(parse_http_date_at(rfc850.as_bytes(), secs + 20 * 365 * SECONDS_PER_DAY), Some(secs));
            prop_assert_eq!(parse_http_date_at(asctime.as_bytes(), 0), Some(secs));
        }

        #[test]
        fn matches_httpdate_crate(secs in 0i64..=253_402_300_799) {
            let ours = format_http_date(secs);
            let theirs = httpdate::fmt_http_date(system_time(secs));
            prop_assert_eq!(&ours, &theirs);
            let back = httpdate::parse_http_date(&ours).ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
            prop_assert_eq!(back.map(|d| d.as_secs() as i64), Some(secs));
        }
    }
}
