//! JSON request bodies, read the same way on every route: a body that is not JSON is
//! `INVALID_JSON`; JSON of the wrong shape is `VALIDATION_ERROR` naming the field at fault, in
//! words a partner reads (never a Rust type). Pure, so that it is fuzzed on its own
//! (`crates/oytel-fuzz`).
//!
//! | the body | code | field |
//! |---|---|---|
//! | not UTF-8, not JSON, truncated | `INVALID_JSON` | none |
//! | JSON but not an object (a list, a number, `null`) | `VALIDATION_ERROR` | none |
//! | a key twice, an unknown or missing field, a value of the wrong type or range | `VALIDATION_ERROR` | the field |

use oytel_types::ErrorCode;
use serde::de::DeserializeOwned;

/// Why a body was refused: always a `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// `INVALID_JSON` or `VALIDATION_ERROR`.
    pub code: ErrorCode,
    /// The field at fault, as a path (`customer_email`, `.events[2]`), where one is known.
    pub field: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
}

impl BodyError {
    fn syntax(message: impl Into<String>) -> BodyError {
        BodyError {
            code: ErrorCode::InvalidJson,
            field: None,
            message: message.into(),
        }
    }

    fn shape(field: Option<String>, message: impl Into<String>) -> BodyError {
        BodyError {
            code: ErrorCode::ValidationError,
            field,
            message: message.into(),
        }
    }
}

/// Parses a JSON body into `T`, telling a syntax error (`INVALID_JSON`) from a well-formed body
/// of the wrong shape (`VALIDATION_ERROR`, naming the field at fault).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(BodyError::syntax("the request body is not valid UTF-8"));
    }
    // Syntax first, so that INVALID_JSON means exactly "not JSON" (nothing is built). Then
    // the shape, from the bytes themselves: a `Value` would silently keep the last of two
    // duplicated keys, and an ambiguous paid request must be refused instead.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| invalid_json(&e))?;
    // serde reads a struct from a list too (by position): a body is an object or nothing.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyError::shape(None, "the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(shape_error)
}

/// serde's words for a value of the wrong type or range, in words a partner reads: the
/// expected kind instead of a Rust type (`u32` is "a whole number of 0 or more").
///
/// | serde expects | the message says |
/// |---|---|
/// | `u8` … `u64`, `usize` | a whole number of 0 or more |
/// | `i8` … `i64`, `isize` | a whole number |
/// | `f32`, `f64` | a number |
/// | a string | text |
/// | a boolean | true or false |
/// | a sequence | a list |
/// | a map, a struct | an object |
fn plain_words(message: &str, field: &str) -> String {
    let Some((got, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    else {
        return message.to_owned();
    };
    let expected = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a string" | "a borrowed string" | "string" => "text",
        "a boolean" | "bool" => "true or false",
        "a sequence" => "a list",
        other if other == "a map" || other.starts_with("struct ") => "an object",
        other => other,
    };
    let got = match got.split_once(' ') {
        Some(("string", text)) => format!("the text {text}"),
        Some(("integer" | "floating", value)) => value
            .trim_start_matches("point ")
            .trim_matches('`')
            .to_owned(),
        Some(("boolean", value)) => value.trim_matches('`').to_owned(),
        _ => match got {
            "map" => "an object".to_owned(),
            "sequence" => "a list".to_owned(),
            other => other.to_owned(),
        },
    };
    format!("{field} must be {expected}, not {got}")
}

fn invalid_json(error: &serde_json::Error) -> BodyError {
    BodyError::syntax(format!(
        "the request body is not valid JSON: {}",
        strip_position(&error.to_string())
    ))
}

fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let message = strip_position(&inner.to_string());
    // serde names an unknown or missing field in its message; the path names where a value
    // of the wrong type was found.
    let field = field_from_message(&message).or_else(|| (path != ".").then_some(path));
    let message = plain_words(&message, field.as_deref().unwrap_or("the body"));
    BodyError::shape(field, message)
}

fn field_from_message(message: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    None
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialised")]
    struct Order {
        term_months: u32,
        reference_id: Option<String>,
        notify: Option<bool>,
        tags: Option<Vec<String>>,
    }

    fn message(body: &str) -> String {
        let error = parse_json::<Order>(body.as_bytes()).unwrap_err();
        error.message
    }

    #[test]
    fn a_wrong_type_is_told_in_words_never_as_a_rust_type() {
        for (body, expected) in [
            (
                r#"{"term_months": "1"}"#,
                r#"term_months must be a whole number of 0 or more, not the text "1""#,
            ),
            (
                r#"{"term_months": -1}"#,
                "term_months must be a whole number of 0 or more, not -1",
            ),
            (
                r#"{"term_months": 1.5}"#,
                "term_months must be a whole number of 0 or more, not 1.5",
            ),
            (
                r#"{"term_months": 1, "reference_id": 7}"#,
                "reference_id must be text, not 7",
            ),
            (
                r#"{"term_months": 1, "notify": "yes"}"#,
                r#"notify must be true or false, not the text "yes""#,
            ),
            (
                r#"{"term_months": 1, "tags": {}}"#,
                "tags must be a list, not an object",
            ),
            (r#"[1]"#, "the body must be a JSON object"),
            (r#"[1, null, null, null]"#, "the body must be a JSON object"),
        ] {
            let text = message(body);
            assert_eq!(text, expected, "{body}");
            for rust in ["u32", "i64", "f64", "struct", "sequence"] {
                assert!(!text.contains(rust), "{text}");
            }
        }
    }
}
