//! Credits, charges and the ledger that adds up to the balance.

use std::sync::Arc;

use oytel_core::clock::now;
use oytel_core::ports::*;

use crate::support::*;

conformance!(credits_and_the_ledger,);

async fn credits_and_the_ledger(store: Arc<dyn Storage>) {
    let a = partner(store.as_ref()).await;
    assert_eq!(store.live_balance(&a).await.unwrap(), 0);
    assert_eq!(
        store.credit(&a, 20_000, "top-up", now()).await.unwrap(),
        20_000
    );
    assert_eq!(store.credit(&a, 55, "adjust", now()).await.unwrap(), 20_055);
    let ledger = store.ledger(&a).await.unwrap();
    assert_eq!(
        ledger
            .iter()
            .map(|e| (e.kind.as_str(), e.amount_cents, e.balance_after_cents))
            .collect::<Vec<_>>(),
        vec![("credit", 20_000, 20_000), ("credit", 55, 20_055)]
    );
    assert_eq!(ledger[1].description, "adjust");
    assert!(matches!(
        store.credit("ptn_none", 1, "x", now()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.live_balance("ptn_none").await,
        Err(StoreError::NotFound(_))
    ));
}
