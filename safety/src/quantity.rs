//! Percentages and counts as users write them: `50%`, `99.5%`, `25-50`, `2`; and Kubernetes
//! resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `1e3`), read exactly.

use std::fmt;

/// A percentage with two decimals of precision, stored exactly as hundredths of a percent.
/// Why a text is not a percentage or a range of them: what was written and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuantityError(pub String);

impl From<String> for QuantityError {
    fn from(message: String) -> Self {
        QuantityError(message)
    }
}

impl From<&str> for QuantityError {
    fn from(message: &str) -> Self {
        QuantityError(message.to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    pub const HUNDRED: Percent = Percent(10_000);

    /// From hundredths of a percent: `Percent::from_hundredths(9950)` is 99.5%.
    pub fn from_hundredths(hundredths: u32) -> Option<Self> {
        (hundredths <= 10_000).then_some(Percent(hundredths))
    }

    pub fn hundredths(self) -> u32 {
        self.0
    }

    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// `n` percent of `total`, rounded up (as Kubernetes rounds `maxUnavailable` percentages down
    /// and `minAvailable` up; callers pick the rounding that is safe for them).
    pub fn of_ceil(self, total: u64) -> u64 {
        (total * u64::from(self.0)).div_ceil(10_000)
    }

    pub fn of_floor(self, total: u64) -> u64 {
        total * u64::from(self.0) / 10_000
    }

    /// Parses `50%`, `99.5%` or, when `sign_optional`, a bare `50`.
    pub fn parse(text: &str, sign_optional: bool) -> Result<Self, QuantityError> {
        let trimmed = text.trim();
        let number = match trimmed.strip_suffix('%') {
            Some(n) => n.trim_end(),
            None if sign_optional => trimmed,
            None => return Err(format!("{text:?} is not a percentage (write e.g. 50%)").into()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if !digits(whole) || !(frac.is_empty() || digits(frac) && frac.len() <= 2) {
            return Err(format!(
                "{text:?} is not a percentage (a number from 0 to 100 with at most two decimals, e.g. 50% or 99.5%)"
            ).into());
        }
        let whole: u32 = whole
            .parse()
            .ok()
            .filter(|w| *w <= 100)
            .ok_or_else(|| format!("{text:?} is more than 100%"))?;
        let frac: u32 = format!("{frac:0<2}").parse().unwrap_or(0);
        Percent::from_hundredths(whole * 100 + frac)
            .ok_or_else(|| format!("{text:?} is more than 100%").into())
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            f2 if f2 % 10 == 0 => write!(f, "{whole}.{}%", f2 / 10),
            f2 => write!(f, "{whole}.{f2:02}%"),
        }
    }
}

/// `25-50` (percent of matching pods, chosen at random within the range per fire) or `30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercentRange {
    pub low: Percent,
    pub high: Percent,
}

impl PercentRange {
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        if text.trim_start().starts_with('-') {
            return Err(format!(
                "{text:?} is negative; a share of pods is more than 0% and at most 100% (write e.g. 25-50 or 30%)"
            ).into());
        }
        let (low, high) = match text.split_once('-') {
            Some((low, high)) => (low, high),
            None => (text, text),
        };
        let low = Percent::parse(low, true).map_err(|e| format!("{e}; write e.g. 25-50 or 30%"))?;
        let high =
            Percent::parse(high, true).map_err(|e| format!("{e}; write e.g. 25-50 or 30%"))?;
        if low.hundredths() == 0 {
            return Err(format!("{text:?} starts at 0%; the least is more than 0").into());
        }
        if low > high {
            return Err(format!("{text:?} runs backwards; write the lower bound first").into());
        }
        Ok(Self { low, high })
    }
}

impl fmt::Display for PercentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// A number of pods or a percentage of some total, as in `min: 2` or `min: "50%"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Count(u64),
    Percent(Percent),
}

impl Quantity {
    /// The quantity against `total`, rounding percentages up: the safe choice for minimums.
    pub fn resolve_ceil(self, total: u64) -> u64 {
        match self {
            Quantity::Count(n) => n,
            Quantity::Percent(p) => p.of_ceil(total),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Count(n) => write!(f, "{n}"),
            Quantity::Percent(p) => write!(f, "{p}"),
        }
    }
}

/// A CPU quantity (`500m`, `2`, `1.5`) in millicores, rounded up as Kubernetes rounds it.
pub fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    kubernetes_quantity(text, 3)
}

