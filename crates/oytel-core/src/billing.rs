//! Charging rules. A sandbox key sees a balance of $100 that is never depleted; a live key
//! pays from the partner's balance, which must stay at or above a minimum after the charge.
//!
//! Every movement of a live balance is a [`LedgerLine`], made here and written by the store
//! in the transaction of the change it pays for (one path for credits and charges, and for
//! refunds when they come): the balance moves by the line's amount and the ledger gets its
//! row, or neither happens.

use chrono::{DateTime, Utc};

use crate::ports::{Charge, OrderRecord};
use crate::{Amount, Environment};

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// Money the operator added (a top-up of the partner's account).
    Credit,
    /// An order's price, taken from the balance.
    Charge,
}

impl LedgerKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Credit => "credit",
            LedgerKind::Charge => "charge",
        }
    }

    /// The kind named `name`, if this release knows it.
    pub fn parse(name: &str) -> Option<LedgerKind> {
        [LedgerKind::Credit, LedgerKind::Charge]
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
}
