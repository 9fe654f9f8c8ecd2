//! Provisioning: validate an order, claim its idempotency key, and write the order, the eSIM
//! and the charge in one transaction, retrying with fresh numbers if a generated ICCID or
//! mobile number collides with an existing one. The idempotency rules are
//! [`idempotency`](crate::idempotency)'s.
//!
//! Where an SM-DP+ serves the key's environment ([`ProvisionSettings::smdp_for`]), the
//! profile is reserved there first ([`profiles::reserve`], the saga), the key being claimed
//! and held meanwhile ([`SmdpRoute::hold`]); the transaction then also marks the
//! reservation sold, and anything that stops it from committing puts the profile back.

use std::sync::Arc;

use chrono::{DateTime, Duration, Months, Utc};
use oytel_types::ProvisionRequest;

use crate::billing::charge_for;
use crate::catalog::{Catalog, CatalogPlan, Term};
use crate::clock::now;
use crate::idempotency::{request_hash, IdempotencyKey, Operation, ResourceKind, ResourceRef};
use crate::limits::QuotaUse;
use crate::numbers::{
    activation_code, generate_iccid, generate_matching_id, generate_msisdn, new_id, new_url_token,
};
use crate::paid::{self, PaidRequest, QuotaDraw, Written};
use crate::ports::{
    Charge, EsimRecord, IdempotencyWrite, OrderRecord, ProvisionResult, ProvisionWrite, Storage,
    StoreError, UniqueField,
};
use crate::profiles::{self, Held, ProfileError, ProfileSource, ReserveError};
use crate::validation::{validate_email, validate_text, validate_webhook_url};
use crate::{Amount, CoreError, EsimStatus, Scope};

/// Attempts with fresh numbers when generated ones collide.
const NUMBER_ATTEMPTS: usize = 8;

/// Server-wide settings of provisioning.
#[derive(Debug, Clone)]
pub struct ProvisionSettings {
    /// The SM-DP+ address in activation codes (of builtin profiles, and of an SM-DP+'s when
    /// it names none).
    pub smdp_address: String,
    /// The live balance that must remain after a charge.
    pub minimum_balance: Amount,
    /// The SM-DP+ profiles come from, where one is configured; builtin profiles otherwise.
    pub smdp: Option<SmdpRoute>,
    /// Where live builtin profiles get their ICCIDs (sandbox ones are always made up).
    pub stock: ProfileStock,
}

/// Where live builtin profiles get their ICCIDs (`OYTEL_PROFILE_STOCK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileStock {
    /// Made up by the server (the default, and what releases before 0.2 did).
    #[default]
    Generated,
    /// From the imported stock ([`crate::inventory`]); an empty stock refuses the order.
    Inventory,
}

impl ProvisionSettings {
    /// The SM-DP+ serving `environment`, or none for builtin profiles.
    pub fn smdp_for(&self, environment: crate::Environment) -> Option<&SmdpRoute> {
        let route = self.smdp.as_ref()?;
        (environment == crate::Environment::Production || route.sandbox).then_some(route)
    }
}

/// An SM-DP+ and the keys it serves: live keys always, sandbox keys when `sandbox`.
#[derive(Clone)]
pub struct SmdpRoute {
    /// The SM-DP+.
    pub source: Arc<dyn ProfileSource>,
    /// Whether sandbox keys get their profiles from it too.
    pub sandbox: bool,
    /// How long a request that reserves a profile holds its `Idempotency-Key`: longer than
    /// its calls may take, shorter than `stale_after`.
    pub hold: std::time::Duration,
    /// When the reconciler takes over an unfinished reservation
    /// ([`profiles::STALE_AFTER`] by default).
    pub stale_after: std::time::Duration,
}

impl std::fmt::Debug for SmdpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmdpRoute")
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// A validated order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionCommand {
    /// The plan.
    pub plan: CatalogPlan,
    /// The term.
    pub term: Term,
    /// Customer email, trimmed.
    pub customer_email: String,
    /// Customer name, trimmed.
    pub customer_name: String,
    /// Partner's reference.
    pub reference_id: Option<String>,
    /// Per-eSIM webhook URL.
    pub webhook_url: Option<String>,
}

