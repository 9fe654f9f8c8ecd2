//! Whole numbers as JSON Schema has them: a JSON number whose value is whole is an integer,
//! however it is written (`8252` or `8252.0`), so a client or validator that follows the
//! schema is never refused for the spelling. Anything else is refused in words.

use serde::de::{Deserializer, Error, Unexpected, Visitor};

/// What the field holds, in the refusal's words.
const EXPECTED: &str = "a whole number of 0 or more";

struct Whole;

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        // Below 2^64, where every whole f64 is a u64.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Ok(v as u64);
        }
        Err(E::invalid_value(Unexpected::Float(v), &self))
    }
}

/// The largest count a field takes: what the spec's `int64` format allows (and the
/// databases store).
const MAX_COUNT: u64 = i64::MAX as u64;

/// A `u64` field that takes any whole JSON number from 0 to [`MAX_COUNT`] (schemathesis sent
/// 2^63 SMS: the spec's `int64` refuses it, so must we).
pub(crate) fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = deserializer.deserialize_any(Whole)?;
    if value > MAX_COUNT {
        return Err(D::Error::invalid_value(
            Unexpected::Unsigned(value),
            &"a whole number from 0 to 9223372036854775807",
        ));
    }
    Ok(value)
}

/// A `u32` field that takes any whole JSON number in its range.
pub(crate) fn u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let value = u64(deserializer)?;
    u32::try_from(value)
        .map_err(|_| D::Error::invalid_value(Unexpected::Unsigned(value), &EXPECTED))
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::u64")]
        big: u64,
        #[serde(deserialize_with = "super::u32")]
        small: u32,
    }

    fn read(json: &str) -> Result<(u64, u32), String> {
        serde_json::from_str::<Counts>(json)
            .map(|c| (c.big, c.small))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_is_one_however_it_is_written() {
        assert_eq!(read(r#"{"big": 8252, "small": 3}"#), Ok((8252, 3)));
        assert_eq!(read(r#"{"big": 8252.0, "small": 3.0}"#), Ok((8252, 3)));
        assert_eq!(read(r#"{"big": 1e3, "small": 0}"#), Ok((1000, 0)));
        for bad in [
            r#"{"big": 1.5, "small": 1}"#,
            r#"{"big": -1, "small": 1}"#,
            r#"{"big": 1, "small": 4294967296}"#,
            r#"{"big": "1", "small": 1}"#,
        ] {
            let message = read(bad).unwrap_err();
            assert!(
                message.contains("a whole number of 0 or more"),
                "{bad}: {message}"
            );
        }
        assert_eq!(
            read(r#"{"big": 9223372036854775807, "small": 1}"#),
            Ok((9_223_372_036_854_775_807, 1))
        );
        for too_big in [
            r#"{"big": 9223372036854775808, "small": 1}"#,
            r#"{"big": 1e19, "small": 1}"#,
        ] {
            let message = read(too_big).unwrap_err();
            assert!(
                message.contains("a whole number from 0 to 9223372036854775807"),
                "{too_big}: {message}"
            );
        }
    }
}
