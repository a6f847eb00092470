//! Durations in configuration files: a number of milliseconds (`500`) or a
//! number with a unit (`"500ms"`, `"10s"`, `"1.5m"`, `"2h"`; also `ns`, `us`,
//! `d`), as Spring Boot users write them.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A duration string that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration '{0}': expected milliseconds or a number with a unit (ns, us, ms, s, m, h, d)"
)]
pub struct InvalidDuration(String);

/// Parses `"10s"`, `"500ms"`, `"1.5m"` or plain milliseconds `"250"`.
pub fn parse(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let nanos_per_unit: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err(invalid()),
    };
    if let Ok(whole) = number.parse::<u64>() {
        // Exact for whole numbers.
        return whole
            .checked_mul(nanos_per_unit)
            .map(Duration::from_nanos)
            .ok_or_else(invalid);
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(value * nanos_per_unit as f64 / 1e9).map_err(|_| invalid())
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("milliseconds or a duration such as \"10s\" or \"500ms\"")
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

/// `#[serde(deserialize_with = ...)]` for an optional duration field.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
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
        }
    }
}