/// The result of provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The order.
    pub order: OrderRecord,
    /// Its eSIM.
    pub esim: EsimRecord,
    /// Whether this is a replay of an earlier request with the same idempotency key.
    pub replayed: bool,
    /// The provisioning quota after this request (none for a replay, which is free).
    pub quota: Option<QuotaUse>,
}

/// Validates a provisioning request against the catalog.
pub fn validate(
    request: &ProvisionRequest,
    catalog: &Catalog,
) -> Result<ProvisionCommand, CoreError> {
    let plan_id = request.plan_id.trim();
    if plan_id.is_empty() {
        return Err(CoreError::field("plan_id", "plan_id is required"));
    }
    let Some(plan) = catalog.get(plan_id) else {
        let shown: String = plan_id
            .chars()
            .take(64)
            .filter(|c| !c.is_control())
            .collect();
        return Err(CoreError::PlanNotFound(shown));
    };
    if !plan.available {
        return Err(CoreError::PlanUnavailable(plan.id.clone()));
    }
    let Some(term) = Term::from_months(request.term_months) else {
        return Err(CoreError::field(
            "term_months",
            "term_months must be 1, 3, 6 or 12",
        ));
    };
    let customer_email = validate_email("customer_email", &request.customer_email)
        .map_err(|m| CoreError::field("customer_email", m))?;
    let customer_name = validate_text("customer_name", &request.customer_name, 200)?;
    let reference_id = request
        .reference_id
        .as_deref()
        .map(|r| validate_text("reference_id", r, 128))
        .transpose()?;
    let webhook_url = request
        .webhook_url
        .as_deref()
        .map(|u| validate_webhook_url(u).map_err(|m| CoreError::field("webhook_url", m)))
        .transpose()?;
    Ok(ProvisionCommand {
        plan: plan.clone(),
        term,
        customer_email,
        customer_name,
        reference_id,
        webhook_url,
    })
}

/// Builds the rows of a new order and its eSIM with freshly generated numbers, as if ordered
/// at `now`.
pub fn new_rows(
    command: &ProvisionCommand,
    scope: &Scope,
    settings: &ProvisionSettings,
    currency: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> (OrderRecord, EsimRecord) {
    let order_id = new_id("ord");
    let esim_id = new_id("esim");
    let matching_id = generate_matching_id();
    let expires_at = now
        .checked_add_months(Months::new(command.term.months()))
        .unwrap_or(now + Duration::days(30 * i64::from(command.term.months())));
    let order = OrderRecord {
        id: order_id.clone(),
        partner_id: scope.partner_id.clone(),
        environment: scope.environment,
        esim_id: esim_id.clone(),
        plan_id: command.plan.id.clone(),
        term: command.term,
        amount_cents: command.plan.term_price(command.term).cents(),
        currency: currency.to_owned(),
        customer_email: command.customer_email.clone(),
        customer_name: command.customer_name.clone(),
        reference_id: command.reference_id.clone(),
        balance_after_cents: 0,
        request_id: request_id.to_owned(),
        created_at: now,
    };
    let esim = EsimRecord {
        id: esim_id,
        partner_id: scope.partner_id.clone(),
        environment: scope.environment,
        order_id,
        plan_id: command.plan.id.clone(),
        plan_name: command.plan.name.clone(),
        validity_days: command.plan.validity_days,
        term: command.term,
        iccid: generate_iccid(),
        msisdn: generate_msisdn(),
        activation_code: activation_code(&settings.smdp_address, &matching_id),
        matching_id,
        qr_token: new_url_token(),
        status: EsimStatus::Provisioned,
        customer_email: command.customer_email.clone(),
        customer_name: command.customer_name.clone(),
        reference_id: command.reference_id.clone(),
        webhook_url: command.webhook_url.clone(),
        data_limit_mb: command.plan.data_allowance_mb,
        data_used_mb: 0,
        calls_made: 0,
        sms_sent: 0,
        activated_at: None,
        expires_at,
        created_at: now,
        profile: None,
    };
    (order, esim)
}

/// Provisions an eSIM: the whole flow of `POST /api/v1/esim/provision`, through the paid
/// path ([`paid::run`]): a replay of a completed request is answered without drawing from
/// `quota`; any other request draws one unit before anything is written, and with a new key
/// the whole of it (claim, charge, order, eSIM, event) is one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn provision(
    store: &dyn Storage,
    catalog: &Catalog,
    settings: &ProvisionSettings,
    scope: &Scope,
    request: &ProvisionRequest,
    idempotency_key: Option<&IdempotencyKey>,
    request_id: &str,
    quota: Option<QuotaDraw<'_>>,
) -> Result<Provisioned, CoreError> {
    let command = validate(request, catalog)?;
    let now = now();
    let smdp = settings.smdp_for(scope.environment);
    let paid = PaidRequest {
        scope,
        operation: Operation::Provision,
        key: idempotency_key,
        request_hash: request_hash(request),
        quota,
        now,
        hold: smdp.map(|route| Duration::from_std(route.hold).unwrap_or(Duration::seconds(90))),
    };
    let order = Order {
        store,
        command: &command,
        catalog,
        settings,
        scope,
        request_id,
        now,
    };
    let done = paid::run(
        store,
        paid,
        |idempotency| order.write(smdp.map(|route| route.source.as_ref()), idempotency),
        |resource| replay(store, scope, resource),
    )
    .await?;
    let (order, esim) = done.value;
    Ok(Provisioned {
        order,
        esim,
        replayed: done.replayed,
        quota: done.quota,
    })
}

