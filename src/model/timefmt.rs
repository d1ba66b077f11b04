//! Time formatting without a calendar crate: RFC 3339 (UTC) and
//! systemd-style time spans ("90s", "10min", "1h 30min").

use std::time::Duration;

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, e.g.
/// `2026-11-21T19:42:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses a systemd-style time span: a plain number of seconds, or one or
/// more `<number><unit>` parts (`s`, `sec`, `m`, `min`, `h`, `d`, ...).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty time span".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a time span (expected e.g. 90s, 10min, 2h)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        let factor = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "" => return Err(format!("{text:?}: a number inside a span needs a unit")),
            other => {
                return Err(format!(
                    "{text:?}: unknown time unit {other:?} (use s, min, h, d)"
                ))
            }
        };
        total = number
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: time span too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// The shortest span a setting or flag may have: below a second, timeouts
/// and the uptime reset would fire at once.
pub const MIN_SPAN: Duration = Duration::from_secs(1);
/// The longest: 30 days. Every span ends up added to a clock
/// (`Instant + span`, a timer's OnBootSec); a bound this far below the
/// clocks' limits means no accepted value can overflow one later.
pub const MAX_SPAN: Duration = Duration::from_secs(30 * 86_400);

/// Checks a span against the one rule for every span umm accepts, in a
/// configuration file or on the command line: at least `MIN_SPAN`, at most
/// `MAX_SPAN`. `written` is the value as the user wrote it, for the error.
pub fn bounded(d: Duration, written: &str) -> Result<Duration, String> {
    if d < MIN_SPAN {
        return Err(format!(
            "{written} is too short (at least {})",
            format_span(MIN_SPAN)
        ));
    }
    if d > MAX_SPAN {
        return Err(format!(
            "{written} is too long (at most {})",
            format_span(MAX_SPAN)
        ));
    }
    Ok(d)
}

/// `parse_span`, then `bounded`: what every setting and flag uses.
pub fn parse_bounded_span(text: &str) -> Result<Duration, String> {
    parse_span(text).and_then(|d| bounded(d, &format!("{:?}", text.trim())))
}

/// Formats a duration the way `parse_span` reads it back: `10min`, `1h 30min`, `45s`.
/// Not jiff's friendly printer: measured, it writes `10m` or `10mins` for `10min`, `720h` for `30d`.
pub fn format_span(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("min", 60), ("s", 1)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    parts.join(" ")
}

/// "12.3": seconds with one decimal, without floating point.
pub fn seconds_tenths(d: Duration) -> String {
    let tenths = d.as_millis() / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, "1970-01-01T00:00:00Z")]
    #[case(951_782_400, "2000-02-29T00:00:00Z")]
    #[case(1_795_290_120, "2026-11-21T19:42:00Z")]
    #[case(4_107_542_399, "2100-02-28T23:59:59Z")]
    fn formats_rfc3339(#[case] unix: i64, #[case] expected: &str) {
        assert_eq!(rfc3339(unix), expected);
    }

    #[rstest]
    #[case("600", 600)]
    #[case("90s", 90)]
    #[case("10min", 600)]
    #[case("10m", 600)]
    #[case("2h", 7200)]
    #[case("1h 30min", 5400)]
    #[case("1h30min", 5400)]
    #[case(" 1d ", 86_400)]
    fn parses_spans(#[case] text: &str, #[case] secs: u64) {
        assert_eq!(parse_span(text), Ok(Duration::from_secs(secs)));
    }

    #[rstest]
    #[case("")]
    #[case("ten minutes")]
    #[case("10 parsecs")]
    #[case("5min 3")]
    #[case("-5s")]
    #[case("99999999999999999999d")]
    fn rejects_bad_spans(#[case] text: &str) {
        assert!(parse_span(text).is_err(), "{text:?} should be rejected");
    }

    #[rstest]
    #[case::zero("0", "too short")]
    #[case::zero_seconds("0s", "too short")]
    #[case::one_second_is_the_least("1s", "")]
    #[case::thirty_days_is_the_most("30d", "")]
    #[case::thirty_days_in_seconds("2592000", "")]
    #[case::a_second_more("30d 1s", "too long")]
    #[case::u64_max_seconds("18446744073709551615s", "too long")]
    #[case::u64_max_plain("18446744073709551615", "too long")]
    #[case::i64_max_plain("9223372036854775807", "too long")]
    #[case::overflowing_units("18446744073709551615d", "too large")]
    fn one_bound_for_every_span(#[case] text: &str, #[case] error: &str) {
        match parse_bounded_span(text) {
            Ok(d) => assert!(error.is_empty(), "{text:?} accepted as {d:?}"),
            Err(e) => assert!(!error.is_empty() && e.contains(error), "{text:?}: {e}"),
        }
    }

    #[test]
    fn formats_tenths_of_seconds() {
        assert_eq!(seconds_tenths(Duration::from_millis(12_345)), "12.3");
        assert_eq!(seconds_tenths(Duration::from_millis(99)), "0.0");
    }

    #[rstest]
    #[case(600, "10min")]
    #[case(5400, "1h 30min")]
    #[case(45, "45s")]
    fn span_round_trips(#[case] secs: u64, #[case] text: &str) {
        assert_eq!(format_span(Duration::from_secs(secs)), text);
        assert_eq!(parse_span(text), Ok(Duration::from_secs(secs)));
    }
}
