//! Charging rules. A sandbox key sees a balance of $100 that is never depleted; a live key
//! pays from the partner's balance, which must stay at or above a minimum after the charge.
//!
//! Every movement of a live balance is a [`LedgerLine`], made here and written by the store
//! in the transaction of the change it pays for (one path for credits and charges, and for
//! refunds when they come): the balance moves by the line's amount and the ledger gets its
//! row, or neither happens.
//!
//! Refunds, when an eSIM is cancelled, package by package ([`package_refund`]); a refunded
//! package gives back every purchase that paid for it (its order or renewal, and its data
//! add-ons), each a ledger line:
//!
//! | the package at cancellation | refund | its state after |
//! |---|---|---|
//! | queued | in full | refunded |
//! | in force, never activated, no usage, within [`REFUND_WINDOW_DAYS`] days of its purchase | in full | refunded |
//! | in force, activated (even if unused since) | none | cancelled |
//! | in force, usage recorded | none | cancelled |
//! | in force, bought more than [`REFUND_WINDOW_DAYS`] days before | none | cancelled |
//! | ended: expired, or used up and followed by a queued package | none | as it was |

use chrono::{DateTime, Utc};

use oytel_types::PackageState;

use crate::packages::{PackageRecord, TopUpRecord};
use crate::ports::{Charge, OrderRecord};
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
    /// The order it pays for or refunds, if any.
    pub order_id: Option<String>,
    /// The top-up purchase it pays for or refunds, if any.
    pub purchase_id: Option<String>,
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
        purchase_id: None,
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
        purchase_id: None,
        description: format!(
            "{} x{} month(s) for {}",
            order.plan_id,
            order.term.months(),
            order.esim_id
        ),
        at: order.created_at,
    }
}

/// The line of a live top-up's charge: its whole price, taken when it is bought.
pub fn topup_charge_line(topup: &TopUpRecord) -> LedgerLine {
    LedgerLine {
        partner_id: topup.partner_id.clone(),
        amount_cents: -topup.amount_cents,
        kind: LedgerKind::Charge,
        order_id: None,
        purchase_id: Some(topup.id.clone()),
        description: format!("top-up {} for {}", topup.topup_id, topup.esim_id),
        at: topup.created_at,
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

/// How long after its purchase an unused package is refunded in full when its eSIM is
/// cancelled.
pub const REFUND_WINDOW_DAYS: i64 = 30;

/// Why a package was refunded or not when its eSIM was cancelled (the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// It was queued: refunded in full.
    Queued,
    /// In force, never activated, no usage, within the window: refunded in full.
    Unused,
    /// It was activated.
    Activated,
    /// Usage was recorded.
    Used,
    /// The window had passed.
    TooLate,
    /// It had ended (expired) before.
    Ended,
}

impl RefundReason {
    /// Every reason.
    const ALL: [RefundReason; 6] = [
        RefundReason::Queued,
        RefundReason::Unused,
        RefundReason::Activated,
        RefundReason::Used,
        RefundReason::TooLate,
        RefundReason::Ended,
    ];

    /// The name stored with the package.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Queued => "queued",
            RefundReason::Unused => "unused",
            RefundReason::Activated => "activated",
            RefundReason::Used => "used",
            RefundReason::TooLate => "too_late",
            RefundReason::Ended => "ended",
        }
    }

    /// The reason named `name`, if this release knows it.
    pub fn parse(name: &str) -> Option<RefundReason> {
        RefundReason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the package is refunded in full.
    pub fn refunds(self) -> bool {
        matches!(self, RefundReason::Queued | RefundReason::Unused)
    }

    /// What the partner reads.
    pub fn explanation(self) -> String {
        match self {
            RefundReason::Queued => "refunded in full: it was queued and never started".into(),
            RefundReason::Unused => format!(
                "refunded in full: never activated, no usage, cancelled within {REFUND_WINDOW_DAYS} days"
            ),
            RefundReason::Activated => "not refunded: the eSIM was activated".into(),
            RefundReason::Used => "not refunded: the package has usage".into(),
            RefundReason::TooLate => format!(
                "not refunded: cancelled more than {REFUND_WINDOW_DAYS} days after the purchase"
            ),
            RefundReason::Ended => "not refunded: the package had ended".into(),
        }
    }
}

/// Why `package` is refunded or not when its eSIM is cancelled at `now`, and its state after
/// (the module's table). A refunded package gives back its whole `price_cents`.
pub fn package_refund(package: &PackageRecord, now: DateTime<Utc>) -> (RefundReason, PackageState) {
    let reason = match package.state {
        PackageState::Queued => RefundReason::Queued,
        _ if !crate::packages::in_force(package) => return (RefundReason::Ended, package.state),
        _ => {
            if package.activated_at.is_some() {
                RefundReason::Activated
            } else if package.data_used_mb > 0 {
                RefundReason::Used
            } else if now - package.created_at > chrono::Duration::days(REFUND_WINDOW_DAYS) {
                RefundReason::TooLate
            } else {
                RefundReason::Unused
            }
        }
    };
    let state = if reason.refunds() {
        PackageState::Refunded
    } else {
        PackageState::Cancelled
    };
    (reason, state)
}

/// What a refund line gives back: an order or a top-up purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refunded<'a> {
    /// The eSIM's order.
    Order(&'a OrderRecord),
    /// A top-up purchase.
    TopUp(&'a TopUpRecord),
}

/// The line of a refund of a purchase, in full.
pub fn refund_line(refunded: Refunded<'_>, at: DateTime<Utc>) -> LedgerLine {
    let (partner_id, amount_cents, order_id, purchase_id, what, esim_id) = match refunded {
        Refunded::Order(o) => (
            &o.partner_id,
            o.amount_cents,
            Some(&o.id),
            None,
            &o.id,
            &o.esim_id,
        ),
        Refunded::TopUp(t) => (
            &t.partner_id,
            t.amount_cents,
            None,
            Some(&t.id),
            &t.id,
            &t.esim_id,
        ),
    };
    LedgerLine {
        partner_id: partner_id.clone(),
        amount_cents,
        kind: LedgerKind::Refund,
        order_id: order_id.cloned(),
        purchase_id: purchase_id.cloned(),
        description: format!("refund of {what} for {esim_id}"),
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
        let day = Duration::days(1);
        let (order, esim) = crate::test_support::provisioned("uk-lite-10", now);
        let first = crate::packages::first_package(&order, &esim);
        let package = |state, activated: bool, used: u64| PackageRecord {
            state,
            activated_at: activated.then_some(now),
            data_used_mb: used,
            ..first.clone()
        };
        use PackageState::*;
        use RefundReason as R;
        for (state, activated, used, at, reason, after) in [
            (Queued, false, 0, now + day * 400, R::Queued, Refunded),
            (Active, false, 0, now, R::Unused, Refunded),
            (Active, false, 0, now + day * 30, R::Unused, Refunded),
            (Active, false, 0, now + day * 31, R::TooLate, Cancelled),
            (Active, true, 0, now, R::Activated, Cancelled),
            (Depleted, true, 10_000, now, R::Activated, Cancelled),
            (Active, false, 5, now, R::Used, Cancelled),
            (Expired, true, 0, now, R::Ended, Expired),
        ] {
            let got = package_refund(&package(state, activated, used), at);
            assert_eq!(
                got,
                (reason, after),
                "{state:?} activated={activated} used={used}"
            );
            assert_eq!(RefundReason::parse(reason.as_str()), Some(reason));
        }
    }
}
