//! Human durations as the drill file writes them: `90s`, `15m`, `1h30m`, `2d`, `300ms`.

use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Why a duration is refused; each says how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (write whole numbers with units ms, s, m, h or d, e.g. 90s, 15m, 1h30m)")]
    Invalid(String),
    /// `example`: the duration without its sign.
    #[error("{text:?}: a duration cannot be negative (write e.g. {example})")]
    Negative { text: String, example: String },
    #[error("{text:?} has a number without a unit (write e.g. {number}s or {number}m)")]
    NoUnit { text: String, number: String },
    #[error("{text:?} gives the unit {unit} more than once (write each unit once, largest first, e.g. 1h30m)")]
    UnitTwice { text: String, unit: &'static str },
    #[error("{0:?} is too long a duration")]
    TooLong(String),
    #[error("{text:?} is out of range (allowed: {} to {})", format(*.min), format(*.max))]
    OutOfRange {
        text: String,
        min: Duration,
        max: Duration,
    },
}

/// Parses a sequence of `<whole number><unit>` with units ms, s, m, h and d, each unit at most
/// once (`1h30m30m` is a typo more often than a way to write 2h).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    if let Some(magnitude) = rest.strip_prefix('-') {
        return Err(DurationError::Negative {
            text: text.to_owned(),
            example: if magnitude.is_empty() {
                "1s"
            } else {
                magnitude.trim()
            }
            .to_owned(),
        });
    }
    let mut millis: u64 = 0;
    let mut used: Vec<&str> = Vec::with_capacity(UNITS.len());
    while !rest.is_empty() {
        let digits =
            rest.find(|c: char| !c.is_ascii_digit())
                .ok_or_else(|| DurationError::NoUnit {
                    text: text.to_owned(),
                    number: rest.to_owned(),
                })?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let (name, scale) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        if used.contains(name) {
            return Err(DurationError::UnitTwice {
                text: text.to_owned(),
                unit: name,
            });
        }
        used.push(name);
        millis = number
            .checked_mul(*scale)
            .and_then(|n| millis.checked_add(n))
            .ok_or_else(|| DurationError::TooLong(text.to_owned()))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(millis))
}

/// Parses and checks `min..=max`; the message names the bounds.
pub fn parse_within(text: &str, min: Duration, max: Duration) -> Result<Duration, DurationError> {
    let d = parse(text)?;
    if d < min || d > max {
        return Err(DurationError::OutOfRange {
            text: text.to_owned(),
            min,
            max,
        });
    }
    Ok(d)
}

/// The shortest exact spelling: `1h30m`, `90s` prints as `1m30s`, `300ms`, `0s`.
pub fn format(d: Duration) -> String {
    let mut millis = d.as_millis() as u64;
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, scale) in UNITS.iter().rev() {
        if millis >= *scale {
            out.push_str(&format!("{}{name}", millis / scale));
            millis %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn bad_durations_say_what_is_allowed() {
        for bad in ["", "15", "15 m", "m", "1.5h", "-1s", "1w", "1h30"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse("15")
            .unwrap_err()
            .to_string()
            .contains("without a unit"));
        assert_eq!(
            parse("-1s").unwrap_err().to_string(),
            "\"-1s\": a duration cannot be negative (write e.g. 1s)"
        );
        assert!(parse("99999999999999999999d").is_err());
        let err =
            parse_within("25h", Duration::from_secs(1), Duration::from_secs(86_400)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"25h\" is out of range (allowed: 1s to 1d)"
        );
    }

    #[test]
    fn a_repeated_unit_is_refused_not_summed() {
        // 1h30m30m is a typo, not a way to write 2h.
        assert_eq!(
            parse("1h30m30m").unwrap_err().to_string(),
            "\"1h30m30m\" gives the unit m more than once (write each unit once, largest first, e.g. 1h30m)"
        );
        assert!(parse("5s5s").is_err());
        assert!(parse("1d1d").is_err());
        // Different units still add up.
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    proptest::proptest! {
        #[test]
        fn format_round_trips(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            proptest::prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn never_panics(text in "\\PC{0,24}") {
            let _ = parse(&text);
        }
    }
}
