//! Provisioning: validate an order, claim its idempotency key, and write the order, the eSIM
//! and the charge in one transaction, retrying with fresh numbers if a generated ICCID or
//! mobile number collides with an existing one.
//!
//! Idempotency (after Stripe and draft-ietf-httpapi-idempotency-key-header): the key is
//! scoped to the partner and environment; a completed request is replayed from the order it
//! created; the same key with a different body is refused; while the first request runs,
//! others get "in progress". A request that fails releases its key, so only successes are
//! remembered, for [`IDEMPOTENCY_TTL_HOURS`] hours.

use base64::Engine as _;
use chrono::{DateTime, Duration, Months, SubsecRound, Utc};
use oytel_types::{ListEsimsQuery, ProvisionRequest};
use sha2::{Digest, Sha256};

use crate::billing::charge_for;
use crate::catalog::{Catalog, CatalogPlan, Term};
use crate::limits::{QuotaKey, QuotaUse, Quotas};
use crate::numbers::{
    activation_code, generate_iccid, generate_matching_id, generate_msisdn, new_id, new_url_token,
};
use crate::ports::{
    ClaimRef, EsimFilter, EsimRecord, IdempotencyClaim, IdempotencyRequest, IdempotencyWrite,
    OrderRecord, PageRequest, ProvisionResult, ProvisionWrite, Sequenced, Storage, StoreError,
    UniqueField,
};
use crate::{Amount, CoreError, EsimStatus, Scope};

/// How long a completed idempotency key is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;
/// How long an unfinished claim blocks the key before another request may take it over
/// (a request that crashed never completes its claim). A provisioning takes milliseconds; a
/// holder slower than this cannot complete after a takeover (its claim token no longer
/// matches), so nothing is charged twice either way.
pub const IDEMPOTENCY_LEASE_SECONDS: i64 = 10;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Attempts with fresh numbers when generated ones collide.
const NUMBER_ATTEMPTS: usize = 8;
/// Default and largest page sizes of lists.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The current time, to the second (the API shows whole seconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Server-wide settings of provisioning.
#[derive(Debug, Clone)]
pub struct ProvisionSettings {
    /// The SM-DP+ address in activation codes.
    pub smdp_address: String,
    /// The live balance that must remain after a charge.
    pub minimum_balance: Amount,
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

/// The provisioning quota a request draws from.
pub struct ProvisionQuota<'a> {
    /// Where it is counted.
    pub quotas: &'a dyn Quotas,
    /// Whose it is.
    pub key: QuotaKey,
    /// How many requests an hour.
    pub limit: u32,
}

impl std::fmt::Debug for ProvisionQuota<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionQuota")
            .field("key", &self.key)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks an email address: `local@domain.tld`, at most 254 characters, no spaces or
/// control characters.
pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    if email.is_empty() {
        return Err("customer_email is required".into());
    }
    if email.len() > 254 || has_control(email) || email.contains(char::is_whitespace) {
        return Err("customer_email is not a valid email address".into());
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("customer_email is not a valid email address".into());
    };
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
        return Err("customer_email is not a valid email address".into());
    }
    Ok(email.to_owned())
}

