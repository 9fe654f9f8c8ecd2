//! Charging rules. A sandbox key sees a balance of $100 that is never depleted; a live key
//! pays from the partner's balance, which must stay at or above a minimum after the charge.

use crate::ports::Charge;
use crate::{Amount, Environment};

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
