//! API keys: `sk_sandbox_<40 random>` and `sk_live_<40 random>` (about 238 bits). Only the
//! SHA-256 of a key is stored; the key itself is shown once, when created. A fast hash is
//! right here: the keys are long random secrets, not passwords, so there is nothing to
//! brute-force, and every request must be checked quickly.

use sha2::{Digest, Sha256};

use std::future::Future;

use crate::numbers::{new_id, random_base62};
use crate::ports::{KeyOwner, NewApiKey, StoreError};
use crate::{CoreError, Environment};

const RANDOM_LEN: usize = 40;
/// Longest key text looked up; anything longer is refused without a lookup.
const MAX_KEY_LEN: usize = 128;

/// A freshly made key: the plaintext (to show once) and what is stored.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The key to hand to the partner, once.
    pub plaintext: String,
    /// What the database keeps.
    pub record: NewApiKey,
}

/// SHA-256 of the key, lowercase hex.
pub fn hash_api_key(key: &str) -> String {
    crate::numbers::hex(&Sha256::digest(key.as_bytes()))
}

/// A new key for `partner_id` in `environment`.
pub fn generate_api_key(partner_id: &str, environment: Environment) -> GeneratedKey {
    let random = random_base62(RANDOM_LEN);
    let plaintext = format!("{}{random}", environment.key_prefix());
    let record = NewApiKey {
        id: new_id("key"),
        partner_id: partner_id.to_owned(),
        environment,
        hash: hash_api_key(&plaintext),
        // Enough to recognise a key in a list, far too little to guess it.
        hint: format!("{}{}", environment.key_prefix(), &random[..4]),
        created_at: crate::clock::now(),
    };
    GeneratedKey { plaintext, record }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No key was sent.
    Missing,
    /// The key is malformed or unknown.
    Invalid,
    /// The key was revoked.
    Revoked,
}

/// The key a request presents, from the raw values of its `X-API-Key` and `Authorization`
/// headers (`None` when a header is absent). Either header may carry the key; sending both
/// with different keys is refused, so that no proxy or library can choose for us.
///
/// | `X-API-Key` | `Authorization` | presented |
/// |---|---|---|
/// | absent | absent | none (the caller answers `MISSING_API_KEY`) |
/// | `k` | absent | `k` |
/// | absent | `Bearer k` (the scheme in any case) | `k` |
/// | `k` | `Bearer k` | `k` |
/// | `k` | `Bearer j`, `j` ≠ `k` | `Invalid` |
/// | any | another scheme (`Basic …`) | `Invalid` |
/// | bytes other than visible ASCII, space and tab | any | `Invalid` |
///
/// Surrounding spaces are trimmed; what the key itself must look like is
/// [`authenticate`]'s business.
pub fn presented_key(
    x_api_key: Option<&[u8]>,
    authorization: Option<&[u8]>,
) -> Result<Option<String>, AuthFailure> {
    fn text(value: Option<&[u8]>) -> Result<Option<&str>, AuthFailure> {
        match value {
            None => Ok(None),
            Some(bytes)
                if bytes
                    .iter()
                    .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) =>
            {
                // Visible ASCII, space and tab, so always UTF-8.
                std::str::from_utf8(bytes)
                    .map(|t| Some(t.trim()))
                    .map_err(|_| AuthFailure::Invalid)
            }
            Some(_) => Err(AuthFailure::Invalid),
        }
    }
    let api_key = text(x_api_key)?;
    let bearer = match text(authorization)? {
        None => None,
        Some(value) => {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthFailure::Invalid);
            }
            Some(token.trim())
        }
    };
    match (api_key, bearer) {
        (Some(a), Some(b)) if a != b => Err(AuthFailure::Invalid),
        (Some(a), _) => Ok(Some(a.to_owned())),
        (None, b) => Ok(b.map(str::to_owned)),
    }
}

/// Finds the owner of a presented key with `find` (given the key's hash; usually
/// [`Storage::find_api_key`](crate::ports::Storage::find_api_key) or a cache in front of it).
/// Malformed keys are refused without a lookup. The key's prefix must agree with the
/// environment it was issued for.
pub async fn authenticate<F, Fut>(
    presented: Option<&str>,
    find: F,
) -> Result<Result<KeyOwner, AuthFailure>, CoreError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Option<KeyOwner>, StoreError>>,
{
    let Some(key) = presented.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(Err(AuthFailure::Missing));
    };
    let Some(environment) = Environment::of_key(key) else {
        return Ok(Err(AuthFailure::Invalid));
    };
    if key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Ok(Err(AuthFailure::Invalid));
    }
    match find(hash_api_key(key)).await? {
        None => Ok(Err(AuthFailure::Invalid)),
        Some(owner) if owner.environment != environment => Ok(Err(AuthFailure::Invalid)),
        Some(owner) if !usable(&owner, crate::clock::now()) => Ok(Err(AuthFailure::Revoked)),
        Some(owner) => Ok(Ok(owner)),
    }
}

