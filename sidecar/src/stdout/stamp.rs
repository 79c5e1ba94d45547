//! The kubelet's line timestamps: parsed from the `timestamps=true` prefix, written back as the
//! API's `sinceTime`.
//!
//! With `timestamps=true` the kubelet prefixes every line with the time the runtime recorded,
//! formatted with Go's `time.RFC3339Nano` (`2006-01-02T15:04:05.999999999Z07:00`): UTC as `Z`,
//! and the fraction with its trailing zeros trimmed — `...:47.1234Z`, `...:47.5Z`, or no
//! fraction at all when it is zero — then one space. `sinceTime` is parsed by the API server
//! as RFC 3339 with SECOND precision, so resuming truncates and skips the rest by time
//! ([`super::resume`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A kubelet timestamp: seconds since the epoch (UTC) and nanoseconds; ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Stamp {
    /// Parses RFC 3339 (`Z` or a `±hh:mm` offset, a fraction of 1 to 9 digits or none).
    pub fn parse(text: &[u8]) -> Option<Self> {
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(range)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        if text.len() < 20 || text[4] != b'-' || text[7] != b'-' || text[13] != b':' {
            return None;
        }
        if !matches!(text[10], b'T' | b't') || text[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        // 60: a leap second, which Go never writes but RFC 3339 allows.
        if second > 60 {
            return None;
        }
        let mut i = 19;
        let mut nanos = 0u32;
        if text.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while text.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let n = i - start;
            if n == 0 || n > 9 {
                return None;
            }
            let value = u32::try_from(digits(start..i)?).ok()?;
            nanos = value * 10u32.pow(u32::try_from(9 - n).ok()?);
        }
        let offset = match text.get(i..)? {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = i64::from(h1.checked_sub(b'0')?) * 10 + i64::from(h2.checked_sub(b'0')?);
                let m = i64::from(m1.checked_sub(b'0')?) * 10 + i64::from(m2.checked_sub(b'0')?);
                if h > 23 || m > 59 {
                    return None;
                }
                let secs = h * 3600 + m * 60;
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return None,
        };
        let days = firetail_wire::time::days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
        Some(Self { secs, nanos })
    }

    /// The time as a [`SystemTime`] (an event's `time`).
    pub fn to_system_time(self) -> SystemTime {
        let within = Duration::from_nanos(u64::from(self.nanos));
        match u64::try_from(self.secs) {
            Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs) + within,
            Err(_) => UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + within,
        }
    }

    /// RFC 3339 truncated to the second, UTC: the API's `sinceTime` (which has second
    /// precision; lines of that second before this stamp come again and are skipped).
    pub fn since_time(self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// Go's `time.RFC3339Nano` in UTC: the fraction without trailing zeros, none when zero.
    pub fn rfc3339_nano(self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs);
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if self.nanos > 0 {
            let fraction = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }
}

/// Splits a `timestamps=true` line into its timestamp and its content (after the one space).
/// `None` when the line does not start with a timestamp.
pub fn split_line(line: &[u8]) -> Option<(Stamp, &[u8])> {
    let space = line.iter().take(40).position(|b| *b == b' ');
    match space {
        Some(at) => Some((Stamp::parse(&line[..at])?, &line[at + 1..])),
        // A line that is only a timestamp: an empty line of the app.
        None => Some((Stamp::parse(line)?, &[])),
    }
}

/// Year, month, day, hour, minute, second of `secs` since the epoch, UTC.
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = firetail_wire::time::civil_from_days(secs.div_euclid(86_400));
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_go_rfc3339nano_with_trimmed_fractions() {
        let base = Stamp::parse(b"2026-12-02T19:26:47Z").unwrap();
        assert_eq!(base.secs, 1_796_239_607);
        assert_eq!(base.nanos, 0);
        for (text, nanos) in [
            ("2026-12-02T19:26:47.1234Z", 123_400_000),
            ("2026-12-02T19:26:47.5Z", 500_000_000),
            ("2026-12-02T19:26:47.000000001Z", 1),
            ("2026-12-02T19:26:47.123456789Z", 123_456_789),
        ] {
            let s = Stamp::parse(text.as_bytes()).unwrap();
            assert_eq!((s.secs, s.nanos), (base.secs, nanos), "{text}");
            // Written back exactly as Go writes it.
            assert_eq!(s.rfc3339_nano(), text);
        }
        assert_eq!(base.rfc3339_nano(), "2026-12-02T19:26:47Z");
        // Offsets are honoured.
        let east = Stamp::parse(b"2026-12-02T20:26:47.5+01:00").unwrap();
        assert_eq!((east.secs, east.nanos), (base.secs, 500_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "hello world",
            "2026-12-02T19:26:47",
            "2026-12-02T19:26:47.Z",
            "2026-12-02T19:26:47.1234567890Z",
            "2026-13-02T19:26:47Z",
            "2026-12-02 19:26:47Z",
            "2026-12-02T19:26:47+0100",
        ] {
            assert!(Stamp::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn orders_by_time_and_truncates_since_time_to_the_second() {
        let a = Stamp::parse(b"2026-12-02T19:26:47.9Z").unwrap();
        let b = Stamp::parse(b"2026-12-02T19:26:48.01Z").unwrap();
        assert!(a < b);
        assert_eq!(a.since_time(), "2026-12-02T19:26:47Z");
        assert_eq!(
            Stamp::parse(b"1999-12-31T23:59:59.999Z")
                .unwrap()
                .since_time(),
            "1999-12-31T23:59:59Z"
        );
        assert_eq!(
            a.to_system_time().duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_796_239_607, 900_000_000)
        );
    }

    #[test]
    fn splits_a_line_at_the_first_space() {
        let (s, rest) = split_line(b"2026-12-02T19:26:47.1234Z GET / seq=1 x y").unwrap();
        assert_eq!(s.nanos, 123_400_000);
        assert_eq!(rest, b"GET / seq=1 x y");
        let (_, empty) = split_line(b"2026-12-02T19:26:47Z ").unwrap();
        assert!(empty.is_empty());
        let (_, bare) = split_line(b"2026-12-02T19:26:47Z").unwrap();
        assert!(bare.is_empty());
        assert!(split_line(b"no timestamp here").is_none());
    }
}
