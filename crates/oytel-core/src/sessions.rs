//! Web console sessions: who is signed in to `/dashboard`, for how long, and the token that
//! proves a form was sent from our own page.
//!
//! A session is opened by pasting an API key (a partner, seeing exactly what that key sees)
//! or the operator token. The browser holds a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie; the database holds only its hash. A partner's session keeps the
//! hash of the key it was opened with and is checked against it on every request, so
//! revoking (or expiring) the key ends the session at once.
//!
//! | rule | value | so that |
//! |---|---|---|
//! | idle expiry | [`IDLE`] since the last request | a console left open on a shared machine closes itself |
//! | absolute expiry | [`ABSOLUTE`] after sign-in | a stolen cookie is worth a working day at most |
//! | token | 32 random bytes, base64url; only its SHA-256 is stored | a database dump opens no session |
//! | CSRF token | SHA-256 of the session token with a label, in every form, compared in constant time | a form posted from another site is refused even if the browser sent the cookie |
//! | key check | every request, through the same lookup as API keys | a revoked key's session is gone from the next request |

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a session may sit unused.
pub const IDLE: Duration = Duration::minutes(30);

/// How long a session lasts at most.
pub const ABSOLUTE: Duration = Duration::hours(12);

/// A session's last-seen time is written at most this often (a page view is not a write).
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Who a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A partner, through one of its API keys.
    Partner,
    /// The operator, through the operator token.
    Operator,
}

impl SessionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Partner => "partner",
            SessionKind::Operator => "operator",
        }
    }

    /// The kind of a stored name.
    pub fn parse(text: &str) -> Option<SessionKind> {
        match text {
            "partner" => Some(SessionKind::Partner),
            "operator" => Some(SessionKind::Operator),
            _ => None,
        }
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Who it is for.
    pub kind: SessionKind,
    /// A partner session's API key, as hashed for key lookups ([`crate::keys::hash_api_key`]).
    pub key_hash: Option<String>,
    /// Sign-in.
    pub created_at: DateTime<Utc>,
    /// The last request (to [`TOUCH_EVERY`]).
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end.
    pub expires_at: DateTime<Utc>,
}

/// A new session of `kind` at `now`, and the token for its cookie (shown only now).
pub fn open(
    kind: SessionKind,
    key_hash: Option<String>,
    now: DateTime<Utc>,
) -> (String, SessionRecord) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    let record = SessionRecord {
        token_hash: token_hash(&token),
        kind,
        key_hash,
        created_at: now,
        last_seen_at: now,
        expires_at: now + ABSOLUTE,
    };
    (token, record)
}

/// The stored hash of a session token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The CSRF token of the session whose token is `token`.
pub fn csrf_token(token: &str) -> String {
    hex(&Sha256::digest(format!("oytel-csrf:{token}").as_bytes()))
}

/// Whether `presented` is the CSRF token of the session `token` (constant time).
pub fn csrf_matches(token: &str, presented: &str) -> bool {
    let expected = csrf_token(token);
    let (a, b) = (expected.as_bytes(), presented.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `session` may still be used at `now`.
pub fn is_live(session: &SessionRecord, now: DateTime<Utc>) -> bool {
    now < session.expires_at && now - session.last_seen_at < IDLE
}

/// Whether a request at `now` should write the session's last-seen time.
pub fn needs_touch(session: &SessionRecord, now: DateTime<Utc>) -> bool {
    now - session.last_seen_at >= TOUCH_EVERY
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_only_the_hash_of_its_token() {
        let now = Utc::now();
        let (token, record) = open(SessionKind::Partner, Some("kh".into()), now);
        assert!(token.len() >= 43);
        assert_eq!(record.token_hash, token_hash(&token));
        assert!(!record.token_hash.contains(&token));
        let (other, _) = open(SessionKind::Partner, None, now);
        assert_ne!(token, other);
    }

    #[test]
    fn a_session_ends_when_idle_or_at_its_absolute_end() {
        let now = Utc::now();
        let (_, mut session) = open(SessionKind::Operator, None, now);
        assert!(is_live(&session, now + Duration::minutes(29)));
        assert!(!is_live(&session, now + IDLE));
        for hour in 1..12 {
            session.last_seen_at = now + Duration::hours(hour);
            assert!(is_live(
                &session,
                session.last_seen_at + Duration::minutes(1)
            ));
        }
        session.last_seen_at = now + Duration::hours(12) - Duration::minutes(1);
        assert!(
            !is_live(&session, now + ABSOLUTE),
            "the absolute end holds however active"
        );
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let (token, _) = open(SessionKind::Partner, None, Utc::now());
        let (other, _) = open(SessionKind::Partner, None, Utc::now());
        assert!(csrf_matches(&token, &csrf_token(&token)));
        assert!(!csrf_matches(&token, &csrf_token(&other)));
        assert!(!csrf_matches(&token, ""));
        assert!(!csrf_matches(&token, &token));
    }

    #[test]
    fn the_last_seen_time_is_written_at_most_once_a_minute() {
        let now = Utc::now();
        let (_, session) = open(SessionKind::Partner, None, now);
        assert!(!needs_touch(&session, now + Duration::seconds(59)));
        assert!(needs_touch(&session, now + TOUCH_EVERY));
    }
}
