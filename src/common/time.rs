//! Wall-clock time and its text forms (RFC 3339), shared by the relay, the agent and
//! the command line.
//!
//! [`now_unix_ms`] is the only wall-clock read in the crate, so that code that needs a
//! deterministic time takes a `now_ms` parameter instead and tests can move time
//! without sleeping.

/// Current unix time in milliseconds.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z.
const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// RFC 3339 with milliseconds, UTC. A time past year 9999 (only a damaged or hostile
/// record carries one) is written as the last representable instant instead of
/// panicking: the fuzzer found that humantime refuses to format it.
pub fn format_time_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.min(MAX_RFC3339_MS));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, fractional seconds and `+02:00`
/// style offsets allowed) to unix milliseconds. Shared by the admin API and the CLI.
pub fn parse_time_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || "expected an RFC 3339 time such as 2024-05-01T12:00:00Z".to_string();
    // humantime reads UTC ("Z") only: take a numeric offset off and apply it here.
    let (base, offset_minutes) = if let Some(b) = t.strip_suffix(['Z', 'z']) {
        (b, 0i64)
    } else {
        let split = t.len().checked_sub(6).ok_or_else(bad)?;
        let (b, off) = (
            t.get(..split).ok_or_else(bad)?,
            t.get(split..).ok_or_else(bad)?,
        );
        let sign = match off.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        let (h, m) = off
            .get(1..)
            .and_then(|o| o.split_once(':'))
            .ok_or_else(bad)?;
        let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        (b, sign * (h * 60 + m))
    };
    let utc = humantime::parse_rfc3339_weak(&format!("{base}Z")).map_err(|_| bad())?;
    let ms = utc
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "times before 1970 are not supported".to_string())?
        .as_millis() as i64;
    u64::try_from(ms - offset_minutes * 60_000)
        .map_err(|_| "times before 1970 are not supported".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_are_clamped_not_a_panic() {
        assert_eq!(format_time_ms(1000), "1970-01-01T00:00:01.000Z");
        assert_eq!(format_time_ms(MAX_RFC3339_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            format_time_ms(MAX_RFC3339_MS + 1),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_time_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_parse_with_offsets_and_fractions() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.250Z"), Ok(1250));
        assert_eq!(parse_time_ms("1970-01-01T01:00:01+01:00"), Ok(1000));
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.5-00:30"), Ok(1_801_500));
        for bad in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:00:00+2",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_time_ms(bad).is_err(), "{bad}");
        }
    }
}
