//! Verifying webhooks (Standard Webhooks), with the same signing code the server uses.
//!
//! ```
//! use oytel_client::webhooks::{verify, Event};
//! use oytel_client::types::EventType;
//!
//! # fn handle(headers: &reqwest::header::HeaderMap, body: &[u8]) {
//! match verify("whsec_…", headers, body) {
//!     Ok(Event::Esim(e)) if e.event == EventType::EsimActivated => println!("{} is live", e.data.esim_id),
//!     Ok(Event::Account(e)) => println!("balance low: {}", e.data.balance),
//!     // A type newer than this SDK: answer 2xx and log it, or read its payload.
//!     Ok(event) => println!("{} ({})", event.name(), event.id()),
//!     Err(e) => eprintln!("refused: {e}"), // answer 400, do not process
//! }
//! # }
//! ```

use oytel_types::{AccountWebhookEvent, EventType, WebhookEvent};
pub use oytel_webhooks::{Secret, SecretError, VerifyError, TOLERANCE_SECONDS};
/// The header map [`verify`] reads (the `http` crate's, as axum, hyper and reqwest use).
pub use reqwest::header::HeaderMap;

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

/// A verified delivery's event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An event about an eSIM (every type this SDK knows but `account.balance_low`).
    Esim(Box<WebhookEvent>),
    /// `account.balance_low`, about the account.
    Account(AccountWebhookEvent),
    /// A type newer than this SDK: its name and payload, for the caller to decide (answer
    /// 2xx to take it, or 4xx to have it retried after you upgrade).
    Unknown {
        /// `evt_…`, the `webhook-id`.
        id: String,
        /// Its type's name, e.g. `esim.teleported`.
        event: String,
        /// The whole body.
        payload: serde_json::Value,
    },
}

impl Event {
    /// `evt_…`, the same as the `webhook-id` header: drop a repeated delivery by it.
    pub fn id(&self) -> &str {
        match self {
            Event::Esim(e) => &e.id,
            Event::Account(e) => &e.id,
            Event::Unknown { id, .. } => id,
        }
    }

    /// Its type ([`EventType::Unknown`] for a type newer than this SDK).
    pub fn event_type(&self) -> EventType {
        match self {
            Event::Esim(e) => e.event,
            Event::Account(e) => e.event,
            Event::Unknown { .. } => EventType::Unknown,
        }
    }

    /// Its type's name as sent, e.g. `esim.activated`.
    pub fn name(&self) -> &str {
        match self {
            Event::Unknown { event, .. } => event,
            known => known.event_type().as_str(),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MissingHeader(name))
}

/// Verifies a webhook delivery against `secret` (`whsec_…`) and the current time, and
/// returns its event, whatever its type. `headers` and `body` are the request's, the body
/// exactly as received.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<Event, WebhookError> {
    verify_at(secret, headers, body, unix_now())
}

/// [`verify`] at a given Unix time (for tests).
pub fn verify_at(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Event, WebhookError> {
    let malformed = |e: serde_json::Error| WebhookError::Malformed(e.to_string());
    let payload: serde_json::Value = verified(secret, headers, body, now)?;
    let name = payload["event"]
        .as_str()
        .ok_or_else(|| WebhookError::Malformed("no `event` name".into()))?
        .to_owned();
    let event = match EventType::parse(&name) {
        Some(EventType::AccountBalanceLow) => {
            Event::Account(serde_json::from_value(payload).map_err(malformed)?)
        }
        Some(_) => Event::Esim(Box::new(
            serde_json::from_value(payload).map_err(malformed)?,
        )),
        None => Event::Unknown {
            id: payload["id"].as_str().unwrap_or_default().to_owned(),
            event: name,
            payload,
        },
    };
    if event.id() != header(headers, "webhook-id")? {
        return Err(WebhookError::Malformed(
            "the event id differs from webhook-id".into(),
        ));
    }
    Ok(event)
}

/// [`verify`] for an endpoint that receives only `account.balance_low`: the account event,
/// or [`WebhookError::Malformed`] for any other.
pub fn verify_account_event(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AccountWebhookEvent, WebhookError> {
    match verify(secret, headers, body)? {
        Event::Account(event) => Ok(event),
        other => Err(WebhookError::Malformed(format!(
            "`{}` is not an account event",
            other.name()
        ))),
    }
}

/// The current Unix time, seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Checks the signature, then reads the body as JSON.
fn verified(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<serde_json::Value, WebhookError> {
    let secret = Secret::parse(secret)?;
    oytel_webhooks::verify(
        &secret,
        header(headers, "webhook-id")?,
        header(headers, "webhook-timestamp")?,
        header(headers, "webhook-signature")?,
        body,
        now,
    )?;
    serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))
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
        match verify_at(SECRET, &headers, body.as_bytes(), ts).unwrap() {
            Event::Account(event) => assert_eq!(event.data.balance_cents, 8_800),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_type_newer_than_the_sdk_is_verified_and_left_to_the_caller() {
        let body = r#"{"id":"evt_9","event":"esim.teleported","timestamp":"2027-01-01T00:00:00Z","data":{"where":"moon"}}"#;
        let headers = signed(body, "evt_9", 1_000);
        let event = verify_at(SECRET, &headers, body.as_bytes(), 1_000).unwrap();
        assert_eq!(event.id(), "evt_9");
        assert_eq!(event.name(), "esim.teleported");
        assert_eq!(event.event_type(), EventType::Unknown);
        match event {
            Event::Unknown { payload, .. } => assert_eq!(payload["data"]["where"], "moon"),
            other => panic!("{other:?}"),
        }
        // Unknown or not, the signature is checked.
        let tampered = body.replace("moon", "mars");
        assert!(verify_at(SECRET, &headers, tampered.as_bytes(), 1_000).is_err());
    }

    #[test]
    fn an_esim_event_with_a_state_newer_than_the_sdk_still_verifies() {
        let body = r#"{"id":"evt_2","event":"esim.suspended","timestamp":"2027-01-01T00:00:00Z","data":{"esim_id":"esim_1","customer_email":"a@example.com","plan_id":"eu-roam-50","status":"hibernating"}}"#;
        let headers = signed(body, "evt_2", 1_000);
        match verify_at(SECRET, &headers, body.as_bytes(), 1_000).unwrap() {
            Event::Esim(e) => assert_eq!(e.data.status, Some(oytel_types::EsimStatus::Unknown)),
            other => panic!("{other:?}"),
        }
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
        match event {
            Event::Esim(e) => {
                assert_eq!(e.event, EventType::EsimActivated);
                assert_eq!(e.data.esim_id, "esim_1");
            }
            other => panic!("{other:?}"),
        }
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
