//! Parsing `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.
//!
//! A local service that answers 429 or 503 with `Retry-After` knows better than our
//! backoff when it can take the event again, so its value wins, up to
//! [`RETRY_AFTER_MAX`] so that a broken header cannot park a stream for days. Only the
//! preferred IMF-fixdate form of HTTP dates is read (`Sun, 06 Nov 1994 08:49:37 GMT`);
//! the obsolete forms are ignored, which falls back to our own backoff.

use std::time::Duration;

/// The longest `Retry-After` honoured.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// The delay a `Retry-After` value asks for, relative to `now_unix_ms`; `None` when the
/// value is not understood. A date in the past means "now" (zero).
pub fn parse(value: &str, now_unix_ms: u64) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at_ms = imf_fixdate_unix(value)?.saturating_mul(1000);
        Duration::from_millis(at_ms.saturating_sub(now_unix_ms))
    };
    Some(delay.min(RETRY_AFTER_MAX))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → unix seconds.
fn imf_fixdate_unix(s: &str) -> Option<u64> {
    let rest = s.get(5..)?; // "Sun, "
    if s.get(3..5).is_none_or(|sep| sep != ", ") {
        return None;
    }
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day as i64)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse("3", 0), Some(Duration::from_secs(3)));
        assert_eq!(parse(" 0 ", 0), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999", 0), Some(RETRY_AFTER_MAX));
    }

    #[test]
    fn http_dates() {
        // 1994-11-06T08:49:37Z is unix 784111777.
        let at = 784_111_777_000;
        let v = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse(v, at - 5_000), Some(Duration::from_secs(5)));
        assert_eq!(parse(v, at + 5_000), Some(Duration::ZERO), "past means now");
        assert_eq!(
            parse("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Tue, 29 Feb 2000 00:00:10 GMT", 951_782_400_000),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn garbage_is_none() {
        for v in [
            "",
            "-1",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
            "Su",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(parse(v, 0), None, "{v:?}");
        }
    }
}
