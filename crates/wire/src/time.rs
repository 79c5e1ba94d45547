//! The one time module of firetail: RFC 3339 text and epoch numbers to epoch milliseconds,
//! and back.
//!
//! The sidecar writes each event's `time` with [`write_rfc3339`] (nanoseconds, UTC); the
//! transform reads it, Fluent Bit's `Time_Key` strings and epoch numbers (Fluent Bit's `date`,
//! CloudWatch Logs' milliseconds) with [`parse_rfc3339_ms`] / [`epoch_number_to_ms`]. Written by
//! hand: both directions sit on the hot path, allocation-free, and one format does not justify a
//! date crate. Days and dates convert with Howard Hinnant's era arithmetic (public-domain
//! description of the math), one pair of functions for both directions.

use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC). Times before 1970 are clamped to the
/// epoch: a read time cannot precede it on a sane clock.
pub fn write_rfc3339(t: SystemTime, out: &mut Vec<u8>) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(i64::MAX));
    push_num(out, year.unsigned_abs(), 4);
    out.push(b'-');
    push_num(out, month.unsigned_abs(), 2);
    out.push(b'-');
    push_num(out, day.unsigned_abs(), 2);
    out.push(b'T');
    push_num(out, rem / 3600, 2);
    out.push(b':');
    push_num(out, rem % 3600 / 60, 2);
    out.push(b':');
    push_num(out, rem % 60, 2);
    out.push(b'.');
    push_num(out, u64::from(since.subsec_nanos()), 9);
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Parses an RFC 3339 timestamp (`2026-11-22T10:00:00.123456Z`, `...+02:00`, a space instead
/// of `T` is accepted) into milliseconds since the Unix epoch. Returns `None` for anything
/// that is not a valid timestamp.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 allows a leap second; it is folded into the next minute like most parsers do.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
}

/// Converts an epoch number of unknown unit to milliseconds: values below 10^11 are taken as
/// seconds (Fluent Bit's `date`, good until the year 5138), larger ones as milliseconds.
pub fn epoch_number_to_ms(value: f64) -> Option<i64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let ms = if value < 1e11 { value * 1000.0 } else { value };
    // Anything past year 9999 is not a timestamp.
    if ms > 253_402_300_799_999.0 {
        return None;
    }
    Some(ms as i64)
}

/// Length of [`rfc3339_ms_bytes`]'s text: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub const RFC3339_MS_LEN: usize = 24;

/// The text [`format_rfc3339_ms`] gives, as fixed-size bytes without allocating, for the
/// years 0000-9999 (every timestamp a log can carry); `None` outside them. The transform
/// writes one per event, where the `format!` machinery showed in profiles.
pub fn rfc3339_ms_bytes(ms: i64) -> Option<[u8; RFC3339_MS_LEN]> {
    // -62_167_219_200_000 is 0000-01-01T00:00:00.000Z.
    if !(-62_167_219_200_000..=253_402_300_799_999).contains(&ms) {
        return None;
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, (sod / 60) % 60);
    put(17, 2, sod % 60);
    put(20, 3, millis);
    Some(out)
}

/// [`rfc3339_ms_bytes`] for a run of times that are mostly within the same second (the
/// events of one record): the last second's text is kept, and a time in it costs its three
/// millisecond digits.
#[derive(Debug, Default, Clone)]
pub struct Rfc3339MsWriter {
    /// The second `text` is for.
    secs: Option<i64>,
    text: [u8; RFC3339_MS_LEN],
}

impl Rfc3339MsWriter {
    /// The text of `ms`, as [`rfc3339_ms_bytes`] gives it.
    pub fn format(&mut self, ms: i64) -> Option<&[u8; RFC3339_MS_LEN]> {
        let secs = ms.div_euclid(1000);
        if self.secs == Some(secs) {
            // The range is whole seconds: a time in a second that formatted formats too.
            let millis = ms.rem_euclid(1000);
            self.text[20] = b'0' + (millis / 100) as u8;
            self.text[21] = b'0' + (millis / 10 % 10) as u8;
            self.text[22] = b'0' + (millis % 10) as u8;
        } else {
            self.text = rfc3339_ms_bytes(ms)?;
            self.secs = Some(secs);
        }
        Some(&self.text)
    }
}