/// One provisioning's write, as [`paid::run`] calls it.
struct Order<'a> {
    store: &'a dyn Storage,
    command: &'a ProvisionCommand,
    catalog: &'a Catalog,
    settings: &'a ProvisionSettings,
    scope: &'a Scope,
    request_id: &'a str,
    now: DateTime<Utc>,
}

impl Order<'_> {
    /// Writes the provisioning with a builtin profile, or with one reserved at `smdp`.
    async fn write(
        &self,
        smdp: Option<&dyn ProfileSource>,
        idempotency: Option<IdempotencyWrite>,
    ) -> Result<Written<(OrderRecord, EsimRecord)>, CoreError> {
        let Some(source) = smdp else {
            return self.commit(None, idempotency).await;
        };
        self.check_balance().await?;
        let held = profiles::reserve(
            self.store,
            source,
            self.scope,
            self.command.plan.profile_type(),
        )
        .await
        .map_err(|e| match e {
            ReserveError::Smdp(e) => CoreError::Smdp(e),
            ReserveError::Store(e) => CoreError::Store(e),
        })?;
        let reservation = held.reservation.clone();
        let result = self.commit(Some(&held), idempotency).await;
        if !matches!(result, Ok(Written::Done(_))) {
            // Not sold: put it back. Should the transaction have committed after all (an
            // error on commit), the reservation is `sold` and this changes nothing.
            let why = match &result {
                Err(e) => e.to_string(),
                Ok(_) => "the Idempotency-Key was taken by another request".into(),
            };
            profiles::give_back(self.store, source, reservation, &why).await;
        }
        result
    }

    /// A live order that cannot be paid is refused before a profile is reserved for it. The
    /// transaction checks again: this only spares the SM-DP+ a reservation.
    async fn check_balance(&self) -> Result<(), CoreError> {
        let Charge::Live {
            minimum_balance_cents,
        } = charge_for(self.scope.environment, self.settings.minimum_balance)
        else {
            return Ok(());
        };
        let balance = self.store.live_balance(&self.scope.partner_id).await?;
        let price = self.command.plan.term_price(self.command.term).cents();
        if balance.saturating_sub(price) < minimum_balance_cents {
            return Err(CoreError::InsufficientBalance {
                balance: Amount::from_cents(balance),
                required: Amount::from_cents(price),
                minimum: self.settings.minimum_balance,
            });
        }
        Ok(())
    }

    /// The provisioning transaction, drawing fresh numbers on a collision; with `held`, the
    /// eSIM takes its profile (ICCID, matching ID) and the transaction marks it sold.
    async fn commit(
        &self,
        held: Option<&Held>,
        idempotency: Option<IdempotencyWrite>,
    ) -> Result<Written<(OrderRecord, EsimRecord)>, CoreError> {
        let Order {
            store,
            command,
            catalog,
            settings,
            scope,
            request_id,
            now,
        } = *self;
        let charge = charge_for(scope.environment, settings.minimum_balance);
        let mut last_collision = UniqueField::Other;
        for _ in 0..NUMBER_ATTEMPTS {
            let (order, mut esim) =
                new_rows(command, scope, settings, &catalog.currency, request_id, now);
            if let Some(held) = held {
                let address = held
                    .smdp_address
                    .as_deref()
                    .unwrap_or(&settings.smdp_address);
                esim.iccid = held.iccid.clone();
                esim.activation_code = activation_code(address, &held.matching_id);
                esim.matching_id = held.matching_id.clone();
                esim.profile = Some(crate::downloads::released());
            }
            let event = crate::webhooks::esim_event(
                oytel_types::EventType::EsimProvisioned,
                &esim,
                None,
                now,
            );
            let write = ProvisionWrite {
                order,
                esim,
                charge,
                idempotency: idempotency.clone(),
                event,
                reservation: held.map(|h| h.reservation.id.clone()),
                from_stock: (held.is_none()
                    && settings.stock == ProfileStock::Inventory
                    && scope.environment == crate::Environment::Production)
                    .then(|| command.plan.profile_type().to_owned()),
            };
            match store.provision(&write).await {
                Ok(ProvisionResult::Committed {
                    balance_after_cents,
                }) => {
                    let ProvisionWrite {
                        mut order, esim, ..
                    } = write;
                    order.balance_after_cents = balance_after_cents;
                    return Ok(Written::Done((order, esim)));
                }
                Ok(ProvisionResult::CommittedFromStock {
                    balance_after_cents,
                    iccid,
                }) => {
                    let ProvisionWrite {
                        mut order,
                        mut esim,
                        ..
                    } = write;
                    order.balance_after_cents = balance_after_cents;
                    esim.iccid = iccid;
                    return Ok(Written::Done((order, esim)));
                }
                Ok(ProvisionResult::OutOfStock) => {
                    return Err(CoreError::OutOfStock(
                        command.plan.profile_type().to_owned(),
                    ))
                }
                Ok(ProvisionResult::InsufficientBalance { balance_cents }) => {
                    return Err(CoreError::InsufficientBalance {
                        balance: Amount::from_cents(balance_cents),
                        required: Amount::from_cents(write.order.amount_cents),
                        minimum: settings.minimum_balance,
                    });
                }
                Ok(ProvisionResult::ClaimLost) => return Ok(Written::ClaimLost),
                Ok(ProvisionResult::KeyTaken) => return Ok(Written::KeyTaken),
                Ok(ProvisionResult::ReservationLost) => {
                    return Err(ProfileError::Timeout(
                        "the profile's reservation went stale before the order committed".into(),
                    )
                    .into())
                }
                Err(StoreError::Duplicate(
                    field @ (UniqueField::Iccid | UniqueField::MatchingId),
                )) if held.is_some() => {
                    return Err(ProfileError::Protocol(format!(
                        "the SM-DP+ gave a profile whose {field:?} an eSIM already has"
                    ))
                    .into())
                }
                Err(StoreError::Duplicate(field)) => last_collision = field,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Other(format!(
            "could not allocate unique numbers after {NUMBER_ATTEMPTS} attempts (last collision: {last_collision:?})"
        ))
        .into())
    }
}

