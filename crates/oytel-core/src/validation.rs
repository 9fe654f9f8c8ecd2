//! Checks of the text partners send: emails, names and references, webhook URLs. Each
//! returns the value as it will be stored (trimmed, normalised) or a message in plain words
//! that names the field.

use chrono::{DateTime, SubsecRound, Utc};

use crate::records::LedgerFilter;
use crate::CoreError;

pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks the email address given as `field` (named in the message): `local@domain.tld`, at
/// most 254 characters, no spaces or control characters.
pub fn validate_email(field: &str, email: &str) -> Result<String, String> {
    if email.trim().is_empty() {
        return Err(format!("{field} is required"));
    }
    let invalid = || format!("{field} is not a valid email address");
    if email.chars().count() > 254 || has_control(email) || email.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(invalid());
    };
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
    if !(1..=64).contains(&local.chars().count()) || local.contains('@') || !domain_ok {
        return Err(invalid());
    }
    Ok(email.to_owned())
}

/// Checks `value` is at most `max_chars` characters, free of control characters and not blank,
/// and trims it; errors name `field`. (The spec's `TEXT_PATTERN` and `maxLength` say the same.)
pub fn validate_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, CoreError> {
    if value.chars().count() > max_chars {
        return Err(CoreError::field(
            field,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if has_control(value) {
        return Err(CoreError::field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    let value = value.trim();
    if value.is_empty() {
        return Err(CoreError::field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    Ok(value.to_owned())
}

/// The longest webhook URL, as sent (the spec's `maxLength`, in characters).
pub const MAX_URL_CHARS: usize = 2048;

/// Checks a webhook URL: absolute `http` or `https` with a host, at most 2048 characters as
/// sent. What is stored is the normalised form (an international domain in its `xn--` form,
/// other characters percent-encoded), which can be longer than what was sent: the limit is
/// the spec's, on what a partner sends (the fuzzer found a stored form of more than 2,048
/// bytes; refusing it would refuse URLs the spec allows, which schemathesis then found).
pub fn validate_webhook_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "webhook_url must be at most {MAX_URL_CHARS} characters"
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("webhook_url is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return Err("webhook_url must be an absolute http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("webhook_url must not contain credentials".into());
    }
    Ok(url.to_string())
}

/// A `reference_id` filter of a list, checked like the field itself.
pub fn reference_filter(reference_id: Option<&str>) -> Result<Option<String>, CoreError> {
    reference_id
        .map(|r| validate_text("reference_id", r, 128))
        .transpose()
}

/// A `customer_email` filter of a list, checked like the field itself.
pub fn email_filter(email: Option<&str>) -> Result<Option<String>, CoreError> {
    email
        .map(|e| {
            validate_email("customer_email", e).map_err(|m| CoreError::field("customer_email", m))
        })
        .transpose()
}

/// A date range of a list (`from` inclusive, `to` exclusive), to whole seconds as the API
/// shows times. A range that ends where (or before) it starts holds nothing: an empty list,
/// not an error.
pub fn date_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> LedgerFilter {
    LedgerFilter {
        from: from.map(|t| t.trunc_subsecs(0)),
        to: to.map(|t| t.trunc_subsecs(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_is_at_most_2048_characters_as_sent_and_stored_normalised() {
        let host = "é".repeat(60);
        let stored = validate_webhook_url(&format!("https://{host}.example/hook")).unwrap();
        assert!(stored.starts_with("https://xn--"), "{stored}");
        assert_eq!(
            validate_webhook_url(&stored).as_deref(),
            Ok(stored.as_str())
        );

        // Short as sent, longer once its labels are written in their xn-- form: accepted, as
        // the spec allows it, and stored normalised.
        let label: String = (0..20)
            .filter_map(|i| char::from_u32(0x4e00 + (i * 331) % 20_000))
            .collect();
        let long = format!("https://{}.example/hook", vec![label; 40].join("."));
        assert!(long.chars().count() <= MAX_URL_CHARS);
        let stored = validate_webhook_url(&long).unwrap();
        assert!(stored.len() > MAX_URL_CHARS, "{} bytes", stored.len());

        // Counted in characters, as the spec counts them; a URL of exactly 2048 is accepted
        // even though its stored form gains a `/`.
        let path = "é".repeat(2000);
        assert!(validate_webhook_url(&format!("https://example.com/{path}")).is_ok());
        let host = "a".repeat(MAX_URL_CHARS - "https://".len());
        assert!(validate_webhook_url(&format!("https://{host}")).is_ok());
        assert!(validate_webhook_url(&format!("https://{host}a")).is_err());
    }
}
