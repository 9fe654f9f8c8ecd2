//! Charging rules. A sandbox key sees a balance of $100 that is never depleted; a live key
//! pays from the partner's balance, which must stay at or above a minimum after the charge.
//!
//! Every movement of a live balance is a [`LedgerLine`], made here and written by the store
//! in the transaction of the change it pays for (one path for credits and charges, and for
//! refunds when they come): the balance moves by the line's amount and the ledger gets its
//! row, or neither happens.
//!
//! Refunds, when an eSIM is cancelled ([`refund_for`]):
//!
//! | the eSIM at cancellation | refund |
//! |---|---|
//! | never activated, no usage, within [`REFUND_WINDOW_DAYS`] days of the order | its order in full |
//! | activated (even if unused since) | none |
//! | usage recorded | none |
//! | cancelled more than [`REFUND_WINDOW_DAYS`] days after the order | none |

use chrono::{DateTime, Utc};

use crate::ports::{Charge, EsimRecord, OrderRecord};
use crate::{Amount, Environment};

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Money the operator added (a top-up of the partner's account).
    Credit,
    /// An order's price, taken from the balance.
    Charge,
    /// An order's price given back (a cancelled eSIM that was never used).
    Refund,
}

impl LedgerKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Credit => "credit",
            LedgerKind::Charge => "charge",
            LedgerKind::Refund => "refund",
        }
    }

    /// The kind named `name`, if this release knows it.
    pub fn parse(name: &str) -> Option<LedgerKind> {
        [LedgerKind::Credit, LedgerKind::Charge, LedgerKind::Refund]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One movement of a partner's live balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    /// Whose balance.
    pub partner_id: String,
    /// Cents added (a credit) or, negative, taken (a charge).
    pub amount_cents: i64,
    /// What it is.
    pub kind: LedgerKind,
    /// The order it pays for, if any.
    pub order_id: Option<String>,
    /// What the partner reads in the ledger.
    pub description: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The line of an operator's credit.
pub fn credit_line(
    partner_id: &str,
    amount_cents: i64,
    description: &str,
    at: DateTime<Utc>,
) -> LedgerLine {
    LedgerLine {
        partner_id: partner_id.to_owned(),
        amount_cents,
        kind: LedgerKind::Credit,
        order_id: None,
        description: description.to_owned(),
        at,
    }
}

/// The line of a live order's charge: its whole price, taken when it is placed.
pub fn charge_line(order: &OrderRecord) -> LedgerLine {
    LedgerLine {
        partner_id: order.partner_id.clone(),
        amount_cents: -order.amount_cents,
        kind: LedgerKind::Charge,
        order_id: Some(order.id.clone()),
        description: format!(
            "{} x{} month(s) for {}",
            order.plan_id,
            order.term.months(),
            order.esim_id
        ),
        at: order.created_at,
    }
}

/// The balance a sandbox key always shows.
pub const SANDBOX_BALANCE: Amount = Amount::from_cents(10_000);

/// The default minimum live balance: $25.
pub const DEFAULT_MINIMUM_BALANCE: Amount = Amount::from_cents(2_500);

/// How an order in `environment` is paid for.
pub fn charge_for(environment: Environment, minimum_balance: Amount) -> Charge {
    match environment {
        Environment::Sandbox => Charge::Sandbox {
            balance_cents: SANDBOX_BALANCE.cents(),
        },
        Environment::Production => Charge::Live {
            minimum_balance_cents: minimum_balance.cents(),
        },
    }
}

/// How long after its order an unused eSIM is refunded in full when cancelled.
pub const REFUND_WINDOW_DAYS: i64 = 30;

/// Why a cancelled eSIM's order was refunded or not (the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// Never activated, no usage, within the window: refunded in full.
    Unused,
    /// It was activated.
    Activated,
    /// Usage was recorded.
    Used,
    /// The window had passed.
    TooLate,
}

impl RefundReason {
    /// What the partner reads.
    pub fn explanation(self) -> String {
        match self {
            RefundReason::Unused => format!(
                "refunded in full: never activated, no usage, cancelled within {REFUND_WINDOW_DAYS} days"
            ),
            RefundReason::Activated => "not refunded: the eSIM was activated".into(),
            RefundReason::Used => "not refunded: the eSIM has usage".into(),
            RefundReason::TooLate => format!(
                "not refunded: cancelled more than {REFUND_WINDOW_DAYS} days after the order"
            ),
        }
    }
}

/// What cancelling an eSIM gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refund {
    /// Cents given back (0 when not refunded).
    pub amount_cents: i64,
    /// Why.
    pub reason: RefundReason,
}

