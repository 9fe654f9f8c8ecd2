//! eSIMs: reads, lists, state changes and usage. A change that partners are told about writes
//! its event in the same transaction (see `outbox`).

use chrono::{DateTime, Utc};
use oytel_core::lifecycle::{self, Suspender, SuspensionChange, SuspensionDecision};
use oytel_core::ports::{
    EsimFilter, EsimRecord, PageRequest, PartnerSummary, Sequenced, StoreError, SuspensionResult,
    TransitionResult, UsageInput, UsageResult,
};
use oytel_core::{EsimStatus, Scope};
use oytel_types::{EventType, PackageState};
use sqlx::QueryBuilder;

use super::outbox::{fan_out, insert_event_row};
use super::packages::{apply_usage, end_in_force, start_next};
use super::sql::{begin_write, fetch_page, fetch_scoped_by_id, push_insert, scoped_list, Tx};
use super::{Db, Store, DIALECT};
use crate::errors::db_error;
use crate::rows::{environment, EsimRow};

/// The columns of an eSIM row (`rows::EsimRow`).
pub(super) const ESIM_COLUMNS: &str = "seq, id, partner_id, environment, order_id, plan_id, \
    plan_name, validity_days, term_months, iccid, msisdn, matching_id, activation_code, \
    qr_token, status, customer_email, customer_name, reference_id, webhook_url, data_limit_mb, \
    data_used_mb, calls_made, sms_sent, activated_at, expires_at, created_at, profile_state, eid, \
    profile_updated_at, profile_result";

/// The columns of the status read (`rows::EsimStatusRow`), a part of `ESIM_COLUMNS`.
const ESIM_STATUS_COLUMNS: &str = "id, iccid, status, plan_id, plan_name, \
    validity_days, term_months, data_limit_mb, data_used_mb, calls_made, sms_sent, \
    activated_at, expires_at";

pub(super) fn push_esim<'a>(qb: &mut QueryBuilder<'a, Db>, esim: &'a EsimRecord) {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    push_insert(
        qb,
        "esims (id, partner_id, environment, order_id, plan_id, plan_name, \
         validity_days, term_months, iccid, msisdn, matching_id, activation_code, \
         qr_token, status, customer_email, customer_name, reference_id, webhook_url, \
         data_limit_mb, data_used_mb, calls_made, sms_sent, activated_at, expires_at, \
         created_at, profile_state, eid, profile_updated_at, profile_result)",
        |v| {
            v.push_bind(&esim.id)
                .push_bind(&esim.partner_id)
                .push_bind(esim.environment.as_str())
                .push_bind(&esim.order_id)
                .push_bind(&esim.plan_id)
                .push_bind(&esim.plan_name)
                .push_bind(i64::from(esim.validity_days))
                .push_bind(i64::from(esim.term.months()))
                .push_bind(&esim.iccid)
                .push_bind(&esim.msisdn)
                .push_bind(&esim.matching_id)
                .push_bind(&esim.activation_code)
                .push_bind(&esim.qr_token)
                .push_bind(esim.status.as_str())
                .push_bind(&esim.customer_email)
                .push_bind(&esim.customer_name)
                .push_bind(&esim.reference_id)
                .push_bind(&esim.webhook_url)
                .push_bind(count(esim.data_limit_mb))
                .push_bind(count(esim.data_used_mb))
                .push_bind(count(esim.calls_made))
                .push_bind(count(esim.sms_sent))
                .push_bind(esim.activated_at)
                .push_bind(esim.expires_at)
                .push_bind(esim.created_at)
                .push_bind(esim.profile.as_ref().map(|p| p.state.as_str()))
                .push_bind(esim.profile.as_ref().and_then(|p| p.eid.as_deref()))
                .push_bind(esim.profile.as_ref().and_then(|p| p.updated_at))
                .push_bind(esim.profile.as_ref().and_then(|p| p.last_result.as_deref()));
        },
    );
}

/// The eSIM row, locked for update where the backend needs it.
/// An eSIM read for a change, with the columns only changes need.
pub(super) struct Locked {
    pub(super) esim: EsimRecord,
    /// The usage thresholds already announced (a bit mask).
    pub(super) thresholds_notified: i64,
    /// Who holds its suspension, if it is suspended.
    pub(super) suspended_by: Option<Suspender>,
}