/// Whether a found key still works at `now`: not revoked, and a replaced key's grace period
/// not over (either is refused as revoked).
pub fn usable(owner: &KeyOwner, now: chrono::DateTime<chrono::Utc>) -> bool {
    !owner.revoked && owner.expires_at.is_none_or(|t| t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(environment: Environment, revoked: bool) -> KeyOwner {
        KeyOwner {
            key_id: "key_1".into(),
            partner_id: "ptn_1".into(),
            environment,
            revoked,
            expires_at: None,
            limits: crate::limits::LimitOverrides::default(),
        }
    }

    #[test]
    fn the_key_presented_comes_from_either_header_and_never_from_two_that_disagree() {
        let key = Some(&b"sk_live_abc"[..]);
        let bearer = Some(&b"Bearer sk_live_abc"[..]);
        assert_eq!(presented_key(None, None), Ok(None));
        assert_eq!(presented_key(key, None), Ok(Some("sk_live_abc".into())));
        assert_eq!(presented_key(None, bearer), Ok(Some("sk_live_abc".into())));
        assert_eq!(
            presented_key(None, Some(b"bearer   sk_live_abc ")),
            Ok(Some("sk_live_abc".into()))
        );
        assert_eq!(presented_key(key, bearer), Ok(Some("sk_live_abc".into())));
        assert_eq!(
            presented_key(Some(b"sk_live_xyz"), bearer),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            presented_key(None, Some(b"Basic dTpw")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            presented_key(Some("sk_live_\u{e9}".as_bytes()), None),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            presented_key(Some(b"sk_live_\x7f"), None),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            presented_key(None, Some(b"Bearer")),
            Ok(Some(String::new()))
        );
    }

    #[test]
    fn keys_carry_their_environment_and_only_the_hash_is_kept() {
        let key = generate_api_key("ptn_1", Environment::Production);
        assert!(key.plaintext.starts_with("sk_live_"));
        assert_eq!(key.plaintext.len(), "sk_live_".len() + RANDOM_LEN);
        assert_eq!(key.record.hash, hash_api_key(&key.plaintext));
        assert_eq!(key.record.hash.len(), 64);
        assert!(!key.record.hint.contains(&key.plaintext[12..]));
        let sandbox = generate_api_key("ptn_1", Environment::Sandbox);
        assert!(sandbox.plaintext.starts_with("sk_sandbox_"));
        assert_ne!(sandbox.plaintext, key.plaintext);
    }

    #[tokio::test]
    async fn authentication_outcomes() {
        let key = generate_api_key("ptn_1", Environment::Sandbox);
        let find = |h: String| {
            let found = (h == key.record.hash).then(|| owner(Environment::Sandbox, false));
            async move { Ok(found) }
        };
        let found = authenticate(Some(&key.plaintext), find).await.unwrap();
        assert_eq!(found.unwrap().partner_id, "ptn_1");
        for (presented, expected) in [
            (None, AuthFailure::Missing),
            (Some("   "), AuthFailure::Missing),
            (Some("pk_something"), AuthFailure::Invalid),
            (Some("sk_live_unknownkey"), AuthFailure::Invalid),
            (Some("sk_live_bad chars"), AuthFailure::Invalid),
        ] {
            assert_eq!(
                authenticate(presented, find).await.unwrap().unwrap_err(),
                expected,
                "{presented:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_replaced_key_works_until_its_grace_period_ends() {
        let key = generate_api_key("ptn_1", Environment::Sandbox);
        for (hours, works) in [(1, true), (-1, false)] {
            let expires_at = Some(crate::clock::now() + chrono::Duration::hours(hours));
            let find = |_: String| async move {
                Ok(Some(KeyOwner {
                    expires_at,
                    ..owner(Environment::Sandbox, false)
                }))
            };
            let result = authenticate(Some(&key.plaintext), find).await.unwrap();
            match works {
                true => assert!(result.is_ok()),
                false => assert_eq!(result.unwrap_err(), AuthFailure::Revoked),
            }
        }
    }

    #[tokio::test]
    async fn revoked_and_wrong_environment_keys_are_refused() {
        let stored =
            |revoked| move |_| async move { Ok(Some(owner(Environment::Sandbox, revoked))) };
        let key = generate_api_key("ptn_1", Environment::Sandbox).plaintext;
        assert_eq!(
            authenticate(Some(&key), stored(true))
                .await
                .unwrap()
                .unwrap_err(),
            AuthFailure::Revoked
        );
        // A stored sandbox key presented with a live prefix cannot exist, but if the hash
        // matched anyway the environments must agree.
        let live = generate_api_key("ptn_1", Environment::Production).plaintext;
        assert_eq!(
            authenticate(Some(&live), stored(false))
                .await
                .unwrap()
                .unwrap_err(),
            AuthFailure::Invalid
        );
    }
}
