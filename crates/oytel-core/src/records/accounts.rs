//! Partners, their API keys, and the ledger of their live balance.

use chrono::{DateTime, Utc};

use crate::billing::LedgerKind;
use crate::{CoreError, Environment};

/// A partner: a wholesale customer with keys in both environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// `ptn_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// Contact email.
    pub email: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl Partner {
    /// A new partner with a fresh id: `name` is trimmed and must be 1 to 200 characters without
    /// control characters; `email`, when given, must be a valid address.
    ///
    /// # Errors
    /// [`CoreError::Validation`] naming the field that is wrong.
    pub fn new(name: &str, email: Option<&str>) -> Result<Self, CoreError> {
        let name = crate::validation::validate_text("name", name, 200)?;
        let email = email
            .map(|e| {
                crate::validation::validate_email("email", e)
                    .map_err(|m| CoreError::field("email", m))
            })
            .transpose()?;
        Ok(Self {
            id: crate::numbers::new_id("ptn"),
            name,
            email,
            created_at: crate::clock::now(),
        })
    }
}

/// A key to store. Only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// `key_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The key's prefix and first four random characters, for recognising it in lists.
    pub hint: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A stored key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// `key_…`
    pub id: String,
    /// Owner.
    pub partner_id: String,
    /// Environment.
    pub environment: Environment,
    /// Recognisable prefix.
    pub hint: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working, if it was replaced with a grace period.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Whose a presented key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The key's id.
    pub key_id: String,
    /// Its partner.
    pub partner_id: String,
    /// Its environment.
    pub environment: Environment,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it stops working, if it was replaced with a grace period.
    pub expires_at: Option<DateTime<Utc>>,
    /// The partner's own limits, where they differ from the server's defaults.
    pub limits: crate::limits::LimitOverrides,
}

/// A ledger row: every credit and every debit of a live balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// `led_…`
    pub id: String,
    /// Partner.
    pub partner_id: String,
    /// Signed amount, cents: credits positive, charges negative.
    pub amount_cents: i64,
    /// The balance after this entry, cents.
    pub balance_after_cents: i64,
    /// What it is.
    pub kind: LedgerKind,
    /// The order charged or refunded.
    pub order_id: Option<String>,
    /// The top-up purchase charged or refunded.
    pub purchase_id: Option<String>,
    /// The eSIM that order or purchase paid for.
    pub esim_id: Option<String>,
    /// Free text.
    pub description: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What an operator sees of a partner's business at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerSummary {
    /// eSIMs by environment and state (only the pairs that have any).
    pub esims: Vec<(Environment, crate::EsimStatus, u64)>,
    /// When the partner last placed an order, in either environment.
    pub last_order_at: Option<DateTime<Utc>>,
}

/// Which ledger rows a statement shows: those written at or after `from` and before `to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_partner_has_a_trimmed_name_and_a_checked_email() {
        let partner = Partner::new("  Acme Travel ", Some("ops@acme.example")).unwrap();
        assert!(partner.id.starts_with("ptn_"), "{}", partner.id);
        assert_eq!(partner.name, "Acme Travel");
        assert_eq!(partner.email.as_deref(), Some("ops@acme.example"));
        assert_ne!(Partner::new("Acme", None).unwrap().id, partner.id);

        let long = "x".repeat(201);
        for (name, email, field) in [
            ("", None, "name"),
            ("   ", None, "name"),
            (long.as_str(), None, "name"),
            ("Ac\u{0}me", None, "name"),
            ("Acme", Some("nope"), "email"),
            ("Acme", Some("a b@c.com"), "email"),
        ] {
            match Partner::new(name, email) {
                Err(CoreError::Validation(e)) => assert_eq!(e.field, field, "{name:?} {email:?}"),
                other => panic!("{name:?} {email:?} gave {other:?}"),
            }
        }
        assert!(Partner::new(&"x".repeat(200), None).is_ok());
        let bad = Partner::new("Acme", Some("nope")).unwrap_err();
        assert_eq!(bad.to_string(), "email is not a valid email address");
    }
}