/// The refund of `order` when its eSIM, as `esim` is now, is cancelled at `now`.
pub fn refund_for(order: &OrderRecord, esim: &EsimRecord, now: DateTime<Utc>) -> Refund {
    let reason = if esim.activated_at.is_some() {
        RefundReason::Activated
    } else if esim.data_used_mb > 0 || esim.calls_made > 0 || esim.sms_sent > 0 {
        RefundReason::Used
    } else if now - order.created_at > chrono::Duration::days(REFUND_WINDOW_DAYS) {
        RefundReason::TooLate
    } else {
        RefundReason::Unused
    };
    let amount_cents = match reason {
        RefundReason::Unused => order.amount_cents,
        _ => 0,
    };
    Refund {
        amount_cents,
        reason,
    }
}

/// The line of a refund of `order`.
pub fn refund_line(order: &OrderRecord, amount_cents: i64, at: DateTime<Utc>) -> LedgerLine {
    LedgerLine {
        partner_id: order.partner_id.clone(),
        amount_cents,
        kind: LedgerKind::Refund,
        order_id: Some(order.id.clone()),
        description: format!("refund of {} for {}", order.id, order.esim_id),
        at,
    }
}

/// Whether a balance that went from `before` to `after` fell below the partner's
/// low-balance `threshold`: it was at or above it and is now below. Each fall is announced
/// once; a credit back above it arms the next.
pub fn fell_below(before: i64, after: i64, threshold: Option<i64>) -> bool {
    threshold.is_some_and(|t| before >= t && after < t)
}

/// Whether a balance can pay `cost` and keep `minimum` (the rule the storage applies inside
/// its transaction).
pub fn can_pay(balance: Amount, cost: Amount, minimum: Amount) -> bool {
    balance.cents() - cost.cents() >= minimum.cents()
}

/// The minimum balance a key of `environment` sees.
pub fn minimum_for(environment: Environment, minimum_balance: Amount) -> Amount {
    match environment {
        Environment::Sandbox => Amount::ZERO,
        Environment::Production => minimum_balance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_must_remain_after_the_charge() {
        let min = DEFAULT_MINIMUM_BALANCE;
        assert!(can_pay(
            Amount::from_cents(5495),
            Amount::from_cents(2995),
            min
        ));
        assert!(!can_pay(
            Amount::from_cents(5494),
            Amount::from_cents(2995),
            min
        ));
        assert_eq!(
            charge_for(Environment::Sandbox, min),
            Charge::Sandbox {
                balance_cents: 10_000
            }
        );
        assert_eq!(
            charge_for(Environment::Production, min),
            Charge::Live {
                minimum_balance_cents: 2_500
            }
        );
    }

    #[test]
    fn a_fall_below_the_threshold_is_announced_once_per_fall() {
        assert!(fell_below(5_000, 4_000, Some(4_500)));
        assert!(
            fell_below(4_500, 4_499, Some(4_500)),
            "at the threshold is not below"
        );
        assert!(!fell_below(4_000, 3_000, Some(4_500)), "already below");
        assert!(!fell_below(6_000, 5_000, Some(4_500)));
        assert!(!fell_below(6_000, 0, None));
    }

    #[test]
    fn refunds_follow_their_table() {
        use chrono::{Duration, Utc};
        let now = Utc::now();
        let request = oytel_types::ProvisionRequest {
            plan_id: "uk-lite-10".into(),
            term_months: 1,
            customer_email: "a@example.com".into(),
            customer_name: "A".into(),
            reference_id: None,
            webhook_url: None,
        };
        let catalog = crate::catalog::Catalog::default_catalog();
        let command = crate::provision::validate(&request, &catalog).unwrap();
        let settings = crate::provision::ProvisionSettings {
            smdp_address: "smdp.test".into(),
            minimum_balance: DEFAULT_MINIMUM_BALANCE,
        };
        let scope = crate::Scope {
            partner_id: "ptn_1".into(),
            environment: Environment::Production,
        };
        let (order, esim) =
            crate::provision::new_rows(&command, &scope, &settings, "USD", "r", now);
        let price = order.amount_cents;
        let day = Duration::days(1);
        let activated = EsimRecord {
            activated_at: Some(now),
            ..esim.clone()
        };
        let texted = EsimRecord {
            sms_sent: 1,
            ..esim.clone()
        };
        for (esim, at, amount, reason) in [
            (&esim, now, price, RefundReason::Unused),
            (&esim, now + day * 30, price, RefundReason::Unused),
            (&esim, now + day * 31, 0, RefundReason::TooLate),
            (&activated, now, 0, RefundReason::Activated),
            (&texted, now, 0, RefundReason::Used),
        ] {
            assert_eq!(
                refund_for(&order, esim, at),
                Refund {
                    amount_cents: amount,
                    reason
                },
                "{reason:?} at {at}"
            );
        }
        let line = refund_line(&order, price, now);
        assert_eq!((line.amount_cents, line.kind), (price, LedgerKind::Refund));
    }
}
