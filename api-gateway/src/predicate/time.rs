//! SCG's `ZonedDateTime` arguments (`After`, `Before`, `Between`) as epoch
//! milliseconds.
//!
//! Accepted: `2017-01-20T17:42:47.789-07:00[America/Denver]` (the offset
//! decides; the zone id in brackets is accepted and ignored, since the
//! offset already fixes the instant), `2017-01-20T17:42:47Z`, and epoch
//! milliseconds (`1484959367789`). A time without offset is refused: it
//! names no instant.

/// Why a date-time is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a date-time like 2017-01-20T17:42:47.789-07:00[America/Denver]: {reason}")]
pub struct InvalidDateTime {
    text: String,
    reason: &'static str,
}

/// Parses a date-time to epoch milliseconds.
pub fn parse_epoch_millis(text: &str) -> Result<i64, InvalidDateTime> {
    let fail = |reason| InvalidDateTime {
        text: text.to_owned(),
        reason,
    };
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| fail("number out of range"));
    }
    // Drop a trailing zone id: `[America/Denver]`.
    let t = match t.find('[') {
        Some(i) if t.ends_with(']') => &t[..i],
        Some(_) => return Err(fail("unclosed zone id")),
        None => t,
    };
    let (date, time) = t
        .split_once('T')
        .ok_or_else(|| fail("no `T` between date and time"))?;
    let mut d = date.splitn(3, '-');
    let year: i64 = number(d.next()).ok_or_else(|| fail("bad year"))?;
    let month: i64 = number(d.next()).ok_or_else(|| fail("bad month"))?;
    let day: i64 = number(d.next()).ok_or_else(|| fail("bad day"))?;
    if !(0..=9999).contains(&year) {
        return Err(fail("year out of range"));
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(fail("month or day out of range"));
    }
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let i = time
            .rfind(['+', '-'])
            .ok_or_else(|| fail("no offset (Z or +hh:mm)"))?;
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let mut parts = off[1..].splitn(2, ':');
        let h: i64 = number(parts.next()).ok_or_else(|| fail("bad offset"))?;
        let m: i64 = match parts.next() {
            Some(m) => number(Some(m)).ok_or_else(|| fail("bad offset"))?,
            None => 0,
        };
        if h > 18 || m > 59 {
            return Err(fail("offset out of range"));
        }
        (c, sign * (h * 3600 + m * 60))
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (clock, None),
    };
    let mut p = hms.splitn(3, ':');
    let hour: i64 = number(p.next()).ok_or_else(|| fail("bad hour"))?;
    let minute: i64 = number(p.next()).ok_or_else(|| fail("bad minute"))?;
    let second: i64 = match p.next() {
        Some(s) => number(Some(s)).ok_or_else(|| fail("bad second"))?,
        None => 0,
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(fail("time out of range"));
    }
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
            digits.parse::<i64>().map_err(|_| fail("bad fraction"))?
        }
        Some(_) => return Err(fail("bad fraction")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(secs * 1000 + millis)
}

fn number(part: Option<&str>) -> Option<i64> {
    let p = part?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scg_example_with_offset_and_zone_id() {
        // 2017-01-21T00:42:47.789Z
        assert_eq!(
            parse_epoch_millis("2017-01-20T17:42:47.789-07:00[America/Denver]"),
            Ok(1_484_959_367_789)
        );
        assert_eq!(
            parse_epoch_millis("2017-01-21T00:42:47.789Z"),
            Ok(1_484_959_367_789)
        );
        assert_eq!(parse_epoch_millis("1484959367789"), Ok(1_484_959_367_789));
        assert_eq!(parse_epoch_millis("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_epoch_millis("2000-03-01T01:00:00+01:00"),
            Ok(951_868_800_000)
        );
    }

    #[test]
    fn times_without_offset_or_with_garbage_are_refused() {
        for bad in [
            "2017-01-20T17:42:47",
            "yesterday",
            "2017-13-01T00:00:00Z",
            "2017-01-20T17:42:47.7x8Z",
            "2017-01-20T17:42Z[",
            "",
        ] {
            assert!(parse_epoch_millis(bad).is_err(), "{bad}");
        }
    }
}