/// Trims `value` and checks it is non-empty, at most `max_chars` characters and free of control
/// characters; errors name `field`.
pub(crate) fn validate_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, CoreError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CoreError::field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(CoreError::field(
            field,
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if has_control(value) {
        return Err(CoreError::field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Checks a webhook URL: absolute `http` or `https` with a host, at most 2048 characters.
pub fn validate_webhook_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > 2048 {
        return Err("webhook_url must be at most 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("webhook_url is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return Err("webhook_url must be an absolute http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("webhook_url must not contain credentials".into());
    }
    Ok(url.to_string())
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
    let customer_email = validate_email(&request.customer_email)
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

/// Checks an `Idempotency-Key`: 1 to 255 printable ASCII characters.
pub fn validate_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("Idempotency-Key must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// The fingerprint of a request for idempotency: SHA-256 over its canonical JSON (fields in
/// a fixed order, defaults filled in), so formatting and field order do not matter.
pub fn request_hash(request: &ProvisionRequest) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    crate::numbers::hex(&Sha256::digest(&canonical))
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
        term_months: command.term.months(),
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
        term_months: command.term.months(),
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
    };
    (order, esim)
}

/// Provisions an eSIM: the whole flow of `POST /api/v1/esim/provision`. A replay of a
/// completed request is answered without drawing from `quota`; any other request draws one
/// unit before anything is written.
///
/// With an idempotency key, the common case (a key never seen) takes one transaction: the
/// quota is drawn, then the key is claimed and completed together with the charge, the order,
/// the eSIM and the event. If the key turns out to be stored already, that transaction writes
/// nothing, the unit is given back, and the two-step path decides: claim (or find the stored
/// answer to replay, or a conflict), then write.
#[allow(clippy::too_many_arguments)]
pub async fn provision(
    store: &dyn Storage,
    catalog: &Catalog,
    settings: &ProvisionSettings,
    scope: &Scope,
    request: &ProvisionRequest,
    idempotency_key: Option<&str>,
    request_id: &str,
    quota: Option<ProvisionQuota<'_>>,
) -> Result<Provisioned, CoreError> {
    if let Some(key) = idempotency_key {
        validate_idempotency_key(key).map_err(CoreError::InvalidIdempotencyKey)?;
    }
    let command = validate(request, catalog)?;
    let now = now();
    let quota = quota.as_ref();
    let write = |idempotency| {
        write_with_fresh_numbers(
            store,
            &command,
            catalog,
            settings,
            scope,
            idempotency,
            request_id,
            now,
        )
    };
    let Some(key) = idempotency_key else {
        let used = draw(quota, now).await?;
        let done = write(None).await?.ok_or_else(|| {
            CoreError::Store(StoreError::Other(
                "the store reported an idempotency key taken for a request without one".into(),
            ))
        })?;
        return Ok(Provisioned {
            quota: used,
            ..done
        });
    };
    let claim = IdempotencyRequest {
        key: key.to_owned(),
        token: crate::numbers::random_base62(24),
        request_hash: request_hash(request),
        now,
        lease_until: now + Duration::seconds(IDEMPOTENCY_LEASE_SECONDS),
        expires_at: now + Duration::hours(IDEMPOTENCY_TTL_HOURS),
    };

    match draw(quota, now).await {
        Ok(used) => match write(Some(IdempotencyWrite::ClaimNew(claim.clone()))).await? {
            Some(done) => {
                return Ok(Provisioned {
                    quota: used,
                    ..done
                })
            }
            None => {
                if let (Some(q), Some(_)) = (quota, used) {
                    // A replay draws nothing. Should this fail, the hour's count is one too
                    // high; no money or order is affected.
                    let _ = q.quotas.refund(&q.key, now).await;
                }
            }
        },
        // A spent quota does not refuse a replay: the two-step path decides.
        Err(CoreError::QuotaExceeded { .. }) => {}
        Err(e) => return Err(e),
    }

    match store.claim_idempotency_key(scope, &claim).await? {
        IdempotencyClaim::Claimed => {}
        IdempotencyClaim::Completed { order_id } => {
            return replay(store, scope, &order_id).await;
        }
        IdempotencyClaim::InProgress => return Err(CoreError::IdempotencyInProgress),
        IdempotencyClaim::Mismatch => return Err(CoreError::IdempotencyKeyReused),
    }
    let claim_ref = ClaimRef {
        key: claim.key,
        token: claim.token,
    };
    let result = async {
        let used = draw(quota, now).await?;
        let done = write(Some(IdempotencyWrite::Complete(claim_ref.clone())))
            .await?
            .ok_or(CoreError::IdempotencyInProgress)?;
        Ok(Provisioned {
            quota: used,
            ..done
        })
    }
    .await;
    if result.is_err() {
        // Only successes are remembered: free the key for a corrected retry. If this fails
        // too, the claim's lease runs out and the key is freed then.
        let _ = store.release_idempotency_key(scope, &claim_ref).await;
    }
    result
}

/// Draws one unit of `quota`, if there is one to draw from; refuses when it is spent.
async fn draw(
    quota: Option<&ProvisionQuota<'_>>,
    now: DateTime<Utc>,
) -> Result<Option<QuotaUse>, CoreError> {
    let Some(q) = quota else {
        return Ok(None);
    };
    let used = q.quotas.consume(&q.key, q.limit, now).await?;
    if used.allowed {
        Ok(Some(used))
    } else {
        Err(CoreError::QuotaExceeded {
            kind: q.key.kind,
            used,
        })
    }
}

/// Writes the provisioning, drawing fresh numbers on a collision. `None`: nothing was written
/// because [`IdempotencyWrite::ClaimNew`] found the key stored.
#[allow(clippy::too_many_arguments)]
async fn write_with_fresh_numbers(
    store: &dyn Storage,
    command: &ProvisionCommand,
    catalog: &Catalog,
    settings: &ProvisionSettings,
    scope: &Scope,
    idempotency: Option<IdempotencyWrite>,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Provisioned>, CoreError> {
    let charge = charge_for(scope.environment, settings.minimum_balance);
    let mut last_collision = UniqueField::Other;
    for _ in 0..NUMBER_ATTEMPTS {
        let (order, esim) = new_rows(command, scope, settings, &catalog.currency, request_id, now);
        let event =
            crate::webhooks::esim_event(oytel_types::EventType::EsimProvisioned, &esim, None, now);
        let write = ProvisionWrite {
            order,
            esim,
            charge,
            idempotency: idempotency.clone(),
            event,
        };
        match store.provision(&write).await {
            Ok(ProvisionResult::Committed {
                balance_after_cents,
            }) => {
                let ProvisionWrite {
                    mut order, esim, ..
                } = write;
                order.balance_after_cents = balance_after_cents;
                return Ok(Some(Provisioned {
                    order,
                    esim,
                    replayed: false,
                    quota: None,
                }));
            }
            Ok(ProvisionResult::InsufficientBalance { balance_cents }) => {
                return Err(CoreError::InsufficientBalance {
                    balance: Amount::from_cents(balance_cents),
                    required: Amount::from_cents(write.order.amount_cents),
                    minimum: settings.minimum_balance,
                });
            }
            Ok(ProvisionResult::ClaimLost) => return Err(CoreError::IdempotencyInProgress),
            Ok(ProvisionResult::KeyTaken) => return Ok(None),
            Err(StoreError::Duplicate(field)) => last_collision = field,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Other(format!(
        "could not allocate unique numbers after {NUMBER_ATTEMPTS} attempts (last collision: {last_collision:?})"
    ))
    .into())
}

async fn replay(
    store: &dyn Storage,
    scope: &Scope,
    order_id: &str,
) -> Result<Provisioned, CoreError> {
    let missing = || StoreError::Other(format!("idempotent replay: order {order_id} is missing"));
    let order = store
        .get_order(scope, order_id)
        .await?
        .ok_or_else(missing)?;
    let esim = store
        .get_esim(scope, &order.esim_id)
        .await?
        .ok_or_else(missing)?;
    Ok(Provisioned {
        order,
        esim,
        replayed: true,
        quota: None,
    })
}

/// Encodes a cursor pointing below sequence number `seq`.
pub fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{seq}"))
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<i64, CoreError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CoreError::InvalidCursor)?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.strip_prefix("v1:"))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or(CoreError::InvalidCursor)
}

/// A page request from a limit and a cursor given by a client.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, CoreError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(CoreError::field(
            "limit",
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let before = cursor.map(decode_cursor).transpose()?;
    // One more than asked, to learn whether another page follows.
    Ok(PageRequest {
        limit: limit + 1,
        before,
    })
}

/// Splits the rows of a page request into the page and the cursor of the next page.
pub fn finish_page<T>(mut rows: Vec<Sequenced<T>>, page: PageRequest) -> (Vec<T>, Option<String>) {
    let asked = page.limit.saturating_sub(1) as usize;
    let next = if rows.len() > asked {
        rows.truncate(asked);
        rows.last().map(|r| encode_cursor(r.seq))
    } else {
        None
    };
    (rows.into_iter().map(|r| r.row).collect(), next)
}

/// A `reference_id` filter of a list, checked like the field itself.
pub fn reference_filter(reference_id: Option<&str>) -> Result<Option<String>, CoreError> {
    reference_id
        .map(|r| validate_text("reference_id", r, 128))
        .transpose()
}

/// Filters of an eSIM list from the query of `GET /api/v1/esims`.
pub fn esim_filter(query: &ListEsimsQuery) -> Result<EsimFilter, CoreError> {
    let customer_email = query
        .customer_email
        .as_deref()
        .map(|e| validate_email(e).map_err(|m| CoreError::field("customer_email", m)))
        .transpose()?;
    let reference_id = reference_filter(query.reference_id.as_deref())?;
    Ok(EsimFilter {
        status: query.status,
        reference_id,
        customer_email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Charge, MockStorage};
    use crate::Environment;

    fn request() -> ProvisionRequest {
        ProvisionRequest {
            plan_id: "uk-massive-650".into(),
            term_months: 3,
            customer_email: "user@example.com".into(),
            customer_name: "John Doe".into(),
            reference_id: Some("order-1".into()),
            webhook_url: None,
        }
    }

    fn settings() -> ProvisionSettings {
        ProvisionSettings {
            smdp_address: "smdp.test".into(),
            minimum_balance: Amount::from_cents(2500),
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

    #[test]
    fn request_hash_ignores_formatting_but_not_content() {
        let a: ProvisionRequest = serde_json::from_str(
            r#"{"customer_name":"John Doe","plan_id":"uk-massive-650","term_months":3,
               "customer_email":"user@example.com","reference_id":"order-1"}"#,
        )
        .unwrap();
        assert_eq!(request_hash(&a), request_hash(&request()));
        let mut b = request();
        b.term_months = 1;
        assert_ne!(request_hash(&b), request_hash(&request()));
    }

    /// Provisions the standard live order (`request()`), with an idempotency key and a
    /// quota where given.
    async fn provision_live(
        store: &MockStorage,
        key: Option<&str>,
        quota: Option<ProvisionQuota<'_>>,
    ) -> Result<Provisioned, CoreError> {
        let catalog = Catalog::default_catalog();
        provision(
            store,
            &catalog,
            &settings(),
            &live(),
            &request(),
            key,
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
    /// and the two-step claim answers `claim`.
    fn stored_key(claim: IdempotencyClaim) -> MockStorage {
        let mut store = MockStorage::new();
        store
            .expect_provision()
            .withf(|w| matches!(w.idempotency, Some(IdempotencyWrite::ClaimNew(_))))
            .times(1)
            .returning(|_| Ok(ProvisionResult::KeyTaken));
        store
            .expect_claim_idempotency_key()
            .times(1)
            .returning(move |_, _| Ok(claim.clone()));
        store
    }

    #[tokio::test]
    async fn insufficient_balance_writes_nothing_and_frees_the_key() {
        let refused = |store: MockStorage| async move {
            let err = provision_live(&store, Some("k1"), None).await.unwrap_err();
            match err {
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
        };
        let short = |_: &ProvisionWrite| {
            Ok(ProvisionResult::InsufficientBalance {
                balance_cents: 3000,
            })
        };
        // A new key: claimed in the refused transaction, so nothing is left to free.
        let mut store = MockStorage::new();
        store
            .expect_provision()
            .withf(
                |w| matches!(&w.idempotency, Some(IdempotencyWrite::ClaimNew(c)) if c.key == "k1"),
            )
            .times(1)
            .returning(short);
        store.expect_claim_idempotency_key().never();
        store.expect_release_idempotency_key().never();
        refused(store).await;
        // A key claimed in a step of its own (it was stored, but expired): freed again.
        let mut store = stored_key(IdempotencyClaim::Claimed);
        store
            .expect_provision()
            .withf(|w| matches!(w.idempotency, Some(IdempotencyWrite::Complete(_))))
            .times(1)
            .returning(short);
        store
            .expect_release_idempotency_key()
            .withf(|_, claim| claim.key == "k1" && claim.token.len() == 24)
            .times(1)
            .returning(|_, _| Ok(()));
        refused(store).await;
    }

    #[tokio::test]
    async fn claims_in_progress_or_mismatched_are_refused_without_writing() {
        for (claim, expected) in [
            (IdempotencyClaim::InProgress, "still being processed"),
            (IdempotencyClaim::Mismatch, "different request body"),
        ] {
            // The only provision call is the attempt that found the key taken.
            let store = stored_key(claim);
            let err = provision_live(&store, Some("k"), None).await.unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[tokio::test]
    async fn a_replay_draws_no_quota_and_a_spent_quota_writes_nothing() {
        use crate::limits::{quota_use, MockQuotas, QuotaKind};
        let key = QuotaKey {
            partner_id: "ptn_1".into(),
            environment: crate::Environment::Production,
            kind: QuotaKind::Provision,
        };
        let catalog = Catalog::default_catalog();
        // Spent: nothing is written, and the key claimed to check for a replay is freed.
        let mut store = MockStorage::new();
        store
            .expect_claim_idempotency_key()
            .returning(|_, _| Ok(IdempotencyClaim::Claimed));
        store.expect_provision().never();
        store
            .expect_release_idempotency_key()
            .times(1)
            .returning(|_, _| Ok(()));
        let mut quotas = MockQuotas::new();
        quotas
            .expect_consume()
            .returning(|_, limit, now| Ok(quota_use(None, limit, now)));
        quotas.expect_refund().never();
        let quota = ProvisionQuota {
            quotas: &quotas,
            key: key.clone(),
            limit: 100,
        };
        let err = provision_live(&store, Some("k"), Some(quota))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::QuotaExceeded {
                    kind: QuotaKind::Provision,
                    ..
                }
            ),
            "{err:?}"
        );

        // A replay: the unit drawn for the attempt that found the key stored is given back.
        let mut store = stored_key(IdempotencyClaim::Completed {
            order_id: "ord_1".into(),
        });
        let (order, esim) = new_rows(
            &validate(&request(), &catalog).unwrap(),
            &live(),
            &settings(),
            "USD",
            "req_0",
            now(),
        );
        let esim_id = esim.id.clone();
        store.expect_get_order().returning(move |_, _| {
            Ok(Some(OrderRecord {
                esim_id: esim_id.clone(),
                ..order.clone()
            }))
        });
        store
            .expect_get_esim()
            .returning(move |_, _| Ok(Some(esim.clone())));
        let mut quotas = MockQuotas::new();
        quotas
            .expect_consume()
            .times(1)
            .returning(|_, limit, now| Ok(quota_use(Some(1), limit, now)));
        let refunded = key.clone();
        quotas
            .expect_refund()
            .withf(move |k, _| *k == refunded)
            .times(1)
            .returning(|_, _| Ok(()));
        let quota = ProvisionQuota {
            quotas: &quotas,
            key,
            limit: 100,
        };
        let done = provision_live(&store, Some("k"), Some(quota))
            .await
            .unwrap();
        assert!(done.replayed && done.quota.is_none());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for bad in ["", "!!", "djE6", "djE6LTE", "eHl6"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        assert!(page_request(Some(0), None).is_err());
        assert!(page_request(Some(101), None).is_err());
        assert_eq!(
            page_request(None, None).unwrap().limit,
            DEFAULT_PAGE_SIZE + 1
        );
    }

    #[test]
    fn idempotency_keys_are_printable_ascii() {
        assert!(validate_idempotency_key("order-123_ABC").is_ok());
        assert!(validate_idempotency_key("").is_err());
        assert!(validate_idempotency_key("has space").is_err());
        assert!(validate_idempotency_key(&"k".repeat(256)).is_err());
        assert!(validate_idempotency_key("ключ").is_err());
    }
}
