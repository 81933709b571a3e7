//! ISO-8601 / RFC 3339 timestamps ↔ Unix seconds, without a date-time dependency: imports read
//! `2026-11-23T10:00:00Z`, `2026-11-23 10:00:00+03:00`, `2026-11-23T10:00:00.250Z` and plain dates.

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())?
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses a timestamp to Unix seconds; a date alone means midnight UTC; no zone means UTC.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || day < 1 || day > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if rest.is_empty() {
        return Some(secs);
    }
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?; // fractions of a second are dropped
    let mut c = clock.split(':');
    let (h, mi) = (num(c.next()?, 2)?, num(c.next()?, 2)?);
    let sec = match c.next() {
        Some(x) => num(x, 2)?,
        None => 0,
    };
    if c.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + sec;
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            // Byte slicing only where the bytes are known to be ASCII digits: a zone like
            // "+1é1" (4 bytes, not 4 characters) must be refused, not split inside a character.
            let z = z.get(1..)?;
            let (zh, zm) = match z.split_once(':') {
                Some((a, b)) => (num(a, 2)?, num(b, 2)?),
                None if z.len() == 4 && z.is_ascii() => {
                    (num(z.get(..2)?, 2)?, num(z.get(2..)?, 2)?)
                }
                None => (num(z, 2)?, 0),
            };
            if zh > 23 || zm > 59 {
                return None;
            }
            sign * (zh * 3600 + zm * 60)
        }
    };
    Some(secs - offset)
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_iso8601(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_offsets() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("2026-11-23T10:00:00Z"), Some(1_795_428_000));
        assert_eq!(
            parse_iso8601("2026-11-23 13:00:00+03:00"),
            Some(1_795_428_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-23T05:00:00-0500"),
            Some(1_795_428_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-23T10:00:00.750Z"),
            Some(1_795_428_000)
        );
        assert_eq!(parse_iso8601("2026-11-23T10:00Z"), Some(1_795_428_000));
        assert_eq!(parse_iso8601("2026-11-23"), Some(1_795_392_000));
        assert_eq!(parse_iso8601("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-11-23T24:00:00Z",
            "23/11/2026",
            "2026-11-23T10:00:00+3",
            // Once a panic: "1é1" is 4 bytes, and the zone was sliced by bytes.
            "2026-01-01T10:00+1\u{e9}1",
            "2026-01-01T10:00:00+99:00",
            "2026-01-01T10:00:00+",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip() {
        for t in [0, 1_795_428_000, 951_782_400, -86_400] {
            assert_eq!(parse_iso8601(&format_iso8601(t)), Some(t));
        }
    }
}