/// The answer to a replay: the order the key names (its rows never change) and its eSIM as
/// the provisioning left it ([`as_provisioned`]), so that a retry gets the first answer
/// whatever happened to the eSIM since.
async fn replay(
    store: &dyn Storage,
    scope: &Scope,
    resource: ResourceRef,
) -> Result<(OrderRecord, EsimRecord), CoreError> {
    let missing = || {
        StoreError::Other(format!(
            "idempotent replay: the {} {} is missing",
            resource.kind.as_str(),
            resource.id
        ))
    };
    if resource.kind != ResourceKind::Order {
        return Err(missing().into());
    }
    let order = store
        .get_order(scope, &resource.id)
        .await?
        .ok_or_else(missing)?;
    let esim = store
        .get_esim(scope, &order.esim_id)
        .await?
        .ok_or_else(missing)?;
    Ok((order, as_provisioned(esim)))
}

/// An eSIM as its provisioning wrote it ([`new_rows`]): what changes afterwards (the state,
/// the activation time, usage) set back to how it started. Everything else is fixed at
/// provisioning.
pub fn as_provisioned(esim: EsimRecord) -> EsimRecord {
    EsimRecord {
        status: EsimStatus::Provisioned,
        activated_at: None,
        data_used_mb: 0,
        calls_made: 0,
        sms_sent: 0,
        profile: esim.profile.map(|_| crate::downloads::released()),
        ..esim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::IdempotencyClaim;
    use crate::ports::{Charge, MockStorage};
    use crate::Environment;

    fn request() -> ProvisionRequest {
        ProvisionRequest::new("uk-massive-650", "user@example.com", "John Doe")
            .term_months(3)
            .reference_id("order-1")
    }

    fn settings() -> ProvisionSettings {
        ProvisionSettings {
            smdp_address: "smdp.test".into(),
            minimum_balance: Amount::from_cents(2500),
            smdp: None,
            stock: ProfileStock::Generated,
        }
    }

    fn live() -> Scope {
        Scope {
            partner_id: "ptn_1".into(),
            environment: Environment::Production,
        }
    }

    #[test]
    fn validation_names_the_failing_field() {
        let catalog = Catalog::default_catalog();
        type Mutation = fn(&mut ProvisionRequest);
        let cases: Vec<(Mutation, &str)> = vec![
            (|r| r.term_months = 2, "term_months"),
            (|r| r.term_months = 0, "term_months"),
            (|r| r.customer_email = "nope".into(), "customer_email"),
            (|r| r.customer_email = "a@b".into(), "customer_email"),
            (|r| r.customer_email = "a b@c.com".into(), "customer_email"),
            (|r| r.customer_name = "  ".into(), "customer_name"),
            (|r| r.customer_name = "x".repeat(201), "customer_name"),
            (|r| r.customer_name = "a\u{0}b".into(), "customer_name"),
            (|r| r.reference_id = Some("r".repeat(129)), "reference_id"),
            (
                |r| r.webhook_url = Some("ftp://x.com".into()),
                "webhook_url",
            ),
            (|r| r.webhook_url = Some("not a url".into()), "webhook_url"),
            (|r| r.plan_id = "".into(), "plan_id"),
        ];
        for (mutate, field) in cases {
            let mut r = request();
            mutate(&mut r);
            match validate(&r, &catalog) {
                Err(CoreError::Validation(e)) => assert_eq!(e.field, field, "{r:?}"),
                other => panic!("{r:?}: {other:?}"),
            }
        }
        let mut r = request();
        r.plan_id = "no-such-plan".into();
        assert!(matches!(
            validate(&r, &catalog),
            Err(CoreError::PlanNotFound(_))
        ));
        let mut r = request();
        r.customer_name = "  Zoë Ångström 王 ".into();
        assert_eq!(
            validate(&r, &catalog).unwrap().customer_name,
            "Zoë Ångström 王"
        );
    }

    /// Provisions the standard live order (`request()`), with an idempotency key and a
    /// quota where given.
    async fn provision_live(
        store: &MockStorage,
        key: Option<&str>,
        quota: Option<QuotaDraw<'_>>,
    ) -> Result<Provisioned, CoreError> {
        let catalog = Catalog::default_catalog();
        let key = key.map(|k| IdempotencyKey::parse(k).unwrap());
        provision(
            store,
            &catalog,
            &settings(),
            &live(),
            &request(),
            key.as_ref(),
            "req_1",
            quota,
        )
        .await
    }

    #[tokio::test]
    async fn a_live_order_is_charged_for_the_whole_term_in_one_write() {
        let mut store = MockStorage::new();
        store.expect_provision().times(1).returning(|w| {
            assert_eq!(w.order.amount_cents, 3 * 2846);
            assert_eq!(
                w.charge,
                Charge::Live {
                    minimum_balance_cents: 2500
                }
            );
            assert_eq!(w.order.esim_id, w.esim.id);
            assert_eq!(w.esim.order_id, w.order.id);
            assert!(crate::numbers::is_valid_iccid(&w.esim.iccid));
            assert!(w.esim.activation_code.starts_with("LPA:1$smdp.test$"));
            assert_eq!(
                w.esim.expires_at,
                w.esim
                    .created_at
                    .checked_add_months(Months::new(3))
                    .unwrap()
            );
            Ok(ProvisionResult::Committed {
                balance_after_cents: 1_000_000 - 3 * 2846,
            })
        });
        let done = provision_live(&store, None, None).await.unwrap();
        assert_eq!(done.order.balance_after_cents, 1_000_000 - 3 * 2846);
        assert!(!done.replayed);
    }

    #[tokio::test]
    async fn number_collisions_are_retried_with_fresh_numbers() {
        let mut store = MockStorage::new();
        let mut seen = Vec::new();
        let mut calls = 0;
        store.expect_provision().times(3).returning(move |w| {
            calls += 1;
            assert!(
                !seen.contains(&w.esim.iccid),
                "a retry must draw new numbers"
            );
            seen.push(w.esim.iccid.clone());
            if calls < 3 {
                Err(StoreError::Duplicate(UniqueField::Iccid))
            } else {
                Ok(ProvisionResult::Committed {
                    balance_after_cents: 10_000,
                })
            }
        });
        let done = provision_live(&store, None, None).await;
        assert!(done.is_ok());
    }

    /// A store whose key `k` is already stored: the one-transaction attempt finds it taken,
    /// and the claim apart answers `claim`.
    fn stored_key(claim: IdempotencyClaim) -> MockStorage {
        let mut store = crate::paid::tests::stored(claim);
        store
            .expect_provision()
            .withf(|w| matches!(w.idempotency, Some(IdempotencyWrite::ClaimNew(_))))
            .times(1)
            .returning(|_| Ok(ProvisionResult::KeyTaken));
        store
    }

    #[tokio::test]
    async fn an_insufficient_balance_says_what_was_there_what_was_needed_and_the_minimum() {
        let mut store = MockStorage::new();
        store.expect_provision().times(1).returning(|_| {
            Ok(ProvisionResult::InsufficientBalance {
                balance_cents: 3000,
            })
        });
        match provision_live(&store, None, None).await.unwrap_err() {
            CoreError::InsufficientBalance {
                balance,
                required,
                minimum,
            } => {
                assert_eq!(balance.cents(), 3000);
                assert_eq!(required.cents(), 3 * 2846);
                assert_eq!(minimum.cents(), 2500);
            }
            other => panic!("{other:?}"),
        }
    }

    /// The replay of a completed key is the first answer: the order it names, and its eSIM
    /// as provisioned, though it was activated and used since. (The rest of the path, for
    /// every paid write, is `paid`'s tests.)
    #[tokio::test]
    async fn a_replay_is_the_first_answer_whatever_happened_since() {
        let mut store = stored_key(IdempotencyClaim::Completed {
            resource: ResourceRef::order("ord_1"),
        });
        let (order, first) = new_rows(
            &validate(&request(), &Catalog::default_catalog()).unwrap(),
            &live(),
            &settings(),
            "USD",
            "req_0",
            now(),
        );
        let since = EsimRecord {
            status: EsimStatus::Active,
            activated_at: Some(now()),
            data_used_mb: 700,
            calls_made: 2,
            sms_sent: 1,
            ..first.clone()
        };
        let stored_order = order.clone();
        store
            .expect_get_order()
            .returning(move |_, _| Ok(Some(stored_order.clone())));
        store
            .expect_get_esim()
            .returning(move |_, _| Ok(Some(since.clone())));
        let done = provision_live(&store, Some("k"), None).await.unwrap();
        assert!(done.replayed);
        assert_eq!((done.order, done.esim), (order, first));
    }
}
