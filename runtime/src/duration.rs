//! Durations in configuration files, in every form Spring Boot accepts: a
//! number of milliseconds (`500`), a number with a unit (`"500ms"`, `"10s"`,
//! `"1.5m"`, `"2h"`; also `ns`, `us`, `d`) or ISO-8601 as Java's
//! `Duration.parse` reads it (`"PT10S"`, `"PT0.5S"`, `"PT1M"`, `"P1DT2H"`).

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A duration string that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration '{0}': expected milliseconds, a number with a unit (ns, us, ms, s, m, h, d) or ISO-8601 (PT10S)"
)]
pub struct InvalidDuration(String);

/// Parses `"10s"`, `"500ms"`, `"1.5m"`, plain milliseconds `"250"` or
/// ISO-8601 `"PT10S"`.
pub fn parse(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let t = text.trim();
    if let Some(iso) = t.strip_prefix(['P', 'p']) {
        return parse_iso8601(iso).ok_or_else(invalid);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    scaled(number, unit.trim()).ok_or_else(invalid)
}

/// The body of an ISO-8601 duration after its `P`: `[nD][T[nH][nM][nS]]`,
/// fractions allowed, each unit at most once and in that order.
fn parse_iso8601(body: &str) -> Option<Duration> {
    let (days, time) = match body.split_once(['T', 't']) {
        Some((days, time)) => (days, Some(time)),
        None => (body, None),
    };
    let mut total = Duration::ZERO;
    let mut parts = 0;
    for (part, units) in [(days, "d"), (time.unwrap_or(""), "hms")] {
        let mut rest = part;
        let mut allowed = units;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let unit = rest[end..end + 1].to_ascii_lowercase();
            let at = allowed.find(unit.as_str())?;
            allowed = &allowed[at + 1..];
            total = total.checked_add(scaled(&rest[..end], &unit)?)?;
            rest = &rest[end + 1..];
            parts += 1;
        }
    }
    // "P", "PT" and "P1DT" are not durations.
    let empty_time = time.is_some_and(str::is_empty);
    (parts > 0 && !empty_time).then_some(total)
}

/// `number` (digits, maybe a fraction) times the unit `unit` (empty means
/// milliseconds).
fn scaled(number: &str, unit: &str) -> Option<Duration> {
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let nanos_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    // Exact integer arithmetic: "0.1s" is 100 ms, not a float's neighbour.
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction = &fraction[..fraction.len().min(18)];
    let fraction_nanos = match fraction {
        "" => 0,
        digits => {
            let scale = 10u128.pow(u32::try_from(digits.len()).ok()?);
            digits.parse::<u128>().ok()? * u128::from(nanos_per_unit) / scale
        }
    };
    let nanos = whole * u128::from(nanos_per_unit) + fraction_nanos;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("milliseconds or a duration such as \"10s\", \"500ms\" or \"PT10S\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| E::custom(format!("negative duration {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(v / 1000.0).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

/// `#[serde(deserialize_with = ...)]` for a duration field.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// `#[serde(deserialize_with = ...)]` for an optional duration field.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

/// `#[serde(serialize_with = ...)]`: a duration as whole milliseconds, the
/// form Spring Boot reads without a unit.
pub fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_and_plain_millis_are_understood() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse(" 2h "), Ok(Duration::from_secs(7200)));
        assert!(parse("ten seconds").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("").is_err());
        assert!(parse("-5s").is_err());
    }

    #[test]
    fn iso8601_durations_are_understood_as_java_reads_them() {
        assert_eq!(parse("PT10S"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("PT0.5S"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("PT1M"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("pt1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("P1DT2H"), Ok(Duration::from_secs(26 * 3600)));
        assert_eq!(parse("P2D"), Ok(Duration::from_secs(2 * 86_400)));
        for bad in [
            "P", "PT", "P1DT", "PT5", "PTS", "PT1S2M", "P1H", "PT1D", "PT-1S", "PT1X",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in ".{0,24}") {
            let _ = parse(&text);
        }

        #[test]
        fn whole_millis_round_trip(ms in 0u64..10_000_000_000) {
            prop_assert_eq!(parse(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
            prop_assert_eq!(parse(&ms.to_string()), Ok(Duration::from_millis(ms)));
            let iso = format!("PT{}.{:03}S", ms / 1000, ms % 1000);
            prop_assert_eq!(parse(&iso), Ok(Duration::from_millis(ms)));
        }
    }
}
