//! The outbox: events written with the change they report, and fanned out to one delivery per
//! destination (subscribed endpoints and the eSIM's own `webhook_url`) in that transaction.

use chrono::{DateTime, Utc};
use oytel_core::numbers::new_id;
use oytel_core::ports::{EventRecord, StoreError};
use oytel_core::Scope;
use oytel_types::EventType;
use sqlx::QueryBuilder;

use super::sql::{begin_write, fetch_scoped_by_id, push_insert, Chain, Tx};
use super::{Db, Store};
use crate::errors::db_error;
use crate::rows::EventRow;

/// The columns of an event row (`rows::EventRow`).
const EVENT_COLUMNS: &str =
    "seq, id, partner_id, environment, esim_id, event_type, payload, created_at, traceparent";

pub(super) fn push_event<'a>(qb: &mut QueryBuilder<'a, Db>, event: &'a EventRecord) {
    push_insert(
        qb,
        "events (id, partner_id, environment, esim_id, event_type, payload, created_at, \
         traceparent)",
        |v| {
            v.push_bind(&event.id)
                .push_bind(&event.partner_id)
                .push_bind(event.environment.as_str())
                .push_bind(&event.esim_id)
                .push_bind(event.event_type.as_str())
                .push_bind(&event.payload)
                .push_bind(event.created_at)
                .push_bind(&event.traceparent);
        },
    );
}

/// Lists the enabled endpoints `event` may go to: `(id, url, event_types)`.
pub(super) fn push_endpoints_query<'a>(qb: &mut QueryBuilder<'a, Db>, event: &'a EventRecord) {
    qb.push("SELECT id, url, event_types FROM webhook_endpoints WHERE partner_id = ")
        .push_bind(&event.partner_id)
        .push(" AND environment = ")
        .push_bind(event.environment.as_str())
        .push(" AND enabled = ")
        .push_bind(true)
        .push(" ORDER BY seq");
}

/// Writes an event to the outbox.
pub(super) async fn insert_event_row(
    tx: &mut Tx<'_>,
    event: &EventRecord,
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::new("");
    push_event(&mut query, event);
    query.build().execute(&mut **tx).await.map_err(db_error)?;
    Ok(())
}

/// Schedules one delivery of `event` to `url`, due at once.
pub(super) async fn insert_delivery(
    tx: &mut Tx<'_>,
    event: &EventRecord,
    endpoint_id: Option<&str>,
    url: &str,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let id = new_id("dlv");
    sqlx::query(
        "INSERT INTO deliveries (id, event_id, endpoint_id, partner_id, environment, url, \
         status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(&id)
    .bind(&event.id)
    .bind(endpoint_id)
    .bind(&event.partner_id)
    .bind(event.environment.as_str())
    .bind(url)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(id)
}

/// Schedules `event` for every enabled endpoint subscribed to it and for the eSIM's
/// own `webhook_url` (creating that URL's signing secret if needed). Returns how many
/// deliveries were scheduled.
pub(super) async fn fan_out(
    tx: &mut Tx<'_>,
    event: &EventRecord,
    esim_webhook_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    fan_out_after(tx, Chain::new(), event, esim_webhook_url, now).await
}

/// [`fan_out`], its endpoint lookup sent as the final query of `writes`.
pub(super) async fn fan_out_after<'a>(
    tx: &mut Tx<'_>,
    writes: Chain<'a>,
    event: &'a EventRecord,
    esim_webhook_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut query = writes.query();
    push_endpoints_query(&mut query, event);
    let endpoints: Vec<(String, String, String)> = query
        .build_query_as()
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
    schedule(tx, event, endpoints, esim_webhook_url, now).await
}

/// Schedules `event` for those of `endpoints` (as listed by `push_endpoints_query`)
/// subscribed to it, and for the eSIM's own `webhook_url`. Returns how many deliveries
/// were scheduled.
pub(super) async fn schedule(
    tx: &mut Tx<'_>,
    event: &EventRecord,
    endpoints: Vec<(String, String, String)>,
    esim_webhook_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut scheduled = 0;
    for (id, url, types) in endpoints {
        let types: Vec<EventType> = types.split(',').filter_map(EventType::parse).collect();
        if oytel_core::webhooks::subscribed(&types, event.event_type) {
            insert_delivery(tx, event, Some(&id), &url, now).await?;
            scheduled += 1;
        }
    }
    // A per-eSIM URL has no list of types: it gets the first release's ones only.
    let esim_webhook_url = esim_webhook_url
        .filter(|_| oytel_core::webhooks::DEFAULT_EVENTS.contains(&event.event_type));
    if let Some(url) = esim_webhook_url {
        sqlx::query(
            "INSERT INTO signing_secrets (partner_id, environment, secret) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&event.partner_id)
        .bind(event.environment.as_str())
        .bind(oytel_core::webhooks::generate_secret())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        insert_delivery(tx, event, None, url, now).await?;
        scheduled += 1;
    }
    Ok(scheduled)
}

pub(super) async fn send_test_event(
    store: &Store,
    event: &EventRecord,
    endpoint_id: &str,
) -> Result<String, StoreError> {
    let mut tx = begin_write(store).await?;
    let url: Option<String> = sqlx::query_scalar(
        "SELECT url FROM webhook_endpoints WHERE id = $1 AND partner_id = $2 AND environment = $3",
    )
    .bind(endpoint_id)
    .bind(&event.partner_id)
    .bind(event.environment.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let url = url.ok_or(StoreError::NotFound("webhook endpoint"))?;
    insert_event_row(&mut tx, event).await?;
    let delivery =
        insert_delivery(&mut tx, event, Some(endpoint_id), &url, event.created_at).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(delivery)
}

pub(super) async fn get_event(
    store: &Store,
    scope: &Scope,
    event_id: &str,
) -> Result<Option<EventRecord>, StoreError> {
    fetch_scoped_by_id::<EventRow, _>(EVENT_COLUMNS, "events", scope, event_id, &store.reader).await
}

pub(super) async fn redeliver_event(
    store: &Store,
    scope: &Scope,
    event_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<u32>, StoreError> {
    let Some(event) = get_event(store, scope, event_id).await? else {
        return Ok(None);
    };
    let mut tx = begin_write(store).await?;
    let url: Option<String> = match &event.esim_id {
        Some(esim_id) => sqlx::query_scalar("SELECT webhook_url FROM esims WHERE id = $1")
            .bind(esim_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .flatten(),
        None => None,
    };
    let scheduled = fan_out(&mut tx, &event, url.as_deref(), now).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(Some(scheduled))
}