/// A memory quantity (`128Mi`, `1Gi`, `1G`, `100k`, `1e3`, plain bytes) in bytes, rounded up.
pub fn bytes(text: &str) -> Result<u64, QuantityError> {
    kubernetes_quantity(text, 0)
}

/// A Kubernetes quantity times `10^scale`, rounded up to a whole number, in integer arithmetic:
/// `<digits>[.<digits>]` then a binary suffix (`Ki`..`Ei`), a decimal one (`n`, `u`, `m`, `k`,
/// `M`..`E`) or an exponent (`e3`, `E-2`).
fn kubernetes_quantity(text: &str, scale: i32) -> Result<u64, QuantityError> {
    let invalid = || {
        QuantityError(format!(
            "{text:?} is not a quantity (write e.g. 500m or 2 for CPU, 128Mi, 1Gi or 1G for memory)"
        ))
    };
    let trimmed = text.trim();
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if unsigned.starts_with('-') {
        return Err(format!("{text:?} is negative; a request or capacity is at least 0").into());
    }
    let number_end = unsigned
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(invalid());
    }
    let (binary, decimal): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent if exponent.starts_with(['e', 'E']) => {
            let digits = &exponent[1..];
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            (
                0,
                digits
                    .parse::<i32>()
                    .ok()
                    .filter(|e| e.abs() <= 100)
                    .ok_or_else(invalid)?,
            )
        }
        _ => return Err(invalid()),
    };
    let too_large = || QuantityError(format!("{text:?} is too large"));
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    let mantissa: u128 = digits.parse().map_err(|_| too_large())?;
    let numerator = mantissa
        .checked_mul(1u128 << binary)
        .ok_or_else(too_large)?;
    let exponent = decimal + scale - i32::try_from(fraction.len()).map_err(|_| invalid())?;
    let value = if exponent >= 0 {
        10u128
            .checked_pow(exponent.unsigned_abs())
            .and_then(|p| numerator.checked_mul(p))
            .ok_or_else(too_large)?
    } else {
        match 10u128.checked_pow(exponent.unsigned_abs()) {
            Some(denominator) => numerator.div_ceil(denominator),
            // Smaller than one unit, but more than nothing: rounded up.
            None => 1,
        }
    };
    u64::try_from(value).map_err(|_| too_large())
}

/// Millicores as people read CPU: `3.5 CPU`, `0.25 CPU`.
pub fn show_cpu(millis: u64) -> String {
    let (whole, fraction) = (millis / 1000, millis % 1000);
    if fraction == 0 {
        return format!("{whole} CPU");
    }
    let fraction = format!("{fraction:03}");
    format!("{whole}.{} CPU", fraction.trim_end_matches('0'))
}

