//! Buying a top-up for an eSIM, through the paid path ([`paid::run`]): charged like a
//! provisioning (live balance above its minimum, sandbox never depleted), counted by the
//! provisioning quota, and idempotent by `Idempotency-Key`. Where it goes is decided by the
//! store on the eSIM it locks, by [`packages::place_topup`](crate::packages::place_topup).

use serde::Serialize;

use crate::billing::charge_for;
use crate::catalog::Catalog;
use crate::clock::now;
use crate::idempotency::{request_hash, IdempotencyKey, Operation, ResourceKind};
use crate::packages::{find_offer, TopUpRecord};
use crate::paid::{self, Paid, PaidRequest, QuotaDraw, Written};
use crate::ports::{Storage, StoreError, TopUpResult, TopUpWrite, ToppedUp};
use crate::{Amount, CoreError, Scope};

/// Who buys what, and how it is charged.
#[derive(Debug)]
pub struct TopUpCommand<'a> {
    /// Who buys.
    pub scope: &'a Scope,
    /// For which eSIM.
    pub esim_id: &'a str,
    /// What (`topup_id`).
    pub topup_id: &'a str,
    /// The request, for the logs and the purchase.
    pub request_id: &'a str,
    /// The live minimum balance.
    pub minimum_balance: Amount,
}

/// Buys `command.topup_id` for the scope's eSIM `command.esim_id`.
pub async fn top_up(
    store: &dyn Storage,
    catalog: &Catalog,
    command: TopUpCommand<'_>,
    key: Option<&IdempotencyKey>,
    quota: Option<QuotaDraw<'_>>,
) -> Result<Paid<ToppedUp>, CoreError> {
    let TopUpCommand {
        scope,
        esim_id,
        topup_id,
        request_id,
        minimum_balance,
    } = command;
    let not_found = || CoreError::EsimNotFound(esim_id.chars().take(64).collect());
    let esim = store
        .get_esim(scope, esim_id)
        .await?
        .ok_or_else(not_found)?;
    let offer = find_offer(catalog, &esim.plan_id, topup_id)?;
    /// What a key's request is: the eSIM and the top-up.
    #[derive(Serialize)]
    struct Request<'a> {
        esim_id: &'a str,
        topup_id: &'a str,
    }
    let now = now();
    let request = PaidRequest {
        scope,
        operation: Operation::TopUp,
        key,
        request_hash: request_hash(&Request { esim_id, topup_id }),
        quota,
        now,
        hold: None,
    };
    let charge = charge_for(scope.environment, minimum_balance);
    paid::run(
        store,
        request,
        |idempotency| {
            let write = TopUpWrite {
                scope: scope.clone(),
                purchase: TopUpRecord::new(
                    scope,
                    &esim.id,
                    &offer,
                    &catalog.currency,
                    request_id,
                    now,
                ),
                offer: offer.clone(),
                charge,
                idempotency,
            };
            async move {
                match store.top_up(&write).await? {
                    TopUpResult::Done(done) => Ok(Written::Done(*done)),
                    TopUpResult::NotFound => Err(not_found()),
                    TopUpResult::NotAllowed(why) => Err(CoreError::TopUpNotAllowed(why)),
                    TopUpResult::InsufficientBalance { balance_cents } => {
                        Err(CoreError::InsufficientBalance {
                            balance: Amount::from_cents(balance_cents),
                            required: Amount::from_cents(write.purchase.amount_cents),
                            minimum: minimum_balance,
                        })
                    }
                    TopUpResult::KeyTaken => Ok(Written::KeyTaken),
                    TopUpResult::ClaimLost => Ok(Written::ClaimLost),
                }
            }
        },
        |resource| async move {
            if resource.kind != ResourceKind::TopUp {
                return Err(StoreError::Other(format!(
                    "a top-up's key names a {}",
                    resource.kind.as_str()
                ))
                .into());
            }
            store.get_topup(scope, &resource.id).await?.ok_or_else(|| {
                StoreError::Other(format!("idempotent replay: {} is missing", resource.id)).into()
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockStorage;
    use oytel_types::Environment;

    fn scope() -> Scope {
        Scope {
            partner_id: "ptn_1".into(),
            environment: Environment::Sandbox,
        }
    }

    fn command<'a>(scope: &'a Scope, topup_id: &'a str) -> TopUpCommand<'a> {
        TopUpCommand {
            scope,
            esim_id: "esim_1",
            topup_id,
            request_id: "req_1",
            minimum_balance: crate::billing::DEFAULT_MINIMUM_BALANCE,
        }
    }

    #[tokio::test]
    async fn an_unknown_esim_is_not_found_and_nothing_is_written() {
        let mut store = MockStorage::new();
        store.expect_get_esim().returning(|_, _| Ok(None));
        store.expect_top_up().never();
        let scope = scope();
        let err = top_up(
            &store,
            &Catalog::default_catalog(),
            command(&scope, "eu-boost-5"),
            None,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CoreError::EsimNotFound(_)), "{err}");
    }

    #[tokio::test]
    async fn a_refusal_of_the_store_is_a_clear_error() {
        let mut store = MockStorage::new();
        let esim = crate::test_support::sample_esim("eu-roam-20");
        store
            .expect_get_esim()
            .returning(move |_, _| Ok(Some(esim.clone())));
        store
            .expect_top_up()
            .returning(|_| Ok(TopUpResult::NotAllowed("eSIM `esim_1` is cancelled".into())));
        let scope = scope();
        let err = top_up(
            &store,
            &Catalog::default_catalog(),
            command(&scope, "renewal-1m"),
            None,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CoreError::TopUpNotAllowed(_)), "{err}");
    }
}
