use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in integer minor units (cents) of a two-decimal currency.
///
/// On the wire it is a decimal number of major units (`2995` cents is `29.95`), as the
/// published clients expect; inside, arithmetic is always on the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// An amount of `cents` minor units.
    pub const fn from_cents(cents: i64) -> Amount {
        Amount(cents)
    }

    /// The amount in minor units.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// Parses a decimal string of major units with at most two decimals (`"29.95"`, `"200"`).
    pub fn parse_decimal(s: &str) -> Option<Amount> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        if whole.is_empty() && frac.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let cents = whole.checked_mul(100)?.checked_add(frac)?;
        Some(Amount(if neg { -cents } else { cents }))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `cents / 100.0` is the double nearest to the decimal, which serde_json prints in
        // its shortest round-tripping form: 2995 -> 29.95.
        serializer.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        let cents = (value * 100.0).round();
        if !cents.is_finite() || cents.abs() > 9.0e15 {
            return Err(serde::de::Error::custom("amount out of range"));
        }
        Ok(Amount(cents as i64))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .description(Some(
                "An amount in major units with at most two decimals (USD), e.g. 29.95.",
            ))
            .examples([serde_json::json!(29.95)])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Amount {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_decimal_major_units() {
        for (cents, text) in [
            (2995, "29.95"),
            (2846, "28.46"),
            (10000, "100.0"),
            (5, "0.05"),
        ] {
            assert_eq!(
                serde_json::to_string(&Amount::from_cents(cents)).unwrap(),
                text
            );
            let back: Amount = serde_json::from_str(text).unwrap();
            assert_eq!(back.cents(), cents);
        }
    }

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(Amount::parse_decimal("200").unwrap().cents(), 20000);
        assert_eq!(Amount::parse_decimal("29.95").unwrap().cents(), 2995);
        assert_eq!(Amount::parse_decimal("0.5").unwrap().cents(), 50);
        assert_eq!(Amount::parse_decimal("-1.25").unwrap().cents(), -125);
        for bad in ["", ".", "1.234", "abc", "1e3", "1.-2"] {
            assert!(Amount::parse_decimal(bad).is_none(), "{bad}");
        }
        assert_eq!(Amount::from_cents(-125).to_string(), "-1.25");
        assert_eq!(Amount::from_cents(2995).to_string(), "29.95");
    }
}
