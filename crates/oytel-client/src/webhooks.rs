//! Verifying webhooks (Standard Webhooks), with the same signing code the server uses.
//!
//! ```
//! # fn handle(headers: &reqwest::header::HeaderMap, body: &[u8]) {
//! match oytel_client::webhooks::verify("whsec_…", headers, body) {
//!     Ok(event) => println!("{} for {}", event.event.as_str(), event.data.esim_id),
//!     Err(e) => eprintln!("refused: {e}"), // answer 400, do not process
//! }
//! # }
//! ```

use oytel_types::{AccountWebhookEvent, WebhookEvent};
use reqwest::header::HeaderMap;

pub use oytel_webhooks::{Secret, SecretError, VerifyError, TOLERANCE_SECONDS};

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature, timestamp or headers do not check out.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The secret given is not a `whsec_…` secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Signed correctly, but not an Oytel event.
    #[error("malformed webhook payload: {0}")]
    Malformed(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Verifies a webhook delivery against `secret` (`whsec_…`) and the current time, and
/// returns its event. `headers` and `body` are the request's, the body exactly as received.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<WebhookEvent, WebhookError> {
    verify_at(secret, headers, body, unix_now())
}

/// [`verify`] at a given Unix time (for tests).
pub fn verify_at(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<WebhookEvent, WebhookError> {
    verified(secret, headers, body, now, |e: &WebhookEvent| &e.id)
}

/// [`verify`] for an account event (`account.balance_low`, sent only to endpoints that list
/// it), whose `data` is the account instead of an eSIM.
pub fn verify_account_event(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AccountWebhookEvent, WebhookError> {
    verified(
        secret,
        headers,
        body,
        unix_now(),
        |e: &AccountWebhookEvent| &e.id,
    )
}

/// The current Unix time, seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Checks the signature, then reads the body as `T`, whose id must be the `webhook-id`.
fn verified<T: serde::de::DeserializeOwned>(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    id: fn(&T) -> &str,
) -> Result<T, WebhookError> {
    let secret = Secret::parse(secret)?;
    oytel_webhooks::verify(
        &secret,
        header(headers, "webhook-id")?,
        header(headers, "webhook-timestamp")?,
        header(headers, "webhook-signature")?,
        body,
        now,
    )?;
    let event: T =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if id(&event) != header(headers, "webhook-id")? {
        return Err(WebhookError::Malformed(
            "the event id differs from webhook-id".into(),
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn signed(body: &str, id: &str, ts: i64) -> HeaderMap {
        let signature = Secret::parse(SECRET).unwrap().sign(id, ts, body.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        headers.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signature).unwrap(),
        );
        headers
    }

    #[test]
    fn an_account_event_verifies_as_one() {
        let body = r#"{"id":"evt_1","event":"account.balance_low","timestamp":"2026-11-30T00:00:00Z","data":{"partner_id":"ptn_1","balance":88.0,"balance_cents":8800,"threshold":90.0,"threshold_cents":9000,"currency":"USD"}}"#;
        let ts = 1_800_000_000;
        let headers = signed(body, "evt_1", ts);
        let event = verified(
            SECRET,
            &headers,
            body.as_bytes(),
            ts,
            |e: &AccountWebhookEvent| &e.id,
        )
        .unwrap();
        assert_eq!(event.data.balance_cents, 8_800);
        assert!(
            verify_at(SECRET, &headers, body.as_bytes(), ts).is_err(),
            "not an eSIM event"
        );
    }

    const BODY: &str = r#"{"id":"evt_1","event":"esim.activated","timestamp":"2026-01-01T00:00:00Z","data":{"esim_id":"esim_1","customer_email":"a@example.com","plan_id":"eu-roam-50"}}"#;

    #[test]
    fn a_signed_event_is_returned_typed() {
        let event = verify_at(
            SECRET,
            &signed(BODY, "evt_1", 1_000),
            BODY.as_bytes(),
            1_010,
        )
        .unwrap();
        assert_eq!(event.event, oytel_types::EventType::EsimActivated);
        assert_eq!(event.data.esim_id, "esim_1");
    }

    #[test]
    fn tampering_age_and_garbage_are_refused() {
        let headers = signed(BODY, "evt_1", 1_000);
        let tampered = BODY.replace("esim_1", "esim_2");
        assert!(matches!(
            verify_at(SECRET, &headers, tampered.as_bytes(), 1_000),
            Err(WebhookError::Verify(VerifyError::BadSignature))
        ));
        assert!(matches!(
            verify_at(SECRET, &headers, BODY.as_bytes(), 2_000),
            Err(WebhookError::Verify(VerifyError::TooOld))
        ));
        assert!(matches!(
            verify_at("whsec_bad", &headers, BODY.as_bytes(), 1_000),
            Err(WebhookError::Secret(_))
        ));
        assert!(matches!(
            verify_at(SECRET, &HeaderMap::new(), BODY.as_bytes(), 1_000),
            Err(WebhookError::Verify(VerifyError::MissingHeader(
                "webhook-id"
            )))
        ));
        let not_event = r#"{"hello":"world"}"#;
        assert!(matches!(
            verify_at(
                SECRET,
                &signed(not_event, "evt_1", 1_000),
                not_event.as_bytes(),
                1_000
            ),
            Err(WebhookError::Malformed(_))
        ));
        assert!(matches!(
            verify_at(
                SECRET,
                &signed(BODY, "evt_other", 1_000),
                BODY.as_bytes(),
                1_000
            ),
            Err(WebhookError::Malformed(_))
        ));
    }
}