/// The eSIM row, locked for update where the backend needs it.
pub(super) async fn lock_esim(
    tx: &mut Tx<'_>,
    esim_id: &str,
) -> Result<Option<Locked>, StoreError> {
    let row: Option<EsimRow> = sqlx::query_as(&format!(
        "SELECT {ESIM_COLUMNS} FROM esims WHERE id = $1{}",
        DIALECT.lock
    ))
    .bind(esim_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (thresholds_notified, suspended_by): (i64, Option<String>) =
        sqlx::query_as("SELECT thresholds_notified, suspended_by FROM esims WHERE id = $1")
            .bind(esim_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_error)?;
    let suspended_by = suspended_by
        .map(|by| {
            Suspender::parse(&by)
                .ok_or_else(|| StoreError::Other(format!("corrupt row: suspended_by = {by}")))
        })
        .transpose()?;
    Ok(Some(Locked {
        esim: EsimRecord::try_from(row)?,
        thresholds_notified,
        suspended_by,
    }))
}

pub(super) async fn get_esim(
    store: &Store,
    scope: &Scope,
    esim_id: &str,
) -> Result<Option<EsimRecord>, StoreError> {
    fetch_scoped_by_id::<EsimRow, _>(ESIM_COLUMNS, "esims", scope, esim_id, &store.reader).await
}

pub(super) async fn get_esim_status(
    store: &Store,
    scope: &Scope,
    esim_id: &str,
) -> Result<Option<oytel_core::ports::EsimStatusRecord>, StoreError> {
    fetch_scoped_by_id::<crate::rows::EsimStatusRow, _>(
        ESIM_STATUS_COLUMNS,
        "esims",
        scope,
        esim_id,
        &store.reader,
    )
    .await
}

pub(super) async fn get_esim_by_qr_token(
    store: &Store,
    token: &str,
) -> Result<Option<EsimRecord>, StoreError> {
    let row: Option<EsimRow> = sqlx::query_as(&format!(
        "SELECT {ESIM_COLUMNS} FROM esims WHERE qr_token = $1"
    ))
    .bind(token)
    .fetch_optional(&store.reader)
    .await
    .map_err(db_error)?;
    row.map(EsimRecord::try_from).transpose()
}

pub(super) async fn get_esim_by_iccid(
    store: &Store,
    iccid: &str,
) -> Result<Option<EsimRecord>, StoreError> {
    let row: Option<EsimRow> = sqlx::query_as(&format!(
        "SELECT {ESIM_COLUMNS} FROM esims WHERE iccid = $1"
    ))
    .bind(iccid)
    .fetch_optional(&store.reader)
    .await
    .map_err(db_error)?;
    row.map(EsimRecord::try_from).transpose()
}

pub(super) async fn list_esims(
    store: &Store,
    scope: &Scope,
    filter: &EsimFilter,
    page: PageRequest,
) -> Result<Vec<Sequenced<EsimRecord>>, StoreError> {
    let mut query = scoped_list(ESIM_COLUMNS, "esims", scope);
    if let Some(status) = filter.status {
        query.push(" AND status = ");
        query.push_bind(status.as_str());
    }
    if let Some(reference_id) = &filter.reference_id {
        query.push(" AND reference_id = ");
        query.push_bind(reference_id);
    }
    if let Some(email) = &filter.customer_email {
        query.push(" AND lower(customer_email) = lower(");
        query.push_bind(email);
        query.push(")");
    }
    fetch_page::<EsimRow, _>(query, "seq", page, &store.reader).await
}

pub(super) async fn transition_esim(
    store: &Store,
    esim_id: &str,
    to: EsimStatus,
    now: DateTime<Utc>,
) -> Result<TransitionResult, StoreError> {
    let mut tx = begin_write(store).await?;
    let Some(Locked { esim, .. }) = lock_esim(&mut tx, esim_id).await? else {
        return Ok(TransitionResult::NotFound);
    };
    let result = transition_locked(&mut tx, esim, to, now).await?;
    if matches!(result, TransitionResult::Done(_)) {
        tx.commit().await.map_err(db_error)?;
    }
    Ok(result)
}

/// Changes the state of an eSIM locked in `tx` (with its event), if the state machine allows.
pub(super) async fn transition_locked(
    tx: &mut Tx<'_>,
    mut esim: EsimRecord,
    to: EsimStatus,
    now: DateTime<Utc>,
) -> Result<TransitionResult, StoreError> {
    let esim_id = esim.id.clone();
    let esim_id = esim_id.as_str();
    let from = esim.status;
    if lifecycle::check_transition(from, to).is_err() {
        return Ok(TransitionResult::Invalid(from));
    }
    if to == EsimStatus::Expired {
        // The package in force ends; a queued one takes over and the eSIM lives on.
        let ended_at = now.min(esim.expires_at);
        if start_next(tx, &mut esim, PackageState::Expired, ended_at).await? {
            return Ok(TransitionResult::Done(Box::new(esim)));
        }
        end_in_force(tx, esim_id, PackageState::Expired, ended_at).await?;
    }
    if (from, to) == (EsimStatus::Provisioned, EsimStatus::Active) {
        sqlx::query(
            "UPDATE packages SET activated_at = $2 WHERE esim_id = $1 \
             AND state IN ('active', 'depleted') AND ended_at IS NULL AND activated_at IS NULL",
        )
        .bind(esim_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    lifecycle::apply(&mut esim, to, now);
    let changed = sqlx::query(
        "UPDATE esims SET status = $2, activated_at = $3 WHERE id = $1 AND status = $4",
    )
    .bind(esim_id)
    .bind(to.as_str())
    .bind(esim.activated_at)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if changed.rows_affected() != 1 {
        return Ok(TransitionResult::Invalid(from));
    }
    if let Some(event_type) = lifecycle::event_for(from, to) {
        let event = oytel_core::webhooks::esim_event(event_type, &esim, None, now);
        insert_event_row(tx, &event).await?;
        fan_out(tx, &event, esim.webhook_url.as_deref(), now).await?;
    }
    Ok(TransitionResult::Done(Box::new(esim)))
}

pub(super) async fn change_suspension(
    store: &Store,
    scope: Option<Scope>,
    esim_id: &str,
    change: &SuspensionChange,
    now: DateTime<Utc>,
) -> Result<SuspensionResult, StoreError> {
    let mut tx = begin_write(store).await?;
    let Some(Locked {
        mut esim,
        suspended_by,
        ..
    }) = lock_esim(&mut tx, esim_id).await?
    else {
        return Ok(SuspensionResult::NotFound);
    };
    if scope.is_some_and(|s| s.partner_id != esim.partner_id || s.environment != esim.environment) {
        return Ok(SuspensionResult::NotFound);
    }
    let (to, held_by) = match lifecycle::decide_suspension(esim.status, suspended_by, change) {
        SuspensionDecision::Apply(to, held_by) => (to, held_by),
        SuspensionDecision::Unchanged => {
            return Ok(SuspensionResult::Done {
                esim: Box::new(esim),
                changed: false,
            })
        }
        SuspensionDecision::HeldByOperator => return Ok(SuspensionResult::HeldByOperator),
        SuspensionDecision::Invalid(invalid) => return Ok(SuspensionResult::Invalid(invalid)),
    };
    let reason = match change {
        SuspensionChange::Suspend { reason, .. } => reason.as_deref(),
        SuspensionChange::Resume { .. } => None,
    };
    let from = esim.status;
    lifecycle::apply(&mut esim, to, now);
    sqlx::query(
        "UPDATE esims SET status = $2, suspended_by = $3, suspend_reason = $4 WHERE id = $1",
    )
    .bind(esim_id)
    .bind(to.as_str())
    .bind(held_by.map(Suspender::as_str))
    .bind(reason)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if let Some(event_type) = lifecycle::event_for(from, to) {
        let event = oytel_core::webhooks::esim_event(event_type, &esim, None, now);
        insert_event_row(&mut tx, &event).await?;
        fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(SuspensionResult::Done {
        esim: Box::new(esim),
        changed: true,
    })
}

pub(super) async fn record_usage(
    store: &Store,
    esim_id: &str,
    usage: &UsageInput,
    now: DateTime<Utc>,
) -> Result<UsageResult, StoreError> {
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut tx = begin_write(store).await?;
    let Some(Locked {
        mut esim,
        thresholds_notified: notified,
        ..
    }) = lock_esim(&mut tx, esim_id).await?
    else {
        return Ok(UsageResult::NotFound);
    };
    let inserted = sqlx::query(
        "INSERT INTO usage_records (record_id, esim_id, data_mb, calls, sms, recorded_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&usage.record_id)
    .bind(esim_id)
    .bind(to_i64(usage.data_mb))
    .bind(to_i64(usage.calls))
    .bind(to_i64(usage.sms))
    .bind(usage.recorded_at)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    if inserted.rows_affected() == 0 {
        return Ok(UsageResult::Duplicate);
    }
    if !lifecycle::accepts_usage(esim.status) {
        if esim.status == EsimStatus::Suspended {
            // Refused, and remembered: sent again after the resume, it stays refused.
            tx.commit().await.map_err(db_error)?;
        }
        return Ok(UsageResult::NotActive(esim.status));
    }
    esim.data_used_mb = esim.data_used_mb.saturating_add(usage.data_mb);
    esim.calls_made = esim.calls_made.saturating_add(usage.calls);
    esim.sms_sent = esim.sms_sent.saturating_add(usage.sms);
    let (crossed, mask) =
        oytel_core::webhooks::crossed_thresholds(esim.data_used_mb, esim.data_limit_mb, notified);
    sqlx::query(
        "UPDATE esims SET data_used_mb = $2, calls_made = $3, sms_sent = $4, \
         thresholds_notified = $5 WHERE id = $1",
    )
    .bind(esim_id)
    .bind(to_i64(esim.data_used_mb))
    .bind(to_i64(esim.calls_made))
    .bind(to_i64(esim.sms_sent))
    .bind(mask)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    for threshold in crossed {
        let event = oytel_core::webhooks::esim_event(
            EventType::UsageThreshold,
            &esim,
            Some(threshold),
            now,
        );
        insert_event_row(&mut tx, &event).await?;
        fan_out(&mut tx, &event, esim.webhook_url.as_deref(), now).await?;
    }
    apply_usage(&mut tx, &mut esim, now).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(UsageResult::Applied(Box::new(esim)))
}

pub(super) async fn due_expiries(
    store: &Store,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let mut query = QueryBuilder::new("SELECT id FROM esims WHERE status IN (");
    let mut live = query.separated(", ");
    for status in lifecycle::LIVE {
        live.push_bind(status.as_str());
    }
    query.push(") AND expires_at <= ").push_bind(now);
    query
        .push(" ORDER BY expires_at LIMIT ")
        .push_bind(i64::from(limit));
    query
        .build_query_scalar()
        .fetch_all(&store.reader)
        .await
        .map_err(db_error)
}

pub(super) async fn get_esim_any(
    store: &Store,
    esim_id: &str,
) -> Result<Option<EsimRecord>, StoreError> {
    let row: Option<EsimRow> =
        sqlx::query_as(&format!("SELECT {ESIM_COLUMNS} FROM esims WHERE id = $1"))
            .bind(esim_id)
            .fetch_optional(&store.reader)
            .await
            .map_err(db_error)?;
    row.map(EsimRecord::try_from).transpose()
}

pub(super) async fn partner_summary(
    store: &Store,
    partner_id: &str,
) -> Result<PartnerSummary, StoreError> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT environment, status, COUNT(*) FROM esims WHERE partner_id = $1 \
         GROUP BY environment, status ORDER BY environment, status",
    )
    .bind(partner_id)
    .fetch_all(&store.reader)
    .await
    .map_err(db_error)?;
    let mut esims = Vec::with_capacity(counts.len());
    for (env, status, count) in counts {
        let corrupt = |what: String| StoreError::Other(format!("corrupt row: {what}"));
        esims.push((
            environment(&env)?,
            status.parse::<EsimStatus>().map_err(corrupt)?,
            u64::try_from(count).map_err(|_| corrupt(format!("count {count}")))?,
        ));
    }
    let last_order_at: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT MAX(created_at) FROM orders WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_one(&store.reader)
            .await
            .map_err(db_error)?;
    Ok(PartnerSummary {
        esims,
        last_order_at,
    })
}
