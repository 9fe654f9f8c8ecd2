//! Standard Webhooks (v1.0.0) signing and verification, in one place for the server (which
//! signs) and `oytel-client` (which verifies).
//!
//! - The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, signed with HMAC-SHA256
//!   under the secret's bytes; a signature is `v1,<base64>`.
//! - A secret is shown as `whsec_<base64>`.
//! - `webhook-signature` may carry several signatures separated by spaces (during a secret
//!   rotation both the old and the new secret sign); one valid signature is enough.
//! - Receivers refuse timestamps more than [`TOLERANCE_SECONDS`] away from their clock.
//!
//! This crate depends only on hmac, sha2 and base64: no HTTP, no async.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a webhook's timestamp may be from the receiver's clock, either way.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A secret that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook secret: {0}")]
pub struct SecretError(&'static str);

impl Secret {
    /// A secret of these bytes (24 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret, SecretError> {
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError("a secret has 24 to 64 bytes"));
        }
        Ok(Secret(bytes.to_vec()))
    }

    /// Parses `whsec_<base64>` (the prefix is optional).
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .unwrap_or(text.trim());
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError("not base64"))?;
        Secret::from_bytes(&bytes)
    }

    /// The text form, `whsec_<base64>`.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The signature `v1,<base64>` of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Whether `signature` (`v1,<base64>`) signs the message, compared in constant time.
    fn verifies(&self, signature: &str, id: &str, timestamp: i64, body: &[u8]) -> bool {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            return false;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            return false;
        };
        self.mac(id, timestamp, body).verify_slice(&tag).is_ok()
    }
}

/// The `webhook-signature` header value for a message signed by every secret given
/// (normally one; two during a rotation).
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is missing or unreadable.
    #[error("missing or malformed header `{0}`")]
    MissingHeader(&'static str),
    /// The timestamp is too far from now.
    #[error("the webhook timestamp is more than {TOLERANCE_SECONDS} seconds from now")]
    TooOld,
    /// No signature matches.
    #[error("no valid signature")]
    BadSignature,
}

/// Verifies a webhook: `id`, `timestamp` and `signatures` are the `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` headers, `now` the receiver's clock in Unix
/// seconds.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    if id.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-id"));
    }
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::MissingHeader("webhook-timestamp"))?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(VerifyError::TooOld);
    }
    if signatures
        .split(' ')
        .any(|s| secret.verifies(s, id, timestamp, body))
    {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn the_standard_test_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), EXPECTED);
        assert_eq!(secret.to_text(), SECRET);
        assert_eq!(
            verify(&secret, ID, &TS.to_string(), EXPECTED, BODY, TS + 10),
            Ok(())
        );
    }

    #[test]
    fn refusals() {
        let secret = Secret::parse(SECRET).unwrap();
        let ts = TS.to_string();
        assert_eq!(
            verify(&secret, ID, &ts, EXPECTED, b"{}", TS),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&secret, "msg_other", &ts, EXPECTED, BODY, TS),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(&secret, ID, &ts, EXPECTED, BODY, TS + 301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(&secret, ID, &ts, EXPECTED, BODY, TS - 301),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            verify(&secret, ID, "soon", EXPECTED, BODY, TS),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            verify(&secret, "", &ts, EXPECTED, BODY, TS),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            verify(&secret, ID, &ts, "v2,abc v1,!!!", BODY, TS),
            Err(VerifyError::BadSignature)
        );
        let other = Secret::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(
            verify(&other, ID, &ts, EXPECTED, BODY, TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let old = Secret::parse(SECRET).unwrap();
        let new = Secret::from_bytes(&[42u8; 32]).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], ID, TS, BODY);
        assert_eq!(header.split(' ').count(), 2);
        let ts = TS.to_string();
        assert_eq!(verify(&old, ID, &ts, &header, BODY, TS), Ok(()));
        assert_eq!(verify(&new, ID, &ts, &header, BODY, TS), Ok(()));
    }

    #[test]
    fn secrets_are_checked() {
        assert!(Secret::parse("whsec_notbase64!").is_err());
        assert!(Secret::from_bytes(&[1u8; 23]).is_err());
        assert!(Secret::from_bytes(&[1u8; 65]).is_err());
        assert_eq!(format!("{:?}", Secret::parse(SECRET).unwrap()), "Secret(…)");
    }
}
