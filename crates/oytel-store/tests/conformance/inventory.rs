//! The builtin profile stock: a batch is stored whole or not at all, and concurrent
//! provisionings never get the same ICCID; an empty stock writes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use oytel_core::clock::now;
use oytel_core::inventory::{Imported, NewBatch};
use oytel_core::ports::*;
use oytel_core::Environment;

use crate::support::*;

conformance!(
    a_batch_is_stored_whole_or_not_at_all,
    concurrent_orders_never_share_an_iccid_and_an_empty_stock_writes_nothing,
);

fn batch(iccids: &[&str]) -> NewBatch {
    NewBatch {
        id: oytel_core::numbers::new_id("bat"),
        profile_type: "uk-5g".into(),
        environment: Environment::Production,
        iccids: iccids.iter().map(|s| (*s).to_owned()).collect(),
        imported_at: now(),
    }
}

async fn a_batch_is_stored_whole_or_not_at_all(store: Arc<dyn Storage>) {
    let scope = scope(&partner(store.as_ref()).await, Environment::Sandbox);
    let on_an_esim = provisioned(store.as_ref(), &scope).await.iccid;
    let first = batch(&["8944100000000000000", "8944100000000000018"]);
    assert_eq!(
        store.import_batch(&first).await.unwrap(),
        Imported::Stored(2)
    );
    let overlapping = batch(&["8944100000000000026", "8944100000000000018", &on_an_esim]);
    let Imported::Duplicates(named) = store.import_batch(&overlapping).await.unwrap() else {
        panic!("an overlapping batch was stored");
    };
    let mut expected = vec!["8944100000000000018".to_owned(), on_an_esim];
    expected.sort();
    assert_eq!(named, expected);
    let stock = store.stock().await.unwrap();
    assert_eq!(stock.len(), 1);
    assert_eq!(
        (stock[0].available, stock[0].allocated),
        (2, 0),
        "nothing of it stored"
    );
}

async fn concurrent_orders_never_share_an_iccid_and_an_empty_stock_writes_nothing(
    store: Arc<dyn Storage>,
) {
    let scope = scope(&partner(store.as_ref()).await, Environment::Production);
    let iccids = oytel_core::inventory::generate_batch(5, now());
    let mut stored = batch(&[]);
    stored.iccids = iccids.clone();
    store.import_batch(&stored).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let mut w = write(&scope, 100, SANDBOX, None);
            w.esim.environment = Environment::Production;
            w.order.environment = Environment::Production;
            w.from_stock = Some("uk-5g".into());
            tokio::spawn(async move { (store.provision(&w).await.unwrap(), w) })
        })
        .collect();
    let (mut allocated, mut refused) = (HashSet::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            (ProvisionResult::CommittedFromStock { iccid, .. }, w) => {
                let esim = store.get_esim(&scope, &w.esim.id).await.unwrap().unwrap();
                assert_eq!(esim.iccid, iccid, "the eSIM carries the ICCID allocated");
                assert!(allocated.insert(iccid), "an ICCID handed out twice");
            }
            (ProvisionResult::OutOfStock, w) => {
                refused += 1;
                assert!(store
                    .get_order(&scope, &w.order.id)
                    .await
                    .unwrap()
                    .is_none());
            }
            (other, _) => panic!("{other:?}"),
        }
    }
    assert_eq!((allocated.len(), refused), (5, 7));
    assert_eq!(allocated, iccids.into_iter().collect());
    let stock = store.stock().await.unwrap();
    assert_eq!((stock[0].available, stock[0].allocated), (0, 5));
}
