//! Idempotency keys (after Stripe and draft-ietf-httpapi-idempotency-key-header): a key is
//! scoped to the partner and environment; a completed request is replayed; the same key with
//! a different request is refused; while the first request runs, others get "in progress".
//! A request that fails releases its key, so only successes are remembered, for
//! [`IDEMPOTENCY_TTL_HOURS`] hours.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long a completed idempotency key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// How long an unfinished claim blocks the key before another request may take it over
/// (a request that crashed never completes its claim). A provisioning takes milliseconds; a
/// holder slower than this cannot complete after a takeover (its claim token no longer
/// matches), so nothing is charged twice either way.
pub const IDEMPOTENCY_LEASE_SECONDS: i64 = 10;

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Checks an `Idempotency-Key`: 1 to 255 printable ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("Idempotency-Key must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// The fingerprint of a request for idempotency: SHA-256 over its canonical JSON (fields in
/// a fixed order, defaults filled in), so formatting and field order do not matter. Any
/// serialisable request works; the operation it is for is stored beside it
/// ([`IdempotencyRequest::operation`]), so one key cannot be replayed by another operation.
pub fn request_hash<T: Serialize>(request: &T) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    crate::numbers::hex(&Sha256::digest(&canonical))
}

/// What a provisioning write does with its request's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyWrite {
    /// Claims a key nobody holds, completed with this order, as the transaction's first
    /// write. If the key exists (or is being claimed by a transaction that then commits),
    /// nothing is written: [`ProvisionResult::KeyTaken`].
    ClaimNew(IdempotencyRequest),
    /// Completes a claim taken before with [`Storage::claim_idempotency_key`]; if another
    /// request took it over meanwhile, nothing is written: [`ProvisionResult::ClaimLost`].
    Complete(ClaimRef),
}

/// A claim held on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRef {
    /// The key.
    pub key: String,
    /// The claim's token.
    pub token: String,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours to process (new, expired, or abandoned by a crashed request).
    Claimed,
    /// The key completed earlier with this order: replay it.
    Completed {
        /// The order created by the first request.
        order_id: String,
    },
    /// Another request holds the key now.
    InProgress,
    /// The key was used with a different request body.
    Mismatch,
}

/// A claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    /// The key, as sent.
    pub key: String,
    /// A random token of this request: only the holder of the claim may complete or
    /// release it.
    pub token: String,
    /// SHA-256 of the canonical request.
    pub request_hash: String,
    /// Now.
    pub now: DateTime<Utc>,
    /// Until when an unfinished claim blocks others (after that, a crashed request's key
    /// may be taken over).
    pub lease_until: DateTime<Utc>,
    /// When the stored result is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// An idempotency key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIdempotencyKey {
    /// Fingerprint of the request that claimed it.
    pub request_hash: String,
    /// The order it created, once completed.
    pub order_id: Option<String>,
    /// Until when an unfinished claim blocks others.
    pub locked_until: DateTime<Utc>,
    /// When it is forgotten.
    pub expires_at: DateTime<Utc>,
}

/// What a store must do with a claim, given what it found (see [`decide_claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Write a fresh claim (replacing an expired one, if any) and answer `Claimed`.
    Insert,
    /// Take over an abandoned claim: set its lease to the new one and answer `Claimed`.
    TakeOver,
    /// Change nothing; answer this.
    Answer(IdempotencyClaim),
}

/// The idempotency rules, in one place for every storage adapter. The adapter reads the
/// stored key under a lock (or in a serialised transaction) and applies the decision.
pub fn decide_claim(
    stored: Option<&StoredIdempotencyKey>,
    claim: &IdempotencyRequest,
) -> ClaimDecision {
    match stored {
        None => ClaimDecision::Insert,
        Some(s) if s.expires_at <= claim.now => ClaimDecision::Insert,
        Some(s) if s.request_hash != claim.request_hash => {
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
        }
        Some(StoredIdempotencyKey {
            order_id: Some(order_id),
            ..
        }) => ClaimDecision::Answer(IdempotencyClaim::Completed {
            order_id: order_id.clone(),
        }),
        Some(s) if s.locked_until > claim.now => {
            ClaimDecision::Answer(IdempotencyClaim::InProgress)
        }
        Some(_) => ClaimDecision::TakeOver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn request(now: DateTime<Utc>) -> IdempotencyRequest {
        IdempotencyRequest {
            key: "k".into(),
            token: "t".into(),
            request_hash: "h1".into(),
            now,
            lease_until: now + Duration::seconds(60),
            expires_at: now + Duration::hours(24),
        }
    }

    #[test]
    fn claim_decisions() {
        let now = Utc::now();
        let req = request(now);
        let stored =
            |hash: &str, order: Option<&str>, lease: i64, expiry: i64| StoredIdempotencyKey {
                request_hash: hash.into(),
                order_id: order.map(str::to_owned),
                locked_until: now + Duration::seconds(lease),
                expires_at: now + Duration::seconds(expiry),
            };
        assert_eq!(decide_claim(None, &req), ClaimDecision::Insert);
        // Expired keys are forgotten, whatever they held.
        assert_eq!(
            decide_claim(Some(&stored("other", Some("o"), 0, -1)), &req),
            ClaimDecision::Insert
        );
        assert_eq!(
            decide_claim(Some(&stored("other", None, 30, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", Some("ord_1"), -5, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::Completed {
                order_id: "ord_1".into()
            })
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", None, 30, 100)), &req),
            ClaimDecision::Answer(IdempotencyClaim::InProgress)
        );
        assert_eq!(
            decide_claim(Some(&stored("h1", None, -1, 100)), &req),
            ClaimDecision::TakeOver
        );
    }

    #[test]
    fn request_hash_ignores_formatting_but_not_content() {
        use oytel_types::ProvisionRequest;
        let parse = |json: &str| serde_json::from_str::<ProvisionRequest>(json).unwrap();
        let a = parse(
            r#"{"customer_name":"John Doe","plan_id":"uk-massive-650","term_months":3,
               "customer_email":"user@example.com","reference_id":"order-1"}"#,
        );
        let b = parse(
            r#"{ "plan_id": "uk-massive-650", "term_months": 3, "reference_id": "order-1",
                 "customer_email": "user@example.com", "customer_name": "John Doe" }"#,
        );
        assert_eq!(request_hash(&a), request_hash(&b));
        let c = ProvisionRequest {
            term_months: 1,
            ..a.clone()
        };
        assert_ne!(request_hash(&c), request_hash(&a));
        // The hash of a provisioning is the one stored by earlier releases: keys stored
        // before an upgrade still match their retries.
        assert_eq!(
            request_hash(&a),
            "1dee55c8d47798d5f808e71899c2646f192b05485bc1ab86e2c6084806e31f35"
        );
    }

    #[test]
    fn idempotency_keys_are_printable_ascii() {
        assert!(validate_idempotency_key("order-123_ABC").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("has space").is_err());
        assert!(validate_idempotency_key(&"k".repeat(256)).is_err());
        assert!(validate_idempotency_key("ключ").is_err());
    }
}
