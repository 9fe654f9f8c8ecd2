//! Idempotency keys (after Stripe and draft-ietf-httpapi-idempotency-key-header), for every
//! paid or state-changing operation. The rules, which every storage adapter applies through
//! [`decide_claim`]:
//!
//! | the key, as stored | a request with it gets |
//! |---|---|
//! | none, or expired ([`IDEMPOTENCY_TTL_HOURS`] after its claim) | the key: the request runs |
//! | claimed for another operation, or with another request body | refused (`IDEMPOTENCY_KEY_REUSED`) |
//! | completed: it names the resource the first request created | the first answer again, rebuilt from that resource |
//! | claimed by a request still running (its lease of [`IDEMPOTENCY_LEASE_SECONDS`]) | "in progress" (`IDEMPOTENCY_IN_PROGRESS`) |
//! | claimed by a request whose lease ran out (it crashed) | the key: the request runs, and the first can no longer complete |
//!
//! Keys are scoped to the partner and environment. A request that fails releases its key,
//! so only successes are remembered. The flow around these rules (claim, draw the quota,
//! write, complete in the same transaction) is [`paid`](crate::paid)'s.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::CoreError;

/// How long a completed idempotency key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// How long an unfinished claim blocks the key before another request may take it over
/// (a request that crashed never completes its claim). A paid write takes milliseconds; a
/// holder slower than this cannot complete after a takeover (its claim token no longer
/// matches), so nothing is charged twice either way.
pub const IDEMPOTENCY_LEASE_SECONDS: i64 = 10;

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An `Idempotency-Key` as a client sent it, checked: 1 to 255 printable ASCII characters
/// without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks `key`.
    ///
    /// # Errors
    /// [`CoreError::InvalidIdempotencyKey`], saying what is wrong in plain words.
    pub fn parse(key: &str) -> Result<IdempotencyKey, CoreError> {
        validate_idempotency_key(key).map_err(CoreError::InvalidIdempotencyKey)?;
        Ok(IdempotencyKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
/// ([`IdempotencyRequest::operation`]), so that a key cannot replay another operation.
pub fn request_hash<T: Serialize>(request: &T) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    crate::numbers::hex(&Sha256::digest(&canonical))
}

/// An operation whose requests take idempotency keys. Its name is stored with each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /api/v1/esim/provision`.
    Provision,
    /// `POST /api/v1/esim/{esim_id}/cancel`.
    Cancel,
    /// `POST /api/v1/esim/{esim_id}/topups`.
    TopUp,
}

impl Operation {
    /// The name stored with a key (`esim.provision`; what release 0.1's keys were for).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Provision => "esim.provision",
            Operation::Cancel => "esim.cancel",
            Operation::TopUp => "esim.topup",
        }
    }
}

/// The kind of resource a paid write creates, which its replay is rebuilt from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An order (`ord_…`), with what it paid for.
    Order,
    /// An eSIM's cancellation (the eSIM's id), with its refund.
    Cancellation,
    /// A top-up purchase (`top_…`).
    TopUp,
}

impl ResourceKind {
    /// The name stored with a key.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Order => "order",
            ResourceKind::Cancellation => "cancellation",
            ResourceKind::TopUp => "topup",
        }
    }

    /// The kind named `name`, if this release knows it.
    pub fn parse(name: &str) -> Option<ResourceKind> {
        match name {
            "order" => Some(ResourceKind::Order),
            "cancellation" => Some(ResourceKind::Cancellation),
            "topup" => Some(ResourceKind::TopUp),
            _ => None,
        }
    }
}

/// The resource a completed key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its id.
    pub id: String,
}

impl ResourceRef {
    /// An order.
    pub fn order(id: &str) -> ResourceRef {
        ResourceRef {
            kind: ResourceKind::Order,
            id: id.to_owned(),
        }
    }
}

/// What a paid write does with its request's idempotency key, in its own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyWrite {
    /// Claims a key nobody holds, completed with the resource the write creates, as the
    /// transaction's first write. If the key exists (or is being claimed by a transaction
    /// that then commits), the write writes nothing and says the key is taken.
    ClaimNew(IdempotencyRequest),
    /// Completes a claim taken before with
    /// [`Storage::claim_idempotency_key`](crate::ports::Storage::claim_idempotency_key); if
    /// another request took it over meanwhile, the write writes nothing and says the claim
    /// was lost.
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
    /// The key completed earlier, creating this resource: replay it.
    Completed {
        /// What the first request created.
        resource: ResourceRef,
    },
    /// Another request holds the key now.
    InProgress,
    /// The key was used for another operation or with a different request body.
    Mismatch,
}

/// A claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    /// The key, as sent.
    pub key: String,
    /// The operation it is used for.
    pub operation: Operation,
    /// A random token of this request: only the holder of the claim may complete or
    /// release it.
    pub token: String,
    /// SHA-256 of the canonical request ([`request_hash`]).
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
    /// The operation it was claimed for, as stored.
    pub operation: String,
    /// Fingerprint of the request that claimed it.
    pub request_hash: String,
    /// The resource it created, once completed.
    pub resource: Option<ResourceRef>,
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

/// The idempotency rules of the table above, in one place for every storage adapter. The
/// adapter reads the stored key under a lock (or in a serialised transaction) and applies
/// the decision.
pub fn decide_claim(
    stored: Option<&StoredIdempotencyKey>,
    claim: &IdempotencyRequest,
) -> ClaimDecision {
    match stored {
        None => ClaimDecision::Insert,
        Some(s) if s.expires_at <= claim.now => ClaimDecision::Insert,
        Some(s)
            if s.operation != claim.operation.as_str() || s.request_hash != claim.request_hash =>
        {
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
        }
        Some(StoredIdempotencyKey {
            resource: Some(resource),
            ..
        }) => ClaimDecision::Answer(IdempotencyClaim::Completed {
            resource: resource.clone(),
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
            operation: Operation::Provision,
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
                operation: "esim.provision".into(),
                request_hash: hash.into(),
                resource: order.map(ResourceRef::order),
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
                resource: ResourceRef::order("ord_1")
            })
        );
        // The same key and body for another operation is refused, whatever it created.
        let elsewhere = StoredIdempotencyKey {
            operation: "esim.top_up".into(),
            ..stored("h1", Some("ord_1"), -5, 100)
        };
        assert_eq!(
            decide_claim(Some(&elsewhere), &req),
            ClaimDecision::Answer(IdempotencyClaim::Mismatch)
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
        let c = a.clone().term_months(1);
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
        assert_eq!(IdempotencyKey::parse("a-1").unwrap().as_str(), "a-1");
        assert!(matches!(
            IdempotencyKey::parse("has space"),
            Err(CoreError::InvalidIdempotencyKey(_))
        ));
        assert!(validate_idempotency_key("order-123_ABC").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("has space").is_err());
        assert!(validate_idempotency_key(&"k".repeat(256)).is_err());
        assert!(validate_idempotency_key("ключ").is_err());
    }
}