/// Formats epoch milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01, over 400-year eras (146,097
/// days each), so no loop over years is needed.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + std::time::Duration::new(secs, nanos)
    }

    fn ts(t: SystemTime) -> String {
        let mut v = Vec::new();
        write_rfc3339(t, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn writes_known_instants() {
        assert_eq!(ts(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 is a leap day of a century divisible by 400.
        assert_eq!(ts(at(951_782_400, 5)), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            ts(at(1_795_000_000, 123_000_000)),
            "2026-11-18T11:06:40.123000000Z"
        );
        assert_eq!(
            ts(at(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            ts(UNIX_EPOCH - std::time::Duration::from_secs(5)),
            ts(at(0, 0))
        );
    }

    #[test]
    fn civil_dates_match_a_day_walk() {
        // Independent oracle: walk month lengths day by day.
        let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
        for day in 0..80_000i64 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            assert_eq!(days_from_civil(y, m, d), day);
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn written_times_parse_back_to_their_millisecond() {
        for (secs, nanos) in [
            (0, 0),
            (1_795_000_000, 123_456_789),
            (4_102_444_799, 999_999_999),
        ] {
            let text = ts(at(secs, nanos));
            let ms = i64::try_from(secs).unwrap_or_default() * 1000 + i64::from(nanos / 1_000_000);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T10:00:00.123456789Z"),
            Some(1_795_341_600_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T12:00:00.5+02:00"),
            Some(1_795_341_600_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22 10:00:00-00:30"),
            Some(1_795_343_400_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T10:00:00",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T10:00:00.Z",
            "2026-11-22T10:00:00Zjunk",
            "2026-11-22T10:00:00+0200",
            "２０２６-11-22T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn bytes_at_the_edges_of_four_digit_years() {
        let first = -62_167_219_200_000;
        let last = 253_402_300_799_999;
        assert_eq!(
            rfc3339_ms_bytes(first).as_ref(),
            Some(b"0000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            rfc3339_ms_bytes(last).as_ref(),
            Some(b"9999-12-31T23:59:59.999Z")
        );
        assert_eq!(rfc3339_ms_bytes(first - 1), None);
        assert_eq!(rfc3339_ms_bytes(last + 1), None);
        assert_eq!(
            rfc3339_ms_bytes(-1).as_ref(),
            Some(b"1969-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn epoch_numbers() {
        assert_eq!(
            epoch_number_to_ms(1_700_000_000.25),
            Some(1_700_000_000_250)
        );
        assert_eq!(
            epoch_number_to_ms(1_700_000_000_250.0),
            Some(1_700_000_000_250)
        );
        assert_eq!(epoch_number_to_ms(-1.0), None);
        assert_eq!(epoch_number_to_ms(f64::NAN), None);
        assert_eq!(epoch_number_to_ms(1e300), None);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in 0i64..253_402_300_799_999) {
            let text = format_rfc3339_ms(ms);
            prop_assert_eq!(parse_rfc3339_ms(&text), Some(ms));
        }

        #[test]
        fn bytes_are_the_formatted_text(ms in any::<i64>()) {
            let text = format_rfc3339_ms(ms);
            match rfc3339_ms_bytes(ms) {
                Some(bytes) => prop_assert_eq!(&bytes[..], text.as_bytes()),
                None => prop_assert!(!(text.len() == RFC3339_MS_LEN && text.as_bytes()[0].is_ascii_digit())),
            }
        }

        #[test]
        fn the_writer_gives_the_same_text_in_any_order(
            times in proptest::collection::vec(
                prop_oneof![
                    any::<i64>(),
                    -62_167_219_202_000i64..-62_167_219_198_000,
                    253_402_300_798_000i64..253_402_300_802_000,
                    1_700_000_000_000i64..1_700_000_003_000,
                ],
                1..40,
            )
        ) {
            let mut writer = Rfc3339MsWriter::default();
            for ms in times {
                prop_assert_eq!(writer.format(ms).copied(), rfc3339_ms_bytes(ms), "at {}", ms);
            }
        }

        #[test]
        fn bytes_cover_every_four_digit_year(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
            prop_assert_eq!(
                rfc3339_ms_bytes(ms).map(|b| b.to_vec()),
                Some(format_rfc3339_ms(ms).into_bytes())
            );
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = parse_rfc3339_ms(&text);
        }
    }
}