/// Bytes as people read memory, to two decimals of the largest binary unit that fits
/// (`6 GiB`, `1.5 GiB`, `512 MiB`); `round_up` for what is needed, down for what is free.
pub fn show_bytes(bytes: u64, round_up: bool) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    let Some((unit, shift)) = UNITS.iter().find(|(_, shift)| bytes >> shift > 0) else {
        return format!("{bytes} B");
    };
    let scaled = u128::from(bytes) * 100;
    let unit_size = 1u128 << shift;
    let hundredths = if round_up {
        scaled.div_ceil(unit_size)
    } else {
        scaled / unit_size
    };
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    match fraction {
        0 => format!("{whole} {unit}"),
        f if f % 10 == 0 => format!("{whole}.{} {unit}", f / 10),
        f => format!("{whole}.{f:02} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_exactly() {
        assert_eq!(Percent::parse("50%", false).unwrap().hundredths(), 5000);
        assert_eq!(Percent::parse("99.5%", false).unwrap().hundredths(), 9950);
        assert_eq!(Percent::parse("99.95 %", false).unwrap().hundredths(), 9995);
        assert_eq!(Percent::parse("100%", false).unwrap(), Percent::HUNDRED);
        assert_eq!(Percent::parse("30", true).unwrap().hundredths(), 3000);
        assert!(Percent::parse("30", false).is_err());
        assert!(Percent::parse("101%", false).is_err());
        assert!(Percent::parse("100.5%", false).is_err());
        assert!(Percent::parse("1.234%", false).is_err());
        assert!(Percent::parse("-1%", false).is_err());
        assert!(Percent::parse("%", false).is_err());
        // Letters are not digits, wherever they are; the message says what a percentage is.
        for bad in ["1.x%", "x%", "5e1%", "1.5x%"] {
            let err = Percent::parse(bad, false).unwrap_err().0;
            assert!(err.contains("is not a percentage"), "{bad}: {err}");
        }
        assert_eq!(Percent::parse("99.5%", false).unwrap().to_string(), "99.5%");
        assert_eq!(
            Percent::parse("99.05%", false).unwrap().to_string(),
            "99.05%"
        );
    }

    #[test]
    fn ranges_parse_and_reject_backwards() {
        let r = PercentRange::parse("25-50").unwrap();
        assert_eq!((r.low.hundredths(), r.high.hundredths()), (2500, 5000));
        assert_eq!(PercentRange::parse("25%-50%").unwrap(), r);
        assert_eq!(PercentRange::parse("30").unwrap().to_string(), "30%");
        assert!(PercentRange::parse("50-25")
            .unwrap_err()
            .0
            .contains("backwards"));
        assert!(PercentRange::parse("0-10").unwrap_err().0.contains("0%"));
        assert!(PercentRange::parse("a-b").is_err());
    }

    #[test]
    fn a_percentage_is_a_fraction_for_the_gates_and_prints_as_written() {
        let fraction = |text| Percent::parse(text, false).unwrap().as_fraction();
        assert_eq!(fraction("50%"), 0.5);
        assert_eq!(fraction("99.95%"), 0.9995);
        assert_eq!(fraction("100%"), 1.0);
        assert_eq!(fraction("0%"), 0.0);
        assert_eq!(Quantity::Count(3).to_string(), "3");
        let half = Percent::parse("50%", false).unwrap();
        assert_eq!(Quantity::Percent(half).to_string(), "50%");
    }

    #[test]
    fn kubernetes_quantities_parse_exactly() {
        let cpu = |t| cpu_millis(t).unwrap();
        assert_eq!(cpu("500m"), 500);
        assert_eq!(cpu("2"), 2000);
        assert_eq!(cpu("1.5"), 1500);
        assert_eq!(cpu("0.1"), 100);
        assert_eq!(cpu("1e3"), 1_000_000);
        assert_eq!(cpu("100u"), 1, "rounded up, as Kubernetes rounds");
        assert_eq!(cpu("+250m"), 250);
        assert_eq!(cpu("0"), 0);
        let mem = |t| bytes(t).unwrap();
        assert_eq!(mem("128Mi"), 128 << 20);
        assert_eq!(mem("1Gi"), 1 << 30);
        assert_eq!(mem("1.5Gi"), 3 << 29);
        assert_eq!(mem("1G"), 1_000_000_000);
        assert_eq!(mem("100k"), 100_000);
        assert_eq!(mem("1e3"), 1000);
        assert_eq!(mem("1E3"), 1000);
        assert_eq!(mem("1E"), 1_000_000_000_000_000_000);
        assert_eq!(mem("4096"), 4096);
        assert_eq!(mem("1500m"), 2);
        for bad in ["", "lots", "1.2.3", "5x", "Gi", "1 Gi", "1e", "1ee3", "."] {
            let err = bytes(bad).unwrap_err().0;
            assert!(err.contains("is not a quantity"), "{bad}: {err}");
        }
        assert!(bytes("-1Gi").unwrap_err().0.contains("negative"));
        assert!(bytes("100Ei").unwrap_err().0.contains("too large"));
        assert!(cpu_millis("1e30").unwrap_err().0.contains("too large"));
    }

    #[test]
    fn resources_show_as_people_read_them() {
        assert_eq!(show_cpu(3500), "3.5 CPU");
        assert_eq!(show_cpu(1250), "1.25 CPU");
        assert_eq!(show_cpu(4000), "4 CPU");
        assert_eq!(show_cpu(100), "0.1 CPU");
        assert_eq!(show_bytes(6 << 30, true), "6 GiB");
        assert_eq!(show_bytes(3 << 29, false), "1.5 GiB");
        assert_eq!(show_bytes(512 << 20, false), "512 MiB");
        assert_eq!(show_bytes((1 << 30) + 1, true), "1.01 GiB");
        assert_eq!(show_bytes((1 << 30) + 1, false), "1 GiB");
        assert_eq!(show_bytes(100, false), "100 B");
    }

    #[test]
    fn rounding_is_explicit() {
        let half = Percent::parse("50%", false).unwrap();
        assert_eq!(half.of_ceil(3), 2);
        assert_eq!(half.of_floor(3), 1);
        assert_eq!(Quantity::Percent(half).resolve_ceil(5), 3);
        assert_eq!(Quantity::Count(2).resolve_ceil(5), 2);
    }
}
